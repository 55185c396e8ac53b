"""Where users meet the plugin: real pre-commit, python-lsp-server and nbqa.

Each test drives the real tool in a subprocess and skips only when the tool is
not installed (``pip install -e ".[test]"`` installs all three).

* pre-commit: ``pre-commit try-repo`` on a snapshot of this checkout (the
  working tree as the tests see it, committed into a temporary repository,
  because try-repo clones HEAD and ignores untracked files), run in a
  temporary project with a committed bad file.  It builds the hook's virtual
  environment with pip, so it needs the package index (about 30 s a hook).
* pylsp: a JSON-RPC client over stdio (Content-Length framing), with every
  read under a deadline so the test cannot hang.
* nbqa: ``nbqa flake8`` on a hand-written notebook.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

BAD = "import torch\n\nmodel = torch.nn.Linear(2, 2)\nwith torch.no_grad:\n    y = model(torch.zeros(1, 2))\n"
FIXED = BAD.replace("torch.no_grad:", "torch.no_grad():")
GRD001 = (
    "GRD001 `torch.no_grad` is used as a context manager without calling it and raises TypeError; "
    "write `torch.no_grad()`"
)


def require_module(name: str) -> None:
    pytest.importorskip(name, reason=f"{name} is not installed")


def tool_env() -> Dict[str, str]:
    """The environment with this interpreter's scripts (flake8, pre-commit) first on PATH."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(BIN), env.get("PATH", "")])
    return env


# --- pre-commit -------------------------------------------------------------


def git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git repository holding this checkout's working tree, committed."""
    require_module("pre_commit")
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    if not (ROOT / ".pre-commit-hooks.yaml").is_file():
        pytest.skip("not run from a source checkout")
    snapshot = tmp_path_factory.mktemp("hook-repo")
    if (ROOT / ".git").exists():
        listed = git(ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
        files = [name for name in listed if name and (ROOT / name).is_file()]
    else:
        skip = {".git", "build", "dist", "__pycache__", ".pytest_cache"}
        files = [
            str(p.relative_to(ROOT))
            for p in ROOT.rglob("*")
            if p.is_file() and not skip.intersection(p.relative_to(ROOT).parts) and ".egg-info" not in str(p)
        ]
    for name in files:
        target = snapshot / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    git(snapshot, "init", "-q")
    git(snapshot, "add", "-A")
    git(snapshot, "commit", "-q", "-m", "snapshot of the checkout under test")
    return snapshot


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A user's repository with one committed file that has a GRD001 bug."""
    git(tmp_path, "init", "-q")
    (tmp_path / "f.py").write_text(BAD, encoding="utf-8")
    git(tmp_path, "add", "f.py")
    git(tmp_path, "commit", "-q", "-m", "a bad file")
    return tmp_path


def try_repo(hook_repo: Path, project: Path, hook: str) -> subprocess.CompletedProcess:
    env = tool_env()
    env.pop("PRE_COMMIT_HOME", None)
    env["PRE_COMMIT_COLOR"] = "never"
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(hook_repo), hook, "--files", "f.py"],
        cwd=project,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_pre_commit_check_hook_fails_with_the_finding(hook_repo: Path, project: Path) -> None:
    proc = try_repo(hook_repo, project, "flake8-gradmode")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert f"f.py:4:6: {GRD001}" in out.splitlines(), out
    assert "- hook id: flake8-gradmode" in out
    assert (project / "f.py").read_text(encoding="utf-8") == BAD  # the check hook writes nothing


def test_pre_commit_fix_hook_fixes_the_file(hook_repo: Path, project: Path) -> None:
    proc = try_repo(hook_repo, project, "flake8-gradmode-fix")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out  # pre-commit fails a hook that modified files
    assert "files were modified by this hook" in out, out
    assert "fixed 1 finding in 1 file" in out, out
    assert (project / "f.py").read_text(encoding="utf-8") == FIXED


# --- python-lsp-server --------------------------------------------------------


