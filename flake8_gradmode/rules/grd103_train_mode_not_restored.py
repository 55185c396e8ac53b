from __future__ import annotations

import ast
import bisect
import itertools
from collections import namedtuple
from typing import TYPE_CHECKING, Dict, FrozenSet, List, Optional, Set, Tuple

from flake8_gradmode import flow, modes
from flake8_gradmode import facts
from flake8_gradmode.context import Fix
from flake8_gradmode.tracker import (
    Grad, dotted, last_name, mode_value, param_defaults, positional_params, unchained,
)
from flake8_gradmode.names import says_eval_function
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
        (`validate(model)`, `self.evaluate()`), or, with the project index,
        through a function of another module of the project, named like
        evaluation, that switches the model it is handed to eval mode and
        nothing to training mode (`eval_net(net, val_loader)`), when the
        loop reaches its next
        training step without switching back: no `.train()` later in the loop
        body or at the start of the next iteration, directly or in a function
        the loop calls.  Mid-epoch validation (`if step % k == 0: validate()`)
        counts too.

        Conditions are followed.  A switch and a training step under
        conditions that exclude each other never run in the same pass
        (`if phase == "train": model.train()` / `else: model.eval()`, then
        `if phase == "train": loss.backward()`; a membership test such as
        `phase in ("valid", "test")` excludes the values it does not list).  A function of the module is
        judged with the arguments of each call: `run_epoch(model, "val")`
        whose body runs `model.train() if mode == "train" else model.eval()`
        only switches to eval mode, and `loss_batch(model, xb, yb)` whose
        body steps only `if opt is not None` (with `opt=None` by default)
        trains nothing, nor does a step behind a test that none of the
        values of an enclosing loop's literal list passes (`for loader, name
        in [(v, "valid"), (t, "test")]:` then `if name == "train":`); nor
        does a model the function builds itself at every
        call (`probe = probe_cls(dim)`, a class it is handed by a name that
        says so), or a copy the loop builds in the same pass before
        switching it (`eval_model = Net(...)` given the trained weights, then
        `evaluate(eval_model)`), leave the caller's model in eval mode.  A
        function that takes the model out of its `DataParallel` wrapper
        (`model = model.module`) still switches the model it is handed.  A function named like a training step
        (`self.train_step(x)`) is judged by its body: one that calls
        `.train()` first restores the mode itself (so does, with the project
        index, a function of another module that leaves the model it is
        handed in training mode, `train_step(model, optimizer, x)`), as does a switch written as
        the argument of the step's call (`train(model.train(), x, y)`): it
        runs before the body.  So does a call of a
        method the module's classes define (`classifier.train_head()`) on an
        object whose class is not known, when every definition of that
        method calls `.train()` and none calls `.eval()`.  The step of an
        optimizer the function built over tensors of its own
        (`optim.SGD([delta], lr=...)`: an adversarial perturbation, a latent
        code) trains no model.  A model the loop only ever puts in eval
        mode, while it switches others to training mode, all known by name
        (`model.train(flag); teacher.eval()` in the function it calls), is
        frozen on purpose; so is one the loop switches to eval mode and runs
        only with grad disabled, never handing it on (`model.eval()`, then
        `with torch.no_grad(): feature = model(img)` and a linear classifier
        trained on the features: no step of the loop trains it).  A
        function the loop calls that builds the model it trains on every
        call (`enc = Encoder(d)`, or a factory's `factory.build(spec)` or
        `make_model(...)`, an optimizer over its parameters or over groups
        of them it gathers, then `enc.eval(); return enc`) trains a new model each
        time: its switch to eval mode reaches no model the next call trains.
        Nor does a function the loop calls that builds or loads a model,
        switches it to eval mode and returns it (`vae =
        AutoencoderKL.from_pretrained(name); vae.eval(); return vae`, to
        draw samples): the loop gets a copy, and its steps train the models
        their optimizers were built over.
        A weight update that follows the switch with no backward pass since
        it, and after which the model is switched back to training mode
        before any forward pass (`if phase == "train": optimizer.step();
        model.train()`), runs no model: the mode changes nothing there.
    """
    why = """
        After the first validation, the rest of training runs in eval mode:
        dropout is off and batch norm stops updating its statistics and uses
        the frozen ones.  Training still "works", so the damage shows only as a
        worse model.
    """
    known_problems = """
        With the project index, code that never runs is not reported (see
        docs/cross-module.md): a module that stops at one of its imports (or
        at an import of a project module that does), a function or method
        of a module nothing imports whose own code runs none of what it
        defines (`if __name__ == "__main__": print("Done")`), a function of
        a script nothing calls.  Nor is a loop that
        runs its training steps itself when every model it calls is of a
        project class with no layer depending on the mode, built where the
        function runs or handed over by each of its callers, all in this
        module (`model = CapsNet(opt)`, then `train(opt, loader, model)`),
        or an `nn.Sequential` of `torch.nn` layers that behave the same in
        both modes (`nn.Linear`, `nn.ReLU`), or a class of the module whose
        layers are so, as for GRD102 (graph convolutions of PyTorch
        Geometric given no dropout count): eval mode changes nothing of its
        training.  A called function's switch of a model it makes for the
        call (`run_eval(cfg)` of `def run_eval(cfg, model=None)` that makes
        one when `model is None`) reaches no model of the caller's, nor do
        the steps of one that trains a model it makes with an optimizer it
        makes over it (`torch.optim.*`, a class named like one,
        `ConstrainedAdam`, or a function named `get_optimizer`,
        `build_optimizer` and the like; stepped directly or
        through a gradient scaler, `scaler.step(optimizer)`).
        Only switches and training steps this module can see are followed; a
        trainer object from another module that calls `.train()` for you is not
        visible, so the rule stays silent when it cannot see the training step.
        A loop that runs `.backward()` but no weight update (gradients to
        plot or probe) is not training.  Test files are skipped: a unit
        test's few training steps make no model anyone keeps.
        `.train(flag)` with a run-time flag counts as switching back, and
        `.eval()` on a new object (`copy.deepcopy(model).eval()`, a snapshot
        for saving) switches nothing the loop trains; nor does a helper's
        `.eval()` on a model it builds itself (`net = Net()`, weights loaded,
        evaluated) and neither receives nor returns, directly or through a
        function it hands that model to (`validate(net)`); nor does `.eval()` on a
        layer drawn from `net.modules()` or `.children()` (batch norm frozen
        for the training that follows), nor `.eval()` on a model whose grad
        the code then switches off (`text_encoder.requires_grad_(False)`)
        before any training step: it trains no more.  A switch followed in its own block by
        `return`, `break` or `raise` (the last evaluation, then save and stop)
        has no training step after it, nor does one on the loop's last pass
        (under `if i == len(loader) - 1:`, `i` counting the passes of
        `enumerate(...)` or `range(...)`).  Of two switches of the same
        model under the same conditions with no training step between them
        (`evaluate(model, train_loader)` then `evaluate(model,
        valid_loader)`), only the later one is reported: training resumes
        after it.  A loop
        whose body starts by switching to training mode (`for epoch ...:
        model.train()`) is not reported: whatever the end of one iteration
        does after its evaluation, the next one trains in training mode.
        Conditions are compared as written (`==`, `!=`, `is`, `in`, `not`,
        `and`, `or` on names and literals; an `and` that holds implies each
        of its parts: a step under `if is_train and accum != n:` needs
        `is_train`); any other condition is taken to
        allow every path, and a `.train()` under a condition is taken to run.
        A condition on a name the loop never assigns (`phase` of an enclosing
        `for phase in ...`, also through a helper's `training = (phase ==
        "train")` made from its argument) holds the same in every pass.  A
        training step whose forward ran before the switch to eval mode (a
        step helper that draws samples in eval mode after its training
        forward) trains on a graph built in training mode and is not
        counted; a forward after the switch, before the next `.train()`, is.
        A model put in eval mode for another model's step and switched back
        by a `.train()` of its own in the same loop (a GAN's discriminator
        while the generator learns), also inside a method of the class the
        loop calls (`self.gen.eval()` for the critic's update, then
        `self.gen.train()` for its own), is not reported; nor are models put in
        eval mode in a loop that switches no model to training mode itself,
        after the function switched different ones (`generator.train()`,
        then `teacher.eval()` for each frozen teacher in the loop).
        Training in eval mode on purpose (frozen batch norm for fine-tuning)
        is reported; silence it with `# noqa: GRD103`.  Files that build no dropout or
        batch-norm layer and never call `.train()` are skipped (unless they
        import a project model class whose modules name dropout or batch
        norm, and a loop calls such a function of another module): the mode
        makes no difference there (nor in a file that builds its networks from
        `torch.nn` layers none of which depends on the mode, and imports no
        model library or model module, nor in a project whose every module
        shows no layer that depends on the mode: see GRD102).
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
            import torch.nn as nn


            def attack(model, x, steps=2):
                was_training = model.training
                model.eval()
                try:
                    for _ in range(steps):
                        x = x.detach().requires_grad_(True)
                        grad = torch.autograd.grad(model(x).sum(), x)[0]
                        x = x + 0.01 * grad.sign()
                finally:
                    if was_training:
                        model.train()
                    else:
                        model.eval()
                return x.detach()


            model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), nn.Linear(4, 2))
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            modes = []
            model.train()
            for step in range(2):
                adv = attack(model, torch.randn(3, 4))
                modes.append(model.training)
                optimizer.zero_grad()
                model(adv).pow(2).mean().backward()
                optimizer.step()
            """,
            title="A helper that saves the mode and puts it back",
            checks=(Holds("modes == [True, True]", "every step trains in training mode"),),
        ),
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
        Valid(
            """
            import torch

            model = torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.Dropout(0.5))
            criterion = torch.nn.CrossEntropyLoss()
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            batch = (torch.randn(8, 4), torch.randint(0, 2, (8,)))
            loaders = {"train": [batch], "val": [batch]}
            modes = []

            for epoch in range(2):
                for phase in ["train", "val"]:
                    if phase == "train":
                        model.train()
                    else:
                        model.eval()
                    for x, y in loaders[phase]:
                        optimizer.zero_grad()
                        with torch.set_grad_enabled(phase == "train"):
                            loss = criterion(model(x), y)
                            if phase == "train":
                                modes.append(model.training)
                                loss.backward()
                                optimizer.step()
            """,
            title="A training phase and a validation phase in one loop",
            checks=(Holds("modes == [True, True]", "every training step runs in training mode"),),
        ),
        Valid(
            """
            import torch

            model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            data = [torch.randn(8, 4)]
            modes = []


            def run_epoch(model, mode):
                model.train() if mode == "train" else model.eval()
                for x in data:
                    with torch.set_grad_enabled(mode == "train"):
                        out = model(x).pow(2).mean()
                    if mode == "train":
                        modes.append(model.training)
                        optimizer.zero_grad()
                        out.backward()
                        optimizer.step()


            for epoch in range(2):
                run_epoch(model, "train")
                run_epoch(model, "val")
            """,
            title="A function that sets the mode from its argument",
            checks=(Holds("modes == [True, True]", "every training step runs in training mode"),),
        ),
        Valid(
            """
            import torch

            model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))
            data = [torch.randn(8, 4)]
            modes = []


            def run_epoch(model, phase, optimizer=None):
                if optimizer:
                    model.train()
                else:
                    model.eval()
                for x in data:
                    with torch.set_grad_enabled(phase == "train"):
                        out = model(x).pow(2).mean()
                    if phase == "train":
                        modes.append(model.training)
                        optimizer.zero_grad()
                        out.backward()
                        optimizer.step()


            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            for epoch in range(2):
                run_epoch(model, "train", optimizer=optimizer)
                run_epoch(model, "val")
            """,
            title="A function that trains in training mode when it is handed an optimizer",
            checks=(Holds("modes == [True, True]", "every training step runs in training mode"),),
        ),
        Valid(
            """
            import torch


            class Trainer:
                def __init__(self):
                    self.model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))
                    self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1)
                    self.modes = []

                def train_step(self, x):
                    self.model.train()
                    self.modes.append(self.model.training)
                    self.optimizer.zero_grad()
                    self.model(x).pow(2).mean().backward()
                    self.optimizer.step()

                def validate(self, data):
                    self.model.eval()
                    with torch.no_grad():
                        for x in data:
                            self.model(x)

                def fit(self, data, epochs):
                    for epoch in range(epochs):
                        for x in data:
                            self.train_step(x)
                        self.validate(data)


            trainer = Trainer()
            trainer.fit([torch.randn(8, 4)], 2)
            """,
            title="A training step that switches to training mode itself",
            checks=(Holds("trainer.modes == [True, True]", "every training step runs in training mode"),),
        ),
        Valid(
            """
            import torch

            modes = []


            def step(model, x, optimizer):
                modes.append(model.training)
                optimizer.zero_grad()
                model(x).pow(2).mean().backward()
                optimizer.step()


            def accuracy(model, x):
                with torch.no_grad():
                    return model(x).argmax(1).float().mean()


            model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Dropout(0.5))
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            x = torch.randn(8, 4)
            for epoch in range(2):
                step(model.train(), x, optimizer)
                accuracy(model.eval(), x)
            """,
            title="The switch to training mode written as the training step's argument",
            checks=(Holds("modes == [True, True]", "every training step runs in training mode"),),
        ),
        Valid(
            """
            import torch

            modes = []


            class Probe(torch.nn.Module):
                def __init__(self, dim):
                    super().__init__()
                    self.net = torch.nn.Sequential(torch.nn.Linear(dim, 2), torch.nn.Dropout(0.5))

                def forward(self, x):
                    return self.net(x)


            def probe_accuracy(features, labels, probe_cls):
                probe = probe_cls(features.shape[1])
                optimizer = torch.optim.SGD(probe.parameters(), lr=0.1)
                for _ in range(2):
                    modes.append(probe.training)
                    optimizer.zero_grad()
                    torch.nn.functional.cross_entropy(probe(features), labels).backward()
                    optimizer.step()
                probe.eval()
                with torch.no_grad():
                    return (probe(features).argmax(1) == labels).float().mean()


            labels = torch.randint(0, 2, (8,))
            for layer in range(2):
                probe_accuracy(torch.randn(8, 4), labels, Probe)
            """,
            title="A model built afresh from the class it is handed, at every call",
            checks=(Holds("modes == [True] * 4", "every new probe trains in training mode"),),
        ),
        Valid(
            """
            import torch

            modes = []
            for seed in range(2):
                model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))
                optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
                for epoch in range(2):
                    for x in [torch.randn(8, 4)]:
                        modes.append(model.training)
                        optimizer.zero_grad()
                        model(x).pow(2).mean().backward()
                        optimizer.step()
                model.eval()
                with torch.no_grad():
                    model(torch.randn(8, 4))
            """,
            title="A model built afresh at the top of every pass, switched to eval mode at its end",
            checks=(Holds("modes == [True] * 4", "every new model trains in training mode"),),
        ),
        Valid(
            """
            import torch

            model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))
            modes = []
            for lr in [0.1]:
                optimizer = torch.optim.SGD(model.parameters(), lr=lr)
                for epoch in range(2):
                    for x in [torch.randn(8, 4)]:
                        modes.append(model.training)
                        optimizer.zero_grad()
                        model(x).pow(2).mean().backward()
                        optimizer.step()
                model.eval()
                with torch.no_grad():
                    model(torch.randn(8, 4))
            """,
            title="A switch at the end of a loop over one value: there is no next pass",
            checks=(Holds("modes == [True, True]", "every training step runs in training mode"),),
        ),
        Valid(
            """
            import torch

            model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            x = torch.randn(8, 4)
            for epoch in range(3):
                loss = model(x).pow(2).mean()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                model.eval()
                with torch.no_grad():
                    model(x)
            head = torch.nn.Sequential(torch.nn.Linear(1, 2), torch.nn.Dropout(0.5))  # another model
            head.eval()
            print(head(model(x)))
            """,
            title="Layers that compute the same in both modes: eval mode changes nothing of the training",
            checks=(Holds("torch.equal(model.eval()(x), model.train()(x))", "both modes compute the same"),),
        ),
        Valid(
            """
            import torch

            model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            modes = []


            def run_epoch(model, batches):
                for x in batches:
                    loss = model(x).pow(2).mean()
                    if model.training:
                        modes.append(model.training)
                        optimizer.zero_grad()
                        loss.backward()
                        optimizer.step()


            def fit(model):
                for epoch in range(2):
                    run_epoch(model, [torch.randn(8, 4)])
                    was_training = model.training
                    model.eval()
                    run_epoch(model, [torch.randn(8, 4)])
                    model.train(was_training)


            fit(model)
            """,
            title="A shared epoch helper that steps only under `if model.training:`",
            checks=(Holds("modes == [True, True]", "every training step runs in training mode"),),
        ),
        Valid(
            """
            import torch

            model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            data = [torch.randn(8, 4)]
            modes = []
            for epoch in range(2):
                model.train()
                for x in data:
                    modes.append(model.training)
                    optimizer.zero_grad()
                    model(x).pow(2).mean().backward()
                    optimizer.step()
                for loader, name in [(data, "valid"), (data, "test")]:
                    model.eval()
                    with torch.no_grad():
                        for x in loader:
                            loss = model(x).pow(2).mean()
                            if name == "train":
                                optimizer.step()
            """,
            title="A training step behind a test the loop's values never pass",
            checks=(Holds("modes == [True, True]", "every training step runs in training mode"),),
        ),
        Valid(
            """
            import torch

            modes = []


            def train(head, optimizer):
                for x in [torch.randn(8, 4)]:
                    modes.append(head.training)
                    optimizer.zero_grad()
                    head(x).sum().backward()
                    optimizer.step()


            def validate(head):
                head.eval()
                with torch.no_grad():
                    for x in [torch.randn(8, 4)]:
                        head(x)


            def fit(lr):
                head = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))
                optimizer = torch.optim.SGD(head.parameters(), lr=lr)
                for epoch in range(2):
                    head.train()
                    train(head, optimizer)
                    validate(head)
                return head.state_dict()


            for lr in (0.1, 0.01):
                fit(lr)
            """,
            title="Each call builds its own model and switches it, through helpers too",
            checks=(Holds("modes == [True] * 4", "every training step runs in training mode"),),
        ),
        Valid(
            """
            import torch

            modes = []


            class Classifier(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.encoder = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))
                    self.head = torch.nn.Sequential(torch.nn.Dropout(0.5), torch.nn.Linear(4, 2))

                def train_head(self):
                    self.encoder.requires_grad_(False)
                    self.head.train()

                def forward(self, x):
                    return self.head(self.encoder(x))


            def train_epoch(classifier, optimizer):
                classifier.train_head()
                for x in [torch.randn(8, 4)]:
                    modes.append(classifier.head.training)
                    optimizer.zero_grad()
                    classifier(x).sum().backward()
                    optimizer.step()


            def evaluate(classifier):
                classifier.eval()
                with torch.no_grad():
                    return [classifier(x) for x in [torch.randn(8, 4)]]


            classifier = Classifier()
            optimizer = torch.optim.SGD(classifier.head.parameters(), lr=0.1)
            for epoch in range(2):
                train_epoch(classifier, optimizer)
                evaluate(classifier)
            """,
            title="A method of the module's model class switches back to training mode",
            checks=(Holds("modes == [True, True]", "every training step runs the head in training mode"),),
        ),
        Valid(
            """
            import torch

            model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5), torch.nn.Linear(4, 2))
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            modes = []


            def perturb(model, x):
                model.eval()
                delta = torch.zeros_like(x, requires_grad=True)
                delta_optimizer = torch.optim.SGD([delta], lr=0.01)
                for _ in range(3):
                    delta_optimizer.zero_grad()
                    (-model(x + delta).pow(2).sum()).backward()
                    delta_optimizer.step()
                return (x + delta).detach()


            for x in [torch.randn(8, 4)] * 2:
                x_adv = perturb(model, x)
                model.train()
                modes.append(model.training)
                optimizer.zero_grad()
                model(x_adv).pow(2).mean().backward()
                optimizer.step()
            """,
            title="An attack in eval mode steps an optimizer over its own perturbation, not the model",
            checks=(Holds("modes == [True, True]", "every step of the model's optimizer runs in training mode"),),
        ),
        Valid(
            """
            import torch

            modes = []


            def train_one_epoch(model, teacher, optimizer, loader, training=True):
                model.train(training)
                teacher.eval()
                for x in loader:
                    modes.append((model.training, teacher.training))
                    with torch.no_grad():
                        target = teacher(x)
                    optimizer.zero_grad()
                    (model(x) - target).pow(2).mean().backward()
                    optimizer.step()


            def evaluate(model, loader):
                model.eval()
                with torch.no_grad():
                    return [model(x) for x in loader]


            teacher = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))
            model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            data = [torch.randn(8, 4)]
            for task in range(2):
                for epoch in range(2):
                    train_one_epoch(model, teacher, optimizer, data, training=True)
                evaluate(model, data)
            """,
            title="A frozen teacher kept in eval mode by the training function, which switches the student back",
            checks=(Holds("modes == [(True, False)] * 4", "the student trains in training mode, the teacher never"),),
        ),
        Valid(
            """
            import torch

            backbone = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8))
            classifier = torch.nn.Linear(8, 2)
            optimizer = torch.optim.SGD(classifier.parameters(), lr=0.1)
            data = [(torch.randn(8, 4), torch.randint(0, 2, (8,)))]
            for epoch in range(2):
                backbone.eval()
                for x, y in data:
                    with torch.no_grad():
                        feature = backbone(x)
                    optimizer.zero_grad()
                    torch.nn.functional.cross_entropy(classifier(feature), y).backward()
                    optimizer.step()
            """,
            title="A linear probe: the backbone in eval mode, run only under no_grad, while a classifier trains",
            checks=(Holds("classifier.training and all(p.grad is None for p in backbone.parameters())",
                          "the classifier trains in training mode; no step reaches the backbone"),),
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
        if flow.is_pytest_test(ctx.flow.module_scope, ctx):
            return  # a unit test's few training steps are not a model anyone keeps
        matters = flow.mode_matters(ctx)
        through_import: Optional[bool] = None
        reported: Set[int] = set()
        switching: Dict[int, bool] = {}
        for loop in ctx.flow.loops:
            imported = _imported_evals(ctx, loop)
            if not matters:
                if not imported:
                    continue
                if through_import is None:
                    through_import = _imports_mode_dependent_model(ctx)
                if not through_import:
                    continue  # the mode matters here only through an imported model class
            if not imported and not _may_switch_to_eval(ctx, loop.scope, loop.seq, loop.end_seq, switching):
                continue  # the cheap test first: most loops never switch a model to eval
            events = _events(ctx, loop.scope, loop.seq, loop.end_seq)
            if imported:
                events = _without_frozen_models(sorted(events + imported, key=lambda e: e.site))
            kept = _kept_in_eval(ctx, loop)
            if kept:
                events = [e for e in events if not (e.kind == "eval" and e.key in kept)]
            kinds = {event.kind for event in events}
            # a loop that only computes gradients (``.backward()`` to plot or
            # probe them) and updates no weight is not training
            if "eval" not in kinds or "step" not in kinds:
                continue
            frozen = _run_only_without_grad(ctx, loop, {e.model for e in events if e.kind == "eval"})
            if frozen:
                events = [e for e in events if not (e.kind == "eval" and e.model in frozen)]
                if not any(e.kind == "eval" for e in events):
                    continue
            restoring = _imported_trains(ctx, loop)
            if restoring:
                # first at its call: ``train_step(model, ...)`` calls ``model.train()`` before its step
                events = _without_frozen_models(sorted(restoring + events, key=lambda e: e.site))
            if _starts_in_train_mode(ctx, loop, [e for e in events if e.kind != "forward"]):
                continue
            n = len(events)
            for i, event in enumerate(events):
                if event.kind != "eval" or event.site in reported:
                    continue
                if _built_in_the_pass(loop, event):
                    continue  # ``eval_model = Yolov4(...)`` loaded from the weights, then evaluated: a copy
                if _ends_the_run(loop, ctx.flow.nodes.get(event.site)):
                    continue  # ``evaluate(); save(); return``: the last evaluation, nothing trains after it
                forward_before = any(e.kind == "forward" for e in events[:i])
                forward_since = False
                for j in range(i + 1, i + n + 1):
                    nxt = events[j % n]
                    if nxt.kind in ("train", "train?"):
                        break
                    if nxt.kind == "forward":
                        forward_since = True
                        continue
                    if nxt.kind == "eval" and j < n and nxt.model == event.model and nxt.guards == event.guards:
                        break  # ``evaluate(model, train); evaluate(model, valid)``: training resumes after the later one
                    if nxt.kind != "step":  # a weight update; backward() alone may move inputs (sampling)
                        continue
                    if j < n and forward_before and not forward_since:
                        continue  # its graph was built before the switch, in training mode
                    if _step_runs_no_model(ctx, loop, events, i, j):
                        continue  # ``optimizer.step(); model.train()``, no backward pass since the switch
                    if j < n and _exclusive(ctx, loop, event, nxt):
                        continue  # never in the same pass: ``if phase == "train": ... else: model.eval()``
                    if _only_in_training_mode(nxt, event.model):
                        continue  # ``if model.training: optimizer.step()``: not after ``model.eval()``
                    if j >= n and _exclusive_in_every_pass(loop, event, nxt):
                        continue  # ``step(phase, ...)`` switching by a ``phase`` the loop never changes
                    if j >= n and _on_last_pass(loop, ctx.flow.nodes.get(event.site)):
                        break  # ``if i == len(loader) - 1: model.eval()``: no next pass of this loop
                    if j >= n and (_single_pass(loop) or _built_afresh_before(ctx, loop, event.model, nxt.site)):
                        break  # ``for run in range(1):``, or ``model = Net()`` at the top of every pass
                    if j < n and _switched_back_later(ctx, loop, events, i, j):
                        break  # ``D.eval()``, another model's step, ``D.train()``: frozen for that step on purpose
                    node = ctx.flow.nodes.get(event.site)
                    if node is not None:
                        reported.add(event.site)
                        self.report(
                            node,
                            f"`{self.code_of(node.func)}()` leaves the model in eval mode and the loop trains on "
                            "with dropout and batch norm frozen; call `.train()` before the next training step",
                            # last: it may read the project index; code that never
                            # runs (a module that stops at its imports, one nothing
                            # imports whose own code runs none of it, ...) keeps no
                            # mode, and in a project without mode-dependent layers
                            # the mode changes nothing
                            condition=lambda loop=loop, node=node: not flow.unreached(ctx, loop.scope, node)
                            and not flow.switched_in_a_mode_free_project(ctx)
                            and not modes.trains_mode_free_models(ctx, loop),
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


def _ends_the_run(loop: flow.Loop, node: Optional[ast.AST]) -> bool:
    """Is the switch (or the call that switches) followed, in its own block of
    the loop, by a ``return``, ``break`` or ``raise``?  Then no training step
    runs after it in this loop."""
    if node is None:
        return False
    found = _block_of(loop.node, node)
    if found is None:
        return False
    block, i = found
    return any(isinstance(stmt, (ast.Return, ast.Break, ast.Raise)) for stmt in block[i + 1:])


def _on_last_pass(loop: flow.Loop, node: Optional[ast.AST]) -> bool:
    """Does the switch run only on the loop's last pass: under ``if i ==
    len(loader) - 1:`` (or ``i + 1 == len(loader)``, ``i == n - 1``) where
    ``i`` counts the passes (``for i, x in enumerate(...)``, ``for i in
    range(n)``)?"""
    head = loop.node
    if node is None or not isinstance(head, ast.For):
        return False
    target, source = head.target, head.iter
    if isinstance(source, ast.Call) and isinstance(source.func, ast.Name) and source.func.id == "enumerate":
        target = target.elts[0] if isinstance(target, ast.Tuple) and target.elts else None
    elif not (isinstance(source, ast.Call) and isinstance(source.func, ast.Name) and source.func.id == "range"):
        return False
    if not isinstance(target, ast.Name):
        return False
    index = target.id
    todo: List[ast.AST] = list(head.body)
    while todo:
        stmt = todo.pop()
        if isinstance(stmt, ast.If) and any(n is node for b in stmt.body for n in ast.walk(b)):
            if _is_last_pass_test(stmt.test, index):
                return True
            todo.extend(stmt.body)
        elif isinstance(stmt, (ast.If, ast.With, ast.Try)):  # not into nested loops: their passes are others
            todo.extend(getattr(stmt, "body", []))
            todo.extend(getattr(stmt, "orelse", []))
    return False


def _only_in_training_mode(step: _Event, model: str) -> bool:
    """Does ``step`` run only while ``model`` is in training mode: under
    ``if model.training:`` (a shared epoch helper that steps the optimizer
    only when training)?  Then no switch of ``model`` to eval mode is
    followed by it before a switch back."""
    return bool(model) and (("training", ("name", model)), True) in step.guards


def _single_pass(loop: flow.Loop) -> bool:
    """Does the loop run its body once: ``for run in range(1):``, ``for
    (flag, ratio) in [(1, 0.1)]:``?  Then a switch at its end reaches no
    next pass."""
    head = loop.node
    if not isinstance(head, ast.For):
        return False
    source = head.iter
    if isinstance(source, (ast.List, ast.Tuple)):
        return len(source.elts) == 1 and not isinstance(source.elts[0], ast.Starred)
    return (
        isinstance(source, ast.Call) and isinstance(source.func, ast.Name) and source.func.id == "range"
        and len(source.args) == 1 and not source.keywords and _is_one(source.args[0])
    )


def _step_runs_no_model(ctx, loop: flow.Loop, events: list, i: int, j: int) -> bool:
    """Is the weight update at ``j`` (of the loop's events, read round the
    loop) one that no backward pass reaches since the eval switch at ``i``
    (but one that never runs in the same pass as it), and after which a
    switch to training mode comes before any forward pass?  Such a step
    runs no model and steps no graph built in eval mode: the mode cannot
    matter."""
    n = len(events)
    if any(
        events[k % n].kind == "backward" and not (k < n and _exclusive(ctx, loop, events[i], events[k % n]))
        for k in range(i + 1, j)
    ):
        return False
    for k in range(j + 1, i + n + 1):
        kind = events[k % n].kind
        if kind == "forward":
            return False
        if kind == "train":
            return True
    return False


def _built_afresh_before(ctx, loop: flow.Loop, model: str, site: int) -> bool:
    """Does a statement of the loop's own body (not one under a condition
    or in an inner loop) bind ``model`` to a model made afresh (``model =
    Net(...)``, a factory or a loader: ``_made``) before the training step
    at ``site``?  Then the step of the next pass trains that new model, in
    the training mode it starts in, whatever the last pass left the old one in."""
    node = ctx.flow.nodes.get(site)
    line = getattr(node, "lineno", None)
    if not model or line is None:
        return False
    for stmt in loop.node.body:
        if stmt.lineno >= line:
            break
        if isinstance(stmt, ast.Assign) and _made(stmt.value, model) is True and any(
            isinstance(t, ast.Name) and t.id == model for t in stmt.targets
        ):
            return True
    return False


def _is_last_pass_test(test: ast.expr, index: str) -> bool:
    """``i == len(x) - 1``, ``i + 1 == len(x)``, ``i == n - 1`` (either side)."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    for a, b in ((test.left, test.comparators[0]), (test.comparators[0], test.left)):
        one_less = isinstance(b, ast.BinOp) and isinstance(b.op, ast.Sub) and _is_one(b.right)
        if isinstance(a, ast.Name) and a.id == index and one_less:
            return True
        if isinstance(a, ast.BinOp) and isinstance(a.op, ast.Add) and _is_one(a.right) and (
            isinstance(a.left, ast.Name) and a.left.id == index
        ):
            return True
    return False


