"""Subscriptions: a real SMTP server and a real webhook receiver on loopback, told by `hub run` and `hub integrate`."""

from __future__ import annotations

import csv
import email
import email.policy
import hashlib
import hmac
import html
import json
import re
import subprocess
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from _served import free_port, hub, serve
from _webhooks import Receiver
from catalog.identity import Identity
from catalog.subscriptions import (NeedsToken, SubscriptionError, TooManySubscriptions, confirm, deliver_pending,
                                   list_subscriptions, notify, subscribe, unsubscribe)
from hub.settings import ROOT, Settings

ADDRESS = "analis@bappeda.example.go.id"
SMTP_USER, SMTP_PASSWORD = "hub", "rahasia-smtp"
PAYLOAD_KEYS = {"event", "dataset", "title", "snapshot_id", "run_id", "rows", "at", "links"}
ANALYST = Identity(name="analis", role="analyst", agency=None)
STEWARD = Identity(name="walidata", role="steward", agency=None)


class Mailbox:
    """An aiosmtpd handler that keeps every message it accepts, parsed."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.raw: list[str] = []

    async def handle_DATA(self, server, session, envelope):
        self.raw.append(envelope.content.decode("utf-8", "replace"))
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        message["X-Envelope-To"] = ",".join(envelope.rcpt_tos)
        self.messages.append(message)
        return "250 Message accepted for delivery"


def _authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
    return AuthResult(success=(auth_data.login, auth_data.password) == (SMTP_USER.encode(), SMTP_PASSWORD.encode()))


@pytest.fixture
def mailbox():
    box = Mailbox()
    # AUTH without TLS: loopback only, and it proves the hub logs in with HUB_SMTP_USER and HUB_SMTP_PASSWORD.
    controller = Controller(box, hostname="127.0.0.1", port=free_port(), authenticator=_authenticate,
                            auth_required=True, auth_require_tls=False)
    controller.start()
    box.port = controller.port
    yield box
    controller.stop()


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


@pytest.fixture
def stalling():
    """A receiver that keeps every request waiting a minute, as a dead or overloaded one does."""
    with Receiver(stall=60) as r:
        yield r


class Hub:
    """One person's hub: `hub` commands and `hub serve` with the SMTP server, public URL and catalog given."""

    def __init__(self, home: Path, catalog_url: str, smtp_port: int) -> None:
        self.home = home
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {"HUB_CATALOG_URL": catalog_url, "HUB_PUBLIC_URL": self.base,
                    "HUB_SMTP_HOST": "127.0.0.1", "HUB_SMTP_PORT": str(smtp_port),
                    "HUB_SMTP_FROM": "walidata@kotabogor.example.go.id", "HUB_SMTP_USER": SMTP_USER,
                    "HUB_SMTP_PASSWORD": SMTP_PASSWORD,
                    "HUB_WEBHOOK_ALLOW_PRIVATE": "1",  # the receiver is on loopback
                    "HUB_MAX_SUBSCRIPTIONS_PER_CALLER": "2"}
        self.outputs: list[str] = []  # everything the hub printed or logged
        self.server = None

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = hub(self.home, *args, check=False, env=self.env)
        self.outputs += [done.stdout, done.stderr]
        if check:
            assert done.returncode == 0, done.stderr[-3000:]
        return done

    def run(self, source: str, check: bool = True) -> dict | None:
        done = self("run", source, "--json", check=check)
        return json.loads(done.stdout) if done.returncode == 0 else None

    def serve(self) -> None:
        self.server, _ = serve(self.home, env=self.env, port=self.port)

    def stop(self) -> None:
        if self.server is not None:
            self.server.terminate()
            self.outputs.append(self.server.communicate(timeout=30)[0].decode("utf-8", "replace"))


def _drop_a_record(csv_path: Path) -> None:
    """Dinsos sends a new export: one registrant (the second good row) is gone, so the content changes."""
    lines = csv_path.read_bytes().split(b"\r\n")
    csv_path.write_bytes(b"\r\n".join(lines[:2] + lines[3:]))


