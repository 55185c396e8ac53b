"""Whether a model computes the same in training and eval mode: the layers
it is built from, and where it was built."""

from __future__ import annotations

import ast
import builtins
import collections
import sys
from typing import Dict, FrozenSet, Iterator, List, Optional, Set, Tuple

from flake8_gradmode import flow
from flake8_gradmode.tracker import (
    ImportTable, all_params, chain_root, dotted, is_const, last_name, unchained,
)


#: ``torch.nn`` layers that compute the same in both modes.
PLAIN_LAYERS = frozenset(f"torch.nn.{name}" for name in (
    "Linear", "Bilinear", "LazyLinear", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
    "ConvTranspose3d", "Embedding", "Identity",
))


#: ``torch.nn`` activations and reshapes, the same in both modes.
PLAIN_ACTIVATIONS = frozenset(f"torch.nn.{name}" for name in (
    "ReLU", "LeakyReLU", "ELU", "GELU", "SiLU", "Tanh", "Sigmoid", "Softmax", "LogSoftmax", "Flatten",
))


def plain_build(ctx, built: ast.Call) -> bool:
    """``nn.Linear(d, k)``, or an ``nn.Sequential`` of such layers and
    activations (``nn.Sequential(nn.Linear(d, h), nn.ReLU(), nn.Linear(h, k))``)."""
    qual = ctx.imports.resolve(built.func)
    if qual in PLAIN_LAYERS:
        return True
    return qual == "torch.nn.Sequential" and bool(built.args) and not built.keywords and all(
        isinstance(a, ast.Call) and (ctx.imports.resolve(a.func) in PLAIN_ACTIVATIONS or plain_build(ctx, a))
        for a in built.args
    )


def mode_free_models(ctx, calls: List[flow.ModelCall], handed: bool = False) -> bool:
    """Is every model of ``calls`` built (in its function, as
    ``self.<name>`` in its class, or, with ``handed``, for a parameter, by
    every caller: see ``flow.handed_builds``) from a project class whose code shows no
    layer depending on the mode (``Project.mode_free_class``), from
    arguments that bring no module in, or from ``torch.nn`` layers that
    behave the same in both modes (``plain_build``)?"""
    if not calls:
        return False
    local = flow.local_classes(ctx)
    for call in calls:
        built = _constructors(ctx, call, handed)
        if not built:
            annotated = annotated_class(call)
            if annotated is None or annotated not in local or not mode_free_local(ctx, local, local[annotated]):
                return False
            continue
        for node in built:
            if plain_build(ctx, node):
                continue  # ``nn.Sequential(nn.Linear(1, 10), nn.Linear(10, 1))``
            if any(brings_a_module(ctx, arg) for arg in [*node.args, *(kw.value for kw in node.keywords)]):
                return False
            written = dotted(node.func) or ""
            if written in local and mode_free_local(ctx, local, local[written]):
                continue
            if not ctx.mode_free_class(written) and not _mode_free_elsewhere(ctx, written):
                return False
    return True


class _OtherModule:
    """What judging a class of another module by its own code needs of that
    module: its imports (at its top, and in its ``if``/``try`` blocks) and
    the names of its top-level functions."""

    def __init__(self, tree: ast.Module) -> None:
        self.imports = ImportTable()
        todo: List[ast.stmt] = list(tree.body)
        while todo:
            stmt = todo.pop(0)
            if isinstance(stmt, ast.Import):
                self.imports.add_import(stmt)
            elif isinstance(stmt, ast.ImportFrom):
                self.imports.add_import_from(stmt)
            elif isinstance(stmt, (ast.If, ast.Try)):
                todo.extend(stmt.body)
                todo.extend(stmt.orelse)
                for handler in getattr(stmt, "handlers", ()):
                    todo.extend(handler.body)
        self.functions = frozenset(
            n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))
        self.classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}


def _mode_free_elsewhere(ctx, written: str) -> bool:
    """Is ``written`` a class of another module of the project that its own
    code shows the same in training and eval mode (``mode_free_local``, read
    in its module: ``TumorTypeHead``, all linear layers, beside a U-Net with
    normalisation layers in the same file)?"""
    found = ctx.class_code(written)
    if found is None:
        return False
    tree, node = found
    other = _OtherModule(tree)
    return mode_free_local(other, other.classes, node, functions=other.functions)


def annotated_class(call: flow.ModelCall) -> Optional[str]:
    """``EncoderRNN`` for a call of ``encoder`` in ``def evaluate(encoder:
    EncoderRNN, ...)``: the class a parameter of the calling function is
    annotated with, written as a plain name."""
    if call.function is None or "." in call.key or "[" in call.key:
        return None
    for arg in all_params(call.function.node.args):
        if arg.arg == call.key and isinstance(arg.annotation, ast.Name):
            return arg.annotation.id
    return None


