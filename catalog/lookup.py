"""Records of a dataset version found by their key, as a caller may see them, in microseconds once indexed.

A lookup by key (the service bus's `GET /r1/{service}/{nik}`) must answer while a citizen stands at the counter,
many times a second, on a dataset of millions of rows. Scanning the version for every call (`catalog.rows.page`)
costs tens of milliseconds; so the first call builds an index of what the caller may see (`catalog.views.visible`:
the same access rule and the same masked copy every other path reads) and later calls binary-search it.

An index belongs to one dataset version, one access rule (the caller's role and agency, the dataset's
classification, the standard, the pseudonym key) and one choice of fields; a new version, a changed rule or a new
pseudonym key is a new index. At most HUB_LOOKUP_INDEXES indexes (default 4) are kept, the least recently used
dropped first; an index holds only the fields asked for, as Arrow columns, and its keys as one NumPy array.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from catalog.access import MASKED, PSEUDONYM
from catalog.identity import Identity
from hub.errors import QueryError
from hub.settings import positive_setting

__all__ = ["by_key", "forget", "indexed"]


@dataclass(frozen=True)
class _Index:
    snapshot_id: int | None
    keys: np.ndarray  # the key column's values, sorted (bytes of UTF-8 text, or numbers)
    rows: np.ndarray  # for each sorted key, its row in `table`
    table: pa.Table  # the visible fields asked for, codes as plain values
    masked: tuple[str, ...]
    pseudonymized: tuple[str, ...]
    withheld: tuple[str, ...]

    def find(self, value) -> list[dict]:
        first, last = np.searchsorted(self.keys, value, "left"), np.searchsorted(self.keys, value, "right")
        if first == last:
            return []
        found = self.table.take(pa.array(self.rows[first:last]))
        return [{k: v.isoformat() if isinstance(v, (dt.date, dt.datetime)) else v for k, v in row.items()}
                for row in found.to_pylist()]


_INDEXES: OrderedDict[tuple, _Index] = OrderedDict()
_BUILDING: dict[tuple, threading.Lock] = {}
_LOCK = threading.Lock()


def by_key(settings, dataset, who: Identity, key: str, value: str, fields: tuple[str, ...]) -> dict:
    """The records of `dataset` (a catalog Dataset) at its current version whose `key` is `value`, holding those of
    `fields` that `who` may see: {"snapshot_id", "rows", "masked_fields", "pseudonymized_fields", "withheld_fields"}.

    `value` is compared with what `who` sees of the key: a key pseudonymized for `who` is looked up by its
    pseudonym. Raises `AccessDenied` when `who` may not read the dataset, `QueryError` when the key is masked for
    `who` or `value` is not of the key's type. The caller records the read (nothing is audited here).
    """
    index = _index(settings, dataset, who, key, tuple(dict.fromkeys(fields)))
    if index.keys.dtype.kind == "S":
        wanted = value.encode()
    else:
        try:
            wanted = index.keys.dtype.type(value)
        except (TypeError, ValueError):
            raise QueryError(f"dataset {dataset.id}: {key} is a number, and the value given is not") from None
    return {"snapshot_id": index.snapshot_id, "rows": index.find(wanted), "masked_fields": list(index.masked),
            "pseudonymized_fields": list(index.pseudonymized), "withheld_fields": list(index.withheld)}


def forget() -> None:
    """Drop every index (tests; a process that must give their memory back)."""
    with _LOCK:
        _INDEXES.clear()


def indexed(settings, dataset, who: Identity, key: str, fields: tuple[str, ...]) -> bool:
    """Whether `by_key` with these arguments answers from an index already built (a quick lookup)."""
    name = _name(settings, dataset, who, key, tuple(dict.fromkeys(fields)))
    with _LOCK:
        return name in _INDEXES


def _name(settings, dataset, who: Identity, key: str, fields: tuple[str, ...]) -> tuple:
    from transforms import pseudonym

    rule = (dataset.classification, dataset.standard, dataset.standard_version, who.role, who.agency,
            hmac.new(pseudonym.key(settings.home), b"lookup indexes", hashlib.sha256).hexdigest()[:16])
    return str(settings.home), dataset.id, dataset.snapshot_id, rule, key, fields


def _index(settings, dataset, who: Identity, key: str, fields: tuple[str, ...]) -> _Index:
    name = _name(settings, dataset, who, key, fields)
    with _LOCK:
        index = _INDEXES.get(name)
        if index is not None:
            _INDEXES.move_to_end(name)
            return index
        building = _BUILDING.setdefault(name, threading.Lock())
    with building:  # one build per index; callers that ask meanwhile wait for it
        with _LOCK:
            index = _INDEXES.get(name)
        if index is None:
            index = _build(settings, dataset, who, key, fields)
            with _LOCK:
                for other in [n for n in _INDEXES if n[:2] == name[:2] and n[2] != name[2]]:
                    del _INDEXES[other]  # the dataset's other versions: a lookup reads the current one only
                _INDEXES[name] = index
                while len(_INDEXES) > positive_setting("HUB_LOOKUP_INDEXES", 4, int):
                    _INDEXES.popitem(last=False)
                _BUILDING.pop(name, None)
    return index


def _build(settings, dataset, who: Identity, key: str, fields: tuple[str, ...]) -> _Index:
    from catalog.views import visible

    shown = visible(settings, dataset, who)  # AccessDenied when `who` may not read it
    seen, names = shown.access, shown.data.schema.names
    if key not in names or seen.column(key) == MASKED:
        raise QueryError(f"dataset {dataset.id}: {key} is not a field you may look records up by")
    columns = [c for c in dict.fromkeys((key, *fields)) if c in names]
    table = shown.data.to_table(columns=columns)
    plain = pa.schema([f.with_type(f.type.value_type) if pa.types.is_dictionary(f.type) else f
                       for f in table.schema])
    table = table.cast(plain).combine_chunks()
    keys = table[key]
    present = pc.is_valid(keys)
    positions = np.flatnonzero(present.to_numpy(zero_copy_only=False))
    keys = keys.filter(present)
    if pa.types.is_string(keys.type) or pa.types.is_large_string(keys.type):
        values = keys.cast(pa.binary()).to_numpy(zero_copy_only=False).astype(np.bytes_)
    elif pa.types.is_integer(keys.type) or pa.types.is_floating(keys.type):
        values = keys.to_numpy(zero_copy_only=False)
    else:
        values = keys.cast(pa.string()).cast(pa.binary()).to_numpy(zero_copy_only=False).astype(np.bytes_)
    order = np.argsort(values, kind="stable")
    shown_fields = set(columns) & set(fields)
    return _Index(
        snapshot_id=dataset.snapshot_id, keys=values[order], rows=positions[order],
        table=table.select([c for c in columns if c in shown_fields]),
        masked=tuple(sorted(c for c in shown_fields if seen.column(c) == MASKED)),
        pseudonymized=tuple(sorted(c for c in shown_fields if seen.column(c) == PSEUDONYM)),
        withheld=tuple(sorted(f for f in fields if f in shown.withheld)))
