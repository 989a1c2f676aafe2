"""The declarative mapping engine: a source's `mapping:` turns its records into the standard's shape.

Per field, the steps run in this order (docs/mapping.md is the reference): trim (a blank cell is an absent value),
extract (the part of a cell a pattern names), normalize, crosswalk, region (names of kelurahan or kecamatan to
their codes), dates, then the cast to the field's type. A step that cannot read a value leaves it null and names a rule: the row is quarantined with `field:rule`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from connectors.base import ROW
from hub.errors import ConfigError
from hub.suggest import nearest
from transforms import regions
from transforms.dates import parse_dates
from transforms.normalize import normalizer

__all__ = ["NOT_SHOWN", "VALUE_DIGITS", "Harmonized", "Harmonizer", "arrow_type", "check_mapping", "check_steps", "columns_used", "harmonize", "region_scope", "shown_name"]

_TRUE = ["true", "ya", "y", "1", "benar"]
_FALSE = ["false", "tidak", "t", "0", "salah"]
_INTEGER = r"^[+-]?[0-9]+$"
_NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"


# A name in a header that may be a value instead (a file without its header row has a record there): a run of
# digits as in a NIK or a phone number, or a long text. Such a name is never shown in a message.
VALUE_DIGITS = re.compile(r"[0-9]{5}")
NOT_SHOWN = "<not shown>"


def shown_name(name: str) -> str:
    """A column's name as a message may show it: NOT_SHOWN where it may be a value."""
    return name if len(name) <= 64 and not VALUE_DIGITS.search(name) else NOT_SHOWN


def arrow_type(field) -> pa.DataType:
    """The Arrow type of a standard's field while it is harmonized and validated (dates stay ISO text)."""
    return {"string": pa.string(), "integer": pa.int64(), "number": pa.float64(), "boolean": pa.bool_()}[field.type]


@dataclass
class Harmonized:
    """Records in the standard's shape (plus `_row`), and per row the reasons harmonization failed."""

    table: pa.Table
    reasons: dict[int, list[str]]


def check_mapping(source, standard) -> None:
    """Raise a ConfigError naming the registration and the field for a mapping that cannot run on any record: a
    field the standard does not have, a normalizer or option that does not exist, a region scope that is not a
    region, a date format without day, month or year. What depends on the records (their columns) is checked
    when they are read."""
    _known_fields(source, standard)
    for field in standard.fields:
        spec = source.mapping.get(field.name)
        try:
            check_steps(spec, field)
        except StepError as e:
            raise ConfigError(f"{source.path}: field mapping/{field.name}: {e}") from None


class StepError(ConfigError):
    """A field's step that cannot run: `step` is its key in the mapping (normalize, region, ...)."""

    def __init__(self, step: str, message: str) -> None:
        super().__init__(message)
        self.step = step


def check_steps(spec: dict | None, field) -> None:
    """Raise a StepError naming the step of one field's mapping that cannot run (see check_mapping)."""
    if not spec or "value" in spec:
        return
    checks = {"extract": lambda: _extraction(spec["extract"]), "normalize": lambda: normalizer(spec["normalize"]),
              "region": lambda: _check_region(spec, field),
              "date_formats": lambda: parse_dates(pa.array([], pa.string()), spec["date_formats"])}
    for step, check in checks.items():
        if step in spec:
            try:
                check()
            except (ValueError, ConfigError) as e:
                raise StepError(step, str(e)) from None


def _known_fields(source, standard) -> None:
    fields = [f.name for f in standard.fields]
    unknown = sorted(set(source.mapping) - set(fields))
    if unknown:
        hints = [f"{near[0]!r} for {name!r}" for name in unknown if (near := nearest(name, fields))]
        raise ConfigError(f"{source.path}: field mapping: {unknown} are not fields of standard {standard.ref}"
                          + (f"; did you mean {', '.join(hints)}?" if hints else ""))


def columns_used(spec: dict) -> list[tuple[str, str]]:
    """(where in the field's mapping, source column) of each column a field's mapping reads: its `from`, and the
    kecamatan column of a region step."""
    used = [("from", spec["from"])] if isinstance(spec.get("from"), str) else []
    region = spec.get("region")
    if isinstance(region, dict) and isinstance(region.get("kecamatan"), str):
        used.append(("region/kecamatan", region["kecamatan"]))
    return used


