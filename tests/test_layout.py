# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Checks on the shape of the package, read from the source with `ast` (nothing of `trl_icrm` is imported).

- Every function or method fits on one screen: at most `MAX_FUNCTION_LINES` lines, from its `def` line to the last
  line of its body, docstring included.
- Every function of the library has at most `MAX_FUNCTION_CODE_LINES` lines of code (not blank, comment or
  docstring).
- Layering: the library never imports the experiments, the commands (`trl_icrm.scripts`) or the CLI; an experiment
  never imports another experiment; only the commands and the CLI exit the process (`raise SystemExit`); no import
  loop among the package's modules, counting imports inside functions too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest


PACKAGE = "trl_icrm"
PACKAGE_DIR = Path(__file__).resolve().parent.parent / PACKAGE
MAX_FUNCTION_LINES = 80
MAX_FUNCTION_CODE_LINES = 60

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


def _docstring_lines(node: ast.AST) -> set[int]:
    """The lines of the docstrings of `node` and of every function and class inside it."""
    lines = set()
    for inner in ast.walk(node):
        if isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)) and inner.body:
            first = inner.body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                lines.update(range(first.lineno, first.end_lineno + 1))
    return lines


def _code_lines(node: ast.FunctionDef | ast.AsyncFunctionDef, source_lines: list[str]) -> int:
    """Lines of code of a function, `def` line included: not blank, not only a comment, not in a docstring."""
    docstrings = _docstring_lines(node)
    return sum(
        1
        for number in range(node.lineno, node.end_lineno + 1)
        if number not in docstrings
        and source_lines[number - 1].strip()
        and not source_lines[number - 1].lstrip().startswith("#")
    )


def test_functions_have_at_most_60_lines_of_code():
    long_functions = [
        f"{_relative(module)}:{node.lineno} {name} ({count} lines of code)"
        for module, tree in TREES.items()
        for name, node in _functions(tree)
        if (count := _code_lines(node, SOURCES[module].splitlines())) > MAX_FUNCTION_CODE_LINES
    ]
    assert not long_functions, (
        f"Functions with more than {MAX_FUNCTION_CODE_LINES} lines of code; split them into named steps:\n"
        + "\n".join(long_functions)
    )


def test_code_lines_skip_blanks_comments_and_docstrings():
    source = 'def f(x):\n    """Doc.\n\n    More."""\n    # a comment\n\n    y = x  # kept\n    return y\n'
    [(_, node)] = list(_functions(ast.parse(source)))
    assert _code_lines(node, source.splitlines()) == 3


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


def _import_graph() -> dict[str, set[str]]:
    """Module -> the `trl_icrm` modules it imports, at module level or inside functions. A package's `__init__` does
    not count as importing its own submodules (importing a submodule runs the package first anyway)."""
    return {
        module: {
            target
            for target, _, _ in imports
            if target in MODULES and target != module and not _is_within(target, module)
        }
        for module, imports in IMPORTS.items()
    }


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative): the import loops."""
    index, lowlink, on_stack, stack, components, counter = {}, {}, set(), [], [], [0]

    def visit(root: str) -> None:
        work = [(root, iter(sorted(graph[root])))]
        index[root] = lowlink[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    lowlink[work[-1][0]] = min(lowlink[work[-1][0]], lowlink[node])
                if lowlink[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(sorted(component))
            elif child not in index:
                index[child] = lowlink[child] = counter[0]
                counter[0] += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                lowlink[node] = min(lowlink[node], index[child])

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(components)


KNOWN_IMPORT_LOOPS: list[list[str]] = []
"""Import loops still to remove (none; the test fails while an entry is stale)."""


def test_no_import_loop():
    """No group of modules imports itself round, directly or through others, at module level or inside functions
    (besides `KNOWN_IMPORT_LOOPS`, which must stay exact)."""
    loops = _strongly_connected(_import_graph())
    described = [
        " <-> ".join(_relative(m) for m in loop)
        + ": "
        + "; ".join(
            sorted(
                {
                    _describe(m, t, line, src.splitlines()[0])
                    for m in loop
                    for t, line, src in IMPORTS[m]
                    if t in loop and t != m
                }
            )
        )
        for loop in loops
        if loop not in KNOWN_IMPORT_LOOPS
    ]
    assert not described, "Import loops:\n" + "\n".join(described)
    stale = [loop for loop in KNOWN_IMPORT_LOOPS if loop not in loops]
    assert not stale, f"No longer import loops; remove them from KNOWN_IMPORT_LOOPS: {stale}"


def test_import_loops_are_found():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _strongly_connected(graph) == [["a", "b", "c"]]


def test_relative_imports_resolve_against_the_package():
    module = f"{PACKAGE}.experiments.steerability"
    if module not in MODULES:
        pytest.skip(f"{module} is gone")
    tree = ast.parse("from ..data import loading\nfrom . import steerability_report\nfrom .. import cli\n")
    resolved = [_resolve_from(module, node) for node in tree.body]
    assert resolved == [f"{PACKAGE}.data", EXPERIMENTS, PACKAGE]
