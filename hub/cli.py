"""The `hub` command line: set up, run sources, query and serve the catalog."""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
from pathlib import Path

from hub.errors import ConfigError, HubError
from hub.settings import Settings, configure_airflow, load_settings

__all__ = ["main"]


# Where a command's own output goes: stdout. While a command runs, sys.stdout is stderr, so that what libraries
# print or log there (Airflow's logging writes to stdout) never mixes with it (`--json` stays JSON).
_output = [sys.stdout]


def say(*values, file=None, **options) -> None:
    """print(), to the command's output unless `file` says otherwise."""
    print(*values, file=file or _output[0], **options)


def _print_json(data) -> None:
    say(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _print_list(items: list[dict], as_json: bool, line) -> None:
    """A list command's output: the items as JSON, or one line each for people."""
    if as_json:
        _print_json(items)
    else:
        for item in items:
            say(line(item))


def cmd_init(settings: Settings, args) -> None:
    """Create the home folder, migrate Airflow's database and create the catalog and warehouse."""
    from catalog.db import init_db
    from catalog.storage import iceberg_catalog

    for folder in (settings.home, settings.warehouse, settings.staging, settings.airflow_home):
        folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True)
    if done.returncode:
        raise HubError(f"airflow db migrate failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    init_db(settings.catalog_url)
    iceberg_catalog(settings.catalog_url, settings.warehouse.as_uri())
    if not args.quiet:
        say(f"hub home {settings.home}: Airflow DB migrated, catalog and warehouse ready")


def _deliver_queued(settings: Settings) -> None:
    """The delivery step after a run: the subscription messages its publish or failure queued (and any other
    due), sent once the run's outcome is committed and printed. Never fails the command."""
    from catalog.subscriptions import deliver_pending

    _output[0].flush()
    try:
        counts = deliver_pending(settings)
    except Exception as e:  # the run's own outcome stands; the subscriptions__deliver DAG tries again
        say(f"hub: subscription messages not sent now ({type(e).__name__}); `hub subscriptions deliver` "
              "sends them later", file=sys.stderr)
        return
    if counts["delivered"] or counts["failed"] or counts["pending"]:
        say(f"subscriptions: {counts['delivered']} delivered, {counts['pending']} still pending, "
              f"{counts['failed']} failed for good", file=sys.stderr)


def cmd_run(settings: Settings, args) -> None:
    """Run one source now, then bring what is built on it up to date: its standard's integrated dataset and
    the indicators that read either (what the Asset events would have triggered under `hub up`)."""
    from hub.pipeline import run_source

    try:
        result = run_source(settings, args.source).as_dict()
        if result["status"] != "failed":
            result.update(_refresh_downstream(settings, args.source))
        if args.json:
            _print_json(result)
        else:
            _summary_table([result])
            _print_downstream(result)
    finally:  # a failed run's subscribers are told too
        _deliver_queued(settings)


def _refresh_downstream(settings: Settings, source_id: str) -> dict:
    from hub.errors import NotReady
    from hub.indicators import build_indicator, load_indicators
    from hub.pipeline import find_source, integrate

    standard = find_source(settings, source_id).standard_name
    done = {"integrated": integrate(settings, standard), "indicators": []}
    for indicator in load_indicators():
        if standard in indicator.inputs or source_id in indicator.inputs:
            try:
                done["indicators"].append(build_indicator(settings, indicator.id))
            except NotReady as e:
                done["indicators"].append({"dataset": indicator.id, "status": "waiting", "reason": str(e)})
    return done


def _print_downstream(result: dict) -> None:
    if "integrated" in result:
        i = result["integrated"]
        say(f"integrated dataset {i['dataset']}: {i['rows']} rows (snapshot {i['snapshot_id']})")
    for i in result.get("indicators", []):
        if i.get("status") == "waiting":
            say(f"indicator dataset {i['dataset']}: not built yet: {i['reason']}")
        else:
            say(f"indicator dataset {i['dataset']}: {i['rows']} rows (snapshot {i['snapshot_id']})")


def cmd_integrate(settings: Settings, args) -> None:
    from hub.pipeline import integrate

    try:
        _print_json(integrate(settings, args.standard))
    finally:
        _deliver_queued(settings)


def cmd_up(settings: Settings, args) -> None:
    """Start and supervise every component of the hub until Ctrl-C or SIGTERM."""
    from hub.up import up

    up(settings, host=args.host, port=args.port, airflow_port=args.airflow_port, demo=args.demo,
       people=args.people, celery_workers=args.celery_workers, serve_workers=args.workers)


def cmd_status(settings: Settings, args) -> int:
    """Each component, each DAG's last and next run, failed runs and files the hub cannot use."""
    from hub.status import status

    report = status(settings)
    if args.json:
        _print_json(report)
    else:
        say(f"hub home {report['home']}: " + (f"up since {report['started']} (pid {report['pid']}), portal "
                                                f"{report['catalog_url']}, Airflow {report['airflow_url']}"
                                                if report["up"] else "not running (start it with `hub up`)"))
        for c in report["components"]:
            extra = f" pid {c['pid']}, {c['restarts']} restarts, log {c['log']}" if c.get("pid") else ""
            say(f"  {c['name']:<16} {c['state']}{extra}")
        for w in report["edge_workers"]:
            say(f"  edge worker {w['name']}: {w['state']}, queues {', '.join(w['queues']) or '-'}, last heartbeat "
                f"{w['last_heartbeat'] or 'never'}")
        say("DAGs (last run, next run):")
        for d in report["dags"]:
            last = d["last_run"]
            done = f"{last['state']} {last['ended'] or last['started'] or ''}".strip() if last else "never run"
            say(f"  {d['dag_id']:<45} {done:<36} {'paused' if d['paused'] else d['next_run'] or '-'}")
        if report["failed_runs"]:
            say("failed runs (last 7 days):")
            for r in report["failed_runs"]:
                say(f"  {r['dag_id']} {r['run_id']} ended {r['ended']}: {r['error'] or 'see the task log'}")
        for p in report["problems"]:
            say(f"problem: {p['what']} {p['file']}: {p['error']}")
    down = report["up"] and any(c["state"] != "up" for c in report["components"])
    return 1 if report["problems"] or down else 0


def _summary_table(results: list[dict]) -> None:
    header = ["source", "rows in", "published", "quarantined", "repeated", "dataset", "snapshot", "status"]
    rows = [[r["source"], r["rows_in"], r["rows_published"], r["rows_quarantined"], r.get("rows_repeated", 0),
             r["dataset"], r["snapshot_id"], r["status"]] for r in results]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    for i, row in enumerate([header, *rows]):
        say("  ".join(str(x).rjust(w) if isinstance(x, int) else str(x).ljust(w) for x, w in zip(row, widths)))
        if i == 0:
            say("  ".join("-" * w for w in widths))


def cmd_sources_list(settings: Settings, args) -> None:
    from connectors import load_sources

    sources = [
        {"id": s.id, "title": s.title, "agency": s.agency_code, "standard": s.standard_ref, "kind": s.kind,
         "schedule": s.schedule, "file": str(s.path)}
        for s in load_sources(settings.registry, settings.home)
    ]
    _print_list(sources, args.json, lambda s: f"{s['id']:<28} {s['kind']:<6} {s['standard']:<20} {s['title']}")


def cmd_sources_new(settings: Settings, args) -> None:
    from hub.sources import scaffold

    path = scaffold(settings, args.kind, args.source, args.standard, args.agency)
    say(f"wrote {path}: replace its TODOs, then run `hub sources check {args.source}`")


def cmd_sources_check(settings: Settings, args) -> int | None:
    from hub.errors import SourceError
    from hub.sources import check

    try:
        found = check(settings, args.source)
    except SourceError as e:  # the registration is fine; the system is not there
        say(f"hub: the registration is valid, but the system cannot be read: {e}", file=sys.stderr)
        return 1
    missing = found["missing_columns"]
    if args.json:
        _print_json(found)
    elif not missing:
        say(f"ok   {found['source']} ({found['file']}): registration valid, system reachable: {found['system']}")
        if found["columns"] is None and not found["columns_hidden"]:
            say("note the source sent no record yet: the columns the mapping reads are not checked")
    if missing:  # on stderr, --json or not: what failed, for people
        say(f"FAIL {found['source']} ({found['file']}): the mapping reads {len(missing)} "
            f"column{'s' if len(missing) > 1 else ''} the source does not have; system: {found['system']}",
            file=sys.stderr)
        columns = found["columns"] or []
        listed = f"{columns[:50]}" + (f" and {len(columns) - 50} more" if len(columns) > 50 else "")
        for item in missing:
            if item["did_you_mean"]:
                hint = f"did you mean {item['did_you_mean']!r}?"
            elif found["columns_hidden"]:
                hint = ("the source's column names look like a record's values (not shown): "
                        "does it start with its header row?")
            else:
                hint = f"its columns: {listed}"
            say(f"  {found['file']}: field {item['at']}: column {item['column']!r} is not in the source; {hint}",
                file=sys.stderr)
    if found["required_fields_not_mapped"] and not args.json:
        say(f"note every record will be quarantined until these required fields of {found['standard']} are "
              f"mapped: {', '.join(found['required_fields_not_mapped'])}", file=sys.stderr if missing else None)
    return 1 if missing else None


def cmd_sources_test(settings: Settings, args) -> None:
    from hub.sources import sample

    found = sample(settings, args.source, args.limit, lang=args.lang)
    if args.json:
        _print_json(found)
        return
    repeats = found["identical_repeats"]
    rows = ", ".join(map(str, found["repeated_rows"][:20])) + (", ..." if repeats > 20 else "")
    say(f"{found['source']} ({found['standard']}): {found['rows_read']} records read, "
          f"{found['would_publish']} would be published, {found['would_quarantine']} quarantined"
          + (f", {repeats} identical repeat{'s' if repeats > 1 else ''} of a published record left out "
             f"(row{'s' if repeats > 1 else ''} {rows})" if repeats else "")
          + "; nothing was written to the catalog")
    for code, count in found["reasons"].items():
        say(f"  {count:>6}  {code}")
    if found["published_preview"]:
        say(f"first records as they would be published ({', '.join(found['masked_fields'])} masked):")
        for record in found["published_preview"]:
            say("  " + json.dumps(record, ensure_ascii=False))
    if found["rejected"]:
        say("rejected rows (row 1 is the first record):")
    for row in found["rejected"][:50]:
        why = "; ".join(f"{r['field']} {r['rule']}" + (f" (column {r['column']!r}: {r['value']!r})" if "column" in r
                                                        else "") + _closest(r) for r in row["reasons"])
        say(f"  row {row['row']}: {why}")
        for sentence in dict.fromkeys(r["sentence"] for r in row["reasons"]):
            say(f"      {sentence}")
    if len(found["rejected"]) > 50:
        say(f"  ... and {len(found['rejected']) - 50} more (--json lists them all)")


def _closest(reason: dict) -> str:
    if "candidates" not in reason:
        return ""
    found = ", ".join(f"{c['name']} ({c['code']})" for c in reason["candidates"])
    return f"; closest: {found}" if found else "; no region of the code list is close"


def cmd_indicators_list(settings: Settings, args) -> None:
    from hub.indicators import load_indicators

    indicators = [{"id": i.id, "standard": i.standard_ref, "inputs": list(i.inputs), "file": str(i.path)}
                  for i in load_indicators()]
    _print_list(indicators, args.json, lambda i: f"{i['id']:<34} {i['standard']:<42} {', '.join(i['inputs'])}")


def cmd_indicators_build(settings: Settings, args) -> None:
    from hub.indicators import build_indicator

    try:
        _print_json(build_indicator(settings, args.indicator))
    finally:
        _deliver_queued(settings)


def cmd_catalog_list(settings: Settings, args) -> None:
    from catalog.db import Dataset, init_db, session

    init_db(settings.catalog_url)
    with session(settings.catalog_url) as s:
        datasets = [
            {"id": d.id, "kind": d.kind, "title": d.title, "standard": f"{d.standard}@{d.standard_version}",
             "rows": d.row_count, "quality_score": d.quality_score, "snapshot_id": d.snapshot_id,
             "classification": d.classification}
            for d in s.query(Dataset).order_by(Dataset.id)
        ]
    _print_list(datasets, args.json, lambda d: f"{d['id']:<28} {d['kind']:<11} {d['rows']:>9} rows  {d['standard']}")


def cmd_catalog_engines(settings: Settings, args) -> None:
    """Print ready-to-paste settings for outside engines reading the `publik` namespace (no password in them)."""
    from catalog.public import engine_settings

    try:
        found = engine_settings(settings)
    except ValueError as e:
        raise HubError(str(e)) from None
    for engine, text in found.items():
        if args.engine in (None, engine):
            say(text if args.engine else f"## {engine}\n{text}\n")


def cmd_catalog_reindex(settings: Settings, args) -> None:
    from catalog.search import reindex

    say(f"re-indexed {reindex(settings)} datasets for search")


def cmd_subscriptions_list(settings: Settings, args) -> None:
    from catalog.subscriptions import list_subscriptions

    _print_list(list_subscriptions(settings), args.json,
                lambda s: f"{s['id']}  {s['dataset']:<20} {s['channel']:<7} {s['target']:<32} "
                          f"{','.join(s['events']):<16} {'confirmed' if s['confirmed'] else 'unconfirmed':<11} "
                          f"{s['owner'] or '(no token)':<16} "
                          f"{s['delivered']} delivered, {s['pending']} pending, {s['failed']} failed")


def cmd_subscriptions_deliver(settings: Settings, args) -> None:
    """Try again the notifications still pending (retried with backoff; failed for good after many tries)."""
    from catalog.subscriptions import deliver_pending

    counts = deliver_pending(settings, due_only=not args.all)
    say(f"{counts['delivered']} delivered, {counts['pending']} still pending, {counts['failed']} failed for good")


def _administered(settings: Settings, action: str, details: dict) -> None:
    """An administrative act in the audit log, by the operator's login on this machine."""
    import getpass

    from catalog.audit import record

    record(settings, getpass.getuser(), "operator", action, details=details, client="cli")


def _configuration_audited(settings: Settings) -> None:
    """New, changed and removed source registrations and standards in the audit log, by the operator's login."""
    import getpass

    from catalog.audit import configuration

    configuration(settings, getpass.getuser(), "operator", client="cli")


def cmd_users_create(settings: Settings, args) -> None:
    from catalog.identity import create_user

    user, token = create_user(settings, args.name, args.role, args.agency, args.expires_days)
    _administered(settings, "user.create", {"user": user["name"], "role": user["role"], "agency": user["agency"]})
    _print_token(f"user {user['name']} ({user['role']}" + (f", agency {user['agency']}" if user["agency"] else "")
                 + ") created", token, args.expires_days)


def cmd_users_token(settings: Settings, args) -> None:
    from catalog.identity import new_token

    token = new_token(settings, args.name, args.expires_days)
    _administered(settings, "user.token", {"user": args.name})
    _print_token(f"new token for {args.name}", token, args.expires_days)


def _print_token(done: str, token: str, expires_days: int | None) -> None:
    expiry = f"expires in {expires_days} days" if expires_days else "does not expire"
    say(f"{done}; its token ({expiry}):\n{token}\n"
          "It will not be shown again: keep it now. Send it as `Authorization: Bearer TOKEN`.")


def cmd_users_list(settings: Settings, args) -> None:
    from catalog.identity import list_users

    def line(u: dict) -> str:
        live = [t for t in u["tokens"] if not t["revoked_at"]]
        status = f"revoked {u['revoked_at']:%Y-%m-%d}" if u["revoked_at"] else f"{len(live)} active tokens"
        return f"{u['name']:<24} {u['role']:<8} {u['agency'] or '-':<16} {status}"

    _print_list(list_users(settings), args.json, line)


def cmd_users_revoke(settings: Settings, args) -> None:
    from catalog.identity import revoke

    revoke(settings, args.name)
    _administered(settings, "user.revoke", {"user": args.name})
    say(f"user {args.name} and all its tokens revoked")


def cmd_exchange_services_list(settings: Settings, args) -> None:
    from exchange.registry import load_services

    services, problems = load_services(settings=settings)
    for problem in problems:
        say(f"hub: not loaded: {problem['error']}", file=sys.stderr)
    rows = [{"service": str(s.id), "kind": s.kind, "title": s.title, "standard": s.standard_ref,
             "personal_data": list(s.personal_data), "requires_issue": s.requires_issue, "file": str(s.path)}
            for s in services]
    _print_list(rows, args.json, lambda s: f"{s['service']:<44} {s['kind']:<8} {s['standard']:<18} "
                                           f"{'X-Road-Issue required' if s['requires_issue'] else '-':<22} {s['title']}")


def cmd_exchange_services_check(settings: Settings, args) -> int | None:
    from exchange.registry import load_service, load_services

    if args.files:
        services, problems = [], []
        for name in args.files:
            try:
                services.append(load_service(Path(name), settings))
            except ConfigError as e:
                problems.append({"file": name, "error": str(e)})
    else:
        services, problems = load_services(settings=settings)
    for s in services:
        personal = (f"returns personal data ({', '.join(s.personal_data)}): X-Road-Issue required"
                    if s.requires_issue else "no personal data")
        say(f"ok   {s.id} ({s.path}): {s.kind} service, {s.standard_ref}, {personal}")
    for problem in problems:
        say(f"FAIL {problem['error']}")
    return 1 if problems else None


def cmd_exchange_clients_add(settings: Settings, args) -> None:
    from exchange.clients import add_client, certificate_fingerprint

    certificate = None
    if args.certificate:
        try:
            certificate = Path(args.certificate).read_bytes()
        except OSError as e:
            raise ConfigError(f"--certificate {args.certificate}: {e.strerror}") from None
    client, token = add_client(settings, args.client, _operator(), certificate)
    details = {"client": str(client), "prefix": token.split("_")[1]}
    if certificate is not None:
        details["certificate_sha256"] = certificate_fingerprint(certificate)
    _administered(settings, "exchange.client.add", details)
    tls = (" over mutual TLS with its certificate (SHA-256 " + details["certificate_sha256"] + ")"
           if certificate is not None else "")
    say(f"client {client} registered. Its token follows on the last line; it will not be shown again: keep it now.\n"
        "Send it as `Authorization: Bearer TOKEN` with `X-Road-Client: " + str(client) + "`" + tls + ".\n" + token)


def cmd_exchange_clients_list(settings: Settings, args) -> None:
    from exchange.clients import list_clients

    def line(c: dict) -> str:
        status = f"revoked {c['revoked_at']:%Y-%m-%d}" if c["revoked_at"] else f"since {c['created_at']:%Y-%m-%d}"
        return f"{c['client']:<40} hubx_{c['prefix']}_...  {status}"

    _print_list(list_clients(settings), args.json, line)


def cmd_exchange_clients_revoke(settings: Settings, args) -> None:
    from exchange.clients import revoke_client

    client = revoke_client(settings, args.client)
    _administered(settings, "exchange.client.revoke", {"client": str(client)})
    say(f"the credential of client {client} is revoked")


def cmd_exchange_grant(settings: Settings, args) -> None:
    from exchange.clients import grant

    given = grant(settings, args.service, args.client, args.purpose, _operator())
    _administered(settings, "exchange.grant", {"service": str(given.service), "client": str(given.client),
                                               "purpose": given.purpose})
    say(f"{given.client} may call {given.service}" + (f" for: {given.purpose}" if given.purpose else ""))


def cmd_exchange_revoke(settings: Settings, args) -> None:
    from exchange.clients import revoke_grant

    service, client = revoke_grant(settings, args.service, args.client, _operator())
    _administered(settings, "exchange.revoke", {"service": str(service), "client": str(client)})
    say(f"{client} may no longer call {service}")


def cmd_exchange_grants(settings: Settings, args) -> None:
    from exchange.clients import list_grants

    def line(g: dict) -> str:
        status = f" (revoked {g['revoked_at']:%Y-%m-%d})" if g["revoked_at"] else ""
        return f"{g['service']:<44} {g['client']:<32} {g['purpose'] or '-'}{status}"

    _print_list(list_grants(settings, include_revoked=args.all), args.json, line)


def cmd_exchange_subscribe(settings: Settings, args) -> None:
    from exchange.events import subscribe

    made = subscribe(settings, args.service, args.client, args.url)
    _administered(settings, "exchange.subscribe", {"service": made["service"], "client": made["client"],
                                                   "subscription": made["id"]})
    start = (f"after version {made['after_snapshot']} (earlier changes: the feed, ?since=)"
             if made["after_snapshot"] is not None else f"with the first version of {made['dataset']}")
    say(f"{made['client']} is sent the change events of {made['service']} {start}, signed with the secret on the "
        "last line (X-Hub-Signature-256: sha256=HMAC-SHA256 of the body). It will not be shown again: give it to "
        "the receiver now.\n" + made["secret"])


def cmd_exchange_unsubscribe(settings: Settings, args) -> None:
    from exchange.events import unsubscribe

    done = unsubscribe(settings, args.service, args.client)
    _administered(settings, "exchange.unsubscribe", done)
    say(f"{done['client']} is no longer sent the change events of {done['service']}; its undelivered ones are "
        "dropped")


def cmd_exchange_subscriptions(settings: Settings, args) -> None:
    from exchange.events import list_subscriptions

    _print_list(list_subscriptions(settings), args.json,
                lambda s: f"{s['service']:<44} {s['client']:<28} {s['target']:<32} {s['delivered']} delivered, "
                          f"{s['pending']} pending, {s['failed']} failed; last delivered version "
                          f"{s['last_delivered_snapshot'] or '-'}")


def _operator() -> str:
    import getpass

    return getpass.getuser()


def cmd_audit_verify(settings: Settings, args) -> int:
    from catalog.audit import verify

    found = verify(settings)
    if found["ok"]:
        before = f", the first {found['unkeyed']} written before the audit key" if found["unkeyed"] else ""
        say(f"audit log intact: {found['entries']} entries{before}")
        return 0
    where = f"broken at entry {found['first_bad']}" if found["first_bad"] is not None else "cannot be verified"
    say(f"audit log {where}: {found['problem']} ({found['entries']} entries)\n  {found['detail']}",
          file=sys.stderr)
    return 1


def _audit_line(e: dict) -> str:
    return (f"{e['seq']:>7} {e['at']} {e['actor']:<20} {e['role']:<12} {e['action']:<16} "
            f"{e['dataset'] or '-':<20} {e['client'] or '-'}")


def cmd_audit_who_accessed(settings: Settings, args) -> None:
    from catalog.audit import who_accessed

    _print_list(who_accessed(settings, args.dataset), args.json, _audit_line)


def cmd_audit_list(settings: Settings, args) -> None:
    from catalog.audit import recent

    _print_list(recent(settings, args.limit), args.json, _audit_line)


def cmd_quarantine_show(settings: Settings, args) -> None:
    """A source run's rejected rows as sent, with the reasons in words: a table to read, or CSV or XLSX to fix and
    send again. The operator on the hub's machine sees the values; the read is audited (quarantine.read), and no
    value is logged."""
    import getpass

    from catalog.audit import record
    from hub.quarantine import rejects, write_csv, write_table, write_xlsx

    if args.format == "xlsx" and not args.output:
        raise ConfigError("--format xlsx writes a file: give it with --output FILE")
    if args.output and not Path(args.output).parent.is_dir():
        raise ConfigError(f"--output {args.output}: cannot write there: no such folder")
    with rejects(settings, args.source, args.run, values=True, lang=args.lang) as found:
        record(settings, getpass.getuser(), "operator", "quarantine.read", dataset=found.dataset, client="cli",
               details={"run_id": found.run_id, "rows": found.count, "records": True, "format": args.format})
        if not args.output:
            sink = _output[0]
            if args.format == "csv":
                sink.flush()
                write_csv(found, sink.buffer)
                sink.buffer.flush()
            else:
                write_table(found, sink)
            return
        written = _write_privately(Path(args.output), args.format, found,
                                   {"csv": write_csv, "xlsx": write_xlsx, "table": write_table})
    say(f"wrote {written} rejected rows of {found.dataset} run {found.run_id} to {args.output}", file=sys.stderr)


def _write_privately(path: Path, fmt: str, found, writers: dict) -> int:
    """Write an export to `path` through a new file only its owner may read (it holds records as received),
    renamed into place once whole: a failed export leaves no half file, nor an older one changed."""
    import tempfile

    try:
        fd, partial = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    except OSError as e:
        raise ConfigError(f"--output {path}: cannot write there: {e.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as raw:
            if fmt == "table":
                text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
                written = writers[fmt](found, text)
                text.flush()
                text.detach()
            else:
                written = writers[fmt](found, raw)
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return written


def cmd_query(settings: Settings, args) -> None:
    from catalog.query import query

    table = query(settings, args.sql)
    if args.format == "json":
        _print_json(table.to_pylist())
    else:
        import pyarrow.csv as pcsv

        sink = _output[0].buffer
        pcsv.write_csv(table, sink)
        sink.flush()


def cmd_standards_list(settings: Settings, args) -> None:
    from schemas import list_standards

    standards = [
        {"name": s.name, "version": s.version, "title": s.title, "classification": s.classification,
         "fields": len(s.fields), "primary_key": list(s.primary_key), "file": str(s.path)}
        for s in list_standards()
    ]
    _print_list(standards, args.json, lambda s: f"{s['name'] + '@' + s['version']:<34} {s['classification']:<9} "
                                                f"{s['fields']:>3} fields  {s['title']}")


def cmd_standards_show(settings: Settings, args) -> None:
    from schemas import load_standard

    s = load_standard(args.standard)
    fields = [
        {"name": f.name, "type": f.type + (" or null" if f.nullable else ""), "format": f.format,
         "required": f.required, "title": f.title, "title_en": f.title_en, "description": f.description,
         "concept": f.concept, "rules": f.constraints, "code_list": f.code_list, "unit": f.unit,
         "personal_data": f.personal_data, "classification": f.classification or s.classification}
        for f in s.fields
    ]
    if args.json:
        _print_json({"name": s.name, "version": s.version, "title": s.title, "description": s.description,
                     "primary_key": list(s.primary_key), "metadata": s.metadata, "fields": fields})
        return
    say(f"{s.title} ({s.ref})\n{s.description}\n")
    for key, value in s.metadata.items():
        say(f"  {key:<18} {', '.join(value) if isinstance(value, list) else value}")
    say(f"  {'primary key':<18} {', '.join(s.primary_key) or '-'}\n")
    for f in fields:
        rules = ", ".join([f"{k}={v}" for k, v in f["rules"].items()] + ([f"format={f['format']}"] if f["format"] else []))
        if f["code_list"]:
            rules = ", ".join(filter(None, [rules, "code list " + " ".join(str(v) for v in f["code_list"].values())]))
        flags = " ".join(filter(None, ["required" if f["required"] else "", f["personal_data"] and "personal:" + f["personal_data"]]))
        say(f"  {f['name']:<24} {f['type']:<16} {flags:<26} {f['title']}" + (f"  [{rules}]" if rules else ""))


def cmd_standards_check(settings: Settings, args) -> None:
    """Load every standard (or the files given) and compile its suite; report what is wrong."""
    from schemas.standards import load_standard_file, standards_dir
    from schemas.suite import expectation_specs

    paths = [Path(p) for p in args.files] or sorted(standards_dir().glob("*.json"))
    failed = 0
    for path in paths:
        try:
            standard = load_standard_file(path)
            checks = len(expectation_specs(standard))
        except HubError as e:
            failed += 1
            say(f"FAIL {path}: {e}")
        else:
            say(f"ok   {standard.ref}: {len(standard.fields)} fields, {checks} checks")
    if failed:
        raise HubError(f"{failed} of {len(paths)} standards have errors")


def cmd_standards_docs(settings: Settings, args) -> None:
    """Write the HTML and Markdown data dictionary of every standard."""
    from schemas.dictionary import write_all

    folder = Path(args.output or settings.home / "docs" / "standards")
    paths = write_all(folder)
    say(f"wrote {len(paths)} files to {folder} (open {folder / 'index.html'})")


def cmd_standards_suite(settings: Settings, args) -> None:
    """Write a standard's compiled suite (the pipeline's) as Great Expectations' own JSON."""
    from schemas.suite import compile_suite

    text = json.dumps(compile_suite(_standard_arg(args.standard)).to_json_dict(), indent=2, ensure_ascii=False)
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
        say(f"wrote {args.output}")
    else:
        say(text)


def _standard_arg(text: str):
    """A standard given as NAME, NAME@VERSION or a path to its file."""
    from schemas import load_standard
    from schemas.standards import load_standard_file

    return load_standard_file(Path(text)) if text.endswith(".json") else load_standard(text)


def cmd_standards_diff(settings: Settings, args) -> int:
    """Classify every change between two versions; fail when the version number hides a breaking one."""
    from schemas.compatibility import diff, version_problem

    old, new = _standard_arg(args.old), _standard_arg(args.new)
    changes = diff(old, new)
    problem = version_problem(old, new, changes)
    if args.json:
        _print_json({"old": old.ref, "new": new.ref, "problem": problem,
                     "changes": [{"field": c.field, "change": c.what, "breaking": c.breaking} for c in changes]})
    else:
        say(f"{old.ref} -> {new.ref}: {len(changes)} changes, {sum(c.breaking for c in changes)} breaking")
        for change in changes:
            say(f"  {change}")
        if problem:
            say(f"error: {problem}")
    return 1 if problem else 0


def cmd_standards_odcs(settings: Settings, args) -> None:
    """Print a standard's data contract (ODCS v3.1.0); a dataset's, with its servers, is served by the API."""
    from schemas.contracts import contract, to_yaml

    document = contract(_standard_arg(args.standard))
    if args.json:
        _print_json(document)
    else:
        say(to_yaml(document), end="")


def cmd_standards_import_odcs(settings: Settings, args) -> None:
    """Write the draft standard of an ODCS contract, and say what the steward must still fill in or look at."""
    from schemas.contracts import import_contract

    path, notes = import_contract(Path(args.file), Path(args.output or settings.home / "drafts" / "standards"))
    for note in notes:
        say(f"note: {note}")
    say(f"wrote draft {path}; check it with `hub standards check {path}`, then copy it into the standards folder")


def cmd_validate(settings: Settings, args) -> int:
    """Validate a file of records against a standard; exit 1 when a row is invalid."""
    from schemas.records import validate_file

    # A standard's file (a steward's draft, say), or a registered NAME or NAME@VERSION.
    standard = _standard_arg(args.standard)
    report = validate_file(standard, Path(args.data))
    if args.json:
        _print_json(report)
    else:
        summary = report["summary"]
        say(f"{summary['standard']}: {summary['rows']} rows, {summary['valid']} valid, {summary['invalid']} invalid")
        for row in report["invalid_rows"]:
            say(f"  row {row['row']}: " + ", ".join(f"{r['field']}:{r['rule']}" for r in row["reasons"]))
    return 1 if report["summary"]["invalid"] else 0


def cmd_codelists_list(settings: Settings, args) -> None:
    from schemas.codelists import list_codelists

    _print_list(list_codelists(), args.json, lambda c: f"{c['name'] + '@' + c['edition']:<24} {c['codes']:>6} codes  {c['title']} ({c['owner']})")


def cmd_codelists_show(settings: Settings, args) -> None:
    from schemas.codelists import describe, editions, rows

    edition = args.edition or editions(args.name)[-1]
    info = describe(args.name, edition)
    entries = rows(args.name, edition)
    if args.json:
        _print_json({**info, "rows": list(entries)})
        return
    say(f"{info['title']} ({args.name}@{edition}), {info['owner']}")
    for r in entries:
        say("  " + "  ".join(str(v) for v in r.values()))


def cmd_codelists_crosswalk(settings: Settings, args) -> None:
    """Rebuild the registered crosswalk OLD->NEW of a code list from its two editions."""
    from schemas.codelists import codelists_dir, rows
    from schemas.crosswalk import build_crosswalk, count_changes, crosswalk_file, write_crosswalk

    entry = crosswalk_file(args.name, args.old, args.new)
    crosswalk = build_crosswalk(rows(args.name, args.old), rows(args.name, args.new))
    if args.output == "-":
        write_crosswalk(crosswalk, entry["columns"], _output[0])
    else:
        path = args.output or codelists_dir() / entry["file"]
        with open(path, "w", encoding="utf-8", newline="") as f:
            write_crosswalk(crosswalk, entry["columns"], f)
    for change, count in count_changes(crosswalk).items():
        say(f"{change:<13} {count:>6}", file=sys.stderr)


def cmd_codelists_check(settings: Settings, args) -> int:
    """Check the code lists' index and every file it names (or the files given); exit 1 when something is wrong."""
    from schemas.codelists import check_codelists, index_path

    paths = [Path(p) for p in args.files]
    problems = check_codelists(paths or None)
    if args.json:
        _print_json({"checked": [str(p) for p in paths or [index_path()]],
                     "problems": [{**p.public(), "path": p.path} for p in problems]})
    else:
        for problem in problems:
            say(problem.located(full=True))
        checked = ", ".join(map(str, paths)) or f"{index_path()} and the files it names"
        say(f"{len(problems)} problems in {checked}" if problems else f"ok   {checked}")
    return 1 if problems else 0


def cmd_maintain(settings: Settings, args) -> None:
    """Expire old snapshots by policy; remove orphan files after the grace period, staging folders no run will
    publish and stale masked copies (what the daily hub__maintenance DAG does)."""
    from hub.maintenance import maintain, report_lines

    result = maintain(settings, dry_run=args.dry_run)
    if args.json:
        _print_json(result)
    else:
        for line in report_lines(result):
            say(line)
    if result["errors"]:
        raise HubError(f"maintenance: {len(result['errors'])} step(s) failed (named above); the rest was done")


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 2**10:.1f} kB"


def cmd_backup(settings: Settings, args) -> None:
    """Back up the catalog database, the warehouse and the secrets into one archive; the hub may be running."""
    from hub.backup import backup

    result = backup(settings, Path(args.dest))
    _administered(settings, "hub.backup", {"archive": result["archive"], "datasets": len(result["datasets"])})
    if args.json:
        _print_json(result)
        return
    say(f"backup written to {result['archive']} ({_size(result['archive_bytes'])}): catalog "
        f"({result['source']['catalog_kind']}, {result['catalog']['how']}), {len(result['datasets'])} datasets, "
        f"{result['warehouse']['files']} warehouse files ({_size(result['warehouse']['bytes'])}), "
        f"{len(result['secrets'])} secrets")
    for d in result["datasets"]:
        say(f"  {d['id']:<34} {d['kind']:<11} {d['rows']:>9} rows  snapshot {d['snapshot_id']}  "
            f"{d['versions']} versions")
    for name in result["keys_from_environment"]:
        say(f"note {name} is set in the environment: it is not in the backup; keep it with the backup")
    say("not included: Airflow's database (run history; export its connections with `hub airflow connections "
        "export FILE` and keep that file as a secret)")


def cmd_restore(settings: Settings, args) -> None:
    """Restore a backup into this new, empty home (and empty catalog database), wherever it is."""
    from hub.backup import restore

    result = restore(settings, Path(args.src))
    _administered(settings, "hub.restore", {"archive": result["archive"], "backup_created": result["backup_created"],
                                            "from_home": result["from_home"]})
    if args.json:
        _print_json(result)
        return
    checked = result["checked"]
    say(f"restored {result['archive']} (made {result['backup_created']} from {result['from_home']}) into "
        f"{result['home']}: catalog {result['catalog']['from']} -> {result['catalog']['to']}, "
        f"{len(result['datasets'])} datasets, {result['warehouse']['files']} warehouse files, "
        f"{len(result['secrets'])} secrets")
    say(f"Iceberg locations moved from {result['relocated']['from']} to {result['relocated']['to']} "
        f"({result['relocated']['metadata_files_rewritten']} metadata files rewritten); checked "
        f"{checked['snapshots']} snapshots of {checked['iceberg_tables']} tables, {checked['data_files']} data files")
    for name in result["keys_from_environment"]:
        say(f"note the backup's hub took {name} from the environment: set the same value here")
    say("next: `hub init` (a new Airflow database), then import the Airflow connections exported on the old "
        "machine (`hub airflow connections import FILE`), then `hub up`")


def cmd_serve(settings: Settings, args) -> None:
    import ssl

    import uvicorn

    from serving.api import create_app
    from serving.guard import HeadLimitedProtocol

    if args.workers < 1:
        raise ConfigError(f"hub serve: --workers {args.workers}: give at least 1")
    if bool(args.tls_cert) != bool(args.tls_key):
        raise ConfigError("hub serve: give both --tls-cert and --tls-key, or neither")
    if args.tls_client_ca and not args.tls_cert:
        raise ConfigError("hub serve: --tls-client-ca needs TLS (--tls-cert and --tls-key)")
    for option, path in (("--tls-cert", args.tls_cert), ("--tls-key", args.tls_key),
                         ("--tls-client-ca", args.tls_client_ca)):
        if path and not Path(path).is_file():
            raise ConfigError(f"hub serve: {option} {path}: no such file")
    if args.tls_cert:  # read here, so that a bad file stops `hub serve`, not each worker it starts, over and over
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            tls.load_cert_chain(args.tls_cert, args.tls_key)
        except (ssl.SSLError, ValueError) as e:
            raise ConfigError(f"hub serve: --tls-cert {args.tls_cert} and --tls-key {args.tls_key} are not a PEM "
                              f"certificate and its private key ({e})") from None
        if args.tls_client_ca:
            try:
                tls.load_verify_locations(args.tls_client_ca)
            except (ssl.SSLError, ValueError) as e:
                raise ConfigError(f"hub serve: --tls-client-ca {args.tls_client_ca} holds no PEM certificate "
                                  f"({e})") from None
    app = create_app(settings)  # a bad HUB_TRUSTED_PROXIES or HUB_MAX_HEADER_BYTES stops here, before listening
    if args.workers > 1:
        # uvicorn binds the socket here and spawns the workers, each importing its app by name and building it
        # (serving.api.app_from_environment) from these settings, exported for it, and the rest of this
        # environment; the app above was built to find a bad setting before anything listens.
        os.environ.update({"HUB_HOME": str(settings.home), "HUB_CATALOG_URL": settings.catalog_url,
                           "HUB_REGISTRY": str(settings.registry),
                           "HUB_DATA_DIRS": os.pathsep.join(str(p) for p in settings.data_dirs),
                           "HUB_SERVICES": str(settings.services)})
        app = "serving.api:app_from_environment"
    base = f"{'https' if args.tls_cert else 'http'}://{args.host}:{args.port}"
    workers = f", {args.workers} worker processes" if args.workers > 1 else ""
    say(f"catalog portal on {base}/ and API on {base}/api{workers} (Ctrl-C to stop)", flush=True)
    # Access lines stay off: a URL's query may hold what a person typed (a NIK in a filter); reads of data
    # that is not public are in the audit log instead.
    # HeadLimitedProtocol: uvicorn's httptools protocol, the request head capped (431); it also hands a
    # connection's TLS client certificate to its requests.
    # proxy_headers off: uvicorn would believe X-Forwarded-For from 127.0.0.1, any local process; the app
    # believes it only from HUB_TRUSTED_PROXIES (serving.guard).
    # With a client CA, a connection may present a certificate of it (browsers need not): the service bus then
    # requires one of every client system (exchange.clients.authenticate), and TLS has verified it.
    # With workers, SIGINT and SIGTERM stop uvicorn's supervisor here, which stops every worker before it returns.
    uvicorn.run(app, factory=args.workers > 1, workers=args.workers, host=args.host, port=args.port,
                log_level="warning", access_log=False,
                ssl_certfile=args.tls_cert, ssl_keyfile=args.tls_key, ssl_ca_certs=args.tls_client_ca,
                ssl_cert_reqs=ssl.CERT_OPTIONAL if args.tls_client_ca else ssl.CERT_NONE,
                http=HeadLimitedProtocol, proxy_headers=False, server_header=False)


def cmd_runner(settings: Settings, args) -> None:
    from hub.runner import serve

    serve(settings)


def cmd_airflow(settings: Settings, args) -> None:
    os.execv(sys.executable, [sys.executable, "-m", "airflow", *args.airflow_args])


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hub", description="interop-hub: agency sources to one open catalog.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("init", help="create the home folder, Airflow DB, catalog and warehouse")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=cmd_init)

    s = sub.add_parser("run", help="run one source now, without Airflow, then its integrated dataset and indicators")
    s.add_argument("source")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("integrate", help="rebuild a standard's integrated dataset now, without Airflow")
    s.add_argument("standard")
    s.set_defaults(func=cmd_integrate)

    s = sub.add_parser("up", help="start and supervise every component: Airflow, the catalog server (and the demo)")
    s.add_argument("--demo", action="store_true", help="also build and serve the demo agency systems, and print "
                   "the summary of their first runs")
    s.add_argument("--host", default="127.0.0.1", help="address the portal and Airflow's UI listen on")
    s.add_argument("--port", type=int, default=8000, help="port of the catalog portal and API")
    s.add_argument("--airflow-port", type=int, default=8080, help="port of Airflow's API server and UI")
    s.add_argument("--people", type=int, default=5000, help="people in the demo population database")
    s.add_argument("--celery-workers", type=int, default=None,
                   help="Celery workers to start on this machine under the CeleryExecutor (default 1; 0 when they "
                        "all run on other machines)")
    s.add_argument("--workers", type=int, default=1, help="processes of the catalog server, as `hub serve --workers`")
    s.set_defaults(func=cmd_up)

    s = sub.add_parser("runner", help="keep Great Expectations, Iceberg and the compiled suites warm for runs and "
                       "Airflow's tasks of this home (`hub up` starts it)")
    s.set_defaults(func=cmd_runner)

    s = sub.add_parser("status", help="each component, each DAG's last and next run, failed runs, broken files")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_status)

    sources = sub.add_parser("sources", help="the agency source registry").add_subparsers(dest="action", required=True)
    s = sources.add_parser("list")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_sources_list)
    s = sources.add_parser("new", help="write a registration to fill in, for a connector kind")
    s.add_argument("kind")
    s.add_argument("source", help="the new source's id: lower case letters, digits, underscores")
    s.add_argument("--standard", required=True, help="NAME or NAME@VERSION of the standard it feeds")
    s.add_argument("--agency", required=True, help="the agency's code, e.g. dinsos")
    s.set_defaults(func=cmd_sources_new)
    s = sources.add_parser("check", help="validate a registration and reach its system")
    s.add_argument("source")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_sources_check)
    s = sources.add_parser("test", help="read, harmonize and validate the first records; write nothing")
    s.add_argument("source")
    s.add_argument("--limit", type=int, default=1000, help="how many records to read (default 1000)")
    s.add_argument("--lang", choices=["id", "en"], default="id", help="the language of the reasons (default id)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_sources_test)

    indicators = sub.add_parser("indicators", help="the indicator datasets (declared SQL models)")
    indicators = indicators.add_subparsers(dest="action", required=True)
    s = indicators.add_parser("list")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_indicators_list)
    s = indicators.add_parser("build", help="rebuild an indicator dataset now, without Airflow")
    s.add_argument("indicator")
    s.set_defaults(func=cmd_indicators_build)

    catalog = sub.add_parser("catalog", help="the published datasets").add_subparsers(dest="action", required=True)
    s = catalog.add_parser("list")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_catalog_list)
    s = catalog.add_parser("reindex", help="rebuild the search index of every dataset")
    s.set_defaults(func=cmd_catalog_reindex)
    s = catalog.add_parser("engines", help="connection settings for Spark, Trino, DuckDB and Polars reading the "
                                           "public tables (namespace publik)")
    s.add_argument("--engine", choices=["spark-sql", "pyspark", "trino", "duckdb", "polars"],
                   help="print only this engine's settings")
    s.set_defaults(func=cmd_catalog_engines)

    standards = sub.add_parser("standards", help="the data standards").add_subparsers(dest="action", required=True)
    s = standards.add_parser("list")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_standards_list)
    s = standards.add_parser("show", help="metadata and fields of NAME or NAME@VERSION")
    s.add_argument("standard")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_standards_show)
    s = standards.add_parser("diff", help="classify the changes between two versions (NAME@VERSION or file)")
    s.add_argument("old")
    s.add_argument("new")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_standards_diff)
    s = standards.add_parser("docs", help="write the data dictionary (HTML and Markdown) of every standard")
    s.add_argument("--output", help="folder (default: HUB_HOME/docs/standards)")
    s.set_defaults(func=cmd_standards_docs)
    s = standards.add_parser("check", help="check the standards (or the files given) and compile their suites")
    s.add_argument("files", nargs="*")
    s.set_defaults(func=cmd_standards_check)
    s = standards.add_parser("suite", help="write the compiled suite of NAME@VERSION as Great Expectations JSON")
    s.add_argument("standard")
    s.add_argument("--output", help="file (default: standard output)")
    s.set_defaults(func=cmd_standards_suite)
    s = standards.add_parser("odcs", help="print a standard's data contract (ODCS v3.1.0), YAML or --json")
    s.add_argument("standard", help="NAME, NAME@VERSION or a standard's file")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_standards_odcs)
    s = standards.add_parser("import-odcs", help="turn an ODCS contract (YAML or JSON) into a draft standard")
    s.add_argument("file")
    s.add_argument("--output", help="folder of the draft (default: HUB_HOME/drafts/standards)")
    s.set_defaults(func=cmd_standards_import_odcs)

    s = sub.add_parser("validate", help="validate a CSV, JSON Lines or Parquet file of records against a standard")
    s.add_argument("standard", help="NAME, NAME@VERSION or a standard's JSON Schema file")
    s.add_argument("data", help="the records: .csv (UTF-8, comma), .jsonl or .parquet")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_validate)

    codelists = sub.add_parser("codelists", help="the code lists").add_subparsers(dest="action", required=True)
    s = codelists.add_parser("list")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_codelists_list)
    s = codelists.add_parser("show")
    s.add_argument("name")
    s.add_argument("--edition")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_codelists_show)
    s = codelists.add_parser("crosswalk", help="rebuild the crosswalk between two editions (codelists.yaml names its file)")
    s.add_argument("name")
    s.add_argument("old")
    s.add_argument("new")
    s.add_argument("--output", help="a file, or - for stdout (default: the registered file)")
    s.set_defaults(func=cmd_codelists_crosswalk)
    s = codelists.add_parser("check", help="check the code lists' index and files: each problem with file, line "
                                           "and column")
    s.add_argument("files", nargs="*", help="an index (codelists.yaml) or CSV files (default: the index and every "
                   "file it names)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_codelists_check)

    s = sub.add_parser("maintain", help="expire old snapshots, remove orphan files, finished runs' staging "
                                        "and stale masked copies")
    s.add_argument("--dry-run", action="store_true", help="say what would be expired and removed; change nothing")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_maintain)

    s = sub.add_parser("backup", help="back up the catalog database, warehouse and secrets into one archive "
                                      "(the hub may be running)")
    s.add_argument("dest", help="the archive to write: a new file ending in .tar.gz, .tgz or .tar, or a folder")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_backup)

    s = sub.add_parser("restore", help="restore a backup into this new, empty home, wherever it is")
    s.add_argument("src", help="the archive `hub backup` wrote")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_restore)

    subscriptions = sub.add_parser("subscriptions", help="webhooks and e-mails told of new versions and failures")
    subscriptions = subscriptions.add_subparsers(dest="action", required=True)
    s = subscriptions.add_parser("list", help="the subscriptions (targets masked) and their deliveries")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_subscriptions_list)
    s = subscriptions.add_parser("deliver", help="try again the pending notifications whose next attempt is due")
    s.add_argument("--all", action="store_true", help="also those whose next attempt is not due yet")
    s.set_defaults(func=cmd_subscriptions_deliver)

    users = sub.add_parser("users", help="the people and programs that call the API, and their tokens")
    users = users.add_subparsers(dest="action", required=True)
    s = users.add_parser("create", help="add a user and print its first API token (shown once)")
    s.add_argument("name")
    s.add_argument("--role", required=True, choices=["steward", "agency", "analyst"])
    s.add_argument("--agency", help="the agency's code, e.g. dinsos (role agency only)")
    s.add_argument("--expires-days", type=int, help="the token expires after this many days (default: never)")
    s.set_defaults(func=cmd_users_create)
    s = users.add_parser("token", help="print another API token for a user (shown once)")
    s.add_argument("name")
    s.add_argument("--expires-days", type=int, help="the token expires after this many days (default: never)")
    s.set_defaults(func=cmd_users_token)
    s = users.add_parser("list", help="the users and their tokens' prefixes (never the tokens)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_users_list)
    s = users.add_parser("revoke", help="revoke a user and all its tokens")
    s.add_argument("name")
    s.set_defaults(func=cmd_users_revoke)

    exchange = sub.add_parser("exchange", help="the service bus (X-Road PR-REST): services, client subsystems, "
                                               "grants")
    exchange = exchange.add_subparsers(dest="area", required=True)
    services = exchange.add_parser("services", help="the registered services (HUB_SERVICES)")
    services = services.add_subparsers(dest="action", required=True)
    s = services.add_parser("list", help="the services that load, their kind, standard and whether they need "
                                         "X-Road-Issue")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_exchange_services_list)
    s = services.add_parser("check", help="check the service registrations (or the files given): each problem "
                                          "with file, line and field; exit 1 if any")
    s.add_argument("files", nargs="*", metavar="FILE")
    s.set_defaults(func=cmd_exchange_services_check)
    clients = exchange.add_parser("clients", help="the client subsystems that call services, and their tokens")
    clients = clients.add_subparsers(dest="action", required=True)
    s = clients.add_parser("add", help="register a client subsystem and print its token (shown once, last line)")
    s.add_argument("client", metavar="INSTANCE/CLASS/MEMBER/SUBSYSTEM")
    s.add_argument("--certificate", metavar="FILE", help="the client system's TLS certificate (PEM or DER): its "
                                                          "calls must then also present it over mutual TLS")
    s.set_defaults(func=cmd_exchange_clients_add)
    s = clients.add_parser("list", help="the clients and their tokens' prefixes (never the tokens)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_exchange_clients_list)
    s = clients.add_parser("revoke", help="revoke a client subsystem's token")
    s.add_argument("client", metavar="INSTANCE/CLASS/MEMBER/SUBSYSTEM")
    s.set_defaults(func=cmd_exchange_clients_revoke)
    s = exchange.add_parser("grant", help="open a service to a client subsystem, for a purpose")
    s.add_argument("service", metavar="INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICE")
    s.add_argument("client", metavar="INSTANCE/CLASS/MEMBER/SUBSYSTEM")
    s.add_argument("--purpose", help="why the client may call it (recorded with the grant)")
    s.set_defaults(func=cmd_exchange_grant)
    s = exchange.add_parser("revoke", help="close a service to a client subsystem")
    s.add_argument("service", metavar="INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICE")
    s.add_argument("client", metavar="INSTANCE/CLASS/MEMBER/SUBSYSTEM")
    s.set_defaults(func=cmd_exchange_revoke)
    s = exchange.add_parser("grants", help="the live grants (--all: revoked ones too)")
    s.add_argument("--all", action="store_true")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_exchange_grants)
    s = exchange.add_parser("subscribe", help="send a granted client subsystem the change events of a changes "
                                              "service, as signed webhooks (the secret is printed once, last line)")
    s.add_argument("service", metavar="INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICE")
    s.add_argument("client", metavar="INSTANCE/CLASS/MEMBER/SUBSYSTEM")
    s.add_argument("--url", required=True, help="the consumer system's webhook URL (http or https)")
    s.set_defaults(func=cmd_exchange_subscribe)
    s = exchange.add_parser("unsubscribe", help="stop a client subsystem's change events (undelivered ones dropped)")
    s.add_argument("service", metavar="INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICE")
    s.add_argument("client", metavar="INSTANCE/CLASS/MEMBER/SUBSYSTEM")
    s.set_defaults(func=cmd_exchange_unsubscribe)
    s = exchange.add_parser("subscriptions", help="the client subsystems sent change events, and their deliveries")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_exchange_subscriptions)

    audit = sub.add_parser("audit", help="the audit log of reads, downloads, queries and administration")
    audit = audit.add_subparsers(dest="action", required=True)
    s = audit.add_parser("verify", help="check the keyed chain, its head and its witness; exit 1 naming the "
                                        "first bad entry")
    s.set_defaults(func=cmd_audit_verify)
    s = audit.add_parser("who-accessed", help="who read, downloaded or queried a dataset")
    s.add_argument("dataset")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_audit_who_accessed)
    s = audit.add_parser("list", help="the latest entries")
    s.add_argument("--limit", type=int, default=50)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_audit_list)

    quarantine = sub.add_parser("quarantine", help="the rows a source's runs rejected, and why")
    quarantine = quarantine.add_subparsers(dest="action", required=True)
    s = quarantine.add_parser("show", help="a run's rejected rows as sent, with each reason in words (table), or "
                                           "as a CSV or XLSX file to fix and send again")
    s.add_argument("source")
    s.add_argument("--run", metavar="RUN", help="the run id (default: the source's last run)")
    s.add_argument("--format", choices=["table", "csv", "xlsx"], default="table",
                   help="table: text to read; csv: UTF-8 with BOM, ';' between values; xlsx: every value as text")
    s.add_argument("--output", metavar="FILE", help="write to FILE (required for xlsx; default: standard output)")
    s.add_argument("--lang", choices=["id", "en"], default="id", help="the language of the reasons and the added "
                                                                       "columns' names")
    s.set_defaults(func=cmd_quarantine_show)

    s = sub.add_parser("query", help="run SQL (DuckDB) over the published datasets")
    s.add_argument("sql")
    s.add_argument("--format", choices=["csv", "json"], default="csv")
    s.set_defaults(func=cmd_query)

    s = sub.add_parser("serve", help="serve the catalog API")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--tls-cert", metavar="FILE", help="serve HTTPS with this certificate (PEM, chain included)")
    s.add_argument("--tls-key", metavar="FILE", help="the certificate's private key (PEM)")
    s.add_argument("--tls-client-ca", metavar="FILE", help="the CA (PEM) of client systems' certificates: the service "
                                                            "bus then requires mutual TLS of every client system")
    s.add_argument("--workers", type=int, default=1, metavar="N",
                   help="serve from N processes on the one port (default 1): one per core the hub may use")
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("airflow", help="Airflow's own command line, configured for this hub")
    s.add_argument("airflow_args", nargs=argparse.REMAINDER)
    s.set_defaults(func=cmd_airflow)
    return p


# The commands that act on source registrations and standards: before each, their changes go in the audit log.
# (`hub sources new`, `check` and `test` are left out: an agency drafting a registration has no catalog.)
_ACTING_ON_CONFIGURATION = {cmd_init, cmd_run, cmd_integrate, cmd_up, cmd_indicators_build, cmd_serve}


def main(argv: list[str] | None = None) -> int:
    from hub import runner

    argv = sys.argv[1:] if argv is None else list(argv)
    if runner.wanted(argv):  # done by a warm child of the home's runner when one is up
        try:
            return runner.call(load_settings().home, "cli", argv)
        except runner.Unavailable:
            pass
    args = _parser().parse_args(argv)
    settings = load_settings()
    configure_airflow(settings)
    _output[0], sys.stdout = sys.stdout, sys.stderr
    try:
        if args.func in _ACTING_ON_CONFIGURATION:
            _configuration_audited(settings)
        status = args.func(settings, args)
    except HubError as e:
        say(f"hub: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        _output[0].flush()
        sys.stdout = _output[0]
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
