"""The package stays layered: every import goes down, nobody reads another module's privates.

``LAYERS`` is the contract, top to bottom: a module of ``bayes_prsn/`` may
import only modules of lower layers (``models`` is ``bayes_prsn.models``, the
``models/`` folder). A new module must be placed in it. The import graph is
read from the source (``ast``), so the check costs milliseconds. ruff's
``TID251``/``TID252`` rules (``pyproject.toml``) keep ``models/`` free of
``bayes_prsn`` and ``numpyro.infer``; ``test_ruff_keeps_models_apart`` runs
them here too.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

LAYERS = [
    ["__main__"],
    ["cli"],
    ["__init__"],
    ["estimator"],
    ["uncertainty", "persistence", "report", "averaging"],
    ["sampling", "smoothing", "analysis", "plots", "pooling"],
    ["shared_posterior"],
    ["fitting", "posterior", "evidence", "problem", "inference_data", "figures", "repeats"],
    ["inputs", "svi", "diagnostics", "arviz_compat", "state"],
    ["predict", "minibatch", "scaling", "population", "association"],
    [
        "preprocessing",
        "adam",
        "exceptions",
        "simulate",
        "version",
        "defaults",
        "sample_inputs",
        "parallel",
    ],
    ["models"],
]
#: Underscore names that are public API of the standard library's NamedTuple.
NAMEDTUPLE_API = {"_replace", "_asdict", "_fields", "_make"}


def _imports(tree: ast.Module, modules: set) -> list[tuple[str, list[str], int]]:
    """(module imported, names taken, line) for every relative import of a package module."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            names = [alias.name for alias in node.names]
            if node.module:
                found.append((node.module.split(".")[0], names, node.lineno))
            else:
                for name in names:
                    found.append((name if name in modules else "__init__", [name], node.lineno))
    return found


def _own_names(tree: ast.Module) -> set:
    """Names defined in a module: its functions, classes, methods and assignments."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
    return names


def layer_violations(package: Path, layers: list[list[str]]) -> list[str]:
    """Every breach of the layer contract in ``package`` (a folder of modules)."""
    rank = {name: depth for depth, group in enumerate(layers) for name in group}
    files = {path.stem: path for path in sorted(package.glob("*.py"))}
    problems = [f"{name}.py is in no layer of LAYERS" for name in files if name not in rank]
    for name, path in files.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        own = _own_names(tree)
        for target, names, line in _imports(tree, set(files) | {"models"}):
            where = f"{name}.py:{line}"
            if target in rank and name in rank and rank[target] <= rank[name]:
                problems.append(f"{where} imports {target}, which is not in a lower layer")
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private:
                problems.append(f"{where} takes private name(s) {private} from {target}")
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute):
                continue
            attr = node.attr
            if not attr.startswith("_") or attr.startswith("__") or attr in NAMEDTUPLE_API:
                continue
            base = node.value
            if isinstance(base, ast.Name) and base.id in ("self", "cls"):
                continue
            if attr in own:
                continue
            problems.append(f"{name}.py:{node.lineno} reads another module's private .{attr}")
    return problems


def _cycles(package: Path) -> list[list[str]]:
    files = {path.stem: path for path in package.glob("*.py")}
    graph = {
        name: {t for t, _, _ in _imports(ast.parse(path.read_text()), set(files))} & set(files)
        for name, path in files.items()
    }
    cycles, state = [], {}

    def visit(node, trail):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(trail[trail.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return cycles


def test_bayes_prsn_imports_only_downwards_and_no_privates():
    assert layer_violations(ROOT / "bayes_prsn", LAYERS) == []


def test_the_import_graph_has_no_circle():
    assert _cycles(ROOT / "bayes_prsn") == []


def test_models_import_nothing_of_the_package():
    for path in (ROOT / "models").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                assert node.level <= 1, f"{path.name}:{node.lineno} imports from a parent"
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert not name.startswith(("bayes_prsn", "numpyro.infer")), (
                    f"{path.name}:{node.lineno} imports {name}"
                )


def test_ruff_keeps_models_apart():
    pytest.importorskip("ruff")
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--select", "TID", "models", "bayes_prsn"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_check_fails_on_a_violation(tmp_path):
    # A model that imports the package, a low module that imports a high one,
    # a private name taken and a private attribute read.
    (tmp_path / "low.py").write_text("from .high import run, _helper\n")
    (tmp_path / "high.py").write_text(
        "from . import low\n\n\ndef run(x):\n    return low._secret(x)\n"
    )
    (tmp_path / "stray.py").write_text("x = 1\n")
    problems = layer_violations(tmp_path, [["high"], ["low"]])
    assert any("low.py:1 imports high, which is not in a lower layer" in p for p in problems)
    assert any("takes private name(s) ['_helper']" in p for p in problems)
    assert any("high.py:5 reads another module's private ._secret" in p for p in problems)
    assert "stray.py is in no layer of LAYERS" in problems
    assert _cycles(tmp_path) == [["high", "low", "high"]]


#: Size limits of issue 14: a module a newcomer can read, a function that fits a screen.
MODULE_LINES, ESTIMATOR_LINES, FUNCTION_LINES = 700, 600, 80


def _code_lines(source: list[str], node) -> int:
    """Lines of a function's body, without its docstring, comments and blank lines."""
    body = node.body
    skip = set()
    first = body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
        if isinstance(first.value.value, str):
            skip = set(range(first.lineno, first.end_lineno + 1))
    return sum(
        1
        for number in range(first.lineno, node.end_lineno + 1)
        if number not in skip
        and source[number - 1].strip()
        and not source[number - 1].strip().startswith("#")
    )


def test_modules_and_functions_stay_readable():
    long = []
    for path in sorted((ROOT / "bayes_prsn").glob("*.py")) + sorted((ROOT / "models").glob("*.py")):
        source = path.read_text().splitlines()
        limit = ESTIMATOR_LINES if path.name == "estimator.py" else MODULE_LINES
        if len(source) > limit:
            long.append(f"{path.name}: {len(source)} lines > {limit}")
        for node in ast.walk(ast.parse("\n".join(source))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                size = _code_lines(source, node)
                if size > FUNCTION_LINES:
                    long.append(f"{path.name}: {node.name} has {size} lines of code")
    assert long == []
