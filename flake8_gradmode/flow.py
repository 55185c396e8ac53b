"""What runs where: loops, model calls, training steps and eval-mode switches.

The engine records these facts during its one traversal; rules read them once
the whole module is seen (``Rule.finish``), when module-local callers and
module-wide evidence ("``net.eval()`` is called somewhere, so ``net`` is a
module") are complete.
"""

from __future__ import annotations

import ast
import builtins
import re
import sys
from typing import Callable, Dict, FrozenSet, Iterator, List, Optional, Set, Tuple

from flake8_gradmode.names import (
    BUNDLED_LIBRARIES,
    EVAL_FUNCTION_WORDS,
    FRAMEWORK_EVAL_HOOKS,
    OTHER_FRAMEWORKS,
    TORCHVISION_DATA,
    is_model_name,
    is_test_file,
    names_in,
    says_eval_data,
    says_eval_function,
    says_inference_function,
    tokens,
)
from flake8_gradmode.facts import (
    GRAPH_DROPPING_READS, PARAMETER_FREE_LAYERS, TRAINING_STEP_NAMES, adapting_functions, asks_autograd,
    attribute_values as _attribute_values, class_family, context_effects, freezes, freezing_functions, init_freeze,
    loss_named, method_of, own_nodes, parameter_free, plain_bases, test_holds,
)
from flake8_gradmode.tracker import (
    SAME_MODULE_METHODS, FunctionInfo, Grad, all_params, bound_arguments, chain_root, dotted, is_const, last_name,
    param_defaults, preorder, resolve_function, statements_in, subscripted_root, switches_to_eval, switches_to_train,
    unchained,
)


# --- records ----------------------------------------------------------------


class ModelCall:
    """A call that may be a model's forward pass, as the traversal saw it."""

    __slots__ = ("node", "key", "seq", "state", "function", "class_name")

    def __init__(
        self,
        node: ast.Call,
        key: str,
        seq: int,
        state: Grad,
        function: Optional[FunctionInfo],
        class_name: Optional[str] = None,
    ) -> None:
        self.node = node
        self.key = key
        self.seq = seq
        self.state = state
        self.function = function
        #: the class whose method makes the call (``self.x`` refers to it)
        self.class_name = class_name


class ElsewhereCall(ModelCall):
    """A call of a function of another module of the project that runs the
    model it is handed, as the project index says (``extract_features(model,
    xyz)``); ``key`` names the model argument, ``through`` the function."""

    __slots__ = ("through",)

    def __init__(self, node: ast.Call, key: str, seq: int, state: Grad, function: Optional[FunctionInfo],
                 class_name: Optional[str], through: str) -> None:
        super().__init__(node, key, seq, state, function, class_name)
        self.through = through


class Scope:
    """Facts of one function body, or of the module's top-level code."""

    def __init__(self, function: Optional[FunctionInfo], class_name: Optional[str]) -> None:
        self.function = function
        self.class_name = class_name
        #: sequence numbers of eval-mode switches (``m.eval()``, ``m.train(False)``)
        self.eval_switches: List[int] = []
        #: sequence numbers of switches back to training mode (``m.train()``)
        self.train_switches: List[int] = []
        #: ``m.train(flag)`` with a run-time flag
        self.maybe_train_switches: List[int] = []
        #: sequence numbers of training steps (``loss.backward()``, ``opt.step()``)
        self.training_steps: List[int] = []
        #: names whose value ``.backward()`` is called on (``loss`` in ``loss.backward()``)
        self.backward_names: Set[str] = set()
        #: containers an item of which ``.backward()`` is called on (``losses["loss"]``)
        self.backward_holders: Set[str] = set()
        #: names the scope detaches in place (``z.detach_()`` as a statement)
        self.detached_in_place: Set[str] = set()
        #: names whose ``.forward(...)`` the body calls: a layer written by
        #: hand has its own ``.backward(grad)``, which autograd never runs
        self.forwarded: Set[str] = set()
        #: name -> the values assigned to it (``names_in`` of them, when asked)
        self.deps: Dict[str, List[ast.expr]] = {}
        #: name -> how many times the scope's own code binds or deletes it
        #: (targets of any kind, comprehension variables included)
        self.stored: Dict[str, int] = {}
        #: container name -> the values put into it (``outputs.update(pose)``,
        #: ``losses.append(l)``, ``outputs["pose"] = pose``); only for following values
        self.fills: Dict[str, List[ast.expr]] = {}
        #: containers filled (as ``fills`` records) at least once with grad not off
        self.filled_with_grad: Set[str] = set()
        #: name -> what the ``for`` loops that bind it iterate (``pred`` in
        #: ``for pred, y in zip(preds, ys)``); only for following values
        self.drawn_from: Dict[str, List[ast.expr]] = {}
        #: name -> the values unpacked into it (``pred`` in ``pred, state =
        #: decoder(x, state)``); only for following values into a later step
        self.unpacked: Dict[str, List[ast.expr]] = {}
        #: the values of ``return`` statements
        self.return_values: List[ast.expr] = []
        #: calls of module-local functions/methods: (seq, key)
        self.local_calls: List[Tuple[int, Tuple[str, ...]]] = []
        #: ``obj.name(...)`` on a name other than ``self``: (seq, method name)
        self.method_calls: List[Tuple[int, str]] = []
        self.training_step = False
        #: sequence numbers of every training-step call (``train_step(...)`` by name too)
        self.step_seqs: List[int] = []
        self.model_calls: List[ModelCall] = []
        #: names bound in this scope to a model built here (``model = Net()``)
        self.built_models: Set[str] = set()
        #: models whose grad this scope switched off (``G.requires_grad_(False)``,
        #: ``G = copy.deepcopy(net).eval().requires_grad_(False)``), by name,
        #: with the sequence number where that happened
        self.frozen_models: Dict[str, int] = {}
        #: names ever bound to a model built here -> each binding of them from
        #: then on, in order: (sequence number, bound to a new model in
        #: training mode: ``layer = nn.BatchNorm1d(16)``)
        self.rebuilt: Dict[str, List[Tuple[int, bool]]] = {}
        #: names bound to a call of a capitalised callee (``model = InceptionV3([3])``):
        #: the sequence number and the call
        self.constructed: Dict[str, Tuple[int, ast.Call]] = {}
        self.loops: List["Loop"] = []

    def returned(self) -> Set[str]:
        """The identifiers used in the values the function returns."""
        return {name for value in self.return_values for name in names_in(value, split=False)}

    def feeds_backward(self, holders: bool = False, drawn: bool = False, unpacked: bool = False) -> Set[str]:
        """Every name whose value flows into a ``.backward()`` target here
        (with ``holders``, into a container an item of which is one; with
        ``drawn``, also from what a ``for`` that binds a name iterates; with
        ``unpacked``, also from a value a tuple target unpacks)."""
        seen = set(self.backward_names)
        if holders:
            seen |= self.backward_holders
        return self._flowing_into(seen, drawn, unpacked)

    def feeds(self, names: Set[str]) -> Set[str]:
        """Every name whose value flows into one of ``names`` (through
        tuples a target unpacks too)."""
        return self._flowing_into(set(names), unpacked=True)

    def feeds_return(self) -> Set[str]:
        """Every name whose value flows into what the function returns
        (``logits`` in ``for l in logits: loss = loss + f(l)`` ... ``return loss``)."""
        return self._flowing_into(self.returned())

    def _flowing_into(self, seen: Set[str], drawn: bool = False, unpacked: bool = False) -> Set[str]:
        todo = list(seen)
        while todo:
            name = todo.pop()
            for value in (
                *self.deps.get(name, ()), *self.fills.get(name, ()), *(self.drawn_from.get(name, ()) if drawn else ()),
                *(self.unpacked.get(name, ()) if unpacked else ()),
            ):
                for dep in names_in(value, split=False):
                    if dep not in seen:
                        seen.add(dep)
                        todo.append(dep)
        return seen


class Loop:
    """A ``for`` or ``while`` loop and what its body does."""

    def __init__(self, node: ast.stmt, scope: Scope, parent: Optional["Loop"], seq: int) -> None:
        self.node = node
        self.scope = scope
        self.parent = parent
        self.seq = seq
        #: sequence number when the body ended
        self.end_seq = 1 << 62
        #: the loop counts (``for i in range(...)``, over literal numbers, ``while``) rather than iterating data
        self.counts = False
        self.training_step = False
        #: sequence numbers of every training-step call in the body
        self.step_seqs: List[int] = []
        #: calls of module-local functions/methods: (seq, key)
        self.local_calls: List[Tuple[int, Tuple[str, ...]]] = []
        #: ``obj.name()`` on an object the function built from a class of the
        #: module (``trainer = SPOT(...)``): (seq, ("method", class, name))
        self.typed_calls: List[Tuple[int, Tuple[str, ...]]] = []
        self.model_calls: List[ModelCall] = []
        #: calls of imported names that hand over a name (``f(model, x)``),
        #: as ``ModelCall`` records keyed by the called name, as written
        self.imported_calls: List[ModelCall] = []

    @property
    def iter_tokens(self) -> List[str]:
        """The words of what a ``for`` loop iterates (``val_loader``: val, loader)."""
        return names_in(self.node.iter) if isinstance(self.node, (ast.For, ast.AsyncFor)) else []

    def inside(self, loop_ids: Set[int]) -> bool:
        """Is one of the loops enclosing this one (in its function) in ``loop_ids``?"""
        parent = self.parent
        while parent is not None:
            if id(parent) in loop_ids:
                return True
            parent = parent.parent
        return False


class Flow:
    """Collects scopes and loops; the engine feeds it during the traversal."""

    def __init__(self) -> None:
        self.module_scope = Scope(None, None)
        self.scopes: List[Scope] = [self.module_scope]
        self.all_scopes: List[Scope] = [self.module_scope]
        self.by_key: Dict[Tuple[str, ...], List[Scope]] = {}
        self.loops: List[Loop] = []
        self.open_loops: List[Loop] = []
        #: dotted names shown to be modules anywhere in the file
        self.module_evidence: Set[str] = set()
        #: names and ``self`` attributes bound to a ``torch.nn`` loss (``nn.MSELoss()``)
        self.criteria: Set[str] = set()
        #: ``self`` attributes -> whether every value assigned to them is an
        #: imported function or class, not called (``self.network = resnet.resnet18``)
        self.factories: Dict[str, bool] = {}
        #: names of classes (in this file) that subclass an nn.Module-like base
        self.module_classes: Set[str] = set()
        #: class name -> what its ``__init__`` switches to eval mode
        #: (``self.teacher``; ``self`` for ``self.eval()``)
        self.class_init_eval: Dict[str, Set[str]] = {}
        #: a function of the module switches grad off by a statement
        #: (``torch.set_grad_enabled(False)``), for the rest of the process
        self.grad_off_by_hand = False
        #: the file shows that training/eval mode changes something: it builds
        #: dropout or batch-norm layers, reads ``self.training``, or switches
        #: models with ``.train()`` itself
        self.mode_matters = False
        #: ... because of its layers or ``self.training`` (not only switches)
        self.mode_by_layers = False
        #: an ``nn.Module`` subclass of this file builds dropout or batch-norm layers
        self.mode_layer_class = False
        #: the module imports pytest/unittest or defines ``test_*`` functions
        self.test_framework = False
        #: functions handed to framework evaluation machinery
        self.framework_callbacks: Set[str] = set()
        self.seq = 0
        #: call node by sequence number
        self.nodes: Dict[int, ast.Call] = {}
        #: answers of the whole-module decisions, computed once (see ``_memo``)
        self.cache: Dict[tuple, object] = {}
        #: receiver of each ``.eval()``/``.train()`` call, by sequence number
        self.switch_keys: Dict[int, str] = {}
        #: grad state at each call of a module-local function, by sequence number
        self.call_states: Dict[int, Grad] = {}

    def tick(self) -> int:
        self.seq += 1
        return self.seq

    @property
    def scope(self) -> Scope:
        return self.scopes[-1]

    def loops_here(self) -> List[Loop]:
        """Open loops of the current scope, innermost first."""
        out: List[Loop] = []
        if self.open_loops:
            scope = self.scopes[-1]
            for loop in reversed(self.open_loops):
                if loop.scope is not scope:
                    break
                out.append(loop)
        return out


# --- decisions, made once the whole module is seen -----------------------------

_WHOLE = 1 << 62
_IN_PROGRESS = object()


def _memo(ctx, key: tuple, compute, default):
    """Whole-function answers are computed once per module; a function that
    (indirectly) calls itself sees ``default`` for the call in progress."""
    cache = ctx.flow.cache
    if key in cache:
        value = cache[key]
        return default if value is _IN_PROGRESS else value
    cache[key] = _IN_PROGRESS
    value = compute()
    cache[key] = value
    return value
#
# These read the records above together with ``Context`` (settings, bindings,
# module-local callers).  They are the shared facts the loop rules rely on.


def is_model_call(ctx, call: ModelCall) -> bool:
    """Is this call a forward pass of a model?"""
    key = call.key
    if key == "self":
        return True  # recorded only inside nn.Module subclasses
    flow = ctx.flow
    if key.endswith("[]"):
        return _model_container(ctx, key[:-2])  # models["generator"](x)
    owner, _, last = key.rpartition(".")
    if owner in ("self", "cls") and last in _memo(ctx, ("methods",), lambda: _method_names(ctx), frozenset()):
        return False  # a method of the class: self.eval_model(...)
    words = last.lower().split("_")
    if _TRANSFORM_WORDS.intersection(words):
        return False  # ``self.melspectrogram_transform(audio)``: a data transform, with no weights to train
    if key in flow.criteria or _CRITERION_WORDS.intersection(words) or _METRIC_WORDS.intersection(words) or (
        not _FUNCTION_WORDS.isdisjoint(words) and not _METRIC_NAMES.isdisjoint(words)
    ):
        # a loss module (``criterion = nn.CrossEntropyLoss().cuda()``) or a
        # metric (``psnr(sr, hr)``) has no graph of its own: its inputs' model does
        return False
    if flow.factories.get(key):
        return False  # ``self.network = resnet.resnet18``: ``self.network(num_classes=10)`` builds a model
    if not owner and _run_outside_torch(ctx, call):
        return False  # ``model = lambda x: session.run(...)``: an ONNX Runtime session, not a torch module
    if not owner:
        values = _bound_values(ctx, call)
        if values and _opened_by_another_runtime(ctx, values):
            return False  # ``net = cv2.dnn.readNetFromONNX(path)``, then ``net.forward(names)``: OpenCV's network
        if values and _plain_instance(ctx, values, key):
            return False  # ``teacher = FeatPredictor(weights)``: a plain class of the module, no module
        if not values and _handed_plain_instances(ctx, call):
            return False  # ``evaluate(model, loader)``, each caller handing ``BicubicSR(2)``
        if values and _bound_to_functions(ctx, values):
            return False  # ``encoder = encoders[args.format]``: a function of the module, reached through its body
        if values and _made_by_another_framework(ctx, values):
            return False  # ``model = create_mlp_tf(n)``, a builder of a Keras model: no autograd graph
    if not owner and _memo(ctx, ("reads-names",), lambda: any(".__name__" in line for line in ctx.lines), False) \
            and key in _memo(ctx, ("named", id(call.function)), lambda: _names_read_as_classes(ctx, call), ()):
        return False  # ``model.__name__``: a class (a database document), called to build one
    if key in flow.module_evidence:
        return True
    if last[:1].isupper():
        return False  # a constructor: Model(cfg)
    if any(kw.arg in _CONSTRUCTION_KEYWORDS for kw in call.node.keywords):
        return False  # ``cell_senet(model_name=..., num_classes=1108)``: a factory building a model
    if not owner and key in _memo(ctx, ("defs",), lambda: _function_names(ctx), frozenset()):
        return False  # a function of this module named like a model: reached through its body
    if key in flow.module_classes:
        return False  # building a module class of this file named in lower case: ``muPTransformer(...)``
    if id(call.node) in _memo(ctx, ("fitted",), lambda: _builds_fitted(ctx), frozenset()):
        return False  # ``model = config.model(**params)`` ... ``model.fit(x, y)``: an estimator built
    if last in _WRAPPED and owner and is_model_name(owner, ctx.settings.model_names):
        return True  # model.module(x): the model DataParallel wraps
    if not owner and id(call) in _memo(ctx, ("elements",), lambda: _element_calls(ctx), frozenset()):
        return True  # for head in self.heads: head(x)
    return is_model_name(key, ctx.settings.model_names)


#: Inference runtimes that run exported models outside PyTorch
_OTHER_RUNTIMES = ("onnxruntime", "openvino", "tensorrt", "tflite_runtime")


