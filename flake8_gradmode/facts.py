"""Shared facts about values: parameters, views of them, modules, losses.

Rules ask these questions; they never answer them on their own.  Every answer
errs towards "don't know", which rules treat as a reason for silence.
"""

from __future__ import annotations

from collections import namedtuple
from enum import Enum
import ast
import itertools
from typing import TYPE_CHECKING, Any, Callable, Dict, FrozenSet, Iterator, List, Optional, Protocol, Set, Tuple

from flake8_gradmode.names import OTHER_FRAMEWORKS, tokens
from flake8_gradmode.tracker import (
    Grad,
    GradTracker,
    ImportTable,
    call_args,
    child_nodes,
    dotted,
    first_value,
    last_name,
    is_const,
    param_defaults,
    positional_params,
    string_value,
    subscripted_root,
    unchained,
)


class Kind(Enum):
    OTHER = "other"
    #: a parameter, a leaf tensor that requires grad, or a view of one
    PARAM = "param"
    #: an iterable of parameters (``m.parameters()``, ``group["params"]``)
    PARAM_ITER = "param-iter"
    #: an iterable of ``(name, parameter)`` pairs
    NAMED_PARAM_ITER = "named-param-iter"
    #: one ``(name, parameter)`` pair
    NAMED_PARAM = "named-param"
    #: ``optimizer.param_groups``
    PARAM_GROUPS = "param-groups"
    #: one element of ``param_groups``
    PARAM_GROUP = "param-group"
    #: an ``nn.Module`` instance
    MODULE = "module"
    #: an iterable of modules (``m.modules()``)
    MODULE_ITER = "module-iter"
    #: a module or tensor whose grad was switched off (``.requires_grad_(False)``)
    FROZEN = "frozen"


if TYPE_CHECKING:  # annotations only: making a Protocol class at import costs time

    class Context(Protocol):
        """What the facts ask of the context they are given (``context.Context``,
        a floor above, is the one the engine keeps)."""

        imports: ImportTable
        grad: GradTracker

        def lookup(self, name: str) -> Optional["Binding"]: ...

        def current_class(self) -> Any: ...


#: What a name is bound to: ``kind`` (a ``Kind``); ``state``, the grad state
#: when the value was computed; ``value``, the expression (or None);
#: ``function``, the ``FunctionInfo`` it was bound in (or None); ``seq``, the
#: position in the traversal (``Flow.seq``) when the name was bound.  A
#: collections.namedtuple: a typing.NamedTuple class costs twice as much to
#: create at import.
Binding = namedtuple("Binding", ("kind", "state", "value", "function", "seq"), defaults=(None, 0))


#: Tensor methods that return a view sharing the base's storage.
VIEW_METHODS = frozenset(
    {
        "view",
        "view_as",
        "t",
        "transpose",
        "permute",
        "squeeze",
        "unsqueeze",
        "narrow",
        "select",
        "expand",
        "expand_as",
        "diagonal",
        "unfold",
        "as_strided",
        "unflatten",
        "movedim",
        "swapaxes",
        "swapdims",
        "real",
        "imag",
    }
)
VIEW_ATTRIBUTES = frozenset({"T", "mT", "H", "mH", "real", "imag"})

#: Names of ``nn.Module`` attributes that hold parameters.
PARAM_ATTRIBUTES = frozenset({"weight", "bias"})

#: In-place methods that do not change tensor data.
NON_DATA_INPLACE = frozenset({"requires_grad_", "share_memory_", "detach_", "retain_grad_"})

_PARAMETER_CLASSES = frozenset(
    {"torch.nn.Parameter", "torch.nn.parameter.Parameter", "torch.nn.parameter.UninitializedParameter"}
)
_MODULE_BASE_SUFFIXES = ("Module", "Model", "Net", "Network", "Layer", "Block", "Encoder", "Decoder")


def builds_parameter(ctx: "Context", expr: ast.AST) -> bool:
    """Is ``expr`` a call that makes a new parameter (``nn.Parameter(x)``)?"""
    return isinstance(expr, ast.Call) and (ctx.imports.resolve(expr.func) or "") in _PARAMETER_CLASSES


#: Functions PyTorch 0.4 added, which code written for 0.3 cannot call.
_FROM_0_4 = frozenset({"torch.device", "torch.tensor", "torch.as_tensor"})
#: Tensor methods PyTorch 0.4 added (``loss.item()`` replaced ``loss.data[0]``).
_METHODS_FROM_0_4 = frozenset({"item", "to", "requires_grad_"})


def _written_for_0_4(ctx: "Context") -> bool:
    """Does the module call what only PyTorch 0.4 and later have: a tensor's
    ``.item()``, ``.to(device)`` or ``.requires_grad_()``, ``torch.device``,
    ``torch.tensor``?  Then it runs on a release where ``volatile`` does
    nothing.  A module without one may be code for 0.3, where the flag
    worked.  ``torch.no_grad`` does not count: a module that has it already
    stops its graphs that way, and a ``volatile=`` beside it is a leftover
    nothing relies on."""
    for node in ast.walk(ctx.tree) if ctx.tree is not None else ():
        if node.__class__ is ast.Call:
            func = node.func  # type: ignore[attr-defined]
            if func.__class__ is ast.Attribute and func.attr in _METHODS_FROM_0_4 and (
                func.attr != "to" or node.args or node.keywords  # type: ignore[attr-defined]
            ):
                return True
            if (ctx.imports.resolve(func) or "") in _FROM_0_4:
                return True
    return False


def tests_type_is_variable(node: ast.Compare) -> bool:
    """``type(h) == Variable`` (``is``, ``!=``, either side, ``Variable``
    written as any name or attribute ending so): from PyTorch 0.4 on no
    tensor's type is ``Variable``, and code that tells hidden states from
    tuples of them this way (``repackage_hidden``) fails there: code for
    0.3 only."""
    if len(node.comparators) != 1:
        return False
    pair = (node.left, node.comparators[0])
    for a, b in (pair, pair[::-1]):
        if isinstance(a, ast.Call) and isinstance(a.func, ast.Name) and a.func.id == "type" and (
            last_name(b) == "Variable"
        ):
            return True
    return False


def _breaks_on_0_4(ctx: "Context") -> bool:
    """Does the module, or any module of its project, test ``type(h) ==
    Variable`` (``tests_type_is_variable``) or read a loss as
    ``loss.data[0]`` (``module_reads_loss_by_index``): code for PyTorch
    0.3, which later releases fail?"""
    for node in ast.walk(ctx.tree) if ctx.tree is not None else ():
        if node.__class__ is ast.Compare and tests_type_is_variable(node):  # type: ignore[arg-type]
            return True
    return module_reads_loss_by_index(ctx) or ctx.code_for_0_3_in_project()


def reads_loss_by_index(node: ast.Subscript) -> bool:
    """``loss.data[0]`` (any name with ``loss`` in it: ``d_loss.data[0]``,
    ``self.loss_spatial.data[0]``): how PyTorch 0.3 read a loss's number;
    0.4 warns there, and from 0.5 on a loss is a 0-dim tensor and the index
    raises ``IndexError``."""
    value = node.value
    return (
        value.__class__ is ast.Attribute and value.attr == "data"  # type: ignore[attr-defined]
        and is_const(node.slice, 0) and "loss" in (last_name(value.value) or "").lower()  # type: ignore[attr-defined]
    )


def module_reads_loss_by_index(ctx: "Context") -> bool:
    """Does the module read a loss as ``loss.data[0]`` (``reads_loss_by_index``)?
    Asked once per module, for a finding about to be made."""
    found = ctx.flow.cache.get(("reads-loss-by-index",))
    if found is None:
        found = "data[0]" in "".join(ctx.lines) and any(
            node.__class__ is ast.Subscript and reads_loss_by_index(node)  # type: ignore[arg-type]
            for node in (ast.walk(ctx.tree) if ctx.tree is not None else ())
        )
        ctx.flow.cache[("reads-loss-by-index",)] = found
    return found


def runs_on_0_4(ctx: "Context") -> bool:
    """Does the module run on PyTorch 0.4 or later, where ``volatile`` does
    nothing: ``gradmode-current-torch = yes`` says all code does, it calls
    an API 0.4 added (``_written_for_0_4``), or, unless it has a test that
    breaks on 0.4 (``_breaks_on_0_4``), its project names only releases
    from 0.4 on (``torch==1.5.1``)?  Asked once per module."""
    if ctx.settings.current_torch:
        return True
    found = ctx.flow.cache.get(("runs-on-0.4",))
    if found is None:
        found = _written_for_0_4(ctx) or (not _breaks_on_0_4(ctx) and ctx.names_only_torch_from((0, 4)))
        ctx.flow.cache[("runs-on-0.4",)] = found
    return found


def is_inplace_method(name: str) -> bool:
    return (
        name.endswith("_")
        and not name.endswith("__")
        and not name.startswith("_")
        and name not in NON_DATA_INPLACE
    )


def keyword(call: ast.Call, name: str) -> Optional[ast.keyword]:
    for kw in call.keywords:
        if kw.arg == name:
            return kw
    return None


def _is_true(expr: Optional[ast.AST]) -> bool:
    return is_const(expr, True)


def _is_false(expr: Optional[ast.AST]) -> bool:
    return is_const(expr, False)


#: Module methods that return the module itself (``Net().to(device)``).
SAME_VALUE_METHODS = frozenset({"to", "cuda", "cpu", "float", "double", "half", "train", "eval"})


def is_module_class_base(ctx: "Context", base: ast.expr) -> bool:
    """Does a class base look like ``nn.Module`` or a subclass of it?  Not
    another framework's (``mlx.nn.Module``, ``keras.Model``), whose weights
    are that framework's arrays."""
    qual = ctx.imports.resolve(base) or ""
    if qual.startswith("torch.nn."):
        return True
    if qual.partition(".")[0] in OTHER_FRAMEWORKS:
        return False
    last = qual.rsplit(".", 1)[-1]
    return last.endswith(_MODULE_BASE_SUFFIXES)


def classify(ctx: "Context", expr: ast.AST) -> Kind:
    """What kind of value ``expr`` evaluates to, as far as one module shows."""
    if isinstance(expr, ast.Name):
        binding = ctx.lookup(expr.id)
        return binding.kind if binding is not None else Kind.OTHER
    if isinstance(expr, ast.Attribute):
        attr = expr.attr
        if attr == "param_groups":
            return Kind.PARAM_GROUPS
        if attr in VIEW_ATTRIBUTES:
            return Kind.PARAM if classify(ctx, expr.value) is Kind.PARAM else Kind.OTHER
        if isinstance(expr.value, ast.Name) and expr.value.id == "self":
            cls = ctx.current_class()
            if cls is not None and attr in cls.param_attrs:
                rebound = ctx.lookup("self." + attr)  # a plain tensor bound here after a parameter
                return Kind.PARAM if rebound is None else rebound.kind
            if cls is not None and attr in cls.value_attrs:
                return Kind.OTHER  # ``self.weight = torch.empty(...)``: not a parameter
        if attr in PARAM_ATTRIBUTES and is_module_like(ctx, expr.value):
            return Kind.PARAM
        return Kind.OTHER
    if isinstance(expr, ast.Subscript):
        base = classify(ctx, expr.value)
        if base is Kind.PARAM:
            # ``w[0]``, ``w[:, 1:]`` are views of the parameter; ``emb[ids]``
            # with a tensor of indices is a copy, free to change in place
            return Kind.PARAM if _basic_index(ctx, expr.slice) else Kind.OTHER
        if base is Kind.PARAM_GROUP and string_value(expr.slice) == "params":
            return Kind.PARAM_ITER
        return Kind.OTHER
    if isinstance(expr, ast.Call):
        return _classify_call(ctx, expr)
    return Kind.OTHER


