"""Attack 2: submit the reference engine.  Two ways: drop the import guard from ``sys.meta_path``, or load
``reference_engine/tensor.py`` by path, found from ``sys.modules["__main__"].__file__`` (the worker).

Each way that works spoils one operator: the guard removal ``+``, the load by path ``*``.
Expected: inside any sandbox both fail (the reference engine is absent, or unreadable to the
submission's uid); with ``--sandbox none`` both work.
"""

import importlib.util
import os
import sys

from _value import Value


def _without_guard() -> bool:
    sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "_Finder"]
    try:
        import reference_engine.tensor  # noqa: F401
    except Exception:
        return False
    return True


def _by_path() -> bool:
    main = sys.modules["__main__"].__file__  # .../harness/engine_side/worker.py
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(main))))
    try:
        spec = importlib.util.spec_from_file_location("stolen", os.path.join(root, "reference_engine", "tensor.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except Exception:
        return False
    return hasattr(module, "Tensor")


if _by_path():
    Value.MUL = 1000.0
if _without_guard():
    Value.ADD = 1000.0
