"""A batch's JSON report is written where each submission is graded: each engine's entry is made in its job
process (``Spool.ready``) and the report copies it, byte for byte what it would have written itself."""

from __future__ import annotations

import argparse
import dataclasses
import os

import pytest
from test_streamed_reports import _engine, _runs, _shown

from harness.model import ReportContext
from harness.reporting import json as json_report
from harness.running.spool import Spool


@pytest.fixture
def spool():
    with Spool(piece=json_report.engine_piece, kind=json_report.KIND) as s:
        yield s


@pytest.fixture
def encoded(monkeypatch):
    """How many engines the JSON reporter encodes itself (not from a piece)."""
    real, calls = json_report.engine_dict, []
    monkeypatch.setattr(json_report, "engine_dict", lambda e: calls.append(e.engine) or real(e))
    return calls


def test_the_report_from_pieces_is_byte_for_byte_the_report(spool, encoded):
    for name, run in _runs().items():
        want = json_report.render(run, ReportContext())  # a list of engines: encoded here
        spooled = dataclasses.replace(run, engines=spool.engines(spool.put(spool.ready(run.engines))))
        encoded.clear()
        assert "".join(json_report.chunks(spooled, ReportContext())) == want, name
        assert encoded == [], name  # every entry came from its piece


def test_a_student_report_or_a_result_stored_again_is_encoded_anew(spool, encoded):
    run = _runs()["batch"]
    spooled = dataclasses.replace(run, engines=spool.engines(spool.put(spool.ready(run.engines))))
    student = _shown(spooled, "json", "student")
    assert json_report.render(student, ReportContext()) == json_report.render(_shown(run, "json", "student"),
                                                                              ReportContext())
    changed = dataclasses.replace(run.engines[1], load_error="changed after it was graded")
    spooled.engines[1] = changed  # e.g. a suspect case's diagnosis added once the batch is done
    encoded.clear()
    text = json_report.render(spooled, ReportContext())
    assert encoded == [changed.engine] and "changed after it was graded" in text
    assert text == json_report.render(dataclasses.replace(run, engines=[*run.engines[:1], changed,
                                                                        *run.engines[2:]]), ReportContext())
    assert spooled.engines.piece(0, "another kind") is None


def test_ready_prepares_each_result_once(spool):
    spool.prepare = lambda e: setattr(e, "source", e.source + "!")
    stored = spool.engines(spool.put(spool.ready(_engine(3))) + spool.put(_engine(4)))
    assert [e.source for e in stored] == [e.source + "!" for e in _engine(3) + _engine(4)]


@pytest.mark.parametrize("jobs, processes", [(1, "1"), (2, "1")])
def test_pieces_are_made_where_each_submission_is_graded(jobs, processes, monkeypatch):
    from harness.running import grading
    from harness.running.jobs import ENV_SWITCH
    from harness.running.runner import Limits

    monkeypatch.setenv(ENV_SWITCH, processes)
    monkeypatch.setattr(grading, "_grade_one", lambda spec, submission, *a, **k: _engine(int(submission)))
    plan = [((f"spec-{k}", str(k)), []) for k in range(12)]
    with Spool(piece=lambda e: str(os.getpid()), kind="pid") as spool:
        run = grading.grade_plan(plan, Limits(), jobs=jobs, spool=spool)
        made = {run.engines.piece(k, "pid") for k in range(len(run.engines))}
    if jobs == 1:
        assert made == {str(os.getpid())}
    else:  # the first two submissions went to two job processes
        assert len(made) == 2 and str(os.getpid()) not in made


@pytest.mark.parametrize("fmt, reports, audience, made", [
    ("json", [], None, True), ("text", [("json", "r.json")], None, True), ("json", [], "student", False),
    ("text", [("csv", "r.csv")], None, False)])
def test_grade_makes_json_pieces_only_for_a_json_report_the_instructor_reads(fmt, reports, audience, made):
    from harness import cli

    args = argparse.Namespace(report=reports, audience=audience, resources=None)
    spool = cli._spool(args, {}, fmt)
    try:
        assert (spool.piece is json_report.engine_piece) is made
    finally:
        spool.close()
