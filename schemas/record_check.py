"""A standard's compiled suite evaluated one record at a time, in plain Python: the check on the live exchange path.

Great Expectations stays the validator of batches (schemas.validation). Its fixed cost per run (tens of
milliseconds, one run at a time per context) is what a provider's answer of one record cannot afford, so this
module evaluates the same specification, `type_specs(standard) + expectation_specs(standard)` (schemas.suite),
with the value-level functions the custom expectations use (`has_json_type`, `is_multiple_of`, the format checker
below, `re.search` as schemas.pattern judges a pattern), and gives the same reason codes per record as
`Validation`, in the same order. tests/schemas/test_record_check.py holds the two equal on every shipped standard.

Nothing here imports Great Expectations or pandas.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from typing import Callable, Iterable, Mapping

from jsonschema import Draft202012Validator

from hub.followed import Followed, stamp
from schemas.standards import Standard, files_of
from schemas.suite import expectation_specs, has_json_type, type_specs

__all__ = ["FORMAT_CHECKER", "RecordCheck", "is_multiple_of", "record_check"]

# jsonschema's own format checks (date: ASCII YYYY-MM-DD and a real calendar day; email: contains "@";
# date-time: rfc3339_validator, which jsonschema only checks when that package is installed). Here rather than in
# schemas.expectations, which uses them too, so that the live path can have them without importing GE.
FORMAT_CHECKER = Draft202012Validator.FORMAT_CHECKER
assert "date-time" in FORMAT_CHECKER.checkers, "rfc3339-validator must be installed to check date-time"


def is_multiple_of(instance, divisor) -> bool:
    """jsonschema's multipleOf arithmetic (jsonschema/_keywords.py), for a number instance.

    An infinite number (a text such as 1e999 read as a float) is the multiple of nothing, and an integer too large
    for a float is judged exactly: jsonschema raises on both, which would stop a whole batch, or a live answer, on
    one value.
    """
    if isinstance(instance, float) and not math.isfinite(instance):
        return False
    if isinstance(divisor, float):
        try:
            quotient = instance / divisor  # inside the try: an integer too large for a float overflows here
            return int(quotient) == quotient
        except OverflowError:  # a huge quotient: exact fractions, as jsonschema falls back to
            return (Fraction(instance) / Fraction(divisor)).denominator == 1
    return not instance % divisor


def _absent(value) -> bool:
    """A null as GE sees one (pandas' isna): None, or NaN (a float column's null once Arrow hands it to pandas)."""
    return value is None or (isinstance(value, float) and value != value)


def _in_set(value_set: list) -> Callable:
    # pandas' isin on the values of the field's type is Python equality (1 == 1.0); a set keeps it.
    members = frozenset(value_set)
    return members.__contains__


def _pattern(pattern: str) -> Callable:
    search = re.compile(pattern).search  # the verdict schemas.pattern gives every value, whichever engine runs
    return lambda value: search(value) is not None


def _format(format: str) -> Callable:  # noqa: A002 (the JSON Schema keyword's name)
    return lambda value: FORMAT_CHECKER.conforms(value, format)


def _lengths(min_value, max_value) -> Callable:
    # GE measures str(value); only strings get here, so that is len(value): code points, as Arrow's utf8_length.
    low = 0 if min_value is None else min_value
    high = float("inf") if max_value is None else max_value
    return lambda value: low <= len(value) <= high


def _between(min_value, max_value, strict_min, strict_max) -> Callable:
    def between(value) -> bool:
        if min_value is not None and (value <= min_value if strict_min else value < min_value):
            return False
        return max_value is None or (value < max_value if strict_max else value <= max_value)
    return between


def _multiple_of(value) -> Callable:
    return lambda instance: is_multiple_of(instance, value)


# Per expectation of the suite, the arguments it takes and the test of one value of the field's type. A kind or
# an argument not listed here is refused when the check is compiled: a rule added to the suite is never skipped
# silently on the live path.
_VALUE_TESTS: dict[str, tuple[frozenset, Callable]] = {
    "ExpectColumnValuesToBeInSet": (frozenset({"value_set"}), _in_set),
    "ExpectColumnValuesToMatchPattern": (frozenset({"pattern"}), _pattern),
    "ExpectColumnValuesToMatchFormat": (frozenset({"format"}), _format),
    "ExpectColumnValueLengthsToBeBetween": (frozenset({"min_value", "max_value"}), _lengths),
    "ExpectColumnValuesToBeBetween": (frozenset({"min_value", "max_value", "strict_min", "strict_max"}), _between),
    "ExpectColumnValuesToBeMultipleOf": (frozenset({"value"}), _multiple_of),
}
_TYPE, _REQUIRED, _VALUE, _UNIQUE = "type", "required", "value", "unique"


class _Column:
    """One field's rules, in the suite's order: the type check, not-null, the keywords (on values of the type)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.json_type: str | None = None
        self.rules: list[tuple[str, str, Callable | None]] = []  # (kind, reason, value test)


