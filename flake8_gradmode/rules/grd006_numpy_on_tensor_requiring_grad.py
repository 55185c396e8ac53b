from __future__ import annotations

import ast
from collections import namedtuple
from typing import Dict, List, Optional, Tuple

from flake8_gradmode import facts, flow
from flake8_gradmode.context import Fix
from flake8_gradmode.names import OTHER_FRAMEWORKS
from flake8_gradmode.rule import Holds, Invalid, Raises, Rule, Valid
from flake8_gradmode.tracker import Grad, dotted, first_value, is_const, last_name

_UPPER = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_LOWER = frozenset("abcdefghijklmnopqrstuvwxyz")


def _other_framework_class(name: str) -> bool:
    """Is ``name`` a model class of another framework that a library names by
    prefix (``TFBertModel``, ``FlaxBertModel``: the prefix, a capital, a small
    letter)?"""
    for prefix in ("TF", "Flax"):
        if name.startswith(prefix):
            rest = name[len(prefix):len(prefix) + 2]
            return len(rest) == 2 and rest[0] in _UPPER and rest[1] in _LOWER
    return False


#: numpy functions that call ``Tensor.__array__`` (and so ``Tensor.numpy()``).
_NUMPY_CALLS = frozenset({"numpy.asarray", "numpy.array", "numpy.asanyarray"})

#: Tensor methods whose result requires grad when their receiver does (a
#: floating-point result of a differentiable operation, or a view).
_KEEPING_METHODS = frozenset(
    {
        "cpu", "cuda", "to", "float", "double", "half", "bfloat16", "squeeze", "unsqueeze", "view", "view_as",
        "reshape", "reshape_as", "flatten", "contiguous", "permute", "transpose", "t", "clone", "expand",
        "expand_as", "repeat", "narrow", "select", "sum", "mean", "exp", "log", "abs", "sqrt", "pow", "softmax",
        "log_softmax", "sigmoid", "tanh", "relu", "mul", "add", "sub", "div", "matmul", "cumsum", "std", "var",
    }
)
#: Of those, the ones a numpy array does not have: the receiver is a tensor.
_TENSOR_ONLY_METHODS = frozenset(
    {"cpu", "cuda", "to", "float", "double", "half", "bfloat16", "view", "view_as", "unsqueeze", "permute",
     "contiguous", "softmax", "log_softmax", "sigmoid", "relu", "expand", "expand_as", "narrow", "reshape_as"}
)
#: Tensor methods whose result holds no graph, or never requires grad.
_BREAKING_METHODS = frozenset(
    {
        "detach", "detach_", "item", "tolist", "numpy", "argmax", "argmin", "argsort", "long", "int", "short",
        "bool", "byte", "char", "type", "eq", "ne", "lt", "le", "gt", "ge", "sign", "round", "floor", "ceil",
        "nonzero", "size", "dim", "requires_grad_",
    }
)
#: torch functions of one tensor (the first argument) that keep its graph.
_KEEPING_FUNCTIONS = frozenset(
    {
        "torch.sigmoid", "torch.tanh", "torch.softmax", "torch.log_softmax", "torch.exp", "torch.log",
        "torch.squeeze", "torch.unsqueeze", "torch.flatten", "torch.nn.functional.softmax",
        "torch.nn.functional.log_softmax", "torch.nn.functional.sigmoid", "torch.nn.functional.normalize",
        "torch.nn.functional.relu",
    }
)
#: Attributes of a model output that are tensors carrying its graph.
_KEEPING_ATTRIBUTES = frozenset({"T", "mT", "logits", "last_hidden_state", "pooler_output"})
#: Keys of a model's output dict whose values are integer tensors (detection
#: and retrieval outputs): ``pred["labels"]``.
_INTEGER_KEYS = frozenset(
    {"labels", "label", "classes", "class_ids", "category_ids", "indices", "idx", "ids", "token_ids",
     "input_ids", "pred_classes", "sequences"}
)
_FLOAT_DTYPES = frozenset({"float", "float32", "float64", "double", "half", "float16", "bfloat16"})
_KEEPING_OPERATORS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.MatMult, ast.Pow)

