"""The official JSON Schema Test Suite cases for the field keywords, through the hub's Great Expectations path.

Each case's schema becomes the one field `v` of a standard (not required), each instance a record
{"v": instance} read as JSON Lines reads it; the hub's verdict on the record must be the case's `valid`.

Which cases apply, precisely:

- An instance that is an object or an array cannot be a table cell: left out.
- A schema without `type` constrains the values of every type. The field gets the instance's own JSON type
  (integer for 1 and 1.0, number for 1.1, string, boolean): {"type": T} and the schema accept an instance of
  type T exactly when the schema alone does, so the verdict to reach is still the case's.
- A schema outside the dialect (types object, array or null, two types, a pattern Python's re cannot
  compile) must be refused by the loader; EXPECTED_REFUSALS lists them, so none is dropped silently.
- null is "absent" in a table, and an absent value breaks only `required`. A null instance therefore applies
  only where the schema admits null: its type (if any) lists null, and its enum or const (if any) contains
  null. There the case says valid, and so must the hub (the field is not required). A null against a schema
  that rejects null (a type without null, an enum without it) is left out: the hub never sees a null there.
- The optional `format` cases for email and date-time are stricter than jsonschema, which checks email by
  "contains @" and date-time with rfc3339_validator (leap seconds allowed, a trailing newline let through).
  The issue names jsonschema as the reference: where jsonschema's verdict differs from such a case, the hub
  must give jsonschema's (only `format-*` files may differ).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jsonschema import Draft202012Validator

from hub.errors import ConfigError
from schemas.records import records_table
from schemas.standards import load_standard_file
from schemas.suite import has_json_type
from schemas.validation import validate

JSTS = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "jsts"
if not JSTS.is_dir():  # the repository checked out elsewhere: the shared folder next to it
    JSTS = Path("/work/shared/conformance/jsts")

SATU_DATA = {
    "x-walidata": "Diskominfo", "x-produsen-data": ["Disdukcapil"], "x-frequency": "bulanan",
    "x-spatial-coverage": "Kota Bogor", "x-temporal-coverage": "2025", "x-license": "CC-BY-4.0",
    "x-classification": "publik",
}
# Schemas outside the dialect, as (file, group description): the loader refuses each.
EXPECTED_REFUSALS = {
    ("pattern.json", "pattern with Unicode property escape requires unicode mode"),
    ("type.json", "object type matches objects"),
    ("type.json", "array type matches arrays"),
    ("type.json", "null type matches only the null object"),
    ("type.json", "multiple types can be specified in an array"),
    ("type.json", "type: array, object or null"),
    ("type.json", "type: array or object"),
}


def _json_type(value) -> str:
    for kind in ("boolean", "integer", "number", "string"):
        if has_json_type(value, kind):
            return kind
    raise AssertionError(value)


def _admits_null(schema: dict) -> bool:
    types = schema.get("type")
    types = [types] if isinstance(types, str) else types
    return ((types is None or "null" in types) and ("enum" not in schema or None in schema["enum"])
            and ("const" not in schema or schema["const"] is None))


def _groups():
    for path in sorted(JSTS.glob("*.json")):
        for group in json.loads(path.read_text(encoding="utf-8")):
            schema = {k: v for k, v in group["schema"].items() if k not in ("$schema", "$comment")}
            yield path.name, group["description"], schema, group["tests"]


def _cases():
    """(id, file, group, field schema, [(description, instance, valid)]): one standard per group and field type."""
    for file, description, schema, tests in _groups():
        if schema.get("type") == "object" and "properties" in schema:
            continue  # a group about a record's own keys (properties, required), not a field's value
        by_type: dict[str, list] = {}
        for test in tests:
            data = test["data"]
            if isinstance(data, (dict, list)):
                continue
            if data is None:
                if not _admits_null(schema):
                    continue
                kind = "null"
            else:
                kind = "typed" if "type" in schema else _json_type(data)
            by_type.setdefault(kind, []).append((test["description"], data, test["valid"]))
        for kind, items in by_type.items():
            field = dict(schema)
            if "type" not in field:
                field["type"] = "string" if kind == "null" else kind  # null: absent, whatever the type
            yield pytest.param(file, description, field, items, id=f"{file}:{description}:{kind}")


def _standard(folder: Path, field: dict):
    path = folder / "kasus-1.0.0.json"
    path.write_text(json.dumps({
        "$schema": "https://json-schema.org/draft/2020-12/schema", "title": "Kasus", "description": "Kasus.",
        "type": "object", "additionalProperties": False, "x-name": "kasus", "x-version": "1.0.0", **SATU_DATA,
        "properties": {"v": {"title": "V", "description": "V.", **field}},
    }), encoding="utf-8")
    return load_standard_file(path)


def expected_verdicts(file: str, field: dict, items) -> tuple[list, list[dict]]:
    """Each case's (description, data, valid) as the hub must judge it, and its records (field `v`; none for an
    absent value). Where jsonschema's format checker judges a format case otherwise, the hub follows jsonschema."""
    reference = Draft202012Validator(field, format_checker=Draft202012Validator.FORMAT_CHECKER)
    expected = []
    for description, data, valid in items:
        if data is not None and reference.is_valid(data) != valid:
            assert file.startswith("format-"), f"jsonschema disagrees with {file}: {description}"
            valid = not valid
        expected.append((description, data, valid))
    return expected, [{} if data is None else {"v": data} for _, data, _ in items]


@pytest.mark.parametrize(("file", "group", "field", "items"), list(_cases()))
def test_the_hub_agrees_with_the_case(tmp_path, file, group, field, items):
    try:
        standard = _standard(tmp_path, field)
    except ConfigError:
        assert (file, group) in EXPECTED_REFUSALS, f"the dialect refuses {field}"
        return
    assert (file, group) not in EXPECTED_REFUSALS, f"the dialect should refuse {field}"
    expected, records = expected_verdicts(file, field, items)
    verdict = validate(standard, records_table(standard, records))
    got = [(description, data, row not in verdict.reasons) for row, (description, data, _) in enumerate(items)]
    assert got == expected, verdict.reasons


def test_every_refusal_is_of_a_case_in_the_suite():
    groups = {(file, description) for file, description, _, _ in _groups()}
    assert EXPECTED_REFUSALS <= groups
