"""LMS bulk downloads and archives, in-process: grouping per student, and safe unpacking."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.intake import archives, lms
from harness.intake.archives import ArchiveError, Caps

ENGINE = (Path(__file__).resolve().parent.parent / "engines" / "micrograd_full.py").read_text()


def canvas_download(folder: Path) -> Path:
    """Canvas: one file per upload, prefixed with the student, [LATE_], user id and submission id."""
    folder.mkdir(parents=True)
    (folder / "smithjane_1001_5001_engine.py").write_text(ENGINE)
    (folder / "doejohn_LATE_1002_5002_engine-1.py").write_text(ENGINE)
    (folder / "doejohn_LATE_1002_5002_nn.py").write_text("from engine import Value\n")
    (folder / "leeann_1003_5003_hw1.ipynb").write_text("{}")
    return folder


def moodle_download(folder: Path) -> Path:
    """Moodle: one folder per student and plugin."""
    jane = folder / "Jane Smith_1001_assignsubmission_file_"
    jane.mkdir(parents=True)
    (jane / "engine.py").write_text(ENGINE)
    (folder / "Jane Smith_1001_assignsubmission_onlinetext_").mkdir()
    (folder / "Jane Smith_1001_assignsubmission_onlinetext_" / "onlinetext.html").write_text("<p>hi</p>")
    john = folder / "John Doe_1002_assignsubmission_file_"
    (john / "src").mkdir(parents=True)
    (john / "src" / "engine.py").write_text(ENGINE)
    (john / "README.md").write_text("my engine")
    return folder


def zip_of(folder: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w") as zf:
        for p in sorted(folder.rglob("*")):
            zf.write(p, p.relative_to(folder.parent).as_posix())
    return target


def by_id(subs: list) -> dict:
    return {s.id: s for s in subs}


def test_canvas_files_are_grouped_per_student(tmp_path):
    subs = by_id(lms.expand(str(canvas_download(tmp_path / "dl")), tmp_path / "work"))
    assert list(subs) == ["doejohn_1002", "leeann_1003", "smithjane_1001"]
    john = Path(subs["doejohn_1002"].path)
    assert sorted(p.name for p in john.iterdir()) == ["engine.py", "nn.py"]  # engine-1.py renamed back
    assert Path(subs["smithjane_1001"].path).name == "engine.py"  # one file: graded as that file
    assert Path(subs["leeann_1003"].path).name == "hw1.ipynb"
    assert subs["smithjane_1001"].source == f"{tmp_path / 'dl'}: smithjane_1001_5001_engine.py"
    assert not any(s.problem for s in subs.values())


@pytest.mark.parametrize("zipped", [False, True])
def test_moodle_folders_are_grouped_per_student(tmp_path, zipped):
    download = moodle_download(tmp_path / "Assignment 1")
    target = zip_of(download, tmp_path / "moodle.zip") if zipped else download
    subs = by_id(lms.expand(str(target), tmp_path / "work"))
    assert list(subs) == ["Jane Smith_1001", "John Doe_1002"]
    assert Path(subs["Jane Smith_1001"].path).name == "engine.py"  # the onlinetext page is left out
    john = Path(subs["John Doe_1002"].path)
    assert sorted(p.relative_to(john).as_posix() for p in john.rglob("*") if p.is_file()) == [
        "README.md", "src/engine.py"]


def test_moodle_flat_files_are_grouped_too(tmp_path):
    dl = tmp_path / "dl"
    dl.mkdir()
    (dl / "Jane Smith_1001_assignsubmission_file_engine.py").write_text(ENGINE)
    (dl / "Jane Smith_1001_assignsubmission_file_notes.txt").write_text("notes")
    subs = lms.expand(str(dl), tmp_path / "work")
    assert [(s.id, sorted(p.name for p in Path(s.path).iterdir())) for s in subs] == [
        ("Jane Smith_1001", ["engine.py", "notes.txt"])]


def test_blackboard_keeps_the_latest_attempt(tmp_path):
    dl = tmp_path / "dl"
    dl.mkdir()
    (dl / "HW1_jsmith_attempt_2026-01-01-10-00-00_engine.py").write_text("old")
    (dl / "HW1_jsmith_attempt_2026-01-01-10-00-00.txt").write_text("Name: Jane Smith (jsmith)")
    (dl / "HW1_jsmith_attempt_2026-01-02-09-30-00_engine.py").write_text(ENGINE)
    (dl / "HW1_jsmith_attempt_2026-01-02-09-30-00.txt").write_text("Name: Jane Smith (jsmith)")
    (dl / "HW1_jdoe_attempt_2026-01-02-11-00-00_hw.ipynb").write_text("{}")
    subs = by_id(lms.expand(str(dl), tmp_path / "work"))
    assert list(subs) == ["jdoe", "jsmith"]
    assert Path(subs["jsmith"].path).read_text() == ENGINE


def test_a_plain_folder_is_one_submission_per_child(tmp_path):
    dl = tmp_path / "dl"
    (dl / "alice").mkdir(parents=True)
    (dl / "bob.py").write_text(ENGINE)
    (dl / "carol.ipynb").write_text("{}")
    (dl / "notes.txt").write_text("not a submission")
    (dl / "__MACOSX").mkdir()
    src = tmp_path / "dave_src" / "hw"
    src.mkdir(parents=True)
    (src / "engine.py").write_text(ENGINE)
    zip_of(src, dl / "dave.zip")
    subs = by_id(lms.expand(str(dl), tmp_path / "work"))
    assert list(subs) == ["alice", "bob", "carol", "dave"]
    assert subs["alice"].path == str(dl / "alice") and subs["alice"].source == str(dl / "alice")
    assert Path(subs["dave"].path).name == "engine.py" and subs["dave"].source == str(dl / "dave.zip")


def test_a_students_own_archive_is_unpacked_in_their_folder(tmp_path):
    dl = tmp_path / "dl"
    dl.mkdir()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        data = ENGINE.encode()
        info = tarfile.TarInfo("hw1/micrograd/engine.py")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    (dl / "smithjane_1001_5001_hw1.tar.gz").write_bytes(buf.getvalue())
    (sub,) = lms.expand(str(dl), tmp_path / "work")
    assert sub.path.endswith("/hw1/micrograd/engine.py") and not sub.problem  # one file in folders: that file
    assert Path(sub.path).read_text() == ENGINE


def test_a_student_archive_bomb_is_that_students_problem_only(tmp_path):
    dl = tmp_path / "dl"
    dl.mkdir()
    with zipfile.ZipFile(dl / "smithjane_1001_5001_hw.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big.bin", b"\0" * (3 << 20))
    (dl / "doejohn_1002_5002_engine.py").write_text(ENGINE)
    subs = by_id(lms.expand(str(dl), tmp_path / "work"))
    assert subs["smithjane_1001"].problem.startswith("hw.zip: refused as an archive bomb")
    assert not subs["doejohn_1002"].problem


def test_a_missing_download_is_a_clear_error(tmp_path):
    with pytest.raises(HarnessError, match=r"^--submissions .*missing: no such folder or zip$"):
        lms.expand(str(tmp_path / "missing"), tmp_path / "work")


# -- archives ----------------------------------------------------------------------------------------

def _zip(path: Path, entries: dict, method=zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


@pytest.mark.parametrize("name", ["../evil.py", "a/../../evil.py", "/etc/evil.py", "C:/evil.py", "..\\evil.py"])
def test_path_traversal_refuses_the_archive(tmp_path, name):
    archive = _zip(tmp_path / "a.zip", {"ok.py": "x = 1", name: "evil"})
    with pytest.raises(ArchiveError, match=r"^a.zip: refused: the entry"):
        archives.extract(archive, tmp_path / "out")
    assert not (tmp_path / "evil.py").exists()


def test_symlinks_are_left_out(tmp_path):
    archive = tmp_path / "links.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        link = zipfile.ZipInfo("link.py")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
        zf.writestr("engine.py", "x = 1")
    archives.extract(archive, tmp_path / "out")
    assert sorted(os.listdir(tmp_path / "out")) == ["engine.py"]
    tar = tmp_path / "links.tar"
    with tarfile.open(tar, "w") as tf:
        for kind, name in ((tarfile.SYMTYPE, "sym.py"), (tarfile.LNKTYPE, "hard.py")):
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, "/etc/passwd"
            tf.addfile(info)
    archives.extract(tar, tmp_path / "out2")
    assert os.listdir(tmp_path / "out2") == []


def test_a_zip_bomb_is_refused_by_its_ratio(tmp_path):
    archive = _zip(tmp_path / "bomb.zip", {"zeros.bin": b"\0" * (3 << 20)})
    with pytest.raises(ArchiveError, match=r"^bomb.zip: refused as an archive bomb"):
        archives.extract(archive, tmp_path / "out")


def test_the_bytes_written_are_counted_not_the_sizes_claimed(tmp_path):
    archive = _zip(tmp_path / "many.zip", {f"f{i}.txt": os.urandom(4096) for i in range(10)},
                   method=zipfile.ZIP_STORED)
    with pytest.raises(ArchiveError, match=r"unpacks to more than 0 MB"):
        archives.extract(archive, tmp_path / "out", Caps(total_bytes=30000))


def test_too_many_entries_are_refused(tmp_path):
    archive = _zip(tmp_path / "many.zip", {f"f{i}.py": "" for i in range(20)})
    with pytest.raises(ArchiveError, match=r"^many.zip: refused: more than 10 entries$"):
        archives.extract(archive, tmp_path / "out", Caps(entries=10))


def test_a_tar_bomb_is_refused(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo("zeros.bin")
        info.size = 3 << 20
        tf.addfile(info, io.BytesIO(b"\0" * info.size))
    (tmp_path / "bomb.tar.gz").write_bytes(buf.getvalue())
    with pytest.raises(ArchiveError, match=r"^bomb.tar.gz: refused as an archive bomb"):
        archives.extract(tmp_path / "bomb.tar.gz", tmp_path / "out")


def test_a_corrupt_archive_is_named(tmp_path):
    (tmp_path / "broken.zip").write_bytes(b"PK\3\4 not really")
    with pytest.raises(ArchiveError, match=r"^broken.zip: not an archive that can be unpacked"):
        archives.extract(tmp_path / "broken.zip", tmp_path / "out")


def test_unpacked_files_are_readable_and_not_executable(tmp_path):
    archive = tmp_path / "modes.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("run.sh")
        info.external_attr = (stat.S_IFREG | 0o4777) << 16
        zf.writestr(info, "#!/bin/sh\n")
    archives.extract(archive, tmp_path / "out")
    assert stat.S_IMODE((tmp_path / "out" / "run.sh").stat().st_mode) == 0o644 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
