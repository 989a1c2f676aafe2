"""Backup and restore: a demo hub backed up while it serves, restored into a new home elsewhere with the old one
deleted, serves the same catalog (datasets, versions, rows, downloads, history); damaged archives and homes that
hold a hub already are refused."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from _served import HUB, hub, hub_env, serve

SOURCE = "dinsos_dtks"


def build_home(home: Path, env: dict) -> dict:
    """A demo home where dinsos_dtks has two versions (the agency's second export lacks ten records) and
    disdukcapil_siak one; a steward's and an analyst's token. Returns the two runs of dinsos_dtks and the tokens."""
    from demo.agencies import build

    build(home, people_count=480, dinsos_count=120)
    first = json.loads(hub(home, "run", SOURCE, "--json", env=env).stdout)
    export = home / "demo" / "dinsos" / "dtks_penduduk.csv"
    lines = export.read_bytes().split(b"\r\n")
    export.write_bytes(b"\r\n".join(lines[:1] + lines[11:]))
    second = json.loads(hub(home, "run", SOURCE, "--json", env=env).stdout)
    hub(home, "run", "disdukcapil_siak", env=env)
    tokens = {}
    for name, role in (("walidata", "steward"), ("analis", "analyst")):
        created = hub(home, "users", "create", name, "--role", role, env=env).stdout
        tokens[name] = {"Authorization": "Bearer " + re.search(r"hub_[0-9a-f]{12}_[\w-]+", created)[0]}
    return {"first": first, "second": second, "tokens": tokens}


def served_state(base: str, tokens: dict, older: int) -> dict:
    """What the portal and API answer about everything a backup must keep, as the steward and the analyst see it."""
    steward, analyst = tokens["walidata"], tokens["analis"]

    def get(path: str, headers: dict, **params):
        response = httpx.get(base + path, headers=headers, params=params, timeout=60)
        assert response.status_code == 200, (path, response.status_code, response.text[:500])
        return response

    datasets = get("/api/datasets", steward).json()["datasets"]
    state = {"datasets": datasets, "described": {}, "rows": {}}
    for d in datasets:
        state["described"][d["id"]] = get(f"/api/datasets/{d['id']}", steward).json()
        # The analyst sees NIKs as pseudonyms: the same pseudonyms only under the same key (secrets/).
        state["rows"][d["id"]] = get(f"/api/datasets/{d['id']}/rows", analyst, limit=1000)
    state["rows"] = {k: v.json() for k, v in state["rows"].items()}
    state["older"] = get(f"/api/datasets/{SOURCE}/rows", analyst, version=str(older), limit=1000).json()
    state["download"] = get("/api/datasets/penduduk/download.csv", analyst).content
    state["parquet"] = get(f"/api/datasets/{SOURCE}/download.parquet", steward).content
    state["search"] = get("/api/search", steward, q="penduduk").json()
    state["quarantine"] = get(f"/api/datasets/{SOURCE}/quarantine", steward).json()
    sql = httpx.post(base + "/api/sql", headers=analyst, timeout=60,
                     json={"sql": "SELECT kode_wilayah, count(*) AS n FROM penduduk GROUP BY 1 ORDER BY 1"})
    assert sql.status_code == 200, sql.text[:500]
    state["sql"] = sql.json()["rows"]
    # The dataset's page, as the public sees it (its examples name the server, which differs).
    state["portal"] = re.sub(r"\s+", " ", get(f"/dataset/{SOURCE}", {}).text).replace(base, "BASE")
    return state


def served(home: Path, env: dict, tokens: dict, older: int) -> dict:
    server, base = serve(home, env=env)
    try:
        return served_state(base, tokens, older)
    finally:
        server.terminate()
        server.wait(timeout=30)


def only_new_locations(catalog_url: str, home: Path, gone: Path) -> int:
    """Every location Iceberg records, as an outside reader finds them (the catalog's pointers, the metadata
    JSON, manifest lists and manifests, read by pyiceberg itself), is in `home`'s warehouse and none names `gone`.
    Returns how many were looked at."""
    from pyiceberg.table import StaticTable

    warehouse = (home / "warehouse").as_uri() + "/"
    engine = create_engine(catalog_url, poolclass=NullPool)
    with engine.connect() as conn:
        pointers = conn.execute(text("SELECT metadata_location, previous_metadata_location FROM iceberg_tables")).all()
    engine.dispose()
    seen = 0
    for current, previous in pointers:
        assert current.startswith(warehouse) and (previous is None or previous.startswith(warehouse))
        table = StaticTable.from_metadata(current)
        metadata = Path(current.removeprefix("file://")).read_text()
        assert str(gone) not in metadata and table.location().startswith(warehouse.rstrip("/"))
        for entry in table.metadata.metadata_log:
            assert entry.metadata_file.startswith(warehouse)
        for snapshot in table.metadata.snapshots:
            assert snapshot.manifest_list.startswith(warehouse)
            for manifest in snapshot.manifests(table.io):
                assert manifest.manifest_path.startswith(warehouse)
                assert manifest.manifest_length == Path(manifest.manifest_path.removeprefix("file://")).stat().st_size
                for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=False):
                    assert entry.data_file.file_path.startswith(warehouse)
                    seen += 1
    return seen


def test_a_restored_home_elsewhere_serves_the_same_catalog(tmp_path, catalog_url, request):
    postgres = catalog_url.startswith("postgresql")
    old = tmp_path / "city" / "hub"
    # SQLite: the default catalog inside the home, whose path (and URL) moves with it.
    old_env = {"HUB_CATALOG_URL": catalog_url} if postgres else {}
    made = build_home(old, old_env)
    first, second, tokens = made["first"]["snapshot_id"], made["second"]["snapshot_id"], made["tokens"]
    assert first != second and made["second"]["rows_published"] < made["first"]["rows_published"]

    archive = tmp_path / "backups" / "hub.tar.gz"
    archive.parent.mkdir()
    server, base = serve(old, env=old_env)
    try:
        before = served_state(base, tokens, first)
        # Backed up while the hub serves.
        backed_up = json.loads(hub(old, "backup", str(archive), "--json", env=old_env).stdout)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert backed_up["source"]["catalog_kind"] == ("postgresql" if postgres else "sqlite")
    by_id = {d["id"]: d for d in backed_up["datasets"]}
    assert by_id[SOURCE]["snapshot_id"] == second and by_id[SOURCE]["versions"] == 2
    assert {d["id"]: d["snapshot_id"] for d in before["datasets"]} == {i: d["snapshot_id"] for i, d in by_id.items()}
    assert archive.stat().st_mode & 0o777 == 0o600  # personal data and keys
    listed = {m.name for m in tarfile.open(archive)}
    assert {"manifest.json", "catalog/catalog.sqlite", "secrets/audit.key", "secrets/pseudonym.key"} <= listed
    assert not any(name.startswith(("airflow/", "demo/", "staging/")) for name in listed)

    shutil.rmtree(old)
    if postgres:
        request.getfixturevalue("postgres").drop_database(make_url(catalog_url).database)
    assert not old.exists()

    # Another folder, another path length, another catalog database.
    new = tmp_path / "another-machine" / "srv" / "interop-hub-restored"
    server_pg = request.getfixturevalue("postgres")  # for the other kind of catalog too, below
    new_env = {}
    if postgres:
        new_env["HUB_CATALOG_URL"] = server_pg.create_database("restored_backup_test")
        request.addfinalizer(lambda: server_pg.drop_database("restored_backup_test"))
    restored = json.loads(hub(new, "restore", str(archive), "--json", env=new_env).stdout)
    assert restored["relocated"]["from"] == (old / "warehouse").as_uri()
    assert restored["relocated"]["to"] == (new / "warehouse").as_uri()
    assert restored["checked"]["snapshots"] >= 4 and restored["checked"]["datasets"] == len(before["datasets"])

    after = served(new, new_env, tokens, first)
    for part in before:
        assert after[part] == before[part], part
    # The older version is the first export's rows, read from the restored warehouse.
    assert before["older"]["total"] == made["first"]["rows_published"] != before["rows"][SOURCE]["total"]

    assert only_new_locations(new_env.get("HUB_CATALOG_URL") or f"sqlite:///{new / 'catalog.db'}", new, old) >= 4
    # The audit chain continues under the restored key, the witness renamed for the new catalog database.
    assert "audit log intact" in hub(new, "audit", "verify", env=new_env).stdout
    counted = hub(new, "query", f"SELECT count(*) AS n FROM {SOURCE}", "--format", "json", env=new_env).stdout
    assert json.loads(counted) == [{"n": made["second"]["rows_published"]}]

    # A hub lives there now: a second restore is refused, and changes nothing.
    refused = hub(new, "restore", str(archive), env=new_env, check=False)
    assert refused.returncode == 2 and "already has a catalog" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr

    # The same archive into the other kind of catalog database.
    other = tmp_path / "other-kind"
    other_env = {} if postgres else {"HUB_CATALOG_URL": server_pg.create_database("restored_other_kind")}
    if not postgres:
        request.addfinalizer(lambda: server_pg.drop_database("restored_other_kind"))
    crossed = json.loads(hub(other, "restore", str(archive), "--json", env=other_env).stdout)
    assert crossed["catalog"]["to"] == ("sqlite" if postgres else "postgresql")
    assert served(other, other_env, tokens, first) == before


def test_backups_taken_while_a_source_publishes_each_restore_whole(tmp_path):
    """The catalog is copied before the warehouse, the audit witness before the catalog: whatever a publish running
    meanwhile has done, every archive restores into a hub whose catalog, files and audit chain agree."""
    from demo.agencies import build

    home = tmp_path / "busy"
    build(home, people_count=480, dinsos_count=120)
    before = json.loads(hub(home, "run", SOURCE, "--json").stdout)["snapshot_id"]
    export = home / "demo" / "dinsos" / "dtks_penduduk.csv"
    lines = export.read_bytes().split(b"\r\n")
    export.write_bytes(b"\r\n".join(lines[:1] + lines[21:]))
    publishing = subprocess.Popen([HUB, "run", SOURCE], env=hub_env(home), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
    archives = []
    while publishing.poll() is None or not archives:
        archives.append(tmp_path / f"during-{len(archives)}.tar")
        hub(home, "backup", str(archives[-1]))
    assert publishing.wait() == 0
    archives.append(tmp_path / "after.tar")
    hub(home, "backup", str(archives[-1]))
    versions = []
    for archive in archives:
        restored_home = tmp_path / archive.stem
        # restore() reads every snapshot's files back from the new warehouse and fails if one is missing.
        restored = json.loads(hub(restored_home, "restore", str(archive), "--json").stdout)
        versions.append({d["id"]: d["snapshot_id"] for d in restored["datasets"]}[SOURCE])
        assert "audit log intact" in hub(restored_home, "audit", "verify").stdout, archive.name
    assert versions[0] in (before, versions[-1]) and versions[-1] != before and len(archives) >= 3


@pytest.fixture(scope="module")
def small_backup(tmp_path_factory) -> Path:
    """A backup of a demo home (SQLite) where one source ran."""
    from demo.agencies import build

    home = tmp_path_factory.mktemp("small") / "home"
    build(home, people_count=120, dinsos_count=40)
    hub(home, "run", SOURCE)
    archive = home.parent / "small.tar.gz"
    hub(home, "backup", str(archive))
    return archive


def test_a_restored_hub_keeps_publishing(small_backup, tmp_path):
    """New versions go into the restored tables, in the new warehouse, after the versions restored."""
    from demo.agencies import build

    home = tmp_path / "restored"
    hub(home, "restore", str(small_backup))
    build(home, people_count=120, dinsos_count=60)  # the agency's next, larger export
    published = json.loads(hub(home, "run", SOURCE, "--json").stdout)["rows_published"]
    created = hub(home, "users", "create", "walidata", "--role", "steward").stdout
    steward = {"Authorization": "Bearer " + re.search(r"hub_[0-9a-f]{12}_[\w-]+", created)[0]}
    server, base = serve(home)
    try:
        versions = httpx.get(f"{base}/api/datasets/{SOURCE}/versions", headers=steward, timeout=30).json()["versions"]
        totals = [httpx.get(f"{base}/api/datasets/{SOURCE}/rows", headers=steward, timeout=30,
                            params={"version": str(v["snapshot_id"]), "limit": 1}).json()["total"] for v in versions]
        # Newest first: the new version, then the restored one, each with its own rows.
        assert totals == [published, versions[1]["rows"]] and published > versions[1]["rows"]
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert only_new_locations(f"sqlite:///{home / 'catalog.db'}", home, small_backup.parent / "home") >= 2
    assert "audit log intact" in hub(home, "audit", "verify").stdout


def altered(archive: Path, target: Path, member: str) -> Path:
    """A copy of `archive` where one byte of `member` is changed (the manifest as it was)."""
    with tarfile.open(archive) as source, tarfile.open(target, "w:gz") as out:
        for info in source:
            content = source.extractfile(info).read()
            if info.name == member:
                content = content[:100] + bytes([content[100] ^ 1]) + content[101:]
            out.addfile(info, io.BytesIO(content))
    return target


def test_an_altered_member_is_named_and_nothing_is_restored(small_backup, tmp_path):
    with tarfile.open(small_backup) as tar:
        member = next(m.name for m in tar if m.name.endswith(".parquet"))
    damaged = altered(small_backup, tmp_path / "damaged.tar.gz", member)
    home = tmp_path / "new-home"
    done = hub(home, "restore", str(damaged), check=False)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"the member {member} does not match its sha256" in done.stderr and "nothing was restored" in done.stderr
    assert not (home / "catalog.db").exists() and not (home / "warehouse").exists()
    assert not any(p.name.startswith(".hub-restore-") for p in home.iterdir())
    # The same home takes the good archive afterwards.
    hub(home, "restore", str(small_backup))
    assert json.loads(hub(home, "catalog", "list", "--json").stdout)


def test_a_truncated_archive_is_refused(small_backup, tmp_path):
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(small_backup.read_bytes()[: small_backup.stat().st_size // 2])
    done = hub(tmp_path / "home", "restore", str(cut), check=False)
    assert done.returncode == 2 and "not a readable hub backup" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "home" / "catalog.db").exists()


def test_a_home_with_a_warehouse_or_secrets_is_refused(small_backup, tmp_path):
    with_warehouse = tmp_path / "a"
    (with_warehouse / "warehouse" / "harmonized").mkdir(parents=True)
    (with_warehouse / "warehouse" / "harmonized" / "x.parquet").write_bytes(b"x")
    done = hub(with_warehouse, "restore", str(small_backup), check=False)
    assert done.returncode == 2 and "already has a warehouse" in done.stderr
    with_secrets = tmp_path / "b"
    (with_secrets / "secrets").mkdir(parents=True)
    (with_secrets / "secrets" / "pseudonym.key").write_text("0" * 64)
    done = hub(with_secrets, "restore", str(small_backup), check=False)
    assert done.returncode == 2 and "already has the secrets of a hub" in done.stderr and "0" * 64 not in done.stderr


def test_backup_refuses_to_overwrite_or_to_write_into_the_warehouse(small_backup, tmp_path):
    home = tmp_path / "home"
    hub(home, "restore", str(small_backup))
    done = hub(home, "backup", str(small_backup), check=False)
    assert done.returncode == 2 and "never overwrites" in done.stderr
    done = hub(home, "backup", str(home / "warehouse" / "b.tar.gz"), check=False)
    assert done.returncode == 2 and "inside the warehouse" in done.stderr
    # A folder gets a named archive; a backup of a restored home restores too.
    made = json.loads(hub(home, "backup", str(tmp_path), "--json").stdout)
    assert Path(made["archive"]).parent == tmp_path and made["archive"].endswith(".tar.gz")
    hub(tmp_path / "again", "restore", made["archive"])