def _links(message, action: str) -> list[str]:
    """The portal links in a mail's text (not the API's: people get a page with a button)."""
    return re.findall(rf"https?://[^/\s]+/subscriptions/{action}\?token=[\w-]+", message.get_content())


def _press(link: str) -> httpx.Response:
    """Follow a mail's link as its reader does: open the page (which acts on nothing), then press its button."""
    page = httpx.get(link, timeout=30)
    assert page.status_code == 200, page.text[-2000:]
    action = re.search(r'<form class="token" method="post" action="([^"]+)"', page.text).group(1)
    token = re.search(r'name="token" value="([^"]+)"', page.text).group(1)
    base = link.split("/subscriptions/")[0]
    return httpx.post(base + html.unescape(action), data={"token": html.unescape(token)}, timeout=30)


def _verified(request: dict, secret: str) -> dict:
    expected = "sha256=" + hmac.new(secret.encode(), request["body"], hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request["headers"]["X-Hub-Signature-256"], expected)
    assert request["headers"]["X-Hub-Delivery"] and request["headers"]["X-Hub-Timestamp"].isdigit()
    return json.loads(request["body"])


def _personal_values(csv_path: Path) -> set[str]:
    """Every NIK (as digits, and as Dinsos wrote it) and every name in the agency's export."""
    with csv_path.open(encoding="cp1252", newline="") as f:
        rows = list(csv.DictReader(f, delimiter=";"))
    niks = {re.sub(r"\D", "", r["NIK"]) for r in rows} | {r["NIK"].strip() for r in rows}
    return {v for v in niks if len(v) >= 8} | {r["Nama Lengkap"].strip() for r in rows if len(r["Nama Lengkap"]) > 3}


