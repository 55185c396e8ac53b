from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Dict, FrozenSet, List, Optional, Set, Tuple, Union

import ast

from flake8_gradmode import facts, flow
from flake8_gradmode.names import tokens
from flake8_gradmode.tracker import (
    FunctionInfo, Grad, bound_arguments, dotted, effective, first_value, is_const, last_name, param_defaults,
    positional_params, preorder,
)
from flake8_gradmode.context import Fix
from flake8_gradmode.rule import Holds, Invalid, Raises, Rule, Valid

if TYPE_CHECKING:
    from flake8_gradmode.facts import Shape

#: ``ast``'s augmented-assignment operators as written.
_AUG_OPS = {
    ast.Add: "+=", ast.Sub: "-=", ast.Mult: "*=", ast.Div: "/=", ast.FloorDiv: "//=", ast.Mod: "%=",
    ast.Pow: "**=", ast.MatMult: "@=", ast.BitAnd: "&=", ast.BitOr: "|=", ast.BitXor: "^=",
    ast.LShift: "<<=", ast.RShift: ">>=",
}
_REMEDY = "do it under `with torch.no_grad():`"


class InplaceParamUpdateWithGrad(Rule):
    code = "GRD004"
    name = "inplace-param-update-with-grad"
    triggers = ("arameter", "weight", "bias", "requires_grad", "param_groups", "fan_")
    summary = "in-place change of a parameter while grad may be enabled"
    what = """
        Reports an in-place change of a parameter while grad may be enabled: an
        in-place tensor method (`fill_`, `zero_`, `copy_`, `add_`, `mul_`,
        `normal_`, `clamp_`, ...), an augmented assignment (`p -= lr * p.grad`)
        or an item assignment (`w[:, 0] = 0`).  Parameters are `<module>.weight`
        and `.bias`, attributes a class assigns from `nn.Parameter`, loop
        variables over `.parameters()`, `.named_parameters()` and an optimizer's
        `param_groups`, names bound to `nn.Parameter(...)` or to a tensor made
        with `requires_grad=True` (or after `.requires_grad_()`), and views of
        all of these (`b = layer.bias.view(-1)`).

        A helper of the same module that changes its own argument in place
        (`def lecun_uniform_(tensor): ... tensor.uniform_(-b, b)`) is reported
        at the change when a call in the module passes it a parameter
        (`lecun_uniform_(m.weight)`) while grad may be enabled, directly or
        through other helpers that pass the argument on; an `if` on a constant
        argument of that call (`distribution="normal"`) is followed, and
        across the project's modules too: a change behind an `if` on the
        function's own arguments is silent when every call that can take
        that branch runs without grad.  A public
        module-level initialiser written like `torch.nn.init`'s is reported
        even without such a call, since its callers are in other modules: its
        name ends in `_` and names a distribution or initialisation
        (`trunc_normal_`, `variance_scaling_`), and it computes its
        argument's fan-in or fan-out or another helper of the module makes
        its changes under `no_grad`.  That holds only while the module's own
        calls of it just pass on an argument of another helper, and, when
        the project index is on, only if some other module of the project
        calls it (or a helper that passes it its argument).
    """
    why = """
        Autograd refuses to change a leaf tensor that requires grad in place:
        `RuntimeError: a leaf Variable that requires grad is being used in an
        in-place operation`.  Weight initialisation, manual SGD steps and
        weight clipping written this way crash the first time they run.
    """
    known_problems = """
        An edit in a `try` body with an `except RuntimeError` clause is
        not reported: the code expects the error (a lesson that shows it).
        Grad mode is dynamic.  A method such as `reset_parameters(self)` that is
        only ever called from another module under `torch.no_grad()` is
        reported, since callers in other modules are not visible; add
        `@torch.no_grad()` to the method or `# noqa: GRD004`.  Augmented and
        item assignment on `x.weight` are reported only where `x` is known to be
        a module (bound to a `torch.nn` layer, or to what a function of the
        module returns when it returns a layer it built), because `.weight` is
        a common name for plain numbers too.
        A tensor whose `requires_grad` the function has just set to `False`
        (`w.requires_grad = False; w.copy_(x); w.requires_grad = True`) may be
        changed in place, as may the parameters of a module the function
        switched off (`conv.requires_grad_(False)`, then
        `conv.lin.weight.zero_()`), and so may the parameters of a model a function of
        the module, or one nested in the caller, switched off
        (`toggle_grad(model, False)` looping over `model.parameters()`), or a
        helper named for the flag, of any module, given `False`
        (`nethook.set_requires_grad(False, layer)`); a function handed to `model.apply(fn)` runs in
        the grad mode of that call.  `self.weight` is not a parameter in a
        class that binds it to something else a call made
        (`self.weight = FactorizedTensor.new(shape)`, `torch.empty(shape)`),
        or to a plain list (`self.weight = [None] * 6`).  An attribute the
        class later binds to a tensor computed from a parameter
        (`self.kernel = self.kernel.repeat(1, 4)` after `self.kernel =
        self.w[:]`) is no parameter from there on: the copy is no leaf, and
        autograd follows edits of it.  Matched in the order the module
        is written, not the order the methods run.  Putting a new parameter
        into an entry (`self.w[key] = nn.Parameter(x)`, a `ParameterDict`) is
        no edit.
        Changes through `.data` or `.detach()` bypass autograd's check and are
        not reported, nor are changes of `x.weight` where the class sets
        `requires_grad = False` (or calls `requires_grad_(False)`) on `x`, on
        a loop variable over `x.parameters()`, or on what `x` iterates,
        matched by name across the class's methods, nor of `self.centers`
        where the class sets `self.centers.requires_grad = False`.  With the project
        index, a loop variable over `self.parameters()` is no parameter when
        the class gets `parameters()` from a class of the project (itself or
        a base) in a hierarchy with no base outside the project: a course's
        own `Module` keeping plain tensors is no `nn.Module`.
        `nn.init.*_` functions disable grad themselves and are never reported.
        A helper's argument is followed only while it keeps its name (not
        through `w = tensor.view(-1)`); augmented and item assignment in a
        helper are reported only when the call surely passes a parameter.
        An edit through a view (`out[:, 0::2] = ...`, `w[0].fill_(1)`) is not
        reported in a project whose README, requirements, `setup.py`, conda
        environment, shell scripts or `Dockerfile` name only PyTorch releases
        before 1.8 (`PyTorch 1.7+` is a lower bound): only 1.8 began to
        refuse it.  With the project index, an edit in code that never runs
        is not reported, as GRD101 decides it: a helper nothing calls in a
        module nothing imports of a project that is no package (a
        `fuse_conv_and_bn` left beside the scripts), a module that stops at
        its imports, a helper of a bundled copy of another library that the
        project's own code never reaches (see docs/cross-module.md); a
        helper's edit that a call passes a parameter to is judged in the
        helper's own function.  Nor is an edit after a statement of its function that
        always reads a name the module never binds (`NameError` first), with
        or without the index.
    """
    options = ("no_grad_decorators",)
    fix_safety = """
        Opt-in (`flake8-gradmode --fix --unsafe-fixes`): the statement that
        makes the change, when it is a statement of its own, is wrapped in
        `with torch.no_grad():`, which is what PyTorch asks for.  It changes
        behaviour on purpose (the line stops raising) and only that line is
        wrapped: if more of the function should run without grad, widen the
        block yourself.  Not applied without `--unsafe-fixes`.
    """
    references = (
        "https://pytorch.org/docs/stable/notes/autograd.html#in-place-operations-with-autograd",
        "https://pytorch.org/docs/stable/generated/torch.no_grad.html",
    )

    VALID = (
        Valid(
            """
            import torch


            def center(points):
                points -= points.mean(dim=1, keepdim=True)
                return points


            opt_points = torch.nn.Parameter(torch.randn(2, 5, 3))
            opt_points.detach_()
            out = center(opt_points)
            """,
            title="A parameter detached in place before a helper edits it",
            checks=(Holds("not opt_points.requires_grad and out is opt_points",
                          "`detach_()` made it a tensor that no longer requires grad: the edit runs"),),
        ),
        Valid(
            """
            import torch

            w = torch.nn.Parameter(torch.ones(3))
            try:
                w.add_(1)
            except RuntimeError as error:
                message = str(error)
            """,
            title="An edit whose `RuntimeError` the code catches by name: a demonstration of the error",
            checks=(Holds("'leaf Variable' in message and torch.equal(w.detach(), torch.ones(3))",
                          "the edit raises, as the code expects, and the parameter is unchanged"),),
        ),
        Valid(
            """
            import torch

            layer = torch.nn.Linear(2, 2)
            with torch.no_grad():
                layer.weight.fill_(1.0)
            """,
            checks=(Holds("bool((layer.weight == 1).all())", "the weight is set"),),
        ),
        Valid(
            """
            import torch

            model = torch.nn.Linear(2, 1)
            model(torch.randn(4, 2)).sum().backward()


            @torch.no_grad()
            def sgd_step(params, lr=0.1):
                for p in params:
                    p -= lr * p.grad


            sgd_step(list(model.parameters()))
            """,
            title="A manual optimizer step under a no_grad decorator",
        ),
        Valid(
            """
            import torch

            layer = torch.nn.Linear(2, 2)
            torch.nn.init.zeros_(layer.bias)
            layer.weight.data.normal_(0, 0.02)
            """,
            title="`nn.init` functions, and changes through `.data`",
        ),
        Valid(
            """
            import torch

            layer = torch.nn.Linear(2, 2)
            w = layer.weight.clone()
            w.fill_(0.0)
            """,
            title="A copy is not the parameter",
        ),
        Valid(
            """
            import torch

            fused = torch.nn.Linear(2, 2).requires_grad_(False)
            fused.weight.copy_(torch.eye(2))
            """,
            title="A module whose parameters were frozen first",
            checks=(Holds("bool((fused.weight == torch.eye(2)).all())", "the weight is set"),),
        ),
        Valid(
            """
            import torch


            class MelFrontend(torch.nn.Module):
                def __init__(self, basis):
                    super().__init__()
                    self.mel = torch.nn.Conv1d(4, 2, 1).requires_grad_(False)
                    self.mel.weight.copy_(basis)

                def forward(self, x):
                    return self.mel(x)


            frontend = MelFrontend(torch.ones(2, 4, 1))
            """,
            title="A part of a module frozen where it is built",
            checks=(Holds("bool((frontend.mel.weight == 1).all())", "the weight is set"),),
        ),
        Valid(
            """
            import torch


            class RunningCenters(torch.nn.Module):
                def __init__(self, k, d):
                    super().__init__()
                    self.net = torch.nn.Linear(d, d)
                    self.centers = torch.nn.Parameter(torch.zeros(k, d))
                    self.centers.requires_grad = False

                def forward(self, x, i):
                    out = self.net(x)
                    self.centers[i] = self.centers[i] * 0.9 + out.detach().mean(dim=0)
                    return out


            model = RunningCenters(2, 3)
            model(torch.randn(4, 3), 0)
            """,
            title="A parameter the class switched off itself, changed in place",
            checks=(Holds("bool((model.centers[1] == 0).all())", "the other center is untouched"),),
        ),
        Valid(
            """
            import torch


            def init_table(out):
                out.requires_grad = False
                out[:, :2] = torch.ones(out.shape[0], 2)
                return out


            table = torch.nn.Embedding(3, 4)
            init_table(table.weight)
            """,
            title="A helper that switches off its argument's `requires_grad` before editing it",
            checks=(Holds("bool((table.weight[:, :2] == 1).all())", "the table is set"),),
        ),
        Valid(
            """
            import math

            import torch


            def sinusoidal_table(n, dim, out):
                out.requires_grad = False
                steps = torch.arange(n).unsqueeze(1) / 10000 ** (torch.arange(dim) / dim)
                out[:, 0::2] = torch.sin(steps[:, 0::2])
                out[:, 1::2] = torch.cos(steps[:, 1::2])
                out.detach_()


            class Positions(torch.nn.Module):
                def __init__(self, n, dim):
                    super().__init__()
                    self.table = torch.nn.Embedding(n, dim)
                    sinusoidal_table(n, dim, out=self.table.weight)
                    self.table.weight *= 1.0 / math.sqrt(dim)


            positions = Positions(6, 4)
            """,
            title="A parameter a helper switched off, scaled in place after it",
            checks=(Holds("not positions.table.weight.requires_grad", "the table no longer requires grad"),),
        ),
        Valid(
            """
            import torch


            class Prototypes(torch.nn.Module):
                def __init__(self, dim, sizes):
                    super().__init__()
                    self.heads = torch.nn.ModuleList(torch.nn.Linear(dim, k, bias=False) for k in sizes)
                    for head in self.heads:
                        for p in head.parameters():
                            p.requires_grad = False

                def reset(self, centroids):
                    for head, c in zip(self.heads, centroids):
                        head.weight.copy_(c)


            protos = Prototypes(4, [3, 5])
            protos.reset([torch.ones(3, 4), torch.zeros(5, 4)])
            """,
            title="Parameters the class froze itself, reached through the same loops",
            checks=(Holds("bool((protos.heads[0].weight == 1).all())", "the weights are set"),),
        ),
        Valid(
            """
            import torch


            class PositionalTable(torch.nn.Module):
                def __init__(self, n, d, learnable=False):
                    super().__init__()
                    if learnable:
                        self.table = torch.nn.Parameter(torch.randn(n, d))
                    else:
                        self.table = torch.zeros(n, d)
                        self.table[:, 0] = torch.arange(n).float()


            fixed = PositionalTable(4, 3)
            """,
            title="An attribute that is a parameter in one branch and a plain tensor, edited, in the other",
            checks=(Holds("bool((fixed.table[:, 0] == torch.arange(4).float()).all())", "the table is set"),),
        ),
        Valid(
            """
            import torch


            class ScaledLinear(torch.nn.Linear):
                def __init__(self, n, m, train_scale=True):
                    super().__init__(n, m)
                    self.train_scale = train_scale
                    if train_scale:
                        self.g = torch.nn.Parameter(torch.ones(m))
                    else:
                        self.register_buffer("g", torch.ones(m))

                def reset(self):
                    if self.train_scale:
                        self.g.data.fill_(1.0)
                    else:
                        self.g.fill_(2.0)


            layer = ScaledLinear(3, 2, train_scale=False)
            layer.reset()
            """,
            title="An attribute the constructor makes a parameter or a buffer, changed where it is the buffer",
            checks=(Holds("bool((layer.g == 2).all())", "the buffer is set"),),
        ),
        Valid(
            """
            import torch


            class Interaction(torch.nn.Module):
                def __init__(self, d, init_diag=True):
                    super().__init__()
                    self.m = torch.empty(d, d)
                    if init_diag:
                        self.m.uniform_(-0.05, 0.05)
                        self.m.fill_diagonal_(0.1)
                        self.m = torch.nn.Parameter(self.m)
                    else:
                        self.m = torch.nn.Parameter(self.m.uniform_())


            net = Interaction(3, init_diag=False)
            """,
            title="A tensor made a parameter in one branch, changed before it is wrapped in the other",
            checks=(Holds("isinstance(net.m, torch.nn.Parameter)", "the wrapped tensor is the parameter"),),
        ),
        Valid(
            """
            import math

            import torch


            def lecun_uniform_(tensor):
                bound = math.sqrt(3.0 / tensor.size(1))
                with torch.no_grad():
                    tensor.uniform_(-bound, bound)
                return tensor


            layer = torch.nn.Linear(4, 2)
            lecun_uniform_(layer.weight)
            """,
            title="An initialiser that disables grad itself, as `torch.nn.init` does",
            checks=(Holds("bool(layer.weight.abs().max() <= math.sqrt(0.75))", "the weight is filled"),),
        ),
        Valid(
            """
            import torch


            def scale_(tensor, factor):
                tensor.mul_(factor)


            layer = torch.nn.Linear(2, 2)
            noise = torch.ones(3)
            scale_(noise, 2.0)
            with torch.no_grad():
                scale_(layer.weight, 0.0)
            """,
            title="A helper called with plain tensors, or with a parameter under `no_grad`",
            checks=(Holds("bool((layer.weight == 0).all()) and bool((noise == 2).all())", "both are scaled"),),
        ),
        Valid(
            """
            import torch
            import torch.nn as nn


            class Spectral(nn.Module):
                def __init__(self, split, n=4):
                    super().__init__()
                    if split:
                        self.w = nn.ParameterDict({"lo": nn.Parameter(torch.empty(n)), "hi": nn.Parameter(torch.empty(n))})
                    else:
                        self.w = nn.Parameter(torch.empty(n))
                    self.reset(split, n)

                def reset(self, split, n):
                    if split:
                        for key in list(self.w.keys()):
                            self.w[key] = nn.Parameter(torch.randn(n))


            layer = Spectral(True)
            """,
            title="A new parameter put into a `ParameterDict`: an entry replaced, no tensor edited",
            checks=(Holds("all(p.requires_grad for p in layer.parameters())", "both entries are parameters"),),
        ),
        Valid(
            """
            import torch
            import torch.nn as nn


            class Tiled(nn.Module):
                def __init__(self, n=3):
                    super().__init__()
                    self.w = nn.Parameter(torch.randn(2, n))
                    self.kernel = self.w[:]
                    self.build()

                def build(self):
                    self.kernel = self.kernel.repeat(1, 2)
                    self.kernel[:, 0] = self.kernel[:, 1].flip(0)


            tiled = Tiled()
            tiled.kernel.sum().backward()
            """,
            title="A tensor computed from a parameter (`.repeat`), then edited in place",
            checks=(Holds("tiled.w.grad is not None", "autograd follows the edit back to the parameter"),),
        ),
    )
    INVALID = (
        Invalid(
            """
            import torch

            layer = torch.nn.Linear(2, 2)
            layer.weight.fill_(1.0)
            """,
            at=((4, 0),),
            symptom=Raises("RuntimeError", "a leaf Variable that requires grad is being used in an in-place operation"),
        ),
        Invalid(
            """
            import torch

            model = torch.nn.Linear(2, 1)
            model(torch.randn(4, 2)).sum().backward()
            for p in model.parameters():
                p -= 0.1 * p.grad
            """,
            title="A manual SGD step",
            at=((6, 4),),
            symptom=Raises("RuntimeError", "a leaf Variable that requires grad is being used in an in-place operation"),
        ),
        Invalid(
            """
            import torch

            layer = torch.nn.Linear(3, 2)
            b = layer.bias.view(-1)
            b[:] += 1
            """,
            title="A view of a parameter",
            at=((5, 0),),
            symptom=Raises("RuntimeError", "a view of a leaf Variable that requires grad"),
        ),
        Invalid(
            """
            import torch

            w = torch.randn(3, 2, requires_grad=True)
            w[:, 0] = 0.0
            """,
            title="Item assignment on a leaf that requires grad",
            at=((4, 0),),
            symptom=Raises("RuntimeError", "a leaf Variable that requires grad"),
        ),
        Invalid(
            """
            import torch


            class Scale(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.alpha = torch.nn.Parameter(torch.ones(1))

                def reset(self):
                    self.alpha.fill_(1.0)


            Scale().reset()
            """,
            title="An attribute the class assigns from `nn.Parameter`",
            at=((10, 8),),
            symptom=Raises("RuntimeError", "a leaf Variable that requires grad"),
        ),
        Invalid(
            """
            import torch

            model = torch.nn.Linear(2, 1)
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            model(torch.randn(4, 2)).sum().backward()
            for group in opt.param_groups:
                for p in group["params"]:
                    p.add_(p.grad, alpha=-group["lr"])
            """,
            title="A hand-written optimizer step",
            at=((8, 8),),
            symptom=Raises("RuntimeError", "a leaf Variable that requires grad"),
        ),
        Invalid(
            """
            import math

            import torch


            def lecun_uniform_(tensor):
                fan_in = tensor.size(1)
                bound = math.sqrt(3.0 / fan_in)
                tensor.uniform_(-bound, bound)


            layer = torch.nn.Linear(4, 2)
            lecun_uniform_(layer.weight)
            """,
            title="A hand-written initialiser given a parameter",
            at=((9, 4),),
            symptom=Raises("RuntimeError", "a leaf Variable that requires grad is being used in an in-place operation"),
        ),
        Invalid(
            """
            import torch


            def _fill_(tensor, std):
                tensor.normal_(0.0, std)


            def small_normal_(tensor, std=0.02):
                _fill_(tensor, std)


            class Net(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = torch.nn.Linear(4, 2)
                    self.apply(self._init_weights)

                def _init_weights(self, m):
                    if isinstance(m, torch.nn.Linear):
                        small_normal_(m.weight)


            Net()
            """,
            title="A parameter passed on through helpers",
            at=((5, 4),),
            symptom=Raises("RuntimeError", "a leaf Variable that requires grad is being used in an in-place operation"),
        ),
        Invalid(
            """
            import torch


            def build(device="cpu"):
                model = torch.nn.Linear(1, 3).to(device)
                opt = torch.optim.SGD(model.parameters(), lr=1.0)
                return model, opt


            model, opt = build()
            model.weight[1, 0] = float("nan")
            """,
            title="A layer a function of the module builds and returns",
            at=((11, 0),),
            symptom=Raises("RuntimeError", "a view of a leaf Variable that requires grad"),
        ),
    )

    # -- hooks -----------------------------------------------------------------

    def __init__(self, context) -> None:
        super().__init__(context)
        #: the expression statement being visited (``w.fill_(1)`` on a line of its own)
        self._statement: Optional[ast.Expr] = None
        #: how many ``try`` bodies being visited catch ``RuntimeError`` by name
        self._expected = 0
        #: the ``def`` bodies being visited, innermost last
        self._helpers: List[_Helper] = []
        #: in-place edits of the running helper's own arguments
        self._edits: List[_Edit] = []
        #: calls of module-local functions that pass a parameter or an argument on
        self._calls: Dict[Tuple[str, ...], List[_Call]] = {}
        self._deliveries: Dict[Tuple[int, str], List[_Delivery]] = {}
        #: some helper of the module edits its own argument with grad disabled
        self._guarded = False
        #: edits made through a view (``w[:, 0] = x``, ``w.view(-1).add_(1)``), by node
        self._views: Set[int] = set()
        #: (function, tensor) whose ``requires_grad`` the function set to False
        #: and not back yet: ``w.requires_grad = False; w.copy_(x)`` is allowed
        self._not_requiring: Set[Tuple[int, str]] = set()
        #: module functions by ``id`` of their node -> what ``_toggles`` found in them
        self._togglers: Dict[int, Optional[Tuple[int, int]]] = {}
        #: per module function: the parameters it freezes first (see ``_freezes``)
        self._freezers: Dict[int, FrozenSet[str]] = {}
        #: the classes being visited, innermost last, and what each freezes
        self._classes: List[ast.ClassDef] = []
        self._frozen: Dict[int, Tuple[Set[str], Dict[str, Set[str]]]] = {}
        #: the ``if`` statements whose ``else`` branch is being visited
        self._in_orelse: List[ast.If] = []
        #: the branch of an ``if`` body last left (its ``else`` reads the same test)
        self._left_branch: Optional[_Branch] = None

    def report(
        self, node: ast.AST, message: str, condition: Optional[Callable[[], bool]] = None,
        fix: Union[Fix, Callable[[], Fix], None] = None,
    ) -> None:
        """An edit through a view of a parameter raises only since torch 1.8:
        not reported in a project that names only earlier releases.  Nor in
        code that never runs (``flow.never_runs``: a helper nothing in a
        closed project calls, a module nothing imports, one that stops at
        its imports), nor in code no run of its function reaches
        (``flow.never_reached``), asked last."""
        if id(node) in self._views:
            condition = self.context.unless_pinned_before((1, 8), condition)
        super().report(node, message, flow.unless_unreached(self.context, node, condition), fix)

    def visit_Expr(self, node: ast.Expr) -> None:
        self._statement = node

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._classes.append(node)

    def leave_ClassDef(self, node: ast.ClassDef) -> None:
        self._classes.pop()

    def visit_FunctionDef_body(self, node: Union[ast.FunctionDef, ast.AsyncFunctionDef]) -> None:
        info = self.context.grad.function
        if info is None or info.node is not node:
            self._helpers.append(_Helper(None, node, {}))
            return
        names = self.context.grad.frame.names
        params = _positional(node, info) + [a.arg for a in node.args.kwonlyargs]
        bindings = {name: names[name] for name in params if name in names}
        self._helpers.append(_Helper(info, node, bindings))

    def leave_FunctionDef_body(self, node: ast.AST) -> None:
        self._helpers.pop()

    def visit_If_body(self, node: ast.If) -> None:
        self._branch(node, True)

    def visit_If_orelse(self, node: ast.If) -> None:
        self._branch(node, False)
        self._in_orelse.append(node)

    def leave_If_body(self, node: ast.If) -> None:
        self._unbranch()

    def leave_If_orelse(self, node: ast.If) -> None:
        self._unbranch()
        if self._in_orelse:
            self._in_orelse.pop()

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "requires_grad_":
            name = dotted(func.value)  # ``w.requires_grad_(False)``, as ``w.requires_grad = False``
            if name is not None:
                self._set_requires_grad(name, not is_const(first_value(node), False))
        elif (
            isinstance(func, ast.Attribute) and func.attr == "register_buffer" and node.args
            and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
        ):
            owner = dotted(func.value)  # ``self.register_buffer("weight", ...)``: from here on a buffer
            if owner is not None:
                self._not_requiring.add((id(self.context.grad.function), f"{owner}.{node.args[0].value}"))
        elif isinstance(func, ast.Name) and len(node.args) >= 2 and not _sets_requires_grad(func.id):
            self._toggled(node, func.id)
            self._frozen_by_helper(node, func.id)
        elif isinstance(func, ast.Name) and node.keywords:
            self._frozen_by_helper(node, func.id)
        elif len(node.args) >= 2 and _sets_requires_grad(last_name(func)):
            self._set_by_helper(node)
        if isinstance(func, ast.Attribute) and facts.is_inplace_method(func.attr):
            base = facts.strip_views(self.context, func.value)
            if base is not func.value:
                self._views.add(id(node))
            stmt = self._statement if self._statement is not None and self._statement.value is node else None
            if self._param(base, loose=True):
                self._maybe_report(node, f"in-place `{func.attr}` on parameter `{self.code_of(base)}`", stmt)
            else:
                self._argument_edit(node, base, f"in-place `{func.attr}`", stmt, strict=False)
        self._local_call(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.value, (ast.List, ast.Tuple, ast.ListComp)):
            return  # ``self.bias += [p]``: a list growing, before it becomes a ParameterList
        base = facts.strip_views(self.context, node.target)
        if base is not node.target:
            self._views.add(id(node))
        op = _AUG_OPS.get(type(node.op), "=")
        if self._param(base, loose=False):
            self._maybe_report(node, f"`{op}` on parameter `{self.code_of(base)}`", node)
        else:
            self._argument_edit(node, base, f"`{op}`", node, strict=True)

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            if isinstance(target, ast.Attribute) and target.attr == "requires_grad":
                name = dotted(target.value)
                if name is not None:
                    key = (id(self.context.grad.function), name)
                    if is_const(node.value, False):
                        self._not_requiring.add(key)
                    else:
                        self._not_requiring.discard(key)
            elif self._not_requiring and isinstance(target, (ast.Attribute, ast.Name)):
                # ``self.weight = Parameter(...)`` after ``register_buffer("weight", ...)``;
                # a name bound again holds a new module
                name = dotted(target)
                if name is not None:
                    self._not_requiring.discard((id(self.context.grad.function), name))
        value = node.value  # after the rebinding above, which switches a name back on
        if (
            isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)
            and value.func.attr == "requires_grad_" and is_const(first_value(value), False)
        ):
            # ``self.mel = nn.Conv1d(...).requires_grad_(False)``: the module
            # the name now holds has no parameter that requires grad
            for target in node.targets:
                name = dotted(target)
                if name is not None:
                    self._set_requires_grad(name, False)
        for target in node.targets:
            if isinstance(target, ast.Subscript):
                if facts.builds_parameter(self.context, node.value):
                    continue  # ``self.w[key] = nn.Parameter(x)``: an entry of a ParameterDict, not an edit
                base = facts.strip_views(self.context, target)
                self._views.add(id(node))
                if self._param(base, loose=False):
                    self._maybe_report(node, f"item assignment to parameter `{self.code_of(base)}`", node)
                    return
                self._argument_edit(node, base, "item assignment", node, strict=True)
        helper = self._here()
        if helper is not None and not helper.fan and any(
            "fan" in name.lower() and "fan" in tokens(name) for t in node.targets for name in _target_names(t)
        ):
            # ``fan_in = tensor.size(1)``: the arithmetic of a weight initialiser
            helper.fan = any(self._argument(n) is not None for n in ast.walk(node.value))

    def finish(self) -> None:
        for edit in self._edits:
            for delivery in self._delivered(edit.helper, edit.param):
                if (
                    (edit.explicit or delivery.grad_on)
                    and (delivery.strict or not edit.strict)
                    and _reachable(edit.path, delivery.values)
                ):
                    self._report_edit(edit, delivery)
                    break

    # -- helpers -----------------------------------------------------------------

    def _toggled(self, node: ast.Call, name: str) -> None:
        """``toggle_grad(model, False)``, a function of the module whose body
        is ``for p in model.parameters(): p.requires_grad_(flag)``: the
        model's parameters no longer require grad.  Also a function nested
        in the calling one (``update_average`` defining its own ``toggle_grad``)."""
        ctx = self.context
        infos = ctx.functions.get(("function", name), ()) or ctx.nested.get((id(ctx.grad.function), name), ())
        if len(infos) != 1:
            return
        node_id = id(infos[0].node)
        if node_id not in self._togglers:
            self._togglers[node_id] = _toggles(infos[0].node)  # once per function, not per call
        found = self._togglers[node_id]
        if found is None or max(found) >= len(node.args):
            return
        owner = dotted(node.args[found[0]])
        if owner is None:
            return
        key = (id(self.context.grad.function), owner)
        if is_const(node.args[found[1]], False):
            self._not_requiring.add(key)
        else:
            self._not_requiring.discard(key)

    def _frozen_by_helper(self, node: ast.Call, name: str) -> None:
        """``create_sinusoidal_embeddings(n, dim, out=self.pos.weight)``, a
        function of the module that first sets ``requires_grad = False`` on
        the parameter it writes (``out.requires_grad = False``) and never
        back: the tensor handed to it no longer requires grad."""
        ctx = self.context
        infos = ctx.functions.get(("function", name), ())
        if len(infos) != 1:
            return
        node_id = id(infos[0].node)
        if node_id not in self._freezers:
            self._freezers[node_id] = _freezes(infos[0].node)  # once per function, not per call
        frozen = self._freezers[node_id]
        if not frozen:
            return
        for param, arg, _ in bound_arguments(infos[0], node):
            owner = dotted(arg) if param in frozen else None
            if owner is not None:
                self._not_requiring.add((id(ctx.grad.function), owner))

    def _param(self, base: ast.expr, loose: bool) -> bool:
        """Is ``base`` a parameter?  ``loose``: an in-place tensor method was
        called on it, so any ``x.weight``/``x.bias`` is a tensor."""
        if self._switched_off(dotted(base)):
            return False
        if isinstance(base, ast.Name) and self._bound_in_other_branch(base.id):
            return False
        if isinstance(base, ast.Attribute) and isinstance(base.value, ast.Name) and base.value.id == "self":
            if self._in_orelse and self._bound_in_other_branch("self." + base.attr):
                return False  # ``if diag: ...; self.m = Parameter(self.m) else: Parameter(self.m.uniform_())``
            if self._branched_buffer(base.attr):
                return False
        owner = self._parameters_of(base) if isinstance(base, ast.Name) else None
        if owner is not None:
            if self._not_requiring and (id(self.context.grad.function), dotted(owner)) in self._not_requiring:
                return False  # ``for p in model.parameters()`` after freezing ``model``
            if isinstance(owner, ast.Name) and owner.id == "self" and self._own_parameters():
                return False
        found = self._param_by_kind(base, loose)
        # last, as it walks the class once: parameters the class froze itself,
        # one by one (``self.stats.requires_grad = False``) or by their module
        return found and not (
            self._classes and isinstance(base, ast.Attribute)
            and (self._frozen_in_class(base.value) or self._frozen_in_class(base))
        )

    def _branched_buffer(self, attr: str) -> bool:
        """Is ``self.<attr>`` one the class makes a parameter or a buffer
        (``if train_scale: self.g = Parameter(...) else:
        self.register_buffer("g", ...)``), changed inside an ``if``?  The
        branch may well be the buffer's (``if self.train_scale: ... else:
        self.g.fill_(1.0)``), in a function that does not make it one
        itself?  An edit outside any ``if`` reaches the parameter too."""
        cls = self.context.current_class()
        helper = self._here()
        return (
            cls is not None and helper is not None and bool(helper.path)
            and attr in cls.param_attrs and attr in cls.buffer_attrs
            and self.context.lookup("self." + attr) is None  # not made a parameter by this function itself
        )

    def _bound_in_other_branch(self, name: str) -> bool:
        """Was ``name`` last bound in the ``if`` branch of an ``if`` whose
        ``else`` branch runs here (``if idx == 0: query = self.embed.expand(...)
        else: query += ...``)?  In this pass that binding did not run: what
        the name holds comes from elsewhere."""
        if not self._in_orelse:
            return False
        binding = self.context.lookup(name)
        value = getattr(binding, "value", None)
        if value is None:
            return False
        line = value.lineno
        return any(
            node.body[0].lineno <= line <= (node.body[-1].end_lineno or node.body[-1].lineno)
            for node in self._in_orelse
        )

    def _set_by_helper(self, node: ast.Call) -> None:
        """``nethook.set_requires_grad(False, layer)``: a helper named for
        setting ``requires_grad`` (of this module or another), given a flag
        as a constant, sets it for the modules and tensors it is handed."""
        flags = [a for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, bool)]
        if len(flags) != 1:
            return
        for arg in node.args:
            owner = dotted(arg) if arg is not flags[0] else None
            if owner is not None:
                self._set_requires_grad(owner, flags[0].value)

    def _set_requires_grad(self, name: str, on: bool) -> None:
        """The running function set ``requires_grad`` of ``name`` (a tensor or
        a module) to ``on``: switched off, it may be changed in place; switched
        back on, it and what holds it (a module's part) may require grad again."""
        function = id(self.context.grad.function)
        if not on:
            self._not_requiring.add((function, name))
        else:
            for prefix in _prefixes(name):
                self._not_requiring.discard((function, prefix))

    def _switched_off(self, name: Optional[str]) -> bool:
        """Did the running function switch off ``requires_grad`` of ``name``
        (and not back), or of the module holding it
        (``conv.requires_grad_(False)``, then ``conv.lin.weight.zero_()``)?
        An in-place change is then allowed."""
        return bool(self._not_requiring) and any(
            (id(self.context.grad.function), prefix) in self._not_requiring for prefix in _prefixes(name)
        )

    def _parameters_of(self, base: ast.Name) -> Optional[ast.expr]:
        """``model`` when ``base`` is bound by ``for base in
        model.parameters()`` (or ``named_parameters()``)."""
        binding = self.context.lookup(base.id)
        source = binding.value if binding is not None else None
        if (
            isinstance(source, ast.Call) and isinstance(source.func, ast.Attribute)
            and source.func.attr in ("parameters", "named_parameters")
        ):
            return source.func.value
        return None

    def _own_parameters(self) -> bool:
        """Does the running class get ``parameters()`` from the project
        itself, in a hierarchy with no outside base?  Then it is no
        ``nn.Module``, and ``for p in self.parameters()`` gives whatever that
        method does."""
        cls = self.context.current_class()
        return cls is not None and self.context.own_parameters(cls.name)

    def _param_by_kind(self, base: ast.expr, loose: bool) -> bool:
        if facts.classify(self.context, base) is facts.Kind.PARAM:
            return True
        if loose and isinstance(base, ast.Attribute) and base.attr in facts.PARAM_ATTRIBUTES:
            owner = base.value
            if isinstance(owner, ast.Name) and owner.id == "self":
                if self._classes and facts.plain_bases(self._classes[-1].bases) and not self._classes[-1].keywords:
                    return False  # no module: ``self.bias = torch.zeros(...)`` is a tensor of its own
                cls = self.context.current_class()
                return cls is None or (base.attr not in cls.buffer_attrs and base.attr not in cls.value_attrs)
            return facts.classify(self.context, owner) is not facts.Kind.FROZEN
        return False

    def visit_Try_body(self, node: ast.Try) -> None:
        if _catches_runtime_error(node):
            self._expected += 1

    def leave_Try_body(self, node: ast.Try) -> None:
        if _catches_runtime_error(node):
            self._expected -= 1

    def _maybe_report(self, node: ast.AST, what: str, statement: Optional[ast.stmt]) -> None:
        """Report ``node``; the opt-in fix wraps ``statement`` (the whole
        update, when it is a statement of its own) in ``no_grad``."""
        if self._expected:
            return  # ``try: a += 1`` / ``except RuntimeError as e: print(e)``: the error is the point
        state, function = self.context.grad_here()
        message = f"{what} while grad is enabled raises RuntimeError; {_REMEDY}"
        fix = Fix("wrap-no-grad", statement, "{torch}.no_grad()", unsafe=True) if statement is not None else None
        if state is Grad.ENABLED:
            self.report(node, message, fix=fix)
        elif state is Grad.INHERITED:
            enabled = self._may_be_enabled(function)
            if function is not None and function.name.startswith("_"):
                # decided once the module is seen: ``forward`` may come later
                enabled = _unless(lambda: self._run_by_forward(function), enabled)
            self.report(node, message, condition=enabled, fix=fix)

    def _run_by_forward(self, function: FunctionInfo, depth: int = 0) -> bool:
        """Is ``function`` a private method (``_init_new_cls``) that only
        its class's ``forward`` calls (or methods only it calls)?  It runs
        in the grad mode of whoever runs the model: a test path under
        ``no_grad`` builds a layer on first use and copies weights into
        it."""
        if function.key != ("method", function.class_name, function.name) or not function.name.startswith("_"):
            return False
        if function.name.startswith("__") or function.escaped or function.by_name:
            return False
        sites = flow.call_sites(self.context, function)
        return bool(sites) and all(
            caller.function is not None and caller.function.class_name == function.class_name and (
                caller.function.name == "forward" or (depth < 2 and self._run_by_forward(caller.function, depth + 1))
            )
            for caller, _ in sites
        )

    def _may_be_enabled(self, function: Optional[FunctionInfo]):
        """Is grad on where the running function starts?  Behind an ``if`` on
        the function's own arguments, only the project's calls that can pass
        values taking that branch count (``if to_fp8:`` is not reached by
        ``convert(m, to_fp8=False)``)."""
        helper = self._here()
        path = tuple(helper.path) if helper is not None else ()
        if helper is None or not any(names for _, _, names in path):
            return _may_be_enabled(function)
        admits = _admits(helper, path)
        ask = self.context.entry_from_project
        unguarded = _may_be_enabled(function)
        return lambda: unguarded() and ask(helper.info, admits) is not Grad.DISABLED  # type: ignore[arg-type]

    def _frozen_in_class(self, owner: ast.expr) -> bool:
        """Did the class switch grad off for ``owner``'s parameters
        (``for p in proto.parameters(): p.requires_grad = False``), under
        this name or the one it iterates (``for proto in self.prototypes``)?"""
        cls = self._classes[-1]
        known = self._frozen.get(id(cls))
        if known is None:
            lines = self.context.lines[cls.lineno - 1:cls.end_lineno or cls.lineno]
            if not any("requires_grad" in line for line in lines):
                known = self._frozen[id(cls)] = (set(), {})  # the class switches nothing off: no walk
            else:
                sources = _loop_sources(cls)
                known = self._frozen[id(cls)] = (_frozen_owners(cls, sources), sources)
        frozen, sources = known
        return bool(frozen) and bool(_aliases(owner, sources) & frozen)

    # -- arguments of module-local helpers ------------------------------------------

    def _here(self) -> Optional["_Helper"]:
        """The ``def`` whose own body (not a lambda or generator in it) runs here."""
        if not self._helpers:
            return None
        helper = self._helpers[-1]
        if helper.info is None or helper.info is not self.context.grad.function:
            return None
        return helper

    def _argument(self, expr: ast.AST) -> Optional[str]:
        """The name of the running helper's own argument ``expr`` is, unrebound."""
        helper = self._here()
        if helper is None or not isinstance(expr, ast.Name):
            return None
        binding = helper.bindings.get(expr.id)
        if binding is None or self.context.lookup(expr.id) is not binding:
            return None
        return expr.id

    def _branch(self, node: ast.If, taken: bool) -> None:
        helper = self._helpers[-1] if self._helpers else None
        if helper is None:
            return
        left = self._left_branch
        if not taken and left is not None and left[0] is node.test:
            names = left[2]  # the ``else`` of the ``if`` just left: its test, read as it was read there
        elif helper.bindings:
            names = frozenset(
                n.id for n in preorder(node.test) if n.__class__ is ast.Name and self._argument(n) is not None
            )
        else:
            names = frozenset()  # no argument of its own: no name of the test is one
        helper.path.append((node.test, taken, names))

    def _unbranch(self) -> None:
        if self._helpers:
            self._left_branch = self._helpers[-1].path.pop()

    def _argument_edit(self, node: ast.AST, base: ast.expr, what: str, stmt: Optional[ast.stmt], strict: bool) -> None:
        """``tensor.uniform_(...)`` where ``tensor`` is an argument of the
        running helper: decided once the helper's callers are known."""
        name = self._argument(base)
        if name is None:
            return
        if self._switched_off(name):
            return  # ``out.requires_grad = False`` first: the edit is allowed whatever the caller hands in
        helper = self._here()
        assert helper is not None
        state = self.context.grad.state
        if state is Grad.DISABLED:
            self._guarded = True
        elif state in (Grad.ENABLED, Grad.INHERITED) and not self._expected:
            edit = _Edit(node, stmt, helper, name, what, state is Grad.ENABLED, strict, tuple(helper.path))
            self._edits.append(edit)

    def _local_call(self, node: ast.Call) -> None:
        """A call of a module-local function: which arguments are parameters,
        which are the running helper's own arguments passed on."""
        ctx = self.context
        if not (node.args or node.keywords):
            return
        helper = self._here()
        if helper is not None and not helper.fan and _is_fan_call(node):
            helper.fan = self._argument(facts.first_value(node)) is not None
        key = ctx.call_key(node.func)
        if key is None or key[0] == "super" or not ctx.defines(key[-1]):
            return  # ``print(x)``, ``torch.cat(xs)``: no helper of the module, whose calls are asked about
        kinds: Dict[Union[int, str], Tuple[str, object]] = {}
        for slot, value in _slots(node):
            if value.__class__ in _NO_PARAMETER_EXPRESSIONS:
                continue  # ``f(x, 0.5, "mean")``: a constant is neither a parameter nor an argument passed on
            base = facts.strip_views(ctx, value)
            if self._param(base, loose=True):
                kinds[slot] = ("param", (self.code_of(value), self._param(base, loose=False)))
            else:
                name = self._argument(value)
                if name is not None:
                    kinds[slot] = ("forward", name)
        if kinds:
            path = tuple(helper.path) if helper is not None else ()
            call = _Call(node, ctx.grad.state, ctx.grad.function, helper, path, kinds)
            self._calls.setdefault(key, []).append(call)

    def _delivered(self, helper: "_Helper", param: str) -> List["_Delivery"]:
        """The ways a parameter reaches argument ``param`` of ``helper``."""
        info = helper.info
        if info is None or info.key is None:
            return []
        memo = (id(info), param)
        found = self._deliveries.get(memo)
        if found is not None:
            return found
        self._deliveries[memo] = out = []  # in progress: a recursive call sees none
        if self.context.functions.get(info.key) != [info]:
            return out  # defined twice: which one runs is unknown
        forwards = 0
        for call in self._calls.get(info.key, ()):
            values, slots = _bind(helper, call.node)
            kind = call.kinds.get(slots.get(param, -1))
            if kind is None:
                continue
            if kind[0] == "param":
                text, strict = kind[1]  # type: ignore[misc]
                out.append(_Delivery(call.node, text, _grad_on(call.state, call.function), strict, values))
                continue
            forwards += 1
            if call.helper is None or call.state not in (Grad.ENABLED, Grad.INHERITED):
                continue
            for outer in self._delivered(call.helper, kind[1]):  # type: ignore[arg-type]
                if _reachable(call.path, outer.values):
                    grad_on = outer.grad_on or call.state is Grad.ENABLED
                    out.append(_Delivery(outer.call, outer.text, grad_on, outer.strict, values))
        positional = _positional(helper.node, info)
        sites = len(self.context.call_sites.get(info.key, ()))
        if positional[:1] == [param] and forwards == sites and self._initialiser(helper) and self._called_elsewhere(helper):
            out.append(_Delivery(None, info.name, True, False, {}))
        out.sort(key=lambda d: (d.call is None, getattr(d.call, "lineno", 0), getattr(d.call, "col_offset", 0)))
        return out

    def _called_elsewhere(self, helper: "_Helper", seen: Optional[Set[int]] = None) -> bool:
        """May another module call ``helper``, itself or through the module's
        functions that hand it their argument?  Without a project index,
        yes; with one, only if some module of the project does."""
        seen = set() if seen is None else seen
        if helper.info is None or id(helper) in seen:
            return False
        seen.add(id(helper))
        shapes = self.context.call_shapes_elsewhere(helper.info)
        if shapes is None or shapes:
            return True
        return any(
            call.helper is not None and self._called_elsewhere(call.helper, seen)
            for call in self._calls.get(helper.info.key, ())
        )

    def _initialiser(self, helper: "_Helper") -> bool:
        """A public module-level function written like ``torch.nn.init``'s
        (``variance_scaling_(tensor, ...)``), so callers in other modules pass
        it parameters: named like an initialiser, and it computes the fan-in
        or fan-out of its argument or a helper of the module edits its own
        argument under ``no_grad``."""
        info = helper.info
        if info is None or info.key != ("function", info.name):
            return False
        name = info.name
        if name.startswith("_") or not name.endswith("_") or name.endswith("__"):
            return False
        return bool(_INIT_WORDS.intersection(tokens(name))) and (helper.fan or self._guarded)

    def _report_edit(self, edit: "_Edit", delivery: "_Delivery") -> None:
        if delivery.call is None:
            message = (
                f"{edit.what} on `{edit.param}` while grad is enabled raises RuntimeError when the initialiser "
                f"`{delivery.text}` is given a parameter; {_REMEDY}, as `torch.nn.init` does"
            )
        else:
            message = (
                f"{edit.what} on `{edit.param}`, which receives the parameter `{delivery.text}` "
                f"(line {delivery.call.lineno}), while grad is enabled raises RuntimeError; {_REMEDY}"
            )
        stmt = edit.statement
        fix = Fix("wrap-no-grad", stmt, "{torch}.no_grad()", unsafe=True) if stmt is not None else None
        # decided after the walk, in the module's scope: the helper's own
        # scope says whether it runs (a bundled library's helper that the
        # project never reaches)
        ctx = self.context
        info = edit.helper.info
        scope = flow.scope_of(ctx, info) if info is not None else None
        condition = None if scope is None else (lambda: not flow.unreached(ctx, scope, edit.node))
        self.report(edit.node, message, condition=condition, fix=fix)


