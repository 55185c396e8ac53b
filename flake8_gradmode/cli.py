"""The standalone command: ``flake8-gradmode [--fix | --diff] PATH...``.

It reports what the flake8 plugin reports (same engine, same ``gradmode-*``
options from the project's flake8 config, same ``# noqa``), and it can apply
the fixes rules attach to their findings.  Code selection comes from its own
``--select`` / ``--ignore`` (default: every ``GRD`` code except the
default-ignored ``GRD9`` hints), not from flake8's ``select``/``ignore``.

Findings print as flake8 prints them or in a format for CI (``--format``,
see ``formats``).  Files are linted in ``--jobs`` worker processes; the main
process prints every outcome in path order, so the output is the same for
any number of jobs.

Exit status: 0 nothing found (or everything fixed), 1 findings (or, with
``--diff``, something to fix), 2 an error (bad path, unreadable or unparsable
file, refused write; errors win over findings).
"""

from __future__ import annotations

import argparse
import ast
import configparser
import difflib
import io
import os
import re
import shutil
import signal
import stat
import sys
import tempfile
import tokenize
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from flake8_gradmode import __version__, formats
from flake8_gradmode.engine import check
from flake8_gradmode.noqa import noqa_lines, physical_lines, suppressed
from flake8_gradmode.registry import DEFAULT_IGNORE
from flake8_gradmode.rule import Violation
from flake8_gradmode.settings import OPTIONS, Settings, comma_list

if TYPE_CHECKING:  # imported when a pool is made: they cost every run 15 ms
    from concurrent.futures import Future
    from multiprocessing.context import BaseContext

PROG = "flake8-gradmode"
EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2

#: Suffixes taken for Python when a file is named explicitly (pre-commit's
#: ``types: [python]`` also passes .pyw/.pyt files and shebang scripts).
_PY_SUFFIXES = (".py", ".pyw", ".pyt", ".pyi")
#: Directories never entered when walking a directory.
_SKIP_DIRS = frozenset({"__pycache__", "build", "dist", "venv", "node_modules", "site-packages"})
_CODE = re.compile(r"^[A-Z]{1,3}[0-9]{0,3}$")  # flake8's VALID_CODE_PREFIX
_CONFIG_FILES = ("setup.cfg", "tox.ini", ".flake8")


class FileError(Exception):
    """Something wrong with one file: reported on one line, nothing written."""


# --- selection ----------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """Which codes to report, as flake8 decides.

    Without ``select`` every code is selected except the default-ignored
    ``GRD9`` hints; a code named by ``select`` (by prefix) is reported even if
    default-ignored.  ``ignore`` adds to the default-ignored prefixes; when a
    code matches both ``select`` and ``ignore``, the longer prefix wins.
    """

    select: Tuple[str, ...] = ()
    ignore: Tuple[str, ...] = ()

    def __call__(self, code: str) -> bool:
        chosen = _longest(self.select, code)
        if self.select and chosen is None:
            return False
        ignored = _longest(self.ignore, code)
        if ignored is not None:
            return chosen is not None and len(chosen) > len(ignored)
        if _longest(DEFAULT_IGNORE, code) is not None:
            return chosen is not None
        return True


def _longest(prefixes: Sequence[str], code: str) -> Optional[str]:
    matching = [p for p in prefixes if code.startswith(p)]
    return max(matching, key=len) if matching else None


def _codes(value: str) -> Tuple[str, ...]:
    codes = comma_list(value)
    for code in codes:
        if not _CODE.match(code):
            raise argparse.ArgumentTypeError(f"{code!r} is not an error code or prefix (like GRD or GRD001)")
    return codes


# --- configuration --------------------------------------------------------------


def find_config(start: str) -> Optional[str]:
    """The first of setup.cfg, tox.ini, .flake8 with a ``[flake8]`` section in
    ``start`` or its parents, stopping below the home directory: flake8's search."""
    home = os.path.expanduser("~")
    try:
        home_key: Optional[Tuple[int, int]] = _stat_key(home) if home != "~" else None
    except OSError:
        home_key = None
    path = os.path.abspath(start)
    key = _stat_key(path)
    while True:
        for candidate in _CONFIG_FILES:
            cfg_path = os.path.join(path, candidate)
            cfg = configparser.RawConfigParser()
            try:
                cfg.read(cfg_path, encoding="UTF-8")
            except (UnicodeDecodeError, configparser.Error):
                continue
            if "flake8" in cfg or "flake8:local-plugins" in cfg:
                return cfg_path
        parent = os.path.dirname(path)
        parent_key = _stat_key(parent)
        if parent_key == key or parent_key == home_key:
            return None
        path, key = parent, parent_key


