"""Maintenance: snapshots expire by policy, orphan files of killed publishes go after the grace period, staging
folders of finished runs go; what remains stays readable by pyiceberg and DuckDB. Real tables, real kills."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from _faults import KILLED_PUBLISH, CsvAgency, SqliteAgency, changed, child, register, residents, table_rows
from catalog import storage
from catalog.db import Dataset, DatasetVersion, session
from catalog.query import query
from hub.errors import ConfigError, HubError
from hub.maintenance import TRASH, maintain, maintenance_dag
from hub.pipeline import integrate, publish, record_failure, run_source, stage
from hub.settings import ROOT, Settings

PEOPLE = residents(400)
V1 = PEOPLE[:150]
V2 = changed(V1) + PEOPLE[150:200]
V3 = changed(V2, every=7) + PEOPLE[200:260]
V4 = changed(V3, every=5) + PEOPLE[260:300]
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)


@pytest.fixture
def settings(tmp_path, catalog_url) -> Settings:
    home = tmp_path / "home"
    return Settings(home=home, catalog_url=catalog_url, registry=tmp_path / "registry")


@pytest.fixture(autouse=True)
def _default_policy(monkeypatch):
    for name in ("HUB_SNAPSHOT_MAX_AGE_DAYS", "HUB_SNAPSHOT_KEEP_LAST", "HUB_ORPHAN_GRACE_HOURS",
                 "HUB_STAGING_RETENTION_HOURS", "HUB_STANDARDS"):
        monkeypatch.delenv(name, raising=False)


def expected(records: list[dict]) -> dict[str, str]:
    return {r["nik"]: r["agama"] for r in records}


def csv_source(settings: Settings, source_id: str = "file_penduduk") -> tuple[str, CsvAgency]:
    agency = CsvAgency(settings.home / "agency" / f"{source_id}.csv")
    register(settings, source_id, agency.kind, agency.options())
    return source_id, agency


def table_of(settings: Settings, identifier: str):
    return storage.iceberg_catalog(settings.catalog_url, settings.warehouse.as_uri()).load_table(identifier)


def files_under(table) -> set[str]:
    root = Path(table.location().removeprefix("file://"))
    return {str(p) for p in root.rglob("*") if p.is_file()}


def referenced(table) -> set[str]:
    """Every file the table's metadata refers to (every snapshot's manifest list, manifests and data files, and
    the metadata files), read with pyiceberg's own API."""
    md = table.metadata
    found = {table.metadata_location, *(e.metadata_file for e in md.metadata_log)}
    for snapshot in md.snapshots:
        found.add(snapshot.manifest_list)
        for manifest in snapshot.manifests(table.io):
            found.add(manifest.manifest_path)
            found |= {e.data_file.file_path for e in manifest.fetch_manifest_entry(table.io, discard_deleted=True)}
    return {f.removeprefix("file://") for f in found}


def versions(settings: Settings, dataset_id: str) -> list[int]:
    with session(settings.catalog_url) as s:
        return list(s.scalars(select(DatasetVersion.snapshot_id).where(DatasetVersion.dataset_id == dataset_id)
                              .order_by(DatasetVersion.id)))


def sql_rows(settings: Settings, source_id: str) -> dict[str, str]:
    """What an analyst's SQL (DuckDB over the current version's files) gives."""
    return {r["nik"]: r["agama"] for r in query(settings, f'SELECT nik, agama FROM "{source_id}"').to_pylist()}


def assert_readable(settings: Settings, source_id: str, published: dict[int, list[dict]]) -> None:
    """Every version in `published` (snapshot -> records) reads back whole with pyiceberg, and the current one
    with DuckDB; every file a remaining snapshot refers to is on disk."""
    table = table_of(settings, f"{storage.HARMONIZED}.{source_id}")
    missing = [f for f in referenced(table) if not os.path.exists(f)]
    assert missing == []
    for snapshot_id, records in published.items():
        assert table_rows(settings, source_id, snapshot_id) == expected(records)
    current = table.current_snapshot().snapshot_id
    assert sql_rows(settings, source_id) == expected(published[current])


def one(result: dict, table: str) -> dict:
    [entry] = [t for t in result["tables"] if t["table"] == table]
    return entry


