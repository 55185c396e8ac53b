"""The shared heuristics: names, evaluation intent, model calls, modes."""

import ast
import textwrap

import pytest

from flake8_gradmode import names
from flake8_gradmode.engine import check
from flake8_gradmode.settings import Settings


@pytest.mark.parametrize(
    "name, expected",
    [
        ("val_loader", ["val", "loader"]),
        ("valLoader", ["val", "loader"]),
        ("VAL_LOADER", ["val", "loader"]),
        ("netG", ["net", "g"]),
        ("test_dataloader2", ["test", "dataloader", "2"]),
    ],
)
def test_tokens(name, expected):
    assert names.tokens(name) == expected


@pytest.mark.parametrize(
    "name", ["model", "self.model", "net", "netG", "net_d", "resnet", "text_encoder", "self.generator", "Model2Net"]
)
def test_model_names(name):
    assert names.is_model_name(name)


@pytest.mark.parametrize("name", [
    "model_path", "optimizer", "criterion", "loss_fn", "self.tokenizer", "x", "layer",
    # actions that hand back a model, not a model's forward
    "early_stopping.restore_best_model", "reload_model", "fetch_pretrained_net",
])
def test_not_model_names(name):
    assert not names.is_model_name(name)


def test_extra_model_names():
    assert names.is_model_name("self.scorer", ("scorer",))


@pytest.mark.parametrize(
    "text, expected",
    [
        ('val_loader', True),
        ('self.test_dataloader()', True),
        ('loaders["val"]', True),
        ('tqdm(dev_iter, desc="x")', True),
        ('train_loader', False),
        ('zip(train_loader, val_loader)', False),
        ('dataloaders[phase]', False),
        ('range(10)', False),
        ('interval_batches', False),
    ],
)
def test_evaluation_data(text, expected):
    assert names.says_eval_data(names.names_in(ast.parse(text, mode="eval").body)) is expected


@pytest.mark.parametrize(
    "name, expected",
    [("evaluate", True), ("run_validation", True), ("test", True), ("predict_batch", True), ("train", False),
     ("forward", False), ("save_checkpoint", False)],
)
def test_evaluation_function_names(name, expected):
    assert names.says_eval_function(name) is expected


@pytest.mark.parametrize(
    "filename, expected",
    [
        ("test_model.py", True),
        ("model_test.py", True),
        ("conftest.py", True),
        ("tests/helpers.py", True),
        ("test_net.py", True),
        ("pkg/testing/case.py", True),
        ("src/latest.py", False),
        ("evaluate.py", False),
    ],
)
def test_pytest_files(filename, expected):
    assert names.is_test_file(filename) is expected


def codes(source, filename="script.py", settings=Settings(cross_module=False)):
    """Default-on findings (the GRD9 hints are off by default)."""
    found = check(textwrap.dedent(source), settings, filename=filename)
    return [(v.code, v.line, v.col) for v in found if not v.code.startswith("GRD9")]


def test_pytest_test_function_in_test_file_is_not_an_eval_loop():
    src = """
    import torch
    def test_forward_shapes():
        model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout())
        for batch in [torch.randn(1, 2)]:
            assert model(batch).shape == (1, 2)
    """
    assert codes(src, "test_shapes.py") == []
    assert sorted(codes(src, "shapes.py")) == [("GRD101", 5, 4), ("GRD102", 5, 4)]


def test_model_known_from_evidence_not_name():
    src = """
    import torch
    def evaluate(scorer, batches):
        scorer.eval()
        return [scorer(b) for b in batches] + [0 for b in batches]
    def run(scorer, val_batches):
        scorer.eval()
        for b in val_batches:
            scorer(b)
    """
    assert codes(src) == [("GRD101", 8, 4)]


def test_constructor_is_not_a_model_call():
    src = """
    import torch
    def evaluate(configs):
        for cfg in configs:
            Model(cfg)
    """
    assert codes(src) == []


def test_training_step_through_local_helper_makes_a_training_loop():
    src = """
    import torch
    def step(model, opt, x):
        opt.zero_grad()
        model(x).sum().backward()
        opt.step()
    def evaluate(model, opt, val_loader):
        for x in val_loader:
            model(x)
            step(model, opt, x)
    """
    assert codes(src) == []


