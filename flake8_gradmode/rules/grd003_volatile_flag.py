from __future__ import annotations

import ast
from functools import partial
from typing import Callable, Dict, Iterator, List, Optional, Set, Tuple, Union

from flake8_gradmode import flow
from flake8_gradmode.context import Fix
from flake8_gradmode import facts
from flake8_gradmode.facts import NOT_PASSED, UNKNOWN, keyword, passed
from flake8_gradmode.names import CONFIG_NAMES, tokens
from flake8_gradmode.tracker import (
    FunctionInfo, Grad, bound_arguments, dotted, first_value, is_const, param_defaults, positional_params,
)
from flake8_gradmode.rule import Holds, Invalid, Raises, Rule, Valid, Warns

# Owners whose `.volatile` is a setting, not a tensor flag.
_CONFIG_OWNERS = CONFIG_NAMES | {"self", "cls"}
#: Words of a name that holds labels or targets: tensors a loss compares with,
#: which never require grad, so their flag never stopped a graph.
_LABEL_WORDS = frozenset(
    {"target", "targets", "label", "labels", "lbl", "lbls", "gt", "gts", "truth", "ann", "anns", "annotation",
     "annotations"}
)
#: ... unless the name says it is a model's input (pix2pix's ``input_label``
#: map); ``tgt``/``trg`` are left out: a translation's target side is an input
_INPUT_WORDS = frozenset({"input", "inputs"})
_MESSAGE = (
    "has had no effect since PyTorch 0.4 (it only warns) and stops no graph; drop it, and run code that "
    "should build no graph under `with torch.no_grad():`"
)


