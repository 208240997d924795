"""Length-prefixed JSON frames between the grader and an engine process.

JSON, not pickle: the grader must never unpickle what untrusted code sent.
"""

from __future__ import annotations

import json
import os
import select
import struct
import time

_HEADER = struct.Struct("!I")
MAX_FRAME = 64 << 20  # a reply larger than this is a protocol error


class ProtocolError(Exception):
    """The other side sent something that is not a frame."""


def encode(obj) -> bytes:
    """One frame holding ``obj``."""
    data = json.dumps(obj, separators=(",", ":")).encode()
    return _HEADER.pack(len(data)) + data


def write(fd: int, obj) -> None:
    """Write one frame, blocking until it is all written."""
    view = memoryview(encode(obj))
    while view:
        view = view[os.write(fd, view):]


def read_blocking(fd: int):
    """Read one frame (worker side); None at end of input."""
    header = _read_exactly(fd, _HEADER.size)
    if header is None:
        return None
    (size,) = _HEADER.unpack(header)
    body = _read_exactly(fd, size)
    if body is None:
        raise ProtocolError("input ended inside a frame")
    return json.loads(body)


def _read_exactly(fd: int, n: int):
    chunks, got = [], 0
    while got < n:
        chunk = os.read(fd, n - got)
        if not chunk:
            if got:
                raise ProtocolError("input ended inside a frame")
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


class FrameReader:
    """Reads frames from a pipe with deadlines (grader side)."""

    def __init__(self, fd: int):
        self.fd = fd
        self.buf = bytearray()

    def read(self, timeout: float):
        """The next frame; raise TimeoutError, EOFError or ProtocolError."""
        deadline = time.monotonic() + timeout
        while True:
            frame = self._take()
            if frame is not None:
                return frame
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            ready, _, _ = select.select([self.fd], [], [], left)
            if not ready:
                raise TimeoutError
            chunk = os.read(self.fd, 1 << 20)
            if not chunk:
                raise EOFError
            self.buf += chunk

    def _take(self):
        if len(self.buf) < _HEADER.size:
            return None
        (size,) = _HEADER.unpack_from(self.buf)
        if size > MAX_FRAME:
            raise ProtocolError(f"reply of {size} bytes is larger than the {MAX_FRAME}-byte limit")
        end = _HEADER.size + size
        if len(self.buf) < end:
            return None
        body = bytes(self.buf[_HEADER.size:end])
        del self.buf[:end]
        try:
            return json.loads(body)
        except ValueError as e:
            raise ProtocolError(f"reply is not JSON: {e}") from None
