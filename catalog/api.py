"""The catalog's HTTP API (FastAPI): datasets, their metadata, versions, quality, lineage and rows."""

from __future__ import annotations

from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import HTMLResponse, PlainTextResponse
from sqlalchemy import select

from catalog import masking
from catalog.db import Dataset, DatasetVersion, LineageEdge, Run, init_db, session
from catalog.query import connect

__all__ = ["create_app"]

MAX_ROWS = 1000


def _summary(d: Dataset) -> dict:
    return {
        "id": d.id, "kind": d.kind, "title": d.title, "standard": d.standard, "standard_version": d.standard_version,
        "classification": d.classification, "agency": d.agency_code, "agency_name": d.agency_name,
        "rows": d.row_count, "quality_score": d.quality_score, "snapshot_id": d.snapshot_id,
        "updated_at": d.updated_at.isoformat() + "Z" if d.updated_at else None,
        "links": {"self": f"/api/datasets/{d.id}", "rows": f"/api/datasets/{d.id}/rows",
                  "dictionary": f"/api/datasets/{d.id}/dictionary.html"},
    }


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
            return {"datasets": [_summary(d) for d in s.scalars(select(Dataset).order_by(Dataset.id))]}

    @app.get("/api/datasets/{dataset_id}")
    def show_dataset(dataset_id: str) -> dict:
        with session(settings.catalog_url) as s:
            d = get_dataset(s, dataset_id)
            standard = load_standard(f"{d.standard}@{d.standard_version}")
            versions = s.scalars(select(DatasetVersion).where(DatasetVersion.dataset_id == d.id)
                                 .order_by(DatasetVersion.committed_at.desc(), DatasetVersion.id.desc())).all()
            runs = s.scalars(select(Run).where(Run.dataset_id == d.id).order_by(Run.id.desc()).limit(10)).all()
            lineage = s.scalars(select(LineageEdge).where(LineageEdge.dataset_id == d.id)).all()
            # Each version was validated against the standard version its run recorded.
            standard_of = {
                run_id: (validation or {}).get("suite")
                for run_id, validation in s.execute(select(Run.run_id, Run.validation).where(
                    Run.dataset_id == d.id, Run.run_id.in_([v.run_id for v in versions])))
            }
            last = next((r for r in runs if r.status != "failed"), None)
            return {
                **_summary(d),
                "description": d.description,
                "table": d.table_identifier,
                "primary_key": list(standard.primary_key),
                "schema": [
                    {"name": f.name, "title": f.title, "description": f.description, "type": f.type,
                     "format": f.format, "required": f.required, "personal_data": bool(f.personal_data),
                     "code_list": f.code_list}
                    for f in standard.fields
                ],
                "versions": [{"snapshot_id": v.snapshot_id, "committed_at": v.committed_at.isoformat() + "Z",
                              "run_id": v.run_id, "rows": v.row_count, "standard": standard_of.get(v.run_id)}
                             for v in versions],
                "quality": {
                    "score": d.quality_score,
                    "run_id": last.run_id if last else None,
                    "rows_in": last.rows_in if last else None,
                    "rows_published": last.rows_published if last else None,
                    "rows_quarantined": last.rows_quarantined if last else None,
                    "validation": last.validation if last else None,
                },
                "lineage": [{"upstream": e.upstream, "relation": e.relation} for e in lineage],
                "runs": [{"run_id": r.run_id, "status": r.status, "finished_at": r.finished_at.isoformat() + "Z"
                          if r.finished_at else None, "rows_in": r.rows_in, "rows_published": r.rows_published,
                          "rows_quarantined": r.rows_quarantined, "error": r.error} for r in runs],
            }

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
    def dataset_rows(dataset_id: str, limit: int = Query(100, ge=1, le=MAX_ROWS), offset: int = Query(0, ge=0)) -> dict:
        with session(settings.catalog_url) as s:
            d = get_dataset(s, dataset_id)
        standard = load_standard(f"{d.standard}@{d.standard_version}")
        order = ", ".join(f'"{k}"' for k in (*standard.primary_key, *(["_source"] if d.kind == "integrated" else [])))
        con = connect(settings)
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
        return {"dataset": d.id, "snapshot_id": d.snapshot_id, "total": total, "limit": limit, "offset": offset,
                "masked_fields": sorted(masking.personal_fields(standard)), "rows": rows}

    return app
