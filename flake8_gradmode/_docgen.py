"""Render the docs from the rules, so that the docs cannot drift from them.

    python -m flake8_gradmode._docgen           # write the files
    python -m flake8_gradmode._docgen --check   # list stale files, exit 1; writes nothing

Generated: ``docs/rules/GRDnnn.md`` (one page per rule in ``registry.RULES``),
``docs/index.md``, ``docs/configuration.md`` and the rule table between the
``<!-- rules:start -->`` and ``<!-- rules:end -->`` markers in ``README.md``.
``docs/usage.md``, ``docs/fixing.md`` and ``docs/cross-module.md`` are written by hand.

Every ``render_*`` function is pure: rules and options in, a string out.
The output is deterministic (registry and option order, no timestamps) and
ends with exactly one newline.
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Type

from flake8_gradmode.engine import INTERNAL_ERROR
from flake8_gradmode.registry import DEFAULT_IGNORE, RULES
from flake8_gradmode.rule import Holds, Invalid, Rule, Valid
from flake8_gradmode.settings import OPTIONS, Option, comma_list

ROOT = Path(__file__).resolve().parent.parent
DOCS = "docs"
RULES_DIR = "docs/rules"
README = "README.md"
README_START = "<!-- rules:start -->"
README_END = "<!-- rules:end -->"
COMMAND = "python -m flake8_gradmode._docgen"

_PAGE_NAME = re.compile(r"^[A-Z]{1,3}[0-9]{3}\.md$")


# --- small helpers ------------------------------------------------------------


def text(value: str) -> str:
    """A rule's indented triple-quoted text, dedented, line breaks kept."""
    return textwrap.dedent(value).strip("\n").strip()


def default_on(code: str) -> bool:
    """False for codes flake8 ignores unless selected (``DEFAULT_IGNORE``)."""
    return not code.startswith(DEFAULT_IGNORE)


def default_word(code: str) -> str:
    return "on" if default_on(code) else "off"


def option_key(option: Option) -> str:
    """The config-file key: the flag without its leading dashes."""
    return option.flag.lstrip("-")


def rule_options(rule: Type[Rule]) -> Tuple[str, ...]:
    """Keys of ``settings.OPTIONS`` that change what ``rule`` reports
    (declared by the rule as ``options = ("name", ...)``)."""
    return tuple(key for key in rule.options if key in OPTIONS)


def rule_source(rule: Type[Rule]) -> str:
    return rule.__module__.replace(".", "/") + ".py"


def fence(code: str, lang: str = "python") -> str:
    """``code`` in a fenced block longer than any backtick run inside it."""
    longest = max((len(run) for run in re.findall(r"`+", code)), default=0)
    marks = "`" * max(3, longest + 1)
    return f"{marks}{lang}\n{code.rstrip(chr(10))}\n{marks}"


def cell(value: str) -> str:
    """Text safe inside a Markdown table cell."""
    return " ".join(value.split()).replace("|", "\\|")


