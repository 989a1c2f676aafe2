"""The record check (schemas.record_check) gives the reasons GE's validation gives, record by record.

For every shipped standard, records are made field by field from good values (ones jsonschema and the code list
accept) and bad ones (wrong JSON types, nulls and NaN, out-of-enum, off-pattern, impossible dates, too long and too
short, out of range, not a multiple, code-list misses, repeated keys, Unicode corner cases), then judged by both:
as JSON values (records_table, what `hub validate` reads) and as the typed Arrow columns harmonization gives (what
the exchange's proxied services check). Every rule of each standard must fail on some record and pass on another,
so no rule goes untested; and a broken rule (test_a_broken_rule_is_caught) must show as a difference.

The JSON Schema Test Suite cases the GE path is held to (test_conformance) hold the record check too.
"""

from __future__ import annotations

import atexit
import json
import math
import random
import re
import re._constants as sre
import re._parser as sre_parse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

import pyarrow as pa
import pytest
from jsonschema import Draft202012Validator

from schemas import record_check as record_check_module
from schemas.codelists import codes
from schemas.record_check import RecordCheck, record_check
from schemas.records import records_table
from schemas.standards import STANDARDS_DIR, load_standard_file
from schemas.suite import expectation_specs, has_json_type, type_specs
from schemas.validation import validate
from transforms.mapping import arrow_type

SATU_DATA = {
    "x-walidata": "Diskominfo", "x-produsen-data": ["Disdukcapil"], "x-frequency": "bulanan",
    "x-spatial-coverage": "Kota Bogor", "x-temporal-coverage": "2025", "x-license": "CC-BY-4.0",
    "x-classification": "publik",
}
# The keywords and types no shipped standard uses yet (strict bounds, const, multipleOf, date-time and email, enums
# of numbers and of several types, booleans), in one standard of its own with a compound key.
_EVERY_KEYWORD = {
    "kode": {"type": "string", "pattern": "^[A-Z]{2}[0-9]{3}$"},
    "tahun": {"type": "integer", "minimum": 2000, "exclusiveMaximum": 2100},
    "proporsi": {"type": ["number", "null"], "exclusiveMinimum": 0, "exclusiveMaximum": 1},
    "kelipatan": {"type": ["integer", "null"], "multipleOf": 5, "minimum": 0, "maximum": 1000},
    "rupiah": {"type": ["number", "null"], "multipleOf": 0.01},
    "konstanta": {"type": ["string", "null"], "const": "tetap"},
    "pilihan": {"type": ["integer", "null"], "enum": [1, 2, 3, 2.5, "1", True]},
    "campur": {"type": ["number", "null"], "enum": [0, 1.5, "0", False, None]},
    "benar": {"type": ["boolean", "null"], "const": True},
    "bendera": {"type": ["boolean", "null"]},
    "waktu": {"type": ["string", "null"], "format": "date-time"},
    "surel": {"type": ["string", "null"], "format": "email", "maxLength": 12},
    "singkat": {"type": ["string", "null"], "minLength": 2, "maxLength": 5},
    "tanggal": {"type": ["string", "null"], "format": "date", "pattern": "^20"},
    "skor": {"type": ["number", "null"], "minimum": -1.5, "maximum": 1e6},
}


def _every_keyword() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="record-check-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path = folder / "semua-1.0.0.json"
    path.write_text(json.dumps({
        "$schema": "https://json-schema.org/draft/2020-12/schema", "title": "Semua", "description": "Semua.",
        "type": "object", "additionalProperties": False, "x-name": "semua", "x-version": "1.0.0", **SATU_DATA,
        "required": ["kode", "tahun"], "x-primary-key": ["kode", "tahun"],
        "properties": {name: {"title": name, "description": name, **spec} for name, spec in _EVERY_KEYWORD.items()},
    }), encoding="utf-8")
    return path


STANDARDS = [*sorted(STANDARDS_DIR.glob("*.json")), _every_keyword()]

# Strings that part ways somewhere: composed and decomposed é, an emoji of several code points, a zero-width
# space, NUL, a right-to-left override, digits of other scripts (Python's \d takes them, [0-9] does not), letters
# whose case changes their length.
_UNICODE = ["", " ", "é", "e\u0301", "\U0001f469\u200d\u2695\ufe0f", "\u200b", "\x00", "\u202eabc",
            "\u0663" * 16, "\uff13" * 16, "İ", "ß", "ǅ", "a\nb", "\t"]
