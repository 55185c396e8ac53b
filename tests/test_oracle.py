"""The semantic oracle: every runnable example is executed under real PyTorch.

An invalid example must show the symptom its rule page claims (the exception,
the warning, the graph that is kept, the model still training); a valid
example must run cleanly and pass its checks.
"""

import warnings

import pytest

from flake8_gradmode.rule import Holds, Raises, Warns
from tests.conftest import example_cases

torch = pytest.importorskip("torch")


def _symptoms(example):
    symptom = example.symptom
    return symptom if isinstance(symptom, tuple) else (symptom,)


def _run(code):
    """Run ``code`` in a fresh namespace; grad mode is restored afterwards
    (an example may call ``torch.set_grad_enabled(False)`` at top level)."""
    namespace = {"__name__": "__example__"}
    assert torch.is_grad_enabled()
    try:
        exec(compile(code, "<example>", "exec"), namespace)
    finally:
        torch.set_grad_enabled(True)
    return namespace


@pytest.mark.parametrize("rule, example", example_cases("invalid"))
def test_invalid_example_shows_its_symptom(rule, example):
    if not example.runnable:
        pytest.skip(example.why_not_run)
    symptoms = _symptoms(example)
    raises = [s for s in symptoms if isinstance(s, Raises)]
    warns = [s for s in symptoms if isinstance(s, Warns)]
    holds = [s for s in symptoms if isinstance(s, Holds)]
    assert symptoms and len(raises) + len(warns) + len(holds) == len(symptoms)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if raises:
            (expected,) = raises
            with pytest.raises(BaseException) as info:
                _run(example.code)
            assert type(info.value).__name__ == expected.exception
            assert expected.match in str(info.value)
            return
        namespace = _run(example.code)
    for warn in warns:
        assert any(
            type(w.message).__name__ == warn.category and warn.match in str(w.message) for w in caught
        ), [str(w.message) for w in caught]
    for check in holds:
        assert eval(check.expr, namespace), check.meaning


@pytest.mark.parametrize("rule, example", example_cases("valid"))
def test_valid_example_runs_cleanly(rule, example):
    if not example.runnable:
        pytest.skip(example.why_not_run)
    namespace = _run(example.code)
    for check in example.checks:
        assert eval(check.expr, namespace), check.meaning