def _runs_another_runtime(ctx) -> Dict[Tuple[Optional[int], str], List[Tuple[int, bool]]]:
    """Where the module binds names, by the function binding them (its node's
    ``id``, None for the top level) and name: each binding's line and
    whether it binds a ``lambda`` that runs a session of another inference
    runtime (``lambda x: session.run(None, {...})[0]`` over
    ``onnxruntime.InferenceSession(path)``), or an instance of a plain class
    of the module (no base) whose ``__call__`` runs one it keeps
    (``self.session.run(...)``): an exported model run outside PyTorch,
    which builds no graph and has no mode.  Only a module whose text names
    such a runtime is walked."""
    text = "".join(ctx.lines)
    if ctx.tree is None or not any(runtime in text for runtime in _OTHER_RUNTIMES):
        return {}  # the text names none: nothing to walk for
    sessions: Set[str] = set()
    assigns: List[Tuple[Optional[int], ast.Assign]] = []

    def visit(node: ast.AST, function: Optional[int]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(child, id(child))
                continue
            if isinstance(child, ast.Assign):
                assigns.append((function, child))
                if _calls_into(ctx, child.value, _OTHER_RUNTIMES):
                    sessions.update(d for d in map(dotted, child.targets) if d is not None)
            visit(child, function)

    visit(ctx.tree, None)
    if not sessions:
        return {}

    def runs_a_session(body: ast.AST) -> bool:
        return any(
            isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in ("run", "infer")
            and dotted(n.func.value) in sessions for n in ast.walk(body)
        )

    wrappers = {
        c.name for c in ctx.tree.body
        if isinstance(c, ast.ClassDef) and plain_bases(c.bases) and any(
            isinstance(f, ast.FunctionDef) and f.name == "__call__" and runs_a_session(f) for f in c.body)
    }
    found: Dict[Tuple[Optional[int], str], List[Tuple[int, bool]]] = {}
    for function, node in assigns:
        value = node.value
        foreign = isinstance(value, ast.Lambda) and runs_a_session(value.body) or isinstance(value, ast.Call) \
            and isinstance(value.func, ast.Name) and value.func.id in wrappers
        for target in node.targets:
            if isinstance(target, ast.Name):
                found.setdefault((function, target.id), []).append((node.lineno, foreign))
    return found


def _run_outside_torch(ctx, call: ModelCall) -> bool:
    """Is the name ``call`` calls last bound, in its function or else at the
    top of the module, above the call, to a model run by another runtime
    (see ``_runs_another_runtime``)?"""
    scope = scope_of(ctx, call.function) if call.function is not None else ctx.flow.module_scope
    values = [*(scope.deps.get(call.key, ()) if scope is not None else ()),
              *ctx.flow.module_scope.deps.get(call.key, ())]
    if not any(isinstance(v, ast.Lambda) or isinstance(v, ast.Call) and isinstance(v.func, ast.Name)
               and v.func.id in local_classes(ctx) for v in values):
        return False  # bound to no lambda and no instance of the module's classes: nothing to look for
    found = _memo(ctx, ("other-runtimes",), lambda: _runs_another_runtime(ctx), {})
    line = call.node.lineno
    for function in ((id(call.function.node), None) if call.function is not None else (None,)):
        above = [b for b in found.get((function, call.key), ()) if b[0] <= line]
        if above:
            return max(above)[1]
    return False


#: Packages whose loaded networks run outside PyTorch (``cv2.dnn.readNet``)
_RUNTIME_ROOTS = (*_OTHER_RUNTIMES, "cv2")


def _opened_by_another_runtime(ctx, values: List[ast.expr]) -> bool:
    """Is the name a call calls (``net`` of ``net(x)`` or ``net.forward(names)``)
    bound (``values``: see ``_bound_values``) only to calls into a package
    that runs networks outside PyTorch (``cv2.dnn.readNetFromONNX(path)``,
    ``onnxruntime.InferenceSession(path)``)?  Only a module that imports
    one of them is read."""
    if not _memo(ctx, ("imports-runtimes",), lambda: ctx.imports.imports_from(_RUNTIME_ROOTS), False):
        return False
    return all(_calls_into(ctx, v, _RUNTIME_ROOTS) for v in values)


def _calls_into(ctx, expr: Optional[ast.expr], packages) -> bool:
    """Is ``expr`` a call of something the module imports from one of
    ``packages`` (``dnn.readNetFromONNX(path)`` after ``from cv2 import
    dnn``, ``tf.keras.Sequential([...])``)?"""
    return isinstance(expr, ast.Call) and (ctx.imports.resolve(expr.func) or "").partition(".")[0] in packages


def _bound_values(ctx, call: ModelCall, name: str = "") -> Optional[List[ast.expr]]:
    """What ``name`` (by default the name ``call`` calls) is bound to in the
    call's function, or else at the top of the module (asked of
    ``_plain_instance``, ``_bound_to_functions`` and the like)."""
    name = name or call.key
    scope = scope_of(ctx, call.function) if call.function is not None else None
    values = scope.deps.get(name) if scope is not None else None
    return values or ctx.flow.module_scope.deps.get(name)


def _made_by_another_framework(ctx, values: List[ast.expr]) -> bool:
    """Is the name a call calls bound (``values``: see ``_bound_values``)
    only to what functions of the module return, each of which returns only
    a model of another tensor framework, built there (``model =
    tf.keras.models.Model(inputs=inp, outputs=out); ...; return model``)?
    Only a module that imports such a framework is read."""
    if not _imports_another_framework(ctx):
        return False
    functions = module_function_nodes(ctx)
    return all(
        isinstance(v, ast.Call) and isinstance(v.func, ast.Name) and v.func.id in functions
        and _returns_another_frameworks_model(ctx, functions[v.func.id]) for v in values
    )


def _imports_another_framework(ctx) -> bool:
    """Does the module import anything of another tensor framework
    (``OTHER_FRAMEWORKS``)?  Asked once per module."""
    return _memo(ctx, ("imports-other-frameworks",), lambda: ctx.imports.imports_from(tuple(OTHER_FRAMEWORKS)), False)


def _returns_another_frameworks_model(ctx, fn: ast.AST) -> bool:
    """Does every ``return`` of ``fn`` hand back a call into another tensor
    framework (``tf.keras.Sequential([...])``), or a name the function binds
    only to such calls?"""
    def foreign(expr: Optional[ast.expr]) -> bool:
        return _calls_into(ctx, expr, OTHER_FRAMEWORKS)

    bound: Dict[str, List[ast.expr]] = {}
    returned: List[Optional[ast.expr]] = []
    for node in ast.walk(fn):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    bound.setdefault(target.id, []).append(node.value)
        elif isinstance(node, ast.Return):
            returned.append(node.value)
    return bool(returned) and all(
        foreign(value) or isinstance(value, ast.Name) and bool(bound.get(value.id))
        and all(foreign(v) for v in bound[value.id])
        for value in returned
    )


def _plain_instance(ctx, values: List[ast.expr], name: str = "") -> bool:
    """Is the name a call calls bound (``values``: see ``_bound_values``)
    only to instances of plain classes of the module: no
    base but ``object``, no ``forward`` (``teacher =
    FeatPredictor(weights)``, whose ``__call__`` runs a library predictor)?
    Such an instance is no ``nn.Module``: it has no mode and no parameters
    of its own, and whatever model it keeps runs in its methods, under
    their grad mode.  ``model = model.to(device)`` of the ``name`` itself
    binds it to the same object."""
    local = local_classes(ctx)
    values = [v for v in values if not (name and _moved(v, name))]
    if not values:
        return False
    for value in values:
        if not (isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id in local):
            return False
        node = local[value.func.id]
        if node.keywords or not plain_bases(node.bases) or method_of(node, "forward"):
            return False
    return True


def _handed_plain_instances(ctx, call: ModelCall) -> bool:
    """Is the model a parameter of a module-level function that every call
    hands an instance of a plain class of the module whose ``__call__``
    calls nothing it keeps (``evaluate(model, loader)`` with ``model =
    BicubicSR(2)``, whose ``__call__`` only interpolates: see ``handed_builds``
    and ``_plain_instance``)?  A wrapper that runs a model it keeps
    (``self.model(x)``) is judged by its own code instead."""
    local = local_classes(ctx)
    if not _memo(ctx, ("plain-callables",), lambda: any(_runs_nothing_kept(c) for c in local.values()), False):
        return False  # the cheap answer first: the module has no such class
    handed = handed_builds(ctx, call)
    return bool(handed) and _plain_instance(ctx, handed) and all(  # type: ignore[arg-type]
        _runs_nothing_kept(local[c.func.id]) for c in handed  # type: ignore[union-attr, attr-defined]
    )


def _runs_nothing_kept(node: ast.ClassDef) -> bool:
    """A plain class (no base) whose ``__call__`` calls no attribute of
    ``self`` (``self.model(x)``, ``self.net.decode(z)``)."""
    call = method_of(node, "__call__") if plain_bases(node.bases) else None
    return call is not None and not any(
        isinstance(n, ast.Call) and chain_root(n.func) == "self" for n in ast.walk(call)
    )


def _bound_to_functions(ctx, values: List[ast.expr]) -> bool:
    """Is the name a call calls bound (``values``: see ``_bound_values``)
    only to functions of the module, by name (``encoder =
    encode_png``) or through a table the top of the module binds once to a
    literal of them (``encoder = encoders[args.format]`` over ``encoders =
    {"png": encode_png, "pkl": encode_pkl}``)?  Calling it runs one of
    those functions, whose own code the loop rules read."""
    defs = _memo(ctx, ("defs",), lambda: _function_names(ctx), frozenset())
    for value in values:
        elements: List[Optional[ast.expr]] = [value]
        if isinstance(value, ast.Subscript) and isinstance(value.value, ast.Name):
            table = ctx.flow.module_scope.deps.get(value.value.id)
            if not table or len(table) != 1 or not isinstance(table[0], (ast.Dict, ast.List, ast.Tuple)):
                return False
            elements = table[0].values if isinstance(table[0], ast.Dict) else table[0].elts
        if not elements or not all(isinstance(e, ast.Name) and e.id in defs for e in elements):
            return False
    return True


def _names_read_as_classes(ctx, call: ModelCall) -> FrozenSet[str]:
    """The plain names whose ``__name__`` the call's function (or the module,
    for a call at its top) reads: ``for model in DOCUMENT_CLASSES: ...
    model.__name__ ... model(**fields)``.  A module instance has no
    ``__name__``; such a name holds a class or a function, and calling it
    builds or computes something, not a forward pass."""
    root = call.function.node if call.function is not None else ctx.tree
    return frozenset(
        node.value.id for node in ast.walk(root)
        if node.__class__ is ast.Attribute and node.attr == "__name__"  # type: ignore[attr-defined]
        and node.value.__class__ is ast.Name  # type: ignore[attr-defined]
    )


def _builds_fitted(ctx) -> FrozenSet[int]:
    """Calls whose value a name takes (``model = cfg.model(**params)``) that
    the module then calls ``.fit(...)`` on: an estimator being built (a
    scikit-learn or XGBoost model), not a forward pass.  Only in a module
    whose text has ``.fit(``."""
    if not any(".fit(" in line for line in ctx.lines):
        return frozenset()
    fitted: Set[str] = set()
    built: Dict[str, List[int]] = {}
    for node in ast.walk(ctx.tree):
        if node.__class__ is ast.Call:
            func = node.func  # type: ignore[attr-defined]
            if func.__class__ is ast.Attribute and func.attr == "fit" and func.value.__class__ is ast.Name:
                fitted.add(func.value.id)
        elif node.__class__ is ast.Assign and node.value.__class__ is ast.Call:  # type: ignore[attr-defined]
            targets = node.targets  # type: ignore[attr-defined]
            if len(targets) == 1 and targets[0].__class__ is ast.Name:
                built.setdefault(targets[0].id, []).append(id(node.value))  # type: ignore[attr-defined]
    return frozenset(call for name in fitted for call in built.get(name, ()))


#: Keywords that configure a model being built, not a forward's inputs.
_CONSTRUCTION_KEYWORDS = frozenset({
    "num_classes", "n_classes", "pretrained", "model_name", "arch", "in_chans", "n_channels", "num_channels",
})


#: Words of a name that says it holds a loss function, not a model.
_CRITERION_WORDS = frozenset({"criterion", "crit", "loss", "lossfn", "criterions"})


#: Words of a name that says it holds a data transform or augmentation
#: (``self.transform``, ``train_tfms``; not ``transformer``).
_TRANSFORM_WORDS = frozenset({
    "transform", "transforms", "tfm", "tfms", "augment", "augmentation", "augmentations", "aug", "augs",
})


#: Words of a name that says it holds an image-quality metric (not
#: "metric": ``metric_model`` is a metric-learning network).
_METRIC_WORDS = frozenset({"psnr", "ssim", "lpips", "fid"})


#: Words of a name that says it holds a function (``metric_fn``: a metric function).
_FUNCTION_WORDS = frozenset({"fn", "fns", "func", "funcs", "function", "functions"})
#: ... together with one of these words.
_METRIC_NAMES = frozenset({"metric", "metrics"})


#: Attributes through which wrappers expose the model they wrap.
_WRAPPED = frozenset({"module", "_orig_mod"})


def _method_names(ctx) -> FrozenSet[str]:
    return frozenset(k[-1] for k in ctx.functions if k[0] == "method")


def _function_names(ctx) -> FrozenSet[str]:
    """Names of the module's functions, nested ones included."""
    out = {k[-1] for k in ctx.functions if k[0] == "function"}
    out.update(name for name in _nested_defs(ctx))
    return frozenset(out)


def _model_container(ctx, key: str) -> bool:
    """``self.models`` / ``nets`` / ``self.heads`` (an ``nn.ModuleList``): a
    container whose items are models."""
    if key in ctx.flow.module_evidence:
        return True
    last = key.rpartition(".")[2]
    if len(last) > 3 and last.endswith("s"):
        singular = key[:-1]
        return is_model_name(singular, ctx.settings.model_names) and not singular.rpartition(".")[2][:1].isupper()
    return False


def _element_calls(ctx) -> FrozenSet[int]:
    """Calls of a loop's target that iterates a container of models:
    ``for m, s in zip(self.heads, strides): m(x)``."""
    out: Set[int] = set()
    for loop in ctx.flow.loops:
        node = loop.node
        if not loop.model_calls or not isinstance(node, (ast.For, ast.AsyncFor)):
            continue
        elements = _iterated_elements(node.target, node.iter)
        for call in loop.model_calls:
            container = elements.get(call.key)
            if container is not None and _model_container(ctx, container):
                out.add(id(call))
    return frozenset(out)


def _iterated_elements(target: ast.expr, it: ast.expr) -> Dict[str, str]:
    """Loop-target name -> the dotted container it takes items from."""
    if isinstance(it, ast.Call) and isinstance(it.func, ast.Attribute) and it.func.attr == "values":
        it = it.func.value
    elif isinstance(it, ast.Call) and isinstance(it.func, ast.Attribute) and it.func.attr == "items":
        if isinstance(target, ast.Tuple) and len(target.elts) == 2:
            return _iterated_elements(target.elts[1], it.func.value)
        return {}
    if isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and isinstance(target, ast.Tuple):
        if it.func.id == "zip" and len(it.args) == len(target.elts):
            out: Dict[str, str] = {}
            for elt, arg in zip(target.elts, it.args):
                out.update(_iterated_elements(elt, arg))
            return out
        if it.func.id == "enumerate" and it.args and len(target.elts) == 2:
            return _iterated_elements(target.elts[1], it.args[0])
        return {}
    if isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "reversed" and it.args:
        it = it.args[0]
    container = dotted(it)
    if isinstance(target, ast.Name) and container is not None:
        return {target.id: container}
    return {}


# --- which classes -----------------------------------------------------------

#: Hooks a framework calls with grad disabled and the model in eval mode.
_HOOKS = FRAMEWORK_EVAL_HOOKS | {"valid_step", "evaluation_step"}
#: Packages whose base classes call such hooks (Lightning, fairseq, ignite, ...).
_FRAMEWORKS = frozenset(
    {
        "pytorch_lightning", "lightning", "lightning_fabric", "fairseq", "ignite", "transformers", "accelerate",
        "mmengine", "mmcv", "mmdet", "detectron2", "allennlp", "composer", "catalyst", "speechbrain", "poutyne",
        "skorch", "torchtnt", "nemo", "espnet", "espnet2", "flash", "pl_bolts", "trl", "avalanche",
    }
)


def _class_bases(ctx) -> Dict[str, List[ast.expr]]:
    """Class name -> its base expressions (the first definition of that name),
    for classes at module level, in classes and in ``if``/``try`` blocks."""
    out: Dict[str, List[ast.expr]] = {}
    todo = list(getattr(ctx.tree, "body", ()))
    while todo:
        node = todo.pop()
        if isinstance(node, ast.ClassDef):
            out.setdefault(node.name, list(node.bases))
            todo.extend(node.body)
        elif isinstance(node, (ast.If, ast.Try)):
            todo.extend(node.body + node.orelse + getattr(node, "finalbody", []))
    return out


def framework_class(ctx, name: str) -> bool:
    """Does class ``name`` derive from a framework's class (or from a class of
    unknown origin, imported from elsewhere), directly or through classes of
    this module?  A plain class, or one built only on ``torch``, does not."""
    return _memo(ctx, ("framework", name), lambda: _framework_class(ctx, name), False)


def _framework_class(ctx, name: str) -> bool:
    bases = _memo(ctx, ("bases",), lambda: _class_bases(ctx), {}).get(name)
    if bases is None:
        return True  # not a class of this module: unknown
    for base in bases:
        if isinstance(base, ast.Name) and base.id in ctx.class_bases and base.id != name:
            if framework_class(ctx, base.id):
                return True
            continue
        qual = ctx.imports.resolve(base) or ""
        root = qual.split(".", 1)[0]
        if not qual or root in ("object", "torch", "typing", "abc", "enum") or qual in _BUILTIN_NAMES:
            continue
        if root in _FRAMEWORKS or qual.startswith(".") or ctx.imports.is_imported(root) or "." not in qual:
            return True  # a framework's class, or a class of another module
    # last, as it asks the project index: through a class of another module
    # of the project (``class GCBC(Hulc)``, ``class Hulc(pl.LightningModule)``)
    external = ctx.external_bases(name)
    return external is not None and any(
        base.split(".", 1)[0] in _FRAMEWORKS or base.startswith(".") for base in external
    )


_BUILTIN_NAMES = frozenset({"object", "dict", "list", "tuple", "Exception", "ABC", "Generic"})


def mode_matters(ctx) -> bool:
    """Does the file show that training/eval mode changes what its models
    do (``Flow.mode_matters``)?  Switches alone do not show it when the file
    builds its networks itself from ``torch.nn`` layers none of which
    depends on the mode (``nn.Sequential(nn.Linear(...), nn.ReLU())``) and
    imports no model library: ``.eval()`` there is a habit, not a need; nor when
    the module switches dropout off itself (``_disables_dropout``).  Nor,
    last, in a project none of whose modules shows a layer that depends on
    the mode (``switched_in_a_mode_free_project``, asked only of a report)."""
    flow_ = ctx.flow
    if not flow_.mode_matters or flow_.mode_by_layers:
        return flow_.mode_matters
    return _memo(ctx, ("mode-matters",), lambda: not (_plain_layers_only(ctx) or _disables_dropout(ctx)), True)


def switched_in_a_mode_free_project(ctx) -> bool:
    """Does the module build no mode-dependent layer itself (its sign that
    the mode matters, if any, is its own switches: ``model.train()``, or a
    caller's), in a project none of whose modules shows a layer that
    depends on the mode (``Project.mode_free_everywhere``: a trainer handed
    the project's only model, an embedding and a linear layer)?  Then the
    switches change nothing.  It may load the project index: asked last, of
    a report about to be kept."""
    flow_ = ctx.flow
    if flow_.mode_by_layers:
        return False
    return _memo(ctx, ("mode-free-project",), lambda: ctx.mode_free_everywhere(), False)


def _disables_dropout(ctx) -> bool:
    """Does the module import or define a helper that switches dropout off
    (``disable_dropout_in_model(model)``, as RL fine-tuning of language models
    does)?  Its models then do the same in either mode."""
    names = [*ctx.imports.imported_names(), *(key[-1] for key in ctx.functions)]
    return any({"disable", "dropout"} <= set(tokens(name)) for name in names if "ropout" in name)


#: Packages that provide ready-made models (with dropout or normalisation).
_MODEL_LIBRARIES = (
    "transformers", "torchvision", "timm", "diffusers", "torch_geometric", "torchaudio", "segmentation_models_pytorch",
    "sentence_transformers", "peft", "lightning", "pytorch_lightning", "detectron2", "mmdet", "ultralytics",
)


#: Imported names that may bring a model in (``from nets.resnet import ...``;
#: any relative import too: ``from ..layers import Head``).  Searched with
#: re.IGNORECASE; compiled (and cached by ``re``) on first need, as few
#: files ask.
_MODEL_SOURCE = r"(^|\.)\w*(model|net|arch|backbone|encoder|decoder|Net|Model)"


def under_project_contexts(ctx, calls: List[ModelCall], effect: str) -> bool:
    """Does each of ``calls`` run inside a ``with`` of a context manager of
    the project's own that may have ``effect`` (``"g"``: turn grad off,
    ``"e"``: switch modes; see ``facts.context_effects``), in this module or
    imported (``with utils.eval_mode(net, no_grad=True):``)?  What the code
    under it runs in is then unknown."""
    return bool(calls) and all(
        not isinstance(c, ElsewhereCall)
        and any(effect in _context_effects(ctx, e) for e in _enclosing_contexts(ctx, c))
        for c in calls
    )


def _enclosing_contexts(ctx, call: ModelCall) -> List[ast.expr]:
    """The context expressions of the ``with`` statements around ``call`` in
    its function (or the module's top-level code)."""
    root = call.function.node if call.function is not None else ctx.tree
    where = (call.node.lineno, call.node.col_offset)
    return [
        item.context_expr
        for node in ast.walk(root) if isinstance(node, (ast.With, ast.AsyncWith))
        and (node.lineno, node.col_offset) < where <= (node.end_lineno or 0, node.end_col_offset or 0)
        for item in node.items
    ]


def _context_effects(ctx, expr: ast.expr) -> str:
    written = dotted(expr.func) if isinstance(expr, ast.Call) else None
    if written is None:
        return ""
    local = _memo(ctx, ("local-contexts",), lambda: _local_contexts(ctx), {})
    if written in local:
        return local[written]
    return _memo(ctx, ("context-effects", written), lambda: ctx.context_effects(written), "")


def _local_contexts(ctx) -> Dict[str, str]:
    """``facts.context_effects`` of the module's top-level classes and functions."""
    freezers = freezing_functions(ctx.tree)
    return {
        node.name: context_effects(node, freezers) for node in getattr(ctx.tree, "body", ())
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
    }


#: Packages whose names say nothing of a model (``sklearn``'s ``LabelEncoder``).
_NO_MODEL_PACKAGES = frozenset({"sklearn", "pandas", "numpy", "scipy", "matplotlib", "seaborn", "PIL", "cv2", "tqdm"})


def _plain_layers_only(ctx) -> bool:
    imports = ctx.imports
    if _from_a_model_library(ctx) or any(
        (re.search(_MODEL_SOURCE, full, re.IGNORECASE) and full.partition(".")[0] not in _NO_MODEL_PACKAGES)
        or full.startswith(".")
        for full in (imports.resolve(ast.Name(name)) or "" for name in imports.imported_names())
    ):
        return False  # models may come from a library or from the project's model modules
    return any(_builds_layer(ctx.imports.resolve(node.func) or "") for node in ast.walk(ctx.tree)
               if isinstance(node, ast.Call))


def _from_a_model_library(ctx) -> bool:
    """Does the module import a model library (``_MODEL_LIBRARIES``), other
    than torchvision used only for its datasets and transforms?"""
    imports = ctx.imports
    if not imports.imports_from(_MODEL_LIBRARIES):
        return False
    bare = set()
    for local in imports.imported_names():
        root, _, rest = (imports.resolve(ast.Name(local)) or "").partition(".")
        if root in _MODEL_LIBRARIES:
            if root != "torchvision" or rest.partition(".")[0] not in TORCHVISION_DATA and rest:
                return True  # another library, or ``from torchvision.models import resnet18``
            if not rest:
                bare.add(local)  # ``import torchvision``: what it reaches decides
    return any(
        isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in bare
        and node.attr not in TORCHVISION_DATA
        for node in ast.walk(ctx.tree)
    )


def _builds_layer(qual: str) -> bool:
    """``torch.nn.Linear``, ``torch.nn.ReLU``: a layer class of ``torch.nn``."""
    return qual.startswith("torch.nn.") and qual[9:10].isupper() and "." not in qual[9:]


def is_module_class(ctx, name: str) -> bool:
    """``name`` subclasses an ``nn.Module``-like base, maybe through classes of
    this module."""
    return _memo(ctx, ("module-class", name), lambda: _is_module_class(ctx, name), False)


def _is_module_class(ctx, name: str) -> bool:
    bases = _memo(ctx, ("bases",), lambda: _class_bases(ctx), {}).get(name)
    if (
        bases is not None
        and plain_bases(bases)
        and ("method", name, "__init__") in ctx.functions
        and not any(name in bs and len(bs) > 1 for bs in ctx.class_bases.values())
    ):
        return False  # a plain class of this module that builds its own state (not a mixin)
    if name in ctx.flow.module_classes or ("method", name, "forward") in ctx.functions:
        return True  # a known module base, or a ``forward`` of its own (its base is elsewhere)
    if any(base != name and is_module_class(ctx, base) for base in ctx.class_bases.get(name, ())):
        return True
    return bool(bases) and ctx.module_elsewhere(name)  # a module through a base of another module


def in_module_method(ctx, scope: Scope) -> bool:
    """Code of an ``nn.Module`` subclass: whoever calls the module owns its
    grad and training mode (``Decoder.inference`` loops over steps)."""
    fn = scope.function
    while fn is not None:
        if fn.class_name is not None and is_module_class(ctx, fn.class_name):
            return True
        fn = fn.parent
    return False


def called_from_forward(ctx, scope: Scope) -> bool:
    """Is ``scope`` (or the function its closure sits in) called from a
    model's ``forward``, in this module or another?  It computes part of that
    model then (a renderer's chunked queries of a field): the model's caller
    owns the grad mode, as for the model's own methods."""
    fn = scope.function
    while fn is not None and fn.parent is not None:
        fn = fn.parent
    if fn is None or fn.class_name is not None:
        return False
    for caller, _ in call_sites(ctx, fn):
        outer = caller.function
        if outer is not None and outer.name == "forward" and outer.class_name is not None:
            return True
    return ctx.called_from_forward_elsewhere(fn)


def in_legacy_branch(ctx, line: int) -> bool:
    """Is ``line`` in a branch only torch releases before 0.4 run (``if
    TORCH_VERSION == "0.3":``, ``if torch.__version__ < "0.4":``, the
    ``else:`` of ``if torch.__version__ >= "0.4":``)?  No torch
    that can be installed today runs it, so no rule reads it."""
    return any(start <= line <= end for start, end in legacy_spans(ctx))


def legacy_spans(ctx) -> List[Tuple[int, int]]:
    """The first and last lines of each branch ``in_legacy_branch`` asks
    about; none in nearly every module."""
    return _memo(ctx, ("legacy-branches",), lambda: _legacy_branches(ctx), [])


def _legacy_branches(ctx) -> List[Tuple[int, int]]:
    text = "".join(ctx.lines)  # one search of the text: the flag's words never span lines
    if "__version__" not in text and not (("04" in text or "0_4" in text) and re.search(_LEGACY_FLAG_TEXT, text)):
        return []
    names: Set[str] = set()  # ``TORCH_VERSION = torch.__version__[:3]``
    for node in getattr(ctx.tree, "body", ()):
        if (
            isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
            and _torch_version(ctx, node.value, names)
        ):
            names.add(node.targets[0].id)
    parts = _version_parts_names(ctx)  # ``ver = torch.__version__.split(".")``, in any function
    spans = []
    for node in _if_statements(getattr(ctx.tree, "body", [])):
        found = _version_test(ctx, node.test, names) or _parts_test(node.test, parts)
        if node.body and (found == "old" or _legacy_flag(node.test)):
            spans.append((node.body[0].lineno, node.body[-1].end_lineno or node.body[-1].lineno))
        elif node.orelse and found == "new":
            # ``if LooseVersion(torch.__version__) > LooseVersion("0.3.1"): ... else:``
            spans.append((node.orelse[0].lineno, node.orelse[-1].end_lineno or node.orelse[-1].lineno))
    return spans


def _if_statements(block: List[ast.stmt]) -> Iterator[ast.If]:
    """The ``if`` statements of ``block`` and of the blocks nested in it,
    in any statement (expressions are not walked: no statement is in one)."""
    for stmt in statements_in(block):
        if stmt.__class__ is ast.If:
            yield stmt  # type: ignore[misc]


#: The text of a name ``_legacy_flag`` can accept (``TORCH_LT_0_4``,
#: ``PYTORCH_VERSION_LESS_THAN_040``): a module without one, and without
#: ``__version__``, has no legacy branch, and its tree is not walked for them
#: (compiled, and cached by ``re``, on the first line that holds ``04``)
_LEGACY_FLAG_TEXT = r"(?i)(?:torch|version)\w*0_?4(?:_?0)?\b"

#: Words of a flag that says the installed torch is older than a release
_OLDER_WORDS = frozenset({"less", "lt", "before", "below", "older", "old", "pre", "lower"})


def _legacy_flag(test: ast.expr) -> bool:
    """A flag named like "torch is older than 0.4" (``if
    cfg.PYTORCH_VERSION_LESS_THAN_040:``, ``if TORCH_LT_0_4:``): a setting a
    version check made, maybe in another module."""
    if isinstance(test, ast.Attribute):
        name = test.attr
    elif isinstance(test, ast.Name):
        name = test.id
    else:
        return False
    words = tokens(name)
    if not ("torch" in words or "pytorch" in words or "version" in words) or not _OLDER_WORDS.intersection(words):
        return False
    lowered = name.lower()
    return lowered.endswith(("040", "04", "0_4", "0_4_0"))


def _torch_version(ctx, expr: ast.expr, names: Set[str]) -> bool:
    """``torch.__version__``, a slice of it, a name bound to one, or one of
    those parsed (``version.parse(torch.__version__)``, ``LooseVersion(...)``)."""
    expr = _unparsed(expr)
    while isinstance(expr, ast.Subscript):
        expr = expr.value
    if isinstance(expr, ast.Name) and expr.id in names:
        return True
    return isinstance(expr, ast.Attribute) and ctx.imports.resolve(expr) == "torch.__version__"


def _unparsed(expr: ast.expr) -> ast.expr:
    """The version a parser is given: ``version.parse(v)``,
    ``LooseVersion(v)``, ``Version(v)`` -> ``v``."""
    if (
        isinstance(expr, ast.Call) and len(expr.args) == 1 and not expr.keywords
        and last_name(expr.func) in ("parse", "LooseVersion", "StrictVersion", "Version", "parse_version")
    ):
        return expr.args[0]
    return expr


def _version_parts_names(ctx) -> Set[str]:
    """The names the module binds, anywhere, to the installed torch's
    version split into its parts (``ver = torch.__version__.split(".")``,
    also after ``from torch import __version__``)."""
    found: Set[str] = set()
    lines = {i for i, line in enumerate(ctx.lines, start=1) if "__version__" in line and "split" in line}
    if not lines or ctx.tree is None:
        return found  # the cheap answer first: most modules that read the version never split it
    for node in statements_in(ctx.tree.body):
        if node.__class__ is not ast.Assign or node.lineno not in lines:  # type: ignore[attr-defined]
            continue
        value = node.value if len(node.targets) == 1 else None  # type: ignore[attr-defined]
        if (
            isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr == "split"
            and isinstance(node.targets[0], ast.Name)  # type: ignore[union-attr]
            and (ctx.imports.resolve(value.func.value) or "") == "torch.__version__"
        ):
            found.add(node.targets[0].id)  # type: ignore[union-attr]
    return found


def _parts_test(test: ast.expr, parts: Set[str]) -> Optional[str]:
    """``"new"`` for ``int(ver[0]) > 0 or int(ver[1]) >= 4`` (major above 0,
    or minor from 4: only releases before 0.4 fail it), ``"old"`` for
    ``int(ver[0]) == 0 and int(ver[1]) < 4``, on a name of ``parts``."""
    if not parts or not isinstance(test, ast.BoolOp) or len(test.values) != 2:
        return None
    first, second = (_part_compare(v, parts) for v in test.values)
    if first is None or second is None or first[0] != 0 or second[0] != 1:
        return None
    if isinstance(test.op, ast.Or) and first[1:] in (("gt", 0), ("ge", 1)) and second[1:] == ("ge", 4):
        return "new"
    if isinstance(test.op, ast.And) and first[1:] in (("eq", 0), ("lt", 1), ("le", 0)) and second[1:] in (
            ("lt", 4), ("le", 3)):
        return "old"
    return None


_PART_OPS = {ast.Gt: "gt", ast.GtE: "ge", ast.Eq: "eq", ast.Lt: "lt", ast.LtE: "le"}


def _part_compare(test: ast.expr, parts: Set[str]) -> Optional[Tuple[int, str, int]]:
    """``int(ver[i]) OP n`` on a name of ``parts``: ``(i, OP, n)``."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and type(test.ops[0]) in _PART_OPS):
        return None
    left, right = test.left, test.comparators[0]
    if not (isinstance(right, ast.Constant) and type(right.value) is int):
        return None
    if not (isinstance(left, ast.Call) and isinstance(left.func, ast.Name) and left.func.id == "int"
            and len(left.args) == 1 and isinstance(left.args[0], ast.Subscript)):
        return None
    sub = left.args[0]
    if not (isinstance(sub.value, ast.Name) and sub.value.id in parts and isinstance(sub.slice, ast.Constant)
            and type(sub.slice.value) is int):
        return None
    return sub.slice.value, _PART_OPS[type(test.ops[0])], right.value


#: A comparison with its operands swapped: ``"0.4" <= v`` is ``v >= "0.4"``.
_SWAPPED = {ast.Lt: ast.Gt, ast.LtE: ast.GtE, ast.Gt: ast.Lt, ast.GtE: ast.LtE, ast.Eq: ast.Eq}


def _version_test(ctx, test: ast.expr, names: Set[str]) -> Optional[str]:
    """``"old"`` when ``test`` holds only on torch releases before 0.4
    (``version == "0.3"``, ``version < "0.4"``), ``"new"`` when it fails only
    on them, so that its ``else`` is theirs (``version > "0.3.1"``,
    ``version >= "0.4"``); on the installed torch's version, parsed or not."""
    if not isinstance(test, ast.Compare) or len(test.ops) != 1:
        return None
    left, op, right = test.left, type(test.ops[0]), test.comparators[0]
    if op not in _SWAPPED:
        return None
    if not _torch_version(ctx, left, names):
        left, op, right = right, _SWAPPED[op], left
    right = _unparsed(right)
    if not (_torch_version(ctx, left, names) and isinstance(right, ast.Constant) and isinstance(right.value, str)):
        return None
    try:
        parts = [int(p) for p in right.value.split(".")[:3]]
    except ValueError:
        return None
    version = tuple(parts + [0] * (3 - len(parts)))
    # the branch is old torch's when every version it admits is below 0.4
    # (``< "0.4"`` admits none of 0.4; ``<= "0.4"`` admits 0.4 itself)
    below = version <= (0, 4, 0) if op in (ast.Lt, ast.GtE) else version < (0, 4, 0)
    if not below:
        return None
    return "old" if op in (ast.Eq, ast.Lt, ast.LtE) else "new"


#: Ways a script can call a function it names nowhere as code.
_DYNAMIC_LOOKUPS = frozenset({"globals", "locals", "vars", "eval", "exec", "getattr"})


def import_fails(ctx) -> bool:
    """Does the module stop at one of its imports (``Project.import_fails``)?
    Then nothing of it runs.  Without a project index, no."""
    return _memo(ctx, ("import-fails",), lambda: ctx.import_fails(), False)


#: Decorators that always skip a test (not ``skipif``/``skipIf``: those may run it).
_SKIPS = frozenset({"pytest.mark.skip", "unittest.skip", "unittest.case.skip"})


def _skipped_test(ctx, fn: FunctionInfo) -> bool:
    """Is ``fn``, or a function or class that holds it, decorated with an
    unconditional skip (``@pytest.mark.skip(reason=...)``,
    ``@unittest.skip("...")``)?"""
    decorators = list(fn.node.decorator_list)
    outer = fn.parent
    while outer is not None:
        decorators += outer.node.decorator_list
        outer = outer.parent
    if fn.class_name is not None:
        klass = local_classes(ctx).get(fn.class_name)
        if klass is not None:
            decorators += klass.decorator_list
    for deco in decorators:
        target = deco.func if isinstance(deco, ast.Call) else deco
        if (ctx.imports.resolve(target) or "") in _SKIPS:
            return True
    return False


def never_runs(ctx, scope: Scope, depth: int = 0) -> bool:
    """Is ``scope`` code of a module that stops at its imports (see
    ``Project.import_fails``), or a function of a script (see
    ``_is_script``) that nothing runs?  Module-level and undecorated; the
    module neither calls nor names it, no string of the module spells it,
    the module looks no name up at run time, and no other module of the
    project mentions it; or a function defined inside one that never runs.
    Or a module-level function of a module that is no script and that nothing
    imports, in a project that is no package (see
    ``Project.imported_by_nothing``).  A method of a plain class the module
    never names is asked the same (see ``_plain_method``).  Without a project
    index, no, except for a function a later definition of the same name
    replaces (``_redefined_before_use``)."""
    if import_fails(ctx):
        return True  # nothing of a module that stops at its imports runs
    if _unused_part_of_copy(ctx, scope):
        return True  # a bundled library's ``evaluate_loss`` that the project's own code never reaches
    fn = scope.function
    if fn is not None and _redefined_before_use(ctx, fn):
        return True  # a later ``def`` of the same name replaces it before anything can call it
    if fn is not None:
        first = _memo(ctx, ("stops-first",), lambda: _run_before_it_stops(ctx), None)
        if first is not None and _outermost_name(fn) not in first:
            return True  # ``train_set = dataset.Loader(...)`` with no ``dataset``: nothing can call it
    if fn is not None:
        early = _memo(ctx, ("main-stops",), lambda: _main_block_stops(ctx), None)
        if early is not None and _outermost_name(fn) not in early:
            return True  # ``if CRNNx2:`` with no ``CRNNx2`` before ``main(args)``, in a script nothing imports
    if fn is not None and _skipped_test(ctx, fn):
        return True  # ``@pytest.mark.skip(reason=...)``: the test runner never runs it
    if fn is not None and fn.parent is not None and depth < 3:
        outer = scope_of(ctx, fn.parent)
        if outer is not None and never_runs(ctx, outer, depth + 1):
            return True  # a closure of a function that never runs is never even defined
    if fn is None or fn.node.decorator_list:
        return False
    if (
        fn.class_name is not None and fn.key == ("method", fn.class_name, fn.name) and fn.parent is None
        and _memo(ctx, ("unnamed-class", fn.class_name), lambda: _unnamed_class(ctx, fn.class_name), False)
    ):
        return True  # a method of a class no code names: nothing makes an instance of it
    if fn.key != ("function", fn.name) and not _plain_method(ctx, fn):
        # a method of any class: only a module nothing imports says it never
        # runs, or subclasses that all replace it (an abstract base's ``train``)
        if fn.key is None:
            return False
        if _runs_nothing(ctx):
            return True
        return (
            fn.key == ("method", fn.class_name, fn.name) and fn.parent is None and not fn.name.startswith("__")
            and _memo(ctx, ("overridden", fn.class_name, fn.name),
                      lambda: ctx.overridden_everywhere(fn.class_name, fn.name), False)
        )
    if not _memo(ctx, ("is-script",), lambda: _is_script(ctx), False):
        if _runs_nothing(ctx):
            return True
        if is_test_file(ctx.filename or "") or not _memo(ctx, ("library-shaped",), lambda: _library_shaped(ctx), False):
            return False
        # nor does a function of it that no code of an unpackaged project
        # names (only users outside a package's project call what it never
        # does), in a module another one imports, when no module imports by
        # name at run time
        if not _memo(ctx, ("closed",), lambda: ctx.closed_project(), False) and not _left_out_of_all(ctx, fn):
            return False
    strings = _memo(ctx, ("strings",), lambda: _strings(ctx), None)
    if strings is None and fn.parent is None and id(fn.node) in _memo(
            ctx, ("main-defs",), lambda: _main_block_defs(ctx), frozenset()):
        # only the module's own code reaches a function its ``__main__`` block
        # defines: ``vars(args)`` there hands its lookups no module, and a
        # name looked up by the module's own text is one of its strings
        strings = _memo(ctx, ("all-strings",), lambda: frozenset(
            node.value for node in ast.walk(ctx.tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)
        ), frozenset())
    if strings is None or fn.name in strings:
        return False  # ``choices=["evaluate", ...]``, ``globals()[name]``
    if fn.key != ("function", fn.name) and _looks_up_attributes(ctx):
        return False  # a method: ``getattr(tester, name)()`` may call it
    return _called_by_nothing(ctx, scope, depth)  # last: it may ask the project index


def _unused_part_of_copy(ctx, scope: Scope) -> bool:
    """Is ``scope`` code of a copy of another library that the project
    carries (see ``Project.bundled_copy``: a ``d2l/torch.py``, a
    ``transformers/modeling_xlm.py``), which no code of the project outside
    the copy reaches (see ``_reached_from_outside``)?  Top-level code runs
    when a module outside names its module.  The copy's own calls,
    re-exports and example scripts do not count: its code runs only as the
    project uses it."""
    if BUNDLED_LIBRARIES.isdisjoint(re.split(r"[\\/]", ctx.filename or "")[:-1]):
        return False  # (asked of every module: a test of its path first)
    prefix = _memo(ctx, ("bundled-copy",), lambda: ctx.bundled_copy(), None)
    if prefix is None:
        return False
    fn = scope.function
    if fn is None:
        return not _module_reached(ctx, prefix)
    while fn.parent is not None:
        fn = fn.parent
    return not _reached_from_outside(ctx, prefix, fn.class_name or fn.name, 0)


def _module_reached(ctx, prefix: str) -> bool:
    """Does a module outside the copy at ``prefix`` name this module?"""
    stem = _stem(ctx)
    return _memo(ctx, ("named-outside", stem), lambda: ctx.named_outside(prefix, stem), True)


def _reached_from_outside(ctx, prefix: str, name: str, depth: int) -> bool:
    """May code outside the copy at ``prefix`` reach the module's top-level
    function or class ``name``: a module there names it, or code of this
    module that may be reached does (a function or class that may be, three
    steps deep at most, or the module's top level)?"""
    def answer() -> bool:
        if ctx.named_outside(prefix, name, ("function", name) in ctx.functions):
            return True
        if depth >= 3:
            return True
        return any(
            _module_reached(ctx, prefix) if holder is None else
            holder != name and _reached_from_outside(ctx, prefix, holder, depth + 1)
            for holder in _namers(ctx).get(name, ())
        )
    return _memo(ctx, ("reached-from-outside", name), answer, True)


def _namers(ctx) -> Dict[str, Set[Optional[str]]]:
    """For each name the module's code uses (as a name or an attribute), the
    top-level functions and classes whose code uses it, and None for the
    module's other top-level statements."""
    def build() -> Dict[str, Set[Optional[str]]]:
        found: Dict[str, Set[Optional[str]]] = {}
        for stmt in getattr(ctx.tree, "body", ()):
            holder = stmt.name if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else None
            for word in _words(stmt):
                found.setdefault(word, set()).add(holder)
        return found
    return _memo(ctx, ("namers",), build, {})


def _left_out_of_all(ctx, fn: FunctionInfo) -> bool:
    """Is ``fn`` a module-level function of a module that lists its public
    names in ``__all__`` (a literal list or tuple of strings, bound once) and
    leaves it out?  Users of the package are not meant to call it, so only
    the project's own code can (a model file's ``test()`` smoke check whose
    call is commented out), with the project index to say whether it does."""
    if fn.key != ("function", fn.name) or fn.parent is not None:
        return False
    names = _memo(ctx, ("all",), lambda: _declared_all(ctx), None)
    return names is not None and fn.name not in names


def _declared_all(ctx) -> Optional[FrozenSet[str]]:
    """The names of the module's ``__all__``, when one top-level statement
    binds it to a literal list or tuple of strings and nothing else in the
    module's text names it (``__all__ += ...``, ``__all__.extend(...)``)."""
    if sum(line.count("__all__") for line in ctx.lines) != 1:
        return None
    found: Optional[FrozenSet[str]] = None
    for stmt in getattr(ctx.tree, "body", ()):
        targets = stmt.targets if isinstance(stmt, ast.Assign) else (
            [stmt.target] if isinstance(stmt, (ast.AugAssign, ast.AnnAssign)) else []
        )
        if not any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            continue
        value = stmt.value
        if found is not None or not isinstance(stmt, ast.Assign) or not isinstance(value, (ast.List, ast.Tuple)):
            return None  # bound twice, extended, or computed
        if not all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in value.elts):
            return None
        found = frozenset(e.value for e in value.elts)  # type: ignore[union-attr]
    return found


