"""``grade --user USER``, grader side: ``resolve()`` turns the option into a ``RunAs``.

The engine process drops to that user itself (``harness.engine_side.privileges.drop``)
before any submission code runs.  With ``--user``, every submission runs as that one
uid: the fixed-uid form of ``--sandbox uid``, which otherwise gives each engine-process
slot a uid of its own (``harness.sandbox.uids``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from harness.errors import HarnessError


@dataclass(frozen=True)
class RunAs:
    """The user engine processes run as, with its primary group."""

    name: str
    uid: int
    gid: int

    def to_wire(self) -> dict:
        return {"name": self.name, "uid": self.uid, "gid": self.gid}


def resolve(user: str) -> RunAs:
    """``--user USER`` (a name or a uid) as a RunAs; HarnessError if unknown or grade is not root."""
    import pwd

    try:
        entry = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
    except (KeyError, OverflowError):
        raise HarnessError(f"--user {user}: no such user on this machine (see /etc/passwd; "
                           "e.g. --user nobody)") from None
    if os.geteuid() != 0:
        raise HarnessError(f"--user needs grade to run as root (it runs as uid {os.geteuid()}); "
                           "leave out --user, or run grade as root")
    return RunAs(entry.pw_name, entry.pw_uid, entry.pw_gid)
