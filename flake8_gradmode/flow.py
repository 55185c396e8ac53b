"""What runs where: loops, model calls, training steps and eval-mode switches.

The engine records these facts during its one traversal; rules read them once
the whole module is seen (``Rule.finish``), when module-local callers and
module-wide evidence ("``net.eval()`` is called somewhere, so ``net`` is a
module") are complete.
"""

from __future__ import annotations

import ast
from typing import Dict, FrozenSet, List, NamedTuple, Optional, Set, Tuple

from flake8_gradmode.names import (
    EVAL_FUNCTION_WORDS,
    FRAMEWORK_EVAL_HOOKS,
    is_model_name,
    is_test_file,
    names_in,
    says_eval_data,
    says_eval_function,
    says_inference_function,
    tokens,
)
from flake8_gradmode.tracker import FunctionInfo, Grad


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
        #: name -> the values assigned to it (``names_in`` of them, when asked)
        self.deps: Dict[str, List[ast.expr]] = {}
        #: the values of ``return`` statements
        self.return_values: List[ast.expr] = []
        #: calls of module-local functions/methods: (seq, key)
        self.local_calls: List[Tuple[int, Tuple[str, ...]]] = []
        self.training_step = False
        self.model_calls: List[ModelCall] = []
        #: names bound in this scope to a model built here (``model = Net()``)
        self.built_models: Set[str] = set()
        self.loops: List["Loop"] = []

    def returned(self) -> Set[str]:
        """The identifiers used in the values the function returns."""
        return {name for value in self.return_values for name in names_in(value, split=False)}

    def feeds_backward(self) -> Set[str]:
        """Every name whose value flows into a ``.backward()`` target here."""
        seen = set(self.backward_names)
        todo = list(seen)
        while todo:
            for value in self.deps.get(todo.pop(), ()):
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
        #: the loop counts (``for i in range(...)``, ``while``) rather than iterating data
        self.counts = False
        self.training_step = False
        #: calls of module-local functions/methods: (seq, key)
        self.local_calls: List[Tuple[int, Tuple[str, ...]]] = []
        self.model_calls: List[ModelCall] = []

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
        #: names of classes (in this file) that subclass an nn.Module-like base
        self.module_classes: Set[str] = set()
        #: class name -> it switches something to eval mode in ``__init__``
        self.class_init_eval: Set[str] = set()
        #: the file shows that training/eval mode changes something: it builds
        #: dropout or batch-norm layers, reads ``self.training``, or switches
        #: models with ``.train()`` itself
        self.mode_matters = False
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
    owner, _, last = key.rpartition(".")
    if owner in ("self", "cls") and last in _memo(ctx, ("methods",), lambda: _method_names(ctx), frozenset()):
        return False  # a method of the class: self.eval_model(...)
    if key in flow.module_evidence:
        return True
    if last[:1].isupper():
        return False  # a constructor: Model(cfg)
    if key in flow.module_classes:
        return True
    return is_model_name(key, ctx.settings.model_names)


def _method_names(ctx) -> FrozenSet[str]:
    return frozenset(k[-1] for k in ctx.functions if k[0] == "method")


def is_hook(scope: Scope, ctx) -> bool:
    """Framework code that already runs with grad off and in eval mode."""
    fn = scope.function
    while fn is not None:
        if fn.name in FRAMEWORK_EVAL_HOOKS or fn.name in ctx.flow.framework_callbacks:
            return True
        fn = fn.parent
    return False


def is_pytest_test(scope: Scope, ctx) -> bool:
    """Code in test files: grad mode of a unit test's forward pass is moot."""
    return is_test_file(ctx.filename, ctx.flow.test_framework)


def trains(ctx, scope_or_loop) -> bool:
    """Does the loop (or function) run a training step, directly or through a
    module-local function it calls?"""
    if scope_or_loop.training_step:
        return True
    for _, key in scope_or_loop.local_calls:
        for scope in ctx.scopes_of(key):
            if scope is not scope_or_loop and _memo(ctx, ("trains", id(scope)), lambda s=scope: trains(ctx, s), False):
                return True
    return False


def evaluation_intent(ctx, loop: Loop) -> Optional[str]:
    """Why this loop looks like evaluation: 'data', 'function' or 'eval-mode'."""
    settings = ctx.settings
    if says_eval_data(loop.iter_tokens, settings.eval_names):
        return "data"
    fn = loop.scope.function
    if fn is not None and says_eval_function(fn.name, settings.eval_names):
        words = {t for t in tokens(fn.name) if t in EVAL_FUNCTION_WORDS or t in settings.eval_names}
        # ``def test():`` looping over range(...) is a smoke check, not a test-set pass
        if not (words <= {"test", "testing"} and loop.counts):
            return "function"
    if eval_switch_before(ctx, loop.scope, loop.seq):
        return "eval-mode"
    return None