#: Words in a helper's name that say it fills a weight the way ``torch.nn.init`` does.
_INIT_WORDS = frozenset(
    {"init", "initialize", "initialise", "normal", "uniform", "xavier", "kaiming", "lecun", "glorot", "orthogonal",
     "trunc", "truncated", "variance"}
)
#: ``torch.nn.init``'s internals that compute a weight's fan-in and fan-out.
_FAN_FUNCTIONS = frozenset({"_calculate_fan_in_and_fan_out", "_calculate_correct_fan"})

if TYPE_CHECKING:  # annotations only: making typing aliases at import costs time
    #: where an argument is written in a call: its position, or its keyword
    _Slot = Union[int, str]
    #: an ``if`` test on the way to a statement, the branch taken, and the
    #: helper's own (unrebound) arguments it reads
    _Branch = Tuple[ast.expr, bool, FrozenSet[str]]


def _catches_runtime_error(node: ast.Try) -> bool:
    """Does an ``except`` clause of ``node`` name ``RuntimeError`` (alone or
    in a tuple): the code in its body is expected to raise it?"""
    for handler in node.handlers:
        caught = handler.type
        names = caught.elts if isinstance(caught, ast.Tuple) else [caught]
        if any(isinstance(name, ast.Name) and name.id == "RuntimeError" for name in names):
            return True
    return False


