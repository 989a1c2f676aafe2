"""Iceberg storage: a compatible new version of a standard evolves the table in place; old versions stay readable."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from catalog import storage
from hub.settings import ROOT, Settings
from schemas.standards import load_standard

RECORD = {"nik": "3271010101900001", "nama": "SITI AMINAH", "jenis_kelamin": "2", "agama": "1",
          "tanggal_lahir": "1990-01-01", "kode_wilayah": "32.71.01.1001"}


def staged(tmp_path, standard, records: list[dict]):
    """Records as the pipeline stages them: a Parquet file in the table's shape."""
    path = tmp_path / f"staged-{len(list(tmp_path.glob('staged-*')))}.parquet"
    schema = storage.file_schema(standard)
    pq.write_table(storage.conform(pa.Table.from_pylist(records), schema), path)
    return path


def test_a_compatible_version_evolves_the_integrated_table_in_place(tmp_path, catalog_url):
    settings = Settings(home=tmp_path, catalog_url=catalog_url, registry=ROOT / "connectors" / "registry")
    old, new = load_standard("penduduk@1.0.0"), load_standard("penduduk@1.1.0")
    first = storage.commit_source(settings, "siak", old, staged(tmp_path, old, [RECORD]), "run-1", False, "a")
    before = storage.commit_integrated(settings, old, {"siak": first}, "run-2")
    after = storage.commit_integrated(settings, new, {"siak": first}, "run-3")
    assert after != before

    current = storage.read_table(settings, storage.INTEGRATED, "penduduk")
    # The fields 1.1.0 adds are appended: the files written before stay valid.
    assert current.column_names[-3:] == ["_source", "status_perkawinan", "alamat"]
    assert current.to_pylist()[0]["status_perkawinan"] is None  # the source is still on 1.0.0
    # The source's own table evolves too when it moves to the new version.
    moved = storage.commit_source(settings, "siak", new, staged(tmp_path, new, [{**RECORD, "status_perkawinan": "2"}]),
                                  "run-4", False, "b")
    assert moved != first
    assert storage.read_table(settings, storage.HARMONIZED, "siak").to_pylist()[0]["status_perkawinan"] == "2"
    assert storage.read_table(settings, storage.HARMONIZED, "siak", first).column_names == list(RECORD)
    past = storage.read_table(settings, storage.INTEGRATED, "penduduk", before)
    assert past.num_rows == 1 and past.to_pylist()[0]["nik"] == RECORD["nik"]


def test_publishing_the_same_content_again_makes_no_snapshot(tmp_path, catalog_url):
    settings = Settings(home=tmp_path, catalog_url=catalog_url, registry=ROOT / "connectors" / "registry")
    standard = load_standard("penduduk@1.0.0")
    records = staged(tmp_path, standard, [RECORD])
    first = storage.commit_source(settings, "siak", standard, records, "run-1", False, "digest-1")
    again = storage.commit_source(settings, "siak", standard, records, "run-2", False, "digest-1")
    changed = storage.commit_source(settings, "siak", standard, records, "run-3", False, "digest-2")
    assert again == first and changed != first


def snapshots(settings, identifier: str) -> list:
    table = storage.iceberg_catalog(settings.catalog_url, settings.warehouse.as_uri()).load_table(identifier)
    return table.metadata.snapshots


def test_a_full_publish_is_one_snapshot_holding_exactly_the_new_records(tmp_path, catalog_url):
    settings = Settings(home=tmp_path, catalog_url=catalog_url, registry=ROOT / "connectors" / "registry")
    standard = load_standard("penduduk@1.0.0")
    other = {**RECORD, "nik": "3271010101900002", "nama": "BUDI SANTOSO"}
    first = storage.commit_source(settings, "siak", standard, staged(tmp_path, standard, [RECORD]), "run-1", False, "a")
    second = storage.commit_source(settings, "siak", standard, staged(tmp_path, standard, [other]), "run-2", False, "b")
    # What an outside engine reading the history sees: one version per publish, never an empty one between.
    history = snapshots(settings, f"{storage.HARMONIZED}.siak")
    assert [s.snapshot_id for s in history] == [first, second]
    assert [s.summary["total-records"] for s in history] == ["1", "1"]
    assert history[1].summary.operation.value == "overwrite" and history[1].parent_snapshot_id == first
    assert storage.read_table(settings, storage.HARMONIZED, "siak").column("nama").to_pylist() == ["BUDI SANTOSO"]
    assert storage.read_table(settings, storage.HARMONIZED, "siak", first).column("nama").to_pylist() == ["SITI AMINAH"]
    # The first version's content again: its file is reused, and still one snapshot.
    third = storage.commit_source(settings, "siak", standard, staged(tmp_path, standard, [RECORD]), "run-3", False, "a")
    assert len(snapshots(settings, f"{storage.HARMONIZED}.siak")) == 3
    assert storage.data_files(settings, f"{storage.HARMONIZED}.siak", third).files == \
        storage.data_files(settings, f"{storage.HARMONIZED}.siak", first).files

    one = storage.commit_integrated(settings, standard, {"siak": first}, "run-4")
    two = storage.commit_integrated(settings, standard, {"siak": second}, "run-5")
    empty = storage.commit_integrated(settings, standard, {"siak": None}, "run-6")
    history = snapshots(settings, f"{storage.INTEGRATED}.penduduk")
    assert [s.snapshot_id for s in history] == [one, two, empty]
    assert [s.summary["total-records"] for s in history] == ["1", "1", "0"]
    assert storage.read_table(settings, storage.INTEGRATED, "penduduk", two).column("nama").to_pylist() == \
        ["BUDI SANTOSO"]