# --- orphan files ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("point", ["data_file", "metadata"])
def test_a_killed_publishs_orphans_are_removed_after_the_grace_period_and_referenced_files_never(settings, point):
    source_id, agency = csv_source(settings)
    identifier = f"{storage.HARMONIZED}.{source_id}"
    agency.write(V1)
    first = run_source(settings, source_id)
    agency.write(V2)
    second = run_source(settings, source_id)

    # The next publish is killed while Iceberg writes (a half data file), or after its metadata file is
    # written and before the catalog points at it (data file, manifests, manifest list and metadata: none
    # referred to). Its retries ran out: the agency's next export is another one.
    agency.write(V3)
    stage(settings, source_id, "killed")
    done = child(settings, KILLED_PUBLISH, source_id, "killed", point)
    assert done.returncode == -signal.SIGKILL, done.stdout + done.stderr[-3000:]
    agency.write(V4)
    last = run_source(settings, source_id)
    published = {first.snapshot_id: V1, second.snapshot_id: V2, last.snapshot_id: V4}

    table = table_of(settings, identifier)
    orphans = files_under(table) - referenced(table)
    assert orphans, "the killed publish left no file behind"
    if point == "metadata":
        assert {Path(f).parent.name for f in orphans} == {"data", "metadata"}
    before = files_under(table)
    now = dt.datetime.now(dt.timezone.utc)

    for later in (dt.timedelta(0), 71 * HOUR):  # within the grace period (72 hours): nothing goes
        result = maintain(settings, now=now + later)
        assert result["errors"] == []
        entry = one(result, identifier)
        assert (entry["orphans_removed"], entry["expired"]) == ([], [])
        assert entry["orphans_waiting"] == len(orphans)
        assert files_under(table) == before
        # The killed run's staging folder, never published, goes once older than its retention (24 hours).
        assert result["staging"] == ([] if not later else [f"{source_id}/killed"])

    dry = maintain(settings, now=now + 73 * HOUR, dry_run=True)
    assert sorted(one(dry, identifier)["orphans_removed"]) == sorted(
        os.path.relpath(f, table.location().removeprefix("file://")) for f in orphans)
    assert files_under(table) == before

    result = maintain(settings, now=now + 73 * HOUR)
    assert result["errors"] == []
    entry = one(result, identifier)
    assert len(entry["orphans_removed"]) == len(orphans) and entry["orphan_bytes"] > 0
    assert entry["expired"] == []  # three days old: younger than the default five days
    assert files_under(table) == before - orphans
    assert not [f for f in files_under(table) if f.endswith(TRASH)]
    assert_readable(settings, source_id, published)
    assert not (settings.staging / source_id / "killed").exists()

    again = maintain(settings, now=now + 74 * HOUR)
    assert one(again, identifier)["orphans_removed"] == [] and again["errors"] == []

    # The next publish of the same table still works, and reads back.
    agency.write(V3)
    assert run_source(settings, source_id).status == "published"
    assert sql_rows(settings, source_id) == expected(V3)


def test_the_grace_period_is_a_setting_and_a_file_outside_the_tables_is_never_touched(settings, monkeypatch):
    source_id, agency = csv_source(settings)
    agency.write(V1)
    run_source(settings, source_id)
    table = table_of(settings, f"{storage.HARMONIZED}.{source_id}")
    root = Path(table.location().removeprefix("file://"))
    stray = root / "data" / "left-by-a-killed-writer.parquet"
    stray.write_bytes(b"PAR1 half")
    outside = settings.warehouse / "notes.txt"  # in the warehouse, in no table's folder
    outside.write_text("not a table's")
    now = dt.datetime.now(dt.timezone.utc)

    identifier = f"{storage.HARMONIZED}.{source_id}"
    monkeypatch.setenv("HUB_ORPHAN_GRACE_HOURS", "5")
    assert one(maintain(settings, now=now + 4 * HOUR), identifier)["orphans_waiting"] == 1
    assert stray.exists()
    result = maintain(settings, now=now + 6 * HOUR)
    assert one(result, identifier)["orphans_removed"] == ["data/left-by-a-killed-writer.parquet"]
    assert not stray.exists() and outside.exists()
    assert sql_rows(settings, source_id) == expected(V1)

    # An hour is the floor whatever the setting: a publish may be writing the files it is about to commit.
    monkeypatch.setenv("HUB_ORPHAN_GRACE_HOURS", "0.001")
    stray.write_bytes(b"PAR1 half")
    assert one(maintain(settings), identifier)["orphans_waiting"] == 1
    assert stray.exists()

    for wrong in ("0", "-3", "soon", "nan"):
        monkeypatch.setenv("HUB_ORPHAN_GRACE_HOURS", wrong)
        with pytest.raises(ConfigError, match="HUB_ORPHAN_GRACE_HOURS must be a positive number"):
            maintain(settings)


