"""Read a Jupyter notebook grader-side (nbformat) into the code cells the engine process runs.

nbformat, not the json module: it upgrades old formats (v3's worksheets) to v4,
joins multi-line sources and knows which versions exist, so an unknown one is
named as such.  It never runs in the engine process, which gets only
``[[cell number, source], ...]`` in its hello.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from harness.errors import HarnessError

MAX_NOTEBOOK_BYTES = 16 << 20   # outputs (plots) included
MAX_CODE_BYTES = 4 << 20        # the code cells' sources together


class NotebookError(HarnessError):
    """A file that cannot be read as a notebook; the message names it and says why."""


def read_cells(path: str | os.PathLike) -> list[tuple[int, str]]:
    """The code cells of the notebook at ``path``: (its 1-based place among all cells, source), in order."""
    import nbformat
    from nbformat.reader import NotJSONError

    name = Path(path).name
    try:
        size = os.path.getsize(path)
        if size > MAX_NOTEBOOK_BYTES:
            raise NotebookError(f"{name}: the notebook is {size >> 20} MB, more than the "
                                f"{MAX_NOTEBOOK_BYTES >> 20} MB a notebook may have; clear its outputs "
                                "(Edit > Clear all outputs) and hand it in again")
        with open(path, "rb") as f:
            text = f.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise NotebookError(f"{name}: not a notebook (not UTF-8 text)") from None
    except OSError as e:
        raise NotebookError(f"{name}: cannot read the notebook: {e.strerror or e}") from None
    try:
        with warnings.catch_warnings():  # e.g. MissingIDFieldWarning: nothing may reach grade's stderr
            warnings.simplefilter("ignore")
            nb = nbformat.reads(text, as_version=4, capture_validation_error={})
    except NotJSONError:
        raise NotebookError(f"{name}: not a notebook (its text is not JSON); was it saved from Jupyter "
                            "or Colab as .ipynb?") from None
    except ValueError as e:  # json errors, and nbformat's NBFormatError ("Unsupported nbformat version 9")
        raise NotebookError(f"{name}: not a notebook nbformat can read ({_first_line(e)})") from None
    except Exception as e:  # nbformat's upgrade of an old notebook, e.g. v3 without worksheets
        raise NotebookError(f"{name}: a malformed notebook ({type(e).__name__}: {_first_line(e)})") from None
    language = _language(nb)
    if language and language != "python":
        raise NotebookError(f"{name}: a {language} notebook, not a Python one")
    raw = nb.get("cells") if isinstance(nb, dict) else None
    if not isinstance(raw, list):
        raise NotebookError(f"{name}: a malformed notebook (no list of cells)")
    cells = []
    for number, cell in enumerate(raw, 1):
        if isinstance(cell, dict) and cell.get("cell_type") == "code":
            source = cell.get("source", "")
            source = "".join(source) if isinstance(source, list) else source
            if isinstance(source, str) and source.strip():
                cells.append((number, source))
    if not cells:
        raise NotebookError(f"{name}: the notebook holds no code cell")
    if sum(len(s) for _, s in cells) > MAX_CODE_BYTES:
        raise NotebookError(f"{name}: its code cells hold more than {MAX_CODE_BYTES >> 20} MB of code")
    return cells


def _language(nb) -> str:
    meta = nb.get("metadata") if isinstance(nb, dict) else None
    if not isinstance(meta, dict):
        return ""
    for key, field in (("language_info", "name"), ("kernelspec", "language")):
        value = meta.get(key, {}).get(field) if isinstance(meta.get(key), dict) else None
        if isinstance(value, str) and value:
            return value.lower()
    return ""


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text if len(text) <= 200 else text[:197] + "..."


MAX_FOLDER_NOTEBOOKS = 5


def submission_fields(spec: str, mode: str) -> dict:
    """What the engine process needs beyond the spec: a notebook's cells, or why it cannot be read;
    for a folder, the cells of the notebooks in it (tried when no .py file holds an engine)."""
    from harness.intake import PROBLEMS

    fields: dict = {"notebook_mode": mode}
    if spec in PROBLEMS:
        fields["unreadable"] = PROBLEMS[spec]
    elif spec.lower().endswith(".ipynb") and os.path.isfile(spec):
        try:
            fields["notebook"] = {"name": Path(spec).name, "cells": read_cells(spec)}
        except NotebookError as e:
            fields["unreadable"] = str(e)
    elif os.path.isdir(spec):
        found, notes = [], []
        for path in folder_notebooks(Path(spec))[:MAX_FOLDER_NOTEBOOKS]:
            rel = path.relative_to(spec).as_posix()
            try:
                found.append({"name": rel, "cells": read_cells(path)})
            except NotebookError as e:
                notes.append(f"{rel}: skipped, {str(e).split(': ', 1)[-1]}")
        if found:
            fields["notebooks"] = found
        if notes:
            fields["notebook_notes"] = notes
    return fields


def folder_notebooks(folder: Path, most_files: int = 5000, depth: int = 6) -> list[Path]:
    """The notebooks under ``folder``, shallowest first (hidden folders and .ipynb_checkpoints left out)."""
    found: list[Path] = []
    seen = 0
    base = len(folder.parts)
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "__")) and len(here.parts) - base < depth)
        for name in sorted(filenames):
            seen += 1
            path = here / name
            if name.lower().endswith(".ipynb") and not name.startswith(".") and path.is_file() \
                    and not path.is_symlink():
                found.append(path)
        if seen > most_files:
            break
    return sorted(found, key=lambda p: (len(p.parts), p.as_posix()))
