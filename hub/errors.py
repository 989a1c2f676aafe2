"""The hub's errors, grouped by what the caller does next."""

from __future__ import annotations

__all__ = [
    "HubError",
    "ConfigError",
    "SourceError",
    "RetriableSourceError",
    "FatalSourceError",
    "DataQualityError",
    "QueryError",
    "NotReady",
    "Busy",
]


class HubError(Exception):
    """Root of every error the hub raises on purpose."""


class ConfigError(HubError):
    """A registration, standard or setting is wrong: fix the file named in the message."""


class SourceError(HubError):
    """Reading an agency system failed."""


class RetriableSourceError(SourceError):
    """The agency system may answer later (timeout, connection refused): retry."""


class FatalSourceError(SourceError):
    """The agency system answered with something the hub cannot read: retrying will not help."""


class DataQualityError(HubError):
    """The data broke a gate that stops publishing (for example no valid row at all)."""


class NotReady(HubError):
    """What a build needs is not published yet (an indicator's input): not a failure, it runs when it is."""


class QueryError(HubError):
    """An analyst's SQL is not valid over the published datasets: fix the query."""


class Busy(HubError):
    """The hub is at one of its limits for now (every query slot taken): try again after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
