import csv
import re
import sqlite3
from contextlib import closing
from datetime import date, datetime
from itertools import islice

import pytest

from demo import agencies
from demo.agencies import (
    build,
    build_dinsos,
    build_disdukcapil,
    people,
    write_population_csv,
)

HEADER = "NIK;Nama Lengkap;Jenis Kelamin;Agama;Tanggal Lahir;Kode Kelurahan;Alamat"
KECAMATAN = {"327101", "327102", "327103", "327104", "327105", "327106"}


@pytest.fixture(scope="module")
def kelurahan():
    return set(agencies._kota_bogor_kelurahan())


def read_dinsos(path):
    text = path.read_bytes().decode("cp1252")
    return list(csv.reader(text.splitlines(), delimiter=";"))


def digits(value):
    return re.sub(r"\D", "", value)


def nik_birth_date(nik):
    day, month, yy = int(nik[6:8]), int(nik[8:10]), int(nik[10:12])
    female = day > 40
    year = 1900 + yy if yy >= 40 else 2000 + yy
    return date(year, month, day - 40 if female else day), female


# --- people -----------------------------------------------------------------


def test_kelurahan_codes_are_kota_bogor(kelurahan):
    assert len(kelurahan) == 68
    assert all(re.fullmatch(r"32\.71\.0[1-6]\.1\d{3}", kode) for kode in kelurahan)


def test_kelurahan_path_is_read(tmp_path):
    codelist = tmp_path / "kode.csv"
    codelist.write_text(
        "kode,nama,tingkat\n"
        "32.71,Kota Bogor,kabupaten_kota\n"
        "32.71.01,Bogor Selatan,kecamatan\n"
        "32.71.01.1001,Batu Tulis,desa_kelurahan\n"
        "32.01.01.2001,Elsewhere,desa_kelurahan\n",
        encoding="utf-8",
    )
    assert agencies._kota_bogor_kelurahan(codelist) == ("32.71.01.1001",)


def test_people_fields_are_consistent(kelurahan):
    residents = list(people(3000))
    assert len(residents) == 3000
    niks = [p["nik"] for p in residents]
    assert len(set(niks)) == len(niks)
    for p in residents:
        nik = p["nik"]
        assert re.fullmatch(r"\d{16}", nik)
        assert nik[:6] in KECAMATAN
        assert p["kode_wilayah"] in kelurahan
        assert p["kode_wilayah"][:8].replace(".", "") == nik[:6]
        born, female = nik_birth_date(nik)
        assert born == p["tanggal_lahir"]
        assert p["jenis_kelamin"] == ("2" if female else "1")
        assert date(1940, 1, 1) <= p["tanggal_lahir"] <= date(2024, 12, 31)
        assert p["agama"] in {"1", "2", "3", "4", "5", "6", "7"}
        assert p["nama"] == p["nama"].upper()
        p["nama"].encode("cp1252")


def test_people_are_realistic():
    residents = list(people(3000))
    islam = sum(p["agama"] == "1" for p in residents)
    assert 0.85 < islam / len(residents) < 0.98
    assert any("’" in p["nama"] for p in residents)
    assert {p["jenis_kelamin"] for p in residents} == {"1", "2"}


def test_updated_at_increases_from_new_year():
    stamps = [p["updated_at"] for p in people(500)]
    assert stamps[0] == datetime(2025, 1, 1)
    steps = [(b - a).total_seconds() for a, b in zip(stamps, stamps[1:])]
    assert all(60 <= step <= 300 for step in steps)


def test_people_are_deterministic_and_prefix_stable():
    assert list(people(200)) == list(people(200))
    assert list(people(50)) == list(islice(people(500), 50))
    assert list(people(50, seed=1)) != list(people(50, seed=2))


# --- Disdukcapil ------------------------------------------------------------


def fetch(db, sql):
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute(sql).fetchall()