def _unnamed_class(ctx, klass: str) -> bool:
    """Is ``klass`` an undecorated top-level class (of any base: a
    framework's ``Trainer`` is made by the code that uses it) of a
    module that is no test file, that no code of a closed project (see
    ``Project.closed``) names: not this module outside the class's own body,
    no string of it (``getattr(module, "Trainer")``), no other module, or
    only modules that cannot reach it, as none imports this one?  Nothing
    makes an instance, so none of its methods runs (a ``Trainer`` left
    beside the ``SentimentTrainer`` the scripts use; ``meta4.py``'s
    ``Meta`` beside the ``meta5.Meta`` they import; a
    ``FeatureDistillationTrainer(transformers.Trainer)`` no script builds)."""
    tree = ctx.tree
    if tree is None or is_test_file(ctx.filename or "") or klass.startswith("Test"):
        return False
    found = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == klass]
    if len(found) != 1 or found[0].decorator_list or found[0].keywords:
        return False
    strings = _memo(ctx, ("strings",), lambda: _strings(ctx), None)
    if strings is None or klass in strings:
        return False
    for stmt in tree.body:
        if stmt is found[0]:
            continue
        for node in ast.walk(stmt):
            if (node.__class__ is ast.Name and node.id == klass) or (  # type: ignore[attr-defined]
                node.__class__ is ast.Attribute and node.attr == klass  # type: ignore[attr-defined]
            ):
                return False
    if _imported_by_nothing(ctx):
        return True  # another module's ``Meta`` is its own (``from meta5 import Meta``)
    return ctx.closed_project() and ctx.mentioned_elsewhere(klass) is False


#: the bases of a model class that nothing finds by its base (no framework hook)
_MODULE_BASES = frozenset({"nn.Module", "torch.nn.Module"})


def _model_class(node: ast.ClassDef) -> bool:
    """A class whose bases are all ``nn.Module`` (and that has one)."""
    return bool(node.bases) and all(dotted(b) in _MODULE_BASES for b in node.bases)


def _redefined_before_use(ctx, fn: FunctionInfo) -> bool:
    """Is the undecorated function ``fn``, defined at the top level of the
    module or of a top-level class, bound again to the same name by a later
    ``def`` or ``class`` in the same body, with no statement in between
    that names it?  Then nothing can call the first one (``infer_maxsep``
    defined twice: the second replaces the first when the module loads).
    The body of a function defined in between names it only when called,
    and then finds the later one, unless a statement in between calls that
    function first."""
    if fn.parent is not None or fn.node.decorator_list:
        return False
    body = getattr(ctx.tree, "body", ())
    if fn.class_name is not None:
        klass = next((n for n in body if isinstance(n, ast.ClassDef) and n.name == fn.class_name), None)
        if klass is None:
            return False
        body = klass.body
    if fn.name not in _memo(ctx, ("defined-twice", fn.class_name), lambda: _defined_twice(body), frozenset()):
        return False
    later = False
    defined: Set[str] = set()  # the functions defined in between: a call of one may run ``fn``
    for stmt in body:
        if stmt is fn.node:
            later = True
            continue
        if not later:
            continue
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and stmt.name == fn.name:
            return not any(isinstance(n, ast.Name) and n.id == fn.name
                           for decorator in stmt.decorator_list for n in ast.walk(decorator))
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            # its body runs when called, and then finds the later definition;
            # what runs now are its decorators and defaults
            defined.add(stmt.name)
        for node in (n for part in _run_when_defined(stmt) for n in ast.walk(part)):
            if node.__class__ is ast.Name and node.id == fn.name:  # type: ignore[attr-defined]
                return False  # used before the new definition (``register(f)``)
            func = getattr(node, "func", None) if node.__class__ is ast.Call else None
            if isinstance(func, ast.Name) and func.id in defined:
                return False  # ``run()`` before the new definition, where ``run`` calls ``fn``
    return False


def _run_when_defined(stmt: ast.stmt) -> List[ast.AST]:
    """The parts of the top-level statement ``stmt`` that run as the module
    loads: all of a plain statement; a function's decorators and defaults;
    a class's decorators, bases and the statements of its body, whose
    methods again only their decorators and defaults."""
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return [*stmt.decorator_list, stmt.args]
    if isinstance(stmt, ast.ClassDef):
        parts: List[ast.AST] = [*stmt.decorator_list, *stmt.bases, *stmt.keywords]
        for inner in stmt.body:
            parts.extend(_run_when_defined(inner))
        return parts
    return [stmt]


def _defined_twice(body) -> FrozenSet[str]:
    """The names two or more ``def``/``class`` statements of ``body`` bind."""
    seen: Set[str] = set()
    twice: Set[str] = set()
    for stmt in body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            (twice if stmt.name in seen else seen).add(stmt.name)
    return frozenset(twice)


def _never_reached(ctx, loop: Loop) -> bool:
    """Can no run reach the loop, as its function (or the module's top-level
    code) is written?  It sits in the body of an ``if`` that never runs
    (``if False:``, or ``if VALID:`` where the module binds ``VALID`` once,
    at its top level, to ``False``, ``0`` or ``None``, and nowhere else: the
    branch runs only once someone edits the file), or it comes after a
    statement of its own block or of an enclosing one that always leaves
    that block: a ``return``, ``raise``, ``continue``, ``break`` or
    ``exit()`` (``never_completes``), an ``if not VISUALIZE:`` ending in
    one of them where ``VISUALIZE`` is such a flag, a use
    of a blank an exercise leaves to fill in (``images, labels = ...``
    raises, and so does ``model.parameters()`` after ``model = ...``), or a
    statement that reads a name the module binds nowhere (``if arg.test:``
    with no ``arg``: see ``_reads_unbound``) or one a ``del`` of the block
    before it removed (``del data`` then ``normalize(data)``)."""
    root = loop.scope.function.node if loop.scope.function is not None else ctx.tree
    return _cut_off(ctx, getattr(root, "body", []), loop.node, _own_names(loop.scope), _top(ctx, loop.scope))


def never_reached(ctx, scope: Scope, node: ast.AST) -> bool:
    """``_never_reached`` for any node of a function (the ``volatile=`` of a
    loop whose ``tqdm(...)`` the module never imports).  Not asked of a
    module's top-level code, which an editor shows while it is written."""
    if scope.function is None:
        return False
    return _cut_off(ctx, scope.function.node.body, node, _own_names(scope))  # type: ignore[arg-type]


def unreached(ctx, scope: Scope, node: ast.AST) -> bool:
    """Does ``node`` never run: its function never runs (``never_runs``,
    which may read other modules), or no run of it gets there
    (``never_reached``)?"""
    return never_runs(ctx, scope) or never_reached(ctx, scope, node)


def unless_unreached(ctx, node: ast.AST, condition: Optional[Callable[[], bool]] = None) -> Callable[[], bool]:
    """A report's ``condition`` that also asks, last (it may read other
    modules), that ``node`` of the scope being visited now runs (see
    ``unreached``)."""
    scope = ctx.flow.scopes[-1]
    return lambda: (condition is None or condition()) and not unreached(ctx, scope, node)


def _own_names(scope: Scope) -> FrozenSet[str]:
    """The names a scope binds itself: its parameters, and every name its
    own code binds (``Scope.stored``)."""
    local = frozenset(scope.stored)
    root = scope.function.node if scope.function is not None else None
    if isinstance(root, (ast.FunctionDef, ast.AsyncFunctionDef)):
        local |= {a.arg for a in all_params(root.args)}
    return local


#: Names Python gives every module, besides the builtins; and those an
#: IPython session adds (a notebook exported as a script runs there).
_MODULE_NAMES = frozenset({
    "__name__", "__file__", "__doc__", "__builtins__", "__spec__", "__loader__", "__package__", "__path__",
    "__annotations__", "__cached__", "get_ipython", "display", "In", "Out",
})


def _name_error(ctx) -> Optional[ast.stmt]:
    """The first top-level statement of the module that always reads a name
    the module never binds anywhere and no builtin is (``dataset.Loader(...)``
    after ``from torchvision import datasets``): running the module raises
    ``NameError`` there (see ``_reads_unbound``).  None when there is none."""
    tree = ctx.tree
    if not isinstance(tree, ast.Module):
        return None
    body = tree.body
    seen: Set[str] = set()  # the names the statements before ``body[folded]`` bind
    folded = 0
    for i, stmt in enumerate(body):
        if _reads_unbound(ctx, stmt, whole=tree):
            return stmt
        if not _surely_read(stmt) <= seen:
            # the statements before it, walked only when a read asks (a long
            # ``__main__`` block at the end is never walked for this)
            seen.update(_scope_names(body[folded:i]))
            folded = i
            if _reads_before_bound(ctx, stmt, seen):
                return stmt
    return None


def _reads_before_bound(ctx, stmt: ast.stmt, seen: Set[str]) -> bool:
    """Does the top-level statement ``stmt`` surely read a name that the
    module's own scope binds only later, or in ``stmt`` itself (``rewards =
    np.array(rewards)`` at the top of a script whose ``main()`` collected
    its own ``rewards``), with ``seen`` the names the statements before it
    bound?  No function declares it ``global``, no import binds it, and the
    module binds no names its statements do not spell: ``NameError``."""
    read = _surely_read(stmt) - seen
    if not read:
        return False
    early = read & _own_scope_names(ctx)
    if not early:
        return False
    early -= set(ctx.imports.imported_names()) | _MODULE_NAMES | set(dir(builtins))
    if early:  # last, as it walks the whole module
        early -= _declared_global(ctx)
    if not early:
        return False
    found = _memo(ctx, ("bound-names",), lambda: _bound_names(ctx), None)
    if found is None:
        return False
    return not found[1] or ctx.stars_lack(frozenset(early))


def _reads_unbound(ctx, stmt: ast.stmt, local: FrozenSet[str] = frozenset(), whole: Optional[ast.AST] = None) -> bool:
    """Does ``stmt`` always read a name the module binds nowhere (in no
    scope) and no builtin is?  Running it then raises ``NameError``.  No,
    when the module may bind names no statement spells (``from m import *``,
    ``globals()``, ``exec``, ``vars()``, ``__builtins__``).  Only what a
    statement surely evaluates counts: its value, iterable, test or context
    managers, not branches of a conditional expression, lambdas or
    comprehensions.  With ``whole``, a function that no other function
    encloses, whose own names are ``local`` and those its body binds (or
    the module itself, for a statement of its top level): a name it reads
    that neither it nor the module's top level binds, and no function
    declares ``global``, is unbound there too, whatever another function
    binds (``self.model(x, idx_scale)`` where only ``test()`` binds
    ``idx_scale``; ``np.array(episode_rewards)`` at the top of a script
    whose ``main()`` collects them)."""
    read = _surely_read(stmt)
    if not read:
        return False
    # the names the scope or the module's top level binds, or imports: most
    # reads end here, before the whole module is walked for the rest
    read -= local
    read -= _memo(ctx, ("top-level-names",), lambda: _top_level_names(ctx), frozenset())
    if read and whole is not None:  # ``def show():`` in the function too; once per function
        read -= _memo(ctx, ("scope-names", id(whole)), lambda: _scope_names(whole.body), frozenset())  # type: ignore
    if not read:
        return False
    # the names the module's own scope binds (``opt = parse_opt()`` under
    # ``if __name__ == "__main__":``), a part of those bound anywhere: most
    # reads left end here, before the walk of every function body
    read -= _own_scope_names(ctx)
    if not read:
        return False
    found = _memo(ctx, ("bound-names",), lambda: _bound_names(ctx), None)
    if found is None:
        return False
    bound, stars = found
    if whole is not None:
        bound = _memo(ctx, ("module-scope-names",), lambda: _module_scope_names(ctx), frozenset())
    unbound = read - bound
    # ``from network import *`` binds what that module of the project (and those it
    # ``*``-imports) binds: asked last, as it may read them
    return bool(unbound) and (not stars or ctx.stars_lack(frozenset(unbound)))


def _module_scope_names(ctx) -> FrozenSet[str]:
    """The names the module's own scope binds anywhere (``teacher = ...``
    under ``if __name__ == "__main__":`` too, not in a function or class),
    and those a ``global`` statement declares."""
    return _own_scope_names(ctx) | _declared_global(ctx)


def _declared_global(ctx) -> FrozenSet[str]:
    """The names a ``global`` statement of the module declares, once per module."""
    return _memo(ctx, ("declared-global",), lambda: frozenset(
        name for node in ast.walk(ctx.tree) if node.__class__ is ast.Global for name in node.names  # type: ignore
    ), frozenset())


def _own_scope_names(ctx) -> FrozenSet[str]:
    """The names the module's own scope binds (``_scope_names`` of its body),
    once per module."""
    return _memo(ctx, ("own-scope-names",), lambda: frozenset(_scope_names(getattr(ctx.tree, "body", ()))),
                 frozenset())


def _scope_names(body: List[ast.stmt]) -> Set[str]:
    """The names statements ``body`` bind in their own scope: targets,
    ``def``/``class`` names, imports, ``except ... as`` names, in nested
    blocks too but not in nested functions, classes or comprehensions."""
    found: Set[str] = set()
    todo: List[ast.AST] = list(body)
    while todo:
        node = todo.pop()
        cls = node.__class__
        if cls in (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef):
            found.add(node.name)  # type: ignore[attr-defined]
            todo.extend(node.decorator_list)  # type: ignore[attr-defined]
            continue
        if cls is ast.Lambda or cls in _COMPREHENSIONS:
            continue
        if cls is ast.Name and node.ctx.__class__ is not ast.Load:  # type: ignore[attr-defined]
            found.add(node.id)  # type: ignore[attr-defined]
        elif cls in (ast.Import, ast.ImportFrom):
            found.update((alias.asname or alias.name).split(".")[0] for alias in node.names)  # type: ignore
        elif cls is ast.ExceptHandler and node.name:  # type: ignore[attr-defined]
            found.add(node.name)  # type: ignore[attr-defined]
        todo.extend(ast.iter_child_nodes(node))
    return found


_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def _top_level_names(ctx) -> FrozenSet[str]:
    """The builtins, the names Python gives a module, every name the module
    imports anywhere, and the names its top-level statements bind."""
    found: Set[str] = set(_MODULE_NAMES) | set(dir(builtins)) | set(ctx.imports.imported_names())
    for stmt in getattr(ctx.tree, "body", ()):
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.add(stmt.name)
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            found.update((alias.asname or alias.name).split(".")[0] for alias in stmt.names)
        else:
            targets = getattr(stmt, "targets", None) or [getattr(stmt, "target", None)]
            for target in targets:
                if target is not None:
                    found.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return frozenset(found)


def _bound_names(ctx) -> Optional[Tuple[FrozenSet[str], bool]]:
    """Every name the module binds in any scope, with the builtins and the
    names Python gives a module, and whether it also ``*``-imports a module;
    None when it may bind names no statement spells otherwise."""
    tree = ctx.tree
    if not isinstance(tree, ast.Module):
        return None
    stars = False
    bound: Set[str] = set(_MODULE_NAMES) | set(dir(builtins))
    for node in preorder(tree):
        cls = node.__class__
        if cls is ast.Name:
            if node.ctx.__class__ is not ast.Load:  # type: ignore[attr-defined]
                bound.add(node.id)  # type: ignore[attr-defined]
            elif node.id in _RUN_TIME_SCOPES:  # type: ignore[attr-defined]
                return None
        elif cls in (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef):
            bound.add(node.name)  # type: ignore[attr-defined]
        elif cls is ast.arg:
            bound.add(node.arg)  # type: ignore[attr-defined]
        elif cls in (ast.Import, ast.ImportFrom):
            for alias in node.names:  # type: ignore[attr-defined]
                if alias.name == "*":
                    stars = True
                else:
                    bound.add((alias.asname or alias.name).split(".")[0])
        elif cls in (ast.Global, ast.Nonlocal):
            bound.update(node.names)  # type: ignore[attr-defined]
        elif cls is ast.ExceptHandler and node.name:  # type: ignore[attr-defined]
            bound.add(node.name)  # type: ignore[attr-defined]
        elif cls.__name__ in ("MatchAs", "MatchStar") and getattr(node, "name", None):
            bound.add(node.name)  # type: ignore[attr-defined]
        elif cls.__name__ == "MatchMapping" and getattr(node, "rest", None):
            bound.add(node.rest)  # type: ignore[attr-defined]
    return frozenset(bound), stars


#: Names through which a module may bind names no statement spells.
_RUN_TIME_SCOPES = frozenset({"globals", "exec", "vars", "locals", "__builtins__", "__import__", "setattr"})


def _surely_evaluated(stmt: ast.stmt) -> List[ast.expr]:
    """The expressions a top-level statement evaluates whenever it runs."""
    if isinstance(stmt, (ast.Expr, ast.Assign, ast.AugAssign)) or (
        isinstance(stmt, ast.AnnAssign) and stmt.value is not None
    ):
        return [stmt.value]  # type: ignore[list-item]
    if isinstance(stmt, (ast.For, ast.AsyncFor)):
        return [stmt.iter]
    if isinstance(stmt, (ast.While, ast.If)):
        return [stmt.test]
    if isinstance(stmt, (ast.With, ast.AsyncWith)):
        return [item.context_expr for item in stmt.items]
    return []


def _eager_nodes(expr: ast.expr) -> Iterator[ast.AST]:
    """The nodes of ``expr`` that are evaluated whenever it is: not inside a
    lambda, a comprehension, or a branch of ``x if c else y``, ``a and b``."""
    todo: List[ast.AST] = [expr]
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            continue
        if isinstance(node, ast.IfExp):
            todo.append(node.test)
        elif isinstance(node, ast.BoolOp):
            todo.append(node.values[0])
        else:
            todo.extend(ast.iter_child_nodes(node))


def _run_before_it_stops(ctx) -> Optional[FrozenSet[str]]:
    """When the module stops at a name it never binds (``_name_error``):
    the names of its functions and classes that can run before, those the
    top-level statements before the stop name (decorators included) and,
    through their bodies, those they name in turn.  Nothing else of the
    module ever runs, and importing it raises too.  None when it does not
    stop so."""
    stop = _memo(ctx, ("name-error",), lambda: _name_error(ctx), None)
    if stop is None:
        return None
    defs = {s.name: s for s in ctx.tree.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    before: List[ast.AST] = []
    for stmt in ctx.tree.body:
        if stmt is stop:
            break
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            before.extend(stmt.decorator_list)  # defined, not run (decorators aside: they are called)
        else:
            before.append(stmt)
    return _names_reached(before, defs)


def _names_reached(before: List[ast.AST], defs: Dict[str, ast.stmt]) -> FrozenSet[str]:
    """The names of ``defs`` (a module's functions and classes) that the
    code ``before`` names and, through their bodies, those they name in turn."""
    named: Set[str] = set()
    todo = list(before)
    while todo:
        for node in ast.walk(todo.pop()):
            if node.__class__ is ast.Name and node.id in defs and node.id not in named:  # type: ignore[attr-defined]
                named.add(node.id)  # type: ignore[attr-defined]
                todo.append(defs[node.id])  # type: ignore[attr-defined]
    return frozenset(named)


def _main_block_stops(ctx) -> Optional[FrozenSet[str]]:
    """When the module's ``if __name__ == "__main__":`` block stops at a
    name the module never binds (``_reads_unbound``: ``NameError``), at
    a class built with arguments it cannot take (``_cannot_build``), or at
    an import of a name its project module lacks (``from modeling import
    get_model`` after ``get_model`` became ``build_model``: ``ImportError``),
    in a module nothing in the project imports (see ``_imported_by_nothing``):
    the names of the module's functions and classes that can run before,
    those the statements before it name and, through their bodies, those
    they name in turn.  Nothing else of the module ever runs.  None
    otherwise, and without a project index."""
    tree = ctx.tree
    if not isinstance(tree, ast.Module):
        return None
    defs = {s.name: s for s in tree.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    before: List[ast.AST] = []
    stop = None
    for stmt in tree.body:
        if isinstance(stmt, ast.If) and _is_main_test(stmt.test):
            for inner in stmt.body:
                if _reads_unbound(ctx, inner) or _cannot_build(ctx, inner, frozenset()) or (
                    isinstance(inner, ast.ImportFrom) and inner.module
                    and any(alias.name != "*" and ctx.import_lacks(inner.level, f"{inner.module}.{alias.name}")
                            for alias in inner.names)
                ):
                    stop = inner  # ``NameError``, ``TypeError`` building a class, or ``ImportError``
                    break
                before.append(inner)
            break
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            before.extend(stmt.decorator_list)
        else:
            before.append(stmt)
    if stop is None or not _imported_by_nothing(ctx):
        return None
    return _names_reached(before, defs)


def _outermost_name(fn: FunctionInfo) -> str:
    """The module-level name ``fn`` is reached through: its class, or the
    function that encloses it."""
    while fn.parent is not None:
        fn = fn.parent
    return fn.class_name or fn.name


def _model_self_test(ctx) -> Optional[ast.stmt]:
    """The module's ``if __name__ == "__main__":`` block when the module
    defines a model (an ``nn.Module`` subclass) and another module of the
    project imports it: the block is the model's own smoke test, run by hand
    while the model is written (a few passes in each mode, outputs
    printed), not how the project evaluates.  None without a project index."""
    body = getattr(ctx.tree, "body", [])
    main = next((s for s in body if isinstance(s, ast.If) and _is_main_test(s.test)), None)
    if main is None or not any(isinstance(s, ast.ClassDef) and _model_class(s) for s in body):
        return None
    return main if ctx.imported_by_another() else None


def _self_test(ctx, scope: Scope, node: ast.AST) -> bool:
    """Is ``node`` (of ``scope``) part of the model module's own smoke test
    (see ``_model_self_test``): in its ``__main__`` block, or in a
    module-level function only that block calls and no other module names
    (``def _test():`` that checks the output shapes of each model size)?"""
    block = _memo(ctx, ("self-test",), lambda: _model_self_test(ctx), None)
    if block is None:
        return False
    fn = scope.function
    if fn is None:
        return _in_block(node, block)
    if fn.key != ("function", fn.name) or fn.parent is not None or fn.escaped or fn.by_name:
        return False
    sites = call_sites(ctx, fn)
    nodes = ctx.flow.nodes
    if not sites or not all(
        caller.function is None and seq in nodes and _in_block(nodes[seq], block) for caller, seq in sites
    ):
        return False
    return ctx.mentioned_elsewhere(fn.name, True) is False


def _in_block(node: ast.AST, block: Optional[ast.stmt]) -> bool:
    """Is ``node`` one of the lines of the statement ``block``?"""
    return block is not None and block.lineno <= node.lineno <= (block.end_lineno or block.lineno)  # type: ignore


def _is_main_test(test: ast.expr) -> bool:
    """``__name__ == "__main__"``."""
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in test.comparators)
    )


#: Statements after which nothing of their block runs.
_EXITS = (ast.Return, ast.Raise, ast.Continue, ast.Break)

#: Calls that end the program: made as a statement, nothing after it runs.
_EXIT_CALLS = frozenset({"exit", "quit", "sys.exit", "os._exit"})


def block_holding(holder: ast.stmt, line: int) -> Optional[List[ast.stmt]]:
    """The block of the compound statement ``holder`` (its body, ``else``,
    ``finally``, an ``except`` or a ``case``) whose statements span
    ``line``; None when none does."""
    inner = [getattr(holder, "body", None), getattr(holder, "orelse", None), getattr(holder, "finalbody", None)]
    inner += [case.body for case in (*getattr(holder, "handlers", ()), *getattr(holder, "cases", ()))]
    return next(
        (b for b in inner if isinstance(b, list) and b and b[0].lineno <= line <= (b[-1].end_lineno or 0)), None
    )


