"""GRD103 and GRD104 on the shapes real training scripts use.

GRD103 follows conditions and arguments: a train/validation phase loop, a
helper that sets the mode from its argument, a step helper that trains only
when given an optimizer, a training step that restores the mode itself, an
epoch loop that starts in training mode.  GRD104 reports a total of spent
losses even when it is returned, and a container whose item was the
``.backward()`` target.  Exact (code, line, column) for each."""

import textwrap

import pytest

from flake8_gradmode.engine import check
from flake8_gradmode.registry import by_code
from flake8_gradmode.settings import Settings
from tests.samples import changed

CODES = ("GRD103", "GRD104")
#: each case alone: a file name like train.py would otherwise sit inside this
#: repository, whose own modules would then answer cross-module questions
ALONE = Settings(cross_module=False)


def findings(source):
    found = check(textwrap.dedent(source), ALONE, filename="train.py")
    return [(v.code, v.line, v.col) for v in found if v.code in CODES]


PRELUDE = """
import torch
from torch import nn

model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), nn.Linear(4, 2))
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
"""


# --- GRD103: silent -------------------------------------------------------------


def test_eval_for_input_gradients_then_train_before_the_update():
    src = PRELUDE + """
def fit(loader, epochs, steps):
    for epoch in range(epochs):
        for x, y in loader:
            model.eval()
            x_adv = x.clone().requires_grad_(True)
            for _ in range(steps):
                criterion(model(x_adv), y).backward()
                x_adv = (x_adv + 0.01 * x_adv.grad.sign()).detach().requires_grad_(True)
            model.train()
            optimizer.zero_grad()
            criterion(model(x_adv), y).backward()
            optimizer.step()
"""
    assert findings(src) == []


def test_a_loop_that_only_computes_gradients_does_not_train():
    src = """
import torch
from torch import nn


def plot_grads(loader, activations):
    grads = {}
    for name, act in activations.items():
        net = nn.Sequential(nn.Linear(4, 8), act, nn.Dropout(0.1), nn.Linear(8, 2))
        net.eval()
        x, y = next(iter(loader))
        nn.functional.cross_entropy(net(x), y).backward()
        grads[name] = [p.grad.abs().mean().item() for p in net.parameters()]
    return grads
"""
    assert findings(src) == []


def test_a_copy_switched_to_eval_leaves_the_model_training():
    src = PRELUDE + """
import copy


def fit(train_loader, epochs):
    for epoch in range(epochs):
        for x, y in train_loader:
            optimizer.zero_grad()
            criterion(model(x), y).backward()
            optimizer.step()
        snapshot = copy.deepcopy(model).eval().requires_grad_(False).cpu()
        torch.save(snapshot, f"snapshot-{epoch}.pt")
        model.cpu().eval()
"""
    assert findings(src) == [("GRD103", 20, 8)]


def test_phase_loop_with_grad_enabled_by_phase():
    src = PRELUDE + """
def fit(model, loaders, epochs):
    for epoch in range(epochs):
        for phase in ["train", "val"]:
            if phase == "train":
                model.train()
            else:
                model.eval()
            running = 0.0
            for x, y in loaders[phase]:
                optimizer.zero_grad()
                with torch.set_grad_enabled(phase == "train"):
                    loss = criterion(model(x), y)
                    if phase == "train":
                        loss.backward()
                        optimizer.step()
                running += loss.item()
    return model
"""
    assert findings(src) == []


def test_phases_compared_with_different_literals():
    src = PRELUDE + """
def fit(model, loaders):
    for epoch in range(3):
        for phase in ("train", "val"):
            if phase == "val":
                model.eval()
            elif phase == "train":
                model.train()
            for x, y in loaders[phase]:
                if phase == "train":
                    optimizer.zero_grad()
                    criterion(model(x), y).backward()
                    optimizer.step()
"""
    assert findings(src) == []


def test_switch_and_step_under_one_flag():
    src = PRELUDE + """
def fit(data):
    for epoch in range(3):
        training = epoch % 2 == 0
        if training:
            model.train()
        else:
            model.eval()
        if training:
            optimizer.zero_grad()
            criterion(model(data), 0).backward()
            optimizer.step()
"""
    assert findings(src) == []


def test_mode_set_from_an_argument():
    src = PRELUDE + """
def set_mode(net, mode):
    net.train() if mode == "train" else net.eval()


def run_epoch(net, data, mode):
    set_mode(net, mode)
    for x, y in data:
        loss = criterion(net(x), y)
        if mode == "train":
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


for epoch in range(3):
    run_epoch(model, [], "train")
    run_epoch(model, [], "val")
"""
    assert findings(src) == []


def test_mode_set_from_a_flag():
    src = PRELUDE + """
def set_mode(net, training):
    net.train(training)


def validate(net, data):
    set_mode(net, False)
    with torch.no_grad():
        for x in data:
            net(x)


for epoch in range(3):
    set_mode(model, True)
    for x, y in []:
        optimizer.zero_grad()
        criterion(model(x), y).backward()
        optimizer.step()
    validate(model, [])
"""
    assert findings(src) == []


def test_training_step_judged_by_its_body():
    src = PRELUDE + """
class Trainer:
    def __init__(self, model):
        self.model = model

    def train_step(self, x, y):
        self.model.train()
        optimizer.zero_grad()
        criterion(self.model(x), y).backward()
        optimizer.step()

    def evaluate(self, data):
        self.model.eval()
        with torch.no_grad():
            for x, y in data:
                self.model(x)

    def fit(self, data, epochs):
        for epoch in range(epochs):
            for x, y in data:
                self.train_step(x, y)
            self.evaluate(data)
"""
    assert findings(src) == []


def test_step_helper_without_its_optimizer_trains_nothing():
    # the training loop switches to training mode (not at the top of the
    # epoch); the validation call passes no optimizer, so it steps nothing
    src = PRELUDE + """
def loss_batch(model, loss_fn, xb, yb, opt=None):
    loss = loss_fn(model(xb), yb)
    if opt is not None:
        loss.backward()
        opt.step()
        opt.zero_grad()
    return loss.item(), len(xb)


def fit(epochs, model, loss_fn, opt, train_dl, valid_dl):
    for epoch in range(epochs):
        for xb, yb in train_dl:
            model.train()
            loss_batch(model, loss_fn, xb, yb, opt)
        model.eval()
        with torch.no_grad():
            losses, nums = zip(*[loss_batch(model, loss_fn, xb, yb) for xb, yb in valid_dl])
"""
    assert findings(src) == []


def test_epoch_that_starts_in_training_mode():
    # the gradients left over from accumulation are applied after validation:
    # whatever the end of an epoch does, the next one starts with train()
    src = PRELUDE + """
def fit(loader, val_loader, epochs, accumulate=4):
    for epoch in range(epochs):
        model.train()
        for i, (x, y) in enumerate(loader):
            (criterion(model(x), y) / accumulate).backward()
            if (i + 1) % accumulate == 0:
                optimizer.step()
                optimizer.zero_grad()
        model.eval()
        with torch.no_grad():
            for x, y in val_loader:
                model(x)
        optimizer.step()
        optimizer.zero_grad()
"""
    assert findings(src) == []


OVERRIDDEN_TRAIN = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
        self.head = nn.Sequential(nn.Dropout(0.5), nn.Linear(4, 2))

    def forward(self, x):
        return self.head(self.encoder(x))

    def train(self, mode=True, encoder_bn=True):
        super().train(mode)
        if mode and not encoder_bn:
            self.encoder.eval()
        return self


model = Net()
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)


def fit(loader, val_loader, epochs):
    for epoch in range(epochs):
        model.train(encoder_bn=False)
        for x, y in loader:
            optimizer.zero_grad()
            criterion(model(x), y).backward()
            optimizer.step()
            model.eval()
            with torch.no_grad():
                for v, _ in val_loader:
                    model(v)
            model.train(encoder_bn=False)
"""


@pytest.mark.parametrize("back, expected", [
    # an override's own switch leaves ``mode`` at its default: training mode
    ("model.train(encoder_bn=False)", []),
    ("model.train(mode=True, encoder_bn=False)", []),
    # ``mode`` passed: eval mode, the switch back reported instead of the
    # ``model.eval()`` before it (training resumes after the later switch)
    ("model.train(False, encoder_bn=False)", [("GRD103", 38, 12)]),
    ("model.train(mode=False, encoder_bn=False)", [("GRD103", 38, 12)]),
])
def test_a_train_override_called_with_its_own_switch_only_switches_to_training(back, expected):
    src = OVERRIDDEN_TRAIN.replace("            model.train(encoder_bn=False)", "            " + back)
    assert src.count(back) == 1 + (back == "model.train(encoder_bn=False)")
    assert textwrap.dedent(src).splitlines()[33].strip() == "model.eval()"
    assert findings(src) == expected


# --- GRD103: still reported -----------------------------------------------------


def test_validation_then_training_without_train_anywhere():
    src = PRELUDE + """
def fit(train_loader, val_loader, epochs):
    for epoch in range(epochs):
        for x, y in train_loader:
            optimizer.zero_grad()
            criterion(model(x), y).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            for x, y in val_loader:
                model(x)
"""
    assert findings(src) == [("GRD103", 15, 8)]


def test_step_outside_the_training_phase_condition():
    src = PRELUDE + """
def fit(model, loaders, epochs):
    for epoch in range(epochs):
        for phase in ["train", "val"]:
            if phase == "train":
                model.train()
            else:
                model.eval()
            for x, y in loaders[phase]:
                optimizer.zero_grad()
                criterion(model(x), y).backward()
                optimizer.step()
"""
    assert findings(src) == [("GRD103", 15, 16)]


def test_condition_variable_reassigned_between_switch_and_step():
    src = PRELUDE + """
def fit(data):
    for epoch in range(3):
        training = epoch % 2 == 0
        if training:
            model.train()
        else:
            model.eval()
        training = True
        if training:
            optimizer.zero_grad()
            criterion(model(data), 0).backward()
            optimizer.step()
"""
    assert findings(src) == [("GRD103", 15, 12)]


def test_mode_helper_called_with_eval_then_training_resumes():
    src = PRELUDE + """
def set_mode(net, mode):
    net.train() if mode == "train" else net.eval()


def fit(data):
    set_mode(model, "train")
    for epoch in range(3):
        for x, y in data:
            optimizer.zero_grad()
            criterion(model(x), y).backward()
            optimizer.step()
        set_mode(model, "eval")
"""
    assert findings(src) == [("GRD103", 20, 8)]


def test_step_helper_given_its_optimizer_after_eval():
    src = PRELUDE + """
def loss_batch(model, xb, yb, opt=None):
    loss = criterion(model(xb), yb)
    if opt is not None:
        loss.backward()
        opt.step()
    return loss.item()


def fit(train_dl, valid_dl):
    model.train()
    for epoch in range(3):
        for xb, yb in train_dl:
            loss_batch(model, xb, yb, optimizer)
        model.eval()
        with torch.no_grad():
            for xb, yb in valid_dl:
                loss_batch(model, xb, yb)
"""
    assert findings(src) == [("GRD103", 22, 8)]


def test_training_step_that_does_not_restore_the_mode():
    src = PRELUDE + """
class Trainer:
    def __init__(self, model):
        self.model = model

    def train_step(self, x, y):
        optimizer.zero_grad()
        criterion(self.model(x), y).backward()
        optimizer.step()

    def evaluate(self, data):
        self.model.eval()
        with torch.no_grad():
            for x, y in data:
                self.model(x)

    def fit(self, data, epochs):
        self.model.train()
        for epoch in range(epochs):
            for x, y in data:
                self.train_step(x, y)
            self.evaluate(data)
"""
    assert findings(src) == [("GRD103", 29, 12)]


def test_train_under_a_condition_counts_as_switching_back():
    # precision first: a ``.train()`` that may run is taken to run
    src = PRELUDE + """
def fit(data, epochs, warmup):
    for epoch in range(epochs):
        if epoch < warmup:
            model.train()
        for x, y in data:
            optimizer.zero_grad()
            criterion(model(x), y).backward()
            optimizer.step()
        model.eval()
"""
    assert findings(src) == []


PHASE_STEP = PRELUDE + """
def show_samples(net):
    net.eval()
    with torch.no_grad():
        return net(torch.randn(2, 4))


def run_step(phase, x, y, sample):
    training = (phase == "train")
    if training:
        model.train()
    else:
        model.eval()
{body}
    if training:
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return loss.item()


def fit(loaders, epochs):
    for epoch in range(epochs):
        for phase, loader in loaders.items():
            for step, (x, y) in enumerate(loader):
                run_step(phase, x, y, step % 100 == 0)
