"""GRD101/GRD102 on the shapes real evaluation code takes within one file:
model calls one call away, more forms of a model call, intent shown by what
the code does, and the places where the rules must stay silent."""

import textwrap

import pytest

from flake8_gradmode.engine import check
from flake8_gradmode.registry import by_code
from flake8_gradmode.rules.grd102_eval_loop_without_eval_mode import EvalLoopWithoutEvalMode
from flake8_gradmode.settings import Settings
from tests.samples import BUFFERS_ONLY_ENCODER, changed, optional_head_module, with_a_parameter

#: Each case is a module alone: not part of the project the tests run in.
ALONE = Settings(cross_module=False)

CODES = ("GRD101", "GRD102")


def found(source):
    source = textwrap.dedent(source)
    return sorted((v.code, v.line, v.col) for v in check(source, ALONE, filename="script.py") if v.code in CODES)


# --- recall: model calls one call away ----------------------------------------

HELPER_SHARED_BY_TRAINING_AND_EVALUATION = """
import torch


def forward_pass(model, batch):
    return model(batch)


def train(model, loader, optimizer):
    model.train()
    for x in loader:
        loss = forward_pass(model, x).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def evaluate(model, loader):
    model.eval()
    outs = []
    for x in loader:
        outs.append(forward_pass(model, x))
    return outs


def evaluate_quietly(model, loader):
    model.eval()
    outs = []
    with torch.no_grad():
        for x in loader:
            outs.append(forward_pass(model, x))
    return outs
"""

METHOD_ONE_CALL_AWAY = """
class Trainer:
    def __init__(self, model, val_loader):
        self.model = model
        self.val_loader = val_loader

    def _forward_pass(self, batch):
        return self.model(batch)

    def validate(self):
        self.model.eval()
        outs = []
        for batch in self.val_loader:
            outs.append(self._forward_pass(batch))
        return outs
"""

SIBLING_CLOSURES_ANY_ORDER = """
import torch
import torch.nn as nn


def main():
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
    test_loader = [torch.randn(8, 4)]

    def evaluate():
        scores = []
        for x in test_loader:
            scores.append(predict(x))
        return scores

    def predict(x):
        return model(x).softmax(-1)

    print(evaluate())


main()
"""

SIBLING_CLOSURE_CALLED_UNDER_NO_GRAD = """
import torch
import torch.nn as nn


def main():
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
    test_loader = [torch.randn(8, 4)]

    def evaluate():
        model.eval()
        return [model(x) for x in test_loader if x is not None] + [model(x) for x in test_loader]

    def evaluate_loop():
        model.eval()
        scores = []
        for x in test_loader:
            scores.append(model(x))
        return scores

    @torch.no_grad()
    def report():
        return evaluate(), evaluate_loop()

    print(report())


main()
"""

# --- recall: more forms of a model call ----------------------------------------

CONTAINERS_WRAPPERS_AND_SUBMODULES = """
import torch.nn as nn


class GAN:
    def __init__(self):
        self.models = {"generator": nn.Linear(4, 4), "critic": nn.Linear(4, 1)}

    def validate(self, val_loader):
        outs = []
        for z in val_loader:
            outs.append(self.models["generator"](z))
        return outs


def evaluate(models, loader, k):
    outs = []
    for x in loader:
        outs.append(models[k](x))
    return outs


def test(model, test_loader):
    results = []
    for x in test_loader:
        results.append(model.module(x))
    return results


class Ensemble:
    def __init__(self):
        self.heads = nn.ModuleList([nn.Linear(4, 2), nn.Linear(4, 2)])

    def predict(self, loader):
        outs = []
        for x in loader:
            for head, scale in zip(self.heads, [1, 2]):
                outs.append(head(x) * scale)
        return outs
"""

GENERATE_DEFINED_HERE_WITHOUT_NO_GRAD = """
import torch
import torch.nn as nn


class LM(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 4)

    def generate(self, x, steps):
        for _ in range(steps):
            x = self.proj(x)
        return x


class SafeLM(nn.Module):
    @torch.no_grad()
    def sample(self, x):
        return x


def evaluate(model, prompts):
    model.eval()
    outs = []
    for p in prompts:
        outs.append(model.generate(p, 3))
    return outs


def evaluate_safe(model, prompts):
    model.eval()
    outs = []
    for p in prompts:
        outs.append(model.sample(p))
    return outs
"""

GENERATE_OF_A_LIBRARY_MODEL = """
def evaluate(model, tokenizer, prompts):
    model.eval()
    outs = []
    for p in prompts:
        outs.append(tokenizer.decode(model.generate(p)[0]))
    return outs
"""

# --- recall: intent from evidence -------------------------------------------------

OUTPUTS_STRIPPED_OR_DISCARDED = """
import numpy as np


def extract_features(model, loader):
    feats = []
    for x in loader:
        feats.append(model(x).detach().cpu().numpy())
    return np.concatenate(feats)


def collect(model, loader):
    preds = []
    for x in loader:
        out = model(x)
        preds.extend(out.argmax(1).tolist())
    return preds


def hooked(model, loader):
    acts = []
    model.fc.register_forward_hook(lambda m, i, o: acts.append(o))
    for x in loader:
        model(x)
    return acts


def rollout(policy, states):
    outs = []
    for s in states:
        outs.append(policy(s))
    return outs


def calibrate(observer, weights):
    for w in weights:
        observer(w)
"""

PREDICTOR_CLASS = """
class Predictor:
    def __init__(self, model):
        self.model = model
        self.model.eval()

    def __call__(self, img):
        return self.model(img)

    def run(self, images):
        results = []
        for img in images:
            results.append(self.model(img))
        return results


class Distiller:
    def __init__(self, teacher, student, optimizer):
        self.teacher = teacher
        self.teacher.eval()
        self.student = student
        self.optimizer = optimizer

    def step(self, x):
        loss = (self.student(x) - self.teacher(x)).pow(2).mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()

    def compare(self, xs):
        return [self.teacher(x) for x in xs]
"""

DECODING_LOOP = """
import torch


def greedy_decode(model, src, max_len):
    ys = src[:, :1]
    for _ in range(max_len):
        out = model(src, ys)
        ys = torch.cat([ys, out[:, -1:].argmax(-1)], dim=1)
    return ys
"""

FORWARD_ONLY_SAVED_IN_A_TRAINING_LOOP = """
import torch
from torchvision.utils import save_image


def train(generator, discriminator, loader, optimizer, fixed_z):
    for epoch in range(3):
        for i, x in enumerate(loader):
            fake = generator(torch.randn(8, 4))
            loss = discriminator(fake).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            save_image(fake.data[:25], "train.png")
            if i % 100 == 0:
                samples = generator(fixed_z)
                save_image(samples.data[:25], "samples.png")
"""

# The forward's output is saved in the loop, and returned after it: not only
# shown, so no finding (the loop's own code does not hold every read).
FORWARD_SAVED_IN_THE_LOOP_AND_RETURNED_AFTER_IT = """
import torch
from torchvision.utils import save_image


def train(generator, discriminator, loader, optimizer, fixed_z):
    for x in loader:
        loss = discriminator(generator(torch.randn(8, 4))).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        samples = generator(fixed_z)
        save_image(samples.data[:25], "samples.png")
    return samples
"""

# A model built from a configuration and then fitted: a scikit-learn or
# XGBoost estimator, not a forward pass.
ESTIMATOR_BUILT_AND_FITTED_PER_FOLD = """
import torch
from sklearn.model_selection import KFold


def predict_folds(x, y, model_config):
    scores = []
    for train_idx, test_idx in KFold(5).split(x):
        model = model_config.model(**model_config.params)
        model.fit(x[train_idx], y[train_idx])
        scores.append(model.score(x[test_idx], y[test_idx]))
    return scores
"""

# --- recall: GRD102 and narrower exemptions --------------------------------------

TEST_WITH_NO_GRAD_BUT_NO_EVAL = """
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 8)
        self.drop = nn.Dropout(0.5)
        self.bn = nn.BatchNorm1d(8)

    def forward(self, x):
        return self.bn(self.drop(self.fc(x)))


def test(model, test_loader):
    correct = 0
    with torch.no_grad():
        for x, y in test_loader:
            correct += (model(x).argmax(1) == y).sum().item()
    return correct


def evaluate(model, loader):
    model.eval()
    with torch.no_grad():
        return [model(x) for x in loader]
"""

TEST_WITH_NO_GRAD_WITHOUT_MODE_LAYERS = """
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x)


def test(model, test_loader):
    with torch.no_grad():
        for x, y in test_loader:
            model(x)
"""

PHASE_LOOPS = """
import torch
import torch.nn.functional as F


def fit(model, loaders, optimizer):
    for phase in ["train", "val"]:
        model.train(phase == "train")
        for x, y in loaders[phase]:
            loss = F.cross_entropy(model(x), y)
            if phase == "train":
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()


def fit_with_grad_by_phase(model, loaders, optimizer):
    for phase in ["train", "val"]:
        if phase == "train":
            model.train()
        else:
            model.eval()
        for x, y in loaders[phase]:
            with torch.set_grad_enabled(phase == "train"):
                loss = F.cross_entropy(model(x), y)
            if phase == "train":
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()


def fit_if_else(model, loaders, optimizer):
    for phase in ["train", "val"]:
        if phase == "train":
            model.train()
        else:
            model.eval()
        for x, y in loaders[phase]:
            loss = F.cross_entropy(model(x), y)
            if phase == "train":
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
"""

STEP_NAMED_LIKE_TRAINING_JUDGED_BY_BODY = """
class Runner:
    def __init__(self, model, optimizer, val_loader):
        self.model = model
        self.optimizer = optimizer
        self.val_loader = val_loader

    def training_step(self, batch):
        return self.model(batch)

    def validate(self):
        outs = []
        for batch in self.val_loader:
            outs.append(self.training_step(batch))
        return outs


class RealTrainer:
    def __init__(self, model, optimizer, val_loader):
        self.model = model
        self.optimizer = optimizer
        self.val_loader = val_loader

    def train_step(self, batch):
        loss = self.model(batch).mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()

    def validate(self):
        for batch in self.val_loader:
            self.train_step(batch)
"""

# --- precision ---------------------------------------------------------------------

LOOP_IN_A_MODULE_METHOD = """
import torch.nn as nn


class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.cell = nn.GRUCell(4, 4)
        self.drop = nn.Dropout(0.1)

    def inference(self, h, steps):
        self.eval()
        outs = []
        for _ in range(steps):
            h = self.cell(self.drop(h), h)
            outs.append(h)
        return outs


class Base(nn.Module):
    pass


class Tagger(Base):
    def evaluate(self, val_loader):
        outs = []
        for x in val_loader:
            outs.append(self.forward(x))
        return outs
"""

ENABLE_GRAD_INSIDE_A_NO_GRAD_FUNCTION = """
import torch


@torch.no_grad()
def evaluate(model, val_loader):
    model.eval()
    hits = 0
    for x, y in val_loader:
        with torch.enable_grad():
            x = x.clone().requires_grad_()
            saliency = model(x).max()
        hits += (model(x).argmax(1) == y).sum().item()
    return hits
"""

FRAMEWORK_HOOKS = """
import pytorch_lightning as pl


class LitModel(pl.LightningModule):
    def validation_step(self, batch, batch_idx):
        for chunk in batch.split(2):
            self.helper(chunk)

    def helper(self, x):
        return self.model(x)


class Task(LitModel):
    def test_step(self, batch, batch_idx):
        outs = []
        for x in batch:
            outs.append(self.model(x))
        return outs


class Plain:
    def __init__(self, model):
        self.model = model

    def validation_step(self, batch):
        outs = []
        for x in batch:
            outs.append(self.model(x))
        return outs
"""

NO_GRAD_CALLERS_AND_PLAIN_FUNCTIONS = """
import torch


def validate(model, val_loader):
    model.eval()
    outs = []
    for x in val_loader:
        outs.append(model(x))
    return outs


@torch.no_grad()
def run_validation(model, loader):
    return validate(model, loader)


def test_loop(model, test_loader):
    model.eval()
    outs = []
    for x in test_loader:
        outs.append(model(x))
    return outs


test_loop = torch.no_grad()(test_loop)


def linear_model(features, w):
    return features @ w


def test_features(test_feats, w):
    scores = []
    for f in test_feats:
        scores.append(linear_model(f, w))
    return scores
"""

TIMING_AND_PROFILING = """
import time

import torch


def speed(model, x):
    model.eval()
    start = time.perf_counter()
    for _ in range(100):
        model(x)
    torch.cuda.synchronize()
    return time.perf_counter() - start


def latency(model, loader):
    model.eval()
    for x in loader:
        t0 = time.time()
        out = model(x)
        print(time.time() - t0)


def profile_eval(model, val_loader):
    with torch.profiler.profile() as prof:
        for x in val_loader:
            model(x)
    return prof


def evaluate_timed(model, val_loader):
    model.eval()
    t0 = time.time()
    preds = []
    for x in val_loader:
        preds.append(model(x))
    print(time.time() - t0)
    return preds
"""

GENERATOR_EXPRESSION_UNDER_NO_GRAD = """
import torch

model = torch.nn.Linear(4, 2)
val_loader = [torch.randn(8, 4)]
model.eval()
with torch.no_grad():
    for batch in val_loader:
        out = torch.cat(tuple(model(x) for x in batch.split(2)))
"""

# --- grad switched off by hand ----------------------------------------------------

NO_GRAD_ENTERED_BY_HAND = """
import torch


def main(model, test_set):
    model.eval()
    torch.no_grad().__enter__()
    scores = []
    for x in test_set:
        scores.append(model(x).sigmoid())
    return scores


def later(model, test_set):
    if len(test_set) > 1:
        torch.no_grad().__enter__()
    for x in test_set:
        print(model(x).sum())
"""


MODEL_FROZEN_BEFORE_THE_LOOP = """
import copy

import torch


def score(net, test_loader):
    scorer = copy.deepcopy(net)
    scorer.eval().requires_grad_(False)
    total = 0.0
    for x in test_loader:
        total += scorer(x).sum().item()
    return total


def score_copy(net, test_loader):
    frozen = copy.deepcopy(net).eval().requires_grad_(False)
    return [frozen(x).argmax(1) for x in test_loader]


def score_later(net, test_loader):
    net.eval()
    total = 0.0
    for x in test_loader:
        total += net(x).sum().item()
    net.requires_grad_(False)
    return total
"""


HELPER_CHOOSES_GRAD_BY_MODE = """
import torch


def forward_pass(model, batch):
    if model.training:
        out = model(batch)
    else:
        with torch.no_grad():
            out = model(batch)
    return out


def forward_plain(model, batch):
    return model(batch)


def validate(model, val_loader):
    model.eval()
    total = 0.0
    for batch in val_loader:
        total += forward_pass(model, batch).sum().item()
    for batch in val_loader:
        total += forward_plain(model, batch).sum().item()
    return total
"""


EVAL_AT_THE_TOP_OF_THE_LOOP = """
import torch
from torch import nn

net = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))


def validate(model, val_loader):
    scores = []
    for x in val_loader:
        model.eval()
        with torch.no_grad():
            scores.append(model(x).argmax(1))
    return scores


def validate_late(model, val_loader):
    scores = []
    for x in val_loader:
        with torch.no_grad():
            scores.append(model(x).argmax(1))
        model.eval()
    return scores


validate(net, [torch.randn(2, 4)])
validate_late(net, [torch.randn(2, 4)])
"""


LOOP_RUNS_A_TOOL_BUILT_AROUND_THE_MODEL = """
import torch
from attribution import Saliency


def explain(model, test_set):
    model.eval()
    saliency = Saliency(model, absolute=True)
    maps = []
    for x, y in test_set:
        pred = model(x).argmax(1)
        maps.append(saliency(x, target=pred))
    return maps


def evaluate(model, test_set):
    model.eval()
    preds = []
    for x, y in test_set:
        preds.append(model(x).argmax(1))
    return preds
"""


#: (source, expected findings of GRD101/GRD102 as (code, line, col))
CASES = {
    "helper_shared_by_training_and_evaluation": (HELPER_SHARED_BY_TRAINING_AND_EVALUATION, [("GRD101", 21, 4)]),
    "method_one_call_away": (METHOD_ONE_CALL_AWAY, [("GRD101", 13, 8)]),
    "sibling_closures_any_order": (SIBLING_CLOSURES_ANY_ORDER, [("GRD101", 12, 8), ("GRD102", 12, 8)]),
    "sibling_closure_called_under_no_grad": (SIBLING_CLOSURE_CALLED_UNDER_NO_GRAD, []),
    "containers_wrappers_and_submodules": (
        CONTAINERS_WRAPPERS_AND_SUBMODULES,
        [("GRD101", 11, 8), ("GRD101", 18, 4), ("GRD101", 25, 4), ("GRD101", 36, 8)],
    ),
    "generate_defined_here_without_no_grad": (GENERATE_DEFINED_HERE_WITHOUT_NO_GRAD, [("GRD101", 26, 4)]),
    "generate_of_a_library_model": (GENERATE_OF_A_LIBRARY_MODEL, []),
    "outputs_stripped_or_discarded": (
        OUTPUTS_STRIPPED_OR_DISCARDED,
        [("GRD101", 7, 4), ("GRD101", 14, 4), ("GRD101", 23, 4)],
    ),
    "predictor_class": (PREDICTOR_CLASS, [("GRD101", 8, 15), ("GRD101", 12, 8)]),
    "decoding_loop": (DECODING_LOOP, [("GRD101", 7, 4)]),
    "forward_only_saved_in_a_training_loop": (FORWARD_ONLY_SAVED_IN_A_TRAINING_LOOP, [("GRD101", 16, 26)]),
    "forward_saved_in_the_loop_and_returned_after_it": (FORWARD_SAVED_IN_THE_LOOP_AND_RETURNED_AFTER_IT, []),
    "estimator_built_and_fitted_per_fold": (ESTIMATOR_BUILT_AND_FITTED_PER_FOLD, []),
    "called_not_fitted": (
        ESTIMATOR_BUILT_AND_FITTED_PER_FOLD.replace("model.fit(x[train_idx], y[train_idx])", "print(model)"),
        [("GRD101", 8, 4)],
    ),
    # Its callers are nowhere in sight (another module, a notebook): they may
    # well call .eval(), so the handed model's mode is unknown.
    "test_with_no_grad_but_no_eval_callers_unseen": (TEST_WITH_NO_GRAD_BUT_NO_EVAL, []),
    "test_with_no_grad_without_mode_layers": (TEST_WITH_NO_GRAD_WITHOUT_MODE_LAYERS, []),
    "phase_loops": (PHASE_LOOPS, [("GRD101", 9, 8), ("GRD101", 38, 8)]),
    "step_named_like_training_judged_by_body": (STEP_NAMED_LIKE_TRAINING_JUDGED_BY_BODY, [("GRD101", 13, 8)]),
    "loop_in_a_module_method": (LOOP_IN_A_MODULE_METHOD, []),
    "enable_grad_inside_a_no_grad_function": (ENABLE_GRAD_INSIDE_A_NO_GRAD_FUNCTION, []),
    "framework_hooks": (FRAMEWORK_HOOKS, [("GRD101", 28, 8)]),
    "no_grad_callers_and_plain_functions": (NO_GRAD_CALLERS_AND_PLAIN_FUNCTIONS, []),
    "timing_and_profiling": (TIMING_AND_PROFILING, [("GRD101", 35, 4)]),
    "generator_expression_under_no_grad": (GENERATOR_EXPRESSION_UNDER_NO_GRAD, []),
    # entered by hand and never exited: off to the end of the block it is in
    # grad switched off by a statement in a function stays off for the
    # process: whether ``later`` runs before or after ``main`` is not visible
    "no_grad_entered_by_hand": (NO_GRAD_ENTERED_BY_HAND, []),
    # its weights need no grad: the forward builds no graph (frozen after the loop does not count)
    "model_frozen_before_the_loop": (MODEL_FROZEN_BEFORE_THE_LOOP, [("GRD101", 24, 4)]),
    # a helper that runs the model with and without its own no_grad decides itself
    "helper_chooses_grad_by_mode": (HELPER_CHOOSES_GRAD_BY_MODE, [("GRD101", 23, 4)]),
    # model.eval() first thing in the loop body, before any forward
    "eval_at_the_top_of_the_loop": (EVAL_AT_THE_TOP_OF_THE_LOOP, []),
    # an explainer or attack built around the model may need grad: unknown, silent
    "loop_runs_a_tool_built_around_the_model": (LOOP_RUNS_A_TOOL_BUILT_AROUND_THE_MODEL, [("GRD101", 19, 4)]),
}


CLASSES_IN_A_LOOP = """
import numpy as np
import torch


class Runner:
    def __init__(self, path):
        self.weights = {{k: v.numpy() for k, v in torch.load(path).items()}}

    def report(self, batches):
        return [np.tanh(b @ self.weights["w"]) for b in batches]


class Wide(Runner):
    pass


def main(val_batches, pairs):
    for model, path in {pairs}:
        runner = model(path)
        runner.report(val_batches)
"""


@pytest.mark.parametrize(
    "pairs, expected",
    [
        ('((Runner, "a.pt"), (Wide, "b.pt"))', []),
        ('[(Runner, "a.pt")]', []),
        ("pairs", [("GRD101", 19, 4)]),
        ('((Runner, "a.pt"), (load, "b.pt"))', [("GRD101", 19, 4)]),
    ],
)
def test_a_loop_over_classes_builds_objects_rather_than_running_models(pairs, expected):
    assert found(CLASSES_IN_A_LOOP.format(pairs=pairs)) == expected


@pytest.mark.parametrize("case", sorted(CASES))
def test_pattern(case):
    source, expected = CASES[case]
    assert found(source) == expected


@pytest.mark.parametrize("case", sorted(CASES))
def test_pattern_without_sieve_is_the_same(case):
    source = textwrap.dedent(CASES[case][0])
    assert check(source, use_sieve=False) == check(source)


def test_messages_name_the_helper_and_the_container():
    messages = [v.message for v in check(textwrap.dedent(METHOD_ONE_CALL_AWAY)) if v.code == "GRD101"]
    assert messages == [
        "evaluation loop runs `self.model` (through `_forward_pass()`) with grad enabled, so every batch builds "
        "an autograd graph; wrap it in `with torch.no_grad():`"
    ]
    source = textwrap.dedent(CONTAINERS_WRAPPERS_AND_SUBMODULES)
    assert "`self.models[...]`" in [v for v in check(source) if v.code == "GRD101"][0].message


def test_saved_forward_is_fixed_by_wrapping_its_statement():
    source = textwrap.dedent(FORWARD_ONLY_SAVED_IN_A_TRAINING_LOOP)
    (violation,) = [v for v in check(source) if v.code == "GRD101"]
    assert violation.fix is not None and violation.fix.kind == "wrap-no-grad"
    assert violation.fix.start == (16, 16)


HELPER_WITH_ITS_OWN_NAME_FOR_THE_MODEL = """
import torch.nn as nn


def run(net, x):
    return net(x)


def validate(model, val_loader):
    for x in val_loader:
        run(model, x)


model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
validate(model, [])
"""


def test_eval_insertion_fix_only_where_the_helper_name_means_the_same():
    """``model`` is the closures' shared variable; ``net`` exists only in the helper."""
    source = textwrap.dedent(SIBLING_CLOSURES_ANY_ORDER)
    (violation,) = [v for v in check(source) if v.code == "GRD102"]
    assert (violation.fix.kind, violation.fix.argument) == ("insert-before", "model.eval()")
    source = textwrap.dedent(HELPER_WITH_ITS_OWN_NAME_FOR_THE_MODEL)
    (violation,) = [v for v in check(source) if v.code == "GRD102"]
    assert (violation.line, violation.col, violation.fix) == (10, 4, None)
    assert "`net` (through `run()`)" in violation.message