def _is_one(expr: ast.expr) -> bool:
    return isinstance(expr, ast.Constant) and expr.value == 1 and not isinstance(expr.value, bool)


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


# -- which switches and steps run, on which path ---------------------------------
#
# The loop's mode switches and training steps in order, as ``flow.mode_events``
# lists them, and with each the conditions it runs under (the ``if`` tests
# around it, in the terms of the analysed function).  A call of a module-local
# function stands for its body's events, with the callee's conditions on its
# parameters rewritten into the caller's arguments: ``run_epoch(model, "val")``
# with ``if mode == "train": model.train()`` in its body does not switch to
# training mode, and ``loss_batch(model, xb, yb)`` with ``if opt is not None:
# opt.step()`` and ``opt=None`` by default trains nothing.

#: A condition as a comparable value: ``("name", id)``, ``("const", value)``,
#: ``("==", a, b)``, ``("is", a, b)``, ``("in", a, values)``, ``("not", a)``,
#: ``("and"|"or", (a, ...))``; anything else is ``("?", n)``, equal only to
#: itself.
Term = tuple
if TYPE_CHECKING:  # annotations only: making typing aliases at import costs time
    #: A condition and whether it holds where the event runs (the ``if`` body, or its ``else``).
    Guard = Tuple[Term, bool]

