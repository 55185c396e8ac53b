"""Parse once, visit once, collect violations.  ``check`` never raises.

The traversal is one libcst visitor (``_Driver``).  For every node it first
lets the ``Tracker`` update the shared ``Context`` (imports, scopes, bindings,
grad state, loops and calls) and then calls the hooks of every enabled rule;
on the way out, rules see the node before the tracker leaves it.  After the
traversal, module-local callers are attached to the functions they call and
each rule's ``finish`` runs.  Reports carry nodes; positions are computed once,
at the end, and only when something was reported.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from flake8_gradmode import facts, flow
from flake8_gradmode.context import FunctionInfo, Grad, GradTracker, ImportTable, dotted
from flake8_gradmode.rule import Report, Rule, Violation
from flake8_gradmode.settings import Settings

PARSE_ERROR = "GRD000"

#: Method calls that show their receiver is an ``nn.Module``.
_MODULE_METHODS = frozenset(
    {
        "eval",
        "train",
        "parameters",
        "named_parameters",
        "modules",
        "named_modules",
        "children",
        "cuda",
        "to",
        "requires_grad_",
    }
)
#: Chained calls that return the same module (``Net().to(device)``).
_SAME_MODULE = frozenset({"to", "cuda", "cpu", "float", "double", "half", "train", "eval", "requires_grad_"})
_TEST_FRAMEWORKS = frozenset({"pytest", "unittest", "nose", "hypothesis"})
#: Layers whose behaviour depends on the training flag.
_MODE_DEPENDENT = re.compile(
    r"^torch\.nn\.(functional\.)?(\w*[Dd]ropout\w*|\w*BatchNorm\w*|InstanceNorm\w*|Transformer\w*|MultiheadAttention)$"
    r"|^torch\.(\w*dropout\w*|nn\.functional\.batch_norm)$|^torchvision\.models\.[a-z]\w*$"
)
#: Callees that build a fresh model, in training mode.
_MODEL_FACTORIES = re.compile(r"^(torchvision\.models\.[a-z]\w*|timm\.create_model|timm\.models\.create_model)$")


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

    def __init__(self, settings: Settings, filename: str = "") -> None:
        self.settings = settings
        self.filename = filename
        self.imports = ImportTable()
        self.grad = GradTracker(settings.no_grad_decorators)
        self.flow = flow.Flow()
        self.classes: List[ClassInfo] = []
        self.reports: List[Report] = []
        # caller resolution: functions by key, calls by key, names used as values
        self.functions: Dict[Tuple[str, ...], List[FunctionInfo]] = {}
        self.call_sites: Dict[Tuple[str, ...], List[Tuple[flow.Scope, int]]] = {}
        self._calls: List[Tuple[Tuple[str, ...], Grad, Optional[FunctionInfo]]] = []
        self._call_names: Set[int] = set()
        self._def_names: Set[int] = set()
        #: names used other than by calling them: as bare names, and as
        #: attribute names (``obj.evaluate``) which only methods can be
        self._referenced: Set[str] = set()
        self._referenced_attrs: Set[str] = set()
        self._super_targets: Dict[Tuple[str, ...], List[Tuple[str, ...]]] = {}
        self._attr_names: Set[int] = set()

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

    # -- bookkeeping the tracker does ------------------------------------------

    def bind(self, target: cst.BaseExpression, kind: facts.Kind, value: Optional[cst.BaseExpression]) -> None:
        if isinstance(target, cst.Name):
            self.grad.frame.names[target.value] = facts.Binding(
                kind, self.grad.state, value, self.grad.function, self.flow.seq
            )
            if value is not None and self._builds_model(value):
                self.flow.scope.built_models.add(target.value)
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

    def _builds_model(self, value: cst.BaseExpression) -> bool:
        """``Net()``, ``nn.Linear(2, 2)``, ``torchvision.models.resnet18()``,
        possibly followed by ``.to(device)``: a fresh model, in training mode."""
        while (
            isinstance(value, cst.Call)
            and isinstance(value.func, cst.Attribute)
            and value.func.attr.value in _SAME_MODULE
        ):
            value = value.func.value
        if not isinstance(value, cst.Call):
            return False
        qual = self.imports.resolve(value.func) or ""
        if isinstance(value.func, cst.Name) and value.func.value in self.flow.module_classes:
            return True
        last = qual.rsplit(".", 1)[-1]
        return bool(_MODEL_FACTORIES.match(qual)) or (qual.startswith("torch.nn.") and last[:1].isupper())

    def function_key(self, name: str, in_class: bool) -> Optional[Tuple[str, ...]]:
        if in_class:
            return ("method", self.classes[-1].name, name)
        if len(self.grad.frames) == 1:
            return ("function", name)
        return None  # a nested function: its callers are not resolved

    def call_key(self, func: cst.BaseExpression) -> Optional[Tuple[str, ...]]:
        """The module-local function a call may reach, as a key."""
        if isinstance(func, cst.Name):
            return ("function", func.value)
        if not isinstance(func, cst.Attribute):
            return None
        owner = func.value
        if isinstance(owner, cst.Name) and owner.value == "self":
            fn = self.grad.function
            if fn is not None and fn.class_name is not None:
                return ("method", fn.class_name, func.attr.value)
        if isinstance(owner, cst.Call) and isinstance(owner.func, cst.Name) and owner.func.value == "super":
            return ("super", func.attr.value)  # any class's method of that name
        return None

    def _expand(self, key: Tuple[str, ...]) -> List[Tuple[str, ...]]:
        if key[0] != "super":
            return [key]
        cached = self._super_targets.get(key)
        if cached is None:
            cached = [k for k in self.functions if k[0] == "method" and k[-1] == key[-1]]
            self._super_targets[key] = cached
        return cached

    def finish(self) -> None:
        """Attach module-local calls to the functions they call."""
        for key, infos in self.functions.items():
            used = key[-1] in self._referenced or (key[0] == "method" and key[-1] in self._referenced_attrs)
            if len(infos) > 1 or used:
                for info in infos:
                    info.escaped = True
        for key, state, caller in self._calls:
            for target in self._expand(key):
                for info in self.functions.get(target, ()):
                    info.calls.append((state, caller))
        for key in [k for k in self.call_sites if k[0] == "super"]:
            for target in self._expand(key):
                self.call_sites.setdefault(target, []).extend(self.call_sites[key])


class Tracker:
    """Keeps the context in step with the traversal.  Its hooks run before the
    rules' ``visit_*`` hooks and after their ``leave_*`` hooks."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.grad = ctx.grad
        self.flow = ctx.flow

    # blocks and scopes ---------------------------------------------------------

    def visit_IndentedBlock(self, node: cst.IndentedBlock) -> None:
        self.grad.enter_block()

    visit_SimpleStatementSuite = visit_IndentedBlock

    def leave_IndentedBlock(self, node: cst.IndentedBlock) -> None:
        self.grad.leave_block()

    leave_SimpleStatementSuite = leave_IndentedBlock

    def visit_Import(self, node: cst.Import) -> None:
        self.ctx.imports.add_import(node)
        if any((dotted(a.name) or "").split(".")[0] in _TEST_FRAMEWORKS for a in node.names):
            self.flow.test_framework = True

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        self.ctx.imports.add_import_from(node)
        if node.module is not None and (dotted(node.module) or "").split(".")[0] in _TEST_FRAMEWORKS:
            self.flow.test_framework = True

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        ctx = self.ctx
        is_module = any(facts.is_module_class_base(ctx, b.value) for b in node.bases)
        ctx.classes.append(ClassInfo(node.name.value, is_module, len(self.grad.frames)))
        ctx._def_names.add(id(node.name))
        if is_module:
            self.flow.module_classes.add(node.name.value)

    def leave_ClassDef(self, node: cst.ClassDef) -> None:
        self.ctx.classes.pop()

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.ctx._def_names.add(id(node.name))
        if node.name.value.startswith("test_"):
            self.flow.test_framework = True

    def visit_FunctionDef_body(self, node: cst.FunctionDef) -> None:
        ctx = self.ctx
        in_class = bool(ctx.classes) and ctx.classes[-1].frame_depth == len(self.grad.frames)
        info = FunctionInfo(
            name=node.name.value,
            node=node,
            entry=self.grad.decorator_state(ctx.imports, node.decorators) or Grad.INHERITED,
            class_name=ctx.classes[-1].name if in_class else None,
            parent=self.grad.function,
            key=ctx.function_key(node.name.value, in_class),
        )
        if info.key is not None:
            ctx.functions.setdefault(info.key, []).append(info)
        self.grad.push_frame("function", info, info.entry)
        scope = flow.Scope(info, info.class_name)
        if info.key is not None:
            self.flow.by_key.setdefault(info.key, []).append(scope)
        self.flow.scopes.append(scope)
        self.flow.all_scopes.append(scope)
        for param in _all_params(node.params):
            ctx.bind(param.name, facts.Kind.OTHER, None)

    def leave_FunctionDef_body(self, node: cst.FunctionDef) -> None:
        self.grad.pop_frame()
        self.flow.scopes.pop()

    def visit_Lambda_body(self, node: cst.Lambda) -> None:
        self.grad.push_frame("lambda", None, Grad.INHERITED)
        for param in _all_params(node.params):
            self.ctx.bind(param.name, facts.Kind.OTHER, None)

    def leave_Lambda_body(self, node: cst.Lambda) -> None:
        self.grad.pop_frame()

    def visit_GeneratorExp(self, node: cst.GeneratorExp) -> None:
        self.grad.push_frame("generator", None, Grad.INHERITED)

    def leave_GeneratorExp(self, node: cst.GeneratorExp) -> None:
        self.grad.pop_frame()

    # grad contexts -------------------------------------------------------------

    def visit_With_body(self, node: cst.With) -> None:
        self.grad.push_state(self.grad.with_state(self.ctx.imports, node.items))
        for item in node.items:
            if item.asname is not None:
                self.ctx.bind(item.asname.name, facts.Kind.OTHER, item.item)

    def leave_With_body(self, node: cst.With) -> None:
        self.grad.pop_state()

    def visit_Attribute(self, node: cst.Attribute) -> None:
        self.ctx._attr_names.add(id(node.attr))
        if node.attr.value == "training" and isinstance(node.value, cst.Name) and node.value.value == "self":
            self.flow.mode_matters = True  # a module that behaves differently in training

    def visit_Expr(self, node: cst.Expr) -> None:
        """A bare ``model.eval`` (GRD002) counts as the switch its author meant."""
        value = node.value
        if isinstance(value, cst.Attribute) and value.attr.value == "eval":
            self.flow.scope.eval_switches.append(self.flow.tick())

    def _made_leaf(self, node: cst.CSTNode) -> None:
        """``x.requires_grad_()`` / ``x.requires_grad = True``: from here on
        ``x`` is a leaf that requires grad."""
        target: Optional[cst.BaseExpression] = None
        if isinstance(node, cst.Expr) and isinstance(node.value, cst.Call):
            func = node.value.func
            if isinstance(func, cst.Attribute) and func.attr.value == "requires_grad_":
                args = node.value.args
                if not args or (isinstance(args[0].value, cst.Name) and args[0].value.value == "True"):
                    target = func.value
        elif isinstance(node, cst.Assign) and isinstance(node.value, cst.Name) and node.value.value == "True":
            for t in node.targets:
                if isinstance(t.target, cst.Attribute) and t.target.attr.value == "requires_grad":
                    target = t.target.value
        if isinstance(target, cst.Name):
            self.ctx.bind(target, facts.Kind.PARAM, None)

    def leave_Expr(self, node: cst.Expr) -> None:
        self._made_leaf(node)
        """``torch.set_grad_enabled(False)`` as a statement, or a grad context
        entered on an ``ExitStack``: from here to the block's end."""
        call = node.value
        if not isinstance(call, cst.Call):
            return
        state = None
        if self.grad.grad_api(self.ctx.imports, call.func) == "set_grad_enabled":
            state = self.grad.effect(self.ctx.imports, call)
        elif isinstance(call.func, cst.Attribute) and call.func.attr.value == "enter_context" and call.args:
            # ExitStack: stack.enter_context(torch.no_grad()) holds to the block's end
            state = self.grad.effect(self.ctx.imports, call.args[0].value)
        if state is not None:
            self.grad.push_state(state)

    # bindings ------------------------------------------------------------------

    def leave_Assign(self, node: cst.Assign) -> None:
        kind = facts.classify(self.ctx, node.value)
        for target in node.targets:
            self.ctx.bind(target.target, kind, node.value)
            if isinstance(target.target, cst.Name):
                deps = self.flow.scope.deps.setdefault(target.target.value, set())
                deps.update(flow.names_in(node.value, split=False))
        self._made_leaf(node)

    def leave_AugAssign(self, node: cst.AugAssign) -> None:
        """``x += v``: ``x`` keeps its binding's place but its value is now unknown."""
        target = node.target
        if isinstance(target, cst.Name):
            self.flow.scope.deps.setdefault(target.value, set()).update(flow.names_in(node.value, split=False))
            binding = self.grad.frame.names.get(target.value)
            if isinstance(binding, facts.Binding) and binding.kind is not facts.Kind.PARAM:
                self.grad.frame.names[target.value] = dataclasses.replace(binding, kind=facts.Kind.OTHER, value=None)

    def visit_Return(self, node: cst.Return) -> None:
        if node.value is not None:
            self.flow.scope.returned.update(flow.names_in(node.value, split=False))

    def leave_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None:
            self.ctx.bind(node.target, facts.classify(self.ctx, node.value), node.value)

    # loops ---------------------------------------------------------------------

    def visit_For_body(self, node: cst.For) -> None:
        ctx = self.ctx
        kind = facts.element_kind(facts.classify(ctx, node.iter))
        if kind is facts.Kind.OTHER and not _bind_enumerate(ctx, node):
            ctx.bind(node.target, kind, None)
        elif kind is not facts.Kind.OTHER:
            ctx.bind(node.target, kind, node.iter)
        loop = self._open_loop(node, flow.names_in(node.iter))
        it = node.iter
        loop.counts = isinstance(it, cst.Call) and self.ctx.imports.resolve(it.func) == "range"

    def visit_While_body(self, node: cst.While) -> None:
        self._open_loop(node, []).counts = True

    def leave_For_body(self, node: cst.For) -> None:
        self.flow.open_loops.pop().end_seq = self.flow.tick()

    leave_While_body = leave_For_body

    def _open_loop(self, node: cst.CSTNode, iter_tokens: List[str]) -> flow.Loop:
        scope = self.flow.scope
        parent = self._innermost_loop()
        loop = flow.Loop(node, scope, parent, self.flow.tick(), iter_tokens)
        self.flow.open_loops.append(loop)
        self.flow.loops.append(loop)
        scope.loops.append(loop)
        return loop

    def _innermost_loop(self) -> Optional[flow.Loop]:
        loops = self.flow.loops_here()
        return loops[0] if loops else None

    # calls and names -------------------------------------------------------------

    def visit_Name(self, node: cst.Name) -> None:
        ctx = self.ctx
        if id(node) in ctx._call_names or id(node) in ctx._def_names:
            return
        if id(node) in ctx._attr_names:
            ctx._referenced_attrs.add(node.value)
        else:
            ctx._referenced.add(node.value)

    def visit_Arg(self, node: cst.Arg) -> None:
        if node.keyword is not None:
            self.ctx._def_names.add(id(node.keyword))  # f(name=...) uses no function

    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.ctx
        seq = self.flow.tick()
        func = node.func
        key = ctx.call_key(func)
        if key is not None:
            ctx._call_names.add(id(func.attr) if isinstance(func, cst.Attribute) else id(func))
            ctx._calls.append((key, self.grad.state, self.grad.function))
            ctx.call_sites.setdefault(key, []).append((self.flow.scope, seq))
            self.flow.scope.local_calls.append((seq, key))
            for loop in self.flow.loops_here():
                loop.local_calls.append((seq, key))
        if isinstance(func, cst.Attribute):
            self._method_call(node, func, seq)
        self.flow.nodes[seq] = node
        self._training_step(node, seq)
        self._model_call(node, seq)
        if not self.flow.mode_matters and _MODE_DEPENDENT.match(ctx.imports.resolve(func) or ""):
            self.flow.mode_matters = True

    def _method_call(self, node: cst.Call, func: cst.Attribute, seq: int) -> None:
        method = func.attr.value
        owner = dotted(func.value)
        scope = self.flow.scope
        if owner is not None and method in _MODULE_METHODS:
            self.flow.module_evidence.add(owner)
        if method in ("train", "eval"):
            self.flow.switch_keys[seq] = owner or ""
        if method == "train" and len(node.args) <= 1:
            self.flow.mode_matters = True  # the author switches modes explicitly
            if _switches_to_train(node):
                scope.train_switches.append(seq)
            elif not _switches_to_eval(node, method):
                scope.maybe_train_switches.append(seq)  # .train(flag)
        if _switches_to_eval(node, method) or method in self.ctx.settings.eval_mode_helpers:
            scope.eval_switches.append(seq)
            if scope.function is not None and scope.function.name == "__init__" and scope.class_name:
                self.flow.class_init_eval.add(scope.class_name)
        if method in ("register_buffer", "register_parameter"):
            self._class_member(node, method)

    def _class_member(self, call: cst.Call, method: str) -> None:
        """``self.register_buffer("w", ...)`` / ``self.register_parameter("w", ...)``."""
        ctx = self.ctx
        func = call.func
        if not (
            ctx.classes
            and isinstance(func, cst.Attribute)
            and isinstance(func.value, cst.Name)
            and func.value.value == "self"
            and call.args
            and isinstance(call.args[0].value, cst.SimpleString)
        ):
            return
        name = call.args[0].value.evaluated_value
        if isinstance(name, str):
            target = ctx.classes[-1].buffer_attrs if method == "register_buffer" else ctx.classes[-1].param_attrs
            target.add(name)

    def _training_step(self, node: cst.Call, seq: int) -> None:
        if not facts.is_training_step(self.ctx, node):
            return
        func = node.func
        if isinstance(func, cst.Attribute) and func.attr.value in ("backward", "manual_backward"):
            targets = [func.value] + [a.value for a in node.args[:1]]
            for target in targets:
                if isinstance(target, cst.Call):  # scaler.scale(loss).backward()
                    targets.extend(a.value for a in target.args[:1])
                elif isinstance(target, cst.Name):
                    self.flow.scope.backward_names.add(target.value)
        self.flow.scope.training_step = True
        if not facts.is_gradient_only(self.ctx, node):
            self.flow.scope.training_steps.append(seq)
        for loop in self.flow.loops_here():
            loop.training_step = True

    def _model_call(self, node: cst.Call, seq: int) -> None:
        func = node.func
        if isinstance(func, cst.Name) and func.value in self.ctx.settings.eval_mode_helpers:
            self.flow.scope.eval_switches.append(seq)
        key = _callee_key(func)
        if key is None or key == "super":
            return
        root = key.split(".", 1)[0]
        if root != "self" and self.ctx.imports.is_imported(root):
            return
        if key == "self":
            cls = self.ctx.current_class()
            if cls is None or not cls.is_module:
                return
        cls = self.ctx.current_class()
        call = flow.ModelCall(node, key, seq, self.grad.state, self.grad.function, cls.name if cls else None)
        self.flow.scope.model_calls.append(call)
        for loop in self.flow.loops_here():
            loop.model_calls.append(call)

    def leave_Call(self, node: cst.Call) -> None:
        """A function handed to evaluation machinery (``Engine(eval_step)``)."""
        callee = dotted(node.func) or ""
        if flow.FRAMEWORK_RUNNERS.search(callee):
            for arg in node.args:
                name = dotted(arg.value)
                if name is not None:
                    self.flow.framework_callbacks.add(name.rsplit(".", 1)[-1])


