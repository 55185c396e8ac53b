"""Visit flake8's ``ast`` tree once, collect violations.  ``check`` never raises.

The traversal is one walk of the ``ast`` tree (``_Driver``).  For every node
it first lets the ``Tracker`` update the shared ``Context`` (imports, scopes,
bindings, grad state, loops and calls) and then calls the hooks of every
enabled rule; on the way out, rules see the node before the tracker leaves it.
After the traversal, module-local callers are attached to the functions they
call and each rule's ``finish`` runs.  Reports carry nodes; positions (``ast``
gives UTF-8 byte columns, flake8 wants characters) are computed at the end,
and only for what is reported.  No libcst here: that is the fixer's.
"""

from __future__ import annotations

import ast
import builtins
import gc
import sys
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Sequence, Set, Tuple, Union

from flake8_gradmode import facts, flow
from flake8_gradmode.context import ClassInfo, Context, Fix, physical_lines
from flake8_gradmode.names import CONFIG_NAMES, FRAMEWORK_RUNNERS, OTHER_FRAMEWORKS, TEST_FRAMEWORKS, tokens, word_chars
from flake8_gradmode.registry import RULES
from flake8_gradmode.rule import Edit, Rule, Violation
from flake8_gradmode.settings import Settings
from flake8_gradmode.tracker import (
    FunctionInfo,
    Grad,
    all_params,
    call_args,
    chain_root,
    dotted,
    first_value,
    is_const,
    is_super_call,
    last_name,
    mode_value,
    SAME_MODULE_METHODS,
    string_value,
    subscripted_root,
    switches_to_eval,
    switches_to_train,
    unchained,
    unsubscripted,
)

#: The code of an internal error of the plugin (never a property of the file).
INTERNAL_ERROR = "GRD000"

#: Values a name may be bound to that may be one of torch's grad-mode callables.
_NAMES_AND_ATTRIBUTES = frozenset({ast.Name, ast.Attribute})


#: ``ast.Load``, looked up once: every name of the file is tested against it
_LOAD = ast.Load


