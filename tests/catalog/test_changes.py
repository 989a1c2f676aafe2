"""Record-level changes between a dataset's versions (catalog.changes) on real Iceberg tables published by the
pipeline: inserts, updates and deletes against an independent diff of the operator's plain SQL, the cursor-paged
feed, masking per caller exactly as rows are masked, the HTTP route, a dataset without a key, and retention."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil

import pytest
from fastapi.testclient import TestClient

from _faults import CsvAgency, SqliteAgency, changed, register, residents
from catalog.access import AccessDenied
from catalog.changes import CACHE, BadCursor, NoPrimaryKey, VersionGone, feed, versions
from catalog.db import Dataset, session
from catalog.identity import Identity
from hub.pipeline import run_source
from hub.settings import ROOT, Settings

PEOPLE = residents(260)
SOURCE = "file_penduduk"
DINSOS = Identity(name="petugas-dinsos", role="agency", agency="dinsos")  # named in penduduk's x-access
DINKES = Identity(name="petugas-dinkes", role="agency", agency="dinkes")  # not named: pseudonyms and masks
ANALYST = Identity(name="analis", role="analyst", agency=None)


def renamed(records: list[dict], every: int) -> list[dict]:
    """The records with every `every`-th one's name corrected by the agency."""
    return [{**r, "nama_lengkap": r["nama_lengkap"] + " ALIAS"} if i % every == 3 else r for i, r in enumerate(records)]


V1 = PEOPLE[:150]
V2 = changed(PEOPLE[10:150]) + PEOPLE[150:180]  # 10 deleted, every 10th changed, 30 new
V3 = renamed(V2[5:], 25) + PEOPLE[180:185]  # 5 more deleted, some names corrected, 5 new


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(home=tmp_path / "home", catalog_url=f"sqlite:///{tmp_path / 'catalog.db'}",
                    registry=tmp_path / "registry")


def dataset(settings: Settings, dataset_id: str = SOURCE) -> Dataset:
    with session(settings.catalog_url) as s:
        d = s.get(Dataset, dataset_id)
        s.expunge(d)
        return d


def publish(settings: Settings, *extracts: list[dict]) -> list[int]:
    """Register the CSV source and publish each extract in turn: the snapshot of each version."""
    agency = CsvAgency(settings.home / "agency" / "penduduk.csv")
    register(settings, SOURCE, agency.kind, agency.options())
    snapshots = []
    for records in extracts:
        agency.write(records)
        snapshots.append(run_source(settings, SOURCE).snapshot_id)
    return snapshots


def plain(settings: Settings, snapshot_id: int) -> dict[str, dict]:
    """Every record of a version, plain, by NIK: the operator's own SQL (catalog.query.connect), not the diff."""
    from catalog.query import connect

    with connect(settings, versions={SOURCE: snapshot_id}) as con:
        table = con.sql(f"SELECT * FROM {SOURCE}").to_arrow_table()
    return {r["nik"]: {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in r.items()}
            for r in table.to_pylist()}


def expected(before: dict[str, dict], after: dict[str, dict]) -> dict[str, set]:
    return {"insert": set(after) - set(before), "delete": set(before) - set(after),
            "update": {k for k in set(after) & set(before) if after[k] != before[k]}}


def by_op(changes: list[dict]) -> dict[str, set]:
    found = {"insert": set(), "update": set(), "delete": set()}
    for c in changes:
        found[c["op"]].add(c["key"]["nik"])
    return found


def everything(settings: Settings, d: Dataset, who: Identity, since=None, limit: int = 1000) -> dict:
    return feed(settings, d, who, None, since=since, limit=limit, audited=False)


def test_a_version_s_changes_are_the_keys_it_inserted_updated_and_deleted(settings):
    first, second, third = publish(settings, V1, V2, V3)
    d = dataset(settings)
    assert [(v.snapshot_id, v.previous) for v in versions(settings, SOURCE)] == [
        (first, None), (second, first), (third, second)]
    rows = {s: plain(settings, s) for s in (first, second, third)}
    for before, after in ((first, second), (second, third)):
        page = everything(settings, d, DINSOS, since=str(before))
        mine = [c for c in page["changes"] if c["snapshot_id"] == after]
        want = expected(rows[before], rows[after])
        assert by_op(mine) == want and all(want.values()), (before, after)
        for c in mine:
            if c["op"] == "delete":
                assert c["record"] is None
            else:  # the record as that version holds it, every field, plain for Dinsos
                assert c["record"] == rows[after][c["key"]["nik"]]
    committed = {v.snapshot_id: v.committed_at for v in versions(settings, SOURCE)}
    assert by_op(everything(settings, d, DINSOS, since=str(second))["changes"]) == expected(rows[second], rows[third])

    # From the start: the first version inserts every record it had, then each version's changes, in order.
    whole = everything(settings, d, DINSOS)
    snapshots = [c["snapshot_id"] for c in whole["changes"]]
    assert snapshots == sorted(snapshots, key=[first, second, third].index)
    assert by_op([c for c in whole["changes"] if c["snapshot_id"] == first]) == {
        "insert": set(rows[first]), "update": set(), "delete": set()}
    assert all(c["committed_at"] == committed[c["snapshot_id"]].isoformat(timespec="seconds") + "Z"
               for c in whole["changes"])
    assert (whole["next"], whole["more"], whole["key"]) == (str(third), False, ["nik"])


