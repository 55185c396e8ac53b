"""GRD006 numpy-on-tensor-requiring-grad: the cases its examples do not show.

Each case is linted with GRD006 alone (exact line and column); the reported
ones are also run under real PyTorch to prove the RuntimeError, and the
opt-in fix (``.detach()`` before the conversion) is applied and run.
"""

from __future__ import annotations

import textwrap
import warnings
from typing import Dict, List, Tuple

import pytest

from flake8_gradmode.engine import check
from flake8_gradmode.fix import fix_source
from flake8_gradmode.registry import by_code
from tests.samples import BUFFERS_ONLY_ENCODER, with_a_parameter

RULE = by_code("GRD006")
MESSAGE_END = "on a tensor that requires grad raises RuntimeError; call `.detach()` first or run the forward under " \
    "`torch.no_grad()`"


def src(code: str) -> str:
    return textwrap.dedent(code).strip("\n") + "\n"


def found(code: str) -> List[Tuple[int, int]]:
    return [(v.line, v.col) for v in check(src(code), rules=[RULE])]


def run(code: str) -> Dict[str, object]:
    torch = pytest.importorskip("torch")
    namespace: Dict[str, object] = {"__name__": "__case__"}
    try:
        with warnings.catch_warnings():
            # numpy 2 asks ``Tensor.__array__`` for a ``copy`` keyword it lacks
            warnings.simplefilter("ignore", DeprecationWarning)
            exec(compile(src(code), "<case>", "exec"), namespace)
    finally:
        torch.set_grad_enabled(True)
    return namespace


# --- reported: (code, positions); every one of them raises under torch ---------------

REPORTED = {
    "training-function-without-callers": (
        """
        import torch


        def fit(model, batches, optimizer):
            for x, y in batches:
                optimizer.zero_grad()
                out = model(x)
                torch.nn.functional.mse_loss(out, y).backward()
                optimizer.step()
                print(out.cpu().numpy())


        runner = fit
        model = torch.nn.Linear(4, 1)
        runner(model, [(torch.randn(8, 4), torch.randn(8, 1))], torch.optim.SGD(model.parameters(), lr=0.1))
        """,
        [(10, 14)],
    ),
    "function-called-with-grad-at-top-level": (
        """
        import torch


        def predict(model, x):
            return model(x).numpy()


        print(predict(torch.nn.Linear(4, 2), torch.randn(3, 4)))
        """,
        [(5, 11)],
    ),
    "tuple-unpacking-of-the-output": (
        """
        import torch

        encoder = torch.nn.GRU(4, 3)
        output, hidden = encoder(torch.randn(5, 1, 4))
        last = hidden.squeeze(0).numpy()
        """,
        [(5, 7)],
    ),
    "rebound-name-keeps-the-graph": (
        """
        import torch

        device = torch.device("cpu")
        model = torch.nn.Linear(4, 2).to(device)
        out = model(torch.randn(3, 4))
        out = out.to(device) * 2.0
        values = out[:, 0].numpy()
        """,
        [(7, 9)],
    ),
    "numpy-imported-under-other-names": (
        """
        from numpy import asarray
        import numpy as onp
        import torch

        encoder = torch.nn.Linear(4, 2)
        encoder.eval()
        z = encoder(torch.randn(3, 4))
        a = asarray(z)
        b = onp.array(torch.sigmoid(z))
        """,
        [(8, 4), (9, 4)],
    ),
    "hugging-face-style-output": (
        """
        import torch


        class Out:
            def __init__(self, logits):
                self.logits = logits


        class Classifier(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.head = torch.nn.Linear(4, 2)

            def forward(self, x):
                return Out(self.head(x))


        model = Classifier()
        outputs = model(torch.randn(3, 4))
        probs = outputs.logits.softmax(-1).numpy()
        """,
        [(20, 8)],
    ),
    "set-grad-enabled-true": (
        """
        import torch


        def probe(net, x):
            with torch.set_grad_enabled(True):
                return net(x).float().numpy()


        with torch.no_grad():
            probe(torch.nn.Linear(4, 2), torch.randn(3, 4))
        """,
        [(6, 15)],
    ),
    "training-loop-at-top-level": (
        """
        import torch

        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        preds = []
        for step in range(2):
            x = torch.randn(8, 4)
            pred = model(x)
            loss = pred.pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            preds.append((pred - 1).numpy())
        """,
        [(13, 17)],
    ),
}


@pytest.mark.parametrize("name", sorted(REPORTED))
def test_reported_exactly(name: str) -> None:
    code, at = REPORTED[name]
    assert found(code) == at


