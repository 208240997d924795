"""The trust boundary: code that runs inside the engine process imports nothing from the grader side."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

HARNESS = Path(__file__).resolve().parents[2] / "harness"
ALLOWED_HARNESS = {"harness", "harness.wire", "harness.ops", "harness.hookspecs", "harness.protocols"}
ALLOWED_THIRD_PARTY = {"pluggy"}


def module_file(name: str) -> Path | None:
    """The source file of a harness module or package, None if ``name`` is not one."""
    parts = name.split(".")[1:]
    base = HARNESS.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(path: Path, module: str) -> set[str]:
    """Every module ``path`` imports at run time (in functions too; ``if TYPE_CHECKING:`` blocks left out)."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _type_checking_only(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            for alias in node.names:  # from harness import wire: the submodule harness.wire
                if base.startswith("harness") and module_file(f"{base}.{alias.name}"):
                    found.add(f"{base}.{alias.name}")
        stack.extend(ast.iter_child_nodes(node))
    return found


def allowed(name: str) -> bool:
    top = name.split(".")[0]
    if top == "harness":
        return name in ALLOWED_HARNESS or name == "harness.engine_side" or name.startswith("harness.engine_side.")
    return top in sys.stdlib_module_names or top in ALLOWED_THIRD_PARTY


def engine_side_imports() -> dict[str, set[str]]:
    """module -> what it imports, for engine_side and every harness module it reaches."""
    todo = [f"harness.engine_side.{p.stem}" if p.name != "__init__.py" else "harness.engine_side"
            for p in sorted((HARNESS / "engine_side").glob("*.py"))]
    seen: dict[str, set[str]] = {}
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = module_file(name)
        assert path is not None, name
        seen[name] = imports_of(path, name)
        todo.extend(m for m in seen[name] if m.split(".")[0] == "harness" and module_file(m))
    return seen


def test_engine_side_imports_only_stdlib_pluggy_and_the_shared_modules():
    bad = {f"{module} imports {name}" for module, names in engine_side_imports().items()
           for name in names if not allowed(name)}
    assert not bad, "the engine process must not import grader-side code:\n" + "\n".join(sorted(bad))


def test_the_walk_reaches_the_shared_modules():
    walked = engine_side_imports()
    assert {"harness", "harness.wire", "harness.ops", "harness.hookspecs", "harness.engine_side.worker",
            "harness.engine_side.loading"} <= set(walked)


def test_the_walk_sees_a_grader_import(tmp_path):
    source = tmp_path / "x.py"
    source.write_text("import os\nfrom harness import errors\ndef f():\n    from harness.sandbox import reaper\n"
                      "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from harness import model\n")
    found = imports_of(source, "harness.engine_side.x")
    assert {"harness.errors", "harness.sandbox", "harness.sandbox.reaper"} <= found
    assert "harness.model" not in found
    assert [n for n in found if not allowed(n)] and not allowed("harness.errors")


def test_relative_imports_resolve(tmp_path):
    source = tmp_path / "y.py"
    source.write_text("from . import guard\nfrom ..sandbox import reaper\n")
    found = imports_of(source, "harness.engine_side.y")
    assert {"harness.engine_side.guard", "harness.sandbox.reaper"} <= found
