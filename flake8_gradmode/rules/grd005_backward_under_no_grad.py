from __future__ import annotations

from typing import TYPE_CHECKING, Callable, FrozenSet, List, Optional, Sequence, Tuple

import ast

from flake8_gradmode import facts, flow
from flake8_gradmode.facts import NOT_CONSTANT, NOT_PASSED, UNKNOWN, call_shape, passed
from flake8_gradmode.tracker import (
    FunctionInfo, Grad, dotted, effective, first_or_keyword, last_name, param_defaults, positional_params,
)
from flake8_gradmode.rule import Holds, Invalid, Raises, Rule, Valid

if TYPE_CHECKING:
    from flake8_gradmode.facts import Shape

_AUTOGRAD_CALLS = {"torch.autograd.backward": "tensors", "torch.autograd.grad": "outputs"}
_COMPUTED = (ast.Call, ast.BinOp, ast.UnaryOp)


class BackwardUnderNoGrad(Rule):
    code = "GRD005"
    name = "backward-under-no-grad"
    triggers = ("backward", "autograd")
    summary = "`.backward()` or `autograd.grad` on a value computed with grad disabled"
    what = """
        Reports `.backward()`, `torch.autograd.backward(...)` and
        `torch.autograd.grad(...)` where grad is disabled (`no_grad`,
        `inference_mode`, `set_grad_enabled(False)`, as a block, a decorator,
        or through every module-local caller of the function) and the value
        was computed under that same disabled grad mode (after an `if`, loop
        or `try` whose body calls `torch.set_grad_enabled(...)`, the mode is
        not known, and nothing is reported); and wherever the
        value provably cannot require grad.
    """
    why = """
        A result computed with grad disabled has no `grad_fn`, so backward
        raises `RuntimeError: element 0 of tensors does not require grad and
        does not have a grad_fn`.  The usual cause is a training step moved into
        (or called from) an evaluation block.  The same error, same code, when
        the function's own data flow proves the value cannot require grad: it
        was `.detach()`ed, or it is computed only from tensors made by factory
        functions (`torch.ones`, `torch.randn`, `torch.tensor`, ...) without
        `requires_grad=True`.
    """
    known_problems = """
        `backward()` itself runs fine under `no_grad` when the loss was built
        with grad enabled, so a loss computed before the block is never
        reported, nor is a value whose origin is not visible in the function
        (an attribute, an item of a list, a parameter of the function).  Only
        callers in the same module are followed.  The data-flow proof stays
        within one function and gives up at any call it does not know (a
        model, a helper, a parameter): any unknown input means silence, and
        so does a name the function binds more than once (`aux =
        criterion(...)` in one branch, `aux = 0` in the other).  A
        backward under `if <parameter>:` (`if do_backward:`) is not reported
        when every call of the function the project shows passes a false
        constant for that parameter (or leaves a false default).  In a
        function whose grad mode its callers decide, a backward under a
        test of its parameters (`if mode == "train":`, `if do_backward:`,
        `if phase in ("train",):`) is judged by the calls that can take that
        branch only: reported when each of them runs with grad disabled
        (`run_epoch(model, loader, "test")` under `no_grad` never reaches
        it), across the project's modules with the project index.  Nor is a
        backward behind a test of a loop's target that none of the values of
        the loop's literal list passes (`for name, loader in [("valid", v),
        ("test", t)]:` then `if name == "train":`).  Nor is
        `x.backward()` on an object a class outside `torch` built
        (`criterion = nn.LossMSE()` of a network library written by hand):
        it is that class's own method, not autograd's.  Nor is a value made
        by a function or method of the module that turns grad back on in
        its own body (`critic_loss = self._critic_step(batch)`, whose loss
        is built under `with torch.enable_grad():`): it may well have a
        graph.
    """
    options = ("no_grad_decorators",)
    fix_safety = "No fix is applied: the computation has to move, which only the author can decide."
    references = (
        "https://pytorch.org/docs/stable/notes/autograd.html#locally-disabling-gradient-computation",
    )

    VALID = (
        Valid(
            """
            import torch

            model = torch.nn.Linear(4, 1)
            loss = model(torch.randn(8, 4)).pow(2).mean()
            loss.backward()
            """,
            checks=(Holds("model.weight.grad is not None", "gradients are computed"),),
        ),
        Valid(
            """
            import torch

            model = torch.nn.Linear(4, 1)
            loss = model(torch.randn(8, 4)).pow(2).mean()
            with torch.no_grad():
                loss.backward()
            """,
            title="The loss was built with grad enabled: backward works under no_grad",
            checks=(Holds("model.weight.grad is not None", "gradients are computed"),),
        ),
        Valid(
            """
            import torch

            model = torch.nn.Linear(4, 1)


            def loss_of(x):
                with torch.enable_grad():
                    return model(x).pow(2).mean()


            with torch.no_grad():
                loss = loss_of(torch.randn(8, 4))
                loss.backward()
            """,
            title="A function of the module turns grad back on to build the loss",
            checks=(Holds("model.weight.grad is not None", "gradients are computed"),),
        ),
        Valid(
            """
            import torch

            model = torch.nn.Linear(4, 1)


            def penalty(out):
                if out.requires_grad:
                    out.pow(2).mean().backward()


            with torch.no_grad():
                penalty(model(torch.randn(8, 4)))
            """,
            title="A backward taken only when the value requires grad",
            checks=(Holds("model.weight.grad is None", "the guarded branch is not taken under no_grad"),),
        ),
        Valid(
            """
            import torch

            model = torch.nn.Linear(4, 1)
            with torch.no_grad():
                with torch.enable_grad():
                    loss = model(torch.randn(8, 4)).sum()
                    loss.backward()
            """,
            checks=(Holds("model.weight.grad is not None", "gradients are computed"),),
        ),
        Valid(
            """
            import torch

            model = torch.nn.Linear(4, 1)
            phase = "train"
            with torch.set_grad_enabled(phase == "train"):
                loss = model(torch.randn(8, 4)).sum()
                if phase == "train":
                    loss.backward()
            """,
            title="Grad mode that depends on a run-time value is not guessed",
            checks=(Holds("model.weight.grad is not None", "gradients are computed"),),
        ),
        Valid(
            """
            import torch

            x = torch.ones(5)
            x.requires_grad_()
            y = 2 * torch.dot(x, x)
            y.backward()
            """,
            title="A factory tensor that was made a leaf requiring grad",
            checks=(Holds("x.grad is not None", "gradients are computed"),),
        ),
        Valid(
            """
            import torch


            def run_epoch(model, x, mode):
                loss = model(x).pow(2).mean()
                if mode == "train":
                    loss.backward()
                return loss.item()


            model = torch.nn.Linear(4, 1)
            with torch.no_grad():
                test_loss = run_epoch(model, torch.randn(8, 4), "test")
            """,
            title="A backward step no call under `no_grad` can reach",
            checks=(Holds("model.weight.grad is None and test_loss >= 0", "the test pass runs, asking no gradient"),),
        ),
        Valid(
            """
            import torch

            model = torch.nn.Linear(4, 1)
            losses = {}
            for name, x in [("valid", torch.randn(8, 4)), ("test", torch.randn(8, 4))]:
                with torch.no_grad():
                    loss = model(x).pow(2).mean()
                    if name == "train":
                        loss.backward()
                losses[name] = loss.item()
            """,
            title="A backward step behind a test the loop's values never pass",
            checks=(Holds("sorted(losses) == ['test', 'valid']", "both passes run without error"),),
        ),
        Valid(
            """
            import torch


            def refine(model, x, normals):
                if normals:
                    torch.set_grad_enabled(True)
                    x.requires_grad_()
                out = model(x).sum()
                if normals:
                    out.backward()
                return x.grad


            with torch.no_grad():
                grad = refine(torch.nn.Linear(4, 1), torch.randn(8, 4), True)
            """,
            title="Grad turned back on by a `set_grad_enabled` statement in an `if`: the mode outlives the block",
            checks=(Holds("grad is not None and torch.is_grad_enabled()", "the gradient is computed, and "
                          "leaving `no_grad` puts back the mode it found"),),
        ),
    )
    INVALID = (
        Invalid(
            """
            import torch

            model = torch.nn.Linear(4, 1)
            x = torch.randn(8, 4)
            with torch.no_grad():
                loss = model(x).pow(2).mean()
                loss.backward()
            """,
            at=((7, 4),),
            symptom=Raises("RuntimeError", "element 0 of tensors does not require grad and does not have a grad_fn"),
        ),
        Invalid(
            """
            import torch


            @torch.inference_mode()
            def step(model, x):
                model(x).sum().backward()


            step(torch.nn.Linear(4, 1), torch.randn(8, 4))
            """,
            title="Under a decorator",
            at=((6, 4),),
            symptom=Raises("RuntimeError", "does not require grad and does not have a grad_fn"),
        ),
        Invalid(
            """
            import torch


            def fit_step(model, x):
                loss = model(x).sum()
                loss.backward()


            model = torch.nn.Linear(4, 1)
            with torch.no_grad():
                fit_step(model, torch.randn(8, 4))
            """,
            title="Every caller in the module disables grad",
            at=((6, 4),),
            symptom=Raises("RuntimeError", "does not require grad and does not have a grad_fn"),
        ),
        Invalid(
            """
            import torch


            def run_epoch(model, x, mode):
                loss = model(x).pow(2).mean()
                if mode == "train":
                    loss.backward()
                return loss.item()


            model = torch.nn.Linear(4, 1)
            with torch.no_grad():
                run_epoch(model, torch.randn(8, 4), "train")
            """,
            title="A backward step a call under `no_grad` reaches",
            at=((7, 8),),
            symptom=Raises("RuntimeError", "does not require grad and does not have a grad_fn"),
        ),
        Invalid(
            """
            import torch

            model = torch.nn.Linear(4, 1)
            torch.set_grad_enabled(False)
            out = model(torch.randn(8, 4)).sum()
            grads = torch.autograd.grad(out, [model.weight])
            """,
            title="`autograd.grad` after `set_grad_enabled(False)`",
            at=((6, 8),),
            symptom=Raises("RuntimeError", "does not require grad and does not have a grad_fn"),
        ),
        Invalid(
            """
            import torch

            x = torch.ones(5)
            y = 2 * torch.dot(x, x)
            y.backward()
            """,
            title="Only factory-made tensors without `requires_grad=True`",
            at=((5, 0),),
            symptom=Raises("RuntimeError", "does not require grad and does not have a grad_fn"),
        ),
        Invalid(
            """
            import torch

            model = torch.nn.Linear(4, 1)
            out = model(torch.randn(8, 4)).detach()
            out.sum().backward()
            """,
            title="A detached value",
            at=((5, 0),),
            symptom=Raises("RuntimeError", "does not require grad and does not have a grad_fn"),
        ),
    )

    def __init__(self, context) -> None:
        super().__init__(context)
        #: the conditions of the ``if`` bodies around the current node (None in an ``else``)
        self._guards: List[Optional[ast.expr]] = []
        #: the ``for`` loops whose bodies hold the current node, innermost last
        self._loops: List[ast.For] = []

    def visit_Call(self, node: ast.Call) -> None:
        value = self._differentiated(node)
        if value is None:
            return
        if any(test is not None and _taken_only_with_grad(test, self._loops) for test in self._guards):
            return  # ``if preds.requires_grad: ... .backward()``: taken only when there is a graph
        written = self.code_of(node.func)
        if facts.python_number(self.context, value):
            return  # ``loss = 0`` ... ``loss.backward()``: no tensor at all, another mistake
        if facts.cannot_require_grad(self.context, value):
            self.report(
                node,
                f"`{written}()` on a value that cannot require grad (made only from tensors without "
                "`requires_grad=True`, or detached) raises RuntimeError; create the leaf with `requires_grad=True`",
            )
            return
        state, function = self.context.grad_here()
        if state not in (Grad.DISABLED, Grad.INHERITED):
            return
        if not self._computed_here(value, state):
            return
        if self._loops and any(flow.never_holds(test, self._loops) for test in self._guards if test is not None):
            return  # ``for name in ["valid", "test"]: ... if name == "train": loss.backward()``
        message = (
            f"`{written}()` on a value computed with grad disabled raises RuntimeError; "
            "compute it with grad enabled (outside the block, or under `torch.enable_grad()`)"
        )
        flag = _guarding_parameter(self._guards, function)
        ctx = self.context
        made = self._made_by(value)
        maker = ctx.call_key(made.func) if made is not None else None  # asked now: it reads the running function
        if flag is not None and function is not None:
            # ``if do_backward: loss.backward()``: only if a caller can ask for it
            asked = lambda: _may_pass_true(ctx, function, flag) and not _turns_grad_on(ctx, maker)  # noqa: E731
        else:
            asked = lambda: not _turns_grad_on(ctx, maker)  # noqa: E731
        if state is Grad.DISABLED:
            self.report(node, message, condition=asked)
        elif function is not None:
            guards = _parameter_guards(self._guards, function)
            if guards:
                # ``if mode == "train": loss.backward()``: only the calls that can take the branch count
                self.report(
                    node, message,
                    condition=lambda: _branch_runs_without_grad(ctx, function, guards) and asked(),
                )
                return
            self.report(
                node, message, condition=lambda: effective(Grad.INHERITED, function) is Grad.DISABLED and asked()
            )

    def visit_If_body(self, node: ast.If) -> None:
        self._guards.append(node.test)

    def visit_For_body(self, node: ast.For) -> None:
        self._loops.append(node)

    def leave_For_body(self, node: ast.For) -> None:
        self._loops.pop()

    def leave_If_body(self, node: ast.If) -> None:
        self._guards.pop()

    def visit_If_orelse(self, node: ast.If) -> None:
        self._guards.append(None)

    def leave_If_orelse(self, node: ast.If) -> None:
        self._guards.pop()

    def _differentiated(self, call: ast.Call) -> Optional[ast.expr]:
        """The tensor that gets differentiated by this call, if it is one."""
        func = call.func
        if isinstance(func, ast.Attribute) and func.attr == "backward":
            qual = self.context.imports.resolve(func)
            if qual == "torch.autograd.backward":
                return first_or_keyword(call, "tensors")
            if _built_by_a_class_outside_torch(self.context, func.value):
                return None  # ``criterion = nn.LossMSE()`` of a hand-written library: its own ``backward``
            return func.value
        if not self.context.imports.may_end_with(func, ("grad", "backward")):
            return None  # not one of _AUTOGRAD_CALLS, whatever it resolves to
        qual = self.context.imports.resolve(func) or ""
        name = _AUTOGRAD_CALLS.get(qual)
        return first_or_keyword(call, name) if name else None

    def _made_by(self, value: ast.expr) -> Optional[ast.Call]:
        """The call that computed ``value``: itself, or the call its name was
        bound to in this scope."""
        if isinstance(value, ast.Call):
            return value
        if isinstance(value, ast.Name):
            binding = self.context.grad.frame.names.get(value.id)
            made = getattr(binding, "value", None)
            return made if isinstance(made, ast.Call) else None
        return None

    def _computed_here(self, value: ast.expr, state: Grad) -> bool:
        """Was ``value`` computed in this scope under the current grad state?"""
        if isinstance(value, _COMPUTED):
            return facts.classify(self.context, value) is not facts.Kind.PARAM
        if isinstance(value, ast.Name):
            binding = self.context.grad.frame.names.get(value.id)
            return (
                isinstance(binding, facts.Binding)
                and binding.state is state
                and isinstance(binding.value, _COMPUTED)
                and binding.kind is not facts.Kind.PARAM
            )
        return False


