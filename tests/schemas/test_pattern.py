"""`pattern` judged over a column gives re.search's verdict on every value, whichever engine judged it."""

import re

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.pattern import search, to_re2

# Pieces of patterns as stewards write them, and the corners where RE2 and Python's re part ways.
_PIECES = [
    "a", "b", "0", ".", r"\.", r"\d", r"\D", r"\w", r"\W", r"\s", r"\S", r"\b", r"\B", "[0-9]", "[^a-c]", "[a-z_]",
    r"[\d\-]", r"[^\s]", "^", "$", r"\A", r"\Z", "(a|bc)", "(?:0|1)", "x{2}", "x{1,3}", "a{,2}", "b+?", "c*", "d?",
    "-", r"\$", r"\^", "[.]", "é", r"\u00e9", r"(a)\1", "(?=a)", "(?i)a",
]
_TEXT = st.text(alphabet=st.sampled_from(list("ab0129 _-.$^xcdé\n\t\x0b\x1c٣\u00a0")), max_size=8)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), min_size=0, max_size=5), st.lists(_TEXT, min_size=1, max_size=20))
def test_search_agrees_with_re(pieces, values):
    pattern = "".join(pieces)
    try:
        compiled = re.compile(pattern)
    except re.error:
        return  # the standard loader refuses a pattern Python cannot compile
    expected = [compiled.search(v) is not None for v in values]
    for column in (pd.Series(values, dtype=pd.StringDtype("pyarrow")), pd.Series(values, dtype=object)):
        assert search(column, pattern).tolist() == expected, (pattern, values)


@pytest.mark.parametrize("pattern,translated", [
    ("^[0-9]{16}$", r"^(?:[\x30-\x39]){16,16}$"),
    (r"^\d{2}\.\d{2}$", r"^(?:[0-9]){2,2}\x2e(?:[0-9]){2,2}$"),
    (r"(a)\1", None),  # a back-reference: RE2 has none
    ("(?i)nik", None),  # flags: left to Python
    ("é", None),  # a non-ASCII literal
])
def test_which_patterns_arrow_runs(pattern, translated):
    assert to_re2(pattern) == translated
