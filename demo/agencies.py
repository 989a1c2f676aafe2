"""Deterministic synthetic agency systems of Kota Bogor: Disdukcapil and Dinsos registers of the same people (with
the deaths and moves SIAK recorded), Dinsos's social-assistance payments to some of them, Disdik's schools, Dinkes's
health facilities and the tuberculosis cases they notify, DPMPTSP's register of businesses holding an NIB, and the
posyandu counts the city's open-data portal publishes. demo/systems.py serves Dinkes's facility register, SIAK's
status check and the portal live."""

from __future__ import annotations

import bisect
import csv
import heapq
import io
import json
import os
import random
import secrets
import sqlite3
import zlib
from collections.abc import Iterator
from contextlib import closing
from datetime import date, datetime, timedelta
from functools import lru_cache
from itertools import accumulate, islice
from pathlib import Path

__all__ = [
    "people",
    "build_disdukcapil",
    "build_dinsos",
    "build_bansos",
    "build_disdik",
    "build_dinkes",
    "build_sitb",
    "build_oss",
    "build_posyandu",
    "ensure_api_key",
    "siak_event",
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
# SIAK's record of deaths and moves out of a kelurahan: about 4% of residents each, in the first quarter of 2025.
_EVENTS_START = date(2025, 1, 1)
_EVENT_DAYS = 90


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
    kelurahan = _kota_bogor_kelurahan()
    events = []

    def rows_and_events() -> Iterator[tuple]:
        for p in islice(stream, n):
            event = siak_event(p["nik"], kelurahan)
            if event is not None:
                events.append(event)
            yield _siak_row(p)

    rows = rows_and_events()

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
            # SIAK's own table of recorded events (jenis: MATI, PINDAH), which its status API answers from.
            conn.execute("CREATE TABLE peristiwa (nik TEXT PRIMARY KEY, jenis TEXT NOT NULL, tgl_peristiwa TEXT NOT "
                         "NULL, kode_kelurahan_tujuan TEXT)")
            conn.executemany("INSERT INTO peristiwa VALUES (?, ?, ?, ?)", events)
    return n + len(wrong)


def siak_event(nik: str, kelurahan: tuple[str, ...]) -> tuple[str, str, str, str | None] | None:
    """The death or move SIAK recorded for a resident, drawn from the NIK (so the same people die or move whatever
    the demo's size): (nik, MATI or PINDAH, ISO date, the destination kelurahan's code when the move stayed in Kota
    Bogor, else None), or None for most residents. `kelurahan`: Kota Bogor's kelurahan codes."""
    serial = zlib.crc32(b"peristiwa:" + nik.encode())
    kind = serial % 25
    if kind > 1:
        return None
    when = (_EVENTS_START + timedelta(days=(serial // 25) % _EVENT_DAYS)).isoformat()
    if kind == 0:
        return nik, "MATI", when, None
    within_city = (serial // 2250) % 2 == 0
    return nik, "PINDAH", when, kelurahan[(serial // 4500) % len(kelurahan)] if within_city else None


def _siak_row(p: dict) -> tuple[str, ...]:
    # Marital status and address come from the NIK, so the people stream draws nothing new for them.
    serial = zlib.crc32(p["nik"].encode())
    adult = (date(2025, 1, 1) - p["tanggal_lahir"]).days >= 17 * 365
    status = None if serial % 20 == 19 else ("1" if not adult else _STATUS_KAWIN[serial % len(_STATUS_KAWIN)])
    return (
        p["nik"],
        p["nama"],
        p["jenis_kelamin"],
        p["agama"],
        p["tanggal_lahir"].isoformat(),
        p["kode_wilayah"],
        status,
        _siak_alamat(p["nik"]),
        str(p["updated_at"]),
    )


def _siak_alamat(nik: str) -> str:
    """The address SIAK holds for a person: drawn from the NIK, so other agencies can hold the same one."""
    serial = zlib.crc32(nik.encode())
    return (_STREETS[serial % len(_STREETS)] + _HOUSE_NUMBERS[serial % len(_HOUSE_NUMBERS)]
            + _RT_RW[serial % len(_RT_RW)])


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
        "sitb": demo / "dinkes" / "sitb_kasus_tbc.jsonl",
        "oss": demo / "dpmptsp" / "oss_nib.xlsx",
        "dinkes_api_key": demo / "dinkes" / "api_key",
        "posyandu": demo / "satudata" / "posyandu_strata_kelurahan.csv",
    }
    build_disdukcapil(paths["disdukcapil"], people_count)
    build_dinsos(paths["dinsos"], dinsos_count)
    build_bansos(paths["bansos"], dinsos_count)
    build_disdik(paths["disdik"])
    build_dinkes(paths["dinkes"])
    build_sitb(paths["sitb"], people_count)
    build_oss(paths["oss"], people_count)
    ensure_api_key(paths["dinkes_api_key"])
    ensure_api_key(demo / "disdukcapil" / "api_key")  # SIAK's status API (demo/systems.py)
    build_posyandu(paths["posyandu"])
    return paths


def ensure_api_key(path: Path) -> str:
    """The API key of a live system (Dinkes's facility API, SIAK's status API: demo/systems.py): made at random the
    first time, readable by its owner only (0600), and kept when the demo is built again, so that the Airflow
    connection holding it stays valid."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        key = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        key = ""
    if key:
        path.chmod(0o600)
        return key
    key = secrets.token_urlsafe(32)
    path.unlink(missing_ok=True)
    # Created with its mode: the key is never readable by others, not even for a moment.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(key + "\n")
    return key


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


# Which kelurahan (by position in the code list) have a puskesmas or a hospital: the facility register and
# the TB cases those facilities notify both follow these rules.
def _has_puskesmas(i: int) -> bool:
    return i % 3 == 0


def _has_hospital(i: int) -> bool:
    return i % 6 == 1


def _is_specialist_hospital(i: int) -> bool:
    return i % 12 == 1


def _hospital_code(i: int) -> str:
    return f"3271{i:03d}"


def _hospital_name(i: int, kelurahan: str) -> str:
    return f"RS {'Ibu dan Anak' if _is_specialist_hospital(i) else 'Umum'} {kelurahan}"


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
        if _has_puskesmas(i):
            inpatient = rand() < 0.3
            records.append(facility(f"P{digits}", f"Puskesmas {nama}", "Puskesmas", kode,
                                    10 + int(rand() * 10) if inpatient else None))
        if rand() < 0.5:
            records.append(facility(f"K{digits}", f"Klinik Pratama {nama}", "Klinik Pratama", kode, None))
        if rand() < 0.45:
            records.append(facility(f"A{digits}", f"Apotek {_PHARMACY[int(rand() * len(_PHARMACY))]} {nama}",
                                    "Apotek", kode, None))
        if _has_hospital(i):
            specialist = _is_specialist_hospital(i)
            records.append(facility(_hospital_code(i), _hospital_name(i, nama),
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


SITB_EXPORTED = date(2025, 3, 31)
_TB_FIRST, _TB_LAST = date(2024, 1, 2), date(2025, 3, 28)
_TB_START_WINDOW = 8  # days between diagnosis and the first dose, at most
_TB_TREATMENT = timedelta(days=180)  # the six months of the standard regimen, after which an outcome is due
_TIPE_DIAGNOSIS = {True: "Terkonfirmasi Bakteriologis", False: "Terdiagnosis Klinis"}
_LOKASI_ANATOMI = {True: "Paru", False: "Ekstra Paru"}
# SITB's treatment-history categories, with their cumulative share among notified cases.
_RIWAYAT = [(0.90, "Baru"), (0.95, "Kambuh"), (0.97, "Diobati setelah putus berobat"),
            (0.98, "Diobati setelah gagal"), (0.99, "Lain-lain"),
            (1.00, "Riwayat pengobatan sebelumnya tidak diketahui")]
# Kabupaten Bogor, next to the city: patients living there are counted by the kabupaten, not by Kota Bogor.
_KABUPATEN_BOGOR_KELURAHAN = "3201292011"  # Ciomas Rahayu, Kecamatan Ciomas


def build_sitb(path: Path, people_count: int = 5000, seed: int = 2024) -> int:
    """Write Dinkes's export of tuberculosis cases from SITB as JSON Lines, one case per line with the patient under
    `pasien`: cases diagnosed from January 2024 to March 2025 by the puskesmas and hospitals of the facility register.

    Patients are 6% of the first `people_count` people of the demo population (a small sample: the rate is far
    above the city's), more often adults and men, as in TB notifications; then 5 wrong lines. Returns the number
    of lines written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rand = random.Random(f"sitb:{seed}").random
    puskesmas: dict[str, list[tuple[str, str]]] = {}
    hospitals: list[tuple[str, str]] = []
    for i, (kode, nama) in enumerate(_kota_bogor_names().items()):
        if _has_puskesmas(i):
            puskesmas.setdefault(kode[:8], []).append((f"P{_digits(kode)}", f"Puskesmas {nama}"))
        if _has_hospital(i):
            hospitals.append((_hospital_code(i), _hospital_name(i, nama)))
    count = people_count * 6 // 100
    patients = _weighted_sample(people(people_count, seed), count + 4, rand, _tb_weight)
    good_patients, wrong_patients = patients[:count], patients[count:]

    def case(p: dict, diagnosed: date) -> dict:
        child = _age(p["tanggal_lahir"], diagnosed) < 15
        if rand() < 0.25:
            facility = hospitals[int(rand() * len(hospitals))]
        else:
            nearby = puskesmas[p["kode_wilayah"][:8]]
            facility = nearby[int(rand() * len(nearby))]
        # Children are mostly diagnosed clinically: they rarely produce sputum.
        bacteriological = rand() < (0.2 if child else 0.65)
        pulmonary = rand() < 0.88
        r = rand()
        history = next(label for share, label in _RIWAYAT if r < share)
        started = None if rand() < 0.03 else diagnosed + timedelta(days=int(rand() * _TB_START_WINDOW))
        record = {
            "id_tb03": None,
            "pasien": {"nik": p["nik"], "nama": p["nama"].title() if rand() < 0.4 else p["nama"],
                       "jenis_kelamin": "P" if p["jenis_kelamin"] == "2" else "L",
                       "tgl_lahir": p["tanggal_lahir"].isoformat(), "alamat": _siak_alamat(p["nik"]),
                       "kode_kelurahan": _digits(p["kode_wilayah"])},
            "fasyankes": {"kode": facility[0], "nama": facility[1]},
            "tgl_diagnosis": diagnosed.isoformat(),
            "tipe_diagnosis": _TIPE_DIAGNOSIS[bacteriological],
            "lokasi_anatomi": _LOKASI_ANATOMI[pulmonary],
            "riwayat_pengobatan": history,
        }
        # SITB leaves out what is not known yet: the first dose, and the outcome until treatment ends.
        if started is not None:
            record["tgl_mulai_pengobatan"] = started.isoformat()
            if started + _TB_TREATMENT <= SITB_EXPORTED:
                record["hasil_akhir_pengobatan"] = _tb_outcome(rand(), bacteriological and pulmonary)
        return record

    cases = sorted(((_tb_diagnosis_date(p, rand), p["nik"], p) for p in good_patients), key=lambda c: c[:2])
    records = [case(p, diagnosed) for diagnosed, _, p in cases]
    # Four more cases, entered late in March 2025, each wrong in one field; then the first case again, registered
    # a second time under its number by the hospital it was referred to.
    wrong = [case(p, date(2025, 3, 3 + 4 * i)) for i, p in enumerate(wrong_patients)]
    serials: dict[str, int] = {}
    for record in [*records, *wrong]:
        year = record["tgl_diagnosis"][:4]
        serials[year] = serials.get(year, 0) + 1
        record["id_tb03"] = f"3271-{year}-{serials[year]:05d}"
    wrong[0]["pasien"]["nik"] = wrong[0]["pasien"]["nik"][:15]
    wrong[1]["tgl_diagnosis"] = "2025-02-30"
    wrong[2]["lokasi_anatomi"] = "Paru dan Ekstra Paru"
    wrong[3]["pasien"]["kode_kelurahan"] = _KABUPATEN_BOGOR_KELURAHAN
    again = json.loads(json.dumps(records[0]))
    again["fasyankes"] = dict(zip(("kode", "nama"), next(h for h in hospitals if h[0] != again["fasyankes"]["kode"])))
    again.pop("hasil_akhir_pengobatan", None)
    wrong.append(again)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for record in [*records, *wrong]:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    return len(records) + len(wrong)


def _age(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def _tb_weight(p: dict) -> float:
    """How likely a person is among the TB cases: adults more than children, men more than women."""
    if p["tanggal_lahir"] > _TB_LAST - timedelta(days=180):
        return 0.0  # not yet six months old at the last diagnosis date
    age = _age(p["tanggal_lahir"], _TB_FIRST)
    weight = 0.25 if age < 15 else 1.0 if age < 65 else 1.3
    return weight * (0.65 if p["jenis_kelamin"] == "2" else 1.0)


def _tb_diagnosis_date(p: dict, rand) -> date:
    first = max(_TB_FIRST, p["tanggal_lahir"] + timedelta(days=180)).toordinal()
    return date.fromordinal(first + int(rand() * (_TB_LAST.toordinal() - first + 1)))


def _tb_outcome(r: float, confirmed_pulmonary: bool) -> str:
    """A finished treatment's outcome as SITB writes it; only a bacteriologically confirmed pulmonary case can be
    declared cured (its last sputum test is negative)."""
    if r < 0.05:
        return "Meninggal"
    if r < 0.13:
        return "Putus Berobat (Lost to Follow Up)"
    if r < 0.145:
        return "Tidak Dievaluasi"
    if r < 0.16:
        return "Pindah"
    if r < 0.17 and confirmed_pulmonary:
        return "Gagal"
    return "Sembuh" if confirmed_pulmonary and r < 0.75 else "Pengobatan Lengkap"


def _weighted_sample(items, k: int, rand, weight) -> list:
    """k items drawn without replacement, each as likely as its weight, in their original order."""
    keyed = []
    for position, item in enumerate(items):
        w = weight(item)
        u = rand()  # drawn for every item, so one item's weight never shifts the draws of the others
        # Efraimidis-Spirakis: the k largest u ** (1 / w) are a weighted sample without replacement.
        keyed.append((u ** (1 / w) if w > 0 else -1.0, position, item))
    chosen = [c for c in heapq.nlargest(k, keyed, key=lambda c: c[:2]) if c[0] >= 0]
    if len(chosen) < k:
        raise ValueError(f"the demo population is too small to draw {k} people from")
    return [item for _, _, item in sorted(chosen, key=lambda c: c[1])]


OSS_HEADER = ["NIB", "Tanggal Terbit NIB", "Nama Usaha", "Jenis Pelaku Usaha", "Nama Pemilik/Penanggung Jawab",
              "KBLI", "Judul KBLI", "Skala Usaha", "Jumlah Tenaga Kerja", "Alamat Usaha", "Kelurahan",
              "Kode Wilayah"]
# Main activities of the city's micro and small businesses (KBLI 2020, Peraturan BPS 2/2020): code, title, how
# common, and how such businesses are named ({o} the owner's given name, {s} Bu or Pak, {t} the kelurahan).
_KBLI = [
    ("56102", "Rumah/Warung Makan", 14, ["Warung Nasi {s} {o}", "RM Sunda {t}", "Warung Makan {o}"]),
    ("56103", "Kedai Makanan", 6, ["Bakso {o}", "Kedai {o}", "Martabak {t}"]),
    ("56104", "Penyediaan Makanan Keliling/Tempat Tidak Tetap", 6, ["Soto Mie {o}", "Cilok {o}", "Gorengan {s} {o}"]),
    ("56303", "Rumah Minum/Kafe", 4, ["Kopi {t}", "Kedai Kopi {o}"]),
    ("56210", "Jasa Boga Untuk Suatu Event Tertentu (Event Catering)", 2, ["Catering {s} {o}", "Dapur {t}"]),
    ("47112", "Perdagangan Eceran Berbagai Macam Barang Yang Utamanya Makanan, Minuman Atau Tembakau Bukan Di "
              "Minimarket/Supermarket/Hypermarket (Tradisional)", 14,
     ["Toko {o}", "Warung {s} {o}", "Toko Sembako {t}"]),
    ("47711", "Perdagangan Eceran Pakaian", 4, ["Butik {o}", "Toko Pakaian {t}"]),
    ("47242", "Perdagangan Eceran Roti, Kue Kering, serta Kue Basah dan Sejenisnya", 3, ["Toko Kue {o}"]),
    ("47414", "Perdagangan Eceran Alat Telekomunikasi", 3, ["{o} Cell", "Counter {t} Cell"]),
    ("47753", "Perdagangan Eceran Ikan Hias", 2, ["Ikan Hias {t}", "{o} Aquarium"]),
    ("47762", "Perdagangan Eceran Tanaman Dan Bibit Tanaman", 2, ["Tanaman Hias {t}", "Nursery {o}"]),
    ("47911", "Perdagangan Eceran Melalui Media Untuk Komoditi Makanan, Minuman, Tembakau, Kimia, Farmasi, Kosmetik "
              "Dan Alat Laboratorium", 5, ["{o} Frozen Food", "Camilan {o}"]),
    ("47912", "Perdagangan Eceran Melalui Media Untuk Komoditi Tekstil, Pakaian, Alas Kaki Dan Barang Keperluan "
              "Pribadi", 4, ["{o} Hijab Store", "{o} Fashion"]),
    ("10710", "Industri Produk Roti Dan Kue", 5, ["Roti {o}", "Bolu {t}", "Lapis Talas {o}"]),
    ("10794", "Industri Kerupuk, Keripik, Peyek Dan Sejenisnya", 3, ["Keripik {o}", "Kerupuk {t}"]),
    ("14111", "Industri Pakaian Jadi (Konveksi) Dari Tekstil", 3, ["Konveksi {o}", "{t} Garment"]),
    ("14120", "Penjahitan Dan Pembuatan Pakaian Sesuai Pesanan", 2, ["Penjahit {o}", "Taylor {o}"]),
    ("96111", "Aktivitas Pangkas Rambut", 3, ["Pangkas Rambut {o}", "{o} Barbershop"]),
    ("96112", "Aktivitas Salon Kecantikan", 3, ["Salon {o}", "{o} Beauty"]),
    ("96200", "Aktivitas Penatu", 4, ["Laundry {o}", "{t} Laundry"]),
    ("01301", "Pertanian Tanaman Hias", 1, ["Kebun Anggrek {o}", "Tanaman Hias {o}"]),
    ("01462", "Budidaya Ayam Ras Petelur", 1, ["Peternakan Ayam {o}", "Telur {t}"]),
    ("62019", "Aktivitas Pemrograman Komputer Lainnya", 1, ["{o} Digital", "{t} Teknologi"]),
]
_KBLI_CUM_WEIGHTS = list(accumulate(k[2] for k in _KBLI))
_KBLI_BY_CODE = {k[0]: k for k in _KBLI}
_BADAN_USAHA_SUFFIX = ["Mandiri", "Berkah Jaya", "Sejahtera", "Abadi", "Makmur Sentosa"]
_OSS_RBA = date(2021, 8, 9)  # OSS berbasis risiko (PP 5/2021) replaced OSS 1.1 and its NIB numbering
_NIB_FIRST, _NIB_LAST = date(2019, 1, 2).toordinal(), date(2025, 3, 31).toordinal()


def build_oss(path: Path, people_count: int = 5000, seed: int = 2024) -> int:
    """Write DPMPTSP's export of NIB holders from OSS as .xlsx: the header on the first row, one row per business
    and KBLI; NIBs partly typed as numbers and kelurahan codes all as numbers, as Excel keeps them.

    Businesses are 7% of the first `people_count` people (their owners, adults of the demo population): mostly
    micro, some small, a few medium; then 5 wrong rows. Returns the number of rows written.
    """
    from openpyxl import Workbook

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"oss:{seed}")
    rand = rng.random
    names = _kota_bogor_names()
    codes = list(names)
    count = people_count * 7 // 100
    adults = [p for p in people(people_count, seed) if _age(p["tanggal_lahir"], date(2025, 1, 1)) >= 17]
    if len(adults) < count + 4:
        raise ValueError(f"the demo population is too small to draw {count + 4} business owners from")
    owners = rng.sample(adults, count + 4)

    def business(i: int, owner: dict, kbli: tuple | None = None) -> list:
        kbli = kbli or _KBLI[bisect.bisect_right(_KBLI_CUM_WEIGHTS, int(rand() * _KBLI_CUM_WEIGHTS[-1]))]
        r = rand()
        skala, workers = ("Usaha Mikro", 1 + int(rand() * 4)) if r < 0.9 else \
            ("Usaha Kecil", 5 + int(rand() * 15)) if r < 0.98 else ("Usaha Menengah", 20 + int(rand() * 80))
        r = rand()
        if skala == "Usaha Mikro":
            jenis = "Orang Perseorangan" if r < 0.85 else "PT Perorangan" if r < 0.95 else "CV"
        else:
            jenis = "CV" if r < 0.4 else "PT" if r < 0.7 else "Orang Perseorangan"
        kode = owner["kode_wilayah"] if rand() < 0.7 else codes[int(rand() * len(codes))]
        # A badan usaha sometimes has no penanggung jawab on file.
        named = jenis == "Orang Perseorangan" or rand() >= 0.1
        given = next(w for w in owner["nama"].split() if w not in _MALE_PREFIX).capitalize()
        pattern = kbli[3][int(rand() * len(kbli[3]))]
        name = pattern.format(o=given, s="Bu" if owner["jenis_kelamin"] == "2" else "Pak", t=names[kode])
        if jenis in ("CV", "PT", "PT Perorangan"):
            name = f"{'CV' if jenis == 'CV' else 'PT'} {name} {_BADAN_USAHA_SUFFIX[int(rand() * 5)]}"
        issued = date.fromordinal(_NIB_FIRST + int(rand() * (_NIB_LAST - _NIB_FIRST + 1)))
        # OSS 1.1 numbers start 9120; OSS RBA numbers start 12. The step keeps every NIB distinct.
        serial = 7919 * i + int(rand() * 7000)
        nib = f"9120{10_000_000 + serial:09d}" if issued < _OSS_RBA else f"12{2_000_000_000 + serial:011d}"
        alamat = (_STREETS[int(rand() * len(_STREETS))] + _HOUSE_NUMBERS[int(rand() * len(_HOUSE_NUMBERS))]
                  + _RT_RW[int(rand() * len(_RT_RW))])
        return [int(nib) if rand() < 0.2 else nib, issued, name, jenis, owner["nama"] if named else None,
                kbli[0], kbli[1], skala, workers, alamat, names[kode], int(_digits(kode))]

    rows = sorted((business(i, owner) for i, owner in enumerate(owners[:count])), key=lambda r: (r[1], str(r[0])))
    # Four more businesses, each wrong in one field; then the first business's second KBLI, which OSS lists as
    # another row of the same NIB.
    wrong = [business(count + i, owner, _KBLI_BY_CODE["01301"] if i == 1 else None)
             for i, owner in enumerate(owners[count:])]
    wrong[0][0] = str(wrong[0][0])[:12]  # a digit lost while typing
    wrong[1][5] = 1301  # typed as a number: the leading zero of 01301 is gone
    wrong[2][7], wrong[2][8] = "Usaha Besar", 120  # not a UMKM: the register lists every NIB
    wrong[3][8] = f"{wrong[3][8]} orang"
    second = next(k for k in _KBLI if k[0] != rows[0][5])
    wrong.append([*rows[0][:5], second[0], second[1], *rows[0][7:]])

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Data NIB")
    sheet.append(OSS_HEADER)
    for row in [*rows, *wrong]:
        sheet.append(row)
    workbook.save(path)
    return len(rows) + len(wrong)


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


POSYANDU_HEADER = ["tahun", "kemendagri_kode_kecamatan", "nama_kecamatan", "kemendagri_kode_desa_kelurahan",
                   "nama_desa_kelurahan", "strata_posyandu", "jumlah_posyandu", "satuan"]
POSYANDU_YEARS = (2023, 2024)
# Kemenkes's four strata of a posyandu's development, from the least to the most developed.
_STRATA = ("PRATAMA", "MADYA", "PURNAMA", "MANDIRI")


@lru_cache(maxsize=4)
def _kota_bogor_kecamatan(path: Path = KODE_WILAYAH_CSV) -> dict[str, str]:
    """Dotted kecamatan code of Kota Bogor -> its name, from a kode_wilayah CSV."""
    with open(path, encoding="utf-8", newline="") as f:
        return {row["kode"]: row["nama"] for row in csv.DictReader(f)
                if row["tingkat"] == "kecamatan" and row["kode"].startswith("32.71.")}


def build_posyandu(path: Path, seed: int = 2024) -> int:
    """Write the table the city's open-data portal publishes for Dinkes: posyandu per kelurahan, strata and year,
    as UTF-8 CSV in the shape of Jawa Barat's Satu Data tables (one count per row, Kemendagri codes dotted, the
    unit in `satuan`): every kelurahan of Kota Bogor, 2023 and 2024, then 4 wrong rows. Returns the rows written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rand = random.Random(f"posyandu:{seed}").random
    kecamatan = _kota_bogor_kecamatan()
    rows = []
    for kode, nama in _kota_bogor_names().items():
        total = 8 + int(rand() * 18)  # Kota Bogor has about a thousand posyandu in 68 kelurahan
        for year in POSYANDU_YEARS:
            if year > POSYANDU_YEARS[0] and rand() < 0.2:
                total += 1
            # Each year some posyandu move up a stratum: the shares of purnama and mandiri grow.
            lift = 0.1 * (year - POSYANDU_YEARS[0])
            mandiri = int(total * (0.15 + lift + 0.2 * rand()))
            purnama = int(total * (0.35 + 0.2 * rand()))
            madya = int((total - mandiri - purnama) * (0.6 + 0.3 * rand()))
            counts = (total - mandiri - purnama - madya, madya, purnama, mandiri)
            for strata, count in zip(_STRATA, counts):
                rows.append([str(year), kode[:8], kecamatan[kode[:8]], kode, nama, strata, str(count), "UNIT"])
    # Four more rows, each wrong in one field; the last is the first row uploaded a second time.
    wrong = [["2024", "32.01.29", "Ciomas", "32.01.29.1003", "Padasuka", "MANDIRI", "4", "UNIT"],  # Kabupaten Bogor
             [*rows[-1][:5], "MADYA", "-", "UNIT"],  # a dash for a count not reported
             [*rows[-1][:5], "BELUM TERSTRATA", "2", "UNIT"],
             list(rows[0])]
    wrong[1][0] = wrong[2][0] = "2025"  # the first reports of a year still being counted
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\r\n")
        writer.writerow(POSYANDU_HEADER)
        writer.writerows(rows)
        writer.writerows(wrong)
    return len(rows) + len(wrong)