def _taken_only_with_grad(test: ast.expr, loops: Sequence[ast.For]) -> bool:
    """Does the ``if`` test ``test`` hold only when a graph can be made:
    it reads ``x.requires_grad`` (not of a parameter a loop of ``loops``
    takes from ``.parameters()``, which requires grad whatever the mode) or
    calls ``torch.is_grad_enabled()``, alone or as one operand of ``and``?"""
    if isinstance(test, ast.BoolOp):
        return isinstance(test.op, ast.And) and any(_taken_only_with_grad(value, loops) for value in test.values)
    if isinstance(test, ast.Attribute):
        return test.attr == "requires_grad" and not (
            isinstance(test.value, ast.Name) and any(
                isinstance(loop.iter, ast.Call) and isinstance(loop.iter.func, ast.Attribute)
                and loop.iter.func.attr.endswith("parameters")
                and any(isinstance(n, ast.Name) and n.id == test.value.id for n in ast.walk(loop.target))
                for loop in loops
            )
        )
    return isinstance(test, ast.Call) and not test.args and dotted(test.func) in _GRAD_ENABLED_TESTS


#: Calls that say whether grad is on here.
_GRAD_ENABLED_TESTS = frozenset({"torch.is_grad_enabled", "is_grad_enabled"})


def _turns_grad_on(ctx, key: Optional[Tuple[str, ...]]) -> bool:
    """Is ``key`` (``Context.call_key`` of a call) a function or method of
    the module that turns grad back on in its own body (``with
    torch.enable_grad():``, a ``torch.set_grad_enabled(True)`` statement,
    ``@torch.enable_grad()``)?  What it returns may well be computed with
    grad: ``critic_loss = self._critic_step(batch)`` whose loss is built
    under ``enable_grad``.  Asked once the module is seen, so a method
    defined later counts."""
    return key is not None and any(_enables_grad(ctx, info.node) for info in ctx.functions.get(key, ()))