class _Helper:
    """A ``def`` whose body is being visited, with its arguments as bound on entry."""

    __slots__ = ("info", "node", "bindings", "path", "fan")

    def __init__(self, info: Optional[FunctionInfo], node: ast.AST, bindings: Dict[str, object]) -> None:
        self.info = info
        self.node = node
        self.bindings = bindings
        #: the ``if`` branches being visited in this body, outermost first
        self.path: List[_Branch] = []
        #: it computes an argument's fan-in or fan-out
        self.fan = False


class _Edit:
    """An in-place edit of a helper's own argument."""

    __slots__ = ("node", "statement", "helper", "param", "what", "explicit", "strict", "path")

    def __init__(
        self,
        node: ast.AST,
        statement: Optional[ast.stmt],
        helper: _Helper,
        param: str,
        what: str,
        explicit: bool,
        strict: bool,
        path: Tuple[_Branch, ...],
    ) -> None:
        self.node = node
        self.statement = statement
        self.helper = helper
        self.param = param
        self.what = what
        #: grad is explicitly enabled at the edit (``with torch.enable_grad():``)
        self.explicit = explicit
        #: augmented or item assignment: reported only when the argument is surely a parameter
        self.strict = strict
        self.path = path


class _Call:
    """A call of a module-local function that passes a parameter or an argument on."""

    __slots__ = ("node", "state", "function", "helper", "path", "kinds")

    def __init__(
        self,
        node: ast.Call,
        state: Grad,
        function: Optional[FunctionInfo],
        helper: Optional[_Helper],
        path: Tuple[_Branch, ...],
        kinds: Dict[_Slot, Tuple[str, object]],
    ) -> None:
        self.node = node
        self.state = state
        self.function = function
        #: the helper whose own body makes the call
        self.helper = helper
        self.path = path
        #: slot -> ("param", (source, surely a parameter)) or ("forward", argument name)
        self.kinds = kinds


