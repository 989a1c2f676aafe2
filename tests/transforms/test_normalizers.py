"""The normalizers: each built-in on the forms agencies write, their properties over generated values, and the
registry (names, options, entry points) as the mapping uses it."""

from __future__ import annotations

import re
from decimal import Decimal
from importlib.metadata import EntryPoint
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.base import ROW
from connectors.registry import Source
from hub.errors import ConfigError
from schemas import load_standard
from transforms import harmonize
from transforms import normalize
from transforms.normalize import Normalized, known_normalizers, normalizer, register_normalizer

PENDUDUK = load_standard("penduduk@1.0.0")


def run(spec, values: list) -> tuple[list, dict[str, list[int]]]:
    """Normalize `values`; returns the values and, per rule, the positions that failed."""
    result = normalizer(spec)(pa.array(values, pa.string()))
    assert len(result.values) == len(values)
    failures = {}
    for rule, mask in result.failures:
        assert mask.null_count == 0 and len(mask) == len(values)
        failures[rule] = [i for i, failed in enumerate(mask.to_pylist()) if failed]
    for positions in failures.values():
        assert all(result.values[i].as_py() is None for i in positions)
    return result.values.to_pylist(), failures


def one(spec, value: str):
    """The normalized value and the rules it failed."""
    values, failures = run(spec, [value])
    return values[0], sorted(rule for rule, positions in failures.items() if positions)


# --- identifier and nik -------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("3271010101900001", "3271010101900001"),
    ("'3271010101900001", "3271010101900001"),
    ("`3271010101900001", "3271010101900001"),
    ("\u20183271010101900001", "3271010101900001"),
    ('="3271010101900001"', "3271010101900001"),
    ('"3271010101900001"', "3271010101900001"),
    ("3271 0101 0190 0001", "3271010101900001"),
    ("3271\u00a00101\u20090190 0001", "3271010101900001"),
    ("3271.0101.0190.0001", "3271010101900001"),
    ("3271-0101\u20130190-0001", "3271010101900001"),
    ("01.234.567.8-901.000", "012345678901000"),
    ("19800101 200501 1 001", "198001012005011001"),
    ("0012", "0012"),
    ("3271\u200b010101900001", "3271010101900001"),
])
def test_identifier_keeps_the_digits(text, expected):
    assert one("identifier", text) == (expected, [])


@pytest.mark.parametrize("text, rule", [
    ("3,27101E+15", "scientific_notation"),
    ("3.271015E+15", "scientific_notation"),
    ("3,27101e15", "scientific_notation"),
    ("9,12E+12", "scientific_notation"),
    ("3271/0101/0190/0001", "identifier_digits"),
    ("3,271,010,101,900,001", "identifier_digits"),
    ("NIK 3271010101900001", "identifier_digits"),
    ("+3271010101900001", "identifier_digits"),
    ("(3271010101900001)", "identifier_digits"),
    ("327101010190000²", "identifier_digits"),  # digits of other kinds and scripts are no ASCII digits
    ("٣٢٧١٠١٠١٠١٩٠٠٠٠١", "identifier_digits"),
    ("３２７１０１０１０１９０００１", "identifier_digits"),
])
def test_identifier_refuses_what_is_not_an_identifier(text, rule):
    assert one("identifier", text) == (None, [rule])


@pytest.mark.parametrize("spec, text, expected, rules", [
    ({"identifier": {"length": 13}}, "9120 0012 3456 7", "9120001234567", []),            # NIB
    ({"identifier": {"length": 13}}, "912000123456", None, ["identifier_length"]),
    ({"identifier": {"length": [15, 16]}}, "01.234.567.8-901.000", "012345678901000", []),  # NPWP, 15 digits
    ({"identifier": {"length": [15, 16]}}, "3271010101900001", "3271010101900001", []),   # NPWP, 16 digits
    ({"identifier": {"length": [15, 16]}}, "01.234.567.8-901.00", None, ["identifier_length"]),
    ({"identifier": {"length": 18}}, "19800101 200501 1 001", "198001012005011001", []),  # NIP
    ({"identifier": {"length": 16}}, "3,27101E+15", None, ["scientific_notation"]),
    ({"identifier": {"length": 16}}, "3271A10101900001", None, ["identifier_digits"]),
])
def test_identifier_length(spec, text, expected, rules):
    assert one(spec, text) == (expected, rules)