def _switches_to_eval(call: cst.Call, method: str) -> bool:
    """``m.eval()``, ``m.train(False)``, ``m.train(mode=False)``."""
    if method == "eval":
        return not call.args
    if method == "train" and call.args:
        value = call.args[0].value
        return isinstance(value, cst.Name) and value.value == "False"
    return False


def _switches_to_train(call: cst.Call) -> bool:
    """``m.train()``, ``m.train(True)``."""
    if not call.args:
        return True
    value = call.args[0].value
    return isinstance(value, cst.Name) and value.value == "True"


def _callee_key(func: cst.BaseExpression) -> Optional[str]:
    """``model`` for ``model(x)`` and ``model.forward(x)``."""
    if isinstance(func, cst.Attribute) and func.attr.value == "forward":
        return dotted(func.value)
    return dotted(func)


def _all_params(params: cst.Parameters) -> Iterable[cst.Param]:
    yield from params.posonly_params
    yield from params.params
    yield from params.kwonly_params
    if isinstance(params.star_arg, cst.Param):
        yield params.star_arg
    if params.star_kwarg is not None:
        yield params.star_kwarg


def _bind_enumerate(ctx: Context, node: cst.For) -> bool:
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
            return True
    return False


#: Nodes no rule looks at: whitespace, comments, punctuation, operators.
_SKIPPED = (
    cst.BaseParenthesizableWhitespace,
    cst.TrailingWhitespace,
    cst.EmptyLine,
    cst.Newline,
    cst.Comment,
    cst.Comma,
    cst.Dot,
    cst.Colon,
    cst.Semicolon,
    cst.LeftParen,
    cst.RightParen,
    cst.LeftSquareBracket,
    cst.RightSquareBracket,
    cst.LeftCurlyBrace,
    cst.RightCurlyBrace,
    cst.AssignEqual,
    cst.BaseAugOp,
    cst.BaseBinaryOp,
    cst.BaseBooleanOp,
    cst.BaseCompOp,
    cst.BaseUnaryOp,
)
#: Where libcst's field order is not the order the code runs in.
_FIELD_ORDER = {
    cst.FunctionDef: ("decorators", "name", "params", "returns", "body"),
    cst.ClassDef: ("decorators", "name", "bases", "keywords", "body"),
}
_FIELDS: Dict[type, Tuple[str, ...]] = {}


