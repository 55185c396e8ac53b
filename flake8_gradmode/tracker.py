"""Import aliases and the grad-mode stack shared by every rule (``ast`` nodes).

Two pieces live here:

* ``ImportTable`` turns an expression such as ``t.no_grad`` or ``ng`` into the
  dotted name it refers to (``torch.no_grad``), from the module's own import
  statements.
* ``GradTracker`` keeps, for every scope being visited, a stack of grad
  states.  Contexts nest, ``enable_grad`` re-enables, a decorator sets the state
  of a function body, ``torch.set_grad_enabled(False)`` as a statement holds to
  the end of its block, and past it: the mode is process state, so after an
  ``if``, loop or ``try`` that may have set another one it is ``UNKNOWN``
  (a grad context's ``with`` puts back the mode it found).  A function, lambda or generator expression body starts
  from ``INHERITED``: it runs whenever it is called.  The engine resolves
  ``INHERITED`` for module-local functions once the whole module is seen
  (``resolve_function``): a function whose every call in the module runs with
  grad disabled runs with grad disabled.
"""

from __future__ import annotations

import ast
import re
from enum import Enum
from typing import (
    TYPE_CHECKING, Callable, Dict, FrozenSet, Iterable, Iterator, List, Optional, Sequence, Set, Tuple, Union
)


class Grad(Enum):
    ENABLED = "enabled"
    DISABLED = "disabled"
    #: ``set_grad_enabled(<expr>)``: depends on run-time values.
    UNKNOWN = "unknown"
    #: a function body: whatever its callers run under.
    INHERITED = "inherited"


# Canonical grad-mode APIs and every public path that reaches them.
_GRAD_MODE_PATHS = {
    "no_grad": ("torch.no_grad", "torch.autograd.no_grad", "torch.autograd.grad_mode.no_grad"),
    "enable_grad": (
        "torch.enable_grad",
        "torch.autograd.enable_grad",
        "torch.autograd.grad_mode.enable_grad",
    ),
    "inference_mode": (
        "torch.inference_mode",
        "torch.autograd.inference_mode",
        "torch.autograd.grad_mode.inference_mode",
    ),
    "set_grad_enabled": (
        "torch.set_grad_enabled",
        "torch.autograd.set_grad_enabled",
        "torch.autograd.grad_mode.set_grad_enabled",
    ),
}
GRAD_MODE_API: Dict[str, str] = {
    path: canon for canon, paths in _GRAD_MODE_PATHS.items() for path in paths
}
#: A project's own wrapper of no_grad/inference_mode, recognised by its name
#: (searched with re.IGNORECASE; see ``_wrapper_name``).
_WRAPPER_NAME = r"(^|_)(no_?grad|disable_?grad)|inference_?mode"
_WRAPPER_WORDS = ("nograd", "no_grad", "disablegrad", "disable_grad")


def _wrapper_name(name: str) -> bool:
    """Does ``_WRAPPER_NAME`` occur in ``name``, in any case
    (``smart_inference_mode``, ``_get_no_grad_ctx_mgr``)?  For an ASCII name,
    string tests of its lower case tell, and cost less than compiling the
    expression at import; IGNORECASE also folds a few other letters onto
    these (U+0131, the dotless i, matches ``i``), so another name is
    searched with it."""
    if not name.isascii():
        return re.search(_WRAPPER_NAME, name, re.IGNORECASE) is not None
    low = name.lower()
    if "grad" in low and (
        low.startswith(_WRAPPER_WORDS)
        or "_nograd" in low
        or "_no_grad" in low
        or "_disablegrad" in low
        or "_disable_grad" in low
    ):
        return True
    return "inference" in low and ("inferencemode" in low or "inference_mode" in low)


def preorder(node: ast.AST) -> List[ast.AST]:
    """Every node under ``node``, itself included, each before its children
    (depth first): what ``ast.walk`` yields, in another order, as one list
    made by a plain loop, two to three times faster than ``ast.walk``'s
    nested generators.  For questions whose answer does not depend on the
    order beyond a parent coming before its children."""
    found: List[ast.AST] = []
    todo = [node]
    pop, push, add, AST = todo.pop, todo.append, found.append, ast.AST
    while todo:
        current = pop()
        add(current)
        for name in current._fields:
            value = getattr(current, name, None)
            if value.__class__ is list:
                for item in value:
                    if isinstance(item, AST):
                        push(item)
            elif isinstance(value, AST):
                push(value)
    return found


