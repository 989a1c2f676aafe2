"""The library of standards and code lists: every standard is complete, every code list resolves, records validate."""

from __future__ import annotations

import csv
import re
from collections import Counter

import pyarrow as pa
import pytest
import yaml

from schemas.codelists import CODELISTS_DIR, codes, describe
from schemas.standards import CLASSIFICATIONS, list_standards, load_standard
from schemas.suite import expectation_specs
from schemas.validation import validate

STANDARDS = list_standards()
INDEX = yaml.safe_load((CODELISTS_DIR / "codelists.yaml").read_text(encoding="utf-8"))
EDITIONS = [(name, edition) for name, entry in INDEX.items() for edition in entry["editions"]]
ARROW_TYPES = {"string": pa.string(), "integer": pa.int64(), "number": pa.float64(), "boolean": pa.bool_()}
CHANGES = {"tetap", "ganti_nama", "pindah_kode", "pindah_induk", "dihapus", "baru"}


def by_ref(standards):
    return pytest.mark.parametrize("standard", standards, ids=[s.ref for s in standards])


def read_csv(file: str) -> tuple[list[str], list[dict]]:
    with (CODELISTS_DIR / file).open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


# --- every standard -----------------------------------------------------------------------------------


def test_the_library_holds_at_least_five_standards():
    names = {s.name for s in STANDARDS}
    assert len(names) >= 5
    assert {"penduduk", "penerima_bantuan_sosial", "fasilitas_kesehatan", "satuan_pendidikan", "umkm"} <= names


@by_ref(STANDARDS)
def test_every_standard_carries_its_satu_data_metadata(standard):
    metadata = standard.metadata
    assert set(metadata) == {"walidata", "produsen-data", "frequency", "spatial-coverage", "temporal-coverage",
                             "license", "classification"}
    assert all(metadata.values())
    assert isinstance(metadata["produsen-data"], list) and all(metadata["produsen-data"])
    assert standard.title and standard.description
    assert standard.schema.get("x-title-en") and standard.schema.get("x-description-en")


@by_ref(STANDARDS)
def test_every_field_has_titles_descriptions_and_a_concept(standard):
    for f in standard.fields:
        assert f.title and f.description and f.title_en and f.description_en and f.concept, f.name


@by_ref(STANDARDS)
def test_every_code_list_reference_resolves_to_codes(standard):
    for f in standard.fields:
        if f.code_list:
            assert f.type == "string", f.name
            found = codes(f.code_list)
            assert found, f"{standard.ref} {f.name}: {f.code_list} admits no code"
            assert len(found) == len(set(found))


@by_ref(STANDARDS)
def test_every_standard_compiles_to_a_suite_with_unique_reasons(standard):
    specs = expectation_specs(standard)
    reasons = [s["reason"] for s in specs]
    assert specs and len(reasons) == len(set(reasons))
    assert all(re.fullmatch(r"[a-z_+]+:[a-z_]+", r) for r in reasons)
    if standard.primary_key:
        assert reasons[-1] == "+".join(standard.primary_key) + ":duplicate_key"


@by_ref(STANDARDS)
def test_personal_data_is_never_public(standard):
    for f in standard.fields:
        if f.personal_data:
            assert (f.classification or standard.classification) != "publik", f.name


@by_ref(STANDARDS)
def test_codes_are_text(standard):
    for f in standard.fields:
        if f.name in {"nik", "npsn", "nib", "kbli", "kode_wilayah", "kode_faskes"}:
            assert f.type == "string" and (f.code_list or "pattern" in f.constraints), f.name


def test_new_standards_give_their_numbers_a_unit_and_a_floor():
    for name in ("penerima_bantuan_sosial", "fasilitas_kesehatan", "satuan_pendidikan", "umkm"):
        for f in load_standard(name).fields:
            if f.type in {"integer", "number"}:
                assert f.unit, f"{name}.{f.name}"
                assert "minimum" in f.constraints or "exclusiveMinimum" in f.constraints, f"{name}.{f.name}"


def test_the_new_standards_have_their_keys_and_classifications():
    assert load_standard("penerima_bantuan_sosial").primary_key == ("nik", "program", "periode")
    assert load_standard("penerima_bantuan_sosial").classification == "terbatas"
    for name, key in (("fasilitas_kesehatan", "kode_faskes"), ("satuan_pendidikan", "npsn"), ("umkm", "nib")):
        standard = load_standard(name)
        assert standard.primary_key == (key,) and standard.classification == "publik"
    owner = load_standard("umkm").field("nama_pemilik")
    assert owner.personal_data == "name" and owner.classification == "terbatas" and owner.nullable