def _enables_grad(ctx, fn: ast.AST) -> bool:
    grad, imports = ctx.grad, ctx.imports
    if any(grad.effect(imports, d) is Grad.ENABLED for d in getattr(fn, "decorator_list", ())):
        return True
    for node in facts.own_nodes(fn):
        if node.__class__ in (ast.With, ast.AsyncWith):
            if any(grad.effect(imports, item.context_expr) is Grad.ENABLED for item in node.items):  # type: ignore
                return True
        elif node.__class__ is ast.Expr and grad.statement_effect(imports, node) is Grad.ENABLED:  # type: ignore
            return True
    return False


def _built_by_a_class_outside_torch(ctx, receiver: ast.expr) -> bool:
    """Is ``receiver`` a name bound to an object a class call built
    (``criterion = nn.LossMSE()``), the class not ``torch``'s?  Such an
    object is no tensor: its ``backward()`` is a method of its own (a
    network library written by hand), not autograd's."""
    if not isinstance(receiver, ast.Name):
        return False
    binding = ctx.lookup(receiver.id)
    value = getattr(binding, "value", None)
    if not isinstance(value, ast.Call):
        return False
    func = value.func
    if not last_name(func)[:1].isupper():
        return False
    qual = ctx.imports.resolve(func) or ""
    if not qual:
        return isinstance(func, ast.Name) and func.id in ctx.class_bases  # a class of the module
    return qual.partition(".")[0] != "torch"