def join_and(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _symptoms(symptom: object) -> Tuple[object, ...]:
    if symptom is None:
        return ()
    if isinstance(symptom, (tuple, list)):
        return tuple(symptom)
    return (symptom,)


def symptom_sentence(symptom: object) -> str:
    """``Under PyTorch this raises ...`` for one symptom or a tuple of them.

    ``Raises``/``Warns`` describe an action (``raises `X: ...```); ``Holds``
    describes a state after the run (``the model is still in training mode``).
    """
    parts = _symptoms(symptom)
    actions = [p.describe() for p in parts if not isinstance(p, Holds)]  # type: ignore[attr-defined]
    states = [p.describe() for p in parts if isinstance(p, Holds)]
    if actions and states:
        return f"Under PyTorch this {join_and(actions)}, and after it runs, {join_and(states)}."
    if actions:
        return f"Under PyTorch this {join_and(actions)}."
    if states:
        return f"Under PyTorch, after this runs, {join_and(states)}."
    return ""


def positions_sentence(at: Iterable[Tuple[int, int]]) -> str:
    """flake8 prints 1-based columns: the rule's 0-based column plus one."""
    where = [f"line {line}, column {col + 1}" for line, col in at]
    return f"Reported at {join_and(where)}." if where else ""


# --- rule pages -----------------------------------------------------------------


def render_default_line(code: str) -> str:
    if default_on(code):
        return "On by default."
    prefix = next(p for p in DEFAULT_IGNORE if code.startswith(p))
    return (
        f"Off by default: flake8-gradmode adds `{prefix}` to flake8's default ignore list. "
        f"Turn it on with `extend-select = {code}` (or `{prefix}` for all of them); "
        "see [Configuration](../configuration.md#choosing-codes)."
    )


def render_invalid(example: Invalid) -> str:
    out: List[str] = []
    if example.title:
        out.append(f"**{example.title}**")
    out.append(fence(example.code))
    lines = [positions_sentence(example.at)]
    if example.also:
        others = [f"{code} at line {line}, column {col + 1}" for code, line, col in example.also]
        lines.append(f"The same code also gets {join_and(others)}.")
    symptom = symptom_sentence(example.symptom)
    if example.runnable:
        if symptom:
            lines.append(symptom)
    else:
        why = text(example.why_not_run).rstrip(".")
        lines.append(f"Not run by the test suite: {why}." if why else "Not run by the test suite.")
        if symptom:
            lines.append(f"Expected: {symptom[0].lower()}{symptom[1:]}")
    out.append("\n".join(line for line in lines if line))
    return "\n\n".join(out)


def render_valid(example: Valid) -> str:
    out: List[str] = []
    if example.title:
        out.append(f"**{example.title}**")
    out.append(fence(example.code))
    lines = []
    if example.checks:
        lines.append("Under PyTorch: " + "; ".join(check.describe() for check in example.checks) + ".")
    if not example.runnable:
        why = text(example.why_not_run).rstrip(".")
        lines.append(f"Not run by the test suite: {why}." if why else "Not run by the test suite.")
    if lines:
        out.append("\n".join(lines))
    return "\n\n".join(out)


def render_rule_options(rule: Type[Rule]) -> str:
    keys = rule_options(rule)
    if not keys:
        return "None."
    items = []
    for key in keys:
        option = OPTIONS[key]
        first = option.help.split(". ")[0].rstrip(".")
        items.append(f"- [`{option_key(option)}`](../configuration.md#{option_key(option)}): {first}.")
    return "\n".join(items)


def render_references(rule: Type[Rule]) -> str:
    if not rule.references:
        return "None."
    return "\n".join(f"- <{url}>" for url in rule.references)


def render_rule(rule: Type[Rule]) -> str:
    """The page ``docs/rules/<code>.md``."""
    sections: List[str] = [
        f"# {rule.code} {rule.name}",
        f"<!-- Generated by `{COMMAND}` from {rule_source(rule)}; do not edit. -->",
        render_default_line(rule.code),
        "## What it does",
        text(rule.what),
        "## Why is this bad?",
        text(rule.why),
    ]
    if rule.INVALID:
        sections.append("## Example")
        sections.extend(render_invalid(example) for example in rule.INVALID)
    if rule.VALID:
        sections.append("## Use instead")
        sections.extend(render_valid(example) for example in rule.VALID)
    sections += [
        "## Known problems",
        text(rule.known_problems) or "None known.",
        "## Fix safety",
        text(rule.fix_safety) or "No fix is applied.",
        "## Options",
        render_rule_options(rule),
        "## References",
        render_references(rule),
    ]
    return "\n\n".join(s for s in sections if s) + "\n"


# --- tables, index, configuration ----------------------------------------------


def render_rules_table(rules: Sequence[Type[Rule]], link_prefix: str) -> str:
    """The rule table; ``link_prefix`` is where the rule pages are (``rules/``)."""
    rows = [
        "| Code | Name | Summary | Default |",
        "|------|------|---------|---------|",
    ]
    for rule in rules:
        rows.append(
            f"| [{rule.code}]({link_prefix}{rule.code}.md) | {cell(rule.name)} "
            f"| {cell(text(rule.summary))} | {default_word(rule.code)} |"
        )
    return "\n".join(rows) + "\n"


def render_index(rules: Sequence[Type[Rule]] = RULES) -> str:
    off = ", ".join(f"`{p}`" for p in DEFAULT_IGNORE)
    return (
        "# flake8-gradmode\n"
        "\n"
        f"<!-- Generated by `{COMMAND}`; do not edit. -->\n"
        "\n"
        "flake8-gradmode is a [flake8](https://flake8.pycqa.org/) plugin that reports PyTorch\n"
        "grad-mode mistakes: code that raises, silently does nothing or wastes memory because\n"
        "of how it turns autograd and training mode on and off.\n"
        "\n"
        "- [Usage](usage.md): running it from the command line, an editor, pre-commit and CI.\n"
        "- [Configuration](configuration.md): options, and choosing which codes run.\n"
        "- [Fixing](fixing.md): what `--fix` repairs by default and what needs `--unsafe-fixes`.\n"
        "- [Across modules](cross-module.md): what the project index knows, its cache, turning it off.\n"
        "\n"
        "## Code ranges\n"
        "\n"
        "| Range | Meaning |\n"
        "|-------|---------|\n"
        f"| {INTERNAL_ERROR} | an internal error of the plugin: it could not analyse the file (the message says why; "
        "please report it). A file flake8 parsed is always analysable, so this never describes your code |\n"
        "| GRD0xx | definite bugs: the code raises at run time or silently does nothing |\n"
        "| GRD1xx | likely bugs found by heuristics: wrong metrics, wasted memory |\n"
        f"| GRD9xx | opinionated hints, off by default ({off} is in flake8's default ignore list) |\n"
        "\n"
        "## Rules\n"
        "\n"
        "Each page shows what the rule reports, why, code it reports and code it accepts.\n"
        "\n" + render_rules_table(rules, "rules/")
    )


def _used_by(key: str, rules: Sequence[Type[Rule]]) -> List[str]:
    return [rule.code for rule in rules if key in rule_options(rule)]


def render_option(key: str, option: Option, rules: Sequence[Type[Rule]]) -> str:
    name = option_key(option)
    items = comma_list(option.example)
    users = _used_by(key, rules)
    lines = [
        f"### {name}",
        "",
        f"- Flag: `{option.flag}={option.metavar}`",
        f"- Config key: `{name}` (or `{name.replace('-', '_')}`)",
        "- Used by: " + (", ".join(f"[{code}](rules/{code}.md)" for code in users) if users else "no rule yet"),
        "",
        " ".join(option.help.split()),
        "",
        "In a config file the names may also go one per line.",
        "",
        fence(f"[flake8]\n{name} = {option.example}", "ini"),
        "",
        "On the command line:",
        "",
        fence(f"flake8 {option.flag}={','.join(items)} .", "sh"),
    ]
    return "\n".join(lines)


def render_configuration(
    rules: Sequence[Type[Rule]] = RULES,
    options: Optional[Dict[str, Option]] = None,
) -> str:
    options = OPTIONS if options is None else options
    on = [rule.code for rule in rules if default_on(rule.code)]
    off = [rule.code for rule in rules if not default_on(rule.code)]
    prefixes = ", ".join(f"`{p}`" for p in DEFAULT_IGNORE)
    first_off = DEFAULT_IGNORE[0] if DEFAULT_IGNORE else "GRD9"
    off_text = (
        "These rules ship off by default: " + ", ".join(f"[{c}](rules/{c}.md)" for c in off) + "."
        if off
        else "No off-by-default rule ships yet; the range is reserved for them."
    )
    parts = [
        "# Configuration",
        f"<!-- Generated by `{COMMAND}`; do not edit. -->",
        "flake8-gradmode is configured like every flake8 plugin: with command-line flags, or with\n"
        "keys in the `[flake8]` section of `setup.cfg`, `tox.ini` or `.flake8`.  A config key is\n"
        "the long flag without its leading `--`.",
        "## Choosing codes",
        "On by default: every code flake8-gradmode reports except the opinionated ones.  That is\n"
        f"`{INTERNAL_ERROR}` (an internal error of the plugin) and "
        + (", ".join(f"[{c}](rules/{c}.md)" for c in on) if on else "no rule yet")
        + ".",
        f"Off by default: codes starting with {prefixes}.  The plugin adds them to flake8's default\n"
        "ignore list (`extend_default_ignore`), so they stay silent until you select them.  "
        + off_text,
        "Turn them on with `extend-select`, which adds to the selection without replacing it:",
        fence(f"[flake8]\nextend-select = {first_off}", "ini"),
        "Turn a rule off with `extend-ignore` (not `ignore`, see below):",
        fence(f"[flake8]\nextend-ignore = {on[-1] if on else 'GRD001'}", "ini"),
        "> **Warning:**\n"
        f"> `select = GRD` in a config file (or `--select=GRD`) lists the codes explicitly, and\n"
        f"> an explicit selection beats flake8's default ignore list: it turns `{first_off}` back on.\n"
        f"> Likewise `ignore = ...` replaces flake8's default ignore list, `{first_off}` included;\n"
        "> use `extend-ignore` to add to it.  To run flake8-gradmode's default rules and nothing\n"
        "> else, use:\n"
        ">\n"
        f"> ```sh\n> flake8 --select=GRD --extend-ignore={first_off} .\n> ```",
        "Ignoring findings in some files or on one line is flake8's own business, and works as\n"
        "for any other code:",
        fence("[flake8]\nper-file-ignores =\n    tests/*: GRD004\n    scripts/legacy_*.py: GRD003", "ini"),
        fence("layer.weight.fill_(1.0)  # noqa: GRD004", "python"),
        "## Options",
    ]
    if options:
        parts.extend(render_option(key, option, rules) for key, option in options.items())
    else:
        parts.append("None yet.")
    return "\n\n".join(parts) + "\n"


# --- README -----------------------------------------------------------------------


def render_readme(current: str, rules: Sequence[Type[Rule]] = RULES) -> Optional[str]:
    """``current`` with the table between the markers regenerated, or None
    when the markers are missing."""
    start = current.find(README_START)
    end = current.find(README_END, start + len(README_START)) if start >= 0 else -1
    if start < 0 or end < 0:
        return None
    head = current[: start + len(README_START)]
    return head + "\n" + render_rules_table(rules, f"{RULES_DIR}/") + current[end:]


def readme_section(readme: str) -> Optional[str]:
    """The text between the README markers, or None when they are missing."""
    start = readme.find(README_START)
    end = readme.find(README_END, start + len(README_START)) if start >= 0 else -1
    if start < 0 or end < 0:
        return None
    body = start + len(README_START)
    return readme[body:end]


# --- files --------------------------------------------------------------------------


def generated(rules: Sequence[Type[Rule]] = RULES) -> Dict[str, str]:
    """Every fully generated file, by path relative to the repository root."""
    files = {f"{RULES_DIR}/{rule.code}.md": render_rule(rule) for rule in rules}
    files[f"{DOCS}/index.md"] = render_index(rules)
    files[f"{DOCS}/configuration.md"] = render_configuration(rules)
    return dict(sorted(files.items()))


def orphan_pages(root: Path, rules: Sequence[Type[Rule]] = RULES) -> List[str]:
    """Rule pages in docs/rules whose code is not a rule any more."""
    codes = {rule.code for rule in rules}
    folder = root / RULES_DIR
    if not folder.is_dir():
        return []
    return sorted(
        f"{RULES_DIR}/{path.name}"
        for path in folder.iterdir()
        if _PAGE_NAME.match(path.name) and path.name[:-3] not in codes
    )


def _read(path: Path) -> Optional[str]:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def stale(root: Path = ROOT, rules: Sequence[Type[Rule]] = RULES) -> List[str]:
    """Paths (relative to ``root``) that the generator would change."""
    out = [rel for rel, content in generated(rules).items() if _read(root / rel) != content]
    out += orphan_pages(root, rules)
    readme = _read(root / README)
    if readme is None or render_readme(readme, rules) != readme:
        out.append(README)
    return sorted(out)


def write(root: Path = ROOT, rules: Sequence[Type[Rule]] = RULES) -> List[str]:
    """Write every stale file; returns messages about what was done."""
    messages = []
    for rel, content in generated(rules).items():
        path = root / rel
        if _read(path) != content:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "w", encoding="utf-8", newline="\n") as fh:
                fh.write(content)
            messages.append(f"wrote {rel}")
    for rel in orphan_pages(root, rules):
        (root / rel).unlink()
        messages.append(f"removed {rel} (no such rule)")
    readme = _read(root / README)
    new = render_readme(readme, rules) if readme is not None else None
    if new is None:
        messages.append(f"skipped {README}: no `{README_START}` ... `{README_END}` markers")
    elif new != readme:
        with open(root / README, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(new)
        messages.append(f"wrote {README}")
    return messages


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description="Render the docs from the rules.")
    parser.add_argument("--check", action="store_true", help="list stale files and exit 1; write nothing")
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.check:
        files = stale(args.root)
        for rel in files:
            print(f"stale: {rel}")
        if files:
            print(f"run `{COMMAND}` to regenerate", file=sys.stderr)
            return 1
        return 0
    for message in write(args.root):
        print(message)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