class _Delivery:
    """A way a parameter reaches a helper's argument."""

    __slots__ = ("call", "text", "grad_on", "strict", "values")

    def __init__(
        self, call: Optional[ast.Call], text: str, grad_on: bool, strict: bool, values: Dict[str, Optional[ast.expr]]
    ) -> None:
        #: the call that passes the parameter (None: callers in other modules)
        self.call = call
        self.text = text
        self.grad_on = grad_on
        self.strict = strict
        #: the helper's arguments on this way, by name (None: not known)
        self.values = values


def _may_be_enabled(function: Optional[object]):
    def condition() -> bool:
        return effective(Grad.INHERITED, function) in (Grad.ENABLED, Grad.INHERITED)  # type: ignore[arg-type]

    return condition


def _grad_on(state: Grad, function: Optional[FunctionInfo]) -> bool:
    if state is Grad.ENABLED:
        return True
    return state is Grad.INHERITED and effective(state, function) in (Grad.ENABLED, Grad.INHERITED)


def _positional(node: ast.AST, info: FunctionInfo) -> List[str]:
    """Names of the arguments a call passes by position (without ``self``)."""
    return positional_params(node, info.class_name is not None)  # type: ignore[arg-type]


def _slots(call: ast.Call) -> List[Tuple[_Slot, ast.expr]]:
    out: List[Tuple[_Slot, ast.expr]] = []
    for i, arg in enumerate(call.args):
        if isinstance(arg, ast.Starred):
            break  # positions after ``*args`` are unknown
        out.append((i, arg))
    out.extend((kw.arg, kw.value) for kw in call.keywords if kw.arg is not None)
    return out


