"""The environment variables of an engine process (grader side): a minimal one, never grade's own.

``grade`` may run with secrets in its environment (a CI token, a cloud key).
An engine process gets none of them, in every sandbox mode: only

- what the interpreter and the locale need: ``PATH``, ``LANG``, ``LANGUAGE``,
  ``LC_*``, ``TZ``, ``TERM``, ``LD_LIBRARY_PATH``, ``TMPDIR`` and CPython's own
  ``PYTHON...`` variables (``PYTHONHASHSEED``, ``PYTHONDONTWRITEBYTECODE``...;
  names without a further underscore);
- ``HOME``: the engine process's own working folder;
- what the harness itself passes: ``PYTHONPATH`` (the harness first),
  ``PYTHONFAULTHANDLER``, ``HARNESS_PLUGINS`` (course plugins to load);
- the variables named in ``HARNESS_ENGINE_ENV`` (comma-separated names, a
  trailing ``*`` matches a prefix, ``*`` alone passes everything), for an
  instructor who wants an engine to see one of them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

PASS_ENV = "HARNESS_ENGINE_ENV"
KEEP = frozenset({"PATH", "LANG", "LANGUAGE", "TZ", "TERM", "LD_LIBRARY_PATH", "TMPDIR", "HARNESS_PLUGINS",
                  "SYSTEMROOT"})
_KEEP_PATTERN = re.compile(r"LC_[A-Z_]+|PYTHON[A-Z0-9]+")


def passed(name: str, extra: tuple[str, ...] = ()) -> bool:
    """Whether grade's variable ``name`` reaches an engine process (``extra``: HARNESS_ENGINE_ENV's entries)."""
    if name in KEEP or _KEEP_PATTERN.fullmatch(name):
        return True
    return any(name == e or (e.endswith("*") and name.startswith(e[:-1])) for e in extra)


def engine_env(environ: Mapping[str, str], home: str, python_path: str) -> dict[str, str]:
    """The whole environment of an engine process, from grade's ``environ``."""
    extra = tuple(e.strip() for e in environ.get(PASS_ENV, "").split(",") if e.strip())
    env = {k: v for k, v in environ.items() if passed(k, extra)}
    env.update(HOME=home, PYTHONPATH=python_path, PYTHONFAULTHANDLER="1")
    return env
