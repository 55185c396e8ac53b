"""The committed docs are exactly what ``python -m flake8_gradmode._docgen`` renders."""

import pytest

from flake8_gradmode import _docgen
from flake8_gradmode.registry import DEFAULT_IGNORE, RULES
from tests.conftest import ROOT

RULES_DIR = ROOT / _docgen.RULES_DIR
HINT = "run `python -m flake8_gradmode._docgen` to regenerate"


def committed(rel):
    path = ROOT / rel
    assert path.is_file(), f"{rel} is missing; {HINT}"
    return path.read_text(encoding="utf-8")


@pytest.mark.parametrize("rule", RULES, ids=[rule.code for rule in RULES])
def test_rule_page_up_to_date(rule):
    rel = f"{_docgen.RULES_DIR}/{rule.code}.md"
    assert committed(rel) == _docgen.render_rule(rule), f"{rel} is stale; {HINT}"


@pytest.mark.parametrize("rel", ["docs/index.md", "docs/configuration.md"])
def test_page_up_to_date(rel):
    assert committed(rel) == _docgen.generated()[rel], f"{rel} is stale; {HINT}"


def test_readme_rule_table_up_to_date():
    readme = committed(_docgen.README)
    section = _docgen.readme_section(readme)
    if section is None:
        pytest.skip(f"README.md has no {_docgen.README_START} ... {_docgen.README_END} markers")
    expected = _docgen.readme_section(_docgen.render_readme(readme))
    assert section == expected, f"README.md rule table is stale; {HINT}"


def test_every_rule_has_a_page_and_every_page_a_rule():
    pages = {path.stem for path in RULES_DIR.glob("*.md")}
    codes = {rule.code for rule in RULES}
    assert codes - pages == set(), "rules without a page"
    assert pages - codes == set(), "pages without a rule"


def test_check_mode_finds_nothing_stale_in_generated_files():
    stale = [rel for rel in _docgen.stale(ROOT) if rel != _docgen.README]
    assert stale == [], f"stale: {stale}; {HINT}"


@pytest.mark.parametrize("rule", RULES, ids=[rule.code for rule in RULES])
def test_every_example_appears_verbatim_in_its_page(rule):
    page = committed(f"{_docgen.RULES_DIR}/{rule.code}.md")
    for kind, examples in (("invalid", rule.INVALID), ("valid", rule.VALID)):
        for i, example in enumerate(examples, start=1):
            assert example.code in page, f"{rule.code}-{kind}-{i} is not in its page"
            if example.title:
                assert example.title in page


@pytest.mark.parametrize("rule", RULES, ids=[rule.code for rule in RULES])
def test_page_shows_flake8_columns(rule):
    page = _docgen.render_rule(rule)
    for example in rule.INVALID:
        for line, col in example.at:
            assert f"line {line}, column {col + 1}" in page


@pytest.mark.parametrize("rule", RULES, ids=[rule.code for rule in RULES])
def test_default_on_agrees_with_default_ignore(rule):
    assert rule.default_on == (not rule.code.startswith(DEFAULT_IGNORE))


def test_generator_is_deterministic():
    assert _docgen.generated() == _docgen.generated()
    for content in _docgen.generated().values():
        assert content.endswith("\n") and not content.endswith("\n\n")


def test_readme_markers(tmp_path):
    text = "# x\n\nbefore\n<!-- rules:start -->\nold\n<!-- rules:end -->\nafter\n"
    new = _docgen.render_readme(text)
    assert new.startswith("# x\n\nbefore\n<!-- rules:start -->\n| Code |")
    assert new.endswith("|\n<!-- rules:end -->\nafter\n")
    assert "(docs/rules/GRD001.md)" in new
    assert _docgen.render_readme("# no markers\n") is None


def test_check_and_write(tmp_path):
    (tmp_path / "README.md").write_text("# x\n", encoding="utf-8")
    (tmp_path / "docs" / "rules").mkdir(parents=True)
    (tmp_path / "docs" / "rules" / "GRD999.md").write_text("retired\n", encoding="utf-8")
    assert _docgen.main(["--check", "--root", str(tmp_path)]) == 1
    assert not (tmp_path / "docs" / "index.md").exists()
    assert _docgen.main(["--root", str(tmp_path)]) == 0
    assert not (tmp_path / "docs" / "rules" / "GRD999.md").exists()
    assert (tmp_path / "README.md").read_text(encoding="utf-8") == "# x\n"
    # only the README (no markers) is left stale
    assert _docgen.stale(tmp_path) == ["README.md"]
    (tmp_path / "README.md").write_text("<!-- rules:start --><!-- rules:end -->\n", encoding="utf-8")
    assert _docgen.main(["--root", str(tmp_path)]) == 0
    assert _docgen.main(["--check", "--root", str(tmp_path)]) == 0