@pytest.mark.parametrize("name", sorted(REPORTED))
def test_reported_code_raises(name: str) -> None:
    code, _ = REPORTED[name]
    with pytest.raises(RuntimeError, match="Can't call numpy\\(\\) on Tensor that requires grad"):
        run(code)


@pytest.mark.parametrize("name", sorted(REPORTED))
def test_opt_in_fix_detaches_and_runs(name: str) -> None:
    code, _ = REPORTED[name]
    assert "GRD006" not in {v.code for v in fix_source(src(code)).fixed}  # not without --unsafe-fixes
    result = fix_source(src(code), unsafe=True)
    assert "GRD006" in {v.code for v in result.fixed}
    assert ".detach()" in result.source
    assert found(result.source) == []
    assert fix_source(result.source, unsafe=True).source == result.source
    run(result.source)  # no RuntimeError any more


def test_message_names_both_remedies() -> None:
    (v,) = check(src(REPORTED["tuple-unpacking-of-the-output"][0]), rules=[RULE])
    assert v.message == f"`hidden.squeeze(0).numpy()` {MESSAGE_END}"


def test_fix_of_np_call_detaches_the_argument() -> None:
    code = """
    import numpy as np
    import torch

    net = torch.nn.Linear(4, 2)
    net.eval()
    scores = np.asarray(net(torch.randn(3, 4)))
    """
    assert found(code) == [(6, 9)]
    fixed = fix_source(src(code), unsafe=True).source
    assert "np.asarray(net(torch.randn(3, 4)).detach())" in fixed


# --- silent ----------------------------------------------------------------------------