# --- code lists ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,edition", EDITIONS, ids=[f"{n}@{e}" for n, e in EDITIONS])
def test_every_registered_code_list_has_an_owner_a_title_and_a_file_with_codes(name, edition):
    info = describe(name, edition)
    assert info["title"] and info["owner"] and info.get("legal_basis")
    header, rows = read_csv(info["file"])
    assert header[:2] == ["kode", "nama"]
    assert rows and all(r["kode"] and r["nama"] for r in rows)
    assert len({r["kode"] for r in rows}) == len(rows)


def test_small_code_lists_hold_their_codes():
    assert codes({"name": "status_perkawinan", "edition": "1"}) == ["1", "2", "3", "4"]
    assert codes({"name": "status_sekolah", "edition": "1"}) == ["negeri", "swasta"]
    assert codes({"name": "skala_usaha", "edition": "1"}) == ["mikro", "kecil", "menengah"]
    assert {"PKH", "BPNT", "BLT", "PBI_JK"} <= set(codes({"name": "program_bansos", "edition": "1"}))
    assert {"rumah_sakit_umum", "puskesmas", "klinik_pratama", "apotek"} <= set(
        codes({"name": "jenis_faskes", "edition": "1"}))
    assert {"TK", "SD", "MI", "SMP", "MTS", "SMA", "MA", "SMK", "SLB"} <= set(
        codes({"name": "jenjang_pendidikan", "edition": "1"}))


@pytest.mark.parametrize("edition", ["2022", "2025"])
def test_kota_bogor_has_6_kecamatan_and_68_kelurahan(edition):
    kelurahan = codes({"name": "kode_wilayah", "edition": edition, "level": "desa_kelurahan", "within": "32.71"})
    kecamatan = codes({"name": "kode_wilayah", "edition": edition, "level": "kecamatan", "within": "32.71"})
    assert len(kelurahan) == 68 and len(kecamatan) == 6
    assert all(re.fullmatch(r"32\.71\.0[1-6]\.1\d{3}", k) for k in kelurahan)


# --- the kode wilayah crosswalk 2022 -> 2025 ----------------------------------------------------------


@pytest.fixture(scope="module")
def crosswalk() -> list[dict]:
    entry = INDEX["kode_wilayah"]["crosswalks"]["2022->2025"]
    header, rows = read_csv(entry["file"])
    assert header == ["kode_2022", "kode_2025", "perubahan"]
    return rows


def test_the_crosswalk_covers_every_2022_code_exactly_once(crosswalk):
    old = Counter(r["kode_2022"] for r in crosswalk if r["kode_2022"])
    assert set(old) == set(codes({"name": "kode_wilayah", "edition": "2022"}))
    assert set(old.values()) == {1}


def test_the_crosswalk_points_only_at_2025_codes_and_covers_them_all(crosswalk):
    new = set(codes({"name": "kode_wilayah", "edition": "2025"}))
    targets = Counter(r["kode_2025"] for r in crosswalk if r["kode_2025"])
    assert set(targets) == new
    assert set(targets.values()) == {1}  # no two 2022 codes fold into one 2025 code


def parent(code: str) -> str:
    return code.rpartition(".")[0]


def test_each_crosswalk_row_is_consistent_with_its_change(crosswalk):
    old = set(codes({"name": "kode_wilayah", "edition": "2022"}))
    successor = {r["kode_2022"]: r["kode_2025"] for r in crosswalk if r["kode_2022"]} | {"": ""}
    new_units = {r["kode_2025"] for r in crosswalk if r["perubahan"] == "baru"}
    assert {r["perubahan"] for r in crosswalk} <= CHANGES
    for r in crosswalk:
        a, b, change = r["kode_2022"], r["kode_2025"], r["perubahan"]
        if change in {"tetap", "ganti_nama"}:
            assert a == b, r
        elif change == "pindah_kode":  # under the same parent, itself perhaps under a new code
            assert a and b and a != b and a.count(".") == b.count(".") and parent(b) == successor[parent(a)], r
        elif change == "pindah_induk":  # under another parent, one new in 2025
            assert a and b and a.count(".") == b.count(".") and parent(b) != successor[parent(a)], r
            assert parent(b) in new_units, r
        elif change == "dihapus":
            assert a and not b, r
        else:
            assert not a and b and b not in old, r


def test_kota_bogor_kept_its_codes_from_2022_to_2025(crosswalk):
    bogor = {r["kode_2022"]: r for r in crosswalk if r["kode_2022"].startswith("32.71")}
    assert len(bogor) == 75  # the city, 6 kecamatan, 68 kelurahan
    assert all(r["kode_2025"] == code for code, r in bogor.items())
    assert bogor["32.71.01.1006"]["perubahan"] == "ganti_nama"  # Ranggamekar -> Rangga Mekar
    assert bogor["32.71.06.1011"]["perubahan"] == "tetap"  # Cibadak
    assert bogor["32.71"]["perubahan"] == "tetap"  # KOTA BOGOR -> Kota Bogor is the same name


