"""End-to-end: the real ``flake8`` command with the plugin installed.

Every test runs ``python -m flake8`` in a subprocess with ``cwd=tmp_path`` and
asserts on the exact lines flake8 prints (``path:line:col: CODE message``;
flake8 prints our 0-based column plus one).  ``--isolated`` keeps the user's
and the repository's configuration out, except in the tests about config files.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import List, Optional

import pytest

from flake8_gradmode import __version__
from flake8_gradmode.engine import check

# --- the messages, exactly as the plugin words them -------------------------

NO_GRAD_UNCALLED = (
    "GRD001 `torch.no_grad` is used as a context manager without calling it and raises TypeError; "
    "write `torch.no_grad()`"
)


def inplace(method: str, param: str) -> str:
    return (
        f"GRD004 in-place `{method}` on parameter `{param}` while grad is enabled raises RuntimeError; "
        "do it under `with torch.no_grad():`"
    )


def backward(written: str) -> str:
    return (
        f"GRD005 `{written}()` on a value computed with grad disabled raises RuntimeError; "
        "compute it with grad enabled (outside the block, or under `torch.enable_grad()`)"
    )


# --- helpers ----------------------------------------------------------------


def src(code: str) -> str:
    return textwrap.dedent(code).lstrip("\n")


def write(directory: Path, name: str, code: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(src(code), encoding="utf-8")
    return path


def flake8(cwd: Path, *args: str, stdin: Optional[str] = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "flake8", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # flake8 prints a traceback on stderr when a plugin raises; none ever should.
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def lines(proc: subprocess.CompletedProcess) -> List[str]:
    return proc.stdout.splitlines()


# --- sources used by several tests -------------------------------------------

# Clean for pycodestyle and pyflakes: the only findings are ours.
TWO_BUGS = """
    import torch

    net = torch.nn.Linear(3, 3)
    with torch.no_grad:
        out = net(torch.zeros(1, 3))
    net.bias.zero_()
    print(out)
"""

NOQA = """
    import torch

    layer = torch.nn.Linear(2, 2)
    layer.weight.fill_(1.0)  # noqa
    layer.bias.zero_()  # noqa: GRD004
    layer.weight.zero_()  # noqa: E501
    layer.bias.fill_(0.0)  # noqa: GRD001
    layer.weight.normal_()  # noqa: GRD
    layer.bias.uniform_()  # noqa:E501,GRD004
    layer.weight.copy_(layer.bias)
"""

USER_DECORATOR = """
    import torch

    from helpers import frozen


    @frozen
    def train_step(model, batch):
        loss = model(batch).sum()
        loss.backward()
        return loss


    print(train_step(torch.nn.Linear(2, 1), torch.ones(3, 2)))