def child_nodes(node: ast.AST) -> List[ast.AST]:
    """``list(ast.iter_child_nodes(node))``, without its two generators."""
    found: List[ast.AST] = []
    for name in node._fields:
        value = getattr(node, name, None)
        if isinstance(value, ast.AST):
            found.append(value)
        elif isinstance(value, list):
            found.extend(item for item in value if isinstance(item, ast.AST))
    return found


def statements_in(block: List[ast.stmt]) -> List[ast.AST]:
    """The statements of ``block`` and of every block nested in them (those
    of nested functions and classes too), with the ``except`` handlers and
    ``match`` cases that hold blocks.  Expressions are not walked: no
    statement is in one."""
    found: List[ast.AST] = []
    todo: List[ast.AST] = list(block)
    while todo:
        stmt = todo.pop()
        found.append(stmt)
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):
            todo.extend(getattr(stmt, field, ()))
    return found


def chain_root(expr: ast.AST) -> Optional[str]:
    """``a`` of ``a.b.c`` and of ``a``; None when the chain of attributes
    does not start from a name (``f().b``, ``x[0].b``)."""
    while expr.__class__ is ast.Attribute:
        expr = expr.value  # type: ignore[attr-defined]
    return expr.id if expr.__class__ is ast.Name else None  # type: ignore[attr-defined]


def dotted(expr: ast.AST) -> Optional[str]:
    """``a.b.c`` for a chain of names and attributes, else None."""
    parts: List[str] = []
    while isinstance(expr, ast.Attribute):
        parts.append(expr.attr)
        expr = expr.value
    if isinstance(expr, ast.Name):
        parts.append(expr.id)
        return ".".join(reversed(parts))
    return None


if TYPE_CHECKING:  # annotations only: making typing aliases at import costs time
    #: One argument of a call in source order: keyword name (None for a
    #: positional one), value, and ``"*"``/``"**"`` for unpacked ones.
    Argument = Tuple[Optional[str], ast.expr, str]


def call_args(call: ast.Call) -> List[Argument]:
    """The arguments of ``call`` as written: positional first, then keywords."""
    out: List[Argument] = []
    for arg in call.args:
        if isinstance(arg, ast.Starred):
            out.append((None, arg.value, "*"))
        else:
            out.append((None, arg, ""))
    for kw in call.keywords:
        out.append((kw.arg, kw.value, "" if kw.arg is not None else "**"))
    return out


def all_params(args: ast.arguments) -> Iterator[ast.arg]:
    """Every parameter a function's ``args`` declare, ``*args`` and ``**kwargs`` too."""
    yield from args.posonlyargs
    yield from args.args
    yield from args.kwonlyargs
    if args.vararg is not None:
        yield args.vararg
    if args.kwarg is not None:
        yield args.kwarg


def positional_params(node: Union[ast.FunctionDef, ast.AsyncFunctionDef], method: bool) -> List[str]:
    """The parameters a call's positional arguments fill, in order: a
    method's ``self`` left out, unless it is a ``staticmethod``."""
    names = [a.arg for a in (*node.args.posonlyargs, *node.args.args)]
    if method and not any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in node.decorator_list):
        return names[1:]
    return names


