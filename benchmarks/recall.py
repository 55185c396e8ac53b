#!/usr/bin/env python
"""Recall on real fix commits: does the linter flag the bug a commit fixed?

Usage::

    python benchmarks/recall.py --repos DIR [--manifest CSV]
                                [--split tune|heldout|all] [--verbose]

Each row of the manifest (``recall_manifest.csv`` next to this script) names
a public repository, a commit that fixed a grad-mode bug in one file, the
file, the class of the bug and the half of the benchmark it belongs to.
``DIR/<owner>/<name>`` must be a git directory of that repository (bare, or a
work tree holding ``.git``) with the commit and its parent.

For every row the script reads the file as it was before the fix
(``commit^``) and after it (``commit``), lints both in-process with the
default codes (every rule but the ``GRD9`` hints) and default settings, and
counts the findings of the class's code.  A row is CAUGHT when the version
before the fix has more of them than the version after.  A file that does not
decode or parse, and a class whose rule does not exist yet, count as missed
(with a note); a repository or commit that is not there is reported and left
out of the counts.

With ``--split tune`` only the tune half is linted, so the held-out half stays
unseen while the rules are tuned.  With ``--trees DIR`` each side is linted
inside its whole project: the repository's Python files at that commit are
written out under ``DIR`` once (and reused), and the file is linted there
with the project index on, so callers and helpers in other modules count, as
they do for a user linting a checkout.  Without it each file is linted alone.
Exit status 0.
"""

from __future__ import annotations

import argparse
import ast
import csv
import io
import subprocess
import sys
import tokenize
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from flake8_gradmode.engine import INTERNAL_ERROR, check
from flake8_gradmode.project import may_pin_torch
from flake8_gradmode.registry import DEFAULT_IGNORE, RULES
from flake8_gradmode.settings import Settings

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "recall_manifest.csv"

#: manifest class -> the code that should report the bug the commit fixed
CLASS_CODES: Dict[str, str] = {
    "no_grad": "GRD101",
    "eval": "GRD102",
    "train": "GRD103",
    "loss_accum": "GRD104",
    "volatile": "GRD003",
    "param_edit": "GRD004",
    "numpy": "GRD006",
}
SPLITS = ("tune", "heldout")
COLUMNS = ("repo", "commit", "path", "class", "split", "why")


class Row(NamedTuple):
    repo: str
    commit: str
    path: str
    cls: str
    split: str
    why: str


class Outcome(NamedTuple):
    row: Row
    before: Optional[int]  # findings of the class's code; None when not linted
    after: Optional[int]
    caught: bool
    note: str
    available: bool = True


def read_manifest(path: Path) -> List[Row]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise SystemExit(f"{path}: missing columns {', '.join(missing)}")
        rows = [Row(*(record[c].strip() for c in COLUMNS)) for record in reader]
    for row in rows:
        if row.cls not in CLASS_CODES:
            raise SystemExit(f"{path}: unknown class {row.cls!r} ({row.repo} {row.commit[:10]})")
        if row.split not in SPLITS:
            raise SystemExit(f"{path}: unknown split {row.split!r} ({row.repo} {row.commit[:10]})")
    return rows


def git_dir(repos: Path, repo: str) -> Optional[Path]:
    path = repos.joinpath(*repo.split("/"))
    if (path / ".git").is_dir():
        return path / ".git"
    return path if path.is_dir() else None