class Tracker:
    """Keeps the context in step with the traversal.  Its hooks run before the
    rules' ``visit_*`` hooks and after their ``leave_*`` hooks."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.grad = ctx.grad
        self.flow = ctx.flow
        self._call_names = ctx._call_names
        self._referenced = ctx._referenced
        self._reference = ctx._referenced.add
        #: lambdas handed to a call made with grad disabled
        self._disabled_lambdas: Set[int] = set()
        #: lambdas a ``return`` hands back, and how many of them the walk is inside
        self._returned_lambdas: Set[int] = set()
        self._in_returned_lambda = 0
        #: how many generator expressions the walk is inside
        self._generators = 0
        #: the ``if`` bodies entered that run another framework's model (``_other_framework``)
        self._foreign: List[bool] = []
        #: name nodes chosen by a flag (``f if use_mlp else g``): ``id`` of the node -> the flag
        self._chosen: Dict[int, ast.expr] = {}

    # blocks and scopes ---------------------------------------------------------

    def visit_block(self, node: ast.AST) -> None:
        self.grad.enter_block()

    def leave_block(self, node: ast.AST) -> None:
        self.grad.leave_block()

    def visit_Import(self, node: ast.Import) -> None:
        self.ctx.imports.add_import(node)
        if any(a.name.split(".")[0] in TEST_FRAMEWORKS for a in node.names):
            self.flow.test_framework = True
        for alias in node.names:
            self._referenced_dotted(alias.name, alias.asname)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        self.ctx.imports.add_import_from(node)
        if node.module is not None and node.module.split(".")[0] in TEST_FRAMEWORKS:
            self.flow.test_framework = True
        if node.module is not None:
            self._referenced_dotted(node.module, None)
        for alias in node.names:
            if alias.name != "*":
                self._referenced_dotted(alias.name, alias.asname)

    def _referenced_dotted(self, name: str, asname: Optional[str]) -> None:
        """Names an import statement mentions count as used (not called)."""
        first, *rest = name.split(".")
        self.ctx._referenced.add(first)
        self.ctx._referenced_attrs.update(rest)
        if asname is not None:
            self.ctx._referenced.add(asname)

    def visit_Global(self, node: ast.Global) -> None:
        self.ctx._referenced.update(node.names)

    visit_Nonlocal = visit_Global

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self.ctx._referenced.add(node.name)

    def visit_arg(self, node: ast.arg) -> None:
        self.ctx._referenced.add(node.arg)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        ctx = self.ctx
        is_module = any(facts.is_module_class_base(ctx, b) for b in node.bases)
        plain = not is_module and all(dotted(b) == "object" for b in node.bases) and any(
            isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) and stmt.name in ("eval", "train")
            for stmt in node.body
        )
        ctx.classes.append(ClassInfo(node.name, is_module, len(self.grad.frames), plain))
        ctx.class_bases.setdefault(node.name, []).extend(
            b.id for b in (unsubscripted(b) for b in node.bases) if isinstance(b, ast.Name)
        )  # ``Embeddings[Sentence]`` is based on ``Embeddings``
        if is_module:
            self.flow.module_classes.add(node.name)

    def leave_ClassDef(self, node: ast.ClassDef) -> None:
        self.ctx.classes.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        if node.name.startswith("test_"):
            self.flow.test_framework = True

    def visit_FunctionDef_body(self, node: ast.FunctionDef) -> None:
        ctx = self.ctx
        in_class = bool(ctx.classes) and ctx.classes[-1].frame_depth == len(self.grad.frames)
        info = FunctionInfo(
            name=node.name,
            node=node,
            entry=self.grad.decorator_state(ctx.imports, node.decorator_list) or Grad.INHERITED,
            class_name=ctx.classes[-1].name if in_class else None,
            parent=self.grad.function,
            key=ctx.function_key(node.name, in_class),
        )
        if info.key is not None:
            ctx.functions.setdefault(info.key, []).append(info)
            info.ask = ctx.entry_from_project
        elif info.parent is not None:
            ctx.nested.setdefault((id(info.parent), info.name), []).append(info)
        self.grad.push_frame("function", info, info.entry)
        scope = flow.Scope(info, info.class_name)
        if info.key is not None:
            self.flow.by_key.setdefault(info.key, []).append(scope)
        self.flow.scopes.append(scope)
        self.flow.all_scopes.append(scope)
        for param in all_params(node.args):
            ctx.bind_name(param.arg, facts.Kind.OTHER, None)

    def leave_FunctionDef_body(self, node: ast.FunctionDef) -> None:
        self.grad.pop_frame()
        self.flow.scopes.pop()

    def visit_Lambda_body(self, node: ast.Lambda) -> None:
        # ``timeit(lambda: model(x))`` inside ``no_grad``: the callee runs it there
        state = Grad.DISABLED if id(node) in self._disabled_lambdas else Grad.INHERITED
        self.grad.push_frame("lambda", None, state)
        for param in all_params(node.args):
            self.ctx.bind_name(param.arg, facts.Kind.OTHER, None)
        if id(node) in self._returned_lambdas:
            self._in_returned_lambda += 1

    def leave_Lambda_body(self, node: ast.Lambda) -> None:
        self.grad.pop_frame()
        if id(node) in self._returned_lambdas:
            self._in_returned_lambda -= 1

    def visit_GeneratorExp(self, node: ast.GeneratorExp) -> None:
        self.grad.push_frame("generator", None, Grad.INHERITED)
        self._generators += 1

    def leave_GeneratorExp(self, node: ast.GeneratorExp) -> None:
        self.grad.pop_frame()
        self._generators -= 1

    # grad contexts -------------------------------------------------------------

    def visit_With_body(self, node: ast.With) -> None:
        self.grad.enter_with(self.ctx.imports, node.items)
        for item in node.items:
            if item.optional_vars is not None:
                self.ctx.bind(item.optional_vars, facts.Kind.OTHER, item.context_expr)

    def leave_With_body(self, node: ast.With) -> None:
        self.grad.leave_with()

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if id(node) not in self.ctx._call_names:
            value = node.value
            if value.__class__ is not ast.Name or value.id not in CONFIG_NAMES:  # type: ignore[attr-defined]
                # ``args.test`` is a setting, not a method ``test`` used as a value
                self.ctx._referenced_attrs.add(node.attr)
        if node.attr == "training" and isinstance(node.value, ast.Name) and node.value.id == "self":
            self.flow.mode_matters = self.flow.mode_by_layers = True  # a module that behaves differently in training

    def visit_Expr(self, node: ast.Expr) -> None:
        """A bare ``model.eval`` (GRD002) counts as the switch its author meant."""
        value = node.value
        if isinstance(value, ast.Attribute) and value.attr == "eval":
            self.flow.scope.eval_switches.append(self.flow.tick())
        elif isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr == "detach_" \
                and isinstance(value.func.value, ast.Name):
            self.flow.scope.detached_in_place.add(value.func.value.id)

    def _made_leaf(self, node: ast.stmt) -> None:
        """``x.requires_grad_()`` / ``x.requires_grad = True``: from here on
        ``x`` is a leaf that requires grad."""
        target: Optional[ast.expr] = None
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            func = node.value.func
            if isinstance(func, ast.Attribute) and func.attr == "requires_grad_":
                first = first_value(node.value)
                if first is None or is_const(first, True):
                    target = func.value
        elif isinstance(node, ast.Assign) and is_const(node.value, True):
            for t in node.targets:
                if isinstance(t, ast.Attribute) and t.attr == "requires_grad":
                    target = t.value
        if isinstance(target, ast.Name) and id(node) not in self._returning_branches():
            self.ctx.bind(target, facts.Kind.PARAM, None)

    def _returning_branches(self) -> Set[int]:
        """Statements of ``if`` branches that end in ``return`` or ``raise``:
        what they do to a name does not reach the code after the ``if``.
        Found on the first ``requires_grad_()`` (rare), once per file."""
        cache = self.flow.cache
        found = cache.get("returning-branches")
        if found is None:
            found = set()
            blocks = [self.ctx.tree.body]  # statements only: an ``if`` is never inside an expression
            while blocks:
                for stmt in blocks.pop():
                    if stmt.__class__ is ast.If:
                        for block in (stmt.body, stmt.orelse):  # type: ignore[attr-defined]
                            if block and isinstance(block[-1], (ast.Return, ast.Raise)):
                                found.update(id(s) for s in block)
                    for field in _STATEMENT_BLOCKS:
                        block = getattr(stmt, field, None)
                        if block:
                            blocks.append(block)
                    for handler in getattr(stmt, "handlers", ()):
                        blocks.append(handler.body)
                    for case in getattr(stmt, "cases", ()):
                        blocks.append(case.body)
            cache["returning-branches"] = found
        return found  # type: ignore[return-value]

    def leave_Expr(self, node: ast.Expr) -> None:
        """``torch.set_grad_enabled(False)`` as a statement, or a grad context
        entered by hand: from here to the block's end (and, for
        ``set_grad_enabled``, past it: ``GradTracker.leave_block``)."""
        self._made_leaf(node)
        state = self.grad.statement_effect(self.ctx.imports, node)
        if state is not None:
            self.grad.push_state(state, self.grad.sets_by_hand(self.ctx.imports, node))
            if state is Grad.DISABLED and self.grad.function is not None:
                # ``torch.set_grad_enabled(False)`` in a function is process
                # state: it stays off after the function returns
                self.flow.grad_off_by_hand = True
        elif isinstance(node.value, ast.Call):
            func = node.value.func
            if func.__class__ is ast.Attribute and func.attr in _FILLS \
                    and func.value.__class__ is ast.Name:  # type: ignore[attr-defined]
                # ``outputs.update(pose)``, ``losses.append(l)``: the values flow into the container
                self._fill(func.value.id, node.value.args)  # type: ignore[attr-defined]
            root = _frozen_chain_root(node.value)  # net.eval().requires_grad_(False).to(device)
            if root and (func.attr == "freeze"  # type: ignore[attr-defined]
                         or facts.classify(self.ctx, node.value) is facts.Kind.FROZEN):
                self.flow.scope.frozen_models[root] = self.flow.tick()
            if isinstance(func, ast.Attribute) and (
                func.attr == "requires_grad_" and is_const(first_value(node.value), False)
                or func.attr == "detach_" and not node.value.args and not node.value.keywords
            ):
                # for p in net.parameters(): p.requires_grad_(False) (or p.detach_())
                self._frozen_by_loop(func.value)
                target = func.value
                if target.__class__ is ast.Name:
                    binding = self.ctx.lookup(target.id)  # type: ignore[attr-defined]
                    if binding is not None and binding.kind is facts.Kind.PARAM:
                        # ``opt_points.detach_()``: a leaf that no longer requires grad
                        self.ctx.bind_name(target.id, facts.Kind.FROZEN, binding.value)  # type: ignore[attr-defined]

    def _frozen_by_loop(self, param: ast.expr) -> None:
        """``for _, p in net.named_parameters(): p.requires_grad = False``:
        ``net`` is frozen from here on."""
        loops = self.flow.loops_here()
        if not loops or not isinstance(param, ast.Name):
            return
        found = facts.parameters_loop(loops[0].node)
        if found is not None and isinstance(found[1], ast.Name) and found[1].id == param.id:
            root = dotted(found[0])
            if root is not None:
                self.flow.scope.frozen_models[root] = self.flow.tick()

    # bindings ------------------------------------------------------------------

    def _fill(self, container: str, values: List[ast.expr]) -> None:
        """``values`` flow into ``container`` here (``Scope.fills``), with grad
        off or not (``Scope.filled_with_grad``)."""
        scope = self.flow.scope
        scope.fills.setdefault(container, []).extend(values)
        if self.grad.state is not Grad.DISABLED:
            scope.filled_with_grad.add(container)

    def leave_Assign(self, node: ast.Assign) -> None:
        if len(node.targets) == 1 and node.targets[0].__class__ is ast.Name and _built_in_eval(node.value):
            # ``model = Net().to(device).eval()``: the fresh object switched is the model bound here
            seq = self.flow.tick()
            self.flow.scopes[-1].eval_switches.append(seq)
            self.flow.switch_keys[seq] = node.targets[0].id  # type: ignore[attr-defined]
        if is_const(node.value, False):
            for t in node.targets:
                if isinstance(t, ast.Attribute) and t.attr == "requires_grad":
                    self._frozen_by_loop(t.value)
        kind = facts.classify(self.ctx, node.value)
        if kind is facts.Kind.MODULE and _builds_loss(self.ctx, node.value):
            kind = facts.Kind.OTHER  # ``nn.MSELoss().cuda()``: a criterion, not a model
            self.flow.criteria.update(d for d in map(dotted, node.targets) if d is not None)
        moved = _moved_model(node.value) if self.flow.scope.frozen_models else None
        for target in node.targets:
            self.ctx.bind(target, kind, node.value)
            if kind is facts.Kind.FROZEN or moved is not None and moved in self.flow.scope.frozen_models:
                # frozen here, or a frozen model moved (``self.net = net.to(device)``)
                name = dotted(target)
                if name:
                    self.flow.scope.frozen_models[name] = self.flow.tick()
            elif isinstance(target, (ast.Name, ast.Attribute)) and self.flow.scope.frozen_models and not (
                node.value.__class__ is ast.Constant and node.value.value is None  # type: ignore[attr-defined]
            ):
                # (``model = None`` in the other branch: a call of ``model`` runs only the frozen one)
                name = dotted(target) or ""
                if name in self.flow.scope.frozen_models and not any(
                    dotted(n) == name for n in ast.walk(node.value) if isinstance(n, (ast.Name, ast.Attribute))
                ):
                    del self.flow.scope.frozen_models[name]  # rebound to something else

            for element in target.elts if target.__class__ in (ast.Tuple, ast.List) else (target,):  # type: ignore
                if element.__class__ is ast.Name and element is not target:
                    self.flow.scope.unpacked.setdefault(element.id, []).append(node.value)  # type: ignore
                elif element.__class__ is ast.Subscript:
                    # ``outputs["pose"] = pose``, ``states[t][1], states[t][2] = cell(x)``: the value
                    # flows into the container
                    root = subscripted_root(element)
                    if root.__class__ is ast.Name:
                        self._fill(root.id, [node.value])  # type: ignore[attr-defined]
            if isinstance(target, ast.Name):
                self.flow.scope.deps.setdefault(target.id, []).append(node.value)
                if node.value.__class__ in _NAMES_AND_ATTRIBUTES or self.ctx.imports.bound:
                    self.ctx.imports.bind(target.id, node.value)  # ``evaluation_mode = torch.no_grad``
            elif isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self":
                if kind is facts.Kind.MODULE or _builds_local_module(self.flow, node.value):
                    self.flow.module_evidence.add(f"self.{target.attr}")  # self.heads = nn.ModuleList(...)
                self._factory(f"self.{target.attr}", node.value)
        self._made_leaf(node)

    def _factory(self, key: str, value: ast.expr) -> None:
        """``self.network = resnet.resnet18``: an imported function or class,
        not called; calling ``self.network(...)`` builds a model.  Any other
        value assigned to it makes it no factory."""
        factories = self.flow.factories
        if value.__class__ in (ast.Attribute, ast.Name):
            root = (dotted(value) or "").partition(".")[0]
            if self.ctx.imports.is_imported(root):
                factories.setdefault(key, True)
                return
        if key in factories:
            factories[key] = False

    def leave_AugAssign(self, node: ast.AugAssign) -> None:
        """``x += v``: ``x`` keeps its binding's place but its value is now unknown."""
        target = node.target
        if isinstance(target, ast.Name):
            self.flow.scope.deps.setdefault(target.id, []).append(node.value)
            binding = self.grad.frame.names.get(target.id)
            if isinstance(binding, facts.Binding) and binding.kind is not facts.Kind.PARAM:
                self.grad.frame.names[target.id] = binding._replace(kind=facts.Kind.OTHER, value=None)

    def visit_Return(self, node: ast.Return) -> None:
        if node.value is not None:
            self.flow.scope.return_values.append(node.value)
            if node.value.__class__ is ast.Lambda:
                # ``return lambda x: model(x)``: the model runs where the caller
                # calls what it gets (a library, often), not in this function
                self._returned_lambdas.add(id(node.value))

    def leave_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.ctx.bind(node.target, facts.classify(self.ctx, node.value), node.value)

    # loops ---------------------------------------------------------------------

    def visit_For_body(self, node: ast.For) -> None:
        ctx = self.ctx
        kind = facts.element_kind(facts.classify(ctx, node.iter))
        if kind is facts.Kind.OTHER and not _bind_enumerate(ctx, node):
            it = node.iter
            counter = it if isinstance(it, ast.Call) and last_name(it.func) == "range" else None
            ctx.bind(node.target, kind, counter)  # ``for i in range(n)``: ``w[i]`` is a view
        elif kind is not facts.Kind.OTHER:
            ctx.bind(node.target, kind, node.iter)
        drawn = self.flow.scope.drawn_from
        for name in ast.walk(node.target):  # ``for (_, y), (pred, _) in zip(inputs, preds)``: ``pred`` from ``preds``
            if name.__class__ is ast.Name:
                drawn.setdefault(name.id, []).append(node.iter)  # type: ignore[attr-defined]
        loop = self._open_loop(node)
        it = node.iter
        loop.counts = (isinstance(it, ast.Call) and self.ctx.imports.resolve(it.func) == "range") or _numbers(it)

    def visit_If_body(self, node: ast.If) -> None:
        self._foreign.append(node.test.__class__ is ast.Compare and _other_framework(node.test))

    def leave_If_body(self, node: ast.If) -> None:
        self._foreign.pop()

    def visit_While_body(self, node: ast.While) -> None:
        self._open_loop(node).counts = True

    def leave_For_body(self, node: ast.For) -> None:
        self.flow.open_loops.pop().end_seq = self.flow.tick()

    leave_While_body = leave_For_body

    def _open_loop(self, node: ast.stmt) -> flow.Loop:
        scope = self.flow.scope
        loops = self.flow.loops_here()
        loop = flow.Loop(node, scope, loops[0] if loops else None, self.flow.tick())
        self.flow.open_loops.append(loop)
        self.flow.loops.append(loop)
        scope.loops.append(loop)
        return loop

    # calls and names -------------------------------------------------------------

    def visit_Name(self, node: ast.Name) -> None:
        name = node.id
        scopes = self.flow.scopes
        if node.ctx.__class__ is _LOAD:
            if name in self._referenced or id(node) in self._call_names:
                return  # most names: referenced already
            depth = len(scopes)
            # a name a running function bound before reads that binding, not
            # the module's (``train = list(ids)`` in ``cora_train``)
            if depth == 1 or not (
                name in scopes[1].stored if depth == 2 else any(name in scope.stored for scope in scopes[1:])
            ):
                flag = self._chosen.get(id(node)) if self._chosen else None
                if flag is not None:
                    self.ctx._chosen_by_flag.append((name, flag))  # referenced unless the flag is off
                else:
                    self._reference(name)
        else:  # a binding (or ``del``): never a call's name
            scope = scopes[-1]
            if len(scopes) == 1:
                self._reference(name)  # at the top of the module it may replace a function
            stored = scope.stored
            stored[name] = stored.get(name, 0) + 1

    def visit_IfExp(self, node: ast.IfExp) -> None:
        if node.body.__class__ is ast.Name and node.test.__class__ is ast.Name:
            # ``test = test_mlp if use_mlp else test_gnn``: ``test_mlp`` is used only if the flag may be on
            self._chosen[id(node.body)] = node.test

    def visit_Call(self, node: ast.Call) -> None:
        # the hottest hook: every call of the file passes here
        ctx = self.ctx
        flow_ = self.flow
        seq = flow_.tick()
        func = node.func
        loops = flow_.loops_here()
        key = ctx.call_key(func)
        if key is None and func.__class__ is ast.Attribute and not is_super_call(func.value):  # type: ignore
            # ``obj.name(...)``: a call of every method so named (a superset),
            # not a use of one as a value
            ctx._call_names.add(id(func))
            if not _submodule_switch(func):  # type: ignore[arg-type]
                by_name = ("by-name", func.attr)  # type: ignore[attr-defined]
                ctx._calls.append((by_name, self.grad.state, self.grad.function, None))
            if func.value.__class__ is ast.Name:  # type: ignore[attr-defined]
                flow_.scopes[-1].method_calls.append((seq, func.attr))  # type: ignore[attr-defined]
                if func.attr == "forward":  # type: ignore[attr-defined]
                    flow_.scopes[-1].forwarded.add(func.value.id)  # type: ignore[attr-defined]
                if loops:
                    typed = _built_class_method(ctx, func)  # type: ignore[arg-type]
                    if typed is not None:
                        for loop in loops:
                            loop.typed_calls.append((seq, typed))
        state = self.grad.state
        if self._generators and state is Grad.INHERITED and self.grad.frame.kind == "generator":
            # ``times.extend(timeit(lambda: model(x)) for _ in range(3))``: the
            # generator runs where it is made, and the callee runs the lambda there
            state = self._consumer_state()[0]
        if state is Grad.DISABLED:
            for arg in node.args:
                if arg.__class__ is ast.Lambda:
                    self._disabled_lambdas.add(id(arg))
            for keyword in node.keywords:
                if keyword.value.__class__ is ast.Lambda:
                    self._disabled_lambdas.add(id(keyword.value))
        if key is not None:
            ctx._call_names.add(id(func))
            ctx._calls.append((key, self.grad.state, self.grad.function, node))
            scope = flow_.scopes[-1]
            ctx.call_sites.setdefault(key, []).append((scope, seq))
            scope.local_calls.append((seq, key))
            flow_.call_states[seq] = self.grad.state
            for loop in loops:
                loop.local_calls.append((seq, key))
        if func.__class__ is ast.Attribute:
            self._method_call(node, func, seq)  # type: ignore[arg-type]
            if func.attr == "apply" and len(node.args) == 1 and node.args[0].__class__ is ast.Name:  # type: ignore
                # ``model.apply(init_weights)`` calls it at once, in this grad mode
                arg = node.args[0]
                ctx._call_names.add(id(arg))
                ctx._calls.append((("function", arg.id), self.grad.state, self.grad.function, None))  # type: ignore
        flow_.nodes[seq] = node
        if facts.is_training_step(ctx, node):
            self._training_step(node, seq, loops)
        self._model_call(node, seq, loops)
        in_module = bool(ctx.classes) and ctx.classes[-1].is_module
        if (
            (not flow_.mode_by_layers or (in_module and not flow_.mode_layer_class))
            and ctx.imports.root_starts(func, "torch")  # what ``_mode_dependent`` needs, without a string
            and _mode_dependent(ctx.imports.resolve(func) or "")
        ):
            flow_.mode_matters = flow_.mode_by_layers = True
            if in_module:
                flow_.mode_layer_class = True  # the file's own model has dropout/batch norm

    def _method_call(self, node: ast.Call, func: ast.Attribute, seq: int) -> None:
        method = func.attr
        if method == "__init__" and self.ctx.classes and _self_first(node):
            if (self.ctx.imports.resolve(func.value) or "").startswith("torch.nn."):
                # ``nn.Module.__init__(self)``: a module, whatever base of another package it names
                self.flow.module_classes.add(self.ctx.classes[-1].name)
        if method in ("train", "eval") and _fresh_object(func.value):
            return  # copy.deepcopy(model).eval(): a copy switches, the model does not
        if method == "train" and _not_a_mode(node):
            return  # ``adapter.train(RunSpec(...))``: an object's own training routine, not a module's mode
        if (
            method in ("train", "eval") and func.value.__class__ is ast.Name and func.value.id == "self"  # type: ignore
            and self.ctx.classes and self.ctx.classes[-1].plain_switches
        ):
            return  # ``self.eval()`` of a plain class that defines ``eval``: its own routine
        if method in _MODULE_METHODS:
            owner = dotted(func.value)
            if owner is not None:
                self.flow.module_evidence.add(owner)
            if method in ("train", "eval"):
                self.flow.switch_keys[seq] = owner or ""
        if method not in _SWITCH_METHODS and method not in self.ctx.settings.eval_mode_helpers:
            return
        scope = self.flow.scopes[-1]
        to_eval = switches_to_eval(node, method) or _false_flag(scope, node, method)
        if method == "train" and (len(node.args) + len(node.keywords) <= 1 or to_eval or switches_to_train(node)):
            self.flow.mode_matters = True  # the author switches modes explicitly
            if switches_to_train(node):
                scope.train_switches.append(seq)
            elif not to_eval:
                scope.maybe_train_switches.append(seq)  # .train(flag)
        if to_eval or method in self.ctx.settings.eval_mode_helpers:
            scope.eval_switches.append(seq)
            if scope.function is not None and scope.function.name == "__init__" and scope.class_name:
                self.flow.class_init_eval.setdefault(scope.class_name, set()).add(self.flow.switch_keys.get(seq, ""))
        if method in ("register_buffer", "register_parameter"):
            self._class_member(node, func, method)

    def _class_member(self, call: ast.Call, func: ast.Attribute, method: str) -> None:
        """``self.register_buffer("w", ...)`` / ``self.register_parameter("w", ...)``."""
        ctx = self.ctx
        if not (ctx.classes and isinstance(func.value, ast.Name) and func.value.id == "self"):
            return
        name = string_value(first_value(call))
        value = call.args[1] if len(call.args) > 1 else None
        if method == "register_parameter" and is_const(value, None):
            return  # ``register_parameter("running_mean", None)``: no parameter, the attribute is None
        if name is not None:
            target = ctx.classes[-1].buffer_attrs if method == "register_buffer" else ctx.classes[-1].param_attrs
            target.add(name)

    def _training_step(self, node: ast.Call, seq: int, loops: List[flow.Loop]) -> None:
        func = node.func
        functional = isinstance(func, ast.Name) and (self.ctx.imports.resolve(func) or "") == "torch.autograd.backward"
        if functional or (isinstance(func, ast.Attribute) and func.attr in ("backward", "manual_backward")):
            # ``loss.backward()``, ``accelerator.backward(loss)``; ``backward(err)``
            # imported from ``torch.autograd`` differentiates its first argument
            targets = ([] if functional else [func.value]) + [v for _, v, _ in call_args(node)[:1]]
            targets += [e for t in targets if isinstance(t, (ast.Tuple, ast.List)) for e in t.elts]
            if (
                not functional and func.attr == "backward" and isinstance(func.value, ast.Name)
                and func.value.id in self.flow.scopes[-1].forwarded and len(targets) > 1
                and not (isinstance(targets[1], ast.Name) and _LOSS_WORDS.intersection(tokens(targets[1].id)))
            ):
                # ``layer.forward(x)``, then ``layer.backward(out)``: a layer
                # written by hand (numpy), whose argument is a gradient, no
                # loss (an engine's ``engine.backward(loss)`` keeps its loss)
                targets = targets[:1]
            for target in targets:
                if isinstance(target, ast.Call):  # scaler.scale(loss).backward()
                    targets.extend(v for _, v, _ in call_args(target)[:1])
                elif isinstance(target, (ast.BinOp, ast.UnaryOp)):
                    # ``(query_loss / batch_size).backward()``, ``(-elbo).backward()``
                    operands = [target.left, target.right] if isinstance(target, ast.BinOp) else [target.operand]
                    targets.extend(o for o in operands if not isinstance(o, ast.Call))
                elif isinstance(target, ast.Name):
                    self.flow.scope.backward_names.add(target.id)
                elif isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name):
                    self.flow.scope.backward_holders.add(target.value.id)  # losses["loss"].backward()
        self.flow.scope.training_step = True
        self.flow.scope.step_seqs.append(seq)
        if not facts.is_gradient_only(self.ctx, node):
            self.flow.scope.training_steps.append(seq)
        for loop in loops:
            loop.training_step = True
            loop.step_seqs.append(seq)

    def _model_call(self, node: ast.Call, seq: int, loops: List[flow.Loop]) -> None:
        if self._in_returned_lambda:
            return  # made here, run by whoever calls the lambda returned
        func = node.func
        if isinstance(func, ast.Name) and func.id in self.ctx.settings.eval_mode_helpers:
            self.flow.scope.eval_switches.append(seq)
        if not (loops and node.args) and func.__class__ in _NAMES_AND_ATTRIBUTES:
            # ``torch.cat(xs)``, ``np.mean(x)``: a chain from an imported name,
            # returned below once its key is made; told here without making it
            root = chain_root(func)
            if root is not None and root != "self" and self.ctx.imports.is_imported(root):
                return
        key = _callee_key(func)
        if key is None or key == "super":
            return
        root = key.split(".", 1)[0].split("[", 1)[0]
        if root != "self" and self.ctx.imports.is_imported(root):
            if loops and node.args and "[" not in key:
                self._imported_call(node, key, seq, loops)
            return
        if key in _BUILTINS and self.ctx.lookup(key) is None:
            return  # print(...), len(...), range(...): never a model
        if self._foreign and any(self._foreign):
            return  # ``if self.framework == "tf": self.model(tokens)``: not a PyTorch model
        cls = self.ctx.current_class()
        if key == "self" and (cls is None or not cls.is_module):
            return
        if isinstance(func, ast.Name) and loops and self._names_a_class(func.id, loops):
            return  # ``for model, path in ((Net, p),): model(path)`` builds an object
        state, function = self.grad.state, self.grad.function
        if state is Grad.INHERITED and self.grad.frame.kind == "generator":
            state, function = self._consumer_state()
        call = flow.ModelCall(node, key, seq, state, function, cls.name if cls else None)
        self.flow.scopes[-1].model_calls.append(call)
        for loop in loops:
            loop.model_calls.append(call)

    def _imported_call(self, node: ast.Call, key: str, seq: int, loops: List[flow.Loop]) -> None:
        """``extract_features(model, xyz)`` of an imported function, handing
        over a name: kept for the loops, which may ask the project index
        whether the function runs that argument as a model."""
        if not any(a.__class__ is ast.Name or a.__class__ is ast.Attribute for a in node.args):
            return
        cls = self.ctx.current_class()
        call = flow.ModelCall(node, key, seq, self.grad.state, self.grad.function, cls.name if cls else None)
        for loop in loops:
            loop.imported_calls.append(call)

    def _names_a_class(self, name: str, loops: List[flow.Loop]) -> bool:
        """Is ``name`` the target (or one element of it) of the innermost
        ``for`` that binds it, over a literal tuple or list whose items there
        are all classes of this module?"""
        for loop in loops:
            node = loop.node
            if not isinstance(node, ast.For):
                continue
            target = node.target
            if isinstance(target, ast.Name):
                position = -1 if target.id == name else None
            elif isinstance(target, (ast.Tuple, ast.List)):
                names = [e.id if isinstance(e, ast.Name) else None for e in target.elts]
                position = names.index(name) if name in names else None
            else:
                position = None
            if position is None:
                continue
            items = node.iter.elts if isinstance(node.iter, (ast.Tuple, ast.List)) else ()
            picked = [
                item if position < 0 else
                item.elts[position] if isinstance(item, (ast.Tuple, ast.List)) and len(item.elts) > position else None
                for item in items
            ]
            return bool(picked) and all(isinstance(p, ast.Name) and p.id in self.ctx.class_bases for p in picked)
        return False

    def _consumer_state(self) -> Tuple[Grad, Optional[FunctionInfo]]:
        """A generator expression is consumed where it is made (``torch.cat(
        tuple(model(x) for x in xs))``): the grad state of the enclosing frame."""
        for frame in reversed(self.grad.frames):
            if frame.kind != "generator":
                return frame.states[-1], frame.function if frame.kind == "function" else None
        return Grad.INHERITED, None

    def leave_Call(self, node: ast.Call) -> None:
        """A function handed to evaluation machinery (``Engine(eval_step)``)."""
        func = node.func
        if last_name(func).endswith(FRAMEWORK_RUNNERS) and dotted(func) is not None:
            for _, value, _ in call_args(node):
                name = dotted(value)
                if name is not None:
                    self.flow.framework_callbacks.add(name.rsplit(".", 1)[-1])


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
_MODE_PREFIXES = ("torch.", "torchvision.models.")


