"""What plugins register, collected inside the engine process (pluggy and the hookspecs, nothing grader-side).

The grader's ``harness.plugins`` builds on this module; the engine process uses it
alone, to find the engines a submission's hooks or an installed plugin register.
pluggy and the hookspecs are imported when first needed: most submissions use no
hooks, and their engine processes never load pluggy (~25 ms each).
"""

from __future__ import annotations

import importlib
import os
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~9 ms in every engine process)
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Any

    import pluggy

ENTRY_POINT_GROUP = "harness"
PLUGINS_ENV = "HARNESS_PLUGINS"


def hook_names() -> tuple[str, ...]:
    """The names of the hooks in ``harness.hookspecs``."""
    from harness import hookspecs

    return tuple(n for n in dir(hookspecs) if n.startswith("register_"))


def __getattr__(name: str) -> Any:
    if name == "HOOK_NAMES":  # hook_names(), computed on first use
        return hook_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class PluginError(Exception):
    """A plugin that cannot be used: unknown hooks, or a module that does not import."""


def new_manager() -> pluggy.PluginManager:
    """An empty manager that knows the harness hooks."""
    import pluggy

    from harness import hookspecs

    pm = pluggy.PluginManager("harness")
    pm.add_hookspecs(hookspecs)
    return pm


def hook_functions(module: ModuleType | object) -> list[str]:
    """Names in ``module`` marked with ``@harness.hookimpl`` (pluggy's own public test).

    None without pluggy loaded: only pluggy's markers (``harness.hookimpl`` imports it) make a hook."""
    if "pluggy" not in sys.modules:
        return []
    probe = new_manager()
    return [name for name in dir(module) if probe.parse_hookimpl_opts(module, name) is not None]


def check(pm: pluggy.PluginManager) -> None:
    """PluginError naming a misspelled hook, instead of ignoring it (pluggy's check_pending)."""
    import pluggy

    try:
        pm.check_pending()
    except pluggy.PluginValidationError as e:
        plugin = getattr(e, "plugin", None)
        name = (pm.get_name(plugin) if plugin is not None else None) or "a plugin"
        bad = [impl.function.__name__ for caller in vars(pm.hook).values()
               if isinstance(caller, pluggy.HookCaller) and not caller.has_spec()
               for impl in caller.get_hookimpls()]
        names = hook_names()
        hints = "".join(f"; {b!r} is not a hook{did_you_mean(b, names)}" for b in bad)
        raise PluginError(f"plugin {name}: unknown hook{hints}; hooks are {', '.join(names)}") from None


def did_you_mean(word: str, choices: Any) -> str:
    """' (did you mean 'x'?)' for a near miss among choices, else ''."""
    import difflib

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def extra_plugin_names() -> list[str]:
    """Plugin modules named in the HARNESS_PLUGINS environment variable (comma-separated)."""
    return [n.strip() for n in os.environ.get(PLUGINS_ENV, "").split(",") if n.strip()]


def installed_manager(entry_points: bool = True, builtins: tuple[str, ...] = ()) -> pluggy.PluginManager:
    """A manager with the ``builtins`` modules, HARNESS_PLUGINS and (``entry_points``) every installed plugin."""
    pm = new_manager()
    for name in builtins:
        pm.register(importlib.import_module(name), name)
    for name in extra_plugin_names():
        if pm.get_plugin(name) is None:
            try:
                module = importlib.import_module(name)
            except ImportError as e:
                raise PluginError(f"cannot import plugin {name!r}: {e}") from None
            pm.register(module, name)
    if entry_points:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    check(pm)
    return pm


def engines(pm: pluggy.PluginManager) -> list:
    """Every engine the manager's plugins register, in registration order."""
    found: list = []
    pm.hook.register_engines(register=found.append)
    return found


def ops(pm: pluggy.PluginManager) -> dict:
    """Extra ops by name (OpSpec objects)."""
    found: dict = {}
    pm.hook.register_ops(register=lambda spec: found.__setitem__(spec.name, spec))
    return found
