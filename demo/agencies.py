"""Deterministic synthetic agency systems of Kota Bogor: Disdukcapil and Dinsos registers of the same people,
Dinsos's social-assistance payments to some of them, Disdik's schools and Dinkes's health facilities."""

from __future__ import annotations

import bisect
import csv
import io
import json
import random
import sqlite3
import zlib
from collections.abc import Iterator
from contextlib import closing
from datetime import date, datetime, timedelta
from functools import lru_cache
from itertools import islice
from pathlib import Path

__all__ = [
    "people",
    "build_disdukcapil",
    "build_dinsos",
    "build_bansos",
    "build_disdik",
    "build_dinkes",
    "build",
    "write_population_csv",
    "DINSOS_HEADER",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
KODE_WILAYAH_CSV = REPO_ROOT / "schemas" / "codelists" / "kode_wilayah_2025.csv"

DINSOS_HEADER = [
    "NIK",
    "Nama Lengkap",
    "Jenis Kelamin",
    "Agama",
    "Tanggal Lahir",
    "Kode Kelurahan",
    "Alamat",
]

_BIRTH_FIRST = date(1940, 1, 1).toordinal()
_BIRTH_LAST = date(2024, 12, 31).toordinal()
_UPDATED_START = datetime(2025, 1, 1)
_UPDATE_STEPS = [timedelta(seconds=s) for s in range(60, 301)]
_SERIALS = [f"{i:04d}" for i in range(10000)]

# Kota Bogor is overwhelmingly Muslim (BPS); codes follow the Dukcapil order 1..7.
_AGAMA_CODES = ["1", "2", "3", "4", "5", "6", "7"]
_AGAMA_CUM_WEIGHTS = [9350, 9700, 9900, 9910, 9980, 9995, 10000]
_AGAMA_NAMES = {
    "1": "Islam",
    "2": "Kristen",
    "3": "Katholik",
    "4": "Hindu",
    "5": "Budha",
    "6": "Khonghucu",
    "7": "Kepercayaan terhadap Tuhan YME",
}

_MALE_PREFIX = ["MUHAMMAD", "MUHAMAD", "MOCHAMAD", "AHMAD", "ACHMAD", "ABDUL", "RADEN"]
_MALE_GIVEN = [
    "RIZKI", "FAJAR", "ASEP", "DEDE", "UJANG", "CECEP", "DADANG", "AGUS", "BUDI",
    "DEDI", "HENDRA", "YAYAN", "IWAN", "ANDI", "RUDI", "DIDIN", "ENDANG", "ADE",
    "ILHAM", "FARHAN", "RAFI", "DIMAS", "BAYU", "ARIF", "YUSUF", "HARIS", "GILANG",
    "RESTU", "IRFAN", "AKBAR", "REZA", "TAUFIK", "SOLEH", "ENTIS", "KOSASIH",
    "SUTISNA", "JAJANG", "NANANG", "ROHMAT", "ZAKI",
]
_MALE_FAMILY = [
    "PRATAMA", "SAPUTRA", "HIDAYAT", "SETIAWAN", "NUGRAHA", "RAMADHAN", "KURNIAWAN",
    "HERMAWAN", "SUHENDAR", "PERMANA", "GUNAWAN", "FIRMANSYAH", "MAULANA", "SOLIHIN",
    "SUPRIATNA", "SUDRAJAT", "SETIADI", "SOPIAN", "RAHMAN", "HAKIM", "WIJAYA",
    "SANTOSO", "NURDIN", "SAEPUDIN", "KUSNADI",
]
_FEMALE_GIVEN = [
    "SITI", "NUR", "DEWI", "RINA", "YANTI", "ENENG", "NENG", "EUIS", "IKA", "LIA",
    "TINI", "IIS", "ANI", "SRI", "NOVI", "PUTRI", "AYU", "INTAN", "NADIA", "SALSABILA",
    "NABILA", "AISYAH", "ZAHRA", "KEISHA", "FITRI", "RATNA", "WIWIN", "ELIS", "YULI",
    "DIAN", "TITIN", "IMAS", "NENDEN", "CUCU", "ROSITA",
]
_FEMALE_FAMILY = [
    "NURHALIZA", "RAHAYU", "LESTARI", "WULANDARI", "KURNIASIH", "FITRIANI",
    "HANDAYANI", "PERMATASARI", "NURJANAH", "MARLINA", "SARI", "PUSPITA", "AULIA",
    "MAHARANI", "SURYANI", "KARTIKA", "RAHMAWATI", "SETIAWATI", "NURAENI",
    "HASANAH", "KOMALASARI", "AMELIA", "ANGGRAENI", "MULYANI", "SUSILAWATI",
]
# Arabic-derived names keep the hamza as a typographic apostrophe (U+2019,
# cp1252 0x92): the character that breaks naive latin-1 / ASCII pipelines.
_MALE_APOSTROPHE = ["MA’RUF AMIN", "JUM’AT", "SYAFI’I", "ABDUL RO’UF", "MU’MIN HIDAYAT"]
_FEMALE_APOSTROPHE = ["KHOIRUN NI’MAH", "SA’ADAH", "SITI MU’AWANAH", "NUR SA’DIYAH"]

_MONTHS_ID = [
    "Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus",
    "September", "Oktober", "November", "Desember",
]
_STREETS = [
    "Jl. Pajajaran", "Jl. Suryakencana", "Jl. Ir. H. Juanda", "Jl. Jend. Sudirman",
    "Jl. Ahmad Yani", "Jl. Merdeka", "Jl. Kapten Muslihat", "Jl. Paledang",
    "Jl. Empang", "Jl. Batutulis", "Jl. Lawang Gintung", "Jl. Bondongan",
    "Jl. Raya Tajur", "Jl. Siliwangi", "Jl. Pahlawan", "Jl. Baranangsiang",
    "Jl. Raya Cilendek", "Jl. Semplak", "Jl. Sindang Barang", "Jl. KH. Sholeh Iskandar",
    "Jl. Kebon Pedes", "Jl. Mayor Oking", "Jl. Veteran", "Jl. Pandu Raya",
    "Jl. Bangbarung", "Jl. Malabar", "Jl. Lodaya", "Jl. Dr. Semeru", "Jl. Cimanggu",
    "Gg. Mawar", "Gg. Masjid", "Kp. Sukasari", "Perum Bogor Baru Blok C",
]
_HOUSE_NUMBERS = [f" No. {i}" for i in range(1, 151)]
# Dukcapil status perkawinan codes among adults, roughly as often as in a city's register.
_STATUS_KAWIN = ["2"] * 6 + ["1"] * 2 + ["3", "4"]
_RT_RW = [f" RT {rt:02d}/RW {rw:02d}" for rt in range(1, 13) for rw in range(1, 16)]


@lru_cache(maxsize=4)
def _kota_bogor_kelurahan(path: Path = KODE_WILAYAH_CSV) -> tuple[str, ...]:
    """Dotted kelurahan codes of Kota Bogor (32.71) from a kode_wilayah CSV."""
    codes = tuple(_kota_bogor_names(path))
    if not codes:
        raise ValueError(f"no Kota Bogor kelurahan in {path}")
    return codes


@lru_cache(maxsize=4)
def _kota_bogor_names(path: Path = KODE_WILAYAH_CSV) -> dict[str, str]:
    """Dotted kelurahan code of Kota Bogor -> its name, from a kode_wilayah CSV."""
    with open(path, encoding="utf-8", newline="") as f:
        return {
            row["kode"]: row["nama"]
            for row in csv.DictReader(f)
            if row["tingkat"] == "desa_kelurahan" and row["kode"].startswith("32.71.")
        }


def people(n: int, seed: int = 2024) -> Iterator[dict]:
    """Yield n synthetic residents; the first k are the same whatever n is."""
    if n < 0:
        raise ValueError("n must not be negative")
    # (dotted code, NIK kecamatan prefix) per kelurahan.
    kelurahan = [(kode, kode[:8].replace(".", "")) for kode in _kota_bogor_kelurahan()]
    births = _birth_table()
    rng = random.Random(seed)
    # Plain random() indexing and precomputed strings: choice(), randint() and
    # format specs each cost about a microsecond, which adds up at a million people.
    rand = rng.random
    serials: dict[str, int] = {}
    updated_at = _UPDATED_START
    for _ in range(n):
        kode, kecamatan = kelurahan[int(rand() * len(kelurahan))]
        female = rand() < 0.5
        # The exponent skews births towards recent years, like Bogor's young population.
        born, ddmmyy_male, ddmmyy_female = births[int(len(births) * rand() ** 0.8)]
        weight = int(rand() * 10000)
        agama = "1" if weight < _AGAMA_CUM_WEIGHTS[0] else _agama(weight)

        prefix = kecamatan + (ddmmyy_female if female else ddmmyy_male)
        serial = serials.get(prefix, 0) + 1
        if serial > 9999:
            raise ValueError("more than 9999 people share a kecamatan and birth date")
        serials[prefix] = serial

        yield {
            "nik": prefix + _SERIALS[serial],
            "nama": _name(rand, female),
            "jenis_kelamin": "2" if female else "1",
            "agama": agama,
            "tanggal_lahir": born,
            "kode_wilayah": kode,
            "updated_at": updated_at,
        }
        updated_at += _UPDATE_STEPS[int(rand() * len(_UPDATE_STEPS))]


def _agama(weight: int) -> str:
    return _AGAMA_CODES[bisect.bisect_right(_AGAMA_CUM_WEIGHTS, weight)]


@lru_cache(maxsize=1)
def _birth_table() -> list[tuple[date, str, str]]:
    """Every allowed birth date with its NIK DDMMYY for men and women (day + 40)."""
    table = []
    for ordinal in range(_BIRTH_FIRST, _BIRTH_LAST + 1):
        d = date.fromordinal(ordinal)
        mmyy = f"{d.month:02d}{d.year % 100:02d}"
        table.append((d, f"{d.day:02d}{mmyy}", f"{d.day + 40:02d}{mmyy}"))
    return table


def _name(rand, female: bool) -> str:
    if rand() < 0.02:
        pool = _FEMALE_APOSTROPHE if female else _MALE_APOSTROPHE
        return pool[int(rand() * len(pool))]
    given_pool = _FEMALE_GIVEN if female else _MALE_GIVEN
    family_pool = _FEMALE_FAMILY if female else _MALE_FAMILY
    given = given_pool[int(rand() * len(given_pool))]
    shape = rand()
    if shape < 0.1:
        # Many older Sundanese and Javanese residents have a single name.
        return given
    family = family_pool[int(rand() * len(family_pool))]
    if female or shape < 0.7:
        return f"{given} {family}"
    prefix = _MALE_PREFIX[int(rand() * len(_MALE_PREFIX))]
    return f"{prefix} {given} {family}"


def build_disdukcapil(path: Path, n: int = 5000, seed: int = 2024) -> int:
    """Write Disdukcapil's SIAK table `penduduk` (n people + 3 wrong rows) to SQLite."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)

    stream = people(n + 3, seed)
    rows = (_siak_row(p) for p in islice(stream, n))

    with closing(sqlite3.connect(path)) as conn:
        # A throwaway file rebuilt from scratch: crash safety is not worth the time.
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        # NIKs arrive in random order: a small page cache thrashes the primary key index.
        conn.execute("PRAGMA cache_size = -131072")
        conn.execute(
            "CREATE TABLE penduduk ("
            " nik TEXT PRIMARY KEY,"
            " nama_lengkap TEXT,"
            " jenis_kelamin TEXT,"
            " agama TEXT,"
            " tgl_lahir TEXT,"
            " kode_kelurahan TEXT,"
            " status_kawin TEXT,"
            " alamat TEXT,"
            " updated_at TEXT)"
        )
        insert = "INSERT INTO penduduk VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        with conn:
            while chunk := list(islice(rows, 50_000)):
                conn.executemany(insert, chunk)
            # The next three people, each broken in one field, updated last.
            bad_nik, bad_kode, bad_agama = (_siak_row(p) for p in stream)
            wrong = [
                (bad_nik[0][:15], *bad_nik[1:]),
                (*bad_kode[:5], "32.71.07.1001", *bad_kode[6:]),
                (*bad_agama[:3], "9", *bad_agama[4:]),
            ]
            conn.executemany(insert, wrong)
    return n + len(wrong)


def _siak_row(p: dict) -> tuple[str, ...]:
    # Marital status and address come from the NIK, so the people stream draws nothing new for them.
    serial = zlib.crc32(p["nik"].encode())
    adult = (date(2025, 1, 1) - p["tanggal_lahir"]).days >= 17 * 365
    status = None if serial % 20 == 19 else ("1" if not adult else _STATUS_KAWIN[serial % len(_STATUS_KAWIN)])
    alamat = (_STREETS[serial % len(_STREETS)] + _HOUSE_NUMBERS[serial % len(_HOUSE_NUMBERS)]
              + _RT_RW[serial % len(_RT_RW)])
    return (
        p["nik"],
        p["nama"],
        p["jenis_kelamin"],
        p["agama"],
        p["tanggal_lahir"].isoformat(),
        p["kode_wilayah"],
        status,
        alamat,
        str(p["updated_at"]),
    )


def build_dinsos(path: Path, n: int = 1200, seed: int = 2024) -> int:
    """Write Dinsos's DTKS export (every 4th person, n rows + 5 wrong rows) as messy cp1252 CSV."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if n < 1:
        raise ValueError("Dinsos export needs at least one good row")
    stream = islice(people(4 * (n + 5), seed), 0, None, 4)
    rand = _dinsos_rng(seed)
    good = [_dinsos_row(p, rand) for p in islice(stream, n)]
    wrong = [_dinsos_row(p, rand) for p in stream]

    with open(path, "w", encoding="cp1252", newline="") as f:
        writer = csv.writer(f, delimiter=";", lineterminator="\r\n")
        writer.writerow(DINSOS_HEADER)
        writer.writerows(good)

        short_nik, sci_nik, bad_date, bad_sex, duplicate = wrong
        short_nik[0] = _digits(short_nik[0])[:14]
        # What Excel shows after opening the CSV and saving it again (Indonesian locale).
        sci_nik[0] = f"{int(_digits(sci_nik[0])):.5E}".replace(".", ",")
        bad_date[4] = f"31/02/{bad_date[4][-4:]}"
        bad_sex[2] = "X"
        duplicate[0] = _digits(good[0][0])
        writer.writerows(wrong)
    return n + len(wrong)


def write_population_csv(path: Path, rows: int, seed: int = 2024) -> None:
    """Stream `rows` people in the Dinsos CSV format (no wrong rows), for benchmarks."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rand = _dinsos_rng(seed)
    with open(path, "w", encoding="cp1252", newline="") as f:
        writer = csv.writer(f, delimiter=";", lineterminator="\r\n")
        writer.writerow(DINSOS_HEADER)
        # cp1252 is encoded per write() call, one per row: buffering rows as
        # text and writing them in chunks is several times faster.
        buffer = io.StringIO()
        chunk_writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
        persons = people(rows, seed)
        while chunk := list(islice(persons, 10_000)):
            chunk_writer.writerows(_dinsos_row(p, rand) for p in chunk)
            f.write(buffer.getvalue())
            buffer.seek(0)
            buffer.truncate()


def build(home: Path, people_count: int = 5000, dinsos_count: int = 1200) -> dict[str, Path]:
    """Build every demo agency system under home/demo and return their paths."""
    demo = Path(home) / "demo"
    paths = {
        "disdukcapil": demo / "disdukcapil" / "siak.db",
        "dinsos": demo / "dinsos" / "dtks_penduduk.csv",
        "bansos": demo / "dinsos" / "penyaluran_bansos.csv",
        "disdik": demo / "disdik" / "satuan_pendidikan.xlsx",
        "dinkes": demo / "dinkes" / "faskes.json",
    }
    build_disdukcapil(paths["disdukcapil"], people_count)
    build_dinsos(paths["dinsos"], dinsos_count)
    build_bansos(paths["bansos"], dinsos_count)
    build_disdik(paths["disdik"])
    build_dinkes(paths["dinkes"])
    return paths


BANSOS_HEADER = ["NIK", "NAMA PENERIMA", "PROGRAM", "PERIODE", "NOMINAL", "KODE KELURAHAN"]
_BANSOS_PERIODS = ["2025-01", "2025-02", "2025-03"]
# Monthly amounts in rupiah: the PBI-JK contribution and the Sembako (BPNT) benefit. PKH is paid per tahap,
# three months at once, in the first month; its amount depends on the family's components.
_PBI_JK, _BPNT = 42_000, 200_000
_PKH_TAHAP = [750_000, 900_000, 1_125_000, 1_500_000, 2_400_000]


def build_bansos(path: Path, dtks_count: int = 1200, seed: int = 2024) -> int:
    """Write Dinsos's social-assistance payments (SIKS-NG export, UTF-8 CSV) to people of its DTKS export.

    About half of the DTKS registrants receive something (PBI-JK, often with Sembako, some with PKH), over
    three months; then 5 wrong rows. Returns the number of rows written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rand = random.Random(f"bansos:{seed}").random
    stream = islice(people(4 * (dtks_count + 5), seed), 0, None, 4)
    rows = []
    for p in islice(stream, dtks_count):
        r = rand()
        programmes = ["PBI_JK"] if r < 0.30 else ["PBI_JK", "BPNT"] if r < 0.45 else \
            ["PKH", "BPNT", "PBI_JK"] if r < 0.55 else []
        pkh = _PKH_TAHAP[int(rand() * len(_PKH_TAHAP))]
        for periode in _BANSOS_PERIODS:
            for programme in programmes:
                if programme == "PKH" and periode != _BANSOS_PERIODS[0]:
                    continue
                nominal = {"PBI_JK": _PBI_JK, "BPNT": _BPNT, "PKH": pkh}[programme]
                rows.append([p["nik"], p["nama"], programme, periode, str(nominal), _digits(p["kode_wilayah"])])
    # Five more registrants, each payment wrong in one field; the last repeats the first payment's key.
    wrong = [[p["nik"], p["nama"], "BPNT", "2025-02", str(_BPNT), _digits(p["kode_wilayah"])] for p in stream]
    wrong[0][0] = wrong[0][0][:15]
    wrong[1][2] = "PKH LANSIA"
    wrong[2][3] = "Maret 2025"
    wrong[3][4] = "Rp 200.000"
    wrong[4] = list(rows[0])
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\r\n")
        writer.writerow(BANSOS_HEADER)
        writer.writerows(rows)
        writer.writerows(wrong)
    return len(rows) + len(wrong)


DISDIK_HEADER = ["NPSN", "Nama Sekolah", "Bentuk Pendidikan", "Status", "Kode Wilayah", "Kelurahan",
                 "Peserta Didik"]
_YAYASAN = ["Al-Hidayah", "Al-Ikhlas", "Nurul Iman", "Bina Insani", "Pembangunan", "Mardi Waluya", "Regina Pacis",
            "Budi Mulia", "Taruna Andigha", "Wiyata Mandala", "Darul Falah", "Pakuan", "Kesatuan", "Insan Kamil"]


def build_disdik(path: Path, seed: int = 2024) -> int:
    """Write Disdik's Dapodik export of schools as .xlsx: a title row, a blank row, the header, ~150 schools
    (SD and TK or MI in each kelurahan, SMP, MTs, SMA and SMK in each kecamatan) and 5 wrong rows."""
    from openpyxl import Workbook

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rand = random.Random(f"disdik:{seed}").random
    names = _kota_bogor_names()
    numbers: dict[str, int] = {}

    def school(bentuk: str, status: str, kode: str, low: int, high: int, name: str | None = None) -> list:
        madrasah = bentuk in ("MI", "MTs", "MA")
        serial = len(rows)
        npsn = str((69725000 if madrasah else 20218000) + 7 * serial + int(rand() * 7))
        if name is None:
            numbers[bentuk] = numbers.get(bentuk, 0) + 1
            name = f"{bentuk} {'Negeri' if status == 'NEGERI' else _YAYASAN[int(rand() * len(_YAYASAN))]} " \
                   f"{numbers[bentuk]} Bogor"
        return [npsn, name, bentuk, status, kode, names[kode], low + int(rand() * (high - low))]

    rows: list[list] = []
    kecamatan: dict[str, list[str]] = {}
    for kode, nama in names.items():
        kecamatan.setdefault(kode[:8], []).append(kode)
        rows.append(school("SD", "NEGERI", kode, 150, 450, f"SD Negeri {nama} 1"))
        if rand() < 0.5:
            rows.append(school("SD", "NEGERI", kode, 120, 400, f"SD Negeri {nama} 2"))
        rows.append(school("TK", "SWASTA", kode, 20, 90) if rand() < 0.6 else school("MI", "SWASTA", kode, 80, 320))
    for codes in kecamatan.values():
        for bentuk, status, low, high in (("SMP", "NEGERI", 500, 1000), ("SMP", "SWASTA", 150, 500),
                                          ("MTs", "SWASTA", 100, 450), ("SMA", "NEGERI", 700, 1150),
                                          ("SMK", "SWASTA", 200, 1200)):
            rows.append(school(bentuk, status, codes[int(rand() * len(codes))], low, high))
    # Five more schools, each wrong in one field; the last repeats the first school's NPSN.
    codes = list(names)
    wrong = [school("SD", "SWASTA", codes[int(rand() * len(codes))], 100, 300) for _ in range(4)]
    wrong[0][0] = wrong[0][0][:7]  # a digit lost while typing
    wrong[1][2] = "SD/MI"
    wrong[2][4] = "32.01.28.2001"  # a kelurahan of Kabupaten Bogor
    wrong[3][6] = "belum diisi"
    wrong.append(list(rows[0]))

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Satuan Pendidikan")
    sheet.append(["Data Satuan Pendidikan Kota Bogor, Semester Genap 2024/2025"])
    sheet.append([])
    sheet.append(DISDIK_HEADER)
    for row in [*rows, *wrong]:
        sheet.append(row)
    workbook.save(path)
    return len(rows) + len(wrong)


# Where each kecamatan's facilities stand, roughly: (latitude, longitude) of its middle.
_KECAMATAN_CENTRE = {
    "32.71.01": (-6.628, 106.809), "32.71.02": (-6.612, 106.826), "32.71.03": (-6.597, 106.797),
    "32.71.04": (-6.578, 106.770), "32.71.05": (-6.571, 106.811), "32.71.06": (-6.548, 106.784),
}
_PHARMACY = ["Kimia Farma", "K-24", "Sehat", "Bunda", "Sentosa", "Medika", "Pakuan Farma", "Mitra"]


def build_dinkes(path: Path, seed: int = 2024) -> int:
    """Write Dinkes's facility register as its API returns it (JSON, records under data.faskes): ~110 puskesmas,
    hospitals, clinics, pharmacies and laboratories, then 5 wrong records."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rand = random.Random(f"dinkes:{seed}").random
    names = _kota_bogor_names()
    records: list[dict] = []

    def facility(code: str, name: str, jenis: str, kode: str, beds: int | None) -> dict:
        lat, lng = _KECAMATAN_CENTRE[kode[:8]]
        mapped = rand() >= 0.1
        return {"kode": code, "nama": name, "jenis": jenis,
                "wilayah": {"kode_kelurahan": _digits(kode), "kelurahan": names[kode]},
                "koordinat": {"lat": round(lat + (rand() - 0.5) * 0.02, 6) if mapped else None,
                              "lng": round(lng + (rand() - 0.5) * 0.02, 6) if mapped else None},
                "tempat_tidur": beds}

    for i, (kode, nama) in enumerate(names.items()):
        digits = _digits(kode)
        if i % 3 == 0:
            inpatient = rand() < 0.3
            records.append(facility(f"P{digits}", f"Puskesmas {nama}", "Puskesmas", kode,
                                    10 + int(rand() * 10) if inpatient else None))
        if rand() < 0.5:
            records.append(facility(f"K{digits}", f"Klinik Pratama {nama}", "Klinik Pratama", kode, None))
        if rand() < 0.45:
            records.append(facility(f"A{digits}", f"Apotek {_PHARMACY[int(rand() * len(_PHARMACY))]} {nama}",
                                    "Apotek", kode, None))
        if i % 6 == 1:
            specialist = i % 12 == 1
            records.append(facility(f"3271{i:03d}", f"RS {'Ibu dan Anak' if specialist else 'Umum'} {nama}",
                                    "Rumah Sakit Khusus" if specialist else "Rumah Sakit Umum", kode,
                                    40 + int(rand() * 60) if specialist else 100 + int(rand() * 250)))
        if i % 17 == 2:
            records.append(facility(f"L{digits}", f"Laboratorium Klinik {nama}", "Laboratorium Klinik", kode, None))
    # Five more records, each wrong in one field; the last repeats the first facility's code.
    wrong = [facility("Y3271031005", "Posyandu Melati Babakan", "Posyandu", "32.71.03.1005", None),
             facility("k-3271021003", "Klinik Pratama Sehati Katulampa", "Klinik Pratama", "32.71.02.1003", None),
             facility("A3271051004", "Apotek Sentosa Ciparigi", "Apotek", "32.71.05.1004", None),
             facility("L3271041002", "Laboratorium Klinik Sindang Barang", "Laboratorium Klinik", "32.71.04.1002", None),
             dict(records[0])]
    wrong[2]["koordinat"] = {"lat": 106.8012, "lng": -6.5641}  # entered the wrong way round
    wrong[3]["wilayah"] = {"kode_kelurahan": None, "kelurahan": "Sindang Barang"}
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"status": "success", "dihasilkan": "2025-03-31T07:00:00+07:00",
                   "data": {"jumlah": len(records) + len(wrong), "faskes": [*records, *wrong]}},
                  f, ensure_ascii=False, indent=1)
    return len(records) + len(wrong)


def _dinsos_rng(seed: int):
    # Separate stream so formatting noise never shifts who the people are.
    return random.Random(f"dinsos-format:{seed}").random


@lru_cache(maxsize=1)
def _dinsos_dates() -> dict[date, tuple[str, str]]:
    """Both ways Dinsos writes each birth date: ("16/12/2014", "16 Desember 2014")."""
    dates = {}
    for d, _, _ in _birth_table():
        dates[d] = (
            f"{d.day:02d}/{d.month:02d}/{d.year}",
            f"{d.day} {_MONTHS_ID[d.month - 1]} {d.year}",
        )
    return dates


def _digits(nik: str) -> str:
    return "".join(ch for ch in nik if ch.isdigit())


def _dinsos_row(p: dict, rand) -> list[str]:
    nik = p["nik"]
    r = rand()
    if r < 0.05:
        nik = f"{nik[:4]} {nik[4:8]} {nik[8:12]} {nik[12:]}"
    elif r < 0.10:
        # Typed with a leading apostrophe so the spreadsheet keeps it as text.
        nik = "'" + nik

    nama = p["nama"]
    r = rand()
    if r < 0.25:
        # As Excel's PROPER() leaves it, "Ma’Ruf" included.
        nama = nama.title()
    elif r < 0.30:
        nama = nama.replace(" ", "  ") if " " in nama else nama + " "

    female = p["jenis_kelamin"] == "2"
    if rand() < 0.7:
        jenis_kelamin = "Perempuan" if female else "Laki-laki"
    else:
        jenis_kelamin = "PR" if female else "LK"

    slashed, spelled = _dinsos_dates()[p["tanggal_lahir"]]
    tanggal = spelled if rand() < 0.6 else slashed

    alamat = (
        _STREETS[int(rand() * len(_STREETS))]
        + _HOUSE_NUMBERS[int(rand() * len(_HOUSE_NUMBERS))]
        + _RT_RW[int(rand() * len(_RT_RW))]
    )
    return [
        nik,
        nama,
        jenis_kelamin,
        _AGAMA_NAMES[p["agama"]],
        tanggal,
        p["kode_wilayah"].replace(".", ""),
        alamat,
    ]
