#!/usr/bin/env python
"""Compare the findings of two versions of the finder, file by file.

Usage::

    python benchmarks/equivalence.py [PATH ...] [--old REV] [--new REV]
                                     [--no-examples] [--no-fixtures]
                                     [--torch] [--stdlib] [--jobs N] [--json FILE]

Each side is the ``flake8_gradmode`` package of one git revision of this
repository (``--new`` defaults to the working tree), extracted into a
temporary directory with ``git archive`` and run in its own interpreter, so
two finders that share module names never meet in one process.  Both sides
lint the same files with every rule (the default-off ``GRD9`` hints too) and
default settings, calling ``engine.check(text, filename=path)`` on the text
flake8 would read (``tokenize.open``: encoding cookie, universal newlines).

The files: every rule example of the new side (written to a temporary
directory), ``tests/fixtures``, torch's installed source (``--torch``), the
standard library (``--stdlib``), and the paths given (directories are walked
for ``*.py``).  A finding is ``(code, line, column, message)``; the report
lists every file where the two sides differ and counts the findings per code
on each side.  Exit status 0 when the findings are identical, 1 otherwise.

``--old`` defaults to the last revision whose finder ran on libcst, the
reference the ``ast`` finder was ported against.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import textwrap
from importlib.util import find_spec
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parent.parent
#: the last revision whose finder ran on libcst
LIBCST_FINDER = "0b29b20"

#: Runs in a child interpreter: sys.argv[1] is the tree holding the package;
#: file paths come on stdin (JSON), findings go to stdout (JSON).
WORKER = textwrap.dedent(
    """
    import json, sys, tokenize
    from concurrent.futures import ProcessPoolExecutor

    sys.path.insert(0, sys.argv[1])
    jobs = int(sys.argv[2])
    from flake8_gradmode.engine import check


    def lint(path):
        try:
            with tokenize.open(path) as f:
                text = f.read()
        except (OSError, SyntaxError, UnicodeDecodeError):
            return path, None
        try:
            compile(text, path, "exec", 0x400, dont_inherit=True)  # ast only: flake8 runs no plugin otherwise
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return path, None
        return path, [[v.code, v.line, v.col, v.message] for v in check(text, filename=path)]


    if __name__ == "__main__":
        import flake8_gradmode
        paths = json.load(sys.stdin)
        with ProcessPoolExecutor(jobs) as pool:
            found = dict(pool.map(lint, paths, chunksize=8))
        json.dump({"package": flake8_gradmode.__file__, "findings": found}, sys.stdout)
    """
)

Finding = Tuple[str, int, int, str]


def extract(rev: Optional[str], into: Path) -> Path:
    """The package at ``rev`` (None: the working tree) in a directory of its own."""
    if rev is None:
        return ROOT
    archive = into / f"{rev}.tar"
    with open(archive, "wb") as f:
        subprocess.run(["git", "archive", rev, "flake8_gradmode"], cwd=ROOT, stdout=f, check=True)
    target = into / rev
    target.mkdir()
    with tarfile.open(archive) as tar:
        tar.extractall(target)
    return target


def example_files(into: Path) -> List[str]:
    """Every rule example of the working tree, one file each."""
    sys.path.insert(0, str(ROOT))
    from flake8_gradmode.registry import RULES

    out = []
    for rule in RULES:
        for kind, cases in (("valid", rule.VALID), ("invalid", rule.INVALID)):
            for i, case in enumerate(cases, start=1):
                path = into / f"{rule.code}-{kind}-{i}.py"
                path.write_text(case.code, encoding="utf-8")
                out.append(str(path))
    return out


def walk(path: Path) -> List[str]:
    if path.is_file():
        return [str(path)]
    return sorted(str(p) for p in path.rglob("*.py") if p.is_file())


def run_side(tree: Path, paths: Sequence[str], jobs: int) -> Dict[str, Optional[List[Finding]]]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, "-c", WORKER, str(tree), str(jobs)],
        input=json.dumps(list(paths)),
        capture_output=True,
        text=True,
        env=env,
        cwd=tempfile.gettempdir(),  # never import the checkout's package by accident
    )
    if proc.returncode != 0:
        raise SystemExit(f"worker for {tree} failed:\n{proc.stderr[-3000:]}")
    data = json.loads(proc.stdout)
    if not data["package"].startswith(str(tree)):
        raise SystemExit(f"worker for {tree} imported {data['package']}")
    return {p: None if f is None else [tuple(x) for x in f] for p, f in data["findings"].items()}


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="*", type=Path)
    ap.add_argument("--old", default=LIBCST_FINDER, help=f"git revision of the reference (default {LIBCST_FINDER})")
    ap.add_argument("--new", default=None, help="git revision to compare (default: the working tree)")
    ap.add_argument("--no-examples", action="store_true")
    ap.add_argument("--no-fixtures", action="store_true")
    ap.add_argument("--torch", action="store_true", help="torch's installed source")
    ap.add_argument("--stdlib", action="store_true", help="the standard library")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--json", type=Path, help="write every difference here")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        groups: Dict[str, List[str]] = {}
        if not args.no_examples:
            (tmpdir / "examples").mkdir()
            groups["rule examples"] = example_files(tmpdir / "examples")
        if not args.no_fixtures:
            groups["fixtures"] = walk(ROOT / "tests" / "fixtures")
        if args.torch:
            spec = find_spec("torch")
            if spec is None or not spec.submodule_search_locations:
                raise SystemExit("torch is not installed")
            groups["torch"] = walk(Path(list(spec.submodule_search_locations)[0]))
        if args.stdlib:
            groups["stdlib"] = [p for p in walk(Path(sysconfig.get_paths()["stdlib"])) if "site-packages" not in p]
        for path in args.paths:
            groups[str(path)] = walk(path)
        paths = sorted({p for group in groups.values() for p in group})

        old_tree = extract(args.old, tmpdir)
        new_tree = extract(args.new, tmpdir)
        print(f"{len(paths)} files; old = {args.old}, new = {args.new or 'working tree'}", file=sys.stderr)
        old = run_side(old_tree, paths, args.jobs)
        new = run_side(new_tree, paths, args.jobs)

    diffs = []
    counts = {"old": collections.Counter(), "new": collections.Counter()}
    for path in paths:
        a, b = old.get(path), new.get(path)
        for side, found in (("old", a), ("new", b)):
            counts[side].update(f[0] for f in found or ())
        if a != b:
            sa, sb = set(a or ()), set(b or ())
            diffs.append({"path": path, "only_old": sorted(sa - sb), "only_new": sorted(sb - sa)})

    print("files per group: " + ", ".join(f"{name} {len(group)}" for name, group in groups.items()))
    print(f"files analysed: {sum(1 for p in paths if new.get(p) is not None)} (others do not parse)")
    codes = sorted(set(counts["old"]) | set(counts["new"]))
    per_code = ", ".join(f"{c} {counts['old'][c]} -> {counts['new'][c]}" for c in codes)
    print(f"findings per code (old -> new): {per_code}")
    print(f"files whose findings differ: {len(diffs)}")
    for d in diffs:
        print(f"  {d['path']}")
        for f in d["only_old"]:
            print(f"    - {f[0]} {f[1]}:{f[2]} {f[3]}")
        for f in d["only_new"]:
            print(f"    + {f[0]} {f[1]}:{f[2]} {f[3]}")
    if args.json:
        args.json.write_text(json.dumps(diffs, indent=1))
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
