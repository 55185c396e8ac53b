"""Values changed after they were made.

GRD005 backward-under-no-grad: an item assigned from a value that requires
grad brings its graph in, so the proof "made only from factory tensors" no
longer holds.  GRD004: ``requires_grad_()`` in a branch that returns does not
make the name a leaf after the branch.  Each case is linted with one rule
(exact line and column) and, where it runs, run under PyTorch."""

from __future__ import annotations

import textwrap

import pytest

from flake8_gradmode.engine import check
from flake8_gradmode.registry import by_code

RULE = by_code("GRD005")


def src(code: str) -> str:
    return textwrap.dedent(code).strip("\n") + "\n"


def found(code: str):
    return [(v.code, v.line, v.col) for v in check(src(code), rules=[RULE])]


def run(code: str) -> None:
    pytest.importorskip("torch")
    exec(compile(src(code), "<case>", "exec"), {"__name__": "__case__"})


SILENT = {
    "items-assigned-from-a-leaf": """
        import torch

        x = torch.randn(3, 3).requires_grad_()
        out = torch.zeros_like(x)
        for i in range(3):
            out[i] = torch.exp(x[i])
        out.sum().backward()
        assert x.grad is not None
        """,
    "copied-in-place-from-a-leaf": """
        import torch


        def total(w):
            out = torch.zeros(3)
            out.copy_(w * 2)
            out.sum().backward()


        total(torch.ones(3, requires_grad=True))
        """,
    "bound-in-each-branch": """
        import torch

        model = torch.nn.Linear(3, 1)


        def step(x, use_aux):
            if use_aux:
                aux = model(x).pow(2).mean()
            else:
                aux = torch.zeros(())
            if use_aux:
                aux.backward()


        step(torch.randn(4, 3), True)
        assert model.weight.grad is not None
        """,
}


@pytest.mark.parametrize("name", sorted(SILENT))
def test_silent_and_runs(name: str) -> None:
    assert found(SILENT[name]) == []
    run(SILENT[name])


REPORTED = """
    import torch

    x = torch.randn(3, 3).requires_grad_()
    out = torch.zeros_like(x)
    y = out * 2
    y.sum().backward()
    """


def test_factory_tensor_never_changed_is_reported_and_raises() -> None:
    assert found(REPORTED) == [("GRD005", 6, 0)]
    with pytest.raises(RuntimeError, match="does not require grad"):
        run(REPORTED)


# --- GRD004: ``requires_grad_()`` in a branch that returns --------------------------


def test_leaf_made_in_a_returning_branch_is_not_a_leaf_after_it() -> None:
    source = """
        import torch


        def objective(model, x, collapsed):
            total = torch.tensor(0.0)
            if collapsed:
                total.requires_grad_()
                return total
            total += model(x).sum()
            return total


        objective(torch.nn.Linear(4, 1), torch.randn(2, 4), False).backward()
        """
    assert [(v.code, v.line, v.col) for v in check(src(source), rules=[by_code("GRD004")])] == []
    run(source)


def test_leaf_made_before_the_branch_is_still_reported() -> None:
    source = """
        import torch


        def objective(model, x):
            total = torch.tensor(0.0)
            total.requires_grad_()
            total += model(x).sum()
            return total
        """
    assert [(v.code, v.line, v.col) for v in check(src(source), rules=[by_code("GRD004")])] == [("GRD004", 7, 4)]


def test_requires_grad_switched_off_around_an_in_place_copy() -> None:
    source = """
        import torch


        def resized(layer, index):
            w = layer.weight.index_select(0, index).clone().detach()
            new = torch.nn.Linear(layer.in_features, len(index))
            new.weight.requires_grad = False
            new.weight.copy_(w)
            new.weight.requires_grad = True
            return new


        resized(torch.nn.Linear(4, 3), torch.tensor([0, 2]))
        """
    assert [(v.code, v.line, v.col) for v in check(src(source), rules=[by_code("GRD004")])] == []
    run(source)


APPLIED = """
    import torch


    def build(std, guarded):
        net = torch.nn.Sequential(torch.nn.Linear(4, 4))

        def init_weights(m):
            if type(m) == torch.nn.Linear:
                m.weight.normal_(0, std)

        if guarded:
            with torch.no_grad():
                net.apply(init_weights)
        else:
            net.apply(init_weights)
        return net
    """


def test_a_function_handed_to_apply_runs_in_the_grad_mode_of_that_call() -> None:
    assert [(v.code, v.line, v.col) for v in check(src(APPLIED), rules=[by_code("GRD004")])] == [("GRD004", 9, 12)]
    only_guarded = APPLIED.replace("        else:\n            net.apply(init_weights)\n", "")
    assert [(v.code, v.line, v.col) for v in check(src(only_guarded), rules=[by_code("GRD004")])] == []
    run(only_guarded + "\n    build(0.1, True)\n")
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        run(APPLIED + "\n    build(0.1, False)\n")


