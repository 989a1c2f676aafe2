"""Indicator datasets: declared SQL models (indicators/*.yaml) over the catalog's datasets, built into it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from hub.errors import ConfigError, DataQualityError, NotReady
from hub.settings import ROOT, Settings

__all__ = ["INDICATORS_DIR", "Indicator", "build_indicator", "find_indicator", "load_indicators"]

INDICATORS_DIR = ROOT / "indicators"
_ID = re.compile(r"^[a-z][a-z0-9_]{2,62}$")
_STANDARD_REF = re.compile(r"^[a-z][a-z0-9_]*@[0-9]+\.[0-9]+\.[0-9]+$")
_FIELDS = ("id", "standard", "inputs", "sql")
# DuckDB errors about the query's text and names; other errors (a failed cast, say) may quote values of the
# inputs, which hold personal data, so only their kind is reported.
_QUERY_ERRORS = ("ParserException", "BinderException", "CatalogException")


@dataclass(frozen=True)
class Indicator:
    id: str
    standard_ref: str
    inputs: tuple[str, ...]
    sql: str
    path: Path


def load_indicators(directory: Path = INDICATORS_DIR, problems: list[dict] | None = None) -> list[Indicator]:
    """Every declaration in `directory` (one YAML file per indicator, named after its id), checked.

    With a `problems` list, a declaration that does not load is left out and its error added to the list
    (`{"file", "error"}`) instead of raised: one broken file never stops the others.
    """
    indicators = []
    for path in sorted(Path(directory).glob("*.yaml")):
        try:
            indicators.append(_load(path))
        except ConfigError as e:
            if problems is None:
                raise
            problems.append({"file": str(path), "error": str(e)})
    return indicators


def find_indicator(indicator_id: str, directory: Path = INDICATORS_DIR) -> Indicator:
    indicators = {i.id: i for i in load_indicators(directory)}
    if indicator_id not in indicators:
        raise ConfigError(f"unknown indicator {indicator_id!r}; declared: {', '.join(sorted(indicators)) or 'none'}")
    return indicators[indicator_id]


def _load(path: Path) -> Indicator:
    import yaml

    where = path.name
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigError(f"{where}: not valid YAML: {e}") from None
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: an indicator is a mapping with the fields {', '.join(_FIELDS)}")
    unknown = sorted(set(spec) - set(_FIELDS))
    if unknown:
        raise ConfigError(f"{where}: field {unknown[0]!r} is not one of {', '.join(_FIELDS)}")
    for name in _FIELDS:
        if spec.get(name) in (None, "", []):
            raise ConfigError(f"{where}: field {name!r} is required")
    if not isinstance(spec["id"], str) or not _ID.match(spec["id"]):
        raise ConfigError(f"{where}: field 'id' must be lower case letters, digits and underscores (3 to 63), "
                          "starting with a letter: it is the dataset's name in SQL")
    if spec["id"] != path.stem:
        raise ConfigError(f"{where}: field 'id' is {spec['id']!r}; the file must be named after it ({spec['id']}.yaml)")
    if not isinstance(spec["standard"], str) or not _STANDARD_REF.match(spec["standard"]):
        raise ConfigError(f"{where}: field 'standard' must be NAME@MAJOR.MINOR.PATCH, e.g. {spec['id']}@1.0.0")
    inputs = spec["inputs"]
    if not isinstance(inputs, list) or not all(isinstance(i, str) and _ID.match(i) for i in inputs):
        raise ConfigError(f"{where}: field 'inputs' must be a list of dataset ids")
    if len(set(inputs)) != len(inputs) or spec["id"] in inputs:
        raise ConfigError(f"{where}: field 'inputs' names a dataset twice, or the indicator itself")
    if not isinstance(spec["sql"], str):
        raise ConfigError(f"{where}: field 'sql' must be the text of one DuckDB SELECT")
    from schemas import load_standard

    try:
        load_standard(spec["standard"])
    except ConfigError as e:
        raise ConfigError(f"{where}: field 'standard': {e}") from None
    return Indicator(id=spec["id"], standard_ref=spec["standard"], inputs=tuple(inputs), sql=spec["sql"], path=path)


def build_indicator(settings: Settings, indicator_id: str, run_id: str | None = None, *,
                    directory: Path = INDICATORS_DIR) -> dict:
    """Run an indicator's SQL over its inputs' current snapshots, validate the result against its standard and
    publish it (no new snapshot when the result is unchanged); a failure is recorded as a failed run and raised."""
    from hub.pipeline import new_run_id, record_failure

    run_id = run_id or new_run_id()
    try:
        return _build(settings, find_indicator(indicator_id, directory), run_id)
    except NotReady:
        raise
    except Exception as e:
        record_failure(settings, indicator_id, run_id, e, kind="indicator")
        raise


def _build(settings: Settings, indicator: Indicator, run_id: str) -> dict:
    from catalog import storage
    from catalog.db import Dataset, Run, init_db, session, utcnow
    from hub.pipeline import _publish_public, _queue_messages, _record_dataset, _set_lineage
    from schemas import load_standard
    from schemas.validation import validate

    init_db(settings.catalog_url)
    standard = load_standard(indicator.standard_ref)
    with session(settings.catalog_url) as s:
        published = {d.id: d for d in s.query(Dataset).filter(Dataset.id.in_([*indicator.inputs, indicator.id]))}
    taken = published.pop(indicator.id, None)
    if taken is not None and taken.kind != "indicator":
        raise ConfigError(f"{indicator.path.name}: field 'id': {indicator.id!r} is already the id of a "
                          f"{taken.kind} dataset")
    missing = [i for i in indicator.inputs if i not in published]
    if missing:
        raise NotReady(f"indicator {indicator.id}: input {', '.join(missing)} is not in the catalog yet; "
                       "publish and integrate its sources first")
    inputs = {i: published[i].snapshot_id for i in indicator.inputs}
    result = _typed(indicator, standard, _run_sql(settings, indicator))
    verdict = validate(standard, result)
    if verdict.reasons:
        counts: dict[str, int] = {}
        for reasons in verdict.reasons.values():
            for reason in reasons:
                counts[reason] = counts.get(reason, 0) + 1
        raise DataQualityError(f"indicator {indicator.id}: {len(verdict.reasons)} of {result.num_rows} rows break "
                               f"standard {standard.ref}: " + ", ".join(f"{r} ({n} rows)" for r, n in counts.items()))

    snapshot_id = storage.commit_indicator(settings, standard, indicator.id, result, run_id)
    identifier = f"{storage.INDICATOR}.{indicator.id}"
    rows = storage.snapshot_rows(settings, identifier)
    scored = [d for d in published.values() if d.quality_score is not None and d.row_count]
    # As for an integrated dataset: the share of its inputs' records that passed their checks.
    quality = (sum(d.quality_score * d.row_count for d in scored) / sum(d.row_count for d in scored)) if scored else None
    now = utcnow()
    with session(settings.catalog_url) as s, s.begin():
        changed = _record_dataset(
            s, indicator.id, "indicator", standard, snapshot_id, run_id, now, rows=rows, quality_score=quality,
            table_identifier=identifier, title=standard.title, description=standard.description,
        )
        _set_lineage(s, indicator.id, {i: "aggregated_from" for i in indicator.inputs})
        status = "published" if changed else "unchanged"
        s.add(Run(run_id=run_id, dataset_id=indicator.id, kind="indicator", status=status, started_at=now,
                  finished_at=now, rows_in=result.num_rows, rows_published=rows, rows_quarantined=0,
                  quality_score=quality, snapshot_id=snapshot_id,
                  validation={"suite": standard.ref, "success": True, "inputs": inputs,
                              "checks": verdict.count_into({})}))
        if changed:  # in the version's own transaction: committed with it, or not at all
            _queue_messages(s, indicator.id, "published", {"run_id": run_id, "snapshot_id": snapshot_id})
    _publish_public(settings, indicator.id, run_id)
    return {"indicator": indicator.id, "run_id": run_id, "dataset": indicator.id, "status": status,
            "snapshot_id": snapshot_id, "rows": rows, "inputs": sorted(inputs)}


def _run_sql(settings: Settings, indicator: Indicator):
    import duckdb

    from catalog.query import connect

    where = f"{indicator.path.name}: field 'sql'"
    # The hub's own build: it needs the personal fields whole (NIKs to match people, birth dates for ages);
    # only aggregates leave it, suppressed where small.
    with connect(settings) as con:
        try:
            # Asked of an empty connection: on `con`, DuckDB would name the files behind the views instead.
            read = duckdb.connect().get_table_names(indicator.sql)
            if read - set(indicator.inputs):
                raise ConfigError(f"{where} reads {', '.join(sorted(read - set(indicator.inputs)))}, which "
                                  f"field 'inputs' does not name; inputs are its lineage, so they must be complete")
            return con.sql(indicator.sql).to_arrow_table()
        except duckdb.Error as e:
            kind = type(e).__name__
            detail = f": {e}" if kind in _QUERY_ERRORS else ""
            raise ConfigError(f"{where}: DuckDB {kind}{detail}") from None


def _typed(indicator: Indicator, standard, table):
    """The result's columns in the standard's order and types, as the suite validates them."""
    import pyarrow as pa

    from transforms.mapping import arrow_type

    names = [f.name for f in standard.fields]
    if set(table.column_names) != set(names):
        missing, extra = sorted(set(names) - set(table.column_names)), sorted(set(table.column_names) - set(names))
        raise ConfigError(f"{indicator.path.name}: field 'sql' must return the columns of {standard.ref}: "
                          f"missing {missing or 'none'}, not in the standard {extra or 'none'}")
    columns = []
    for f in standard.fields:
        try:
            columns.append(table[f.name].cast(arrow_type(f)))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise ConfigError(f"{indicator.path.name}: field 'sql': column {f.name!r} is "
                              f"{table.schema.field(f.name).type}, not a {f.type}") from None
    return pa.Table.from_arrays(columns, names=names)
