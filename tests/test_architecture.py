"""The package's shape: an acyclic import graph, streamlit only in tfcnn.ui, a core that
imports neither the CLI nor the app, no private cross-module imports, small modules."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "tfcnn"
#: Lines above which a module must say at its top why it is that long.
MAX_LINES = 600


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path, name: str) -> list[tuple[str, list[str]]]:
    """``(module, names)`` of every import in ``path``, relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            out.append((base, [alias.name for alias in node.names]))
    return out


def internal_graph() -> dict[str, set[str]]:
    """Module -> the tfcnn modules it imports (``from tfcnn import x`` counts as tfcnn.x)."""
    known = modules()
    graph = {}
    for name, path in known.items():
        edges = set()
        for module, names in imports(path, name):
            if not module.startswith("tfcnn"):
                continue
            for target in [f"{module}.{n}" for n in names] + [module]:
                if target in known and target != name:
                    edges.add(target)
                    break
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (a list of modules, first == last), or None."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_import_graph_is_acyclic():
    graph = internal_graph()
    assert "tfcnn.train" in graph and "tfcnn.parallel" in graph["tfcnn.train"]
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_only_the_ui_package_imports_streamlit():
    offenders = [name for name, path in modules().items()
                 if not name.startswith("tfcnn.ui")
                 and any(m.split(".")[0] == "streamlit" for m, _ in imports(path, name))]
    assert offenders == []
    ui = [name for name, path in modules().items() if name.startswith("tfcnn.ui.")
          and any(m.split(".")[0] == "streamlit" for m, _ in imports(path, name))]
    assert "tfcnn.ui.sidebar" in ui  # the check sees streamlit imports where they are


def test_the_core_never_imports_the_cli_or_the_app():
    """Data flows one way: the CLI (tfcnn.commands, tfcnn.__main__) and the app (tfcnn.ui)
    wire the core together; the core imports neither."""
    front = ("tfcnn.commands", "tfcnn.ui", "tfcnn.__main__")
    offenders = [f"{name} -> {target}" for name, targets in internal_graph().items()
                 if not name.startswith(front) for target in targets
                 if target.startswith(front)]
    assert offenders == []


#: The pipeline's stages (decode, front end, patches, model pass): only the core runs them.
STAGES = {"load_audio", "iter_audio", "log_mel", "log_mel_stream", "to_patches",
          "song_probabilities", "predict_features", "predict"}


def test_the_app_runs_no_pipeline_stage_itself():
    """Pages and tfcnn.ui call the core's prediction (tfcnn.assessment.classify) and
    readers; none imports a decoding, front-end or model stage to run it."""
    sources = {**{n: p for n, p in modules().items() if n.startswith("tfcnn.ui")},
               **{f"pages.{p.stem}": p for p in sorted((REPO / "pages").glob("*.py"))}}
    known = modules()
    offenders = [f"{name}: from {module} import {n}" for name, path in sources.items()
                 for module, names in imports(path, name) if module.startswith("tfcnn")
                 for n in names if n in STAGES and f"{module}.{n}" not in known]
    assert offenders == []


def test_no_private_names_imported_across_modules():
    sources = {**modules(), "app": REPO / "app.py",
               **{f"{p.parent.name}.{p.stem}": p for folder in ("bench", "scripts", "pages")
                  for p in sorted((REPO / folder).glob("*.py"))}}
    offenders = [f"{name}: from {module} import {n}" for name, path in sources.items()
                 for module, names in imports(path, name) if module.startswith("tfcnn")
                 for n in names if n.startswith("_") and not n.startswith("__")]
    assert offenders == []


def test_long_modules_say_why():
    long = []
    for name, path in modules().items():
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > MAX_LINES:
            docstring = ast.get_docstring(ast.parse(text)) or ""
            if "Longer than" not in docstring:
                long.append(f"{name} ({text.count(chr(10))} lines)")
    assert long == []


def test_cli_parser_loads_no_torch():
    """The commands keep torch off `python -m tfcnn --help` (their one lazy import)."""
    code = ("import sys; from tfcnn.__main__ import build_parser; build_parser(); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_every_slow_test_named_in_conftest_exists():
    """The `slow` tier names real tests: a rename would otherwise move one into `make test-fast`
    silently."""
    from conftest import SLOW_MODULES, SLOW_TESTS

    missing = [m for m in SLOW_MODULES if not (REPO / "tests" / f"{m}.py").is_file()]
    for module, names in SLOW_TESTS.items():
        tree = ast.parse((REPO / "tests" / f"{module}.py").read_text(encoding="utf-8"))
        defined = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
        missing += [f"{module}::{name}" for name in sorted(names - defined)]
    assert missing == []
