from __future__ import annotations

import ast
from typing import FrozenSet, Iterator, List, Optional, Sequence, Set

from flake8_gradmode import flow, modes
from flake8_gradmode.context import Fix
from flake8_gradmode.names import tokens
from flake8_gradmode.rule import Holds, Invalid, Rule, Valid
from flake8_gradmode.tracker import bound_arguments, dotted, is_const, param_defaults


class EvalLoopWithoutEvalMode(Rule):
    code = "GRD102"
    name = "eval-loop-without-eval-mode"
    triggers = ("val", "test", "eval", "dev", "predict", "infer", "generate")
    options = ("model_names", "eval_names", "eval_mode_helpers")
    summary = "evaluation loop runs a model that was never put in eval mode"
    what = """
        Reports an evaluation loop (see GRD101: a loop that calls a model,
        directly or through a function, method or closure of the module,
        trains nothing, and iterates evaluation data or sits in a function
        named like evaluation or decoding) when nothing switches a model to
        eval mode before it: no `.eval()` or `.train(False)` earlier in the
        function, in a module-local function it calls before the loop (or in
        the helper that runs the model, before the call; or, when that helper
        is reached through others, in every module-local caller of it before
        the call: `predict()` -> `_predict()` calling `model.eval()` before
        `self._generate(model, ...)`), at the top of the
        loop body before its first model call (or, for each model, in the
        body before its call, a switch of the model or of one that holds it,
        `net.eval()` before `net.encoder(x)`, after helpers that set their own model's mode:
        `latent = encode(encoder, x)`, `decoder.eval()`, `decoder(latent)`), where
        the model is built (`model = Net().to(device).eval()`; or loaded by
        transformers' or diffusers' `from_pretrained`, which switches it to
        eval mode, in the function, its module-level caller, or a function
        of the module that only returns such a model; or built from a
        class of the module whose `__init__` switches the models it holds to
        eval mode, an ensemble of folds that trains nothing and has no
        mode-dependent part of its own), in the class's
        `__init__`, or before every module-local call of the function (a
        call that leaves the parameters holding the models at their `None`
        default, `visualize()` of `def visualize(net=None, coach=None)`,
        runs no model and does not count); a model handed in as a parameter
        counts as switched when every caller, all in its module (with the
        project index, none in another), switched the
        model it hands over by name (`global_model.eval()`, then
        `evaluate(global_model, corrector, data)`), hands it to no other
        call (but to a module function that switches no mode and hands it
        on to none) and never switches it back, whatever else the caller trains
        in between; the finding names a model of the loop that is not so
        switched.
        `torch.no_grad()` does not count: it does not change the mode.
        A loop that runs its model only through module-local helpers named
        like prediction or evaluation (`predict_img(net, img)`), each turning
        grad off around the model itself, is an evaluation loop too when the
        function (or script) built that model once before it, from a class
        with dropout or batch norm (with the project index, a project class
        whose modules name them).
    """
    why = """
        A model in training mode keeps dropout active and lets batch norm use
        the statistics of the current batch (and update its running averages).
        Evaluation results are then noisy, usually worse, and change from run
        to run; the model itself drifts while it is being evaluated.
    """
    known_problems = """
        The rule only speaks when the file shows that the mode matters: it
        builds dropout, batch-norm or transformer layers (or a torchvision
        model), reads `self.training`, or switches models with `.train()`
        itself (not when it builds its networks from `torch.nn` layers none
        of which depends on the mode, and imports no model library or model
        module; nor, with the project index, in a project that is no package
        none of whose modules names a dropout, normalisation, recurrent or
        attention layer, reads `.training`, overrides `train`/`eval` or
        imports from outside but `torch`, `numpy`, `scipy`, the standard
        library and packages that bring no model, such as `tqdm`, `pandas`
        or torchvision's datasets), or when it imports or defines a helper
        that switches dropout off (`disable_dropout_in_model(model)`).  A model without such layers
        behaves the same in both modes, so a missing `.eval()` is then
        harmless.  It also only speaks when it
        can see where the loop's function is called from, or that the model
        is built right there.  A function that takes the model as an argument
        and is only called from other modules (or from nowhere the project
        shows: a notebook, a user) is not reported, since its callers may
        well call `.eval()`, unless one of them hands the model over in
        training mode: a function (not a unit test) that switched it with
        `.train()`, or that trains it, before the call and calls `.eval()`
        nowhere.  That caller also shows that the mode matters.  So does,
        for a module function named like testing or validation
        (`test_model(model, loader)`) that no code of the project calls (an
        API), a function of the same module that switches the model it is
        handed to training mode itself and trains it (`train_model(model,
        ...)` calling `model.train()`): after training, the model is in
        training mode.  Any `.eval()` before the
        loop counts, whichever model it is called on, except when the loop
        also runs another model the function is handed and the module
        switches to training mode elsewhere (`model.eval()`, then
        `predictor(model(x))` with `predictor.train()` in the training code).
        A `.train()` of the function's own, with no training step (direct or
        through a function it calls) between it and the loop, is taken as
        chosen for the loop (a detector returns its validation losses only in
        training mode) and not reported; so is such a `.train()` in a
        module-local caller, before it calls (directly or through other
        functions of the module) the function with the loop again and again
        with the same arguments (`for _ in range(n):`): Monte Carlo dropout
        samples, drawn in training mode on purpose.  So is a loop in a
        function whose name says Monte Carlo (`mc_dropout_eval`,
        `monte_carlo_predict`), or one that runs the model only through
        helpers so named (`mc_dropout_predict(model, x)`).  A loop that runs the
        model only through a helper that sets the mode itself before the call
        (`model.train()` to recalibrate batch norm, then `model.eval()`), or
        before its call of the function that runs the model (`val_step`:
        `model.eval()`, then `compute_loss(...)`), is not reported: an
        `.eval()` before the loop would change nothing.  Nor a loop in a
        function named like inference whose result its caller backpropagates
        or hands to a function of its module that runs a training step
        (`fake = self.generate_pair(...)`, then `self.update_critic(fake)`):
        it is part of training, in training mode on purpose.
        A loop whose model is one `torch.nn` layer its function built that
        computes the same in both modes (`probe = nn.Linear(d, k)`, a
        convolution, an embedding), or an `nn.Sequential` of such layers
        and activations, is not reported, nor one whose every
        model call hands the forward a literal mode (`model(x, _eval=True)`,
        `net(x, training=False)`, `model(x, mode="test")`): the forward
        sets the mode, or runs its layers in it, itself.  A `.train()` on
        layers drawn one by one from a model (`for m in model.modules(): if
        ...Dropout...: m.train()`, after `model.eval()`: dropout turned on
        for Monte Carlo sampling) switches those layers, not the model, which
        stays in eval mode.  With the project
        index, neither is a loop whose models are built (`model = Net(...)`
        in its function, or at the top of the module for a global its
        function does not bind, or every `self.model = Net(...)` of its class, from
        settings and numbers, not from a module handed in) from a project
        class whose modules, and the project modules they import, name no
        dropout, normalisation, recurrent or attention layer, read no
        `.training`, override no `train`/`eval` and import nothing but
        `torch`, `numpy`, `scipy` and the standard library: such a model
        computes the same in both modes.  Nor, index or not, is a loop whose
        models are all built from, or passed in annotated with (`encoder:
        EncoderRNN`), or handed, by every call in the module (with the
        index, which says no other module calls; through up to three calls,
        `evaluate(encoder, ...)` inside `calculate_wer(encoder, ...)`, or a
        module global bound once that the calling function reads,
        `evaluate(encoder1, ...)` inside `show()`), as built from, a class of the module itself whose only base is
        `nn.Module`, whose layers are `torch.nn` layers the same in both
        modes (a recurrent one only without `dropout`), containers of them
        built in place (`nn.ModuleList()`, then `.append(nn.Linear(...))`),
        graph convolutions of PyTorch Geometric given no dropout
        (`GATConv(d, h, heads=2)`, `RGCNConv`, `HANConv`, `SAGEConv`) or
        such classes, built from numbers (a name the module's top level
        binds only to literals counts), and which names no dropout, batch or instance normalisation, reads no
        `training` and overrides no `train`/`eval`, whatever other classes
        of the module hold.  Nor is a loop that runs a
        `diffusers` pipeline (loaded, or annotated `...Pipeline` in a module
        that imports `diffusers`) of which the module switches to training
        mode only the `unet` or the `vae` (`self.model.unet.train()`):
        loaded pipelines start in eval mode, and those parts are built
        without dropout or batch norm by default; nor one that runs only
        pipelines its module loads (`StableDiffusionPipeline.from_pretrained(
        path, vae=vae, unet=unet)`) handing in no model but a `unet` or a
        `vae` and setting no part afterwards.  A pipeline built with
        dropout in its unet is missed.
        A call of a module function or method that switches by its
        argument (`self.set_mode("valid")` of `if mode in ["eval", "valid"]:
        self.net.eval()`) counts with the switch of the branches the literal
        it is handed takes.
        A model whose result the loop binds to a name that says loss and
        reads as a mapping (`loss_dict = model(images, targets)`, then
        `loss_dict.values()` or `loss_dict["loss_mask"]`) is left in training
        mode on purpose: torchvision's detection models return their losses
        only there.
        Loops in a method of an
        `nn.Module` subclass, framework hooks, timing loops, loops that build
        a new untrained model on every pass and loops whose
        only sign of evaluation is what they do with the outputs are left to
        GRD101, and so are the functions of a script that nothing runs (see
        GRD101).  A project helper that switches to eval mode can be declared
        with `--gradmode-eval-mode-helpers`.
    """
    fix_safety = """
        Opt-in (`flake8-gradmode --fix --unsafe-fixes`): `<model>.eval()` is
        inserted right before the loop, on the model the finding names.  It
        changes behaviour on purpose (dropout off, batch norm on its running
        statistics), and the model stays in eval mode after the loop: if
        training follows in the same function without its own
        `<model>.train()`, add one (GRD103 reports a training loop that needs
        it).  Not applied without `--unsafe-fixes`.
    """
    references = ("https://pytorch.org/docs/stable/generated/torch.nn.Module.html#torch.nn.Module.eval",)

    VALID = (
        Valid(
            """
            import torch
            from torch import nn


            class Task:
                def __init__(self, net, optimizer):
                    self.net = net
                    self.optimizer = optimizer

                def set_mode(self, mode):
                    self.mode = mode
                    if mode in ["eval", "valid", "test"]:
                        self.net.eval()
                    elif mode in ["train"]:
                        self.net.train()

                def do_train(self, loader):
                    self.set_mode("train")
                    for x, y in loader:
                        self.optimizer.zero_grad()
                        nn.functional.cross_entropy(self.net(x), y).backward()
                        self.optimizer.step()

                def do_validation(self, val_loader):
                    self.set_mode("valid")
                    losses = []
                    with torch.no_grad():
                        for x, y in val_loader:
                            losses.append(nn.functional.cross_entropy(self.net(x), y).item())
                    return losses


            net = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), nn.Linear(4, 2))
            task = Task(net, torch.optim.SGD(net.parameters(), lr=0.1))
            batches = [(torch.randn(8, 4), torch.randint(0, 2, (8,)))]
            for epoch in range(2):
                task.do_train(batches)
                task.do_validation(batches)
            """,
            title="A method that sets the mode from its argument, handed the evaluation's name",
            checks=(Holds("not net.training", "`set_mode(\"valid\")` put the model in eval mode before the loop"),),
        ),
        Valid(
            """
            import torch


            class Detector(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.head = torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.Dropout(0.5))

                def forward(self, images, targets=None):
                    out = self.head(images)
                    if self.training:
                        return {"loss_box": (out - targets).pow(2).mean(), "loss_score": out.abs().mean()}
                    return out


            model = Detector()
            val_loader = [(torch.randn(8, 4), torch.randn(8, 2))] * 2
            val_losses = []
            with torch.no_grad():
                for images, targets in val_loader:
                    loss_dict = model(images, targets)
                    val_losses.append(sum(loss for loss in loss_dict.values()).item())
            """,
            title="A validation loss from a model that returns its losses only in training mode",
            checks=(Holds("isinstance(loss_dict, dict) and len(val_losses) == 2",
                          "in eval mode the model would hand back its outputs, not the losses the loop reads"),),
        ),
        Valid(
            """
            import torch

            model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))
            test_loader = [torch.randn(8, 4) for _ in range(3)]
            model.eval()
            with torch.no_grad():
                for x in test_loader:
                    model(x)
            """,
            checks=(Holds("not model.training", "the model is in eval mode"),),
        ),
        Valid(
            """
            import torch


            def validate(model, loader):
                with torch.no_grad():
                    for x in loader:
                        model(x)


            model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))
            model.eval()
            validate(model, [torch.randn(8, 4)])
            """,
            title="Every module-local caller switches to eval mode first",
            checks=(Holds("not model.training", "the model is in eval mode"),),
        ),
        Valid(
            """
            import torch


            def evaluate(loader):
                is_training = False
                model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))
                model.train(is_training)
                with torch.no_grad():
                    for x in loader:
                        model(x)
                return model


            model = evaluate([torch.randn(8, 4)])
            """,
            title="`model.train(flag)` with a flag the function set to `False`",
            checks=(Holds("not model.training", "the model is in eval mode"),),
        ),
        Valid(
            """
            import torch


            def train_epoch(model, optimizer, loader):
                model.train()
                for x in loader:
                    optimizer.zero_grad()
                    model(x).pow(2).mean().backward()
                    optimizer.step()


            def validate(model, loader):
                with torch.no_grad():
                    for x in loader:
                        model(x)


            model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            data = [torch.randn(8, 4)]
            for epoch in range(2):
                train_epoch(model, optimizer, data)
                validate(model.eval(), data)
            """,
            title="The caller hands the model over switched to eval mode (`eval()` returns the module)",
            checks=(Holds("not model.training", "validation runs in eval mode"),),
        ),
        Valid(
            """
            import torch


            def evaluate(model, loader):
                with torch.no_grad():
                    return [model(x).argmax(1) for x in loader]


            def test(model, loader):
                with torch.no_grad():
                    for x in loader:
                        model(x)
            """,
            title="Callers in other modules are not guessed",
        ),
        Valid(
            """
            import torch


            def predict(model, x):
                model.eval()
                return model(x)


            model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))
            test_loader = [torch.randn(8, 4)]
            with torch.no_grad():
                for x in test_loader:
                    predict(model, x)
            """,
            title="The helper the loop calls switches to eval mode itself",
            checks=(Holds("not model.training", "the model is in eval mode"),),
        ),
        Valid(
            """
            import torch


            class Net(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.body = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))

                def forward(self, x, evaluating=False):
                    self.train(not evaluating)
                    return self.body(x)


            model = Net()
            test_loader = [torch.randn(8, 4)]
            with torch.no_grad():
                for x in test_loader:
                    model(x, evaluating=True)
            """,
            title="The loop tells the forward the mode, and the forward sets it",
            checks=(Holds("not model.training", "the forward switched the model to eval mode"),),
        ),
        Valid(
            """
            import torch


            class Folds(torch.nn.Module):
                def __init__(self, states):
                    super().__init__()
                    self.models = []
                    for state in states:
                        m = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))
                        m.load_state_dict(state)
                        self.models.append(m)
                    for m in self.models:
                        m.eval()

                def forward(self, x):
                    return torch.stack([m(x) for m in self.models]).mean(0)


            states = [torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5)).state_dict()]
            model = Folds(states)
            test_loader = [torch.randn(8, 4)]
            with torch.no_grad():
                for x in test_loader:
                    model(x)
            """,
            title="An ensemble that switches the models it holds to eval mode when it is built",
            checks=(Holds("not any(m.training for m in model.models)", "every model the ensemble runs is in eval mode"),),
        ),
        Valid(
            """
            import torch


            def mc_dropout_predict(model, x, n_samples=50):
                with torch.no_grad():
                    samples = torch.stack([model(x) for i in range(n_samples)])
                return samples.mean(0), samples.std(0)


            model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Dropout(0.5), torch.nn.Linear(16, 1))
            test_loader = [torch.randn(8, 4)]
            bands = []
            for x in test_loader:
                mean, spread = mc_dropout_predict(model, x)
                bands.append(spread)
            """,
            title="Monte Carlo dropout: a helper named for it samples with dropout on",
            checks=(Holds("bool(bands[0].min() > 0)", "dropout on: the samples spread into an uncertainty band"),),
        ),
        Valid(
            """
            import torch

            model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.BatchNorm1d(16), torch.nn.Dropout(0.5),
                                        torch.nn.Linear(16, 1))


            def enable_dropout(model):
                for m in model.modules():
                    if m.__class__.__name__.startswith("Dropout"):
                        m.train()


            model.eval()
            enable_dropout(model)
            test_loader = [torch.randn(8, 4)]
            predictions = []
            with torch.no_grad():
                for x in test_loader:
                    predictions.append(model(x))
            """,
            title="Dropout layers turned back on one by one after `.eval()` (Monte Carlo sampling)",
            checks=(Holds("not model[1].training and model[2].training",
                          "batch norm stays in eval mode; only dropout is on, on purpose"),),
        ),
    )
    INVALID = (
        Invalid(
            """
            import torch

            model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))
            test_loader = [torch.randn(8, 4) for _ in range(3)]
            with torch.no_grad():
                for x in test_loader:
                    model(x)
            """,
            at=((6, 4),),
            symptom=(
                Holds("model.training", "the model is still in training mode"),
                Holds(
                    "not torch.equal(model(test_loader[0]), model(test_loader[0]))",
                    "dropout makes two passes over the same batch differ",
                ),
            ),
        ),
        Invalid(
            """
            import torch


            def train_epoch(model, optimizer, loader):
                model.train()
                for x in loader:
                    optimizer.zero_grad()
                    model(x).pow(2).mean().backward()
                    optimizer.step()


            def validate(model, loader):
                with torch.no_grad():
                    for x in loader:
                        model(x)


            model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            data = [torch.randn(8, 4)]
            for epoch in range(2):
                train_epoch(model, optimizer, data)
                validate(model, data)
            """,
            title="The module's only caller never switches to eval mode",
            at=((14, 8),),
            symptom=Holds("model.training", "validation runs in training mode"),
        ),
        Invalid(
            """
            import torch


            def main():
                model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))
                test_batches = [torch.randn(8, 4)]

                def evaluate():
                    with torch.no_grad():
                        return [predict(x) for x in test_batches] + [predict(x) for x in test_batches]

                def evaluate_loop():
                    outputs = []
                    with torch.no_grad():
                        for x in test_batches:
                            outputs.append(predict(x))
                    return outputs

                def predict(x):
                    return model(x)

                evaluate_loop()
                return model


            model = main()
            """,
            title="The model runs one call away, in a sibling closure",
            at=((15, 12),),
            symptom=Holds("model.training", "the evaluation runs in training mode"),
        ),
        Invalid(
            """
            import torch


            class Net(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.body = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4))

                def forward(self, x):
                    return self.body(x)


            def predict_image(net, image):
                with torch.no_grad():
                    return net(image)


            net = Net()
            net.load_state_dict(Net().state_dict())
            masks = []
            for image in [torch.randn(2, 4), torch.randn(2, 4)]:
                masks.append(predict_image(net, image))
            """,
            title="A script runs its model through a prediction helper that turns grad off itself",
            at=((21, 0),),
            symptom=Holds("net.training", "prediction runs in training mode"),
        ),
    )

    def finish(self) -> None:
        ctx = self.context
        matters = flow.mode_matters(ctx)
        reported: Set[int] = set()
        for ev in flow.evaluation_loops(ctx):
            loop = ev.loop
            if ev.intent in ("eval-mode", "evidence") or loop.inside(reported):
                continue
            if any(isinstance(c, flow.ElsewhereCall) for c in ev.model_calls):
                continue  # the model runs in another module, which may switch it itself
            if ev.model_calls and not ev.paths and all(_plain_layer(ctx, c) for c in ev.model_calls):
                continue  # ``probe = nn.Linear(d, k)``: nothing in it depends on the mode
            if ev.model_calls and all(_tells_the_mode(c.node) for c in ev.model_calls):
                continue  # ``model(x, _eval=True)``: the forward is told the mode and sets it
            if ev.model_calls and all(_returns_its_losses(loop.node, c.node) for c in ev.model_calls):
                continue  # ``loss_dict = model(images, targets)``: only training mode returns the losses
            if flow.under_project_contexts(ctx, [*ev.model_calls, *(p.model_call for p in ev.paths)], "e"):
                continue  # ``with utils.eval_mode(net):``, a context manager of the project's that may switch it
            scope = loop.scope
            if _monte_carlo(scope, ev):
                continue  # ``mc_dropout_forward_pass(model, x)``: dropout left on to sample on purpose
            # a switch at the top of the loop body, before its first model call, counts
            first = min([c.seq for c in ev.model_calls] + [p.seq for p in ev.paths] or [loop.seq])
            mode = flow.mode_before(ctx, scope, first)
            unswitched = _unswitched_models(ctx, scope, loop, ev) if mode == "eval" else []
            if unswitched:
                mode = flow.mode_before(ctx, scope, loop.seq, own_eval=False)
                mode = None if mode == "eval" else mode
            if mode == "eval":
                continue
            if mode is None and ev.model_calls and not ev.paths and all(
                flow.built_in_eval_mode(ctx, scope, c.key.split(".", 1)[0])
                or flow.loaded_in_eval_mode(ctx, scope, c.key.split(".", 1)[0]) for c in ev.model_calls
            ):
                # ``model = Folds(paths)``, whose ``__init__`` switched every fold to eval
                # mode; ``model = AutoModel.from_pretrained(name)``, loaded in eval mode
                continue
            if ev.model_calls and all(_switched_to_eval_before(ctx, scope, loop, c) for c in ev.model_calls) and all(
                flow.mode_before(ctx, p.callee, _towards_the_model(ctx, p)) is not None for p in ev.paths
            ):
                continue  # ``decoder.eval()`` in the body, after a helper that sets its own model's mode
            if scope.class_name is not None and scope.class_name in ctx.flow.class_init_eval:
                continue
            if not ev.model_calls and all(
                flow.mode_before(ctx, p.callee, _towards_the_model(ctx, p)) is not None
                or _in_eval_on_the_way(ctx, scope, p)
                for p in ev.paths
            ):
                # the helper sets the mode itself (``model.eval()``, or
                # ``model.train()`` to recalibrate batch norm on purpose: a
                # switch before the loop would change nothing), or every caller
                # of it switches to eval mode first (``predict()`` ->
                # ``_predict()``: ``model.eval()``, then
                # ``self._generate_predictions(model, ...)``)
                continue
            if not ev.paths and all(flow.switches_itself_to_eval(ctx, c) for c in ev.model_calls):
                continue  # ``model.generate(...)`` whose own code calls ``self.eval()``
            caller = None
            handed: Optional[str] = None
            if mode == "train" and _chosen_for_the_loop(ctx, scope, first):
                continue  # ``model.train()`` right before the loop, no training between: on purpose
            if mode == "train":
                in_training_mode = matters
            else:
                on_entry = flow.eval_mode_on_entry(
                    ctx, scope, chosen=lambda s, seq: _chosen_for_the_loop(ctx, s, seq),
                    repeats=lambda s, seq: _repeats_the_call(ctx, s, seq), models=_optional_models(scope, ev),
                )
                built_here = any(c.key.split(".", 1)[0] in scope.built_models for c in ev.model_calls)
                in_training_mode = matters and (on_entry is False or (on_entry is None and built_here))
                if ev.intent == "helper":
                    handed = _hands_a_built_model(ctx, scope, ev, matters) if on_entry is not True else None
                    in_training_mode = handed is not None
                if not in_training_mode and on_entry is None and mode is None:
                    # a caller in another module switched the model to training
                    # mode and hands it over: that caller shows the mode matters
                    caller = _trained_by_caller(ctx, scope, ev)
                    if caller is None:
                        caller = _sibling_switches_to_training(ctx, scope, ev)
                    in_training_mode = caller is not None
            if in_training_mode and not (not ev.paths and modes.mode_free_models(
                    ctx, unswitched or ev.model_calls, handed=True)) \
                    and not _diffusion_parts_trained(ctx, ev) and not _pipeline_loaded_with_mode_free_parts(ctx, ev) \
                    and not (ev.model_calls and not ev.paths and all(
                        _handed_in_eval_mode(ctx, scope, c) for c in ev.model_calls)
                        and not ctx.call_shapes_elsewhere(scope.function)):  # type: ignore[arg-type]
                reported.add(id(loop))
                self._report(loop, ev, caller, handed, unswitched)

    def _report(
        self, loop: flow.Loop, ev: flow.EvalLoop, caller: Optional[str] = None, handed: Optional[str] = None,
        unswitched: Sequence[flow.ModelCall] = (),
    ) -> None:
        fix: Optional[Fix] = None
        if ev.model_calls:
            # the model a caller hands over in training mode, not one every
            # caller switched to eval mode (``global_model.eval()``, then
            # ``evaluate(global_model, corrector, data)`` after training
            # ``corrector``), nor one the function switched itself
            named = unswitched[0] if unswitched else next(
                (c for c in ev.model_calls if not _handed_in_eval_mode(self.context, loop.scope, c)),
                ev.model_calls[0])
            key = flow.display(named.key)
            what = f"`{key}`"
            if flow.is_pipeline(self.context, named.key):
                # a library pipeline has no ``.eval()``: the models it holds do
                remedy = f"call `.eval()` on the models `{key}` holds before the loop"
            else:
                remedy = f"call `{key}.eval()` before the loop"
                if not key.endswith("]"):
                    fix = Fix("insert-before", loop.node, f"{key}.eval()", unsafe=True)
        else:
            path = ev.paths[0]
            key = flow.display(path.model_call.key)
            what = f"`{handed or key}` (through `{path.name}()`)"
            if handed is not None:
                remedy = f"call `{handed}.eval()` before the loop"
                fix = Fix("insert-before", loop.node, f"{handed}.eval()", unsafe=True)
            elif _same_name_at_loop(loop, path):
                remedy = f"call `{key}.eval()` before the loop"
                fix = Fix("insert-before", loop.node, f"{key}.eval()", unsafe=True)
            else:
                remedy = "call the model's `.eval()` before the loop"
        if caller is None:
            reason = "nothing calls `.eval()` before it"
        else:
            reason = f"{caller} hands it over in training mode, and nothing calls `.eval()` before the loop"
        ctx = self.context
        self.report(
            loop.node, f"evaluation loop runs {what} in training mode: {reason}; {remedy}",
            condition=lambda: not flow.switched_in_a_mode_free_project(ctx), fix=fix,
        )