def test_a_public_table_takes_one_snapshot_per_version_and_starts_anew_when_its_rules_change(tmp_path, catalog_url):
    settings = Settings(home=tmp_path, catalog_url=catalog_url, registry=ROOT / "connectors" / "registry")

    def rows(names: list[str], column: str = "nama") -> pa.RecordBatchReader:
        return pa.Table.from_pylist([{"kode": str(i), column: n} for i, n in enumerate(names)]).to_reader()

    masked = '[["kode", "plain"], ["nama", "masked"]]'
    first = storage.commit_public(settings, "warga", rows(["***", "***"]), masked, "11", "penduduk@1.0.0", "run-1")
    again = storage.commit_public(settings, "warga", rows(["***", "***"]), masked, "11", "penduduk@1.0.0", "run-2")
    second = storage.commit_public(settings, "warga", rows(["***"]), masked, "12", "penduduk@1.0.0", "run-3")
    assert again == first
    history = snapshots(settings, f"{storage.PUBLIC}.warga")
    assert [s.snapshot_id for s in history] == [first, second]
    assert [s.summary["total-records"] for s in history] == ["2", "1"]
    assert history[1].summary.operation.value == "overwrite"

    # The name is shown plain from now on: no snapshot written under the old rules may stay readable beside it.
    plain = '[["kode", "plain"], ["nama", "plain"]]'
    third = storage.commit_public(settings, "warga", rows(["SITI AMINAH"]), plain, "12", "penduduk@1.0.0", "run-4")
    assert [s.snapshot_id for s in snapshots(settings, f"{storage.PUBLIC}.warga")] == [third]
    assert storage.read_table(settings, storage.PUBLIC, "warga").to_pylist() == [{"kode": "0", "nama": "SITI AMINAH"}]

    assert storage.drop_public(settings, "warga") and not storage.drop_public(settings, "warga")
    assert (storage.PUBLIC, "warga") not in storage.iceberg_catalog(
        settings.catalog_url, settings.warehouse.as_uri()).list_tables(storage.PUBLIC)


def test_an_integration_rewrites_only_the_sources_that_changed(tmp_path, catalog_url):
    settings = Settings(home=tmp_path, catalog_url=catalog_url, registry=ROOT / "connectors" / "registry")
    old, new = load_standard("penduduk@1.0.0"), load_standard("penduduk@1.1.0")
    other = {**RECORD, "nik": "3271010101900002", "nama": "BUDI SANTOSO"}
    siak = storage.commit_source(settings, "siak", old, staged(tmp_path, old, [RECORD]), "run-1", False, "a")
    dtks = storage.commit_source(settings, "dtks", old, staged(tmp_path, old, [other]), "run-2", False, "b")
    integrated = f"{storage.INTEGRATED}.penduduk"

    def files(snapshot) -> dict[str, list[str]]:
        """Per source, the integrated version's files holding its records."""
        found: dict[str, list[str]] = {}
        for path in storage.data_files(settings, integrated, snapshot).files:
            sources = set(pq.read_table(path, columns=["_source"])["_source"].to_pylist())
            assert len(sources) == 1, path  # a file holds one source's records
            found.setdefault(sources.pop(), []).append(path)
        return found

    def content(snapshot) -> list[tuple]:
        rows = storage.read_table(settings, storage.INTEGRATED, "penduduk", snapshot).to_pylist()
        return sorted((r["_source"], r["nik"], r["nama"]) for r in rows)

    first = storage.commit_integrated(settings, old, {"siak": siak, "dtks": dtks}, "run-3")
    before = files(first)
    assert set(before) == {"siak", "dtks"}

    # DTKS publishes again: SIAK's part of the integrated dataset stays as it was written, DTKS's is new.
    renamed = storage.commit_source(settings, "dtks", old, staged(tmp_path, old, [{**other, "nama": "BUDI S"}]),
                                    "run-4", False, "c")
    second = storage.commit_integrated(settings, old, {"siak": siak, "dtks": renamed}, "run-5")
    after = files(second)
    assert after["siak"] == before["siak"] and not set(after["dtks"]) & set(before["dtks"])
    assert content(second) == [("dtks", other["nik"], "BUDI S"), ("siak", RECORD["nik"], "SITI AMINAH")]
    assert content(first) == [("dtks", other["nik"], "BUDI SANTOSO"), ("siak", RECORD["nik"], "SITI AMINAH")]

    # A source that leaves takes its records with it; one with nothing published has no file.
    third = storage.commit_integrated(settings, old, {"siak": siak, "dtks": None}, "run-6")
    assert files(third) == {"siak": before["siak"]}
    assert snapshots(settings, integrated)[-1].summary["total-records"] == "1"

    # A new version of the standard writes every source's part again, in the new shape.
    fourth = storage.commit_integrated(settings, new, {"siak": siak, "dtks": renamed}, "run-7")
    rewritten = files(fourth)
    assert set(rewritten) == {"siak", "dtks"} and not set(rewritten["siak"]) & set(before["siak"])
    assert content(fourth) == content(second)
