"""Length-prefixed JSON frames between the grader and an engine process, and their size caps.

JSON, not pickle: the grader must never unpickle what untrusted code sent.  Every
frame an engine process sends has a cap that the grader enforces before reading
its body (see docs/security.md, "Caps on what an engine process sends"); the
engine side clips its texts to the same caps so that an honest engine never
hits them.
"""

from __future__ import annotations

import json
import os
import select
import struct
import time

_HEADER = struct.Struct("!I")
MAX_FRAME = 64 << 20  # the grader's programs; also the default cap of a frame read
MAX_HELLO = 64 << 10  # the engine process's first frame: ready and its engine names, or the load error
MAX_LOAD_ERROR = 4000  # characters of a load error (4000 x 12 bytes of JSON escapes < MAX_HELLO)
MAX_TEXT = 2000  # characters of an observation's message, error type, phase and place
MAX_NAME = 80  # characters of an engine's name
MAX_ENGINES = 32  # engine names a hello may list
MAX_NOTES = 30  # load notes a hello may carry (cells skipped, IPython syntax left out, the candidate chosen)
MAX_NOTE = 240  # characters of a load note, and of the graded engine's origin
MAX_OPERANDS = 64  # args and local derivatives read back for a structure check
MAX_LOCALS = 16  # local derivatives per traced node
_REPLY_BASE = 128 << 10  # an observation's fixed part: 4 texts of MAX_TEXT characters, escaped
_PER_NUMBER = 32  # a number in JSON, with its separator (repr of a float is at most 24 characters)


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, saying how long it was."""
    if len(text) <= limit:
        return text
    note = f"... [cut: {len(text):,} characters in all]"
    return text[:max(0, limit - len(note))] + note


def reply_limit(grads: list, structure: bool, trace: int) -> int:
    """The most bytes an observation of a program may take (its grads, structure and trace)."""
    names = sum(len(n) * 6 + 8 for n in grads)  # a name, JSON-escaped, with quotes and colon
    return (_REPLY_BASE + names + _PER_NUMBER * len(grads) + (2 * MAX_OPERANDS * _PER_NUMBER if structure else 0)
            + trace * (3 + MAX_LOCALS) * _PER_NUMBER)


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

    def read(self, timeout: float, limit: int = MAX_FRAME):
        """The next frame, of at most ``limit`` bytes; raise TimeoutError, EOFError or ProtocolError.

        A larger frame is refused from its header, before its body is read."""
        deadline = time.monotonic() + timeout
        while True:
            frame = self._take(limit)
            if frame is not None:
                return frame
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            ready, _, _ = select.select([self.fd], [], [], left)
            if not ready:
                raise TimeoutError
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                raise EOFError
            self.buf += chunk

    def _take(self, limit: int):
        if len(self.buf) < _HEADER.size:
            return None
        (size,) = _HEADER.unpack_from(self.buf)
        if size > limit:
            raise ProtocolError(f"a reply of {size:,} bytes is larger than its {limit:,}-byte cap")
        end = _HEADER.size + size
        if len(self.buf) < end:
            return None
        body = bytes(self.buf[_HEADER.size:end])
        del self.buf[:end]
        try:
            return json.loads(body)
        except ValueError as e:
            raise ProtocolError(f"reply is not JSON: {e}") from None
