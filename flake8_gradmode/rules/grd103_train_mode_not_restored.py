from __future__ import annotations

from typing import Set

from flake8_gradmode import flow
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
    fix_safety = "No fix is applied."
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
                            )
                        break
