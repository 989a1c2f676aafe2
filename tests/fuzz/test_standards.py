"""Fuzz: malformed data standards (JSON Schema files) through load_standard_file, and `hub validate` on
hostile record files against a standard."""

from __future__ import annotations

import copy
import csv
import io
import json
import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from schemas.records import validate_file
from schemas.standards import STANDARDS_DIR, load_standard_file
from schemas.validation import validate
from schemas.records import records_table

from ._hostile import NAME, NIK, assert_hub_error, assert_no_leak, budget, capture_all_logs, cells, messages_of

PENDUDUK = json.loads((STANDARDS_DIR / "penduduk-1.1.0.json").read_text(encoding="utf-8"))
FIELDS = list(PENDUDUK["properties"])

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=10**20),
                         st.floats(allow_nan=False, allow_infinity=False), cells,
                         st.sampled_from(["string", "integer", "number", "boolean", "null", "object", "array",
                                          "date", "email", "uri", "(", "[a-", "^[0-9]{16}$", "(a+)+$", "x-nik",
                                          "rahasia", "publik", "penduduk", "1.1.0"]))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                                 st.dictionaries(cells, inner, max_size=3)),
                           max_leaves=8)
keywords = st.sampled_from(["type", "enum", "const", "pattern", "format", "minLength", "maxLength", "minimum",
                            "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "title",
                            "description", "x-code-list", "x-personal-data", "x-classification", "x-unit",
                            "items", "$ref", "oneOf", "x-title-en"])
top_keys = st.sampled_from(["required", "properties", "x-primary-key", "x-classification", "x-access", "x-tags",
                            "x-frequency", "x-produsen-data", "type", "additionalProperties", "title", "$defs",
                            "x-name", "x-version", "x-walidata"])


def write_standard(folder: Path, data: bytes, name: str = "penduduk-9.0.0.json") -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


@budget(60)
@given(field_changes=st.lists(st.tuples(st.sampled_from(FIELDS), keywords, json_values), max_size=3),
       top_changes=st.lists(st.tuples(top_keys, json_values), max_size=2),
       dropped=st.lists(st.sampled_from(FIELDS), max_size=2),
       text_damage=st.sampled_from([None, None, "cut", "deep", "huge-number", "nan", "bad-utf8", "bom", "list"]))
def test_standard(field_changes, top_changes, dropped, text_damage):
    schema = copy.deepcopy(PENDUDUK)
    schema["x-version"] = "9.0.0"
    for field, keyword, value in field_changes:
        spec = schema["properties"].get(field)  # the fields' changes come first: properties is the original
        if isinstance(spec, dict):
            spec[keyword] = value
    for key, value in top_changes:
        schema[key] = value
    for field in dropped:
        if isinstance(schema.get("properties"), dict):
            schema["properties"].pop(field, None)
    text = json.dumps(schema, ensure_ascii=False)
    data = {
        None: text.encode(), "cut": text.encode()[: len(text) // 2],
        "deep": text.replace('"x-tags": ', '"x-tags": ' + "[" * 5000 + "]" * 5000 + ", \"x\": ", 1).encode(),
        "huge-number": text.replace('"maxLength": 120', '"maxLength": 1' + "0" * 5000).encode(),
        "nan": text.replace('"pattern": "^[0-9]{16}$"', '"maximum": NaN').encode(),
        "bad-utf8": text.encode()[:100] + b"\xff\xfe" + text.encode()[100:],
        "bom": b"\xef\xbb\xbf" + text.encode(), "list": b"[" + text.encode() + b"]",
    }[text_damage]
    with tempfile.TemporaryDirectory(prefix="hub-fuzz-std-") as folder:
        path = write_standard(Path(folder), data)
        try:
            standard = load_standard_file(path)
        except Exception as e:  # judged here: only the hub's own errors may come out
            assert_hub_error(e, path.name)
            return
        # A standard the hub accepts compiles to a suite that runs on records: it never fails a run later.
        records = [{"nik": NIK, "nama": NAME, "jenis_kelamin": "2", "agama": "1", "tanggal_lahir": "1990-04-21",
                    "kode_wilayah": "32.71.01.1001"}, {"nik": 5, "nama": None}, {}]
        records = [{k: v for k, v in r.items() if k in {f.name for f in standard.fields}} for r in records]
        verdict = validate(standard, records_table(standard, records))
        assert set(verdict.reasons) <= {0, 1, 2}


def test_standard_files_that_are_no_standard():
    with tempfile.TemporaryDirectory(prefix="hub-fuzz-std-") as folder:
        for data in (b"", b"null", b"[]", b'"text"', b"1e999", b"\x00\x01", b"{" * 100_000, b"{}",
                     b" " * (2 << 20)):
            path = write_standard(Path(folder), data)
            try:
                load_standard_file(path)
            except Exception as e:
                assert_hub_error(e, path.name)
            else:
                raise AssertionError(f"{data[:20]!r} loaded as a standard")


# --- hub validate on hostile record files -------------------------------------------------------------


STANDARD = load_standard_file(STANDARDS_DIR / "penduduk-1.1.0.json")


@budget(25)
@given(rows=st.lists(st.lists(cells, max_size=9), max_size=15), header=st.lists(st.sampled_from(FIELDS), min_size=1,
                                                                                unique=True),
       kind=st.sampled_from(["csv", "jsonl"]), damage=st.sampled_from([None, None, "nul", "bad-utf8", "cut", "huge"]))
def test_hub_validate(caplog, rows, header, kind, damage):
    capture_all_logs(caplog)
    caplog.clear()
    rows = [[NIK, NAME], *rows]
    if kind == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(r[: len(header)] + [""] * (len(header) - len(r)) for r in rows)
        data = out.getvalue().encode()
        # As Python's reader counts them: csv.writer leaves a lone \r unquoted, and readers break the line there.
        reference = sum(1 for r in csv.reader(io.StringIO(out.getvalue(), newline="")) if r) - 1
    else:
        data = "\n".join(json.dumps(dict(zip(header, r))) for r in rows).encode() + b"\n"
        reference = len(rows)
    if damage == "nul":
        data = data.replace(b",", b"\x00,", 3)
    elif damage == "bad-utf8":
        data = data[:-3] + b"\xc3\x28" + data[-3:]
    elif damage == "cut":
        data = data[: len(data) * 2 // 3]
    elif damage == "huge":
        data = data + (b"x" * 200_000 if kind == "csv" else json.dumps({header[0]: "x" * 40_000}).encode()) + b"\n"
        reference += 1
    with tempfile.TemporaryDirectory(prefix="hub-fuzz-validate-") as folder:
        path = Path(folder) / f"records.{kind}"
        path.write_bytes(data)
        error = None
        try:
            report = validate_file(STANDARD, path)
        except Exception as e:  # judged below: only the hub's own errors may come out
            error = e
            assert_hub_error(e, path.name)
        else:
            summary = report["summary"]
            assert summary["rows"] == summary["valid"] + summary["invalid"] == len(report["invalid_rows"]) + summary["valid"]
            if damage in (None, "huge", "nul"):
                assert summary["rows"] == reference, (summary, damage, data[:400])
    assert_no_leak(messages_of(error, caplog))
