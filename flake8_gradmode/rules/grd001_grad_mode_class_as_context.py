from __future__ import annotations

from typing import Optional

import ast

from flake8_gradmode import flow
from flake8_gradmode.context import Fix
from flake8_gradmode.rule import Holds, Invalid, Raises, Rule, Valid

_REAL = frozenset({"no_grad", "enable_grad", "inference_mode", "set_grad_enabled"})
# Normalised (lower case, no underscores) spellings of grad-mode APIs that do
# not exist.  ``zero_grad`` is a method of modules and optimizers, not of torch.
_MISSPELLED = {
    "nograd": "torch.no_grad()",
    "nograds": "torch.no_grad()",
    "zerograd": "torch.no_grad()",
    "disablegrad": "torch.no_grad()",
    "withoutgrad": "torch.no_grad()",
    "enablegrad": "torch.enable_grad()",
    "enablegrads": "torch.enable_grad()",
    "inferencemode": "torch.inference_mode()",
    "setgradenabled": "torch.set_grad_enabled(False)",
}
_CALL_FORM = {
    "no_grad": "()",
    "enable_grad": "()",
    "inference_mode": "()",
    "set_grad_enabled": "(False)",
}


class GradModeClassAsContext(Rule):
    code = "GRD001"
    name = "grad-mode-class-as-context"
    triggers = ("grad", "Grad", "inference", "Inference")
    summary = "grad-mode API used as a context manager or decorator without its call, or one that does not exist"
    what = """
        Reports `with torch.no_grad:` (and `inference_mode`, `enable_grad`,
        `set_grad_enabled`) written without the call, `@torch.set_grad_enabled`
        as a bare decorator, and misspelled grad-mode APIs used as a context
        manager or decorator: `torch.nograd()`, `torch.no_grads()`,
        `torch.zero_grad()`.
    """
    why = """
        `torch.no_grad` is a class.  The `with` statement needs an instance, so
        the bare class raises `TypeError` as soon as the line runs, and a
        misspelled name raises `AttributeError`.  Often the line sits in an
        evaluation path that runs only at the end of an epoch, so the crash
        comes hours into a training run.
    """
    known_problems = """
        Only names that resolve to `torch`'s own grad-mode APIs (through any
        import spelling) are checked.  A project's own wrappers are not known to
        be classes, so they are never reported.  The bare *decorator*
        `@torch.no_grad` is fine since PyTorch 2.0 and is not reported.
        Code that never runs raises nothing, and is not reported, as GRD003
        decides it: with the project index, a helper or a method nothing
        calls in a project that is no package, or a module that stops at its
        imports; with or without it, a statement after one of its function
        that always reads a name the module never binds.
    """
    fix_safety = """
        Safe for a missing call: `flake8-gradmode --fix` adds `()` (or
        `(False)` for `set_grad_enabled`), the only change that makes the line
        run as its author meant.  A misspelled name is not fixed: the message
        names the real API.
    """
    references = (
        "https://pytorch.org/docs/stable/generated/torch.no_grad.html",
        "https://pytorch.org/docs/stable/notes/autograd.html#locally-disabling-gradient-computation",
    )

    VALID = (
        Valid(
            """
            import torch

            model = torch.nn.Linear(4, 2)
            x = torch.randn(3, 4)
            with torch.no_grad():
                y = model(x)
            """,
            checks=(Holds("y.grad_fn is None", "no graph is built"),),
        ),
        Valid(
            """
            import torch

            model = torch.nn.Linear(4, 2)


            @torch.no_grad
            def predict(x):
                return model(x)


            y = predict(torch.randn(3, 4))
            """,
            title="The bare decorator works since PyTorch 2.0",
            checks=(Holds("y.grad_fn is None", "no graph is built"),),
        ),
        Valid(
            """
            import torch

            model = torch.nn.Linear(4, 2)
            with torch.set_grad_enabled(False):
                y = model(torch.randn(3, 4))
            """,
            checks=(Holds("y.grad_fn is None", "no graph is built"),),
        ),
    )
    INVALID = (
        Invalid(
            """
            import torch

            model = torch.nn.Linear(4, 2)
            x = torch.randn(3, 4)
            with torch.no_grad:
                y = model(x)
            """,
            at=((5, 5),),
            symptom=Raises("TypeError", "does not support the context manager protocol"),
        ),
        Invalid(
            """
            import torch
            from torch import inference_mode as im

            model = torch.nn.Linear(4, 2)
            with im:
                y = model(torch.randn(3, 4))
            """,
            title="Any import spelling",
            at=((5, 5),),
            symptom=Raises("TypeError", "does not support the context manager protocol"),
        ),
        Invalid(
            """
            import torch

            model = torch.nn.Linear(4, 2)
            with torch.nograd():
                y = model(torch.randn(3, 4))
            """,
            title="A grad-mode API that does not exist",
            at=((4, 5),),
            symptom=Raises("AttributeError", "has no attribute 'nograd'"),
        ),
        Invalid(
            """
            import torch

            model = torch.nn.Linear(4, 2)


            @torch.zero_grad()
            def predict(x):
                return model(x)
            """,
            at=((6, 1),),
            symptom=Raises("AttributeError", "has no attribute 'zero_grad'"),
        ),
        Invalid(
            """
            import torch


            @torch.set_grad_enabled
            def predict(model, x):
                return model(x)
            """,
            title="`set_grad_enabled` needs its argument, also as a decorator",
            at=((4, 1),),
            symptom=Raises("TypeError", "must be bool"),
        ),
    )

    # -- hooks -----------------------------------------------------------------

    def visit_With(self, node: ast.With) -> None:
        for item in node.items:
            self._check(item.context_expr, decorator=False)

    visit_AsyncWith = visit_With

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        for decorator in node.decorator_list:
            self._check(decorator, decorator=True)

    visit_ClassDef = visit_FunctionDef

    def _check(self, expr: ast.expr, decorator: bool) -> None:
        called = isinstance(expr, ast.Call)
        target = expr.func if isinstance(expr, ast.Call) else expr
        qual = self.context.imports.resolve(target)
        if qual is None:
            return
        runs = flow.unless_unreached(self.context, target)  # code that never runs raises nothing
        message = self._misspelled(qual, target)
        if message is not None:
            self.report(target, message, condition=runs)
            return
        if not called:
            message = self._uncalled(target, decorator)
            if message is not None:
                api = self.context.grad.grad_api(self.context.imports, target)
                argument = "False" if api == "set_grad_enabled" else ""
                self.report(target, message, condition=runs, fix=Fix("add-call", target, argument))

    def _misspelled(self, qual: str, target: ast.expr) -> Optional[str]:
        owner, _, last = qual.rpartition(".")
        if owner not in ("torch", "torch.autograd") or last in _REAL:
            return None
        fix = _MISSPELLED.get(last.lower().replace("_", ""))
        if fix is None:
            return None
        return f"`{self.code_of(target)}` is not a grad-mode API and raises AttributeError; use `{fix}`"

    def _uncalled(self, target: ast.expr, decorator: bool) -> Optional[str]:
        api = self.context.grad.grad_api(self.context.imports, target)
        if api not in _CALL_FORM:
            return None
        if decorator and api != "set_grad_enabled":
            return None  # bare @no_grad / @enable_grad / @inference_mode work
        written = self.code_of(target)
        how = "decorator" if decorator else "context manager"
        return (
            f"`{written}` is used as a {how} without calling it and raises TypeError; "
            f"write `{written}{_CALL_FORM[api]}`"
        )
