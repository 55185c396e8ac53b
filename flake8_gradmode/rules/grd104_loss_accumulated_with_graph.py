from __future__ import annotations

from typing import Callable, List, Optional, Set, Tuple, TypeVar

import ast

from flake8_gradmode import facts, flow
from flake8_gradmode.tracker import Grad, call_args, dotted, effective, is_const, last_name, preorder
from flake8_gradmode.context import Fix
from flake8_gradmode.names import names_in
from flake8_gradmode.rule import Holds, Invalid, Rule, Valid

_T = TypeVar("_T")


class LossAccumulatedWithGraph(Rule):
    code = "GRD104"
    name = "loss-accumulated-with-graph"
    triggers = ("loss", "criterion", "crit", "objective", "backward", "entropy", "kl_div")
    summary = "a loss tensor accumulated across training iterations with its graph"
    what = """
        Reports a loss accumulated, inside a training loop, into a variable or
        container that outlives the iteration: `total_loss += loss`,
        `losses.append(loss)`, `stats["loss"] += loss`, `total = total + loss`,
        while grad is enabled and without `.item()`, `.detach()`, `float()`,
        `.tolist()`, `.numpy()`.  A loss is the result of a loss function or
        criterion call (`criterion(out, y)`, `F.cross_entropy(...)`, a callee
        named like `loss`/`criterion`, but not one named for the best of a
        record: `results.get_best_loss()`, nor one whose every input is a
        name computed with grad off: `with torch.no_grad(): y_val =
        model(x)`, then `criterion(y_val, y)`), arithmetic on one, or a value that
        `.backward()` is called on in the function (not a name that only
        code before the loop spent, bound in the loop to something else:
        `loss = ensemble.train_step(x)` after an earlier loop's
        `loss.backward()`; or that a wrapper's
        `accelerator.backward(loss)` is given; not the argument of
        `layer.backward(grad)` after `layer.forward(x)`, a layer written by
        hand whose backward autograd never runs, unless its name says it
        is a loss: `engine.backward(loss)`): a name, an item or
        attribute (`out.loss.backward()`, then `history.append(out.loss)`),
        or a container built in the iteration one of whose items was the
        target (`losses["total"].backward()`, then `history.append(losses)`,
        unless that item is replaced by a detached value first:
        `losses["total"] = losses["total"].detach()`);
        also what a function of the module returns after running
        `.backward()` on it, or on a scaled copy of it (`scaled = loss / k;
        scaled.backward(); return loss`), added directly (`total +=
        self._step(x, y)`) or through a name bound to the call in the
        iteration (not when the function makes it a number first: `loss =
        loss.item(); return loss`, or `return loss.item() / target.size(0)`:
        a number over a size, or returns an element of a tensor made
        from numbers that only numbers are added to: `total =
        torch.Tensor([0])`, `total += loss.item()`, `return total[0]`).
        A loop that runs once (`for epoch in range(epochs)` with `epochs =
        1`, the script's only binding of it) keeps one graph: none piles up.
        A spent loss's name bound again, in the iteration, to a number that
        only numbers are added to (`loss = 0.0`, then `loss +=
        criterion(out, y).data[0]`) holds no graph, alone or over a count
        (`valid_loss.append(loss / iterations)`).
    """
    why = """
        A loss tensor holds the autograd graph that produced it, and through it
        the saved activations of the forward pass.  Kept in an accumulator,
        every iteration's graph stays alive until the accumulator dies: memory
        grows steadily through the epoch and training runs out of memory after
        a number of steps that depends on the dataset size.  When
        `.backward()` has run on each loss first, it has freed the saved
        activations, and what piles up is the graph's nodes: memory grows
        slowly, and the list still holds tensors that require grad, which
        `plt.plot(losses)` or `np.array(losses)` cannot convert.
    """
    known_problems = """
        Only accumulators bound before the loop (or attributes and items of
        such objects) are considered, and only in loops that run a training
        step; evaluation loops are GRD101's business.  An accumulator bound
        inside the training loop (reset every step) is fine, and so is an
        attribute the training loop sets afresh every step (`losses.view =
        0`, then `losses.view += ...` over the views), and one
        the loop sets back to a fresh value itself (`losses = []` at the
        top of every batch, before a loop that steps each of several models:
        `for head, optimizer in zip(heads, optimizers):`, or a list the
        function makes before such a loop, when that loop is all it runs:
        `for i in range(n_agents):` stepping `self.critics[i]`; `running_loss = 0` after
        every optimizer step of a gradient-accumulation window, `self.loss =
        0` at the top of every step: it keeps a few steps' graphs at most,
        not the epoch's), and one
        whose value flows into a `.backward()` target of the function (`loss
        += aux; loss.backward()`, or `losses.append(l)` followed by
        `torch.stack(losses).mean().backward()`), or that the function returns
        while its graph is still unused (the caller may differentiate it), or
        reduces, keeping the graph, into what it returns for a caller that
        runs `.backward()` on it (`outer = torch.stack(losses).mean(); return
        outer`: a meta-learning step's tasks).  A
        total of losses that the loop itself ran `.backward()` on (without
        `retain_graph=True`) is reported even when returned: a spent graph
        can only be kept.  A loss bound again to a value read through
        `.data` or a detaching call before it is added (`loss =
        loss.data[0]`, also scaled by a count: `loss = float(loss.data) *
        len(x)`), and an item replaced by a number before it is added
        (`losses[k] = v.item()` for every item), hold no graph, and so does
        what a method of an object built from a class returns when that
        method returns only numbers: a class of the module (`maml =
        MAML(net)`, then `loss = maml.meta_train_step(tasks)` returning
        `meta_loss.item()`), or, for a method named like a loss, with the
        project index, of another module (`loss = NLLLoss()`, then `total
        += loss.get_loss()` with `return self.acc_loss.item()`, or with
        `return self.loss` where every value the class, the module's
        classes it derives from and those deriving from it give
        `self.loss` is a number: `self.loss = math.sqrt(fake)`); so does a
        function of the module or a closure of the running one named like a
        loss that returns only numbers (`return np.mean(losses)` of
        `.item()` values), and, with the project index, such a function
        imported from another module (`epoch_loss =
        dataset_loss(loader, net, loss_fn)`).  Values read past the graph
        count as numbers there (`total += criterion(out, y).data[0]`, `sum(losses)`
        of a list given only `loss.detach().cpu().numpy()`), and so do the
        items of an object of a class of the module whose `__getitem__`
        returns items of a list its methods fill only with numbers
        (`return metric[0] / metric[1]` of an accumulator whose `add` keeps
        `float(v)`), and a returned
        loss name the function bound again to such a value just before it
        returns it (`loss = sum(losses) / len(losses); return loss`) holds
        no graph; nor does a detached value divided by a count (`loss_accum
        += loss.detach() / grad_accum_steps`: a name that says it counts
        things, bound to arithmetic or handed in, or `len(...)`, `.size(0)`,
        `.shape[0]`), nor a loss name the
        loop binds again to the average of a total it adds only numbers to
        (`loss = total / len(loader)`).  Values whose origin is not visible
        (an attribute, an item of a list) are not considered losses, and a
        metric object's `update(loss)` is not followed.  An object of a
        class that is no list decides what its own `append` keeps
        (`meter = AverageMeter(n)`, then `meter.append(loss)`): reported
        only for a class of the module whose `append` neither detaches nor
        converts what it is given (`.detach()`, `.item()`, `float()`,
        `.data`).  A loss of lists the function made empty and filled
        only with grad off (`preds.append(model(x))` under `no_grad`, then
        `val_losses.append(loss_fn(torch.cat(preds), torch.cat(ys)))`)
        holds no graph, and nothing accumulates in a loop whose first pass
        raises (a step reading a name its function never binds) or leaves
        the loop (an `exit()`, `return`, `raise` or `break` left in the body,
        not under an `if`).  Test files are
        skipped: a unit test's few steps free what they kept when it ends.
        With the project index, a function that never runs is skipped as
        for GRD101 (a leftover function of a script, any function of a
        module nothing imports in a project that is no package, a method
        every subclass of its abstract class replaces; see
        docs/cross-module.md), and, with or without the index, an
        accumulation after a statement of its function that always reads a
        name the module never binds (`NameError` first).
    """
    fix_safety = """
        Opt-in (`flake8-gradmode --fix --unsafe-fixes`): the accumulated value
        becomes `value.item()`, a Python number; or `value.detach()` when the
        accumulator is used as a tensor where it lives (a tensor method is
        called on it, or it goes to a `torch` function such as
        `torch.stack`).  It changes behaviour on purpose: `.item()` needs a
        one-element tensor (a loss with `reduction="none"` needs `.detach()`
        instead, or a `.sum()`), and it synchronises with the GPU once per
        step.  Not applied without `--unsafe-fixes`.  No fix is offered for
        a container of losses (`history.append(losses)`): convert its items.
    """
    references = (
        "https://pytorch.org/docs/stable/notes/faq.html#my-model-reports-cuda-runtime-error-2-out-of-memory",
    )

    VALID = (
        Valid(
            """
            import torch

            model = torch.nn.Linear(4, 1)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            criterion = torch.nn.MSELoss()
            total_loss = 0.0
            for x, y in [(torch.randn(8, 4), torch.randn(8, 1))] * 3:
                optimizer.zero_grad()
                loss = criterion(model(x), y)
                loss.backward()
                optimizer.step()
                total_loss += loss.item()
            """,
            checks=(Holds("isinstance(total_loss, float)", "the accumulator holds a number, no graph"),),
        ),
        Valid(
            """
            import torch


            def first_step(model, data, optimizer):
                total = 0
                for x in data:
                    optimizer.zero_grad()
                    loss = model(x).pow(2).mean()
                    loss.backward()
                    optimizer.step()
                    total += loss
                    return total


            model = torch.nn.Linear(4, 1)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            kept = first_step(model, [torch.randn(8, 4)] * 3, optimizer)
            """,
            title="A loop its body always leaves on the first pass (a debugging `return` or `exit()`)",
            checks=(Holds("kept.grad_fn is not None", "one step's graph is kept, no more"),),
        ),
        Valid(
            """
            import torch

            heads = [torch.nn.Linear(4, 1) for _ in range(3)]
            x, y = torch.randn(8, 4), torch.randn(8, 1)
            for step in range(2):
                loss = 0
                for head in heads:
                    loss += torch.nn.functional.mse_loss(head(x), y)
                loss.backward()
            """,
            title="Building one step's loss from several terms",
        ),
        Valid(
            """
            import torch

            model = torch.nn.Linear(4, 1)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            history = []
            for x in [torch.randn(8, 4)] * 3:
                optimizer.zero_grad()
                loss = model(x).pow(2).mean()
                loss.backward()
                optimizer.step()
                history.append(loss.detach())
            """,
            checks=(Holds("history[0].grad_fn is None", "the stored losses hold no graph"),),
        ),
        Valid(
            """
            import torch

            model = torch.nn.Linear(4, 1)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            running_loss = 0
            for step, x in enumerate([torch.randn(8, 4)] * 4):
                loss = model(x).pow(2).mean() / 2
                running_loss += loss
                loss.backward()
                if step % 2 == 1:
                    optimizer.step()
                    optimizer.zero_grad()
                    print(running_loss.item())
                    running_loss = 0
            """,
            title="A total the loop resets after each accumulation window",
            checks=(Holds("running_loss == 0", "the total is reset every two steps, so it never keeps more"),),
        ),
        Valid(
            """
            import torch

            heads = [torch.nn.Linear(4, 2) for _ in range(3)]
            optimizers = [torch.optim.SGD(h.parameters(), lr=0.1) for h in heads]
            for x in [torch.randn(8, 4)] * 4:
                losses = []
                for head, optimizer in zip(heads, optimizers):
                    loss = head(x).pow(2).mean()
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    losses.append(loss)
                print([loss.item() for loss in losses])
            """,
            title="One loss per model, kept for one batch: the list is renewed for every batch",
            checks=(Holds("len(losses) == 3", "the list never holds more than one loss per head"),),
        ),
        Valid(
            """
            import torch

            model = torch.nn.Linear(4, 1)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            batches = iter([torch.randn(8, 4)] * 8)
            gradient_accumulate_every = 4
            totals = []


            def step():
                total = torch.zeros([])
                for _ in range(gradient_accumulate_every):
                    loss = model(next(batches)).pow(2).mean() / gradient_accumulate_every
                    loss.backward()
                    total += loss
                optimizer.step()
                optimizer.zero_grad()
                totals.append(total.item())


            for _ in range(2):
                step()
            """,
            title="A total over the micro-batches of one optimizer step, made afresh by each step",
            checks=(Holds("all(isinstance(t, float) for t in totals)",
                          "each step keeps a number; its total and graphs go when the step returns"),),
        ),
        Valid(
            """
            import torch

            model = torch.nn.Linear(4, 1)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)


            def to_float(x):
                if torch.is_tensor(x):
                    if x.numel() != 1:
                        return None
                    return float(x.detach().item())
                return None


            def loss_value(losses):
                value = to_float(losses["loss"])
                if value is None:
                    raise RuntimeError("the loss is not a scalar")
                return value


            total = 0.0
            for x in [torch.randn(8, 4)] * 3:
                losses = {"loss": model(x).pow(2).mean()}
                optimizer.zero_grad()
                losses["loss"].backward()
                optimizer.step()
                total += loss_value(losses)
            """,
            title="A total of what a helper of the module turns into a Python number, or None",
            checks=(Holds("isinstance(total, float)", "the total is a number and holds no graph"),),
        ),
        Valid(
            """
            import torch

            model = torch.nn.Linear(4, 1)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            batches = [torch.randn(8, 4)] * 3
            history = []
            for epoch in range(2):
                for x in batches:
                    optimizer.zero_grad()
                    loss = model(x).pow(2).mean()
                    loss.backward()
                    optimizer.step()
                loss = 0
                with torch.no_grad():
                    for x in batches:
                        loss += model(x).pow(2).mean().item()
                loss /= len(batches)
                history.append(loss)
            """,
            title="The training loss's name bound again to a number for the validation total",
            checks=(Holds("all(isinstance(v, float) for v in history)", "the list keeps numbers, no graph"),),
        ),
        Valid(
            """
            import torch

            model = torch.nn.Linear(4, 1)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            batches = [torch.randn(8, 4)] * 3


            def train_epoch():
                losses = []
                for x in batches:
                    optimizer.zero_grad()
                    loss = model(x).pow(2).mean()
                    loss.backward()
                    optimizer.step()
                    losses.append(loss.detach().cpu().numpy())
                loss = sum(losses) / len(losses)
                return loss


            history = []
            for epoch in range(2):
                history.append(train_epoch())
            """,
            title="A helper that returns its loss's name bound again to the mean of detached values",
            checks=(Holds("not any(isinstance(v, torch.Tensor) for v in history)", "the list keeps NumPy numbers, no graph"),),
        ),
    )
    INVALID = (
        Invalid(
            """
            import torch

            model = torch.nn.Linear(4, 1)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            criterion = torch.nn.MSELoss()
            total_loss = 0.0
            for x, y in [(torch.randn(8, 4), torch.randn(8, 1))] * 3:
                optimizer.zero_grad()
                loss = criterion(model(x), y)
                loss.backward()
                optimizer.step()
                total_loss += loss
            """,
            at=((12, 4),),
            symptom=Holds("total_loss.grad_fn is not None", "the accumulator still carries the graphs of every step"),
        ),
        Invalid(
            """
            import torch

            model = torch.nn.Linear(4, 1)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            history = []
            for x in [torch.randn(8, 4)] * 3:
                optimizer.zero_grad()
                loss = model(x).pow(2).mean()
                loss.backward()
                optimizer.step()
                history.append(loss)
            """,
            title="A list of losses, and a loss known by its `.backward()`",
            at=((11, 4),),
            symptom=Holds("all(l.grad_fn is not None for l in history)", "every stored loss keeps its graph"),
        ),
        Invalid(
            """
            import torch

            model = torch.nn.Linear(4, 1)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            criterion = torch.nn.MSELoss()


            def train_epoch(batches):
                total_loss = 0
                for x, y in batches:
                    optimizer.zero_grad()
                    loss = criterion(model(x), y)
                    loss.backward()
                    optimizer.step()
                    total_loss += loss
                return total_loss / len(batches)


            mean_loss = train_epoch([(torch.randn(8, 4), torch.randn(8, 1))] * 3)
            """,
            title="A returned total of losses the loop already differentiated",
            at=((15, 8),),
            symptom=Holds("mean_loss.grad_fn is not None", "the returned total still carries every step's graph"),
        ),
        Invalid(
            """
            import torch
            from torch.autograd import backward

            target = torch.randn(16)
            signal = torch.randn(16, requires_grad=True)
            errors = []
            for step in range(5):
                err = torch.norm(signal.cumsum(0) - target)
                errors.append(err)
                backward(err)
                with torch.no_grad():
                    signal -= 0.1 * signal.grad
                    signal.grad.zero_()
            """,
            title="A value handed to `torch.autograd.backward(...)`",
            at=((9, 4),),
            symptom=Holds("all(e.grad_fn is not None for e in errors)", "every stored error keeps its graph"),
        ),
    )

    # -- hooks -----------------------------------------------------------------

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.op, ast.Add):
            self._check(node, node.target, node.value)

    def visit_Assign(self, node: ast.Assign) -> None:
        value = node.value
        if len(node.targets) != 1 or not isinstance(value, ast.BinOp) or not isinstance(value.op, ast.Add):
            return
        target = node.targets[0]
        if isinstance(target, ast.Name) and isinstance(value.left, ast.Name) and value.left.id == target.id:
            self._check(node, target, value.right)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "append":
            args = call_args(node)
            if len(args) == 1:
                self._check(node, func.value, args[0][1], _own_append(self.context, func.value))

    # -- the decision ------------------------------------------------------------

    def _check(self, node: ast.AST, target: ast.expr, value: ast.expr, keeps=None) -> None:
        ctx = self.context
        loops = ctx.flow.loops_here()
        if not loops:
            return
        state, function = ctx.grad_here()
        if state not in (Grad.ENABLED, Grad.INHERITED):
            return
        if flow.is_pytest_test(ctx.flow.scope, ctx):
            return  # a unit test's few steps: the kept graphs are freed when it ends
        sources = facts.graph_sources(ctx, value)
        container = False
        if (sources is None or sources) and _backward_target_or_holder(ctx, loops[0], value, node):
            sources, container = set(), isinstance(value, ast.Name)
        helper: Optional[Tuple[str, ...]] = None
        bound_helper: Optional[Tuple[str, ...]] = None
        if sources is None and isinstance(value, ast.Call):
            # ``total += self._step(x, y)``: decided once the module is seen
            helper = ctx.call_key(value.func)
            if helper is not None:
                sources = set()
        elif isinstance(value, ast.Name) and sources == {value.id}:
            # ``step_loss = self._step(x, y)``, then ``total += step_loss``
            binding = ctx.lookup(value.id)
            if binding is not None and binding.seq >= loops[0].seq and isinstance(binding.value, ast.Call):
                bound_helper = ctx.call_key(binding.value.func)
        if sources is None:
            return
        root = facts.root_name(target)
        if root is None:
            return
        binding_seq = 0
        if root != "self":
            binding = ctx.lookup(root)
            if binding is None or binding.seq >= loops[0].seq:
                return  # bound inside the loop: reset every iteration
            if len(loops) > 1 and binding.seq >= loops[1].seq and (
                _repeats(loops[0].node) or _walks_models(ctx, loops[0].node)
            ):
                # ``for _ in range(k)`` of one step, or one step for each of k
                # models, the total reset around it: k graphs at most
                return
            if (
                len(loops) == 1 and binding.function is not None and binding.function is function
                and (_walks_models(ctx, loops[0].node) or _accumulates_gradients(loops[0].node)
                     or _sums_its_items(loops[0].node, value))
            ):
                # one step for each of k models, the k micro-batches of one
                # optimizer step, or the items of a list the caller already
                # holds, the total made afresh by each call: k graphs at most
                return
            binding_seq = binding.seq
        if dotted(target) in _reset_in(ctx, loops[0].node):
            return  # set back to a fresh value every few iterations: a bounded window
        scope = ctx.flow.scope
        loop = loops[0]
        spent = helper is not None or _backwarded_in(ctx, loop.node, value)
        kept = "autograd graph" if not spent else "spent autograd graph (`.backward()` freed its activations, not its nodes)"
        message = f"`{self.code_of(node)}` keeps every iteration's {kept} alive; accumulate `.item()` or `.detach()` instead"
        written = dotted(target) if isinstance(target, ast.Attribute) else None
        condition = _condition(ctx, scope, loop, sources, root, binding_seq, state, function, spent, written)
        if sources and _bound_in(ctx, loop, sources):
            # ``loss.backward()`` in an earlier loop; here ``loss = ensemble.train_step(x)``
            owner_node = function.node if function is not None else ctx.tree
            condition = _and(condition, _not_spent_only_before(ctx, loop, sources, owner_node))
        if root != "self" and (len(loops) == 1 or binding_seq >= loops[1].seq):
            # ``epochs = 1``, then ``for i in range(epochs):``: one graph kept, none piling up
            loop_node = loop.node
            condition = _and(lambda: not _runs_once(scope, loop_node), condition)
        if helper is not None:
            condition = _and(_returns_its_backward_target(ctx, helper), condition)
        if bound_helper is not None:
            by_helper = _condition(ctx, scope, loop, set(), root, binding_seq, state, function, True, written)
            condition = _or(condition, _and(_returns_its_backward_target(ctx, bound_helper), by_helper))
        collected = _collected_inputs(value) if sources == set() and isinstance(value, ast.Call) else None
        if collected:
            # ``loss_fn(torch.cat(preds), torch.cat(ys))`` of lists filled only under ``no_grad``
            condition = _and(lambda: not _collected_without_grad(scope, collected), condition)
        named_loss = _loss_helper(ctx, value)
        if named_loss is not None:
            condition = _and(_not_a_number(ctx, named_loss), condition)
        instance_call = _instance_method(ctx, value)
        if instance_call is not None:
            condition = _and(lambda: not _method_returns_number(ctx, *instance_call), condition)
        if keeps is not None:
            condition = _and(keeps, condition)
        # ``loss = 0`` after the training steps, then ``loss += ...item()``: a number,
        # alone or over a count (``valid_loss.append(loss / iterations)``)
        rebound = [value.id] if isinstance(value, ast.Name) else sorted(sources or ()) \
            if isinstance(value, ast.BinOp) else []
        if rebound:
            loop_node = loop.node
            condition = _and(condition, lambda: not all(_rebound_to_number(loop_node, n, node) for n in rebound))
        # ``self.model(lr, idx_scale)`` with no ``idx_scale``: the first pass raises, nothing accumulates
        condition = _and(condition, lambda: not flow.stops_on_its_first_pass(ctx, loop, leaves=True))
        condition = flow.unless_unreached(ctx, node, condition)  # last: it may read other modules
        if container:
            self.report(node, message, condition=condition)  # a dict of losses has no one-call fix
            return
        owner = function.node if function is not None else ctx.tree

        def fix() -> Fix:
            method = "detach" if owner is not None and _stays_tensor(ctx, owner, root) else "item"
            return Fix("call-method", value, method, unsafe=True)

        self.report(node, message, condition=condition, fix=fix)


