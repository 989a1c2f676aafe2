"""The catalog's HTTP API (FastAPI): datasets, their metadata, versions, quality, lineage and rows."""

from __future__ import annotations

import logging
from contextlib import ExitStack

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import select

from catalog.access import Access, AccessDenied, access_to, listed
from catalog.db import Dataset, DatasetVersion, init_db, session
from catalog.identity import Identity, caller, client_of, may_see_agency
from catalog.metadata import describe, summary
from catalog.views import visible
from catalog.sql import MAX_ROWS as SQL_MAX_ROWS
from hub.errors import Busy, ConfigError, QueryError
from hub.followed import BrokenFile
from serving.downloads import BATCH_ROWS, FORMATS, described, measured, record, stream
from serving.models import (AUTH, BEARER, OPTIONAL_AUTH, DatasetDescription, DatasetList, Rows, SearchResult,
                            SqlResult, VersionList, errors, files)

__all__ = ["create_app"]

log = logging.getLogger(__name__)

MAX_ROWS = 1000


class SqlRequest(BaseModel):
    sql: str = Field(description="one SELECT; datasets are tables named by their id", max_length=100_000,
                     examples=["SELECT kode_wilayah, count(*) AS penduduk FROM penduduk GROUP BY 1 ORDER BY 2 DESC"])
    limit: int = Field(1000, ge=1, le=SQL_MAX_ROWS, description="the most rows to return")


def _version(s, d: Dataset, version: str) -> int:
    """The snapshot a `version` parameter names: a snapshot id of the dataset, or the one current at a time."""
    import datetime as dt

    versions = s.scalars(select(DatasetVersion).where(DatasetVersion.dataset_id == d.id)).all()
    if version.isdigit():
        if int(version) not in {v.snapshot_id for v in versions}:
            raise HTTPException(404, f"dataset {d.id!r} has no version {version}")
        return int(version)
    try:
        at = dt.datetime.fromisoformat(version.replace("Z", "+00:00"))
    except ValueError:
        raise HTTPException(422, "version: a snapshot id or an ISO 8601 time") from None
    if at.tzinfo is not None:  # the catalog keeps UTC without a zone
        at = at.astimezone(dt.timezone.utc).replace(tzinfo=None)
    earlier = [v for v in versions if v.committed_at <= at]
    if not earlier:
        raise HTTPException(404, f"dataset {d.id!r} had no version at {version}")
    return max(earlier, key=lambda v: (v.committed_at, v.id)).snapshot_id


