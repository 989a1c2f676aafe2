"""Validate harmonized records with the standard's Great Expectations suite, row by row."""

from __future__ import annotations

import copy
import itertools
import json
from dataclasses import dataclass

import pyarrow as pa

from hub.followed import Followed
from schemas.standards import Standard, files_of
from schemas.suite import compile_suite

__all__ = ["JSON_COLUMN", "PARTIAL_UNEXPECTED", "Unexpected", "Validation", "Verdict", "json_array", "json_field",
           "validate", "warm_up"]

# Expectations whose verdict for a row depends only on that row's value in one column (a null counts as a
# value). Great Expectations runs them once per distinct value and the verdict is copied to every row holding
# that value: same answer, far fewer rows. Any other kind (the key's uniqueness, or one added to the suite
# later) sees every row.
_PER_VALUE = {
    "ExpectColumnValuesToNotBeNull",
    "ExpectColumnValuesToHaveJsonType",
    "ExpectColumnValuesToBeInSet",
    "ExpectColumnValuesToMatchPattern",
    "ExpectColumnValuesToMatchFormat",
    "ExpectColumnValueLengthsToBeBetween",
    "ExpectColumnValuesToBeBetween",
    "ExpectColumnValuesToBeMultipleOf",
}
# Expectations that judge a value whatever its JSON type. Every other one (enum, pattern, range, ...) is a JSON
# Schema keyword that ignores values of another type, where GE would apply Python's (True == 1) or raise
# (a string against a number): they see the values of the field's type only, the others as absent.
_UNIQUE = {"ExpectColumnValuesToBeUnique", "ExpectCompoundColumnsToBeUnique"}
_RAW = {"ExpectColumnValuesToNotBeNull", "ExpectColumnValuesToHaveJsonType", *_UNIQUE}

# Field metadata marking a column of JSON texts: values of any JSON type, as read from JSON Lines or CSV
# (schemas.records), decoded to Python values for GE. Typed Arrow columns (the pipeline's) need no marking.
JSON_COLUMN = {b"hub.values": b"json"}


def json_field(name: str) -> pa.Field:
    return pa.field(name, pa.string(), metadata=JSON_COLUMN)


def json_array(values: list) -> pa.Array:
    """Python values of any JSON type (None: absent) as a column of JSON texts."""
    return pa.array([None if v is None else json.dumps(v) for v in values], pa.string())


@dataclass
class Verdict:
    """Which rows failed which rules, and the suite's per-expectation summary."""

    reasons: dict[int, list[str]]  # row position in the batch -> reason codes
    results: list[dict]
    success: bool

    def count_into(self, checks: dict) -> dict:
        """Add this verdict's rows checked and failed per rule to `checks` (reason code -> counts), as a run
        records them across its batches; returns `checks`."""
        for result in self.results:
            total = checks.setdefault(result["reason"], {"expectation": result["expectation"],
                                                         "element_count": 0, "unexpected_count": 0})
            total["element_count"] += result["element_count"]
            total["unexpected_count"] += result["unexpected_count"]
        return checks


def _batch_definition(key: str):
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
    source = context.data_sources.add_pandas(f"hub:{key}")
    return context, source.add_dataframe_asset("records").add_batch_definition_whole_dataframe("batch")


@dataclass(frozen=True)
class _Run:
    """One GE run's columns and suites (None where a suite has nothing).

    `by_dtype` serves columns whose dtype already makes every value of the field's type (the pipeline's
    typed tables): the type checks cannot fail there, and are left out (GE's cost is per expectation).
    Otherwise `raw` (required, type, uniqueness) sees the values as they are and `typed` (the keywords) sees
    only the values of the field's type.
    """

    columns: list[str]
    by_dtype: object | None
    raw: object | None
    typed: object | None