#: Calls that join a list of tensors into one.
_JOINS = frozenset({"cat", "stack", "concat", "concatenate", "vstack", "hstack"})


def _collected_inputs(call: ast.Call) -> Optional[List[str]]:
    """The names of the lists a call's every argument joins or is
    (``loss_fn(torch.cat(preds), torch.cat(ys).to(device))``: ``preds``,
    ``ys``); None when an argument is anything else."""
    names: List[str] = []
    for arg in [*call.args, *(kw.value for kw in call.keywords)]:
        while isinstance(arg, ast.Call) and isinstance(arg.func, ast.Attribute) and arg.func.attr in _MOVES:
            arg = arg.func.value
        if isinstance(arg, ast.Call) and last_name(arg.func) in _JOINS and len(arg.args) == 1:
            arg = arg.args[0]
        if not isinstance(arg, ast.Name):
            return None
        names.append(arg.id)
    return names


#: Methods that move or reshape a tensor, keeping whether it has a graph.
_MOVES = frozenset({"to", "cuda", "cpu", "float", "double", "long", "squeeze", "view", "reshape", "flatten"})


def _collected_without_grad(scope: flow.Scope, names: List[str]) -> bool:
    """Is each of ``names`` a list the scope binds only empty (``preds, ys
    = [], []``) and fills only with grad off?"""
    for name in names:
        if name not in scope.fills or name in scope.filled_with_grad:
            return False
        bindings = [*scope.deps.get(name, ()), *scope.unpacked.get(name, ())]
        if not bindings or not all(_empty_lists(value) for value in bindings):
            return False
    return True