# The names the regular expression
#   ^torch\.nn\.(functional\.)?(\w*[Dd]ropout\w*|\w*BatchNorm\w*|InstanceNorm\w*|Transformer\w*|MultiheadAttention)$
#   |^torch\.(\w*dropout\w*|nn\.functional\.batch_norm)$|^torchvision\.models\.[a-z]\w*$
# matches (one final line break allowed, as ``$`` allows it): string tests
# cost less than compiling it at import.
def _mode_dependent(qual: str) -> bool:
    """Does the layer or function ``qual`` behave differently in training and
    in eval mode?  Dropout, batch and instance norm, transformers and
    multi-head attention of ``torch.nn`` (or ``torch.nn.functional``), a
    ``torch.*dropout*`` function, ``torch.nn.functional.batch_norm``, and
    ``torchvision.models.<name>``."""
    if "torch" not in qual or not qual.startswith(_MODE_PREFIXES):
        return False  # (``in`` first: the cheapest test, which most names fail)
    if qual[-1:] == "\n":
        qual = qual[:-1]
    if qual.startswith("torchvision.models."):
        return "a" <= qual[19:20] <= "z" and word_chars(qual[20:])
    rest = qual[6:]
    if not rest.startswith("nn."):
        return "dropout" in rest and word_chars(rest)
    layer = rest[3:]
    if layer.startswith("functional."):
        if layer == "functional.batch_norm":
            return True
        layer = layer[11:]
    return (
        "Dropout" in layer
        or "dropout" in layer
        or "BatchNorm" in layer
        or layer.startswith(("InstanceNorm", "Transformer"))
        or layer == "MultiheadAttention"
    ) and word_chars(layer)