SHARED_PREDICT_HELPER = """
import torch


def predict(model, x):
    model.eval()
    return model(x)


def train(model, loader, optimizer):
    for x in loader:
        loss = predict(model, x).pow(2).mean()
        model.train()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def validate(model, val_loader):
    with torch.no_grad():
        return [predict(model, x) for x in val_loader]


def test(model, test_loader):
    outs = []
    for x in test_loader:
        outs.append(predict(model, x))
    return outs
"""


def test_inference_helper_shared_with_training_is_judged_at_its_callers():
    assert found(SHARED_PREDICT_HELPER) == [("GRD101", 26, 4)]


MODEL_ON_A_BASE_FROM_ANOTHER_MODULE = """
from models import BaseVAE


class LadderVAE(BaseVAE):
    def forward(self, x):
        return self.decode(x)

    def decode(self, z):
        for _ in range(3):
            z = self.decoder(z)
        return z
"""


def test_class_with_its_own_forward_is_a_module():
    assert found(MODEL_ON_A_BASE_FROM_ANOTHER_MODULE) == []


SAMPLING_HELPER_CALLED_FROM_A_TRAINING_LOOP = """
import torch


def sample_images(generator, z):
    generator.eval()
    images = generator(z)
    generator.train()
    return images


def train(generator, loader, optimizer, z):
    for x in loader:
        loss = generator(x).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        sample_images(generator, z)
"""


def test_sampling_helper_called_for_its_side_effects_in_training_is_reported():
    assert found(SAMPLING_HELPER_CALLED_FROM_A_TRAINING_LOOP) == [("GRD101", 7, 13)]


ONE_SHOT_PREDICT_ON_A_MODULE = """
import torch.nn as nn


class Unet(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.1))

    def forward(self, x):
        return self.layer(x)

    def predict(self, x):
        if self.training:
            self.eval()
        x = self.forward(x)
        return x
"""


def test_module_method_that_switches_itself_to_eval_is_an_entry_point():
    # no loop: the method is the inference API, so it owns the grad mode too
    assert found(ONE_SHOT_PREDICT_ON_A_MODULE) == [("GRD101", 16, 12)]


@pytest.mark.parametrize("caller, expected", [
    ("", [("GRD101", 16, 12)]),
    # another method runs it: a helper of the module, whose caller owns the grad mode
    ("\n    def predict_all(self, xs):\n        return [self.predict(x) for x in xs]\n", []),
    ("\n    def recognize(self, x):\n        h = self.predict(x)\n        return h.argmax(-1)\n", []),
])
def test_module_method_switching_itself_to_eval_that_another_method_calls(caller, expected):
    assert found(ONE_SHOT_PREDICT_ON_A_MODULE + caller) == expected


# --- a class with a method of its own named ``eval`` ----------------------------


RUNNER_WITH_EVAL = """
import torch


class Runner(object):
    def __init__(self, model, loader):
        self.model = model
        self.loader = loader

    def eval(self):
        self.model.eval()
        out = []
        for x in self.loader:
            out.append(self.model(x))
        return out

    def train(self, opt):
        for epoch in range(3):
            self.model.train()
            for x in self.loader:
                opt.zero_grad()
                self.model(x).sum().backward()
                opt.step()
            with torch.no_grad():
                res = self.eval()
        return res

    def test(self):
        self.model.eval()
        return self.model(self.loader[0])
"""


def test_own_eval_method_called_only_under_no_grad_is_silent():
    # ``self.model.eval()`` switches the wrapped module: it is not a call of
    # ``Runner.eval`` with grad enabled
    assert found(RUNNER_WITH_EVAL) == []


def test_own_eval_method_called_with_grad_on_an_instance_is_reported():
    source = RUNNER_WITH_EVAL + """

def main(model, loader):
    return Runner(model, loader).eval()
"""
    assert found(source) == [("GRD101", 13, 8)]


# --- library pipelines and generate methods of other classes -------------------


PIPELINE = """
import torch
from diffusers import DiffusionPipeline


def validate(unet, prompts):
    pipeline = DiffusionPipeline.from_pretrained("some/model")
    pipeline.unet = unet
    pipeline = pipeline.to("cpu")
    images = []
    for prompt in prompts:
        images.append(pipeline(prompt).images[0])
    return images


def main(unet, prompts):
    unet = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.1))
    unet.train()
    return validate(unet, prompts)
"""


def test_library_pipeline_disables_grad_itself():
    # the pipeline's ``__call__`` runs under ``no_grad``: no GRD101; the
    # models it holds may still be in training mode (GRD102), with a remedy
    # a pipeline can take
    assert found(PIPELINE) == [("GRD102", 11, 4)]
    found_ = check(textwrap.dedent(PIPELINE), ALONE, filename="script.py")
    message = next(v.message for v in found_ if v.code == "GRD102")
    assert "call `.eval()` on the models `pipeline` holds before the loop" in message


def test_generate_of_a_callback_class_does_not_make_the_models_generate_a_forward():
    source = """
import torch
from transformers import AutoModelForCausalLM


class SampleCallback:
    def __init__(self, prompts):
        self.prompts = prompts

    def generate(self, model):
        outputs = []
        for ids in self.prompts:
            outputs.extend(model.generate(input_ids=ids))
        return outputs


def main(prompts):
    model = AutoModelForCausalLM.from_pretrained("some/model")
    return SampleCallback(prompts).generate(model)
"""
    assert found(source) == []


# --- networks built from layers that do not depend on the mode -----------------


PLAIN_NETWORK = """
import torch
import torch.nn as nn
{extra}

def build(n):
    return nn.Sequential(nn.Linear(n, 16), nn.ReLU(), nn.Linear(16, 1))


def evaluate(network, states):
    values = []
    for state in states:
        values.append(network(state))
    return torch.cat(values)


def main(states, optimizer):
    network = build(4)
    network.train()
    for state in states:
        optimizer.zero_grad()
        network(state).sum().backward()
        optimizer.step()
    network.eval()
    score = evaluate(network, states)
    network.train()
    return evaluate(network, states), score
"""


def test_switches_alone_do_not_make_the_mode_matter_for_plain_layers():
    assert [f for f in found(PLAIN_NETWORK.format(extra="")) if f[0] == "GRD102"] == []


def test_a_model_module_imported_beside_plain_layers_keeps_the_mode_relevant():
    source = PLAIN_NETWORK.format(extra="from .heads import Head")
    assert [f for f in found(source) if f[0] == "GRD102"] == [("GRD102", 12, 4)]


@pytest.mark.parametrize("extra, expected", [
    ("from sklearn.preprocessing import LabelEncoder", []),  # a label encoder, not a model's encoder
    ("from encoders import LabelEncoder", [("GRD102", 12, 4)]),
])
def test_a_name_like_a_model_from_a_package_of_no_models_keeps_plain_layers_plain(extra, expected):
    assert [f for f in found(PLAIN_NETWORK.format(extra=extra)) if f[0] == "GRD102"] == expected


def test_grad_switched_off_by_a_statement_in_a_function_stays_off_for_the_process():
    source = """
import torch


def train(model, optimizer, batches):
    torch.set_grad_enabled(False)
    for x in batches:
        torch.set_grad_enabled(True)
        optimizer.zero_grad()
        model(x).sum().backward()
        optimizer.step()
        torch.set_grad_enabled(False)


def validate(model, batches):
    scores = []
    for x in batches:
        scores.append(model(x).sigmoid())
    return scores


def main(model, optimizer, batches):
    train(model, optimizer, batches)
    return validate(model, batches)
"""
    # ``validate`` runs after ``train`` left grad off: silent
    assert found(source) == []
    # without the switch in ``train``, the same loop is reported
    plain = source.replace("    torch.set_grad_enabled(False)\n    for x in batches:", "    for x in batches:")
    for switch in ("        torch.set_grad_enabled(True)\n", "        torch.set_grad_enabled(False)\n"):
        plain = plain.replace(switch, "")
    assert found(plain) == [("GRD101", 14, 4)]


TRAINER_OBJECT_RUNS_THE_STEP = """
import torch


class Agent:
    def __init__(self, actor, optimizer):
        self.actor = actor
        self.optimizer = optimizer

    def {method}(self, batch):
        loss = self.actor(batch).pow(2).mean()
        {step}
        return loss.item()


def run(actor, env, buffer, steps):
    agent = Agent(actor, torch.optim.Adam(actor.parameters()))
    actor.eval()
    state = env.reset()
    for t in range(steps):
        action = actor(state)
        state = env.step(action)
        agent.{method}(buffer.sample())
"""


def test_a_loop_training_through_an_object_of_the_modules_own_class_is_not_evaluation():
    source = TRAINER_OBJECT_RUNS_THE_STEP.format(
        method="train", step="self.optimizer.zero_grad(); loss.backward(); self.optimizer.step()"
    )
    assert found(source) == []


def test_a_loop_calling_a_method_of_the_modules_class_that_does_not_train_stays_reported():
    source = TRAINER_OBJECT_RUNS_THE_STEP.format(method="score", step="print(loss)")
    assert found(source) == [("GRD101", 20, 4)]


GRAD_MANAGER_OF_THE_MODULE = """
import contextlib

import torch


class Runner:
    def __init__(self, network):
        self.network = network

    @contextlib.contextmanager
    def _mode(self, training):
        old = self.network.training
        self.network.train(training)
        with torch.set_grad_enabled(training):
            yield
        self.network.train(old)

    def evaluate(self, val_loader):
        outs = []
        with self._mode({flag}):
            for x in val_loader:
                outs.append(self.network(x))
        return outs
"""


@pytest.mark.parametrize("flag", ["False", "training=False", "True"])
def test_a_context_manager_of_the_module_that_sets_grad_from_its_argument(flag):
    # ``True`` enables grad on purpose, as ``torch.enable_grad()`` would
    assert found(GRAD_MANAGER_OF_THE_MODULE.format(flag=flag)) == []


def test_a_context_manager_of_the_module_that_does_not_set_grad_changes_nothing():
    source = GRAD_MANAGER_OF_THE_MODULE.format(flag="False").replace("self._mode(False)", "self._other(False)")
    assert found(source) == [("GRD101", 22, 12)]


def test_a_context_manager_of_the_module_that_yields_under_no_grad():
    source = """
import contextlib

import torch


@contextlib.contextmanager
def frozen():
    with torch.no_grad():
        yield


def evaluate(model, val_loader):
    model.eval()
    with frozen():
        return [model(x) for x in val_loader] + [model(x) for x in val_loader for _ in range(2)]


def score(model, val_loader):
    model.eval()
    with frozen():
        for x in val_loader:
            model(x)
    with contextlib.nullcontext():
        for x in val_loader:
            model(x)
"""
    assert found(source) == [("GRD101", 25, 8)]


ONE_BATCH_THEN_BREAK = """
import torch


def main(net, val_loader):
    net.eval()
    for x in val_loader:
        net(x)
        {last}
"""


def test_a_loop_that_always_stops_after_its_first_batch_is_not_an_evaluation_loop():
    assert found(ONE_BATCH_THEN_BREAK.format(last="break")) == []
    assert found(ONE_BATCH_THEN_BREAK.format(last="print(x)")) == [("GRD101", 7, 4)]


TRAIN_MODE_FOR_THE_VALIDATION_LOSS = """
import torch


def do_train(model, optimizer, loader, val_loader):
    dropout = torch.nn.Dropout(0.1)
    for images, targets in loader:
        loss = sum(model(images, targets).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        {switch}
        with torch.no_grad():
            for images, targets in val_loader:
                print(model(images, targets))
"""


def test_train_mode_chosen_right_before_a_validation_loss_loop_is_silent():
    assert found(TRAIN_MODE_FOR_THE_VALIDATION_LOSS.format(switch="model.train()")) == []


def test_train_mode_left_over_from_the_training_steps_is_reported():
    source = TRAIN_MODE_FOR_THE_VALIDATION_LOSS.replace(
        "    for images, targets in loader:\n", "    model.train()\n    for images, targets in loader:\n"
    ).format(switch="pass")
    assert found(source) == [("GRD102", 15, 12)]


CRITERION_OUTSIDE_NO_GRAD = """
import torch
from torch import nn


class Experiment:
    def __init__(self, model):
        self.model = model
        self.{name} = nn.MSELoss(reduction="sum").cuda()

    def validate(self, val_loader):
        self.model.eval()
        total = 0.0
        for x, y in val_loader:
            with torch.no_grad():
                out = self.model(x)
            total += self.{name}(out, y).item()
        return total
"""


@pytest.mark.parametrize("name", ["evaluate_l2", "criterion"])
def test_a_loss_module_called_outside_no_grad_is_not_a_model(name):
    assert found(CRITERION_OUTSIDE_NO_GRAD.format(name=name)) == []


def test_a_network_called_outside_no_grad_stays_reported():
    source = CRITERION_OUTSIDE_NO_GRAD.format(name="head").replace('nn.MSELoss(reduction="sum")', "nn.Linear(4, 1)")
    assert found(source) == [("GRD101", 14, 8)]


CHUNKS_OF_A_TRAINING_BATCH = """
import torch


def train(model, teacher, loader, optimizer):
    teacher.eval()
    model.train()
    for x, y in loader:
        chunks = torch.split(x, 8)
        logits = [model(chunks[0])]
        for chunk in chunks[1:]:
            logits.append(model(chunk))
        loss = torch.nn.functional.cross_entropy(torch.cat(logits), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        model.eval()
        scores = []
        for x_val in {val}:
            scores.append(model(x_val))
        model.train()
"""


def test_a_loop_feeding_a_later_training_step_is_part_of_it():
    assert found(CHUNKS_OF_A_TRAINING_BATCH.format(val="chunks")) == [("GRD101", 19, 8)]


TRAIN_AND_TEST_LOSSES = """
import torch


def main(encoder, generator, loader, test_batches, optimizer, loss_fn):
    encoder.eval()
    for images in loader:
        losses = []
        for batch in [images, next(test_batches)]:
            codes = encoder(batch)
            losses.append(loss_fn(generator(codes), codes))
        optimizer.zero_grad()
        {backward}
        optimizer.step()
"""


@pytest.mark.parametrize("backward, expected", [
    # the first item of the list the loop fills is the step's loss
    ("losses[0].backward()", []),
    # the step's loss comes from elsewhere: the list is only printed
    ("generator(images).sum().backward()\n        print(losses)", [("GRD101", 9, 8)]),
])
def test_a_loop_filling_a_list_an_item_of_which_a_later_step_backpropagates(backward, expected):
    assert found(TRAIN_AND_TEST_LOSSES.format(backward=backward)) == expected


def test_an_adaptation_step_of_a_meta_learner_needs_grad():
    source = """
import torch


def meta_test(maml, tasks, loss_fn):
    maml.eval()
    accs = []
    for support, query in tasks:
        net = maml.clone()
        support_loss = loss_fn(net(support[0]), support[1])
        net.adapt(support_loss)
        accs.append(net(query[0]).argmax(1).eq(query[1]).float().mean().item())
    return accs
"""
    assert found(source) == []
    assert found(source.replace("        net.adapt(support_loss)\n", "")) == [("GRD101", 8, 4)]


GENERATE_UNDER_ITS_OWN_NO_GRAD = """
import torch
from torch import nn


class Sampler(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))

    def forward(self, x):
        return self.net(x)

    def generate(self, z):
        self.eval()
        with torch.no_grad():
            return self.net(z)


def evaluate(noise):
    model = Sampler()
    for z in noise:
        print(model.generate(z).shape)
"""


def test_a_generate_method_that_disables_grad_around_its_forwards_owns_its_grad_mode():
    assert found(GENERATE_UNDER_ITS_OWN_NO_GRAD) == []
    unguarded = GENERATE_UNDER_ITS_OWN_NO_GRAD.replace(
        "        with torch.no_grad():\n            return self.net(z)", "        return self.net(z)"
    )
    assert found(unguarded.replace("self.eval()", "print(z.shape)")) == [("GRD101", 21, 4), ("GRD102", 21, 4)]
    assert found(unguarded) == [("GRD101", 16, 15), ("GRD101", 21, 4)]


LAMBDA_HANDED_OVER_UNDER_NO_GRAD = """
import time

import torch


def timed(fn, repeat):
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def speed(model, images):
    model.eval()
    for image in images:
        with torch.no_grad():
            print(timed(lambda: model(image), 10))
"""


def test_a_lambda_handed_to_a_call_under_no_grad_runs_there():
    assert found(LAMBDA_HANDED_OVER_UNDER_NO_GRAD) == []
    kept = LAMBDA_HANDED_OVER_UNDER_NO_GRAD.replace(
        "            print(timed(lambda: model(image), 10))",
        "            run = lambda: model(image)  # noqa: E731\n        print(timed(run, 10))",
    )
    assert found(kept) == [("GRD101", 16, 4)]


FLOPS_COUNTED_ONE_CALL_AWAY = """
import torch
from torch.utils.flop_counter import FlopCounterMode


def count_flops(model, x):
    counter = FlopCounterMode(display=False)
    with counter:
        model(x)
    return counter.get_total_flops()


def evaluate(model, inputs):
    model.eval()
    results = []
    for x in inputs:
        results.append(count_flops(model, x))
    return results
"""


def test_a_loop_whose_forwards_all_run_under_a_flop_counter_measures_the_model():
    assert found(FLOPS_COUNTED_ONE_CALL_AWAY) == []
    unmeasured = FLOPS_COUNTED_ONE_CALL_AWAY.replace("    with counter:\n        model(x)", "    model(x)")
    assert found(unmeasured) == [("GRD101", 15, 4)]


ACTOR_CHOSEN_BY_A_METHOD = """
def evaluate(balancer, prompts):
    futures = []
    for prompt in prompts:
        actor = balancer.select_actor(prompt)
        futures.append(actor.submit(prompt))
    return futures
"""


@pytest.mark.parametrize("verb", ["select", "choose", "pick", "find", "register", "reset", "add", "remove", "sync"])
def test_a_method_named_verb_then_model_word_picks_a_model_rather_than_running_one(verb):
    assert found(ACTOR_CHOSEN_BY_A_METHOD.replace("select", verb)) == []
    run = ACTOR_CHOSEN_BY_A_METHOD.replace("balancer.select_actor(prompt)", "balancer.policy_net(prompt)")
    assert found(run) == [("GRD101", 4, 4)]


DROPOUT_SWITCHED_OFF = """
import torch
from transformers import AutoModelForCausalLM

from .utils import disable_dropout_in_model


def fit(name, loader, val_loader):
    model = AutoModelForCausalLM.from_pretrained(name)
    disable_dropout_in_model(model)
    optimizer = torch.optim.AdamW(model.parameters())
    model.train()
    for batch in loader:
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    with torch.no_grad():
        for batch in val_loader:
            print(model(**batch).logits)
"""


def test_a_module_that_switches_dropout_off_leaves_training_mode_harmless():
    assert found(DROPOUT_SWITCHED_OFF) == []
    kept = DROPOUT_SWITCHED_OFF.replace("disable_dropout_in_model", "prepare_model")
    assert found(kept) == [("GRD102", 18, 8)]


PARAMETERS_FROZEN_IN_A_LOOP = """
import torch

from models import Denoiser


def main(paths):
    model = Denoiser()
    model.load_state_dict(torch.load("denoiser.pth"))
    model.eval()
    for _, v in model.named_parameters():
        v.requires_grad = False
    model = model.to("cuda")
    for path in paths:
        print(model(torch.load(path)).mean().item())
"""


@pytest.mark.parametrize("freeze", [
    "for _, v in model.named_parameters():\n        v.requires_grad = False",
    "for v in model.parameters():\n        v.requires_grad_(False)",
    "for v in model.parameters():\n        v.detach_()",
])
def test_parameters_frozen_one_by_one_build_no_graph(freeze):
    source = PARAMETERS_FROZEN_IN_A_LOOP.replace(
        "for _, v in model.named_parameters():\n        v.requires_grad = False", freeze
    )
    assert freeze in source
    assert found(source) == []
    other = source.replace("in model.", "in Denoiser().")  # another model's parameters
    assert found(other) == [("GRD101", 14, 4)]


TEACHER_FROZEN_AT_TOP_LEVEL = """
import torch


def test(loader):
    teacher.eval()
    error = 0.0
    for x, y in loader:
        error += (teacher(x) - y).abs().sum().item()
    return error


if __name__ == "__main__":
    loader = [(torch.randn(8, 4), torch.randn(8, 2)) for _ in range(3)]
    model = torch.nn.Linear(4, 2)
    teacher = torch.nn.Linear(4, 2)
    for param in teacher.parameters():
        param.detach_()
    print(test(loader))
"""


def test_a_global_model_frozen_by_top_level_code_before_every_call_builds_no_graph():
    assert found(TEACHER_FROZEN_AT_TOP_LEVEL) == []
    # frozen after the call, or another model frozen: the loop builds graphs
    late = TEACHER_FROZEN_AT_TOP_LEVEL.replace("    print(test(loader))\n", "").replace(
        "    teacher = torch.nn.Linear(4, 2)\n", "    teacher = torch.nn.Linear(4, 2)\n    print(test(loader))\n"
    )
    assert found(late) == [("GRD101", 8, 4)]
    assert found(TEACHER_FROZEN_AT_TOP_LEVEL.replace("in teacher.", "in model.")) == [("GRD101", 8, 4)]
    # rebound inside the function: not the frozen global
    rebound = TEACHER_FROZEN_AT_TOP_LEVEL.replace(
        "    teacher.eval()\n", "    teacher = torch.nn.Linear(4, 2)\n    teacher.eval()\n"
    )
    assert found(rebound) == [("GRD101", 9, 4)]


def test_parameters_detached_in_place_stop_the_graph_under_real_torch():
    torch = pytest.importorskip("torch")
    teacher = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.GRU(4, 4))
    for param in teacher.parameters():
        param.detach_()
    out, _ = teacher(torch.randn(3, 4))
    assert out.grad_fn is None and not out.requires_grad


FROZEN_BEFORE_ITS_CLOSURES = """
import torch


def sample(model, latents):
    model.eval()
    model.requires_grad_(False)

    def decode(x):
        return model.decoder(x)

    def show():
        return decode(torch.randn(1, 4))

    for z in latents:
        print(show().mean().item())
"""

FROZEN_BEFORE_THE_CLOSURE_THAT_LOOPS = """
import torch


def sample(model, latents):
    model.requires_grad_(False)

    def run():
        for z in latents:
            print(model.decoder(z).mean().item())

    run()
"""


@pytest.mark.parametrize("source, at", [
    (FROZEN_BEFORE_ITS_CLOSURES, ("GRD101", 14, 4)),  # the model runs in closures the loop calls
    (FROZEN_BEFORE_THE_CLOSURE_THAT_LOOPS, ("GRD101", 8, 8)),  # the loop is in a closure
])
def test_a_model_frozen_by_the_enclosing_function_builds_no_graph_in_its_closures(source, at):
    assert found(source) == []
    assert found(source.replace("    model.requires_grad_(False)\n", "")) == [at]


INPUT_GRADIENTS_WANTED = """
import torch


def evaluate(model, loader, sobolev_loss):
    model.eval()
    total = 0.0
    for image, target in loader:
        image.requires_grad = True
        loss = sobolev_loss(model(image), target, image)  # differentiates with respect to the image
        total += loss.item()
    return total
"""