def _empty_lists(value: ast.expr) -> bool:
    """``[]``, or a tuple of them (``[], []``)."""
    if isinstance(value, ast.Tuple):
        return bool(value.elts) and all(_empty_lists(e) for e in value.elts)
    return isinstance(value, ast.List) and not value.elts


#: Classes whose ``append`` keeps what it is given, as a list's does.
_LIST_LIKE = frozenset({"deque", "List", "ModuleList", "ParameterList", "Queue", "LifoQueue", "SimpleQueue"})

#: What an ``append`` of a class of the module may do to its argument that
#: keeps no graph: a graph-dropping read, or ``float(value)``.
_DROPS_GRAPH = frozenset({*facts.GRAPH_DROPPING_READS, "float"})


def _own_append(ctx, target: ast.expr):
    """For ``meter.append(loss)`` where ``meter`` was bound to an instance of
    a class (``meter = AverageMeter(n)``) that is no list: whether that
    class's own ``append`` keeps its argument's graph, to be asked once the
    module is seen.  A class of the module keeps it unless its ``append``
    detaches, converts or reads ``.data``; a class defined elsewhere is not
    known to keep it.  None for a list or anything else."""
    if not isinstance(target, ast.Name):
        return None
    binding = ctx.lookup(target.id)
    value = binding.value if binding is not None else None
    if not isinstance(value, ast.Call):
        return None
    name = dotted(value.func)
    leaf = name.rpartition(".")[2] if name else ""
    if not leaf[:1].isupper() or leaf in _LIST_LIKE:
        return None

    def keeps() -> bool:
        if leaf != name or leaf not in ctx.class_bases:
            return False
        for info in ctx.functions.get(("method", leaf, "append"), ()):
            node = info.node
            return not any(
                isinstance(n, ast.Attribute) and n.attr in _DROPS_GRAPH
                or isinstance(n, ast.Name) and n.id in _DROPS_GRAPH
                for n in ast.walk(node)
            )
        return False  # no ``append`` of its own here: a base class's, not known

    return keeps