def _stat_key(path: str) -> Tuple[int, int]:
    st = os.stat(path)
    return st.st_ino, st.st_dev


def config_options(cfg_path: Optional[str]) -> Dict[str, str]:
    """The ``gradmode-*`` values of the ``[flake8]`` section, by option name
    (``model_names``); flake8 accepts dashes or underscores in the keys."""
    if cfg_path is None:
        return {}
    cfg = configparser.RawConfigParser()
    cfg.read(cfg_path, encoding="UTF-8")
    if "flake8" not in cfg:
        return {}
    values = {}
    for name in OPTIONS:
        for key in (f"gradmode_{name}", f"gradmode-{name.replace('_', '-')}"):
            if cfg.has_option("flake8", key):
                values[name] = cfg.get("flake8", key)
    return values


def build_settings(args: argparse.Namespace) -> Settings:
    cfg_path = find_config(os.getcwd())
    values = config_options(cfg_path)
    if values.get("project_root") and cfg_path is not None:  # relative to the config file, as flake8 does
        values["project_root"] = os.path.join(os.path.dirname(os.path.abspath(cfg_path)), values["project_root"])
    for name in OPTIONS:
        given = getattr(args, f"gradmode_{name}")
        if given is not None:  # the command line wins over the config file
            values[name] = given
    if values.get("project_root"):
        values["project_root"] = os.path.abspath(values["project_root"])
    return Settings.from_options(argparse.Namespace(**{f"gradmode_{k}": v for k, v in values.items()}))


# --- files ------------------------------------------------------------------------


def iter_paths(paths: Sequence[str]) -> Iterator[Tuple[str, Optional[str]]]:
    """``(path, None)`` for every file to lint, in command-line order, each
    once, and ``(path, reason)`` for a path that cannot be used."""
    seen = set()
    for given in paths:
        if os.path.isdir(given):
            found: Iterator[str] = _walk(given)
        elif os.path.exists(given):
            found = iter([given])
        elif os.path.lexists(given):
            yield given, "broken symbolic link"
            continue
        else:
            yield given, "no such file or directory"
            continue
        for path in found:
            key = os.path.realpath(path)
            if key not in seen:
                seen.add(key)
                yield path, None


def _walk(top: str) -> Iterator[str]:
    for root, dirs, files in os.walk(top):
        dirs[:] = sorted(d for d in dirs if not _skip_dir(root, d))
        for name in sorted(files):
            if name.endswith(".py"):
                yield os.path.join(root, name)


def _skip_dir(root: str, name: str) -> bool:
    return (
        name.startswith(".")
        or name in _SKIP_DIRS
        or name.endswith(".egg-info")
        or os.path.exists(os.path.join(root, name, "pyvenv.cfg"))  # a virtual environment
    )


@dataclass
class Source:
    path: str
    raw: bytes
    encoding: str
    text: str
    tree: Optional[ast.AST] = None

    def encode(self, text: str) -> bytes:
        # "utf-8-sig" (what detect_encoding says for a BOM) writes the BOM back.
        try:
            return text.encode(self.encoding)
        except UnicodeEncodeError as exc:
            raise FileError(f"fixed text cannot be encoded as {self.encoding}: {exc.reason}") from exc