"""


def test_step_helper_switching_by_its_phase_argument_and_sampling_after_the_forward():
    # the phase never changes inside the batch loop, and the samples are
    # drawn after the training forward: the next step switches back first
    body = "    loss = criterion(model(x), y)\n    if sample:\n        show_samples(model)"
    assert findings(PHASE_STEP.format(body=body)) == []


def test_step_helper_switching_by_a_local_flag_made_from_its_phase_argument():
    # ``training = (phase == "train")``: the validation pass's eval mode never
    # meets the training branch, in this pass or the next (same phase)
    assert findings(PHASE_STEP.format(body="    loss = criterion(model(x), y)")) == []


def test_step_helper_sampling_before_the_training_forward_is_reported():
    body = "    if sample:\n        show_samples(model)\n    loss = criterion(model(x), y)"
    assert findings(PHASE_STEP.format(body=body)) == [("GRD103", 35, 16)]


# --- GRD104 ---------------------------------------------------------------------

FAQ = PRELUDE + """
def train(loader):
    total_loss = 0
    for x, y in loader:
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        total_loss += {value}
    return total_loss / len(loader)
"""


def test_returned_total_of_spent_losses():
    assert findings(FAQ.format(value="loss")) == [("GRD104", 16, 8)]


@pytest.mark.parametrize("value", ["loss.item()", "loss.detach()", "float(loss)"])
def test_returned_total_of_numbers(value):
    assert findings(FAQ.format(value=value)) == []


@pytest.mark.parametrize("value", [
    "loss.data[0]", "loss.data", "loss.detach().cpu()", "loss.data.cpu()[0]",
    # a number scaled by a count: a number
    "float(loss.data) * len(x)", "loss.item() * x.size(0)", "x.shape[0] * loss.item()",
])
def test_total_of_a_loss_rebound_to_a_detached_value(value):
    src = FAQ.format(value="loss").replace(
        "        total_loss += loss", f"        loss = {value}\n        total_loss += loss"
    )
    assert findings(src) == []


@pytest.mark.parametrize("value", ["loss * 1.0", "loss.cpu()", "loss * len(x)", "loss.item() * loss"])
def test_total_of_a_loss_rebound_to_a_value_that_keeps_its_graph(value):
    src = FAQ.format(value="loss").replace(
        "        total_loss += loss", f"        loss = {value}\n        total_loss += loss"
    )
    assert findings(src) == [("GRD104", 17, 8)]


def test_returned_total_under_no_grad():
    src = PRELUDE + """
def evaluate(loader):
    total_loss = 0
    with torch.no_grad():
        for x, y in loader:
            loss = criterion(model(x), y)
            total_loss += loss
    return total_loss
"""
    assert findings(src) == []


def test_returned_total_not_yet_differentiated():
    # the caller runs backward on the sum: the graph is needed
    src = PRELUDE + """
def total_loss(model, batches):
    total = 0
    for x, y in batches:
        optimizer.zero_grad()
        total += criterion(model(x), y)
    return total


def step(batches):
    optimizer.zero_grad()
    loss = total_loss(model, batches)
    loss.backward()
    optimizer.step()
"""
    assert findings(src) == []


META_BATCH = """
import torch
import torch.nn.functional as F


class Learner:
    def _adapt(self, x, y):
        weights = {k: w.clone() for k, w in self.weights.items()}
        for _ in range(self.steps):
            loss = F.cross_entropy(self._forward(x, weights), y)
            grads = torch.autograd.grad(loss, weights.values(), create_graph=True)
            for (k, w), g in zip(weights.items(), grads):
                weights[k] = w - self.lr * g
        return weights

    def _outer_step(self, tasks):
        query_losses = []
        for x, y, x_query, y_query in tasks:
            weights = self._adapt(x, y)
            query_loss = F.cross_entropy(self._forward(x_query, weights), y_query)
            query_losses.append(query_loss)
        outer_loss = {reduced}
        return outer_loss

    def fit(self, batches):
        for tasks in batches:
            self.optimizer.zero_grad()
            loss = self._outer_step(tasks)
            {use}
            self.optimizer.step()
"""


@pytest.mark.parametrize("reduced, use, expected", [
    # every task's loss reduced to the one the caller backpropagates: the graphs are needed
    ("torch.stack(query_losses).mean()", "loss.backward()", []),
    ("sum(query_losses) / len(query_losses)", "loss.backward()", []),
    # a caller that only logs the reduced loss: each graph kept for nothing
    ("torch.stack(query_losses).mean()", "print(loss.item())", [("GRD104", 21, 12)]),
    # only a number handed back: each graph kept for nothing
    ("sum(loss.item() for loss in query_losses)", "loss.backward()", [("GRD104", 21, 12)]),
    ("torch.stack(query_losses).mean().item()", "loss.backward()", [("GRD104", 21, 12)]),
])
def test_losses_reduced_to_the_returned_loss_are_needed(reduced, use, expected):
    src = META_BATCH.replace("{reduced}", reduced).replace("{use}", use)
    assert textwrap.dedent(src).splitlines()[20].strip() == "query_losses.append(query_loss)"
    assert findings(src) == expected


HISTORY = PRELUDE + """
def fit(loader):
    history = []
    for x, y in loader:
        out = model(x)
        losses = {{"total": criterion(out, y), "l1": out.abs().mean()}}
        optimizer.zero_grad()
        losses["total"].backward()
        optimizer.step()
        {line}
    return history
"""


@pytest.mark.parametrize(
    "line, expected",
    [
        ("history.append(losses)", [("GRD104", 17, 8)]),
        ('history.append(losses["total"])', [("GRD104", 17, 8)]),
        ("history.append({k: v.item() for k, v in losses.items()})", []),
        ('history.append(losses["total"].item())', []),
        ("history.append(dict((k, float(v)) for k, v in losses.items()))", []),
        ("losses = {k: v.detach() for k, v in losses.items()}; history.append(losses)", []),
        ('for k, v in losses.items(): losses[k] = v.item()\n        history.append(losses["total"])', []),
        ('losses["total"] = losses["total"].item(); history.append(losses["total"])', []),
        ('losses["l1"] = losses["l1"] * 2; history.append(losses["total"])', [("GRD104", 17, 41)]),
        ('losses["l1"] = losses["l1"].item(); history.append(losses["total"])', [("GRD104", 17, 44)]),
        # the backward target detached in place before the container is kept
        ('losses["total"] = losses["total"].detach(); history.append(losses)', []),
        ('losses["l1"] = losses["l1"].detach(); history.append(losses)', [("GRD104", 17, 46)]),
    ],
)
def test_container_whose_item_was_the_backward_target(line, expected):
    assert findings(HISTORY.format(line=line)) == expected


def test_container_bound_before_the_loop_is_overwritten_not_accumulated():
    src = PRELUDE + """
def fit(loader):
    history = []
    losses = {}
    for x, y in loader:
        losses["total"] = criterion(model(x), y)
        optimizer.zero_grad()
        losses["total"].backward()
        optimizer.step()
        history.append(losses)
"""
    assert findings(src) == []


def test_container_of_losses_keeps_every_graph():
    """What the finding claims, under real PyTorch."""
    torch = pytest.importorskip("torch")
    namespace = {"__name__": "__example__"}
    exec(compile(textwrap.dedent(HISTORY.format(line="history.append(losses)")), "<fixture>", "exec"), namespace)
    batch = (torch.randn(8, 4), torch.randint(0, 2, (8,)))
    history = namespace["fit"]([batch] * 3)
    assert all(entry["total"].grad_fn is not None for entry in history)


def test_attribute_that_was_the_backward_target():
    src = PRELUDE + """
def fit(loader):
    history = []
    for batch in loader:
        out = model(**batch)
        out.loss.backward()
        optimizer.step()
        history.append(out.loss)
        history.append(out.loss.item())
    return history
"""
    assert findings(src) == [("GRD104", 15, 8)]


# --- one model kept in eval mode for another model's step ----------------------


GAN_PRELUDE = """
import torch
from torch import nn

gen = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
disc = nn.Sequential(nn.Linear(4, 1), nn.Dropout(0.5))
g_opt = torch.optim.SGD(gen.parameters(), lr=0.1)
d_opt = torch.optim.SGD(disc.parameters(), lr=0.1)
"""


def test_discriminator_frozen_for_the_generator_step_and_switched_back_is_silent():
    src = GAN_PRELUDE + """
def fit(loader, epochs):
    for epoch in range(epochs):
        for x in loader:
            gen.train()
            disc.eval()
            g_opt.zero_grad()
            disc(gen(x)).mean().backward()
            g_opt.step()
            gen.eval()
            disc.train()
            d_opt.zero_grad()
            with torch.no_grad():
                fake = gen(x)
            disc(fake).mean().backward()
            d_opt.step()
"""
    assert findings(src) == []


def test_critic_frozen_for_the_policy_step_and_switched_back_at_the_next_pass_is_silent():
    src = GAN_PRELUDE + """
def fit(loader, ready):
    if ready:
        for x in loader:
            disc.train()
            d_opt.zero_grad()
            disc(x).mean().backward()
            d_opt.step()
            disc.eval()
            g_opt.zero_grad()
            disc(gen(x)).mean().backward()
            g_opt.step()
"""
    assert findings(src) == []


def test_frozen_model_never_switched_back_is_still_reported():
    src = GAN_PRELUDE + """
def fit(loader):
    for x in loader:
        batch = x * 2
        d_opt.zero_grad()
        disc(batch).mean().backward()
        d_opt.step()
        disc.eval()
        g_opt.zero_grad()
        disc(gen(batch)).mean().backward()
        g_opt.step()
"""
    assert findings(src) == [("GRD103", 16, 8)]


# --- GRD104: a function of the module named like a loss that returns a number ----


FLOAT_EVAL_LOSS = PRELUDE + """
class Runner:
    def eval_loss(self, loader):
        model.eval()
        loss = 0
        for x, y in loader:
            with torch.no_grad():
                loss += criterion(model(x), y).item()
        return loss / len(loader)

    def fit(self, loader, epochs):
        history = []
        for epoch in range(epochs):
            model.train()
            for x, y in loader:
                optimizer.zero_grad()
                criterion(model(x), y).backward()
                optimizer.step()
            val_loss = self.eval_loss(loader)
            history.append(val_loss)
        print(history)
"""


def test_validation_loss_helper_returning_a_float_is_not_a_graph():
    assert findings(FLOAT_EVAL_LOSS) == []


# the total a tensor made from a number, ``.item()`` numbers added to it,
# averaged over a count and returned as its element
TENSOR_OF_NUMBERS = FLOAT_EVAL_LOSS.replace("        loss = 0\n", "        loss = torch.Tensor([0])\n").replace(
    "            with torch.no_grad():\n                loss += criterion(model(x), y).item()\n"
    "        return loss / len(loader)\n",
    "            loss += criterion(model(x), y).item()\n        loss /= self.count\n        return loss[0]\n")


@pytest.mark.parametrize("source, expected", [
    (TENSOR_OF_NUMBERS, []),
    # a tensor made to require grad is no total of numbers
    (TENSOR_OF_NUMBERS.replace("torch.Tensor([0])", "torch.zeros(1, requires_grad=True)"), [("GRD104", 27, 12)]),
])
def test_validation_loss_helper_returning_an_element_of_a_tensor_of_numbers(source, expected):
    assert findings(source) == expected


# the total and the count start in one tuple assignment; the mean is
# guarded against an empty loader
PAIRED_TOTALS = FLOAT_EVAL_LOSS.replace("        loss = 0\n", "        loss, count = 0.0, 0\n").replace(
    "                loss += criterion(model(x), y).item()\n        return loss / len(loader)\n",
    "                loss += criterion(model(x), y).item()\n            count += 1\n"
    "        return loss / count if count else float(\"nan\")\n")


@pytest.mark.parametrize("source, expected", [
    (PAIRED_TOTALS, []),
    (PAIRED_TOTALS.replace('float(\"nan\")', "torch.zeros(1, requires_grad=True)"), [("GRD104", 28, 12)]),
    (PAIRED_TOTALS.replace("loss, count = 0.0, 0", "loss, count = torch.zeros(1, requires_grad=True), 0"),
     [("GRD104", 28, 12)]),
])
def test_a_loss_helper_returning_a_mean_of_numbers_started_together(source, expected):
    assert findings(source) == expected


def test_loss_helper_returning_the_tensor_is_still_reported():
    src = PRELUDE + """
class Runner:
    def calc_loss(self, x, y):
        return criterion(model(x), y)

    def fit(self, loader, epochs):
        total = 0
        for epoch in range(epochs):
            for x, y in loader:
                optimizer.zero_grad()
                loss = self.calc_loss(x, y)
                self.apply(loss)
                optimizer.step()
                total += loss
        print(total.item())

    def apply(self, loss):
        loss.backward()
"""
    assert findings(src) == [("GRD104", 21, 16)]


STEP_HELPER = PRELUDE + """
class Engine:
    def train_single_batch(self, x, y):
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        loss = loss.item()
        return loss

    def train_an_epoch(self, loader):
        total_loss = 0
        for x, y in loader:
            loss = self.train_single_batch(x, y)
            total_loss += loss
        return total_loss