@dataclass(frozen=True)
class _Plan:
    """The compiled suite split into GE runs, and the order GE reports its results in."""

    order: list[str]  # reason codes in GE's result order (unique: one rule name per field and check)
    kinds: dict[str, str]  # reason code -> expectation type
    types: set[str]  # the type checks' reasons: row reasons, not among the standard's rules in `results`
    whole: _Run | None  # the columns some expectation needs whole (the key)
    per_value: dict[str, list]  # every other column's expectations: run on its distinct values
    batch: object  # the GE batch definition the suites run on (in the plan's own context)
    make_run: object  # (name, columns, expectations) -> _Run, its suites in the plan's context
    groups: dict  # columns judged in one GE run -> their _Run, made as batches need them

    def run_of(self, columns: tuple[str, ...]) -> _Run:
        if columns not in self.groups:
            self.groups[columns] = self.make_run(f"values:{'+'.join(columns)}", list(columns),
                                                 [e for c in columns for e in self.per_value[c]])
        return self.groups[columns]


# Compiled once per standard and read again when the standard's file or one of its code lists changes. A
# steward's draft may share name and version with the registered standard: its file tells them apart.
_plans = Followed("compiled suite")
_compiled = itertools.count()


def _plan(standard: Standard, unique_key: bool = True) -> _Plan:
    return _plans.get((standard.ref, unique_key), files_of(standard), lambda: _compile(standard, unique_key))


def warm_up(standard: Standard) -> None:
    """Compile the standard's suites now, as the pipeline runs them (the key's uniqueness checked apart), and as
    one-off validations do (`hub.runner`: the runner's children find them compiled), with the GE run of every
    column a first batch of few records makes (`_groups`)."""
    for unique_key in (False, True):
        plan = _plan(standard, unique_key)
        if plan.per_value:
            plan.run_of(tuple(plan.per_value))


def _compile(standard: Standard, unique_key: bool = True) -> _Plan:
    import great_expectations as gx

    context, batch = _batch_definition(f"{standard.ref}:{standard.path}:{next(_compiled)}")
    fields = [f.name for f in standard.fields]
    expectations = compile_suite(standard, types=True).expectations
    if not unique_key:
        expectations = [e for e in expectations if type(e).__name__ not in _UNIQUE]

    def columns(e) -> list[str]:
        return [e.column] if getattr(e, "column", None) else list(getattr(e, "column_list", None) or fields)

    def run(name: str, cols: list[str], part: list) -> _Run:
        def suite(kind: str, chosen: list):
            # An expectation belongs to one suite: the others get copies.
            return context.suites.add(gx.ExpectationSuite(
                name=f"{standard.ref}#{name}:{kind}", expectations=[copy.copy(e) for e in chosen],
                meta={"standard": standard.ref},
            )) if chosen else None

        raw = [e for e in part if type(e).__name__ in _RAW]
        typed = [e for e in part if type(e).__name__ not in _RAW]
        checked = [e for e in part if type(e).__name__ != "ExpectColumnValuesToHaveJsonType"]
        return _Run(cols, suite("by_dtype", checked), suite("raw", raw), suite("typed", typed))

    def per_value(e) -> bool:
        # With `mostly` below 1 success is a share of rows, which distinct values do not keep.
        return type(e).__name__ in _PER_VALUE and getattr(e, "mostly", 1) == 1

    # A column some expectation needs whole (the key) is sent whole once, with all its expectations.
    whole = {c for e in expectations if not per_value(e) for c in columns(e)}
    rows = [e for e in expectations if set(columns(e)) & whole]
    # The other columns are judged on their distinct values (Validation groups them into GE runs).
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

    return _Plan(
        order=[reason for group in groups.values() for reason in group],
        kinds={e.meta["reason"]: e.expectation_type for e in expectations},
        types={f"{f}:type" for f in fields},
        whole=run("whole", [c for c in fields if c in whole], rows) if rows else None,
        per_value=by_column,
        batch=batch,
        make_run=run,
        groups={},
    )


def _frame(table: pa.Table):
    """The records as pandas for GE: typed Arrow columns as they are, JSON-text columns as Python values."""
    import pandas as pd

    # Arrow-backed strings keep codes as text and make GE's null checks vectorised. Nullable integers and
    # booleans keep their type with nulls (numpy would turn them into floats, losing integers above 2**53, or
    # into objects).
    frame = table.to_pandas(types_mapper={
        pa.string(): pd.StringDtype("pyarrow"), pa.large_string(): pd.StringDtype("pyarrow"),
        pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype(),
    }.get)
    for f in table.schema:
        if f.metadata == JSON_COLUMN:
            frame[f.name] = pd.Series([None if t is None else json.loads(t) for t in table.column(f.name).to_pylist()],
                                      dtype=object, index=frame.index)
    return frame