_WRONG_TYPE = {
    "string": [0, 1, 1.5, -2.0, True, False],
    "integer": ["1", "abc", "", 1.5, True, False, 1.0, -0.0, 2 ** 53 + 1, 10 ** 20, -(2 ** 63), 2 ** 63 - 1, 1e300,
                math.inf],
    "number": ["1.5", "", True, False, 1, 0, -0.0, 1e308, -math.inf, math.inf, 2 ** 53 + 1, 10 ** 400],
    "boolean": [1, 0, "true", "", 1.0, True, False],
}
_DATES = ["2025-02-15", "2024-02-29", "2023-02-29", "2025-02-31", "2025-13-01", "15-02-2025", "2025-2-5",
          "2025-02-15T00:00:00", "2025-02-15\n", "\uff12025-02-15", "0000-01-01", "9999-12-31", "2025-02-15 "]
_DATE_TIMES = ["2025-02-15T10:00:00Z", "2025-02-15T10:00:00", "2025-02-15t10:00:00z", "2016-12-31T23:59:60Z",
               "2025-02-15T10:00:00+07:00", "2025-02-15 10:00:00Z", "2025-02-30T10:00:00Z"]
_EMAILS = ["a@b", "warga@kotabogor.go.id", "ab", "@", "a@", "a @b"]


def _matching(pattern: str, rng: random.Random) -> str | None:
    """A random text `re.search(pattern)` finds, built from Python's parse of it (None if that fails)."""
    def emit(parsed) -> str:
        out = []
        for op, arg in parsed:
            if op is sre.LITERAL:
                out.append(chr(arg))
            elif op is sre.ANY:
                out.append(rng.choice("aZ7-"))
            elif op is sre.IN:
                out.append(choose(arg))
            elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
                low, high, item = arg
                high = low + 3 if high is sre.MAXREPEAT else min(high, low + 3)
                out.extend(emit(item) for _ in range(rng.randint(low, high)))
            elif op is sre.SUBPATTERN:
                out.append(emit(arg[-1]))
            elif op is sre.BRANCH:
                out.append(emit(rng.choice(arg[1])))
            elif op is not sre.AT:
                raise ValueError(op)
        return "".join(out)

    def choose(items) -> str:
        chars = []
        for op, arg in items:
            if op is sre.LITERAL:
                chars.append(chr(arg))
            elif op is sre.RANGE:
                chars.extend(map(chr, range(arg[0], arg[1] + 1)))
            elif op is sre.CATEGORY and arg is sre.CATEGORY_DIGIT:
                chars.extend("0123456789")
            else:
                raise ValueError(op)
        return rng.choice(chars)

    try:
        text = emit(sre_parse.parse(pattern))
    except ValueError:
        return None
    return text if re.search(pattern, text) else None


