"""The project index: grad mode across the modules of one project.

A function's body runs in whatever grad mode its callers run it in.  Inside
one module the engine resolves that itself (``tracker.resolve_function``);
when the callers are not all in the module, it asks this index, which knows
every module of the project through a small summary made from its ``ast``:

* imports (absolute, relative, aliased), classes and their bases;
* functions and methods, with the grad effect of their decorators;
* every call, keyed by the last part of the called name, with the grad state
  at the call, the function making it and the constants it passes;
* the functions whose own body runs a training step;
* the calls that pass a model in training mode: one the calling function
  switched to it (``model.train()``) or trains (``model(x)`` in a function
  that runs a training step) before the call, in a function with no
  ``.eval()`` anywhere: the called function runs that model in training mode;
* names used other than by calling them (a function passed as a value may be
  called from anywhere, so its callers are unknown).

The answer for a function is ``DISABLED`` when every call in the project runs
without grad (directly, or through callers that do, across modules, through
``self.method`` in base and derived classes and ``super()``); ``ENABLED`` when
one runs with grad; otherwise the engine's own answer stands.

The project is the nearest ancestor of the linted file that holds
``pyproject.toml``, ``setup.cfg``, ``setup.py`` or ``.git``.  Summaries are
cached in ``.gradmode_cache/`` there, one file keyed by each module's path,
size and modification time, written atomically; a cache that cannot be read or
written is ignored.  Nothing is loaded until a rule's answer depends on
another module.  The linted text itself (an editor's unsaved buffer) replaces
its file's summary.
"""

from __future__ import annotations

import ast
import atexit
import itertools
import marshal
import os
import re
import sys
import tempfile
import time
import tokenize
import weakref
from typing import TYPE_CHECKING, BinaryIO, Callable, Dict, FrozenSet, Iterator, List, Optional, Set, Tuple, Union

from flake8_gradmode import __version__
from flake8_gradmode.facts import (
    DETACHING_NAMES, GRAD_OFF_NAMES, adapting_functions, asks_autograd, attribute_values, backprop_calls, binds,
    call_shape, context_effects, forward_detaches, freezing_functions, grad_off_decorator, grad_off_selectors,
    hooks_every_run, init_freeze, loss_named, methods_turning_grad_off, names_training_step, parameter_free,
    reads_loss_by_index, returns_number, tests_type_is_variable,
)
from flake8_gradmode.layout import PACKAGING, TooMany, find_root, module_name, scan
from flake8_gradmode.names import BUNDLED_LIBRARIES, OTHER_FRAMEWORKS, TEST_FRAMEWORKS, TORCHVISION_DATA, is_test_file
from flake8_gradmode.tracker import (
    Grad, GradTracker, ImportTable, child_nodes, dotted, is_super_call, last_name, statements_in, switches_to_eval,
    switches_to_train, unchained, unsubscripted,
)

if TYPE_CHECKING:
    from flake8_gradmode.facts import Freeze, Shape

CACHE_DIR = ".gradmode_cache"
#: files Python or a tool runs without an import
_NOT_IMPORTED = frozenset({"setup.py", "conftest.py", "__main__.py", "manage.py"})
#: calls that import a module by a name computed at run time
_DYNAMIC_IMPORTS = frozenset({"import_module", "__import__", "run_module", "run_path", "exec", "load_source",
                              "spec_from_file_location", "SourceFileLoader", "import_string", "locate"})
#: A project with more Python files than this is not indexed (the per-file
#: analysis still runs): indexing it would cost more than a save should.
MAX_FILES = 5000
#: Seconds between two writes of the cache by one process (see ``Index.flush_soon``).
FLUSH_INTERVAL = 1.0
#: Decorators that leave a function's callers where they are.
_PLAIN_DECORATORS = frozenset({
    "staticmethod", "classmethod", "property", "cached_property", "abstractmethod", "wraps",
    "override", "overload", "lru_cache", "cache", "setter", "getter", "deleter", "unused", "ignore",
})
_CODE = {Grad.DISABLED: "d", Grad.ENABLED: "e", Grad.UNKNOWN: "u", Grad.INHERITED: "i"}
_STATE = {v: k for k, v in _CODE.items()}

#: Words of packaging files that build or generate modules into the package
#: (an extension, a version file written at build time, custom build steps).
_BUILDS = re.compile(
    r"ext_modules|Extension|cmake|build_ext|cython|cffi|pybind|setuptools_scm|write_to|version_file|"
    r"maturin|cmdclass|build_py|hatch|scikit-build|mesonpy", re.IGNORECASE
)

if TYPE_CHECKING:  # annotations only: making typing aliases at import costs time
    #: One summary, plain data for ``marshal``: imports, classes, functions, calls, names.
    Summary = Dict[str, object]
    #: (module path, qualified name in the module: ``f`` or ``Class.method``)
    Target = Tuple[str, str]
    #: One call: as written, grad state code, calling function (``""`` module
    #: level, ``"?"`` unknown, else its qualified name), enclosing class, shape.
    Call = Tuple[str, str, str, str, Shape]
    #: A call that passes a model in training mode: as written, calling
    #: function, enclosing class, and the argument's slot (position or keyword).
    TrainedCall = Tuple[str, str, str, Union[int, str]]

#: Bumped whenever the layout of the cache or of a summary changes, so old
#: caches are not read.
_FORMAT = 59
#: Statements whose blocks may leave another grad mode behind them.
_BLOCK_STATEMENTS = frozenset({
    ast.If, ast.For, ast.AsyncFor, ast.While, ast.Try, ast.With, ast.AsyncWith, *(
        getattr(ast, name) for name in ("TryStar", "Match") if hasattr(ast, name)
    ),
})
#: Calls that make a training loop of a framework's (ignite's), whose
#: ``run(loader)`` then steps the optimizer: the function that makes one trains.
_TRAINER_FACTORIES = frozenset({"create_supervised_trainer"})
_HANDLERS = frozenset({ast.ExceptHandler, *([ast.match_case] if hasattr(ast, "match_case") else [])})
_LOOPS = (ast.For, ast.AsyncFor, ast.While, ast.ListComp, ast.SetComp, ast.DictComp)
#: Nodes a summary has nothing to note of and nothing inside to visit:
#: constants, ``Load``/``Store``/``Del`` and operators.
_SUMMARY_LEAVES = frozenset(
    {ast.Constant}.union(*(
        base.__subclasses__() for base in (ast.expr_context, ast.operator, ast.boolop, ast.cmpop, ast.unaryop)
    ))
)


# --- summaries ----------------------------------------------------------------


