"""The audit log: appends form one keyed chain, `hub audit verify` names tampering, who accessed a dataset."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import stat
import subprocess
import sys

import httpx
import pytest
from sqlalchemy import select, text

from _served import hub, serve
from catalog.audit import AuditEntry, record, verify, who_accessed
from catalog.db import Dataset, engine, init_db, session
from catalog.identity import create_user
from hub.settings import ROOT, Settings

NIK = "3271012304850007"
GENESIS = "0" * 64


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


# --- what someone who can write the catalog database, but has not the key, does -----------------------------

def canonical(value) -> str:
    """An entry's fields as the hub serializes them before hashing (the code is public: catalog/audit.py)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def fields(e: AuditEntry, prev_hash: str) -> dict:
    return {"seq": e.seq, "at": e.at.isoformat(timespec="microseconds"), "actor": e.actor, "role": e.role,
            "action": e.action, "dataset": e.dataset, "details": e.details, "client": e.client,
            "prev_hash": prev_hash}


def plain_sha256(message: bytes) -> str:
    return hashlib.sha256(message).hexdigest()


def another_key(message: bytes) -> str:
    return hmac.new(b"a key of the intruder's own", message, hashlib.sha256).hexdigest()


def entries_of(settings: Settings) -> list[AuditEntry]:
    with session(settings.catalog_url) as s:
        return s.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all()


def rewrite_chain(settings: Settings, digest, edit_seq: int, start: int = 1, stop: int | None = None) -> None:
    """Change entry `edit_seq`'s actor, then recompute the hash and link of every entry from `start` (to `stop`,
    else to the end, and the head), in SQL: a chain as consistent as one can make it without the hub's key."""
    entries = entries_of(settings)
    prev = GENESIS if start == 1 else entries[start - 2].hash
    for e in entries[start - 1:stop]:
        if e.seq == edit_seq:
            e.actor = "someone_else"
        digest_of = digest(canonical(fields(e, prev)).encode())
        sql(settings, "UPDATE hub_audit_log SET actor = :actor, prev_hash = :prev, hash = :h WHERE seq = :seq",
            actor=e.actor, prev=prev, h=digest_of, seq=e.seq)
        prev = digest_of
    if stop is None:
        sql(settings, "UPDATE hub_audit_head SET seq = :seq, hash = :h", seq=entries[-1].seq, h=prev)


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


def test_entries_are_macs_under_a_key_kept_in_the_home_never_in_the_catalog(tmp_path, catalog_url):
    settings = Settings(home=tmp_path, catalog_url=catalog_url, registry=ROOT / "connectors" / "registry")
    for i in range(3):
        record(settings, "walidata", "steward", "standard.change", details={"standard": f"penduduk@1.{i}.0"})

    key_file = tmp_path / "secrets" / "audit.key"
    assert key_file.exists() and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text().strip().encode()
    entries = entries_of(settings)
    for e in entries:
        message = canonical(fields(e, e.prev_hash)).encode()
        assert e.hash == hmac.new(key, message, hashlib.sha256).hexdigest() != plain_sha256(message)
    stored = repr(sql(settings, "SELECT * FROM hub_audit_log")) + repr(sql(settings, "SELECT * FROM hub_audit_head"))
    assert key.decode() not in stored
    # The witness of the last entry, outside the catalog next to the key: what a cut tail is checked against.
    [witness] = (tmp_path / "secrets").glob("audit-*.witness")
    assert stat.S_IMODE(witness.stat().st_mode) == 0o600
    assert json.loads(witness.read_text())["seq"] == 3 and json.loads(witness.read_text())["mac"] == entries[-1].hash


def test_the_key_may_come_from_the_environment_and_verify_needs_that_key(tmp_path, catalog_url, monkeypatch):
    settings = Settings(home=tmp_path, catalog_url=catalog_url, registry=ROOT / "connectors" / "registry")
    monkeypatch.setenv("HUB_AUDIT_KEY", "k" * 64)
    for _ in range(2):
        record(settings, "walidata", "steward", "user.create", details={"user": "analis"})
    assert not (tmp_path / "secrets" / "audit.key").exists()

    def verified(key: str | None) -> subprocess.CompletedProcess:
        return hub(tmp_path, "audit", "verify", check=False,
                   env={"HUB_CATALOG_URL": catalog_url, **({"HUB_AUDIT_KEY": key} if key else {})})

    done = verified("k" * 64)
    assert done.returncode == 0, done.stderr
    done = verified("x" * 64)
    assert done.returncode == 1 and "entry 1: changed" in done.stderr and "HUB_AUDIT_KEY" in done.stderr
    done = verified(None)  # no key anywhere: verify says so and makes none
    assert done.returncode == 1 and "no key" in done.stderr, done.stderr
    assert not (tmp_path / "secrets" / "audit.key").exists() and "k" * 64 not in done.stderr + done.stdout