def _handed_in_eval_mode(ctx, scope: flow.Scope, call: flow.ModelCall) -> bool:
    """Is the model of ``call`` a parameter of the loop's function that every
    module-local caller hands a model it switched to eval mode by name
    (``global_model.eval()``, then ``evaluate(global_model, corrector,
    data)``) and never switches back or hands to another call, but one of
    a module function that switches nothing (``_switches_nothing``)?  The
    function's mode, judged for all its models at once, may come from
    another model the caller trains in between."""
    fn = scope.function
    root = call.key.split(".", 1)[0].split("[", 1)[0]
    if fn is None or fn.escaped or fn.by_name or root not in {a.arg for a in fn.node.args.args}:
        return False
    sites = flow.call_sites(ctx, fn)
    if not sites:
        return False
    keys = ctx.flow.switch_keys
    for caller, seq in sites:
        node = ctx.flow.nodes.get(seq)
        if not isinstance(node, ast.Call) or caller.function is None:
            return False
        arg = next((value for param, value, _ in bound_arguments(fn, node) if param == root), None)
        if not isinstance(arg, ast.Name):
            return False
        name = arg.id
        if not any(s < seq and keys.get(s) == name for s in caller.eval_switches):
            return False
        if any(keys.get(s) == name for s in (*caller.train_switches, *caller.maybe_train_switches)):
            return False
        if any(inner is not node and not _switches_nothing(ctx, inner, name)
               for inner in _calls_handing(caller.function.node, {name})):
            return False  # handed to another call, which may switch it
    return True


