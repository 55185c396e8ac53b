"""Parse once, visit once, collect violations.  ``check`` never raises.

The traversal is one libcst visitor (``_Driver``).  For every node it first
updates the shared ``Context`` (imports, scopes, bindings, grad state) and then
calls the hooks of every enabled rule; on the way out, rules see the node
before the context leaves it.  Reports carry nodes; positions are computed
once, after the traversal, and only when something was reported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from flake8_gradmode import facts
from flake8_gradmode.context import (
    FunctionInfo,
    Grad,
    GradTracker,
    ImportTable,
    effective,
    resolve_function,
)
from flake8_gradmode.rule import Report, Rule, Violation
from flake8_gradmode.settings import Settings

PARSE_ERROR = "GRD000"


@dataclass
class ClassInfo:
    name: str
    is_module: bool
    #: number of running frames when the class body started
    frame_depth: int
    param_attrs: Set[str] = field(default_factory=set)
    buffer_attrs: Set[str] = field(default_factory=set)


class Context:
    """What every rule may ask about the node being visited."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.imports = ImportTable()
        self.grad = GradTracker(settings.no_grad_decorators)
        self.classes: List[ClassInfo] = []
        self.reports: List[Report] = []
        # caller resolution: functions by key, calls by key, escaped keys
        self._functions: Dict[Tuple[str, ...], List[FunctionInfo]] = {}
        self._calls: List[Tuple[Tuple[str, ...], Grad, Optional[FunctionInfo]]] = []
        self._call_names: Set[int] = set()
        self._referenced: Set[str] = set()
        self._def_names: Set[int] = set()

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

    def add_report(self, report: Report) -> None:
        self.reports.append(report)

    # -- bookkeeping ---------------------------------------------------------

    def bind(self, target: cst.BaseExpression, kind: facts.Kind, value: Optional[cst.BaseExpression]) -> None:
        if isinstance(target, cst.Name):
            self.grad.frame.names[target.value] = facts.Binding(kind, self.grad.state, value, self.grad.function)
        elif isinstance(target, (cst.Tuple, cst.List)):
            elements = [e.value for e in target.elements]
            if kind is facts.Kind.NAMED_PARAM and len(elements) == 2:
                self.bind(elements[0], facts.Kind.OTHER, None)
                self.bind(elements[1], facts.Kind.PARAM, value)
                return
            for element in elements:
                self.bind(element, facts.Kind.OTHER, None)
        elif isinstance(target, cst.StarredElement):
            self.bind(target.value, facts.Kind.OTHER, None)
        elif (
            isinstance(target, cst.Attribute)
            and isinstance(target.value, cst.Name)
            and target.value.value == "self"
            and kind is facts.Kind.PARAM
            and self.classes
        ):
            self.classes[-1].param_attrs.add(target.attr.value)

    def record_function(self, node: cst.FunctionDef) -> FunctionInfo:
        outer = self.grad.function
        in_class = bool(self.classes) and self.classes[-1].frame_depth == len(self.grad.frames)
        entry = self.grad.decorator_state(self.imports, node.decorators) or Grad.INHERITED
        info = FunctionInfo(
            name=node.name.value,
            node=node,
            entry=entry,
            class_name=self.classes[-1].name if in_class else None,
            parent=outer,
        )
        if in_class:
            key: Optional[Tuple[str, ...]] = ("method", self.classes[-1].name, info.name)
        elif len(self.grad.frames) == 1:
            key = ("function", info.name)
        else:
            key = None  # nested function: callers are not resolved
        if key is not None:
            self._functions.setdefault(key, []).append(info)
        return info

    def enter_class(self, node: cst.ClassDef) -> None:
        is_module = any(facts.is_module_class_base(self, b.value) for b in node.bases)
        self.classes.append(ClassInfo(node.name.value, is_module, len(self.grad.frames)))
        self._def_names.add(id(node.name))

    def record_call(self, call: cst.Call) -> None:
        func = call.func
        key: Optional[Tuple[str, ...]] = None
        if isinstance(func, cst.Name):
            key = ("function", func.value)
            self._call_names.add(id(func))
        elif (
            isinstance(func, cst.Attribute)
            and isinstance(func.value, cst.Name)
            and func.value.value == "self"
        ):
            fn = self.grad.function
            if fn is not None and fn.class_name is not None:
                key = ("method", fn.class_name, func.attr.value)
                self._call_names.add(id(func.attr))
        if key is not None:
            self._calls.append((key, self.grad.state, self.grad.function))

    def record_name(self, node: cst.Name) -> None:
        if id(node) not in self._call_names and id(node) not in self._def_names:
            self._referenced.add(node.value)

    def finish(self) -> None:
        """Attach module-local calls to the functions they call."""
        for key, infos in self._functions.items():
            if len(infos) > 1 or key[-1] in self._referenced:
                for info in infos:
                    info.escaped = True
        for key, state, caller in self._calls:
            for info in self._functions.get(key, ()):
                info.calls.append((state, caller))