def test_verify_names_two_swapped_entries(settings):
    for i in range(5):
        record(settings, f"analis{i}", "analyst", "download", dataset="penduduk", details={"format": "csv"})
    sql(settings, "UPDATE hub_audit_log SET seq = -seq WHERE seq IN (3, 4)")
    sql(settings, "UPDATE hub_audit_log SET seq = CASE seq WHEN -3 THEN 4 ELSE 3 END WHERE seq < 0")

    done = audit(settings, "verify")
    assert done.returncode == 1
    assert "entry 3: moved" in done.stderr and "entry 4" in done.stderr.partition("entry 3: moved")[2], done.stderr


def test_a_cut_tail_with_the_head_set_back_to_an_earlier_genuine_state_is_caught(settings):
    for i in range(4):
        record(settings, "analis", "analyst", "rows.read", dataset="penduduk", details={"rows": i})
    earlier = dict(sql(settings, "SELECT * FROM hub_audit_head")[0])  # the head as it was, copied by the intruder
    for i in range(2):
        record(settings, "analis", "analyst", "rows.read", dataset="penduduk", details={"rows": 10 + i})

    # The last two entries deleted and the head set back: inside the catalog, a state the hub did write.
    sql(settings, "DELETE FROM hub_audit_log WHERE seq > 4")
    sql(settings, "UPDATE hub_audit_head SET " + ", ".join(f"{k} = :{k}" for k in earlier if k != "id"), **earlier)
    done = audit(settings, "verify")
    assert done.returncode == 1
    assert "entry 5: missing at end" in done.stderr and "witness" in done.stderr, done.stderr

    # Entries appended after the cut do not hide it: the witness never moves back nor onto another chain.
    record(settings, "analis", "analyst", "rows.read", dataset="penduduk", details={"rows": 20})
    record(settings, "analis", "analyst", "rows.read", dataset="penduduk", details={"rows": 21})
    done = audit(settings, "verify")
    assert done.returncode == 1 and "entry 6: rewritten" in done.stderr, done.stderr

    # The whole log deleted.
    sql(settings, "DELETE FROM hub_audit_log")
    sql(settings, "DELETE FROM hub_audit_head")
    done = audit(settings, "verify")
    assert done.returncode == 1 and "entry 1: missing at end" in done.stderr, done.stderr


@pytest.mark.parametrize("digest", [plain_sha256, another_key], ids=["plain-sha256", "another-key"])
def test_a_whole_chain_rewritten_without_the_key_is_caught(settings, digest):
    for i in range(4):
        record(settings, f"analis{i}", "analyst", "rows.read", dataset="penduduk", details={"rows": i})
    rewrite_chain(settings, digest, edit_seq=2)

    done = audit(settings, "verify")
    assert done.returncode == 1
    named = "entry 1: unkeyed" if digest is plain_sha256 else "entry 1: changed"
    assert named in done.stderr and "audit key" in done.stderr, done.stderr


def test_a_tail_rewritten_with_plain_hashes_is_caught(settings):
    for i in range(4):
        record(settings, f"analis{i}", "analyst", "rows.read", dataset="penduduk", details={"rows": i})
    rewrite_chain(settings, plain_sha256, edit_seq=3, start=3)
    assert verify(settings)["ok"] is False
    done = audit(settings, "verify")
    assert done.returncode == 1 and "entry 3: unkeyed" in done.stderr, done.stderr