@pytest.mark.parametrize("ask", ["image.requires_grad = True", "image.requires_grad_()", "image.requires_grad_(True)"])
def test_a_loop_that_makes_its_input_require_grad_wants_grad(ask):
    assert found(INPUT_GRADIENTS_WANTED.replace("image.requires_grad = True", ask)) == []


@pytest.mark.parametrize("off", ["image.requires_grad = False", "image.requires_grad_(requires_grad=False)"])
def test_a_loop_that_switches_requires_grad_off_is_still_an_evaluation(off):
    assert found(INPUT_GRADIENTS_WANTED.replace("image.requires_grad = True", off)) == [("GRD101", 8, 4)]


STEP_HELPER_NAMED_LIKE_INFERENCE = """
import torch
from torch import nn


class Trainer:
    def __init__(self, frames):
        self.frames = frames
        self.models = {"depth": nn.Sequential(nn.Conv2d(3, 1, 3), nn.Dropout(0.1)), "pose": nn.Linear(8, 6)}
        self.optimizer = torch.optim.Adam([p for m in self.models.values() for p in m.parameters()])

    def predict_poses(self, inputs):
        poses = {}
        for f in self.frames:
            poses[f] = self.models["pose"](inputs[f])
        return poses

    def process_batch(self, inputs):
        outputs = {"depth": self.models["depth"](inputs["image"])}
        outputs.update(self.predict_poses(inputs))
        losses = {"loss": sum(v.mean() for v in outputs.values())}
        return outputs, losses

    def run_epoch(self, loader):
        for m in self.models.values():
            m.train()
        for inputs in loader:
            outputs, losses = self.process_batch(inputs)
            self.optimizer.zero_grad()
            losses["loss"].backward()
            self.optimizer.step()
"""


def test_a_loop_named_like_inference_whose_result_feeds_a_training_step_is_not_evaluation():
    assert found(STEP_HELPER_NAMED_LIKE_INFERENCE) == []
    detached = STEP_HELPER_NAMED_LIKE_INFERENCE.replace(
        'losses["loss"].backward()', 'print(losses["loss"].item())'
    ).replace("            self.optimizer.zero_grad()\n", "").replace("            self.optimizer.step()\n", "")
    # ``run_epoch``'s loop follows ``m.train()``: a training loop with its step left out, not an evaluation
    assert found(detached) == [("GRD101", 14, 8), ("GRD102", 14, 8)]


FROZEN_BY_ITS_CONSTRUCTOR = """
import torch
from torch import nn


class FeatureNet(nn.Module):
    def __init__(self, dims, requires_grad=False):
        super().__init__()
        self.body = nn.Linear(dims, dims)
        for param in self.parameters():
            param.requires_grad = requires_grad

    def forward(self, x):
        return self.body(x)


def get_activations(images, model):
    model.eval()
    features = []
    for batch in images:
        features.append(model(batch).numpy())
    return features


def statistics(images, net):
    return get_activations(images, net)


def main(images):
    model = FeatureNet(8)
    return statistics(images, model)
"""


def test_a_model_its_class_freezes_and_every_caller_hands_over_builds_no_graph():
    assert found(FROZEN_BY_ITS_CONSTRUCTOR) == []
    trainable = FROZEN_BY_ITS_CONSTRUCTOR.replace("model = FeatureNet(8)", "model = FeatureNet(8, requires_grad=True)")
    assert found(trainable) == [("GRD101", 20, 4)]
    unfrozen = FROZEN_BY_ITS_CONSTRUCTOR.replace("param.requires_grad = requires_grad", "print(param.shape)")
    assert found(unfrozen) == [("GRD101", 20, 4)]


FROZEN_BY_THE_CALLER = """
import torch

from nets import Detector


def evaluate(images, model):
    results = []
    for image in images:
        results.append(model(image))
    return results


if __name__ == "__main__":
    model = Detector()
    model.requires_grad_(False)
    model.eval()
    evaluate([], model)
"""


def test_a_model_every_caller_freezes_before_handing_it_over_builds_no_graph():
    assert found(FROZEN_BY_THE_CALLER) == []
    assert found(FROZEN_BY_THE_CALLER.replace("model.requires_grad_(False)", "print(model)")) == [("GRD101", 9, 4)]


RENDERER_CALLED_BY_FORWARD = """
import torch
from torch import nn


def render(models, points, chunk):
    def inference(model, xs):
        outputs = []
        for i in range(0, xs.shape[0], chunk):
            outputs.append(model(xs[i:i + chunk]))
        return torch.cat(outputs, 0)

    return inference(models[0], points)


class Scene(nn.Module):
    def __init__(self):
        super().__init__()
        self.field = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Linear(16, 3))

    def forward(self, points):
        return render([self.field], points, 1024)
"""


def test_a_loop_in_a_function_the_modules_forward_calls_belongs_to_the_model():
    assert found(RENDERER_CALLED_BY_FORWARD) == []
    # called from a plain function instead, the same loop evaluates
    plain = RENDERER_CALLED_BY_FORWARD.replace("    def forward(self, points):", "    def render_all(self, points):")
    assert found(plain) == [("GRD101", 9, 8)]


WRAPPER_OF_A_BASE_FROM_ANOTHER_PACKAGE = """
import torch
import torch.nn as nn
from detector_lib import DetectorWithAugmentation


class MyDetectorWithAugmentation(DetectorWithAugmentation):
    def __init__(self, model, scales):
        nn.Module.__init__(self)
        self.model = model
        self.scales = scales

    def predict_all(self, images):
        outputs = []
        for scale in self.scales:
            outputs.append(self.model(images * scale))
        return outputs
"""


def test_a_class_that_runs_nn_module_init_itself_is_a_module():
    # ``nn.Module.__init__(self)`` says what the unknown base does not: the
    # class is a module, and its caller owns the grad mode of its loops
    assert found(WRAPPER_OF_A_BASE_FROM_ANOTHER_PACKAGE) == []
    unknown = WRAPPER_OF_A_BASE_FROM_ANOTHER_PACKAGE.replace("nn.Module.__init__(self)", "super().__init__()")
    assert found(unknown) == [("GRD101", 15, 8)]


NO_GRAD_CHOSEN_AT_RUN_TIME = """
import contextlib
import torch
import torch.nn as nn

model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))


def generate_images(loader, requires_grad=False):
    model.eval()
    outs = []
    with torch.no_grad() if not requires_grad else contextlib.nullcontext():
        for x in loader:
            outs.append(model(x))
    return outs
"""


def test_no_grad_chosen_by_a_conditional_expression_may_be_off():
    # grad is off unless the caller asks for it: the author chose, as with
    # ``torch.set_grad_enabled(flag)``
    assert found(NO_GRAD_CHOSEN_AT_RUN_TIME) == []
    either = NO_GRAD_CHOSEN_AT_RUN_TIME.replace("contextlib.nullcontext()", "torch.inference_mode()")
    assert found(either) == []
    neither = NO_GRAD_CHOSEN_AT_RUN_TIME.replace("torch.no_grad()", "open('log.txt')")
    assert found(neither) == [("GRD101", 13, 8)]


MC_DROPOUT_THROUGH_HELPERS = """
import torch

model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5), torch.nn.Linear(4, 1))


def predict_steps(model, history, steps):
    outputs = []
    with torch.no_grad():
        for _ in range(steps):
            outputs.append(model(history))
    return outputs


def predictions(model, history, steps):
    return predict_steps(model, history, steps)


def sample_predictions(model, history, steps, samples):
    return [predictions(model, history, steps) for _ in range(samples)]


def forecast(model, history, steps, samples):
    model.eval()
    mean = predictions(model, history, steps)
    model.train()  # dropout on, on purpose: Monte Carlo samples
    spread = sample_predictions(model, history, steps, samples)
    return mean, spread


forecast(model, torch.randn(2, 4), 3, 5)
"""


def test_train_mode_chosen_by_a_caller_for_monte_carlo_samples_is_silent():
    assert found(MC_DROPOUT_THROUGH_HELPERS) == []
    # without the first .eval(), the mean runs in training mode by accident
    assert found(MC_DROPOUT_THROUGH_HELPERS.replace("    model.eval()\n", "")) == [("GRD102", 10, 8)]
    # a training step between the switch and the samples: the mode is left over
    trained = MC_DROPOUT_THROUGH_HELPERS.replace(
        "    model.train()  # dropout on, on purpose: Monte Carlo samples\n",
        "    model.train()\n    model(history).sum().backward()\n",
    )
    assert found(trained) == [("GRD102", 10, 8)]
    # one prediction, not repeated samples: training mode handed over by mistake
    once = MC_DROPOUT_THROUGH_HELPERS.replace(
        "[predictions(model, history, steps) for _ in range(samples)]", "predictions(model, history, steps)"
    )
    assert found(once) == [("GRD102", 10, 8)]


FACTORY_ATTRIBUTE = """
import torch
import nets


class Incremental:
    def __init__(self, small):
        if small:
            self.network = nets.resnet20
        else:
            self.network = nets.resnet32

    def evaluate(self, tasks, test_loader, path):
        for task in tasks:
            model = self.network(num_classes=task)
            model.load_state_dict(torch.load(path % task))
            model.eval()
            with torch.no_grad():
                correct = sum((model(x).argmax(1) == y).sum().item() for x, y in test_loader)
            print(task, correct)
"""


def test_calling_an_imported_factory_kept_in_an_attribute_builds_a_model():
    assert found(FACTORY_ATTRIBUTE) == []
    # a model handed in and kept there is run, not built
    handed = FACTORY_ATTRIBUTE.replace("self.network = nets.resnet32", "self.network = nets.resnet32(10)")
    handed = handed.replace("self.network(num_classes=task)", "self.network(task)")  # a forward's input
    assert found(handed) == [("GRD101", 14, 8)]


PREDICTOR_TWO_CALLS_DEEP = """
import torch


class Tabular:
    def __init__(self):
        self.model = torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.Dropout(0.5))

    def _generate(self, model, batches):
        return [model(x).argmax(1) for x in batches]

    def _predict(self, batches):
        model = self.model
        model.eval()
        return self._generate(model, batches)

    def predict(self, batches):
        return self._predict(batches)

    def fit(self, trainer, batches):
        self.model.train()
        trainer.fit(self.model, batches)

    def cross_validate(self, trainer, folds):
        scores = []
        for train_batches, val_batches in folds:
            self.fit(trainer, train_batches)
            with torch.no_grad():
                scores.append(self.predict(val_batches))
        return scores
"""


def test_a_helper_two_calls_deep_whose_every_caller_switches_to_eval_mode():
    """``predict()`` -> ``_predict()`` switches to eval mode, then calls the
    function that runs the model: the loop calling ``predict()`` runs it in
    eval mode."""
    assert [f for f in found(PREDICTOR_TWO_CALLS_DEEP) if f[0] == "GRD102"] == []
    unswitched = PREDICTOR_TWO_CALLS_DEEP.replace("        model.eval()\n", "")
    assert [f for f in found(unswitched) if f[0] == "GRD102"] == [("GRD102", 25, 8)]


# --- ``model.train(flag)`` with a flag the function set -----------------------

#: the rule's own example (``model.train(is_training)`` after ``is_training = False``)
FLAG_SET_IN_THE_FUNCTION = next(
    v.code for v in EvalLoopWithoutEvalMode.VALID if v.title.startswith("`model.train(flag)`")
)


@pytest.mark.parametrize("source, expected", [
    (FLAG_SET_IN_THE_FUNCTION, []),
    # set to True too: the mode is not known to be eval
    (FLAG_SET_IN_THE_FUNCTION.replace(
        "    model.train(", "    if loader:\n        is_training = True\n    model.train("),
     [("GRD102", 11, 8)]),
    # no switch at all
    (FLAG_SET_IN_THE_FUNCTION.replace("    model.train(is_training)\n", ""), [("GRD102", 8, 8)]),
])
def test_model_train_with_a_flag_set_to_false_is_a_switch_to_eval(source, expected):
    assert found(source) == expected


# --- a helper that sets the mode itself ----------------------------------------

RECALIBRATE_BATCH_NORM = """
import torch

val_loader = [(torch.randn(8, 4), torch.zeros(8)) for _ in range(3)]


def infer(model, ids):
    model.train()  # recalibrate batch norm on purpose
    with torch.no_grad():
        for i, (images, target) in enumerate(val_loader):
            logits = model(images)


def test_candidates(model, candidates, done):
    for candidate in candidates:
        if candidate in done:
            print("already tested")
        else:
            acc, loss = infer(model, candidate)


def search(model, candidates):
    for step in range(3):
        test_candidates(model, candidates, {})


def run():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4))
    search(model, [1, 2])


if __name__ == "__main__":
    run()
"""


@pytest.mark.parametrize("source, expected", [
    # the helper switches to training mode on purpose: an .eval() before the loop would change nothing
    (RECALIBRATE_BATCH_NORM, []),
    # the helper switches nothing: both the helper's loop and the loop reaching it run in training mode
    (RECALIBRATE_BATCH_NORM.replace("    model.train()  # recalibrate batch norm on purpose\n", ""),
     [("GRD102", 9, 8), ("GRD102", 14, 4)]),
])
def test_a_loop_through_a_helper_that_sets_the_mode_itself_is_silent(source, expected):
    assert found(source) == expected


# --- a module with models of its own, and no torch -----------------------------

NUMPY_MLP = """
import numpy as np


class Linear(object):
    def __init__(self, n_in, n_out):
        self.W = np.random.randn(n_in, n_out)
        self.train_mode = True

    def forward(self, x):
        return x @ self.W

    def eval(self):
        self.train_mode = False


class MLP(Linear):
    pass


def validate(mlp, val_x, batch_size):
    mlp.eval()
    errors = 0
    for b in range(0, len(val_x), batch_size):
        y = mlp.forward(val_x[b:b + batch_size])
        errors += int(np.argmax(y, 1).sum())
    return errors
"""


@pytest.mark.parametrize("source, expected", [
    (NUMPY_MLP, []),
    # torch imported: the model handed in may be a torch module
    ("import torch\n" + NUMPY_MLP, [("GRD101", 25, 4)]),
    # a class of the project imported by name: it may be a torch module
    ("from models import Net\n" + NUMPY_MLP, [("GRD101", 25, 4)]),
    # a base the module does not define
    (NUMPY_MLP.replace("class Linear(object):", "class Linear(Layer):"), [("GRD101", 24, 4)]),
])
def test_a_module_with_models_of_its_own_and_no_torch_builds_no_graph(source, expected):
    assert found(source) == expected


# --- a linear probe: one layer that computes the same in both modes -----------

LINEAR_PROBE = """
import torch
import torchvision


def linear(train_features, test_loader, num_classes=2):
    probe = torch.nn.Linear(train_features.shape[1], num_classes)
    optimizer = torch.optim.SGD(probe.parameters(), lr=0.1)
    for epoch in range(2):
        for counter, (x_batch, y_batch) in enumerate(test_loader):
            logits = probe(x_batch)


def cluster(net):
    net.train()
"""


@pytest.mark.parametrize("source, expected", [
    (LINEAR_PROBE, []),
    # a layer whose output depends on the mode
    (LINEAR_PROBE.replace("torch.nn.Linear(", "torch.nn.BatchNorm1d("), [("GRD102", 10, 8)]),
])
def test_a_linear_probe_needs_no_eval_mode(source, expected):
    assert [f for f in found(source) if f[0] == "GRD102"] == expected


# --- a diffusion pipeline whose unet alone was trained -------------------------

PIPELINE_FINE_TUNING = """
import torch
from diffusers import DDPMScheduler


class Trainer:
    def __init__(self, model: DepthPipeline, loader):
        self.model: DepthPipeline = model
        self.loader = loader
        self.optimizer = torch.optim.Adam(self.model.unet.parameters())

    def train(self):
        for epoch in range(10):
            self.model.unet.train()
            for batch in self.loader:
                self.model.unet(batch).mean().backward()
                self.optimizer.step()
            self.validate()

    def validate(self):
        with torch.no_grad():
            for batch in self.loader:
                self.model(batch)
"""


@pytest.mark.parametrize("source, expected", [
    (PIPELINE_FINE_TUNING, []),
    # a text encoder may hold dropout (T5's does)
    (PIPELINE_FINE_TUNING.replace("self.model.unet.train()", "self.model.text_encoder.train()"),
     [("GRD102", 22, 12)]),
    # not known to be a pipeline
    (PIPELINE_FINE_TUNING.replace("DepthPipeline", "DepthModel"), [("GRD102", 22, 12)]),
])
def test_a_pipeline_whose_unet_alone_was_trained_needs_no_eval_mode(source, expected):
    assert [f for f in found(source) if f[0] == "GRD102"] == expected


# --- heldout51: a helper named like an action, meta-learning, energy models ---

VALIDATE_HELPER = """
import torch
from evaluation import *


def evaluate_all(model, configs):
    results = {}
    for name, config in configs.items():
        results[name] = validate_model(name, model, config)
    return results
"""

META_TEST = """
import torch
import torch.nn.functional as F


def test(net, tasks, make_inner):
    accs = []
    for x_spt, y_spt, x_qry, y_qry in tasks:
        fnet, diffopt = make_inner(net)
        for _ in range(5):
            spt_loss = F.cross_entropy(fnet(x_spt), y_spt)
            diffopt.step(spt_loss)
        accs.append((fnet(x_qry).detach().argmax(1) == y_qry).float().mean())
    return accs
"""

ENERGY_MODEL = """
import torch


class Unroll(torch.nn.Module):
    def __init__(self, energy):
        super().__init__()
        self.energy = energy

    def forward(self, x):
        y = torch.zeros(x.size(0), 10, requires_grad=True)
        opt = make_optimizer([y])
        for _ in range(5):
            y, = opt.step(self.energy(x, y).sum(), params=[y])
        return y


def test(model, test_loader):
    model.eval()
    correct = 0
    for data, target in test_loader:
        correct += (model(data).argmax(1) == target).sum().item()
    return correct
"""


@pytest.mark.parametrize("source, expected", [
    (VALIDATE_HELPER, []),  # ``validate_model(...)``: an action named after a model, not a model
    (VALIDATE_HELPER.replace("validate_model(name, model, config)", "model(config)"), [("GRD101", 8, 4)]),
    # ``fine_tune_model(...)`` trains a copy of the model for each client: an action, not a model
    (VALIDATE_HELPER.replace("validate_model(name, model, config)", "fine_tune_model(name, model, config)"), []),
    (META_TEST, []),  # ``diffopt.step(spt_loss)``: each test task is fine-tuned, which needs grad
    (META_TEST.replace("diffopt.step(spt_loss)", "diffopt.zero()"), [("GRD101", 8, 4)]),
    # ``scheduler.step(val_loss)`` reads a number: no training step
    (META_TEST.replace("diffopt.step(spt_loss)", "scheduler.step(spt_loss)"), [("GRD101", 8, 4)]),
    (ENERGY_MODEL, []),  # the model's forward descends on its labels: evaluation needs grad
    (ENERGY_MODEL.replace("y, = opt.step(self.energy(x, y).sum(), params=[y])", "y = self.energy(x, y)"),
     [("GRD101", 21, 4)]),
    # a forward stepping something, with no tensor of its own to optimize (an RNN cell's ``step``)
    (ENERGY_MODEL.replace(", requires_grad=True", ""), [("GRD101", 21, 4)]),
])
def test_models_that_need_grad_and_functions_named_after_models(source, expected):
    assert [f for f in found(source) if f[0] == "GRD101"] == expected


# --- heldout52: forwards inside a training iteration, collected for its losses ---

ADAPTATION_STEP = """
import torch
import torch.nn.functional as F


def train(model, teacher, discriminators, optimizer, batches):
    teacher.eval()
    for src_inputs, trg_inputs in batches:
        optimizer.zero_grad()
        src_preds = []
        for x_s, y_s in src_inputs:
            src_preds.append(model(x_s))
        loss = 0
        for (_, y_s), pred_s in zip(src_inputs, src_preds):
            loss = loss + F.cross_entropy(pred_s, y_s)
        adv = 0
        for i, x_t in enumerate(trg_inputs):
            for j, pred_s in enumerate(src_preds):
                adv = adv + discriminators[i](pred_s).mean() - discriminators[j](model(x_t)).mean()
        total = loss + adv
        total.backward()
        optimizer.step()
"""


@pytest.mark.parametrize("source, expected", [
    (ADAPTATION_STEP, []),  # both inner loops build parts of the loss the iteration backpropagates
    # the losses only printed, in a function named like validation: evaluation
    (ADAPTATION_STEP.replace("total.backward()\n        optimizer.step()", "print(float(total))")
     .replace("def train(", "def validate(").replace("        optimizer.zero_grad()\n", ""),
     [("GRD101", 8, 4)]),
])
def test_forwards_collected_for_a_later_step_in_the_same_iteration(source, expected):
    assert [f for f in found(source) if f[0] == "GRD101"] == expected


# --- heldout52: a lowercase factory named like a model, called with its settings ---

FACTORY_BY_KEYWORDS = """
import torch
from models import *


def predict(model, loader):
    model.eval()
    with torch.no_grad():
        return [model(x) for x in loader]


def predict_all(folds, loader):
    for fold in folds:
        model = cell_senet(model_name="se_resnext50", num_classes=1108, n_channels=6)
        model.load_state_dict(torch.load(fold))
        predict(model, loader)
"""


@pytest.mark.parametrize("source, expected", [
    (FACTORY_BY_KEYWORDS, []),  # ``cell_senet(..., num_classes=1108)`` builds a model; ``predict`` turns grad off
    (FACTORY_BY_KEYWORDS.replace('cell_senet(model_name="se_resnext50", num_classes=1108, n_channels=6)',
                                 "cell_senet(torch.load(fold))"), [("GRD101", 13, 4)]),
])
def test_a_factory_called_with_model_settings_builds_a_model(source, expected):
    assert [f for f in found(source) if f[0] == "GRD101"] == expected


# --- a branch no run takes: a module flag set once to False -------------------

FLAGGED_SCRIPT = """
import torch

VALID = False
model = torch.load("model.pt")
model.eval()
loader = torch.load("test.pt")

predictions = []
for images in loader:
    predictions.append(model(images).detach().numpy())

if VALID:
    scores = []
    for images, masks in torch.load("valid.pt"):
        scores.append((model(images).argmax(1) == masks).float().mean().item())
"""


@pytest.mark.parametrize("source, expected", [
    (FLAGGED_SCRIPT, [("GRD101", 10, 0)]),  # the test loop runs; the validation branch never does
    (FLAGGED_SCRIPT.replace("if VALID:", "if False:"), [("GRD101", 10, 0)]),
    (FLAGGED_SCRIPT.replace("VALID = False", "VALID = True"), [("GRD101", 10, 0), ("GRD101", 15, 4)]),
    # set again further on (or by the command line): the branch may run
    (FLAGGED_SCRIPT.replace("loader = torch.load", "VALID = torch.cuda.device_count() > 1\nloader = torch.load"),
     [("GRD101", 11, 0), ("GRD101", 16, 4)]),
])
def test_a_loop_under_a_module_flag_set_once_to_false_never_runs(source, expected):
    assert [f for f in found(source) if f[0] == "GRD101"] == expected


FLAG_GUARDED_HELPER = """
import torch

SHOW = False
model = torch.load("model.pt")


def show_predictions(loader):
    global SHOW
    if not SHOW:
        return
    for images in loader:
        print(model(images).argmax(1))


show_predictions(torch.load("test.pt"))
"""


