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


def validate(model, val_loader, cfg=None, version=None, LooseVersion=None, use_volatile=False, TORCH_LT_0_4=False):
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


#: Every source here is a module run on a current release, which one call only
#: PyTorch 0.4 and later have (``.item()``) says: GRD003 reads only such modules.
RUN_TODAY = "\n\nimport torch\nprint(torch.zeros(1).item())\n"


def found(source):
    source = textwrap.dedent(source) + RUN_TODAY
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


VALIDATE_ELSE = """
import torch
from distutils.version import LooseVersion
from torch.autograd import Variable


def validate(model, val_loader, use_no_grad=True, version=None):
    model.eval()
    correct = 0
    for x, y in val_loader:
        if {test}:
            with torch.no_grad():
                out = model(x)
        else:
            out = model(Variable(x, volatile=True))
        correct += (out.argmax(1) == y).sum().item()
    return correct
"""


@pytest.mark.parametrize(
    "test",
    [
        'LooseVersion(torch.__version__) > LooseVersion("0.3.1")',
        'torch.__version__ >= "0.4"',
        '"0.4.0" <= torch.__version__',
        'version.parse(torch.__version__) >= version.parse("0.4.0")',
        'torch.__version__[:3] > "0.3"',
    ],
)
def test_the_else_of_a_test_only_old_torch_fails_is_not_read(test):
    assert found(VALIDATE_ELSE.format(test=test)) == []


@pytest.mark.parametrize(
    "test",
    [
        'torch.__version__ > "0.4"',  # 0.4.0 itself takes the else
        'torch.__version__ >= "1.0"',  # so does every 0.x after 0.4
        'torch.__version__ < "0.4"',  # the else is what runs today
        "use_no_grad",
    ],
)
def test_the_else_of_other_tests_is_read(test):
    assert found(VALIDATE_ELSE.format(test=test)) == [("GRD003", 15, 36), ("GRD101", 10, 4)]


PREDICTOR = """
import torch
from distutils.version import LooseVersion
from torch.autograd import Variable


class Predictor:
    def __init__(self, model):
        self.model = model
        self.model.eval()

    def predict(self, x):
        if {test}:
            with torch.no_grad():
                return self.model(Variable(x))
        return self.model(Variable(x, volatile=True))
"""


def test_an_inference_function_whose_old_torch_path_follows_the_version_test():
    """The ``return`` after ``if version > "0.3.1": ... return`` is only
    reached by old torch, yet it is no ``else:`` branch: still read."""
    assert found(PREDICTOR.format(test='LooseVersion(torch.__version__) > LooseVersion("0.3.1")')) == [
        ("GRD003", 16, 38), ("GRD101", 16, 15)]


def test_an_inference_function_with_the_old_torch_call_in_the_else_branch():
    source = PREDICTOR.format(test='LooseVersion(torch.__version__) > LooseVersion("0.3.1")').replace(
        "        return self.model(Variable(x, volatile=True))", "        else:\n"
        "            return self.model(Variable(x, volatile=True))")
    assert found(source) == []
    assert found(source.replace('> LooseVersion("0.3.1")', '> LooseVersion("0.4.0")')) == [
        ("GRD003", 17, 42), ("GRD101", 17, 19)]


# the version split into its parts, in the function that tests it (as a
# course's classifier did while porting to 0.4)
VALIDATE_PARTS = """
import torch
from torch import __version__
from torch.autograd import Variable


def classify(model, images):
    outputs = []
    for x in images:
        parts = __version__.split(".")
        if {test}:
            with torch.no_grad():
                out = model(x)
        else:
            out = model(Variable(x, volatile=True))
        outputs.append(out)
    return outputs
"""


@pytest.mark.parametrize("test, expected", [
    ("int(parts[0]) > 0 or int(parts[1]) >= 4", []),
    ("int(parts[0]) >= 1 or int(parts[1]) >= 4", []),
    # the minor number alone: 1.0 to 1.3 and 2.0 to 2.3 take the else too
    ("int(parts[1]) >= 4", [("GRD003", 15, 36)]),
    # a test that 0.4 to 0.x fail
    ("int(parts[0]) > 0 or int(parts[1]) >= 5", [("GRD003", 15, 36)]),
])
def test_a_test_of_the_versions_parts(test, expected):
    assert [f for f in found(VALIDATE_PARTS.format(test=test)) if f[0] == "GRD003"] == expected


@pytest.mark.parametrize("test", [
    "int(parts[0]) == 0 and int(parts[1]) < 4",
    "int(parts[0]) < 1 and int(parts[1]) <= 3",
])
def test_a_test_of_the_versions_parts_only_old_torch_passes(test):
    no_grad_first = (
        "            with torch.no_grad():\n                out = model(x)\n        else:\n"
        "            out = model(Variable(x, volatile=True))"
    )
    volatile_first = (
        "            out = model(Variable(x, volatile=True))\n        else:\n"
        "            with torch.no_grad():\n                out = model(x)"
    )
    source = VALIDATE_PARTS.format(test=test).replace(no_grad_first, volatile_first)
    assert "volatile=True))\n        else:" in source
    assert [f for f in found(source) if f[0] == "GRD003"] == []
