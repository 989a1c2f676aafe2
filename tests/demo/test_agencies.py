import csv
import json
import re
import sqlite3
from contextlib import closing
from datetime import date, datetime, timedelta
from itertools import islice

import pytest

from demo import agencies
from demo.agencies import (
    build,
    build_dinkes,
    build_dinsos,
    build_disdukcapil,
    build_oss,
    build_posyandu,
    build_sitb,
    ensure_api_key,
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
        "sitb": tmp_path / "demo" / "dinkes" / "sitb_kasus_tbc.jsonl",
        "oss": tmp_path / "demo" / "dpmptsp" / "oss_nib.xlsx",
        "dinkes_api_key": tmp_path / "demo" / "dinkes" / "api_key",
        "posyandu": tmp_path / "demo" / "satudata" / "posyandu_strata_kelurahan.csv",
    }
    assert fetch(paths["disdukcapil"], "SELECT count(*) FROM penduduk") == [(403,)]
    assert len(read_dinsos(paths["dinsos"])) == 106
    # Everyone Dinsos knows is registered at Disdukcapil.
    registered = {r[0] for r in fetch(paths["disdukcapil"], "SELECT nik FROM penduduk")}
    dinsos_niks = {digits(row[0]) for row in read_dinsos(paths["dinsos"])[1:101]}
    assert dinsos_niks <= registered
    # So is every TB patient (but the one whose NIK lost a digit), at the address SIAK has for them.
    siak = {r[0]: r[1:] for r in fetch(paths["disdukcapil"], "SELECT nik, nama_lengkap, alamat FROM penduduk")}
    cases = read_sitb(paths["sitb"])
    assert len(cases) == 24 + 5  # 6% of 400 people, then the wrong lines
    patients = [c["pasien"] for c in cases if c is not cases[-5]]
    assert all(siak[p["nik"]] == (p["nama"].upper(), p["alamat"]) for p in patients)
    # Business owners are residents too.
    rows = read_oss(paths["oss"])
    assert len(rows) == 28 + 5  # 7% of 400 people
    names = {nama for nama, _ in siak.values()}
    assert {r[4] for r in rows if r[4] is not None} <= names


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


# --- Dinkes: tuberculosis cases from SITB -------------------------------------------------------------


def read_sitb(path):
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n") and "\r" not in text
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture(scope="module")
def sitb(tmp_path_factory):
    path = tmp_path_factory.mktemp("sitb") / "sitb_kasus_tbc.jsonl"
    assert build_sitb(path) == 305
    return path


@pytest.fixture(scope="module")
def facilities(tmp_path_factory):
    """Dinkes's facility register (without its wrong records): code -> record."""
    path = tmp_path_factory.mktemp("faskes") / "faskes.json"
    build_dinkes(path)
    return {f["kode"]: f for f in json.loads(path.read_text(encoding="utf-8"))["data"]["faskes"][:-5]}


def test_sitb_is_deterministic(tmp_path, sitb):
    again = tmp_path / "again.jsonl"
    build_sitb(again)
    assert again.read_bytes() == sitb.read_bytes()
    other = tmp_path / "other.jsonl"
    build_sitb(other, seed=7)
    assert other.read_bytes() != sitb.read_bytes()


def test_sitb_patients_are_people_of_the_demo_population(sitb, kelurahan):
    cases = read_sitb(sitb)[:-5]
    assert len(cases) == 300
    residents = {p["nik"]: p for p in people(5000)}
    niks = [c["pasien"]["nik"] for c in cases]
    assert len(set(niks)) == len(niks)  # one notified episode per patient in these fifteen months
    for c in cases:
        p, person = c["pasien"], residents[c["pasien"]["nik"]]
        assert p["nama"].upper() == person["nama"]
        assert p["jenis_kelamin"] == ("P" if person["jenis_kelamin"] == "2" else "L")
        assert p["tgl_lahir"] == person["tanggal_lahir"].isoformat()
        assert p["kode_kelurahan"] == digits(person["kode_wilayah"])
        assert re.fullmatch(r".+ No\. \d+ RT \d{2}/RW \d{2}", p["alamat"])
    assert any(c["pasien"]["nama"] != c["pasien"]["nama"].upper() for c in cases)  # typed at the facility
    # TB is notified more often among men, and mostly among adults.
    assert sum(c["pasien"]["jenis_kelamin"] == "L" for c in cases) > 0.52 * len(cases)
    adults = sum(date.fromisoformat(c["tgl_diagnosis"]).year - int(c["pasien"]["tgl_lahir"][:4]) >= 15
                 for c in cases)
    assert adults > 0.8 * len(cases)


