"""Realistic scripts with inline markers: ``# GRD004: 8`` on the reported line
(code and 0-based column; several separated by commas).  Every finding must be
marked and every marker must be found."""

import io
import pathlib
import re
import tokenize

import pytest

from flake8_gradmode.engine import check
from flake8_gradmode.registry import RULES
from flake8_gradmode.settings import Settings

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
MARKER = re.compile(r"(GRD\d{3}): (\d+)")


def expected(source):
    out = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            for code, col in MARKER.findall(tok.string):
                out.append((code, tok.start[0], int(col)))
    return sorted(out)


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.py")), ids=lambda p: p.name)
def test_fixture_findings_match_markers(path):
    source = path.read_text(encoding="utf-8")
    want = expected(source)
    # default-off hints count only in fixtures that mark them
    shown = {code for code, _, _ in want} | {rule.code for rule in RULES if rule.default_on}
    # each fixture is a program of its own, not a module of this repository
    alone = Settings(cross_module=False)
    got = sorted((v.code, v.line, v.col) for v in check(source, alone, filename=path.name) if v.code in shown)
    assert got == want


def test_fixtures_exist_and_have_markers():
    paths = sorted(FIXTURES.glob("*.py"))
    assert len(paths) >= 4
    assert sum(len(expected(p.read_text(encoding="utf-8"))) for p in paths) >= 10


def test_shipped_example_shows_four_bugs():
    """The README's first command lints examples/; it must keep finding these."""
    source = (FIXTURES.parent.parent / "examples" / "evaluate.py").read_text(encoding="utf-8")
    got = [(v.code, v.line, v.col) for v in check(source) if not v.code.startswith("GRD9")]
    assert got == [("GRD002", 13, 4), ("GRD001", 14, 9), ("GRD003", 19, 30), ("GRD004", 24, 8)]