_fresh = itertools.count()
_UNKNOWN = object()
_WHOLE = 1 << 62


#: A mode switch or training step: ``site``, the sequence number of the call,
#: in the analysed scope, that makes it happen; ``kind``, "eval", "train",
#: "train?" (``.train(flag)``, flag unknown), "step" (a weight update, or a
#: call named like a training step) or "backward"; ``guards``, a tuple of
#: ``Guard``; ``flag``, the flag of ``.train(flag)`` (a ``Term`` or None);
#: ``model``, for a switch, the name the analysed scope binds the switched
#: model to (``""``: unknown, or not a name there); ``key``, for a switch of
#: an attribute of ``self`` (``self.backbone.eval()``), the attribute as
#: the analysed scope's ``self`` has it (``self.backbone``), else ``""``.
#: A tuple (events are sorted as tuples), made by collections.namedtuple: a
#: typing.NamedTuple class costs twice as much to create at import.
_Event = namedtuple("_Event", ("site", "kind", "guards", "flag", "model", "key"), defaults=((), None, "", ""))


def _opaque() -> Term:
    return ("?", next(_fresh))


def _term(expr: Optional[ast.expr]) -> Term:
    if isinstance(expr, ast.Name):
        return ("name", expr.id)
    if isinstance(expr, ast.Attribute) and expr.attr == "training" and isinstance(expr.value, ast.Name):
        return ("training", ("name", expr.value.id))  # ``if self.training:``
    if isinstance(expr, ast.Constant) and (expr.value is None or isinstance(expr.value, (bool, int, float, str))):
        return ("const", expr.value)
    if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, ast.Not):
        return ("not", _term(expr.operand))
    if isinstance(expr, ast.BoolOp):
        return ("and" if isinstance(expr.op, ast.And) else "or", tuple(_term(v) for v in expr.values))
    if isinstance(expr, ast.Compare) and len(expr.ops) == 1:
        op = expr.ops[0]
        left, right = _term(expr.left), expr.comparators[0]
        if isinstance(op, (ast.Eq, ast.NotEq)):
            term: Term = ("==", left, _term(right))
        elif isinstance(op, (ast.Is, ast.IsNot)):
            term = ("is", left, _term(right))
        elif isinstance(op, (ast.In, ast.NotIn)) and isinstance(right, (ast.Tuple, ast.List, ast.Set)):
            values = [_term(e) for e in right.elts]
            if not all(v[0] == "const" for v in values):
                return _opaque()
            if len(values) == 1:
                term = ("==", left, values[0])  # ``phase in ["train"]`` is ``phase == "train"``
            else:
                term = ("in", left, tuple(v[1] for v in values))
        else:
            return _opaque()
        return ("not", term) if isinstance(op, (ast.NotEq, ast.IsNot, ast.NotIn)) else term
    return _opaque()


