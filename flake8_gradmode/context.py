"""What every rule may ask about the code being visited: ``Context``.

One ``Context`` per linted module.  The engine's traversal keeps it in step
with the node being visited (imports, classes, bindings, the grad stack, the
flow records); rules read it, and once the module is seen, ``finish`` attaches
module-local calls to the functions they reach.
"""

from __future__ import annotations

import ast
import re
from typing import TYPE_CHECKING, Callable, Dict, FrozenSet, List, Optional, Sequence, Set, Tuple, TypeVar, Union

from flake8_gradmode import facts, flow, layout
from flake8_gradmode.names import word_chars
from flake8_gradmode.tracker import (
    SAME_MODULE_METHODS, FunctionInfo, Grad, GradTracker, ImportTable, is_super_call, last_name, positional_params,
    unchained,
)
from flake8_gradmode.settings import Settings

if TYPE_CHECKING:  # the index's code is imported when a question first needs it (``Context.project``)
    from flake8_gradmode.facts import Shape
    from flake8_gradmode.project import Project

#: the only line breaks Python knows (compiled, and cached by ``re``, on first
#: need: flake8 hands the plugin its lines)
_NEWLINE = r"\r\n|\r|\n"


def physical_lines(text: str) -> List[str]:
    """``text`` split as Python numbers its lines, endings kept."""
    parts = re.split(_NEWLINE, text)
    breaks = re.findall(_NEWLINE, text)
    lines = [p + b for p, b in zip(parts, breaks)]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


#: Chained calls that return the same module (``Net().to(device)``).
#: Callees that build a fresh model, in training mode (and
#: ``torchvision.models.<name>``, see ``_model_factory``).
_TIMM_FACTORIES = ("timm.create_model", "timm.models.create_model")
_FACTORY_PREFIXES = ("torchvision.models.", "timm.")


# The names the regular expression
#   ^(torchvision\.models\.[a-z]\w*|timm\.create_model|timm\.models\.create_model)$
# matches (one final line break allowed, as ``$`` allows it): string tests
# cost less than compiling it at import.
def _model_factory(qual: str) -> bool:
    """``torchvision.models.resnet18``, ``timm.create_model``: a callee that
    builds a fresh model, in training mode."""
    if "m" not in qual or not qual.startswith(_FACTORY_PREFIXES):
        return False  # (both prefixes hold an "m": the cheapest first test, which most names fail)
    if qual[-1:] == "\n":
        qual = qual[:-1]
    if qual.startswith("torchvision.models."):
        return "a" <= qual[19:20] <= "z" and word_chars(qual[20:])
    return qual in _TIMM_FACTORIES


#: Methods Python or PyTorch calls for the project: their callers cannot be
#: found by name (``forward`` runs through ``module(x)``).
_IMPLICITLY_CALLED = frozenset({"forward"})
_T = TypeVar("_T")


class Fix:
    """A behaviour-preserving edit of ``node``, by name; the fixer applies it
    with libcst (the finder never imports libcst).

    Safe fixes keep what the code means and only make it run as written:
    ``"add-call"`` (append ``(argument)``), ``"drop-keyword"`` (remove the
    keyword argument named ``argument`` from the call), ``"unwrap-call"``
    (replace the call by its single argument).

    ``unsafe`` fixes change what the code does, on purpose, and run only on
    request (``--unsafe-fixes``): ``"call-method"`` (``node`` becomes
    ``node.argument()``), and the statement edits, where ``node`` is a
    statement and ``{torch}`` in ``argument`` stands for the module's name
    of torch: ``"wrap-no-grad"`` (``with {torch}.no_grad():`` around it),
    ``"decorate-no-grad"`` (a ``def`` gets ``@{torch}.no_grad()``),
    ``"insert-before"``/``"insert-after"`` (the statement ``argument``)."""

    __slots__ = ("kind", "node", "argument", "unsafe")

    def __init__(self, kind: str, node: ast.AST, argument: str = "", unsafe: bool = False) -> None:
        self.kind = kind
        self.node = node
        self.argument = argument
        self.unsafe = unsafe


class Report:
    """A finding before its position is known: the node it points at.

    ``condition`` is called once the whole module has been visited
    (module-local facts such as "every caller runs under no_grad" are known
    then); returning False drops the report."""

    __slots__ = ("node", "code", "message", "condition", "fix")

    def __init__(
        self,
        node: ast.AST,
        code: str,
        message: str,
        condition: Optional[Callable[[], bool]] = None,
        fix: Union[Fix, Callable[[], Fix], None] = None,
    ) -> None:
        self.node = node
        self.code = code
        self.message = message
        self.condition = condition
        #: the edit, or a function that makes it (called only for a kept report)
        self.fix = fix


class ClassInfo:
    """A class whose body is being visited."""

    __slots__ = ("name", "is_module", "frame_depth", "param_attrs", "buffer_attrs", "plain_switches", "value_attrs")

    def __init__(self, name: str, is_module: bool, frame_depth: int, plain_switches: bool = False) -> None:
        self.name = name
        self.is_module = is_module
        #: a class with no base that defines its own ``eval`` or ``train``
        #: method: ``self.eval()`` there runs that method, no mode switch
        self.plain_switches = plain_switches
        #: number of running frames when the class body started
        self.frame_depth = frame_depth
        self.param_attrs: Set[str] = set()
        self.buffer_attrs: Set[str] = set()
        #: ``self.weight = FactorizedTensor.new(...)``: attributes the class
        #: binds to something a call made that is not a parameter
        self.value_attrs: Set[str] = set()