SILENT = {
    "caller-decides": """
        import torch


        def embed(model, x):
            return model(x).cpu().numpy()
        """,
    "caller-disables-grad": """
        import torch


        def embed(model, x):
            return model(x).cpu().numpy()


        with torch.no_grad():
            embed(torch.nn.Linear(4, 2), torch.randn(3, 4))
        """,
    "no-grad-decorator": """
        import torch


        @torch.no_grad()
        def embed(model, x):
            return model(x).numpy()
        """,
    "conditional-training-step": """
        import torch


        def run_epoch(model, batches, optimizer, train):
            for x, y in batches:
                out = model(x)
                if train:
                    torch.nn.functional.mse_loss(out, y).backward()
                    optimizer.step()
                else:
                    print(out.numpy())
        """,
    "phase-dependent-grad": """
        import torch

        model = torch.nn.Linear(4, 1)
        for phase in ["train", "val"]:
            with torch.set_grad_enabled(phase == "train"):
                out = model(torch.randn(8, 4))
            if phase == "val":
                print(out.numpy())
        """,
    "computed-under-no-grad-used-after": """
        import torch

        model = torch.nn.Linear(4, 2)
        with torch.inference_mode():
            out = model(torch.randn(3, 4))
        print(out.numpy())
        """,
    "detached-data-item-tolist-argmax": """
        import numpy as np
        import torch

        model = torch.nn.Linear(4, 2)
        out = model(torch.randn(3, 4))
        a = out.detach().cpu().numpy()
        b = out.data.numpy()
        c = np.array(out.tolist())
        d = out.argmax(1).numpy()
        e = (out > 0).numpy()
        f = out.max(1)[1].numpy()
        g = out.long().numpy()
        h = out.to(torch.long).numpy()
        i = out.numpy(force=True)
        """,
    "rebound-after-detach": """
        import torch

        model = torch.nn.Linear(4, 2)
        out = model(torch.randn(3, 4))
        out = out.detach()
        print(out.numpy())
        """,
    "augmented-assignment-is-not-followed": """
        import torch

        model = torch.nn.Linear(4, 2)
        out = model(torch.randn(3, 4))
        out += 1
        print(out.detach().numpy())
        """,
    "loop-target-rebinds-the-name": """
        import torch

        model = torch.nn.Linear(4, 2)
        out = model(torch.randn(3, 4))
        for out in [torch.zeros(2)]:
            print(out.numpy())
        """,
    "np-call-on-a-model-known-only-by-name": """
        import numpy as np


        def model(x):
            return [v * 2 for v in x]


        print(np.asarray(model([1, 2])))
        """,
    "np-call-without-torch": """
        import numpy as np

        net = object()
        print(np.asarray(net(3)))
        """,
    "frozen-parameters": """
        import torch

        model = torch.nn.Linear(4, 2)
        model.requires_grad_(False)
        print(model(torch.randn(3, 4)).numpy())
        """,
    "frozen-parameters-by-assignment": """
        import torch

        model = torch.nn.Linear(4, 2)
        for p in model.parameters():
            p.requires_grad = False
        print(model(torch.randn(3, 4)).numpy())
        """,
    "other-framework": """
        import tensorflow as tf
        import torch

        model = tf.keras.Sequential([tf.keras.layers.Dense(2)])
        print(model(tf.ones((3, 4))).numpy())
        """,
    "loss-of-detached-inputs": """
        import torch

        model = torch.nn.Linear(4, 2)
        criterion = torch.nn.MSELoss()
        criterion.to("cpu")
        with torch.no_grad():
            out = model(torch.randn(3, 4))
        print(criterion(out, torch.zeros(3, 2)).numpy())
        """,
    "lambda-body": """
        import torch

        model = torch.nn.Linear(4, 2)
        to_array = lambda x: model(x).numpy()
        """,
    "not-a-model": """
        import torch

        x = torch.randn(3, 4, requires_grad=True)
        y = torch.randn(3, 4)
        print(torch.sigmoid(y).numpy(), y.cpu().numpy())
        """,
    "generation-methods-return-token-ids": """
        import torch


        class Decoder(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.linear = torch.nn.Linear(4, 4)

            def sample(self, x):
                return self.linear(x).max(1)[1]


        decoder = Decoder()
        model = Decoder()
        ids = decoder.sample(torch.randn(3, 4))
        print(ids[0].cpu().numpy(), model.sample(torch.randn(3, 4)).numpy())
        """,
    "framework-hook-decides": """
        import torch


        class Lit(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.net = torch.nn.Linear(4, 2)

            def validation_step(self, batch, batch_idx):
                return self.net(batch).numpy()
        """,
    "integer-items-of-an-output-dict": """
        import torch


        class Detector(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.head = torch.nn.Linear(4, 3)

            def forward(self, x):
                scores = self.head(x)
                return [{"scores": scores.max(1).values, "labels": scores.argmax(1)}]


        def detect(model, x):
            pred = model(x)
            return [str(i) for i in list(pred[0]["labels"].cpu().numpy())]


        print(detect(Detector(), torch.randn(5, 4)))
        """,
    "integer-items-keyed-by-a-named-constant": """
        import numpy as np
        import torch


        class Keys:
            IDS = "ids"
            LOGITS = "logits"


        class Captioner(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.head = torch.nn.Linear(4, 3)

            def forward(self, batch):
                return {Keys.LOGITS: self.head(batch["feats"]), Keys.IDS: batch["ids"]}


        def rewards(model, batch):
            outputs = model(batch)
            return np.repeat(outputs[Keys.IDS].numpy(), 2).tolist()


        print(rewards(Captioner(), {"feats": torch.randn(2, 4), "ids": torch.tensor([3, 7])}))
        """,
    "one-of-several-outputs-of-a-project-model": """
        import torch


        class Scorer(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.head = torch.nn.Linear(4, 3)

            def forward(self, x, y):
                logits = self.head(x)
                loss = torch.nn.functional.cross_entropy(logits, y)
                return logits, loss, logits.data.argmax(1).eq(y).float()


        def fit(model, batches, optimizer):
            for x, y in batches:
                _, loss, acc = model(x, y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                print(acc.cpu().numpy().mean())


        net = Scorer()
        fit(net, [(torch.randn(8, 4), torch.randint(0, 3, (8,)))], torch.optim.SGD(net.parameters(), lr=0.1))
        """,
}


# A LightningModule's ``freeze()`` switches every parameter's requires_grad
# off (and the model to eval mode): its outputs hold no graph.
LIGHTNING_FROZEN = """
import torch

from classifier import Classifier

model = Classifier(num_classes=6)
model.eval()
model.freeze()
preds = []
for x in torch.load("batches.pt"):
    preds.append(torch.sigmoid(model(x)).cpu().numpy())
"""


def test_a_model_frozen_by_lightnings_freeze_is_not_reported() -> None:
    assert found(LIGHTNING_FROZEN) == []
    assert found(LIGHTNING_FROZEN.replace("model.freeze()\n", "")) == [(9, 17)]
    # ``freeze(layers)``: some parts only, as a project's own method may
    assert found(LIGHTNING_FROZEN.replace("model.freeze()", "model.freeze(model.backbone)")) == [(10, 17)]


@pytest.mark.parametrize("name", sorted(SILENT))
def test_silent(name: str) -> None:
    assert found(SILENT[name]) == []


RUNNABLE_SILENT = (
    "caller-disables-grad",
    "computed-under-no-grad-used-after",
    "detached-data-item-tolist-argmax",
    "rebound-after-detach",
    "frozen-parameters",
    "frozen-parameters-by-assignment",
    "loss-of-detached-inputs",
    "phase-dependent-grad",
    "generation-methods-return-token-ids",
    "integer-items-of-an-output-dict",
    "one-of-several-outputs-of-a-project-model",
)