class VolatileFlag(Rule):
    code = "GRD003"
    name = "volatile-flag"
    triggers = ("volatile",)
    options = ("current_torch",)
    summary = "the removed `volatile=` flag"
    what = """
        Reports the `volatile=` keyword in calls of `torch.autograd.Variable`
        and other `torch` functions, and reads and writes of
        `<tensor>.volatile`.  A helper of the same module that only hands its
        argument on as that flag (`def to_var(x, volatile=False): return
        Variable(x, volatile=volatile)`) makes the flag of its callers dead
        too: `to_var(x, volatile=True)` is reported as well.
    """
    why = """
        `volatile` was removed in PyTorch 0.4.  `Variable(x, volatile=True)`
        only warns and returns a tensor that builds a graph like any other, so
        code written to save memory at inference time now keeps every
        activation; `torch.tensor(..., volatile=True)` raises `TypeError`.
        The replacement is `with torch.no_grad():` around the inference code.
    """
    known_problems = """
        The flag is reported only in a module that calls something PyTorch
        0.4 added: a tensor's `.item()` (which replaced `loss.data[0]`),
        `.to(...)` or `.requires_grad_()`, `torch.device` or `torch.tensor`;
        or in a project whose README, requirements and the like (as read
        below) name only releases from 0.4 on (`torch==1.5.1`), unless the
        module or any module of its project tests `type(h) == Variable`
        (as `repackage_hidden` did for 0.3: it fails from 0.4 on) or reads
        a loss as `loss.data[0]` (0.3's way; it raises from 0.5 on).
        A module with none of them may be code written for 0.3, where
        `volatile=True` did stop the graph; `torch.no_grad` does not count, as
        a module that has it already stops its graphs that way.  So a
        module of 0.3 code that runs on a current release is missed, unless
        `gradmode-current-torch = yes` says that all the linted code does
        (while porting a project written for 0.3).
        A `.volatile` attribute of an object named like a configuration
        (`args`, `opt`, `cfg`, `self`, ...) is taken to be a setting and not
        reported; reads of `.volatile` are reported only on a name bound to a
        `torch` call in the same scope.  A `Variable(..., volatile=True)`
        under `no_grad` is not reported: there is no graph for it to stop;
        nor is one in a function every caller runs under `no_grad` (in this
        module or, with the project index, in another).  A helper's callers are reported only
        when the helper is defined in the same module and uses the argument
        for nothing else.  Such a helper's own `volatile=volatile` is reported
        only when a call may pass it something other than `False` (the
        default `False` is what PyTorch did anyway, and does not even warn):
        a call in the module, or in the project's other modules, that passes
        the flag (of another module's calls, only one that runs with grad
        on: under `no_grad` there is no graph for the flag to stop), or any
        call when the parameter has no `False` default.  A
        call that hands on another such helper's own flag (`np_to_var(a,
        volatile=False)` doing `to_var(t, volatile=volatile)`) passes what
        that helper's callers pass, and is itself reported only then.
        Without a project index, every such helper is reported.  A branch
        that only torch releases before 0.4 run (`if TORCH_VERSION ==
        "0.3":` with `TORCH_VERSION = torch.__version__[:3]`, or `if
        torch.__version__ < "0.4":`, the same on a parsed version,
        `version.parse(torch.__version__) < version.parse("0.4.0")`, or a
        flag named like that check, `if cfg.PYTORCH_VERSION_LESS_THAN_040:`)
        is not read: the flag worked there.  Nor is the `else:` of a test
        that only those releases fail (`if LooseVersion(torch.__version__) >
        LooseVersion("0.3.1"):`, `if torch.__version__ >= "0.4":`, or,
        on `v = torch.__version__.split(".")`, `if int(v[0]) > 0 or
        int(v[1]) >= 4:`).  With
        the project index, code that never runs is not reported, as GRD101
        decides it (see docs/cross-module.md): a module that stops at one of
        its imports (a name its project module lacks), a helper or a method
        nothing in a project that is no package calls.  Nor, with or without
        the index, is a flag after a statement of its function that always
        reads a name the module never binds (`progress = tqdm(loader)` with
        no `tqdm` imported: `NameError` before the loop).
        Nor is the flag reported in a project whose README (`Readme.md` too),
        requirements, `setup.py`, conda environment (any `.yml` file with
        `dependencies:`), shell scripts or `Dockerfile` at its root name only PyTorch
        releases before 0.4 (`torch==0.3.1`, `pytorch=0.2.0`, `| pytorch |
        0.3.1 |`; `pytorch 0.20` is 0.2.0 written without its dot, as no
        0.10 or later was released): there it still worked, and the project
        runs on no later release.  Nor in a file below a directory of its
        project named for such a release (`Non-Local_pytorch_0.3.1/`, kept
        beside a `..._0.4.1/` copy; without a project, a directory of the
        path as given).  A file outside any project, or a project that names no
        version, is read as running a current release.
        Nor is `p.volatile = True` beside `p.requires_grad = False` (or
        `p.requires_grad_(False)`) in the body of a loop (`for p in
        net.parameters():`): the freeze already stops the graph the flag was
        meant to stop.
        The flag on a tensor of labels is not reported: a `Variable(...)`
        bound to a name of labels or targets (`targets = [Variable(a,
        volatile=True) for a in anns]`, `gt = Variable(...)`), or wrapping one
        (`Variable(labels, volatile=True)`), unless the name says it is an
        input (pix2pix's `input_label` map; `tgt`/`trg`, a translation's
        target side, are not taken for labels).  Labels never require grad,
        so the flag never stopped a graph there (it still warns).  A label
        fed to the model (a conditional generator's `label`) is missed.
        Nor is the flag given to `Variable` inside `with torch.no_grad():`
        (or another grad-disabling context, or a function decorated with
        `@torch.no_grad()`): no graph is built there, with the flag or
        without it.
        A literal `volatile=False` given to `Variable`, directly or through
        such a helper, is not reported: it was the default, does not warn
        and nothing relied on it (`torch.tensor(..., volatile=False)` is
        still reported: it raises).
    """
    fix_safety = """
        `flake8-gradmode --fix` drops the `volatile=` keyword, which has had no
        effect since 0.4 (and makes `torch.tensor` raise), also from the calls
        of a helper that only passes it on.  It does not guess
        where `no_grad` belongs: GRD101 reports the evaluation loop that needs
        it.  Reads and writes of `.volatile` are not fixed.
    """
    references = ("https://pytorch.org/blog/pytorch-0_4_0-migration-guide/",)

    VALID = (
        Valid(
            """
            import torch

            model = torch.nn.Linear(4, 2)
            x = torch.randn(3, 4)
            with torch.no_grad():
                out = model(x)
            """,
            checks=(Holds("out.grad_fn is None", "no graph is built"),),
        ),
        Valid(
            """
            from types import SimpleNamespace

            opts = SimpleNamespace(volatile=True)
            if opts.volatile:
                mode = "read-only"
            """,
            title="A setting that happens to be called volatile",
        ),
        Valid(
            """
            import torch
            from torch.autograd import Variable

            model = torch.nn.Linear(4, 2)
            x = Variable(torch.randn(3, 4), volatile=False)
            out = model(x)
            out.sum().backward()
            """,
            title="`volatile=False` given to `Variable`: the default, silent, and the graph is wanted",
            checks=(Holds("model.weight.grad is not None", "training builds its graph as it should"),),
        ),
        Valid(
            """
            import torch
            from torch.autograd import Variable

            model = torch.nn.Linear(4, 2)
            images = torch.randn(3, 4)
            targets = [Variable(t, volatile=True) for t in torch.randn(3, 2)]
            loss = torch.nn.functional.mse_loss(model(images), torch.stack(targets))
            loss.backward()
            """,
            title="The flag on labels: they never require grad, so it never stopped a graph",
            checks=(
                Holds("not any(t.requires_grad for t in targets)", "the labels carry no graph, flag or not"),
                Holds("model.weight.grad is not None", "the loss still trains the model"),
            ),
        ),
        Valid(
            """
            import torch
            from torch.autograd import Variable

            model = torch.nn.Linear(4, 2)
            x = Variable(torch.randn(3, 4), volatile=True)
            scores = model(x).data
            """,
            title="A module that calls nothing PyTorch 0.4 added: code for 0.3, where the flag worked",
            runnable=False,
            why_not_run="it shows code for PyTorch 0.3, where `volatile=True` built no graph; no current release can",
        ),
    )
    INVALID = (
        Invalid(
            """
            import torch
            from torch.autograd import Variable

            model = torch.nn.Linear(4, 2).to("cpu")
            x = Variable(torch.randn(3, 4), volatile=True)
            out = model(x)
            """,
            at=((5, 32),),
            symptom=(
                Warns("UserWarning", "volatile was removed and now has no effect"),
                Holds("out.grad_fn is not None", "the output still carries a graph"),
            ),
        ),
        Invalid(
            """
            import torch

            x = torch.tensor([1.0, 2.0], volatile=True)
            """,
            at=((3, 29),),
            symptom=Raises("TypeError", "unexpected keyword argument 'volatile'"),
        ),
        Invalid(
            """
            import torch

            model = torch.nn.Linear(4, 2).to("cpu")
            x = torch.randn(3, 4)
            x.volatile = True
            out = model(x)
            """,
            at=((5, 0),),
            symptom=(
                Warns("UserWarning", "volatile was removed"),
                Holds("out.grad_fn is not None", "the output still carries a graph"),
            ),
        ),
        Invalid(
            """
            import torch
            from torch.autograd import Variable


            def to_var(x, volatile=False):
                return Variable(x, volatile=volatile)


            model = torch.nn.Linear(4, 2).to("cpu")
            out = model(to_var(torch.randn(3, 4), volatile=True))
            """,
            title="A helper that passes the flag on",
            at=((6, 23), (10, 38)),
            symptom=(
                Warns("UserWarning", "volatile was removed"),
                Holds("out.grad_fn is not None", "the output still carries a graph"),
            ),
        ),
    )

    def __init__(self, context) -> None:
        super().__init__(context)
        #: calls that may reach a module-local function: (key, call, calling function)
        self._calls: List[Tuple[Tuple[str, ...], ast.Call, Optional[FunctionInfo]]] = []
        #: (function, argument) -> the ``Name`` nodes that pass the argument on as a
        #: ``volatile=`` flag, and the torch call that finally receives it
        self._uses: Dict[Tuple[FunctionInfo, str], Dict[int, str]] = {}
        #: ``volatile=<argument>`` in a torch call: (function, argument, keyword, call)
        self._handed: List[Tuple[FunctionInfo, str, ast.keyword, ast.Call]] = []
        #: calls whose value is bound to a name of labels (``targets = [Variable(a) ...]``)
        self._labels: Set[int] = set()
        #: ``p.volatile = True`` beside ``p.requires_grad = False`` in a loop's body
        self._beside_freeze: Set[int] = set()

    def report(
        self, node: ast.AST, message: str, condition: Optional[Callable[[], bool]] = None,
        fix: Union[Fix, Callable[[], Fix], None] = None,
    ) -> None:
        """Only in a module that runs on PyTorch 0.4 or later
        (``facts.runs_on_0_4``, asked once per module); not in a branch only
        torch releases before 0.4 run, nor in a
        project that names only those releases: the flag worked there.  Nor
        in code that never runs (``flow.never_runs``, as GRD101 decides it: a
        module that stops at its imports, a helper nothing calls), or that no
        run of its function reaches (``flow.never_reached``: after a
        statement that reads a name the module never binds)."""
        if not facts.runs_on_0_4(self.context):
            return
        if not flow.in_legacy_branch(self.context, getattr(node, "lineno", 0)):
            pinned = self.context.unless_pinned_before((0, 4), condition)
            super().report(node, message, flow.unless_unreached(self.context, node, pinned), fix)

    def visit_Call(self, node: ast.Call) -> None:
        ctx = self.context
        if node.args or node.keywords:
            key = ctx.call_key(node.func)
            if key is not None:
                self._calls.append((key, node, ctx.grad.function))
        arg = keyword(node, "volatile")
        if arg is None:
            return
        qual = ctx.imports.resolve(node.func) or ""
        if qual.startswith("torch.") or qual == "Variable":
            function = ctx.grad.function
            if isinstance(arg.value, ast.Name) and function is not None and arg.value.id in _arguments(function):
                self._uses.setdefault((function, arg.value.id), {})[id(arg.value)] = self.code_of(node.func)
                self._handed.append((function, arg.value.id, arg, node))
                return  # decided once the module is seen (``finish``)
            if self._of_labels(node):
                return  # labels: no graph to stop, with the flag or without it
            if is_const(arg.value, False) and _is_variable(qual):
                return  # what ``Variable`` did anyway: no effect, no warning, nothing relied on it
            if ctx.grad.state is Grad.DISABLED and _is_variable(qual):
                return  # under ``no_grad`` already: no graph for the flag to stop
            condition = None
            if ctx.grad.state is Grad.INHERITED and function is not None and _is_variable(qual):
                # a helper every caller runs under ``no_grad`` (in this module or another)
                condition = partial(flow.with_grad, ctx, Grad.INHERITED, function)
            self.report(arg, f"`volatile=` {_MESSAGE}", condition, fix=Fix("drop-keyword", node, "volatile"))

    def finish(self) -> None:
        """``to_var(x, volatile=True)`` where ``to_var`` only hands the flag to
        ``Variable(..., volatile=...)``: the keyword of the call is dead too."""
        if not self._uses:
            return
        functions = self.context.functions
        forwarders: Dict[Tuple[FunctionInfo, str], str] = {}
        changed = True
        while changed:  # a helper may hand the flag to another helper
            changed = False
            for (function, name), uses in list(self._uses.items()):
                if (function, name) not in forwarders and _only_passed_on(function, name, uses):
                    forwarders[(function, name)] = next(iter(uses.values()))
                    changed = True
            for key, call, caller in self._calls:
                for callee in functions.get(key, ()) if len(functions.get(key, ())) == 1 else ():
                    for name, value, _ in bound_arguments(callee, call):
                        target = forwarders.get((callee, name))
                        if target is None or caller is None or not isinstance(value, ast.Name):
                            continue
                        if value.id in _arguments(caller):
                            uses = self._uses.setdefault((caller, value.id), {})
                            if id(value) not in uses:
                                uses[id(value)] = target
                                changed = True
        passed: set = set()  # (function, argument) some call of the module passes other than False
        #: (function, argument) -> the (caller, argument) whose own flag a call hands it
        # (``np_to_var(x, volatile=False)`` doing ``torch_to_var(t, volatile=volatile)``)
        handed_on: Dict[Tuple[FunctionInfo, str], Set[Tuple[FunctionInfo, str]]] = {}

        def live(function: FunctionInfo, name: str, depth: int = 0) -> bool:
            """May the helper's flag ``name`` be anything but ``False``?"""
            return (function, name) in passed or self._may_pass(function, name) or depth < 4 and any(
                live(*outer, depth=depth + 1) for outer in handed_on.get((function, name), ())
            )

        for key, call, caller in self._calls:
            infos = functions.get(key, ())
            if len(infos) != 1:
                continue
            for name, value, kw in bound_arguments(infos[0], call):
                target = forwarders.get((infos[0], name))
                if target is None:
                    continue
                condition = None
                if caller is not None and isinstance(value, ast.Name) and (caller, value.id) in forwarders:
                    # the caller's own flag, handed on: as live as the caller's callers make it
                    handed_on.setdefault((infos[0], name), set()).add((caller, value.id))
                    condition = lambda outer=(caller, value.id): live(*outer)  # noqa: E731
                elif not is_const(value, False):
                    passed.add((infos[0], name))
                elif _is_variable(target):
                    continue  # ``to_var(x, volatile=False)``: what ``Variable`` did anyway
                written = f"`{kw.arg}=`" if kw is not None else f"`{self.code_of(value)}`, passed as `{name}`,"
                message = f"{written} is forwarded by `{infos[0].name}` to `{target}(..., volatile=...)` and {_MESSAGE}"
                if kw is not None:
                    self.report(kw, message, condition=condition, fix=Fix("drop-keyword", call, kw.arg or ""))
                else:
                    self.report(value, message, condition=condition)

        for function, name, arg, node in self._handed:
            if self._of_labels(node):
                continue
            # a helper's own flag only as live as its callers make it
            handed = (lambda key=(function, name): live(*key)) if (function, name) in forwarders else None
            self.report(arg, f"`volatile=` {_MESSAGE}", condition=handed, fix=Fix("drop-keyword", node, "volatile"))

    def _of_labels(self, call: ast.Call) -> bool:
        """``targets = [Variable(a, volatile=True) for a in anns]``,
        ``Variable(labels, volatile=True)``: a tensor of labels."""
        return id(call) in self._labels or bool(call.args) and _names_labels(call.args[0])

    def _may_pass(self, function: FunctionInfo, name: str) -> bool:
        """May a call of the helper ``function`` (which only hands its
        argument ``name`` on as the flag) pass something other than ``False``?
        Yes when the argument's default is not ``False``, and when no project
        index can tell; else when a call in another module passes it with
        grad on (one under ``no_grad`` builds no graph for the flag to stop:
        ``get_batch(data, i, evaluation=True)`` in ``evaluate()``'s
        ``with torch.no_grad():``)."""
        if not is_const(param_defaults(function.node.args).get(name), False):
            return True
        shapes = self.context.call_shapes_elsewhere(function, grad_off=False)
        if shapes is None:
            return True
        positional = positional_params(function.node, function.class_name is not None)
        index = positional.index(name) if name in positional else None
        for shape in shapes:
            value = passed(shape, name, index)
            if value is UNKNOWN:
                return True
            if value is not NOT_PASSED and value is not False:
                return True
        return False

    def visit_For(self, node: ast.For) -> None:
        """``for p in net.parameters(): p.requires_grad = False; p.volatile =
        True``: the flag beside the freeze stops nothing the freeze does not."""
        frozen = {
            dotted(t.value) for stmt in node.body if isinstance(stmt, ast.Assign) and is_const(stmt.value, False)
            for t in stmt.targets if isinstance(t, ast.Attribute) and t.attr == "requires_grad"
        }
        frozen.update(
            dotted(stmt.value.func.value) for stmt in node.body
            if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)
            and isinstance(stmt.value.func, ast.Attribute) and stmt.value.func.attr == "requires_grad_"
            and is_const(first_value(stmt.value), False)
        )
        frozen.discard(None)
        if frozen:
            self._beside_freeze.update(
                id(t) for stmt in node.body if isinstance(stmt, ast.Assign)
                for t in stmt.targets
                if isinstance(t, ast.Attribute) and t.attr == "volatile" and dotted(t.value) in frozen
            )

    def visit_Assign(self, node: ast.Assign) -> None:
        if len(node.targets) == 1 and _names_labels(node.targets[0]):
            self._labels.update(id(c) for c in _wrapping_calls(node.value))
        if not (is_const(node.value, True) or is_const(node.value, False)):
            return
        for attr in node.targets:
            if (
                isinstance(attr, ast.Attribute)
                and attr.attr == "volatile"
                and not (isinstance(attr.value, ast.Name) and attr.value.id in _CONFIG_OWNERS)
                and id(attr) not in self._beside_freeze
            ):
                self.report(attr, f"`{self.code_of(attr)}` {_MESSAGE}")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr != "volatile" or not isinstance(node.value, ast.Name):
            return
        binding = self.context.lookup(node.value.id)
        value = getattr(binding, "value", None)
        if isinstance(value, ast.Call):
            qual = self.context.imports.resolve(value.func) or ""
            if qual.startswith("torch.") or qual == "Variable":
                self.report(node, f"`{self.code_of(node)}` {_MESSAGE}")