def test_sitb_cases_follow_the_register_rules(sitb, facilities):
    cases = read_sitb(sitb)[:-5]
    numbers = [c["id_tb03"] for c in cases]
    assert len(set(numbers)) == len(numbers)
    for year in ("2024", "2025"):
        serials = [int(n[-5:]) for n in numbers if n[5:9] == year]
        assert serials == list(range(1, len(serials) + 1))  # numbered in order of diagnosis, per year
    assert all(re.fullmatch(r"3271-20(24|25)-\d{5}", n) for n in numbers)
    for c in cases:
        diagnosed = date.fromisoformat(c["tgl_diagnosis"])
        assert date(2024, 1, 2) <= diagnosed <= date(2025, 3, 28)
        assert diagnosed > date.fromisoformat(c["pasien"]["tgl_lahir"])
        assert c["id_tb03"][5:9] == c["tgl_diagnosis"][:4]
        # Puskesmas and hospitals of the facility register notify; a puskesmas its own kecamatan's residents.
        facility = facilities[c["fasyankes"]["kode"]]
        assert facility["nama"] == c["fasyankes"]["nama"]
        assert facility["jenis"] in {"Puskesmas", "Rumah Sakit Umum", "Rumah Sakit Khusus"}
        if facility["jenis"] == "Puskesmas":
            assert facility["wilayah"]["kode_kelurahan"][:6] == c["pasien"]["kode_kelurahan"][:6]
        assert c["tipe_diagnosis"] in {"Terkonfirmasi Bakteriologis", "Terdiagnosis Klinis"}
        assert c["lokasi_anatomi"] in {"Paru", "Ekstra Paru"}
        started = c.get("tgl_mulai_pengobatan")
        outcome = c.get("hasil_akhir_pengobatan")
        if started is None:
            assert outcome is None
            continue
        assert 0 <= (date.fromisoformat(started) - diagnosed).days < 8
        # An outcome only once the six months of treatment are over by the export date.
        assert (outcome is not None) == (date.fromisoformat(started) + timedelta(days=180) <= date(2025, 3, 31))
        if outcome == "Sembuh":
            assert (c["tipe_diagnosis"], c["lokasi_anatomi"]) == ("Terkonfirmasi Bakteriologis", "Paru")
    assert {c.get("hasil_akhir_pengobatan") for c in cases} >= {None, "Sembuh", "Pengobatan Lengkap", "Meninggal",
                                                               "Putus Berobat (Lost to Follow Up)"}
    assert {c["riwayat_pengobatan"] for c in cases} >= {"Baru", "Kambuh"}
    assert any("tgl_mulai_pengobatan" not in c for c in cases)  # SITB leaves out what is not known yet