def _guard(expr: ast.expr, holds: bool) -> Guard:
    term = _term(expr)
    while term[0] == "not":
        term, holds = term[1], not holds
    return term, holds


def _value(term: Term) -> object:
    """What a condition evaluates to, or ``_UNKNOWN``."""
    tag = term[0]
    if tag == "const":
        return term[1]
    if tag == "not":
        inner = _value(term[1])
        return inner if inner is _UNKNOWN else not inner
    if tag in ("==", "is"):
        left, right = _value(term[1]), _value(term[2])
        if left is _UNKNOWN or right is _UNKNOWN:
            return _UNKNOWN
        same = type(left) is type(right) and left == right
        return same if tag == "is" else (same or left == right)
    if tag == "in":
        left = _value(term[1])
        return left if left is _UNKNOWN else left in term[2]
    if tag in ("and", "or"):
        values = [_value(t) for t in term[1]]
        stop = (lambda v: not v) if tag == "and" else bool
        if any(v is not _UNKNOWN and stop(v) for v in values):
            return tag == "or"
        return _UNKNOWN if any(v is _UNKNOWN for v in values) else tag == "and"
    return _UNKNOWN


def _subst(term: Term, env: Dict[str, Term], fresh: Dict[Term, Term]) -> Term:
    """``term`` in the caller's names: parameters become the arguments, other
    names and unknown parts become unknowns of this one call."""
    tag = term[0]
    if tag == "name":
        if term[1] in env:
            return env[term[1]]
        return fresh.setdefault(term, _opaque())
    if tag == "?":
        return fresh.setdefault(term, _opaque())
    if tag == "const":
        return term
    if tag == "not":
        return ("not", _subst(term[1], env, fresh))
    if tag in ("and", "or"):
        return (tag, tuple(_subst(t, env, fresh) for t in term[1]))
    if tag == "in":
        return ("in", _subst(term[1], env, fresh), term[2])
    if tag == "training":
        return ("training", _subst(term[1], env, fresh))
    return (tag, _subst(term[1], env, fresh), _subst(term[2], env, fresh))


