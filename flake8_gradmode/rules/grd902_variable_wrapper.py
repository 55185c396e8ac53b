from __future__ import annotations

import ast

from flake8_gradmode.tracker import call_args

from flake8_gradmode.context import Fix
from flake8_gradmode.rule import Holds, Invalid, Rule, Valid

_VARIABLE = frozenset({"torch.autograd.Variable", "torch.autograd.variable.Variable"})


class VariableWrapper(Rule):
    code = "GRD902"
    name = "variable-wrapper"
    default_on = False
    triggers = ("Variable",)
    summary = "`torch.autograd.Variable(...)`, a no-op wrapper since PyTorch 0.4"
    what = "Reports calls of `torch.autograd.Variable`, through any import spelling."
    why = """
        Since PyTorch 0.4 tensors and variables are one type: `Variable(x)`
        returns a plain tensor and `Variable(x, requires_grad=True)` is
        `x.requires_grad_()`.  The wrapper only makes old code look as if it
        still did something (and invites `volatile=`, which does nothing; see
        GRD003).  Off by default: it is harmless.
    """
    known_problems = "Opt in with `extend-select = GRD902` (or `GRD9` for every hint)."
    fix_safety = """
        `flake8-gradmode --fix` replaces `Variable(x)` by `x` when `x` is the
        only argument: the wrapper returns the same tensor.  Calls with
        keywords (`requires_grad=`, `volatile=`) are left alone.
    """
    references = ("https://pytorch.org/blog/pytorch-0_4_0-migration-guide/",)

    VALID = (
        Valid(
            """
            import torch

            x = torch.randn(3, requires_grad=True)
            """,
            checks=(Holds("x.requires_grad", "a plain tensor can require grad"),),
        ),
    )
    INVALID = (
        Invalid(
            """
            import torch
            from torch.autograd import Variable

            x = Variable(torch.randn(3))
            """,
            at=((4, 4),),
            symptom=Holds("type(x) is torch.Tensor", "the wrapper returns a plain tensor"),
        ),
    )

    def visit_Call(self, node: ast.Call) -> None:
        if self.context.imports.resolve(node.func) in _VARIABLE:
            args = call_args(node)
            plain = len(args) == 1 and args[0][0] is None and not args[0][2]
            self.report(
                node,
                "`Variable(...)` has done nothing since PyTorch 0.4; use the tensor itself",
                fix=Fix("unwrap-call", node) if plain else None,
            )