def _guarding_parameter(guards: Sequence[Optional[ast.expr]], function: Optional[FunctionInfo]) -> Optional[str]:
    """A parameter of ``function`` that an enclosing ``if`` tests by name
    (``if do_backward:``, ``if do_backward and ...:``)."""
    if function is None:
        return None
    found = [guard[0] for guard in _parameter_guards(guards, function) if guard[1] is None]
    return found[0] if found else None


#: A test of one parameter in an enclosing ``if``: the parameter, and the
#: constants that make it hold (None: any true value; with ``negated``, the
#: constants that make it fail)
_Guard = Tuple[str, Optional[FrozenSet[object]], bool]


def _parameter_guards(guards: Sequence[Optional[ast.expr]], function: FunctionInfo) -> List[_Guard]:
    """The tests of ``function``'s own parameters by the ``if`` bodies around
    the statement (``if do_backward:``, ``if mode == "train":``, ``if phase
    in ("train",):``, ``if mode != "test":``, and each part of an ``and``)."""
    args = function.node.args
    params = {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]}
    return [guard for test in guards if test is not None for guard in flow.name_tests(test) if guard[0] in params]


def _holds(guard: _Guard, value: object) -> bool:
    """May ``guard`` hold when its parameter is ``value`` (a constant, or
    ``NOT_CONSTANT`` / ``UNKNOWN`` for anything)?"""
    _, values, negated = guard
    if value is NOT_CONSTANT or value is UNKNOWN:
        return True
    if values is None:
        return bool(value)
    return (value in values) != negated