#: names of builtins: ``print(...)``, ``len(...)`` are never models
_BUILTINS = frozenset(dir(builtins))
#: the methods ``_method_call`` looks at beyond ``_MODULE_METHODS``
_SWITCH_METHODS = frozenset({"train", "eval", "register_buffer", "register_parameter"})


def _builds_local_module(flow_: flow.Flow, value: ast.expr) -> bool:
    """``Net(...)`` for an ``nn.Module`` subclass ``Net`` of this file."""
    return (
        isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id in flow_.module_classes
    )


#: The fields of a statement that hold blocks of statements.
_STATEMENT_BLOCKS = ("body", "orelse", "finalbody")


#: Words of a name that hold a loss (``total_loss``, ``cost``).
_LOSS_WORDS = frozenset({"loss", "losses", "cost", "objective"})


def _built_class_method(ctx: Context, func: ast.Attribute) -> Optional[Tuple[str, ...]]:
    """``("method", "SPOT", "train")`` for ``trainer.train(...)`` when the
    function bound ``trainer = SPOT(...)`` (a capitalised callee: a class,
    which may be this module's)."""
    binding = ctx.lookup(func.value.id)  # type: ignore[attr-defined]
    value = binding.value if binding is not None else None
    if value.__class__ is ast.Call and value.func.__class__ is ast.Name and value.func.id[:1].isupper():  # type: ignore
        return ("method", value.func.id, func.attr)  # type: ignore[union-attr]
    return None