#: List methods: calling one says nothing about what the items are.
_CONTAINER_METHODS = frozenset({"append", "extend", "insert", "clear", "copy", "pop", "remove", "keys", "values",
                                "items", "get", "update", "setdefault"})


def _stays_tensor(ctx, owner: ast.AST, root: str) -> bool:
    """Is the accumulator ``root`` used as a tensor where it is defined: a
    tensor method called on it (``total.item()``, ``total.backward()``) or
    handed to a torch function (``torch.stack(losses)``)?  Then ``.detach()``
    keeps it a tensor; otherwise ``.item()`` makes it a number."""
    key = ("grd104-tensor-names", id(owner))
    names = ctx.flow.cache.get(key)
    if names is None:
        names = ctx.flow.cache[key] = _tensor_names(ctx, owner)
    return root in names


def _tensor_names(ctx, owner: ast.AST) -> Set[str]:
    """The names ``owner`` uses as tensors (see ``_stays_tensor``), in one walk."""
    names: Set[str] = set()
    for node in ast.walk(owner):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.attr not in _CONTAINER_METHODS:
            names.add(func.value.id)
        if any(isinstance(a, ast.Name) for a in node.args) and (ctx.imports.resolve(func) or "").startswith("torch."):
            names.update(a.id for a in node.args if isinstance(a, ast.Name))
    return names


