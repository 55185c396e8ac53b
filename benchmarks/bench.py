#!/usr/bin/env python
"""Benchmark flake8-gradmode: flake8 with the plugin against flake8 alone.

Usage::

    python benchmarks/bench.py [PATH ...] [--repeat N] [--sample K] [--limit N]
                               [--editor-runs N] [--json]

What is measured (see docs/performance.md for the numbers):

1. Corpus.  The given files/directories; by default the source of the
   installed ``torch`` package (found with ``importlib.util.find_spec`` without
   importing torch).  Only ``.py`` files that ``ast`` parses are kept (flake8
   runs no tree plugin on the others).  flake8 alone needs about six minutes
   for all of torch's ~1.2 million lines on one core, so the *default torch
   corpus is a deterministic sample: every 5th file in sorted path order*
   (``--sample 5``, about a fifth of the lines); ``--sample 1`` takes every
   file.  Explicit paths default to ``--sample 1``.  ``--limit N`` keeps the N
   largest files instead.  The table always says which files were used.

2. Whole corpus.  Each round runs flake8 twice in fresh subprocesses, same
   interpreter, same flake8, same file list, ``--isolated -j1``:

   * without: the plugin is *not discovered*;
   * with:    the plugin is discovered.

   Neither passes ``--select``: both run flake8's default selection, which
   is what a user without configuration gets (every plugin's codes, minus
   the codes it ignores by default, so the opinionated GRD9 hints stay off;
   ``--select ...,GRD`` would turn them on).  Selecting codes does not stop flake8 from running a plugin (``--select``
   only filters what is reported; ``--enable-extensions`` only concerns
   plugins that are off by default), so the baseline removes the plugin one
   step earlier: the child is ``python -c WRAPPER``, where WRAPPER replaces
   ``flake8.plugins.finder.find_plugins`` by a version that keeps only the
   distributions flake8 ships with (flake8, pyflakes, pycodestyle, mccabe)
   plus the one plugin under test, and then calls ``flake8.main.cli.main``.
   Both runs go through the same wrapper, so they differ only in that list.
   The wrapper reports the plugin distributions it kept and whether (and from
   where) ``flake8_gradmode`` was imported; the benchmark aborts if the
   baseline imported it, so the baseline provably never ran the checker, or
   if a "with" run imported another copy than the one this process times.
   The order alternates every round (without/with, then with/without, ...).
   Reported: median wall seconds and median CPU seconds (user+sys of the
   child, from ``os.wait4``) of each, the median of the per-round ratios, and
   the child's peak RSS (VmHWM).  flake8's ``--benchmark`` counters are compared to
   make sure both runs processed the same files.

3. Plugin alone.  The flake8 plugin class run on every file exactly as
   flake8 runs it: ``GradModeChecker(tree, lines, filename).run()`` with the
   ``ast`` tree already parsed (flake8 parses every file once for all its
   plugins, so the parse is not the plugin's cost).  Reported: total, median
   and p95 per file, ms per 1,000 lines, the share of files (and lines) that
   the text sieve (``engine._triggered``, default-on rules) lets through to
   the walk, and the slowest files.  TorchFix, when importable, is timed the same
   way as a flake8 tree plugin.

4. Editor case.  Cold ``flake8 FILE`` runs, each a fresh subprocess as an
   editor spawns one on every save, alternating with and without the plugin
   (``--editor-runs`` each, fewer, 3 at least, once ``--editor-budget``
   seconds are spent): the difference of the medians is what a save costs
   extra, plugin import included.  The files: a generated 1,000-line
   training script (``training_script``: model classes with dropout and
   batch norm, training and evaluation loops, optimizer steps; our own text,
   the same every run, denser in calls than real scripts, so a worst case),
   the real training scripts given with ``--editor-file``, and the largest
   file of the corpus (before sampling).
   From fresh processes (median of 5): the time and peak-RSS growth of
   importing the plugin after flake8 is imported, and of its first check.
   The plugin's package is compiled to bytecode first, as ``pip install``
   does; otherwise a checkout under ``PYTHONDONTWRITEBYTECODE`` would be
   compiled again in every process.

5. Growth.  The plugin alone (warm, tree given) on generated training
   scripts of 1,000 and 50,000 lines: the cost per line of the large one
   divided by that of the small one (1.0 means linear).

6. TorchFix.  If ``torchfix`` is importable it is measured as a third
   column of the whole corpus, in the editor case,
   and alone as a flake8 tree plugin; otherwise it is silently skipped.

Only the standard library, flake8 and the plugin are used.  Run it on an
otherwise idle machine: CPU seconds are less sensitive to other load than
wall seconds, and the table shows the load average before and after.
"""

from __future__ import annotations

import argparse
import ast
import importlib.metadata
import importlib.util
import inspect
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tokenize
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

#: distributions that make up "flake8 alone"
FLAKE8_OWN = ("flake8", "pyflakes", "pycodestyle", "mccabe")
DEFAULT_TORCH_SAMPLE = 5
EDITOR_SCRIPT_LINES = 1000
SKIP_DIRS = {".git", ".hg", ".svn", ".bzr", "CVS", "__pycache__", ".tox", ".nox", ".eggs"}