class RecordCheck:
    """A standard's compiled suite as plain Python: `reasons(records)` is what `Validation(standard)(table).reasons`
    gives for the same records. Compiled once per standard (record_check); immutable, so threads share it."""

    def __init__(self, standard: Standard) -> None:
        self.ref = standard.ref
        columns: dict[str, _Column] = {}
        self._compound: list[tuple[str, tuple[str, ...]]] = []  # (reason, key columns)
        # GE reports a suite's results grouped by column, in order of first appearance; Validation lists a row's
        # reasons in that order, and so does this check.
        for spec in type_specs(standard) + expectation_specs(standard):
            kind, kwargs, reason = spec["expectation"], dict(spec["kwargs"]), spec["reason"]
            if kind == "ExpectCompoundColumnsToBeUnique" and set(kwargs) == {"column_list"}:
                self._compound.append((reason, tuple(kwargs["column_list"])))
                continue
            column = kwargs.pop("column", None)
            if not isinstance(column, str):
                raise _unknown(standard, spec)
            rules = columns.setdefault(column, _Column(column))
            if kind == "ExpectColumnValuesToHaveJsonType" and set(kwargs) == {"json_type"}:
                rules.json_type = kwargs["json_type"]
                rules.rules.append((_TYPE, reason, None))
            elif kind == "ExpectColumnValuesToNotBeNull" and not kwargs:
                rules.rules.append((_REQUIRED, reason, None))
            elif kind == "ExpectColumnValuesToBeUnique" and not kwargs:
                rules.rules.append((_UNIQUE, reason, None))
            elif kind in _VALUE_TESTS and set(kwargs) == _VALUE_TESTS[kind][0]:
                rules.rules.append((_VALUE, reason, _VALUE_TESTS[kind][1](**kwargs)))
            else:
                raise _unknown(standard, spec)
        for rules in columns.values():
            if rules.json_type is None:  # the keywords see only values of the field's type: it must be known
                raise ValueError(f"{standard.ref}: the suite has no type check for {rules.name}")
        self._columns = tuple(columns.values())
        self._fields = {c.name: c for c in self._columns}

    def reasons(self, records: Iterable[Mapping]) -> dict[int, list[str]]:
        """Per record (its position in `records`) that fails, the reason codes of the rules it fails.

        A record is a mapping of field names to JSON values (a missing field, None or NaN: absent); uniqueness of
        the key is judged among these records.
        """
        records = records if isinstance(records, list) else list(records)
        duplicated = self._duplicates(records)
        found: dict[int, list[str]] = {}
        for position, record in enumerate(records):
            failed = []
            for column in self._columns:
                value = record.get(column.name)
                absent = _absent(value)
                typed = not absent and has_json_type(value, column.json_type)
                for kind, reason, test in column.rules:
                    if kind == _VALUE:
                        if typed and not test(value):
                            failed.append(reason)
                    elif kind == _TYPE:
                        if not absent and not typed:
                            failed.append(reason)
                    elif kind == _REQUIRED:
                        if absent:
                            failed.append(reason)
                    elif position in duplicated.get(reason, ()):
                        failed.append(reason)
            for reason, _ in self._compound:
                if position in duplicated.get(reason, ()):
                    failed.append(reason)
            if failed:
                found[position] = failed
        return found

    def _duplicates(self, records: list) -> dict[str, set[int]]:
        """Per uniqueness rule, the positions of the records whose key another record holds too.

        As GE's pandas metrics judge it: a single key's absent values are no key at all; a compound key is left out
        only when all its values are absent, and otherwise an absent value equals another absent value. Equality is
        Python's, as pandas' on object columns (1 == 1.0 == True: such values fail their type anyway).
        """
        if len(records) < 2:
            return {}
        out: dict[str, set[int]] = {}
        for column in self._columns:
            for kind, reason, _ in column.rules:
                if kind == _UNIQUE:
                    out[reason] = _repeated((position, record.get(column.name))
                                            for position, record in enumerate(records)
                                            if not _absent(record.get(column.name)))
        for reason, key in self._compound:
            rows = []
            for position, record in enumerate(records):
                values = tuple(None if _absent(record.get(name)) else record.get(name) for name in key)
                if any(v is not None for v in values):
                    rows.append((position, values))
            out[reason] = _repeated(rows)
        return out


def _repeated(rows: Iterable[tuple[int, object]]) -> set[int]:
    seen: dict[object, list[int]] = {}
    for position, key in rows:
        seen.setdefault(key, []).append(position)
    return {position for positions in seen.values() if len(positions) > 1 for position in positions}


def _unknown(standard: Standard, spec: dict) -> Exception:
    return NotImplementedError(
        f"{standard.ref}: the record check does not evaluate {spec['expectation']} with arguments "
        f"{sorted(spec['kwargs'])} ({spec['reason']}); teach schemas.record_check the rule the suite gained")


# Compiled once per standard and again when its file or one of its code lists changes, as the GE plans are.
_checks = Followed("record check")
# Per standard, the last check answered, with the files it was read from and their stamp then. Asking which files a
# standard is read from (files_of) costs ten times the check of a record; while none of them changed (the code
# lists' index among them), the answer stands.
_last: dict[tuple, tuple] = {}


def record_check(standard: Standard) -> RecordCheck:
    """The standard's compiled record check, shared by every thread."""
    key = (standard.ref, standard.path)
    last = _last.get(key)
    if last is not None and last[0] is standard and stamp(last[1]) == last[2]:
        return last[3]
    files = files_of(standard)
    before = stamp(files)  # taken before the check is read: a change meanwhile is seen on the next call
    check = _checks.get(standard.ref, files, lambda: RecordCheck(standard))
    _last[key] = (standard, files, before, check)
    return check
