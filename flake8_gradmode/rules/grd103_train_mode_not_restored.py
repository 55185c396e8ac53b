from __future__ import annotations

import ast
from typing import List, Optional, Set, Tuple

from flake8_gradmode import flow
from flake8_gradmode import facts
from flake8_gradmode.context import Fix
from flake8_gradmode.tracker import dotted
from flake8_gradmode.rule import Holds, Invalid, Rule, Valid


class TrainModeNotRestored(Rule):
    code = "GRD103"
    name = "train-mode-not-restored"
    triggers = ("eval",)
    summary = "training loop switches a model to eval mode and trains on without `.train()`"
    what = """
        Reports a call inside a training loop (a loop that runs a training step:
        `.backward()`, `optimizer.step()`, ...) that switches a model to eval
        mode, directly (`model.eval()`) or through a function of the module
        (`validate(model)`, `self.evaluate()`), when the loop reaches its next
        training step without switching back: no `.train()` later in the loop
        body or at the start of the next iteration, directly or in a function
        the loop calls.  Mid-epoch validation (`if step % k == 0: validate()`)
        counts too.
    """
    why = """
        After the first validation, the rest of training runs in eval mode:
        dropout is off and batch norm stops updating its statistics and uses
        the frozen ones.  Training still "works", so the damage shows only as a
        worse model.
    """
    known_problems = """
        Only switches and training steps this module can see are followed; a
        trainer object from another module that calls `.train()` for you is not
        visible, so the rule stays silent when it cannot see the training step.
        `.train(flag)` with a run-time flag counts as switching back.  Training
        in eval mode on purpose (frozen batch norm for fine-tuning) is reported;
        silence it with `# noqa: GRD103`.  Files that build no dropout or
        batch-norm layer and never call `.train()` are skipped: the mode makes
        no difference there.
    """
    fix_safety = """
        Opt-in (`flake8-gradmode --fix --unsafe-fixes`): `<model>.train()` is
        inserted once the evaluation is over: right after the call of the
        module's own function that switched the model (the model as the
        caller names it), or, for a direct `model.eval()` in the loop, at the
        end of its block (before a training step that follows in that same
        block).  It changes behaviour on purpose, so it is not applied without
        `--unsafe-fixes`; no fix is offered when the model cannot be named.
    """
    references = ("https://pytorch.org/docs/stable/generated/torch.nn.Module.html#torch.nn.Module.train",)

    VALID = (
        Valid(
            """
            import torch

            model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            data = [torch.randn(8, 4)]
            modes = []


            def validate(model):
                model.eval()
                with torch.no_grad():
                    for x in data:
                        model(x)


            for epoch in range(2):
                model.train()
                for x in data:
                    modes.append(model.training)
                    optimizer.zero_grad()
                    model(x).pow(2).mean().backward()
                    optimizer.step()
                validate(model)
            """,
            checks=(Holds("modes == [True, True]", "every epoch trains in training mode"),),
        ),
        Valid(
            """
            import torch

            model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))
            model.eval()
            with torch.no_grad():
                for x in [torch.randn(8, 4)]:
                    model(x)
            """,
            title="Inference-only scripts have no training loop",
        ),
    )
    INVALID = (
        Invalid(
            """
            import torch

            model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            data = [torch.randn(8, 4)]
            modes = []


            def validate(model):
                model.eval()
                with torch.no_grad():
                    for x in data:
                        model(x)


            model.train()
            for epoch in range(2):
                for x in data:
                    modes.append(model.training)
                    optimizer.zero_grad()
                    model(x).pow(2).mean().backward()
                    optimizer.step()
                validate(model)
            """,
            at=((23, 4),),
            symptom=Holds("modes == [True, False]", "the second epoch trains in eval mode"),
        ),
        Invalid(
            """
            import torch

            model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            modes = []
            model.train()
            for step in range(4):
                x = torch.randn(8, 4)
                modes.append(model.training)
                optimizer.zero_grad()
                model(x).pow(2).mean().backward()
                optimizer.step()
                if step % 2 == 1:
                    model.eval()
                    with torch.no_grad():
                        model(x)
            """,
            title="Mid-epoch validation",
            at=((14, 8),),
            symptom=Holds("modes == [True, True, False, False]", "training continues in eval mode"),
        ),
    )

    def finish(self) -> None:
        ctx = self.context
        if not ctx.flow.mode_matters:
            return
        reported: Set[int] = set()
        for loop in ctx.flow.loops:
            events = flow.mode_events(ctx, loop.scope, loop.seq, loop.end_seq)
            kinds = [kind for _, kind in events]
            if "eval" not in kinds or "step" not in kinds:
                continue
            n = len(events)
            for i, (site, kind) in enumerate(events):
                if kind != "eval" or site in reported:
                    continue
                for j in range(i + 1, i + n + 1):
                    nxt = events[j % n][1]
                    if nxt == "train":
                        break
                    if nxt == "step":
                        node = ctx.flow.nodes.get(site)
                        if node is not None:
                            reported.add(site)
                            self.report(
                                node,
                                f"`{self.code_of(node.func)}()` leaves the model in eval mode and the loop trains on "
                                "with dropout and batch norm frozen; call `.train()` before the next training step",
                                fix=self._fix(loop, node),
                            )
                        break

    # -- the opt-in fix ------------------------------------------------------------

    def _fix(self, loop: flow.Loop, call: ast.Call) -> Optional[Fix]:
        """``<model>.train()`` once the evaluation that needed eval mode is
        over: right after a call of the module's own function that switches
        and evaluates; for a direct ``model.eval()``, at the end of its block
        (before a training step that follows in that block)."""
        found = _block_of(loop.node, call)
        if found is None:
            return None
        block, index = found
        func = call.func
        if isinstance(func, ast.Attribute) and func.attr in ("eval", "train"):
            model = dotted(func.value)
            if model is None:
                return None
            later = block[index + 1:]
            step = next((s for s in later if self._trains(s)), None)
            if step is not None:
                return Fix("insert-before", step, f"{model}.train()", unsafe=True)
            return Fix("insert-after", block[-1], f"{model}.train()", unsafe=True)
        model = self._model_switched_by(call)
        if model is None:
            return None
        return Fix("insert-after", block[index], f"{model}.train()", unsafe=True)

    def _trains(self, stmt: ast.stmt) -> bool:
        return any(isinstance(n, ast.Call) and facts.is_training_step(self.context, n) for n in ast.walk(stmt))

    def _model_switched_by(self, call: ast.Call) -> Optional[str]:
        """The model a call of a module-local function leaves in eval mode, as
        the caller names it (``validate(net)`` with ``def validate(model):
        model.eval()`` is ``net``); None unless exactly one is switched."""
        ctx = self.context
        key = ctx.call_key(call.func)
        owners = set()
        params: List[List[str]] = []
        for scope in ctx.scopes_of(key) if key is not None else ():
            owners.update(ctx.flow.switch_keys.get(seq) for seq in scope.eval_switches)
            if scope.function is not None:
                args = scope.function.node.args
                params.append([a.arg for a in (*args.posonlyargs, *args.args)])
        if len(owners) != 1 or len(params) != 1:
            return None
        owner = owners.pop()
        if not owner:
            return None
        root, dot, rest = owner.partition(".")
        names = params[0]
        if root not in names or root == "self":
            return owner  # a module-level model, or one of ``self``'s
        position = names.index(root) - (1 if names and names[0] == "self" else 0)
        value = next((kw.value for kw in call.keywords if kw.arg == root), None)
        if value is None and 0 <= position < len(call.args):
            value = call.args[position]
        passed = dotted(value) if value is not None else None
        return None if passed is None else passed + dot + rest


def _block_of(root: ast.stmt, target: ast.AST) -> Optional[Tuple[List[ast.stmt], int]]:
    """The innermost block of statements inside ``root`` that holds the
    statement containing ``target``, and that statement's index in it."""
    found = None
    todo: List[ast.AST] = [root]
    while todo:
        node = todo.pop()
        for field in ("body", "orelse", "finalbody", "handlers"):
            block = getattr(node, field, None)
            if not isinstance(block, list):
                continue
            for i, stmt in enumerate(block):
                if any(n is target for n in ast.walk(stmt)):
                    if isinstance(stmt, ast.stmt):
                        found = (block, i)
                    todo.append(stmt)
    return found
