"""A dataset's data contract (ODCS v3.1.0, YAML and JSON) and Frictionless Data Package, over HTTP."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, Response

from catalog.access import access_to
from catalog.db import Dataset, session
from catalog.identity import Identity, caller
from serving.models import OPTIONAL_AUTH, errors, files

__all__ = ["router"]

YAML = "application/yaml; charset=utf-8"
_ERRORS = errors(401, 404, 429, 503)


def _json(description: str) -> dict:
    return {200: {"description": description, "content": {"application/json": {"schema": {"type": "object"}}}}}


def router(settings) -> APIRouter:
    """The exports, for `app.include_router` in the catalog API. They are metadata, the standard's shape, shown to
    whoever may know of the dataset (as its data dictionary is); the downloads they point at keep their own rules."""
    from catalog import storage
    from schemas import load_standard
    from schemas.contracts import Published

    api = APIRouter(tags=["exports"])
    current = caller(settings)

    def published(request: Request, dataset_id: str, who: Identity):
        """The dataset's standard, where it is published, and what `who` may do with it; 404 for a dataset `who`
        may not know of, as for one that is not."""
        with session(settings.catalog_url) as s:
            d = s.get(Dataset, dataset_id)
            if d is not None:
                s.expunge(d)
        if d is None:
            raise HTTPException(404, f"no dataset {dataset_id!r}")
        standard = load_standard(f"{d.standard}@{d.standard_version}")
        seen = access_to(who, d, standard)
        if not seen.listed:
            raise HTTPException(404, f"no dataset {dataset_id!r}")
        # Outside engines read the `publik` namespace, the dataset as anonymous sees it, written at publish for each
        # dataset anonymous may read; the hub's other namespaces are unmasked back-office storage.
        outside = f"{storage.PUBLIC}.{d.id}" if d.classification == "publik" else None
        where = Published(d.id, outside, str(request.base_url).rstrip("/"), d.agency_name,
                          storage.SOURCE_COLUMN if d.kind == "integrated" else None)
        return d, standard, where, seen

    def odcs(request: Request, dataset_id: str, who: Identity) -> dict:
        from schemas.contracts import contract

        _, standard, where, _ = published(request, dataset_id, who)
        return contract(standard, where)

    @api.get("/api/datasets/{dataset_id}/contract.odcs.yaml", response_class=Response, openapi_extra=OPTIONAL_AUTH,
             responses={**files("application/yaml", description="an ODCS v3.1.0 document"), **_ERRORS})
    def contract_yaml(dataset_id: str, request: Request, who: Identity = Depends(current)) -> Response:
        """The dataset's data contract, Open Data Contract Standard v3.1.0, in YAML: schema, quality rules, SLA,
        servers (the REST API and the Iceberg table), team and licence."""
        from schemas.contracts import to_yaml

        return Response(to_yaml(odcs(request, dataset_id, who)), media_type=YAML,
                        headers={"Content-Disposition": f'inline; filename="{dataset_id}.odcs.yaml"'})

    @api.get("/api/datasets/{dataset_id}/contract.odcs.json", response_model=None, openapi_extra=OPTIONAL_AUTH,
             responses={**_json("an ODCS v3.1.0 document (its official JSON Schema: schemas/odcs)"), **_ERRORS})
    def contract_json(dataset_id: str, request: Request, who: Identity = Depends(current)) -> JSONResponse:
        """The dataset's data contract, Open Data Contract Standard v3.1.0, in JSON."""
        return JSONResponse(odcs(request, dataset_id, who))

    @api.get("/api/datasets/{dataset_id}/datapackage.json", response_model=None, openapi_extra=OPTIONAL_AUTH,
             responses={**_json("a Frictionless Data Package descriptor (datapackage.json)"), **_ERRORS})
    def data_package(dataset_id: str, request: Request, who: Identity = Depends(current)) -> JSONResponse:
        """The dataset as a Frictionless Data Package: one CSV resource (its download, which keeps its own access
        rules) with a Table Schema of the columns the caller's download holds, masked ones without their rules."""
        from schemas.datapackage import datapackage

        d, standard, where, seen = published(request, dataset_id, who)
        names = storage.data_files(settings, d.table_identifier).schema.names if d.snapshot_id is not None else \
            [f.name for f in standard.fields]
        columns = [(c, rule) for c in names if (rule := seen.column(c)) is not None]
        return JSONResponse(datapackage(standard, where, columns))

    return api