def _builds_loss(ctx: Context, value: ast.expr) -> bool:
    """``nn.MSELoss(...)``, ``nn.CrossEntropyLoss().cuda()``: a loss class of ``torch.nn``."""
    value = unchained(value)
    if not isinstance(value, ast.Call):
        return False
    qual = ctx.imports.resolve(value.func) or ""
    return qual.startswith("torch.nn.") and qual.endswith("Loss")


def _not_a_mode(call: ast.Call) -> bool:
    """Is the first argument of a ``.train(...)`` call plainly no mode flag:
    an object a class builds (``RunSpec(...)``, not ``bool(...)``), a
    literal container, a string?  ``nn.Module.train`` takes a bool; such a
    call is a method of an object of its own (a training routine)."""
    if not call.args:
        return False
    arg = call.args[0]
    if arg.__class__ is ast.Call:
        return last_name(arg.func)[:1].isupper()
    if isinstance(arg, ast.Constant):
        return isinstance(arg.value, (str, bytes, float))
    return isinstance(arg, (ast.Dict, ast.List, ast.Tuple, ast.Set, ast.JoinedStr, ast.ListComp, ast.DictComp))


def _self_first(call: ast.Call) -> bool:
    return bool(call.args) and isinstance(call.args[0], ast.Name) and call.args[0].id == "self"