def test_an_orphan_set_aside_by_a_killed_maintenance_run_comes_back_if_the_table_refers_to_it(settings):
    """Maintenance renames an orphan before it reads the table again; killed in between, the next run puts back
    what the table refers to."""
    source_id, agency = csv_source(settings)
    agency.write(V1)
    run_source(settings, source_id)
    table = table_of(settings, f"{storage.HARMONIZED}.{source_id}")
    [data_file] = [f for f in referenced(table) if "/data/" in f]
    os.rename(data_file, data_file + TRASH)
    result = maintain(settings)
    assert one(result, f"{storage.HARMONIZED}.{source_id}")["restored"] == [data_file]
    assert os.path.exists(data_file) and not os.path.exists(data_file + TRASH)
    assert sql_rows(settings, source_id) == expected(V1)


def test_a_publish_reusing_an_expired_versions_file_gets_it_back(settings, monkeypatch):
    """The agency sends again the export of a version whose snapshot expired: the publish reuses that version's
    file (named by content), and maintenance sets it aside as an orphan after the publish found it whole and
    before its commit. The committed snapshot must not be left without its file."""
    from pyiceberg.table import Transaction

    source_id, agency = csv_source(settings)
    agency.write(V1)
    run_source(settings, source_id)
    table = table_of(settings, f"{storage.HARMONIZED}.{source_id}")
    [v1_file] = [f for f in referenced(table) if "/data/" in f]
    agency.write(V2)
    run_source(settings, source_id)

    commit = Transaction.commit_transaction

    def set_aside_first(self):  # what maintenance does, at the worst moment
        if os.path.exists(v1_file):
            os.rename(v1_file, v1_file + TRASH)
        return commit(self)

    agency.write(V1)
    stage(settings, source_id, "again")
    monkeypatch.setattr(Transaction, "commit_transaction", set_aside_first)
    assert publish(settings, source_id, "again").status == "published"
    monkeypatch.undo()
    assert os.path.exists(v1_file) and os.path.exists(v1_file + TRASH)
    assert sql_rows(settings, source_id) == expected(V1)
    # Maintenance later finds the copy it set aside is not needed: it goes after the grace period.
    result = maintain(settings, now=dt.datetime.now(dt.timezone.utc) + 4 * DAY)
    assert one(result, f"{storage.HARMONIZED}.{source_id}")["restored"] == []
    assert not os.path.exists(v1_file + TRASH) and os.path.exists(v1_file)
    assert sql_rows(settings, source_id) == expected(V1)


# --- expiring snapshots -------------------------------------------------------------------------------------------


def test_snapshots_expire_by_the_default_policy_and_every_published_version_stays_readable(settings):
    source_id, agency = csv_source(settings)  # a full extract: each publish replaces the table's file
    db = SqliteAgency(settings.home / "agency" / "siak.db")  # an upserted source
    register(settings, "sql_penduduk", db.kind, db.options())
    published = {}
    for records in (V1, V2, V3):
        agency.write(records)
        published[run_source(settings, source_id).snapshot_id] = records
        db.write(records)
        run_source(settings, "sql_penduduk")
        integrate(settings, "penduduk")
    # What each version of the upserted source and of the integrated dataset reads before maintenance.
    upserted = {v: table_rows(settings, "sql_penduduk", v) for v in versions(settings, "sql_penduduk")}
    integrated = {v: storage.read_table(settings, storage.INTEGRATED, "penduduk", v).sort_by(
        [("_source", "ascending"), ("nik", "ascending")]) for v in versions(settings, "penduduk")}
    assert len(upserted) == len(integrated) == 3
    tables = [f"{storage.HARMONIZED}.{source_id}", f"{storage.HARMONIZED}.sql_penduduk",
              f"{storage.INTEGRATED}.penduduk"]
    before = {t: [s.snapshot_id for s in table_of(settings, t).snapshots()] for t in tables}
    now = dt.datetime.now(dt.timezone.utc)

    young = maintain(settings, now=now + 4 * DAY)  # younger than five days: nothing expires
    assert [one(young, t)["expired"] for t in tables] == [[], [], []]

    result = maintain(settings, now=now + 6 * DAY)
    assert result["errors"] == []
    for t in tables:
        entry = one(result, t)
        table = table_of(settings, t)
        left = [s.snapshot_id for s in table.snapshots()]
        dataset = t.split(".")[1]
        kept = set(versions(settings, dataset)) | {table.current_snapshot().snapshot_id}
        others = [s for s in before[t] if s not in kept]
        # Every published version stays; of the other snapshots (the steps of an upsert), the newest one.
        assert set(left) == kept | set(others[-1:]), t
        assert set(entry["expired"]) == set(others[:-1]) and entry["versions_expired"] == []
        assert entry["policy"] == {"snapshots": {"max-age-days": 5.0, "keep-last": 1}, "versions": None}
        assert [f for f in referenced(table) if not os.path.exists(f)] == []
        # The manifest lists of the expired snapshots were orphans at once: older than the grace period.
        assert len(entry["orphans_removed"]) >= len(entry["expired"])
    assert_readable(settings, source_id, published)
    for snapshot_id, rows in upserted.items():
        assert table_rows(settings, "sql_penduduk", snapshot_id) == rows
    assert sql_rows(settings, "sql_penduduk") == rows
    for snapshot_id, rows in integrated.items():
        assert storage.read_table(settings, storage.INTEGRATED, "penduduk", snapshot_id).sort_by(
            [("_source", "ascending"), ("nik", "ascending")]).equals(rows)
    assert query(settings, "SELECT count(*) AS n FROM penduduk")["n"][0].as_py() == rows.num_rows

    again = maintain(settings, now=now + 6 * DAY)
    assert [one(again, t)["expired"] for t in tables] == [[], [], []]


