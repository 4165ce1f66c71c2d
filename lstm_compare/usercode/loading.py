"""Load a file whose module-level code fails (a training script ending in a failing ``assert``, an import of a
notebook helper that is not there): run its definitions only, as a person reading it would.

Kept, each run on its own so that one failing import does not stop the rest: imports, ``def`` and ``class``
statements, and assignments that call nothing (constants such as ``CACHE_FIELDS``, lambdas).  Everything else
(training loops, prints, checks, ``if __name__ == "__main__":``) is left out.
"""

import ast
import importlib.util
import sys
import types
from os import PathLike
from pathlib import Path


DEFINITIONS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _calls_nothing(node: ast.AST) -> bool:
    """True when evaluating ``node`` calls no function (a lambda's body runs only when it is called)."""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, ast.Call):
            return False
        if not isinstance(current, ast.Lambda):
            stack.extend(ast.iter_child_nodes(current))
    return True


ALWAYS_KEPT = {"LSTM_COMPARE", "CACHE_FIELDS"}  # what the harness reads, whatever their right-hand side calls


def _assigned(node: ast.Assign | ast.AnnAssign) -> set[str]:
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    return {t.id for t in targets if isinstance(t, ast.Name)}


def is_definition(node: ast.AST) -> bool:
    if isinstance(node, DEFINITIONS):
        return True
    if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
        return _calls_nothing(node.value) or bool(_assigned(node) & ALWAYS_KEPT)
    if isinstance(node, ast.Try):  # try: import a / except ImportError: import b
        inner = node.body + [s for h in node.handlers for s in h.body] + node.orelse + node.finalbody
        return all(is_definition(s) or isinstance(s, ast.Pass) for s in inner)
    return False


def _run(node: ast.stmt, path: Path, module: types.ModuleType) -> bool:
    """Run one top-level statement in ``module``; False when it raises (a missing optional import, say)."""
    code = compile(ast.Module(body=[node], type_ignores=[]), str(path), "exec")
    try:
        exec(code, module.__dict__)  # noqa: S102 - the user's own definitions, as importing would run them
    except Exception:  # noqa: BLE001 - the rest may still be usable
        return False
    return True


def import_definitions(path: str | PathLike[str]) -> tuple[types.ModuleType, list[str]] | None:
    """(module, names of the definitions that failed) with only ``path``'s definitions run; None when the file
    cannot be read or parsed (then there is nothing better to offer than the original error)."""
    path = Path(path)
    try:
        tree = ast.parse(path.read_text(), filename=str(path))
    except (OSError, SyntaxError, ValueError):
        return None
    name = f"lstm_compare_definitions_{abs(hash(str(path.resolve())))}"
    module = types.ModuleType(name)
    module.__file__ = str(path)
    module.__spec__ = importlib.util.spec_from_file_location(name, path)
    failed = []
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)  # its sibling modules import, as they would for `python my_lstm.py`
    sys.modules[name] = module
    try:
        for node in tree.body:
            if is_definition(node) and not _run(node, path, module):
                failed.append(f"line {node.lineno}")
    finally:
        sys.path.remove(folder)
    return module, failed
