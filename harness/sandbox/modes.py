"""``--sandbox auto|bwrap|uid|none``: which sandbox engine processes run in (grader side).

- ``bwrap``: every engine process in its own bubblewrap sandbox (``harness.sandbox.bwrap``);
  as root, each also runs as a private uid (``harness.sandbox.uids``).
- ``uid``: grade runs as root and gives every engine-process slot its own unprivileged uid,
  with RLIMIT_NPROC, no-new-privs and a non-dumpable process; no namespaces.
- ``none``: engine processes run as grade's own user (root included): only the rlimits and
  the import policy.
- ``auto`` (the default): bwrap when a probe shows it works here, else uid when grade runs
  as root, else none with a warning.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from harness.errors import HarnessError

MODES = ("auto", "bwrap", "uid", "none")


@dataclass(frozen=True)
class Choice:
    """The sandbox in use, and why it is weaker than asked when ``auto`` had to fall back."""

    mode: str          # bwrap | uid | none
    warning: str = ""  # set when auto fell back to none


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def choose(requested: str) -> Choice:
    """The sandbox for ``--sandbox requested``; HarnessError (exit 2) when that one cannot work here."""
    from harness.sandbox import bwrap

    if requested not in MODES:
        raise HarnessError(f"--sandbox {requested}: choose from {', '.join(MODES)}")
    if requested == "none":
        return Choice("none")
    root = is_root()
    if requested == "bwrap":
        why = bwrap.probe(root)
        if why:
            raise HarnessError(f"--sandbox bwrap: {why}; or choose --sandbox auto")
        return Choice("bwrap")
    if requested == "uid":
        if not root:
            raise HarnessError(f"--sandbox uid needs grade to run as root (it runs as uid {os.geteuid()}); "
                               "use --sandbox bwrap or auto")
        return Choice("uid")
    why = bwrap.probe(root)
    if not why:
        return Choice("bwrap")
    if root:
        return Choice("uid")
    return Choice("none", warning=f"engine processes are not sandboxed: {why}, and grade is not root "
                                  "(so no private uid either); see docs/security.md")
