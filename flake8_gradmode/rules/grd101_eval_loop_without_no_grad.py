from __future__ import annotations

import ast
from typing import FrozenSet, List, Optional, Sequence, Set, Tuple

from flake8_gradmode import facts, flow
from flake8_gradmode.context import Fix
from flake8_gradmode.facts import GRAD_OFF_NAMES
from flake8_gradmode.rule import Holds, Invalid, Rule, Valid
from flake8_gradmode.tracker import dotted, last_name


def _with_grad(ctx, ev: flow.EvalLoop) -> Optional[str]:
    """What the evaluation loop runs with grad enabled, as the message names
    it; None when every model call runs without grad."""
    for call in ev.model_calls:
        if flow.call_with_grad(ctx, call) and not _builds_no_graph(ctx, ev.loop.scope, call):
            if isinstance(call, flow.ElsewhereCall):
                return f"`{flow.display(call.key)}` (through `{call.through}()`)"
            return f"`{flow.display(call.key)}`"
    for path in ev.paths:
        if (
            path.inherits and flow.with_grad(ctx, path.state, ev.loop.scope.function)
            and not flow.model_frozen(ctx, path.callee, path.model_call)
            and not flow.model_frozen(ctx, ev.loop.scope, path.model_call)
        ):
            return f"`{flow.display(path.model_call.key)}` (through `{path.name}()`)"
    return None


def _builds_no_graph(ctx, scope: flow.Scope, call: flow.ModelCall) -> bool:
    """Does the model call build no graph of its own weights: its model
    frozen (``flow.model_frozen``), or a module of buffers only
    (``flow.built_parameter_free``)?"""
    return flow.model_frozen(ctx, scope, call) or flow.built_parameter_free(ctx, call)


def _volatile_inputs(ctx, own: flow.Scope, paths: List[flow.Scope], loop: Optional[ast.AST] = None) -> bool:
    """Do the loop or the functions ``paths`` it runs the model through make
    inputs with ``volatile=`` (not ``False``), or its function ``own`` or
    the module functions these call with ``volatile=True``, or does the
    module hand a flag its imported project modules pass on as
    ``volatile=`` (``Batches(data,
    evaluation=True)`` with ``Variable(x, volatile=self.evaluation)`` in the
    loader's module), in a project that names only PyTorch versions before
    0.4, or in a module that calls no API 0.4 added (``facts.runs_on_0_4``,
    as GRD003 reads it)?  There the flag still turned grad off for
    everything computed from it.  Not in a module that names ``no_grad`` (or another grad-mode
    context) too: its code runs on a release where the flag does nothing."""
    handed = _handed_flags(ctx)
    if handed is None:
        return False
    # the loop and the functions it runs the model through: any flag not
    # ``False``; the functions they call: ``volatile=True`` written there
    # (``to_var(x, volatile=False)`` handing on its own flag guards nothing)
    nodes: List[Tuple[ast.AST, bool]] = [(loop, False)] if loop is not None else []
    seen: Set[int] = set()
    todo = [(scope, 0) for scope in paths] + [(own, 1)]
    while todo:
        scope, depth = todo.pop(0)  # nearest first: a function both reaches is read as the nearer one
        if id(scope) in seen or scope.function is None:
            continue
        seen.add(id(scope))
        nodes.append((scope.function.node, depth > 0))
        if depth < 2:
            todo += [(callee, depth + 1) for _, key in scope.local_calls for callee in flow.callees(ctx, scope, key)]
    if own.function is None and loop is not None:
        # a script's own loop: the statements of the module before it
        # (``input = Variable(..., volatile=True)`` above ``for i in range(n):``)
        nodes += [(stmt, True) for stmt in _top_level_before(ctx, loop)]
    volatile = any(
        _guards(k, literal)
        for node, literal in nodes for sub in ast.walk(node) if isinstance(sub, ast.Call) for k in sub.keywords
    ) or _hands_true_to_a_volatile_parameter(ctx, own)
    if not (volatile or handed) or not (ctx.pins_torch_before((0, 4)) or not facts.runs_on_0_4(ctx)):
        return False
    return volatile or not handed.isdisjoint(ctx.volatile_flags())


def _code_for_0_3(ctx) -> bool:
    """Is the module code for PyTorch 0.3: it reads a loss as
    ``loss.data[0]`` (``facts.module_reads_loss_by_index``) and names no
    ``no_grad`` or other grad-mode context?  0.3 had no ``no_grad``; 0.4
    warns at that read and every release since 0.5 raises there, so the
    module runs on no current release until it is ported, and its loops are
    left to the port."""
    return facts.module_reads_loss_by_index(ctx) and _handed_flags(ctx) is not None


