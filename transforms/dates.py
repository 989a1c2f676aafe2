"""Parse dates as Indonesian agencies write them ("16 Desember 2014", "16/12/2014", "16-12-14") into ISO text.

Formats are strptime-like: %d day, %m month number, %B or %b an Indonesian month name or abbreviation (MONTHS),
%Y a four-digit year, %y a two-digit year. English month names and abbreviations are read too (16-Dec-2014, as
a spreadsheet in an English locale writes dates). A format without a day ("%B %Y", "%m/%Y") reads a month, given
as YYYY-MM (a period such as a month of payment). A time of day after the date (16/12/2014 0:00, 2014-12-16
00:00:00) is allowed by every format and dropped: a date field keeps the date. A two-digit year is read as a birth year, the latest year not after
this one: yy is 20yy when yy is at most this year's last two digits, else 19yy (in 2025, 25 is 2025 and 26 is
1926). A date that does not exist (31/02/2014) is not rolled over into the next month: it is not read.

Excel serial dates, when asked for: a date cell that lost its format arrives as the number Excel keeps, days in
its 1900 date system, where serial 1 is 1900-01-01 and 60 is 1900-02-29, a day that never was (Lotus 1-2-3's
leap year bug, kept by Excel); from 61 on, serial s is 1899-12-30 plus s days. Only serials from 10000 to 73050
(1927-05-18 to 2099-12-31) are read: every number below 10000 could be a year or a count (2014 would otherwise
be 1905-07-06), and that range also leaves out serials 1 to 60, where Excel's calendar is wrong, and numbers
such as 160814 or 19900816 that are dates written without separators. A fractional serial (43831.75: a date
and time) gives its date; the decimal separator may be a dot or a comma.
"""

from __future__ import annotations

import datetime as dt
import re

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["EXCEL_SERIALS", "MONTHS", "parse_dates"]

# Full names and the abbreviations seen in agency files, each to its month number.
MONTHS = {
    "januari": 1, "jan": 1, "februari": 2, "pebruari": 2, "feb": 2, "peb": 2, "maret": 3, "mar": 3,
    "april": 4, "apr": 4, "mei": 5, "juni": 6, "jun": 6, "juli": 7, "jul": 7, "agustus": 8, "agu": 8,
    "agt": 8, "ags": 8, "agus": 8, "september": 9, "sep": 9, "sept": 9, "oktober": 10, "okt": 10,
    "november": 11, "nov": 11, "nop": 11, "desember": 12, "des": 12,
    # English, as a spreadsheet in an English locale writes them (16-Dec-2014); none is an Indonesian one's.
    "january": 1, "february": 2, "march": 3, "may": 5, "june": 6, "july": 7, "august": 8, "aug": 8,
    "october": 10, "oct": 10, "december": 12, "dec": 12,
}
# The Excel serials read as dates (see the module's docstring), and the serial of 1970-01-01.
EXCEL_SERIALS = (10000, 73050)
_EXCEL_UNIX_EPOCH = 25569
_EXCEL_SERIAL = r"^(?P<days>[0-9]{1,7})(?:[.,][0-9]+)?$"
# A time of day after the date, as a spreadsheet writes a date cell with its time (16/12/2014 0:00, 2014-12-16
# 00:00:00, 2014-12-16T08:30): a date field keeps the date.
_TIME = r"(?:(?:\s+|t)[0-9]{1,2}[:.][0-9]{2}(?:[:.][0-9]{2}(?:[.,][0-9]+)?)?)?"
_TOKENS = {"%d": r"(?P<d>\d{1,2})", "%m": r"(?P<m>\d{1,2})", "%Y": r"(?P<Y>\d{4})", "%y": r"(?P<y>\d{2})",
           "%B": r"(?P<B>[a-z]+)", "%b": r"(?P<B>[a-z]+)"}


def _format_regex(fmt: str) -> str:
    parts = re.split(r"(%[dmYyBb])", fmt)
    body = "".join(_TOKENS.get(p, re.escape(p).replace(r"\ ", r"\s+")) for p in parts if p)
    if not ("(?P<Y>" in body or "(?P<y>" in body) or not ("(?P<m>" in body or "(?P<B>" in body):
        raise ValueError(f"date format {fmt!r} needs a month (%m or %B) and a year (%Y or %y), and a day (%d) "
                         "unless it is a month's format")
    return "^" + body + _TIME + "$"


def _ints(parts: pa.StructArray, name: str) -> pa.Array:
    # struct_field carries the struct's nulls (no match) into the child, whose own slot is "".
    return pc.cast(pc.struct_field(parts, name), pa.int32())


def _parse_one(text: pa.Array, fmt: str, today: dt.date) -> pa.Array:
    """ISO date text where `text` matches `fmt` and names a real calendar day (or YYYY-MM for a format without a
    day), else null."""
    parts = pc.extract_regex(text, _format_regex(fmt))
    names = {parts.type.field(i).name for i in range(parts.type.num_fields)}
    parts = parts.combine_chunks() if isinstance(parts, pa.ChunkedArray) else parts
    monthly = "d" not in names
    day = pa.array([1] * len(parts), pa.int32()) if monthly else _ints(parts, "d")
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
    if monthly:
        iso = pc.utf8_slice_codeunits(iso, 0, 7)
    return pc.if_else(pc.fill_null(real, False), iso, pa.scalar(None, pa.string()))


def _excel_serial(text: pa.Array) -> pa.Array:
    """ISO date text where `text` is an Excel serial (a whole or fractional number) in EXCEL_SERIALS, else null."""
    days = pc.struct_field(pc.extract_regex(text, _EXCEL_SERIAL), "days")
    serial = pc.cast(pc.if_else(pc.fill_null(pc.equal(days, ""), True), pa.scalar(None, pa.string()), days),
                     pa.int32())
    low, high = EXCEL_SERIALS
    plausible = pc.and_(pc.greater_equal(serial, low), pc.less_equal(serial, high))
    dates = pc.cast(pc.subtract(serial, pa.scalar(_EXCEL_UNIX_EPOCH, pa.int32())), pa.date32())
    return pc.if_else(pc.fill_null(plausible, False), pc.cast(dates, pa.string()), pa.scalar(None, pa.string()))


def parse_dates(text: pa.Array, formats: list[str], today: dt.date | None = None,
                excel_serial: bool = False) -> pa.Array:
    """The first format that gives a real date wins, then (if `excel_serial`) an Excel serial date; text none
    of them reads gives null."""
    today = today or dt.date.today()
    lowered = pc.utf8_lower(text)
    result = pa.nulls(len(text), pa.string())
    for fmt in formats:
        result = pc.coalesce(result, _parse_one(lowered, fmt, today))
    if excel_serial:
        result = pc.coalesce(result, _excel_serial(lowered))
    return result