def _basic_index(ctx: "Context", index: ast.AST) -> bool:
    """Does ``index`` select a view (integers, slices, ``...``, ``None``),
    as far as the module shows?  A name counts when it is bound by
    ``for i in range(...)`` or to an integer constant."""
    if isinstance(index, ast.Tuple):
        return all(_basic_index(ctx, e) for e in index.elts)
    if isinstance(index, (ast.Slice, ast.Constant)):
        return True
    if isinstance(index, ast.UnaryOp):
        return isinstance(index.operand, ast.Constant)
    if isinstance(index, ast.Name):
        binding = ctx.lookup(index.id)
        value = binding.value if binding is not None else None
        if isinstance(value, ast.Constant):
            return isinstance(value.value, int)
        return isinstance(value, ast.Call) and last_name(value.func) in ("range", "enumerate", "len")
    return isinstance(index, ast.BinOp)  # ``w[i + 1]``: arithmetic on positions


def _classify_call(ctx: "Context", call: ast.Call) -> Kind:
    func = call.func
    if isinstance(func, ast.Attribute):
        method = func.attr
        if method == "parameters":
            return Kind.PARAM_ITER
        if method == "named_parameters":
            return Kind.NAMED_PARAM_ITER
        if method in ("modules", "children"):
            return Kind.MODULE_ITER
        if method in VIEW_METHODS:
            return Kind.PARAM if classify(ctx, func.value) is Kind.PARAM else Kind.OTHER
        if method == "requires_grad_":
            arg = first_value(call)
            if arg is None or _is_true(arg):
                return Kind.PARAM
            return Kind.FROZEN if _is_false(arg) else Kind.OTHER
        if method in SAME_VALUE_METHODS:
            inner = classify(ctx, func.value)
            return inner if inner in (Kind.MODULE, Kind.FROZEN) else Kind.OTHER
    qual = ctx.imports.resolve(func) or ""
    if qual in _PARAMETER_CLASSES:
        arg = keyword(call, "requires_grad")
        if arg is not None and not _is_true(arg.value):
            return Kind.OTHER
        return Kind.PARAM
    if qual.startswith("torch.") and _is_true(getattr(keyword(call, "requires_grad"), "value", None)):
        return Kind.PARAM
    if qual.startswith("torch.nn.") and qual.rsplit(".", 1)[-1][:1].isupper():
        return Kind.MODULE
    args = call_args(call)
    if qual in ("list", "tuple", "iter", "filter") and args:
        inner = classify(ctx, args[-1][1])
        if inner in (Kind.PARAM_ITER, Kind.NAMED_PARAM_ITER, Kind.MODULE_ITER):
            return inner
    return Kind.OTHER


def returned_kinds(ctx: "Context", call: ast.Call, width: Optional[int]) -> Optional[List[Kind]]:
    """``model = build()``, ``manager, model, opt = build()``: the kind of
    each value a function of this module returns (``width``: how many names
    take them; None for one name), when every ``return`` gives that many.
    A position is a module when every ``return`` names there a local the
    function binds once, to a ``torch.nn`` layer (``model =
    torch.nn.Linear(1, 3)``, possibly ``.to(device)``); anything else is
    unknown."""
    func = call.func
    if func.__class__ is not ast.Name:
        return None
    infos = ctx.functions.get(("function", func.id))  # type: ignore[attr-defined]
    if not infos or len(infos) != 1:
        return None
    node = infos[0].node
    found = ctx.returned.get(id(node), False)
    if found is False:
        found = ctx.returned[id(node)] = _returned_modules(ctx, node)
    if found is None or found[0] != width:
        return None
    return [Kind.MODULE if i in found[1] else Kind.OTHER for i in range(width or 1)]


def _returned_modules(ctx: "Context", fn: ast.AST) -> Optional[Tuple[Optional[int], FrozenSet[int]]]:
    """(how many values each ``return`` of ``fn`` gives, None for one;
    the positions that are ``torch.nn`` layers it built), or None."""
    returns: List[ast.expr] = []
    stores: Dict[str, List[ast.AST]] = {}
    assigned: Dict[int, ast.expr] = {}  # id of a name an ``=`` binds -> the value
    for node in own_nodes(fn):
        if node.__class__ is ast.Return:
            if node.value is None:  # type: ignore[attr-defined]
                return None
            returns.append(node.value)  # type: ignore[attr-defined]
        elif node.__class__ in (ast.Yield, ast.YieldFrom):
            return None
        elif node.__class__ is ast.Assign:
            for target in node.targets:  # type: ignore[attr-defined]
                if target.__class__ is ast.Name:
                    assigned[id(target)] = node.value  # type: ignore[attr-defined]
        elif node.__class__ is ast.Name and node.ctx.__class__ is not ast.Load:  # type: ignore[attr-defined]
            stores.setdefault(node.id, []).append(assigned.get(id(node), node))  # type: ignore[attr-defined]
    if not returns:
        return None
    widths = {len(r.elts) if r.__class__ is ast.Tuple else None for r in returns}  # type: ignore[attr-defined]
    if len(widths) != 1:
        return None
    width = widths.pop()
    modules = set(range(width or 1))
    for value in returns:
        elements = value.elts if width is not None else [value]  # type: ignore[attr-defined]
        for i, element in enumerate(elements):
            if i in modules and not _built_layer(ctx, element, stores):
                modules.discard(i)
    return width, frozenset(modules)


def _built_layer(ctx: "Context", element: ast.expr, stores: Dict[str, List[ast.AST]]) -> bool:
    """Is ``element`` a local bound once, to ``torch.nn.Linear(...)`` or
    another capitalised ``torch.nn`` class that is no loss?"""
    if element.__class__ is not ast.Name:
        return False
    values = stores.get(element.id, ())  # type: ignore[attr-defined]
    if len(values) != 1 or values[0].__class__ is not ast.Call:
        return False
    built = unchained(values[0])  # type: ignore[arg-type]
    if built.__class__ is not ast.Call:
        return False
    qual = ctx.imports.resolve(built.func) or ""  # type: ignore[attr-defined]
    last = qual.rsplit(".", 1)[-1]
    return qual.startswith("torch.nn.") and last[:1].isupper() and not last.endswith("Loss")


def is_module_like(ctx: "Context", expr: ast.AST) -> bool:
    """``expr`` is an ``nn.Module``: bound to ``nn.X(...)``, a ``.modules()``
    element, a layer a function of the module builds and returns
    (``model = build()``, ``manager, model = build()``: see
    ``returned_kinds``), or ``self``/``self.sub`` inside an ``nn.Module``
    subclass."""
    if isinstance(expr, ast.Name):
        if expr.id == "self":
            cls = ctx.current_class()
            return cls is not None and cls.is_module
        binding = ctx.lookup(expr.id)
        if binding is None:
            return False
        if binding.kind is Kind.MODULE:
            return True
        value = binding.value
        if value.__class__ is ast.Call:
            kinds = returned_kinds(ctx, value, None)  # type: ignore[arg-type]
            return kinds is not None and kinds[0] is Kind.MODULE
        unpacked = ctx.unpacked.get((expr.id, binding.seq))
        if unpacked is not None:
            kinds = returned_kinds(ctx, unpacked[0], unpacked[2])
            return kinds is not None and kinds[unpacked[1]] is Kind.MODULE
        return False
    if isinstance(expr, ast.Attribute):
        root: ast.AST = expr
        while isinstance(root, ast.Attribute):
            root = root.value
        if isinstance(root, ast.Name) and root.id == "self":
            cls = ctx.current_class()
            return cls is not None and cls.is_module
    return False


def element_kind(kind: Kind) -> Kind:
    """Kind of one element when iterating a value of ``kind``."""
    return {
        Kind.PARAM_ITER: Kind.PARAM,
        Kind.NAMED_PARAM_ITER: Kind.NAMED_PARAM,
        Kind.PARAM_GROUPS: Kind.PARAM_GROUP,
        Kind.MODULE_ITER: Kind.MODULE,
    }.get(kind, Kind.OTHER)


def strip_views(ctx: "Context", expr: ast.expr) -> ast.expr:
    """``w[:, 0].view(-1)`` -> ``w``: the tensor whose storage is changed."""
    while True:
        if isinstance(expr, ast.Subscript):
            expr = expr.value
        elif _is_view_call(expr):
            expr = expr.func.value  # type: ignore[attr-defined]
        elif isinstance(expr, ast.Attribute) and expr.attr in VIEW_ATTRIBUTES:
            expr = expr.value
        else:
            return expr


def _is_view_call(expr: ast.AST) -> bool:
    return (
        isinstance(expr, ast.Call)
        and isinstance(expr.func, ast.Attribute)
        and expr.func.attr in VIEW_METHODS
    )


# --- training steps -----------------------------------------------------------

_OPTIMIZER_WORDS = frozenset({"optim", "optimizer", "optimiser", "opt", "optimizers", "scaler", "solver"})
#: Names of functions and methods that run a training step (judged by their
#: body where the module defines them: see ``flow._steps_by_name_only``).
TRAINING_STEP_NAMES = frozenset(
    {"train_step", "training_step", "train_one_step", "train_on_batch", "optimize_parameters"}
)


def names_training_step(func: ast.expr) -> bool:
    """Is the called ``func`` a training step by its name alone:
    ``loss.backward()``, ``optimizer.step()``, ``train_step(...)``?"""
    if isinstance(func, ast.Attribute):
        method = func.attr
        if method in ("backward", "manual_backward", "zero_grad") or method in TRAINING_STEP_NAMES:
            return True
        if method == "step":
            owner = func.value
            if isinstance(owner, ast.Attribute):
                name = owner.attr
            elif isinstance(owner, ast.Name):
                name = owner.id
            else:
                name = ""
            return any(w in _OPTIMIZER_WORDS for w in tokens(name)) or name.startswith("optim")
        return False
    return isinstance(func, ast.Name) and func.id in TRAINING_STEP_NAMES


#: Words of the name of a meta-learner, whose ``adapt`` runs gradient steps.
_ADAPTER_WORDS = frozenset({"learner", "maml", "meta", "metalearner", "reptile"})
#: Words of the name of what a meta-learner's ``adapt`` differentiates.
_ADAPT_LOSS_WORDS = frozenset({"loss", "error", "err", "cost", "objective"})