def _of_type(column, json_type: str):
    """(values for the keywords, whether the dtype alone makes every value of the JSON type).

    The values for the keywords are the column's own when every value is of the type, else a copy where the
    values of another type are absent (they fail `field:type`, which is what JSON Schema says of them).
    """
    import pandas as pd

    from schemas.suite import has_json_type

    dtype = column.dtype
    if isinstance(dtype, pd.StringDtype):
        static = json_type == "string"
    elif pd.api.types.is_bool_dtype(dtype):
        static = json_type == "boolean"
    elif pd.api.types.is_integer_dtype(dtype):
        static = json_type in ("integer", "number")
    elif pd.api.types.is_float_dtype(dtype):
        static = json_type == "number"
    else:
        static = False
    if static:
        return column, True
    # JSON values (or Arrow values of another type): one by one; GE's nulls (None, NaN) are absent already.
    keep = column.isna() | column.map(lambda v: has_json_type(v, json_type)).astype(bool)
    return (column if keep.all() else column.astype(object).where(keep, None)), False


def _run(standard: Standard, batch, run: _Run, frame) -> list:
    """Run a group's suites on its frame; the results of every expectation, from whichever run did it."""
    views = {c: _of_type(frame[c], standard.field(c).type) for c in run.columns}
    if all(static for _, static in views.values()):
        return _validate(batch, run.by_dtype, frame) if run.by_dtype else []
    typed = frame.assign(**{c: view for c, (view, _) in views.items()})
    return [*(_validate(batch, run.raw, frame) if run.raw else []),
            *(_validate(batch, run.typed, typed) if run.typed else [])]


def _validate(batch_definition, suite, frame) -> list:
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    # Only the failing rows' positions are read from GE's result (values are taken from the records): its lists
    # and counts of failing values, one Python object per failing row, are left out.
    result = batch.validate(suite, result_format={"result_format": "COMPLETE", "exclude_unexpected_values": True})
    for r in result.results:
        # GE reports an expectation's own exception at the top, a metric's under the metric's id.
        info = r.exception_info or {}
        failures = [info, *(v for v in info.values() if isinstance(v, dict))]
        messages = [f.get("exception_message") for f in failures if f.get("raised_exception")]
        if messages:
            raise RuntimeError(f"expectation {r.expectation_config.meta['reason']} could not run: {messages[0]}")
    return result.results


MEMO_VALUES = 1_000_000