def _bind(helper: _Helper, call: ast.Call) -> Tuple[Dict[str, Optional[ast.expr]], Dict[str, _Slot]]:
    """The helper's argument values for ``call`` (defaults included; None
    where unknown) and the slot each argument is passed in."""
    assert helper.info is not None
    args: ast.arguments = helper.node.args  # type: ignore[attr-defined]
    positional = _positional(helper.node, helper.info)
    keywordable = {a.arg for a in args.args + args.kwonlyargs if a.arg in positional or a in args.kwonlyargs}
    values: Dict[str, Optional[ast.expr]] = {}
    slots: Dict[str, _Slot] = {}
    for slot, value in _slots(call):
        if isinstance(slot, int):
            if slot < len(positional):
                values[positional[slot]] = value
                slots[positional[slot]] = slot
        elif slot in keywordable:
            values[slot] = value
            slots[slot] = slot
    unpacked = any(isinstance(a, ast.Starred) for a in call.args) or any(kw.arg is None for kw in call.keywords)
    if not unpacked:
        for name, default in param_defaults(args).items():
            values.setdefault(name, default)
    return values, slots


def _admits(helper: _Helper, path: Tuple[_Branch, ...]) -> Callable[[Shape], bool]:
    """Can a call of ``helper`` shaped so (see ``facts.Shape``) get past
    every ``if`` of ``path``?  Only constants and defaults decide; any other
    argument may take either branch."""
    assert helper.info is not None
    positional = _positional(helper.node, helper.info)
    defaults = param_defaults(helper.node.args)  # type: ignore[attr-defined]

    def admits(shape: Shape) -> bool:
        npos, keywords, constants = shape
        values: Dict[str, Optional[ast.expr]] = {}
        passed = set(positional[:npos]) if npos >= 0 else set(positional)
        passed.update(keywords)
        for slot, value in constants:
            name = positional[slot] if isinstance(slot, int) and slot < len(positional) else slot
            if isinstance(name, str):
                values[name] = ast.Constant(value)
        if npos >= 0 and "**" not in keywords:
            for name, default in defaults.items():
                if name not in passed:
                    values[name] = default
        return _reachable(path, values)

    return admits


