"""cgroup limits on engine processes, on this machine: a fork bomb meets pids.max, children that together
hog memory meet the memory cap, and no cgroup is left behind.  Skipped where grade cannot make cgroups."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import ROOT, fixture_engine

from harness.sandbox import bwrap, cgroups

pytestmark = pytest.mark.slow  # runs grade as a subprocess

CASES = ROOT / "tests" / "cases" / "hostile.yaml"
NAMES = ["plain_add", "times_three", "output_42", "big_output", "negative_output", "uses_log", "uses_exp",
         "uses_tanh", "forward_only", "plain_mul"]
WHERE, WHY = cgroups.here()
needs_cgroups = pytest.mark.skipif(WHERE is None, reason=f"grade cannot make cgroups here: {WHY}")
ROOT_USER = hasattr(os, "geteuid") and os.geteuid() == 0


def _modes() -> list:
    out = []
    for mode in ("bwrap", "uid", "none"):
        why = ""
        if not sys.platform.startswith("linux"):
            why = "sandboxes need Linux"
        elif mode == "bwrap":
            why = bwrap.probe(ROOT_USER)
        elif not ROOT_USER:
            why = f"--sandbox {mode} is only tested as root here"
        out.append(pytest.param(mode, marks=pytest.mark.skipif(bool(why), reason=why or "-")))
    return out


@pytest.fixture
def engine():
    """A fixture engine by name, in a folder every user can read (the slot uids of --sandbox uid too)."""
    folder = Path(tempfile.mkdtemp(prefix="grade-cgroup-test-"))
    folder.chmod(0o755)

    def path(name: str) -> Path:
        written = fixture_engine(name, folder)
        written.chmod(0o644)
        return written

    yield path
    shutil.rmtree(folder, ignore_errors=True)


def graded(grade, engine, name, *args, env=None):
    result = grade("--engine", engine(name), "--cases", CASES, "--format", "json", "--no-blame",
                   "--timeout", "20", "--load-timeout", "20", *args, env=env)
    assert result.code in (0, 1), result.stderr
    statuses = {cid.split("::")[1]: s for cid, s in result.statuses().items()}
    return result, statuses


def _ours() -> set:
    """The cgroups left behind by grade processes that have ended (``grade-PID-N`` with PID gone), in every
    hierarchy this machine offers; live ones may belong to other grade runs on this machine."""
    return {os.path.join(folder, n) for _, folder in (WHERE.parents if WHERE else ()) if os.path.isdir(folder)
            for n in os.listdir(folder) if n.startswith("grade-") and not _alive(n.split("-")[1])}


def _alive(pid: str) -> bool:
    return pid.isdigit() and os.path.exists(f"/proc/{pid}")


@needs_cgroups
@pytest.mark.parametrize("mode", _modes())
def test_a_fork_bomb_meets_pids_max_in_every_mode_and_no_cgroup_is_left(grade, engine, mode):
    before = _ours()
    result, statuses = graded(grade, engine, "fork_bomb", "--sandbox", mode)
    assert statuses == {n: "error" if n == "uses_exp" else "passed" for n in NAMES}, result.stdout
    assert "Resource temporarily unavailable" in result.case("hostile::uses_exp")["message"]
    assert result.report["cgroup"].startswith(f"v{WHERE.version}: pids.max=64")
    assert _ours() <= before  # every engine process's cgroup was removed before grade exited


@needs_cgroups
@pytest.mark.skipif(not ROOT_USER, reason="as another user, RLIMIT_NPROC is not what stops a fork bomb")
def test_without_cgroups_the_same_fork_bomb_is_not_stopped_under_sandbox_none(grade, engine):
    """The control: under --sandbox none as root there is no RLIMIT_NPROC, so only pids.max stops it."""
    env = dict(os.environ, HARNESS_CGROUP="off")
    result, statuses = graded(grade, engine, "fork_bomb", "--sandbox", "none", env=env)
    assert statuses["uses_exp"] == "passed"
    assert result.report["cgroup"] == "none (rlimits only: HARNESS_CGROUP=off)"


@needs_cgroups
@pytest.mark.skipif("memory" not in (WHERE.controllers() if WHERE else ()), reason="no memory controller here")
@pytest.mark.parametrize("cgroup", ["on", "off"])
def test_children_that_together_pass_the_memory_cap_are_killed_only_with_a_cgroup(grade, engine, cgroup):
    """Four children of 400 MiB each stay under RLIMIT_AS (1024 MB); only the cgroup's cap sees their sum."""
    env = dict(os.environ, HARNESS_CGROUP="off") if cgroup == "off" else None
    result, statuses = graded(grade, engine, "memory_hog_children", "--sandbox", "none", "--memory-mb", "1024",
                              env=env)
    if cgroup == "off":
        assert statuses["uses_exp"] == "passed"
        return
    assert statuses == {n: "error" if n == "uses_exp" else "passed" for n in NAMES}, result.stdout
    assert "memory" in result.report["cgroup"] and "=1024M" in result.report["cgroup"]
