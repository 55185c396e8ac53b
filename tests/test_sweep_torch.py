"""Lint every ``.py`` file of the installed torch package: no crash, no internal error.

Slow (minutes): run with ``pytest -m slow tests/test_sweep_torch.py -s``.
Each file goes through ``engine.check`` with its path as ``filename`` and the
default settings (all rules, default-off ones included).  Files are read the
way flake8 reads them (``tokenize.open``: coding cookie, BOM, universal
newlines, latin-1 fallback); files ``ast`` cannot parse are skipped and
counted, since flake8 never runs the plugin on them.  Positions must lie
inside the file.

A file whose check takes more than ``PER_FILE_SECONDS`` counts as a hang
(the run goes on and fails at the end).  Set ``GRADMODE_SWEEP_FINDINGS=<path>``
to write every finding (``file:line:col: CODE message``, col 1-based as flake8
prints it) to a file.
"""

from __future__ import annotations

import ast
import collections
import importlib.util
import os
import signal
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import List, Tuple

import pytest

from flake8_gradmode import engine
from flake8_gradmode.engine import INTERNAL_ERROR, check
from flake8_gradmode.registry import RULES
from tests.samples import read_like_flake8

#: A file that takes longer than this is reported as a hang, not waited for.
PER_FILE_SECONDS = 60.0


class _TookTooLong(BaseException):
    """Raised by the alarm; not an Exception, so check() cannot swallow it."""


def _on_alarm(signum, frame):
    raise _TookTooLong()


def _torch_root() -> Path:
    spec = importlib.util.find_spec("torch")  # does not import torch
    if spec is None or not spec.submodule_search_locations:
        pytest.importorskip("torch")  # skips: torch is not installed
    return Path(list(spec.submodule_search_locations)[0])


@dataclass
class Sweep:
    findings: List[Tuple[str, int, int, str, str]]
    exceptions: List[str]
    too_slow: List[str]
    #: findings whose (line, col) is not inside the file
    outside: List[str]


@pytest.fixture(scope="module")
def sweep() -> Sweep:
    """Run the engine over torch once; both tests below read the result."""
    root = _torch_root()
    files = sorted(root.rglob("*.py"))
    assert files, root

    previous_handler = signal.signal(signal.SIGALRM, _on_alarm)
    counts: collections.Counter = collections.Counter()
    findings: List[Tuple[str, int, int, str, str]] = []
    exceptions: List[str] = []
    too_slow: List[str] = []
    outside: List[str] = []
    skipped: List[str] = []
    # files the text sieve lets through to the walk (informational only)
    enabled = tuple(r for r in RULES if r.default_on)
    parsed = 0
    in_check = 0.0
    start = time.perf_counter()
    try:
        for path in files:
            rel = str(path.relative_to(root.parent))
            text = read_like_flake8(path)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ast.parse(text)
            except (SyntaxError, ValueError):
                skipped.append(rel)
                continue
            if engine._triggered(enabled, text):
                parsed += 1
            before = time.perf_counter()
            signal.setitimer(signal.ITIMER_REAL, PER_FILE_SECONDS)
            try:
                violations = check(text, filename=str(path))
            except _TookTooLong:
                too_slow.append(f"{rel} ({text.count(chr(10))} lines)")
                continue
            except Exception as exc:  # check() must never raise
                exceptions.append(f"{rel}: {type(exc).__name__}: {exc}")
                continue
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
                in_check += time.perf_counter() - before
            lines = text.splitlines()
            for v in violations:
                counts[v.code] += 1
                findings.append((rel, v.line, v.col, v.code, v.message))
                if not (1 <= v.line <= max(1, len(lines)) and 0 <= v.col <= len(lines[v.line - 1] if lines else "")):
                    outside.append(f"{rel}:{v.line}:{v.col} {v.code}")
    finally:
        signal.signal(signal.SIGALRM, previous_handler)
    seconds = time.perf_counter() - start

    linted = len(files) - len(skipped)
    per_code = ", ".join(f"{code}={n}" for code, n in sorted(counts.items())) or "none"
    print(
        f"\ntorch sweep: {linted} files linted ({len(skipped)} skipped: ast cannot parse) "
        f"in {seconds:.1f} s ({in_check:.1f} s in check(); {parsed} files past the sieve); "
        f"{INTERNAL_ERROR}={counts[INTERNAL_ERROR]}; per code: {per_code}"
    )
    for rel in skipped:
        print(f"  skipped {rel}")
    for rel in too_slow:
        print(f"  no result within {PER_FILE_SECONDS:.0f} s: {rel}")
    for rel in exceptions:
        print(f"  exception: {rel}")
    for rel, line, col, code, message in findings:
        print(f"  {rel}:{line}:{col + 1}: {code} {message}")

    out = os.environ.get("GRADMODE_SWEEP_FINDINGS")
    if out:
        with open(out, "w", encoding="utf-8") as handle:
            handle.write(f"# torch sweep: {len(findings)} findings in {linted} files; per code: {per_code}\n")
            for rel, line, col, code, message in findings:
                handle.write(f"{rel}:{line}:{col + 1}: {code} {message}\n")

    return Sweep(findings, exceptions, too_slow, outside)


@pytest.mark.slow
def test_torch_sweep_raises_nothing(sweep: Sweep) -> None:
    internal = [f for f in sweep.findings if f[3] == INTERNAL_ERROR]  # every file ast accepts is analysable
    assert sweep.exceptions == []
    assert internal == []
    assert sweep.outside == []


@pytest.mark.slow
def test_torch_sweep_every_file_finishes(sweep: Sweep) -> None:
    assert sweep.too_slow == []