def test_sitb_wrong_lines(sitb):
    lines = read_sitb(sitb)
    first, good, wrong = lines[0], lines[:-5], lines[-5:]
    kota_bogor = set(agencies._kota_bogor_kelurahan())
    assert re.fullmatch(r"\d{15}", wrong[0]["pasien"]["nik"])
    assert wrong[1]["tgl_diagnosis"] == "2025-02-30"
    assert wrong[2]["lokasi_anatomi"] == "Paru dan Ekstra Paru"
    assert wrong[3]["pasien"]["kode_kelurahan"] == "3201292011"  # Ciomas Rahayu, Kabupaten Bogor
    # The first case again, registered under the same number by the hospital it was referred to.
    assert wrong[4]["id_tb03"] == first["id_tb03"] and wrong[4]["pasien"] == first["pasien"]
    assert wrong[4]["fasyankes"] != first["fasyankes"]
    # Each of the other four is wrong in that one field only, under a number of its own.
    numbers = {c["id_tb03"] for c in good}
    residents = {p["nik"] for p in people(5000)}
    for i, c in enumerate(wrong[:4]):
        assert c["id_tb03"] not in numbers
        assert i == 0 or c["pasien"]["nik"] in residents
        assert i == 1 or date.fromisoformat(c["tgl_diagnosis"])
        assert i == 2 or c["lokasi_anatomi"] in {"Paru", "Ekstra Paru"}
        kode = c["pasien"]["kode_kelurahan"]
        assert i == 3 or f"{kode[:2]}.{kode[2:4]}.{kode[4:6]}.{kode[6:]}" in kota_bogor


# --- DPMPTSP: NIB holders from OSS --------------------------------------------------------------------


def read_oss(path):
    from openpyxl import load_workbook

    rows = list(load_workbook(path, read_only=True)["Data NIB"].iter_rows(values_only=True))
    assert list(rows[0]) == agencies.OSS_HEADER  # the header on the first row, no title above it
    return [list(r) for r in rows[1:]]


@pytest.fixture(scope="module")
def oss(tmp_path_factory):
    path = tmp_path_factory.mktemp("oss") / "oss_nib.xlsx"
    assert build_oss(path) == 355
    return path


def test_oss_is_deterministic(tmp_path, oss):
    # The workbook's bytes carry its creation time; its cells do not change.
    again = tmp_path / "again.xlsx"
    build_oss(again)
    assert read_oss(again) == read_oss(oss)
    other = tmp_path / "other.xlsx"
    build_oss(other, seed=7)
    assert read_oss(other) != read_oss(oss)


def test_oss_businesses(oss, kelurahan):
    rows = read_oss(oss)[:-5]
    assert len(rows) == 350
    nibs = [str(r[0]) for r in rows]
    assert len(set(nibs)) == len(nibs)
    assert all(re.fullmatch(r"9120\d{9}|12\d{11}", n) for n in nibs)
    # Excel keeps some NIBs and every kelurahan code as numbers (13 and 10 digits survive that).
    assert any(isinstance(r[0], int) for r in rows) and any(isinstance(r[0], str) for r in rows)
    assert all(isinstance(r[11], int) for r in rows)
    assert {f"{str(r[11])[:2]}.{str(r[11])[2:4]}.{str(r[11])[4:6]}.{str(r[11])[6:]}" for r in rows} <= kelurahan
    assert {r[10] for r in rows} <= set(agencies._kota_bogor_names().values())
    kbli = {k[0]: k[1] for k in agencies._KBLI}
    for r in rows:
        assert isinstance(r[5], str) and re.fullmatch(r"\d{5}", r[5]) and kbli[r[5]] == r[6]
        # OSS 1.1 issued NIBs until OSS RBA took over on 9 August 2021.
        assert str(r[0]).startswith("9120") == (r[1].date() < date(2021, 8, 9))
        low, high = {"Usaha Mikro": (1, 4), "Usaha Kecil": (5, 19), "Usaha Menengah": (20, 99)}[r[7]]
        assert isinstance(r[8], int) and low <= r[8] <= high
        assert r[4] is not None or r[3] != "Orang Perseorangan"  # only a badan usaha may lack a named owner
        assert r[9] and r[2]
    assert {r[5] for r in rows} >= {"56102", "47112", "01301"}  # a leading zero kept as text
    scales = [r[7] for r in rows]
    assert scales.count("Usaha Mikro") > 0.8 * len(rows) and "Usaha Menengah" in scales
    assert {r[3] for r in rows} == {"Orang Perseorangan", "PT Perorangan", "CV", "PT"}


