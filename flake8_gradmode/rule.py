"""Rule base class, examples, symptoms and violations.

Every rule carries its own valid and invalid examples.  The test suite turns
each example into a lint test (exact code, line and column) and, when the
example can run on a CPU, into an oracle test that executes it under real
PyTorch and checks the symptom it claims.  The docs are rendered from the same
examples, so nothing documented is untested.
"""

from __future__ import annotations

import ast
import textwrap
from typing import Callable, ClassVar, Optional, Tuple, Union

from flake8_gradmode.context import Context, Fix, Report

# (Plain classes with __slots__, not dataclasses or NamedTuples: every editor
# save imports this module, and creating a NamedTuple class costs about 0.2 ms,
# a dataclass more, a plain class a tenth of that.)

# --- symptoms: what running an example shows under real PyTorch -------------


class _Symptom:
    """Two named strings; subclasses name them in ``__slots__``."""

    __slots__: Tuple[str, ...] = ()

    def __init__(self, *values: str) -> None:
        if len(values) != len(self.__slots__):
            raise TypeError(f"{type(self).__name__} takes {', '.join(self.__slots__)}")
        for name, value in zip(self.__slots__, values):
            setattr(self, name, value)

    def _values(self) -> Tuple[str, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._values() == other._values()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, *self._values()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}{self._values()!r}"


class Raises(_Symptom):
    """Running the code raises ``exception`` whose message contains ``match``."""

    __slots__ = ("exception", "match")

    def describe(self) -> str:
        return f"raises `{self.exception}: {self.match}`"  # type: ignore[attr-defined]


class Warns(_Symptom):
    """Running the code emits a warning whose message contains ``match``."""

    __slots__ = ("category", "match")

    def describe(self) -> str:
        return f"warns `{self.category}: {self.match}`"  # type: ignore[attr-defined]


class Holds(_Symptom):
    """After running the code, ``expr`` evaluates to true in its namespace."""

    __slots__ = ("expr", "meaning")

    def describe(self) -> str:
        return f"{self.meaning} (`{self.expr}`)"  # type: ignore[attr-defined]


Symptom = object  # Raises | Warns | Holds


class Valid:
    """Code the rule must not report.

    ``checks`` are run under PyTorch after the code executes without error
    (for instance that an output has no ``grad_fn``).  ``runnable=False``
    marks code that cannot run on a CPU-only machine; ``why_not_run`` says why.
    """

    def __init__(
        self,
        code: str,
        checks: Tuple[Holds, ...] = (),
        runnable: bool = True,
        why_not_run: str = "",
        title: str = "",
    ) -> None:
        self._code = code
        self.checks = checks
        self.runnable = runnable
        self.why_not_run = why_not_run
        self.title = title

    @property
    def code(self) -> str:
        """The example as a file: dedented, one final newline (made when
        first asked for: only tests and docs read examples)."""
        return textwrap.dedent(self._code).strip("\n") + "\n"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.title or self.code.splitlines()[0]!r})"


class Invalid(Valid):
    """Code the rule must report exactly at ``at`` (1-based line, 0-based col).

    ``symptom`` is what the code does when run under PyTorch; the oracle test
    proves it.  ``also`` lists findings of other rules the same code produces,
    as ``(code, line, col)``.
    """

    def __init__(
        self,
        code: str,
        at: Tuple[Tuple[int, int], ...],
        symptom: Optional[object] = None,
        runnable: bool = True,
        why_not_run: str = "",
        also: Tuple[Tuple[str, int, int], ...] = (),
        title: str = "",
    ) -> None:
        super().__init__(code, (), runnable, why_not_run, title)
        self.at = at
        self.symptom = symptom
        self.also = also
        if runnable and symptom is None:
            raise ValueError("a runnable invalid example must claim a symptom")


class Edit:
    """Where and what a fix changes: ``kind``, ``argument`` and ``unsafe`` as
    in ``context.Fix``, the node's span as 1-based lines and 0-based
    character columns (end exclusive)."""

    __slots__ = ("kind", "argument", "start", "end", "unsafe")

    def __init__(
        self, kind: str, argument: str, start: Tuple[int, int], end: Tuple[int, int], unsafe: bool = False
    ) -> None:
        self.kind = kind
        self.argument = argument
        self.start = start
        self.end = end
        self.unsafe = unsafe


class Violation:
    """One finding: 1-based line, 0-based column (in characters).  ``fix`` is
    the edit that fixes it without changing anything else the code does; it
    is not part of equality."""

    __slots__ = ("line", "col", "code", "message", "fix")

    def __init__(self, line: int, col: int, code: str, message: str, fix: Optional[Edit] = None) -> None:
        self.line = line
        self.col = col
        self.code = code
        self.message = message
        self.fix = fix

    def _key(self) -> Tuple[int, int, str, str]:
        return (self.line, self.col, self.code, self.message)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Violation) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"Violation(line={self.line}, col={self.col}, code={self.code!r}, message={self.message!r})"

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
        fix: Union[Fix, Callable[[], Fix], None] = None,
    ) -> None:
        """Report ``node``.  ``fix`` names a behaviour-preserving edit (or is
        a function that makes it, called only if the report is kept)."""
        self.context.add_report(Report(node, self.code, message, condition, fix))

    def code_of(self, node: ast.AST, limit: int = 40) -> str:
        """Source text of ``node`` on one line, shortened for a message."""
        text = " ".join(self.context.source_of(node).split())
        return text if len(text) <= limit else text[: limit - 3] + "..."