def _reset_in(ctx, loop: ast.AST) -> Set[str]:
    """The names and attributes the loop binds, anywhere in its body, to a
    value that does not use them (``running_loss = 0``, ``self.loss =
    self._make_empty_loss()``); one walk per loop."""
    return _per_loop(ctx, "grd104-reset", loop, _reset_now)


def _reset_now(loop: ast.AST) -> Set[str]:
    found: Set[str] = set()
    for node in preorder(loop):
        if isinstance(node, ast.Assign):
            used = {dotted(n) for n in preorder(node.value) if isinstance(n, (ast.Name, ast.Attribute))}
            written = (dotted(t) for t in node.targets if isinstance(t, (ast.Name, ast.Attribute)))
            found.update(w for w in written if w is not None and w not in used)
    return found


def _per_loop(ctx, question: str, loop: ast.AST, answer: Callable[[ast.AST], _T]) -> _T:
    """``answer(loop)``, worked out once per loop of the module: asked again
    for every total the loop keeps."""
    key = (question, id(loop))
    found = ctx.flow.cache.get(key)
    if found is None:
        found = ctx.flow.cache[key] = answer(loop)
    return found


def _repeats(loop: ast.AST) -> bool:
    """``for _ in range(k)``: the same step repeated, not a walk over data."""
    return (
        isinstance(loop, ast.For) and isinstance(loop.target, ast.Name) and loop.target.id == "_"
        and isinstance(loop.iter, ast.Call) and isinstance(loop.iter.func, ast.Name) and loop.iter.func.id == "range"
    )


def _accumulates_gradients(loop: ast.AST) -> bool:
    """``for _ in range(self.gradient_accumulate_every):``: the loop's
    iterable names gradient accumulation, so it runs the few micro-batches
    of one optimizer step, not the data."""
    return isinstance(loop, ast.For) and any(
        "accum" in (n.id if isinstance(n, ast.Name) else n.attr).lower()
        for n in ast.walk(loop.iter) if isinstance(n, (ast.Name, ast.Attribute))
    )


def _sums_its_items(loop: ast.AST, value: ast.expr) -> bool:
    """``for aux_loss in aux_losses: total += aux_loss``: the total adds up
    the items of a list that exists before the loop, which holds their
    graphs already."""
    return (
        isinstance(loop, ast.For) and isinstance(loop.target, ast.Name) and isinstance(value, ast.Name)
        and value.id == loop.target.id and isinstance(loop.iter, (ast.Name, ast.Attribute, ast.Call))
        and not (isinstance(loop.iter, ast.Call) and isinstance(loop.iter.func, ast.Name)
                 and loop.iter.func.id in ("enumerate", "zip", "range", "iter"))
    )


def _walks_models(ctx, loop: ast.AST) -> bool:
    """``for head, optimizer in zip(heads, optimizers):`` calling ``head(x)``
    or ``optimizer.step()``: a step for each of several models, not a walk
    over data.  Asked of every total the loop keeps: one walk per loop."""
    return _per_loop(ctx, "grd104-walks-models", loop, _walks_models_now)