def create_app(settings) -> FastAPI:
    from exchange.server import Door
    from serving import apidocs, guard
    from catalog.query import Limits
    from schemas import load_standard

    init_db(settings.catalog_url)
    current = caller(settings)  # who a request comes from: its Bearer token, or anonymous
    Limits.from_env()  # a bad HUB_QUERY_* setting stops `hub serve` here, not at its first query

    # An operation's id is its function's name: what a generated client calls it (list_datasets, dataset_rows).
    app = FastAPI(title="interop-hub catalog", version="0.1.0", docs_url=None, redoc_url=None,
                  description="Datasets harmonized to Kota Bogor's data standards. Anonymous callers see what the "
                              "public may; an API token (Authorization: Bearer TOKEN) shows what its holder may.",
                  generate_unique_id_function=lambda route: route.name)
    document = app.openapi

    def openapi() -> dict:
        """FastAPI's document, with the hub's bearer tokens as its security scheme."""
        if app.openapi_schema is None:
            document().setdefault("components", {})["securitySchemes"] = BEARER
        return app.openapi_schema

    app.openapi = openapi
    # The service bus's door (/r1/..., /listClients): inside the guard, before the app's own routing.
    app.add_middleware(Door, settings=settings)
    guard.install(app)  # request limits, the trusted-proxy rule, security headers
    apidocs.install(app)  # /docs with its assets from this origin

    @app.exception_handler(AccessDenied)
    def access_denied(request: Request, e: AccessDenied) -> JSONResponse:
        if e.needs_token:
            return JSONResponse({"detail": str(e)}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
        return JSONResponse({"detail": str(e)}, status_code=403)

    @app.exception_handler(Busy)
    def busy(request: Request, e: Busy) -> JSONResponse:
        return JSONResponse({"detail": str(e)}, status_code=503, headers={"Retry-After": str(e.retry_after)})

    @app.exception_handler(ConfigError)
    def config_error(request: Request, e: ConfigError) -> Response:
        """A standard, code list or setting this process has no good version of: a clear answer, never a traceback.
        503: the same request answers once the walidata fixes the file. A file's problem is named by the file's
        name, place and message; anything else stays in the log."""
        from serving.portal import problem_page

        log.warning("%s %s: %s", request.method, request.url.path, e)
        if not request.url.path.startswith(("/api", "/catalog.")):
            return problem_page(request, e)
        problems = e.problems if isinstance(e, BrokenFile) else []
        detail = ("a standard could not be loaded: " + "; ".join(map(str, problems)) if problems else
                  "the hub's configuration has a problem; the walidata can see it in the server's log")
        return JSONResponse({"detail": detail, "problems": [p.public() for p in problems]}, status_code=503)

    def get_dataset(s, dataset_id: str, who: Identity) -> tuple[Dataset, Access]:
        """The dataset and what `who` may do with it; 404 for one it may not know of, as for one that is not."""
        d = s.get(Dataset, dataset_id)
        if d is None:
            raise HTTPException(404, f"no dataset {dataset_id!r}")
        try:
            standard = load_standard(f"{d.standard}@{d.standard_version}")
        except ConfigError:
            if d.classification == "rahasia":  # who may know of it is the standard's to say: nobody, meanwhile
                raise HTTPException(404, f"no dataset {dataset_id!r}") from None
            raise
        seen = access_to(who, d, standard)
        if not seen.listed:
            raise HTTPException(404, f"no dataset {dataset_id!r}")
        return d, seen

    def owner_or_steward(who: Identity, d: Dataset) -> None:
        """Runs and quarantine are for stewards and the agency that owns the source."""
        if who.anonymous:
            raise AccessDenied(f"the runs and quarantine of {d.id} need a token (Authorization: Bearer TOKEN)",
                               needs_token=True)
        if not may_see_agency(who, d.agency_code):
            raise AccessDenied(f"only stewards and the agency that owns {d.id} see its runs and quarantine",
                               needs_token=False)

    @app.get("/api", summary="Where the API's parts are")
    def index() -> dict:
        return {"name": "interop-hub", "datasets": "/api/datasets", "search": "/api/search", "sql": "/api/sql",
                "ckan": "/api/3/action/package_list", "dcat": "/catalog.ttl", "openapi": "/openapi.json",
                "docs": "/docs", "portal": "/"}

    @app.get("/api/datasets", response_model=None, openapi_extra=OPTIONAL_AUTH,
             responses={200: {"model": DatasetList}, **errors(401, 429)})
    def list_datasets(who: Identity = Depends(current)) -> dict:
        """The datasets the caller may know of (a `rahasia` one only to those cleared for it)."""
        known = listed(settings, who)
        with session(settings.catalog_url) as s:
            return {"datasets": [summary(d) for d in s.scalars(select(Dataset).order_by(Dataset.id))
                                 if d.id in known]}

    @app.get("/api/search", response_model=None, openapi_extra=OPTIONAL_AUTH,
             responses={200: {"model": SearchResult}, **errors(401, 429, 503)})
    def search_datasets(q: str = "", agency: list[str] = Query([]), standard: list[str] = Query([]),
                        tag: list[str] = Query([]), classification: list[str] = Query([]),
                        topic: list[str] = Query([]), kind: list[str] = Query([]),
                        rows: int = Query(10, ge=1, le=1000), start: int = Query(0, ge=0),
                        sort: str = Query("relevance", pattern="^(relevance|title|modified)$"),
                        who: Identity = Depends(current)) -> dict:
        """Full-text search over titles, descriptions, tags and fields, with synonyms (bansos, bantuan sosial);
        facets by agency, standard, tag, classification, topic and kind (harmonized, integrated, indicator),
        counted over every match. Repeat a facet parameter to accept any of its values."""
        from catalog.search import search

        filters = {k: v for k, v in {"agency": agency, "standard": standard, "tag": tag,
                                      "classification": classification, "topic": topic, "kind": kind}.items() if v}
        found = search(settings, q, filters, rows=rows, start=start, sort=sort, among=set(listed(settings, who)))
        with session(settings.catalog_url) as s:
            datasets = {d.id: d for d in s.scalars(select(Dataset).where(Dataset.id.in_(found["results"])))}
            results = [summary(datasets[i]) for i in found["results"] if i in datasets]
        return {"count": found["count"], "results": results, "facets": found["facets"]}

    @app.get("/api/datasets/{dataset_id}", response_model=None, openapi_extra=OPTIONAL_AUTH,
             responses={200: {"model": DatasetDescription}, **errors(401, 404, 429, 503)})
    def show_dataset(dataset_id: str, who: Identity = Depends(current)) -> dict:
        """DCAT-AP and Satu Data metadata, schema, versions (Iceberg snapshots), quality, lineage; the runs
        too, for stewards and the agency that owns the dataset."""
        from schemas import load_problems

        with session(settings.catalog_url) as s:
            d, seen = get_dataset(s, dataset_id, who)
            [about] = described(settings, s, [d], who)
        if not may_see_agency(who, d.agency_code):
            del about["runs"]
        answer = {**about, "access": {"readable": seen.readable, "cleared": seen.cleared}}
        # Files of its standard or code lists that broke: this answer is from their last good version.
        problems = load_problems(load_standard(f"{d.standard}@{d.standard_version}"))
        if problems:
            answer["load_problems"] = [p.public() for p in problems]
        return answer

    def dataset_standard(dataset_id: str, who: Identity):
        with session(settings.catalog_url) as s:
            d, _ = get_dataset(s, dataset_id, who)
        return load_standard(f"{d.standard}@{d.standard_version}")

    @app.get("/api/datasets/{dataset_id}/dictionary", openapi_extra=OPTIONAL_AUTH,
             responses=errors(401, 404, 429, 503))
    def data_dictionary(dataset_id: str, who: Identity = Depends(current)) -> dict:
        """The data dictionary of the standard the dataset is built on."""
        from schemas.dictionary import dictionary

        return dictionary(dataset_standard(dataset_id, who))

    @app.get("/api/datasets/{dataset_id}/dictionary.html", response_class=HTMLResponse, openapi_extra=OPTIONAL_AUTH,
             responses=errors(401, 404, 429, 503))
    def data_dictionary_html(dataset_id: str, who: Identity = Depends(current)) -> str:
        from schemas.dictionary import to_html

        return to_html(dataset_standard(dataset_id, who))

    @app.get("/api/datasets/{dataset_id}/dictionary.md", response_class=PlainTextResponse, openapi_extra=OPTIONAL_AUTH,
             responses=errors(401, 404, 429, 503))
    def data_dictionary_markdown(dataset_id: str, who: Identity = Depends(current)) -> str:
        from schemas.dictionary import to_markdown

        return to_markdown(dataset_standard(dataset_id, who))

    @app.get("/api/datasets/{dataset_id}/rows", response_model=None, openapi_extra=OPTIONAL_AUTH,
             responses={200: {"model": Rows}, **errors(400, 401, 403, 404, 429, 503)})
    def dataset_rows(
        request: Request,
        dataset_id: str,
        filter: list[str] = Query([], description="FIELD OP VALUE, OP one of = != >= <= > <; repeat to "
                                                  "combine (all must hold), e.g. kode_wilayah=32.71.01.1001"),
        q: str | None = Query(None, description="rows with this text in any text field"),
        sort: str | None = Query(None, description="fields to sort by, `-` before a field for descending"),
        fields: str | None = Query(None, description="fields to return, comma-separated (default: all)"),
        limit: int = Query(100, ge=1, le=MAX_ROWS), offset: int = Query(0, ge=0),
        version: str | None = Query(None, description="a snapshot id, or a time (ISO 8601): the version current then"),
        who: Identity = Depends(current),
    ) -> dict:
        """A page of rows, filtered and sorted, as the caller may see them: `terbatas` data needs a token,
        `rahasia` data clearance; personal data is pseudonymized or masked for those not cleared."""
        from catalog.rows import page, parse_filter, parse_sort

        with session(settings.catalog_url) as s:
            d, _ = get_dataset(s, dataset_id, who)
            snapshot_id = d.snapshot_id if version is None else _version(s, d, version)
        try:
            return page(settings, d, who, client_of(request), snapshot_id=snapshot_id,
                        where=[parse_filter(f) for f in filter], q=q, sort=parse_sort(sort or ""),
                        fields=[f.strip() for f in fields.split(",") if f.strip()] if fields else None,
                        limit=limit, offset=offset)
        except QueryError as e:
            raise HTTPException(400, str(e)) from None

    @app.get("/api/datasets/{dataset_id}/changes", openapi_extra=OPTIONAL_AUTH,
             responses=errors(400, 401, 403, 404, 409, 410, 429, 503))
    def dataset_changes(
        request: Request,
        dataset_id: str,
        since: str | None = Query(None, description="a version's snapshot id: the changes after it; or a page's "
                                                    "`next` cursor. Default: from the first version"),
        limit: int = Query(100, ge=1, le=1000, description="the most changes in this page"),
        who: Identity = Depends(current),
    ) -> dict:
        """The record-level changes of the dataset's versions (insert, update, delete by the standard's primary
        key), oldest version first, a page at a time: pass `next` as `since` for the following page. Each change
        holds its record (inserts and updates) as the caller may see it, exactly as rows are shown. 409: the
        standard has no primary key; 410: a version asked for has expired."""
        from catalog.changes import ChangesError, feed

        with session(settings.catalog_url) as s:
            d, _ = get_dataset(s, dataset_id, who)
        try:
            return feed(settings, d, who, client_of(request), since=since, limit=limit)
        except ChangesError as e:
            raise HTTPException(e.status, str(e)) from None

    @app.get("/api/datasets/{dataset_id}/versions", response_model=None, openapi_extra=OPTIONAL_AUTH,
             responses={200: {"model": VersionList}, **errors(401, 404, 429, 503)})
    def dataset_versions(dataset_id: str, who: Identity = Depends(current)) -> dict:
        """The dataset's versions (Iceberg snapshots), newest first, each with its time, run and rows."""
        with session(settings.catalog_url) as s:
            return {"dataset": dataset_id, "versions": describe(s, get_dataset(s, dataset_id, who)[0])["versions"]}

    @app.get("/api/datasets/{dataset_id}/lineage", openapi_extra=OPTIONAL_AUTH, responses=errors(401, 404, 429, 503))
    def dataset_lineage(dataset_id: str, who: Identity = Depends(current)) -> dict:
        """Where the dataset comes from, back to the agency systems."""
        from catalog.metadata import lineage

        known = set(listed(settings, who))
        with session(settings.catalog_url) as s:
            return lineage(s, get_dataset(s, dataset_id, who)[0], known)

    @app.get("/api/datasets/{dataset_id}/quality", openapi_extra=OPTIONAL_AUTH, responses=errors(401, 404, 429, 503))
    def dataset_quality(dataset_id: str, who: Identity = Depends(current)) -> dict:
        """The last run's counts, quality score and the result of each rule of the standard."""
        with session(settings.catalog_url) as s:
            return {"dataset": dataset_id, **describe(s, get_dataset(s, dataset_id, who)[0])["quality"]}

    @app.get("/api/datasets/{dataset_id}/data-docs.html", response_class=HTMLResponse, openapi_extra=OPTIONAL_AUTH,
             responses=errors(401, 404, 429, 503))
    def dataset_data_docs(dataset_id: str, run_id: str | None = Query(None, description="default: the last run"),
                          who: Identity = Depends(current)) -> str:
        """A run's validation as Great Expectations Data Docs: every expectation of the suite, with its counts."""
        from catalog.db import Run
        from schemas.data_docs import validation_page

        with session(settings.catalog_url) as s:
            d, _ = get_dataset(s, dataset_id, who)
            runs = select(Run).where(Run.dataset_id == d.id, Run.status != "failed")
            run = s.scalars(runs.where(Run.run_id == run_id) if run_id else runs.order_by(Run.id.desc())).first()
            if run is None:
                raise HTTPException(404, f"dataset {d.id!r} has no run {run_id!r}" if run_id
                                    else f"dataset {d.id!r} has no run yet")
            validation = run.validation or {}
            if "checks" not in validation:
                raise HTTPException(404, f"run {run.run_id!r} of {d.id!r} checked no rows itself: its sources' runs did")
            # Stored in UTC without a zone: the Z keeps GE from reading it as local time.
            about = {"dataset": d.id, "run_id": run.run_id,
                     "finished_at": run.finished_at.isoformat() + "Z" if run.finished_at else None}
        return validation_page(load_standard(validation["suite"]), validation, about)

    @app.get("/api/datasets/{dataset_id}/quarantine", openapi_extra=AUTH, responses=errors(401, 403, 404, 429, 503))
    def dataset_quarantine(request: Request, dataset_id: str,
                           run_id: str | None = Query(None, description="default: the last run"),
                           limit: int = Query(100, ge=0, le=MAX_ROWS), offset: int = Query(0, ge=0),
                           who: Identity = Depends(current)) -> dict:
        """What a run did not publish: counts by reason (field:rule), then the rows with their reasons; for
        stewards and the agency that owns the source. The agency also gets each record as it sent it; nobody
        else sees a quarantined value (records are as received, personal data included). Each read is in the
        audit log (`quarantine.read`)."""
        from catalog import audit
        from catalog.metadata import quarantine_summary

        with session(settings.catalog_url) as s:
            d, _ = get_dataset(s, dataset_id, who)
            owner_or_steward(who, d)
            own = who.role == "agency" and who.agency == d.agency_code
            found = quarantine_summary(s, d, run_id, limit=limit, offset=offset, records=own)
        audit.read(settings, who, client_of(request), "quarantine.read", dataset_id,
                   {"run_id": found["run_id"], "rows": len(found["rows"]), "offset": offset, "records": own})
        return found

    @app.post("/api/sql", response_model=None, openapi_extra=OPTIONAL_AUTH,
              responses={200: {"model": SqlResult}, **errors(400, 401, 403, 413, 429, 503)})
    def run_query(body: SqlRequest, request: Request, who: Identity = Depends(current)) -> dict:
        """One read-only DuckDB SELECT over the datasets the caller may read, by name (joins included), as it
        may see them (personal data pseudonymized or masked for those not cleared).

        It stops after its time limit and returns at most `limit` rows (`truncated` says if there were more).
        """
        from catalog.sql import run_sql

        try:
            result = run_sql(settings, body.sql, who, client_of(request), max_rows=body.limit)
        except QueryError as e:
            raise HTTPException(400, str(e)) from None
        rows = [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r.items()}
                for r in result.pop("table").to_pylist()]
        return {**result, "rows": rows}

    @app.get("/api/datasets/{dataset_id}/download.{fmt}", response_class=Response, openapi_extra=OPTIONAL_AUTH,
             responses={**files(*FORMATS.values(), description="the file (Content-Disposition: attachment)"),
                        **errors(400, 401, 403, 404, 429, 503)})
    def download(
        dataset_id: str, request: Request,
        fmt: str = Path(description="the file's format", json_schema_extra={"enum": list(FORMATS)}),
        filter: list[str] = Query([], description="FIELD OP VALUE, as for /rows: only the rows every filter keeps"),
        q: str | None = Query(None, description="only rows with this text in any text field"),
        sort: str | None = Query(None, description="fields to sort by, `-` before a field for descending"),
        who: Identity = Depends(current),
    ) -> StreamingResponse:
        """The whole dataset, streamed, as the caller may see it: CSV, JSON (an array) or Parquet; with `filter`,
        `q` or `sort`, the rows a page of /rows would page through."""
        from catalog import audit
        from catalog.rows import parse_filter, parse_sort, reader

        if fmt not in FORMATS:
            raise HTTPException(404, f"no download format {fmt!r}; formats: {', '.join(FORMATS)}")
        with session(settings.catalog_url) as s:
            d, seen = get_dataset(s, dataset_id, who)
        seen.require_readable()
        held = ExitStack()
        whole = None  # the view of an unfiltered download, whose size and checksum are recorded
        if filter or q or sort:
            try:
                rows = held.enter_context(reader(settings, d, who, where=[parse_filter(f) for f in filter], q=q,
                                                 sort=parse_sort(sort or ""), batch_rows=BATCH_ROWS))
            except QueryError as e:
                raise HTTPException(400, str(e)) from None
        else:
            # Read by pyarrow from what the caller may see (`catalog.views`), a batch at a time: no query runs.
            whole = visible(settings, d, who)
            rows = whole.reader(BATCH_ROWS)
        audit.read(settings, who, client_of(request), "download", dataset_id,
                   {"format": fmt, **({"filter": filter, "q": q, "sort": sort} if filter or q or sort else {})})

        def body():
            with held:
                if whole is None:
                    yield from stream(rows, fmt)
                else:
                    yield from measured(stream(rows, fmt), lambda size, sha256: record(
                        settings, d.id, d.snapshot_id, whole.key, fmt, size, sha256))

        return StreamingResponse(body(), media_type=FORMATS[fmt],
                                 headers={"Content-Disposition": f'attachment; filename="{dataset_id}.{fmt}"'})

    from serving import dcat

    app.include_router(dcat.router(settings))

    from catalog import audit, identity, subscriptions
    from serving import ckan_api, ckan_datastore, exports, portal, quality

    app.include_router(identity.router(settings))
    app.include_router(audit.router(settings))
    app.include_router(ckan_api.router(settings))
    app.include_router(exports.router(settings))
    app.include_router(quality.router(settings))
    app.include_router(ckan_datastore.router(settings))
    app.include_router(subscriptions.router(settings))
    app.include_router(portal.router(settings))
    return app


def app_from_environment() -> FastAPI:
    """The app of one worker process of `hub serve --workers N`: uvicorn spawns each worker afresh and names its
    app by import path, so the worker builds it from the settings `hub serve` read and exported to the environment
    before starting it (HUB_HOME, HUB_CATALOG_URL, HUB_REGISTRY, HUB_DATA_DIRS, HUB_SERVICES); every other
    setting (HUB_MAX_HEADER_BYTES, HUB_TRUSTED_PROXIES, HUB_QUERY_*, ...) is read from the same inherited
    environment as the parent's. On Linux a worker also ends with its parent, even one killed outright (the OOM
    killer): it would otherwise go on answering on the port with no one to stop it."""
    import multiprocessing
    import os
    import signal
    import sys

    from hub.settings import load_settings

    parent = multiprocessing.parent_process()
    if sys.platform == "linux" and parent is not None:
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent.pid:  # it died before the line above: nothing would send the signal
            os.kill(os.getpid(), signal.SIGTERM)
    return create_app(load_settings())
