"""The flake8 bridge: options in, findings out.  Nothing else lives here."""

from __future__ import annotations

import ast
from typing import Any, ClassVar, Generator, List, Sequence, Tuple, Type

from flake8_gradmode import __version__
from flake8_gradmode.engine import check
from flake8_gradmode.registry import DEFAULT_IGNORE, RULES
from flake8_gradmode.settings import OPTIONS, Settings, one_path


class GradModeChecker:
    name = "flake8-gradmode"
    version = __version__

    settings: ClassVar[Settings] = Settings()
    #: the rules worth running: the default-off ones only when the user's
    #: select/extend-select could turn them on (flake8 would drop their
    #: findings anyway, and they cost time)
    rules: ClassVar[Tuple[type, ...]] = tuple(r for r in RULES if r.default_on)

    def __init__(self, tree: ast.AST, lines: Sequence[str], filename: str = "") -> None:
        # `tree` is the ast flake8 parsed from `lines`, the text it read
        # (stdin included): analysed as it is, never parsed again.
        self.tree = tree
        self.lines = lines
        self.filename = filename

    @classmethod
    def add_options(cls, manager: Any) -> None:
        manager.extend_default_ignore(list(DEFAULT_IGNORE))
        for option in OPTIONS.values():
            # flake8 makes a path relative to the config file it came from
            # absolute; its own type replaces ours then
            kind = {"normalize_paths": True} if option.parse is one_path else {"type": option.parse}
            manager.add_option(
                option.flag,
                default=None,
                metavar=option.metavar,
                parse_from_config=True,
                help=option.help.replace("%", "%%"),
                **kind,
            )

    @classmethod
    def parse_options(cls, options: Any) -> None:
        cls.settings = Settings.from_options(options)
        chosen = [*(getattr(options, "select", None) or ()), *(getattr(options, "extend_select", None) or ())]
        cls.rules = tuple(r for r in RULES if r.default_on or _may_select(chosen, r.code))

    def run(self) -> Generator[Tuple[int, int, str, Type[Any]], None, None]:
        violations: List[Any]
        try:
            violations = check(
                "".join(self.lines), self.settings, rules=self.rules, filename=self.filename, tree=self.tree,
                lines=self.lines,
            )
        except Exception:  # pragma: no cover - check() never raises; belt and braces
            return  # (KeyboardInterrupt and SystemExit still stop the run)
        for v in violations:
            yield v.line, v.col, v.text(), type(self)


def _may_select(prefixes: Sequence[str], code: str) -> bool:
    """Could flake8 report ``code`` given these select prefixes?  (``GRD``
    and ``GRD9`` select ``GRD901``; so does ``ALL``-style ``G``.)"""
    return any(code.startswith(p.strip()) for p in prefixes if p.strip())
