# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Checks on the shape of the package, read from the source with `ast` (nothing of `trl_icrm` is imported).

- Every function or method fits on one screen: at most `MAX_FUNCTION_LINES` lines, from its `def` line to the last
  line of its body, docstring included.
- Layering: the library never imports the experiments, the commands (`trl_icrm.scripts`) or the CLI; an experiment
  never imports another experiment; only the commands and the CLI exit the process (`raise SystemExit`).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest


PACKAGE = "trl_icrm"
PACKAGE_DIR = Path(__file__).resolve().parent.parent / PACKAGE
MAX_FUNCTION_LINES = 80

EXPERIMENTS = f"{PACKAGE}.experiments"
SCRIPTS = f"{PACKAGE}.scripts"
CLI = f"{PACKAGE}.cli"
# (importer, imported) pairs of experiment modules that belong to the same experiment.
SAME_EXPERIMENT = {(f"{EXPERIMENTS}.steerability", f"{EXPERIMENTS}.steerability_report")}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULE_PATHS = sorted(PACKAGE_DIR.rglob("*.py"))
MODULES = {_module_name(path): path for path in MODULE_PATHS}
SOURCES = {name: path.read_text(encoding="utf-8") for name, path in MODULES.items()}
TREES = {name: ast.parse(SOURCES[name], filename=str(MODULES[name])) for name in MODULES}


def _relative(name: str) -> str:
    return str(MODULES[name].relative_to(PACKAGE_DIR.parent))


def _is_within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


# ---------------------------------------------------------------------------------------------------------------------
# Function length
# ---------------------------------------------------------------------------------------------------------------------


def _functions(tree: ast.AST, prefix: str = ""):
    """Yields `(qualified name, node)` for every function and method, nested ones included."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield prefix + node.name, node
            yield from _functions(node, f"{prefix}{node.name}.")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node, f"{prefix}{node.name}.")
        else:
            yield from _functions(node, prefix)


def _function_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines from the `def` line (not the decorators) to the last line of the body."""
    return node.end_lineno - node.lineno + 1


def test_functions_fit_on_one_screen():
    long_functions = [
        f"{_relative(module)}:{node.lineno} {name} ({_function_lines(node)} lines)"
        for module, tree in TREES.items()
        for name, node in _functions(tree)
        if _function_lines(node) > MAX_FUNCTION_LINES
    ]
    assert not long_functions, (
        f"Functions longer than {MAX_FUNCTION_LINES} lines; split them into named steps:\n" + "\n".join(long_functions)
    )


def test_function_length_counts_from_def_to_end_of_body():
    tree = ast.parse(
        '@decorator\ndef f(x):\n    """Doc."""\n\n    return x\n\n\nclass A:\n    def g(self):\n        pass\n'
    )
    assert [(name, _function_lines(node)) for name, node in _functions(tree)] == [("f", 4), ("A.g", 2)]


# ---------------------------------------------------------------------------------------------------------------------
# Layering
# ---------------------------------------------------------------------------------------------------------------------


def _resolve_from(module: str, node: ast.ImportFrom) -> str:
    """The absolute module of `from ... import ...`, relative levels resolved against `module`'s package."""
    if node.level == 0:
        return node.module or ""
    is_package = MODULES[module].name == "__init__.py"
    package = module.split(".") if is_package else module.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str) -> list[tuple[str, int, str]]:
    """`(imported module, line, source text)` of every import of a `trl_icrm` module by `module`, at any depth.

    `from package import name` counts as importing `package.name` when that is a module, else `package`. A string
    constant that is exactly the name of a `trl_icrm` module (a lazy import table, `importlib.import_module(...)`)
    counts as an import of it too.
    """
    found = []
    for node in ast.walk(TREES[module]):
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve_from(module, node)
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in MODULES:
            targets = [node.value]
        source = ast.get_source_segment(SOURCES[module], node) if targets else ""
        found += [(target, node.lineno, source) for target in targets if _is_within(target, PACKAGE)]
    return found


IMPORTS = {module: _imports(module) for module in MODULES}


def _describe(module: str, target: str, line: int, source: str) -> str:
    return f"{_relative(module)}:{line} imports {target} ({source!r})"


def _is_application(module: str) -> bool:
    """The experiments, the commands and the CLI: the code built on top of the library."""
    return _is_within(module, EXPERIMENTS) or _is_within(module, SCRIPTS) or module == CLI


def test_the_library_never_imports_applications():
    """No module outside `trl_icrm/experiments/`, `trl_icrm/scripts/` and `trl_icrm/cli.py` imports those two packages."""
    violations = [
        _describe(module, target, line, source)
        for module, imports in IMPORTS.items()
        if not _is_application(module)
        for target, line, source in imports
        if _is_within(target, EXPERIMENTS) or _is_within(target, SCRIPTS)
    ]
    assert not violations, "Library modules must not import trl_icrm.experiments or trl_icrm.scripts:\n" + "\n".join(
        violations
    )


def test_no_module_imports_the_cli():
    violations = [
        _describe(module, target, line, source)
        for module, imports in IMPORTS.items()
        for target, line, source in imports
        if _is_within(target, CLI)
    ]
    assert not violations, "No module may import trl_icrm.cli (it is the entry point):\n" + "\n".join(violations)


def _experiment_of(module: str) -> str | None:
    """`trl_icrm.experiments.<name>` of a module inside an experiment, else None (the package itself included)."""
    if not module.startswith(EXPERIMENTS + "."):
        return None
    return ".".join(module.split(".")[:3])


def test_studies_stay_independent():
    """A module of `trl_icrm/experiments/` never imports another experiment, only its own (`SAME_EXPERIMENT`)."""
    violations = []
    for module, imports in IMPORTS.items():
        if not _is_within(module, EXPERIMENTS):
            continue
        for target, line, source in imports:
            experiment = _experiment_of(target)
            own = _experiment_of(module)
            if experiment is None or experiment == own or (own, experiment) in SAME_EXPERIMENT:
                continue
            violations.append(_describe(module, target, line, source))
    assert not violations, "An experiment must not import another experiment:\n" + "\n".join(violations)


def _raises_system_exit(node: ast.AST) -> bool:
    if not isinstance(node, ast.Raise) or node.exc is None:
        return False
    exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
    return (isinstance(exc, ast.Name) and exc.id == "SystemExit") or (
        isinstance(exc, ast.Attribute) and exc.attr == "SystemExit"
    )


def test_only_commands_and_the_cli_raise_system_exit():
    violations = [
        f"{_relative(module)}:{node.lineno} raises SystemExit"
        for module, tree in TREES.items()
        if not (_is_within(module, SCRIPTS) or module == CLI)
        for node in ast.walk(tree)
        if _raises_system_exit(node)
    ]
    assert not violations, (
        "Only trl_icrm/scripts/ and trl_icrm/cli.py may raise SystemExit; raise an exception the command turns into "
        "an exit instead:\n" + "\n".join(violations)
    )


def test_relative_imports_resolve_against_the_package():
    module = f"{PACKAGE}.experiments.steerability"
    if module not in MODULES:
        pytest.skip(f"{module} is gone")
    tree = ast.parse("from ..data import loading\nfrom . import steerability_report\nfrom .. import cli\n")
    resolved = [_resolve_from(module, node) for node in tree.body]
    assert resolved == [f"{PACKAGE}.data", EXPERIMENTS, PACKAGE]
