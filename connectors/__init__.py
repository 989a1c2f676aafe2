"""How data is pulled from agency systems: the Connector interface, its kinds, and the source registry."""

from connectors.base import Batch, Connector
from connectors.kinds import connector_for, known_kinds, register_kind
from connectors.registry import Source, load_source, load_sources

__all__ = [
    "Batch",
    "Connector",
    "Source",
    "connector_for",
    "known_kinds",
    "load_source",
    "load_sources",
    "register_kind",
]