def read_source(path: str) -> Source:
    """Read ``path`` as bytes and decode it the way Python would."""
    if not _is_python(path):
        raise FileError("not a Python file (expected .py, or a python shebang line)")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise FileError(f"cannot read: {exc.strerror or exc}") from exc
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(raw).readline)
        text = raw.decode(encoding)
    except (SyntaxError, LookupError) as exc:
        raise FileError(f"cannot decode: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise FileError(f"cannot decode as {encoding}: {exc.reason} at byte {exc.start}") from exc
    if text.encode(encoding) != raw:
        raise FileError(f"cannot be decoded and encoded back byte for byte as {encoding}")
    try:
        with warnings.catch_warnings():  # SyntaxWarning (invalid escapes...) is flake8's business
            warnings.simplefilter("ignore")
            tree = ast.parse(text, filename=path)
    except SyntaxError as exc:
        raise FileError(f"does not parse: {exc.msg} (line {exc.lineno}, column {exc.offset})") from exc
    except (ValueError, RecursionError, MemoryError) as exc:
        raise FileError(f"does not parse: {exc or type(exc).__name__}") from exc
    return Source(path, raw, encoding, text, tree)


def _is_python(path: str) -> bool:
    if path.endswith(_PY_SUFFIXES):
        return True
    try:
        with open(path, "rb") as f:
            first = f.readline(256)
    except OSError:
        return False
    return first.startswith(b"#!") and b"python" in first


def write_atomic(source: Source, data: bytes) -> None:
    """Replace the file's content with ``data``, all or nothing.

    The new content goes to a temporary file next to the original, which gets
    the original's mode, and then replaces it.  Refuses a read-only file and a
    file that changed since it was read.
    """
    target = os.path.realpath(source.path)  # write through a symlink, keep the link
    try:
        st = os.stat(target)
    except OSError as exc:
        raise FileError(f"cannot write: {exc.strerror or exc}") from exc
    if not st.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) or not os.access(target, os.W_OK):
        raise FileError("file is read-only; not fixed")
    directory, name = os.path.split(target)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".gradmode-tmp", dir=directory)
    except OSError as exc:
        raise FileError(f"cannot write next to the file: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        shutil.copymode(target, tmp)
        if hasattr(os, "chown") and os.geteuid() == 0:  # keep the owner when run as root
            try:
                os.chown(tmp, st.st_uid, st.st_gid)
            except OSError:
                pass
        with open(target, "rb") as f:
            now = f.read()
        if now != source.raw:
            raise FileError("changed on disk while being fixed; not written")
        os.replace(tmp, target)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise FileError(f"cannot write: {exc.strerror or exc}") from exc
        raise


# --- findings -----------------------------------------------------------------


def reportable(violations: Sequence[Violation], text: str, selected: Callable[[str], bool]) -> List[Violation]:
    """The selected findings that no ``# noqa`` suppresses."""
    chosen = [v for v in violations if selected(v.code)]
    if not chosen:
        return []
    noqa = noqa_lines(text)
    return [v for v in chosen if not suppressed(noqa.get(v.line, ""), v.code)]


def unified_diff(path: str, before: str, after: str) -> str:
    display = path.replace(os.sep, "/")
    while display.startswith(("./", "/")):
        display = display[2:] if display.startswith("./") else display[1:]
    out = []
    for line in difflib.unified_diff(
        physical_lines(before), physical_lines(after), fromfile=f"a/{display}", tofile=f"b/{display}"
    ):
        out.append(line)
        if not line.endswith(("\n", "\r")):
            out.append("\n\\ No newline at end of file\n")
    return "".join(out)


# --- one file, in this process or in a worker --------------------------------------


@dataclass(frozen=True)
class Task:
    """What to do with every file.  Plain data: it is sent to the workers."""

    mode: str  # "check", "fix" or "diff"
    settings: Settings = Settings()
    selected: Selection = Selection()
    #: also the fixes that change behaviour on purpose (``--unsafe-fixes``)
    unsafe: bool = False


@dataclass
class Outcome:
    """What became of one file: findings to print, a diff, or an error."""

    path: str
    findings: List[Violation] = field(default_factory=list)
    diff: str = ""
    fixed: int = 0  # findings fixed (or that --diff would fix)
    changed: bool = False
    error: Optional[str] = None


def lint_file(path: str, task: Task) -> Outcome:
    """Check, fix or diff one file.  Never raises: a bad file (or a bug in a
    fix) must not stop the other files, so it becomes the outcome's error."""
    try:
        source = read_source(path)
        if task.mode == "check":
            violations = check(source.text, task.settings, filename=path, tree=source.tree)
            return Outcome(path, reportable(violations, source.text, task.selected))
        from flake8_gradmode.fix import fix_source  # libcst: loaded only to fix

        result = fix_source(source.text, task.settings, task.selected, filename=path, unsafe=task.unsafe)
        outcome = Outcome(path, reportable(result.remaining, result.source, task.selected))
        if result.source != source.text:
            if task.mode == "diff":
                outcome.diff = unified_diff(path, source.text, result.source)
            else:
                write_atomic(source, source.encode(result.source))
            outcome.fixed, outcome.changed = len(result.fixed), True
        return outcome
    except Exception as exc:
        return Outcome(path, error=error_reason(exc))


def error_reason(exc: BaseException) -> str:
    """The reason printed after the path in a file's error line."""
    if isinstance(exc, FileError):
        return str(exc)
    if type(exc).__name__ == "FixError":  # fix.FixError, without importing libcst
        return f"not fixed: {exc}"
    return f"internal error ({type(exc).__name__}: {exc}); nothing written, please report it"


#: Start method of the worker processes; None is the platform's default.
START_METHOD: Optional[str] = None


def lint_all(paths: Sequence[str], task: Task, jobs: int = 1) -> Iterator[Outcome]:
    """The outcome of every path, in path order.  With ``jobs`` > 1 and more
    than one file, the files are linted in that many worker processes; with
    one job (or one file) in this process, where nothing needs pickling."""
    items = list(iter_paths(paths))
    todo = [path for path, problem in items if problem is None]
    if jobs <= 1 or len(todo) <= 1:
        for path, problem in items:
            yield Outcome(path, error=problem) if problem is not None else lint_file(path, task)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context(START_METHOD)
    pool = ProcessPoolExecutor(min(jobs, len(todo)), mp_context=context, initializer=_worker_init)
    try:
        futures = [None if problem else pool.submit(lint_file, path, task) for path, problem in items]
        for (path, problem), future in zip(items, futures):
            yield Outcome(path, error=problem) if future is None else _collect(future, path, task, context)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # stopped early: running files finish, no new ones start


def _worker_init() -> None:
    # Ctrl-C is the main process's to handle; a worker finishes its file.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _collect(future: Future[Outcome], path: str, task: Task, context: BaseContext) -> Outcome:
    from concurrent.futures.process import BrokenProcessPool

    try:
        return future.result()
    except BrokenProcessPool:
        return _alone(path, task, context)
    except Exception as exc:  # the outcome could not come back (a pickling bug)
        return Outcome(path, error=error_reason(exc))


def _alone(path: str, task: Task, context: BaseContext) -> Outcome:
    """Lint ``path`` again in a process of its own: a dead worker breaks the
    whole pool, and this way only the file that kills its worker is reported,
    the same way on every run."""
    from concurrent.futures import ProcessPoolExecutor

    try:
        with ProcessPoolExecutor(1, mp_context=context, initializer=_worker_init) as pool:
            return pool.submit(lint_file, path, task).result()
    except Exception as exc:
        return Outcome(path, error=error_reason(exc))


# --- the command --------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Report PyTorch grad-mode mistakes (GRD codes) and fix the ones with a safe fix "
            "(and, with --unsafe-fixes, the loop bugs). "
            "Reads the gradmode-* options from the project's flake8 config; honours # noqa."
        ),
        epilog="Exit status: 0 clean, 1 findings (or changes with --diff), 2 errors.",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--fix", action="store_true", help="apply fixes in place, then report what remains")
    mode.add_argument("--diff", action="store_true", help="print the fixes as a unified diff; write nothing")
    p.add_argument(
        "--unsafe-fixes",
        action="store_true",
        help="with --fix or --diff, also the fixes that change what the code does on purpose (no_grad around "
        "evaluation, .eval()/.train() inserted, .item() on accumulated losses, no_grad around parameter "
        "updates); see docs/fixing.md",
    )
    p.add_argument(
        "--select",
        type=_codes,
        default=(),
        metavar="CODES",
        help="comma-separated codes or prefixes to report (default: all GRD codes except GRD9)",
    )
    p.add_argument(
        "--ignore", type=_codes, default=(), metavar="CODES", help="comma-separated codes or prefixes not to report"
    )
    p.add_argument(
        "--format",
        choices=formats.FORMATS,
        default="default",
        help="how findings are printed: default (flake8's), github (workflow commands that annotate "
        "the lines), json or sarif (one document); --diff prints a diff whatever the format",
    )
    p.add_argument(
        "--statistics",
        action="store_true",
        help="after the findings, print how many there are of each code (default and github formats)",
    )
    p.add_argument(
        "--jobs",
        type=_jobs,
        default=os.cpu_count() or 1,
        metavar="N",
        help="lint files in N processes (default: the number of CPUs, %(default)s); the output is the same",
    )
    for name, option in OPTIONS.items():
        p.add_argument(option.flag, dest=f"gradmode_{name}", default=None, metavar=option.metavar, help=option.help)
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or directories (walked for *.py)")
    return p


