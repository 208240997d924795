"""``--submissions``: a folder of submissions, or an LMS's "download all submissions" folder or zip.

The LMS layouts (each student's files are grouped into one submission, named after the student):

- **Canvas**: one file per uploaded file, ``studentname_[LATE_]userid_submissionid_originalname``
  (a re-upload's name gets ``-1``, ``-2``: taken off again); submission id ``studentname_userid``.
- **Moodle**: one folder per student and plugin, ``Full Name_12345_assignsubmission_file_``
  (and ``..._onlinetext_``), or the same prefix on each file when folders were off;
  submission id ``Full Name_12345``.
- **Blackboard**: ``Assignment_username_attempt_YYYY-MM-DD-HH-MM-SS_filename`` plus one ``.txt``
  per attempt; only the latest attempt is graded; submission id ``username``.

Anything else is a plain folder: each child folder, ``.py``, ``.ipynb`` or archive is one
submission, named after it.  Archives (the download itself, and a student's own zip or tar)
are unpacked grader-side into a private temporary folder (``harness.intake.archives``);
nothing is run.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.intake.archives import ArchiveError, Caps, archive_stem, extract, is_archive

GRADED_SUFFIXES = (".py", ".ipynb")
DOWNLOAD_CAPS = Caps(total_bytes=2 << 30, entries=50000)
CANVAS = re.compile(r"^(?P<student>[^_]+)_(?:LATE_)?(?P<uid>\d+)_(?P<sid>\d+)_(?P<name>.+)$")
MOODLE = re.compile(r"^(?P<student>.+?)_(?P<uid>\d+)_assignsubmission_(?P<plugin>[a-z]+)_(?P<name>.*)$")
BLACKBOARD = re.compile(r"^(?P<assignment>.+)_(?P<student>[^_]+)_attempt_"
                        r"(?P<when>\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2})(?:_(?P<name>.+)|\.txt)$")
_REUPLOAD = re.compile(r"^(?P<stem>.+)-\d+(?P<suffix>\.[^.]+)$")


@dataclass
class Submission:
    """One student's submission: its id, what to grade, how to show it, and why it cannot be graded."""

    id: str
    path: str           # a file or folder (in a temporary folder for LMS downloads and archives)
    source: str         # shown in reports as the submission's source
    problem: str = ""   # non-empty: every case is an error with this message


def expand(target: str, workdir: Path) -> list[Submission]:
    """The submissions in ``target`` (a folder or a zip), unpacked under ``workdir`` where needed."""
    path = Path(target)
    workdir.mkdir(parents=True, exist_ok=True)
    if path.is_file() and is_archive(path):
        unpacked = workdir / "download"
        try:
            extract(path, unpacked, DOWNLOAD_CAPS)
        except ArchiveError as e:
            raise HarnessError(f"--submissions {target}: {e}") from None
        folder, shown = _single_child(unpacked), target
    elif path.is_dir():
        folder, shown = path, target
    else:
        raise HarnessError(f"--submissions {target}: no such folder or zip")
    entries = [p for p in sorted(folder.iterdir(), key=lambda p: p.name) if not p.name.startswith((".", "_"))]
    kind, groups = detect(entries)
    if kind == "plain":
        return [_plain(p, workdir, shown, folder) for p in entries if _is_plain_submission(p)]
    return [_group(student, files, workdir, shown) for student, files in groups.items()]


def _single_child(folder: Path) -> Path:
    """A zip holding one folder (the download's own name) stands for that folder."""
    children = [p for p in folder.iterdir() if not p.name.startswith((".", "__MACOSX"))]
    return children[0] if len(children) == 1 and children[0].is_dir() else folder


def detect(entries: list[Path]) -> tuple[str, dict]:
    """(canvas | moodle | blackboard | plain, student id -> [(file or folder, original name)])."""
    best: tuple[str, dict, int] = ("plain", {}, 0)
    for kind, group in (("canvas", _canvas), ("moodle", _moodle), ("blackboard", _blackboard)):
        groups: dict = defaultdict(list)
        matched = 0
        for p in entries:
            found = group(p)
            if found is not None:
                matched += 1
                student, item = found
                if item is not None:
                    groups[student].append(item)
        if matched > best[2] and matched * 2 > len(entries):
            best = (kind, dict(groups), matched)
    kind, groups, _ = best
    if kind == "blackboard":
        groups = {s: _latest_attempt(items) for s, items in groups.items()}
    return kind, groups


