"""Grad mode across the modules of one project (``flake8_gradmode.project``).

Every test builds a small project of its own in ``tmp_path`` (a ``setup.py``
marks its root) and lints one of its files: in process through
``engine.check`` with the file's path, or through the real ``flake8``.
"""

from __future__ import annotations

import ast
import marshal
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from flake8_gradmode import facts, layout, project
from flake8_gradmode.engine import check
from flake8_gradmode.registry import RULES
from flake8_gradmode.settings import Settings
from tests.test_grd101_102_patterns import SEQ2SEQ, TEST_TIME_ADAPTATION
from tests.samples import OPTIONAL_HEAD_MODELS, OPTIONAL_HEAD_TRAINING, changed, optional_head_module

EVAL_LOOP = (
    "GRD101 evaluation loop runs `model` with grad enabled, so every batch builds an autograd graph; "
    "wrap it in `with torch.no_grad():`"
)

HELPERS = """
    import torch


    def evaluate(model, val_loader):
        total = 0
        for x, y in val_loader:
            out = model(x)
            total += (out.argmax(1) == y).sum().item()
        return total
"""

CALLER_NO_GRAD = """
    import torch

    from .helpers import evaluate


    def main(model, val_loader):
        with torch.no_grad():
            return evaluate(model, val_loader)
"""

CALLER_GRAD = """
    import torch

    from pkg import helpers


    def main(model, val_loader):
        return helpers.evaluate(model, val_loader)
"""


def make(root: Path, files: Dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "setup.py").write_text("", encoding="utf-8")
    for name, code in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(code).lstrip("\n"), encoding="utf-8")
        if name.endswith(".py") and "/" in name:
            init = path.parent / "__init__.py"
            if not init.exists():
                init.write_text("", encoding="utf-8")
    return root


@pytest.fixture(autouse=True)
def fresh_process_state():
    """Each test sees its project as a new process would."""
    project._INDEXES.clear()
    layout._ROOTS.clear()
    layout._LOCAL_NAMES.clear()
    yield
    project._INDEXES.clear()
    layout._ROOTS.clear()
    layout._LOCAL_NAMES.clear()


def lint(path: Path, settings: Settings = Settings(), text: str = None) -> List[Tuple[int, int, str]]:
    source = path.read_text(encoding="utf-8") if text is None else text
    found = check(source, settings, rules=[r for r in RULES if r.default_on], filename=str(path))
    return [(v.line, v.col, v.code) for v in found]


# --- callers in other modules -------------------------------------------------


def test_helper_every_caller_runs_under_no_grad_in_another_module_is_silent(tmp_path):
    make(tmp_path, {"pkg/helpers.py": HELPERS, "pkg/train.py": CALLER_NO_GRAD})
    assert lint(tmp_path / "pkg/helpers.py") == []


def test_helper_is_reported_when_one_caller_in_another_module_runs_with_grad(tmp_path):
    make(tmp_path, {"pkg/helpers.py": HELPERS, "pkg/train.py": CALLER_NO_GRAD, "pkg/report.py": CALLER_GRAD})
    assert lint(tmp_path / "pkg/helpers.py") == [(6, 4, "GRD101")]


MENTIONS_EVALUATE = """
    \"\"\"Steps: train, then evaluate.\"\"\"
    STEPS = ["train", "evaluate"]
"""

CALLER_GRAD_ALIASED = """
    from pkg.helpers import evaluate as run_eval


    def report(model, val_loader):
        return run_eval \\
            (model, val_loader)
"""


@pytest.mark.parametrize("extra, calls", [
    ({}, 1),
    ({"pkg/report.py": CALLER_GRAD_ALIASED}, 2),
    ({"pkg/report.py": CALLER_GRAD.replace("helpers.evaluate(", "helpers.evaluate \\\n        (")}, 2),
])
def test_only_modules_whose_text_may_call_a_function_are_read_for_its_calls(tmp_path, extra, calls):
    make(tmp_path, {"pkg/helpers.py": HELPERS, "pkg/train.py": CALLER_NO_GRAD, "pkg/notes.py": MENTIONS_EVALUATE,
                    **extra})
    path = tmp_path / "pkg/helpers.py"
    source = path.read_text(encoding="utf-8")
    found = project.open_project(str(path), "", (), ast.parse(source), source)
    assert len(found.call_shapes("pkg/helpers.py", "evaluate")) == calls
    assert found.index.entries["pkg/notes.py"][3] == b""  # names ``evaluate``, calls nothing so named: never parsed
    assert found.index.entries["pkg/train.py"][3] not in (b"", project._UNPARSABLE)


def test_helper_without_callers_in_the_project_keeps_the_per_file_answer(tmp_path):
    make(tmp_path, {"pkg/helpers.py": HELPERS})
    assert lint(tmp_path / "pkg/helpers.py") == [(6, 4, "GRD101")]


def test_cross_module_off_analyses_the_file_alone(tmp_path):
    make(tmp_path, {"pkg/helpers.py": HELPERS, "pkg/train.py": CALLER_NO_GRAD})
    off = Settings(cross_module=False)
    assert lint(tmp_path / "pkg/helpers.py", off) == [(6, 4, "GRD101")]
    assert not (tmp_path / project.CACHE_DIR).exists()


def test_a_file_outside_any_project_keeps_the_per_file_answer(tmp_path):
    (tmp_path / "helpers.py").write_text(textwrap.dedent(HELPERS), encoding="utf-8")
    (tmp_path / "train.py").write_text(textwrap.dedent(CALLER_NO_GRAD).replace("from .", "from "), encoding="utf-8")
    assert layout.find_root(str(tmp_path / "helpers.py")) in (None, *map(str, tmp_path.parents))
    if layout.find_root(str(tmp_path / "helpers.py")) is None:
        assert lint(tmp_path / "helpers.py")[0][2] == "GRD101"


def test_project_root_option_names_the_project(tmp_path):
    make(tmp_path, {"pkg/helpers.py": HELPERS, "pkg/train.py": CALLER_NO_GRAD})
    (tmp_path / "setup.py").unlink()
    assert lint(tmp_path / "pkg/helpers.py", Settings(project_root=str(tmp_path))) == []


def test_caller_through_a_local_function_of_another_module(tmp_path):
    make(tmp_path, {
        "pkg/helpers.py": HELPERS,
        "pkg/run.py": """
            import torch
            from pkg.helpers import evaluate as run_eval


            def report(model, loader):
                return run_eval(model, loader)


            @torch.no_grad()
            def main(model, loader):
                print(report(model, loader))
        """,
    })
    assert lint(tmp_path / "pkg/helpers.py") == []


@pytest.mark.parametrize("star", ["from pkg.helpers import *", "from .helpers import *"])
def test_caller_that_star_imports_the_helper_under_no_grad(tmp_path, star):
    caller = CALLER_NO_GRAD.replace("from .helpers import evaluate", star)
    make(tmp_path, {"pkg/helpers.py": HELPERS, "pkg/train.py": caller})
    assert lint(tmp_path / "pkg/helpers.py") == []


def test_star_import_of_a_module_without_the_name_does_not_reach_it(tmp_path):
    caller = CALLER_NO_GRAD.replace("from .helpers import evaluate", "from .other import *\n    evaluate = print")
    make(tmp_path, {"pkg/helpers.py": HELPERS, "pkg/other.py": "def score():\n    pass\n", "pkg/train.py": caller})
    assert lint(tmp_path / "pkg/helpers.py") == [(6, 4, "GRD101")]


def test_script_importing_its_sibling_module(tmp_path):
    make(tmp_path, {
        "scripts/helpers.py": HELPERS,
        "scripts/train.py": CALLER_NO_GRAD.replace("from .helpers", "from helpers"),
    })
    assert lint(tmp_path / "scripts/helpers.py") == []


SCRIPT = HELPERS + """

    def main(model, val_loader):
        with torch.no_grad():
            return evaluate(model, val_loader)


    def evaluate_on_train(model, train_loader):
        seen = 0
        for x, _ in train_loader:
            seen += model(x).shape[0]
        return seen


    if __name__ == "__main__":
        main(torch.nn.Linear(4, 2), [(torch.randn(3, 4), torch.zeros(3))])
"""


def test_a_function_of_a_script_nothing_runs_is_silent(tmp_path):
    make(tmp_path, {"scripts/evaluate.py": SCRIPT, "scripts/other.py": "import torch\n"})
    assert lint(tmp_path / "scripts/evaluate.py") == []


def test_a_function_of_a_script_that_another_module_only_defines_too_is_silent_cold_and_warm(tmp_path):
    # a copy of the script defines the same function and never calls it either:
    # the answer may not depend on whether the cache has summarised that copy yet
    copy = SCRIPT.replace("evaluate(", "score(")
    make(tmp_path, {"scripts/evaluate.py": SCRIPT, "scripts/copy.py": copy})
    assert lint(tmp_path / "scripts/evaluate.py") == []  # empty cache
    assert (tmp_path / project.CACHE_DIR).exists()
    project._INDEXES.clear()
    layout._ROOTS.clear()
    assert lint(tmp_path / "scripts/evaluate.py") == []  # a new process, warm cache


def test_a_function_of_a_script_is_reported_without_a_project_index(tmp_path):
    make(tmp_path, {"scripts/evaluate.py": SCRIPT})
    off = Settings(cross_module=False)
    assert lint(tmp_path / "scripts/evaluate.py", off) == [(19, 4, "GRD101")]


def test_a_function_of_a_script_that_another_module_calls_its_own_of_is_silent(tmp_path):
    # ``validate(model)`` in another script calls that script's own
    # ``validate``: no module of a project that is no package imports this
    # one, so nothing can reach its copy
    other = SCRIPT.replace("main(torch", "evaluate_on_train(torch.nn.Linear(4, 2), [])\n        main(torch")
    unpackaged(tmp_path, {"scripts/evaluate.py": SCRIPT, "scripts/other.py": other})
    (tmp_path / "scripts/__init__.py").unlink()  # a directory of scripts, no package
    assert lint(tmp_path / "scripts/evaluate.py") == []


@pytest.mark.parametrize("lookup", [
    "vars(options)", "getattr(options, name)", "getattr(self.runner, name)",
    # a package from outside the project holds its own functions, not this module's
    "getattr(torchvision.models, name)",
])
def test_a_function_of_a_script_that_looks_up_an_objects_attributes_is_silent(tmp_path, lookup):
    # ``vars(args)`` and ``getattr(args, name)`` read an object's attributes,
    # never the module's functions
    source = SCRIPT.replace("main(torch", f"print({lookup})\n        main(torch").replace(
        "import torch", "import torch\n    import torchvision.models", 1)
    make(tmp_path, {"scripts/evaluate.py": source, "scripts/other.py": "import torch\n"})
    assert lint(tmp_path / "scripts/evaluate.py") == []


@pytest.mark.parametrize("lookup, found", [
    # ``sys`` only for its path: ``vars(options)`` reads the options' attributes
    ("sys.path.append('..')\n        print(vars(options))", []),
    # ``sys.modules``: the module itself, with its functions
    ("print(vars(sys.modules[__name__]))", [(20, 4, "GRD101")]),
    ("print(vars(options), sys.modules)", [(20, 4, "GRD101")]),
])
def test_a_function_of_a_script_that_imports_sys_and_reads_an_objects_attributes(tmp_path, lookup, found):
    source = SCRIPT.replace("main(torch", f"{lookup}\n        main(torch").replace(
        "import torch", "import sys\n    import torch", 1)
    make(tmp_path, {"scripts/evaluate.py": source, "scripts/other.py": "import torch\n"})
    assert lint(tmp_path / "scripts/evaluate.py") == found


@pytest.mark.parametrize("runner, found", [
    ("def resnet():\n    return None\n", []),  # holds its own functions only: none of evaluate.py's
    ("from evaluate import *\n", [(20, 4, "GRD101")]),  # imports them all: it may hold evaluate_on_train
    ("import evaluate\n", [(20, 4, "GRD101")]),
])
def test_a_function_of_a_script_that_looks_up_a_project_module_that_does_not_import_it(tmp_path, runner, found):
    # ``getattr(models, config.model_name)`` reaches a function of ``models``
    source = SCRIPT.replace("main(torch", "getattr(runner, name)\n        main(torch").replace(
        "import torch", "import runner\n    import torch", 1)
    make(tmp_path, {"scripts/evaluate.py": source, "scripts/runner.py": runner})
    assert lint(tmp_path / "scripts/evaluate.py") == found


@pytest.mark.parametrize(
    "how", ["imported", "called-by-module", "named-in-a-string", "looked-up", "command-line", "decorated",
            "looked-up-on-its-module", "looked-up-on-a-module"]
)
def test_a_function_of_a_script_something_may_run_is_reported(tmp_path, how):
    files = {"scripts/evaluate.py": SCRIPT}
    line = 19
    if how == "imported":
        files["scripts/report.py"] = "from evaluate import evaluate_on_train\n"
    elif how == "called-by-module":
        files["scripts/report.py"] = "import evaluate\n\nevaluate.evaluate_on_train(None, [])\n"
    elif how == "named-in-a-string":
        files["scripts/evaluate.py"] = SCRIPT.replace("main(torch", 'print("evaluate_on_train")\n        main(torch')
    elif how == "looked-up":
        files["scripts/evaluate.py"] = SCRIPT.replace("main(torch", "globals()[name]\n        main(torch")
    elif how == "looked-up-on-its-module":
        files["scripts/evaluate.py"] = SCRIPT.replace(
            "main(torch", "getattr(sys.modules[__name__], name)\n        main(torch"
        )
    elif how == "looked-up-on-a-module":
        files["scripts/evaluate.py"] = SCRIPT.replace(
            "main(torch", "getattr(runner, name)\n        main(torch"
        ).replace("import torch", "import runner\n    import torch", 1)
        files["scripts/runner.py"] = "from evaluate import *\n"  # a module of the project: it may hold them
        line = 20
    elif how == "command-line":
        files["scripts/evaluate.py"] = SCRIPT.replace("main(torch", "fire.Fire()\n        main(torch")
    else:
        files["scripts/evaluate.py"] = SCRIPT.replace(
            "    def evaluate_on_train", "    @functools.lru_cache()\n    def evaluate_on_train"
        ).replace("import torch", "import functools\n    import torch", 1)
        line = 21
    make(tmp_path, files)
    assert lint(tmp_path / "scripts/evaluate.py") == [(line, 4, "GRD101")]


def test_a_script_without_a_main_block_runs_its_program_by_top_level_calls(tmp_path):
    program = SCRIPT.split("    if __name__")[0] + "\n    main(torch.nn.Linear(4, 2), [])\n"
    make(tmp_path, {"scripts/evaluate.py": program, "scripts/other.py": "import torch\n"})
    assert lint(tmp_path / "scripts/evaluate.py") == []


CLASSIFY = """
    import torch


    def relabel(detections, classifier):
        for d in detections:
            d[:, 5] = classifier(d[:, :4]).argmax(1)
        return detections
"""


def test_a_loop_whose_only_sign_of_evaluation_is_its_outputs_and_nothing_calls_it_is_silent(tmp_path):
    # a ``for`` over anything with stripped outputs: only the missing caller could say it evaluates
    make(tmp_path, {"pkg/utils.py": CLASSIFY, "pkg/other.py": "import torch\n"})
    assert lint(tmp_path / "pkg/utils.py") == []
    assert lint(tmp_path / "pkg/utils.py", Settings(cross_module=False)) == [(5, 4, "GRD101")]


def test_a_loop_whose_only_sign_of_evaluation_is_its_outputs_called_with_grad_is_reported(tmp_path):
    caller = "from pkg.utils import relabel\n\n\ndef run(d, net):\n    return relabel(d, net)\n"
    make(tmp_path, {"pkg/utils.py": CLASSIFY, "pkg/detect.py": caller})
    assert lint(tmp_path / "pkg/utils.py") == [(5, 4, "GRD101")]


def test_a_function_of_a_library_module_nothing_calls_is_reported(tmp_path):
    make(tmp_path, {"pkg/helpers.py": SCRIPT.split("    if __name__")[0], "pkg/other.py": "import torch\n"})
    assert lint(tmp_path / "pkg/helpers.py") == [(19, 4, "GRD101")]


def test_a_function_of_a_script_named_so_no_import_can_reach_it_is_silent(tmp_path):
    make(tmp_path, {"scripts/eval-train.py": SCRIPT.split("    if __name__")[0], "scripts/other.py": "import torch\n"})
    assert lint(tmp_path / "scripts/eval-train.py") == []


def test_helper_passed_as_a_value_has_unknown_callers(tmp_path):
    make(tmp_path, {
        "pkg/helpers.py": HELPERS,
        "pkg/train.py": CALLER_NO_GRAD + "\n\nHOOKS = [evaluate]\n",
    })
    assert lint(tmp_path / "pkg/helpers.py") == [(6, 4, "GRD101")]


CALLER_OF_SAME_NAMED_MODULE = """
    import torch

    from pkg import evaluate


    def main(model, val_loader):
        with torch.no_grad():
            return evaluate.evaluate(model, val_loader)
"""


@pytest.mark.parametrize("others, found", [
    # ``from pkg import evaluate`` binds the module: its name read in
    # ``evaluate.evaluate(...)`` is no use of the function as a value
    ({}, []),
    # the function itself imported and passed on: its callers are unknown
    ({"pkg/hooks.py": "from pkg.evaluate import evaluate\n\nHOOKS = [evaluate]\n"}, [(6, 4, "GRD101")]),
])
def test_helper_named_like_its_module_called_through_the_module_under_no_grad(tmp_path, others, found):
    make(tmp_path, {"pkg/evaluate.py": HELPERS, "pkg/train.py": CALLER_OF_SAME_NAMED_MODULE, **others})
    assert lint(tmp_path / "pkg/evaluate.py") == found


ATTACKS = """
    import torch


    class Attack:
        def run(self, model, x, y):
            raise NotImplementedError


    class GradientAttack(Attack):
        def run(self, model, x, y):
            delta = torch.zeros_like(x, requires_grad=True)
            torch.nn.functional.cross_entropy(model(x + delta), y).backward()
            return delta.grad.sign()
"""

TESTER = """
    from .attacks import GradientAttack


    class Tester:
        def __init__(self, model, testset):
            self.model, self.testset, self.attack = model, testset, GradientAttack()

        def test(self):
            self.model.eval()
            errors = []
            for x, y in self.testset:
                delta = self.attack.run(self.model, x, y)
                logits = self.model(x + delta)
                errors.append((logits.argmax(1) != y).float().mean().item())
            return errors
"""


@pytest.mark.parametrize("change, found", [
    ("", []),  # the attack backpropagates through the model to its input: the loop needs grad
    ("self.attack.run(self.model, x, y)|self.attack.run(model=self.model, x=x, y=y)", []),
    ("self.attack.run(self.model, x, y)|self.attack.run(self.reference, x, y)", [(11, 8, "GRD101")]),
    ("self.attack.run(self.model, x, y)|self.noise.run(self.model, x, y)", [(11, 8, "GRD101")]),
])
def test_a_loop_handing_the_model_to_an_attack_of_the_project_that_backpropagates(tmp_path, change, found):
    tester = TESTER.replace(*change.split("|")) if change else TESTER
    make(tmp_path, {"pkg/attacks.py": ATTACKS, "pkg/tester.py": tester})
    assert lint(tmp_path / "pkg/tester.py") == found


def test_a_loop_handing_the_model_to_an_attack_that_only_runs_it_is_reported(tmp_path):
    attacks = ATTACKS.replace(
        "torch.nn.functional.cross_entropy(model(x + delta), y).backward()\n            return delta.grad.sign()",
        "return torch.randn_like(x) * (model(x).argmax(1) == y).float().mean()",
    )
    make(tmp_path, {"pkg/attacks.py": attacks, "pkg/tester.py": TESTER})
    assert lint(tmp_path / "pkg/tester.py") == [(11, 8, "GRD101")]


FUSING_BLOCK = """
    import torch
    import torch.nn as nn


    class ConvBN(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 1)
            self.bn = nn.BatchNorm2d(3)

        def fuse(self):
            fused = nn.Conv2d(3, 3, 1)
            scale = self.bn.weight / torch.sqrt(self.bn.running_var + self.bn.eps)
            fused.bias[:] = (self.conv.bias - self.bn.running_mean) * scale + self.bn.bias
            return fused


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList([ConvBN(), ConvBN()])

        def export(self):
            return [block.fuse() for block in self.blocks]
"""

EXPORT_SCRIPT = """
    import torch

    from pkg.net import Net

    if __name__ == "__main__":
        torch.set_grad_enabled(False)
        net = Net()
        print(net.export())
"""


@pytest.mark.parametrize("script, found", [
    (EXPORT_SCRIPT, []),
    # grad back on before the export: the item assignment raises
    (EXPORT_SCRIPT.replace("        net = Net()", "        torch.set_grad_enabled(True)\n        net = Net()"),
     [(14, 8, "GRD004")]),
    (EXPORT_SCRIPT.replace("        torch.set_grad_enabled(False)\n", ""), [(14, 8, "GRD004")]),
])
def test_a_script_switching_grad_off_by_a_statement_in_its_main_block(tmp_path, script, found):
    make(tmp_path, {"pkg/net.py": FUSING_BLOCK, "export.py": script})
    assert lint(tmp_path / "pkg/net.py") == found


VOLATILE_DEMO = """
    import torch
    from torch.autograd import Variable


    def predict(model, images):
        return model(Variable(images, volatile=True))


    def score(outputs):
        return outputs.max().item()
"""


@pytest.mark.parametrize("directory, found", [
    ("Non-Local_pytorch_0.3.1", []),  # the copy written for 0.3.1, where the flag worked
    ("Non-Local_pytorch_0.4.1", [(6, 34, "GRD003")]),
    ("torch0.2-port", []),
    ("pytorch-tutorial", [(6, 34, "GRD003")]),
])
def test_a_directory_of_the_project_named_for_a_release_before_0_4(tmp_path, directory, found):
    make(tmp_path, {f"nonlocal/{directory}/demo.py": VOLATILE_DEMO})
    assert lint(tmp_path / "nonlocal" / directory / "demo.py") == found


MODEL_WITH_SELF_TEST = """
    import torch
    import torch.nn as nn


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(4, 2), nn.Dropout(0.1))

        def forward(self, x):
            return self.body(x)


    if __name__ == "__main__":
        model = Net()
        model.eval()
        for x in torch.randn(3, 8, 4):
            out = model(x)
            print("evaluation pass", out.shape)
"""


@pytest.mark.parametrize("others, found", [
    ({"pkg/train.py": "from pkg.model import Net\n\nMODEL = Net()\n"}, []),  # the model's smoke test
    ({"pkg/train.py": "import torch\n"}, [(17, 4, "GRD101")]),  # a script of its own, nothing imports it
])
def test_a_main_block_of_a_model_module_other_modules_import_is_its_self_test(tmp_path, others, found):
    make(tmp_path, {"pkg/model.py": MODEL_WITH_SELF_TEST, **others})
    assert lint(tmp_path / "pkg/model.py") == found


MODEL_WITH_A_SELF_TEST_FUNCTION = """
    import torch
    import torch.nn as nn


    class Net(nn.Module):
        def __init__(self, width):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(4, width), nn.Dropout(0.1))

        def forward(self, x):
            return self.body(x)


    WIDTHS = {"small": 2, "large": 32}


    def _test():
        for name, width in WIDTHS.items():
            model = Net(width)
            model.load_state_dict(torch.load(name + ".pt"))
            model.eval()
            out = model(torch.randn(3, 4))
            assert out.shape == (3, width), name


    if __name__ == "__main__":
        _test()
"""


@pytest.mark.parametrize("others, found", [
    ({"pkg/train.py": "from pkg.model import Net\n\nMODEL = Net(8)\n"}, []),  # the model's smoke test
    # another module runs it too: not only the model's own check
    ({"pkg/train.py": "from pkg.model import Net, _test\n\nMODEL = Net(8)\n_test()\n"}, [(18, 4, "GRD101")]),
    ({"pkg/train.py": "import torch\n"}, [(18, 4, "GRD101")]),  # a script of its own, nothing imports it
])
def test_a_function_only_the_main_block_of_a_model_module_calls_is_its_self_test(tmp_path, others, found):
    make(tmp_path, {"pkg/model.py": MODEL_WITH_A_SELF_TEST_FUNCTION, **others})
    assert lint(tmp_path / "pkg/model.py") == found


MODEL_WITH_A_PRIVATE_CHECK = """
    import torch
    import torch.nn as nn

    __all__ = ["Net"]


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(4, 2), nn.Dropout(0.1))

        def forward(self, x):
            return self.body(x)


    def test():
        model = Net()
        model.eval()
        for x in torch.randn(3, 8, 4):
            print(model(x).shape)

    # test()
"""


@pytest.mark.parametrize("change, others, found", [
    # a package's function its __all__ leaves out, that no code of the project calls: never runs
    ("", {}, []),
    ('__all__ = ["Net"]|__all__ = ["Net", "test"]', {}, [(19, 4, "GRD101")]),  # public: users may call it
    ('__all__ = ["Net"]|__all__ = ["Net"]\n    __all__ += ["test"]', {}, [(20, 4, "GRD101")]),
    ('__all__ = ["Net"]\n|', {}, [(18, 4, "GRD101")]),  # no __all__: every name is public
    ("", {"pkg/check.py": "from pkg.model import test\n\ntest()\n"}, [(19, 4, "GRD101")]),
])
def test_a_package_function_its_all_leaves_out_runs_only_when_the_project_calls_it(tmp_path, change, others, found):
    model = MODEL_WITH_A_PRIVATE_CHECK.replace(*change.split("|")) if change else MODEL_WITH_A_PRIVATE_CHECK
    make(tmp_path, {"pkg/model.py": model, "pkg/train.py": "from pkg.model import Net\n\nMODEL = Net()\n", **others})
    assert lint(tmp_path / "pkg/model.py") == found


BATCHES = """
    from torch.autograd import Variable


    def get_batch(source, i, evaluation=False):
        return Variable(source[i:i + 8], volatile=evaluation)


    def score(outputs):
        return outputs.max().item()
"""

EVALUATES_UNDER_NO_GRAD = """
    import torch

    from pkg.batches import get_batch


    def evaluate(model, source):
        with torch.no_grad():
            return [model(get_batch(source, i, evaluation=True)) for i in range(0, len(source), 8)]
"""


@pytest.mark.parametrize("change, found", [
    ("", []),  # every call passing the flag runs under no_grad: there is no graph for it to stop
    ("        with torch.no_grad():\n            return|        return", [(5, 37, "GRD003")]),
])
def test_a_helper_flag_passed_only_under_no_grad_in_other_modules(tmp_path, change, found):
    caller = EVALUATES_UNDER_NO_GRAD.replace(*change.split("|")) if change else EVALUATES_UNDER_NO_GRAD
    assert caller != EVALUATES_UNDER_NO_GRAD or not change
    make(tmp_path, {"pkg/batches.py": BATCHES, "pkg/evaluation.py": caller})
    assert lint(tmp_path / "pkg/batches.py") == found


UNUSED_PREDICTIONS = """
    import torch


    def predictions(loader, model):
        model.eval()
        found = []
        for x in loader:
            found.append(model(x))
        return torch.cat(found)


    def accuracy(loader, model):
        with torch.no_grad():
            res = {"predictions": [model(x) for x in loader]}
        return sum(p.argmax() for p in res["predictions"])
"""


@pytest.mark.parametrize("other, found", [
    # another module's own variable or parameter of that name is not the helper: it never runs
    ("preds = []\nfor step in range(3):\n    predictions = step * 2\n    preds.append(predictions)\n", []),
    ("def score(predictions):\n    return sum(predictions)\n", []),
    # a method of that name, called on ``self``: the instance's own
    ("class Runner:\n    def predictions(self):\n        return []\n\n    def run(self):\n"
     "        return self.predictions()\n\n\n", []),
    # what reaches it: a star import, an attribute, an import under another name
    ("from pkg.utils import *\n\nprint(predictions)\n", [(7, 4, "GRD101")]),
    ("from pkg import utils\n\nrun = utils.predictions\n", [(7, 4, "GRD101")]),
    ("from pkg import utils\n\nutils.predictions([], None)\n", [(7, 4, "GRD101")]),
    ("from pkg.utils import predictions as predict\n\npredict([], None)\n", [(7, 4, "GRD101")]),
    ("import pkg.utils\n\npkg.utils.predictions([], None)\n", [(7, 4, "GRD101")]),
    ("from pkg import utils as helpers\n\nhelpers.predictions([], None)\n", [(7, 4, "GRD101")]),
    # a method of another object: a call through the module alone reaches its function
    ("from transformers import Trainer\n\nTrainer().predictions()\n", []),
    ("runner = object()\nrunner.predictions()\n", []),
])
def test_a_helper_another_module_only_names_as_its_own_variable_never_runs(tmp_path, other, found):
    # a project that is no package; the training script imports the helpers' module
    make(tmp_path, {"pkg/utils.py": UNUSED_PREDICTIONS,
                    "pkg/train.py": "from pkg.utils import accuracy\n\n" + other + "print(accuracy([], None))\n"})
    (tmp_path / "setup.py").unlink()
    (tmp_path / ".git").mkdir()
    assert lint(tmp_path / "pkg/utils.py") == found


@pytest.mark.parametrize("statement, found", [
    # seeding the random numbers at import does not make a module a script
    ("torch.manual_seed(0)", []),
    ("np.random.seed(1337)", []),
    ("np.set_printoptions(precision=3)", [(10, 4, "GRD101")]),
])
def test_a_helper_of_a_module_that_seeds_at_import_never_runs(tmp_path, statement, found):
    utils = "import numpy as np\n" + textwrap.dedent(UNUSED_PREDICTIONS).replace(
        "import torch\n", f"import torch\n{statement}\n", 1)
    unpackaged(tmp_path, {"pkg/utils.py": utils, "pkg/train.py": "from pkg.utils import accuracy\n\n"
                          "print(accuracy([], None))\n"})
    assert lint(tmp_path / "pkg/utils.py") == found


FRAMEWORK_TRAINERS = """
    import torch
    from transformers import Trainer


    class ProbeTrainer(Trainer):
        def evaluate(self, loader):
            self.model.eval()
            scores = []
            for x in loader:
                scores.append(self.model(x))
            return scores


    class DistillTrainer(Trainer):
        def distill(self, loader):
            return len(loader)
"""


@pytest.mark.parametrize("main, found", [
    # no code builds the ProbeTrainer: its loop never runs, though its base is a framework's class
    ("from trainers import DistillTrainer\n\nDistillTrainer().distill([])\n", []),
    ("from trainers import DistillTrainer, ProbeTrainer\n\nProbeTrainer().evaluate([])\n", [(9, 8, "GRD101")]),
])
def test_a_framework_trainer_subclass_no_code_builds_never_runs(tmp_path, main, found):
    unpackaged(tmp_path, {"trainers.py": FRAMEWORK_TRAINERS, "main.py": main})
    assert [f for f in lint(tmp_path / "trainers.py") if f[2] == "GRD101"] == found


@pytest.mark.parametrize("other, found", [
    # a run-time import of a name written to start with another package reaches none of ``pkg``
    ('import importlib\n\nloss = importlib.import_module("losses." + NAME)\n', []),
    ('import importlib\n\nloss = importlib.import_module(f"losses.{NAME}")\n', []),
    # one that may load any module, or a module of ``pkg``, may call the helper
    ("import importlib\n\nloss = importlib.import_module(NAME)\n", [(7, 4, "GRD101")]),
    ('import importlib\n\nloss = importlib.import_module("pkg." + NAME)\n', [(7, 4, "GRD101")]),
    ('loss = __import__("." + NAME)\n', [(7, 4, "GRD101")]),
])
def test_a_run_time_import_of_another_package_leaves_a_helper_nothing_calls(tmp_path, other, found):
    make(tmp_path, {"pkg/utils.py": UNUSED_PREDICTIONS,
                    "pkg/train.py": "from pkg.utils import accuracy\n\nprint(accuracy([], None))\n",
                    "tools/losses.py": "NAME = 'l1'\n" + other})
    (tmp_path / "setup.py").unlink()
    (tmp_path / ".git").mkdir()
    assert lint(tmp_path / "pkg/utils.py") == found


@pytest.mark.parametrize("legacy, found", [
    # code for Python 2 that does not parse, and whose import statements name no ``utils``
    ('import os\n\nprint "utils ready"\n', []),
    # one that imports it, or may import anything by name, may call the helper
    ('from pkg import utils\n\nprint "utils ready"\n', [(7, 4, "GRD101")]),
    ('import os, utils\n\nprint "ready"\n', [(7, 4, "GRD101")]),
    ('exec "import " + name\n\nprint "utils"\n', [(7, 4, "GRD101")]),
    # the word of a run-time import in a comment is none; a use of the helper's name is
    ('# locate the data first\nimport os\n\nprint "ready"\n', []),
    ('# locate the data first\nfrom pkg.utils import *\n\nprint predictions([], None)\n', [(7, 4, "GRD101")]),
])
def test_a_module_that_does_not_parse_imports_only_what_its_import_statements_name(tmp_path, legacy, found):
    make(tmp_path, {"pkg/utils.py": UNUSED_PREDICTIONS,
                    "pkg/train.py": "from pkg.utils import accuracy\n\nprint(accuracy([], None))\n",
                    "legacy/old.py": legacy})
    (tmp_path / "setup.py").unlink()
    (tmp_path / ".git").mkdir()
    assert lint(tmp_path / "pkg/utils.py") == found


# --- methods and base classes -------------------------------------------------

BASE = """
    import torch


    class Sampler:
        @torch.no_grad()
        def generate(self, batches):
            return self._generate(batches)

        def _generate(self, batches):
            raise NotImplementedError
"""

SUBCLASS = """
    from .base import Sampler


    class LoopSampler(Sampler):
        def _generate(self, batches):
            self.model.eval()
            outs = []
            for x in batches:
                outs.append(self.model(x))
            return outs + self._predict_rest(batches)

        def _predict_rest(self, batches):
            return [self.model(x) for x in batches]
"""


def test_override_reached_only_through_a_no_grad_base_method_is_silent(tmp_path):
    make(tmp_path, {"pkg/base.py": BASE, "pkg/sampler.py": SUBCLASS})
    assert lint(tmp_path / "pkg/sampler.py") == []


def test_override_also_called_directly_with_grad_is_reported(tmp_path):
    make(tmp_path, {
        "pkg/base.py": BASE,
        "pkg/sampler.py": SUBCLASS,
        "pkg/use.py": """
            from pkg.sampler import LoopSampler


            def run(batches):
                return LoopSampler()._generate(batches)
        """,
    })
    assert lint(tmp_path / "pkg/sampler.py", Settings(cross_module=False)) == [(8, 8, "GRD101")]
    assert lint(tmp_path / "pkg/sampler.py") == [(8, 8, "GRD101")]


def test_method_called_on_an_instance_under_no_grad_in_another_module(tmp_path):
    make(tmp_path, {
        "pkg/evaluator.py": """
            class Evaluator:
                def __init__(self, model):
                    self.model = model

                def evaluate(self, val_loader):
                    self.model.eval()
                    for x in val_loader:
                        self.model(x)
        """,
        "pkg/train.py": """
            import torch
            from pkg.evaluator import Evaluator


            def main(model, val_loader):
                evaluator = Evaluator(model)
                with torch.no_grad():
                    evaluator.evaluate(val_loader)
        """,
    })
    assert lint(tmp_path / "pkg/evaluator.py", Settings(cross_module=False)) == [(7, 8, "GRD101")]
    assert lint(tmp_path / "pkg/evaluator.py") == []


