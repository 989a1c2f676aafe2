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
    """The compiled suite split into GE runs, and the order GE reports its results in."""

    order: list[str]  # reason codes in GE's result order (unique: one rule name per field and check)
    whole: tuple[list[str], object] | None  # columns some expectation needs whole (the key), with their suite
    per_value: dict[str, object]  # every other column -> the suite of its expectations, run on its distinct values


_plans: dict[str, _Plan] = {}


def _plan(standard: Standard) -> _Plan:
    if standard.ref not in _plans:
        import great_expectations as gx

        context, _ = _batch_definition(standard.ref)
        fields = [f.name for f in standard.fields]
        expectations = compile_suite(standard).expectations

        def columns(e) -> list[str]:
            return [e.column] if getattr(e, "column", None) else list(getattr(e, "column_list", None) or fields)

        def suite(name: str, part: list):
            return context.suites.add(gx.ExpectationSuite(name=f"{standard.ref}#{name}", expectations=part,
                                                          meta={"standard": standard.ref}))

        def per_value(e) -> bool:
            # With `mostly` below 1 success is a share of rows, which distinct values do not keep.
            return type(e).__name__ in _PER_VALUE and getattr(e, "mostly", 1) == 1

        # A column some expectation needs whole (the key) is sent whole once, with all its expectations.
        whole = {c for e in expectations if not per_value(e) for c in columns(e)}
        rows = [e for e in expectations if set(columns(e)) & whole]
        # The other columns get a GE run each: GE's cost is per expectation and per row, hardly per run, and
        # alone a column is as long as its own distinct values.
        by_column: dict[str, list] = {}
        for e in expectations:
            if not set(columns(e)) & whole:
                by_column.setdefault(e.column, []).append(e)

        # GE reports a suite's results grouped by column, columns in order of first appearance
        # (Validator.process_expectations_for_validation); the merged results keep that order.
        groups: dict[str | None, list[str]] = {}
        for e in expectations:
            column = e.configuration.kwargs.get("column")
            groups.setdefault(column if isinstance(column, str) else None, []).append(e.meta["reason"])

        _plans[standard.ref] = _Plan(
            order=[reason for group in groups.values() for reason in group],
            whole=([c for c in fields if c in whole], suite("whole", rows)) if rows else None,
            per_value={column: suite(f"values:{column}", part) for column, part in by_column.items()},
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
    """Run the compiled suite over one batch of records shaped like the standard.

    GE sees the key's columns whole and every other column as its distinct values; verdicts and counts are
    mapped back to the batch's rows, so they are the ones the suite gives on the whole batch.
    """
    import numpy as np
    import pyarrow.compute as pc

    plan = _plan(standard)
    n = table.num_rows
    found: dict[str, tuple[dict, list]] = {}  # reason -> (summary, failing row positions in ascending order)

    def summary(r, element_count: int, unexpected_count: int) -> dict:
        return {"expectation": r.expectation_config.type, "reason": r.expectation_config.meta["reason"],
                "success": bool(r.success), "element_count": element_count, "unexpected_count": unexpected_count}

    if plan.whole is not None:
        columns, suite = plan.whole
        for r in _run(standard, suite, table.select(columns)):
            rows = r.result.get("unexpected_index_list") or []
            counts = int(r.result.get("element_count", n)), int(r.result.get("unexpected_count", len(rows)) or 0)
            found[r.expectation_config.meta["reason"]] = (summary(r, *counts), rows)

    for column, suite in plan.per_value.items():
        # The column's distinct values, then one null if it has nulls; per row, the position of its value there.
        encoded = table.column(column).combine_chunks().dictionary_encode()
        domain = encoded.dictionary
        if encoded.null_count:
            domain = pa.concat_arrays([domain, pa.nulls(1, domain.type)])
        positions = encoded.indices.fill_null(len(domain) - 1)
        for r in _run(standard, suite, pa.table({column: domain})):
            bad = r.result.get("unexpected_index_list") or []
            rows = []
            if bad:
                hit = pc.is_in(positions, value_set=pa.array(bad, positions.type))
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
