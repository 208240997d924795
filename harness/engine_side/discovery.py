"""Find the engine in a repository by reading its source, without running it.

Runs inside the engine process and imports only the standard library.  Every
``.py`` file of the folder, in packages at any depth, is parsed with ``ast``
(never imported) and its top-level classes are classified:

- ``hooks``: the module defines ``register_engines`` (a plugin);
- ``micrograd``: a class with ``backward()`` and operator methods;
- ``notebook``: a class with ``backward()`` next to functions ``_add``/``_sub``/``_mul``;
- ``weak``: a class with ``backward()`` only (operators may be attached later).

Scripts (``train.py``, ``demo.py``, ``setup.py``, ``conftest.py``,
``test_*.py``, ``*_test.py``, ``__main__.py``) are looked at but never become
candidates: importing them would run them.  The loader then imports only the
best candidate's module (and what that imports).
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

from harness.engine_side.cells import looks_exported, split_script, strip_ipython

LIKELY_FILES = ("engine", "autograd", "tensor", "value", "micrograd", "grad", "scalar", "main")
LIKELY_CLASSES = ("Value", "Tensor", "Scalar", "Var", "Variable", "Node")
OPERATORS = frozenset({"__add__", "__radd__", "__mul__", "__rmul__", "__sub__", "__rsub__", "__truediv__",
                       "__pow__", "__neg__"})
NOTEBOOK_FUNCTIONS = ("_add", "_sub", "_mul")
SCRIPT_NAMES = frozenset({"train", "demo", "setup", "conftest", "__main__", "run", "example", "examples",
                          "plot", "visualize", "benchmark"})
_SCRIPT = re.compile(r"^(test_.*|.*_test|train_.*|demo_.*)$")
SKIPPED_DIRS = frozenset({"__pycache__", "node_modules", "site-packages", "venv", "env", "build", "dist",
                          "tests", "test", "docs", "__MACOSX"})
MAX_FILES = 2000
MAX_DEPTH = 8
MAX_FILE_BYTES = 1 << 20
_STYLE_RANK = {"hooks": 0, "micrograd": 1, "notebook": 1, "weak": 2}


# Candidate and Scan are plain classes, not dataclasses: every engine process imports this module, and
# ``dataclasses`` (with ``inspect``) would cost each of them ~15 ms.

class Candidate:
    """A class (or a plugin module) that looks like an engine, and how to import it."""

    __slots__ = ("path", "rel", "module", "root", "cls", "style", "exported")

    def __init__(self, path: Path, rel: str, module: str, root: Path, cls: str, style: str,
                 exported: bool = False) -> None:
        self.path = path          # the file
        self.rel = rel            # its path in the submission, for messages
        self.module = module      # the dotted name to import from ``root`` ("" when not importable by name)
        self.root = root          # the sys.path entry ``module`` is imported from
        self.cls = cls            # the class's name ("" for a plugin module)
        self.style = style        # hooks, micrograd, notebook or weak
        self.exported = exported  # a script exported from a notebook: loaded cell by cell

    def __repr__(self) -> str:
        return f"Candidate({self.rel!r}, class {self.cls!r}, {self.style})"

    def describe(self) -> str:
        """The candidate in words, e.g. 'micrograd/engine.py: class Value (operators, backward)'."""
        what = {"hooks": "register_engines()", "micrograd": f"class {self.cls} (operators, backward)",
                "notebook": f"class {self.cls} (backward, with {'/'.join(NOTEBOOK_FUNCTIONS)} functions)",
                "weak": f"class {self.cls} (backward but no operators)"}[self.style]
        return f"{self.rel}: {what}"

    def rank(self) -> tuple:
        stem = self.path.stem
        return (_STYLE_RANK[self.style],
                LIKELY_CLASSES.index(self.cls) if self.cls in LIKELY_CLASSES else len(LIKELY_CLASSES),
                LIKELY_FILES.index(stem) if stem in LIKELY_FILES else len(LIKELY_FILES),
                self.rel.count("/"), self.rel)


class Scan:
    """What a folder holds: candidates (best first), scripts left alone, files that did not parse."""

    def __init__(self) -> None:
        self.candidates: list[Candidate] = []
        self.scripts: list[str] = []
        self.unparsable: list[str] = []
        self.files = 0
        self.truncated = False

    def looked_at(self, most: int = 12) -> str:
        """What was looked at, in words, for a 'no engine found' message."""
        parts = [f"{self.files} .py file(s)"]
        if self.scripts:
            parts.append("scripts never run to find the engine: " + ", ".join(self.scripts[:most]))
        if self.unparsable:
            parts.append("not Python: " + ", ".join(self.unparsable[:most]))
        if self.truncated:
            parts.append(f"only the first {MAX_FILES} files were read")
        return "; ".join(parts)


def is_script(path: Path) -> bool:
    """Whether a file is a script (run by hand, never imported to find the engine)."""
    return path.stem in SCRIPT_NAMES or bool(_SCRIPT.match(path.stem))


def python_files(folder: Path) -> tuple[list[Path], bool]:
    """The .py files under ``folder`` (hidden, cache, virtualenv and test folders left out), and whether
    the walk stopped at MAX_FILES."""
    found: list[Path] = []
    base = len(folder.parts)
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        here = Path(dirpath)
        depth = len(here.parts) - base
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in SKIPPED_DIRS
                             and depth < MAX_DEPTH and not (here / d).is_symlink())
        for name in sorted(filenames):
            if name.endswith(".py") and not name.startswith("."):
                path = here / name
                if path.is_symlink() or not path.is_file():
                    continue
                found.append(path)
                if len(found) >= MAX_FILES:
                    return found, True
    return found, False


def import_name(path: Path, folder: Path) -> tuple[str, Path]:
    """(dotted module name, sys.path root) for a file: from the top of its package chain, else from ``folder``."""
    root = path.parent
    parts = [path.stem] if path.stem != "__init__" else []
    while (root / "__init__.py").is_file() and root != folder.parent:
        parts.insert(0, root.name)
        root = root.parent
    if root != path.parent or (folder / "__init__.py").is_file():
        name = ".".join(parts)
    else:  # not in a package: importable from its own folder
        name = path.stem
    if not all(p.isidentifier() for p in name.split(".")) or not name:
        return "", path.parent
    return name, root


def classify(tree: ast.Module) -> list[tuple[str, str]]:
    """(class name, style) for each engine-like top-level class of a module, and ('', 'hooks') for a plugin."""
    functions = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    functions |= {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    found: list[tuple[str, str]] = []
    if "register_engines" in functions:
        found.append(("", "hooks"))
    notebook = any(f in functions for f in NOTEBOOK_FUNCTIONS)
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        members = {n.name for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        members |= {t.id for n in node.body if isinstance(n, ast.Assign) for t in n.targets
                    if isinstance(t, ast.Name)}
        if "backward" not in members:
            continue
        if members & OPERATORS:
            found.append((node.name, "micrograd"))
        if notebook:
            found.append((node.name, "notebook"))
        if not members & OPERATORS and not notebook:
            found.append((node.name, "weak"))
    return found


def _parse(path: Path) -> tuple[ast.Module | None, bool]:
    """(syntax tree, whether it is a notebook export) of a file, or (None, False) when it is not Python."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
        if len(raw) > MAX_FILE_BYTES:
            return None, False
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except (OSError, UnicodeDecodeError):
        return None, False
    exported = looks_exported(text)
    if exported:  # parse what the cells hold once IPython syntax is out
        text = "\n".join(strip_ipython(c.source)[0] for c in split_script(text))
    try:
        return ast.parse(text), exported
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        if exported:  # one bad cell: classify the cells that parse
            body: list = []
            for chunk in text.split("\n\n"):
                try:
                    body += ast.parse(chunk).body
                except (SyntaxError, ValueError, RecursionError, MemoryError):
                    continue
            return ast.Module(body=body, type_ignores=[]), True
        return None, False


def scan(folder: Path) -> Scan:
    """Every engine-like class under ``folder``, the most likely first."""
    result = Scan()
    files, result.truncated = python_files(folder)
    result.files = len(files)
    for path in files:
        rel = path.relative_to(folder).as_posix()
        if is_script(path):
            result.scripts.append(rel)
            continue
        tree, exported = _parse(path)
        if tree is None:
            result.unparsable.append(rel)
            continue
        found = classify(tree)
        if not found:
            continue
        module, root = import_name(path, folder)
        for cls, style in found:
            result.candidates.append(Candidate(path, rel, module, root, cls, style, exported))
    result.candidates.sort(key=Candidate.rank)
    return result


def scripts_with_engines(folder: Path, scan_result: Scan) -> list[str]:
    """The scripts that define an engine-like class (named in the 'no engine found' message)."""
    found = []
    for rel in scan_result.scripts:
        tree, _ = _parse(folder / rel)
        if tree is not None:
            classes = [cls for cls, style in classify(tree) if cls and style != "weak"]
            if classes:
                found.append(f"{rel} (class {', '.join(classes)})")
    return found
