"""``# noqa`` as flake8 reads it, for the standalone command and the fixer."""

from __future__ import annotations

import re
import tokenize
from typing import Dict

from flake8.defaults import NOQA_INLINE_REGEXP

from flake8_gradmode.context import physical_lines

_NOQA = NOQA_INLINE_REGEXP  # flake8's own pattern, so both agree


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


def suppressed(line: str, code: str) -> bool:
    """Does flake8's ``# noqa`` on ``line`` cover ``code``?"""
    match = _NOQA.search(line)
    if match is None:
        return False
    codes = match.groupdict().get("codes")
    if not codes:
        return True
    return any(code.startswith(c) for c in re.split(r"[,\s]+", codes.strip()) if c)


__all__ = ["noqa_lines", "physical_lines", "suppressed"]