"""


# --- output format ------------------------------------------------------------


def test_exact_output_for_grd001_and_grd004(tmp_path: Path) -> None:
    write(tmp_path, "train.py", TWO_BUGS)
    proc = flake8(tmp_path, "--isolated", "train.py")
    assert lines(proc) == [
        f"train.py:4:6: {NO_GRAD_UNCALLED}",
        f"train.py:6:1: {inplace('zero_', 'net.bias')}",
    ]
    assert proc.returncode == 1
    assert proc.stderr == ""


def test_printed_column_is_engine_column_plus_one(tmp_path: Path) -> None:
    code = src(
        """
        import torch


        class Head(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.scale = torch.nn.Parameter(torch.ones(1))

            def reset(self):
                self.scale.fill_(1.0)


        def step(model, x):
            with torch.no_grad():
                y = model(x).sum()
                y.backward()
        """
    )
    (tmp_path / "head.py").write_text(code, encoding="utf-8")
    expected = [f"head.py:{v.line}:{v.col + 1}: {v.code} {v.message}" for v in check(code)]
    assert [e.split(":")[1:3] for e in expected] == [["10", "9"], ["16", "9"]]
    assert lines(flake8(tmp_path, "--isolated", "--select=GRD", "head.py")) == expected


def test_clean_file_exits_zero(tmp_path: Path) -> None:
    write(
        tmp_path,
        "ok.py",
        """
        import torch

        net = torch.nn.Linear(3, 3)
        with torch.no_grad():
            net.bias.zero_()
        """,
    )
    proc = flake8(tmp_path, "--isolated", "ok.py")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


# --- noqa -------------------------------------------------------------------


def test_noqa(tmp_path: Path) -> None:
    write(tmp_path, "noqa.py", NOQA)
    assert lines(flake8(tmp_path, "--isolated", "noqa.py")) == [
        f"noqa.py:6:1: {inplace('zero_', 'layer.weight')}",  # noqa: E501 does not cover GRD004
        f"noqa.py:7:1: {inplace('fill_', 'layer.bias')}",  # noqa: GRD001 does not cover GRD004
        f"noqa.py:10:1: {inplace('copy_', 'layer.weight')}",
    ]


def test_disable_noqa_shows_everything(tmp_path: Path) -> None:
    write(tmp_path, "noqa.py", NOQA)
    found = lines(flake8(tmp_path, "--isolated", "--disable-noqa", "--select=GRD", "noqa.py"))
    assert [line.split(": ")[0] for line in found] == [f"noqa.py:{n}:1" for n in range(4, 11)]


# --- stdin --------------------------------------------------------------------


def test_stdin_with_display_name(tmp_path: Path) -> None:
    proc = flake8(tmp_path, "--isolated", "-", "--stdin-display-name=model.py", stdin=src(TWO_BUGS))
    assert lines(proc) == [
        f"model.py:4:6: {NO_GRAD_UNCALLED}",
        f"model.py:6:1: {inplace('zero_', 'net.bias')}",
    ]
    assert proc.returncode == 1


def test_stdin_without_display_name(tmp_path: Path) -> None:
    proc = flake8(tmp_path, "--isolated", "--select=GRD", "-", stdin=src(TWO_BUGS))
    assert [line.split(": ")[0] for line in lines(proc)] == ["stdin:4:6", "stdin:6:1"]


# --- config files ---------------------------------------------------------------


def test_extend_ignore_in_setup_cfg(tmp_path: Path) -> None:
    write(tmp_path, "train.py", TWO_BUGS)
    (tmp_path / "setup.cfg").write_text("[flake8]\nextend-ignore = GRD004\n", encoding="utf-8")
    proc = flake8(tmp_path, "train.py")
    # without the config file both are reported (test_exact_output_for_grd001_and_grd004)
    assert lines(proc) == [f"train.py:4:6: {NO_GRAD_UNCALLED}"]


def test_per_file_ignores_in_config(tmp_path: Path) -> None:
    write(tmp_path, "train.py", TWO_BUGS)
    write(tmp_path, "scripts/init.py", TWO_BUGS)
    (tmp_path / ".flake8").write_text(
        "[flake8]\nper-file-ignores =\n    scripts/*.py: GRD004\n", encoding="utf-8"
    )
    found = lines(flake8(tmp_path, "--select=GRD", "train.py", "scripts/init.py"))
    assert sorted(line.split(": ")[0] + " " + line.split(": ")[1][:6] for line in found) == [
        "scripts/init.py:4:6 GRD001",
        "train.py:4:6 GRD001",
        "train.py:6:1 GRD004",
    ]


# --- parallel -------------------------------------------------------------------

FILES = {
    "a.py": TWO_BUGS,
    "b.py": NOQA,
    "c.py": """
        import torch

        model = torch.nn.Linear(4, 1)
        with torch.no_grad():
            loss = model(torch.ones(2, 4)).sum()
            loss.backward()
    """,
    "d.py": """
        import torch

        w = torch.randn(3, 2, requires_grad=True)
        w[:, 0] = 0.0
        for p in torch.nn.Linear(2, 2).parameters():
            p -= 0.1
    """,
    "pkg/e.py": """
        import torch as t
        from torch import inference_mode as im

        with im:
            pass
        with t.nograd():
            pass
    """,
    "pkg/clean.py": """
        x = 1
    """,
}


def test_jobs_2_gives_the_same_findings_as_jobs_1(tmp_path: Path) -> None:
    for name, code in FILES.items():
        write(tmp_path, name, code)
    names = sorted(FILES)
    serial = sorted(lines(flake8(tmp_path, "--isolated", "--select=GRD", "-j", "1", *names)))
    parallel = sorted(lines(flake8(tmp_path, "--isolated", "--select=GRD", "-j", "2", *names)))
    assert parallel == serial
    assert [line.split(": ")[0] + " " + line.split(": ")[1][:6] for line in serial] == [
        "a.py:4:6 GRD001",
        "a.py:6:1 GRD004",
        "b.py:10:1 GRD004",
        "b.py:6:1 GRD004",
        "b.py:7:1 GRD004",
        "c.py:6:5 GRD005",
        "d.py:4:1 GRD004",
        "d.py:6:5 GRD004",
        "pkg/e.py:4:6 GRD001",
        "pkg/e.py:6:6 GRD001",
    ]


def test_jobs_2_passes_plugin_options_to_workers(tmp_path: Path) -> None:
    write(tmp_path, "step.py", USER_DECORATOR)
    write(tmp_path, "other.py", TWO_BUGS)
    found = lines(
        flake8(
            tmp_path,
            "--isolated",
            "--select=GRD",
            "-j",
            "2",
            "--gradmode-no-grad-decorators=frozen",
            "step.py",
            "other.py",
        )
    )
    assert f"step.py:9:5: {backward('loss.backward')}" in found
    assert len(found) == 3


# --- plugin registration ----------------------------------------------------------


def test_version_lists_the_plugin(tmp_path: Path) -> None:
    proc = flake8(tmp_path, "--version")
    assert proc.returncode == 0
    # flake8 wraps the plugin list; compare with whitespace normalised
    flat = " ".join(proc.stdout.split())
    assert f"flake8-gradmode: {__version__}" in flat


def test_require_plugins(tmp_path: Path) -> None:
    write(tmp_path, "ok.py", "x = 1\n")
    proc = flake8(tmp_path, "--isolated", "--require-plugins", "flake8-gradmode", "ok.py")
    assert (proc.returncode, proc.stdout) == (0, "")
    # the check bites: a missing plugin fails the run
    required = "flake8-gradmode,no-such-plugin-xyz"
    missing = subprocess.run(
        [sys.executable, "-m", "flake8", "--isolated", "--require-plugins", required, "ok.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode != 0
    assert "no-such-plugin-xyz" in missing.stdout + missing.stderr


def test_select_grd_shows_only_our_codes(tmp_path: Path) -> None:
    write(
        tmp_path,
        "noisy.py",
        """
        import os
        import torch
        net = torch.nn.Linear(3,3)
        with torch.no_grad :
            out=net(torch.zeros(1, 3))
        net.weight.normal_()   # a comment that makes this line much longer than the seventy-nine characters
        """,
    )
    everything = lines(flake8(tmp_path, "--isolated", "noisy.py"))
    others = {line.split(": ")[1].split()[0] for line in everything} - {"GRD001", "GRD004"}
    assert {"F401", "E231", "E501"} <= others  # the noise is there ...
    ours = [
        "noisy.py:4:6: GRD001 `torch.no_grad` is used as a context manager without calling it "
        "and raises TypeError; write `torch.no_grad()`",
        f"noisy.py:6:1: {inplace('normal_', 'net.weight')}",
    ]
    assert [line for line in everything if ": GRD" in line] == ours
    # ... and --select GRD removes it
    assert lines(flake8(tmp_path, "--isolated", "--select", "GRD", "noisy.py")) == ours


def test_extend_ignore_on_command_line(tmp_path: Path) -> None:
    write(tmp_path, "noisy.py", "import os\nimport torch\nwith torch.no_grad:\n    pass\n")
    found = lines(flake8(tmp_path, "--isolated", "--extend-ignore=GRD001", "noisy.py"))
    assert [line.split(": ")[1].split()[0] for line in found] == ["F401"]


def test_opinionated_grd9_is_off_by_default(tmp_path: Path) -> None:
    write(
        tmp_path,
        "init.py",
        """
        import torch

        layer = torch.nn.Linear(2, 2)
        layer.weight.data.normal_(0, 0.02)
        """,
    )
    proc = flake8(tmp_path, "--isolated", "init.py")
    assert (proc.returncode, proc.stdout) == (0, "")
    found = lines(flake8(tmp_path, "--isolated", "--extend-select=GRD9", "init.py"))
    assert [line.split(" ")[:2] for line in found] == [["init.py:4:1:", "GRD901"]]


# --- options ------------------------------------------------------------------------


def test_no_grad_decorators_option_on_command_line(tmp_path: Path) -> None:
    write(tmp_path, "step.py", USER_DECORATOR)
    assert lines(flake8(tmp_path, "--isolated", "step.py")) == []
    proc = flake8(tmp_path, "--isolated", "--gradmode-no-grad-decorators=frozen", "step.py")
    assert lines(proc) == [f"step.py:9:5: {backward('loss.backward')}"]
    assert proc.returncode == 1


@pytest.mark.parametrize(
    "config_file, value",
    [
        ("setup.cfg", " frozen"),
        ("tox.ini", " other, helpers.frozen"),
        (".flake8", "\n    frozen_eval,\n    frozen\n"),
    ],
    ids=["setup.cfg", "tox.ini-dotted", ".flake8-multiline"],
)
def test_no_grad_decorators_option_in_config_file(tmp_path: Path, config_file: str, value: str) -> None:
    write(tmp_path, "step.py", USER_DECORATOR)
    (tmp_path / config_file).write_text(f"[flake8]\ngradmode-no-grad-decorators ={value}\n", encoding="utf-8")
    proc = flake8(tmp_path, "step.py")
    assert lines(proc) == [f"step.py:9:5: {backward('loss.backward')}"]


def test_unknown_decorator_names_do_not_match(tmp_path: Path) -> None:
    write(tmp_path, "step.py", USER_DECORATOR)
    proc = flake8(tmp_path, "--isolated", "--gradmode-no-grad-decorators=frozen_eval,other.frozen", "step.py")
    assert (proc.returncode, lines(proc)) == (0, [])


# --- libcst stays out of the lint path ------------------------------------------

_MODULES_AFTER = """
import sys
{run}
print(sorted(m for m in ("libcst", "flake8_gradmode.fix") if m in sys.modules))
"""


@pytest.mark.parametrize(
    "run",
    [
        # other installed plugins (TorchFix is a libcst plugin) are left out
        "from flake8.plugins import finder\n_find = finder.find_plugins\n"
        "finder.find_plugins = lambda *a: [p for p in _find(*a) if p.package in "
        "('flake8', 'pyflakes', 'pycodestyle', 'mccabe', 'flake8-gradmode')]\n"
        "from flake8.main import cli\ntry:\n    cli.main(['--isolated', '--select=GRD', 'bad.py'])\n"
        "except SystemExit:\n    pass",
        "from flake8_gradmode import cli\ncli.main(['bad.py'])",
    ],
    ids=["flake8", "flake8-gradmode"],
)
def test_a_lint_with_findings_never_imports_libcst(tmp_path: Path, run: str) -> None:
    write(tmp_path, "bad.py", BAD_SNIPPET)
    proc = subprocess.run(
        [sys.executable, "-c", _MODULES_AFTER.format(run=run)], cwd=tmp_path, capture_output=True, text=True
    )
    assert "bad.py:4:" in proc.stdout  # the lint found something ...
    assert proc.stdout.splitlines()[-1] == "[]"  # ... without loading the fixer


BAD_SNIPPET = """
    import torch

    def evaluate(model, xs):
        with torch.no_grad:
            return [model(x) for x in xs]
    """


def test_a_module_of_another_framework_is_not_analysed(tmp_path):
    # a model zoo's Chainer or TensorFlow twin of a PyTorch file: same loops,
    # no torch, no grad mode
    path = tmp_path / "resnet_tf.py"
    path.write_text(
        "def _test():\n"
        "    import tensorflow as tf\n"
        "    model = tf.keras.applications.ResNet50()\n"
        "    for x in [tf.zeros((1, 224, 224, 3))]:\n"
        "        model(x)\n",
        encoding="utf-8",
    )
    assert check(path.read_text(encoding="utf-8"), filename=str(path)) == []
    torch_twin = path.read_text(encoding="utf-8").replace("import tensorflow as tf", "import torch, tensorflow as tf")
    assert [v.code for v in check(torch_twin, filename=str(path))] == ["GRD101"]


def test_a_module_of_another_framework_borrowing_a_torchvision_helper_is_not_analysed(tmp_path):
    source = (
        "import mxnet as mx\n"
        "from torchvision.transforms import transforms\n"
        "net = mx.gluon.model_zoo.vision.resnet18_v1()\n"
        "def evaluate(val_data):\n"
        "    for x in val_data:\n"
        "        net(x)\n"
    )
    assert check(source, filename=str(tmp_path / "train_gluon.py")) == []
    torch_twin = source.replace("import mxnet as mx\n", "import torch\nimport mxnet as mx\n")
    assert [(v.line, v.code) for v in check(torch_twin, filename=str(tmp_path / "train_gluon.py"))] == [(6, "GRD101")]