def _top_level_before(ctx, loop: ast.AST) -> List[ast.stmt]:
    """The module's statements before ``loop``, at the top level and in the
    blocks that hold it (``if __name__ == "__main__":``), but its
    definitions (functions and classes are asked on their own)."""
    found: List[ast.stmt] = []
    line = getattr(loop, "lineno", 0)
    block: Optional[List[ast.stmt]] = getattr(ctx.tree, "body", [])
    while block:
        holder: Optional[ast.stmt] = None
        for stmt in block:
            if stmt.lineno >= line or getattr(stmt, "end_lineno", line) >= line:
                holder = stmt if stmt.lineno < line else None
                break
            if not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                found.append(stmt)
        if holder is None or isinstance(holder, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            break
        block = flow.block_holding(holder, line)  # on into the block of it that holds the loop
    return found


def _hands_true_to_a_volatile_parameter(ctx, own: flow.Scope) -> bool:
    """Does ``own`` call a function of the module with a literal ``True``
    for a parameter that function hands on as ``volatile=``
    (``batchify(batch, gpu, True)`` with ``Variable(x, volatile=volatile_flag)``)?"""
    for seq, key in own.local_calls:
        call = ctx.flow.nodes.get(seq)
        if not isinstance(call, ast.Call):
            continue
        for callee in flow.callees(ctx, own, key):
            fn = callee.function
            if fn is None:
                continue
            passed = {
                k.value.id for sub in ast.walk(fn.node) if isinstance(sub, ast.Call)
                for k in sub.keywords if k.arg == "volatile" and isinstance(k.value, ast.Name)
            }
            if passed and any(
                param in passed and isinstance(value, ast.Constant) and value.value is True
                for param, value, _ in flow.bound_arguments(fn, call)
            ):
                return True
    return False


def _handed_flags(ctx) -> Optional[FrozenSet[str]]:
    """The keywords the module passes a literal ``True`` (``evaluation=True``);
    None when it names ``no_grad`` or another grad-mode context, or has no
    tree.  Read once per module, only for a finding about to be reported."""
    key = ("grd101-handed-flags",)
    if key not in ctx.flow.cache:
        handed: Optional[Set[str]] = set() if ctx.tree is not None else None
        for sub in ast.walk(ctx.tree) if handed is not None else ():
            if isinstance(sub, ast.Attribute) and sub.attr in GRAD_OFF_NAMES or (
                isinstance(sub, ast.Name) and sub.id in GRAD_OFF_NAMES
            ):
                handed = None
                break
            if isinstance(sub, ast.Call):
                handed.update(
                    k.arg for k in sub.keywords
                    if k.arg and isinstance(k.value, ast.Constant) and k.value.value is True
                )
        ctx.flow.cache[key] = None if handed is None else frozenset(handed)
    return ctx.flow.cache[key]  # type: ignore[return-value]


def _guards(keyword: ast.keyword, literal: bool) -> bool:
    """Is ``keyword`` a ``volatile=`` flag that may be set: not ``False``
    (``volatile=True`` itself when ``literal``)?"""
    if keyword.arg != "volatile":
        return False
    value = keyword.value
    if isinstance(value, ast.Constant):
        return value.value is True if literal else bool(value.value)
    return not literal


#: Frameworks that copy PyTorch's API (``jittor.nn.Module``, ``paddle.nn.Layer``).
_TORCH_LIKE = frozenset({"jittor", "paddle", "mindspore", "oneflow", "megengine"})


def _another_framework(ctx) -> bool:
    """Does neither the module nor any module of the project that imports
    it name ``torch`` (``evaluate(model, ...)`` of a course's numpy
    network)?  Or does the module import, at its top, a framework that
    copies PyTorch's API and not torch (``import jittor as jt``, with
    ``import torch`` only in a function that converts a checkpoint)?  Its
    models are not PyTorch's."""
    if not ctx.imports.mentions_torch():
        return ctx.without_torch_around()
    heads = {
        (alias.name if isinstance(stmt, ast.Import) else stmt.module or "").split(".", 1)[0]
        for stmt in getattr(ctx.tree, "body", ()) if isinstance(stmt, (ast.Import, ast.ImportFrom))
        for alias in stmt.names
    }
    return "torch" not in heads and not heads.isdisjoint(_TORCH_LIKE)


#: Packages of adversarial attacks, and SHAP: their attacks backpropagate to
#: the inputs they craft, and its explainers to the inputs they explain,
#: with the caller's grad mode, so they need grad.
_ATTACK_LIBRARIES = ("advertorch", "torchattacks", "autoattack", "foolbox", "cleverhans", "deeprobust", "shap")

#: Methods with which those packages' objects craft or explain their inputs
#: (advertorch's ``perturb``, AutoAttack's ``run_standard_evaluation``,
#: SHAP's ``shap_values``).
_ATTACK_METHODS = frozenset({"perturb", "run_standard_evaluation", "shap_values"})


#: ``torch.nn`` layers that are no model run alone: those without
#: parameters, and the normalisation layers (a loop over one ``BatchNorm2d``
#: shows how it behaves in each mode: a lesson on the layer, its graph a
#: single node).
_NO_MODEL_LAYERS = facts.PARAMETER_FREE_LAYERS | frozenset({
    "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d",
    "LayerNorm", "GroupNorm", "LocalResponseNorm",
})


def _on_one_pass_only(loop: flow.Loop, calls: Sequence[flow.ModelCall]) -> bool:
    """Does every model call of ``loop`` sit under an ``if`` in its body
    that tests a variable of the loop, or of a loop around it, against a
    number (``for i, row in rows.iterrows(): if i == 0: print(model(x))``)?
    The model then runs on one pass only, to show a value: not once per
    batch.  (``if epoch == 0:`` around the loop is another matter: the whole
    loop runs on that pass.)"""
    if not calls:
        return False
    names: Set[str] = set()
    around: Optional[flow.Loop] = loop
    while around is not None:
        if around.node.__class__ in (ast.For, ast.AsyncFor):
            names.update(n.id for n in ast.walk(around.node.target) if n.__class__ is ast.Name)  # type: ignore
        around = around.parent
    if not names:
        return False
    guarded: Set[int] = set()
    for node in ast.walk(loop.node):
        if node.__class__ is ast.If and _tests_against_a_constant(node.test, names):  # type: ignore[attr-defined]
            for stmt in node.body:  # type: ignore[attr-defined]
                guarded.update(id(n) for n in ast.walk(stmt))
    return all(id(c.node) in guarded for c in calls)


def _through_the_layers(loop: flow.Loop, calls: Sequence[flow.ModelCall]) -> bool:
    """Is ``loop`` one forward pass, layer by layer: it iterates the layers
    of a module (``for layer in net:``, ``enumerate(net.features)``,
    ``net.children()``) and every model call in it is ``X = layer(X)``, the
    loop's layer fed what the layer before it made?  Its graph is that of
    one call of the module (a shape check printing ``X.shape``), not one per
    batch: the batches, if any, are a loop around it."""
    node = loop.node
    if not calls or node.__class__ is not ast.For:
        return False
    layers = {n.id for n in ast.walk(node.target) if n.__class__ is ast.Name}  # type: ignore[attr-defined]
    iterated = node.iter  # type: ignore[attr-defined]
    if iterated.__class__ is ast.Call and dotted(iterated.func) == "enumerate" and iterated.args:  # type: ignore
        iterated = iterated.args[0]  # type: ignore[attr-defined]
    if iterated.__class__ is ast.Call:
        func = iterated.func  # type: ignore[attr-defined]
        if func.__class__ is not ast.Attribute or func.attr not in flow.PART_ITERATORS or iterated.args:  # type: ignore
            return False
    elif dotted(iterated) is None:
        return False
    parents = {id(child): stmt for stmt in ast.walk(node) for child in ast.iter_child_nodes(stmt)}
    for call in calls:
        assign = parents.get(id(call.node))
        if (
            call.key not in layers or assign.__class__ is not ast.Assign
            or len(assign.targets) != 1 or assign.targets[0].__class__ is not ast.Name  # type: ignore[union-attr]
            or not call.node.args or call.node.args[0].__class__ is not ast.Name
            or call.node.args[0].id != assign.targets[0].id  # type: ignore[union-attr, attr-defined]
        ):
            return False
    return True


def _tests_against_a_constant(test: ast.expr, names: Set[str]) -> bool:
    """Is ``test`` ``name == number`` (either way round) or ``name in [2,
    30, 145]`` for one of ``names``: a few passes of a counter (not
    ``phase == "val"``, a phase)?"""
    if test.__class__ is not ast.Compare or len(test.ops) != 1:
        return False
    op = test.ops[0].__class__  # type: ignore[attr-defined]
    left, right = test.left, test.comparators[0]  # type: ignore[attr-defined]
    if op is ast.Eq and left.__class__ is ast.Constant:
        left, right = right, left
    if left.__class__ is not ast.Name or left.id not in names:  # type: ignore[attr-defined]
        return False
    if op is ast.Eq:
        return _a_number(right)
    return op is ast.In and right.__class__ in (ast.List, ast.Tuple, ast.Set) \
        and bool(right.elts) and all(_a_number(e) for e in right.elts)  # type: ignore[attr-defined]


def _a_number(node: ast.expr) -> bool:
    return node.__class__ is ast.Constant and node.value.__class__ is int  # type: ignore[attr-defined]


def _runs_a_wrapper_of_the_model(ctx, ev: flow.EvalLoop) -> bool:
    """Does the loop also call an object the function built around the model
    (``explainer = DeepLIFT(model)``, ``attack = PGD(model, eps)``), or a
    method of one (``ig.attribute(x)``), or,
    in a module that imports an attack package, craft its inputs with an
    attack (``adversary.perturb(x, y)``, cleverhans'
    ``projected_gradient_descent(model, x, ...)``)?  Such tools often need
    grad themselves (attributions, attacks): unknown, so silent."""
    models = {c.key.split(".", 1)[0] for c in ev.model_calls}
    if not models:
        return False
    loop = ev.loop
    scope = loop.scope
    keys = {c.key for c in ev.model_calls}
    # ``explainer(x)``; or ``ig.attribute(x)`` on ``ig = IntegratedGradients(tpc.model)``,
    # a class from outside the project (the project's own ``Agent(actor)`` is read as code)
    called = [(key[1], False) for _, key in loop.local_calls if key[0] == "function"]
    for seq, _ in scope.method_calls:
        node = ctx.flow.nodes.get(seq) if loop.seq < seq < loop.end_seq else None
        if node is not None and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name):
            called.append((node.func.value.id, True))
    for name, outside in called:
        for value in scope.deps.get(name, ()):
            if not isinstance(value, ast.Call) or not last_name(value.func)[:1].isupper():
                continue
            if outside:
                root = (dotted(value.func) or "").split(".", 1)[0]
                if not ctx.imports.is_imported(root) or ctx.from_the_project(root):
                    continue
            args = [*value.args, *(k.value for k in value.keywords)]
            if any((isinstance(a, ast.Name) and a.id in models) or dotted(a) in keys for a in args):
                return True
    return ctx.imports.imports_from(_ATTACK_LIBRARIES) and (
        any(loop.seq < seq < loop.end_seq and attr in _ATTACK_METHODS for seq, attr in scope.method_calls)
        or any(
            (ctx.imports.resolve(c.node.func) or "").split(".", 1)[0] in _ATTACK_LIBRARIES
            for c in loop.imported_calls
        )
    )