# The child process.  argv: [json config, file-list path, flake8 args...]
WRAPPER = r"""
import json, sys
cfg = json.loads(sys.argv[1])
keep = set(cfg["keep"])
from flake8 import utils
from flake8.plugins import finder
_find = finder.find_plugins
kept = []
def find_plugins(cfg_, opts):
    out = [p for p in _find(cfg_, opts) if utils.normalize_pypi_name(p.package) in keep]
    kept[:] = sorted({p.package for p in out})
    return out
finder.find_plugins = find_plugins
with open(sys.argv[2], encoding="utf-8") as f:
    files = [line for line in f.read().split("\n") if line]
from flake8.main import cli
try:
    code = cli.main(sys.argv[3:] + files)
finally:
    sys.stdout.flush()
    mod = sys.modules.get("flake8_gradmode")
    report = {"kept": kept, "gradmode_imported": mod is not None, "gradmode_file": getattr(mod, "__file__", None),
              "hwm_kb": None}
    try:
        with open("/proc/self/status") as f:
            report["hwm_kb"] = int([l for l in f if l.startswith("VmHWM:")][0].split()[1])
    except (OSError, IndexError, ValueError):
        pass
    sys.stderr.write("BENCH-REPORT " + json.dumps(report) + "\n")
sys.exit(0 if code in (0, 1) else code)
"""


