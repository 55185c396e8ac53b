from __future__ import annotations

import ast

from flake8_gradmode.context import Fix
from flake8_gradmode.rule import Holds, Invalid, Rule, Valid

_SWITCHES = frozenset({"eval", "train", "requires_grad_"})


class ModeSwitchNotCalled(Rule):
    code = "GRD002"
    name = "mode-switch-not-called"
    triggers = ("eval", "train", "requires_grad_")
    summary = "`model.eval`, `model.train` or `.requires_grad_` as a statement without the call"
    what = """
        Reports an expression statement that names `.eval`, `.train` or
        `.requires_grad_` without calling it: `model.eval` on a line of its own.
    """
    why = """
        The statement only looks the method up and throws it away.  The model
        stays in training mode, so dropout keeps dropping and batch norm keeps
        using and updating batch statistics during evaluation; metrics come out
        wrong and noisy, with no error anywhere.
    """
    known_problems = """
        Any object's `.eval`, `.train` or `.requires_grad_` is reported; a bare
        attribute lookup as a statement does nothing for any object, so the
        line is dead code at best.
    """
    fix_safety = """
        `flake8-gradmode --fix` adds `()`.  This changes behaviour on purpose:
        the model is then really switched, as the line's author meant.
    """
    references = (
        "https://pytorch.org/docs/stable/generated/torch.nn.Module.html#torch.nn.Module.eval",
    )

    VALID = (
        Valid(
            """
            import torch

            model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))
            model.eval()
            """,
            checks=(Holds("not model.training", "the model is in eval mode"),),
        ),
        Valid(
            """
            import torch

            model = torch.nn.Linear(4, 4)
            switch = model.train
            switch(False)
            """,
            title="Keeping a reference to the method is fine",
            checks=(Holds("not model.training", "the model is in eval mode"),),
        ),
    )
    INVALID = (
        Invalid(
            """
            import torch

            model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))
            model.eval
            """,
            at=((4, 0),),
            symptom=Holds("model.training", "the model is still in training mode"),
        ),
        Invalid(
            """
            import torch

            w = torch.zeros(3)
            w.requires_grad_
            """,
            at=((4, 0),),
            symptom=Holds("not w.requires_grad", "the tensor still does not require grad"),
        ),
    )

    def visit_Expr(self, node: ast.Expr) -> None:
        value = node.value
        if isinstance(value, ast.Attribute) and value.attr in _SWITCHES:
            written = self.code_of(value)
            self.report(
                value,
                f"`{written}` is not called, so it does nothing; write `{written}()`",
                fix=Fix("add-call", value),
            )
