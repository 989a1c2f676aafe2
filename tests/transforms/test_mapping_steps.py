"""The mapping's steps as a registration writes them: normalizers with options, the region step (with and without a
kecamatan column), Excel serial dates, and the checks of a mapping before any record is read."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from connectors.base import ROW
from connectors.registry import Source
from hub.errors import ConfigError
from schemas import load_standard
from transforms import harmonize
from transforms.mapping import check_mapping, columns_used

PENDUDUK = load_standard("penduduk@1.0.0")
UMKM = load_standard("umkm@1.0.0")


def source(mapping: dict, standard=PENDUDUK) -> Source:
    return Source(
        id="messy_test", title="Messy test", description="", agency_code="dinsos", agency_name="Dinas Sosial",
        standard_ref=standard.ref, kind="file", schedule=None, options={}, mapping=mapping,
        path=Path("/registry/messy_test.yaml"),
    )


def batch(**columns: list) -> pa.Table:
    n = len(next(iter(columns.values())))
    return pa.table({**{k: pa.array(v, pa.string()) for k, v in columns.items()},
                     ROW: pa.array(range(1, n + 1), pa.int64())})


def run(mapping: dict, standard=PENDUDUK, **columns: list):
    return harmonize(source(mapping, standard), standard, batch(**columns))


# --- the region step --------------------------------------------------------------------------------------


def test_kelurahan_names_in_any_spelling_become_codes_of_the_standards_edition():
    result = run({"kode_wilayah": {"from": "KELURAHAN", "region": True}},
                 KELURAHAN=["Kel. Tanah Sareal", "BARANANGSIANG", "Batu Tulis", "batutulis", "kelurahan  sempur",
                            "3271011001", ""])
    assert result.table["kode_wilayah"].to_pylist() == [
        "32.71.06.1001", "32.71.02.1002", "32.71.01.1001", "32.71.01.1001", "32.71.03.1006", "32.71.01.1001", None]
    assert result.reasons == {}


def test_a_name_outside_the_scope_or_unknown_is_quarantined_with_its_rule():
    result = run({"kode_wilayah": {"from": "KELURAHAN", "region": True}},
                 KELURAHAN=["Cibinong", "Tanah Sarel", "Menteng"])
    # Cibinong is in Kabupaten Bogor, not within 32.71; a misspelt name is not guessed.
    assert result.reasons[0] == ["kode_wilayah:region_unknown"]
    assert result.reasons[1] == ["kode_wilayah:region_unknown"]
    assert 2 not in result.reasons
    assert result.table["kode_wilayah"].to_pylist() == [None, None, "32.71.04.1001"]


def test_a_kecamatan_column_narrows_the_kelurahan_and_says_when_it_does_not_fit():
    result = run({"kode_wilayah": {"from": "DESA", "region": {"kecamatan": "KEC"}}},
                 DESA=["Tanah Sareal", "Sempur", "Sempur", "Kebon Pedes"],
                 KEC=["Kec. Tanah Sareal", "BOGOR TENGAH", "Bogor Barat", ""])
    assert result.table["kode_wilayah"].to_pylist() == ["32.71.06.1001", "32.71.03.1006", None, "32.71.06.1002"]
    assert result.reasons == {2: ["kode_wilayah:region_not_in_kecamatan"]}


def test_the_region_step_can_name_its_level_and_parent():
    result = run({"kode_wilayah": {"from": "KEC", "region": {"level": "kecamatan", "within": "32.71"}}},
                 KEC=["Kecamatan Bogor Utara", "kec tanah sareal"])
    assert result.table["kode_wilayah"].to_pylist() == ["32.71.05", "32.71.06"]


def test_a_region_step_without_a_scope_is_a_config_error_naming_the_field():
    with pytest.raises(ConfigError, match=r"messy_test.yaml: field mapping/nama: region: level and within"):
        check_mapping(source({"nama": {"from": "X", "region": True}}), PENDUDUK)
    with pytest.raises(ConfigError, match=r"mapping/kode_wilayah: .*within '99.99'"):
        check_mapping(source({"kode_wilayah": {"from": "X", "region": {"within": "99.99"}}}), PENDUDUK)
    with pytest.raises(ConfigError, match=r"edition '2022', but the standard's field takes codes of kode_wilayah 2025"):
        check_mapping(source({"kode_wilayah": {"from": "X", "region": {"edition": "2022"}}}), PENDUDUK)


def test_a_missing_kecamatan_column_is_named_like_a_missing_from_column():
    with pytest.raises(ConfigError, match=r"mapping/kode_wilayah/region/kecamatan: column 'KECAMATAN' is not in"):
        run({"kode_wilayah": {"from": "DESA", "region": {"kecamatan": "KECAMATAN"}}}, DESA=["Sempur"])


def test_columns_used_lists_from_and_the_kecamatan_column():
    assert columns_used({"from": "DESA", "region": {"kecamatan": "KEC"}}) == [("from", "DESA"),
                                                                              ("region/kecamatan", "KEC")]
    assert columns_used({"from": "DESA", "region": True}) == [("from", "DESA")]
    assert columns_used({"value": "1"}) == []


# --- normalizers with options, and the other steps ----------------------------------------------------------


def test_identifier_with_a_declared_length_cleans_an_nib():
    result = run({"nib": {"from": "NIB", "normalize": {"identifier": {"length": 13}}}, }, UMKM,
                 NIB=["'1234567890123", " 1234 5678 90123", "1.234.567.890.123", "1,23457E+12", "123"])
    assert result.table["nib"].to_pylist()[:3] == ["1234567890123"] * 3
    assert result.reasons[3] == ["nib:scientific_notation"]
    assert result.reasons[4] == ["nib:identifier_length"]


def test_money_in_indonesian_notation_is_an_integer_field():
    result = run({"jumlah_tenaga_kerja": {"from": "N", "normalize": "money"}}, UMKM,
                 N=["Rp 1.200.000", "1.200.000,00", "12", "1,200,000"])
    assert result.table["jumlah_tenaga_kerja"].to_pylist()[:3] == [1200000, 1200000, 12]
    assert result.reasons[3] == ["jumlah_tenaga_kerja:money"]


def test_name_case_is_chosen_in_the_mapping():
    for case, expected in [("as_written", "José  Ramos"), ("title", "José Ramos"), ("upper", "JOSÉ RAMOS")]:
        result = run({"nama": {"from": "N", "normalize": {"name": {"case": case}}}}, N=["  José   Ramos "])
        assert result.table["nama"].to_pylist() == [" ".join(expected.split())]


def test_excel_serial_dates_are_read_only_when_asked_for():
    mapping = {"tanggal_lahir": {"from": "TGL", "date_formats": ["%d/%m/%Y"], "excel_serial": True}}
    result = run(mapping, TGL=["16/12/2014", "41989", "2014"])
    assert result.table["tanggal_lahir"].to_pylist() == ["2014-12-16", "2014-12-16", None]
    assert result.reasons == {2: ["tanggal_lahir:unparseable_date"]}
    alone = run({"tanggal_lahir": {"from": "TGL", "excel_serial": True}}, TGL=["41989"])
    assert alone.table["tanggal_lahir"].to_pylist() == ["2014-12-16"]
    without = run({"tanggal_lahir": {"from": "TGL", "date_formats": ["%d/%m/%Y"]}}, TGL=["41989"])
    assert without.reasons == {0: ["tanggal_lahir:unparseable_date"]}


def test_an_unknown_normalizer_or_option_is_a_config_error_before_any_record():
    with pytest.raises(ConfigError, match=r"mapping/nik: .*'nikk'"):
        check_mapping(source({"nik": {"from": "X", "normalize": "nikk"}}), PENDUDUK)
    with pytest.raises(ConfigError, match=r"mapping/nama: normalizer 'name': unknown option 'kase'"):
        check_mapping(source({"nama": {"from": "X", "normalize": {"name": {"kase": "title"}}}}), PENDUDUK)
    with pytest.raises(ConfigError, match=r"mapping/tanggal_lahir: date format"):
        check_mapping(source({"tanggal_lahir": {"from": "X", "date_formats": ["%d/%m"]}}), PENDUDUK)
    check_mapping(source({"nik": {"from": "X", "normalize": "nik"}, "agama": {"value": "1"}}), PENDUDUK)


def test_steps_run_in_order_normalize_crosswalk_region():
    # upper-casing first, then a crosswalk keyed by the upper-cased names, then the region step on its output.
    result = run({"kode_wilayah": {"from": "K", "normalize": "upper",
                                   "crosswalk": {"KEL. TS": "Tanah Sareal", "SEMPUR": "Sempur"}, "region": True}},
                 K=["kel. ts", "sempur", "other"])
    assert result.table["kode_wilayah"].to_pylist() == ["32.71.06.1001", "32.71.03.1006", None]
    assert result.reasons == {2: ["kode_wilayah:unmapped_code"]}


def test_a_format_without_a_day_reads_a_month_as_a_period():
    standard = load_standard("penerima_bantuan_sosial@1.0.0")
    result = run({"periode": {"from": "BULAN", "date_formats": ["%B %Y", "%m/%Y", "%Y-%m"]}}, standard,
                 BULAN=["Januari 2024", "PEBRUARI 2024", "03/2024", "2024-04", "13/2024"])
    assert result.table["periode"].to_pylist() == ["2024-01", "2024-02", "2024-03", "2024-04", None]
    assert result.reasons == {4: ["periode:unparseable_date"]}


def test_english_month_names_and_a_time_of_day_after_the_date_are_read():
    result = run({"tanggal_lahir": {"from": "TGL", "date_formats": ["%d-%b-%Y", "%d/%m/%Y", "%Y-%m-%d"]}},
                 TGL=["16-Dec-2014", "16/12/2014 0:00", "2014-12-16 00:00:00", "2014-12-16T08:30:15",
                      "16/12/2014 jam 8"])
    assert result.table["tanggal_lahir"].to_pylist() == ["2014-12-16"] * 4 + [None]
    assert result.reasons == {4: ["tanggal_lahir:unparseable_date"]}


def test_extract_keeps_the_part_of_a_cell_its_group_names_before_the_other_steps():
    result = run({"kbli": {"from": "KBLI", "extract": r"^([0-9]{4,5})\b", "normalize": {"identifier": {"length": 5}}},
                  "kode_wilayah": {"from": "KEL", "extract": r"^[0-9.]+\s*-\s*(.+)$", "region": True}}, UMKM,
                 KBLI=["47111 - Perdagangan eceran", "10794", "Perdagangan", ""],
                 KEL=["3271011001 - BATUTULIS", "32.71.06.1001 - Kel. Tanah Sareal", "Sempur", None])
    assert result.table["kbli"].to_pylist() == ["47111", "10794", None, None]
    assert result.table["kode_wilayah"].to_pylist() == ["32.71.01.1001", "32.71.06.1001", None, None]
    assert result.reasons == {2: ["kbli:extract", "kode_wilayah:extract"]}


@pytest.mark.parametrize("pattern, message", [
    ("^[0-9]+$", "must have exactly one group"), ("^([0-9]+)-([a-z]+)$", "it has 2"), ("^([0-9]+", "no regular"),
])
def test_an_extract_pattern_without_one_group_is_a_config_error(pattern, message):
    with pytest.raises(ConfigError, match=rf"mapping/kbli: extract: .*{message}"):
        check_mapping(source({"kbli": {"from": "X", "extract": pattern}}, UMKM), UMKM)