def _switches_nothing(ctx, call: ast.Call, name: str) -> bool:
    """Is ``call`` a call of a module-local function that switches no mode
    and hands the model ``name`` gives it to no further call
    (``_precompute(global_model, data)``, a forward under ``no_grad``)?"""
    key = ctx.call_key(call.func) if isinstance(call.func, ast.Name) else None
    scopes = ctx.scopes_of(key) if key is not None else []
    if len(scopes) != 1 or scopes[0].function is None:
        return False
    scope = scopes[0]
    if scope.train_switches or scope.maybe_train_switches or scope.eval_switches:
        return False
    params = {param for param, value, _ in bound_arguments(scope.function, call)
              if isinstance(value, ast.Name) and value.id == name}
    return bool(params) and next(_calls_handing(scope.function.node, params), None) is None


def _calls_handing(body: ast.AST, names: Set[str]) -> Iterator[ast.Call]:
    """The calls under ``body`` that pass one of ``names`` as an argument by
    itself (``f(model)``, ``f(net=model)``)."""
    for inner in ast.walk(body):
        if isinstance(inner, ast.Call) and any(
            isinstance(a, ast.Name) and a.id in names for a in (*inner.args, *(k.value for k in inner.keywords))
        ):
            yield inner


def _hands_a_built_model(ctx, scope: flow.Scope, ev: flow.EvalLoop, matters: bool) -> Optional[str]:
    """Is each helper the loop runs its model through handed a model its
    function built once, before, from a project class with dropout or batch
    norm (``net = UNet(...)``, then ``predict_img(net, img)`` in the loop),
    or from a layer or library (``torchvision.models.vgg16()``) in a module
    where the mode matters?  The name of the first helper's model."""
    first: Optional[str] = None
    for path in ev.paths:
        node = ctx.flow.nodes[path.seq]
        args = list(getattr(node, "args", ())) + [kw.value for kw in getattr(node, "keywords", ())]
        fn = path.callee.function
        root = path.model_call.key.split(".", 1)[0]
        if fn is not None and isinstance(node, ast.Call):
            bound = {param: value for param, value, _ in bound_arguments(fn, node)}
            if root in bound:
                # ``sample(x, net, loader)`` runs its parameter ``net``: only
                # that argument is the model, not another object built before
                args = [bound[root]]
        built = (a.id for a in args if isinstance(a, ast.Name) and _built_with_modes(ctx, scope, a, path.seq, matters))
        handed = next(built, None)
        if handed is None:
            return None
        first = first or handed
    return first


