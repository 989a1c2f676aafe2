"""The catalog's HTTP API (FastAPI): datasets, their metadata, versions, quality, lineage and rows."""

from __future__ import annotations

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response, StreamingResponse
from sqlalchemy import select

from catalog import masking
from catalog.db import Dataset, DatasetVersion, init_db, session
from catalog.metadata import describe, summary
from catalog.query import connect

__all__ = ["create_app"]

MAX_ROWS = 1000


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
    from schemas import load_standard

    init_db(settings.catalog_url)
    app = FastAPI(title="interop-hub catalog", version="0.1.0",
                  description="Datasets harmonized to Kota Bogor's data standards.")

    def get_dataset(s, dataset_id: str) -> Dataset:
        d = s.get(Dataset, dataset_id)
        if d is None:
            raise HTTPException(404, f"no dataset {dataset_id!r}")
        return d

    @app.get("/")
    def index() -> dict:
        return {"name": "interop-hub", "datasets": "/api/datasets", "openapi": "/openapi.json", "docs": "/docs"}

    @app.get("/api/datasets")
    def list_datasets() -> dict:
        with session(settings.catalog_url) as s:
            return {"datasets": [summary(d) for d in s.scalars(select(Dataset).order_by(Dataset.id))]}

    @app.get("/api/search")
    def search_datasets(q: str = "", agency: list[str] = Query([]), standard: list[str] = Query([]),
                        tag: list[str] = Query([]), classification: list[str] = Query([]),
                        rows: int = Query(10, ge=1, le=1000), start: int = Query(0, ge=0),
                        sort: str = Query("relevance", pattern="^(relevance|title|modified)$")) -> dict:
        """Full-text search over titles, descriptions, tags and fields; facets by agency, standard, tag and
        classification, counted over every match. Repeat a facet parameter to accept any of its values."""
        from catalog.search import search

        filters = {k: v for k, v in {"agency": agency, "standard": standard, "tag": tag,
                                      "classification": classification}.items() if v}
        found = search(settings, q, filters, rows=rows, start=start, sort=sort)
        with session(settings.catalog_url) as s:
            datasets = {d.id: d for d in s.scalars(select(Dataset).where(Dataset.id.in_(found["results"])))}
            results = [summary(datasets[i]) for i in found["results"] if i in datasets]
        return {"count": found["count"], "results": results, "facets": found["facets"]}

    @app.get("/api/datasets/{dataset_id}")
    def show_dataset(dataset_id: str) -> dict:
        """DCAT-AP and Satu Data metadata, schema, versions (Iceberg snapshots), quality, lineage, runs."""
        with session(settings.catalog_url) as s:
            return describe(s, get_dataset(s, dataset_id))

    def dataset_standard(dataset_id: str):
        with session(settings.catalog_url) as s:
            d = get_dataset(s, dataset_id)
        return load_standard(f"{d.standard}@{d.standard_version}")

    @app.get("/api/datasets/{dataset_id}/dictionary")
    def data_dictionary(dataset_id: str) -> dict:
        """The data dictionary of the standard the dataset is built on."""
        from schemas.dictionary import dictionary

        return dictionary(dataset_standard(dataset_id))

    @app.get("/api/datasets/{dataset_id}/dictionary.html", response_class=HTMLResponse)
    def data_dictionary_html(dataset_id: str) -> str:
        from schemas.dictionary import to_html

        return to_html(dataset_standard(dataset_id))

    @app.get("/api/datasets/{dataset_id}/dictionary.md", response_class=PlainTextResponse)
    def data_dictionary_markdown(dataset_id: str) -> str:
        from schemas.dictionary import to_markdown

        return to_markdown(dataset_standard(dataset_id))

    @app.get("/api/datasets/{dataset_id}/rows")
    def dataset_rows(dataset_id: str, limit: int = Query(100, ge=1, le=MAX_ROWS), offset: int = Query(0, ge=0),
                     version: str | None = Query(None, description="a snapshot id, or a time (ISO 8601): the "
                                                                   "version current then")) -> dict:
        with session(settings.catalog_url) as s:
            d = get_dataset(s, dataset_id)
            snapshot_id = d.snapshot_id if version is None else _version(s, d, version)
        standard = load_standard(f"{d.standard}@{d.standard_version}")
        order = ", ".join(f'"{k}"' for k in (*standard.primary_key, *(["_source"] if d.kind == "integrated" else [])))
        con = connect(settings, {d.id: snapshot_id})
        try:
            total = con.sql(f'SELECT count(*) FROM "{d.id}"').fetchall()[0][0]
            page = con.sql(
                f'SELECT * FROM "{d.id}" ORDER BY {order or "1"} LIMIT $limit OFFSET $offset',
                params={"limit": limit, "offset": offset},
            ).to_arrow_table()
        finally:
            con.close()
        page = masking.mask_table(page, masking.personal_fields(standard))
        rows = [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r.items()} for r in page.to_pylist()]
        return {"dataset": d.id, "snapshot_id": snapshot_id, "total": total, "limit": limit, "offset": offset,
                "masked_fields": sorted(masking.personal_fields(standard)), "rows": rows}

    @app.get("/api/datasets/{dataset_id}/download.{fmt}")
    def download(dataset_id: str, fmt: str) -> StreamingResponse:
        """The whole dataset, streamed (personal-data fields masked): CSV, JSON (an array) or Parquet."""
        from catalog.downloads import BATCH_ROWS, FORMATS, stream

        if fmt not in FORMATS:
            raise HTTPException(404, f"no download format {fmt!r}; formats: {', '.join(FORMATS)}")
        standard = dataset_standard(dataset_id)
        con = connect(settings)
        reader = con.sql(f'SELECT * FROM "{dataset_id}"').to_arrow_reader(batch_size=BATCH_ROWS)

        def body():
            try:
                yield from stream(reader, fmt, masking.personal_fields(standard))
            finally:
                con.close()

        return StreamingResponse(body(), media_type=FORMATS[fmt],
                                 headers={"Content-Disposition": f'attachment; filename="{dataset_id}.{fmt}"'})

    def dcat_graph(request: Request):
        from catalog.dcat import catalog_graph

        with session(settings.catalog_url) as s:
            datasets = [describe(s, d) for d in s.scalars(select(Dataset).order_by(Dataset.id))]
        return catalog_graph(datasets, str(request.base_url))

    @app.get("/catalog.ttl", response_class=Response)
    def catalog_turtle(request: Request) -> Response:
        """The catalog as DCAT-AP RDF in Turtle: every dataset's metadata and distributions."""
        return Response(dcat_graph(request).serialize(format="turtle"), media_type="text/turtle")

    @app.get("/catalog.jsonld", response_class=Response)
    def catalog_jsonld(request: Request) -> Response:
        """The catalog as DCAT-AP RDF in JSON-LD."""
        return Response(dcat_graph(request).serialize(format="json-ld"), media_type="application/ld+json")

    return app
