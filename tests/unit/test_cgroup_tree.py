"""Finding a cgroup for engine processes and writing its limits (harness.sandbox.cgroups), on a fake tree."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.sandbox import cgroups
from harness.sandbox.cgroups import Caps, Group, Hierarchy, create, find, parse_mounts, parse_self

V1_SELF = "8:pids:/\n4:memory:/job/42\n2:cpu,cpuacct:/\n0::/\n"


def mountinfo(root: Path, *, v2: bool = True, v1: tuple = ("pids", "memory")) -> str:
    lines = ["31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755"]
    if v2:
        lines.append(f"40 31 0:40 / {root / 'unified'} rw,nosuid shared:9 - cgroup2 cgroup2 rw")
    for n, name in enumerate(v1):
        lines.append(f"{41 + n} 31 0:{41 + n} / {root / name} rw,relatime - cgroup cgroup rw,{name}")
    return "\n".join(lines) + "\n"


def v2_tree(root: Path, own: str = "", controllers: str = "cpu memory pids", enabled: str = "") -> Path:
    folder = root / "unified" / own.strip("/")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cgroup.controllers").write_text(controllers + "\n")
    (folder / "cgroup.subtree_control").write_text(enabled + "\n")
    (folder / "cgroup.procs").write_text("")
    return folder


def v1_tree(root: Path) -> dict:
    folders = {"pids": root / "pids", "memory": root / "memory" / "job" / "42"}
    for folder in folders.values():
        folder.mkdir(parents=True)
        (folder / "cgroup.procs").write_text("")
    return folders


def test_mountinfo_and_self_cgroup_are_parsed(tmp_path):
    mounts = parse_mounts(mountinfo(tmp_path))
    assert [(m[2], m[3]) for m in mounts] == [("cgroup2", set()), ("cgroup", {"rw", "pids"}),
                                              ("cgroup", {"rw", "memory"})]
    assert parse_self(V1_SELF) == {"pids": "/", "memory": "/job/42", "cpu": "/", "cpuacct": "/", "": "/"}


def test_v2_with_both_controllers_handed_to_children_is_chosen(tmp_path):
    folder = v2_tree(tmp_path, "/grader.service", enabled="memory pids")
    where, why = find(mountinfo(tmp_path), "0::/grader.service\n", {})
    assert (where, why) == (Hierarchy(2, (("pids", str(folder)), ("memory", str(folder)))), "")


def test_v2_controllers_available_but_not_enabled_are_enabled_when_the_cgroup_allows_it(tmp_path):
    folder = v2_tree(tmp_path, "/delegated", enabled="cpu")
    where, _ = find(mountinfo(tmp_path, v1=()), "0::/delegated\n", {})
    assert where is not None and where.version == 2
    assert (folder / "cgroup.subtree_control").read_text() == "+memory +pids"  # what was written


def test_v2_without_the_controllers_falls_back_to_v1_and_says_nothing_is_wrong(tmp_path):
    v2_tree(tmp_path, controllers="")  # as on a hybrid machine: the unified hierarchy holds no controller
    folders = v1_tree(tmp_path)
    where, why = find(mountinfo(tmp_path), V1_SELF, {})
    assert why == ""
    assert where == Hierarchy(1, (("pids", str(folders["pids"])), ("memory", str(folders["memory"]))))


def test_no_usable_hierarchy_gives_the_reason(tmp_path):
    v2_tree(tmp_path, controllers="cpu")
    where, why = find(mountinfo(tmp_path, v1=()), "0::/\n", {})
    assert where is None
    assert "the memory and pids controller(s) are not delegated to it" in why
    assert "no writable cgroup v1 pids or memory hierarchy" in why


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write any folder")
def test_a_v2_cgroup_grade_cannot_write_is_not_used(tmp_path):
    folder = v2_tree(tmp_path, enabled="memory pids")
    folder.chmod(0o555)
    try:
        where, why = find(mountinfo(tmp_path, v1=()), "0::/\n", {})
    finally:
        folder.chmod(0o755)
    assert where is None and "not writable by grade" in why


def test_harness_cgroup_names_the_parent_or_turns_cgroups_off(tmp_path):
    v1_tree(tmp_path)
    chosen = v2_tree(tmp_path, "/mine", enabled="pids memory")
    assert find(mountinfo(tmp_path), V1_SELF, {"HARNESS_CGROUP": "off"}) == (None, "HARNESS_CGROUP=off")
    where, _ = find(mountinfo(tmp_path), V1_SELF, {"HARNESS_CGROUP": str(chosen)})
    assert where is not None and where.version == 2 and dict(where.parents)["memory"] == str(chosen)
    where, why = find(mountinfo(tmp_path), V1_SELF, {"HARNESS_CGROUP": str(tmp_path / "absent")})
    assert where is None and why.startswith(f"HARNESS_CGROUP={tmp_path / 'absent'}: ")


def test_a_v2_group_gets_pids_max_memory_max_no_swap_and_a_whole_group_oom_kill(tmp_path):
    parent = v2_tree(tmp_path, enabled="memory pids")
    group = create(Hierarchy(2, (("pids", str(parent)), ("memory", str(parent)))), Caps(64, 2048))
    (folder,) = map(Path, group.folders)
    assert folder.parent == parent and folder.name.startswith(f"grade-{os.getpid()}-")
    assert {f.name: f.read_text() for f in folder.iterdir()} == {
        "pids.max": "64", "memory.max": str(2048 << 20), "memory.swap.max": "0", "memory.oom.group": "1"}


def test_a_v1_group_is_one_folder_per_hierarchy_with_its_own_files(tmp_path):
    folders = v1_tree(tmp_path)
    where = Hierarchy(1, (("pids", str(folders["pids"])), ("memory", str(folders["memory"]))))
    group = create(where, Caps(32, 512))
    pids, memory = map(Path, group.folders)
    assert (pids.parent, memory.parent) == (folders["pids"], folders["memory"])
    assert {f.name: f.read_text() for f in pids.iterdir()} == {"pids.max": "32"}
    assert {f.name: f.read_text() for f in memory.iterdir()} == {
        "memory.limit_in_bytes": str(512 << 20), "memory.memsw.limit_in_bytes": str(512 << 20)}


def test_only_the_caps_that_are_set_are_written_and_described(tmp_path):
    folders = v1_tree(tmp_path)
    where = Hierarchy(1, (("pids", str(folders["pids"])), ("memory", str(folders["memory"]))))
    assert Caps(None, 512).describe(where) == "v1: memory.limit_in_bytes=512M"
    assert Caps(64, 2048).describe(Hierarchy(2, (("pids", "/x"), ("memory", "/x")))) == (
        "v2: pids.max=64, memory.max=2048M")
    assert Caps(None, None).describe(where) == ""
    group = create(where, Caps(None, 512))
    assert [p.name for p in Path(group.folders[0]).iterdir()] == []


def test_the_engine_process_joins_its_groups_before_its_command_runs(tmp_path):
    group = Group(1, ("/cg/pids/grade-1-1", "/cg/memory/grade-1-1"))
    argv = group.join_command(["bwrap", "--", "python", "-m", "worker"])
    assert argv[:5] == ["/bin/sh", "-c", cgroups.JOIN, "sh", "/cg/pids/grade-1-1/cgroup.procs"]
    assert argv[5:] == ["/cg/memory/grade-1-1/cgroup.procs", "--", "bwrap", "--", "python", "-m", "worker"]


def test_the_shell_writes_its_own_pid_into_each_group_then_execs(tmp_path):
    """The shell's `echo 0 > cgroup.procs` (0: the writer itself) runs before the command; a real
    cgroupfs reads 0 as 'this process', here it is just a file."""
    import subprocess

    folders = [tmp_path / "a", tmp_path / "b"]
    for f in folders:
        f.mkdir()
    argv = Group(1, tuple(map(str, folders))).join_command(["/bin/sh", "-c", "cat \"$0\" \"$1\"",
                                                            *(str(f / "cgroup.procs") for f in folders)])
    assert subprocess.run(argv, capture_output=True, text=True).stdout == "0\n0\n"


def test_an_out_of_memory_kill_is_read_from_memory_events_or_oom_control(tmp_path):
    v2, v1 = tmp_path / "v2", tmp_path / "v1"
    v2.mkdir()
    v1.mkdir()
    (v2 / "memory.events").write_text("low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\n")
    (v1 / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 0\n")
    assert Group(2, (str(v2),), 512).out_of_memory()
    assert not Group(1, (str(v1),), 512).out_of_memory()


def test_applied_names_the_limits_or_the_reason_for_rlimits_only(monkeypatch):
    monkeypatch.setitem(cgroups._state, "found", (None, "no writable cgroup v1 pids or memory hierarchy"))
    assert cgroups.applied(Caps(64, 2048)) == "none (rlimits only: no writable cgroup v1 pids or memory hierarchy)"
    assert cgroups.for_engine(Caps(64, 2048)) is None
    monkeypatch.setitem(cgroups._state, "found", (Hierarchy(2, (("pids", "/x"), ("memory", "/x"))), ""))
    assert cgroups.applied(Caps(64, None)) == "v2: pids.max=64"


def test_empty_cgroups_of_grade_processes_that_ended_are_removed(tmp_path):
    parent = v2_tree(tmp_path, enabled="memory pids")
    for name in ("grade-999999999-1", f"grade-{os.getpid()}-1", "grade-999999999-2", "other"):
        (parent / name).mkdir()
    (parent / "grade-999999999-2" / "busy").write_text("")  # not empty: as a cgroup with a process left
    cgroups._remove_stale(Hierarchy(2, (("pids", str(parent)), ("memory", str(parent)))))
    assert {p.name for p in parent.iterdir() if p.is_dir()} == {
        "grade-999999999-2", f"grade-{os.getpid()}-1", "other"}


def test_a_death_by_the_cgroups_memory_cap_says_so(tmp_path):
    import tempfile

    from harness.running.runner import Limits, Worker

    class Dead:
        def wait(self, timeout=None):
            return -9

    (tmp_path / "memory.events").write_text("oom 1\noom_kill 1\n")
    worker = object.__new__(Worker)  # only what death() reads: no process is started
    worker.proc, worker.limits, worker.output = Dead(), Limits(), tempfile.TemporaryFile()
    worker.cgroup = Group(2, (str(tmp_path),), 1024)
    assert worker.death() == ("the engine process was killed by SIGKILL (the out-of-memory killer: the engine "
                              "process and what it started used more than their 1024 MB together, the "
                              "cgroup's memory cap)")
    (tmp_path / "memory.events").write_text("oom 0\noom_kill 0\n")
    assert worker.death() == "the engine process was killed by SIGKILL"
    worker.output.close()


def test_killing_a_group_one_by_one_rekills_every_listed_pid_and_waits_for_the_dying_without_spinning(monkeypatch):
    listings = iter(["11\n12\n", "11\n12\n13\n", "11\n", ""])  # 13 was forked meanwhile; then they exit
    killed, naps = [], []
    monkeypatch.setattr(cgroups, "_read", lambda path: next(listings))
    monkeypatch.setattr(cgroups.os, "kill", lambda pid, sig: killed.append(pid))
    monkeypatch.setattr(cgroups.time, "sleep", naps.append)
    assert cgroups.kill(Group(1, ("/fake/pids",))) is True
    assert sorted(killed) == [11, 11, 11, 12, 12, 13]
    assert len(naps) == 1  # only the pass that found nothing new waited


def test_killing_a_group_gives_up_and_says_so_when_processes_never_leave(monkeypatch):
    monkeypatch.setattr(cgroups, "_read", lambda path: "21\n")
    monkeypatch.setattr(cgroups.os, "kill", lambda pid, sig: None)
    monkeypatch.setattr(cgroups.time, "sleep", lambda s: None)
    assert cgroups.kill(Group(1, ("/fake/pids",))) is False


@pytest.mark.parametrize("contained, walks", [(True, False), (False, True)])
@pytest.mark.parametrize("joined", [True, False], ids=["killed with its cgroup", "killed before it joined one"])
def test_after_a_cgroups_kill_the_reaper_waits_without_walking_proc(monkeypatch, contained, walks, joined):
    import subprocess
    import sys

    from harness.sandbox import reaper

    scans = []
    monkeypatch.setitem(reaper._state, "subreaper", False)  # no orphans to reap: only the walk would scan
    real = reaper._processes
    monkeypatch.setattr(reaper, "_processes", lambda: scans.append(1) or real())
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    if joined:
        proc.kill()  # what the cgroup's kill did; else it was killed before joining, and is still running
    reaper.kill(proc, contained=contained)
    assert proc.returncode is not None  # dead and waited for, either way
    assert bool(scans) is walks


@pytest.mark.parametrize("listed", [True, False], ids=["children listed by the kernel", "the whole table scanned"])
def test_a_dead_orphan_is_collected_and_a_live_child_left_alone(monkeypatch, listed):
    """The grader, a subreaper, collects the zombies of the orphans it adopted (here: children no Popen
    waits for), from its own list of children where the kernel gives one, without reading every process."""
    import os
    import signal

    from harness.sandbox import reaper

    monkeypatch.setitem(reaper._state, "subreaper", True)
    scans: list = []
    real = reaper._processes
    monkeypatch.setattr(reaper, "_processes", lambda: scans.append(1) or real())
    if not listed:
        monkeypatch.setattr(reaper, "_children", lambda: None)
    dead = os.fork()
    if dead == 0:
        os._exit(0)
    live = os.fork()
    if live == 0:
        signal.pause()
        os._exit(0)
    try:
        while reaper._alive(dead):  # until it is a zombie
            os.sched_yield()
        reaper.reap()
        with pytest.raises(ChildProcessError):  # collected by reap()
            os.waitpid(dead, os.WNOHANG)
        assert os.waitpid(live, os.WNOHANG) == (0, 0)  # still running, still ours
        assert bool(scans) is not listed
    finally:
        os.kill(live, signal.SIGKILL)
        os.waitpid(live, 0)