#: Calls whose models have outputs that need not require grad.
_NO_GRAD_MODEL_CALLS = ("jit.freeze", "optimize_for_inference", "quantize_dynamic", "quantize_jit")
_NO_GRAD_MODEL_LAST = frozenset(name.rpartition(".")[2] for name in _NO_GRAD_MODEL_CALLS)
#: the last names of the calls ``_file_says_no`` looks at
_SAYS_NO_CALLS = _NO_GRAD_MODEL_LAST | {"requires_grad_"}


#: Where a tensor expression comes from: ``calls`` (a tuple of ``ast.Call``),
#: the calls that may be model forwards; ``states`` (a frozenset of ``Grad``),
#: the grad states of every step that computed it; ``tensor_only``, whether a
#: step shows it is a tensor rather than an array; ``unpacked``, the calls
#: whose result was unpacked (``a, b, acc = model(x)``): one of several
#: outputs, which need not all carry the graph.  A collections.namedtuple
#: (``_replace`` is used): a typing.NamedTuple class costs twice as much to
#: create at import.
_Trace = namedtuple("_Trace", ("calls", "states", "tensor_only", "unpacked"), defaults=((),))


#: ``torch.nn`` classes that run the model they are given: their outputs are its outputs.
_WRAPPERS = frozenset({"DataParallel", "DistributedDataParallel"})


def _wraps_a_model(call: ast.Call) -> bool:
    """``nn.DataParallel(model)``: a wrapper whose outputs are the wrapped model's."""
    return (last_name(call.func) or "") in _WRAPPERS


def _join(a: _Trace, b: _Trace) -> _Trace:
    return _Trace(a.calls + b.calls, a.states | b.states, a.tensor_only or b.tensor_only, a.unpacked + b.unpacked)