def test_papua_regencies_follow_their_move_to_the_new_provinces(crosswalk):
    by_old = {r["kode_2022"]: (r["kode_2025"], r["perubahan"]) for r in crosswalk if r["kode_2022"]}
    assert by_old["91"] == ("91", "tetap") and by_old["92"] == ("92", "tetap")
    assert by_old["91.01"] == ("93.01", "pindah_induk")  # KAB. MERAUKE, now in Papua Selatan
    assert by_old["92.01"] == ("96.01", "pindah_induk")  # KAB. SORONG, now in Papua Barat Daya
    assert by_old["91.03"] == ("91.03", "tetap")  # KAB. JAYAPURA stayed in Papua
    assert by_old["91.01.01"] == ("93.01.01", "pindah_kode")  # kecamatan Merauke follows its regency
    assert by_old["91.01.01.1002"] == ("93.01.01.1002", "pindah_kode")
    papua = [change for code, (_, change) in by_old.items() if code[:2] in {"91", "92"}]
    assert papua.count("dihapus") < 300 < papua.count("pindah_kode")


# --- validating records of the new standards ----------------------------------------------------------


def table(name: str, rows: list[dict]) -> pa.Table:
    standard = load_standard(name)
    return pa.Table.from_pylist(rows, schema=pa.schema([(f.name, ARROW_TYPES[f.type]) for f in standard.fields]))


def reasons(name: str, rows: list[dict]) -> dict[int, list[str]]:
    """Row position -> its reason codes, sorted (the order of a row's reasons is not part of the contract)."""
    return {row: sorted(found) for row, found in validate(load_standard(name), table(name, rows)).reasons.items()}


BANSOS = {"nik": "3271064512850003", "nama": "SITI AMINAH", "program": "PKH", "periode": "2025-03",
          "nominal": 750000, "kode_wilayah": "32.71.06.1011"}


def test_bansos_records_validate():
    good = [BANSOS,
            {**BANSOS, "program": "BPNT", "nominal": 200000},  # same person, another programme
            {**BANSOS, "periode": "2025-04"},  # same programme, another month
            {**BANSOS, "program": "PBI_JK", "nominal": 42000}]
    assert reasons("penerima_bantuan_sosial", good) == {}
    bad = [BANSOS,
           {**BANSOS, "periode": "2025-05", "nominal": -50000},
           {**BANSOS, "periode": "2025-13"},
           {**BANSOS, "program": "KIP"},
           {**BANSOS, "program": "BLT", "kode_wilayah": "32.01.01.2001"},  # Kabupaten Bogor
           {**BANSOS, "nama": "BUDI"}]  # same nik, programme and month as row 0
    assert reasons("penerima_bantuan_sosial", bad) == {
        0: ["nik+program+periode:duplicate_key"],
        1: ["nominal:range"],
        2: ["periode:pattern"],
        3: ["program:code_list"],
        4: ["kode_wilayah:code_list"],
        5: ["nik+program+periode:duplicate_key"],
    }


FASKES = {"kode_faskes": "3271015", "nama": "RSUD KOTA BOGOR", "jenis": "rumah_sakit_umum",
          "kode_wilayah": "32.71.04.1012", "latitude": -6.5641, "longitude": 106.7800, "kapasitas_tempat_tidur": 250}


def test_fasilitas_kesehatan_records_validate():
    good = [FASKES,
            {**FASKES, "kode_faskes": "P3271060201", "nama": "PUSKESMAS TANAH SAREAL", "jenis": "puskesmas",
             "kode_wilayah": "32.71.06.1001", "kapasitas_tempat_tidur": 0},
            {**FASKES, "kode_faskes": "3271A0123", "nama": "APOTEK SEHAT SEMPUR", "jenis": "apotek",
             "kode_wilayah": "32.71.03.1006", "latitude": None, "longitude": None, "kapasitas_tempat_tidur": None}]
    assert reasons("fasilitas_kesehatan", good) == {}
    bad = [{**FASKES, "kode_faskes": "3271016", "jenis": "posyandu"},  # a posyandu is not a health facility
           {**FASKES, "kode_faskes": "3271017", "latitude": 106.78, "longitude": -6.5641},  # swapped
           {**FASKES, "kode_faskes": "3271018", "kapasitas_tempat_tidur": -1},
           {**FASKES, "kode_faskes": "rs-3271"},
           {**FASKES, "kode_faskes": "3271019", "jenis": None}]
    assert reasons("fasilitas_kesehatan", bad) == {
        0: ["jenis:code_list"],
        1: ["latitude:range"],
        2: ["kapasitas_tempat_tidur:range"],
        3: ["kode_faskes:pattern"],
        4: ["jenis:required"],
    }