def param_defaults(args: ast.arguments) -> Dict[str, ast.expr]:
    """A function's parameters with a default value, and those values."""
    positional = [a.arg for a in (*args.posonlyargs, *args.args)]
    defaults = dict(zip(positional[len(positional) - len(args.defaults):], args.defaults))
    defaults.update((a.arg, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None)
    return defaults


def first_value(call: ast.Call) -> Optional[ast.expr]:
    """The value of the first argument as written (positional or keyword)."""
    if call.args:
        first = call.args[0]
        return first.value if isinstance(first, ast.Starred) else first
    return call.keywords[0].value if call.keywords else None


def mode_value(call: ast.Call) -> Optional[ast.expr]:
    """The mode a ``m.train(...)`` call passes as written: its first
    positional argument or its ``mode=``; None when it passes neither
    (``model.train(freeze_bn=False)``, an override's own switch, leaves
    ``mode`` at its default, True)."""
    if call.args:
        first = call.args[0]
        return first.value if isinstance(first, ast.Starred) else first
    return next((k.value for k in call.keywords if k.arg == "mode"), None)


def switches_to_eval(call: ast.Call, method: str) -> bool:
    """``m.eval()``, ``m.train(False)``, ``m.train(mode=False)`` (``method``
    is the called method's name)."""
    if method == "eval":
        return not call.args and not call.keywords
    if method == "train":
        return is_const(mode_value(call), False)
    return False


def switches_to_train(call: ast.Call) -> bool:
    """``m.train()``, ``m.train(True)``, and ``m.train(freeze_bn=False)``:
    only switches of an override, each ``True`` or ``False``, with
    ``mode`` left at its default."""
    mode = mode_value(call)
    if mode is None:
        return all(k.arg is not None and isinstance(k.value, ast.Constant) and type(k.value.value) is bool
                   for k in call.keywords)
    return is_const(mode, True)


#: Methods that return the module they are called on (``.to(device)``, ``.eval()``).
SAME_MODULE_METHODS = frozenset({"to", "cuda", "cpu", "float", "double", "half", "train", "eval", "requires_grad_"})


def unchained(expr: ast.expr, methods: FrozenSet[str] = SAME_MODULE_METHODS) -> ast.expr:
    """``Net()`` of ``Net().to(device).eval()``: what a chain of calls of
    ``methods`` starts from."""
    while isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr in methods:
        expr = expr.func.value
    return expr


def unsubscripted(base: ast.expr) -> ast.expr:
    """``Embeddings`` for the class base ``Embeddings[Sentence]``."""
    return base.value if isinstance(base, ast.Subscript) else base


def subscripted_root(expr: ast.expr) -> ast.expr:
    """What ``expr``, an item (of an item) or not, is read from: ``states`` for
    ``states[t][1]``, ``model.info`` for ``model.info["loss"]``."""
    while isinstance(expr, ast.Subscript):
        expr = expr.value
    return expr


def is_super_call(expr: ast.AST) -> bool:
    """``super()`` (any arguments): the receiver of ``super().method()``."""
    return isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and expr.func.id == "super"


def last_name(expr: ast.AST) -> str:
    """``c`` for ``a.b.c`` and for ``c``; empty for anything else."""
    if isinstance(expr, ast.Attribute):
        return expr.attr
    return expr.id if isinstance(expr, ast.Name) else ""


def string_value(expr: Optional[ast.AST]) -> Optional[str]:
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return expr.value
    return None


def is_const(expr: Optional[ast.AST], value: object) -> bool:
    """``expr`` is the literal ``True``/``False``/``None`` (``value``)."""
    return isinstance(expr, ast.Constant) and expr.value is value


#: torch's grad-mode callables, which a name may be bound to by assignment.
_GRAD_MODE_CALLABLES = frozenset({"no_grad", "inference_mode", "enable_grad", "set_grad_enabled"})


class ImportTable:
    """Local name -> dotted path, from ``import``/``from ... import``.

    ``torch`` (and ``nn``/``F`` only when imported) resolve through it.  A name
    that was never imported resolves to itself, so ``torch.no_grad`` works in a
    snippet that forgot ``import torch``.
    """

    def __init__(self) -> None:
        self._names: Dict[str, str] = {}
        #: names bound by assignment to a grad-mode callable (see ``bind``)
        self.bound: Set[str] = set()
        # the last expression resolved and its answer: the engine and several
        # rules ask about the same ``func`` of a call one after the other
        self._last: Optional[ast.AST] = None
        self._last_answer: Optional[str] = None

    def imports_from(self, packages: Tuple[str, ...]) -> bool:
        """Does the module import anything from one of ``packages``?"""
        return any(full.split(".", 1)[0] in packages for full in self._names.values())

    def imports_any(self, names: FrozenSet[str]) -> bool:
        """Does the module import one of ``names`` (full dotted names) itself?"""
        return not names.isdisjoint(self._names.values())

    def imported_names(self) -> Iterable[str]:
        return self._names.keys()

    def add_import(self, node: ast.Import) -> None:
        self._last = None
        for alias in node.names:
            full = alias.name
            if alias.asname is not None:
                self._names[alias.asname] = full
            else:
                root = full.split(".", 1)[0]
                self._names[root] = root

    def add_import_from(self, node: ast.ImportFrom) -> None:
        self._last = None
        base = None if node.level or node.module is None else node.module
        for alias in node.names:
            if alias.name == "*":
                return
            name = alias.name
            local = alias.asname if alias.asname is not None else name
            # A relative import is the project's own code: remember it as such,
            # so a local ``no_grad`` is not taken for torch's.
            self._names[local] = f"{base}.{name}" if base else f".{name}"

    def is_imported(self, name: str) -> bool:
        return name in self._names

    def bind(self, name: str, value: ast.expr) -> None:
        """``name = value``: a name bound to one of torch's grad-mode
        callables (``evaluation_mode = torch.no_grad``, in each branch of an
        ``if``) resolves like it until bound to anything else."""
        cls = value.__class__
        last = value.attr if cls is ast.Attribute else value.id if cls is ast.Name else None  # type: ignore
        known = last is not None and (last in _GRAD_MODE_CALLABLES or last in self._names)
        answer = self.resolve(value) if known else None
        if answer is not None and answer.startswith("torch.") and answer.rsplit(".", 1)[-1] in _GRAD_MODE_CALLABLES:
            self._names[name] = answer
            self.bound.add(name)
            self._last = None
        elif name in self.bound:
            self.bound.discard(name)
            self._names.pop(name, None)
            self._last = None

    def may_end_with(self, expr: ast.AST, names: Iterable[str]) -> bool:
        """Can ``expr`` resolve to a name whose last part is one of ``names``?
        Yes when it is written so (``ag.grad``, ``grad``), or when it is a bare
        name imported under another (``from torch.autograd import grad as g``).
        A cheap test before ``resolve``, which most calls need not reach."""
        return last_name(expr) in names or (isinstance(expr, ast.Name) and expr.id in self._names)

    def root_starts(self, expr: ast.AST, prefix: str) -> bool:
        """Can ``resolve(expr)`` start with ``prefix``?  Only if what the root
        name of the chain stands for does: a test that builds no string,
        before ``resolve``, which most calls need not reach."""
        name = chain_root(expr)
        if name is None:
            return False  # no dotted name: ``resolve`` answers None
        return self._names.get(name, name).startswith(prefix)

    def mentions_torch(self) -> bool:
        return any(v == "torch" or v.startswith("torch.") for v in self._names.values())

    def resolve(self, expr: ast.AST) -> Optional[str]:
        if expr is self._last:
            return self._last_answer
        name = dotted(expr)
        if name is None:
            answer = None
        else:
            root, _, rest = name.partition(".")
            full = self._names.get(root, root)
            answer = f"{full}.{rest}" if rest else full
            while answer.startswith("torch.torch.") or answer == "torch.torch":
                answer = answer[6:]  # ``torch.torch.no_grad()``: the torch module is its own attribute
        self._last, self._last_answer = expr, answer
        return answer


# --- grad state -------------------------------------------------------------


def _bool_literal(node: ast.AST) -> Optional[bool]:
    if isinstance(node, ast.Constant) and isinstance(node.value, bool):
        return node.value
    return None


def first_or_keyword(call: ast.Call, keyword: str) -> Optional[ast.expr]:
    """The first positional argument, or the one passed as ``keyword``."""
    for name, value, star in call_args(call):
        if name is None and star == "":
            return value
        if name == keyword:
            return value
    return None


def bound_arguments(function: "FunctionInfo", call: ast.Call) -> List[Tuple[str, ast.expr, Optional[ast.keyword]]]:
    """``(parameter name, value, keyword)`` for the arguments ``call`` passes
    to ``function``: positional ones up to the first ``*args``, then keywords."""
    args = function.node.args
    positional = positional_params(function.node, function.class_name is not None)
    out: List[Tuple[str, ast.expr, Optional[ast.keyword]]] = []
    for i, value in enumerate(call.args):
        if isinstance(value, ast.Starred) or i >= len(positional):
            break
        out.append((positional[i], value, None))
    named = {a.arg for a in args.args + args.kwonlyargs}
    out.extend((kw.arg, kw.value, kw) for kw in call.keywords if kw.arg is not None and kw.arg in named)
    return out


class FunctionInfo:
    """A ``def`` as seen by the caller resolution.

    (Plain classes rather than dataclasses here and in the other modules the
    plugin imports: an editor pays for creating every class on every save.)"""

    __slots__ = (
        "name", "node", "entry", "class_name", "parent", "key", "calls", "escaped", "by_name", "resolved", "ask"
    )

    def __init__(
        self,
        name: str,
        node: Union[ast.FunctionDef, ast.AsyncFunctionDef],
        entry: Grad,
        class_name: Optional[str],
        parent: Optional["FunctionInfo"],
        key: Optional[Tuple[str, ...]] = None,
    ) -> None:
        self.name = name
        self.node = node
        self.entry = entry
        self.class_name = class_name
        self.parent = parent
        #: ("function", name) or ("method", class, name); None for nested defs
        self.key = key
        #: (grad state, calling function) of every module-local call
        self.calls: List[Tuple[Grad, Optional["FunctionInfo"]]] = []
        self.escaped = False
        #: calls by name on another object (``evaluator.score()``), which may
        #: be of another class: they can make the answer less certain, never
        #: settle it
        self.by_name: List[Tuple[Grad, Optional["FunctionInfo"]]] = []
        #: ``resolve_function``'s answer, once computed
        self.resolved: Optional[Grad] = None
        #: asked when the module alone leaves the answer ``INHERITED``: the
        #: project's answer, from callers in other modules (set by the engine)
        self.ask: Optional[Callable[["FunctionInfo"], Grad]] = None

    def __repr__(self) -> str:
        return f"FunctionInfo({self.name!r}, key={self.key!r})"


class Frame:
    """One running scope: module, function, lambda or generator expression."""

    __slots__ = ("kind", "function", "states", "blocks", "names", "set_by_hand")

    def __init__(self, kind: str, function: Optional[FunctionInfo], states: List[Grad]) -> None:
        self.kind = kind
        self.function = function
        self.states = states
        self.blocks: List[int] = []
        #: where in ``states`` a ``set_grad_enabled`` statement put its mode
        #: (process state, which outlives the block: see ``leave_block``)
        self.set_by_hand: List[int] = []
        #: local name -> what it was last bound to (see ``facts.Binding``)
        self.names: Dict[str, object] = {}


class GradTracker:
    def __init__(self, extra_disablers: Sequence[str] = ()) -> None:
        self.frames: List[Frame] = [Frame("module", None, [Grad.ENABLED])]
        self._extra = tuple(extra_disablers)
        #: the module whose own ``@contextmanager`` functions may set grad
        #: (see ``local_grad_managers``), and those, found on first need
        self.module: Optional[ast.Module] = None
        self._managers: Optional[Dict[str, "_Manager"]] = None
        #: for each ``with`` body being visited: does it put back the grad mode it found?
        self._restores: List[bool] = []

    # -- what is this expression? --------------------------------------------

    def grad_api(self, imports: ImportTable, expr: ast.AST) -> Optional[str]:
        """Canonical grad-mode API named by ``expr`` (not called), or None."""
        qual = imports.resolve(expr)
        if qual is None:
            return None
        canon = GRAD_MODE_API.get(qual)
        if canon is not None:
            return canon
        if self._extra and self._is_extra(qual, dotted(expr) or ""):
            return "user_no_grad"
        if not qual.startswith("torch.") and _wrapper_name(qual.rsplit(".", 1)[-1]):
            return "user_no_grad"  # smart_inference_mode(), _get_no_grad_ctx_mgr()
        return None

    def _is_extra(self, qual: str, written: str) -> bool:
        for name in self._extra:
            if name in (qual, written):
                return True
            if "." not in name and (qual.rsplit(".", 1)[-1] == name):
                return True
        return False

    def sets_by_hand(self, imports: ImportTable, stmt: ast.stmt) -> bool:
        """Is ``stmt`` a ``torch.set_grad_enabled(...)`` statement, whose mode
        no ``with`` puts back when a block ends?"""
        call = stmt.value if isinstance(stmt, ast.Expr) else None
        return isinstance(call, ast.Call) and self.grad_api(imports, call.func) == "set_grad_enabled"

    def statement_effect(self, imports: ImportTable, stmt: ast.stmt) -> Optional[Grad]:
        """The grad state an expression statement sets until its block ends:
        ``torch.set_grad_enabled(False)``, a grad context entered by hand
        (``torch.no_grad().__enter__()``) or on an ``ExitStack``
        (``stack.enter_context(torch.no_grad())``)."""
        call = stmt.value if isinstance(stmt, ast.Expr) else None
        if not isinstance(call, ast.Call):
            return None
        func = call.func
        if isinstance(func, ast.Attribute):
            if func.attr == "__enter__" and isinstance(func.value, ast.Call):
                return self.effect(imports, func.value)
            if func.attr == "enter_context":
                first = first_value(call)
                return self.effect(imports, first) if first is not None else None
        if self.grad_api(imports, func) == "set_grad_enabled":
            return self.effect(imports, call)
        return None

    def effect(self, imports: ImportTable, expr: ast.AST) -> Optional[Grad]:
        """The grad state an expression sets as a context manager/decorator."""
        if isinstance(expr, ast.BoolOp) and isinstance(expr.op, ast.And):
            # ``with torch.set_grad_enabled(True) and detect_anomaly():`` enters only
            # the last object, but ``set_grad_enabled`` sets the mode when it is made
            state = None
            for value in expr.values:
                made = self.effect(imports, value)
                if made is not None and value is expr.values[-1]:
                    state = made
                elif made is not None and isinstance(value, ast.Call):
                    if self.grad_api(imports, value.func) == "set_grad_enabled":
                        state = made
            return state
        if isinstance(expr, ast.IfExp):
            # ``with torch.no_grad() if not requires_grad else nullcontext():``:
            # one branch or the other, chosen at run time
            made = {self.effect(imports, expr.body), self.effect(imports, expr.orelse)}
            if len(made) == 1:
                return made.pop()  # the same either way
            return Grad.UNKNOWN
        if isinstance(expr, ast.Call):
            api = self.grad_api(imports, expr.func)
            if api is None:
                return None
            if api in ("no_grad", "user_no_grad"):
                return Grad.DISABLED
            if api == "enable_grad":
                return Grad.ENABLED
            if api == "inference_mode":
                arg = first_or_keyword(expr, "mode")
                if arg is None:
                    return Grad.DISABLED
                value = _bool_literal(arg)
                if value is None:
                    return Grad.UNKNOWN
                return Grad.DISABLED if value else Grad.ENABLED
            if api == "set_grad_enabled":
                arg = first_or_keyword(expr, "mode")
                value = _bool_literal(arg) if arg is not None else None
                if value is None:
                    return Grad.UNKNOWN
                return Grad.ENABLED if value else Grad.DISABLED
            return None
        api = self.grad_api(imports, expr)
        if api is None:
            return None
        # Bare names: decorators work bare (torch >= 2.0).  A bare class used
        # as a context manager raises (GRD001 reports it); other rules reason
        # about what the author meant, so it counts as the call would.
        if api == "user_no_grad":
            return Grad.DISABLED
        if api in ("no_grad", "inference_mode"):
            return Grad.DISABLED
        if api == "enable_grad":
            return Grad.ENABLED
        return None

    # -- the stack -----------------------------------------------------------

    @property
    def frame(self) -> Frame:
        return self.frames[-1]

    @property
    def state(self) -> Grad:
        return self.frames[-1].states[-1]

    @property
    def function(self) -> Optional[FunctionInfo]:
        """The innermost ``def`` whose body is running, if the innermost frame is one."""
        frame = self.frames[-1]
        return frame.function if frame.kind == "function" else None

    def push_frame(self, kind: str, function: Optional[FunctionInfo], state: Grad) -> None:
        self.frames.append(Frame(kind, function, [state]))

    def pop_frame(self) -> None:
        self.frames.pop()

    def push_state(self, state: Grad, by_hand: bool = False) -> None:
        """``state`` from here; ``by_hand`` for a ``torch.set_grad_enabled``
        statement (a context entered on an ``ExitStack`` ends with it)."""
        frame = self.frame
        if by_hand:
            frame.set_by_hand.append(len(frame.states))
        frame.states.append(state)

    def enter_block(self) -> None:
        self.frame.blocks.append(len(self.frame.states))

    def leave_block(self) -> None:
        """The block's own ``set_grad_enabled`` statements end with it, but
        the mode they set is process state: when the block may end in another
        mode than it began (``if flag: torch.set_grad_enabled(True)``), the
        code after it runs in a mode only known at run time."""
        frame = self.frame
        states = frame.states
        depth = frame.blocks.pop()
        by_hand = frame.set_by_hand
        if by_hand and by_hand[-1] >= depth:
            # (a function's own body ends with its frame)
            if depth and states[-1] is not states[depth - 1] and (frame.blocks or frame.kind == "module"):
                states[depth - 1] = Grad.UNKNOWN
            while by_hand and by_hand[-1] >= depth:
                by_hand.pop()
        del states[depth:]

    def enter_with(self, imports: ImportTable, items: Iterable[ast.withitem]) -> None:
        """A ``with`` body begins: in the mode its grad context sets, else in
        the one around it."""
        effect = self.with_effect(imports, items)
        # a grad context puts back the mode it found; ``with open(f):`` does not
        self._restores.append(effect is not None)
        self.push_state(self.state if effect is None else effect)

    def leave_with(self) -> None:
        """A ``with`` body ends.  When a ``set_grad_enabled`` statement in it
        left the mode unknown (see ``leave_block``) and no grad context puts
        the old one back, the mode after it is unknown too."""
        states = self.frame.states
        restores = self._restores.pop()
        if states.pop() is Grad.UNKNOWN and not restores and states[-1] is not Grad.UNKNOWN:
            states[-1] = Grad.UNKNOWN

    def with_effect(self, imports: ImportTable, items: Iterable[ast.withitem]) -> Optional[Grad]:
        """The grad state a ``with`` statement's body runs in, when one of its
        items sets one (a grad context, which puts back the mode it found on
        leaving), else None."""
        state = None
        for item in items:
            effect = self.effect(imports, item.context_expr)
            if effect is None and item.context_expr.__class__ is ast.Call and self.module is not None:
                effect = self._manager_effect(imports, item.context_expr)  # type: ignore[arg-type]
            if effect is not None:
                state = effect
        return state

    def _manager_effect(self, imports: ImportTable, call: ast.Call) -> Optional[Grad]:
        """``with self._training_mode(False):`` where the module's own
        ``@contextmanager`` yields inside ``torch.set_grad_enabled(training)``
        (or another grad context)."""
        if self._managers is None:
            self._managers = local_grad_managers(self, imports, self.module)  # type: ignore[arg-type]
        if not self._managers:
            return None
        func = call.func
        if func.__class__ is ast.Name:
            name = func.id  # type: ignore[attr-defined]
        elif func.__class__ is ast.Attribute and dotted(func.value) in ("self", "cls"):  # type: ignore[attr-defined]
            name = func.attr  # type: ignore[attr-defined]
        else:
            return None
        manager = self._managers.get(name)
        if manager is None:
            return None
        effect, position, keyword, default = manager
        if effect is not None:
            return effect
        arg = call.args[position] if position is not None and position < len(call.args) else None
        if arg is None:
            arg = next((kw.value for kw in call.keywords if kw.arg == keyword), default)
        value = _bool_literal(arg) if arg is not None else None
        if value is None:
            return Grad.UNKNOWN
        return Grad.ENABLED if value else Grad.DISABLED

    def decorator_state(self, imports: ImportTable, decorators: Iterable[ast.expr]) -> Optional[Grad]:
        state = None
        for deco in decorators:
            effect = self.effect(imports, deco)
            if effect is not None:
                state = effect
        return state


if TYPE_CHECKING:  # annotations only: making typing aliases at import costs time
    #: How a module's own context manager sets grad: a fixed state, or the
    #: argument (position without ``self``, keyword, default) that
    #: ``torch.set_grad_enabled`` receives.
    _Manager = Tuple[Optional[Grad], Optional[int], Optional[str], Optional[ast.expr]]


def local_grad_managers(tracker: GradTracker, imports: ImportTable, module: ast.Module) -> Dict[str, _Manager]:
    """The module's ``@contextmanager`` functions and methods (by name) that
    ``yield`` inside a grad context: ``with torch.no_grad(): yield``, or
    ``with torch.set_grad_enabled(training): yield`` for their argument
    ``training``.  A name defined twice, differently, is left out."""
    found: Dict[str, _Manager] = {}
    clashes: Set[str] = set()
    defs = []
    for node in module.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            defs.append((node, False))
        elif isinstance(node, ast.ClassDef):
            defs.extend((n, True) for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))
    for node, method in defs:
        if not any(last_name(d) == "contextmanager" for d in node.decorator_list):
            continue
        manager = _grad_manager(tracker, imports, node, method)
        if manager is None:
            continue
        if node.name in found and found[node.name] != manager:
            clashes.add(node.name)
        found[node.name] = manager
    for name in clashes:
        del found[name]
    return found


