"""Excel serial dates: read only when asked for, only in their plausible range, as openpyxl reads them."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl.utils.datetime import from_excel

from transforms.dates import EXCEL_SERIALS, parse_dates

TODAY = dt.date(2025, 6, 1)


def parsed(values: list, formats: list[str] | None = None, excel_serial: bool = True) -> list:
    return parse_dates(pa.array(values, pa.string()), formats or [], today=TODAY,
                       excel_serial=excel_serial).to_pylist()


@pytest.mark.parametrize("text, expected", [
    ("43831", "2020-01-01"),
    ("43831.75", "2020-01-01"),       # a date and time: its date
    ("43831,5", "2020-01-01"),        # an Indonesian-locale export writes the fraction with a comma
    ("43831.999", "2020-01-01"),
    ("32874", "1990-01-01"),
    ("45809", "2025-06-01"),
    ("10000", "1927-05-18"),          # the first serial read
    ("73050", "2099-12-31"),          # the last
])
def test_serials_in_range_are_dates(text, expected):
    assert parsed([text]) == [expected]


@pytest.mark.parametrize("text", [
    "9999", "2014", "1990",           # could be years: below the range
    "60", "59", "1", "0",             # Excel's fictitious 1900-02-29 and the days before it
    "73051", "160814", "19900816",    # past 2099, and dates written without separators
    "-43831", "43831.", ".5", "4.3831", "43.831", "4,3831E+4", "43831 ", "abc", "",
])
def test_other_numbers_are_not_serials(text):
    assert parsed([text]) == [None]


def test_serials_are_read_only_when_asked_for():
    assert parsed(["43831"], excel_serial=False) == [None]
    assert parse_dates(pa.array(["43831"]), ["%d/%m/%Y"]).to_pylist() == [None]


def test_formats_are_tried_first_and_serials_fill_what_they_leave():
    values = ["16/12/2014", "43831", None, "31/02/2014", "16 Desember 2014"]
    assert parsed(values, ["%d/%m/%Y", "%d %B %Y"]) == ["2014-12-16", "2020-01-01", None, None, "2014-12-16"]


def test_a_column_of_serials_only_needs_no_format():
    assert parsed(["43831", "43832", "x"], []) == ["2020-01-01", "2020-01-02", None]


def test_the_two_digit_year_rule_is_unchanged_with_serials():
    assert parsed(["01-01-25", "01-01-26", "45658"], ["%d-%m-%y"]) == ["2025-01-01", "1926-01-01", "2025-01-01"]


@settings(max_examples=500, deadline=None)
@given(st.integers(*EXCEL_SERIALS))
def test_whole_serials_agree_with_openpyxl(serial):
    assert parsed([str(serial)]) == [from_excel(serial).date().isoformat()]


@settings(max_examples=300, deadline=None)
@given(st.integers(*EXCEL_SERIALS), st.integers(0, 98), st.sampled_from([".", ","]))
def test_fractional_serials_give_the_date_openpyxl_gives(serial, hundredths, separator):
    # openpyxl rounds the time to milliseconds, so fractions within a millisecond of midnight are left out.
    value = serial + hundredths / 100
    assert parsed([f"{serial}{separator}{hundredths:02d}"]) == [from_excel(value).date().isoformat()]


def test_the_range_is_the_one_documented():
    assert EXCEL_SERIALS == (10000, 73050)
    assert from_excel(EXCEL_SERIALS[0]).date() == dt.date(1927, 5, 18)
    assert from_excel(EXCEL_SERIALS[1]).date() == dt.date(2099, 12, 31)
