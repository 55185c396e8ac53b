from __future__ import annotations

from typing import List, Tuple

import ast

from flake8_gradmode import flow, names
from flake8_gradmode.rule import Holds, Invalid, Rule, Valid


class NoGradWhereInferenceModeFits(Rule):
    code = "GRD903"
    name = "no-grad-where-inference-mode-fits"
    default_on = False
    triggers = ("no_grad",)
    summary = "`torch.no_grad()` in a pure inference function, where `torch.inference_mode()` fits"
    what = """
        Reports `torch.no_grad()` (as a decorator or a `with` block) in a
        function named like evaluation or inference (`evaluate`, `validate`,
        `test`, `predict`, `infer`, ...) that runs no training step.
    """
    why = """
        `torch.inference_mode()` disables grad like `no_grad` and also skips
        view tracking and version-counter bumps, so pure inference runs faster.
        Its tensors cannot be used in autograd later, which is why this is only
        a hint, and off by default: check that the results are not fed back
        into training (pseudo-labels used in a loss, cached features that get
        fine-tuned).
    """
    known_problems = """
        Whether results escape into later autograd use is not checked.  Opt in
        with `extend-select = GRD903` (or `GRD9` for every hint).
    """
    fix_safety = "No fix is applied: the change is only safe when no result is used by autograd later."
    references = ("https://pytorch.org/docs/stable/generated/torch.autograd.grad_mode.inference_mode.html",)

    VALID = (
        Valid(
            """
            import torch

            model = torch.nn.Linear(4, 2)


            @torch.inference_mode()
            def predict(batches):
                model.eval()
                return [model(x) for x in batches]


            preds = predict([torch.randn(8, 4)])
            """,
            checks=(Holds("preds[0].is_inference()", "the outputs are inference tensors"),),
        ),
    )
    INVALID = (
        Invalid(
            """
            import torch

            model = torch.nn.Linear(4, 2)


            @torch.no_grad()
            def predict(batches):
                model.eval()
                return [model(x) for x in batches]


            preds = predict([torch.randn(8, 4)])
            """,
            at=((6, 1),),
            symptom=Holds(
                "not preds[0].is_inference()",
                "the outputs are ordinary tensors with the view and version tracking inference mode skips",
            ),
        ),
    )

    def __init__(self, context) -> None:
        super().__init__(context)
        self._sites: List[Tuple[ast.AST, object]] = []

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        for deco in node.decorator_list:
            if self._is_no_grad(deco):
                self._sites.append((deco, node))

    def visit_With(self, node: ast.With) -> None:
        fn = self.context.grad.function
        if fn is None:
            return
        for item in node.items:
            if self._is_no_grad(item.context_expr):
                self._sites.append((item.context_expr, fn.node))

    visit_AsyncWith = visit_With

    def _is_no_grad(self, expr: ast.expr) -> bool:
        target = expr.func if isinstance(expr, ast.Call) else expr
        return self.context.grad.grad_api(self.context.imports, target) == "no_grad"

    def finish(self) -> None:
        ctx = self.context
        scopes = {id(s.function.node): s for s in ctx.flow.all_scopes if s.function is not None}
        for node, fn_node in self._sites:
            scope = scopes.get(id(fn_node))
            if scope is None or scope.function is None:
                continue
            name = scope.function.name
            if not (names.says_eval_function(name) or names.says_inference_function(name)):
                continue
            if flow.trains(ctx, scope) or flow.is_hook(scope, ctx):
                continue
            self.report(node, "`torch.no_grad()` around pure inference; `torch.inference_mode()` is faster here")
