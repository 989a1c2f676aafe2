"""The audit log: appends form one hash chain, `hub audit verify` names tampering, who accessed a dataset."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
import sys

import httpx
import pytest
from sqlalchemy import text

from _served import hub, serve
from catalog.audit import AuditEntry, _hash, record, verify, who_accessed
from catalog.db import Dataset, engine, init_db, session
from catalog.identity import create_user
from hub.settings import ROOT, Settings

NIK = "3271012304850007"


@pytest.fixture(scope="module")
def hub_home(tmp_path_factory):
    """A hub home made by `hub init`; each test points it at its own catalog through HUB_CATALOG_URL."""
    home = tmp_path_factory.mktemp("audit-home")
    hub(home, "init", "--quiet")
    return home


@pytest.fixture
def settings(hub_home, catalog_url) -> Settings:
    return Settings(home=hub_home, catalog_url=catalog_url, registry=ROOT / "connectors" / "registry")


def audit(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    return hub(settings.home, "audit", *args, check=False, env={"HUB_CATALOG_URL": settings.catalog_url})


def sql(settings: Settings, statement: str, **params) -> list:
    with engine(settings.catalog_url).begin() as conn:
        result = conn.execute(text(statement), params)
        return result.mappings().all() if result.returns_rows else []


def test_verify_passes_an_intact_log_and_names_the_first_changed_or_missing_entry(settings):
    for i in range(6):
        record(settings, f"analis{i}", "analyst", "rows.read", dataset="penduduk",
               details={"columns": ["kode_wilayah"], "rows": i}, client="10.0.0.7")

    done = audit(settings, "verify")
    assert done.returncode == 0, done.stderr
    assert "6 entries" in done.stdout

    sql(settings, "UPDATE hub_audit_log SET actor = 'someone_else' WHERE seq = 3")
    done = audit(settings, "verify")
    assert done.returncode == 1
    assert "entry 3: changed" in done.stderr
    sql(settings, "UPDATE hub_audit_log SET actor = 'analis2' WHERE seq = 3")
    assert audit(settings, "verify").returncode == 0

    for seq, named in ((4, "entry 5: missing before"), (6, "entry 6: missing at end")):
        row = {k: json.dumps(v) if isinstance(v, dict) else v
               for k, v in sql(settings, "SELECT * FROM hub_audit_log WHERE seq = :seq", seq=seq)[0].items()}
        sql(settings, "DELETE FROM hub_audit_log WHERE seq = :seq", seq=seq)
        done = audit(settings, "verify")
        assert done.returncode == 1
        assert named in done.stderr
        sql(settings, f"INSERT INTO hub_audit_log ({', '.join(row)}) VALUES ({', '.join(':' + k for k in row)})",
            **row)
        assert audit(settings, "verify").returncode == 0


def test_a_rewritten_entry_with_a_recomputed_hash_breaks_the_link_to_the_next(settings):
    for _ in range(3):
        record(settings, "walidata", "steward", "standard.change", details={"standard": "penduduk@1.1.0"})
    with session(settings.catalog_url) as s:
        entry = s.get(AuditEntry, 2)
        entry.actor = "someone_else"
        entry.hash = _hash(entry)
        s.commit()
    assert verify(settings) == {"ok": False, "entries": 3, "first_bad": 3, "problem": "unlinked"}


def test_concurrent_appends_from_four_processes_keep_one_chain(settings):
    worker = ("import sys\nfrom catalog.audit import record\nfrom hub.settings import Settings\n"
              "settings = Settings(home=None, catalog_url=sys.argv[1], registry=None)\n"
              "for i in range(50):\n"
              "    record(settings, sys.argv[2], 'system', 'download', dataset='penduduk', details={'i': i})\n")
    record(settings, "system", "system", "source.register", details={"source": "disdukcapil_siak"})
    workers = [subprocess.Popen([sys.executable, "-c", worker, settings.catalog_url, f"worker{n}"], cwd=ROOT,
                                stderr=subprocess.PIPE, text=True) for n in range(4)]
    for w in workers:
        assert w.wait(timeout=300) == 0, w.stderr.read()[-3000:]

    assert verify(settings) == {"ok": True, "entries": 201}
    rows = sql(settings, "SELECT seq, actor FROM hub_audit_log ORDER BY seq")
    assert [r["seq"] for r in rows] == list(range(1, 202))
    assert sorted(r["actor"] for r in rows[1:]) == sorted(f"worker{n}" for n in range(4) for _ in range(50))


def test_who_accessed_lists_only_reads_of_that_dataset(settings):
    record(settings, "analis", "analyst", "rows.read", dataset="penduduk", details={"columns": ["nik"], "rows": 10},
           client="10.1.1.1")
    record(settings, "anonymous", "public", "download", dataset="dtks", client="10.1.1.2")
    record(settings, "analis", "analyst", "sql.query", details={"sql": "SELECT 1", "datasets": ["penduduk", "dtks"]})
    record(settings, "analis", "analyst", "sql.query", details={"sql": "SELECT 2", "datasets": ["penduduk_agregat"]})
    record(settings, "walidata", "steward", "standard.change", dataset="penduduk")
    later = dt.datetime.now(dt.timezone.utc)
    record(settings, "anonymous", "public", "download", dataset="penduduk", client="10.1.1.3")

    found = who_accessed(settings, "penduduk")
    assert [(e["seq"], e["actor"], e["action"], e["client"]) for e in found] == [
        (1, "analis", "rows.read", "10.1.1.1"), (3, "analis", "sql.query", None),
        (6, "anonymous", "download", "10.1.1.3")]
    assert found[0]["details"] == {"columns": ["nik"], "rows": 10}
    assert found[1]["details"] == {"datasets": ["penduduk", "dtks"]}

    done = audit(settings, "who-accessed", "penduduk", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == found
    assert who_accessed(settings, "penduduk", since=later) == found[-1:]


def test_sql_text_is_never_stored_only_its_hash_and_length(settings):
    query = f"SELECT nama FROM penduduk WHERE nik = '{NIK}'"
    record(settings, "analis", "analyst", "sql.query", details={"sql": query, "datasets": ["penduduk"], "rows": 1})

    stored = sql(settings, "SELECT * FROM hub_audit_log")
    assert NIK not in repr([dict(r) for r in stored])
    details = stored[0]["details"]
    details = json.loads(details) if isinstance(details, str) else details
    assert details == {"datasets": ["penduduk"], "rows": 1, "sql_length": len(query),
                       "sql_sha256": hashlib.sha256(query.encode()).hexdigest()}
    listed = audit(settings, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert NIK not in listed.stdout and json.loads(listed.stdout)[0]["action"] == "sql.query"
    assert verify(settings)["ok"]


def test_access_log_endpoint_through_hub_serve(settings):
    init_db(settings.catalog_url)
    with session(settings.catalog_url) as s:
        s.add(Dataset(id="penduduk", kind="integrated", title="Penduduk", standard="penduduk",
                      standard_version="1.0.0", classification="terbatas", table_identifier="hub.penduduk"))
        s.add(Dataset(id="dtks", kind="harmonized", title="DTKS", standard="penduduk", standard_version="1.0.0",
                      classification="terbatas", table_identifier="hub.dtks", agency_code="dinsos"))
        s.commit()
    record(settings, "analis", "analyst", "rows.read", dataset="penduduk", details={"rows": 5}, client="10.2.2.2")
    record(settings, "anonymous", "public", "download", dataset="dtks")
    _, walidata = create_user(settings, "walidata", "steward")
    _, dinsos = create_user(settings, "dinsos", "agency", agency="dinsos")
    _, disdik = create_user(settings, "disdik", "agency", agency="disdik")
    _, analyst = create_user(settings, "analis2", "analyst")

    def log(dataset: str, token: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.get(f"{base}/api/datasets/{dataset}/access-log", headers=headers, timeout=10)

    server, base = serve(settings.home, env={"HUB_CATALOG_URL": settings.catalog_url})
    try:
        answer = log("penduduk", walidata)
        assert answer.status_code == 200, answer.text
        assert answer.json()["dataset"] == "penduduk"
        assert [(e["actor"], e["action"], e["client"]) for e in answer.json()["entries"]] == [
            ("analis", "rows.read", "10.2.2.2")]
        assert log("no_such", walidata).status_code == 404
        # Who accessed a dataset is for the agency that owns it and the stewards, nobody else.
        assert [e["action"] for e in log("dtks", dinsos).json()["entries"]] == ["download"]
        assert log("dtks").status_code == 401
        assert log("dtks", disdik).status_code == log("dtks", analyst).status_code == 403
        assert log("penduduk", dinsos).status_code == 403  # no agency owns an integrated dataset
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_registrations_and_standards_are_logged_when_added_changed_or_removed(tmp_path):
    """Each version of a source registration (a file) is in the log from the first hub command that acts on it."""
    import shutil

    registry = tmp_path / "registry"
    shutil.copytree(ROOT / "connectors" / "registry", registry)
    env = {"HUB_REGISTRY": str(registry)}
    hub(tmp_path, "init", "--quiet", env=env)

    def logged() -> list[tuple]:
        entries = json.loads(hub(tmp_path, "audit", "list", "--limit", "1000", "--json", env=env).stdout)
        return [(e["action"], e["details"]["file"], e["actor"]) for e in entries
                if e["action"].startswith(("source.", "standard."))]

    first = logged()
    registered = {f for action, f, _ in first if action == "source.register"}
    assert registered == {p.name for p in registry.glob("*.yaml")}
    assert {f for action, f, _ in first if action == "standard.add"} == {
        p.name for p in (ROOT / "schemas" / "standards").glob("*.json")}
    hub(tmp_path, "sources", "new", "file", "kelurahan_x", "--standard", "penduduk", "--agency", "kelurahan", env=env)
    (registry / "dinkes_faskes.yaml").write_text((registry / "dinkes_faskes.yaml").read_text() + "\n# reviewed\n")
    (registry / "dinsos_bansos.yaml").unlink()
    hub(tmp_path, "init", "--quiet", env=env)
    changes = logged()[len(first):]
    assert sorted((a, f) for a, f, _ in changes) == [
        ("source.change", "dinkes_faskes.yaml"), ("source.register", "kelurahan_x.yaml"),
        ("source.remove", "dinsos_bansos.yaml")]
    hub(tmp_path, "init", "--quiet", env=env)
    assert len(logged()) == len(first) + 3  # nothing new: nothing logged twice
    assert hub(tmp_path, "audit", "verify", env=env).returncode == 0