"""


def test_a_step_helper_returning_its_loss_as_a_number_keeps_no_graph():
    assert findings(STEP_HELPER) == []
    # the same helper returning the tensor it ran backward on keeps every graph
    assert findings(STEP_HELPER.replace("        loss = loss.item()\n", "")) == [("GRD104", 21, 12)]


def test_losses_kept_by_a_unit_test_are_not_reported():
    src = PRELUDE + """
def test_loss_goes_down(loader):
    losses = []
    for x, y in loader:
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss)
    assert losses[-1] < losses[0]
"""
    assert findings(src) == [("GRD104", 16, 8)]  # in a script
    found = check(textwrap.dedent(src), ALONE, filename="tests/test_training.py")
    assert [v.code for v in found if v.code in CODES] == []  # in a test file


def test_a_loss_attribute_reset_at_the_top_of_every_step_is_not_an_accumulator():
    source = """
import torch


class Strategy:
    def training_epoch(self):
        for self.mbatch in self.dataloader:
            self.optimizer.zero_grad()
            self.loss = torch.zeros(())
            self.loss += self.criterion(self.model(self.mbatch[0]), self.mbatch[1])
            self.loss.backward()
            self.optimizer.step()
"""
    assert [f for f in findings(source) if f[0] == "GRD104"] == []
    kept = source.replace("            self.loss = torch.zeros(())\n", "")
    assert [f for f in findings(kept) if f[0] == "GRD104"] == [("GRD104", 9, 12)]


@pytest.mark.parametrize("example", range(len(by_code("GRD103").INVALID)))
def test_grd103_skips_unit_tests(example):
    invalid = by_code("GRD103").INVALID[example]
    source = textwrap.dedent(invalid.code)
    here = [(v.line, v.col) for v in check(source, ALONE, filename="train.py") if v.code == "GRD103"]
    assert here == list(invalid.at)
    assert [v for v in check(source, ALONE, filename="tests/test_train.py") if v.code == "GRD103"] == []


REPEATED_CRITIC_STEPS = """
import torch


def fit(generator, critic, optimizer, loader, repeats):
    for noise, real in loader:
        fake = generator(noise).detach()
        critic_total = 0.0
        for _ in range(repeats):
            optimizer.zero_grad()
            loss = critic(fake).mean() - critic(real).mean()
            loss.backward()
            optimizer.step()
            critic_total += loss
        print(critic_total.item() / repeats)
"""


def test_a_total_reset_around_a_repeated_step_keeps_a_bounded_window():
    assert findings(REPEATED_CRITIC_STEPS) == []
    over_data = REPEATED_CRITIC_STEPS.replace("for _ in range(repeats):", "for real in loader:")
    assert findings(over_data) == [("GRD104", 14, 12)]
    signature = "def fit(generator, critic, optimizer, loader, repeats):\n"
    reset_once = REPEATED_CRITIC_STEPS.replace(signature, signature + "    critic_total = 0.0\n").replace(
        "        critic_total = 0.0\n", ""
    )
    assert findings(reset_once) == [("GRD104", 14, 12)]


AGENT_WITH_ITS_OWN_EVAL = """
import torch
from torch import nn


class Agent:
    def __init__(self, env):
        self.env = env
        self.net = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.1), nn.Linear(8, 2))
        self.optimizer = torch.optim.Adam(self.net.parameters())

    def eval(self):
        return sum(self.env.score(self.net) for _ in range(10))

    def train(self, steps):
        for step in range(steps):
            loss = self.net(self.env.sample()).pow(2).mean()
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            if step % 100 == 0:
                print(self.eval())
"""


def test_self_eval_of_a_plain_class_with_its_own_eval_method_switches_no_mode():
    assert findings(AGENT_WITH_ITS_OWN_EVAL) == []
    switching = AGENT_WITH_ITS_OWN_EVAL.replace("print(self.eval())", "self.net.eval()")
    assert findings(switching) == [("GRD103", 22, 16)]


RUNNER_EVALUATING_A_FRESH_COPY = """
import torch
from torch import nn


def build():
    return nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.1), nn.Linear(8, 2))


class Runner:
    def validate(self, loader, weights):
        net = Net()
        net.load_state_dict(weights)
        net.eval()
        with torch.no_grad():
            return [net(x).argmax(1) for x in loader]

    def fit(self, loader, epochs):
        net = Net()
        optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
        for epoch in range(epochs):
            for x, y in loader:
                optimizer.zero_grad()
                nn.functional.cross_entropy(net(x), y).backward()
                optimizer.step()
            self.validate(loader, net.state_dict())


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = build()

    def forward(self, x):
        return self.body(x)
"""


def test_a_helper_switching_a_model_it_builds_itself_leaves_the_callers_model_training():
    assert findings(RUNNER_EVALUATING_A_FRESH_COPY) == []
    # the same helper switching the model it is handed does leave it in eval mode
    handed = (
        RUNNER_EVALUATING_A_FRESH_COPY
        .replace("def validate(self, loader, weights):", "def validate(self, loader, net):")
        .replace("        net = Net()\n        net.load_state_dict(weights)\n", "")
        .replace("self.validate(loader, net.state_dict())", "self.validate(loader, net)")
    )
    assert findings(handed) == [("GRD103", 24, 12)]


RUNNER_WRAPPING_ITS_OWN_MODEL = """
import torch
from torch import nn


class Runner:
    def __init__(self):
        self.net = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.1), nn.Linear(8, 2))

    def validate(self, loader):
        net = self.net
        net = nn.DataParallel(net)
        net.eval()
        with torch.no_grad():
            return [net(x).argmax(1) for x in loader]

    def fit(self, loader, epochs):
        optimizer = torch.optim.SGD(self.net.parameters(), lr=0.1)
        for epoch in range(epochs):
            for x, y in loader:
                optimizer.zero_grad()
                nn.functional.cross_entropy(self.net(x), y).backward()
                optimizer.step()
            self.validate(loader)
"""


def test_a_helper_wrapping_the_callers_model_switches_the_callers_model():
    # ``nn.DataParallel(net)`` of ``net = self.net`` builds a wrapper, not a new model
    assert findings(RUNNER_WRAPPING_ITS_OWN_MODEL) == [("GRD103", 24, 12)]


GENERATOR_TAUGHT_BY_FROZEN_CLASSIFIERS = """
import torch
from torch import nn


def distill(generator, classifiers, optimizer, steps):
    generator.train()
    for _ in range(steps):
        z = generator(torch.randn(16, 8))
        logits = 0
        for classifier in classifiers:
            classifier.eval()
            logits = logits + classifier(z)
        loss = nn.functional.cross_entropy(logits, torch.zeros(16, dtype=torch.long))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
"""


def test_models_queried_in_eval_mode_while_another_model_trains_are_not_reported():
    src = GENERATOR_TAUGHT_BY_FROZEN_CLASSIFIERS.replace("def distill", "nn.Dropout(0.1)\n\n\ndef distill")
    assert findings(src) == []
    # the model switched to training mode is the one switched to eval mode: reported
    same = src.replace("generator.train()", "classifiers[0].train()").replace(
        "for classifier in classifiers:\n            classifier.eval()",
        "for classifier in classifiers[:1]:\n            classifiers[0].eval()",
    )
    assert findings(same) == [("GRD103", 15, 12)]


def test_a_model_trained_before_the_loop_and_put_in_eval_mode_in_it_is_reported():
    # ``unet.train(); text_encoder.train()`` at the epoch's top, ``unet.eval()`` for
    # a validation inside the step loop: the rest of the epoch trains in eval mode
    src = GENERATOR_TAUGHT_BY_FROZEN_CLASSIFIERS.replace("def distill", "nn.Dropout(0.1)\n\n\ndef distill")
    both = src.replace("generator.train()", "generator.train()\n    classifiers[0].train()").replace(
        "for classifier in classifiers:\n            classifier.eval()",
        "for classifier in classifiers[:1]:\n            classifiers[0].eval()",
    )
    assert findings(both) == [("GRD103", 16, 12)]


TRAINER_FREEZING_BATCH_NORM = """
import torch
from torch import nn


def freeze_norms(net):
    for layer in net.modules():
        if isinstance(layer, nn.BatchNorm2d):
            layer.eval()


class Runner:
    def __init__(self, net, loaders, opt, freeze=False):
        self.net, self.loaders, self.opt, self.freeze = net, loaders, opt, freeze

    def run_loader(self, loader):
        self.net.train(loader.training)
        if self.freeze:
            freeze_norms(self.net.backbone)
        torch.set_grad_enabled(loader.training)
        for x, y in loader:
            loss = nn.functional.mse_loss(self.net(x), y)
            if loader.training:
                self.opt.zero_grad()
                loss.backward()
                self.opt.step()

    def run_epoch(self):
        for loader in self.loaders:
            self.run_loader(loader)
"""


def test_batch_norm_layers_frozen_for_training_are_not_the_model_left_in_eval_mode():
    # ``layer.eval()`` on the BatchNorm layers drawn from ``net.modules()``
    # freezes their statistics on purpose, for the training that follows
    assert findings(TRAINER_FREEZING_BATCH_NORM) == []
    inline = TRAINER_FREEZING_BATCH_NORM.replace(
        "freeze_norms(self.net.backbone)",
        "for _, m in self.net.named_modules():\n                m.eval()",
    )
    assert findings(inline) == []
    # the whole model put in eval mode there is still reported
    whole = TRAINER_FREEZING_BATCH_NORM.replace("freeze_norms(self.net.backbone)", "self.net.eval()")
    assert findings(whole) == [("GRD103", 30, 12)]


LAST_EVALUATION_THEN_STOP = """
import torch
from torch import nn

model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), nn.Linear(4, 2))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)


def evaluate(model, loader):
    model.eval()
    with torch.no_grad():
        return sum(float(model(x).sum()) for x in loader)


def train(loader, valid, max_steps):
    model.train()
    step = 0
    while True:
        for x in loader:
            loss = model(x).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            if step == max_steps:
                score = evaluate(model, valid)
                torch.save(model.state_dict(), f"last-{score}.pt")
                return
"""


def test_the_last_evaluation_before_return_is_followed_by_no_training():
    assert findings(LAST_EVALUATION_THEN_STOP) == []
    for stop in ("break", "raise SystemExit(0)"):
        assert findings(LAST_EVALUATION_THEN_STOP.replace("                return", f"                {stop}")) == []
    # an evaluation every few steps, training on after it, is still reported
    periodic = LAST_EVALUATION_THEN_STOP.replace("                return\n", "")
    assert findings(periodic) == [("GRD103", 26, 24)]


EVAL_ON_THE_LAST_BATCH = """
import torch


def fit(model, optimizer, loader, epochs, evaluate):
    model = model.train()
    for epoch in range(epochs):
        model.train()
        for i, x in enumerate(loader):
            optimizer.zero_grad()
            model(x).pow(2).mean().backward()
            optimizer.step()
            if i == len(loader) - 1:
                model.eval()
                evaluate(model)
"""


@pytest.mark.parametrize("test", ["i == len(loader) - 1", "i + 1 == len(loader)", "len(loader) - 1 == i"])
def test_an_evaluation_on_the_last_batch_has_no_next_batch_in_eval_mode(test):
    assert findings(EVAL_ON_THE_LAST_BATCH.replace("i == len(loader) - 1", test)) == []


@pytest.mark.parametrize("test", ["i % 100 == 99", "i == 0", "epoch == len(loader) - 1"])
def test_an_evaluation_on_other_batches_is_reported(test):
    assert findings(EVAL_ON_THE_LAST_BATCH.replace("i == len(loader) - 1", test)) == [("GRD103", 14, 16)]


EVALUATED_TWICE_AFTER_EACH_EPOCH = """
import torch


def evaluate(model, loader):
    model.eval()
    with torch.no_grad():
        return sum(model(x).sum().item() for x in loader)


def fit(model, optimizer, train_loader, valid_loader, epochs):
    model.train()
    for epoch in range(epochs):
        for x in train_loader:
            optimizer.zero_grad()
            model(x).pow(2).mean().backward()
            optimizer.step()
        train_score = evaluate(model, train_loader)
        valid_score = evaluate(model, valid_loader)
        print(epoch, train_score, valid_score)