def test_the_keep_last_and_age_settings_change_the_default_policy(settings, monkeypatch):
    source_id, agency = csv_source(settings)
    for n, records in enumerate((V1, V2, V3, V4, V2)):
        agency.write(records)
        if n % 2:  # killed after its Iceberg commit: a snapshot that is no published version
            stage(settings, source_id, f"killed-{n}")
            done = child(settings, KILLED_PUBLISH, source_id, f"killed-{n}", "iceberg_commit")
            assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]
        else:
            run_source(settings, source_id)
    identifier = f"{storage.HARMONIZED}.{source_id}"
    before = [s.snapshot_id for s in table_of(settings, identifier).snapshots()]
    others = [s for s in before if s not in versions(settings, source_id)]
    assert len(others) == 2  # the commits of the two killed publishes
    monkeypatch.setenv("HUB_SNAPSHOT_KEEP_LAST", "2")
    monkeypatch.setenv("HUB_SNAPSHOT_MAX_AGE_DAYS", "0.5")
    now = dt.datetime.now(dt.timezone.utc)
    assert one(maintain(settings, now=now + DAY), identifier)["expired"] == []  # both are among the last two
    monkeypatch.setenv("HUB_SNAPSHOT_KEEP_LAST", "1")
    assert one(maintain(settings, now=now + 6 * HOUR), identifier)["expired"] == []  # younger than half a day
    assert one(maintain(settings, now=now + DAY), identifier)["expired"] == others[:1]
    monkeypatch.setenv("HUB_SNAPSHOT_KEEP_LAST", "0")
    with pytest.raises(ConfigError, match="HUB_SNAPSHOT_KEEP_LAST must be a positive whole number"):
        maintain(settings)


def standards_with(tmp_path: Path, retention: dict) -> Path:
    """A standards folder (HUB_STANDARDS) whose penduduk standard sets `retention`."""
    folder = tmp_path / "standards"
    folder.mkdir()
    schema = json.loads((ROOT / "schemas" / "standards" / "penduduk-1.0.0.json").read_text(encoding="utf-8"))
    schema["x-retention"] = retention
    (folder / "penduduk-1.0.0.json").write_text(json.dumps(schema, ensure_ascii=False, indent=2), encoding="utf-8")
    return folder