def _jobs(value: str) -> int:
    if value == "auto":  # flake8's spelling
        return os.cpu_count() or 1
    try:
        jobs = int(value)
    except ValueError:
        jobs = 0
    if jobs < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive number of jobs (or auto)")
    return jobs


def _refuse_combinations(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Exit 2 for options that cannot go together: statistics are lines after
    the findings, which would break a JSON or SARIF document, and --diff
    reports no findings to count."""
    if args.statistics and args.format in formats.DOCUMENT_FORMATS:
        p.error(f"argument --statistics: not allowed with --format {args.format}")
    if args.statistics and args.diff:
        p.error("argument --statistics: not allowed with argument --diff")
    if args.unsafe_fixes and not (args.fix or args.diff):
        p.error("argument --unsafe-fixes: needs --fix or --diff")


def _error(path: str, reason: str) -> str:
    return f"{PROG}: error: {path}: {reason}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    _refuse_combinations(p, args)
    mode = "fix" if args.fix else "diff" if args.diff else "check"
    task = Task(mode, build_settings(args), Selection(tuple(args.select), tuple(args.ignore)), args.unsafe_fixes)
    errors = fixed = files_fixed = 0
    findings: List[formats.Finding] = []
    for outcome in lint_all(args.paths, task, args.jobs):
        if outcome.error is not None:
            errors += 1
            sys.stdout.flush()
            print(_error(outcome.path, outcome.error), file=sys.stderr, flush=True)
            continue
        if outcome.changed:
            fixed += outcome.fixed
            files_fixed += 1
        if args.diff:
            sys.stdout.write(outcome.diff)
            continue
        for v in outcome.findings:
            findings.append((outcome.path, v))
            if args.format in formats.LINE_FORMATS:
                print(formats.line(args.format, outcome.path, v))
    if not args.diff and args.format in formats.DOCUMENT_FORMATS:
        sys.stdout.write(formats.document(args.format, findings, successful=not errors))
    if args.statistics:
        for line in formats.statistics(findings):
            print(line)
    sys.stdout.flush()
    if args.fix:
        print(f"fixed {_plural(fixed, 'finding')} in {_plural(files_fixed, 'file')}", file=sys.stderr)
    elif args.diff:
        print(f"would fix {_plural(fixed, 'finding')} in {_plural(files_fixed, 'file')}", file=sys.stderr)
    if errors:
        return EXIT_ERROR
    if args.diff:
        return EXIT_FINDINGS if files_fixed else EXIT_OK
    return EXIT_FINDINGS if findings else EXIT_OK


__all__ = [
    "main",
    "Selection",
    "find_config",
    "read_source",
    "write_atomic",
    "noqa_lines",
    "unified_diff",
    "lint_file",
    "lint_all",
]