def _hands_the_model_to_an_attack(ctx, ev: flow.EvalLoop) -> bool:
    """Does the loop call a method of an attack with the model itself (see
    ``_attacks_the_model``)?  Asked only of a loop about to be reported: it
    walks the loop's body."""
    keys = {c.key for c in ev.model_calls}
    return bool(keys) and any(
        _attacks_the_model(ctx, node, keys) for node in ast.walk(ev.loop.node) if node.__class__ is ast.Call
    )


def _attacks_the_model(ctx, call: ast.Call, keys: Set[str]) -> bool:
    """Is ``call`` a method of an attack, handed the model itself
    (``self.attack.run(self.model, inputs, objective)``,
    ``adversary.generate(model, x)``), and does a method of that name of a
    project class backpropagate?  Such an attack differentiates through
    the model to the inputs it crafts, with the caller's grad mode."""
    if call.func.__class__ is not ast.Attribute:
        return False
    receiver = last_name(call.func.value).lower()  # type: ignore[attr-defined]
    if "attack" not in receiver and "adversar" not in receiver:
        return False
    return any(dotted(a) in keys for a in [*call.args, *(k.value for k in call.keywords)]) \
        and ctx.method_backpropagates(call.func.attr)  # type: ignore[attr-defined]


def _differentiated_by_callers(ctx, scope: flow.Scope) -> bool:
    """Is the loop's function called only by functions that ask autograd for
    gradients (``grad(loss, x)`` over a smoothed prediction in a PGD attack),
    in this module or another?  They need the graph its loop builds."""
    fn = scope.function
    return fn is not None and ctx.asked_through_by_every_caller(fn)