def test_identifier_rules_are_per_row_and_blanks_are_not_failures():
    values, failures = run({"identifier": {"length": 16}},
                           ["3271010101900001", "3,27E+15", None, "-", "12345", "12a45", "'3271010101900002"])
    assert values == ["3271010101900001", None, None, None, None, None, "3271010101900002"]
    assert failures == {"scientific_notation": [1], "identifier_digits": [5], "identifier_length": [4]}


def test_identifier_of_clean_values_reports_no_rules():
    assert run({"identifier": {"length": 16}}, ["3271010101900001", None]) == (["3271010101900001", None], {})


def test_nik_is_identifier_clean_up_and_leaves_the_length_to_the_standard():
    values, failures = run("nik", ["3271 0101 0190 0001", "3,27101E+15", "327101010190", "3271/0101"])
    assert values == ["3271010101900001", None, "327101010190", "3271/0101"]
    assert failures == {"scientific_notation": [1]}


SEPARATORS = st.sampled_from([" ", ".", "-", "\u00a0", "\u2013", " - "])


@st.composite
def written_identifiers(draw) -> tuple[str, str]:
    """Digits, and the way someone wrote them: groups with separators, a text prefix or a CSV formula."""
    digits = draw(st.text("0123456789", min_size=1, max_size=20))
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(digits) - 1)), max_size=4)))
    groups = [digits[i:j] for i, j in zip([0, *cuts], [*cuts, len(digits)]) if digits[i:j]]
    written = groups[0] + "".join(draw(SEPARATORS) + g for g in groups[1:])
    wrap = draw(st.sampled_from(["{}", "'{}", "\u2019{}", '="{}"', '"{}"']))
    return digits, wrap.format(written)


@settings(max_examples=300, deadline=None)
@given(written_identifiers())
def test_identifier_recovers_the_digits_however_grouped(pair):
    digits, written = pair
    assert one("identifier", written) == (digits, [])
    assert one({"identifier": {"length": len(digits)}}, written) == (digits, [])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=30), written_identifiers().map(lambda p: p[1])), min_size=1,
                max_size=20))
def test_identifier_outputs_digits_only_and_is_idempotent(values):
    values = [v.strip() or None for v in values]
    once, _ = run("identifier", values)
    assert all(v is None or re.fullmatch("[0-9]+", v) for v in once)
    assert run("identifier", once) == (once, {})


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text("0123456789", min_size=16, max_size=16), min_size=1, max_size=10))
def test_valid_identifiers_stay_as_they_are(values):
    assert run({"identifier": {"length": 16}}, values) == (values, {})
    assert run("nik", values) == (values, {})


# --- money --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("Rp 1.200.000", "1200000"),
    ("Rp1.200.000,00", "1200000"),
    ("Rp. 1.200.000", "1200000"),
    ("RP 1.200.000", "1200000"),
    ("1.200.000,50", "1200000.50"),
    ("1.200.000,5", "1200000.5"),
    ("600.000", "600000"),
    ("1.500", "1500"),
    ("IDR 5.000", "5000"),
    ("idr5000", "5000"),
    ("Rp 5.000,-", "5000"),
    ("Rp 5.000.-", "5000"),
    ("-1.500", "-1500"),
    ("\u22121.500", "-1500"),
    ("-Rp 1.500", "-1500"),
    ("Rp -1.500", "-1500"),
    ("(1.500)", "-1500"),
    ("Rp (1.500)", "-1500"),
    ("(Rp 1.500,50)", "-1500.50"),
    ("+1.500", "1500"),
    ("1200000", "1200000"),
    ("1500000.50", "1500000.50"),
    ("1500000.00", "1500000"),
    ("1.5", "1.5"),
    ("0,50", "0.50"),
    ("0,05", "0.05"),
    ("007", "7"),
    ("-0", "0"),
    ("Rp 0,-", "0"),
    ("1,2 jt", "1200000"),
    ("1,2jt", "1200000"),
    ("1,5 juta", "1500000"),
    ("Rp 1,5 Juta", "1500000"),
    ("1.5 juta", "1500000"),
    ("1,05 jt.", "1050000"),
    ("250 rb", "250000"),
    ("250 ribu", "250000"),
    ("1.500 rb", "1500000"),
    ("2 miliar", "2000000000"),
    ("2,75 milyar", "2750000000"),
    ("Rp\u00a01.000", "1000"),
])
def test_money_in_indonesian_notation(text, expected):
    assert one("money", text) == (expected, [])