def test_a_log_written_before_the_key_is_named_then_sealed_by_the_next_entry(settings):
    # The tables as the hub made them before its log was keyed (the head had no MAC), and three entries then.
    sql(settings, "CREATE TABLE hub_audit_head (id INTEGER NOT NULL PRIMARY KEY, seq INTEGER, hash VARCHAR(64))")
    init_db(settings.catalog_url)
    prev = GENESIS
    with session(settings.catalog_url) as s:
        for i in range(1, 4):
            e = AuditEntry(seq=i, at=dt.datetime(2025, 1, i, 8, 0, 0, 123456), actor="operator1", role="operator",
                           action="user.create", dataset=None, details={"user": f"user{i}"}, client="cli",
                           prev_hash=prev)
            e.hash = prev = plain_sha256(canonical(fields(e, e.prev_hash)).encode())
            s.add(e)
        s.commit()
    sql(settings, "INSERT INTO hub_audit_head (id, seq, hash) VALUES (1, 3, :h)", h=prev)

    done = audit(settings, "verify")
    assert done.returncode == 1
    assert "entry 1: unkeyed" in done.stderr and "before" in done.stderr, done.stderr

    record(settings, "operator1", "operator", "user.token", details={"user": "user1"})  # seals the three before it
    done = audit(settings, "verify")
    assert done.returncode == 0, done.stderr
    assert "4 entries" in done.stdout and "3 written before the audit key" in done.stdout

    # The old entries stay covered: the first keyed entry's MAC holds the hash of the last one before it.
    rewrite_chain(settings, plain_sha256, edit_seq=2, start=2, stop=3)
    done = audit(settings, "verify")
    assert done.returncode == 1 and "entry 4: unlinked" in done.stderr, done.stderr


def test_concurrent_appends_from_four_processes_keep_one_chain(settings):
    worker = ("import sys\nfrom pathlib import Path\n"
              "from catalog.audit import record\nfrom hub.settings import Settings\n"
              "settings = Settings(home=Path(sys.argv[3]), catalog_url=sys.argv[1], registry=None)\n"
              "for i in range(50):\n"
              "    record(settings, sys.argv[2], 'system', 'download', dataset='penduduk', details={'i': i})\n")
    record(settings, "system", "system", "source.register", details={"source": "disdukcapil_siak"})
    workers = [subprocess.Popen([sys.executable, "-c", worker, settings.catalog_url, f"worker{n}",
                                 str(settings.home)], cwd=ROOT,
                                stderr=subprocess.PIPE, text=True) for n in range(4)]
    for w in workers:
        assert w.wait(timeout=300) == 0, w.stderr.read()[-3000:]

    assert verify(settings)["ok"] and verify(settings)["entries"] == 201
    done = audit(settings, "verify")
    assert done.returncode == 0 and "201 entries" in done.stdout, done.stderr
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


def test_quarantine_reads_are_audited_through_the_api_and_the_portal(api, home, tokens, published):
    """The quarantine holds records as the agencies sent them, personal data included: each read is logged."""
    def cookie(name: str) -> dict:
        return {"hub_token": tokens[name]["Authorization"].removeprefix("Bearer ")}

    url = api + "/api/datasets/dinsos_dtks/quarantine"
    own = httpx.get(url, headers=tokens["dinsos"], timeout=60)
    assert own.status_code == 200
    assert httpx.get(url, params={"limit": 2}, headers=tokens["walidata"], timeout=60).status_code == 200
    assert httpx.get(url, headers=tokens["analis"], timeout=60).status_code == 403  # refused: not a read
    assert httpx.get(api + "/dataset/dinsos_dtks/quarantine", cookies=cookie("dinsos"), timeout=60).status_code == 200

    quarantined = published["dinsos_dtks"]["rows_quarantined"]
    accessed = json.loads(hub(home, "audit", "who-accessed", "dinsos_dtks", "--json").stdout)
    reads = [e for e in accessed if e["action"] == "quarantine.read"]
    said = [(e["actor"], e["role"], e["client"], e["details"]["rows"], e["details"]["records"]) for e in reads]
    assert said[-3:] == [
        ("dinsos", "agency", "127.0.0.1", quarantined, True), ("walidata", "steward", "127.0.0.1", 2, False),
        ("dinsos", "agency", "127.0.0.1", quarantined, True)]
    assert {e["details"]["run_id"] for e in reads} == {own.json()["run_id"]}
    assert not any(e["actor"] == "analis" for e in reads)
    # The log says that records were shown, never what they held.
    log = hub(home, "audit", "list", "--limit", "1000", "--json").stdout
    personal = {r["record"].get(f) for r in own.json()["rows"] for f in ("NIK", "Nama Lengkap")} - {None, ""}
    assert personal and not any(str(value) in log for value in personal)
    assert hub(home, "audit", "verify").returncode == 0