class Validation:
    """One run's validation against a standard, batch by batch: the compiled suite, and the verdicts given so far.

    A per-value verdict depends on the value alone, so a batch sends GE only the values of a column that the
    run has not judged yet: a column of dates or codes is settled after the first batch. A column remembers at
    most MEMO_VALUES values; past that (names, say), each batch's values are judged as they come.

    `unique_key=False` leaves the key's uniqueness out of the suite run on each batch: a caller that sees the
    whole run (the pipeline) decides duplicates itself, across batches, and reports that rule's counts.
    """

    def __init__(self, standard: Standard, unique_key: bool = True) -> None:
        self.standard = standard
        # Compiles the suite: made before the first batch arrives, it waits for none.
        self.plan = _plan(standard, unique_key)
        self._judged: dict[str, tuple[pa.Array, dict[str, pa.Array]]] = {}  # column -> (values, reason -> failing)
        # A key of one field has a new value in nearly every record: remembering its values would only cost.
        self._unremembered = set(standard.primary_key) if len(standard.primary_key) == 1 else set()

    def __call__(self, table: pa.Table) -> Verdict:
        """Run the compiled suite (with each field's type check) over one batch of records shaped like the standard.

        GE sees the key's columns whole and every other column as its distinct values (a key of one field left to
        the caller, `unique_key=False`, as its values are); verdicts and counts are mapped back to the batch's rows,
        so they are the ones the suite gives on the whole batch. A column is typed Arrow (the pipeline's) or JSON
        texts (json_field: values of any JSON type, from JSON Lines or CSV).
        """
        import numpy as np
        import pyarrow.compute as pc

        standard, plan, n = self.standard, self.plan, table.num_rows
        found: dict[str, tuple[dict, list]] = {}  # reason -> (summary, failing row positions in ascending order)

        def summary(reason: str, success: bool, element_count: int, unexpected_count: int) -> dict:
            return {"expectation": plan.kinds[reason], "reason": reason, "success": success,
                    "element_count": element_count, "unexpected_count": unexpected_count}

        if plan.whole is not None:
            for r in _run(standard, plan.batch, plan.whole, _frame(table.select(plan.whole.columns))):
                rows = r.result.get("unexpected_index_list") or []
                counts = int(r.result.get("element_count", n)), int(r.result.get("unexpected_count", len(rows)) or 0)
                reason = r.expectation_config.meta["reason"]
                found[reason] = (summary(reason, bool(r.success), *counts), rows)

        # column -> (its distinct values, then one null if it has nulls; per row, its value there). The values of a
        # key of one field are nearly all distinct: they are sent as they are, each row its own (positions None).
        domains = {}
        for column in plan.per_value:
            values = table.column(column).combine_chunks()
            if column in self._unremembered:
                domains[column] = (values, None)
                continue
            encoded = values.dictionary_encode()
            domain = encoded.dictionary
            if encoded.null_count:
                domain = pa.concat_arrays([domain, pa.nulls(1, domain.type)])
            domains[column] = (domain, encoded.indices.fill_null(len(domain) - 1))
        failing = self._failing_values({c: domain for c, (domain, _) in domains.items()}, table.schema)
        for column, (domain, positions) in domains.items():
            for reason, values in failing[column].items():
                rows = []
                if len(values):
                    hit = pc.is_in(domain, value_set=values, skip_nulls=False)
                    rows = np.flatnonzero(hit.to_numpy(zero_copy_only=False))
                    if positions is not None:
                        bad = pa.array(rows, positions.type)
                        rows = np.flatnonzero(pc.is_in(positions, value_set=bad).to_numpy(zero_copy_only=False))
                    rows = rows.tolist()
                # Counts are reported in rows of the batch, as if GE had seen every row.
                found[reason] = (summary(reason, not rows, n, len(rows)), rows)

        reasons: dict[int, list[str]] = {}
        results = []
        for reason in plan.order:
            if reason not in found and reason in plan.types:  # left out: the column's dtype says it cannot fail
                continue
            result, rows = found[reason]
            for row in rows:
                reasons.setdefault(int(row), []).append(reason)
            if reason not in plan.types:
                results.append(result)
        return Verdict(reasons=reasons, results=results,
                       success=all(r["success"] for r in results) and not reasons)

    def _failing_values(self, domains: dict[str, pa.Array], schema: pa.Schema) -> dict[str, dict[str, pa.Array]]:
        """Per column, per reason of its expectations, the values of its `domains` entry (its distinct values, or a
        key's values as they are) that fail: values judged in earlier batches from memory, the others by GE, several
        columns a run."""
        import pyarrow.compute as pc

        fresh: dict[str, pa.Array] = {}
        for column, domain in domains.items():
            known = self._judged.get(column)
            new = domain if known is None else domain.filter(
                pc.invert(pc.is_in(domain, value_set=known[0], skip_nulls=False)))
            if known is None or len(new):
                fresh[column] = new
        # A column without values (a batch of no records) fails nothing.
        judged = {column: {} if len(values) else {e.meta["reason"]: values for e in self.plan.per_value[column]}
                  for column, values in fresh.items()}
        for group in _groups({c: values for c, values in fresh.items() if len(values)}):
            longest = max(len(fresh[c]) for c in group)
            # Each column filled up to the group's length with its first value again: GE's verdict on a value
            # is the same wherever it stands, and what fails is taken as a set of values.
            columns = [pa.concat_arrays([fresh[c], fresh[c].take(pa.nulls(longest - len(fresh[c]), pa.int64())
                                                                  .fill_null(0))]) for c in group]
            frame = _frame(pa.table(columns, schema=pa.schema([schema.field(c) for c in group])))
            for r in _run(self.standard, self.plan.batch, self.plan.run_of(group), frame):
                column = r.expectation_config.kwargs["column"]
                rows = pa.array(r.result.get("unexpected_index_list") or [], pa.int64())
                rows = pc.unique(pc.if_else(pc.less(rows, len(fresh[column])), rows, 0)) if len(rows) else rows
                judged[column][r.expectation_config.meta["reason"]] = fresh[column].take(rows)
        failing = {}
        for column in domains:
            known = self._judged.get(column)
            if column not in fresh:
                failing[column] = known[1]
                continue
            values, failed = fresh[column], judged[column]
            if known is not None:
                failed = {reason: pa.concat_arrays([old, failed[reason]]) if reason in failed else old
                          for reason, old in known[1].items()}
                values = pa.concat_arrays([known[0], values])
            failing[column] = failed
            if len(values) <= MEMO_VALUES and column not in self._unremembered:
                self._judged[column] = (values, failed)
            else:
                self._judged.pop(column, None)
        return failing


