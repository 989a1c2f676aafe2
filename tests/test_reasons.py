"""Every reason code the hub can report has a sentence in Indonesian and in English naming the rule and the form
expected; the sentences never carry a row's value."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa
import pytest

from connectors.registry import Source
from hub.reasons import describe_pattern, explain, explainer
from hub.settings import ROOT
from schemas import load_standard
from schemas.suite import expectation_specs, type_specs

# A standard with every keyword a field may have, a code list narrowed by level and within, and a compound key.
FIELDS = {
    "nik": {"type": "string", "pattern": "^[0-9]{16}$"},
    "nib": {"type": ["string", "null"]},
    "nama": {"type": "string", "minLength": 1, "maxLength": 200},
    "jenis_kelamin": {"type": "string", "x-code-list": {"name": "jenis_kelamin", "edition": "1"}},
    "kode_wilayah": {"type": "string", "x-code-list": {"name": "kode_wilayah", "edition": "2025",
                                                       "level": "desa_kelurahan", "within": "32.71"}},
    "tanggal_lahir": {"type": "string", "format": "date"},
    "umur": {"type": ["integer", "null"], "minimum": 0, "maximum": 150, "x-unit": "tahun"},
    "nilai": {"type": ["number", "null"], "exclusiveMinimum": 0, "multipleOf": 0.5},
    "jumlah": {"type": ["integer", "null"]},
    "status": {"type": ["string", "null"], "enum": ["aktif", "nonaktif"]},
    "versi": {"type": ["string", "null"], "const": "v1"},
    "surel": {"type": ["string", "null"], "format": "email"},
    "telepon": {"type": ["string", "null"]},
    "aktif": {"type": ["boolean", "null"]},
    "program": {"type": "string"},
    "periode": {"type": "string", "pattern": "^20[0-9]{2}-(?:0[1-9]|1[0-2])$"},
}
KEY = ["nik", "program", "periode"]
REQUIRED = ["nik", "nama", "jenis_kelamin", "kode_wilayah", "tanggal_lahir", "program", "periode"]
MAPPING = {
    "nik": {"from": "NIK", "normalize": "nik"},
    "nib": {"from": "NIB", "normalize": {"identifier": {"length": 13}}},
    "nama": {"from": "Nama Lengkap", "normalize": "name"},
    "jenis_kelamin": {"from": "JK", "crosswalk": {"Laki-laki": "1", "L": "1", "Perempuan": "2", "P": "2"}},
    "kode_wilayah": {"from": "Kelurahan", "normalize": "kode_wilayah"},
    "tanggal_lahir": {"from": "Tgl Lahir", "date_formats": ["%d/%m/%Y", "%d %B %Y"], "excel_serial": True},
    "umur": {"from": "Umur"},
    "nilai": {"from": "Nilai", "normalize": "money"},
    "jumlah": {"from": "Jumlah", "normalize": "number"},
    "telepon": {"from": "No HP", "normalize": "phone"},
    "aktif": {"from": "Aktif"},
    "program": {"from": "Program", "extract": "^([A-Z_]+)"},
    "periode": {"from": "Periode"},
}

# Per rule: the field it is asked of, then a piece of the Indonesian and of the English sentence that names the
# form expected. A rule the hub learns without an entry here fails test_every_rule_the_hub_reports_is_explained.
EXPECTED = {
    "required": ("nik", "16 digit angka", "16 digits"),
    "type": ("umur", "bilangan bulat", "whole number"),
    "const": ("versi", '"v1"', '"v1"'),
    "enum": ("status", '"aktif" atau "nonaktif"', '"aktif" or "nonaktif"'),
    "code_list": ("kode_wilayah", "kode_wilayah@2025", "kode_wilayah@2025"),
    "pattern": ("nik", "16 digit angka", "16 digits"),
    "format": ("tanggal_lahir", "YYYY-MM-DD", "YYYY-MM-DD"),
    "length": ("nama", "1 sampai 200 karakter", "1 to 200 characters"),
    "range": ("umur", "paling kecil 0 tahun dan paling besar 150 tahun", "at least 0 tahun and at most 150 tahun"),
    "multiple_of": ("nilai", "kelipatan 0,5", "multiple of 0.5"),
    "duplicate_key": ("nik+program+periode", "kunci utama harus unik", "primary key must be unique"),
    "extract": ("program", "pola extract pendaftaran sumber (^([A-Z_]+))", "extract pattern takes (^([A-Z_]+))"),
    "unmapped_code": ("jenis_kelamin", '"Laki-laki", "L", "Perempuan" atau "P"',
                      '"Laki-laki", "L", "Perempuan" or "P"'),
    "unparseable_date": ("tanggal_lahir", "31/12/2024 (%d/%m/%Y), 31 Desember 2024 (%d %B %Y)",
                         "31/12/2024 (%d/%m/%Y), 31 Desember 2024 (%d %B %Y)"),
    "scientific_notation": ("nik", "notasi ilmiah", "scientific notation"),
    "identifier_digits": ("nib", "digit angka 0-9 saja (13 digit angka)", "digits 0-9 only (13 digits)"),
    "identifier_length": ("nib", "harus 13 digit angka", "must have 13 digits"),
    "money": ("nilai", "Rp 1.200.000", "Rp 1.200.000"),
    "number": ("jumlah", "koma sebagai pemisah desimal", "decimal comma"),
    "phone": ("telepon", "E.164", "E.164"),
    "region_unknown": ("kode_wilayah", "desa/kelurahan dengan nama atau kode itu di dalam 32.71 (Kota Bogor)",
                       "desa or kelurahan (village) of that name or code within 32.71 (Kota Bogor)"),
    "region_ambiguous": ("kode_wilayah", "lebih dari satu desa/kelurahan", "more than one desa or kelurahan"),
    "region_not_in_kecamatan": ("kode_wilayah", "tidak di kecamatan", "not in the kecamatan"),
}
RECORD_EXPECTED = {
    "column_count": ({"expected": 5, "found": 7}, "memiliki 7 kolom, sedangkan baris kepala memiliki 5",
                     "has 7 columns where the header has 5"),
    "json": (None, "objek JSON", "JSON object"),
    "not_object": (None, "bukan objek JSON", "not a JSON object"),
    "too_long": (None, "32.767 karakter", "32,767 characters"),
}
GENERIC = ('aturan "', 'the rule "', "ditolak saat dibaca", "refused when it was read")


def _write_standard(folder: Path, name: str, fields: dict, key: list[str], required: list[str]):
    """A standard of these fields (titled `Judul NAME` and `Title NAME`) in `folder`, loaded."""
    schema = json.loads((ROOT / "schemas" / "standards" / "penduduk-1.1.0.json").read_text())
    schema.update({"x-name": name, "x-version": "1.0.0", "x-primary-key": key, "required": required,
                   "properties": {n: {"title": f"Judul {n}", "description": f"Kolom {n}.", "x-title-en": f"Title {n}",
                                      **spec} for n, spec in fields.items()}})
    (folder / f"{name}-1.0.0.json").write_text(json.dumps(schema))
    return load_standard(f"{name}@1.0.0", directory=folder)


@pytest.fixture(scope="module")
def standard(tmp_path_factory):
    return _write_standard(tmp_path_factory.mktemp("standards"), "uji_alasan", FIELDS, KEY, REQUIRED)


@pytest.fixture(scope="module")
def source(standard):
    return Source(id="uji", title="Uji", description="", agency_code="dinsos", agency_name="Dinas Sosial",
                  standard_ref=standard.ref, kind="file", schedule=None,
                  options={"path": "x.csv", "delimiter": ";"}, mapping=MAPPING, path=Path("uji.yaml"))


def _rules_in(path: Path, pattern: str) -> set[str]:
    return set(re.findall(pattern, path.read_text(encoding="utf-8")))


def _normalizer_rules() -> set[str]:
    """The rules the registered normalizers report, found by running each (with each option's values) on values
    that fail them."""
    from transforms import normalize

    corpus = pa.array(["3,27101E+15", "1.5E+3", "abc", "12/34", "1", "3271010101900001", "Rp 1,200,000", "2 M",
                       "+1 555 1234", "0812-3456-7890", "8321075", "-", "x" * 70, "٣٢٧١", "3271 0101", None])
    found = set()
    for name in normalize.known_normalizers():
        specs = [name]
        for option, allowed in normalize._normalizers[name].options.items():
            values = list(allowed) if isinstance(allowed, (tuple, list, frozenset)) else [16, [15, 16]]
            specs += [{name: {option: value}} for value in values]
        for spec in specs:
            try:
                run = normalize.normalizer(spec)
            except ValueError:
                continue
            found |= {rule for rule, _ in run(corpus).failures}
    return found


def _enumerated(standard) -> dict[str, set[str]]:
    """Every rule the hub's modules can report, by where it comes from."""
    from transforms.regions import RULES as REGION_RULES

    rules = {
        "mapping": _rules_in(ROOT / "transforms" / "mapping.py", r'f"\{field\.name\}:([a-z_]+)"'),
        "normalizers": _normalizer_rules(),
        "regions": set(REGION_RULES),
        "suite": {spec["reason"].partition(":")[2] for spec in type_specs(standard) + expectation_specs(standard)},
        "pipeline": _rules_in(ROOT / "hub" / "pipeline.py", r":(duplicate_key)\""),
    }
    # Every shipped standard's suite too: a rule none of the fields above has would show here.
    from schemas import list_standards

    for shipped in list_standards(ROOT / "schemas" / "standards"):
        rules["suite"] |= {s["reason"].partition(":")[2] for s in expectation_specs(shipped)}
    return rules


def _record_rules() -> set[str]:
    found = set()
    for path in [*(ROOT / "connectors").glob("*.py"), ROOT / "schemas" / "records.py"]:
        found |= _rules_in(path, r'"_record:([a-z_]+)"')
    return found


def test_the_enumeration_finds_the_rules_it_should(standard):
    rules = _enumerated(standard)
    assert rules["mapping"] == {"extract", "unmapped_code", "unparseable_date", "type"}
    assert {"scientific_notation", "identifier_digits", "identifier_length", "money", "number",
            "phone"} <= rules["normalizers"]
    assert {"required", "type", "const", "enum", "code_list", "pattern", "format", "length", "range", "multiple_of",
            "duplicate_key"} <= rules["suite"]
    assert {"column_count", "json", "not_object", "too_long"} <= _record_rules()


@pytest.mark.parametrize("lang", ["id", "en"])
def test_every_rule_the_hub_reports_is_explained(standard, source, lang):
    rules = set().union(*_enumerated(standard).values())
    missing = sorted(rules - set(EXPECTED))
    assert not missing, f"rules without a sentence checked here (add them to hub.reasons and EXPECTED): {missing}"
    for rule in sorted(rules):
        field, expected_id, expected_en = EXPECTED[rule]
        details = {"rows": [12, 40], "more": 0} if rule == "duplicate_key" else None
        sentence = explain(f"{field}:{rule}", standard=standard, source=source, details=details, lang=lang)
        assert sentence.strip() and sentence.endswith("."), (rule, sentence)
        assert not any(g in sentence for g in GENERIC), f"{rule} has only the generic sentence: {sentence}"
        assert (expected_id if lang == "id" else expected_en) in sentence, (rule, sentence)
        # The field is named by its title in the language, its name, and the source's column.
        first = field.split("+")[0]
        assert f"Judul {first}" in sentence if lang == "id" else f"Title {first}" in sentence
        if first in MAPPING:
            assert f'"{MAPPING[first]["from"]}"' in sentence


@pytest.mark.parametrize("lang", ["id", "en"])
def test_every_record_rule_is_explained(standard, source, lang):
    missing = sorted(_record_rules() - set(RECORD_EXPECTED))
    assert not missing, f"_record rules without a sentence checked here: {missing}"
    for rule, (details, expected_id, expected_en) in RECORD_EXPECTED.items():
        sentence = explain(f"_record:{rule}", standard=standard, source=source, details=details, lang=lang)
        assert not any(g in sentence for g in GENERIC), sentence
        assert (expected_id if lang == "id" else expected_en) in sentence, sentence
    column_count = explain("_record:column_count", standard=standard, source=source, lang=lang)
    assert "(;)" in column_count  # the registration's separator, to check in the file


def test_sentences_without_a_source_still_name_the_form(standard):
    assert "16 digit angka" in explain("nik:pattern", standard=standard)
    assert "kode_wilayah@2025" in explain("kode_wilayah:code_list", standard=standard, lang="en")
    date = explain("tanggal_lahir:unparseable_date", standard=standard, lang="en")
    assert date == "Title tanggal_lahir (tanggal_lahir) cannot be read as a real calendar date."
    assert "notasi ilmiah" in explain("nik:scientific_notation", standard=standard)
    # A required field the registration does not map says so: the fix is in the mapping, not in the data.
    unmapped = explain("surel:required", standard=standard, source=source, lang="en")
    assert "maps no column to it" in unmapped


def test_details_name_the_other_rows_and_the_columns(standard, source):
    key = explain("nik+program+periode:duplicate_key", standard=standard, source=source,
                  details={"rows": [12, 40], "more": 3})
    assert "baris 12, 40 dan 3 baris lainnya" in key
    assert "Judul nik" in key and "Judul program" in key and "Judul periode" in key
    en = explain("nik+program+periode:duplicate_key", standard=standard, source=source,
                 details={"rows": [12, 40], "more": 0}, lang="en")
    assert "(rows 12, 40)" in en and "more" not in en
    assert "7 columns where the header has 5" in explain("_record:column_count", standard=standard,
                                                          details={"expected": 5, "found": 7}, lang="en")


def test_the_date_sentence_says_whether_excel_serials_are_read(standard, source):
    on = explain("tanggal_lahir:unparseable_date", standard=standard, source=source, lang="en")
    assert "Excel serial dates are read too (e.g. 45657 for 31 December 2024)" in on
    off = Source(**{**source.__dict__, "mapping": {**MAPPING, "tanggal_lahir": {"from": "Tgl Lahir",
                                                                                  "date_formats": ["%Y-%m-%d"]}}})
    text = explain("tanggal_lahir:unparseable_date", standard=standard, source=off)
    assert "2024-12-31 (%Y-%m-%d)" in text and "nomor seri tanggal Excel tidak dibaca" in text


def test_small_code_lists_are_listed_and_large_ones_shaped(standard):
    small = explain("jenis_kelamin:code_list", standard=standard)
    assert "jenis_kelamin@1" in small and "1 (Laki-laki), 2 (Perempuan)" in small
    large = explain("kode_wilayah:code_list", standard=standard, lang="en")
    assert "desa or kelurahan (village) within 32.71 (Kota Bogor)" in large and "written 32.71.xx.xxxx" in large


def test_unknown_codes_get_a_generic_sentence_in_both_languages(standard):
    assert explain("nik:checksum", standard=standard) == 'Judul nik (nik) tidak memenuhi aturan "checksum" dari ' \
                                                         'standar uji_alasan@1.0.0.'
    assert 'fails the rule "checksum" of standard uji_alasan@1.0.0' in explain("nik:checksum", standard=standard,
                                                                                  lang="en")
    assert "x_baru" in explain("x_baru:required", standard=standard)
    assert 'rule "torn"' in explain("_record:torn", standard=standard, lang="en")
    assert "odd" in explain("odd", standard=standard)
    with pytest.raises(ValueError):
        explain("nik:pattern", standard=standard, lang="fr")


def test_a_sentence_never_carries_a_value_even_from_odd_details(standard, source):
    secret = "3271010101900001-RAHASIA"
    odd = {"expected": secret, "found": [secret], "rows": [secret, 7], "more": secret, "value": secret}
    for code in ["_record:column_count", "nik+program+periode:duplicate_key", "nik:pattern", "x:unknown"]:
        for lang in ("id", "en"):
            assert secret not in explain(code, standard=standard, source=source, details=odd, lang=lang)


def test_explainer_gives_the_same_sentences(standard, source):
    sentence = explainer(standard=standard, source=source, lang="en")
    for code in ["nik:pattern", "nama:length", "_record:json"]:
        assert sentence(code, None) == explain(code, standard=standard, source=source, lang="en")
        assert sentence(code) is sentence(code)  # made once
    details = {"rows": [3], "more": 0}
    assert sentence("nik+program+periode:duplicate_key", details) == explain(
        "nik+program+periode:duplicate_key", standard=standard, source=source, details=details, lang="en")


@pytest.mark.parametrize("pattern, words_id, words_en", [
    ("^[0-9]{16}$", "16 digit angka", "16 digits"),
    (r"^\d{8,10}$", "8 sampai 10 digit angka", "8 to 10 digits"),
    ("^[0-9]+$", "1 digit angka atau lebih", "one or more digits"),
    ("^[A-Z]{2}[0-9]{3}$", "2 huruf besar, lalu 3 digit angka", "2 capital letters, then 3 digits"),
    ("^[A-Z0-9]{5,20}$", "5 sampai 20 digit angka atau huruf besar", "5 to 20 digits or capital letters"),
    ("^[A-Za-z ]{1,50}$", "1 sampai 50 huruf atau karakter \" \"", "1 to 50 letters or characters \" \""),
    ("^(PKH|BPNT|PBI_JK)$", 'salah satu dari "PKH", "BPNT", "PBI_JK"', 'one of "PKH", "BPNT", "PBI_JK"'),
    ("^[0-9]{4}-20[0-9]{2}-[0-9]{5}$", '4 digit angka, lalu "-20", lalu 2 digit angka, lalu "-", lalu 5 digit angka',
     '4 digits, then "-20", then 2 digits, then "-", then 5 digits'),
    ("^20[0-9]{2}-(?:0[1-9]|1[0-2])$", '"20", lalu 2 digit angka, lalu "-", lalu salah satu dari "01", "02"',
     '"20", then 2 digits, then "-", then one of "01", "02"'),
    (r"^\d+(\.\d+)?$", 'boleh (".", lalu 1 digit angka atau lebih)', 'optionally (".", then one or more digits)'),
    ("^20", 'diawali "20"', 'starting with "20"'),
    ("b$", 'diakhiri "b"', 'ending with "b"'),
    ("é", 'memuat "é"', 'containing "é"'),
    ("^.{2}$", "2 karakter apa pun", "2 characters"),
])
def test_patterns_in_words(pattern, words_id, words_en):
    assert words_id in describe_pattern(pattern, "id")
    assert words_en in describe_pattern(pattern, "en")


@pytest.mark.parametrize("pattern", ["^(?=3271)[0-9]{16}$", r"^(a)\1$", "^[^0-9]+$", "(?i)^abc$", "^a|b$x", "^"])
def test_a_pattern_beyond_words_is_shown_as_it_is(tmp_path, pattern):
    assert describe_pattern(pattern) is None
    fields = {"nik": {"type": "string", "pattern": pattern}}
    standard = _write_standard(tmp_path, "uji_pola", fields, key=["nik"], required=["nik"])
    assert explain("nik:pattern", standard=standard, lang="en") == \
        f"Title nik (nik) does not match the pattern: it must match the pattern {pattern}."


def test_without_its_standard_a_code_still_gets_a_sentence(source):
    """A run's standard that no longer loads: the rows still show, each code with what the registration says."""
    for code in ["nik:pattern", "nik:scientific_notation", "tanggal_lahir:unparseable_date", "x:required",
                 "nik+program+periode:duplicate_key", "_record:json"]:
        for lang in ("id", "en"):
            assert explain(code, standard=None, source=source, lang=lang).strip()
    assert explain("nik:pattern", standard=None, lang="en") == 'nik fails the rule "pattern" of its standard.'
    assert "31/12/2024 (%d/%m/%Y)" in explain("tanggal_lahir:unparseable_date", standard=None, source=source)
