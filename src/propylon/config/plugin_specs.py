"""The native ``plugins:`` section: user stages by import path, checked when the file loads.

Each definition names a ``propylon.plugins.Plugin`` subclass (``package.module:Class``) and
its settings. Loading imports the module, checks the class, and builds one instance with the
settings, so that a path that does not import, a class that is not a plugin, or settings
the plugin refuses are config errors at their key path (``propylon check`` shows them);
each worker then builds its own instances at start-up.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from propylon.config.diagnostics import Diagnostics, kind_of
from propylon.config.model import PluginSpec


def read_plugins(raw: object, diag: Diagnostics) -> tuple[PluginSpec, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        diag.error(("plugins",), f"must map plugin names to definitions, got {kind_of(raw)}")
        return ()
    specs: list[PluginSpec] = []
    for name, item in raw.items():
        loc = ("plugins", str(name))
        if not isinstance(item, Mapping):
            diag.error(loc, f"must be a mapping with 'use' and 'settings', got {kind_of(item)}")
            continue
        unknown = sorted(str(k) for k in item if k not in ("use", "settings"))
        for key in unknown:
            diag.error((*loc, key), "unknown key; a plugin has 'use' and 'settings'")
        use = item.get("use")
        settings = item.get("settings", {})
        if not isinstance(use, str) or ":" not in use:
            diag.error((*loc, "use"), "must be 'package.module:Class'")
            continue
        if not isinstance(settings, Mapping):
            diag.error((*loc, "settings"), f"must be a mapping, got {kind_of(settings)}")
            continue
        try:
            plugin_class(use)(dict(settings))
        except PluginLoadError as exc:
            diag.error((*loc, "use"), str(exc))
            continue
        except (ValueError, TypeError, KeyError, OSError) as exc:
            diag.error((*loc, "settings"), f"refused by {use}: {exc}")
            continue
        specs.append(PluginSpec(str(name), use, dict(settings), diag.path(loc)))
    return tuple(specs)


class PluginLoadError(Exception):
    pass


def plugin_class(use: str) -> Any:
    """The ``Plugin`` subclass ``use`` names; PluginLoadError saying why not."""
    from propylon.plugins import Plugin  # the public API sits above config

    module_name, _, attribute = use.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any failure at import is the user's module's: report it
        raise PluginLoadError(
            f"cannot import {module_name!r}: {type(exc).__name__}: {exc}"
        ) from None
    found = getattr(module, attribute, None)
    if found is None:
        raise PluginLoadError(f"{module_name!r} has no {attribute!r}")
    if not (isinstance(found, type) and issubclass(found, Plugin)):
        raise PluginLoadError(f"{use} is not a subclass of propylon.plugins.Plugin")
    return found