"""


def test_two_evaluations_in_a_row_are_one_finding_at_the_last():
    """Training resumes after the second: a ``.train()`` after the first
    would change nothing, so only the second is reported."""
    assert findings(EVALUATED_TWICE_AFTER_EACH_EPOCH) == [("GRD103", 19, 22)]
    # the second only on some epochs: the first is reported as well
    sometimes = EVALUATED_TWICE_AFTER_EACH_EPOCH.replace(
        "        valid_score = evaluate(model, valid_loader)\n",
        "        if epoch % 5 == 0:\n            valid_score = evaluate(model, valid_loader)\n",
    )
    assert findings(sometimes) == [("GRD103", 18, 22), ("GRD103", 20, 26)]


def test_losses_of_several_models_kept_for_one_batch_or_for_the_epoch():
    """The list renewed for each batch holds one loss per model (the rule's
    example); renewed only once, before the batches, it keeps them all."""
    example = textwrap.dedent(next(v.code for v in by_code("GRD104").VALID if v.title.startswith("One loss per model")))
    assert findings(example) == []
    once = example.replace("for x in [torch.randn(8, 4)] * 4:\n    losses = []\n",
                           "losses = []\nfor x in [torch.randn(8, 4)] * 4:\n")
    assert once != example
    assert findings(once) == [("GRD104", 12, 8)]
    # a loop over data inside the batch loop is no walk over models
    over_data = example.replace("for head, optimizer in zip(heads, optimizers):",
                                "for chunk in x.split(4):").replace("head(x)", "heads[0](chunk)").replace(
                                    "optimizer.", "optimizers[0].")
    assert findings(over_data) == [("GRD104", 12, 8)]


ONE_STEP_PER_AGENT = """
import torch


class Agents:
    def __init__(self, n):
        self.critics = [torch.nn.Linear(4, 1) for _ in range(n)]
        self.optimizers = [torch.optim.SGD(c.parameters(), lr=0.1) for c in self.critics]

    def update(self, batches):
        losses = []
        for i in range(len(self.critics)):
            self.optimizers[i].zero_grad()
            loss = self.critics[i](batches[i]).pow(2).mean()
            loss.backward()
            self.optimizers[i].step()
            losses.append(loss)
        return losses