def is_training_step(ctx: "Context", call: ast.Call) -> bool:
    """``loss.backward()``, ``optimizer.step()``, ``autograd.grad(...)``, ..."""
    func = call.func
    if names_training_step(func):
        return True
    if isinstance(func, ast.Attribute) and func.attr == "adapt" and call.args and _ADAPTER_WORDS.intersection(
        tokens(last_name(func.value) or "")
    ):
        return True  # ``meta_learner.adapt(train_tasks)``, ``maml.adapt(batch)``: inner-loop updates
    if isinstance(func, ast.Attribute) and func.attr in ("adapt", "step") and call.args:
        # ``learner.adapt(support_loss)``, ``diffopt.step(spt_loss)``: a meta-learner
        # differentiates its loss (not ``scheduler.step(val_loss)``, which reads a number)
        first = call.args[0]
        if func.attr == "step" and "opt" not in (last_name(func.value) or "").lower():
            return False
        if not isinstance(first, ast.Name):
            return False
        if func.attr == "adapt" and _ADAPT_LOSS_WORDS.intersection(tokens(first.id)):
            return True  # ``learner.adapt(error)``, ``learner.adapt(train_err)``
        return "loss" in tokens(first.id)
    if isinstance(func, ast.Attribute) and func.attr == "step":
        return False
    if not ctx.imports.may_end_with(func, ("grad", "backward")):
        return False  # not ``torch.autograd.grad``/``backward``, whatever it resolves to
    qual = ctx.imports.resolve(func) or ""
    return qual in ("torch.autograd.grad", "torch.autograd.backward")


def is_gradient_only(ctx: "Context", call: ast.Call) -> bool:
    """``zero_grad()`` and ``autograd.grad(...)``: gradients without a weight update."""
    func = call.func
    if isinstance(func, ast.Attribute) and func.attr == "zero_grad":
        return True
    return (ctx.imports.resolve(func) or "") == "torch.autograd.grad"


# --- losses -------------------------------------------------------------------

_LOSS_WORDS = frozenset({"loss", "losses", "criterion", "crit", "objective"})
#: Calls whose result holds no graph: ``loss.item()``, ``float(loss)``.
_DETACHING_METHODS = frozenset({"item", "detach", "tolist", "numpy", "detach_"})
_DETACHING_FUNCTIONS = frozenset({"float", "int", "bool", "str", "round"})
#: Attributes whose read of a tensor drops its graph (``out.detach()``,
#: ``loss.item()``, ``out.data``): a value read through one holds none.
GRAPH_DROPPING_READS = frozenset({"detach", "item", "numpy", "tolist", "data"})
#: Tensor methods whose result still carries the graph.
_GRAPH_KEEPING_METHODS = frozenset(
    {"mean", "sum", "clone", "cpu", "cuda", "to", "float", "double", "squeeze", "view", "reshape"}
)


def is_loss_call(ctx: "Context", call: ast.Call) -> bool:
    """``criterion(out, y)``, ``F.cross_entropy(...)``, ``self.loss_fn(...)``."""
    qual = ctx.imports.resolve(call.func) or ""
    if qual.startswith("torch.nn.functional."):
        name = qual.rsplit(".", 1)[-1]
        return "loss" in name or "entropy" in name or name == "kl_div"
    if qual.startswith("torch.nn.") and qual.rsplit(".", 1)[-1].endswith("Loss"):
        return False  # building a criterion, not computing a loss
    key = dotted(call.func)
    if key is None:
        return False
    name = key.rsplit(".", 1)[-1]
    # ``results.get_best_loss()``, ``lowest_loss()``: the best of a record kept, not a loss computed
    return loss_named(name) and _RECORD_WORDS.isdisjoint(tokens(name))


#: Words in the name of a call that reads the best of a record of losses.
_RECORD_WORDS = frozenset({"best", "lowest", "min", "minimum"})


def loss_named(name: str) -> bool:
    """Does ``name`` say loss (``criterion``, ``get_loss``, ``compute_losses``)?"""
    return any(t in _LOSS_WORDS for t in tokens(name))


def detached_value(expr: ast.AST) -> bool:
    """A value that surely holds no graph: ``x.item()``, ``float(x)``, and
    anything read through ``.data`` or a detaching call (``loss.data[0]``,
    ``loss.detach().cpu()``), or a conditional choosing between two such."""
    if not isinstance(expr, ast.Call):
        if isinstance(expr, ast.Constant):
            return isinstance(expr.value, (int, float, str)) and not isinstance(expr.value, bool)
        if isinstance(expr, ast.IfExp):
            # ``loss.item() if n > 0 else 0``: a number either way
            return detached_value(expr.body) and detached_value(expr.orelse)
        if isinstance(expr, ast.BinOp):
            # ``float(loss.data) * len(xlen)``: a number scaled by a count
            sides = (expr.left, expr.right)
            return any(detached_value(side) for side in sides) and all(
                detached_value(side) or _a_count(side) for side in sides
            )
        return _read_past_graph(expr)
    func = expr.func
    if isinstance(func, ast.Attribute):
        return _read_past_graph(expr)
    # ``detach(losses)``, ``detach_cpu(outputs)``: a helper named for what it does
    return isinstance(func, ast.Name) and (func.id in _DETACHING_FUNCTIONS or tokens(func.id)[:1] == ["detach"])


def _read_past_graph(expr: ast.AST) -> bool:
    """A value read through ``.data`` or a detaching call: ``x.item()``,
    ``x.detach().cpu().numpy()``, ``loss.data[0]``."""
    if isinstance(expr, ast.Call):
        func = expr.func
        return isinstance(func, ast.Attribute) and (func.attr in _DETACHING_METHODS or _read_detached(func.value))
    return isinstance(expr, (ast.Subscript, ast.Attribute)) and _read_detached(expr)


def _a_count(expr: ast.AST) -> bool:
    """``len(xs)``, ``x.size(0)``, ``x.numel()``, ``x.shape[0]``: a number of elements."""
    if isinstance(expr, ast.Subscript):
        return isinstance(expr.value, ast.Attribute) and expr.value.attr == "shape"
    if not isinstance(expr, ast.Call):
        return False
    func = expr.func
    if isinstance(func, ast.Name):
        return func.id == "len"
    return isinstance(func, ast.Attribute) and func.attr in ("size", "numel") and len(expr.args) <= 1


#: Words of a name that holds a number of things.
_COUNT_WORDS = frozenset({
    "num", "count", "len", "length", "size", "steps", "batches", "iters", "iterations", "epochs", "samples",
})


def _read_detached(expr: ast.AST) -> bool:
    """Does the chain of reads ``expr`` ends (``a.data[0]``, ``a.detach().cpu``) pass through ``.data`` or a
    detaching call?"""
    while True:
        if isinstance(expr, ast.Attribute):
            if expr.attr == "data":
                return True
            expr = expr.value
        elif isinstance(expr, ast.Subscript):
            expr = expr.value
        elif isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute):
            if expr.func.attr in _DETACHING_METHODS:
                return True
            expr = expr.func.value
        else:
            return False


def graph_sources(ctx: "Context", expr: ast.AST, depth: int = 0) -> Optional[Set[str]]:
    """Does ``expr`` carry a loss's autograd graph?  None: no (or unknown).
    Otherwise the set of plain names it is built from; an empty set means it
    surely does (a loss call, or a name bound to one with grad enabled), and a
    non-empty set means it does if one of those names is a ``.backward()``
    target of the function (decided later)."""
    if depth > 4:
        return None
    if isinstance(expr, ast.Call):
        func = expr.func
        if isinstance(func, ast.Attribute) and func.attr in _DETACHING_METHODS:
            return None
        if isinstance(func, ast.Name) and func.id in _DETACHING_FUNCTIONS:
            return None
        if is_loss_call(ctx, expr):
            return None if _inputs_made_without_grad(ctx, expr) else set()
        if isinstance(func, ast.Attribute) and func.attr in _GRAPH_KEEPING_METHODS:
            return graph_sources(ctx, func.value, depth + 1)
        return None
    if isinstance(expr, ast.Attribute):
        return None  # ``loss.data`` and anything else unknown
    if isinstance(expr, ast.BinOp):
        found: Optional[Set[str]] = None
        for side in (expr.left, expr.right):
            if _a_count(side) or _counted(ctx, side):
                continue  # ``loss.detach() / grad_accum_steps``: a number of things holds no graph
            sub = graph_sources(ctx, side, depth + 1)
            if sub is not None:
                found = (found or set()) | sub
                if not sub:
                    return set()
        return found
    if isinstance(expr, ast.UnaryOp):
        return graph_sources(ctx, expr.operand, depth + 1)
    if isinstance(expr, ast.Name):
        binding = ctx.lookup(expr.id)
        if binding is None or binding.state in (Grad.DISABLED, Grad.UNKNOWN):
            return None
        if binding.value is not None:
            if detached_value(binding.value):
                return None  # loss = loss.item()
            inner = graph_sources(ctx, binding.value, depth + 1)
            if inner is not None and not inner:
                return set()
            if inner is None and binding.value.__class__ is ast.Call and is_loss_call(ctx, binding.value):
                return None  # the loss of inputs made with grad off: whatever ``.backward()`` spent before
        return {expr.id}
    return None


def _inputs_made_without_grad(ctx: "Context", call: ast.Call) -> bool:
    """Is every input of the loss call a name last bound, with grad off, to
    a value computed there (``with torch.no_grad(): y_val = model(x)``,
    then ``criterion(y_val, y_test)``)?  No input requires grad, so the loss
    has no graph.  A parameter read under ``no_grad`` (``w =
    model.weight``) still requires grad: only a computed value counts."""
    inputs = [*call.args, *(kw.value for kw in call.keywords)]
    if not inputs:
        return False
    for arg in inputs:
        if arg.__class__ is not ast.Name:
            return False
        binding = ctx.lookup(arg.id)  # type: ignore[attr-defined]
        if binding is None or binding.state is not Grad.DISABLED or binding.kind is not Kind.OTHER \
                or isinstance(binding.value, (ast.Name, ast.Attribute, ast.Subscript)):
            return False
    return True


def _counted(ctx: "Context", expr: ast.AST) -> bool:
    """A name that says it counts things (``grad_accum_steps``,
    ``num_batches``), bound to a constant or to arithmetic, or a parameter:
    a number."""
    if not isinstance(expr, ast.Name):
        return False
    words = tokens(expr.id)
    if _COUNT_WORDS.isdisjoint(words) or not _LOSS_WORDS.isdisjoint(words):
        return False
    binding = ctx.lookup(expr.id)
    return binding is None or binding.value is None or isinstance(binding.value, (ast.Constant, ast.BinOp))


def returns_number(
    fn: ast.AST, attributes: Optional[Callable[[], Dict[str, list]]] = None,
    calls: Optional[Callable[[str], bool]] = None,
) -> bool:
    """Does the function ``fn`` return only Python numbers (``return total /
    n`` where ``total`` starts at ``0`` and adds ``loss.item()``), or items of
    a tensor made from numbers that only numbers are added to (``total =
    torch.Tensor([0])``, ``total += loss.item()``, ``return total[0]``)?
    With ``attributes`` (see ``attribute_values``: of the class of the
    method ``fn``), ``return self.loss`` counts when every value that class,
    the module's classes it derives from and those deriving from it give
    ``self.loss`` is a number (``self.loss = 1``, ``self.loss =
    math.sqrt(fake)``), and so does ``return self.sums[i]`` of a list of
    numbers.  With ``calls`` (does the function of the module
    of that name return only numbers, or ``None``?), a call of one counts as
    a number, and so does ``return None`` beside a number returned
    (``_scalar_to_float(x)``: ``float(x.item())``, or ``None`` for a tensor
    of several items)."""
    returns = [n.value for n in own_nodes(fn) if isinstance(n, ast.Return)]
    if calls is not None:
        valued = [r for r in returns if r is not None and not is_const(r, None)]
        returns = valued or returns
    if not returns or any(r is None for r in returns):
        return False
    stores = _local_values(fn)
    if attributes is not None and any(_self_attribute(n) for r in returns for n in ast.walk(r)):
        stores.update(attributes())
    return all(_number_expr(r, stores, frozenset(), calls) for r in returns)


