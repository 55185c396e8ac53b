"""GRD003 inside a grad-disabling context: the flag given to ``Variable``
there stops no graph that ``no_grad`` has not stopped already, so it is not
reported; the same flag outside it is, and ``torch.tensor(..., volatile=)``
raises wherever it is."""

import textwrap

from flake8_gradmode.engine import check
from flake8_gradmode.settings import Settings

ALONE = Settings(cross_module=False)

EVALUATE = """
import torch
from torch.autograd import Variable


def evaluate(model, loader, cuda):
    correct = 0
    with torch.no_grad():
        for x, y in loader:
            if cuda:
                x = Variable(x.cuda(), volatile=True)
            else:
                x = Variable(x, volatile=True)
            correct += (model(x).argmax(1) == y).sum().item()
    return correct


@torch.no_grad()
def predict(model, x):
    return model(Variable(x, volatile=True))


def embed(model, x):
    return model(Variable(x, volatile=True))


def raises_anyway():
    with torch.no_grad():
        return torch.tensor([1.0], volatile=True)
"""


#: Every source here is a module run on a current release, which one call only
#: PyTorch 0.4 and later have (``.item()``) says: GRD003 reads only such modules.
RUN_TODAY = "\n\nimport torch\nprint(torch.zeros(1).item())\n"


def found(source):
    source = textwrap.dedent(source) + RUN_TODAY
    return sorted((v.code, v.line, v.col) for v in check(source, ALONE, filename="eval.py") if v.code == "GRD003")


def test_only_the_flags_outside_no_grad_and_the_raising_call_are_reported():
    assert found(EVALUATE) == [("GRD003", 24, 29), ("GRD003", 29, 35)]


# A helper that splits its input and calls itself on the halves; the script
# calls it only under ``no_grad``.
CHOPPED = """
import torch
from torch.autograd import Variable


def chop_forward(x, model, depth):
    if depth == 0:
        return model(x)
    outs = [chop_forward(p, model, depth - 1) for p in x.chunk(2)]
    return Variable(torch.cat(outs), volatile=True)


def main(net, loader):
    with torch.no_grad():
        for x in loader:
            print(chop_forward(x, net, 2))
"""


def test_a_helper_every_caller_runs_under_no_grad_itself_included():
    assert found(CHOPPED) == []


def test_a_helper_one_caller_runs_with_grad():
    assert found(CHOPPED + "\n\ndef demo(net, x):\n    return chop_forward(x, net, 1)\n") == [("GRD003", 10, 37)]
