"""The one description of a dataset: DCAT-AP and Satu Data metadata, versions, quality and lineage.

Every surface of the catalog (the native API, the CKAN-compatible API, DCAT, search and the portal) shows
a dataset through `describe`, so they never disagree. The standard a dataset is built on gives the Satu
Data metadata (walidata, produsen data, frequency, coverage, licence, tags); the catalog database gives
the rest.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import select

from catalog.db import Dataset, DatasetVersion, LineageEdge, QuarantinedRow, Run

__all__ = [
    "DISTRIBUTIONS", "QUARANTINE_PAGE", "describe", "lineage", "quarantine_run", "quarantine_summary",
    "quarantined_columns", "quarantined_rows", "summary",
]

# Each dataset is offered in these forms (DCAT distributions): format name -> (media type, path under /api).
DISTRIBUTIONS = {
    "CSV": ("text/csv", "download.csv"),
    "JSON": ("application/json", "download.json"),
    "Parquet": ("application/vnd.apache.parquet", "download.parquet"),
    "API": ("application/json", "rows"),
}


def _time(value) -> str | None:
    return value.isoformat() + "Z" if value else None


def summary(d: Dataset) -> dict:
    """What a list of datasets shows of each."""
    return {
        "id": d.id, "kind": d.kind, "title": d.title, "standard": d.standard, "standard_version": d.standard_version,
        "classification": d.classification, "agency": d.agency_code, "agency_name": d.agency_name,
        "rows": d.row_count, "quality_score": d.quality_score, "snapshot_id": d.snapshot_id,
        "updated_at": _time(d.updated_at),
        "links": {"self": f"/api/datasets/{d.id}", "rows": f"/api/datasets/{d.id}/rows",
                  "dictionary": f"/api/datasets/{d.id}/dictionary.html"},
    }


def describe(s, d: Dataset) -> dict:
    """Everything the catalog knows of a dataset, as plain data (session `s` on the catalog database)."""
    from schemas import load_standard

    standard = load_standard(f"{d.standard}@{d.standard_version}")
    meta = standard.metadata
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
    producers = [d.agency_name] if d.agency_name else list(meta["produsen-data"])
    tags = sorted({*standard.schema.get("x-tags", []), standard.name, *([d.agency_code] if d.agency_code else [])})
    return {
        **summary(d),
        "description": d.description,
        "standard_title": standard.title,
        "walidata": meta["walidata"],
        "produsen_data": producers,
        "license": meta["license"],
        "frequency": meta["frequency"],
        "spatial_coverage": meta["spatial-coverage"],
        "temporal_coverage": meta["temporal-coverage"],
        "spatial_coverage_en": standard.schema.get("x-spatial-coverage-en"),
        "temporal_coverage_en": standard.schema.get("x-temporal-coverage-en"),
        "tags": tags,
        "issued": _time(versions[-1].committed_at) if versions else None,
        "modified": _time(d.updated_at),
        "table": d.table_identifier,
        "primary_key": list(standard.primary_key),
        "schema": [
            {"name": f.name, "title": f.title, "description": f.description, "title_en": f.title_en,
             "description_en": f.description_en, "type": f.type, "format": f.format, "required": f.required,
             "personal_data": bool(f.personal_data), "code_list": f.code_list, "unit": f.unit}
            for f in standard.fields
        ],
        "versions": [{"snapshot_id": v.snapshot_id, "committed_at": _time(v.committed_at), "run_id": v.run_id,
                      "rows": v.row_count, "standard": standard_of.get(v.run_id)} for v in versions],
        "quality": {
            "score": d.quality_score,
            "run_id": last.run_id if last else None,
            "rows_in": last.rows_in if last else None,
            "rows_published": last.rows_published if last else None,
            "rows_quarantined": last.rows_quarantined if last else None,
            # Records that repeated a published one exactly: left out, counted here with their rows.
            "rows_repeated": ((last.validation or {}).get("duplicates") or {}).get("identical_repeats", 0)
            if last else None,
            "repeated_rows": ((last.validation or {}).get("duplicates") or {}).get("rows", []) if last else [],
            "validation": last.validation if last else None,
        },
        "lineage": [{"upstream": e.upstream, "relation": e.relation} for e in lineage],
        "runs": [{"run_id": r.run_id, "status": r.status, "finished_at": _time(r.finished_at), "rows_in": r.rows_in,
                  "rows_published": r.rows_published, "rows_quarantined": r.rows_quarantined, "error": r.error}
                 for r in runs],
        "distributions": [{"format": name, "media_type": media, "url": f"/api/datasets/{d.id}/{path}"}
                          for name, (media, path) in DISTRIBUTIONS.items()],
    }


def lineage(s, d: Dataset, known: set[str] | None = None) -> dict:
    """The whole graph a dataset comes from: datasets, and at the end the agency systems (`system:...`).

    A dataset not in `known` (one the caller may not know of) is a node without its title or agency.
    """
    nodes, edges, todo = {}, [], [d.id]
    while todo:
        current = todo.pop()
        if current in nodes:
            continue
        dataset = None if current.startswith("system:") else s.get(Dataset, current)
        if dataset is not None and known is not None and current not in known:
            nodes[current] = {"id": current, "kind": dataset.kind, "title": None, "agency": None}
            continue  # nor where it comes from
        nodes[current] = {"id": current, "kind": dataset.kind if dataset else "system",
                          "title": dataset.title if dataset else current.split(":", 2)[-1],
                          "agency": dataset.agency_code if dataset else current.split(":")[1]}
        for e in s.scalars(select(LineageEdge).where(LineageEdge.dataset_id == current).order_by(LineageEdge.upstream)):
            edges.append({"from": e.upstream, "to": current, "relation": e.relation})
            todo.append(e.upstream)
    return {"dataset": d.id, "nodes": list(nodes.values()), "edges": edges}


# Quarantined rows are read from the catalog this many at a time (a run may have rejected a million).
QUARANTINE_PAGE = 1000


def quarantine_run(s, d: Dataset, run_id: str | None = None) -> Run | None:
    """The run whose rejected rows are asked for: `run_id`, or the dataset's last run that staged any (the last
    that did not fail); None when there is none."""
    if run_id is None:
        return s.scalars(select(Run).where(Run.dataset_id == d.id, Run.status != "failed")
                         .order_by(Run.id.desc()).limit(1)).first()
    return s.scalars(select(Run).where(Run.dataset_id == d.id, Run.run_id == run_id)).first()


def _of_run(d: Dataset, run: Run):
    return (QuarantinedRow.dataset_id == d.id) & (QuarantinedRow.run_id == run.run_id)


def quarantine_summary(s, d: Dataset, run_id: str | None = None, *, limit: int = 100, offset: int = 0,
                       records: bool = False) -> dict:
    """A run's rejected rows (default: the last run that staged any): counts by reason, then each row's reasons,
    and with `records` each record as received (for the agency that sent it only)."""
    run = quarantine_run(s, d, run_id)
    if run is None:
        return {"dataset": d.id, "run_id": run_id, "rows_in": 0, "rows_quarantined": 0, "reasons": [], "rows": []}
    counts: dict[str, int] = {}
    # Counted from the reasons alone, a page at a time; only the rows shown are read whole.
    for reasons in s.scalars(select(QuarantinedRow.reasons).where(_of_run(d, run))
                             .execution_options(yield_per=QUARANTINE_PAGE)):
        for code in reasons:
            counts[code] = counts.get(code, 0) + 1
    shown = s.execute(select(QuarantinedRow.row_number, QuarantinedRow.reasons, QuarantinedRow.id,
                             QuarantinedRow.details)
                      .where(_of_run(d, run)).order_by(QuarantinedRow.row_number, QuarantinedRow.id)
                      .limit(limit).offset(offset)).all() if limit else []
    received = dict(s.execute(select(QuarantinedRow.id, QuarantinedRow.record)
                              .where(QuarantinedRow.id.in_([i for _, _, i, _ in shown]))).tuples().all()) if records else {}
    return {
        "dataset": d.id, "run_id": run.run_id, "finished_at": _time(run.finished_at), "rows_in": run.rows_in,
        "rows_quarantined": run.rows_quarantined,
        "reasons": [{"code": code, "field": code.partition(":")[0], "rule": code.partition(":")[2], "rows": n}
                    for code, n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))],
        "rows": [{"row": row, "reasons": reasons, "details": details or {},
                  **({"record": received[i]} if records else {})} for row, reasons, i, details in shown],
    }


def quarantined_rows(s, d: Dataset, run: Run, *, records: bool = False) -> Iterator[dict]:
    """Each rejected row of `run`, in row order, as quarantine_summary shows one (`row`, `reasons`, `details`,
    with `records` the `record` as received), read from the catalog a page at a time: a run of a million rejected
    rows never sits in memory whole. Runs in the session `s`, which stays open while the rows are read."""
    columns = [QuarantinedRow.row_number, QuarantinedRow.reasons, QuarantinedRow.details]
    if records:
        columns.append(QuarantinedRow.record)
    query = (select(*columns).where(_of_run(d, run)).order_by(QuarantinedRow.row_number, QuarantinedRow.id)
             .execution_options(yield_per=QUARANTINE_PAGE))
    for found in s.execute(query):
        row = {"row": found[0], "reasons": found[1], "details": found[2] or {}}
        if records:
            row["record"] = found[3]
        yield row


def quarantined_columns(s, d: Dataset, run: Run) -> list[str]:
    """The names of the columns `run`'s rejected records were received with, in the order they were first met
    (the source's own order: a record is kept as it was read), read a page at a time."""
    seen: dict[str, None] = {}
    last = None
    for record in s.scalars(select(QuarantinedRow.record).where(_of_run(d, run))
                            .order_by(QuarantinedRow.row_number, QuarantinedRow.id)
                            .execution_options(yield_per=QUARANTINE_PAGE)):
        keys = tuple(record) if isinstance(record, dict) else ()
        if keys != last:  # records of one batch share their columns: most rows add nothing new
            seen.update(dict.fromkeys(keys))
            last = keys
    return list(seen)