#: Values that are no parameter when bound to ``self.<name>``: calls (``torch.empty(shape)``),
#: constants and containers.
_PLAIN_VALUES = (ast.Call, ast.Constant, ast.List, ast.Tuple, ast.Dict, ast.ListComp, ast.DictComp)


def _fresh(value: ast.expr, name: str) -> bool:
    """Is ``value``, which builds a model, a new one in training mode: no
    ``.eval()`` or ``.train(...)`` in its chain, and not one built around
    what ``name`` held (``model = nn.DataParallel(model)`` keeps its mode)?"""
    expr = value
    while isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr in SAME_MODULE_METHODS:
        if expr.func.attr in ("eval", "train"):
            return False
        expr = expr.func.value
    return not any(isinstance(node, ast.Name) and node.id == name for node in ast.walk(expr))


class Context:
    """What every rule may ask about the node being visited."""

    def __init__(self, settings: Settings, filename: str = "", lines: Sequence[str] = ()) -> None:
        self.settings = settings
        self.filename = filename
        #: the module's physical lines, endings kept (``ast`` numbers them from 1)
        self.lines = lines
        #: the module being analysed (set by the engine)
        self.tree: Optional[ast.AST] = None
        self.imports = ImportTable()
        self.grad = GradTracker(settings.no_grad_decorators)
        self.flow = flow.Flow()
        self.classes: List[ClassInfo] = []
        self.reports: List[Report] = []
        # caller resolution: functions by key, calls by key, names used as values
        self.functions: Dict[Tuple[str, ...], List[FunctionInfo]] = {}
        self.call_sites: Dict[Tuple[str, ...], List[Tuple[flow.Scope, int]]] = {}
        #: (callee key, grad state, calling function, the call when it names
        #: its callee: ``evaluate(...)``, ``self.step(...)``)
        self._calls: List[Tuple[Tuple[str, ...], Grad, Optional[FunctionInfo], Optional[ast.Call]]] = []
        #: (id of the enclosing function's info, name) -> nested defs of that name
        self.nested: Dict[Tuple[int, str], List[FunctionInfo]] = {}
        #: ids of the ``func`` nodes of calls that reach module-local functions
        self._call_names: Set[int] = set()
        #: names used other than by calling them: as bare names, and as
        #: attribute names (``obj.evaluate``) which only methods can be
        self._referenced: Set[str] = set()
        self._referenced_attrs: Set[str] = set()
        #: names used only as the value a flag chooses (``f if use_mlp else g``), with the flag
        self._chosen_by_flag: List[Tuple[str, ast.expr]] = []
        self._super_targets: Dict[Tuple[str, ...], List[Tuple[str, ...]]] = {}
        self._defined: Optional[FrozenSet[str]] = None
        #: class name -> the names of its bases that may be classes of this module
        self.class_bases: Dict[str, List[str]] = {}
        #: id of a function's node -> what it returns, position by position (facts.returned_kinds)
        self.returned: Dict[int, object] = {}
        #: (name, seq of its binding) -> (call, position, width) of ``a, b = f()``
        self.unpacked: Dict[Tuple[str, int], Tuple[ast.Call, int, int]] = {}
        #: the project index as seen from this module: made when first needed;
        #: False when there is none (no project, turned off, or it failed)
        self._project: object = None

    # -- questions rules ask -------------------------------------------------

    def grad_here(self) -> Tuple[Grad, Optional[FunctionInfo]]:
        """The grad state at this point, and the function it may inherit from."""
        return self.grad.state, self.grad.function

    def lookup(self, name: str) -> Optional[facts.Binding]:
        for frame in reversed(self.grad.frames):
            binding = frame.names.get(name)
            if binding is not None:
                return binding  # type: ignore[return-value]
        return None

    def current_class(self) -> Optional[ClassInfo]:
        """The class whose method body is running (``self`` refers to it)."""
        return self.classes[-1] if self.classes else None

    def scopes_of(self, key: Tuple[str, ...]) -> List[flow.Scope]:
        """Scopes of the module-local functions a call with ``key`` reaches."""
        return [scope for k in self._expand(key) for scope in self.flow.by_key.get(k, [])]

    def add_report(self, report: Report) -> None:
        self.reports.append(report)

    def column(self, line: int, offset: int) -> int:
        """``ast``'s UTF-8 byte offset on ``line`` as a character column."""
        if 0 < line <= len(self.lines):
            text = self.lines[line - 1]
            if not text.isascii():
                return len(text.encode("utf-8")[:offset].decode("utf-8", "replace"))
        return offset

    def start_of(self, node: ast.AST) -> Tuple[int, int]:
        line = getattr(node, "lineno", 1)
        return line, self.column(line, getattr(node, "col_offset", 0))

    def end_of(self, node: ast.AST) -> Tuple[int, int]:
        line = getattr(node, "end_lineno", None) or getattr(node, "lineno", 1)
        offset = getattr(node, "end_col_offset", None)
        return line, self.column(line, offset if offset is not None else getattr(node, "col_offset", 0))

    def source_of(self, node: ast.AST) -> str:
        """The text ``node`` spans (empty when its position is unknown)."""
        (line, col), (end_line, end_col) = self.start_of(node), self.end_of(node)
        if not 0 < line <= end_line <= len(self.lines):
            return ""
        if line == end_line:
            return self.lines[line - 1][col:end_col]
        parts = [self.lines[line - 1][col:], *self.lines[line:end_line - 1], self.lines[end_line - 1][:end_col]]
        return "".join(parts)

    # -- the rest of the project ------------------------------------------------

    def project(self) -> Optional[Project]:
        """The project index from this module, or None (loaded on first use)."""
        if self._project is None:
            self._project = False
            settings = self.settings
            if settings.cross_module and self.filename and self.tree is not None:
                from flake8_gradmode.project import open_project  # the index's code, loaded on first need

                found = open_project(
                    self.filename, settings.project_root, settings.no_grad_decorators, self.tree, "".join(self.lines)
                )
                if found is not None:
                    self._project = found
        return self._project or None

    def close(self) -> None:
        """Keep what the project index learnt for the next run (its cache)."""
        if self._project:
            self._project.index.flush_soon()  # type: ignore[attr-defined]

    def _ask(self, question: Callable[[Project], _T], default: _T) -> _T:
        """``question`` put to the project index, or ``default`` when there is
        none; a damaged cache turns the index off, never into an error."""
        try:
            found = self.project()
            return default if found is None else question(found)
        except (RecursionError, Exception):
            self._project = False
            return default

    def _ask_about(
        self, info: FunctionInfo, question: Callable[[Project, str], _T], default: _T,
    ) -> _T:
        """``question`` put to the project index about the function ``info``
        (by its qualified name), or ``default`` when it has none (a closure)
        or there is no index."""
        qual = layout.qualified(info.key) if info.key is not None else None
        if qual is None:
            return default
        return self._ask(lambda found: question(found, qual), default)

    def entry_from_project(
        self, info: FunctionInfo, admits: Optional[Callable[[Shape], bool]] = None
    ) -> Grad:
        """``info``'s grad state from its callers across the project (asked only
        when this module's own callers leave it open).  With ``admits``, only
        the calls whose arguments it admits count (see ``Project.entry_where``)."""
        qual = layout.qualified(info.key) if info.key is not None else None
        if qual is None or info.name in _IMPLICITLY_CALLED or info.name.startswith("__"):
            return Grad.INHERITED  # Python calls these (``Net()``, ``net(x)``), not the project's code
        if admits is None:
            return self._ask(lambda found: found.entry(found.rel, qual), Grad.INHERITED)
        return self._ask(lambda found: found.entry_where(found.rel, qual, admits), Grad.INHERITED)

    def asked_through_by_every_caller(self, info: FunctionInfo) -> bool:
        """Do only functions asking autograd for gradients call ``info``
        (see ``Project.asked_through_by_every_caller``)?  False without an
        index."""
        return self._ask_about(info, lambda found, qual: found.asked_through_by_every_caller(qual), False)

    def call_shapes_elsewhere(
        self, info: FunctionInfo, tests: bool = True, grad_off: bool = True,
    ) -> Optional[List[Shape]]:
        """What the calls of ``info`` in the project's other modules pass
        (see ``facts.Shape``; unit tests' calls too unless ``tests`` is
        false, calls without grad too unless ``grad_off`` is false), or None
        when there is no project index."""
        return self._ask_about(info, lambda found, qual: found.call_shapes(found.rel, qual, tests, grad_off), None)

    def called_from_forward_elsewhere(self, info: FunctionInfo) -> bool:
        """Does a ``forward`` method of another module of the project call
        ``info`` (see ``Project.called_from_forward``)?"""
        return self._ask_about(info, lambda found, qual: found.called_from_forward(found.rel, qual), False)

    def mentioned_elsewhere(self, name: str, module_function: bool = False) -> Optional[bool]:
        """Does another module of the project call, import or use ``name``
        (see ``Project.mentioned_elsewhere``)?  None when there is no project
        index."""
        return self._ask(lambda found: found.mentioned_elsewhere(name, module_function), None)

    def may_hold_my_functions(self, name: str) -> bool:
        """May the project module imported as ``name`` hold this module's
        functions (see ``Project.may_hold_my_functions``)?  True without an
        index."""
        return self._ask(lambda found: found.may_hold_my_functions(name), True)

    def bundled_copy(self) -> Optional[str]:
        """The directory of the copy of another library that holds this
        module (see ``Project.bundled_copy``); None without an index."""
        return self._ask(lambda found: found.bundled_copy(), None)

    def named_outside(self, prefix: str, name: str, module_function: bool = False) -> bool:
        """Does a module outside the directory ``prefix`` name ``name`` as
        this module's (see ``Project.named_outside``)?  True without an index."""
        return self._ask(lambda found: found.named_outside(prefix, name, module_function), True)

    def closed_project(self) -> bool:
        """Are all calls of the project's functions written in its modules
        (see ``Project.closed``), and does another module import this one?
        False without an index."""
        return self._ask(lambda found: found.closed() and found.imported_by_another(), False)

    def overridden_everywhere(self, klass: str, name: str) -> bool:
        """Is the method ``name`` of the abstract class ``klass`` one every
        subclass defines again (see ``Project.overridden_everywhere``)?
        False without an index."""
        return self._ask(lambda found: found.overridden_everywhere(klass, name), False)

    def import_fails(self) -> bool:
        """Does this module stop at an import of a name its project module
        lacks (see ``Project.import_fails``)?  False without an index."""
        return self._ask(lambda found: found.import_fails(), False)

    def import_lacks(self, level: int, target: str) -> bool:
        """Does ``from m import name`` here (``target`` is ``m.name``) raise
        ``ImportError`` (see ``Project.import_lacks``)?  False without an
        index."""
        return self._ask(lambda found: found.import_lacks(level, target), False)

    def stars_lack(self, names: FrozenSet[str]) -> bool:
        """Does every ``*`` import of this module name a module of the project
        that binds none of ``names`` (see ``Project.stars_lack``)?  False
        without an index."""
        return self._ask(lambda found: found.stars_lack(names), False)

    def imported_by_another(self) -> bool:
        """Does another module of the project import this one (see
        ``Project.imported_by_another``)?  False without an index."""
        return self._ask(lambda found: found.imported_by_another(), False)

    def imported_by_nothing(self) -> bool:
        """Is this module one that no other module of an unpackaged project
        imports (see ``Project.imported_by_nothing``)?  False without an index."""
        return self._ask(lambda found: found.imported_by_nothing(), False)

    def trained_by_caller(self, info: FunctionInfo, param: str) -> Optional[str]:
        """Where another module calls ``info`` with its parameter ``param``
        bound to a model in training mode (see ``Project.trained_by_caller``)."""
        qual = layout.qualified(info.key) if info.key is not None else None
        if qual is None or info.name in _IMPLICITLY_CALLED:
            return None
        positional = positional_params(info.node, info.class_name is not None)  # ``self`` is the receiver
        position = positional.index(param) if param in positional else None
        keyword = None if any(a.arg == param for a in info.node.args.posonlyargs) else param
        return self._ask(lambda found: found.trained_by_caller(found.rel, qual, position, keyword), None)

    def method_switches_self_to_eval(self, name: str, klass: Optional[str] = None) -> Optional[bool]:
        """Does every project method called ``name`` (of the class written
        ``klass`` in this module, if given) switch ``self`` to eval mode
        (None: no project index, or no such method in it)?"""
        return self._ask(lambda found: found.method_switches_self_to_eval(name, klass), None)

    def class_freeze(self, written: str) -> Optional[facts.Freeze]:
        """How a project class of another module, written ``written`` here,
        freezes its parameters in ``__init__`` (None: it does not, or no index)."""
        return self._ask(lambda found: found.class_freeze(found.rel, written), None)

    def without_torch_around(self) -> bool:
        """Does neither this module nor any project module that imports it
        name ``torch``, one importing it?  False without an index."""
        return self._ask(lambda found: found.without_torch_around(), False)

    def mode_free_class(self, written: str) -> bool:
        """Is the class written ``written`` here a project class none of whose
        modules shows a layer that depends on the mode (see
        ``Project.mode_free_class``)?  False without an index."""
        return self._ask(lambda found: found.mode_free_class(found.rel, written), False)

    def class_code(self, written: str) -> Optional[Tuple[ast.Module, ast.ClassDef]]:
        """The module tree and definition of the class written ``written``
        here, when another module of the project defines it (see
        ``Project.class_code``); None without an index."""
        return self._ask(lambda found: found.class_code(found.rel, written), None)

    def mode_dependent_class(self, written: str) -> bool:
        """Is the class written ``written`` here a project class one of whose
        modules names dropout or batch normalisation (see
        ``Project.mode_dependent_class``)?  False without an index."""
        return self._ask(lambda found: found.mode_dependent_class(found.rel, written), False)

    def backpropagated_elsewhere(self, info: FunctionInfo) -> bool:
        """Does a function of another module run ``.backward()`` on what a
        call of ``info`` returns (see ``Project.backpropagated_elsewhere``)?"""
        return self._ask_about(info, lambda found, qual: found.backpropagated_elsewhere(found.rel, qual), False)

    def names_class_asking_autograd(self) -> bool:
        """Does this module name a model class of the project that calls
        ``autograd.grad``?  False without an index."""
        return self._ask(lambda found: found.names_class_asking_autograd(), False)

    def names_class_turning_grad_off(self, methods: FrozenSet[str]) -> bool:
        """Does this module name a project class one of whose ``methods``
        turns grad off itself?  False without an index."""
        return self._ask(lambda found: found.names_class_turning_grad_off(methods), False)

    def made_turning_grad_off(self, factory: str, method: str) -> bool:
        """Does the imported function ``factory`` make a model by a run-time
        import, of a package one of whose classes turns grad off itself in
        ``method``?  False without an index."""
        return self._ask(lambda found: found.made_turning_grad_off(factory, method), False)

    def method_backpropagates(self, name: str) -> bool:
        """Does a method ``name`` of a project class backpropagate (see
        ``Project.method_backpropagates``)?  False without an index."""
        return self._ask(lambda found: found.method_backpropagates(name), False)

    def selects_grad_off(self, selectors: FrozenSet[str]) -> bool:
        """Does a project class run its forward without grad when called with
        one of ``selectors`` (``is_eval=True``)?  False without an index."""
        return self._ask(lambda found: found.selects_grad_off(selectors), False)

    def pins_torch_before(self, version: Tuple[int, int]) -> bool:
        """Does the project name only PyTorch versions before ``version``
        (0.4: ``volatile=True`` still disabled grad), or a directory of the
        file's path within it one such version (``Non-Local_pytorch_0.3.1/``,
        beside a ``..._0.4.1/`` copy)?  Without an index, only a directory of
        the path as given says so."""
        rel = self._ask(lambda found: found.rel, None)  # the file's path inside its project
        path = (self.filename or "") if rel is None else rel
        directories = re.split(r"[\\/]", path)[:-1]
        if any(found < version for part in directories for found in _named_torch_versions(part)):
            return True
        return self._ask(lambda found: found.pins_torch_before(version), False)

    def names_only_torch_from(self, version: Tuple[int, int]) -> bool:
        """Does the project name only PyTorch versions from ``version`` on
        (see ``Project.names_only_torch_from``)?  False without an index."""
        return self._ask(lambda found: found.names_only_torch_from(version), False)

    def unless_pinned_before(
        self, version: Tuple[int, int], condition: Optional[Callable[[], bool]]
    ) -> Callable[[], bool]:
        """A report's ``condition`` that also asks, last, that the project not
        name only PyTorch versions before ``version`` (``pins_torch_before``:
        it reads files at the project's root, once per project)."""
        return lambda: (condition is None or condition()) and not self.pins_torch_before(version)

    def forward_asks_autograd(self) -> bool:
        """Does a model's ``forward`` in the project call ``autograd.grad``
        (see ``Project.forward_asks_autograd``)?  False without an index."""
        return self._ask(lambda found: found.forward_asks_autograd(), False)

    def mode_free_everywhere(self) -> bool:
        """Does no module of the project show a layer that depends on the
        mode (see ``Project.mode_free_everywhere``)?  False without an index."""
        return self._ask(lambda found: found.mode_free_everywhere(), False)

    def parameter_free_class(self, written: str) -> bool:
        """Is ``written`` a module class of another project module that holds
        no parameter (see ``facts.parameter_free``)?  False without an index."""
        return self._ask(lambda found: found.parameter_free_class(found.rel, written), False)

    def context_effects(self, written: str) -> str:
        """What ``written``, a context manager of a project module, may do
        to the code under it (see ``facts.context_effects``); ``""``
        without an index."""
        return self._ask(lambda found: found.context_effects(found.rel, written), "")

    def forward_detaches(self, written: str) -> Optional[bool]:
        """Does the ``forward`` of the project class of another module written
        ``written`` here return a value that holds no graph on some path (None:
        no such class, or no index)?"""
        return self._ask(lambda found: found.forward_detaches(found.rel, written), None)

    def loss_method_returns_number(self, written: str, method: str) -> bool:
        """Does the method ``method``, named like a loss, of the project class
        of another module written ``written`` here return only Python numbers
        (see ``Project.loss_method_returns_number``)?  False without an index."""
        return self._ask(lambda found: found.loss_method_returns_number(found.rel, written, method), False)

    def loss_function_returns_number(self, written: str) -> bool:
        """Does the function, named like a loss, that ``written`` names here
        (imported from another module of the project) return only Python
        numbers (see ``Project.loss_function_returns_number``)?  False without
        an index."""
        return self._ask(lambda found: found.loss_function_returns_number(found.rel, written), False)

    def any_forward_detaches(self) -> bool:
        """Does some project class's ``forward`` return a value that holds no
        graph on some path?  False without an index."""
        return self._ask(lambda found: found.any_forward_detaches(), False)

    def trains_elsewhere(self, key: Tuple[str, ...]) -> bool:
        """Does the call with ``key`` (not a function of this module) reach a
        project function of another module whose own body runs a training
        step: an imported function, ``self.name()`` on a method of a base
        class defined there, or a method of an object of a class imported
        from there (``("instance", class, method)``)?"""
        if key[0] == "function":
            klass, name = "", key[1]
            if not self.from_the_project(name.partition(".")[0]):
                return False  # a builtin, or a function of another package (``module.f``: the module's)
        elif key[0] in ("method", "super"):
            klass, name = key[1], key[2]
            if not self._based_elsewhere(klass):
                return False
        elif key[0] == "instance":
            # ``wrapper.train_epoch(loader)`` on ``wrapper = ModelWrapper(...)``,
            # a class another module of the project defines
            klass, name = key[1], key[2]
            if klass in self.class_bases or not self.from_the_project(klass):
                return False
            return self._ask(lambda found: found.trains_instance(klass, name), False)
        else:
            return False
        return self._ask(lambda found: found.trains(klass, name), False)

    def param_runs(self, written: str) -> List[Tuple[str, int]]:
        """What the function ``written`` (an imported name, as called) does
        with its parameters, when another module of the project defines it
        (see ``Project.param_runs``); empty without an index."""
        return self._ask(lambda found: found.param_runs(written), [])

    def imports_numpy_networks(self) -> bool:
        """Does this module, importing no ``torch``, import only project
        modules without it, one of which writes a network in NumPy (see
        ``Project.imports_numpy_networks``)?  False without an index."""
        return self._ask(lambda found: found.imports_numpy_networks(), False)

    def code_for_0_3_in_project(self) -> bool:
        """Does any module of the project hold code for PyTorch 0.3 (see
        ``Project.code_for_0_3_in_project``)?  False without an index."""
        return self._ask(lambda found: found.code_for_0_3_in_project(), False)

    def volatile_flags(self) -> FrozenSet[str]:
        """The names the project hands on as ``volatile=<name>`` (see
        ``Project.volatile_flags``); empty without an index."""
        return self._ask(lambda found: found.volatile_flags(), frozenset())

    def eval_leaves(self, written: str) -> List[int]:
        """The parameters the function ``written`` (an imported name, as
        called) leaves in eval mode, when another module of the project
        defines it (see ``Project.eval_leaves``); empty without an index."""
        return self._ask(lambda found: found.eval_leaves(written), [])

    def builds(self, written: str, call: ast.Call) -> bool:
        """Can ``call`` build the class of another module of the project
        that the imported name ``written`` names (see ``Project.builds``)?
        Yes without an index."""
        return self._ask(lambda found: found.builds(written, call), True)

    def train_leaves(self, written: str) -> List[int]:
        """The parameters the function ``written`` (an imported name, as
        called) leaves in training mode, when another module of the project
        defines it (see ``Project.train_leaves``); empty without an index."""
        return self._ask(lambda found: found.train_leaves(written), [])

    def external_bases(self, klass: str) -> Optional[List[str]]:
        """The bases outside the project at the top of the class's hierarchy
        (see ``Project.external_bases``); None without an index, or when the
        class derives from no class another module of the project defines."""
        if not self._based_elsewhere(klass):
            return None
        return self._ask(lambda found: found.external_bases(klass), None)

    def own_parameters(self, klass: str) -> bool:
        """Does the class get ``parameters()`` from a project class, with no
        base outside the project (see ``Project.own_parameters``)?  False
        without an index."""
        return self._ask(lambda found: found.own_parameters(klass), False)

    def module_elsewhere(self, klass: str) -> bool:
        """Is the class an ``nn.Module`` through a base class another module
        of the project defines (``class CharEmbeddings(TokenEmbeddings)``)?"""
        if not self._based_elsewhere(klass):
            return False
        return self._ask(lambda found: found.is_module(klass), False)

    def _based_elsewhere(self, klass: str) -> bool:
        """Does the class (or a base of it in this module) derive from a class
        another module of the project defines?"""
        todo, seen = [klass], set()
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            for base in self.class_bases.get(name, ()):
                if base in self.class_bases:
                    todo.append(base)
                elif self.from_the_project(base):
                    return True
        return False

    def from_the_project(self, name: str) -> bool:
        """Is ``name`` imported from a module of the project: a relative
        import, or one whose top-level name is a package or module at the
        project's root (or ``src/``) or beside this file?  Decided without
        opening the project index."""
        if not self.imports.is_imported(name) or not self.settings.cross_module or not self.filename:
            return False
        qual = self.imports.resolve(ast.Name(id=name, ctx=ast.Load())) or ""
        if qual.startswith("."):
            return True
        top = qual.split(".", 1)[0]
        return bool(top) and top in layout.local_names(self.filename, self.settings.project_root)

    # -- bookkeeping the tracker does ------------------------------------------

    def bind(self, target: ast.AST, kind: facts.Kind, value: Optional[ast.expr]) -> None:
        if isinstance(target, ast.Name):
            self.bind_name(target.id, kind, value)
        elif isinstance(target, (ast.Tuple, ast.List)):
            elements = list(target.elts)
            if kind is facts.Kind.NAMED_PARAM and len(elements) == 2:
                self.bind(elements[0], facts.Kind.OTHER, None)
                self.bind(elements[1], facts.Kind.PARAM, value)
                return
            values = value.elts if isinstance(value, (ast.Tuple, ast.List)) else None
            if values is not None and len(values) == len(elements) and not any(
                isinstance(e, ast.Starred) for e in (*elements, *values)
            ):
                # ``loss, err = loss.item(), err.item()``: each name its own value
                for element, one in zip(elements, values):
                    self.bind(element, facts.classify(self, one), one)
                return
            if value.__class__ is ast.Call and value.func.__class__ is ast.Name:  # type: ignore[union-attr]
                # ``manager, model, opt = build()``: which name holds a layer
                # ``build`` made is asked when one's ``.weight`` is changed
                for i, element in enumerate(elements):
                    if element.__class__ is ast.Name:
                        self.unpacked[(element.id, self.flow.seq)] = (value, i, len(elements))  # type: ignore
            for element in elements:
                self.bind(element, facts.Kind.OTHER, None)
        elif isinstance(target, ast.Starred):
            self.bind(target.value, facts.Kind.OTHER, None)
        elif isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self":
            if not self.classes:
                return
            if kind is facts.Kind.PARAM:
                self.classes[-1].param_attrs.add(target.attr)
                self.classes[-1].value_attrs.discard(target.attr)
                # this function's own binding, which ``self.<attr> = torch.zeros(...)`` may replace
                self._bind_in_frame("self." + target.attr, kind, value)
            elif target.attr in self.classes[-1].param_attrs and self._computed_from_parameter(value):
                # ``self.kernel = self.kernel.repeat(1, 4)`` after ``self.kernel = self.w[:]``:
                # a new tensor autograd follows, no leaf; editing it in place raises nothing
                self.classes[-1].param_attrs.discard(target.attr)
                self.classes[-1].value_attrs.add(target.attr)
            elif isinstance(value, _PLAIN_VALUES) or (
                isinstance(value, ast.Attribute) and value.attr not in facts.PARAM_ATTRIBUTES
            ) or (isinstance(value, ast.BinOp) and isinstance(value.left, (ast.List, ast.Tuple))):
                # ``torch.empty(shape)``, ``cfg.DATASET.LOSS_WEIGHT``, ``[1.0, 2.0]``, ``[None] * 6``:
                # no parameter (``other.weight`` may be one, tied)
                self.classes[-1].value_attrs.add(target.attr)
                if target.attr in self.classes[-1].param_attrs:
                    # ``if learnable: self.pe = nn.Parameter(...) else: self.pe = torch.zeros(...)``:
                    # from here on in this function the attribute holds the plain tensor
                    self._bind_in_frame("self." + target.attr, kind, value)

    def _computed_from_parameter(self, value: Optional[ast.expr]) -> bool:
        """Is ``value`` a new tensor computed from a parameter: a method that
        neither views nor returns it (``w.repeat(2, 1)``, ``w.clone()``) or
        arithmetic on one (``w * 2``)?"""
        if isinstance(value, ast.BinOp):
            return facts.classify(self, value.left) is facts.Kind.PARAM or (
                facts.classify(self, value.right) is facts.Kind.PARAM
            )
        return (
            isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)
            and value.func.attr not in facts.VIEW_METHODS and value.func.attr not in facts.SAME_VALUE_METHODS
            and not value.func.attr.endswith("_")
            and facts.classify(self, value.func.value) is facts.Kind.PARAM
        )

    def _bind_in_frame(self, name: str, kind: facts.Kind, value: Optional[ast.expr]) -> None:
        """What ``name`` (``self.<attr>``) holds from here on in the running
        function; ``bind_name`` writes the same for a variable, inline, as
        it runs for every binding of the module."""
        self.grad.frame.names[name] = facts.Binding(kind, self.grad.state, value, self.grad.function, self.flow.seq)

    def bind_name(self, name: str, kind: facts.Kind, value: Optional[ast.expr]) -> None:
        self.grad.frame.names[name] = facts.Binding(kind, self.grad.state, value, self.grad.function, self.flow.seq)
        scope = self.flow.scope
        built = unchained(value) if value is not None else None
        if value is not None and self._builds_model(value):
            scope.built_models.add(name)
            scope.rebuilt.setdefault(name, []).append((self.flow.seq, _fresh(value, name)))
        elif name in scope.rebuilt and not (isinstance(built, ast.Name) and built.id == name):
            scope.rebuilt[name].append((self.flow.seq, False))  # rebound, unless ``model = model.to(device)``
        constructed = scope.constructed
        if isinstance(built, ast.Call) and last_name(built.func)[:1].isupper():
            if not (name in constructed and flow.wraps_whole(built, name)):
                constructed[name] = (self.flow.seq, built)  # ``model = InceptionV3([3])``
        elif constructed and not (isinstance(built, ast.Name) and built.id == name):
            constructed.pop(name, None)  # rebound, unless ``model = model.to(device)``

    def _builds_model(self, value: ast.expr) -> bool:
        """``Net()``, ``nn.Linear(2, 2)``, ``torchvision.models.resnet18()``,
        possibly followed by ``.to(device)``: a fresh model, in training mode."""
        value = unchained(value)
        if not isinstance(value, ast.Call):
            return False
        qual = self.imports.resolve(value.func) or ""
        if isinstance(value.func, ast.Name) and value.func.id in self.flow.module_classes:
            return True
        last = qual.rsplit(".", 1)[-1]
        return _model_factory(qual) or (qual.startswith("torch.nn.") and last[:1].isupper())

    def function_key(self, name: str, in_class: bool) -> Optional[Tuple[str, ...]]:
        if in_class:
            return ("method", self.classes[-1].name, name)
        if len(self.grad.frames) == 1:
            return ("function", name)
        return None  # a nested function: its callers are not resolved

    def defines(self, name: str) -> bool:
        """May the module define a function or method ``name`` (its text has
        a ``def name``)?  A fast test before a question about a call of it."""
        defined = self._defined
        if defined is None:
            defined = self._defined = frozenset(_def_names("".join(self.lines)))
        return name in defined

    def call_key(self, func: ast.expr) -> Optional[Tuple[str, ...]]:
        """The module-local function a call may reach, as a key."""
        if isinstance(func, ast.Name):
            return ("function", func.id)
        if not isinstance(func, ast.Attribute):
            return None
        owner = func.value
        if isinstance(owner, ast.Name) and owner.id == "self":
            fn = self.grad.function
            if fn is not None and fn.class_name is not None:
                return ("method", fn.class_name, func.attr)
        if is_super_call(owner):
            fn = self.grad.function
            if fn is not None and fn.class_name is not None:
                return ("super", fn.class_name, func.attr)  # the method of a base class
        return None

    def _expand(self, key: Tuple[str, ...]) -> List[Tuple[str, ...]]:
        if key[0] != "super":
            return [key]
        cached = self._super_targets.get(key)
        if cached is None:
            cached = self._base_method(key[1], key[2])
            self._super_targets[key] = cached
        return cached

    def _base_method(self, class_name: str, method: str) -> List[Tuple[str, ...]]:
        """The method ``super().method`` reaches from ``class_name``: the first
        module-local base class (depth first, left to right) that defines it."""
        todo = list(reversed(self.class_bases.get(class_name, ())))
        seen = {class_name}
        while todo:
            base = todo.pop()
            if base in seen:
                continue
            seen.add(base)
            key = ("method", base, method)
            if key in self.functions:
                return [key]
            todo.extend(reversed(self.class_bases.get(base, ())))
        return []

    def nested_def(self, name: str, caller: Optional[FunctionInfo]) -> Optional[List[FunctionInfo]]:
        """The nested defs a bare-name call in ``caller`` reaches, by Python's
        scoping: the caller's own, then its enclosing functions'."""
        function = caller
        while function is not None:
            found = self.nested.get((id(function), name))
            if found is not None:
                return found
            function = function.parent
        return None

    def finish(self) -> None:
        """Attach module-local calls to the functions they call."""
        for name, flag in self._chosen_by_flag:
            if not flow.false_test(self, flag):
                self._referenced.add(name)
        for key, infos in self.functions.items():
            used = key[-1] in self._referenced or (key[0] == "method" and key[-1] in self._referenced_attrs)
            if len(infos) > 1 or used:
                for info in infos:
                    info.escaped = True
        for (_, name), infos in self.nested.items():
            if len(infos) > 1 or name in self._referenced:
                for info in infos:
                    info.escaped = True
        methods: Dict[str, List[FunctionInfo]] = {}
        for key, infos in self.functions.items():
            if key[0] == "method":
                methods.setdefault(key[2], []).extend(infos)
        legacy = flow.legacy_spans(self)
        for key, state, caller, node in self._calls:
            if legacy and node is not None and state is not Grad.DISABLED and flow.in_legacy_branch(self, node.lineno):
                continue  # ``if torch_ver == "0.3":``: no release installed today runs the call
            if key[0] == "by-name":
                for info in methods.get(key[1], ()):
                    info.by_name.append((state, caller))
                continue
            if self.nested and key[0] == "function":
                inner = self.nested_def(key[1], caller)
                if inner is not None:  # a closure of the caller's (or an enclosing) function
                    for info in inner:
                        info.calls.append((state, caller))
                    continue
            for target in self._expand(key):
                for info in self.functions.get(target, ()):
                    if node is not None and target[0] == "function" and flow.never_starts(info, node):
                        continue  # raises ``TypeError``: the function never starts there
                    info.calls.append((state, caller))
        for key in [k for k in self.call_sites if k[0] == "super"]:
            for target in self._expand(key):
                self.call_sites.setdefault(target, []).extend(self.call_sites[key])