def mode_free_local(
    ctx, local: Dict[str, ast.ClassDef], node: ast.ClassDef, depth: int = 0, functions: Optional[FrozenSet[str]] = None,
) -> bool:
    """Is ``node``, an ``nn.Module`` class of this module (or, with
    ``functions``, of the module ``ctx`` shows: see ``_OtherModule``), the
    same in training and eval mode, whatever the rest of the module holds?
    Its only base is ``nn.Module``; every layer it builds is a ``torch.nn``
    layer that behaves the same in both modes (a recurrent layer only
    without ``dropout``), or a class of the module that is so too; and it
    neither names dropout, batch or instance normalisation nor reads
    ``training`` nor overrides ``train``/``eval``."""
    if depth > 2 or len(node.bases) != 1 or ctx.imports.resolve(node.bases[0]) != "torch.nn.Module":
        return False
    if functions is None:
        functions = flow.module_functions(ctx)
    for item in _walk_skipping(node, _unused_layers(node)):
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name in ("train", "eval"):
            return False
        name = item.id if isinstance(item, ast.Name) else item.attr if isinstance(item, ast.Attribute) else None
        if name is not None and any(word in name.lower() for word in _MODE_WORDS):
            return False
        if isinstance(item, ast.Call):
            qual = ctx.imports.resolve(item.func) or ""
            if qual.startswith("torch.nn.") and qual[9:10].isupper():
                if qual in _RECURRENT_LAYERS:
                    dropout = next((kw.value for kw in item.keywords if kw.arg == "dropout"), None)
                    if len(item.args) > 5 or dropout is not None and not is_const(dropout, 0):
                        return False
                elif qual in _CONTAINERS:
                    if any(isinstance(arg, (ast.Name, ast.Starred, ast.Attribute)) for arg in item.args):
                        return False  # ``nn.ModuleList(blocks)``: layers made elsewhere
                elif qual not in PLAIN_LAYERS and qual not in PLAIN_ACTIVATIONS and qual not in _MODE_FREE_LAYERS:
                    return False
            elif qual.startswith("torch_geometric.nn."):
                # a graph convolution of PyG: the same in both modes unless given a dropout
                before = _PYG_MODE_FREE_LAYERS.get(qual.rpartition(".")[2], -1)
                dropout = next((kw.value for kw in item.keywords if kw.arg == "dropout"), None)
                if before < 0 or len(item.args) > before or dropout is not None and not is_const(dropout, 0):
                    return False
                slot = _PYG_NETWORK_LAYERS.get(qual.rpartition(".")[2])
                if slot is not None and not all(
                    isinstance(arg, ast.Call) or isinstance(arg, ast.Name) and arg.id in _names_bound(node)
                    for arg in [*item.args[slot:slot + 1], *(kw.value for kw in item.keywords if kw.arg == "nn")]
                ):
                    return False  # ``NNConv(2, 32, nn1)``: ``nn1`` built in the class, where it is read too
            elif isinstance(item.func, ast.Name) and item.func.id in local:
                if not mode_free_local(ctx, local, local[item.func.id], depth + 1, functions):
                    return False
            elif isinstance(item.func, ast.Name) and item.func.id not in _BUILTINS and not qual.startswith("torch.") \
                    and (ctx.imports.is_imported(item.func.id) or item.func.id in functions):
                return False  # ``self.body = build()``: a function of the module may build any layer
            elif isinstance(item.func, ast.Attribute) and _from_a_layer_source(ctx, item.func, qual):
                return False  # ``parts.Glimpse(size, hidden)``: another module's class may build any layer
    return True


def _unused_layers(node: ast.ClassDef) -> List[ast.stmt]:
    """The statements ``self.<name> = <call>`` of the class ``node`` whose
    attribute no code of the class reads (``self.dropout = nn.Dropout(p)``
    that ``forward`` never calls): a layer registered, never run.  None
    when the class may reach its layers another way (``self.children()``,
    ``getattr(self, name)``, ``self._modules``, ``__dict__``...)."""
    stored: Dict[str, List[ast.stmt]] = {}
    read: Set[str] = set()
    for item in ast.walk(node):
        if isinstance(item, ast.Attribute) and isinstance(item.value, ast.Name) and item.value.id == "self":
            if isinstance(item.ctx, ast.Load):
                if item.attr in _LAYER_WALKS:
                    return []
                read.add(item.attr)
        elif isinstance(item, ast.Name) and item.id in ("getattr", "vars", "setattr"):
            return []
        elif isinstance(item, ast.Assign) and isinstance(item.value, ast.Call) and len(item.targets) == 1:
            target = item.targets[0]
            if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self":
                stored.setdefault(target.attr, []).append(item)
    return [stmt for name, stmts in stored.items() if name not in read for stmt in stmts]