def _names_labels(expr: ast.expr) -> bool:
    """``targets``, ``self.gt_boxes``, ``labels.cuda()``, ``target[i]``: a
    name (of a chain's root, or the attribute it ends in) of labels, not of
    a model's input (``input_label``)."""
    while True:
        if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute):
            expr = expr.func.value  # ``labels.cuda()``
        elif isinstance(expr, ast.Subscript):
            expr = expr.value
        else:
            break
    name = expr.attr if isinstance(expr, ast.Attribute) else expr.id if isinstance(expr, ast.Name) else ""
    words = set(tokens(name))
    return not _LABEL_WORDS.isdisjoint(words) and _INPUT_WORDS.isdisjoint(words)


def _wrapping_calls(value: ast.expr) -> Iterator[ast.Call]:
    """The calls whose result ``value`` is: itself, the inner call of a
    chain (``Variable(a).cuda()``), the element of a comprehension."""
    while True:
        if isinstance(value, (ast.ListComp, ast.GeneratorExp, ast.SetComp)):
            value = value.elt
        elif isinstance(value, ast.Call):
            yield value
            if not (isinstance(value.func, ast.Attribute) and isinstance(value.func.value, ast.Call)):
                return
            value = value.func.value
        else:
            return


def _is_variable(written: str) -> bool:
    """``Variable`` (``torch.autograd.Variable``), which takes ``volatile=False``
    silently; ``torch.tensor(..., volatile=False)`` raises like ``True``."""
    return written == "Variable" or written.endswith(".Variable")


def _arguments(function: FunctionInfo) -> List[str]:
    """The names of a function's arguments, ``self`` left out."""
    positional = positional_params(function.node, function.class_name is not None)
    return positional + [a.arg for a in function.node.args.kwonlyargs]


def _only_passed_on(function: FunctionInfo, name: str, uses: Dict[int, str]) -> bool:
    """Is every use of argument ``name`` in ``function`` one of ``uses``
    (passing it on as a ``volatile`` flag), and is it never rebound?"""
    for node in ast.walk(function.node):
        if isinstance(node, ast.Name) and node.id == name:
            if not isinstance(node.ctx, ast.Load) or id(node) not in uses:
                return False
        elif isinstance(node, (ast.Global, ast.Nonlocal)) and name in node.names:
            return False
    return True
