#!/usr/bin/env python
"""Run the standalone command over a corpus of real projects and write a reading sheet.

Usage::

    python benchmarks/precision.py --corpus DIR --split tune|heldout|heldout2|...|heldout26|all
                                   [--codes GRD101,...] [--out FILE]
                                   [--verdicts FILE] [--projects CSV] [--jobs N]
                                   [--cold-warm]

The projects, their commits, kinds and the fixed split into a tuning half and
a held-out half are listed in ``precision_projects.csv`` next to this script.
``DIR/<owner>+<name>/`` holds each project's files at that commit (its
``*.py`` files and ``pyproject.toml`` / ``setup.cfg`` / ``setup.py``, paths
kept).  A project missing from ``DIR`` is reported and skipped.

For every project of the split, ``flake8-gradmode --format json`` runs once
on the project's directory with the default codes (``--codes`` selects codes
or prefixes instead; they are passed as ``--select``).  When the command
offers ``--gradmode-project-root``, the project's directory is passed to it.

``--out FILE`` writes a reading sheet in markdown: one entry per finding with
the project, the path relative to the project, line, code and message, the
source from the start of the enclosing function (at most 40 lines before the
finding; a longer function shows its header, then ``...``) to 3 lines after
it, and ``verdict:`` / ``pattern:`` lines to fill in.

Standard output gets a count table: findings per code for every project,
the number of ``.py`` files and lines, and totals per split.

``--verdicts FILE`` reads a CSV with the columns
``project,path,line,code,verdict,pattern`` (verdict ``right`` or ``wrong``;
pattern a short label of why a finding is wrong) and prints the precision per
code, the wrong findings grouped by pattern, the findings without a verdict
and the verdicts that match no finding.  Findings and verdicts match on
project, path, line and code.

``--cold-warm`` checks that the project index gives one answer whatever
its cache holds: each project's cache (``.gradmode_cache/`` in its
directory) is deleted, the command runs on an empty cache, then again on the
cache that run wrote, and every finding of one run missing from the other is
printed.  The sheet and the counts are those of the first run.

Exit status: 0 when every project present ran, 2 when the command failed on
one (files that do not parse are skipped with a note), no project was found,
or, with ``--cold-warm``, a project's two runs disagreed.
"""

from __future__ import annotations

import argparse
import ast
import collections
import csv
import json
import os
import shutil
import subprocess
import sys
import tokenize
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

HERE = Path(__file__).resolve().parent
#: where the project index keeps its cache, in the project's root directory
CACHE_DIR = ".gradmode_cache"
PROJECTS = HERE / "precision_projects.csv"
SPLITS = ("tune", "heldout") + tuple(f"heldout{n}" for n in range(2, 260))
#: lines of the enclosing function shown before a finding, at most
CONTEXT_BEFORE = 40
#: lines shown after a finding
CONTEXT_AFTER = 3


class Project(NamedTuple):
    name: str
    commit: str
    kind: str
    split: str

    @property
    def directory_name(self) -> str:
        return self.name.replace("/", "+")


class Finding(NamedTuple):
    project: str
    path: str  # relative to the project's directory, with forward slashes
    line: int
    column: int
    code: str
    message: str


def read_projects(path: Path) -> List[Project]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    projects = [Project(r["name"], r["commit"], r["kind"], r["split"]) for r in rows]
    for p in projects:
        if p.split not in SPLITS:
            raise SystemExit(f"{path}: {p.name}: split must be one of {SPLITS}, not {p.split!r}")
    return projects


def command() -> List[str]:
    """The standalone command, preferably the one installed beside this interpreter."""
    beside = Path(sys.executable).parent / "flake8-gradmode"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("flake8-gradmode")
    if found:
        return [found]
    raise SystemExit("flake8-gradmode is not installed (pip install -e .)")


def has_option(cmd: Sequence[str], option: str) -> bool:
    out = subprocess.run([*cmd, "--help"], capture_output=True, text=True)
    return option in out.stdout


def count_source(directory: Path) -> Tuple[int, int]:
    """Number of ``.py`` files under ``directory`` and their lines."""
    files = lines = 0
    for path in directory.rglob("*.py"):
        if not path.is_file():
            continue
        files += 1
        with open(path, "rb") as f:
            lines += sum(1 for _ in f)
    return files, lines