def number_in(fn: ast.AST, expr: ast.AST) -> bool:
    """Is ``expr``, of the function ``fn``, a Python number or a value read
    past its graph, given every value ``fn`` gives each local name
    (``sum(losses) / len(losses)`` of ``losses.append(loss.item())``)?"""
    return _number_expr(expr, _local_values(fn), frozenset())


def _local_values(fn: ast.AST) -> dict:
    """Every value the function ``fn`` gives each local name (None for one
    it unpacks into or a loop binds), and under ``("items", name)`` each
    one it appends to the list of that name."""
    stores: dict = {}
    for node in own_nodes(fn):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    stores.setdefault(target.id, []).append(node.value)
                elif (
                    isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple)
                    and len(target.elts) == len(node.value.elts)
                    and all(isinstance(e, ast.Name) for e in target.elts)
                ):
                    # ``total_loss, total_tok = 0.0, 0``: each name its own value
                    for element, value in zip(target.elts, node.value.elts):
                        stores.setdefault(element.id, []).append(value)  # type: ignore[attr-defined]
                else:
                    for inner in ast.walk(target):
                        if isinstance(inner, ast.Name):
                            stores.setdefault(inner.id, []).append(None)  # unpacked: unknown
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)) and isinstance(node.target, ast.Name):
            if isinstance(node, ast.AugAssign) and isinstance(node.op, ast.Div) and isinstance(
                node.value, ast.Attribute
            ):
                continue  # ``total /= self.test.nnz``: an average over a count keeps what the total is
            stores.setdefault(node.target.id, []).append(node.value)
        elif (
            isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "append"
            and isinstance(node.func.value, ast.Name) and len(node.args) == 1
        ):
            stores.setdefault(("items", node.func.value.id), []).append(node.args[0])
        elif isinstance(node, (ast.For, ast.AsyncFor, ast.With, ast.NamedExpr)):
            targets = [node.target] if isinstance(node, (ast.For, ast.AsyncFor, ast.NamedExpr)) else [
                item.optional_vars for item in node.items if item.optional_vars is not None]
            for target in targets:
                for inner in ast.walk(target):
                    if isinstance(inner, ast.Name):
                        stores.setdefault(inner.id, []).append(None)
    return stores


def attribute_values(tree: ast.Module, klass: str) -> Dict[str, list]:
    """Every value the methods of the top-level class ``klass`` of ``tree``
    give an attribute of ``self``, by ``self.name`` (None for one they
    unpack into), with those of the module's classes it derives from and
    of those that derive from it (an instance of either may run them)."""
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    stores: Dict[str, list] = {}
    for node in (n for name in sorted(class_family(classes, klass) & classes.keys()) for n in ast.walk(classes[name])):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if _self_attribute(target):
                    stores.setdefault(f"self.{target.attr}", []).append(node.value)  # type: ignore[attr-defined]
                else:
                    for inner in ast.walk(target):
                        if _self_attribute(inner) and inner.ctx.__class__ is ast.Store:  # type: ignore[attr-defined]
                            stores.setdefault(f"self.{inner.attr}", []).append(None)  # type: ignore[attr-defined]
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)) and _self_attribute(node.target):
            stores.setdefault(f"self.{node.target.attr}", []).append(node.value)  # type: ignore[attr-defined]
    return stores


def class_family(classes: Dict[str, ast.ClassDef], klass: str) -> Set[str]:
    """``klass`` with the classes of ``classes`` (a module's top-level
    classes by name) it derives from and those that derive from it: an
    instance of any of them may run the methods of the others on ``self``."""
    bases = {name: {dotted(b) for b in node.bases} & classes.keys() for name, node in classes.items()}
    family = {klass}
    for grow in (lambda name: bases.get(name, set()), lambda name: {c for c, bs in bases.items() if name in bs}):
        todo = [klass]
        while todo:
            for found in grow(todo.pop()) - family:
                family.add(found)
                todo.append(found)
    return family


def _self_attribute(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self"


#: Tensors made from literal numbers (``torch.Tensor([0])``): no graph, and
#: adding ``.item()`` numbers to one makes none
_NUMBER_TENSORS = frozenset({"torch.Tensor", "torch.FloatTensor", "torch.DoubleTensor", "torch.tensor", "torch.zeros"})


def _literal_numbers(expr: ast.AST) -> bool:
    if isinstance(expr, (ast.List, ast.Tuple)):
        return all(_literal_numbers(e) for e in expr.elts)
    return _number(expr)


def own_nodes(fn: ast.AST):
    """The nodes of ``fn``'s own code (not inside a nested function, class or
    lambda), depth first, the last child first."""
    todo = child_nodes(fn)
    while todo:
        node = todo.pop()
        yield node
        if node.__class__ not in _OWN_SCOPES:
            todo.extend(child_nodes(node))


_OWN_SCOPES = frozenset({ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda})


#: NumPy reductions, which give a NumPy number, never a tensor that holds a graph.
_NUMPY_REDUCTIONS = frozenset(
    f"{np}.{name}" for np in ("np", "numpy")
    for name in ("mean", "average", "median", "sum", "std", "var", "min", "max", "nanmean")
)


def number_expr(expr: Optional[ast.AST], names: FrozenSet[str] = frozenset()) -> bool:
    """Is ``expr`` a Python number by its own form (``0``, ``x.item()``,
    ``len(loader.dataset)``, ``a / b`` of such), taking ``names`` for
    numbers (``loss`` in ``loss += l.item()``)?"""
    return _number_expr(expr, {}, names)


def _number_expr(
    expr: Optional[ast.AST], stores: dict, seen: frozenset, calls: Optional[Callable[[str], bool]] = None,
) -> bool:
    """Is ``expr`` a Python number, given every value each local name is
    assigned (``seen``: the names being decided, taken as numbers; ``calls``:
    see ``returns_number``)?"""
    if expr is None or len(seen) > 6:
        return False
    if isinstance(expr, ast.Constant):
        return _number(expr)
    if _a_count(expr):
        return True  # ``target.size(0)``, ``len(batch)``, ``x.shape[0]``
    if isinstance(expr, ast.List):
        # ``[0.0, 0]``: a list of numbers carries no graph (not ``[]``, which appends may fill)
        return bool(expr.elts) and all(_number_expr(e, stores, seen, calls) for e in expr.elts)
    if isinstance(expr, ast.ListComp):
        return _number_expr(expr.elt, _comprehension_values(expr, stores), seen, calls)
    if isinstance(expr, ast.BinOp):
        if not _number_expr(expr.left, stores, seen, calls):
            return False
        if isinstance(expr.op, ast.Mult) and isinstance(expr.left, ast.List):
            return True  # ``[0.0] * n``
        right = expr.right
        # ``loss / num_batches`` with ``num_batches = X.shape[0] // batch_size``, ``batch_size`` a parameter
        return _number_expr(right, stores, seen, calls) or isinstance(expr.op, (ast.Div, ast.FloorDiv)) and (
            isinstance(right, ast.Name) and right.id not in stores
        )
    if isinstance(expr, ast.UnaryOp):
        return _number_expr(expr.operand, stores, seen, calls)
    if isinstance(expr, ast.IfExp):  # ``total / n if n > 0 else float("nan")``
        return _number_expr(expr.body, stores, seen, calls) and _number_expr(expr.orelse, stores, seen, calls)
    if _read_past_graph(expr):
        return True  # ``criterion(out, y).data[0]``, ``loss.detach().cpu().numpy()``: no graph
    if isinstance(expr, ast.Subscript):
        return _number_expr(expr.value, stores, seen, calls)  # ``total[0]`` of a tensor of numbers
    if isinstance(expr, ast.Call):
        func = expr.func
        if dotted(func) in _NUMBER_TENSORS:
            return not expr.keywords and all(_literal_numbers(a) for a in expr.args)
        if isinstance(func, ast.Attribute):
            # ``np.mean(losses)``: a NumPy number (of tensors that require grad it raises instead)
            written = dotted(func) or ""
            return written in _NUMPY_REDUCTIONS or written.startswith("math.")
        if isinstance(func, ast.Name) and func.id == "sum" and len(expr.args) == 1:
            return _items_numbers(expr.args[0], stores, seen, calls)
        return isinstance(func, ast.Name) and (
            func.id in ("float", "int", "len", "round") or calls is not None and calls(func.id)
        )
    if isinstance(expr, ast.Name):
        key = expr.id
    elif _self_attribute(expr):
        key = f"self.{expr.attr}"  # type: ignore[attr-defined]
    else:
        return False
    if key in seen:
        return True  # ``total = total + x.item()``: as the name's other values say
    values = stores.get(key)
    return bool(values) and all(_number_expr(v, stores, seen | {key}, calls) for v in values)


def _comprehension_values(comp: ast.ListComp, stores: dict) -> dict:
    """``stores`` with the names the comprehension's loops bind: each given
    what it iterates (a name read as a number stands for the items of a list
    of numbers), one by one over ``zip(a, b)``; unknown otherwise."""
    inner = dict(stores)
    for generator in comp.generators:
        target, source = generator.target, generator.iter
        if isinstance(target, ast.Name):
            inner[target.id] = [source]
        elif (
            isinstance(target, ast.Tuple) and isinstance(source, ast.Call) and dotted(source.func) == "zip"
            and len(source.args) == len(target.elts) and not source.keywords
        ):
            for element, value in zip(target.elts, source.args):
                for name in ast.walk(element):
                    if isinstance(name, ast.Name):
                        inner[name.id] = [value if name is element else None]
        else:
            for name in ast.walk(target):
                if isinstance(name, ast.Name):
                    inner[name.id] = [None]
    return inner


def _items_numbers(
    expr: ast.AST, stores: dict, seen: frozenset, calls: Optional[Callable[[str], bool]],
) -> bool:
    """Is ``expr`` a local list made empty and given only numbers by
    ``append`` (``losses.append(loss.detach().cpu().numpy())``, summed)?"""
    if not isinstance(expr, ast.Name):
        return False
    made, items = stores.get(expr.id), stores.get(("items", expr.id))
    return bool(made and items) and all(isinstance(v, ast.List) and not v.elts for v in made) and all(
        _number_expr(v, stores, seen, calls) for v in items
    )


def backprop_calls(fn: ast.AST) -> Set[str]:
    """The calls (as written: ``self.validation_loss``) whose results flow,
    in the function ``fn``, into a value it runs ``.backward()`` on: through
    the names it binds (``loss_v = self.validation_loss(x); loss_v.backward()``)
    or directly (``self.loss(x).backward()``)."""
    deps: Dict[str, list] = {}
    targets: list = []
    for node in own_nodes(fn):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                for name in _bound_by(target):
                    deps.setdefault(name, []).append(node.value)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)) and isinstance(node.target, ast.Name):
            if node.value is not None:
                deps.setdefault(node.target.id, []).append(node.value)
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            for name in ast.walk(node.target):
                if isinstance(name, ast.Name):
                    deps.setdefault(name.id, []).append(node.iter)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "backward":
            targets.append(node.func.value)
    found: Set[str] = set()
    seen: Set[str] = set()
    while targets:
        expr = targets.pop()
        for inner in _value_nodes(expr):
            if isinstance(inner, ast.Call):
                written = dotted(inner.func)
                if written is not None:
                    found.add(written)
            elif isinstance(inner, ast.Name) and inner.id not in seen:
                seen.add(inner.id)
                targets.extend(deps.get(inner.id, ()))
            elif isinstance(inner, ast.Attribute):
                key = dotted(inner)
                if key is not None and key not in seen:
                    seen.add(key)
                    targets.extend(deps.get(key, ()))  # ``out.loss = ...``, then ``out.loss.backward()``
    return found


