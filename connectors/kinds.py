"""The registry of connector kinds: built-ins and those of outside packages (entry points)."""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import entry_points

from connectors.base import Connector
from hub.errors import ConfigError

__all__ = ["ENTRY_POINT_GROUP", "connector_for", "known_kinds", "register_kind"]

ENTRY_POINT_GROUP = "interop_hub.connectors"
# Built-in kinds, imported when a source uses them: a kind's dependencies cost nothing to the others.
_BUILTIN = {
    "file": "connectors.file:FileConnector",
    "sql": "connectors.sql:SqlConnector",
    "rest": "connectors.rest:RestConnector",
    "ckan": "connectors.ckan:CkanConnector",
}
_kinds: dict[str, type[Connector]] = {}


def register_kind(name: str, cls: type) -> None:
    if not (isinstance(cls, type) and issubclass(cls, Connector)):
        raise TypeError(f"connector kind {name!r} must be a subclass of connectors.Connector, got {cls!r}")
    _kinds[name] = cls


def _available() -> dict:
    """Kind name -> where to load it from: built-ins, then outside packages' entry points."""
    found: dict = dict(_BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found[ep.name] = ep
    return found


def known_kinds() -> list[str]:
    return sorted(_kinds.keys() | _available().keys())


def kind_class(name: str) -> type[Connector]:
    """The class of a kind; one registered explicitly keeps its name over a built-in or entry point."""
    if name not in _kinds:
        target = _available().get(name)
        if target is None:
            raise ConfigError(f"unknown connector kind {name!r}; known kinds: {', '.join(known_kinds())}")
        if isinstance(target, str):
            module, _, attr = target.partition(":")
            register_kind(name, getattr(import_module(module), attr))
        else:
            register_kind(name, target.load())
    return _kinds[name]


def connector_for(source) -> Connector:
    """The connector that reads `source`; a ConfigError if the source cannot run in this process (a
    ${HUB_DEMO_URL} it names while that variable is unset: see connectors/registry.py)."""
    unresolved = getattr(source, "unresolved", ())
    if unresolved:
        raise ConfigError(unresolved[0])
    return kind_class(source.kind)(source)
