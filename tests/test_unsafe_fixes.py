"""Opt-in fixes (``--unsafe-fixes``) proven on every invalid example.

For each invalid example of a rule that has an opt-in fix, the fix is applied
with ``fix_source(..., unsafe=True)``; then

* the example's finding is gone and nothing new is reported,
* fixing again changes nothing (idempotent),
* the fixed program runs under real PyTorch without the symptom the rule page
  claims: no exception where the example raised, and every ``Holds`` check
  that proved the bug is now false (an output without ``grad_fn``, a model
  that is no longer training, an accumulator that keeps no graph).

Without ``unsafe=True`` none of these fixes is applied.
"""

from __future__ import annotations

import warnings
from typing import Dict, List, Tuple

import pytest

from flake8_gradmode.engine import check
from flake8_gradmode.fix import fix_source
from flake8_gradmode.registry import RULES, by_code
from flake8_gradmode.rule import Holds, Raises, Warns

torch = pytest.importorskip("torch")

#: Rules with an opt-in fix; every invalid example of each must be fixed.
UNSAFE = ("GRD004", "GRD101", "GRD102", "GRD103", "GRD104")


def _cases() -> List[object]:
    out = []
    for code in UNSAFE:
        for i, example in enumerate(by_code(code).INVALID, start=1):
            out.append(pytest.param(code, example, id=f"{code}-invalid-{i}"))
    return out


def _symptoms(example: object) -> Tuple[object, ...]:
    symptom = example.symptom  # type: ignore[attr-defined]
    return symptom if isinstance(symptom, tuple) else (symptom,)


def _run(code: str) -> Dict[str, object]:
    namespace: Dict[str, object] = {"__name__": "__example__"}
    try:
        exec(compile(code, "<fixed example>", "exec"), namespace)
    finally:
        torch.set_grad_enabled(True)
    return namespace


def _still_holds(check_: Holds, namespace: Dict[str, object]) -> bool:
    """Does the check that proved the bug still hold?  A check about
    ``grad_fn`` on what is now a Python number (``loss.item()``) does not:
    a number keeps no graph."""
    try:
        return bool(eval(check_.expr, namespace))
    except AttributeError as exc:
        if "grad_fn" in check_.expr and "'float' object has no attribute 'grad_fn'" in str(exc):
            return False
        raise


#: What a user sees by default.  (The opt-in hint GRD903 may point at the
#: ``no_grad`` a fix added: ``inference_mode`` would be faster still.)
DEFAULT_RULES = tuple(r for r in RULES if r.default_on)


def _findings(source: str) -> List[Tuple[str, int, int]]:
    return [(v.code, v.line, v.col) for v in check(source, rules=DEFAULT_RULES)]


@pytest.mark.parametrize("code, example", _cases())
def test_opt_in_fix_removes_the_finding_and_the_symptom(code: str, example: object) -> None:
    before = _findings(example.code)  # type: ignore[attr-defined]
    assert any(c == code for c, _, _ in before)
    result = fix_source(example.code, unsafe=True)  # type: ignore[attr-defined]
    fixed = result.source
    assert fixed != example.code  # type: ignore[attr-defined]
    assert code in {v.code for v in result.fixed}

    after = _findings(fixed)
    assert [f for f in after if f[0] == code] == []  # the finding is gone
    new = {c for c, _, _ in after} - {c for c, _, _ in before}
    assert not new, f"the fix introduced {new}:\n{fixed}"
    assert fix_source(fixed, unsafe=True).source == fixed  # idempotent

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        namespace = _run(fixed)  # raises nothing: the Raises symptom is gone too
    for symptom in _symptoms(example):
        if isinstance(symptom, Holds):
            assert not _still_holds(symptom, namespace), f"{symptom.meaning} after the fix:\n{fixed}"
        elif isinstance(symptom, Warns):
            assert not any(symptom.match in str(w.message) for w in caught)
        else:
            assert isinstance(symptom, Raises)


@pytest.mark.parametrize("code, example", _cases())
def test_opt_in_fix_is_not_applied_by_default(code: str, example: object) -> None:
    result = fix_source(example.code)  # type: ignore[attr-defined]
    assert code not in {v.code for v in result.fixed}
    assert code in {v.code for v in result.remaining}


# --- what the fixes keep ------------------------------------------------------------

ODD = (
    "# -*- coding: utf-8 -*-\r\n"
    "import torch as th  # the alias the fixes must use\r\n"
    "\r\n"
    "net = th.nn.Sequential(th.nn.Linear(4, 4), th.nn.Dropout(0.5))\r\n"
    "test_loader = [th.randn(2, 4)]\r\n"
    "\r\n"
    "\r\n"
    "def init(layer):\r\n"
    "\t# zero the bias   \r\n"
    "\tlayer.bias.zero_()  # in place\r\n"
    "\r\n"
    "\r\n"
    "net.eval()\r\n"
    "# score every batch\r\n"
    "for x in test_loader:\r\n"
    "\tnet(x)  # keep me\r\n"
)