def test_a_standard_may_let_its_published_versions_expire(settings, tmp_path, monkeypatch):
    from catalog import metadata

    monkeypatch.setenv("HUB_STANDARDS", str(standards_with(
        tmp_path, {"versions": {"max-age-days": 1, "keep-last": 2}, "snapshots": {"max-age-days": 1}})))
    source_id, agency = csv_source(settings)
    published = {}
    for records in (V1, V2, V3, V4):
        agency.write(records)
        published[run_source(settings, source_id).snapshot_id] = records
    first, second, third, fourth = published
    identifier = f"{storage.HARMONIZED}.{source_id}"
    table = table_of(settings, identifier)
    files = {s: {f for f in storage.data_files(settings, identifier, s).files} for s in published}
    now = dt.datetime.now(dt.timezone.utc)

    result = maintain(settings, now=now + 4 * DAY)  # a day's age for snapshots; three days' grace for files
    assert result["errors"] == []
    entry = one(result, identifier)
    assert entry["policy"] == {"snapshots": {"max-age-days": 1, "keep-last": 1},
                               "versions": {"max-age-days": 1, "keep-last": 2}}
    assert set(entry["versions_expired"]) == {first, second}
    table = table.refresh()
    assert {first, second} & {s.snapshot_id for s in table.snapshots()} == set()
    # The catalog offers only the versions it can read; their files went with them.
    assert versions(settings, source_id) == [third, fourth]
    with session(settings.catalog_url) as s:
        about = metadata.describe(s, s.get(Dataset, source_id))
    assert [v["snapshot_id"] for v in about["versions"]] == [fourth, third]
    assert not [f for f in files[first] | files[second] if os.path.exists(f)]
    assert_readable(settings, source_id, {third: V3, fourth: V4})


def test_x_retention_is_checked_and_names_the_file_and_the_place():
    from schemas.retention import Rule, retention_of

    defaults = Rule(5, 1)
    assert retention_of({}, "a-1.0.0.json", defaults).as_dict() == {
        "snapshots": {"max-age-days": 5, "keep-last": 1}, "versions": None}
    assert retention_of({"x-retention": {"snapshots": {"keep-last": 3}, "versions": {"max-age-days": 365,
                                                                                       "keep-last": 12}}},
                        "a-1.0.0.json", defaults).as_dict() == {
        "snapshots": {"max-age-days": 5, "keep-last": 3}, "versions": {"max-age-days": 365, "keep-last": 12}}
    for wrong, at in [({"versions": {"max-age-days": 30}}, "x-retention/versions"),
                      ({"snapshots": {"keep-last": 0}}, "x-retention/snapshots/keep-last"),
                      ({"snapshots": {"keep-last": True}}, "x-retention/snapshots/keep-last"),
                      ({"snapshots": {"max-age-days": 0}}, "x-retention/snapshots/max-age-days"),
                      ({"snapshots": {"max-age-days": "7"}}, "x-retention/snapshots/max-age-days"),
                      ({"history": {}}, "x-retention"), ([], "x-retention")]:
        with pytest.raises(ConfigError, match=f"^a-1.0.0.json: at {at}: ") as raised:
            retention_of({"x-retention": wrong}, "a-1.0.0.json", defaults)
        assert "keep-last" in str(raised.value)


# --- staging --------------------------------------------------------------------------------------------------


def test_staging_of_finished_runs_is_removed_and_of_a_run_that_may_still_publish_kept(settings, monkeypatch):
    from hub.errors import RetriableSourceError

    source_id, agency = csv_source(settings)
    agency.write(V1)
    run_source(settings, source_id)
    agency.write(V2)
    folder = settings.staging / source_id
    # Airflow's stage tasks of five runs, done (a stage sweeps the folders of finished runs: none is yet).
    for run_id in ("published", "broken", "retried", "waiting", "abandoned"):
        stage(settings, source_id, run_id)

    # Published, but killed after its catalog commit, before it removed its folder.
    done = child(settings, KILLED_PUBLISH, source_id, "published", "catalog_committed")
    assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]
    # Failed for good: its registration broke, and Airflow does not retry a ConfigError.
    registration = settings.registry / f"{source_id}.yaml"
    text = registration.read_text()
    registration.write_text(text.replace("kind: file", "kind: no_such_kind"))
    with pytest.raises(ConfigError) as raised:
        publish(settings, source_id, "broken")
    record_failure(settings, source_id, "broken", raised.value)  # as the DAG's publish task does
    registration.write_text(text)
    # Failed with errors Airflow retries (the catalog database was down): its retry needs the staged files.
    record_failure(settings, source_id, "retried", HubError(
        f"source {source_id}: run retried: the catalog database failed while publishing (server closed the "
        "connection unexpectedly); the run is not published; run it again"))
    record_failure(settings, source_id, "retried", RetriableSourceError(f"source {source_id}: timed out"))
    # "waiting": its publish task has not started yet. Another run is being staged now: no summary yet, its folder
    # made two days ago (a long extract), its files still being written.
    two_days_ago = time.time() - 2 * 86400
    (folder / "staging-now").mkdir()
    (folder / "staging-now" / "data.parquet").write_bytes(b"PAR1")
    os.utime(folder / "staging-now", (two_days_ago, two_days_ago))
    # Killed and never retried, two days ago.
    os.utime(folder / "abandoned", (two_days_ago, two_days_ago))

    dry = maintain(settings, dry_run=True)
    assert len(list(folder.iterdir())) == 6
    result = maintain(settings)
    assert result["errors"] == []
    assert sorted(dry["staging"]) == sorted(result["staging"]) == [
        f"{source_id}/{r}" for r in ("abandoned", "broken", "published")]
    assert sorted(p.name for p in folder.iterdir()) == ["retried", "staging-now", "waiting"]

    # The retry of the retriable run publishes from what was kept (the content the killed run published).
    assert publish(settings, source_id, "retried").status == "unchanged"
    assert sql_rows(settings, source_id) == expected(V2)

    # HUB_STAGING_RETENTION_HOURS: the others go once older than it.
    monkeypatch.setenv("HUB_STAGING_RETENTION_HOURS", "2")
    assert maintain(settings, now=dt.datetime.now(dt.timezone.utc) + HOUR)["staging"] == []
    later = maintain(settings, now=dt.datetime.now(dt.timezone.utc) + 3 * HOUR)
    assert sorted(later["staging"]) == [f"{source_id}/staging-now", f"{source_id}/waiting"]
    assert list(folder.iterdir()) == []


