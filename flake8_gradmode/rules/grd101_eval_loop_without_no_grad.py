from __future__ import annotations

import ast
from typing import Optional, Set

from flake8_gradmode import flow
from flake8_gradmode.tracker import Grad, effective
from flake8_gradmode.context import Fix
from flake8_gradmode.rule import Holds, Invalid, Rule, Valid


def runs_with_grad(call: flow.ModelCall) -> bool:
    """Grad is (or may be, through unknown callers) enabled at this call."""
    if call.state is Grad.ENABLED:
        return True
    if call.state is Grad.INHERITED:
        return effective(Grad.INHERITED, call.function) in (Grad.ENABLED, Grad.INHERITED)
    return False


class EvalLoopWithoutNoGrad(Rule):
    code = "GRD101"
    name = "eval-loop-without-no-grad"
    triggers = ("val", "test", "eval", "dev", "predict", "infer", "generate", "embed", "encode", "extract", "sample", "serve")
    options = ("model_names", "eval_names", "eval_mode_helpers", "no_grad_decorators")
    summary = "evaluation loop or inference function runs a model with grad enabled"
    what = """
        Reports an evaluation loop whose model calls run with grad enabled.  An
        evaluation loop is a `for`/`while` loop that calls a model, runs no
        training step (`.backward()`, `optimizer.step()`, `autograd.grad`, also
        through a function of the module it calls) and shows evaluation intent:
        it iterates data named like `val`/`valid`/`test`/`eval`/`dev`, it sits in
        a function named like `evaluate`/`validate`/`test`/`predict`/`infer`/
        `generate`, or it follows a `.eval()` call in the same function.  An
        inference function counts too: a function named like
        `predict`/`infer`/`embed`/`encode`/`extract`/`generate`/`sample`/`serve`
        that calls a model after putting it in eval mode (in the function, or
        in its class's `__init__`).  One finding per loop, at the loop, or at
        the first model call of an inference function.

        A model call is a call of `self` inside an `nn.Module` subclass, of a
        name the module shows to be a model (`.eval()`, `.train()`,
        `.parameters()`, `.to()`, `.cuda()` ... called on it, built from an
        `nn.Module` subclass), or of a name like `model`, `net`, `encoder`,
        `generator`, `netG`, `resnet` (see Options).
    """
    why = """
        With grad enabled every forward pass records an autograd graph and keeps
        the activations it needs.  Outputs that are collected keep their whole
        graph alive: memory grows batch after batch, large evaluations run out
        of memory, and inference is slower.  Projects that fixed this report
        evaluation memory dropping by more than half (one from 50 GB to 19 GB).
        `model.eval()` does not help: it only changes dropout and batch norm.
    """
    known_problems = """
        Grad mode is dynamic.  A grad-disabling context anywhere in the module
        that runs the loop is seen (the function, its decorators, every
        module-local caller), but a caller in another module is not: a function
        whose callers are all elsewhere is reported even if they disable grad.
        Add `@torch.no_grad()` to it, which is cheap and documents the intent.
        `set_grad_enabled(<expression>)` is taken as "might be disabled" and
        keeps the rule silent.  Framework hooks (`validation_step`,
        `test_step`, `predict_step` and their epoch hooks, `prediction_step`)
        and functions handed to ignite's `Engine`/evaluators are never reported,
        nor are pytest test functions in test files.  Model calls are found by
        name and by evidence in the same file, so a model called through an
        unusual name is missed: add it with `--gradmode-model-names`.
    """
    fix_safety = """
        Opt-in (`flake8-gradmode --fix --unsafe-fixes`): a function that is
        all evaluation (it runs no training step and never switches a model
        to training mode, directly or through the module's own functions) is
        decorated with `@torch.no_grad()`; any other evaluation loop is
        wrapped in `with torch.no_grad():`.  It changes behaviour on purpose:
        outputs no longer carry `grad_fn`, so code that later calls
        `.backward()` through them would fail, which is why it is not applied
        without `--unsafe-fixes`.
    """
    references = (
        "https://pytorch.org/docs/stable/generated/torch.no_grad.html",
        "https://pytorch.org/docs/stable/notes/autograd.html#locally-disabling-gradient-computation",
    )

    VALID = (
        Valid(
            """
            import torch

            model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))
            val_loader = [torch.randn(8, 4) for _ in range(3)]
            model.eval()
            outputs = []
            with torch.no_grad():
                for x in val_loader:
                    outputs.append(model(x))
            """,
            checks=(Holds("outputs[0].grad_fn is None", "no graph is kept"),),
        ),
        Valid(
            """
            import torch

            model = torch.nn.Linear(4, 2)


            @torch.inference_mode()
            def evaluate(loader):
                model.eval()
                return [model(x) for x in loader] + [model(x) for x in loader]


            @torch.no_grad()
            def predict_all(loader):
                model.eval()
                preds = []
                for x in loader:
                    preds.append(model(x).argmax(1))
                return preds


            outputs = predict_all([torch.randn(8, 4)])
            """,
            title="A grad-disabling decorator",
            checks=(Holds("not outputs[0].requires_grad", "no graph is kept"),),
        ),
        Valid(
            """
            import torch


            def validate(model, loader):
                model.eval()
                outputs = []
                for x in loader:
                    outputs.append(model(x))
                return outputs


            model = torch.nn.Linear(4, 2)
            with torch.no_grad():
                outputs = validate(model, [torch.randn(8, 4)])
            """,
            title="Every caller in the module disables grad",
            checks=(Holds("outputs[0].grad_fn is None", "no graph is kept"),),
        ),
        Valid(
            """
            import torch

            model = torch.nn.Linear(4, 2)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            loaders = {"train": [torch.randn(8, 4)], "val": [torch.randn(8, 4)]}
            for phase in ["train", "val"]:
                model.train(phase == "train")
                for x in loaders[phase]:
                    with torch.set_grad_enabled(phase == "train"):
                        loss = model(x).pow(2).mean()
                        if phase == "train":
                            optimizer.zero_grad()
                            loss.backward()
                            optimizer.step()
            """,
            title="The tutorial's phase loop: grad mode depends on the phase",
        ),
        Valid(
            """
            import torch

            model = torch.nn.Linear(4, 2)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            val_loader = [torch.randn(8, 4)]
            model.eval()
            for x in val_loader:
                loss = model(x).pow(2).mean()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            """,
            title="A loop that trains is not an evaluation loop (test-time adaptation)",
        ),
        Valid(
            """
            import torch


            class LitClassifier(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.model = torch.nn.Linear(4, 2)

                def validation_step(self, batch, batch_idx):
                    for chunk in batch.split(2):
                        self.model(chunk)
            """,
            title="Framework hooks run under no_grad already (Lightning's validation_step)",
        ),
    )
    INVALID = (
        Invalid(
            """
            import torch

            model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))
            val_loader = [torch.randn(8, 4) for _ in range(3)]
            model.eval()
            outputs = []
            for x in val_loader:
                outputs.append(model(x))
            """,
            at=((7, 0),),
            symptom=Holds("outputs[0].grad_fn is not None", "every collected output keeps its autograd graph"),
        ),
        Invalid(
            """
            import torch


            def evaluate(model, batches):
                model.eval()
                scores = []
                for x in batches:
                    scores.append(model(x).softmax(-1))
                return scores


            scores = evaluate(torch.nn.Linear(4, 2), [torch.randn(8, 4)])
            """,
            title="A function named like evaluation",
            at=((7, 4),),
            symptom=Holds("scores[0].grad_fn is not None", "every collected output keeps its autograd graph"),
        ),
        Invalid(
            """
            import torch


            class Embedder:
                def __init__(self):
                    self.encoder = torch.nn.Linear(4, 3)
                    self.encoder.eval()

                def embed(self, x):
                    return self.encoder(x)


            vec = Embedder().embed(torch.randn(2, 4))
            """,
            title="An inference function (eval mode set in `__init__`)",
            at=((10, 15),),
            symptom=Holds("vec.grad_fn is not None", "the returned embedding carries a graph"),
        ),
        Invalid(
            """
            import torch

            net = torch.nn.Linear(4, 4)
            net.eval()
            x = torch.randn(1, 4)
            steps = 0
            while steps < 3:
                x = net(x).tanh()
                steps += 1
            """,
            title="A `while` loop after `.eval()`",
            at=((7, 0),),
            symptom=Holds("x.grad_fn is not None", "the output carries the graph of all steps"),
        ),
    )

    def finish(self) -> None:
        ctx = self.context
        reported: Set[int] = set()
        covered: Set[int] = set()
        for ev in flow.evaluation_loops(ctx):
            if ev.loop.inside(reported):
                continue
            bad = [c for c in ev.model_calls if runs_with_grad(c)]
            if bad:
                reported.add(id(ev.loop))
                covered.update(id(c) for c in ev.loop.model_calls)
                self.report(
                    ev.loop.node,
                    f"evaluation loop runs `{bad[0].key}` with grad enabled, so every batch builds an autograd graph; "
                    "wrap it in `with torch.no_grad():`",
                    fix=self._fix(ev.loop.scope, ev.loop.node),
                )
        for scope, calls in flow.inference_functions(ctx):
            bad = [c for c in calls if runs_with_grad(c) and id(c) not in covered]
            if bad:
                name = scope.function.name if scope.function else "?"
                self.report(
                    bad[0].node,
                    f"inference function `{name}` runs `{bad[0].key}` with grad enabled, so each call builds an "
                    "autograd graph; decorate it with `@torch.no_grad()`",
                    fix=self._fix(scope, None),
                )

    def _fix(self, scope: flow.Scope, loop: Optional[ast.stmt]) -> Optional[Fix]:
        """Decorate the function when all of it is evaluation (it trains
        nothing and never switches to training mode); otherwise wrap the loop."""
        fn = scope.function
        if fn is not None and fn.name not in ("__init__", "forward") and not flow.trains(self.context, scope):
            if not scope.train_switches and not scope.maybe_train_switches:
                return Fix("decorate-no-grad", fn.node, "{torch}.no_grad()", unsafe=True)
        if loop is None:
            return None
        return Fix("wrap-no-grad", loop, "{torch}.no_grad()", unsafe=True)
