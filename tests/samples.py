"""Source texts and helpers shared by several test modules."""

import textwrap
import tokenize
from pathlib import Path
from typing import List, Tuple

from flake8_gradmode import cli


def read_like_flake8(path: Path) -> str:
    """A file's text as flake8 reads it: coding cookie, BOM, latin-1 fallback."""
    try:
        with tokenize.open(path) as handle:
            return handle.read()
    except (SyntaxError, UnicodeError):
        with open(path, encoding="latin-1") as handle:
            return handle.read()


def run_in_process(monkeypatch, capsys, cwd: Path, *args: str) -> Tuple[int, List[str], List[str]]:
    """``flake8-gradmode ARGS`` in this process, from ``cwd``: exit status
    (argparse's too), stdout lines, stderr lines."""
    monkeypatch.chdir(cwd)
    try:
        code = cli.main(list(args))
    except SystemExit as exc:  # argparse
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out.splitlines(), err.splitlines()


# Every fixable finding once, plus one without a fix (GRD004, line 28).
BUGGY = '''\
"""Evaluation helpers."""
import torch
from torch.autograd import Variable

model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Dropout(0.5)).to("cpu")


def evaluate(batches):
    model.eval
    with torch.no_grad:
        return [model(x) for x in batches]


def legacy(x):
    return model(Variable(x, volatile=True))


@torch.set_grad_enabled
def trained(x):
    return model(x)


def wrap(x):
    return Variable(x)


def init():
    model[0].bias.fill_(0.0)
'''


#: A loop that encodes numpy data with a module of buffers only (bins kept
#: with ``register_buffer``, no parameter): nothing it makes requires grad.
BUFFERS_ONLY_ENCODER = """
import numpy as np
import torch
from torch import nn


class _Bins(nn.Module):
    def __init__(self, edges):
        super().__init__()
        self.register_buffer("edges", edges)

    def forward(self, x):
        return (x[..., None] - self.edges).clamp(0, 1)


class Bins(nn.Module):
    def __init__(self, edges):
        super().__init__()
        self.impl = _Bins(edges)

    def forward(self, x):
        return self.impl(x).flatten(-2)


def encode(parts, encoder=None):
    if encoder is None:
        encoder = Bins(torch.linspace(-1, 1, 5))
    for key in parts:
        parts[key] = encoder(torch.from_numpy(parts[key])).cpu().numpy()
    return parts, encoder


PARTS, _ = encode({"train": np.zeros((3, 2), dtype=np.float32)})
"""


def with_a_parameter(source: str) -> str:
    """``BUFFERS_ONLY_ENCODER`` whose inner module also scales by a parameter."""
    return source.replace(
        '        self.register_buffer("edges", edges)\n',
        '        self.register_buffer("edges", edges)\n        self.scale = nn.Parameter(torch.ones(1))\n',
    ).replace(".clamp(0, 1)", ".clamp(0, 1) * self.scale")


OPTIONAL_HEAD_MODELS = """
    from torch import nn


    class Head(nn.Module):
        def __init__(self, in_features, classes=2):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(in_features, 16), nn.LeakyReLU(0.01), nn.Linear(16, classes))

        def forward(self, features):
            return self.net(features)


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8))

        def forward(self, x):
            return self.body(x)
"""

OPTIONAL_HEAD_TRAINING = """
    import torch
    from torch import nn

    from layers import Head, Net


    def validate(model, batches, head=None):
        model.eval()
        correct = 0
        for x, y in batches:
            features = model(x)
            if head is not None:
                correct += int((head(features).argmax(1) == y).sum())
        return correct


    def run(loader, batches, with_head):
        model = Net()
        head = None
        if with_head:
            with torch.no_grad():
                feat = model(torch.zeros(2, 4))
            head = Head(in_features=feat.shape[1]).to("cpu")
        params = list(model.parameters()) + (list(head.parameters()) if head else [])
        optimizer = torch.optim.SGD(params, lr=0.1)
        for epoch in range(3):
            model.train()
            if head is not None:
                head.train()
            for x, y in loader:
                loss = nn.functional.cross_entropy(head(model(x)), y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            with torch.no_grad():
                print(validate(model, batches, head=head))
"""


def optional_head_module() -> str:
    """``OPTIONAL_HEAD_TRAINING`` with the classes it imports written in it."""
    return textwrap.dedent(OPTIONAL_HEAD_TRAINING).replace(
        "from layers import Head, Net\n", textwrap.dedent(OPTIONAL_HEAD_MODELS))


def changed(source: str, changes) -> str:
    """``source`` with each ``(old, new)`` of ``changes`` replaced; each ``old`` must be there."""
    for old, new in changes:
        assert old in source
        source = source.replace(old, new)
    return source