def _sets_requires_grad(name: str) -> bool:
    """``set_requires_grad``, ``toggle_requires_grad``: a helper that sets the flag it names."""
    return "requires_grad" in name


def _prefixes(name: Optional[str]) -> List[str]:
    """``a.b.c``, ``a.b`` and ``a``; nothing for None."""
    if name is None:
        return []
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(len(parts), 0, -1)]


_PARAMETER_ITERATORS = frozenset({"parameters", "named_parameters", "modules", "children", "named_modules"})


def _loop_sources(cls: ast.ClassDef) -> Dict[str, Set[str]]:
    """Loop variables of the class's methods -> what they iterate, dotted:
    ``for proto in self.prototypes`` gives ``proto -> self.prototypes``,
    ``for p in proto.parameters()`` gives ``p -> proto``, ``zip(a, b)`` and
    ``enumerate(a)`` pair each variable with its own iterable."""
    sources: Dict[str, Set[str]] = {}

    def add(target: ast.expr, iterable: ast.expr) -> None:
        if isinstance(iterable, ast.Call):
            func = iterable.func
            if isinstance(func, ast.Name) and func.id == "zip" and isinstance(target, ast.Tuple):
                for t, i in zip(target.elts, iterable.args):
                    add(t, i)
                return
            if isinstance(func, ast.Name) and func.id == "enumerate" and isinstance(target, ast.Tuple):
                first = first_value(iterable)
                if len(target.elts) == 2 and first is not None:
                    add(target.elts[1], first)
                return
            if isinstance(func, ast.Attribute) and func.attr in _PARAMETER_ITERATORS:
                iterable = func.value
                if isinstance(target, ast.Tuple) and len(target.elts) == 2:
                    target = target.elts[1]
        name = dotted(iterable)
        if isinstance(target, ast.Name) and name:
            sources.setdefault(target.id, set()).add(name)

    for node in ast.walk(cls):
        if isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)):
            add(node.target, node.iter)
    return sources