@pytest.mark.parametrize("text", [
    "1,200,000", "1,500", "1,200,000.50", "1.200.000.50", "1.200,500", "1500000.000", "1 200 000", "1.20.000",
    "2 M", "250K", "1,5 T", "$ 5.000", "USD 5", "Rp -", "-", "(-1.500)", "(1.500", "1.500)", "--1.500", "-Rp -1.500",
    "1.500-", "satu juta", ",50", "1.", "Rp 5.000 per bulan", "3,27E+6",
])
def test_money_refuses_what_it_would_have_to_guess(text):
    assert one("money", text) == (None, ["money"])


@st.composite
def indonesian_amounts(draw) -> tuple[Decimal, str]:
    """An amount and how an Indonesian form, spreadsheet or letter writes it."""
    whole = draw(st.integers(0, 10**13))
    cents = draw(st.one_of(st.none(), st.integers(0, 99)))
    negative = draw(st.booleans())
    grouped = f"{whole:,}".replace(",", ".") if draw(st.booleans()) else str(whole)
    number = grouped + (f",{cents:02d}" if cents is not None else draw(st.sampled_from(["", ",-", ".-"])))
    currency = draw(st.sampled_from(["", "Rp ", "Rp", "Rp. ", "IDR ", "rp "]))
    style = draw(st.sampled_from(["-{c}{n}", "{c}-{n}", "({c}{n})", "{c}({n})"])) if negative else "{c}{n}"
    amount = Decimal(whole) + (Decimal(cents) / 100 if cents is not None else 0)
    return (-amount if negative else amount), style.format(c=currency, n=number)


@settings(max_examples=500, deadline=None)
@given(indonesian_amounts())
def test_money_reads_back_what_indonesian_notation_wrote(pair):
    amount, written = pair
    value, rules = one("money", written)
    assert rules == [] and Decimal(value) == amount
    assert re.fullmatch(r"-?(0|[1-9][0-9]*)(\.[0-9]{1,2})?", value)
    assert value != "-0" and not value.endswith((".0", ".00"))


@settings(max_examples=300, deadline=None)
@given(units=st.integers(0, 999), decimals=st.one_of(st.none(), st.integers(0, 99)),
       word=st.sampled_from([("rb", 3), ("ribu", 3), ("jt", 6), ("juta", 6), ("miliar", 9), ("milyar", 9)]))
def test_money_scale_words(units, decimals, word):
    text = f"{units},{decimals:02d} {word[0]}" if decimals is not None else f"{units} {word[0]}"
    value, rules = one("money", text)
    assert rules == [] and Decimal(value) == (Decimal(units) + Decimal(decimals or 0) / 100) * 10 ** word[1]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=20), indonesian_amounts().map(lambda p: p[1])), min_size=1, max_size=20))
def test_money_is_idempotent(values):
    values = [v.strip() or None for v in values]
    once, _ = run("money", values)
    assert all(v is None or re.fullmatch(r"-?[0-9]+(\.[0-9]{1,2})?", v) for v in once)
    assert run("money", once) == (once, {})


@pytest.mark.parametrize("text, expected", [
    ("1.200", "1200"), ("12", "12"), ("2,5", "2.5"), ("-3", "-3"), ("1.200.000", "1200000"), ("+5", "5"),
    ("-6,5971", "-6.5971"), ("-6.5971", "-6.5971"), ("0,125", "0.125"), ("1.234,567", "1234.567"), ("106.8", "106.8"),
])
def test_number_in_indonesian_notation(text, expected):
    assert one("number", text) == (expected, [])


@pytest.mark.parametrize("text", ["Rp 1.200", "1,200", "12,500", "2 jt", "12 orang", "-", "1.200.000.50", "1 200"])
def test_number_refuses_currency_scale_words_english_notation_and_text(text):
    assert one("number", text) == (None, ["number"])