def _built_with_modes(ctx, scope: flow.Scope, arg: ast.Name, seq: int, matters: bool) -> bool:
    built = flow.built_once_before(scope, arg.id, seq)
    if built is None:
        return False
    return (matters and arg.id in scope.built_models) or ctx.mode_dependent_class(dotted(built.func) or "")


#: Keywords (leading underscores dropped) by which a call tells a forward
#: which mode to run in.
_MODE_KEYWORDS = frozenset({
    "eval", "is_eval", "evaluate", "evaluating", "evaluation", "eval_mode", "train", "training", "is_train",
    "is_training", "train_mode", "test", "is_test", "testing", "test_mode", "inference", "is_inference", "infer",
    "mode", "phase", "deterministic",
})


def _tells_the_mode(call: ast.Call) -> bool:
    """``model(x, _eval=True)``, ``net(x, mode="test")``: a literal mode
    handed to the forward, which then sets the mode (``self.eval()``) or
    runs its layers in it (``F.dropout(x, training=training)``) itself."""
    return any(
        kw.arg is not None and kw.arg.lstrip("_").lower() in _MODE_KEYWORDS and isinstance(kw.value, ast.Constant)
        for kw in call.keywords
    )


def _returns_its_losses(loop: ast.AST, call: ast.Call) -> bool:
    """Is ``call`` a forward that hands back a mapping of losses, as
    torchvision's detection models do only in training mode: its result is
    bound to a name that says loss (``loss_dict = model(images,
    targets)``), and the loop reads that name as a mapping
    (``loss_dict.values()``, ``loss_dict["loss_mask"]``)?  Switching to eval
    mode would make the model return detections instead."""
    name = next((
        node.targets[0].id for node in ast.walk(loop)  # type: ignore[attr-defined]
        if node.__class__ is ast.Assign and node.value is call and len(node.targets) == 1  # type: ignore
        and node.targets[0].__class__ is ast.Name  # type: ignore[attr-defined]
    ), None)
    if name is None or "loss" not in name.lower():
        return False
    for node in ast.walk(loop):
        if node.__class__ is ast.Attribute and node.attr in ("values", "items", "keys"):  # type: ignore
            value = node.value  # type: ignore[attr-defined]
        elif node.__class__ is ast.Subscript and isinstance(node.slice, ast.Constant) and isinstance(  # type: ignore
            node.slice.value, str  # type: ignore[attr-defined]
        ):
            value = node.value  # type: ignore[attr-defined]
        else:
            continue
        if value.__class__ is ast.Name and value.id == name:
            return True
    return False


