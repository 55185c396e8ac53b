"""``flake8-gradmode --fix``: what it changes, and everything it must not.

The fixes run in-process through ``cli.main`` (the command's own entry point)
in a temporary directory; every comparison is on bytes.
"""

from __future__ import annotations

import os
import re
import stat
import warnings
from pathlib import Path
from typing import List, Tuple

import pytest

from flake8_gradmode import cli, fix
from flake8_gradmode.engine import check
from flake8_gradmode.fix import FixError, fix_source
from tests.samples import BUGGY

FIXABLE = ("GRD001", "GRD002", "GRD003")


# Default selection: GRD902 (off by default) is not fixed.
FIXED = '''\
"""Evaluation helpers."""
import torch
from torch.autograd import Variable

model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Dropout(0.5)).to("cpu")


def evaluate(batches):
    model.eval()
    with torch.no_grad():
        return [model(x) for x in batches]


def legacy(x):
    return model(Variable(x))


@torch.set_grad_enabled(False)
def trained(x):
    return model(x)


def wrap(x):
    return Variable(x)


def init():
    model[0].bias.fill_(0.0)
'''

# With GRD902 selected, the no-op wrapper goes too.
FIXED_902 = FIXED.replace("model(Variable(x))", "model(x)").replace("return Variable(x)", "return x")

GRD004 = (
    "GRD004 in-place `fill_` on parameter `model[0].bias` while grad is enabled raises RuntimeError; "
    "do it under `with torch.no_grad():`"
)


def run(capsys: pytest.CaptureFixture, *args: str) -> Tuple[int, List[str], List[str]]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out.splitlines(), err.splitlines()


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # the config file search starts here
    return tmp_path


def write(name: str, data: bytes) -> Path:
    path = Path(name)
    path.write_bytes(data)
    return path


def codes_in(text: str, selected=cli.Selection()) -> List[str]:
    return [v.code for v in check(text) if selected(v.code)]


# --- what is fixed, and nothing else -----------------------------------------


def test_fix_removes_the_fixable_findings_and_changes_nothing_else(capsys: pytest.CaptureFixture) -> None:
    path = write("evaluate.py", BUGGY.encode())
    before = check(BUGGY)
    touched = {v.line for v in before if v.code in FIXABLE}
    assert {v.code for v in before} >= set(FIXABLE)

    code, out, err = run(capsys, "--fix", "evaluate.py")

    after = path.read_bytes().decode()
    assert after == FIXED
    assert not set(codes_in(after)) & set(FIXABLE)
    old_lines, new_lines = BUGGY.splitlines(keepends=True), after.splitlines(keepends=True)
    assert len(old_lines) == len(new_lines)
    for number, (old, new) in enumerate(zip(old_lines, new_lines), start=1):
        if number not in touched:
            assert old == new, f"line {number} changed"
    assert out == [f"evaluate.py:28:5: {GRD004}"]  # what is left: no fix for GRD004
    assert err == ["fixed 4 findings in 1 file"]
    assert code == 1


def test_fix_with_grd902_selected(capsys: pytest.CaptureFixture) -> None:
    path = write("evaluate.py", BUGGY.encode())
    code, out, err = run(capsys, "--fix", "--select=GRD0,GRD902", "evaluate.py")
    after = path.read_text()
    assert after == FIXED_902
    assert codes_in(after, cli.Selection(("GRD0", "GRD902"))) == ["GRD004"]
    assert err == ["fixed 6 findings in 1 file"]
    assert code == 1


def test_fix_is_idempotent(capsys: pytest.CaptureFixture) -> None:
    path = write("evaluate.py", BUGGY.encode())
    run(capsys, "--fix", "--select=GRD", "evaluate.py")
    once = path.read_bytes()
    mtime = path.stat().st_mtime_ns
    code, out, err = run(capsys, "--fix", "--select=GRD", "evaluate.py")
    assert path.read_bytes() == once
    assert path.stat().st_mtime_ns == mtime  # not even rewritten
    assert err == ["fixed 0 findings in 0 files"]
    assert code == 1  # GRD004 and GRD903 have no fix
    assert fix_source(once.decode()).source == once.decode()


def test_fix_when_everything_is_fixable_exits_0(capsys: pytest.CaptureFixture) -> None:
    path = write("m.py", b"import torch\n\nmodel = torch.nn.Linear(2, 2)\nmodel.eval\n")
    code, out, err = run(capsys, "--fix", "m.py")
    assert path.read_bytes() == b"import torch\n\nmodel = torch.nn.Linear(2, 2)\nmodel.eval()\n"
    assert (code, out, err) == (0, [], ["fixed 1 finding in 1 file"])