class _Summarizer:
    """One walk of a module's tree, recording what the index needs."""

    def __init__(self, tree: ast.Module, no_grad_decorators: Tuple[str, ...]) -> None:
        #: the module's functions decorated with ``torch.enable_grad``
        self.adapting = adapting_functions(tree)
        self.imports: Dict[str, Tuple[int, str]] = {}
        #: ``from module import *``: (level, module)
        self.star_imports: List[Tuple[int, str]] = []
        self.table = ImportTable()
        self.grad = GradTracker(no_grad_decorators)
        self.classes: Dict[str, List[str]] = {}
        self.functions: Dict[str, str] = {}
        self.calls: Dict[str, List[Call]] = {}
        self.names: Set[str] = set()
        self.attrs: Set[str] = set()
        #: functions and methods whose own body runs a training step
        self.trainers: Set[str] = set()
        #: names the running function (or module) bound to ``Class(...)``
        self.built: Dict[str, str] = {}
        #: the running class's attributes bound to ``Class(...)`` (``_built_members``)
        self.members: Dict[str, str] = {}
        #: calls passing a model in training mode (see ``TrainedCall``), by called name
        self.trained_calls: Dict[str, List[TrainedCall]] = {}
        #: methods whose own body switches ``self`` to eval mode
        self.self_evals: Set[str] = set()
        #: functions and methods by qualified name: how many arguments a call
        #: must pass (``self`` not counted)
        self.arities: Dict[str, int] = {}
        #: classes whose ``__init__`` switches off grad for their parameters
        self.frozen_classes: Dict[str, Freeze] = {}
        #: classes whose ``forward`` may return a value that holds no graph
        self.detaching_classes: List[str] = []
        #: the functions and methods named like a loss that return only Python numbers
        self.number_losses: List[str] = []
        #: model classes one of whose methods calls ``autograd.grad``
        self.autograd_classes: List[str] = []
        #: the module's top-level classes, for ``_grad_off_methods``
        self._class_nodes: List[ast.ClassDef] = []
        self._attributes: Dict[str, Dict[str, list]] = {}
        self._tree = tree
        #: the classes each class of the module builds into its attributes
        self._parts: Dict[str, Set[str]] = {}
        #: functions and methods by qualified name: the calls (as written)
        #: whose results reach a ``.backward()`` there
        self.backprops: Dict[str, List[str]] = {}
        self._backward_in: Set[str] = set()
        #: the running function's (or module's) receivers of ``.train()`` so
        #: far, the names it called (``net(x)``: a model it may train), whether
        #: it has an ``.eval()`` anywhere, and its candidate calls (with
        #: whether the model was only called, not switched)
        self._trained: Set[str] = set()
        self._ran: Set[str] = set()
        self._evals = False
        self._pending: List[Tuple[str, TrainedCall, bool]] = []
        self._called: Set[int] = set()
        #: module functions that call a parameter, once and with the grad
        #: mode of their caller, and differentiate nothing themselves:
        #: qualified name -> [(parameter, position)]
        self.param_runs: Dict[str, List[Tuple[str, int]]] = {}
        #: functions and methods whose own body calls ``autograd.grad``
        self.askers: Set[str] = set()
        #: module functions that switch parameters to eval mode and nothing
        #: to training mode: qualified name -> those parameters' positions
        self.eval_leavers: Dict[str, List[int]] = {}
        #: module functions that switch parameters to training mode and
        #: nothing to eval mode: qualified name -> those parameters' positions
        self.train_leavers: Dict[str, List[int]] = {}
        self._eval_receivers: Set[str] = set()
        self._trains_any = False
        #: names handed on as ``volatile=<name>`` (``Variable(x, volatile=evaluation)``,
        #: ``volatile=self.evaluation``)
        self.volatile_flags: Set[str] = set()
        #: what each run-time import may load: the literal start of the module
        #: name it is handed (``"models."`` of ``import_module("models." + name)``),
        #: ``""`` when nothing of it is written (any module)
        self.dynamic_imports: List[str] = []
        #: does the module test ``type(h) == Variable`` or read ``loss.data[0]`` (code for 0.3)
        self.for_0_3 = False
        #: the running module function's positional parameters, the grad
        #: state codes of its calls of each (``""`` for a call in a loop),
        #: and how many loops enclose the code being walked
        self._params: Dict[str, int] = {}
        self._param_calls: Dict[str, List[str]] = {}
        self._loops = 0
        #: did the statement just visited leave another grad mode behind it (see ``walk``)?
        self._leaks = False
        #: imports inside functions (``from .dim2 import Net as Seg`` in a
        #: factory): name -> every target it is bound to there
        self._local_imports: Dict[str, Set[Tuple[int, str]]] = {}
        #: names the module's top-level code binds other than by ``def``,
        #: ``class`` and ``import`` (``x = ...``, ``for x in``), and the names
        #: functions declare ``global``
        self.defined: Set[str] = set()
        #: ``from m import name`` statements the module's body runs whatever
        #: happens (not under ``if``/``try``): (level, dotted ``m.name``)
        self.from_imports: List[Tuple[int, str]] = [
            (level, target) for node in tree.body if isinstance(node, ast.ImportFrom)
            for _, level, target in _bindings(node)
        ]
        #: ``import m`` statements the module's body runs whatever happens: ``m``
        self.plain_imports: List[str] = [
            alias.name for node in tree.body if isinstance(node, ast.Import) for alias in node.names
        ]
        self._collect_imports(tree.body)

    def _collect_imports(self, body: List[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Import):
                self.table.add_import(node)
                for local, level, target in _bindings(node):
                    self.imports[local] = (level, target)
            elif isinstance(node, ast.ImportFrom):
                self.table.add_import_from(node)
                for local, level, target in _bindings(node):
                    self.imports[local] = (level, target)
                if node.module and any(alias.name == "*" for alias in node.names):
                    self.star_imports.append((node.level, node.module))
            elif isinstance(node, (ast.If, ast.Try)):
                self._collect_imports(node.body)
                self._collect_imports(node.orelse)
                for handler in getattr(node, "handlers", ()):
                    self._collect_imports(handler.body)
                self._collect_imports(getattr(node, "finalbody", []))

    def _local_import(self, node: Union[ast.Import, ast.ImportFrom]) -> None:
        for local, level, target in _bindings(node):
            self._local_imports.setdefault(local, set()).add((level, target))

    def summary(self) -> Summary:
        # a name imported inside functions resolves as a module import would,
        # unless the module imports it at top level, or differently elsewhere
        for local, targets in self._local_imports.items():
            if local not in self.imports and len(targets) == 1:
                self.imports[local] = next(iter(targets))
        return {
            "i": self.imports,
            "s": self.star_imports,
            "c": self.classes,
            "f": self.functions,
            "k": self.calls,
            "n": _joined(self.names),
            "a": _joined(self.attrs),
            "t": self._trainers(),
            "m": self.trained_calls,
            "v": self.self_evals,
            "z": self.frozen_classes,
            "r": self.detaching_classes,
            "N": self.number_losses,
            "b": self.backprops,
            "g": self._with_asking_parts(),
            "p": self.arities,
            "u": self.param_runs,
            "q": sorted(self.askers | self._hooking_forwards()),
            "w": self._grad_off_methods(),
            "l": self._grad_off_selectors(),
            "e": self.eval_leavers,
            "j": self.train_leavers,
            "o": sorted(self.volatile_flags),
            "d": self._defined(),
            "x": self.from_imports,
            "X": self.plain_imports,
            "h": self._contexts(),
            "y": self._parameter_free_classes(),
            "Y": self.dynamic_imports,
            "B": self.for_0_3,
        }

    def _attribute_values(self, klass: str) -> Dict[str, list]:
        """``attribute_values`` of the module's class ``klass``, worked out once."""
        if klass not in self._attributes:
            self._attributes[klass] = attribute_values(self._tree, klass) if klass else {}
        return self._attributes[klass]

    def _hooking_forwards(self) -> Set[str]:
        """The ``forward`` methods of the module's top-level classes that
        register a gradient hook at every run (``facts.hooks_every_run``):
        the model needs grad to run, as one asking autograd does."""
        if "register_hook" not in self.calls:
            return set()
        return {
            f"{node.name}.{method.name}" for node in self._class_nodes for method in node.body
            if isinstance(method, (ast.FunctionDef, ast.AsyncFunctionDef)) and method.name == "forward"
            and hooks_every_run(method)
        }

    def _parameter_free_classes(self) -> List[str]:
        """The module's top-level ``nn.Module`` classes that hold no parameter
        (``facts.parameter_free``); read only in a module that registers a
        buffer."""
        if "register_buffer" not in self.calls:
            return []
        classes = {node.name: node for node in self._class_nodes}
        return sorted(name for name, node in classes.items() if parameter_free(node, classes))

    def _contexts(self) -> Dict[str, str]:
        """The module's top-level classes and functions that are context
        managers which may turn grad off or switch modes, with what they may
        do (``facts.context_effects``); read only in a module that names
        ``__enter__`` or ``contextmanager`` at all."""
        if "contextmanager" not in self.names and "contextmanager" not in self.attrs and not any(
            "__enter__" == name.rpartition(".")[2] for name in self.functions
        ):
            return {}
        found = {}
        freezers = freezing_functions(self._tree)
        for node in self._tree.body:
            if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                effects = context_effects(node, freezers)
                if effects:
                    found[node.name] = effects
        return found

    def _defined(self) -> str:
        """``defined`` joined (see ``_joined``), or ``"?"`` when the module
        may bind names no statement spells: a module-level ``__getattr__``,
        ``globals()``, ``vars()``, ``exec`` or ``sys.modules``.  (What its
        ``*`` imports bind is asked of the modules they name.)"""
        if "__getattr__" in self.functions or "modules" in self.attrs or any(
            name in self.calls for name in ("globals", "vars", "exec", "setattr")
        ):
            return "?"
        return _joined(self.defined)

    def _grad_off_reader(self) -> Optional[Callable[[ast.expr], bool]]:
        """Does a ``with`` item or decorator turn grad off, or may it, as the
        engine's grad tracker reads one?  None in a module without classes
        or that names no grad-disabling context at all: no class of it
        turns grad off."""
        if not self._class_nodes or not any(
            name in self.calls or name in self.attrs or name in self.names for name in GRAD_OFF_NAMES
        ):
            return None
        return lambda expr: self.grad.effect(self.table, expr) in (Grad.DISABLED, Grad.UNKNOWN)

    def _grad_off_methods(self) -> Dict[str, List[str]]:
        """``facts.methods_turning_grad_off`` of each top-level class."""
        turns_off = self._grad_off_reader()
        if turns_off is None:
            return {}
        decorator = grad_off_decorator(self._tree, turns_off)
        found = {}
        for node in self._class_nodes:
            turning = methods_turning_grad_off(node, turns_off, decorator)
            if turning:
                found[node.name] = turning
        return found

    def _grad_off_selectors(self) -> List[str]:
        """``facts.grad_off_selectors`` of the module's top-level classes."""
        turns_off = self._grad_off_reader()
        if turns_off is None:
            return []
        return sorted({found for node in self._class_nodes for found in grad_off_selectors(node, turns_off)})

    def _with_asking_parts(self) -> List[str]:
        """The model classes that call ``autograd.grad``, and the classes of
        the module built of one (``self.field = Field()`` in a renderer)."""
        found = set(self.autograd_classes)
        grown = True
        while grown:
            grown = False
            for name, parts in self._parts.items():
                if name not in found and parts & found:
                    found.add(name)
                    grown = True
        return sorted(found)

    def _trainers(self) -> Set[str]:
        """The functions and methods whose own body runs a training step, and
        those that call one of them here (``train_by_chain_thaw`` calling
        ``fit_model``, ``self.fit()``): a caller elsewhere trains through them."""
        callers: Dict[str, Set[str]] = {}
        for last, calls in self.calls.items():
            for written, _, caller, klass, _ in calls:
                if caller in ("", "?"):
                    continue
                if written == last and last in self.functions:
                    callee = last  # a function of the module
                elif klass and written == f"self.{last}" and f"{klass}.{last}" in self.functions:
                    callee = f"{klass}.{last}"
                else:
                    continue
                callers.setdefault(callee, set()).add(caller)
        found, todo = set(self.trainers), list(self.trainers)
        while todo:
            for caller in callers.get(todo.pop(), ()):
                if caller not in found:
                    found.add(caller)
                    todo.append(caller)
        return found

    # state: the grad state code; caller: "" module level, "?" unknown, else qual
    def walk(self, nodes: List[ast.AST], state: Grad, caller: str, klass: str) -> bool:
        """Note the block's statements; does it end in another grad mode
        than it began (``torch.set_grad_enabled(True)`` in it)?  That mode is
        process state: it outlives the block (see ``GradTracker.leave_block``)."""
        start = state
        by_hand = False
        for node in nodes:
            self._leaks = False
            self.visit(node, state, caller, klass)
            if type(node) is ast.Expr:
                effect = self.grad.statement_effect(self.table, node)  # type: ignore[arg-type]
                if effect is not None:
                    state = effect
                    by_hand = by_hand or self.grad.sets_by_hand(self.table, node)  # type: ignore[arg-type]
            elif self._leaks and type(node) in _BLOCK_STATEMENTS:
                state = Grad.UNKNOWN  # ``if flag: torch.set_grad_enabled(True)``: known only at run time
                by_hand = True
        return by_hand and state is not start

    def visit(self, node: ast.AST, state: Grad, caller: str, klass: str) -> None:
        kind = type(node)
        if kind in _SUMMARY_LEAVES:
            return  # a constant, ``Load``, an operator: nothing to note, nothing inside
        if kind is ast.Call:
            self._call(node, state, caller, klass)  # type: ignore[arg-type]
            return  # it visits the call's parts itself
        elif kind is ast.Name:
            if isinstance(node.ctx, ast.Load):  # type: ignore[attr-defined]
                if id(node) not in self._called:
                    self.names.add(node.id)  # type: ignore[attr-defined]
            elif caller == "" and not klass:
                self.defined.add(node.id)  # type: ignore[attr-defined]
            return
        elif kind is ast.Attribute:
            if id(node) not in self._called:
                self.attrs.add(node.attr)  # type: ignore[attr-defined]
            self.visit(node.value, state, caller, klass)  # type: ignore[attr-defined]
            return
        elif kind in (ast.FunctionDef, ast.AsyncFunctionDef):
            self._function(node, state, caller, klass)  # type: ignore[arg-type]
            return
        elif kind is ast.ClassDef:
            self._class(node, state, caller)  # type: ignore[arg-type]
            return
        elif kind in (ast.Import, ast.ImportFrom):
            if caller != "":
                self._local_import(node)  # type: ignore[arg-type]
            return
        elif kind in (ast.With, ast.AsyncWith):
            for item in node.items:  # type: ignore[attr-defined]
                self.visit(item, state, caller, klass)
            inner = state
            for item in node.items:  # type: ignore[attr-defined]
                effect = self.grad.effect(self.table, item.context_expr)
                if effect is not None:
                    inner = effect
            leaks = self.walk(node.body, inner, caller, klass)  # type: ignore[attr-defined]
            self._leaks = leaks and inner is state  # a grad context puts back the mode it found
            return
        elif kind is ast.Assign:
            for child in child_nodes(node):
                self.visit(child, state, caller, klass)
            self._bound(node)  # type: ignore[arg-type]
            return
        elif kind in (ast.Lambda, ast.GeneratorExp):
            for child in child_nodes(node):
                self.visit(child, Grad.INHERITED, "?", klass)
            return
        elif kind in _LOOPS:
            self._loops += 1
            self._children(node, state, caller, klass)
            self._loops -= 1
            return
        elif kind is ast.Global:
            self.defined.update(node.names)  # type: ignore[attr-defined]
            return
        elif kind is ast.Compare and not self.for_0_3:
            self.for_0_3 = tests_type_is_variable(node)  # type: ignore[arg-type]
        elif kind is ast.Subscript and not self.for_0_3:
            self.for_0_3 = reads_loss_by_index(node)  # type: ignore[arg-type]
        self._children(node, state, caller, klass)

    def _children(self, node: ast.AST, state: Grad, caller: str, klass: str) -> None:
        """Visit ``node``'s parts; its blocks of statements as ``walk`` does,
        so ``torch.set_grad_enabled(False)`` in an ``if __name__ ==
        "__main__":`` block holds for the calls after it."""
        leaks = False
        for name in node._fields:
            value = getattr(node, name, None)
            if value.__class__ is list:
                if value and isinstance(value[0], ast.stmt):
                    leaks = self.walk(value, state, caller, klass) or leaks
                    continue
                for child in value:
                    if isinstance(child, ast.AST):
                        self.visit(child, state, caller, klass)
                        # an ``except`` or ``case`` block
                        leaks = leaks or (self._leaks and type(child) in _HANDLERS)
            elif isinstance(value, ast.AST):
                self.visit(value, state, caller, klass)
        self._leaks = leaks

    def _call(self, node: ast.Call, state: Grad, caller: str, klass: str) -> None:
        func = node.func
        self._called.add(id(func))
        if isinstance(func, ast.Attribute):
            owner = func.value
            if is_super_call(owner):
                written = f"super.{func.attr}"
            elif isinstance(owner, ast.Name) and owner.id in self.built:
                written = f"{self.built[owner.id]}.{func.attr}"  # ``net = Net(); net.load()``: Net's method
            elif (
                isinstance(owner, ast.Attribute) and isinstance(owner.value, ast.Name) and owner.value.id == "self"
                and owner.attr in self.members
            ):
                written = f"{self.members[owner.attr]}.{func.attr}"  # ``self.net = Net()`` ... ``self.net.load()``
            else:
                written = dotted(func) or f"?.{func.attr}"
            last = func.attr
        elif isinstance(func, ast.Name):
            written = last = func.id
            if last in self._params and caller not in ("", "?"):
                self._param_calls.setdefault(last, []).append("" if self._loops else _CODE[state])
        else:
            written = last = ""
        if last:
            self.calls.setdefault(last, []).append((written, _CODE[state], caller, klass, call_shape(node)))
            for kw in node.keywords:
                if kw.arg == "volatile" and isinstance(kw.value, (ast.Name, ast.Attribute)):
                    self.volatile_flags.add(last_name(kw.value))  # ``evaluation``, ``self.evaluation``
            if last in _DYNAMIC_IMPORTS:
                self.dynamic_imports.append(
                    _module_name_start(node.args[0]) if last in _BY_MODULE_NAME and node.args else ""
                )
            if last == "grad" and caller not in ("", "?") and (
                written.endswith("autograd.grad") or self.imports.get("grad", (0, ""))[1] == "torch.autograd.grad"
            ):
                self.askers.add(caller)
            if caller not in ("", "?") and (names_training_step(func) or last in _TRAINER_FACTORIES):
                self.trainers.add(caller)
            if last == "backward" and caller not in ("", "?"):
                self._backward_in.add(caller)
            if last in ("eval", "train"):
                self._switch(node, last, caller, klass)
            elif caller != "?":
                if self._trained or self._ran:
                    self._passes_trained(node, written, last, caller, klass)
                if written == dotted(func):
                    self._ran.add(written)
        for child in child_nodes(node):
            self.visit(child, state, caller, klass)

    def _function(self, node: ast.FunctionDef, state: Grad, caller: str, klass: str) -> None:
        for deco in node.decorator_list:
            self.visit(deco, state, caller, klass)
        for default in [*node.args.defaults, *(d for d in node.args.kw_defaults if d is not None)]:
            self.visit(default, state, caller, klass)
        entry = Grad.INHERITED
        code = "i"
        for deco in node.decorator_list:
            effect = self.grad.effect(self.table, deco)
            if effect is not None:
                entry, code = effect, _CODE[effect]
            elif _decorator_name(deco) not in _PLAIN_DECORATORS and code == "i":
                code = "x"  # an unknown decorator may call it from anywhere
        if caller == "" and not klass:
            qual = node.name
        elif caller == "" and klass:
            qual = f"{klass}.{node.name}"
        else:
            qual = ""
        if qual:
            self.functions[qual] = code
            self.arities[qual] = _arity(node, method=bool(klass))
            if loss_named(node.name) and returns_number(node, lambda: self._attribute_values(klass)):
                self.number_losses.append(qual)  # ``def get_loss(self): return self.acc.item()``
        body_caller = qual or "?"
        if code == "x":
            body_caller = "?"
        outer, self.built = self.built, {}
        modes = self._trained, self._ran, self._evals, self._pending, self._eval_receivers, self._trains_any
        self._trained, self._ran, self._evals, self._pending = set(), set(), False, []
        self._eval_receivers, self._trains_any = set(), False
        params = self._params, self._param_calls, self._loops
        self._params = {a.arg: i for i, a in enumerate(node.args.posonlyargs + node.args.args)} if (
            qual and not klass and code == "i") else {}
        self._param_calls, self._loops = {}, 0
        self.walk(node.body, entry, body_caller, klass)
        if qual and qual in self._backward_in:
            self.backprops[qual] = sorted(backprop_calls(node))
        if self._param_calls and qual not in self._backward_in and qual not in self.trainers \
                and qual not in self.askers:  # a saliency map: it differentiates what it runs
            runs = [(name, self._params[name]) for name, states in self._param_calls.items()
                    if set(states) == {"i"} and name not in self._trained]
            if runs:
                self.param_runs[qual] = runs
        if self._params and self._eval_receivers and not self._trains_any and qual not in self._backward_in \
                and qual not in self.trainers:
            left = sorted(self._params[name] for name in self._eval_receivers if name in self._params)
            if left:
                self.eval_leavers[qual] = left
        if self._params and self._trained and not self._evals:
            left = sorted(self._params[name] for name in self._trained if name in self._params)
            if left:
                self.train_leavers[qual] = left
        self._params, self._param_calls, self._loops = params
        self.built = outer
        self._keep_trained_calls(body_caller)
        self._trained, self._ran, self._evals, self._pending, self._eval_receivers, self._trains_any = modes

    def _switch(self, node: ast.Call, method: str, caller: str, klass: str) -> None:
        """``x.train()`` / ``x.train(True)``: ``x`` is in training mode for
        the calls after it; ``x.eval()`` / ``x.train(False)``: the function
        switches modes both ways, and none of its calls is taken as evidence
        (and a method switching ``self`` is recorded)."""
        receiver = dotted(node.func.value) if isinstance(node.func, ast.Attribute) else None
        if switches_to_eval(node, method):
            self._evals = True
            if receiver:
                self._eval_receivers.add(receiver)
            if receiver == "self" and klass and caller not in ("", "?"):
                self.self_evals.add(caller)
        elif method == "train":
            self._trains_any = True
            if receiver and switches_to_train(node):
                self._trained.add(receiver)

    def _passes_trained(self, node: ast.Call, written: str, last: str, caller: str, klass: str) -> None:
        slots: List[Tuple[Union[int, str], ast.expr]] = []
        for position, arg in enumerate(node.args):
            if isinstance(arg, ast.Starred):
                break
            slots.append((position, arg))
        slots.extend((kw.arg, kw.value) for kw in node.keywords if kw.arg)
        for slot, arg in slots:
            name = dotted(arg)
            if name in self._trained or name in self._ran:
                self._pending.append((last, (written, caller, klass, slot), name not in self._trained))
                return

    def _keep_trained_calls(self, caller: str) -> None:
        """Keep the candidate calls of a function that has no ``.eval()``; a
        model it only called counts when the function runs a training step."""
        if self._evals:
            return
        trains = caller in self.trainers
        for last, call, only_ran in self._pending:
            if trains or not only_ran:
                self.trained_calls.setdefault(last, []).append(call)

    def _bound(self, node: ast.Assign) -> None:
        """Remember ``name = Class(...)`` (a capitalised callee) until the name
        is bound to something else."""
        if len(node.targets) != 1 or not isinstance(node.targets[0], ast.Name):
            return
        name = node.targets[0].id
        built = _built_class(node.value)
        if built:
            self.built[name] = built
        else:
            self.built.pop(name, None)

    def _class(self, node: ast.ClassDef, state: Grad, caller: str) -> None:
        for expr in [*node.bases, *node.keywords, *node.decorator_list]:
            self.visit(expr, state, caller, "")
        nested = caller != ""
        if not nested:
            self.classes[node.name] = [d for d in (dotted(unsubscripted(b)) for b in node.bases) if d]
            freeze = init_freeze(node)
            if freeze is not None:
                self.frozen_classes[node.name] = freeze
            if forward_detaches(node):
                self.detaching_classes.append(node.name)
            self._class_nodes.append(node)
        outer, self.members = self.members, ({} if nested else _built_members(node))
        if not nested:
            self._parts[node.name] = set(self.members.values())
            if asks_autograd(node, self.adapting):
                self.autograd_classes.append(node.name)
        self.walk(node.body, state, "?" if nested else "", "" if nested else node.name)
        self.members = outer


def _arity(node: Union[ast.FunctionDef, ast.AsyncFunctionDef], method: bool) -> int:
    """How many arguments a call must pass (``self`` not counted)."""
    args = node.args
    positional = [*args.posonlyargs, *args.args]
    if method and not any(_decorator_name(d) == "staticmethod" for d in node.decorator_list):
        positional = positional[1:]  # ``self`` / ``cls``
    required = max(len(positional) - len(args.defaults), 0)
    return required + sum(1 for default in args.kw_defaults if default is None)


def _built_class(value: ast.expr) -> Optional[str]:
    """The class ``value`` builds, as written: a call of a capitalised callee,
    ``.cuda()``-style chains unwrapped (``Net(...).to(device)``)."""
    call = unchained(value)
    built = dotted(call.func) if isinstance(call, ast.Call) else None
    return built if built and built.rpartition(".")[2][:1].isupper() else None


def _built_members(node: ast.ClassDef) -> Dict[str, str]:
    """``self.x = Class(...)`` in a class's methods (a capitalised callee,
    ``.cuda()``-style chains unwrapped), for the attributes every assignment
    of which builds the same class: ``self.x.method()`` is that class's."""
    seen: Dict[str, Optional[str]] = {}
    for stmt in node.body:
        if not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        # assignments are statements: the blocks hold them all, so the walk
        # skips every expression (the answer does not depend on the order)
        for sub in statements_in(stmt.body):
            if isinstance(sub, ast.Assign):
                targets, value = sub.targets, sub.value
            elif isinstance(sub, (ast.AnnAssign, ast.AugAssign)):
                targets, value = [sub.target], sub.value
            else:
                continue
            for target in targets:
                if not (
                    isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
                    and target.value.id == "self"
                ):
                    continue
                built = None if value is None or isinstance(sub, ast.AugAssign) else _built_class(value)
                seen[target.attr] = built if seen.get(target.attr, built) == built else None
    return {attr: built for attr, built in seen.items() if built}


def _joined(names: Set[str]) -> str:
    """``names`` as one string, each between spaces (see ``has``): a set of
    strings costs a hash and an interned copy of each when unpacked."""
    return f" {' '.join(sorted(names))} "


def has(joined: str, name: str) -> bool:
    """Is ``name`` one of the names ``joined`` (see ``_joined``)?"""
    return f" {name} " in joined


#: What a NumPy network may import from outside its project: the standard
#: library and the numeric libraries that hold no tensor requiring grad.
_NUMERIC_ONLY = frozenset(getattr(sys, "stdlib_module_names", ())) | {"numpy", "scipy", "__future__"}

#: Packages no project module is: the standard library's, and common
#: frameworks' (their ``utils`` and ``data`` are their own).
_OUTSIDE = _NUMERIC_ONLY | OTHER_FRAMEWORKS | {
    "torch", "torchvision", "torchaudio", "torchtext", "sklearn", "matplotlib", "pandas", "transformers",
}

#: The run-time imports handed a module's dotted name.
_BY_MODULE_NAME = frozenset({"import_module", "__import__"})


def _module_name_start(arg: ast.expr) -> str:
    """The start of a module name written as a literal: all of
    ``"models.resnet"``, ``"models."`` of ``"models." + name`` or
    ``f"models.{name}"``; ``""`` when it starts with no literal."""
    while isinstance(arg, ast.BinOp) and isinstance(arg.op, ast.Add):
        arg = arg.left
    if isinstance(arg, ast.JoinedStr) and arg.values:
        arg = arg.values[0]
    return arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else ""


#: An import statement's module names: ``import a.b, c as d`` or ``from a.b import c, d``.
_IMPORT_STATEMENT = re.compile(
    r"^[ \t]*(?:from[ \t]+([\w.]+)[ \t]+import[ \t]+([^\n#;]+)|import[ \t]+([^\n#;]+))", re.M
)


#: A call of a run-time import, or Python 2's ``exec`` statement, in a text.
_RUN_TIME_IMPORT = re.compile(
    r"\b(?:" + "|".join(sorted(_DYNAMIC_IMPORTS)) + r")[ \t]*\(|^[ \t]*exec[ \t]+[\w\"']", re.M
)


def _text_may_import(path: str, name: str) -> bool:
    """May the module at ``path``, which does not parse (code for Python 2),
    import the module called ``name``: an import statement of its text names
    it (``import train``, ``from utils import train``, ``from train import
    fit``), or it imports by name at run time (calls a function of
    ``_DYNAMIC_IMPORTS``, or has an ``exec`` statement)?
    Yes when the text cannot be read."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return True
    if _RUN_TIME_IMPORT.search(text):
        return True
    for source, names, modules in _IMPORT_STATEMENT.findall(text):
        if source:
            # ``from torch.utils.data import DataLoader``: another package's ``utils`` and ``data``
            named = [] if _outside(source) else re.findall(r"\w+", f"{source} {names}")
        else:
            named = [w for m in modules.split(",") if not _outside(m.strip()) for w in re.findall(r"\w+", m)]
        if name in named:
            return True
    return False


def _outside(module: str) -> bool:
    """Is ``module`` (``torch.utils.data``; not ``.utils``) one of the
    standard library's or of a common framework's, none of a project's?"""
    return module.partition(".")[0] in _OUTSIDE


def _decorator_name(expr: ast.expr) -> str:
    """``cache`` for ``@functools.cache`` and for ``@lru_cache(8)``."""
    return last_name(expr.func if isinstance(expr, ast.Call) else expr)


def summarize(tree: ast.Module, no_grad_decorators: Tuple[str, ...] = ()) -> Summary:
    walker = _Summarizer(tree, no_grad_decorators)
    walker.walk(tree.body, Grad.ENABLED, "", "")
    walker._keep_trained_calls("")
    return walker.summary()


#: Words of a notebook or script that import or run code by a name given at run time.
_RUN_TIME_IMPORTS = ("%run", "import_module", "__import__", "runpy", "exec(", "execfile")

#: A word of a cell that does not parse.
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

#: Cell magics whose cell is Python still.
_PYTHON_CELL_MAGICS = frozenset({"%%time", "%%timeit", "%%capture", "%%prun"})


def _python_cell(source: str) -> Optional[ast.Module]:
    """The tree of a code cell, its shell and magic lines (``!pip install``,
    ``%matplotlib inline``) left out; None for a cell of another language
    (``%%bash``) or one that does not parse."""
    first = source.lstrip().split(None, 1)
    if first and first[0].startswith("%%") and first[0] not in _PYTHON_CELL_MAGICS:
        return None
    code = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())
    try:
        return ast.parse(code)
    except (SyntaxError, ValueError):
        return None