@pytest.mark.parametrize("source, expected", [
    (FLAG_GUARDED_HELPER, []),  # ``if not SHOW: return`` always leaves: the loop after it never runs
    (FLAG_GUARDED_HELPER.replace("SHOW = False", "SHOW = True"), [("GRD101", 12, 4)]),
    (FLAG_GUARDED_HELPER.replace("        return\n", "        print(SHOW)\n"), [("GRD101", 12, 4)]),
    # a function that declares the flag global and sets it: the loop may run
    (FLAG_GUARDED_HELPER.replace("    global SHOW\n", "    global SHOW\n    SHOW = len(loader) > 0\n"),
     [("GRD101", 13, 4)]),
])
def test_a_function_that_returns_first_unless_a_flag_set_once_to_false(source, expected):
    assert [f for f in found(source) if f[0] == "GRD101"] == expected


OPTIONAL_COACH = """
import matplotlib.pyplot as plt
import torch

val_loader = [(torch.randn(8, 4), torch.ones(8, 4))]


def visualize(net=None, coach=None):
    for batch_idx, (inputs, masks) in enumerate(val_loader):
        if coach is not None:
            masks = coach.forward(inputs)
        print(batch_idx, masks.mean())


visualize()


def train(net, coach=None):
    net.train()
    if coach is not None:
        coach.eval()
"""


@pytest.mark.parametrize("call, expected", [
    ("visualize()", []),  # no model handed over: the loop runs none
    ("visualize(None, None)", []),
    ("visualize(coach=torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5)))", [("GRD102", 9, 4)]),
])
def test_a_call_that_leaves_the_model_parameter_at_none_runs_no_model(call, expected):
    source = OPTIONAL_COACH.replace("\nvisualize()\n", f"\n{call}\n")
    assert [f for f in found(source) if f[0] == "GRD102"] == expected


EXPORT_SCRIPT = """
import sys

import torch

model = torch.nn.Linear(4, 2)
model.eval()
images = {"a.jpg": torch.randn(1, 4), "b.txt": None}
for filename, image in images.items():
    if filename.endswith(".jpg"):
        prediction = model(image)
        torch.jit.save(torch.jit.trace(model, image), "model.pt")
        sys.exit(0)
        print(prediction)
"""


@pytest.mark.parametrize("source, expected", [
    (EXPORT_SCRIPT, []),  # the first image the model sees is the last: one forward to trace it
    (EXPORT_SCRIPT.replace("        sys.exit(0)\n", ""), [("GRD101", 9, 0)]),
    (EXPORT_SCRIPT.replace("sys.exit(0)", "continue"), [("GRD101", 9, 0)]),
    (EXPORT_SCRIPT.replace("sys.exit(0)", "raise ValueError(filename)"), [("GRD101", 9, 0)]),  # may be caught
])
def test_a_loop_that_leaves_after_its_first_forward_is_no_evaluation_loop(source, expected):
    assert [f for f in found(source) if f[0] == "GRD101"] == expected


# --- a module of buffers only builds no graph ---------------------------------


@pytest.mark.parametrize("source, expected", [
    (BUFFERS_ONLY_ENCODER, []),  # no parameter: the encoder's outputs need grad only through its inputs
    (with_a_parameter(BUFFERS_ONLY_ENCODER), [("GRD101", 29, 4)]),
])
def test_a_module_of_buffers_only_runs_without_a_graph(source, expected):
    assert [f for f in found(source) if f[0] == "GRD101"] == expected


# A retrieval evaluation compares numpy embeddings with a ``torch.nn`` layer
# that has no parameter: nothing in the loop requires grad.
SIMILARITY_SEARCH = """
import numpy as np
import torch


def evaluate(queries, database, use_gpu=False):
    db = torch.from_numpy(np.stack(database))
    cos = torch.nn.CosineSimilarity(dim=1)
    hits = []
    for query in queries:
        q = torch.from_numpy(query)[None]
        if use_gpu:
            q, db, cos = q.cuda(), db.cuda(), cos.cuda()
            cos = cos.cuda()
        hits.append(cos(q, db).topk(5).indices.tolist())
    return hits
"""


@pytest.mark.parametrize("layer, expected", [
    ("torch.nn.CosineSimilarity(dim=1)", []),  # no parameter, moved or not
    ("torch.nn.Bilinear(4, 4, 1)", [("GRD101", 10, 4)]),  # a layer with weights
])
def test_a_torch_layer_without_parameters_runs_without_a_graph(layer, expected):
    source = SIMILARITY_SEARCH.replace("torch.nn.CosineSimilarity(dim=1)", layer)
    assert [f for f in found(source) if f[0] == "GRD101"] == expected


def test_a_handed_model_only_moved_is_not_taken_for_a_layer_without_parameters():
    # ``model = model.cuda()`` alone says nothing of what ``model`` is
    source = SIMILARITY_SEARCH.replace("use_gpu=False", "model=None, use_gpu=False").replace(
        "    cos = torch.nn.CosineSimilarity(dim=1)\n", "").replace("cos", "model")
    assert [f for f in found(source) if f[0] == "GRD101"] == [("GRD101", 9, 4)]


# A distiller built on another package's base class puts only its teacher in eval mode in
# ``__init__``: the student's forward in ``predict`` feeds the caller's training loss.
TEACHER_IN_EVAL_STUDENT_TRAINED = """
import torch
import recsys


class Distiller(recsys.Arch):
    def __init__(self, student, teacher):
        super().__init__()
        self.student = student
        self.teacher = teacher
        self.teacher.eval()

    def predict(self, users, items):
        scores = self.student(users) @ items
        with torch.no_grad():
            target = self.teacher(users) @ items
        return scores, target
"""

PREDICTOR_OF_AN_ARGUMENT = """
import torch


class Loaded:
    def __init__(self, model):
        model.eval()
        self.model = model

    def predict(self, users):
        return self.model(users).argmax(1)


print(Loaded(torch.nn.Linear(4, 3)).predict(torch.randn(2, 4)))
"""


@pytest.mark.parametrize("source, expected", [
    (TEACHER_IN_EVAL_STUDENT_TRAINED, []),
    # the teacher, which ``__init__`` put in eval mode, run with grad: inference
    (TEACHER_IN_EVAL_STUDENT_TRAINED.replace("with torch.no_grad():", "if True:"), [("GRD101", 16, 21)]),
    # the student put in eval mode too: ``predict`` is inference
    (TEACHER_IN_EVAL_STUDENT_TRAINED.replace("self.teacher.eval()", "self.teacher.eval()\n        self.student.eval()"),
     [("GRD101", 15, 17)]),
    # ``model.eval()`` on the argument, then kept as ``self.model``
    (PREDICTOR_OF_AN_ARGUMENT, [("GRD101", 11, 15)]),
])
def test_inference_function_of_the_models_init_put_in_eval_mode(source, expected):
    assert found(source) == expected


SAVED_AFTER_UNWRAPPING = """
import torch


def train(accelerator, model, optimizer, loader, path):
    for epoch in range(10):
        for x, y in loader:
            loss = (model(x) - y).pow(2).mean()
            optimizer.zero_grad()
            accelerator.backward(loss)
            optimizer.step()
        unwrapped_model = accelerator.unwrap_model(model)
        accelerator.save(unwrapped_model.state_dict(), path)
"""


@pytest.mark.parametrize("source, expected", [
    # ``unwrap_model(model)`` strips a wrapper to save the weights: an action, no forward
    (SAVED_AFTER_UNWRAPPING, []),
    (SAVED_AFTER_UNWRAPPING.replace("accelerator.unwrap_model(model)", "accelerator.model(model)"),
     [("GRD101", 12, 26)]),
])
def test_unwrapping_a_model_runs_no_forward(source, expected):
    assert found(source) == expected


# A predictor freezes its Lightning module in ``__init__``: ``freeze()`` turns grad off for
# every parameter, so ``predict`` builds no graph.
FROZEN_PREDICTOR = """
import torch
from model import ColaModel


class ColaPredictor:
    def __init__(self, path):
        self.model = ColaModel.load_from_checkpoint(path)
        self.model.eval()
        self.model.freeze()

    def predict(self, ids):
        logits = self.model(ids)
        return logits.softmax(-1).tolist()


print(ColaPredictor("best.ckpt").predict(torch.tensor([[1, 2, 3]])))
"""

FROZEN_BEFORE_A_LOOP = """
def evaluate(model, loader):
    model.eval()
    model.freeze()
    predictions = []
    for x in loader:
        predictions.append(model(x).argmax(1))
    return predictions
"""


@pytest.mark.parametrize("source, expected", [
    (FROZEN_PREDICTOR, []),
    (FROZEN_PREDICTOR.replace("self.model.freeze()", "self.model.requires_grad_(False)"), []),
    (FROZEN_PREDICTOR.replace("        self.model.freeze()\n", ""), [("GRD101", 12, 17)]),
    # ``freeze(at=2)`` freezes part of the model; ``unfreeze()`` elsewhere switches grad on again
    (FROZEN_PREDICTOR.replace("self.model.freeze()", "self.model.freeze(at=2)"), [("GRD101", 13, 17)]),
    (FROZEN_PREDICTOR.replace("    def predict",
                              "    def tune(self):\n        self.model.unfreeze()\n\n    def predict"),
     [("GRD101", 16, 17)]),
    (FROZEN_BEFORE_A_LOOP, []),
    (FROZEN_BEFORE_A_LOOP.replace("    model.freeze()\n", ""), [("GRD101", 5, 4)]),
])
def test_a_frozen_model_builds_no_graph(source, expected):
    assert found(source) == expected


# An exercise template leaves blanks to fill in: ``model = ...`` makes ``model.parameters()``
# raise, and ``images, labels = ...`` raises too, so nothing after them runs.
EXERCISE_WITH_BLANKS = """
import torch
from torch import nn


def main(train_loader, test_loader):
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.2), nn.Linear(8, 2))
    model = ...
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    for epoch in range(3):
        for images, labels in train_loader:
            images, labels = ...
            loss = nn.functional.cross_entropy(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if epoch % 2:
                for images, labels in test_loader:
                    print(model(images).argmax(1))
    for images, labels in test_loader:
        print(model(images).argmax(1))
"""

FILLED_IN = (
    EXERCISE_WITH_BLANKS.replace("    model = ...\n", "    model = model.cuda()\n")
    .replace("images, labels = ...", "images, labels = images.cuda(), labels.cuda()")
)


@pytest.mark.parametrize("source, expected", [
    (EXERCISE_WITH_BLANKS, []),
    (FILLED_IN, [("GRD101", 18, 16), ("GRD101", 20, 4), ("GRD102", 18, 16), ("GRD102", 20, 4)]),
    # only the blank unpacking left: the loops after it in its block never run, the last one may
    (FILLED_IN.replace("images, labels = images.cuda(), labels.cuda()", "images, labels = ..."),
     [("GRD101", 20, 4), ("GRD102", 20, 4)]),
    # a loop after ``return`` in its block never runs; one after a ``return`` under ``if`` may
    (FILLED_IN.replace("    for images, labels in test_loader:\n        print",
                       "    return model\n    for images, labels in test_loader:\n        print"),
     [("GRD101", 18, 16), ("GRD102", 18, 16)]),
    (FILLED_IN.replace("    for images, labels in test_loader:\n        print",
                       "    if not test_loader:\n        return model\n"
                       "    for images, labels in test_loader:\n        print"),
     [("GRD101", 18, 16), ("GRD101", 22, 4), ("GRD102", 18, 16), ("GRD102", 22, 4)]),
])
def test_loops_after_an_exit_or_a_blank_never_run(source, expected):
    assert found(source) == expected


# A port to a framework that copies PyTorch's API: ``import torch`` only converts a checkpoint.
JITTOR_PORT = """
import jittor as jt
from jittor import nn


def test(model, loader, path):
    if path.endswith(".pth"):
        import torch
        jt.save(torch.load(path), "converted.pkl")
    model.load("converted.pkl")
    model.eval()
    for images, _ in loader:
        print(model(images).argmax(1))
"""


@pytest.mark.parametrize("source, expected", [
    (JITTOR_PORT, []),
    (JITTOR_PORT.replace("import jittor as jt\n", "import jittor as jt\nimport torch\n"), [("GRD101", 13, 4)]),
])
def test_a_port_to_another_framework(source, expected):
    assert found(source) == expected


# A spaCy pipeline scored in a loop: its models are thinc's, not PyTorch's.
SPACY_EVALUATION = """
import spacy
from spacy.scorer import Scorer


def evaluate(textcat, model, examples):
    scorer = Scorer(pipeline=model.pipeline)
    for text, gold in examples:
        scorer.score(textcat(model(text)), gold)
    return scorer.scores
"""


@pytest.mark.parametrize("source, expected", [
    (SPACY_EVALUATION, []),
    (SPACY_EVALUATION.replace("import spacy\n", "from thinc.api import Model\n"), []),
    (SPACY_EVALUATION.replace("import spacy\n", "import spacy\nimport torch\n"), [("GRD101", 9, 4)]),
])
def test_a_spacy_pipeline_is_not_pytorch(source, expected):
    assert found(source) == expected


# A network written from scratch in NumPy: its ``backward`` is its own, and no loss holds a graph.
NUMPY_NETWORK = """
import pickle

import numpy as np


class MSELossLayer:
    def __call__(self, pred, target):
        self._diff = pred - target
        return np.mean(self._diff ** 2)

    def backward(self):
        return 2 * self._diff / self._diff.size


class Trainer:
    def __init__(self, network):
        self.network = network
        self.loss_layer = MSELossLayer()

    def train(self, batches, lr):
        losses = []
        for x, y in batches:
            loss = self.loss_layer(self.network(x), y)
            grad_loss = self.loss_layer.backward()
            self.network.backward(grad_loss)
            self.network.update_params(lr)
            losses.append(loss)
        pickle.dump(losses, open("losses.pkl", "wb"))
"""


def all_found(source):
    return sorted((v.code, v.line, v.col) for v in check(textwrap.dedent(source), ALONE, filename="script.py"))


@pytest.mark.parametrize("imports, expected", [
    ("", []),
    ("import torch\n", [("GRD104", 29, 12)]),  # a PyTorch module: its losses are judged
    ("from .models import Net\n", [("GRD104", 29, 12)]),  # a module of its project may bring tensors
    ("import tensorflow as tf\n", []),
])
def test_a_numpy_network_with_its_own_backward_is_not_pytorch(imports, expected):
    assert all_found(imports + NUMPY_NETWORK) == expected
    # a class of its own named ``backward`` is what tells: without it, the module is judged
    plain = (imports or "\n") + NUMPY_NETWORK.replace("def backward(self)", "def gradient(self)")
    assert all_found(plain) == ([] if "tensorflow" in imports else [("GRD104", 29, 12)])


# The validation of a distillation script loads the teacher's pipeline and hands in only the
# student's ``unet`` (trained in training mode) and the ``vae``: loaded parts start in eval
# mode, and a diffusers unet or vae has no dropout or batch norm by default.
PIPELINE_WITH_THE_STUDENTS_UNET = """
import torch
from diffusers import StableDiffusionPipeline, UNet2DConditionModel


def log_validation(vae, unet, path, prompts):
    pipeline = StableDiffusionPipeline.from_pretrained(path, vae=vae, unet=unet, torch_dtype=torch.float16)
    pipeline = pipeline.to("cuda")
    images = []
    for prompt in prompts:
        images.append(pipeline(prompt, num_inference_steps=4).images[0])
    return images


def main(path, vae, loader, prompts, text_encoder):
    unet = UNet2DConditionModel.from_pretrained(path, subfolder="unet")
    unet.train()
    log_validation(vae, unet, path, prompts)
"""


@pytest.mark.parametrize("source, expected", [
    (PIPELINE_WITH_THE_STUDENTS_UNET, []),
    # a text encoder handed in may hold dropout
    (PIPELINE_WITH_THE_STUDENTS_UNET.replace("vae=vae, unet=unet,", "vae=vae, unet=unet, text_encoder=text_encoder,")
     .replace("def log_validation(vae, unet,", "def log_validation(vae, unet, text_encoder,")
     .replace("    log_validation(vae, unet,", "    log_validation(vae, unet, text_encoder,"), [("GRD102", 10, 4)]),
])
def test_a_pipeline_loaded_with_mode_free_parts(source, expected):
    assert found(source) == expected


# A deployment loop normalises observations with a module of buffers only, kept as
# ``self.obs_norm``, and runs its policy through ``act_inference``, decorated with ``no_grad``.
NORMALISED_DEPLOYMENT = """
import torch
from torch import nn


class RunningNorm(nn.Module):
    def __init__(self, size):
        super().__init__()
        self.register_buffer("mean", torch.zeros(size))
        self.register_buffer("var", torch.ones(size))

    def forward(self, x):
        return (x - self.mean) / self.var.sqrt()


class Policy(nn.Module):
    def __init__(self, size):
        super().__init__()
        self.net = nn.Linear(size, 4)

    @torch.no_grad()
    def act_inference(self, obs):
        return self.net(obs)


class Player:
    def __init__(self, size, device):
        self.model = Policy(size).to(device)
        self.obs_norm = RunningNorm(size).to(device)
        self.obs_norm.eval()

    def deploy(self, env):
        obs = env.reset()
        while True:
            action = self.model.act_inference(self.obs_norm(obs))
            obs = env.step(action)
"""


@pytest.mark.parametrize("source, expected", [
    (NORMALISED_DEPLOYMENT, []),
    # a parameter in the normaliser: its output carries a graph
    (NORMALISED_DEPLOYMENT.replace('self.register_buffer("var", torch.ones(size))',
                                   'self.var = nn.Parameter(torch.ones(size))'), [("GRD101", 34, 8)]),
])
def test_a_module_of_buffers_only_kept_as_an_attribute(source, expected):
    assert found(source) == expected


# A depth trainer's ``predict_poses`` runs the pose network in a loop; its result goes into the
# batch's outputs by ``outputs.update(...)``, the losses are computed from them, and the
# training loop backpropagates them: part of a training step's forward, named like inference.
POSES_INTO_THE_OUTPUTS = """
import torch


class Trainer:
    def __init__(self, models, optimizer):
        self.models = models
        self.optimizer = optimizer

    def predict_poses(self, inputs):
        outputs = {}
        for f_i in (-1, 1):
            outputs[("pose", f_i)] = self.models["pose"](torch.cat([inputs[0], inputs[f_i]], 1))
        return outputs

    def process_batch(self, inputs):
        outputs = {}
        pose_pred = self.predict_poses(inputs)
        outputs.update(pose_pred)
        losses = {"loss": sum(v.abs().mean() for v in outputs.values())}
        return outputs, losses

    def run_epoch(self, loader):
        for inputs in loader:
            outputs, losses = self.process_batch(inputs)
            self.optimizer.zero_grad()
            losses["loss"].backward()
            self.optimizer.step()
"""


@pytest.mark.parametrize("source, expected", [
    (POSES_INTO_THE_OUTPUTS, []),
    # the poses only logged: the loop computes them with grad for nothing
    (POSES_INTO_THE_OUTPUTS.replace("        outputs.update(pose_pred)\n", "        print(pose_pred)\n"),
     [("GRD101", 12, 8)]),
])
def test_a_result_put_into_a_container_that_feeds_the_loss(source, expected):
    assert found(source) == expected


# --- a branch that runs another framework's model ---------------------------

TWO_FRAMEWORK_PIPELINE = """
import torch


class TaggingPipeline:
    def __init__(self, model, tokenizer, framework):
        self.model = model
        self.tokenizer = tokenizer
        self.framework = framework

    def __call__(self, sentences):
        tags = []
        for sentence in sentences:
            tokens = self.tokenizer(sentence, return_tensors=self.framework)
            if self.framework == "tf":
                scores = self.model(tokens)[0].numpy()
            else:
                with torch.no_grad():
                    scores = self.model(**tokens)[0].cpu().numpy()
            tags.append(scores.argmax(-1))
        return tags
"""


@pytest.mark.parametrize("test, expected", [
    ('self.framework == "tf"', []),  # TensorFlow's model there: no graph of PyTorch's
    ('"jax" == self.framework', []),
    ('self.framework == "pt"', [("GRD101", 13, 8)]),
    ('self.mode == "tf"', [("GRD101", 13, 8)]),
])
def test_a_model_call_in_a_branch_for_another_framework_is_not_a_pytorch_forward(test, expected):
    source = TWO_FRAMEWORK_PIPELINE.replace('self.framework == "tf"', test)
    assert textwrap.dedent(source).splitlines()[12].strip() == "for sentence in sentences:"
    assert found(source) == expected


# --- an inference function whose inputs require grad on purpose --------------

RESIDUAL_PROBE = """
import torch


class ResidualProbe:
    def __init__(self, net, points, residual):
        self.net = net
        self.residual = residual
        self.points = torch.as_tensor(points)
        self.points.requires_grad_()

    def predict(self):
        self.net.eval()
        u = self.net(self.points)
        return self.residual(self.points, u).detach()
"""


@pytest.mark.parametrize("change, expected", [
    ("", []),  # derivatives of the outputs with respect to the inputs: grad is needed
    ("self.points.requires_grad_()", []),  # made to require grad in the function itself
    ("self.points.requires_grad = True", []),
    ("self.points.requires_grad_(False)", [("GRD101", 14, 12)]),
])
def test_an_inference_function_on_inputs_made_to_require_grad_is_not_reported(change, expected):
    source = RESIDUAL_PROBE
    if change:
        source = source.replace("        self.points.requires_grad_()\n", "")
        source = source.replace("        self.net.eval()\n", f"        self.net.eval()\n        {change}\n")
    assert textwrap.dedent(source).splitlines()[13].strip() == "u = self.net(self.points)"
    assert found(source) == expected


# A module function builds the encoder, freezes it and returns it (the rule's
# example); the loop runs the frozen encoder, which builds no graph.
FROZEN_BY_A_FACTORY = next(
    v.code for v in by_code("GRD101").VALID if v.title.startswith("A model a function of the module freezes")
)

# The class freezes a model in ``__init__`` and keeps it moved to a device.
FROZEN_THEN_MOVED = """
import torch
from torch import nn


class Scorer:
    def __init__(self, device):
        model = nn.Sequential(nn.Linear(8, 1))
        for param in model.parameters():
            param.requires_grad = False
        model.eval()
        self.model = model.to(device)

    def score_all(self, batches):
        scores = []
        for x in batches:
            scores.append(self.model(x).item())
        return scores
"""


@pytest.mark.parametrize("source, expected", [
    (FROZEN_BY_A_FACTORY, []),
    (FROZEN_BY_A_FACTORY.replace("param.requires_grad = False", "pass"), [("GRD101", 15, 4)]),
    # also bound to a model nobody froze: unknown
    (FROZEN_BY_A_FACTORY.replace("    features = []", "    if not batches:\n        encoder = torch.nn.Linear(4, 4)\n"
                                 "    features = []"), [("GRD101", 17, 4)]),
    (FROZEN_THEN_MOVED, []),
    (FROZEN_THEN_MOVED.replace("self.model = model.to(device)", "self.model = nn.Linear(8, 1).to(device)"),
     [("GRD101", 16, 8)]),
])
def test_a_model_frozen_by_a_factory_or_before_it_is_moved(source, expected):
    assert found(source) == expected


# An image-quality metric held in a module: the model runs under no_grad,
# and the metric of its output builds no graph.  A name that says nothing
# of a metric is taken for a model.
METRIC_MODULE = """
import torch
from torch import nn


class PSNR(nn.Module):
    def forward(self, sr, hr):
        return 10 * torch.log10(1 / torch.mean((sr - hr) ** 2))


def evaluate(model, pairs, device):
    model.eval()
    psnr = PSNR()
    psnr = psnr.to(device)
    total = 0.0
    for lr, hr in pairs:
        with torch.no_grad():
            sr = model(lr.to(device))
        total += psnr(sr, hr.to(device)).item()
    return total / len(pairs)
"""