def test_number_with_units_reads_the_words_named_after_the_number_only():
    spec = {"number": {"units": ["orang", "jiwa"]}}
    assert run(spec, ["12 orang", "1.200 Orang", "3jiwa", "7", "5 ekor", "orang"]) == (
        ["12", "1200", "3", "7", None, None], {"number": [4, 5]})
    with pytest.raises(ValueError, match="option 'units' must be a word"):
        normalizer({"number": {"units": ["12"]}})


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=12), st.integers(-10**9, 10**9).map(lambda n: f"{n:,}".replace(",", "."))),
                min_size=1, max_size=20))
def test_number_is_idempotent_and_never_makes_a_valid_value_invalid(values):
    values = [v.strip() or None for v in values]
    once, _ = run("number", values)
    assert all(v is None or re.fullmatch(r"-?[0-9]*(\.[0-9]+)?", v) for v in once)
    assert run("number", once) == (once, {})


# --- phone --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("0812-3456-7890", "+6281234567890"),
    ("0812 3456 7890", "+6281234567890"),
    ("0812.3456.7890", "+6281234567890"),
    ("+62 812 3456 7890", "+6281234567890"),
    ("+62-812-3456-7890", "+6281234567890"),
    ("+62 (0)812 3456 7890", "+6281234567890"),
    ("0062 812 3456 7890", "+6281234567890"),
    ("6281234567890", "+6281234567890"),
    ("62 0812 3456 7890", "+6281234567890"),
    ("81234567890", "+6281234567890"),
    ("'081234567890", "+6281234567890"),
    ("0811-123456", "+62811123456"),
    ("0812-3456-78901", "+62812345678901"),
    ("(0251) 8321-075", "+622518321075"),
    ("0251 8321075", "+622518321075"),
    ("+62 251 8321075", "+622518321075"),
    ("(021) 1234 5678", "+622112345678"),
    ("0274 12345", "+6227412345"),
])
def test_phone_numbers_become_e164(text, expected):
    assert one("phone", text) == (expected, [])


@pytest.mark.parametrize("text, rule", [
    ("8321075", "phone"),                  # a Bogor number without its area code
    ("87654321", "phone"),                 # a Jakarta number without its area code, not a mobile
    ("0812 3456 ext 12", "phone"),
    ("0812-3456-7890 / 0813-1111-2222", "phone"),
    ("+1 555 123 4567", "phone"),
    ("0044 20 7946 0958", "phone"),
    ("62251832107", "phone"),              # 62 before a landline: 0622 (Sumatra) without its 0 reads the same
    ("0812-345", "phone"),
    ("0812-3456-7890-12", "phone"),
    ("112", "phone"),
    ("0123 456789", "phone"),
    ("tidak ada", "phone"),
    ("6,28123E+12", "scientific_notation"),
])
def test_phone_refuses_what_cannot_be_an_indonesian_number(text, rule):
    assert one("phone", text) == (None, [rule])


E164 = re.compile(r"\+62[2-9][0-9]{7,11}")


@st.composite
def written_phones(draw) -> tuple[str, str]:
    """A national significant number, and one way people write it."""
    mobile = draw(st.booleans())
    if mobile:
        nsn = "8" + draw(st.text("0123456789", min_size=8, max_size=11))
        forms = ["0{}", "+62 {}", "+62{}", "62{}", "0062 {}", "{}", "'0{}", "+62 (0){}"]
    else:
        nsn = draw(st.sampled_from("2345679")) + draw(st.text("0123456789", min_size=7, max_size=11))
        forms = ["0{}", "+62 {}", "0062{}", "'0{}", "+62 (0){}"]
    cut = draw(st.integers(1, 4))
    head, tail = nsn[:cut], nsn[cut:]
    if not mobile and draw(st.booleans()):
        return "+62" + nsn, f"(0{head}) {tail}"  # (0251) 8321075
    written = draw(st.sampled_from(["{}{}", "{} {}", "{}-{}", "{}.{}"])).format(head, tail)
    return "+62" + nsn, draw(st.sampled_from(forms)).format(written)