class NumpyOnTensorRequiringGrad(Rule):
    code = "GRD006"
    name = "numpy-on-tensor-requiring-grad"
    triggers = ("numpy", "asarray", "array")
    summary = "`.numpy()` or `np.asarray` on a model output that requires grad"
    what = """
        Reports `.numpy()`, `np.asarray(t)`, `np.array(t)` (numpy imported
        under any name) on a model output, or on a value derived from one by
        steps that keep its graph (arithmetic, indexing, `.cpu()`, `.to(device)`,
        `.squeeze()`, `.float()`, `.softmax()`, `torch.sigmoid(...)`, ...),
        when every step ran with grad enabled and nothing detached it.  Grad
        must be known to be enabled: code at the top level of the module, a
        block under `torch.enable_grad()` or `set_grad_enabled(True)`, a
        function a module-level call runs with grad enabled, or a function
        or loop whose body runs a training step (`.backward()`,
        `optimizer.step()`) outside any `if`.

        A model call is what the loop rules call one: a call of `self` in an
        `nn.Module` subclass, of a name the module shows to be a model
        (`.eval()`, `.parameters()`, `.to()` ... called on it, built from an
        `nn.Module` subclass), or of a name like `model`, `net`, `encoder`.
        `np.asarray`/`np.array` need a step only a tensor has (`.cpu()`,
        `.to()`, ...) or a model the module shows to be one.
    """
    why = """
        A tensor that requires grad cannot be turned into a numpy array:
        numpy would share its memory without autograd knowing.  The call
        raises `RuntimeError: Can't call numpy() on Tensor that requires grad.
        Use tensor.detach().numpy() instead.`  `np.asarray` and `np.array` go
        through the same `numpy()` and raise the same error.  The usual cause
        is a forward pass run outside `torch.no_grad()` whose output is then
        plotted, saved or scored with numpy.
    """
    known_problems = """
        Silent where the grad mode is decided by a caller: a plain function
        (or method) that runs the forward may be called under `no_grad`
        elsewhere, so it is reported only when the module shows grad is
        enabled there, and never when a function of the module switches grad
        off for the process (`torch.set_grad_enabled(False)` as a statement
        in a constructor).  Silent in a module that imports another
        framework (`tensorflow`, `jax`, ...) or a library's model class of
        one (`from transformers import TFBertModel`, `FlaxT5Model`): its
        outputs may be that framework's, whose `.numpy()` works.  Silent when the steps between the forward and the
        numpy call are not all known to keep the graph (`.detach()`, `.data`,
        `.item()`, `.tolist()`, `.argmax()`, `.long()`, comparisons and any
        unknown call break it), when the value is an output item named like
        integers (`pred["labels"]`, `out["indices"]`, `outputs[keys.IDS]`),
        or an item, named by a string, of an output another item of which
        the code around detaches (`outputs["score"].detach()` beside
        `outputs["score_masks"].cpu().numpy()`: the author tells the items
        that carry the graph from masks made by comparisons), when the value is one
        of several outputs unpacked from a model that is not built in the
        module from a `torch.nn` class (`nn.DataParallel(model)` counts as the
        model it wraps; `_, loss, acc = model(x, y)`: which
        outputs carry the graph is the model's own code, and an accuracy
        computed from `.data` carries none), when the value passes through a container or
        an attribute, when the file turns off `requires_grad` anywhere
        (`requires_grad_(False)`, `p.requires_grad = False`, a frozen
        (`model.freeze()` of a LightningModule, `torch.jit.freeze`) or
        quantized model: the outputs may not require grad), and in files that
        import another tensor framework (a TensorFlow tensor has a `.numpy()`
        that works).  A model with no trainable parameters fed with inputs
        that do not require grad makes outputs that do not require grad;
        such a model called through a model-like name is reported wrongly.
        Methods that run the forward by another name (`model.generate(...)`,
        `decoder.sample(...)`) are not followed: they often return token ids.
        Silent when the model's `forward` may return, on some path, a value
        without its graph (`return scores.argsort()` in a test branch,
        `outputs = outputs.data` for numpy inputs, then `return outputs`, or
        a tensor made from data, `return torch.LongTensor(tags)` after a
        CRF's decode):
        asked of the model's class when the function built the model from a
        class of the module or (with the project index) of the project, and
        otherwise of every class of the module and the project, since any of
        them may be the model.
    """
    options = ("model_names", "no_grad_decorators")
    fix_safety = """
        Opt-in (`flake8-gradmode --fix --unsafe-fixes`): `.detach()` is
        inserted before the conversion (`out.numpy()` becomes
        `out.detach().numpy()`, `np.asarray(out)` becomes
        `np.asarray(out.detach())`).  The array no longer shares anything with
        autograd, which is what the numpy call needs; but running the forward
        under `torch.no_grad()` is often the better fix (it also saves the
        memory of the graph), which only the author can decide, so it is not
        applied without `--unsafe-fixes`.
    """
    references = (
        "https://pytorch.org/docs/stable/generated/torch.Tensor.numpy.html",
        "https://pytorch.org/docs/stable/generated/torch.Tensor.detach.html",
    )

    VALID = (
        Valid(
            """
            import torch


            class Scorer(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = torch.nn.Linear(4, 1)

                def forward(self, x):
                    return {"score": self.fc(x).squeeze(1), "score_masks": x.abs().sum(1) > 1}


            model = Scorer()
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            scores, masks = [], []
            for x in [torch.randn(8, 4)]:
                outputs = model(x)
                loss = outputs["score"].pow(2).mean()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                scores.append(outputs["score"].detach().cpu().numpy())
                masks.append(outputs["score_masks"].cpu().numpy())
            """,
            title="One output item detached, another read as it is: the author tells them apart",
            checks=(Holds("masks[0].dtype == bool", "the masks, made by a comparison, carry no graph"),),
        ),
        Valid(
            """
            import torch

            model = torch.nn.Linear(4, 2)
            out = model(torch.randn(3, 4))
            print(out.detach().numpy())
            """,
        ),
        Valid(
            """
            import numpy as np
            import torch

            model = torch.nn.Linear(4, 2)
            with torch.no_grad():
                out = model(torch.randn(3, 4))
            scores = np.asarray(out.cpu())
            """,
            title="The forward ran under `no_grad`",
        ),
        Valid(
            """
            import numpy as np
            import torch

            model = torch.nn.Linear(4, 2)
            out = model(torch.randn(3, 4))
            labels = out.argmax(1).numpy()
            total = np.array(out.sum(1).tolist())
            first = out[0, 0].item()
            """,
            title="Integer results, Python numbers and lists hold no graph",
        ),
        Valid(
            """
            import torch


            def predict(model, x):
                return model(x).numpy()


            with torch.no_grad():
                print(predict(torch.nn.Linear(4, 2), torch.randn(3, 4)))
            """,
            title="A function whose caller decides the grad mode",
        ),
        Valid(
            """
            import torch


            class Scorer(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.body = torch.nn.Linear(4, 2)

                def score(self, x):
                    return self.body(x).pow(2).sum(1).detach()

                def forward(self, x):
                    return self.score(x)


            net = Scorer()
            scores = net(torch.randn(3, 4))
            print(scores.numpy())
            """,
            title="The forward returns what another method of its class detached",
        ),
        Valid(
            """
            import torch


            class Tagger(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.proj = torch.nn.Linear(3, 2)

                def forward(self, x):
                    return self.proj(x), (x > 0).long()


            model = torch.nn.DataParallel(Tagger())
            scores, tags = model(torch.randn(4, 3))
            first = tags[0].cpu().numpy()
            """,
            title="One of several outputs of a wrapped model, which need not all carry the graph",
            checks=(Holds("first.dtype.kind == 'i'", "the integer output converts"),),
        ),
        Valid(
            """
            import torch


            class Encoder:
                def __init__(self, model):
                    self.model = model

                def __call__(self, ids):
                    return self.encode(ids)

                @torch.no_grad()
                def encode(self, ids):
                    return self.model(ids).softmax(-1)


            encoder = Encoder(torch.nn.Linear(3, 2))
            encoded = encoder(torch.randn(4, 3))
            probabilities = encoded.cpu().numpy()
            """,
            title="A callable whose `__call__` returns what a `no_grad` method computed",
            checks=(Holds("probabilities.shape == (4, 2)", "the output converts"),),
        ),
    )
    INVALID = (
        Invalid(
            """
            import torch

            model = torch.nn.Linear(4, 2)
            out = model(torch.randn(3, 4))
            print(out.numpy())
            """,
            at=((5, 6),),
            symptom=Raises("RuntimeError", "Can't call numpy() on Tensor that requires grad"),
        ),
        Invalid(
            """
            import numpy as np
            import torch

            net = torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.Softmax(dim=1))
            net.eval()
            probs = net(torch.randn(3, 4)).cpu()
            scores = np.asarray(probs[:, 1])
            """,
            title="`np.asarray` on a value derived from the output; `eval()` does not disable grad",
            at=((7, 9),),
            symptom=Raises("RuntimeError", "Can't call numpy() on Tensor that requires grad"),
        ),
        Invalid(
            """
            import torch


            def train(model, batches, optimizer):
                history = []
                for x, y in batches:
                    optimizer.zero_grad()
                    pred = model(x)
                    loss = torch.nn.functional.mse_loss(pred, y)
                    loss.backward()
                    optimizer.step()
                    history.append(pred.squeeze(1).numpy())
                return history


            model = torch.nn.Linear(4, 1)
            train(model, [(torch.randn(8, 4), torch.randn(8, 1))], torch.optim.SGD(model.parameters(), lr=0.1))
            """,
            title="In a training loop",
            at=((12, 23),),
            symptom=Raises("RuntimeError", "Can't call numpy() on Tensor that requires grad"),
        ),
        Invalid(
            """
            import torch


            @torch.no_grad()
            def saliency(model, x):
                with torch.enable_grad():
                    x = x.clone().requires_grad_()
                    score = model(x).sum(1)
                    return score.numpy()


            saliency(torch.nn.Linear(4, 2), torch.randn(3, 4))
            """,
            title="Under `torch.enable_grad()`",
            at=((9, 15),),
            symptom=Raises("RuntimeError", "Can't call numpy() on Tensor that requires grad"),
        ),
    )

    def __init__(self, context) -> None:
        super().__init__(context)
        #: (frame, name) -> (frame, value node, binding seq, trace, element of a tuple target)
        self._traces: Dict[Tuple[int, str], Tuple[object, ast.expr, int, Optional[_Trace], bool]] = {}
        self._file_ok: Optional[bool] = None
        self._index: Optional[Dict[int, flow.ModelCall]] = None
        #: the module shows, somewhere, that model outputs may not require grad
        #: (see ``_file_says_no``); gathered as the walk goes
        self._says_no = False

    # -- signs that outputs may not require grad, anywhere in the module ------------

    def visit_Import(self, node: ast.Import) -> None:
        if any(a.name.split(".")[0] in OTHER_FRAMEWORKS for a in node.names):
            self._says_no = True

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module is not None and node.level == 0 and node.module.split(".")[0] in OTHER_FRAMEWORKS:
            self._says_no = True
        elif any(_other_framework_class(a.name) for a in node.names):
            self._says_no = True  # ``from transformers import TFBertModel``: its outputs are TensorFlow's

    # -- bindings: what each name was computed from ---------------------------------

    def leave_Assign(self, node: ast.Assign) -> None:
        if not self._says_no and is_const(node.value, False) and any(
            isinstance(t, ast.Attribute) and t.attr == "requires_grad" for t in node.targets
        ):
            self._says_no = True
        # runs before the tracker binds the targets: names in the value still
        # mean what they meant when it was computed
        for target in node.targets:
            self._remember(target, node.value)

    def leave_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self._remember(node.target, node.value)

    def _remember(self, target: ast.expr, value: ast.expr) -> None:
        frame = self.context.grad.frame
        seq = self.context.flow.seq
        if isinstance(target, ast.Name):
            self._traces[(id(frame), target.id)] = (frame, value, seq, self._trace(value), False)
        elif isinstance(target, (ast.Tuple, ast.List)):
            # ``logits, hidden = model(x)``: every element comes from the call
            trace = self._trace(value) if isinstance(value, ast.Call) else None
            for element in target.elts:
                if isinstance(element, ast.Name):
                    self._traces[(id(frame), element.id)] = (frame, value, seq, trace, True)

    # -- the conversions -------------------------------------------------------------

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        cls = func.__class__
        last = func.attr if cls is ast.Attribute else func.id if cls is ast.Name else None  # type: ignore[attr-defined]
        if last in _SAYS_NO_CALLS and not self._says_no:
            if last == "requires_grad_":
                first = first_value(node) if cls is ast.Attribute else None
                if first is not None and not is_const(first, True):
                    self._says_no = True
            elif ast.unparse(func).endswith(_NO_GRAD_MODEL_CALLS):
                self._says_no = True
            elif last == "freeze" and cls is ast.Attribute and not node.args and not node.keywords:
                self._says_no = True  # ``model.freeze()``: a LightningModule's parameters stop requiring grad
        if isinstance(func, ast.Attribute) and func.attr == "numpy":
            if node.args or node.keywords:
                return  # ``numpy(force=True)`` detaches by itself
            tensor = func.value
            numpy_call = False
        elif isinstance(func, ast.Attribute) or isinstance(func, ast.Name):
            if not self.context.imports.may_end_with(func, ("asarray", "array", "asanyarray")):
                return
            if (self.context.imports.resolve(func) or "") not in _NUMPY_CALLS:
                return
            if not node.args or isinstance(node.args[0], ast.Starred):
                return
            tensor = node.args[0]
            numpy_call = True
        else:
            return
        trace = self._trace(tensor)
        if trace is None or not trace.calls:
            return
        state, function = self.context.grad_here()
        trace = trace._replace(states=trace.states | {state})
        message = (
            f"`{self.code_of(node)}` on a tensor that requires grad raises RuntimeError; "
            "call `.detach()` first or run the forward under `torch.no_grad()`"
        )
        item = _output_item(tensor)
        self.report(
            node,
            message,
            condition=lambda: self._holds(trace, function, numpy_call) and not (
                item is not None and _items_told_apart(function.node if function else self.context.tree, *item)
            ),
            fix=Fix("call-method", tensor, "detach", unsafe=True),
        )

    # -- where a value comes from ------------------------------------------------------

    def _trace(self, expr: ast.expr, depth: int = 0) -> Optional[_Trace]:
        """The model calls ``expr`` is derived from by steps that keep the
        graph, or None when some step is unknown or breaks it."""
        if depth > 12:
            return None
        state = self.context.grad.state
        here = frozenset({state})
        if isinstance(expr, ast.Call):
            func = expr.func
            qual = self.context.imports.resolve(func) or ""
            if qual in _KEEPING_FUNCTIONS:
                first = first_value(expr)
                if first is None or not expr.args:
                    return None
                inner = self._trace(first, depth + 1)
                return inner._replace(tensor_only=True) if inner is not None else None
            if isinstance(func, ast.Attribute) and func.attr in _KEEPING_METHODS:
                if func.attr == "to" and not self._to_float_or_device(expr):
                    return None
                inner = self._trace(func.value, depth + 1)
                if inner is None:
                    return None
                return inner._replace(tensor_only=inner.tensor_only or func.attr in _TENSOR_ONLY_METHODS)
            if isinstance(func, ast.Attribute) and func.attr in _BREAKING_METHODS:
                return None
            if facts.is_loss_call(self.context, expr):
                return None  # its inputs decide, and they are not followed
            return _Trace((expr,), here, False)  # a model call, if the module says so (decided at the end)
        if isinstance(expr, ast.Subscript):
            key = expr.slice
            written = key.value if isinstance(key, ast.Constant) and isinstance(key.value, str) else (
                (dotted(key) or "").rpartition(".")[2].lower() if isinstance(key, ast.Attribute) else "")
            if written in _INTEGER_KEYS:
                # ``pred["labels"]``, ``outputs[kfg.IDS]``: class ids and indices are integers,
                # which never require grad
                return None
            return self._trace(expr.value, depth + 1)
        if isinstance(expr, ast.Attribute):
            if expr.attr not in _KEEPING_ATTRIBUTES:
                return None  # ``.data``, ``.grad`` and anything unknown
            inner = self._trace(expr.value, depth + 1)
            if inner is None or expr.attr in ("T", "mT"):
                return inner
            return inner._replace(tensor_only=True)
        if isinstance(expr, ast.BinOp):
            if not isinstance(expr.op, _KEEPING_OPERATORS):
                return None
            found = None
            for side in (expr.left, expr.right):
                sub = self._trace(side, depth + 1)
                if sub is not None and sub.calls:
                    found = sub if found is None else _join(found, sub)
            return found._replace(states=found.states | here) if found is not None else None
        if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, (ast.USub, ast.UAdd)):
            return self._trace(expr.operand, depth + 1)
        if isinstance(expr, ast.Name):
            return self._named(expr.id)
        return None

    def _named(self, name: str) -> Optional[_Trace]:
        """What ``name``, bound in the running frame, was computed from."""
        frame = self.context.grad.frame
        entry = self._traces.get((id(frame), name))
        binding = frame.names.get(name)
        if entry is None or not isinstance(binding, facts.Binding):
            return None
        owner, value, seq, trace, element = entry
        if owner is not frame or trace is None:
            return None
        current = binding.value is None and binding.seq == seq if element else binding.value is value
        if not current:
            return None  # bound again since (a loop target, ``+=``, a parameter ...)
        if element:
            trace = trace._replace(unpacked=trace.unpacked + trace.calls)
        return trace._replace(states=trace.states | {binding.state})

    def _to_float_or_device(self, call: ast.Call) -> bool:
        """``.to(device)``, ``.to("cpu")``, ``.to(torch.float32)``: not a cast to integers."""
        for arg in call.args:
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                continue
            qual = self.context.imports.resolve(arg) or ""
            if qual.startswith("torch."):
                if qual.rsplit(".", 1)[-1] in _FLOAT_DTYPES or qual == "torch.device":
                    continue
                return False
            last = qual.rsplit(".", 1)[-1].lower()
            if "device" in last or last in ("cpu", "cuda", "dev", "gpu"):
                continue
            if isinstance(arg, ast.Call) and (self.context.imports.resolve(arg.func) or "") == "torch.device":
                continue
            return False
        for kw in call.keywords:
            if kw.arg in ("device", "non_blocking", "copy", "memory_format"):
                continue
            if kw.arg == "dtype" and (self.context.imports.resolve(kw.value) or "").rsplit(".", 1)[-1] in _FLOAT_DTYPES:
                continue
            return False
        return True

    # -- the decision, once the module is seen -----------------------------------------

    def _holds(self, trace: _Trace, function, numpy_call: bool) -> bool:
        ctx = self.context
        if not self._file_allows():
            return False
        index = self._model_index()
        calls = [index.get(id(c)) for c in trace.calls]
        models = [c for c in calls if c is not None and _forward_pass(c) and flow.is_model_call(ctx, c)]
        if not models:
            return False
        if any(self._output_may_be_detached(c) for c in models):
            return False
        if trace.unpacked and not all(self._torch_module(c) for c in models if c.node in trace.unpacked):
            return False  # ``_, _, acc = model(x)``: which outputs carry the graph is the model's code
        if numpy_call and not trace.tensor_only and not any(self._shown_model(c) for c in models):
            return False
        if trace.states - {Grad.ENABLED, Grad.INHERITED}:
            return False
        if Grad.INHERITED not in trace.states:
            return True  # module level, or under ``enable_grad()``
        if function is None:
            return False  # a lambda or generator expression: its caller decides
        if ctx.flow.grad_off_by_hand:
            return False  # ``torch.set_grad_enabled(False)`` in a function: process state, order not visible
        if flow.model_turns_grad_off(ctx, models):
            return False  # a project class's forward, or its constructor, turns grad off itself
        resolved = flow.entry_grad(ctx, function)
        if resolved is Grad.ENABLED:
            return True  # a call in the module runs it with grad enabled
        if resolved is not Grad.INHERITED:
            return False
        regions: List[ast.AST] = [function.node]
        for call in models:
            for loop in ctx.flow.loops:
                if loop.scope.function is function and any(m is call for m in loop.model_calls):
                    regions.append(loop.node)
        return any(self._trains_unconditionally(region) for region in regions)

    def _output_may_be_detached(self, call: flow.ModelCall) -> bool:
        """May the model's ``forward`` return a value without its graph
        (``return outputs.data``, ``return scores.argsort()``, see
        ``facts.forward_detaches``)?  Asked of the model's class when it is
        known: ``self``'s, or the class the function built it from (in this
        module or the project); a ``torch.nn`` class never does.  Otherwise
        any such ``forward`` of the module or the project may be the one
        that runs."""
        ctx = self.context
        local = flow.local_classes(ctx)
        if call.key == "self" and call.class_name in local:
            return facts.forward_detaches(local[call.class_name])
        if flow.built_parameter_free(ctx, call):
            return True  # a module of buffers only: its output needs grad only through its input
        built = flow.built_before(ctx, call, call.key)
        if built is not None:
            written = dotted(built.func)
            if written in local:
                return facts.forward_detaches(local[written])
            if (ctx.imports.resolve(built.func) or "").startswith("torch.nn."):
                return False
            if written is not None:
                answer = ctx.forward_detaches(written)
                if answer is not None:
                    return answer
        return any(facts.forward_detaches(n) for n in local.values()) or ctx.any_forward_detaches()

    def _model_index(self) -> Dict[int, flow.ModelCall]:
        if self._index is None:
            self._index = {
                id(call.node): call for scope in self.context.flow.all_scopes for call in scope.model_calls
            }
        return self._index

    def _torch_module(self, call: flow.ModelCall) -> bool:
        """Is the callee built in this module from a ``torch.nn`` class
        (``encoder = torch.nn.GRU(...)``), whose outputs all carry the graph?"""
        built = [
            scope.constructed[call.key] for scope in self.context.flow.all_scopes if call.key in scope.constructed
        ]
        return bool(built) and all(
            (self.context.imports.resolve(c.func) or "").startswith("torch.nn.") and not _wraps_a_model(c)
            for _, c in built
        )

    def _shown_model(self, call: flow.ModelCall) -> bool:
        """Is the callee a module by the module's own evidence, not only by its name?"""
        flow_ = self.context.flow
        key = call.key
        if key == "self" or key in flow_.module_evidence or key in flow_.module_classes:
            return True
        return any(key in scope.built_models for scope in flow_.all_scopes)

    def _file_allows(self) -> bool:
        """Torch's tensors, and no sign that model outputs may not require grad."""
        if self._file_ok is None:
            self._file_ok = self.context.imports.mentions_torch() and not self._file_says_no()
        return self._file_ok

    def _file_says_no(self) -> bool:
        """Does the module import another tensor framework, set
        ``requires_grad = False`` (or ``requires_grad_(flag)`` with anything
        but ``True``) anywhere, or freeze or quantise a model for inference
        (``torch.jit.freeze``, ``quantize_dynamic``, a LightningModule's
        ``model.freeze()``)?  Its model outputs may
        then not require grad."""
        return self.context.tree is None or self._says_no

    def _trains_unconditionally(self, region: ast.AST) -> bool:
        """Does ``region`` (a function or loop) run a training step
        (``.backward()``, ``optimizer.step()``) outside any ``if``?"""
        body = getattr(region, "body", [])
        return self._steps_in(body)

    def _steps_in(self, statements: List[ast.stmt]) -> bool:
        ctx = self.context
        for stmt in statements:
            if isinstance(stmt, (ast.If, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            if isinstance(stmt, (ast.For, ast.AsyncFor, ast.While)):
                if self._steps_in(stmt.body):
                    return True
                continue
            if isinstance(stmt, (ast.With, ast.AsyncWith)):
                if all(ctx.grad.effect(ctx.imports, item.context_expr) is None for item in stmt.items):
                    if self._steps_in(stmt.body):
                        return True
                continue
            if isinstance(stmt, ast.Try):
                if self._steps_in(stmt.body) or self._steps_in(stmt.finalbody):
                    return True
                continue
            if type(stmt).__name__ in ("Match", "TryStar"):
                continue
            for node in _walk_expressions(stmt):
                if (
                    isinstance(node, ast.Call)
                    and facts.is_training_step(ctx, node)
                    and not facts.is_gradient_only(ctx, node)
                ):
                    return True
        return False


def _forward_pass(call: flow.ModelCall) -> bool:
    """``model(x)``, ``model.forward(x)``, ``models[k](x)``; not a method that
    runs the forward by another name (``model.generate(...)``, ``decoder.sample(...)``):
    those often return token ids, which never require grad."""
    func = call.node.func
    return not isinstance(func, ast.Attribute) or func.attr == "forward" or dotted(func) == call.key


def _walk_expressions(stmt: ast.stmt):
    """The nodes of a simple statement, not entering lambdas."""
    todo: List[ast.AST] = [stmt]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, ast.Lambda):
                todo.append(child)


def _output_item(expr: ast.expr) -> Optional[Tuple[str, str]]:
    """The output and the key, as written, of the item a numpy call reads
    (``("outputs", "'masks'")`` for ``outputs["masks"].cpu()``,
    ``outputs[key + "_masks"]`` too) when the key names it with a string."""
    while True:
        if isinstance(expr, ast.Call):
            expr = expr.func
        elif isinstance(expr, ast.Attribute):
            expr = expr.value
        elif isinstance(expr, ast.Subscript):
            key = expr.slice
            if isinstance(expr.value, ast.Name) and any(
                isinstance(n, ast.Constant) and isinstance(n.value, str) for n in ast.walk(key)
            ):
                return expr.value.id, ast.dump(key)
            expr = expr.value
        else:
            return None


def _items_told_apart(root: Optional[ast.AST], name: str, key: str) -> bool:
    """Does the code around detach another item of the same output
    (``outputs["inter"].sigmoid().detach()`` beside ``outputs["inter_masks"]``,
    ``outputs[key].detach()`` beside ``outputs[key + "_masks"]``)?  Its
    author tells the items that carry the graph from those that do not
    (masks made by comparisons, counts)."""
    for node in ast.walk(root) if root is not None else ():
        if isinstance(node, ast.Attribute) and node.attr in ("detach", "data"):
            inner = node.value
            while isinstance(inner, (ast.Call, ast.Attribute)):
                inner = inner.func if isinstance(inner, ast.Call) else inner.value
            if isinstance(inner, ast.Subscript) and isinstance(inner.value, ast.Name) and inner.value.id == name \
                    and ast.dump(inner.slice) != key:
                return True
    return False
