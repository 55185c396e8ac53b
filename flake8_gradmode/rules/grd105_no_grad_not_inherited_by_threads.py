from __future__ import annotations

from typing import List, Optional, Tuple

import ast

from flake8_gradmode import flow
from flake8_gradmode.tracker import Grad, call_args, dotted, effective, first_value
from flake8_gradmode.rule import Holds, Invalid, Rule, Valid

_THREAD_CLASSES = frozenset({"threading.Thread"})
_POOLS = frozenset(
    {
        "concurrent.futures.ThreadPoolExecutor",
        "concurrent.futures.thread.ThreadPoolExecutor",
        "multiprocessing.pool.ThreadPool",
        "multiprocessing.dummy.Pool",
    }
)
_POOL_METHODS = frozenset(
    {"submit", "map", "imap", "imap_unordered", "map_async", "apply", "apply_async", "starmap", "starmap_async"}
)


#: the last names of everything ``_handed_over`` recognises
_HANDOFF_NAMES = frozenset({name.rsplit(".", 1)[-1] for name in _THREAD_CLASSES}) | _POOL_METHODS


class NoGradNotInheritedByThreads(Rule):
    code = "GRD105"
    name = "no-grad-not-inherited-by-threads"
    triggers = ("Thread", "Pool", "dummy")
    summary = "a model handed to another thread from inside `no_grad`, where grad is on again"
    what = """
        Reports a model, a lambda that calls one, or a function of the module
        that calls one, handed to another thread from inside a grad-disabling
        context: `executor.submit(model, x)` and `executor.map(predict, xs)` on
        a `ThreadPoolExecutor`, `ThreadPool.map`/`apply_async`/...,
        `threading.Thread(target=...)`.  Silent when the function disables grad
        itself (decorator or `with` block around its model calls).
    """
    why = """
        Grad mode is thread-local.  The `with torch.no_grad():` around the
        submission only affects the submitting thread; the work runs in a
        worker thread with grad enabled, so every output carries a graph and
        keeps activations alive, exactly what the `no_grad` was written to
        prevent.
    """
    known_problems = """
        Executors are recognised when the module builds them (`pool =
        ThreadPoolExecutor()`, `with ThreadPoolExecutor() as pool:`).  Process
        pools are not reported.  A function from another module is not
        followed.
    """
    fix_safety = "No fix is applied."
    options = ("model_names", "no_grad_decorators")
    references = (
        "https://pytorch.org/docs/stable/notes/autograd.html#grad-modes",
    )

    VALID = (
        Valid(
            """
            import torch
            from concurrent.futures import ThreadPoolExecutor

            model = torch.nn.Linear(4, 2)


            @torch.no_grad()
            def predict(x):
                return model(x)


            with ThreadPoolExecutor(max_workers=2) as pool:
                outputs = list(pool.map(predict, [torch.randn(8, 4)] * 2))
            """,
            checks=(Holds("not outputs[0].requires_grad", "the worker's outputs carry no graph"),),
        ),
    )
    INVALID = (
        Invalid(
            """
            import torch
            from concurrent.futures import ThreadPoolExecutor

            model = torch.nn.Linear(4, 2)
            batches = [torch.randn(8, 4) for _ in range(2)]
            with torch.no_grad():
                with ThreadPoolExecutor(max_workers=2) as pool:
                    outputs = list(pool.map(model, batches))
            """,
            at=((8, 32),),
            symptom=Holds("outputs[0].requires_grad", "the worker's outputs carry a graph despite the no_grad"),
        ),
        Invalid(
            """
            import threading

            import torch

            model = torch.nn.Linear(4, 2)
            results = []


            def run_model():
                results.append(model(torch.randn(8, 4)))


            with torch.no_grad():
                worker = threading.Thread(target=run_model)
                worker.start()
                worker.join()
            """,
            at=((14, 37),),
            symptom=Holds("results[0].requires_grad", "the thread's output carries a graph despite the no_grad"),
        ),
    )

    def __init__(self, context) -> None:
        super().__init__(context)
        self._handoffs: List[Tuple[ast.expr, Grad, object, Optional[tuple]]] = []

    def visit_Call(self, node: ast.Call) -> None:
        target = self._handed_over(node)
        if target is None:
            return
        state, function = self.context.grad_here()
        if state in (Grad.DISABLED, Grad.INHERITED):
            # the module-local function it may be, keyed as the caller sees it
            self._handoffs.append((target, state, function, self.context.call_key(target)))

    def _handed_over(self, call: ast.Call) -> Optional[ast.expr]:
        ctx = self.context
        func = call.func
        if not ctx.imports.may_end_with(func, _HANDOFF_NAMES):
            return None  # neither a thread nor a pool method, whatever it resolves to
        qual = ctx.imports.resolve(func) or ""
        if qual in _THREAD_CLASSES:
            for name, value, _ in call_args(call):
                if name == "target":
                    return value
            return None
        func = call.func
        first = first_value(call)
        if not (isinstance(func, ast.Attribute) and func.attr in _POOL_METHODS and first is not None):
            return None
        if not isinstance(func.value, ast.Name):
            return None
        binding = ctx.lookup(func.value.id)
        value = getattr(binding, "value", None)
        if isinstance(value, ast.Call) and (ctx.imports.resolve(value.func) or "") in _POOLS:
            return first
        return None

    def finish(self) -> None:
        for target, state, function, key in self._handoffs:
            if state is Grad.INHERITED and effective(state, function) is not Grad.DISABLED:
                continue
            if self._runs_a_model_with_grad(target, key):
                self.report(
                    target,
                    f"`{self.code_of(target)}` runs in another thread, where grad is enabled again (grad mode is "
                    "thread-local); disable grad inside it, e.g. decorate it with `@torch.no_grad()`",
                )

    def _is_model(self, key: str) -> bool:
        probe = flow.ModelCall(ast.Call(func=ast.Name("probe"), args=[], keywords=[]), key, 0, Grad.ENABLED, None)
        return flow.is_model_call(self.context, probe)

    def _runs_a_model_with_grad(self, target: ast.expr, call_key: Optional[tuple]) -> bool:
        """A model, a lambda calling one, or a module-local function whose
        model calls run with the grad mode of whoever calls it."""
        ctx = self.context
        if isinstance(target, ast.Lambda):
            return any(self._is_model(key) for key in _callees(target.body))
        key = dotted(target)
        if key is None:
            return False
        if self._is_model(key):
            return True
        for scope in ctx.scopes_of(call_key) if call_key else ():
            for call in scope.model_calls:
                if call.state in (Grad.INHERITED, Grad.ENABLED) and flow.is_model_call(ctx, call):
                    return True
        return False


def _callees(expr: ast.expr) -> List[str]:
    """Dotted names of everything called in ``expr``."""
    found: List[str] = []
    for node in ast.walk(expr):
        if isinstance(node, ast.Call):
            key = dotted(node.func)
            if key is not None:
                found.append(key)
    return found
