"""Shapes of real fixes the rules missed (recall), each beside a look-alike
that must stay silent.  Every case: the exact findings of the default rules."""

from __future__ import annotations

import pytest

from flake8_gradmode.engine import check
from flake8_gradmode.registry import RULES

EVAL_IN_A_SIBLING_CLOSURE = """
import torch


def main(model, optim, loader, val_loader):
    def train_epoch():
        model.train()
        for x in loader:
            optim.zero_grad()
            model(x).sum().backward()
            optim.step()
            evaluate()

    @torch.no_grad()
    def evaluate():
        model.eval()
        for x in val_loader:
            model(x)

    train_epoch()
"""

EVAL_IN_A_SIBLING_CLOSURE_TRAIN_AFTER = """
import torch


def main(model, optim, loader, val_loader):
    def train_epoch():
        model.train()
        for x in loader:
            optim.zero_grad()
            model(x).sum().backward()
            optim.step()
            evaluate()
            model.train()

    @torch.no_grad()
    def evaluate():
        model.eval()
        for x in val_loader:
            model(x)

    train_epoch()
"""

PLAIN_TRAINER_CLASS_WITH_FORWARD = """
import torch


class Runner(object):
    def __init__(self, module, optimizer):
        self.module_, self.optimizer_ = module, optimizer

    def forward(self, x):
        return self.module_(x)

    def validation_step(self, x):
        self.module_.eval()
        return self.module_(x).mean()

    def fit(self, train_data, valid_data):
        for x in train_data:
            self.module_.train()
            self.optimizer_.zero_grad()
            self.module_(x).mean().backward()
            self.optimizer_.step()
        for x in valid_data:
            self.validation_step(x)
"""

MIXIN_WITH_FORWARD = """
import torch


class StepMixin:  # mixed into nn.Module subclasses below
    def forward(self, x):
        return self.body(x)

    def rollout(self, x, valid_steps):
        for _ in range(valid_steps):
            x = self.body(x)
        return x


class Net(StepMixin, torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = torch.nn.Linear(4, 4)
"""

EVAL_ON_ONE_OF_TWO_TRAINED_MODELS = """
import torch


def train(model, head, loader, opt):
    model.train()
    head.train()
    for x in loader:
        opt.zero_grad()
        head(model(x)).sum().backward()
        opt.step()


@torch.no_grad()
def test(model, head, loader):
    model.eval()
    return [head(model(x)) for x in loader] and [head(model(x)).argmax(1) for x in loader]


def run(model, head, loader, val_loader, opt):
    for _ in range(3):
        train(model, head, loader, opt)
        preds = []
        with torch.no_grad():
            model.eval()
            for x in val_loader:
                preds.append(head(model(x)))
"""

EVAL_ON_THE_MODEL_A_FROZEN_HEAD_FOLLOWS = """
import torch


def train(model, loader, opt):
    model.train()
    for x in loader:
        opt.zero_grad()
        model(x).sum().backward()
        opt.step()


def run(model, head, loader, val_loader, opt):
    drop = torch.nn.Dropout(0.1)  # the file uses dropout
    for _ in range(3):
        train(model, loader, opt)
        preds = []
        with torch.no_grad():
            model.eval()
            for x in val_loader:
                preds.append(head(model(x)))  # head is frozen, never trained
"""

STEP_HELPER_RETURNS_ITS_SPENT_LOSS = """
import torch.nn.functional as F


class Trainer:
    def _step(self, x, y):
        self.opt.zero_grad()
        loss = F.cross_entropy(self.model(x), y)
        loss.backward()
        self.opt.step()
        return loss

    def train_epoch(self, loader):
        epoch_loss = 0
        for x, y in loader:
            epoch_loss += self._step(x, y)
        print("epoch loss", epoch_loss)
"""

