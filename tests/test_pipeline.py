"""The pipeline end to end without Airflow, on a SQLite and a PostgreSQL catalog."""

from __future__ import annotations

import dataclasses
import json
import sqlite3

import pytest
import yaml
from sqlalchemy import func, select

from catalog.db import Dataset, DatasetVersion, QuarantinedRow, Run, SourceState, session
from catalog.query import query
from hub.errors import HubError
from hub.pipeline import integrate, publish, run_source, stage


def _count(settings, sql: str) -> int:
    return query(settings, sql).column(0)[0].as_py()


def test_every_row_is_published_or_quarantined(demo_settings):
    for source_id in ("disdukcapil_siak", "dinsos_dtks"):
        result = run_source(demo_settings, source_id)
        assert result.rows_in == result.rows_published + result.rows_quarantined
        assert result.rows_published > 0 and result.snapshot_id is not None
        assert _count(demo_settings, f"SELECT count(*) FROM {result.dataset}") == result.rows_published
        with session(demo_settings.catalog_url) as s:
            quarantined = s.scalar(select(func.count()).select_from(QuarantinedRow)
                                   .where(QuarantinedRow.dataset_id == source_id))
        assert quarantined == result.rows_quarantined


def test_quarantine_keeps_reason_codes_and_the_record(demo_settings):
    run_source(demo_settings, "dinsos_dtks")
    with session(demo_settings.catalog_url) as s:
        rows = s.scalars(select(QuarantinedRow).where(QuarantinedRow.dataset_id == "dinsos_dtks")
                         .order_by(QuarantinedRow.row_number)).all()
        run = s.scalars(select(Run).where(Run.dataset_id == "dinsos_dtks")).one()
    reasons = {r.row_number: r.reasons for r in rows}
    # The five wrong rows the demo export ends with (120 good rows first) and the row whose NIK they copy.
    assert reasons == {
        1: ["nik:duplicate_key"],
        121: ["nik:pattern"],
        122: ["nik:scientific_notation"],
        123: ["tanggal_lahir:unparseable_date"],
        124: ["jenis_kelamin:unmapped_code"],
        125: ["nik:duplicate_key"],
    }
    assert set(rows[0].record) >= {"NIK", "Nama Lengkap", "Tanggal Lahir"}
    # Another person under row 1's NIK: neither can be published, and each names the other.
    details = {r.row_number: r.details for r in rows}
    assert details[1] == {"nik:duplicate_key": {"rows": [125], "more": 0}}
    assert details[125] == {"nik:duplicate_key": {"rows": [1], "more": 0}}
    assert details[121] is None
    assert run.quality_score == pytest.approx(119 / 125)
    checks = run.validation["checks"]
    assert checks["nik:pattern"]["unexpected_count"] == 1
    assert checks["kode_wilayah:code_list"]["unexpected_count"] == 0
    assert run.validation["reasons"] == {"nik:duplicate_key": 2, "nik:pattern": 1, "nik:scientific_notation": 1,
                                         "tanggal_lahir:unparseable_date": 1, "jenis_kelamin:unmapped_code": 1}