def _canvas(p: Path):
    m = CANVAS.match(p.name)
    if not m or not p.is_file():
        return None
    return f"{m['student']}_{m['uid']}", (p, m["name"], "")


def _moodle(p: Path):
    m = MOODLE.match(p.name)
    if not m:
        return None
    student = f"{m['student']}_{m['uid']}"
    if p.is_dir():
        return student, (p, "", m["plugin"])
    return student, (p, m["name"] or p.name, m["plugin"])


def _blackboard(p: Path):
    m = BLACKBOARD.match(p.name)
    if not m or not p.is_file():
        return None
    if m["name"] is None:  # the attempt's .txt: who, when, comments
        return m["student"], None
    return m["student"], (p, m["name"], m["when"])


def _latest_attempt(items: list) -> list:
    latest = max(when for _, _, when in items)
    return [(path, name, "") for path, name, when in items if when == latest]


def _is_plain_submission(p: Path) -> bool:
    return not p.is_symlink() and (p.is_dir() or (p.is_file() and (p.suffix in GRADED_SUFFIXES or is_archive(p))))


def _safe_id(text: str) -> str:
    return text.replace("/", "_").replace("\\", "_").replace("\0", "") or "submission"


def _plain(p: Path, workdir: Path, shown: str, folder: Path) -> Submission:
    sid = archive_stem(p) if is_archive(p) else (p.stem if p.is_file() else p.name)
    source = str(p) if folder == Path(shown) else f"{shown}: {p.name}"  # else: inside an unpacked zip
    if p.is_file() and is_archive(p):
        dest = _private(workdir, sid)
        try:
            extract(p, dest)
        except ArchiveError as e:
            return Submission(sid, str(dest), source, problem=str(e))
        return Submission(sid, _what_to_grade(dest), source)
    return Submission(sid, str(p), source)


def _private(workdir: Path, sid: str) -> Path:
    dest = Path(tempfile.mkdtemp(prefix="s-", dir=workdir)) / _safe_id(sid)
    dest.mkdir(mode=0o755)
    dest.parent.chmod(0o755)  # readable by an engine process that dropped root (--user)
    return dest


def _group(student: str, items: list, workdir: Path, shown: str) -> Submission:
    """One student's files, copied (archives unpacked) into a folder of their own."""
    dest = _private(workdir, student)
    originals: list[str] = []
    problems: list[str] = []
    for item, name, plugin in items:
        originals.append(item.name)
        if item.is_dir():  # Moodle: the student's folder for one plugin (onlinetext: an HTML page)
            if plugin != "file":
                continue
            for child in sorted(item.rglob("*")):
                if child.is_file() and not child.is_symlink():
                    _place(child, dest / child.relative_to(item), dest, problems)
            continue
        if plugin not in ("", "file"):  # Moodle's onlinetext and the like: not code
            continue
        _place(item, dest / _original_name(name, items), dest, problems)
    source = f"{shown}: {', '.join(originals[:5])}" + (", ..." if len(originals) > 5 else "")
    if problems:
        return Submission(student, str(dest), source, problem="; ".join(problems))
    if not any(dest.rglob("*")):
        return Submission(student, str(dest), source, problem=f"{student}: the download holds no file "
                                                             "of this student's to grade")
    return Submission(student, _what_to_grade(dest), source)


def _original_name(name: str, items: list) -> str:
    """Canvas renames a re-upload engine.py to engine-1.py: the original name, unless another file has it."""
    m = _REUPLOAD.match(name)
    if m and not any(other == m["stem"] + m["suffix"] for _, other, _ in items):
        return m["stem"] + m["suffix"]
    return name


def _place(src: Path, target: Path, dest: Path, problems: list) -> None:
    """Copy one of a student's files into their folder; unpack it there if it is an archive."""
    if src.is_symlink() or not src.is_file():
        return
    if is_archive(src):
        try:
            extract(src, target.parent if target.parent != dest else dest)
        except ArchiveError as e:  # named as the student named it
            problems.append(str(e).replace(src.name, target.name, 1))
        return
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    if not target.exists():
        shutil.copyfile(src, target)
        target.chmod(0o644)


def _what_to_grade(folder: Path) -> str:
    """A folder holding one .py or .ipynb file (possibly inside one folder) is that file; else the folder."""
    inside = [p for p in folder.iterdir() if not p.name.startswith((".", "__MACOSX"))]
    if len(inside) == 1 and inside[0].is_dir():
        return _what_to_grade(inside[0])
    if len(inside) == 1 and inside[0].suffix in GRADED_SUFFIXES:
        return str(inside[0])
    return str(folder)