def never_completes(stmt: ast.stmt) -> bool:
    """Is ``stmt`` one after which nothing of its block runs: ``return``,
    ``raise``, ``continue``, ``break``, or a call of ``exit()``,
    ``sys.exit()`` and the like as a statement?"""
    return isinstance(stmt, _EXITS) or (
        isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call) and dotted(stmt.value.func) in _EXIT_CALLS
    )


def _cut_off(
    ctx, body: List[ast.stmt], target: ast.stmt, local: FrozenSet[str] = frozenset(), top: Optional[ast.AST] = None,
) -> bool:
    """``_never_reached`` for ``target`` inside the statements ``body``;
    ``local``: names the scope binds itself (bound, whatever else holds);
    ``top``: the module, when ``body`` is its top level (see ``_top``)."""
    where = (target.lineno, target.col_offset)
    if top is not None and body is getattr(top, "body", None):
        stop = _memo(ctx, ("name-error",), lambda: _name_error(ctx), None)
        if stop is not None and (stop.end_lineno or stop.lineno) < target.lineno:
            return True  # after the top-level statement the module stops at (``_name_error``)
    blanks: Set[str] = set()  # ``model = ...``: a blank, until bound again
    deleted: Set[str] = set()  # ``del data``: unbound, until bound again
    for stmt in body:
        if stmt is target:
            return False
        if deleted and not deleted.isdisjoint(_surely_read(stmt)):
            return True  # ``del seismic_data`` then ``normalize(seismic_data)``: NameError
        if (stmt.lineno, stmt.col_offset) <= where <= (stmt.end_lineno or 0, stmt.end_col_offset or 0):
            if _reads_unbound(ctx, stmt, local, top):
                return True  # ``for x in loaders[split]:`` with no ``loaders``: its body never runs
            for field in ("body", "orelse", "finalbody", "handlers", "cases"):
                for block in _blocks(getattr(stmt, field, None)):
                    if block and (block[0].lineno, block[0].col_offset) <= where <= (
                        block[-1].end_lineno or 0, block[-1].end_col_offset or 0
                    ):
                        if field == "body" and isinstance(stmt, ast.If) and false_test(ctx, stmt.test):
                            return True
                        return _cut_off(ctx, block, target, local, top)
            return False
        if never_completes(stmt) or (blanks and _uses_blank(stmt, blanks)) or _reads_unbound(ctx, stmt, local, top):
            return True  # ``if arg.test:`` with no ``arg`` anywhere raises NameError too
        if _always_leaves(ctx, stmt):
            return True  # ``if not VISUALIZE: return`` with ``VISUALIZE = False``
        if _cannot_build(ctx, stmt, local):
            return True  # ``model = SSD(config, n)`` of an ``__init__`` wanting three: TypeError
        if stmt.__class__ is ast.Delete:
            deleted.update(t.id for t in stmt.targets if t.__class__ is ast.Name)  # type: ignore[attr-defined]
        elif deleted:
            deleted -= _scope_names([stmt])
        if isinstance(stmt, ast.Assign):
            blank = isinstance(stmt.value, ast.Constant) and stmt.value.value is Ellipsis
            if blank and any(isinstance(t, (ast.Tuple, ast.List)) for t in stmt.targets):
                return True
            for t in stmt.targets:
                if isinstance(t, ast.Name):
                    (blanks.add if blank else blanks.discard)(t.id)
    return False


def _cannot_build(ctx, stmt: ast.stmt, local: FrozenSet[str]) -> bool:
    """Does a plain statement build, as its value, an instance of a class
    that a project module defines and this one imports by name, with too few
    arguments for its ``__init__`` (see ``Project.builds``), or one of this
    module's classes with arguments its own ``__init__`` cannot bind
    (``GRU_TV(..., dropout=0)`` of an ``__init__`` that also wants
    ``dropout_type``)?"""
    if not isinstance(stmt, (ast.Assign, ast.Expr, ast.AnnAssign)) or stmt.value is None:
        return False
    call = unchained(stmt.value)
    if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name):
        return False
    name = call.func.id
    if not name[:1].isupper() or name in local:
        return False
    klass = local_classes(ctx).get(name)
    if klass is not None:
        init = method_of(klass, "__init__")
        if init is None or klass.decorator_list or klass.keywords or method_of(klass, "__new__") is not None:
            return False
        # ``self`` takes the first positional parameter
        bound = ast.Call(func=call.func, args=[ast.Constant(None), *call.args], keywords=call.keywords)
        return not _can_bind(init, bound)
    if name not in ctx.imports.imported_names():
        return False
    return not ctx.builds(name, call)


def false_test(ctx, test: ast.expr) -> bool:
    """``False``, ``0``, ``None``, or a name the module binds once to one of
    them; or ``and`` with one such operand (``if use_test and epoch % k ==
    0:``), ``or`` of only such."""
    if isinstance(test, ast.Constant):
        return not test.value and not isinstance(test.value, str)
    if isinstance(test, ast.BoolOp):
        falses = [false_test(ctx, value) for value in test.values]
        return any(falses) if isinstance(test.op, ast.And) else all(falses)
    return isinstance(test, ast.Name) and test.id in _memo(ctx, ("false-flags",), lambda: _false_flags(ctx), set())


def _always_leaves(ctx, stmt: ast.stmt) -> bool:
    """Is ``stmt`` an ``if not FLAG:`` whose body leaves the block
    (``return``, ``raise``, ...) and whose ``FLAG`` the module binds once, at
    its top level, to ``False``, ``0`` or ``None`` (see ``false_test``)?"""
    if stmt.__class__ is not ast.If or not stmt.body or not never_completes(stmt.body[-1]):  # type: ignore
        return False
    test = stmt.test  # type: ignore[attr-defined]
    return isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not) and false_test(ctx, test.operand)


def _surely_read(stmt: ast.stmt) -> Set[str]:
    """The names ``stmt`` reads whenever it runs (see ``_surely_evaluated``)."""
    return {
        inner.id for expr in _surely_evaluated(stmt) for inner in _eager_nodes(expr)  # type: ignore[attr-defined]
        if inner.__class__ is ast.Name
    }


def _uses_blank(stmt: ast.stmt, blanks: Set[str]) -> bool:
    """Does a plain statement call a blank or read one of its attributes
    (``model.parameters()`` after ``model = ...``), which raises?  Only
    parts that always run: not inside a lambda, a conditional expression or
    a comprehension."""
    if not isinstance(stmt, (ast.Assign, ast.Expr, ast.AugAssign, ast.AnnAssign)) or stmt.value is None:
        return False
    todo: List[ast.AST] = [stmt.value]
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.Lambda, ast.IfExp, ast.BoolOp, ast.ListComp, ast.SetComp, ast.DictComp,
                             ast.GeneratorExp)):
            continue
        if isinstance(node, (ast.Attribute, ast.Call)):
            inner = node.value if isinstance(node, ast.Attribute) else node.func
            if isinstance(inner, ast.Name) and inner.id in blanks:
                return True
        todo.extend(ast.iter_child_nodes(node))
    return False


def _blocks(field: object) -> List[List[ast.stmt]]:
    """The statement lists of a field: a body, or the bodies of handlers and cases."""
    if not isinstance(field, list) or not field:
        return []
    if isinstance(field[0], ast.stmt):
        return [field]
    return [getattr(item, "body", []) for item in field]


def _false_flags(ctx) -> Set[str]:
    """The names the module binds exactly once, at its top level (its
    ``if __name__ == "__main__":`` block included) or at the top level of a
    function's body (``use_test = False`` in ``main()``), to ``False``, ``0``
    or ``None`` (``EVAL = False``), and nowhere else (a function's ``global
    EVAL`` that never assigns it changes nothing), and that no function
    takes as a parameter.  Another function reading the name finds no
    such global: it fails there.  One walk of the module counts every
    binding and finds the functions."""
    tree = ctx.tree
    if tree is None:
        return set()
    top = getattr(tree, "body", ())
    stores: Dict[str, int] = {}
    functions = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if not isinstance(node.ctx, ast.Load):
                stores[node.id] = stores.get(node.id, 0) + 1
        elif isinstance(node, ast.arg):
            stores[node.arg] = stores.get(node.arg, 0) + 2  # a parameter: handed in, any value
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            functions.append(node)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                name = (alias.asname or alias.name).split(".")[0]
                stores[name] = stores.get(name, 0) + 2
    return {
        stmt.targets[0].id for stmt in [
            *top, *(inner for block in top if isinstance(block, ast.If) and _is_main_test(block.test)
                    for inner in block.body),
            *(inner for fn in functions for inner in fn.body),
        ]
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
        and isinstance(stmt.value, ast.Constant) and stmt.value.value in (False, 0, None)
        and not isinstance(stmt.value.value, (str, float)) and stores.get(stmt.targets[0].id) == 1
    }


def _runs_nothing(ctx) -> bool:
    """Is the module one that no code of an unpackaged project imports, and
    that is no test file (a test runner imports those) and either only
    defines things or is a script whose own code names none of the
    functions and classes it defines (``if __name__ == "__main__":
    print("Done")``)?  Then nothing of what it defines runs."""
    def ask() -> bool:
        if is_test_file(ctx.filename or ""):
            return False
        if _memo(ctx, ("is-script",), lambda: _is_script(ctx), False):
            return _runs_none_of_its_own(ctx) and _imported_by_nothing(ctx)
        return _memo(ctx, ("library-shaped",), lambda: _library_shaped(ctx), False) and _imported_by_nothing(ctx)
    return _memo(ctx, ("runs-nothing",), ask, False)


def _runs_none_of_its_own(ctx) -> bool:
    """Does the module's top-level code (its ``__main__`` block included)
    name none of the functions and classes the module defines at its top
    level, look nothing up at run time (``globals()``, ``getattr``) and
    spell none of their names in a string?"""
    body = getattr(ctx.tree, "body", ())
    own = {s.name for s in body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    strings = _memo(ctx, ("strings",), lambda: _strings(ctx), None)
    if strings is None or own & strings:
        return False  # ``choices=["train", ...]``, or a name looked up at run time
    for stmt in body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        for node in preorder(stmt):
            if node.__class__ is ast.Name and (node.id in own or node.id in _DYNAMIC_LOOKUPS):  # type: ignore
                return False
    return True


def _plain_method(ctx, fn: FunctionInfo) -> bool:
    """A method of a plain class of this module (no base but ``object``, so
    no framework calls it as a hook) that the module never names: no
    ``.name`` and no ``name`` anywhere in it.  Whether it runs is then the
    question asked of a module-level function."""
    klass = fn.class_name
    if klass is None or fn.key != ("method", klass, fn.name) or fn.parent is not None:
        return False
    if fn.name.startswith("__") or fn.name in ctx._referenced_attrs or fn.name in ctx._referenced:
        return False
    bases = _memo(ctx, ("bases",), lambda: _class_bases(ctx), {}).get(klass)
    return bases is not None and plain_bases(bases)


def _called_by_nothing(ctx, scope: Scope, depth: int = 0) -> bool:
    """Does no code of the project call or name ``scope``'s function (its
    module included), or do only modules name it that cannot reach it: no
    module imports its module (see ``Project.imported_by_nothing``)?
    Without a project index, no."""
    fn = scope.function
    if fn is None or fn.key is None or fn.escaped or fn.by_name:
        return False
    # (its own calls of itself start nothing)
    sites = [(caller, seq) for caller, seq in call_sites(ctx, fn) if caller.function is not fn]
    if sites and not (depth < 3 and all(
        caller.function is not None and never_runs(ctx, caller, depth + 1) or _call_cut_off(ctx, caller, seq)
        for caller, seq in sites
    )):
        # called, unless only by functions that never run (``get_is`` in a
        # dead ``search()``) or never get to the call (``main()`` reading a
        # ``train_dataset`` it never binds first)
        return False
    if fn.name.startswith("__") and fn.name.endswith("__"):
        # ``__call__``: Python calls it (``explainer(x)``), no code names it;
        # it runs when its class is used, so ask about the class
        klass = fn.class_name
        if klass is None or ctx.call_sites.get(("function", klass)) or klass in ctx._referenced:
            return False
        return ctx.mentioned_elsewhere(klass) is False
    if fn.parent is None and id(fn.node) in _memo(ctx, ("main-defs",), lambda: _main_block_defs(ctx), frozenset()):
        return True  # ``def evaluate():`` inside ``if __name__ == "__main__":``: no import defines it
    # a call elsewhere mentions it too
    mentioned = ctx.mentioned_elsewhere(fn.name, fn.key == ("function", fn.name) and fn.parent is None)
    # another module that spells the name (its own ``validate``) can call this
    # one only by importing this module, which none does
    return mentioned is False or (mentioned is True and _imported_by_nothing(ctx))


def _main_block_defs(ctx) -> FrozenSet[int]:
    """The ``id`` of each function the module defines in its ``if __name__
    == "__main__":`` blocks (in their ``if``, ``try`` and ``with`` blocks
    too): only a run of the module as a script defines one, so only the
    module's own code can call it."""
    found: Set[int] = set()

    def collect(body: List[ast.stmt]) -> None:
        for stmt in body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.add(id(stmt))
            elif isinstance(stmt, (ast.If, ast.Try, ast.With)):
                for field in ("body", "orelse", "handlers", "finalbody"):
                    for part in getattr(stmt, field, ()):
                        collect(part.body if isinstance(part, ast.ExceptHandler) else [part])

    for stmt in getattr(ctx.tree, "body", ()):
        if isinstance(stmt, ast.If) and _is_main_test(stmt.test):
            collect(stmt.body)
    return frozenset(found)


def _call_cut_off(ctx, caller: Scope, seq: int) -> bool:
    """Does no run of ``caller``'s function get to its call number ``seq``
    (see ``_cut_off``)?"""
    node = ctx.flow.nodes.get(seq)
    if node is None:
        return False
    body = caller.function.node.body if caller.function is not None else getattr(ctx.tree, "body", [])
    return _cut_off(ctx, body, node, _own_names(caller), _top(ctx, caller))  # type: ignore[attr-defined]


def _top(ctx, scope: Scope) -> Optional[ast.AST]:
    """The module, for its own scope: what ``_reads_unbound`` reads a
    top-level statement against (names a function binds for itself are not
    the module's); None for a function's."""
    return ctx.tree if scope.function is None else None


def never_starts(fn: FunctionInfo, call: ast.Call) -> bool:
    """Is ``call`` a call of the module function ``fn`` by its name that
    cannot bind its parameters (``evaluate(model, loss, opt, x, y)`` of a
    ``def evaluate(model, loss, x, y)``)?  It raises ``TypeError``: ``fn``
    never starts there, in any grad or model mode."""
    return call.func.__class__ is ast.Name and fn.key == ("function", fn.name) and not _can_bind(fn.node, call)


def _can_bind(node: ast.AST, call: ast.Call) -> bool:
    """Can ``call`` bind the parameters of the function ``node``: no more
    positional arguments than it takes, every parameter without a default
    given, no keyword it does not name?  Yes, when a ``*``/``**`` argument
    may pass any."""
    args = node.args  # type: ignore[attr-defined]
    if not call.keywords and not args.posonlyargs and not args.kwonlyargs and len(call.args) == len(args.args):
        return True  # the common call: one positional argument for each parameter
    if any(a.__class__ is ast.Starred for a in call.args) or any(k.arg is None for k in call.keywords):
        return True
    positional = [a.arg for a in (*args.posonlyargs, *args.args)]
    if len(call.args) > len(positional) and args.vararg is None:
        return False
    given = {k.arg for k in call.keywords}
    if args.kwarg is None and not given <= {*positional[len(args.posonlyargs):], *(a.arg for a in args.kwonlyargs)}:
        return False
    required = positional[len(call.args):len(positional) - len(args.defaults)]
    missing_kw = [a.arg for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is None]
    return all(name in given for name in (*required, *missing_kw))


def _imported_by_nothing(ctx) -> bool:
    """``Project.imported_by_nothing``, asked once per module."""
    return _memo(ctx, ("imported-by-nothing",), lambda: ctx.imported_by_nothing(), False)


def _is_script(ctx) -> bool:
    """Does the module run a program: an ``if __name__ == "__main__":``
    block, a call of a bare name as a top-level statement (``main()``,
    ``print(...)``), or a file name no import can spell (``eval-adv.py``)?"""
    stem = _stem(ctx)
    if "-" in stem:
        return True
    for stmt in getattr(ctx.tree, "body", ()):
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call) and isinstance(stmt.value.func, ast.Name):
            return True
        if isinstance(stmt, ast.If) and _is_main_test(stmt.test):
            return True
    return False


def _stem(ctx) -> str:
    """The module's file name without its directory and extension."""
    return re.split(r"[\\/]", ctx.filename or "")[-1].rpartition(".")[0]


def _library_shaped(ctx) -> bool:
    """Does the module only define things, as a module made to be imported
    does: a name an import can spell (``10_cnn.py`` cannot be imported), and
    at top level (in ``if``/``try`` blocks too) only imports, definitions,
    assignments and docstrings, no statement that runs something for its
    effect (``parser.add_argument(...)``, ``for epoch in ...: test()``; a
    ``sys.path`` or ``warnings`` call is no such statement) and no
    ``parse_args()``?"""
    stem = _stem(ctx)
    if not stem.isidentifier():
        return False
    todo = list(getattr(ctx.tree, "body", ()))
    while todo:
        stmt = todo.pop()
        if isinstance(stmt, (ast.If, ast.Try)):
            todo.extend(stmt.body)
            todo.extend(stmt.orelse)
            for handler in getattr(stmt, "handlers", ()):
                todo.extend(handler.body)
            todo.extend(getattr(stmt, "finalbody", ()))
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign)):
            if any(isinstance(n, ast.Call) and last_name(n.func) == "parse_args" for n in ast.walk(stmt)):
                return False
        elif isinstance(stmt, ast.Expr):
            if not isinstance(stmt.value, ast.Constant) and not _sets_up_imports(stmt.value):
                return False
        elif not isinstance(stmt, _DEFINING):
            return False
    return True


def _sets_up_imports(expr: ast.expr) -> bool:
    """``sys.path.append('../')``, ``warnings.filterwarnings('ignore')``,
    ``np.random.seed(1337)``, ``matplotlib.use('Agg')``: a call a module
    made to be imported makes so that its own imports work, stay quiet,
    draw the same numbers or plot without a display."""
    if not isinstance(expr, ast.Call):
        return False
    name = dotted(expr.func) or ""
    return name.startswith("sys.path.") or name.startswith("warnings.") or name in _SEEDS or name in _BACKENDS


#: Calls that pick matplotlib's backend.
_BACKENDS = frozenset({"matplotlib.use", "mpl.use"})


#: Calls that seed a random number generator.
_SEEDS = frozenset({
    "random.seed", "np.random.seed", "numpy.random.seed", "torch.manual_seed", "torch.cuda.manual_seed",
    "torch.cuda.manual_seed_all",
})


_DEFINING = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Pass, ast.Global)


def _strings(ctx) -> Optional[FrozenSet[str]]:
    """The module's string constants; None when it may look one of its
    functions up by name at run time (``globals()[name]``, ``eval``,
    ``getattr(module, name)`` on a module of the project, ``fire.Fire()``).
    ``getattr(obj, name)`` and ``vars(obj)`` on an object that is no module
    of the project (a name the module does not import, or imports from
    outside the project, when it imports no module by name at run time and
    nothing with ``*``) reach its attributes, not the module's functions:
    they are noted (``_looks_up_attributes``) and do not count here; one
    whose name is a string constant reaches that name only, which is one of
    the strings."""
    found: Set[str] = set()
    objects: List[ast.expr] = []
    imported = set(ctx.imports.imported_names())
    #: a dict display's keys and a subscript's strings (``{"predictions": p}``,
    #: ``res["predictions"]``): an item of a dict, not a name looked up
    items: Set[int] = set()
    for node in preorder(ctx.tree) if ctx.tree is not None else ():  # a dict or subscript before its strings
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in items:
                found.add(node.value)
        elif isinstance(node, ast.Dict):
            items.update(id(key) for key in node.keys if key is not None)
        elif isinstance(node, ast.Subscript) and not (
            isinstance(node.value, ast.Attribute) and node.value.attr == "__dict__"
        ):
            items.add(id(node.slice))
        elif isinstance(node, ast.ImportFrom) and any(alias.name == "*" for alias in node.names):
            imported.add("*")
        elif isinstance(node, ast.Call) and (
            (isinstance(node.func, ast.Name) and node.func.id in _DYNAMIC_LOOKUPS) or last_name(node.func) == "Fire"
        ):
            if isinstance(node.func, ast.Name) and node.func.id in _OBJECT_LOOKUPS and node.args:
                named = node.args[1] if len(node.args) > 1 else None
                if not (isinstance(named, ast.Constant) and isinstance(named.value, str)):
                    objects.append(node.args[0])  # ``getattr(x, "__module__")`` reaches one name, a string here
                continue
            return None  # ``fire.Fire()`` runs whichever function the command line names
    if objects and ("*" in imported or imported & _RUN_TIME_IMPORTS and _reaches_modules(ctx) or any(
        _root_name(obj) in (None, *_RUN_TIME_IMPORTS) or _looks_up_a_project_module(ctx, _root_name(obj), imported)
        for obj in objects
    )):
        return None
    ctx.flow.cache[("attribute-lookups",)] = bool(objects)
    return frozenset(found)


def _looks_up_a_project_module(ctx, root: Optional[str], imported: Set[str]) -> bool:
    """Is ``root`` of ``getattr(root, name)`` an imported name that may be a
    module of the project, which may hold this module's functions?  One
    imported from outside (``getattr(torchvision.models, f"resnet{n}")``)
    reaches only that package's, and so does a project module that does not
    import this one (``getattr(models, config.model_name)`` in a ``main.py``
    that ``models`` never imports: see ``Project.may_hold_my_functions``)."""
    return root in imported and ctx.from_the_project(root) and ctx.may_hold_my_functions(root)


def _reaches_modules(ctx) -> bool:
    """Does the module's text reach a module object at run time
    (``sys.modules[__name__]``, ``importlib.import_module(name)``,
    ``__import__(name)``)?  One that imports ``sys`` only for ``sys.path``
    or ``sys.argv`` hands ``getattr`` and ``vars`` no module of its own."""
    return any(word in line for line in ctx.lines for word in _MODULE_REACHES)


#: What a module's text says when it reaches a module object at run time.
_MODULE_REACHES = ("modules", "import_module", "__import__")
#: Lookups that, handed an object, reach its attributes: a module's functions only when it is a module.
_OBJECT_LOOKUPS = frozenset({"getattr", "vars"})
#: Names by which a module reaches modules at run time (``sys.modules[__name__]``).
_RUN_TIME_IMPORTS = frozenset({"sys", "importlib", "__import__"})


def _root_name(expr: ast.expr) -> Optional[str]:
    """The name an expression starts from (``args`` of ``args.model``), if it is one."""
    while isinstance(expr, (ast.Attribute, ast.Subscript, ast.Call)):
        expr = expr.func if isinstance(expr, ast.Call) else expr.value
    return expr.id if isinstance(expr, ast.Name) else None


def _looks_up_attributes(ctx) -> bool:
    """Does the module call ``getattr`` or ``vars`` on an object (see ``_strings``)?"""
    return ctx.flow.cache.get(("attribute-lookups",), True)


def is_hook(scope: Scope, ctx) -> bool:
    """Framework code that already runs with grad off and in eval mode: a hook
    of a class that derives from the framework's class, or a function handed
    to evaluation machinery."""
    fn = scope.function
    while fn is not None:
        if fn.name in ctx.flow.framework_callbacks:
            return True
        if fn.name in _HOOKS and fn.class_name is not None and framework_class(ctx, fn.class_name):
            return True
        fn = fn.parent
    return False


def is_pytest_test(scope: Scope, ctx) -> bool:
    """Code in test files: grad mode of a unit test's forward pass is moot."""
    return is_test_file(ctx.filename, ctx.flow.test_framework)


# --- calls of the module's own functions ---------------------------------------


def _nested_defs(ctx) -> Dict[str, List[Scope]]:
    """Nested functions by name (closures of another function)."""

    def build() -> Dict[str, List[Scope]]:
        out: Dict[str, List[Scope]] = {}
        for scope in ctx.flow.all_scopes:
            fn = scope.function
            if fn is not None and fn.key is None and fn.parent is not None:
                out.setdefault(fn.name, []).append(scope)
        return out

    return _memo(ctx, ("nested",), build, {})


def scope_of(ctx, fn: FunctionInfo) -> Optional[Scope]:
    """The scope of ``fn``'s body (one lookup table per module, as for
    ``_nested_defs``)."""
    found = _memo(ctx, ("scope-of",), lambda: {
        id(s.function): s for s in ctx.flow.all_scopes if s.function is not None
    }, {})
    return found.get(id(fn))


def _within(fn: Optional[FunctionInfo], outer: Optional[FunctionInfo]) -> bool:
    while fn is not None:
        if fn is outer:
            return True
        fn = fn.parent
    return False


def callees(ctx, scope: Scope, key: Tuple[str, ...]) -> List[Scope]:
    """The scopes a call with ``key`` made in ``scope`` reaches: the module's
    functions and methods, and closures of an enclosing function (siblings
    calling each other, whatever order they are defined in)."""
    if key[0] == "function" and scope.function is not None:
        nested = _nested_defs(ctx).get(key[1])
        if nested:
            found = [s for s in nested if _within(scope.function, s.function.parent)]  # type: ignore[union-attr]
            if found:
                return found
    return ctx.scopes_of(key)


def _owner(scope_or_loop) -> Scope:
    return scope_or_loop.scope if isinstance(scope_or_loop, Loop) else scope_or_loop


def trains(ctx, scope_or_loop) -> bool:
    """Does the loop (or function) run a training step, directly or through a
    module-local function it calls, or a project function of another module
    (a method of a base class there) whose own body runs one, or through a
    call it hands such a function to?  A call of a
    module-local function named like a training step
    (``self.train_step(batch)``) counts by its body."""
    owner = _owner(scope_or_loop)
    if scope_or_loop.training_step and not _steps_by_name_only(ctx, owner, scope_or_loop.step_seqs):
        return True
    elsewhere = []
    for _, key in scope_or_loop.local_calls:
        found = callees(ctx, owner, key)
        if not found:
            elsewhere.append(key)
        for scope in found:
            if scope is not owner and _trains_once(ctx, scope):
                return True
    for _, key in getattr(scope_or_loop, "typed_calls", ()):
        found = callees(ctx, owner, key)
        if not found:
            # ``wrapper = ModelWrapper(...)`` imported from another module of the project
            elsewhere.append(("instance", *key[1:]))
        for scope in found:
            if scope is not owner and _trains_once(ctx, scope):
                return True  # ``trainer.train(batch)``: the module's class runs the step
    # ``deepfool.deepfool(image, net)``: a function of an imported project module
    # (kept for loops; a function's are those of its loops)
    imported = getattr(scope_or_loop, "imported_calls", None)
    if imported is None:
        imported = [c for loop in ctx.flow.loops if loop.scope is scope_or_loop for c in loop.imported_calls]
    elsewhere += [("function", call.key) for call in imported if call.key.count(".") == 1]
    # last, as they may load the project index: a function imported from
    # another module, or a method of a base class there; then a call handed
    # a function that runs the step (``do_epoch(loader, do_trainbatch)``)
    if any(ctx.trains_elsewhere(key) for key in elsewhere):
        return True
    handed = [ctx.flow.nodes.get(seq) for seq, _ in scope_or_loop.local_calls] + [c.node for c in imported]
    return any(node is not None and _hands_a_step(ctx, owner, node) for node in handed)


def _trains_once(ctx, scope: Scope) -> bool:
    """``trains`` of a callee, asked once per function (False while it is
    being asked: a recursive call trains no more than its body does)."""
    return _memo(ctx, ("trains", id(scope)), lambda: trains(ctx, scope), False)


def _hands_a_step(ctx, owner: Scope, node: ast.Call) -> bool:
    """Is a function that runs a training step (module-local, or imported
    from another module of the project) an argument of the call ``node``?"""
    for arg in (*node.args, *(k.value for k in node.keywords)):
        if arg.__class__ is not ast.Name:
            continue
        key = ("function", arg.id)  # type: ignore[attr-defined]
        found = callees(ctx, owner, key)
        if any(s is not owner and _trains_once(ctx, s) for s in found):
            return True
        if not found and ctx.trains_elsewhere(key):
            return True
    return False