# --- resolution ---------------------------------------------------------------


def test_resolve_relative_aliased_and_src_layout_imports(tmp_path):
    make(tmp_path, {
        "src/pkg/a/b.py": "def f():\n    pass\n\nclass C:\n    pass\n",
        "src/pkg/a/c.py": "from .b import f as g\nfrom ..a import b\nimport pkg.a.b as mod\nfrom pkg.a.b import C\n",
    })
    index = project.Index.load(str(tmp_path), ())
    own = index.summary(os.path.join("src", "pkg", "a", "c.py"))
    view = project.Project(index, os.path.join("src", "pkg", "a", "c.py"), own)
    b = os.path.join("src", "pkg", "a", "b.py")
    assert view.resolve(view.rel, "g") == (b, "f")
    assert view.resolve(view.rel, "b.f") == (b, "f")
    assert view.resolve(view.rel, "mod.C") == (b, "C")
    assert view.resolve(view.rel, "C") == (b, "C")
    assert view.resolve(view.rel, "os.path") is None


def test_ancestors_cross_modules_and_end_in_external_bases(tmp_path):
    make(tmp_path, {
        "pkg/base.py": "import pytorch_lightning as pl\n\nclass Base(pl.LightningModule):\n    pass\n",
        "pkg/model.py": "from .base import Base\n\nclass Model(Base):\n    pass\n",
    })
    index = project.Index.load(str(tmp_path), ())
    rel = os.path.join("pkg", "model.py")
    view = project.Project(index, rel, index.summary(rel))
    inside, outside = view.ancestors(rel, "Model")
    assert inside == [(rel, "Model"), (os.path.join("pkg", "base.py"), "Base")]
    assert outside == ["pytorch_lightning.LightningModule"]


# --- which files belong -----------------------------------------------------------


def reference_walk(root: str) -> List[str]:
    """What the project's files are, said with ``os.walk``."""
    found = []
    for top, dirs, files in os.walk(root):
        dirs[:] = sorted(
            d for d in dirs
            if not d.startswith(".") and d not in ("__pycache__", "node_modules", "site-packages", "build", "dist")
            and not os.path.exists(os.path.join(top, d, "pyvenv.cfg"))
        )
        rel = os.path.relpath(top, root)
        found.extend(n if rel == "." else os.path.join(rel, n) for n in sorted(files) if n.endswith(".py"))
    return found


@pytest.mark.parametrize("by_fd", [True, False])
def test_python_files_leave_out_hidden_build_and_virtual_environments(tmp_path, monkeypatch, by_fd):
    if by_fd and not layout._BY_FD:
        pytest.skip("directories cannot be read through descriptors here")
    monkeypatch.setattr(layout, "_BY_FD", by_fd)
    make(tmp_path, {
        "b.py": "", "a.py": "", ".hidden.py": "", "notes.txt": "",
        "pkg/z.py": "", "pkg/sub/y.py": "", "pkg/sub/deeper/x.py": "",
        "pkg/odd.py/inside.py": "",  # a directory whose name ends in .py
        ".git/hook.py": "", "build/gen.py": "", "dist/gen.py": "", "pkg/__pycache__/c.py": "",
        "node_modules/n.py": "", "env/lib/site-packages/s.py": "", "env/tool.py": "", "env/pyvenv.cfg": "",
    })
    if hasattr(os, "symlink"):
        os.symlink(tmp_path / "pkg", tmp_path / "link_to_pkg")  # not followed
        os.symlink(tmp_path / "a.py", tmp_path / "pkg" / "alias.py")
        os.symlink(tmp_path / "gone.py", tmp_path / "pkg" / "broken.py")
    expected = reference_walk(str(tmp_path))
    assert list(layout.python_files(str(tmp_path))) == expected
    assert expected[:4] == [".hidden.py", "a.py", "b.py", "setup.py"]
    assert "env" not in {p.split(os.sep)[0] for p in expected}
    found = layout.scan(str(tmp_path), stat=True)
    assert [rel for rel, _, _ in found] == expected
    for rel, size, mtime in found:
        if rel.endswith("broken.py"):
            assert size is None and mtime is None
        else:
            st = os.stat(tmp_path / rel)
            assert (size, mtime) == (st.st_size, st.st_mtime_ns)
    with pytest.raises(layout.TooMany):
        layout.scan(str(tmp_path), stat=False, limit=3)
    index = project.Index.load(str(tmp_path), ())
    assert sorted(index.entries) == sorted(r for r in expected if not r.endswith("broken.py"))


def test_a_project_of_too_many_files_is_not_indexed(tmp_path, monkeypatch):
    make(tmp_path, {"pkg/helpers.py": HELPERS, "pkg/train.py": CALLER_NO_GRAD})
    monkeypatch.setattr(project, "MAX_FILES", 3)
    assert project.Index.load(str(tmp_path), ()) is None
    monkeypatch.setattr(project, "MAX_FILES", 4)
    assert project.Index.load(str(tmp_path), ()) is not None


def test_names_used_as_values_are_kept_as_one_string():
    summary = project.summarize(ast.parse("f(g, h.run, run_all)\nx = h.k\n"))
    assert summary["n"] == " g h run_all " and summary["a"] == " k run "
    assert project.has(summary["a"], "run") and not project.has(summary["a"], "ru")
    assert not project.has(summary["n"], "run") and not project.has(summary["n"], "f")
    assert project.words(summary) == " f g h k run run_all "


def test_module_names():
    join = os.path.join
    assert layout.module_name(join("pkg", "sub", "mod.py")) == "pkg.sub.mod"
    assert layout.module_name(join("pkg", "sub", "__init__.py")) == "pkg.sub"
    assert layout.module_name("__init__.py") == ""
    assert layout.module_name("setup.py") == "setup"
    assert layout.module_name(join("pkg", "my__init__.py")) == "pkg.my__init__"


# --- the cache ----------------------------------------------------------------


def cache_file(root: Path) -> Path:
    return Path(project._cache_file(str(root)))


@pytest.mark.parametrize("lazy", [True, False])
def test_cache_is_written_ignored_by_git_and_reused(tmp_path, monkeypatch, lazy):
    monkeypatch.setattr(project, "_LAZY", lazy and project._LAZY)
    make(tmp_path, {"pkg/helpers.py": HELPERS, "pkg/train.py": CALLER_NO_GRAD})
    assert lint(tmp_path / "pkg/helpers.py") == []
    path = cache_file(tmp_path)
    assert (path.parent / ".gitignore").read_text().splitlines()[-1] == "*"
    entries, _ = project._load_cache(str(path))
    modules = [os.path.join("pkg", n) for n in ("__init__.py", "helpers.py", "train.py")]
    assert sorted(entries) == sorted(modules) + ["setup.py"]
    # a second process reads the summaries instead of parsing the modules again
    project._INDEXES.clear()
    parsed = []
    original = project._summarize_file
    try:
        project._summarize_file = lambda *a: parsed.append(a) or original(*a)
        assert lint(tmp_path / "pkg/helpers.py") == []
    finally:
        project._summarize_file = original
    assert parsed == []


def test_an_editor_save_writes_the_cache_once(tmp_path):
    make(tmp_path, {"pkg/helpers.py": HELPERS, "pkg/train.py": CALLER_NO_GRAD})
    assert lint(tmp_path / "pkg/helpers.py") == []
    project._INDEXES.clear()
    writes = []
    original = project._save_cache
    try:
        project._save_cache = lambda *a: writes.append(a) or original(*a)
        assert lint(tmp_path / "pkg/helpers.py") == []
        assert writes == []  # nothing changed
        project._INDEXES.clear()
        path = tmp_path / "pkg/helpers.py"
        path.write_text(path.read_text() + "\n", encoding="utf-8")
        assert lint(path) == []
        assert len(writes) == 1  # the file's new size and words, with its summary
    finally:
        project._save_cache = original
    project._INDEXES.clear()
    summarised = []
    original_summarize = project.summarize
    try:
        project.summarize = lambda *a: summarised.append(a) or original_summarize(*a)
        assert lint(path) == []
    finally:
        project.summarize = original_summarize
    assert summarised == []


def test_changed_module_is_summarized_again(tmp_path):
    make(tmp_path, {"pkg/helpers.py": HELPERS, "pkg/train.py": CALLER_NO_GRAD})
    assert lint(tmp_path / "pkg/helpers.py") == []
    project._INDEXES.clear()
    (tmp_path / "pkg/train.py").write_text(textwrap.dedent(CALLER_GRAD), encoding="utf-8")
    assert lint(tmp_path / "pkg/helpers.py") == [(6, 4, "GRD101")]


HELPERS_PY = os.path.join("pkg", "helpers.py")


def cache_bytes(table: object, summaries: bytes = b"", head: int = None) -> bytes:
    """A cache file as the index writes it: the table's length, the table, the summaries."""
    data = marshal.dumps(table)
    return (len(data) if head is None else head).to_bytes(8, "little") + data + summaries


SUMMARY = b"\xfb" + b"s" * 9  # ten bytes, not a summary


@pytest.mark.parametrize("damage", [
    b"", b"garbage\x00\xff", marshal.dumps({"pkg/helpers.py": (1, 2, "x")}), marshal.dumps([1, 2, 3]),
    marshal.dumps({HELPERS_PY: (1, 2, " evaluate ", b"\x00damaged")}),  # earlier layouts
    marshal.dumps((HELPERS_PY, (1,), (2,), (" evaluate ",), (b"\x00damaged",))),
    cache_bytes((HELPERS_PY, (1,), (2,), (" evaluate ",), (10,)), SUMMARY[:9]),  # cut short
    cache_bytes((HELPERS_PY, (1,), (2,), (" evaluate ",), (10,)), SUMMARY + b"x"),
    cache_bytes((HELPERS_PY, (1,), (2,), (" evaluate ",), (10,)), SUMMARY, head=2 ** 40),
    cache_bytes((HELPERS_PY, (1,), (2,), (" evaluate ",), (10,)), SUMMARY, head=0),
    cache_bytes((HELPERS_PY, (1,), (2,), (" evaluate ",), (10,)), SUMMARY, head=7),
    cache_bytes((HELPERS_PY, (1, 2), (2,), (" evaluate ",), (0,))),  # columns of different lengths
    cache_bytes((HELPERS_PY, (1,), (2,), (b" evaluate ",), (0,))),  # a column of the wrong type
    cache_bytes((HELPERS_PY, (1,), (2,), (" evaluate ",), (-1,))),
    cache_bytes((HELPERS_PY, (1,), (2,), (" evaluate ",), (b"",))),
    cache_bytes((HELPERS_PY, [1], [2], [" evaluate "], [0])),
    cache_bytes(("", (), (), (), ())), cache_bytes((1, 2, 3, 4, 5)), cache_bytes("abcde"), cache_bytes(None),
])
def test_corrupt_cache_is_ignored_and_replaced(tmp_path, damage):
    make(tmp_path, {"pkg/helpers.py": HELPERS, "pkg/train.py": CALLER_NO_GRAD})
    path = cache_file(tmp_path)
    path.parent.mkdir()
    path.write_bytes(damage)
    assert project._load_cache(str(path)) == ({}, None)
    assert lint(tmp_path / "pkg/helpers.py") == []
    assert HELPERS_PY in project._load_cache(str(path))[0]


@pytest.mark.parametrize("lazy", [True, False])
def test_a_cache_file_as_written_is_read_back(tmp_path, lazy):
    path = str(cache_file(tmp_path))
    os.makedirs(os.path.dirname(path))
    entries = {
        "a.py": (1, 2, " a ", b""), "b.py": (3, 4, " b ", project._UNPARSABLE), "c.py": (5, 6, " c ", SUMMARY),
    }
    project._save_cache(path, entries)
    read, stored = project._load_cache(path, lazy)
    try:
        if lazy:
            assert read["c.py"][3] != SUMMARY and type(read["c.py"][3]) is tuple
            index = project.Index(str(tmp_path), read, stored=stored)
            read = {rel: (*entry[:3], index._read(entry[3])) for rel, entry in read.items()}
        assert read == entries
    finally:
        if stored is not None:
            stored.close()


@pytest.mark.skipif(not project._LAZY, reason="summaries are read at load here")
def test_summaries_are_read_from_the_file_opened_even_after_it_is_replaced(tmp_path):
    make(tmp_path, {"pkg/helpers.py": HELPERS, "pkg/train.py": CALLER_NO_GRAD, "pkg/report.py": CALLER_GRAD})
    assert lint(tmp_path / "pkg/helpers.py") == [(6, 4, "GRD101")]
    path = str(cache_file(tmp_path))
    before, _ = project._load_cache(path)
    project._INDEXES.clear()
    index = project.Index.load(str(tmp_path), ())
    assert index._stored is not None
    assert {type(entry[3]) for entry in index.entries.values()} == {bytes, tuple}
    project._save_cache(path, {rel: (*entry[:3], b"") for rel, entry in before.items()})  # another process
    train = os.path.join("pkg", "train.py")
    assert project.calls_of(index.summary(train), "evaluate")[0][:2] == ("evaluate", "d")
    # writing reads what is left in the old file first
    index.dirty = True
    index.flush()
    assert index._stored is None
    assert project._load_cache(path)[0] == before


def damage_cached_summaries(root: Path, damage) -> None:
    """Replace every summary in the cache by what ``damage`` makes of it."""
    path = str(cache_file(root))
    entries, _ = project._load_cache(path)
    project._save_cache(path, {rel: (*entry[:3], damage(entry[3])) for rel, entry in entries.items()})