def _numbers(node: ast.expr) -> bool:
    """A literal list or tuple of numbers (``for size in [4, 8, 16]:``): a
    sweep over settings, counted like ``range``."""
    elts = getattr(node, "elts", None)
    return bool(elts) and node.__class__ in (ast.List, ast.Tuple) and all(
        e.__class__ is ast.Constant and type(e.value) in (int, float) for e in elts  # type: ignore[attr-defined]
    )


def _submodule_switch(func: ast.Attribute) -> bool:
    """``self.model.eval()``: an attribute of ``self`` switching modes is a
    module, not an object of a class that names a method of its own ``eval``."""
    if func.attr not in ("eval", "train"):
        return False
    value = func.value
    return isinstance(value, ast.Attribute) and isinstance(value.value, ast.Name) and value.value.id == "self"


def _callee_key(func: ast.expr) -> Optional[str]:
    """``model`` for ``model(x)``, ``model.forward(x)`` and ``model.generate(x)``;
    ``models[]`` for ``models[k](x)``."""
    if isinstance(func, ast.Attribute):
        if func.attr == "forward":
            return dotted(func.value)
        if func.attr in flow.FORWARD_METHODS:
            owner = dotted(func.value)
            if owner is not None and owner != "self":
                return owner
    elif isinstance(func, ast.Subscript):
        owner = dotted(func.value)
        return None if owner is None else owner + "[]"
    return dotted(func)


def _bind_enumerate(ctx: Context, node: ast.For) -> bool:
    """``for i, p in enumerate(m.parameters())``: ``p`` is a parameter."""
    it = node.iter
    if (
        isinstance(it, ast.Call)
        and ctx.imports.resolve(it.func) == "enumerate"
        and isinstance(node.target, ast.Tuple)
        and len(node.target.elts) == 2
    ):
        first = first_value(it)
        if first is None:
            return False
        inner = facts.element_kind(facts.classify(ctx, first))
        if inner is not facts.Kind.OTHER:
            ctx.bind(node.target.elts[0], facts.Kind.OTHER, None)
            ctx.bind(node.target.elts[1], inner, it)
            return True
    return False


#: Where ``ast``'s field order is not the order the code runs in.
_FIELD_ORDER: Dict[type, Tuple[str, ...]] = {
    ast.FunctionDef: ("decorator_list", "args", "returns", "body"),
    ast.AsyncFunctionDef: ("decorator_list", "args", "returns", "body"),
    ast.ClassDef: ("decorator_list", "bases", "keywords", "body"),
}
#: Fields that never hold a node a hook looks at (names, flags, operators,
#: contexts, the ``alias`` nodes of imports, which the import hooks read).
_SCALAR_FIELDS = frozenset(
    {"id", "ctx", "op", "ops", "kind", "type_comment", "is_async", "conversion", "level", "module", "attr", "arg",
     "name", "asname", "simple", "names", "type_ignores", "tag", "rest", "kwd_attrs"}
)
#: Fields named like node fields that hold a plain value in these classes.
_SCALAR_VALUES = (ast.Constant, ast.MatchSingleton)
#: Hooks of the async forms are the plain forms' hooks.
_HOOK_NAME = {"AsyncFunctionDef": "FunctionDef", "AsyncFor": "For", "AsyncWith": "With"}


#: Methods that return the module they are called on.
_CHAINED = SAME_MODULE_METHODS | {"module"}


#: What ``framework == ...`` compares with when another framework runs the code.
_OTHER_FRAMEWORK_NAMES = frozenset({"tf", "tensorflow", "keras", "jax", "flax", "mxnet", "paddle", "mindspore"})


def _other_framework(test: ast.Compare) -> bool:
    """``self.framework == "tf"``, ``backend == "jax"``: the test of a
    branch that runs another framework's model (a library that supports
    several, as a vendored ``pipelines.py`` does)."""
    if len(test.ops) != 1 or test.ops[0].__class__ is not ast.Eq:
        return False
    left, right = test.left, test.comparators[0]
    if isinstance(left, ast.Constant):
        left, right = right, left
    return (
        isinstance(right, ast.Constant) and right.value in _OTHER_FRAMEWORK_NAMES
        and last_name(left).lower() in ("framework", "backend")
    )


def _false_flag(scope: flow.Scope, call: ast.Call, method: str) -> bool:
    """``model.train(is_training)`` where every value the scope assigned
    ``is_training`` so far is ``False`` (and it is not a parameter): a
    switch to eval mode."""
    flag = mode_value(call) if method == "train" and len(call.args) + len(call.keywords) == 1 else None
    if flag.__class__ is not ast.Name:
        return False
    fn = scope.function
    if fn is not None and any(a.arg == flag.id for a in all_params(fn.node.args)):  # type: ignore[union-attr]
        return False
    values = scope.deps.get(flag.id)  # type: ignore[union-attr]
    return bool(values) and all(is_const(v, False) for v in values)  # type: ignore[arg-type]


def _fresh_object(expr: ast.expr) -> bool:
    """Is ``expr`` a new object, not a name's: ``copy.deepcopy(model)``,
    ``Net()``, also through ``.to(device)`` and the like?"""
    return isinstance(unchained(expr, _CHAINED), ast.Call)