def _imports_of_runner(path: str) -> Optional[FrozenSet[str]]:
    """``Index.runner_imports`` of the notebook or script at ``path``."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
        if path.endswith(".ipynb"):
            import json  # only a project with notebooks, on the way to a report, reads one

            cells = json.loads(raw).get("cells", [])
            sources = [
                "".join(c.get("source", "")) if isinstance(c.get("source"), list) else str(c.get("source", ""))
                for c in cells if isinstance(c, dict) and c.get("cell_type") == "code"
            ]
        else:
            sources = [raw.decode("utf-8")]
    except (OSError, ValueError, AttributeError, UnicodeDecodeError):
        return None
    names: Set[str] = set()
    for source in sources:
        if any(word in source for word in _RUN_TIME_IMPORTS):
            return None
        tree = _python_cell(source)
        if tree is None:
            # a cell left half written, or a shell's: each of its words may
            # name what it imports or runs (``python -c "import pkg.helpers"``)
            names.update(_WORD.findall(source))
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = "." * node.level + (node.module or "")
                names.add(base)
                names.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return frozenset(names)


def _cache_file(root: str) -> str:
    tag = f"index-{__version__}-f{_FORMAT}-py{sys.version_info[0]}{sys.version_info[1]}.marshal"
    return os.path.join(root, CACHE_DIR, tag)


if TYPE_CHECKING:  # annotations only: making typing aliases at import costs time
    #: Where a summary still in the cache file is: its offset and length.
    Stored = Tuple[int, int]
    #: A module as the cache keeps it: size, mtime, the words it mentions (see
    #: ``words``) and its summary, marshalled (or ``Stored``), or ``b""`` until a
    #: question needs it: only the modules that mention a name asked about are
    #: ever parsed.
    Entry = Tuple[int, int, str, Union[bytes, Stored]]

#: The summary of a module that does not parse.
_UNPARSABLE = b"\x00"
#: A ``forward`` method's definition, as a module's text may spell it.
_FORWARD_DEF = re.compile(rb"\bdef\s+forward\b")
_FORWARD_OR_CALL_DEF = re.compile(rb"\bdef\s+(?:forward|__call__)\b")


def _def_pattern(name: str) -> Tuple["re.Pattern[bytes]", ...]:
    """The pattern of a ``def name`` (none for a name not in ASCII)."""
    return (re.compile(rb"\bdef[\s\\]+" + re.escape(name.encode()) + rb"\b"),) if name.isascii() else ()


#: What the text of a module with a class that asks autograd for gradients
#: (``facts.asks_autograd``) holds: a ``forward``, and ``autograd.grad``, a
#: tensor made to require grad, or a gradient hook.
_ASKING_AUTOGRAD = (
    _FORWARD_DEF, re.compile(rb"autograd[\s\\]*\.[\s\\]*grad\b|requires_grad|register_hook|enable_grad"),
)
#: Names a module with such a class uses (in its code: a summary's words):
#: a forward stepping its own inner optimization calls ``backward`` and may
#: name no ``grad`` (``y.requires_grad_()``, ``optimizer.zero_grad()``).
_AUTOGRAD_NAMES = ("grad", "enable_grad", "backward")
#: What the text of a module with a function calling ``grad`` or a forward
#: registering a gradient hook (a summary's "q") holds.
_CALLING_GRAD = (re.compile(rb"\bgrad[\s\\]*\(|register_hook"),)
#: ``_call_pattern``'s patterns, by name.
_CALL_PATTERNS: Dict[str, Tuple["re.Pattern[bytes]", ...]] = {}


def _call_pattern(name: str) -> Tuple["re.Pattern[bytes]", ...]:
    """A pattern every module that calls ``name``, or imports it under
    another name, matches: ``name`` then ``(`` or ``as``, with only blanks,
    line breaks or backslashes between (a summary keys a call by the name
    written just before its arguments).  No pattern for a name not in
    ASCII, which the text may spell otherwise than the parser."""
    found = _CALL_PATTERNS.get(name)
    if found is None:
        found = _CALL_PATTERNS[name] = (
            (re.compile(rb"\b" + re.escape(name.encode()) + rb"[\s\\]*(?:\(|as\b)"),) if name.isascii() else ()
        )
    return found


#: The names a module's ``class`` statements may define, nested ones too.
_CLASS_NAMES = re.compile(rb"^[ \t\f]*class[\s\\]+([^\s(:\\]+)", re.MULTILINE)
#: Bytes that may be part of an ASCII identifier stay, every other byte
#: becomes a space: ``source.translate(_WORD_BYTES).split()`` gives the runs
#: of identifier characters (a run that starts with digits holds the
#: identifier after them, as ``3x`` holds ``x``)
_WORD_BYTES = bytes(
    c if chr(c).isascii() and (chr(c).isalnum() or c == 0x5F) else 0x20 for c in range(256)
)
_DIGITS = b"0123456789"


def text_words(source: bytes) -> str:
    """The ASCII identifiers of a module's text (a superset of its summary's
    words), space-separated.  One ``translate`` and ``split`` in C
    instead of a regular expression and a decode per word: the whole text of
    every module of the project is read this way when the index is built."""
    words = set(source.translate(_WORD_BYTES).split())
    leading = [w for w in words if w[0] in _DIGITS]
    if leading:
        words.difference_update(leading)
        words.update(w.lstrip(_DIGITS) for w in leading)
        words.discard(b"")
    # in no order: questions only ask whether `` name `` is in it
    return " " + b" ".join(words).decode("ascii") + " "


# The cache file: eight bytes giving the length of the table that follows,
# marshalled, with one row per module: the paths joined by NUL (which no path
# contains), then tuples of the sizes, the mtimes, the words and the lengths
# of the summaries; then the summaries, one after the other.  The table is
# read at load, each column checked at once.  A summary is read when a
# question needs it, from the file kept open: a writer replaces the file and
# never changes it, so the file opened stays whole.

_HEAD = 8
#: Summaries read from the open file when needed; without ``os.pread``
#: (Windows, where an open file also cannot be replaced), all at load.
_LAZY = hasattr(os, "pread")


def _load_cache(path: str, lazy: bool = False) -> Tuple[Dict[str, Entry], Optional[BinaryIO]]:
    """The cache's entries, or none when it cannot be read or is not ours;
    with ``lazy`` the summaries are left in the file, returned open."""
    try:
        f = open(path, "rb")
    except OSError:
        return {}, None
    try:
        entries = _read_cache(f, lazy)
    except (OSError, EOFError, ValueError, TypeError, OverflowError):
        entries = {}
    if lazy and entries:
        return entries, f
    f.close()
    return entries, None


def _read_cache(f: BinaryIO, lazy: bool) -> Dict[str, Entry]:
    total = os.fstat(f.fileno()).st_size
    size = int.from_bytes(f.read(_HEAD), "little")
    if not 0 < size <= total - _HEAD:
        return {}
    paths, sizes, mtimes, texts, lengths = marshal.loads(f.read(size))
    if type(paths) is not str or not paths:
        return {}
    rels = paths.split("\0")
    n = len(rels)
    for column, kind in ((sizes, int), (mtimes, int), (texts, str), (lengths, int)):
        if type(column) is not tuple or len(column) != n or not set(map(type, column)) <= {kind}:
            return {}
    start = _HEAD + size
    if min(lengths) < 0 or start + sum(lengths) != total:
        return {}  # cut short, or not ours
    if lazy:
        # (the summary of a module that does not parse is its one byte)
        starts = itertools.accumulate(lengths, initial=start)
        blobs: List[object] = [
            (at, length) if length > 1 else _UNPARSABLE if length else b"" for at, length in zip(starts, lengths)
        ]
    else:
        blobs = [f.read(length) for length in lengths]
        if sum(map(len, blobs)) != total - start:  # type: ignore[arg-type]
            return {}
    return dict(zip(rels, zip(sizes, mtimes, texts, blobs)))  # type: ignore[arg-type]


def words(summary: Summary) -> str:
    """Every name a question about ``summary`` could start from: called
    names, names used as values, imported names; space-separated, with a
    space at both ends, so ``" name " in words`` is one fast test."""
    found: Set[str] = set(summary["k"])  # type: ignore[arg-type]
    found.update(summary["n"].split())  # type: ignore[attr-defined]
    found.update(summary["a"].split())  # type: ignore[attr-defined]
    for local, (_, target) in summary["i"].items():  # type: ignore[attr-defined]
        found.add(local)
        found.update(target.split("."))  # the modules it names too (``imported_by_nothing``)
    for _, module in summary["s"]:  # type: ignore[attr-defined]
        found.update(module.split("."))
    return " " + " ".join(sorted(found)) + " "


def _names_it(summary: Summary, name: str, exports: bool = True) -> bool:
    """Does the module call, use or import ``name`` itself, not only a module
    path with that word in it (``from tools.test import best_test`` does
    not name a function ``test``)?  Without ``exports`` (a module no
    distribution installs, not a package's ``__init__.py``), an import the
    module never uses names nothing: nobody else can reach the name through it."""
    if _uses(summary, name):
        return True
    imports: Dict[str, Tuple[int, str]] = summary["i"]  # type: ignore[assignment]
    return any(
        (local == name or target.rpartition(".")[2] == name) and (exports or _uses(summary, local))
        for local, (_, target) in imports.items()
    )


def _may_reach(summary: Summary, name: str, module: Optional[str] = None) -> bool:
    """Can the module's use of ``name`` mean another module's function: it
    reads ``.name`` of something or calls it on anything but ``self`` or
    ``cls`` (``task.training()``), imports a
    name ``name`` (or one it binds to ``name``), or star-imports?  A plain
    ``name`` it never imports (a local ``predictions = []``, a parameter)
    is its own.  With ``module``, the last name of the module that defines
    ``name`` at its top level, a call reaches it only through that module
    (``helpers.evaluate(...)``, ``import helpers as h``): not a method of
    an object (``trainer.evaluate()``, ``Sequential(...).evaluate(x)``)."""
    if has(summary["a"], name) or summary["s"]:  # type: ignore[arg-type]
        return True
    imports: Dict[str, Tuple[int, str]] = summary["i"]  # type: ignore[assignment]
    for written, *_ in calls_of(summary, name):
        if written != name and written not in (f"self.{name}", f"cls.{name}"):
            if module is None or module in written.split(".")[:-1] or imports.get(
                    written.partition(".")[0], (0, ""))[1].rpartition(".")[2] == module:
                return True  # ``utils.predictions(...)``; ``self.predictions(...)`` is the instance's own method
    return any(local == name or target.rpartition(".")[2] == name for local, (_, target) in imports.items())


#: Built-in functions that may find a module's function by a name computed
#: at run time (``globals()[args.mode]()``), called by their bare names.
_LOOKUPS = frozenset({"globals", "locals", "vars", "getattr", "eval", "exec", "__import__"})


def _closed_module(rel: str, summary: Summary) -> bool:
    """Is ``rel`` a module whose functions run only when its own code calls
    them: no test file, no ``__init__.py`` or ``__main__.py``, and no call
    that may run one by a name computed at run time (see ``_looks_up``)?"""
    if is_test_file(rel) or os.path.basename(rel) in ("__init__.py", "__main__.py"):
        return False
    return not _looks_up(summary)


def _looks_up(summary: Summary) -> bool:
    """May the module run a function by a name computed at run time
    (``fire.Fire()``, ``getattr(module, mode)``, ``globals()[args.mode]()``,
    ``importlib.import_module(name)``; ``model.eval()`` is no such call)?"""
    calls: Dict[str, object] = summary["k"]  # type: ignore[assignment]
    if "Fire" in calls or not _DYNAMIC_IMPORTS.isdisjoint(calls):
        return True
    return any(written == name for name in _LOOKUPS if name in calls for written, *_ in calls_of(summary, name))


def _makes(rel: str, summary: Summary, klass: str) -> bool:
    """May module ``rel`` (``summary``) make objects of the class ``klass``
    it imports: call it, use it as a value, derive from it, or hand it on
    (an ``__init__.py`` re-exports what it imports)?  An import alone makes
    nothing (``from trainer import NIMSTrainer, NIMSTrainer_Germany`` that
    only builds the second)."""
    return _names_it(summary, klass) and (rel.endswith("__init__.py") or _made_in(summary, klass))


def _made_in(summary: Summary, klass: str) -> bool:
    """Does the module of ``summary`` call the class ``klass``, use it as a
    value, or derive a class from it?"""
    classes: Dict[str, List[str]] = summary["c"]  # type: ignore[assignment]
    return bool(calls_of(summary, klass)) or has(summary["n"], klass) or has(summary["a"], klass) \
        or any(klass in (base, base.rpartition(".")[2]) for bases in classes.values() for base in bases)  # type: ignore


def _uses(summary: Summary, name: str) -> bool:
    return name in summary["k"] or has(summary["n"], name) or has(summary["a"], name)  # type: ignore[arg-type,operator]


# A summary in the cache keeps each called name's calls marshalled apart:
# most of a summary is its calls, and a question reads the calls of one name.


def _encode(summary: Summary) -> bytes:
    calls = summary["k"]
    packed = {name: found if type(found) is bytes else marshal.dumps(found)
              for name, found in calls.items()}  # type: ignore[attr-defined]
    return marshal.dumps({**summary, "k": packed})


def _decode(blob: bytes) -> Optional[Summary]:
    try:
        summary = marshal.loads(blob)
    except (EOFError, ValueError, TypeError):
        return None
    return summary if _valid(summary) else None


def calls_of(summary: Summary, name: str) -> List[Call]:
    """The calls of ``name`` in ``summary`` (unpacked on first use)."""
    calls: Dict[str, object] = summary["k"]  # type: ignore[assignment]
    found = calls.get(name)
    if found is None:
        return []
    if type(found) is bytes:
        found = marshal.loads(found)  # type: ignore[arg-type]
        if type(found) is not list:
            raise ValueError("damaged summary in the project index cache")
        calls[name] = found
    return found  # type: ignore[return-value]


def _valid(summary: object) -> bool:
    return (
        isinstance(summary, dict)
        and isinstance(summary.get("i"), dict) and isinstance(summary.get("c"), dict)
        and isinstance(summary.get("f"), dict) and isinstance(summary.get("k"), dict)
        and isinstance(summary.get("n"), str) and isinstance(summary.get("a"), str)
        and isinstance(summary.get("t"), set) and isinstance(summary.get("m"), dict)
        and isinstance(summary.get("v"), set) and isinstance(summary.get("z"), dict)
        and isinstance(summary.get("s"), list) and isinstance(summary.get("p"), dict)
        and isinstance(summary.get("r"), list) and isinstance(summary.get("b"), dict)
        and isinstance(summary.get("g"), list) and isinstance(summary.get("u"), dict)
        and isinstance(summary.get("q"), list) and isinstance(summary.get("w"), dict)
        and isinstance(summary.get("d"), str) and isinstance(summary.get("x"), list)
        and isinstance(summary.get("X"), list)
        and isinstance(summary.get("h"), dict) and isinstance(summary.get("y"), list)
        and isinstance(summary.get("l"), list) and isinstance(summary.get("N"), list)
        and isinstance(summary.get("Y"), list) and isinstance(summary.get("B"), bool)
    )


def _save_cache(path: str, entries: Dict[str, Entry]) -> None:
    """Write atomically: a reader sees the old file or the new one, never half."""
    directory = os.path.dirname(path)
    try:
        if not os.path.isdir(directory):
            os.makedirs(directory, exist_ok=True)
            with open(os.path.join(directory, ".gitignore"), "w") as f:
                f.write("# made by flake8-gradmode; safe to delete\n*\n")
            with open(os.path.join(directory, "CACHEDIR.TAG"), "w") as f:
                f.write("Signature: 8a477f597d28d172789f06886806bc55\n# flake8-gradmode's project index\n")
        rows = entries.values()
        # (a summary not in memory is written as not made: it is made again when needed)
        blobs = [row[3] if type(row[3]) is bytes else b"" for row in rows]
        table = marshal.dumps((
            "\0".join(entries),
            tuple([row[0] for row in rows]),
            tuple([row[1] for row in rows]),
            tuple([row[2] for row in rows]),
            tuple(map(len, blobs)),
        ))
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".index-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(len(table).to_bytes(_HEAD, "little"))
                f.write(table)
                f.writelines(blobs)  # type: ignore[arg-type]
            os.chmod(tmp, 0o644)  # as other files the project's tools write
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except (OSError, ValueError):
        pass  # read-only project, full disk: the cache is only a cache


class Index:
    """Summaries of every module of one project, by path relative to its root."""

    def __init__(self, root: str, entries: Dict[str, Entry], no_grad_decorators: Tuple[str, ...] = (),
                 cache_path: Optional[str] = None, stored: Optional[BinaryIO] = None) -> None:
        self.root = root
        self.entries = entries
        self.no_grad_decorators = no_grad_decorators
        #: modules parsed from their files on the way to a report (``Project.class_code``)
        self.trees: Dict[str, Optional[ast.Module]] = {}
        #: where to write the entries back, None for no cache
        self.cache_path = cache_path
        #: the cache file holding the summaries not read yet (``Stored``)
        self._stored = stored
        if stored is not None:
            weakref.finalize(self, stored.close)
        self.dirty = False
        #: when this process last wrote the cache (never: minus infinity)
        self._flushed = float("-inf")
        #: does no module, as saved, show a layer that depends on the mode
        #: (``Project.mode_free_everywhere``); None until asked
        self.mode_free: Optional[bool] = None
        #: does a module of the project hold code for PyTorch 0.3
        #: (``Project.code_for_0_3_in_project``); None until asked
        self.for_0_3: Optional[bool] = None
        self._decoded: Dict[str, Optional[Summary]] = {}
        self._names: Optional[Dict[str, str]] = None
        self._parts: Optional[FrozenSet[str]] = None
        self._suffixes: Optional[Dict[str, List[str]]] = None
        self._packaging: Optional[str] = None
        self._builds: Optional[bool] = None
        #: does the project keep files that may import its modules and that
        #: the index does not read (notebooks, scripts without ``.py``)
        self.runners = False
        #: their paths, relative to the root
        self.runner_paths: Tuple[str, ...] = ()
        self._runner_words: Dict[str, str] = {}
        self._runner_imports: Dict[str, Optional[FrozenSet[str]]] = {}

    @property
    def builds(self) -> bool:
        """Do the root's packaging files build or generate modules into the
        package (``_BUILDS``)?  Searched once per project."""
        if self._builds is None:
            self._builds = bool(_BUILDS.search(self.packaging))
        return self._builds

    @property
    def packaging(self) -> str:
        """The text of the root's packaging files, joined ("" with none; read
        when first needed)."""
        if self._packaging is None:
            texts = []
            for name in PACKAGING:
                try:
                    with open(os.path.join(self.root, name), "rb") as handle:
                        texts.append(handle.read().decode("utf-8", "replace") or " ")
                except OSError:
                    continue
            self._packaging = "\n".join(texts)
        return self._packaging

    @property
    def names(self) -> Dict[str, str]:
        """Module name -> path (made when first needed: not every question
        resolves an import)."""
        if self._names is None:
            self._names = {module_name(rel): rel for rel in self.entries}
        return self._names

    def parts(self) -> FrozenSet[str]:
        """Every name a module of the project, or a directory holding one,
        has (``utils`` for ``lib/utils/io.py``): what an import may find
        among the project's own files."""
        if self._parts is None:
            self._parts = frozenset(part for module in self.names for part in module.split("."))
        return self._parts

    def summary(self, rel: str) -> Optional[Summary]:
        if rel not in self._decoded:
            entry = self.entries.get(rel)
            summary = None
            if entry is not None and entry[3] != _UNPARSABLE:
                blob = self._read(entry[3])
                if blob:
                    summary = _decode(blob)
                if summary is None:  # not summarised yet, or damaged in the cache: now
                    summary = _summarize_file(os.path.join(self.root, rel), self.no_grad_decorators)
                    blob = _encode(summary) if summary is not None else _UNPARSABLE
                    self.entries[rel] = (entry[0], entry[1], words(summary) if summary else entry[2], blob)
                    self.dirty = True
            self._decoded[rel] = summary
        return self._decoded[rel]

    def cannot_answer(self, rel: str, classes_of: str = "", patterns: Tuple["re.Pattern[bytes]", ...] = ()) -> bool:
        """Is ``rel`` a module not summarised yet whose text shows that its
        summary cannot hold what a question looks for: no class named by
        one of the space-separated ``classes_of`` (its ``class`` statements,
        a superset of the classes a summary holds), or no match of one of
        ``patterns`` (``def forward``, a call of a name)?  The question can
        then skip summarising it and get the same answer."""
        entry = self.entries.get(rel)
        if entry is None or entry[3] != b"" or rel in self._decoded:
            return False
        try:
            with open(os.path.join(self.root, rel), "rb") as f:
                source = f.read()
        except OSError:
            return False
        if any(pattern.search(source) is None for pattern in patterns):
            return True
        # (a name not in ASCII may be spelled otherwise than the parser's)
        return bool(classes_of) and not any(
            not name.isascii() or f" {name.decode()} " in classes_of for name in _CLASS_NAMES.findall(source)
        )

    def _read(self, blob: object) -> bytes:
        """A summary, marshalled: read from the cache file when ``Stored``
        (``b""`` when that fails: the summary is made again)."""
        if type(blob) is bytes:
            return blob  # type: ignore[return-value]
        at, length = blob  # type: ignore[misc]
        try:
            data = os.pread(self._stored.fileno(), length, at)  # type: ignore[union-attr]
        except (AttributeError, OSError, ValueError):
            return b""
        return data if len(data) == length else b""

    def flush_soon(self) -> None:
        """``flush``, at most once a second: a process linting many files
        (``flake8 -j1`` over a repository) would otherwise rewrite the whole
        cache after every file that taught it something.  What is left is
        written when the process exits (a ``-j N`` worker may lose its last
        second: the cache is only a cache)."""
        if self.dirty and time.monotonic() - self._flushed >= FLUSH_INTERVAL:
            self.flush()

    def flush(self) -> None:
        """Write what was summarised since the cache was read (atomically)."""
        self._flushed = time.monotonic()
        if self.dirty and self.cache_path is not None:
            if self._stored is not None:  # the file is about to be replaced: read what is left in it
                for rel, entry in self.entries.items():
                    if type(entry[3]) is not bytes:
                        self.entries[rel] = (entry[0], entry[1], entry[2], self._read(entry[3]))
                self._stored.close()
                self._stored = None
            _save_cache(self.cache_path, self.entries)
        self.dirty = False

    @classmethod
    def load(cls, root: str, no_grad_decorators: Tuple[str, ...], use_cache: bool = True) -> Optional["Index"]:
        runners: List[str] = []
        try:
            files = scan(root, stat=True, limit=MAX_FILES, runners=runners)
        except TooMany:
            return None
        use_cache = use_cache and not no_grad_decorators
        cache_path = _cache_file(root) if use_cache else None
        cached, stored = _load_cache(cache_path, _LAZY) if cache_path is not None else ({}, None)
        entries: Dict[str, Entry] = {}
        for rel, size, mtime in files:
            if size is None:
                continue  # cannot be read
            old = cached.get(rel)
            if old is not None and old[0] == size and old[1] == mtime:
                entries[rel] = old
                continue
            try:
                with open(os.path.join(root, rel), "rb") as f:
                    entries[rel] = (size, mtime, text_words(f.read()), b"")  # type: ignore[assignment]
            except OSError:
                continue
        index = cls(root, entries, no_grad_decorators, cache_path, stored)
        index.runners = bool(runners)
        index.runner_paths = tuple(runners)
        # written by the first ``flush``, with what the questions add
        index.dirty = entries.keys() != cached.keys() or any(entries[k] is not cached[k] for k in entries)
        return index

    def runner_words(self, rel: str) -> str:
        """The words of the notebook or script without ``.py`` at ``rel``
        (see ``text_words``), read once; none when it cannot be read."""
        found = self._runner_words.get(rel)
        if found is None:
            try:
                with open(os.path.join(self.root, rel), "rb") as f:
                    found = text_words(f.read())
            except OSError:
                found = ""
            self._runner_words[rel] = found
        return found

    def runner_imports(self, rel: str) -> Optional[FrozenSet[str]]:
        """The dotted names the code of the notebook (its code cells) or
        script without ``.py`` at ``rel`` imports (``from src.utils import
        f``: ``src.utils`` and ``src.utils.f``), and every word of a cell that
        does not parse as Python (left half written, or a shell's), read
        once; None when it may import anything: it cannot be read, or it
        imports or runs code by a name given at run time (``%run``,
        ``importlib``, ``__import__``, ``runpy``, ``exec``)."""
        if rel in self._runner_imports:
            return self._runner_imports[rel]
        found = _imports_of_runner(os.path.join(self.root, rel))
        self._runner_imports[rel] = found
        return found

    def module(self, name: str, near: str) -> Optional[str]:
        """The path of module ``name`` as imported from the module at ``near``:
        a sibling first (a script's directory is on ``sys.path``), then the
        name from the root, then a unique module whose name ends so (``src/``
        layouts, scripts run from a subdirectory)."""
        directory = os.path.dirname(near)
        if directory:
            sibling = module_name(os.path.join(directory, name.replace(".", os.sep) + ".py"))
            rel = self.names.get(sibling)
            if rel is not None:
                return rel
        rel = self.names.get(name)
        if rel is not None:
            return rel
        if self._suffixes is None:
            self._suffixes = {}
            for full, path in self.names.items():
                parts = full.split(".")
                for i in range(1, len(parts)):
                    self._suffixes.setdefault(".".join(parts[i:]), []).append(path)
        found = self._suffixes.get(name, [])
        return found[0] if len(found) == 1 else None