class _Driver(cst.CSTVisitor):
    """Updates the context, then dispatches to the rules' hooks."""

    def __init__(self, ctx: Context, rules: Sequence[Rule]) -> None:
        super().__init__()
        self.ctx = ctx
        self._visit: Dict[str, List[Callable]] = {}
        self._leave: Dict[str, List[Callable]] = {}
        for rule in rules:
            for attr in dir(rule):
                if attr.startswith("visit_"):
                    self._visit.setdefault(attr[6:], []).append(getattr(rule, attr))
                elif attr.startswith("leave_"):
                    self._leave.setdefault(attr[6:], []).append(getattr(rule, attr))

    # node hooks ---------------------------------------------------------------

    def on_visit(self, node: cst.CSTNode) -> bool:
        name = type(node).__name__
        ctx = self.ctx
        grad = ctx.grad
        if name in ("IndentedBlock", "SimpleStatementSuite"):
            grad.enter_block()
        elif name == "Import":
            ctx.imports.add_import(node)  # type: ignore[arg-type]
        elif name == "ImportFrom":
            ctx.imports.add_import_from(node)  # type: ignore[arg-type]
        elif name == "Call":
            ctx.record_call(node)  # type: ignore[arg-type]
            self._class_members(node)  # type: ignore[arg-type]
        elif name == "Name":
            ctx.record_name(node)  # type: ignore[arg-type]
        elif name == "GeneratorExp":
            grad.push_frame("generator", None, Grad.INHERITED)
        elif name == "FunctionDef":
            ctx._def_names.add(id(node.name))  # type: ignore[attr-defined]
        elif name == "ClassDef":
            ctx.enter_class(node)  # type: ignore[arg-type]
        for hook in self._visit.get(name, ()):
            hook(node)
        return True

    def on_leave(self, original_node: cst.CSTNode) -> None:
        name = type(original_node).__name__
        for hook in self._leave.get(name, ()):
            hook(original_node)
        ctx = self.ctx
        if name in ("IndentedBlock", "SimpleStatementSuite"):
            ctx.grad.leave_block()
        elif name == "Assign":
            node = original_node  # type: cst.Assign  # type: ignore[assignment]
            kind = facts.classify(ctx, node.value)  # type: ignore[attr-defined]
            for target in node.targets:  # type: ignore[attr-defined]
                ctx.bind(target.target, kind, node.value)  # type: ignore[attr-defined]
        elif name == "AnnAssign":
            value = original_node.value  # type: ignore[attr-defined]
            if value is not None:
                ctx.bind(original_node.target, facts.classify(ctx, value), value)  # type: ignore[attr-defined]
        elif name == "Expr":
            self._imperative_grad(original_node)  # type: ignore[arg-type]
        elif name == "GeneratorExp":
            ctx.grad.pop_frame()
        elif name == "ClassDef":
            ctx.classes.pop()

    def on_visit_attribute(self, node: cst.CSTNode, attribute: str) -> None:
        if attribute != "body":
            return
        ctx = self.ctx
        grad = ctx.grad
        if isinstance(node, cst.With):
            grad.push_state(grad.with_state(ctx.imports, node.items))
            for item in node.items:
                if item.asname is not None:
                    ctx.bind(item.asname.name, facts.Kind.OTHER, None)
        elif isinstance(node, cst.FunctionDef):
            info = ctx.record_function(node)
            state = info.entry
            grad.push_frame("function", info, state)
            for param in _all_params(node.params):
                ctx.bind(param.name, facts.Kind.OTHER, None)
        elif isinstance(node, cst.Lambda):
            grad.push_frame("lambda", None, Grad.INHERITED)
            for param in _all_params(node.params):
                ctx.bind(param.name, facts.Kind.OTHER, None)
        elif isinstance(node, cst.For):
            kind = facts.element_kind(facts.classify(ctx, node.iter))
            if kind is facts.Kind.OTHER:
                kind = _enumerate_kind(ctx, node)
            ctx.bind(node.target, kind, node.iter)

    def on_leave_attribute(self, original_node: cst.CSTNode, attribute: str) -> None:
        if attribute != "body":
            return
        if isinstance(original_node, cst.With):
            self.ctx.grad.pop_state()
        elif isinstance(original_node, (cst.FunctionDef, cst.Lambda)):
            self.ctx.grad.pop_frame()

    # helpers ---------------------------------------------------------------

    def _imperative_grad(self, node: cst.Expr) -> None:
        """``torch.set_grad_enabled(False)`` as a statement: to the block's end."""
        call = node.value
        if not isinstance(call, cst.Call):
            return
        api = self.ctx.grad.grad_api(self.ctx.imports, call.func)
        if api == "set_grad_enabled":
            state = self.ctx.grad.effect(self.ctx.imports, call, decorator=False)
            if state is not None:
                self.ctx.grad.push_state(state)

    def _class_members(self, call: cst.Call) -> None:
        """``self.register_buffer("w", ...)`` / ``self.register_parameter("w", ...)``."""
        func = call.func
        ctx = self.ctx
        if not (
            ctx.classes
            and isinstance(func, cst.Attribute)
            and isinstance(func.value, cst.Name)
            and func.value.value == "self"
            and func.attr.value in ("register_buffer", "register_parameter")
            and call.args
            and isinstance(call.args[0].value, cst.SimpleString)
        ):
            return
        name = call.args[0].value.evaluated_value  # type: ignore[union-attr]
        if isinstance(name, str):
            if func.attr.value == "register_buffer":
                ctx.classes[-1].buffer_attrs.add(name)
            else:
                ctx.classes[-1].param_attrs.add(name)