def _built_in_eval(value: ast.expr) -> bool:
    """Is ``value`` a fresh object switched to eval mode along a chain of
    calls that return it (``Net(cfg).to(device).eval()``, ``Net().eval().cuda()``)?"""
    found = False
    while isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute):
        attr = value.func.attr
        if attr == "eval" and not value.args and not value.keywords:
            found = True
        elif attr not in _MOVES:
            return False
        value = value.func.value
    return found and isinstance(value, ast.Call)


#: Methods that put their arguments into the container they are called on.
_FILLS = frozenset({"update", "append", "extend", "insert", "add"})


#: Methods that return the module they are called on, moved or switched to
#: eval mode (not ``requires_grad_``, which may turn grad back on).
_MOVES = SAME_MODULE_METHODS - {"requires_grad_", "train"}


def _moved_model(value: ast.expr) -> Optional[str]:
    """``net`` of ``net``, ``net.to(device)`` or ``net.cuda().eval()``:
    the same module, dotted; None for anything else."""
    value = unchained(value, _MOVES)
    return dotted(value) if isinstance(value, (ast.Name, ast.Attribute)) else None


def _frozen_chain_root(call: ast.Call) -> Optional[str]:
    """``net`` of ``net.eval().requires_grad_(False).to(device)``, or of
    ``net.freeze()`` (a Lightning module's: grad off for all its
    parameters), dotted; None for a chain without either."""
    if call.func.__class__ is ast.Attribute and call.func.attr == "freeze" and not call.args \
            and not call.keywords:  # type: ignore[attr-defined]
        return dotted(call.func.value)  # type: ignore[attr-defined]
    expr: ast.expr = call
    freezes = False
    while isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute):
        freezes = freezes or expr.func.attr == "requires_grad_"
        expr = expr.func.value
    return dotted(expr) if freezes else None


#: Fields that hold a block of statements (a new ``set_grad_enabled`` scope).
_BLOCKS = frozenset({"body", "orelse", "finalbody"})
_NO_BLOCKS = (ast.Module, ast.Interactive, ast.Lambda, ast.IfExp, ast.Expression)

if TYPE_CHECKING:  # annotations only: making typing aliases at import costs time
    _Hooks = Tuple[Callable[[ast.AST], None], ...]
    #: (field, hooks before it, hooks after it)
    _FieldPlan = Tuple[str, _Hooks, _Hooks]


_HOOK_NAMES: Dict[type, Tuple[str, ...]] = {}


def _hook_names(cls: type) -> Tuple[str, ...]:
    """The ``visit_*``/``leave_*`` methods of a visitor class (``dir`` once
    per class and process, not once per file)."""
    names = _HOOK_NAMES.get(cls)
    if names is None:
        names = _HOOK_NAMES[cls] = tuple(a for a in dir(cls) if a.startswith(("visit_", "leave_")))
    return names


class _Driver:
    """Walks the tree once and dispatches every node to the tracker, then to
    the rules' hooks (leave hooks in reverse).  ``visit_block``/``leave_block``
    hooks run around every block of statements but the module's own.  What to
    call for a node type is worked out once per type and walk."""

    def __init__(self, tracker: Tracker, rules: Sequence[Rule]) -> None:
        self._visit: Dict[str, List[Callable]] = {}
        self._leave: Dict[str, List[Callable]] = {}
        self._add(tracker)
        for rule in rules:
            self._add(rule)
        for hooks in self._leave.values():
            hooks.reverse()
        self._plans: Dict[type, Tuple[_Hooks, Tuple[_FieldPlan, ...], _Hooks]] = {}
        #: node types with nothing inside to walk (names, constants, ...): their
        #: visit and leave hooks, called without a recursive ``walk``
        self._leaves: Dict[type, _Hooks] = {}

    def _add(self, visitor: object) -> None:
        for attr in _hook_names(type(visitor)):
            hooks = self._visit if attr.startswith("visit_") else self._leave
            hooks.setdefault(attr[6:], []).append(getattr(visitor, attr))

    def _plan(self, cls: type) -> Tuple[_Hooks, Tuple[_FieldPlan, ...], _Hooks]:
        name = _HOOK_NAME.get(cls.__name__, cls.__name__)
        # a value that is not a node (a field this list does not know, of a
        # newer Python) has no fields: it is walked as a leaf without hooks
        order = _FIELD_ORDER.get(cls, getattr(cls, "_fields", ()))
        blocks = isinstance(cls, type) and issubclass(cls, ast.AST) and not issubclass(cls, _NO_BLOCKS)
        fields = []
        for f in order:
            if f in _SCALAR_FIELDS or (cls in _SCALAR_VALUES and f == "value"):
                continue
            before = list(self._visit.get(f"{name}_{f}", ()))
            after = list(self._leave.get(f"{name}_{f}", ()))
            if blocks and f in _BLOCKS:
                before += self._visit.get("block", ())
                after = list(self._leave.get("block", ())) + after
            fields.append((f, tuple(before), tuple(after)))
        plan = (tuple(self._visit.get(name, ())), tuple(fields), tuple(self._leave.get(name, ())))
        self._plans[cls] = plan
        if not fields:
            self._leaves[cls] = plan[0] + plan[2]
        return plan

    def walk(self, node: ast.AST) -> None:
        self._walker()(node)

    def _walker(self) -> Callable[[ast.AST], None]:
        """The walk, as a closure over the plans: the hottest loop of a lint
        run reads its tables from the closure, not from ``self``, and walks a
        single child without making a tuple of it."""
        plans = self._plans
        leaves = self._leaves
        plan_of = self._plan

        def walk(node: ast.AST) -> None:
            plan = plans.get(node.__class__)
            if plan is None:
                plan = plan_of(node.__class__)
            visit, fields, leave = plan
            for hook in visit:
                hook(node)
            for field_name, before, after in fields:
                value = getattr(node, field_name, None)
                if value is None:
                    continue
                if before:
                    for hook in before:
                        hook(node)
                # (the list and the single child written out twice: one loop over
                # ``(value,)`` costs a tuple per field and measurably more)
                if value.__class__ is list:
                    for child in value:
                        if child is None:
                            continue  # a dict's ``**mapping`` has no key
                        hooks = leaves.get(child.__class__)
                        if hooks is None:
                            walk(child)
                        else:
                            for hook in hooks:
                                hook(child)
                else:
                    hooks = leaves.get(value.__class__)
                    if hooks is None:
                        walk(value)
                    else:
                        for hook in hooks:
                            hook(value)
                if after:
                    for hook in after:
                        hook(node)
            for hook in leave:
                hook(node)

        return walk


# --- the public entry point -------------------------------------------------

_TRIGGER_WORDS: Dict[type, Tuple[str, ...]] = {}


def _trigger_words(rule: type) -> Tuple[str, ...]:
    words = _TRIGGER_WORDS.get(rule)
    if words is None:
        words = _TRIGGER_WORDS[rule] = tuple(sorted({w.lower() for w in rule.triggers}))
    return words


