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
from schemas.validation import json_array, json_field, validate

__all__ = ["read_records", "records_table", "validate_file"]

# A JSON number literal (RFC 8259): what CSV text must be to count as a number, so that "007", "+1", "1." or
# " 1" stay text and fail the field's type instead of being read as something the agency did not write.
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


def _refuse_unknown(standard: Standard, names, where: str) -> None:
    # The standard has additionalProperties false: a file with other fields is not made for this standard.
    unknown = sorted(set(names) - {f.name for f in standard.fields})
    if unknown:
        raise ConfigError(f"{where}: {', '.join(unknown)}: not fields of standard {standard.ref}")


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
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue  # a blank line (a trailing newline, say) is no record
            try:
                records.append(json.loads(line, parse_constant=_reject_constant))
            except ValueError as e:
                raise ConfigError(f"{path.name}: line {number} is not JSON: {e}") from None
    return records_table(standard, records, path.name)


def _csv_value(text: str, json_type: str):
    """CSV text as a value of the field's type when it is a literal of that type, else the text itself."""
    if json_type == "boolean" and text.lower() in ("true", "false"):
        return text.lower() == "true"
    if json_type in ("integer", "number") and _JSON_NUMBER.fullmatch(text):
        value = json.loads(text)
        if value == value and value not in (float("inf"), float("-inf")):  # 1e999 overflows: not a number we can hold
            return value
    return text


def _read_csv(standard: Standard, path: Path) -> pa.Table:
    with path.open(encoding="utf-8-sig", newline="") as file:
        rows = list(csv.reader(file))
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

    table = pq.read_table(path)
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
    return reader(standard, path)


def validate_file(standard: Standard, path: Path) -> dict:
    """Validate every record of a file: a summary (with the rows failing each rule), and each invalid row
    (1 = first record) with its reasons."""
    table = read_records(standard, path)
    verdict = validate(standard, table)
    invalid = [
        {"row": position + 1,
         "reasons": [dict(zip(("field", "rule"), reason.split(":", 1))) for reason in verdict.reasons[position]]}
        for position in sorted(verdict.reasons)
    ]
    failures = Counter(reason for reasons in verdict.reasons.values() for reason in reasons)
    return {
        "summary": {"rows": table.num_rows, "valid": table.num_rows - len(invalid), "invalid": len(invalid),
                    "standard": standard.ref, "reasons": dict(failures.most_common())},
        "invalid_rows": invalid,
    }