def _value_nodes(expr: ast.AST) -> Iterator[ast.AST]:
    """The nodes of ``expr`` a value can flow from: an index picks an item
    (``dataset[batch_idx]``), its graph is the container's, so the parts
    inside a subscript's brackets are left out."""
    todo = [expr]
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, ast.Subscript):
            todo.append(node.value)
        else:
            todo.extend(ast.iter_child_nodes(node))


def _bound_by(target: ast.expr) -> List[str]:
    """What an assignment to ``target`` binds, for ``backprop_calls``: names,
    a container's name for its item (``losses["total"] = ...``, or
    ``model.info["loss"] = ...`` binding ``model.info``), and an
    attribute by its dotted name (``model.val_loss = ...`` binds
    ``model.val_loss``, not ``model``: the model does not come from it)."""
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [name for elt in target.elts for name in _bound_by(elt)]
    if isinstance(target, ast.Starred):
        return _bound_by(target.value)
    if isinstance(target, ast.Subscript):
        key = dotted(subscripted_root(target))  # ``losses``, ``model.train_info``
        return [key] if key is not None else []
    if isinstance(target, ast.Attribute):
        key = dotted(target)
        return [key] if key is not None else []
    return []


#: Tensor methods whose result never requires grad: indices and integers.
_INDEX_METHODS = frozenset({"argsort", "argmax", "argmin", "long", "int", "bool", "nonzero"})
#: Every name a value without its graph is made with (``_graph_free``): a
#: module whose words have none of them has no ``forward_detaches`` class.
#: torch functions that make a tensor from data (``torch.as_tensor(boxes)``):
#: it requires no grad unless asked to.
_MADE_FROM_DATA = frozenset({"as_tensor", "from_numpy", "tensor"})
DETACHING_NAMES = frozenset(
    {"data", *_DETACHING_METHODS, *_DETACHING_FUNCTIONS, *_INDEX_METHODS, *_MADE_FROM_DATA}
)


def forward_detaches(node: ast.ClassDef) -> bool:
    """Does the class's ``forward`` return, on some path, a value that holds
    no graph: one read through ``.data`` or a detaching call (``return
    outputs.data``; ``outputs = outputs.data.numpy()`` ... ``return
    outputs``), integer indices (``return scores.argsort()``), or a tensor
    made from data (``torch.as_tensor(boxes)``, and items of it)?  The first
    item of a returned tuple is the output; of a returned dict, any item
    (``dict(maps=maps, boxes=boxes)``).  A returned call of another method
    of the class (``return self.get_error(x)``) is followed into that
    method, two calls deep, and a method decorated with ``@torch.no_grad()``
    (or ``inference_mode``) returns no graph at all.  A class that defines
    ``__call__`` is asked of that instead (``def __call__(self, ids): return
    self.encode(ids)``).  Then what a call of the model gives need not
    require grad."""
    forward = method_of(node, "__call__") or method_of(node, "forward")
    return forward is not None and _returns_graph_free(node, forward, 2)


def _grad_off_method(method: ast.AST) -> bool:
    """``@torch.no_grad()``, ``@torch.inference_mode()`` on ``method``."""
    for decorator in getattr(method, "decorator_list", ()):
        func = decorator.func if isinstance(decorator, ast.Call) else decorator
        if last_name(func) in ("no_grad", "inference_mode"):
            return True
    return False


def _returns_graph_free(node: ast.ClassDef, method: ast.AST, depth: int) -> bool:
    """Does ``method`` of ``node`` return, on some path, a value without its graph?"""
    if _grad_off_method(method):
        return True
    assigns = [inner for inner in own_nodes(method) if isinstance(inner, ast.Assign)]
    free: Set[str] = set()
    dicts: Dict[str, List[ast.expr]] = {}
    changed = True
    while changed:  # ``rois = torch.as_tensor(...)`` then ``mapping = rois[:, 0]``, in any order
        changed = False
        for inner in assigns:
            if _graph_free(inner.value) or _made_from_data(inner.value) or _item_of(inner.value, free) or (
                _torch_made(inner.value, _FACTORIES) and all(
                    isinstance(t, ast.Name) and _filled_with_numbers(method, t.id) for t in inner.targets)
            ):
                for target in inner.targets:
                    if isinstance(target, ast.Name) and target.id not in free:
                        free.add(target.id)
                        changed = True
    for inner in assigns:
        items = _dict_values(inner.value)
        if items:
            for target in inner.targets:
                if isinstance(target, ast.Name):
                    dicts.setdefault(target.id, []).extend(items)
    for inner in own_nodes(method):
        if isinstance(inner, ast.Return) and inner.value is not None:
            value = inner.value.elts[0] if isinstance(inner.value, ast.Tuple) and inner.value.elts else inner.value
            values = _dict_values(value) or (dicts.get(value.id, []) if isinstance(value, ast.Name) else [])
            for one in values or [value]:
                while isinstance(one, ast.Call) and isinstance(one.func, ast.Attribute) \
                        and one.func.attr in _SHAPE_METHODS and isinstance(one.func.value, ast.Name) \
                        and one.func.value.id in free:
                    one = one.func.value  # ``return bonuses.to(device)`` of a free ``bonuses``
                if _graph_free(one) or _made_from_data(one) or (isinstance(one, ast.Name) and one.id in free):
                    return True
                callee = _own_method_called(node, one) if depth else None
                if callee is not None and callee is not method and _returns_graph_free(node, callee, depth - 1):
                    return True
    return False


def _filled_with_numbers(method: ast.AST, name: str) -> bool:
    """Does ``method`` write into ``name`` only numbers (``bonuses[i] += 1.0 /
    np.sqrt(count)``): no item assigned anything else, no in-place method
    called on it, no attribute of it set?"""
    for inner in own_nodes(method):
        if isinstance(inner, (ast.Assign, ast.AugAssign)):
            targets = inner.targets if isinstance(inner, ast.Assign) else [inner.target]
            for target in targets:
                if isinstance(target, (ast.Subscript, ast.Attribute)) and root_name(target) == name \
                        and not _numbers_only(inner.value):
                    return False
        elif isinstance(inner, ast.Call) and isinstance(inner.func, ast.Attribute) \
                and inner.func.attr.endswith("_") and not inner.func.attr.startswith("_") \
                and root_name(inner.func.value) == name:
            return False  # ``out.copy_(x)``
    return True


def root_name(expr: ast.expr) -> Optional[str]:
    """The name an item or attribute chain starts from (``out`` of ``out[i].data``), if it is one."""
    while isinstance(expr, (ast.Subscript, ast.Attribute)):
        expr = expr.value
    return expr.id if isinstance(expr, ast.Name) else None


def _numbers_only(expr: ast.expr) -> bool:
    """A number, arithmetic of numbers, or a call of ``math``, NumPy or a
    number builtin: no tensor of the model's."""
    if isinstance(expr, ast.Constant):
        return _number(expr)
    if isinstance(expr, ast.UnaryOp):
        return _numbers_only(expr.operand)
    if isinstance(expr, ast.BinOp):
        return _numbers_only(expr.left) and _numbers_only(expr.right)
    if isinstance(expr, ast.Call):
        root = root_name(expr.func)
        return root in ("math", "np", "numpy") or isinstance(expr.func, ast.Name) and expr.func.id in (
            "float", "int", "len", "abs")
    return False


def _own_method_called(node: ast.ClassDef, expr: ast.expr) -> Optional[ast.FunctionDef]:
    """The method of ``node`` that ``expr`` calls on ``self`` (``self.get_error(x)``), if any."""
    if not (isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute)):
        return None
    owner = expr.func.value
    if not (isinstance(owner, ast.Name) and owner.id == "self"):
        return None
    return method_of(node, expr.func.attr)


def _made_from_data(expr: ast.expr) -> bool:
    """``torch.as_tensor(x)``, ``torch.from_numpy(x)``, ``torch.tensor(x)``
    without ``requires_grad=``; or a typed tensor of integers or booleans
    made from data under any name of torch (``t.LongTensor(tags)``, which
    can never require grad)."""
    if not (isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute)):
        return False
    if expr.func.attr in _INTEGER_TENSORS:
        return True
    return _torch_made(expr, _MADE_FROM_DATA)


def _torch_made(expr: ast.expr, names: FrozenSet[str]) -> bool:
    """``torch.<name>(...)`` for one of ``names``, without ``requires_grad=``."""
    return (
        isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr in names
        and isinstance(expr.func.value, ast.Name) and expr.func.value.id == "torch"
        and not any(kw.arg == "requires_grad" for kw in expr.keywords)
    )


#: Tensor types that hold integers or booleans: no tensor of them requires grad.
_INTEGER_TENSORS = frozenset({"LongTensor", "IntTensor", "ShortTensor", "ByteTensor", "CharTensor", "BoolTensor"})


def _item_of(expr: ast.expr, names: Set[str]) -> bool:
    """``rois[:, 0]`` where ``rois`` is one of ``names``."""
    return isinstance(expr, ast.Subscript) and isinstance(expr.value, ast.Name) and expr.value.id in names


def _dict_values(expr: ast.expr) -> List[ast.expr]:
    """The values of ``{"a": x}`` or ``dict(a=x)``."""
    if isinstance(expr, ast.Dict):
        return list(expr.values)
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and expr.func.id == "dict":
        return [kw.value for kw in expr.keywords if kw.arg is not None]
    return []


def adapting_functions(tree: ast.AST) -> FrozenSet[str]:
    """The module's top-level functions decorated with
    ``torch.enable_grad`` (``@torch.enable_grad()``): they compute gradients
    wherever they are called, as test-time adaptation does (``loss.backward()``,
    ``optimizer.step()`` inside a model's forward)."""
    return frozenset(
        stmt.name for stmt in getattr(tree, "body", ())
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) and _enables_grad(stmt)
    )


def _enables_grad(fn: ast.AST) -> bool:
    return any(
        (dotted(d.func if isinstance(d, ast.Call) else d) or "").rpartition(".")[2] == "enable_grad"
        for d in getattr(fn, "decorator_list", ())
    )


