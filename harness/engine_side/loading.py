"""Find the engine in a submission: a file, a folder, a module or an installed name.

Runs inside the engine process.  Every failure is a LoadError whose message
tells the student what was found and how to fix it.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import types
from pathlib import Path

from harness import wire
from harness.engine_side import (  # before the import policy, which hides the harness from submissions
    collector,
    discovery,
)
from harness.engine_side.adapters import MicrogradAdapter, NotebookAdapter, optional_float, to_float
from harness.engine_side.cells import Cell, CellRunner, looks_exported, new_module, split_script
from harness.engine_side.guard import ForbiddenImport

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~9 ms in every engine process)
if TYPE_CHECKING:
    from collections.abc import Callable

_HARNESS_DIR = str(Path(__file__).resolve().parent.parent) + os.sep
LIKELY_CLASSES = discovery.LIKELY_CLASSES
REGISTER_HINT = (
    "To register an engine explicitly, add:\n"
    "    from harness import hookimpl\n\n"
    "    @hookimpl\n"
    "    def register_engines(register):\n"
    "        register(MyEngine())"
)


class LoadError(Exception):
    """The submission could not be loaded as an engine."""


def load(spec: str, installed=None, guard: Callable[[], None] | None = None, notebook: dict | None = None,
         mode: str = "defs", notes: list | None = None, notebooks: list | None = None) -> tuple[list, bool]:
    """The engines behind ``spec``, and whether they come from a trusted installed plugin.

    ``installed`` holds the names of the installed engines when the grader
    already knows them (None: load the installed plugins here to find out).
    ``guard`` runs just before untrusted code (the submission) is imported.
    ``notebook`` holds the code cells of a ``.ipynb`` spec, read by the grader
    (``{"name": ..., "cells": [[number, source], ...]}``), run in ``mode`` (defs or all);
    ``notebooks`` those of the notebooks in a folder spec, tried when no .py file holds an engine.
    ``DIR::module`` and ``DIR::module:Class`` import ``module`` from ``DIR`` (and grade ``Class``).
    What the load skipped or chose is appended to ``notes``.
    """
    guard = guard or (lambda: None)
    notes = notes if notes is not None else []
    path = Path(spec)
    if notebook is not None:
        guard()
        cells = [Cell(int(n), str(src)) for n, src in notebook.get("cells", [])]
        return _load_cells(cells, str(notebook.get("name") or path.name), str(path), mode, notes), False
    if "::" in spec:
        folder, _, target = spec.partition("::")
        guard()
        return _load_target(Path(folder), target, notes), False
    if spec.endswith(".py") or path.exists() or "/" in spec or "\\" in spec:
        guard()
        if path.is_file() and path.suffix.lower() == ".ipynb":
            raise LoadError(f"{path.name}: a notebook's cells must come from the grader, which reads it")
        if path.is_file():
            exported = _exported_cells(path)
            if exported is not None:
                notes.append(f"{path.name} is a script exported from a notebook: loaded cell by cell")
                return _load_cells(exported, path.name, str(path), mode, notes), False
            return _chosen(find_engines(_import_file(path), path.stem, notes), notes, path.parent), False
        if path.is_dir():
            return _load_folder(path, mode, notes, notebooks or []), False
        raise LoadError(f"no such file or folder: {spec}")
    names = list(installed or [])
    if installed is None or spec in installed:
        try:
            engines = collector.engines(collector.installed_manager())
        except collector.PluginError as e:
            raise LoadError(str(e)) from None
        chosen = [e for e in engines if getattr(e, "name", None) == spec]
        if chosen:
            return chosen, True
        names = [str(getattr(e, "name", "?")) for e in engines]
    guard()
    try:
        module = importlib.import_module(spec)
    except ForbiddenImport as e:
        raise LoadError(_describe_import_error(e, spec)) from None
    except ModuleNotFoundError as e:
        if e.name and spec.startswith(e.name):
            raise LoadError(f"{spec!r} is not a file, an installed engine (installed: "
                            f"{', '.join(names) or 'none'}) or an importable module") from None
        raise LoadError(_describe_import_error(e, spec)) from None
    except BaseException as e:  # the module's own code failed
        raise LoadError(_describe_import_error(e, spec)) from None
    return _find_in_package(module, spec.split(".")[0]), False


def _import_file(path: Path):
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)
    name = path.stem if path.stem not in sys.modules else f"_submission_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise LoadError(f"{path} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as e:
        raise LoadError(_describe_import_error(e, str(path))) from None
    return module


def _load_folder(path: Path, mode: str, notes: list, notebooks: list) -> list:
    """The engine of a folder (a package or a repository), found by reading its source, not running it.

    Only the modules defining the likeliest candidates are imported (at most MAX_MODULES), and scripts
    never; a candidate that fails the smoke probe gives way to the next module's.  With no candidate
    in a .py file, the folder's notebooks are tried.
    """
    found = discovery.scan(path)
    package_name = path.name if (path / "__init__.py").is_file() else None
    tried: list[str] = []
    fallback = None
    for module_path in list(dict.fromkeys(c.path for c in found.candidates))[:MAX_MODULES]:
        candidate = next(c for c in found.candidates if c.path == module_path)
        local: list = []
        try:
            engines = _load_candidate(candidate, path, package_name or candidate.path.stem, mode, local)
        except LoadError as e:
            tried.append(f"{candidate.describe()}: {str(e).splitlines()[0]}")
            continue
        why = smoke_probe(engines[0]) if len(engines) == 1 and getattr(engines[0], "cls", None) else None
        if why is not None and len(found.candidates) > 1:
            tried.append(f"{candidate.describe()}: the smoke probe L = 2 * 3 + 1 {why}")
            fallback = fallback or (engines, local)
            continue
        if tried:
            local.insert(0, f"graded {engines[0].origin or candidate.describe()} (before it: {'; '.join(tried)})")
        notes.extend(local)
        return engines
    if fallback is not None:
        notes.append(f"no candidate passed the smoke probe; graded the likeliest ({'; '.join(tried)})")
        notes.extend(fallback[1])
        return fallback[0]
    for nb in notebooks:
        name = str(nb.get("name", "notebook.ipynb"))
        local = []
        try:
            cells = [Cell(int(n), str(src)) for n, src in nb.get("cells", [])]
            engines = _load_cells(cells, name, str(path / name), mode, local)
        except LoadError as e:
            tried.append(f"{name}: {str(e).splitlines()[0]}")
            continue
        notes.extend(local)
        return engines
    if not found.files and not notebooks:
        raise LoadError(f"the folder {path} holds no .py file or notebook to grade")
    lines = [f"no engine found in {path}: looked at {found.looked_at()}"
             + (f" and {len(notebooks)} notebook(s)" if notebooks else "")]
    if tried:
        lines.append("candidates tried: " + "; ".join(tried))
    else:
        lines.append("no class with backward() and operators (micrograd style), or with backward() next to "
                     "functions _add, _sub, _mul (notebook style), outside scripts")
    hidden = discovery.scripts_with_engines(path, found)
    if hidden:
        lines.append(f"found in scripts, which are never run to find the engine: {', '.join(hidden)}; move the "
                     f"engine into a module of its own, or name it: --engine '{path}::MODULE:CLASS'")
    lines.append(REGISTER_HINT)
    raise LoadError("\n".join(lines))


MAX_MODULES = 5


def _load_candidate(candidate, folder: Path, name: str, mode: str, notes: list) -> list:
    """Import the module of a discovered candidate (a notebook export: run its cells) and find its engine."""
    if candidate.exported:
        cells = _exported_cells(candidate.path) or []
        notes.append(f"{candidate.rel} is a script exported from a notebook: loaded cell by cell")
        return _load_cells(cells, candidate.rel, str(candidate.path), mode, notes)
    top = candidate.module.split(".")[0]
    clash = top in sys.modules and not str(getattr(sys.modules[top], "__file__", "") or "").startswith(
        str(folder.resolve()))
    if candidate.module and not clash:
        for entry in (str(candidate.path.parent.resolve()), str(candidate.root.resolve())):
            if entry not in sys.path:
                sys.path.insert(0, entry)
        try:
            module = importlib.import_module(candidate.module)
        except BaseException as e:
            raise LoadError(_describe_import_error(e, candidate.rel)) from None
    else:
        module = _import_file(candidate.path)
    return _chosen(find_engines(module, name, notes), notes, folder)


def _load_target(folder: Path, target: str, notes: list) -> list:
    """``DIR::module[:Class]``: import ``module`` from ``DIR`` and grade ``Class`` (or find the engine in it)."""
    modname, _, clsname = target.partition(":")
    spec = f"{folder}::{target}"
    if not folder.is_dir():
        raise LoadError(f"{spec}: no such folder {folder}")
    if not all(p.isidentifier() for p in modname.split(".")) or (clsname and not clsname.isidentifier()):
        raise LoadError(f"{spec}: expected DIR::package.module or DIR::package.module:ClassName")
    sys.path.insert(0, str(folder.resolve()))
    try:
        module = importlib.import_module(modname)
    except BaseException as e:
        raise LoadError(_describe_import_error(e, spec)) from None
    name = modname.rsplit(".", 1)[-1]
    if not clsname:
        return _chosen(find_engines(module, name, notes), notes, folder)
    cls = getattr(module, clsname, None)
    if not isinstance(cls, type):
        raise LoadError(f"{spec}: {modname} has no class {clsname}")
    candidates = [c for c in candidates_in(module, name, most=100) if c.cls is cls]
    if not candidates:
        raise LoadError(f"{spec}: class {clsname} is not an engine: it needs backward() and operators "
                        "(micrograd style), or backward() next to functions _add, _sub, _mul (notebook style)")
    return _chosen([choose(candidates, notes)], notes, folder)


def _find_in_package(module, name: str) -> list:
    try:
        return find_engines(module, name)
    except LoadError as first:
        if not hasattr(module, "__path__"):
            raise
        import pkgutil

        for info in pkgutil.iter_modules(module.__path__, module.__name__ + "."):
            try:
                sub = importlib.import_module(info.name)
                return find_engines(sub, name)
            except ForbiddenImport as e:
                raise LoadError(_describe_import_error(e, info.name)) from None
            except (LoadError, Exception):
                continue
        raise first from None


def find_engines(module, name: str, notes: list | None = None) -> list:
    """Engines in a module: registered through hooks, else the zero-glue candidate that passes a smoke probe."""
    hooked = collector.hook_functions(module)
    if hooked:
        pm = collector.new_manager()
        pm.register(module, f"submission:{name}")
        try:
            collector.check(pm)
        except collector.PluginError as e:
            raise LoadError(str(e)) from None
        found = collector.engines(pm)
        if found:
            return found
    undecorated = getattr(module, "register_engines", None)
    if callable(undecorated) and not hooked:
        registered: list = []
        undecorated(registered.append)
        if registered:
            return registered
    candidates = candidates_in(module, name)
    if not candidates:
        classes = [c for c in vars(module).values() if isinstance(c, type)]
        functions = [n for n in NOTEBOOK_FUNCTIONS if callable(getattr(module, n, None))]
        raise LoadError(_nothing_found(module, name, classes, functions))
    return [choose(candidates, notes if notes is not None else [])]


NOTEBOOK_FUNCTIONS = ("_add", "_sub", "_mul")
_OPERATORS = ("__add__", "__mul__", "__sub__", "__radd__", "__rmul__")


def candidates_in(module, name: str, most: int = 8) -> list:
    """Zero-glue adapters for the module's classes with backward(), the most likely first.

    A class with operators is a micrograd-style candidate; with module functions _add, _sub, _mul
    it is also a notebook-style one (first when the class is named Tensor, as in the tutorial).
    """
    classes = [c for c in vars(module).values() if isinstance(c, type)]
    graded = [c for c in classes if callable(getattr(c, "backward", None))]
    graded.sort(key=lambda c: (LIKELY_CLASSES.index(c.__name__) if c.__name__ in LIKELY_CLASSES
                               else len(LIKELY_CLASSES), getattr(c, "__module__", "") != module.__name__))
    functions = any(callable(getattr(module, n, None)) for n in NOTEBOOK_FUNCTIONS)
    found: list = []
    for cls in graded:
        styles = []
        if any(hasattr(cls, op) for op in _OPERATORS):
            styles.append(MicrogradAdapter(cls, name))
        if functions:
            notebook = NotebookAdapter(module, cls, name)
            styles.insert(0 if cls.__name__ == "Tensor" else len(styles), notebook)
        found += styles
    return found[:most]


def describe_candidate(adapter) -> str:
    """A zero-glue candidate in words, e.g. 'class Value with operators'."""
    cls = getattr(adapter, "cls", None)
    if cls is None:
        return str(getattr(adapter, "name", "engine"))
    if isinstance(adapter, NotebookAdapter):
        functions = [n for n in NOTEBOOK_FUNCTIONS if callable(getattr(adapter.module, n, None))]
        return f"class {cls.__name__} with functions {', '.join(functions)} (notebook style)"
    return f"class {cls.__name__} with operators (micrograd style)"


def smoke_probe(engine) -> str | None:
    """None if the engine computes L = 2 * 3 + 1 and its gradients (7; dL/da = 3, dL/db = 2), else what went wrong."""
    try:
        a, b = engine.leaf(2.0), engine.leaf(3.0)
        out = engine.apply("add", engine.apply("mul", a, b), 1.0)
        engine.backward(out)
        got = (to_float(engine.value(out)), optional_float(engine.grad(a)), optional_float(engine.grad(b)))
    except (Exception, SystemExit) as e:
        message = str(e).splitlines()[0][:150] if str(e) else ""
        return f"raised {type(e).__name__}" + (f": {message}" if message else "")
    if got != (7.0, 3.0, 2.0):
        return "gave L = {}, dL/da = {}, dL/db = {} (expected 7, 3, 2)".format(*got)
    return None


def choose(candidates: list, notes: list):
    """The first candidate that passes the smoke probe (the first one when only one, or none, passes)."""
    if len(candidates) == 1:
        return candidates[0]
    failures: list[str] = []
    for adapter in candidates:
        why = smoke_probe(adapter)
        if why is None:
            others = "; ".join(failures)
            notes.append(f"graded {describe_candidate(adapter)}: it passed the smoke probe L = 2 * 3 + 1, "
                         f"then backward()" + (f" (before it, {others})" if others else "") +
                         (f"; {len(candidates) - 1} other candidate(s) were not tried"
                          if len(candidates) > len(failures) + 1 else ""))
            return adapter
        failures.append(f"{describe_candidate(adapter)} {why}")
    notes.append(f"no candidate passed the smoke probe L = 2 * 3 + 1, then backward() "
                 f"({'; '.join(failures)}); graded the first, {describe_candidate(candidates[0])}")
    return candidates[0]


def origin_of(engine, defined_in: dict | None = None, root: Path | None = None) -> str:
    """Where the graded engine was defined, e.g. 'student.ipynb, cell 7: class Value'."""
    cls = getattr(engine, "cls", None)
    if cls is None:
        return ""
    if defined_in is not None:
        where = defined_in.get(cls.__name__, "")
        text = f"{where}: class {cls.__name__}" if where else f"class {cls.__name__}"
        if isinstance(engine, NotebookAdapter):
            places: dict = {}
            for n in NOTEBOOK_FUNCTIONS:
                if n in defined_in:
                    places.setdefault(defined_in[n], []).append(n)
            text += "".join(f"; {', '.join(fns)} from {w}" for w, fns in places.items() if w != where)
        return text
    module = sys.modules.get(getattr(cls, "__module__", ""))
    file = getattr(module, "__file__", None)
    if file:
        try:
            shown = Path(file).resolve().relative_to(root.resolve()) if root is not None else Path(file).name
        except ValueError:
            shown = Path(file).name
        return f"{shown}: class {cls.__name__}"
    return f"{cls.__module__}: class {cls.__name__}"


def _chosen(engines: list, notes: list, root: Path | None = None, defined_in: dict | None = None) -> list:
    """``engines``, each zero-glue adapter told where its class was defined (its ``origin``)."""
    for engine in engines:
        if getattr(engine, "cls", None) is not None and not getattr(engine, "origin", ""):
            engine.origin = origin_of(engine, defined_in, root)
    return engines


def _exported_cells(path: Path) -> list | None:
    """The cells of a .py file exported from a notebook, or None for an ordinary module."""
    try:
        with open(path, "rb") as f:
            raw = f.read(8 << 20)
        text = raw.decode("utf-8").removeprefix("\ufeff")  # no codec lookup: it may be refused by now
    except (OSError, UnicodeDecodeError):
        return None
    return split_script(text) if looks_exported(text) else None


def _load_cells(cells: list, name: str, path: str, mode: str, notes: list) -> list:
    """Run notebook cells as one module and find the engine among what they defined.

    In ``defs`` mode, when the definitions alone hold no engine, the cells run again whole.
    """
    if not cells:
        raise LoadError(f"{name} holds no code cell to grade")
    folder = str(Path(path).resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    stem = Path(name).stem.replace("-", "_").replace(" ", "_") or "notebook"
    modname = stem if stem.isidentifier() and stem not in sys.modules else f"_submission_{abs(hash(name))}"
    runner = _run_cells(cells, modname, name, path, mode)
    chosen: list = []  # what the smoke probe chose, if it had to
    try:
        engines = find_engines(runner.module, Path(name).stem, chosen)
    except LoadError as first:
        if mode == "all":
            raise LoadError(_with_notes(str(first), runner.notes.lines())) from None
        retry = _run_cells(cells, modname, name, path, "all")
        try:
            engines = find_engines(retry.module, Path(name).stem, chosen)
        except LoadError:
            raise LoadError(_with_notes(str(first), runner.notes.lines())) from None
        notes.append(f"{name}: no engine among the definitions alone, so every cell ran whole "
                     "(as with --notebook-mode all)")
        runner = retry
    notes.extend(runner.notes.lines())
    notes.extend(chosen)
    return _chosen(engines, notes, defined_in=runner.defined_in)


def _run_cells(cells: list, modname: str, name: str, path: str, mode: str) -> CellRunner:
    runner = CellRunner(new_module(modname, path), name, path if path.endswith(".py") else None,
                        fatal=(ForbiddenImport,))
    try:
        runner.run(cells, mode)
    except ForbiddenImport as e:
        raise LoadError(_describe_import_error(e, name)) from None
    return runner


def _with_notes(message: str, notes: list) -> str:
    if not notes:
        return message
    lines = message.splitlines()
    return "\n".join(lines[:1] + ["while loading, skipped:"] + [f"  {n}" for n in notes[:15]] + lines[1:])


def _nothing_found(module, name, classes, functions) -> str:
    found = ", ".join(c.__name__ for c in classes) or "no classes"
    defined = [n for n, v in vars(module).items() if isinstance(v, types.FunctionType) and not n.startswith("__")]
    if defined:
        found += f"; functions {', '.join(defined[:10])}" + (", ..." if len(defined) > 10 else "")
    where = getattr(module, "__file__", None) or name
    lines = [f"no engine found in {where}: found {found}"]
    if functions:
        lines.append(f"functions {', '.join(functions)} but no class with a backward() method")
    else:
        lines.append("expected a class with backward() and operators (micrograd style), or a Tensor "
                     "class with backward() plus functions _add, _sub, _mul (notebook style)")
    misspelled = [n for n in vars(module) if n.startswith("register_") and n != "register_engines"]
    if misspelled:
        lines.append(f"{misspelled[0]!r} is not a hook; did you mean 'register_engines'?")
    lines.append(REGISTER_HINT)
    return "\n".join(lines)


def _describe_import_error(e: BaseException, where: str) -> str:
    if isinstance(e, SyntaxError):
        text = wire.clip((e.text or "").rstrip(), 300)
        src = f"\n    {text}" if text else ""
        return f"syntax error in {e.filename or where}, line {e.lineno}: {e.msg}{src}"
    import traceback

    frames = [f for f in traceback.extract_tb(e.__traceback__)
              if "importlib" not in f.filename and not f.filename.startswith(("<frozen", _HARNESS_DIR))]
    at = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    if isinstance(e, ForbiddenImport):
        return f"importing {where}{at}: {e}"
    if isinstance(e, SystemExit):
        return f"importing {where} called sys.exit({_clipped(e.code, repr)}){at}"
    return f"importing {where} raised {type(e).__name__}: {_clipped(e)}{at}"


def _clipped(obj, to_text=str) -> str:
    """A submission's exception (or exit code) as bounded text: its ``__str__`` may raise or return megabytes."""
    try:
        text = to_text(obj)
    except Exception as e:
        return f"<unprintable: its {to_text.__name__}() raised {type(e).__name__}>"
    return wire.clip(text, wire.MAX_LOAD_ERROR // 2) if type(text) is str else "<unprintable>"
