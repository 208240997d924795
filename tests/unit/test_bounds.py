"""Everything read from an engine process is bounded: frames, hellos, load errors, names, messages (attack 5).

The engine side clips what it sends; the grader never trusts that and caps again.  The caps are
documented in docs/security.md.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import pytest

from harness import wire
from harness.engine_side import loading, worker
from harness.running.program import Program
from harness.running.runner import Observation, hello_fields

ROOT = Path(__file__).resolve().parents[2]
WIDE = "\U0001F600"  # 12 bytes of JSON per character (a surrogate pair of \u escapes)
PROGRAM = Program(id="s::c", inputs=[["a", 1.0]], steps=[], output=[["name", "a"]], backward=1,
                  grads=["a"], structure=False)


class Loud(Exception):
    def __str__(self):
        return "z" * (40 << 20)


class Unprintable(Exception):
    def __str__(self):
        raise RuntimeError("no")


def raised(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as e:
        return e


# --- clip -----------------------------------------------------------------------------------------

def test_clip_keeps_short_text_and_cuts_long_text_to_its_limit_saying_how_long_it_was():
    assert wire.clip("abc", 10) == "abc"
    cut = wire.clip("x" * 100_000, 500)
    assert len(cut) == 500
    assert cut.startswith("x" * 400) and cut.endswith("[cut: 100,000 characters in all]")


# --- frames ---------------------------------------------------------------------------------------

def test_a_frame_over_its_cap_is_refused_from_its_header_before_its_body_is_read():
    r, w = os.pipe()
    try:
        os.write(w, struct.pack("!I", 40 << 20) + b'{"ready": false, "error": "xxxx')
        reader = wire.FrameReader(r)
        with pytest.raises(wire.ProtocolError, match="41,943,040 bytes is larger than its 65,536-byte cap"):
            reader.read(5, wire.MAX_HELLO)
        assert len(reader.buf) < 1 << 16
    finally:
        os.close(r)
        os.close(w)


def test_a_frame_within_its_cap_is_read():
    r, w = os.pipe()
    try:
        wire.write(w, {"ready": True})
        assert wire.FrameReader(r).read(5, wire.MAX_HELLO) == {"ready": True}
    finally:
        os.close(r)
        os.close(w)


def test_the_largest_hellos_the_engine_side_can_send_fit_the_hello_cap():
    error = wire.clip(WIDE * (1 << 20), wire.MAX_LOAD_ERROR)
    assert len(wire.encode({"ready": False, "error": error})) <= wire.MAX_HELLO
    names = [wire.clip(WIDE * 1000, wire.MAX_NAME)] * wire.MAX_ENGINES
    assert len(wire.encode({"ready": True, "engines": names, "engine": names[0]})) <= wire.MAX_HELLO


def test_the_largest_reply_the_engine_side_can_send_fits_the_programs_reply_cap():
    grads = [f"name_{i}" for i in range(30)]
    trace = 500
    texts = {k: wire.clip(WIDE * 10_000, wire.MAX_TEXT) for k in ("message", "error_type", "phase", "where")}
    big = -1.2345678901234567e-300
    reply = {"id": "suite::" + "c" * 60, "status": "ok", "value": big, "duration_s": big,
             "grads": dict.fromkeys(grads, big),
             "structure": {"args": [big] * wire.MAX_OPERANDS, "local_derivatives": [big] * wire.MAX_OPERANDS},
             "trace": {"created": 10**18, "values": [big] * trace, "grads": [big] * trace,
                       "locals": [[big] * wire.MAX_LOCALS] * trace}, **texts}
    assert len(wire.encode(reply)) <= wire.reply_limit(grads, True, trace)
    assert wire.reply_limit(grads, True, trace) < wire.reply_limit(grads, True, trace + 1)
    assert wire.reply_limit([], False, 0) <= 256 << 10  # a plain case's reply: a few hundred KB at most


# --- the grader side: hello and observations -------------------------------------------------------

def test_a_load_error_of_40_mb_is_capped_in_the_hello():
    names, engine, error = hello_fields({"ready": False, "error": "x" * (40 << 20)})
    assert (names, engine) == ([], "")
    assert len(error) == wire.MAX_LOAD_ERROR and error.endswith("[cut: 41,943,040 characters in all]")


@pytest.mark.parametrize("hello", [None, [], "ready", {"ready": 1}, {"ready": False, "error": 5},
                                   {"ready": False}])
def test_a_malformed_or_failed_hello_is_a_load_error(hello):
    names, engine, error = hello_fields(hello)
    assert names == [] and engine == "" and error and len(error) <= wire.MAX_LOAD_ERROR


def test_engine_names_are_capped_in_number_and_length_and_must_be_text():
    names, engine, error = hello_fields({"ready": True, "engines": ["n" * 10_000] * 1000 + [5],
                                         "engine": "e" * 10_000})
    assert error == "" and len(names) == wire.MAX_ENGINES
    assert all(len(n) == wire.MAX_NAME for n in names) and len(engine) == wire.MAX_NAME
    assert hello_fields({"ready": True, "engines": [1, None], "engine": 3})[:2] == (["engine"], "engine")
    assert hello_fields({"ready": True, "engines": "abc"})[:2] == (["engine"], "engine")


def test_an_observations_texts_are_capped():
    obs = Observation.from_wire({"id": "s::c", "status": "error", "message": "m" * (8 << 20),
                                 "error_type": "E" * 100_000, "where": "w" * 100_000, "phase": "p"}, PROGRAM)
    assert obs.status == "error"
    assert len(obs.message) == len(obs.error_type) == len(obs.where) == wire.MAX_TEXT


def test_an_observation_whose_texts_are_not_text_is_malformed():
    obs = Observation.from_wire({"id": "s::c", "status": "error", "message": ["m"] * 100}, PROGRAM)
    assert obs.status == "crashed" and "malformed reply" in obs.message


def test_structure_reads_at_most_max_operands_numbers():
    program = Program(id="s::c", inputs=[], steps=[], output=[], backward=0, grads=[], structure=True)
    obs = Observation.from_wire({"id": "s::c", "status": "ok", "value": 1.0, "grads": {},
                                 "structure": {"args": [1.0] * 100_000, "local_derivatives": [2.0] * 100_000}},
                                program)
    assert obs.structure is not None
    assert len(obs.structure["args"]) == len(obs.structure["local_derivatives"]) == wire.MAX_OPERANDS


# --- the engine side: what it sends is clipped, whatever the submission's exceptions do -------------

def test_the_engine_side_clips_an_exceptions_message_type_and_place():
    d = worker.describe(raised(type("E" * 10_000, (Exception,), {})("m" * (1 << 20))))
    assert len(d["message"]) <= 500 and len(d["error_type"]) <= wire.MAX_NAME and len(d["where"]) <= wire.MAX_TEXT


def test_the_engine_side_survives_an_exception_whose_str_is_huge_or_raises():
    assert len(worker.describe(raised(Loud()))["message"]) <= 500
    assert worker.describe(raised(Unprintable()))["message"] == (
        "<unprintable Unprintable: its str() raised RuntimeError>")


def test_an_import_error_of_40_mb_is_clipped_where_it_is_described():
    text = loading._describe_import_error(raised(Loud()), "engine.py")
    assert text.startswith("importing engine.py raised Loud: zzz") and len(text) < wire.MAX_LOAD_ERROR
    assert "[cut: 41,943,040 characters in all]" in text
    assert "unprintable" in loading._describe_import_error(raised(Unprintable()), "engine.py")


def test_a_syntax_error_on_a_huge_line_is_clipped():
    e = SyntaxError("invalid syntax", ("engine.py", 1, 5, "x = (" + "1, " * 1_000_000 + "\n", 1, 6))
    assert len(loading._describe_import_error(e, "engine.py")) < 1000


def test_the_security_page_documents_every_cap():
    page = (ROOT / "docs" / "security.md").read_text()
    for name in ("MAX_HELLO", "MAX_LOAD_ERROR", "MAX_TEXT", "MAX_NAME", "MAX_ENGINES", "MAX_OPERANDS",
                 "MAX_LOCALS", "reply_limit"):
        assert f"`{name}`" in page, name
    assert json.dumps(wire.MAX_HELLO) and f"{wire.MAX_HELLO // 1024} KB" in page