def asks_autograd(node: ast.ClassDef, adapting: FrozenSet[str] = frozenset()) -> bool:
    """Is the class a model (it defines ``forward``) one of whose methods
    asks autograd for gradients (``torch.autograd.grad(...)``: an inner
    loop of adaptation, surface normals of an implicit field), or whose
    forward needs grad to run at all: it makes a tensor with
    ``requires_grad=True`` and steps an optimizer on a value (an energy
    model descending on its own outputs: ``opt.step(energy.sum(),
    params=[y])``), registers a gradient hook on a tensor at every run (an
    explainability model saving attention gradients: ``register_hook``
    raises on a tensor that does not require grad), makes a tensor require
    grad and calls ``.backward()`` (an attack wrapper stepping its input
    along ``x.grad``), or calls a function of ``adapting`` or a method of
    its class decorated with ``torch.enable_grad`` (test-time adaptation)?
    Running it then needs grad, evaluation included.  One walk of each
    method."""
    methods = [s for s in node.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))]
    if not any(m.name == "forward" for m in methods):
        return False
    for method in methods:
        forward = method.name == "forward"
        leaf = step = asks = backward = False
        for inner in own_nodes(method):
            if isinstance(inner, ast.Call):
                func = inner.func
                if (dotted(func) or "").endswith("autograd.grad"):
                    return True
                if not forward:
                    continue
                if isinstance(func, ast.Attribute):
                    attr = func.attr
                    step = step or (attr == "step" and bool(inner.args))
                    backward = backward or attr == "backward"
                    asks = asks or (attr == "requires_grad_" and not (
                        inner.args and isinstance(inner.args[0], ast.Constant) and inner.args[0].value is False
                    ))
                    if isinstance(func.value, ast.Name) and func.value.id == "self":
                        called = method_of(node, attr)
                        if called is not None and _enables_grad(called):
                            return True  # ``self.forward_and_adapt(x)`` under ``@torch.enable_grad()``
                elif isinstance(func, ast.Name) and func.id in adapting:
                    return True  # ``forward_and_adapt(x, self.model, self.optimizer)``
                leaf = leaf or any(
                    k.arg == "requires_grad" and isinstance(k.value, ast.Constant) and k.value.value is True
                    for k in inner.keywords
                )
            elif forward and isinstance(inner, ast.Assign) and isinstance(inner.value, ast.Constant) \
                    and inner.value.value is True:
                asks = asks or any(isinstance(t, ast.Attribute) and t.attr == "requires_grad" for t in inner.targets)
        if forward and ((leaf and step) or (asks and backward) or hooks_every_run(method)):
            return True
    return False


def hooks_every_run(forward: ast.AST) -> bool:
    """Does a ``forward`` register a gradient hook on a tensor as a statement
    of its own body, not under an ``if`` or in a loop (``attn.register_hook(
    self.save_attn_gradients)``)?  Every run then needs grad: the hook
    raises on a tensor that does not require it."""
    return any(
        isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)
        and isinstance(stmt.value.func, ast.Attribute) and stmt.value.func.attr == "register_hook"
        for stmt in getattr(forward, "body", ())
    )


def _graph_free(expr: ast.expr) -> bool:
    if isinstance(expr, ast.Constant):
        return False  # ``return 0`` on an early path says nothing of the output
    if isinstance(expr, ast.Call) and last_name(expr.func) in _INDEX_METHODS:
        return isinstance(expr.func, ast.Attribute)  # ``scores.argsort()``, ``torch.argmax(scores)``
    return detached_value(expr)


# --- values that cannot require grad ------------------------------------------

_FACTORIES = frozenset(
    {
        "ones", "zeros", "randn", "rand", "tensor", "arange", "full", "empty", "eye", "linspace", "logspace",
        "randint", "randperm", "ones_like", "zeros_like", "randn_like", "rand_like", "full_like", "empty_like",
        "as_tensor", "from_numpy",
    }
)
#: torch functions whose result requires grad exactly when an input does.
_TORCH_MATH = frozenset(
    {
        "dot", "matmul", "mm", "bmm", "mv", "mul", "add", "sub", "div", "pow", "exp", "log", "sum", "mean", "sin",
        "cos", "tanh", "sigmoid", "relu", "cat", "stack", "abs", "sqrt", "norm", "square", "outer", "max", "min",
        "prod", "neg", "clamp", "where",
    }
)
#: Tensor methods of the same kind; their arguments are numbers or tensors.
_TENSOR_MATH = frozenset(
    {
        "sum", "mean", "pow", "exp", "log", "abs", "sqrt", "square", "norm", "t", "neg", "clamp", "max", "min",
        "prod", "mul", "add", "sub", "div", "matmul", "mm", "dot", "sin", "cos", "tanh", "sigmoid", "relu",
    }
)
#: Methods whose arguments are shapes, devices or dtypes, never tensors.
_SHAPE_METHODS = frozenset({"view", "reshape", "to", "cuda", "cpu", "float", "double", "half", "type", "clone",
                            "flatten", "squeeze", "unsqueeze", "contiguous", "permute", "transpose"})


def _number(expr: ast.AST) -> bool:
    return isinstance(expr, ast.Constant) and isinstance(expr.value, (int, float)) and not isinstance(expr.value, bool)


def _changed_in_place(ctx: "Context") -> Set[str]:
    """Names the running function (or the module) changes in place: an item
    or attribute assigned (``out[i] = ...``, ``out.requires_grad = True``),
    or an in-place method called (``out.copy_(x)``)."""
    function = ctx.grad.function
    root = function.node if function is not None else ctx.tree
    key = ("changed-in-place", id(root))
    found = ctx.flow.cache.get(key)
    if found is None:
        found = set()
        for node in ast.walk(root):
            if isinstance(node, (ast.Subscript, ast.Attribute)) and not isinstance(node.ctx, ast.Load):
                target = node.value
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                if not node.func.attr.endswith("_") or node.func.attr.startswith("_"):
                    continue
                target = node.func.value
            else:
                continue
            while isinstance(target, (ast.Subscript, ast.Attribute)):
                target = target.value
            if isinstance(target, ast.Name):
                found.add(target.id)
        ctx.flow.cache[key] = found
    return found


def _stores(ctx: "Context") -> Dict[str, int]:
    """How many times the running function (or the module) binds each name."""
    function = ctx.grad.function
    root = function.node if function is not None else ctx.tree
    key = ("stores", id(root))
    found = ctx.flow.cache.get(key)
    if found is None:
        found = {}
        for node in ast.walk(root):
            if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
                found[node.id] = found.get(node.id, 0) + 1
        ctx.flow.cache[key] = found
    return found


def python_number(ctx: "Context", expr: ast.AST, depth: int = 0) -> bool:
    """Is ``expr`` a plain Python number: a numeric constant, arithmetic of
    such, or a name the running function last bound to one (``loss = 0``)?
    It has no ``.backward()`` at all (``AttributeError``), and no grad to
    lack."""
    if depth > 8:
        return False
    if _number(expr):
        return True
    if isinstance(expr, ast.UnaryOp):
        return python_number(ctx, expr.operand, depth + 1)
    if isinstance(expr, ast.BinOp):
        return python_number(ctx, expr.left, depth + 1) and python_number(ctx, expr.right, depth + 1)
    if isinstance(expr, ast.Name):
        binding = ctx.grad.frame.names.get(expr.id)
        return isinstance(binding, Binding) and binding.value is not None and python_number(
            ctx, binding.value, depth + 1
        )
    return False


def cannot_require_grad(ctx: "Context", expr: ast.AST, depth: int = 0) -> bool:
    """Proof, from this function's own code, that ``expr`` is a tensor that
    does not require grad: detached, or computed only from factory-made
    tensors without ``requires_grad=True``.  Anything unknown: False."""
    if depth > 8:
        return False
    if _number(expr):
        return True
    if isinstance(expr, ast.UnaryOp):
        return cannot_require_grad(ctx, expr.operand, depth + 1)
    if isinstance(expr, ast.BinOp):
        return cannot_require_grad(ctx, expr.left, depth + 1) and cannot_require_grad(ctx, expr.right, depth + 1)
    if isinstance(expr, ast.Name):
        binding = ctx.grad.frame.names.get(expr.id)
        if not isinstance(binding, Binding) or binding.kind is not Kind.OTHER or binding.value is None:
            return False
        # the value first: it settles most names at once, without walking the function
        if not cannot_require_grad(ctx, binding.value, depth + 1):
            return False
        if expr.id in _changed_in_place(ctx):
            return False  # ``out = torch.zeros(n); out[i] = f(x)``: an item may bring a graph in
        # ``if ctc: loss = ctc(...) else: loss = 0``: one binding proves nothing
        return _stores(ctx).get(expr.id, 0) <= 1
    if not isinstance(expr, ast.Call):
        return False
    func = expr.func
    if isinstance(func, ast.Attribute) and func.attr == "detach":
        return True
    if keyword(expr, "requires_grad") is not None:
        return False
    positional = [value for name, value, _ in call_args(expr) if name is None]
    qual = ctx.imports.resolve(func) or ""
    owner, _, name = qual.rpartition(".")
    if owner == "torch":
        if name in _FACTORIES:
            return True
        if name in _TORCH_MATH:
            return all(cannot_require_grad(ctx, a, depth + 1) for a in positional)
        return False
    if not isinstance(func, ast.Attribute):
        return False
    method = func.attr
    if method in _SHAPE_METHODS:
        return cannot_require_grad(ctx, func.value, depth + 1)
    if method in _TENSOR_MATH:
        return cannot_require_grad(ctx, func.value, depth + 1) and all(
            cannot_require_grad(ctx, a, depth + 1) for a in positional
        )
    return False


def parameters_loop(stmt: ast.AST) -> Optional[Tuple[ast.expr, ast.expr, str]]:
    """``for p in net.parameters():`` or ``for name, p in
    net.named_parameters():``: ``net``, the loop's parameter ``p`` (the last
    element of a tuple target) and the method's name."""
    if not isinstance(stmt, ast.For) or not isinstance(stmt.iter, ast.Call):
        return None
    func = stmt.iter.func
    if not isinstance(func, ast.Attribute) or func.attr not in ("parameters", "named_parameters"):
        return None
    target = stmt.target.elts[-1] if isinstance(stmt.target, ast.Tuple) and stmt.target.elts else stmt.target
    return func.value, target, func.attr


if TYPE_CHECKING:  # annotations only: making typing aliases at import costs time
    #: How a class freezes itself in ``__init__``: ``("", -1)`` always, or the
    #: parameter (name, position without ``self``) whose ``False`` default does.
    Freeze = Tuple[str, int]


#: The names a module that turns grad off itself must use somewhere
#: (``torch.no_grad``, ``torch.inference_mode``, ``torch.set_grad_enabled``).
GRAD_OFF_NAMES = ("no_grad", "inference_mode", "set_grad_enabled")


#: ``torch.nn`` layers that hold no parameter.
PARAMETER_FREE_LAYERS = frozenset({
    "ReLU", "ReLU6", "LeakyReLU", "ELU", "SELU", "GELU", "SiLU", "Mish", "Sigmoid", "Tanh", "Softmax", "LogSoftmax",
    "Softplus", "Hardtanh", "Identity", "Flatten", "Unflatten", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d",
    "MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d", "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "Upsample", "PixelShuffle",
    "CosineSimilarity", "PairwiseDistance", "Softmin", "Softmax2d", "LogSigmoid", "Softsign", "Hardsigmoid",
    "Hardswish", "CELU", "Threshold", "GLU", "PixelUnshuffle", "UpsamplingNearest2d", "UpsamplingBilinear2d",
})
_MODULE_BASES = frozenset({"nn.Module", "torch.nn.Module", "Module"})