def _summarize_file(path: str, no_grad_decorators: Tuple[str, ...]) -> Optional[Summary]:
    tree = _parse_file(path)
    if tree is None:
        return None
    try:
        return summarize(tree, no_grad_decorators)
    except _UNREADABLE:
        return None


#: What reading and parsing a module, or walking its tree, may raise.
_UNREADABLE = (OSError, SyntaxError, ValueError, RecursionError, UnicodeDecodeError)


def _parse_file(path: str) -> Optional[ast.Module]:
    """The module at ``path`` as ``ast`` parses it; None when it cannot be
    read or does not parse."""
    try:
        with open(path, "rb") as f:
            tree = ast.parse(f.read(), path)
    except _UNREADABLE:
        return None
    return tree if isinstance(tree, ast.Module) else None


_INDEXES: Dict[Tuple[str, Tuple[str, ...]], Optional[Index]] = {}


def index_for(root: str, no_grad_decorators: Tuple[str, ...] = ()) -> Optional[Index]:
    """The index of ``root``, loaded once per process."""
    key = (root, no_grad_decorators)
    if key not in _INDEXES:
        index = _INDEXES[key] = Index.load(root, no_grad_decorators)
        if index is not None:
            atexit.register(index.flush)
    return _INDEXES[key]


# --- questions ------------------------------------------------------------------