"""


def test_one_loss_per_model_in_a_list_each_call_makes_afresh():
    """One step for each of k models, indexed by the loop variable: the list
    the call makes holds k losses at most (MADDPG's per-agent update)."""
    assert findings(ONE_STEP_PER_AGENT) == []
    # indexing the data, not the models: a walk over batches keeps them all
    over_data = ONE_STEP_PER_AGENT.replace("self.critics[i](batches[i])", "self.critics[0](batches[i])").replace(
        "self.optimizers[i].step()", "self.optimizers[0].step()")
    assert findings(over_data) == [("GRD104", 17, 12)]
    # made once for the object, the list outlives the call and keeps them all
    kept = ONE_STEP_PER_AGENT.replace("        losses = []\n", "").replace("losses.append", "self.losses.append")
    kept = kept.replace("self.optimizers = [", "self.losses = []\n        self.optimizers = [")
    assert findings(kept) == [("GRD104", 17, 12)]


# --- two models taking turns inside a function the loop calls -------------------

TAKING_TURNS = """
def train(model, view_learner, loader, model_optimizer, view_optimizer):
    for step, batch in enumerate(loader):
        view_learner.train()
        model.eval()  # frozen while the view learner takes its step
        view_optimizer.step()
        model.train()
        view_learner.eval()  # frozen while the model takes its step
        model_optimizer.step()


def run(model, view_learner, loader, model_optimizer, view_optimizer, epochs):
    for epoch in range(1, epochs):
        losses = train(model, view_learner, loader, model_optimizer, view_optimizer)
"""


def test_models_taking_turns_inside_a_called_function_are_switched_back():
    # each model is switched back before its own step, inside the function
    # the loop calls: the call leaves no model in eval mode for a step
    assert findings(TAKING_TURNS) == []


# --- a function that makes its own model each time the loop calls it --------

MODEL_MADE_BY_A_FACTORY = """
import torch

import models


def importance(model, loader):
    model.train()


def train_task(loader, task):
    model = models.create("mlp")
    model = model.cuda()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    if task > 0:
        model.eval()  # keep the batch-norm statistics of the first task
    for epoch in range(2):
        for x in loader:
            loss = model(x).pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


if __name__ == "__main__":
    for task in range(3):
        train_task([], task)
"""


@pytest.mark.parametrize("source, expected", [
    # ``models.create(...)``: every call switches a model of its own, not one the loop keeps
    (MODEL_MADE_BY_A_FACTORY, []),
    # the module's model: the next call trains it in eval mode
    (MODEL_MADE_BY_A_FACTORY.replace('    model = models.create("mlp")', "    global model"), [("GRD103", 27, 8)]),
])
def test_a_model_a_factory_makes_in_the_called_function_is_its_own(source, expected):
    assert findings(source) == expected


# --- a frozen model its trainer keeps in eval mode ---------------------------

FROZEN_BACKBONE = """
import torch
from torch import nn


class Learner:
    def __init__(self, backbone, head):
        self.backbone = backbone
        self.head = head
        self.optimizer = torch.optim.SGD(head.parameters(), lr=0.1)

    def validate(self, loader):
        self.backbone.eval()
        with torch.no_grad():
            return sum(self.head(self.backbone(x)).argmax(1).eq(y).sum().item() for x, y in loader)

    def train(self, loader, val_loader):
        self.head.train()
        self.backbone.eval()
        for step, (x, y) in enumerate(loader):
            with torch.no_grad():
                features = self.backbone(x)
            loss = nn.functional.cross_entropy(self.head(features), y)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            if step % 100 == 99:
                self.validate(val_loader)
"""


@pytest.mark.parametrize("source, expected", [
    # the backbone is kept in eval mode before the loop: validation switching it again changes nothing
    (FROZEN_BACKBONE, []),
    # validation also switches the head the loop trains
    (FROZEN_BACKBONE.replace("        self.backbone.eval()\n        with", "        self.backbone.eval()\n"
                             "        self.head.eval()\n        with"), [("GRD103", 29, 16)]),
    # the loop's function never switches the backbone to eval mode itself
    (FROZEN_BACKBONE.replace("        self.head.train()\n        self.backbone.eval()\n",
                             "        self.head.train()\n"), [("GRD103", 27, 16)]),
])
def test_a_frozen_model_the_trainer_keeps_in_eval_mode(source, expected):
    assert findings(source) == expected


# --- a loss made a number in a tuple assignment ------------------------------

LOSS_MADE_A_NUMBER = """
import torch
from torch import nn


def train(model, loader, optimizer):
    losses = []
    for x, y in loader:
        out = model(x)
        loss = nn.functional.cross_entropy(out, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss, err = loss.item(), (out.argmax(1) != y).float().mean().item()
        losses.append(loss)
    return losses
"""


@pytest.mark.parametrize("source, expected", [
    (LOSS_MADE_A_NUMBER, []),  # ``loss`` is a Python number by the time it is kept
    (LOSS_MADE_A_NUMBER.replace("loss, err = loss.item(), ", "err = "), [("GRD104", 15, 8)]),
    (LOSS_MADE_A_NUMBER.replace("loss, err = loss.item(), ", "loss, err = loss, "), [("GRD104", 15, 8)]),
])
def test_a_loss_made_a_number_in_a_tuple_assignment_keeps_no_graph(source, expected):
    assert findings(source) == expected


# A shared epoch helper switches by ``is_train = opt is not None`` and steps once more after
# its loop under ``is_train and accum != batch_accum``: that step needs ``is_train`` too, so
# it never runs in the call that switched to eval mode.
EPOCH_STEP_WITH_A_LEFTOVER_STEP = """
import torch


def epoch_step(loader, model, criterion, opt=None, batch_accum=2):
    is_train = opt is not None
    if is_train:
        model.train()
    else:
        model.eval()
    accum = 0
    for x, y in loader:
        loss = criterion(model(x), y) / batch_accum
        if is_train:
            loss.backward()
            accum += 1
            if accum == batch_accum:
                opt.step()
                opt.zero_grad()
                accum = 0
    if is_train and accum != 0:
        opt.step()
        opt.zero_grad()


def main(model, criterion, opt, train_loader, valid_loader):
    for epoch in range(10):
        epoch_step(train_loader, model=model, criterion=criterion, opt=opt)
        with torch.no_grad():
            epoch_step(valid_loader, model=model, criterion=criterion, opt=None)
"""


#: the leftover step after a backward pass of its own
LEFTOVER_BACKWARD = (
    "        opt.step()\n        opt.zero_grad()\n\n\ndef main",
    "        criterion(model(x), y).backward()\n        opt.step()\n        opt.zero_grad()\n\n\ndef main",
)


@pytest.mark.parametrize("source, expected", [
    (EPOCH_STEP_WITH_A_LEFTOVER_STEP, []),
    # a step with no backward pass since the switch, the mode set back before
    # the next forward (``epoch_step`` starts with it): the mode changes nothing
    (EPOCH_STEP_WITH_A_LEFTOVER_STEP.replace("if is_train and accum != 0:", "if is_train or accum != 0:"), []),
    (EPOCH_STEP_WITH_A_LEFTOVER_STEP.replace(*LEFTOVER_BACKWARD), []),
    (EPOCH_STEP_WITH_A_LEFTOVER_STEP.replace(*LEFTOVER_BACKWARD).replace(
        "if is_train and accum != 0:", "if is_train or accum != 0:"), [("GRD103", 29, 8)]),
])
def test_a_step_under_a_condition_implying_the_training_branch(source, expected):
    assert findings(source) == expected


# Text-encoder training stops at a given step: the encoder is switched to eval mode and its
# grad switched off in the same place, on purpose; it never trains again.
TEXT_ENCODER_TRAINING_STOPS = """
import torch


def train(unet, text_encoder, optimizer, loader, stop_at):
    step = 0
    for epoch in range(10):
        unet.train()
        text_encoder.train()
        for batch in loader:
            if step == stop_at:
                text_encoder.eval()
                text_encoder.requires_grad_(False)
            loss = (unet(batch) - text_encoder(batch)).pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
"""


@pytest.mark.parametrize("source, expected", [
    (TEXT_ENCODER_TRAINING_STOPS, []),
    # switched to eval mode without freezing: it trains on with dropout off
    (TEXT_ENCODER_TRAINING_STOPS.replace("                text_encoder.requires_grad_(False)\n", ""),
     [("GRD103", 12, 16)]),
])
def test_a_model_switched_to_eval_mode_and_frozen_trains_no_more(source, expected):
    assert findings(source) == expected


# One epoch function for both phases: the mode follows whether an optimizer is
# passed (``if optimizer: train() else: eval()``); the training call passes the
# optimizer its caller builds, so it switches back to training mode.
MODE_FROM_THE_OPTIMIZER = """
import torch
from torch import nn


class Runner:
    def __init__(self, net):
        self.net = net

    def run(self, loader, optimizer=None, phase="train"):
        if optimizer:
            self.net.train()
        else:
            self.net.eval()
        total = 0.0
        for x, y in loader:
            if phase == "train":
                loss = nn.functional.mse_loss(self.net(x), y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            else:
                with torch.no_grad():
                    loss = nn.functional.mse_loss(self.net(x), y)
            total += loss.item()
        return total

    def fit(self, train_loader, val_loader, epochs):
        optimizer = torch.optim.Adam(self.net.parameters(), lr=1e-3)
        for epoch in range(epochs):
            self.run(train_loader, optimizer=optimizer, phase="train")
            self.run(val_loader, phase="val")
"""


@pytest.mark.parametrize("source, expected", [
    (MODE_FROM_THE_OPTIMIZER, []),
    (MODE_FROM_THE_OPTIMIZER.replace("from torch import nn", "from torch import nn, optim").replace(
        "torch.optim.Adam(", "optim.SGD("), []),
    # an optimizer handed in may be None: whether the call trains is unknown
    (MODE_FROM_THE_OPTIMIZER.replace("epochs):", "epochs, optimizer):").replace(
        "        optimizer = torch.optim.Adam(self.net.parameters(), lr=1e-3)\n", ""), [("GRD103", 30, 12)]),
    # bound to something else as well: unknown
    (MODE_FROM_THE_OPTIMIZER.replace("        for epoch in", "        if epochs > 5:\n            optimizer = None\n"
                                     "        for epoch in"), [("GRD103", 33, 12)]),
])
def test_the_mode_set_from_whether_an_optimizer_is_passed(source, expected):
    assert findings(source) == expected


# One optimizer step over a few micro-batches: the total is made afresh by
# each call and read as a number after the loop, so it holds a few graphs at
# most.  Walking the data with it keeps one graph per batch.
MICRO_BATCH_TOTAL = """
import torch


class Trainer:
    def __init__(self, model, opt, batches, gradient_accumulate_every=4):
        self.model, self.opt, self.batches = model, opt, batches
        self.gradient_accumulate_every = gradient_accumulate_every

    def step(self):
        total_loss = torch.zeros([])
        for _ in range(self.gradient_accumulate_every):
            x, y = next(self.batches)
            loss = (self.model(x) - y).pow(2).mean() / self.gradient_accumulate_every
            loss.backward()
            total_loss += loss
        self.opt.step()
        self.opt.zero_grad()
        return float(total_loss.item())
"""


@pytest.mark.parametrize("source, expected", [
    (MICRO_BATCH_TOTAL, []),
    (MICRO_BATCH_TOTAL.replace("range(self.gradient_accumulate_every)", "self.batches"), [("GRD104", 16, 12)]),
    (MICRO_BATCH_TOTAL.replace("range(self.gradient_accumulate_every)", "range(10000)"), [("GRD104", 16, 12)]),
])
def test_a_total_over_the_micro_batches_of_one_step(source, expected):
    assert findings(source) == expected


# The sum of a list of auxiliary losses, each backpropagated: the list holds
# their graphs already, and the total is made afresh by each call.
SUM_OF_A_LIST = """
import torch


def aux_total(aux_losses, backward=False):
    total = 0
    for aux_loss in aux_losses:
        total += aux_loss
        if backward:
            aux_loss.backward()
    return total


def train(model, aux_opt, loader):
    for x in loader:
        aux_opt.zero_grad()
        aux = aux_total(model.aux_losses(x), backward=True)
        aux_opt.step()
        print(aux.item())
"""


@pytest.mark.parametrize("source, expected", [
    (SUM_OF_A_LIST, []),
    # the items are losses computed in the loop: one graph per item is kept
    (SUM_OF_A_LIST.replace("total += aux_loss", "total += aux_loss * 2"), [("GRD104", 8, 8)]),
])
def test_the_sum_of_a_list_of_losses_holds_no_more_graphs(source, expected):
    assert findings(source) == expected


# A course's discriminator of convolutions, layer norm and leaky ReLUs: its
# mode changes nothing, and torchvision brings only the data in.  A model
# from torchvision (``torchvision.models``) may have batch norm.
PLAIN_LAYERS_WITH_TORCHVISION_DATA = """
import torch
import torch.nn as nn
import torchvision
import torchvision.transforms as transforms


class Critic(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3), nn.LayerNorm([8, 30, 30]), nn.LeakyReLU())
        self.head = nn.Linear(8 * 30 * 30, 10)

    def forward(self, x):
        return self.head(self.body(x).flatten(1))


data = torchvision.datasets.CIFAR10("data", transform=transforms.ToTensor())
loader = torch.utils.data.DataLoader(data, batch_size=32)
model = Critic()
optimizer = torch.optim.Adam(model.parameters())
model.train()
for epoch in range(10):
    for x, y in loader:
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        print(model(x).argmax(1))
"""


@pytest.mark.parametrize("source, expected", [
    (PLAIN_LAYERS_WITH_TORCHVISION_DATA, []),
    (PLAIN_LAYERS_WITH_TORCHVISION_DATA.replace("model = Critic()", "model = torchvision.models.resnet18()"),
     [("GRD103", 29, 4)]),
])
def test_torchvision_for_data_only_brings_no_model(source, expected):
    assert findings(source) == expected


# A layer written by hand in numpy, as course autograders check them: its
# ``backward`` takes the upstream gradient, and autograd never runs; the
# outputs kept are arrays.  A wrapper's ``backward(loss)`` is autograd's.
HAND_WRITTEN_LAYER = """
import numpy as np
import torch


class Scale:
    def __init__(self, k):
        self.k = k

    def forward(self, x):
        return x * self.k

    def backward(self, grad):
        return grad * self.k


def check_scale(seeds):
    outputs, grads = [], []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        layer = Scale(rng.integers(1, 5))
        out = layer.forward(rng.standard_normal((2, 3)))
        grads.append(layer.backward(out))
        outputs.append(out)
    print(len(outputs), len(grads))


def fit(accelerator, model, loader, opt):
    losses = []
    for x, y in loader:
        loss = torch.nn.functional.mse_loss(model(x), y)
        accelerator.backward(loss)
        opt.step()
        losses.append(loss)
    print(len(losses))
"""


def test_a_layer_written_by_hand_keeps_no_graph():
    assert findings(HAND_WRITTEN_LAYER) == [("GRD104", 34, 8)]


# An engine's own forward and backward (``engine.forward(x)``,
# ``engine.backward(loss)``): its argument is the loss autograd runs on.
ENGINE_BACKWARD = """
import torch


def train(engine, loader):
    history = []
    for x, y in loader:
        out = engine.forward(x)
        loss = out.loss
        engine.backward(loss)
        engine.step()
        history.append(loss)
    print(history)
"""


def test_an_engine_forward_and_backward_is_autograd():
    assert findings(ENGINE_BACKWARD) == [("GRD104", 12, 8)]


# MAML++'s multi-step loss: the query loss of every inner step is kept on
# purpose, stacked, averaged and backpropagated, scaled by the batch size
MULTI_STEP_LOSS = """
import torch
import torch.nn.functional as F


def meta_step(model, tasks, optimizer, steps, n):
    optimizer.zero_grad()
    for x, y, qx, qy in tasks:
        query_losses = []
        fast = [p.clone() for p in model.parameters()]
        for step in range(steps):
            loss = F.mse_loss(F.linear(x, *fast), y)
            grads = torch.autograd.grad(loss, fast, create_graph=True)
            fast = [w - 0.1 * g for w, g in zip(fast, grads)]
            query_losses.append(F.mse_loss(F.linear(qx, *fast), qy))
        query_loss = torch.stack(query_losses).mean()
        (query_loss / n).backward()
    optimizer.step()
"""


@pytest.mark.parametrize("backward, expected", [
    ("(query_loss / n).backward()", []),
    ("(-query_loss).backward()", []),
    ("query_loss.backward()", []),
    # the stacked losses only logged, another loss backpropagated
    ("print(query_loss.item())\n        loss.backward()", [("GRD104", 15, 12)]),
])
def test_losses_stacked_into_a_scaled_backward_target_are_needed(backward, expected):
    assert findings(MULTI_STEP_LOSS.replace("(query_loss / n).backward()", backward)) == expected


METER = """
import torch
{imports}

{klass}

def train(model, loader, optimizer):
    meter = {meter}
    for x, y in loader:
        loss = (model(x) - y).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        meter.append(loss)
    return meter
"""

OWN_METER = """
class Meter:
    def __init__(self, n):
        self.values = torch.zeros(n)
        self.count = 0

    def append(self, value):
        self.values[self.count] = {value}
        self.count += 1
"""


@pytest.mark.parametrize("imports, klass, meter, expected", [
    # the module's own class detaches what it is given
    ("", OWN_METER.format(value="value.detach()"), "Meter(len(loader))", []),
    # the module's own class copies the tensor in, graph and all
    ("", OWN_METER.format(value="value"), "Meter(len(loader))", [("GRD104", 23, 8)]),
    # a class of another module: what its append keeps is not known here
    ("from meters import Meter", "", "Meter(len(loader))", []),
    # a list built by a call keeps what it is given
    ("from collections import deque", "", "deque()", [("GRD104", 14, 8)]),
])
def test_an_object_with_its_own_append_decides_what_it_keeps(imports, klass, meter, expected):
    assert findings(METER.format(imports=imports, klass=klass, meter=meter)) == expected


NUMBER_EITHER_WAY = """
import torch


def train(model, loader, optimizer, n):
    total = 0
    for x, y in loader:
        loss = (model(x) - y).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss = {value}
        total += loss
    return total
"""


@pytest.mark.parametrize("value, expected", [
    # a number whichever branch runs
    ("loss.item() if n > 0 else 0", []),
    # one branch keeps the tensor, graph and all
    ("loss.item() if n > 0 else loss", [("GRD104", 13, 8)]),
])
def test_a_loss_made_a_number_by_a_conditional_holds_no_graph(value, expected):
    assert findings(NUMBER_EITHER_WAY.format(value=value)) == expected


# A trainer whose step reads ``idx_scale``, which only its ``test`` binds (as
# its own loop variable): the first pass raises NameError, nothing accumulates.
FIRST_STEP_RAISES = """
import torch


class Trainer:
    def __init__(self, model, loss, optimizer, scales):
        self.model, self.loss, self.optimizer, self.scales = model, loss, optimizer, scales

    def train(self, loader):
        total = 0
        for x, y in loader:
            self.optimizer.zero_grad()
            loss = self.loss(self.model(x, idx_scale), y)
            total = total + loss
            loss.backward()
            self.optimizer.step()
        return total

    def test(self, loader):
        with torch.no_grad():
            for idx_scale, scale in enumerate(self.scales):
                print([self.model(x, idx_scale) for x in loader])
"""


@pytest.mark.parametrize("change, expected", [
    ("", []),
    ("self.model(x, idx_scale), y)", [("GRD104", 14, 12)]),  # replaced by ``self.model(x, 0)``
])
def test_a_step_reading_a_name_only_another_method_binds_accumulates_nothing(change, expected):
    source = FIRST_STEP_RAISES.replace(change, "self.model(x, 0), y)") if change else FIRST_STEP_RAISES
    assert findings(source) == expected


# Each epoch scores the predictions it collected under no_grad: the loss of
# their concatenation has no graph to keep.
SCORED_COLLECTION = """
import torch


def fit(model, optimizer, train_loader, val_loader, loss_fn, epochs):
    val_losses = []
    for epoch in range(epochs):
        model.train()
        for x, y in train_loader:
            optimizer.zero_grad()
            loss_fn(model(x), y).backward()
            optimizer.step()
        model.eval()
        preds, ys = [], []
        for x, y in val_loader:
            with torch.no_grad():
                preds.append(model(x))
                ys.append(y)
        val_losses.append(loss_fn(torch.cat(preds), torch.cat(ys).to(x.device)))
    print(min(val_losses))
"""


@pytest.mark.parametrize("change, expected", [
    ((), []),
    # a prediction kept with grad on: its graph is in the loss
    (("                preds.append(model(x))\n                ys.append(y)",
      "                ys.append(y)\n            preds.append(model(x))"), [("GRD104", 19, 8)]),
    (("preds, ys = [], []", "preds, ys = [model(x)], []"), [("GRD104", 19, 8)]),
    (("torch.cat(ys).to(x.device)", "model(x)"), [("GRD104", 19, 8)]),  # an argument with a graph
])
def test_a_loss_of_predictions_collected_under_no_grad_keeps_no_graph(change, expected):
    source = SCORED_COLLECTION.replace(*change) if change else SCORED_COLLECTION
    assert findings(source) == expected


# A meta-learner's step backpropagates and returns ``meta_loss.item()``: the
# script's list of losses holds numbers, though the script backpropagates a
# ``loss`` elsewhere.
META_STEP = """
import torch
import torch.nn.functional as F


class MAML:
    def __init__(self, model, lr):
        self.model = model
        self.opt = torch.optim.Adam(model.parameters(), lr)

    def meta_train_step(self, tasks):
        meta_loss = 0
        for x, y in tasks:
            meta_loss += F.cross_entropy(self.model(x), y)
        self.opt.zero_grad()
        meta_loss.backward()
        self.opt.step()
        return meta_loss.item()


maml = MAML(torch.nn.Linear(4, 2), 1e-3)
meta_losses = []
for episode in range(100):
    tasks = []
    for _ in range(4):
        tasks.append(make_task())
    loss = maml.meta_train_step(tasks)
    meta_losses.append(loss)

# the script's next example backpropagates a ``loss`` of its own
net = torch.nn.Linear(4, 2)
opt = torch.optim.SGD(net.parameters(), 0.1)
for x, y in make_tasks():
    loss, accuracy = proto_loss(net(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
print(meta_losses)
"""


@pytest.mark.parametrize("returned, expected", [
    ("meta_loss.item()", []),
    ("meta_loss", [("GRD104", 28, 4)]),  # the tensor itself: every episode's graph is kept
])
def test_a_step_method_of_an_object_returning_a_number(returned, expected):
    assert findings(META_STEP.replace("return meta_loss.item()", f"return {returned}")) == expected


# A step returns its loss per target token: ``loss.item() / target_length``,
# where the length is a size.
PER_TOKEN_STEP = """
import torch


class Trainer:
    def _calculate_loss(self, source, target):
        target_length = target.size(0)
        loss = self.criterion(self.model(source), target)
        loss.backward()
        self.optimizer.step()
        return loss.item() / target_length

    def train(self, pairs, epochs):
        for epoch in range(epochs):
            for source, target in pairs:
                loss = self.criterion(self.model(source), target)
                loss.backward()
                self.optimizer.step()
            if epoch % 5 == 0:
                total = 0
                for source, target in pairs[:10]:
                    total += self._calculate_loss(source, target)
                print(total / 10)
"""


@pytest.mark.parametrize("length, expected", [
    ("target.size(0)", []),
    ("len(target)", []),
    ("target.shape[0]", []),
    ("self.weights[0]", [("GRD104", 22, 20)]),  # whatever that is: it may hold a graph
])
def test_a_loss_helper_returning_a_number_divided_by_a_size(length, expected):
    assert findings(PER_TOKEN_STEP.replace("target.size(0)", length)) == expected


# --- a phase helper that switches the mode itself, by membership -------------

PHASE_HELPER = """
import torch


def forward_batch(model, criterion, inputs, targets, phase):
    if phase in ["train"]:
        model.train()
    elif phase in {valid}:
        model.eval()
    if phase in ["train"]:
        outputs = model(inputs)
    else:
        with torch.no_grad():
            outputs = model(inputs)
    return criterion(outputs, targets)


def fit(model, optimizer, criterion, train_loader, val_loader, epochs):
    for epoch in range(epochs):
        for loader_name, loader in [("train", train_loader), ("valid", val_loader)]:
            for inputs, targets in loader:
                loss = forward_batch(model, criterion, inputs, targets, loader_name)
                if loader_name == "train":
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
"""


@pytest.mark.parametrize("valid", ['["valid", "test"]', '("valid", "test")', '["valid"]'])
def test_a_phase_helper_switching_to_training_by_membership_restores_the_mode(valid):
    # ``phase in ["train"]`` is ``phase == "train"``, and ``phase in ("valid",
    # "test")`` excludes it: the training pass switches back before its step
    assert findings(PHASE_HELPER.format(valid=valid)) == []


# --- a loss attribute reset in every training iteration ------------------------

LOSS_ATTRIBUTE = """
import torch


class Meter:
    pass


def train(model, loader, optimizer, views):
    losses = Meter()
    {outside}
    for x, y in loader:
        {inside}
        for v in range(views):
            losses.view += torch.nn.functional.mse_loss(model(x[v]), y)
        losses.loss = losses.view / views
        optimizer.zero_grad()
        losses.loss.backward()
        optimizer.step()
"""


def test_a_loss_attribute_reset_in_every_training_iteration_is_not_reported():
    # ``losses.view = 0`` each step: the sum holds one step's graphs, which its backward uses
    assert findings(LOSS_ATTRIBUTE.format(outside="pass", inside="losses.view = 0")) == []


def test_a_loss_attribute_set_once_before_training_is_reported():
    assert findings(LOSS_ATTRIBUTE.format(outside="losses.view = 0", inside="pass")) == [("GRD104", 15, 12)]


# --- a backward target detached in place before it is kept -----------------------

DETACHED_IN_PLACE = """
import torch


def embed(model, loader, saliency=False):
    embeddings, grads = [], []
    for batch in loader:
        if saliency:
            batch.requires_grad_(True)
        z = model(batch)
        if saliency:
            z.backward(z)
            z.detach_()
            grads.append(batch.grad)
        embeddings.append(z)
    return torch.cat(embeddings), grads
"""


@pytest.mark.parametrize("detach, expected", [
    ("            z.detach_()\n", []),
    ("", [("GRD104", 14, 8)]),  # one line up, without the detach
])
def test_a_backward_target_detached_in_place_keeps_no_graph(detach, expected):
    source = DETACHED_IN_PLACE.replace("            z.detach_()\n", detach)
    assert [f for f in findings(source) if f[0] == "GRD104"] == expected


GAN_STEP_SETS_ITS_MODES = """
import torch
import torch.nn as nn


class Trainer:
    def __init__(self):
        self.disc = nn.Sequential(nn.Linear(4, 1), nn.Dropout(0.1))
        self.gen = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4))
        self.opt_d = torch.optim.SGD(self.disc.parameters(), lr=0.1)
        self.opt_g = torch.optim.SGD(self.gen.parameters(), lr=0.1)

    def step(self, z, i):
        self.disc.train()
        self.gen.eval()
        self.opt_d.zero_grad()
        self.disc(self.gen(z).detach()).mean().backward()
        self.opt_d.step()
        if i % 5 == 0:
            self.disc.eval()
            self.gen.train()
            self.opt_g.zero_grad()
            self.disc(self.gen(z)).mean().backward()
            self.opt_g.step()

    def train(self, loader, epochs):
        for epoch in range(epochs):
            for i, z in enumerate(loader):
                self.step(z, i)
            self.disc.eval()
            self.gen.eval()
            torch.save(self.gen.state_dict(), "gen.pt")
"""


def test_a_loop_calling_a_step_that_sets_each_models_mode_before_its_update_is_silent():
    # step() freezes the generator for the critic's update and switches it
    # back for its own, and the other way round: each update runs in the mode
    # the method chose, whatever the previous call left
    assert [f for f in findings(GAN_STEP_SETS_ITS_MODES) if f[0] == "GRD103"] == []


TRAINS_A_FRESH_MODEL_PER_FOLD = """
import torch
import torch.nn as nn


class Encoder(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d, 8), nn.Dropout(0.1))

    def forward(self, x):
        return self.net(x)


def fit(x, epochs):
    enc = Encoder(x.shape[1])
    opt = torch.optim.Adam(enc.parameters(), lr=1e-3)
    for _ in range(epochs):
        loss = enc(x).pow(2).mean()
        opt.zero_grad(); loss.backward(); opt.step()
    enc.eval()
    return enc


def cross_validate(folds):
    scores = []
    for x, x_val in folds:
        enc = fit(x, 10)
        with torch.no_grad():
            scores.append(enc(x_val).mean().item())
    return scores
"""


@pytest.mark.parametrize("change, expected", [
    # each call of fit() trains an encoder it builds: the eval() at its end reaches no model the next call trains
    ("", []),
    # handed one model instead, the next fold trains the model the last call left in eval mode
    ("def fit(x, epochs):\n    enc = Encoder(x.shape[1])|def fit(x, epochs, enc):"
     "&    for x, x_val in folds:\n        enc = fit(x, 10)|    model = Encoder(4)\n    for x, x_val in folds:\n"
     "        enc = fit(x, 10, model)", [("GRD103", 28, 14)]),
])
def test_a_helper_training_a_model_it_builds_on_each_call_leaves_none_in_eval_mode(change, expected):
    source = TRAINS_A_FRESH_MODEL_PER_FOLD
    for edit in change.split("&") if change else ():
        source = source.replace(*edit.split("|"))
    assert [f for f in findings(source) if f[0] == "GRD103"] == expected


UNCALLED_NO_GRAD_AFTER_A_NAME_ERROR = """
import torch


def score(model, batches):
    progress = tqdm(batches)
    with torch.no_grad:
        return [model(x) for x in progress]
"""


@pytest.mark.parametrize("before, expected", [
    ("    progress = tqdm(batches)\n", []),  # NameError first: the with statement never runs
    ("    progress = list(batches)\n", [("GRD001", 7, 9)]),
])
def test_an_uncalled_no_grad_no_run_reaches_is_not_reported(before, expected):
    source = UNCALLED_NO_GRAD_AFTER_A_NAME_ERROR.replace("    progress = tqdm(batches)\n", before)
    found = check(textwrap.dedent(source), ALONE, filename="train.py")
    assert [(v.code, v.line, v.col) for v in found if v.code == "GRD001"] == expected


# --- GRD103: a helper that saves the mode and puts it back ----------------------

SAVES_THE_MODE = PRELUDE + """

def perturb(net, x):
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            noise = net(x).mean() * 0.01
    finally:
        {restore}
    return x + noise


model.train()
for x, y in [(torch.randn(2, 4), torch.tensor([0, 1]))] * 3:
    x = perturb(model, x)
    loss = criterion(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
"""


@pytest.mark.parametrize("restore, found", [
    ("net.train(was_training)", []),
    ("net.train(mode=was_training)", []),
    ("if was_training:\n            net.train()\n        else:\n            net.eval()", []),
    ("if not was_training:\n            net.eval()\n        else:\n            net.train()", []),
    ("print(was_training)", [("GRD103", 23, 8)]),  # saved, never put back
])
def test_a_helper_that_puts_the_saved_mode_back_leaves_none_behind(restore, found):
    assert findings(SAVES_THE_MODE.format(restore=restore)) == found


# A trainer whose closure scores a few validation batches and returns a NumPy
# mean of ``.item()`` numbers: the list of those keeps no graph.
CLOSURE_VALIDATION = """
import numpy as np
import torch


class Trainer:
    def fit(self, model, loader, val_loader, optimizer, loss_fn, epochs):
        def quick_val_loss(model, val_loader, loss_fn, max_batches=10):
            model.eval()
            losses = []
            with torch.no_grad():
                for i, (x, y) in enumerate(val_loader):
                    if i >= max_batches:
                        break
                    losses.append(loss_fn(model(x), y).item())
            model.train()
            return np.mean(losses) if losses else float("inf")

        val_losses = []
        for epoch in range(epochs):
            for x, y in loader:
                optimizer.zero_grad()
                loss_fn(model(x), y).backward()
                optimizer.step()
                val_loss = quick_val_loss(model, val_loader, loss_fn)
                val_losses.append(val_loss)
        self.val_losses = val_losses
"""


@pytest.mark.parametrize("source, expected", [
    (CLOSURE_VALIDATION, []),
    # the closure hands back a tensor computed with grad: each one keeps its graph
    (CLOSURE_VALIDATION.replace("            with torch.no_grad():\n", "            if True:\n").replace(
        ".item())", ")").replace('np.mean(losses) if losses else float("inf")', "torch.stack(losses).mean()"),
     [("GRD104", 26, 16)]),
])
def test_a_closure_named_like_a_loss_that_returns_a_number(source, expected):
    assert [f for f in findings(source) if f[0] == "GRD104"] == expected


# Each epoch evaluates a copy: a model built afresh, given the trained
# weights, and switched to eval mode; the trained model stays in training mode.
EVALUATES_A_COPY = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))

    def forward(self, x):
        return self.body(x)