@settings(max_examples=500, deadline=None)
@given(written_phones())
def test_phone_reads_every_way_of_writing_a_number(pair):
    expected, written = pair
    assert one("phone", written) == (expected, [])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=20), st.text("0123456789 +-()", max_size=18),
                          written_phones().map(lambda p: p[1])), min_size=1, max_size=20))
def test_phone_outputs_e164_and_is_idempotent(values):
    values = [v.strip() or None for v in values]
    once, _ = run("phone", values)
    assert all(v is None or E164.fullmatch(v) for v in once)
    assert run("phone", once) == (once, {})


# --- names --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case, text, expected", [
    ("upper", "  siti   nurhaliza ", "SITI NURHALIZA"),
    ("upper", "Andi\tD\u2019Angelo", "ANDI D\u2019ANGELO"),
    ("upper", "désirée\u00a0siregar", "DÉSIRÉE SIREGAR"),
    ("as_written", "JOSÉ  RAMOS", "JOSÉ RAMOS"),
    ("as_written", "josé\tramos", "josé ramos"),
    ("as_written", "Ma'ruf   AMIN", "Ma'ruf AMIN"),
    ("title", "muhammad al-fatih", "Muhammad Al-Fatih"),
    ("title", "MUHAMMAD AL-FATIH", "Muhammad Al-Fatih"),
    ("title", "ma'ruf amin", "Ma'ruf Amin"),
    ("title", "MA\u2019RUF AMIN", "Ma\u2019ruf Amin"),
    ("title", "siti nur'aini", "Siti Nur'aini"),
    ("title", "m. yusuf", "M. Yusuf"),
    ("title", "m.yusuf", "M.Yusuf"),
    ("title", "JOSÉ RAMOS", "José Ramos"),
    ("title", "jose\u0301 ramos", "Jose\u0301 Ramos"),
    ("title", "ÉLODIE   d'angelo", "Élodie D'angelo"),
    ("title", "ahmad bin abdullah", "Ahmad Bin Abdullah"),
    ("title", "i gusti ngurah rai", "I Gusti Ngurah Rai"),
])
def test_name_cases(case, text, expected):
    assert one({"name": {"case": case}}, text) == (expected, [])


def test_name_default_is_upper_as_before():
    assert one("name", "  siti   nurhaliza ") == one({"name": {"case": "upper"}}, "siti nurhaliza")


LETTERS = ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
           "àáâãäåçèéêëìíîïñòóôõöùúûüýÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖÙÚÛÜÝ")
NAMES = st.text(LETTERS + " '\u2019-.\t\u00a0\u0301", max_size=40)


@settings(max_examples=300, deadline=None)
@given(st.lists(NAMES, min_size=1, max_size=20), st.sampled_from(["upper", "title", "as_written"]))
def test_name_is_idempotent_and_keeps_every_letter(values, case):
    values = [v.strip() or None for v in values]
    spec = {"name": {"case": case}}
    once, _ = run(spec, values)
    assert run(spec, once) == (once, {})
    for before, after in zip(values, once):
        if before is not None:
            # Only case and spacing change: no accent is removed, no letter added or lost.
            assert after.lower() == " ".join(before.split()).lower()
            if case == "as_written":
                assert after == " ".join(before.split())


@settings(max_examples=300, deadline=None)
@given(st.lists(NAMES, min_size=1, max_size=20))
def test_title_case_is_one_rule_whichever_way_it_is_computed(values):
    values = [" ".join(v.split()) or None for v in values]
    once, _ = run({"name": {"case": "title"}}, values)
    assert once == [v and normalize._title_one(v) for v in values]


# --- kode wilayah, upper, lower -----------------------------------------------------------------------


@pytest.mark.parametrize("spec, text, expected", [
    ("kode_wilayah", "3271011001", "32.71.01.1001"),
    ("kode_wilayah", "32710110 01", "32.71.01.1001"),
    ("kode_wilayah", "32.71.01.1001", "32.71.01.1001"),
    ("kode_wilayah", "327101", "32.71.01"),
    ("upper", "laki-laki", "LAKI-LAKI"),
    ("upper", "josé", "JOSÉ"),
    ("lower", "ISLAM", "islam"),
    ("lower", "JOSÉ", "josé"),
])
def test_codes_and_case(spec, text, expected):
    assert one(spec, text) == (expected, [])


