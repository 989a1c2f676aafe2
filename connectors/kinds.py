"""The registry of connector kinds: built-ins and those of outside packages (entry points)."""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import entry_points

from connectors.base import Connector
from hub.errors import ConfigError

__all__ = ["ENTRY_POINT_GROUP", "connector_for", "known_kinds", "register_kind"]

ENTRY_POINT_GROUP = "interop_hub.connectors"
_BUILTIN = {"file": "connectors.file:FileConnector", "sql": "connectors.sql:SqlConnector"}
_kinds: dict[str, type[Connector]] = {}
_loaded = False


def register_kind(name: str, cls: type) -> None:
    if not (isinstance(cls, type) and issubclass(cls, Connector)):
        raise TypeError(f"connector kind {name!r} must be a subclass of connectors.Connector, got {cls!r}")
    _kinds[name] = cls


def _load(target: str) -> type:
    module, _, attr = target.partition(":")
    return getattr(import_module(module), attr)


def _ensure_loaded() -> None:
    """Load built-in and entry-point kinds once; a kind registered explicitly before keeps its name."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    found = {name: target for name, target in _BUILTIN.items()}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found[ep.name] = ep
    for name, target in found.items():
        if name not in _kinds:
            register_kind(name, target.load() if hasattr(target, "load") else _load(target))


def known_kinds() -> list[str]:
    _ensure_loaded()
    return sorted(_kinds)


def kind_class(name: str) -> type[Connector]:
    _ensure_loaded()
    if name not in _kinds:
        raise ConfigError(f"unknown connector kind {name!r}; known kinds: {', '.join(known_kinds())}")
    return _kinds[name]


def connector_for(source) -> Connector:
    return kind_class(source.kind)(source)