def _names(term: Term) -> Set[str]:
    tag = term[0]
    if tag == "name":
        return {term[1]}
    if tag in ("const", "?"):
        return set()
    if tag in ("and", "or"):
        return {n for t in term[1] for n in _names(t)}
    if tag in ("not", "in", "training"):
        return _names(term[1])
    return _names(term[1]) | _names(term[2])


def _walk_scope(root: ast.AST):
    """The nodes of a function body (or the module), not of nested functions."""
    todo = list(ast.iter_child_nodes(root))
    while todo:
        node = todo.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            todo.extend(ast.iter_child_nodes(node))


def _guards_of(ctx, scope: flow.Scope) -> Dict[int, Tuple[Guard, ...]]:
    """The ``if`` conditions around each call of ``scope`` that is one of its
    events (by ``id`` of the call).  Only statements are walked, and the
    expressions of a statement only when one of those calls is on its lines."""
    key = ("grd103-guards", id(scope))
    cached = ctx.flow.cache.get(key)
    if cached is not None:
        return cached
    nodes = ctx.flow.nodes
    sites = [*scope.eval_switches, *scope.train_switches, *scope.maybe_train_switches, *scope.training_steps]
    sites += [site for site, _ in scope.local_calls]
    lines = sorted(
        {getattr(nodes[s], "lineno", 0) for s in sites if s in nodes} | {c.node.lineno for c in scope.model_calls}
    )
    out: Dict[int, Tuple[Guard, ...]] = {}
    root = scope.function.node if scope.function is not None else ctx.tree
    todo: List[Tuple[ast.AST, Tuple[Guard, ...]]] = [(stmt, ()) for stmt in getattr(root, "body", ())]
    while todo and lines:
        node, guards = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        first = bisect.bisect_left(lines, node.lineno)  # type: ignore[attr-defined]
        end = getattr(node, "end_lineno", None) or node.lineno  # type: ignore[attr-defined]
        if first == len(lines) or lines[first] > end:
            continue  # none of the calls asked about is on these lines
        if isinstance(node, ast.If):
            _expression_guards(node.test, guards, out)
            todo.extend((child, guards + (_guard(node.test, True),)) for child in node.body)
            todo.extend((child, guards + (_guard(node.test, False),)) for child in node.orelse)
            continue
        inner = [c for c in ast.iter_child_nodes(node) if isinstance(c, ast.stmt)]
        if not inner:
            _expression_guards(node, guards, out)
            continue
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.stmt):
                todo.append((child, guards))
            elif isinstance(child, (ast.excepthandler, ast.match_case)):
                todo.extend((stmt, guards) for stmt in child.body)
            else:
                _expression_guards(child, guards, out)
    ctx.flow.cache[key] = out
    return out


def _expression_guards(root: ast.AST, guards: Tuple[Guard, ...], out: Dict[int, Tuple[Guard, ...]]) -> None:
    """Every call in ``root`` (not in nested functions) with its conditions."""
    todo: List[Tuple[ast.AST, Tuple[Guard, ...]]] = [(root, guards)]
    while todo:
        node, guards = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        if isinstance(node, ast.Call):
            out[id(node)] = guards
        if isinstance(node, (ast.If, ast.IfExp)):
            todo.append((node.test, guards))
            body = node.body if isinstance(node.body, list) else [node.body]
            orelse = node.orelse if isinstance(node.orelse, list) else [node.orelse]
            todo.extend((child, guards + (_guard(node.test, True),)) for child in body)
            todo.extend((child, guards + (_guard(node.test, False),)) for child in orelse)
            continue
        todo.extend((child, guards) for child in ast.iter_child_nodes(node))


def _stored(root: ast.AST) -> Dict[str, int]:
    """How many times a function or loop (not its nested functions) binds each name."""
    counts: Dict[str, int] = {}
    for n in _walk_scope(root):
        if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load):
            counts[n.id] = counts.get(n.id, 0) + 1
    return counts


def _arguments(call: ast.Call, callee: flow.Scope, key: Tuple[str, ...]) -> Dict[str, Term]:
    """The callee's parameters as the call passes them (defaults included),
    in the caller's terms; parameters the callee reassigns are left out."""
    fn = callee.function.node if callee.function is not None else None
    if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return {}
    env: Dict[str, Term] = {
        name: _term(default) for name, default in param_defaults(fn.args).items() if isinstance(default, ast.Constant)
    }
    params = positional_params(fn, key[0] in ("method", "super"))
    starred = any(isinstance(a, ast.Starred) for a in call.args)
    if starred or any(kw.arg is None for kw in call.keywords):
        env = {}  # ``f(*args)``, ``f(**options)``: which parameter gets what is not visible
    if not starred:
        env.update(zip(params, (_term(a) for a in call.args)))
    for kw in call.keywords:
        if kw.arg is not None:
            env[kw.arg] = _term(kw.value)
    stored = callee.stored  # what ``_stored(fn)`` counts, recorded by the walk
    unwrapped = _unwrappings(fn) if stored.keys() & env.keys() else {}
    for name, count in stored.items():
        if unwrapped.get(name) != count:
            env.pop(name, None)  # (``model = model.module`` is the same model, out of ``DataParallel``)
    for stmt in fn.body:
        # ``train = (phase == "train")`` once, at the top: a condition on the
        # arguments, the same for the whole call
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            name = stmt.targets[0].id
            term = _term(stmt.value)
            if stored.get(name) == 1 and term[0] != "?" and _names(term) and _names(term) <= env.keys():
                env[name] = _subst(term, env, {})
    return env


def _unwrappings(fn: ast.AST) -> Dict[str, int]:
    """How often ``fn`` binds each name to its own ``.module`` (``model =
    model.module``, the model a ``DataParallel`` wraps)."""
    found: Dict[str, int] = {}
    for node in ast.walk(fn):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name, value = node.targets[0].id, node.value
            if isinstance(value, ast.Attribute) and value.attr == "module" and isinstance(value.value, ast.Name) \
                    and value.value.id == name:
                found[name] = found.get(name, 0) + 1
    return found


def _imported_evals(ctx, loop: flow.Loop) -> List[_Event]:
    """Switches to eval mode by calls in a training loop of functions of
    other modules of the project that leave a model they are handed in eval
    mode and switch nothing to training mode (``eval_net(net, val)`` with
    ``def eval_net(net, dataset): net.eval(); ...``), with the model as the
    loop names it.  Asked only of a call named like evaluation."""
    if not loop.imported_calls or not loop.step_seqs:
        return []
    names = ctx.settings.eval_names
    return _imported_switches(
        ctx, loop, "eval", lambda key: ctx.eval_leaves(key) if says_eval_function(key.rpartition(".")[2], names) else []
    )


def _built_in_the_pass(loop: flow.Loop, event: _Event) -> bool:
    """Is the model the switch is about one the loop builds afresh in the
    same pass before it (``eval_model = Net(...)``, given the trained
    model's weights, then ``evaluate(eval_model)``)?  The steps train the
    model the optimizer was built over, not that copy."""
    built = loop.scope.constructed.get(event.model) if event.model else None
    return built is not None and loop.seq < built[0] < event.site


def _imported_trains(ctx, loop: flow.Loop) -> List[_Event]:
    """Switches to training mode by calls in the loop of functions of other
    modules of the project that leave a model they are handed in training
    mode and switch nothing to eval mode (``model_train(net)`` with
    ``def model_train(net): net.train()``).  Asked only of a loop that
    switches to eval mode and trains."""
    return _imported_switches(ctx, loop, "train", ctx.train_leaves)


def _imported_switches(ctx, loop: flow.Loop, kind: str, positions_of) -> List[_Event]:
    """One ``kind`` event per imported call in the loop that hands over, at
    one of the positions ``positions_of(key)`` gives, a model it names."""
    guards: Optional[Dict[int, Tuple[Guard, ...]]] = None
    out = []
    for call in loop.imported_calls:
        node = call.node
        for position in positions_of(call.key):
            if position < len(node.args) and not any(isinstance(a, ast.Starred) for a in node.args[:position + 1]):
                model = dotted(node.args[position])
                if model is not None:
                    if guards is None:
                        guards = _guards_of(ctx, loop.scope)
                    out.append(_Event(call.seq, kind, guards.get(id(node), ()), None, model))
                    break
    return out


def _imports_mode_dependent_model(ctx) -> bool:
    """Does the module import a project class whose modules name dropout or
    batch or instance norm (``from unet import UNet``)?  Asked only of a
    module whose own code does not show that the mode matters."""
    imports = ctx.imports
    return any(
        name[:1].isupper() and ctx.mode_dependent_class(name) for name in imports.imported_names()
    )


def _may_switch_to_eval(ctx, scope: flow.Scope, lo: int, hi: int, memo: Dict[int, bool]) -> bool:
    """Does ``scope`` switch something to eval mode between ``lo`` and ``hi``,
    itself or through the module-local functions it calls there?"""
    if any(lo < s < hi for s in scope.eval_switches):
        return True
    for site, key in scope.local_calls:
        if lo < site < hi:
            for callee in flow.callees(ctx, scope, key):
                if id(callee) not in memo:
                    memo[id(callee)] = False  # in progress: recursion adds nothing
                    memo[id(callee)] = _may_switch_to_eval(ctx, callee, -1, _WHOLE, memo)
                if memo[id(callee)]:
                    return True
    return False