def _walks_models_now(loop: ast.AST) -> bool:
    if not isinstance(loop, ast.For):
        return False
    names = {n.id for n in ast.walk(loop.target) if isinstance(n, ast.Name)}

    def picked(expr: ast.expr) -> bool:
        """``head``, or ``self.critics[i]`` indexed by the loop's variable."""
        if isinstance(expr, ast.Name):
            return expr.id in names
        return isinstance(expr, ast.Subscript) and isinstance(expr.slice, ast.Name) and expr.slice.id in names

    for node in preorder(loop):  # any call will do: the order does not matter
        if isinstance(node, ast.Call):
            func = node.func
            if picked(func):
                return True
            if isinstance(func, ast.Attribute) and func.attr == "step" and picked(func.value):
                return True
    return False


def _condition(
    ctx, scope: flow.Scope, loop: flow.Loop, sources: Set[str], root: str, binding_seq: int, state, function,
    spent: bool = False, attribute: Optional[str] = None,
):
    def holds() -> bool:
        if root != "self" and root in scope.feeds_backward():
            return False  # the loss being built (loss += aux; loss.backward())
        if root != "self" and root in scope.returned() and not spent:
            return False  # handed back for the caller's backward (a spent graph cannot be: only kept)
        if sources and not (sources & (scope.backward_names - scope.detached_in_place)):
            return False  # not the loss, or one detached in place after its backward (``z.detach_()``)
        training = next((c for c in _self_and_ancestors(loop) if flow.trains(ctx, c)), None)
        # reset in every training iteration (bound inside the training loop): fine
        if training is None or binding_seq >= training.seq:
            return False
        if attribute is not None and attribute in _reset_in(ctx, training.node):
            return False  # ``losses.view = 0`` in each training iteration, then ``losses.view += ...``
        # last, as they may ask the project index about callers in other modules
        if state is Grad.INHERITED and effective(state, function) not in (Grad.ENABLED, Grad.INHERITED):
            return False
        # reduced to the one loss a caller backpropagates (``torch.stack(losses).mean()``)
        return spent or root == "self" or scope.function is None or not _reduced_into_return(scope, root) \
            or not flow.feeds_training(ctx, scope.function)

    return holds


def _returns_its_backward_target(ctx, key: Tuple[str, ...]):
    """Does the module's function ``key`` return the loss it ran
    ``.backward()`` on (``loss.backward(); return loss``)?"""

    def holds() -> bool:
        for scope in ctx.scopes_of(key):
            spent = _spent(scope)
            numbers = _returned_numbers(scope.function.node) if scope.function is not None else set()
            if any(
                isinstance(value, ast.Name) and value.id in spent and id(value) not in numbers
                for value in scope.return_values
            ):
                return True  # ``return loss``, not ``return {"loss": loss.detach().cpu().numpy()}``
        return False

    return holds


def _returned_numbers(fn: ast.AST) -> Set[int]:
    """The returned names of ``fn`` that the statements before the return,
    in its block, last bound to a Python number (``loss.backward(); loss =
    loss.item(); return loss``; ``loss = sum(losses) / len(losses)`` of
    numbers appended)."""
    found: Set[int] = set()
    for node in ast.walk(fn):
        for field in ("body", "orelse", "finalbody"):
            block = getattr(node, field, None)
            if not isinstance(block, list):
                continue
            for i, stmt in enumerate(block):
                if not (isinstance(stmt, ast.Return) and isinstance(stmt.value, ast.Name)):
                    continue
                name = stmt.value.id
                for before in reversed(block[:i]):
                    if isinstance(before, ast.Assign) and any(
                        isinstance(t, ast.Name) and t.id == name for t in before.targets
                    ):
                        if _converts(before.value) or facts.number_in(fn, before.value):
                            found.add(id(stmt.value))
                        break
                    if any(isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Store)
                           for n in ast.walk(before)):
                        break  # bound some other way: unknown
    return found


def _reduced_into_return(scope: flow.Scope, root: str) -> bool:
    """Is ``root`` reduced, by steps that keep its graph, into a name the
    function returns (``outer = torch.stack(losses).mean()``, then ``return
    outer``)?  Not through ``.item()``, ``.detach()``, ``.data`` or ``float()``."""
    return any(
        root in names_in(value, split=False) and not any(
            _converts(node) or (isinstance(node, ast.Attribute) and node.attr in ("detach", "data", "numpy"))
            for node in ast.walk(value)
        )
        for name in scope.returned() for value in scope.deps.get(name, ())
    )


def _converts(value: ast.expr) -> bool:
    """``x.item()``, ``x.tolist()``, ``float(x)``, ``int(x)``: a Python number (or list of them)."""
    if not isinstance(value, ast.Call):
        return False
    func = value.func
    if isinstance(func, ast.Attribute):
        return func.attr in ("item", "tolist") and not value.args
    return isinstance(func, ast.Name) and func.id in ("float", "int") and len(value.args) == 1


def _spent(scope: flow.Scope) -> Set[str]:
    """The names ``.backward()`` is called on in ``scope``, and the losses they
    scale: ``scaled = loss / k; scaled.backward()`` spends ``loss``'s graph
    too (terms of a sum or product, the dividend of a quotient; not the
    divisor, a count)."""
    spent = set(scope.backward_names)
    todo = list(spent)
    while todo:
        for value in scope.deps.get(todo.pop(), ()):
            for name in _scaled(value):
                if name not in spent:
                    spent.add(name)
                    todo.append(name)
    return spent


def _scaled(value: ast.expr) -> List[str]:
    if isinstance(value, ast.Name):
        return [value.id]
    if isinstance(value, ast.UnaryOp):
        return _scaled(value.operand)
    if isinstance(value, ast.BinOp):
        if isinstance(value.op, (ast.Div, ast.FloorDiv)):
            return _scaled(value.left)
        if isinstance(value.op, (ast.Add, ast.Sub, ast.Mult)):
            return _scaled(value.left) + _scaled(value.right)
    return []


def _loss_helper(ctx, value: ast.expr) -> Optional[Tuple[str, ...]]:
    """The module's function named like a loss that ``value`` is the result
    of (``self.eval_loss(model, loader)``, or a name bound to that call)."""
    if isinstance(value, ast.Name):
        binding = ctx.lookup(value.id)
        value = binding.value if binding is not None else None
    if isinstance(value, ast.Call) and facts.is_loss_call(ctx, value):
        return ctx.call_key(value.func)
    return None


def _nested_helper(ctx, key: Tuple[str, ...]) -> list:
    """The nested defs of the running function (or of those enclosing it)
    that a bare-name call with ``key`` reaches, by Python's scoping."""
    if key[0] != "function" or not ctx.nested:
        return []
    return ctx.nested_def(key[-1], ctx.grad.function) or []