# --- helpers -----------------------------------------------------------------


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def percentile(xs: Sequence[float], q: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    k = (len(s) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def loadavg() -> Optional[Tuple[float, float, float]]:
    try:
        return os.getloadavg()
    except OSError:
        return None


def read_like_flake8(path: str) -> str:
    """flake8's FileProcessor: tokenize.open, latin-1 on decoding trouble."""
    try:
        with tokenize.open(path) as f:
            return "".join(f.readlines())
    except (SyntaxError, UnicodeError):
        with open(path, encoding="latin-1") as f:
            return "".join(f.readlines())


def default_corpus() -> List[str]:
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("torch is not installed; give the files or directories to measure")
    return list(spec.submodule_search_locations)[:1]


def collect(paths: Sequence[str]) -> Tuple[List[Tuple[str, int]], int]:
    """(path, lines) of every .py file ast parses, sorted by path; and #skipped."""
    found: List[str] = []
    for p in paths:
        if os.path.isfile(p):
            found.append(os.path.abspath(p))
            continue
        for root, dirs, files in os.walk(p):
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg"))
            found.extend(os.path.abspath(os.path.join(root, f)) for f in files if f.endswith(".py"))
    out: List[Tuple[str, int]] = []
    skipped = 0
    for path in sorted(set(found)):
        try:
            with open(path, "rb") as f:
                data = f.read()
            ast.parse(data, filename=path)
        except (SyntaxError, ValueError, UnicodeError, OSError, RecursionError, MemoryError):
            skipped += 1
            continue
        out.append((path, len(data.splitlines())))
    return out, skipped


def find_torchfix() -> Optional[Dict[str, Any]]:
    """The torchfix flake8 entry point, if torchfix is importable."""
    if importlib.util.find_spec("torchfix") is None:
        return None
    for dist in importlib.metadata.distributions():
        if norm(dist.metadata["Name"] or "") != "torchfix":
            continue
        for ep in dist.entry_points:
            if ep.group == "flake8.extension":
                return {"dist": dist.metadata["Name"], "ep": ep, "code": ep.name}
    return None


def git_state(path: str) -> Optional[str]:
    try:
        head = subprocess.run(
            ["git", "-C", path, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", path, "status", "--porcelain", "--untracked-files=no", "--", "flake8_gradmode"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


# --- flake8 runs in a subprocess ----------------------------------------------


class Variant:
    def __init__(self, name: str, keep: Sequence[str], prefix: Optional[str], args: Sequence[str] = (),
                 before: Optional[Callable[[], None]] = None, warm_up: bool = False) -> None:
        self.name = name
        self.keep = [norm(k) for k in keep]
        self.prefix = prefix  # code prefix of the plugin under test
        self.args = list(args)  # extra flake8 arguments
        self.before = before  # run before each timed run (not timed): e.g. empty the cache
        self.warm_up = warm_up  # one untimed run first: fills the cache a warm run reads


#: Files that mark a project's root, where the index keeps its cache (as the plugin finds it).
ROOT_MARKERS = ("pyproject.toml", "setup.cfg", "setup.py", ".git")


def clear_caches(roots: Sequence[str], project_root: Optional[str] = None) -> Callable[[], None]:
    """Remove every project-index cache the runs may read: under ``roots``,
    at ``project_root`` (``--project-root``) and at the project root above
    each of ``roots`` (the nearest directory with a root marker), where the
    plugin keeps the cache of a file's project.  The next run starts cold."""
    tops = [*roots, *([project_root] if project_root else [])]
    for root in roots:
        here = os.path.abspath(root)
        while not any(os.path.exists(os.path.join(here, m)) for m in ROOT_MARKERS):
            parent = os.path.dirname(here)
            if parent == here:
                break
            here = parent
        else:
            tops.append(here)

    def clear() -> None:
        for root in tops:
            for top, dirs, _ in os.walk(root):
                if ".gradmode_cache" in dirs:
                    shutil.rmtree(os.path.join(top, ".gradmode_cache"), ignore_errors=True)
                dirs[:] = [d for d in dirs if not d.startswith(".")]
    return clear


def run_flake8(variant: Variant, listfile: str, benchmark: bool = True) -> Dict[str, Any]:
    cfg = json.dumps({"keep": variant.keep})
    args = [sys.executable, "-c", WRAPPER, cfg, listfile, "--isolated", "-j1",
            "--format=%(code)s", *variant.args]
    if variant.before is not None:
        variant.before()
    if benchmark:
        args.append("--benchmark")
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = _communicate(proc)
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    text = out.decode("utf-8", "replace")
    errtext = err.decode("utf-8", "replace")
    report = None
    for line in errtext.splitlines():
        if line.startswith("BENCH-REPORT "):
            report = json.loads(line[len("BENCH-REPORT "):])
    if proc.returncode != 0 or report is None:
        raise SystemExit(f"flake8 ({variant.name}) failed with {proc.returncode}:\n{errtext[-3000:]}")
    counts: Dict[str, int] = {}
    bench: Dict[str, float] = {}
    for line in text.splitlines():
        m = re.match(r"^(\S+)\s+(total .* processed)$", line)
        if m:
            bench[m.group(2)] = float(m.group(1))
            continue
        if re.match(r"^[A-Z]+[0-9]+$", line):
            counts[line] = counts.get(line, 0) + 1
    return {
        "wall": wall,
        "cpu": ru.ru_utime + ru.ru_stime,
        # VmHWM of the child's own address space; ru_maxrss would start at the
        # parent's peak (Linux carries it across fork/vfork + execve)
        "maxrss_mb": (report["hwm_kb"] or ru.ru_maxrss) / 1024.0,
        "report": report,
        "codes": counts,
        "bench": bench,
    }


def _communicate(proc: "subprocess.Popen[bytes]") -> Tuple[bytes, bytes]:
    """Read both pipes to EOF without reaping the child (os.wait4 does that)."""
    import threading

    chunks: Dict[str, bytes] = {}

    def drain(name: str, stream: Any) -> None:
        chunks[name] = stream.read()
        stream.close()

    t = threading.Thread(target=drain, args=("err", proc.stderr))
    t.start()
    drain("out", proc.stdout)
    t.join()
    return chunks["out"], chunks["err"]


def check_isolation(variant: Variant, result: Dict[str, Any], plugin_dist: str) -> None:
    kept = {norm(k) for k in result["report"]["kept"]}
    under_test = set(variant.keep) - {norm(k) for k in FLAKE8_OWN}
    extra = kept - {norm(k) for k in FLAKE8_OWN} - under_test
    if extra:
        raise SystemExit(f"{variant.name}: unexpected plugins kept: {sorted(extra)}")
    if norm(plugin_dist) not in variant.keep and result["report"]["gradmode_imported"]:
        raise SystemExit(f"{variant.name}: flake8_gradmode was imported in a run that must not run it")
    imported = result["report"].get("gradmode_file")
    if imported is not None:
        import flake8_gradmode

        if os.path.realpath(imported) != os.path.realpath(flake8_gradmode.__file__):
            raise SystemExit(f"{variant.name}: flake8 ran the plugin from {imported}, this process measures "
                             f"{flake8_gradmode.__file__}")
    if under_test and not under_test <= kept:
        raise SystemExit(f"{variant.name}: plugin {sorted(under_test - kept)} was not discovered by flake8")


def whole_corpus(variants: List[Variant], listfile: str, rounds: int, plugin_dist: str,
                 log: Any) -> Dict[str, Any]:
    runs: Dict[str, List[Dict[str, Any]]] = {v.name: [] for v in variants}
    for v in variants:
        if v.warm_up:
            run_flake8(v, listfile)
    for r in range(rounds):
        order = variants if r % 2 == 0 else list(reversed(variants))
        for v in order:
            res = run_flake8(v, listfile)
            check_isolation(v, res, plugin_dist)
            runs[v.name].append(res)
            log(f"  round {r + 1}/{rounds} {v.name:<12} wall {res['wall']:8.2f} s  cpu {res['cpu']:8.2f} s  "
                f"rss {res['maxrss_mb']:7.1f} MB")
    base = variants[0].name
    out: Dict[str, Any] = {"rounds": rounds, "order": "alternating", "variants": {}}
    for v in variants:
        rs = runs[v.name]
        entry: Dict[str, Any] = {
            "wall_s": [round(x["wall"], 3) for x in rs],
            "cpu_s": [round(x["cpu"], 3) for x in rs],
            "median_wall_s": median([x["wall"] for x in rs]),
            "median_cpu_s": median([x["cpu"] for x in rs]),
            "peak_rss_mb": max(x["maxrss_mb"] for x in rs),
            "plugins_kept": rs[0]["report"]["kept"],
            "flake8_counters": rs[0]["bench"],
        }
        if v.prefix:
            entry["findings"] = {c: n for c, n in sorted(rs[0]["codes"].items()) if c.startswith(v.prefix)}
            entry["findings_total"] = sum(entry["findings"].values())
        if v.name != base:
            entry["median_ratio_wall"] = median([a["wall"] / b["wall"] for a, b in zip(rs, runs[base])])
            entry["median_ratio_cpu"] = median([a["cpu"] / b["cpu"] for a, b in zip(rs, runs[base])])
            entry["added_rss_mb"] = entry["peak_rss_mb"] - max(x["maxrss_mb"] for x in runs[base])
            entry["rss_ratio"] = entry["peak_rss_mb"] / max(x["maxrss_mb"] for x in runs[base])
            # both runs must have seen the same files and lines
            b0, v0 = runs[base][0]["bench"], rs[0]["bench"]
            for key in ("total files processed", "total physical lines processed"):
                if key in b0 and key in v0 and b0[key] != v0[key]:
                    raise SystemExit(f"{v.name} and {base} processed different inputs: {key} {v0[key]} != {b0[key]}")
        out["variants"][v.name] = entry
    return out


# --- the plugin alone ---------------------------------------------------------


def _plugin_run(cls: Any) -> Any:
    """Run a flake8 tree plugin class the way flake8 does, the tree given."""
    params = inspect.signature(cls.__init__ if inspect.isclass(cls) else cls).parameters
    names = [n for n, p in params.items() if n != "self" and p.kind is p.POSITIONAL_OR_KEYWORD]

    def run(tree: ast.AST, lines: List[str], path: str) -> List[Any]:
        kwargs = {k: v for k, v in (("tree", tree), ("lines", lines), ("filename", path)) if k in names}
        return list(cls(**kwargs).run())

    return run


def _parsed(path: str) -> Tuple[ast.AST, List[str], str]:
    text = read_like_flake8(path)
    return ast.parse(text), text.splitlines(True), text


def plugin_alone(files: List[Tuple[str, int]], log: Any) -> Dict[str, Any]:
    from flake8_gradmode import engine, registry
    from flake8_gradmode.plugin import GradModeChecker

    run = _plugin_run(GradModeChecker)
    enabled = tuple(r for r in registry.RULES if r.default_on)
    warm = "import torch\nwith torch.no_grad():\n    x.backward()\n"
    run(ast.parse(warm), warm.splitlines(True), "warmup.py")
    times: List[float] = []
    passed_files = passed_lines = total_lines = 0
    codes: Dict[str, int] = {}
    slowest: List[Tuple[float, str, int]] = []
    for path, n_lines in files:
        tree, lines, text = _parsed(path)
        total_lines += n_lines
        if engine._triggered(enabled, text):
            passed_files += 1
            passed_lines += n_lines
        t0 = time.perf_counter()
        found = run(tree, lines, path)
        dt = time.perf_counter() - t0
        times.append(dt)
        slowest.append((dt, path, n_lines))
        if len(times) % 250 == 0:
            log(f"    {len(times)}/{len(files)} files, {sum(times):.1f} s")
        for _, _, message, _ in found:
            code = message.split(" ", 1)[0]
            codes[code] = codes.get(code, 0) + 1
    total = sum(times)
    slowest.sort(reverse=True)
    log(f"  plugin alone: {len(files)} files, {total:.2f} s")
    return {
        "files": len(files),
        "lines": total_lines,
        "total_s": total,
        "median_ms": median(times) * 1e3,
        "p95_ms": percentile(times, 0.95) * 1e3,
        "max_ms": max(times) * 1e3 if times else float("nan"),
        "ms_per_1000_lines": total / max(total_lines, 1) * 1e6,
        "findings": dict(sorted(codes.items())),
        "slowest": [{"file": p, "lines": n, "ms": round(t * 1e3, 1)} for t, p, n in slowest[:5]],
        "sieve_pass_files": passed_files,
        "sieve_pass_file_fraction": passed_files / max(len(files), 1),
        "sieve_pass_line_fraction": passed_lines / max(total_lines, 1),
    }


def generic_plugin_alone(ep: Any, files: List[Tuple[str, int]]) -> Optional[Dict[str, Any]]:
    """Another flake8 tree plugin alone, timed as ``plugin_alone`` times ours."""
    obj = ep.load()
    params = inspect.signature(obj.__init__ if inspect.isclass(obj) else obj).parameters
    if "tree" not in params:
        return None
    run = _plugin_run(obj)
    times: List[float] = []
    lines_total = 0
    for path, n_lines in files:
        tree, lines, _ = _parsed(path)
        lines_total += n_lines
        t0 = time.perf_counter()
        try:
            run(tree, lines, path)
        except Exception:
            pass
        times.append(time.perf_counter() - t0)
    total = sum(times)
    return {
        "files": len(files),
        "total_s": total,
        "median_ms": median(times) * 1e3,
        "p95_ms": percentile(times, 0.95) * 1e3,
        "ms_per_1000_lines": total / max(lines_total, 1) * 1e6,
    }


# --- generated code -----------------------------------------------------------

_BLOCK = '''

class Net{i}(nn.Module):
    def __init__(self, width={w}):
        super().__init__()
        self.fc1 = nn.Linear(width, width * 2)
        self.bn{i} = nn.BatchNorm1d(width * 2)
        self.drop = nn.Dropout(0.{d})
        self.fc2 = nn.Linear(width * 2, 10)

    def forward(self, x):
        x = F.relu(self.bn{i}(self.fc1(x)))
        return self.fc2(self.drop(x))


def train_epoch_{i}(model, loader, optimizer, criterion, device="cpu"):
    model.train()
    running_loss = 0.0
    for step, (inputs, targets) in enumerate(loader):
        inputs, targets = inputs.to(device), targets.to(device)
        optimizer.zero_grad()
        outputs = model(inputs)
        loss = criterion(outputs, targets)
        loss.backward()
        optimizer.step()
        running_loss += loss.item()
        if step % {log} == 0:
            print(f"step {{step}}: loss {{running_loss / (step + 1):.4f}}")
    return running_loss / max(len(loader), 1)


@torch.no_grad()
def evaluate_{i}(model, val_loader, device="cpu"):
    model.eval()
    correct = total = 0
    for inputs, targets in val_loader:
        outputs = model(inputs.to(device))
        correct += (outputs.argmax(1) == targets.to(device)).sum().item()
        total += targets.numel()
    return correct / max(total, 1)


def fit_{i}(epochs, train_loader, val_loader):
    model = Net{i}()
    optimizer = optim.SGD(model.parameters(), lr=0.0{d}, momentum=0.9)
    criterion = nn.CrossEntropyLoss()
    best = 0.0
    for epoch in range(epochs):
        train_epoch_{i}(model, train_loader, optimizer, criterion)
        accuracy = evaluate_{i}(model, val_loader)
        best = max(best, accuracy)
    return model, best
'''


def training_script(n_lines: int) -> str:
    """A training script of about ``n_lines`` lines, the same every run:
    model classes, training and evaluation loops, as real scripts have them."""
    out = ["import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\nimport torch.optim as optim\n"]
    count = 4
    i = 0
    while count < n_lines:
        block = _BLOCK.format(i=i, w=16 + i % 48, d=1 + i % 9, log=10 + i % 90)
        out.append(block)
        count += block.count("\n")
        i += 1
    return "".join(out)


def growth(tmp: str, small: int, large: int, log: Any) -> Dict[str, Any]:
    """Plugin alone on generated scripts of two sizes: cost per line, large/small."""
    from flake8_gradmode.plugin import GradModeChecker

    run = _plugin_run(GradModeChecker)
    out: Dict[str, Any] = {}
    for n in (small, large):
        text = training_script(n)
        tree, lines = ast.parse(text), text.splitlines(True)
        path = os.path.join(tmp, f"generated_{n}.py")
        times = []
        for _ in range(5 if n <= small else 3):
            t0 = time.perf_counter()
            run(tree, lines, path)
            times.append(time.perf_counter() - t0)
        out[str(n)] = {"lines": len(lines), "median_ms": median(times) * 1e3,
                       "ms_per_1000_lines": median(times) * 1e6 / len(lines)}
        log(f"  growth: {len(lines)} lines, {median(times) * 1e3:.1f} ms")
    out["per_line_ratio"] = out[str(large)]["ms_per_1000_lines"] / out[str(small)]["ms_per_1000_lines"]
    return out


# --- the editor case ----------------------------------------------------------


def editor_case(variants: List[Variant], path: str, n_lines: int, runs: int, budget: float, tmp: str,
                plugin_dist: str, log: Any) -> Dict[str, Any]:
    from flake8_gradmode.plugin import GradModeChecker

    listfile = os.path.join(tmp, "editor.txt")
    with open(listfile, "w", encoding="utf-8") as f:
        f.write(path + "\n")
    res: Dict[str, List[Dict[str, Any]]] = {v.name: [] for v in variants}
    started = time.perf_counter()
    done = 0
    for r in range(runs):
        # a slow plugin on a huge file: stop at the time budget, after 3 runs at least
        if r >= 3 and time.perf_counter() - started > budget:
            break
        order = variants if r % 2 == 0 else list(reversed(variants))
        for v in order:
            one = run_flake8(v, listfile, benchmark=False)
            check_isolation(v, one, plugin_dist)
            res[v.name].append(one)
        done += 1
    base = variants[0].name
    out: Dict[str, Any] = {"file": path, "lines": n_lines, "runs": done, "variants": {}}
    for v in variants:
        walls = [x["wall"] for x in res[v.name]]
        entry = {
            "median_wall_ms": median(walls) * 1e3,
            "median_cpu_ms": median([x["cpu"] for x in res[v.name]]) * 1e3,
            "peak_rss_mb": max(x["maxrss_mb"] for x in res[v.name]),
        }
        if v.name != base:
            added = entry["median_wall_ms"] - out["variants"][base]["median_wall_ms"]
            added_cpu = entry["median_cpu_ms"] - out["variants"][base]["median_cpu_ms"]
            entry["added_ms"] = added
            entry["added_cpu_ms"] = added_cpu
            entry["added_ms_per_1000_lines"] = added / max(n_lines, 1) * 1000
            entry["added_rss_mb"] = entry["peak_rss_mb"] - out["variants"][base]["peak_rss_mb"]
        out["variants"][v.name] = entry
        log(f"  editor {v.name:<12} median wall {entry['median_wall_ms']:8.1f} ms")
    # warm: the plugin itself, in this process, tree given
    run = _plugin_run(GradModeChecker)
    tree, lines, _ = _parsed(path)
    warm = []
    for _ in range(3):
        t0 = time.perf_counter()
        run(tree, lines, path)
        warm.append(time.perf_counter() - t0)
    out["warm_check_ms"] = median(warm) * 1e3
    out["warm_check_ms_per_1000_lines"] = out["warm_check_ms"] / max(n_lines, 1) * 1000
    # cold pieces, in fresh processes: importing the plugin once flake8 is
    # imported, its first run, and the RSS they add
    probes = [_probe(path) for _ in range(5)]
    out["cold_import_ms"] = median([p["import_s"] for p in probes]) * 1e3
    out["cold_first_check_ms"] = median([p["check_s"] for p in probes]) * 1e3
    out["import_rss_mb"] = median([p["rss_import"] - p["rss_start"] for p in probes]) / 1024.0
    out["check_rss_mb"] = median([p["rss_check"] - p["rss_import"] for p in probes]) / 1024.0
    out["libcst_imported"] = any(p["libcst"] for p in probes)
    return out


PROBE = r"""
import json, resource, sys, time, tokenize
def rss():
    # VmHWM: peak RSS of this address space (ru_maxrss may be the parent's)
    try:
        with open("/proc/self/status") as f:
            return int([l for l in f if l.startswith("VmHWM:")][0].split()[1])
    except (OSError, IndexError, ValueError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
import ast
import flake8.main.cli, flake8.checker, flake8.style_guide
with tokenize.open(sys.argv[1]) as f:
    text = f.read()
tree = ast.parse(text)
r0 = rss()
t0 = time.perf_counter()
from flake8_gradmode.plugin import GradModeChecker
t1 = time.perf_counter()
r1 = rss()
t2 = time.perf_counter()
list(GradModeChecker(tree, text.splitlines(True), sys.argv[1]).run())
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "check_s": t3 - t2, "rss_start": r0, "rss_import": r1, "rss_check": rss(),
                  "libcst": "libcst" in sys.modules}))
"""


def _probe(path: str) -> Dict[str, float]:
    done = subprocess.run([sys.executable, "-c", PROBE, path], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


# --- output -------------------------------------------------------------------


def fmt(x: Any, spec: str = ".2f") -> str:
    if isinstance(x, (int, float)):
        return format(x, spec)
    return "-" if x is None else str(x)


def print_table(res: Dict[str, Any]) -> None:
    env = res["environment"]
    c = res["corpus"]
    print("flake8-gradmode benchmark")
    print(f"  python {env['python']}, flake8 {env['flake8']}, "
          f"flake8-gradmode {env['flake8_gradmode']} ({env['plugin_git'] or 'no git'}), "
          f"torchfix {env['torchfix'] or 'not installed'}, "
          f"{env['cpus']} CPUs, load {env['load_before']} -> {env['load_after']}")
    print(f"  corpus: {', '.join(c['roots'])}")
    print(f"  files: {c['files']} of {c['files_found']} ({c['selection']}), {c['lines']:,} of "
          f"{c['lines_found']:,} lines; {c['unparsable_skipped']} unparsable skipped")
    print()
    w = res["whole_corpus"]
    print(f"Whole corpus: flake8 --isolated -j1, {w['rounds']} rounds, alternating order, medians")
    print(f"  {'run':<14}{'wall s':>10}{'cpu s':>10}{'ratio(wall)':>13}{'ratio(cpu)':>12}{'peak RSS MB':>13}"
          f"{'RSS ratio':>11}{'findings':>10}")
    for name, v in w["variants"].items():
        print(f"  {name:<14}{fmt(v['median_wall_s']):>10}{fmt(v['median_cpu_s']):>10}"
              f"{fmt(v.get('median_ratio_wall'), '.3f'):>13}{fmt(v.get('median_ratio_cpu'), '.3f'):>12}"
              f"{fmt(v['peak_rss_mb'], '.0f'):>13}{fmt(v.get('rss_ratio'), '.3f'):>11}"
              f"{fmt(v.get('findings_total'), 'd'):>10}")
    print()
    p = res["plugin_alone"]
    print("Plugin alone: GradModeChecker(tree, lines, filename).run() per file, tree given (warm, in-process)")
    print(f"  total {p['total_s']:.2f} s, median {p['median_ms']:.2f} ms, p95 {p['p95_ms']:.1f} ms, "
          f"max {p['max_ms']:.0f} ms, {p['ms_per_1000_lines']:.1f} ms per 1,000 lines")
    print(f"  text sieve lets through {p['sieve_pass_files']} files = {p['sieve_pass_file_fraction']:.1%} "
          f"of files, {p['sieve_pass_line_fraction']:.1%} of lines")
    slowest = [f"{os.path.basename(x['file'])} ({x['lines']} lines) {x['ms']:.0f} ms" for x in p["slowest"][:3]]
    print("  slowest: " + "; ".join(slowest))
    print(f"  findings: {p['findings'] or 'none'}")
    if res.get("torchfix_alone"):
        t = res["torchfix_alone"]
        print(f"  torchfix alone, same way: total {t['total_s']:.2f} s, median {t['median_ms']:.2f} ms, "
              f"p95 {t['p95_ms']:.1f} ms, {t['ms_per_1000_lines']:.1f} ms per 1,000 lines")
    print()
    for e in res["editor"]:
        print(f"Editor case: {e['file']} ({e['lines']:,} lines), {e['runs']} cold flake8 runs each, medians")
        for name, v in e["variants"].items():
            extra = ""
            if "added_ms" in v:
                extra = (f"  added {v['added_ms']:+.0f} ms wall ({v['added_cpu_ms']:+.0f} ms cpu) = "
                         f"{v['added_ms_per_1000_lines']:+.1f} ms per 1,000 lines, RSS {v['added_rss_mb']:+.0f} MB")
            print(f"  {name:<14}{v['median_wall_ms']:9.0f} ms wall {v['median_cpu_ms']:9.0f} ms cpu "
                  f"{v['peak_rss_mb']:6.0f} MB{extra}")
        print(f"  warm run on it: {e['warm_check_ms']:.1f} ms ({e['warm_check_ms_per_1000_lines']:.1f} ms "
              f"per 1,000 lines)")
        print(f"  in fresh processes: importing the plugin {e['cold_import_ms']:.1f} ms "
              f"(+{e['import_rss_mb']:.1f} MB RSS), first run {e['cold_first_check_ms']:.1f} ms "
              f"(+{e['check_rss_mb']:.1f} MB RSS); libcst imported: {'yes' if e['libcst_imported'] else 'no'}")
        print()
    g = res["growth"]
    sizes = [k for k in g if k != "per_line_ratio"]
    print("Growth: plugin alone on generated training scripts, tree given, medians")
    print("  " + "; ".join(f"{g[k]['lines']:,} lines {g[k]['median_ms']:.1f} ms "
                           f"({g[k]['ms_per_1000_lines']:.2f} ms per 1,000)" for k in sizes)
          + f"; per-line ratio {g['per_line_ratio']:.2f}")
    print()
    print("Targets")
    for t in res["targets"]:
        print(f"  {t['what']:<58} {t['value']:>9.3f} {t['unit']:<16} <= {t['limit']:<6} "
              f"{'met' if t['met'] else 'NOT met'}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="*", help="files or directories (default: the installed torch source)")
    ap.add_argument("--repeat", type=int, default=3, help="rounds of the whole-corpus comparison (default 3)")
    ap.add_argument("--sample", type=int, default=None,
                    help=f"take every K-th file in path order (default {DEFAULT_TORCH_SAMPLE} for the default "
                         "torch corpus, 1 for given paths)")
    ap.add_argument("--limit", type=int, default=None, help="take the N largest files instead of sampling")
    ap.add_argument("--editor-runs", type=int, default=10, help="cold runs each way on each editor file (default 10)")
    ap.add_argument("--editor-file", action="append", default=[], metavar="PATH",
                    help="a real training script to time as an editor save, besides the generated one (repeatable)")
    ap.add_argument("--editor-budget", type=float, default=180.0,
                    help="stop the editor runs after this many seconds, with 3 runs each at least (default 180)")
    ap.add_argument("--json", action="store_true", help="print machine-readable results")
    ap.add_argument("--without-torchfix", action="store_true", help="leave TorchFix out even when it is installed")
    ap.add_argument("--project-root", metavar="DIR",
                    help="pass --gradmode-project-root DIR (default: each file's nearest directory with "
                         "pyproject.toml, setup.cfg, setup.py or .git)")
    args = ap.parse_args(argv)

    log = (lambda msg: print(msg, file=sys.stderr, flush=True))
    import compileall

    import flake8
    import flake8_gradmode

    # pip compiles an installed package to bytecode; a checkout run with
    # PYTHONDONTWRITEBYTECODE would compile it again in every process and
    # charge that to the plugin's import
    compileall.compile_dir(os.path.dirname(os.path.abspath(flake8_gradmode.__file__)), quiet=1)

    plugin_dist = "flake8-gradmode"
    load_before = loadavg()

    roots = args.paths or default_corpus()
    sample = args.sample if args.sample is not None else (1 if args.paths else DEFAULT_TORCH_SAMPLE)
    log(f"collecting .py files under {', '.join(roots)} ...")
    found, skipped = collect(roots)
    if not found:
        sys.exit("no parsable .py files found")
    if args.limit:
        chosen = sorted(sorted(found, key=lambda fl: -fl[1])[: args.limit])
        selection = f"the {args.limit} largest files"
    elif sample > 1:
        chosen = found[::sample]
        selection = f"one file in {sample}, every {sample}-th in path order"
    else:
        chosen = found
        selection = "all files"
    largest = max(found, key=lambda fl: fl[1])

    # the plugin twice: with the project index cache its previous run left
    # (what CI with a cached workspace and every editor save after the first
    # see) and with an empty one (a fresh clone)
    cross = ["--gradmode-project-root", os.path.abspath(args.project_root)] if args.project_root else []
    gradmode = FLAKE8_OWN + (plugin_dist,)
    variants = [
        Variant("flake8", FLAKE8_OWN, None),
        Variant("+gradmode", gradmode, "GRD", args=cross, warm_up=True),
        Variant("+gradmode-cold", gradmode, "GRD", args=cross, before=clear_caches(roots, args.project_root)),
    ]
    tf = None if args.without_torchfix else find_torchfix()
    if tf is not None:
        variants.append(Variant("+torchfix", FLAKE8_OWN + (tf["dist"],), tf["code"]))
    editor_variants = [v for v in variants if v.name != "+gradmode-cold"]

    res: Dict[str, Any] = {
        "environment": {
            "python": platform.python_version(),
            "flake8": flake8.__version__,
            "flake8_gradmode": getattr(flake8_gradmode, "__version__", "?"),
            "plugin_path": os.path.dirname(os.path.abspath(flake8_gradmode.__file__)),
            "plugin_git": git_state(os.path.dirname(os.path.dirname(os.path.abspath(flake8_gradmode.__file__)))),
            "torchfix": importlib.metadata.version(tf["dist"]) if tf else None,
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "date": time.strftime("%Y-%m-%d"),
            "load_before": [round(x, 2) for x in load_before] if load_before else None,
        },
        "corpus": {
            "roots": [os.path.abspath(r) for r in roots],
            "files_found": len(found),
            "lines_found": sum(n for _, n in found),
            "unparsable_skipped": skipped,
            "selection": selection,
            "files": len(chosen),
            "lines": sum(n for _, n in chosen),
        },
    }
    log(f"{len(chosen)} files, {res['corpus']['lines']:,} lines ({selection}); variants: "
        f"{', '.join(v.name for v in variants)}")

    with tempfile.TemporaryDirectory(prefix="gradmode-bench-") as tmp:
        listfile = os.path.join(tmp, "files.txt")
        with open(listfile, "w", encoding="utf-8") as f:
            f.write("\n".join(p for p, _ in chosen) + "\n")
        log("plugin alone ...")
        res["plugin_alone"] = plugin_alone(chosen, log)
        if tf is not None:
            res["torchfix_alone"] = generic_plugin_alone(tf["ep"], chosen)
        log("whole corpus ...")
        res["whole_corpus"] = whole_corpus(variants, listfile, args.repeat, plugin_dist, log)
        log("editor case ...")
        script = os.path.join(tmp, "train.py")
        with open(script, "w", encoding="utf-8") as f:
            f.write(training_script(EDITOR_SCRIPT_LINES))
        with open(script, encoding="utf-8") as f:
            script_lines = len(f.read().splitlines())
        files = [(script, script_lines)]
        for path in args.editor_file:
            with open(path, encoding="utf-8") as f:
                files.append((os.path.abspath(path), len(f.read().splitlines())))
        files.append(largest)
        res["editor"] = [
            editor_case(editor_variants, path, n, args.editor_runs, args.editor_budget, tmp, plugin_dist, log)
            for path, n in files
        ]
        log("growth ...")
        res["growth"] = growth(tmp, 1000, 50000, log)

    load_after = loadavg()
    res["environment"]["load_after"] = [round(x, 2) for x in load_after] if load_after else None
    g = res["whole_corpus"]["variants"]["+gradmode"]
    editor = [(e, e["variants"]["+gradmode"]) for e in res["editor"]]
    largest_case = editor[-1][1]

    def target(what: str, value: float, limit: float, unit: str) -> Dict[str, Any]:
        return {"what": what, "value": value, "limit": limit, "unit": unit, "met": value <= limit}

    cold = res["whole_corpus"]["variants"]["+gradmode-cold"]
    res["targets"] = [
        target("whole corpus, flake8 + plugin / flake8 alone (cpu)", g["median_ratio_cpu"], 1.10, "x"),
        target("whole corpus, empty index cache, flake8 + plugin / flake8 alone (cpu)",
               cold["median_ratio_cpu"], 1.20, "x"),
        target("whole corpus, flake8 + plugin / flake8 alone (wall)", g["median_ratio_wall"], 1.10, "x"),
        target("whole corpus, peak RSS with / without", g["rss_ratio"], 1.10, "x"),
        *(
            target(f"editor, {os.path.basename(e['file'])} ({e['lines']:,} lines), added per 1,000 lines",
                   v["added_ms_per_1000_lines"], 20, "ms/1,000 lines")
            for e, v in editor[:-1]
        ),
        *(
            target(f"editor save, {os.path.basename(e['file'])} in its project (warm index cache), added",
                   v["added_ms"], 30, "ms")
            for e, v in editor[1:-1]
        ),
        target("editor, largest file, added per 1,000 lines", largest_case["added_ms_per_1000_lines"], 20,
               "ms/1,000 lines"),
        target("importing the plugin (fresh process, flake8 imported)", res["editor"][0]["cold_import_ms"], 15,
               "ms"),
        target("growth, cost per line 50,000 / 1,000 lines", res["growth"]["per_line_ratio"], 1.5, "x"),
    ]
    if args.json:
        print(json.dumps(res, indent=2, default=str))
    else:
        print_table(res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