def _events(ctx, scope: flow.Scope, lo: int, hi: int) -> List[_Event]:
    """Mode switches and training steps between ``lo`` and ``hi`` in
    ``scope``, in order, with the conditions they run under."""
    guards = _guards_of(ctx, scope)
    nodes = ctx.flow.nodes

    def guards_at(site: int) -> Tuple[Guard, ...]:
        node = nodes.get(site)
        return guards.get(id(node), ()) if node is not None else ()

    raw: List[Tuple[int, object]] = [
        (s, "eval") for s in scope.eval_switches
        if lo < s < hi and not _freezes_layers(ctx, scope, s) and not _frozen_next(ctx, scope, s)
    ]
    raw += [(s, "train") for s in scope.train_switches if lo < s < hi]
    raw += [(s, "train?") for s in scope.maybe_train_switches if lo < s < hi]
    if scope.method_calls:
        named = _training_methods(ctx)
        # ``discriminator.train_custom()``, a method of the module's classes that switches to training mode
        raw += [(s, "train?") for s, name in scope.method_calls if lo < s < hi and name in named]
    steps = [s for s in scope.training_steps if lo < s < hi and not _steps_own_tensors(scope, nodes.get(s))]
    if steps:
        dead = flow.dead_branch_nodes(ctx, scope)  # ``if l_name == "train":`` in a loop over valid and test
        raw += [(s, _step_kind(nodes.get(s))) for s in steps if id(nodes.get(s)) not in dead]
    raw += [(s, key) for s, key in scope.local_calls if lo < s < hi]
    if _manages_several_models(ctx, scope, lo, hi):
        raw = [e for e in raw if e[1] != "eval"]
    expanded: Dict[int, List[_Event]] = {}
    for site, key in raw:
        if isinstance(key, tuple):
            expanded.setdefault(site, []).extend(_call_events(ctx, scope, site, key, guards_at(site)))
    out: List[_Event] = []
    for site, kind in sorted(raw, key=lambda e: e[0]):
        if isinstance(kind, tuple):
            continue
        if kind in ("step", "backward") and expanded.get(site):
            continue  # ``self.train_step(x)``: judged by its body, not its name
        flag = None
        if kind == "train?":
            node = nodes.get(site)
            flag = _term(mode_value(node)) if node is not None else _opaque()
        model = _switched_model(ctx, site) if kind in ("eval", "train", "train?") else ""
        at = site
        if kind in ("train", "train?") and expanded:
            # ``train(model.train(), x, y)``: an argument is evaluated before the body runs
            at = min((call for call in expanded if call < site and _in_arguments(nodes.get(call), nodes.get(site))),
                     default=site)
        out.append(_Event(at, kind, guards_at(site), flag, model, _self_attribute(ctx, site) if model else ""))
    for site, body in expanded.items():
        out.extend(body)
    out += [
        _Event(c.seq, "forward", guards.get(id(c.node), ()))
        for c in scope.model_calls
        if lo < c.seq < hi and c.state is not Grad.DISABLED and flow.is_model_call(ctx, c)
    ]  # forwards that may build a graph for a training step
    out.sort(key=lambda e: e.site)  # stable: a call's body keeps its order
    return _without_frozen_models(out)


def _in_arguments(call: Optional[ast.AST], node: Optional[ast.AST]) -> bool:
    """Is ``node`` part of an argument of ``call``?"""
    if not isinstance(call, ast.Call) or node is None:
        return False
    where = (node.lineno, node.col_offset)  # type: ignore[attr-defined]
    return any(
        (arg.lineno, arg.col_offset) <= where <= (arg.end_lineno or arg.lineno, arg.end_col_offset or 0)
        for arg in [*call.args, *(k.value for k in call.keywords)]
    )


def _without_frozen_models(events: List[_Event]) -> List[_Event]:
    """Leave out ``.eval()`` on a model that these events never switch to
    training mode while they do switch others, all known by name
    (``model.train(); original_model.eval()``, also inside the functions
    the loop calls): a frozen feature extractor or teacher, kept in eval
    mode on purpose."""
    trains = {e.model for e in events if e.kind in ("train", "train?")}
    if not trains or "" in trains:
        return events
    frozen = {e.model for e in events if e.kind == "eval" and e.model and e.model not in trains}
    if not frozen:
        return events
    return [e for e in events if not (e.kind == "eval" and e.model in frozen)]


def _training_methods(ctx) -> FrozenSet[str]:
    """Names of the module's methods (``train_custom``) every definition of
    which switches a model to training mode and none to eval mode: a call of
    one on an object of unknown class may be a switch back to training."""
    found = ctx.flow.cache.get(("training-methods",))
    if found is None:
        verdicts: Dict[str, bool] = {}
        for key, scopes in ctx.flow.by_key.items():
            if key[0] != "method" or key[-1] in ("train", "eval"):
                continue
            for scope in scopes:
                switches = bool(scope.train_switches) and not scope.eval_switches
                verdicts[key[-1]] = verdicts.get(key[-1], True) and switches
        found = ctx.flow.cache[("training-methods",)] = frozenset(name for name, ok in verdicts.items() if ok)
    return found


def _freezes_layers(ctx, scope: flow.Scope, site: int) -> bool:
    """Is the switch at ``site`` an ``.eval()`` on a layer drawn from
    ``for m in net.modules():``?  Freezing (batch norm) layers for the
    training that follows is deliberate; it leaves the model training."""
    return flow.switches_a_layer(ctx, scope, site)


def _frozen_next(ctx, scope: flow.Scope, site: int) -> bool:
    """Is the switch at ``site`` a ``net.eval()`` (``net.train(False)``)
    after which the scope switches grad off for ``net``'s parameters
    (``net.requires_grad_(False)``) before any training step?  The model is
    frozen from there on, on purpose (a text encoder whose training stops at
    some step), and trains no more."""
    if not scope.frozen_models:
        return False
    call = ctx.flow.nodes.get(site)
    func = getattr(call, "func", None)
    frozen = scope.frozen_models.get(dotted(func.value) or "") if isinstance(func, ast.Attribute) else None
    return frozen is not None and frozen > site and not any(site < s < frozen for s in scope.training_steps)


def _call_events(ctx, scope: flow.Scope, site: int, key: Tuple[str, ...], outer: Tuple[Guard, ...]) -> List[_Event]:
    """The events of the module-local functions a call reaches, as seen from the call."""
    call = ctx.flow.nodes.get(site)
    out: List[_Event] = []
    for callee in flow.callees(ctx, scope, key):
        if callee is scope or call is None:
            continue
        memo = ("grd103-events", id(callee))
        body = ctx.flow.cache.get(memo)
        if body is None:
            ctx.flow.cache[memo] = []  # a call in progress (recursion) shows nothing
            body = ctx.flow.cache[memo] = _events(ctx, callee, 0, _WHOLE)
        if not body:
            continue
        env = _arguments(call, callee, key)
        for param, term in env.items():
            if term[0] == "name" and _an_optimizer(ctx, scope, term[1]):
                env[param] = ("const", True)  # ``run(loader, optimizer=optimizer)``: ``if optimizer:`` holds
        fresh: Dict[Term, Term] = {}
        disabled = ctx.flow.call_states.get(site) is Grad.DISABLED
        own, afresh, made = _callee_models(ctx, callee)
        own = own | _built_for_the_call(call, callee)
        restores = flow.restores_mode(ctx, callee)
        on_self = isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name) and (
            call.func.value.id == "self")
        for event in body:
            if disabled and event.kind in ("step", "backward", "forward"):
                continue  # a step called under no_grad trains nothing
            if restores and event.kind in ("eval", "train", "train?"):
                continue  # ``was_training = model.training`` ... ``if was_training: model.train()``
            if own and event.kind in ("eval", "train", "train?") and event.model in own:
                continue  # ``net = Net(); net.eval()``: a model of its own, not the caller's
            if event.kind == "eval" and event.model in made:
                # ``vae = load_vae(path)`` of ``vae = Net(); vae.eval(); return vae``: each
                # call makes the model it switches, a copy the caller's steps do not
                # train (as ``_built_in_the_pass`` says of one built in the loop)
                continue
            if afresh and (event.kind in ("step", "backward", "forward") or event.model in afresh):
                continue  # ``enc = Enc(); train...; enc.eval(); return enc``: each call trains a new model
            translated = _translate(event, env, fresh, site, outer, on_self)
            if translated is not None:
                out.append(translated)
    return out


def _callee_models(ctx, callee: flow.Scope) -> Tuple[Set[str], Set[str], Set[str]]:
    """A called function's own models (``_own_models``), the models it
    trains afresh on every call (``_trains_a_model_built_afresh``) and all
    the models it builds (``_built_models``), worked out once per function."""
    memo = ("grd103-models", id(callee))
    found = ctx.flow.cache.get(memo)
    if found is None:
        built = _built_models(ctx, callee)
        found = ctx.flow.cache[memo] = (
            _own_models(callee, built), _trains_a_model_built_afresh(ctx, callee, built), built,
        )
    return found  # type: ignore[return-value]


