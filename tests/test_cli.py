"""The ``flake8-gradmode`` command, run as ``python -m flake8_gradmode``.

Each test runs the command in a subprocess with ``cwd=tmp_path`` (the flake8
config search starts there) and asserts on the exact lines it prints and its
exit status: 0 clean, 1 findings, 2 errors.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List, Optional, Tuple

import pytest

from flake8_gradmode import __version__, cli
from tests.samples import BUGGY, run_in_process
from flake8_gradmode.rule import Violation

ROOT = Path(__file__).resolve().parent.parent

# --- messages, as the rules word them ----------------------------------------

GRD001 = (
    "GRD001 `torch.no_grad` is used as a context manager without calling it and raises TypeError; "
    "write `torch.no_grad()`"
)
GRD001_DECORATOR = (
    "GRD001 `torch.set_grad_enabled` is used as a decorator without calling it and raises TypeError; "
    "write `torch.set_grad_enabled(False)`"
)
GRD002 = "GRD002 `model.eval` is not called, so it does nothing; write `model.eval()`"
GRD003 = (
    "GRD003 `volatile=` has had no effect since PyTorch 0.4 (it only warns) and stops no graph; drop it, "
    "and run code that should build no graph under `with torch.no_grad():`"
)
GRD004 = (
    "GRD004 in-place `fill_` on parameter `model[0].bias` while grad is enabled raises RuntimeError; "
    "do it under `with torch.no_grad():`"
)
GRD101 = (
    "GRD101 evaluation loop runs `model` with grad enabled, so every batch builds an autograd graph; "
    "wrap it in `with torch.no_grad():`"
)
GRD902 = "GRD902 `Variable(...)` has done nothing since PyTorch 0.4; use the tensor itself"
GRD903 = "GRD903 `torch.no_grad()` around pure inference; `torch.inference_mode()` is faster here"


def default_findings(path: str) -> List[str]:
    return [
        f"{path}:9:5: {GRD002}",
        f"{path}:10:10: {GRD001}",
        f"{path}:15:30: {GRD003}",
        f"{path}:18:2: {GRD001_DECORATOR}",
        f"{path}:28:5: {GRD004}",
    ]


ALL_FINDINGS = [
    f"b.py:9:5: {GRD002}",
    f"b.py:10:10: {GRD001}",
    f"b.py:10:10: {GRD903}",
    f"b.py:15:18: {GRD902}",
    f"b.py:15:30: {GRD003}",
    f"b.py:18:2: {GRD001_DECORATOR}",
    f"b.py:24:12: {GRD902}",
    f"b.py:28:5: {GRD004}",
]

CLEAN = "import torch\n\nmodel = torch.nn.Linear(2, 2)\nmodel.eval()\n"
UNCALLED = "import torch\n\nmodel = torch.nn.Linear(2, 2)\nmodel.eval\n"

# An evaluation loop that only the configured eval word `holdout` reveals.
HOLDOUT = """\
import torch

model = torch.nn.Linear(2, 2)


def score(holdout_loader):
    for x in holdout_loader:
        model(x)