@torch.no_grad()
def evaluate(model, loader):
    model.eval()
    return sum(model(x).sum().item() for x in loader)


def fit(loader, epochs):
    model = Net()
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(epochs):
        for x in loader:
            optimizer.zero_grad()
            model(x).pow(2).mean().backward()
            optimizer.step()
        eval_model = Net()
        eval_model.load_state_dict(model.state_dict())
        print(evaluate(eval_model, loader))
"""


@pytest.mark.parametrize("source, expected", [
    (EVALUATES_A_COPY, []),
    (EVALUATES_A_COPY.replace("print(evaluate(eval_model, loader))", "print(evaluate(model, loader))"),
     [("GRD103", 32, 14)]),
])
def test_a_copy_built_in_the_pass_and_switched_to_eval_leaves_the_trained_model(source, expected):
    assert [f for f in findings(source) if f[0] == "GRD103"] == expected


# --- each fold's call builds its own model ------------------------------------

FOLDS_SCRIPT = """
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))

    def forward(self, x):
        return self.body(x)


def get_model():
    return Net()


def run_full_eval(fold, model=None):
    if model is None:
        model = get_model()
    model.eval()
    with torch.no_grad():
        return model(torch.randn(2, 4)).sum().item()


class ModelEma(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.module = model


def get_optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=0.1)


def train(fold):
    model = get_model()
    model_ema = ModelEma(model)
    optimizer = get_optimizer(model)
    for epoch in range(2):
        model.train()
        optimizer.zero_grad()
        model(torch.randn(2, 4)).sum().backward()
        optimizer.step()
        run_full_eval(fold, model)


if __name__ == "__main__":
    import sys
    for fold in range(3):
        if "--validate" in sys.argv:
            run_full_eval(fold)
        else:
            train(fold)
"""


@pytest.mark.parametrize("source, expected", [
    # ``run_full_eval(fold)`` leaves ``model=None``: it switches a model it makes; ``train(fold)`` trains
    # a model of its own with an optimizer ``get_optimizer`` makes over it
    (FOLDS_SCRIPT, []),
    # an optimizer made by a function not named so: its steps may reach a model of the caller's
    (FOLDS_SCRIPT.replace("get_optimizer", "get_scheduled"), [("GRD103", 55, 12)]),
    # an optimizer of a class named like one
    (FOLDS_SCRIPT.replace("get_optimizer(model)\n", "ClippedAdam(model.parameters(), lr=0.1)\n")
     .replace("def train(fold):", "class ClippedAdam(torch.optim.Adam):\n    pass\n\n\ndef train(fold):"), []),
    # stepped through a gradient scaler, after a resume that hands both back
    (FOLDS_SCRIPT.replace("    optimizer = get_optimizer(model)\n", "    optimizer = get_optimizer(model)\n"
                          "    scaler = torch.cuda.amp.GradScaler(enabled=False)\n"
                          "    model, optimizer = resume(model, optimizer)\n")
     .replace("        optimizer.step()\n", "        scaler.step(optimizer)\n        scaler.update()\n")
     .replace("def train(fold):", "def resume(model, optimizer):\n    return model, optimizer\n\n\ndef train(fold):"),
     []),
])
def test_each_fold_builds_its_own_model(source, expected):
    assert [f for f in findings(source) if f[0] == "GRD103"] == expected


BEST_OF_A_RECORD = """
import torch


class Results:
    def __init__(self):
        self.losses = []

    def get_best_loss(self):
        return min(self.losses)


