"""Content hashes used as cache keys: same inputs and same code -> same key, anything else -> a new one."""

from __future__ import annotations

import ast
import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from core.paths import PROJECT_ROOT

BIG_FILE = 64 * 2**20  # files above this are fingerprinted by name, size and mtime, not bytes


def stable_hash(*parts: Any) -> str:
    """Hash JSON-able parts (pydantic models are dumped first), independent of dict order."""
    dumped = [p.model_dump(mode="json") if hasattr(p, "model_dump") else p for p in parts]
    return hashlib.sha256(json.dumps(dumped, sort_keys=True, default=str).encode()).hexdigest()


def path_hash(path: Path) -> str:
    """Content hash of a file or a directory tree (missing path -> hash of nothing)."""
    if path.is_dir():
        root, files = path, sorted(p for p in path.rglob("*") if p.is_file())
    else:
        root, files = path.parent, [path] if path.is_file() else []
    h = hashlib.sha256()
    for f in files:
        stat = f.stat()
        h.update(f"{f.relative_to(root).as_posix()}\0{stat.st_size}\0".encode())
        if stat.st_size > BIG_FILE:
            h.update(str(stat.st_mtime_ns).encode())
        else:
            with f.open("rb") as fh:
                h.update(hashlib.file_digest(fh, "sha256").digest())
    return h.hexdigest()


def code_fingerprint(*modules: str, root: Path | None = None) -> str:
    """Hash of the code of these project modules and of every project module they import, transitively.

    The code that made a cached result is read from the import graph, so no list of files can
    drift from it. Modules are read with `ast`, not imported (no torch import to hash a key),
    and hashed without docstrings, comments or layout: rewording a message in a docstring or
    a comment reuses every cache, while any change to code (string constants included)
    recomputes what depends on it.
    """
    root = root or PROJECT_ROOT
    return stable_hash([(name, _read(_file(name, root))[0]) for name in module_closure(*modules, root=root)])


def module_closure(*modules: str, root: Path | None = None) -> list[str]:
    """The modules, their packages (Python runs each `__init__` on the way) and what they import, sorted."""
    root = root or PROJECT_ROOT
    seen: set[str] = set()
    todo = [m for name in modules for m in _with_packages(name)]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = _file(name, root)
        if path is None:
            raise ValueError(f"{name!r} is not a module of the project under {root}")
        seen.add(name)
        for imported in _read(path)[1]:
            todo += [m for m in _with_packages(_resolve(imported, name, path, root)) if _file(m, root)]
    return sorted(seen)


def _with_packages(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _file(name: str, root: Path) -> Path | None:
    base = root.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _resolve(imported: tuple[int, str, str], importer: str, path: Path, root: Path) -> str:
    """`from a import b` names module a.b when there is one, else a (b is a name in it)."""
    level, module, name = imported
    if level:
        package = importer if path.name == "__init__.py" else importer.rpartition(".")[0]
        package = ".".join(package.split(".")[: len(package.split(".")) - level + 1])
        module = f"{package}.{module}" if module else package
    if name and _file(f"{module}.{name}", root):
        return f"{module}.{name}"
    return module


def _read(path: Path) -> tuple[str, tuple[tuple[int, str, str], ...]]:
    stat = path.stat()
    return _parse(path, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=4096)
def _parse(path: Path, mtime_ns: int, size: int) -> tuple[str, tuple[tuple[int, str, str], ...]]:
    """A module's code without docstrings (ast.dump drops comments and line numbers), and its imports."""
    tree = ast.parse(path.read_text(), filename=str(path))
    imports = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imports += [(0, alias.name, "") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            imports += [(node.level, node.module or "", alias.name) for alias in node.names]
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and ast.get_docstring(node, clean=False) is not None:
            node.body = node.body[1:] or [ast.Pass()]
    return ast.dump(tree), tuple(imports)