# --- the registry -------------------------------------------------------------------------------------


@pytest.fixture
def restore_normalizers():
    """register_normalizer changes a process-wide dict: put it back as it was after the test."""
    before = dict(normalize._normalizers)
    yield
    normalize._normalizers.clear()
    normalize._normalizers.update(before)
    normalize._cache.clear()


def initials(text: pa.Array, *, separator: str = "", keep: int = 1) -> Normalized:
    """A normalizer as an outside package writes one: first letters of the words, with a rule of its own."""
    values = [None if v is None else separator.join(w[:keep] for w in v.split()) for v in text.to_pylist()]
    empty = pa.array([v == "" for v in values])
    return Normalized(pa.array(values, pa.string()), [("initials_empty", empty)])


def test_builtins_are_known():
    assert {"nik", "identifier", "money", "number", "name", "phone", "kode_wilayah", "upper", "lower"} <= set(
        known_normalizers())


def test_a_registered_normalizer_is_usable_by_name_and_with_options(restore_normalizers):
    register_normalizer("initials", initials, {"separator": str, "keep": range(1, 4)})
    assert "initials" in known_normalizers()
    assert one("initials", "siti nur haliza") == ("snh", [])
    assert one({"initials": {"separator": ".", "keep": 2}}, "siti nur haliza") == ("si.nu.ha", [])
    assert run("initials", ["siti nur", "_"]) == (["sn", "_"], {"initials_empty": []})
    assert run({"initials": {"keep": 2}}, ["siti nur", "\u00a0"]) == (["sinu", None], {"initials_empty": [1]})
    with pytest.raises(ValueError, match=r"normalizer 'initials': option 'keep' must be an integer from 1 to 3"):
        normalizer({"initials": {"keep": 4}})
    with pytest.raises(ValueError, match=r"option 'separator' must be a text, got 1"):
        normalizer({"initials": {"separator": 1}})


def test_a_registered_normalizer_in_a_mapping_gives_reasons_named_by_field(restore_normalizers):
    register_normalizer("initials", initials)
    values, reasons = harmonized("nama", "initials", ["siti nur", "", "budi"])
    assert values == ["sn", None, "b"]
    assert reasons == {}


def test_registration_replaces_and_forgets_the_cached_one(restore_normalizers):
    before = normalizer("upper")
    assert normalizer("upper") is before
    register_normalizer("upper", normalize.lower)
    assert one("upper", "ABC") == ("abc", [])


@pytest.mark.parametrize("spec, message", [
    ("nip", "unknown normalizer 'nip'; known normalizers: .*identifier.*nik"),
    ({"identifier": {"lenght": 13}}, "normalizer 'identifier': unknown option 'lenght'; its options: length"),
    ({"identifier": {"length": 0}}, "normalizer 'identifier': option 'length' must be a number of digits from 1 to 64"),
    ({"identifier": {"length": "13"}}, "option 'length' must be a number of digits"),
    ({"identifier": {"length": True}}, "option 'length' must be a number of digits"),
    ({"identifier": {"length": []}}, "option 'length' must be a number of digits"),
    ({"name": {"case": "lower"}}, "normalizer 'name': option 'case' must be one of 'upper', 'title', 'as_written'"),
    ({"upper": {"case": "title"}}, "normalizer 'upper': unknown option 'case'; its options: none"),
    ({"identifier": 13}, "normalizer 'identifier': options must be a mapping"),
    ({"nik": {}, "name": {}}, "a normalizer is a name or a mapping of one name to its options"),
    (["nik"], "a normalizer is a name or a mapping of one name to its options"),
])
def test_unknown_names_and_options_are_value_errors_naming_them(spec, message):
    with pytest.raises(ValueError, match=message):
        normalizer(spec)


def test_options_may_be_empty():
    assert one({"upper": None}, "a") == one({"upper": {}}, "a") == ("A", [])