def test_diff_writes_nothing(capsys: pytest.CaptureFixture) -> None:
    path = write("evaluate.py", BUGGY.encode())
    code, out, err = run(capsys, "--diff", "evaluate.py")
    assert path.read_text() == BUGGY
    assert code == 1
    assert out[:2] == ["--- a/evaluate.py", "+++ b/evaluate.py"]
    assert err == ["would fix 4 findings in 1 file"]


# --- bytes preserved -----------------------------------------------------------

LINES = [
    "import torch",
    "",
    "model = torch.nn.Linear(2, 2)",
    "with torch.no_grad:",
    "    y = model(torch.zeros(1, 2))",
]


LATIN1_HEAD = "# -*- coding: latin-1 -*-\n# caf\xe9, na\xefve\n"
TABS = (  # tab indentation, trailing spaces and tabs, also on the fixed line
    "import torch  \t\n\nmodel = torch.nn.Linear(2, 2)\t\nif True:\n\twith torch.no_grad{call}:   \n\t\ty = model(x) \n"
)


def _fixed(lines: List[str]) -> List[str]:
    return [line.replace("torch.no_grad:", "torch.no_grad():") for line in lines]


@pytest.mark.parametrize(
    "name, before, after",
    [
        pytest.param(
            "crlf",
            "\r\n".join(LINES + [""]).encode(),
            "\r\n".join(_fixed(LINES) + [""]).encode(),
            id="crlf",
        ),
        pytest.param(
            "mixed-endings",
            ("\r\n".join(LINES[:3]) + "\n" + "\r\n".join(LINES[3:]) + "\n").encode(),
            ("\r\n".join(LINES[:3]) + "\n" + "\r\n".join(_fixed(LINES)[3:]) + "\n").encode(),
            id="mixed-endings",
        ),
        pytest.param(
            "no-final-newline",
            "\n".join(LINES).encode(),
            "\n".join(_fixed(LINES)).encode(),
            id="no-final-newline",
        ),
        pytest.param(
            "latin1",
            (LATIN1_HEAD + "\n".join(LINES) + "  # \xe0 la main\n").encode("latin-1"),
            (LATIN1_HEAD + "\n".join(_fixed(LINES)) + "  # \xe0 la main\n").encode("latin-1"),
            id="latin1-cookie",
        ),
        pytest.param(
            "bom",
            b"\xef\xbb\xbf" + ("# \u00fcber\n" + "\n".join(LINES) + "\n").encode("utf-8"),
            b"\xef\xbb\xbf" + ("# \u00fcber\n" + "\n".join(_fixed(LINES)) + "\n").encode("utf-8"),
            id="utf8-bom",
        ),
        pytest.param(
            "tabs-and-trailing-space",
            TABS.format(call="").encode(),
            TABS.format(call="()").encode(),
            id="tabs-trailing-whitespace",
        ),
    ],
)
def test_fix_preserves_bytes(capsys: pytest.CaptureFixture, name: str, before: bytes, after: bytes) -> None:
    path = write(f"{name}.py", before)
    code, out, err = run(capsys, "--fix", path.name)
    assert path.read_bytes() == after
    assert (code, out, err) == (0, [], ["fixed 1 finding in 1 file"])


def test_positions_in_crlf_and_bom_files_match_the_plain_file(capsys: pytest.CaptureFixture) -> None:
    write("plain.py", "\n".join(LINES).encode())
    write("crlf.py", "\r\n".join(LINES).encode())
    write("bom.py", b"\xef\xbb\xbf" + "\n".join(LINES).encode())
    code, out, err = run(capsys, "plain.py", "crlf.py", "bom.py")
    assert [line.split(":", 1)[1] for line in out] == [out[0].split(":", 1)[1]] * 3
    assert out[0].startswith("plain.py:4:6: GRD001 ")


# --- noqa -----------------------------------------------------------------------

NOQA = b"""\
import torch

model = torch.nn.Linear(2, 2)
model.eval  # noqa
model.train  # noqa: GRD002
with torch.no_grad:  # noqa: GRD001
    pass
with torch.enable_grad:  # noqa:GRD0
    pass
with torch.inference_mode:  # noqa: GRD002
    pass
"""


def test_noqa_lines_are_left_alone(capsys: pytest.CaptureFixture) -> None:
    path = write("noqa.py", NOQA)
    code, out, err = run(capsys, "--fix", "noqa.py")
    # only the last `with`: its noqa names another code
    assert path.read_bytes() == NOQA.replace(b"torch.inference_mode:", b"torch.inference_mode():")
    assert (code, out, err) == (0, [], ["fixed 1 finding in 1 file"])


def test_noqa_in_check_mode(capsys: pytest.CaptureFixture) -> None:
    write("noqa.py", NOQA)
    code, out, err = run(capsys, "noqa.py")
    assert [line.split(" ", 2)[:2] for line in out] == [["noqa.py:10:6:", "GRD001"]]
    assert code == 1


