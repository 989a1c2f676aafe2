"""Data standards, code lists, the compiled suite (golden file) and row-level validation."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pyarrow as pa
import pytest

from hub.errors import ConfigError
from schemas import load_standard
from schemas.codelists import codes
from schemas.standards import list_standards
from schemas.suite import compile_suite, expectation_specs
from schemas.validation import validate

GOLDEN = Path(__file__).parent / "golden" / "penduduk-1.0.0.suite.json"
KOTA_BOGOR_KELURAHAN = {"name": "kode_wilayah", "edition": "2025", "level": "desa_kelurahan", "within": "32.71"}


def summarised(specs: list[dict]) -> list[dict]:
    """The specs with each value_set longer than 20 codes replaced by its size and first and last codes."""
    out = []
    for spec in specs:
        kwargs = dict(spec["kwargs"])
        values = kwargs.get("value_set")
        if values is not None and len(values) > 20:
            kwargs["value_set"] = {"count": len(values), "first": values[0], "last": values[-1]}
        out.append({**spec, "kwargs": kwargs})
    return out


# --- the compiled suite -------------------------------------------------------------------------------


def test_penduduk_suite_matches_the_golden_file():
    actual = summarised(expectation_specs(load_standard("penduduk@1.0.0")))
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(json.dumps(actual, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert actual == json.loads(GOLDEN.read_text(encoding="utf-8"))


def test_every_expectation_has_a_unique_field_reason_code():
    reasons = [s["reason"] for s in expectation_specs(load_standard("penduduk@1.0.0"))]
    assert len(reasons) == len(set(reasons))
    assert all(re.fullmatch(r"[a-z_+]+:[a-z_]+", r) for r in reasons)


def test_compiled_suite_carries_each_reason_in_its_meta():
    standard = load_standard("penduduk@1.0.0")
    suite = compile_suite(standard)
    assert suite.name == "penduduk@1.0.0"
    assert [e.meta["reason"] for e in suite.expectations] == [s["reason"] for s in expectation_specs(standard)]


# --- code lists ---------------------------------------------------------------------------------------


def test_kota_bogor_has_68_kelurahan_codes():
    kelurahan = codes(KOTA_BOGOR_KELURAHAN)
    assert len(kelurahan) == 68
    assert len(set(kelurahan)) == 68
    assert all(re.fullmatch(r"32\.71\.\d{2}\.1\d{3}", k) for k in kelurahan)


def test_penduduk_kode_wilayah_refers_to_the_kota_bogor_kelurahan():
    assert codes(load_standard("penduduk@1.0.0").field("kode_wilayah").code_list) == codes(KOTA_BOGOR_KELURAHAN)


def test_within_narrows_by_dotted_prefix_not_by_text_prefix():
    # 32.7 is not a parent of 32.71: a code list narrowed within it must not hold Kota Bogor.
    assert not [k for k in codes({**KOTA_BOGOR_KELURAHAN, "within": "32.7"}) if k.startswith("32.71.")]


def test_small_code_lists_hold_dukcapil_codes():
    assert codes({"name": "jenis_kelamin", "edition": "1"}) == ["1", "2"]
    assert codes({"name": "agama", "edition": "1"}) == ["1", "2", "3", "4", "5", "6", "7"]


def test_unknown_code_list_edition_is_a_config_error_listing_editions():
    with pytest.raises(ConfigError, match="2025"):
        codes({"name": "kode_wilayah", "edition": "1999"})


# --- loading standards --------------------------------------------------------------------------------


def test_penduduk_loads_with_its_key_and_fields_in_order():
    standard = load_standard("penduduk@1.0.0")
    assert standard.ref == "penduduk@1.0.0" and load_standard("penduduk@1.0.0").ref == "penduduk@1.0.0"
    assert standard.primary_key == ("nik",)
    assert [f.name for f in standard.fields] == ["nik", "nama", "jenis_kelamin", "agama", "tanggal_lahir",
                                                 "kode_wilayah"]
    assert all(f.required and f.type == "string" and f.description for f in standard.fields)


def test_unknown_standard_lists_the_known_standards():
    with pytest.raises(ConfigError) as info:
        load_standard("nope")
    assert "'nope'" in str(info.value) and "penduduk@1.0.0" in str(info.value)


def test_unknown_version_lists_the_known_standards():
    with pytest.raises(ConfigError, match="penduduk@1.0.0"):
        load_standard("penduduk@9.9.9")


SATU_DATA = {
    "x-walidata": "Diskominfo", "x-produsen-data": ["Disdukcapil"], "x-frequency": "bulanan",
    "x-spatial-coverage": "Kota Bogor", "x-temporal-coverage": "2025", "x-license": "CC-BY-4.0",
    "x-classification": "publik",
}


def write_standard(folder: Path, properties: dict, **top) -> Path:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "X", "description": "Test standard.", "type": "object", "additionalProperties": False,
        "x-name": "x", "x-version": "1.0.0", "required": list(properties), "properties": properties,
        **SATU_DATA, **top,
    }
    path = folder / "x-1.0.0.json"
    path.write_text(json.dumps(schema), encoding="utf-8")
    return path


def test_a_small_standard_in_a_folder_loads(tmp_path):
    write_standard(tmp_path, {"kode": {"title": "Kode", "description": "Kode.", "type": "string"}})
    assert [s.ref for s in list_standards(tmp_path)] == ["x@1.0.0"]
    assert load_standard("x", tmp_path).field("kode").required


def test_unsupported_field_keyword_is_refused_naming_keyword_and_field(tmp_path):
    write_standard(tmp_path, {"umur": {"title": "Umur", "description": "Umur.", "type": "integer", "uniqueItems": 1}})
    with pytest.raises(ConfigError) as info:
        load_standard("x", tmp_path)
    message = str(info.value)
    assert "x-1.0.0.json" in message and "'umur'" in message and "'uniqueItems'" in message


def test_unsupported_top_level_keyword_is_refused_naming_it(tmp_path):
    write_standard(tmp_path, {"kode": {"title": "Kode", "description": "Kode.", "type": "string"}},
                   allOf=[{"required": ["kode"]}])
    with pytest.raises(ConfigError, match="'allOf'"):
        load_standard("x", tmp_path)


def test_field_without_a_description_is_refused(tmp_path):
    write_standard(tmp_path, {"kode": {"title": "Kode", "type": "string"}})
    with pytest.raises(ConfigError) as info:
        load_standard("x", tmp_path)
    assert "'kode'" in str(info.value) and "description" in str(info.value)


def test_field_with_two_types_is_refused(tmp_path):
    write_standard(tmp_path, {"kode": {"title": "Kode", "description": "Kode.", "type": ["string", "integer"]}})
    with pytest.raises(ConfigError, match="'kode'"):
        load_standard("x", tmp_path)


def test_file_name_must_match_x_name_and_version(tmp_path):
    path = write_standard(tmp_path, {"kode": {"title": "Kode", "description": "Kode.", "type": "string"}})
    path.rename(tmp_path / "x-1.0.1.json")
    with pytest.raises(ConfigError, match="must match the file name"):
        load_standard("x", tmp_path)


# --- validation, row by row ---------------------------------------------------------------------------

GOOD = {"nik": "3271010101900001", "nama": "SITI AMINAH", "jenis_kelamin": "2", "agama": "1",
        "tanggal_lahir": "1990-08-03", "kode_wilayah": "32.71.01.1001"}


def penduduk_table(rows: list[dict]) -> pa.Table:
    standard = load_standard("penduduk@1.0.0")
    return pa.Table.from_pylist(rows, schema=pa.schema([(f.name, pa.string()) for f in standard.fields]))


def test_validation_gives_exact_reasons_per_row_position():
    rows = [
        GOOD,                                                                       # 0 valid
        {**GOOD, "nik": "327101010190002"},                                         # 1 15 digits
        {**GOOD, "nik": "3271010101900003", "kode_wilayah": "32.01.01.2001"},      # 2 Kabupaten Bogor
        {**GOOD, "nik": "3271010101900004"},                                        # 3 duplicate of 4
        {**GOOD, "nik": "3271010101900004", "nama": "BUDI"},                        # 4 duplicate of 3
        {**GOOD, "nik": "3271010101900006", "nama": None},                          # 5 no name
        {**GOOD, "nik": "3271010101900007", "jenis_kelamin": "3"},                  # 6 not a code
        {**GOOD, "nik": "3271010101900008", "tanggal_lahir": "16/12/2014"},         # 7 not ISO
        {**GOOD, "nik": "3271010101900009", "kode_wilayah": "32.71.06.1011"},      # 8 valid
    ]
    verdict = validate(load_standard("penduduk@1.0.0"), penduduk_table(rows))
    assert verdict.reasons == {
        1: ["nik:pattern"],
        2: ["kode_wilayah:code_list"],
        3: ["nik:duplicate_key"],
        4: ["nik:duplicate_key"],
        5: ["nama:required"],
        6: ["jenis_kelamin:code_list"],
        7: ["tanggal_lahir:format"],
    }
    assert not verdict.success


def test_valid_rows_have_no_reasons_and_the_batch_succeeds():
    rows = [GOOD, {**GOOD, "nik": "3271010101900002", "kode_wilayah": "32.71.06.1011"}]
    verdict = validate(load_standard("penduduk@1.0.0"), penduduk_table(rows))
    assert verdict.reasons == {}
    assert verdict.success
    assert all(r["success"] and r["unexpected_count"] == 0 for r in verdict.results)


def test_validation_results_count_per_reason():
    rows = [GOOD, {**GOOD, "nik": "327101010190002"}, {**GOOD, "nik": "12"}]
    verdict = validate(load_standard("penduduk@1.0.0"), penduduk_table(rows))
    by_reason = {r["reason"]: r for r in verdict.results}
    assert set(by_reason) == {s["reason"] for s in expectation_specs(load_standard("penduduk@1.0.0"))}
    assert by_reason["nik:pattern"]["unexpected_count"] == 2
    assert by_reason["nik:pattern"]["element_count"] == 3
    assert by_reason["kode_wilayah:code_list"]["unexpected_count"] == 0


@pytest.mark.parametrize("missing", sorted(SATU_DATA))
def test_a_standard_without_its_satu_data_metadata_is_refused(tmp_path, missing):
    path = write_standard(tmp_path, {"kode": {"title": "Kode", "description": "Kode.", "type": "string"}})
    schema = json.loads(path.read_text())
    del schema[missing]
    path.write_text(json.dumps(schema))
    with pytest.raises(ConfigError, match=f"'{missing}' is required"):
        load_standard("x", tmp_path)


def test_classification_and_frequency_take_their_listed_values(tmp_path):
    write_standard(tmp_path, {"kode": {"title": "Kode", "description": "Kode.", "type": "string"}},
                   **{"x-classification": "rahasia-sekali"})
    with pytest.raises(ConfigError, match="x-classification.*publik, terbatas, rahasia"):
        load_standard("x", tmp_path)


def test_penduduk_carries_its_metadata_and_english_texts():
    standard = load_standard("penduduk@1.0.0")
    assert standard.metadata["classification"] == "terbatas"
    assert standard.metadata["frequency"] == "bulanan"
    assert all(f.title_en and f.description_en and f.concept for f in standard.fields)


def test_a_required_field_cannot_allow_null(tmp_path):
    write_standard(tmp_path, {"kode": {"title": "Kode", "description": "Kode.", "type": ["string", "null"]}})
    with pytest.raises(ConfigError, match="'kode' is required but its type allows null"):
        load_standard("x", tmp_path)


def test_x_access_names_the_cleared_agencies_and_roles(tmp_path):
    kode = {"kode": {"title": "Kode", "description": "Kode.", "type": "string"}}
    write_standard(tmp_path, kode, **{"x-access": {"agencies": ["dinkes"], "roles": ["steward"]}})
    standard = load_standard("x", tmp_path)
    assert (standard.access_agencies, standard.access_roles) == ({"dinkes"}, {"steward"})
    assert load_standard("penduduk@1.1.0").access_agencies == {"disdukcapil", "dinsos"}


@pytest.mark.parametrize("access, message", [
    ({"agencies": ["Dinkes Kota"]}, "agency codes"),
    ({"roles": ["admin"]}, "roles from steward, analyst"),
    ({"people": ["x"]}, "x-access is an object"),
    (["dinkes"], "x-access is an object"),
])
def test_a_malformed_x_access_is_refused_saying_what_it_takes(tmp_path, access, message):
    write_standard(tmp_path, {"kode": {"title": "Kode", "description": "Kode.", "type": "string"}},
                   **{"x-access": access})
    with pytest.raises(ConfigError, match=message):
        load_standard("x", tmp_path)


# --- hostile standard files: clear refusals, never a crash ------------------------------------------

from schemas.standards import MAX_STANDARD_BYTES, STANDARDS_DIR, load_standard_file  # noqa: E402


def _draft(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "penduduk-9.0.0.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def test_a_standard_larger_than_the_limit_is_refused_unread(tmp_path):
    path = _draft(tmp_path, b"{}")
    with path.open("r+b") as f:
        f.truncate(MAX_STANDARD_BYTES + 1)  # sparse: the size is what counts
    with pytest.raises(ConfigError, match=f"penduduk-9.0.0.json: {MAX_STANDARD_BYTES + 1} bytes, more than"):
        load_standard_file(path)


@pytest.mark.parametrize("text, says", [
    ("[]", "a standard is a JSON object, not list"), ("\"x\"", "not str"), (b"{\xff}", "not UTF-8"),
    ("{" * 100_000, "nested too deeply|not valid JSON"), ('{"title": NaN}', "not valid JSON"),
    ('{"title": 1' + "0" * 5000 + "}", "not valid JSON"),
])
def test_a_file_that_is_no_json_object_is_refused(tmp_path, text, says):
    with pytest.raises(ConfigError, match=says):
        load_standard_file(_draft(tmp_path, text))


@pytest.mark.parametrize("change, says", [
    (lambda s: s.update(required="nik"), "at required: 'nik' is not of type 'array'"),
    (lambda s: s.update(properties=[1]), "at properties"),
    (lambda s: s["properties"].update(nik=5), "at properties/nik"),
    (lambda s: s["properties"]["nik"].update(type=["string", ["x"]]), "at properties/nik/type"),
    (lambda s: s["properties"]["nik"].update(format={"a": 1}), "at properties/nik/format"),
    (lambda s: s.update({"x-primary-key": [["nik"]]}), "at x-primary-key/0"),
    (lambda s: s["properties"]["agama"].update({"x-code-list": "agama"}), "at properties/agama/x-code-list"),
])
def test_keywords_of_the_wrong_json_type_are_named_not_a_crash(tmp_path, change, says):
    schema = json.loads((STANDARDS_DIR / "penduduk-1.0.0.json").read_text(encoding="utf-8"))
    schema["x-version"] = "9.0.0"
    change(schema)
    with pytest.raises(ConfigError, match=re.escape(says)):
        load_standard_file(_draft(tmp_path, json.dumps(schema)))