def _grad_manager(
    tracker: GradTracker, imports: ImportTable, node: Union[ast.FunctionDef, ast.AsyncFunctionDef], method: bool
) -> Optional[_Manager]:
    for stmt in ast.walk(node):
        if not isinstance(stmt, (ast.With, ast.AsyncWith)) or not any(
            isinstance(n, (ast.Yield, ast.YieldFrom)) for s in stmt.body for n in ast.walk(s)
        ):
            continue
        for item in stmt.items:
            expr = item.context_expr
            effect = tracker.effect(imports, expr)
            if effect is not None and effect is not Grad.UNKNOWN:
                return (effect, None, None, None)
            if effect is Grad.UNKNOWN and isinstance(expr, ast.Call):
                arg = first_or_keyword(expr, "mode")
                if isinstance(arg, ast.Name):
                    params = positional_params(node, method)
                    defaults = param_defaults(node.args)
                    if arg.id in params or arg.id in defaults or any(a.arg == arg.id for a in node.args.kwonlyargs):
                        position = params.index(arg.id) if arg.id in params else None
                        return (None, position, arg.id, defaults.get(arg.id))
    return None


def resolve_function(info: FunctionInfo) -> Grad:
    """Grad state a function body starts in, from its decorators or callers.

    ``DISABLED`` when every module-local call runs with grad disabled,
    ``ENABLED`` when at least one runs with grad enabled, ``UNKNOWN`` when a
    caller's state depends on run-time values, ``INHERITED`` when the callers
    are not all known (no call seen, or the function escapes as a value).
    Computed once per function (callers are complete by then); a call of
    the function from its own body adds nothing, and a cycle through other
    functions sees ``INHERITED`` for the call in progress.
    """
    if info.entry is not Grad.INHERITED:
        return info.entry
    if info.resolved is not None:
        return info.resolved
    info.resolved = Grad.INHERITED  # in progress: recursion sees "unknown"
    result = _from_local_callers(info)
    if result is Grad.INHERITED and info.ask is not None:
        result = info.ask(info)
    info.resolved = result
    return result