# A column with at most this many new values in a batch shares a GE run with the others like it (each filled up
# to the longest): GE's cost is mostly per run and per expectation, a few thousand rows more cost less than a run.
GROUP_VALUES = 2_000


def _groups(fresh: dict[str, pa.Array]) -> list[tuple[str, ...]]:
    """The columns' GE runs: the short ones together, each longer one alone."""
    short = tuple(c for c, values in fresh.items() if len(values) <= GROUP_VALUES)
    return ([short] if short else []) + [(c,) for c, values in fresh.items() if len(values) > GROUP_VALUES]


# Rows (and values) a run's Great Expectations result lists per expectation: GE's own default for its partial lists.
PARTIAL_UNEXPECTED = 20


# A value longer than this is cut in a run's result (marked with "…"): one free-text field must not make it huge.
VALUE_CHARS = 200


def _kept_value(value):
    """A failing value as a run's result keeps it: JSON's own types as they are, anything else as text."""
    import math

    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # NaN and infinities are no JSON numbers
    if not isinstance(value, (str, int, float, bool, type(None))):
        value = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return value[:VALUE_CHARS] + "…" if isinstance(value, str) and len(value) > VALUE_CHARS else value


class Unexpected:
    """A run's first PARTIAL_UNEXPECTED failing rows per rule, gathered batch by batch for its GE result.

    `found`: reason code -> {"rows": row numbers, "values": the values GE judged unexpected, in the same order}.
    A rule on a personal-data or `rahasia` field keeps row numbers only (`values` None): those values are never
    stored, whoever may later read the result.
    """

    def __init__(self, standard: Standard) -> None:
        self.withheld = {f.name for f in standard.fields if f.personal_data or f.classification == "rahasia"}
        self.found: dict[str, dict] = {}

    def _kept(self, reason: str) -> dict:
        fields = set(reason.rpartition(":")[0].split("+"))
        return self.found.setdefault(reason, {"rows": [], "values": None if fields & self.withheld else []})

    def add(self, verdict: Verdict, table: pa.Table, rows: pa.Array) -> None:
        """A batch's verdict on `table` (the records GE saw), whose rows have the numbers `rows`."""
        wanting = {r["reason"] for r in verdict.results
                   if r["unexpected_count"] and len(self._kept(r["reason"])["rows"]) < PARTIAL_UNEXPECTED}
        for position in sorted(verdict.reasons) if wanting else ():
            for reason in wanting.intersection(verdict.reasons[position]):
                kept = self.found[reason]
                kept["rows"].append(rows[position].as_py())
                if kept["values"] is not None:
                    column = reason.rpartition(":")[0]
                    value = table.column(column)[position].as_py()
                    if table.schema.field(column).metadata == JSON_COLUMN and value is not None:
                        value = json.loads(value)  # GE judged the value the JSON text holds
                    kept["values"].append(_kept_value(value))
                if len(kept["rows"]) == PARTIAL_UNEXPECTED:
                    wanting.discard(reason)
            if not wanting:
                break

    def add_rows(self, reason: str, rows: list[int]) -> None:
        """Rows a rule decided over the whole run (the key's uniqueness): row numbers only."""
        kept = self._kept(reason)
        kept["values"] = None
        kept["rows"] = sorted([*kept["rows"], *rows])[:PARTIAL_UNEXPECTED]


def validate(standard: Standard, table: pa.Table) -> Verdict:
    """Validate one batch of records on its own (a run of several batches keeps one Validation)."""
    return Validation(standard)(table)