#: The parts of a ``diffusers`` pipeline built without dropout or batch norm
#: (dropout 0 by default, group norm): their mode changes nothing.
_MODE_FREE_PARTS = frozenset({"unet", "vae"})


def _diffusion_parts_trained(ctx, ev: flow.EvalLoop) -> bool:
    """Does the loop run a library pipeline (``flow.is_pipeline``) of which
    the module switches to training mode only the ``unet`` or the ``vae``
    (``self.model.unet.train()``)?  Loaded pipelines start in eval mode,
    and those parts compute the same in both modes."""
    keys = [*(c.key for c in ev.model_calls), *(p.model_call.key for p in ev.paths)]
    if not keys or not all(flow.is_pipeline(ctx, key, annotated=True) for key in keys):
        return False
    switched = ctx.flow.switch_keys
    for scope in ctx.flow.all_scopes:
        for seq in [*scope.train_switches, *scope.maybe_train_switches]:
            owner, _, part = (switched.get(seq) or "").rpartition(".")
            if owner not in keys or part not in _MODE_FREE_PARTS:
                return False
    return True


#: Arguments of a ``diffusers`` pipeline that hand it no module, or a part whose mode changes nothing.
_PIPELINE_SETTINGS = frozenset({
    *_MODE_FREE_PARTS, "scheduler", "tokenizer", "tokenizer_2", "feature_extractor", "safety_checker",
    "requires_safety_checker", "torch_dtype", "revision", "variant", "use_safetensors", "cache_dir",
    "local_files_only", "subfolder",
})


