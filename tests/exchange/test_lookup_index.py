"""The service bus's fast paths on a real published dataset: lookups by key from an index of what the caller may
see (a new version is a new index), and the message log's grouped commits (every call's entry, one intact chain)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading

import pytest

from _served import hub


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    from demo.agencies import build

    home = tmp_path_factory.mktemp("lookup-home")
    build(home, people_count=300, dinsos_count=50)
    hub(home, "run", "disdukcapil_siak")
    return home


def _settings(home):
    from hub.settings import ROOT, Settings

    return Settings(home=home, catalog_url=f"sqlite:///{home / 'catalog.db'}", registry=ROOT / "connectors" / "registry")


def _dataset(settings, dataset_id="disdukcapil_siak"):
    from catalog.db import Dataset, session

    with session(settings.catalog_url) as s:
        found = s.get(Dataset, dataset_id)
        s.expunge(found)
    return found


def _person(home) -> tuple[str, str]:
    with sqlite3.connect(home / "demo" / "disdukcapil" / "siak.db") as con:
        return con.execute("SELECT nik, nama_lengkap FROM penduduk WHERE length(nik) = 16 AND nik GLOB '[0-9]*' "
                           "ORDER BY nik LIMIT 1").fetchone()


FIELDS = ("nik", "nama", "jenis_kelamin", "tanggal_lahir")


def test_a_cleared_agency_finds_a_person_by_nik_and_others_only_by_pseudonym(published):
    from catalog.identity import Identity
    from catalog.lookup import by_key
    from transforms.pseudonym import key, pseudonym

    settings, (nik, _) = _settings(published), _person(published)
    dataset = _dataset(settings)
    dinsos = Identity(name="BOGOR/GOV/dinsos/siks", role="agency", agency="dinsos")
    found = by_key(settings, dataset, dinsos, "nik", nik, FIELDS)
    assert [r["nik"] for r in found["rows"]] == [nik] and set(found["rows"][0]) == set(FIELDS)
    assert found["snapshot_id"] == dataset.snapshot_id and found["masked_fields"] == []
    assert by_key(settings, dataset, dinsos, "nik", "3271000000000000", FIELDS)["rows"] == []

    dinkes = Identity(name="BOGOR/GOV/dinkes/simpus", role="agency", agency="dinkes")
    assert by_key(settings, dataset, dinkes, "nik", nik, FIELDS)["rows"] == []  # the plain NIK is not what it sees
    found = by_key(settings, dataset, dinkes, "nik", pseudonym(nik, key(published)), FIELDS)
    (row,) = found["rows"]
    assert row["nik"].startswith("psn_") and row["nama"] == "***" and nik not in str(row)
    assert found["pseudonymized_fields"] == ["nik"] and "nama" in found["masked_fields"]


def test_a_new_version_is_looked_up_at_once(published):
    from catalog.identity import Identity
    from catalog.lookup import by_key

    settings, (nik, _) = _settings(published), _person(published)
    dinsos = Identity(name="BOGOR/GOV/dinsos/siks", role="agency", agency="dinsos")
    before = _dataset(settings)
    assert by_key(settings, before, dinsos, "nik", nik, FIELDS)["rows"][0]["nama"] != "SITI BARU NAMA"
    with sqlite3.connect(published / "demo" / "disdukcapil" / "siak.db") as con:
        con.execute("UPDATE penduduk SET nama_lengkap = 'Siti Baru Nama', updated_at = '2099-01-01T00:00:00' "
                    "WHERE nik = ?", (nik,))
    hub(published, "run", "disdukcapil_siak")
    after = _dataset(settings)
    assert after.snapshot_id != before.snapshot_id
    found = by_key(settings, after, dinsos, "nik", nik, FIELDS)
    assert found["snapshot_id"] == after.snapshot_id and found["rows"][0]["nama"] == "SITI BARU NAMA"


def test_calls_logged_at_the_same_moment_share_commits_and_keep_one_chain(published):
    from catalog import audit
    from exchange import messagelog

    settings = _settings(published)
    before = audit.verify(settings)
    errors = []

    def loop(first: int) -> None:
        """20 calls answered in one turn of an event loop, as the server's calls are."""
        async def calls() -> None:
            await asyncio.gather(*(messagelog.append(settings, f"BOGOR/GOV/dinsos/c{i}", "exchange", "exchange.call",
                                                     details={"message_id": f"m{i}"})
                                   for i in range(first, first + 20)))
        try:
            asyncio.run(calls())
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    # Two loops at once (two server workers): their commits take turns on one chain.
    threads = [threading.Thread(target=loop, args=(first,)) for first in (0, 20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    after = audit.verify(settings)
    assert after["ok"], after
    logged = [e for e in audit.recent(settings, limit=100) if e["action"] == "exchange.call"]
    assert sorted(e["details"]["message_id"] for e in logged) == sorted(f"m{i}" for i in range(40))
    assert after["entries"] == before["entries"] + 40
