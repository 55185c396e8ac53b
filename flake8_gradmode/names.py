"""Names and words: how a name says "model", "evaluation" or "test code".

The bottom floor of the heuristics: plain functions of strings (and of the
names an expression uses), shared by the facts, the flow decisions and the
rules.
"""

from __future__ import annotations

import ast
import functools
import re
from typing import FrozenSet, List, Tuple

# --- names ------------------------------------------------------------------

#: Other tensor frameworks: a module that imports one (and not torch) is
#: not PyTorch code; one that imports both may hold their tensors too
#: (``tf_tensor.numpy()``).
OTHER_FRAMEWORKS = frozenset(
    {"tensorflow", "keras", "tf_keras", "jax", "flax", "haiku", "mxnet", "paddle", "mindspore", "oneflow",
     "jittor", "chainer", "theano", "cupy", "caffe", "cntk", "dynet", "lasagne", "mlx", "tinygrad", "thinc"}
)

_TOKEN = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")


def tokens(name: str) -> List[str]:
    """``valLoader`` / ``val_loader`` / ``VAL_LOADER`` -> ``["val", "loader"]``."""
    return [t.lower() for t in _TOKEN.findall(name)]


def word_chars(text: str) -> bool:
    """Is every character of ``text`` one that ``\\w`` matches in a regular
    expression (a letter, digit or underscore, in Unicode)?  True for ``""``."""
    text = text.replace("_", "")
    return not text or text.isalnum()


#: Names of objects that hold settings (``args.test``, ``cfg.volatile``):
#: their attributes are values, not the module's functions or methods.
CONFIG_NAMES = frozenset(
    {"args", "arg", "opt", "opts", "options", "cfg", "config", "conf", "flags", "hparams", "hp", "settings"}
)

#: Parts of torchvision that hold no model: data, transforms, image files.
TORCHVISION_DATA = frozenset({"datasets", "transforms", "utils", "io"})


#: Words in an iterable's name that say it holds evaluation data.
EVAL_DATA_WORDS: FrozenSet[str] = frozenset(
    {"val", "valid", "validation", "test", "testing", "eval", "evaluation", "dev"}
)
#: Words in a function's name that say it evaluates.
EVAL_FUNCTION_WORDS: FrozenSet[str] = frozenset(
    {
        "eval",
        "evaluate",
        "evaluation",
        "validate",
        "validation",
        "valid",
        "val",
        "test",
        "predict",
        "prediction",
        "infer",
        "inference",
        "generate",
        "generation",
    }
)
#: Words in a function's name that say it serves a trained model.
INFERENCE_FUNCTION_WORDS: FrozenSet[str] = frozenset(
    {
        "predict",
        "prediction",
        "infer",
        "inference",
        "embed",
        "embedding",
        "encode",
        "extract",
        "generate",
        "generation",
        "sample",
        "serve",
        "detect",
    }
)
#: Default names of models (last part of ``self.model``, ``net``, ...).
MODEL_WORDS: FrozenSet[str] = frozenset(
    {
        "model",
        "net",
        "network",
        "encoder",
        "decoder",
        "generator",
        "discriminator",
        "classifier",
        "backbone",
        "policy",
        "actor",
        "critic",
        "teacher",
        "student",
        "autoencoder",
    }
)
#: Model words that also name other things; trusted only as ``x`` or ``self.x``.
_AMBIGUOUS_MODEL_WORDS = frozenset({"generator", "policy", "actor", "critic", "classifier", "teacher", "student"})
#: Framework hooks that already run with grad disabled and in eval mode.
FRAMEWORK_EVAL_HOOKS: FrozenSet[str] = frozenset(
    {
        "validation_step",
        "test_step",
        "predict_step",
        "validation_step_end",
        "test_step_end",
        "validation_epoch_end",
        "test_epoch_end",
        "on_validation_epoch_start",
        "on_validation_epoch_end",
        "on_test_epoch_start",
        "on_test_epoch_end",
        "on_predict_epoch_start",
        "on_predict_epoch_end",
        "on_validation_batch_start",
        "on_validation_batch_end",
        "on_test_batch_start",
        "on_test_batch_end",
        "on_predict_batch_start",
        "on_predict_batch_end",
        "on_validation_start",
        "on_validation_end",
        "on_test_start",
        "on_test_end",
        "prediction_step",
    }
)
#: Callees that take a function and run it as evaluation machinery: names
#: ending so (``Engine``, ``create_supervised_evaluator``).
FRAMEWORK_RUNNERS = ("Engine", "Evaluator", "evaluator")