def _admitting(function: FunctionInfo, guards: List[_Guard]) -> Callable[[Shape], bool]:
    """Whether a call of ``function`` of a given shape (``facts.Shape``)
    may pass arguments that make every guard hold: what it passes, else
    the parameter's default."""
    positional = positional_params(function.node, function.class_name is not None)
    defaults = param_defaults(function.node.args)

    def default_of(name: str) -> object:
        value = defaults.get(name)
        return value.value if isinstance(value, ast.Constant) else NOT_CONSTANT if value is not None else UNKNOWN

    def admits(shape: Shape) -> bool:
        for guard in guards:
            name = guard[0]
            value = passed(shape, name, positional.index(name) if name in positional else None)
            if value is NOT_PASSED:
                value = default_of(name)
            if not _holds(guard, value):
                return False
        return True

    return admits


def _branch_runs_without_grad(ctx, function: FunctionInfo, guards: List[_Guard]) -> bool:
    """Does every call that can take the guarded branch run ``function``
    with grad disabled (and some call take it)?  The project's calls when
    there is an index (``entry_from_project`` with the calls it admits),
    else this module's."""
    admits = _admitting(function, guards)
    entry = ctx.entry_from_project(function, admits)
    if entry is not Grad.INHERITED:
        return entry is Grad.DISABLED
    if function.escaped or function.by_name or function.key is None:
        return False
    states = []
    for caller, seq in ctx.call_sites.get(function.key, ()):
        call = ctx.flow.nodes.get(seq)
        if not isinstance(call, ast.Call) or not admits(call_shape(call)):
            continue
        states.append(effective(ctx.flow.call_states.get(seq, Grad.UNKNOWN), caller.function))
    return bool(states) and all(state is Grad.DISABLED for state in states)


def _may_pass_true(ctx, function: FunctionInfo, flag: str) -> bool:
    """Can a call of ``function`` pass a true ``flag``?  False only when every
    call the project shows passes a false constant for it (or leaves a false
    default), and the function is not used as a value or called by name on
    other objects."""
    if function.escaped or function.by_name or function.key is None:
        return True
    admits = _admitting(function, [(flag, None, False)])
    seen = False
    for _, seq in ctx.call_sites.get(function.key, ()):
        call = ctx.flow.nodes.get(seq)
        if not isinstance(call, ast.Call) or admits(call_shape(call)):
            return True
        seen = True
    for shape in ctx.call_shapes_elsewhere(function, tests=False) or ():
        if admits(shape):
            return True
        seen = True
    return not seen
