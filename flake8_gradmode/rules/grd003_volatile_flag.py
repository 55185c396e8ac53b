from __future__ import annotations

import ast

from flake8_gradmode.context import Fix
from flake8_gradmode.facts import keyword
from flake8_gradmode.tracker import is_const
from flake8_gradmode.rule import Holds, Invalid, Raises, Rule, Valid, Warns

# Owners whose `.volatile` is a setting, not a tensor flag.
_CONFIG_OWNERS = frozenset(
    {"args", "arg", "opt", "opts", "options", "cfg", "config", "conf", "flags", "hparams", "hp", "settings", "self", "cls"}
)
_MESSAGE = "has had no effect since PyTorch 0.4, so a graph is still built; drop it and run inference under `with torch.no_grad():`"


class VolatileFlag(Rule):
    code = "GRD003"
    name = "volatile-flag"
    triggers = ("volatile",)
    summary = "the removed `volatile=` flag"
    what = """
        Reports the `volatile=` keyword in calls of `torch.autograd.Variable`
        and other `torch` functions, and reads and writes of
        `<tensor>.volatile`.
    """
    why = """
        `volatile` was removed in PyTorch 0.4.  `Variable(x, volatile=True)`
        only warns and returns a tensor that builds a graph like any other, so
        code written to save memory at inference time now keeps every
        activation; `torch.tensor(..., volatile=True)` raises `TypeError`.
        The replacement is `with torch.no_grad():` around the inference code.
    """
    known_problems = """
        A `.volatile` attribute of an object named like a configuration
        (`args`, `opt`, `cfg`, `self`, ...) is taken to be a setting and not
        reported; reads of `.volatile` are reported only on a name bound to a
        `torch` call in the same scope.
    """
    fix_safety = """
        `flake8-gradmode --fix` drops the `volatile=` keyword, which has had no
        effect since 0.4 (and makes `torch.tensor` raise).  It does not guess
        where `no_grad` belongs: GRD101 reports the evaluation loop that needs
        it.  Reads and writes of `.volatile` are not fixed.
    """
    references = ("https://pytorch.org/blog/pytorch-0_4_0-migration-guide/",)

    VALID = (
        Valid(
            """
            import torch

            model = torch.nn.Linear(4, 2)
            x = torch.randn(3, 4)
            with torch.no_grad():
                out = model(x)
            """,
            checks=(Holds("out.grad_fn is None", "no graph is built"),),
        ),
        Valid(
            """
            from types import SimpleNamespace

            opts = SimpleNamespace(volatile=True)
            if opts.volatile:
                mode = "read-only"
            """,
            title="A setting that happens to be called volatile",
        ),
    )
    INVALID = (
        Invalid(
            """
            import torch
            from torch.autograd import Variable

            model = torch.nn.Linear(4, 2)
            x = Variable(torch.randn(3, 4), volatile=True)
            out = model(x)
            """,
            at=((5, 32),),
            symptom=(
                Warns("UserWarning", "volatile was removed and now has no effect"),
                Holds("out.grad_fn is not None", "the output still carries a graph"),
            ),
        ),
        Invalid(
            """
            import torch

            x = torch.tensor([1.0, 2.0], volatile=True)
            """,
            at=((3, 29),),
            symptom=Raises("TypeError", "unexpected keyword argument 'volatile'"),
        ),
        Invalid(
            """
            import torch

            model = torch.nn.Linear(4, 2)
            x = torch.randn(3, 4)
            x.volatile = True
            out = model(x)
            """,
            at=((5, 0),),
            symptom=(
                Warns("UserWarning", "volatile was removed"),
                Holds("out.grad_fn is not None", "the output still carries a graph"),
            ),
        ),
    )

    def visit_Call(self, node: ast.Call) -> None:
        arg = keyword(node, "volatile")
        if arg is None:
            return
        qual = self.context.imports.resolve(node.func) or ""
        if qual.startswith("torch.") or qual == "Variable":
            self.report(arg, f"`volatile=` {_MESSAGE}", fix=Fix("drop-keyword", node, "volatile"))

    def visit_Assign(self, node: ast.Assign) -> None:
        if not (is_const(node.value, True) or is_const(node.value, False)):
            return
        for attr in node.targets:
            if (
                isinstance(attr, ast.Attribute)
                and attr.attr == "volatile"
                and not (isinstance(attr.value, ast.Name) and attr.value.id in _CONFIG_OWNERS)
            ):
                self.report(attr, f"`{self.code_of(attr)}` {_MESSAGE}")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr != "volatile" or not isinstance(node.value, ast.Name):
            return
        binding = self.context.lookup(node.value.id)
        value = getattr(binding, "value", None)
        if isinstance(value, ast.Call):
            qual = self.context.imports.resolve(value.func) or ""
            if qual.startswith("torch.") or qual == "Variable":
                self.report(node, f"`{self.code_of(node)}` {_MESSAGE}")