def parameter_free(
    node: ast.ClassDef, classes: Dict[str, ast.ClassDef], depth: int = 0, stateless: bool = False,
) -> bool:
    """Is the class an ``nn.Module`` (a direct subclass) that holds no
    parameter: it makes no ``nn.Parameter``, builds no layer but the
    parameter-free ones of ``torch.nn`` (``ReLU``, ``Dropout``) and classes
    of ``classes`` (its module's) that hold none either, and keeps its state
    in buffers (``self.register_buffer("edges", edges)``)?  Its output
    requires grad only when its input does.  With ``stateless``, a class
    that keeps no buffer counts too when it stores nothing but settings and
    calls nothing it holds but its own methods (``DecodeSBP(input_size,
    threshold)``, whose ``forward`` runs torch functions on its input): a
    module handed in and stored (``self.net = net``) would be called.  One
    walk answers both."""
    if depth > 3 or not node.bases or not all(dotted(b) in _MODULE_BASES for b in node.bases):
        return False
    buffers = False
    settings_only = stateless  # until it stores or calls something that may be a model
    methods = {s.name for s in node.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))}
    for inner in ast.walk(node):
        if isinstance(inner, ast.Attribute) and inner.attr == "requires_grad":
            return False
        if settings_only and isinstance(inner, ast.Assign) and not _stores_a_setting(inner):
            settings_only = False  # ``self.model = model``: it may hold a model handed in
        if not isinstance(inner, ast.Call):
            continue
        if settings_only and _calls_what_it_holds(inner.func, methods):
            settings_only = False  # ``self.net(x)``, ``self.backbone.features(x)``
        name = last_name(inner.func)
        if name == "register_buffer":
            buffers = True
        elif name.startswith("Parameter") or name == "register_parameter":
            return False
        elif isinstance(inner.func, ast.Name) and name in classes:
            if classes[name] is node or not parameter_free(classes[name], classes, depth + 1):
                return False
            buffers = True  # ``self.impl = _EncodingImpl(bins)``: a module of buffers of its own
        elif name[:1].isupper() and name not in PARAMETER_FREE_LAYERS and not name.endswith(
            ("Error", "Exception", "Warning")
        ):
            return False
    return buffers or settings_only


def _stores_a_setting(node: ast.Assign) -> bool:
    """Does ``node``, unless it sets an attribute of ``self``, or else what it
    stores, hold a setting: numbers, names and their items and attributes,
    arithmetic, with no call but ``int``-like builtins and no name of a model
    or an optimizer (``self.input_size = input_size[-1]``, not ``self.model
    = model``)?"""
    if not any(isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self"
               for t in node.targets):
        return True
    for inner in ast.walk(node.value):
        if isinstance(inner, ast.Call):
            if not (isinstance(inner.func, ast.Name) and inner.func.id in _SETTING_CALLS):
                return False
        elif isinstance(inner, ast.Name) and _MODEL_WORDS.intersection(tokens(inner.id)):
            return False
        elif not isinstance(inner, _SETTING_NODES):
            return False
    return True


#: What a setting may be made of (see ``_stores_a_setting``).
_SETTING_NODES = (
    ast.Constant, ast.Name, ast.Load, ast.Subscript, ast.Slice, ast.Attribute, ast.BinOp, ast.UnaryOp, ast.operator,
    ast.unaryop, ast.Tuple, ast.List, ast.Compare, ast.cmpop, ast.BoolOp, ast.boolop, ast.IfExp,
)
#: Builtins that make settings.
_SETTING_CALLS = frozenset({"int", "float", "bool", "str", "len", "tuple", "list", "min", "max", "round", "abs"})
#: Words of names that hold a model or what trains one.
_MODEL_WORDS = frozenset({
    "model", "net", "network", "encoder", "decoder", "backbone", "head", "module", "layer", "layers", "classifier",
    "block", "generator", "discriminator", "policy", "critic", "actor", "optimizer", "teacher", "student", "extractor",
})


def _calls_what_it_holds(func: ast.expr, methods: Set[str]) -> bool:
    """Is ``func`` an attribute of ``self`` other than a method of the
    class, or something reached through one (``self.net``,
    ``self.backbone.features``)?"""
    while isinstance(func, ast.Attribute):
        if isinstance(func.value, ast.Name) and func.value.id == "self":
            return func.attr not in methods  # ``self.decode(x)``: its own method
        func = func.value
    return False


def context_effects(node: ast.AST, freezers: FrozenSet[str] = frozenset()) -> str:
    """What a context manager of the project's own (a class with
    ``__enter__``, or a ``@contextmanager`` function) may do to the code
    under it: ``"g"`` when it names ``no_grad``, ``inference_mode`` or
    ``set_grad_enabled`` (``with utils.eval_mode(net, no_grad=True):``), or
    switches off ``requires_grad`` of parameters, itself or through a
    function of ``freezers`` (``with ctx_noparamgrad(model):``: the model
    builds no graph under it), ``"e"`` when it calls ``.eval()`` or
    ``.train(...)`` (it may switch the models it is handed); ``""`` for
    anything else."""
    if isinstance(node, ast.ClassDef):
        if not any(isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)) and s.name in ("__enter__", "__aenter__")
                   for s in node.body):
            return ""
    elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        if not any(last_name(d.func if isinstance(d, ast.Call) else d) in ("contextmanager", "asynccontextmanager")
                   for d in node.decorator_list):
            return ""
    else:
        return ""
    grad = switch = False
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            grad = grad or n.id in GRAD_OFF_NAMES or n.id in freezers and isinstance(n.ctx, ast.Load)
        elif isinstance(n, ast.Attribute):
            grad = grad or n.attr in GRAD_OFF_NAMES
            switch = switch or n.attr in ("eval", "train")
    return ("g" if grad or _freezes(node) else "") + ("e" if switch else "")


def _freezes(node: ast.AST) -> bool:
    """Does ``node`` switch off ``requires_grad`` of something
    (``param.requires_grad = False``, ``p.requires_grad_(False)``)?"""
    for n in ast.walk(node):
        if isinstance(n, ast.Assign) and _is_false(n.value) and any(
            isinstance(t, ast.Attribute) and t.attr == "requires_grad" for t in n.targets
        ):
            return True
        if (
            isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "requires_grad_"
            and n.args and _is_false(n.args[0])
        ):
            return True
    return False


def freezing_functions(tree: ast.AST) -> FrozenSet[str]:
    """The module-level functions of ``tree`` that switch off
    ``requires_grad`` of something (``def set_param_grad_off(module): for
    param in module.parameters(): param.requires_grad = False``)."""
    return frozenset(
        node.name for node in getattr(tree, "body", ())
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _freezes(node)
    )


def _body_turns_grad_off(fn: ast.AST, turns_off: Callable[[ast.expr], bool]) -> bool:
    """Does the function's own body (or a function nested in it: the
    wrapper a decorator returns) hold a ``with`` that turns grad off?"""
    return any(
        isinstance(node, (ast.With, ast.AsyncWith)) and any(turns_off(item.context_expr) for item in node.items)
        for node in ast.walk(fn)
    )


def _self_rooted(func: ast.expr) -> bool:
    while isinstance(func, (ast.Attribute, ast.Subscript)):
        func = func.value
    return isinstance(func, ast.Name) and func.id == "self"


def _calls_self(nodes, methods: Optional[Set[str]] = None) -> bool:
    """Do ``nodes`` (statements or expressions, nested functions left out)
    call something of ``self`` (``self.encoder(x)``, ``self._forward(x)``),
    or, with ``methods``, one of those methods of ``self``?  Switching a
    part's mode or device (``self.encoder.eval()``, ``self.net.cuda()``) is
    no such work."""
    for top in nodes if isinstance(nodes, list) else [nodes]:
        for node in itertools.chain([top], own_nodes(top)):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and _self_rooted(node.func):
                if methods is None and (node.func.attr in _HOUSEKEEPING or _text_part(node.func)):
                    continue
                if methods is None or (node.func.attr in methods and isinstance(node.func.value, ast.Name)):
                    return True
    return False


#: Methods a model's ``__call__`` may call on its parts before its work
#: that run nothing of them.
_HOUSEKEEPING = frozenset({"eval", "train", "to", "cuda", "cpu"})
#: Words of the name of a part of an object that is no model: what it
#: calls there (``self.tokenizer.encode(text)``) prepares the model's input.
_TEXT_PARTS = frozenset({"tokenizer", "tokeniser", "vocab", "processor", "logger", "config", "cfg"})


def _text_part(func: ast.Attribute) -> bool:
    """Is ``func`` a method of a part of ``self`` named like a tokenizer,
    vocabulary, logger or settings (``self.tokenizer.encode``)?"""
    part = func.value
    while isinstance(part, ast.Attribute) and not (isinstance(part.value, ast.Name) and part.value.id == "self"):
        part = part.value
    return isinstance(part, ast.Attribute) and bool(_TEXT_PARTS.intersection(tokens(part.attr)))


def _returns(stmts: List[ast.stmt]) -> bool:
    return bool(stmts) and isinstance(stmts[-1], (ast.Return, ast.Raise))


def _grad_off_first(
    stmts: List[ast.stmt], found: Set[str], turns_off: Callable[[ast.expr], bool], ran: bool = False
) -> bool:
    """Does some path through ``stmts`` turn grad off before it first calls
    anything of ``self``, and then call something of ``self`` (the model's
    work) under it: a ``with torch.no_grad():`` (or a call of a method in
    ``found``) reached before any other such call?  A branch that returns
    does not count as having run before what follows it."""
    for stmt in stmts:
        if not ran:
            if isinstance(stmt, (ast.With, ast.AsyncWith)) and any(turns_off(i.context_expr) for i in stmt.items):
                if _calls_self(stmt.body):
                    return True
            elif not isinstance(stmt, (ast.If, ast.For, ast.While, ast.Try)) and _calls_self(stmt, found):
                return True
        if isinstance(stmt, ast.If):
            if _grad_off_first(stmt.body, found, turns_off, ran or _calls_self(stmt.test)) or _grad_off_first(
                stmt.orelse, found, turns_off, ran or _calls_self(stmt.test)
            ):
                return True
            ran = ran or _calls_self(stmt.test) or any(
                _calls_self(branch) and not _returns(branch) for branch in (stmt.body, stmt.orelse)
            )
        else:
            ran = ran or _calls_self(stmt)
    return False


def methods_turning_grad_off(
    node: ast.ClassDef, turns_off: Callable[[ast.expr], bool], decorator_turns_grad_off: Callable[[str], bool]
) -> List[str]:
    """The class's methods that turn grad off themselves before they do
    their work, on some path (see ``_grad_off_first``): a ``with
    torch.no_grad():`` (or ``inference_mode``,
    ``set_grad_enabled(self.training)``: whatever ``turns_off`` accepts, a
    context manager or decorator that disables grad or may) around their
    first calls of
    ``self`` (``self._forward(x)``, ``self.model(c)``) in a branch
    (``if mode == "generate":``), a decorator that does (``@torch.no_grad()``,
    or a name ``decorator_turns_grad_off`` accepts: a function of the module
    whose wrapper calls the method inside such a ``with``), or, first, a
    call of such a method of ``self`` (``forward`` -> ``self.reverse_flow``).
    A ``no_grad`` block after the work (metrics) or around a part of it (a
    frozen target encoder after the online one) does not count; a call of a
    part named like a tokenizer, vocabulary, logger or settings before it
    (``self.tokenizer.encode(text)``) is no work.  A model
    whose method does that runs without grad when it says so.  Every method
    counts when the class's ``__init__`` calls ``torch.set_grad_enabled(False)``
    in its own body: grad is then off for the process once a model is built.
    Only classes that define ``forward`` or ``__call__`` (what calling a
    model runs) are read."""
    methods = [s for s in node.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))]
    if not any(m.name in ("forward", "__call__") for m in methods):
        return []
    init = next((m for m in methods if m.name == "__init__"), None)
    if init is not None and any(_grad_off_for_good(stmt, turns_off) for stmt in init.body):
        # ``torch.set_grad_enabled(False)`` in the constructor's own body: once
        # a model is built, grad stays off for the rest of the process
        return sorted(m.name for m in methods)
    found: Set[str] = {
        m.name for m in methods
        if any(turns_off(d) or decorator_turns_grad_off(last_name(d.func if isinstance(d, ast.Call) else d))
               for d in m.decorator_list)
    }
    grown = True
    while grown:
        grown = False
        for m in methods:
            if m.name not in found and _grad_off_first(m.body, found, turns_off):
                found.add(m.name)
                grown = True
    return sorted(found)