FORM_FEED = b"import torch\n\x0c\nmodel = torch.nn.Linear(2, 2)\nmodel.eval  # noqa\n"


def test_noqa_after_a_form_feed_line(capsys: pytest.CaptureFixture) -> None:
    path = write("ff.py", FORM_FEED)
    code, out, err = run(capsys, "--fix", "ff.py")
    assert path.read_bytes() == FORM_FEED  # flake8 honours this noqa (tested below), so must --fix
    assert err == ["fixed 0 findings in 0 files"]


def test_form_feed_noqa_is_honoured_in_check_mode(capsys: pytest.CaptureFixture) -> None:
    write("ff.py", FORM_FEED)
    assert run(capsys, "ff.py") == (0, [], [])


MULTILINE_STRING = b'import torch\nx = torch.tensor([1.0], volatile=True, names="""\n""")  # noqa: GRD003\n'


def test_noqa_after_a_multiline_string(capsys: pytest.CaptureFixture) -> None:
    path = write("ms.py", MULTILINE_STRING)
    run(capsys, "--fix", "ms.py")
    assert path.read_bytes() == MULTILINE_STRING


def test_multiline_string_noqa_is_honoured_in_check_mode(capsys: pytest.CaptureFixture) -> None:
    write("ms.py", MULTILINE_STRING)
    assert run(capsys, "ms.py") == (0, [], [])


# --- writes: refused, atomic, mode kept ------------------------------------------

BAD = b"import torch\n\nmodel = torch.nn.Linear(2, 2)\nmodel.eval\n"
GOOD = b"import torch\n\nmodel = torch.nn.Linear(2, 2)\nmodel.eval()\n"


def leftovers(directory: Path) -> List[str]:
    return sorted(p.name for p in directory.iterdir())


def test_read_only_file_is_an_error_and_untouched(capsys: pytest.CaptureFixture, in_tmp: Path) -> None:
    path = write("ro.py", BAD)
    path.chmod(0o444)
    try:
        code, out, err = run(capsys, "--fix", "ro.py")
        assert path.read_bytes() == BAD
        assert stat.S_IMODE(path.stat().st_mode) == 0o444
    finally:
        path.chmod(0o644)
    assert code == 2
    assert err == ["flake8-gradmode: error: ro.py: file is read-only; not fixed", "fixed 0 findings in 0 files"]
    assert leftovers(in_tmp) == ["ro.py"]


def test_file_changed_between_read_and_write_is_not_overwritten(
    capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, in_tmp: Path
) -> None:
    path = write("race.py", BAD)
    edited = BAD + b"# edited in the editor meanwhile\n"
    real_fix_source = fix.fix_source

    def fix_while_someone_edits(*args, **kwargs):
        result = real_fix_source(*args, **kwargs)
        path.write_bytes(edited)  # another program saves the file after we read it
        return result

    monkeypatch.setattr(fix, "fix_source", fix_while_someone_edits)
    code, out, err = run(capsys, "--fix", "race.py")
    assert path.read_bytes() == edited
    assert code == 2
    assert err[0] == "flake8-gradmode: error: race.py: changed on disk while being fixed; not written"
    assert leftovers(in_tmp) == ["race.py"]  # the temporary file is gone


def test_write_failure_leaves_the_file_and_no_temporary(
    capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, in_tmp: Path
) -> None:
    path = write("full.py", BAD)

    def disk_full(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cli.os, "replace", disk_full)
    code, out, err = run(capsys, "--fix", "full.py")
    assert path.read_bytes() == BAD
    assert code == 2
    assert err[0] == "flake8-gradmode: error: full.py: cannot write: No space left on device"
    assert leftovers(in_tmp) == ["full.py"]