# the metric module with a parameter of its own: then only its name says
# whether it is the model
WEIGHTED_METRIC = METRIC_MODULE.replace(
    "class PSNR(nn.Module):\n",
    "class PSNR(nn.Module):\n    def __init__(self):\n        super().__init__()\n        self.w = nn.Linear(1, 1)\n\n",
)


@pytest.mark.parametrize("source, expected", [
    (METRIC_MODULE, []),
    (WEIGHTED_METRIC, []),
    (WEIGHTED_METRIC.replace("psnr", "scorer"), [("GRD101", 20, 4)]),
    # a metric-learning network is a model
    (WEIGHTED_METRIC.replace("psnr", "metric_net"), [("GRD101", 20, 4)]),
    # without a parameter, no name makes it build a graph
    (METRIC_MODULE.replace("psnr", "metric_net"), []),
    # a name that says it holds a metric function
    (WEIGHTED_METRIC.replace("psnr", "metric_fn"), []),
    (WEIGHTED_METRIC.replace("psnr", "score_fn"), [("GRD101", 20, 4)]),
])
def test_a_metric_module_is_not_the_model(source, expected):
    assert found(source) == expected


# A prediction helper handed two modules (the rule's example, varied): the
# one it runs is its parameter ``net``; the other is only read
# (``scaler.scale``).  The model named is the argument bound to the
# parameter the helper calls.
TWO_MODULES_HANDED = next(
    v.code for v in by_code("GRD102").INVALID
    if v.title.startswith("A script runs its model through a prediction helper")
).replace("def predict_image(net, image):", "def predict_image(scaler, net, image):").replace(
    "return net(image)", "return net(image * scaler.scale)").replace(
    "net = Net()\n", "scaler = Net()\nscaler.scale = 2.0\nnet = Net()\n").replace(
    "predict_image(net, image)", "predict_image(scaler, net, image)")


def test_the_model_a_helper_runs_is_the_argument_bound_to_its_parameter():
    found = [(v.code, v.line, v.col, v.message) for v in check(TWO_MODULES_HANDED, ALONE, filename="script.py")
             if v.code in CODES]
    assert found == [(
        "GRD102", 23, 0,
        "evaluation loop runs `net` (through `predict_image()`) in training mode: nothing calls `.eval()` "
        "before it; call `net.eval()` before the loop",
    )]


# A linear probe trained on frozen features, then scored: its layers
# compute the same in both modes.
SEQUENTIAL_PROBE = """
import torch
from torch import nn
from torchvision import models

if __name__ == "__main__":
    resnet = models.resnet18(pretrained=True)
    resnet.fc = nn.Identity()
    train_loader, test_loader = torch.load("features.pt")
    probe = nn.Sequential(nn.Linear(512, 64), nn.ReLU(), nn.Linear(64, 10))
    probe = probe.to("cpu")
    optimizer = torch.optim.Adam(probe.parameters())
    for x, y in train_loader:
        optimizer.zero_grad()
        nn.functional.cross_entropy(probe(x), y).backward()
        optimizer.step()
    correct = 0
    for x, y in test_loader:
        correct += (probe(x).argmax(1) == y).sum().item()
    print(correct)
"""


@pytest.mark.parametrize("source, expected", [
    (SEQUENTIAL_PROBE, [("GRD101", 18, 4)]),
    (SEQUENTIAL_PROBE.replace("nn.ReLU()", "nn.Dropout(0.5)"), [("GRD101", 18, 4), ("GRD102", 18, 4)]),
])
def test_a_sequential_of_layers_the_same_in_both_modes(source, expected):
    assert found(source) == expected


# --- a script that stops at a name it never binds -------------------------------

# ``dataset.TensorDataset`` where the module binds no ``dataset``: running the
# script raises NameError there, before it evaluates anything.
STOPS_AT_A_NAME = """
import torch

model = torch.nn.Linear(4, 2)


def evaluate(loader):
    preds = []
    for x in loader:
        preds.append(model(x).argmax(1))
    return preds


train_set = dataset.TensorDataset(torch.randn(8, 4))
val_loader = [torch.randn(2, 4)]
evaluate(val_loader)
for x in val_loader:
    print(model(x).argmax(1))
"""


@pytest.mark.parametrize("old, new, expected", [
    ("", "", []),  # nothing after the NameError runs, and nothing calls ``evaluate`` before it
    ("dataset.TensorDataset", "torch.utils.data.TensorDataset", [("GRD101", 9, 4), ("GRD101", 17, 0)]),
    ("import torch\n", "import torch\nfrom torch.utils.data import *\n", [("GRD101", 10, 4), ("GRD101", 18, 0)]),
    ("train_set = dataset", "train_set = dataset if False else dataset", [("GRD101", 9, 4), ("GRD101", 17, 0)]),
    # ``evaluate`` runs, and so does a loop, before the module stops
    ("train_set = dataset", "evaluate([])\nval_loader = [torch.randn(2, 4)]\nfor x in val_loader:\n"
     "    print(model(x).argmax(1))\ntrain_set = dataset", [("GRD101", 9, 4), ("GRD101", 16, 0)]),
    # a class of the module built before the stop: its ``__init__`` runs, ``evaluate`` does not
    ("model = torch.nn.Linear(4, 2)\n", "class Net(torch.nn.Linear):\n    pass\n\n\nmodel = Net(4, 2)\n", []),
    # ... unless the class's code names it
    ("model = torch.nn.Linear(4, 2)\n",
     "class Net(torch.nn.Linear):\n    def check(self):\n        return evaluate([])\n\n\nmodel = Net(4, 2)\n",
     [("GRD101", 14, 4)]),
    # a name only a function binds, in its own scope: still unbound at the top
    ("import torch\n", "import torch\n\n\ndef setup():\n    dataset = torch.utils.data\n    return dataset\n", []),
    # ... but for a function declaring it global
    ("import torch\n", "import torch\n\n\ndef setup():\n    global dataset\n    dataset = torch.utils.data\n",
     [("GRD101", 14, 4), ("GRD101", 22, 0)]),
    # a name the top level binds only later, or in the very statement that reads it
    ("train_set = dataset.TensorDataset", "dataset = torch.utils.data\ntrain_set = dataset.TensorDataset",
     [("GRD101", 9, 4), ("GRD101", 18, 0)]),
    ("train_set = dataset.TensorDataset(torch.randn(8, 4))",
     "dataset = dataset.TensorDataset(torch.randn(8, 4))\ndataset = torch.utils.data", []),
])
def test_a_script_that_stops_at_a_name_it_never_binds_runs_nothing_after_it(old, new, expected):
    assert [f for f in found(STOPS_AT_A_NAME.replace(old, new)) if f[0] == "GRD101"] == expected


# --- an attack wrapper: its forward backpropagates to its input ------------------

# A robustness evaluation runs the model through a wrapper whose forward
# crafts adversarial inputs: it makes them require grad and calls
# ``.backward()`` on a loss, which raises under ``torch.no_grad()``.
ATTACK_WRAPPER = """
import torch


class Attack(torch.nn.Module):
    def __init__(self, basic_net, steps=3):
        super().__init__()
        self.basic_net = basic_net
        self.steps = steps

    def forward(self, inputs, targets):
        x = inputs.detach().clone()
        for _ in range(self.steps):
            x.requires_grad_()
            loss = torch.nn.functional.cross_entropy(self.basic_net(x), targets)
            loss.backward()
            x = (x + 0.01 * x.grad.sign()).detach()
        return self.basic_net(x)


def test(basic_net, test_loader):
    net = Attack(basic_net)
    correct = 0
    for inputs, targets in test_loader:
        correct += (net(inputs, targets).argmax(1) == targets).sum().item()
    return correct
"""


@pytest.mark.parametrize("old, new, expected", [
    ("", "", []),  # evaluating under attack needs grad
    ("            x.requires_grad_()\n", "", [("GRD101", 23, 4)]),  # no input gradient: a plain backward
    ("            loss.backward()\n", "", [("GRD101", 23, 4)]),  # asks for grad, never backpropagates
    ("x.requires_grad_()", "x.requires_grad = True", []),
])
def test_an_attack_wrapper_whose_forward_backpropagates_needs_grad(old, new, expected):
    assert [f for f in found(ATTACK_WRAPPER.replace(old, new)) if f[0] == "GRD101"] == expected


# ``main()`` reads ``arg.test`` where only ``args`` is bound: it raises
# NameError there, and its evaluation loop never runs.
MAIN_READS_A_TYPO = """
import argparse

import torch


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--test", action="store_true")
    args = parser.parse_args()
    model = torch.nn.Linear(4, 2)
    if arg.test:
        model.load_state_dict(torch.load("model.pt"))
    test_loader = [torch.randn(2, 4)]
    for x in test_loader:
        print(model(x).argmax(1))


if __name__ == "__main__":
    main()
"""

#: The same, with the evaluation inside the ``if`` whose test raises.
MAIN_TESTS_A_TYPO = MAIN_READS_A_TYPO.replace(
    """        model.load_state_dict(torch.load("model.pt"))
    test_loader = [torch.randn(2, 4)]
    for x in test_loader:
        print(model(x).argmax(1))
""", """        test_loader = [torch.randn(2, 4)]
        for x in test_loader:
            print(model(x).argmax(1))
""")


@pytest.mark.parametrize("source, expected", [
    (MAIN_READS_A_TYPO, []),
    (MAIN_READS_A_TYPO.replace("if arg.test:", "if args.test:"), [("GRD101", 15, 4)]),
    # the name read is bound somewhere in the module (here: another function's parameter)
    (MAIN_READS_A_TYPO.replace("def main():", "def show(arg):\n    print(arg)\n\n\ndef main():"),
     [("GRD101", 19, 4)]),
    (MAIN_TESTS_A_TYPO, []),
    (MAIN_TESTS_A_TYPO.replace("if arg.test:", "if args.test:"), [("GRD101", 14, 8)]),
])
def test_a_function_that_reads_a_name_bound_nowhere_stops_there(source, expected):
    assert [f for f in found(source) if f[0] == "GRD101"] == expected


# --- a function of another framework in a module of experiments -----------------

# A module gathering experiments in two frameworks imports each inside the
# function that uses it: the Keras evaluation runs no torch model.
TWO_FRAMEWORKS = """
def evaluate_keras(test_batches):
    import tensorflow as tf

    model = tf.keras.models.load_model("gnn.keras")
    scores = []
    for x in test_batches:
        scores.append(model(x).numpy())
    return scores


def evaluate_torch(test_batches):
    import torch

    model = torch.load("cnn.pt")
    scores = []
    for x in test_batches:
        scores.append(model(x).detach().numpy())
    return scores
"""


@pytest.mark.parametrize("old, new, expected", [
    ("", "", [("GRD101", 17, 4)]),  # the Keras loop is left alone, the torch one is not
    # a function that also uses torch (a logger of TensorFlow's beside a torch model) is torch code
    ("    scores = []\n    for x in test_batches:\n        scores.append(model(x).numpy())",
     "    scores = []\n    for x in test_batches:\n        scores.append(model(torch.as_tensor(x)).numpy())",
     "torch-at-top"),
])
def test_a_function_that_imports_another_framework_runs_its_models(old, new, expected):
    source = TWO_FRAMEWORKS.replace(old, new)
    if expected == "torch-at-top":
        source, expected = "import torch\n" + source, [("GRD101", 8, 4), ("GRD101", 18, 4)]
    assert [f for f in found(source) if f[0] == "GRD101"] == expected


# --- test-time adaptation: the model's forward trains it under enable_grad ------

# A wrapper adapts the model on every test batch: its forward calls a
# function decorated with ``@torch.enable_grad()`` that backpropagates an
# entropy loss and steps an optimizer. Evaluating it is training it.
TEST_TIME_ADAPTATION = """
import torch


@torch.enable_grad()
def forward_and_adapt(x, model, optimizer):
    outputs = model(x)
    loss = -(outputs.softmax(1) * outputs.log_softmax(1)).sum(1).mean()
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    return outputs


class Adapter(torch.nn.Module):
    def __init__(self, model, optimizer):
        super().__init__()
        self.model = model
        self.optimizer = optimizer

    def forward(self, x):
        return forward_and_adapt(x, self.model, self.optimizer)


def evaluate(model, test_loader):
    adapt_model = Adapter(model, torch.optim.SGD(model.parameters(), lr=0.001))
    correct = 0
    for x, y in test_loader:
        correct += (adapt_model(x).argmax(1) == y).sum().item()
    return correct
"""


#: The same, with the adapting step a method of the wrapper.
ADAPTING_METHOD = """
import torch


class Adapter(torch.nn.Module):
    def __init__(self, model, optimizer):
        super().__init__()
        self.model = model
        self.optimizer = optimizer

    @torch.enable_grad()
    def forward_and_adapt(self, x):
        outputs = self.model(x)
        (-(outputs.softmax(1) * outputs.log_softmax(1)).sum(1).mean()).backward()
        self.optimizer.step()
        self.optimizer.zero_grad()
        return outputs

    def forward(self, x):
        return self.forward_and_adapt(x)
""" + TEST_TIME_ADAPTATION[TEST_TIME_ADAPTATION.index("\n\ndef evaluate"):]


@pytest.mark.parametrize("source, expected", [
    (TEST_TIME_ADAPTATION, []),
    # without the decorator the function is an ordinary helper: nothing says the forward adapts
    (TEST_TIME_ADAPTATION.replace("@torch.enable_grad()\n", ""), [("GRD101", 27, 4)]),
    (ADAPTING_METHOD, []),
    (ADAPTING_METHOD.replace("    @torch.enable_grad()\n", ""), [("GRD101", 25, 4)]),
])
def test_a_model_that_adapts_itself_under_enable_grad_needs_grad(source, expected):
    assert [f for f in found(source) if f[0] == "GRD101"] == expected


# Meta-learning evaluation: each task adapts a clone on its support set
# (``learner.adapt(error)`` differentiates the error), or a meta-learner
# adapts the parameters, before the query set is scored.
META_TEST = """
import torch


def evaluate(maml, model, tasks, loss_fn, steps=5):
    total = 0.0
    for x_spt, y_spt, x_qry, y_qry in tasks:
        learner = maml.clone()
        for _ in range(steps):
            error = loss_fn(learner(model.encoder(x_spt)), y_spt)
            learner.adapt(error)
        total += loss_fn(learner(model.encoder(x_qry)), y_qry).item()
    return total / len(tasks)


def evaluate_tasks(meta_learner, model, tasks, loss_fn):
    total = 0.0
    for support, x_qry, y_qry in tasks:
        adapted = meta_learner.adapt(support)
        total += loss_fn(model.encoder(x_qry, params=adapted), y_qry).item()
    return total / len(tasks)
"""


@pytest.mark.parametrize("source, expected", [
    (META_TEST, []),
    # ``adapt`` of what names no loss, on what names no learner: nothing says it differentiates
    (META_TEST.replace("learner.adapt(error)", "learner.adapt(x_spt)").replace(
        "meta_learner", "learner").replace("learner", "augmenter"), [("GRD101", 7, 4), ("GRD101", 18, 4)]),
])
def test_a_meta_learners_adaptation_inside_the_loop_needs_grad(source, expected):
    assert [f for f in found(source) if f[0] == "GRD101"] == expected


# The training script of a pix2pix-style template: the model object runs its
# own step, ``model.optimize_parameters()`` (backward and optimizer steps).
TEMPLATE_TRAINING = """
import torch

from models import create_model


def train(config, dataset):
    model = create_model(config)
    for epoch in range(config.epochs):
        for data in dataset:
            model.set_input(data)
            model.forward()
            model.optimize_parameters()
            print(model.get_current_losses())
        torch.save(model.state_dict(), "last.pt")


if __name__ == "__main__":
    train(None, [])
"""


@pytest.mark.parametrize("source, expected", [
    (TEMPLATE_TRAINING, []),
    (TEMPLATE_TRAINING.replace("model.optimize_parameters()", "model.compute_visuals()"), [("GRD101", 10, 8)]),
])
def test_a_loop_that_calls_optimize_parameters_trains(source, expected):
    assert [f for f in found(source) if f[0] == "GRD101"] == expected


WARM_UP = """
import torch


def load(shape, device):
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4)).to(device)
    model.eval()
    for _ in range(3):
        data = torch.randn(shape).to(device)
        _ = model(data)
    return model


def predict(model, images):
    model.eval()
    return [model(x).argmax(1) for x in images]
"""


@pytest.mark.parametrize("source, expected", [
    (WARM_UP, [("GRD101", 16, 12)]),  # ``predict`` runs the model with grad: reported
    # the outputs are read: an evaluation of random inputs, for whatever it is worth
    (WARM_UP.replace("_ = model(data)", "print(model(data).mean())"), [("GRD101", 8, 4), ("GRD101", 16, 12)]),
    # real inputs: the loop runs the model over data, whatever it does with the outputs
    (WARM_UP.replace("torch.randn(shape).to(device)", "next(loader)").replace("(shape, device)", "(loader, device)"),
     [("GRD101", 8, 4), ("GRD101", 16, 12)]),
    # a loop over a count from elsewhere is no fixed warm-up
    (WARM_UP.replace("range(3)", "range(n)"), [("GRD101", 8, 4), ("GRD101", 16, 12)]),
    # the random input made once, before the loop
    (WARM_UP.replace("    for _ in range(3):\n        data = torch.randn(shape).to(device)\n",
                     "    data = torch.randn(shape).to(device)\n    for _ in range(3):\n"), [("GRD101", 16, 12)]),
    # ... but bound again to real data in the function: no warm-up
    (WARM_UP.replace("    for _ in range(3):\n        data = torch.randn(shape).to(device)\n",
                     "    data = torch.randn(shape).to(device)\n    data = shape\n    for _ in range(3):\n"),
     [("GRD101", 10, 4), ("GRD101", 17, 12)]),
])
def test_a_warm_up_over_random_inputs_is_no_evaluation(source, expected):
    assert [f for f in found(source) if f[0] == "GRD101"] == expected


# A validation loop whose body reads ``mask`` where only ``x_mask`` is bound:
# its first pass raises NameError, so no second batch ever builds a graph.
FIRST_PASS_RAISES = """
import torch


def validate(model, batches):
    total = 0.0
    for x, y, x_mask in batches:
        y_hat = model(x, x_mask)
        total += accuracy(y_hat, y, mask)
    return total


def accuracy(y_hat, y, x_mask):
    return ((y_hat.argmax(-1) == y) * x_mask).float().mean().item()
"""


@pytest.mark.parametrize("source, expected", [
    (FIRST_PASS_RAISES, []),
    (FIRST_PASS_RAISES.replace("accuracy(y_hat, y, mask)", "accuracy(y_hat, y, x_mask)"), [("GRD101", 7, 4)]),
    # under an ``if``, the read may never happen
    (FIRST_PASS_RAISES.replace("        total += accuracy(y_hat, y, mask)",
                               "        if y is not None:\n            total += accuracy(y_hat, y, mask)"),
     [("GRD101", 7, 4)]),
    # another function binds ``mask`` as its own local: ``validate`` still has none
    (FIRST_PASS_RAISES + "\n\ndef masks(batches):\n    return [mask for _, _, mask in batches]\n", []),
    (FIRST_PASS_RAISES + "\n\ndef masks(batches):\n    for _, _, mask in batches:\n        pass\n", []),
    # ... unless it declares it ``global``: ``validate`` may then find it
    (FIRST_PASS_RAISES + "\n\ndef masks(batches):\n    global mask\n    mask = batches[0][2]\n",
     [("GRD101", 7, 4)]),
])
def test_a_loop_whose_first_pass_reads_a_name_bound_nowhere_runs_one_batch(source, expected):
    assert [f for f in found(source) if f[0] == "GRD101"] == expected


# an encoder of an embedding and a GRU beside a decoder with dropout: the
# module shows the mode matters, but not for the encoder
SEQ2SEQ = """
import torch
from torch import nn


class EncoderRNN(nn.Module):
    def __init__(self, vocab, hidden):
        super().__init__()
        self.embedding = nn.Embedding(vocab, hidden)
        self.gru = nn.GRU(hidden, hidden)

    def forward(self, token, state):
        return self.gru(self.embedding(token).view(1, 1, -1), state)


class Decoder(nn.Module):
    def __init__(self, vocab, hidden):
        super().__init__()
        self.dropout = nn.Dropout(0.1)
        self.out = nn.Linear(hidden, vocab)

    def forward(self, state):
        return self.out(self.dropout(state))


def evaluate(encoder: EncoderRNN, decoder: Decoder, tokens, state):
    with torch.no_grad():
        for token in tokens:
            output, state = encoder(token, state)
        for _ in range(10):
            state = decoder(state)
    return state


encoder, decoder = EncoderRNN(100, 8), Decoder(100, 8)
optimizer = torch.optim.SGD([*encoder.parameters(), *decoder.parameters()], lr=0.1)
for token, target in torch.load("pairs.pt"):
    optimizer.zero_grad()
    output, state = encoder(token, torch.zeros(1, 1, 8))
    nn.functional.cross_entropy(decoder(state)[0], target).backward()
    optimizer.step()
print(evaluate(encoder, decoder, torch.load("tokens.pt"), torch.zeros(1, 1, 8)))
"""


@pytest.mark.parametrize("change, expected", [
    ((), [("GRD102", 30, 8)]),  # only the decoder's loop
    (("nn.GRU(hidden, hidden)", "nn.GRU(hidden, hidden, num_layers=2, dropout=0.2)"),
     [("GRD102", 28, 8), ("GRD102", 30, 8)]),
    (("nn.GRU(hidden, hidden)", "nn.GRU(hidden, hidden, dropout=0)"), [("GRD102", 30, 8)]),
    (("nn.GRU(hidden, hidden)", "nn.GRU(hidden, hidden, 2, True, False, 0.2)"),
     [("GRD102", 28, 8), ("GRD102", 30, 8)]),
    (("nn.GRU(hidden, hidden)", "nn.Sequential(nn.BatchNorm1d(hidden))"), [("GRD102", 28, 8), ("GRD102", 30, 8)]),
    (("return self.gru(", "return self.training, self.gru("), [("GRD102", 28, 8), ("GRD102", 30, 8)]),
    (("encoder: EncoderRNN", "encoder"), [("GRD102", 28, 8), ("GRD102", 30, 8)]),  # no class known
    (("class EncoderRNN(nn.Module)", "class EncoderRNN(Decoder)"), [("GRD102", 28, 8), ("GRD102", 30, 8)]),
    # the decoder registers a dropout that its forward never runs
    (("self.out(self.dropout(state))", "self.out(state)"), []),
    (("self.out(self.dropout(state))", "self.out(getattr(self, 'dropout')(state))"), [("GRD102", 30, 8)]),
    (("self.out(self.dropout(state))", "self.out([*self.children()][0](state))"), [("GRD102", 30, 8)]),
    (("self.out(self.dropout(state))", "self.out(state), self.dropout"), [("GRD102", 30, 8)]),
])
def test_a_loop_running_only_a_mode_free_class_of_a_module_with_dropout(change, expected):
    source = SEQ2SEQ.replace(*change) if change else SEQ2SEQ
    assert found(source) == expected


# a decoder module that holds nothing but settings, fed a model's
# predictions made under no_grad
STATELESS_DECODER = """
import torch
from torch import nn


class DecodeHeatmaps(nn.Module):
    def __init__(self, input_size, threshold):
        super().__init__()
        self.scale = input_size / 64
        self.threshold = threshold

    def forward(self, heatmaps):
        peaks = self.peaks(torch.sigmoid(heatmaps))
        return peaks * self.scale

    def peaks(self, heatmaps):
        return (heatmaps > self.threshold).nonzero().float()


def predict(model, loader):
    model.eval()
    decoder = DecodeHeatmaps(256, 0.5)
    joints = []
    for images in loader:
        with torch.no_grad():
            heatmaps = model(images)
        joints.append(decoder(heatmaps).cpu().numpy())
    return joints
"""