@pytest.mark.parametrize("damage", [
    lambda blob: blob[: len(blob) // 2],
    lambda blob: marshal.dumps([1, 2]),
    lambda blob: marshal.dumps({"i": {}, "c": {}, "f": {}, "k": [], "n": set(), "a": set()}),
])
def test_a_damaged_summary_in_the_cache_is_made_again(tmp_path, damage):
    make(tmp_path, {"pkg/helpers.py": HELPERS, "pkg/train.py": CALLER_NO_GRAD, "pkg/report.py": CALLER_GRAD})
    assert lint(tmp_path / "pkg/helpers.py") == [(6, 4, "GRD101")]
    damage_cached_summaries(tmp_path, damage)
    project._INDEXES.clear()
    assert lint(tmp_path / "pkg/helpers.py") == [(6, 4, "GRD101")]
    assert project._decode(project._load_cache(str(cache_file(tmp_path)))[0][HELPERS_PY][3]) is not None


def test_damaged_calls_in_the_cache_are_never_an_error(tmp_path):
    make(tmp_path, {"pkg/helpers.py": HELPERS, "pkg/train.py": CALLER_NO_GRAD})
    assert lint(tmp_path / "pkg/helpers.py") == []

    def damage(blob: bytes) -> bytes:
        if not blob:
            return blob
        summary = marshal.loads(blob)
        summary["k"] = {name: b"\xff" + calls[1:] for name, calls in summary["k"].items()}
        return marshal.dumps(summary)

    damage_cached_summaries(tmp_path, damage)
    for rel in ("pkg/helpers.py", "pkg/train.py"):
        project._INDEXES.clear()
        assert lint(tmp_path / rel) == lint(tmp_path / rel, Settings(cross_module=False))


def test_calls_are_unpacked_only_for_the_names_asked_about(tmp_path):
    make(tmp_path, {"pkg/helpers.py": HELPERS, "pkg/train.py": CALLER_NO_GRAD})
    assert lint(tmp_path / "pkg/helpers.py") == []
    project._INDEXES.clear()
    index = project.Index.load(str(tmp_path), ())
    train = index.summary(os.path.join("pkg", "train.py"))
    assert {type(calls) for calls in train["k"].values()} == {bytes}
    assert [call[0] for call in project.calls_of(train, "evaluate")] == ["evaluate"]
    assert project.calls_of(train, "nothing") == []
    unpacked = {name for name, calls in train["k"].items() if type(calls) is list}
    assert unpacked == {"evaluate"}
    # unpacked, it is the summary of the module's text
    for name in list(train["k"]):
        project.calls_of(train, name)
    assert train == project.summarize(ast.parse((tmp_path / "pkg/train.py").read_text()))


def test_unwritable_cache_place_is_no_error(tmp_path):
    make(tmp_path, {"pkg/helpers.py": HELPERS, "pkg/train.py": CALLER_NO_GRAD})
    (tmp_path / project.CACHE_DIR).write_text("a file where the cache directory would go")
    assert lint(tmp_path / "pkg/helpers.py") == []


def test_editor_buffer_replaces_its_own_files_summary(tmp_path):
    make(tmp_path, {
        "pkg/train.py": "import torch\n",
        "pkg/report.py": """
            import torch
            from pkg.train import run_eval


            def report(model, val_loader):
                with torch.no_grad():
                    return run_eval(model, val_loader)
        """,
    })
    unsaved = textwrap.dedent(HELPERS).replace("def evaluate", "def run_eval").lstrip("\n")
    assert lint(tmp_path / "pkg/train.py", text=unsaved) == []
    assert lint(tmp_path / "pkg/train.py", Settings(cross_module=False), text=unsaved) == [(6, 4, "GRD101")]


# --- the real flake8 ------------------------------------------------------------


def flake8(cwd: Path, *args: str, stdin: str = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flake8", "--isolated", "--select=GRD", *args],
        cwd=cwd, input=stdin, capture_output=True, text=True, timeout=120,
    )


def test_flake8_jobs_2_and_stdin(tmp_path):
    make(tmp_path, {
        "pkg/helpers.py": HELPERS,
        "pkg/train.py": CALLER_NO_GRAD,
        "pkg/other.py": HELPERS.replace("def evaluate", "def score"),
    })
    helpers = os.path.join("pkg", "helpers.py")
    other = os.path.join("pkg", "other.py")
    expected = f"{other}:6:5: {EVAL_LOOP}\n"
    for jobs in ("1", "2"):
        proc = flake8(tmp_path, f"-j{jobs}", "pkg")
        assert (proc.returncode, proc.stdout, proc.stderr) == (1, expected, "")
    proc = flake8(tmp_path, "--stdin-display-name", helpers, "-", stdin=(tmp_path / helpers).read_text())
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    proc = flake8(tmp_path, "--gradmode-cross-module=no", helpers)
    assert proc.stdout == f"{helpers}:6:5: {EVAL_LOOP}\n"
    proc = flake8(tmp_path, "--gradmode-cross-module=maybe", helpers)
    assert proc.returncode != 0 and "yes or no" in proc.stderr


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes anywhere")
def test_flake8_on_a_read_only_project(tmp_path):
    make(tmp_path, {"pkg/helpers.py": HELPERS, "pkg/train.py": CALLER_NO_GRAD})
    for path in [tmp_path, *tmp_path.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        proc = flake8(tmp_path, "pkg")
        assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
        assert not (tmp_path / project.CACHE_DIR).exists()
    finally:
        for path in [tmp_path, *tmp_path.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)


def test_flake8_with_a_corrupt_cache_file(tmp_path):
    make(tmp_path, {"pkg/helpers.py": HELPERS, "pkg/train.py": CALLER_NO_GRAD})
    path = cache_file(tmp_path)
    path.parent.mkdir()
    path.write_bytes(b"\x00not marshal")
    proc = flake8(tmp_path, "pkg")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


def test_standalone_command_uses_the_index(tmp_path):
    make(tmp_path, {"pkg/helpers.py": HELPERS, "pkg/train.py": CALLER_NO_GRAD, "pkg/report.py": CALLER_GRAD})
    proc = subprocess.run(
        [sys.executable, "-m", "flake8_gradmode", "--jobs", "1", "pkg"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert proc.stdout.splitlines()[0] == f"{os.path.join('pkg', 'helpers.py')}:6:5: {EVAL_LOOP}"
    (tmp_path / "pkg/report.py").unlink()
    project._INDEXES.clear()
    proc = subprocess.run(
        [sys.executable, "-m", "flake8_gradmode", "--jobs", "1", "pkg"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert (proc.returncode, proc.stdout) == (0, "")


def test_a_saved_file_reuses_its_own_cached_summary(tmp_path):
    make(tmp_path, {"pkg/helpers.py": HELPERS, "pkg/train.py": CALLER_NO_GRAD})
    assert lint(tmp_path / "pkg/helpers.py") == []
    project._INDEXES.clear()
    summarised = []
    original = project.summarize
    try:
        project.summarize = lambda *a: summarised.append(a) or original(*a)
        assert lint(tmp_path / "pkg/helpers.py") == []
        assert summarised == []  # the text is what the disk holds: the cache's summary serves
        unsaved = (tmp_path / "pkg/helpers.py").read_text() + "\n# edited\n"
        assert lint(tmp_path / "pkg/helpers.py", text=unsaved) == []
        assert len(summarised) == 1
    finally:
        project.summarize = original


# --- which calls reach a statement: constant arguments against ``if`` -----------

CONVERT = """
    import torch
    from torch import nn


    def swap_layers(model, to_half=True, scale=None):
        for name, child in model.named_children():
            if isinstance(child, nn.Linear) and to_half:
                new = nn.Linear(child.in_features, child.out_features).half()
                new.weight.copy_(child.weight)
                setattr(model, name, new)
            elif not to_half and scale is None:
                back = nn.Linear(child.in_features, child.out_features)
                back.weight.copy_(child.weight)
                setattr(model, name, back)
            else:
                swap_layers(child, to_half=to_half, scale=scale)
"""


def test_branch_on_an_argument_counts_only_the_calls_that_take_it(tmp_path):
    # Every call that can take the first branch (to_half left True) runs
    # without grad; the one call with grad passes to_half=False.
    make(tmp_path, {
        "pkg/convert.py": CONVERT,
        "pkg/setup_model.py": """
            import torch

            from .convert import swap_layers


            def prepare(model):
                with torch.no_grad():
                    swap_layers(model)


            def restore(model):
                swap_layers(model, to_half=False)
        """,
    })
    assert lint(tmp_path / "pkg/convert.py") == [(13, 12, "GRD004")]


def test_branch_on_an_argument_passed_as_a_variable_stays_reported(tmp_path):
    make(tmp_path, {
        "pkg/convert.py": CONVERT,
        "pkg/setup_model.py": """
            import torch

            from .convert import swap_layers


            def prepare(model, half):
                with torch.no_grad():
                    swap_layers(model, half, 1.0)
                swap_layers(model, to_half=half)
        """,
    })
    assert lint(tmp_path / "pkg/convert.py") == [(9, 12, "GRD004"), (13, 12, "GRD004")]


def test_a_recursive_call_adds_nothing_to_its_own_callers(tmp_path):
    # swap_layers calls itself; its only other caller runs it without grad.
    make(tmp_path, {
        "pkg/convert.py": CONVERT,
        "pkg/setup_model.py": """
            import torch

            from .convert import swap_layers


            def prepare(model):
                with torch.no_grad():
                    swap_layers(model, to_half=False)
                    swap_layers(model, True, None)
        """,
    })
    assert lint(tmp_path / "pkg/convert.py") == []


def test_shape_of_a_call():
    call = ast_call("f(x, 0, *rest, mode='eval', **kw)")
    assert facts.call_shape(call) == (-1, ("mode", "**"), ((1, 0), ("mode", "eval")))
    assert facts.call_shape(ast_call("f(a, None, k=b)")) == (2, ("k",), ((1, None),))


def ast_call(code: str):
    return ast.parse(code).body[0].value


def test_a_caller_that_switched_grad_off_by_statement_in_another_module(tmp_path):
    make(tmp_path, {
        "pkg/helpers.py": HELPERS,
        "pkg/run.py": """
            import torch

            from .helpers import evaluate


            def main(model, val_loader):
                torch.set_grad_enabled(False)
                print("evaluating")
                return evaluate(model, val_loader)


            def other(model, val_loader):
                torch.no_grad().__enter__()
                return evaluate(model, val_loader)
        """,
    })
    assert lint(tmp_path / "pkg/helpers.py") == []


AGENT_BASE = """
    import torch


    class Agent:
        def __init__(self, net, optimizer):
            self.net = net
            self.optimizer = optimizer

        def optimise(self, loss):
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
"""

AGENT = """
    import torch

    from .base import Agent


    class QAgent(Agent):
        def step(self):
            while not self.done:
                self.act()
                for _ in range(self.updates):
                    self.learn()

        def learn(self):
            states, targets = self.memory.sample()
            loss = (self.net(states) - targets).pow(2).mean()
            self.optimise(loss)

        def act(self):
            self.net.eval()
            with torch.no_grad():
                values = self.net(self.state)
            self.net.train()
            return values.argmax()
"""


def test_a_loop_training_through_a_base_class_method_of_another_module(tmp_path):
    make(tmp_path, {"pkg/base.py": AGENT_BASE, "pkg/agent.py": AGENT, "pkg/run.py": RUN_AGENT})
    assert lint(tmp_path / "pkg/agent.py") == []


#: the project's own call of the agent's loop (a method nothing calls is its
#: unknown caller's business)
RUN_AGENT = "def run(agent):\n    agent.step()\n"


def test_a_loop_calling_a_base_method_that_does_not_train_is_reported(tmp_path):
    base = AGENT_BASE.replace("loss.backward()", "print(loss)").replace("self.optimizer.step()", "pass")
    base = base.replace("self.optimizer.zero_grad()", "pass")
    make(tmp_path, {"pkg/base.py": base, "pkg/agent.py": AGENT, "pkg/run.py": RUN_AGENT})
    assert lint(tmp_path / "pkg/agent.py") == [(10, 12, "GRD101")]


WRAPPER = """
    import torch


    class Wrapper:
        def __init__(self, model, lr):
            self.model = model
            self.optimizer = torch.optim.SGD(model.parameters(), lr=lr)

        def train_epoch(self, batches):
            for x, y in batches:
                self.optimizer.zero_grad()
                torch.nn.functional.mse_loss(self.model(x), y).backward()
                self.optimizer.step()
"""

SWEEP = """
    from .wrapper import Wrapper


    def sweep(models, loader, epochs):
        images, labels = next(iter(loader))
        for model in models:
            model.eval()
            print(model(images).argmax(1))
            wrapper = Wrapper(model, 0.1)
            for _ in range(epochs):
                wrapper.train_epoch(loader)
"""

RUN_SWEEP = "from .sweep import sweep\n\n\ndef run(models, loader):\n    sweep(models, loader, 3)\n"


def test_a_loop_training_through_a_method_of_a_class_of_another_module(tmp_path):
    # ``wrapper = Wrapper(...)`` is built from a class ``wrapper.py`` defines:
    # its ``train_epoch`` backpropagates, so the loop over models trains them
    make(tmp_path, {"pkg/wrapper.py": WRAPPER, "pkg/sweep.py": SWEEP, "pkg/run.py": RUN_SWEEP})
    assert lint(tmp_path / "pkg/sweep.py") == []


def test_a_loop_calling_a_method_of_a_class_of_another_module_that_does_not_train_is_reported(tmp_path):
    wrapper = WRAPPER.replace(".backward()", ".item()").replace("self.optimizer.step()", "pass")
    wrapper = wrapper.replace("self.optimizer.zero_grad()", "pass")
    make(tmp_path, {"pkg/wrapper.py": wrapper, "pkg/sweep.py": SWEEP, "pkg/run.py": RUN_SWEEP})
    assert lint(tmp_path / "pkg/sweep.py") == [(6, 4, "GRD101")]


FINETUNE = """
    import torch


    def fit(model, batches, optimizer):
        model.train()
        for x, y in batches:
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            optimizer.step()


    def fit_in_stages(model, batches, stages):
        for params in stages:
            fit(model, batches, torch.optim.SGD(params, lr=0.1))
"""

PER_CLASS = """
    from .finetune import fit_in_stages


    def per_class(model, batches, stages, x_val, targets):
        scores = []
        for target in targets:
            fit_in_stages(model, batches[target], stages)
            scores.append(model(x_val).tolist())
        return scores
"""


def test_a_loop_training_through_a_function_that_another_modules_function_calls(tmp_path):
    # ``fit_in_stages`` runs no step itself: ``fit``, of its own module, does
    make(tmp_path, {"pkg/finetune.py": FINETUNE, "pkg/classes.py": PER_CLASS, "pkg/run.py": RUN_PER_CLASS})
    assert lint(tmp_path / "pkg/classes.py") == []
    other = tmp_path / "untrained"
    other.mkdir()
    make(other, {"pkg/finetune.py": FINETUNE.replace("  fit(model,", "  print(model,"),
                 "pkg/classes.py": PER_CLASS, "pkg/run.py": RUN_PER_CLASS})
    assert lint(other / "pkg/classes.py") == [(6, 4, "GRD101")]


RUN_PER_CLASS = "from .classes import per_class\n\n\ndef main(*args):\n    per_class(*args)\n"


ORPHAN_HELPERS = """
    import torch


    def evaluate(model, loader):
        model.eval()
        correct = 0
        for x, y in loader:
            correct += (model(x).argmax(1) == y).sum().item()
        return correct
"""

ORPHAN_MAIN = """
    import torch

    {line}


    def main():
        model = torch.nn.Linear(4, 2)
        print(model)


    if __name__ == "__main__":
        main()
"""


def unpackaged(root: Path, files: Dict[str, str]) -> Path:
    """A checkout with no packaging file: ``.git`` marks its root."""
    make(root, files)
    (root / "setup.py").unlink()
    (root / ".git").mkdir()
    return root


LEFTOVER_FUNCTIONS = """
    import torch


    def train(model, loader, optimizer):
        for x, y in loader:
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()


    def get_is(model, loader):
        scores = []
        for x in loader:
            scores.append(model(x).softmax(1).mean().item())
        return scores


    def search_architecture(model, loader):
        return max(get_is(model, loader))
"""

ENTRY = """
    import torch

    from functions import train


    def main():
        model = torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.Dropout(0.1))
        train(model, [], torch.optim.SGD(model.parameters(), lr=0.1))


    if __name__ == "__main__":
        main()
"""


def test_functions_nothing_names_in_an_imported_module_of_an_unpackaged_project_never_run(tmp_path):
    # train.py imports functions.py for train(); get_is runs only from
    # search_architecture, which nothing names: both are leftovers
    unpackaged(tmp_path, {"functions.py": LEFTOVER_FUNCTIONS, "main.py": ENTRY})
    assert lint(tmp_path / "functions.py") == []


SHADOWED_TRAIN = """
    import torch


    def train(model, optimizer, loader):
        total = 0
        for x in loader:
            loss = model(x).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss
        return total


    def graph_train():
        model = torch.nn.Linear(2, 2)
        train(model, torch.optim.SGD(model.parameters(), lr=0.1), [])


    def cora_train():
        train = [1, 2]
        for _ in range(3):
            print(train[:1])


    if __name__ == "__main__":
        # graph_train()
        cora_train()
"""


@pytest.mark.parametrize("old, new, found", [
    # ``train`` in ``cora_train`` is its own list: nothing runs the function ``train``
    ("", "", []),
    ("        cora_train()", "        cora_train()\n    STEPS = [train]", [(11, 8, "GRD104")]),
    ("        train = [1, 2]", "        global train\n        train = [1, 2]", [(11, 8, "GRD104")]),
    ("        # graph_train()", "        graph_train()", [(11, 8, "GRD104")]),
])
def test_a_local_name_of_another_function_does_not_name_a_module_function(tmp_path, old, new, found):
    unpackaged(tmp_path, {"main.py": SHADOWED_TRAIN.replace(old, new, 1) if old else SHADOWED_TRAIN})
    assert lint(tmp_path / "main.py") == found


CLOSURE_IN_MAIN = """
    import numpy as np
    import torch


    def main(data):
        net = torch.nn.Sequential(torch.nn.Linear(4, 2))

        def get_test_loss(batches):
            losses = []
            for batch in batches:
                losses.append(net(batch).sum().item())
            return np.mean(losses)

        optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
        for batch in data:
            optimizer.zero_grad()
            net(batch).sum().backward()
            optimizer.step()
        return get_test_loss(data)
"""


@pytest.mark.parametrize("tail, found", [
    ("", []),  # nothing calls main(), nor imports the module: its closure is never even defined
    ("\n\nmain([])\n", [(10, 8, "GRD101")]),
])
def test_a_closure_of_a_function_that_never_runs_never_runs(tmp_path, tail, found):
    unpackaged(tmp_path, {"pixel.py": textwrap.dedent(CLOSURE_IN_MAIN) + tail, "other.py": "import torch\n"})
    assert lint(tmp_path / "pixel.py") == found


DEAD_CALLER_FUNCTIONS = """
    import torch


    def train(model, loader, optimizer):
        for x, y in loader:
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()


    def get_is(model, loader):
        scores = []
        for x in loader:
            scores.append(model(x).softmax(1).mean().item())
        return scores
"""

DEAD_CALLER_MAIN = """
    import torch

    from functions import get_is, train


    def search(model):
        return max(get_is(model, []))


    def main():
        model = torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.Dropout(0.1))
        train(model, [], torch.optim.SGD(model.parameters(), lr=0.1))
        return model


    if __name__ == "__main__":
        model = main()
        # search(model)
"""


RUN_ALL = "def run_all(model):\n    return search(model)\n\n\ndef search"


@pytest.mark.parametrize("old, new, found", [
    ("", "", []),  # search's one call is commented out: get_is never runs
    ("    # search(model)", "    search(model)", [(13, 4, "GRD101")]),
    ("def search", RUN_ALL, []),  # run_all, search's only caller, never runs either
    ("def search", "@app.command()\ndef search", [(13, 4, "GRD101")]),  # a command line runs it
    ("def main", "MODES = {'search': search}\n\n\ndef main", [(13, 4, "GRD101")]),  # a value
    ("    model = main()", "    model = main()\n    fire.Fire()", [(13, 4, "GRD101")]),  # every function a command
    ("    model = main()", "    model = globals()['search'](main())", [(13, 4, "GRD101")]),
    ("    model = main()", "    model = eval('main')()", [(13, 4, "GRD101")]),
    ("    model = main()", "    model = main().eval()", []),  # a model's eval() finds no function
])
def test_a_function_called_only_by_functions_nothing_runs_in_another_module_never_runs(tmp_path, old, new, found):
    main = textwrap.dedent(DEAD_CALLER_MAIN)
    main = main.replace(old, new, 1) if old else main
    unpackaged(tmp_path, {"functions.py": DEAD_CALLER_FUNCTIONS, "main.py": main})
    assert [f for f in lint(tmp_path / "functions.py") if f[2] == "GRD101"] == found


@pytest.mark.parametrize("extra", [
    {"search.ipynb": "{}"},  # a notebook may call search()
    {"setup.py": ""},  # a package: its users may call search()
    {"run.py": "from main import search\nsearch(None)\n"},  # another module runs it
    {"run.py": "from main import run_all\nrun_all(None)\n"},  # search's caller runs
    # a module imported by name, a function looked up by name: any may run
    {"run.py": "import importlib\ngetattr(importlib.import_module('main'), input())(None)\n"},
    {"run.py": "import main\ngetattr(main, input())(None)\n"},
])
def test_a_function_called_from_a_function_another_file_may_run_is_reported(tmp_path, extra):
    main = textwrap.dedent(DEAD_CALLER_MAIN).replace("def search", RUN_ALL, 1)
    unpackaged(tmp_path, {"functions.py": DEAD_CALLER_FUNCTIONS, "main.py": main})
    for name, text in extra.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    assert [f for f in lint(tmp_path / "functions.py") if f[2] == "GRD101"] == [(13, 4, "GRD101")]


OWN_GET_IS = """
    from functions import *


    def get_is(model, loader):
        return [0.0]


    def main():
        model = torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.Dropout(0.1))
        train(model, [], torch.optim.SGD(model.parameters(), lr=0.1))
        print(get_is(model, []))


    if __name__ == "__main__":
        main()
"""


@pytest.mark.parametrize("change, found", [
    ("", []),
    # ``functions.get_is`` read as well: it may be the leftover one
    ("        print(functions.get_is)\n", [(13, 4, "GRD101")]),
])
def test_a_module_defining_its_own_function_of_a_star_imported_name_calls_its_own(tmp_path, change, found):
    # main.py star-imports functions.py and defines the get_is it calls: functions.get_is never runs
    entry = OWN_GET_IS + ("    import functions\n" if change else "")
    entry = entry.replace("        print(get_is(model, []))\n", "        print(get_is(model, []))\n" + change)
    unpackaged(tmp_path, {"functions.py": LEFTOVER_FUNCTIONS, "main.py": entry})
    assert lint(tmp_path / "functions.py") == found


@pytest.mark.parametrize("setup, found", [
    # a module made to be imported that fixes up its import path first
    ("import sys\nsys.path.append('../')\n", []),
    ("import warnings\nwarnings.filterwarnings('ignore')\n", []),
    # ... or picks a plotting backend for the figures it draws
    ("import matplotlib\nmatplotlib.use('Agg')\n", []),
    # a module that runs something else at import: it may be run by hand
    ("torch.set_num_threads(1)\n", [(14, 4, "GRD101")]),
    ("import matplotlib.pyplot as plt\nplt.plot([0, 1])\n", [(15, 4, "GRD101")]),
])
def test_a_module_setting_up_its_imports_is_still_made_to_be_imported(tmp_path, setup, found):
    functions = textwrap.dedent(LEFTOVER_FUNCTIONS).replace("import torch\n", "import torch\n" + setup, 1)
    functions = functions.replace("import sys\n", "").replace("import warnings\n", "")
    imports = "import sys\n" if "sys." in setup else "import warnings\n" if "warnings." in setup else ""
    unpackaged(tmp_path, {"functions.py": imports + functions, "main.py": ENTRY})
    assert lint(tmp_path / "functions.py") == found


@pytest.mark.parametrize("change", [
    "from functions import search_architecture, train\n    SEARCH = search_architecture",  # another module uses it
    "import importlib",  # a module imports by name at run time: any name may be called
])
def test_a_leftover_function_is_reported_when_something_may_call_it(tmp_path, change):
    entry = ENTRY.replace("from functions import train", change + "\n    from functions import train")
    unpackaged(tmp_path, {"functions.py": LEFTOVER_FUNCTIONS, "main.py": entry})
    if change == "import importlib":
        plugins = "import importlib\nimport sys\n\nMODULE = importlib.import_module(sys.argv[1])\n"
        (tmp_path / "plugins.py").write_text(plugins)
    assert lint(tmp_path / "functions.py") == [(13, 4, "GRD101")]


@pytest.mark.parametrize("where, found", [
    ("plugins.py", [(13, 4, "GRD101")]),  # a module of the project imports by name: it may import this one
    ("tests/check_imports.py", []),  # a unit test that imports modules by name runs none of their code
])
def test_a_unit_test_importing_by_name_leaves_a_module_nothing_imports_unrun(tmp_path, where, found):
    unpackaged(tmp_path, {"functions.py": LEFTOVER_FUNCTIONS, "main.py": ENTRY.replace("from functions import train",
                                                                                       "from trainer import train")})
    (tmp_path / "trainer.py").write_text("def train(model, loader, optimizer):\n    return None\n")
    (tmp_path / where).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / where).write_text("import importlib\nimport sys\n\nMODULE = importlib.import_module(sys.argv[1])\n")
    assert lint(tmp_path / "functions.py") == found


def test_an_import_nothing_uses_names_nothing_in_an_unpackaged_project(tmp_path):
    # ``search_architecture`` imported beside ``train`` and never used: no code of the checkout
    # runs it, and no distribution lets anyone else import it
    entry = ENTRY.replace("from functions import train", "from functions import search_architecture, train")
    unpackaged(tmp_path, {"functions.py": LEFTOVER_FUNCTIONS, "main.py": entry})
    assert lint(tmp_path / "functions.py") == []
    # a package's ``__init__.py`` re-exports what it imports
    unpackaged(tmp_path / "pkg", {"functions.py": LEFTOVER_FUNCTIONS, "main.py": ENTRY,
                                  "__init__.py": "from .functions import search_architecture\n"})
    assert lint(tmp_path / "pkg" / "functions.py") == [(13, 4, "GRD101")]


@pytest.mark.parametrize("use, found", [
    # ``get_is`` of another module, imported under that name: not the leftover one here
    ("from scores import get_is\n    RUN = get_is", []),
    ("from scores import get_is as get_is\n    RUN = get_is", []),
    # the name read as an attribute as well, or imported from here: it may be this one
    ("from scores import get_is\n    RUN = get_is, functions.get_is\n    import functions", [(13, 4, "GRD101")]),
    ("from functions import get_is\n    RUN = get_is", [(13, 4, "GRD101")]),
])
def test_a_function_of_another_module_with_the_same_name_does_not_name_a_leftover(tmp_path, use, found):
    entry = ENTRY.replace("from functions import train", use + "\n    from functions import train")
    scores = "def get_is(model, loader):\n    return [0.0]\n"
    unpackaged(tmp_path, {"functions.py": LEFTOVER_FUNCTIONS, "main.py": entry, "scores.py": scores})
    assert lint(tmp_path / "functions.py") == found


def test_a_module_imported_under_its_function_s_name_names_the_function(tmp_path):
    # ``from tools import get_is`` imports the module tools/get_is.py; ``get_is.get_is(...)`` runs its function
    entry = ENTRY.replace("from functions import train", "from tools import get_is\n    from functions import train")
    entry = entry.replace("        train(model,", "        get_is.get_is(model, [])\n        train(model,")
    unpackaged(tmp_path, {"tools/get_is.py": LEFTOVER_FUNCTIONS, "functions.py": LEFTOVER_FUNCTIONS, "main.py": entry})
    assert lint(tmp_path / "tools/get_is.py") == [(13, 4, "GRD101")]


def test_a_leftover_function_of_a_package_is_reported(tmp_path):
    make(tmp_path, {"functions.py": LEFTOVER_FUNCTIONS, "main.py": ENTRY})  # setup.py: users may call it
    assert lint(tmp_path / "functions.py") == [(13, 4, "GRD101")]


@pytest.mark.parametrize("line, found", [
    ("", []),  # nothing imports helpers.py: its functions never run
    ("from helpers import evaluate\n    RUN = evaluate", [(7, 4, "GRD101")]),
    ("from helpers import evaluate", []),  # an import nothing uses names nothing in a checkout
    # imported, but no code names evaluate: in an unpackaged project it never runs
    ("import helpers", []),
    ("from helpers import *", []),
    ("import helpers\n    RUN = helpers.evaluate", [(7, 4, "GRD101")]),
    ("from helpers import *\n    RUN = evaluate", [(7, 4, "GRD101")]),
    ("import importlib", []),  # no import by name at run time yet: still nothing imports it
    ("importlib.import_module('helpers')", [(7, 4, "GRD101")]),  # imports by name at run time
])
def test_a_module_nothing_imports_in_an_unpackaged_project_runs_nothing(tmp_path, line, found):
    main = ORPHAN_MAIN.replace("{line}", line.replace("importlib.", "import importlib\n    importlib."))
    unpackaged(tmp_path, {"helpers.py": ORPHAN_HELPERS, "main.py": main})
    assert [f for f in lint(tmp_path / "helpers.py") if f[2] == "GRD101"] == found


@pytest.mark.parametrize("name, tail", [
    ("helpers.py", "\n\n    for epoch in range(3):\n        evaluate(None, [])\n"),  # runs when run as a script
    ("helpers.py",
     "\n\n    import argparse\n\n    parser = argparse.ArgumentParser()\n    parser.add_argument('--lr')\n"),
    ("helpers.py", "\n\n    import argparse\n\n    args = argparse.ArgumentParser().parse_args()\n"),
    ("10_helpers.py", ""),  # no import can spell it: run as a script
])
def test_a_module_nothing_imports_that_runs_code_is_a_script(tmp_path, name, tail):
    unpackaged(tmp_path, {name: ORPHAN_HELPERS + tail, "main.py": ORPHAN_MAIN.replace("{line}", "")})
    assert [f for f in lint(tmp_path / name) if f[2] == "GRD101"] == [(7, 4, "GRD101")]


def _runner(root: Path, name: str, executable: bool) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    shebang = "#!/usr/bin/env python\n" if executable else ""
    path.write_text(shebang + "from pkg.helpers import evaluate\n", encoding="utf-8")


@pytest.mark.parametrize("runner, executable, found", [
    (None, False, []),  # nothing the project keeps can import it: it runs nothing
    ("analysis.ipynb", False, [(7, 4, "GRD101")]),  # a notebook may import a package's module
    ("bin/run", True, [(7, 4, "GRD101")]),  # so may a Python script without ``.py``
    ("bin/NOTES", False, []),  # a file without an extension Python does not run
])
def test_a_module_of_a_package_directory_is_imported_only_by_what_the_project_keeps(
    tmp_path, runner, executable, found,
):
    unpackaged(tmp_path, {"pkg/helpers.py": ORPHAN_HELPERS, "main.py": ORPHAN_MAIN.replace("{line}", "")})
    if runner is not None:
        _runner(tmp_path, runner, executable)
    assert [f for f in lint(tmp_path / "pkg/helpers.py") if f[2] == "GRD101"] == found


def test_a_module_nothing_imports_in_a_package_may_be_imported_by_its_users(tmp_path):
    make(tmp_path, {"helpers.py": ORPHAN_HELPERS, "main.py": ORPHAN_MAIN.replace("{line}", "")})
    assert [f for f in lint(tmp_path / "helpers.py") if f[2] == "GRD101"] == [(7, 4, "GRD101")]


ORPHAN_AGENT = """
    import torch


    class Agent:
        pass


    class Critic(Agent):
        def evaluate(self, model, states):
            model.eval()
            values = []
            for s in states:
                values.append(model(s).mean().item())
            return values

        def update(self, model, batches, optimizer):
            total = 0
            for x, y in batches:
                loss = torch.nn.functional.mse_loss(model(x), y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += loss
            return total
"""


def test_every_method_of_a_module_nothing_imports_in_an_unpackaged_project_never_runs(tmp_path):
    # not only module-level functions and methods of plain classes: no class of it is ever made
    unpackaged(tmp_path / "a", {"agent.py": ORPHAN_AGENT, "main.py": ORPHAN_MAIN.replace("{line}", "")})
    assert lint(tmp_path / "a" / "agent.py") == []
    main = ORPHAN_MAIN.replace("{line}", "from agent import Critic\n    CRITIC = Critic()")
    unpackaged(tmp_path / "b", {"agent.py": ORPHAN_AGENT, "main.py": main})
    assert lint(tmp_path / "b" / "agent.py") == [(12, 8, "GRD101"), (23, 12, "GRD104")]


@pytest.mark.parametrize("setup, init, found", [
    # find_packages() installs only directories with an __init__.py: nobody outside can import agents/agent.py
    ("setup(name='rl', packages=find_packages())", False, []),
    ("setup(name='rl', packages=find_packages())", True, [(12, 8, "GRD101"), (23, 12, "GRD104")]),
    # namespace packages, a package list naming the directory, or discovery left to setuptools: it may be installed
    ("setup(name='rl', packages=find_namespace_packages())", False, [(12, 8, "GRD101"), (23, 12, "GRD104")]),
    ("setup(name='rl', packages=['agents'])", False, [(12, 8, "GRD101"), (23, 12, "GRD104")]),
    ("setup(name='rl')", False, [(12, 8, "GRD101"), (23, 12, "GRD104")]),
])
def test_a_module_find_packages_does_not_install_is_outside_the_package(tmp_path, setup, init, found):
    make(tmp_path, {"agents/agent.py": ORPHAN_AGENT, "main.py": ORPHAN_MAIN.replace("{line}", "")})
    (tmp_path / "setup.py").write_text("from setuptools import *\n" + setup + "\n")
    if not init:
        (tmp_path / "agents" / "__init__.py").unlink()
    assert lint(tmp_path / "agents" / "agent.py") == found


def test_a_logged_forward_of_a_module_nothing_imports_never_runs(tmp_path):
    sampler = """
        import torch
        from torchvision.utils import save_image


        class Trainer(object):
            def train(self, generator, loader, optimizer):
                for z in loader:
                    loss = generator(z).mean()
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    save_image(generator(z), "sample.png")
    """
    unpackaged(tmp_path, {"sampler.py": sampler, "main.py": ORPHAN_MAIN.replace("{line}", "")})
    assert lint(tmp_path / "sampler.py") == []
    make(tmp_path / "packaged", {"sampler.py": sampler, "main.py": ORPHAN_MAIN.replace("{line}", "")})
    assert lint(tmp_path / "packaged" / "sampler.py") == [(12, 23, "GRD101")]


def test_the_cache_is_written_at_most_once_a_second_by_one_process(tmp_path, monkeypatch):
    make(tmp_path, {"pkg/helpers.py": HELPERS, "pkg/train.py": CALLER_NO_GRAD})
    index = project.index_for(str(tmp_path))
    writes = []
    monkeypatch.setattr(project, "_save_cache", lambda path, entries: writes.append(path))
    index.dirty = True
    index.flush_soon()
    index.dirty = True
    index.flush_soon()  # within the interval: left for later
    assert len(writes) == 1 and index.dirty
    index.flush()  # what the process does at exit
    assert len(writes) == 2 and not index.dirty


# --- ``forward`` and dunders: called by ``module(x)``, not by name -----------------


def test_helper_of_forward_keeps_the_per_file_answer_when_other_forwards_run_under_no_grad(tmp_path):
    make(tmp_path, {
        "pkg/explain.py": """
            import torch


            class Explainer(torch.nn.Module):
                def __init__(self, model):
                    super().__init__()
                    self.model = model
                    self.mask = torch.nn.Parameter(torch.ones(4))

                def fit_mask(self, x):
                    opt = torch.optim.Adam([self.mask], lr=0.1)
                    for epoch in range(10):
                        loss = self.model(x * self.mask).sum()
                        opt.zero_grad()
                        loss.backward()
                        opt.step()
                    return self.mask.detach()

                def forward(self, x):
                    return self.fit_mask(x)
        """,
        "pkg/cache.py": """
            import torch


            def refresh(history, x):
                with torch.no_grad():
                    history.forward(x)
        """,
    })
    assert lint(tmp_path / "pkg/explain.py") == []


# --- a class that is an nn.Module through a generic base of another module -------


def test_method_of_a_module_based_on_a_generic_project_class_is_the_callers_business(tmp_path):
    make(tmp_path, {
        "pkg/base.py": """
            from typing import Generic, TypeVar

            import torch

            T = TypeVar("T")


            class Embeddings(torch.nn.Module, Generic[T]):
                def embed(self, items):
                    return self._embed_internal(items)


            class TokenEmbeddings(Embeddings[str]):
                pass
        """,
        "pkg/chars.py": """
            import torch

            from .base import TokenEmbeddings


            class CharEmbeddings(TokenEmbeddings):
                def __init__(self):
                    super().__init__()
                    self.encoder = torch.nn.Linear(4, 4)
                    self.eval()

                def _embed_internal(self, items):
                    out = []
                    for x in items:
                        out.append(self.encoder(x))
                    return out
        """,
    })
    assert lint(tmp_path / "pkg/chars.py") == []
    assert lint(tmp_path / "pkg/chars.py", Settings(cross_module=False)) == [(14, 8, "GRD101")]


# --- receivers the index can type, and calls from unit tests ---------------------


LOADER = """
    import torch


    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 3, 1)

        def load_from(self, weights):
            self.conv.weight.copy_(weights)
"""

NET = """
    import torch

    from pkg.blocks import Block


    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = torch.nn.ModuleList([Block(), Block()])

        def load_from(self, weights):
            with torch.no_grad():
                for block in self.blocks:
                    block.load_from(weights)
"""


def test_a_method_of_the_same_name_on_another_class_is_not_a_caller(tmp_path):
    make(tmp_path, {
        "pkg/blocks.py": LOADER,
        "pkg/net.py": NET,
        "train.py": """
            import torch

            from pkg.net import Net

            net = Net().to("cpu")
            net.load_from(torch.zeros(3, 3, 1, 1))
        """,
    })
    assert lint(tmp_path / "pkg/blocks.py") == []
    assert lint(tmp_path / "pkg/blocks.py", Settings(cross_module=False)) == [(10, 8, "GRD004")]


def test_the_class_itself_built_and_called_with_grad_is_a_caller(tmp_path):
    make(tmp_path, {
        "pkg/blocks.py": LOADER,
        "pkg/net.py": NET,
        "train.py": """
            import torch

            from pkg.blocks import Block

            block = Block().cuda()
            block.load_from(torch.zeros(3, 3, 1, 1))
        """,
    })
    assert lint(tmp_path / "pkg/blocks.py") == [(10, 8, "GRD004")]


def test_calls_from_unit_tests_do_not_decide_the_grad_mode(tmp_path):
    make(tmp_path, {
        "pkg/blocks.py": LOADER,
        "pkg/net.py": NET,
        "tests/test_blocks.py": """
            import torch

            from pkg.blocks import Block


            def test_load():
                block = Block()
                holder = [block]
                holder[0].load_from(torch.zeros(3, 3, 1, 1))
        """,
    })
    assert lint(tmp_path / "pkg/blocks.py") == []


EVALUATION_SCRIPT_NAMED_LIKE_A_TEST = """
    import argparse

    import torch

    from pkg.helpers import evaluate


    def main():
        args = argparse.ArgumentParser().parse_args()
        model = torch.load(args.model)
        with torch.no_grad():
            print(evaluate(model, torch.load(args.data)))


    if __name__ == "__main__":
        main()
"""


def test_an_evaluation_script_named_test_net_is_a_caller_not_a_unit_test(tmp_path):
    # tools/test_net.py: the project's evaluation entry point runs the helper
    # under no_grad; it imports no test framework and defines no test_*
    make(tmp_path, {"pkg/helpers.py": HELPERS, "tools/test_net.py": EVALUATION_SCRIPT_NAMED_LIKE_A_TEST})
    assert lint(tmp_path / "pkg/helpers.py") == []


@pytest.mark.parametrize("unit", ["import unittest\n", "def test_main():\n    main()\n"])
def test_a_file_named_like_a_test_that_is_one_does_not_decide_the_grad_mode(tmp_path, unit):
    script = textwrap.dedent(EVALUATION_SCRIPT_NAMED_LIKE_A_TEST) + "\n\n" + unit
    make(tmp_path, {"pkg/helpers.py": HELPERS, "tools/test_net.py": script})
    assert lint(tmp_path / "pkg/helpers.py") == [(6, 4, "GRD101")]


# --- model mode handed over by callers in other modules -------------------------

EVAL_NO_SWITCH = """
    import torch


    def evaluate(net, val_loader):
        correct = 0
        with torch.no_grad():
            for x, y in val_loader:
                correct += (net(x).argmax(1) == y).sum().item()
        return correct
"""

TRAIN_SWITCHED = """
    from .evaluation import evaluate


    def fit(net, optimizer, loader, val_loader):
        net.train()
        for x, y in loader:
            optimizer.zero_grad()
            net(x).sum().backward()
            optimizer.step()
        return evaluate(net, val_loader)
"""

TRAIN_FRESH = """
    from pkg.evaluation import evaluate


    def fit(net, optimizer, loader, val_loader):
        for x, y in loader:
            optimizer.zero_grad()
            net(x).sum().backward()
            optimizer.step()
        score = evaluate(val_loader=val_loader, net=net)
        return score
"""


def lint_102(path: Path) -> List[Tuple[int, int, str, str]]:
    source = path.read_text(encoding="utf-8")
    return [(v.line, v.col, v.code, v.message) for v in check(source, filename=str(path)) if v.code == "GRD102"]


def test_a_model_switched_to_training_mode_in_another_module_and_handed_over_is_reported(tmp_path):
    make(tmp_path, {"pkg/evaluation.py": EVAL_NO_SWITCH, "pkg/train.py": TRAIN_SWITCHED})
    assert lint_102(tmp_path / "pkg/evaluation.py") == [(
        7, 8, "GRD102",
        "evaluation loop runs `net` in training mode: `fit()` in `pkg/train.py` hands it over in training mode, "
        "and nothing calls `.eval()` before the loop; call `net.eval()` before the loop",
    )]


def test_a_model_trained_by_the_calling_function_is_in_training_mode_by_keyword_too(tmp_path):
    make(tmp_path, {"pkg/evaluation.py": EVAL_NO_SWITCH, "pkg/train.py": TRAIN_FRESH})
    assert [f[:3] for f in lint_102(tmp_path / "pkg/evaluation.py")] == [(7, 8, "GRD102")]


@pytest.mark.parametrize("change", [
    ("net.train()\n", "net.train()\n    net.eval()\n"),  # the caller switches to eval mode too
    ("return evaluate(net, val_loader)", "return evaluate(val_loader, net)"),  # another argument
])
def test_a_caller_that_also_switches_to_eval_or_hands_over_something_else_is_no_evidence(tmp_path, change):
    make(tmp_path, {"pkg/evaluation.py": EVAL_NO_SWITCH, "pkg/train.py": TRAIN_SWITCHED.replace(*change)})
    assert lint_102(tmp_path / "pkg/evaluation.py") == []


def test_a_caller_that_only_runs_the_model_without_training_is_no_evidence(tmp_path):
    caller = TRAIN_FRESH.replace(
        "optimizer.zero_grad()\n            net(x).sum().backward()\n            optimizer.step()", "print(net(x))"
    )
    assert "backward" not in caller
    make(tmp_path, {"pkg/evaluation.py": EVAL_NO_SWITCH, "pkg/train.py": caller})
    assert lint_102(tmp_path / "pkg/evaluation.py") == []


def test_a_unit_test_handing_over_a_model_in_training_mode_is_no_evidence(tmp_path):
    unit_test = TRAIN_SWITCHED.replace("from .", "from pkg.")
    make(tmp_path, {"pkg/evaluation.py": EVAL_NO_SWITCH, "tests/test_train.py": unit_test})
    assert lint_102(tmp_path / "pkg/evaluation.py") == []


VOCODER = """
    import torch
    from torch import nn


    class Vocoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))

        def forward(self, x):
            return self.net(x)

        def generate(self, mels):
            self.eval()
            with torch.no_grad():
                return self.net(mels)
"""

GENERATE_LOOP = """
    def listen(model, test_set):
        for mels in test_set:
            wav = model.generate(mels)
            print(wav.shape)
"""

TRAIN_THEN_LISTEN = """
    from pkg.listen import listen
    from pkg.vocoder import Vocoder


    def train(loader, test_set, optimizer):
        model = Vocoder()
        for x, y in loader:
            optimizer.zero_grad()
            (model(x) - y).pow(2).mean().backward()
            optimizer.step()
        listen(model, test_set)
"""


def test_a_method_whose_own_code_switches_self_to_eval_leaves_no_mode_to_the_loop(tmp_path):
    make(tmp_path, {"pkg/vocoder.py": VOCODER, "pkg/listen.py": GENERATE_LOOP, "pkg/train.py": TRAIN_THEN_LISTEN})
    assert lint_102(tmp_path / "pkg/listen.py") == []


def test_a_method_of_that_name_without_its_own_eval_switch_keeps_the_report(tmp_path):
    vocoder = VOCODER.replace("self.eval()", "print(mels.shape)")
    assert "eval" not in vocoder
    make(tmp_path, {"pkg/vocoder.py": vocoder, "pkg/listen.py": GENERATE_LOOP, "pkg/train.py": TRAIN_THEN_LISTEN})
    assert [f[:3] for f in lint_102(tmp_path / "pkg/listen.py")] == [(2, 4, "GRD102")]


def test_one_class_of_the_project_defining_the_method_without_the_switch_keeps_the_report(tmp_path):
    other = VOCODER.replace("Vocoder", "Sampler").replace("self.eval()", "print(mels.shape)")
    make(tmp_path, {
        "pkg/vocoder.py": VOCODER, "pkg/sampler.py": other,
        "pkg/listen.py": GENERATE_LOOP, "pkg/train.py": TRAIN_THEN_LISTEN,
    })
    assert [f[:3] for f in lint_102(tmp_path / "pkg/listen.py")] == [(2, 4, "GRD102")]


@pytest.mark.parametrize("annotation, expected", [("Vocoder", []), ("Sampler", [(7, 4, "GRD102")])])
def test_a_parameter_annotated_with_a_class_asks_that_class_only(tmp_path, annotation, expected):
    other = VOCODER.replace("Vocoder", "Sampler").replace("self.eval()", "print(mels.shape)")
    loop = "from pkg.sampler import Sampler\nfrom pkg.vocoder import Vocoder\n\n\n" + textwrap.dedent(
        GENERATE_LOOP
    ).replace("listen(model,", f"listen(model: {annotation},")
    make(tmp_path, {
        "pkg/vocoder.py": VOCODER, "pkg/sampler.py": other, "pkg/listen.py": loop, "pkg/train.py": TRAIN_THEN_LISTEN,
    })
    assert [f[:3] for f in lint_102(tmp_path / "pkg/listen.py")] == expected


def test_a_method_of_the_module_itself_that_switches_self_to_eval_counts_too():
    source = textwrap.dedent(VOCODER) + textwrap.dedent("""

        def evaluate(test_set):
            model = Vocoder()
            for mels in test_set:
                print(model.generate(mels).shape)
    """)
    assert [v for v in check(source) if v.code == "GRD102"] == []
    unswitched = [v for v in check(source.replace("self.eval()", "print(mels.shape)")) if v.code == "GRD102"]
    assert [(v.line, v.col) for v in unswitched] == [(22, 4)]


def test_summary_records_methods_switching_self_to_eval():
    summary = project.summarize(ast.parse(textwrap.dedent(VOCODER) + textwrap.dedent("""
        def helper(net):
            net.eval()
    """)))
    assert summary["v"] == {"Vocoder.generate"}


def test_summary_records_calls_handing_over_a_model_in_training_mode():
    summary = project.summarize(ast.parse(textwrap.dedent(TRAIN_SWITCHED) + textwrap.dedent("""
        def report(net, val_loader):
            net.train()
            evaluate(net, val_loader)
            net.eval()
    """)))
    assert summary["m"] == {"evaluate": [("evaluate", "fit", "", 0)]}


# --- a helper that hands its argument on as the removed volatile flag ------------

VOLATILE_HELPER = """
    import torch
    from torch.autograd import Variable


    def to_var(x, volatile=False):
        if torch.cuda.is_available():
            x = x.to("cuda")
        return Variable(x, volatile=volatile)
"""


def lint_003(path: Path) -> List[Tuple[int, int, str]]:
    return [f for f in lint(path) if f[2] == "GRD003"]


def test_a_helpers_volatile_flag_that_no_call_passes_is_silent(tmp_path):
    caller = "from pkg.utils import to_var\n\n\ndef load(x):\n    return to_var(x)\n"
    make(tmp_path, {"pkg/utils.py": VOLATILE_HELPER, "pkg/data.py": caller})
    assert lint_003(tmp_path / "pkg/utils.py") == []


@pytest.mark.parametrize("call", ["to_var(x, volatile=True)", "to_var(x, True)", "to_var(x, flag)", "to_var(*xs)"])
def test_a_helpers_volatile_flag_is_reported_when_a_call_elsewhere_may_pass_it(tmp_path, call):
    caller = f"from pkg.utils import to_var\n\n\ndef load(x, xs, flag):\n    return {call}\n"
    make(tmp_path, {"pkg/utils.py": VOLATILE_HELPER, "pkg/data.py": caller})
    assert lint_003(tmp_path / "pkg/utils.py") == [(8, 23, "GRD003")]


def test_a_literal_false_handed_to_a_variable_helper_is_silent(tmp_path):
    # the helper's calls in its own module: False (the default, silent) is not
    # reported, True is, and then the helper's own flag too
    calls = "\n\n    def load(x):\n        return to_var(x, volatile=False), to_var(x, volatile=True)\n"
    make(tmp_path, {"pkg/utils.py": VOLATILE_HELPER + calls.replace("volatile=True", "volatile=False")})
    assert lint_003(tmp_path / "pkg/utils.py") == []
    other = tmp_path / "true"
    other.mkdir()
    make(other, {"pkg/utils.py": VOLATILE_HELPER + calls})
    assert lint_003(other / "pkg/utils.py") == [(8, 23, "GRD003"), (12, 48, "GRD003")]


ATTACK_MODULE = """
    import torch


    def perturb(image, net):
        image = image.clone().requires_grad_(True)
        net(image).max().backward()
        return image + 0.01 * image.grad.sign()
"""

ATTACK_LOOP = """
    import torch

    import attacks


    def fooling_rate(net, test_images):
        net.eval()
        fooled = 0
        for image in test_images:
            adversarial = attacks.perturb(image, net)
            fooled += int(net(adversarial).argmax() != net(image).argmax())
        return fooled
"""


@pytest.mark.parametrize("backward, found", [
    ("net(image).max().backward()", []),  # the attack differentiates through the model: the loop needs grad
    ("net(image).max()", [(9, 4, "GRD101")]),
])
def test_a_loop_calling_a_function_of_an_imported_module_that_backpropagates_needs_grad(tmp_path, backward, found):
    attack = ATTACK_MODULE.replace("net(image).max().backward()", backward)
    attack = attack.replace("image.grad.sign()", "image.sign()") if backward == "net(image).max()" else attack
    make(tmp_path, {"attacks.py": attack, "evaluate.py": ATTACK_LOOP})
    assert [f for f in lint(tmp_path / "evaluate.py") if f[2] == "GRD101"] == found


RUN_EPOCH = """
    import torch


    def run_epoch(model, loader, mode):
        for x in loader:
            loss = model(x).pow(2).mean()
            if mode == "train":
                loss.backward()


    def evaluate(model, loader):
        with torch.no_grad():
            run_epoch(model, loader, "test")
"""


@pytest.mark.parametrize("caller, found", [
    ("run_epoch(model, loader, 'train')", []),  # the only call that takes the branch has grad on
    ("with torch.no_grad():\n        run_epoch(model, loader, 'train')", [(8, 12, "GRD005")]),
    ("torch.set_grad_enabled(False)\n    run_epoch(model, loader, 'train')", [(8, 12, "GRD005")]),
    # grad set back on in an ``if``: the mode outlives the block, unknown here
    ("torch.set_grad_enabled(False)\n    if tune:\n        torch.set_grad_enabled(True)\n"
     "    run_epoch(model, loader, 'train')", []),
])
def test_a_backward_step_behind_a_test_of_an_argument_is_judged_by_the_calls_that_take_it(tmp_path, caller, found):
    train = f"import torch\nfrom pkg.epochs import run_epoch\n\n\ndef fit(model, loader):\n    {caller}\n"
    make(tmp_path, {"pkg/epochs.py": RUN_EPOCH, "pkg/train.py": train})
    assert [f for f in lint(tmp_path / "pkg/epochs.py") if f[2] == "GRD005"] == found


HANDING_ON_HELPER = VOLATILE_HELPER + """

    def np_to_var(array, volatile=False):
        return to_var(torch.from_numpy(array), volatile=volatile)
"""


@pytest.mark.parametrize("call, found", [
    ("np_to_var(x)", []),  # no call passes the flag on its way to Variable
    ("np_to_var(x, volatile=True)", [(8, 23, "GRD003"), (12, 43, "GRD003")]),
])
def test_a_helpers_flag_handed_on_by_another_helper_is_as_live_as_its_callers_make_it(tmp_path, call, found):
    caller = f"from pkg.utils import np_to_var\n\n\ndef load(x):\n    return {call}\n"
    make(tmp_path, {"pkg/utils.py": HANDING_ON_HELPER, "pkg/data.py": caller})
    assert lint_003(tmp_path / "pkg/utils.py") == found


def test_a_helpers_volatile_flag_without_a_false_default_is_reported(tmp_path):
    make(tmp_path, {"pkg/utils.py": VOLATILE_HELPER.replace("volatile=False", "volatile")})
    assert lint_003(tmp_path / "pkg/utils.py") == [(8, 23, "GRD003")]


LEFTOVER_VOLATILE = """
    import torch
    from torch.autograd import Variable


    class Metrics(object):
        def accuracy(self, predictions, labels):
            return (predictions == labels).float().mean().item()

        def mse(self, predictions, labels):
            x = Variable(predictions, volatile=True)
            return ((x - labels) ** 2).mean()
"""


@pytest.mark.parametrize("use, found", [
    ("metrics.accuracy(a, b)", []),  # nothing calls mse: the flag never runs
    ("metrics.mse(a, b)", [(10, 34, "GRD003")]),
])
def test_a_volatile_flag_in_a_method_nothing_calls_is_silent(tmp_path, use, found):
    entry = (
        "import torch\nfrom metrics import Metrics\n\n"
        f"metrics = Metrics()\na, b = torch.ones(2), torch.ones(2)\nprint({use})\n"
    )
    unpackaged(tmp_path, {"metrics.py": LEFTOVER_VOLATILE, "main.py": entry})
    assert lint_003(tmp_path / "metrics.py") == found


def test_a_helpers_volatile_flag_outside_a_project_is_reported(tmp_path):
    make(tmp_path, {"pkg/utils.py": VOLATILE_HELPER})
    off = Settings(cross_module=False)
    source = (tmp_path / "pkg/utils.py").read_text(encoding="utf-8")
    found = check(source, off, filename=str(tmp_path / "pkg/utils.py"))
    assert [(v.line, v.col, v.code) for v in found if v.code == "GRD003"] == [(8, 23, "GRD003")]


TRAIN_AND_TEST_API = """
    import torch


    def train_model(model, loader, optimizer):
        model.train()
        for x, y in loader:
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()


    def test_model(model, loader):
        correct = 0
        with torch.no_grad():
            for x, y in loader:
                correct += (model(x).argmax(1) == y).sum().item()
        return correct
"""


def test_an_uncalled_test_function_beside_a_trainer_that_switches_its_model_to_training(tmp_path):
    make(tmp_path, {"pkg/models.py": TRAIN_AND_TEST_API})
    assert lint_102(tmp_path / "pkg/models.py") == [(
        15, 8, "GRD102",
        "evaluation loop runs `model` in training mode: `train_model()` in this module hands it over in training "
        "mode, and nothing calls `.eval()` before the loop; call `model.eval()` before the loop",
    )]


@pytest.mark.parametrize("files", [
    {"pkg/run.py": "from pkg.models import test_model\n\n\ndef main(m, data):\n    return test_model(m, data)\n"},
    {"pkg/models.py": TRAIN_AND_TEST_API.replace("def test_model", "def predict_model")},
    {"pkg/models.py": TRAIN_AND_TEST_API.replace("        model.train()\n", "")},
])
def test_an_uncalled_test_function_stays_silent_without_that_evidence(tmp_path, files):
    make(tmp_path, {"pkg/models.py": TRAIN_AND_TEST_API, **files})
    assert lint_102(tmp_path / "pkg/models.py") == []


def test_a_unit_test_calling_the_test_function_does_not_hide_that_evidence(tmp_path):
    unit_test = "from pkg.models import test_model\n\n\ndef test_it(m, data):\n    assert test_model(m, data) >= 0\n"
    make(tmp_path, {"pkg/models.py": TRAIN_AND_TEST_API, "tests/test_models.py": unit_test})
    assert [f[:3] for f in lint_102(tmp_path / "pkg/models.py")] == [(15, 8, "GRD102")]


# --- GRD004: a hand-written initialiser nobody in the project calls ----------------

INITIALISERS = """
    import math


    def variance_scaling_(tensor, scale=1.0):
        fan_in = tensor.size(1)
        tensor.normal_(0.0, math.sqrt(scale / fan_in))


    def lecun_normal_(tensor):
        variance_scaling_(tensor)
"""

INIT_CALLER = """
    import torch

    from pkg.initialisers import lecun_normal_


    def build():
        layer = torch.nn.Linear(4, 2)
        lecun_normal_(layer.weight)
        return layer
"""


def lint_004(path: Path) -> List[Tuple[int, int, str]]:
    source = path.read_text(encoding="utf-8")
    return [(v.line, v.col, v.code) for v in check(source, filename=str(path)) if v.code == "GRD004"]


def test_an_initialiser_no_module_of_the_project_calls_is_not_reported(tmp_path):
    make(tmp_path, {"pkg/initialisers.py": INITIALISERS, "pkg/other.py": "import torch\n"})
    assert lint_004(tmp_path / "pkg/initialisers.py") == []


def test_an_initialiser_another_module_calls_through_its_forwarder_is_reported(tmp_path):
    make(tmp_path, {"pkg/initialisers.py": INITIALISERS, "pkg/build.py": INIT_CALLER})
    assert lint_004(tmp_path / "pkg/initialisers.py") == [(6, 4, "GRD004")]


def test_an_initialiser_outside_any_project_is_reported_as_written_for_other_modules():
    assert [(v.line, v.col) for v in check(textwrap.dedent(INITIALISERS)) if v.code == "GRD004"] == [(7, 4)]


# --- a bare call of a function does not reach a method of the same name ------------

SAMPLER_CLASS = """
    import torch


    class Sampler:
        def __init__(self, decoder):
            self.decoder = decoder

        def generate(self, codes):
            frames = []
            for code in codes:
                frames.append(self.decoder(code))
            return frames
"""

SAMPLER_USER = """
    import torch


    def collect(sampler, batches):
        with torch.no_grad():
            return [sampler.generate(b) for b in batches]
"""

SCRIPT_WITH_A_GENERATE_FUNCTION = """
    from pkg.sample import generate


    def main(args):
        return generate(args)
"""


def test_a_bare_call_of_a_function_named_like_a_method_does_not_reach_it(tmp_path):
    make(tmp_path, {
        "pkg/sampler.py": SAMPLER_CLASS, "pkg/user.py": SAMPLER_USER,
        "pkg/sample.py": "def generate(args):\n    return args\n", "pkg/main.py": SCRIPT_WITH_A_GENERATE_FUNCTION,
    })
    assert lint(tmp_path / "pkg/sampler.py") == []


def test_a_call_of_the_method_with_grad_still_reaches_it(tmp_path):
    make(tmp_path, {
        "pkg/sampler.py": SAMPLER_CLASS, "pkg/user.py": SAMPLER_USER,
        "pkg/main.py": "def main(sampler, codes):\n    return sampler.generate(codes)\n",
    })
    assert [f[:3] for f in lint(tmp_path / "pkg/sampler.py")] == [(10, 8, "GRD101")]


# --- a model whose class, in another module, freezes it in __init__ -------------------

FROZEN_CLASS = """
    from torch import nn


    class Inception(nn.Module):
        def __init__(self, blocks, requires_grad=False):
            super().__init__()
            self.body = nn.Linear(8, 8)
            for param in self.parameters():
                param.requires_grad = requires_grad

        def forward(self, x):
            return self.body(x)
"""

FID = """
    from pkg.inception import Inception


    def activations(batches, model):
        model.eval()
        return [model(b).numpy() for b in batches] + [model(b).numpy() for b in batches]


    def score(batches):
        model = Inception([3])
        out = []
        for b in batches:
            out.append(model(b).numpy())
        return out, activations(batches, model)


    def main(batches):
        return score(batches)
"""


@pytest.mark.parametrize("construct, expected", [
    ("Inception([3])", []),
    ("Inception([3], requires_grad=True)", [(12, 4, "GRD101")]),
    ("Inception([3], True)", [(12, 4, "GRD101")]),
])
def test_a_class_of_another_module_that_freezes_itself_in_init_builds_no_graph(tmp_path, construct, expected):
    make(tmp_path, {"pkg/inception.py": FROZEN_CLASS, "pkg/fid.py": FID.replace("Inception([3])", construct)})
    assert [f for f in lint(tmp_path / "pkg/fid.py") if f[2] == "GRD101"] == expected


def test_summary_records_classes_that_freeze_themselves():
    summary = project.summarize(ast.parse(textwrap.dedent(FROZEN_CLASS) + textwrap.dedent("""
        class Frozen(nn.Module):
            def __init__(self):
                super().__init__()
                self.requires_grad_(False)


        class Free(nn.Module):
            def __init__(self):
                super().__init__()
                self.requires_grad_(True)
    """)))
    assert summary["z"] == {"Inception": ("requires_grad", 1), "Frozen": ("", -1)}


# --- a function a model's forward calls is part of that model -----------------

RENDERER = """
    import torch


    def render(models, points, chunk):
        def inference(model, xs):
            outputs = []
            for i in range(0, xs.shape[0], chunk):
                outputs.append(model(xs[i:i + chunk]))
            return torch.cat(outputs, 0)

        return {"color": inference(models[0], points)}
"""

SYSTEM = """
    import torch
    from torch import nn

    from pkg.rendering import render


    class System(nn.Module):
        def __init__(self):
            super().__init__()
            self.field = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Linear(16, 3))

        def forward(self, points):
            return render([self.field], points, 1024)["color"]
"""

PREVIEW = """
    from pkg.rendering import render


    def preview(models, points):
        return render(models, points, 4096)["color"].tolist()
"""


def test_a_loop_in_a_function_a_models_forward_calls_in_another_module_is_silent(tmp_path):
    make(tmp_path, {"pkg/rendering.py": RENDERER, "pkg/system.py": SYSTEM, "pkg/preview.py": PREVIEW})
    assert lint(tmp_path / "pkg/rendering.py") == []


def test_only_modules_that_define_a_forward_are_summarised_to_find_one_calling_the_function(tmp_path):
    make(tmp_path, {"pkg/rendering.py": RENDERER, "pkg/system.py": SYSTEM, "pkg/preview.py": PREVIEW})
    assert lint(tmp_path / "pkg/rendering.py") == []
    index = next(iter(project._INDEXES.values()))
    assert index.entries["pkg/preview.py"][3] == b""  # calls render, defines no forward: never parsed
    assert index.entries["pkg/system.py"][3] not in (b"", project._UNPARSABLE)


def test_the_same_loop_without_a_forward_among_its_callers_is_reported(tmp_path):
    make(tmp_path, {"pkg/rendering.py": RENDERER, "pkg/preview.py": PREVIEW})
    assert lint(tmp_path / "pkg/rendering.py") == [(7, 8, "GRD101")]


LEARNER = """
    import torch
    from torch import nn


    class Learner:
        def __init__(self):
            self.net = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.2), nn.Linear(8, 2))

        def scores(self, batches):
            self.net.eval()
            out = []
            for x in batches:
                out.append(self.net(x).softmax(1))
            self.net.train()
            return out
"""


def test_a_method_switching_to_eval_that_nothing_in_the_project_calls_is_silent(tmp_path):
    make(tmp_path, {"pkg/learner.py": LEARNER, "pkg/other.py": "import torch\n"})
    assert lint(tmp_path / "pkg/learner.py") == []
    # alone, the file cannot tell: it is reported as before
    assert lint(tmp_path / "pkg/learner.py", Settings(cross_module=False)) == [(12, 8, "GRD101")]


def test_a_method_switching_to_eval_called_with_grad_in_another_module_is_reported(tmp_path):
    caller = "from pkg.learner import Learner\n\n\ndef report(batches):\n    return Learner().scores(batches)\n"
    make(tmp_path, {"pkg/learner.py": LEARNER, "pkg/report.py": caller})
    assert lint(tmp_path / "pkg/learner.py") == [(12, 8, "GRD101")]


def test_a_dunder_method_switching_to_eval_is_called_by_python_not_by_name(tmp_path):
    # ``scorer(batches)`` calls ``__call__``; no code of the project spells the name
    learner = LEARNER.replace("def scores(self, batches):", "def __call__(self, batches):")
    user = "from pkg.learner import Learner\n\n\ndef report(batches):\n    return Learner()(batches)\n"
    make(tmp_path, {"pkg/learner.py": learner, "pkg/report.py": user})
    assert lint(tmp_path / "pkg/learner.py") == [(12, 8, "GRD101")]


def test_a_dunder_method_of_a_class_nothing_in_the_project_uses_is_silent(tmp_path):
    learner = LEARNER.replace("def scores(self, batches):", "def __call__(self, batches):")
    learner_used = learner + "\n\n    def run(batches):\n        return Learner()(batches)\n"
    (tmp_path / "unused").mkdir()
    (tmp_path / "used").mkdir()
    make(tmp_path / "unused", {"pkg/learner.py": learner, "pkg/other.py": "import torch\n"})
    make(tmp_path / "used", {"pkg/learner.py": learner_used, "pkg/other.py": "import torch\n"})
    assert lint(tmp_path / "unused/pkg/learner.py") == []
    assert lint(tmp_path / "used/pkg/learner.py") == [(12, 8, "GRD101")]


# --- imports inside functions -------------------------------------------------

NETS = """
    import torch
    from torch import nn


    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def load_from(self, weights):
            self.fc.weight.copy_(weights["w"])


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList([Block(), Block()])

        def load_from(self, weights):
            with torch.no_grad():
                for block in self.blocks:
                    block.load_from(weights)
"""

FACTORY = """
    def build(weights=None):
        from .nets import Net as Model
        net = Model()
        if weights is not None:
            net.load_from(weights)
        return net
"""


def test_a_class_imported_inside_the_calling_function_settles_which_method_runs(tmp_path):
    # ``net.load_from(w)`` runs ``Net.load_from`` (under no_grad it loads the
    # blocks), not the block's own ``load_from`` with grad
    make(tmp_path, {"pkg/nets.py": NETS, "pkg/factory.py": FACTORY})
    assert lint(tmp_path / "pkg/nets.py") == []


def test_a_name_imported_differently_in_two_functions_stays_unknown(tmp_path):
    other = FACTORY.replace("build(", "build_other(").replace("from .nets import Net", "from .other import Net")
    make(tmp_path, {"pkg/nets.py": NETS, "pkg/factory.py": FACTORY + other, "pkg/other.py": "Net = None\\n"})
    assert lint(tmp_path / "pkg/nets.py") == [(11, 8, "GRD004")]


# --- which method a call runs: the receiver's class, the arguments, re-exports ---

WINDOWED_INFERER = """
    import torch


    class Inferer:
        def __init__(self, windows):
            self.windows = windows

        def run(self, model, image):
            return self._infer_windows(model, image)

        def _infer_windows(self, model, image):
            outputs = []
            for window in self.windows:
                outputs.append(model(image[window]))
            return outputs
"""

AGENT_WITH_INFERER = """
    import torch

    from .inferer import Inferer


    class Agent:
        def __init__(self, net, windows):
            self.net = net
            self.inferer = Inferer(windows)

        def validate(self, images):
            self.net.eval()
            with torch.no_grad():
                return [self.inferer.run(self.net, image) for image in images]

        def run(self):
            return self.validate([])
"""

AGENT_MAIN = """
    from .agent import Agent


    def main(net):
        agent = make_agent(net)
        agent.run()


    def make_agent(net):
        return Agent(net, [slice(0, 4)])


    if __name__ == "__main__":
        main(None)
"""


def test_a_method_called_on_an_attribute_built_from_a_class_is_that_class_s(tmp_path):
    # ``self.inferer = Inferer(...)``: ``self.inferer.run(...)`` under no_grad is
    # Inferer.run's only caller; ``agent.run()`` (Agent's, and no arguments for
    # Inferer.run's two) is not one
    files = {"pkg/inferer.py": WINDOWED_INFERER, "pkg/agent.py": AGENT_WITH_INFERER, "pkg/main.py": AGENT_MAIN}
    make(tmp_path / "a", files)
    assert lint(tmp_path / "a/pkg/inferer.py") == []
    # a call with grad on and the arguments it needs is a caller again
    make(tmp_path / "b", {**files, "pkg/main.py": AGENT_MAIN.replace("agent.run()", "agent.run(net, None)")})
    assert lint(tmp_path / "b/pkg/inferer.py") == [(13, 8, "GRD101")]


def test_a_method_of_a_class_imported_from_a_missing_module_is_not_this_one(tmp_path):
    # ``self.remote = Remote(...)`` from a module the project lacks:
    # ``self.remote.run(...)`` is that class's ``run``, not Inferer.run
    remote = (
        AGENT_WITH_INFERER.replace(
            "from .inferer import Inferer", "from .inferer import Inferer\n    from .remote import Remote"
        )
        .replace("self.net = net\n", "self.net = net\n            self.remote = Remote(1)\n")
        .replace("return self.validate([])", "return [self.remote.run(self.net, image) for image in []]")
    )
    files = {"pkg/inferer.py": WINDOWED_INFERER, "pkg/agent.py": remote, "pkg/main.py": AGENT_MAIN}
    make(tmp_path / "a", files)
    assert lint(tmp_path / "a/pkg/inferer.py") == []
    # the same call on an object of unknown class may be Inferer.run
    unknown = remote.replace("self.remote.run(", "self.other.run(")
    make(tmp_path / "b", {**files, "pkg/agent.py": unknown})
    assert lint(tmp_path / "b/pkg/inferer.py") == [(13, 8, "GRD101")]


def test_a_function_a_package_re_exports_is_followed_to_its_module(tmp_path):
    # ``from pkg import evaluate``, where ``pkg/__init__.py`` does ``from .utils import *``
    utils = """
        import torch

        model = torch.nn.Linear(4, 4)


        def evaluate(loader):
            total = 0
            for x in loader:
                total += float(model(x).sum())
            return total
    """
    caller = """
        import torch

        from pkg import evaluate


        def main(loader):
            with torch.no_grad():
                print(evaluate(loader))
    """
    files = {"pkg/__init__.py": "from .utils import *\n", "pkg/utils.py": utils, "scripts/main.py": caller}
    make(tmp_path / "a", files)
    assert lint(tmp_path / "a/pkg/utils.py") == []
    make(tmp_path / "b", {**files, "scripts/main.py": "from pkg import evaluate\n\nprint(evaluate([]))\n"})
    assert lint(tmp_path / "b/pkg/utils.py") == [(8, 4, "GRD101")]


LEFTOVER_METHOD = """
    import torch


    class Tester(object):
        def __init__(self, model):
            self.model = model

        def test(self, loader):
            with torch.no_grad():
                return [self.single_scale(x) for x in loader]

        def single_scale(self, x):
            return self.model(x).argmax(1)

        def multi_scale_test(self, test_loader):
            outputs = []
            for x in test_loader:
                outputs.append(self.model(x).argmax(1))
            return outputs
"""

TESTER_ENTRY = """
    import torch

    from tester import Tester


    def main():
        model = torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.Dropout(0.1))
        model.eval()
        Tester(model).test([])


    if __name__ == "__main__":
        main()
"""


@pytest.mark.parametrize("change, found", [
    ("", []),  # nothing names multi_scale_test: a leftover
    # another module calls it
    ("Tester(model).test([])\n        Tester(model).multi_scale_test([])", [(17, 8, "GRD101")]),
])
def test_a_method_nothing_names_in_an_unpackaged_project_never_runs(tmp_path, change, found):
    entry = TESTER_ENTRY.replace("Tester(model).test([])", change) if change else TESTER_ENTRY
    unpackaged(tmp_path, {"tester.py": LEFTOVER_METHOD, "main.py": entry})
    assert lint(tmp_path / "tester.py") == found


@pytest.mark.parametrize("line", [
    "MODES = ['multi_scale_test']",  # a string of its module may dispatch to it
    "RUN = getattr(Tester, input())",  # its module looks names up at run time
])
def test_a_method_its_module_may_reach_by_name_is_reported(tmp_path, line):
    source = LEFTOVER_METHOD + "\n\n    " + line + "\n"
    unpackaged(tmp_path, {"tester.py": source, "main.py": TESTER_ENTRY})
    assert lint(tmp_path / "tester.py") == [(17, 8, "GRD101")]


@pytest.mark.parametrize("line", [
    "KIND = getattr(Tester, '__module__', None)",  # looks up one name, spelled here
    "KIND = getattr(Tester, 'test')",
])
def test_a_method_its_module_looks_up_another_name_of_never_runs(tmp_path, line):
    source = LEFTOVER_METHOD + "\n\n    " + line + "\n"
    unpackaged(tmp_path, {"tester.py": source, "main.py": TESTER_ENTRY})
    assert lint(tmp_path / "tester.py") == []


def test_a_method_of_a_class_with_a_base_may_be_called_by_it(tmp_path):
    # a base of another package may call its subclasses' methods as hooks
    source = LEFTOVER_METHOD.replace("class Tester(object):", "class Tester(Base):")
    source = source.replace("import torch\n", "import torch\n    from framework import Base\n")
    unpackaged(tmp_path, {"tester.py": source, "main.py": TESTER_ENTRY})
    assert lint(tmp_path / "tester.py") == [(18, 8, "GRD101")]


LEFTOVER_CLASS = """
    import torch


    class Tester(object):
        def __init__(self, model):
            self.model = model

        def test(self, loader):
            with torch.no_grad():
                return [self.model(x).argmax(1) for x in loader]


    class OldTester(object):
        def __init__(self, model):
            super(OldTester, self).__init__()
            self.model = model

        def test(self, loader):
            outputs = []
            for x in loader:
                outputs.append(self.model(x).argmax(1))
            return outputs
"""


@pytest.mark.parametrize("change, found", [
    ("", []),  # nothing names OldTester: a leftover beside the Tester the scripts use
    ("Tester(model).test([])\n        OldTester(model).test([])", [(20, 8, "GRD101")]),  # another module builds it
])
def test_the_methods_of_a_class_nothing_names_in_an_unpackaged_project_never_run(tmp_path, change, found):
    entry = TESTER_ENTRY.replace("Tester(model).test([])", change) if change else TESTER_ENTRY
    entry = entry.replace("from tester import Tester", "from tester import OldTester, Tester") if change else entry
    unpackaged(tmp_path, {"tester.py": LEFTOVER_CLASS, "main.py": entry})
    assert lint(tmp_path / "tester.py") == found


@pytest.mark.parametrize("line", [
    "KINDS = {'old': OldTester}",  # its module names it outside its body
    "KIND = 'OldTester'",  # a string of its module may look it up
])
def test_a_class_its_module_names_may_run(tmp_path, line):
    unpackaged(tmp_path, {"tester.py": LEFTOVER_CLASS + "\n\n    " + line + "\n", "main.py": TESTER_ENTRY})
    assert lint(tmp_path / "tester.py") == [(20, 8, "GRD101")]


def test_a_class_nothing_names_in_a_package_may_be_used_by_its_users(tmp_path):
    make(tmp_path, {"tester.py": LEFTOVER_CLASS, "main.py": TESTER_ENTRY})
    assert lint(tmp_path / "tester.py") == [(20, 8, "GRD101")]


def test_a_leftover_method_of_a_package_is_reported(tmp_path):
    make(tmp_path, {"tester.py": LEFTOVER_METHOD, "main.py": TESTER_ENTRY})  # setup.py: users may call it
    assert lint(tmp_path / "tester.py") == [(17, 8, "GRD101")]


def test_text_words_are_the_ascii_identifiers_of_the_text():
    source = "x3 = 3e5 + model_2(ä_b)  # 10x, __init__, 42\nλ = 'val_loader'\n".encode("utf-8")
    found = project.text_words(source)
    assert found.startswith(" ") and found.endswith(" ")
    assert sorted(found.split(" ")[1:-1]) == ["__init__", "_b", "e5", "model_2", "val_loader", "x", "x3"]
    assert project.text_words(b"") == "  "


META_BASE = """
    import torch


    class MetaLearner(object):
        def fit(self, tasks, model, optimizer):
            for x, y in tasks:
                optimizer.zero_grad()
                loss_v = self.validation_loss(x, y, model)
                loss_v.backward()
                optimizer.step()
"""

META_LEARNER = """
    import torch
    import torch.nn.functional as F
    from base import MetaLearner


    class Ensemble(MetaLearner):
        def prediction(self, x, model):
            logits = []
            for _ in range(3):
                logits.append(model(x))
            return logits

        def validation_loss(self, x, y, model):
            logits = self.prediction(x, model)
            loss = 0
            for logit in logits:
                loss = loss + F.cross_entropy(logit, y)
            return loss / len(logits)
"""


@pytest.mark.parametrize("backward, found", [
    ("loss_v.backward()", []),  # a base class in another module trains through the prediction loop
    ("print(loss_v.item())", [(9, 8, "GRD101")]),
])
def test_a_prediction_loop_whose_loss_a_base_class_backpropagates_is_training(tmp_path, backward, found):
    make(tmp_path, {"base.py": META_BASE.replace("loss_v.backward()", backward), "maml.py": META_LEARNER})
    assert lint(tmp_path / "maml.py") == found


ADAPTING_MODEL = """
    import torch


    class Field(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(3, 1)

        def forward(self, points):
            return self.layer(points)

        def gradient(self, points):
            points.requires_grad_(True)
            value = self.layer(points)
            return torch.autograd.grad(value.sum(), points, create_graph=True)[0]


    class Learner(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.field = Field()

        def forward(self, points):
            return self.shade(points)

        def shade(self, points):
            return self.field.gradient(points).norm(dim=-1)
"""

ADAPTING_EVAL = """
    import torch
    from models import Learner


    def evaluate(model, loader):
        model.eval()
        accuracy = 0
        for x, y in loader:
            accuracy += (model(x).argmax(1) == y).float().mean().item()
        return accuracy


    def predict_all(loader):
        model = Learner()
        model.eval()
        out = []
        for x in loader:
            out.append(model(x).argmax(1))
        return out
"""


@pytest.mark.parametrize("asks, found", [
    # a model class of the project asks autograd for gradients: no_grad would break it, whether the
    # model is handed over (its class unknown: any project model may be it) or built from that class
    (True, []),
    (False, [(8, 4, "GRD101"), (17, 4, "GRD101")]),
])
def test_a_model_class_that_asks_autograd_for_gradients_needs_grad_in_evaluation(tmp_path, asks, found):
    model = ADAPTING_MODEL if asks else ADAPTING_MODEL.replace(
        "torch.autograd.grad(value.sum(), points, create_graph=True)", "(value, )")
    make(tmp_path, {"models.py": model, "evaluation.py": ADAPTING_EVAL})
    assert lint(tmp_path / "evaluation.py") == found


INNER_OPTIMIZATION = """
    import torch
    from torch import nn


    class TransportEncoder(nn.Module):
        def __init__(self, latent_dim, steps):
            super().__init__()
            self.latent_dim = latent_dim
            self.steps = steps

        def forward(self, x):
            y = torch.randn(x.shape[0], self.latent_dim)
            y.requires_grad_()
            optimizer = torch.optim.Adam([y], lr=0.1)
            for _ in range(self.steps):
                optimizer.zero_grad()
                loss = (x.mean(1, keepdim=True) - y).pow(2).sum()
                {backward}
                optimizer.step()
            return y.detach()
"""

INNER_OPTIMIZATION_EVAL = """
    import torch
    from encoder import TransportEncoder


    class AutoEncoder(torch.nn.Module):
        def __init__(self, latent_dim):
            super().__init__()
            self.encoder = TransportEncoder(latent_dim, 10)
            self.decoder = torch.nn.Linear(latent_dim, 4)

        def forward(self, x):
            return self.decoder(self.encoder(x))


    def evaluate_reconstruction(model: AutoEncoder, loader):
        model.eval()
        total = 0.0
        for x in loader:
            total += (model(x) - x).pow(2).sum().item()
        return total


    print(evaluate_reconstruction(AutoEncoder(8), [torch.randn(2, 4)]))
"""


@pytest.mark.parametrize("backward, found", [
    # the encoder's forward optimizes its own latent code: no_grad would make it raise,
    # though its module never spells ``grad`` itself
    ("loss.backward()", []),
    # a forward that only computes the loss needs no grad
    ("loss = loss.detach()", [(18, 4, "GRD101")]),
])
def test_a_model_class_optimizing_in_its_forward_needs_grad_in_evaluation(tmp_path, backward, found):
    make(tmp_path, {"encoder.py": INNER_OPTIMIZATION.format(backward=backward), "evaluate.py": INNER_OPTIMIZATION_EVAL})
    assert lint(tmp_path / "evaluate.py") == found


def test_only_modules_that_may_hold_a_class_asking_autograd_are_read_for_one(tmp_path):
    make(tmp_path, {"models.py": ADAPTING_MODEL, "evaluation.py": ADAPTING_EVAL,
                    "common.py": "def zero(model):\n    for p in model.parameters():\n        p.grad = None\n"})
    path = tmp_path / "evaluation.py"
    source = path.read_text(encoding="utf-8")
    found = project.open_project(str(path), "", (), ast.parse(source), source)
    assert found.names_class_asking_autograd()
    assert found.index.entries["common.py"][3] == b""  # uses the name ``grad``, defines no forward: never parsed
    assert found.index.entries["models.py"][3] not in (b"", project._UNPARSABLE)


ABSTRACT_BASE = """
    from abc import ABC, abstractmethod

    import torch


    class Learning(ABC):
        def __init__(self, model, optimizer, loader):
            self.model, self.optimizer, self.loader = model, optimizer, loader

        @abstractmethod
        def load_data(self):
            ...

        def train(self, epochs):
            total_loss = 0.0
            for _ in range(epochs):
                for x, y in self.loader:
                    self.optimizer.zero_grad()
                    loss = torch.nn.functional.cross_entropy(self.model(x), y)
                    loss.backward()
                    self.optimizer.step()
                    total_loss += loss
            return total_loss
"""

OVERRIDING_TASK = """
    import torch

    from models import *


    class Task(Learning):
        def load_data(self):
            return []

        def train(self, epochs):
            for _ in range(epochs):
                for x, y in self.loader:
                    self.optimizer.zero_grad()
                    torch.nn.functional.cross_entropy(self.model(x), y).backward()
                    self.optimizer.step()


    if __name__ == "__main__":
        model = torch.nn.Linear(4, 2)
        Task(model, torch.optim.SGD(model.parameters(), lr=0.1), []).train(1)
"""


@pytest.mark.parametrize("change, found", [
    ("", []),  # every subclass replaces train(): the base's never runs
    ("super().train(epochs)", [(22, 16, "GRD104")]),  # a subclass runs it
    ("Learning(None, None, []).train(1)", [(22, 16, "GRD104")]),  # the base itself is built
])
def test_a_method_every_subclass_of_an_abstract_base_replaces_never_runs(tmp_path, change, found):
    # the subclass reaches the base through two ``*`` imports (task -> models -> utils.base)
    task = OVERRIDING_TASK
    if change:
        task = task.replace("                    self.optimizer.step()\n",
                            "                    self.optimizer.step()\n            " + change + "\n", 1)
    unpackaged(tmp_path, {
        "utils/base.py": ABSTRACT_BASE,
        "models.py": "from utils.base import *\n",
        "task.py": task,
    })
    assert lint(tmp_path / "utils" / "base.py") == found


def test_a_method_of_a_plain_base_class_every_subclass_replaces_is_still_reported(tmp_path):
    # without ``ABC`` the base may well be built somewhere nothing shows (a registry, a config)
    unpackaged(tmp_path, {
        "utils/base.py": ABSTRACT_BASE.replace("(ABC)", "").replace("        @abstractmethod\n", ""),
        "models.py": "from utils.base import *\n",
        "task.py": OVERRIDING_TASK,
    })
    assert lint(tmp_path / "utils" / "base.py") == [(21, 16, "GRD104")]  # one line fewer


OWN_MODULE_BASE = """
    class Module:
        def __init__(self):
            self._parameters = []

        def parameters(self):
            return [getattr(self, name) for name in self._parameters]
"""

OWN_LAYER = """
    import math

    import torch

    from base import Module


    class Linear(Module):
        def __init__(self, n_in, n_out):
            super().__init__()
            self.weight = torch.zeros(n_out, n_in)
            self._parameters = ["weight"]
            self.reset()

        def reset(self):
            bound = 1 / math.sqrt(self.weight.shape[1])
            for p in self.parameters():
                p.uniform_(-bound, bound)
"""


def test_parameters_of_a_class_whose_project_base_defines_them(tmp_path):
    # a homework's own Module: parameters() gives the plain tensors it keeps
    make(tmp_path, {"base.py": OWN_MODULE_BASE, "layers.py": OWN_LAYER})
    assert lint(tmp_path / "layers.py") == []


def test_parameters_of_a_class_whose_project_base_is_an_nn_module(tmp_path):
    base = "import torch\n\n\nclass Module(torch.nn.Module):\n    pass\n"
    layer = OWN_LAYER.replace("torch.zeros(n_out, n_in)", "torch.nn.Parameter(torch.zeros(n_out, n_in))")
    layer = layer.replace('            self._parameters = ["weight"]\n', "")
    make(tmp_path, {"base.py": base, "layers.py": layer})
    assert lint(tmp_path / "layers.py") == [(17, 12, "GRD004")]


FEATURE_HELPER = """
    import torch


    def extract_features(model, points, device=None):
        batch = torch.as_tensor(points, dtype=torch.float32)
        return model(batch).detach()
"""

FEATURE_SCRIPT = """
    import torch

    from util import extract_features


    def export(model, clouds):
        model.eval()
        features = []
        for points in clouds:
            features.append(extract_features(model, points).numpy())
        return features


    if __name__ == "__main__":
        export(torch.nn.Linear(3, 8), [[[0.0, 1.0, 2.0]]])
"""


@pytest.mark.parametrize("helper, found", [
    (FEATURE_HELPER, [(9, 4, "GRD101")]),
    # the helper switches grad off itself
    (FEATURE_HELPER.replace("        return model(batch).detach()",
                            "        with torch.no_grad():\n            return model(batch)"), []),
    (FEATURE_HELPER.replace("def extract_features", "@torch.no_grad()\n    def extract_features"), []),
    # it runs the model in a loop of its own: reported there, not at every caller
    (FEATURE_HELPER.replace("        return model(batch).detach()",
                            "        return [model(row).detach() for row in batch]"), []),
    # it trains the model it is handed: a training step, not evaluation
    (FEATURE_HELPER.replace("        return model(batch).detach()",
                            "        model(batch).sum().backward()"), []),
    # a saliency map: it differentiates the model's output by its input, which needs grad
    (FEATURE_HELPER.replace("        return model(batch).detach()",
                            "        batch.requires_grad_(True)\n"
                            "        return torch.autograd.grad(model(batch).sum(), batch)[0]"), []),
])
def test_a_function_of_another_module_that_runs_the_model_it_is_handed(tmp_path, helper, found):
    make(tmp_path, {"util.py": helper, "export.py": FEATURE_SCRIPT})
    assert lint(tmp_path / "export.py") == found


def test_a_function_of_another_module_that_runs_the_model_names_it_in_the_message(tmp_path):
    make(tmp_path, {"util.py": FEATURE_HELPER, "export.py": FEATURE_SCRIPT})
    found = check((tmp_path / "export.py").read_text(), Settings(), rules=[r for r in RULES if r.default_on],
                  filename=str(tmp_path / "export.py"))
    assert [v.message for v in found] == [
        "evaluation loop runs `model` (through `extract_features()`) with grad enabled, so every batch builds an "
        "autograd graph; wrap it in `with torch.no_grad():`"
    ]


FORCES_UTILS = """
    import torch


    def compute_forces(energy, positions):
        return -torch.autograd.grad(energy.sum(), positions, create_graph=True)[0]


    def get_outputs(energy, positions, compute_force=True):
        return compute_forces(energy, positions) if compute_force else None
"""

FORCES_MODEL = """
    import torch

    from utils import get_outputs


    class EnergyModel(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.mlp = torch.nn.Linear(3, 1)

        def forward(self, positions):
            positions.requires_grad_(True)
            energy = self.mlp(positions).sum()
            return energy, get_outputs(energy, positions)
"""

FORCES_VALIDATION = """
    def evaluate(model, val_loader):
        errors = []
        for positions, forces in val_loader:
            _, predicted = model(positions)
            errors.append((predicted - forces).abs().mean().item())
        return errors
"""


@pytest.mark.parametrize("utils, found", [
    (FORCES_UTILS, []),  # the model's forward asks autograd two calls away: no_grad would break it
    (FORCES_UTILS.replace("torch.autograd.grad(", "torch.func_grad("), [(3, 4, "GRD101")]),
])
def test_a_project_whose_model_forward_asks_autograd_through_helpers(tmp_path, utils, found):
    make(tmp_path, {"utils.py": utils, "model.py": FORCES_MODEL, "validate.py": FORCES_VALIDATION,
                    "main.py": "import torch\nfrom validate import evaluate\n\nevaluate(torch.nn.Linear(3, 3), [])\n"})
    assert lint(tmp_path / "validate.py") == found


@pytest.mark.parametrize("where, found", [
    ("potentials/validate.py", []),  # the same experiment as the model
    ("recommender/validate.py", [(3, 4, "GRD101")]),  # another experiment of the repository
])
def test_a_forward_asking_autograd_counts_in_its_own_top_level_directory(tmp_path, where, found):
    make(tmp_path, {"potentials/utils.py": FORCES_UTILS,
                    "potentials/model.py": FORCES_MODEL.replace("from utils import", "from potentials.utils import"),
                    where: FORCES_VALIDATION,
                    "main.py": f"import torch\nfrom {where[:-3].replace('/', '.')} import evaluate\n\n"
                               "evaluate(torch.nn.Linear(3, 3), [])\n"})
    assert lint(tmp_path / where) == found


HOOKED_ATTENTION = """
    import torch


    class Attention(torch.nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.qk = torch.nn.Linear(dim, dim)
            self.gradients = None

        def save_gradients(self, grad):
            self.gradients = grad

        def forward(self, x):
            weights = self.qk(x).softmax(-1)
            weights.register_hook(self.save_gradients)
            return weights @ x
"""

LOCAL_FEATURES = """
    import torch


    class Features(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.ReLU())

        def forward(self, x):
            return self.body(x)


    model = Features()


    def evaluate(loader):
        rows = []
        for x in loader:
            rows.append(model(x).tolist())
        return rows
"""


@pytest.mark.parametrize("attention, found", [
    (HOOKED_ATTENTION, []),  # a forward that registers a gradient hook raises under no_grad
    (HOOKED_ATTENTION.replace("weights.register_hook(self.save_gradients)", "self.save_gradients(weights)"),
     [(3, 4, "GRD101")]),
])
def test_a_project_whose_model_forward_registers_a_gradient_hook(tmp_path, attention, found):
    make(tmp_path, {"attention.py": attention, "validate.py": FORCES_VALIDATION,
                    "main.py": "import torch\nfrom validate import evaluate\n\nevaluate(torch.nn.Linear(3, 3), [])\n"})
    assert lint(tmp_path / "validate.py") == found


def test_a_model_of_a_class_of_the_module_that_asks_nothing_is_judged_by_that_class(tmp_path):
    # the hooked attention elsewhere in the project is not this script's model
    make(tmp_path, {"attention.py": HOOKED_ATTENTION, "features.py": LOCAL_FEATURES,
                    "main.py": "from features import evaluate\n\nprint(evaluate([]))\n"})
    assert lint(tmp_path / "features.py") == [(18, 4, "GRD101")]


VOLATILE_VALIDATION = """
    import torch
    from torch.autograd import Variable


    def validate(model, loader):
        correct = 0
        for images, labels in loader:
            output = model(Variable(images, volatile=True))
            correct += (output.data.max(1)[1] == labels).sum().item()
        return correct
"""


@pytest.mark.parametrize("files, found", [
    ({"README.md": "# Requirements\n- Python 2.7\n- PyTorch 0.3.1\n- torchvision 0.2.0\n"}, []),
    ({"requirements.txt": "numpy\ntorch==0.2.0\n"}, []),
    ({"README.md": "Needs pytorch 0.3.1 or pytorch 1.0.\n"}, [(7, 4, "GRD101")]),  # a later version too
    ({"README.md": "- torchvision 0.3.0\n"}, [(7, 4, "GRD101")]),  # names no torch version
    ({"README.md": " - [pytorch (0.3.1) (with CUDA)](https://pytorch.org/)\n"}, []),  # the version in brackets
    ({"README.md": "* [PyTorch](http://pytorch.org/) 0.3\n"}, []),  # the version after a link
    ({"README.md": "* **PyTorch** 0.3\n"}, []),
    ({"README.md": "$ neptune send main.py --environment pytorch-0.2.0-gpu-py3\n"}, []),  # an environment's name
    ({"README.md": "- pytorch-lightning 0.2.0\n"}, [(7, 4, "GRD101")]),  # another package's version
    ({"README.md": "* [PyTorch](http://pytorch.org/) 1.0\n"}, [(7, 4, "GRD101")]),
    ({"README.md": "- pytorch>=0.3.1\n"}, [(7, 4, "GRD101")]),  # a lower bound: later releases too
    ({"README.md": "* PyTorch 0.3+\n"}, [(7, 4, "GRD101")]),
    ({"README.md": "* pytorch 0.2.0+5585c26\n"}, []),  # a build of 0.2.0, no lower bound
    ({"setup_env.sh": "pip install http://download.pytorch.org/whl/cu90/torch-0.3.1-cp36-cp36m-linux_x86_64.whl\n"},
     []),  # a set-up script installs 0.3.1
    ({"Dockerfile": "RUN pip install torch==0.3.1\n"}, []),
    ({"train.sh": "python train.py --preprocessing_function torch\n"}, [(7, 4, "GRD101")]),
    ({"README.md": "Tested on PyTorch 0.3.1 or later.\n"}, [(7, 4, "GRD101")]),
    ({"README.md": "Tested on PyTorch 0.3.1 or Python 3.6 later.\n"}, []),
    ({"README.md": "- Pytorch 0.3.1\n- (2018/05/15) PyTorch0.4 is supported now!\n"}, [(7, 4, "GRD101")]),
    ({"README.md": "I'm using:\n\n-Python 3.6\n\n-Pytorch 0.3.1\n"}, []),  # a list item with no space
    ({"README.md": "-Pytorch 0.3.1\n"}, []),
    ({"README.md": "Built with fast-pytorch 0.3.1\n"}, [(7, 4, "GRD101")]),  # another package's name
    ({"README.md": "* pytorch 0.20\n"}, []),  # no 0.20 was released: 0.2.0 without its dot
    ({"Readme.md": "Migrated to Pytorch 0.2.0\n"}, []),  # a README whatever its case
    ({"categorical.yml": "name: rl\ndependencies:\n  - pytorch=0.1.12\n"}, []),  # a conda environment by any name
    ({".travis.yml": "install: pip install torch==0.3.1\n"}, [(7, 4, "GRD101")]),  # CI settings, no environment
    ({"README.md": "* pytorch 0.4.1\n"}, [(7, 4, "GRD101")]),
    ({}, [(7, 4, "GRD101")]),
])
def test_volatile_inputs_guard_a_loop_only_in_a_project_pinned_before_torch_0_4(tmp_path, files, found):
    make(tmp_path, {**files, "validate.py": VOLATILE_VALIDATION})
    assert [f for f in lint(tmp_path / "validate.py") if f[2] == "GRD101"] == found


@pytest.mark.parametrize("files, found", [
    ({"README.md": "| Name | Version |\n| --- | --- |\n| pytorch | 0.3.1 |\n"}, []),
    ({"requirements.txt": "numpy=1.13.1=py36_0\npytorch=0.2.0=py36h53baedd_4cu80\n"}, []),
    ({"README.md": "Needs pytorch 0.3.1 or pytorch 1.0.\n"}, [(8, 40)]),  # a later version too
    ({"README.md": "| pytorch | 1.4 |\n"}, [(8, 40)]),
    ({}, [(8, 40)]),
])
def test_the_volatile_flag_is_reported_only_outside_a_project_pinned_before_torch_0_4(tmp_path, files, found):
    make(tmp_path, {**files, "validate.py": VOLATILE_VALIDATION})
    assert [f[:2] for f in lint(tmp_path / "validate.py") if f[2] == "GRD003"] == found


VOLATILE_PREDICTION = """
    import torch
    from torch.autograd import Variable


    def predict(model, images):
        scores = model(Variable(images, volatile=True))
        return scores.data.max(1)[1]
"""


@pytest.mark.parametrize("files, found", [
    ({}, []),  # calls no API PyTorch 0.4 added: may be code for 0.3, where the flag worked
    ({"README.md": "- torch==1.5.1\n"}, [(6, 36)]),
    ({"README.md": "- torch>=1.0\n"}, [(6, 36)]),  # 1.0 and later
    # a lower bound before 0.4 admits 0.4 and later too: code that runs on them, where the flag does nothing
    ({"README.md": "- torch>=0.2.0\n"}, [(6, 36)]),
    ({"README.md": "- PyTorch 0.3.1\n"}, []),
])
def test_a_project_that_names_only_releases_from_0_4_on_runs_on_one(tmp_path, files, found):
    make(tmp_path, {**files, "predict.py": VOLATILE_PREDICTION})
    assert [f[:2] for f in lint(tmp_path / "predict.py") if f[2] == "GRD003"] == found


NET_WITH_EMBEDDING = """
    import torch.nn as nn


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(10, 4)
"""

NUMPY_LAYERS = """
    import numpy as np


    class LinearModule(object):
        def __init__(self, n_in, n_out):
            self.params = {"weight": np.random.randn(n_in, n_out)}

        def forward(self, x):
            return x @ self.params["weight"]
"""

NUMPY_NET = """
    from layers import *


    class MLP(object):
        def __init__(self, n_in, n_out):
            self.layers = [LinearModule(n_in, n_out)]

        def forward(self, x):
            for layer in self.layers:
                x = layer.forward(x)
            return x
"""

NUMPY_NET_VALIDATION = """
    import torch

    from numpy_net import MLP


    def main(loader):
        torch.manual_seed(0)
        model = MLP(4, 2)
        hits = 0
        for x, y in loader:
            scores = model.forward(x)
            hits += (scores.argmax(1) == y).sum().item()
        return hits
"""


@pytest.mark.parametrize("layers, found", [
    (NUMPY_LAYERS, []),  # a class of modules that never name torch: a NumPy network, no graph
    (NUMPY_LAYERS.replace("import numpy as np\n", "import numpy as np\nimport torch\n"), [(10, 4, "GRD101")]),
])
def test_a_model_of_a_module_that_never_names_torch_builds_no_graph(tmp_path, layers, found):
    make(tmp_path, {"layers.py": layers, "numpy_net.py": NUMPY_NET, "validate.py": NUMPY_NET_VALIDATION,
                    "main.py": "from validate import main\n\nmain([])\n"})
    assert [f for f in lint(tmp_path / "validate.py") if f[2] == "GRD101"] == found


REPACKAGE_HIDDEN = """
    import torch
    from torch.autograd import Variable


    def repackage_hidden(h):
        if type(h) == Variable:
            return Variable(h.data)
        return tuple(repackage_hidden(v) for v in h)
"""

VOLATILE_RNN_EVALUATION = """
    import torch
    from torch.autograd import Variable

    from utils import repackage_hidden


    def evaluate(model, batches, hidden):
        total = 0
        for x, y in batches:
            out, hidden = model(Variable(x, volatile=True), hidden)
            hidden = repackage_hidden(hidden)
            total += (out.data.max(1)[1] == y).sum()
        return total
"""


@pytest.mark.parametrize("utils, found", [
    # ``type(h) == Variable`` fails from 0.4 on: code for 0.3, where the flag worked, whatever the pin admits
    (REPACKAGE_HIDDEN, []),
    (REPACKAGE_HIDDEN.replace("type(h) == Variable", "isinstance(h, torch.Tensor)"),
     [(9, 4, "GRD101"), (10, 40, "GRD003")]),
])
def test_code_that_tests_type_is_variable_runs_on_pytorch_0_3(tmp_path, utils, found):
    make(tmp_path, {"README.md": "- torch>=0.2.0\n", "utils.py": utils, "evaluate.py": VOLATILE_RNN_EVALUATION,
                    "main.py": "from evaluate import evaluate\n\nevaluate(None, [], None)\n"})
    assert [f for f in lint(tmp_path / "evaluate.py") if f[2] in ("GRD003", "GRD101")] == found
    assert [f for f in lint(tmp_path / "utils.py") if f[2] == "GRD003"] == []


LOSS_READ_BY_INDEX = """
    import torch
    from torch.autograd import Variable


    def repackage_hidden(h):
        return tuple(Variable(v.data) for v in h)


    def report(loss):
        print("loss", loss.data[0])
"""


@pytest.mark.parametrize("utils, evaluate, found", [
    # ``loss.data[0]`` in a module it imports: code for 0.3, where the flag worked
    (LOSS_READ_BY_INDEX, VOLATILE_RNN_EVALUATION, []),
    # in the module itself
    (REPACKAGE_HIDDEN.replace("type(h) == Variable", "isinstance(h, torch.Tensor)"),
     VOLATILE_RNN_EVALUATION.replace("        return total", "        print(loss.data[0])\n        return total"), []),
    # an item of a tensor of numbers, no loss: nothing says 0.3
    (LOSS_READ_BY_INDEX.replace("loss.data[0]", "loss.data[0:1]"), VOLATILE_RNN_EVALUATION,
     [(9, 4, "GRD101"), (10, 40, "GRD003")]),
    # a call 0.4 added in the module: it runs there, whatever the other module says
    (LOSS_READ_BY_INDEX, VOLATILE_RNN_EVALUATION.replace("        return total", "        return total.item()"),
     [(9, 4, "GRD101"), (10, 40, "GRD003")]),
])
def test_code_that_reads_a_loss_by_index_runs_on_pytorch_0_3(tmp_path, utils, evaluate, found):
    make(tmp_path, {"README.md": "- torch>=0.2.0\n", "utils.py": utils, "evaluate.py": evaluate,
                    "main.py": "from evaluate import evaluate\n\nevaluate(None, [], None)\n"})
    assert [f for f in lint(tmp_path / "evaluate.py") if f[2] in ("GRD003", "GRD101")] == found


VOLATILE_SCRIPT = """
    import torch
    from torch.autograd import Variable

    from model import Net

    model = Net()
    model.load_state_dict(torch.load("net.pt"))
    model.eval()
    seed = Variable(torch.zeros(1, 1).long(), volatile=True)
    hidden = model.init_hidden(1)
    for step in range(100):
        output, hidden = model(seed, hidden)
        seed.data.fill_(int(output.data.max(1)[1][0]))
"""


@pytest.mark.parametrize("files, found", [
    # a script for 0.3: the volatile input made above its loop stops the graph there
    ({}, []),
    ({"README.md": "- PyTorch 1.0\n"}, [(11, 0, "GRD101")]),  # a release where the flag does nothing
])
def test_a_volatile_input_made_above_a_scripts_loop_guards_it_in_code_for_0_3(tmp_path, files, found):
    make(tmp_path, {**files, "model.py": NET_WITH_EMBEDDING,
                    "generate.py": VOLATILE_SCRIPT})
    assert [f for f in lint(tmp_path / "generate.py") if f[2] == "GRD101"] == found


@pytest.mark.parametrize("files, found", [
    # the same script inside its ``__main__`` block: the input is made above
    # the loop in the block that holds it
    ({}, []),
    ({"README.md": "- PyTorch 1.0\n"}, [(12, 4, "GRD101")]),
])
def test_a_volatile_input_made_above_the_loop_in_the_main_block_guards_it_in_code_for_0_3(tmp_path, files, found):
    head, _, body = VOLATILE_SCRIPT.partition("    model = Net()\n")
    script = head + "    if __name__ == \"__main__\":\n" + textwrap.indent("    model = Net()\n" + body, "    ")
    make(tmp_path, {**files, "model.py": NET_WITH_EMBEDDING, "generate.py": script})
    assert [f for f in lint(tmp_path / "generate.py") if f[2] == "GRD101"] == found


VOLATILE_HELPER_VALIDATION = """
    import torch
    from torch.autograd import Variable


    class Evaluator:
        def predict(self, model, loader):
            correct = 0
            for images, labels in loader:
                output = self.predict_samples(model, images)
                correct += (output.data.max(1)[1] == labels).sum().item()
            return correct

        def predict_samples(self, model, images):
            return model(Variable(images, volatile=True))
"""


@pytest.mark.parametrize("files, found", [
    ({"README.md": "- Pytorch 0.2.0\n"}, []),
    ({}, [(8, 8, "GRD101")]),
])
def test_volatile_inputs_made_by_the_helper_the_loop_calls_guard_it_in_a_pinned_project(tmp_path, files, found):
    make(tmp_path, {**files, "validate.py": VOLATILE_HELPER_VALIDATION})
    assert [f for f in lint(tmp_path / "validate.py") if f[2] == "GRD101"] == found


VOLATILE_LOADER = """
    import torch
    from torch.autograd import Variable


    class Batches:
        def __init__(self, data, evaluation=False):
            self.data = data
            self.evaluation = evaluation

        def __iter__(self):
            for x, y in self.data:
                yield Variable(x, volatile=self.evaluation), Variable(y, volatile=self.evaluation)
"""

LOADER_VALIDATION = """
    import torch

    from loader import Batches


    def validate(model, data):
        correct = 0
        for images, labels in Batches(data, evaluation=True):
            correct += (model(images).data.max(1)[1] == labels.data).sum()
        return correct


    def sample(model, start, steps):
        seed = Variable(start, volatile=True)
        for _ in range(steps):
            seed = model(seed)
        return seed
"""


@pytest.mark.parametrize("files, loader, validation, found", [
    ({"README.md": "- PyTorch 0.2.0\n"}, VOLATILE_LOADER, LOADER_VALIDATION, []),
    # not pinned: a module that calls an API PyTorch 0.4 added (``.item()``) runs on a release where the flag
    # does nothing; one that calls none may be code for 0.3, where it worked
    ({}, VOLATILE_LOADER, LOADER_VALIDATION.replace(".sum()\n", ".sum().item()\n"), [(8, 4, "GRD101")]),
    ({}, VOLATILE_LOADER, LOADER_VALIDATION, []),
    ({"README.md": "- PyTorch 1.0\n"}, VOLATILE_LOADER, LOADER_VALIDATION, [(8, 4, "GRD101")]),
    # a loader whose flag never reaches ``volatile=``
    ({"README.md": "- PyTorch 0.2.0\n"}, VOLATILE_LOADER.replace("volatile=self.evaluation", "requires_grad=False"),
     LOADER_VALIDATION.replace("seed = Variable(start, volatile=True)", "seed = start"), [(8, 4, "GRD101")]),
    # the module uses ``torch.no_grad()`` too: it runs on a release where the flag does nothing
    ({"README.md": "- PyTorch 0.2.0\n"}, VOLATILE_LOADER,
     LOADER_VALIDATION.replace("        return seed\n", "        return seed\n\n\n    guard = torch.no_grad()\n"),
     [(8, 4, "GRD101")]),
])
def test_a_pinned_module_that_makes_volatile_inputs_guards_its_loops(tmp_path, files, loader, validation, found):
    make(tmp_path, {**files, "loader.py": loader, "validate.py": validation})
    assert [f for f in lint(tmp_path / "validate.py") if f[2] == "GRD101"] == found


DEEP_VOLATILE_VALIDATION = VOLATILE_HELPER_VALIDATION.replace(
    "return model(Variable(images, volatile=True))",
    "return model(self.to_var(images))\n\n        def to_var(self, x):\n            return Variable(x, volatile=True)",
)


@pytest.mark.parametrize("files, validation, found", [
    ({"README.md": "- Pytorch 0.2.0\n"}, DEEP_VOLATILE_VALIDATION, []),
    ({}, DEEP_VOLATILE_VALIDATION, [(8, 8, "GRD101")]),
    # a helper handing on its own flag, which no call sets: no guard
    ({"README.md": "- Pytorch 0.2.0\n"}, DEEP_VOLATILE_VALIDATION.replace(
        "def to_var(self, x):\n            return Variable(x, volatile=True)",
        "def to_var(self, x, volatile=False):\n            return Variable(x, volatile=volatile)"),
     [(8, 8, "GRD101")]),
])
def test_volatile_inputs_made_two_calls_away_guard_a_loop_in_a_pinned_project(tmp_path, files, validation, found):
    make(tmp_path, {**files, "validate.py": validation})
    assert [f for f in lint(tmp_path / "validate.py") if f[2] == "GRD101"] == found


def test_volatile_false_does_not_guard_a_loop_in_a_project_pinned_before_torch_0_4(tmp_path):
    make(tmp_path, {"README.md": "- PyTorch 0.3.1\n",
                    "validate.py": VOLATILE_VALIDATION.replace("volatile=True", "volatile=False")})
    assert [f for f in lint(tmp_path / "validate.py") if f[2] == "GRD101"] == [(7, 4, "GRD101")]


GRAD_OFF_MODEL = """
    import torch


    def check_inference(method):
        def wrapper(self, *args):
            if not self.training:
                with torch.no_grad():
                    return method(self, *args)
            return method(self, *args)
        return wrapper


    class Detector(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = torch.nn.Linear(4, 4)

        def forward(self, x):
            with torch.set_grad_enabled(self.training):
                return self.body(x)
"""

DECORATED_FORWARD = GRAD_OFF_MODEL.replace(
    "        def forward(self, x):\n            with torch.set_grad_enabled(self.training):\n                return",
    "        @check_inference\n        def forward(self, x):\n            return",
)

GRAD_OFF_EVALUATION = """
    from model import Detector


    def evaluate(loader):
        detector = Detector()
        detector.eval()
        scores = []
        for images in loader:
            scores.append(detector(images).argmax(1).tolist())
        return scores
"""


@pytest.mark.parametrize("model, found", [
    (GRAD_OFF_MODEL, []),  # forward turns grad off in eval mode
    (DECORATED_FORWARD, []),  # the module's own decorator runs forward under no_grad in eval mode
    (GRAD_OFF_MODEL.replace("torch.set_grad_enabled(self.training)", "torch.enable_grad()"), [(8, 4, "GRD101")]),
    (DECORATED_FORWARD.replace("with torch.no_grad():", "if True:"), [(8, 4, "GRD101")]),
    # grad off only for a frozen part after the work: the output still carries a graph
    (GRAD_OFF_MODEL.replace(
        "            with torch.set_grad_enabled(self.training):\n                return self.body(x)",
        "            out = self.body(x)\n            with torch.no_grad():\n"
        "                self.body(x)\n            return out",
    ), [(8, 4, "GRD101")]),
])
def test_a_model_whose_method_turns_grad_off_itself_is_silent(tmp_path, model, found):
    assert "check_inference\n" in DECORATED_FORWARD
    make(tmp_path, {"model.py": model, "evaluate.py": GRAD_OFF_EVALUATION})
    assert lint(tmp_path / "evaluate.py") == found


def test_a_class_of_the_module_shadows_a_grad_off_class_of_the_same_name_elsewhere(tmp_path):
    make(tmp_path, {
        "model.py": GRAD_OFF_MODEL,
        "evaluate.py": GRAD_OFF_EVALUATION.replace(
            "from model import Detector",
            "import torch\n\n\n    class Detector(torch.nn.Linear):\n        pass\n"),
    })
    assert lint(tmp_path / "evaluate.py") == [(13, 4, "GRD101")]


UNRELATED_GRAD_OFF = """
    import torch


    class Ema:
        def update(self, model):
            with torch.no_grad():
                return model
"""


@pytest.mark.parametrize("model", [
    GRAD_OFF_MODEL,
    # a class defined under a ``try`` at the top level is a class of the module too
    "    import torch\n\n    try:\n        import apex\n    except ImportError:\n"
    + textwrap.indent(GRAD_OFF_MODEL[GRAD_OFF_MODEL.index("    class Detector"):], "    "),
])
def test_only_modules_that_may_define_a_class_the_module_names_are_summarised(tmp_path, model):
    ast.parse(textwrap.dedent(model))
    make(tmp_path, {"model.py": model, "ema.py": UNRELATED_GRAD_OFF, "evaluate.py": GRAD_OFF_EVALUATION})
    assert lint(tmp_path / "evaluate.py") == []
    index = next(iter(project._INDEXES.values()))
    assert index.entries["ema.py"][3] == b""  # mentions no_grad, defines no class evaluate.py names: never parsed
    assert index.entries["model.py"][3] not in (b"", project._UNPARSABLE)


INFERENCE_WRAPPER = """
    import torch


    class Scorer:
        def __init__(self, model):
            self.model = model

        def __call__(self, x):
            with torch.no_grad():
                return self.model(x)


    def score_pairs(model, batches):
        return [model(x) for x in batches]


    def main(batches):
        model = Scorer(torch.nn.Linear(4, 1))
        for split in ("dev", "test"):
            print(split, score_pairs(model, batches))
"""


@pytest.mark.parametrize("source, found", [
    (INFERENCE_WRAPPER, []),  # the wrapper's ``__call__`` runs the model under no_grad
    (INFERENCE_WRAPPER.replace("with torch.no_grad():", "if True:"), [(19, 4, "GRD101")]),
    # switching the model's mode or device first does no work with grad on
    (INFERENCE_WRAPPER.replace("            with torch.no_grad():",
                               "            self.model.eval()\n            self.model.cpu()\n"
                               "            with torch.no_grad():"), []),
    # running it does
    (INFERENCE_WRAPPER.replace("            with torch.no_grad():",
                               "            self.model(x)\n            with torch.no_grad():"), [(20, 4, "GRD101")]),
])
def test_a_wrapper_whose_call_turns_grad_off_is_silent(tmp_path, source, found):
    make(tmp_path, {"evaluate.py": source})
    assert lint(tmp_path / "evaluate.py") == found


# --- GRD102: a project model whose code has no layer depending on the mode ---

ATTENTION_PARTS = """
    import torch
    import torch.nn as nn


    class Glimpse(nn.Module):
        def __init__(self, size, hidden):
            super().__init__()
            self.fc = nn.Linear(size, hidden)

        def forward(self, x):
            return torch.relu(self.fc(x))
"""

ATTENTION_MODEL = """
    import torch.nn as nn

    import parts


    class Recurrent(nn.Module):
        def __init__(self, size, hidden_size, num_classes):
            super().__init__()
            self.glimpse = parts.Glimpse(size, hidden_size)
            self.head = nn.Linear(hidden_size, num_classes)

        def forward(self, x):
            return self.head(self.glimpse(x))
"""

ATTENTION_TRAINER = """
    import torch

    from model import Recurrent


    class Trainer:
        def __init__(self, config, loader):
            self.loader = loader
            self.model = Recurrent(config.size, config.hidden, config.num_classes)

        def fit(self, optimizer):
            for epoch in range(10):
                self.train_one_epoch(optimizer)
                self.validate()

        def train_one_epoch(self, optimizer):
            self.model.train()
            for x, y in self.loader:
                optimizer.zero_grad()
                torch.nn.functional.cross_entropy(self.model(x), y).backward()
                optimizer.step()

        @torch.no_grad()
        def validate(self):
            correct = 0
            for x, y in self.loader:
                correct += (self.model(x).argmax(1) == y).sum().item()
            return correct
"""


@pytest.mark.parametrize("parts, model, found", [
    (ATTENTION_PARTS, ATTENTION_MODEL, []),  # linear layers all the way down
    (ATTENTION_PARTS.replace("return torch.relu(self.fc(x))", "return nn.functional.dropout(self.fc(x), 0.5)"),
     ATTENTION_MODEL, [(26, 8, "GRD102")]),
    (ATTENTION_PARTS, ATTENTION_MODEL.replace("self.head = nn.Linear", "self.head = nn.BatchNorm1d"),
     [(26, 8, "GRD102")]),
    (ATTENTION_PARTS.replace("import torch\n", "import torch\n    import torchvision\n"), ATTENTION_MODEL,
     [(26, 8, "GRD102")]),  # a model library may bring any layer
])
def test_a_project_model_with_no_layer_depending_on_the_mode_needs_no_eval(tmp_path, parts, model, found):
    make(tmp_path, {"parts.py": parts, "model.py": model, "trainer.py": ATTENTION_TRAINER})
    assert [f[:3] for f in lint_102(tmp_path / "trainer.py")] == found


def test_a_project_model_built_around_a_module_handed_in_may_depend_on_the_mode(tmp_path):
    trainer = ATTENTION_TRAINER.replace("Recurrent(config.size, config.hidden, config.num_classes)",
                                        "Recurrent(backbone, config.hidden, config.num_classes)").replace(
        "def __init__(self, config, loader):", "def __init__(self, config, loader, backbone):")
    make(tmp_path, {"parts.py": ATTENTION_PARTS, "model.py": ATTENTION_MODEL, "trainer.py": trainer})
    assert [f[:3] for f in lint_102(tmp_path / "trainer.py")] == [(26, 8, "GRD102")]


SMALL_CNN = """
    import torch.nn as nn
    import torch.nn.functional as F


    class SmallCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3)
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            return self.fc(F.relu(self.conv(x)).mean((2, 3)))
"""

SMALL_CNN_SCRIPT = """
    import torch

    from models.cnn import SmallCNN


    def test(network, loader):
        correct = 0
        with torch.no_grad():
            for x, y in loader:
                correct += (network(x).argmax(1) == y).sum().item()
        return correct


    def train(network, loader, optimizer):
        network.train()
        for x, y in loader:
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(network(x), y).backward()
            optimizer.step()


    def main(loader):
        network = SmallCNN()
        network = network.to("cuda")
        train(network, loader, torch.optim.SGD(network.parameters(), lr=0.1))
        test(network, loader)


    main([])
"""


@pytest.mark.parametrize("moved, found", [
    ('network = network.to("cuda")', []),  # moved, still the mode-free model built above
    ('network = network.to("cuda").float()', []),
    ('network = torch.load("cnn.pt")', [(9, 8, "GRD102")]),  # something else handed over
])
def test_a_mode_free_model_moved_before_it_is_handed_over_needs_no_eval(tmp_path, moved, found):
    script = SMALL_CNN_SCRIPT.replace('network = network.to("cuda")', moved)
    make(tmp_path, {
        "models/cnn.py": SMALL_CNN,
        "run.py": script,
        "audio.py": "import librosa\n\n\ndef load(path):\n    return librosa.load(path)\n",
    })
    assert [f[:3] for f in lint_102(tmp_path / "run.py")] == found


# --- GRD004: an edit through a view raised only from torch 1.8 -----------------

SINUSOIDAL_CODES = """
    import numpy as np
    import torch


    def position_codes(n_pos, dim, out):
        table = np.array([[pos / np.power(10000, 2 * j / dim) for j in range(dim // 2)] for pos in range(n_pos)])
        out[:, 0::2] = torch.FloatTensor(np.sin(table))
        out[:, 1::2] = torch.FloatTensor(np.cos(table))


    class Encoder(torch.nn.Module):
        def __init__(self, n_pos, dim):
            super().__init__()
            self.positions = torch.nn.Embedding(n_pos, dim)
            position_codes(n_pos, dim, out=self.positions.weight)
            self.scale = torch.nn.Parameter(torch.ones(dim))
            self.scale.fill_(2.0)
"""


@pytest.mark.parametrize("files, found", [
    ({"README.md": "pytorch==1.3.0, torch_geometric==1.3.2\n"}, [(17, 8)]),  # the direct edit raised all along
    ({"README.md": "Needs torch 1.8 or later.\n"}, [(7, 4), (8, 4), (17, 8)]),
    ({}, [(7, 4), (8, 4), (17, 8)]),
])
def test_an_edit_through_a_view_is_reported_only_outside_a_project_pinned_before_torch_1_8(tmp_path, files, found):
    make(tmp_path, {**files, "encoder.py": SINUSOIDAL_CODES})
    assert [f[:2] for f in lint(tmp_path / "encoder.py") if f[2] == "GRD004"] == found


@pytest.mark.parametrize("files, found", [
    # an older project of its own below the root: its pin is the answer for its modules
    ({"v1/requirements.txt": "torch==1.4.0\n", "README.md": "torch>=2.0\n"}, [(17, 8)]),
    # the nearest directory naming a version says, not the root
    ({"v1/requirements.txt": "torch>=1.10\n", "README.md": "- PyTorch 1.3\n"}, [(7, 4), (8, 4), (17, 8)]),
    ({"v1/requirements.txt": "numpy\n", "README.md": "- PyTorch 1.3\n"}, [(17, 8)]),
    ({"v2/requirements.txt": "torch==1.4.0\n"}, [(7, 4), (8, 4), (17, 8)]),  # another one's
])
def test_a_pin_in_a_directory_between_the_module_and_the_root_answers_for_it(tmp_path, files, found):
    make(tmp_path, {**files, "v1/model/encoder.py": SINUSOIDAL_CODES})
    assert [f[:2] for f in lint(tmp_path / "v1/model/encoder.py") if f[2] == "GRD004"] == found


# --- GRD101: no torch in the module or in the modules that import it ----------

NUMPY_EVALUATE = """
    import numpy as np


    def evaluate(batches, labels, model):
        hits = 0
        for x, y in zip(batches, labels):
            loss, accuracy = model.forward(x, y, mode="valid")
            hits += accuracy * x.shape[0]
        return hits
"""

NUMPY_MAIN = """
    import numpy as np

    from models.softmax import Softmax
    from utils import evaluate

    model = Softmax()
    print(evaluate([np.ones((2, 4))], [np.zeros(2)], model))
"""

NUMPY_MODEL = """
    import numpy as np


    class Softmax:
        def __init__(self):
            self.weights = {"W1": np.zeros((4, 2))}

        def forward(self, x, y, mode="train"):
            scores = x @ self.weights["W1"]
            return float(scores.mean()), 0.5
"""


@pytest.mark.parametrize("main, found", [
    (NUMPY_MAIN, []),
    (NUMPY_MAIN.replace("import numpy as np\n", "import numpy as np\n    import torch\n"), [(6, 4, "GRD101")]),
])
def test_an_evaluation_loop_with_no_torch_around_it_builds_no_graph(tmp_path, main, found):
    make(tmp_path, {"utils.py": NUMPY_EVALUATE, "main.py": main, "models/softmax.py": NUMPY_MODEL})
    assert [f for f in lint(tmp_path / "utils.py") if f[2] == "GRD101"] == found


def test_an_evaluation_helper_nothing_imports_keeps_its_finding(tmp_path):
    make(tmp_path, {"utils.py": NUMPY_EVALUATE, "models/softmax.py": NUMPY_MODEL})
    assert [f for f in lint(tmp_path / "utils.py") if f[2] == "GRD101"] == [(6, 4, "GRD101")]


# --- GRD102: a script predicts through a helper with a project model ---------

SEGMENTER_PARTS = """
    import torch.nn as nn


    class DoubleConv(nn.Module):
        def __init__(self, channels):
            super().__init__()
            self.conv = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels))

        def forward(self, x):
            return self.conv(x)
"""

SEGMENTER_PACKAGE = """
    from .parts import DoubleConv as Segmenter
"""

SEGMENTER_SCRIPT = """
    import sys

    import torch

    from segmenter import Segmenter


    def predict_mask(net, image):
        with torch.no_grad():
            return net(image.unsqueeze(0)) > 0


    if __name__ == "__main__":
        net = Segmenter(3)
        net.load_state_dict(torch.load(sys.argv[1]))
        for path in sys.argv[2:]:
            mask = predict_mask(net, torch.load(path))
            torch.save(mask, path + ".mask")
"""


@pytest.mark.parametrize("parts, script, found", [
    (SEGMENTER_PARTS, SEGMENTER_SCRIPT, [(16, 4, "GRD102")]),
    # switched to eval mode before the loop
    (SEGMENTER_PARTS, SEGMENTER_SCRIPT.replace("for path in", "net.eval()\n        for path in"), []),
    # the helper switches itself
    (SEGMENTER_PARTS, SEGMENTER_SCRIPT.replace("with torch.no_grad():", "net.eval()\n        with torch.no_grad():"),
     []),
    # no layer whose output depends on the mode
    (SEGMENTER_PARTS.replace("nn.BatchNorm2d(channels)", "nn.ReLU()"), SEGMENTER_SCRIPT, []),
    # the helper's name says nothing of prediction
    (SEGMENTER_PARTS, SEGMENTER_SCRIPT.replace("predict_mask", "threshold"), []),
    # the helper runs the model with its caller's grad mode: GRD101's business, not an intent
    (SEGMENTER_PARTS, SEGMENTER_SCRIPT.replace("with torch.no_grad():", "if True:"), []),
    # a model handed to the script from elsewhere
    (SEGMENTER_PARTS, SEGMENTER_SCRIPT.replace("net = Segmenter(3)", "net = torch.load(sys.argv[0])"), []),
])
def test_a_script_predicting_through_a_helper_with_a_project_model_needs_eval(tmp_path, parts, script, found):
    make(tmp_path, {"segmenter/__init__.py": SEGMENTER_PACKAGE, "segmenter/parts.py": parts, "predict.py": script})
    assert [f[:3] for f in lint_102(tmp_path / "predict.py")] == found


# --- GRD103: a validation helper of another module leaves the model in eval mode ---

EVAL_HELPER = """
    import torch


    def eval_net(net, loader):
        net.eval()
        total = 0.0
        with torch.no_grad():
            for x in loader:
                total += net(x).sum().item()
        return total
"""

NET_PARTS = """
    import torch.nn as nn


    class UNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))

        def forward(self, x):
            return self.body(x)
"""

TRAIN_LOOP = """
    import torch

    from evaluation import eval_net
    from unet import UNet


    def train_net(net, loader, val_loader, epochs):
        optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
        for epoch in range(epochs):
            for x in loader:
                optimizer.zero_grad()
                net(x).pow(2).mean().backward()
                optimizer.step()
            score = eval_net(net, val_loader)
            print(epoch, score)


    train_net(UNet(), [], [], 5)
"""


@pytest.mark.parametrize("helper, net, train, found", [
    (EVAL_HELPER, NET_PARTS, TRAIN_LOOP, [(14, 16, "GRD103")]),
    # the helper switches back to training mode itself
    (EVAL_HELPER.replace("return total", "net.train()\n        return total"), NET_PARTS, TRAIN_LOOP, []),
    # every epoch starts by switching to training mode
    (EVAL_HELPER, NET_PARTS, TRAIN_LOOP.replace("for x in loader:", "net.train()\n            for x in loader:", 1),
     []),
    # the model class has no layer whose output depends on the mode
    (EVAL_HELPER, NET_PARTS.replace("nn.BatchNorm1d(4)", "nn.ReLU()"), TRAIN_LOOP, []),
    # a helper that switches a model it builds itself, not the one it is handed
    (EVAL_HELPER.replace("def eval_net(net, loader):\n        net.eval()",
                         "def eval_net(model, loader):\n        net = torch.nn.Linear(4, 4)\n        net.eval()"),
     NET_PARTS, TRAIN_LOOP, []),
    # called under no_grad after the last epoch only: nothing trains after it
    (EVAL_HELPER, NET_PARTS, TRAIN_LOOP.replace(
        "            score = eval_net(net, val_loader)\n            print(epoch, score)\n",
        "        score = eval_net(net, val_loader)\n"), []),
])
def test_a_validation_helper_of_another_module_that_leaves_eval_mode(tmp_path, helper, net, train, found):
    make(tmp_path, {"evaluation.py": helper, "unet.py": net, "train.py": train})
    assert [f for f in lint(tmp_path / "train.py") if f[2] == "GRD103"] == found


TRAIN_HELPER = """
    def model_train(net):
        net.train()
"""

RESTORING_LOOP = TRAIN_LOOP.replace(
    "from evaluation import eval_net", "from evaluation import eval_net\n    from modes import model_train"
).replace("print(epoch, score)", "model_train(net)")


@pytest.mark.parametrize("helper, train, found", [
    # a helper of another module switches the model back to training mode
    (TRAIN_HELPER, RESTORING_LOOP, []),
    # the same helper reached through its module
    (TRAIN_HELPER, RESTORING_LOOP.replace("from modes import model_train", "import modes")
     .replace("model_train(net)", "modes.model_train(net)"), []),
    # a helper that switches back to eval mode before it returns
    (TRAIN_HELPER + "        net.eval()\n", RESTORING_LOOP, [(15, 16, "GRD103")]),
    # a helper that switches a model it builds itself, not the one it is handed
    (TRAIN_HELPER.replace("net.train()", "other = net.copy()\n        other.train()"), RESTORING_LOOP,
     [(15, 16, "GRD103")]),
])
def test_a_helper_of_another_module_that_switches_back_to_training_mode(tmp_path, helper, train, found):
    make(tmp_path, {"evaluation.py": EVAL_HELPER, "modes.py": helper, "unet.py": NET_PARTS, "train.py": train})
    assert [f for f in lint(tmp_path / "train.py") if f[2] == "GRD103"] == found


STEP_HELPER = """
    def train_step(net, optimizer, x):
        net.train()
        optimizer.zero_grad()
        loss = net(x).pow(2).mean()
        loss.backward()
        optimizer.step()
        return loss.item()
"""

STEPPING_LOOP = """
    import torch

    from evaluation import eval_net
    from steps import train_step
    from unet import UNet


    def fit(net, x, val_loader, epochs):
        optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
        for epoch in range(epochs):
            loss = train_step(net, optimizer, x)
            score = eval_net(net, val_loader)
            print(epoch, loss, score)


    fit(UNet(), torch.randn(8, 4), [], 5)
"""


@pytest.mark.parametrize("helper, found", [
    # the step of another module switches the model to training mode before it steps
    (STEP_HELPER, []),
    # one that does not leaves the next pass training in eval mode
    (STEP_HELPER.replace("        net.train()\n", ""), [(12, 16, "GRD103")]),
])
def test_a_training_step_of_another_module_that_switches_to_training_mode_first(tmp_path, helper, found):
    make(tmp_path, {"evaluation.py": EVAL_HELPER, "steps.py": helper, "unet.py": NET_PARTS, "train.py": STEPPING_LOOP})
    assert [f for f in lint(tmp_path / "train.py") if f[2] == "GRD103"] == found


PROTOTYPE = """
    import torch
    from torch import nn


    class Tagger(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))

        def forward(self, x):
            return self.body(x)


    class Trainer:
        def __init__(self):
            self.model = Tagger()
            self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1)

        def evaluate(self, loader):
            self.model.eval()
            with torch.no_grad():
                return sum(self.model(x).sum().item() for x in loader)

        def train(self, loader, epochs):
            self.model.train()
            for epoch in range(epochs):
                for x in loader:
                    self.optimizer.zero_grad()
                    self.model(x).pow(2).mean().backward()
                    self.optimizer.step()
                self.evaluate(loader)


    if __name__ == "__main__":
        print("Done")
"""


@pytest.mark.parametrize("prototype, runner, found", [
    # a script whose own code runs nothing it defines, and that nothing imports
    (PROTOTYPE, "import torch\n\nprint(torch.__version__)\n", []),
    # its main block runs the trainer
    (PROTOTYPE.replace('print("Done")', "Trainer().train([], 2)"), "import torch\n", [(31, 12, "GRD103")]),
    # another module imports it
    (PROTOTYPE, "from prototype import Trainer\n\nTrainer().train([], 2)\n", [(31, 12, "GRD103")]),
    # its main block names a class only in a string it may look up
    (PROTOTYPE.replace('print("Done")', 'print(globals()["Trainer"])'), "import torch\n", [(31, 12, "GRD103")]),
])
def test_a_script_that_runs_nothing_it_defines_and_that_nothing_imports_runs_none_of_it(
    tmp_path, prototype, runner, found
):
    make(tmp_path, {"prototype.py": prototype, "run.py": runner})
    assert [f for f in lint(tmp_path / "prototype.py") if f[2] == "GRD103"] == found


# --- a same-named attribute elsewhere does not make a function escape ---------

CHECKS = """
    import torch


    def validation(model, loader):
        total = 0
        for x in loader:
            total += model(x).sum().item()
        return total
"""

CHECKS_CALLER = """
    import torch

    from checks import validation


    def train(model, loader, valid_loader, optimizer):
        for x in loader:
            optimizer.zero_grad()
            model(x).sum().backward()
            optimizer.step()
            model.eval()
            with torch.no_grad():
                validation(model, valid_loader)
            model.train()
"""


@pytest.mark.parametrize("other, found", [
    # another object's attribute of the same name, in a module that never imports ``checks``
    ("class Detector:\n    def __init__(self, config):\n        self.validation = config.validation\n", []),
    # the function itself handed on as ``checks.validation``: callable from anywhere
    ("import checks\n\nHOOKS = [checks.validation]\n", [(6, 4, "GRD101")]),
])
def test_a_same_named_attribute_elsewhere_does_not_hide_the_callers(tmp_path, other, found):
    make(tmp_path, {"checks.py": CHECKS, "train.py": CHECKS_CALLER, "detector.py": other})
    assert [f for f in lint(tmp_path / "checks.py") if f[2] == "GRD101"] == found


# --- a module path is no mention of a function of the same name ---------------

SCRIPT_WITH_DEAD_TEST = """
    import sys

    import torch


    def test(model, loader):
        correct = 0
        for x, y in loader:
            correct += (model(x).argmax(1) == y).sum().item()
        return correct


    def best_test(model, loader):
        with torch.no_grad():
            return [model(x) for x, _ in loader]


    if __name__ == "__main__":
        net = torch.load(sys.argv[1])
        print(best_test(net, torch.load(sys.argv[2])))
"""


@pytest.mark.parametrize("caller, found", [
    ("from tools.test import best_test\n\nbest_test(None, [])\n", []),  # ``tools.test`` names no function ``test``
    ("from tools.test import test\n\ntest(None, [])\n", [(8, 4, "GRD101")]),  # the function itself
])
def test_a_module_path_does_not_mention_a_function_of_that_name(tmp_path, caller, found):
    make(tmp_path, {"tools/test.py": SCRIPT_WITH_DEAD_TEST, "tools/train.py": caller})
    assert [f for f in lint(tmp_path / "tools/test.py") if f[2] == "GRD101"] == found


# --- a module that stops at its imports runs nothing --------------------------

PLAIN_NETS = """
    import torch.nn as nn


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 2)
            self.drop = nn.Dropout(0.5)

        def forward(self, x):
            return self.fc(self.drop(x))
"""

#: ``models/nets.py`` with a bracket left open: importing it raises SyntaxError
UNPARSABLE_NETS = PLAIN_NETS.replace("nn.Linear(4, 2)", "nn.Linear(4, 2")

#: ``models/nets.py`` in an encoding a package registers (``future-fstrings``): it decodes nowhere else
FOREIGN_CODEC_NETS = "# -*- coding: future_fstrings -*-\n" + textwrap.dedent(PLAIN_NETS).lstrip("\n")

TRAIN_IMPORTING = """
    import torch

    from models.nets import Net


    def validate(net, loader):
        net.eval()
        with torch.no_grad():
            return sum(net(x).argmax(1).eq(y).sum().item() for x, y in loader)


    def fit(loader, epochs):
        net = Net()
        optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
        net.train()
        for _ in range(epochs):
            for x, y in loader:
                optimizer.zero_grad()
                torch.nn.functional.cross_entropy(net(x), y).backward()
                optimizer.step()
            print(validate(net, loader))


    if __name__ == "__main__":
        fit(torch.load("data.pt"), 3)
"""


@pytest.mark.parametrize("nets, found", [(PLAIN_NETS, [(21, 14, "GRD103")]), (UNPARSABLE_NETS, [])])
def test_a_training_loop_of_a_module_that_stops_at_its_imports_is_silent(tmp_path, nets, found):
    make(tmp_path, {"models/nets.py": nets, "train.py": TRAIN_IMPORTING})
    assert [f for f in lint(tmp_path / "train.py") if f[2] == "GRD103"] == found


EVALUATE_IMPORTING = """
    import sys

    import torch

    {imports}


    def evaluate(model, loader):
        correct = 0
        for x, y in loader:
            correct += (model(x).argmax(1) == y).sum().item()
        return correct


    if __name__ == "__main__":
        net = WideNet() if "--wide" in sys.argv else Net()
        print(evaluate(net, torch.load(sys.argv[1])))
"""


@pytest.mark.parametrize("nets, imports, found", [
    # the class was removed from ``models/nets.py``: the script stops at line 5
    (PLAIN_NETS, "from models.nets import Net, WideNet", []),
    (PLAIN_NETS, "from models.nets import Net as WideNet, Net", [(10, 4, "GRD101")]),
    (PLAIN_NETS + "\n    WideNet = Net\n", "from models.nets import Net, WideNet", [(10, 4, "GRD101")]),
    (PLAIN_NETS + "\n    class WideNet(Net):\n        pass\n", "from models.nets import Net, WideNet",
     [(10, 4, "GRD101")]),
    (PLAIN_NETS + "\n    def register():\n        global WideNet\n        WideNet = Net\n",
     "from models.nets import Net, WideNet", [(10, 4, "GRD101")]),
    (PLAIN_NETS + "\n    from .wide import *\n", "from models.nets import Net, WideNet", [(10, 4, "GRD101")]),
    (PLAIN_NETS + "\n    globals()['WideNet'] = Net\n", "from models.nets import Net, WideNet", [(10, 4, "GRD101")]),
    # under ``try``, the import may be meant to fail
    (PLAIN_NETS, "try:\n        from models.nets import Net, WideNet\n    except ImportError:\n        pass",
     [(13, 4, "GRD101")]),
    # a package's submodule, and a module outside the project
    (PLAIN_NETS, "from models import nets\n    from timm.models import Net, WideNet", [(11, 4, "GRD101")]),
    # a project module that does not parse raises SyntaxError at the import
    (UNPARSABLE_NETS, "from models.nets import Net as WideNet\n    from models.nets import Net", []),
    (PLAIN_NETS, "from models.nets import Net as WideNet\n    from models.nets import Net", [(11, 4, "GRD101")]),
    # one that declares an encoding this Python lacks: a package the project installs may register it
    (FOREIGN_CODEC_NETS, "from models.nets import Net as WideNet\n    from models.nets import Net",
     [(11, 4, "GRD101")]),
    (FOREIGN_CODEC_NETS, "import models.nets\n    Net = WideNet = models.nets.Net", [(11, 4, "GRD101")]),
    # so does ``import`` of it, unless under ``try``
    (UNPARSABLE_NETS, "import models.nets\n    Net = WideNet = models.nets.Net", []),
    (PLAIN_NETS, "import models.nets\n    Net = WideNet = models.nets.Net", [(11, 4, "GRD101")]),
    (UNPARSABLE_NETS,
     "try:\n        import models.nets\n    except SyntaxError:\n        pass\n    Net = WideNet = None",
     [(14, 4, "GRD101")]),
])
def test_a_module_importing_a_name_its_project_module_lacks_runs_nothing(tmp_path, nets, imports, found):
    make(tmp_path, {"models/nets.py": nets, "evaluate.py": EVALUATE_IMPORTING.replace("{imports}", imports)})
    assert [f for f in lint(tmp_path / "evaluate.py") if f[2] == "GRD101"] == found


@pytest.mark.parametrize("wide, found", [
    # ``wide.py`` stops at its import of a class ``models/nets.py`` lacks: so does the script, at line 6
    ("from models.nets import WideNet as Base\n\n\nclass WideNet(Base):\n    pass\n", []),
    ("from blocks import Base\n\n\nclass WideNet(Base):\n    pass\n", []),  # two imports away
    ("from models.nets import Net as Base\n\n\nclass WideNet(Base):\n    pass\n", [(11, 4, "GRD101")]),
    ("try:\n    from models.nets import WideNet\nexcept ImportError:\n    WideNet = None\n", [(11, 4, "GRD101")]),
])
def test_a_module_importing_a_project_module_that_stops_at_its_imports_runs_nothing(tmp_path, wide, found):
    imports = "from models.nets import Net\n    from wide import WideNet"
    unpackaged(tmp_path, {
        "models/nets.py": PLAIN_NETS, "blocks.py": "from models.nets import WideNet as Base\n",
        "wide.py": wide, "evaluate.py": EVALUATE_IMPORTING.replace("{imports}", imports),
    })
    assert [f for f in lint(tmp_path / "evaluate.py") if f[2] == "GRD101"] == found


@pytest.mark.parametrize("extra, found", [
    ({}, []),  # ``models/wide.py`` is missing: the script stops at line 6
    ({"models/wide.py": "WideNet = None\n"}, [(11, 4, "GRD101")]),
    ({"models/wide.cpython-311-x86_64-linux-gnu.so": ""}, [(11, 4, "GRD101")]),  # a compiled module
    ({"models/wide": "WideNet = None\n"}, []),  # a file without ``.py`` is no module
    ({"models/wide/__init__.py": "WideNet = None\n"}, [(11, 4, "GRD101")]),
    # a package whose packaging builds nothing: ``models/`` (a regular package) lacks ``wide`` installed too
    ({"setup.py": "from setuptools import setup\nsetup(name='nets')\n"}, []),
    # a package that builds extensions may build ``wide`` when installed
    ({"setup.py": "from setuptools import Extension, setup\nsetup(ext_modules=[Extension('models.wide', [])])\n"},
     [(11, 4, "GRD101")]),
])
def test_a_module_importing_a_module_its_project_package_lacks_runs_nothing(tmp_path, extra, found):
    imports = "from models.nets import Net\n    from models.wide import WideNet"
    make(tmp_path, {"models/nets.py": PLAIN_NETS, "evaluate.py": EVALUATE_IMPORTING.replace("{imports}", imports)})
    (tmp_path / "setup.py").unlink()
    (tmp_path / ".git").mkdir()  # the project's root, without packaging
    for name, text in extra.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    assert [f for f in lint(tmp_path / "evaluate.py") if f[2] == "GRD101"] == found


@pytest.mark.parametrize("extra, found", [
    ({}, []),  # ``models/`` has no ``__init__.py`` and no ``wide``: nothing binds the name
    ({"models/wide.py": "WideNet = None\n"}, [(11, 4, "GRD101")]),
    ({"models/wide/__init__.py": "WideNet = None\n"}, [(11, 4, "GRD101")]),
    ({"models/__init__.py": "wide = None\n"}, [(11, 4, "GRD101")]),  # the package binds it
])
def test_a_module_importing_a_submodule_its_project_directory_lacks_runs_nothing(tmp_path, extra, found):
    imports = "from models.nets import Net\n    from models import wide"
    make(tmp_path, {"models/nets.py": PLAIN_NETS, "evaluate.py": EVALUATE_IMPORTING.replace("{imports}", imports)})
    (tmp_path / "setup.py").unlink()
    (tmp_path / ".git").mkdir()  # the project's root, without packaging
    (tmp_path / "models" / "__init__.py").unlink(missing_ok=True)
    for name, text in extra.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    assert [f for f in lint(tmp_path / "evaluate.py") if f[2] == "GRD101"] == found


@pytest.mark.parametrize("extra, found", [
    ({}, []),  # ``src/pkg/`` (a regular package, installed as ``pkg``) has no ``data``: the script stops at line 6
    ({"src/pkg/data/loaders.py": "WideNet = None\n"}, [(11, 4, "GRD101")]),
    ({"src/pkg/data/loaders.cpython-311-x86_64-linux-gnu.so": ""}, [(11, 4, "GRD101")]),
])
def test_a_module_importing_a_module_its_src_layout_package_lacks_runs_nothing(tmp_path, extra, found):
    imports = "from pkg.nets import Net\n    from pkg.data.loaders import WideNet"
    make(tmp_path, {
        "src/pkg/nets.py": PLAIN_NETS, "src/pkg/evaluate.py": EVALUATE_IMPORTING.replace("{imports}", imports),
    })
    for name, text in extra.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    assert [f for f in lint(tmp_path / "src/pkg/evaluate.py") if f[2] == "GRD101"] == found


def test_a_directory_of_data_is_no_package_an_import_fails_in(tmp_path):
    # ``data/`` holds images only: the module comes from elsewhere (a file the user adds beside the script)
    imports = "from models.nets import Net\n    from data import wide"
    make(tmp_path, {"models/nets.py": PLAIN_NETS, "evaluate.py": EVALUATE_IMPORTING.replace("{imports}", imports)})
    (tmp_path / "setup.py").unlink()
    (tmp_path / ".git").mkdir()
    (tmp_path / "data" / "img").mkdir(parents=True)
    (tmp_path / "data" / "img" / "1.png").write_bytes(b"\x89PNG")
    assert [f for f in lint(tmp_path / "evaluate.py") if f[2] == "GRD101"] == [(11, 4, "GRD101")]


@pytest.mark.parametrize("imports, init, found", [
    # a directory on the way is missing from a regular package the project installs
    ("from models.data.loaders import Loader", True, []),
    # every directory there: the module may be found
    ("from models.nets import Net", True, [(10, 4, "GRD101")]),
    # ``models/`` is no regular package: another portion of it may hold ``data``
    ("from models.data.loaders import Loader", False, [(10, 4, "GRD101")]),
])
def test_a_module_importing_below_a_directory_its_installed_package_lacks_runs_nothing(tmp_path, imports, init, found):
    make(tmp_path, {"models/nets.py": PLAIN_NETS, "evaluate.py": EVALUATE_IMPORTING.replace("{imports}", imports)})
    if not init:
        (tmp_path / "models" / "__init__.py").unlink()
    assert [f for f in lint(tmp_path / "evaluate.py") if f[2] == "GRD101"] == found


@pytest.mark.parametrize("base, found", [
    # ``models/nets.py`` has ``WideNet`` only if ``models/base.py`` binds it: it does not
    ("class Other:\n    pass\n", []),
    ("WideNet = None\n", [(10, 4, "GRD101")]),
    ("from .wide import *\n", [(10, 4, "GRD101")]),  # from a module the snapshot lacks: unknown
    ("from torchvision.models import *\n", [(10, 4, "GRD101")]),  # from outside the project: anything
])
def test_a_name_a_project_module_star_imports_from_another_one(tmp_path, base, found):
    make(tmp_path, {
        "models/nets.py": PLAIN_NETS + "\n    from .base import *\n",
        "models/base.py": base,
        "evaluate.py": EVALUATE_IMPORTING.replace("{imports}", "from models.nets import Net, WideNet"),
    })
    assert [f for f in lint(tmp_path / "evaluate.py") if f[2] == "GRD101"] == found


def test_a_module_attribute_every_module_has_is_no_missing_name(tmp_path):
    make(tmp_path, {
        "models/nets.py": PLAIN_NETS + "\n    from .base import *\n",
        "models/base.py": "class Other:\n    pass\n",
        "evaluate.py": EVALUATE_IMPORTING.replace(
            "{imports}", "from models.nets import Net, __dict__ as NETS\n    WideNet = NETS['Net']"),
    })
    assert [f for f in lint(tmp_path / "evaluate.py") if f[2] == "GRD101"] == [(11, 4, "GRD101")]


SCRIPT_CALLING_EVALUATE = """
    import torch


    def evaluate(model, loader, *, device="cpu"):
        correct = 0
        for x, y in loader:
            correct += (model(x.to(device)).argmax(1) == y).sum().item()
        return correct


    if __name__ == "__main__":
        net, data = torch.nn.Linear(2, 2), torch.load("data.pt")
        print(evaluate({arguments}))
"""


@pytest.mark.parametrize("arguments, found", [
    ("net, data", [(6, 4, "GRD101")]),
    ("net, loader=data, device='cuda'", [(6, 4, "GRD101")]),
    ("*[net, data]", [(6, 4, "GRD101")]),
    ("net, **{'loader': data}", [(6, 4, "GRD101")]),
    # each call raises TypeError before the loop can run
    ("net, torch.optim.SGD(net.parameters(), lr=0.1), data", []),
    ("net", []),
    ("net, data, dev='cuda'", []),
])
def test_a_function_every_call_of_which_cannot_bind_its_arguments_never_runs(tmp_path, arguments, found):
    make(tmp_path, {"evaluate.py": SCRIPT_CALLING_EVALUATE.replace("{arguments}", arguments)})
    assert [f for f in lint(tmp_path / "evaluate.py") if f[2] == "GRD101"] == found


LANGUAGE_EVAL = """
    import torch


    def evaluate(model, batches):
        total = 0
        for x, y in batches:
            total = total + torch.nn.functional.cross_entropy(model(x), y)
        return total / len(batches)
"""

LANGUAGE_TRAIN = """
    import torch
    from evaluate import evaluate


    def train(model, optimizer, batches, val_batches, start):
        for i in range(start, len(batches)):
            x, y = batches[i]
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            {use}
"""


@pytest.mark.parametrize("use, found", [
    # what the helper returns is only stored beside the model: no training step runs backward on it
    ("model.info['val loss'] = evaluate(model, val_batches)\n            start = model.info['start']",
     [(6, 4, "GRD101")]),
    # a step that does
    ("evaluate(model, val_batches).backward()", []),
])
def test_a_value_stored_in_an_attribute_of_the_model_does_not_feed_its_training(tmp_path, use, found):
    make(tmp_path, {"evaluate.py": LANGUAGE_EVAL, "train.py": LANGUAGE_TRAIN.format(use=use)})
    assert [f for f in lint(tmp_path / "evaluate.py") if f[2] == "GRD101"] == found


DETECTOR = """
    import torch


    class Detector(torch.nn.Module):
        def __init__(self, config, num_classes, {encoder}):
            super().__init__()
            self.head = torch.nn.Linear(config["width"], num_classes)

        def forward(self, x):
            return self.head(x)
"""

DETECT = """
    import torch
    from models.detector import Detector


    def evaluate(config, loader):
        model = Detector(config, 10{more}).eval()
        scores = []
        for x in loader:
            scores.append(model(x).argmax(1))
        return scores


    def predict(config, image):
        model = Detector(config, 10{more})
        model.eval()
        return model(image).argmax(1)
"""


@pytest.mark.parametrize("encoder, more, found", [
    # the class wants an encoder the calls do not pass: TypeError before any model call
    ("encoder", "", []),
    # given, or not required
    ("encoder", ", None", [(8, 4, "GRD101"), (16, 11, "GRD101")]),
    ("encoder=None", "", [(8, 4, "GRD101"), (16, 11, "GRD101")]),
])
def test_building_a_project_class_with_too_few_arguments_stops_the_function(tmp_path, encoder, more, found):
    make(tmp_path, {"models/detector.py": DETECTOR.format(encoder=encoder), "detect.py": DETECT.format(more=more)})
    assert lint(tmp_path / "detect.py") == found


@pytest.mark.parametrize("imports, found", [
    ("from models.nets import Net, WideNet", []),  # stops at the import: the flag never runs either
    ("from models.nets import Net\n    WideNet = Net", [(12, 39, "GRD003")]),
])
def test_the_volatile_flag_of_a_module_that_stops_at_its_imports_is_silent(tmp_path, imports, found):
    evaluate = EVALUATE_IMPORTING.replace("{imports}", imports).replace(
        "for x, y in loader:", "for x, y in loader:\n            x = torch.autograd.Variable(x, volatile=True)")
    make(tmp_path, {"models/nets.py": PLAIN_NETS, "evaluate.py": evaluate})
    assert [f for f in lint(tmp_path / "evaluate.py") if f[2] == "GRD003"] == found


# --- a context manager of the project's own that may turn grad off ------------

EVAL_MODE_UTILS = """
    import contextlib

    import torch


    class eval_mode:
        def __init__(self, *models, no_grad=False):
            self.models = models
            self.no_grad = no_grad
            self.context = torch.no_grad()

        def __enter__(self):
            for model in self.models:
                model.train(False)
            if self.no_grad:
                self.context.__enter__()

        def __exit__(self, *args):
            if self.no_grad:
                self.context.__exit__(*args)


    @contextlib.contextmanager
    def inference(model):
        model.eval()
        with torch.no_grad():
            yield model


    class timer:
        def __enter__(self):
            return self

        def __exit__(self, *args):
            pass


    def set_param_grad_off(module):
        for param in module.parameters():
            param.requires_grad = False


    class frozen_params:
        def __init__(self, module):
            self.state = [p.requires_grad for p in module.parameters()]
            self.module = module
            set_param_grad_off(module)

        def __enter__(self):
            return self.module

        def __exit__(self, *args):
            for p, state in zip(self.module.parameters(), self.state):
                p.requires_grad = state


    class frozen_head:
        def __init__(self, module):
            self.module = module

        def __enter__(self):
            self.module.head.requires_grad_(False)

        def __exit__(self, *args):
            self.module.head.requires_grad_(True)
"""

EVALUATE_UNDER = """
    import utils


    def evaluate(net, loader):
        total = 0.0
        with {context}:
            for x, y in loader:
                total += (net(x).argmax(1) == y).float().mean().item()
        return total
"""


@pytest.mark.parametrize("context, found", [
    ("utils.eval_mode(net, no_grad=True)", []),
    ("utils.inference(net)", []),
    ("utils.timer()", [(7, 8, "GRD101")]),  # a context manager that names no grad mode
    # parameters that stop requiring grad build no graph (an attack still
    # backpropagates to the input under it)
    ("utils.frozen_params(net)", []),
    ("utils.frozen_head(net)", []),
])
def test_a_project_context_manager_that_may_turn_grad_off_leaves_the_loop_unknown(tmp_path, context, found):
    make(tmp_path, {"utils.py": EVAL_MODE_UTILS, "evaluate.py": EVALUATE_UNDER.replace("{context}", context)})
    assert [f for f in lint(tmp_path / "evaluate.py") if f[2] == "GRD101"] == found
    # the same classes in the linted module itself
    evaluate = EVALUATE_UNDER.replace("{context}", context).replace("import utils\n", "").replace("utils.", "")
    local = textwrap.dedent(EVAL_MODE_UTILS) + textwrap.dedent(evaluate)
    (tmp_path / "alone.py").write_text(local, encoding="utf-8")
    assert bool([f for f in lint(tmp_path / "alone.py") if f[2] == "GRD101"]) == bool(found)


SWITCHING_UTILS = """
    class evaluating:
        def __init__(self, *models):
            self.models = models

        def __enter__(self):
            for model in self.models:
                model.eval()

        def __exit__(self, *args):
            for model in self.models:
                model.train()


    class timer:
        def __enter__(self):
            return self

        def __exit__(self, *args):
            pass
"""

FIT_AND_EVALUATE_UNDER = PLAIN_NETS.replace(
    "    import torch.nn as nn\n", "    import torch\n    import torch.nn as nn\n\n    import utils\n"
) + """

    def evaluate(net, loader):
        correct = 0
        with torch.no_grad(), {context}:
            for x, y in loader:
                correct += (net(x).argmax(1) == y).sum().item()
        return correct


    def fit(net, loader, optimizer):
        net.train()
        for x, y in loader:
            optimizer.zero_grad()
            nn.functional.cross_entropy(net(x), y).backward()
            optimizer.step()
        return evaluate(net, loader)
"""


@pytest.mark.parametrize("context, found", [
    ("utils.evaluating(net)", []),  # it switches the models it is handed
    ("utils.timer()", [(20, 8, "GRD102")]),
])
def test_a_project_context_manager_that_may_switch_modes_leaves_the_mode_unknown(tmp_path, context, found):
    make(tmp_path, {"utils.py": SWITCHING_UTILS, "evaluate.py": FIT_AND_EVALUATE_UNDER.replace("{context}", context)})
    assert [f for f in lint(tmp_path / "evaluate.py") if f[2] == "GRD102"] == found


# --- a forward that runs without grad when an argument asks it ---------------

SPEECH_MODEL = """
    import torch
    from torch import nn


    class Speech2Text(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = nn.Linear(8, 8)

        def forward(self, batch, task="all", is_eval=False, mode="train"):
            if is_eval:
                self.eval()
                with torch.no_grad():
                    loss = self._forward(batch)
            elif mode == "inference":
                with torch.no_grad():
                    loss = self._forward(batch)
            elif mode == "debug":
                self.log(batch)
                with torch.no_grad():
                    loss = self._forward(batch)
            else:
                self.train()
                loss = self._forward(batch)
            return loss

        def _forward(self, batch):
            return self.enc(batch).pow(2).mean()

        def log(self, batch):
            print(self.enc(batch).mean())
"""

EVALUATE_MODELS = """
    def eval_loss(models, loader):
        total = 0.0
        for batch in loader:
            total += models[0]({args}).item()
        return total / len(loader)
"""


@pytest.mark.parametrize("args, found", [
    ("batch, task='all', is_eval=True", []),
    ("batch, mode='inference'", []),
    # the branch calls the model's ``log`` outside ``no_grad`` first; ``False`` selects the training branch
    ("batch, mode='debug'", [(3, 4, "GRD101")]),
    ("batch, is_eval=False", [(3, 4, "GRD101")]),
    ("batch", [(3, 4, "GRD101")]),
])
def test_an_argument_selecting_a_forward_branch_without_grad(tmp_path, args, found):
    make(tmp_path, {"models/speech.py": SPEECH_MODEL, "evaluators/loss.py": EVALUATE_MODELS.format(args=args)})
    assert [f for f in lint(tmp_path / "evaluators/loss.py") if f[2] == "GRD101"] == found


# --- a literal True handed to a parameter passed on as volatile= -------------

BATCHIFY_VOLATILE = """
    import torch
    from torch.autograd import Variable


    def batchify(batch, gpu, volatile_flag=False):
        words = Variable(torch.LongTensor(batch), volatile=volatile_flag)
        return words.cuda() if gpu else words


    def evaluate(model, batches, gpu):
        model.eval()
        correct = 0
        for batch in batches:
            words = batchify(batch, gpu, {flag})
            correct += model(words).data.max(1)[1].sum()
        return correct
"""


@pytest.mark.parametrize("flag, readme, found", [
    ("True", "- PyTorch: 0.3\n", []),  # the flag still turned grad off on the torch it names
    ("False", "- PyTorch: 0.3\n", [(13, 4, "GRD101")]),
    ("True", "- PyTorch: 1.0\n", [(13, 4, "GRD101")]),
])
def test_a_literal_true_handed_on_as_volatile_guards_a_loop_in_a_pinned_project(tmp_path, flag, readme, found):
    make(tmp_path, {"README.md": readme, "evaluate.py": BATCHIFY_VOLATILE.replace("{flag}", flag)})
    assert [f for f in lint(tmp_path / "evaluate.py") if f[2] == "GRD101"] == found


LIGHTNING_BASE = """
    import pytorch_lightning as pl


    class Base(pl.LightningModule):
        pass
"""

VALIDATION_HOOK = """
    import torch

    from pkg.base import Base


    class Child(Base):
        def validation_step(self, batch, batch_idx):
            total = torch.tensor(0.0)
            for self.scope, item in batch.items():
                total = total + self.encoder(item["rgb"]).sum()
            return total
"""


@pytest.mark.parametrize("base, expected", [
    # Lightning runs the hook with grad off: the class derives from its class through another module
    (LIGHTNING_BASE, []),
    # a plain project class: a method of that name is no hook
    (LIGHTNING_BASE.replace("import pytorch_lightning as pl", "import torch").replace(
        "pl.LightningModule", "object"), [(9, 8, "GRD101")]),
])
def test_a_framework_hook_of_a_class_derived_from_the_framework_through_another_module(tmp_path, base, expected):
    make(tmp_path, {"pkg/base.py": base, "pkg/child.py": VALIDATION_HOOK})
    assert lint(tmp_path / "pkg/child.py") == expected


DETACHING_FORWARD = """
    import torch


    class Scorer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.head = torch.nn.Linear(4, 2)

        def forward(self, x):
            return self.head(x).argmax(1)
"""


@pytest.mark.parametrize("detaches", [True, False])
def test_only_modules_with_a_forward_are_read_for_one_that_detaches(tmp_path, detaches):
    model = DETACHING_FORWARD if detaches else DETACHING_FORWARD.replace(".argmax(1)", "") + (
        "\n        def labels(self, x):\n            return self.forward(x).argmax(1)\n")
    make(tmp_path, {"models.py": model, "metrics.py": "def top(scores):\n    return scores.argmax(1).tolist()\n",
                    "predict.py": "import torch\n"})
    path = tmp_path / "predict.py"
    source = path.read_text(encoding="utf-8")
    found = project.open_project(str(path), "", (), ast.parse(source), source)
    assert found.any_forward_detaches() is detaches
    assert found.index.entries["metrics.py"][3] == b""  # detaches, defines no forward: never parsed
    assert found.index.entries["models.py"][3] not in (b"", project._UNPARSABLE)


# --- a project whose every model computes the same in both modes ----------------

EMBEDDING_SCORER = """
    from torch import nn


    class Scorer(nn.Module):
        def __init__(self, n, k):
            super().__init__()
            self.embedding = nn.Embedding(n, k)
            self.linear = nn.Linear(k, 1)

        def forward(self, ids):
            return self.linear(self.embedding(ids).mean(1))
"""

SCORER_TRAINER = """
    import torch
    from tqdm import tqdm


    def fit(model, optimizer, train_loader, valid_loader, epochs):
        for epoch in range(epochs):
            model.train()
            for ids, y in train_loader:
                optimizer.zero_grad()
                torch.nn.functional.mse_loss(model(ids), y).backward()
                optimizer.step()
            evaluate(model, valid_loader)


    @torch.no_grad()
    def evaluate(model, loader):
        total = 0.0
        for ids, y in tqdm(loader):
            total += torch.nn.functional.mse_loss(model(ids), y).item()
        return total
"""

SCORER_RUN = """
    import torch

    from models import Scorer
    from trainer import fit

    model = Scorer(100, 8)
    fit(model, torch.optim.SGD(model.parameters(), lr=0.1), [], [], 2)
"""


@pytest.mark.parametrize("change, found", [
    ("", []),  # an embedding and a linear layer: the switch the trainer makes changes nothing
    ("self.linear = nn.Linear(k, 1)", [(18, 4)]),  # replaced below by a layer with dropout
    ("from torch import nn", [(18, 4)]),  # replaced below: a model library may bring any layer
    ("packaged", [(18, 4)]),  # a package's users may hand its trainer any model
    ("import gin", []),  # a settings library brings no model
    ("import gflags", []),
    ("import Augmentor", []),  # nor does an augmentation library
    # ``import torchvision`` for its image utilities; its ``models`` may bring any layer
    ("import torchvision", []),
    ("import torchvision\n    BACKBONE = torchvision.models.resnet18", [(18, 4)]),
    ("class Trainer:", []),  # a trainer class's own ``train`` loop overrides no module's
    ("class Trainer(object):", []),
    ("class Trainer(nn.Module):", [(18, 4)]),  # a module overriding ``train`` may do anything in it
])
def test_a_project_whose_models_all_compute_the_same_in_both_modes_needs_no_eval(tmp_path, change, found):
    models = EMBEDDING_SCORER
    if change.startswith("class Trainer"):
        models += f"\n\n    {change}\n        def train(self, model, loader):\n            return model\n"
    if change.startswith("import ") and change != "import timm":
        models = models.replace("from torch import nn", f"{change}\n    from torch import nn")
    if change == "self.linear = nn.Linear(k, 1)":
        models = models.replace(change, "self.linear = nn.Sequential(nn.Dropout(0.2), nn.Linear(k, 1))")
    elif change == "from torch import nn":
        models = models.replace(change, "import timm\n    from torch import nn")
    files = {"models.py": models, "trainer.py": SCORER_TRAINER, "run.py": SCORER_RUN}
    if change == "packaged":
        make(tmp_path, files)
    else:
        unpackaged(tmp_path, files)
    assert [f[:2] for f in lint_102(tmp_path / "trainer.py")] == found


# --- a model class of another module that adapts itself, cold and warm ----------

#: The wrapper and its adapting function (test_grd101_102_patterns), in a module of their own ...
ADAPTER_MODULE = TEST_TIME_ADAPTATION[:TEST_TIME_ADAPTATION.index("\n\ndef evaluate")] + "\n"
#: ... and its evaluation in another.
ADAPTER_MAIN = "\nimport torch\n\nfrom methods import adapter\n" + TEST_TIME_ADAPTATION[
    TEST_TIME_ADAPTATION.index("\n\ndef evaluate"):].replace("Adapter(", "adapter.Adapter(")


def test_a_class_of_another_module_adapting_under_enable_grad_needs_grad_cold_and_warm(tmp_path):
    # its module's words (as a summary has them) name no ``grad``: the
    # question must read it whether the cache has summarised it or not
    make(tmp_path, {"methods/adapter.py": ADAPTER_MODULE, "main.py": ADAPTER_MAIN})
    assert [f for f in lint(tmp_path / "main.py") if f[2] == "GRD101"] == []  # empty cache
    lint(tmp_path / "methods/adapter.py")  # the cache now holds its summary
    project._INDEXES.clear()
    layout._ROOTS.clear()
    assert [f for f in lint(tmp_path / "main.py") if f[2] == "GRD101"] == []  # a new process, warm cache
    plain = ADAPTER_MODULE.replace("@torch.enable_grad()\n", "")
    make(tmp_path, {"methods/adapter.py": plain, "main.py": ADAPTER_MAIN})
    project._INDEXES.clear()
    assert [f for f in lint(tmp_path / "main.py") if f[2] == "GRD101"] == [(9, 4, "GRD101")]


# --- a model handed to the training function by its only caller -------------------

CAPSULES = """
    import torch
    from torch import nn


    class Capsules(nn.Module):
        def __init__(self, opt):
            super().__init__()
            self.conv = nn.Conv2d(1, 8, 3)
            self.head = nn.Linear(8, opt.classes)

        def forward(self, x):
            return self.head(self.conv(x).mean((2, 3)))
"""

CAPSULE_TRAINING = """
    import torch
    import torch_extras

    from capsules import Capsules


    def train(opt, loader, model):
        optimizer = torch.optim.Adam(model.parameters())
        model.train()
        for epoch in range(opt.epochs):
            for x, y in loader:
                optimizer.zero_grad()
                torch.nn.functional.cross_entropy(model(x), y).backward()
                optimizer.step()
            test(loader, model)


    def test(loader, model):
        model.eval()
        with torch.no_grad():
            return sum((model(x).argmax(1) == y).sum().item() for x, y in loader)


    def main(opt, loader):
        model = Capsules(opt)
        train(opt, loader, model)


    if __name__ == "__main__":
        main(torch_extras.options(), [])
"""


@pytest.mark.parametrize("capsules, other, found", [
    # a convolution and a linear layer: eval mode changes nothing of the training (a library
    # the project imports may bring other models, but none reaches ``train``)
    (CAPSULES, None, []),
    (CAPSULES.replace("nn.Linear(8, opt.classes)", "nn.Sequential(nn.Dropout(0.5), nn.Linear(8, opt.classes))"),
     None, [(15, 8, "GRD103")]),
    # another module hands ``train`` a model of its own
    (CAPSULES, "from main import train\n\n\ndef run(opt, loader, net):\n    train(opt, loader, net)\n",
     [(15, 8, "GRD103")]),
])
def test_a_training_loop_of_a_model_its_only_caller_builds_mode_free_keeps_no_mode(tmp_path, capsules, other, found):
    files = {"capsules.py": capsules, "main.py": CAPSULE_TRAINING}
    if other:
        files["other.py"] = other
    unpackaged(tmp_path, files)
    assert [f for f in lint(tmp_path / "main.py") if f[2] == "GRD103"] == found


# A trainer that never switches the mode: its training hands the model to its
# evaluation in training mode, which matters only where some layer depends on it.
UNSWITCHED_TRAINER = """
    import torch


    class Trainer:
        def __init__(self, loss, optimizer):
            self.loss, self.optimizer = loss, optimizer

        def train(self, model, train_loader, valid_loader, epochs):
            for epoch in range(epochs):
                for ids, y in train_loader:
                    self.optimizer.zero_grad()
                    self.loss(model(ids), y).backward()
                    self.optimizer.step()
                print(self.test(model, valid_loader))

        @torch.no_grad()
        def test(self, model, loader):
            total = 0.0
            for ids, y in loader:
                total += self.loss(model(ids), y).item()
            return total
"""

UNSWITCHED_RUN = """
    import torch

    from models import Scorer
    from trainer import Trainer

    model = Scorer(100, 8)
    Trainer(torch.nn.MSELoss(), torch.optim.SGD(model.parameters(), lr=0.1)).train(model, [], [], 2)
"""


@pytest.mark.parametrize("models, found", [
    (EMBEDDING_SCORER, []),  # an embedding and a linear layer, the project's only model
    (EMBEDDING_SCORER.replace("self.linear = nn.Linear(k, 1)",
                              "self.linear = nn.Sequential(nn.Dropout(0.2), nn.Linear(k, 1))"), [(19, 8)]),
])
def test_a_model_trained_without_switches_in_a_mode_free_project_needs_no_eval(tmp_path, models, found):
    unpackaged(tmp_path, {"models.py": models, "trainer.py": UNSWITCHED_TRAINER, "run.py": UNSWITCHED_RUN})
    assert [f[:2] for f in lint_102(tmp_path / "trainer.py")] == found


LOSS_OBJECTS = """
    import torch
    import torch.nn as nn


    class Loss(object):
        def __init__(self, criterion):
            self.criterion = criterion
            self.acc_loss = 0

        def backward(self):
            self.acc_loss.backward()

        def get_loss(self):
            return self.acc_loss


    class NLLLoss(Loss):
        def __init__(self):
            super().__init__(nn.NLLLoss(reduction="none"))

        def get_loss(self):
            if isinstance(self.acc_loss, int):
                return 0
            return self.acc_loss.data.detach().item()

        def eval_batch(self, outputs, target):
            self.acc_loss += torch.sum(self.criterion(outputs, target))


    class SumLoss(Loss):
        pass
"""

LOSS_OBJECT_TRAINER = """
    from losses import NLLLoss


    def train(model, optimizer, batches):
        total = 0
        for x, y in batches:
            loss = NLLLoss()
            loss.eval_batch(model(x), y)
            total += loss.get_loss()
            loss.backward()
            optimizer.step()
        return total
"""


@pytest.mark.parametrize("klass, found", [
    ("NLLLoss", []),  # its ``get_loss`` returns ``.item()``: a Python number
    ("SumLoss", [(9, 8, "GRD104")]),  # the base's ``get_loss`` returns the tensor itself
])
def test_a_loss_object_of_another_module_whose_method_returns_a_number(tmp_path, klass, found):
    make(tmp_path, {"losses.py": LOSS_OBJECTS, "trainer.py": LOSS_OBJECT_TRAINER.replace("NLLLoss", klass)})
    assert lint(tmp_path / "trainer.py") == found
    # in one module, the class is read where it is
    local = LOSS_OBJECTS + LOSS_OBJECT_TRAINER.replace("from losses import NLLLoss", "").replace("NLLLoss", klass)
    assert [f[2] for f in lint(make(tmp_path / "one", {"one.py": local}) / "one.py")] == [f[2] for f in found]


SCORED_LOSSES = """
    import math

    import torch


    class Model:
        def __init__(self):
            self.loss = 1

        def backward(self):
            pass


    class Critic(Model):
        def get_loss(self):
            return self.loss

        def update_loss(self, fake, real):
            self.loss = (math.sqrt(fake) + math.sqrt(real)) / 2


    class Writer(Model):
        def __init__(self):
            self.loss = {"l1": torch.zeros(1)}
"""

TENSOR_CRITIC = """

    class TensorCritic(Critic):
        def update_loss(self, fake, real):
            self.loss = fake + real
"""

SCORED_TRAINER = """
    from losses import Critic


    def train(model, optimizer, batches):
        total = 0
        for x, y in batches:
            critic = Critic()
            critic.update_loss(model(x), y)
            total += critic.get_loss()
            critic.backward()
            optimizer.step()
        return total
"""


@pytest.mark.parametrize("subclass, found", [
    # every value Critic and its bases give ``self.loss`` is a number; Writer's dict is no Critic's
    ("", []),
    (TENSOR_CRITIC, [(9, 8, "GRD104")]),  # a subclass gives ``self.loss`` a tensor: Critic's may hold one
])
def test_a_loss_method_returning_an_attribute_only_numbers_are_given(tmp_path, subclass, found):
    losses = textwrap.dedent(SCORED_LOSSES) + textwrap.dedent(subclass)
    make(tmp_path, {"losses.py": losses, "trainer.py": SCORED_TRAINER})
    assert lint(tmp_path / "trainer.py") == found
    local = losses + textwrap.dedent(SCORED_TRAINER).replace("from losses import Critic", "")
    assert [f[2] for f in lint(make(tmp_path / "one", {"one.py": local}) / "one.py")] == [f[2] for f in found]


LOSS_FUNCTIONS = """
    def dataset_loss(loader, net, loss_fn):
        running = 0.0
        for x, y in loader:
            running += loss_fn(net(x), y).item()
        return running / len(loader)


    def batch_loss(loader, net, loss_fn):
        for x, y in loader:
            return loss_fn(net(x), y)
"""

LOSS_FUNCTION_SCRIPT = """
    import torch
    from stats.losses import dataset_loss

    if __name__ == "__main__":
        net = torch.nn.Linear(2, 2)
        loader, loss_fn = [(torch.ones(1, 2), torch.ones(1, 2))], torch.nn.MSELoss()
        optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
        history = []
        for epoch in range(3):
            for x, y in loader:
                optimizer.zero_grad()
                loss_fn(net(x), y).backward()
                optimizer.step()
            epoch_loss = dataset_loss(loader, net, loss_fn)
            history.append(epoch_loss)
"""


@pytest.mark.parametrize("function, found", [
    ("dataset_loss", []),  # it returns the mean of ``.item()`` numbers
    ("batch_loss", [(15, 8, "GRD104")]),  # it returns the loss tensor itself
])
def test_a_loss_function_of_another_module_that_returns_a_number(tmp_path, function, found):
    make(tmp_path, {"stats/__init__.py": "", "stats/losses.py": LOSS_FUNCTIONS,
                    "train.py": LOSS_FUNCTION_SCRIPT.replace("dataset_loss", function)})
    assert lint(tmp_path / "train.py") == found


STAR_IMPORTED_NETWORK = """
    import torch.nn as nn


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(4, 2), nn.Dropout(0.5))

        def forward(self, x):
            return self.body(x)
"""

STAR_IMPORTING_SCRIPT = """
    import torch
    from network import *

    model = Net()
    model.load_state_dict(torch.load("net.pt"))
    model.eval()
    correct = 0
    for trial in range(30):
        print("trial %d" % epoch)
        for x, y in loader:
            correct += (model(x).argmax(1) == y).sum().item()
"""


@pytest.mark.parametrize("network, found", [
    # ``epoch`` and ``loader``: bound by no statement here nor in ``network``: NameError at once
    (STAR_IMPORTED_NETWORK, []),
    (STAR_IMPORTED_NETWORK + "\nepoch, loader = 0, []\n", [(8, 0, "GRD101")]),
    # what ``network`` ``*``-imports from outside the project may bind anything
    ("from helpers import *\n" + STAR_IMPORTED_NETWORK, [(8, 0, "GRD101")]),
])
def test_a_script_reading_a_name_no_star_imported_project_module_binds(tmp_path, network, found):
    unpackaged(tmp_path, {"network.py": network, "test_noise.py": STAR_IMPORTING_SCRIPT})
    assert lint(tmp_path / "test_noise.py") == found


BN_UPDATE = """
    import torch


    def bn_update(loader, model):
        model.train()
        for x in loader:
            model(x)
"""

BN_TRAIN = """
    from models import plain, scaled


    def main(loader, model):
        plain.bn_update(loader, model)


    if __name__ == "__main__":
        main([], None)
"""


@pytest.mark.parametrize("train, plain, scaled", [
    (BN_TRAIN, [(6, 4, "GRD101")], []),  # only ``plain``'s copy is called
    (BN_TRAIN.replace("plain.bn_update", "scaled.bn_update"), [], [(6, 4, "GRD101")]),
    # the name alone may be either module's
    (BN_TRAIN.replace("from models import plain, scaled", "from models.plain import bn_update").replace(
        "plain.bn_update", "bn_update"), [(6, 4, "GRD101")], []),
])
def test_a_copy_of_a_function_only_another_modules_copy_of_is_called(tmp_path, train, plain, scaled):
    unpackaged(tmp_path, {"models/plain.py": BN_UPDATE, "models/scaled.py": BN_UPDATE, "train.py": train})
    assert lint(tmp_path / "models/plain.py") == plain
    assert lint(tmp_path / "models/scaled.py") == scaled


SEQ2SEQ_GLOBALS = (
    SEQ2SEQ.replace("encoder: EncoderRNN, decoder: Decoder", "encoder, decoder")
    .replace("encoder, decoder = EncoderRNN(100, 8), Decoder(100, 8)",
             "encoder1 = EncoderRNN(100, 8)\ndecoder1 = Decoder(100, 8)")
    .replace("encoder.parameters(), *decoder.parameters()", "encoder1.parameters(), *decoder1.parameters()")
    .replace("output, state = encoder(token, torch", "output, state = encoder1(token, torch")
    .replace("cross_entropy(decoder(state)", "cross_entropy(decoder1(state)")
    .replace('print(evaluate(encoder, decoder, torch.load("tokens.pt"), torch.zeros(1, 1, 8)))',
             'def show(tokens):\n    return evaluate(encoder1, decoder1, tokens, torch.zeros(1, 1, 8))\n\n\n'
             'print(show(torch.load("tokens.pt")))')
)


@pytest.mark.parametrize("change, expected", [
    # ``show`` hands ``evaluate`` the module's globals, each bound once to its class
    ((), [(29, 8, "GRD102")]),
    (("print(show(", "encoder1 = Decoder(100, 8)\nprint(show("), [(27, 8, "GRD102"), (29, 8, "GRD102")]),
    (("def show(tokens):", "def show(tokens, encoder1=None):"), [(27, 8, "GRD102"), (29, 8, "GRD102")]),
])
def test_a_mode_free_global_handed_on_by_a_function_that_reads_it(tmp_path, change, expected):
    source = SEQ2SEQ_GLOBALS.replace(*change) if change else SEQ2SEQ_GLOBALS
    make(tmp_path, {"seq2seq.py": source})
    assert lint(tmp_path / "seq2seq.py") == expected


# --- callers that differentiate through the function -------------------------

SMOOTHED = """
    import torch


    def predict_smoothed(model, x, sigma=0.25, batches=4):
        probs = 0
        for _ in range(batches):
            noisy = x + sigma * torch.randn_like(x)
            probs = probs + model(noisy).softmax(-1) / batches
        return probs
"""

ATTACK = """
    import torch

    from .smooth import predict_smoothed


    def attack(model, x, y, eps=0.1, steps=3):
        x = x.clone().requires_grad_()
        for _ in range(steps):
            loss = -predict_smoothed(model, x).log()[range(len(y)), y].mean()
            grad, = torch.autograd.grad(loss, x)
            x = (x + eps * grad.sign()).detach().requires_grad_()
        return x.detach()
"""

CERTIFY = """
    from .smooth import predict_smoothed


    def certify(model, loader):
        return [predict_smoothed(model, x).argmax(1) for x in loader]
"""


def test_a_loop_whose_every_caller_asks_autograd_through_it_is_silent(tmp_path):
    # the attack differentiates the smoothed prediction by its input: the
    # helper's loop must build its graph
    make(tmp_path, {"pkg/smooth.py": SMOOTHED, "pkg/attacks.py": ATTACK})
    assert lint(tmp_path / "pkg/smooth.py") == []


def test_a_loop_one_of_whose_callers_only_predicts_is_reported(tmp_path):
    make(tmp_path, {"pkg/smooth.py": SMOOTHED, "pkg/attacks.py": ATTACK, "pkg/certify.py": CERTIFY})
    assert lint(tmp_path / "pkg/smooth.py") == [(6, 4, "GRD101")]


def test_a_caller_asking_autograd_in_the_same_module_counts_too(tmp_path):
    attack = ATTACK.replace("    from .smooth import predict_smoothed\n", "")
    make(tmp_path, {"pkg/smooth.py": SMOOTHED + attack.replace("    import torch\n", "", 1)})
    assert lint(tmp_path / "pkg/smooth.py") == []


# --- GRD004 in code that never runs --------------------------------------------

FUSE_HELPERS = """
    import torch


    def fuse_conv_and_bn(conv, bn):
        fused = torch.nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size)
        fused.weight.copy_(conv.weight * bn.weight.view(-1, 1, 1, 1))
        return fused


    def fuse_model(model):
        model.conv = fuse_conv_and_bn(model.conv, model.bn)
        return model
"""

CONV_BN_NET = """
    import torch


    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3)
            self.bn = torch.nn.BatchNorm2d(8)
"""

IMPORTS_NET = "from models.net import Net\n"

FUSE_EXPORT = """
    from models.fuse import fuse_model
    from models.net import Net

    fuse_model(Net())
"""


def test_a_parameter_edit_in_a_helper_nothing_in_an_unpackaged_project_calls_is_not_reported(tmp_path):
    unpackaged(tmp_path, {"models/fuse.py": FUSE_HELPERS, "models/net.py": CONV_BN_NET, "train.py": IMPORTS_NET})
    (tmp_path / "models/__init__.py").unlink()  # a directory of modules, no package
    assert lint(tmp_path / "models/fuse.py") == []


@pytest.mark.parametrize("notebook, found", [
    ("from models.fuse import fuse_model", [(6, 4, "GRD004")]),
    ("import models.net", []),  # it imports another module of the package
    (None, []),
])
def test_a_parameter_edit_in_a_helper_of_a_package_directory_is_reported_if_a_notebook_may_call_it(
    tmp_path, notebook, found,
):
    # ``models/__init__.py`` makes it a package's module, made to be imported, by a notebook of the project
    unpackaged(tmp_path, {"models/fuse.py": FUSE_HELPERS, "models/net.py": CONV_BN_NET, "train.py": IMPORTS_NET})
    if notebook is not None:
        (tmp_path / "export.ipynb").write_text(_notebook(notebook), encoding="utf-8")
    assert lint(tmp_path / "models/fuse.py") == found


def test_a_parameter_edit_in_a_helper_a_script_runs_is_reported(tmp_path):
    unpackaged(tmp_path, {"models/fuse.py": FUSE_HELPERS, "models/net.py": CONV_BN_NET, "export.py": FUSE_EXPORT})
    assert lint(tmp_path / "models/fuse.py") == [(6, 4, "GRD004")]


def test_a_parameter_edit_in_a_package_helper_is_reported(tmp_path):
    # a package's users outside the project may call what it never does
    make(tmp_path, {"models/fuse.py": FUSE_HELPERS, "models/net.py": NET})
    assert lint(tmp_path / "models/fuse.py") == [(6, 4, "GRD004")]


PHASE_SCRIPT = """
    import torch

    from models.nets import {name}


    def fit(model, loaders, optimizer):
        for phase in ["train", "val"]:
            model.train(phase == "train")
            for x, y in loaders[phase]:
                loss = torch.nn.functional.cross_entropy(model(x), y)
                if phase == "train":
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()


    if __name__ == "__main__":
        net = {name}()
        fit(net, {{}}, torch.optim.SGD(net.parameters(), lr=0.1))
"""


@pytest.mark.parametrize("name, found", [("WideNet", []), ("Net", [(9, 8, "GRD101")])])
def test_a_phase_loop_of_a_script_that_stops_at_its_imports_is_not_reported(tmp_path, name, found):
    # ``models/nets.py`` defines no ``WideNet``: the script raises ImportError
    unpackaged(tmp_path, {"models/nets.py": PLAIN_NETS, "learn.py": PHASE_SCRIPT.format(name=name)})
    assert [f for f in lint(tmp_path / "learn.py") if f[2] == "GRD101"] == found


# --- a model handed on through callers, built as a class with no mode -----------

HANDED_ON = """
    import torch
    import torch.nn as nn


    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(10, 8)
            self.gru = nn.GRU(8, 8)

        def forward(self, token, hidden):
            return self.gru(self.embedding(token).view(1, 1, -1), hidden)


    class Decoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.dropout = nn.Dropout(0.1)
            self.out = nn.Linear(8, 10)

        def forward(self, hidden):
            return self.out(self.dropout(hidden))


    def evaluate(encoder, decoder, tokens):
        with torch.no_grad():
            hidden = torch.zeros(1, 1, 8)
            for token in tokens:
                _, hidden = encoder(token, hidden)
            return decoder(hidden)


    def score(encoder, decoder, sentences):
        return [evaluate(encoder, decoder, s) for s in sentences]


    def show(encoder, decoder, sentence):
        print(evaluate(encoder, decoder, sentence))


    if __name__ == "__main__":
        encoder = Encoder()
        decoder = Decoder()
        encoder.load_state_dict(torch.load("encoder.pt"))
        print(score(encoder, decoder, []))
"""


@pytest.mark.parametrize("change, found", [
    # the encoder is a GRU without dropout, built by the script and handed on
    # through ``score`` (``show``, which nothing calls, hands nothing)
    ((), []),
    # a GRU with dropout depends on the mode
    (("nn.GRU(8, 8)", "nn.GRU(8, 8, num_layers=2, dropout=0.5)"), [(28, 8, "GRD102")]),
    # a model loaded whole may be anything
    (('    encoder = Encoder()', '    encoder = torch.load("encoder.pt")'), [(28, 8, "GRD102")]),
    # a second caller hands over a model loaded whole
    (("    print(score(encoder, decoder, []))",
      '    print(score(encoder, decoder, []))\n        show(torch.load("other.pt"), decoder, [])'),
     [(28, 8, "GRD102")]),
])
def test_a_model_handed_on_through_callers_is_judged_by_the_class_they_built(tmp_path, change, found):
    source = HANDED_ON.replace(*change) if change else HANDED_ON
    make(tmp_path, {"evaluate.py": source})
    assert lint(tmp_path / "evaluate.py") == found


# --- a script whose main block stops at a name nothing binds ---------------------

MAIN_BLOCK_NAME_ERROR = """
    import argparse

    import torch


    def evaluate(model, loader):
        model.eval()
        for x in loader:
            print(model(x).argmax(1))


    def main(args):
        model = torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.Dropout(0.5))
        evaluate(model, [torch.randn(2, 4)])


    def parse():
        parser = argparse.ArgumentParser()
        parser.add_argument("--wide", action="store_true")
        return parser.parse_args()


    if __name__ == "__main__":
        args = parse()
        if wide:
            print("wide")
        main(args)
"""


@pytest.mark.parametrize("test, found", [
    ("if wide:", []),  # ``NameError`` before ``main(args)``: nothing of the script runs
    ("if args.wide:", [(8, 4, "GRD101")]),
])
def test_a_script_whose_main_block_stops_at_an_unbound_name_runs_none_of_its_functions(tmp_path, test, found):
    unpackaged(tmp_path, {"train.py": MAIN_BLOCK_NAME_ERROR.replace("if wide:", test)})
    assert lint(tmp_path / "train.py") == found


def test_a_script_whose_main_block_stops_late_still_runs_what_it_called_first(tmp_path):
    # the unbound name comes after ``main(args)`` has run
    source = MAIN_BLOCK_NAME_ERROR.replace("        main(args)\n", "").replace(
        "        args = parse()\n", "        args = parse()\n        main(args)\n")
    unpackaged(tmp_path, {"train.py": source})
    assert lint(tmp_path / "train.py") == [(8, 4, "GRD101")]


@pytest.mark.parametrize("imported, found", [
    ("from modeling import get_model", []),  # ``ImportError`` before ``main(args)``: nothing of the script runs
    ("from modeling import build_model", [(8, 4, "GRD101")]),
    ("from modeling import *", [(8, 4, "GRD101")]),  # a ``*`` import lacks no name
])
def test_a_script_whose_main_block_stops_at_an_import_its_module_lacks_runs_none_of_its_functions(
    tmp_path, imported, found
):
    source = MAIN_BLOCK_NAME_ERROR.replace("        if wide:\n            print(\"wide\")\n", f"        {imported}\n")
    modeling = "import torch\n\n\ndef build_model():\n    return torch.nn.Linear(4, 2)\n"
    unpackaged(tmp_path, {"train.py": source, "modeling.py": modeling})
    assert lint(tmp_path / "train.py") == found


ADAPTERS = """
    from abc import ABC

    import torch
    from torch import nn


    class Adapter(ABC):
        def train(self, spec):
            self.net = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
            return spec

        def sample(self, spec):
            return self.net(torch.randn(spec.n, 4))


    class Spec:
        def __init__(self, n):
            self.n = n
"""

VALIDATION = """
    from adapters import Adapter, Spec


    def run_adapter(seed):
        adapter = Adapter()
        adapter.train(Spec(8))
        return adapter.sample(Spec(4))


    def run_validation(seeds):
        return [run_adapter(seed) for seed in seeds]


    def validate(seeds):
        results = []
        for seed in seeds:
            results.append(run_adapter(seed))
        return results


    if __name__ == "__main__":
        validate([0, 1])
"""


def test_a_train_method_handed_an_object_is_no_mode_switch(tmp_path):
    """``adapter.train(Spec(8))`` is a plain object's training routine, not
    ``nn.Module.train(mode)``: it shows no model and switches no mode."""
    unpackaged(tmp_path, {"adapters.py": ADAPTERS, "validation.py": VALIDATION})
    assert lint(tmp_path / "validation.py") == []
    # a name may be a flag (``.train(mode)``): read as before, a switch of a model's mode
    flagged = VALIDATION.replace("adapter.train(Spec(8))", "spec = Spec(8)\n        adapter.train(spec)")
    (tmp_path / "validation.py").write_text(textwrap.dedent(flagged).lstrip("\n"), encoding="utf-8")
    assert lint(tmp_path / "validation.py") == [(17, 4, "GRD102")]


STALE_LEARNER = """\
import torch
from torch import nn


class Meta(nn.Module):
    def __init__(self):
        super(Meta, self).__init__()
        self.net = nn.Linear(4, 1)
        self.optim = torch.optim.SGD(self.net.parameters(), lr=0.1)

    def forward(self, batches):
        total = 0
        for x, y in batches:
            loss = ((self.net(x) - y) ** 2).mean()
            self.optim.zero_grad()
            loss.backward()
            self.optim.step()
            total += loss
        return total


def main():
    pass


if __name__ == "__main__":
    main()
"""

LEARNER_SCRIPT = """\
import torch
from {module} import Meta

learner = Meta()
print(learner([(torch.randn(2, 4), torch.randn(2, 1))]))
"""


@pytest.mark.parametrize("module, found", [
    ("meta5", []),  # the script's ``Meta`` is meta5's: nothing can build meta4's
    ("meta4", [(18, 12, "GRD104")]),
])
def test_a_model_class_of_a_module_nothing_imports_never_runs(tmp_path, module, found):
    unpackaged(tmp_path, {
        "meta4.py": STALE_LEARNER,
        "meta5.py": STALE_LEARNER,
        "train.py": LEARNER_SCRIPT.format(module=module),
    })
    assert lint(tmp_path / "meta4.py") == found


EPOCH_RUNNER = """\
def do_epoch(loader, batchfn, model, optimizer=None):
    for x, y in loader:
        batchfn(model, x, y, optimizer)


def do_trainbatch(model, x, y, optimizer):
    loss = ((model(x) - y) ** 2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def do_evalbatch(model, x, y, optimizer=None):
    print(((model(x) - y) ** 2).mean().item())
"""

AVERAGED_MODEL = """\
import copy

import torch


class Swag(torch.nn.Module):
    def __init__(self, base):
        super().__init__()
        self.mean = copy.deepcopy(base)
        self.base = base

    @torch.no_grad()
    def collect_model(self):
        for mine, theirs in zip(self.mean.parameters(), self.base.parameters()):
            mine.mul_(0.5).add_(theirs, alpha=0.5)
"""

HANDED_STEP = """\
import torch

from swag import Swag
from trainutils import do_epoch, do_evalbatch, do_trainbatch


def main():
    model = torch.nn.Sequential(torch.nn.Linear(4, 1), torch.nn.Dropout(0.1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    swagmodel = Swag(model)
    loader = [(torch.randn(2, 4), torch.randn(2, 1))]
    with torch.no_grad():
        model.eval()
        do_epoch(loader, do_evalbatch, model)
    for epoch in range(3):
        model.train()
        do_epoch(loader, do_trainbatch, model, optimizer=optimizer)
        swagmodel.collect_model()


if __name__ == "__main__":
    main()
"""


@pytest.mark.parametrize("batchfn, found", [
    ("do_trainbatch", []),  # the loop trains through the function it hands over
    ("do_evalbatch", [(15, 4, "GRD101")]),
])
def test_a_loop_handing_a_training_step_to_another_modules_function_trains(tmp_path, batchfn, found):
    unpackaged(tmp_path, {
        "trainutils.py": EPOCH_RUNNER,
        "swag.py": AVERAGED_MODEL,
        "train.py": HANDED_STEP.replace("do_epoch(loader, do_trainbatch,", f"do_epoch(loader, {batchfn},"),
    })
    assert lint(tmp_path / "train.py") == found


def test_a_loop_handing_a_training_step_to_a_function_of_its_module_trains(tmp_path):
    imports = "from swag import Swag\nfrom trainutils import do_epoch, do_evalbatch, do_trainbatch\n"
    local = EPOCH_RUNNER + AVERAGED_MODEL.replace("import copy\n\nimport torch\n", "import copy\n")
    source = HANDED_STEP.replace(imports, local)
    unpackaged(tmp_path, {"train.py": source})
    assert lint(tmp_path / "train.py") == []


MAIN_BLOCK_BAD_BUILD = """\
import torch


class Net(torch.nn.Module):
    def __init__(self, width, dropout_type, dropout):
        super().__init__()
        self.fc = torch.nn.Linear(4, width)
        self.drop = torch.nn.Dropout(dropout)

    def forward(self, x):
        return self.drop(self.fc(x))


def evaluate(model, loader):
    model.eval()
    for x in loader:
        print(model(x).argmax(1))


if __name__ == "__main__":
    model = Net(width=2, dropout=0.1)
    evaluate(model, [torch.randn(2, 4)])
"""


@pytest.mark.parametrize("build, found", [
    ("Net(width=2, dropout=0.1)", []),  # ``TypeError``: ``dropout_type`` is missing, evaluate never runs
    ("Net(2, dropout=0.1, kind=1)", []),  # a keyword ``__init__`` does not take
    ('Net(width=2, dropout_type="gal", dropout=0.1)', [(16, 4, "GRD101")]),
    ('Net(2, "gal", 0.1)', [(16, 4, "GRD101")]),
])
def test_a_main_block_building_a_class_of_its_module_with_wrong_arguments_runs_nothing_after(tmp_path, build, found):
    unpackaged(tmp_path, {"train.py": MAIN_BLOCK_BAD_BUILD.replace("Net(width=2, dropout=0.1)", build)})
    assert lint(tmp_path / "train.py") == found


def test_a_function_building_a_class_of_its_module_with_too_few_arguments_stops_there(tmp_path):
    source = MAIN_BLOCK_BAD_BUILD.replace(
        "def evaluate(model, loader):\n    model.eval()",
        "def evaluate(model, loader):\n    model = Net(2)\n    model.eval()",
    ).replace("Net(width=2, dropout=0.1)", 'Net(2, "gal", 0.1)')
    unpackaged(tmp_path, {"train.py": source})
    assert lint(tmp_path / "train.py") == []


GLOBAL_NET = """
    import torch
    from torch import nn


    class Sage(nn.Module):
        def __init__(self, dims):
            super().__init__()
            self.layer = nn.Linear(dims[0], dims[1])

        def forward(self, x):
            return torch.relu(self.layer(x))
"""

GLOBAL_MODEL_SCRIPT = """
    import torch
    from torch import nn
    from net import Sage

    HIDDEN_DIM = [4, 2]
    model = Sage(HIDDEN_DIM)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = [(torch.randn(8, 4), torch.randint(0, 2, (8,)))]


    def train():
        model.train()
        for epoch in range(3):
            for x, y in loader:
                loss = nn.functional.cross_entropy(model(x), y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            test()


    def test():
        model.eval()
        with torch.no_grad():
            print(model(loader[0][0]).argmax(1))


    if __name__ == "__main__":
        train()
"""


@pytest.mark.parametrize("net, found", [
    # a module global built from a class of another module with no layer that depends on the mode
    (GLOBAL_NET, []),
    (GLOBAL_NET.replace("nn.Linear(dims[0], dims[1])", "nn.Sequential(nn.Dropout(0.5), nn.Linear(dims[0], dims[1]))"),
     [(19, 8, "GRD103")]),
])
def test_a_module_global_model_of_a_mode_free_class_of_another_module_keeps_no_mode(tmp_path, net, found):
    # another chapter's model has dropout: not every model of the project is mode-free
    other = "from torch import nn\n\nNET = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))\n"
    unpackaged(tmp_path, {"net.py": net, "main.py": GLOBAL_MODEL_SCRIPT, "chapter2/other.py": other})
    assert [f for f in lint(tmp_path / "main.py") if f[2] == "GRD103"] == found


RENAMED_HELPERS = """
    import os

    import torch


    def mkdir(path):
        os.makedirs(path, exist_ok=True)


    def test_clf(model, loader):
        model.eval()
        correct = 0
        for x, y in loader:
            correct += (model(x).argmax(1) == y).sum().item()
        return correct
"""

OLD_NAME_CALLER = """
    import torch
    from utils import test_clf


    def main(model, loader):
        return test_clf(model, loader)


    if __name__ == "__main__":
        main(torch.load("classifier.pt"), [])
"""


@pytest.mark.parametrize("others, found", [
    # the caller imports the helper from ``utils``, a module of the project that binds no such name: it stops there
    ({"model/utils.py": "def to_categorical(y, n):\n    return y\n"}, []),
    # ... nor does any module or package of the project have that name
    ({}, []),
    # a ``utils`` that re-exports it: the call is of this helper
    ({"model/utils.py": "from pcd_utils import test_clf\n"}, [(13, 4, "GRD101")]),
])
def test_a_helper_mentioned_only_by_an_import_of_it_from_another_module_that_lacks_it(tmp_path, others, found):
    files = {"pcd_utils.py": RENAMED_HELPERS, "clf.py": OLD_NAME_CALLER,
             "pcdseg.py": "from pcd_utils import mkdir\n\nmkdir('out')\n", **others}
    unpackaged(tmp_path, files)
    assert [f for f in lint(tmp_path / "pcd_utils.py") if f[2] == "GRD101"] == found


NUMPY_NETWORK = """
    import numpy as np


    class MLP:
        def __init__(self, d, k):
            self.w = np.zeros((d, k))

        def __call__(self, x):
            self.x = x
            return x @ self.w

        def backward(self, grad):
            return self.x.T @ grad
"""

NUMPY_EVALUATION = """
    import numpy as np

    from model import MLP


    def evaluate(model, loader):
        correct = 0
        for x, y in loader:
            pred = model(x)
            correct += int((pred.argmax(1) == y).sum())
        return correct


    if __name__ == "__main__":
        print(evaluate(MLP(4, 2), [(np.zeros((2, 4)), np.zeros(2))]))
"""


@pytest.mark.parametrize("model, found", [
    # the network is written in NumPy, by a module that imports no torch: no autograd anywhere
    (NUMPY_NETWORK, []),
    # the module of the network imports torch: its models may be torch's
    ("import torch\n" + textwrap.dedent(NUMPY_NETWORK), [(8, 4, "GRD101")]),
    # no class of it has a backward of its own: nothing says it is a network written by hand
    (NUMPY_NETWORK.replace("def backward(self, grad)", "def gradient(self, grad)"), [(8, 4, "GRD101")]),
])
def test_a_module_without_torch_over_a_network_written_in_numpy_is_not_pytorch_code(tmp_path, model, found):
    unpackaged(tmp_path, {"model.py": model, "evaluation.py": NUMPY_EVALUATION})
    assert [f for f in lint(tmp_path / "evaluation.py") if f[2].startswith("GRD1")] == found


@pytest.mark.parametrize("layers, found", [
    # a module the network's module imports names torch only in a comment: it imports none
    ("# a plain list, where torch keeps a dict\nclass Layers(list):\n    pass\n", []),
    ("# a plain list, where torch keeps a dict\nimport torch\n\n\nclass Layers(list):\n    pass\n",
     [(8, 4, "GRD101")]),
])
def test_a_module_that_names_torch_only_in_a_comment_brings_no_torch(tmp_path, layers, found):
    network = "import layers\n" + textwrap.dedent(NUMPY_NETWORK)
    unpackaged(tmp_path, {"layers.py": layers, "model.py": network, "evaluation.py": NUMPY_EVALUATION})
    assert [f for f in lint(tmp_path / "evaluation.py") if f[2].startswith("GRD1")] == found


NORMALS = """
    import torch


    class Extractor:
        def normals(self, net, points):
            points.requires_grad_()
            out = net(points).sum()
            out.backward()
            return points.grad
"""

SOLVER = """
    import torch


    class Solver:
        def __init__(self, extractor):
            self.extractor = extractor

        @torch.no_grad()
        def solve(self, net, points):
            return self.extractor.normals(net, points)
"""


@pytest.mark.parametrize("models_init, importer, packaged, found", [
    # no module imports the extractor's, and nothing outside the project can:
    # the solver's extractor is another object
    ("", "", False, []),
    # a run-time import names only a module right in ``core/models``
    ("import importlib\n\n\ndef get(name):\n    return importlib.import_module('core.models.' + name)\n", "",
     False, []),
    ("import importlib\n\n\ndef get(name):\n    return importlib.import_module('core.models.utils.' + name)\n",
     "", False, [(8, 8, "GRD005")]),
    ("", "from core.models.utils.extract import Extractor\n", False, [(8, 8, "GRD005")]),
    # a package: code outside the project may make an ``Extractor`` and hand it to the solver
    ("", "", True, [(8, 8, "GRD005")]),
])
def test_a_method_call_on_another_object_reaches_a_class_only_from_a_module_some_module_imports(
        tmp_path, models_init, importer, packaged, found):
    make(tmp_path, {
        "core/models/utils/extract.py": NORMALS, "core/solver.py": importer + textwrap.dedent(SOLVER),
        "core/models/__init__.py": models_init,
    })
    if not packaged:
        (tmp_path / "setup.py").unlink()
    settings = Settings(project_root=str(tmp_path))
    assert [f for f in lint(tmp_path / "core/models/utils/extract.py", settings) if f[2] == "GRD005"] == found


def test_a_function_that_makes_an_ignite_trainer_trains():
    summary = project.summarize(ast.parse(textwrap.dedent("""
        from ignite.engine import create_supervised_evaluator, create_supervised_trainer


        def fit_model(model, loader, optimizer, loss):
            trainer = create_supervised_trainer(model, optimizer, loss)
            trainer.run(loader, max_epochs=2)
            return model


        def score(model, loader):
            return create_supervised_evaluator(model).run(loader).metrics
    """)))
    assert sorted(summary["t"]) == ["fit_model"]


@pytest.mark.parametrize("other, found", [
    # another module hands the evaluation a model it never switched: the loop may run it in training mode
    ("from evaluation import evaluate, build\n\nevaluate(build(), build(), [])\n", [(20, 4, "GRD102")]),
    ("import os\n", []),
])
def test_a_model_switched_by_name_in_every_caller_of_its_module_only(tmp_path, other, found):
    from tests.test_grd101_102_patterns import HANDED_IN_EVAL_MODE, USES
    source = HANDED_IN_EVAL_MODE.format(forward="global_model(x)", switch="global_model.eval()", trained="corrector",
                                        body=USES)
    make(tmp_path, {"evaluation.py": source, "other.py": other})
    assert [f for f in lint(tmp_path / "evaluation.py") if f[2] == "GRD102"] == found


@pytest.mark.parametrize("init, found", [
    # the package's __init__ imports a module the repository leaves out (its .gitignore may):
    # the author's copy has it, and a plain ``import models`` is not taken to fail
    ("from .model import Net\n", [(11, 4, "GRD101")]),
    # a package whose __init__ does not parse: the plain import raises SyntaxError
    ("from .nets import (Net\n", []),
])
def test_a_plain_import_stops_the_script_only_at_a_module_that_does_not_parse(tmp_path, init, found):
    imports = "import models\n    Net = WideNet = models.Net"
    make(tmp_path, {
        "models/nets.py": UNPARSABLE_NETS, "models/__init__.py": init,
        "evaluate.py": EVALUATE_IMPORTING.replace("{imports}", imports),
    })
    assert [f for f in lint(tmp_path / "evaluate.py") if f[2] == "GRD101"] == found


# a script whose main() reads a dataset it never built before it calls the
# evaluation: NameError first, so the loop never runs
CUT_OFF_CALLER = """
    import argparse

    import torch


    def test_epoch(model, loader):
        total = 0.0
        for x in loader:
            total += model(x).sum().item()
        return total


    def main(flags):
        test_set = [torch.randn(2, 4)]
        model = torch.nn.Linear(train_set.features, 2)
        test_epoch(model, test_set)


    if __name__ == "__main__":
        parser = argparse.ArgumentParser()
        main(parser.parse_args())
"""


@pytest.mark.parametrize("old, new, found", [
    ("", "", []),
    # the dataset built: the evaluation runs
    ("    test_set = [", "    train_set = test_set = [", [(8, 4, "GRD101")]),
    # read only in a branch: the evaluation may run
    ("    model = torch.nn.Linear(train_set.features, 2)",
     "    model = torch.nn.Linear(4, 2)\n    if flags.train:\n        print(train_set)", [(8, 4, "GRD101")]),
    # read only after the call
    ("    model = torch.nn.Linear(train_set.features, 2)\n    test_epoch(model, test_set)\n",
     "    model = torch.nn.Linear(4, 2)\n    test_epoch(model, test_set)\n    print(train_set)\n",
     [(8, 4, "GRD101")]),
])
def test_a_helper_whose_only_caller_stops_before_the_call_never_runs(tmp_path, old, new, found):
    script = textwrap.dedent(CUT_OFF_CALLER)
    if old:
        assert old in script
        script = script.replace(old, new, 1)
    unpackaged(tmp_path, {"eval.py": script})
    assert [f for f in lint(tmp_path / "eval.py") if f[2] == "GRD101"] == found


# --- a copy of another library carried in the project ------------------------

COPY_HELPERS = """
    import torch

    EXAMPLE_STEPS = 3


    def fit_epoch(net, batches, loss, optimizer):
        for x, y in batches:
            optimizer.zero_grad()
            loss(net(x), y).backward()
            optimizer.step()
        return score_batches(net, batches)


    def score_batches(net, batches):
        total = 0.0
        for x, y in batches:
            total += float(net(x).argmax(1).eq(y).sum())
        return total


    def validate(net, batches, loss):
        seen = 0.0
        for x, y in batches:
            seen += float(loss(net(x), y))
        return seen


    def fill_table(rows, width, table):
        table[:, 0::2] = torch.ones(rows, width // 2)
        table[:, 1::2] = torch.zeros(rows, width // 2)


    class Positions(torch.nn.Module):
        def __init__(self, rows, width, fixed=False):
            super().__init__()
            self.table = torch.nn.Embedding(rows, width)
            if fixed:
                fill_table(rows, width, self.table.weight)


    [print(EXAMPLE_STEPS) for _ in range(2)]
"""

COPY_USER = """
    import torch

    from vendor.d2l import torch as d2l

    net = torch.nn.Linear(4, 2)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    batches = [(torch.randn(2, 4), torch.tensor([0, 1]))]
    d2l.fit_epoch(net, batches, torch.nn.functional.cross_entropy, optimizer)
"""

EVERY_COPY_FINDING = [(16, 4, "GRD101"), (23, 4, "GRD101"), (29, 4, "GRD004"), (30, 4, "GRD004")]

#: a notebook of one code cell
NOTEBOOK = '{{"cells": [{{"cell_type": "code", "source": ["{code}\\n"]}}], "nbformat": 4}}'


@pytest.mark.parametrize("directory, user, copy, extra, found", [
    # the copy's validation helper and its table filler: nothing outside reaches them
    ("vendor/d2l", "", "", {}, [(16, 4, "GRD101")]),
    # the same module in a directory of the project's own
    ("vendor/tools", "", "", {}, EVERY_COPY_FINDING),
    # named outside: the project calls the helper
    ("vendor/d2l", "print(d2l.validate(net, batches, torch.nn.functional.cross_entropy))\n", "", {},
     [(16, 4, "GRD101"), (23, 4, "GRD101")]),
    # the project builds the copy's class
    ("vendor/d2l", "table = d2l.Positions(8, 4, fixed=True)\n", "", {},
     [(16, 4, "GRD101"), (29, 4, "GRD004"), (30, 4, "GRD004")]),
    # the copy's module builds it at its top level, which importing it runs
    ("vendor/d2l", "", "TABLE = Positions(8, 4, fixed=True)\n", {},
     [(16, 4, "GRD101"), (29, 4, "GRD004"), (30, 4, "GRD004")]),
    # a notebook that names none of it reaches none of it
    ("vendor/d2l", "", "", {"explore.ipynb": NOTEBOOK.format(code="d2l.fit_epoch(net, batches, loss, opt)")},
     [(16, 4, "GRD101")]),
    # a notebook that names the helper may call it
    ("vendor/d2l", "", "", {"explore.ipynb": NOTEBOOK.format(code="d2l.validate(net, batches, loss)")},
     [(16, 4, "GRD101"), (23, 4, "GRD101")]),
    # the copy's own notebook is the copy's example, as its own modules are
    ("vendor/d2l", "", "", {"vendor/d2l/demo.ipynb": NOTEBOOK.format(code="validate(net, batches, loss)")},
     [(16, 4, "GRD101")]),
])
def test_code_of_a_bundled_library_copy_runs_only_as_the_project_reaches_it(
    tmp_path, directory, user, copy, extra, found
):
    user_code = textwrap.dedent(COPY_USER).replace("vendor.d2l", directory.replace("/", "."))
    copied = textwrap.dedent(COPY_HELPERS) + copy
    unpackaged(tmp_path, {f"{directory}/torch.py": copied, "main.py": user_code + user, **extra})
    (tmp_path / "vendor" / "__init__.py").write_text("", encoding="utf-8")
    assert lint(tmp_path / directory / "torch.py") == found


def test_a_library_the_project_packages_itself_is_no_bundled_copy(tmp_path):
    user = textwrap.dedent(COPY_USER).replace("vendor.d2l", "d2l")
    copied = textwrap.dedent(COPY_HELPERS) + "TABLE = Positions(8, 4, fixed=True)\n"
    make(tmp_path, {"src/d2l/torch.py": copied, "main.py": user})
    (tmp_path / "setup.py").write_text(
        "from setuptools import setup\nsetup(name='d2l', packages=['d2l'], package_dir={'': 'src'})\n", encoding="utf-8"
    )
    assert lint(tmp_path / "src/d2l/torch.py") == EVERY_COPY_FINDING


SIMHASH = """
    from collections import defaultdict

    import numpy as np
    import torch
    import torch.nn as nn
    from .base import Bonus


    class SimHash(Bonus, nn.Module):
        def __init__(self, dim, bits, preprocess=None):
            super().__init__()
            self.preprocess = preprocess or nn.Identity()
            self.A = torch.normal(0, 1, (bits, dim))
            self.table = defaultdict(lambda: 1)

        def forward(self, obs):
            hashes = torch.sign(self.A @ self.preprocess(obs).T).T.numpy()
            bonuses = torch.zeros((obs.shape[0],))
            for i in range(obs.shape[0]):
                bonuses[i] += 1.0 / np.sqrt(self.table[tuple(hashes[i].tolist())])
            return bonuses.to("cpu")

        def forward_np(self, obs):
            return self.forward(obs).cpu().numpy()
"""


@pytest.mark.parametrize("change, found", [
    (None, []),
    # an item that may hold the model's graph: the output may require grad
    (("1.0 / np.sqrt(self.table[tuple(hashes[i].tolist())])", "self.preprocess(obs)[i].sum()"), [(24, 15, "GRD006")]),
    (("            return bonuses.to",
      "            bonuses.add_(self.preprocess(obs).sum())\n            return bonuses.to"), [(25, 15, "GRD006")]),
])
def test_numpy_of_a_forward_that_returns_a_new_tensor_of_numbers(tmp_path, change, found):
    # the forward returns a tensor torch made and filled with NumPy numbers: no graph
    source = SIMHASH.replace(*change) if change else SIMHASH
    assert change is None or source != SIMHASH
    make(tmp_path, {
        "pkg/base.py": "class Bonus(object):\n    def update(self, obs):\n        raise NotImplementedError\n",
        "pkg/simhash.py": source,
        "pkg/plot.py": "class Plotter:\n    def density(self, obs):\n        return self.model.forward_np(obs)\n",
        "run.py": "from pkg.plot import Plotter\n\nPlotter().density(None)\n",
    })
    assert lint(tmp_path / "pkg/simhash.py") == found


@pytest.mark.parametrize("report, found", [
    # the training script reads ``loss.data[0]``: the project is code for 0.3
    ("def report(loss):\n    print(loss.data[0])\n", []),
    ("def report(loss):\n    print(loss.item())\n", [(9, 4, "GRD101"), (10, 40, "GRD003")]),
])
def test_code_for_0_3_anywhere_in_the_project_says_which_release_it_runs_on(tmp_path, report, found):
    make(tmp_path, {"README.md": "- torch 0.3+\n", "utils.py": REPACKAGE_HIDDEN.replace(
        "type(h) == Variable", "isinstance(h, torch.Tensor)"), "evaluate.py": VOLATILE_RNN_EVALUATION,
        "train.py": report, "main.py": "from evaluate import evaluate\n\nevaluate(None, [], None)\n"})
    assert [f for f in lint(tmp_path / "evaluate.py") if f[2] in ("GRD003", "GRD101")] == found


@pytest.mark.parametrize("change, found", [
    # validation switched its model to eval mode; the optional head it also
    # runs, built from the features' size, has no layer that depends on the mode
    (None, []),
    (("nn.LeakyReLU(0.01)", "nn.Dropout(0.2)"), [(29, 4, "GRD102")]),
    # the head built from another model's output: it may hold that model
    (("Head(in_features=feat.shape[1])", "Head(in_features=feat)"), [(29, 4, "GRD102")]),
])
def test_an_optional_head_beside_a_model_switched_to_eval(tmp_path, change, found):
    # the classes written in the module that trains them: each is read on its own
    training = optional_head_module()
    source = training.replace(*change) if change else training
    assert change is None or source != training
    make(tmp_path, {"train.py": source})
    assert [f for f in lint(tmp_path / "train.py") if f[2] == "GRD102"] == found


CBOW_MODEL = """
    import torch
    from torch import nn
    from torchinfo import summary


    class CBOW(nn.Module):
        def __init__(self, vocab_size, dim):
            super().__init__()
            self.embedding = nn.Embedding(vocab_size, dim)
            self.linear = nn.Linear(dim, vocab_size)

        def forward(self, context, target):
            out = self.linear(self.embedding(context).mean(1))
            return nn.functional.cross_entropy(out, target)


    if __name__ == "__main__":
        summary(CBOW(10, 4))
"""

CBOW_TRAINING = """
    import torch
    from torch.nn.parallel import DistributedDataParallel as DDP

    from cbow import CBOW


    def evaluate(model, loader):
        model.eval()
        total = 0.0
        with torch.no_grad():
            for context, target in loader:
                total += model(context, target).item()
        return total


    def train(loader, val_loader, distributed, rank):
        model = CBOW(1000, 64)
        model = model.to("cpu")
        if distributed:
            model = DDP(model, device_ids=[rank])
        optimizer = torch.optim.AdamW(model.parameters())
        for epoch in range(3):
            model.train()
            for i, (context, target) in enumerate(loader):
                optimizer.zero_grad()
                loss = model(context, target)
                loss.backward()
                optimizer.step()
                if i % 100 == 0:
                    print(evaluate(model, val_loader))


    if __name__ == "__main__":
        train([], [], False, 0)
"""


@pytest.mark.parametrize("change, found", [
    # an embedding and a linear layer, wrapped whole for distributed training:
    # evaluation leaves it in eval mode, which changes nothing
    (None, []),
    (("self.linear = nn.Linear(dim, vocab_size)",
      "self.linear = nn.Sequential(nn.Dropout(0.1), nn.Linear(dim, vocab_size))"), [(30, 22, "GRD103")]),
])
def test_a_mode_free_model_wrapped_for_distributed_training(tmp_path, change, found):
    model = CBOW_MODEL.replace(*change) if change else CBOW_MODEL
    assert change is None or model != CBOW_MODEL
    make(tmp_path, {"cbow.py": model, "train.py": CBOW_TRAINING})
    assert [f for f in lint(tmp_path / "train.py") if f[2] == "GRD103"] == found


@pytest.mark.parametrize("change, found", [
    # the head's class in another module, beside a model with batch norm: read
    # by its own code, it has no layer that depends on the mode
    (None, []),
    (("nn.LeakyReLU(0.01)", "nn.Dropout(0.2)"), [(10, 4, "GRD102")]),
    # a layer of another class, or one a function of the module builds
    (("nn.LeakyReLU(0.01)", "Net()"), [(10, 4, "GRD102")]),
    (("nn.LeakyReLU(0.01)", "act()"), [(10, 4, "GRD102")]),
])
def test_an_optional_head_of_another_module_read_by_its_own_code(tmp_path, change, found):
    layers = OPTIONAL_HEAD_MODELS.replace(*change) if change else OPTIONAL_HEAD_MODELS
    assert change is None or layers != OPTIONAL_HEAD_MODELS
    layers += "\n\n    def act():\n        return nn.Dropout(0.5)\n"
    make(tmp_path, {"layers.py": layers, "train.py": OPTIONAL_HEAD_TRAINING})
    assert [f for f in lint(tmp_path / "train.py") if f[2] == "GRD102"] == found


GRAD_OFF_FOR_GOOD = """
    import torch


    class Reconstructor(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.set_grad_enabled(False)
            self.body = torch.nn.Linear(4, 4)

        def forward(self, x):
            return self.body(x)
"""

RECONSTRUCTING = """
    import torch
    from model import Reconstructor


    def reconstruct_all(loader):
        model = Reconstructor()
        model.eval()
        volumes = []
        for images in loader:
            volume = model(images)
            volumes.append(volume.cpu().numpy())
        return volumes


    if __name__ == "__main__":
        reconstruct_all([torch.randn(2, 4)])
"""


@pytest.mark.parametrize("change, found", [
    # building the model turns grad off for the rest of the process
    (None, []),
    (("torch.set_grad_enabled(False)", "torch.set_grad_enabled(True)"), [(9, 4, "GRD101"), (11, 23, "GRD006")]),
    # only when a flag says so, or only while the constructor runs
    (("torch.set_grad_enabled(False)", "if self.training:\n                torch.set_grad_enabled(False)"),
     [(9, 4, "GRD101"), (11, 23, "GRD006")]),
    (("            torch.set_grad_enabled(False)\n            self.body = torch.nn.Linear(4, 4)",
      "            with torch.set_grad_enabled(False):\n                self.body = torch.nn.Linear(4, 4)"),
     [(9, 4, "GRD101"), (11, 23, "GRD006")]),
])
def test_a_model_whose_constructor_turns_grad_off_for_good_is_silent(tmp_path, change, found):
    model = GRAD_OFF_FOR_GOOD.replace(*change) if change else GRAD_OFF_FOR_GOOD
    make(tmp_path, {"model.py": model, "reconstruct.py": RECONSTRUCTING})
    assert lint(tmp_path / "reconstruct.py") == found


def _notebook(*cells: str) -> str:
    """A notebook of code cells, each given as its lines."""
    import json

    return json.dumps({"cells": [{"cell_type": "code", "source": cell.splitlines(True)} for cell in cells],
                       "nbformat": 4})


@pytest.mark.parametrize("cells, found", [
    # the notebook imports other things and runs the project's scripts: nothing of it imports the package's module
    (("%matplotlib inline\nimport os\nimport subprocess", "!pip install torch\nsubprocess.run(['python', 'main.py'])"),
     []),
    # it imports the module, or its package's name
    (("import os", "from pkg.helpers import evaluate"), [(7, 4, "GRD101")]),
    (("from pkg import helpers",), [(7, 4, "GRD101")]),
    # it runs a file or imports by a name given at run time
    (("%run pkg/helpers.py",), [(7, 4, "GRD101")]),
    (("import importlib\nmodule = importlib.import_module(name)",), [(7, 4, "GRD101")]),
    # a cell that is no Python, or is left half written: its words say what it may import
    (("%%bash\nls -l", "split = 0.7\ndataset = "), []),
    (("%%bash\npython -c 'import pkg.helpers'",), [(7, 4, "GRD101")]),
    (("import pkg.\nhelpers",), [(7, 4, "GRD101")]),
])
def test_a_notebook_that_imports_none_of_a_package_module_does_not_run_it(tmp_path, cells, found):
    unpackaged(tmp_path, {"pkg/helpers.py": ORPHAN_HELPERS, "main.py": ORPHAN_MAIN.replace("{line}", "")})
    (tmp_path / "run_all.ipynb").write_text(_notebook(*cells), encoding="utf-8")
    assert [f for f in lint(tmp_path / "pkg/helpers.py") if f[2] == "GRD101"] == found


ENSEMBLE = """
    import torch
    from torch import nn


    class Ensemble:
        def __init__(self, n):
            self.models = [nn.Linear(4, 1) for _ in range(n)]
            self.optimizers = [torch.optim.SGD(m.parameters(), lr=0.1) for m in self.models]

        def train_step(self, x, y):
            total = 0.0
            for model, optimizer in zip(self.models, self.optimizers):
                optimizer.zero_grad()
                loss = nn.functional.mse_loss(model(x), y)
                loss.backward()
                optimizer.step()
                total += loss.item()
            return total / len(self.models)
"""

RUN_ENSEMBLE = """
    import torch
    from torch import nn

    from pkg.ensembles import Ensemble


    def run(data):
        model = nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        model_losses = []
        for x, y in data:
            optimizer.zero_grad()
            loss = nn.functional.mse_loss(model(x), y)
            loss.backward()
            optimizer.step()
            model_losses.append(loss.item())
        ensemble = Ensemble(3)
        ensemble_losses = []
        for x, y in data:
            loss = ensemble.train_step(x, y)
            ensemble_losses.append(loss)
        print(model_losses[-1], ensemble_losses[-1])
"""


@pytest.mark.parametrize("change, expected", [
    # ``loss`` was spent by ``.backward()`` in the first loop only; the second binds it to
    # what another module's training step returns, a number
    (None, []),
    # the second loop spends its own loss too: a graph kept each step
    (("            loss = ensemble.train_step(x, y)\n",
      "            loss = ensemble.train_step(x, y)\n            loss = nn.functional.mse_loss(model(x), y)\n"
      "            loss.backward()\n"),
     [(23, 8, "GRD104")]),
])
def test_a_loss_name_spent_only_in_an_earlier_loop(tmp_path, change, expected):
    caller = RUN_ENSEMBLE.replace(*change) if change else RUN_ENSEMBLE
    make(tmp_path, {"pkg/ensembles.py": ENSEMBLE, "pkg/run.py": caller})
    assert lint(tmp_path / "pkg/run.py") == expected


GENERATOR_CLASS = """
    import torch


    class LanguageModel:
        def __init__(self):
            self.model = torch.nn.Linear(4, 4)

        def generate(self, x, steps):
            self.model.eval()
            for _ in range(steps):
                x = self.model(x)
            return x
"""

GENERATE_BY_NAME = """
    import importlib
    import sys

    from pkg.lm import LanguageModel

    if __name__ == "__main__":
        plugin = importlib.import_module(sys.argv[1])
        print(LanguageModel().generate(None, 3))
"""


@pytest.mark.parametrize("name, packaged, found", [
    # a name an import can spell: the script's run-time import may load it
    ("lm_v1.py", False, [(10, 8, "GRD101")]),
    ("lm_v1.py", True, [(10, 8, "GRD101")]),
    # ``lm-v1.py``, a copy kept aside: no import can name it, and run as a script it
    # only defines its class
    ("lm-v1.py", False, []),
    ("lm-v1.py", True, []),
])
def test_a_module_whose_name_no_import_can_spell_runs_nothing_it_defines(tmp_path, name, packaged, found):
    files = {"pkg/lm.py": GENERATOR_CLASS, f"pkg/{name}": GENERATOR_CLASS, "main.py": GENERATE_BY_NAME}
    make(tmp_path, files) if packaged else unpackaged(tmp_path, files)
    assert lint(tmp_path / "pkg" / name) == found


UNPARSABLE_IMPORTER = """
    print "training with keras"
    from keras.utils import np_utils
    import torch.utils.data as {name}
"""


@pytest.mark.parametrize("name, found", [
    # a module that does not parse imports ``utils`` and ``data`` only as parts of other packages
    ("loaders", []),
    # it imports a module named like the project's (``import data``): it may import it
    ("loaders\nimport utils", [(7, 4, "GRD101")]),
])
def test_an_unparsable_module_importing_another_packages_utils_imports_none_of_the_project(tmp_path, name, found):
    unpackaged(tmp_path, {
        "utils.py": ORPHAN_HELPERS, "main.py": ORPHAN_MAIN.replace("{line}", ""),
        "old_train.py": UNPARSABLE_IMPORTER.replace("{name}", name),
    })
    assert [f for f in lint(tmp_path / "utils.py") if f[2] == "GRD101"] == found


COPIED_EVALUATE = """
    import torch


    def evaluate_a(model, loader):
        model.eval()
        total = 0.0
        for x in loader:
            total += model(x).sum().item()
        return total


    def evaluate_b(model, loader):
        model.eval()
        total = 0.0
        for x in loader:
            total += model(x).mean().item()
        return total
"""

COPIED_TRAINER = """
    from evaluate import evaluate_a, evaluate_b


    class TrainerA:
        def __init__(self, model):
            self.model = model

        def run(self, loader):
            return evaluate_a(self.model, loader)


    class TrainerB:
        def __init__(self, model):
            self.model = model

        def run(self, loader):
            return evaluate_b(self.model, loader)
"""

TRAIN_WITH = """
    import torch

    from trainer import {imports}

    if __name__ == "__main__":
        print({name}(torch.nn.Linear(4, 2)).run([torch.randn(1, 4)]))
"""


@pytest.mark.parametrize("imports, korea, found", [
    # each copy of the project runs its own trainer: ``korea/`` only ``TrainerA``, whose
    # ``evaluate_a`` is reported; its ``TrainerB`` is made by nothing that imports its module
    ("TrainerA", "TrainerA", [(7, 4, "GRD101")]),
    # its own script runs ``TrainerB`` instead: ``evaluate_b`` runs, ``evaluate_a`` does not
    ("TrainerB", "TrainerB", [(15, 4, "GRD101")]),
    # imported beside the one it makes, and never made itself
    ("TrainerA, TrainerB", "TrainerA", [(7, 4, "GRD101")]),
])
def test_a_class_no_importer_of_its_module_uses_runs_nothing(tmp_path, imports, korea, found):
    unpackaged(tmp_path, {
        "korea/evaluate.py": COPIED_EVALUATE, "korea/trainer.py": COPIED_TRAINER,
        "korea/train_korea.py": TRAIN_WITH.replace("{imports}", imports).replace("{name}", korea),
        "germany/evaluate.py": COPIED_EVALUATE, "germany/trainer.py": COPIED_TRAINER,
        "germany/train_germany.py": TRAIN_WITH.replace("{imports}", "TrainerB").replace("{name}", "TrainerB"),
    })
    for init in tmp_path.rglob("__init__.py"):
        init.unlink()  # directories of scripts, each run from its own directory
    assert lint(tmp_path / "korea/evaluate.py") == found


CHOSEN_BY_A_FLAG = """
    import torch

    model = torch.nn.Linear(4, 2)
    data = [torch.randn(1, 4)]


    def test_mlp(model, data):
        model.eval()
        correct = 0
        for x in data:
            correct += int(model(x).argmax(1))
        return correct


    def test_gnn(model, data):
        model.eval()
        correct = 0
        with torch.no_grad():
            for x in data:
                correct += int(model(x).argmax(1))
        return correct


    use_mlp = False
    test = test_mlp if use_mlp else test_gnn

    if __name__ == "__main__":
        print(test(model, data))
"""


@pytest.mark.parametrize("change, found", [
    # the flag that picks ``test_mlp`` is bound once, to ``False``: it never runs
    (None, []),
    # a flag that may be true
    (("    use_mlp = False\n", "    use_mlp = len(data) > 1\n"), [(10, 4, "GRD101")]),
    # named elsewhere too
    (("        print(test(model, data))\n", "        print(test(model, data), test_mlp)\n"), [(10, 4, "GRD101")]),
])
def test_a_function_chosen_only_by_a_flag_set_off_never_runs(tmp_path, change, found):
    source = CHOSEN_BY_A_FLAG.replace(*change) if change else CHOSEN_BY_A_FLAG
    unpackaged(tmp_path, {"main.py": source})
    assert [f for f in lint(tmp_path / "main.py") if f[2] == "GRD101"] == found


# --- a model made by a factory that imports its class at run time -----------------

RUN_TIME_FACTORY = """
    import importlib


    def create_model(opt):
        module = importlib.import_module("models." + opt.model + "_model")
        return getattr(module, opt.model.upper() + "Model")(opt)
"""

WRAPPER_DECODING_WITHOUT_GRAD = """
    import torch

    from models import networks


    class VAEModel:
        def __init__(self, opt):
            self.net = networks.VAE()

        def forward(self):
            self.out = self.net(self.input)

        def eval(self):
            self.net.eval()

        def decoder(self, z):
            with torch.no_grad():
                return self.net.decode(z)
"""

NETWORKS = """
    import torch


    class VAE(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.dec = torch.nn.Linear(4, 8)

        def decode(self, z):
            return self.dec(z)

        def forward(self, x):
            return self.decode(x)
"""

DECODES_WITH_A_MADE_MODEL = """
    import argparse

    import torch

    from models import create_model


    if __name__ == "__main__":
        parser = argparse.ArgumentParser()
        parser.add_argument("--model", default="vae")
        opt = parser.parse_args()
        model = create_model(opt)
        model.eval()
        for z in torch.randn(10, 4):
            x = model.decoder(z)
            print(x.data.numpy())
"""


@pytest.mark.parametrize("change, expected", [
    # the model the factory makes runs its decoder under no_grad itself
    (None, []),
    # the wrapper's decoder keeps grad on
    (("            with torch.no_grad():\n                return self.net.decode(z)\n",
      "            return self.net.decode(z)\n"), [(14, 4, "GRD101")]),
])
def test_a_method_of_a_model_a_run_time_factory_makes_that_turns_grad_off(tmp_path, change, expected):
    wrapper = WRAPPER_DECODING_WITHOUT_GRAD.replace(*change) if change else WRAPPER_DECODING_WITHOUT_GRAD
    make(tmp_path, {
        "models/__init__.py": RUN_TIME_FACTORY, "models/vae_model.py": wrapper, "models/networks.py": NETWORKS,
        "decode.py": DECODES_WITH_A_MADE_MODEL,
    })
    assert [f for f in lint(tmp_path / "decode.py") if f[2] == "GRD101"] == expected


# --- a plain object every caller hands over as the model --------------------------

HANDS_A_PLAIN_UPSAMPLER = """
    import torch
    import torch.nn.functional as F


    class BicubicSR:
        def __init__(self, factor=2):
            self.factor = factor

        def __call__(self, image):
            return F.interpolate(image, scale_factor=self.factor, mode="bicubic")

        def to(self, device):
            return self

        def eval(self):
            return self


    def evaluate(model, loader):
        model.eval()
        scores = []
        for lr, hr in loader:
            sr = model(lr)
            scores.append(F.mse_loss(sr, hr).item())
        return scores


    def main():
        model = BicubicSR(factor=2)
        model = model.to("cpu")
        print(evaluate(model, [(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 8, 8))]))


    if __name__ == "__main__":
        main()
"""


@pytest.mark.parametrize("change, expected", [
    # every caller hands over an instance of a plain class: no weights, no graph
    (None, []),
    # a torch module
    ((("    class BicubicSR:\n", "    class BicubicSR(torch.nn.Module):\n"),
      ("            self.factor = factor\n",
       "            super().__init__()\n            self.factor = factor\n"
       "            self.refine = torch.nn.Conv2d(1, 1, 3)\n")),
     [(24, 4, "GRD101")]),
])
def test_a_plain_instance_every_caller_hands_over_is_no_model(tmp_path, change, expected):
    make(tmp_path, {"bicubic.py": changed(HANDS_A_PLAIN_UPSAMPLER, change or ())})
    assert [f for f in lint(tmp_path / "bicubic.py") if f[2] == "GRD101"] == expected


def test_a_run_time_factory_at_the_root_may_make_any_class_of_the_project(tmp_path):
    make(tmp_path, {
        "factory.py": RUN_TIME_FACTORY, "models/vae_model.py": WRAPPER_DECODING_WITHOUT_GRAD,
        "models/networks.py": NETWORKS,
        "decode.py": DECODES_WITH_A_MADE_MODEL.replace("from models import", "from factory import"),
    })
    assert [f for f in lint(tmp_path / "decode.py") if f[2] == "GRD101"] == []
