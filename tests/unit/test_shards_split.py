"""Shards in process: ``K/N`` parsing, the split of (submission, case) work, and merge's refusals."""

from __future__ import annotations

import json

import pytest

from harness.batch.shards import Shard, ends_submission, kind, merge, parse, split
from harness.errors import HarnessError


@pytest.mark.parametrize("text, shard", [("1/1", Shard(1, 1)), ("2/8", Shard(2, 8)), (" 3 / 3 ", Shard(3, 3)),
                                         ("10/12", Shard(10, 12))])
def test_parse_reads_k_of_n(text, shard):
    assert parse(text) == shard and str(shard) == f"{shard.index}/{shard.count}"


@pytest.mark.parametrize("text, problem", [
    ("2", "expected K/N such as 2/8, got '2'"),
    ("a/b", "expected K/N such as 2/8, got 'a/b'"),
    ("-1/2", "expected K/N such as 2/8, got '-1/2'"),
    ("1/2/3", "expected K/N such as 2/8, got '1/2/3'"),
    ("", "expected K/N such as 2/8, got ''"),
    ("0/3", "K must be between 1 and N in K/N, got '0/3'"),
    ("4/3", "K must be between 1 and N in K/N, got '4/3'"),
    ("0/0", "K must be between 1 and N in K/N, got '0/0'"),
])
def test_parse_refuses_what_is_not_k_of_n_and_says_the_fix(text, problem):
    with pytest.raises(ValueError) as caught:
        parse(text)
    assert str(caught.value) == problem


def pairs(plan) -> list:
    return [(spec, case) for spec, cases in plan for case in cases]


@pytest.mark.parametrize("n_specs, n_cases, count", [(1, 1, 1), (1, 10, 3), (3, 7, 2), (3, 7, 5), (4, 5, 20),
                                                     (2, 1, 3), (5, 100, 7), (1, 3, 3)])
def test_the_shards_partition_the_work_in_order_and_evenly(n_specs, n_cases, count):
    specs = [f"s{i}" for i in range(n_specs)]
    cases = [f"c{j}" for j in range(n_cases)]
    whole = [(s, c) for s in specs for c in cases]
    parts = [pairs(split(specs, cases, Shard(k, count))) for k in range(1, count + 1)]
    assert [p for part in parts for p in part] == whole  # every pair once, in order
    sizes = [len(part) for part in parts]
    assert max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize("weights, n_cases, count", [([1, 1, 1], 7, 3), ([5, 1, 1, 1], 10, 4), ([1, 100], 6, 3),
                                                     ([3, 7, 2, 9, 1], 13, 6), ([2, 2], 0, 3), ([9, 1, 1, 1, 1], 0, 2)])
def test_weighted_shards_partition_the_work_in_order_and_nearly_equal_in_weight(weights, n_cases, count):
    specs = [f"s{i}" for i in range(len(weights))]
    cases = [f"c{j}" for j in range(n_cases)]
    plans = [split(specs, cases, Shard(k, count), weights) for k in range(1, count + 1)]
    if n_cases:
        assert [p for plan in plans for p in pairs(plan)] == [(s, c) for s in specs for c in cases]
    else:  # --fuzz only: the submissions are split
        assert [spec for plan in plans for spec, _ in plan] == specs
    weight = dict(zip(specs, weights))
    loads = [sum(weight[spec] * max(1, len(part)) for spec, part in plan) for plan in plans]
    assert max(loads) - min(loads) <= max(weights)  # nearly equal: within one of the heaviest pairs


def test_a_slow_submission_gets_a_shard_to_itself():
    specs, cases = ["slow", "a", "b", "c"], ["c1", "c2"]
    assert split(specs, cases, Shard(1, 2), [30, 1, 1, 1]) == [("slow", ["c1"])]
    assert split(specs, cases, Shard(2, 2), [30, 1, 1, 1]) == [("slow", ["c2"]), ("a", ["c1", "c2"]),
                                                               ("b", ["c1", "c2"]), ("c", ["c1", "c2"])]


def test_a_submission_is_split_between_neighbouring_shards():
    specs, cases = ["alice", "bob"], ["c1", "c2", "c3"]
    assert split(specs, cases, Shard(1, 2)) == [("alice", ["c1", "c2", "c3"])]
    assert split(specs, cases, Shard(1, 4)) == [("alice", ["c1"])]
    assert split(specs, cases, Shard(2, 4)) == [("alice", ["c2", "c3"])]
    assert split(specs, cases, Shard(3, 4)) == [("bob", ["c1"])]
    assert split(specs, cases, Shard(4, 4)) == [("bob", ["c2", "c3"])]


def test_no_shard_is_everything_and_no_cases_splits_the_submissions():
    assert split(["a", "b"], ["x"], None) == [("a", ["x"]), ("b", ["x"])]
    specs = ["a", "b", "c", "d", "e"]
    parts = [split(specs, [], Shard(k, 2)) for k in (1, 2)]
    assert parts == [[("a", []), ("b", [])], [("c", []), ("d", []), ("e", [])]]


