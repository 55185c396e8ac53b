from __future__ import annotations

import ast

from flake8_gradmode import facts
from flake8_gradmode.rule import Holds, Invalid, Rule, Valid

_REMEDY = "change the parameter itself under `with torch.no_grad():`"


class ParamDataMutation(Rule):
    code = "GRD901"
    name = "param-data-mutation"
    default_on = False
    triggers = (".data",)
    summary = "in-place change of a parameter through `.data`"
    what = """
        Reports an in-place change of a parameter through `.data`:
        `m.weight.data.normal_(0, 0.02)`, `p.data -= lr * p.grad`,
        `p.data[0] = 1`, `p.data = p.data - lr * p.grad`.  Parameters are
        recognised as in GRD004.
    """
    why = """
        It works, but autograd does not see it: the tensor's version counter is
        not bumped, so a value that was saved for a backward pass can change
        underneath it and the gradients come out silently wrong instead of
        raising.  PyTorch recommends changing the parameter itself under
        `torch.no_grad()`, which autograd tracks.  Off by default: it is style
        advice, and much correct older code uses `.data`.
    """
    known_problems = "Opt in with `extend-select = GRD901` (or `GRD9` for every hint)."
    fix_safety = "No fix is applied."
    references = ("https://pytorch.org/blog/pytorch-0_4_0-migration-guide/#what-about-data",)

    VALID = (
        Valid(
            """
            import torch

            layer = torch.nn.Linear(2, 2)
            before = layer.weight._version
            with torch.no_grad():
                layer.weight.normal_(0, 0.02)
            """,
            checks=(Holds("layer.weight._version > before", "autograd's version counter records the change"),),
        ),
    )
    INVALID = (
        Invalid(
            """
            import torch

            layer = torch.nn.Linear(2, 2)
            before = layer.weight._version
            layer.weight.data.normal_(0, 0.02)
            """,
            at=((5, 0),),
            symptom=Holds("layer.weight._version == before", "autograd's version counter never sees the change"),
        ),
        Invalid(
            """
            import torch

            model = torch.nn.Linear(2, 1)
            model(torch.randn(4, 2)).sum().backward()
            for p in model.parameters():
                before = p._version
                p.data -= 0.1 * p.grad
            """,
            at=((7, 4),),
            symptom=Holds("p._version == before", "autograd's version counter never sees the change"),
        ),
    )

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute) and facts.is_inplace_method(func.attr):
            self._check(node, func.value, loose=True)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._check(node, node.target, loose=False)

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self._check(node, target, loose=False)

    def _check(self, node: ast.AST, target: ast.expr, loose: bool) -> None:
        target = facts.strip_views(self.context, target)
        if not (isinstance(target, ast.Attribute) and target.attr == "data"):
            return
        owner = target.value
        param = facts.classify(self.context, owner) is facts.Kind.PARAM
        if not param and loose:
            param = isinstance(owner, ast.Attribute) and owner.attr in facts.PARAM_ATTRIBUTES
        if param:
            self.report(node, f"`{self.code_of(owner)}` is changed through `.data`, which autograd does not track; {_REMEDY}")