def _steps_by_name_only(ctx, scope: Scope, seqs: List[int]) -> bool:
    """Every training step among ``seqs`` is a call of a module-local function
    named like one (judged by its body instead)."""
    if not seqs:
        return False
    keys = dict(scope.local_calls)
    for seq in seqs:
        key = keys.get(seq)
        if key is None or key[-1] not in TRAINING_STEP_NAMES or not callees(ctx, scope, key):
            return False
    return True


def entry_grad(ctx, fn: FunctionInfo) -> Grad:
    """The grad state ``fn``'s body starts in: its decorators, else its callers
    (a closure's are the calls Python's scoping sends to it, attached by
    ``Context.finish``)."""
    return resolve_function(fn)


#: Methods that run a model's forward by another name (``model.generate(...)``);
#: the engine records them as calls of the model.
FORWARD_METHODS = frozenset({"generate", "sample", "beam_search", "greedy_search", "greedy_decode"})


def grad_owned(ctx, call: ModelCall) -> bool:
    """``model.generate(...)`` sets its own grad mode unless a model class of
    this module defines that method without a grad-disabling decorator or a
    ``no_grad`` block around each forward in its body (libraries' ``generate``
    methods disable grad themselves); so does a
    library pipeline (``DiffusionPipeline.from_pretrained(...)``,
    ``transformers.pipeline(...)``), whose ``__call__`` disables grad."""
    if is_pipeline(ctx, call.key):
        return True
    func = call.node.func
    if not isinstance(func, ast.Attribute) or func.attr not in FORWARD_METHODS:
        return False

    def owned() -> bool:
        for key, found in ctx.functions.items():
            if key[0] != "method" or key[-1] != func.attr or not is_module_class(ctx, key[1]):
                continue
            if all(i.entry is Grad.DISABLED for i in found):
                continue
            # ``with torch.no_grad():`` around every forward in the method's body
            calls = [c for s in ctx.scopes_of(key) for c in s.model_calls if is_model_call(ctx, c)]
            if not calls or any(c.state is not Grad.DISABLED for c in calls):
                return False
        return True

    return _memo(ctx, ("owned", func.attr), owned, True)


def switches_itself_to_eval(ctx, call: ModelCall) -> bool:
    """``model.generate(...)`` where every class defining ``generate`` (in this
    module, else in the project) switches ``self`` to eval mode in that
    method: the call leaves evaluation mode to the model's own code."""
    func = call.node.func
    if not isinstance(func, ast.Attribute) or func.attr == "forward" or dotted(func.value) != call.key:
        return False
    name = func.attr
    keys = ctx.flow.switch_keys
    annotated = _annotation(call)  # ``def gen(model: WaveRNN)``: that class's method
    classes = [annotated] if annotated is not None and "." not in annotated else None
    scopes = [
        s for k in ctx.functions if k[0] == "method" and k[-1] == name and (classes is None or k[1] in classes)
        for s in ctx.scopes_of(k)
    ]
    if scopes:
        return all(any(keys.get(seq) == "self" for seq in s.eval_switches) for s in scopes)
    return ctx.method_switches_self_to_eval(name, annotated) is True


def _annotation(call: ModelCall) -> Optional[str]:
    """The class a parameter called as the model is annotated with, as written."""
    function = call.function
    if function is None or "." in call.key:
        return None
    args = function.node.args
    for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs]:
        if arg.arg == call.key and arg.annotation is not None:
            return dotted(arg.annotation)
    return None


def is_pipeline(ctx, key: str, annotated: bool = False) -> bool:
    """Is ``key`` a name the module binds to a library pipeline (see
    ``_pipelines``)?  With ``annotated``, also a name annotated with a class
    named ``...Pipeline`` in a module that imports ``diffusers`` (``self.model:
    DepthPipeline = model``): a project's subclass, whose ``__call__`` may not
    disable grad, but whose parts are the library's models."""
    if key in _memo(ctx, ("pipelines",), lambda: _pipelines(ctx), frozenset()):
        return True
    return annotated and key in _memo(ctx, ("annotated-pipelines",), lambda: _annotated_pipelines(ctx), frozenset())


def _pipelines(ctx) -> FrozenSet[str]:
    """Names the module binds to a library pipeline: the result of a
    ``diffusers`` ``...Pipeline`` class or its ``from_pretrained``, of
    ``transformers.pipeline(...)``, or of an Ultralytics model class
    (``YOLO("yolov8n.pt")``, whose call predicts under inference mode), and
    the same name moved: ``pipe = pipe.to(device)``."""
    if not (ctx.imports.imports_from(("diffusers", "transformers")) or ctx.imports.imports_any(_ULTRALYTICS_MODELS)):
        return frozenset()
    found: Set[str] = set()
    for node in ast.walk(ctx.tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and loads_pipeline(ctx, node.value):
            found.update(name for name in (dotted(t) for t in node.targets) if name)
    return frozenset(found)


def loads_pipeline(ctx, call: ast.Call, diffusers_only: bool = False) -> bool:
    """Does ``call`` make a library pipeline: a ``diffusers`` ``...Pipeline``
    class or its ``from_pretrained``, or (unless ``diffusers_only``)
    ``transformers.pipeline(...)`` or an Ultralytics model (``YOLO(...)``)?"""
    func = call.func
    if isinstance(func, ast.Attribute) and func.attr == "from_pretrained":
        func = func.value
    qual = ctx.imports.resolve(func) or ""
    if qual.startswith("diffusers.") and "Pipeline" in qual.rsplit(".", 1)[-1]:
        return True
    return not diffusers_only and (qual == "transformers.pipeline" or qual in _ULTRALYTICS_MODELS)


#: Ultralytics' model classes: calling one runs its predictor, under inference mode.
_ULTRALYTICS_MODELS = frozenset(
    f"ultralytics.{name}" for name in ("YOLO", "YOLOWorld", "YOLOE", "RTDETR", "SAM", "FastSAM", "NAS")
) | {"ultralytics"}  # (``import ultralytics``, then ``ultralytics.YOLO(...)``)


def _annotated_pipelines(ctx) -> FrozenSet[str]:
    if not ctx.imports.imports_from(("diffusers",)):
        return frozenset()
    found: Set[str] = set()
    for node in ast.walk(ctx.tree):
        if isinstance(node, (ast.AnnAssign, ast.arg)) and node.annotation is not None:
            if (dotted(node.annotation) or "").rsplit(".", 1)[-1].endswith("Pipeline"):
                name = node.arg if isinstance(node, ast.arg) else dotted(node.target)
                if name:
                    found.add(name)
    return frozenset(found)


def frozen_before(scope: Scope, call: ModelCall) -> bool:
    """Was the called model's grad switched off in ``scope`` before the call
    (so its forward builds no graph from the model's own weights)?"""
    if not scope.frozen_models:
        return False
    seq = scope.frozen_models.get(call.key)
    return seq is not None and seq < call.seq


def model_frozen(ctx, scope: Scope, call: ModelCall) -> bool:
    """Is the called model's grad off for all its parameters when it runs:
    switched off in ``scope`` before the call (``frozen_before``), built
    there from a class whose ``__init__`` freezes it, or handed over as an
    argument frozen so by every module-local caller?"""
    if frozen_before(scope, call):
        return True
    root = call.key.split(".", 1)[0].split("[", 1)[0]
    if root == "self":
        return _frozen_in_init(ctx, scope, call.key)
    return _name_frozen(ctx, scope, root, call.seq, 0)


def _frozen_in_init(ctx, scope: Scope, key: str) -> bool:
    """Did the ``__init__`` of the method's class switch grad off for the
    model of ``self.model(x)`` (``self.model.freeze()``,
    ``self.model.requires_grad_(False)``), and does no method of the class
    switch it on again (``unfreeze()``, ``requires_grad_(True)``,
    ``requires_grad = True``)?"""
    fn = scope.function
    if fn is None or fn.class_name is None or fn.name == "__init__":
        return False
    scopes = [s for s in ctx.flow.all_scopes if s.function is not None and s.function.class_name == fn.class_name]
    init = next((s for s in scopes if s.function.name == "__init__"), None)  # type: ignore[union-attr]
    if init is None or not any(key == k or key.startswith(k + ".") for k in init.frozen_models):
        return False
    return not any(
        isinstance(node, ast.Attribute)
        and (node.attr == "unfreeze" or s is not init and node.attr in ("requires_grad_", "requires_grad"))
        for s in scopes for node in ast.walk(s.function.node)  # type: ignore[union-attr]
    )


def _name_frozen(ctx, scope: Scope, name: str, seq: int, depth: int) -> bool:
    frozen = scope.frozen_models.get(name)
    if frozen is not None and frozen < seq:
        return True
    built = scope.constructed.get(name)
    if built is not None and built[0] < seq:
        return _class_freezes(ctx, built[1])
    values = scope.deps.get(name)
    if values and all(_returns_frozen(ctx, value) for value in values):
        return True  # ``enet = create_enet()``, a function of the module that freezes what it returns
    if not values and _unpacked_frozen(ctx, scope.function.node if scope.function is not None else ctx.tree, name):
        return True  # ``models, points = pre_define(...)``, the first a list of frozen models
    if values and depth < 4 and all(_item_of_frozen(ctx, scope, value, seq, depth) for value in values):
        return True  # ``model = models[k][n]`` of such lists
    if values and any(isinstance(value, ast.Name) for value in values) and all(
        isinstance(value, ast.Name) and _caches(ctx, value.id, name)
        or isinstance(unchained(value), ast.Call) and _class_freezes(ctx, unchained(value))
        for value in values
    ):
        # ``model = InceptionV3(...)``, kept as ``FID_MODEL = model`` for
        # the next call, which takes ``model = FID_MODEL``
        return True
    fn = scope.function
    if fn is None or depth >= 4:
        return False
    if name not in {a.arg for a in (*fn.node.args.args, *fn.node.args.kwonlyargs)}:
        if not values and _iterated_frozen(ctx, scope, fn, name, seq, depth):
            return True  # ``for model in models:`` of a list of frozen models
        if name in scope.deps:
            return False  # bound here: not the enclosing function's or the module's
        if fn.parent is not None:
            # a closure's free variable: frozen by the enclosing function
            # before it defined the closure (``model.requires_grad_(False)``,
            # then ``def decode(x): return model.decoder(x)``)
            parent = scope_of(ctx, fn.parent)
            frozen = parent.frozen_models.get(name) if parent is not None else None
            return frozen is not None and frozen < _definition_seq(ctx, fn)
        return _global_frozen(ctx, fn, name, depth)
    sites = call_sites(ctx, fn)
    if not sites or fn.escaped:
        return False
    for caller, site_seq in sites:
        node = ctx.flow.nodes.get(site_seq)
        if not isinstance(node, ast.Call):
            return False
        arg = next((value for param, value, _ in bound_arguments(fn, node) if param == name), None)
        if not isinstance(arg, ast.Name) or not _name_frozen(ctx, caller, arg.id, site_seq, depth + 1):
            return False
    return True


def _item_of_frozen(ctx, scope: Scope, value: ast.expr, seq: int, depth: int) -> bool:
    """Is ``value`` an item of a name that holds frozen models
    (``models[k][n]``)?"""
    if not isinstance(value, ast.Subscript):
        return False
    while isinstance(value, ast.Subscript):
        value = value.value
    return isinstance(value, ast.Name) and _name_frozen(ctx, scope, value.id, seq, depth + 1)


def _iterated_frozen(ctx, scope: Scope, fn: FunctionInfo, name: str, seq: int, depth: int) -> bool:
    """Is every binding of ``name`` in ``fn`` the target of a ``for`` over a
    name that holds frozen models (``for model in models:``, ``models``
    made by a function of the module that freezes each one it appends)?"""
    nodes = list(own_nodes(fn.node))
    targets = [n for n in nodes if isinstance(n, ast.For) and isinstance(n.target, ast.Name) and n.target.id == name]
    return bool(targets) and _bindings(nodes, name) == len(targets) and all(
        isinstance(loop.iter, ast.Name) and _name_frozen(ctx, scope, loop.iter.id, seq, depth + 1) for loop in targets
    )


def _caches(ctx, glob: str, name: str) -> bool:
    """Is the module global ``glob`` bound only to what ``name`` holds
    (``FID_MODEL = model``, in a function declaring it ``global``) or to
    ``None``, anywhere in the module?"""
    def only_name() -> bool:
        found = False
        for node in ast.walk(ctx.tree):
            if isinstance(node, (ast.AugAssign, ast.AnnAssign)) and isinstance(node.target, ast.Name) \
                    and node.target.id == glob:
                return False
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == glob for target in node.targets for t in ast.walk(target)
            ):
                if len(node.targets) != 1 or not isinstance(node.targets[0], ast.Name):
                    return False
                if isinstance(node.value, ast.Name) and node.value.id == name:
                    found = True
                elif not is_const(node.value, None):
                    return False
        return found
    return ctx.tree is not None and _memo(ctx, ("caches", glob, name), only_name, False)


def _returns_frozen(ctx, value: ast.expr, index: Optional[int] = None) -> bool:
    """Is ``value`` a call of a function of the module whose every return
    gives a model it froze (``for p in enet.parameters(): p.requires_grad =
    False``, then ``return enet``), or a list of them?  With ``index``, the
    item at that place of the tuple it returns (``return models, points``)."""
    if not isinstance(value, ast.Call):
        return False
    key = ctx.call_key(value.func)
    scopes = ctx.scopes_of(key) if key is not None else []
    if len(scopes) != 1 or not scopes[0].return_values:
        return False
    for r in scopes[0].return_values:
        if index is not None:
            if not isinstance(r, ast.Tuple) or len(r.elts) <= index or any(
                isinstance(e, ast.Starred) for e in r.elts
            ):
                return False
            r = r.elts[index]
        if not (isinstance(r, ast.Name) and _frozen_or_only_frozen(scopes[0], r.id, 0)):
            return False
    return True


def _unpacked_frozen(ctx, code: Optional[ast.AST], name: str) -> bool:
    """Is every binding of ``name`` in ``code`` (a function, or the module's
    top level) an item of a tuple a call returns that ``_returns_frozen``
    holds for (``models, points = pre_define(...)``)?"""
    if code is None:
        return False
    nodes = list(own_nodes(code))
    unpacked = 0
    for node in nodes:
        if not isinstance(node, ast.Assign) or len(node.targets) != 1:
            continue
        target = node.targets[0]
        if isinstance(target, ast.Tuple) and any(isinstance(e, ast.Name) and e.id == name for e in target.elts):
            at = next(i for i, e in enumerate(target.elts) if isinstance(e, ast.Name) and e.id == name)
            if any(isinstance(e, ast.Starred) for e in target.elts) or not _returns_frozen(ctx, node.value, at):
                return False
            unpacked += 1
    # (a ``for`` target, ``with ... as``: bound otherwise too)
    return unpacked > 0 and unpacked == _bindings(nodes, name)


def _bindings(nodes: List[ast.AST], name: str) -> int:
    """How many of ``nodes`` bind (or delete) the name ``name``."""
    return sum(1 for n in nodes if n.__class__ is ast.Name and n.id == name  # type: ignore[attr-defined]
               and not isinstance(n.ctx, ast.Load))  # type: ignore[attr-defined]


def _frozen_or_only_frozen(scope: Scope, name: str, depth: int) -> bool:
    """Is ``name`` a model ``scope``'s function froze, or a list it makes
    empty and fills only with such models, or with such lists
    (``models = []``, then ``models.append(model)`` after ``for p in
    model.parameters(): p.requires_grad = False``)?"""
    if name in scope.frozen_models:
        return True
    fn = scope.function
    if fn is None or depth >= 2 or name not in scope.deps or not all(
        isinstance(v, ast.List) and not v.elts for v in scope.deps[name]
    ):
        return False
    appended = False
    for node in own_nodes(fn.node):
        if node.__class__ is ast.Attribute and isinstance(node.value, ast.Name) \
                and node.value.id == name:  # type: ignore[attr-defined]
            if node.attr != "append":  # type: ignore[attr-defined]
                return False  # ``extend``, ``insert``: filled with what is not seen here
        elif node.__class__ is ast.Call and isinstance(node.func, ast.Attribute) and node.func.attr == "append" \
                and isinstance(node.func.value, ast.Name) and node.func.value.id == name:  # type: ignore[attr-defined]
            item = node.args[0] if len(node.args) == 1 else None  # type: ignore[attr-defined]
            if not isinstance(item, ast.Name) or not _frozen_or_only_frozen(scope, item.id, depth + 1):
                return False
            appended = True
        elif node.__class__ is ast.Subscript and isinstance(node.value, ast.Name) \
                and node.value.id == name and not isinstance(node.ctx, ast.Load):  # type: ignore[attr-defined]
            return False  # ``models[0] = net`` (``models += others`` is a value of ``deps``)
    return appended


def _definition_seq(ctx, fn: FunctionInfo) -> int:
    """The sequence number of the first event of ``fn``'s body: after its
    ``def`` statement, before anything its enclosing function does later."""
    scope = scope_of(ctx, fn)
    seqs = [c.seq for c in scope.model_calls] + [seq for seq, _ in scope.local_calls] if scope is not None else []
    return min(seqs) if seqs else -1


def _global_frozen(ctx, fn: FunctionInfo, name: str, depth: int) -> bool:
    """A module global the module's top-level code froze (``for p in
    teacher.parameters(): p.detach_()``) before every call of ``fn``, or of
    the module functions that call it."""
    frozen = ctx.flow.module_scope.frozen_models.get(name)
    sites = call_sites(ctx, fn)
    if frozen is None or not sites or fn.escaped or depth >= 4:
        return False
    for caller, site_seq in sites:
        if caller.function is None:
            if site_seq < frozen:
                return False
        elif name in caller.deps or not _global_frozen(ctx, caller.function, name, depth + 1):
            return False
    return True


def _class_freezes(ctx, call: ast.Call) -> bool:
    """Does ``call`` build a class of the module or the project whose
    ``__init__`` freezes all its parameters (and not told otherwise)?"""
    written = dotted(call.func)
    if written is None:
        return False
    node = local_classes(ctx).get(written)
    freeze = init_freeze(node) if node is not None else ctx.class_freeze(written)
    return freezes(freeze, call)


def local_classes(ctx) -> Dict[str, ast.ClassDef]:
    """The module's top-level classes by name (one table per module)."""
    return _memo(ctx, ("class-nodes",), lambda: {
        n.name: n for n in ctx.tree.body if isinstance(n, ast.ClassDef)
    } if ctx.tree is not None else {}, {})


def module_functions(ctx) -> FrozenSet[str]:
    """The names of the module's top-level functions (one set per module)."""
    return _memo(ctx, ("module-functions",), lambda: frozenset(module_function_nodes(ctx)), frozenset())


def module_function_nodes(ctx) -> Dict[str, ast.AST]:
    """The module's top-level functions by name, the first ``def`` of a
    name (one table per module, the twin of ``local_classes``)."""
    def table() -> Dict[str, ast.AST]:
        found: Dict[str, ast.AST] = {}
        for n in getattr(ctx.tree, "body", ()):
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.setdefault(n.name, n)
        return found
    return _memo(ctx, ("function-nodes",), table, {})


def attribute_values(ctx, klass: str) -> Dict[str, list]:
    """``facts.attribute_values`` of the module's class ``klass`` (one table per class)."""
    return _memo(ctx, ("attribute-values", klass), lambda: _attribute_values(ctx.tree, klass), {})


def built_before(ctx, call: ModelCall, name: str) -> Optional[ast.Call]:
    """The constructor call that bound ``name`` in the model call's function
    (or at module level) before the call (``model = Ranker()``), if any."""
    scope = scope_of(ctx, call.function) if call.function is not None else ctx.flow.module_scope
    built = scope.constructed.get(name) if scope is not None else None
    return built[1] if built is not None and built[0] < call.seq else None


def built_once_before(scope: Scope, name: str, seq: int) -> Optional[ast.Call]:
    """The constructor call ``scope`` bound ``name`` to, when that is its only
    binding there (besides moving it: ``net = net.to(device)``, or a
    ``None`` it starts as when optional: ``head = None``, then ``if ...:
    head = Head(d)``) and comes before ``seq`` (``net = UNet(...)``, then
    ``predict(net, img)``); None otherwise."""
    values = scope.deps.get(name, ())
    if len(values) != 1 and sum(not _moved(value, name) and not is_const(value, None) for value in values) != 1:
        return None
    built = scope.constructed.get(name)
    return built[1] if built is not None and built[0] <= seq else None


def handed_to(ctx, fn, param: str, depth: int = 0) -> Optional[List[ast.Call]]:
    """The class calls that bound what every call of the module-level
    function ``fn`` hands its parameter ``param``: the module calls it, each
    time with a name its caller bound once, before, to such a call (``model
    = CapsNet(opt)``), or with a parameter of its own that the caller's
    callers hand on so, up to three calls up (``evaluate(encoder, ...)``
    inside ``calculate_wer(encoder, decoder)``: a caller nothing calls hands
    nothing); and no other module of the project calls it.  None otherwise."""
    if depth > 2 or fn.key != ("function", fn.name) or fn.escaped or fn.by_name:
        return None
    if param not in {a.arg for a in all_params(fn.node.args)}:
        return None
    sites = call_sites(ctx, fn)
    if (not sites and not depth) or ctx.call_shapes_elsewhere(fn) != []:
        return None
    found: List[ast.Call] = []
    for scope, seq in sites:
        node = ctx.flow.nodes.get(seq)
        if not isinstance(node, ast.Call):
            return None
        value = next((v for name, v, _ in bound_arguments(fn, node) if name == param), None)
        if not isinstance(value, ast.Name):
            return None
        built = built_once_before(scope, value.id, seq)
        if built is not None:
            found.append(built)
            continue
        caller = scope.function
        if caller is None or caller is fn or value.id in scope.deps or value.id in scope.constructed:
            return None  # not a parameter handed on as it came
        if caller.parent is None and value.id not in {a.arg for a in all_params(caller.node.args)}:
            # a module global the caller reads (``evaluate(encoder1, ...)`` in
            # ``evaluateAndShowAttention``), bound once at the top of the module
            built = built_once_before(ctx.flow.module_scope, value.id, sys.maxsize)
            if built is None:
                return None
            found.append(built)
            continue
        upward = handed_to(ctx, caller, value.id, depth + 1)
        if upward is None:
            return None
        found.extend(upward)
    return found


def handed_builds(ctx, call: ModelCall) -> List[ast.Call]:
    """For a model that is a parameter of a module-level function
    (``def train(opt, loader, model)``): the class calls that bound what
    each call of it hands over (see ``handed_to``).  Empty when some call
    hands anything else, and without a project index."""
    fn = call.function
    if fn is None or "." in call.key or "[" in call.key:
        return []
    return handed_to(ctx, fn, call.key) or []


#: Methods that return the module they are called on, in the same mode.
_MOVING_METHODS = SAME_MODULE_METHODS - {"train", "eval", "requires_grad_"}


def _moved(value: ast.expr, name: str) -> bool:
    """``net.to(device)`` for ``name`` ``net``: the same module, moved (or
    wrapped whole: see ``wraps_whole``)."""
    if value is None or value.__class__ is not ast.Call:
        return False
    if wraps_whole(value, name):  # type: ignore[arg-type]
        return True
    base = unchained(value, _MOVING_METHODS)
    return base is not value and base.__class__ is ast.Name and base.id == name  # type: ignore[attr-defined]


#: Wrappers that run the module they are handed whole, in its mode.
_PARALLEL_WRAPPERS = frozenset({"DataParallel", "DistributedDataParallel", "DDP"})


def wraps_whole(value: ast.Call, name: str) -> bool:
    """``DDP(model, device_ids=[rank])`` for ``name`` ``model``: the same
    model, wrapped for parallel training (its mode and layers are the
    wrapped model's)."""
    args = value.args
    return bool(args) and args[0].__class__ is ast.Name and args[0].id == name \
        and last_name(value.func) in _PARALLEL_WRAPPERS  # type: ignore[attr-defined]


def built_at_module_level(ctx, call: ModelCall, name: str) -> Optional[ast.Call]:
    """The constructor call that bound the module global ``name`` (``net =
    FeatureNet()`` at the top of a script), when the call's function binds
    no ``name`` of its own."""
    fn: Optional[FunctionInfo] = call.function
    if fn is None:
        return None
    while fn is not None:  # the function and those it is nested in bind no such name
        scope = scope_of(ctx, fn)
        if scope is None or name in scope.deps or name in scope.constructed or any(
            a.arg == name for a in all_params(fn.node.args)  # type: ignore[union-attr]
        ):
            return None
        fn = fn.parent
    built = ctx.flow.module_scope.constructed.get(name)
    return built[1] if built is not None else None


def built_parameter_free(ctx, call: ModelCall, layers: FrozenSet[str] = PARAMETER_FREE_LAYERS) -> bool:
    """Is the call's model a name its function (or the module) binds only to
    instances of module classes of the project that hold no parameter (see
    ``facts.parameter_free``: bins kept as buffers, or nothing but settings),
    or of ``torch.nn`` ``layers`` (by default those without parameters:
    ``nn.CosineSimilarity(dim=1)``), at least once?  Its output then needs
    grad only through its input."""
    name = call.key.split(".", 1)[0].split("[", 1)[0]
    if name == "self" and call.key.count(".") == 1 and call.class_name is not None:
        values = _memo(ctx, ("self-values", call.class_name, call.key),
                       lambda: _self_values(ctx, call.class_name, call.key[5:]), [])  # type: ignore[arg-type]
    else:
        scope = scope_of(ctx, call.function) if call.function is not None else ctx.flow.module_scope
        values = scope.deps.get(name, []) if scope is not None else []
    if not values:
        return False
    local = local_classes(ctx)
    built = False
    for value in values:
        value = unchained(value)  # ``RunningMeanStd(shape).to(device)``
        if isinstance(value, ast.Name) and value.id == name:
            continue  # ``cos = cos.cuda()``: the same module, moved
        written = dotted(value.func) if isinstance(value, ast.Call) else None
        if written is None:
            return False
        if written in local:
            if not parameter_free(local[written], local, stateless=True):
                return False
        elif (ctx.imports.resolve(value.func) or "").startswith("torch.nn."):
            # ``cos = nn.CosineSimilarity(dim=1)``: a layer without parameters
            if written.rpartition(".")[2] not in layers:
                return False
        elif not _memo(ctx, ("parameter-free", written), lambda w=written: ctx.parameter_free_class(w), False):
            return False
        built = True
    return built