def run(model, loader, criterion, optimizer, results, history):
    for epoch in range(3):
        for x, y in loader:
            loss = criterion(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            results.losses.append(loss.item())
        history.append(results.get_loss())
"""


@pytest.mark.parametrize("read, expected", [
    ("results.get_loss()", [("GRD104", 21, 8)]),  # named like a loss: taken to compute one
    ("results.get_best_loss()", []),  # the best of a record kept: no loss computed here
    ("results.lowest_loss()", []),
])
def test_the_best_of_a_record_of_losses_is_no_loss(read, expected):
    assert findings(BEST_OF_A_RECORD.replace("results.get_loss()", read)) == expected


GLOBAL_MODEL = """
import torch
from torch import nn


class Plain(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return torch.relu(self.fc(x))


model = Plain()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
loader = [(torch.randn(8, 4), torch.randint(0, 2, (8,)))]


def test():
    model.eval()
    with torch.no_grad():
        print(model(loader[0][0]).argmax(1))


def train():
    model.train()
    for epoch in range(3):
        for x, y in loader:
            loss = nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        test()


train()
"""


@pytest.mark.parametrize("layer, expected", [
    # a module global built from a class with no layer that depends on the mode: eval mode changes nothing
    ("nn.Linear(4, 2)", []),
    ("nn.Sequential(nn.Linear(4, 2), nn.Dropout(0.5))", [("GRD103", 34, 8)]),
])
def test_a_module_global_model_of_a_mode_free_class(layer, expected):
    assert findings(GLOBAL_MODEL.replace("nn.Linear(4, 2)", layer)) == expected


@pytest.mark.parametrize("forward, expected", [
    # a dropout registered in __init__ that forward never runs: eval mode still changes nothing
    ("torch.relu(self.fc(x))", []),
    ("torch.relu(self.fc(self.dropout(x)))", [("GRD103", 35, 8)]),
])
def test_a_model_whose_registered_dropout_never_runs(forward, expected):
    source = GLOBAL_MODEL.replace(
        "self.fc = nn.Linear(4, 2)", "self.fc = nn.Linear(4, 2)\n        self.dropout = nn.Dropout(0.5)"
    ).replace("torch.relu(self.fc(x))", forward)
    assert findings(source) == expected


# the rule's own linear probe: a backbone switched to eval mode at every epoch
# while a classifier trains on its features
LINEAR_PROBE = next(v.code for v in by_code("GRD103").VALID if v.title.startswith("A linear probe"))


@pytest.mark.parametrize("change, expected", [
    (None, []),
    # fine-tuned: the backbone runs with grad, its graph reaches the step
    (("        with torch.no_grad():\n            feature = backbone(x)", "        feature = backbone(x)"),
     [("GRD103", 8, 4)]),
    # its last layer trained on what its first made: the loop trains the backbone
    (("torch.nn.functional.cross_entropy(classifier(feature), y)",
      "torch.nn.functional.cross_entropy(backbone[1](feature), y)"), [("GRD103", 8, 4)]),
])
def test_a_backbone_the_loop_runs_only_under_no_grad_is_frozen_on_purpose(change, expected):
    source = LINEAR_PROBE.replace(*change) if change else LINEAR_PROBE
    assert change is None or source != LINEAR_PROBE
    assert [f for f in findings(source) if f[0] == "GRD103"] == expected


# a graph network of PyTorch Geometric layers, sized by module globals,
# trained by a script whose evaluation switches it to eval mode
GRAPH_SCRIPT = """
import torch
from torch import nn
from torch_geometric.nn import GATConv

in_feats, hidden = 16, 8
num_classes = 3


class Net(nn.Module):
    def __init__(self, in_channels, hidden_channels, out_channels):
        super().__init__()
        self.conv = GATConv(in_channels, hidden_channels, heads=2)
        self.lins = nn.ModuleList()
        for _ in range(2):
            self.lins.append(nn.Linear(2 * hidden_channels, 2 * hidden_channels))
        self.out = nn.Linear(2 * hidden_channels, out_channels)

    def forward(self, x, edge_index):
        x = self.conv(x, edge_index)
        for lin in self.lins:
            x = lin(x).relu()
        return self.out(x)


def evaluate(model, data):
    model.eval()
    with torch.no_grad():
        return model(data.x, data.edge_index).argmax(1)


def train(data):
    model = Net(in_feats, hidden, num_classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    model.train()
    for epoch in range(100):
        loss = nn.functional.cross_entropy(model(data.x, data.edge_index), data.y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        evaluate(model, data)
"""


@pytest.mark.parametrize("change, expected", [
    (None, []),
    # attention dropout: the layer differs between the modes
    (("GATConv(in_channels, hidden_channels, heads=2)", "GATConv(in_channels, hidden_channels, heads=2, dropout=0.6)"),
     [("GRD103", 41, 8)]),
    (("GATConv(in_channels, hidden_channels, heads=2)", "GATConv(in_channels, hidden_channels, 2, True, 0.2, 0.6)"),
     [("GRD103", 41, 8)]),
    # layers handed in: they may be anything
    (("        self.lins = nn.ModuleList()\n", "        self.lins = nn.ModuleList(blocks)\n"), [("GRD103", 41, 8)]),
    # a global that may be a module, not a number
    (("in_feats, hidden = 16, 8", "in_feats, hidden = nn.Dropout(0.5), 8"), [("GRD103", 41, 8)]),
])
def test_a_graph_network_without_dropout_is_the_same_in_both_modes(change, expected):
    source = GRAPH_SCRIPT.replace(*change) if change else GRAPH_SCRIPT
    assert [f for f in findings(source) if f[0] == "GRD103"] == expected


# the rule's own total of what a helper turns into a Python number, or None
TO_FLOAT = textwrap.dedent(next(
    v.code for v in by_code("GRD104").VALID if v.title.startswith("A total of what a helper of the module")
))


@pytest.mark.parametrize("change, expected", [
    (None, []),
    # the helper hands the tensor itself back
    (("return float(x.detach().item())", "return x"), [("GRD104", 28, 4)]),
    # only ever None: no number is returned, nothing is known
    (("return float(x.detach().item())", "return None"), [("GRD104", 28, 4)]),
    # a helper of the helper that is not the module's
    (("value = to_float(losses", "value = other.to_float(losses"), [("GRD104", 28, 4)]),
])
def test_a_total_of_what_a_helper_turns_into_a_number(change, expected):
    source = TO_FLOAT.replace(*change) if change else TO_FLOAT
    assert change is None or source != TO_FLOAT
    assert [f for f in findings(source) if f[0] == "GRD104"] == expected


# the rule's own training loss whose name is bound again to a number
REBOUND = textwrap.dedent(next(
    v.code for v in by_code("GRD104").VALID if v.title.startswith("The training loss's name bound again")
))


@pytest.mark.parametrize("change, expected", [
    (None, []),
    # never bound again: the last training loss, graph and all
    (("    loss = 0\n", ""), [("GRD104", 17, 4)]),
    # bound again only in a branch: the training loss when it is not taken
    (("    loss = 0\n", "    if epoch:\n        loss = 0\n"), [("GRD104", 19, 4)]),
    # a tensor added: the total is a tensor again
    (("loss += model(x).pow(2).mean().item()", "loss += model(x).pow(2).mean()"), [("GRD104", 18, 4)]),
    # bound again to a model's output, with its graph
    (("    loss = 0\n", "    loss = model(batches[0]).mean() * 0\n"), [("GRD104", 18, 4)]),
])
def test_a_loss_name_bound_again_to_a_number(change, expected):
    source = REBOUND.replace(*change) if change else REBOUND
    assert change is None or source != REBOUND
    assert [f for f in findings(source) if f[0] == "GRD104"] == expected


FOLDS = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), nn.Linear(4, 2))

    def forward(self, x):
        return self.body(x)


def evaluate(model, batches):
    if hasattr(model, "module"):
        model = model.module
    model.eval()
    total = 0.0
    with torch.no_grad():
        for x, y in batches:
            total += float(nn.functional.cross_entropy(model(x), y))
    return total


def train(model, batches, optimizer):
    for step, (x, y) in enumerate(batches):
        model.train()
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        if step % 10 == 0:
            evaluate(model=model, batches=batches)


def train_fold(batches):
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    train(model, batches, optimizer)
    return evaluate(model=model, batches=batches)


batches = [(torch.randn(8, 4), torch.randint(0, 2, (8,)))]
scores = []
for fold in range(5):
    scores.append(train_fold(batches))
"""


@pytest.mark.parametrize("change, expected", [
    # each fold trains a model of its own, switched to training mode before every step
    (None, []),
    # another model than the one handed in: which one is left in eval mode is not known
    (("model = model.module", "model = model.backbone"), [("GRD103", 46, 18)]),
    # switched to training mode once, before the loop that evaluates every ten steps
    (("    for step, (x, y) in enumerate(batches):\n        model.train()\n",
      "    model.train()\n    for step, (x, y) in enumerate(batches):\n"), [("GRD103", 33, 12)]),
])
def test_a_model_unwrapped_from_data_parallel_is_the_one_handed_in(change, expected):
    source = FOLDS.replace(*change) if change else FOLDS
    assert change is None or source != FOLDS
    assert findings(source) == expected


# the rule's own helper that returns its loss's name bound again to a mean of detached values
DETACHED_MEAN = textwrap.dedent(next(
    v.code for v in by_code("GRD104").VALID if v.title.startswith("A helper that returns its loss's name bound")
))


@pytest.mark.parametrize("change, expected", [
    (None, []),
    # the loss itself appended: the mean carries every step's graph
    (("losses.append(loss.detach().cpu().numpy())", "losses.append(loss)"), [("GRD104", 22, 4)]),
    # the list starts with something else than nothing
    (("losses = []", "losses = [model(batches[0]).mean()]"), [("GRD104", 22, 4)]),
])
def test_a_helper_returns_its_loss_name_bound_again_to_a_detached_mean(change, expected):
    source = DETACHED_MEAN.replace(*change) if change else DETACHED_MEAN
    assert change is None or source != DETACHED_MEAN
    assert [f for f in findings(source) if f[0] == "GRD104"] == expected


# PyTorch 0.3's evaluation helper: a total of losses read as ``.data[0]``
DATA_INDEX_TOTAL = """
import torch
from torch.autograd import Variable

model = torch.nn.Linear(4, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
criterion = torch.nn.MSELoss()
batches = [(torch.randn(8, 4), torch.randn(8, 1))] * 3


def eval_loss(data):
    total = 0
    for x, y in data:
        total += criterion(model(Variable(x, volatile=True)), Variable(y)).data[0]
    return total / len(data)


history = []
for epoch in range(2):
    for x, y in batches:
        optimizer.zero_grad()
        loss = criterion(model(Variable(x)), Variable(y))
        loss.backward()
        optimizer.step()
    history.append(eval_loss(batches))
"""


@pytest.mark.parametrize("change, expected", [
    (None, []),
    # the loss itself added: the total is a tensor with its graph
    ((("Variable(y)).data[0]", "Variable(y))"),), [("GRD104", 25, 4)]),
    # averaged over a count the caller hands in
    ((("def eval_loss(data):", "def eval_loss(data, count):"), ("total / len(data)", "total / count"),
      ("eval_loss(batches)", "eval_loss(batches, len(batches))")), []),
])
def test_a_total_of_losses_read_as_data_items(change, expected):
    source = changed(DATA_INDEX_TOTAL, change or ())
    assert change is None or source != DATA_INDEX_TOTAL
    assert [f for f in findings(source) if f[0] == "GRD104"] == expected


@pytest.mark.parametrize("changes, expected", [
    # the validation total kept under a name of its own, then averaged into the loss's name
    ((("    loss = 0\n", "    total = 0\n"),
      ("loss += model(x).pow(2).mean().item()", "total += model(x).pow(2).mean().item()"),
      ("    loss /= len(batches)\n", "    loss = total / len(batches)\n")), []),
    # the total adds tensors with their graphs: the average carries them all
    ((("    loss = 0\n", "    total = 0\n"), ("    with torch.no_grad():\n", "    if epoch >= 0:\n"),
      ("loss += model(x).pow(2).mean().item()", "total += model(x).pow(2).mean()"),
      ("    loss /= len(batches)\n", "    loss = total / len(batches)\n")), [("GRD104", 18, 4)]),
])
def test_a_loss_name_bound_again_to_the_average_of_a_total_of_numbers(changes, expected):
    source = changed(REBOUND, changes)
    assert [f for f in findings(source) if f[0] == "GRD104"] == expected


# nanoGPT's gradient accumulation: a detached loss over the number of micro-steps
MICRO_STEPS = """
import torch
import torch.nn.functional as F

model = torch.nn.Linear(4, 3)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
batches = [(torch.randn(8, 4), torch.randint(0, 3, (8,)))] * 4


def main(total_batch_size=64, micro_batch=4, seq_len=8):
    grad_accum_steps = total_batch_size // (micro_batch * seq_len)
    for step in range(3):
        optimizer.zero_grad()
        loss_accum = torch.tensor(0.0)
        for micro_step in range(grad_accum_steps):
            x, y = batches[micro_step]
            loss = F.cross_entropy(model(x), y)
            (loss / grad_accum_steps).backward()
            loss_accum += loss.detach() / grad_accum_steps
        optimizer.step()
        print(step, loss_accum.item())
"""


@pytest.mark.parametrize("change, expected", [
    (None, []),
    # a divisor whose name says nothing of a count may be a tensor of the graph
    (("grad_accum_steps", "scale"), [("GRD104", 19, 12)]),
])
def test_a_detached_loss_over_a_count_of_micro_steps(change, expected):
    source = MICRO_STEPS.replace(*change) if change else MICRO_STEPS
    assert change is None or source != MICRO_STEPS
    assert [f for f in findings(source) if f[0] == "GRD104"] == expected


TALLY_OF_FLOATS = """
import torch
from torch import nn


class Tally:
    def __init__(self, n):
        self.sums = [0.0] * n

    def add(self, *values):
        self.sums = [s + float(v) for s, v in zip(self.sums, values)]

    def __getitem__(self, i):
        return self.sums[i]


def evaluate_loss(net, batches, loss):
    tally = Tally(2)
    for x, y in batches:
        err = loss(net(x), y)
        tally.add(err.sum(), err.numel())
    return tally[0] / tally[1]


net = nn.Linear(3, 1)
loss = nn.MSELoss(reduction="none")
batches = [(torch.randn(4, 3), torch.randn(4, 1))]
optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
history = []
for epoch in range(5):
    for x, y in batches:
        optimizer.zero_grad()
        loss(net(x), y).mean().backward()
        optimizer.step()
    test_loss = evaluate_loss(net, batches, loss)
    history.append(test_loss)
"""


@pytest.mark.parametrize("change, expected", [
    # the tally turns every value into a float: its items carry no graph
    (None, []),
    # it keeps what it is given: the ratio is a tensor with its graph
    (("[s + float(v) for s, v", "[s + v for s, v"), [("GRD104", 36, 4)]),
    (("        return self.sums[i]", "        return torch.stack(self.sums)[i]"), [("GRD104", 36, 4)]),
])
def test_items_of_a_class_that_keeps_only_floats(change, expected):
    source = TALLY_OF_FLOATS.replace(*change) if change else TALLY_OF_FLOATS
    assert findings(source) == expected


TEST_BEHIND_A_FLAG_OFF = """
import torch
from torch import nn


def main(loader, test_loader):
    use_test = False
    test_every = 5
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), nn.Linear(4, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model.train()
    for epoch in range(20):
        for x, y in loader:
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
        if use_test and epoch % test_every == 0:
            model.eval()
            with torch.no_grad():
                for x, y in test_loader:
                    print(model(x).argmax(1))
"""


@pytest.mark.parametrize("change, expected", [
    # the function binds the flag once, to False: the test block never runs
    (None, []),
    (("    use_test = False\n", "    use_test = True\n"), [("GRD103", 18, 12)]),
    # bound again, or handed in: known only at run time
    (("    test_every = 5\n", "    test_every = 5\n    if len(test_loader) > 0:\n        use_test = True\n"),
     [("GRD103", 20, 12)]),
    (("def main(loader, test_loader):\n    use_test = False\n", "def main(loader, test_loader, use_test=False):\n"),
     [("GRD103", 17, 12)]),
])
def test_an_evaluation_behind_a_flag_the_function_sets_off(change, expected):
    source = TEST_BEHIND_A_FLAG_OFF.replace(*change) if change else TEST_BEHIND_A_FLAG_OFF
    assert findings(source) == expected


STEP_BEFORE_TRAIN = """
import torch
from torch import nn


def fit(loaders, epochs):
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), nn.Linear(4, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(epochs):
        for phase in ["train", "val"]:
            if phase == "train":
                optimizer.step()
                model.train()
            else:
                model.eval()
            for x, y in loaders[phase]:
                optimizer.zero_grad()
                loss = nn.functional.cross_entropy(model(x), y)
                if phase == "train":
                    loss.backward()
                    optimizer.step()
"""


@pytest.mark.parametrize("change, expected", [
    # the stray step before ``model.train()`` runs no forward pass: the mode changes nothing there
    (None, []),
    # a forward pass between them runs in eval mode
    (("                optimizer.step()\n                model.train()\n",
      "                optimizer.step()\n                model(loaders[phase][0][0])\n                model.train()\n"),
     [("GRD103", 16, 16)]),
    # a backward pass in eval mode since the switch: the stray step applies its gradients
    (("                if phase == \"train\":\n                    loss.backward()\n",
      "                loss.backward()\n                if phase == \"train\":\n"),
     [("GRD103", 15, 16)]),
])
def test_a_step_before_the_switch_back_to_training(change, expected):
    source = STEP_BEFORE_TRAIN.replace(*change) if change else STEP_BEFORE_TRAIN
    assert findings(source) == expected


TEST_LOSS_AFTER_NO_GRAD = """
import torch
from torch import nn

model = nn.Linear(4, 2)
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
loader = [(torch.randn(8, 4), torch.randint(0, 2, (8,)))] * 3
test_losses = []
for epoch in range(3):
    for x, y in loader:
        loss = criterion(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        for x_test, y_test in loader:
            y_val = model(x_test)
    loss = criterion(y_val, y_test)
    test_losses.append(loss)
"""


@pytest.mark.parametrize("change, expected", [
    # both inputs were made with grad off: the test loss has no graph
    (None, []),
    # the outputs made with grad on: a graph kept each epoch
    (("    with torch.no_grad():\n        for x_test", "    if True:\n        for x_test"),
     [("GRD104", 20, 4)]),
    # a parameter read under ``no_grad`` still requires grad
    (("            y_val = model(x_test)\n", "            y_val = model.weight\n"),
     [("GRD104", 20, 4)]),
])
def test_a_loss_of_outputs_made_with_grad_off(change, expected):
    source = TEST_LOSS_AFTER_NO_GRAD.replace(*change) if change else TEST_LOSS_AFTER_NO_GRAD
    assert findings(source) == expected


@pytest.mark.parametrize("count, expected", [
    # one epoch: the list keeps one spent graph, nothing piles up
    ("1", []),
    ("epochs", []),
    # more epochs, or a count the script reads: a graph kept for each
    ("3", [("GRD104", 17, 4)]),
    ("epochs * 2", [("GRD104", 17, 4)]),
])
def test_a_total_over_a_loop_that_runs_once(count, expected):
    source = PRELUDE + f"""
epochs = 1
train_losses = []
for epoch in range({count}):
    for x, y in [(torch.randn(8, 4), torch.randint(0, 2, (8,)))] * 3:
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
    train_losses.append(loss)
"""
    assert findings(source) == expected


VALIDATION_TOTAL_OVER_A_COUNT = PRELUDE + """
valid_loss = []
for epoch in range(3):
    for x, y in [(torch.randn(8, 4), torch.randint(0, 2, (8,)))] * 3:
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
    loss = 0.0
    iterations = 0
    for x, y in [(torch.randn(8, 4), torch.randint(0, 2, (8,)))] * 2:
        loss += criterion(model(x), y).data[0]
        iterations += 1
    valid_loss.append(loss / iterations)
"""


@pytest.mark.parametrize("change, expected", [
    # ``loss`` is bound again to a number that only numbers are added to
    (None, []),
    # the spent training loss itself, over a count
    (("    loss = 0.0\n", ""), [("GRD104", 20, 4)]),
])
def test_a_loss_name_bound_again_to_a_total_of_numbers_over_a_count(change, expected):
    source = VALIDATION_TOTAL_OVER_A_COUNT.replace(*change) if change else VALIDATION_TOTAL_OVER_A_COUNT
    assert findings(source) == expected


@pytest.mark.parametrize("spend, kept", [
    # ``.backward()`` ran on each loss: its activations are freed, its nodes are kept
    ("    loss.backward()\n", "spent autograd graph (`.backward()` freed its activations, not its nodes)"),
    # never backpropagated here: the whole graph, activations too
    ("", "autograd graph"),
])
def test_the_message_says_whether_the_kept_graph_was_spent(spend, kept):
    source = PRELUDE + """
losses = []
for x, y in [(torch.randn(8, 4), torch.randint(0, 2, (8,)))] * 3:
    optimizer.zero_grad()
    loss = criterion(model(x), y)
""" + spend + """    optimizer.step()
    losses.append(loss)
"""
    found = [v for v in check(textwrap.dedent(source), ALONE, filename="train.py") if v.code == "GRD104"]
    assert [(v.line, v.col, v.message) for v in found] == [(
        14 + bool(spend), 4,
        f"`losses.append(loss)` keeps every iteration's {kept} alive; accumulate `.item()` or `.detach()` instead",
    )]


LOADS_A_FROZEN_DECODER_IN_THE_LOOP = PRELUDE + """

def load_decoder(path):
    decoder = nn.Sequential(nn.Linear(2, 4), nn.Dropout(0.1))
    decoder.load_state_dict(torch.load(path))
    decoder.eval()
    return decoder


decoder = None
for step, (x, y) in enumerate(loader):
    loss = criterion(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step % 100 == 0:
        if decoder is None:
            decoder = load_decoder("decoder.pt")
        show(decoder, model(x))
"""


@pytest.mark.parametrize("change, expected", [
    # the switch is on the model the helper builds and hands back, not on the one the loop trains
    (None, []),
    # the helper switches the model it is handed
    (("def load_decoder(path):\n    decoder = nn.Sequential(nn.Linear(2, 4), nn.Dropout(0.1))\n",
      "def load_decoder(decoder):\n"), [("GRD103", 24, 22)]),
])
def test_a_helper_that_builds_a_model_in_eval_mode_switches_no_model_of_the_loop(change, expected):
    source = LOADS_A_FROZEN_DECODER_IN_THE_LOOP
    if change:
        source = source.replace(*change).replace('load_decoder("decoder.pt")', "load_decoder(model)")
    assert findings(source) == expected


TRAINS_A_MODEL_IT_MAKES_PER_FOLD = """
import torch


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.2))
        self.head = torch.nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.body(x))


def param_groups(net):
    return {"head": list(net.head.parameters()), "body": list(net.body.parameters())}


def fit_fold(factory, data):
    model = factory.build(data.spec).to("cpu")
    groups = param_groups(model)
    optimizer = torch.optim.AdamW([{"params": groups["head"], "lr": 1e-3}, {"params": groups["body"]}])
    for x, y in data.batches:
        loss = torch.nn.functional.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


def predict(model, xs):
    model.eval()
    with torch.no_grad():
        return [model(x) for x in xs]


def main(factory, folds):
    for fold in folds:
        model = fit_fold(factory, fold)
        print(predict(model, fold.valid))
"""


@pytest.mark.parametrize("changes, expected", [
    # each fold's model is built by ``factory.build`` and trained by an optimizer over its own parameter groups
    ((), []),
    # the helper trains the model it is handed: the switch reaches the next fold's training
    ((("def fit_fold(factory, data):\n    model = factory.build(data.spec).to(\"cpu\")\n",
       "def fit_fold(model, data):\n"),
      ("def main(factory, folds):\n", "def main(model, folds):\n"),
      ("        model = fit_fold(factory, fold)\n", "        fit_fold(model, fold)\n")),
     [("GRD103", 39, 14)]),
])
def test_a_helper_that_builds_and_trains_its_own_model_per_call(changes, expected):
    assert findings(changed(TRAINS_A_MODEL_IT_MAKES_PER_FOLD, changes)) == expected


# the dict of losses replaced, after the update, by a helper named for detaching it
DETACHED_BY_A_HELPER = """
import torch


def detach(data):
    if isinstance(data, dict):
        return {k: v.detach() for k, v in data.items()}
    return data.detach()


def train(model, loader, optimizer, loss_fun):
    total = 0
    for x, y in loader:
        optimizer.zero_grad()
        loss = loss_fun(model(x), y)
        loss["final"].backward()
        optimizer.step()
        loss = detach(loss)
        total += loss["final"]
    return total
"""


@pytest.mark.parametrize("change, expected", [
    (None, []),
    (("detach(", "detach_cpu("), []),
    # a helper named otherwise may keep the graph
    (("detach(", "combine("), [("GRD104", 19, 8)]),
    (("        loss = detach(loss)\n", ""), [("GRD104", 18, 8)]),
])
def test_a_loss_dict_replaced_by_a_detaching_helper(change, expected):
    source = DETACHED_BY_A_HELPER.replace(*change) if change else DETACHED_BY_A_HELPER
    assert change is None or source != DETACHED_BY_A_HELPER
    assert findings(source) == expected