def _fields(cls: type) -> Tuple[str, ...]:
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELD_ORDER.get(cls) or tuple(f.name for f in dataclasses.fields(cls))
        _FIELDS[cls] = names
    return names


class _Driver:
    """Walks the tree once and dispatches every node to the tracker, then to
    the rules' hooks (leave hooks in reverse).  It reads the children straight
    from the nodes' fields in the order the code runs, skipping whitespace and
    punctuation: libcst's own ``visit`` rebuilds every node on the way, which
    costs as much again as the parse."""

    def __init__(self, tracker: Tracker, rules: Sequence[Rule]) -> None:
        self._visit: Dict[str, List[Callable]] = {}
        self._leave: Dict[str, List[Callable]] = {}
        self._add(tracker)
        for rule in rules:
            self._add(rule)
        for hooks in self._leave.values():
            hooks.reverse()

    def _add(self, visitor: object) -> None:
        for attr in dir(visitor):
            if attr.startswith("visit_"):
                self._visit.setdefault(attr[6:], []).append(getattr(visitor, attr))
            elif attr.startswith("leave_"):
                self._leave.setdefault(attr[6:], []).append(getattr(visitor, attr))

    def walk(self, node: cst.CSTNode) -> None:
        cls = type(node)
        name = cls.__name__
        visit, leave = self._visit, self._leave
        for hook in visit.get(name, ()):
            hook(node)
        for field_name in _fields(cls):
            value = getattr(node, field_name)
            kind = type(value)
            if kind is list or kind is tuple:
                if not value:
                    continue
                children = [c for c in value if _walked(type(c))]
            elif _walked(kind):
                children = [value]
            else:
                continue
            attr = f"{name}_{field_name}"
            for hook in visit.get(attr, ()):
                hook(node)
            for child in children:
                self.walk(child)
            for hook in leave.get(attr, ()):
                hook(node)
        for hook in leave.get(name, ()):
            hook(node)