def _self_values(ctx, class_name: str, attr: str) -> List[ast.expr]:
    """What the methods of the class, and of the module's classes it derives
    from or that derive from it, assign to ``self.<attr>``, moves left out
    (``RunningMeanStd(shape).to(device)`` is ``RunningMeanStd(shape)``);
    empty when one of them assigns it otherwise (a tuple, an augmented
    assignment)."""
    family = class_family(local_classes(ctx), class_name)
    values: List[ast.expr] = []
    for scope in ctx.flow.all_scopes:
        if scope.class_name not in family or scope.function is None:
            continue
        for node in ast.walk(scope.function.node):
            targets = node.targets if isinstance(node, ast.Assign) else (
                [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else [])
            for target in targets:
                if dotted(target) == "self." + attr:
                    if not isinstance(node, ast.Assign) or len(node.targets) != 1:
                        return []
                    values.append(unchained(node.value))
                elif isinstance(target, (ast.Tuple, ast.List)) and any(
                    dotted(e) == "self." + attr for e in target.elts
                ):
                    return []
    return values


def model_needs_grad(ctx, calls: List[ModelCall]) -> bool:
    """May a model these calls run need grad to run at all?  Yes when one
    of them is not built in its function from a ``torch`` class and the
    module defines or names (imports, calls) a model class, of the module or
    the project, one of whose methods calls ``autograd.grad`` (see
    ``facts.asks_autograd``): the model may be one of those."""
    local = local_classes(ctx)
    for call in calls:
        name = call.key.split(".", 1)[0].split("[", 1)[0]
        built = built_before(ctx, call, name) or built_at_module_level(ctx, call, name)
        if built is not None and (ctx.imports.resolve(built.func) or "").startswith("torch."):
            continue
        written = dotted(built.func) if built is not None else None
        adapting = _memo(ctx, ("adapting",), lambda: adapting_functions(ctx.tree), frozenset())
        if written in local and not asks_autograd(local[written], adapting):  # type: ignore[operator]
            continue  # ``net = FeatureNet()``, a class of the module that asks for no gradient itself
        return _memo(ctx, ("asks-autograd-anywhere",), lambda: any(
            asks_autograd(n, adapting) for n in local.values()
        ) or ctx.names_class_asking_autograd() or ctx.forward_asks_autograd(), False)
    return False


def call_with_grad(ctx, call: ModelCall) -> bool:
    """Does this model call run with grad enabled (see ``with_grad``)?"""
    return with_grad(ctx, call.state, call.function) and not grad_owned(ctx, call)


def with_grad(ctx, state: Grad, function: Optional[FunctionInfo]) -> bool:
    """Does code recorded with ``state`` in ``function`` run with grad enabled
    (or maybe, through callers this module does not show)?  Grad enabled
    explicitly inside a function (``with torch.enable_grad():``) is meant."""
    if state is Grad.ENABLED:
        return function is None
    if state is Grad.INHERITED:
        if function is None:
            return True
        if ctx.flow.grad_off_by_hand:
            return False  # whether a function runs before or after that switch is not visible
        return entry_grad(ctx, function) in (Grad.ENABLED, Grad.INHERITED) and not _decorated_later(ctx, function)
    return False


def _decorated_later(ctx, fn: FunctionInfo) -> bool:
    """``evaluate = torch.no_grad()(evaluate)``: the module (or, for a closure,
    the enclosing function) wraps the function in a grad-disabling decorator
    after defining it."""
    where = fn.parent.node if fn.parent is not None else ctx.tree
    return fn.name in _memo(ctx, ("wrapped", id(where)), lambda: _wrapped_names(ctx, where), frozenset())


def _wrapped_names(ctx, where: Optional[ast.AST]) -> FrozenSet[str]:
    out: Set[str] = set()
    for node in getattr(where, "body", ()):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            wrapper = node.value.func
            arg = node.value.args[0] if len(node.value.args) == 1 else None
            if (
                isinstance(arg, ast.Name)
                and ctx.grad.effect(ctx.imports, wrapper) is Grad.DISABLED
                and any(isinstance(t, ast.Name) and t.id == arg.id for t in node.targets)
            ):
                out.add(arg.id)
    return frozenset(out)


class PathCall:
    """A loop's call of a module-local function (method, sibling closure) whose
    body runs a model: the grad state and mode are those at the call."""

    __slots__ = ("seq", "name", "callee", "model_call", "inherits", "state")

    def __init__(self, seq: int, name: str, callee: Scope, model_call: ModelCall, inherits: bool, state: Grad) -> None:
        self.seq = seq
        self.name = name
        self.callee = callee
        self.model_call = model_call
        #: the model call runs with the caller's grad state
        self.inherits = inherits
        self.state = state


def _reaches_model(ctx, scope: Scope, depth: int = 0) -> Optional[Tuple[ModelCall, bool]]:
    """The model call ``scope`` runs (through up to two more module-local
    calls), and whether it runs in the grad state of ``scope``'s caller."""
    if in_module_method(ctx, scope):
        return None  # a model's own forward is the model call, seen at its caller
    first: Optional[Tuple[ModelCall, bool]] = None
    # A function that runs a model both ways, as called and under its own
    # ``no_grad`` (``if model.training: ... else: with torch.no_grad(): ...``),
    # chooses the grad mode itself.
    disabled = {c.key for c in scope.model_calls if c.state is Grad.DISABLED}
    for call in scope.model_calls:
        if is_model_call(ctx, call):
            inherits = call.state is Grad.INHERITED and not grad_owned(ctx, call) and call.key not in disabled
            if inherits:
                return call, True
            first = first or (call, False)
    if depth >= 2:
        return first
    states = ctx.flow.call_states
    for seq, key in scope.local_calls:
        for callee in callees(ctx, scope, key):
            if callee is scope:
                continue
            found = _memo(ctx, ("reach", id(callee)), lambda c=callee: _reaches_model(ctx, c, depth + 1), None)
            if found is not None:
                inherits = found[1] and states.get(seq) is Grad.INHERITED
                if inherits:
                    return found[0], True
                first = first or (found[0], False)
    return first


def path_calls(ctx, loop: Loop) -> List[PathCall]:
    """Calls in ``loop`` of the module's functions that run a model."""
    out = []
    states = ctx.flow.call_states
    for seq, key in loop.local_calls:
        for callee in callees(ctx, loop.scope, key):
            if callee is loop.scope:
                continue
            found = _memo(ctx, ("reach", id(callee)), lambda c=callee: _reaches_model(ctx, c), None)
            if found is not None:
                state = states.get(seq, Grad.INHERITED)
                out.append(PathCall(seq, key[-1], callee, found[0], found[1], state))
                break
    return out


# --- what the code shows about intent ---------------------------------------------

#: Function-name words of decoding and search loops (``greedy_decode``).
_DECODE_WORDS = frozenset({"decode", "decoding", "beam", "greedy", "translate", "translation"})


def evaluation_intent(ctx, loop: Loop, nodes: Optional[List[ast.Call]] = None) -> Optional[str]:
    """Why this loop looks like evaluation: 'data', 'function', 'eval-mode' or
    'evidence' (its outputs are stripped of their graph, in code that trains
    nothing); ``nodes`` are the loop's calls that run a model."""
    settings = ctx.settings
    if says_eval_data(loop.iter_tokens, settings.eval_names):
        return "data"
    fn = loop.scope.function
    if fn is not None and says_eval_function(fn.name, settings.eval_names):
        words = {t for t in tokens(fn.name) if t in EVAL_FUNCTION_WORDS or t in settings.eval_names}
        # ``def test():`` looping over range(...) is a smoke check, not a test-set pass
        if not (words <= {"test", "testing"} and loop.counts):
            return "function"
    if fn is not None and any(t in _DECODE_WORDS for t in tokens(fn.name)):
        return "function"
    if eval_switch_before(ctx, loop.scope, loop.seq) or wrapper_class(ctx, loop.scope.class_name):
        return "eval-mode"
    if nodes and not trains(ctx, loop.scope) and not _over_model_parts(loop) and _outputs_unneeded(ctx, loop, nodes) \
            and not _in_training_mode(ctx, loop, nodes):
        return "evidence"
    if _predicts_through_helpers(ctx, loop, nodes):
        return "helper"
    return None


def _in_training_mode(ctx, loop: Loop, nodes: List[ast.Call]) -> bool:
    """Does the loop compute a loss (``loss = model(x, y)``), with its
    scope switched to training mode last before each of the loop's model
    calls (``model.train()`` at the top of each epoch)?  A training loop
    whose update is left out (commented out) for now, not an evaluation;
    unlike a pass that only refreshes batch-norm statistics, which keeps
    nothing it computes."""
    if not any(
        isinstance(node, ast.Assign) and any(
            isinstance(name, ast.Name) and loss_named(name.id) for target in node.targets for name in ast.walk(target)
        )
        for node in ast.walk(loop.node)
    ):
        return False
    seqs = {id(c.node): c.seq for c in loop.model_calls}
    return bool(nodes) and all(
        id(node) in seqs and mode_before(ctx, loop.scope, seqs[id(node)]) == "train" for node in nodes
    )


def name_tests(test: ast.expr) -> List[Tuple[str, Optional[FrozenSet[object]], bool]]:
    """The tests of one name against constants in ``test`` (each part of an
    ``and``): ``(name, values, negated)`` for ``name == "train"`` (also
    written ``"train" == name``), ``name != "test"``, ``name in ("a",
    "b")`` and ``name not in [...]``; ``(name, None, False)`` for a bare
    ``name`` (any true value passes)."""
    parts = test.values if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And) else [test]
    out: List[Tuple[str, Optional[FrozenSet[object]], bool]] = []
    for part in parts:
        if isinstance(part, ast.Name):
            out.append((part.id, None, False))
        if not (isinstance(part, ast.Compare) and len(part.ops) == 1):
            continue
        left, op, right = part.left, part.ops[0], part.comparators[0]
        if isinstance(op, (ast.Eq, ast.NotEq)) and isinstance(left, ast.Constant) and isinstance(right, ast.Name):
            left, right = right, left
        if not isinstance(left, ast.Name):
            continue
        if isinstance(op, (ast.Eq, ast.NotEq)) and isinstance(right, ast.Constant):
            out.append((left.id, frozenset({right.value}), isinstance(op, ast.NotEq)))
        elif isinstance(op, (ast.In, ast.NotIn)) and isinstance(right, (ast.Tuple, ast.List, ast.Set)) and all(
            isinstance(e, ast.Constant) for e in right.elts
        ):
            out.append((left.id, frozenset(e.value for e in right.elts), isinstance(op, ast.NotIn)))  # type: ignore
    return out


def never_holds(test: ast.expr, loops: List[ast.For]) -> bool:
    """Is ``test`` a comparison of a loop's target with constants
    (``l_name == "train"``) that none of the values the loop's literal
    sequence binds satisfies (``for loader, l_name in [(valid, "valid"),
    (test, "test")]``)?  The innermost loop that binds the name decides."""
    for name, wanted, negated in name_tests(test):
        if wanted is None:
            continue
        values = _loop_values(name, loops)
        if values is not None and all((v in wanted) == negated for v in values):
            return True
    return False


def _loop_values(name: str, loops: List[ast.For]) -> Optional[List[object]]:
    """The constants the innermost loop binding ``name`` gives it, from a
    literal list or tuple (of tuples, for ``for a, b in [...]``); None when
    not known."""
    for loop in reversed(loops):
        target, it = loop.target, loop.iter
        if isinstance(target, ast.Name):
            index = None if target.id == name else -1
        elif isinstance(target, ast.Tuple):
            names = [e.id if isinstance(e, ast.Name) else "" for e in target.elts]
            index = names.index(name) if name in names else -1
        else:
            return None  # ``for x.y in ...``: not followed
        if index == -1:
            continue
        if not isinstance(it, (ast.List, ast.Tuple)) or not it.elts:
            return None
        out: List[object] = []
        for element in it.elts:
            if index is not None:
                if not isinstance(element, (ast.Tuple, ast.List)) or len(element.elts) <= index:
                    return None
                element = element.elts[index]
            if not isinstance(element, ast.Constant):
                return None
            out.append(element.value)
        return out
    return None


def dead_branch_nodes(ctx, scope: Scope) -> FrozenSet[int]:
    """The ids of the nodes of ``scope``'s code inside an ``if`` body whose
    test the enclosing loops' literal values never pass (see
    ``never_holds``): ``for name, loader in [("valid", v), ("test", t)]:``
    then ``if name == "train": optimizer.step()`` never steps."""
    fn = scope.function
    root = fn.node if fn is not None else ctx.tree
    return _memo(ctx, ("dead-branches", id(root)), lambda: _dead_branch_nodes(root), frozenset())


def _dead_branch_nodes(root: Optional[ast.AST]) -> FrozenSet[int]:
    dead: Set[int] = set()
    loops: List[ast.For] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)) and node is not root:
            return  # another scope
        if isinstance(node, ast.If) and loops and never_holds(node.test, loops):
            dead.update(id(n) for stmt in node.body for n in ast.walk(stmt))
            for stmt in node.orelse:
                visit(stmt)
            return
        if isinstance(node, ast.For):
            visit(node.iter)
            loops.append(node)
            for stmt in node.body:
                visit(stmt)
            loops.pop()
            for stmt in node.orelse:
                visit(stmt)
            return
        for child in ast.iter_child_nodes(node):
            visit(child)

    if root is not None:
        visit(root)
    return frozenset(dead)


#: methods that iterate a model's layers
PART_ITERATORS = frozenset({"children", "modules", "named_children", "named_modules"})
_ITERATION_WRAPPERS = frozenset({"enumerate", "list", "zip", "reversed"})


def _over_model_parts(loop: Loop) -> bool:
    """Does the loop iterate a model's layers (``for layer in
    cnn.children():``, also through ``enumerate``/``list``/``zip``)?  A
    model it runs with detached outputs there is being built or probed
    layer by layer (the style-transfer tutorial's targets), not evaluated
    on data."""
    node = loop.node
    it = node.iter if isinstance(node, (ast.For, ast.AsyncFor)) else None
    while isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id in _ITERATION_WRAPPERS:
        it = it.args[0] if it.args else None
    return isinstance(it, ast.Call) and isinstance(it.func, ast.Attribute) and it.func.attr in PART_ITERATORS


def _predicts_through_helpers(ctx, loop: Loop, nodes: Optional[List[ast.Call]]) -> bool:
    """The loop runs its models only through module-local functions named
    like inference or evaluation (``predict_img(net, img)``) that each turn
    grad off around the model themselves: the helper says what the loop does."""
    if not nodes or not loop.local_calls:
        return False
    paths = path_calls(ctx, loop)
    if not paths or len(paths) != len(nodes):
        return False
    eval_names = ctx.settings.eval_names
    return all(
        p.model_call.state is Grad.DISABLED
        and p.callee.function is not None
        and (says_inference_function(p.callee.function.name) or says_eval_function(p.callee.function.name, eval_names))
        for p in paths
    )


def _outputs_unneeded(ctx, loop: Loop, nodes: List[ast.Call]) -> bool:
    """Every model output of the loop is stripped of its graph, or (in a loop
    over data, for a call surely of a model) never read."""
    strong = {id(c.node) for c in loop.model_calls if _surely_model(ctx, loop.scope, c)}
    for node in nodes:
        fate = output_fate(ctx, loop, node)
        if fate == "discarded" and (loop.counts or id(node) not in strong):
            return False
        if fate == "used":
            return False
    return True


def _surely_model(ctx, scope: Scope, call: ModelCall) -> bool:
    """``model``, ``self.net``, ``quantized_model``, or a model built in the
    function: not any module (an observer) nor any attribute named like one."""
    key = call.key
    owner = key.rpartition(".")[0]
    if key.split(".", 1)[0] in scope.built_models:
        return True
    return owner in ("", "self") and is_model_name(key, ctx.settings.model_names)


def wrapper_class(ctx, name: Optional[str]) -> bool:
    """A plain class (not an ``nn.Module``) that puts its model in eval mode
    in ``__init__`` and trains nothing: a predictor."""
    if name is None or name not in ctx.flow.class_init_eval or is_module_class(ctx, name):
        return False
    return not class_trains(ctx, name)


def built_in_eval_mode(ctx, scope: Scope, name: str) -> bool:
    """Is ``name`` bound in ``scope`` to an instance of a class of the module
    whose ``__init__`` switches the models it holds to eval mode (``for m in
    self.models: m.eval()``) and that nothing trains, when the class switches
    itself, or builds no module of its own beside those (a ``self.<attr> =
    Layer(...)`` not switched) and reads no mode-dependent layer in its other
    methods?  An ensemble of loaded folds, built ready for inference."""
    built = scope.constructed.get(name)
    written = dotted(built[1].func) if built is not None else None
    owners = ctx.flow.class_init_eval.get(written or "")
    node = local_classes(ctx).get(written or "") if owners else None
    if node is None or class_trains(ctx, written):  # type: ignore[arg-type]
        return False
    if "self" in owners or "" in owners:
        return True
    for method in node.body:
        if not isinstance(method, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if method.name != "__init__":
            if any(word in n.lower() for n in _words(method) for word in _MODE_LAYER_WORDS):
                return False  # ``F.dropout(x, training=self.training)``
            continue
        for stmt in ast.walk(method):
            if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Call) and any(
                isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self"
                and t.attr not in owners and "self." + t.attr not in owners
                and last_name(stmt.value.func)[:1].isupper()
                for t in stmt.targets
            ):
                return False  # ``self.head = Head()``: a module of its own, left in training mode
    return True


#: Words of names that show a layer depending on the mode.
_MODE_LAYER_WORDS = ("dropout", "batchnorm", "batch_norm", "training")


def _words(node: ast.AST) -> Iterator[str]:
    for item in ast.walk(node):
        if isinstance(item, ast.Name):
            yield item.id
        elif isinstance(item, ast.Attribute):
            yield item.attr


#: Libraries whose ``from_pretrained`` hands the model back in eval mode
#: (``PreTrainedModel.from_pretrained`` and ``ModelMixin.from_pretrained``
#: call ``model.eval()`` before they return).
_EVAL_LOADERS = ("transformers.", "diffusers.")


def loaded_in_eval_mode(ctx, scope: Scope, name: str, depth: int = 0) -> bool:
    """Is every value ``scope`` binds to ``name`` a model loaded by
    ``from_pretrained`` of transformers or diffusers (which switch it to
    eval mode), maybe moved (``.to(device)``), or what a function of the
    module returns that only returns such a model?  ``model =
    model.to(device)`` keeps what it had."""
    values = [v for v in scope.deps.get(name, ()) if not _rebinds_itself(v, name)]
    return bool(values) and depth < 3 and all(_loads_in_eval_mode(ctx, v, depth) for v in values) \
        and not _parts_replaced(ctx, scope, name)


def _parts_replaced(ctx, scope: Scope, name: str) -> bool:
    """Does ``scope``'s own code set an attribute of ``name``
    (``pipeline.unet = unet``: a part of another mode) or hand it to
    ``setattr``?"""
    root = scope.function.node if scope.function is not None else ctx.tree
    for node in own_nodes(root) if root is not None else ():
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, (ast.AnnAssign, ast.AugAssign)) else [])
        for target in targets:
            for inner in ast.walk(target):
                if isinstance(inner, ast.Attribute) and isinstance(inner.value, ast.Name) \
                        and inner.value.id == name:
                    return True
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "setattr" \
                and node.args and isinstance(node.args[0], ast.Name) and node.args[0].id == name:
            return True
    return False


def _names_a_part(keyword: str) -> bool:
    """Is ``keyword`` of ``from_pretrained`` one a pipeline takes a model by
    (``unet``, ``vae``, ``text_encoder_2``, ``controlnet``, ``transformer``)?"""
    return keyword in _PIPELINE_PARTS or keyword.endswith(("_encoder", "_encoder_2", "model", "net"))


_PIPELINE_PARTS = frozenset({"unet", "vae", "controlnet", "transformer", "prior", "decoder", "safety_checker",
                             "image_encoder", "text_encoder", "adapter", "movq"})


def _rebinds_itself(value: ast.expr, name: str) -> bool:
    inner = unchained(value)
    return isinstance(inner, ast.Name) and inner.id == name


def _loads_in_eval_mode(ctx, value: ast.expr, depth: int) -> bool:
    call = unchained(value)
    if not isinstance(call, ast.Call):
        return False
    func = call.func
    if isinstance(func, ast.Attribute) and func.attr == "from_pretrained":
        # a pipeline handed models of its own (``unet=unet``) holds them in their mode
        return (ctx.imports.resolve(func.value) or "").startswith(_EVAL_LOADERS) and not any(
            kw.arg is None or (not isinstance(kw.value, ast.Constant) and _names_a_part(kw.arg)) for kw in call.keywords
        )
    key = ctx.call_key(func) if isinstance(func, ast.Name) else None
    scopes = ctx.scopes_of(key) if key is not None else []
    if len(scopes) != 1 or not scopes[0].return_values or scopes[0].train_switches or scopes[0].maybe_train_switches:
        return False
    callee = scopes[0]
    return all(
        isinstance(r, ast.Name) and loaded_in_eval_mode(ctx, callee, r.id, depth + 1) for r in callee.return_values
    )


def class_trains(ctx, name: str) -> bool:
    """Does a method of the module's class ``name`` train (once per class)?"""
    return _memo(ctx, ("class-trains", name), lambda: any(
        s.class_name == name and trains(ctx, s) for s in ctx.flow.all_scopes
    ), True)


#: Nodes the scope index has no use for: ``Load``/``Store`` markers and operators.
_NOT_WALKED = (ast.expr_context, ast.operator, ast.boolop, ast.cmpop, ast.unaryop)
#: Nodes whose insides are another scope's code, and ``with`` statements.
_OWN_SCOPES = frozenset({ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda})
_WITHS = frozenset({ast.With, ast.AsyncWith})


class _Index:
    """Parents and name loads of one scope's own code (nested functions and
    classes excluded), timer reads and profiler blocks; built on demand.
    The walk keeps the scope's calls and ``with`` statements; which of them
    read a clock or profile is worked out only when asked (``timers``,
    ``profiled``): most questions need only the parents and loads."""

    def __init__(self, ctx, scope: Scope, within: Optional[ast.stmt] = None) -> None:
        self.parents: Dict[int, ast.AST] = {}
        self.loads: Dict[str, List[ast.Name]] = {}
        self._ctx = ctx
        self._scope = scope
        self._within = within
        self._calls: List[ast.Call] = []
        self._withs: List[ast.AST] = []
        self._timed: Optional[Tuple[List[int], List[Tuple[int, int]]]] = None
        root: ast.AST = scope.function.node if scope.function is not None else ctx.tree
        body = list(getattr(root, "body", ())) if within is None else [within]
        stack: List[ast.AST] = []
        for stmt in body:
            if within is None:
                self.parents[id(stmt)] = root  # (the statement ``within`` sits in is not walked: no parent)
            stack.append(stmt)
        parents = self.parents
        loads = self.loads
        calls, withs_found = self._calls, self._withs
        name_type, call_type, skipped, withs = ast.Name, ast.Call, _OWN_SCOPES, _WITHS
        while stack:
            node = stack.pop()
            cls = node.__class__
            if cls is name_type:
                if node.ctx.__class__ is ast.Load:  # type: ignore[attr-defined]
                    loads.setdefault(node.id, []).append(node)  # type: ignore[attr-defined]
                continue
            if cls in skipped:
                continue
            if cls is call_type:
                calls.append(node)  # type: ignore[arg-type]
            elif cls in withs:
                withs_found.append(node)
            for field in cls._fields:
                value = getattr(node, field, None)
                if value.__class__ is list:
                    for child in value:
                        if isinstance(child, ast.AST):
                            parents[id(child)] = node
                            stack.append(child)
                elif isinstance(value, ast.AST) and not isinstance(value, _NOT_WALKED):
                    parents[id(value)] = node
                    stack.append(value)

    def uses(self, name: str) -> Optional[List[ast.Name]]:
        """The loads of ``name`` in the scope's own code.  An index of one
        statement of the scope (a loop: ``within``) answers None when the
        scope's text outside that statement has the name as a word: a read
        it did not walk may be there."""
        found = self.loads.get(name, [])
        if self._within is not None and _word_outside(self._ctx, self._scope, self._within, name):
            return None
        return found

    @property
    def timers(self) -> List[int]:
        """Lines of the scope's clock reads (``time.time()``, ``torch.cuda.synchronize()``)."""
        return self._timing()[0]

    @property
    def profiled(self) -> List[Tuple[int, int]]:
        """Line ranges of the scope's profiler blocks and ``record_function`` calls."""
        return self._timing()[1]

    def _timing(self) -> Tuple[List[int], List[Tuple[int, int]]]:
        if self._timed is None:
            ctx, timers, profiled = self._ctx, [], []
            for node in [*self._calls, *self._withs]:  # only membership is asked, not order
                if node.__class__ is ast.Call:
                    qual = ctx.imports.resolve(node.func) or ""  # type: ignore[attr-defined]
                    if qual in _TIMERS or last_name(node.func) in (  # type: ignore[attr-defined]
                            "elapsed_time", "perf_counter", "tic", "toc"):
                        timers.append(node.lineno)  # type: ignore[attr-defined]
                    elif _profiles(ctx, node):  # type: ignore[arg-type]
                        profiled.append((node.lineno, node.end_lineno or node.lineno))  # type: ignore[attr-defined]
                elif any(_profiles(ctx, item.context_expr, self._scope) for item in node.items):  # type: ignore
                    profiled.append((node.lineno, node.end_lineno or node.lineno))  # type: ignore[attr-defined]
            self._timed = (timers, profiled)
        return self._timed


#: Clock reads around code being timed.
_TIMERS = frozenset(
    {
        "time.time", "time.perf_counter", "time.perf_counter_ns", "time.monotonic", "time.time_ns",
        "time.process_time", "timeit.default_timer", "torch.cuda.synchronize", "torch.cuda.Event",
        "torch.mps.synchronize", "torch.xpu.synchronize",
    }
)


def _profiles(ctx, expr: ast.expr, scope: Optional[Scope] = None) -> bool:
    """``torch.profiler.profile(...)``, ``record_function("x")``,
    ``FlopCounterMode()``; with ``scope``, also a name it binds to one of
    them (``counter = FlopCounterMode()`` ... ``with counter:``)."""
    if isinstance(expr, ast.Name) and scope is not None:
        return any(_profiles(ctx, value) for value in scope.deps.get(expr.id, ()))
    if not isinstance(expr, ast.Call):
        return False
    qual = ctx.imports.resolve(expr.func) or ""
    last = qual.rsplit(".", 1)[-1]
    return qual.startswith("torch.") and (
        last in ("record_function", "FlopCounterMode") or (last == "profile" and "profiler" in qual)
    )


def model_turns_grad_off(ctx, calls: List[ModelCall]) -> bool:
    """Does the module name a project class whose method each of the model
    calls may run turns grad off itself (``forward`` under
    ``torch.set_grad_enabled(self.training)``, ``reverse_flow`` under
    ``torch.no_grad()``, a wrapper's ``__call__``, any method of a class
    whose constructor calls ``torch.set_grad_enabled(False)`` for the
    process), or does each call pass an argument that selects such a branch
    of a project class's forward, or call a method that a class a run-time
    factory may make turns grad off in (``_made_turning_grad_off``)?  The
    model may then run without grad where it is called: unknown, so
    silent.  ``calls``: model calls, direct or through a function of the
    module."""
    return bool(calls) and all(
        not isinstance(c, ElsewhereCall) and (ctx.names_class_turning_grad_off(frozenset((
            "forward", "__call__", *((c.node.func.attr,) if isinstance(c.node.func, ast.Attribute) else ()),
        ))) or selects_grad_off(ctx, c.node) or _made_turning_grad_off(ctx, c))
        for c in calls
    )


def _made_turning_grad_off(ctx, call: ModelCall) -> bool:
    """``model.decoder(z)`` with ``model = create_model(opt)``, every value
    of ``model`` a call of an imported function that makes its class by a
    run-time import (``importlib.import_module("models." + name +
    "_model")``), and a class of that function's package that turns grad
    off itself in ``decoder`` (``facts.methods_turning_grad_off``): the
    model made may be that class, so the call may run without grad."""
    func = call.node.func
    if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)):
        return False
    values = _bound_values(ctx, call, func.value.id)
    return bool(values) and all(
        isinstance(v, ast.Call) and isinstance(v.func, ast.Name)
        and ctx.made_turning_grad_off(v.func.id, func.attr) for v in values
    )


def selects_grad_off(ctx, call: ast.Call) -> bool:
    """Does the model call pass, by keyword, a constant that makes a project
    class's forward run without grad (``model(batch, is_eval=True)``,
    ``model(data, mode="inference")``; see ``facts.grad_off_selectors``)?"""
    selectors = frozenset(
        f"{k.arg}={k.value.value!r}" for k in call.keywords if k.arg and isinstance(k.value, ast.Constant)
    )
    return bool(selectors) and ctx.selects_grad_off(selectors)


def _built_afresh(ctx, loop: ast.AST, call: ModelCall) -> bool:
    """Does every pass of ``loop`` build the model ``call`` runs, from a
    class, before the call, and load no weights into it: ``model =
    VLAE(use_flow=flag)`` or ``block = block_class(64)`` over a table of
    classes?  Or does the loop run, one by one, the models a literal list
    it iterates builds (``for net in [ResNet50(), ResNet101()]:``)?  Each
    pass then runs a new untrained model (a check of the architectures'
    shapes), not a model over evaluation data.  A class the module defines,
    or a function of it that builds the model, must call nothing that loads
    (``load_state_dict``, ``torch.load``) in its code; a pretrained build
    (``pretrained=True``, a path or name as a string) does not count."""
    name = call.key
    if "." in name:
        return False
    is_for = loop.__class__ is ast.For
    target = loop.target if is_for else None  # type: ignore[attr-defined]
    listed = loop.iter if is_for else None  # type: ignore[attr-defined]
    if (
        target.__class__ is ast.Name and target.id == name  # type: ignore[union-attr]
        and listed.__class__ in (ast.List, ast.Tuple) and listed.elts  # type: ignore[union-attr]
    ):
        if not all(_a_new_model(ctx, element, set()) for element in listed.elts):  # type: ignore[union-attr]
            return False
    else:
        build = next((
            stmt.value for stmt in getattr(loop, "body", ())
            if stmt.__class__ is ast.Assign and len(stmt.targets) == 1  # type: ignore[attr-defined]
            and stmt.targets[0].__class__ is ast.Name and stmt.targets[0].id == name  # type: ignore[attr-defined]
            and stmt.lineno < call.node.lineno
        ), None)
        targets = {n.id for n in ast.walk(target) if n.__class__ is ast.Name} if is_for else set()
        if build is None or not _a_new_model(ctx, build, targets):
            return False
    return not any(
        _loads(n) and any(a.__class__ is ast.Name and a.id == name for a in ast.walk(n)) for n in ast.walk(loop)
    )


