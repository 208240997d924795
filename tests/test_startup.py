"""Start-up: engine processes spawn before the cases are parsed, and never outlive the run."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs grade or pytest as a subprocess


def processes_with(marker: str) -> list[int]:
    """Pids of live processes whose environment holds ``marker`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_early_engine_processes_die_when_the_cases_are_bad(grade, engine, tmp_path, jobs):
    bad = tmp_path / "bad.yaml"
    bad.write_text("cases:\n  - name: a\n    output: [\n")
    marker = f"GRADE_TEST_{uuid.uuid4().hex}"
    env = dict(os.environ, GRADE_TEST_MARKER=marker)
    # with a load timeout of a day, grade ends only if it stops the hanging engines itself
    result = grade("--engine", engine("hang_on_import"), "--engine", engine("hang_on_import"), "--jobs", jobs,
                   "--cases", bad, "--load-timeout", "86400", env=env, timeout=120)
    assert result.code == 2
    assert f"{bad}:4: case 'a': YAML syntax error" in result.stderr
    assert processes_with(marker) == []


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
def test_early_engine_processes_die_when_no_case_matches(grade, engine):
    marker = f"GRADE_TEST_{uuid.uuid4().hex}"
    result = grade("--engine", engine("hang_on_import"), "-k", "no-such-case",
                   env=dict(os.environ, GRADE_TEST_MARKER=marker))
    assert result.code == 2
    assert "no case matches" in result.stderr
    assert processes_with(marker) == []


def test_a_slow_import_overlaps_case_parsing_and_still_counts_against_the_load_timeout(grade, engine):
    result = grade("--engine", engine("hang_on_import"), "-k", "notebook::add_value", "--load-timeout", "1",
                   "--format", "json")
    assert result.code == 1
    case = result.case("notebook::add_value")
    assert case["status"] == "error"
    assert "loading the engine did not finish within 1 s" in case["message"]