class Project:
    """The index as seen from one linted module, whose own summary comes from
    the tree being linted (it may be an editor's unsaved text)."""

    def __init__(self, index: Index, rel: str, own: Summary) -> None:
        self.index = index
        self.rel = rel
        self.own = own
        self.own_words = words(own)
        self._entry: Dict[Target, Grad] = {}
        self._bases: Dict[Target, List[object]] = {}
        #: (module, class) -> does the class hold no parameter and keep no state (``parameter_free_class``)
        self._stateless: Dict[Target, bool] = {}
        self._asks_in_forward: Optional[bool] = None
        #: (module, depth) -> does that imported module stop at its imports
        self._import_stops: Dict[Tuple[str, int], bool] = {}
        #: module -> the modules that import it (see ``_importer_set``)
        self._importer_sets: Dict[str, FrozenSet[str]] = {}
        self._unimported_memo: Optional[bool] = None

    def summary(self, rel: str) -> Optional[Summary]:
        return self.own if rel == self.rel else self.index.summary(rel)

    def unit_test(self, rel: str) -> bool:
        """Is ``rel`` a unit test (see ``is_test_file``): under ``tests/``, or
        named like one (``test_*.py``) and importing a test framework or
        defining ``test_*`` functions?  An evaluation script called
        ``test_net.py`` is not: its calls are how the project runs."""
        if not is_test_file(rel):
            return False
        summary = self.summary(rel)
        if summary is None:
            return True
        imports: Dict[str, Tuple[int, str]] = summary["i"]  # type: ignore[assignment]
        uses = any(target[1].partition(".")[0] in TEST_FRAMEWORKS for target in imports.values()) or any(
            qual.rpartition(".")[2].startswith("test_") for qual in summary["f"]  # type: ignore[union-attr]
        )
        return is_test_file(rel, uses)

    def mentioning(
        self, *names: str, classes_of: str = "", patterns: Tuple["re.Pattern[bytes]", ...] = (),
    ) -> Iterator[Tuple[str, Summary]]:
        """The modules whose words include one of ``names``, with their
        summaries; with ``classes_of`` or ``patterns``, only the other
        modules whose text may answer (``Index.cannot_answer``)."""
        keys = [f" {name} " for name in names]
        if any(key in self.own_words for key in keys):
            yield self.rel, self.own
        narrowed = bool(classes_of or patterns)
        for rel, entry in self.index.entries.items():  # (a summary made now replaces its entry: no key is added)
            if rel != self.rel and any(key in entry[2] for key in keys) and not (
                narrowed and self.index.cannot_answer(rel, classes_of, patterns)
            ):
                summary = self.index.summary(rel)
                if summary is not None:
                    yield rel, summary

    def mentioned_elsewhere(self, name: str, module_function: bool = False) -> bool:
        """Does a module other than this one call, import or use ``name``?
        A module not summarised yet has every word of its text (a ``def`` of
        that name too): it is summarised, so that the answer is the same with
        an empty cache and a warm one.  With ``module_function`` (``name`` is
        a module-level function), a method call on a name the module does
        not import (``trainer.evaluate()``) does not count: it is another
        object's method."""
        key = f" {name} "
        installed: Optional[bool] = None
        mine = module_name(self.rel).rpartition(".")[2] if module_function else None
        for rel, summary in self._others_with_word(name):
            if summary is None:
                return True
            if installed is None:
                installed = not self.unpackaged()
            if key in self.index.entries[rel][2] and _names_it(summary, name, installed or rel.endswith("__init__.py")):
                if _may_reach(summary, name, mine) and not self._names_another(rel, summary, name) \
                        and not self._only_dead_callers(rel, summary, name):
                    return True  # used there, or a file that does not parse: it may be
        return False

    def _others_with_word(self, name: str, outside: str = "") -> Iterator[Tuple[str, Optional[Summary]]]:
        """The other modules whose words include ``name`` (not under the
        directory ``outside``), each with its summary (None: it does not
        parse).  A module not summarised yet has every word of its text: it
        is summarised here, so that the answer is the same with an empty
        cache and a warm one."""
        key = f" {name} "
        for rel, entry in list(self.index.entries.items()):
            if rel == self.rel or key not in entry[2] or outside and rel.replace(os.sep, "/").startswith(outside):
                continue
            yield rel, self.index.summary(rel)

    def _only_dead_callers(self, rel: str, summary: Summary, name: str) -> bool:
        """Does module ``rel`` (``summary``) of a project with no packaging
        file, no notebook and no script without ``.py`` only call ``name``,
        never use it otherwise, and only from its own module-level functions
        that nothing runs (see ``_dead_function``)?  ``def search(): return
        get_is(...)`` whose one call, in ``__main__``, is commented out."""
        if self.index.packaging or self.index.runners or not _closed_module(rel, summary):
            return False  # a package's users or a notebook may call any function
        if has(summary["n"], name) or has(summary["a"], name):  # type: ignore[arg-type]
            return False  # ``pool.map(evaluate, ...)``, ``tools.evaluate``: a value, run anywhere
        calls = calls_of(summary, name)
        return bool(calls) and all(
            self._dead_function(rel, summary, caller, 1, None) or bool(klass) and self._dead_class(rel, summary, klass)
            for _, _, caller, klass, _ in calls
        ) and not self._looked_up_elsewhere(rel)

    def _dead_class(self, rel: str, summary: Summary, klass: str) -> bool:
        """Is ``klass`` a class of module ``rel`` that nothing makes: the
        module neither calls it, nor uses it as a value, nor derives a class
        from it, and no module that imports ``rel`` names it?  A copy of a
        project kept in another directory (``germany/trainer.py`` beside
        ``korea/trainer.py``) makes its own copy's class."""
        if klass not in summary["c"] or _made_in(summary, klass):  # type: ignore[operator]
            return False
        importers = self._importer_set(rel)
        if _UNPARSABLE in importers or self.rel in importers and _makes(self.rel, self.own, klass):  # type: ignore
            return False
        for other, found in self._others_with_word(klass):
            if other == rel:
                continue
            if found is None or other in importers and _makes(other, found, klass):
                return False  # it does not parse, or imports ``rel`` and makes the class
        return True

    def _looked_up_elsewhere(self, rel: str) -> bool:
        """May a module that imports module ``rel`` run one of its functions
        by a name computed at run time (``getattr(main, mode)``), or may one
        import it by name at run time?"""
        for importer in self._importer_set(rel):
            summary = self.index.summary(importer) if importer is not _UNPARSABLE else None
            if summary is None or _looks_up(summary):
                return True
        return False

    def _dead_function(self, rel: str, summary: Summary, fn: str, depth: int, callee: Optional[str]) -> bool:
        """Is ``fn`` an undecorated module-level function of module ``rel``
        that nothing runs: the module calls it only from functions that
        nothing runs either (never from its top level), never uses it as a
        value, and no other module names it?  ``callee``, a function of
        ``rel`` that ``fn`` calls and that is being asked about, is left out
        of its callers (each one calling the other: neither runs unless
        something else calls one)."""
        functions: Dict[str, str] = summary["f"]  # type: ignore[assignment]
        if depth > 3 or functions.get(fn) != "i" or "." in fn or fn.startswith("test"):
            return False  # a method, a decorated function (``@app.route``), a test pytest runs
        if has(summary["n"], fn) or has(summary["a"], fn):  # type: ignore[arg-type]
            return False
        for written, _, caller, klass, _ in calls_of(summary, fn):
            if written != fn or caller in (fn, callee):
                continue  # ``random.random()`` is not ``random()``; a recursive call runs nothing new
            if klass or not self._dead_function(rel, summary, caller, depth + 1, fn):
                return False
        key = f" {fn} "
        for other, entry in list(self.index.entries.items()):
            if other == rel or key not in entry[2]:
                continue
            found = self.index.summary(other)
            if found is None:
                return False  # it does not parse: it may name it
            if _names_it(found, fn):
                importers = self._importer_set(rel)
                if other in importers or _UNPARSABLE in importers:
                    return False  # a module that imports ``rel`` names it (``random.random()`` elsewhere does not)
        return True

    def _names_another(self, rel: str, summary: Summary, name: str) -> bool:
        """Does module ``rel`` mean by ``name`` only what it imports under
        that name from another module of the project, never this module's
        (``from ..train_test import evaluate`` where this module defines an
        ``evaluate`` of its own)?  Not when it reads ``.name`` of anything
        or imports the name from here."""
        imported = summary["i"].get(name)  # type: ignore[attr-defined]
        if imported is None:
            if name in summary["f"] and not has(summary["a"], name):  # type: ignore[operator,arg-type]
                # its own ``def get_is`` (after a ``from models import *``
                # that may bring this one): its code calls that one
                return not any(called.endswith(f".{name}") for called in summary["k"])  # type: ignore[attr-defined]
            return self._calls_through_other_modules(rel, summary, name)
        if has(summary["a"], name):  # type: ignore[arg-type]
            return False
        if any(called.endswith(f".{name}") for called in summary["k"]):  # type: ignore[attr-defined]
            return False  # ``test.test(...)``
        if self.index.module(_absolute(rel, *imported), rel) is not None:
            return False  # ``from train import test``: a module, whose ``test`` may be this one
        found = self.resolve(rel, name)
        if not isinstance(found, tuple):
            # ``from utils import test_clf`` with no module or package named
            # ``utils`` anywhere in the project: an installed one's, or none
            source = _absolute(rel, *imported).rpartition(".")[0]  # type: ignore[misc]
            return not imported[0] and bool(source) and source.split(".")[0] not in self.index.parts()
        if found[0] == self.rel:
            return False
        other = self.summary(found[0])
        if other is not None and (found[1] in other["f"] or found[1] in other["c"]):  # type: ignore[operator]
            return True
        # ``from utils import test_clf`` finding a ``utils`` of the project
        # that binds no ``test_clf``: the import fails, whatever this one has
        if found[0] == rel or "." in found[1]:
            return False  # not followed to a module that binds names
        module = _absolute(rel, *imported).rpartition(".")[0]  # type: ignore[misc]
        return self._lacks(found[0], module, found[1])

    def _calls_through_other_modules(self, rel: str, summary: Summary, name: str) -> bool:
        """Does module ``rel`` use ``name`` only in calls through another
        module of the project (``get_models.bn_update(...)`` where this module
        is ``get_models_scale_inv`` with a ``bn_update`` of its own), never as
        a plain name or another attribute?"""
        if has(summary["n"], name) or has(summary["a"], name):  # type: ignore[arg-type]
            return False
        calls = calls_of(summary, name)
        for written, *_ in calls:
            if not written.endswith(f".{name}"):
                return False
            found = self.resolve(rel, written)
            if not isinstance(found, tuple) or found[0] in (self.rel, rel):
                return False
        return bool(calls)

    def bundled_copy(self) -> Optional[str]:
        """The directory (relative to the root, with a closing ``/``) of the
        copy of another library (``BUNDLED_LIBRARIES``: ``d2l/``,
        ``models/transformers/``) that holds this module, when the project
        carries one: the copy sits below the root, the project's packaging
        files do not name it (``transformers`` itself builds its
        ``src/transformers``), and the project has modules outside it.
        None otherwise."""
        index = self.index
        parts = self.rel.replace(os.sep, "/").split("/")[:-1]
        for at, part in enumerate(parts):
            if part not in BUNDLED_LIBRARIES:
                continue
            if part in index.packaging:
                return None
            prefix = "/".join(parts[:at + 1]) + "/"
            if not any(not rel.replace(os.sep, "/").startswith(prefix) for rel in index.entries):
                return None  # the project is the library
            return prefix
        return None

    def named_outside(self, prefix: str, name: str, module_function: bool = False) -> bool:
        """Does a module of the project outside the directory ``prefix`` (see
        ``bundled_copy``) call, import or use ``name`` as this module's:
        not only its own function of that name, or what it imports under
        that name from another module (see ``mentioned_elsewhere``)?  A
        module that does not parse may, and so may a notebook or a script
        without ``.py`` outside it whose text has the name (read last: a
        notebook's text may be large)."""
        mine = module_name(self.rel).rpartition(".")[2] if module_function else None
        for rel, summary in self._others_with_word(name, prefix):
            if summary is None:
                return True
            if _names_it(summary, name) and _may_reach(summary, name, mine) and not self._names_another(
                rel, summary, name
            ):
                return True
        key = f" {name} "
        return any(
            not rel.replace(os.sep, "/").startswith(prefix) and key in self.index.runner_words(rel)
            for rel in self.index.runner_paths
        )

    def unpackaged(self) -> bool:
        """Does no distribution of the project install this module?  True
        with no ``setup.py``, ``setup.cfg`` or ``pyproject.toml`` at the
        root.  True as well when those files find packages by their
        ``__init__.py`` (they say ``packages`` and never ``namespace``) and
        this module sits below the root in a directory that has none and
        that they do not name: ``find_packages()`` skips it."""
        texts = self.index.packaging
        if not texts:
            return True
        directory = os.path.dirname(self.rel)
        if not directory or os.path.join(directory, "__init__.py") in self.index.entries:
            return False
        if "packages" not in texts or "namespace" in texts:
            return False  # automatic discovery, or namespace packages: any directory may be one
        return not any(part in texts for part in directory.replace(os.sep, "/").split("/"))

    def closed(self) -> bool:
        """Is every call of the project's functions written in its modules:
        no package (see ``unpackaged``), and no module that imports by name at
        run time (``importlib.import_module(name)``), unless a unit test, or
        that does not parse and whose text does?  (``mentioned_elsewhere``
        reads every word of a module that does not parse as a use.)"""
        if not self.unpackaged():
            return False
        keys = [f" {name} " for name in _DYNAMIC_IMPORTS]
        for rel, entry in list(self.index.entries.items()):
            if rel == self.rel or not any(key in entry[2] for key in keys):
                continue
            summary = self.index.summary(rel)
            if summary is None and not _text_may_import(os.path.join(self.index.root, rel), ""):
                continue  # does not parse, and imports nothing by name (its calls: ``mentioned_elsewhere``)
            if self._may_import_anything(rel, summary):
                return False
        return _DYNAMIC_IMPORTS.isdisjoint(self.own["k"])  # type: ignore[arg-type]

    def _may_import_anything(self, rel: str, summary: Optional[Summary], me: Optional[str] = None) -> bool:
        """Does module ``rel`` (``summary`` its summary) not parse, or import
        by name at run time (``importlib.import_module(name)``) what may be
        this module (or module ``me``), and is no unit test?  A unit test that imports modules by
        name to check them runs none of their code, and its calls are not how
        the project runs.  A name that starts with a package written out
        (``import_module("loss." + name)``) reaches only the modules right in
        a directory of that name (``loss/focal.py``, not ``loss/utils/x.py``)."""
        return summary is None or (
            not _DYNAMIC_IMPORTS.isdisjoint(summary["k"]) and not self.unit_test(rel)  # type: ignore[arg-type]
            and self._reachable_by_name(summary["Y"], me or self.rel)  # type: ignore[arg-type]
        )

    def _reachable_by_name(self, starts: List[str], me: str) -> bool:
        """May a run-time import handed a name that starts as one of
        ``starts`` (see ``_Summarizer.dynamic_imports``) load module ``me``?"""
        path = os.path.splitext(me)[0].replace(os.sep, "/").split("/")
        if path[-1] == "__init__" and len(path) > 1:
            path.pop()  # a package: imported by its directory's name
        parts = set(path)
        for start in starts:
            head = start.partition(".")[0]
            if not head:
                return True
            if "." not in start:
                if head in parts:
                    return True
                continue
            # ``"core.models." + name``: a module right in ``core/models``, its
            # name the rest (a name handed in with dots of its own is not guessed)
            *packages, begins = start.split(".")
            if path[-1 - len(packages):-1] == packages and path[-1].startswith(begins):
                return True
        return not starts

    def imported_by_nothing(self) -> bool:
        """Does no other module import this one?  None can when its name is
        no identifier (``languagemodel-v1.py``, a copy kept aside; only a
        run-time import handed that very string could).  Otherwise: in a
        project that is no
        package (no ``setup.py``, ``setup.cfg`` or ``pyproject.toml`` at its
        root: nothing outside it imports its modules), from a directory that
        is no package either (no ``__init__.py``), or from a package
        directory of a project that keeps no Jupyter notebook and no
        Python script without ``.py`` (either may import the package's
        modules, and the index does not read them)?  An import of the
        module, of a name from it, ``from . import`` it or ``*`` from it
        counts, as does any module that imports by name at run time
        (``importlib.import_module``) or does not parse.  Every module whose
        words (its text's, or its summary's: they name every module it
        imports) spell the module's name or a run-time import is summarised
        for the answer, so it is the same on a cold cache and a warm one."""
        if self.rel.endswith("__init__.py") or os.path.basename(self.rel) in _NOT_IMPORTED:
            return False
        if not os.path.basename(self.rel)[:-3].isidentifier():
            return True  # ``languagemodel-v1.py``: no import statement can name it, in any project
        if not self.unpackaged():
            return False
        if self.index.runners and os.path.join(os.path.dirname(self.rel), "__init__.py") in self.index.entries:
            # a package's module, made to be imported, in a project whose
            # notebooks may, unless none of their imports can name it
            stem = module_name(self.rel).rpartition(".")[2]
            for rel in self.index.runner_paths:
                names = self.index.runner_imports(rel)
                if names is None or any(stem in name.split(".") for name in names):
                    return False
        return self._importer() is None

    def may_hold_my_functions(self, name: str) -> bool:
        """May the project module this module imports as ``name`` hold this
        module's functions, so that ``getattr(name, mode)`` may reach one?
        Only when it is this module or imports it (``from train import
        evaluate``, ``from train import *``), or cannot be told: an import
        of no project module, or a module that imports by name at run time
        or does not parse."""
        imported = self.own["i"].get(name)  # type: ignore[attr-defined]
        if imported is None:
            return True
        target = self._imported_module(self.rel, *imported)
        if target is None or target == self.rel:
            return True
        importers = self._importer_set(self.rel)
        return target in importers or _UNPARSABLE in importers  # type: ignore[comparison-overlap]

    def imported_by_another(self) -> bool:
        """Does another module of the project import this one (and none
        imports by name at run time)?"""
        return self._importer() not in (None, _UNPARSABLE)

    def _importer(self) -> Optional[str]:
        """A module that imports this one; ``_UNPARSABLE`` when one imports by
        name at run time or does not parse (it may); None when none does."""
        return next(self._importers(), None)

    def _nothing_imports_me(self) -> bool:
        """``imported_by_nothing``, worked out once."""
        if self._unimported_memo is None:
            self._unimported_memo = self.imported_by_nothing()
        return self._unimported_memo

    def _importers(self) -> Iterator[str]:
        """The modules that import this one (see ``_importers_of``)."""
        return self._importers_of(self.rel)

    def _importer_set(self, me: str) -> FrozenSet[str]:
        """``_importers_of(me)`` as a set, worked out once per module."""
        found = self._importer_sets.get(me)
        if found is None:
            found = self._importer_sets[me] = frozenset(self._importers_of(me))
        return found

    def _importers_of(self, me: str) -> Iterator[str]:
        """The modules that import module ``me``, in the index's order;
        ``_UNPARSABLE`` for one that imports by name at run time or does not
        parse (it may)."""
        # an import spells the module's name, and a run-time import calls by
        # name: a module whose words have neither cannot import this one
        keys = [f" {name} " for name in (module_name(me).rpartition(".")[2], *_DYNAMIC_IMPORTS)]
        for rel, entry in list(self.index.entries.items()):
            if rel == me or not any(key in entry[2] for key in keys):
                continue
            summary = self.index.summary(rel)
            if summary is None and not _text_may_import(os.path.join(self.index.root, rel), keys[0].strip()):
                continue  # a module that does not parse, whose import statements never name this one
            if self._may_import_anything(rel, summary, me):
                yield _UNPARSABLE  # type: ignore[misc]
                continue
            imports = [*summary["i"].values(), *summary["s"]]  # type: ignore[attr-defined]
            for level, target in imports:
                parts = _absolute(rel, level, target).split(".")
                if any(self.index.module(".".join(parts[:cut]), rel) == me for cut in range(len(parts), 0, -1)):
                    yield rel
                    break

    def without_torch_around(self) -> bool:
        """Does no module near this one name ``torch``: this module, the
        project modules that import it (one must), and the project modules
        any of these import?  Its models are then another framework's (a
        course's own numpy network), which keeps no graph."""
        importers = list(self._importers())
        if not importers or _UNPARSABLE in importers:  # type: ignore[comparison-overlap]
            return False
        for rel in [self.rel, *importers]:
            summary = self.summary(rel)
            if summary is None:
                return False
            near = [rel, *self._imported_modules(rel, summary)]
            if any(module is not None and " torch " in self._words(module) for module in near):
                return False
        return True

    def _imported_modules(self, rel: str, summary: Summary) -> Iterator[Optional[str]]:
        """The project module each import of module ``rel`` names (None for
        one outside the project), in the order of ``summary``'s imports."""
        for level, target in [*summary["i"].values(), *summary["s"]]:  # type: ignore[attr-defined]
            yield self._imported_module(rel, level, target)

    def import_fails(self) -> bool:
        """Does this module stop at one of its imports?  An unconditional
        top-level ``from m import name`` where ``m`` is a project module,
        found where the module's directory and the project's root both
        would find it, that binds no ``name`` and has no submodule of that
        name (``from models.Nets import ResnetCifar`` after the class was
        removed), or that does not parse; or one of a module a package
        directory of a project that is no package does not hold (``from
        models.segnet import SegNet`` with no ``models/segnet.py``).  A
        module that may bind names no statement spells (see
        ``_Summarizer._defined``) binds anything.  So does one of a project
        module that itself stops at such an import (``from audio_tagging
        import Net`` where ``audio_tagging`` imports a removed ``Resnet``),
        and an unconditional top-level ``import m`` of a project module
        that does not parse (``import fitter`` of a module written for
        Python 2)."""
        return self._stops_at_import(self.rel, self.own, 0)

    def _stops_at_import(self, rel: str, summary: Summary, depth: int) -> bool:
        # Python looks an absolute import up beside the script that runs (this
        # module), not beside a module it imports: ``from gym import spaces``
        # in ``utils/wrappers.py`` finds the installed ``gym``, not ``utils/gym.py``
        directory = os.path.dirname(self.rel)
        for level, target in summary["x"]:  # type: ignore[attr-defined]
            module, _, name = _absolute(rel, level, target).rpartition(".")
            if not module:
                continue
            found = self._found_from(directory, module)
            if self._none_binds(found, module, name):
                return True
            if not found and (
                self._missing_module(directory, module)
                or module.partition(".")[0] in self.index.parts() and self._holds_modules(directory, module)
                and self._missing_module(directory, f"{module}.{name}")
            ):
                # ``from data import loaders`` where ``data/`` holds modules but no
                # ``__init__.py`` and no ``loaders``: nothing can bind the name
                return True
            if found and depth < 2 and all(self._imported_stops(other, depth + 1) for other in found):
                return True
        for module in summary["X"]:  # type: ignore[attr-defined]
            # ``import fitter`` of a project module that does not parse (``async``
            # as a name): the import raises.  (Not yet one that stops at its own
            # imports: a package's ``__init__`` importing a module the repository
            # leaves out on purpose, ``.gitignore``'s ``models/model*``, is
            # there when its author runs it.)
            found = self._found_from(directory, module)
            if found and all(self._unparsable(other) for other in found):
                return True
        return False

    def import_lacks(self, level: int, target: str) -> bool:
        """Does ``from m import name`` written in this module (``target`` is
        ``m.name``, relative by ``level``) raise ``ImportError``, as
        ``import_fails`` reads a top-level one: ``m`` a project module, found
        where the module's directory and the project's root both would find
        it, that binds no ``name`` or does not parse?"""
        module, _, name = _absolute(self.rel, level, target).rpartition(".")
        if not module:
            return False
        return self._none_binds(self._found_from(os.path.dirname(self.rel), module), module, name)

    def _none_binds(self, found: List[str], module: str, name: str) -> bool:
        """Are there project modules ``found`` for an import of ``module``,
        and does each of them bind no ``name`` (or not parse)?  Then ``from
        module import name`` raises ``ImportError`` (or ``SyntaxError``)."""
        return bool(found) and all(self._lacks(other, module, name) or self._unparsable(other) for other in found)

    def _found_from(self, directory: str, module: str) -> List[str]:
        """The project modules an absolute import of ``module`` may load when
        the script runs from ``directory``: the one beside it, and the one
        from the project's root."""
        names = self.index.names
        sibling = module_name(os.path.join(directory, module.replace(".", os.sep) + ".py")) if directory else None
        return [other for other in (names.get(sibling) if sibling else None, names.get(module)) if other]

    def _imported_stops(self, rel: str, depth: int) -> bool:
        """Does project module ``rel`` (not this one), imported, stop at one
        of its own imports?"""
        known = self._import_stops.get((rel, depth))
        if known is None:
            summary = self.summary(rel) if rel != self.rel else None
            known = summary is not None and self._stops_at_import(rel, summary, depth)
            self._import_stops[(rel, depth)] = known
        return known

    def _holds_modules(self, directory: str, module: str) -> bool:
        """Is ``module`` (``data``) a directory of the project's modules,
        beside the importing module or at the root: one that holds a module
        somewhere below it (``data/loaders/coco.py``), not only data?"""
        path = module.replace(".", "/") + "/"
        starts = (f"{directory.replace(os.sep, '/')}/{path}", path) if directory else (path,)
        return any(rel.replace(os.sep, "/").startswith(starts) for rel in self.index.entries)

    def _missing_module(self, directory: str, module: str) -> bool:
        """Is ``module`` (``models.segnet``, ``pkg.data.loaders``) below a
        package directory of the project (``models/``, ``pkg/``, beside the
        importing module or at the root, where Python looks first, or in
        ``src/`` of a packaged project) one of
        whose directories on the way holds no file or directory of the next
        name?  In a project that is no package; or in one whose packaging
        builds nothing (no extension, no generated module), when that
        directory is a regular package (it has ``__init__.py``)."""
        parts = module.split(".")
        if len(parts) < 2:
            return False
        packaged = bool(self.index.packaging)
        if packaged and self.index.builds:
            return False
        seen = False
        # a packaged project of the ``src`` layout installs ``src/<package>`` as ``<package>``
        for base in ([directory] if directory else []) + [""] + (["src"] if packaged else []):
            path = os.path.join(self.index.root, base, parts[0])
            if not os.path.isdir(path):
                continue
            seen = True
            if not self._lacks_below(path, parts[1:], packaged):
                return False
        return seen

    @staticmethod
    def _lacks_below(path: str, parts: List[str], regular: bool) -> bool:
        """Does directory ``path`` lack ``parts`` (one name per level)?  A
        level that holds a file of the name (``leaf.py``, an extension) has
        it; a file named ``leaf`` alone is no module.  With ``regular``, only
        a directory with ``__init__.py`` can lack one."""
        for leaf in parts:
            try:
                names = os.listdir(path)
            except OSError:
                return False
            if leaf in names and os.path.isdir(os.path.join(path, leaf)):
                path = os.path.join(path, leaf)
                continue
            if any(n.startswith(leaf + ".") for n in names):
                return False
            return not regular or "__init__.py" in names
        return False

    def _unparsable(self, rel: str) -> bool:
        """Does project module ``rel`` (not this one) fail to parse, so that
        importing it raises ``SyntaxError`` (``mydataloader.py`` with a stray
        indentation)?  Not one that declares an encoding this Python does not
        know (``# -*- coding: future_fstrings -*-``): a package the project
        installs may register it."""
        return rel != self.rel and self.summary(rel) is None and self.index.entries[rel][3] == _UNPARSABLE \
            and not _foreign_codec(os.path.join(self.index.root, rel))

    def _lacks(self, rel: str, module: str, name: str, depth: int = 0) -> bool:
        """Does project module ``rel`` (imported as ``module``) bind no
        ``name``, nor any project module it ``*``-imports (``from .base
        import *`` in a package's ``__init__.py``)?  A ``*`` import of a
        module outside the project may bind anything."""
        if name.startswith("__") and name.endswith("__"):
            return False  # ``from src.models import __dict__``: every module has some
        summary = self.summary(rel) if rel != self.rel else None
        if summary is None or summary["d"] == "?" or has(summary["d"], name):  # type: ignore[arg-type]
            return False
        if name in summary["f"] or name in summary["c"] or name in summary["i"]:  # type: ignore[operator]
            return False
        if f"{module_name(rel)}.{name}" in self.index.names:
            return False  # a package's submodule imports
        for level, star in summary["s"]:  # type: ignore[attr-defined]
            found = self.index.module(_absolute(rel, level, star), rel)
            if found is None or found == rel or depth >= 3 or not self._lacks(found, star, name, depth + 1):
                return False
        return True

    def stars_lack(self, names: FrozenSet[str]) -> bool:
        """Does every ``*`` import of this module name a module of the project
        that binds none of ``names``, nor any project module it ``*``-imports
        (see ``_lacks``)?  A ``*`` import from outside the project may bind
        anything."""
        for level, star in self.own["s"]:  # type: ignore[attr-defined]
            found = self.index.module(_absolute(self.rel, level, star), self.rel)
            if found is None or found == self.rel or not all(self._lacks(found, star, n) for n in names):
                return False
        return True

    def _words(self, rel: str) -> str:
        """The words of module ``rel`` (see ``words``): this module's as linted."""
        return self.own_words if rel == self.rel else self.index.entries[rel][2]

    def _imported_module(self, rel: str, level: int, target: str) -> Optional[str]:
        """The project module an import in ``rel`` names (the longest prefix
        of its dotted target that is one), or None."""
        parts = _absolute(rel, level, target).split(".")
        for cut in range(len(parts), 0, -1):
            found = self.index.module(".".join(parts[:cut]), rel)
            if found is not None:
                return found
        return None

    # names -> definitions

    def resolve(self, rel: str, written: str, depth: int = 0) -> Optional[object]:
        """What ``written`` (a dotted name in module ``rel``) refers to: a
        ``(module, qualified name)`` in the project, an external dotted name,
        or None.  A name a package's ``__init__`` imports from one of its
        modules (``from .utils import *``) is that module's."""
        summary = self.summary(rel)
        if summary is None:
            return None
        head, _, rest = written.partition(".")
        if head in summary["f"] or head in summary["c"]:  # type: ignore[operator]
            return (rel, written)
        imported = summary["i"].get(head)  # type: ignore[attr-defined]
        if imported is None:
            return self._star_imported(rel, summary, head, written)
        level, target = imported
        target = _absolute(rel, level, target)
        full = f"{target}.{rest}" if rest else target
        parts = full.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            found = self.index.module(".".join(parts[:cut]), rel)
            if found is not None:
                inner = ".".join(parts[cut:])
                other = self.summary(found)
                if other is None:
                    return None
                name = inner.partition(".")[0]
                if depth < 4 and found != rel and name not in other["f"] and name not in other["c"]:  # type: ignore
                    again = self.resolve(found, inner, depth + 1)  # re-exported
                    if isinstance(again, tuple):
                        return again
                return (found, inner)
        return None if level else full

    def _star_imported(self, rel: str, summary: Summary, head: str, written: str, depth: int = 0) -> Optional[object]:
        """``head`` brought in by ``from module import *`` from a project
        module that defines it (a public name), or that has it from its own
        ``*`` imports (``from models import *`` where ``models`` does
        ``from utils.base import *``)."""
        if head.startswith("_"):
            return None
        for level, module in summary["s"]:  # type: ignore[union-attr]
            found = self.index.module(_absolute(rel, level, module), rel)
            other = self.summary(found) if found is not None and found != rel else None
            if other is None:
                continue
            if head in other["f"] or head in other["c"]:  # type: ignore[operator]
                return (found, written)
            if depth < 3 and head not in other["i"]:  # type: ignore[operator]
                again = self._star_imported(found, other, head, written, depth + 1)  # type: ignore[arg-type]
                if again is not None:
                    return again
        return None

    def ancestors(self, rel: str, klass: str) -> Tuple[List[Target], List[str]]:
        """The project classes ``klass`` derives from (itself first) and the
        external bases at the top of its hierarchy (dotted, as imported)."""
        inside: List[Target] = []
        outside: List[str] = []
        todo: List[object] = [(rel, klass)]
        while todo:
            item = todo.pop()
            if isinstance(item, str):
                if item not in outside:
                    outside.append(item)
                continue
            if item in inside:
                continue
            inside.append(item)  # type: ignore[arg-type]
            todo.extend(reversed(self._class_bases(item)))  # type: ignore[arg-type]
        return inside, outside

    def _class_bases(self, target: Target) -> List[object]:
        cached = self._bases.get(target)
        if cached is None:
            rel, klass = target
            summary = self.summary(rel) or {}
            cached = []
            for base in summary.get("c", {}).get(klass, ()):  # type: ignore[union-attr]
                found = self.resolve(rel, base)
                if isinstance(found, tuple):
                    if found[1] in self.summary(found[0])["c"]:  # type: ignore[index,operator]
                        cached.append(found)
                elif found is not None:
                    cached.append(found)
                elif base != "object":
                    cached.append(base)
            self._bases[target] = cached
        return cached

    # training steps in other modules

    def trains(self, klass: str, name: str) -> bool:
        """Does the project function ``name`` imported into this module, or
        the method ``name`` that ``self.name()`` reaches from this module's
        class ``klass`` through project base classes, run a training step
        in its own body (``loss.backward()``, ``optimizer.step()``) or through
        functions of its own module it calls?"""
        if klass:
            return self._method_trains(self.ancestors(self.rel, klass)[0][1:], name)
        found = self.resolve(self.rel, name)
        if not isinstance(found, tuple) or found[0] == self.rel:
            return False
        summary = self.summary(found[0])
        return summary is not None and found[1] in summary["t"]  # type: ignore[operator]

    def trains_instance(self, klass: str, name: str) -> bool:
        """Does the method ``name`` of the class ``klass`` imported into this
        module from another module of the project (or of a project base of
        that class) run a training step in its own body?"""
        found = self.resolve(self.rel, klass)
        if not isinstance(found, tuple) or found[0] == self.rel:
            return False
        summary = self.summary(found[0])
        if summary is None or found[1] not in summary["c"]:  # type: ignore[operator]
            return False
        return self._method_trains(self.ancestors(found[0], found[1])[0], name)

    def _method_trains(self, classes: List[Target], name: str) -> bool:
        """Does the method ``name`` that runs for the first of ``classes``
        defining it run a training step in its own body?"""
        found = self._first_definition(classes, name)
        return found is not None and found[1] in found[0]["t"]  # type: ignore[operator]

    def _first_definition(self, classes: List[Target], name: str) -> Optional[Tuple[Summary, str]]:
        """The summary and qualified name of the first of ``classes`` that
        defines the method ``name`` (a class before its bases: the one that runs)."""
        for rel, owner in classes:
            summary = self.summary(rel)
            qual = f"{owner}.{name}"
            if summary is not None and qual in summary["f"]:  # type: ignore[operator]
                return summary, qual
        return None

    def overridden_everywhere(self, klass: str, name: str) -> bool:
        """Is the method ``name`` of this module's abstract class ``klass`` (it
        derives from ``ABC``) one that no code of the project runs?  The
        project is closed (see ``closed``); no module calls ``klass`` itself
        (it only serves as a base) or ``klass.name``; it has subclasses, and
        each defines ``name`` again without calling ``super().name``.  Every module whose words spell
        ``klass`` is summarised for the answer; one that does not parse
        may do anything, so the answer is then no."""
        bases = self.own["c"].get(klass, ())  # type: ignore[attr-defined]
        if not any(base in ("ABC", "abc.ABC") for base in bases) or not self.closed():
            return False
        target = (self.rel, klass)
        key = f" {klass} "
        subclasses = 0
        for rel in [self.rel, *(r for r in self.index.entries if r != self.rel)]:
            if rel != self.rel and key not in self.index.entries[rel][2]:
                continue
            summary = self.summary(rel)
            if summary is None:
                return False
            calls = calls_of(summary, name)
            if calls_of(summary, klass) or any(written.endswith(f"{klass}.{name}") for written, *_ in calls):
                return False
            functions = summary["f"]
            supers = {k for written, _, _, k, _ in calls if written == f"super.{name}"}
            for sub in summary["c"]:  # type: ignore[union-attr]
                if (rel, sub) == target or target not in self._class_bases((rel, sub)):
                    continue
                if f"{sub}.{name}" not in functions or sub in supers:  # type: ignore[operator]
                    return False
                subclasses += 1
        return subclasses > 0

    def param_runs(self, written: str) -> List[Tuple[str, int]]:
        """The parameters the module function ``written`` refers to (an
        imported name of this module) calls, once and in its caller's grad
        mode: (name, position); empty when it is no function of another
        module of the project."""
        found = self._function_elsewhere(written)
        return found[0]["u"].get(found[1], []) if found else []  # type: ignore[attr-defined,no-any-return]

    def _function_elsewhere(self, written: str) -> Optional[Tuple[Summary, str]]:
        """The summary of the other module of the project that defines the
        function this module calls ``written``, and its name there."""
        found = self._definition(self.rel, written)
        return None if found is None or found[0] == self.rel else (found[1], found[2])

    def _definition(self, rel: str, written: str) -> Optional[Tuple[str, Summary, str]]:
        """The project module that defines what ``written`` in module ``rel``
        names, its summary and the name there; None when it is no project
        name or that module is not summarised (it does not parse)."""
        found = self.resolve(rel, written)
        if not isinstance(found, tuple):
            return None
        summary = self.summary(found[0])
        return None if summary is None else (found[0], summary, found[1])

    def code_for_0_3_in_project(self) -> bool:
        """Does any module of the project test ``type(h) == Variable``
        (``tests_type_is_variable``) or read a loss as ``loss.data[0]``
        (``reads_loss_by_index``): code for PyTorch 0.3, which later
        releases fail?  It says what release the project's other modules
        were written for too (``Variable(x, volatile=True)`` in a dataset
        module of a project whose training script reads ``loss.data[0]``).
        Worked out once per process; asked only of a module that calls
        nothing 0.4 added, for a finding about to be made."""
        index = self.index
        if index.for_0_3 is None:
            index.for_0_3 = any(
                summary is not None and summary["B"] for summary in map(index.summary, list(index.entries))
            )
        return index.for_0_3

    def imports_numpy_networks(self) -> bool:
        """Does this module, which imports no ``torch``, import modules of
        the project that import none either, one of which at least defines
        a class with its own ``backward`` method: a network written in NumPy
        (a course's ``Solver`` over its ``Classifier``)?  Its models and
        losses are then NumPy's, and autograd takes no part."""
        if _imports_torch(self.own):
            return False
        found = False
        seen = {self.rel}
        todo: List[Tuple[str, Summary, int]] = [(self.rel, self.own, 0)]
        while todo:  # the modules it imports, and those they import: none may bring torch
            rel, summary, depth = todo.pop()
            for module in self._imported_modules(rel, summary):
                if module is None or module in seen:
                    continue
                seen.add(module)
                entry = self.index.entries.get(module)
                if entry is None:
                    return False
                # its words hold every module it imports: without ``torch`` among
                # them it brings none; with it, its imports say (a comment about
                # "real torch" in a course's own NumPy framework imports nothing)
                other = self.summary(module)
                if other is None or " torch " in entry[2] and _imports_torch(other):
                    return False
                methods: Dict[str, str] = other["f"]  # type: ignore[assignment]
                found = found or any(qual.endswith(".backward") and qual.count(".") == 1 for qual in methods)
                if depth < 1:
                    todo.append((module, other, depth + 1))
        return found

    def volatile_flags(self) -> FrozenSet[str]:
        """The names the project modules this module imports hand on as
        ``volatile=<name>`` (``Variable(batch, volatile=self.evaluation)`` in
        a data loader), when they name no ``no_grad``: code of a release
        where that flag still turned grad off."""
        found: Set[str] = set()
        for module in self._imported_modules(self.rel, self.own):
            summary = self.summary(module) if module is not None and module != self.rel else None
            flags: List[str] = summary["o"] if summary is not None else []  # type: ignore[assignment]
            if flags and " no_grad " not in self._words(module):  # type: ignore[arg-type]
                found.update(flags)
        return frozenset(found)

    def eval_leaves(self, written: str) -> List[int]:
        """The positions of the parameters the module function ``written``
        (an imported name of this module) switches to eval mode, when its
        body switches nothing to training mode, runs no training step and
        another module of the project defines it: ``eval_net(net, loader)``
        returning with ``net`` in eval mode."""
        return self._leaves(written, "e")

    def builds(self, written: str, call: ast.Call) -> bool:
        """Can ``call`` build the class ``written`` (an imported name of this
        module) that another module of the project defines with an
        ``__init__`` of its own: does it pass every argument that
        ``__init__`` requires?  ``SSD(config, num_classes)`` of an
        ``__init__(self, config, num_classes, encoder)`` raises
        ``TypeError``.  Yes for anything else, or a class with ``__new__``."""
        found = self._function_elsewhere(written)
        if found is None:
            return True
        summary, klass = found
        if klass not in summary["c"] or f"{klass}.__new__" in summary["f"]:  # type: ignore[operator]
            return True
        return binds(summary["p"].get(f"{klass}.__init__"), call_shape(call))  # type: ignore[attr-defined]

    def train_leaves(self, written: str) -> List[int]:
        """The positions of the parameters the module function ``written``
        (an imported name of this module) switches to training mode, when its
        body switches nothing to eval mode and another module of the project
        defines it: ``model_train(net)`` returning with ``net`` in training
        mode."""
        return self._leaves(written, "j")

    def _leaves(self, written: str, key: str) -> List[int]:
        """What the summary's ``key`` (``"e"``: eval, ``"j"``: training)
        keeps for the function ``written`` names in another module."""
        found = self._function_elsewhere(written)
        return found[0][key].get(found[1], []) if found else []  # type: ignore[attr-defined,no-any-return]

    def own_parameters(self, klass: str) -> bool:
        """Does this module's class ``klass`` get ``parameters()`` from a
        class of the project (itself or a base) in a hierarchy that has no
        base outside the project?  Then it is no ``nn.Module``, and what
        ``self.parameters()`` gives is whatever that method returns (a
        homework's own ``Module`` keeping plain tensors)."""
        inside, outside = self.ancestors(self.rel, klass)
        if any(base not in ("object", "ABC", "abc.ABC") for base in outside):
            return False
        for rel, owner in inside:
            summary = self.summary(rel)
            if summary is not None and f"{owner}.parameters" in summary["f"]:  # type: ignore[operator]
                return True
        return False

    def external_bases(self, klass: str) -> List[str]:
        """The bases outside the project at the top of this module's class
        ``klass``'s hierarchy, through project classes (``pytorch_lightning.
        LightningModule`` for ``class GCBC(Hulc)`` with ``class
        Hulc(pl.LightningModule)`` in another module)."""
        return self.ancestors(self.rel, klass)[1]

    def is_module(self, klass: str) -> bool:
        """Does this module's class ``klass`` derive, through project classes,
        from ``torch.nn.Module`` (or a ``torch.nn`` class), or from a project
        class with a ``forward``?"""
        inside, outside = self.ancestors(self.rel, klass)
        if any(base.startswith("torch.nn.") or base.endswith("nn.Module") for base in outside):
            return True
        for rel, owner in inside[1:]:
            summary = self.summary(rel)
            if summary is not None and f"{owner}.forward" in summary["f"]:  # type: ignore[operator]
                return True
        return False

    def call_shapes(self, rel: str, qual: str, tests: bool = True, grad_off: bool = True) -> List[Shape]:
        """What each call in another module that may reach ``rel``'s
        function ``qual`` passes (unit tests' calls unless ``tests`` is false;
        calls that run without grad unless ``grad_off`` is false)."""
        klass, _, name = qual.rpartition(".")
        return [
            shape for site_rel, (written, code, caller, site_class, shape) in self._calls_named(name)
            if site_rel != rel and (tests or not self.unit_test(site_rel))
            and self._reaches(site_rel, written, site_class, rel, klass, name)
            and (grad_off or self._call_state(site_rel, code, caller) is not Grad.DISABLED)
        ]

    def _call_state(self, site_rel: str, code: str, caller: str) -> Grad:
        """The grad state a call recorded in ``site_rel`` with state ``code``
        in ``caller`` runs in: its caller's entry state where it inherits one
        (unknown for a call in a lambda or generator, ``?``)."""
        state = _STATE[code]
        if state is Grad.INHERITED and caller != "?":
            state = self.entry(site_rel, caller)
        return state

    def called_from_forward(self, rel: str, qual: str) -> bool:
        """Does a class's ``forward`` in another module call ``rel``'s
        function ``qual``?  Then the function computes part of that model."""
        klass, _, name = qual.rpartition(".")
        return any(
            site_rel != rel and site_class and caller == f"{site_class}.forward"
            and self._reaches(site_rel, written, site_class, rel, klass, name)
            for site_rel, (written, _, caller, site_class, _) in self._calls_named(name, _FORWARD_DEF)
        )

    def method_backpropagates(self, name: str) -> bool:
        """Does a method ``name`` of a project class run ``.backward()`` or
        ask ``torch.autograd.grad`` (an attack's ``run`` stepping its
        perturbation)?"""
        patterns = _def_pattern(name)
        for rel in list(self.index.entries):
            summary = None if self.index.cannot_answer(rel, patterns=patterns) else self.summary(rel)
            if summary is not None and any(
                qual.endswith(f".{name}") for qual in (*summary["b"], *summary["q"])  # type: ignore[misc]
            ):
                return True
        return False

    def backpropagated_elsewhere(self, rel: str, qual: str) -> bool:
        """Does a function of another module run ``.backward()`` on what a
        call of ``rel``'s function ``qual`` returns (``loss_v =
        self.validation_loss(...)`` then ``loss_v.backward()`` in a base
        class)?  Then the function computes part of a training objective."""
        klass, _, name = qual.rpartition(".")
        for site_rel, (written, _, caller, site_class, _) in self._calls_named(name):
            if site_rel == rel or caller in ("", "?"):
                continue
            summary = self.summary(site_rel)
            backprops = summary["b"].get(caller, ()) if summary is not None else ()  # type: ignore[attr-defined]
            if written in backprops and self._reaches(site_rel, written, site_class, rel, klass, name):
                return True
        return False

    def class_freeze(self, rel: str, written: str) -> Optional[Freeze]:
        """How the project class written ``written`` in module ``rel``
        freezes its parameters in ``__init__`` (see ``facts.init_freeze``)."""
        target = self._definition(rel, written)
        found = target[1]["z"].get(target[2]) if target is not None else None  # type: ignore[attr-defined]
        return tuple(found) if found is not None else None  # type: ignore[return-value]

    def parameter_free_class(self, rel: str, written: str) -> bool:
        """Is ``written`` in module ``rel`` a project module class that holds
        no parameter (see ``facts.parameter_free``), or one of a module that
        never names ``torch`` (``_torch_free``)?  One that keeps no
        buffer either (``stateless``) is looked for in its module's source,
        read again: asked only on the way to a report."""
        target = self._definition(rel, written)
        if target is None:
            return False
        if target[2] in target[1]["y"] or self._torch_free(*target):  # type: ignore[operator]
            return True
        key = (target[0], target[2])
        if key not in self._stateless:
            self._stateless[key] = self._stateless_class(target[0], target[2])
        return self._stateless[key]

    def _torch_free(self, rel: str, summary: Summary, name: str) -> bool:
        """Is ``name`` a class of module ``rel`` that, like the modules of the
        project it imports, never spells ``torch`` and imports from outside
        the project only the standard library and NumPy or SciPy?  Then it
        is no PyTorch module (a NumPy network with a ``forward`` and a
        ``backward`` of its own) and holds no tensor that requires grad."""
        if name not in summary["c"]:  # type: ignore[operator]
            return False
        todo: List[Tuple[str, Summary]] = [(rel, summary)]
        for module in self._imported_modules(rel, summary):
            found = self.summary(module) if module is not None and module != rel else None
            if module is not None and module != rel:
                if found is None:
                    return False
                todo.append((module, found))
        for where, known in todo:
            if " torch " in f" {self._words(where)} ":
                return False
            for level, target in [*known["i"].values(), *known["s"]]:  # type: ignore[attr-defined]
                if self._imported_module(where, level, target) is None and (
                    level or target.partition(".")[0] not in _NUMERIC_ONLY
                ):
                    return False
        return True

    def _stateless_class(self, rel: str, name: str) -> bool:
        tree = _parse_file(os.path.join(self.index.root, rel))
        if tree is None:
            return False
        classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
        return name in classes and parameter_free(classes[name], classes, stateless=True)

    def context_effects(self, rel: str, written: str) -> str:
        """What ``written`` in module ``rel``, a project context manager, may
        do to the code under it (see ``facts.context_effects``)."""
        target = self._definition(rel, written)
        return target[1]["h"].get(target[2], "") if target is not None else ""  # type: ignore[attr-defined]

    def forward_detaches(self, rel: str, written: str) -> Optional[bool]:
        """Does the ``forward`` of the project class written ``written`` in
        module ``rel`` return, on some path, a value that holds no graph (see
        ``facts.forward_detaches``)?  None when it is no project class."""
        target = self._definition(rel, written)
        return None if target is None else target[2] in target[1]["r"]  # type: ignore[operator]

    def loss_method_returns_number(self, rel: str, written: str, method: str) -> bool:
        """Does the method ``method`` that the project class written
        ``written`` in module ``rel`` has (its own or a project base's), named
        like a loss, return only Python numbers (``get_loss`` returning
        ``self.acc_loss.item()``)?"""
        target = self._definition(rel, written)
        found = self._first_definition(self.ancestors(target[0], target[2])[0], method) if target else None
        return found is not None and found[1] in found[0]["N"]  # type: ignore[operator]

    def loss_function_returns_number(self, rel: str, written: str) -> bool:
        """Does the project function that ``written`` names in module ``rel``
        (imported from another module), named like a loss, return only Python
        numbers (``calc_dataset_loss`` returning ``running_loss / len(loader)``
        of ``loss.item()`` terms)?"""
        target = self._definition(rel, written)
        return target is not None and target[2] in target[1]["N"]  # type: ignore[operator]

    def mode_free_class(self, rel: str, written: str) -> bool:
        """Is the class written ``written`` in module ``rel`` a project class
        whose modules (its own and, through imports, every project module
        they reach) show no layer that depends on the mode: no dropout,
        normalisation, recurrent or attention layer, no read of
        ``.training``, no ``train``/``eval`` override, and no import from
        outside the project but ``torch``, ``numpy``, the standard library
        and packages that bring no layer (``torchinfo``, ``tqdm``)?  Its
        instances then compute the same in training and eval mode.  Asked
        only on the way to a report."""
        modules = self._class_modules(rel, written)
        if modules is None:
            return False
        return not any(
            outside or _shows_the_mode(self._words(module), summary, _MODE_FRAGMENTS)
            for module, summary, outside in modules
        )

    def mode_free_everywhere(self) -> bool:
        """Is the project no package (see ``imported_by_nothing``: its code
        runs only the models it builds itself), and does no module of it
        show a layer or code that depends on the mode (the words
        ``mode_free_class`` looks for, in its code), override
        ``train``/``eval``, or import from outside the project anything but
        ``torch``, ``numpy``, ``scipy``, the standard library, torchvision's
        datasets and transforms, and packages that bring no model (``tqdm``,
        ``pandas``)?  Then every model the project can build computes the
        same in both modes.  Worked out once per process for the modules as
        saved (those whose text has one of the words first, stopping at the
        first that says no), and for this one as linted."""
        if not self.unpackaged():
            return False  # a package's users may hand its code any model
        index = self.index
        if index.mode_free is None:
            index.mode_free = self._saved_modules_mode_free()
        return index.mode_free and self._mode_free_module(self.rel, self.own, False)

    def _saved_modules_mode_free(self) -> bool:
        index = self.index
        entries = index.entries
        later: List[str] = []
        for rel in list(entries):
            if any(fragment in entries[rel][2] for fragment in _MODE_FREE_FRAGMENTS):
                # most likely to say no: at once, before any other is parsed
                if not self._mode_free_module(rel, index.summary(rel), True):
                    return False
            else:
                later.append(rel)
        return all(self._mode_free_module(rel, index.summary(rel), True) for rel in later)

    def _mode_free_module(self, rel: str, summary: Optional[Summary], saved: bool) -> bool:
        if summary is None:
            return False  # what a module that does not parse builds is not known
        text = self.index.entries[rel][2] if saved else self.own_words
        if _shows_the_mode(text, summary, _MODE_FREE_FRAGMENTS):
            return False
        for level, name in [*summary["i"].values(), *summary["s"]]:  # type: ignore[attr-defined]
            top, _, rest = _absolute(rel, level, name).partition(".")
            if self._imported_module(rel, level, name) is None and (level or not (
                _plain_package(top) or top in _NO_MODEL_PACKAGES
                or (top == "torchvision" and rest.partition(".")[0] in TORCHVISION_DATA)
                # ``import torchvision`` for ``torchvision.utils.save_image``: no ``.models`` read
                or (top == "torchvision" and not rest and " models " not in text and " hub " not in text)
            )):
                return False
        return True

    def class_code(self, rel: str, written: str) -> Optional[Tuple[ast.Module, ast.ClassDef]]:
        """The tree of the module of another module's class written
        ``written`` in ``rel``, and the class's definition at its top, parsed
        from the file as saved; None when it is no class of another module
        of the project, or its module does not parse.  Asked only on the way
        to a report (``mode_free_class`` said no by the words of its modules),
        each module parsed once per process."""
        target = self.resolve(rel, written)
        if not isinstance(target, tuple) or target[0] == rel or "." in target[1]:
            return None
        module, name = target
        index = self.index
        if module not in index.entries:
            return None
        trees = index.trees
        if module not in trees:
            trees[module] = _parse_file(os.path.join(index.root, module))
        tree = trees[module]
        node = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name), None) \
            if tree is not None else None
        return (tree, node) if tree is not None and node is not None else None

    def mode_dependent_class(self, rel: str, written: str) -> bool:
        """Is the class written ``written`` in module ``rel`` a project class
        one of whose modules (its own, or a project module they import)
        names dropout or batch or instance normalisation?  Its instances
        then compute differently in training and eval mode.  Asked only on
        the way to a report."""
        modules = self._class_modules(rel, written)
        return modules is not None and any(
            any(fragment in self._words(module) for fragment in _DEPENDENT_FRAGMENTS) for module, _, _ in modules
        )

    def _class_modules(self, rel: str, written: str) -> Optional[List[Tuple[str, Dict[str, object], bool]]]:
        """The project modules of the class written ``written`` in ``rel``:
        its own and every project module reached through their imports, each
        with its summary and whether it imports from outside the project
        (beyond ``torch``, ``numpy``, ``scipy``, the standard library and
        ``_NO_LAYER_PACKAGES``).
        None when it is not a project class or a module is not indexed."""
        target = self.resolve(rel, written)
        if not isinstance(target, tuple):
            return None
        out: List[Tuple[str, Dict[str, object], bool]] = []
        seen: Set[str] = set()
        todo = [target[0]]
        while todo:
            module = todo.pop()
            if module in seen:
                continue
            seen.add(module)
            summary = self.summary(module)
            if summary is None or module not in self.index.entries or len(seen) > 40:
                return None
            outside = False
            for level, name in [*summary["i"].values(), *summary["s"]]:  # type: ignore[attr-defined]
                found = self._imported_module(module, level, name)
                if found is not None:
                    todo.append(found)
                elif level or not _plain_package(top := _absolute(module, level, name).partition(".")[0]) \
                        and top not in _NO_LAYER_PACKAGES:
                    outside = True
            out.append((module, summary, outside))
        return out

    def names_class_asking_autograd(self) -> bool:
        """Does this module name (import, call or use) a model class of the
        project one of whose methods calls ``autograd.grad`` (see
        ``facts.asks_autograd``)?  Only the modules that use the name
        ``grad`` (``x.grad`` in an attack's forward too) or ``enable_grad``
        (a test-time adaptation's), define a ``forward`` and spell what
        such a class does are read: names a summary keeps as well as the
        text, so an empty cache and a warm one read the same modules."""
        return any(
            f" {name} " in self.own_words
            for _, summary in self.mentioning(*_AUTOGRAD_NAMES, patterns=_ASKING_AUTOGRAD)
            for name in summary["g"]  # type: ignore[attr-defined]
        )

    def names_class_turning_grad_off(self, methods: FrozenSet[str]) -> bool:
        """Does this module name a class of the project one of whose
        ``methods`` turns grad off itself (see
        ``facts.methods_turning_grad_off``)?  Only the modules that use a
        grad-disabling name are read."""
        own = self.own["c"]
        return any(
            f" {name} " in self.own_words and not methods.isdisjoint(turning)
            and (rel == self.rel or name not in own)  # a class of its own of that name is the one meant
            for rel, summary in self.mentioning(*GRAD_OFF_NAMES, classes_of=self.own_words)
            for name, turning in summary["w"].items()  # type: ignore[attr-defined]
        )

    def made_turning_grad_off(self, factory: str, method: str) -> bool:
        """Is ``factory``, a name this module imports (``create_model``), a
        function of a project module that imports modules at run time
        (``importlib.import_module("models." + name + "_model")``), and
        does a class of a module in that module's directory or below turn
        grad off itself in ``method`` (``facts.methods_turning_grad_off``)?
        The model the function makes may be any class of its package."""
        imported = self.own["i"].get(factory)  # type: ignore[attr-defined]
        if imported is None:
            return False
        module, _, function = _absolute(self.rel, *imported).rpartition(".")
        rel = self.index.module(module, self.rel) if module else None
        summary = self.summary(rel) if rel is not None else None
        if summary is None or function not in summary["f"] or not summary["Y"]:
            return False
        package = os.path.dirname(rel)  # type: ignore[arg-type]
        below = package + os.sep if package else ""  # a module at the root: the whole project
        return any(
            other.startswith(below) and any(method in turning for turning in found["w"].values())  # type: ignore
            for other, found in self.mentioning(*GRAD_OFF_NAMES)
        )

    def selects_grad_off(self, selectors: FrozenSet[str]) -> bool:
        """Does a class of the project run its forward without grad when
        called with one of ``selectors`` (``is_eval=True``; see
        ``facts.grad_off_selectors``)?  Only the modules that use the
        argument's name are read."""
        names = {selector.split("=", 1)[0] for selector in selectors}
        return any(not selectors.isdisjoint(summary["l"]) for _, summary in self.mentioning(*names))

    def pins_torch_before(self, version: Tuple[int, int]) -> bool:
        """Does the project say it runs on a PyTorch older than ``version``
        (see ``pins_old_torch``)?  The nearest directory above the module,
        up to the root, whose files name a PyTorch version says: a project
        that keeps an older one of its own below the root (``v1/setup.py``
        pinning ``torch==1.4.0``) is that one's answer for its modules."""
        return pins_old_torch(self._pinning_directory(), version)

    def names_only_torch_from(self, version: Tuple[int, int]) -> bool:
        """Does the project name PyTorch versions, all of them ``version`` or
        later (``torch==1.5.1``), read as ``pins_torch_before`` reads them?"""
        versions = _torch_versions(self._pinning_directory())
        return bool(versions) and all(found >= version for found in versions)

    def _pinning_directory(self) -> str:
        """The nearest directory above the module, up to the root, whose
        files name a PyTorch version (the root when none does)."""
        directory = os.path.dirname(self.rel)
        while directory and not _torch_versions(os.path.join(self.index.root, directory)):
            directory = os.path.dirname(directory)
        return os.path.join(self.index.root, directory) if directory else self.index.root

    def forward_asks_autograd(self) -> bool:
        """Does a model's ``forward`` somewhere in the project call
        ``autograd.grad``, itself or through up to two functions it calls
        (``forward`` -> ``get_outputs`` -> ``compute_forces``: forces as the
        gradient of an energy), or register a gradient hook on a tensor
        (``attn.register_hook(self.save_attn_gradients)``, which raises on a
        tensor that does not require grad)?  Such a model needs grad to run at all.
        Only modules in the linted module's top-level directory (or at the
        root) count, and only those whose words spell the names followed
        are read."""
        if self._asks_in_forward is None:
            self._asks_in_forward = self._forward_asks_autograd()
        return self._asks_in_forward

    def _forward_asks_autograd(self) -> bool:
        # a repository of separate experiments in top-level directories: only
        # the linted module's own directory (and the root's modules) count
        top, inside, _ = self.rel.replace(os.sep, "/").partition("/")

        def near(rel: str) -> bool:
            head, below, _ = rel.replace(os.sep, "/").partition("/")
            return not inside or not below or head == top

        names: Set[str] = set()
        for rel, summary in self.mentioning("grad", "register_hook", patterns=_CALLING_GRAD):
            if not near(rel):
                continue
            for qual in summary["q"]:  # type: ignore[attr-defined]
                if qual.endswith(".forward"):
                    return True
                names.add(qual.rpartition(".")[2])
        seen = set(names)
        for _ in range(2):
            if not names:
                break
            callers: Set[str] = set()
            for rel, summary in self.mentioning(*sorted(names)):
                if not near(rel):
                    continue
                for name in names:
                    for _, _, caller, _, _ in calls_of(summary, name):
                        if caller.endswith(".forward"):
                            return True
                        if caller not in ("", "?"):
                            callers.add(caller.rpartition(".")[2])
            names = callers - seen
            seen |= names
        return False

    def any_forward_detaches(self) -> bool:
        """Does some class of the project have such a ``forward``?  Only the
        modules that define a ``forward`` and use a detaching name (``data``,
        ``detach``, ``argsort``) are read: such a ``forward`` uses one."""
        # (a module that does not parse defines no class anything runs)
        return any(summary["r"] for _, summary in self.mentioning(
            *DETACHING_NAMES, "no_grad", "inference_mode", patterns=(_FORWARD_OR_CALL_DEF,)
        ))

    # model mode at a function's entry

    def method_switches_self_to_eval(self, name: str, klass: Optional[str] = None) -> Optional[bool]:
        """Does every project class method called ``name`` switch ``self`` to
        eval mode in its own body (None: the project defines no such method)?
        With ``klass`` (a class as written in this module), only the method
        that class has or inherits counts.  Without it, every module's summary
        is read: asked only on the way to a report."""
        if klass is not None:
            target = self.resolve(self.rel, klass)
            if not isinstance(target, tuple):
                return None
            found = self._first_definition(self.ancestors(*target)[0], name)
            return None if found is None else found[1] in found[0]["v"]  # type: ignore[operator]
        found = None
        suffix = f".{name}"
        for rel in itertools.chain([self.rel], (r for r in self.index.entries if r != self.rel)):
            summary = self.summary(rel)
            if summary is None:
                continue
            for qual in summary["f"]:  # type: ignore[attr-defined]
                if qual.endswith(suffix) and qual.count(".") == 1:
                    if qual not in summary["v"]:  # type: ignore[operator]
                        return False
                    found = True
        return found

    def trained_by_caller(self, rel: str, qual: str, position: Optional[int], keyword: Optional[str]) -> Optional[str]:
        """Where a call in the project (not a unit test) passes a model its
        function switched to training mode, and never to eval mode, as the
        argument ``position`` (counted without ``self``) or ``keyword`` of
        ``rel``'s function ``qual``: ``"train_net() in train.py"``, or None."""
        klass, _, name = qual.rpartition(".")
        if name == "forward" or name.startswith("__"):
            return None
        for site_rel, summary, local in self._names_for(name):
            trained: Dict[str, List[TrainedCall]] = summary["m"]  # type: ignore[assignment]
            for written, caller, site_class, slot in trained.get(local, ()):
                if slot != position and slot != keyword or self.unit_test(site_rel):
                    continue
                if self._reaches(site_rel, written, site_class, rel, klass, name):
                    where = f"`{caller.rpartition('.')[2]}()`" if caller else "top-level code"
                    return where + (" in this module" if site_rel == rel else f" in `{site_rel}`")
        return None

    # grad mode at a function's entry

    def entry(self, rel: str, qual: str) -> Grad:
        key = (rel, qual)
        answer = self._entry.get(key)
        if answer is not None:
            return answer
        self._entry[key] = Grad.INHERITED  # in progress: recursion sees "unknown"
        answer = self._compute_entry(rel, qual)
        self._entry[key] = answer
        return answer

    def entry_where(self, rel: str, qual: str, admits: Callable[[Shape], bool]) -> Grad:
        """Like ``entry``, counting only the calls whose arguments ``admits``
        (a statement behind ``if mode == "eval":`` runs only for the calls
        that can pass that value).  Not memoized: each statement asks once."""
        return self._compute_entry(rel, qual, admits)

    def _compute_entry(self, rel: str, qual: str, admits: Optional[Callable[[Shape], bool]] = None) -> Grad:
        summary = self.summary(rel)
        if summary is None:
            return Grad.INHERITED
        code = summary["f"].get(qual)  # type: ignore[attr-defined]
        if code is None or code == "x":
            return Grad.INHERITED
        if code != "i":
            return _STATE[code]
        klass, _, name = qual.rpartition(".")
        if name == "forward" or (name.startswith("__") and name.endswith("__")) or self._escapes(rel, klass, name):
            return Grad.INHERITED  # ``module(x)`` and operators call these: their callers are not written down
        states: Set[Grad] = set()
        for site_rel, (_, code, caller, _, _) in self._reaching_calls(rel, qual, summary, admits):
            state = self._call_state(site_rel, code, caller)
            states.add(state)
            if state is Grad.ENABLED:
                return state
        if not states:
            return Grad.INHERITED
        if states == {Grad.DISABLED}:
            return Grad.DISABLED
        return Grad.UNKNOWN if Grad.UNKNOWN in states else Grad.INHERITED

    def _reaching_calls(
        self, rel: str, qual: str, summary: Summary, admits: Optional[Callable[[Shape], bool]] = None,
    ) -> Iterator[Tuple[str, Call]]:
        """The calls in the project that can run module ``rel``'s function
        ``qual`` (``summary`` is ``rel``'s), with their modules: not its
        calls of itself, only those whose arguments bind its parameters
        (and that ``admits`` admits), none in a unit test."""
        klass, _, name = qual.rpartition(".")
        arity = summary["p"].get(qual)  # type: ignore[attr-defined]
        for site_rel, call in self._calls_named(name):
            written, _, caller, site_class, shape = call
            if site_rel == rel and caller == qual:
                continue  # it calls itself: that call runs as its other callers run it
            if admits is not None and not admits(shape):
                continue
            if not binds(arity, shape):
                continue  # ``agent.run()`` cannot be ``Inferer.run(model, image)``
            if self.unit_test(site_rel):
                continue  # a unit test calls with grad as it likes: not how the project runs it
            if self._reaches(site_rel, written, site_class, rel, klass, name):
                yield site_rel, call

    def asked_through_by_every_caller(self, qual: str) -> bool:
        """Is this module's function ``qual`` called, and only by functions
        that ask autograd for gradients (``torch.autograd.grad``: an attack
        differentiating a smoothed prediction by its input), in this module
        or another?  Such callers need the graph the function builds.  No
        when it is used as a value anywhere, or called from module level or
        from a unit test only."""
        klass, _, name = qual.rpartition(".")
        if name.startswith("__") or self._escapes(self.rel, klass, name):
            return False
        found = False
        for site_rel, (_, _, caller, _, _) in self._reaching_calls(self.rel, qual, self.own):
            summary = self.summary(site_rel)
            if caller in ("", "?") or summary is None or caller not in summary["q"]:  # type: ignore[operator]
                return False
            found = True
        return found

    def _calls_named(self, name: str, pattern: Optional["re.Pattern[bytes]"] = None) -> Iterator[Tuple[str, Call]]:
        for rel, summary, local in self._names_for(name, pattern):
            for call in calls_of(summary, local):
                yield rel, call

    def _names_for(
        self, name: str, pattern: Optional["re.Pattern[bytes]"] = None,
    ) -> Iterator[Tuple[str, Summary, str]]:
        """Each module that may call ``name``, with each name it would call
        it by: ``name`` itself and the aliases it imports it as (with
        ``pattern``, only modules whose text matches it).  A module whose
        text never writes ``name`` before a ``(`` or an ``as`` is not
        summarised for it (see ``_call_pattern``)."""
        patterns = _call_pattern(name)
        for rel, summary in self.mentioning(name, patterns=patterns + (pattern,) if pattern else patterns):
            yield rel, summary, name
            for local, (_, target) in summary["i"].items():  # type: ignore[attr-defined]
                if local != name and target.rpartition(".")[2] == name:
                    yield rel, summary, local

    def _escapes(self, rel: str, klass: str, name: str) -> bool:
        """Is the function used as a value somewhere (so called from anywhere)?"""
        for other, summary in self.mentioning(name):
            if klass:
                if has(summary["a"], name):  # type: ignore[arg-type]
                    return True
                continue
            passed_on = other != rel and has(summary["a"], name)  # type: ignore[arg-type]
            if passed_on and self._imports(other, summary, rel):
                return True  # ``module.helper`` passed on (not another object's ``.validation``)
            if has(summary["n"], name) and (other == rel or self._imports_function(other, summary, rel, name)):
                return True
        return False

    def _imports_function(self, other: str, summary: Summary, rel: str, name: str) -> bool:
        """Does module ``other`` import ``name`` as module ``rel``'s function
        of that name, or as something it cannot tell apart from it?  Not
        when the name is a module of the project (``from utils import
        encode`` of ``utils/encode.py``, whose ``encode.encode(...)`` is a
        call) or another module's object."""
        if name not in summary["i"]:  # type: ignore[operator]
            return False
        found = self.resolve(other, name)
        return found is None or found == (rel, name)

    def _imports(self, other: str, summary: Summary, rel: str) -> bool:
        """Does module ``other`` import module ``rel`` (or a name of it)?"""
        return rel in self._imported_modules(other, summary)

    def _reaches(self, site_rel: str, written: str, site_class: str, rel: str, klass: str, name: str) -> bool:
        """Can the call written ``written`` in ``site_rel`` run ``rel``'s
        ``klass.name`` (or function ``name`` when ``klass`` is empty)?"""
        head, _, _ = written.partition(".")
        if not klass:
            if head in ("self", "cls", "super", "?"):
                return False
            return self.resolve(site_rel, written) == (rel, name)
        if head in ("self", "cls", "super") and written.count(".") == 1:
            if not site_class:
                return False
            mine = self.ancestors(rel, klass)[0]
            if (site_rel, site_class) in mine:
                return True  # the class itself, or a base class whose code calls the override
            return (rel, klass) in self.ancestors(site_rel, site_class)[0]
        if "." not in written:
            return False  # ``generate(args)``: a function of that name, not a method
        # ``obj.method()`` on any other receiver: it may be this method
        # (counted, which can only make the answer less certain), unless the
        # receiver names a class or module that resolves elsewhere.
        if site_rel != rel and rel == self.rel and self._nothing_imports_me():
            return False  # nothing can import this module: another's objects are never of its classes
        if head == "?":
            return True
        found = self.resolve(site_rel, written.rpartition(".")[0])
        if isinstance(found, tuple):
            return found == (rel, klass) or (rel, klass) in self.ancestors(*found)[0]
        summary = self.summary(site_rel)
        # an imported name that is no class of the project (another package's,
        # or a module the project lacks): its methods are not this one
        return summary is None or head not in summary["i"]  # type: ignore[operator]