STEP_HELPER_RETURNS_A_DETACHED_COPY = """
import torch.nn.functional as F


class Trainer:
    def _step(self, x, y):
        self.opt.zero_grad()
        loss = F.cross_entropy(self.model(x), y)
        loss.backward()
        self.opt.step()
        return {"loss": loss.detach().cpu().numpy()}

    def train_epoch(self, loader):
        outputs = []
        for x, y in loader:
            outputs.append(self._step(x, y))
        return outputs
"""

STEP_HELPER_LOSS_TAKEN_AS_A_NUMBER = """
import torch.nn.functional as F


class Trainer:
    def _step(self, x, y):
        self.opt.zero_grad()
        loss = F.cross_entropy(self.model(x), y)
        loss.backward()
        self.opt.step()
        return loss

    def train_epoch(self, loader):
        epoch_loss = 0
        for x, y in loader:
            epoch_loss += self._step(x, y).item()
        print("epoch loss", epoch_loss)
"""

STEP_HELPER_RETURNS_THE_LOSS_IT_SCALED_FOR_BACKWARD = """
import torch.nn.functional as F


class Trainer:
    def _step(self, x, y):
        loss = F.cross_entropy(self.model(x), y, reduction="sum")
        per_item = loss / x.shape[0]
        scaled = per_item / self.accumulate
        scaled.backward()
        self.opt.step()
        self.opt.zero_grad()
        return per_item

    def train_epoch(self, loader):
        epoch_loss = 0
        for x, y in loader:
            step_loss = self._step(x, y)
            epoch_loss += step_loss
        print("epoch loss", epoch_loss)
"""

STEP_HELPER_RETURNS_THE_DIVISOR_OF_ITS_LOSS = STEP_HELPER_RETURNS_THE_LOSS_IT_SCALED_FOR_BACKWARD.replace(
    "        per_item = loss / x.shape[0]\n", "        count = x.shape[0]\n        per_item = loss / count\n"
).replace("        return per_item", "        return count")


CASES = {
    # GRD103: the training closure calls a sibling closure that switches to eval
    "eval_in_a_sibling_closure": (EVAL_IN_A_SIBLING_CLOSURE, [("GRD103", 12, 12)]),
    "eval_in_a_sibling_closure_train_after": (EVAL_IN_A_SIBLING_CLOSURE_TRAIN_AFTER, []),
    # GRD101: a plain class with a forward of its own is a trainer, not an nn.Module
    "plain_trainer_class_with_forward": (PLAIN_TRAINER_CLASS_WITH_FORWARD, [("GRD101", 22, 8)]),
    "mixin_with_forward": (MIXIN_WITH_FORWARD, []),
    # GRD102: .eval() on one model, the loop also runs another that trains elsewhere
    "eval_on_one_of_two_trained_models": (EVAL_ON_ONE_OF_TWO_TRAINED_MODELS, [("GRD102", 26, 12)]),
    "eval_on_the_model_a_frozen_head_follows": (EVAL_ON_THE_MODEL_A_FROZEN_HEAD_FOLLOWS, []),
    # GRD104: the step helper returns the loss it ran backward on
    "step_helper_returns_its_spent_loss": (STEP_HELPER_RETURNS_ITS_SPENT_LOSS, [("GRD104", 16, 12)]),
    "step_helper_loss_taken_as_a_number": (STEP_HELPER_LOSS_TAKEN_AS_A_NUMBER, []),
    "step_helper_returns_a_detached_copy": (STEP_HELPER_RETURNS_A_DETACHED_COPY, []),
    # ... bound to a name first, and scaled before its backward
    "step_helper_returns_the_loss_it_scaled_for_backward": (
        STEP_HELPER_RETURNS_THE_LOSS_IT_SCALED_FOR_BACKWARD, [("GRD104", 19, 12)]
    ),
    "step_helper_returns_the_divisor_of_its_loss": (STEP_HELPER_RETURNS_THE_DIVISOR_OF_ITS_LOSS, []),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_shape(case):
    source, expected = CASES[case]
    found = check(source, rules=[r for r in RULES if r.default_on])
    assert [(v.code, v.line, v.col) for v in found] == expected
