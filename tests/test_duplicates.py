"""Repeated keys through the real pipeline: identical records are published once and counted, records that
share a key but differ are quarantined together, within one batch and across batches."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from sqlalchemy import select

from catalog.db import QuarantinedRow, Run, session
from catalog.query import query
from connectors.registry import load_source
from hub.pipeline import run_source, stage_into
from hub.settings import Settings

HEADER = "NIK;Nama Lengkap;Jenis Kelamin;Agama;Tanggal Lahir;Kode Kelurahan"
MAPPING = {
    "nik": {"from": "NIK", "normalize": "nik"},
    "nama": {"from": "Nama Lengkap", "normalize": "name"},
    "jenis_kelamin": {"from": "Jenis Kelamin", "crosswalk": {"L": "1", "P": "2"}},
    "agama": {"from": "Agama", "crosswalk": {"Islam": "1", "Kristen": "2"}},
    "tanggal_lahir": {"from": "Tanggal Lahir", "date_formats": ["%d %B %Y", "%d/%m/%Y"]},
    "kode_wilayah": {"from": "Kode Kelurahan", "normalize": "kode_wilayah"},
}
SOURCE = "kelurahan_x"


def nik(n: int) -> str:
    return f"{3271010101900000 + n}"


def line(n: int, name: str = "Siti Aminah", born: str = "16/12/2014", sex: str = "P") -> str:
    return f"{nik(n)};{name};{sex};Islam;{born};32.71.01.1001"


def home_with(tmp_path: Path, lines: list[str], batch_rows: int | None = None) -> Path:
    """A hub home whose registry holds one file source reading `lines` under the header, as a kelurahan's
    Windows-1252 export with semicolons."""
    home = tmp_path / "home"
    (home / "exports").mkdir(parents=True)
    (home / "registry").mkdir()
    (home / "exports" / "warga.csv").write_bytes("\r\n".join([HEADER, *lines, ""]).encode("cp1252"))
    options = {"path": "${HUB_HOME}/exports/warga.csv", "delimiter": ";", "encoding": "cp1252"}
    if batch_rows:
        options["batch_rows"] = batch_rows
    (home / "registry" / f"{SOURCE}.yaml").write_text(yaml.safe_dump({
        "id": SOURCE, "title": "Warga kelurahan X", "agency": {"code": "kelurahan", "name": "Kelurahan X"},
        "standard": "penduduk@1.0.0", "kind": "file", "options": options, "mapping": MAPPING,
    }), encoding="utf-8")
    return home


def stage_lines(tmp_path: Path, lines: list[str], batch_rows: int | None = None) -> dict:
    """Stage the lines as `hub sources test` does; the summary, what would be published and the quarantine."""
    home = home_with(tmp_path, lines, batch_rows)
    folder = tmp_path / "staged"
    folder.mkdir()
    summary = stage_into(folder, load_source(home / "registry" / f"{SOURCE}.yaml", home, data_dirs=()), "test")
    assert summary["rows_in"] == summary["rows_valid"] + summary["rows_quarantined"] + summary["rows_repeated"]
    published = pq.read_table(folder / "data.parquet").to_pylist()
    numbers = pq.read_table(folder / "rows.parquet")["_row"].to_pylist()
    assert len(numbers) == len(published) == summary["rows_valid"]
    quarantined = {q["row"]: {**q, "record": json.loads(q["record"]), "details": json.loads(q["details"] or "null")}
                   for q in pq.read_table(folder / "quarantine.parquet").to_pylist()}
    assert sorted(p.name for p in folder.iterdir()) == ["data.parquet", "quarantine.parquet", "rows.parquet",
                                                        "stage.json", "validation_result.json"]
    return {"summary": summary, "published": published, "numbers": numbers, "quarantined": quarantined,
            "duplicates": summary["validation"]["duplicates"], "check": summary["validation"]["checks"].get(
                "nik:duplicate_key")}


# Batches of many rows, of two (the copies of a record fall in different batches) and of one.
BATCHES = pytest.mark.parametrize("batch_rows", [None, 2, 1])


@BATCHES
def test_identical_records_are_published_once_and_counted(tmp_path, batch_rows):
    staged = stage_lines(tmp_path, [
        line(1),
        line(2, "Agus Saputra", sex="L"),
        line(1, born="16 Desember 2014"),  # the same date, written another way
        line(3, "Dewi Lestari"),
        line(1, "  SITI   aminah "),  # the same name once normalized
        line(2, "Agus Saputra", sex="L"),
    ], batch_rows)
    assert staged["numbers"] == [1, 2, 4]  # the first of each record
    assert [r["nik"] for r in staged["published"]] == [nik(1), nik(2), nik(3)]
    assert staged["quarantined"] == {}
    summary = staged["summary"]
    assert (summary["rows_in"], summary["rows_valid"], summary["rows_quarantined"], summary["rows_repeated"]) == \
        (6, 3, 0, 3)
    assert staged["duplicates"] == {"identical_repeats": 3, "rows": [3, 5, 6], "more": 0, "conflicting": 0}
    assert summary["validation"]["success"] is True and summary["validation"]["reasons"] == {}
    assert staged["check"] == {"expectation": "expect_column_values_to_be_unique", "element_count": 6,
                               "unexpected_count": 0}


@BATCHES
def test_records_sharing_a_key_with_different_content_are_quarantined_naming_each_other(tmp_path, batch_rows):
    staged = stage_lines(tmp_path, [
        line(1),
        line(2, "Agus Saputra", sex="L"),
        line(1, "Siti Aminah Lubis"),  # another name under the same NIK
        line(3, "Dewi Lestari"),
        line(1, born="17/12/2014"),  # another birth date
    ], batch_rows)
    assert staged["numbers"] == [2, 4]
    quarantined = staged["quarantined"]
    assert {row: q["reasons"] for row, q in quarantined.items()} == {
        1: ["nik:duplicate_key"], 3: ["nik:duplicate_key"], 5: ["nik:duplicate_key"]}
    assert {row: q["details"] for row, q in quarantined.items()} == {
        1: {"nik:duplicate_key": {"rows": [3, 5], "more": 0}},
        3: {"nik:duplicate_key": {"rows": [1, 5], "more": 0}},
        5: {"nik:duplicate_key": {"rows": [1, 3], "more": 0}},
    }
    # Each kept as it was received, in the source's own columns.
    assert quarantined[5]["record"] == {"NIK": nik(1), "Nama Lengkap": "Siti Aminah", "Jenis Kelamin": "P",
                                        "Agama": "Islam", "Tanggal Lahir": "17/12/2014",
                                        "Kode Kelurahan": "32.71.01.1001"}
    assert quarantined[3]["record"]["Nama Lengkap"] == "Siti Aminah Lubis"
    summary = staged["summary"]
    assert (summary["rows_in"], summary["rows_valid"], summary["rows_quarantined"], summary["rows_repeated"]) == \
        (5, 2, 3, 0)
    assert staged["duplicates"] == {"identical_repeats": 0, "rows": [], "more": 0, "conflicting": 3}
    assert summary["validation"]["reasons"] == {"nik:duplicate_key": 3}
    assert staged["check"]["unexpected_count"] == 3 and staged["check"]["element_count"] == 5


@BATCHES
def test_identical_copies_within_a_conflict_are_quarantined_too(tmp_path, batch_rows):
    staged = stage_lines(tmp_path, [
        line(1),
        line(1),  # the same record again...
        line(1, "Siti Rahma"),  # ...but this one differs: which is right, nobody can tell from the data
        line(2, "Agus Saputra", sex="L"),
        line(2, "Agus Saputra", sex="L"),  # a plain repeat
    ], batch_rows)
    assert staged["numbers"] == [4]
    assert {row: q["details"] for row, q in staged["quarantined"].items()} == {
        1: {"nik:duplicate_key": {"rows": [2, 3], "more": 0}},
        2: {"nik:duplicate_key": {"rows": [1, 3], "more": 0}},
        3: {"nik:duplicate_key": {"rows": [1, 2], "more": 0}},
    }
    assert staged["duplicates"] == {"identical_repeats": 1, "rows": [5], "more": 0, "conflicting": 3}
    assert staged["summary"]["rows_repeated"] == 1 and staged["summary"]["rows_quarantined"] == 3
    assert staged["check"]["unexpected_count"] == 3


@BATCHES
def test_a_row_failing_another_rule_is_no_duplicate(tmp_path, batch_rows):
    staged = stage_lines(tmp_path, [
        line(1),
        line(1, sex="X"),  # quarantined for its sex code, not as a copy of row 1
        line(1, sex="X"),  # and so is its copy
        line(2, born="31/02/2014"),
        line(2),  # published: the other record of this NIK is quarantined already
    ], batch_rows)
    assert staged["numbers"] == [1, 5]
    assert {row: q["reasons"] for row, q in staged["quarantined"].items()} == {
        2: ["jenis_kelamin:unmapped_code"], 3: ["jenis_kelamin:unmapped_code"],
        4: ["tanggal_lahir:unparseable_date"]}
    assert all(q["details"] is None for q in staged["quarantined"].values())
    assert staged["duplicates"] == {"identical_repeats": 0, "rows": [], "more": 0, "conflicting": 0}
    assert staged["check"]["unexpected_count"] == 0


@BATCHES
def test_a_run_where_every_row_repeats_one_record(tmp_path, batch_rows):
    staged = stage_lines(tmp_path, [line(1)] * 7, batch_rows)
    assert staged["numbers"] == [1] and staged["quarantined"] == {}
    assert staged["duplicates"] == {"identical_repeats": 6, "rows": [2, 3, 4, 5, 6, 7], "more": 0,
                                    "conflicting": 0}


@BATCHES
def test_a_run_where_every_row_shares_one_key(tmp_path, batch_rows):
    staged = stage_lines(tmp_path, [line(1, f"Nama {i}") for i in range(1, 5)], batch_rows)
    assert staged["numbers"] == [] and staged["published"] == []
    assert {row: q["details"]["nik:duplicate_key"]["rows"] for row, q in staged["quarantined"].items()} == {
        1: [2, 3, 4], 2: [1, 3, 4], 3: [1, 2, 4], 4: [1, 2, 3]}
    assert staged["summary"]["validation"]["success"] is False


def _niks_with_one_duckdb_hash() -> tuple[str, str]:
    """Two NIKs that DuckDB's hash() gives one value: made for its hash tables, it gives NIKs (digits in fixed
    places) one value far more often than chance would."""
    import duckdb

    ((first, second),) = duckdb.sql("""
        SELECT min(nik), max(nik) FROM (
            SELECT '327106' || lpad((day + plus)::VARCHAR, 2, '0') || lpad(month::VARCHAR, 2, '0') || '00'
                   || lpad(serial::VARCHAR, 4, '0') AS nik
            FROM range(1, 29) d(day), (VALUES (0), (40)) p(plus), range(1, 13) m(month), range(1, 10) s(serial))
        GROUP BY hash(nik) HAVING count(*) = 2 ORDER BY 1 LIMIT 1""").fetchall()
    return first, second


@BATCHES
def test_different_keys_with_one_hash_are_no_duplicates(tmp_path, batch_rows):
    first, second = _niks_with_one_duckdb_hash()
    lines = [f"{n};Siti Aminah;P;Islam;16/12/2014;32.71.01.1001" for n in (first, second, first)]
    staged = stage_lines(tmp_path, [*lines, line(1), line(1, "Lain")], batch_rows)
    assert staged["numbers"] == [1, 2]
    assert [p["nik"] for p in staged["published"]] == [first, second]
    assert staged["duplicates"] == {"identical_repeats": 1, "rows": [3], "more": 0, "conflicting": 2}
    assert sorted(staged["quarantined"]) == [4, 5]


def test_keys_that_duckdbs_hash_confuses_are_published_apart(tmp_path):
    first, second = _niks_with_one_duckdb_hash()
    staged = stage_lines(tmp_path, [f"{n};Siti Aminah;P;Islam;16/12/2014;32.71.01.1001" for n in (first, second)])
    assert [p["nik"] for p in staged["published"]] == [first, second] and staged["quarantined"] == {}
    assert staged["duplicates"] == {"identical_repeats": 0, "rows": [], "more": 0, "conflicting": 0}


def test_lists_of_rows_are_capped_and_the_counts_whole(tmp_path):
    # 1,205 copies of one record, then 30 different records under another NIK; batches of 500.
    lines = [line(1)] * 1205 + [line(2, f"Nama {i}") for i in range(30)]
    staged = stage_lines(tmp_path, lines, 500)
    assert staged["numbers"] == [1]
    duplicates = staged["duplicates"]
    assert duplicates["identical_repeats"] == 1204 and duplicates["rows"] == list(range(2, 1002))
    assert duplicates["more"] == 204 and duplicates["conflicting"] == 30
    details = {row: q["details"]["nik:duplicate_key"] for row, q in staged["quarantined"].items()}
    assert sorted(details) == list(range(1206, 1236))
    assert details[1206] == {"rows": list(range(1207, 1227)), "more": 9}
    assert details[1210] == {"rows": [*range(1206, 1210), *range(1211, 1227)], "more": 9}
    assert details[1235] == {"rows": list(range(1206, 1226)), "more": 9}
    assert staged["summary"]["rows_in"] == 1235


def test_many_repeated_keys_across_many_batches(tmp_path):
    # 3,000 people, each twice: the second copy is identical for even NIKs and differs for odd ones.
    people = range(1, 3001)
    lines = [line(n) for n in people] + [line(n, "Lain" if n % 2 else "Siti Aminah") for n in people]
    staged = stage_lines(tmp_path, lines, 700)
    assert staged["numbers"] == [n for n in people if n % 2 == 0]
    duplicates = staged["duplicates"]
    assert (duplicates["identical_repeats"], duplicates["conflicting"]) == (1500, 3000)
    assert duplicates["rows"] == [3000 + n for n in people if n % 2 == 0][:1000]
    quarantined = staged["quarantined"]
    assert sorted(quarantined) == sorted([n for n in people if n % 2] + [3000 + n for n in people if n % 2])
    assert quarantined[7]["details"] == {"nik:duplicate_key": {"rows": [3007], "more": 0}}
    assert quarantined[3007]["details"] == {"nik:duplicate_key": {"rows": [7], "more": 0}}
    assert quarantined[3007]["record"]["Nama Lengkap"] == "Lain"


def test_a_published_run_records_its_repeats_and_the_conflicts_details(tmp_path):
    home = home_with(tmp_path, [line(1), line(2, "Agus Saputra", sex="L"), line(1), line(2, "Agus Saputri", sex="L"),
                                line(3, "Dewi Lestari"), line(1)], batch_rows=2)
    settings = Settings(home=home, catalog_url=f"sqlite:///{tmp_path / 'catalog.db'}", registry=home / "registry")
    result = run_source(settings, SOURCE)
    assert (result.rows_in, result.rows_published, result.rows_quarantined, result.rows_repeated) == (6, 2, 2, 2)
    assert query(settings, f"SELECT nik FROM {SOURCE} ORDER BY nik")["nik"].to_pylist() == [nik(1), nik(3)]
    with session(settings.catalog_url) as s:
        run = s.scalars(select(Run).where(Run.dataset_id == SOURCE)).one()
        rows = {r.row_number: (r.reasons, r.details) for r in s.scalars(select(QuarantinedRow))}
    assert run.validation["duplicates"] == {"identical_repeats": 2, "rows": [3, 6], "more": 0, "conflicting": 2}
    assert run.validation["checks"]["nik:duplicate_key"]["unexpected_count"] == 2
    assert rows == {2: (["nik:duplicate_key"], {"nik:duplicate_key": {"rows": [4], "more": 0}}),
                    4: (["nik:duplicate_key"], {"nik:duplicate_key": {"rows": [2], "more": 0}})}
    # The dataset's quality counts the repeats with their rows; the score is over the 4 distinct records sent.
    from catalog.db import Dataset
    from catalog.metadata import describe

    with session(settings.catalog_url) as s:
        quality = describe(s, s.get(Dataset, SOURCE))["quality"]
    assert (quality["rows_repeated"], quality["repeated_rows"]) == (2, [3, 6])
    assert quality["score"] == pytest.approx(2 / 4)
    # Read again, the same export is the same version.
    again = run_source(settings, SOURCE)
    assert again.status == "unchanged" and again.rows_repeated == 2
