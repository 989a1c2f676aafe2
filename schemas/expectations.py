"""Great Expectations expectations with JSON Schema semantics: a value's JSON type, multipleOf, pattern, format."""

from __future__ import annotations

from typing import ClassVar, Tuple, Union

import numpy as np
import pandas as pd
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import ColumnMapExpectation
from great_expectations.expectations.metrics.map_metric_provider import (
    ColumnMapMetricProvider,
    column_condition_partial,
)
from schemas.pattern import search
from schemas.record_check import FORMAT_CHECKER as _FORMAT_CHECKER
from schemas.record_check import is_multiple_of
from schemas.suite import has_json_type

__all__ = [
    "ExpectColumnValuesToBeMultipleOf", "ExpectColumnValuesToHaveJsonType", "ExpectColumnValuesToMatchFormat",
    "ExpectColumnValuesToMatchPattern", "is_multiple_of",
]

# is_multiple_of and the format checker live in schemas.record_check, which judges one record at a time without
# importing GE: both paths use the same functions.


class ColumnValuesJsonType(ColumnMapMetricProvider):
    condition_metric_name = "column_values.json_type"
    condition_value_keys = ("json_type",)

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, json_type, **kwargs):
        # GE hands over the non-null values. A column of one Arrow/numpy type is judged by its dtype (the
        # pipeline's typed tables: no per-value work); values read from JSON sit in object columns, judged one by one.
        dtype = column.dtype
        if isinstance(dtype, pd.StringDtype):
            return np.full(len(column), json_type == "string")
        if pd.api.types.is_bool_dtype(dtype):
            return np.full(len(column), json_type == "boolean")
        if pd.api.types.is_integer_dtype(dtype):
            return np.full(len(column), json_type in ("integer", "number"))
        if pd.api.types.is_float_dtype(dtype):
            if json_type == "integer":
                return (column % 1 == 0).to_numpy(dtype=bool)
            return np.full(len(column), json_type == "number")
        return column.map(lambda v: has_json_type(v, json_type)).to_numpy(dtype=bool)


class ExpectColumnValuesToHaveJsonType(ColumnMapExpectation):
    """Every non-null value is of this JSON Schema type (string, integer, number, boolean).

    GE's ExpectColumnValuesToBeInTypeList tests Python types, where True is an int and 1.0 is not.
    """

    json_type: str
    map_metric = "column_values.json_type"
    success_keys = ("json_type", "mostly")
    args_keys = ("column", "json_type")
    domain_keys: ClassVar[Tuple[str, ...]] = ("column", "row_condition", "condition_parser")


class ColumnValuesMultipleOf(ColumnMapMetricProvider):
    condition_metric_name = "column_values.multiple_of"
    condition_value_keys = ("value",)

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, value, **kwargs):
        # Per value: the validation runs on distinct values, and this is jsonschema's arithmetic, not numpy's.
        return column.map(lambda v: is_multiple_of(v, value)).to_numpy(dtype=bool)


class ExpectColumnValuesToBeMultipleOf(ColumnMapExpectation):
    """Every non-null value is a multiple of `value` (JSON Schema multipleOf); give it numbers only."""

    value: Union[int, float]
    map_metric = "column_values.multiple_of"
    success_keys = ("value", "mostly")
    args_keys = ("column", "value")
    domain_keys: ClassVar[Tuple[str, ...]] = ("column", "row_condition", "condition_parser")


class ColumnValuesPattern(ColumnMapMetricProvider):
    condition_metric_name = "column_values.json_pattern"
    condition_value_keys = ("pattern",)

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, pattern, **kwargs):
        return search(column, pattern)


class ExpectColumnValuesToMatchPattern(ColumnMapExpectation):
    """Every non-null string matches `pattern` somewhere (JSON Schema pattern, with `re.search` as jsonschema).

    GE's ExpectColumnValuesToMatchRegex gives the same verdicts one Python call per value; this one lets
    Arrow judge the column at once where that is known to agree (schemas.pattern).
    """

    pattern: str
    map_metric = "column_values.json_pattern"
    success_keys = ("pattern", "mostly")
    args_keys = ("column", "pattern")
    domain_keys: ClassVar[Tuple[str, ...]] = ("column", "row_condition", "condition_parser")


class ColumnValuesFormat(ColumnMapMetricProvider):
    condition_metric_name = "column_values.json_format"
    condition_value_keys = ("format",)

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, format, **kwargs):  # noqa: A002 (the JSON Schema keyword's name)
        return column.map(lambda v: _FORMAT_CHECKER.conforms(v, format)).to_numpy(dtype=bool)


class ExpectColumnValuesToMatchFormat(ColumnMapExpectation):
    """Every non-null value conforms to a JSON Schema format (date, date-time, email), as jsonschema checks it."""

    format: str
    map_metric = "column_values.json_format"
    success_keys = ("format", "mostly")
    args_keys = ("column", "format")
    domain_keys: ClassVar[Tuple[str, ...]] = ("column", "row_condition", "condition_parser")