#: Attributes of a module that reach its layers without naming them.
_LAYER_WALKS = frozenset({
    "children", "named_children", "modules", "named_modules", "_modules", "__dict__", "apply", "get_submodule",
})


def _walk_skipping(node: ast.AST, skipped: List[ast.stmt]) -> Iterator[ast.AST]:
    """``ast.walk(node)``, leaving out the statements ``skipped`` and all they hold."""
    if not skipped:
        yield from ast.walk(node)
        return
    left = {id(stmt) for stmt in skipped}
    todo = collections.deque([node])
    while todo:
        item = todo.popleft()
        yield item
        todo.extend(child for child in ast.iter_child_nodes(item) if id(child) not in left)


#: Packages whose functions, called in a class, build no layer (beside the
#: standard library's): ``torch`` but its hub and scripted models.
_NO_LAYER_ROOTS = frozenset({"torch", "numpy", "einops"}) | frozenset(getattr(sys, "stdlib_module_names", ()))


def _from_a_layer_source(ctx, func: ast.Attribute, qual: str) -> bool:
    """Is ``func`` an attribute of an imported name (``parts.Glimpse``,
    ``torchvision.models.resnet18``, ``torch.hub.load``) that may build a
    layer: anything but the functions of ``_NO_LAYER_ROOTS``?"""
    root = chain_root(func)
    if root is None or not ctx.imports.is_imported(root):
        return False  # ``self.fc(x)``, ``x.view(n, -1)``: no import
    return qual.partition(".")[0] not in _NO_LAYER_ROOTS or qual.startswith(("torch.hub.", "torch.jit."))


_BUILTINS = frozenset(dir(builtins))


def _names_bound(node: ast.AST) -> FrozenSet[str]:
    """The plain names ``node``'s own code assigns (``nn1 = nn.Sequential(...)``)."""
    return frozenset(
        target.id for inner in ast.walk(node) if isinstance(inner, ast.Assign)
        for target in inner.targets if isinstance(target, ast.Name)
    )


#: Words of names that show a layer or code depending on the mode.
_MODE_WORDS = ("dropout", "batchnorm", "batch_norm", "instancenorm", "instance_norm", "training", "rrelu")
#: ``torch.nn`` recurrent layers: the same in both modes without ``dropout``.
_RECURRENT_LAYERS = frozenset({"torch.nn.GRU", "torch.nn.LSTM", "torch.nn.RNN"})
#: Other ``torch.nn`` layers the same in both modes.
_MODE_FREE_LAYERS = frozenset(f"torch.nn.{name}" for name in (
    "LayerNorm", "GroupNorm", "MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "Upsample", "PReLU", "SELU", "Softplus",
    "Parameter", "Module", "GRUCell", "LSTMCell", "RNNCell", "Unflatten", "EmbeddingBag", "Softmax2d",
))


#: ``torch.nn`` containers: the same in both modes when what they hold is,
#: and that is built where they are (their layers are walked too)
_CONTAINERS = frozenset({"torch.nn.Sequential", "torch.nn.ModuleList", "torch.nn.ModuleDict"})
#: Graph convolutions of PyTorch Geometric the same in both modes without a
#: ``dropout`` argument, by name: how many positional arguments may come
#: before it (its ``dropout`` parameter, default 0, comes next)
_PYG_MODE_FREE_LAYERS = {
    **dict.fromkeys(("GCNConv", "SAGEConv", "GraphConv", "RGCNConv", "FastRGCNConv", "ChebConv", "SGConv",
                     "TAGConv", "HGTConv", "GatedGraphConv", "ResGatedGraphConv"), 1 << 30),
    "GATConv": 5, "GATv2Conv": 5, "HANConv": 5, "TransformerConv": 5,
    **dict.fromkeys(("NNConv", "EdgeConv", "GINConv", "GINEConv"), 1 << 30),
}
#: PyG layers built around a network they are handed (``NNConv(2, 32, nn1)``),
#: by the position of that network: the same in both modes when that network
#: is, so it must be built in the class.
_PYG_NETWORK_LAYERS = {"NNConv": 2, "EdgeConv": 0, "GINConv": 0, "GINEConv": 0}