def _candidates(standard, field, rng: random.Random) -> list:
    """Values for one field: good ones and bad ones of every kind its rules judge."""
    c = field.constraints
    values: list = [None, math.nan, *_WRONG_TYPE[field.type]]
    if field.type == "string":
        values += _UNICODE + ["x" * 300, "3271014501900001\n", " 3271014501900001"]
        if "pattern" not in field.constraints:
            # A lone surrogate (JSON only: Arrow holds UTF-8). Not where a pattern judges it: schemas.pattern hands
            # the column to Arrow, which cannot encode it, and the GE run fails (a fault of the batch path).
            values.append("\ud800")
    values += [[], {}, ["a"], {"a": 1}]  # objects and arrays (JSON only): never of a field's type
    for member in [*c.get("enum", []), *([c["const"]] if "const" in c else [])]:
        values.append(member)
        if isinstance(member, str):
            values += [member.upper(), member + " ", " " + member, member + "\n", member[:-1]]
        elif isinstance(member, (int, float)) and not isinstance(member, bool):
            values += [member + 1, float(member), member + 0.5]
    if field.code_list:
        known = codes(field.code_list)
        values += rng.sample(known, min(6, len(known)))
        values += [known[0].replace(".", ""), known[0] + "\n", known[0][:-1] + "X", known[-1] + "0"]
    if "pattern" in c:
        for _ in range(6):
            text = _matching(c["pattern"], rng)
            if text:
                values += [text, text[:-1], text + text[-1], text + "\n", "x" + text,
                           text[:-1] + "\u0663", text[:-1] + "\uff13"]
    if field.format == "date":
        values += _DATES
    elif field.format == "date-time":
        values += _DATE_TIMES
    elif field.format == "email":
        values += _EMAILS
    for low, high in ((c.get("minLength"), c.get("maxLength")),):
        for n in {n for n in (low, high) if n is not None} | {0, 1}:
            for length in (n - 1, n, n + 1):
                if length >= 0:
                    values += ["a" * length, "\U0001f600" * length, "e\u0301" * length]
    bounds = [c[k] for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum") if k in c]
    for bound in bounds:
        values += [bound - 1, bound, bound + 1, bound - 0.5, bound + 0.5, float(bound), -bound]
    if "multipleOf" in c:
        m = c["multipleOf"]
        values += [0, m, 2 * m, 3 * m, m * 1.5, m / 2, -m, 10 ** 20 * m]
    if field.type in ("integer", "number"):
        values += [0, 1, -1, 7, 100, 2025, 12.5, 0.0]
    return values


def _good(standard, field, values: list) -> list:
    """The candidates every rule of the field accepts, as jsonschema and the code list judge them (not the
    checkers under test)."""
    schema = standard.schema["properties"][field.name]
    validator = Draft202012Validator({k: v for k, v in schema.items() if not k.startswith("x-")},
                                     format_checker=Draft202012Validator.FORMAT_CHECKER)
    known = set(codes(field.code_list)) if field.code_list else None
    def valid(value) -> bool:
        try:
            return validator.is_valid(value)
        except OverflowError:  # jsonschema's multipleOf on an infinite number
            return False

    good = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))
            and valid(v) and (known is None or v in known)]
    unique = list(dict.fromkeys(json.dumps(v) for v in good))
    return [json.loads(v) for v in unique]


def _records(standard) -> list[dict]:
    """Records that try every candidate of every field alone, then mixtures, then repeated keys."""
    rng = random.Random(standard.ref)
    key = set(standard.primary_key)
    candidates, good = {}, {}
    for field in standard.fields:
        values = _candidates(standard, field, rng)
        if field.name in key and "pattern" in field.constraints:  # enough distinct keys for every record
            values += [_matching(field.constraints["pattern"], rng) for _ in range(600)]
        if field.name in key:
            values = [v for v in values if not isinstance(v, (list, dict))]
        candidates[field.name], good[field.name] = values, _good(standard, field, values)
        assert good[field.name], f"{standard.ref}: no good value made for {field.name}"
    counter = iter(range(10 ** 6))

    def good_record() -> dict:
        n = next(counter)
        return {name: values[n % len(values)] if name in key else rng.choice(values) for name, values in good.items()}

    records = []
    for name, values in candidates.items():
        for value in values:
            records.append({**good_record(), name: value})
    for _ in range(200):
        record = good_record()
        for name, values in candidates.items():
            if rng.random() < 0.15:
                record[name] = rng.choice(values)
        records.append(record)
    for _ in range(20):  # the key of an earlier record again, the rest good
        earlier = rng.choice(records)
        records.append({**good_record(), **{name: earlier[name] for name in key}})
    return records


def _typed(standard, records: list[dict]) -> pa.Table:
    """The records as harmonization gives them: one Arrow column of the field's type (a value that is not: null)."""
    def fits(value, kind: str):
        if kind == "string" and isinstance(value, str):
            # Not a lone surrogate: Arrow holds UTF-8. Not a trailing NUL either: GE's length metric measures
            # `astype(str)`, which on an Arrow string column goes through numpy and drops trailing NULs ("a\x00"
            # has length 1 there, 2 in JSON Schema and in GE's own run on JSON values): a fault of the batch path.
            return None if value.endswith("\x00") or re.search("[\ud800-\udfff]", value) else value
        if kind == "integer" and type(value) is int and -2 ** 63 <= value < 2 ** 63:
            return value
        if kind == "number" and type(value) in (int, float):
            try:
                return float(value)
            except OverflowError:  # an integer beyond any float
                return None
        if kind == "boolean" and type(value) is bool:
            return value
        return None

    return pa.table({f.name: pa.array([fits(r.get(f.name), f.type) for r in records], arrow_type(f))
                     for f in standard.fields})