#: The name a ``def`` statement defines, where ``def`` starts a word
#: (tested by ``_def_names``: a pattern that starts with ``\b`` is tried at
#: every position of the text, thirty times slower than one that starts
#: with the literal ``def``).
_DEF_NAME = re.compile(r"def[\s\\]+(\w+)")


def _def_names(text: str) -> List[str]:
    r"""What ``re.findall(r"\bdef[\s\\]+(\w+)", text)`` finds."""
    found: List[str] = []
    search = _DEF_NAME.search
    match = search(text)
    while match is not None:
        start = match.start()
        before = text[start - 1] if start else " "
        if before.isalnum() or before == "_":  # ``undef x``: no ``def`` here; look on from the next character
            match = search(text, start + 1)
            continue
        found.append(match.group(1))
        match = search(text, match.end())
    return found


#: A PyTorch release in a directory's name: ``pytorch_0.3.1``, ``torch0.4``
#: (searched with re.IGNORECASE; compiled, and cached by ``re``, on first need).
_TORCH_IN_NAME = r"(?<![a-z])(?:py)?torch[\s_-]*v?(\d+)\.(\d+)"


def _named_torch_versions(name: str) -> List[Tuple[int, int]]:
    """The PyTorch releases ``name`` (one directory of a path) names."""
    return [(int(major), int(minor)) for major, minor in re.findall(_TORCH_IN_NAME, name, re.IGNORECASE)]
