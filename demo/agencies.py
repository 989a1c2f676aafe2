"""Deterministic synthetic Disdukcapil and Dinsos systems holding the same people of Kota Bogor."""

from __future__ import annotations

import bisect
import csv
import io
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
    with open(path, encoding="utf-8", newline="") as f:
        codes = tuple(
            row["kode"]
            for row in csv.DictReader(f)
            if row["tingkat"] == "desa_kelurahan" and row["kode"].startswith("32.71.")
        )
    if not codes:
        raise ValueError(f"no Kota Bogor kelurahan in {path}")
    return codes


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
    """Build both demo agency systems under home/demo and return their paths."""
    demo = Path(home) / "demo"
    paths = {
        "disdukcapil": demo / "disdukcapil" / "siak.db",
        "dinsos": demo / "dinsos" / "dtks_penduduk.csv",
    }
    build_disdukcapil(paths["disdukcapil"], people_count)
    build_dinsos(paths["dinsos"], dinsos_count)
    return paths


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
