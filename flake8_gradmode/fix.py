"""Apply the behaviour-preserving fixes rules attach to their findings.

Only the nodes a fix replaces change; libcst gives back every other byte as it
was (formatting, comments, line endings).  Findings suppressed with ``# noqa``
(flake8's syntax, codes matched by prefix) are left alone.  The result is
parsed again before it is returned, and fixing is repeated until nothing
fixable is left, so running the fixer twice changes nothing the second time.
"""

from __future__ import annotations

import ast
import re
import tokenize
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Sequence

import libcst as cst
from flake8.defaults import NOQA_INLINE_REGEXP

from flake8_gradmode.engine import check
from flake8_gradmode.rule import Violation
from flake8_gradmode.settings import Settings

_NOQA = NOQA_INLINE_REGEXP  # flake8's own pattern, so both agree
_MAX_ROUNDS = 20


class FixError(Exception):
    """The fixed text did not parse again; nothing may be written."""


@dataclass
class FixResult:
    source: str
    fixed: List[Violation] = field(default_factory=list)
    #: findings left after fixing (no fix, suppressed, or not selected)
    remaining: List[Violation] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.fixed)


_NEWLINE = re.compile(r"\r\n|\r|\n")  # the only line breaks Python (and libcst) know


def noqa_lines(text: str) -> Dict[int, str]:
    """Line number -> the text flake8 searches for ``# noqa``: the line itself,
    or every line of a token that spans several (a multi-line string)."""
    lines = physical_lines(text)
    mapping = {n: line for n, line in enumerate(lines, start=1)}
    readline = iter(lines).__next__
    try:
        start, end = len(lines) + 2, -1
        for tok in tokenize.generate_tokens(readline):
            if tok.type in (tokenize.ENDMARKER, tokenize.DEDENT):
                continue
            start, end = min(start, tok.start[0]), max(end, tok.end[0])
            if tok.type in (tokenize.NL, tokenize.NEWLINE):
                joined = "".join(lines[start - 1:end])
                for n in range(start, end + 1):
                    mapping[n] = joined
                start, end = len(lines) + 2, -1
    except (tokenize.TokenError, SyntaxError, StopIteration):
        pass
    return mapping


def physical_lines(text: str) -> List[str]:
    parts = _NEWLINE.split(text)
    breaks = _NEWLINE.findall(text)
    lines = [p + b for p, b in zip(parts, breaks)]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def suppressed(line: str, code: str) -> bool:
    """Does flake8's ``# noqa`` on ``line`` cover ``code``?"""
    match = _NOQA.search(line)
    if match is None:
        return False
    codes = match.groupdict().get("codes")
    if not codes:
        return True
    return any(code.startswith(c) for c in re.split(r"[,\s]+", codes.strip()) if c)


class _Replace(cst.CSTTransformer):
    def __init__(self, replacements: Dict[int, cst.CSTNode]) -> None:
        super().__init__()
        self.replacements = replacements

    def on_leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode):  # type: ignore[override]
        return self.replacements.get(id(original_node), updated_node)


def fix_source(
    source: str,
    settings: Settings = Settings(),
    selected: Callable[[str], bool] = lambda code: True,
    filename: str = "",
) -> FixResult:
    """Fix every selected, unsuppressed finding that has a fix."""
    result = FixResult(source)
    for _ in range(_MAX_ROUNDS):
        try:
            module = cst.parse_module(result.source)
        except cst.ParserSyntaxError:
            break
        noqa = noqa_lines(result.source)
        violations = check(result.source, settings, filename=filename, module=module)
        chosen = [
            v
            for v in violations
            if v.fix is not None and selected(v.code) and not suppressed(noqa.get(v.line, ""), v.code)
        ]
        if not chosen:
            break
        replacements = {id(v.fix[0]): v.fix[1] for v in reversed(chosen)}  # type: ignore[index]
        new_source = module.visit(_Replace(replacements)).code
        if new_source == result.source:
            break
        _reparse(new_source)
        result.fixed.extend(chosen)
        result.source = new_source
    result.remaining = [v for v in check(result.source, settings, filename=filename) if selected(v.code)]
    return result


def _reparse(source: str) -> None:
    try:
        cst.parse_module(source)
        ast.parse(source)
    except (cst.ParserSyntaxError, SyntaxError, ValueError) as exc:  # pragma: no cover - a fix bug
        raise FixError(f"fixed code does not parse: {exc}") from exc


def fixable_codes(violations: Sequence[Violation]) -> List[str]:
    return sorted({v.code for v in violations if v.fix is not None})


__all__ = ["FixError", "FixResult", "fix_source", "noqa_lines", "physical_lines", "suppressed", "fixable_codes"]
