"""The conformance suite every connector kind passes.

A kind's test module subclasses `Conformance` (pytest collects the subclass, named `Test...`) and
provides:

    make_source(tmp_path, records, *, batch_rows, incremental) -> Source
        an agency system of the kind holding `records` (column -> value, as `RECORDS`: text, integers,
        floats, booleans and nulls), stored as that system really stores them, and a Source reading it
        with `batch_rows` (and, when `incremental`, a cursor on the `id` column);
    unreachable_source(tmp_path) -> Source
        a source whose system cannot be reached now (a closed port, a missing file, ...);
and a kind that reads incrementally subclasses `IncrementalConformance` and also provides

    add_records(source, records)
        more records in the same system, with higher `id`s.

What every kind must do: every record comes back once, in order, numbered from 1; batches are at most
`batch_rows` records; every value arrives as text (codes keep their leading zeros, numbers and booleans as
JSON writes them) so that the standard, not the system, gives the types; a cursor only moves forward and a
run from it reads only what came after; a system that cannot be reached is a retriable error.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pyarrow as pa
import pytest

from connectors import connector_for
from connectors.base import ROW
from hub.errors import RetriableSourceError
from schemas.standards import load_standard_file
from transforms import harmonize

RECORDS = [
    {"id": i, "kode": f"{i:03d}", "nama": name, "jumlah": i * 5, "nilai": i + 0.5, "aktif": i % 2 == 0,
     "catatan": None if i % 3 == 0 else f"catatan {i}"}
    for i, name in enumerate(
        ["Siti Aminah", "Ahmad Fauzi", "Dewi Lestari", "Agus Saputra", "Ñoman Wibowo", "Ni Luh Putu Ayu",
         "Yohanes O'Neil", "Rizky Ramadhan", "Maria Goreti", "Ucok Siregar", "Nur Aini", "Bayu Prakoso"],
        start=1,
    )
]
MORE = [{**r, "id": r["id"] + 100, "kode": f"{r['id'] + 100:03d}"} for r in RECORDS[:3]]

# A standard giving the records' fields their types (schemas/standards dialect).
_STANDARD = {
    "$schema": "https://json-schema.org/draft/2020-12/schema", "title": "Uji", "description": "Uji konektor.",
    "type": "object", "additionalProperties": False, "x-name": "uji", "x-version": "1.0.0",
    "required": ["id", "kode"], "x-primary-key": ["id"], "x-classification": "publik", "x-walidata": "Uji",
    "x-produsen-data": ["Uji"], "x-frequency": "harian", "x-spatial-coverage": "Kota Bogor",
    "x-temporal-coverage": "2024", "x-license": "CC-BY-4.0",
    "properties": {
        "id": {"title": "Id", "description": "Id.", "type": "integer"},
        "kode": {"title": "Kode", "description": "Kode.", "type": "string", "pattern": "^[0-9]{3}$"},
        "nama": {"title": "Nama", "description": "Nama.", "type": ["string", "null"]},
        "jumlah": {"title": "Jumlah", "description": "Jumlah.", "type": ["integer", "null"]},
        "nilai": {"title": "Nilai", "description": "Nilai.", "type": ["number", "null"]},
        "aktif": {"title": "Aktif", "description": "Aktif.", "type": ["boolean", "null"]},
        "catatan": {"title": "Catatan", "description": "Catatan.", "type": ["string", "null"]},
    },
}


def as_text(value) -> str | None:
    """What a record's value must arrive as."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def read_all(source, cursor=None) -> list:
    return list(connector_for(source).read(cursor))


def records_of(batches) -> list[dict]:
    return [r for b in batches for r in b.records.to_pylist()]


class Conformance:
    def make_source(self, tmp_path: Path, records: list[dict], *, batch_rows: int, incremental: bool):
        raise NotImplementedError

    def unreachable_source(self, tmp_path: Path):
        raise NotImplementedError

    def test_every_record_comes_back_once_in_order_as_text(self, tmp_path):
        source = self.make_source(tmp_path, RECORDS, batch_rows=1000, incremental=False)
        got = records_of(read_all(source))
        assert [r[ROW] for r in got] == list(range(1, len(RECORDS) + 1))
        for record, row in zip(RECORDS, got):
            for column, value in record.items():
                # An absent value may arrive as null or, from text formats, as an empty text.
                expected = as_text(value)
                assert row[column] == expected or (expected is None and row[column] == ""), (column, row)

    def test_every_column_is_text(self, tmp_path):
        source = self.make_source(tmp_path, RECORDS, batch_rows=1000, incremental=False)
        for batch in read_all(source):
            for field in batch.records.schema:
                assert field.type == (pa.int64() if field.name == ROW else pa.string()), field

    def test_batches_are_never_larger_than_batch_rows(self, tmp_path):
        source = self.make_source(tmp_path, RECORDS, batch_rows=5, incremental=False)
        sizes = [b.records.num_rows for b in read_all(source)]
        assert sum(sizes) == len(RECORDS) and max(sizes) <= 5 and len([s for s in sizes if s]) >= 3

    def test_the_standard_gives_the_types(self, tmp_path):
        source = self.make_source(tmp_path, RECORDS, batch_rows=1000, incremental=False)
        schema = tmp_path / "uji-1.0.0.json"
        schema.write_text(json.dumps(_STANDARD), encoding="utf-8")
        standard = load_standard_file(schema)
        mapped = dataclasses.replace(source, mapping={f: {"from": f} for f in _STANDARD["properties"]})
        (batch,) = [b for b in read_all(mapped) if b.records.num_rows]
        harmonized = harmonize(mapped, standard, batch.records)
        assert not harmonized.reasons
        rows = harmonized.table.drop_columns([ROW]).to_pylist()
        assert rows == RECORDS

    def test_an_unreachable_system_is_a_retriable_error(self, tmp_path):
        source = self.unreachable_source(tmp_path)
        with pytest.raises(RetriableSourceError) as raised:
            read_all(source)
        assert source.id in str(raised.value)


class IncrementalConformance(Conformance):
    """For kinds that read incrementally on a cursor column."""

    def add_records(self, source, records: list[dict]) -> None:
        raise NotImplementedError

    def test_the_cursor_only_moves_forward_and_resumes_after_the_last_record(self, tmp_path):
        source = self.make_source(tmp_path, RECORDS, batch_rows=4, incremental=True)
        assert connector_for(source).incremental
        batches = read_all(source)
        cursors = [b.cursor for b in batches if b.records.num_rows]
        assert len(cursors) >= 3 and all(c is not None for c in cursors)
        assert cursors == sorted(cursors)
        last = json.loads(json.dumps(cursors[-1]))  # the catalog stores it as JSON
        assert records_of(read_all(source, last)) == []
        self.add_records(source, MORE)
        again = records_of(read_all(source, last))
        assert [r["id"] for r in again] == [as_text(r["id"]) for r in MORE]
