"""Parse dates as Indonesian agencies write them ("16 Desember 2014", "16/12/2014", "16-12-14") into ISO text."""

from __future__ import annotations

import datetime as dt
import re

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["MONTHS", "parse_dates"]

# Full names and the abbreviations seen in agency files, each to its month number.
MONTHS = {
    "januari": 1, "jan": 1, "februari": 2, "pebruari": 2, "feb": 2, "peb": 2, "maret": 3, "mar": 3,
    "april": 4, "apr": 4, "mei": 5, "juni": 6, "jun": 6, "juli": 7, "jul": 7, "agustus": 8, "agu": 8,
    "agt": 8, "ags": 8, "agus": 8, "september": 9, "sep": 9, "sept": 9, "oktober": 10, "okt": 10,
    "november": 11, "nov": 11, "nop": 11, "desember": 12, "des": 12,
}
_TOKENS = {"%d": r"(?P<d>\d{1,2})", "%m": r"(?P<m>\d{1,2})", "%Y": r"(?P<Y>\d{4})", "%y": r"(?P<y>\d{2})",
           "%B": r"(?P<B>[a-z]+)", "%b": r"(?P<B>[a-z]+)"}


def _format_regex(fmt: str) -> str:
    parts = re.split(r"(%[dmYyBb])", fmt)
    body = "".join(_TOKENS.get(p, re.escape(p).replace(r"\ ", r"\s+")) for p in parts if p)
    if "(?P<d>" not in body or not ("(?P<Y>" in body or "(?P<y>" in body) or not ("(?P<m>" in body or "(?P<B>" in body):
        raise ValueError(f"date format {fmt!r} needs a day (%d), a month (%m or %B) and a year (%Y or %y)")
    return "^" + body + "$"


def _ints(parts: pa.StructArray, name: str) -> pa.Array:
    # struct_field carries the struct's nulls (no match) into the child, whose own slot is "".
    return pc.cast(pc.struct_field(parts, name), pa.int32())


def _parse_one(text: pa.Array, fmt: str, today: dt.date) -> pa.Array:
    """ISO date text where `text` matches `fmt` and names a real calendar day, else null."""
    parts = pc.extract_regex(text, _format_regex(fmt))
    names = {parts.type.field(i).name for i in range(parts.type.num_fields)}
    parts = parts.combine_chunks() if isinstance(parts, pa.ChunkedArray) else parts
    day = _ints(parts, "d")
    if "B" in names:
        keys = pa.array(list(MONTHS))
        month = pc.take(pa.array(list(MONTHS.values()), pa.int32()), pc.index_in(pc.struct_field(parts, "B"), keys))
    else:
        month = _ints(parts, "m")
    if "Y" in names:
        year = _ints(parts, "Y")
    else:
        # Two-digit years are birth years: the latest year not after this one.
        yy = _ints(parts, "y")
        year = pc.if_else(pc.less_equal(yy, today.year % 100), pc.add(yy, 2000), pc.add(yy, 1900))
    iso = pc.binary_join_element_wise(
        pc.utf8_lpad(pc.cast(year, pa.string()), 4, "0"),
        pc.utf8_lpad(pc.cast(month, pa.string()), 2, "0"),
        pc.utf8_lpad(pc.cast(day, pa.string()), 2, "0"),
        "-",
    )
    parsed = pc.strptime(iso, format="%Y-%m-%d", unit="s", error_is_null=True)
    # Arrow rolls 31 February over into March: keep only dates whose day and month survive parsing.
    real = pc.and_(pc.equal(pc.day(parsed), day), pc.equal(pc.month(parsed), month))
    return pc.if_else(pc.fill_null(real, False), iso, pa.scalar(None, pa.string()))


def parse_dates(text: pa.Array, formats: list[str], today: dt.date | None = None) -> pa.Array:
    """The first format that gives a real date wins; text no format reads gives null."""
    today = today or dt.date.today()
    lowered = pc.utf8_lower(text)
    result = pa.nulls(len(text), pa.string())
    for fmt in formats:
        result = pc.coalesce(result, _parse_one(lowered, fmt, today))
    return result
