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
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import libcst as cst
import libcst.helpers
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
#
# Expression edits replace one node by another.  Statement edits change the
# block that holds the statement: wrap it in ``with torch.no_grad():``, put a
# statement before or after it, or decorate a ``def``.  ``{torch}`` in an
# edit's text is the name the module imports torch as; ``import torch`` is
# added only when the module has no such name.


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


_ATOMS = (cst.Name, cst.Attribute, cst.Call, cst.Subscript)


def _call_method(node: cst.CSTNode, argument: str) -> Optional[cst.CSTNode]:
    """``loss`` -> ``loss.item()``; ``a + b`` -> ``(a + b).item()``."""
    if not isinstance(node, cst.BaseExpression):
        return None
    if not isinstance(node, _ATOMS) and not node.lpar:
        node = node.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    return cst.Call(func=cst.Attribute(value=node, attr=cst.Name(argument)))


_EXPRESSION_EDITS: Dict[str, Callable[[cst.CSTNode, str], Optional[cst.CSTNode]]] = {
    "add-call": _add_call,
    "drop-keyword": _drop_keyword,
    "unwrap-call": _unwrap_call,
    "call-method": _call_method,
}
_STATEMENT_EDITS = frozenset({"wrap-no-grad", "insert-before", "insert-after", "decorate-no-grad"})

Span = Tuple[Tuple[int, int], Tuple[int, int]]
Statement = Union[cst.SimpleStatementLine, cst.BaseCompoundStatement]


class _Plan:
    """What to change in one module: node replacements and statement edits."""

    def __init__(self, torch_name: Optional[str]) -> None:
        self.replace: Dict[int, cst.CSTNode] = {}
        #: id of a statement -> [(kind, text)], applied where its block is rebuilt
        self.statements: Dict[int, List[Tuple[str, str]]] = {}
        self.torch_name = torch_name or "torch"
        self.needs_import = torch_name is None
        self.uses_torch = False

    def text(self, template: str) -> str:
        if "{torch}" in template:
            self.uses_torch = True
        return template.replace("{torch}", self.torch_name)


def _torch_name(module: cst.Module) -> Optional[str]:
    """The name the module binds torch to at its top level (``import torch
    as th``: ``th``), also inside a top-level ``try:`` or ``if`` (``try:
    import torch`` / ``except ImportError:``); None when there is none."""
    todo: List[cst.CSTNode] = list(module.body)
    while todo:
        stmt = todo.pop(0)
        if isinstance(stmt, (cst.Try, cst.If, cst.Else, cst.ExceptHandler)):
            todo[:0] = list(stmt.body.body)  # type: ignore[union-attr]
            continue
        if not isinstance(stmt, cst.SimpleStatementLine):
            continue
        for small in stmt.body:
            if isinstance(small, cst.Import):
                for alias in small.names:
                    if isinstance(alias.name, cst.Name) and alias.name.value == "torch":
                        return alias.asname.name.value if alias.asname else "torch"  # type: ignore[union-attr]
                    if alias.asname is None and cst.helpers.get_full_name_for_node(alias.name).startswith("torch."):
                        return "torch"  # ``import torch.nn`` binds ``torch`` too
    return None


def _positions(module: cst.Module) -> Dict[cst.CSTNode, "Span"]:
    positions = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    return {n: ((p.start.line, p.start.column), (p.end.line, p.end.column)) for n, p in positions.items()}


def _statements(positions: Dict[cst.CSTNode, Span]) -> Dict[Tuple[int, int], Statement]:
    """Statements by where ``ast`` starts them: a compound statement at its
    keyword, a line of simple statements at its first one when it holds just
    one (``a; b`` is left alone)."""
    out: Dict[Tuple[int, int], Statement] = {}
    for node, (begin, _) in positions.items():
        if isinstance(node, cst.BaseCompoundStatement):
            out.setdefault(begin, node)
        elif isinstance(node, cst.SimpleStatementLine) and len(node.body) == 1:
            out.setdefault(positions[node.body[0]][0], node)
    return out


def _plan(module: cst.Module, chosen: Sequence[Violation]) -> Tuple[_Plan, List[Violation]]:
    """What to change, and the findings those changes fix.  A finding whose
    node is not found (a span libcst draws differently, such as a
    parenthesized expression) is left reported."""
    positions = _positions(module)
    by_span: Dict[Span, List[cst.CSTNode]] = {}
    for node, span in positions.items():
        if isinstance(node, cst.BaseExpression):
            by_span.setdefault(span, []).append(node)
    statements = _statements(positions)
    plan = _Plan(_torch_name(module))
    done: List[Violation] = []
    for v in chosen:
        edit: Edit = v.fix  # type: ignore[assignment]
        if edit.kind in _STATEMENT_EDITS:
            stmt = statements.get(edit.start)
            if stmt is None or (edit.kind == "decorate-no-grad" and not isinstance(stmt, cst.FunctionDef)):
                continue
            edits = plan.statements.setdefault(id(stmt), [])
            wanted = (edit.kind, plan.text(edit.argument))
            if wanted not in edits:  # two loops of one function: one decorator
                edits.append(wanted)
            done.append(v)
            continue
        make = _EXPRESSION_EDITS.get(edit.kind)
        for node in by_span.get((edit.start, edit.end), ()) if make is not None else ():
            new = make(node, edit.argument)
            if new is not None and id(node) not in plan.replace:
                plan.replace[id(node)] = new
                done.append(v)
                break
    return plan, done