_GE: dict[tuple, tuple] = {}  # (standard file, form) -> (records, GE's reasons): GE runs once per test session


def _judged(path, form: str):
    if (path, form) not in _GE:
        standard = load_standard_file(path)
        records = _records(standard)
        if form == "json":
            table = records_table(standard, records)
        else:
            table = _typed(standard, records)
            records = table.to_pylist()
        _GE[(path, form)] = records, validate(standard, table).reasons
    return _GE[(path, form)]


def _differences(check, records, expected) -> list:
    got = check.reasons(records)
    return [(row, expected.get(row), got.get(row)) for row in sorted(set(expected) | set(got))
            if expected.get(row) != got.get(row)]


@pytest.mark.parametrize("form", ["json", "typed"])
@pytest.mark.parametrize("path", STANDARDS, ids=lambda p: p.stem)
def test_the_record_check_gives_ges_reasons(path, form):
    standard = load_standard_file(path)
    records, expected = _judged(path, form)
    differences = _differences(record_check(standard), records, expected)
    assert not differences, [(row, records[row], want, got) for row, want, got in differences[:5]]
    if form == "json":  # every rule fails on some record and passes on another: none goes untested
        reasons = [s["reason"] for s in type_specs(standard) + expectation_specs(standard)]
        for reason in reasons:
            failing = sum(reason in found for found in expected.values())
            assert 0 < failing < len(records), (reason, failing)


# Rules broken on purpose, each the way a record check could plausibly go wrong: the differential test must see
# each on some standard.
def _value_test(kind: str, keys: set, make) -> Callable:
    return lambda module: module._VALUE_TESTS.update({kind: (frozenset(keys), make)})


def _nearly_whole(instance, divisor) -> bool:
    try:
        quotient = instance / divisor
        return abs(quotient - round(quotient)) < 1e-9
    except OverflowError:
        return False


_BROKEN = {
    "pattern matched in full": _value_test("ExpectColumnValuesToMatchPattern", {"pattern"}, lambda pattern: (
        lambda v, r=re.compile(pattern): r.fullmatch(v) is not None)),
    "bounds always inclusive": _value_test(
        "ExpectColumnValuesToBeBetween", {"min_value", "max_value", "strict_min", "strict_max"},
        lambda min_value, max_value, strict_min, strict_max: record_check_module._between(min_value, max_value,
                                                                                          False, False)),
    "in-set by text": _value_test("ExpectColumnValuesToBeInSet", {"value_set"}, lambda value_set: (
        lambda v, s=frozenset(map(str, value_set)): str(v) in s)),
    "length in UTF-8 bytes": _value_test("ExpectColumnValueLengthsToBeBetween", {"min_value", "max_value"}, (
        lambda min_value, max_value: lambda v: (min_value or 0) <= len(v.encode("utf-8", "surrogatepass"))
        <= (max_value or 10 ** 9))),
    "multipleOf with a tolerance": _value_test("ExpectColumnValuesToBeMultipleOf", {"value"}, lambda value: (
        lambda v: _nearly_whole(v, value))),
    "format by regex": _value_test("ExpectColumnValuesToMatchFormat", {"format"}, lambda format: (
        lambda v: re.fullmatch(r"\d{4}-\d\d-\d\d" if format == "date" else ".+@.+|.*T.*", v) is not None)),
    "NaN is a value": lambda module: setattr(module, "_absent", lambda value: value is None),
    "1.0 is no integer": lambda module: setattr(module, "has_json_type", lambda value, kind: has_json_type(
        value, kind) and not (kind == "integer" and isinstance(value, float))),
    "true is a number": lambda module: setattr(module, "has_json_type", lambda value, kind: has_json_type(
        value, kind) or (kind in ("integer", "number") and isinstance(value, bool))),
    "keys never repeat": lambda module: setattr(module, "_repeated", lambda rows: set()),
    "reasons sorted": lambda module: setattr(module.RecordCheck, "reasons", lambda self, records, real=(
        module.RecordCheck.reasons): {row: sorted(found) for row, found in real(self, records).items()}),
}


