"""Property: the hub's verdict on a record (its Great Expectations path) is jsonschema's on the same record.

Hypothesis draws small standards from the dialect's field keywords and records of JSON values of every scalar
type. The reference is Draft202012Validator with its format checker, on the record with its absent values
(None) removed. A field is never both required and nullable: the loader refuses that, since a null
counts as absent and so fails `required` (docs/standards.md).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pyarrow as pa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from hub.errors import ConfigError
from schemas.records import records_table
from schemas.standards import load_standard_file
from schemas.suite import has_json_type
from schemas.validation import Validation, validate

SATU_DATA = {
    "x-walidata": "Diskominfo", "x-produsen-data": ["Disdukcapil"], "x-frequency": "bulanan",
    "x-spatial-coverage": "Kota Bogor", "x-temporal-coverage": "2025", "x-license": "CC-BY-4.0",
    "x-classification": "publik",
}
TYPES = ("string", "integer", "number", "boolean")
EDGE_VALUES = [0, 1, 1.0, -1, 0.5, 1.5, -0.0, 2**53 + 1, 10**20, True, False, "1", "", "0", "a", "ab", "é",
               "2020-01-31", "2020-02-30", "2020-1-01", "１２", "a@b", "1985-04-12T23:20:50Z",
               "1985-04-12T23:20:50z", "abc\n"]
json_values = st.one_of(
    st.sampled_from(EDGE_VALUES),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e15, max_value=1e15),
    st.text(max_size=6),
)
numbers = st.one_of(st.integers(-10, 10), st.sampled_from([0.5, 1.0, 2.5, -1.5, 10**20]))
keywords = st.fixed_dictionaries({}, optional={
    "enum": st.lists(json_values, min_size=0, max_size=4),
    "const": json_values,
    "minimum": numbers, "maximum": numbers, "exclusiveMinimum": numbers, "exclusiveMaximum": numbers,
    "multipleOf": st.sampled_from([1, 2, 3, 0.5, 1.5, 0.1, 0.0001, 1e-08]),
    "minLength": st.integers(0, 4), "maxLength": st.integers(0, 4),
    "pattern": st.sampled_from(["^a", "b$", "^[0-9]+$", r"\d", "^.{2}$", "é", "^abc$", "^$"]),
    "format": st.sampled_from(["date", "date-time", "email"]),
})


@st.composite
def standards_and_records(draw):
    fields = {}
    required = []
    for name in ("a", "b")[: draw(st.integers(1, 2))]:
        spec = draw(keywords)
        kind = draw(st.sampled_from(TYPES))
        nullable = draw(st.booleans())
        if draw(st.booleans()) and not nullable:
            required.append(name)
        fields[name] = {"title": name, "description": name, "type": [kind, "null"] if nullable else kind, **spec}
    # Values drawn freely, and from each field's own enum and const, so that equality gets exercised.
    own = [v for spec in fields.values() for v in [*spec.get("enum", []), *([spec["const"]] if "const" in spec else [])]
           ]
    values = st.one_of(st.none(), json_values, *([st.sampled_from(own)] if own else []))
    records = draw(st.lists(st.fixed_dictionaries({name: values for name in fields}), min_size=1, max_size=5))
    return fields, required, records


def _standard(folder: Path, fields: dict, required: list):
    path = folder / "acak-1.0.0.json"
    path.write_text(json.dumps({
        "$schema": "https://json-schema.org/draft/2020-12/schema", "title": "Acak", "description": "Acak.",
        "type": "object", "additionalProperties": False, "x-name": "acak", "x-version": "1.0.0",
        "required": required, "properties": fields, **SATU_DATA,
    }), encoding="utf-8")
    return load_standard_file(path)


def _typed_table(standard, records):
    """The records as the pipeline hands them over (one Arrow type per field), when every value fits one."""
    arrow = {"string": pa.string(), "integer": pa.int64(), "number": pa.float64(), "boolean": pa.bool_()}
    python = {"string": str, "integer": int, "number": float, "boolean": bool}
    columns = {}
    for f in standard.fields:
        values = [r[f.name] for r in records]
        present = [v for v in values if v is not None]
        # Exact types only: an int in a float64 column, or a bool in an int64 one, is not what it was.
        if not all(type(v) is python[f.type] and has_json_type(v, f.type) for v in present):
            return None
        if f.type == "integer" and any(abs(v) >= 2**63 for v in present):
            return None
        columns[f.name] = pa.array(values, arrow[f.type])
    return pa.table(columns)


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(standards_and_records())
# Integers above 2**53 next to a null (which numpy would turn into floats), booleans next to a null.
@example(({"a": {"title": "a", "description": "a", "type": "integer", "multipleOf": 2, "maximum": 2**53 + 2}},
          [], [{"a": 2**53 + 1}, {"a": None}, {"a": 2**53 + 3}]))
@example(({"a": {"title": "a", "description": "a", "type": "boolean", "enum": [1, True]}}, ["a"],
          [{"a": True}, {"a": None}, {"a": False}, {"a": 1}]))
def test_the_hub_agrees_with_jsonschema(case):
    fields, required, records = case
    with tempfile.TemporaryDirectory() as folder:
        try:
            standard = _standard(Path(folder), fields, required)
        except ConfigError as e:  # the dialect refuses bounds no value fits, which GE would not run
            assert "no value fits" in str(e)
            return
        reference = Draft202012Validator(standard.schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
        expected = [reference.is_valid({k: v for k, v in r.items() if v is not None}) for r in records]
        # As JSON Lines and CSV are read: values of any JSON type.
        verdict = validate(standard, records_table(standard, records))
        assert [row not in verdict.reasons for row in range(len(records))] == expected, verdict.reasons
        # As the pipeline hands records over: typed Arrow columns, the fast path.
        table = _typed_table(standard, records)
        if table is not None:
            verdict = validate(standard, table)
            assert [row not in verdict.reasons for row in range(len(records))] == expected, verdict.reasons
            # As a run validates its batches: values judged in an earlier batch keep their verdict.
            validation, half = Validation(standard), len(records) // 2
            verdicts = [validation(table.slice(0, half)), validation(table.slice(half)), validation(table)]
            valid = [[row not in v.reasons for row in range(len(part))]
                     for v, part in zip(verdicts, (records[:half], records[half:], records))]
            assert valid == [expected[:half], expected[half:], expected]


def test_columns_with_few_new_values_share_one_ge_run_and_the_verdicts_are_the_same(monkeypatch):
    """A batch's columns are judged on their new distinct values; the columns with at most GROUP_VALUES of them
    go to GE together (each filled up to the longest with its first value again), the others alone. Grouped or
    not, every row gets the same reasons."""
    import schemas.validation as validation
    from schemas import load_standard

    standard = load_standard("penduduk@1.0.0")
    records = {f.name: ["x"] * 4 for f in standard.fields}
    records.update(nik=["3271010101900001", "3271010101900002", "32710101019000x3", None],
                   jenis_kelamin=["1", "2", "1", "9"], tanggal_lahir=["1990-01-01", "1990-02-30", "1990-01-01", None],
                   agama=["1"] * 4, kode_wilayah=["32.71.01.1001"] * 4)
    table = pa.table({name: pa.array(values, pa.string()) for name, values in records.items()})
    runs = []
    real = validation._validate
    monkeypatch.setattr(validation, "_validate", lambda batch, suite, frame: (
        runs.append(sorted({e.column for e in suite.expectations})), real(batch, suite, frame))[1])

    grouped = validation.Validation(standard, unique_key=False)(table)
    assert len(runs) == 1 and set(runs[0]) == set(records)
    assert grouped.reasons[2] == ["nik:pattern"] and "tanggal_lahir:format" in grouped.reasons[1]

    runs.clear()
    monkeypatch.setattr(validation, "GROUP_VALUES", 1)  # the columns with one value together, each other alone
    alone = validation.Validation(standard, unique_key=False)(table)
    assert sorted(map(tuple, runs)) == sorted([("jenis_kelamin",), ("nik",), ("tanggal_lahir",),
                                               tuple(sorted(set(records) - {"nik", "jenis_kelamin", "tanggal_lahir"}))])
    assert alone.reasons == grouped.reasons and alone.results == grouped.results


def test_a_key_of_one_field_judged_row_by_row_gets_the_reasons_it_gets_whole():
    """The pipeline leaves the key's uniqueness out (unique_key=False) and sends the key's values to GE as they
    are, not as distinct values: repeated, missing and malformed NIKs get the reasons the whole suite gives them,
    but for the uniqueness rule."""
    from schemas import load_standard
    from schemas.validation import Validation

    standard = load_standard("penduduk@1.0.0")
    niks = ["3271010101900001", "3271010101900001", None, "32710101019000x3", "32710101019000x3", "3271010101900002",
            None, "12"]
    records = {f.name: ["x"] * len(niks) for f in standard.fields}
    records.update(nik=niks, jenis_kelamin=["1"] * len(niks), agama=["1"] * len(niks),
                   tanggal_lahir=["1990-01-01"] * len(niks), kode_wilayah=["32.71.01.1001"] * len(niks))
    table = pa.table({name: pa.array(values, pa.string()) for name, values in records.items()})

    whole = Validation(standard)(table)
    by_row = Validation(standard, unique_key=False)(table)
    assert by_row.reasons == {row: [r for r in reasons if r != "nik:duplicate_key"]
                              for row, reasons in whole.reasons.items() if reasons != ["nik:duplicate_key"]}
    assert {row for row, reasons in by_row.reasons.items() if "nik:pattern" in reasons} == {3, 4, 7}
    assert {row for row, reasons in by_row.reasons.items() if "nik:required" in reasons} == {2, 6}