_WALKED: Dict[type, bool] = {}


def _walked(cls: type) -> bool:
    """Is a value of this type a node the driver walks into?  Cached per type:
    libcst's base classes are ABCs, and isinstance() on those is slow."""
    answer = _WALKED.get(cls)
    if answer is None:
        answer = issubclass(cls, cst.CSTNode) and not issubclass(cls, _SKIPPED)
        _WALKED[cls] = answer
    return answer


# --- the public entry point -------------------------------------------------

_TRIGGER_CACHE: Dict[Tuple[str, ...], "re.Pattern[str]"] = {}


def _sieve(rules: Sequence[type], settings: Settings = Settings()) -> "re.Pattern[str]":
    """A pattern that matches every text in which some rule could fire: the
    rules' trigger words plus every name the user configured."""
    words = {w for r in rules for w in r.triggers}
    for option in ("no_grad_decorators", "model_names", "eval_names", "eval_mode_helpers"):
        words.update(name.rsplit(".", 1)[-1] for name in getattr(settings, option))
    key = tuple(sorted(words))
    pattern = _TRIGGER_CACHE.get(key)
    if pattern is None:
        pattern = re.compile("|".join(re.escape(w) for w in key) or r"(?!x)x", re.IGNORECASE)
        _TRIGGER_CACHE[key] = pattern
    return pattern


