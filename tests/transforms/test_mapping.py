"""Harmonization: the mapping engine, Indonesian dates and the normalizers, on the penduduk standard."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest

from connectors.base import ROW
from connectors.registry import Source
from hub.errors import ConfigError
from schemas import load_standard
from transforms import harmonize
from transforms.dates import parse_dates

PENDUDUK = load_standard("penduduk@1.0.0")
FORMATS = ["%d %B %Y", "%d %b %Y", "%d/%m/%Y", "%d-%m-%y"]


def source(mapping: dict) -> Source:
    return Source(
        id="dinsos_test", title="DTKS test", description="", agency_code="dinsos", agency_name="Dinas Sosial",
        standard_ref="penduduk@1.0.0", kind="file", schedule=None, options={}, mapping=mapping,
        path=Path("/registry/dinsos_test.yaml"),
    )


def batch(rows: list[int] | None = None, **columns: list) -> pa.Table:
    """Records as a connector yields them: text columns plus `_row`."""
    n = len(next(iter(columns.values())))
    rows = rows or list(range(1, n + 1))
    return pa.table({**{k: pa.array(v, pa.string()) for k, v in columns.items()}, ROW: pa.array(rows, pa.int64())})


def one_field(field: str, spec: dict, values: list):
    """Harmonize one column mapped to `field`; returns (values of the field, reasons)."""
    result = harmonize(source({field: {"from": "kolom", **spec}}), PENDUDUK, batch(kolom=values))
    return result.table[field].to_pylist(), result.reasons


# --- Indonesian dates ----------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("16 Desember 2014", "2014-12-16"),
    ("16 desember 2014", "2014-12-16"),
    ("3 Agt 1990", "1990-08-03"),
    ("1 Pebruari 2001", "2001-02-01"),
    ("16/12/2014", "2014-12-16"),
    ("1/2/2014", "2014-02-01"),
    ("16-12-14", "2014-12-16"),
    ("16-12-99", "1999-12-16"),
    ("29/02/2016", "2016-02-29"),
])
def test_indonesian_dates_parse_to_iso(text, expected):
    assert parse_dates(pa.array([text]), FORMATS, today=dt.date(2025, 6, 1)).to_pylist() == [expected]


@pytest.mark.parametrize("text", ["31/02/2014", "29/02/2015", "31-04-14", "32/01/2014", "16/13/2014",
                                  "16 Desembr 2014", "kemarin", ""])
def test_impossible_or_unreadable_dates_are_null_not_rolled_over(text):
    assert parse_dates(pa.array([text]), FORMATS, today=dt.date(2025, 6, 1)).to_pylist() == [None]


def test_two_digit_years_are_birth_years_not_in_the_future():
    parsed = parse_dates(pa.array(["01-01-25", "01-01-26"]), ["%d-%m-%y"], today=dt.date(2025, 6, 1))
    assert parsed.to_pylist() == ["2025-01-01", "1926-01-01"]


def test_impossible_date_in_a_mapping_is_a_reason_not_a_rolled_over_date():
    values, reasons = one_field("tanggal_lahir", {"date_formats": FORMATS},
                                ["16 Desember 2014", "31/02/2014", "29/02/2015", "3 Agt 1990"])
    assert values == ["2014-12-16", None, None, "1990-08-03"]
    assert reasons == {1: ["tanggal_lahir:unparseable_date"], 2: ["tanggal_lahir:unparseable_date"]}


def test_date_format_without_a_year_is_a_config_error_naming_the_field():
    with pytest.raises(ConfigError, match="mapping/tanggal_lahir") as info:
        one_field("tanggal_lahir", {"date_formats": ["%d/%m"]}, ["16/12"])
    assert "dinsos_test.yaml" in str(info.value) and "'%d/%m'" in str(info.value) and "year" in str(info.value)


# --- NIK --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "3271010101900001",
    "3271 0101 0190 0001",
    "3271.0101.0190.0001",
    "3271-0101-0190-0001",
    "'3271010101900001",
    "\u20193271010101900001",
    "  3271010101900001  ",
])
def test_nik_written_many_ways_becomes_sixteen_digits(text):
    values, reasons = one_field("nik", {"normalize": "nik"}, [text])
    assert values == ["3271010101900001"]
    assert reasons == {}


@pytest.mark.parametrize("text", ["3,27101E+15", "3.271015E+15", "3,27101e15"])
def test_nik_in_scientific_notation_is_refused(text):
    values, reasons = one_field("nik", {"normalize": "nik"}, ["3271010101900001", text])
    assert values == ["3271010101900001", None]
    assert reasons == {1: ["nik:scientific_notation"]}


def test_nik_with_leading_zero_stays_text():
    values, _ = one_field("nik", {"normalize": "nik"}, ["0271010101900001"])
    assert values == ["0271010101900001"]


# --- names and kode wilayah -------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("  siti   nurhaliza ", "SITI NURHALIZA"),
    ("Andi\tD’Angelo", "ANDI D’ANGELO"),
    ("désirée siregar", "DÉSIRÉE SIREGAR"),
])
def test_names_are_upper_case_with_single_spaces(text, expected):
    assert one_field("nama", {"normalize": "name"}, [text])[0] == [expected]


@pytest.mark.parametrize("text", ["3271011001", "32.71.01.1001", "32710110 01", " 32 71 01 1001 "])
def test_kode_wilayah_is_dotted(text):
    assert one_field("kode_wilayah", {"normalize": "kode_wilayah"}, [text])[0] == ["32.71.01.1001"]


def test_kode_wilayah_of_a_kecamatan_is_dotted_without_trailing_dots():
    assert one_field("kode_wilayah", {"normalize": "kode_wilayah"}, ["327101"])[0] == ["32.71.01"]


# --- crosswalks -------------------------------------------------------------------------------------


def test_crosswalk_ignores_case_and_surrounding_spaces():
    crosswalk = {"Laki-laki": "1", " Perempuan ": "2", "P": "2"}
    values, reasons = one_field("jenis_kelamin", {"crosswalk": crosswalk},
                                ["LAKI-LAKI", "  laki-laki ", "perempuan", "p"])
    assert values == ["1", "1", "2", "2"]
    assert reasons == {}


def test_unmapped_value_gives_an_unmapped_code_reason():
    values, reasons = one_field("jenis_kelamin", {"crosswalk": {"L": "1", "P": "2"}}, ["L", "X", "P", "Waria"])
    assert values == ["1", None, "2", None]
    assert reasons == {1: ["jenis_kelamin:unmapped_code"], 3: ["jenis_kelamin:unmapped_code"]}


def test_blank_value_is_not_an_unmapped_code():
    values, reasons = one_field("jenis_kelamin", {"crosswalk": {"L": "1"}}, ["", "  "])
    assert values == [None, None]
    assert reasons == {}


# --- blanks, constants, configuration errors ----------------------------------------------------------


def test_blank_cells_become_null_not_empty_text():
    values, reasons = one_field("nama", {"normalize": "name"}, ["", "   ", "\t", "budi"])
    assert values == [None, None, None, "BUDI"]
    assert reasons == {}


def test_blank_cells_without_normalizer_become_null():
    assert one_field("agama", {}, ["", " 1 "])[0] == [None, "1"]


def test_constant_value_fills_every_row():
    result = harmonize(source({"agama": {"value": "1"}}), PENDUDUK, batch(x=["a", "b", "c"]))
    assert result.table["agama"].to_pylist() == ["1", "1", "1"]


def test_fields_without_a_mapping_are_null_columns():
    result = harmonize(source({"nik": {"from": "NIK"}}), PENDUDUK, batch(NIK=["3271010101900001"]))
    assert result.table.column_names == [f.name for f in PENDUDUK.fields] + [ROW]
    assert result.table["nama"].to_pylist() == [None]


def test_mapping_from_a_missing_column_is_a_config_error_listing_the_columns():
    with pytest.raises(ConfigError) as info:
        harmonize(source({"nama": {"from": "Nama Lengkap"}}), PENDUDUK, batch(NIK=["1"], Nama=["a"]))
    message = str(info.value)
    assert "dinsos_test.yaml" in message and "mapping/nama/from" in message and "'Nama Lengkap'" in message
    assert "['NIK', 'Nama']" in message
    assert ROW not in message


def test_mapping_to_a_field_the_standard_lacks_is_a_config_error():
    with pytest.raises(ConfigError, match="not fields of standard penduduk@1.0.0"):
        harmonize(source({"nik": {"from": "NIK"}, "golongan_darah": {"from": "NIK"}}), PENDUDUK,
                  batch(NIK=["3271010101900001"]))


# --- no row is ever dropped -------------------------------------------------------------------------


DTKS_MAPPING = {
    "nik": {"from": "NIK", "normalize": "nik"},
    "nama": {"from": "Nama Lengkap", "normalize": "name"},
    "jenis_kelamin": {"from": "Jenis Kelamin", "crosswalk": {"Laki-laki": "1", "Perempuan": "2"}},
    "agama": {"from": "Agama", "crosswalk": {"Islam": "1", "Kristen": "2"}},
    "tanggal_lahir": {"from": "Tanggal Lahir", "date_formats": FORMATS},
    "kode_wilayah": {"from": "Kode Kelurahan", "normalize": "kode_wilayah"},
}


def test_harmonize_never_drops_a_row_and_carries_row_numbers():
    records = batch(
        rows=[4, 7, 9, 12],
        **{
            "NIK": ["3271010101900001", "3,27101E+15", "", "'3271010101900004"],
            "Nama Lengkap": ["siti  aminah", "budi", "", "ani"],
            "Jenis Kelamin": ["Perempuan", "Laki-laki", "?", "perempuan"],
            "Agama": ["Islam", "Islam", "Buddha", "kristen"],
            "Tanggal Lahir": ["16 Desember 2014", "31/02/2014", "", "3 Agt 1990"],
            "Kode Kelurahan": ["3271011001", "3271011002", "", "32.71.06.1011"],
        },
    )
    result = harmonize(source(DTKS_MAPPING), PENDUDUK, records)
    assert result.table.num_rows == records.num_rows
    assert result.table[ROW].to_pylist() == [4, 7, 9, 12]
    assert result.table.slice(0, 1).to_pylist() == [{
        "nik": "3271010101900001", "nama": "SITI AMINAH", "jenis_kelamin": "2", "agama": "1",
        "tanggal_lahir": "2014-12-16", "kode_wilayah": "32.71.01.1001", ROW: 4,
    }]
    assert result.table["nik"].to_pylist()[3] == "3271010101900004"
    assert result.reasons == {
        1: ["nik:scientific_notation", "tanggal_lahir:unparseable_date"],
        2: ["jenis_kelamin:unmapped_code", "agama:unmapped_code"],
    }


def test_harmonized_types_follow_the_standard():
    result = harmonize(source(DTKS_MAPPING), PENDUDUK, batch(**{c["from"]: ["1"] for c in DTKS_MAPPING.values()}))
    assert all(result.table.schema.field(f.name).type == pa.string() for f in PENDUDUK.fields)
    assert result.table.schema.field(ROW).type == pa.int64()


def test_null_cells_stay_null_without_reasons():
    # A database NULL arrives as a null, not as blank text.
    values, reasons = one_field("tanggal_lahir", {"date_formats": FORMATS}, [None, "16/12/2014", None])
    assert values == [None, "2014-12-16", None]
    assert reasons == {}


def test_batch_of_several_chunks_with_repeated_values_maps_every_row():
    chunked = pa.table({
        "kolom": pa.chunked_array([["L", "P", "X"], ["P", "X", "L", "L"]], pa.string()),
        ROW: pa.chunked_array([[1, 2, 3], [4, 5, 6, 7]], pa.int64()),
    })
    result = harmonize(source({"jenis_kelamin": {"from": "kolom", "crosswalk": {"L": "1", "P": "2"}}}), PENDUDUK,
                       chunked)
    assert result.table["jenis_kelamin"].to_pylist() == ["1", "2", None, "2", None, "1", "1"]
    assert result.reasons == {2: ["jenis_kelamin:unmapped_code"], 4: ["jenis_kelamin:unmapped_code"]}
    assert result.table[ROW].to_pylist() == [1, 2, 3, 4, 5, 6, 7]


def test_a_run_converts_each_distinct_value_once_and_gives_every_batch_what_harmonize_gives_it(monkeypatch):
    """The Harmonizer remembers a field's converted values across a run's batches: each batch gets exactly what
    harmonizing it alone gives (values, and the reasons of values that fail, met before or not); a value is
    converted once, and a field past MEMO_VALUES distinct values is converted batch by batch again."""
    import transforms.mapping as mapping

    batches = [
        batch([1, 2, 3], NIK=["3271010101900001", "3271010101900002", "x"], **{
            "Nama Lengkap": ["siti", "budi", "ani"], "Jenis Kelamin": ["P", "L", "?"], "Agama": ["Islam"] * 3,
            "Tanggal Lahir": ["16 Desember 2014", "31/02/2014", None],
            "Kode Kelurahan": ["3271011001", "3271011002", ""]}),
        batch([4, 5, 6], NIK=["3271010101900004", "3271010101900005", "3271010101900006"], **{
            "Nama Lengkap": ["budi", "ani", "dewi"], "Jenis Kelamin": ["?", "P", "L"], "Agama": ["Islam", "x", "Islam"],
            "Tanggal Lahir": ["31/02/2014", "16 Desember 2014", "3 Agt 1990"],
            "Kode Kelurahan": ["3271011002", "3271011001", "3271011001"]}),
    ]
    alone = [harmonize(source(DTKS_MAPPING), PENDUDUK, b) for b in batches]
    converted = []
    real = mapping._convert
    monkeypatch.setattr(mapping, "_convert", lambda spec, field, text, kecamatan=None: (
        converted.append((field.name, text.to_pylist())), real(spec, field, text, kecamatan))[1])
    run = mapping.Harmonizer(source(DTKS_MAPPING), PENDUDUK)
    for b, expected in zip(batches, alone):
        got = run(b)
        assert got.table.equals(expected.table) and got.reasons == expected.reasons
    dates = [values for name, values in converted if name == "tanggal_lahir"]
    assert dates == [["16 Desember 2014", "31/02/2014"], ["3 Agt 1990"]]  # the second batch's new date only
    # The second batch's failures include values judged in the first: a remembered failure still fails.
    assert "tanggal_lahir:unparseable_date" in alone[1].reasons[0] and "agama:unmapped_code" in alone[1].reasons[1]

    converted.clear()
    monkeypatch.setattr(mapping, "MEMO_VALUES", 2)
    run = mapping.Harmonizer(source(DTKS_MAPPING), PENDUDUK)
    for b, expected in zip(batches, alone):
        got = run(b)
        assert got.table.equals(expected.table) and got.reasons == expected.reasons
    names = [values for name, values in converted if name == "nama"]
    assert names == [["siti", "budi", "ani"], ["budi", "ani", "dewi"]]  # three values: past the memory
