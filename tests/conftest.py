import pathlib

import pytest

from flake8_gradmode.registry import RULES

ROOT = pathlib.Path(__file__).resolve().parent.parent


def example_cases(kind):
    """``(id, rule, example)`` for every VALID or INVALID example of every rule."""
    out = []
    for rule in RULES:
        for i, example in enumerate(getattr(rule, kind.upper()), start=1):
            out.append(pytest.param(rule, example, id=f"{rule.code}-{kind}-{i}"))
    return out


# Fixture scripts are lint inputs, not tests (some are named like test files on
# purpose, to check that pytest tests are not taken for evaluation loops).
collect_ignore_glob = ["fixtures/*"]