def _aliases(expr: ast.expr, sources: Dict[str, Set[str]]) -> Set[str]:
    """``expr`` dotted, and what it iterates, through up to three loops."""
    name = dotted(expr)
    if not name:
        return set()
    found = {name}
    todo = [name]
    for _ in range(3):
        todo = [s for n in todo for s in sources.get(n, ()) if s not in found]
        found.update(todo)
    return found


def _frozen_owners(cls: ast.ClassDef, sources: Dict[str, Set[str]]) -> Set[str]:
    """What the class switches grad off for: ``x`` of ``x.requires_grad =
    False`` and ``x.requires_grad_(False)``, with everything ``x`` iterates."""
    targets: List[ast.expr] = []
    for node in ast.walk(cls):
        if isinstance(node, ast.Assign) and is_const(node.value, False):
            targets.extend(t.value for t in node.targets if isinstance(t, ast.Attribute) and t.attr == "requires_grad")
        elif (
            isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "requires_grad_" and is_const(first_value(node), False)
        ):
            targets.append(node.func.value)
    return {name for t in targets for name in _aliases(t, sources)}


def _toggles(node: ast.FunctionDef) -> Optional[Tuple[int, int]]:
    """``def toggle_grad(model, flag): for p in model.parameters():
    p.requires_grad_(flag)`` (or ``p.requires_grad = flag``): the positions
    of the model and of the flag."""
    params = [a.arg for a in node.args.args]
    for stmt in node.body:
        loop = facts.parameters_loop(stmt)
        if not (
            loop is not None and loop[2] == "parameters" and isinstance(loop[1], ast.Name)
            and isinstance(stmt.target, ast.Name) and isinstance(loop[0], ast.Name) and loop[0].id in params
        ):
            continue
        loop_var, owner = loop[1].id, loop[0].id
        for inner in stmt.body:
            name, value = _sets_requires_grad_of(inner.value if isinstance(inner, ast.Expr) else inner)
            if name == loop_var and isinstance(value, ast.Name) and value.id in params:
                return params.index(owner), params.index(value.id)
    return None