def run_project(
    cmd: Sequence[str], project: Project, directory: Path, codes: Optional[str], jobs: int, root_option: bool
) -> Tuple[List[Finding], Optional[str]]:
    """Findings of one project, and an error text when the command failed."""
    args = [*cmd, "--format", "json", "--jobs", str(jobs)]
    if codes:
        args += ["--select", codes]
    if root_option:
        args += ["--gradmode-project-root", str(directory)]
    args.append(".")
    done = subprocess.run(args, cwd=directory, capture_output=True, text=True)
    try:
        raw = json.loads(done.stdout)  # the json format prints [] when nothing is found
    except ValueError as exc:
        return [], f"exit status {done.returncode}, unreadable output ({exc}): {done.stderr.strip()[-2000:]}"
    # exit status 2 with a whole document: some files could not be read or
    # parsed (Python 2 code in old projects, a binary file named ``.py``);
    # the rest were linted
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    unparsed = [line for line in errors if "does not parse" in line or "cannot decode" in line]
    if unparsed:
        print(f"{project.name}: {len(unparsed)} file(s) do not parse or decode and were skipped", file=sys.stderr)
    other = [line for line in errors if line not in unparsed]
    if done.returncode not in (0, 1) and (other or not unparsed):
        return [], f"exit status {done.returncode}: {chr(10).join(other)[-2000:]}"
    if other:
        print(f"{project.name}: the command said: {chr(10).join(other)[-2000:]}", file=sys.stderr)
    findings = []
    for item in raw:
        path = os.path.normpath(os.path.join(directory, item["filename"]))
        rel = os.path.relpath(path, directory).replace(os.sep, "/")
        findings.append(
            Finding(project.name, rel, int(item["line"]), int(item["column"]), item["code"], item["message"])
        )
    findings.sort(key=lambda f: (f.path, f.line, f.column, f.code))
    return findings, None


def compare_runs(name: str, cold: List[Finding], warm: List[Finding]) -> List[str]:
    """``project: only cold|only warm: path:line:column code`` for every
    finding one run has and the other lacks."""
    def key(f: Finding) -> Tuple[str, int, int, str]:
        return (f.path, f.line, f.column, f.code)

    cold_keys, warm_keys = {key(f) for f in cold}, {key(f) for f in warm}
    out = [f"{name}: only cold: {p}:{ln}:{col} {code}" for p, ln, col, code in sorted(cold_keys - warm_keys)]
    out += [f"{name}: only warm: {p}:{ln}:{col} {code}" for p, ln, col, code in sorted(warm_keys - cold_keys)]
    return out


def read_source(path: Path) -> List[str]:
    try:
        with tokenize.open(path) as f:
            return f.read().splitlines()
    except (OSError, SyntaxError, UnicodeDecodeError):
        try:
            return path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return []


def function_spans(lines: List[str]) -> List[Tuple[int, int, int]]:
    """(first line including decorators, ``def`` line, last line) of every function."""
    try:
        tree = ast.parse("\n".join(lines))
    except (SyntaxError, ValueError, RecursionError):
        return []
    spans = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            spans.append((first, node.lineno, node.end_lineno or node.lineno))
    return spans


def excerpt(lines: List[str], spans: List[Tuple[int, int, int]], line: int) -> str:
    """Source from the enclosing function's start (or 40 lines) to 3 lines after ``line``."""
    enclosing = [s for s in spans if s[0] <= line <= s[2]]
    last = min(len(lines), line + CONTEXT_AFTER)
    if enclosing:
        first, def_line, _ = max(enclosing, key=lambda s: s[0])
    else:
        first = def_line = max(1, line - CONTEXT_BEFORE + 1)
    shown: List[int] = []
    if line - first + 1 > CONTEXT_BEFORE:
        header = list(range(first, def_line + 1))
        # a multi-line signature: show up to its colon, at most 6 lines
        for n in range(def_line + 1, min(def_line + 6, line)):
            if lines[header[-1] - 1].rstrip().endswith(":"):
                break
            header.append(n)
        shown = header + [-1] + list(range(line - CONTEXT_BEFORE + 1, last + 1))
    else:
        shown = list(range(first, last + 1))
    width = len(str(last))
    out = []
    for n in shown:
        if n == -1:
            out.append(" " * width + "    ...")
            continue
        mark = ">>" if n == line else "  "
        out.append(f"{n:>{width}} {mark} {lines[n - 1] if n <= len(lines) else ''}")
    return "\n".join(out)