class EvalLoopWithoutNoGrad(Rule):
    code = "GRD101"
    name = "eval-loop-without-no-grad"
    triggers = (
        "val", "test", "eval", "dev", "predict", "infer", "generate", "embed", "encode", "extract", "sample", "serve",
        # decoding loops, outputs stripped of their graph, forwards only saved or logged, phase loops
        "decode", "beam", "greedy", "translat", "detach", "tolist", "numpy", "argmax", ".data", "save", "plot", "log",
        "train",
    )
    options = ("model_names", "eval_names", "eval_mode_helpers", "no_grad_decorators", "current_torch")
    summary = "evaluation loop or inference function runs a model with grad enabled"
    what = """
        Reports an evaluation loop whose model calls run with grad enabled.  An
        evaluation loop is a `for`/`while` loop that calls a model, runs no
        training step (`.backward()`, `optimizer.step()`, `autograd.grad`,
        a meta-learner's `diffopt.step(support_loss)`, `learner.adapt(error)`
        or `meta_learner.adapt(tasks)`, also
        through a function of the module it calls or, with the project
        index, one of another module of the project, imported by name or
        called through its module (`attacks.perturb(image, net)` running
        `.backward()`); a call named like a
        training step, `self.train_step(batch)` or a template model's
        `model.optimize_parameters()`, counts by its body where the module
        defines it, else by its name) and shows
        evaluation intent: it iterates data named like
        `val`/`valid`/`test`/`eval`/`dev`, it sits in a function named like
        `evaluate`/`validate`/`test`/`predict`/`infer`/`generate` or like
        decoding (`greedy_decode`, `beam_search`, `translate`; a function
        named only `test` counts for loops over data, not for one that counts,
        `for c in range(3):`, or sweeps literal numbers, `for size in [4, 8,
        16]:`: a shape check of the model; nor does, with the project
        index, the `if __name__ == "__main__":` block of a module that
        defines an `nn.Module` subclass and that another module imports, nor
        a module-level function only that block calls and no other module
        names, `def _test():`: the model's own smoke test), it follows a
        `.eval()` call in the same function (or in the `__init__` of a plain
        predictor class that trains nothing), or, in a function that trains
        nothing, every output it computes is stripped of its graph
        (`.detach()`, `.data`, `.cpu().numpy()`, `.tolist()`, `.item()`,
        `.argmax()`) or, in a loop over data, never read (a forward hook
        collects it); a loop over a model's layers (`for layer in
        cnn.children():`, building a model layer by layer) is not shown to
        evaluate by detached outputs alone.  An inference function counts too: a function named like
        `predict`/`infer`/`embed`/`encode`/`extract`/`generate`/`sample`/`serve`/`detect`
        that calls a model after putting it in eval mode (in the function, or,
        for that model, in its class's `__init__`: a distiller's frozen
        teacher put in eval mode there does not make its student's forward
        inference), and the public methods of a plain predictor class.  A
        method of an `nn.Module` subclass is one only when it switches the
        module to eval mode itself, runs no loop, and no other method of the
        module calls it (`Unet.predict`; an `encode` that `recognize` calls
        is a helper, whose caller owns the grad mode).  A function whose
        result a caller backpropagates, up to two calls up, is part of a
        training step, not inference (a rollout's `generate_episode()`
        returning the log-probabilities `generate_batch()` makes its loss
        from).  One finding per loop, at the loop, or at the first
        model call of an inference function; a loop that runs the model only
        through functions of the module whose own loops are reported
        (`for images in data: infer(net, images)` over `infer`'s loop) is
        the same forward again and is not reported.

        A model call is a call of `self` inside an `nn.Module` subclass, of a
        name the module shows to be a model (`.eval()`, `.train()`,
        `.parameters()`, `.to()`, `.cuda()` ... called on it, built from an
        `nn.Module` subclass; not `.train(...)` handed an object a class
        builds, a literal container or a string, `adapter.train(RunSpec(...))`:
        a training routine of the object's own, which switches no mode either), or of a name like `model`, `net`, `encoder`,
        `generator`, `netG`, `resnet` (see Options; not a call that hands it
        the settings of a model being built, `cell_senet(model_name=...,
        num_classes=1108)`, nor one named like an action, `validate_model(...)`,
        nor a loss or metric module, `criterion(out, y)`, `psnr(sr, hr)`,
        `metric_fn(preds, ys)`, nor one whose value a name takes that the
        module then calls `.fit(...)` on, `model = cfg.model(**params)`: a
        scikit-learn or XGBoost estimator being built);
        also `model.module(x)`,
        an item of a container of models (`self.models["generator"](x)`,
        `for head in self.heads: head(x)`), and `model.generate(...)`
        (`sample`, `beam_search`) when a model class of this module defines
        that method without a grad-disabling decorator.  A library pipeline
        (`DiffusionPipeline.from_pretrained(...)`, `transformers.pipeline(...)`)
        or an Ultralytics model (`YOLO("yolov8n.pt")`) disables grad itself,
        so calling one is not a model call.  A loop that calls a function, method or
        sibling closure of the module that runs a model runs that model: a
        helper shared by training and evaluation is judged at each loop that
        calls it, with the grad state of that call, and reported at the loop,
        unless the function also runs that model under its own `no_grad` (it
        chooses the mode itself, e.g. by `model.training`).  With the project
        index, so does a loop that hands a model to a function of another
        module of the project which calls that argument once, outside any
        loop, in its caller's grad mode, and trains nothing
        (`extract_features(model, points)`; see docs/cross-module.md).
        A model whose grad the function switched off before the loop
        (`scorer.eval().requires_grad_(False)`, or bound to such a chain)
        builds no graph, and its calls do not count.  A loop that also calls
        a tool the function built around the model (`saliency =
        Saliency(model)`, an explainer, an attack), or a method of one
        of a library (`ig.attribute(x)` on `ig = IntegratedGradients(tpc.model)`), is not
        reported: such tools often need grad themselves.  Nor is one, in a module that
        imports an attack package (advertorch, torchattacks, AutoAttack,
        Foolbox, CleverHans, DeepRobust) or SHAP, that crafts its inputs with
        an attack (`adversary.perturb(x, y)`, `run_standard_evaluation`, or a
        function of such a package) or explains them (`explainer.shap_values(x)`):
        these backpropagate to the inputs in the loop's grad mode.  Nor is
        one that hands the model itself to a method of an attack
        (`self.attack.run(self.model, x, y)`, a receiver named like an
        attack or adversary) when, with the project index, a project class
        has a method of that name that runs `.backward()` or asks
        `torch.autograd.grad`.  Any other attack of the project's own is
        judged like any other code (the loop's forward on the crafted inputs
        still builds a graph).

        Two more shapes are reported: a loop that trains only when a flag says
        so (`if phase == "train":`) after switching the mode by that flag
        (`model.train(phase == "train")`), whose forward is not under
        `torch.set_grad_enabled(<flag>)`, so its evaluation phase builds
        graphs (a forward in the branch where the steps run, `if phase ==
        "train":`, runs in the training phase only and does not count); and,
        in a training loop, a model call whose output only goes to
        save, plot or log helpers (`save_image(generator(z).data, ...)`),
        reported at the call.
    """
    why = """
        With grad enabled every forward pass records an autograd graph and keeps
        the activations it needs.  Outputs that are collected keep their whole
        graph alive: memory grows batch after batch, large evaluations run out
        of memory, and inference is slower.  Projects that fixed this report
        evaluation memory dropping by more than half (one from 50 GB to 19 GB).
        `model.eval()` does not help: it only changes dropout and batch norm.
    """
    known_problems = """
        A loop that runs a lone `torch.nn` normalisation layer
        (`bn = nn.BatchNorm2d(1)`, a lesson on its modes) is not reported.
        A forward under an `if` in the loop that compares a counter of the
        loop (or of a loop around it) with a number (`if i == 0:`, `if i in
        [2, 30]:`) runs on a pass or two only, to show a value, and is not
        reported; an `if epoch
        == 0:` around a whole evaluation loop still is.
        A module that imports nothing from torch or a model library (and no
        class by name) and defines model classes of its own, on `object`
        (`class MLP(object)` with `forward` over numpy in a course's
        homework), is not checked: its models build no autograd graph.  With
        the project index, neither is a module that names no `torch` when
        no project module that imports it does either (a homework's
        `evaluate(..., model)` over its own numpy network).
        Grad mode is dynamic.  A module that switches grad off by a statement
        in a function (`torch.set_grad_enabled(False)` at the start of
        `train()`) changes it for the rest of the process, so its functions'
        loops are not reported unless grad is on where they are written.  A
        grad-disabling context anywhere in the module
        that runs the loop is seen (the function, its decorators, a later
        `f = torch.no_grad()(f)`, every module-local caller, the enclosing
        function's calls of a closure, the module's own `@contextmanager`
        that yields inside `torch.no_grad()` or inside
        `torch.set_grad_enabled(<its argument>)`), and so are callers in the project's
        other modules (see the cross-module page), but not callers outside the
        project (a notebook, a user's script): a function whose callers are all
        there is reported even if they disable grad.  Add `@torch.no_grad()`
        to it, which is cheap and documents the intent.  With the project
        index, a function that only functions asking autograd for gradients
        call (`torch.autograd.grad(loss, x)` over its result, in a PGD attack
        on a smoothed classifier) is not reported either: they need the
        graph its loop builds.
        `set_grad_enabled(<expression>)`, and `no_grad()` chosen by a
        conditional expression (`with torch.no_grad() if x else
        nullcontext():`), are taken as "might be disabled" and keep the rule
        silent, and grad enabled
        explicitly inside a function (`with torch.enable_grad():`) is taken as
        meant.  Never reported: a loop whose body ends in `break` (it runs
        once: one batch to set something up), or whose model calls each sit
        in a block that then leaves the loop (`if path.endswith(".jpg"):`,
        a forward, `torch.jit.trace(...)`, `sys.exit()`: one forward to
        export the model); a loop inside a training loop
        whose outputs it collects flow, directly or through a later `for`
        over them (`for pred, y in zip(preds, ys):`), into a `.backward()`
        target that a step of an enclosing loop follows in the same
        iteration (a forward fed in chunks, per domain), or that a step
        later in its own function follows (an encoder run step by step,
        its states kept in a dict, then `loss.backward()`; also through an
        item the loop stores: `states[t] = cell(x)`, an item of
        the backward target: `losses[0].backward()`, or a value a tuple
        target unpacks: `pred, state = decoder(x, state)`); a loop in a method of an `nn.Module` subclass
        (the module's caller owns the grad mode; a class whose base comes from
        another package is one when it runs `nn.Module.__init__(self)`), or in a function (or a
        closure of one) that a model's `forward` calls, in this module or
        another (a renderer querying a field in chunks is part of the model);
        framework hooks
        (`validation_step`, `test_step`, `predict_step` and their epoch hooks,
        `valid_step`, `evaluation_step`, `prediction_step`) of a class that
        derives from the framework's class (or from a class imported from
        elsewhere), directly or through classes of the module, and functions
        handed to ignite's `Engine`/evaluators (a plain class with a method of
        such a name is reported like any other); timing and profiling loops
        (inside `torch.profiler.profile(...)`, `record_function` or
        `FlopCounterMode()`, also in the module's function the loop calls, or
        between clock reads with their outputs discarded, but for the shape,
        size, type or device of the last one read after the loop); a loop
        through a module's layers, each fed what the one before made (`for
        layer in net: X = layer(X)`, a shape check: one forward pass); warm-up loops
        (a literal `range(3)` of passes over `torch.randn(...)` inputs made in
        the loop, outputs not read); a loop whose every pass builds the
        model it runs, from a class, and loads nothing into it (`block =
        variant(64)` over a table of classes, then `block(x)`), or that
        runs one by one the models a literal list of builds holds (`for net
        in [resnet50(), resnet101()]:`): untrained models whose shapes are
        checked; not with `pretrained=`, a string argument, a `load...` call
        on it, or a class or function of the module whose code loads); a
        loop that makes a
        tensor require grad (`x.requires_grad = True`: input gradients are
        wanted), or an inference function that does, or that hands the model
        a `self.x` a method of its class made require grad (derivatives of
        the outputs with respect to the inputs, as a PDE residual needs); a model whose parameters are frozen before the loop: by the
        function (`net.requires_grad_(False)`, or one by one in a loop over
        `net.parameters()`, also with `p.detach_()`), by the `__init__` of the
        class it was built from there (pytorch-fid's `InceptionV3(...,
        requires_grad=False)`, also a class of another module of the project),
        for a model handed over as an argument, in the same ways by every
        caller in the module (also a list, or a list of lists, of models a
        function of the module freezes one by one before it appends them,
        and returns alone or in a tuple the caller unpacks, read item by
        item or in a `for` loop), for a module global, by the module's
        top-level code before every call of the function, or, in a closure,
        by the enclosing function before it defines the closure (also when
        the model runs in a function the loop calls), or, for `self.model`,
        by the `__init__` of the method's class when no method of it switches
        grad on again (`self.model.freeze()` of a Lightning module, which
        turns grad off for every parameter, counts like
        `requires_grad_(False)`); a model of buffers only (a class of the
        project that makes no `nn.Parameter`, builds only parameter-free
        layers and registers buffers: a running normaliser), or one that
        keeps nothing but settings and calls nothing it holds (a heatmap
        decoder storing `input_size` and `threshold`, not `self.model =
        model`), also kept as `self.<name>` (by the class or one it derives
        from), or a class of another module that,
        like the project modules it imports, names no `torch` and imports only the
        standard library, NumPy and SciPy (a NumPy network), or a `torch.nn` layer without parameters
        (`nn.CosineSimilarity(dim=1)`), or an instance of a plain class of
        the module (no base, no `forward`: `model = BicubicSR(2)`, moved by
        its own `model.to(device)`), bound in the function or, with the
        project index, handed over by every caller when its `__call__` calls
        nothing it keeps (`F.interpolate(x, ...)`, not `self.model(x)`); a model run by another inference
        runtime, its name last bound above the call to a `lambda` over an
        ONNX Runtime (OpenVINO, TensorRT) session's `run` or to an instance
        of a plain class of the module whose `__call__` runs one, or bound
        only to a network such a package or OpenCV loads (`net =
        cv2.dnn.readNetFromONNX(path)`, then `net.forward(names)`); a loop of
        a module's top-level code
        after a top-level statement that always reads a name the module never
        binds and no builtin is (`dataset.Loader(...)` after `from
        torchvision import datasets`: NameError), and a function of such a
        module when no top-level statement before that one calls a function
        or class of the module (no `from m import *`, `globals()` or
        `exec` in it); with the project index, a function of a script that
        nothing in an unpackaged project imports, whose `if __name__ ==
        "__main__":` block stops at such a name (`if CRNNx2:` where only
        `args.CRNNx2` exists), or at a class of the module built with
        arguments its `__init__` cannot take (`GRU_TV(..., dropout=0)` of
        an `__init__` that also wants `dropout_type`: TypeError), or at an
        import of a name its project module lacks (`from modeling import
        get_model` where `modeling` now has `build_model`: ImportError),
        before anything it ran could reach the function; a loop after a statement of its own block or of an
        enclosing one that always reads a name the module binds nowhere
        (`if arg.test:` where only `args` is bound) or a name a `del` of that
        block removed before it (`del data` then `normalize(data)`), or in the body of a
        statement whose test or iterable does, or whose own body does so in
        a statement of its own (`accuracy(y_hat, y, mask)` where only
        `x_mask` is bound: the first pass raises; in a function no other
        encloses, a name only another function binds for itself counts
        too: `self.model(x, idx_scale)` where only `test()` binds
        `idx_scale`; with the project index, a module that `*`-imports
        only modules of the project binds what they bind, and no more:
        `print(epoch)` after `from network import *` where neither
        `network` nor what it `*`-imports binds `epoch`); a loop after a statement of
        its own block or of an
        enclosing one that always leaves that block (`return`, `raise`,
        `continue`, `break`), or after a use of an exercise's blank
        (`images, labels = ...`, or `model.parameters()` after
        `model = ...`); a module that imports, at its top, a framework that
        copies PyTorch's API (`jittor`, `paddle`, `mindspore`, `oneflow`,
        `megengine`) and not `torch`; a loop of a function that imports
        another tensor framework itself (`import tensorflow as tf` in a
        module gathering experiments in two frameworks) and imports and
        reads nothing of torch, or of a method of a class derived from
        another framework's (`class DecoderTF(tf.keras.layers.Layer)` in a
        script converting a torch model to TensorFlow), or of a model bound
        only to what functions of the module return when each returns a
        model it builds with another framework (`model = create_mlp_tf(n)`
        of `model = tf.keras.models.Model(...); return model`); a model call in the body of an `if`
        that tests for another framework (`if self.framework == "tf":`,
        `backend == "jax"`: a library that supports several);
        pytest test functions in test files; with the project index, a
        module-level function of a script (a module with an
        `if __name__ == "__main__":` block or top-level calls like `main()`)
        that nothing runs: the module neither calls it (a call that cannot
        bind its parameters, `evaluate(model, loss, opt, x, y)` of a `def
        evaluate(model, loss, x, y)`, raises `TypeError` first) nor names it
        (a function's own variable of that name, bound before it is read,
        names nothing else: `train = list(ids)` in `cora_train()`), no
        string of it spells the name, it looks up no name at run time
        (`globals()`, `getattr` on a module of the project that imports it,
        `fire.Fire()`), and no other
        module mentions it (or none imports the script, in a project that
        is no package); a function defined inside such a function (a
        `get_test_loss()` closure of a `main()` nothing calls); a
        module-level function of a module that no other
        module imports, in a project that is no package (no `setup.py`,
        `setup.cfg` or `pyproject.toml`; see docs/cross-module.md), or of
        a module another one imports when no code of such a project names
        the function (or only functions that never run call it, in its
        module or in another one: see docs/cross-module.md, or that never
        get to the call: a `main()` that first reads a `train_dataset` it
        never binds) and no
        module imports by name at run time (in a package too, when the
        module's literal `__all__` leaves the function out: a model file's
        `test()` check whose call is commented out); the same for a method of a plain
        class (no base but `object`, so no framework calls it as a hook)
        that its module never names (`tester.ms_test_wo_flip()` nowhere);
        any method of any class of a module that no other module of such a
        project imports (nothing can make the class), where a module the
        packaging files do not install (below the root, in a directory
        without `__init__.py` that `find_packages()` skips) counts as in no
        package; a method of an abstract class (it derives from `ABC`) of
        such a project that no code calls as a class (`Learning(...)`) nor
        as `Learning.train(...)`, when every subclass the project has
        defines the method again without calling `super()`'s; and,
        with the project index, a loop whose only sign of evaluation is what
        it does with the outputs (`.argmax()`, `.numpy()`), in a function no
        code of the project calls or names: only its missing caller could
        say it evaluates; likewise a loop after a `.eval()` in a method (of
        a class that is not a model) that no code of the project calls or
        names: its grad mode is its missing caller's.  Nor a loop in a
        function named like inference, or one that fills what its function
        returns (`elbo += ...`, then `return elbo`), whose result its caller
        runs `.backward()` on (also after unpacking it: `episode =
        generate_episode()`, `log_probs, rewards = episode["log_probs"],
        ...`, a REINFORCE rollout), or hands to a function of its module
        that runs a training step (`fake = self.generate_pair(...)`, then
        `self.update_critic(fake)`), or returns to a caller that does (a meta-learner's
        `prediction` feeding `validation_loss`), where the caller that runs
        the backward may be in another module (a base class's `fit` running
        `self.validation_loss(...).backward()`).  Nor a loop or inference
        function whose model may be a model class (one with `forward`) that
        asks autograd for gradients in one of its methods
        (`torch.autograd.grad`: test-time adaptation), or whose `forward`
        makes a tensor with `requires_grad=True` and steps an optimizer on
        a value (an energy model descending on its labels) or registers a
        gradient hook on a tensor (`attn.register_hook(self.save_attn_gradients)`
        in an explainability model: the hook raises on a tensor that does
        not require grad) or makes a tensor require grad and calls
        `.backward()` (an attack wrapper crafting adversarial inputs), or
        calls a function of its module or a method of its class decorated
        with `@torch.enable_grad()` (test-time adaptation: the forward
        trains the model on each test batch), or that is built of
        one (a renderer whose implicit field it asks for normals), when the
        module defines such a class or, with the project index, names one
        of the project (`from models.mtl import MtlLearner`), or when some
        model of the project has a `forward` that asks autograd itself or
        through up to two functions it calls (`forward` -> `get_outputs` ->
        `compute_forces`: interatomic potentials whose forces are the
        gradient of the energy): `no_grad` would make it raise.  A model the function builds from a `torch`
        class is known not to be one, nor one built (in the function, or as
        a global of the module) from a class of the module that does none of this itself.  A lambda
        handed to a call made under `no_grad` (`timeit(lambda: model(x))`)
        is taken to run there; one a function returns (`return lambda x:
        model(x)`, a feature extractor handed to a metrics library) runs
        where it is called, not in that function.  A model call in a branch that only torch
        releases before 0.4 run (`if TORCH_VERSION == "0.3":`, `if
        cfg.PYTORCH_VERSION_LESS_THAN_040:`, beside an `else:` under
        `no_grad`; or the `else:` of `if LooseVersion(torch.__version__) >
        LooseVersion("0.3.1"):`) is not read, and a call made in such a
        branch (`if torch_ver == "0.3": out = predict(net, x)` beside
        `else: with torch.no_grad(): out = predict(net, x)`) does not
        count among the function's callers, nor a loop that makes its
        inputs with `volatile=True` (itself, its function, a function of the
        module it runs the model through, or one they call) or iterates a
        loader built with a flag the loader's module passes on as
        `volatile=` (`Batches(data, evaluation=True)`), in a project whose
        README, requirements, `setup.py`, conda environment, shell scripts
        or `Dockerfile` name only releases before 0.4 (not a lower bound:
        `pytorch>=0.3.1` and `PyTorch 0.3+` allow later ones), or in a
        module that calls nothing PyTorch 0.4 added (`.item()`, `.to(...)`,
        `torch.device`, ...; see GRD003 and `gradmode-current-torch`): the flag still turned grad off there.  A module that
        names `no_grad` too runs on a later release, where the flag does
        nothing: its loops are reported.  Nor is a loop in a module that reads
        a loss as `loss.data[0]` and names no `no_grad`: code for 0.3, which
        had no `no_grad`; every release since 0.5 raises `IndexError` at that
        read, so the module runs on none until it is ported.  (A script whose
        evaluation loop runs before its first such read is missed.)  A name a `for` binds to classes of the module
        (`for model, path in ((Small, p1), (Large, p2)):`) is called to build
        an object, not to run a forward; so is a `self` attribute every
        assignment of which is an imported function or class, not called
        (`self.network = resnet.resnet32`).  Model calls are found by name and by evidence in the same
        file, so a model called through an unusual name is missed: add it with
        `--gradmode-model-names`.
    """
    fix_safety = """
        Opt-in (`flake8-gradmode --fix --unsafe-fixes`): a function that is
        all evaluation (it runs no training step and never switches a model
        to training mode, directly or through the module's own functions) is
        decorated with `@torch.no_grad()`; any other evaluation loop is
        wrapped in `with torch.no_grad():`.  It changes behaviour on purpose:
        outputs no longer carry `grad_fn`, so code that later calls
        `.backward()` through them would fail, which is why it is not applied
        without `--unsafe-fixes`.
    """
    references = (
        "https://pytorch.org/docs/stable/generated/torch.no_grad.html",
        "https://pytorch.org/docs/stable/notes/autograd.html#locally-disabling-gradient-computation",
    )

    VALID = (
        Valid(
            """
            import torch

            bn = torch.nn.BatchNorm1d(3)
            bn.eval()
            outs = []
            for _ in range(4):
                outs.append(bn(torch.randn(8, 3)))
            """,
            title="A lone normalisation layer in a loop: a lesson on the layer, not a model evaluated",
            checks=(Holds("sum(p.numel() for p in bn.parameters()) == 6 and len(outs) == 4",
                          "the loop runs a single layer, whose only parameters are six scale and shift values"),),
        ),
        Valid(
            """
            import torch

            model = torch.nn.Linear(4, 2)
            forwards = []
            model.register_forward_hook(lambda module, inputs, output: forwards.append(output))
            test_rows = [torch.randn(1, 4) for _ in range(5)]
            features = []
            for i, row in enumerate(test_rows):
                if i == 0:
                    print("first row scores:", model(row).tolist())
                features.append(row.flatten())
            """,
            title="A forward on one pass only, to show a value",
            checks=(Holds("len(forwards) == 1 and len(features) == 5",
                          "the loop runs over every row, the model on the first only: one graph, not one per batch"),),
        ),
        Valid(
            """
            import torch

            net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                                      torch.nn.Dropout(0.5), torch.nn.Linear(4 * 6 * 6, 10))


            def print_shapes(net, X):
                net.eval()
                for i, layer in enumerate(net):
                    X = layer(X)
                    print(i, type(layer).__name__, tuple(X.shape))
                return X


            image = torch.rand(1, 1, 8, 8)
            out = print_shapes(net, image)
            """,
            title="A shape check through a model's layers, one after the other",
            checks=(Holds("torch.equal(out, net(image))",
                          "the loop is one forward pass of `net`, layer by layer: one graph, not one per batch"),),
        ),
        Valid(
            """
            import torch

            model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))
            val_loader = [torch.randn(8, 4) for _ in range(3)]
            model.eval()
            outputs = []
            with torch.no_grad():
                for x in val_loader:
                    outputs.append(model(x))
            """,
            checks=(Holds("outputs[0].grad_fn is None", "no graph is kept"),),
        ),
        Valid(
            """
            import torch

            model = torch.nn.Linear(4, 2)


            @torch.inference_mode()
            def evaluate(loader):
                model.eval()
                return [model(x) for x in loader] + [model(x) for x in loader]


            @torch.no_grad()
            def predict_all(loader):
                model.eval()
                preds = []
                for x in loader:
                    preds.append(model(x).argmax(1))
                return preds


            outputs = predict_all([torch.randn(8, 4)])
            """,
            title="A grad-disabling decorator",
            checks=(Holds("not outputs[0].requires_grad", "no graph is kept"),),
        ),
        Valid(
            """
            import torch


            def validate(model, loader):
                model.eval()
                outputs = []
                for x in loader:
                    outputs.append(model(x))
                return outputs


            model = torch.nn.Linear(4, 2)
            with torch.no_grad():
                outputs = validate(model, [torch.randn(8, 4)])
            """,
            title="Every caller in the module disables grad",
            checks=(Holds("outputs[0].grad_fn is None", "no graph is kept"),),
        ),
        Valid(
            """
            import torch

            model = torch.nn.Linear(4, 2)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            loaders = {"train": [torch.randn(8, 4)], "val": [torch.randn(8, 4)]}
            for phase in ["train", "val"]:
                model.train(phase == "train")
                for x in loaders[phase]:
                    with torch.set_grad_enabled(phase == "train"):
                        loss = model(x).pow(2).mean()
                        if phase == "train":
                            optimizer.zero_grad()
                            loss.backward()
                            optimizer.step()
            """,
            title="The tutorial's phase loop: grad mode depends on the phase",
        ),
        Valid(
            """
            import torch

            model = torch.nn.Linear(4, 2)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            val_loader = [torch.randn(8, 4)]
            model.eval()
            for x in val_loader:
                loss = model(x).pow(2).mean()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            """,
            title="A loop that trains is not an evaluation loop (test-time adaptation)",
        ),
        Valid(
            """
            import torch


            class Decoder(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.cell = torch.nn.GRUCell(4, 4)

                def inference(self, h, steps):
                    outs = []
                    for _ in range(steps):
                        h = self.cell(h, h)
                        outs.append(h)
                    return outs


            decoder = Decoder().eval()
            with torch.no_grad():
                outs = decoder.inference(torch.randn(2, 4), 3)
            """,
            title="A loop in an `nn.Module`'s own method: the module's caller owns the grad mode",
            checks=(Holds("outs[-1].grad_fn is None", "the caller disabled grad"),),
        ),
        Valid(
            """
            from fairseq.tasks import FairseqTask


            class TranslationTask(FairseqTask):
                def valid_step(self, sample, model, criterion):
                    model.eval()
                    for chunk in sample["net_input"].split(2):
                        model(chunk)
            """,
            title="A framework's hook, in a class derived from the framework's class (fairseq's `valid_step`)",
            runnable=False,
            why_not_run="needs fairseq, whose trainer calls the hook under `torch.no_grad()`",
        ),
        Valid(
            """
            import time

            import torch

            model = torch.nn.Linear(4, 2)
            x = torch.randn(8, 4)
            model.eval()
            start = time.perf_counter()
            for _ in range(10):
                model(x)
            elapsed = time.perf_counter() - start
            """,
            title="A timing loop measures a configuration (outputs discarded between clock reads)",
        ),
        Valid(
            """
            import torch


            @torch.no_grad()
            def evaluate(model, val_loader):
                model.eval()
                saliency = []
                for x in val_loader:
                    with torch.enable_grad():
                        x = x.clone().requires_grad_()
                        model(x).max().backward()
                    saliency.append(x.grad.abs())
                return saliency


            saliency = evaluate(torch.nn.Linear(4, 2), [torch.randn(8, 4)])
            """,
            title="Grad enabled on purpose inside a grad-disabled evaluation",
            checks=(Holds("saliency[0].grad_fn is None", "only the saliency pass used grad"),),
        ),
        Valid(
            """
            import torch


            def create_encoder():
                encoder = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU())
                encoder.eval()
                for param in encoder.parameters():
                    param.requires_grad = False
                return encoder


            def extract_features(batches):
                encoder = create_encoder()
                features = []
                for x in batches:
                    features.append(encoder(x))
                return features


            features = extract_features([torch.randn(8, 4)])
            """,
            title="A model a function of the module freezes before returning it",
            checks=(Holds("features[0].grad_fn is None", "the frozen encoder builds no graph"),),
        ),
        Valid(
            """
            import torch


            def extract_features(batches, pretrained):
                if pretrained:
                    encoder = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU())
                    for param in encoder.parameters():
                        param.requires_grad = False
                    encoder.eval()
                else:
                    encoder = None
                features = []
                if encoder is not None:
                    for x in batches:
                        features.append(encoder(x).cpu())
                return features


            features = extract_features([torch.randn(8, 4)], pretrained=True)
            """,
            title="A model frozen in the branch that builds it, None in the other",
            checks=(Holds("features[0].grad_fn is None", "the only model there is is frozen"),),
        ),
        Valid(
            """
            import torch


            class Features(torch.nn.Module):
                def __init__(self, requires_grad=False):
                    super().__init__()
                    self.body = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU())
                    for param in self.parameters():
                        param.requires_grad = requires_grad

                def forward(self, x):
                    return self.body(x)


            def evaluate(batches, use_globals=False):
                if use_globals:
                    global FEATURE_MODEL
                if "FEATURE_MODEL" not in globals() or not use_globals:
                    model = Features()
                    if use_globals:
                        FEATURE_MODEL = model
                else:
                    model = FEATURE_MODEL
                features = []
                for x in batches:
                    features.append(model(x))
                return features


            features = evaluate([torch.randn(8, 4)], use_globals=True)
            features += evaluate([torch.randn(8, 4)], use_globals=True)
            """,
            title="A frozen model kept in a module global for the next call",
            checks=(Holds("features[1].grad_fn is None", "the model the global keeps is frozen"),),
        ),
        Valid(
            """
            import torch


            class Adapter(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.head = torch.nn.Linear(4, 2)

                def forward(self, x):
                    loss = self.head(x).pow(2).mean()
                    grad, = torch.autograd.grad(loss, self.head.weight)
                    return torch.nn.functional.linear(x, self.head.weight - 0.1 * grad, self.head.bias)


            model = Adapter()
            model.eval()
            test_batches = [torch.randn(8, 4)]
            scores = []
            for x in test_batches:
                scores.append(model(x).argmax(1))


            def under_no_grad():
                try:
                    with torch.no_grad():
                        model(test_batches[0])
                except RuntimeError:
                    return "raises"
            """,
            title="A model that asks autograd for gradients itself (test-time adaptation)",
            checks=(Holds("under_no_grad() == 'raises'", "under `no_grad` its forward cannot run"),),
        ),
        Valid(
            """
            import torch

            cnn = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Conv2d(4, 4, 3))
            image = torch.randn(1, 3, 16, 16)
            model = torch.nn.Sequential()
            targets = []
            for i, layer in enumerate(cnn.children()):
                model.add_module(str(i), layer)
                targets.append(model(image).detach())
            """,
            title="A model built layer by layer, its targets detached (the style-transfer tutorial)",
            checks=(Holds("not any(t.requires_grad for t in targets)", "no target keeps a graph"),),
        ),
        Valid(
            """
            import torch

            policy = torch.nn.Linear(4, 2)
            optimizer = torch.optim.SGD(policy.parameters(), lr=0.1)


            def generate_episode():
                log_probs, rewards = [], []
                for t in range(3):
                    dist = torch.distributions.Categorical(logits=policy(torch.randn(1, 4)))
                    action = dist.sample()
                    log_probs.append(dist.log_prob(action))
                    rewards.append(1.0)
                return {"log_probs": torch.cat(log_probs), "rewards": torch.tensor(rewards)}


            for epoch in range(2):
                episode = generate_episode()
                log_probs, rewards = episode["log_probs"], episode["rewards"]
                loss = -(log_probs * rewards).mean()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            """,
            title="A rollout whose log-probabilities the caller backpropagates (REINFORCE)",
            checks=(Holds("policy.weight.grad is not None", "the policy gradient needs the rollout's graph"),),
        ),
        Valid(
            """
            import types

            import torch

            args = types.SimpleNamespace(test=None)


            class Runner:
                def __init__(self):
                    self.model = torch.nn.Linear(4, 2)
                    self.test_batches = [torch.randn(8, 4)]
                    self.outputs = []

                def test(self):
                    for x in self.test_batches:
                        self.outputs.append(self.model(x))

                def fit(self):
                    if args.test is not None:
                        return
                    self.model.eval()
                    with torch.no_grad():
                        self.test()


            runner = Runner()
            runner.fit()
            """,
            title="A method its only caller runs under `no_grad`, beside a setting of the same name",
            checks=(Holds("runner.outputs[0].grad_fn is None", "no graph is built"),),
        ),
        Valid(
            """
            import torch


            def load_for_inference():
                model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4))
                model.eval()
                for _ in range(3):
                    _ = model(torch.randn(1, 1, 8, 8))
                return model


            model = load_for_inference()
            """,
            title="A few warm-up passes over random inputs, whose outputs nothing reads",
        ),
        Valid(
            """
            import torch


            class Small(torch.nn.Module):
                def __init__(self, width):
                    super().__init__()
                    self.body = torch.nn.Sequential(torch.nn.Linear(4, width), torch.nn.BatchNorm1d(width))

                def forward(self, x):
                    return self.body(x)


            class Wide(Small):
                def __init__(self, width):
                    super().__init__(width * 2)


            def test_all_variants():
                x = torch.randn(8, 4)
                for name, variant in {"small": Small, "wide": Wide}.items():
                    block = variant(16)
                    y = block(x)
                    with torch.no_grad():
                        for p in block.parameters():
                            p.zero_()
                    print(name, tuple(y.shape), block(x).abs().sum().item())
                    built.append(block)


            built = []
            test_all_variants()
            """,
            title="A new untrained model built on every pass: a check of the architectures",
            checks=(Holds("len({id(block) for block in built}) == 2",
                          "each pass runs a model of its own, built just before: no model is evaluated batch by batch"),),
        ),
        Valid(
            """
            import torch


            def small():
                return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8))


            def large():
                return torch.nn.Sequential(torch.nn.Linear(4, 32), torch.nn.BatchNorm1d(32))


            def check_shapes():
                x = torch.randn(2, 4)
                for net in [small(), large()]:
                    y = net(x)
                    shapes.append(tuple(y.shape))


            shapes = []
            check_shapes()
            """,
            title="Models a literal list builds, each run once: a check of their shapes",
            checks=(Holds("shapes == [(2, 8), (2, 32)]",
                          "each model in the list is new and untrained, run once on random inputs for its output's shape"),),
        ),
        Valid(
            """
            import torch
            from torch.autograd import Variable

            model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))
            criterion = torch.nn.MSELoss()
            loader = [(torch.randn(8, 4), torch.randn(8, 4))]
            for x, y in loader:
                loss = criterion(model(Variable(x)), Variable(y))
                print(loss.data[0])
            model.eval()
            for x, y in loader:
                val_loss = criterion(model(Variable(x)), Variable(y))
                print(val_loss.data[0])
            """,
            title="Code for PyTorch 0.3, which reads a loss as `loss.data[0]` and had no `no_grad`",
            runnable=False,
            why_not_run="it shows code for PyTorch 0.3; on any release since 0.5 `loss.data[0]` raises `IndexError`",
        ),
        Valid(
            """
            import torch


            def random_features(count):
                models = []
                for _ in range(count):
                    model = torch.nn.Sequential(torch.nn.Linear(1, 8), torch.nn.Tanh())
                    for param in model.parameters():
                        param.requires_grad = False
                    models.append(model)
                return models


            def evaluate(models, points):
                scores = []
                for model in models:
                    scores.append(model(points).sum().item())
                return scores


            models = random_features(3)
            scores = evaluate(models, torch.linspace(0, 1, 5).reshape(-1, 1))
            """,
            title="A list of models a function of the module froze one by one",
            checks=(Holds("not any(p.requires_grad for m in models for p in m.parameters())",
                          "no weight of any model requires grad, so no forward builds a graph"),),
        ),
    )
    INVALID = (
        Invalid(
            """
            import torch

            model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))
            val_loader = [torch.randn(8, 4) for _ in range(3)]
            model.eval()
            outputs = []
            for x in val_loader:
                outputs.append(model(x))
            """,
            at=((7, 0),),
            symptom=Holds("outputs[0].grad_fn is not None", "every collected output keeps its autograd graph"),
        ),
        Invalid(
            """
            import torch


            def evaluate(model, batches):
                model.eval()
                scores = []
                for x in batches:
                    scores.append(model(x).softmax(-1))
                return scores


            scores = evaluate(torch.nn.Linear(4, 2), [torch.randn(8, 4)])
            """,
            title="A function named like evaluation",
            at=((7, 4),),
            symptom=Holds("scores[0].grad_fn is not None", "every collected output keeps its autograd graph"),
        ),
        Invalid(
            """
            import torch


            class Embedder:
                def __init__(self):
                    self.encoder = torch.nn.Linear(4, 3)
                    self.encoder.eval()

                def embed(self, x):
                    return self.encoder(x)


            vec = Embedder().embed(torch.randn(2, 4))
            """,
            title="An inference function (eval mode set in `__init__`)",
            at=((10, 15),),
            symptom=Holds("vec.grad_fn is not None", "the returned embedding carries a graph"),
        ),
        Invalid(
            """
            import torch


            def do_detect(model, image):
                model.eval()
                boxes = model(image)
                return boxes


            boxes = do_detect(torch.nn.Linear(4, 6), torch.randn(1, 4))
            """,
            title="A detection helper that puts the model in eval mode first",
            at=((6, 12),),
            symptom=Holds("boxes.grad_fn is not None", "the returned detections carry a graph"),
        ),
        Invalid(
            """
            import torch

            net = torch.nn.Linear(4, 4)
            net.eval()
            x = torch.randn(1, 4)
            steps = 0
            while steps < 3:
                x = net(x).tanh()
                steps += 1
            """,
            title="A `while` loop after `.eval()`",
            at=((7, 0),),
            symptom=Holds("x.grad_fn is not None", "the output carries the graph of all steps"),
        ),
        Invalid(
            """
            import torch


            def forward_pass(model, x):
                return model(x)


            def evaluate(model, loader):
                model.eval()
                outputs = []
                for x in loader:
                    outputs.append(forward_pass(model, x))
                return outputs


            outputs = evaluate(torch.nn.Linear(4, 2), [torch.randn(8, 4)])
            """,
            title="The model runs one call away, in a helper training may share",
            at=((11, 4),),
            symptom=Holds("outputs[0].grad_fn is not None", "every collected output keeps its autograd graph"),
        ),
        Invalid(
            """
            import torch

            models = {"generator": torch.nn.Linear(4, 4)}
            val_batches = [torch.randn(8, 4)]
            samples = []
            for z in val_batches:
                samples.append(models["generator"](z))
            """,
            title="A model taken from a container",
            at=((6, 0),),
            symptom=Holds("samples[0].grad_fn is not None", "every collected output keeps its autograd graph"),
        ),
        Invalid(
            """
            import torch

            model = torch.nn.Linear(4, 2)
            batches = [torch.randn(8, 4) for _ in range(3)]
            predictions = []
            for x in batches:
                out = model(x)
                predictions.extend(out.argmax(1).tolist())
            """,
            title="Outputs stripped of their graph, in code that trains nothing",
            at=((6, 0),),
            symptom=Holds("out.grad_fn is not None", "each batch's forward still builds a graph"),
        ),
        Invalid(
            """
            import io

            import torch

            generator = torch.nn.Linear(4, 4)
            optimizer = torch.optim.SGD(generator.parameters(), lr=0.1)
            fixed_z = torch.randn(2, 4)


            def save_samples(images):
                torch.save(images, io.BytesIO())


            for step in range(2):
                loss = generator(torch.randn(8, 4)).pow(2).mean()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                samples = generator(fixed_z)
                save_samples(samples.detach())
            """,
            title="A forward in a training loop whose output is only saved",
            at=((19, 14),),
            symptom=Holds("samples.grad_fn is not None", "the saved samples were computed with a graph"),
        ),
    )

    def finish(self) -> None:
        ctx = self.context
        reported: Set[int] = set()
        covered: Set[int] = set()
        found: List[Tuple[flow.EvalLoop, str]] = []
        for ev in flow.evaluation_loops(ctx):
            if ev.loop.inside(reported) or _runs_a_wrapper_of_the_model(ctx, ev):
                continue
            what = _with_grad(ctx, ev)
            if what is None:
                continue
            # the costlier questions last, only for a loop about to be reported
            calls = [*ev.model_calls, *(p.model_call for p in ev.paths)]
            if _on_one_pass_only(ev.loop, calls) or (not ev.paths and _through_the_layers(ev.loop, calls)):
                covered.update(id(c) for c in calls)  # one forward, printed: no graph per batch
                continue
            if not flow.model_needs_grad(ctx, calls) and not flow.model_turns_grad_off(ctx, calls) \
                    and not _volatile_inputs(ctx, ev.loop.scope, [p.callee for p in ev.paths], ev.loop.node) \
                    and not _another_framework(ctx) and not flow.under_project_contexts(ctx, calls, "g") \
                    and not all(flow.built_parameter_free(ctx, c, _NO_MODEL_LAYERS) for c in calls) \
                    and not _differentiated_by_callers(ctx, ev.loop.scope) \
                    and not _hands_the_model_to_an_attack(ctx, ev) and not _code_for_0_3(ctx):
                reported.add(id(ev.loop))
                covered.update(id(c) for c in ev.loop.model_calls)
                covered.update(id(p.model_call) for p in ev.paths)
                found.append((ev, what))
        # A loop that runs the model only through functions whose own loops are
        # reported (``for batch in data: infer(net, batch)`` over ``infer``'s
        # loop) is the same forward again: one ``no_grad`` in either place
        # mends both, and the report stays where the forward is.
        direct = {id(c): id(ev.loop) for ev, _ in found for c in ev.model_calls}
        for ev, what in found:
            if not ev.model_calls and ev.paths and all(
                direct.get(id(p.model_call), id(ev.loop)) != id(ev.loop) for p in ev.paths
            ):
                continue
            self.report(
                ev.loop.node,
                f"evaluation loop runs {what} with grad enabled, so every batch builds an autograd graph; "
                "wrap it in `with torch.no_grad():`",
                fix=self._fix(ev.loop.scope, ev.loop.node),
            )
        for loop, calls in flow.phase_loops(ctx):
            bad = [c for c in calls if flow.call_with_grad(ctx, c)]
            if bad and not loop.inside(reported) and id(loop) not in reported:
                reported.add(id(loop))
                covered.update(id(c) for c in loop.model_calls)
                self.report(
                    loop.node,
                    f"loop runs `{flow.display(bad[0].key)}` with grad enabled in its evaluation phase too (its "
                    "training steps run only in the training phase); wrap the forward in "
                    "`with torch.set_grad_enabled(<training phase>):`",
                    condition=lambda scope=loop.scope: not flow.never_runs(ctx, scope) and not _code_for_0_3(ctx),
                )
        for scope, calls in flow.inference_functions(ctx):
            bad = [
                c for c in calls
                if flow.call_with_grad(ctx, c) and id(c) not in covered and not _builds_no_graph(ctx, scope, c)
            ]
            if bad and not flow.model_needs_grad(ctx, bad) and not _volatile_inputs(ctx, scope, []) \
                    and not _code_for_0_3(ctx):
                name = scope.function.name if scope.function else "?"
                covered.update(id(c) for c in calls)
                self.report(
                    bad[0].node,
                    f"inference function `{name}` runs `{flow.display(bad[0].key)}` with grad enabled, so each "
                    "call builds an autograd graph; decorate it with `@torch.no_grad()`",
                    fix=self._fix(scope, None),
                )
        for call, stmt in flow.logged_forwards(ctx):
            if id(call) not in covered and flow.call_with_grad(ctx, call) and not _code_for_0_3(ctx):
                self.report(
                    call.node,
                    f"`{flow.display(call.key)}` runs with grad enabled only to save, plot or log its output, so "
                    "the call builds an autograd graph nothing uses; wrap it in `with torch.no_grad():`",
                    fix=Fix("wrap-no-grad", stmt, "{torch}.no_grad()", unsafe=True),
                )

    def _fix(self, scope: flow.Scope, loop: Optional[ast.stmt]) -> Optional[Fix]:
        """Decorate the function when all of it is evaluation (it trains
        nothing and never switches to training mode); otherwise wrap the loop."""
        fn = scope.function
        if fn is not None and fn.name not in ("__init__", "forward") and not flow.trains(self.context, scope):
            if not scope.train_switches and not scope.maybe_train_switches:
                return Fix("decorate-no-grad", fn.node, "{torch}.no_grad()", unsafe=True)
        if loop is None:
            return None
        return Fix("wrap-no-grad", loop, "{torch}.no_grad()", unsafe=True)