def _pipeline_loaded_with_mode_free_parts(ctx, ev: flow.EvalLoop) -> bool:
    """Does the loop run only ``diffusers`` pipelines its module loads
    (``StableDiffusionPipeline.from_pretrained(path, unet=unet, vae=vae)``)
    handing in no model but a ``unet`` or a ``vae``?  Loaded parts start in
    eval mode; a handed ``unet`` or ``vae`` (a student trained elsewhere) is
    built without dropout or batch norm by default: the mode changes
    nothing.  A ``text_encoder`` handed in, any argument the call cannot
    show (``**parts``), or a part set afterwards (``pipeline.unet = unet``)
    is not known."""
    keys = [*(c.key for c in ev.model_calls), *(p.model_call.key for p in ev.paths)]
    if not keys or not all(flow.is_pipeline(ctx, key) for key in keys):
        return False
    for key in set(keys):
        loads = [
            node.value for node in ast.walk(ctx.tree)
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
            and key in (dotted(t) for t in node.targets) and flow.loads_pipeline(ctx, node.value, diffusers_only=True)
        ]
        if not loads or any(
            kw.arg is None or kw.arg not in _PIPELINE_SETTINGS for call in loads for kw in call.keywords
        ):
            return False
        if any(
            isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Attribute) and dotted(t.value) == key for t in node.targets
            ) for node in ast.walk(ctx.tree)
        ):
            return False  # ``pipeline.unet = unet``: a part handed in later
    return True


