"""Pseudonyms: the SQL form the masked copies use gives the same pseudonym as the Python one, for any text and key."""

from __future__ import annotations

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms.pseudonym import pseudonym, sql_pseudonym

TEXT = st.one_of(st.from_regex(r"\d{16}", fullmatch=True), st.text(max_size=300))
KEYS = st.one_of(st.binary(min_size=1, max_size=200), st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
                 .map(str.encode))


@settings(max_examples=300, deadline=None)
@given(values=st.lists(TEXT, min_size=1, max_size=20), secret=KEYS)
def test_the_sql_pseudonym_is_the_python_pseudonym(values, secret):
    con = duckdb.connect()
    try:
        got = con.execute(f"SELECT {sql_pseudonym('v', secret)} FROM (SELECT unnest($values) AS v, "
                          "generate_subscripts($values, 1) AS i) ORDER BY i", {"values": values}).fetchall()
    finally:
        con.close()
    assert [g for (g,) in got] == [pseudonym(v, secret) for v in values]


def test_null_stays_null_and_a_pseudonym_is_never_a_nik():
    con = duckdb.connect()
    [(none, made)] = con.execute(f"SELECT {sql_pseudonym('NULL::VARCHAR', b'k')}, "
                                 f"{sql_pseudonym(chr(39) + '3271010101900001' + chr(39), b'k')}").fetchall()
    assert none is None and made.startswith("psn_") and len(made) == 17 and not made[4:].isdigit()