def _bindings(node: Union[ast.Import, ast.ImportFrom]) -> Iterator[Tuple[str, int, str]]:
    """The names an import binds: (local name, level, dotted target);
    ``import a.b`` binds ``a``, ``from m import *`` nothing it names."""
    for alias in node.names:
        if isinstance(node, ast.Import):
            if alias.asname is not None:
                yield alias.asname, 0, alias.name
            else:
                root = alias.name.split(".", 1)[0]
                yield root, 0, root
        elif alias.name != "*":
            target = f"{node.module}.{alias.name}" if node.module else alias.name
            yield alias.asname or alias.name, node.level, target


def _foreign_codec(path: str) -> bool:
    """Does the file at ``path`` declare an encoding (PEP 263, as Python
    itself reads the declaration) that Python does not know?"""
    try:
        with open(path, "rb") as f:
            tokenize.detect_encoding(f.readline)
    except OSError:
        return False
    except SyntaxError as error:
        return str(error).startswith("unknown encoding")
    return False


def _imports_torch(summary: Summary) -> bool:
    """Does the module a summary is of import ``torch`` (or a module of it)
    anywhere?"""
    imported: List[Tuple[int, str]] = [*summary["i"].values(), *summary["s"]]  # type: ignore[attr-defined,misc]
    return any(not level and (target == "torch" or target.startswith("torch.")) for level, target in imported)