class LspClient:
    """A minimal LSP client over a subprocess's stdio; every wait has a deadline."""

    def __init__(self, cmd: List[str], cwd: Path, env: Dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self.messages: "queue.Queue[Optional[Dict[str, Any]]]" = queue.Queue()
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        stream = self.proc.stdout
        assert stream is not None
        try:
            while True:
                headers = {}
                while True:
                    line = stream.readline()
                    if not line:
                        return
                    line = line.strip()
                    if not line:
                        break
                    name, _, value = line.decode("ascii").partition(":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers["content-length"])
                body = stream.read(length)
                if len(body) < length:
                    return
                self.messages.put(json.loads(body.decode("utf-8")))
        finally:
            self.messages.put(None)  # end of stream

    def send(self, message: Dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode("utf-8")
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def request(self, method: str, params: Any) -> int:
        self.next_id += 1
        self.send({"id": self.next_id, "method": method, "params": params})
        return self.next_id

    def notify(self, method: str, params: Any) -> None:
        self.send({"method": method, "params": params})

    def wait_for(self, predicate, timeout: float) -> Dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching message from the server within {timeout} s")
            try:
                message = self.messages.get(timeout=left)
            except queue.Empty:
                continue
            if message is None:
                raise AssertionError(f"the server exited: {self.stderr()}")
            if "id" in message and "method" in message:  # a request from the server: answer it
                self.send({"id": message["id"], "result": None})
                continue
            if predicate(message):
                return message

    def stderr(self) -> str:
        if self.proc.poll() is None:
            return ""
        assert self.proc.stderr is not None
        return self.proc.stderr.read().decode("utf-8", "replace")[-2000:]

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                shutdown = self.request("shutdown", None)
                self.wait_for(lambda m: m.get("id") == shutdown, timeout=10)
                self.notify("exit", None)
                self.proc.wait(timeout=10)
        except (AssertionError, OSError, subprocess.TimeoutExpired):
            pass
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=10)
            for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
                if stream is not None:
                    stream.close()


def test_pylsp_publishes_the_diagnostic_for_an_unsaved_buffer(tmp_path: Path) -> None:
    require_module("pylsp")
    uri = (tmp_path / "train.py").as_uri()  # never written: the buffer is unsaved
    client = LspClient([sys.executable, "-m", "pylsp"], cwd=tmp_path, env=tool_env())
    try:
        init = client.request(
            "initialize",
            {"processId": os.getpid(), "rootUri": tmp_path.as_uri(), "capabilities": {}},
        )
        client.wait_for(lambda m: m.get("id") == init, timeout=30)
        client.notify("initialized", {})
        off = {"enabled": False}
        others = ("pycodestyle", "pyflakes", "mccabe", "pylint", "pydocstyle", "autopep8", "yapf", "rope_autoimport")
        plugins = {name: off for name in others}
        plugins["flake8"] = {"enabled": True}
        client.notify("workspace/didChangeConfiguration", {"settings": {"pylsp": {"plugins": plugins}}})
        client.notify(
            "textDocument/didOpen",
            {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": BAD}},
        )
        published = client.wait_for(
            lambda m: m.get("method") == "textDocument/publishDiagnostics" and m["params"]["uri"] == uri, timeout=60
        )
    finally:
        client.close()
    diagnostics = published["params"]["diagnostics"]
    assert [(d["source"], d["code"], d["message"]) for d in diagnostics] == [("flake8", "GRD001", GRD001)]
    # flake8 prints 4:6 (1-based); LSP positions are 0-based.  pylsp ends the
    # range at the end of the line (flake8 reports no end column).
    assert diagnostics[0]["range"] == {
        "start": {"line": 3, "character": 5},
        "end": {"line": 3, "character": len("with torch.no_grad:\n")},
    }


# --- nbqa -------------------------------------------------------------------


def notebook(*cells: str) -> str:
    def cell(n: int, source: str) -> Dict[str, Any]:
        return {
            "cell_type": "code",
            "execution_count": None,
            "id": f"cell-{n}",
            "metadata": {},
            "outputs": [],
            "source": source.splitlines(keepends=True),
        }

    return json.dumps(
        {
            "cells": [cell(n, source) for n, source in enumerate(cells, start=1)],
            "metadata": {
                "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                "language_info": {"name": "python"},
            },
            "nbformat": 4,
            "nbformat_minor": 5,
        },
        indent=1,
    )


def test_nbqa_reports_the_finding_on_its_cell(tmp_path: Path) -> None:
    require_module("nbqa")
    (tmp_path / "nb.ipynb").write_text(
        notebook(
            "import torch\n\nmodel = torch.nn.Linear(2, 2)\n",
            "x = torch.zeros(1, 2)\nwith torch.no_grad:\n    y = model(x)\n",
        ),
        encoding="utf-8",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "nbqa", "flake8", "nb.ipynb", "--select=GRD"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=tool_env(),
        timeout=120,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == [f"nb.ipynb:cell_2:2:6: {GRD001}"]
