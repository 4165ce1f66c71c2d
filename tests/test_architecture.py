"""The package's shape, checked by machine: no import cycle (imports inside functions counted, those only for type
checkers not), no module over 450 lines, no function over 80, no folder of more than 12 modules, and the
dependency rule: the references import only the vocabulary, never the harness."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "lstm_compare"
MAX_MODULE_LINES, MAX_FUNCTION_LINES, MAX_MODULES_PER_FOLDER = 450, 80, 12


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def runtime_imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The project's modules that ``name`` imports when it runs: at the top, in functions, anywhere but under
    ``if TYPE_CHECKING:``; ``from package import module`` counts as importing that module."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if _type_checking_only(node):
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return {module for module in found if module in known and module != name}


def import_graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    graph = {name: runtime_imports(name, path, known) for name, path in found.items()}
    # importing a.b.c runs a/__init__ and a/b/__init__ first
    for name in graph:
        graph[name] |= {parent for parent in _parents(name) if parent in known and parent != name}
        graph[name] = {target for target in graph[name] if target not in _parents(name)}
    return graph


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
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
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def test_no_import_cycle_counting_imports_inside_functions():
    assert cycles(import_graph()) == []


def test_the_references_import_only_the_vocabulary_and_themselves():
    graph = import_graph()
    allowed = ("lstm_compare.references", "lstm_compare.lstm")
    wrong = {name: sorted(t for t in targets if not t.startswith(allowed) and t != "lstm_compare")
             for name, targets in graph.items() if name.startswith("lstm_compare.references")}
    assert {name: targets for name, targets in wrong.items() if targets} == {}


def test_the_sample_under_test_needs_only_numpy_and_the_harness_never_imports_it():
    graph = import_graph()
    assert {name for name, targets in graph.items() if name.startswith("lstm_compare.handrolled")
            and any(not t.startswith("lstm_compare.handrolled") for t in targets)} == set()
    users = {name for name, targets in graph.items() if not name.startswith(("lstm_compare.handrolled",
             "lstm_compare.catalogs")) and any(t.startswith("lstm_compare.handrolled") for t in targets)}
    assert users == set()


def test_no_module_over_450_lines():
    long = {name: n for name, path in modules().items() if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES}
    assert long == {}


def test_no_function_over_80_lines():
    long = {}
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if n > MAX_FUNCTION_LINES:
                    long[f"{name}.{node.name}"] = n
    assert long == {}


def test_no_folder_holds_more_than_12_modules():
    crowded = {str(folder.relative_to(ROOT)): n for folder in [PACKAGE, *PACKAGE.rglob("*/")]
               if folder.is_dir() and (n := len(list(folder.glob("*.py")))) > MAX_MODULES_PER_FOLDER}
    assert crowded == {}