def test_the_cursor_pages_every_change_once_and_waits_at_the_end(settings):
    first, second = publish(settings, V1, V2)
    d = dataset(settings)
    whole = everything(settings, d, DINSOS)["changes"]
    seen, since, pages = [], None, 0
    while True:
        page = everything(settings, d, DINSOS, since=since, limit=7)
        seen += page["changes"]
        pages += 1
        assert page["next"] is not None and len(page["changes"]) <= 7
        since = page["next"]
        if not page["more"]:
            break
    assert seen == whole and pages == -(-len(whole) // 7)
    assert since == str(second)  # read to the end: the cursor is the last version, to ask again later
    end = everything(settings, d, DINSOS, since=since)
    assert (end["changes"], end["more"], end["next"]) == ([], False, str(second))
    # A cursor within a version picks up there; one across a version boundary names the version.
    middle = everything(settings, d, DINSOS, since=f"{second}:5")["changes"]
    assert middle == [c for c in whole if c["snapshot_id"] == second][5:]
    assert everything(settings, d, DINSOS, since=None, limit=len(V1))["next"] == str(first)

    # The next version comes after the saved cursor, and only it.
    agency = CsvAgency(settings.home / "agency" / "penduduk.csv")
    agency.write(V2[:-1])
    third = run_source(settings, SOURCE).snapshot_id
    later = everything(settings, dataset(settings), DINSOS, since=since)
    assert [(c["op"], c["snapshot_id"]) for c in later["changes"]] == [("delete", third)]
    assert later["changes"][0]["key"]["nik"] == V2[-1]["nik"]

    for bad in ("yesterday", "12:x", f"{second}:-1", "12345"):
        with pytest.raises(BadCursor) as refused:
            everything(settings, d, DINSOS, since=bad)
        assert refused.value.status == 400 and bad not in str(refused.value)


def test_an_incremental_source_changes_only_what_it_upserted(settings):
    """A `sql` source publishes what changed since its cursor, upserted into the table: most files are shared
    by both snapshots and not compared at all. What was upserted with the same content is no change."""
    agency = SqliteAgency(settings.home / "agency" / "siak.db")
    register(settings, "siak", agency.kind, agency.options())
    agency.write(PEOPLE[:200])
    first = run_source(settings, "siak").snapshot_id
    touched = changed(PEOPLE[:200], every=20)  # every 20th: another religion, a later updated_at
    same = [{**r, "updated_at": "2099-01-01 00:00:00"} for r in PEOPLE[1:4]]  # sent again, content as it was
    agency.write([r for i, r in enumerate(touched) if i % 20 == 0] + same + PEOPLE[200:207])
    second = run_source(settings, "siak").snapshot_id
    d = dataset(settings, "siak")
    page = feed(settings, d, DINSOS, None, since=str(first), audited=False)
    assert by_op(page["changes"]) == {"insert": {r["nik"] for r in PEOPLE[200:207]},
                                      "update": {r["nik"] for r in PEOPLE[:200:20]}, "delete": set()}
    assert {c["snapshot_id"] for c in page["changes"]} == {second}
    assert all(c["record"]["agama"] == t["agama"] for c, t in
               ((c, next(t for t in touched if t["nik"] == c["key"]["nik"])) for c in page["changes"]
                if c["op"] == "update"))


def test_each_caller_sees_the_changes_as_it_sees_the_rows(settings):
    from catalog.rows import Condition, page
    from transforms import pseudonym

    first, second = publish(settings, V1, V2)
    d = dataset(settings)
    secret = pseudonym.key(settings.home)
    plain_changes = everything(settings, d, DINSOS, since=str(first))["changes"]
    for who in (DINKES, ANALYST):
        seen = everything(settings, d, who, since=str(first))
        assert seen["pseudonymized_fields"] == ["nik"] and seen["masked_fields"] == ["nama", "tanggal_lahir"]
        # The same changes in the same order, each key as its pseudonym: a deleted one too.
        assert [(c["op"], c["key"]["nik"]) for c in seen["changes"]] == [
            (c["op"], pseudonym.pseudonym(c["key"]["nik"], secret)) for c in plain_changes]
        assert any(c["op"] == "delete" for c in seen["changes"])
        assert not re.search(r"\b3271\d{12}\b", json.dumps(seen))  # no NIK anywhere
        for c in seen["changes"]:
            if c["op"] == "delete":
                continue
            # Exactly what a page of rows of that version shows the same caller for that record.
            rows = page(settings, d, who, None, snapshot_id=second, audited=False,
                        where=[Condition("nik", "=", (c["key"]["nik"],))])["rows"]
            assert [c["record"]] == rows
    with pytest.raises(AccessDenied) as refused:
        everything(settings, d, Identity.ANONYMOUS)
    assert refused.value.needs_token  # penduduk is `terbatas`: a token is needed


def test_the_route_reads_the_feed_with_the_rows_access_and_audit(settings):
    from catalog import audit
    from serving.api import create_app
    from catalog.identity import create_user

    first, second = publish(settings, V1, V2)
    _, dinkes = create_user(settings, "petugas-dinkes", "agency", "dinkes")
    _, dinsos = create_user(settings, "petugas-dinsos", "agency", "dinsos")
    with TestClient(create_app(settings)) as client:
        url = f"/api/datasets/{SOURCE}/changes"
        assert client.get(url).status_code == 401
        answer = client.get(url, params={"since": first, "limit": 5}, headers={"Authorization": f"Bearer {dinkes}"})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert len(body["changes"]) == 5 and body["next"] == f"{second}:5" and body["more"] is True
        assert all(c["key"]["nik"].startswith("psn_") for c in body["changes"])
        again = client.get(url, params={"since": body["next"]}, headers={"Authorization": f"Bearer {dinsos}"}).json()
        assert again["changes"][0]["key"]["nik"].isdigit()
        assert client.get(url, params={"since": "3271011304940001"},
                          headers={"Authorization": f"Bearer {dinkes}"}).status_code == 400
        assert client.get(url, params={"limit": 0}, headers={"Authorization": f"Bearer {dinkes}"}).status_code == 422
        assert client.get("/api/datasets/nothing/changes",
                          headers={"Authorization": f"Bearer {dinkes}"}).status_code == 404
    reads = [e for e in audit.who_accessed(settings, SOURCE) if e["details"].get("changes")]
    assert [(e["actor"], e["action"], e["details"]["since"]) for e in reads] == [
        ("petugas-dinkes", "rows.read", str(first)), ("petugas-dinsos", "rows.read", f"{second}:5")]
    assert reads[0]["details"]["rows"] == 5 and reads[1]["details"]["rows"] == len(again["changes"])


def test_a_dataset_without_a_primary_key_has_no_feed(settings, tmp_path, monkeypatch):
    standards = tmp_path / "standards"
    shutil.copytree(ROOT / "schemas" / "standards", standards)
    schema = json.loads((standards / "penduduk-1.0.0.json").read_text(encoding="utf-8"))
    del schema["x-primary-key"]
    (standards / "penduduk-1.0.0.json").write_text(json.dumps(schema, ensure_ascii=False), encoding="utf-8")
    monkeypatch.setenv("HUB_STANDARDS", str(standards))
    publish(settings, V1, V2)
    with pytest.raises(NoPrimaryKey) as refused:
        everything(settings, dataset(settings), DINSOS)
    assert refused.value.status == 409 and "no primary key" in str(refused.value)


def test_changes_go_with_an_expired_version(settings, tmp_path, monkeypatch):
    """A standard's retention expires old versions (`hub maintain`): their changes, and those of the version after
    them, go too (410), the kept change sets with them; the versions still kept keep theirs."""
    from hub.maintenance import maintain

    standards = tmp_path / "standards"
    shutil.copytree(ROOT / "schemas" / "standards", standards)
    for version in ("1.0.0", "1.1.0"):  # the newest version of a standard says how long its data is kept
        schema = json.loads((standards / f"penduduk-{version}.json").read_text(encoding="utf-8"))
        schema["x-retention"] = {"versions": {"max-age-days": 1, "keep-last": 2}, "snapshots": {"max-age-days": 1}}
        (standards / f"penduduk-{version}.json").write_text(json.dumps(schema, ensure_ascii=False), encoding="utf-8")
    monkeypatch.setenv("HUB_STANDARDS", str(standards))
    first, second, third = publish(settings, V1, V2, V3)
    d = dataset(settings)
    before = everything(settings, d, DINSOS, since=str(second))["changes"]
    everything(settings, d, DINSOS)  # every version's change set compared and kept
    kept = settings.home / CACHE / SOURCE
    assert len(list(kept.glob("*.parquet"))) == 3
    done = maintain(settings, now=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=4))
    assert [(v.snapshot_id, v.previous) for v in versions(settings, SOURCE)] == [(second, first), (third, second)]
    # Maintenance itself removes the change sets naming the expired version, whether or not the feed is read again.
    assert sorted(done["change_sets"]) == sorted(f"{CACHE}/{SOURCE}/{n}.parquet" for n in (f"none-{first}",
                                                                                           f"{first}-{second}"))
    assert [p.name for p in kept.glob("*.parquet")] == [f"{second}-{third}.parquet"]
    for since in (None, str(first)):  # the first version, and the second's changes, which it alone could tell
        with pytest.raises(VersionGone) as gone:
            everything(settings, d, DINSOS, since=since)
        assert gone.value.status == 410 and f"since={second}" in str(gone.value)
    assert everything(settings, d, DINSOS, since=str(second))["changes"] == before
    assert [p.name for p in kept.glob("*.parquet")] == [f"{second}-{third}.parquet"]  # the first's keys went