def _trains_a_model_built_afresh(ctx, scope: flow.Scope, built: Set[str]) -> Set[str]:
    """The models ``scope``'s function builds on every call (``built``), when
    each of its training steps is ``opt.step()`` of an optimizer it builds
    over one of them (``enc = SSLEnc(d); opt = Adam(enc.parameters())``);
    else none.  Its switches and steps reach no model of its caller's, and a
    switch to eval mode at its end (``enc.eval(); return enc``) reaches no
    model the next call trains."""
    if not scope.training_steps or not built:
        return set()
    stepped = False
    for seq in scope.training_steps:
        node = ctx.flow.nodes.get(seq)
        func = getattr(node, "func", None)
        if isinstance(func, ast.Attribute) and func.attr == "backward":
            continue  # ``loss.backward()``: the step that follows says which model learns
        if not (isinstance(func, ast.Attribute) and func.attr == "step" and isinstance(func.value, ast.Name)):
            return set()
        stepped = True
        name = func.value.id
        if not _an_optimizer(ctx, scope, name) and node.args and isinstance(node.args[0], ast.Name):  # type: ignore
            name = node.args[0].id  # type: ignore[union-attr]  # ``scaler.step(optimizer)``
        if not _an_optimizer(ctx, scope, name) or not all(
            _derived_from(scope, value, built, 3) for value in scope.deps[name] if not _passes_on(value, name)
        ):
            return set()
    return built if stepped else set()


def _derived_from(scope: flow.Scope, value: ast.expr, built: Set[str], depth: int) -> bool:
    """Does ``value`` name one of ``built``, itself or through the values
    ``scope`` binds the names it reads to, up to ``depth`` bindings back
    (``groups = param_groups(model)``, ``optimizer_groups = [{"params":
    groups["head"]}]``, then ``AdamW(optimizer_groups)``)?"""
    for node in ast.walk(value):
        if isinstance(node, ast.Name):
            if node.id in built:
                return True
            if depth and any(_derived_from(scope, v, built, depth - 1) for v in scope.deps.get(node.id, ())):
                return True
    return False


def _passes_on(value: ast.expr, name: str) -> bool:
    """Is ``value`` a call handed ``name`` itself (``model, optimizer =
    resume(model, optimizer, path)``), which gives back what it was given?"""
    return isinstance(value, ast.Call) and any(isinstance(a, ast.Name) and a.id == name for a in value.args)


def _built_for_the_call(call: ast.Call, callee: flow.Scope) -> Set[str]:
    """The parameters of the called function, ``None`` by default, that the
    call leaves out (or passes ``None``: ``flow.left_at_none``) and that the
    function binds to a model it makes (``def run_eval(cfg, model=None): if
    model is None: model = get_model(cfg)`` called as ``run_eval(cfg)``):
    what it does to them reaches no model of the caller's."""
    fn = callee.function
    if fn is None or not isinstance(fn.node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return set()
    left = flow.left_at_none(fn, call) or set()
    return {name for name in left if any(_made(value, name) is True for value in callee.deps.get(name, ()))}


def _an_optimizer(ctx, scope: flow.Scope, name: str) -> bool:
    """Does ``scope`` bind ``name`` only to optimizers it builds
    (``optimizer = torch.optim.Adam(...)``, a class named like one,
    ``ConstrainedAdam(...)``, or a call of a function named to make one:
    ``get_optimizer(model, cfg)``)?  An optimizer is neither None
    nor false, whatever the call's other conditions are."""
    values = scope.deps.get(name)
    made = [value for value in values or () if not _passes_on(value, name)]
    return bool(made) and all(
        isinstance(value, ast.Call) and (
            (ctx.imports.resolve(value.func) or "").startswith("torch.optim.")
            or last_name(value.func) in _OPTIMIZER_MAKERS or last_name(value.func).endswith(_OPTIMIZER_CLASSES)
        )
        for value in made
    )


#: How optimizer classes' names end (``ConstrainedAdam``, ``LARSOptimizer``).
_OPTIMIZER_CLASSES = (
    "Adam", "AdamW", "SGD", "RMSprop", "Adagrad", "Adadelta", "Adamax", "NAdam", "RAdam", "LBFGS", "Lamb",
    "LARS", "Lion", "Optimizer",
)
#: Functions named to make an optimizer.
_OPTIMIZER_MAKERS = frozenset(
    f"{verb}_{noun}" for verb in ("get", "build", "make", "create", "init", "configure", "setup")
    for noun in ("optimizer", "optim")
)


def _translate(
    event: _Event, env: Dict[str, Term], fresh: Dict[Term, Term], site: int, outer: Tuple[Guard, ...],
    on_self: bool = False,
) -> Optional[_Event]:
    """A callee's event at the call ``site``; None when its conditions are
    false there.  ``on_self``: the call is ``self.method(...)``, whose
    ``self`` is the caller's."""
    guards = list(outer)
    # ``if self.training:`` in a method called on ``self``: the caller's ``self``
    within = {**env, "self": ("name", "self")} if on_self and "self" not in env else env
    for term, holds in event.guards:
        term = _subst(term, within, fresh)
        value = _value(term)
        if value is _UNKNOWN:
            guards.append((term, holds))
        elif bool(value) is not holds:
            return None  # ``if opt is not None:`` with ``opt=None``
    kind, flag = event.kind, event.flag
    if flag is not None:
        flag = _subst(flag, env, fresh)
        value = _value(flag)
        if value is not _UNKNOWN:
            kind, flag = ("train" if value else "eval"), None
    # the switched model in the caller's names: ``validate(net)`` switches ``net``
    handed = env.get(event.model) if event.model else None
    model = handed[1] if handed is not None and handed[0] == "name" else ""
    return _Event(site, kind, tuple(guards), flag, model, event.key if on_self else "")


def _own_models(scope: flow.Scope, built: Set[str]) -> Set[str]:
    """Of the names ``scope``'s function binds to a model it builds itself
    (``built``: ``net = Net()``), those it does not return: switching one
    of them leaves its caller's models as they were."""
    for value in scope.return_values:  # ``return net``, ``return net, optimizer``
        built = built - {e.id for e in (value.elts if isinstance(value, ast.Tuple) else [value]) if isinstance(e, ast.Name)}
    return built


def _built_models(ctx, scope: flow.Scope) -> Set[str]:
    """Names ``scope``'s function binds to a model it builds itself on each
    call, never to one handed to it."""
    fn = scope.function
    if fn is None:
        return set()
    # every value bound to the name builds an object (``net = Net()``, then
    # ``net = nn.DataParallel(net)``): ``model = nn.DataParallel(self.model)``
    # after ``model = self.model`` wraps the caller's model, not a new one
    built = {
        name for name in set(scope.constructed) | scope.built_models
        if all(_builds(value) for value in scope.deps.get(name, ()))
    }
    # ``model = models.create(args.net)``, or ``model = torch.load(path)``,
    # then ``model = model.cuda()``: made by a factory or a loader, every time
    built |= {
        name for name, values in scope.deps.items()
        if any(_made(value, name) is True for value in values) and all(_made(value, name) is not False for value in values)
    }
    if not built:
        return set()
    args = fn.node.args
    handed = {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)}
    return built - handed


def _builds(value: ast.expr) -> bool:
    """``Net(...)``, ``Net(...).cuda()``: a call of a capitalised callee, or
    of a class handed over by a name that says so (``cls(dim)``,
    ``model_class(dim)``)."""
    value = unchained(value)
    if not isinstance(value, ast.Call):
        return False
    name = last_name(value.func)
    return name[:1].isupper() or name in ("cls", "klass") or name.endswith(("_cls", "_class"))


#: Calls that make a model afresh (``models.create(...)``, ``torch.load(...)``).
_MAKERS = ("create", "create_model", "build_model", "get_model", "load", "from_pretrained")


def _made(value: ast.expr, name: str) -> Optional[bool]:
    """Does ``value`` make a model afresh (True: a factory or loader call,
    ``Net(...)``), pass on the one ``name`` holds (None: ``model.cuda()``,
    ``nn.DataParallel(model)``), or neither (False)?"""
    if _builds(value) and not (isinstance(value, ast.Call) and any(
        isinstance(a, ast.Name) and a.id == name for a in value.args
    )):
        return True
    base = unchained(value)
    if isinstance(base, ast.Name) and base.id == name:
        return None
    if isinstance(base, ast.Call):
        if any(isinstance(a, ast.Name) and a.id == name for a in base.args):
            return None  # ``nn.DataParallel(model)``
        if _maker(last_name(base.func)):
            return True
    return False


def _maker(name: str) -> bool:
    """A factory's or loader's name: ``_MAKERS``, or ``build``, ``make`` or
    ``create`` alone or first (``discovered.build(spec)``, ``_make_model(...)``)."""
    name = name.lstrip("_")
    return name in _MAKERS or name.split("_", 1)[0] in ("build", "make", "create")


def _self_attribute(ctx, site: int) -> str:
    """``self.backbone`` for ``self.backbone.eval()`` (or ``.train()``) at ``site``, else ``""``."""
    parts = (ctx.flow.switch_keys.get(site) or "").split(".")
    return ".".join(parts[:2]) if len(parts) > 1 and parts[0] == "self" else ""


def _kept_in_eval(ctx, loop: flow.Loop) -> Set[str]:
    """The attributes of ``self`` the loop's function switches to eval mode
    before the loop and never to training mode (``self.backbone.eval()``
    once, then a loop that trains a head on its features): a frozen model,
    which a validation the loop calls may switch to eval mode again."""
    scope = loop.scope
    kept = {_self_attribute(ctx, s) for s in scope.eval_switches if s < loop.seq} - {""}
    if kept:
        kept -= {_self_attribute(ctx, s) for s in (*scope.train_switches, *scope.maybe_train_switches)}
    return kept


