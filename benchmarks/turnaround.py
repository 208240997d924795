"""Target 1: `grade -k notebook::` against bare pytest running the notebook's asserts, same engine."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from common import ROOT, Row, clean_env, median, median_ratio, side_by_side, tool

ENGINE = ROOT / "tests" / "engines" / "notebook_verbatim.py"


def run(repeats: int = 15) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="bench-turnaround-") as tmp:
        shutil.copy(ENGINE, Path(tmp) / "engine.py")
        shutil.copy(Path(__file__).with_name("notebook_asserts.py"), Path(tmp) / "test_notebook.py")
        commands = {
            "grade": [tool("grade"), "--engine", "engine.py", "-k", "notebook::"],
            "pytest": [tool("pytest"), "-q", "-p", "no:cacheprovider", "test_notebook.py"],
        }
        bare = clean_env(PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")  # no plugins: the fastest pytest there is
        times = side_by_side(commands, repeats, cwd=tmp, env=bare)
    ratio = median_ratio(times["grade"], times["pytest"])
    return [
        Row("turnaround: grade / bare pytest (notebook suite)", ratio, "x", "<= 1.0", ratio <= 1.0,
            f"grade {median(times['grade']) * 1000:.0f} ms, pytest {median(times['pytest']) * 1000:.0f} ms "
            f"(medians of {repeats}, interleaved)"),
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
