"""How the ``flake8-gradmode`` command prints its findings: ``--format``.

``default`` is flake8's line, ``github`` a GitHub Actions workflow command per
finding (an annotation on the pull request), ``json`` and ``sarif`` one
document for the whole run (SARIF is what code scanning uploads take).  Every
position printed is 1-based, as flake8 prints it; ``Violation.col`` is 0-based.

Pure functions: findings in, text out.  The line formats are printed as files
finish; the documents once, at the end.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple
from urllib.parse import quote

from flake8_gradmode import __version__
from flake8_gradmode.rule import Violation

#: The project's home, for links in SARIF (rule pages are under docs/rules/).
#: OWNER stands for the account that publishes the repository.
REPOSITORY = "https://github.com/OWNER/flake8-gradmode"
SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/os/schemas/sarif-schema-2.1.0.json"

LINE_FORMATS = ("default", "github")
DOCUMENT_FORMATS = ("json", "sarif")
FORMATS = LINE_FORMATS + DOCUMENT_FORMATS

#: ``(path, violation)``: a finding and the file it is in, as the path was given.
Finding = Tuple[str, Violation]

# --- lines --------------------------------------------------------------------


def default_line(path: str, v: Violation) -> str:
    """flake8's default format: ``path:line:col: CODE message``."""
    return f"{path}:{v.line}:{v.col + 1}: {v.code} {v.message}"


def github_line(path: str, v: Violation) -> str:
    """``::error file=...,line=...,col=...,title=CODE::message``: GitHub reads
    this from a step's output and annotates the line."""
    properties = f"file={_github_property(relative_path(path))},line={v.line},col={v.col + 1}"
    return f"::error {properties},title={_github_property(v.code)}::{_github_data(v.message)}"


def _github_data(text: str) -> str:
    # GitHub's escaping for workflow commands: % first, so no escape is escaped twice.
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _github_property(text: str) -> str:
    return _github_data(text).replace(":", "%3A").replace(",", "%2C")


def line(fmt: str, path: str, v: Violation) -> str:
    return github_line(path, v) if fmt == "github" else default_line(path, v)


def relative_path(path: str) -> str:
    """``path`` relative to the current directory with ``/`` separators: what
    GitHub annotations and SARIF (from the repository root) resolve."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive on Windows: keep it absolute
        rel = os.path.abspath(path)
    return rel.replace(os.sep, "/")


# --- documents ------------------------------------------------------------------


def json_document(findings: Sequence[Finding]) -> str:
    """One JSON list; ``fixable`` says whether ``--fix`` repairs the finding,
    ``unsafe_fixable`` whether ``--fix --unsafe-fixes`` does (an opt-in fix)."""
    items = [
        {
            "filename": path,
            "line": v.line,
            "column": v.col + 1,
            "code": v.code,
            "message": v.message,
            "fixable": v.fix is not None and not v.fix.unsafe,
            "unsafe_fixable": v.fix is not None and v.fix.unsafe,
        }
        for path, v in findings
    ]
    return json.dumps(items, indent=2) + "\n"


def level(code: str) -> str:
    """SARIF level: definite bugs (and internal errors) are errors, heuristics and hints warnings."""
    return "error" if code.startswith("GRD0") else "warning"


def rule_descriptors() -> List[Dict[str, object]]:
    """SARIF ``reportingDescriptor`` for every code the command can report."""
    from flake8_gradmode.engine import INTERNAL_ERROR
    from flake8_gradmode.registry import RULES

    rules: List[Tuple[str, str, str, str]] = [
        (INTERNAL_ERROR, "internal-error", "flake8-gradmode could not analyse the file", "docs/index.md#code-ranges")
    ]
    rules += [(r.code, r.name, " ".join(r.summary.split()), f"docs/rules/{r.code}.md") for r in RULES]
    return [
        {
            "id": code,
            "name": name,
            "shortDescription": {"text": summary},
            "helpUri": f"{REPOSITORY}/blob/HEAD/{page}",
            "defaultConfiguration": {"level": level(code)},
        }
        for code, name, summary, page in rules
    ]


def sarif_document(findings: Sequence[Finding], successful: bool = True) -> str:
    """A SARIF 2.1.0 log with one run.  ``successful`` is false when some file
    could not be checked (its error went to stderr)."""
    rules = rule_descriptors()
    index = {rule["id"]: i for i, rule in enumerate(rules)}
    results = [_sarif_result(path, v, index.get(v.code)) for path, v in findings]
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "flake8-gradmode",
                        "version": __version__,
                        "informationUri": REPOSITORY,
                        "rules": rules,
                    }
                },
                "invocations": [{"executionSuccessful": successful}],
                "columnKind": "unicodeCodePoints",  # columns count characters, as flake8's do
                "results": results,
            }
        ],
    }
    return json.dumps(log, indent=2) + "\n"


def _sarif_result(path: str, v: Violation, rule_index: Optional[int]) -> Dict[str, object]:
    result: Dict[str, object] = {"ruleId": v.code}
    if rule_index is not None:
        result["ruleIndex"] = rule_index
    result["level"] = level(v.code)
    result["message"] = {"text": v.message}
    location = {
        "artifactLocation": {"uri": _uri(path)},
        "region": {"startLine": v.line, "startColumn": v.col + 1},
    }
    result["locations"] = [{"physicalLocation": location}]
    return result


def _uri(path: str) -> str:
    rel = relative_path(path)
    if os.path.isabs(rel):  # no relative form (another drive): a file URI
        return Path(rel).as_uri()
    return quote(rel, safe="/")


def document(fmt: str, findings: Sequence[Finding], successful: bool = True) -> str:
    return sarif_document(findings, successful) if fmt == "sarif" else json_document(findings)


# --- statistics -------------------------------------------------------------------


def statistics(findings: Sequence[Finding]) -> List[str]:
    """flake8's ``--statistics``: ``COUNT CODE message`` per code, codes sorted;
    the message is the first one of that code in the first file by name."""
    counts: Dict[str, int] = {}
    first: Dict[str, Tuple[str, str]] = {}
    for path, v in findings:
        counts[v.code] = counts.get(v.code, 0) + 1
        if v.code not in first or path < first[v.code][0]:
            first[v.code] = (path, v.message)
    return [f"{counts[code]:<5} {code} {first[code][1]}" for code in sorted(counts)]


__all__ = ["FORMATS", "default_line", "github_line", "json_document", "sarif_document", "statistics"]