@pytest.mark.parametrize("broken", sorted(_BROKEN))
def test_a_broken_rule_is_caught(monkeypatch, broken):
    """The differential test can fail: a record check with one rule broken differs from GE on some standard."""
    with monkeypatch.context() as patch:
        patch.setattr(record_check_module, "_VALUE_TESTS", dict(record_check_module._VALUE_TESTS))
        for name in ("_absent", "_repeated", "has_json_type"):
            patch.setattr(record_check_module, name, getattr(record_check_module, name))
        patch.setattr(RecordCheck, "reasons", RecordCheck.reasons)
        _BROKEN[broken](record_check_module)
        found = [path.stem for path in STANDARDS for form in ("json", "typed")
                 if _differences(RecordCheck(load_standard_file(path)), *_judged(path, form))]
    assert found, f"breaking '{broken}' went unseen"


def test_a_rule_the_check_does_not_know_is_refused(monkeypatch):
    standard = load_standard_file(STANDARDS_DIR / "status_penduduk-1.0.0.json")
    monkeypatch.setattr(record_check_module, "expectation_specs", lambda s: [
        {"expectation": "ExpectColumnValuesToBeIncreasing", "kwargs": {"column": "nik"}, "reason": "nik:order"}])
    with pytest.raises(NotImplementedError, match="nik:order"):
        RecordCheck(standard)


def test_the_record_check_follows_the_files_it_was_read_from(tmp_path, monkeypatch):
    """Compiled once, compiled again when the standard or one of its code lists changes (as test_reload shows for
    the GE path), also for a caller that keeps the same standard object."""
    from test_reload import RECORD, edit_standard, write

    from schemas import load_standard
    from schemas.codelists import CODELISTS_DIR

    standards, lists = tmp_path / "standards", tmp_path / "codelists"
    shutil.copytree(STANDARDS_DIR, standards)
    shutil.copytree(CODELISTS_DIR, lists)
    monkeypatch.setenv("HUB_STANDARDS", str(standards))
    monkeypatch.setenv("HUB_CODELISTS", str(lists))
    standard = load_standard("penduduk@1.1.0")
    record = {**RECORD, "agama": "8"}
    assert record_check(standard).reasons([record]) == {0: ["agama:code_list"]}
    assert record_check(standard) is record_check(standard)
    write(lists / "agama.csv", (lists / "agama.csv").read_text(encoding="utf-8") + "8,Lainnya,Other\n")
    assert load_standard("penduduk@1.1.0") is standard  # the standard's own file did not change
    assert record_check(standard).reasons([record]) == {}
    edit_standard(standards / "penduduk-1.1.0.json", lambda s: s["properties"]["nama"].update({"maxLength": 5}))
    changed = load_standard("penduduk@1.1.0")
    assert changed is not standard and record_check(changed).reasons([record]) == {0: ["nama:length"]}


def test_the_record_check_imports_no_great_expectations():
    code = ("import sys; from schemas import load_standard; from schemas.record_check import record_check; "
            "record_check(load_standard('status_penduduk@1.0.0')).reasons([{'nik': '1'}]); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('great_expectations', 'pandas')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# --- the JSON Schema Test Suite, as test_conformance holds the GE path to it -----------------------------------


def _conformance_cases():
    from test_conformance import _cases

    return list(_cases())


@pytest.mark.parametrize(("file", "group", "field", "items"), _conformance_cases())
def test_the_record_check_agrees_with_the_case(tmp_path, file, group, field, items):
    from test_conformance import EXPECTED_REFUSALS, _standard, expected_verdicts

    from hub.errors import ConfigError

    try:
        standard = _standard(tmp_path, field)
    except ConfigError:
        assert (file, group) in EXPECTED_REFUSALS
        return
    expected, records = expected_verdicts(file, field, items)
    reasons = record_check(standard).reasons(records)
    got = [(description, data, row not in reasons) for row, (description, data, _) in enumerate(items)]
    assert got == expected, reasons