def blob(gitdir: Path, rev: str, path: str) -> Optional[bytes]:
    """The file ``path`` at ``rev``, or None when git has no such object."""
    proc = subprocess.run(
        ["git", "--git-dir", str(gitdir), "show", f"{rev}:{path}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    return proc.stdout if proc.returncode == 0 else None


def decode(data: bytes) -> str:
    """The text flake8 would read: the encoding cookie or UTF-8, universal
    newlines; latin-1 when the cookie names no codec or the bytes do not decode."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        return io.TextIOWrapper(io.BytesIO(data), encoding, newline=None).read()
    except (SyntaxError, UnicodeError):
        return io.TextIOWrapper(io.BytesIO(data), "latin-1", newline=None).read()


def default_rules() -> Tuple[type, ...]:
    return tuple(rule for rule in RULES if not rule.code.startswith(DEFAULT_IGNORE))


#: the files a tree is written out with: Python modules and project markers,
#: and the files that may say which PyTorch the project wants
#: (``project.may_pin_torch``: the linter reads them before reporting the
#: pre-0.4 ``volatile=`` flag)
_TREE_FILES = (".py", ".ipynb", "setup.cfg", "pyproject.toml")
#: marks a finished tree; trees written before the linter read every such file lack it
_DONE = ".complete-4"


def tree(gitdir: Path, rev: str, trees: Path, repo: str) -> Optional[Path]:
    """The repository's Python files at ``rev`` (with its notebooks, its files
    without an extension and those that name a PyTorch version), written out once under
    ``trees/<owner>+<name>/<commit>/``; None when git cannot list them."""
    sha = subprocess.run(["git", "--git-dir", str(gitdir), "rev-parse", rev], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True).stdout.strip()
    if not sha:
        return None
    root = trees / repo.replace("/", "+") / sha
    done = root / _DONE
    if done.exists():
        return root
    listing = subprocess.run(["git", "--git-dir", str(gitdir), "ls-tree", "-r", "-z", sha],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    if listing.returncode != 0:
        return None
    wanted = []
    for entry in listing.stdout.split(b"\0"):
        meta, _, name = entry.partition(b"\t")
        parts = meta.split()
        path = name.decode("utf-8", "replace")
        last = path.rpartition("/")[2]
        # notebooks and files without an extension (scripts like ``bin/run``) may import the project's modules
        kept = path.endswith(_TREE_FILES) or may_pin_torch(last) or "." not in last
        if len(parts) == 3 and parts[1] == b"blob" and kept:
            wanted.append((parts[2], path))
    batch = subprocess.run(["git", "--git-dir", str(gitdir), "cat-file", "--batch"],
                           input=b"".join(obj + b"\n" for obj, _ in wanted), stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL)
    data, at = batch.stdout, 0
    for obj, name in wanted:
        end = data.index(b"\n", at)
        header = data[at:end].split()
        at = end + 1
        if len(header) < 3 or header[1] == b"missing":
            continue
        size = int(header[2])
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data[at:at + size])
        at += size + 1
    root.mkdir(parents=True, exist_ok=True)
    done.write_text("", encoding="utf-8")
    return root


def count(source: bytes, path: str, code: str, rules: Sequence[type],
          settings: Settings = Settings(cross_module=False)) -> Tuple[Optional[int], str]:
    """Findings of ``code`` in ``source``; None and a reason when it cannot be linted."""
    try:
        text = decode(source)
        ast.parse(text, path)
    except (SyntaxError, ValueError) as exc:
        return None, f"does not parse ({type(exc).__name__}: {str(exc).splitlines()[0][:80] if str(exc) else ''})"
    violations = check(text, settings, rules, filename=path)
    errors = [v for v in violations if v.code == INTERNAL_ERROR]
    if errors:
        return None, f"analysis error ({errors[0].message[:100]})"
    return sum(1 for v in violations if v.code == code), ""


def evaluate(row: Row, repos: Path, rules: Sequence[type], known: Sequence[str],
             trees: Optional[Path] = None) -> Outcome:
    gitdir = git_dir(repos, row.repo)
    if gitdir is None:
        return Outcome(row, None, None, False, f"no git directory {row.repo}", available=False)
    old = blob(gitdir, f"{row.commit}^", row.path)
    new = blob(gitdir, row.commit, row.path)
    if old is None or new is None:
        return Outcome(row, None, None, False, "commit or file not in the repository", available=False)
    code = CLASS_CODES[row.cls]
    if code not in known:
        return Outcome(row, 0, 0, False, f"{code} does not exist yet")
    sides = []
    for rev, source in ((f"{row.commit}^", old), (row.commit, new)):
        root = tree(gitdir, rev, trees, row.repo) if trees is not None else None
        if root is None:
            sides.append(count(source, row.path, code, rules))
        else:
            settings = Settings(project_root=str(root))
            sides.append(count(source, str(root / row.path), code, rules, settings))
    (before, why_before), (after, why_after) = sides
    notes = [f"{side} {why}" for side, why in (("before", why_before), ("after", why_after)) if why]
    caught = before is not None and after is not None and before > after
    return Outcome(row, before, after, caught, "; ".join(notes))


def percent(caught: int, rows: int) -> str:
    return f"{100.0 * caught / rows:5.1f}%" if rows else "    -"


def table(outcomes: Sequence[Outcome], splits: Sequence[str]) -> List[str]:
    columns = list(splits) + (["all"] if len(splits) > 1 else [])
    counted = [o for o in outcomes if o.available]

    def cell(items: Sequence[Outcome]) -> str:
        caught = sum(o.caught for o in items)
        return f"{caught:>3}/{len(items):<3} {percent(caught, len(items))}"

    def line(label: str, code: str, items: Sequence[Outcome]) -> str:
        cells = [cell([o for o in items if column == "all" or o.row.split == column]) for column in columns]
        return f"{label:<12} {code:<7} " + "  ".join(f"{c:<14}" for c in cells)

    width = 12 + 1 + 7 + 1 + 16 * len(columns)
    out = [f"{'class':<12} {'code':<7} " + "  ".join(f"{c:<14}" for c in columns), "-" * width]
    for cls, code in CLASS_CODES.items():
        items = [o for o in counted if o.row.cls == cls]
        if items:
            out.append(line(cls, code, items))
    out.append("-" * width)
    out.append(line("overall", "", counted))
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repos", required=True, type=Path, help="folder holding <owner>/<name> git directories")
    parser.add_argument("--manifest", type=Path, default=MANIFEST, help=f"the fix commits (default: {MANIFEST.name})")
    parser.add_argument("--split", choices=("tune", "heldout", "all"), default="all", help="which half to lint")
    parser.add_argument("--verbose", action="store_true", help="print each row's before/after counts")
    parser.add_argument("--trees", type=Path, help="lint each file inside its project, written out here")
    args = parser.parse_args(argv)

    rows = read_manifest(args.manifest)
    splits = SPLITS if args.split == "all" else (args.split,)
    rows = [row for row in rows if row.split in splits]
    rules = default_rules()
    known = [rule.code for rule in rules]
    outcomes = [evaluate(row, args.repos, rules, known, args.trees) for row in rows]

    if args.verbose:
        for o in outcomes:
            counts = "  -> " if o.before is None and o.after is None else f"{_n(o.before)}->{_n(o.after)}"
            status = "CAUGHT" if o.caught else ("n/a" if not o.available else "missed")
            print(
                f"{status:<6} {o.row.cls:<10} {o.row.split:<7} {counts:>6}  "
                f"{o.row.repo} {o.row.commit[:10]} {o.row.path}" + (f"  [{o.note}]" if o.note else "")
            )
        print()

    where = "each file inside its project" if args.trees else "each file alone"
    print(f"Recall on {len(rows)} fix commits from {args.manifest.name} (split: {args.split}; {where})")
    print("caught = more findings of the class's code before the fix than after it")
    print()
    for text in table(outcomes, splits):
        print(text)
    unavailable = [o for o in outcomes if not o.available]
    unparsed = [o for o in outcomes if o.available and o.note and "does not exist" not in o.note]
    absent = sorted({CLASS_CODES[o.row.cls] for o in outcomes if "does not exist" in o.note})
    if unparsed:
        print(f"\n{len(unparsed)} row(s) with a file that could not be linted, counted as missed"
              + ("" if args.verbose else " (--verbose lists them)"))
    if absent:
        print(f"\nno rule yet for {', '.join(absent)}: those rows count as missed")
    if unavailable:
        print(f"\n{len(unavailable)} row(s) left out: repository, commit or file not found under {args.repos}")
        for o in unavailable:
            print(f"  {o.row.repo} {o.row.commit[:10]} {o.row.path}: {o.note}")
    return 0


def _n(value: Optional[int]) -> str:
    return "?" if value is None else str(value)


if __name__ == "__main__":
    sys.exit(main())
