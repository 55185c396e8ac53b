"""GRD003 reads a module as code for a current PyTorch only when it calls an
API 0.4 added (``.item()``, ``.to(...)``, ``torch.device``, ``torch.tensor``);
``gradmode-current-torch = yes`` says all linted code runs on one."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from flake8_gradmode.engine import check
from flake8_gradmode.settings import Settings

ALONE = Settings(cross_module=False)

# Clean for pycodestyle and pyflakes: the only findings are ours.
WRITTEN_FOR_0_3 = """\
import torch
from torch.autograd import Variable


def predict(model, images):
    scores = model(Variable(images, volatile=True))
    return scores.data.max(1)[1]
"""


def found(source, settings=ALONE):
    return [(v.line, v.col) for v in check(textwrap.dedent(source), settings, filename="predict.py")
            if v.code == "GRD003"]


@pytest.mark.parametrize("added, reported", [
    ("", False),  # no API of 0.4 or later: code for 0.3, where the flag stopped the graph
    ("\n\ndef accuracy(pred, labels):\n    return (pred == labels).float().mean().item()\n", True),
    ("\n\ndef place(model):\n    return model.to('cuda')\n", True),
    ("\n\ndef place(model):\n    return model.to()\n", False),  # no argument: not the 0.4 method
    ("\n\nDEVICE = torch.device('cpu')\n", True),
    ("\n\nFLAG = torch.tensor([1.0]).requires_grad_()\n", True),
    ("\n\ndef evaluate(model, x):\n    with torch.no_grad():\n        return model(x)\n", False),
])
def test_the_flag_is_read_only_in_a_module_that_calls_an_api_of_0_4(added, reported):
    assert found(WRITTEN_FOR_0_3 + added) == ([(6, 36)] if reported else [])


def test_current_torch_reads_every_module_as_running_on_a_current_release():
    assert found(WRITTEN_FOR_0_3, Settings(cross_module=False, current_torch=True)) == [(6, 36)]


@pytest.mark.parametrize("args, config, out", [
    ((), "", []),
    (("--gradmode-current-torch=yes",), "", ["predict.py:6:37: GRD003"]),
    ((), "[flake8]\ngradmode-current-torch = yes\n", ["predict.py:6:37: GRD003"]),
    (("--gradmode-current-torch=no",), "[flake8]\ngradmode-current-torch = yes\n", []),
])
def test_current_torch_through_flake8(tmp_path: Path, args, config, out):
    (tmp_path / "predict.py").write_text(WRITTEN_FOR_0_3, encoding="utf-8")
    if config:
        (tmp_path / "setup.cfg").write_text(config, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "flake8", "--select=GRD003", "--format=%(path)s:%(row)d:%(col)d: %(code)s",
         *args, "predict.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.stdout.splitlines() == out