def _absolute(rel: str, level: int, target: str) -> str:
    """An import's dotted target as written in module ``rel``, made absolute
    (``from ..data import x`` in ``pkg/a/b.py`` is ``pkg.data.x``)."""
    if not level:
        return target
    package = module_name(rel).split(".")
    if not rel.endswith("__init__.py"):
        package = package[:-1]
    package = package[: len(package) - (level - 1)] if level > 1 else package
    return ".".join([*package, target]) if package else target


#: Words of the layers whose output depends on the mode: dropout, batch and
#: instance normalisation.
_DEPENDENT_FRAGMENTS = ("ropout", "atchNorm", "atch_norm", "nstanceNorm", "nstance_norm", "SyncBN")
#: Words of a module's names that show a layer or code depending on the
#: mode (matched inside longer names: ``nn.Dropout2d``, ``F.dropout``,
#: ``BatchNorm2d``, ``F.instance_norm``, ``self.training``, ``nn.LSTM(...,
#: dropout=p)``); layer and group norm compute the same in both modes.
_MODE_FRAGMENTS = (
    *_DEPENDENT_FRAGMENTS, "rop_path", "ropPath", "RReLU", "LSTM", "GRU", "RNN", "ransformer", "ttention", "training",
    "hub",
)
#: ``_MODE_FRAGMENTS``, and ``jit``: a scripted model loaded whole may hold any layer.
_MODE_FREE_FRAGMENTS = (*_MODE_FRAGMENTS, "jit")
#: Packages whose names bring no model layer: the standard library's, and these.
_PLAIN_PACKAGES = frozenset({"torch", "numpy", "math", "scipy"})
#: Packages a project uses beside its models that bring none: data, plots,
#: settings, logging, progress bars.
_NO_MODEL_PACKAGES = frozenset({
    "tqdm", "pandas", "matplotlib", "seaborn", "sklearn", "yaml", "toml", "tomli", "PIL", "cv2", "h5py",
    "tensorboardX", "wandb", "mlflow", "click", "fire", "hydra", "omegaconf", "rich", "loguru", "termcolor",
    "tabulate", "joblib", "requests", "imageio", "skimage", "networkx", "sympy", "plotly", "typer", "pydantic",
    "attr", "attrs", "statsmodels", "pyarrow", "polars", "dotenv", "comet_ml", "neptune", "tensorboard",
    "torchinfo", "torchsummary", "gin", "absl", "ml_collections", "easydict", "munch", "configargparse",
    "jsonargparse", "visdom", "colorama", "prettytable", "psutil", "dill", "pytest", "einops", "gflags",
    "Augmentor", "albumentations", "imgaug",
})


