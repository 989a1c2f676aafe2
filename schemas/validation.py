"""Validate harmonized records with the standard's Great Expectations suite, row by row."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import pyarrow as pa

from schemas.standards import Standard
from schemas.suite import compile_suite

__all__ = ["Verdict", "validate"]

# Expectations whose verdict for a row depends only on that row's value in one column (a null counts as a
# value). Great Expectations runs them once per distinct value and the verdict is copied to every row holding
# that value: same answer, far fewer rows. Any other kind (the key's uniqueness, or one added to the suite
# later) sees every row.
_PER_VALUE = {
    "ExpectColumnValuesToNotBeNull",
    "ExpectColumnValuesToBeInSet",
    "ExpectColumnValuesToMatchRegex",
    "ExpectColumnValueLengthsToBeBetween",
    "ExpectColumnValuesToBeBetween",
}


@dataclass
class Verdict:
    """Which rows failed which rules, and the suite's per-expectation summary."""

    reasons: dict[int, list[str]]  # row position in the batch -> reason codes
    results: list[dict]
    success: bool


@cache
def _batch_definition(standard_ref: str):
    import great_expectations as gx
    import great_expectations.execution_engine.pandas_execution_engine as pandas_engine

    from great_expectations.data_context.types.base import ProgressBarsConfig

    # GE fingerprints every pandas batch smaller than this (a hash of the whole frame, computed twice per
    # validation: a third of the time spent). The fingerprint only lands in the result's batch markers, which
    # the hub never reads, and GE already skips it for big frames; 0 skips it for all. Only the hub runs GE
    # in its processes, so the process-wide setting takes nothing from anyone else.
    pandas_engine.HASH_THRESHOLD = 0

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    source = context.data_sources.add_pandas(f"hub:{standard_ref}")
    return context, source.add_dataframe_asset("records").add_batch_definition_whole_dataframe("batch")


@dataclass(frozen=True)
class _Plan:
    """The compiled suite split in two: what must see whole columns, and what can see distinct values."""

    order: list[str]  # reason codes in GE's result order (unique: one rule name per field and check)
    rows_suite: object | None
    rows_columns: list[str]
    values_suite: object | None
    values_columns: list[str]


_plans: dict[str, _Plan] = {}


def _plan(standard: Standard) -> _Plan:
    if standard.ref not in _plans:
        import great_expectations as gx

        context, _ = _batch_definition(standard.ref)
        fields = [f.name for f in standard.fields]
        expectations = compile_suite(standard).expectations

        def columns(e) -> list[str]:
            return [e.column] if getattr(e, "column", None) else list(getattr(e, "column_list", None) or fields)

        # A column some expectation needs whole (the key) is sent whole once, with all its expectations.
        whole = {c for e in expectations if type(e).__name__ not in _PER_VALUE for c in columns(e)}
        rows = [e for e in expectations if set(columns(e)) & whole]
        values = [e for e in expectations if not set(columns(e)) & whole]

        def suite(name: str, part: list):
            if not part:
                return None
            return context.suites.add(gx.ExpectationSuite(name=name, expectations=part, meta={"standard": standard.ref}))

        # GE reports a suite's results grouped by column, columns in order of first appearance
        # (Validator.process_expectations_for_validation); the merged results keep that order.
        groups: dict[str | None, list[str]] = {}
        for e in expectations:
            column = e.configuration.kwargs.get("column")
            groups.setdefault(column if isinstance(column, str) else None, []).append(e.meta["reason"])

        _plans[standard.ref] = _Plan(
            order=[reason for group in groups.values() for reason in group],
            rows_suite=suite(f"{standard.ref}#rows", rows),
            rows_columns=[c for c in fields if c in whole],
            values_suite=suite(f"{standard.ref}#values", values),
            values_columns=[c for c in fields if any(c in columns(e) for e in values)],
        )
    return _plans[standard.ref]


def _run(standard: Standard, suite, table: pa.Table) -> list:
    import pandas as pd

    _, batch_definition = _batch_definition(standard.ref)
    # Arrow-backed strings keep codes as text and make GE's null checks vectorised.
    frame = table.to_pandas(
        types_mapper={pa.string(): pd.StringDtype("pyarrow"), pa.large_string(): pd.StringDtype("pyarrow")}.get
    )
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    result = batch.validate(suite, result_format={"result_format": "COMPLETE"})
    for r in result.results:
        if r.exception_info and r.exception_info.get("raised_exception"):
            raise RuntimeError(
                f"expectation {r.expectation_config.meta['reason']} could not run: "
                f"{r.exception_info.get('exception_message')}"
            )
    return result.results


def validate(standard: Standard, table: pa.Table) -> Verdict:
    """Run the compiled suite over one batch of records shaped like the standard."""
    import numpy as np
    import pyarrow.compute as pc

    plan = _plan(standard)
    n = table.num_rows
    found: dict[str, tuple[dict, list]] = {}  # reason -> (summary, failing row positions in ascending order)

    def summary(r, element_count: int, unexpected_count: int) -> dict:
        return {"expectation": r.expectation_config.type, "reason": r.expectation_config.meta["reason"],
                "success": bool(r.success), "element_count": element_count, "unexpected_count": unexpected_count}

    if plan.rows_suite is not None:
        for r in _run(standard, plan.rows_suite, table.select(plan.rows_columns)):
            rows = r.result.get("unexpected_index_list") or []
            found[r.expectation_config.meta["reason"]] = (
                summary(r, int(r.result.get("element_count", n)), int(r.result.get("unexpected_count", len(rows)) or 0)),
                rows,
            )

    if plan.values_suite is not None:
        # Per column: its distinct values (then one null if it has nulls) and, per row, the position of its value.
        domains, positions = {}, {}
        for name in plan.values_columns:
            encoded = table.column(name).combine_chunks().dictionary_encode()
            domain = encoded.dictionary
            if encoded.null_count:
                domain = pa.concat_arrays([domain, pa.nulls(1, domain.type)])
            domains[name] = domain
            positions[name] = encoded.indices.fill_null(len(domain) - 1)
        # One frame for all columns: each padded to the longest by repeating its first value, which changes no
        # per-value verdict; padding positions are dropped below (their value is already at position 0).
        length = max(len(d) for d in domains.values())
        frame = pa.table({
            name: d.take(np.concatenate([np.arange(len(d)), np.zeros(length - len(d), dtype=np.int64)]))
            for name, d in domains.items()
        })
        for r in _run(standard, plan.values_suite, frame):
            column = r.expectation_config.kwargs["column"]
            bad = [p for p in r.result.get("unexpected_index_list") or [] if p < len(domains[column])]
            rows = []
            if bad:
                hit = pc.is_in(positions[column], value_set=pa.array(bad, positions[column].type))
                rows = np.flatnonzero(hit.to_numpy(zero_copy_only=False)).tolist()
            # Counts are reported in rows of the batch, as if GE had seen every row.
            found[r.expectation_config.meta["reason"]] = (summary(r, n, len(rows)), rows)

    reasons: dict[int, list[str]] = {}
    results = []
    for reason in plan.order:
        result, rows = found[reason]
        for row in rows:
            reasons.setdefault(int(row), []).append(reason)
        results.append(result)
    return Verdict(reasons=reasons, results=results, success=all(r["success"] for r in results))