def _freezes(node: ast.FunctionDef) -> FrozenSet[str]:
    """The parameters of ``node`` whose ``requires_grad`` a statement of its
    own body sets to ``False`` (``out.requires_grad = False`` or
    ``out.requires_grad_(False)``) and no other statement of it sets again.
    Most functions have no such statement: only those are walked."""
    params = {a.arg for a in node.args.args}
    off: Dict[str, ast.AST] = {}
    for stmt in node.body:
        setting = stmt.value if isinstance(stmt, ast.Expr) else stmt
        name, value = _sets_requires_grad_of(setting)
        if name in params and is_const(value, False):
            off[name] = setting
    if not off:
        return frozenset()
    for inner in ast.walk(node):
        name, _ = _sets_requires_grad_of(inner)
        if name in off and inner is not off[name]:
            del off[name]  # set again, on some path
    return frozenset(off)


def _sets_requires_grad_of(node: ast.AST) -> Tuple[Optional[str], Optional[ast.expr]]:
    """``(name, value)`` of ``name.requires_grad = value`` or ``name.requires_grad_(value)``."""
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        target = node.targets[0]
        if isinstance(target, ast.Attribute) and target.attr == "requires_grad":
            return dotted(target.value), node.value
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "requires_grad_":
        return dotted(node.func.value), first_value(node)
    return None, None


#: expressions that evaluate to no tensor of the caller's: constants,
#: f-strings, containers built in place, lambdas, comparisons
_NO_PARAMETER_EXPRESSIONS = frozenset({
    ast.Constant, ast.JoinedStr, ast.List, ast.Tuple, ast.Dict, ast.Set, ast.Lambda, ast.Compare,
    ast.ListComp, ast.DictComp, ast.SetComp, ast.GeneratorExp,
})


def _target_names(target: ast.expr) -> List[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [n for t in target.elts for n in _target_names(t)]
    return []


def _is_fan_call(call: ast.Call) -> bool:
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    return name in _FAN_FUNCTIONS


def _reachable(path: Tuple[_Branch, ...], values: Dict[str, Optional[ast.expr]]) -> bool:
    """Can a way into the helper with these argument values get past every ``if``?"""
    for test, taken, names in path:
        if names:
            holds = facts.test_holds(test, values, names)
            if holds is not None and holds is not taken:
                return False
    return True


def _unless(first: Callable[[], bool], then: Callable[[], bool]) -> Callable[[], bool]:
    return lambda: not first() and then()
