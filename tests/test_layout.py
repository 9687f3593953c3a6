"""The package's shape: stages import only earlier stages, `import slimformer` and the lean
predictor stay light, modules stay small, and the command and recipes answer --help."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO

PACKAGE = REPO / "src" / "slimformer"
# The stages in the order data flows; top-level modules (errors, files, ...) serve them all.
STAGES = ("data", "models", "serving", "training", "compression", "evaluation", "hub",
          "optimize", "cli")
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def stage_of(module: str) -> int:
    parts = module.split(".")
    if len(parts) < 3 or parts[1] not in STAGES:
        return 0  # slimformer itself and its top-level helper modules
    return 1 + STAGES.index(parts[1])


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every slimformer module this file imports, at the top or inside a function."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            found += [(node.lineno, n) for n in names if n.startswith("slimformer.")]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names
                      if a.name.startswith("slimformer.")]
    return found


def test_a_stage_never_imports_a_later_one():
    modules = list(PACKAGE.rglob("*.py"))
    assert len(modules) > 30
    wrong = []
    for path in modules:
        here = module_name(path)
        for line, other in imported_modules(path):
            if stage_of(other) > stage_of(here):
                wrong.append(f"{path.relative_to(REPO)}:{line} imports {other}")
    assert not wrong, "\n".join(wrong)


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The graph's cycles: each strongly connected component of more than one module, and
    every module that imports itself (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
            if len(component) > 1 or node in graph.get(node, ()):
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_no_module_imports_itself_back_through_a_cycle():
    """Imports inside functions count: a lazy import is still a dependency (one inside a stage
    included)."""
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {name: {other for _, other in imported_modules(path)
                    if other in paths and other != name}
             for name, path in paths.items()}
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert not import_cycles(graph), import_cycles(graph)


def test_helper_modules_import_no_stage():
    for name in ("errors", "files", "checks", "provenance", "urls"):
        for _, other in imported_modules(PACKAGE / f"{name}.py"):
            assert stage_of(other) == 0, f"{name} imports {other}"


def test_import_slimformer_and_the_lean_predictor_stay_light():
    code = ("import sys, json, slimformer, slimformer.serving.lean, slimformer.cli.main\n"
            "print(json.dumps([m for m in ('torch', 'transformers', 'optimum', 'datasets')"
            " if m in sys.modules]))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=ENV, check=True)
    assert json.loads(result.stdout) == []


def test_public_api_is_lazy_and_complete():
    import slimformer

    for name in slimformer.__all__:
        assert getattr(slimformer, name) is not None, name
    with pytest.raises(AttributeError):
        slimformer.no_such_thing  # noqa: B018


def test_no_module_is_long():
    long = {str(p.relative_to(REPO)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 300}
    assert not long, long


def run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(command), capture_output=True, text=True, env=ENV, cwd=REPO,
                          timeout=300)


def test_slimformer_help_lists_every_step_without_importing_it():
    from slimformer.cli.main import COMMANDS

    code = ("import sys\nfrom slimformer.cli.main import main\nmain(['--help'])\n"
            "print('heavy' if {'torch', 'transformers'} & set(sys.modules) else 'light')")
    result = run(sys.executable, "-c", code)
    assert result.returncode == 0 and result.stdout.strip().endswith("light")
    for step in COMMANDS:
        assert f"  {step} " in result.stdout
    script = shutil.which("slimformer")
    if script is None:
        pytest.skip("the console script is not installed (pip install -e .)")
    result = run(script, "--help")
    assert result.returncode == 0 and "benchmark" in result.stdout
    result = run(script, "nope")
    assert result.returncode == 2 and result.stderr.startswith("error: unknown step 'nope'")


def test_every_recipe_answers_help_through_its_step():
    from slimformer.cli.main import COMMANDS

    recipes = sorted((REPO / "recipes").glob("*.py"))
    assert sorted(r.stem.replace("_", "-") for r in recipes) == sorted(COMMANDS)
    # Each script runs as __main__ with --help and hands it to `slimformer STEP`; one
    # interpreter runs them all, so transformers is imported once, not once per recipe.
    code = """
import contextlib, io, json, runpy, sys
results = {}
for path in sys.argv[1:]:
    sys.argv = [path, "--help"]
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            runpy.run_path(path, run_name="__main__")
        code = None
    except SystemExit as exit:
        code = exit.code
    results[path] = [code, out.getvalue()]
print(json.dumps(results))
"""
    result = run(sys.executable, "-c", code, *map(str, recipes))
    assert result.returncode == 0, result.stderr[-2000:]
    results = json.loads(result.stdout.splitlines()[-1])
    assert len(results) == len(recipes)
    for path, (code, out) in results.items():
        assert code in (0, None), (path, code)
        assert "usage" in out and "--config FILE.yaml" in out, path
