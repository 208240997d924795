"""Build a Gradescope autograder zip: setup.sh, run_autograder, the harness and the course's cases.

The zip holds, at its root:
- ``setup.sh``: makes a Python >= 3.11 virtual environment with the harness's dependencies;
- ``run_autograder``: grades ``/autograder/submission`` and writes ``/autograder/results/results.json``;
- ``lib/``: the harness's own packages and the course's plugin modules (``-p``), put on
  ``PYTHONPATH`` by ``run_autograder``;
- ``cases/``: the case files, hidden cases included, one subfolder per ``--cases`` argument so that
  every file keeps its name (a suite's default name is its file's stem).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import re
import shlex
import zipfile
from collections.abc import Sequence
from pathlib import Path

from harness.cases.loader import builtin_cases_dir, case_files
from harness.errors import HarnessError

FILES = Path(__file__).resolve().parent / "gradescope_files"
PACKAGES = ("harness", "reference_engine")
DISTRIBUTION = "autograd-harness"
_FIXED_TIME = (2020, 1, 1, 0, 0, 0)  # the same input gives the same zip
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def requirements() -> list[str]:
    """grade's runtime requirements, as pyproject.toml declares them: the source checkout's own file, else
    the installed metadata (which is built from it)."""
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    if pyproject.is_file():
        import tomllib

        project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
        if project.get("name") == DISTRIBUTION:
            return [str(r) for r in project.get("dependencies", [])]
    try:
        requires = importlib.metadata.requires(DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError:
        raise HarnessError(f"--build-gradescope: {DISTRIBUTION} is neither installed nor run from its source "
                           "folder, so its dependencies are unknown; pip install it first") from None
    return [r for r in requires if "extra ==" not in r]


def dependencies() -> list[str]:
    """What setup.sh installs: each runtime requirement pinned to the version installed here, the one that
    grade was run with (``pluggy==1.6.0``), so the autograder image grades as this machine does."""
    pins = []
    for requirement in requirements():
        match = _NAME.match(requirement.strip())
        name = match.group(0) if match else requirement
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            raise HarnessError(f"--build-gradescope: {name}, which grade needs, is not installed here; "
                               f"pip install '{requirement.split(';')[0].strip()}'") from None
        pins.append(f"{name}=={version}")
    return pins


def _add(zf: zipfile.ZipFile, name: str, data: bytes, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, _FIXED_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (0o100755 if executable else 0o100644) << 16
    zf.writestr(info, data)


def _case_entries(case_paths: list) -> list[tuple[str, Path]]:
    """(name in the zip, file) for every case file, keeping each file's path under its argument."""
    entries = []
    for i, arg in enumerate(map(Path, case_paths or [builtin_cases_dir()]), 1):
        for f in case_files([arg]):
            rel = f.relative_to(arg).as_posix() if arg.is_dir() else f.name
            entries.append((f"cases/{i}/{rel}", f))
    return entries


def _plugin_files(name: str):
    """(name in the zip, file) for a plugin module given with -p: its file, or its whole top package."""
    top = name.split(".")[0]
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        raise HarnessError(f"plugin {name!r}: no Python source file to put in the zip "
                           "(is its folder on PYTHONPATH?)")
    if spec.submodule_search_locations:
        yield from _package_files(top)
    else:
        yield f"lib/{top}.py", Path(spec.origin)


def _package_files(package: str):
    init = importlib.import_module(package).__file__
    assert init is not None, package  # a package found by find_spec with a .py origin
    root = Path(init).resolve().parent
    for f in sorted(root.rglob("*")):
        rel = f.relative_to(root)
        if f.is_file() and "__pycache__" not in rel.parts and rel.parts[0] != "_cases" \
                and f.suffix not in (".pyc", ".pyo"):
            yield f"lib/{package}/{rel.as_posix()}", f


def check_request(output: str | Path, plugins: Sequence[str] = ()) -> Path:
    """``output`` as a Path, after checking that the zip can be built there, with ``plugins`` and grade's
    dependencies (before any work: each problem is a HarnessError)."""
    output = _writable(output)
    dependencies()
    for plugin in _shipped(plugins):
        list(_plugin_files(plugin))
    return output


def _writable(output: str | Path) -> Path:
    """``output`` as a Path, after checking that it names a zip in an existing folder."""
    output = Path(output)
    if not re.search(r"\.zip$", output.name, re.I):
        raise HarnessError(f"--build-gradescope {output}: the file name must end in .zip")
    if not output.parent.is_dir():
        raise HarnessError(f"--build-gradescope {output}: no such folder {output.parent}")
    return output


def _shipped(plugins: Sequence[str]) -> list[str]:
    """The plugins whose files go into the zip (the harness's own packages are there already)."""
    return [p for p in plugins if p.split(".")[0] not in PACKAGES]


def build(output: str | Path, case_paths: list, grade_options: list[str],
          plugins: Sequence[str] = ()) -> list[str]:
    """Write the autograder zip to ``output``; returns the names it holds.

    ``plugins`` are plugin modules to ship in ``lib/``; ``grade_options`` should load them (``-p``).
    """
    setup = (FILES / "setup.sh").read_text(encoding="utf-8")
    setup = setup.replace("@DEPENDENCIES@", " ".join(shlex.quote(d) for d in dependencies()))
    run = (FILES / "run_autograder").read_text(encoding="utf-8")
    run = run.replace("@GRADE_OPTIONS@", " ".join(shlex.quote(o) for o in grade_options))
    output = _writable(output)  # (dependencies() above and _plugin_files below raise their own errors)
    tmp = output.with_name(f".{output.name}.tmp")
    try:
        with zipfile.ZipFile(tmp, "w") as zf:
            _add(zf, "setup.sh", setup.encode(), executable=True)
            _add(zf, "run_autograder", run.encode(), executable=True)
            entries = dict([*_case_entries(case_paths), *(e for p in PACKAGES for e in _package_files(p)),
                            *(e for p in _shipped(plugins) for e in _plugin_files(p))])
            for name, f in entries.items():
                _add(zf, name, f.read_bytes())
            names = zf.namelist()
        tmp.replace(output)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return names