ODD_FIXED = (
    "# -*- coding: utf-8 -*-\r\n"
    "import torch as th  # the alias the fixes must use\r\n"
    "\r\n"
    "net = th.nn.Sequential(th.nn.Linear(4, 4), th.nn.Dropout(0.5))\r\n"
    "test_loader = [th.randn(2, 4)]\r\n"
    "\r\n"
    "\r\n"
    "def init(layer):\r\n"
    "\t# zero the bias   \r\n"
    "\twith th.no_grad():\r\n"
    "\t\tlayer.bias.zero_()  # in place\r\n"
    "\r\n"
    "\r\n"
    "net.eval()\r\n"
    "# score every batch\r\n"
    "with th.no_grad():\r\n"
    "\tfor x in test_loader:\r\n"
    "\t\tnet(x)  # keep me\r\n"
)


def test_fixes_keep_line_endings_tabs_comments_and_the_torch_alias() -> None:
    assert _findings(ODD) == [("GRD004", 10, 1), ("GRD101", 15, 0)]
    result = fix_source(ODD, unsafe=True)
    assert result.source == ODD_FIXED
    assert _findings(result.source) == []
    assert fix_source(result.source, unsafe=True).source == ODD_FIXED  # idempotent


NO_IMPORT = '''\
"""A module that gets its model from elsewhere and never imports torch."""
from __future__ import annotations


def evaluate(model, val_loader):
    model.eval()
    return [model(x) for x in val_loader]


def score(model, val_loader):
    model.eval()
    for x in val_loader:
        print(model(x))
'''


def test_import_torch_is_added_only_when_the_module_has_none() -> None:
    fixed = fix_source(NO_IMPORT, unsafe=True).source
    assert fixed.splitlines()[:4] == [
        '"""A module that gets its model from elsewhere and never imports torch."""',
        "from __future__ import annotations",
        "import torch",
        "",
    ]
    assert "@torch.no_grad()\ndef score(model, val_loader):" in fixed
    assert fixed.count("import torch") == 1
    assert fix_source(fixed, unsafe=True).source == fixed


def test_a_noqa_comment_keeps_an_unsafe_fix_away() -> None:
    source = ODD.replace("\tlayer.bias.zero_()  # in place", "\tlayer.bias.zero_()  # noqa: GRD004")
    fixed = fix_source(source, unsafe=True).source
    assert "\tlayer.bias.zero_()  # noqa: GRD004\r\n" in fixed
    assert "with th.no_grad():\r\n\tfor x in test_loader:" in fixed


def test_torch_imported_inside_a_top_level_try_counts() -> None:
    source = (
        "try:\n"
        "    import torch as T\n"
        "except ImportError:\n"
        "    raise SystemExit('needs torch')\n"
        "\n"
        "net = T.nn.Linear(2, 2)\n"
        "net.eval()\n"
        "for x in [T.ones(2)]:\n"
        "    net(x)\n"
    )
    fixed = fix_source(source, unsafe=True).source
    wrapped = "with T.no_grad():\n    for x in [T.ones(2)]:\n        net(x)\n"
    assert fixed == source.replace("for x in [T.ones(2)]:\n    net(x)\n", wrapped)


@pytest.mark.parametrize(
    "source",
    [
        # the update shares its line with another statement
        "import torch\nlayer = torch.nn.Linear(2, 2)\nx = 1; layer.bias.zero_()\n",
        # the update is the body of a one-line compound statement
        "import torch\nlayer = torch.nn.Linear(2, 2)\nfor p in layer.parameters(): p.zero_()\n",
    ],
)
def test_a_statement_that_cannot_be_wrapped_alone_is_left_reported(source: str) -> None:
    result = fix_source(source, unsafe=True)
    assert result.source == source
    assert [v.code for v in result.remaining] == ["GRD004"]


def test_two_findings_asking_for_the_same_edit_get_it_once() -> None:
    source = (
        "import torch\n"
        "\n"
        "\n"
        "def evaluate(model, val_loader, test_loader):\n"
        "    model.eval()\n"
        "    for x in val_loader:\n"
        "        model(x)\n"
        "    for x in test_loader:\n"
        "        model(x)\n"
    )
    result = fix_source(source, unsafe=True)
    assert [v.code for v in result.fixed] == ["GRD101", "GRD101"]
    assert result.source == source.replace("def evaluate", "@torch.no_grad()\ndef evaluate")
