"""Bad and odd inputs: the plugin reports findings or GRD000, never raises.

Each case goes through ``engine.check`` and through the flake8 plugin class
the way flake8 calls it; encodings and byte-order marks go through the real
``flake8`` command on a file written as bytes, since decoding is flake8's job.
Where a grad bug is present the exact ``(code, line, col)`` is asserted
(1-based line, 0-based column in characters); where none is, nothing may be
reported.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import List, Tuple

import pytest

import flake8_gradmode.engine as engine
from flake8_gradmode.engine import check
from flake8_gradmode.plugin import GradModeChecker
from flake8_gradmode.settings import Settings

Finding = Tuple[str, int, int]


@pytest.fixture(autouse=True)
def _default_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    # Settings live on the class; another test (or a flake8 run in this
    # process) may have set them.
    monkeypatch.setattr(GradModeChecker, "settings", Settings())


def src(code: str) -> str:
    return textwrap.dedent(code).lstrip("\n")


def engine_findings(source: str) -> List[Finding]:
    return [(v.code, v.line, v.col) for v in check(source)]


def plugin_findings(source: str) -> List[Finding]:
    checker = GradModeChecker(tree=ast.parse(source), lines=source.splitlines(True), filename="x.py")
    out = []
    for line, col, text, kind in checker.run():
        assert kind is GradModeChecker
        code, _, message = text.partition(" ")
        assert message and not message.startswith(" ")
        out.append((code, line, col))
    return out


def findings(source: str) -> List[Finding]:
    """Findings of ``source``; the engine and the plugin must agree."""
    through_engine = engine_findings(source)
    assert plugin_findings(source) == through_engine
    return through_engine


PREAMBLE = "import torch\nlayer = torch.nn.Linear(2, 2)\n"
FILL = "layer.weight.fill_(1.0)\n"


# --- trivial files --------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    ["", "\n", "\n\n   \n", "# just a comment", "# torch no_grad weight backward\n", '"""doc"""\n', "pass"],
    ids=["empty", "newline", "blank-lines", "comment-no-eol", "comment-with-trigger-words", "docstring", "pass-no-eol"],
)
def test_trivial_files(source: str) -> None:
    assert findings(source) == []
    assert check(source, use_sieve=False) == []


def test_file_without_torch() -> None:
    # Plenty of trigger words (weight, bias, backward, grad, no_grad) but
    # nothing that is torch.
    source = src(
        '''
        import numpy as np


        class Layer:
            """A hand-written layer: weight and bias are numpy arrays."""

            def __init__(self):
                self.weight = np.zeros(3)
                self.bias = 0.0

            def backward(self, grad):
                self.weight -= 0.1 * grad
                self.bias += 1
                self.weight[0] = 0.0
                return grad


        def no_grad():
            return None


        with open("log.txt") as no_grad_file:
            no_grad_file.write("backward")
        '''
    )
    assert findings(source) == []
    assert check(source, use_sieve=False) == []


def test_plain_python_without_trigger_words() -> None:
    source = "import os\n\n\ndef main():\n    return os.getcwd()\n"
    assert findings(source) == []


# --- internal errors ------------------------------------------------------------

BUGGY = src(
    """
    import torch

    layer = torch.nn.Linear(2, 2)
    layer.weight.fill_(1.0)
    """
)


def _only_grd000(source: str) -> Tuple[int, int, str]:
    """The single GRD000 both entry points report for ``source``."""
    violations = check(source)
    assert len(violations) == 1, violations
    v = violations[0]
    assert v.code == "GRD000"
    checker = GradModeChecker(tree=ast.parse(source), lines=source.splitlines(True), filename="x.py")
    assert list(checker.run()) == [(v.line, v.col, f"GRD000 {v.message}", GradModeChecker)]
    return v.line, v.col, v.message


def _walk_raising(exc: BaseException):
    def walk(self, node):
        raise exc

    return walk


def test_valid_python_libcst_cannot_parse_is_analysed() -> None:
    # libcst rejects a parenthesized annotated target; the finder runs on
    # ast, so the file is analysed like any other (no GRD000)
    source = "(a): int\n" + BUGGY
    assert findings(source) == [("GRD004", 5, 0)]


def test_recursion_error_is_grd000(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine._Driver, "walk", _walk_raising(RecursionError("maximum recursion depth exceeded")))
    line, col, message = _only_grd000(BUGGY)
    assert (line, col) == (1, 0)
    assert message.startswith("file nests too deeply for grad-mode analysis;")
    assert "skipped" in message


def test_unexpected_error_is_grd000(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine._Driver, "walk", _walk_raising(ValueError("something odd\nsecond line")))
    line, col, message = _only_grd000(BUGGY)
    assert (line, col) == (1, 0)
    assert message.startswith("grad-mode analysis failed (ValueError: something odd);")
    assert "second line" not in message
    assert "please report" in message


def test_failure_in_the_visitor_is_grd000(monkeypatch: pytest.MonkeyPatch) -> None:
    # a rule hook that raises halfway through
    from flake8_gradmode.rules.grd004_inplace_param_update_with_grad import InplaceParamUpdateWithGrad

    def visit_Call(self, node):
        raise KeyError("boom")

    monkeypatch.setattr(InplaceParamUpdateWithGrad, "visit_Call", visit_Call)
    line, col, message = _only_grd000(BUGGY)
    assert (line, col) == (1, 0)
    assert message.startswith("grad-mode analysis failed (KeyError: 'boom');")
    assert "please report" in message


def test_keyboard_interrupt_is_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine._Driver, "walk", _walk_raising(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        check(BUGGY)  # the engine lets it through ...
    checker = GradModeChecker(tree=ast.parse(BUGGY), lines=BUGGY.splitlines(True), filename="x.py")
    with pytest.raises(KeyboardInterrupt):
        list(checker.run())  # ... and so should the plugin


def test_sieve_skips_analysis(monkeypatch: pytest.MonkeyPatch) -> None:
    # a file without trigger words is never walked, so a broken walk is not seen
    monkeypatch.setattr(engine._Driver, "walk", _walk_raising(AssertionError("walked")))
    assert findings("import os\nprint(os.sep)\n") == []


def test_a_rule_none_of_whose_words_occur_is_not_run(monkeypatch: pytest.MonkeyPatch) -> None:
    # the file says ``volatile`` but never ``loss`` or ``backward``: GRD104 is not even built
    from flake8_gradmode.registry import by_code

    def refuse(self, context):
        raise AssertionError("built")

    monkeypatch.setattr(by_code("GRD104"), "__init__", refuse)
    source = "import torch\nx = torch.tensor([1.0], volatile=True)\n"
    assert findings(source) == [("GRD003", 2, 24)]
    assert [v.code for v in check(source + "loss = x\n")] == ["GRD000"]  # the word is there: it is built
    # the words of every rule are matched in any case, as the sieve always was
    assert engine._triggered((by_code("GRD105"),), "from multiprocessing import pool") != ()


def test_non_ascii_text_before_a_finding_counts_in_characters() -> None:
    # ast gives UTF-8 byte offsets; flake8 wants character columns
    source = src(
        """
        import torch

        layer = torch.nn.Linear(2, 2)
        größe = 1; layer.weight.fill_(1.0)
        ünïcödé = "→→→"; layer.bias.zero_()  # ∑
        """
    )
    assert findings(source) == [("GRD004", 4, 11), ("GRD004", 5, 17)]


def test_the_plugin_uses_the_tree_flake8_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    # never parse again on the flake8 path
    def parse(*args, **kwargs):  # pragma: no cover - must not run
        raise AssertionError("parsed again")

    tree = ast.parse(BUGGY)
    monkeypatch.setattr(engine.ast, "parse", parse)
    checker = GradModeChecker(tree=tree, lines=BUGGY.splitlines(True), filename="x.py")
    assert [(line, col) for line, col, _, _ in checker.run()] == [(4, 0)]


# --- deep nesting ----------------------------------------------------------------

TOO_DEEP = ("GRD000", 1, 0)


def _deep(prefix: str, suffix: str, depth: int) -> str:
    return PREAMBLE + "x = " + prefix * depth + "1" + suffix * depth + "\n" + FILL


def test_300_nested_parentheses_engine_only() -> None:
    # CPython refuses more than 200 nested parentheses, so flake8 reports
    # E999 and never runs the plugin; the engine alone must still not raise.
    source = _deep("(", ")", 300)
    with pytest.raises(SyntaxError):
        ast.parse(source)
    assert engine_findings(source) in ([("GRD004", 4, 0)], [TOO_DEEP])


@pytest.mark.parametrize(
    "prefix, suffix, depth",
    [
        ("(", ")", 200),
        ("[", "]", 100),
        ("[", "]", 199),
        ("{1: ", "}", 199),
        ("f(", ")", 199),
        ("-", "", 600),
        ("1 + ", "", 600),
    ],
    ids=["parens-200", "list-100", "list-199", "dict-199", "calls-199", "unary-600", "binop-600"],
)
def test_deeply_nested_expression(prefix: str, suffix: str, depth: int) -> None:
    source = _deep(prefix, suffix, depth)
    ast.parse(source)  # CPython accepts it, so flake8 would run the plugin on it
    result = findings(source)
    assert result in ([("GRD004", 4, 0)], [TOO_DEEP])
    if result == [TOO_DEEP]:
        assert "nests too deeply" in check(source)[0].message


def test_still_works_after_recursion_error() -> None:
    findings(_deep("[", "]", 199))
    assert findings(PREAMBLE + FILL) == [("GRD004", 3, 0)]


def test_many_implicitly_concatenated_strings() -> None:
    n = 1000
    literals = "".join(f"    'line {i} of a long help text '\n" for i in range(n))
    source = PREAMBLE + "HELP = (\n" + literals + ")\n" + FILL
    ast.parse(source)
    assert findings(source) == [("GRD004", n + 5, 0)]


def _nested_ifs(depth: int) -> str:
    body = "".join("    " * i + f"if x{i}:\n" for i in range(depth))
    return PREAMBLE + body + "    " * depth + FILL


def test_99_nested_if_blocks() -> None:
    # 99 is the deepest indentation CPython accepts (100 levels is an
    # IndentationError); the finding is at the innermost body.
    source = _nested_ifs(99)
    assert findings(source) in ([("GRD004", 102, 396)], [TOO_DEEP])


def test_100_nested_if_blocks_engine_only() -> None:
    source = _nested_ifs(100)
    with pytest.raises(SyntaxError):
        ast.parse(source)
    result = check(source)
    assert len(result) == 1 and result[0].code in ("GRD000", "GRD004")


def test_deeply_nested_with_blocks_keep_grad_state() -> None:
    depth = 60
    body = "".join("    " * i + "with torch.no_grad():\n" for i in range(depth))
    inner = "    " * depth
    source = (
        PREAMBLE
        + body
        + inner + "layer.weight.fill_(1.0)\n"
        + inner + "with torch.enable_grad():\n"
        + inner + "    layer.bias.zero_()\n"
        + "layer.bias.zero_()\n"
    )
    result = findings(source)
    assert result in ([("GRD004", depth + 5, 4 * depth + 4), ("GRD004", depth + 6, 0)], [TOO_DEEP])


class _TookTooLong(BaseException):
    """Raised by the alarm; not an Exception, so check() cannot swallow it."""


def _check_within(source: str, seconds: float):
    import signal

    def alarm(signum, frame):
        raise _TookTooLong(f"check() did not finish within {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return check(source)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _call_chain(levels: int) -> str:
    """``f0`` changes a parameter; each ``f<i>`` calls ``f<i-1>`` twice."""
    code = "import torch\n\n\ndef f0(m):\n    m.weight.fill_(0.0)\n"
    for i in range(1, levels + 1):
        code += f"\n\ndef f{i}(m):\n    f{i - 1}(m)\n    f{i - 1}(m)\n"
    return code


@pytest.mark.skipif(not hasattr(__import__("signal"), "setitimer"), reason="needs signal.setitimer")
def test_call_chain_resolution_is_not_exponential() -> None:
    # Regression: caller resolution once walked every call path (2**40 here)
    # and never finished; torch/_inductor/ir.py hung the same way.
    assert [(v.code, v.line, v.col) for v in _check_within(_call_chain(40), 10.0)] == [("GRD004", 5, 4)]


def test_short_call_chain() -> None:
    assert findings(_call_chain(3)) == [("GRD004", 5, 4)]


# --- line endings, whitespace ---------------------------------------------------------

MIXED = src(
    """
    import torch

    layer = torch.nn.Linear(2, 2)
    with torch.no_grad:
        pass
    s = "\u00e9\U0001f600"; layer.weight.fill_(1.0)
    doc = \'\'\'a string
    over three
    lines\'\'\'
    total = 1 + \\
        2
    pair = (1,
            2)  # comment


    def step(model, x):
        \'\'\'Doc
        string.\'\'\'
        with torch.no_grad():
            loss = model(x).sum()
            loss.backward()
    """
)
MIXED_EXPECTED = [("GRD001", 4, 5), ("GRD004", 6, 10), ("GRD005", 21, 8)]


def test_lf_reference() -> None:
    assert findings(MIXED) == MIXED_EXPECTED


@pytest.mark.parametrize("newline", ["\r\n", "\r"], ids=["crlf", "cr"])
def test_other_line_endings(newline: str) -> None:
    source = MIXED.replace("\n", newline)
    assert newline in source
    assert findings(source) == MIXED_EXPECTED


def test_mixed_line_endings() -> None:
    parts = MIXED.split("\n")
    source = "".join(p + ("\r\n" if i % 2 else "\n") for i, p in enumerate(parts[:-1]))
    assert findings(source) == MIXED_EXPECTED


def test_no_newline_at_end_of_file() -> None:
    assert findings(PREAMBLE + FILL.rstrip("\n")) == [("GRD004", 3, 0)]
    assert findings(PREAMBLE + "layer.bias.zero_()  # no newline") == [("GRD004", 3, 0)]


def test_tabs_for_indentation() -> None:
    source = (
        "import torch\n"
        "\n"
        "\n"
        "def reset(layer, x):\n"
        "\tif layer is not None:\n"
        "\t\tlayer.bias.zero_()\n"
        "\twith torch.no_grad():\n"
        "\t\tloss = layer(x).sum()\n"
        "\t\tloss.backward()\n"
        "\tx = 1;\tlayer.weight.fill_(1.0)\n"
    )
    # a tab is one character, as in flake8's own columns
    assert findings(source) == [("GRD004", 6, 2), ("GRD005", 9, 2), ("GRD004", 10, 8)]


def test_form_feeds_between_functions() -> None:
    source = (
        "import torch\n"
        "\n"
        "\x0c\n"
        "def first(layer):\n"
        "    layer.bias.zero_()\n"
        "\x0c\n"
        "\x0c\n"
        "def second(layer):\n"
        "    with torch.no_grad:\n"
        "        pass\n"
        "\x0c"
        "def third(layer):\n"
        "    layer.weight.fill_(0.0)\n"
        "\x0c\n"
    )
    assert findings(source) == [("GRD004", 5, 4), ("GRD001", 9, 9), ("GRD004", 12, 4)]


def test_form_feed_in_indentation() -> None:
    # like ast's col_offset, the column counts the form feed
    source = "import torch\n\n\ndef f(layer):\n\x0c    layer.bias.zero_()\n"
    assert findings(source) == [("GRD004", 5, 5)]
    call = ast.parse(source).body[1].body[0].value  # type: ignore[attr-defined]
    assert call.col_offset == 5


def test_very_long_line() -> None:
    long_line = "x = [" + ", ".join(str(i) for i in range(5000)) + "]; layer.weight.fill_(1.0)\n"
    source = PREAMBLE + long_line
    assert len(long_line) > 25_000
    assert findings(source) == [("GRD004", 3, long_line.index("layer.weight"))]


def test_very_long_string_line() -> None:
    long_line = "s = '" + "\u00e9" * 50_000 + "'; layer.bias.zero_()\n"
    assert findings(PREAMBLE + long_line) == [("GRD004", 3, 50_008)]


def test_5000_line_file_with_finding_at_the_end() -> None:
    lines = ["import torch\n", "layer = torch.nn.Linear(2, 2)\n"]
    lines += [f"v{i} = {i}\n" if i % 2 else f"# generated line {i}\n" for i in range(4995)]
    lines += ["\n", "def reset(m):\n", "    m.weight.zero_()\n"]
    source = "".join(lines)
    assert len(lines) == 5000
    # engine and plugin each parse it once
    assert findings(source) == [("GRD004", 5000, 4)]


def test_unicode_identifiers() -> None:
    source = "import torch\n\u03bb = torch.nn.Linear(2, 2)\n\u00e9 = 1; \u03bb.weight.fill_(1.0)\n"
    assert findings(source) == [("GRD004", 3, 7)]


# --- encodings through the real flake8 ----------------------------------------------


def test_encodings_through_flake8(tmp_path: Path) -> None:
    # One flake8 run per file is slow; put every file on one command line.
    files = {
        # UTF-8 with a byte-order mark, finding on line 1: the BOM is not a column
        "bom.py": b"\xef\xbb\xbfwith torch.no_grad:\n"
        b"    pass\n"
        b"s = '\xc3\xa9'; torch.nn.Linear(2, 2).weight.fill_(1.0)\n",
        # latin-1 declared by a coding cookie, non-ASCII bytes in comments
        # and before a finding on the same line
        "latin1.py": b"# -*- coding: latin-1 -*-\n"
        b"import torch  # caf\xe9\n"
        b"\n"
        b"layer = torch.nn.Linear(2, 2)\n"
        b"s = '\xe9'; layer.weight.fill_(1.0)  # \xe9t\xe9\n"
        b"with torch.no_grad:\n"
        b"    pass\n",
        # CRLF on disk
        "crlf.py": b"import torch\r\n\r\nlayer = torch.nn.Linear(2, 2)\r\nwith torch.no_grad:\r\n"
        b"    pass\r\nlayer.bias.zero_()\r\n",
        # BOM and CRLF together, nothing to report
        "bom_clean.py": b"\xef\xbb\xbfimport torch\r\n\r\nwith torch.no_grad():\r\n    pass\r\n",
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    proc = subprocess.run(
        [sys.executable, "-m", "flake8", "--isolated", "--select=GRD", *files],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.stderr == "", proc.stderr
    found = sorted(line.split(": ")[0] + " " + line.split(": ")[1][:6] for line in proc.stdout.splitlines())
    assert found == [
        "bom.py:1:6 GRD001",
        "bom.py:3:10 GRD004",
        "crlf.py:4:6 GRD001",
        "crlf.py:6:1 GRD004",
        "latin1.py:5:10 GRD004",
        "latin1.py:6:6 GRD001",
    ]


def test_latin1_text_through_engine(tmp_path: Path) -> None:
    import tokenize

    path = tmp_path / "latin1.py"
    path.write_bytes(
        b"# -*- coding: latin-1 -*-\nimport torch  # caf\xe9\n"
        b"layer = torch.nn.Linear(2, 2)\ns = '\xe9'; layer.weight.fill_(1.0)\n"
    )
    with tokenize.open(path) as handle:
        text = handle.read()
    assert findings(text) == [("GRD004", 4, 9)]


def test_bom_left_in_text_does_not_shift_columns() -> None:
    # flake8 strips the BOM; a caller that does not must get the same columns
    assert engine_findings("\ufeffwith torch.no_grad:\n    pass\n") == [("GRD001", 1, 5)]


def test_bom_and_crlf_on_stdin(tmp_path: Path) -> None:
    # flake8 decodes stdin itself and keeps its CRLF line endings
    data = (
        b"\xef\xbb\xbfwith torch.no_grad:\r\n"
        b"    pass\r\n"
        b"s = '\xc3\xa9'; torch.nn.Linear(2, 2).bias.zero_()\r\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "flake8", "--isolated", "--select=GRD", "-", "--stdin-display-name=m.py"],
        cwd=tmp_path,
        input=data,
        capture_output=True,
        timeout=120,
    )
    assert proc.stderr == b""
    found = [line.split(": ")[0] + " " + line.split(": ")[1][:6] for line in proc.stdout.decode().splitlines()]
    assert found == ["m.py:1:6 GRD001", "m.py:3:10 GRD004"]


def test_aliased_autograd_and_thread_names_are_still_recognised() -> None:
    # the rules test a call's last name before resolving it; an imported
    # alias must still be resolved
    source = src(
        """
        import torch
        from torch.autograd import grad as agrad
        from threading import Thread as T

        model = torch.nn.Linear(2, 2)
        x = torch.ones(2)
        y = 2 * torch.dot(x, x)
        agrad(y, [x])
        with torch.no_grad():
            T(target=model).start()
        """
    )
    assert findings(source) == [("GRD005", 8, 0), ("GRD105", 10, 13)]


def test_match_statements_with_every_kind_of_pattern() -> None:
    # pattern nodes hold plain values where other nodes hold nodes
    # (MatchSingleton.value, MatchClass.kwd_attrs, MatchMapping.rest, MatchStar.name)
    source = src(
        """
        import torch

        layer = torch.nn.Linear(2, 2)


        def f(command):
            match command:
                case True | None:
                    pass
                case Point(x=0, y=yy):
                    pass
                case {"k": 1, **rest}:
                    pass
                case [1, *others]:
                    pass
                case str() as text if text:
                    pass
                case _:
                    layer.weight.fill_(1.0)
        """
    )
    assert findings(source) == [("GRD004", 19, 12)]


# --- a module Python refuses to compile ---------------------------------------

PASTED_SCRIPTS = '''
"""Two recipes pasted into one file."""
from __future__ import print_function
import torch

model = torch.nn.Linear(4, 2)
model.weight.fill_(1.0)

from __future__ import division
scores = [model(x) for x in [torch.randn(2, 4)]]
'''


@pytest.mark.parametrize("changes, expected", [
    ((), []),
    # the later future import gone: the module compiles and runs
    ((("\nfrom __future__ import division\n", "\n"),), [("GRD004", 7, 0)]),
    # moved up among the others, after the docstring: it compiles too
    ((("\nfrom __future__ import division\n", "\n"),
      ("import print_function\n", "import print_function\nfrom __future__ import division\n")), [("GRD004", 8, 0)]),
])
def test_a_future_import_after_other_statements_stops_the_module_compiling(changes, expected):
    source = textwrap.dedent(PASTED_SCRIPTS)
    for change in changes:
        source = source.replace(*change)
    compiles = True
    try:
        compile(source, "recipes.py", "exec")
    except SyntaxError:
        compiles = False
    assert compiles == bool(expected)
    assert [(v.code, v.line, v.col) for v in check(source, filename="recipes.py")] == expected
