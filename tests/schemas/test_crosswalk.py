"""Crosswalks between two editions of a hierarchical code list, on small hand-made editions and the real one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hub.errors import ConfigError
from schemas.codelists import CODELISTS_DIR, crosswalk_rows, crosswalks
from schemas.crosswalk import build_crosswalk, count_changes, normalize_name

HUB = str(Path(sys.executable).parent / "hub")
LEVELS = ("provinsi", "kabupaten_kota", "kecamatan", "desa_kelurahan")


def edition(*units: str) -> list[dict]:
    """Rows from "kode nama" lines; the level follows from the number of dots."""
    rows = []
    for unit in units:
        kode, nama = unit.split(" ", 1)
        rows.append({"kode": kode, "nama": nama, "tingkat": LEVELS[kode.count(".")]})
    return rows


def changes(old: list[dict], new: list[dict]) -> dict[str, tuple[str, str]]:
    """Each code (the old one, or the new one of a `baru` row) -> (its other code, the change)."""
    return {a or b: (b if a else a, change) for a, b, change in build_crosswalk(old, new)}


def test_names_are_compared_ignoring_case_spaces_a_trailing_dot_and_kab():
    assert normalize_name("KAB. MERAUKE") == normalize_name("Kabupaten  Merauke.") == "KABUPATEN MERAUKE"
    assert normalize_name("KOTA BOGOR") == normalize_name(" Kota Bogor ")
    assert normalize_name("KAB TIMOR TENGAH SELATAN") != normalize_name("Kabupaten Timor Tengah Selatan")
    assert normalize_name("Ranggamekar") != normalize_name("Rangga Mekar")


def test_each_change_kind():
    old = edition("10 PROV A",
                  "10.01 KAB. SATU",
                  "10.01.01 Alpha",
                  "10.01.01.2001 Desa Lama",  # same parent, new code
                  "10.01.01.2002 Hilang",  # gone without a successor
                  "10.02 KAB. DUA",  # moved to the new province 20
                  "10.02.01 Tengah",  # follows its regency
                  "10.02.01.2001 Tetap Di Sini",
                  "10.02.01.2002 Pindah")  # moved to a new kecamatan
    new = edition("10 Prov A",
                  "10.01 Kabupaten Satu",
                  "10.01.01 Alfa",
                  "10.01.01.2005 Desa Lama",
                  "10.01.01.2006 Baru Sekali",
                  "20 Prov B",
                  "20.01 Kabupaten Dua",
                  "20.01.01 Tengah",
                  "20.01.01.2001 Tetap di sini",
                  "20.01.02 Pemekaran",
                  "20.01.02.2001 Pindah")
    assert changes(old, new) == {
        "10": ("10", "tetap"),
        "10.01": ("10.01", "tetap"),
        "10.01.01": ("10.01.01", "ganti_nama"),
        "10.01.01.2001": ("10.01.01.2005", "pindah_kode"),
        "10.01.01.2002": ("", "dihapus"),
        "10.02": ("20.01", "pindah_induk"),
        "10.02.01": ("20.01.01", "pindah_kode"),
        "10.02.01.2001": ("20.01.01.2001", "pindah_kode"),
        "10.02.01.2002": ("20.01.02.2001", "pindah_induk"),
        "10.01.01.2006": ("", "baru"),
        "20": ("", "baru"),
        "20.01.02": ("", "baru"),
    }


def test_old_codes_come_first_in_order_then_the_new_ones():
    rows = build_crosswalk(edition("11 B", "10 A", "12 C"), edition("13 D", "10 A", "11 B"))
    assert rows == [("10", "10", "tetap"), ("11", "11", "tetap"), ("12", "", "dihapus"), ("", "13", "baru")]
    assert count_changes(rows) == {"tetap": 2, "ganti_nama": 0, "pindah_kode": 0, "pindah_induk": 0,
                                   "dihapus": 1, "baru": 1}


def test_a_tie_is_left_dihapus():
    old = edition("10 A", "10.01 KAB. X",
                  "10.01.01 Kembar",  # two new units of that name under the same parent
                  "10.01.02 Sama", "10.01.03 Sama",  # two old units want the one new unit
                  "10.02 KAB. GANDA",  # each new province holds a regency of that name
                  "10.03 KAB. Y",
                  "10.03.01 Tengah",
                  "10.03.01.2001 Dua Kali")  # each new kecamatan holds a village of that name
    new = edition("10 A", "10.01 Kabupaten X", "10.01.11 Kembar", "10.01.12 Kembar", "10.01.13 Sama",
                  "20 B", "20.01 Kabupaten Ganda", "20.02 Kabupaten Y", "20.02.01 Tengah",
                  "20.02.02 Baru Satu", "20.02.02.2001 Dua Kali", "20.02.03 Baru Dua", "20.02.03.2001 Dua Kali",
                  "30 C", "30.01 Kabupaten Ganda")
    found = changes(old, new)
    for code in ("10.01.01", "10.01.02", "10.01.03", "10.02", "10.03.01.2001"):
        assert found[code] == ("", "dihapus"), code
    assert found["10.03"] == ("20.02", "pindah_induk") and found["10.03.01"] == ("20.02.01", "pindah_kode")
    assert {code for code, (_, change) in found.items() if change == "baru"} == {
        "10.01.11", "10.01.12", "10.01.13", "20", "20.01", "30", "30.01",
        "20.02.02", "20.02.02.2001", "20.02.03", "20.02.03.2001"}


def test_no_new_code_is_taken_twice():
    rows = build_crosswalk(edition("10 A", "10.01 X", "11 B", "11.01 X"), edition("10 A", "11 B", "12 C", "12.01 X"))
    assert [r for r in rows if r[0] in {"10.01", "11.01"}] == [("10.01", "", "dihapus"), ("11.01", "", "dihapus")]


def test_the_cli_rebuilds_the_committed_kode_wilayah_crosswalk():
    done = subprocess.run([HUB, "codelists", "crosswalk", "kode_wilayah", "2022", "2025", "--output", "-"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout == (CODELISTS_DIR / "kode_wilayah_2022_2025.csv").read_text(encoding="utf-8")
    counts = dict(line.split() for line in done.stderr.splitlines())
    assert set(counts) == {"tetap", "ganti_nama", "pindah_kode", "pindah_induk", "dihapus", "baru"}
    assert sum(map(int, counts.values())) == done.stdout.count("\n") - 1


def test_the_cli_names_a_crosswalk_that_is_not_registered():
    done = subprocess.run([HUB, "codelists", "crosswalk", "agama", "1", "1"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and "no crosswalk 1->1" in done.stderr


def test_a_registered_crosswalk_is_read_by_its_columns():
    assert crosswalks("kode_wilayah")["2022->2025"]["columns"] == ["kode_2022", "kode_2025", "perubahan"]
    rows = crosswalk_rows("kode_wilayah", "2022->2025")
    assert rows[0] == {"kode_2022": "11", "kode_2025": "11", "perubahan": "tetap"}
    assert {"kode_2022": "", "kode_2025": "96.04.29.2003", "perubahan": "baru"} in rows
    assert crosswalk_rows("kode_wilayah", "2022->2025") is rows  # read once, while the file stays as it is
    with pytest.raises(ConfigError, match="registers no crosswalk 2025->2022"):
        crosswalk_rows("kode_wilayah", "2025->2022")
    assert crosswalks("agama") == {}