@pytest.mark.parametrize("name", RUNNABLE_SILENT)
def test_silent_code_runs(name: str) -> None:
    run(SILENT[name])


def test_triggers_cover_every_form() -> None:
    for word in ("numpy", "asarray", "array"):
        assert word in RULE.triggers


GRAD_SWITCHED_OFF_BY_A_CONSTRUCTOR = """
import torch
import torch.nn.functional as F


class Inferer:
    def __init__(self, opt):
        self.opt = opt
        self.model = opt.model_class(opt).to(opt.device)
        self.model.eval()
        torch.autograd.set_grad_enabled(False)

    def evaluate(self, text):
        outputs = self.model([torch.tensor([text], device=self.opt.device)])
        return F.softmax(outputs, dim=-1).cpu().numpy()


if __name__ == "__main__":
    inferer = Inferer(None)
    print(inferer.evaluate("x").argmax(axis=-1))
"""


def test_grad_switched_off_for_the_process_by_a_constructor_is_not_reported() -> None:
    def in_script(code: str) -> List[Tuple[int, int]]:
        return [(v.line, v.col) for v in check(src(code), rules=[RULE], filename="infer.py")]

    assert in_script(GRAD_SWITCHED_OFF_BY_A_CONSTRUCTOR) == []
    kept = GRAD_SWITCHED_OFF_BY_A_CONSTRUCTOR.replace("torch.autograd.set_grad_enabled(False)", "print(opt)")
    assert in_script(kept) == [(14, 15)]


# --- a model whose forward may return a value without its graph ----------------

RANKER = """
import numpy as np
import torch


class Ranker(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.score = torch.nn.Linear(4, 3)

    def forward(self, x, test=False):
        scores = self.score(x)
        if test:
            return scores.argsort(dim=1, descending=True)
        return scores


def fit(batches):
    model = Ranker()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for x in batches:
        optimizer.zero_grad()
        model(x).sum().backward()
        optimizer.step()
    ranks = model(batches[0], test=True)
    return np.array(ranks.cpu())


RANKS = fit([torch.randn(2, 4)])
"""


def test_a_model_whose_forward_returns_indices_on_some_path_is_not_reported() -> None:
    assert found(RANKER) == []
    assert run(RANKER)["RANKS"].dtype.kind == "i"  # argsort's indices: nothing requires grad
    scores = RANKER.replace("scores.argsort(dim=1, descending=True)", "scores.softmax(dim=1)")
    assert found(scores) == [(25, 11)]
    with pytest.raises(RuntimeError, match="requires grad"):
        run(scores)


DETECTOR = """
import numpy as np
import torch


class Detector(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.score = torch.nn.Linear(4, 1)

    def forward(self, x):
        maps = self.score(x)
        peaks = maps.detach().numpy() > 0
        boxes = torch.as_tensor(np.argwhere(peaks), dtype=maps.dtype)
        mapping = boxes[:, 0]
        out = dict(maps=maps, boxes=boxes, mapping=mapping)
        return out


def detect(model, images):
    out = model(images)
    return out["boxes"].cpu().numpy(), out["mapping"].cpu().numpy()


BOXES, MAPPING = detect(Detector(), torch.randn(5, 4))
"""


def test_a_model_whose_forward_returns_an_item_made_from_data_is_not_reported() -> None:
    assert found(DETECTOR) == []
    assert run(DETECTOR)["BOXES"].dtype.kind == "f"  # made by ``torch.as_tensor``: no graph to refuse
    kept = DETECTOR.replace("torch.as_tensor(np.argwhere(peaks), dtype=maps.dtype)", "maps * 2")
    assert found(kept) == [(21, 11), (21, 39)]
    with pytest.raises(RuntimeError, match="requires grad"):
        run(kept)


def test_a_module_of_buffers_only_gives_outputs_without_a_graph() -> None:
    assert found(BUFFERS_ONLY_ENCODER) == []
    assert run(BUFFERS_ONLY_ENCODER)["PARTS"]["train"].shape == (3, 10)  # no parameter: nothing requires grad
    scaled = with_a_parameter(BUFFERS_ONLY_ENCODER)
    assert found(scaled) == [(29, 21)]
    with pytest.raises(RuntimeError, match="requires grad"):
        run(scaled)


DETACHING_MODEL = """
import torch


class Encoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 2)

    def forward(self, x):
        outputs = self.linear(x)
        if not torch.is_tensor(x):
            outputs = outputs.data
        return outputs
"""