def test_stale_masked_copies_are_removed_a_day_on(settings):
    from catalog.identity import Identity
    from catalog.query import sandbox

    source_id, agency = csv_source(settings)
    agency.write(V1)
    run_source(settings, source_id)
    analyst = Identity(name="analis", role="analyst", agency=None)  # sees NIKs as pseudonyms: a masked copy
    with sandbox(settings, analyst, {source_id: None}) as (con, _):
        con.sql(f'SELECT count(*) FROM "{source_id}"').fetchall()
    copies = settings.home / "served" / source_id
    [old_version] = [p for p in copies.iterdir()]
    agency.write(V2)
    run_source(settings, source_id)
    (old_version / "x.partial").write_bytes(b"half")
    now = dt.datetime.now(dt.timezone.utc)
    assert maintain(settings, now=now + HOUR)["copies"] == []
    result = maintain(settings, now=now + 25 * HOUR)
    assert result["copies"] == [str(old_version.relative_to(settings.home))]
    assert not old_version.exists()


# --- the DAG and the command ----------------------------------------------------------------------------------


def test_the_maintenance_dag_runs_maintain_daily():
    dag = maintenance_dag()
    assert dag.dag_id == "hub__maintenance"
    assert [t.task_id for t in dag.tasks] == ["maintain"]
    assert dag.catchup is False and dag.max_active_runs == 1
    assert dag.schedule == "@daily"


def test_importing_the_maintenance_module_loads_no_heavy_module():
    import subprocess
    import sys

    program = ("import sys, hub.maintenance; heavy = [m for m in sys.modules if m.split('.')[0] in "
               "('airflow', 'pyiceberg', 'pyarrow', 'sqlalchemy', 'duckdb')]; print(heavy)")
    done = subprocess.run([sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def test_hub_maintain_reports_as_json_and_a_dry_run_changes_nothing(tmp_path):
    from _served import hub

    home = tmp_path / "home"
    settings = Settings(home=home, catalog_url=f"sqlite:///{home / 'catalog.db'}", registry=tmp_path / "registry")
    source_id, agency = csv_source(settings)
    agency.write(V1)
    env = {"HUB_REGISTRY": str(settings.registry)}
    hub(home, "run", source_id, env=env)
    (settings.staging / source_id / "abandoned").mkdir(parents=True)
    os.utime(settings.staging / source_id / "abandoned", (time.time() - 3 * 86400,) * 2)

    dry = json.loads(hub(home, "maintain", "--dry-run", "--json", env=env).stdout)
    assert dry["dry_run"] is True and dry["staging"] == [f"{source_id}/abandoned"]
    assert (settings.staging / source_id / "abandoned").exists()
    done = json.loads(hub(home, "maintain", "--json", env=env).stdout)
    assert done["errors"] == [] and done["staging"] == [f"{source_id}/abandoned"]
    assert f"{storage.HARMONIZED}.{source_id}" in [t["table"] for t in done["tables"]]
    assert not (settings.staging / source_id / "abandoned").exists()
    assert "tables looked at; 0 staging folders" in hub(home, "maintain", env=env).stdout