def _instance_method(ctx, value: ast.expr) -> Optional[Tuple[str, str]]:
    """The class and method of a call on an object built from a class
    (``loss = NLLLoss()``, then ``loss.get_loss()``; ``maml = MAML(net)``,
    then ``loss = maml.meta_train_step(tasks)``), or of a name bound to
    that call."""
    if isinstance(value, ast.Name):
        binding = ctx.lookup(value.id)
        value = binding.value if binding is not None else None
    if not (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)
            and isinstance(value.func.value, ast.Name)):
        return None
    binding = ctx.lookup(value.func.value.id)
    built = binding.value if binding is not None else None
    written = dotted(built.func) if isinstance(built, ast.Call) else None
    return (written, value.func.attr) if written is not None else None


def _method_returns_number(ctx, written: str, method: str) -> bool:
    """Does the method ``method`` of the class ``written`` (of this module,
    or, named like a loss, of another module of the project) return only
    Python numbers?"""
    klass = flow.local_classes(ctx).get(written)
    if klass is None:
        return ctx.loss_method_returns_number(written, method)
    found = facts.method_of(klass, method)
    return found is not None and facts.returns_number(found, lambda: flow.attribute_values(ctx, written))


def _not_a_number(ctx, key: Tuple[str, ...]):
    """Unless every function ``key`` reaches returns a Python number: a
    closure of the running function (or of one enclosing it) when Python's
    scoping sends the call there (``val_loss = quick_val_loss(...)``
    returning ``np.mean(losses)``), found now, while that function runs;
    else the module's functions; else a function imported from another
    module of the project."""
    nested = _nested_helper(ctx, key)

    def holds() -> bool:
        if nested:
            return not all(facts.returns_number(info.node) for info in nested)
        scopes = ctx.scopes_of(key)
        if not scopes:
            return key[0] != "function" or not ctx.loss_function_returns_number(key[1])
        return not all(
            s.function is not None and facts.returns_number(s.function.node, calls=_numbers_from(ctx, 0))
            for s in scopes
        )

    return holds


def _numbers_from(ctx, depth: int) -> Callable[[str], bool]:
    """Does the module's one function of a name return only Python numbers
    (or ``None``), through the module's functions it calls, two deep?  Or is
    the name a class of the module whose items are numbers (its
    ``__getitem__`` returns only numbers, given every value its methods give
    the attributes of ``self``: ``self.sums = [s + float(v) for s, v in
    zip(self.sums, values)]``)?  Its instances then carry no graph."""
    def answer(name: str) -> bool:
        if depth >= 2:
            return False
        scopes = ctx.scopes_of(("function", name))
        if not scopes:
            klass = flow.local_classes(ctx).get(name)
            getitem = facts.method_of(klass, "__getitem__") if klass is not None else None
            return getitem is not None and facts.returns_number(
                getitem, attributes=lambda: flow.attribute_values(ctx, name))
        return len(scopes) == 1 and scopes[0].function is not None and facts.returns_number(
            scopes[0].function.node, calls=_numbers_from(ctx, depth + 1))
    return answer


def _bound_in(ctx, loop: flow.Loop, names: Set[str]) -> bool:
    """Is each of ``names`` bound afresh in this iteration of ``loop``?"""
    for name in names:
        binding = ctx.lookup(name)
        if binding is None or binding.seq < loop.seq:
            return False
    return True


def _not_spent_only_before(ctx, loop: flow.Loop, names: Set[str], owner: ast.AST):
    """Unless each of ``names`` (bound afresh in the iteration) is given to
    ``.backward()`` only by code of ``owner`` before the loop
    (``loss.backward()`` in an earlier loop, then ``loss =
    ensemble.train_step(x)`` here): what the name holds here is then not
    the loss spent there.  Asked only on the way to a report."""
    start = (loop.node.lineno, loop.node.col_offset)

    def holds() -> bool:
        spent = _backward_calls(ctx, owner)
        for name in names:
            calls = [call for receiver, call in spent if facts.root_name(receiver) == name]
            if not calls or any((call.lineno, call.col_offset) >= start for call in calls):
                return True
        return False

    return holds


def _runs_once(scope: flow.Scope, loop: ast.AST) -> bool:
    """Is ``loop`` a ``for`` over ``range(1)``, or over ``range(n)`` of a
    name the scope binds once, to ``1`` (``epochs = 1``)?"""
    if not (isinstance(loop, ast.For) and isinstance(loop.iter, ast.Call) and isinstance(loop.iter.func, ast.Name)
            and loop.iter.func.id == "range" and len(loop.iter.args) == 1 and not loop.iter.keywords):
        return False
    count = loop.iter.args[0]
    if isinstance(count, ast.Name) and scope.stored.get(count.id) == 1:
        values = scope.deps.get(count.id, ())
        count = values[0] if len(values) == 1 else count
    return isinstance(count, ast.Constant) and count.value == 1 and count.value is not True


def _and(first, second):
    return lambda: first() and second()


def _or(first, second):
    return lambda: first() or second()


def _self_and_ancestors(loop: Optional[flow.Loop]):
    while loop is not None:
        yield loop
        loop = loop.parent


def _rebound_to_number(loop: ast.AST, name: str, at: ast.AST) -> bool:
    """Is ``name``, where ``at`` reads it, a Python number bound in this
    iteration: a statement of a block that holds ``at`` (``at`` or one of
    the statements around it, in the loop) assigned it a number
    (``loss = 0`` after the training steps that ran ``loss.backward()``;
    ``loss = total / len(loader)`` of a ``total`` the loop adds only
    numbers to), and every later binding before ``at`` only adds or scales numbers
    (``loss += F.nll_loss(...).item()``, ``loss /= len(loader.dataset)``)?"""
    where = (getattr(at, "lineno", 0), getattr(at, "col_offset", 0))
    chain = _blocks_holding(getattr(loop, "body", []), where)
    start: Optional[Tuple[int, int]] = None
    for block, holder in chain:
        for stmt in block[:holder]:
            if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in stmt.targets):
                if len(stmt.targets) == 1 and facts.number_in(loop, stmt.value):
                    start = (stmt.lineno, stmt.col_offset)
                else:
                    start = None
    if start is None:
        return False
    # parents come before their children in ``own_nodes``: a binding's
    # statement is seen before the name it binds
    allowed: Set[int] = set()  # the names bound by a statement that keeps a number
    for node in facts.own_nodes(loop):
        if not start < (getattr(node, "lineno", 0), getattr(node, "col_offset", 0)) < where:
            continue
        if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name) and node.target.id == name:
            if not facts.number_expr(node.value, frozenset({name})):
                return False
            allowed.add(id(node.target))
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                and node.targets[0].id == name and facts.number_expr(node.value):
            allowed.add(id(node.targets[0]))
        elif isinstance(node, ast.Name) and node.id == name and not isinstance(node.ctx, ast.Load) \
                and id(node) not in allowed:
            return False  # bound otherwise: a loop's target, a tuple's item, a tensor
    return True