def _all_params(params: cst.Parameters) -> Iterable[cst.Param]:
    yield from params.posonly_params
    yield from params.params
    yield from params.kwonly_params
    if isinstance(params.star_arg, cst.Param):
        yield params.star_arg
    if params.star_kwarg is not None:
        yield params.star_kwarg


def _enumerate_kind(ctx: Context, node: cst.For) -> facts.Kind:
    """``for i, p in enumerate(m.parameters())``: ``p`` is a parameter."""
    it = node.iter
    if (
        isinstance(it, cst.Call)
        and ctx.imports.resolve(it.func) == "enumerate"
        and it.args
        and isinstance(node.target, cst.Tuple)
        and len(node.target.elements) == 2
    ):
        inner = facts.element_kind(facts.classify(ctx, it.args[0].value))
        if inner is not facts.Kind.OTHER:
            ctx.bind(node.target.elements[0].value, facts.Kind.OTHER, None)
            ctx.bind(node.target.elements[1].value, inner, it)
            return facts.Kind.OTHER
    return facts.Kind.OTHER


# --- the public entry point -------------------------------------------------

_TRIGGER_CACHE: Dict[Tuple[str, ...], "re.Pattern[str]"] = {}


def _sieve(rules: Sequence[type]) -> "re.Pattern[str]":
    words = tuple(sorted({w for r in rules for w in r.triggers}))
    pattern = _TRIGGER_CACHE.get(words)
    if pattern is None:
        pattern = re.compile("|".join(re.escape(w) for w in words) or r"(?!x)x")
        _TRIGGER_CACHE[words] = pattern
    return pattern


def check(
    source: str,
    settings: Settings = Settings(),
    rules: Optional[Sequence[type]] = None,
    use_sieve: bool = True,
) -> List[Violation]:
    """All violations in ``source``, sorted.  Never raises."""
    from flake8_gradmode.registry import RULES

    rule_classes = tuple(RULES if rules is None else rules)
    try:
        if use_sieve and not _sieve(rule_classes).search(source):
            return []
        return _check(source, settings, rule_classes)
    except RecursionError:
        message = "file nests too deeply for grad-mode analysis; grad-mode rules skipped it"
        return [Violation(1, 0, PARSE_ERROR, message)]
    except Exception as exc:  # flake8 must never see an exception
        reason = f"{type(exc).__name__}: {_first_line(exc)}"
        message = f"grad-mode analysis failed ({reason}); grad-mode rules skipped this file, please report it"
        return [Violation(1, 0, PARSE_ERROR, message)]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:120] if text else ""


def _check(source: str, settings: Settings, rule_classes: Sequence[type]) -> List[Violation]:
    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError as exc:
        line = max(1, exc.raw_line)
        return [
            Violation(
                line,
                max(0, exc.raw_column),
                PARSE_ERROR,
                f"libcst cannot parse this file ({_first_line(exc)}); grad-mode rules skipped it",
            )
        ]
    ctx = Context(settings)
    rules = [cls(ctx) for cls in rule_classes]
    module.visit(_Driver(ctx, rules))
    ctx.finish()
    reports = [r for r in ctx.reports if r.condition is None or r.condition()]
    if not reports:
        return []
    positions = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    out = set()
    for report in reports:
        start = positions[report.node].start
        out.add(Violation(start.line, start.column, report.code, report.message))
    return sorted(out, key=lambda v: (v.line, v.col, v.code, v.message))


__all__ = ["Context", "check", "effective", "resolve_function", "PARSE_ERROR"]