SET_GRAD_ENABLED_IN_AN_AND = """
    import contextlib

    import torch

    w = torch.ones(2, requires_grad=True)
    with torch.no_grad():
        with {first} and torch.autograd.detect_anomaly():
            (w * 2).sum().backward()
"""


def test_set_grad_enabled_made_in_an_and_expression_switches_grad_on():
    # only the last object is entered, but set_grad_enabled(True) takes effect when it is made
    code = SET_GRAD_ENABLED_IN_AN_AND.format(first="torch.set_grad_enabled(True)")
    assert found(code) == []
    with pytest.warns(UserWarning, match="Anomaly Detection has been enabled"):
        run(code)  # the backward succeeds: grad is on in the block
    assert found(SET_GRAD_ENABLED_IN_AN_AND.format(first="contextlib.nullcontext()")) == [("GRD005", 8, 8)]


BACKWARD_ONLY_WHEN_ASKED = """
    import torch

    w = torch.ones(3, requires_grad=True)


    class Penalty:
        def compute(self, x, do_backward, scale=1.0):
            loss = (w * x).sum() * scale
            if do_backward:
                loss.backward()
            return float(loss)

        def report(self, x):
            with torch.no_grad():
                return self.compute(x, do_backward={flag})


    print(Penalty().report(torch.ones(3)))
"""


def test_backward_under_a_parameter_every_caller_passes_false_is_not_reported():
    # the one call passes ``do_backward=False``: the backward never runs under no_grad
    code = BACKWARD_ONLY_WHEN_ASKED.format(flag="False")
    assert found(code) == []
    run(code)  # no error
    asked = BACKWARD_ONLY_WHEN_ASKED.format(flag="True")
    assert found(asked) == [("GRD005", 10, 12)]
    with pytest.raises(RuntimeError, match="does not require grad"):
        run(asked)


# A network library written by hand: its loss object has a ``backward()``
# method of its own that returns a gradient; autograd is not involved.
HANDMADE_LIBRARY = """
import torch

from handmade import nn


def train(model, batches):
    torch.set_grad_enabled(False)
    criterion = nn.LossMSE()
    for x, y in batches:
        loss = criterion(model(x), y)
        model.backward(criterion.backward())
    return loss
"""


@pytest.mark.parametrize("step, expected", [
    ("model.backward(criterion.backward())", []),
    ("loss.backward()", [("GRD005", 11, 8)]),  # the loss is a tensor computed with grad disabled
])
def test_backward_of_an_object_a_class_outside_torch_built_is_its_own_method(step, expected) -> None:
    assert found(HANDMADE_LIBRARY.replace("model.backward(criterion.backward())", step)) == expected


# a loss never accumulated: ``loss`` is still the number 0 at ``backward()``,
# which raises AttributeError, a mistake of another kind than a tensor without grad
NUMBER_NEVER_ACCUMULATED = """
import torch


def train(model, loader, optimizer):
    for x, y in loader:
        loss = 0
        for step in range(3):
            out = model(x)
        loss.backward()
        optimizer.step()
"""


@pytest.mark.parametrize("change, expected", [
    (None, []),
    (("loss = 0\n", "loss = 0 * 2.5\n"), []),
    # a tensor made without grad: the rule's own case
    (("loss = 0\n", "loss = torch.zeros(())\n"), [("GRD005", 9, 8)]),
])
def test_backward_of_a_plain_number_is_another_mistake(change, expected) -> None:
    source = NUMBER_NEVER_ACCUMULATED.replace(*change) if change else NUMBER_NEVER_ACCUMULATED
    assert change is None or source != NUMBER_NEVER_ACCUMULATED
    assert found(source) == expected


# a monitor that computes a gradient norm only when the predictions carry a
# graph: under no_grad the branch is never taken, so nothing raises
GUARDED_BY_REQUIRES_GRAD = """
import torch


def track(model, preds):
    norms = []
    for param in model.parameters():
        if preds.requires_grad and param.requires_grad:
            (preds * param.sum()).mean().backward()
            norms.append(param.grad.norm().item())
    return norms


model = torch.nn.Linear(3, 1)
with torch.no_grad():
    print(track(model, model(torch.ones(2, 3))))
"""


@pytest.mark.parametrize("guard, expected", [
    ("preds.requires_grad and param.requires_grad", []),
    ("torch.is_grad_enabled()", []),
    # a test that says nothing of grad: the branch runs under no_grad and raises
    ("param.requires_grad", [("GRD005", 8, 12)]),
    ("not preds.requires_grad", [("GRD005", 8, 12)]),
])
def test_backward_taken_only_when_grad_is_there(guard, expected) -> None:
    code = GUARDED_BY_REQUIRES_GRAD.replace("preds.requires_grad and param.requires_grad", guard)
    assert found(code) == expected
    if expected:
        with pytest.raises(RuntimeError, match="does not require grad"):
            run(code)
    else:
        run(code)