def _from_local_callers(info: FunctionInfo) -> Grad:
    if info.escaped or not info.calls:
        return Grad.INHERITED
    # one call with grad settles it: look at the direct states first, and
    # stop at the first caller that resolves to ENABLED (the others may need
    # the project index, which then need not be opened)
    if any(state is Grad.ENABLED for state, _ in info.calls):
        return Grad.ENABLED
    states: Set[Grad] = set()
    for state in _call_states(info, info.calls):
        if state is Grad.ENABLED:
            return state
        states.add(state)
    for state in _call_states(info, info.by_name):
        if state is Grad.ENABLED:
            return state
        if state is not Grad.DISABLED:
            states.add(state)
    if states == {Grad.DISABLED}:
        return Grad.DISABLED
    return Grad.UNKNOWN if Grad.UNKNOWN in states else Grad.INHERITED


def _call_states(
    info: FunctionInfo, calls: Iterable[Tuple[Grad, Optional[FunctionInfo]]]
) -> Iterator[Grad]:
    """The grad state each call of ``info`` runs in, its caller's resolved
    where it inherits one; a call from ``info``'s own body adds nothing (it
    runs as the other callers run it)."""
    for state, caller in calls:
        if caller is info and state is Grad.INHERITED:
            continue
        if state is Grad.INHERITED:
            state = resolve_function(caller) if caller is not None else Grad.INHERITED
        yield state


def effective(state: Grad, function: Optional[FunctionInfo]) -> Grad:
    """Resolve an ``INHERITED`` state through the enclosing function's callers."""
    if state is Grad.INHERITED and function is not None:
        return resolve_function(function)
    return state
