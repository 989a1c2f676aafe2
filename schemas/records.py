"""Read a file of records (CSV, JSON Lines, Parquet) for a standard, and validate it row by row."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from pathlib import Path

import pyarrow as pa

from hub.errors import ConfigError
from schemas.standards import Standard
from schemas.validation import JSON_COLUMN, json_array, json_field, validate

__all__ = ["MAX_FIELD_CHARS", "MAX_FILE_BYTES", "TOO_LONG", "read_records", "records_table", "validate_file"]

# `hub validate` holds the whole file in memory: a steward's sample or extract, not a city's register.
MAX_FILE_BYTES = 256 << 20
# As for a source's records (connectors/_file_formats.py): Excel's own limit for one cell.
MAX_FIELD_CHARS = 32_767
TOO_LONG = "_record:too_long"

# A JSON number literal (RFC 8259): what CSV text must be to count as a number, so that "007", "+1", "1." or
# " 1" stay text and fail the field's type instead of being read as something the agency did not write.
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


def _refuse_unknown(standard: Standard, names, where: str) -> None:
    # The standard has additionalProperties false: a file with other fields is not made for this standard.
    unknown = sorted(set(names) - {f.name for f in standard.fields})
    if unknown:
        # A file without its header has a record there: a name that looks like a NIK or a long text stays out.
        shown = [n if len(n) <= 64 and not re.search(r"[0-9]{5}", n) else "<not shown>" for n in unknown[:20]]
        more = f" and {len(unknown) - 20} more" if len(unknown) > 20 else ""
        raise ConfigError(f"{where}: {', '.join(shown)}{more}: not fields of standard {standard.ref}")


def records_table(standard: Standard, records: list[dict], where: str = "records") -> pa.Table:
    """Records of JSON values (a missing key or None: absent) as a table of the standard's fields.

    Every column holds JSON texts (schemas.validation.json_field), so each value keeps its JSON type: the
    string "1" stays a string, 1.0 a number, true a boolean.
    """
    names = [f.name for f in standard.fields]
    for row, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            raise ConfigError(f"{where}: record {row} is not a JSON object")
        _refuse_unknown(standard, record, f"{where}: record {row}")
    return pa.table([json_array([r.get(name) for r in records]) for name in names],
                    schema=pa.schema([json_field(name) for name in names]))


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _read_jsonl(standard: Standard, path: Path) -> pa.Table:
    records = []
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue  # a blank line (a trailing newline, say) is no record
            try:
                text = line.decode("utf-8-sig" if number == 1 else "utf-8")
                records.append(json.loads(text, parse_constant=_reject_constant))
            except UnicodeDecodeError as e:
                raise ConfigError(f"{path.name}: line {number} is not UTF-8 (byte {e.start} of the line)") from None
            except json.JSONDecodeError as e:
                raise ConfigError(f"{path.name}: line {number} is not JSON: {e.msg} (column {e.colno})") from None
            except ValueError as e:  # NaN, or an integer of thousands of digits
                raise ConfigError(f"{path.name}: line {number} is not JSON: {str(e)[:120]}") from None
            except RecursionError:
                raise ConfigError(f"{path.name}: line {number} is nested too deeply") from None
    return records_table(standard, records, path.name)


def _csv_value(text: str, json_type: str):
    """CSV text as a value of the field's type when it is a literal of that type, else the text itself."""
    if json_type == "boolean" and text.lower() in ("true", "false"):
        return text.lower() == "true"
    if json_type in ("integer", "number") and _JSON_NUMBER.fullmatch(text):
        try:
            value = json.loads(text)
        except ValueError:  # an integer of thousands of digits: Python refuses to convert it
            return text
        if value == value and value not in (float("inf"), float("-inf")):  # 1e999 overflows: not a number we can hold
            return value
    return text


