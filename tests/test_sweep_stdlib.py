"""Lint every ``.py`` file of CPython's standard library: no crash, no internal error.

Slow: run with ``pytest -m slow tests/test_sweep_stdlib.py -s``.  The files
are those under ``sysconfig.get_paths()["stdlib"]`` except ``site-packages``,
read the way flake8 reads them (``tokenize.open``: coding cookie, BOM,
universal newlines; latin-1 when that fails).  Files ``ast`` rejects (test
data such as ``badsyntax_*.py`` and lib2to3's Python 2 samples) are skipped
and counted, since flake8 never runs the plugin on them.

Every other file goes through ``engine.check`` with the default settings, in
a ``multiprocessing`` pool of ``GRADMODE_SWEEP_PROCESSES`` workers (default 2;
``1`` runs in this process); results come back in file order, so the summary
is the same on every run.  The test fails on any exception escaping
``check()``, any GRD000 finding (an internal error: every file ``ast``
accepts is analysable), any position outside the file, and any file whose
check takes more than ``PER_FILE_SECONDS``.  The summary printed at the end gives the number of
files, the seconds taken, the GRD000 findings grouped by cause and the count
of every other code.
"""

from __future__ import annotations

import ast
import collections
import multiprocessing
import os
import re
import signal
import sys
import sysconfig
import time
import traceback
from pathlib import Path
from typing import List, NamedTuple, Optional, Tuple

import pytest

from flake8_gradmode.engine import INTERNAL_ERROR, check
from tests.samples import read_like_flake8

#: A file that takes longer than this is reported as a hang, not waited for.
PER_FILE_SECONDS = 120.0
PROCESSES = max(1, int(os.environ.get("GRADMODE_SWEEP_PROCESSES", "2") or "2"))
_NEWLINE = re.compile(r"\r\n|\r|\n")


class Outcome(NamedTuple):
    path: str  # relative to the stdlib root
    skipped: Optional[str]  # why ast rejected the file, or None
    seconds: float
    findings: Tuple[Tuple[int, int, str, str], ...]  # line, col, code, message
    error: Optional[str]  # traceback of an exception that escaped check()
    bad_positions: Tuple[str, ...]


class _TookTooLong(BaseException):
    """Raised by the alarm; not an Exception, so check() cannot swallow it."""


def _on_alarm(signum, frame):  # pragma: no cover - only on a hang
    raise _TookTooLong()


def stdlib_files() -> Tuple[Path, List[Path]]:
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in root.rglob("*.py") if "site-packages" not in p.relative_to(root).parts)
    return root, files


def _positions(source: str, findings) -> Tuple[str, ...]:
    parts = _NEWLINE.split(source)
    if parts and parts[-1] == "":
        parts.pop()
    bad = []
    for line, col, code, message in findings:
        if not (1 <= line <= len(parts) and 0 <= col <= len(parts[line - 1])):
            bad.append(f"{line}:{col} {code} outside the file ({len(parts)} lines): {message[:60]}")
        elif code == INTERNAL_ERROR and len(message.splitlines()) != 1:
            bad.append(f"{line}:{col} {code} message spans lines: {message!r}")
    return tuple(bad)


def sweep_one(job: Tuple[str, str]) -> Outcome:
    root, rel = job
    path = Path(root) / rel
    source = read_like_flake8(path)
    try:
        ast.parse(source, filename=str(path))
    except (SyntaxError, ValueError) as exc:
        return Outcome(rel, f"{type(exc).__name__}: {exc}", 0.0, (), None, ())
    start = time.perf_counter()
    error = None
    findings: Tuple[Tuple[int, int, str, str], ...] = ()
    use_alarm = hasattr(signal, "SIGALRM")
    if use_alarm:
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, PER_FILE_SECONDS)
    try:
        findings = tuple((v.line, v.col, v.code, v.message) for v in check(source, filename=str(path)))
    except _TookTooLong:
        error = f"took more than {PER_FILE_SECONDS:.0f} s"
    except BaseException:  # check() must never raise; anything here is the bug
        error = traceback.format_exc()
    finally:
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
    seconds = time.perf_counter() - start
    return Outcome(rel, None, seconds, findings, error, _positions(source, findings))


def _cause(message: str) -> str:
    """A GRD000 message without the parts that vary from file to file."""
    return re.sub(r"\(.*\)", "(...)", message)


@pytest.mark.slow
def test_sweep_stdlib() -> None:
    root, files = stdlib_files()
    assert len(files) > 500, root
    jobs = [(str(root), str(p.relative_to(root))) for p in files]

    start = time.perf_counter()
    if PROCESSES == 1:
        outcomes = [sweep_one(job) for job in jobs]
    else:
        with multiprocessing.Pool(PROCESSES) as pool:
            outcomes = list(pool.imap(sweep_one, jobs, chunksize=4))  # imap keeps the file order
    elapsed = time.perf_counter() - start

    skipped = [o for o in outcomes if o.skipped is not None]
    linted = [o for o in outcomes if o.skipped is None]
    errors = [o for o in linted if o.error is not None]
    bad_positions = [(o.path, b) for o in linted for b in o.bad_positions]
    grd000 = [(o.path, f) for o in linted for f in o.findings if f[2] == INTERNAL_ERROR]
    internal = [(path, f) for path, f in grd000 if "analysis failed" in f[3]]
    causes = collections.Counter(_cause(f[3]) for _, f in grd000)
    codes = collections.Counter(f[2] for o in linted for f in o.findings if f[2] != INTERNAL_ERROR)
    slowest = sorted(linted, key=lambda o: o.seconds, reverse=True)[:5]

    print()
    print(f"stdlib sweep: {root} (Python {sys.version.split()[0]})")
    print(
        f"  {len(files)} files, {len(linted)} linted, {len(skipped)} skipped (ast rejects them), "
        f"{elapsed:.1f} s wall with {PROCESSES} process(es), {sum(o.seconds for o in linted):.1f} s in check()"
    )
    for o in skipped:
        print(f"  skipped {o.path}: {o.skipped.splitlines()[0][:100]}")
    print(f"  exceptions escaping check(): {len(errors)}")
    print(f"  GRD000: {len(grd000)} ({len(internal)} internal failures)")
    for cause, n in causes.most_common():
        print(f"    {n:5d}  {cause}")
        for path, f in [(p, f) for p, f in grd000 if _cause(f[3]) == cause][:5]:
            print(f"           {path}:{f[0]}:{f[1] + 1}: {f[3][:140]}")
    print("  other findings by code:")
    for code, n in sorted(codes.items()):
        print(f"    {code}: {n}")
    print("  slowest: " + ", ".join(f"{o.path} {o.seconds:.2f} s" for o in slowest))
    for o in errors:
        print(f"  EXCEPTION in {o.path}:\n{o.error}")
    for path, bad in bad_positions:
        print(f"  BAD POSITION in {path}: {bad}")

    assert not errors, [o.path for o in errors]
    assert not internal, [f"{path}:{f[0]}: {f[3]}" for path, f in internal]
    # the finder runs on the tree ast parsed: every file ast accepts is analysed
    assert not grd000, [f"{path}:{f[0]}: {f[3]}" for path, f in grd000]
    assert not bad_positions, bad_positions
    # files that are not test data all parse: a skip there means the reader is wrong
    assert not [o.path for o in skipped if not re.search(r"(^|/)(tests?|lib2to3)(/|$)", o.path)]
