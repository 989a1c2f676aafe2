"""The subscription outbox: each subscriber is told of every committed version once, even when `hub run` is
killed between the commit and the notification. The kills are real (SIGKILL of a `hub run` process at a named
point); the receiver is a real webhook server on loopback; delivery is the real `hub subscriptions deliver`."""

from __future__ import annotations

import json
import signal

import pytest
from sqlalchemy import select

from _faults import KILLED_RUN, RUN_KILL_POINTS, CsvAgency, changed, child, register, residents, view
from _served import hub
from _webhooks import Receiver
from catalog.db import Dataset, session
from catalog.identity import Identity
from catalog.subscriptions import Delivery, subscribe
from hub.pipeline import record_failure, run_source
from hub.settings import Settings

PEOPLE = residents(300)
V1 = PEOPLE[:150]
V2 = changed(V1) + PEOPLE[150:200]
ANALYST = Identity(name="analis", role="analyst", agency=None)


@pytest.fixture
def settings(tmp_path, catalog_url, monkeypatch) -> Settings:
    monkeypatch.setenv("HUB_WEBHOOK_ALLOW_PRIVATE", "1")  # the receiver is on loopback
    home = tmp_path / "home"
    return Settings(home=home, catalog_url=catalog_url, registry=tmp_path / "registry")


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


def hub_command(settings: Settings, *args: str) -> str:
    """The `hub` command of a person whose hub is `settings`: its output."""
    done = hub(settings.home, *args, env={"HUB_CATALOG_URL": settings.catalog_url,
                                         "HUB_REGISTRY": str(settings.registry), "HUB_WEBHOOK_ALLOW_PRIVATE": "1"})
    return done.stdout


def told(receiver: Receiver, path: str) -> list[dict]:
    """The messages the receiver took (answered 2xx) at `path`, with their delivery id."""
    return [{**json.loads(r["body"]), "delivery": r["headers"]["X-Hub-Delivery"]}
            for r in receiver.on(path) if r["status"] < 300]


def pending(settings: Settings) -> int:
    with session(settings.catalog_url) as s:
        return len(list(s.scalars(select(Delivery.id).where(Delivery.status == "pending"))))


@pytest.mark.parametrize("point", list(RUN_KILL_POINTS))
def test_a_subscriber_is_told_of_a_committed_version_once_whatever_kills_the_run(settings, receiver, point):
    agency = CsvAgency(settings.home / "agency" / "dtks.csv")
    source_id = "file_penduduk"
    register(settings, source_id, agency.kind, agency.options())
    agency.write(V1)
    first = run_source(settings, source_id)
    subscribe(settings, source_id, "webhook", receiver.url + "/hook", ["published"], who=ANALYST)

    agency.write(V2)
    done = child(settings, KILLED_RUN, source_id, point)
    assert done.returncode == -signal.SIGKILL, done.stdout + done.stderr[-3000:]
    now = view(settings, source_id)
    if point in ("iceberg_commit", "catalog_commit"):
        # Nothing recorded, so nothing queued: no message about a version readers never saw.
        assert (now.snapshot_id, now.versions) == (first.snapshot_id, [first.snapshot_id])
        assert pending(settings) == 0
        assert "0 delivered, 0 still pending" in hub_command(settings, "subscriptions", "deliver")
        assert told(receiver, "/hook") == []
        # The next run records what the killed one committed, and tells of it (its own delivery step).
        rerun = json.loads(hub_command(settings, "run", source_id, "--json"))
        assert rerun["status"] == "published"
    elif point == "catalog_committed":
        # The version and its message were committed together; the process died before sending it.
        assert now.versions == [first.snapshot_id, now.snapshot_id] and now.snapshot_id != first.snapshot_id
        assert pending(settings) == 1 and told(receiver, "/hook") == []
        assert "1 delivered, 0 still pending" in hub_command(settings, "subscriptions", "deliver")
    else:
        # The receiver took it, and the outbox did not learn so: the next round sends it again, the same message
        # (the same X-Hub-Delivery, by which a receiver knows it had it: HTTP gives no exactly-once).
        assert len(told(receiver, "/hook")) == 1 and pending(settings) == 1
        assert "1 delivered, 0 still pending" in hub_command(settings, "subscriptions", "deliver", "--all")
        assert len(told(receiver, "/hook")) == 2

    current = view(settings, source_id)
    messages = told(receiver, "/hook")
    message = messages[0]
    assert all(m == message for m in messages)  # one message (the same delivery id and body), maybe sent twice
    assert (message["event"], message["dataset"], message["snapshot_id"]) == (
        "published", source_id, current.snapshot_id)
    assert message["rows"] == len(V2)

    # Re-runs and delivery rounds tell nobody again: nothing new was committed.
    again = json.loads(hub_command(settings, "run", source_id, "--json"))
    assert again["status"] == "unchanged"
    hub_command(settings, "subscriptions", "deliver", "--all")
    assert told(receiver, "/hook") == messages and pending(settings) == 0


def test_a_failure_and_its_message_are_recorded_together(settings, receiver):
    """A failed run's message is queued in the transaction that records the failure: told once per run, and a
    failure the catalog could not record tells nobody of a run it does not show."""
    agency = CsvAgency(settings.home / "agency" / "dtks.csv")
    source_id = "file_penduduk"
    register(settings, source_id, agency.kind, agency.options())
    agency.write(V1)
    run_source(settings, source_id)
    subscribe(settings, source_id, "webhook", receiver.url + "/hook", ["failed"], who=ANALYST)
    agency.path.unlink()
    with pytest.raises(Exception):
        run_source(settings, source_id, run_id="gone")
    record_failure(settings, source_id, "gone", RuntimeError("again"))  # an Airflow retry of the same run
    assert pending(settings) == 1
    hub_command(settings, "subscriptions", "deliver")
    [message] = told(receiver, "/hook")
    assert (message["event"], message["run_id"]) == ("failed", "gone")
    with session(settings.catalog_url) as s:
        assert s.get(Dataset, source_id).snapshot_id is not None  # the published version stays