def _run_only_without_grad(ctx, loop: flow.Loop, names: Set[str]) -> Set[str]:
    """Those of ``names`` (models the loop switches to eval mode) that the
    loop only switches, moves and runs with grad disabled, at least once
    (``model.eval()``, then ``with torch.no_grad(): feature = model(img)``
    and a classifier trained on the features): a frozen feature extractor,
    kept in eval mode on purpose, that no training step of the loop trains."""
    names = {n for n in names if n and n != "self"}
    if not names:
        return set()
    silent = {id(c.node) for c in loop.scope.model_calls if c.state is Grad.DISABLED}
    run: Set[str] = set()
    parents = {id(child): node for node in ast.walk(loop.node) for child in ast.iter_child_nodes(node)}
    for node in ast.walk(loop.node):
        if node.__class__ is not ast.Name or node.id not in names:  # type: ignore[attr-defined]
            continue
        name = node.id  # type: ignore[attr-defined]
        parent = parents.get(id(node))
        if parent.__class__ is ast.Call and parent.func is node and id(parent) in silent:  # type: ignore
            run.add(name)
            continue
        call = parents.get(id(parent))
        if not (
            parent.__class__ is ast.Attribute and parent.attr in _SWITCHES_AND_MOVES  # type: ignore[union-attr]
            and call.__class__ is ast.Call and call.func is parent  # type: ignore[union-attr]
        ) and not isinstance(getattr(node, "ctx", None), ast.Store):
            names = names - {name}
    return run & names


#: What a frozen model's name may do in a loop besides running without grad
_SWITCHES_AND_MOVES = frozenset({"eval", "train", "to", "cuda", "cpu"})


def _switched_model(ctx, site: int) -> str:
    """The name whose ``.eval()``/``.train()`` is called at ``site``, as bound
    (``net`` of ``net.module.eval()``)."""
    return (ctx.flow.switch_keys.get(site) or "").split(".", 1)[0]


def _manages_several_models(ctx, scope: flow.Scope, lo: int, hi: int) -> bool:
    """``shared.train(); controller.eval()``: code that puts one model in
    training mode and another in eval mode does so on purpose."""
    keys = ctx.flow.switch_keys
    evals = {keys.get(s) for s in scope.eval_switches if lo < s < hi}
    trains = {keys.get(s) for s in scope.train_switches if lo < s < hi}
    if evals and not trains:
        # ``generator.train()`` before the loop, ``teacher.eval()`` in it: the
        # loop trains the one and only queries the other; not when a model
        # switched to training mode before it is among those put in eval mode
        before = {keys.get(s) for s in scope.train_switches if s < lo}
        return bool(before) and evals.isdisjoint(before)
    return bool(evals and trains and evals != trains)


def _switched_back_later(ctx, loop: flow.Loop, events: List[_Event], i: int, j: int) -> bool:
    """Is the step at ``j`` reached in the same pass as the switch at ``i``,
    while the loop also switches that same model back with a ``.train()`` of
    its own in that pass (after the step, or before the switch: not in the
    other branch of a ``phase`` condition)?  Then
    the author keeps it in eval mode for that step on purpose (a GAN's
    discriminator while the generator learns, a critic while the policy
    learns) and restores it."""
    keys = ctx.flow.switch_keys

    def switched(event: _Event) -> str:
        # a switch inside a function the loop calls is known by the model it
        # was handed, or, in a method of the class, by its ``self`` attribute
        return keys.get(event.site) or event.model or event.key

    switch = events[i]
    model = switched(switch)
    if not model:
        return False
    return any(
        e.kind == "train" and switched(e) == model and not _exclusive(ctx, loop, *sorted((e, switch)))
        for e in (*events[:i], *events[j + 1:])
    )


def _steps_own_tensors(scope: flow.Scope, node: Optional[ast.AST]) -> bool:
    """``opt.step()`` of ``opt = optim.SGD([delta], lr=...)``, an optimizer the
    function built over tensors of its own (an adversarial perturbation, a
    latent code): it moves those tensors and trains no model."""
    func = getattr(node, "func", None)
    if not (isinstance(func, ast.Attribute) and func.attr == "step" and isinstance(func.value, ast.Name)):
        return False
    values = scope.deps.get(func.value.id)
    if not values:
        return False
    for value in values:
        if not (isinstance(value, ast.Call) and value.args and isinstance(value.args[0], (ast.List, ast.Tuple))):
            return False
        tensors = value.args[0].elts
        if not tensors or not all(isinstance(e, ast.Name) and e.id in scope.deps for e in tensors):
            return False
    return True


def _step_kind(node: Optional[ast.AST]) -> str:
    """``"backward"`` for ``loss.backward()`` (gradients only, so far),
    ``"step"`` for every other training step."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        if node.func.attr in ("backward", "manual_backward"):
            return "backward"
    return "step"


def _starts_in_train_mode(ctx, loop: flow.Loop, events: List[_Event]) -> bool:
    """The loop body switches to training mode before anything else it does
    (``for epoch ...: model.train()``): whatever the end of one iteration
    leaves, the next one trains in training mode."""
    if not events or events[0].kind != "train" or events[0].guards:
        return False
    node = ctx.flow.nodes.get(events[0].site)
    return node is not None and any(isinstance(s, ast.Expr) and s.value is node for s in loop.node.body)


def _exclusive(ctx, loop: flow.Loop, first: _Event, later: _Event) -> bool:
    """Can ``later`` not run in the pass of the loop body where ``first``
    ran: they sit under conditions that exclude each other (``phase ==
    "train"`` and its ``else``; ``phase == "train"`` and ``phase == "val"``),
    and nothing the conditions read is assigned in between?"""
    for a in first.guards:
        for b in later.guards:
            if _contradict(a, b) and not _rebound(ctx, loop, _names(a[0]) | _names(b[0]), first.site, later.site):
                return True
    return False


def _exclusive_in_every_pass(loop: flow.Loop, first: _Event, later: _Event) -> bool:
    """Can ``later`` never run in a later pass of the loop after ``first``:
    they sit under conditions that exclude each other, on names the loop
    never assigns (an enclosing loop's ``phase``)?"""
    assigned: Optional[Dict[str, int]] = None  # the names the loop binds, found once if needed
    for a in first.guards:
        for b in later.guards:
            names = _names(a[0]) | _names(b[0])
            if names and _contradict(a, b):
                assigned = _stored(loop.node) if assigned is None else assigned
                if not names & assigned.keys():
                    return True
    return False


def _contradict(a: Guard, b: Guard) -> bool:
    """Can the two conditions not hold together: one of them, or one of the
    parts it implies (``is_train`` of ``is_train and accum == n``), is
    the other's negation or names another value of the same thing?"""
    return any(_opposed(x, y) for x in _implied(a) for y in _implied(b))


def _implied(guard: Guard) -> List[Guard]:
    """The guard and what it implies: each part of an ``and`` that holds, of
    an ``or`` that fails (``not`` folded into whether it holds)."""
    term, holds = guard
    while term[0] == "not":
        term, holds = term[1], not holds
    out = [guard, (term, holds)]
    if term[0] == ("and" if holds else "or"):
        out.extend(implied for part in term[1] for implied in _implied((part, holds)))
    return out


def _opposed(a: Guard, b: Guard) -> bool:
    (ta, ha), (tb, hb) = a, b
    if ta == tb:
        return ha is not hb
    if ha and hb and ta[0] in ("==", "in") and tb[0] in ("==", "in"):
        sa, sb = _compared(ta), _compared(tb)
        return sa is not None and sb is not None and sa[0] == sb[0] and sa[1].isdisjoint(sb[1])
    return False


def _compared(term: Term) -> Optional[Tuple[Term, FrozenSet[object]]]:
    """``x == "train"`` -> (x, {"train"}); ``x in ("val", "test")`` -> (x, {"val", "test"})."""
    if term[0] == "in":
        return (term[1], frozenset(term[2])) if term[1][0] != "const" else None
    left, right = term[1], term[2]
    if right[0] == "const" and left[0] != "const":
        return left, frozenset((right[1],))
    if left[0] == "const" and right[0] != "const":
        return right, frozenset((left[1],))
    return None


def _rebound(ctx, loop: flow.Loop, names: Set[str], first: int, later: int) -> bool:
    """May a name in ``names`` be assigned between the call at ``first`` and
    the one at ``later`` (in one pass of ``loop``'s body)?  Assignments in
    between count, and so do those in an inner loop that holds one of the two
    calls and not the other (it may run again in between)."""
    if first == later:
        return False  # one call of a function: its arguments do not change
    nodes = ctx.flow.nodes
    a, b = nodes.get(first), nodes.get(later)
    if a is None or b is None:
        return True
    pa, pb = (a.lineno, a.col_offset), (b.lineno, b.col_offset)
    if pa >= pb:
        return True
    for node in _walk_scope(loop.node):
        if isinstance(node, ast.Name) and node.id in names and not isinstance(node.ctx, ast.Load):
            if pa < (node.lineno, node.col_offset) < pb:
                return True
        elif isinstance(node, (ast.For, ast.AsyncFor, ast.While)):
            start = (node.lineno, node.col_offset)
            end = (node.end_lineno or node.lineno, node.end_col_offset or 0)
            if (start <= pa <= end) != (start <= pb <= end) and names & _stored_in(node):
                return True
    return False


def _stored_in(node: ast.AST) -> Set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