def test_subscribers_are_told_of_new_versions_and_failures(tmp_path, catalog_url, mailbox, receiver):
    from demo.agencies import build

    home = tmp_path / "home"
    export = build(home, people_count=400, dinsos_count=60)["dinsos"]
    personal = _personal_values(export)
    hub = Hub(home, catalog_url, mailbox.port)
    first = hub.run("dinsos_dtks")
    assert first["status"] == "published"
    hub("integrate", "penduduk")
    token = re.search(r"hub_[0-9a-f]{12}_[\w-]+", hub("users", "create", "bappeda", "--role", "analyst").stdout)[0]
    hub.serve()
    try:
        api = hub.base + "/api"

        def subscribe_via_api(dataset: str, token: str | None = None, **body) -> httpx.Response:
            return httpx.post(f"{api}/datasets/{dataset}/subscriptions", json=body, timeout=30,
                              headers={"Authorization": f"Bearer {token}"} if token else None)

        # Requests the hub refuses, each with a message naming what to fix.
        assert subscribe_via_api("tidak_ada", channel="webhook", target=receiver.url).status_code == 404
        for body, field in [({"channel": "sms", "target": ADDRESS}, "channel"),
                            ({"channel": "webhook", "target": "ftp://example.org/x"}, "target"),
                            ({"channel": "email", "target": "bukan alamat"}, "target"),
                            ({"channel": "email", "target": ADDRESS, "events": ["deleted"]}, "events"),
                            ({"channel": "email", "target": ADDRESS, "events": []}, "events")]:
            refused = subscribe_via_api("dinsos_dtks", token, **body)
            assert refused.status_code == 422, body
            assert refused.json()["detail"][0]["loc"] == ["body", field]
        assert mailbox.messages == []
        # A webhook is someone's: without a token, none.
        anonymous = subscribe_via_api("dinsos_dtks", channel="webhook", target=receiver.url + "/dinsos")
        assert anonymous.status_code == 401 and "a webhook needs a token" in anonymous.json()["detail"]
        assert anonymous.headers["www-authenticate"] == "Bearer"

        hook = subscribe_via_api("dinsos_dtks", token, channel="webhook", target=receiver.url + "/dinsos",
                                 events=["published", "failed"])
        assert hook.status_code == 201, hook.text
        hook = hook.json()
        assert hook["status"] == "active" and len(hook["secret"]) >= 32
        integrated = subscribe_via_api("penduduk", token, channel="webhook", target=receiver.url + "/penduduk").json()
        over = subscribe_via_api("penduduk", token, channel="webhook", target=receiver.url + "/third")
        assert over.status_code == 429 and "(HUB_MAX_SUBSCRIPTIONS_PER_CALLER=2)" in over.json()["detail"]
        mail = subscribe_via_api("dinsos_dtks", channel="email", target=ADDRESS)
        assert mail.status_code == 201 and mail.json()["status"] == "awaiting_confirmation"
        assert "secret" not in mail.json() and ADDRESS not in mail.text
        # Asking again sends no second confirmation mail: nobody can flood an inbox through the hub.
        assert subscribe_via_api("dinsos_dtks", channel="email", target=ADDRESS).json()["id"] == mail.json()["id"]

        # Double opt-in: only the confirmation mail, with its link, until the link is followed.
        assert len(mailbox.messages) == 1
        confirmation = mailbox.messages[0]
        assert confirmation["X-Envelope-To"] == ADDRESS and "Konfirmasi" in confirmation["Subject"]
        [confirm_link] = _links(confirmation, "confirm")
        assert confirm_link.startswith(hub.base) and "English:" in confirmation.get_content()
        # A mail scanner opens the link: it gets a page with a button, and confirms nothing (no mail below).
        assert 'method="post"' in httpx.get(confirm_link, timeout=30).text

        # A new version; the receiver fails twice, then accepts: three tries with growing waits between them.
        receiver.plans["/dinsos"] = [500, 500]
        _drop_a_record(export)
        second = hub.run("dinsos_dtks")
        assert second["status"] == "published"
        tries = receiver.on("/dinsos")
        assert [t["status"] for t in tries] == [500, 500, 200]
        assert tries[1]["at"] - tries[0]["at"] >= 0.45 and tries[2]["at"] - tries[1]["at"] >= 0.95
        assert len({t["headers"]["X-Hub-Delivery"] for t in tries}) == 1  # one delivery, retried
        published = _verified(tries[-1], hook["secret"])
        assert set(published) == PAYLOAD_KEYS
        assert published["event"] == "published" and published["dataset"] == "dinsos_dtks"
        assert published["snapshot_id"] == second["snapshot_id"] and published["run_id"] == second["run_id"]
        assert published["rows"] == second["rows_published"] == first["rows_published"] - 1
        assert published["links"]["dataset"] == f"{api}/datasets/dinsos_dtks"
        with pytest.raises(AssertionError):  # a body changed on the way does not verify
            _verified({**tries[-1], "body": tries[-1]["body"].replace(b"published", b"publishee")}, hook["secret"])
        assert len(mailbox.messages) == 1  # not confirmed yet: no mail

        confirmed = _press(confirm_link)
        assert confirmed.status_code == 200 and "Langganan dikonfirmasi" in confirmed.text
        used = _press(confirm_link)  # used once
        assert used.status_code == 404 and "sudah dipakai" in used.text

        # The agency's file is gone: the run fails, and the subscribers of the source and of what is built
        # from it are told. The source's receiver is down for a whole round: that delivery stays pending.
        export.rename(export.with_suffix(".moved"))
        receiver.plans["/dinsos"] = [500, 500, 500]
        assert hub.run("dinsos_dtks", check=False) is None
        failing = receiver.on("/dinsos")[3:]
        assert [t["status"] for t in failing] == [500, 500, 500]
        failed = _verified(receiver.on("/penduduk")[-1], integrated["secret"])
        assert failed["event"] == "failed" and failed["dataset"] == "penduduk" and failed["source"] == "dinsos_dtks"
        assert re.fullmatch(r"\w+Error", failed["error"]) and failed["rows"] is None
        assert len(mailbox.messages) == 2
        failure_mail = mailbox.messages[1]
        assert "gagal" in failure_mail.get_content() and failed["error"] in failure_mail.get_content()
        [opened] = _links(failure_mail, "unsubscribe")
        assert httpx.get(opened, timeout=30).status_code == 200  # opened, not pressed: the news below still come

        listed = {s["id"]: s for s in json.loads(hub("subscriptions", "list", "--json").stdout)}
        assert listed[hook["id"]]["pending"] == 1 and listed[hook["id"]]["delivered"] == 1
        assert listed[hook["id"]]["owner"] == "bappeda" and listed[mail.json()["id"]]["owner"] is None
        assert listed[mail.json()["id"]]["target"] == "a***@bappeda.example.go.id"
        assert "0 delivered, 1 still pending" in hub("subscriptions", "deliver").stdout  # not due yet
        assert "1 delivered, 0 still pending" in hub("subscriptions", "deliver", "--all").stdout
        retried = receiver.on("/dinsos")[-1]
        assert retried["status"] == 200
        assert retried["headers"]["X-Hub-Delivery"] == failing[0]["headers"]["X-Hub-Delivery"]  # the same message
        failed = _verified(retried, hook["secret"])
        assert failed["event"] == "failed" and failed["dataset"] == "dinsos_dtks" and failed["run_id"]

        # The file is back with one registrant fewer: a new version, by mail now too, then in the integration.
        export.with_suffix(".moved").rename(export)
        _drop_a_record(export)
        third = hub.run("dinsos_dtks")
        assert _verified(receiver.on("/dinsos")[-1], hook["secret"])["snapshot_id"] == third["snapshot_id"]
        news = mailbox.messages[2]
        assert news["X-Envelope-To"] == ADDRESS and "Versi baru" in news["Subject"]
        assert f"{api}/datasets/dinsos_dtks" in news.get_content() and str(third["snapshot_id"]) in news.get_content()
        [unsubscribe_link] = _links(news, "unsubscribe")
        # One-click unsubscribe (RFC 8058) POSTs to the API endpoint, with the same token as the mail's link.
        one_click = f"{api}/subscriptions/unsubscribe?token={unsubscribe_link.partition('?token=')[2]}"
        assert news["List-Unsubscribe"] == f"<{one_click}>"
        assert news["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        integration = json.loads(hub("integrate", "penduduk").stdout)
        integrated_news = _verified(receiver.on("/penduduk")[-1], integrated["secret"])
        assert integrated_news["event"] == "published" and integrated_news["snapshot_id"] == integration["snapshot_id"]

        # Unsubscribing (by the mail's link, and by the webhook's own POST) stops everything.
        assert "Langganan dihentikan" in _press(unsubscribe_link).text
        assert httpx.post(hook["unsubscribe_url"], timeout=30).json()["status"] == "unsubscribed"
        one_click_body = {"List-Unsubscribe": "One-Click"}  # what a mail client's button sends
        assert httpx.post(integrated["unsubscribe_url"], data=one_click_body, timeout=30).status_code == 200
        assert httpx.post(one_click, data=one_click_body, timeout=30).status_code == 404  # already gone
        assert _press(unsubscribe_link).status_code == 404
        seen = len(receiver.requests), len(mailbox.messages)
        _drop_a_record(export)
        assert hub.run("dinsos_dtks")["status"] == "published"
        assert (len(receiver.requests), len(mailbox.messages)) == seen
        assert json.loads(hub("subscriptions", "list", "--json").stdout) == []
    finally:
        hub.stop()

    # No NIK and no name anywhere; the subscriber's address only in the mails sent to it.
    bodies = [r["body"].decode() for r in receiver.requests]
    for text in [*mailbox.raw, *bodies, *hub.outputs]:
        assert not [v for v in personal if v in text]
    assert not [text for text in [*bodies, *hub.outputs] if ADDRESS in text]


def _catalog(tmp_path: Path, catalog_url: str, *datasets: str) -> Settings:
    """A catalog holding only the entries of `datasets`: enough to subscribe to them."""
    from catalog.db import Dataset, init_db, session

    settings = Settings(home=tmp_path, catalog_url=catalog_url, registry=ROOT)
    init_db(settings.catalog_url)
    with session(settings.catalog_url) as s, s.begin():
        s.add_all(Dataset(id=d, kind="integrated", title=d.title(), standard=d, standard_version="1.0.0",
                          classification="terbatas", table_identifier=f"integrated.{d}") for d in datasets)
    return settings


def _token(link: str) -> str:
    return link.partition("token=")[2]


def test_webhooks_to_the_hubs_own_network_are_refused(tmp_path, monkeypatch):
    """A public form must not make the hub call hosts inside its network (SSRF)."""
    monkeypatch.delenv("HUB_WEBHOOK_ALLOW_PRIVATE", raising=False)
    settings = _catalog(tmp_path, f"sqlite:///{tmp_path / 'catalog.db'}", "penduduk")
    for url in ("http://127.0.0.1:8080/hook", "http://169.254.169.254/latest/meta-data", "http://10.1.2.3/",
                "http://[::1]/hook", "http://localhost/hook"):
        with pytest.raises(SubscriptionError, match="not a public address"):
            subscribe(settings, "penduduk", "webhook", url, who=ANALYST)


def test_a_failed_run_is_told_once_whatever_its_retries(demo_settings, receiver, monkeypatch):
    from hub.errors import RetriableSourceError
    from hub.pipeline import record_failure, run_source

    monkeypatch.setenv("HUB_WEBHOOK_ALLOW_PRIVATE", "1")  # the receiver is on loopback
    run_source(demo_settings, "dinsos_dtks")
    hook = subscribe(demo_settings, "dinsos_dtks", "webhook", receiver.url + "/dtks", ["failed"], who=ANALYST)
    for _ in range(3):  # Airflow retries a task under the same run id
        record_failure(demo_settings, "dinsos_dtks", "run-1", RetriableSourceError("source dinsos_dtks: timed out"))
    record_failure(demo_settings, "dinsos_dtks", "run-2", RetriableSourceError("source dinsos_dtks: timed out"))
    assert receiver.requests == []  # queued only: the delivery step sends them
    deliver_pending(demo_settings)
    told = [_verified(r, hook["secret"]) for r in receiver.on("/dtks")]
    assert [(t["event"], t["run_id"]) for t in told] == [("failed", "run-1"), ("failed", "run-2")]


def _pending(settings) -> list:
    from sqlalchemy import select

    from catalog.db import session
    from catalog.subscriptions import Delivery

    with session(settings.catalog_url) as s:
        return list(s.scalars(select(Delivery).where(Delivery.status == "pending")))


def test_a_publish_only_queues_and_the_delivery_step_cuts_a_stalling_receiver(demo_settings, receiver, stalling,
                                                                               monkeypatch):
    """A receiver that never answers neither slows the publish nor keeps another receiver from its message."""
    from hub.pipeline import run_source

    monkeypatch.setenv("HUB_WEBHOOK_ALLOW_PRIVATE", "1")  # the receivers are on loopback
    monkeypatch.setenv("HUB_DELIVERY_TIMEOUT", "1")  # seconds per receiver and round
    run_source(demo_settings, "dinsos_dtks")
    slow = subscribe(demo_settings, "dinsos_dtks", "webhook", stalling.url + "/slow", ["published"], who=ANALYST)
    fast = subscribe(demo_settings, "dinsos_dtks", "webhook", receiver.url + "/fast", ["published"], who=ANALYST)

    _drop_a_record(demo_settings.home / "demo" / "dinsos" / "dtks_penduduk.csv")
    second = run_source(demo_settings, "dinsos_dtks")
    assert second.status == "published"
    # The publish queued both messages and called neither receiver.
    assert stalling.requests == [] and receiver.requests == []
    assert len(_pending(demo_settings)) == 2

    started = time.monotonic()
    outcome = deliver_pending(demo_settings)
    took = time.monotonic() - started
    assert took < 30, took  # the stalling receiver would hold a request for 60 s: it was cut at its timeout
    assert outcome == {"delivered": 1, "failed": 0, "pending": 1}
    [told] = receiver.on("/fast")
    published = _verified(told, fast["secret"])
    assert set(published) == PAYLOAD_KEYS and published["snapshot_id"] == second.snapshot_id
    assert len(stalling.on("/slow")) == 1  # called once, then cut: the next round tries again
    [waiting] = _pending(demo_settings)
    assert waiting.subscription_id == slow["id"] and "timed out" in waiting.last_error
    assert waiting.next_attempt_at > waiting.created_at  # backs off like any failed round


def test_each_caller_holds_at_most_its_limit_and_an_anonymous_caller_no_webhook(tmp_path, catalog_url, monkeypatch):
    monkeypatch.setenv("HUB_WEBHOOK_ALLOW_PRIVATE", "1")  # nothing is sent here
    monkeypatch.setenv("HUB_MAX_SUBSCRIPTIONS_PER_CALLER", "3")
    settings = _catalog(tmp_path, catalog_url, "penduduk", "umkm")
    with pytest.raises(NeedsToken, match="a webhook needs a token") as anonymous:
        subscribe(settings, "penduduk", "webhook", "http://127.0.0.1:9/hook", who=Identity.ANONYMOUS)
    assert anonymous.value.status == 401
    # Asked before the target is looked at: an anonymous caller cannot make the hub resolve a host name.
    with pytest.raises(NeedsToken):
        subscribe(settings, "penduduk", "webhook", "https://no-such-host.invalid/hook", who=Identity.ANONYMOUS)

    held = [subscribe(settings, dataset, "webhook", f"http://127.0.0.1:9/{i}", who=ANALYST)
            for i, dataset in enumerate(("penduduk", "penduduk", "umkm"))]
    with pytest.raises(TooManySubscriptions, match=r"analis already holds 3 subscriptions, the most one caller may "
                                                   r"hold \(HUB_MAX_SUBSCRIPTIONS_PER_CALLER=3\)") as refused:
        subscribe(settings, "umkm", "webhook", "http://127.0.0.1:9/4", who=ANALYST)
    assert refused.value.status == 429
    subscribe(settings, "umkm", "webhook", "http://127.0.0.1:9/5", who=STEWARD)  # another caller's own allowance
    unsubscribe(settings, _token(held[0]["unsubscribe_url"]))  # unsubscribing gives the place back
    subscribe(settings, "umkm", "webhook", "http://127.0.0.1:9/6", who=ANALYST)
    assert Counter(s["owner"] for s in list_subscriptions(settings)) == {"analis": 3, "walidata": 1}


def test_an_address_gets_few_confirmation_mails_and_nothing_else_until_it_confirms(tmp_path, catalog_url, mailbox,
                                                                                 monkeypatch):
    """Nobody can make the hub fill an inbox: an address has a few unconfirmed subscriptions at most."""
    for name, value in {"HUB_SMTP_HOST": "127.0.0.1", "HUB_SMTP_PORT": str(mailbox.port), "HUB_SMTP_USER": SMTP_USER,
                        "HUB_SMTP_PASSWORD": SMTP_PASSWORD, "HUB_MAX_UNCONFIRMED_PER_ADDRESS": "2"}.items():
        monkeypatch.setenv(name, value)
    settings = _catalog(tmp_path, catalog_url, "penduduk", "umkm", "kasus_tbc")
    first = subscribe(settings, "penduduk", "email", ADDRESS, who=Identity.ANONYMOUS)
    subscribe(settings, "umkm", "email", ADDRESS.upper(), who=Identity.ANONYMOUS)
    # A token changes nothing: the address's owner has not agreed to any of it.
    with pytest.raises(TooManySubscriptions, match=r"already has 2 subscriptions waiting for confirmation.*"
                                                   r"HUB_MAX_UNCONFIRMED_PER_ADDRESS=2") as refused:
        subscribe(settings, "kasus_tbc", "email", ADDRESS, who=ANALYST)
    assert refused.value.status == 429 and ADDRESS not in str(refused.value)
    assert [m["Subject"].startswith("[interop-hub] Konfirmasi") for m in mailbox.messages] == [True, True]
    assert {s["owner"] for s in list_subscriptions(settings)} == {None}

    notify(settings, "penduduk", "published", {"run_id": "run-1", "snapshot_id": 1})
    assert deliver_pending(settings)["delivered"] == 0 and len(mailbox.messages) == 2  # not confirmed: nothing

    [link] = _links(mailbox.messages[0], "confirm")
    assert confirm(settings, _token(link))["id"] == first["id"]
    subscribe(settings, "kasus_tbc", "email", ADDRESS, who=ANALYST)  # one fewer waiting: room for one more
    assert len(mailbox.messages) == 3
    notify(settings, "penduduk", "published", {"run_id": "run-2", "snapshot_id": 2})
    assert deliver_pending(settings)["delivered"] == 1
    assert "Versi baru" in mailbox.messages[3]["Subject"] and mailbox.messages[3]["X-Envelope-To"] == ADDRESS


def test_a_catalog_made_before_subscriptions_had_owners_still_works(tmp_path, catalog_url, monkeypatch):
    """create_all adds no column to an existing table: the subscriptions table of an older catalog gets its
    owner column when the hub first opens it, and its subscriptions stay as they were."""
    import sqlalchemy

    monkeypatch.setenv("HUB_WEBHOOK_ALLOW_PRIVATE", "1")
    older = sqlalchemy.create_engine(catalog_url)
    with older.begin() as c:  # the table as the hub made it before
        c.execute(sqlalchemy.text(
            "CREATE TABLE hub_subscriptions (id VARCHAR(32) NOT NULL PRIMARY KEY, dataset_id VARCHAR(64) NOT NULL, "
            "channel VARCHAR(16) NOT NULL, target VARCHAR(2000) NOT NULL, events JSON NOT NULL, secret VARCHAR(64), "
            "created_at TIMESTAMP NOT NULL, confirmed_at TIMESTAMP)"))
        c.execute(sqlalchemy.text(
            "INSERT INTO hub_subscriptions VALUES ('old', 'penduduk', 'webhook', 'http://127.0.0.1:9/old', "
            "'[\"published\"]', 'rahasia', '2025-01-01 00:00:00', '2025-01-01 00:00:00')"))
    older.dispose()
    settings = _catalog(tmp_path, catalog_url, "penduduk")
    made = subscribe(settings, "penduduk", "webhook", "http://127.0.0.1:9/new", who=ANALYST)
    listed = {s["id"]: s for s in list_subscriptions(settings)}
    assert listed["old"]["owner"] is None and listed["old"]["target"] == "http://127.0.0.1:9/..."
    assert listed[made["id"]]["owner"] == "analis"
    notify(settings, "penduduk", "published", {"run_id": "run-1", "snapshot_id": 1})
    assert deliver_pending(settings)["pending"] == 2  # both queued; nobody listens on port 9


@pytest.fixture
def trickling_mail_server():
    """An SMTP server that never finishes its greeting: a byte now and then, so no socket timeout ever fires."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def trickle(connection: socket.socket) -> None:
        with connection:
            while not stop.wait(0.2):
                try:
                    connection.sendall(b"2")
                except OSError:  # the hub hung up
                    return

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=trickle, args=(connection,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield listener.getsockname()[1]
    stop.set()
    listener.close()


def test_a_mail_server_that_trickles_is_cut_at_the_receivers_timeout(tmp_path, trickling_mail_server, monkeypatch):
    for name, value in {"HUB_SMTP_HOST": "127.0.0.1", "HUB_SMTP_PORT": str(trickling_mail_server),
                        "HUB_DELIVERY_TIMEOUT": "1"}.items():
        monkeypatch.setenv(name, value)
    settings = _catalog(tmp_path, f"sqlite:///{tmp_path / 'catalog.db'}", "penduduk")
    started = time.monotonic()
    made = subscribe(settings, "penduduk", "email", ADDRESS, who=Identity.ANONYMOUS)  # sends its confirmation
    took = time.monotonic() - started
    assert made["status"] == "awaiting_confirmation"
    assert took < 30, took  # each read gets bytes in time: only the round's deadline ends the conversation
    [waiting] = _pending(settings)
    assert "timed out" in waiting.last_error and ADDRESS not in waiting.last_error
