from __future__ import annotations

from typing import Optional

import ast

from flake8_gradmode import facts
from flake8_gradmode.tracker import Grad, effective
from flake8_gradmode.context import Fix
from flake8_gradmode.rule import Holds, Invalid, Raises, Rule, Valid

#: ``ast``'s augmented-assignment operators as written.
_AUG_OPS = {
    ast.Add: "+=", ast.Sub: "-=", ast.Mult: "*=", ast.Div: "/=", ast.FloorDiv: "//=", ast.Mod: "%=",
    ast.Pow: "**=", ast.MatMult: "@=", ast.BitAnd: "&=", ast.BitOr: "|=", ast.BitXor: "^=",
    ast.LShift: "<<=", ast.RShift: ">>=",
}
_REMEDY = "do it under `with torch.no_grad():`"


class InplaceParamUpdateWithGrad(Rule):
    code = "GRD004"
    name = "inplace-param-update-with-grad"
    triggers = ("arameter", "weight", "bias", "requires_grad", "param_groups")
    summary = "in-place change of a parameter while grad may be enabled"
    what = """
        Reports an in-place change of a parameter while grad may be enabled: an
        in-place tensor method (`fill_`, `zero_`, `copy_`, `add_`, `mul_`,
        `normal_`, `clamp_`, ...), an augmented assignment (`p -= lr * p.grad`)
        or an item assignment (`w[:, 0] = 0`).  Parameters are `<module>.weight`
        and `.bias`, attributes a class assigns from `nn.Parameter`, loop
        variables over `.parameters()`, `.named_parameters()` and an optimizer's
        `param_groups`, names bound to `nn.Parameter(...)` or to a tensor made
        with `requires_grad=True` (or after `.requires_grad_()`), and views of
        all of these (`b = layer.bias.view(-1)`).
    """
    why = """
        Autograd refuses to change a leaf tensor that requires grad in place:
        `RuntimeError: a leaf Variable that requires grad is being used in an
        in-place operation`.  Weight initialisation, manual SGD steps and
        weight clipping written this way crash the first time they run.
    """
    known_problems = """
        Grad mode is dynamic.  A method such as `reset_parameters(self)` that is
        only ever called from another module under `torch.no_grad()` is
        reported, since callers in other modules are not visible; add
        `@torch.no_grad()` to the method or `# noqa: GRD004`.  Augmented and
        item assignment on `x.weight` are reported only where `x` is known to be
        a module, because `.weight` is a common name for plain numbers too.
        Changes through `.data` or `.detach()` bypass autograd's check and are
        not reported.
        `nn.init.*_` functions disable grad themselves and are never reported.
    """
    options = ("no_grad_decorators",)
    fix_safety = """
        Opt-in (`flake8-gradmode --fix --unsafe-fixes`): the statement that
        makes the change, when it is a statement of its own, is wrapped in
        `with torch.no_grad():`, which is what PyTorch asks for.  It changes
        behaviour on purpose (the line stops raising) and only that line is
        wrapped: if more of the function should run without grad, widen the
        block yourself.  Not applied without `--unsafe-fixes`.
    """
    references = (
        "https://pytorch.org/docs/stable/notes/autograd.html#in-place-operations-with-autograd",
        "https://pytorch.org/docs/stable/generated/torch.no_grad.html",
    )

    VALID = (
        Valid(
            """
            import torch

            layer = torch.nn.Linear(2, 2)
            with torch.no_grad():
                layer.weight.fill_(1.0)
            """,
            checks=(Holds("bool((layer.weight == 1).all())", "the weight is set"),),
        ),
        Valid(
            """
            import torch

            model = torch.nn.Linear(2, 1)
            model(torch.randn(4, 2)).sum().backward()


            @torch.no_grad()
            def sgd_step(params, lr=0.1):
                for p in params:
                    p -= lr * p.grad


            sgd_step(list(model.parameters()))
            """,
            title="A manual optimizer step under a no_grad decorator",
        ),
        Valid(
            """
            import torch

            layer = torch.nn.Linear(2, 2)
            torch.nn.init.zeros_(layer.bias)
            layer.weight.data.normal_(0, 0.02)
            """,
            title="`nn.init` functions, and changes through `.data`",
        ),
        Valid(
            """
            import torch

            layer = torch.nn.Linear(2, 2)
            w = layer.weight.clone()
            w.fill_(0.0)
            """,
            title="A copy is not the parameter",
        ),
        Valid(
            """
            import torch

            fused = torch.nn.Linear(2, 2).requires_grad_(False)
            fused.weight.copy_(torch.eye(2))
            """,
            title="A module whose parameters were frozen first",
            checks=(Holds("bool((fused.weight == torch.eye(2)).all())", "the weight is set"),),
        ),
    )
    INVALID = (
        Invalid(
            """
            import torch

            layer = torch.nn.Linear(2, 2)
            layer.weight.fill_(1.0)
            """,
            at=((4, 0),),
            symptom=Raises("RuntimeError", "a leaf Variable that requires grad is being used in an in-place operation"),
        ),
        Invalid(
            """
            import torch

            model = torch.nn.Linear(2, 1)
            model(torch.randn(4, 2)).sum().backward()
            for p in model.parameters():
                p -= 0.1 * p.grad
            """,
            title="A manual SGD step",
            at=((6, 4),),
            symptom=Raises("RuntimeError", "a leaf Variable that requires grad is being used in an in-place operation"),
        ),
        Invalid(
            """
            import torch

            layer = torch.nn.Linear(3, 2)
            b = layer.bias.view(-1)
            b[:] += 1
            """,
            title="A view of a parameter",
            at=((5, 0),),
            symptom=Raises("RuntimeError", "a view of a leaf Variable that requires grad"),
        ),
        Invalid(
            """
            import torch

            w = torch.randn(3, 2, requires_grad=True)
            w[:, 0] = 0.0
            """,
            title="Item assignment on a leaf that requires grad",
            at=((4, 0),),
            symptom=Raises("RuntimeError", "a leaf Variable that requires grad"),
        ),
        Invalid(
            """
            import torch


            class Scale(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.alpha = torch.nn.Parameter(torch.ones(1))

                def reset(self):
                    self.alpha.fill_(1.0)


            Scale().reset()
            """,
            title="An attribute the class assigns from `nn.Parameter`",
            at=((10, 8),),
            symptom=Raises("RuntimeError", "a leaf Variable that requires grad"),
        ),
        Invalid(
            """
            import torch

            model = torch.nn.Linear(2, 1)
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            model(torch.randn(4, 2)).sum().backward()
            for group in opt.param_groups:
                for p in group["params"]:
                    p.add_(p.grad, alpha=-group["lr"])
            """,
            title="A hand-written optimizer step",
            at=((8, 8),),
            symptom=Raises("RuntimeError", "a leaf Variable that requires grad"),
        ),
    )

    # -- hooks -----------------------------------------------------------------

    def __init__(self, context) -> None:
        super().__init__(context)
        #: the expression statement being visited (``w.fill_(1)`` on a line of its own)
        self._statement: Optional[ast.Expr] = None

    def visit_Expr(self, node: ast.Expr) -> None:
        self._statement = node

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if not (isinstance(func, ast.Attribute) and facts.is_inplace_method(func.attr)):
            return
        base = facts.strip_views(self.context, func.value)
        if self._param(base, loose=True):
            stmt = self._statement if self._statement is not None and self._statement.value is node else None
            self._maybe_report(node, f"in-place `{func.attr}` on parameter `{self.code_of(base)}`", stmt)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        base = facts.strip_views(self.context, node.target)
        if self._param(base, loose=False):
            op = _AUG_OPS.get(type(node.op), "=")
            self._maybe_report(node, f"`{op}` on parameter `{self.code_of(base)}`", node)

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            if isinstance(target, ast.Subscript):
                base = facts.strip_views(self.context, target)
                if self._param(base, loose=False):
                    self._maybe_report(node, f"item assignment to parameter `{self.code_of(base)}`", node)
                    return

    # -- helpers -----------------------------------------------------------------

    def _param(self, base: ast.expr, loose: bool) -> bool:
        """Is ``base`` a parameter?  ``loose``: an in-place tensor method was
        called on it, so any ``x.weight``/``x.bias`` is a tensor."""
        if facts.classify(self.context, base) is facts.Kind.PARAM:
            return True
        if loose and isinstance(base, ast.Attribute) and base.attr in facts.PARAM_ATTRIBUTES:
            owner = base.value
            if isinstance(owner, ast.Name) and owner.id == "self":
                cls = self.context.current_class()
                return cls is None or base.attr not in cls.buffer_attrs
            return facts.classify(self.context, owner) is not facts.Kind.FROZEN
        return False

    def _maybe_report(self, node: ast.AST, what: str, statement: Optional[ast.stmt]) -> None:
        """Report ``node``; the opt-in fix wraps ``statement`` (the whole
        update, when it is a statement of its own) in ``no_grad``."""
        state, function = self.context.grad_here()
        message = f"{what} while grad is enabled raises RuntimeError; {_REMEDY}"
        fix = Fix("wrap-no-grad", statement, "{torch}.no_grad()", unsafe=True) if statement is not None else None
        if state is Grad.ENABLED:
            self.report(node, message, fix=fix)
        elif state is Grad.INHERITED:
            self.report(node, message, condition=_may_be_enabled(function), fix=fix)


def _may_be_enabled(function: Optional[object]):
    def condition() -> bool:
        return effective(Grad.INHERITED, function) in (Grad.ENABLED, Grad.INHERITED)  # type: ignore[arg-type]

    return condition
