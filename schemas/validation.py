"""Validate harmonized records with the standard's Great Expectations suite, row by row."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import pyarrow as pa

from schemas.standards import Standard
from schemas.suite import compile_suite

__all__ = ["Verdict", "validate"]


@dataclass
class Verdict:
    """Which rows failed which rules, and the suite's per-expectation summary."""

    reasons: dict[int, list[str]]  # row position in the batch -> reason codes
    results: list[dict]
    success: bool


@cache
def _batch_definition(standard_ref: str):
    import great_expectations as gx

    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    source = context.data_sources.add_pandas(f"hub:{standard_ref}")
    return context, source.add_dataframe_asset("records").add_batch_definition_whole_dataframe("batch")


_suites: dict[str, object] = {}


def _suite(standard: Standard):
    if standard.ref not in _suites:
        context, _ = _batch_definition(standard.ref)
        _suites[standard.ref] = context.suites.add(compile_suite(standard))
    return _suites[standard.ref]


def validate(standard: Standard, table: pa.Table) -> Verdict:
    """Run the compiled suite over one batch of records shaped like the standard."""
    import pandas as pd

    suite = _suite(standard)
    _, batch_definition = _batch_definition(standard.ref)
    # Arrow-backed strings keep codes as text and make GE's null checks vectorised.
    frame = table.select([f.name for f in standard.fields]).to_pandas(
        types_mapper={pa.string(): pd.StringDtype("pyarrow"), pa.large_string(): pd.StringDtype("pyarrow")}.get
    )
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    result = batch.validate(suite, result_format={"result_format": "COMPLETE"})
    reasons: dict[int, list[str]] = {}
    results = []
    for r in result.results:
        reason = r.expectation_config.meta["reason"]
        rows = r.result.get("unexpected_index_list") or []
        if r.exception_info and r.exception_info.get("raised_exception"):
            raise RuntimeError(f"expectation {reason} could not run: {r.exception_info.get('exception_message')}")
        for row in rows:
            reasons.setdefault(int(row), []).append(reason)
        results.append({
            "expectation": r.expectation_config.type,
            "reason": reason,
            "success": bool(r.success),
            "element_count": int(r.result.get("element_count", len(frame))),
            "unexpected_count": int(r.result.get("unexpected_count", len(rows)) or 0),
        })
    return Verdict(reasons=reasons, results=results, success=bool(result.success))