def _optional_models(scope: flow.Scope, ev: flow.EvalLoop) -> FrozenSet[str]:
    """The parameters of the loop's function, ``None`` by default, that hold
    every model the loop calls itself (``def visualize(net=None,
    coach=None)`` running ``coach(x)``); empty when another model runs, or
    one through a helper."""
    fn = scope.function
    if fn is None or ev.paths or not ev.model_calls:
        return frozenset()
    defaults = param_defaults(fn.node.args)
    roots = {c.key.split(".", 1)[0].split("[", 1)[0] for c in ev.model_calls}
    if all(is_const(defaults.get(root), None) and root in defaults for root in roots):
        return frozenset(roots)
    return frozenset()


def _plain_layer(ctx, call: flow.ModelCall) -> bool:
    """Is the model of ``call`` one layer its function built from
    ``torch.nn`` that behaves the same in training and eval mode (a linear
    probe: ``LL = nn.Linear(features, classes)``)?"""
    built = flow.built_before(ctx, call, call.key.split(".", 1)[0].split("[", 1)[0])
    return built is not None and "." not in call.key and modes.plain_build(ctx, built)


def _towards_the_model(ctx, path: flow.PathCall) -> int:
    """Where the helper the loop calls runs the model: the model call
    itself, or, when a function it calls runs it (``val_step`` ->
    ``compute_loss``), its first call of that function."""
    function = path.model_call.function
    if function is None or function is path.callee.function:
        return path.model_call.seq
    for seq, key in path.callee.local_calls:
        if any(found.function is function for found in flow.callees(ctx, path.callee, key)):
            return seq
    return path.model_call.seq


def _in_eval_on_the_way(ctx, scope: flow.Scope, path: flow.PathCall) -> bool:
    """Does the function that runs the model, deeper than the one the loop
    calls, switch to eval mode before the call, or does every module-local
    caller of it do so first (``predict()`` -> ``_predict()``: ``model.eval()``,
    then ``self._generate_predictions(model, ...)``)?"""
    function = path.model_call.function
    if function is None or function is path.callee.function:
        return False
    inner = flow.scope_of(ctx, function)
    if inner is None or inner is scope:
        return False
    return flow.eval_switch_before(ctx, inner, path.model_call.seq) or flow.eval_mode_on_entry(ctx, inner) is True


def _same_name_at_loop(loop: flow.Loop, path: flow.PathCall) -> bool:
    """Does the helper's name of the model mean the same at the loop: a free
    variable of a closure or of a module function, or ``self.x`` in a method of
    the same class?"""
    key = path.model_call.key
    if key.endswith("[]") or path.model_call.function is not path.callee.function:
        return False
    root = key.split(".", 1)[0]
    callee = path.callee
    if root == "self":
        return callee.class_name is not None and callee.class_name == loop.scope.class_name
    fn = callee.function
    if fn is None or root in callee.deps or root in _params(fn.node):
        return False
    scope_fn = loop.scope.function
    return scope_fn is None or root not in loop.scope.deps and root not in _params(scope_fn.node)


def _chosen_for_the_loop(ctx, scope: flow.Scope, first: int) -> bool:
    """Is the training mode the loop runs in set by the function's own
    ``.train()`` with no training step (direct, or in a function it calls)
    between that switch and the loop's first model call?  Then it was chosen
    for the loop (a detector returns its losses only in training mode), not
    left over from training."""
    switches = [s for s in scope.train_switches if s < first]
    if not switches or any(s < first for s in scope.eval_switches if s > max(switches)):
        return False
    since = max(switches)
    if any(since < s < first for s in scope.step_seqs):
        return False
    for seq, key in scope.local_calls:
        if since < seq < first:
            found = flow.callees(ctx, scope, key)
            if any(callee is not scope and flow.trains(ctx, callee) for callee in found):
                return False
            if not found and ctx.trains_elsewhere(key):
                return False
    return True


def _monte_carlo(scope: flow.Scope, ev: flow.EvalLoop) -> bool:
    """Does the loop's function, or every helper through which alone the loop
    runs the model, say by its name that it samples Monte Carlo dropout
    (``mc_dropout_predict``, ``monte_carlo_forward``, ``predict_mcd``)?
    Such a function leaves dropout on to sample on purpose."""
    fn = scope.function
    if fn is not None and _says_monte_carlo(fn.name):
        return True
    return not ev.model_calls and bool(ev.paths) and all(_says_monte_carlo(p.name) for p in ev.paths)


def _says_monte_carlo(name: str) -> bool:
    words = set(tokens(name))
    return not words.isdisjoint(("mc", "mcd", "mcdropout", "montecarlo")) or {"monte", "carlo"} <= words


