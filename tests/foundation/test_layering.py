"""Who may import whom: the layering of `docs/architecture.md`, read from the source.

Every import counts, also those inside functions: a function-local import is still an
arrow. The area command-line modules (`*/cli.py`, `*_cli.py`, `web/commands.py`) are the CLI layer:
they may use anything but the top-level `castline.cli`, which puts them together.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "castline"

BASE = {"domain", "settings", "datasets", "logs"}
# What each part of castline may import, besides itself.
ALLOWED: dict[str, set[str]] = {
    "domain": set(),
    "logs": set(),
    "settings": {"domain"},
    "datasets": {"domain"},
    "cli_text": set(),  # what commands say, in English and Chinese
    "options": BASE | {"cli_text"},
    "messaging": BASE,
    "store": BASE,
    "vision": BASE | {"store"},
    "analytics": BASE | {"store"},
    "sim": BASE | {"messaging"},
    "line": BASE | {"messaging", "store", "vision"},
    "web": BASE | {"messaging", "store", "vision", "analytics", "cli_text"},
    "demo_model": BASE | {"store", "vision", "sim", "cli_text"},
    "demo_history": BASE | {"store", "analytics", "sim"},
    "app": BASE
    | {
        "cli_text",
        "options",
        "messaging",
        "store",
        "vision",
        "analytics",
        "sim",
        "line",
        "web",
        "demo_model",
        "demo_history",
    },
}
ALLOWED["testing"] = set(ALLOWED) - {"app"}  # drills and benchmarks, never the product
EVERYTHING_BUT_CLI = set(ALLOWED)
CLI_MODULES = {"cli", "commands"}


def part_of(path: Path) -> tuple[str, bool]:
    """The part of castline a source file belongs to, and whether it is a CLI module."""
    rel = path.relative_to(SRC).with_suffix("")
    is_cli = rel.name in CLI_MODULES or rel.name.endswith("_cli")
    return rel.parts[0], is_cli


def imported_parts(path: Path) -> set[str]:
    parts = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        parts |= {n.split(".")[1] for n in names if n.startswith("castline.")}
    return {p for p in parts if not p.startswith("__")}  # castline.__version__ is no part


def arrows_against_the_layering() -> list[str]:
    wrong = []
    for path in sorted(SRC.rglob("*.py")):
        if "migrations" in path.parts or (path.name == "__init__.py" and path.parent == SRC):
            continue
        part, is_cli = part_of(path)
        if part == "cli":
            continue  # the top: it puts the commands together
        allowed = EVERYTHING_BUT_CLI if is_cli else ALLOWED.get(part)
        assert allowed is not None, f"{path.relative_to(SRC)}: a new part; add it to ALLOWED"
        for target in sorted(imported_parts(path) - {part} - allowed):
            wrong.append(f"{path.relative_to(SRC)} imports castline.{target}")
    return wrong


def test_no_arrow_runs_up_the_layering() -> None:
    assert arrows_against_the_layering() == []


def test_the_layering_has_no_cycle() -> None:
    """The allowed arrows themselves form no cycle, so no import can."""
    seen: dict[str, int] = {}

    def depth(part: str, trail: tuple[str, ...] = ()) -> int:
        assert part not in trail, f"cycle: {' -> '.join((*trail, part))}"
        if part not in seen:
            seen[part] = 1 + max((depth(p, (*trail, part)) for p in ALLOWED[part]), default=0)
        return seen[part]

    for part in ALLOWED:
        depth(part)