def _read_csv(standard: Standard, path: Path) -> pa.Table:
    reader = None
    try:
        with path.open(encoding="utf-8-sig", newline="") as file:
            reader = csv.reader(file)
            rows = list(reader)
    except UnicodeDecodeError:  # decoded ahead a block at a time: the reader's line number says nothing here
        raise ConfigError(f"{path.name}: not UTF-8 text (a CSV for hub validate is UTF-8)") from None
    except csv.Error as e:  # a value past the csv module's own limit (128 KiB), for one
        raise ConfigError(f"{path.name}: line {reader.line_num}: {str(e)[:120]}") from None
    if not rows:
        raise ConfigError(f"{path.name}: empty file, expected a header line")
    header, rows = rows[0], [r for r in rows[1:] if r]
    _refuse_unknown(standard, header, path.name)
    for number, row in enumerate(rows, start=1):
        if len(row) != len(header):
            raise ConfigError(f"{path.name}: record {number} has {len(row)} cells, the header {len(header)}")
    records = []
    types = {f.name: f.type for f in standard.fields}
    for row in rows:
        # An empty cell is absent; text is read as the standard's type says ("007" for a string stays "007").
        records.append({name: _csv_value(text, types[name]) for name, text in zip(header, row) if text != ""})
    return records_table(standard, records, path.name)


def _read_parquet(standard: Standard, path: Path) -> pa.Table:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as e:
        raise ConfigError(f"{path.name}: not a readable Parquet file ({str(e).splitlines()[0][:120]})") from None
    _refuse_unknown(standard, table.column_names, path.name)
    columns = []
    for f in standard.fields:
        if f.name not in table.column_names:
            columns.append(pa.nulls(table.num_rows, pa.string()))
            continue
        column = table.column(f.name)
        if pa.types.is_dictionary(column.type):  # pandas categoricals: their values are what counts
            column = column.cast(column.type.value_type)
        kind = column.type
        if pa.types.is_date(kind):  # JSON has no dates: a standard's dates are ISO text
            column = column.cast(pa.string())
        elif not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_integer(kind)
                  or pa.types.is_floating(kind) or pa.types.is_boolean(kind) or pa.types.is_null(kind)):
            raise ConfigError(f"{path.name}: column {f.name!r} is of Arrow type {kind}; a record's values are "
                              "text, integers, floating point numbers, booleans or dates")
        columns.append(column)
    return pa.table(columns, names=[f.name for f in standard.fields])


_READERS = {".csv": _read_csv, ".jsonl": _read_jsonl, ".ndjson": _read_jsonl, ".parquet": _read_parquet}


def read_records(standard: Standard, path: Path) -> pa.Table:
    """The records of a CSV (UTF-8, comma), JSON Lines or Parquet file, as a table of the standard's fields."""
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise ConfigError(f"{path}: expected a .csv, .jsonl or .parquet file of records")
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ConfigError(f"{path.name}: {size} bytes, more than hub validate reads ({MAX_FILE_BYTES} bytes); "
                          "validate a part of it, or register it as a source")
    return reader(standard, path)


def _too_long(table: pa.Table) -> list[int]:
    """Positions of the records holding a value longer than MAX_FIELD_CHARS (as text, or as its JSON text)."""
    import pyarrow.compute as pc

    mask = None
    for name in table.column_names:
        column = table[name]
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            continue
        # A JSON text column holds a string with its quotes: "..." is two characters longer than the value.
        limit = MAX_FIELD_CHARS + (2 if table.schema.field(name).metadata == JSON_COLUMN else 0)
        if (pc.max(pc.binary_length(column)).as_py() or 0) <= limit:
            continue
        long = pc.fill_null(pc.greater(pc.utf8_length(column), limit), False)
        mask = long if mask is None else pc.or_(mask, long)
    if mask is None:
        return []
    return pc.indices_nonzero(mask).to_pylist()


def validate_file(standard: Standard, path: Path) -> dict:
    """Validate every record of a file: a summary (with the rows failing each rule), and each invalid row
    (1 = first record) with its reasons."""
    table = read_records(standard, path)
    long = _too_long(table)
    reasons: dict[int, list[str]] = {position: [TOO_LONG] for position in long}
    # The suite sees the other records; its row positions are then those of the file again.
    kept = [i for i in range(table.num_rows) if i not in reasons] if long else None
    verdict = validate(standard, table.take(pa.array(kept, pa.int64())) if kept is not None else table)
    for position, found in verdict.reasons.items():
        reasons[kept[position] if kept is not None else position] = found
    invalid = [
        {"row": position + 1,
         "reasons": [dict(zip(("field", "rule"), reason.split(":", 1))) for reason in reasons[position]]}
        for position in sorted(reasons)
    ]
    failures = Counter(reason for found in reasons.values() for reason in found)
    return {
        "summary": {"rows": table.num_rows, "valid": table.num_rows - len(invalid), "invalid": len(invalid),
                    "standard": standard.ref, "reasons": dict(failures.most_common())},
        "invalid_rows": invalid,
    }
