from __future__ import annotations

import ast
from typing import FrozenSet

from flake8_gradmode.context import Fix
from flake8_gradmode.rule import Holds, Invalid, Rule, Valid
from flake8_gradmode.tracker import dotted

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
        line is dead code at best.  Except a settings object: one the module
        gives a text or number attribute (`cfg.data_dir = "/data/"`), or one
        named like settings (`cfg`, `config`, `args`, `opt`, `hparams` ...:
        `cfg.dataset.split.train`), whose `train` is a value, not a method
        (calling it would fail).
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
        Valid(
            """
            import types

            cfg = types.SimpleNamespace()
            cfg.data_dir = "/data/"
            cfg.train = True
            cfg.train
            """,
            title="A flag of a settings object",
            checks=(Holds("cfg.train is True", "`cfg.train` is a value, not a method"),),
        ),
        Valid(
            """
            import types

            cfg = types.SimpleNamespace(split=types.SimpleNamespace(train=[1, 2], val=[3]))
            cfg.split.train
            """,
            title="A field of a configuration named like one, shown in a notebook cell",
            checks=(Holds("cfg.split.train == [1, 2]", "`cfg.split.train` is a list of ids, not a method"),),
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
            owner = dotted(value.value)
            if owner in _settings_objects(self.context) or (owner or "").split(".", 1)[0] in _SETTINGS_NAMES:
                return  # ``cfg.train`` on a line of its own: a flag of a settings namespace
            written = self.code_of(value)
            self.report(
                value,
                f"`{written}` is not called, so it does nothing; write `{written}()`",
                fix=Fix("add-call", value),
            )


def _settings_objects(ctx) -> FrozenSet[str]:
    """Names the module gives a text or number attribute (``cfg.data_dir =
    "/data/"``, ``args.lr = 0.1``): settings namespaces, whose ``train`` or
    ``eval`` is a value.  Computed once per module, only when a bare switch
    is found."""
    found = ctx.flow.cache.get(("settings-objects",))
    if found is None:
        names = set()
        for node in ast.walk(ctx.tree) if ctx.tree is not None else ():
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(
                node.value.value, (str, int, float)
            ) and not isinstance(node.value.value, bool):
                for target in node.targets:
                    if isinstance(target, ast.Attribute) and target.attr not in _MODE_ATTRIBUTES:
                        owner = dotted(target.value)
                        if owner is not None:
                            names.add(owner)
        found = ctx.flow.cache[("settings-objects",)] = frozenset(names)
    return found


#: Names settings namespaces go by (``cfg.dataset.split.train``, a list of ids shown in a notebook cell).
_SETTINGS_NAMES = frozenset(
    {"cfg", "config", "conf", "configs", "hparams", "hp", "settings", "args", "opt", "opts", "options", "params",
     "flags", "FLAGS"}
)
#: Attributes a model's mode lives in: a number or text assigned to one says nothing of settings.
_MODE_ATTRIBUTES = frozenset({"training", "train", "eval", "requires_grad"})