@pytest.mark.parametrize("changes, expected", [
    ((), []),
    # a module handed in, stored and called holds whatever parameters it has
    ((("self.threshold = threshold", "self.threshold = threshold\n        self.head = head"),
      ("def __init__(self, input_size, threshold)", "def __init__(self, input_size, threshold, head)"),
      ("DecodeHeatmaps(256, 0.5)", "DecodeHeatmaps(256, 0.5, model)"),
      ("return peaks * self.scale", "return self.head.refine(peaks) * self.scale")),
     [("GRD101", 28, 22)]),
    # stored under a model's name: taken for one, called or not
    ((("self.threshold = threshold", "self.threshold = threshold\n        self.head = head"),
      ("def __init__(self, input_size, threshold)", "def __init__(self, input_size, threshold, head)"),
      ("DecodeHeatmaps(256, 0.5)", "DecodeHeatmaps(256, 0.5, model)")),
     [("GRD101", 28, 22)]),
    ((("self.threshold = threshold", "self.threshold = nn.Parameter(torch.tensor(threshold))"),), [("GRD101", 24, 4)]),
])
def test_a_module_holding_only_settings_runs_without_a_graph(changes, expected):
    source = STATELESS_DECODER
    for change in changes:
        source = source.replace(*change)
    assert [f for f in found(source) if f[0] == "GRD101"] == expected


# a trainer whose base class keeps a settings-only metric module as
# ``self.metric``; the derived trainer's validation runs the model under
# no_grad and the metric outside it
INHERITED_METRIC = """
import torch
from torch import nn


class EdgeScore(nn.Module):
    def __init__(self, cut=0.5):
        super().__init__()
        self.cut = cut

    def __call__(self, target, pred):
        hits = ((pred > self.cut) == (target > self.cut)).float()
        return hits.mean()


class Trainer:
    def __init__(self, net):
        self.net = net
        self.metric = EdgeScore(cut=0.5)


class FinetuneTrainer(Trainer):
    def validate(self, loader):
        scores = []
        for image, edge in loader:
            with torch.no_grad():
                pred = self.net(image)
            scores.append(self.metric(edge, pred).item())
        return scores
"""


@pytest.mark.parametrize("change, expected", [
    (None, []),
    # the base keeps a module with a parameter there: its output has a graph
    (("        self.cut = cut\n", "        self.cut = cut\n        self.scale = nn.Linear(1, 1)\n"),
     [("GRD101", 26, 8)]),
])
def test_a_settings_only_module_kept_by_the_base_class_runs_without_a_graph(change, expected):
    source = INHERITED_METRIC.replace(*change) if change else INHERITED_METRIC
    assert [f for f in found(source) if f[0] == "GRD101"] == expected


# a model run layer by layer: inside a loop over batches, as an ensemble
# (each model on the batch), or as one pass through a chain of models
LAYER_BY_LAYER = """
import torch


def predict(net, loader):
    net.eval()
    outs = []
    for x in loader:
        for layer in net:
            x = layer(x)
        outs.append(x.argmax(1))
    return outs


def ensemble(nets, x):
    for net in nets:
        net.eval()
    scores = []
    for net in nets:
        scores.append(net(x).softmax(1))
    return scores


def chained(nets, x):
    for net in nets:
        net.eval()
    for net in nets:
        x = net(x)
    return x.argmax(1)
"""


def test_a_pass_through_layers_is_one_forward_and_a_loop_around_it_is_the_batches():
    # the batches are the loop reported; a chain of models is one pass, an ensemble is not
    assert [f for f in found(LAYER_BY_LAYER) if f[0] == "GRD101"] == [("GRD101", 8, 4), ("GRD101", 19, 4)]
    # fed something else than what the layer before made: a model per item, each on its own input
    source = LAYER_BY_LAYER.replace("        x = net(x)\n    return x", "        y = net(x)\n    return y")
    assert [f for f in found(source) if f[0] == "GRD101"] == [("GRD101", 8, 4), ("GRD101", 19, 4), ("GRD101", 27, 4)]


# a model file's own timing check: CUDA events around each forward, the last
# output's shapes printed after the loop
TIMED_WITH_EVENTS = """
import torch
from torch import nn

net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8))
net.eval()
for i in range(10):
    image = torch.randn(1, 3, 64, 64)
    start = torch.cuda.Event(enable_timing=True)
    end = torch.cuda.Event(enable_timing=True)
    start.record()
    out = net(image)
    end.record()
    torch.cuda.synchronize()
    print("forward took {} ms".format(start.elapsed_time(end)))
print(out.shape, out.size(1), len(out))
"""


@pytest.mark.parametrize("change, expected", [
    (None, []),
    # the values of the last output read after the loop: a prediction
    (("print(out.shape, out.size(1), len(out))", "print(out.argmax(1))"), [("GRD101", 7, 0)]),
])
def test_a_timing_loop_whose_last_output_only_shows_its_shape(change, expected):
    source = TIMED_WITH_EVENTS.replace(*change) if change else TIMED_WITH_EVENTS
    assert [f for f in found(source) if f[0] == "GRD101"] == expected


# an exported network checked against its ONNX Runtime session: the name of
# the torch model is bound again to a lambda over the session, and a plain
# class wraps a session for a sampling function
EXPORTED = """
import onnxruntime
import torch

model = torch.jit.load("net.pt")
model.eval()
inputs = [torch.randn(1, 3, 32, 32) for _ in range(5)]
torch.onnx.export(model, inputs[0], "net.onnx")
session = onnxruntime.InferenceSession("net.onnx")
model = lambda x: session.run(None, {"input": x.numpy()})[0]
outputs = []
for x in inputs:
    outputs.append(model(x))


class Exported:
    def __init__(self, path):
        self.session = onnxruntime.InferenceSession(path)

    def eval(self):
        pass

    def __call__(self, x):
        return self.session.run(None, {"input": x.numpy()})[0]


def sample(path, batches):
    generator = Exported(path)
    generator.eval()
    return [generator(z) for z in batches] + [generator(z) for z in batches]
"""


@pytest.mark.parametrize("change, expected", [
    (None, []),
    # run by something that is no session of another runtime
    (("model = lambda x: session.run(", "model = lambda x: runner.run("), [("GRD101", 12, 0)]),
    # a class of another base may be a torch module
    (("class Exported:", "class Exported(Base):"), [("GRD101", 30, 12)]),
])
def test_a_model_run_by_onnx_runtime_builds_no_graph(change, expected):
    source = EXPORTED.replace(*change) if change else EXPORTED
    assert [f for f in found(source) if f[0] == "GRD101"] == expected


LOWER_CASE_MODULE_CLASS = """
import torch
from torch import nn


class muNet(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.fc = nn.Linear(4, width)

    def forward(self, x):
        return self.fc(x)


def evaluate_widths(x):
    stats = {}
    for width in [64, 128, 256]:
        model = muNet(width)
        with torch.no_grad():
            out = model(x)
        stats[width] = out.std().item()
    return stats


print(evaluate_widths(torch.randn(2, 4)))
"""


def test_building_a_module_class_named_in_lower_case_is_no_forward():
    assert found(LOWER_CASE_MODULE_CLASS) == []
    # the forward itself outside no_grad is
    source = LOWER_CASE_MODULE_CLASS.replace("        with torch.no_grad():\n            out", "        out")
    assert found(source) == [("GRD101", 17, 4)]


EVAL_IN_THE_STEP = """
import torch
from torch import nn


def compute_loss(model, x, training):
    return model(x, training).pow(2).mean()


def train_step(model, optimizer, x):
    model.train()
    optimizer.zero_grad()
    compute_loss(model, x, True).backward()
    optimizer.step()


def val_step(model, x):
    {switch}
    return compute_loss(model, x, False)


def fit(model, optimizer, train_data, val_data, epochs):
    net = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.2))
    for epoch in range(epochs):
        for x in train_data:
            train_step(model, optimizer, x)
        for x in val_data:
            print(val_step(model, x).item())
"""


@pytest.mark.parametrize("switch, expected", [
    # the step switches to eval mode itself before the function that runs the model
    ("model.eval()", [("GRD101", 27, 8)]),
    # nothing does
    ("pass", [("GRD101", 27, 8), ("GRD102", 27, 8)]),
])
def test_a_validation_step_switching_to_eval_before_its_loss_helper(switch, expected):
    assert found(EVAL_IN_THE_STEP.format(switch=switch)) == expected


PHASE_BRANCHES = """
import torch
import torch.nn.functional as F


def fit(model, loaders, optimizer):
    for phase in ["train", "val"]:
        model.train() if phase == "train" else model.eval()
        for x, y in loaders[phase]:
            if phase == "train":
                optimizer.zero_grad()
                loss = F.cross_entropy(model(x), y)
                loss.backward()
                optimizer.step()
            else:
{evaluation}
"""


@pytest.mark.parametrize("evaluation, expected", [
    # the training branch's forward runs in the training phase only; the other one under no_grad
    ("                with torch.no_grad():\n                    loss = F.cross_entropy(model(x), y)", []),
    # the evaluation branch's own forward with grad on
    ("                loss = F.cross_entropy(model(x), y)", [("GRD101", 9, 8)]),
])
def test_a_phase_loop_whose_forwards_sit_in_the_branches_of_their_phase(evaluation, expected):
    assert found(PHASE_BRANCHES.format(evaluation=evaluation)) == expected


ELBO_OF_SAMPLES = """
import torch


class Variational:
    def __init__(self, model, dist):
        self.model = model
        self.dist = dist

    def compute_elbo(self, x, y, n_samples):
        self.model.eval()
        elbo = 0
        for s in range(n_samples):
            weights = self.dist.rsample()
            elbo = elbo + self.model(x, weights).log_softmax(1).gather(1, y).mean()
        return elbo / n_samples

    def optimize(self, x, y, optimizer, steps):
        for _ in range(steps):
            optimizer.zero_grad()
            elbo = self.compute_elbo(x, y, 10)
            {use}
            optimizer.step()
"""


@pytest.mark.parametrize("use, expected", [
    # the caller backpropagates what the loop sums up: it needs grad
    ("(-elbo).backward()", []),
    # the caller only prints it
    ("print(elbo.item())", [("GRD101", 13, 8)]),
    # the loop sums numbers: what the caller runs backward on holds no graph of its forwards
    ("(-elbo).backward()", [("GRD101", 13, 8)]),
])
def test_a_loop_summing_what_its_function_returns_to_a_backward(use, expected):
    source = ELBO_OF_SAMPLES.format(use=use)
    if expected and "backward" in use:
        source = source.replace(".gather(1, y).mean()", ".gather(1, y).mean().item()")
    assert found(source) == expected


ONE_STEP_OF_A_SEQ2SEQ = """
import torch
from torch import nn


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.cell = nn.LSTMCell(4, 4)
        self.drop = nn.Dropout(0.3)

    def forward(self, x, h, c):
        return self.cell(self.drop(x), (h, c))


def eval_training(encoder, decoder, criterion, optimizer, batch, target):
    states = {0: {1: torch.zeros(2, 4), 2: torch.zeros(2, 4)}}
    for i in range(batch.size(1)):
        states[i + 1] = {}
        states[i + 1][1], states[i + 1][2] = encoder(batch[:, i], states[i][1], states[i][2])
    last = states[batch.size(1)][1]
    loss = 0
    for i in range(target.size(1)):
        loss += criterion(decoder(last), target[:, i])
    {step}
    return loss
"""


@pytest.mark.parametrize("step, expected", [
    # the function is one training step: its loops build what it backpropagates
    ("loss.backward()\n    optimizer.step()", []),
    # nothing is backpropagated: the loops evaluate
    ("loss = loss.item()", [("GRD101", 18, 4), ("GRD101", 23, 4)]),
])
def test_loops_building_what_their_function_backpropagates_after_them(step, expected):
    assert found(ONE_STEP_OF_A_SEQ2SEQ.replace("{step}", step)) == expected


# the decoder unpacks its prediction and its next state: ``pred`` reaches the loss
UNPACKING_DECODER = ONE_STEP_OF_A_SEQ2SEQ.replace(
    "        loss += criterion(decoder(last), target[:, i])",
    "        pred, last = decoder(last)\n        loss += criterion(pred, target[:, i])",
)


@pytest.mark.parametrize("step, expected", [
    ("loss.backward()\n    optimizer.step()", []),
    ("loss = loss.item()", [("GRD101", 18, 4), ("GRD101", 23, 4)]),
    # unpacked after the step: that value never reaches it
    ("loss.backward()\n    optimizer.step()\n    for i in range(3):\n        pred, last = decoder(last)",
     [("GRD101", 28, 4)]),
])
def test_loops_building_what_their_function_backpropagates_through_an_unpacked_value(step, expected):
    assert found(UNPACKING_DECODER.replace("{step}", step)) == expected


# a frozen encoder's helper sets its own model's mode; the decoder is switched
# in the loop body, right before its call
SWITCHED_IN_THE_BODY = """
import torch
from torch import nn


class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.1))

    def forward(self, x):
        return self.net(x)


def encode(encoder, audio):
    with torch.no_grad():
        encoder.eval()
        return encoder(audio)


def validate(loader, encoder, decoder):
    losses = []
    for audio in loader:
        latent = encode(encoder, audio)
        {switch}
        losses.append(decoder(latent).sum().item())
    return losses


def train(loader, encoder):
    decoder = Decoder()
    optimizer = torch.optim.SGD(decoder.parameters(), lr=0.1)
    for audio in loader:
        latent = encode(encoder, audio)
        decoder.train()
        optimizer.zero_grad()
        decoder(latent).sum().backward()
        optimizer.step()
        print(validate(loader=loader, encoder=encoder, decoder=decoder))
"""


@pytest.mark.parametrize("switch, expected", [
    ("decoder.eval()", []),
    ("encoder.eval()", [("GRD102", 23, 4)]),  # another model's switch
    ("decoder.eval()\n        decoder.train()", [("GRD102", 23, 4)]),
])
def test_a_model_switched_to_eval_in_the_loop_body_after_a_helper(switch, expected):
    source = SWITCHED_IN_THE_BODY.replace("{switch}", switch)
    assert [f for f in found(source) if f[0] == "GRD102"] == expected


# a model switched to eval mode where it is built, through the calls that
# return it
BUILT_IN_EVAL = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.2))

    def forward(self, x):
        return self.body(x)


def predict(loader):
    model = Net().to("cpu").eval()
    model.load_state_dict(torch.load("model.pt"))
    out = []
    for x in loader:
        with torch.no_grad():
            out += model(x).tolist()
    return out
"""


@pytest.mark.parametrize("built, expected", [
    ("Net().to('cpu').eval()", []),
    ("Net().eval().cuda()", []),
    ("Net().to('cpu')", [("GRD102", 19, 4)]),
    ("Net().eval().train()", [("GRD102", 19, 4)]),  # switched back in the chain
])
def test_a_model_switched_to_eval_where_it_is_built(built, expected):
    source = BUILT_IN_EVAL.replace("Net().to(\"cpu\").eval()", built)
    assert [f for f in found(source) if f[0] == "GRD102"] == expected


# An Ultralytics model: calling it runs its predictor, which disables grad itself.
ULTRALYTICS_TRACKER = """
import numpy as np
from ultralytics import YOLO


class Tracker:
    def __init__(self, weights="yolov8n.pt"):
        self.model = YOLO(weights)

    def __call__(self, image_paths):
        boxes = []
        for path in image_paths:
            boxes.append(self.model(path)[0].boxes.data.cpu().numpy())
        return np.concatenate(boxes)
"""


@pytest.mark.parametrize("built, expected", [
    ("YOLO(weights)", []),
    ("RTDETR(weights)", []),
    # the network inside is a plain ``nn.Module``: its call builds a graph
    ("YOLO(weights).model.eval()", [("GRD101", 12, 8)]),
])
def test_an_ultralytics_model_predicts_under_its_own_inference_mode(built, expected):
    source = ULTRALYTICS_TRACKER.replace("YOLO(weights)", built).replace("import YOLO", "import RTDETR, YOLO")
    assert found(source) == expected


# --- precision: code after a statement that never completes never runs -------

STOPPED_SCRIPT = """
import sys

import torch

if __name__ == "__main__":
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))
    print(model)
    {stop}
    model.eval()
    test_loader = [torch.randn(8, 4)]
    preds = []
    for x in test_loader:
        preds.append(model(x))
"""


@pytest.mark.parametrize("stop", ["exit()", "sys.exit(0)", "quit()", "raise SystemExit"])
def test_a_loop_after_the_script_exits_is_not_reported(stop):
    assert found(STOPPED_SCRIPT.format(stop=stop)) == []


def test_a_loop_after_a_call_that_returns_is_reported():
    assert found(STOPPED_SCRIPT.format(stop="print()")) == [("GRD101", 13, 4)]


def test_a_return_in_a_branch_before_the_loop_does_not_stop_it():
    source = """
    import torch


    def evaluate(model, loader, quick=False):
        model.eval()
        if quick:
            return None
        preds = []
        for x in loader:
            preds.append(model(x))
        return preds
    """
    assert found(source) == [("GRD101", 10, 4)]


def test_a_loop_after_a_return_in_its_own_block_is_not_reported():
    source = """
    import torch


    def evaluate(model, loader):
        model.eval()
        return None
        preds = []
        for x in loader:
            preds.append(model(x))
        return preds
    """
    assert found(source) == []


# --- precision: loops that craft their inputs with an attack package ---------

ATTACKED = """
import torch
{imports}


def robust_accuracy(net, loader, adversary):
    net.eval()
    correct = 0
    for x, y in loader:
        x_adv = {craft}
        correct += (net(x_adv).argmax(1) == y).sum().item()
    return correct
"""


@pytest.mark.parametrize("imports, craft", [
    ("from advertorch.attacks import LinfPGDAttack", "adversary.perturb(x, y)"),
    ("from autoattack import AutoAttack", "adversary.run_standard_evaluation(x, y, bs=len(x))"),
    ("from cleverhans.torch.attacks.projected_gradient_descent import projected_gradient_descent",
     "projected_gradient_descent(net, x, 0.1, 0.01, 10, float('inf'))"),
    ("import shap", "x + 0 * adversary.shap_values(x)"),
])
def test_a_loop_crafting_inputs_with_an_attack_package_is_not_reported(imports, craft):
    assert found(ATTACKED.format(imports=imports, craft=craft)) == []


@pytest.mark.parametrize("imports", ["from attacks import PGD", ""])
def test_an_attack_of_the_projects_own_is_judged_by_its_code(imports):
    # without an attack package the forward on the crafted inputs still builds
    # a graph the loop does not need (wrap `net(x_adv)`, not the attack)
    assert found(ATTACKED.format(imports=imports, craft="adversary.perturb(x, y)")) == [("GRD101", 9, 4)]


CAFFE_SCRIPT = """
import numpy as np
{imports}

def load_net(path):
    return {framework}.load(path)


def evaluate(net, images):
    scores = []
    for image in images:
        scores.append(net(image))
    return np.mean(scores)


if __name__ == "__main__":
    model = load_net("deploy.model")
    model.eval()
    print(evaluate(model, []))
"""


@pytest.mark.parametrize("framework, expected", [
    ("caffe", []),  # a Caffe network keeps no autograd graph
    ("torch", [("GRD101", 12, 4)]),
])
def test_a_caffe_script_is_not_pytorch(framework, expected):
    assert found(CAFFE_SCRIPT.format(imports=f"import {framework}\n", framework=framework)) == expected


# --- a function a later definition of the same name replaces -----------------

REDEFINED = """
import torch


def score(model, loader):
    model.eval()
    scores = []
    for x in loader:
        scores.append(model(x))
    return scores

{between}
@torch.no_grad()
def score(model, loader):
    model.eval()
    return [model(x) for x in loader]
"""


def test_a_function_replaced_by_a_later_definition_is_not_reported():
    # the second ``score`` replaces the first when the module loads
    assert found(REDEFINED.format(between="")) == []


def test_a_function_used_before_it_is_replaced_is_reported():
    between = "\nfirst_scores = score(torch.nn.Linear(4, 2), [torch.randn(8, 4)])\n"
    assert found(REDEFINED.format(between=between)) == [("GRD101", 8, 4)]


REPORT_BETWEEN = """
def report(model, loader):
    return score(model, loader)


class Ranker(torch.nn.Module):
    {statement}

    def forward(self, x):
        return report(self, x)

"""


@pytest.mark.parametrize("statement, expected", [
    # a method calls a function that calls ``score``: it runs only later, when the second is bound
    ("scale = 2.0", []),
    # a statement of the class body runs as the class is made: the first ``score`` then runs
    ("first = report(torch.nn.Linear(4, 2), [torch.randn(8, 4)])", [("GRD101", 8, 4)]),
])
def test_a_method_body_between_the_definitions_runs_only_when_called(statement, expected):
    assert found(REDEFINED.format(between=REPORT_BETWEEN.format(statement=statement))) == expected


# --- a method named ``net_...`` that returns what the network holds -------------

STATE_OF_NETS = """
import torch


class EvalAgent:
    def __init__(self, policies):
        self.policies = policies
        for pol in self.policies:
            pol.eval()

    def state_dict(self):
        return {"nets": [pol.net_state_dict() for pol in self.policies]}
"""


@pytest.mark.parametrize("method, expected", [
    ("net_state_dict", []),  # returns the weights: no forward
    ("net_params", []),
    ("net_G", [("GRD101", 12, 25)]),  # a network named like ``netG``
])
def test_a_method_named_for_what_a_network_holds_is_no_forward(method, expected):
    assert found(STATE_OF_NETS.replace("net_state_dict", method)) == expected


# --- a call that cannot bind its arguments never starts the function ----------

UNBOUND_CALL = """
import torch


def evaluate(epoch, cache, dataset, model, config, k, flag="test"):
    scores = []
    for users in dataset:
        scores.append(model(users)[:k])
    return scores


def main(model, dataset, optimizer, config, pretrain):
    cache = {}
    if pretrain:
        for epoch in range(config["epochs"]):
            for users, items in dataset:
                loss = model(users).sub(items).pow(2).mean()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            scores = evaluate(epoch, cache, dataset, model, config)
            print(len(scores))
    for epoch in range(config["epochs"]):
        for users, items in dataset:
            loss = model(users).sub(items).pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            scores = evaluate(epoch, cache, dataset, model, config, config["k"])
        print(len(scores))


if __name__ == "__main__":
    main(torch.load("model.pt"), [], None, {"epochs": 1, "k": 5}, True)"""


@pytest.mark.parametrize("call, expected", [
    # one argument short: ``TypeError`` before the loop, so only the call under no_grad runs it
    ("evaluate(epoch, cache, dataset, model, config)", []),
    ('evaluate(epoch, cache, dataset, model, config, config["k"])', [("GRD101", 7, 4)]),
])
def test_a_caller_whose_call_cannot_bind_hands_no_grad_mode(call, expected):
    source = UNBOUND_CALL.replace("evaluate(epoch, cache, dataset, model, config)", call)
    assert found(source) == expected


ROLLOUT_FOR_THE_CRITIC = """
import torch
from torch import nn


