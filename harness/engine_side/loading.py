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
from collections.abc import Callable
from pathlib import Path

from harness import wire
from harness.engine_side import collector  # before the import policy, which hides the harness from submissions
from harness.engine_side.adapters import MicrogradAdapter, NotebookAdapter
from harness.engine_side.guard import ForbiddenImport

#: In a folder that is not a package, the files most likely to hold the engine come first.
LIKELY_FILES = ("engine", "autograd", "tensor", "value", "micrograd", "grad", "main")
_HARNESS_DIR = str(Path(__file__).resolve().parent.parent) + os.sep
LIKELY_CLASSES = ("Value", "Tensor", "Scalar", "Var", "Variable", "Node")
REGISTER_HINT = (
    "To register an engine explicitly, add:\n"
    "    from harness import hookimpl\n\n"
    "    @hookimpl\n"
    "    def register_engines(register):\n"
    "        register(MyEngine())"
)


class LoadError(Exception):
    """The submission could not be loaded as an engine."""


def load(spec: str, installed=None, guard: Callable[[], None] | None = None) -> tuple[list, bool]:
    """The engines behind ``spec``, and whether they come from a trusted installed plugin.

    ``installed`` holds the names of the installed engines when the grader
    already knows them (None: load the installed plugins here to find out).
    ``guard`` runs just before untrusted code (the submission) is imported.
    """
    guard = guard or (lambda: None)
    path = Path(spec)
    if spec.endswith(".py") or path.exists() or "/" in spec or "\\" in spec:
        guard()
        if path.is_file():
            return find_engines(_import_file(path), path.stem), False
        if path.is_dir():
            return _load_folder(path), False
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
    assert spec is not None and spec.loader is not None  # a .py file always has a source loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as e:
        raise LoadError(_describe_import_error(e, str(path))) from None
    return module


def _load_folder(path: Path) -> list:
    if (path / "__init__.py").is_file():
        sys.path.insert(0, str(path.resolve().parent))
        try:
            module = importlib.import_module(path.name)
        except BaseException as e:
            raise LoadError(_describe_import_error(e, str(path))) from None
        return _find_in_package(module, path.name)
    files = sorted((p for p in path.glob("*.py") if not p.name.startswith(("test", "_"))),
                   key=lambda p: (p.stem not in LIKELY_FILES, LIKELY_FILES.index(p.stem)
                                  if p.stem in LIKELY_FILES else 0, p.name))
    if not files:
        raise LoadError(f"the folder {path} holds no .py file to grade")
    problems = []
    for f in files:
        try:
            return find_engines(_import_file(f), f.stem)
        except LoadError as e:
            problems.append(str(e))
    raise LoadError(f"no engine found in any file of {path}:\n" + "\n".join(problems))


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


def find_engines(module, name: str) -> list:
    """Engines in a module: registered through hooks, notebook style, or micrograd style."""
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
    classes = [c for c in vars(module).values() if isinstance(c, type)]
    graded = [c for c in classes if callable(getattr(c, "backward", None))]
    graded.sort(key=lambda c: (c.__name__ not in LIKELY_CLASSES, getattr(c, "__module__", "") != module.__name__))
    functions = [n for n in ("_add", "_sub", "_mul") if callable(getattr(module, n, None))]
    if functions and graded:
        tensor = getattr(module, "Tensor", None)
        cls = tensor if isinstance(tensor, type) else graded[0]
        return [NotebookAdapter(module, cls, name)]
    operators = [c for c in graded if hasattr(c, "__add__") or hasattr(c, "__mul__")]
    if operators:
        return [MicrogradAdapter(operators[0], name)]
    raise LoadError(_nothing_found(module, name, classes, functions))


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
