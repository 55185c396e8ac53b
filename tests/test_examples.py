"""Every documented example is a lint test: exact code, line and column."""

import pytest

from flake8_gradmode.engine import check
from flake8_gradmode.registry import DEFAULT_IGNORE, RULES
from tests.conftest import example_cases


DEFAULT_ON = {rule.code for rule in RULES if rule.default_on}


def findings(source, rule):
    """What a user sees with the default selection, plus the rule itself."""
    return sorted(
        (v.code, v.line, v.col) for v in check(source) if v.code in DEFAULT_ON or v.code == rule.code
    )


@pytest.mark.parametrize("rule, example", example_cases("invalid"))
def test_invalid_example_reported_exactly(rule, example):
    expected = sorted([(rule.code, line, col) for line, col in example.at] + list(example.also))
    assert findings(example.code, rule) == expected


@pytest.mark.parametrize("rule, example", example_cases("valid"))
def test_valid_example_silent(rule, example):
    assert findings(example.code, rule) == []


def test_default_off_rules_are_the_ignored_prefixes():
    for rule in RULES:
        assert rule.default_on is not rule.code.startswith(DEFAULT_IGNORE)


@pytest.mark.parametrize("rule, example", example_cases("invalid"))
def test_invalid_example_reported_without_sieve(rule, example):
    assert check(example.code, use_sieve=False) == check(example.code)


@pytest.mark.parametrize("rule, example", example_cases("invalid"))
def test_message_is_problem_then_remedy(rule, example):
    for violation in check(example.code):
        assert "; " in violation.message
        assert not violation.message.endswith(".")
        assert "\n" not in violation.message
