"""Versioned code lists (Kemendagri kode wilayah, Dukcapil agama, ...) that standards refer to."""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

import yaml

from hub.errors import ConfigError

__all__ = ["CODELISTS_DIR", "codes", "describe"]

CODELISTS_DIR = Path(__file__).resolve().parent / "codelists"


@cache
def _index() -> dict:
    return yaml.safe_load((CODELISTS_DIR / "codelists.yaml").read_text(encoding="utf-8"))


def describe(name: str, edition: str) -> dict:
    """The index entry of one edition of a code list, with its owner and title."""
    entry = _index().get(name)
    if entry is None:
        raise ConfigError(f"unknown code list {name!r}; known: {', '.join(sorted(_index()))}")
    ed = entry["editions"].get(str(edition))
    if ed is None:
        raise ConfigError(f"code list {name!r} has no edition {edition!r}; editions: {', '.join(entry['editions'])}")
    return {"name": name, "edition": str(edition), "title": entry["title"], "owner": entry["owner"], **ed}


@cache
def _rows(name: str, edition: str) -> tuple[dict, ...]:
    path = CODELISTS_DIR / describe(name, edition)["file"]
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        return tuple(dict(zip(header, row)) for row in reader)


def codes(ref: dict) -> list[str]:
    """The codes a standard's `x-code-list` reference admits, narrowed by `level` and `within`."""
    rows = _rows(ref["name"], str(ref["edition"]))
    level, within = ref.get("level"), ref.get("within")
    return [
        r["kode"]
        for r in rows
        if (level is None or r.get("tingkat") == level) and (within is None or r["kode"].startswith(within + "."))
    ]
