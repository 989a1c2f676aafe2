"""Versioned code lists (Kemendagri kode wilayah, Dukcapil agama, ...) that standards refer to."""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

import yaml

from hub.errors import ConfigError

__all__ = ["CODELISTS_DIR", "codes", "describe", "editions", "list_codelists", "rows"]

CODELISTS_DIR = Path(__file__).resolve().parent / "codelists"


@cache
def _index() -> dict:
    return yaml.safe_load((CODELISTS_DIR / "codelists.yaml").read_text(encoding="utf-8"))


def editions(name: str) -> list[str]:
    """The editions of a code list, oldest first."""
    entry = _index().get(name)
    if entry is None:
        raise ConfigError(f"unknown code list {name!r}; known: {', '.join(sorted(_index()))}")
    return list(entry["editions"])


def describe(name: str, edition: str) -> dict:
    """The index entry of one edition of a code list, with its owner and title."""
    editions(name)
    entry = _index()[name]
    ed = entry["editions"].get(str(edition))
    if ed is None:
        raise ConfigError(f"code list {name!r} has no edition {edition!r}; editions: {', '.join(entry['editions'])}")
    return {"name": name, "edition": str(edition), "title": entry["title"], "owner": entry["owner"], **ed}


def list_codelists() -> list[dict]:
    """Every code list and edition, with its owner, title and number of codes."""
    return [
        {**describe(name, edition), "codes": len(rows(name, edition))}
        for name, entry in sorted(_index().items())
        for edition in entry["editions"]
    ]


def rows(name: str, edition: str) -> tuple[dict, ...]:
    """The rows of one edition (kode, nama, and what else the file has)."""
    return _rows(name, str(edition))


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