#: ``_NO_MODEL_PACKAGES`` but those that build objects a configuration names
#: (``hydra.utils.instantiate(cfg.head)``): what a class module imports
#: from these brings it no layer.
_NO_LAYER_PACKAGES = _NO_MODEL_PACKAGES - {"hydra", "gin", "jsonargparse"}


def _shows_the_mode(words: str, summary: Summary, fragments: Tuple[str, ...]) -> bool:
    """Do a module's ``words`` name a layer or code that depends on the
    mode (one of ``fragments``), or does it override ``train``/``eval``?  A
    class with no base (``class Trainer:`` with its ``train`` loop) is no
    module and overrides nothing."""
    classes = summary["c"]
    return any(fragment in words for fragment in fragments) or any(
        qual.endswith((".train", ".eval")) and classes.get(qual.rpartition(".")[0], ("?",)) not in ([], ["object"])
        for qual in summary["f"]  # type: ignore[union-attr]
    )


def _plain_package(top: str) -> bool:
    return top in _PLAIN_PACKAGES or top in getattr(sys, "stdlib_module_names", ())


# A PyTorch version as READMEs and requirement files write it, after the
# word ``torch`` or ``pytorch`` (not ``torchvision``): ``PyTorch 0.3.1``,
# ``pytorch 0.2.0_2``, ``torch==0.3.1``, ``torch<0.4``, ``pytorch=0.2.0=py36``,
# a table's ``| pytorch | 0.3.1 |``, a link's ``[PyTorch](https://...) 0.3``,
# ``**PyTorch** 0.3``, an environment's ``pytorch-0.2.0-gpu-py3`` (not
# ``pytorch-lightning 1.0``), also as an item of a list with no space after
# its dash (``-Pytorch 0.3.1``).  Searched with re.IGNORECASE; compiled
# (and cached by ``re``) on first need, not at import: only a project with a
# ``volatile=`` flag or loop about to be reported asks.
_TORCH_VERSION = (
    r"(?:(?<![\w.-])|(?<=\n-)|(?<=^-))(?:py)?torch(?![A-Za-z_]|-[A-Za-z])(?:\]\([^)\s]*\)|[*`]+|-(?=v?\d))?"
    r"[^\S\n]*(?:version[^\S\n]*)?([:=<>~!|(]*)[^\S\n]*v?(\d+)\.(\d+)"
    r"((?:\.\d+)*(?:\+(?![\w.])|[^\S\n]+(?:or|and)[^\S\n]+(?:later|newer|higher|above|up)\b))?"
)
#: The files at a project's root that say which PyTorch it wants (and its
#: README, conda environments, shell scripts and ``Dockerfile``: see
#: ``may_pin_torch``).
_REQUIREMENT_FILES = ("requirements.txt", "setup.py")
#: A README at a project's root, by its name in lower case.
_README_NAMES = frozenset({"readme.md", "readme.rst", "readme.txt", "readme"})
#: the PyTorch versions each directory names
_TORCH_VERSIONS: Dict[str, List[Tuple[int, int]]] = {}


def pins_old_torch(root: str, before: Tuple[int, int] = (0, 4)) -> bool:
    """Do the files at ``root`` that name a PyTorch version (README,
    requirements, setup.py, conda environment, shell scripts and
    ``Dockerfile``) name only versions before
    ``before`` (0.4: when ``volatile=True`` still disabled grad)?  Any later
    version named (``PyTorch0.4 is supported``), a lower bound
    (``pytorch>=0.3.1``, ``PyTorch 1.7+``, ``torch 0.3 or later``), or no
    version at all, is no."""
    versions = _torch_versions(root)
    return bool(versions) and all(version < before for version in versions)


def may_pin_torch(name: str) -> bool:
    """Is a file so named one that ``_torch_versions`` reads for the PyTorch
    a project wants: a README whatever its case (``Readme.md``), the
    requirements, ``setup.py``, a conda environment by any name (a ``.yml``
    file, read only when it lists ``dependencies:``), a set-up script
    (``pip install .../torch-0.3.1-cp36-cp36m-linux_x86_64.whl``) or a
    ``Dockerfile``?"""
    return (name in _REQUIREMENT_FILES or name.lower() in _README_NAMES or name.endswith((".yml", ".yaml", ".sh"))
            or name == "Dockerfile")


def _torch_versions(directory: str) -> List[Tuple[int, int]]:
    """The PyTorch versions the files in ``directory`` name (see ``pins_old_torch``)."""
    if directory not in _TORCH_VERSIONS:
        versions = []
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            names = []
        for name in names:
            if not may_pin_torch(name):
                continue
            conda = name.endswith((".yml", ".yaml"))
            try:
                with open(os.path.join(directory, name), encoding="utf-8", errors="replace") as f:
                    text = f.read(200_000)
            except OSError:
                continue
            if conda and "dependencies:" not in text:
                continue  # CI or tool settings, no environment
            versions += [
                # ``pytorch>=0.3.1``, ``PyTorch 1.7+``, ``1.7 or later``: later releases too
                (999, 0) if ">" in op or floor else _release(int(major), minor)
                for op, major, minor, floor in re.findall(_TORCH_VERSION, text, re.I)
            ]
        _TORCH_VERSIONS[directory] = versions
    return _TORCH_VERSIONS[directory]


def _release(major: int, minor: str) -> Tuple[int, int]:
    """The release a version names: PyTorch had no 0.10 or later (0.4.1 came
    before 1.0), so ``pytorch 0.20`` and ``torch 0.31`` mean 0.2 and 0.3."""
    if major == 0 and len(minor) > 1:
        return 0, int(minor[0])
    return major, int(minor)


def open_project(
    filename: str, root: str, no_grad_decorators: Tuple[str, ...], tree: ast.AST, text: Optional[str] = None
) -> Optional[Project]:
    """The project ``filename`` belongs to, seen from it, or None when it is
    in none (or too large to index).  ``tree`` is the module as linted, from
    ``text``: when that is what the file on disk holds, its cached summary
    serves (and a fresh one is kept for the next run)."""
    if filename in ("-", "stdin") or not isinstance(tree, ast.Module):
        return None
    path = os.path.abspath(filename)
    root = os.path.abspath(root) if root else (find_root(path) or "")
    if not root:
        return None
    rel = os.path.relpath(path, root)
    if rel.startswith(os.pardir) or not rel.endswith(".py"):
        return None
    index = index_for(root, no_grad_decorators)
    if index is None:
        return None
    saved = text is not None and _on_disk(path) == text
    entry = index.entries.get(rel)
    own = index.summary(rel) if saved and entry is not None and entry[3] else None
    if own is None:
        own = summarize(tree, no_grad_decorators)
        if saved and entry is not None:  # the next save of the same text reads it from the cache
            index.entries[rel] = (entry[0], entry[1], words(own), _encode(own))
            index._decoded[rel] = own
            index.dirty = True
    return Project(index, rel, own)


def _on_disk(path: str) -> Optional[str]:
    """The file's text as flake8 reads it (UTF-8, line endings kept), or None."""
    try:
        with open(path, encoding="utf-8", newline="") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError):
        return None
    return text[1:] if text.startswith("\ufeff") else text
