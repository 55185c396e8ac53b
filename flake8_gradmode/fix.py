"""Apply the behaviour-preserving fixes rules name on their findings, with libcst.

This is the only module that imports libcst: the finder runs on ``ast`` and
names each fix (``rule.Edit``: a kind and the span of the node it changes);
here the file is parsed losslessly, the node with that span is found and
replaced, and libcst gives back every other byte as it was (formatting,
comments, line endings).  Findings suppressed with ``# noqa`` (flake8's
syntax, codes matched by prefix) are left alone.  The result is parsed again
before it is returned, and fixing is repeated until nothing fixable is left,
so running the fixer twice changes nothing the second time.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from flake8_gradmode.engine import check
from flake8_gradmode.noqa import noqa_lines, suppressed
from flake8_gradmode.rule import Edit, Violation
from flake8_gradmode.settings import Settings

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


# --- the edits, as libcst transformations ----------------------------------------


def _add_call(node: cst.CSTNode, argument: str) -> Optional[cst.CSTNode]:
    """``torch.no_grad`` -> ``torch.no_grad()`` (``argument`` inside)."""
    if not isinstance(node, (cst.Name, cst.Attribute)):
        return None
    args = [cst.Arg(cst.parse_expression(argument))] if argument else []
    return cst.Call(func=node, args=args)


def _drop_keyword(node: cst.CSTNode, argument: str) -> Optional[cst.CSTNode]:
    """``f(x, volatile=True)`` -> ``f(x)``, punctuation kept tidy."""
    if not isinstance(node, cst.Call):
        return None
    arg = next((a for a in node.args if a.keyword is not None and a.keyword.value == argument), None)
    if arg is None:
        return None
    args = [a for a in node.args if a is not arg]
    if args and node.args[-1] is arg:
        args[-1] = args[-1].with_changes(comma=arg.comma)
    return node.with_changes(args=args)


def _unwrap_call(node: cst.CSTNode, argument: str) -> Optional[cst.CSTNode]:
    """``Variable(x)`` -> ``x``."""
    if not isinstance(node, cst.Call) or len(node.args) != 1:
        return None
    arg = node.args[0]
    if arg.keyword is not None or arg.star:
        return None
    return arg.value


_EDITS: Dict[str, Callable[[cst.CSTNode, str], Optional[cst.CSTNode]]] = {
    "add-call": _add_call,
    "drop-keyword": _drop_keyword,
    "unwrap-call": _unwrap_call,
}


class _Replace(cst.CSTTransformer):
    def __init__(self, replacements: Dict[int, cst.CSTNode]) -> None:
        super().__init__()
        self.replacements = replacements

    def on_leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode):  # type: ignore[override]
        return self.replacements.get(id(original_node), updated_node)


Span = Tuple[Tuple[int, int], Tuple[int, int]]


def _nodes_by_span(module: cst.Module) -> Dict[Span, List[cst.CSTNode]]:
    """Every expression of ``module`` by the span ``ast`` gives it (1-based
    lines, 0-based character columns, end exclusive), outermost first."""
    positions = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    out: Dict[Span, List[cst.CSTNode]] = {}
    for node, where in positions.items():
        if isinstance(node, cst.BaseExpression):
            span = ((where.start.line, where.start.column), (where.end.line, where.end.column))
            out.setdefault(span, []).append(node)
    return out


def _replacements(
    module: cst.Module, chosen: Sequence[Violation]
) -> Tuple[Dict[int, cst.CSTNode], List[Violation]]:
    """Node id -> its replacement, and the findings those replacements fix.
    A finding whose node is not found (a span libcst draws differently, such
    as a parenthesized expression) is left reported."""
    by_span = _nodes_by_span(module)
    out: Dict[int, cst.CSTNode] = {}
    done: List[Violation] = []
    for v in chosen:
        edit: Edit = v.fix  # type: ignore[assignment]
        make = _EDITS.get(edit.kind)
        for node in by_span.get((edit.start, edit.end), ()) if make is not None else ():
            new = make(node, edit.argument)  # type: ignore[misc]
            if new is not None:
                out.setdefault(id(node), new)
                done.append(v)
                break
    return out, done


def fix_source(
    source: str,
    settings: Settings = Settings(),
    selected: Callable[[str], bool] = lambda code: True,
    filename: str = "",
) -> FixResult:
    """Fix every selected, unsuppressed finding that has a fix."""
    result = FixResult(source)
    for _ in range(_MAX_ROUNDS):
        noqa = noqa_lines(result.source)
        violations = check(result.source, settings, filename=filename)
        chosen = [
            v
            for v in violations
            if v.fix is not None and selected(v.code) and not suppressed(noqa.get(v.line, ""), v.code)
        ]
        if not chosen:
            break
        try:
            module = cst.parse_module(result.source)
        except cst.ParserSyntaxError:
            break  # valid Python libcst cannot parse: report, do not fix
        replacements, done = _replacements(module, chosen)
        if not replacements:
            break
        new_source = module.visit(_Replace(replacements)).code
        if new_source == result.source:
            break
        _reparse(new_source)
        result.fixed.extend(done)
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


__all__ = ["FixError", "FixResult", "fix_source", "fixable_codes"]
