"""How long a dataset's old snapshots are kept: the `x-retention` keyword of a standard, checked, over defaults."""

from __future__ import annotations

from dataclasses import dataclass

from jsonschema import Draft202012Validator

from hub.errors import ConfigError

__all__ = ["KEYWORD", "SHAPE", "Retention", "Rule", "check_retention", "retention_of"]

KEYWORD = "x-retention"

_RULE = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "max-age-days": {"type": "number", "exclusiveMinimum": 0, "maximum": 36600},
        "keep-last": {"type": "integer", "minimum": 1, "maximum": 1_000_000},
    },
}
#: The keyword's JSON Schema. "snapshots": the table's snapshots that are not published versions (the steps
#: inside a publish, and commits of runs that died before the catalog recorded them). "versions": published
#: versions; without it they are kept for ever. A snapshot expires once it is older than max-age-days and
#: not among the keep-last newest of its kind.
SHAPE = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"snapshots": _RULE, "versions": {**_RULE, "required": ["max-age-days", "keep-last"]}},
}


@dataclass(frozen=True)
class Rule:
    max_age_days: float
    keep_last: int

    def as_dict(self) -> dict:
        return {"max-age-days": self.max_age_days, "keep-last": self.keep_last}


@dataclass(frozen=True)
class Retention:
    """The policy of one dataset's table. The table's current snapshot and the catalog's current version are
    kept whatever it says."""

    snapshots: Rule
    versions: Rule | None  # None: every published version stays readable

    def as_dict(self) -> dict:
        return {"snapshots": self.snapshots.as_dict(), "versions": self.versions.as_dict() if self.versions else None}


def check_retention(schema: dict, where: str) -> None:
    """Refuse a malformed `x-retention` in a standard's JSON (`schema`) with a ConfigError naming `where` (the
    standard's file) and the place in the keyword; the loader of standards calls this."""
    _checked(schema, where)


def retention_of(schema: dict, where: str, defaults: Rule) -> Retention:
    """The retention a standard's JSON (`schema`) sets, over `defaults` for the snapshots' rule; a malformed
    `x-retention` is a ConfigError as `check_retention` says."""
    value = _checked(schema, where)
    snapshots = value.get("snapshots", {})
    versions = value.get("versions")
    # JSON Schema counts 3.0 as an integer: counts are made ints here.
    return Retention(
        snapshots=Rule(snapshots.get("max-age-days", defaults.max_age_days),
                       int(snapshots.get("keep-last", defaults.keep_last))),
        versions=Rule(versions["max-age-days"], int(versions["keep-last"])) if versions is not None else None,
    )


def _checked(schema: dict, where: str) -> dict:
    value = schema.get(KEYWORD, {})
    errors = sorted(Draft202012Validator(SHAPE).iter_errors(value), key=lambda e: [str(p) for p in e.path])
    if errors:
        e = errors[0]
        at = "/".join([KEYWORD, *map(str, e.absolute_path)])
        raise ConfigError(f"{where}: at {at}: {e.message[:200]} (x-retention is "
                          '{"snapshots": {"max-age-days": N, "keep-last": K}, '
                          '"versions": {"max-age-days": N, "keep-last": K}}, both parts optional)')
    return value