def write_sheet(out: Path, corpus: Path, projects: List[Project], findings: Dict[str, List[Finding]]) -> None:
    with open(out, "w", encoding="utf-8") as f:
        f.write("# Reading sheet\n\n")
        f.write("Fill in `verdict: right|wrong` and, for wrong ones, `pattern:` (why).\n")
        number = 0
        for project in projects:
            found = findings.get(project.name, [])
            if not found:
                continue
            f.write(f"\n## {project.name} ({project.commit[:12]}, {project.kind}, {project.split})\n")
            cache: Dict[str, Tuple[List[str], List[Tuple[int, int, int]]]] = {}
            for finding in found:
                number += 1
                if finding.path not in cache:
                    lines = read_source(corpus / project.directory_name / finding.path)
                    cache[finding.path] = (lines, function_spans(lines))
                lines, spans = cache[finding.path]
                f.write(f"\n### {number}. {finding.code} {project.name}:{finding.path}:{finding.line}\n\n")
                f.write(f"{finding.message}\n\n")
                f.write("```python\n" + excerpt(lines, spans, finding.line) + "\n```\n\n")
                f.write("verdict:\npattern:\n")


def print_counts(
    projects: List[Project],
    findings: Dict[str, List[Finding]],
    sizes: Dict[str, Tuple[int, int]],
    missing: List[str],
) -> None:
    codes = sorted({f.code for found in findings.values() for f in found})
    name_width = max([len(p.name) for p in projects] + [len("project")])
    header = f"{'project':<{name_width}} {'split':<7} {'files':>6} {'lines':>7} " + " ".join(
        f"{c:>6}" for c in codes
    )
    print(header + f" {'total':>6}")
    print("-" * (len(header) + 7))
    totals: Dict[str, collections.Counter] = {s: collections.Counter() for s in SPLITS}
    size_totals: Dict[str, List[int]] = {s: [0, 0, 0] for s in SPLITS}
    for p in projects:
        if p.name in missing:
            print(f"{p.name:<{name_width}} {p.split:<7} missing from the corpus")
            continue
        count = collections.Counter(f.code for f in findings.get(p.name, []))
        files, lines = sizes[p.name]
        size_totals[p.split][0] += 1
        size_totals[p.split][1] += files
        size_totals[p.split][2] += lines
        totals[p.split].update(count)
        print(
            f"{p.name:<{name_width}} {p.split:<7} {files:>6} {lines:>7} "
            + " ".join(f"{count[c]:>6}" for c in codes)
            + f" {sum(count.values()):>6}"
        )
    print("-" * (len(header) + 7))
    for split in SPLITS:
        n, files, lines = size_totals[split]
        if not n:
            continue
        count = totals[split]
        label = f"TOTAL {split} ({n} projects)"
        print(
            f"{label:<{name_width}} {split:<7} {files:>6} {lines:>7} "
            + " ".join(f"{count[c]:>6}" for c in codes)
            + f" {sum(count.values()):>6}"
        )


def read_verdicts(path: Path) -> Dict[Tuple[str, str, int, str], Tuple[str, str]]:
    verdicts = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            verdict = row["verdict"].strip().lower()
            if verdict not in ("right", "wrong"):
                raise SystemExit(f"{path}: verdict must be right or wrong, not {row['verdict']!r}: {row}")
            key = (row["project"].strip(), row["path"].strip(), int(row["line"]), row["code"].strip())
            verdicts[key] = (verdict, (row.get("pattern") or "").strip())
    return verdicts


