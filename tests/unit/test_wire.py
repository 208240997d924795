"""The wire protocol: length-prefixed JSON frames, their size bound, and what malformed input does."""

from __future__ import annotations

import json
import os
import struct

import pytest

from harness import wire


@pytest.fixture
def pipe():
    r, w = os.pipe()
    yield r, w
    for fd in (r, w):
        try:
            os.close(fd)
        except OSError:
            pass


def test_a_frame_is_a_big_endian_length_then_compact_json():
    frame = wire.encode({"op": "add", "args": [1, 2.5]})
    body = b'{"op":"add","args":[1,2.5]}'
    assert frame == struct.pack("!I", len(body)) + body


@pytest.mark.parametrize("obj", [0, -1.5, "é\u2603", [], {}, {"a": [1, {"b": None}]}, [True, False]])
def test_every_json_value_round_trips_through_a_pipe(pipe, obj):
    r, w = pipe
    wire.write(w, obj)
    assert wire.read_blocking(r) == obj
    wire.write(w, obj)
    assert wire.FrameReader(r).read(timeout=5) == obj


def test_frames_written_back_to_back_are_read_one_at_a_time(pipe):
    r, w = pipe
    os.write(w, b"".join(wire.encode(i) for i in range(5)))
    reader = wire.FrameReader(r)
    assert [reader.read(timeout=5) for _ in range(5)] == [0, 1, 2, 3, 4]
    assert reader.buf == b""


def test_a_frame_split_across_writes_is_reassembled(pipe):
    r, w = pipe
    frame = wire.encode({"value": 3.0})
    reader = wire.FrameReader(r)
    os.write(w, frame[:3])  # not even a whole header
    with pytest.raises(TimeoutError):
        reader.read(timeout=0)
    os.write(w, frame[3:9])
    with pytest.raises(TimeoutError):
        reader.read(timeout=0)
    os.write(w, frame[9:])
    assert reader.read(timeout=5) == {"value": 3.0}


def test_a_large_frame_within_the_bound_is_written_and_read_whole(pipe):
    r, w = pipe
    obj = {"junk": "x" * (3 << 20)}  # larger than one pipe buffer and one read

    pid = os.fork()
    if pid == 0:  # a writer that blocks until the reader drains the pipe
        try:
            os.close(r)
            wire.write(w, obj)
        finally:
            os._exit(0)
    os.close(w)
    try:
        assert wire.FrameReader(r).read(timeout=30) == obj
    finally:
        os.waitpid(pid, 0)


def test_nothing_sent_is_a_timeout_not_a_hang(pipe):
    r, _ = pipe
    with pytest.raises(TimeoutError):
        wire.FrameReader(r).read(timeout=0)


def test_a_closed_pipe_is_end_of_file(pipe):
    r, w = pipe
    os.close(w)
    with pytest.raises(EOFError):
        wire.FrameReader(r).read(timeout=5)


def test_a_pipe_closed_inside_a_frame_is_end_of_file_on_the_grader_side(pipe):
    r, w = pipe
    os.write(w, wire.encode([1, 2, 3])[:-2])
    os.close(w)
    with pytest.raises(EOFError):
        wire.FrameReader(r).read(timeout=5)


def test_a_frame_above_the_default_bound_is_refused_from_its_header_alone(pipe):
    r, w = pipe
    os.write(w, struct.pack("!I", wire.MAX_FRAME + 1))
    with pytest.raises(wire.ProtocolError) as caught:
        wire.FrameReader(r).read(timeout=5)
    assert str(caught.value) == f"a reply of {wire.MAX_FRAME + 1:,} bytes is larger than its {wire.MAX_FRAME:,}-byte cap"


def test_a_frame_above_the_callers_limit_is_refused_and_one_at_the_limit_is_read(pipe):
    r, w = pipe
    body = b'"' + b"x" * 98 + b'"'
    reader = wire.FrameReader(r)
    os.write(w, struct.pack("!I", len(body)) + body)
    assert reader.read(timeout=5, limit=100) == "x" * 98
    os.write(w, struct.pack("!I", 101) + b"x" * 101)
    with pytest.raises(wire.ProtocolError, match="a reply of 101 bytes is larger than its 100-byte cap"):
        reader.read(timeout=5, limit=100)


def test_a_frame_of_exactly_the_bound_is_not_refused_for_its_size():
    reader = wire.FrameReader(-1)
    reader.buf += struct.pack("!I", wire.MAX_FRAME)
    assert reader._take(wire.MAX_FRAME) is None  # waits for the body instead of refusing


@pytest.mark.parametrize("text, limit, clipped", [
    ("short", 10, "short"),
    ("x" * 10, 10, "x" * 10),
    ("x" * 100, 50, "x" * 18 + "... [cut: 100 characters in all]"),
    ("x" * 5000, 10, "... [cut: 5,000 characters in all]"),
])
def test_clip_cuts_text_to_its_limit_and_says_how_long_it_was(text, limit, clipped):
    assert wire.clip(text, limit) == clipped
    assert len(wire.clip(text, limit)) <= max(limit, len(clipped))


def test_a_reply_limit_grows_with_what_the_program_reads_back():
    base = wire.reply_limit([], False, 0)
    assert base < wire.reply_limit(["a"], False, 0) < wire.reply_limit(["a", "bb"], False, 0)
    assert wire.reply_limit([], True, 0) > base and wire.reply_limit([], False, 10) > base
    assert wire.reply_limit(["x" * 80] * 32, True, 1000) < wire.MAX_FRAME


@pytest.mark.parametrize("body", [b"not json", b"{", b"\xff\xfe", b"[1,]", b""])
def test_a_body_that_is_not_json_is_a_protocol_error(pipe, body):
    r, w = pipe
    os.write(w, struct.pack("!I", len(body)) + body)
    with pytest.raises(wire.ProtocolError, match="reply is not JSON"):
        wire.FrameReader(r).read(timeout=5)


def test_noise_before_a_frame_is_read_as_a_header_and_refused(pipe):
    r, w = pipe
    os.write(w, b"hello from a print()\n" + wire.encode({"status": "passed"}))
    with pytest.raises(wire.ProtocolError):
        wire.FrameReader(r).read(timeout=5)


def test_the_worker_side_reads_none_at_a_clean_end(pipe):
    r, w = pipe
    wire.write(w, {"a": 1})
    os.close(w)
    assert wire.read_blocking(r) == {"a": 1}
    assert wire.read_blocking(r) is None


@pytest.mark.parametrize("cut", [1, 4, 6])
def test_the_worker_side_refuses_input_that_ends_inside_a_frame(pipe, cut):
    r, w = pipe
    os.write(w, wire.encode({"abc": 1})[:cut])
    os.close(w)
    with pytest.raises(wire.ProtocolError, match="input ended inside a frame"):
        wire.read_blocking(r)


def test_encode_refuses_what_json_cannot_say():
    with pytest.raises(TypeError):
        wire.encode({"x": object()})
    assert json.loads(wire.encode(float("inf"))[4:]) == float("inf")  # Python's JSON: Infinity