def region_scope(spec: dict, field) -> dict:
    """The region step's level, parent region and edition: those the mapping gives, else those of the field's
    code list (a standard's kode wilayah field names them: `x-code-list: {name: kode_wilayah, edition: "2025",
    level: desa_kelurahan, within: "32.71"}`). The edition is the standard's, so codes come out as it wants them."""
    given = spec["region"] if isinstance(spec["region"], dict) else {}
    listed = field.code_list if field.code_list and field.code_list.get("name") == regions.CODE_LIST else {}
    scope = {key: given.get(key, listed.get(key)) for key in ("level", "within", "edition")}
    missing = [key for key in ("level", "within") if not scope[key]]
    if missing:
        raise ConfigError(f"region: {' and '.join(missing)} must be given (the field's code list is not "
                          f"{regions.CODE_LIST} with a level and a parent region to take them from)")
    if listed and given.get("edition") and str(given["edition"]) != str(listed.get("edition")):
        raise ConfigError(f"region: edition {given['edition']!r}, but the standard's field takes codes of "
                          f"{regions.CODE_LIST} {listed.get('edition')}")
    return scope


def _check_region(spec: dict, field) -> None:
    """A region step's scope: a level, parent region and edition that are one (resolving nothing raises if not)."""
    scope = region_scope(spec, field)
    regions.resolve(pa.array([], pa.string()), level=scope["level"], within=str(scope["within"]),
                    edition=scope["edition"])


def harmonize(source, standard, records: pa.Table) -> Harmonized:
    """Apply the source's mapping to one batch. Never drops a row: failures become reason codes."""
    return Harmonizer(source, standard)(records)


# The distinct values of one field a run remembers converted, at most.
MEMO_VALUES = 1_000_000


@dataclass(frozen=True)
class _Converted:
    """Distinct values of a field as read (`texts`), converted (`values`), and which failed each rule."""

    texts: pa.Array
    values: pa.Array
    failed: list[tuple[str, pa.Array]]

    def extended(self, other: _Converted) -> _Converted:
        return _Converted(pa.concat_arrays([self.texts, other.texts]), pa.concat_arrays([self.values, other.values]),
                          [(reason, pa.concat_arrays([mask, more])) for (reason, mask), (_, more)
                           in zip(self.failed, other.failed)])


class Harmonizer:
    """`harmonize` over the batches of one run: every step is a function of the value alone, so each distinct
    value of a field is converted once in the run (a column of dates or codes in its first batches), up to
    MEMO_VALUES values a field. The key's values, new in nearly every record, are converted as they come."""

    def __init__(self, source, standard) -> None:
        _known_fields(source, standard)
        self.source, self.standard = source, standard
        self._memo: dict[str, _Converted] = {}

    def __call__(self, records: pa.Table) -> Harmonized:
        n = records.num_rows
        columns, failures = [], []
        for field in self.standard.fields:
            spec = self.source.mapping.get(field.name)
            if spec:
                values = self._build(field, spec, records, failures, field.name not in self.standard.primary_key)
            else:
                values = pa.nulls(n, arrow_type(field))
            columns.append(values)
        table = pa.Table.from_arrays(columns + [records[ROW]], names=[f.name for f in self.standard.fields] + [ROW])
        reasons: dict[int, list[str]] = {}
        for reason, failed in failures:
            for position in pc.indices_nonzero(pc.fill_null(failed, False)).to_pylist():
                reasons.setdefault(position, []).append(reason)
        return Harmonized(table=table, reasons=reasons)

    def _build(self, field, spec: dict, records: pa.Table, failures: list, repeats: bool) -> pa.Array:
        source = self.source
        if "value" in spec:
            return pa.array([spec["value"]] * records.num_rows).cast(arrow_type(field))
        for key, column in columns_used(spec):
            if column not in records.column_names:
                known = [c for c in records.column_names if c != ROW]
                shown = [shown_name(c) for c in known[:50]]  # the message carries no identifier
                more = f" and {len(known) - 50} more" if len(known) > 50 else ""
                raise ConfigError(f"{source.path}: field mapping/{field.name}/{key}: column {column!r} is not in "
                                  f"the source; columns: {shown}{more}")
        text = records[spec["from"]].combine_chunks()
        region = spec.get("region")
        kecamatan = records[region["kecamatan"]].combine_chunks() if isinstance(region, dict) and \
            region.get("kecamatan") else None
        # Where values repeat (all but the key) each distinct value is converted once: a column of a million
        # rows often holds a few thousand dates or codes. A region named with its kecamatan is a function of the
        # pair: the region step finds each distinct pair once itself.
        if not repeats or kecamatan is not None:
            values, failed = self._convert(field, spec, text, kecamatan)
            failures.extend(failed)
            return values
        encoded = text.dictionary_encode()
        converted = self._converted(field, spec, encoded.dictionary)
        failures.extend((reason, pc.take(mask, encoded.indices)) for reason, mask in converted.failed)
        return pc.take(converted.values, encoded.indices)

    def _converted(self, field, spec: dict, distinct: pa.Array) -> _Converted:
        """`distinct` (a field's distinct values) converted: those met earlier in the run from memory."""
        known = self._memo.get(field.name)
        fresh = distinct if known is None else distinct.filter(pc.is_null(pc.index_in(distinct, value_set=known.texts)))
        if known is None or len(fresh):
            converted = _Converted(fresh, *self._convert(field, spec, fresh))
            known = converted if known is None else known.extended(converted)
        if len(known.texts) <= MEMO_VALUES:
            self._memo[field.name] = known
        else:
            self._memo.pop(field.name, None)
        at = pc.index_in(distinct, value_set=known.texts)
        return _Converted(distinct, pc.take(known.values, at), [(r, pc.take(mask, at)) for r, mask in known.failed])

    def _convert(self, field, spec: dict, text: pa.Array, kecamatan: pa.Array | None = None):
        try:
            return _convert(spec, field, text, kecamatan)
        except (ValueError, ConfigError) as e:
            raise ConfigError(f"{self.source.path}: field mapping/{field.name}: {e}") from None