def eval_switch_before(ctx, scope: Scope, seq: int) -> bool:
    """Is some model switched to eval mode in ``scope`` before ``seq``, directly
    or by a module-local function called before it?"""
    if any(s < seq for s in scope.eval_switches):
        return True
    for call_seq, key in scope.local_calls:
        if call_seq >= seq:
            break
        for callee in ctx.scopes_of(key):
            if callee is not scope and _memo(
                ctx, ("switches", id(callee)), lambda c=callee: eval_switch_before(ctx, c, _WHOLE), False
            ):
                return True
    return False


def mode_before(ctx, scope: Scope, seq: int) -> Optional[str]:
    """The last mode switch before ``seq`` in ``scope``: ``"eval"``, ``"train"``
    or None.  A call of a module-local function counts with the last switch
    its body makes."""
    events: List[Tuple[int, object]] = [(s, "eval") for s in scope.eval_switches if s < seq]
    events += [(s, "train") for s in scope.train_switches if s < seq]
    events += [(s, key) for s, key in scope.local_calls if s < seq]
    for _, event in sorted(events, key=lambda e: e[0], reverse=True):
        if isinstance(event, str):
            return event
        for callee in ctx.scopes_of(event):
            if callee is not scope:
                mode = _memo(ctx, ("final", id(callee)), lambda c=callee: mode_before(ctx, c, _WHOLE), None)
                if mode is not None:
                    return mode
    return None


def eval_mode_on_entry(ctx, scope: Scope, _seen: Optional[Set[int]] = None) -> Optional[bool]:
    """Is a model in eval mode when ``scope`` starts?  True: every module-local
    caller leaves it in eval mode before the call.  False: a caller leaves it in
    training mode (or is top-level code that never switched).  None: callers
    are not all visible."""
    fn = scope.function
    if fn is None:
        return False  # top-level code: nothing runs before it
    if fn.escaped or fn.key is None:
        return None
    sites = ctx.call_sites.get(fn.key, [])
    if not sites:
        return None
    seen = _seen if _seen is not None else set()
    if id(scope) in seen:
        return None
    seen.add(id(scope))
    verdicts = set()
    for caller, seq in sites:
        mode = mode_before(ctx, caller, seq)
        if mode is None:
            verdicts.add(eval_mode_on_entry(ctx, caller, seen))
        else:
            verdicts.add(mode == "eval")
    seen.discard(id(scope))
    if False in verdicts:
        return False
    if None in verdicts:
        return None
    return True


class EvalLoop(NamedTuple):
    loop: Loop
    intent: str
    model_calls: List[ModelCall]


def evaluation_loops(ctx) -> List[EvalLoop]:
    """Every loop that runs a model forward, trains nothing and shows
    evaluation intent, outside framework hooks and pytest tests."""
    out = []
    for loop in ctx.flow.loops:
        calls = [c for c in loop.model_calls if is_model_call(ctx, c)]
        if not calls or is_hook(loop.scope, ctx) or is_pytest_test(loop.scope, ctx):
            continue
        if trains(ctx, loop):
            continue
        intent = evaluation_intent(ctx, loop)
        if intent is not None:
            out.append(EvalLoop(loop, intent, calls))
    return out


def inference_functions(ctx) -> List[Tuple[Scope, List[ModelCall]]]:
    """Functions named like inference that call a model after putting it in
    eval mode (in the function or the class's ``__init__``) and train nothing."""
    out = []
    for scope in ctx.flow.all_scopes:
        fn = scope.function
        if fn is None or not says_inference_function(fn.name):
            continue
        if is_hook(scope, ctx) or is_pytest_test(scope, ctx) or trains(ctx, scope):
            continue
        calls = [c for c in scope.model_calls if is_model_call(ctx, c)]
        if not calls:
            continue
        in_init = scope.class_name is not None and scope.class_name in ctx.flow.class_init_eval
        if in_init or any(s < calls[0].seq for s in scope.eval_switches):
            out.append((scope, calls))
    return out


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


def _manages_several_models(ctx, scope: Scope, lo: int, hi: int) -> bool:
    """``shared.train(); controller.eval()``: code that puts one model in
    training mode and another in eval mode does so on purpose."""
    keys = ctx.flow.switch_keys
    evals = {keys.get(s) for s in scope.eval_switches if lo < s < hi}
    trains = {keys.get(s) for s in scope.train_switches if lo < s < hi}
    return bool(evals and trains and evals != trains)
