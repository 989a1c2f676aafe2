"""A run's validation as Great Expectations' own JSON, for stewards and the agency that owns the source."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import JSONResponse

from catalog.identity import Identity, caller, may_see_agency

__all__ = ["router"]


def router(settings):
    """The validation-result downloads, for `app.include_router` in the catalog API. Who may read them is who
    may read the dataset's runs and quarantine: stewards and the owning agency (an integrated dataset has no
    agency: stewards only); a dataset the caller may not know of is a 404, as everywhere."""
    from sqlalchemy import select

    from catalog.access import listed
    from catalog.db import Dataset, Run, init_db, session

    init_db(settings.catalog_url)
    api = APIRouter(tags=["quality"])
    current = caller(settings)
    described = {200: {"description": "an ExpectationSuiteValidationResult as Great Expectations writes it",
                       "content": {"application/json": {"schema": {"type": "object"}}}},
                 401: {"description": "no token"}, 403: {"description": "neither a steward nor the owning agency"},
                 404: {"description": "no such dataset or run, or a run that checked no rows itself"}}

    def result(dataset_id: str, run_id: str | None, who: Identity) -> JSONResponse:
        with session(settings.catalog_url) as s:
            d = s.get(Dataset, dataset_id)
            if d is None or dataset_id not in listed(settings, who):
                raise HTTPException(404, f"no dataset {dataset_id!r}")
            if who.anonymous:
                raise HTTPException(401, f"the runs of {dataset_id} need a token (Authorization: Bearer TOKEN)",
                                    headers={"WWW-Authenticate": "Bearer"})
            if not may_see_agency(who, d.agency_code):
                raise HTTPException(403, f"only stewards and the agency that owns {dataset_id} see its runs")
            runs = select(Run).where(Run.dataset_id == d.id, Run.status != "failed")
            run = s.scalars(runs.where(Run.run_id == run_id) if run_id else runs.order_by(Run.id.desc())).first()
            if run is None:
                raise HTTPException(404, f"dataset {d.id!r} has no run {run_id!r}" if run_id
                                    else f"dataset {d.id!r} has no run yet")
            found = run.validation_result or _rebuilt(d, run)
        name = f"{d.id}-{run.run_id}-validation.json".replace('"', "")
        return JSONResponse(found, headers={"Content-Disposition": f'attachment; filename="{name}"'})

    @api.get("/api/datasets/{dataset_id}/validation.json", responses=described)
    def latest_validation_result(dataset_id: str, who: Identity = Depends(current)) -> JSONResponse:
        """The last run's validation result as Great Expectations JSON (load it with
        `ExpectationSuiteValidationResult(**result)`)."""
        return result(dataset_id, None, who)

    @api.get("/api/datasets/{dataset_id}/runs/{run_id}/validation.json", responses=described)
    def run_validation_result(dataset_id: str, run_id: str, who: Identity = Depends(current)) -> JSONResponse:
        """A run's validation result as Great Expectations JSON."""
        return result(dataset_id, run_id, who)

    return api


def _rebuilt(d, run) -> dict:
    """The result of a run recorded before the hub kept it: rebuilt from its counts (no rows, no values)."""
    from schemas import load_standard
    from schemas.data_docs import validation_result

    validation = run.validation or {}
    if "checks" not in validation:
        raise HTTPException(404, f"run {run.run_id!r} of {d.id!r} checked no rows itself: its sources' runs did")
    finished = run.finished_at.isoformat() + "Z" if run.finished_at else None
    found = validation_result(load_standard(validation["suite"]), validation,
                              {"run_id": run.run_id, "finished_at": finished, "dataset": d.id})
    found.meta.update({"source": d.id, "standard": validation["suite"], "rebuilt_from_counts": True,
                       "quarantine": {"rows": run.rows_quarantined, "reasons": validation.get("reasons", {})}})
    return found.to_json_dict()
