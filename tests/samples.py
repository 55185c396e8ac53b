"""Source texts and helpers shared by several test modules."""

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

model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Dropout(0.5))


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