def _triggered(rules: Sequence[type], source: str, settings: Settings = Settings()) -> Tuple[type, ...]:
    """The rules that could fire in ``source``: those one of whose trigger
    words occurs in it, in any case.  A name the user configured (a model,
    an evaluation function, a no-grad decorator) lets every rule through.

    The text is lowercased once and searched with ``in``: faster than one
    case-insensitive pattern, and it tells the rules apart, so a file
    without ``backward`` or ``loss`` is never walked by GRD104's hooks."""
    text = source.lower()
    for option in ("no_grad_decorators", "model_names", "eval_names", "eval_mode_helpers"):
        for name in getattr(settings, option):
            if name.rsplit(".", 1)[-1].lower() in text:
                return tuple(rules)
    return tuple(r for r in rules if any(w in text for w in _trigger_words(r)))


def check(
    source: str,
    settings: Settings = Settings(),
    rules: Optional[Sequence[type]] = None,
    use_sieve: bool = True,
    filename: str = "",
    tree: Optional[ast.AST] = None,
    lines: Optional[Sequence[str]] = None,
) -> List[Violation]:
    """All violations in ``source``, sorted.  Never raises.  ``tree`` is the
    ``ast`` of ``source`` when the caller has it (flake8 does), ``lines`` its
    physical lines; without them they are made here."""
    rule_classes = tuple(RULES if rules is None else rules)
    try:
        if use_sieve:
            rule_classes = _triggered(rule_classes, source, settings)
            if not rule_classes:
                return []
        if tree is None:
            source = source[1:] if source.startswith("\ufeff") else source  # a BOM, as flake8 strips it
            tree = ast.parse(source, filename or "<unknown>")
        return _check(tree, physical_lines(source) if lines is None else lines, settings, rule_classes, filename)
    except RecursionError:
        message = "file nests too deeply for grad-mode analysis; grad-mode rules skipped it"
        return [Violation(1, 0, INTERNAL_ERROR, message)]
    except Exception as exc:  # flake8 must never see an exception
        reason = f"{type(exc).__name__}: {_first_line(exc)}"
        message = f"grad-mode analysis failed ({reason}); grad-mode rules skipped this file, please report it"
        return [Violation(1, 0, INTERNAL_ERROR, message)]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:120] if text else ""


def _not_pytorch_code(tree: ast.AST) -> bool:
    """Does the module import another tensor framework (Chainer, MXNet,
    TensorFlow, ...) or spaCy, and not ``torch`` itself?  Its ``model(x)`` loops are not
    PyTorch's, and no grad-mode rule applies.  Nor do they to a NumPy network
    written from scratch: a module that imports only the standard library and
    NumPy-family packages (no ``torch``, no module of its project) and defines
    a class with its own ``backward`` method."""
    roots: Set[str] = set()
    relative = False
    todo = list(getattr(tree, "body", ()))
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import):
            roots.update(a.name.split(".", 1)[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.module and not node.level:
                roots.add(node.module.split(".", 1)[0])
            else:
                relative = True
        elif isinstance(node, (ast.If, ast.Try, ast.FunctionDef, ast.ClassDef)):
            todo.extend(node.body)  # statements only: an import inside ``def _test():`` counts
            todo.extend(getattr(node, "orelse", ()))
            for handler in getattr(node, "handlers", ()):
                todo.extend(handler.body)
    # ``torch`` itself: a torchvision transform borrowed by an MXNet script does not make it PyTorch code
    if "torch" in roots:
        return False
    if roots & OTHER_FRAMEWORKS or "spacy" in roots:
        return True  # (spaCy's pipelines run on thinc; a module with torch too may hold both)
    return not relative and roots <= _NUMPY_ONLY and any(
        isinstance(node, ast.ClassDef)
        and any(isinstance(f, ast.FunctionDef) and f.name == "backward" for f in node.body)
        for node in getattr(tree, "body", ())
    )


def _late_future_import(tree: ast.AST) -> bool:
    """Does a ``from __future__ import`` follow other statements at the top
    of the module (scripts pasted one after another into one file)?
    ``ast.parse`` takes it, but Python refuses to compile the module
    ("from __future__ imports must occur at the beginning of the file"):
    none of its code ever runs."""
    body = getattr(tree, "body", ())
    start = 1 if body and body[0].__class__ is ast.Expr and isinstance(getattr(body[0], "value", None), ast.Constant) \
        and isinstance(body[0].value.value, str) else 0  # type: ignore[attr-defined]
    opening = True
    for node in body[start:]:
        future = node.__class__ is ast.ImportFrom and node.module == "__future__"  # type: ignore[attr-defined]
        if future and not opening:
            return True
        opening = opening and future
    return False


#: What a NumPy network written from scratch imports: the standard library
#: and array, data and plotting packages.
_NUMPY_ONLY = frozenset(getattr(sys, "stdlib_module_names", ())) | {
    "numpy", "scipy", "pandas", "matplotlib", "seaborn", "sklearn", "tqdm",
}


def _check(
    tree: ast.AST, lines: Sequence[str], settings: Settings, rule_classes: Sequence[type], filename: str
) -> List[Violation]:
    if _not_pytorch_code(tree) or _late_future_import(tree):
        return []
    ctx = Context(settings, filename, lines)
    ctx.tree = tree
    if isinstance(tree, ast.Module):
        ctx.grad.module = tree  # its own grad-setting context managers, looked up on first need
    rules = [cls(ctx) for cls in rule_classes]
    # The walk makes many small objects and no garbage worth collecting;
    # a full collection would traverse the whole tree each time, which makes
    # large files cost more per line than small ones.
    collecting = gc.isenabled()
    gc.disable()
    try:
        _Driver(Tracker(ctx), rules).walk(tree)
        ctx.finish()
        for rule in rules:
            rule.finish()
    finally:
        if collecting:
            gc.enable()
    if ctx.reports and not ctx.imports.imports_from(("torch",)) and ctx.imports_numpy_networks():
        ctx.close()
        return []  # a course's ``Solver`` over the network it writes in NumPy: no autograd anywhere
    out: Dict[Violation, Violation] = {}
    for report in ctx.reports:
        if report.condition is not None and not report.condition():
            continue
        if _unreachable(tree, report.node):
            continue  # after ``exit()`` or ``return`` in its block: it never runs
        line, col = ctx.start_of(report.node)
        violation = Violation(line, col, report.code, report.message, _edit(ctx, report.fix))
        out.setdefault(violation, violation)
    ctx.close()
    return sorted(out, key=lambda v: (v.line, v.col, v.code, v.message))


def _unreachable(tree: ast.AST, node: ast.AST) -> bool:
    """Does ``node`` sit after a statement that never completes
    (``flow.never_completes``: ``return``, ``exit()`` as a statement) in its
    own block or in one enclosing it?"""
    line = getattr(node, "lineno", None)
    block: Optional[List[ast.stmt]] = getattr(tree, "body", None)
    while line is not None and block:
        holder = None
        for stmt in block:
            if stmt.lineno > line:
                break
            if (stmt.end_lineno or stmt.lineno) < line:
                if flow.never_completes(stmt):
                    return True
                continue
            holder = stmt
            break
        if holder is None or holder is node:
            return False
        # the statement that holds ``node``: on into the one of its blocks that does
        block = flow.block_holding(holder, line)
    return False


def _edit(ctx: Context, fix: Union[Fix, Callable[[], Fix], None]) -> Optional[Edit]:
    if fix is None:
        return None
    if callable(fix):
        fix = fix()  # worked out only for a finding that is kept
    return Edit(fix.kind, fix.argument, ctx.start_of(fix.node), ctx.end_of(fix.node), fix.unsafe)


__all__ = ["Context", "check", "INTERNAL_ERROR"]