def check(
    source: str,
    settings: Settings = Settings(),
    rules: Optional[Sequence[type]] = None,
    use_sieve: bool = True,
    filename: str = "",
    module: Optional[cst.Module] = None,
) -> List[Violation]:
    """All violations in ``source``, sorted.  Never raises.  ``module`` is the
    already parsed ``source`` (the fixer passes it so fixes point into it)."""
    from flake8_gradmode.registry import RULES

    rule_classes = tuple(RULES if rules is None else rules)
    try:
        if use_sieve and not _sieve(rule_classes, settings).search(source):
            return []
        return _check(source, settings, rule_classes, filename, module)
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


def _check(
    source: str, settings: Settings, rule_classes: Sequence[type], filename: str, module: Optional[cst.Module] = None
) -> List[Violation]:
    try:
        module = cst.parse_module(source) if module is None else module
    except cst.ParserSyntaxError as exc:
        # libcst can point one line past the error (at an empty line, or past
        # the end): keep the position inside the file
        lines = source.splitlines() or [""]
        line = min(max(1, exc.raw_line), len(lines))
        return [
            Violation(
                line,
                min(max(0, exc.raw_column), len(lines[line - 1])),
                PARSE_ERROR,
                f"libcst cannot parse this file ({_first_line(exc)}); grad-mode rules skipped it",
            )
        ]
    ctx = Context(settings, filename)
    rules = [cls(ctx) for cls in rule_classes]
    _Driver(Tracker(ctx), rules).walk(module)
    ctx.finish()
    for rule in rules:
        rule.finish()
    reports = [r for r in ctx.reports if r.condition is None or r.condition()]
    if not reports:
        return []
    positions = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    out: Dict[Violation, Violation] = {}
    for report in reports:
        start = positions[report.node].start
        violation = Violation(start.line, start.column, report.code, report.message, report.fix)
        out.setdefault(violation, violation)
    return sorted(out, key=lambda v: (v.line, v.col, v.code, v.message))


__all__ = ["Context", "check", "PARSE_ERROR"]