def print_precision(findings: Dict[str, List[Finding]], verdicts_path: Path) -> None:
    verdicts = read_verdicts(verdicts_path)
    per_code: Dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    wrong: Dict[str, List[str]] = collections.defaultdict(list)
    unjudged: List[Finding] = []
    seen = set()
    for found in findings.values():
        for f in found:
            key = (f.project, f.path, f.line, f.code)
            per_code[f.code]["findings"] += 1
            if key not in verdicts:
                unjudged.append(f)
                continue
            seen.add(key)
            verdict, pattern = verdicts[key]
            per_code[f.code][verdict] += 1
            if verdict == "wrong":
                wrong[pattern or "(no pattern)"].append(f"{f.code} {f.project}:{f.path}:{f.line}")
    print()
    print(f"{'code':<7} {'findings':>8} {'right':>6} {'wrong':>6} {'unjudged':>8} {'precision':>9}")
    total: collections.Counter = collections.Counter()
    for code in sorted(per_code):
        c = per_code[code]
        total.update(c)
        judged = c["right"] + c["wrong"]
        precision = f"{100 * c['right'] / judged:.1f}%" if judged else "-"
        unj = c["findings"] - judged
        print(f"{code:<7} {c['findings']:>8} {c['right']:>6} {c['wrong']:>6} {unj:>8} {precision:>9}")
    judged = total["right"] + total["wrong"]
    precision = f"{100 * total['right'] / judged:.1f}%" if judged else "-"
    unj = total["findings"] - judged
    print(f"{'all':<7} {total['findings']:>8} {total['right']:>6} {total['wrong']:>6} {unj:>8} {precision:>9}")
    if wrong:
        print("\nWrong findings by pattern:")
        for pattern, items in sorted(wrong.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            print(f"  {pattern} ({len(items)})")
            for item in items:
                print(f"    {item}")
    if unjudged:
        print(f"\nFindings without a verdict ({len(unjudged)}):")
        for f in unjudged:
            print(f"  {f.code} {f.project}:{f.path}:{f.line}")
    stale = sorted(k for k in verdicts if k not in seen and any(k[0] == p for p in findings))
    if stale:
        print(f"\nVerdicts that match no finding ({len(stale)}):")
        for project, path, line, code in stale:
            print(f"  {code} {project}:{path}:{line} ({verdicts[(project, path, line, code)][0]})")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", required=True, type=Path, help="directory holding <owner>+<name>/ per project")
    parser.add_argument("--split", required=True, choices=SPLITS + ("all",))
    parser.add_argument(
        "--codes", help="comma-separated codes or prefixes (passed as --select); default codes if unset"
    )
    parser.add_argument("--out", type=Path, help="write the reading sheet (markdown) here")
    parser.add_argument("--verdicts", type=Path, help="CSV project,path,line,code,verdict,pattern: print precision")
    parser.add_argument("--projects", type=Path, default=PROJECTS, help="project list (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=2, help="--jobs for each run (default: 2)")
    parser.add_argument(
        "--cold-warm", action="store_true",
        help="run each project on an empty cache, then on a warm one, and report any finding that differs",
    )
    args = parser.parse_args(argv)

    projects = [p for p in read_projects(args.projects) if args.split in ("all", p.split)]
    cmd = command()
    root_option = has_option(cmd, "--gradmode-project-root")
    findings: Dict[str, List[Finding]] = {}
    sizes: Dict[str, Tuple[int, int]] = {}
    missing: List[str] = []
    disagreements: List[str] = []
    failed = False
    for project in projects:
        directory = (args.corpus / project.directory_name).resolve()
        if not directory.is_dir():
            missing.append(project.name)
            print(f"{project.name}: missing from {args.corpus}", file=sys.stderr)
            continue
        sizes[project.name] = count_source(directory)
        if args.cold_warm:
            shutil.rmtree(directory / CACHE_DIR, ignore_errors=True)
        found, error = run_project(cmd, project, directory, args.codes, args.jobs, root_option)
        if error:
            failed = True
            print(f"{project.name}: the command failed: {error}", file=sys.stderr)
        elif args.cold_warm:
            warm, error = run_project(cmd, project, directory, args.codes, args.jobs, root_option)
            disagreements.extend(compare_runs(project.name, found, warm) if not error else [f"{project.name}: {error}"])
        findings[project.name] = found
    if args.out:
        write_sheet(args.out, args.corpus, projects, findings)
    print(f"command: {' '.join(cmd)}; project root option: {'yes' if root_option else 'no'}")
    print_counts(projects, findings, sizes, missing)
    if args.verdicts:
        print_precision(findings, args.verdicts)
    if args.cold_warm:
        print(f"\ncold and warm runs: {len(findings) - len({d.split(':')[0] for d in disagreements})} "
              f"of {len(findings)} projects agree")
        for line in disagreements:
            print(f"  {line}")
    return 2 if failed or not findings or disagreements else 0


if __name__ == "__main__":
    sys.exit(main())