def _convert(spec: dict, field, text: pa.Array,
             kecamatan: pa.Array | None = None) -> tuple[pa.Array, list[tuple[str, pa.Array]]]:
    """Trim, normalize, crosswalk, find regions, parse dates and cast values; say which failed and why.
    `kecamatan`: per value, the kecamatan that narrows a region step's kelurahan."""
    failed = []
    # Blank cells are absent values, never empty strings.
    text = pc.utf8_trim_whitespace(text)
    text = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
    present = pc.is_valid(text)
    if "extract" in spec:
        parts = pc.extract_regex(text, _extraction(spec["extract"]))
        extracted = pc.utf8_trim_whitespace(pc.struct_field(parts, [0]))
        extracted = pc.if_else(pc.equal(extracted, ""), pa.scalar(None, pa.string()), extracted)
        failed.append((f"{field.name}:extract", pc.and_(pc.is_valid(text), pc.is_null(extracted))))
        text = extracted
    if "normalize" in spec:
        normalized = normalizer(spec["normalize"])(text)
        failed.extend((f"{field.name}:{rule}", mask) for rule, mask in normalized.failures)
        text = normalized.values
    if "crosswalk" in spec:
        table = {str(k).strip().upper(): v for k, v in spec["crosswalk"].items()}
        found = pc.index_in(pc.utf8_upper(text), pa.array(list(table)))
        mapped = pc.take(pa.array(list(table.values()), pa.string()), found)
        failed.append((f"{field.name}:unmapped_code", pc.and_(pc.is_valid(text), pc.is_null(mapped))))
        text = mapped
    if "region" in spec:
        scope = region_scope(spec, field)
        found = regions.resolve(text, level=scope["level"], within=str(scope["within"]), edition=scope["edition"],
                                kecamatan=kecamatan)
        failed.extend((f"{field.name}:{rule}", mask) for rule, mask in found.failures)
        text = found.codes
    if "date_formats" in spec or spec.get("excel_serial"):
        parsed = parse_dates(text, spec.get("date_formats", []), excel_serial=bool(spec.get("excel_serial")))
        failed.append((f"{field.name}:unparseable_date", pc.and_(pc.is_valid(text), pc.is_null(parsed))))
        text = parsed
    typed = _cast(text, field)
    failed.append((f"{field.name}:type", pc.and_(present, pc.and_(pc.is_valid(text), pc.is_null(typed)))))
    return typed, failed


def _extraction(pattern: str) -> str:
    """The regular expression of an `extract` step, its one group named `value` (the part kept)."""
    try:
        compiled = re.compile(pattern)
    except re.error as e:
        raise ValueError(f"extract: {pattern!r} is no regular expression: {e}") from None
    if compiled.groups != 1:
        raise ValueError(f"extract: {pattern!r} must have exactly one group, (...), the part of the value kept; "
                         f"it has {compiled.groups}")
    escaped = in_class = False
    for at, char in enumerate(pattern):  # the group's "(": not escaped, not in a [...] class, not "(?"
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "[":
            in_class = True
        elif char == "]":
            in_class = False
        elif char == "(" and not in_class and not pattern.startswith("(?", at):
            return pattern[:at] + "(?P<value>" + pattern[at + 1:]
    return pattern  # the one group is named already: (?P<name>...)


def _cast(text: pa.Array, field) -> pa.Array:
    """Text to the field's type; text that is not a value of the type becomes null (and a reason)."""
    target = arrow_type(field)
    if target == pa.string():
        return text
    if target == pa.bool_():
        lowered = pc.utf8_lower(text)
        return pc.if_else(pc.is_in(lowered, pa.array(_TRUE)), True,
                          pc.if_else(pc.is_in(lowered, pa.array(_FALSE)), False, pa.scalar(None, pa.bool_())))
    pattern = _INTEGER if target == pa.int64() else _NUMBER
    ok = pc.fill_null(pc.match_substring_regex(text, pattern), False)
    return pc.cast(pc.if_else(ok, text, pa.scalar(None, pa.string())), target)
