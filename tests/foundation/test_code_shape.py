"""Modules read top to bottom in short pieces: no class over 250 lines and no function over
60 in castline's source, unless its first lines say why (`# Long on purpose: ...`)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "castline"
MAX_CLASS, MAX_FUNCTION = 250, 60
REASON = "# Long on purpose:"


def too_long() -> list[str]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, ast.ClassDef):
                limit = MAX_CLASS
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                limit = MAX_FUNCTION
            else:
                continue
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            head = "\n".join(lines[node.lineno - 1 : node.lineno + 5])
            if length > limit and REASON not in head:
                found.append(f"{path.relative_to(SRC)}: {node.name} is {length} lines")
    return found


def test_no_class_or_function_runs_on_without_a_reason() -> None:
    assert too_long() == []