def _blocks_holding(block: List[ast.stmt], where: Tuple[int, int]) -> List[Tuple[List[ast.stmt], int]]:
    """The blocks from ``block`` inward whose statements hold the position
    ``where``, each with the index of the statement that holds it."""
    chain: List[Tuple[List[ast.stmt], int]] = []
    while block:
        holder = next((i for i, stmt in enumerate(block) if (stmt.lineno, stmt.col_offset) <= where <= (
            stmt.end_lineno or stmt.lineno, stmt.end_col_offset or 0)), None)
        if holder is None:
            break
        chain.append((block, holder))
        stmt = block[holder]
        inner = [b for b in (getattr(stmt, "body", None), getattr(stmt, "orelse", None),
                             getattr(stmt, "finalbody", None)) if isinstance(b, list)]
        inner += [h.body for h in getattr(stmt, "handlers", ())]
        block = next((b for b in inner if b and (b[0].lineno, b[0].col_offset) <= where <= (
            b[-1].end_lineno or b[-1].lineno, b[-1].end_col_offset or 0)), [])
    return chain


def _backward_calls(ctx, loop: ast.AST) -> List[Tuple[ast.expr, ast.Call]]:
    """``(receiver, call)`` of every ``.backward()`` in the loop body (not in
    nested functions); ``scaler.scale(loss).backward()`` has ``loss``.  One
    walk per loop, however many totals ask."""
    return _per_loop(ctx, "grd104-backward-calls", loop, lambda node: list(_backward_calls_now(node)))


def _backward_calls_now(loop: ast.AST):
    for node in facts.own_nodes(loop):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "backward":
            receiver = node.func.value
            if isinstance(receiver, ast.Call) and receiver.args:
                receiver = receiver.args[0]
            yield receiver, node


def _keeps_graph(call: ast.Call) -> bool:
    """``backward(retain_graph=True)``: the graph is kept for another use."""
    return any(kw.arg in (None, "retain_graph", "create_graph") and not is_const(kw.value, False)
               for kw in call.keywords) or len(call.args) > 1


def _backwarded_in(ctx, loop: ast.AST, value: ast.expr) -> bool:
    """Is ``value`` built from a name whose graph ``.backward()`` spends in
    the loop (``loss.backward(); total_loss += loss``, or an item of it:
    ``losses["total"].backward(); history.append(losses)``)?  Returned to the
    caller, such a total can only be kept, never differentiated again."""
    used = {n.id for n in ast.walk(value) if isinstance(n, ast.Name)}
    found = False
    for receiver, call in _backward_calls(ctx, loop):
        root = facts.root_name(receiver)
        if root is not None and root != "self" and root in used:
            if _keeps_graph(call):
                return False
            found = True
    return found


def _backward_target_or_holder(ctx, loop: flow.Loop, value: ast.expr, at: ast.AST) -> bool:
    """``value`` is what a ``.backward()`` of this loop iteration was called on
    (``out.loss``, ``losses["total"]``), or a container built in the
    iteration one of whose items was (``losses`` after
    ``losses["total"].backward()``)."""
    where = (getattr(at, "lineno", 0), getattr(at, "col_offset", 0))
    if isinstance(value, ast.Name):
        binding = ctx.lookup(value.id)
        if binding is None or binding.seq < loop.seq or binding.state in (Grad.DISABLED, Grad.UNKNOWN):
            return False  # not built in this iteration
        built = binding.value
        if isinstance(built, ast.Call):
            func = built.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in _CONVERTING:
                return False  # ``{k: v.item() ...}`` or ``dict(...)``: a converted copy
        elif not isinstance(built, (ast.Dict, ast.List, ast.Tuple)):
            return False
        start = (getattr(built, "lineno", 0), getattr(built, "col_offset", 0))
        for receiver, call in _backward_calls(ctx, loop.node):
            if isinstance(receiver, (ast.Subscript, ast.Attribute)) and facts.root_name(receiver) == value.id:
                spent = (call.lineno, call.col_offset)
                if start < spent < where and not _overwritten_with_numbers(loop.node, receiver, spent, where):
                    return True  # unless the item was detached in place first: ``out["loss"] = out["loss"].detach()``
        return False
    if isinstance(value, (ast.Subscript, ast.Attribute)):
        text = ast.dump(value)
        spent = [
            (call.lineno, call.col_offset) for receiver, call in _backward_calls(ctx, loop.node)
            if ast.dump(receiver) == text and (call.lineno, call.col_offset) < where
        ]
        return bool(spent) and not _overwritten_with_numbers(loop.node, value, max(spent), where)
    return False


def _overwritten_with_numbers(loop: ast.AST, value: ast.expr, after: Tuple[int, int], before: Tuple[int, int]) -> bool:
    """Is ``value`` (``losses["loss"]``) replaced by a detached value between
    the two positions: assigned itself, or through a key not known to be
    another (``for k, v in losses.items(): losses[k] = v.item()``), or with
    the whole container (``losses = detach(losses)``)?"""
    root, text = facts.root_name(value), ast.unparse(value)
    for node in ast.walk(loop):
        if isinstance(node, ast.Assign) and after < (node.lineno, node.col_offset) < before:
            if facts.detached_value(node.value) and any(
                ast.unparse(t) == text
                or (isinstance(t, ast.Subscript) and facts.root_name(t) == root and not isinstance(t.slice, ast.Constant))
                or (isinstance(t, ast.Name) and t.id == root and isinstance(value, ast.Subscript))
                for t in node.targets
            ):
                return True
    return False


#: Calls that return a container of numbers or detached tensors.
_CONVERTING = frozenset({"item", "detach", "tolist", "numpy", "float", "int", "dict", "list", "tuple", "copy"})