def test_eval_mode_helper_option():
    src = """
    import torch
    def val_start(model):
        pass
    def validate(model, val_loader):
        val_start(model)
        with torch.no_grad():
            for x in val_loader:
                model(x)
    net = torch.nn.Dropout()
    validate(net, [])
    """
    assert codes(src) == [("GRD102", 8, 8)]
    assert codes(src, settings=Settings(cross_module=False, eval_mode_helpers=("val_start",))) == []


def test_train_switch_in_helper_before_the_loop():
    src = """
    import torch
    def train_epoch(model):
        model.train()
    def run(model, val_loader):
        model.eval()
        train_epoch(model)
        with torch.no_grad():
            for x in val_loader:
                model(x)
    """
    assert codes(src) == [("GRD102", 9, 8)]


def test_one_finding_per_nested_loop():
    src = """
    import torch
    model = torch.nn.Linear(2, 2)
    model.eval()
    for batch in [[torch.randn(1, 2)]]:
        for x in batch:
            model(x)
    """
    assert codes(src) == [("GRD101", 5, 0)]


def test_gradients_without_an_update_do_not_train():
    """Influence functions: eval mode on purpose, autograd.grad, no optimizer step."""
    src = """
    import torch
    def influence(model, instances, params):
        model.train()
        for x in instances:
            model.eval()
            model.zero_grad()
            grads = torch.autograd.grad(model(x).sum(), params)
    """
    assert codes(src) == []


def test_callee_that_trains_one_model_and_freezes_another():
    src = """
    import torch
    class Search:
        def train_shared(self):
            self.shared.train()
            self.controller.eval()
            for x in self.data:
                self.shared_optim.zero_grad()
                self.shared(x).sum().backward()
                self.shared_optim.step()
        def train_controller(self):
            self.controller.train()
            for x in self.data:
                self.controller_optim.zero_grad()
                self.controller(x).sum().backward()
                self.controller_optim.step()
        def run(self):
            for epoch in range(10):
                self.train_shared()
                self.train_controller()
    """
    assert codes(src) == []


EVAL_SCRIPT = """
import torch
net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout())
net.eval()
for x in [torch.randn(1, 2)]:
    net(x)
"""


def test_evaluation_script_named_like_a_test_file():
    assert codes(EVAL_SCRIPT, "test_net.py") == [("GRD101", 5, 0)]
    assert codes("import pytest\n" + EVAL_SCRIPT, "test_net.py") == []


def test_attribute_with_a_function_name_does_not_hide_its_callers():
    src = """
    import torch
    def validation(model, loader):
        model.eval()
        for x in loader:
            model(x)
    def main(opt, model, loader):
        if opt.validation:
            with torch.no_grad():
                validation(model, loader)
    """
    assert codes(src) == []


@pytest.mark.parametrize("name, expected", [("writer.generator", False), ("self.generator", True), ("generator", True),
                                            ("env.policy", False), ("trainer.model", True)])
def test_ambiguous_model_words_need_a_plain_or_self_name(name, expected):
    assert names.is_model_name(name) is expected


def test_thread_handoff_of_a_method_and_a_lambda():
    src = """
    import torch
    from concurrent.futures import ThreadPoolExecutor
    class Server:
        def __init__(self):
            self.pool = ThreadPoolExecutor(4)
            self.model = torch.nn.Linear(2, 2)
        def _run(self, x):
            return self.model(x)
        @torch.no_grad()
        def _safe(self, x):
            return self.model(x)
        def serve(self, xs):
            pool = ThreadPoolExecutor(4)
            with torch.no_grad():
                a = list(pool.map(self._run, xs))
                b = list(pool.map(self._safe, xs))
                c = pool.submit(lambda x: self.model(x), xs[0])
                d = pool.submit(len, xs)
            return a, b, c, d
    """
    assert codes(src) == [("GRD105", 16, 30), ("GRD105", 18, 28)]


def test_smoke_check_named_test_is_not_a_test_set_pass():
    src = """
    import torch
    decoder = torch.nn.GRUCell(2, 2)
    def test():
        hidden = torch.zeros(1, 2)
        for c in range(3):
            hidden = decoder(torch.randn(1, 2), hidden)
    def test_epoch(loader):
        decoder.eval()
        for x in loader:
            decoder(x)
    """
    assert codes(src) == [("GRD101", 10, 4)]


