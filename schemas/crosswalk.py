"""Crosswalks between two editions of a hierarchical code list (kode wilayah 2022 -> 2025, say).

A code is dotted and its parent is the code without its last part (`32.71.06` is under `32.71`). The
crosswalk is built top-down, one level at a time, so a unit's parent already has its successor:

- a code in both editions is `tetap` (same name) or `ganti_nama` (another name);
- a code gone from the new edition whose name is found among the new children of its parent's
  successor is `pindah_kode` (same parent, new code);
- otherwise, a name found among the new units of its level under its parent's successor or under a
  new (`baru`) unit in its grandparent's successor is `pindah_induk` (moved under another parent, as
  the Papua regencies moved to the provinces made in 2022); its children then follow by name;
- otherwise `dihapus` (no successor); a new code nobody maps to is `baru`.

Names are compared after `normalize_name`. A match needs exactly one candidate, and no other gone code
of the same pass may name that candidate too: when names tie, the code stays `dihapus` rather than be
mapped to the wrong unit.
"""

from __future__ import annotations

import csv
import re
from collections import Counter, defaultdict
from typing import IO, Iterable

from hub.errors import ConfigError

__all__ = ["CHANGES", "build_crosswalk", "count_changes", "crosswalk_file", "normalize_name", "write_crosswalk"]

CHANGES = ("tetap", "ganti_nama", "pindah_kode", "pindah_induk", "dihapus", "baru")


def normalize_name(name: str) -> str:
    """A name for comparison: case, repeated spaces and a trailing dot ignored, "KAB." read as "Kabupaten"."""
    text = " ".join(name.split()).upper().removesuffix(".").rstrip()
    return re.sub(r"^KAB\. ?", "KABUPATEN ", text)


def _parent(code: str) -> str:
    return code.rpartition(".")[0]


def build_crosswalk(old_rows: Iterable[dict], new_rows: Iterable[dict]) -> list[tuple[str, str, str]]:
    """(old code, new code, change) for every code of both editions: old codes sorted, then the new ones.

    Rows have `kode`, `nama` and optionally `tingkat`; an empty code means none (`dihapus`, `baru`).
    """
    # A unit is found by its level and its normalized name.
    old = {r["kode"]: (r.get("tingkat", ""), normalize_name(r["nama"])) for r in old_rows}
    new = {r["kode"]: (r.get("tingkat", ""), normalize_name(r["nama"])) for r in new_rows}
    new_by_parent = defaultdict(set)
    for code, key in new.items():
        new_by_parent[_parent(code), key].add(code)

    result: dict[str, tuple[str, str]] = {}
    for code in old.keys() & new.keys():
        result[code] = (code, "tetap" if old[code] == new[code] else "ganti_nama")
    claimed = set(old.keys() & new.keys())

    def successor(code: str) -> str | None:
        """The new code of an old parent ("" for the root); None when it has none."""
        return "" if code == "" else result.get(code, ("",))[0] or None

    def match(gone: list[str], parents_of, change: str) -> None:
        """Map each gone code to its only unclaimed candidate when no other gone code wants that one too."""
        candidates = {
            code: {c for p in parents_of(code) for c in new_by_parent.get((p, old[code]), ())} - claimed
            for code in gone
        }
        wanted = Counter(c for found in candidates.values() for c in found)
        for code, found in candidates.items():
            if len(found) == 1:
                (target,) = found
                if wanted[target] == 1:
                    result[code] = (target, change)
                    claimed.add(target)

    gone_by_depth = defaultdict(list)
    for code in sorted(old.keys() - new.keys()):
        gone_by_depth[code.count(".")].append(code)
    for depth in sorted(gone_by_depth):
        gone = gone_by_depth[depth]
        match(gone, lambda code: {successor(_parent(code))} - {None}, "pindah_kode")
        # New units one level up that nobody maps to, by their parent.
        baru_by_parent = defaultdict(set)
        for code in new.keys() - claimed:
            if code.count(".") == depth - 1:
                baru_by_parent[_parent(code)].add(code)

        def parents_of(code: str) -> set[str]:
            parent = _parent(code)
            grandparent = successor(_parent(parent)) if parent else None
            return ({successor(parent)} | baru_by_parent.get(grandparent, set())) - {None}

        match([code for code in gone if code not in result], parents_of, "pindah_induk")
        for code in gone:
            result.setdefault(code, ("", "dihapus"))

    rows = [(code, *result[code]) for code in sorted(old)]
    return rows + [("", code, "baru") for code in sorted(new.keys() - claimed)]


def count_changes(rows: Iterable[tuple[str, str, str]]) -> dict[str, int]:
    """The number of codes of each change kind, in the order of CHANGES."""
    counts = Counter(change for _, _, change in rows)
    return {change: counts[change] for change in CHANGES}


def crosswalk_file(name: str, old: str, new: str) -> dict:
    """The registered crosswalk `OLD->NEW` of a code list: its file and columns (from codelists.yaml)."""
    from schemas.codelists import _index, describe

    describe(name, old), describe(name, new)
    entry = _index()[name].get("crosswalks", {}).get(f"{old}->{new}")
    if entry is None:
        raise ConfigError(f"code list {name!r} registers no crosswalk {old}->{new} in codelists.yaml")
    return entry


def write_crosswalk(rows: Iterable[tuple[str, str, str]], columns: list[str], out: IO[str]) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