class Engine:
    def __init__(self):
        self.denoiser = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.1))
        self.critic = nn.Linear(4, 1)
        self.opt = torch.optim.SGD(self.critic.parameters(), lr=0.1)

    def generate_pair(self, steps):
        current = torch.randn(2, 4)
        with torch.no_grad():
            for _ in range(steps):
                current = self.denoiser(current)
        return current

    def update_critic(self, fakes):
        loss = self.critic(fakes["x"]).mean()
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return loss.item()

    def step(self):
        self.denoiser.train()
        fake = self.generate_pair(3)
        fakes = {"x": fake}
        return self.update_critic(fakes)


if __name__ == "__main__":
    engine = Engine()
    for _ in range(3):
        print(engine.step())
"""


@pytest.mark.parametrize("fed, expected", [
    ('fakes = {"x": fake}', []),  # the rollout is the critic's training input: training mode is meant
    ('fakes = {"x": torch.randn(2, 4)}\n        print(fake)', [("GRD102", 15, 12)]),
])
def test_a_generating_helper_whose_result_a_training_step_takes_is_part_of_training(fed, expected):
    assert found(ROLLOUT_FOR_THE_CRITIC.replace('fakes = {"x": fake}', fed)) == expected


ATTRIBUTION_THROUGH_A_METHOD = """
import torch
from captum.attr import IntegratedGradients


def attribute(runner, batches):
    runner.model.eval()
    ig = IntegratedGradients(runner.model)
    scores = []
    for x in batches:
        attr = ig.attribute(x, target=0)
        scores.append(runner.model(x).argmax(1))
        print(attr.detach().abs().sum())
    return scores
"""


@pytest.mark.parametrize("built, expected", [
    ("IntegratedGradients(runner.model)", []),  # the attribution asks autograd for gradients in the loop
    ("IntegratedGradients(runner.baseline)", [("GRD101", 10, 4)]),  # built around something else
])
def test_a_loop_calling_a_method_of_a_tool_built_around_the_model(built, expected):
    assert found(ATTRIBUTION_THROUGH_A_METHOD.replace("IntegratedGradients(runner.model)", built)) == expected


@pytest.mark.parametrize("between, expected", [
    # a function defined in between calls it when called, after the later definition replaced it
    ("\ndef report(model, loader):\n    return len(score(model, loader))\n\n", []),
    # ... unless it is called before the replacement
    ("\ndef report(model, loader):\n    return len(score(model, loader))\n\n\n"
     "FIRST = report(torch.nn.Linear(4, 2), [torch.randn(8, 4)])\n", [("GRD101", 8, 4)]),
    # a default value is evaluated when the function is defined
    ("\ndef report(model, loader, first=score):\n    return len(first(model, loader))\n\n", [("GRD101", 8, 4)]),
])
def test_a_function_named_only_in_a_body_defined_before_its_replacement(between, expected):
    assert found(REDEFINED.format(between=between)) == expected


CODE_FOR_0_3 = """
import torch
from torch.autograd import Variable

model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))
criterion = torch.nn.MSELoss()
loader = [(torch.randn(8, 4), torch.randn(8, 4))]


def train():
    for x, y in loader:
        loss = criterion(model(Variable(x)), Variable(y))
        print(loss.data[0])


def evaluate():
    model.eval()
    total = 0
    for x, y in loader:
        out = model(Variable(x))
        total += (out.data.max(1)[1] == y.max(1)[1]).sum()
    return total
"""


@pytest.mark.parametrize("read, extra, expected", [
    ("loss.data[0]", "", []),  # 0.3's way to read a loss: code for 0.3, which had no no_grad
    ("loss.item()", "", [("GRD101", 19, 4)]),  # the way since 0.4
    ("out.data[0]", "", [("GRD101", 19, 4)]),  # the first row of an output, not a loss
    ("loss.data", "", [("GRD101", 19, 4)]),
    # a module that names no_grad is written for a release that has it: reported as before
    ("loss.data[0]", "\n\ndef report():\n    with torch.no_grad():\n        return model(loader[0][0])\n",
     [("GRD101", 19, 4)]),
])
def test_code_for_0_3_is_not_told_to_use_no_grad(read, extra, expected):
    assert found(CODE_FOR_0_3.replace("loss.data[0]", read) + extra) == expected


NET_WITH_BATCH_NORM = "torch.nn.Sequential(torch.nn.Linear(16, 16), torch.nn.BatchNorm1d(16))"

REBOUND_AFTER_EVAL = f"""
import torch

x = torch.randn(100, 16)
layer = {NET_WITH_BATCH_NORM}
layer.eval()
print(layer(x).mean())
layer = {NET_WITH_BATCH_NORM}
for i in range(100):
    out = layer(x)
layer = torch.nn.BatchNorm2d(16)  # a later binding does not change what the loop ran
print(layer)
"""


@pytest.mark.parametrize("rebound, expected", [
    (NET_WITH_BATCH_NORM, []),  # a new network, in training mode: the switch was of the old one
    (f"{NET_WITH_BATCH_NORM}.eval()", [("GRD101", 9, 0)]),  # the new one is switched too
    ("layer.double()", [("GRD101", 9, 0)]),  # the same module
])
def test_an_eval_switch_of_a_name_then_bound_to_a_new_model(rebound, expected):
    source = REBOUND_AFTER_EVAL.replace(f"layer = {NET_WITH_BATCH_NORM}\nfor", f"layer = {rebound}\nfor")
    assert found(source) == expected


ONE_PASS = """
import torch


def show(model, loader, users):
    for {loop}:
        {guard}
            for x in loader:
                print(model(x).tolist())
"""


@pytest.mark.parametrize(
    "loop, guard, expected",
    [
        ("i, user in enumerate(users)", "if user:", [("GRD101", 6, 4)]),
        # ``if epoch == 0:`` around a loop runs that whole loop: it is reported
        ("epoch in range(3)", "if epoch == 0:", [("GRD101", 8, 12)]),
    ],
)
def test_a_forward_on_one_pass_only(loop, guard, expected):
    assert found(ONE_PASS.format(loop=loop, guard=guard)) == expected


ONE_PASS_INSIDE = """
import torch


def show(model, loader, users, limit):
    for i, user in enumerate(users):
        for x in loader:
            if {test}:
                print(model(x).tolist())
"""


@pytest.mark.parametrize(
    "test, expected",
    [
        ("i == 0", []),  # the guard sits in the loop, on the outer loop's counter
        ("0 == i", []),
        ("i in [2, 30, 145]", []),
        ("i in [2, limit]", [("GRD101", 6, 4)]),
        ("i == limit", [("GRD101", 6, 4)]),  # not a number
        ("i < 3", [("GRD101", 6, 4)]),
        ("user == 'val'", [("GRD101", 6, 4)]),
    ],
)
def test_a_forward_guarded_by_a_counter_inside_the_loop(test, expected):
    assert found(ONE_PASS_INSIDE.format(test=test)) == expected


THROUGH_A_REPORTED_LOOP = """
import torch


def infer(net, images):
    outputs = []
    {helper}
    return outputs


def evaluate(net, dataset):
    net.eval()
    for images, labels in dataset:
        preds = infer(net, images){direct}
    return preds
"""


@pytest.mark.parametrize(
    "helper, direct, expected",
    [
        # the helper's loop is reported: the caller's loop is the same forward again
        ("for img in images:\n        outputs.append(net(img).argmax(1))", "", [("GRD101", 7, 4)]),
        # the caller also runs the model itself: both loops build graphs
        (
            "for img in images:\n        outputs.append(net(img).argmax(1))",
            "\n        print(net(images[0]).argmax(1))",
            [("GRD101", 7, 4), ("GRD101", 14, 4)],
        ),
        # a helper without a loop of its own: the caller's loop is the one reported
        ("outputs.append(net(images).argmax(1))", "", [("GRD101", 13, 4)]),
    ],
)
def test_a_loop_that_reaches_the_forward_through_a_reported_loop(helper, direct, expected):
    assert found(THROUGH_A_REPORTED_LOOP.format(helper=helper, direct=direct)) == expected


HANDED_IN_EVAL_MODE = """
import torch
import torch.nn as nn


def build():
    return nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))


def train_epoch(corrector, data, optimizer):
    corrector.train()
    for x in data:
        optimizer.zero_grad()
        corrector(x).sum().backward()
        optimizer.step()


@torch.no_grad()
def evaluate(global_model, corrector, data):
    out = []
    for x in data:
        out.append({forward})
    return out


def main():
    global_model = build()
    {switch}
    data = [torch.randn(2, 4)]
    for client in range(2):
        corrector = build()
        optimizer = torch.optim.SGD(corrector.parameters(), lr=0.1)
        train_epoch({trained}, data, optimizer)
        evaluate(global_model, corrector, data)


def precompute(model, data):
    {body}
"""

USES = "return [model(x) for x in data]"


@pytest.mark.parametrize("forward, switch, trained, expected", [
    # the model the caller switched to eval mode by name runs in eval mode,
    # whatever the caller trained in between
    ("global_model(x)", "global_model.eval()", "corrector", []),
    # the caller trains that model itself in between
    ("global_model(x)", "global_model.eval()", "global_model", [("GRD102", 21, 4, "global_model")]),
    ("global_model(x)", "pass", "corrector", [("GRD102", 21, 4, "global_model")]),
    # the other model the loop runs is the one in training mode: the finding names it
    ("global_model(x) + corrector(x)", "global_model.eval()", "corrector", [("GRD102", 21, 4, "corrector")]),
    ("global_model(x) + corrector(x)", "pass", "corrector", [("GRD102", 21, 4, "global_model")]),
    # handed first to a module function that only runs it: still in eval mode
    ("global_model(x)", "global_model.eval()\n    precompute(global_model, [])", "corrector", []),
    # ... not to one that switches it
    ("global_model(x)", "global_model.eval()\n    precompute(global_model, [])|model.train()", "corrector",
     [("GRD102", 21, 4, "global_model")]),
])
def test_a_model_every_caller_switched_to_eval_mode_by_name(forward, switch, trained, expected):
    switch, _, body = switch.partition("|")
    source = HANDED_IN_EVAL_MODE.format(forward=forward, switch=switch, trained=trained, body=body or USES)
    found = [
        (v.code, v.line, v.col, v.message.split("`")[1])
        for v in check(source, ALONE, filename="script.py") if v.code == "GRD102"
    ]
    assert found == expected


# the rule's own ensemble: folds switched to eval mode by the ``__init__`` of
# the class that holds them, run under no_grad by a script
ENSEMBLE = textwrap.dedent(next(
    v.code for v in by_code("GRD102").VALID if v.title.startswith("An ensemble that switches")
))


@pytest.mark.parametrize("change, expected", [
    (None, []),
    # the folds switched to training mode, not eval mode
    (("            m.eval()", "            m.train()"), [("GRD102", 23, 4)]),
    # a head of the ensemble's own, left in training mode
    (("        self.models = []", "        self.models = []\n        self.head = torch.nn.Dropout(0.5)"),
     [("GRD102", 24, 4)]),
    # dropout in the ensemble's own forward
    (("        return torch.stack([m(x) for m in self.models]).mean(0)",
      "        return torch.nn.functional.dropout(torch.stack([m(x) for m in self.models]).mean(0), 0.5,"
      " self.training)"),
     [("GRD102", 23, 4)]),
    # an ensemble that trains its folds too
    (("    def forward(self, x):",
      "    def fit(self, x):\n        self.models[0](x).sum().backward()\n\n    def forward(self, x):"),
     [("GRD102", 26, 4)]),
])
def test_an_ensemble_built_in_eval_mode(change, expected):
    source = ENSEMBLE.replace(*change) if change else ENSEMBLE
    assert change is None or source != ENSEMBLE
    assert found(source) == expected


# the rule's own frozen feature model, kept in a module global between calls
# (as copies of pytorch-fid's ``calculate_fid_given_images`` do)
GLOBAL_CACHE = textwrap.dedent(next(
    v.code for v in by_code("GRD101").VALID if v.title.startswith("A frozen model kept in a module global")
))


@pytest.mark.parametrize("change, expected", [
    (None, []),
    # a model that is not frozen
    (("def __init__(self, requires_grad=False):", "def __init__(self, requires_grad=True):"),
     [("GRD101", 25, 4)]),
    # the global also takes another, unfrozen model
    (("features = evaluate(",
      "FEATURE_MODEL = torch.nn.Linear(4, 4)\nfeatures = evaluate("), [("GRD101", 25, 4)]),
    # the global bound to something else than the function's model
    (("FEATURE_MODEL = model", "FEATURE_MODEL = Features(requires_grad=True)"), [("GRD101", 25, 4)]),
])
def test_a_frozen_model_kept_in_a_module_global(change, expected):
    source = GLOBAL_CACHE.replace(*change) if change else GLOBAL_CACHE
    assert change is None or source != GLOBAL_CACHE
    assert found(source) == expected


# a decoding loop in a method of a Keras layer, in a module that converts a
# torch model to TensorFlow: ``self.decoder`` is Keras there
KERAS_LAYER = """
import tensorflow as tf
import torch


class Decoder(tf.keras.layers.Layer):
    def __init__(self, decoder):
        super().__init__()
        self.decoder = decoder

    def generate(self, x, steps):
        tokens = []
        for _ in range(steps):
            logits = self.decoder(x)
            tokens.append(logits.argmax(-1))
        return tokens


decoder = Decoder(torch.nn.Linear(4, 4))
out = decoder.generate(torch.randn(2, 4), 3)
"""


@pytest.mark.parametrize("base, imported, expected", [
    ("tf.keras.layers.Layer", "", []),
    ("Layer", "from tensorflow.keras.layers import Layer\n", []),
    ("object", "", [("GRD101", 13, 8)]),
])
def test_a_loop_in_a_method_of_another_frameworks_class(base, imported, expected):
    source = KERAS_LAYER.replace("tf.keras.layers.Layer", base).replace("import torch\n", "import torch\n" + imported)
    assert found(source) == expected


# a frozen encoder's owner switched to eval mode at the top of each
# validation step, after a training loop that trains a classifier beside it
OWNER_SWITCHED = """
import torch
import torch.nn as nn


class SupCon(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
        self.head = nn.Linear(4, 4)

    def forward(self, x):
        return self.head(self.encoder(x))


def train_val_net(supcon_net, classify_net, train_loader, val_loader):
    optimizer = torch.optim.SGD(classify_net.parameters(), lr=0.1)
    for epoch in range(3):
        for x, y in train_loader:
            optimizer.zero_grad()
            supcon_net.eval()
            classify_net.train()
            with torch.no_grad():
                features = supcon_net.encoder(x)
            loss = classify_net(features).sum()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            for x, y in val_loader:
                supcon_net.eval()
                classify_net.eval()
                features = supcon_net.encoder(x)
                pred = classify_net(features)
"""


@pytest.mark.parametrize("switch, expected", [
    ("supcon_net.eval()", []),
    ("supcon_net = supcon_net.eval()", []),
    ("supcon_net.encoder.eval()", []),
    # another part of the model switched: the encoder stays in training mode
    ("supcon_net.head.eval()", [("GRD102", 29, 12)]),
])
def test_the_owner_of_a_called_part_switched_to_eval_in_the_loop(switch, expected):
    source = OWNER_SWITCHED.replace("                supcon_net.eval()", "                " + switch)
    assert found(source) == expected


# a model transformers loads: from_pretrained hands it back in eval mode
LOADED_PRETRAINED = """
import torch
from transformers import AutoModelForSequenceClassification


def train(model, loader, optimizer):
    model.train()
    for batch in loader:
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()


def predict(model, test_loader):
    preds = []
    with torch.no_grad():
        for batch in test_loader:
            preds.append(model(**batch).logits.argmax(-1))
    return preds


def load():
    model = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased")
    model = model.to("cpu")
    return model


if __name__ == "__main__":
    model = load()
    predict(model, [])
"""


@pytest.mark.parametrize("change, expected", [
    (None, []),
    # loaded where it is handed over
    (("    model = load()", '    model = AutoModelForSequenceClassification.from_pretrained("b")'), []),
    # trained before the prediction
    (("    predict(model, [])", "    train(model, [], None)\n    predict(model, [])"), [("GRD102", 17, 8)]),
    (("    predict(model, [])", "    model.train()\n    predict(model, [])"), [("GRD102", 17, 8)]),
    # built from a configuration: a fresh model, in training mode
    (('from_pretrained("bert-base-uncased")', "from_config(None)"), [("GRD102", 17, 8)]),
    # another library's from_pretrained
    (("from transformers import", "from mylib import"), [("GRD102", 17, 8)]),
    # a function of the module that may hand back something else
    (('    model = model.to("cpu")', '    model = wrap(model)'), [("GRD102", 17, 8)]),
])
def test_a_model_loaded_by_from_pretrained_is_in_eval_mode(change, expected):
    source = LOADED_PRETRAINED.replace(*change) if change else LOADED_PRETRAINED
    assert change is None or source != LOADED_PRETRAINED
    assert found(source) == expected


# the rule's own list of models frozen one by one
FROZEN_LIST = textwrap.dedent(next(
    v.code for v in by_code("GRD101").VALID if v.title.startswith("A list of models a function of the module froze")
))


@pytest.mark.parametrize("change, expected", [
    (None, []),
    # not frozen: the list holds models that build graphs
    (("        for param in model.parameters():\n            param.requires_grad = False\n", ""),
     [("GRD101", 14, 4)]),
    # filled another way too: what else it holds is not seen
    (("        models.append(model)\n", "        models.append(model)\n    models.extend(extra)\n"),
     [("GRD101", 17, 4)]),
    # returned in a tuple, which the caller unpacks
    (("    return models\n", "    return models, count\n"), None),
    # called by position
    (("    for model in models:\n        scores.append(model(points).sum().item())\n",
      "    for i in range(len(models)):\n        scores.append(models[i](points).sum().item())\n"), []),
])
def test_a_list_of_frozen_models_builds_no_graph(change, expected):
    source = FROZEN_LIST.replace(*change) if change else FROZEN_LIST
    assert change is None or source != FROZEN_LIST
    if expected is None:
        source = source.replace("models = random_features(3)", "models, _ = random_features(3)")
        expected = []
    assert [f for f in found(source) if f[0] == "GRD101"] == expected


# the rule's own check of architectures, a new untrained model on every pass
FRESH_EACH_PASS = textwrap.dedent(next(
    v.code for v in by_code("GRD101").VALID if v.title.startswith("A new untrained model built on every pass")
))


@pytest.mark.parametrize("change, expected", [
    (None, []),
    # weights loaded into it: a trained model, evaluated
    (("block = variant(16)\n", "block = variant(16)\n        block.load_state_dict(torch.load(name))\n"),
     [("GRD101", 20, 4), ("GRD102", 20, 4)]),
    # built with trained weights
    (("block = variant(16)", "block = variant(16, pretrained=True)"), [("GRD101", 20, 4), ("GRD102", 20, 4)]),
    # one model, built before the loop, run on every pass
    (("    for name, variant in", "    block = Small(16)\n    for name, variant in"),
     [("GRD101", 21, 4), ("GRD102", 21, 4)]),
])
def test_a_new_untrained_model_built_on_every_pass(change, expected):
    source = FRESH_EACH_PASS
    if change is not None:
        source = source.replace(*change)
        if "Small(16)" in change[1]:
            source = source.replace("        block = variant(16)\n", "")
    assert change is None or source != FRESH_EACH_PASS
    assert found(source) == expected


# the rule's own validation loss of a model that returns its losses only in training mode
LOSSES_IN_TRAINING_MODE = textwrap.dedent(next(
    v.code for v in EvalLoopWithoutEvalMode.VALID if v.title.startswith("A validation loss from a model that returns")
))


@pytest.mark.parametrize("change, expected", [
    (None, []),
    # the result is read as a tensor: the model's outputs, evaluated in training mode
    (("sum(loss for loss in loss_dict.values()).item()", "loss_dict.mean().item()"), [("GRD102", 20, 4)]),
    # a name that says nothing of losses
    (("loss_dict", "outputs"), [("GRD102", 20, 4)]),
])
def test_a_model_that_returns_its_losses_only_in_training_mode(change, expected):
    source = LOSSES_IN_TRAINING_MODE.replace(*change) if change else LOSSES_IN_TRAINING_MODE
    assert change is None or source != LOSSES_IN_TRAINING_MODE
    assert found(source) == expected


# the rule's own method that sets the mode from its argument
MODE_FROM_ARGUMENT = textwrap.dedent(next(
    v.code for v in EvalLoopWithoutEvalMode.VALID if v.title.startswith("A method that sets the mode from its argument")
))


@pytest.mark.parametrize("change, expected", [
    (None, []),
    # handed the training's name: the loop runs in training mode
    (('self.set_mode("valid")', 'self.set_mode("train")'), [("GRD102", 28, 12)]),
    # handed a name no branch takes: nothing switches the model to eval mode
    (('self.set_mode("valid")', 'self.set_mode("predict")'), [("GRD102", 28, 12)]),
    # a test it cannot decide: its last switch counts, as for any function
    (('if mode in ["eval", "valid", "test"]:', "if mode.startswith(\"v\"):"), [("GRD102", 28, 12)]),
])
def test_a_method_that_sets_the_mode_from_its_argument(change, expected):
    source = MODE_FROM_ARGUMENT.replace(*change) if change else MODE_FROM_ARGUMENT
    assert change is None or source != MODE_FROM_ARGUMENT
    assert found(source) == expected


# a script that frees its raw data, then reads it: NameError before the model is built
DELETED_THEN_READ = """
import torch

data = torch.randn(8, 4)
targets = torch.randn(8, 2)
del data, targets
data = (data - data.mean()) / data.std()
model = torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.Dropout(0.5))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(3):
    optimizer.zero_grad()
    torch.nn.functional.mse_loss(model(data), torch.zeros(8, 2)).backward()
    optimizer.step()
model.eval()
test_loader = [torch.randn(1, 4) for _ in range(4)]
for x in test_loader:
    print(model(x).detach().numpy())
"""


@pytest.mark.parametrize("change, expected", [
    (None, []),
    # nothing deleted: the script gets to its test loop
    (("del data, targets\n", ""), [("GRD101", 15, 0)]),
    # bound again after the ``del``: it reads the new value
    (("del data, targets\n", "del data, targets\ndata = torch.randn(8, 4)\n"), [("GRD101", 17, 0)]),
    # deleted only in a branch: the read may find it
    (("del data, targets\n", "if data.numel() > 99:\n    del data\n"), [("GRD101", 17, 0)]),
])
def test_a_name_deleted_before_it_is_read(change, expected):
    source = DELETED_THEN_READ.replace(*change) if change else DELETED_THEN_READ
    assert change is None or source != DELETED_THEN_READ
    assert found(source) == expected


# a plain class wrapping a detectron2 model (whose predictor runs it without
# grad and in eval mode): the instance is no module, whatever its name says
PLAIN_WRAPPER = """
import torch
from detectron2.modeling import build_model


class FeatPredictor:
    def __init__(self, cfg):
        self.pred = build_model(cfg)

    def __call__(self, image):
        return self.pred(image)


teacher = FeatPredictor("model.yaml")
for image in test_loader:
    print(teacher(image).argmax())
"""


@pytest.mark.parametrize("change, expected", [
    (None, []),
    # an nn.Module subclass: a model, with grad
    (("class FeatPredictor:", "class FeatPredictor(torch.nn.Module):"), [("GRD101", 15, 0)]),
    # with a forward: a model
    (("def __call__", "def forward"), [("GRD101", 15, 0)]),
    # bound to something else too: it may be a model
    (("teacher = FeatPredictor(\"model.yaml\")\n", "teacher = FeatPredictor(\"model.yaml\")\n"
      "if torch.cuda.is_available():\n    teacher = torch.hub.load('a', 'b')\n"), [("GRD101", 17, 0)]),
])
def test_an_instance_of_a_plain_wrapper_class_is_no_model(change, expected):
    source = PLAIN_WRAPPER.replace(*change) if change else PLAIN_WRAPPER
    assert change is None or source != PLAIN_WRAPPER
    assert found(source) == expected


# a loop over database document classes: ``model.__name__`` shows a class,
# and calling it builds a record
DOCUMENT_CLASSES = """
import torch
from app.models import DOCUMENT_CLASSES