def test_disdukcapil_table(tmp_path, kelurahan):
    db = tmp_path / "siak.db"
    assert build_disdukcapil(db, n=800) == 803

    columns = fetch(db, "PRAGMA table_info(penduduk)")
    assert [(c[1], c[2], c[5]) for c in columns] == [
        ("nik", "TEXT", 1),
        ("nama_lengkap", "TEXT", 0),
        ("jenis_kelamin", "TEXT", 0),
        ("agama", "TEXT", 0),
        ("tgl_lahir", "TEXT", 0),
        ("kode_kelurahan", "TEXT", 0),
        ("status_kawin", "TEXT", 0),
        ("alamat", "TEXT", 0),
        ("updated_at", "TEXT", 0),
    ]

    rows = fetch(db, "SELECT * FROM penduduk ORDER BY rowid")
    assert len(rows) == 803
    good, wrong = rows[:800], rows[800:]
    expected = list(people(800))
    assert [r[0] for r in good] == [p["nik"] for p in expected]
    assert {r[6] for r in good} == {"1", "2", "3", "4", None}  # marital status, sometimes not recorded
    for nik, _, sex, agama, born, kode, _, alamat, updated in good:
        assert re.fullmatch(r".+ No\. \d+ RT \d\d/RW \d\d", alamat)
        assert re.fullmatch(r"\d{16}", nik)
        assert kode in kelurahan and kode[:8].replace(".", "") == nik[:6]
        assert sex in {"1", "2"} and agama in set("1234567")
        assert date.fromisoformat(born)
        assert datetime.strptime(updated, "%Y-%m-%d %H:%M:%S")

    assert len(wrong[0][0]) == 15
    assert wrong[1][5] == "32.71.07.1001"
    assert wrong[2][3] == "9"
    # Each wrong row is broken in exactly one field.
    assert all(len(r[0]) == 16 for r in wrong[1:])
    assert wrong[0][5] in kelurahan and wrong[2][5] in kelurahan
    assert wrong[0][3] in set("1234567") and wrong[1][3] in set("1234567")
    assert min(r[8] for r in wrong) > max(r[8] for r in good)


def test_disdukcapil_replaces_and_is_deterministic(tmp_path):
    first, second = tmp_path / "a.db", tmp_path / "b.db"
    build_disdukcapil(first, n=300)
    build_disdukcapil(first, n=300)  # rebuilding must not fail on the existing table
    build_disdukcapil(second, n=300)
    query = "SELECT * FROM penduduk ORDER BY rowid"
    assert fetch(first, query) == fetch(second, query)
    assert len(fetch(first, query)) == 303


# --- Dinsos -----------------------------------------------------------------


@pytest.fixture(scope="module")
def dinsos_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("dinsos") / "dtks_penduduk.csv"
    assert build_dinsos(path) == 1205
    return path


def test_dinsos_is_deterministic(tmp_path, dinsos_csv):
    again = tmp_path / "again.csv"
    build_dinsos(again)
    assert again.read_bytes() == dinsos_csv.read_bytes()


def test_dinsos_encoding_and_layout(dinsos_csv):
    raw = dinsos_csv.read_bytes()
    text = raw.decode("cp1252")
    assert text.startswith(HEADER + "\r\n")
    assert text.endswith("\r\n")
    assert text.count("\r\n") == 1206
    assert "\n" not in text.replace("\r\n", "")
    # The typographic apostrophe is stored as the single cp1252 byte.
    assert b"\x92" in raw
    rows = read_dinsos(dinsos_csv)
    assert len(rows) == 1206
    assert all(len(row) == 7 for row in rows)


def test_dinsos_holds_every_fourth_person(dinsos_csv):
    rows = read_dinsos(dinsos_csv)[1:1201]
    expected = list(islice(people(4 * 1200), 0, None, 4))
    assert [digits(row[0]) for row in rows] == [p["nik"] for p in expected]
    for row, p in zip(rows, expected):
        assert row[5] == p["kode_wilayah"].replace(".", "")
        assert " ".join(row[1].split()).upper() == p["nama"]


def test_dinsos_is_messy_the_usual_way(dinsos_csv):
    rows = read_dinsos(dinsos_csv)[1:1201]
    niks = [row[0] for row in rows]
    spaced = sum(bool(re.fullmatch(r"\d{4} \d{4} \d{4} \d{4}", nik)) for nik in niks)
    quoted = sum(bool(re.fullmatch(r"'\d{16}", nik)) for nik in niks)
    assert 20 < spaced < 110 and 20 < quoted < 110
    assert all(re.fullmatch(r"'?\d{16}|\d{4}( \d{4}){3}", nik) for nik in niks)

    names = [row[1] for row in rows]
    assert any(name != name.upper() for name in names)
    assert any("  " in name or name != name.strip() for name in names)

    assert {row[2] for row in rows} == {"Laki-laki", "Perempuan", "LK", "PR"}
    assert {row[3] for row in rows} <= {
        "Islam", "Kristen", "Katholik", "Hindu", "Budha", "Khonghucu",
        "Kepercayaan terhadap Tuhan YME",
    }
    dates = [row[4] for row in rows]
    slashed = [d for d in dates if re.fullmatch(r"\d{2}/\d{2}/\d{4}", d)]
    spelled = [d for d in dates if re.fullmatch(r"\d{1,2} [A-Z][a-z]+ \d{4}", d)]
    assert slashed and spelled and len(slashed) + len(spelled) == len(dates)
    assert all(re.fullmatch(r"3271\d{6}", row[5]) for row in rows)
    assert all(re.fullmatch(r".+ No\. \d+ RT \d{2}/RW \d{2}", row[6]) for row in rows)