def _a_new_model(ctx, build: ast.AST, classes: Set[str]) -> bool:
    """Is ``build`` a call that makes a new untrained model: of a class (a
    capitalised name, or one of ``classes``, the names a loop binds to
    classes of a table), or of a function of the module, with no string
    argument and no keyword that loads weights, and with no loading call in
    the code of the module's class or function it calls?"""
    if build.__class__ is not ast.Call or any(
        arg.__class__ is ast.Constant and isinstance(arg.value, str) for arg in build.args  # type: ignore
    ) or any(k.arg is None or _LOADING_WORDS.intersection(tokens(k.arg)) for k in build.keywords):  # type: ignore
        return False
    func = build.func  # type: ignore[attr-defined]
    klass = last_name(func)
    local = func.__class__ is ast.Name
    node: Optional[ast.AST] = module_function_nodes(ctx).get(klass) if local else None  # a function that builds it
    if node is None:
        if not (klass[:1].isupper() or local and klass in classes):
            return False
        node = local_classes(ctx).get(klass) if local else None
    return node is None or not any(_loads(n) for n in ast.walk(node))


#: Words of a keyword that builds a model with trained weights (``pretrained=True``, ``weights_path=p``).
_LOADING_WORDS = frozenset({"pretrained", "weights", "weight", "checkpoint", "ckpt", "path", "resume", "state"})


def _loads(node: ast.AST) -> bool:
    """A call that loads something (``model.load_state_dict(...)``, ``load_checkpoint(model, p)``)."""
    return node.__class__ is ast.Call and "load" in last_name(node.func).lower()  # type: ignore[attr-defined]


def _asks_for_grad(loop: ast.AST) -> bool:
    """Does the loop make a tensor require grad (``x.requires_grad = True``,
    ``x.requires_grad_()``)?  Input gradients (saliency, attacks, gradient
    penalties) need grad on: ``no_grad`` would break it."""
    return next(_made_to_require_grad(loop), None) is not None


def _made_to_require_grad(node: ast.AST) -> Iterator[ast.expr]:
    """The tensors the code under ``node`` makes require grad: ``x`` of
    ``x.requires_grad = True`` and of ``x.requires_grad_()`` (not ``False``),
    in no particular order (both callers ask whether there is one)."""
    for inner in preorder(node):
        if isinstance(inner, ast.Assign):
            if not (isinstance(inner.value, ast.Constant) and inner.value.value is False):
                for target in inner.targets:
                    if isinstance(target, ast.Attribute) and target.attr == "requires_grad":
                        yield target.value
        elif (
            isinstance(inner, ast.Call) and isinstance(inner.func, ast.Attribute)
            and inner.func.attr == "requires_grad_"
        ):
            keywords = (k.value for k in inner.keywords if k.arg == "requires_grad")
            arg = inner.args[0] if inner.args else next(keywords, None)
            if not (isinstance(arg, ast.Constant) and arg.value is False):
                yield inner.func.value


def _profiled(ctx, scope: Scope, node: ast.AST) -> bool:
    """Does ``node`` (in ``scope``'s own code) run inside a profiler block?"""
    line = node.lineno  # type: ignore[attr-defined]
    return any(start <= line <= end for start, end in _index(ctx, scope).profiled)


def _index(ctx, scope: Scope) -> _Index:
    return _memo(ctx, ("index", id(scope)), lambda: _Index(ctx, scope), None)


def _loop_index(ctx, loop: Loop) -> _Index:
    """The index of one loop of its scope: most questions about a call in a
    loop are answered inside it, without walking the whole function."""
    return _memo(ctx, ("loop-index", id(loop)), lambda: _Index(ctx, loop.scope, loop.node), None)


def _word_outside(ctx, scope: Scope, stmt: ast.stmt, name: str) -> bool:
    """Is ``name`` a word of ``scope``'s text outside ``stmt`` (or not told
    apart from one: a name that is not ASCII)?  Positions are UTF-8 byte
    offsets, so the two lines ``stmt`` shares are cut as bytes."""
    if not name.isascii():
        return True
    lines = ctx.lines
    node = scope.function.node if scope.function is not None else None
    first, last = (node.lineno, node.end_lineno or node.lineno) if node is not None else (1, len(lines))
    start, end = stmt.lineno, stmt.end_lineno or stmt.lineno
    head = lines[start - 1].encode("utf-8")[: stmt.col_offset].decode("utf-8", "ignore")
    tail = lines[end - 1].encode("utf-8")[stmt.end_col_offset or 0:].decode("utf-8", "ignore")
    text = "".join([*lines[first - 1:start - 1], head, "\n", tail, *lines[end:last]])
    return re.search(r"\b%s\b" % re.escape(name), text) is not None


#: Attributes and methods whose result holds no graph (or only predictions).
_STRIPPING = frozenset({"data", "detach", "numpy", "tolist", "item", "argmax", "argmin"})


def output_fate(ctx, loop: Loop, node: ast.AST, depth: int = 0, shapes: bool = False) -> str:
    """What the loop does with a model's output: ``"stripped"`` (``.detach()``,
    ``.data``, ``.cpu().numpy()``, ``.tolist()``, ``.item()``, ``.argmax()``),
    ``"discarded"`` (never read: a forward hook may collect it) or ``"used"``.
    With ``shapes``, a read after the loop of the last output's shape, size,
    type or device (``print(out.shape)``) reads none of its values."""
    idx = _index(ctx, loop.scope)
    lo, hi = loop.node.lineno, loop.node.end_lineno or loop.node.lineno
    cur = node
    while True:
        parent = idx.parents.get(id(cur))
        if isinstance(parent, ast.Attribute):
            if parent.attr in _STRIPPING:
                return "stripped"
            cur = parent
            call = idx.parents.get(id(parent))
            if isinstance(call, ast.Call) and call.func is parent:
                cur = call
            continue
        if isinstance(parent, ast.Subscript) and parent.value is cur:
            cur = parent
            continue
        if isinstance(parent, ast.Call) and cur in parent.args and last_name(parent.func) in ("float", "int"):
            return "stripped"
        if isinstance(parent, ast.Expr):
            return "discarded"
        if isinstance(parent, ast.Assign) and parent.value is cur and depth < 2:
            return _names_fate(ctx, loop, parent.targets, idx, lo, hi, depth, shapes)
        return "used"


def _names_fate(
    ctx, loop: Loop, targets: List[ast.expr], idx: _Index, lo: int, hi: int, depth: int, shapes: bool
) -> str:
    names: List[str] = []
    for target in targets:
        elts = target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target]
        for elt in elts:
            if not isinstance(elt, ast.Name):
                return "used"  # self.out = ..., results[i] = ...
            names.append(elt.id)
    fates = set()
    for name in names:
        for use in idx.loads.get(name, ()):
            if not lo <= use.lineno <= hi:
                if shapes and _metadata_read(idx, use):
                    continue
                return "used"
            fates.add(output_fate(ctx, loop, use, depth + 1, shapes))
    if "used" in fates:
        return "used"
    return "stripped" if fates == {"stripped"} else "discarded"


def _metadata_read(idx: _Index, use: ast.AST) -> bool:
    """Is ``use`` ``x.shape``, ``x.dtype``, ``x.device``, ``x.ndim``,
    ``x.size()`` or ``len(x)``: what a tensor is, not its values?"""
    parent = idx.parents.get(id(use))
    if isinstance(parent, ast.Attribute):
        if parent.attr in ("shape", "dtype", "device", "ndim"):
            return True
        call = idx.parents.get(id(parent))
        return parent.attr == "size" and isinstance(call, ast.Call) and call.func is parent
    return isinstance(parent, ast.Call) and isinstance(parent.func, ast.Name) and parent.func.id == "len" \
        and parent.args == [use]


def is_timing(ctx, loop: Loop, nodes: List[ast.Call]) -> bool:
    """A loop that measures a configuration: inside a profiler block (or one
    inside it), or between clock reads with its outputs discarded; or one
    that warms a model up (``_warms_up``)."""
    if _warms_up(loop, nodes):
        return True
    idx = _index(ctx, loop.scope)
    lo, hi = loop.node.lineno, loop.node.end_lineno or loop.node.lineno
    for start, end in idx.profiled:
        if start <= lo and hi <= end or lo <= start <= hi:
            return True
    inside = any(lo <= t <= hi for t in idx.timers)
    around = any(t < lo for t in idx.timers) and any(t > hi for t in idx.timers)
    if not (inside or around):
        return False
    return all(output_fate(ctx, loop, node, shapes=True) == "discarded" for node in nodes)


#: torch functions that make a tensor of random or constant values.
_DUMMY_TENSORS = frozenset({"randn", "rand", "zeros", "ones", "empty", "randint", "full"})


def _warms_up(loop: Loop, nodes: List[ast.Call]) -> bool:
    """``for _ in range(3): _ = model(torch.randn(shape).to(device))``: a
    few passes, a literal count of them, over tensors of random or constant
    values made in the loop (or bound once in its function), whose outputs
    nothing reads; or a pass over
    data named dummy (``dummy_loader``) whose outputs nothing reads.  It
    warms the model (and the device) up, or sizes its lazy layers; it
    evaluates nothing."""
    node = loop.node
    if isinstance(node, ast.For) and "dummy" in (dotted(node.iter) or "").lower() and nodes:
        # ``for data in dummy_loader: pred = model(data)``: a pass that sizes
        # the model's lazy layers before training, its outputs never read
        return all(_discarded(node, call) or _unread_in(node, call) for call in nodes)
    if not (
        isinstance(node, ast.For) and isinstance(node.iter, ast.Call) and isinstance(node.iter.func, ast.Name)
        and node.iter.func.id == "range" and len(node.iter.args) == 1
        and isinstance(node.iter.args[0], ast.Constant) and isinstance(node.iter.args[0].value, int)
        and nodes
    ):
        return False
    made = {
        t.id for stmt in node.body if isinstance(stmt, ast.Assign) and _dummy(stmt.value)
        for t in stmt.targets if isinstance(t, ast.Name)
    }
    # ``x = torch.randn(shape, device=device)`` once in the function, before the loop
    scope = loop.scope
    made.update(
        name for name, values in scope.deps.items()
        if scope.stored.get(name) == 1 and len(values) == 1 and _dummy(values[0])
    )
    for call in nodes:
        if not isinstance(call, ast.Call) or not call.args or call.keywords:
            return False
        if not all(_dummy(a) or (isinstance(a, ast.Name) and a.id in made) for a in call.args):
            return False
        if not _discarded(node, call):
            return False
    return True


def _warm_up_call(scope: Scope, node: ast.AST) -> bool:
    """Is ``node`` a model call of a loop of ``scope`` that warms the model up (``_warms_up``)?"""
    line = getattr(node, "lineno", 0)
    return any(
        loop.node.lineno <= line <= (loop.node.end_lineno or loop.node.lineno) and _warms_up(loop, [node])
        for loop in scope.loops
    )


def _dummy(expr: ast.expr) -> bool:
    """``torch.randn(shape)``, possibly moved (``.to(device)``, ``.cuda()``)."""
    base = unchained(expr)
    return isinstance(base, ast.Call) and isinstance(base.func, ast.Attribute) and base.func.attr in _DUMMY_TENSORS \
        and isinstance(base.func.value, ast.Name) and base.func.value.id == "torch"


def _each_cut_off(ctx, loop: Loop, calls: List[ModelCall]) -> bool:
    """Does no pass of ``loop`` get to any of ``calls`` (see ``_cut_off``)?"""
    body = getattr(loop.node, "body", [])
    own, top = _own_names(loop.scope), _top(ctx, loop.scope)
    return all(_cut_off(ctx, body, c.node, own, top) for c in calls)


def _unread_in(loop: ast.For, call: ast.Call) -> bool:
    """Is ``call`` assigned, as a statement of the loop's body, to a plain
    name that nothing in the body reads (``pred = model(data)``)?"""
    targets = [
        stmt.targets[0].id for stmt in loop.body
        if isinstance(stmt, ast.Assign) and stmt.value is call and len(stmt.targets) == 1
        and isinstance(stmt.targets[0], ast.Name)
    ]
    return bool(targets) and not any(
        isinstance(inner, ast.Name) and isinstance(inner.ctx, ast.Load) and inner.id == targets[0]
        for stmt in loop.body for inner in ast.walk(stmt)
    )


def _discarded(loop: ast.For, call: ast.Call) -> bool:
    """Is ``call`` a statement of the loop's body of its own, or assigned to ``_``?"""
    for stmt in loop.body:
        if isinstance(stmt, ast.Expr) and stmt.value is call:
            return True
        if (
            isinstance(stmt, ast.Assign) and stmt.value is call and len(stmt.targets) == 1
            and isinstance(stmt.targets[0], ast.Name) and stmt.targets[0].id == "_"
        ):
            return True
    return False


def eval_switch_before(ctx, scope: Scope, seq: int) -> bool:
    """Is some model switched to eval mode in ``scope`` before ``seq``, directly
    or by a module-local function called before it?  Not a switch of a name
    bound to a new model between the switch and ``seq`` (``layer.eval()``
    ... ``layer = nn.BatchNorm1d(16)``: the new one is in training mode)."""
    if any(s < seq and not _rebuilt_since(scope, ctx.flow.switch_keys.get(s, ""), s, seq)
           for s in scope.eval_switches):
        return True
    for call_seq, key in scope.local_calls:
        if call_seq >= seq:
            break
        for callee in callees(ctx, scope, key):
            if callee is not scope and _memo(
                ctx, ("switches", id(callee)), lambda c=callee: eval_switch_before(ctx, c, _WHOLE), False
            ):
                return True
    return False


def _rebuilt_since(scope: Scope, name: str, since: int, seq: int) -> bool:
    """Is ``name``, as ``seq`` runs, a new model in training mode that its
    last binding before ``seq``, after ``since``, made?"""
    last = None
    for at, fresh in scope.rebuilt.get(name, ()):
        if at >= seq:
            break
        last = (at, fresh)
    return last is not None and last[0] > since and last[1]


def mode_before(ctx, scope: Scope, seq: int, own_eval: bool = True) -> Optional[str]:
    """The last mode switch before ``seq`` in ``scope``: ``"eval"``, ``"train"``
    or None.  A call of a module-local function counts with the last switch
    its body makes.  ``own_eval=False`` leaves out the scope's own ``.eval()``
    calls.  A ``.train()`` on layers drawn one by one from a model (``for m
    in model.modules(): if ...Dropout...: m.train()``, dropout turned on
    for Monte Carlo sampling) switches those layers, not the model."""
    events: List[Tuple[int, object]] = [(s, "eval") for s in scope.eval_switches if s < seq and own_eval]
    events += [(s, "train") for s in scope.train_switches if s < seq and not switches_a_layer(ctx, scope, s)]
    events += [(s, key) for s, key in scope.local_calls if s < seq]
    for site, event in sorted(events, key=lambda e: e[0], reverse=True):
        if isinstance(event, str):
            return event
        for callee in callees(ctx, scope, event):  # type: ignore[arg-type]
            if callee is not scope:
                mode = _mode_set_by_argument(callee, ctx.flow.nodes.get(site))
                if mode is None:
                    mode = _memo(ctx, ("final", id(callee)), lambda c=callee: mode_before(ctx, c, _WHOLE), None)
                if mode is not None:
                    return mode
    return None


def _mode_set_by_argument(callee: Scope, call: Optional[ast.AST]) -> Optional[str]:
    """The mode a function that switches by its argument leaves when
    ``call`` hands it a literal (``self.set_mode("valid")`` of ``if mode in
    ["eval", "valid"]: self.net.eval() elif mode == "train":
    self.net.train()``): the last switch of the statements of its body
    that run, choosing the branch of each ``if`` whose test the literal
    decides (``facts.test_holds``).  None when a test it meets is not
    decided so, or nothing switches."""
    fn = callee.function
    if not isinstance(call, ast.Call) or fn is None:
        return None
    values = {name: value for name, value, _ in bound_arguments(fn, call) if isinstance(value, ast.Constant)}
    if not values:
        return None
    names = frozenset(values)
    mode: Optional[str] = None
    todo = list(fn.node.body)
    while todo:
        stmt = todo.pop(0)
        if isinstance(stmt, ast.If):
            taken = test_holds(stmt.test, values, names)  # type: ignore[arg-type]
            if taken is None:
                return None
            todo[:0] = stmt.body if taken else stmt.orelse
            continue
        for node in ast.walk(stmt):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and not node.keywords:
                if switches_to_eval(node, node.func.attr):
                    mode = "eval"
                elif node.func.attr == "train" and switches_to_train(node):
                    mode = "train"
    return mode


def switches_a_layer(ctx, scope: Scope, site: int) -> bool:
    """Is the mode switch at ``site`` of ``scope`` made on a layer drawn
    from ``for m in net.modules():`` (``children()``, the ``named_``
    forms): one layer's mode, not the whole model's?"""
    call = ctx.flow.nodes.get(site)
    func = getattr(call, "func", None)
    if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)):
        return False
    layer = func.value.id
    for loop in ctx.flow.loops:
        node = loop.node
        if loop.scope is not scope or not (loop.seq < site < loop.end_seq) or not isinstance(node, ast.For):
            continue
        target = node.target.elts[-1] if isinstance(node.target, ast.Tuple) and node.target.elts else node.target
        source = node.iter.func if isinstance(node.iter, ast.Call) else None
        if (
            isinstance(target, ast.Name) and target.id == layer
            and isinstance(source, ast.Attribute) and source.attr in PART_ITERATORS
        ):
            return True
    return False


def call_sites(ctx, fn: FunctionInfo) -> List[Tuple[Scope, int]]:
    """Where the module calls ``fn`` (a closure: from its enclosing function),
    but for calls that cannot bind its parameters (``never_starts``)."""
    if fn.key is not None:
        sites = ctx.call_sites.get(fn.key, [])
        if sites and fn.key == ("function", fn.name):
            # asked often, of call sites complete by then: filtered once per function
            cache = ctx.flow.cache
            found = cache.get(("bound-sites", id(fn)))
            if found is None or found[0] != len(sites):
                nodes = ctx.flow.nodes
                found = (len(sites), [
                    site for site in sites if site[1] not in nodes or not never_starts(fn, nodes[site[1]])
                ])
                cache[("bound-sites", id(fn))] = found
            return found[1]
        return sites
    if fn.name in ctx._referenced or fn.parent is None:
        return []
    return [
        (scope, seq)
        for scope, seq in ctx.call_sites.get(("function", fn.name), [])
        if _within(scope.function, fn.parent)
    ]


def eval_mode_on_entry(
    ctx, scope: Scope, _seen: Optional[Set[int]] = None, chosen=None, repeats=None, _repeated: bool = False,
    models: FrozenSet[str] = frozenset(),
) -> Optional[bool]:
    """Is a model in eval mode when ``scope`` starts?  True: every module-local
    caller leaves it in eval mode before the call.  False: a caller leaves it in
    training mode (or is top-level code that never switched).  None: callers
    are not all visible.  With ``chosen(caller, seq)`` (is a caller's
    training mode at the call chosen for it, not left over from training?)
    and ``repeats(caller, seq)`` (is the call repeated with the same
    arguments, ``for _ in range(n)``?): a caller that chose training mode
    for a path that repeats the same prediction draws Monte Carlo dropout
    samples on purpose, and counts as one that switches.  With ``models``
    (parameters of ``scope``'s function that default to ``None`` and hold
    the models it runs), a call that passes none of them a model (leaves
    them out, or passes ``None``) runs no model, and does not count."""
    fn = scope.function
    if fn is None:
        return False  # top-level code: nothing runs before it
    if fn.escaped or fn.by_name:
        return None
    sites = call_sites(ctx, fn)
    if not sites:
        return None
    seen = _seen if _seen is not None else set()
    if id(scope) in seen:
        return None
    seen.add(id(scope))
    verdicts = set()
    for caller, seq in sites:
        if models and _passes_no_model(fn, ctx.flow.nodes.get(seq), models):
            continue  # ``visualize(coach=None)``: no model runs
        if _hands_over_in_eval(ctx.flow.nodes.get(seq)):
            verdicts.add(True)  # ``evaluate(model.eval(), loader)``: ``eval()`` returns the module
            continue
        mode = mode_before(ctx, caller, seq)
        repeated = _repeated or (repeats is not None and repeats(caller, seq))
        if mode is None and _hands_loaded_models(ctx, caller, ctx.flow.nodes.get(seq)):
            verdicts.add(True)  # ``model = AutoModel.from_pretrained(...)``: eval mode from the start
            continue
        if mode is None:
            verdicts.add(eval_mode_on_entry(ctx, caller, seen, chosen, repeats, repeated))
        else:
            verdicts.add(mode == "eval" or (repeated and chosen is not None and chosen(caller, seq)))
    seen.discard(id(scope))
    if False in verdicts:
        return False
    if None in verdicts:
        return None
    return True


def _hands_loaded_models(ctx, caller: Scope, node: Optional[ast.AST]) -> bool:
    """Does the call ``node`` hand over, by name, a model ``caller`` loaded
    in eval mode (``loaded_in_eval_mode``), and no model it built afresh?"""
    if not isinstance(node, ast.Call):
        return False
    names = [a.id for a in (*node.args, *(k.value for k in node.keywords)) if isinstance(a, ast.Name)]
    if any(n in caller.built_models for n in names):
        return False
    return any(loaded_in_eval_mode(ctx, caller, n) for n in names)


def _passes_no_model(fn: FunctionInfo, node: Optional[ast.AST], models: FrozenSet[str]) -> bool:
    """Does the call ``node`` of ``fn`` leave every parameter of ``models``
    at its ``None`` default, or pass ``None`` itself?"""
    left = left_at_none(fn, node) if isinstance(node, ast.Call) else None
    return left is not None and models <= left


def left_at_none(fn: FunctionInfo, call: ast.Call) -> Optional[Set[str]]:
    """The parameters of ``fn``, ``None`` by default, that ``call`` leaves
    out or passes ``None``; None when a ``*args`` or ``**kwargs`` of the call
    hides which parameter gets what."""
    if any(isinstance(a, ast.Starred) for a in call.args) or any(kw.arg is None for kw in call.keywords):
        return None
    passed = {name: value for name, value, _ in bound_arguments(fn, call)}
    return {
        name for name, default in param_defaults(fn.node.args).items()
        if is_const(default, None) and (name not in passed or is_const(passed[name], None))
    }


def _hands_over_in_eval(node: Optional[ast.AST]) -> bool:
    """Does the call pass an argument switched to eval mode right there
    (``evaluate(model.eval(), loader)``, ``test(net.train(False))``)?"""
    if not isinstance(node, ast.Call):
        return False
    for arg in [*node.args, *(k.value for k in node.keywords)]:
        if isinstance(arg, ast.Call) and isinstance(arg.func, ast.Attribute) and switches_to_eval(arg, arg.func.attr):
            return True
    return False


def _fills_the_return(loop: Loop, calls: List[ModelCall]) -> bool:
    """Does the loop bind or add to a name that flows into what its function
    returns a value that holds one of its model calls' outputs, not detached
    (``elbo += log_lik(model(x))`` then ``return elbo``)?"""
    returned: Optional[Set[str]] = None
    wanted = {id(c.node) for c in calls}
    for node in preorder(loop.node):
        if isinstance(node, ast.Assign):
            names, value = [t.id for t in node.targets if isinstance(t, ast.Name)], node.value
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            names, value = [node.target.id], node.value
        else:
            continue
        inner = preorder(value)
        if not names or not any(id(n) in wanted for n in inner) or any(
            isinstance(n, ast.Attribute) and n.attr in GRAPH_DROPPING_READS for n in inner
        ):
            continue
        if returned is None:
            returned = loop.scope.feeds_return()
        if returned.intersection(names):
            return True
    return False


def _filled_names(loop: Loop) -> Set[str]:
    """The names the loop binds, adds to, appends to or stores items in."""
    names: Set[str] = set()
    for node in ast.walk(loop.node):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                for element in (target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target]):
                    element = subscripted_root(element)  # ``states[i + 1] = cell(x)``: fills ``states``
                    if isinstance(element, ast.Name):
                        names.add(element.id)
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in ("append", "extend") and isinstance(node.func.value, ast.Name):
                names.add(node.func.value.id)
    return names


def _feeds_a_later_step(ctx, loop: Loop) -> bool:
    """Does the loop collect outputs (``logits.append(model(x))``, ``out =
    ...``) into names that flow into a ``.backward()`` target of its function
    (or into a container an item of which is one),
    inside a loop that runs a training step after it, in the same iteration?  Then it is part of a training step's
    forward (a mixup batch fed in chunks), not an evaluation."""
    scope = loop.scope
    if not scope.backward_names and not scope.backward_holders:
        return False
    parent = loop.parent  # the training loop whose step comes later in the same iteration (the
    while parent is not None and not any(loop.end_seq < s < parent.end_seq for s in parent.step_seqs):
        parent = parent.parent  # nearest enclosing loop that has one: ``for t in ...: for s in ...:``)
    if parent is None and not any(s > loop.end_seq for s in scope.step_seqs):
        return False  # nor a step after it in its function: ``for i in steps: out = rnn(x)``, then ``backward``
    names = _filled_names(loop)
    # ``losses.append(loss)`` in the loop, ``losses[0].backward()`` after it; ``pred, states[t] =
    # decoder(x, states[t - 1])`` then ``loss += criterion(pred, y)``
    feeding = _memo(
        ctx, ("feeds-backward-unpacked", id(scope)),
        lambda: scope.feeds_backward(holders=True, drawn=True, unpacked=True), set()
    )
    return bool(names & feeding)


class EvalLoop:
    __slots__ = ("loop", "intent", "model_calls", "paths")

    def __init__(self, loop: Loop, intent: str, model_calls: List[ModelCall], paths: List[PathCall]) -> None:
        self.loop = loop
        self.intent = intent
        self.model_calls = model_calls
        #: calls of the module's own functions that run a model
        self.paths = paths


def evaluation_loops(ctx) -> List[EvalLoop]:
    """Every loop that runs a model forward (directly or through a function of
    the module it calls), trains nothing and shows evaluation intent, outside
    framework hooks, ``nn.Module`` code, pytest tests and timing loops."""
    return _memo(ctx, ("evaluation-loops",), lambda: _evaluation_loops(ctx), [])


def _models_of_its_own(ctx) -> bool:
    """Is the module a framework of its own, with no torch in it: it imports
    nothing from torch or a model library, no class by name, and defines
    model classes (with ``forward``) whose bases are its own classes or
    ``object`` (``class MLP(object)`` over numpy in a course's homework)?
    Its models build no autograd graph."""
    imports = ctx.imports
    if imports.imports_from(("torch", *_MODEL_LIBRARIES)) or any(
        name[:1].isupper() for name in imports.imported_names()
    ):
        return False
    classes = local_classes(ctx)
    own = False
    for node in classes.values():
        for base in node.bases:
            if not (base.__class__ is ast.Name and (base.id == "object" or base.id in classes)):  # type: ignore
                return False
        own = own or method_of(node, "forward") is not None
    return own