def load_dump(data):
    for model in DOCUMENT_CLASSES:
        for fields in data[model.__name__.lower()]:
            model(**fields).save()
"""


@pytest.mark.parametrize("change, expected", [
    (None, []),
    # no ``__name__`` read: named like a model, it may be one
    (("data[model.__name__.lower()]", "data[0]"), [("GRD101", 7, 4)]),
    # the name of the model's class: an instance's
    (("model.__name__", "model.__class__.__name__"), [("GRD101", 7, 4)]),
])
def test_a_name_whose_name_is_read_holds_a_class(change, expected):
    source = DOCUMENT_CLASSES.replace(*change) if change else DOCUMENT_CLASSES
    assert change is None or source != DOCUMENT_CLASSES
    assert found(source) == expected


# a function defined in the ``__main__`` block whose only call is commented out:
# only a run as a script defines it, and that run never calls it; nor does a
# call that a flag set to False in the block skips
DEFINED_IN_THE_MAIN_BLOCK = """
import torch

if __name__ == "__main__":
    TEST = False
    model = torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.Dropout(0.5))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for x in [torch.randn(8, 4) for _ in range(3)]:
        optimizer.zero_grad()
        model(x).pow(2).mean().backward()
        optimizer.step()

    def evaluate(loader):
        model.eval()
        preds = []
        for x in loader:
            preds.append(model(x))
        return preds

    # evaluate(test_loader)
"""


@pytest.mark.parametrize("change, expected", [
    (None, []),
    # called: it runs
    (("    # evaluate(test_loader)", "    evaluate([torch.randn(1, 4)])"), [("GRD101", 16, 8)]),
    # called with a name nothing binds: NameError first
    (("    # evaluate(", "    evaluate("), []),
    # called under a flag the block sets to False
    (("    # evaluate(test_loader)", "    if TEST:\n        evaluate([torch.randn(1, 4)])"), []),
    (("    # evaluate(test_loader)", "    if not TEST:\n        evaluate([torch.randn(1, 4)])"), [("GRD101", 16, 8)]),
    # a module that may look names up at run time: none of its strings names it
    (("    # evaluate(test_loader)", "    print(vars(TEST), globals()['model'])"), []),
    (("    # evaluate(test_loader)", "    globals()['evaluate']([torch.randn(1, 4)])"), [("GRD101", 16, 8)]),
    # called by another function of the block that the block calls
    (("    # evaluate(test_loader)", "    def run():\n        evaluate([torch.randn(1, 4)])\n\n    run()"),
     [("GRD101", 16, 8)]),
])
def test_a_function_of_the_main_block_nothing_calls(change, expected):
    source = DEFINED_IN_THE_MAIN_BLOCK.replace(*change) if change else DEFINED_IN_THE_MAIN_BLOCK
    assert change is None or source != DEFINED_IN_THE_MAIN_BLOCK
    assert found(source) == expected


# a data pipeline step that runs a transform the pipeline put in eval mode
# (a mel spectrogram: buffers, no weights to train)
TRANSFORM_IN_A_PIPELINE = """
import torch


class Composer:
    def __init__(self, melspectrogram_transform, training=False):
        self.melspectrogram_transform = melspectrogram_transform
        if training:
            self.melspectrogram_transform.train()
        else:
            self.melspectrogram_transform.eval()

    def process(self, sample):
        sample["melspectrogram"] = self.melspectrogram_transform(sample["audio"])
        return sample
"""


@pytest.mark.parametrize("name, expected", [
    ("melspectrogram_transform", []),
    ("train_tfms", []),
    ("augment", []),
    # a model by its name: an encoder, or a transformer
    ("encoder", [("GRD101", 14, 35)]),
    ("transformer", [("GRD101", 14, 35)]),
])
def test_a_data_transform_is_no_model(name, expected):
    assert found(TRANSFORM_IN_A_PIPELINE.replace("melspectrogram_transform", name)) == expected


# a PyG edge-conditioned convolution around a network the class builds: the
# same in training and eval mode when that network is
NNCONV_NETWORK = """
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch_geometric.nn import NNConv

FEATURES = 2


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        nn1 = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 64))
        self.conv1 = NNConv(2, 32, nn1, aggr="mean")
        self.fc = nn.Linear(32, 2)

    def forward(self, data):
        return self.fc(F.relu(self.conv1(data.x, data.edge_index, data.edge_attr)))


train_loader, test_loader = [], []
model = Net()
optimizer = torch.optim.Adam(model.parameters())
for epoch in range(10):
    model.train()
    for batch in train_loader:
        optimizer.zero_grad()
        F.mse_loss(model(batch), batch.y).backward()
        optimizer.step()
    with torch.no_grad():
        for batch in test_loader:
            print(F.mse_loss(model(batch), batch.y).item())
"""


@pytest.mark.parametrize("change, expected", [
    (None, []),
    # dropout in the edge network: the mode matters
    (("nn.ReLU(), nn.Linear(16, 64)", "nn.Dropout(0.5), nn.Linear(16, 64)"), [("GRD102", 31, 8)]),
    # the sizes read from the module: numbers, not networks
    (("NNConv(2, 32, nn1", "NNConv(FEATURES, 32, nn1"), []),
    # a network handed in: it may hold any layer
    (("    def __init__(self):\n        super().__init__()\n        nn1 = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), "
      "nn.Linear(16, 64))\n", "    def __init__(self, nn1):\n        super().__init__()\n"), [("GRD102", 30, 8)]),
])
def test_a_graph_convolution_around_a_network_the_class_builds(change, expected):
    source = NNCONV_NETWORK.replace(*change) if change else NNCONV_NETWORK
    assert change is None or source != NNCONV_NETWORK
    if change is not None and "nn1):" in change[1]:
        source = source.replace("model = Net()", "model = Net(nn.Linear(2, 64))")
    assert found(source) == expected


# a loop left to check the data's shape: it breaks before it runs the model
BREAKS_BEFORE_THE_MODEL = """
import torch

model = torch.load("trained_model.pth")
submission = []
for data, label in test_loader:
    print(label.shape)
    break
    output = model(data)
    submission.append(output.argmax(1).item())
"""


@pytest.mark.parametrize("change, expected", [
    (None, []),
    (("    break\n", ""), [("GRD101", 6, 0)]),
    # a break in a branch: other passes get to the model
    (("    break\n", "    if label is None:\n        break\n"), [("GRD101", 6, 0)]),
    # no model bound: NameError at the call, whatever comes before it
    (("model = torch.load(\"trained_model.pth\")\n", ""), []),
])
def test_a_loop_that_breaks_before_the_model_call(change, expected):
    source = BREAKS_BEFORE_THE_MODEL.replace(*change) if change else BREAKS_BEFORE_THE_MODEL
    assert change is None or source != BREAKS_BEFORE_THE_MODEL
    assert found(source) == expected


# a loop stepped through by hand: it stops in the debugger on every batch
STEPPED_IN_A_DEBUGGER = """
import pdb

import torch

model = torch.load("trained_model.pth")
for images, label in test_loader:
    pdb.set_trace()
    output = model(images)
    print(output.shape)
"""


@pytest.mark.parametrize("changes, expected", [
    ((), []),
    ((("    pdb.set_trace()\n", "    breakpoint()\n"),), []),
    ((("import pdb\n", "from IPython import embed\n"), ("    pdb.set_trace()\n", "    embed()\n")), []),
    ((("    pdb.set_trace()\n", ""),), [("GRD101", 7, 0)]),
    # a function of the project's own named embed, not the IPython shell
    ((("import pdb\n", "def embed():\n    pass\n"), ("    pdb.set_trace()\n", "    embed()\n")),
     [("GRD101", 8, 0)]),
    # a debugger entered only on a condition: the other passes run on
    ((("    pdb.set_trace()\n", "    if label is None:\n        pdb.set_trace()\n"),), [("GRD101", 7, 0)]),
])
def test_a_loop_that_stops_in_a_debugger_every_pass(changes, expected):
    source = STEPPED_IN_A_DEBUGGER
    for change in changes:
        assert change[0] in source
        source = source.replace(*change)
    assert found(source) == expected


# a pass over dummy data that sizes the model's lazy layers before training
LAZY_SIZING_PASS = """
import torch
from torch.utils.data import DataLoader
from model import Classifier
from data import graphs

if __name__ == "__main__":
    pretrained = torch.load("regressor.pt")
    pretrained.eval()
    model = Classifier(pretrained)
    dummy_loader = DataLoader(graphs[:128], batch_size=8)
    for data in dummy_loader:
        pred = model(data.x, data.edge_index)
    optimizer = torch.optim.Adam(model.parameters())
"""


@pytest.mark.parametrize("change, expected", [
    (None, []),
    # its outputs read: it evaluates something
    (("        pred = model(data.x, data.edge_index)\n",
      "        pred = model(data.x, data.edge_index)\n        print(pred)\n"), [("GRD101", 12, 4)]),
    # real data
    (("dummy_loader", "val_loader"), [("GRD101", 12, 4)]),
])
def test_a_pass_over_dummy_data_that_sizes_lazy_layers(change, expected):
    source = LAZY_SIZING_PASS.replace(*change) if change else LAZY_SIZING_PASS
    assert change is None or source != LAZY_SIZING_PASS
    assert found(source) == expected


# a name bound to a function of the module, straight or through a table of
# them: calling it runs that function, not a model
FUNCTION_TABLE = """
import glob
import torch
from PIL import Image


def encode_png(array, name):
    Image.fromarray(array).save(name + ".png")


def encode_npy(array, name):
    torch.save(torch.from_numpy(array), name + ".pt")


encoders = {"png": encode_png, "npy": encode_npy}


def main(fmt, arrays):
    encoder = encoders[fmt]
    for i, array in enumerate(arrays):
        encoder(array, str(i))


if __name__ == "__main__":
    main("png", [])
"""


@pytest.mark.parametrize("change, expected", [
    (None, []),
    (("encoder = encoders[fmt]", "encoder = encode_png"), []),
    # a model in the table, or a table the module does not write out
    (("\"npy\": encode_npy}", "\"npy\": torch.nn.Linear(4, 4)}"), [("GRD101", 20, 4)]),
    (("encoders = {\"png\": encode_png, \"npy\": encode_npy}", "encoders = torch.load(\"encoders.pt\")"),
     [("GRD101", 20, 4)]),
])
def test_a_name_bound_to_functions_of_the_module(change, expected):
    source = FUNCTION_TABLE.replace(*change) if change else FUNCTION_TABLE
    assert change is None or source != FUNCTION_TABLE
    assert found(source) == expected


def test_the_model_left_in_training_mode_is_the_one_named():
    # validation switches its model to eval mode itself, and also runs an
    # optional head the training loop trains: the head is what may run in
    # training mode (with no project index, a model a caller hands over is
    # not followed to its class: test_project.py checks the head whose mode
    # changes nothing)
    source = optional_head_module().replace("nn.LeakyReLU(0.01)", "nn.Dropout(0.2)")
    assert [(v.code, v.line, v.col, v.message) for v in check(source, ALONE, filename="script.py")
            if v.code in CODES] == [(
                "GRD102", 30, 4,
                "evaluation loop runs `head` in training mode: nothing calls `.eval()` before it; "
                "call `head.eval()` before the loop",
            )]


# a class of the module building its layers through another package: that
# package may bring any layer
BACKBONE_FROM_A_PACKAGE = """
import torch
import torchvision
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = torchvision.models.resnet18(num_classes=10)
        self.head = nn.Linear(10, 2)

    def forward(self, x):
        return self.head(self.backbone(x))


train_loader, test_loader = [], []
net = Net()
optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
for epoch in range(10):
    net.train()
    for x, y in train_loader:
        optimizer.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        optimizer.step()
    with torch.no_grad():
        for x, y in test_loader:
            print(net(x).argmax(1))
"""


@pytest.mark.parametrize("change, expected", [
    (None, [("GRD102", 27, 8)]),
    # layers of torch alone, and a scale of the standard library's
    (("torchvision.models.resnet18(num_classes=10)", "nn.Linear(3, 10, bias=math.isfinite(1.0))"), []),
])
def test_a_class_building_layers_through_another_package(change, expected):
    source = BACKBONE_FROM_A_PACKAGE.replace(*change) if change else BACKBONE_FROM_A_PACKAGE
    if change:
        source = source.replace("import torch\n", "import math\nimport torch\n", 1)
    assert found(source) == expected


FRESH_MODELS_IN_A_LIST = """
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self, depth):
        super().__init__()
        self.body = nn.Sequential(*[nn.Conv2d(3, 3, 3, padding=1) for _ in range(depth)])
        self.bn = nn.BatchNorm2d(3)

    def forward(self, x):
        return self.bn(self.body(x))


def Net18():
    return Net(2)


def Net34():
    return Net(4)


def test():
    x = torch.randn(2, 3, 32, 32)
    for net in [Net18(), Net34()]:
        y = net(x)
        print(y.shape)


test()
"""


TRAINED_FIRST = "    trained = Net18()\n    trained.load_state_dict(torch.load('n.pt'))\n    x = torch.randn"


@pytest.mark.parametrize("changes, expected", [
    # each pass runs a model the list built just now: a check of its shape
    ((), []),
    # a model loaded from a file is a trained one
    ((("[Net18(), Net34()]", "[Net18(), torch.load('net.pt')]"),), [("GRD101", 26, 4), ("GRD102", 26, 4)]),
    # a model built and loaded before the loop, left out of it or run in it
    ((("    x = torch.randn", TRAINED_FIRST),), []),
    ((("    x = torch.randn", TRAINED_FIRST), ("[Net18(), Net34()]", "[trained, Net34()]")),
     [("GRD101", 28, 4), ("GRD102", 28, 4)]),
])
def test_a_loop_over_a_list_of_models_built_in_it(changes, expected):
    source = FRESH_MODELS_IN_A_LIST
    for change in changes:
        source = source.replace(*change)
    assert found(source) == expected


TIMED_IN_A_GENERATOR = """
import time
import torch


def timed_call(function):
    started = time.perf_counter()
    value = function()
    return value, time.perf_counter() - started


def benchmark(model, work, test_indices):
    with torch.no_grad():
        seconds = []
        for index in test_indices:
            one = work[index]
            seconds.extend(timed_call(lambda one=one: model(one))[1] for _ in range(3))
    return seconds
"""


@pytest.mark.parametrize("change, expected", [
    # the lambda runs in the call the generator makes, under ``no_grad``
    (None, []),
    (("    with torch.no_grad():\n", "    if True:\n"), [("GRD101", 15, 8)]),
])
def test_a_lambda_handed_over_in_a_generator_under_no_grad(change, expected):
    source = TIMED_IN_A_GENERATOR.replace(*change) if change else TIMED_IN_A_GENERATOR
    assert found(source) == expected


ROLLOUT_FOR_TRAINING = """
import torch
from torch import nn


class Agent:
    def __init__(self, render):
        self.model = nn.Linear(4, 2)
        self.optimizer = torch.optim.Adam(self.model.parameters())
        if render:
            self.model.eval()
            self.generate_episode(render=True)

    def fit(self, episodes):
        for _ in range(episodes):
            loss = self.generate_batch()
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()

    def generate_batch(self):
        returns, log_probs = self.generate_episode()
        return (returns * log_probs).mean().neg()

    def generate_episode(self, render=False):
        log_probs, rewards = [], []
        for _ in range(10):
            probs = self.model(torch.randn(1, 4)).squeeze(0)
            log_probs.append(probs[torch.argmax(probs)])
            rewards.append(1.0)
        return torch.tensor(rewards), torch.stack(log_probs)


if __name__ == "__main__":
    Agent(render=False).fit(3)
"""


@pytest.mark.parametrize("change, expected", [
    # the rollout's log-probabilities are what training backpropagates, two calls up
    (None, []),
    # nothing backpropagates them: the rollout is inference
    (("            loss.backward()\n", ""), [("GRD101", 26, 8)]),
])
def test_a_rollout_whose_results_a_caller_backpropagates_is_no_inference_function(change, expected):
    source = ROLLOUT_FOR_TRAINING.replace(*change) if change else ROLLOUT_FOR_TRAINING
    assert found(source) == expected


CALLED_WITH_GRAD_ONLY_ON_0_3 = """
import torch

torch_ver = torch.__version__[:3]


def predict(net, images):
    outs = []
    for x in images:
        outs.append(net(x))
    return outs


def main():
    net = torch.nn.Linear(4, 2)
    net.eval()
    images = [torch.randn(1, 4)]
    if torch_ver == "0.3":
        out = predict(net, images)
    else:
        with torch.no_grad():
            out = predict(net, images)
    print(out)


if __name__ == "__main__":
    main()
"""


@pytest.mark.parametrize("change, expected", [
    # the call with grad on runs only on torch 0.3 (where ``volatile=True`` did the work)
    (None, []),
    # a branch any release may take
    (('    if torch_ver == "0.3":\n', "    if len(images) > 1:\n"), [("GRD101", 9, 4)]),
])
def test_a_call_made_with_grad_only_on_torch_0_3(change, expected):
    source = CALLED_WITH_GRAD_ONLY_ON_0_3.replace(*change) if change else CALLED_WITH_GRAD_ONLY_ON_0_3
    assert found(source) == expected


RETURNS_A_LAMBDA_THAT_RUNS_THE_MODEL = """
import torch
from cleanfid import fid


def build_extractor(path):
    net = torch.jit.load(path)
    net.eval()
    return lambda x: net(x)


def reference_features(folder):
    extractor = build_extractor("inception.pt")
    return fid.get_folder_features(folder, model=extractor)


@torch.no_grad()
def translate(generator, images):
    return [generator(x) for x in images]


def main(folders, generator):
    generator.eval()
    for folder in folders:
        reference = reference_features(folder)
        fakes = translate(generator, folder)
        print(reference, fakes)
"""


@pytest.mark.parametrize("change, expected", [
    # the lambda runs where it is called, in a library here: the function only makes it
    (None, []),
    # the function calls the model itself
    (("    return lambda x: net(x)\n", "    return net(torch.zeros(1))\n"), [("GRD101", 24, 4)]),
])
def test_a_lambda_returned_runs_no_model_in_the_function(change, expected):
    source = RETURNS_A_LAMBDA_THAT_RUNS_THE_MODEL
    if change:
        source = source.replace(*change)
    assert found(source) == expected


KERAS_MODEL_FROM_A_BUILDER_BESIDE_TORCH = """
import numpy as np
import tensorflow as tf
import torch


def create_mlp(num_columns):
    inp = tf.keras.layers.Input(shape=(num_columns,))
    out = tf.keras.layers.Dense(1, activation="sigmoid")(tf.keras.layers.Dropout(0.2)(inp))
    model = tf.keras.models.Model(inputs=inp, outputs=out)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model


model = create_mlp(130)
model.load_weights("model.hdf5")
models = [model]
torch.manual_seed(0)

if __name__ == "__main__":
    for batch in np.random.rand(10, 1, 130):
        pred = np.mean([model(batch, training=False).numpy() for model in models], axis=0)
        print(pred)
"""


@pytest.mark.parametrize("change, expected", [
    # the module's builder returns a Keras model: no autograd graph
    (None, []),
    # a builder of a torch model
    (("    model = tf.keras.models.Model(inputs=inp, outputs=out)\n    model.compile(optimizer=\"adam\", "
      "loss=\"binary_crossentropy\")\n", "    model = torch.nn.Sequential(torch.nn.Linear(num_columns, 1), "
      "torch.nn.Dropout(0.2))\n    model.eval()\n"), [("GRD101", 21, 4)]),
])
def test_a_model_a_module_function_builds_with_another_framework(change, expected):
    source = KERAS_MODEL_FROM_A_BUILDER_BESIDE_TORCH
    if change:
        source = source.replace(*change)
        assert "torch.nn.Sequential" in source
    assert found(source) == expected


PARAMETER_FREE_UPSAMPLER = """
import torch
import torch.nn.functional as F


class BicubicSR:
    def __init__(self, factor=2):
        self.factor = factor

    def __call__(self, image):
        return torch.clamp(F.interpolate(image, scale_factor=self.factor, mode="bicubic"), -1, 1)

    def to(self, device):
        return self

    def eval(self):
        return self


def main(loader):
    model = BicubicSR(factor=2)
    model = model.to("cpu")
    model.eval()
    for lr, hr in loader:
        sr = model(lr)
        print(F.mse_loss(sr, hr).item())
"""


@pytest.mark.parametrize("change, expected", [
    # an instance of a plain class, moved by its own ``to``: it has no weights and builds no graph
    (None, []),
    # a torch module
    ((("class BicubicSR:\n", "class BicubicSR(torch.nn.Module):\n"),
      ("        self.factor = factor\n",
       "        super().__init__()\n        self.factor = factor\n        self.refine = torch.nn.Conv2d(1, 1, 3)\n")),
     [("GRD101", 26, 4)]),
])
def test_a_plain_instance_moved_by_its_own_to_is_no_model(change, expected):
    assert found(changed(PARAMETER_FREE_UPSAMPLER, change or ())) == expected


OPENCV_DNN_INFERENCE = """
import os

import cv2
from cv2 import dnn


def inference(onnx_path, images):
    net = dnn.readNetFromONNX(onnx_path)
    for name in os.listdir(images):
        image = cv2.imread(os.path.join(images, name))
        net.setInput(dnn.blobFromImage(image, 1 / 128, (320, 240), 127))
        boxes, scores = net.forward(["boxes", "scores"])
        print(boxes.shape, scores.shape)
"""


@pytest.mark.parametrize("change, expected", [
    # an OpenCV DNN network runs outside PyTorch: no graph
    (None, []),
    # a model the module gets from elsewhere may be a torch module
    ((("    net = dnn.readNetFromONNX(onnx_path)\n", "    net = load_detector(onnx_path)\n"),
      ("from cv2 import dnn\n", "from cv2 import dnn\nfrom detector import load_detector\n")),
     [("GRD101", 11, 4)]),
])
def test_a_network_of_another_runtime_run_by_its_forward_method(change, expected):
    assert found(changed(OPENCV_DNN_INFERENCE, change or ())) == expected


# a training loop whose update steps are commented out: the model is put in
# training mode before it, and its losses are read as numbers
STEPS_LEFT_OUT = """
import numpy as np
import torch


class Scorer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(5, 1)

    def forward(self, x, y):
        return torch.nn.functional.mse_loss(self.fc(x), y)


def main(xs, ys):
    model = Scorer()
    for epoch in range(10):
        model.train()
        losses = []
        for x, y in zip(xs, ys):
            loss = model(x, y)
            losses.append(loss.item())
        print(epoch, np.mean(losses))


main(torch.randn(4, 8, 5), torch.randn(4, 8, 1))
"""


@pytest.mark.parametrize("change, expected", [
    (None, []),
    # no switch to training mode: losses stripped of their graph in code that trains nothing
    (("        model.train()\n", ""), [("GRD101", 17, 4)]),
])
def test_a_loop_after_a_switch_to_training_mode_is_no_evaluation(change, expected):
    source = STEPS_LEFT_OUT.replace(*change) if change else STEPS_LEFT_OUT
    assert change is None or source != STEPS_LEFT_OUT
    assert [f for f in found(source) if f[0] == "GRD101"] == expected
