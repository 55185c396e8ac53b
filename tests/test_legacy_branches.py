"""Code only torch releases before 0.4 run: a branch under a test of the
installed version (``if TORCH_VERSION == "0.3":``) is dead on any torch that
can be installed today, so no grad-mode rule reads it.  Exact (code, line,
column) for each case."""

import textwrap

import pytest

from flake8_gradmode.engine import check
from flake8_gradmode.settings import Settings

ALONE = Settings(cross_module=False)

VALIDATE = """
import torch
from torch.autograd import Variable

TORCH_VERSION = {version}


def validate(model, val_loader):
    model.eval()
    correct = 0
    for x, y in val_loader:
        if {test}:
            out = model(Variable(x, volatile=True))
        else:
            with torch.no_grad():
                out = model(x)
        correct += (out.argmax(1) == y).sum().item()
    return correct
"""


def found(source):
    source = textwrap.dedent(source)
    return sorted((v.code, v.line, v.col) for v in check(source, ALONE, filename="train.py") if v.code < "GRD9")


@pytest.mark.parametrize(
    "version, test",
    [
        ("torch.__version__[:3]", 'TORCH_VERSION == "0.3"'),
        ("torch.__version__", 'TORCH_VERSION < "0.4"'),
        ("None", 'torch.__version__[:3] == "0.3"'),
        ("None", "'0.3' == torch.__version__[:3]"),
        # parsed versions
        ("None", 'version.parse(torch.__version__) < version.parse("0.4.0")'),
        ("None", 'LooseVersion(torch.__version__) < LooseVersion("0.4")'),
        # a flag a version check set, maybe in another module
        ("None", "cfg.PYTORCH_VERSION_LESS_THAN_040"),
        ("None", "TORCH_LT_0_4"),
    ],
)
def test_a_branch_only_old_torch_runs_is_not_read(version, test):
    assert found(VALIDATE.format(version=version, test=test)) == []


@pytest.mark.parametrize(
    "version, test",
    [
        ("torch.__version__[:3]", 'TORCH_VERSION == "1.0"'),  # a release that runs today
        ("torch.__version__[:3]", 'TORCH_VERSION >= "0.3"'),
        ("'0.3'", 'TORCH_VERSION == "0.3"'),  # a constant, not the installed version
        ("torch.__version__[:3]", "use_volatile"),
        ("None", 'version.parse(torch.__version__) < version.parse("1.0")'),  # 0.4 to 0.x run it too
        ("None", "cfg.PYTORCH_VERSION_LESS_THAN_110"),  # a release that runs today
        ("None", "cfg.PYTORCH_VERSION_040"),  # says no direction
        ("None", "cfg.LESS_THAN_040"),  # says nothing of torch
    ],
)
def test_other_conditions_are_read(version, test):
    assert found(VALIDATE.format(version=version, test=test)) == [("GRD003", 13, 36), ("GRD101", 11, 4)]