"""
HOLDOUT_FINDING = f"h.py:7:5: {GRD101}"


# --- helpers ----------------------------------------------------------------


def run(cwd: Path, *args: str) -> Tuple[int, List[str], List[str]]:
    proc = subprocess.run(
        [sys.executable, "-m", "flake8_gradmode", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stdout.splitlines(), proc.stderr.splitlines()


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    """Like ``run`` but in this process (fast), for variations of a case
    that a subprocess test already covers."""

    def run_here(*args: str, cwd: Path = tmp_path) -> Tuple[int, List[str], List[str]]:
        return run_in_process(monkeypatch, capsys, cwd, *args)

    return run_here


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def error(path: str, reason: str) -> str:
    return f"flake8-gradmode: error: {path}: {reason}"


# --- check -------------------------------------------------------------------


def test_check_prints_findings_like_flake8(tmp_path: Path) -> None:
    write(tmp_path, "b.py", BUGGY)
    assert run(tmp_path, "b.py") == (1, default_findings("b.py"), [])


def test_check_clean_file_exits_0(tmp_path: Path) -> None:
    write(tmp_path, "ok.py", CLEAN)
    assert run(tmp_path, "ok.py") == (0, [], [])


def test_check_agrees_with_flake8(tmp_path: Path) -> None:
    write(tmp_path, "b.py", BUGGY)
    write(tmp_path, "pkg/h.py", HOLDOUT)
    write(tmp_path, "setup.cfg", "[flake8]\ngradmode-eval-names = holdout\n")
    flake8 = subprocess.run(
        [sys.executable, "-m", "flake8", "--select=GRD", "--extend-ignore=GRD9", "b.py", "pkg"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    code, out, err = run(tmp_path, "b.py", "pkg")
    assert out == flake8.stdout.splitlines()
    assert out[-1] == HOLDOUT_FINDING.replace("h.py", "pkg/h.py")
    assert code == flake8.returncode == 1


def test_select_turns_on_default_ignored_codes(tmp_path: Path, here) -> None:
    write(tmp_path, "b.py", BUGGY)
    assert run(tmp_path, "--select", "GRD", "b.py") == (1, ALL_FINDINGS, [])
    assert here("--select=GRD902", "b.py") == (1, [f"b.py:15:18: {GRD902}", f"b.py:24:12: {GRD902}"], [])


def test_ignore_by_prefix(tmp_path: Path, here) -> None:
    write(tmp_path, "b.py", BUGGY)
    expected = [line for line in default_findings("b.py") if "GRD001" not in line and "GRD004" not in line]
    assert run(tmp_path, "--ignore=GRD001,GRD004", "b.py") == (1, expected, [])
    assert here("--ignore", "GRD0", "b.py") == (0, [], [])


def test_longest_prefix_wins_between_select_and_ignore(tmp_path: Path, here) -> None:
    write(tmp_path, "b.py", BUGGY)
    assert here("--select=GRD9", "--ignore=GRD90", "b.py") == (0, [], [])
    assert here("--select=GRD903", "--ignore=GRD9", "b.py") == (1, [f"b.py:10:10: {GRD903}"], [])
    assert here("--select=GRD", "--ignore=GRD9", "b.py") == (1, default_findings("b.py"), [])


def test_noqa_is_honoured(tmp_path: Path, here) -> None:
    write(tmp_path, "n.py", UNCALLED.replace("model.eval\n", "model.eval  # noqa: GRD002\nmodel.eval  # noqa: E501\n"))
    assert here("n.py") == (1, [f"n.py:5:1: {GRD002}"], [])


def test_directories_are_walked_for_python_files(tmp_path: Path) -> None:
    for name in [
        "src/a.py",
        "src/sub/b.py",
        "src/.hidden/c.py",
        "src/venv/d.py",
        "src/myenv/e.py",
        "src/__pycache__/f.py",
        "src/build/g.py",
        "src/dist/h.py",
        "src/pkg.egg-info/i.py",
    ]:
        write(tmp_path, name, UNCALLED)
    write(tmp_path, "src/myenv/pyvenv.cfg", "home = /usr/bin\n")
    write(tmp_path, "src/notes.txt", UNCALLED)
    write(tmp_path, "src/script", "#!/usr/bin/env python\n" + UNCALLED)
    code, out, err = run(tmp_path, "src")
    assert out == [f"src/a.py:4:1: {GRD002}", f"src/sub/b.py:4:1: {GRD002}"]
    assert (code, err) == (1, [])
    # named explicitly, a shebang script is linted
    assert run(tmp_path, "src/script") == (1, [f"src/script:5:1: {GRD002}"], [])


def test_each_file_once_in_command_line_order(tmp_path: Path, here) -> None:
    write(tmp_path, "x.py", UNCALLED)
    write(tmp_path, "y.py", UNCALLED)
    code, out, err = here("y.py", "x.py", "./y.py", ".")
    assert out == [f"y.py:4:1: {GRD002}", f"x.py:4:1: {GRD002}"]


def test_version_and_console_script(tmp_path: Path, here) -> None:
    assert here("--version") == (0, [f"flake8-gradmode {__version__}"], [])
    script = shutil.which("flake8-gradmode", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the console script is not installed (pip install -e . creates it)")
    write(tmp_path, "m.py", UNCALLED)
    proc = subprocess.run([script, "m.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert (proc.returncode, proc.stdout) == (1, f"m.py:4:1: {GRD002}\n")


# --- fix and diff ---------------------------------------------------------------


def test_fix_prints_what_remains(tmp_path: Path, here) -> None:
    path = write(tmp_path, "b.py", BUGGY)
    code, out, err = run(tmp_path, "--fix", "b.py")
    assert out == [f"b.py:28:5: {GRD004}"]
    assert err == ["fixed 4 findings in 1 file"]
    assert code == 1
    assert "model.eval()\n    with torch.no_grad():\n" in path.read_text()
    assert here("--fix", "b.py") == (1, [f"b.py:28:5: {GRD004}"], ["fixed 0 findings in 0 files"])


def test_fix_everything_exits_0(tmp_path: Path) -> None:
    path = write(tmp_path, "m.py", UNCALLED)
    write(tmp_path, "ok.py", CLEAN)
    assert run(tmp_path, "--fix", ".") == (0, [], ["fixed 1 finding in 1 file"])
    assert path.read_text() == CLEAN


EXPECTED_DIFF = [
    "--- a/b.py",
    "+++ b/b.py",
    "@@ -6,16 +6,16 @@",
    " ",
    " ",
    " def evaluate(batches):",
    "-    model.eval",
    "-    with torch.no_grad:",
    "+    model.eval()",
    "+    with torch.no_grad():",
    "         return [model(x) for x in batches]",
    " ",
    " ",
    " def legacy(x):",
    "-    return model(Variable(x, volatile=True))",
    "+    return model(Variable(x))",
    " ",
    " ",
    "-@torch.set_grad_enabled",
    "+@torch.set_grad_enabled(False)",
    " def trained(x):",
    "     return model(x)",
    " ",
]


def test_diff_prints_a_unified_diff_and_writes_nothing(tmp_path: Path) -> None:
    path = write(tmp_path, "b.py", BUGGY)
    code, out, err = run(tmp_path, "--diff", "b.py")
    assert out == EXPECTED_DIFF
    assert err == ["would fix 4 findings in 1 file"]
    assert code == 1
    assert path.read_text() == BUGGY


def test_diff_without_final_newline(tmp_path: Path) -> None:
    write(tmp_path, "sub/n.py", "import torch\nmodel = torch.nn.Linear(2, 2)\nmodel.eval")
    code, out, err = run(tmp_path, "--diff", "./sub/n.py")
    assert out == [
        "--- a/sub/n.py",
        "+++ b/sub/n.py",
        "@@ -1,3 +1,3 @@",
        " import torch",
        " model = torch.nn.Linear(2, 2)",
        "-model.eval",
        "\\ No newline at end of file",
        "+model.eval()",
        "\\ No newline at end of file",
    ]
    assert code == 1


def test_diff_applies_with_git_apply_and_matches_fix(tmp_path: Path) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    crlf = BUGGY.replace("\n", "\r\n")
    for name in ("b.py", "crlf.py"):
        (tmp_path / "diffed").mkdir(exist_ok=True)
        (tmp_path / "fixed").mkdir(exist_ok=True)
        for where in ("diffed", "fixed"):
            (tmp_path / where / name).write_bytes((crlf if name == "crlf.py" else BUGGY).encode())
    proc = subprocess.run(
        [sys.executable, "-m", "flake8_gradmode", "--diff", "--select=GRD", "."],
        cwd=tmp_path / "diffed",
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == 1
    (tmp_path / "fix.patch").write_bytes(proc.stdout)
    subprocess.run(["git", "apply", "--unsafe-paths", "../fix.patch"], cwd=tmp_path / "diffed", check=True, timeout=60)
    run(tmp_path / "fixed", "--fix", "--select=GRD", ".")
    for name in ("b.py", "crlf.py"):
        assert (tmp_path / "diffed" / name).read_bytes() == (tmp_path / "fixed" / name).read_bytes()
    assert b"\r\n" in (tmp_path / "fixed" / "crlf.py").read_bytes()


def test_diff_with_nothing_to_fix_exits_0(tmp_path: Path, here) -> None:
    write(tmp_path, "ok.py", CLEAN)
    write(tmp_path, "b.py", "import torch\n\nparam = torch.nn.Linear(2, 2).weight\nparam.fill_(0.0)\n")
    assert here("--diff", ".") == (0, [], ["would fix 0 findings in 0 files"])


def test_fix_and_diff_exclude_each_other(tmp_path: Path, here) -> None:
    code, out, err = here("--fix", "--diff", "x.py")
    assert code == 2
    assert err[-1] == "flake8-gradmode: error: argument --diff: not allowed with argument --fix"


# --- configuration ------------------------------------------------------------------


def test_config_options_are_read_from_setup_cfg(tmp_path: Path, here) -> None:
    write(tmp_path, "h.py", HOLDOUT)
    assert here("h.py") == (0, [], [])
    write(tmp_path, "setup.cfg", "[metadata]\nname = x\n\n[flake8]\ngradmode-eval-names = holdout, benchmark\n")
    assert run(tmp_path, "h.py") == (1, [HOLDOUT_FINDING], [])


@pytest.mark.parametrize("filename", ["tox.ini", ".flake8"])
def test_config_in_tox_ini_or_dot_flake8_with_underscores(tmp_path: Path, filename: str, here) -> None:
    write(tmp_path, "h.py", HOLDOUT)
    write(tmp_path, filename, "[flake8]\ngradmode_eval_names =\n    benchmark\n    holdout\n")
    assert here("h.py") == (1, [HOLDOUT_FINDING], [])


def test_config_search_starts_in_the_current_directory_and_goes_up(tmp_path: Path) -> None:
    write(tmp_path, "setup.cfg", "[flake8]\ngradmode-eval-names = holdout\n")
    write(tmp_path, "pkg/sub/h.py", HOLDOUT)
    assert run(tmp_path / "pkg" / "sub", "h.py") == (1, [HOLDOUT_FINDING], [])


def test_first_config_with_a_flake8_section_wins(tmp_path: Path, here) -> None:
    write(tmp_path, "h.py", HOLDOUT)
    write(tmp_path, "setup.cfg", "[metadata]\nname = x\n")  # no [flake8]: skipped, as flake8 does
    write(tmp_path, "tox.ini", "[flake8]\nmax-line-length = 100\n")  # found first: .flake8 is not read
    write(tmp_path, ".flake8", "[flake8]\ngradmode-eval-names = holdout\n")
    assert here("h.py") == (0, [], [])


def test_command_line_option_overrides_config(tmp_path: Path, here) -> None:
    write(tmp_path, "h.py", HOLDOUT)
    write(tmp_path, "setup.cfg", "[flake8]\ngradmode-eval-names = holdout\n")
    assert here("--gradmode-eval-names=benchmark", "h.py") == (0, [], [])


# --- bad input ------------------------------------------------------------------------


def test_missing_path(tmp_path: Path) -> None:
    assert run(tmp_path, "nope.py") == (2, [], [error("nope.py", "no such file or directory")])


def test_non_python_file_given_explicitly(tmp_path: Path) -> None:
    write(tmp_path, "notes.txt", UNCALLED)
    assert run(tmp_path, "notes.txt") == (
        2,
        [],
        [error("notes.txt", "not a Python file (expected .py, or a python shebang line)")],
    )


def test_undecodable_file(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_bytes(b"import torch\nname = '\xff'\n")
    assert run(tmp_path, "bad.py") == (
        2,
        [],
        [error("bad.py", "cannot decode as utf-8: invalid start byte at byte 21")],
    )


def test_unknown_coding_cookie(tmp_path: Path, here) -> None:
    (tmp_path / "bad.py").write_bytes(b"# -*- coding: klingon -*-\nimport torch\n")
    code, out, err = here("bad.py")
    assert (code, out) == (2, [])
    assert len(err) == 1 and err[0].startswith(error("bad.py", "cannot decode: unknown encoding")), err


def test_file_that_does_not_parse(tmp_path: Path) -> None:
    write(tmp_path, "syntax.py", "import torch\nwith torch.no_grad:\nprint(\n")
    code, out, err = run(tmp_path, "syntax.py")
    assert (code, out) == (2, [])
    assert len(err) == 1 and err[0].startswith(error("syntax.py", "does not parse: "))
    assert "line 3" in err[0]


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file(tmp_path: Path) -> None:
    path = write(tmp_path, "secret.py", UNCALLED)
    path.chmod(0)
    try:
        assert run(tmp_path, "secret.py") == (2, [], [error("secret.py", "cannot read: Permission denied")])
    finally:
        path.chmod(0o644)


def test_errors_win_over_findings(tmp_path: Path) -> None:
    write(tmp_path, "m.py", UNCALLED)
    code, out, err = run(tmp_path, "m.py", "missing.py")
    assert out == [f"m.py:4:1: {GRD002}"]
    assert err == [error("missing.py", "no such file or directory")]
    assert code == 2


def test_fix_writes_nothing_for_a_bad_file_and_fixes_the_others(tmp_path: Path) -> None:
    good = write(tmp_path, "m.py", UNCALLED)
    broken = write(tmp_path, "z.py", UNCALLED + "def (:\n")
    code, out, err = run(tmp_path, "--fix", ".")
    assert good.read_text() == CLEAN
    assert broken.read_text() == UNCALLED + "def (:\n"
    assert code == 2
    assert err[0].startswith(error("./z.py", "does not parse: "))
    assert err[1] == "fixed 1 finding in 1 file"


def test_invalid_code_in_select(tmp_path: Path, here) -> None:
    code, out, err = here("--select=grd001", "x.py")
    assert code == 2
    assert err[-1] == (
        "flake8-gradmode: error: argument --select: 'grd001' is not an error code or prefix (like GRD or GRD001)"
    )


def test_no_path_is_a_usage_error(tmp_path: Path, here) -> None:
    code, out, err = here()
    assert code == 2
    assert err[-1] == "flake8-gradmode: error: the following arguments are required: PATH"


# --- in-process: GRD000 is a finding like any other -----------------------------------


def test_grd000_is_reported_as_a_finding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "m.py", UNCALLED)
    message = "grad-mode analysis failed (RuntimeError: boom); grad-mode rules skipped this file, please report it"

    def failing_check(source: str, settings=None, filename: str = "", **kwargs) -> List[Violation]:
        return [Violation(1, 0, "GRD000", message)]

    monkeypatch.setattr(cli, "check", failing_check)
    assert cli.main(["m.py"]) == 1
    assert capsys.readouterr().out == f"m.py:1:1: GRD000 {message}\n"
    assert cli.main(["--ignore=GRD000", "m.py"]) == 0


@pytest.mark.parametrize(
    "select, ignore, code, expected",
    [
        ((), (), "GRD001", True),
        ((), (), "GRD902", False),
        (("GRD",), (), "GRD902", True),
        (("GRD0",), (), "GRD101", False),
        ((), ("GRD1",), "GRD101", False),
        ((), ("GRD1",), "GRD001", True),
        (("GRD9",), ("GRD90",), "GRD902", False),
        (("GRD902",), ("GRD9",), "GRD902", True),
        (("GRD",), ("GRD9",), "GRD902", False),
        (("GRD",), ("GRD",), "GRD001", False),
    ],
)
def test_selection(select: Tuple[str, ...], ignore: Tuple[str, ...], code: str, expected: bool) -> None:
    assert cli.Selection(select, ignore)(code) is expected


def test_find_config_matches_flake8(tmp_path: Path) -> None:
    from flake8.options.config import _find_config_file

    write(tmp_path, "a/setup.cfg", "[metadata]\n")
    write(tmp_path, "a/tox.ini", "[flake8]\n")
    (tmp_path / "a" / "b" / "c").mkdir(parents=True)
    for start in (tmp_path / "a", tmp_path / "a" / "b" / "c"):
        assert cli.find_config(str(start)) == _find_config_file(str(start))
    found: Optional[str] = cli.find_config(str(tmp_path / "a" / "b" / "c"))
    assert found == str(tmp_path / "a" / "tox.ini")
