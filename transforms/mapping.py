"""The declarative mapping engine: a source's `mapping:` turns its records into the standard's shape."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from connectors.base import ROW
from hub.errors import ConfigError
from transforms.dates import parse_dates
from transforms.normalize import normalizer

__all__ = ["Harmonized", "harmonize", "arrow_type"]

_TRUE = ["true", "ya", "y", "1", "benar"]
_FALSE = ["false", "tidak", "t", "0", "salah"]
_INTEGER = r"^[+-]?[0-9]+$"
_NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"


def arrow_type(field) -> pa.DataType:
    """The Arrow type of a standard's field while it is harmonized and validated (dates stay ISO text)."""
    return {"string": pa.string(), "integer": pa.int64(), "number": pa.float64(), "boolean": pa.bool_()}[field.type]


@dataclass
class Harmonized:
    """Records in the standard's shape (plus `_row`), and per row the reasons harmonization failed."""

    table: pa.Table
    reasons: dict[int, list[str]]


def harmonize(source, standard, records: pa.Table) -> Harmonized:
    """Apply the source's mapping to one batch. Never drops a row: failures become reason codes."""
    n = records.num_rows
    columns, failures = [], []
    for field in standard.fields:
        spec = source.mapping.get(field.name)
        if spec:
            values = _build(source, field, spec, records, failures, field.name not in standard.primary_key)
        else:
            values = pa.nulls(n, arrow_type(field))
        columns.append(values)
    unknown = sorted(set(source.mapping) - {f.name for f in standard.fields})
    if unknown:
        raise ConfigError(f"{source.path}: field mapping: {unknown} are not fields of standard {standard.ref}")
    table = pa.Table.from_arrays(columns + [records[ROW]], names=[f.name for f in standard.fields] + [ROW])
    reasons: dict[int, list[str]] = {}
    for reason, failed in failures:
        for position in pc.indices_nonzero(pc.fill_null(failed, False)).to_pylist():
            reasons.setdefault(position, []).append(reason)
    return Harmonized(table=table, reasons=reasons)


def _build(source, field, spec: dict, records: pa.Table, failures: list, repeats: bool) -> pa.Array:
    if "value" in spec:
        return pa.array([spec["value"]] * records.num_rows).cast(arrow_type(field))
    column = spec["from"]
    if column not in records.column_names:
        known = [c for c in records.column_names if c != ROW]
        # A file without its header row has a record where the names belong: a name that looks like a NIK,
        # a phone number or a long text is not shown, so the message carries no identifier.
        shown = [c if len(c) <= 64 and not re.search(r"[0-9]{5}", c) else "<not shown>" for c in known[:50]]
        more = f" and {len(known) - 50} more" if len(known) > 50 else ""
        raise ConfigError(f"{source.path}: field mapping/{field.name}/from: column {column!r} is not in the source; "
                          f"columns: {shown}{more}")
    text = records[column].combine_chunks()
    # Every step is a function of the value alone, so where values repeat (all but the key) it runs once
    # per distinct value: a column of a million rows often holds a few thousand dates or codes.
    encoded = text.dictionary_encode() if repeats else None
    try:
        values, failed = _convert(spec, field, encoded.dictionary if repeats else text)
    except ValueError as e:
        raise ConfigError(f"{source.path}: field mapping/{field.name}: {e}") from None
    if not repeats:
        failures.extend(failed)
        return values
    failures.extend((reason, pc.take(mask, encoded.indices)) for reason, mask in failed)
    return pc.take(values, encoded.indices)


def _convert(spec: dict, field, text: pa.Array) -> tuple[pa.Array, list[tuple[str, pa.Array]]]:
    """Trim, normalize, crosswalk, parse dates and cast distinct values; say which failed and why."""
    failed = []
    # Blank cells are absent values, never empty strings.
    text = pc.utf8_trim_whitespace(text)
    text = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
    present = pc.is_valid(text)
    if "normalize" in spec:
        normalized = normalizer(spec["normalize"])(text)
        failed.extend((f"{field.name}:{rule}", mask) for rule, mask in normalized.failures)
        text = normalized.values
    if "crosswalk" in spec:
        table = {str(k).strip().upper(): v for k, v in spec["crosswalk"].items()}
        found = pc.index_in(pc.utf8_upper(text), pa.array(list(table)))
        mapped = pc.take(pa.array(list(table.values()), pa.string()), found)
        failed.append((f"{field.name}:unmapped_code", pc.and_(pc.is_valid(text), pc.is_null(mapped))))
        text = mapped
    if "date_formats" in spec:
        parsed = parse_dates(text, spec["date_formats"])
        failed.append((f"{field.name}:unparseable_date", pc.and_(pc.is_valid(text), pc.is_null(parsed))))
        text = parsed
    typed = _cast(text, field)
    failed.append((f"{field.name}:type", pc.and_(present, pc.and_(pc.is_valid(text), pc.is_null(typed)))))
    return typed, failed


def _cast(text: pa.Array, field) -> pa.Array:
    """Text to the field's type; text that is not a value of the type becomes null (and a reason)."""
    target = arrow_type(field)
    if target == pa.string():
        return text
    if target == pa.bool_():
        lowered = pc.utf8_lower(text)
        return pc.if_else(pc.is_in(lowered, pa.array(_TRUE)), True,
                          pc.if_else(pc.is_in(lowered, pa.array(_FALSE)), False, pa.scalar(None, pa.bool_())))
    pattern = _INTEGER if target == pa.int64() else _NUMBER
    ok = pc.fill_null(pc.match_substring_regex(text, pattern), False)
    return pc.cast(pc.if_else(ok, text, pa.scalar(None, pa.string())), target)