SEKOLAH = {"npsn": "20219224", "nama": "SD NEGERI CIBADAK 1", "jenjang": "SD", "status": "negeri",
           "kode_wilayah": "32.71.06.1011", "jumlah_peserta_didik": 412}


def test_satuan_pendidikan_records_validate():
    good = [SEKOLAH,
            {**SEKOLAH, "npsn": "20279870", "nama": "MTS AL-HIDAYAH", "jenjang": "MTS", "status": "swasta",
             "jumlah_peserta_didik": 0}]
    assert reasons("satuan_pendidikan", good) == {}
    bad = [{**SEKOLAH, "npsn": "2021922"},  # 7 digits
           {**SEKOLAH, "npsn": "20219225", "status": "Negeri"},
           {**SEKOLAH, "npsn": "20219226", "jenjang": "SMU"},
           {**SEKOLAH, "npsn": "20219227", "jumlah_peserta_didik": -3},
           {**SEKOLAH, "npsn": "20219227", "nama": "SD NEGERI CIBADAK 2"}]  # npsn of row 3 again
    assert reasons("satuan_pendidikan", bad) == {
        0: ["npsn:pattern"],
        1: ["status:code_list"],
        2: ["jenjang:code_list"],
        3: ["jumlah_peserta_didik:range", "npsn:duplicate_key"],
        4: ["npsn:duplicate_key"],
    }


UMKM = {"nib": "0220001234567", "nama_usaha": "KERIPIK TALAS BOGOR", "nama_pemilik": "SITI AMINAH",
        "kbli": "10794", "skala_usaha": "mikro", "kode_wilayah": "32.71.02.1003", "jumlah_tenaga_kerja": 3}


def test_umkm_records_validate():
    good = [UMKM,
            {**UMKM, "nib": "1203000456789", "nama_usaha": "KOPI SEMPUR", "nama_pemilik": None, "kbli": "56303",
             "skala_usaha": "kecil", "kode_wilayah": "32.71.03.1006", "jumlah_tenaga_kerja": 12}]
    assert reasons("umkm", good) == {}
    bad = [{**UMKM, "nib": "022000123456"},  # 12 digits
           {**UMKM, "nib": "0220001234568", "kbli": "4711"},  # a golongan, not a 5-digit kelompok
           {**UMKM, "nib": "0220001234569", "skala_usaha": "besar"},
           {**UMKM, "nib": "0220001234570", "jumlah_tenaga_kerja": -1},
           # Harmonizing turns a blank cell into null (allowed, as in the good rows); an empty text is not a name.
           {**UMKM, "nib": "0220001234571", "nama_pemilik": ""}]
    assert reasons("umkm", bad) == {
        0: ["nib:pattern"],
        1: ["kbli:pattern"],
        2: ["skala_usaha:code_list"],
        3: ["jumlah_tenaga_kerja:range"],
        4: ["nama_pemilik:length"],
    }


POSYANDU = {"tahun": 2024, "kode_wilayah": "32.71.01.1001", "strata": "mandiri", "jumlah_posyandu": 4}


def test_posyandu_kelurahan_records_validate():
    good = [POSYANDU, {**POSYANDU, "strata": "pratama", "jumlah_posyandu": 0}, {**POSYANDU, "tahun": 2023}]
    assert reasons("posyandu_kelurahan", good) == {}
    bad = [{**POSYANDU, "kode_wilayah": "32.01.29.1003"},  # Kabupaten Bogor
           {**POSYANDU, "strata": "aktif"},
           {**POSYANDU, "tahun": 2023, "strata": "madya", "jumlah_posyandu": -1},
           {**POSYANDU, "tahun": 1999, "strata": "purnama"},
           POSYANDU, POSYANDU]  # one kelurahan, stratum and year twice
    assert reasons("posyandu_kelurahan", bad) == {
        0: ["kode_wilayah:code_list"],
        1: ["strata:enum"],
        2: ["jumlah_posyandu:range"],
        3: ["tahun:range"],
        4: ["kode_wilayah+strata+tahun:duplicate_key"],
        5: ["kode_wilayah+strata+tahun:duplicate_key"],
    }


def test_a_field_classification_is_stricter_than_its_datasets():
    order = {c: i for i, c in enumerate(CLASSIFICATIONS)}
    for standard in STANDARDS:
        for f in standard.fields:
            if f.classification:
                assert order[f.classification] > order[standard.classification], f"{standard.ref} {f.name}"