#: Words that make a name read as an action, not a thing: ``load_model``.
_VERBS = frozenset(
    {"get", "load", "build", "create", "make", "init", "from", "to", "extract", "compute", "run", "save", "export",
     "eval", "evaluate", "train", "test", "set", "update", "prepare", "wrap", "setup", "freeze", "copy", "convert",
     "select", "choose", "pick", "find", "register", "reset", "add", "remove", "sync", "check", "clone", "validate",
     "fit", "print", "log", "count", "summarize", "describe", "profile", "benchmark", "tune", "finetune", "unwrap",
     "restore", "reload", "rebuild", "construct", "instantiate", "fetch", "download", "retrieve"}
)


#: Words after ``net`` that name what a name holds about a network, not
#: the network itself (``net_state_dict()``, ``net_params``, ``net_cfg``).
_VALUE_NOUNS = frozenset(
    {"state", "dict", "params", "parameters", "weights", "grads", "cfg", "config", "opts", "options", "args",
     "kwargs", "name", "names", "path", "file", "dir", "ckpt", "checkpoint", "info", "type", "size", "output",
     "outputs", "loss"}
)


@functools.lru_cache(maxsize=4096)  # asked once per call of the same name
def is_model_name(name: str, extra: Tuple[str, ...] = ()) -> bool:
    """``model``, ``self.net``, ``netG``, ``resnet``, ``text_encoder``..."""
    owner, _, last = name.rpartition(".")
    if last in extra:
        return True
    lower = last.lower()
    if lower in _AMBIGUOUS_MODEL_WORDS and owner not in ("", "self", "cls"):
        return False  # writer.generator(...), env.policy(...): not necessarily models
    if lower in MODEL_WORDS:
        return True
    parts = tokens(last)
    if any(p in _VERBS for p in parts):
        return False
    if parts and parts[-1] in MODEL_WORDS:
        return True
    if re.match(r"net[A-Z0-9_]", last):  # netG, netD, net_g; not net_state_dict, net_params
        return _VALUE_NOUNS.isdisjoint(parts[1:])
    return lower.endswith(("model", "net")) and len(lower) > 3


def says_eval_data(text_tokens: List[str], extra: Tuple[str, ...] = ()) -> bool:
    words = EVAL_DATA_WORDS.union(extra)
    return any(t in words for t in text_tokens) and "train" not in text_tokens


def says_eval_function(name: str, extra: Tuple[str, ...] = ()) -> bool:
    words = EVAL_FUNCTION_WORDS.union(extra)
    return any(t in words for t in tokens(name))


def says_inference_function(name: str) -> bool:
    return any(t in INFERENCE_FUNCTION_WORDS for t in tokens(name))


#: Libraries that research code often carries a whole copy of (a directory
#: of that name inside the project, below its root), named as they are
#: imported: the copy's code runs only as far as the project's own code
#: reaches it (see ``flow.never_runs``).
BUNDLED_LIBRARIES = frozenset({
    "d2l", "transformers", "pytorch_transformers", "pytorch_pretrained_bert", "MinkowskiEngine", "spodernet",
    "onmt", "fairseq", "allennlp", "timm", "torchvision", "detectron2", "maskrcnn_benchmark", "mmcv", "mmdet",
    "apex", "torchtext",
})

#: Modules whose import makes a file a unit test's (with its name, see ``is_test_file``).
TEST_FRAMEWORKS: FrozenSet[str] = frozenset({"pytest", "unittest", "nose", "hypothesis"})


def is_test_file(filename: str, uses_test_framework: bool = True) -> bool:
    """Test code: anything under a ``tests``/``testing`` directory,
    ``conftest.py``, and ``test_*.py``/``*_test.py`` or files under ``test/``
    that use a test framework (evaluation scripts are often called
    ``test.py`` or ``test_net.py``)."""
    parts = filename.replace("\\", "/").split("/")
    base = parts[-1]
    if base == "conftest.py" or any(p in ("tests", "testing") for p in parts[:-1]):
        return True
    named = base.startswith("test_") or base.endswith("_test.py") or "test" in parts[:-1]
    return named and uses_test_framework


def names_in(expr: ast.AST, split: bool = True) -> List[str]:
    """Identifier and string-literal tokens of an expression (``loaders["val"]``);
    with ``split=False``, the plain identifiers it uses."""
    out: List[str] = []
    stack = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Name):
            out.extend(tokens(node.id) if split else (node.id,))
        elif isinstance(node, ast.Attribute):
            out.extend(tokens(node.attr) if split else (node.attr,))
            stack.append(node.value)
        elif isinstance(node, ast.Constant):
            if split and isinstance(node.value, str) and len(node.value) < 40:
                out.extend(tokens(node.value))
        elif isinstance(node, ast.keyword):
            if node.arg is not None:
                out.extend(tokens(node.arg) if split else (node.arg,))
            stack.append(node.value)
        elif isinstance(node, ast.Lambda):
            stack.append(node.body)  # its parameters are names of another scope
        elif isinstance(node, (ast.comprehension, ast.JoinedStr)):
            continue
        else:
            stack.extend(ast.iter_child_nodes(node))
    return out
