"""The layout's rules that no linter checks: only neurflow.graph holds Cypher, and only in .cypher files.

The rule for Cypher in Python: a string that is a statement of its own (a docstring, or any bare string) is
prose and may show Cypher as an example; every other string constant (assigned, passed, returned, the parts of
an f-string) is code and must not hold Cypher. Cypher is recognised by its clauses in capitals, as the
package writes them (``MATCH (``, ``MERGE (``, ``UNWIND $xs AS``, ``DETACH DELETE``, ``RETURN x``, ...),
and by relationship patterns such as ``)-[:FLOWS_TO]->(``.

The import rules between packages are import-linter contracts in pyproject.toml (``lint-imports``).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [ROOT / "neurflow", ROOT / "ingest", ROOT / "queries"]
CYPHER_DIR = ROOT / "neurflow" / "graph" / "cypher"
# Calls whose first argument names a file of CYPHER_DIR (neurflow/graph/statements.py).
STATEMENT_LOADERS = {"statement", "with_label"}
MAX_MODULE_LINES = 450

CYPHER = re.compile(
    r"\b(?:OPTIONAL\s+)?MATCH\s*\("
    r"|\bMERGE\s*\("
    r"|\bCREATE\s*\("
    r"|\b(?:CREATE|DROP)\s+(?:CONSTRAINT|INDEX|RANGE\s+INDEX|TEXT\s+INDEX|FULLTEXT\s+INDEX|VECTOR\s+INDEX)\b"
    r"|\bSHOW\s+(?:INDEXES|CONSTRAINTS|DATABASES?)\b"
    r"|\bUNWIND\s+\S+\s+AS\b"
    r"|\bDETACH\s+DELETE\b"
    r"|\bCALL\s*\{"
    r"|\bRETURN\s+[\w$*(]"
    r"|\)\s*<?-\[[^\]]*\]->?\s*\("
)


def python_files() -> list[Path]:
    return sorted(p for root in SOURCES for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def prose_strings(tree: ast.AST) -> set[int]:
    """ids of the string constants that are statements of their own: docstrings and other bare strings."""
    return {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    }


def code_strings(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every string constant of ``path`` that is code, not prose."""
    tree = ast.parse(path.read_text(), filename=str(path))
    prose = prose_strings(tree)
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in prose
    ]


def statement_calls(path: Path) -> list[tuple[int, ast.expr | None]]:
    """(line, first argument) of every call of a statement loader in ``path``."""
    calls = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name in STATEMENT_LOADERS:
            calls.append((node.lineno, node.args[0] if node.args else None))
    return calls


def test_the_cypher_rule_recognises_cypher_and_not_prose() -> None:
    for cypher in (
        "MATCH (c:Circuit {id: $id}) RETURN c", "UNWIND $rows AS row MERGE (n:Neuron {id: row.id})",
        "MATCH (n) DETACH DELETE n", "(a)-[:FLOWS_TO]->(b)", "CREATE CONSTRAINT circuit_id IF NOT EXISTS",
        "CALL { WITH x RETURN x }", "SHOW INDEXES",
    ):
        assert CYPHER.search(cypher), cypher
    for prose in ("no circuit matches (class 'Samoyed')", "create the folder (or pass --out)", "RETURN",
                  "Return the newest circuit", "the return value", "merge (a) and (b)"):
        assert not CYPHER.search(prose), prose


def test_only_cypher_files_hold_cypher() -> None:
    """Cypher lives in neurflow/graph/cypher/*/*.cypher (and queries/*.cypher), never in a Python string."""
    found = [
        f"{relative(path)}:{line}: {text.strip().splitlines()[0][:80]!r}"
        for path in python_files()
        for line, text in code_strings(path)
        if CYPHER.search(text)
    ]
    move = "move it to neurflow/graph/cypher/<dir>/<name>.cypher"
    assert not found, f"Cypher in Python strings ({move}):\n" + "\n".join(found)


def test_only_the_graph_package_loads_statements() -> None:
    graph = ROOT / "neurflow" / "graph"
    outside = [
        f"{relative(path)}:{line}"
        for path in python_files()
        if graph not in path.parents
        for line, _ in statement_calls(path)
    ]
    assert not outside, "statement()/with_label() outside neurflow.graph:\n" + "\n".join(outside)


def test_every_statement_name_is_a_cypher_file_and_every_file_is_used() -> None:
    """Names are literal strings, so that this test (and a reader) can find their files."""
    used: set[str] = set()
    problems = []
    for path in python_files():
        for line, argument in statement_calls(path):
            if path.name == "statements.py" and path.parent.name == "graph":
                continue  # the loaders themselves pass their `name` argument on
            if not (isinstance(argument, ast.Constant) and isinstance(argument.value, str)):
                problems.append(f"{relative(path)}:{line}: the statement's name is not a literal string")
                continue
            used.add(argument.value)
            if not (CYPHER_DIR / f"{argument.value}.cypher").is_file():
                problems.append(f"{relative(path)}:{line}: no file cypher/{argument.value}.cypher")
    files = {str(p.relative_to(CYPHER_DIR).with_suffix("")) for p in CYPHER_DIR.glob("*/*.cypher")}
    problems += [f"cypher/{name}.cypher is used by no statement() call" for name in sorted(files - used)]
    assert not problems, "\n".join(problems)


def test_cypher_files_sit_one_folder_deep() -> None:
    """The package data pattern (pyproject.toml) ships cypher/*/*.cypher: other places would not ship."""
    stray = [relative(p) for p in CYPHER_DIR.rglob("*.cypher") if len(p.relative_to(CYPHER_DIR).parts) != 2]
    assert not stray, stray


def test_modules_stay_small() -> None:
    sizes = sorted(((len(p.read_text().splitlines()), relative(p)) for p in python_files()), reverse=True)
    over = [f"{name}: {lines} lines" for lines, name in sizes if lines > MAX_MODULE_LINES]
    assert not over, f"modules over {MAX_MODULE_LINES} lines (split them by job):\n" + "\n".join(over)