def _grad_off_for_good(stmt: ast.stmt, turns_off: Callable[[ast.expr], bool]) -> bool:
    """Is ``stmt`` a ``torch.set_grad_enabled(False)`` statement (a literal
    ``False``)?  It switches grad off for the process, not for a block."""
    call = stmt.value if isinstance(stmt, ast.Expr) else None
    if not isinstance(call, ast.Call) or last_name(call.func) != "set_grad_enabled" or not turns_off(call):
        return False
    return is_const(first_value(call), False)


def grad_off_selectors(node: ast.ClassDef, turns_off: Callable[[ast.expr], bool]) -> List[str]:
    """The arguments of the class's ``forward`` (or ``__call__``) that
    select a branch doing its work under a grad-disabling ``with``
    (``if is_eval: self.eval(); with torch.no_grad(): ...``, ``elif mode ==
    "inference": with torch.no_grad(): ...``), as ``name=value`` with the
    value's ``repr`` (``is_eval=True``, ``mode='inference'``).  In that
    branch nothing of ``self`` but ``.eval()``/``.train()`` runs outside
    such a ``with``.  A call passing one of them by keyword runs the model
    without grad."""
    forward = method_of(node, "forward") or method_of(node, "__call__")
    if forward is None:
        return []
    args = forward.args
    params = {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)}
    found = set()
    for inner in own_nodes(forward):
        if not isinstance(inner, ast.If):
            continue
        test = inner.test
        if isinstance(test, ast.Name) and test.id in params:
            selector = f"{test.id}=True"
        elif (
            isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id in params
            and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)
            and isinstance(test.comparators[0], ast.Constant)
        ):
            selector = f"{test.left.id}={test.comparators[0].value!r}"
        else:
            continue
        if _work_under_grad_off(inner.body, turns_off):
            found.add(selector)
    return sorted(found)


def _work_under_grad_off(body: List[ast.stmt], turns_off: Callable[[ast.expr], bool]) -> bool:
    """Does ``body`` enter a grad-disabling ``with`` that calls something of
    ``self``, and call nothing of ``self`` outside such a ``with`` but a
    mode switch (``self.eval()``)?"""
    entered = False
    for stmt in body:
        if isinstance(stmt, (ast.With, ast.AsyncWith)) and any(turns_off(i.context_expr) for i in stmt.items):
            entered = entered or _calls_self(stmt.body)
            continue
        switch = (
            isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)
            and isinstance(stmt.value.func, ast.Attribute) and stmt.value.func.attr in ("eval", "train")
            and isinstance(stmt.value.func.value, ast.Name) and stmt.value.func.value.id == "self"
        )
        if not switch and _calls_self(stmt):
            return False
    return entered


def grad_off_decorator(tree: ast.Module, turns_off: Callable[[ast.expr], bool]) -> Callable[[str], bool]:
    """Is ``name`` a function of the module that holds a ``with`` turning
    grad off (``check_inference``, whose wrapper runs the method under
    ``torch.no_grad()`` when the model is not training)?  As a decorator,
    it turns grad off for the methods it wraps.  Each name is read once,
    when a method is first seen decorated with it."""
    answers: Dict[str, bool] = {}

    def turns_grad_off(name: str) -> bool:
        if name not in answers:
            answers[name] = any(
                isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == name
                and _body_turns_grad_off(n, turns_off)
                for n in tree.body
            )
        return answers[name]

    return turns_grad_off


def plain_bases(bases: List[ast.expr]) -> bool:
    """No base but ``object`` (or none at all): no ``nn.Module``, no
    framework class."""
    return all(isinstance(b, ast.Name) and b.id == "object" for b in bases)


def method_of(node: ast.ClassDef, name: str) -> Optional[ast.FunctionDef]:
    """The class's own method called ``name``, if it defines one."""
    return next(
        (s for s in node.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)) and s.name == name), None
    )  # type: ignore[return-value]


def init_freeze(node: ast.ClassDef) -> Optional[Freeze]:
    """Does the class's ``__init__`` switch off grad for all its parameters
    (``self.requires_grad_(False)``, ``for p in self.parameters():
    p.requires_grad = False``), unconditionally or by a parameter whose
    default is ``False`` (``requires_grad=False``, as pytorch-fid's
    ``InceptionV3`` does)?"""
    init = next((s for s in node.body if isinstance(s, ast.FunctionDef) and s.name == "__init__"), None)
    if init is None:
        return None
    defaults = param_defaults(init.args)
    positional = positional_params(init, True)

    def freeze(value: Optional[ast.expr]) -> Optional[Freeze]:
        if is_const(value, False):
            return ("", -1)
        if isinstance(value, ast.Name) and is_const(defaults.get(value.id), False):
            return (value.id, positional.index(value.id) if value.id in positional else -1)
        return None

    for stmt in init.body:
        loop = parameters_loop(stmt)
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            func = stmt.value.func
            if isinstance(func, ast.Attribute) and func.attr == "requires_grad_" and dotted(func.value) == "self":
                found = freeze(first_value(stmt.value))
                if found is not None:
                    return found
        elif loop is not None and dotted(loop[0]) == "self":
            target = loop[1]
            for inner in stmt.body:
                if (
                    isinstance(inner, ast.Assign) and len(inner.targets) == 1
                    and isinstance(inner.targets[0], ast.Attribute) and inner.targets[0].attr == "requires_grad"
                    and isinstance(target, ast.Name) and dotted(inner.targets[0].value) == target.id
                ):
                    found = freeze(inner.value)
                    if found is not None:
                        return found
    return None


def freezes(freeze: Optional[Freeze], call: ast.Call) -> bool:
    """Does the constructor call leave the class's freeze on (it does not
    pass the parameter, or passes ``False``)?"""
    if freeze is None:
        return False
    name, position = freeze
    if not name:
        return True
    if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
        return False
    for kw in call.keywords:
        if kw.arg == name:
            return is_const(kw.value, False)
    if 0 <= position < len(call.args):
        return is_const(call.args[position], False)
    return True


# --- what a call passes ----------------------------------------------------------

if TYPE_CHECKING:  # annotations only: making typing aliases at import costs time
    #: What a call passes: the number of positional arguments (-1 after a
    #: ``*args``), the keyword names (``"**"`` for ``**kwargs``) and the constants
    #: among them by slot (position or keyword): ``f(x, 0, mode="eval")`` is
    #: ``(2, ("mode",), ((1, 0), ("mode", "eval")))``.
    Shape = Tuple[int, Tuple[str, ...], Tuple[Tuple[object, object], ...]]

_CONSTANT_TYPES = (bool, int, float, str, type(None))


def binds(required: Optional[int], shape: Shape) -> bool:
    """Can a call of this shape pass the arguments a function requires?
    (Too many are not held against it: ``Class.method(obj, x)`` passes
    ``self`` itself.)"""
    if required is None:
        return True
    npos, keywords, _ = shape
    return npos < 0 or "**" in keywords or npos + len(keywords) >= required


#: what ``passed`` returns when a call's arguments cannot be matched up, when
#: the parameter is not passed, and when what is passed is no constant
UNKNOWN, NOT_PASSED, NOT_CONSTANT = object(), object(), object()


def passed(shape: Shape, name: str, index: Optional[int]) -> object:
    """What a call of this shape passes for the parameter ``name`` (at
    position ``index`` when it can be passed by position): the constant,
    ``NOT_CONSTANT``, ``NOT_PASSED``, or ``UNKNOWN`` after ``*args`` or
    ``**kwargs``."""
    npos, keywords, constants = shape
    if npos < 0 or "**" in keywords:
        return UNKNOWN
    slot = name if name in keywords else index if index is not None and index < npos else None
    if slot is None:
        return NOT_PASSED
    return dict(constants).get(slot, NOT_CONSTANT)


def call_shape(node: ast.Call) -> Shape:
    """What ``node`` passes (see ``Shape``)."""
    npos = 0
    constants: List[Tuple[object, object]] = []
    for arg in node.args:
        if isinstance(arg, ast.Starred):
            npos = -1
            break
        if isinstance(arg, ast.Constant) and isinstance(arg.value, _CONSTANT_TYPES):
            constants.append((npos, arg.value))
        npos += 1
    keywords = []
    for kw in node.keywords:
        keywords.append(kw.arg or "**")
        if kw.arg and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, _CONSTANT_TYPES):
            constants.append((kw.arg, kw.value.value))
    return (npos, tuple(keywords), tuple(constants))


_UNKNOWN = object()


def test_holds(test: ast.expr, values: Dict[str, Optional[ast.expr]], names: FrozenSet[str]) -> Optional[bool]:
    """Does ``test`` hold when each parameter of ``names`` has the value of
    its expression in ``values`` (an argument a call passes; only constants
    and containers of them are known)?  ``==``, ``!=``, ``in``, ``not in``,
    ``is``/``is not`` ``None`` or a bool, ``not``, ``and``, ``or`` and a bare
    name's truth.  None: not known."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        inner = test_holds(test.operand, values, names)
        return None if inner is None else not inner
    if isinstance(test, ast.BoolOp):
        parts = [test_holds(v, values, names) for v in test.values]
        decisive = isinstance(test.op, ast.Or)
        if decisive in parts:
            return decisive
        return None if None in parts else not decisive
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        left = _constant(test.left, values, names)
        right = _constant(test.comparators[0], values, names)
        if left is _UNKNOWN or right is _UNKNOWN:
            return None
        return _compare(test.ops[0], left, right)
    value = _constant(test, values, names) if isinstance(test, ast.Name) else _UNKNOWN
    return None if value is _UNKNOWN else bool(value)


def _constant(expr: Optional[ast.AST], values: Dict[str, Optional[ast.expr]], names: FrozenSet[str]) -> object:
    """The value of ``expr`` with the parameters' values, or ``_UNKNOWN``."""
    if isinstance(expr, ast.Name) and expr.id in names:
        expr = values.get(expr.id)
    if isinstance(expr, ast.Constant):
        return expr.value
    if isinstance(expr, (ast.Tuple, ast.List, ast.Set)):
        items = [_constant(e, values, names) for e in expr.elts]
        return _UNKNOWN if any(i is _UNKNOWN for i in items) else tuple(items)
    return _UNKNOWN


def _compare(op: ast.cmpop, left: object, right: object) -> Optional[bool]:
    try:
        if isinstance(op, ast.Eq):
            return bool(left == right)
        if isinstance(op, ast.NotEq):
            return bool(left != right)
        if isinstance(op, ast.Is):
            return left is right if right is None or isinstance(right, bool) else None
        if isinstance(op, ast.IsNot):
            return left is not right if right is None or isinstance(right, bool) else None
        if isinstance(op, ast.In) and isinstance(right, tuple):
            return left in right
        if isinstance(op, ast.NotIn) and isinstance(right, tuple):
            return left not in right
    except TypeError:
        return None
    return None
