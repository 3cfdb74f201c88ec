"""Digests of the project code a job runs, so that results follow the code.

Snakemake reruns a job when its script changes, not when a module the script
imports does (``metrics/``, ``ipbench/``, ``methods/``). A job's params
therefore carry the sha256 of every project source file it can reach: the
script's imports, followed through the project's own modules (imports inside
functions included), plus the modules that ``"package.module:function"``
strings name (registries load metric functions and trainers that way). An
edit reruns the jobs whose code it touches and nothing else. Kept free of
heavy imports: the DAG computes these at every build.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import re
from pathlib import Path

PACKAGES = ("ipbench", "methods", "metrics")
# "ipbench.world.metrics:attributes_metric": a module named in a string, loaded by a registry.
_NAMED = re.compile(r"^((?:%s)(?:\.\w+)*):\w+$" % "|".join(PACKAGES))


def module_file(root: Path, name: str) -> Path | None:
    """The source file of project module ``name`` (a module or a package's ``__init__``), if it exists."""
    base = root.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.lru_cache(maxsize=None)
def _references(root: Path, path: Path) -> frozenset[str]:
    """Project modules that ``path`` imports or names, as dotted names (its packages' ``__init__`` too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _module_name(root, path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(filter(None, [*anchor, base]))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import module`
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = _NAMED.match(node.value)
            if match:
                names.add(match.group(1))
    found = set()
    for name in names:
        if name.split(".")[0] not in PACKAGES:
            continue
        parts = name.split(".")
        found.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))  # importing a.b.c runs a, a.b
    return frozenset(name for name in found if module_file(root, name))


def reachable(root: Path, starts: tuple[Path, ...]) -> list[Path]:
    """Every project source file reachable from ``starts`` (files or dotted module names resolved first)."""
    root = Path(root).resolve()
    todo = [Path(p).resolve() for p in starts]
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        todo.extend(module_file(root, name).resolve() for name in _references(root, path))
    return sorted(seen)


@functools.lru_cache(maxsize=None)
def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@functools.lru_cache(maxsize=None)
def code_digest(root: Path, starts: tuple[str, ...]) -> str:
    """sha256 over the relative paths and contents of everything ``starts`` reach.

    ``starts`` are paths relative to ``root`` (a job script) or dotted project
    module names (a method's module, which the registry imports by listing files).
    """
    root = Path(root).resolve()
    files = []
    for start in starts:
        path = root / start if start.endswith(".py") else module_file(root, start)
        if path is None or not path.is_file():
            raise FileNotFoundError(f"code digest: no source for {start!r} under {root}")
        files.append(path)
    digest = hashlib.sha256()
    for path in reachable(root, tuple(files)):
        digest.update(f"{path.relative_to(root)}\0{_file_sha256(path)}\n".encode())
    return digest.hexdigest()