def _constructors(ctx, call: flow.ModelCall, handed: bool = False) -> List[ast.Call]:
    """The calls of a capitalised class that bound the model: ``model =
    Net(...)`` before the call in its function, or at the top of the module
    for a global the function does not bind (``flow.built_at_module_level``),
    or every ``self.model = Net(...)`` in its class, or, with ``handed``,
    what every caller hands a parameter (see ``flow.handed_builds``); empty when some
    binding is anything else."""
    head, _, rest = call.key.partition(".")
    if head != "self":
        simple = "." not in call.key and "[" not in call.key
        built = flow.built_before(ctx, call, call.key) if simple else None
        if built is None and simple:
            built = flow.built_at_module_level(ctx, call, call.key)
        if built is None and handed and simple:
            return flow.handed_builds(ctx, call)
        return [built] if built is not None else []
    klass = flow.local_classes(ctx).get(call.class_name or "")
    if klass is None or "." in rest or "[" in rest:
        return []
    found: List[ast.Call] = []
    for node in ast.walk(klass):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, (ast.AnnAssign, ast.AugAssign)) else []
        for target in targets:
            if isinstance(target, ast.Attribute) and target.attr == rest and dotted(target.value) == "self":
                value = unchained(node.value) if node.value is not None else None
                if not (isinstance(value, ast.Call) and last_name(value.func)[:1].isupper()):
                    return []
                found.append(value)
    return found


def brings_a_module(ctx, arg: ast.expr) -> bool:
    """May a constructor argument be a module (``Net(backbone)``,
    ``Net(resnet18())``)?  Literals, attributes of settings, sizes read off
    a tensor (``feat.shape[1]``) and arithmetic are not; a call or a bare
    name may be."""
    if isinstance(arg, ast.Subscript) and isinstance(arg.value, ast.Attribute) and arg.value.attr == "shape":
        return brings_a_module(ctx, arg.slice)
    for node in ast.walk(arg):
        if isinstance(node, ast.Call):
            return True
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and not isinstance(arg, ast.Attribute):
            return not setting_name(node.id) and not _literal_global(ctx, node.id)
    return False


def _literal_global(ctx, name: str) -> bool:
    """Is ``name`` bound by the module's top-level code, and only there and
    only to literals (``in_feats, hidden_feats = 128, 64``)?"""
    if ctx.tree is None or any(name in s.deps for s in ctx.flow.all_scopes if s.function is not None):
        return False
    found = False
    for stmt in ctx.tree.body:
        for target, value in _top_level_bindings(stmt):
            if isinstance(target, ast.Name) and target.id == name:
                if not isinstance(value, ast.Constant):
                    return False
                found = True
            elif any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(target)):
                return False
    return found


def _top_level_bindings(stmt: ast.stmt) -> List[Tuple[ast.expr, Optional[ast.expr]]]:
    """The targets a top-level statement binds, each with its value when
    known (a tuple unpacked from a tuple of the same length pairs them)."""
    if isinstance(stmt, ast.Assign):
        pairs: List[Tuple[ast.expr, Optional[ast.expr]]] = []
        for target in stmt.targets:
            if isinstance(target, ast.Tuple) and isinstance(stmt.value, ast.Tuple) \
                    and len(target.elts) == len(stmt.value.elts):
                pairs.extend(zip(target.elts, stmt.value.elts))
            else:
                pairs.append((target, stmt.value))
        return pairs
    if isinstance(stmt, (ast.AugAssign, ast.AnnAssign)):
        return [(stmt.target, None)]
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [(ast.Name(id=stmt.name, ctx=ast.Store()), None)]
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        return [(ast.Name(id=(a.asname or a.name).split(".", 1)[0], ctx=ast.Store()), None) for a in stmt.names]
    if isinstance(stmt, (ast.For, ast.With, ast.If, ast.Try, ast.While)):
        return [(n, None) for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)]
    return []


def setting_name(name: str) -> bool:
    """``n_classes``, ``hidden_size``, ``num_layers``, ``args``: a name of a
    number or of settings, not of a module."""
    lowered = name.lower()
    return lowered in ("args", "opt", "opts", "cfg", "config", "conf", "hparams", "params", "settings") or any(
        part in lowered for part in ("num", "size", "dim", "class", "len", "hidden", "channel", "depth", "width")
    )


def trains_mode_free_models(ctx, loop: flow.Loop) -> bool:
    """Does the training loop run its training steps in its own body, and
    is every model it calls there (``output = model(data)``) of a class
    that computes the same in both modes (see ``mode_free_models``)?  Then
    leaving them in eval mode changes nothing of the training."""
    if not any(loop.seq < s < loop.end_seq for s in loop.scope.training_steps):
        return False
    calls = [c for c in loop.model_calls if flow.is_model_call(ctx, c)]
    return mode_free_models(ctx, calls, handed=True)