def _another_frameworks_function(ctx, scope: Scope) -> bool:
    """Does the function (the outermost one that holds the scope) import
    another tensor framework in its own code (``import tensorflow as tf``,
    ``from keras.models import Model``: a module that gathers experiments
    in several frameworks), import nothing of torch and read no name that
    is torch's?  Its models are that framework's."""
    imports = ctx.imports
    if not _imports_another_framework(ctx):
        return False  # the module imports no other framework anywhere: the cheap answer first
    fn = scope.function
    while fn is not None:
        if _another_frameworks_class(ctx, fn.class_name):
            return True  # ``class DecoderTF(tf.keras.layers.Layer)``: its ``self.call(...)`` is Keras
        if fn.parent is None:
            break
        fn = fn.parent
    if fn is None:
        return False
    heads: Set[str] = set()
    names: Set[str] = set()
    for node in ast.walk(fn.node):
        if isinstance(node, ast.Import):
            heads.update(alias.name.split(".", 1)[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            heads.add(node.module.split(".", 1)[0])
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            names.add(node.id)
    if "torch" in heads or heads.isdisjoint(OTHER_FRAMEWORKS):
        return False
    return not any((imports.resolve(ast.Name(name)) or "").partition(".")[0] == "torch"
                   for name in names if imports.is_imported(name))


def _another_frameworks_class(ctx, name: Optional[str]) -> bool:
    """Is ``name`` a class of the module with a base of another tensor
    framework (``tf.keras.layers.Layer``, ``tf.Module``, ``flax.linen.Module``)?"""
    node = local_classes(ctx).get(name) if name is not None else None
    return node is not None and any(
        (ctx.imports.resolve(base) or "").partition(".")[0] in OTHER_FRAMEWORKS for base in node.bases
    )


def stops_on_its_first_pass(ctx, loop: Loop, leaves: bool = False) -> bool:
    """Does a statement of the loop's body (not under an ``if`` or in a
    nested block) always read a name the module binds nowhere, or (with
    ``leaves``) end the loop (``exit()``, ``return``, ``raise``, ``break``
    left in its body)?  The first pass then raises ``NameError`` or leaves:
    no batch after the first is run."""
    body = getattr(loop.node, "body", None)
    if not body or loop.node.__class__ not in (ast.For, ast.AsyncFor, ast.While):
        return False
    local = _own_names(loop.scope)
    fn = loop.scope.function
    whole = fn.node if fn is not None and fn.parent is None and isinstance(
        fn.node, (ast.FunctionDef, ast.AsyncFunctionDef)) else None
    for stmt in body:
        if never_completes(stmt):
            # ``continue``: the rest of a pass may never run; the others end the loop
            return leaves and stmt.__class__ is not ast.Continue
        if _reads_unbound(ctx, stmt, local, whole):
            return True
    return False


def _leaves_after(loop: ast.AST, nodes: List[ast.AST]) -> bool:
    """Does each of ``nodes`` (calls in ``loop``'s body) sit in a block of
    the body (an ``if``, ``with`` or ``try`` block, not a nested loop) that
    ends, after it, in a statement that leaves the loop (``sys.exit()``,
    ``return``, ``break``: ``never_completes``, not ``continue`` or a
    ``raise`` the loop may catch)?
    The first pass that reaches them is then the last."""
    wanted = {id(n) for n in nodes}
    found: Set[int] = set()
    blocks = [getattr(loop, "body", [])]
    while blocks:
        block = blocks.pop()
        # the first statement that leaves: the ones before it run on the last pass
        end = next((i for i, stmt in enumerate(block) if never_completes(stmt)), None)
        # (``continue`` goes on to the next pass; a ``raise`` may be caught in the loop)
        leaves = end is not None and block[end].__class__ not in (ast.Continue, ast.Raise)
        for i, stmt in enumerate(block):
            if stmt.__class__ in (ast.For, ast.AsyncFor, ast.While, ast.FunctionDef, ast.AsyncFunctionDef,
                                  ast.ClassDef):
                continue  # a nested loop may run its calls many times; a def runs them later
            inner = [b for f in ("body", "orelse", "finalbody", "handlers") for b in _blocks(getattr(stmt, f, None))]
            blocks.extend(b for b in inner if b)
            if leaves and i < end:  # type: ignore[operator]
                for node in ast.walk(stmt) if not inner else _own_expressions(stmt):
                    if id(node) in wanted:
                        found.add(id(node))
    return bool(wanted) and found == wanted


def _own_expressions(stmt: ast.stmt) -> Iterator[ast.AST]:
    """The nodes of a compound statement's own expressions (an ``if``'s
    test, a ``with``'s items), not of its blocks."""
    for field, value in ast.iter_fields(stmt):
        if field in ("body", "orelse", "finalbody", "handlers"):
            continue
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, ast.AST):
                yield from ast.walk(item)


#: Calls that stop the program in an interactive debugger or shell.
_DEBUGGER_CALLS = frozenset({"breakpoint", "pdb.set_trace", "ipdb.set_trace", "pudb.set_trace", "IPython.embed"})


def _enters_a_debugger(ctx, stmt: ast.stmt) -> bool:
    """Is ``stmt`` a call, as a statement, that stops in a debugger
    (``pdb.set_trace()``, ``breakpoint()``, ``embed()`` imported from
    IPython)?"""
    if stmt.__class__ is not ast.Expr or not isinstance(stmt.value, ast.Call):  # type: ignore[attr-defined]
        return False
    func = stmt.value.func  # type: ignore[attr-defined]
    return (ctx.imports.resolve(func) or dotted(func)) in _DEBUGGER_CALLS


def _evaluation_loops(ctx) -> List[EvalLoop]:
    out = []
    if ctx.tree is not None and _models_of_its_own(ctx):
        return out
    for loop in ctx.flow.loops:
        body = getattr(loop.node, "body", None)
        if body and body[-1].__class__ is ast.Break:
            continue  # runs once (one batch to set something up): not a loop over evaluation data
        if body and any(_enters_a_debugger(ctx, stmt) for stmt in body):
            continue  # ``pdb.set_trace()`` on every pass: a loop stepped through by hand
        calls = [c for c in loop.model_calls if is_model_call(ctx, c)]
        paths = path_calls(ctx, loop) if loop.local_calls else []
        if not calls and not paths and loop.imported_calls:
            calls = _calls_elsewhere(ctx, loop)
        if not calls and not paths:
            continue
        # ``if TORCH_VERSION == "0.3": ... else: with torch.no_grad(): ...``: old torch's branch is dead
        calls = [c for c in calls if not in_legacy_branch(ctx, c.node.lineno)]
        paths = [p for p in paths if not in_legacy_branch(ctx, ctx.flow.nodes[p.seq].lineno)]
        if not calls and not paths:
            continue
        scope = loop.scope
        if is_hook(scope, ctx) or is_pytest_test(scope, ctx) or in_module_method(ctx, scope):
            continue
        if scope.function is not None and _memo(
            ctx, ("foreign", id(scope)), lambda: _another_frameworks_function(ctx, scope), False
        ):
            continue  # ``import tensorflow as tf`` in the function, no torch: a Keras model
        if trains(ctx, loop) or _feeds_a_later_step(ctx, loop):
            continue
        if not calls and all(_profiled(ctx, p.callee, p.model_call.node) for p in paths):
            continue  # every forward it reaches is measured by a profiler or FLOP counter
        if _asks_for_grad(loop.node):
            continue  # ``x.requires_grad = True``: gradients of its inputs are wanted
        if calls and not paths and all(_built_afresh(ctx, loop.node, c) for c in calls):
            continue  # ``block = block_class(64); y = block(x)``: a new untrained model each pass
        if calls and not paths and _each_cut_off(ctx, loop, calls):
            continue  # ``print(label.shape); break`` before ``output = model(data)``: no pass gets to it
        nodes = [c.node for c in calls] + [ctx.flow.nodes[p.seq] for p in paths]
        if _leaves_after(loop.node, nodes):
            continue  # ``if ext == ".jpg": ... model(x) ... sys.exit()``: one pass runs the model, once
        intent = evaluation_intent(ctx, loop, nodes)
        if intent == "function" and scope.function is not None and feeds_training(ctx, scope.function):
            continue  # ``predict_poses()``: part of a training step's forward, named like inference
        if intent == "evidence" and _called_by_nothing(ctx, scope):
            continue  # only its caller, which the project lacks, says whether this evaluates
        if intent == "eval-mode" and scope.class_name is not None and _called_by_nothing(ctx, scope):
            continue  # a method the project never calls: its grad mode is its unknown caller's
        if intent is None or is_timing(ctx, loop, nodes) or never_runs(ctx, scope) or _never_reached(ctx, loop):
            continue
        if stops_on_its_first_pass(ctx, loop):
            continue  # ``accuracy(y_hat, y, mask)`` with no ``mask`` anywhere: NameError on the first batch
        if _self_test(ctx, scope, loop.node):
            continue  # a model module's own smoke test, run by hand while the model is written
        if called_from_forward(ctx, scope):
            continue  # part of a model's forward: whoever runs the model owns its grad mode
        if intent != "function" and scope.function is not None and _fills_the_return(loop, calls) \
                and feeds_training(ctx, scope.function):
            continue  # last: ``elbo += log_lik(model(x))``, returned to a caller that backpropagates it
        out.append(EvalLoop(loop, intent, calls, paths))
    return out


def _calls_elsewhere(ctx, loop: Loop) -> List[ModelCall]:
    """The loop's calls of functions of other modules of the project that
    run, once and outside any loop of theirs, the model they are handed,
    with their caller's grad mode (see ``Project.param_runs``):
    ``extract_features(model, xyz)``.  A helper with a loop of its own is
    not followed: its loop is reported in its module."""
    candidates = [r for r in loop.imported_calls if any(
        _model_argument(ctx, r, a) is not None for a in [*r.node.args, *(k.value for k in r.node.keywords)]
    )]
    # asking the index may summarise the whole project: only for a loop that
    # shows evaluation by its data, its function or an ``.eval()`` before it
    if not candidates or evaluation_intent(ctx, loop) is None or trains(ctx, loop):
        return []
    found: List[ModelCall] = []
    for record in candidates:
        node = record.node
        for name, position in ctx.param_runs(record.key):
            if position < len(node.args) and not any(isinstance(a, ast.Starred) for a in node.args[:position + 1]):
                arg: Optional[ast.expr] = node.args[position]
            else:
                arg = next((k.value for k in node.keywords if k.arg == name), None)
            call = _model_argument(ctx, record, arg) if arg is not None else None
            if call is not None:
                found.append(call)
                break
    return found


def _model_argument(ctx, record: ModelCall, arg: ast.expr) -> Optional["ElsewhereCall"]:
    """``arg``, handed over by the call ``record``, as the model call it
    stands for, when it is a model by its name."""
    key = dotted(arg)
    if key is None:
        return None
    call = ElsewhereCall(record.node, key, record.seq, record.state, record.function, record.class_name, record.key)
    return call if is_model_call(ctx, call) else None


def inference_functions(ctx) -> List[Tuple[Scope, List[ModelCall]]]:
    """Functions named like inference that call a model after putting it in
    eval mode (in the function or the class's ``__init__``) and train nothing;
    and the public methods of a predictor class (``wrapper_class``)."""
    out = []
    for scope in ctx.flow.all_scopes:
        fn = scope.function
        if fn is None:
            continue
        wrapper = (
            wrapper_class(ctx, scope.class_name)
            and (fn.name == "__call__" or not fn.name.startswith("__"))
            and not ctx.call_sites.get(fn.key or ())
        )
        if not (wrapper or says_inference_function(fn.name)):
            continue
        if is_hook(scope, ctx) or is_pytest_test(scope, ctx) or trains(ctx, scope):
            continue
        if in_module_method(ctx, scope) and not (
            fn.class_name and scope.eval_switches and not scope.loops and not ctx.call_sites.get(fn.key or ())
        ):
            # a module's own loop belongs to its caller (``Decoder.inference``); a one-shot
            # method that puts the module in eval mode itself (``Unet.predict``) is an entry
            # point, unless another method of the module calls it (``recognize`` calling
            # ``encode``): then it is a helper, and its caller owns the grad mode
            continue
        if any(trains(ctx, caller) and _result_used(ctx, caller, seq) for caller, seq in call_sites(ctx, fn)):
            continue  # shared with training: judged where evaluation calls it
        calls = [
            c for c in scope.model_calls
            if is_model_call(ctx, c) and not in_legacy_branch(ctx, c.node.lineno) and not _warm_up_call(scope, c.node)
        ]
        if not calls or never_runs(ctx, scope) or _inputs_ask_for_grad(ctx, scope, calls):
            continue
        if not any(s < calls[0].seq for s in scope.eval_switches):
            # the class's ``__init__`` put a model in eval mode: the calls of that model are
            # inference, not those of a student it trains beside a frozen teacher
            calls = [c for c in calls if _switched_in_init(ctx, scope.class_name, c.key)]
        if calls and not _cut_off(
            ctx, fn.node.body, min((c.node for c in calls), key=lambda n: (n.lineno, n.col_offset)), _own_names(scope)
        ) and not feeds_training(ctx, fn):
            # last, as they may ask the index: whether its first model call is reached, and
            # whether a caller backpropagates what it returns (a rollout's log-probabilities)
            out.append((scope, calls))
    return out


def _inputs_ask_for_grad(ctx, scope: Scope, calls: List[ModelCall]) -> bool:
    """Does the function make a tensor require grad (``_asks_for_grad``),
    or hand a model ``self.x`` that a method of its class made require grad
    (``self.x.requires_grad_()``: derivatives of the outputs with respect
    to the inputs, as a PDE residual needs)?"""
    if _asks_for_grad(scope.function.node):  # type: ignore[union-attr]
        return True
    klass = local_classes(ctx).get(scope.class_name or "")
    if klass is None:
        return False
    handed = {h for h in (dotted(a) for c in calls for a in c.node.args) if h and h.startswith("self.")}
    return bool(handed) and any(dotted(t) in handed for t in _made_to_require_grad(klass))


def _switched_in_init(ctx, class_name: Optional[str], key: str) -> bool:
    """Did the ``__init__`` of ``class_name`` put the model of the call
    ``key`` in eval mode (``self.teacher.eval()`` for ``self.teacher(x)``;
    ``model.eval()`` for ``self.model(x)``; ``self.eval()``, or a switch of
    something unnamed, for any call)?"""
    owners = ctx.flow.class_init_eval.get(class_name or "")
    return bool(owners) and any(
        o in ("", "self") or any(part_of(key, m) for m in (o, "self." + o))
        for o in owners
    )


def part_of(key: str, owner: str) -> bool:
    """Does the call ``key`` run ``owner`` or a part of it (``net``,
    ``net.encoder``, ``net[0]`` for ``net``)?"""
    return key == owner or key.startswith((owner + ".", owner + "["))


def display(key: str) -> str:
    """A model call's key as code: ``self.models[...]`` for ``self.models[]``."""
    return key[:-2] + "[...]" if key.endswith("[]") else key


# --- loops that evaluate in one phase and train in the other --------------------


def phase_loops(ctx) -> List[Tuple[Loop, List[ModelCall]]]:
    """A loop whose training steps all run under a flag (``if phase ==
    "train":``) after the enclosing loop switched the mode by that flag
    (``model.train(phase == "train")``, or ``.train()``/``.eval()`` in an
    ``if``/``else``): in its other phase it evaluates, with grad enabled
    unless ``torch.set_grad_enabled(flag)`` says otherwise."""
    out = []
    flow_ = ctx.flow
    for loop in flow_.loops:
        parent = loop.parent
        if not loop.training_step or parent is None or not loop.step_seqs:
            continue
        scope = loop.scope
        flag_switches = [s for s in scope.maybe_train_switches if parent.seq < s < loop.seq]
        evals = [s for s in scope.eval_switches if parent.seq < s < loop.seq]
        trains_ = [s for s in scope.train_switches if parent.seq < s < loop.seq]
        if not flag_switches and not (evals and trains_):
            continue
        calls = [c for c in loop.model_calls if is_model_call(ctx, c)]
        if not calls or is_hook(scope, ctx) or is_pytest_test(scope, ctx) or in_module_method(ctx, scope):
            continue
        idx = _index(ctx, scope)
        flags: Set[str] = set()
        for seq in flag_switches:
            node = flow_.nodes.get(seq)
            if node is not None and (node.args or node.keywords):
                value = node.args[0] if node.args else node.keywords[0].value
                flags.update(names_in(value, split=False))
        for seq in evals + trains_:
            test = _guard(idx, flow_.nodes.get(seq), parent.node)
            if test is not None:
                flags.update(names_in(test, split=False))
        if not flags:
            continue
        # every step under a flag's ``if``; a forward in the branch a step
        # runs in runs in the training phase only
        training = {_flag_branch(idx, flow_.nodes.get(seq), loop.node, flags) for seq in loop.step_seqs}
        if None not in training:
            calls = [c for c in calls if _flag_branch(idx, c.node, loop.node, flags) not in training]
            if calls:
                out.append((loop, calls))
    return out


def _flag_branch(idx: _Index, node: Optional[ast.AST], stop: ast.AST, flags: Set[str]) -> Optional[Tuple[int, bool]]:
    """The innermost ``if`` (below ``stop``) whose test reads a flag and that
    holds ``node``, by ``id``, with whether ``node`` is in its body (not its
    ``else``); None when there is none."""
    cur = node
    while cur is not None and cur is not stop:
        parent = idx.parents.get(id(cur))
        if isinstance(parent, ast.If) and cur is not parent.test and flags & set(names_in(parent.test, split=False)):
            return (id(parent), cur in parent.body)
        cur = parent
    return None


def _guard(idx: _Index, node: Optional[ast.AST], stop: ast.AST) -> Optional[ast.expr]:
    """The test of the innermost ``if`` around ``node`` (below ``stop``)."""
    cur = node
    while cur is not None and cur is not stop:
        parent = idx.parents.get(id(cur))
        if isinstance(parent, ast.If) and cur is not parent.test:
            return parent.test
        if isinstance(parent, ast.IfExp) and cur is not parent.test:
            return parent.test
        cur = parent
    return None


def feeds_training(ctx, fn: FunctionInfo) -> bool:
    """Does a caller of ``fn`` backpropagate what it returns (``_feeds_training``)?"""
    return _memo(ctx, ("feeds-training", id(fn)), lambda: _feeds_training(ctx, fn), False)


def _feeds_training(ctx, fn: FunctionInfo, depth: int = 0) -> bool:
    """Does a call of ``fn`` hand its result to a ``.backward()`` target of
    the caller, or to a call of a function of its module that runs a
    training step, or to a value the caller returns to a call that does (two
    calls up at most)?  Module-local callers are read here; callers in other
    modules through the project index."""
    for caller, seq in call_sites(ctx, fn):
        names = _result_names(ctx, caller, seq)
        if not names:
            continue
        # ``batch = f()``, then ``gt, log_probs = batch["gt"], batch["log_probs"]``: followed through tuples
        if names & caller.feeds_backward(holders=True, unpacked=True):
            return True
        if _feeds_a_training_call(ctx, caller, seq, names):
            return True  # ``fake = self.generate_pair(...)``, then ``self.update_critic(fake)``
        if depth < 1 and caller.function is not None and names & caller.feeds_return():
            if _memo(ctx, ("feeds-training", id(caller.function)),
                     lambda c=caller.function: _feeds_training(ctx, c, depth + 1), False):
                return True
    # last: a caller in another module (a base class's ``train``) may run the backward
    return ctx.backpropagated_elsewhere(fn)


def _feeds_a_training_call(ctx, caller: Scope, seq: int, names: Set[str]) -> bool:
    """Does a value made from ``names`` (bound by the call at ``seq``) go,
    later in ``caller``, to a call of a module-local function that runs a
    training step?"""
    for call_seq, key in caller.local_calls:
        node = ctx.flow.nodes.get(call_seq)
        if call_seq <= seq or node is None:
            continue
        args = {n for a in (*node.args, *(k.value for k in node.keywords)) for n in names_in(a, split=False)}
        if not args or not names & caller.feeds(args):
            continue
        if any(s is not caller and _trains_once(ctx, s) for s in callees(ctx, caller, key)):
            return True
    return False


def _result_names(ctx, scope: Scope, seq: int) -> Set[str]:
    """The names the result of the call at ``seq`` goes to: ``a, b = f()``,
    ``outputs.update(f())``, ``items.append(f())``."""
    node = ctx.flow.nodes.get(seq)
    if node is None:
        return set()
    parent = _index(ctx, scope).parents.get(id(node))
    if isinstance(parent, ast.Assign) and parent.value is node:
        out: Set[str] = set()
        for target in parent.targets:
            elts = target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target]
            out.update(e.id for e in elts if isinstance(e, ast.Name))
        return out
    if (
        isinstance(parent, ast.Call) and node in parent.args and isinstance(parent.func, ast.Attribute)
        and parent.func.attr in ("update", "append", "extend") and isinstance(parent.func.value, ast.Name)
    ):
        return {parent.func.value.id}
    return set()


def _result_used(ctx, scope: Scope, seq: int) -> bool:
    """Is the value of the call made at ``seq`` in ``scope`` used (not a bare
    statement like ``sample_images(epoch)``)?"""
    node = ctx.flow.nodes.get(seq)
    bare = _memo(ctx, ("bare-calls", id(scope)), lambda: _bare_calls(ctx, scope), ())
    return node is not None and id(node) not in bare


def _bare_calls(ctx, scope: Scope) -> Set[int]:
    """The values of the expression statements of ``scope``'s own code, by
    ``id``: statements are walked, not expressions (far fewer nodes than
    ``_Index`` walks)."""
    root: ast.AST = scope.function.node if scope.function is not None else ctx.tree
    found: Set[int] = set()
    todo: List[ast.AST] = list(getattr(root, "body", ()))
    while todo:
        stmt = todo.pop()
        cls = stmt.__class__
        if cls is ast.Expr:
            found.add(id(stmt.value))  # type: ignore[attr-defined]
        elif cls not in _OWN_SCOPES:
            for field in ("body", "orelse", "finalbody", "handlers", "cases"):
                todo.extend(getattr(stmt, field, ()))
    return found


# --- forwards whose output is only saved, plotted or logged ---------------------


def logged_forwards(ctx) -> List[Tuple[ModelCall, ast.stmt]]:
    """Model calls in a training loop whose output only goes to save, plot or
    log helpers (``save_image(generator(z).data, ...)``), with the statement
    that makes each."""
    out = []
    seen: Set[int] = set()
    for loop in reversed(ctx.flow.loops):  # innermost loops first
        for call in loop.model_calls:
            if id(call) in seen:
                continue
            seen.add(id(call))
            if not is_model_call(ctx, call) or not _in_training_loop(ctx, loop):
                continue
            scope = loop.scope
            if in_module_method(ctx, scope) or is_hook(scope, ctx) or is_pytest_test(scope, ctx):
                continue
            idx = _loop_index(ctx, loop)
            shown = _only_shown(ctx, idx, call.node, 0) if id(call.node) in idx.parents else None
            if shown is None:  # a name read outside the loop: the whole function's index
                idx = _index(ctx, scope)
                shown = _only_shown(ctx, idx, call.node, 0)
            if shown and not never_runs(ctx, scope):
                stmt = call.node
                while stmt is not None and not isinstance(stmt, ast.stmt):
                    stmt = idx.parents.get(id(stmt))
                if stmt is not None:
                    out.append((call, stmt))
    return out


def _in_training_loop(ctx, loop: Optional[Loop]) -> bool:
    while loop is not None:
        if _memo(ctx, ("loop-trains", id(loop)), lambda lp=loop: trains(ctx, lp), False):
            return True
        loop = loop.parent
    return False


#: Callees that only save, plot or log what they are given.
_SHOW_CALLS = frozenset(
    {
        "save_image", "imsave", "imwrite", "savefig", "imshow", "add_image", "add_images", "add_figure",
        "add_video", "add_histogram", "add_embedding", "log_image", "log_images",
    }
)
_SHOW_WORDS = frozenset({"save", "plot", "show", "visualize", "visualise", "draw", "display"})
_LOGGER_WORDS = frozenset({"writer", "logger", "wandb", "tb", "summary", "tensorboard", "mlflow", "neptune", "visdom"})
#: Callees that pass a tensor on (``make_grid``, ``torch.cat``) towards a sink.
_PASS_ON = frozenset({"make_grid", "cat", "stack", "clamp", "denorm", "denormalize", "to_img", "tensor2im"})


def _shows(ctx, call: ast.Call) -> Optional[bool]:
    """True: ``call`` saves/plots/logs its arguments; None: it passes them on;
    False: anything else."""
    func = call.func
    last = last_name(func)
    qual = ctx.imports.resolve(func) or ""
    if last in _SHOW_CALLS:
        return True
    if last in _PASS_ON:
        return None
    if qual.startswith("torch.") and not qual.startswith("torchvision."):
        return False
    if any(t in _SHOW_WORDS for t in tokens(last)):
        return True
    if isinstance(func, ast.Attribute):
        owner = dotted(func.value) or ""
        if any(t in _LOGGER_WORDS for t in tokens(owner.rsplit(".", 1)[-1])):
            return True
    return False


def _only_shown(ctx, idx: _Index, node: ast.AST, depth: int) -> Optional[bool]:
    """Does ``node``'s value only go to save, plot or log calls, directly or
    through names assigned from it (two at most)?  None: ``idx`` covers one
    loop and a name's reads may be outside it."""
    cur = node
    while True:
        parent = idx.parents.get(id(cur))
        if isinstance(parent, (ast.Attribute, ast.Subscript, ast.BinOp, ast.UnaryOp, ast.List, ast.Tuple,
                               ast.Starred, ast.keyword)):
            cur = parent
            continue
        if isinstance(parent, ast.Call):
            if parent.func is cur:
                cur = parent  # a method of the output: out.cpu()
                continue
            verdict = _shows(ctx, parent)
            if verdict is None:
                cur = parent
                continue
            return verdict
        if isinstance(parent, ast.Assign) and parent.value is cur and depth < 2:
            uses: List[ast.Name] = []
            for target in parent.targets:
                if not isinstance(target, ast.Name):
                    return False
                found = idx.uses(target.id)
                if found is None:
                    return None
                uses.extend(found)
            if not uses:
                return False
            verdicts = [_only_shown(ctx, idx, use, depth + 1) for use in uses]
            return False if False in verdicts else None if None in verdicts else True
        return False


def mode_events(ctx, scope: Scope, lo: int, hi: int) -> List[Tuple[int, str]]:
    """Mode switches and training steps that run between ``lo`` and ``hi`` in
    ``scope``, in order, as ``(site, kind)``: kind is ``"eval"``, ``"train"``
    or ``"step"``; ``site`` is the sequence number of the call in ``scope``
    that makes it happen (a call of a module-local function stands for every
    event of that function's body).  ``.train(flag)`` counts as ``"train"``."""
    raw: List[Tuple[int, object]] = [(s, "eval") for s in scope.eval_switches if lo < s < hi]
    raw += [(s, "train") for s in scope.train_switches + scope.maybe_train_switches if lo < s < hi]
    raw += [(s, "step") for s in scope.training_steps if lo < s < hi]
    raw += [(s, key) for s, key in scope.local_calls if lo < s < hi]
    if _manages_several_models(ctx, scope, lo, hi):
        raw = [e for e in raw if e[1] != "eval"]
    out: List[Tuple[int, str]] = []
    for site, event in sorted(raw, key=lambda e: e[0]):
        if isinstance(event, str):
            out.append((site, event))
            continue
        for callee in ctx.scopes_of(event):
            if callee is not scope:
                body = _memo(ctx, ("events", id(callee)), lambda c=callee: mode_events(ctx, c, 0, _WHOLE), [])
                out.extend((site, kind) for _, kind in body)
    return out


def restores_mode(ctx, scope: Scope) -> bool:
    """Does ``scope``'s function save a model's mode (``was_training =
    model.training``) and put it back (``if was_training: model.train()
    else: model.eval()``, or ``model.train(was_training)``)?  Its switches
    leave the mode as the caller had it.  Asked once per function."""
    return _memo(ctx, ("restores-mode", id(scope)), lambda: _restores_mode(scope), False)


def _restores_mode(scope: Scope) -> bool:
    fn = scope.function
    if fn is None:
        return False
    saved: Set[str] = set()
    for node in ast.walk(fn.node):
        if (
            node.__class__ is ast.Assign and len(node.targets) == 1 and node.targets[0].__class__ is ast.Name
            and node.value.__class__ is ast.Attribute and node.value.attr == "training"
        ):
            saved.add(node.targets[0].id)
    if not saved:
        return False
    for node in ast.walk(fn.node):
        if node.__class__ is ast.Call and node.func.__class__ is ast.Attribute and node.func.attr == "train" and (
            any(arg.__class__ is ast.Name and arg.id in saved for arg in node.args)
        ):
            return True  # ``model.train(was_training)``
        if node.__class__ is ast.If:
            test = node.test.operand if node.test.__class__ is ast.UnaryOp else node.test
            if test.__class__ is ast.Name and test.id in saved and _switches(node.body) and _switches(node.orelse):
                return True
    return False


def _switches(body: List[ast.stmt]) -> bool:
    """Is ``body`` one ``x.train()`` or ``x.eval()`` statement?"""
    return len(body) == 1 and body[0].__class__ is ast.Expr and body[0].value.__class__ is ast.Call and (
        body[0].value.func.__class__ is ast.Attribute and body[0].value.func.attr in ("train", "eval")
    )


def _manages_several_models(ctx, scope: Scope, lo: int, hi: int) -> bool:
    """``shared.train(); controller.eval()``: code that puts one model in
    training mode and another in eval mode does so on purpose."""
    keys = ctx.flow.switch_keys
    evals = {keys.get(s) for s in scope.eval_switches if lo < s < hi}
    trains = {keys.get(s) for s in scope.train_switches if lo < s < hi}
    return bool(evals and trains and evals != trains)