class _Apply(cst.CSTTransformer):
    def __init__(self, plan: _Plan) -> None:
        super().__init__()
        self.plan = plan
        #: the statements each original statement becomes
        self.becomes: Dict[int, List[Statement]] = {}

    def on_leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode):  # type: ignore[override]
        new = self.plan.replace.get(id(original_node), updated_node)
        edits = self.plan.statements.get(id(original_node))
        if edits:
            self.becomes[id(new)] = self._edit_statement(new, edits)  # type: ignore[arg-type]
        if isinstance(new, (cst.Module, cst.IndentedBlock)) and any(id(s) in self.becomes for s in new.body):
            body: List[cst.CSTNode] = []
            for stmt in new.body:
                body.extend(self.becomes.pop(id(stmt), [stmt]))  # type: ignore[arg-type]
            new = new.with_changes(body=body)
        return new

    def _edit_statement(self, stmt: Statement, edits: List[Tuple[str, str]]) -> List[Statement]:
        before: List[Statement] = []
        after: List[Statement] = []
        for kind, text in edits:
            if kind == "decorate-no-grad" and isinstance(stmt, cst.FunctionDef):
                deco = cst.Decorator(decorator=cst.parse_expression(text))
                stmt = stmt.with_changes(decorators=[*stmt.decorators, deco])
            elif kind == "wrap-no-grad":
                item = cst.WithItem(cst.parse_expression(text))
                inner = stmt.with_changes(leading_lines=[])
                stmt = cst.With(items=[item], body=cst.IndentedBlock(body=[inner]), leading_lines=stmt.leading_lines)
            elif kind == "insert-before":
                before.append(cst.parse_statement(text + "\n"))  # type: ignore[arg-type]
            elif kind == "insert-after":
                after.append(cst.parse_statement(text + "\n"))  # type: ignore[arg-type]
        if before:  # comments above the statement stay above what is inserted
            before[0] = before[0].with_changes(leading_lines=stmt.leading_lines)
            stmt = stmt.with_changes(leading_lines=[])
        return [*before, stmt, *after]


def _with_torch_import(module: cst.Module) -> cst.Module:
    """``import torch`` after the docstring and ``from __future__`` imports."""
    index = 0
    for i, stmt in enumerate(module.body):
        if not isinstance(stmt, cst.SimpleStatementLine):
            break
        first = stmt.body[0]
        docstring = i == 0 and isinstance(first, cst.Expr) and isinstance(first.value, cst.SimpleString)
        future = isinstance(first, cst.ImportFrom) and getattr(first.module, "value", "") == "__future__"
        if not (docstring or future):
            break
        index = i + 1
    body = list(module.body)
    body.insert(index, cst.parse_statement("import torch\n"))
    return module.with_changes(body=body)


def _apply(module: cst.Module, chosen: Sequence[Violation]) -> Tuple[str, List[Violation]]:
    plan, done = _plan(module, chosen)
    if not done:
        return module.code, []
    fixed = module.visit(_Apply(plan))
    if plan.needs_import and plan.uses_torch:
        fixed = _with_torch_import(fixed)
    return fixed.code, done


def fix_source(
    source: str,
    settings: Settings = Settings(),
    selected: Callable[[str], bool] = lambda code: True,
    filename: str = "",
    unsafe: bool = False,
) -> FixResult:
    """Fix every selected, unsuppressed finding that has a fix: the safe
    ones, and with ``unsafe`` also those that change what the code does."""
    result = FixResult(source)
    for _ in range(_MAX_ROUNDS):
        noqa = noqa_lines(result.source)
        violations = check(result.source, settings, filename=filename)
        chosen = [
            v
            for v in violations
            if v.fix is not None
            and (unsafe or not v.fix.unsafe)
            and selected(v.code)
            and not suppressed(noqa.get(v.line, ""), v.code)
        ]
        if not chosen:
            break
        try:
            module = cst.parse_module(result.source)
        except cst.ParserSyntaxError:
            break  # valid Python libcst cannot parse: report, do not fix
        new_source, done = _apply(module, chosen)
        if not done or new_source == result.source:
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