def test_a_key_repeated_by_another_record_in_another_batch_is_quarantined_too(demo_settings, tmp_path):
    # Batches of 50 records: the NIK of row 1 comes back in row 125, three batches later, on another person.
    registry = tmp_path / "registry"
    registry.mkdir()
    spec = yaml.safe_load((demo_settings.registry / "dinsos_dtks.yaml").read_text(encoding="utf-8"))
    spec["options"]["batch_rows"] = 50
    (registry / "dinsos_dtks.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    settings = dataclasses.replace(demo_settings, registry=registry)
    result = run_source(settings, "dinsos_dtks")
    assert (result.rows_in, result.rows_published, result.rows_quarantined) == (125, 119, 6)
    with session(settings.catalog_url) as s:
        rows = s.scalars(select(QuarantinedRow).order_by(QuarantinedRow.row_number)).all()
        run = s.scalars(select(Run).where(Run.dataset_id == "dinsos_dtks")).one()
    duplicated = {r.row_number: r for r in rows if r.reasons == ["nik:duplicate_key"]}
    assert set(duplicated) == {1, 125}
    assert duplicated[125].details == {"nik:duplicate_key": {"rows": [1], "more": 0}}
    # Both as received: row 1 from the first batch, row 125 from the third.
    assert duplicated[1].record["Nama Lengkap"] != duplicated[125].record["Nama Lengkap"]
    assert run.validation["checks"]["nik:duplicate_key"]["unexpected_count"] == 2
    assert run.validation["duplicates"] == {"identical_repeats": 0, "rows": [], "more": 0, "conflicting": 2}
    published = query(settings, "SELECT count(*) AS n, count(DISTINCT nik) AS keys FROM dinsos_dtks")
    assert published.to_pylist() == [{"n": 119, "keys": 119}]


def test_a_record_sent_twice_is_published_once(demo_settings):
    # SIKS-NG's export ends with its first payment a second time, every field the same (key nik+program+periode).
    result = run_source(demo_settings, "dinsos_bansos")
    assert (result.rows_in, result.rows_published, result.rows_quarantined, result.rows_repeated) == (310, 305, 4, 1)
    with session(demo_settings.catalog_url) as s:
        run = s.scalars(select(Run).where(Run.dataset_id == "dinsos_bansos")).one()
        quarantined = s.scalars(select(QuarantinedRow.row_number).where(QuarantinedRow.dataset_id == "dinsos_bansos")
                                .order_by(QuarantinedRow.row_number)).all()
    assert run.validation["duplicates"] == {"identical_repeats": 1, "rows": [310], "more": 0, "conflicting": 0}
    assert run.validation["checks"]["nik+program+periode:duplicate_key"] == {
        "expectation": "expect_compound_columns_to_be_unique", "element_count": 310, "unexpected_count": 0}
    assert quarantined == [306, 307, 308, 309]
    assert _count(demo_settings, "SELECT count(*) FROM (SELECT DISTINCT nik, program, periode FROM dinsos_bansos)") \
        == 305


def _registration(name: str, **options) -> str:
    """The registration of a kelurahan's file of people, exports/`name` in the hub's home, as a file source."""
    return yaml.safe_dump({
        "id": "kelurahan_x", "title": "Warga", "agency": {"code": "kelurahan", "name": "Kelurahan X"},
        "standard": "penduduk@1.0.0", "kind": "file", "options": {"path": "${HUB_HOME}/exports/" + name, **options},
        "mapping": {"nik": {"from": "NIK", "normalize": "nik"}, "nama": {"from": "Nama", "normalize": "name"},
                    "jenis_kelamin": {"from": "JK", "crosswalk": {"L": "1", "P": "2"}},
                    "agama": {"from": "Agama", "crosswalk": {"Islam": "1"}},
                    "tanggal_lahir": {"from": "Lahir", "date_formats": ["%d/%m/%Y"]},
                    "kode_wilayah": {"from": "Kelurahan", "normalize": "kode_wilayah"}},
    })


def _registered(tmp_path, name: str, data: bytes, **options):
    """A kelurahan's file of people, registered as a file source."""
    from connectors.registry import load_source

    home = tmp_path / "home"
    (home / "exports").mkdir(parents=True)
    (home / "exports" / name).write_bytes(data)
    registration = tmp_path / "kelurahan_x.yaml"
    registration.write_text(_registration(name, **options), encoding="utf-8")
    return load_source(registration, home, data_dirs=())


def _stage_file(tmp_path, name: str, data: bytes, **options) -> tuple[dict, dict]:
    """Stage a kelurahan's file of people as `hub sources test` does: the summary and the quarantine by row."""
    import pyarrow.parquet as pq

    from hub.pipeline import stage_into

    folder = tmp_path / "staged"
    folder.mkdir()
    summary = stage_into(folder, _registered(tmp_path, name, data, **options), "test")
    quarantine = {q["row"]: (q["reasons"], json.loads(q["details"] or "null"), json.loads(q["record"]))
                  for q in pq.read_table(folder / "quarantine.parquet").to_pylist()}
    return summary, quarantine


def test_a_line_with_the_wrong_number_of_fields_says_how_many(tmp_path):
    import csv

    lines = ["NIK;Nama;JK;Agama;Lahir;Kelurahan",
             "3271014101900001;Désirée Wulan;P;Islam;01/01/1990;32.71.01.1001",
             '3271010202850002;"Saputra; Agus";L;Islam;02/02/1985;32.71.01.1001;catatan',  # one field too many
             '3271014303920003;"Wulan;Sari";P;Islam;03/03/1992',  # one too few: the quoted ; splits nothing
             "3271014303920004;Sri;P;Islam;04/04/1994;32.71.01.1001;;;"]
    summary, quarantine = _stage_file(tmp_path, "warga.csv", "\r\n".join([*lines, ""]).encode("cp1252"),
                                      delimiter=";", encoding="cp1252")
    assert (summary["rows_in"], summary["rows_valid"], summary["rows_quarantined"]) == (4, 1, 3)
    assert {row: (reasons, details) for row, (reasons, details, _) in quarantine.items()} == {
        2: (["_record:column_count"], {"_record:column_count": {"expected": 6, "found": 7}}),
        3: (["_record:column_count"], {"_record:column_count": {"expected": 6, "found": 5}}),
        4: (["_record:column_count"], {"_record:column_count": {"expected": 6, "found": 9}}),
    }
    # As Python's csv module splits the same lines with the same delimiter and quotes.
    for row, (_, details, record) in quarantine.items():
        assert record == {"_line": lines[row]}
        assert details["_record:column_count"]["found"] == len(next(csv.reader([record["_line"]], delimiter=";")))


def test_a_spreadsheet_row_wider_than_its_header_says_how_wide(tmp_path):
    import io

    import openpyxl

    workbook = openpyxl.Workbook()
    for row in [["NIK", "Nama", "JK", "Agama", "Lahir", "Kelurahan"],
                ["3271014101900001", "Siti", "P", "Islam", "01/01/1990", "32.71.01.1001"],
                ["3271010202850002", "Agus", "L", "Islam", "02/02/1985", "32.71.01.1001", None, "catatan"]]:
        workbook.active.append(row)
    data = io.BytesIO()
    workbook.save(data)
    summary, quarantine = _stage_file(tmp_path, "warga.xlsx", data.getvalue())
    assert (summary["rows_in"], summary["rows_valid"], summary["rows_quarantined"]) == (2, 1, 1)
    reasons, details, _ = quarantine[2]
    assert reasons == ["_record:column_count"]
    assert details == {"_record:column_count": {"expected": 6, "found": 8, "unnamed": ["H"]}}


def test_a_rejected_lines_details_survive_the_relay_from_an_edge_worker(tmp_path):
    from connectors import connector_for
    from connectors.base import Rejected
    from hub.relay import decode, encode

    lines = ["NIK;Nama;JK;Agama;Lahir;Kelurahan", "3271014101900001;Siti;P;Islam;01/01/1990;32.71.01.1001;x"]
    source = _registered(tmp_path, "warga.csv", "\n".join(lines).encode("cp1252"), delimiter=";")
    relayed = json.loads(json.dumps(encode(source.id, connector_for(source).read())))
    (batch,) = decode(relayed, source.id)
    (rejected,) = batch.rejected
    assert isinstance(rejected, Rejected) and rejected == (1, "_record:column_count", lines[1])
    assert rejected.details == {"expected": 6, "found": 7}


def test_codes_stay_text_with_dots_and_leading_digits(demo_settings):
    run_source(demo_settings, "dinsos_dtks")
    table = query(demo_settings, "SELECT nik, kode_wilayah FROM dinsos_dtks")
    assert str(table.schema.field("nik").type) == "string"
    assert all(len(n) == 16 and n.isdigit() for n in table["nik"].to_pylist())
    assert all(k.startswith("32.71.") and len(k) == 13 for k in table["kode_wilayah"].to_pylist())


def test_rerunning_adds_no_duplicates_and_no_new_version(demo_settings):
    first = {s: run_source(demo_settings, s) for s in ("disdukcapil_siak", "dinsos_dtks")}
    integrate(demo_settings, "penduduk")
    again = {s: run_source(demo_settings, s) for s in ("disdukcapil_siak", "dinsos_dtks")}
    integrate(demo_settings, "penduduk")
    for s in first:
        assert again[s].snapshot_id == first[s].snapshot_id
        assert again[s].status == "unchanged"
        assert _count(demo_settings, f"SELECT count(*) - count(DISTINCT nik) FROM {s}") == 0
    # The incremental source read nothing new; the full export was read again and found identical.
    assert again["disdukcapil_siak"].rows_in == 0
    assert again["dinsos_dtks"].rows_in == first["dinsos_dtks"].rows_in
    with session(demo_settings.catalog_url) as s:
        versions = dict(s.execute(select(DatasetVersion.dataset_id, func.count()).group_by(DatasetVersion.dataset_id)).all())
    assert versions == {"disdukcapil_siak": 1, "dinsos_dtks": 1, "penduduk": 1}


def test_incremental_source_merges_changes_by_primary_key(demo_settings):
    run_source(demo_settings, "disdukcapil_siak")
    db = demo_settings.home / "demo" / "disdukcapil" / "siak.db"
    with sqlite3.connect(db) as con:
        nik = con.execute("SELECT nik FROM penduduk ORDER BY updated_at LIMIT 1").fetchone()[0]
        con.execute("UPDATE penduduk SET kode_kelurahan = '32.71.02.1001', updated_at = '2099-01-01 00:00:00' "
                    "WHERE nik = ?", (nik,))
    result = run_source(demo_settings, "disdukcapil_siak")
    assert (result.rows_in, result.rows_published, result.status) == (1, 1, "published")
    table = query(demo_settings, f"SELECT kode_wilayah FROM disdukcapil_siak WHERE nik = '{nik}'")
    assert table["kode_wilayah"].to_pylist() == ["32.71.02.1001"]
    assert _count(demo_settings, "SELECT count(*) FROM disdukcapil_siak") == 480
    with session(demo_settings.catalog_url) as s:
        assert s.get(SourceState, "disdukcapil_siak").cursor == "2099-01-01 00:00:00"


def test_a_run_that_dies_before_publish_publishes_nothing_and_moves_no_cursor(demo_settings):
    stage(demo_settings, "disdukcapil_siak", "run-that-dies")  # validation done, then the worker dies
    with session(demo_settings.catalog_url) as s:
        assert s.get(SourceState, "disdukcapil_siak") is None
        assert s.get(Dataset, "disdukcapil_siak") is None
    result = run_source(demo_settings, "disdukcapil_siak")
    assert result.rows_in == 483 and result.rows_published == 480


def test_a_publish_retried_after_its_catalog_commit_does_not_count_twice(demo_settings):
    stage(demo_settings, "dinsos_dtks", "retried")
    first = publish(demo_settings, "dinsos_dtks", "retried")
    stage(demo_settings, "dinsos_dtks", "retried")  # Airflow retries the whole task
    second = publish(demo_settings, "dinsos_dtks", "retried")
    assert first == second
    with session(demo_settings.catalog_url) as s:
        assert s.scalar(select(func.count()).select_from(QuarantinedRow)) == first.rows_quarantined


def test_publish_refuses_a_run_that_was_never_staged(demo_settings):
    with pytest.raises(HubError, match="has not been staged"):
        publish(demo_settings, "dinsos_dtks", "never-staged")


def test_integrated_dataset_combines_sources_with_lineage(demo_settings):
    a = run_source(demo_settings, "disdukcapil_siak")
    b = run_source(demo_settings, "dinsos_dtks")
    result = integrate(demo_settings, "penduduk")
    assert result["rows"] == a.rows_published + b.rows_published
    by_source = query(demo_settings, "SELECT _source, count(*) AS n FROM penduduk GROUP BY 1 ORDER BY 1").to_pylist()
    assert by_source == [{"_source": "dinsos_dtks", "n": b.rows_published},
                         {"_source": "disdukcapil_siak", "n": a.rows_published}]
    # Dinsos's people are Disdukcapil's people: a join on NIK links them.
    linked = _count(demo_settings, "SELECT count(*) FROM dinsos_dtks d JOIN disdukcapil_siak s USING (nik)")
    assert linked == b.rows_published
    from catalog.db import LineageEdge

    with session(demo_settings.catalog_url) as s:
        edges = {(e.dataset_id, e.upstream.split(":")[0], e.relation) for e in s.scalars(select(LineageEdge))}
    assert ("penduduk", "dinsos_dtks", "integrated_from") in edges
    assert ("disdukcapil_siak", "system", "harmonized_from") in edges


def test_a_failed_run_is_recorded_without_record_values(demo_settings):
    (demo_settings.home / "demo" / "dinsos" / "dtks_penduduk.csv").unlink()
    with pytest.raises(HubError, match="not found"):
        run_source(demo_settings, "dinsos_dtks")
    with session(demo_settings.catalog_url) as s:
        run = s.scalars(select(Run).where(Run.dataset_id == "dinsos_dtks")).one()
    assert run.status == "failed" and "dtks_penduduk.csv" in run.error


def test_the_api_reads_any_past_version_by_snapshot_or_time(demo_settings):
    import datetime as dt

    from fastapi.testclient import TestClient

    from serving.api import create_app

    first = run_source(demo_settings, "dinsos_dtks")
    export = demo_settings.home / "demo" / "dinsos" / "dtks_penduduk.csv"
    lines = export.read_bytes().split(b"\r\n")
    export.write_bytes(b"\r\n".join(lines[:50] + lines[60:]))  # ten good records fewer in the next extract
    between = dt.datetime.now(dt.timezone.utc).isoformat()
    second = run_source(demo_settings, "dinsos_dtks")
    assert (first.rows_published, second.rows_published) == (119, 109) and first.snapshot_id != second.snapshot_id

    from catalog.identity import create_user

    _, token = create_user(demo_settings, "analis", "analyst")
    client = TestClient(create_app(demo_settings), headers={"Authorization": f"Bearer {token}"})

    def rows(**params):
        return client.get("/api/datasets/dinsos_dtks/rows", params={"limit": 1, **params})

    assert (rows().json()["total"], rows().json()["snapshot_id"]) == (109, second.snapshot_id)
    assert rows(version=str(first.snapshot_id)).json()["total"] == 119
    assert rows(version=between).json()["snapshot_id"] == first.snapshot_id
    assert rows(version="2000-01-01T00:00:00Z").status_code == 404
    assert rows(version="12345").status_code == 404
    assert rows(version="kemarin").status_code == 422


def test_a_file_where_every_row_is_bad_is_quarantined_a_row_group_at_a_time(tmp_path):
    """No run holds its quarantine whole: the rows go to quarantine.parquet in groups as they come (as many
    groups as GROUP_ROWS make), and each keeps its reason and its record."""
    import pyarrow.parquet as pq

    from hub.pipeline import _Quarantine

    rows = 2 * _Quarantine.GROUP_ROWS + 123
    lines = ["NIK,Nama,JK,Agama,Lahir,Kelurahan"] + [f"12{i},Warga {i},L,Islam,01/02/1990,3271011001"
                                                     for i in range(rows)]
    summary, quarantine = _stage_file(tmp_path, "all_bad.csv", ("\n".join(lines) + "\n").encode())
    assert summary["rows_in"] == summary["rows_quarantined"] == rows and summary["rows_valid"] == 0
    groups = pq.ParquetFile(tmp_path / "staged" / "quarantine.parquet").metadata
    assert groups.num_row_groups == 3
    assert [groups.row_group(i).num_rows for i in range(3)] == [_Quarantine.GROUP_ROWS] * 2 + [123]
    assert sorted(quarantine) == list(range(1, rows + 1))  # row numbers count records, the header not among them
    assert all(reasons == ["nik:pattern"] or "nik:pattern" in reasons for reasons, _, _ in quarantine.values())
    assert quarantine[rows][2]["Nama"] == f"Warga {rows - 1}"
    assert summary["validation"]["reasons"]["nik:pattern"] == rows


def test_a_quarantine_keeps_each_reasons_lowest_rows_whatever_order_they_come_in(tmp_path):
    """The rows a run's result shows per reason are the lowest ones, rows coming in ascending order (a batch's)
    or not (duplicates settled after the run is read), and the counts are whole, the most frequent first."""
    import random
    from collections import Counter

    import pyarrow.parquet as pq

    from hub.pipeline import _Quarantine

    order = list(range(1, 5001))
    random.Random(7).shuffle(order)
    rows = list(range(10_001, 15_001)) + order  # one ascending run, then the lower rows shuffled
    given = {row: ["nik:pattern"] if row % 3 else ["nik:pattern", "tanggal_lahir:format"] for row in rows}
    given.update({row: ["nik:duplicate_key"] for row in (4999, 12, 14_000)})
    quarantine = _Quarantine(tmp_path / "quarantine.parquet")
    for row in rows:
        quarantine.add(row, given[row], {"NIK": f"x{row}", "Nama": "Ña'im \"1\""})
    quarantine.close()

    counted = Counter(reason for reasons in given.values() for reason in reasons)
    assert quarantine.counts() == dict(counted.most_common()) and list(quarantine.counts())[0] == "nik:pattern"
    for reason in counted:
        expected = sorted(row for row, reasons in given.items() if reason in reasons)[:_Quarantine.SHOWN_PER_REASON]
        assert quarantine.first_rows(reason) == expected
    written = pq.read_table(tmp_path / "quarantine.parquet").to_pylist()
    assert len(written) == len(quarantine) == len(rows)
    assert json.loads(written[0]["record"]) == {"NIK": "x10001", "Nama": "Ña'im \"1\""}


def test_quarantined_rows_reach_the_catalog_whole_many_statements_at_a_time(demo_settings, tmp_path):
    """More quarantined rows than one insert statement takes: each lands once, with its reasons, its record as
    received (quotes, a percent sign and letters beyond ASCII kept) and its details, in SQLite and PostgreSQL."""
    from hub.pipeline import INSERT_ROWS

    rows = 2 * INSERT_ROWS + 37
    lines = ["NIK,Nama,JK,Agama,Lahir,Kelurahan"]
    for i in range(1, rows + 1):
        nik = f"32710101019{i:05d}" if i % 3 else f"99{i}"  # every third NIK breaks the pattern
        lines.append(f"{nik},Ña'im \"{i}\" 100%,L,Islam,01/02/1990,3271011001" + (",x,y" if i % 100 == 0 else ""))
    (demo_settings.home / "exports").mkdir(exist_ok=True)
    (demo_settings.home / "exports" / "warga.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    registry = tmp_path / "registry"
    registry.mkdir()
    (registry / "kelurahan_x.yaml").write_text(_registration("warga.csv"), encoding="utf-8")
    settings = dataclasses.replace(demo_settings, registry=registry)

    result = run_source(settings, "kelurahan_x")
    wide = {i for i in range(1, rows + 1) if i % 100 == 0}
    bad = {i for i in range(1, rows + 1) if i % 3 == 0} | wide
    assert (result.rows_in, result.rows_quarantined, result.rows_published) == (rows, len(bad), rows - len(bad))
    with session(settings.catalog_url) as s:
        stored = s.scalars(select(QuarantinedRow).where(QuarantinedRow.dataset_id == "kelurahan_x")).all()
    by_row = {q.row_number: q for q in stored}
    assert len(stored) == len(by_row) == len(bad) and set(by_row) == bad
    assert by_row[3].reasons == ["nik:pattern"] and by_row[3].details is None
    assert by_row[3].record == {"NIK": "993", "Nama": 'Ña\'im "3" 100%', "JK": "L", "Agama": "Islam",
                                "Lahir": "01/02/1990", "Kelurahan": "3271011001"}
    assert by_row[100].reasons == ["_record:column_count"]
    assert by_row[100].details == {"_record:column_count": {"expected": 6, "found": 8}}