def test_more_shards_than_work_leaves_some_empty():
    parts = [split(["a"], ["x", "y"], Shard(k, 5)) for k in range(1, 6)]
    assert sum(parts, []) == [("a", ["x"]), ("a", ["y"])]
    assert sum(1 for p in parts if not p) == 3


def test_only_the_shard_with_a_submissions_last_case_ends_it():
    cases = ["c1", "c2", "c3"]
    assert ends_submission(cases[1:], cases) and not ends_submission(cases[:2], cases)
    assert not ends_submission([], cases)
    assert ends_submission([], [])  # --fuzz alone: whoever has the submission fuzzes it


def report(tmp_path, name, shard=None, cases=(("s::a", "passed"),), engine="e", **extra):
    data = {"engines": [{"engine": engine, "source": f"{engine}.py", "score": 1.0, "max_score": 1.0,
                         "cases": [{"id": cid, "name": cid.split("::")[1], "suite": cid.split("::")[0],
                                    "status": status, "score": 1.0, "max_score": 1.0} for cid, status in cases]}],
            "duration_s": 1.0, **extra}
    if shard:
        data["shard"] = {"index": shard[0], "count": shard[1]}
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def merge_error(paths) -> str:
    with pytest.raises(HarnessError) as caught:
        merge(paths)
    return str(caught.value)


def test_merge_refuses_an_incomplete_or_inconsistent_set_of_shards(tmp_path):
    one = report(tmp_path, "1.json", (1, 3), [("s::a", "passed")])
    two = report(tmp_path, "2.json", (2, 3), [("s::b", "passed")])
    three = report(tmp_path, "3.json", (3, 3), [("s::c", "failed")])
    half = report(tmp_path, "h.json", (1, 2), [("s::a", "passed")])
    plain = report(tmp_path, "p.json")
    assert merge_error([one, three]) == "shard 2 of 3 is missing; pass all 3 shard reports"
    assert merge_error([one]) == "shards 2, 3 of 3 are missing; pass all 3 shard reports"
    assert merge_error([one, two, three, half]) == (
        "the reports come from different splits (into 2 and 3 shards); merge the shards of one run")
    assert merge_error([one, one, two, three]) == f"{one} and {one} are both shard 1/3; merge each shard once"
    assert merge_error([one, plain]) == (f"{plain} is not a shard report, but the others are; merge the reports "
                                         "of one sharded run")
    dup = report(tmp_path, "d.json", (3, 3), [("s::a", "passed")])
    assert merge_error([one, two, dup]) == (f"{dup}: case s::a of engine e (e.py) is also in {one}; "
                                            "merge each shard's report once")


@pytest.mark.parametrize("content, problem", [
    ("not json", "not a JSON report"),
    ("[]", "not a report from grade --format json (missing 'engines')"),
    ('{"engines": [{"engine": 1}]}', "(an engine without 'engine' and 'source')"),
    ('{"engines": [{"engine": "e", "source": "s"}]}', "(engine 'e' without a 'cases' list)"),
    ('{"engines": [{"engine": "e", "source": "s", "cases": [{}]}]}', "(a case of engine 'e' without an 'id')"),
    ('{"engines": [{"engine": "e", "source": "s", "cases": [{"id": "x", "status": "great"}]}]}',
     "(case x has status 'great', not one of "),
    ('{"engines": [{"engine": "e", "source": "s", "cases": [{"id": "x", "status": "passed", "score": "1"}]}]}',
     "(case x without a numeric 'score' and 'max_score')"),
])
def test_merge_names_a_file_that_is_not_a_report(tmp_path, content, problem):
    path = tmp_path / "bad.json"
    path.write_text(content)
    message = merge_error([path])
    assert message.startswith(f"{path}: ") and problem in message
    assert message.endswith("write shard reports with --format json --output FILE")


def test_merge_names_a_missing_file(tmp_path):
    assert merge_error([tmp_path / "gone.json"]).startswith(f"{tmp_path / 'gone.json'}: cannot read the report: ")


def test_kind_tells_json_from_csv_and_refuses_the_rest(tmp_path):
    (tmp_path / "r.json").write_text('  {"engines": []}')
    (tmp_path / "g.csv").write_text("submission,engine,source,score\n")
    (tmp_path / "x.txt").write_text("hello")
    assert kind(tmp_path / "r.json") == "json" and kind(tmp_path / "g.csv") == "csv"
    with pytest.raises(HarnessError, match="not a JSON report or a CSV gradebook from grade"):
        kind(tmp_path / "x.txt")


def test_merge_refuses_shards_split_by_different_timings(tmp_path):
    paths = []
    for k, weights in ((1, "sha256:aaaa"), (2, "")):
        path = report(tmp_path, f"{k}.json", (k, 2), [(f"s::c{k}", "passed")])
        data = json.loads(path.read_text())
        if weights:
            data["shard"]["weights"] = weights
        path.write_text(json.dumps(data))
        paths.append(path)
    assert "run every shard with the same --timings" in merge_error(paths)
    data["shard"]["weights"] = "sha256:aaaa"  # the same weights: merged
    paths[1].write_text(json.dumps(data))
    assert [c.id for c in merge(paths).engines[0].cases] == ["s::c1", "s::c2"]
