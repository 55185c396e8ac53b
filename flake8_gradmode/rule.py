"""Rule base class, examples, symptoms and violations.

Every rule carries its own valid and invalid examples.  The test suite turns
each example into a lint test (exact code, line and column) and, when the
example can run on a CPU, into an oracle test that executes it under real
PyTorch and checks the symptom it claims.  The docs are rendered from the same
examples, so nothing documented is untested.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
import ast
from typing import Callable, ClassVar, Optional, Tuple

from flake8_gradmode.context import Context, Fix, Report


# --- symptoms: what running an example shows under real PyTorch -------------


@dataclass(frozen=True)
class Raises:
    """Running the code raises ``exception`` whose message contains ``match``."""

    exception: str
    match: str

    def describe(self) -> str:
        return f"raises `{self.exception}: {self.match}`"


@dataclass(frozen=True)
class Warns:
    """Running the code emits a warning whose message contains ``match``."""

    category: str
    match: str

    def describe(self) -> str:
        return f"warns `{self.category}: {self.match}`"


@dataclass(frozen=True)
class Holds:
    """After running the code, ``expr`` evaluates to true in its namespace."""

    expr: str
    meaning: str

    def describe(self) -> str:
        return f"{self.meaning} (`{self.expr}`)"


Symptom = object  # Raises | Warns | Holds


def _clean(code: str) -> str:
    return textwrap.dedent(code).strip("\n") + "\n"


@dataclass(frozen=True)
class Valid:
    """Code the rule must not report.

    ``checks`` are run under PyTorch after the code executes without error
    (for instance that an output has no ``grad_fn``).  ``runnable=False``
    marks code that cannot run on a CPU-only machine; ``why_not_run`` says why.
    """

    code: str
    checks: Tuple[Holds, ...] = ()
    runnable: bool = True
    why_not_run: str = ""
    title: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "code", _clean(self.code))


@dataclass(frozen=True)
class Invalid:
    """Code the rule must report exactly at ``at`` (1-based line, 0-based col).

    ``symptom`` is what the code does when run under PyTorch; the oracle test
    proves it.  ``also`` lists findings of other rules the same code produces,
    as ``(code, line, col)``.
    """

    code: str
    at: Tuple[Tuple[int, int], ...]
    symptom: Optional[object] = None
    runnable: bool = True
    why_not_run: str = ""
    also: Tuple[Tuple[str, int, int], ...] = ()
    title: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "code", _clean(self.code))
        if self.runnable and self.symptom is None:
            raise ValueError("a runnable invalid example must claim a symptom")


@dataclass(frozen=True)
class Edit:
    """Where and what a fix changes: ``kind`` and ``argument`` as in
    ``context.Fix``, the node's span as 1-based lines and 0-based character
    columns (end exclusive)."""

    kind: str
    argument: str
    start: Tuple[int, int]
    end: Tuple[int, int]


@dataclass(frozen=True)
class Violation:
    """One finding: 1-based line, 0-based column (in characters)."""

    line: int
    col: int
    code: str
    message: str
    #: the edit that fixes the finding without changing anything else the
    #: code does.  Not part of equality.
    fix: Optional[Edit] = field(default=None, compare=False, hash=False, repr=False)

    def text(self) -> str:
        return f"{self.code} {self.message}"


class Rule:
    """A rule sees ``ast`` nodes through ``visit_*``/``leave_*`` methods.

    The engine drives one traversal and calls every rule's hooks after the
    shared context (grad mode, imports, scopes) is updated for the node.
    Rules report through ``self.report(node, message)``.
    """

    code: ClassVar[str] = ""
    name: ClassVar[str] = ""
    #: Words one of which must occur in the source text for the rule to be
    #: able to fire.  The engine skips parsing files that contain none of the
    #: words of any enabled rule; a test checks this never changes results.
    triggers: ClassVar[Tuple[str, ...]] = ()
    default_on: ClassVar[bool] = True
    summary: ClassVar[str] = ""
    what: ClassVar[str] = ""
    why: ClassVar[str] = ""
    known_problems: ClassVar[str] = ""
    fix_safety: ClassVar[str] = ""
    references: ClassVar[Tuple[str, ...]] = ()
    #: Keys of ``settings.OPTIONS`` that change what the rule reports.
    options: ClassVar[Tuple[str, ...]] = ()
    VALID: ClassVar[Tuple[Valid, ...]] = ()
    INVALID: ClassVar[Tuple[Invalid, ...]] = ()

    def __init__(self, context: "Context") -> None:
        self.context = context

    def finish(self) -> None:
        """Called once the whole module is visited and callers are resolved."""

    def report(
        self,
        node: ast.AST,
        message: str,
        condition: Optional[Callable[[], bool]] = None,
        fix: Optional[Fix] = None,
    ) -> None:
        """Report ``node``.  ``fix`` names a behaviour-preserving edit."""
        self.context.add_report(Report(node, self.code, message, condition, fix))

    def code_of(self, node: ast.AST, limit: int = 40) -> str:
        """Source text of ``node`` on one line, shortened for a message."""
        text = " ".join(self.context.source_of(node).split())
        return text if len(text) <= limit else text[: limit - 3] + "..."