def _repeats_the_call(ctx, scope: flow.Scope, seq: int) -> bool:
    """Is the call ``seq`` of ``scope`` made again and again with the same
    arguments, in ``for _ in range(n):`` or ``[... for _ in range(n)]``?
    Repeating a prediction only gives something new when it is random:
    samples drawn with dropout on."""
    node = ctx.flow.nodes.get(seq)
    fn = scope.function
    if node is None or fn is None:
        return False
    line = node.lineno
    for loop in ast.walk(fn.node):
        if isinstance(loop, (ast.For, ast.AsyncFor)):
            if _discarded_count(loop.target, loop.iter) and loop.body[0].lineno <= line <= (loop.end_lineno or 0):
                return True
        elif isinstance(loop, (ast.ListComp, ast.GeneratorExp, ast.SetComp)):
            if any(_discarded_count(g.target, g.iter) for g in loop.generators) and (
                loop.lineno <= line <= (loop.end_lineno or 0)
            ):
                return True
    return False


def _discarded_count(target: ast.expr, iterable: ast.expr) -> bool:
    """``_ in range(n)``: a count nothing reads."""
    return (
        isinstance(target, ast.Name) and target.id.startswith("_")
        and isinstance(iterable, ast.Call) and isinstance(iterable.func, ast.Name) and iterable.func.id == "range"
    )


#: Words of a function name that say it measures a model (``dnn_test_model``).
_TESTING_WORDS = frozenset({"test", "eval", "evaluate", "evaluation", "val", "valid", "validate", "validation"})


def _sibling_switches_to_training(ctx, scope: flow.Scope, ev: flow.EvalLoop) -> Optional[str]:
    """A module function no code of the project calls (an API: a user calls
    it), evaluating the model it is handed, while another function of the
    module switches the model it is handed to training mode itself
    (``train_model(model, ...)`` calls ``model.train()``): after training,
    the model is handed over in training mode."""
    fn = scope.function
    if fn is None or fn.key is None or fn.key[0] != "function" or not ev.model_calls:
        return None
    if not _TESTING_WORDS.intersection(fn.name.lower().split("_")):
        return None  # generation and prediction helpers are often called after the caller's own ``.eval()``
    params = _params(fn.node)
    if not any(c.key.split(".", 1)[0] in params for c in ev.model_calls):
        return None
    if fn.escaped or fn.by_name or flow.call_sites(ctx, fn):
        return None
    shapes = ctx.call_shapes_elsewhere(fn, tests=False)
    if shapes is None or shapes:
        return None  # no project index, or callers elsewhere: their mode is theirs
    keys = ctx.flow.switch_keys
    for other in ctx.flow.all_scopes:
        other_fn = other.function
        if other is scope or other_fn is None or other_fn.key is None or other_fn.key[0] != "function":
            continue
        if other.eval_switches:
            continue
        other_params = _params(other_fn.node)
        if any(keys.get(seq) in other_params for seq in other.train_switches) and flow.trains(ctx, other):
            return f"`{other_fn.name}()` in this module"
    return None


def _trained_by_caller(ctx, scope: flow.Scope, ev: flow.EvalLoop) -> Optional[str]:
    """Where another module passes the model the loop runs, a parameter of
    its function, after switching it to training mode (see
    ``Context.trained_by_caller``)."""
    fn = scope.function
    if fn is None or not ev.model_calls:
        return None
    params = _params(fn.node)
    for call in ev.model_calls:
        root = call.key.split(".", 1)[0]
        if root in params:
            found = ctx.trained_by_caller(fn, root)
            if found is not None:
                return found
    return None


def _params(node) -> Set[str]:
    args = node.args
    names = {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs}
    names.update(a.arg for a in (args.vararg, args.kwarg) if a is not None)
    return names


def _switched_to_eval_before(ctx, scope: flow.Scope, loop: flow.Loop, call: flow.ModelCall) -> bool:
    """Is the last switch of ``call``'s model (by name, or of the model that
    holds it: ``net.eval()`` for ``net.encoder(x)``) before the call, in
    the loop's body, an ``.eval()``, with no call of a function of the
    module between them (which might switch it back)?"""
    keys = ctx.flow.switch_keys
    events = [(s, "eval") for s in scope.eval_switches] + [(s, "train") for s in scope.train_switches]
    own = [(s, mode) for s, mode in events if loop.seq < s < call.seq and flow.part_of(call.key, keys.get(s) or "")]
    if not own:
        return False
    last, mode = max(own)
    return mode == "eval" and not any(last < s < call.seq for s, _ in scope.local_calls)


def _unswitched_models(ctx, scope: flow.Scope, loop: flow.Loop, ev: flow.EvalLoop) -> List[flow.ModelCall]:
    """The calls of the loop whose model no ``.eval()`` before the loop
    names, a parameter of the function that the module switches to
    training mode elsewhere (``model.eval()`` but ``predictor(...)`` too);
    empty when some ``.eval()`` before it names no model plainly."""
    if not ev.model_calls or scope.function is None:
        return []
    keys = ctx.flow.switch_keys
    switched = {keys.get(s) for s in scope.eval_switches if s < loop.seq}
    if not switched or any(k is None or k == "" or k == "self" for k in switched):
        return []
    params = _params(scope.function.node)
    trained = ctx.flow.cache.get(("trained-models",))
    if trained is None:
        trained = ctx.flow.cache[("trained-models",)] = _trained_models(ctx)
    return [
        call for call in ev.model_calls
        if "." not in call.key and call.key in params and call.key in trained
        and not any(call.key == k or call.key.startswith(k + ".") or k.startswith(call.key + ".") for k in switched)
    ]


def _trained_models(ctx) -> frozenset:
    """What the module switches to training mode, by name."""
    keys = ctx.flow.switch_keys
    return frozenset(keys.get(s) for sc in ctx.flow.all_scopes for s in sc.train_switches)
