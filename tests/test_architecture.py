"""The package's shape: imports run one way without circles, modules stay small, the wheel ships the product only.

The import graph is read from the source with :mod:`ast` (nothing is imported), through the
folder-to-package mapping of ``pyproject.toml`` (``runtime/`` is ``soundsentry``, ``train/`` is
``soundsentry.train``...).
"""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib

from .conftest import REPO_ROOT

#: Folders checked, by their import name.
CHECKED = ("soundsentry", "soundsentry.train", "soundsentry.export", "soundsentry.gui")
#: What the runtime must never import (at module level or inside a function).
ABOVE_RUNTIME = ("soundsentry.train", "soundsentry.export", "soundsentry.gui")
MAX_LINES = 600
#: Modules allowed past MAX_LINES (none).
EXEMPT_FROM_SIZE: set[str] = set()


def _package_dirs() -> dict[str, Path]:
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    mapping = config["tool"]["setuptools"]["package-dir"]
    return {name: REPO_ROOT / folder for name, folder in mapping.items()}


def _modules() -> dict[str, Path]:
    """Import name -> file of every module under the checked folders (subpackages included)."""
    dirs = _package_dirs()
    owned = {d.resolve() for d in dirs.values()}
    out: dict[str, Path] = {}
    for package in CHECKED:
        root = dirs[package]
        for path in sorted(root.rglob("*.py")):
            rel = path.relative_to(root)
            # A nested folder that is itself a mapped package is that package's, not this one's.
            if any(parent.resolve() in owned and parent.resolve() != root.resolve() for parent in path.parents):
                continue
            parts = list(rel.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join([package, *parts])] = path
    return out


def _resolve(module: str, is_package: bool, level: int, target: str | None) -> str:
    """Absolute name of a (possibly relative) import in ``module``."""
    if level == 0:
        return target or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(module: str, path: Path, known: set[str]) -> list[tuple[str, bool]]:
    """``(imported module, at module level)`` for every import in the file, resolved to our modules where they are."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                continue  # annotations only, never executed
            if isinstance(child, ast.Import):
                found.extend((alias.name, top) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = _resolve(module, is_package, child.level, child.module)
                for alias in child.names:
                    sub = f"{base}.{alias.name}"
                    found.append((sub if sub in known else base, top))
            nested = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            visit(child, top and not nested)

    visit(tree, True)
    return found


def _graph() -> tuple[dict[str, Path], dict[str, list[tuple[str, bool]]]]:
    modules = _modules()
    known = set(modules)
    return modules, {name: _imports(name, path, known) for name, path in modules.items()}


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (or a module importing itself)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in edges.get(v, ()):
                out.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            strong(v)
    return out


def test_the_graph_sees_the_packages_and_their_imports():
    """The checks below mean something only if the walk finds the modules and resolves relative imports."""
    modules, imports = _graph()
    for name in ("soundsentry.model", "soundsentry.cli.score", "soundsentry.train.pipeline", "soundsentry.export.verify"):
        assert name in modules, name
    assert ("soundsentry.scoring", True) in imports["soundsentry.model"]
    assert ("soundsentry.exit_codes", True) in imports["soundsentry.cli.score"]
    assert ("soundsentry.export.verify", False) in imports["soundsentry.train.pipeline"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles_at_module_level():
    modules, imports = _graph()
    edges = {name: {m for m, top in found if top and m in modules and m != name} for name, found in imports.items()}
    assert _cycles(edges) == []


def test_the_runtime_never_imports_training_export_or_gui():
    _, imports = _graph()
    bad = [
        f"{name} imports {m}"
        for name, found in imports.items()
        if not name.startswith(ABOVE_RUNTIME)
        for m, _top in found
        if m.startswith(ABOVE_RUNTIME)
    ]
    assert bad == []


def test_no_module_is_over_600_lines():
    modules = _modules()
    long = {
        str(path.relative_to(REPO_ROOT)): n
        for path in modules.values()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert set(long) <= EXEMPT_FROM_SIZE, long


def test_no_detector_kind_is_named_outside_the_registry_and_its_class():
    """A new detector touches the registry and its class only (export/verify.py holds each kind's reference check)."""
    allowed = {"runtime/detector_kinds.py", "runtime/detectors.py", "export/verify.py"}
    modules = _modules()
    hits = [
        str(path.relative_to(REPO_ROOT))
        for path in modules.values()
        if "mahalanobis" in path.read_text(encoding="utf-8").lower()
        and str(path.relative_to(REPO_ROOT)) not in allowed
    ]
    assert hits == []


@pytest.mark.slow
def test_the_wheel_holds_the_product_and_no_study_or_benchmark(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "-q", "-w", str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = tmp_path.glob("soundsentry-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert not [n for n in names if n.startswith(("studies/", "benchmarks/", "tests/"))]
    # gui/benchmark.py and gui/screenshots.py leave the package with the GUI split (issue 13 item 6).
    # Every module of the product is in it (a subpackage missing from pyproject would be left out silently).
    for name in _modules():
        path = name.replace(".", "/")
        assert f"{path}.py" in names or f"{path}/__init__.py" in names, name
    assert "soundsentry/models/fan/model.json" in names
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[soundsentry.commands]" in text and "soundsentry.train.cli" in text