@pytest.mark.parametrize("sizes, found", [
    ("[4, 8, 16]", []),  # a sweep over sizes: a shape check
    ("(4, 8.0, 16)", []),
    ("sizes", [("GRD101", 5, 4)]),  # what ``sizes`` holds is not shown
    ('["val", "test"]', [("GRD101", 5, 4)]),
])
def test_a_smoke_check_over_literal_sizes_is_not_a_test_set_pass(sizes, found):
    src = f"""
    import torch
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.1))
    def test(sizes):
        for size in {sizes}:
            out = model(torch.randn(size, 4))
            assert out.shape == (size, 4)
    """
    assert codes(src) == found


UNIMPORTED_PROGRESS_BAR = """
import torch
from torch.autograd import Variable
{imports}
model = torch.nn.Linear(4, 2).to("cpu")


def test(loader):
    progress = tqdm(loader)
    for x in progress:
        print(model(Variable(x, volatile=True)).argmax(1))


def train(loader, opt):
    bar = tqdm(loader)
    total = 0
    for x in bar:
        loss = model(x).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += loss
    return total


def init():
    bar = tqdm(range(3))
    model.weight.fill_(1)
    return bar
"""


@pytest.mark.parametrize("imports, found", [
    # ``tqdm`` is bound nowhere: each function raises NameError at its first line
    ("", []),
    ("from tqdm import tqdm", [("GRD101", 10, 4), ("GRD003", 11, 32), ("GRD104", 22, 8), ("GRD004", 28, 4)]),
])
def test_what_follows_a_name_the_module_never_binds_is_not_reported(imports, found):
    assert codes(UNIMPORTED_PROGRESS_BAR.format(imports=imports)) == found


def test_loss_accumulators_that_are_fine():
    src = """
    import torch
    import torch.nn.functional as F
    def lr_finder(model, batches, optimizer):
        losses = []
        for x, y in batches:
            loss = F.mse_loss(model(x), y)
            loss.backward()
            optimizer.step()
            loss = loss.detach().item()
            losses.append(loss)
    def style_step(model, batches, optimizer, targets):
        for x in batches:
            optimizer.zero_grad()
            feats = model(x)
            style_loss = 0.0
            for f, t in zip(feats, targets):
                style_loss += F.mse_loss(f, t)
            total = style_loss * 10
            total.backward()
            optimizer.step()
    def mc_closure(model, x):
        losses = []
        for _ in range(2):
            loss = F.mse_loss(model(x), x)
            losses.append(loss)
            loss.backward(retain_graph=True)
        return torch.stack(losses).mean()
    """
    assert codes(src) == []


def test_aliased_autograd_grad_is_a_training_step():
    # a loop that differentiates through an alias trains; the fact resolves
    # the alias rather than judging by the written name
    src = """
    import torch
    from torch.autograd import grad as agrad

    def validate(model, val_loader):
        model.eval()
        for x in val_loader:
            agrad(model(x).sum(), [x])
    """
    assert codes(src) == []


EXTEND_MODEL = """
import torch


class ExtendModel:
    def __init__(self, model, tokenizer):
        self.model = model
        self.tokenizer = tokenizer

    def __call__(self, *args, **kwargs):
        return self.model(*args, **kwargs)

    def sample_generate(self, text, max_length=20):
        ids = torch.tensor(self.tokenizer.encode(text)).view(1, -1)
        out = []
        with torch.no_grad():
            for _ in range(max_length):
                out.append(int(self.model(input_ids=ids)[0][-1].argmax()))
        return out
"""


def _grad_off_methods(source):
    from flake8_gradmode import facts
    from flake8_gradmode.tracker import dotted

    cls = next(n for n in ast.parse(textwrap.dedent(source)).body if isinstance(n, ast.ClassDef))
    turns_off = lambda expr: isinstance(expr, ast.Call) and dotted(expr.func) == "torch.no_grad"  # noqa: E731
    return facts.methods_turning_grad_off(cls, turns_off, lambda name: False)


def test_a_method_that_tokenizes_before_its_no_grad_block_turns_grad_off_first():
    assert _grad_off_methods(EXTEND_MODEL) == ["sample_generate"]
    # a part named like a model, called first, does work with grad on
    assert _grad_off_methods(EXTEND_MODEL.replace("self.tokenizer.encode(text)", "self.embedder(text)")) == []