def test_oss_owners_are_adults_of_the_demo_population(oss):
    rows = read_oss(oss)
    adults = {p["nama"] for p in people(5000) if p["tanggal_lahir"] <= date(2008, 1, 1)}  # 17 on 1 January 2025
    owners = [r[4] for r in rows if r[4] is not None]
    assert len(owners) > 0.95 * len(rows) and set(owners) <= adults


def test_oss_wrong_rows(oss):
    rows = read_oss(oss)
    first, good, wrong = rows[0], rows[:-5], rows[-5:]
    assert re.fullmatch(r"\d{12}", str(wrong[0][0]))
    assert wrong[1][5] == 1301 and wrong[1][6] == "Pertanian Tanaman Hias"  # 01301 typed as a number
    assert wrong[2][7] == "Usaha Besar"
    assert re.fullmatch(r"\d+ orang", wrong[3][8])
    # The first business again, under another main KBLI.
    assert wrong[4][0] == first[0] and wrong[4][5] != first[5] and wrong[4][7:] == first[7:]
    nibs = {str(r[0]) for r in good}
    for i, r in enumerate(wrong[:4]):
        assert str(r[0]) not in nibs
        assert i == 1 or re.fullmatch(r"\d{5}", r[5])
        assert i == 2 or r[7] in {"Usaha Mikro", "Usaha Kecil", "Usaha Menengah"}
        assert i == 3 or isinstance(r[8], int)


# --- the live systems' data: Dinkes's API key and the portal's posyandu table ---------------------------------


def test_the_api_key_is_random_private_and_kept_when_the_demo_is_built_again(tmp_path):
    first, other = tmp_path / "a" / "api_key", tmp_path / "b" / "api_key"
    key = ensure_api_key(first)
    assert re.fullmatch(r"[\w-]{40,}", key) and first.read_text() == key + "\n"
    assert first.stat().st_mode & 0o777 == 0o600
    assert ensure_api_key(other) != key  # one key per home
    first.chmod(0o644)
    assert ensure_api_key(first) == key and first.stat().st_mode & 0o777 == 0o600
    first.write_text("")
    assert ensure_api_key(first) not in ("", key)


def test_posyandu_table_covers_every_kelurahan_and_year_then_its_wrong_rows(tmp_path, kelurahan):
    path = tmp_path / "posyandu.csv"
    assert build_posyandu(path) == 68 * 4 * 2 + 4
    again = tmp_path / "again.csv"
    build_posyandu(again)
    assert again.read_bytes() == path.read_bytes()
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    good, wrong = rows[:-4], rows[-4:]
    assert {(r["kemendagri_kode_desa_kelurahan"], r["strata_posyandu"], r["tahun"]) for r in good} == {
        (k, strata, year) for k in kelurahan for strata in ("PRATAMA", "MADYA", "PURNAMA", "MANDIRI")
        for year in ("2023", "2024")}
    assert all(r["satuan"] == "UNIT" and r["jumlah_posyandu"].isdigit() for r in good)
    assert all(r["kemendagri_kode_kecamatan"] == r["kemendagri_kode_desa_kelurahan"][:8] for r in good)
    per_kelurahan: dict = {}
    for r in good:
        key = (r["kemendagri_kode_desa_kelurahan"], r["tahun"])
        per_kelurahan[key] = per_kelurahan.get(key, 0) + int(r["jumlah_posyandu"])
    assert all(8 <= n <= 26 for n in per_kelurahan.values())
    assert 900 <= sum(n for (_, year), n in per_kelurahan.items() if year == "2024") <= 1200
    assert wrong[0]["kemendagri_kode_desa_kelurahan"].startswith("32.01.")  # Kabupaten Bogor
    assert (wrong[1]["jumlah_posyandu"], wrong[2]["strata_posyandu"]) == ("-", "BELUM TERSTRATA")
    assert wrong[3] == good[0]