def test_a_required_option_must_be_given(restore_normalizers):
    def prefix(text: pa.Array, *, by: str) -> Normalized:
        return Normalized(text)
    register_normalizer("prefix", prefix, {"by": str})
    with pytest.raises(ValueError, match="normalizer 'prefix': option 'by' is required"):
        normalizer("prefix")
    assert one({"prefix": {"by": "x"}}, "a") == ("a", [])


def test_registration_refuses_what_cannot_work(restore_normalizers):
    with pytest.raises(TypeError, match="must be a function"):
        register_normalizer("broken", "not a function")
    with pytest.raises(TypeError, match="arguments \\['by'\\] have no default"):
        register_normalizer("broken", lambda text, *, by: Normalized(text))
    with pytest.raises(TypeError, match="option 'x' must be declared"):
        register_normalizer("broken", lambda text, x=1: Normalized(text), {"x": 3})
    assert "broken" not in known_normalizers()


def test_what_an_outside_normalizer_returns_is_checked(restore_normalizers):
    register_normalizer("short", lambda text: Normalized(text.slice(1)))
    with pytest.raises(ValueError, match="normalizer 'short' returned 1 values for 2"):
        normalizer("short")(pa.array(["a", "b"]))
    # A failed row's value is nulled even if the normalizer left it.
    register_normalizer("keeps", lambda text: Normalized(text, [("bad", pa.array([True, None]))]))
    assert run("keeps", ["a", "b"]) == ([None, "b"], {"bad": [0]})


def test_entry_points_add_normalizers_but_do_not_replace_builtins(restore_normalizers, monkeypatch):
    group = normalize.ENTRY_POINT_GROUP
    found = [EntryPoint("shout", "transforms.normalize:upper", group),
             EntryPoint("nik", "transforms.normalize:lower", group),
             EntryPoint("digits", "transforms.normalize:identifier", group)]
    monkeypatch.setattr(normalize, "entry_points", lambda group: found if group == normalize.ENTRY_POINT_GROUP else [])
    assert {"shout", "digits", "nik"} <= set(known_normalizers())
    assert one("shout", "abc") == ("ABC", [])
    assert one("nik", "3271 0101 0190 0001") == ("3271010101900001", [])
    # An entry point's function declares its options in its attribute `options`; identifier has none.
    with pytest.raises(ValueError, match="normalizer 'digits': unknown option 'length'"):
        normalizer({"digits": {"length": 3}})


# --- through the mapping ------------------------------------------------------------------------------


def harmonized(field: str, spec, values: list) -> tuple[list, dict]:
    source = Source(
        id="dinsos_test", title="DTKS test", description="", agency_code="dinsos", agency_name="Dinas Sosial",
        standard_ref="penduduk@1.0.0", kind="file", schedule=None, options={},
        mapping={field: {"from": "kolom", "normalize": spec}}, path=Path("/registry/dinsos_test.yaml"),
    )
    records = pa.table({"kolom": pa.array(values, pa.string()), ROW: pa.array(range(1, len(values) + 1))})
    result = harmonize(source, PENDUDUK, records)
    return result.table[field].to_pylist(), result.reasons


def test_identifier_in_a_mapping_reports_each_rule_on_its_row():
    values, reasons = harmonized("nik", {"identifier": {"length": 16}},
                                 ["3271 0101 0190 0001", "3,27E+15", "32710101", "3271/0101/0190/0001"])
    assert values == ["3271010101900001", None, None, None]
    assert reasons == {1: ["nik:scientific_notation"], 2: ["nik:identifier_length"], 3: ["nik:identifier_digits"]}


def test_repeated_values_in_a_mapping_fail_on_every_row():
    # Not the key: the mapping normalizes each distinct value once and spreads masks back over the rows.
    values, reasons = harmonized("nama", "phone", ["0812-3456-7890", "abc", "0812 3456 7890", "abc"])
    assert values == ["+6281234567890", None, "+6281234567890", None]
    assert reasons == {1: ["nama:phone"], 3: ["nama:phone"]}


def test_a_wrong_option_in_a_mapping_is_a_config_error_naming_file_and_field():
    with pytest.raises(ConfigError) as info:
        harmonized("nik", {"identifier": {"length": "16"}}, ["3271010101900001"])
    message = str(info.value)
    assert "dinsos_test.yaml" in message and "mapping/nik" in message and "'length'" in message
