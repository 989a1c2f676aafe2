"""Change events on the service bus, through a served hub: the changes service of Disdukcapil's `penduduk`
(X-Road PR-REST, grants and purposes), consumer systems subscribed with `hub exchange subscribe` and sent each
version's changes by `hub run` to a real webhook receiver on loopback (signed, with an idempotency key, in order,
what a receiver that was down missed sent when it is back), and `hub run` killed between the commit of a version
and the delivery of its change event."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import shutil
import signal
import sqlite3
from pathlib import Path

import httpx
import pytest

from _faults import KILLED_RUN, RUN_KILL_POINTS, child
from _exchange import client_token, siak_published
from _served import hub, serve
from _webhooks import Receiver
from hub.settings import ROOT, Settings

CHANGES = "BOGOR/GOV/disdukcapil/siak/penduduk-changes"
LOOKUP = "BOGOR/GOV/disdukcapil/siak/penduduk"
DINSOS, DINKES, BAPPEDA = "BOGOR/GOV/dinsos/siks", "BOGOR/GOV/dinkes/simpus", "BOGOR/GOV/bappeda/sipd"
PURPOSE = "Pemutakhiran DTKS"
FIELDS = {"nik", "nama", "jenis_kelamin", "tanggal_lahir", "kode_wilayah", "alamat", "status_perkawinan"}
NIK = re.compile(r"\b\d{16}\b")


class Siak:
    """Disdukcapil's SIAK database of the demo (a `sql` source read after its cursor, `updated_at`): residents
    move house and are born, each change stamped later than the one before."""

    def __init__(self, home: Path) -> None:
        self.path = home / "demo" / "disdukcapil" / "siak.db"
        self.stamp = 0
        self.born = 0

    def change(self, moved: int = 3, born: int = 2) -> dict[str, set]:
        """Some residents get a new address, some new residents are registered: their NIKs, by what happened."""
        from demo.agencies import people

        self.stamp += 1
        stamp = f"2031-{self.stamp:02d}-01 00:00:00"
        newcomers = list(people(600 + self.born + born))[600 + self.born:]
        self.born += born
        with sqlite3.connect(self.path) as db:
            niks = [n for (n,) in db.execute("SELECT nik FROM penduduk WHERE length(nik) = 16 AND agama != '9' "
                                             "AND kode_kelurahan != '32.71.07.1001' ORDER BY nik")]
            movers = niks[(self.stamp * 7) % 50:][:moved]
            db.executemany("UPDATE penduduk SET alamat = ?, updated_at = ? WHERE nik = ?",
                           [(f"Jl. Pindahan No. {self.stamp}", stamp, n) for n in movers])
            db.executemany("INSERT INTO penduduk VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", [
                (p["nik"], p["nama"], p["jenis_kelamin"], p["agama"], p["tanggal_lahir"].isoformat(),
                 p["kode_wilayah"], "1", "Jl. Baru No. 1", stamp) for p in newcomers])
        return {"update": set(movers), "insert": {p["nik"] for p in newcomers}}


def signed(request: dict, secret: str) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), request["body"], hashlib.sha256).hexdigest()
    return hmac.compare_digest(request["headers"]["X-Hub-Signature-256"], expected)


def events(receiver: Receiver, path: str, since: int = 0) -> list[dict]:
    """The change events the receiver took (answered 2xx) at `path`, from its `since`-th request on."""
    return [{**json.loads(r["body"]), "_request": r} for r in receiver.requests[since:]
            if r["path"] == path and r["status"] < 300]


@pytest.fixture(scope="module")
def bus(tmp_path_factory):
    home = tmp_path_factory.mktemp("changes-home")
    env = siak_published(home, "disdukcapil-siak-penduduk.yaml", "disdukcapil-siak-penduduk-changes.yaml")
    tokens = {client: client_token(home, env, client) for client in (DINSOS, DINKES, BAPPEDA)}
    hub(home, "exchange", "grant", CHANGES, DINSOS, "--purpose", PURPOSE, env=env)
    hub(home, "exchange", "grant", CHANGES, DINKES, "--purpose", "surveilans kesehatan", env=env)
    hub(home, "exchange", "grant", LOOKUP, BAPPEDA, "--purpose", "perencanaan", env=env)
    server, base = serve(home, env)
    with Receiver() as receiver:
        secrets = {}
        for client, path in ((DINSOS, "/dinsos"), (DINKES, "/dinkes")):
            made = hub(home, "exchange", "subscribe", CHANGES, client, "--url", receiver.url + path, env=env)
            secrets[client] = made.stdout.strip().splitlines()[-1]
            assert re.fullmatch(r"[0-9a-f]{64}", secrets[client])
        yield {"home": home, "env": env, "base": base, "tokens": tokens, "receiver": receiver, "secrets": secrets,
               "siak": Siak(home)}
    server.terminate()
    server.wait(timeout=30)


def run(bus, *args: str) -> str:
    return hub(bus["home"], *args, env=bus["env"]).stdout


def call(bus, query: str = "", client: str = DINSOS, issue: str | None = PURPOSE, method: str = "GET"):
    headers = {"X-Road-Client": client, "Authorization": f"Bearer {bus['tokens'][client]}"}
    if issue:
        headers["X-Road-Issue"] = issue
    return httpx.request(method, f"{bus['base']}/r1/{CHANGES}{query}", headers=headers, timeout=60)


def versions(bus) -> list[int]:
    answer = httpx.get(f"{bus['base']}/api/datasets/disdukcapil_siak/versions", timeout=30)  # public metadata
    return [v["snapshot_id"] for v in reversed(answer.json()["versions"])]


def test_subscribing_needs_a_grant_of_a_changes_service(bus):
    refused = hub(bus["home"], "exchange", "subscribe", CHANGES, BAPPEDA, "--url", "http://127.0.0.1:9/x",
                  env=bus["env"], check=False)
    assert refused.returncode != 0 and f"{BAPPEDA} holds no grant of {CHANGES}" in refused.stderr
    refused = hub(bus["home"], "exchange", "subscribe", LOOKUP, BAPPEDA, "--url", "http://127.0.0.1:9/x",
                  env=bus["env"], check=False)
    assert refused.returncode != 0 and f"no changes service {LOOKUP}" in refused.stderr
    refused = hub(bus["home"], "exchange", "subscribe", CHANGES, DINSOS, "--url", "http://127.0.0.1:9/x",
                  env=bus["env"], check=False)
    assert refused.returncode != 0 and "subscribed to" in refused.stderr and "already" in refused.stderr
    listed = json.loads(run(bus, "exchange", "subscriptions", "--json"))
    assert {(s["service"], s["client"]) for s in listed} == {(CHANGES, DINSOS), (CHANGES, DINKES)}
    assert all(s["target"].endswith("/...") for s in listed)  # the path, which may hold a token, is not shown


def test_each_version_sends_each_subscriber_its_changes_signed_once_and_in_order(bus):
    receiver, siak = bus["receiver"], bus["siak"]
    mark = len(receiver.requests)
    made = [siak.change(), siak.change(moved=2, born=1)]  # two changes in the agency, one version
    run(bus, "run", "disdukcapil_siak")
    first_new = versions(bus)[-1]
    # A second version in its own run: the events of both, in the order of the versions.
    made_second = siak.change(moved=1, born=1)
    run(bus, "run", "disdukcapil_siak")
    history = versions(bus)
    assert history[-2] == first_new
    wanted = [{op: made[0][op] | made[1][op] for op in made[0]}, made_second]
    for client, path in ((DINSOS, "/dinsos"), (DINKES, "/dinkes")):
        got = events(receiver, path, mark)
        assert [e["snapshot_id"] for e in got] == history[-2:]
        assert [e["previous_snapshot_id"] for e in got] == history[-3:-1]  # a chain: nothing missed
        for event, want in zip(got, wanted):
            request = event["_request"]
            assert signed(request, bus["secrets"][client])
            assert request["headers"]["X-Hub-Event"] == "changes"
            assert request["headers"]["Idempotency-Key"] == request["headers"]["X-Hub-Delivery"]
            assert (event["service"], event["client"], event["dataset"], event["key"]) == (
                CHANGES, client, "disdukcapil_siak", ["nik"])
            assert event["complete"] and event["counts"] == {"insert": len(want["insert"]),
                                                             "update": len(want["update"]), "delete": 0}
            assert all(set(c["record"]) <= FIELDS for c in event["changes"])  # agama is not the service's
            if client == DINSOS:  # named in penduduk's x-access: plain
                assert {op: {c["key"]["nik"] for c in event["changes"] if c["op"] == op}
                        for op in ("insert", "update")} == want
                assert all(c["record"]["alamat"].startswith("Jl. Pindahan") for c in event["changes"]
                           if c["op"] == "update")
            else:  # not cleared: the NIK as its pseudonym, names and addresses masked, nothing plain
                assert event["pseudonymized_fields"] == ["nik"] and "alamat" in event["masked_fields"]
                assert not NIK.search(request["body"].decode())
                assert all(c["key"]["nik"].startswith("psn_") and c["record"]["nama"] == "***"
                           for c in event["changes"])
        keys = [e["_request"]["headers"]["Idempotency-Key"] for e in got]
        assert len(set(keys)) == 2
    # Each once: nothing is sent again by later rounds, and another run with nothing new tells nobody.
    run(bus, "subscriptions", "deliver", "--all")
    run(bus, "run", "disdukcapil_siak")
    assert len(events(receiver, "/dinsos", mark)) == 2 and len(events(receiver, "/dinkes", mark)) == 2

    # The message log holds every round of every event, as the consumer's read of the dataset.
    log = json.loads(run(bus, "audit", "who-accessed", "disdukcapil_siak", "--json"))
    pushed = [e for e in log if e["details"].get("via") == "change event"]
    assert {(e["actor"], e["details"]["snapshot_id"], e["details"]["status"]) for e in pushed} >= {
        (c, s, "delivered") for c in (DINSOS, DINKES) for s in history[-2:]}


def test_a_receiver_that_was_down_gets_what_it_missed_in_order(bus):
    receiver, siak = bus["receiver"], bus["siak"]
    mark = len(receiver.requests)
    receiver.plans["/dinsos"] = [503] * 200  # down: every request refused until the plan runs out
    for _ in range(3):
        siak.change(moved=1, born=1)
        run(bus, "run", "disdukcapil_siak")
    missed = versions(bus)[-3:]
    tried = [json.loads(r["body"])["snapshot_id"] for r in receiver.requests[mark:] if r["path"] == "/dinsos"]
    assert tried and set(tried) == {missed[0]}  # only the first was tried: the next ones wait for it
    assert [e["snapshot_id"] for e in events(receiver, "/dinkes", mark)] == missed  # others are not held up
    listed = {s["client"]: s for s in json.loads(run(bus, "exchange", "subscriptions", "--json"))}
    assert listed[DINSOS]["pending"] == 3 and listed[DINSOS]["failed"] == 0

    receiver.plans["/dinsos"] = []  # back up
    run(bus, "subscriptions", "deliver", "--all")
    got = events(receiver, "/dinsos", mark)
    assert [e["snapshot_id"] for e in got] == missed
    first_tries = [r for r in receiver.requests[mark:] if r["path"] == "/dinsos"
                   and json.loads(r["body"])["snapshot_id"] == missed[0]]
    assert len({r["headers"]["Idempotency-Key"] for r in first_tries}) == 1  # the same key on every try
    assert len({r["body"] for r in first_tries}) == 1  # and the same body
    listed = {s["client"]: s for s in json.loads(run(bus, "exchange", "subscriptions", "--json"))}
    assert listed[DINSOS]["pending"] == 0 and listed[DINSOS]["last_delivered_snapshot"] == missed[-1]


def test_the_feed_as_an_x_road_service(bus):
    history = versions(bus)
    answer = call(bus, f"?since={history[-2]}&limit=1")
    assert answer.status_code == 200, answer.text
    page = answer.json()
    assert page["service"] == CHANGES and len(page["changes"]) == 1 and page["more"] is True
    assert page["changes"][0]["snapshot_id"] == history[-1] and set(page["changes"][0]["key"]) == {"nik"}
    rest = call(bus, f"?since={page['next']}").json()
    assert rest["more"] is False and rest["next"] == str(history[-1])
    whole = call(bus, f"?since={history[-2]}").json()["changes"]
    assert page["changes"] + rest["changes"] == whole
    assert all(set(c["record"] or {}) <= FIELDS for c in whole)
    seen_by_dinkes = call(bus, f"?since={history[-2]}", client=DINKES, issue="surveilans").json()
    assert [c["key"]["nik"][:4] for c in seen_by_dinkes["changes"]] == ["psn_"] * len(whole)

    def refused(answer, status: int, kind: str) -> None:
        assert answer.status_code == status and answer.headers["X-Road-Error"] == kind, answer.text
        assert not NIK.search(answer.text)

    refused(call(bus, f"?since={history[-2]}", issue=None), 400, "Client.MissingHeader")
    refused(call(bus, client=BAPPEDA), 403, "Server.ServerProxy.AccessDenied")
    refused(call(bus, "?since=3271011304940001"), 400, "Client.BadRequest")  # a NIK is no cursor, and not quoted
    refused(call(bus, "?nik=3271011304940001"), 400, "Client.BadRequest")
    refused(call(bus, "?limit=5000"), 400, "Client.BadRequest")
    refused(call(bus, "/3271011304940001"), 400, "Client.BadRequest")
    refused(call(bus, method="POST"), 405, "Client.InvalidHttpMethod")

    meta = httpx.get(f"{bus['base']}/r1/BOGOR/GOV/disdukcapil/siak/listMethods", timeout=30,
                     headers={"X-Road-Client": DINSOS, "Authorization": f"Bearer {bus['tokens'][DINSOS]}"}).json()
    [listed] = [s for s in meta["service"] if s["service_code"] == "penduduk-changes"]
    assert listed["endpoint_list"] == [{"method": "GET", "path": "/"}]
    document = httpx.get(f"{bus['base']}/r1/BOGOR/GOV/disdukcapil/siak/getOpenAPI?serviceCode=penduduk-changes",
                         headers={"X-Road-Client": DINSOS, "Authorization": f"Bearer {bus['tokens'][DINSOS]}"},
                         timeout=30).json()
    assert document["openapi"].startswith("3.") and "/" in document["paths"]
    from openapi_spec_validator import validate

    validate(document)

    log = json.loads(run(bus, "audit", "who-accessed", "disdukcapil_siak", "--json"))
    calls = [e for e in log if e["action"] == "exchange.call" and e["details"]["service"] == CHANGES]
    assert {(e["actor"], e["details"]["rows"]) for e in calls} >= {(DINSOS, 1), (DINSOS, len(whole))}


def test_a_revoked_grant_stops_the_events(bus):
    receiver, siak = bus["receiver"], bus["siak"]
    mark = len(receiver.requests)
    receiver.plans["/dinkes"] = [503] * 3
    siak.change(moved=1, born=0)
    run(bus, "run", "disdukcapil_siak")  # Dinkes's event is queued, and not delivered
    run(bus, "exchange", "revoke", CHANGES, DINKES)
    run(bus, "subscriptions", "deliver", "--all")  # no longer granted: failed for good, never sent
    siak.change(moved=1, born=0)
    run(bus, "run", "disdukcapil_siak")  # and the next version queues none for it
    assert events(receiver, "/dinkes", mark) == []
    listed = {s["client"]: s for s in json.loads(run(bus, "exchange", "subscriptions", "--json"))}
    assert listed[DINKES]["failed"] == 1 and listed[DINKES]["pending"] == 0
    assert len(events(receiver, "/dinsos", mark)) == 2
    run(bus, "exchange", "unsubscribe", CHANGES, DINKES)
    assert {s["client"] for s in json.loads(run(bus, "exchange", "subscriptions", "--json"))} == {DINSOS}


# --- a kill between the commit of a version and the delivery of its change event --------------------------------


@pytest.mark.parametrize("point", list(RUN_KILL_POINTS))
def test_a_kill_between_commit_and_delivery_of_a_change_event(tmp_path, monkeypatch, catalog_url, point):
    """`hub run` killed (SIGKILL) at each point between the Iceberg commit of a version and the outbox's record
    of its delivery: the subscriber gets the version's change event once, or (killed after the receiver took it)
    the same event again with the same Idempotency-Key and the same body, and never an event of a version no
    reader sees."""
    from catalog.subscriptions import Delivery
    from catalog.db import session
    from demo.agencies import build
    from exchange.clients import add_client, grant
    from exchange.events import subscribe
    from hub.pipeline import run_source
    from sqlalchemy import select

    home = tmp_path / "home"
    build(home, people_count=200, dinsos_count=40)
    services = tmp_path / "services"
    services.mkdir()
    shutil.copy(ROOT / "exchange" / "services" / "disdukcapil-siak-penduduk-changes.yaml", services)
    monkeypatch.setenv("HUB_SERVICES", str(services))  # for the killed child too
    settings = Settings(home=home, catalog_url=catalog_url, registry=ROOT / "connectors" / "registry",
                        services=services)
    first = run_source(settings, "disdukcapil_siak").snapshot_id
    add_client(settings, DINSOS, "test")
    grant(settings, CHANGES, DINSOS, PURPOSE, "test")
    env = {"HUB_SERVICES": str(services), "HUB_CATALOG_URL": catalog_url}

    def pending() -> int:
        with session(settings.catalog_url) as s:
            return len(list(s.scalars(select(Delivery.id).where(Delivery.status == "pending"))))

    with Receiver() as receiver:
        secret = subscribe(settings, CHANGES, DINSOS, receiver.url + "/siks")["secret"]
        wanted = Siak(home).change(moved=2, born=2)
        done = child(settings, KILLED_RUN, "disdukcapil_siak", point)
        assert done.returncode == -signal.SIGKILL, done.stdout + done.stderr[-3000:]
        if point in ("iceberg_commit", "catalog_commit"):
            # No version recorded, so no event: nobody hears of a version readers do not see.
            assert pending() == 0 and events(receiver, "/siks") == []
            hub(home, "run", "disdukcapil_siak", env=env)  # records what the killed run committed, and tells of it
        elif point == "catalog_committed":
            # The version and its event were committed together; the process died before sending it.
            assert pending() == 1 and events(receiver, "/siks") == []
            assert "1 delivered, 0 still pending" in hub(home, "subscriptions", "deliver", env=env).stdout
        else:
            # The receiver took it and the outbox did not learn so: sent again, the same event.
            assert len(events(receiver, "/siks")) == 1 and pending() == 1
            assert "1 delivered, 0 still pending" in hub(home, "subscriptions", "deliver", "--all", env=env).stdout
            assert len(events(receiver, "/siks")) == 2
        got = events(receiver, "/siks")
        assert len({e["_request"]["body"] for e in got}) == 1  # one event, maybe sent twice: byte for byte
        assert len({e["_request"]["headers"]["Idempotency-Key"] for e in got}) == 1
        event = got[0]
        assert signed(event["_request"], secret)
        assert event["previous_snapshot_id"] == first and event["snapshot_id"] != first
        assert {op: {c["key"]["nik"] for c in event["changes"] if c["op"] == op} for op in ("insert", "update")} \
            == wanted
        # Nothing more: a re-run with nothing new and more delivery rounds tell nobody again.
        hub(home, "run", "disdukcapil_siak", env=env)
        hub(home, "subscriptions", "deliver", "--all", env=env)
        assert events(receiver, "/siks") == got and pending() == 0


# --- the registration of a changes service ----------------------------------------------------------------------


def test_a_changes_service_registration_is_checked(tmp_path, monkeypatch):
    from exchange.registry import load_service
    from hub.errors import ConfigError

    settings = Settings(home=tmp_path, catalog_url=f"sqlite:///{tmp_path / 'catalog.db'}",
                        registry=ROOT / "connectors" / "registry", services=tmp_path)
    good = (ROOT / "exchange" / "services" / "disdukcapil-siak-penduduk-changes.yaml").read_text()
    path = tmp_path / "svc.yaml"

    def refused(text: str) -> str:
        path.write_text(text)
        with pytest.raises(ConfigError) as error:
            load_service(path, settings)
        return str(error.value)

    path.write_text(good)
    service = load_service(path, settings)
    assert (service.kind, service.changes.dataset, service.changes.key) == ("changes", "disdukcapil_siak", ("nik",))
    assert service.requires_issue and set(service.personal_data) == {"nik", "nama", "tanggal_lahir", "alamat"}
    assert "field changes/fields/0: 'agamaa' is not a field of standard penduduk@1.1.0" in refused(
        good.replace("fields: [nik,", "fields: [agamaa,"))
    assert "field dataset: not a field of a changes service" in refused(good + "dataset: {id: x, fields: [nik]}\n")
    dataset_kind = (ROOT / "exchange" / "services" / "disdukcapil-siak-penduduk.yaml").read_text()
    assert "field changes: not a field of a dataset service" in refused(
        dataset_kind + "changes: {id: disdukcapil_siak, fields: [nik]}\n")
    assert "an agency offers its own data only" in refused(good.replace("id: disdukcapil_siak", "id: dinsos_dtks"))

    standards = tmp_path / "standards"
    shutil.copytree(ROOT / "schemas" / "standards", standards)
    schema = json.loads((standards / "penduduk-1.1.0.json").read_text(encoding="utf-8"))
    del schema["x-primary-key"]
    (standards / "penduduk-1.1.0.json").write_text(json.dumps(schema), encoding="utf-8")
    monkeypatch.setenv("HUB_STANDARDS", str(standards))
    assert "declares no primary key" in refused(good)