DETACHING_MAIN = """
import torch
from model import Encoder


def fit(batches):
    model = Encoder()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for x in batches:
        optimizer.zero_grad()
        model(x).sum().backward()
        optimizer.step()
    return model(batches[0]).cpu().numpy()


def embed(model, x):
    return model(x).cpu().numpy()


if __name__ == "__main__":
    fit([torch.randn(2, 4)])
    embed(Encoder(), torch.randn(2, 4))
"""


@pytest.mark.parametrize("detaches", [True, False])
def test_a_project_model_whose_forward_may_detach_is_not_reported(tmp_path, detaches) -> None:
    # the built model's class is read in its module; an unknown model may be any project model
    (tmp_path / "setup.py").write_text("")
    model = DETACHING_MODEL if detaches else DETACHING_MODEL.replace("outputs.data", "outputs * 2")
    (tmp_path / "model.py").write_text(src(model))
    (tmp_path / "main.py").write_text(src(DETACHING_MAIN))
    found_here = [(v.line, v.col) for v in check(
        src(DETACHING_MAIN), rules=[RULE], filename=str(tmp_path / "main.py"))]
    assert found_here == ([] if detaches else [(12, 11), (16, 11)])


# --- another framework's models, named by a library's prefix --------------------

COMPARE_CONVERTED = """
import numpy as np
import torch
from transformers import BertConfig, BertModel, TFBertModel, load_pytorch_checkpoint_in_tf2_model

MODEL_CLASSES = {"bert": (BertConfig, TFBertModel, BertModel)}


def compare(model_type, config_file, path):
    config_class, model_class, pt_model_class = MODEL_CLASSES[model_type]
    tf_model = model_class(config_class.from_json_file(config_file))
    tf_model = load_pytorch_checkpoint_in_tf2_model(tf_model, path)
    tfo = tf_model(tf_model.dummy_inputs, training=False)
    pt_model = pt_model_class.from_pretrained(path)
    with torch.no_grad():
        pto = pt_model(**pt_model.dummy_inputs)
    return np.abs(pto[0].numpy() - tfo[0].numpy()).max()


if __name__ == "__main__":
    print(compare("bert", "config.json", "model.bin"))
"""


@pytest.mark.parametrize("imported, expected", [
    ("TFBertModel", []),  # the module works with TensorFlow's models too: unknown, silent
    ("FlaxBertModel as TFBertModel", []),
    ("BertForMaskedLM as TFBertModel", [(16, 35)]),  # no class of another framework imported
])
def test_a_module_importing_another_frameworks_model_classes_is_not_reported(imported, expected) -> None:
    code = COMPARE_CONVERTED.replace(" TFBertModel,", f" {imported},", 1)
    assert src(code).splitlines()[15].strip().startswith("return np.abs(pto[0].numpy() - tfo[0].numpy())")
    assert found(code) == expected


TAGGER = """
import torch as t


class Tagger(t.nn.Module):
    def __init__(self):
        super().__init__()
        self.emit = t.nn.Linear(4, 3)

    def forward(self, x):
        scores = self.emit(x)
        tags = scores.argmax(-1).tolist()
        return t.LongTensor(tags)


def tag(batches):
    model = Tagger()
    optimizer = t.optim.SGD(model.parameters(), lr=0.1)
    for x in batches:
        optimizer.zero_grad()
        model.emit(x).sum().backward()
        optimizer.step()
    found = model(batches[0])
    return found.numpy()


TAGS = tag([t.randn(2, 4)])
"""


def test_a_model_whose_forward_returns_a_new_integer_tensor_is_not_reported() -> None:
    assert found(TAGGER) == []
    assert run(TAGGER)["TAGS"].dtype.kind == "i"  # ``t.LongTensor(list)``: integers never require grad
    kept = TAGGER.replace("return t.LongTensor(tags)", "return scores")
    assert found(kept) == [(23, 11)]
    with pytest.raises(RuntimeError, match="requires grad"):
        run(kept)


def test_an_item_beside_a_detached_one_of_the_same_output_is_told_apart():
    example = next(v.code for v in RULE.VALID if v.title.startswith("One output item detached"))
    assert found(example) == []
    # nothing detached around: both items are reported
    undetached = example.replace('outputs["score"].detach().cpu()', 'outputs["score"].cpu()')
    assert undetached != example and found(undetached) == [(22, 18), (23, 17)]
    # an item of another output detached tells nothing of this one
    other = example.replace('outputs["score"].detach().cpu()', 'labels["score"].detach().cpu()')
    assert other != example and found(other) == [(23, 17)]
