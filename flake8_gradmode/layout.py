"""Where a linted file sits in its project, read from the disk alone.

The project is the nearest ancestor of the file that holds one of
``ROOT_MARKERS``.  This module finds it, lists its ``.py`` files and the
top-level names an import can reach it through, and names modules and
functions the way the project index (``project``) does.  It is all the
per-file analysis needs of the project until a rule's answer depends on
another module: then ``project`` is imported and the index is loaded.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Dict, FrozenSet, Iterator, List, Optional, Set, Tuple

#: files that make a project a package others may import
PACKAGING = ("pyproject.toml", "setup.cfg", "setup.py")
#: Files that mark a project's root directory.
ROOT_MARKERS = (*PACKAGING, ".git")
#: directories never searched for modules
_SKIP_DIRS = frozenset({"__pycache__", "node_modules", "site-packages", "build", "dist"})

_ROOTS: Dict[str, Optional[str]] = {}


def find_root(path: str) -> Optional[str]:
    """The nearest ancestor directory of ``path`` holding a root marker."""
    directory = os.path.dirname(os.path.abspath(path))
    seen: List[str] = []
    root: Optional[str] = None
    while True:
        if directory in _ROOTS:
            root = _ROOTS[directory]
            break
        seen.append(directory)
        if any(os.path.exists(os.path.join(directory, marker)) for marker in ROOT_MARKERS):
            root = directory
            break
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    for d in seen:
        _ROOTS[d] = root
    return root


if TYPE_CHECKING:  # annotations only: making typing aliases at import costs time
    #: A module found on disk: its path relative to the root, size and mtime
    #: (``None`` for both when it cannot be ``stat``-ed).
    Found = Tuple[str, Optional[int], Optional[int]]

#: Directories are read through file descriptors where the platform allows:
#: a file's ``stat`` is then relative to its directory, not a full path.
_BY_FD = os.scandir in os.supports_fd and os.open in os.supports_dir_fd and hasattr(os, "O_DIRECTORY")
#: a subdirectory, never through a symbolic link (one made during the walk)
_SUBDIRECTORY = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)


class TooMany(Exception):
    pass


def scan(root: str, stat: bool, limit: int = -1, runners: Optional[List[str]] = None) -> List[Found]:
    """The project's ``.py`` files in path order (a directory's files, then
    its subdirectories), with their size and mtime when ``stat``; the files
    it meets that may import modules but are not read go to ``runners``:
    Jupyter notebooks (``.ipynb``) and Python scripts without an extension
    (``bin/run`` starting ``#!/usr/bin/env python``).  Hidden
    directories, caches, build output and virtual environments (a directory
    holding ``pyvenv.cfg``) are left out; symbolic links to directories are
    not followed; unreadable directories are skipped.  Raises ``TooMany``
    past ``limit`` files (no limit when negative)."""
    found: List[Found] = []

    def visit(where: object, prefix: str, is_root: bool) -> None:
        try:
            with os.scandir(where) as it:  # type: ignore[call-overload]
                entries = list(it)
        except OSError:
            return
        files: List[Found] = []
        dirs: List[str] = []
        for entry in entries:
            name = entry.name
            if name.endswith(".py"):
                try:
                    is_dir = entry.is_dir()
                except OSError:
                    is_dir = False
                if not is_dir:
                    size = mtime = None
                    if stat:
                        try:
                            st = entry.stat()
                            size, mtime = st.st_size, st.st_mtime_ns
                        except OSError:
                            pass
                    files.append((name, size, mtime))
                    continue
            elif name == "pyvenv.cfg" and not is_root:
                return  # a virtual environment
            elif runners is not None and (
                name.endswith(".ipynb") or ("." not in name and _python_script(where, entry))
            ):
                runners.append(prefix + name)
                continue
            if name[0] != "." and name not in _SKIP_DIRS:
                try:
                    if entry.is_dir() and not entry.is_symlink():
                        dirs.append(name)
                except OSError:
                    pass
        files.sort()
        found.extend([(prefix + name, size, mtime) for name, size, mtime in files])
        if 0 <= limit < len(found):
            raise TooMany
        dirs.sort()
        for name in dirs:
            if _BY_FD:
                try:
                    fd = os.open(name, _SUBDIRECTORY, dir_fd=where)  # type: ignore[arg-type]
                except OSError:
                    continue
                try:
                    visit(fd, prefix + name + os.sep, False)
                finally:
                    os.close(fd)
            else:
                visit(os.path.join(where, name), prefix + name + os.sep, False)  # type: ignore[arg-type]

    if _BY_FD:
        try:
            top = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            return found
        try:
            visit(top, "", True)
        finally:
            os.close(top)
    else:
        visit(root, "", True)
    return found


def _python_script(where: object, entry: "os.DirEntry[str]") -> bool:
    """Is ``entry`` (of directory ``where``, a path or an open descriptor) a
    file whose first line runs Python (``#!/usr/bin/env python``): a script
    without ``.py``?"""
    try:
        if not entry.is_file():
            return False
        if isinstance(where, int):
            fd = os.open(entry.name, os.O_RDONLY, dir_fd=where)
        else:
            fd = os.open(entry.path, os.O_RDONLY)
        with os.fdopen(fd, "rb") as f:
            first = f.read(128).split(b"\n", 1)[0]
    except OSError:
        return False
    return first.startswith(b"#!") and b"python" in first


_LOCAL_NAMES: Dict[Tuple[str, str], FrozenSet[str]] = {}


def local_names(filename: str, root: str = "") -> FrozenSet[str]:
    """Top-level names an import can reach the project through: the packages
    and modules at its root and in ``src/``, and those beside ``filename`` (a
    script's directory is on ``sys.path``).  Empty outside any project."""
    directory = os.path.dirname(os.path.abspath(filename))
    key = (directory, root)
    found = _LOCAL_NAMES.get(key)
    if found is None:
        top = os.path.abspath(root) if root else find_root(filename)
        names: Set[str] = set()
        if top:
            for place in (top, os.path.join(top, "src"), directory):
                try:
                    entries = os.listdir(place)
                except OSError:
                    continue
                names.update(e[:-3] if e.endswith(".py") else e for e in entries if not e.startswith("."))
        found = _LOCAL_NAMES[key] = frozenset(names)
    return found


def python_files(root: str) -> Iterator[str]:
    """Paths, relative to ``root``, of the project's ``.py`` files: hidden
    directories, caches, build output and virtual environments left out."""
    for rel, _, _ in scan(root, stat=False):
        yield rel


def module_name(rel: str) -> str:
    """``pkg.mod`` for ``pkg/mod.py`` and for ``pkg/mod/__init__.py``."""
    path = rel[:-3].replace(os.sep, "/")
    if path.endswith("/__init__"):
        path = path[:-9]
    elif path == "__init__":
        return ""
    return path.replace("/", ".")


def qualified(key: Tuple[str, ...]) -> Optional[str]:
    """The engine's function key as the index names it."""
    if key[0] == "function":
        return key[1]
    if key[0] == "method":
        return f"{key[1]}.{key[2]}"
    return None