def test_dinsos_wrong_rows(dinsos_csv):
    rows = read_dinsos(dinsos_csv)
    first, wrong = rows[1], rows[-5:]
    assert re.fullmatch(r"\d{14}", wrong[0][0])
    assert re.fullmatch(r"\d,\d{5}E\+15", wrong[1][0])
    assert wrong[2][4].startswith("31/02/")
    assert wrong[3][2] == "X"
    assert wrong[4][0] == digits(first[0])
    assert wrong[4][1:] != first[1:]


def test_dinsos_count(tmp_path):
    path = tmp_path / "small.csv"
    assert build_dinsos(path, n=10) == 15
    assert len(read_dinsos(path)) == 16


# --- build and benchmark file -----------------------------------------------


def test_build_layout(tmp_path):
    paths = build(tmp_path, people_count=400, dinsos_count=100)
    assert paths == {
        "disdukcapil": tmp_path / "demo" / "disdukcapil" / "siak.db",
        "dinsos": tmp_path / "demo" / "dinsos" / "dtks_penduduk.csv",
        "bansos": tmp_path / "demo" / "dinsos" / "penyaluran_bansos.csv",
        "disdik": tmp_path / "demo" / "disdik" / "satuan_pendidikan.xlsx",
        "dinkes": tmp_path / "demo" / "dinkes" / "faskes.json",
    }
    assert fetch(paths["disdukcapil"], "SELECT count(*) FROM penduduk") == [(403,)]
    assert len(read_dinsos(paths["dinsos"])) == 106
    # Everyone Dinsos knows is registered at Disdukcapil.
    registered = {r[0] for r in fetch(paths["disdukcapil"], "SELECT nik FROM penduduk")}
    dinsos_niks = {digits(row[0]) for row in read_dinsos(paths["dinsos"])[1:101]}
    assert dinsos_niks <= registered


def test_population_csv(tmp_path):
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    write_population_csv(first, 25_000)
    write_population_csv(second, 25_000)
    assert first.read_bytes() == second.read_bytes()

    rows = read_dinsos(first)
    assert "\r\n".join(";".join(r) for r in rows[:1]) == HEADER
    body = rows[1:]
    assert len(body) == 25_000
    assert [digits(row[0]) for row in body] == [p["nik"] for p in people(25_000)]
    assert {row[2] for row in body} == {"Laki-laki", "Perempuan", "LK", "PR"}
    assert all(re.fullmatch(r"'?\d{16}|\d{4}( \d{4}){3}", row[0]) for row in body)
    assert first.read_bytes().count(b"\r\n") == 25_001


def test_bansos_recipients_are_dtks_registrants(tmp_path):
    paths = build(tmp_path, people_count=400, dinsos_count=100)
    rows = list(csv.reader(paths["bansos"].read_text(encoding="utf-8").splitlines()))
    assert rows[0] == agencies.BANSOS_HEADER
    dtks = {digits(row[0]) for row in read_dinsos(paths["dinsos"])[1:101]}
    good, wrong = rows[1:-5], rows[-5:]
    assert {r[0] for r in good} <= dtks
    assert 0.3 < len({r[0] for r in good}) / len(dtks) < 0.8
    assert {r[2] for r in good} == {"PKH", "BPNT", "PBI_JK"}
    assert wrong[-1] == good[0]  # the repeated payment


def test_school_and_facility_files_hold_kota_bogor_codes(tmp_path, kelurahan):
    import json

    from openpyxl import load_workbook

    paths = build(tmp_path, people_count=40, dinsos_count=10)
    sheet = load_workbook(paths["disdik"], read_only=True)["Satuan Pendidikan"]
    rows = list(sheet.iter_rows(values_only=True))
    assert list(rows[2]) == agencies.DISDIK_HEADER
    schools = rows[3:-5]
    assert {r[4] for r in schools} == kelurahan  # at least one school in every kelurahan
    assert len({r[0] for r in schools}) == len(schools)
    facilities = json.loads(paths["dinkes"].read_text(encoding="utf-8"))["data"]["faskes"]
    good = facilities[:-5]
    assert {f["wilayah"]["kode_kelurahan"][:6] for f in good} == KECAMATAN
    assert len({f["kode"] for f in good}) == len(good)
    assert facilities[-1] == good[0]
