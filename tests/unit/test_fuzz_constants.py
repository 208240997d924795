"""Fuzz expressions depend on the seed alone: not on numbers written in local source files.

Hypothesis (6.131 on) now and then draws a number found in the source of a loaded "local" module, one not
in site-packages: the harness itself when installed from a checkout.  While the harness's searches run,
that collector gives nothing, and Hypothesis's own is back afterwards.
"""

from __future__ import annotations

import sys

import pytest

from harness.diagnosis import fuzz

providers = pytest.importorskip("hypothesis.internal.conjecture.providers")
if not hasattr(providers, "_get_local_constants"):
    pytest.skip("this Hypothesis draws no constants from source files", allow_module_level=True)


def test_searches_see_no_constants_from_local_source_files(tmp_path, monkeypatch):
    (tmp_path / "course_constants.py").write_text("MAGIC = 918273\nOTHER = 6.02214076e23\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import course_constants  # noqa: F401  (a local module: its numbers are what Hypothesis would collect)

    try:
        original = providers._get_local_constants
        assert 918273 in original().integers  # the test can fail: Hypothesis does collect them
        with fuzz._home():
            with fuzz._home():  # searches overlap: the outer one restores at the end
                assert providers._get_local_constants().integers == set()
            assert providers._get_local_constants().integers == set()
        assert providers._get_local_constants is original
    finally:
        sys.modules.pop("course_constants", None)
