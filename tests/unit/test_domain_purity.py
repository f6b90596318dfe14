"""``domain/`` imports only the standard library, ``eventsourcing.domain`` and itself (the part of
the purity rule import-linter cannot express: it forbids an external package only as a whole)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

DOMAIN = Path(__file__).resolve().parents[2] / "domain"
ALLOWED = {"eventsourcing.domain"}


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(node.module)
    return found


def _allowed(module: str) -> bool:
    root = module.split(".")[0]
    return (root in sys.stdlib_module_names or root == "domain" or module in ALLOWED
            or any(module.startswith(a + ".") for a in ALLOWED))


def test_domain_imports_only_stdlib_and_eventsourcing_domain() -> None:
    modules = sorted(DOMAIN.rglob("*.py"))
    assert modules, "no domain modules found"
    offending = {f"{p.relative_to(DOMAIN.parent)}: {m}" for p in modules for m in _imports(p) if not _allowed(m)}
    assert not offending, sorted(offending)


def test_the_check_catches_a_foreign_import() -> None:
    assert not _allowed("eventsourcing.persistence") and not _allowed("psycopg") and not _allowed("api.auth")
    assert _allowed("eventsourcing.domain") and _allowed("decimal") and _allowed("domain.calendar")