def test_unreadable_file_is_an_error(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    write("secret.py", BAD)
    real_open = open

    def deny(file, mode="r", *args, **kwargs):
        if str(file).endswith("secret.py") and "b" in mode:
            raise PermissionError(13, "Permission denied")
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", deny)
    code, out, err = run(capsys, "--fix", "secret.py")
    assert code == 2
    assert err[0] == "flake8-gradmode: error: secret.py: cannot read: Permission denied"


@pytest.mark.parametrize("mode", [0o644, 0o755, 0o600, 0o664])
def test_file_mode_is_preserved(capsys: pytest.CaptureFixture, mode: int) -> None:
    path = write("script.py", BAD)
    path.chmod(mode)
    code, out, err = run(capsys, "--fix", "script.py")
    assert path.read_bytes() == GOOD
    assert stat.S_IMODE(path.stat().st_mode) == mode


def test_fix_through_a_symlink_keeps_the_link(capsys: pytest.CaptureFixture, in_tmp: Path) -> None:
    target = write("real.py", BAD)
    link = in_tmp / "link.py"
    link.symlink_to("real.py")
    code, out, err = run(capsys, "--fix", "link.py")
    assert link.is_symlink() and os.readlink(link) == "real.py"
    assert target.read_bytes() == GOOD
    assert err == ["fixed 1 finding in 1 file"]


def test_a_file_that_does_not_parse_is_not_written(capsys: pytest.CaptureFixture) -> None:
    broken = BAD + b"def (:\n"
    path = write("broken.py", broken)
    code, out, err = run(capsys, "--fix", "broken.py")
    assert path.read_bytes() == broken
    assert code == 2
    pattern = r"flake8-gradmode: error: broken\.py: does not parse: invalid syntax \(line 5, column \d+\)"
    assert re.fullmatch(pattern, err[0]), err


def test_other_files_are_still_fixed_after_an_error(capsys: pytest.CaptureFixture) -> None:
    write("a.py", BAD)
    write("b.py", BAD)
    code, out, err = run(capsys, "--fix", "a.py", "missing.py", "b.py")
    assert Path("a.py").read_bytes() == GOOD and Path("b.py").read_bytes() == GOOD
    assert err == ["flake8-gradmode: error: missing.py: no such file or directory", "fixed 2 findings in 2 files"]
    assert code == 2


def test_a_crash_while_fixing_one_file_does_not_stop_the_others(
    capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    write("a.py", BAD)
    write("b.py", BAD)
    real_fix_source = fix.fix_source

    def crash_on_a(source, settings, selected, filename="", unsafe=False):
        if filename == "a.py":
            raise RuntimeError("boom")
        return real_fix_source(source, settings, selected, filename=filename, unsafe=unsafe)

    monkeypatch.setattr(fix, "fix_source", crash_on_a)
    code, out, err = run(capsys, "--fix", "a.py", "b.py")
    assert Path("a.py").read_bytes() == BAD and Path("b.py").read_bytes() == GOOD
    assert err == [
        "flake8-gradmode: error: a.py: internal error (RuntimeError: boom); nothing written, please report it",
        "fixed 1 finding in 1 file",
    ]
    assert code == 2


def test_a_fix_that_would_not_parse_is_not_written(
    capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write("a.py", BAD)

    def unparsable_fix(*args, **kwargs):
        raise FixError("fixed code does not parse: boom")

    monkeypatch.setattr(fix, "fix_source", unparsable_fix)
    code, out, err = run(capsys, "--fix", "a.py")
    assert path.read_bytes() == BAD
    assert err[0] == "flake8-gradmode: error: a.py: not fixed: fixed code does not parse: boom"
    assert code == 2


def test_python_warnings_while_parsing_are_not_printed(capsys: pytest.CaptureFixture) -> None:
    write("w.py", b'import re\n\nPATTERN = re.compile("\\d+")\n')  # an invalid escape: SyntaxWarning on 3.12+
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert run(capsys, "w.py") == (0, [], [])


# --- --unsafe-fixes --------------------------------------------------------------

EVAL_LOOP = b"""\
import torch

net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))
net.eval()
for x in [torch.randn(2, 4)]:
    net(x)
"""


def test_unsafe_fixes_only_when_asked(capsys: pytest.CaptureFixture) -> None:
    path = write("a.py", EVAL_LOOP)
    code, out, err = run(capsys, "--fix", "a.py")
    assert path.read_bytes() == EVAL_LOOP  # nothing safe to fix
    assert code == 1 and [line.split(": ")[1].split()[0] for line in out] == ["GRD101"]
    code, out, err = run(capsys, "--fix", "--unsafe-fixes", "a.py")
    wrapped = b"with torch.no_grad():\n    for x in [torch.randn(2, 4)]:\n        net(x)\n"
    assert path.read_bytes() == EVAL_LOOP.replace(b"for x in [torch.randn(2, 4)]:\n    net(x)\n", wrapped)
    assert (code, out, err) == (0, [], ["fixed 1 finding in 1 file"])


def test_unsafe_fixes_show_in_the_diff_without_writing(capsys: pytest.CaptureFixture) -> None:
    path = write("a.py", EVAL_LOOP)
    code, out, err = run(capsys, "--diff", "--unsafe-fixes", "a.py")
    assert path.read_bytes() == EVAL_LOOP
    assert code == 1
    assert "+with torch.no_grad():" in out and "-for x in [torch.randn(2, 4)]:" in out
    assert err == ["would fix 1 finding in 1 file"]


def test_unsafe_fixes_alone_is_a_usage_error(capsys: pytest.CaptureFixture) -> None:
    write("a.py", EVAL_LOOP)
    with pytest.raises(SystemExit) as info:
        cli.main(["--unsafe-fixes", "a.py"])
    assert info.value.code == 2
    assert "--unsafe-fixes: needs --fix or --diff" in capsys.readouterr().err
