"""Normalizers: values agencies write in many ways (identifiers, names, money, phone numbers, kode wilayah)
made into one form before the mapping crosswalks, parses or casts them.

A normalizer is a function `fn(text, **options) -> Normalized` over a pyarrow string array of distinct values,
already trimmed, blanks null. It runs on whole arrays (the mapping calls it once per batch and column), and it
never drops a value: what it cannot recover becomes null in `values` and true in a failure mask named by a rule,
which the mapping turns into the row's reason code `field:rule`. docs/normalizers.md is the reference of the
built-ins; outside packages add theirs through the entry point group `interop_hub.normalizers`.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["ENTRY_POINT_GROUP", "Normalized", "known_normalizers", "normalizer", "register_normalizer"]

ENTRY_POINT_GROUP = "interop_hub.normalizers"
_NULL_TEXT = pa.scalar(None, pa.string())


@dataclass
class Normalized:
    """A normalized column, and per rule the rows whose value could not be recovered.

    Each mask is a boolean array as long as `values`; a row true in a mask has a null value (the original is
    kept by the quarantine, not here). The caller prefixes each rule with its field: `nik:scientific_notation`.
    """

    values: pa.Array
    failures: list[tuple[str, pa.Array]] = field(default_factory=list)


# --- the registry ------------------------------------------------------------------------------------

# Option name -> what it may be: a type (the value must be one; a bool is not an int), a tuple, list or range
# of the allowed values, or a function that returns the value to use or raises ValueError saying what is allowed.
Options = Mapping[str, object]


@dataclass(frozen=True)
class _Entry:
    fn: Callable[..., Normalized]
    options: dict
    required: frozenset


_normalizers: dict[str, _Entry] = {}
_cache: dict[str, Callable[[pa.Array], Normalized]] = {}


def register_normalizer(name: str, fn: Callable[..., Normalized], options: Options | None = None) -> None:
    """Make `fn` usable as `normalize: NAME` (or `{NAME: {option: value}}`), replacing one of that name.

    `options` declares the keyword arguments a mapping may give; keyword arguments of `fn` without a default
    are options a mapping must give.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"a normalizer's name must be a non-empty string, got {name!r}")
    if not callable(fn):
        raise TypeError(f"normalizer {name!r} must be a function, got {fn!r}")
    options = dict(options or {})
    for option, allowed in options.items():
        if not (isinstance(allowed, (type, tuple, list, range, frozenset)) or callable(allowed)):
            raise TypeError(f"normalizer {name!r}: option {option!r} must be declared by a type, the allowed "
                            f"values or a check function, got {allowed!r}")
    try:
        parameters = list(inspect.signature(fn).parameters.values())[1:]
    except (TypeError, ValueError):  # a function whose signature Python cannot read: every option is optional
        parameters = []
    required = frozenset(p.name for p in parameters if p.default is inspect.Parameter.empty
                         and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD))
    undeclared = sorted(required - options.keys())
    if undeclared:
        raise TypeError(f"normalizer {name!r}: arguments {undeclared} have no default and are not declared options")
    _normalizers[name] = _Entry(fn, options, required)
    _cache.clear()


def _entry_points() -> dict:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def known_normalizers() -> list[str]:
    return sorted(_normalizers.keys() | _entry_points().keys())


def _entry(name: str) -> _Entry:
    """A registered normalizer (built-ins are registered at import and keep their names over entry points); an
    entry point names the function, whose attribute `options` (if any) declares its options."""
    if name not in _normalizers:
        found = _entry_points().get(name)
        if found is None:
            raise ValueError(f"unknown normalizer {name!r}; known normalizers: {', '.join(known_normalizers())}")
        fn = found.load()
        register_normalizer(name, fn, getattr(fn, "options", None))
    return _normalizers[name]


def _describe(allowed) -> str:
    if isinstance(allowed, type):
        return {int: "an integer", str: "a text", bool: "true or false", float: "a number"}.get(
            allowed, f"a {allowed.__name__}")
    if isinstance(allowed, range):
        return f"an integer from {allowed[0]} to {allowed[-1]}"
    return "one of " + ", ".join(repr(a) for a in allowed)


def _check_option(name: str, option: str, allowed, value):
    if isinstance(allowed, type):
        ok = isinstance(value, allowed) and not (isinstance(value, bool) and allowed is not bool)
        if allowed is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif isinstance(allowed, (tuple, list, range, frozenset)):
        ok = any(type(value) is type(a) and value == a for a in allowed)
    else:
        try:
            return allowed(value)
        except (TypeError, ValueError) as e:
            raise ValueError(f"normalizer {name!r}: option {option!r} must be {e}, got {value!r}") from None
    if not ok:
        raise ValueError(f"normalizer {name!r}: option {option!r} must be {_describe(allowed)}, got {value!r}")
    return value


def _parse_spec(spec) -> tuple[str, dict]:
    if isinstance(spec, str):
        return spec, {}
    if isinstance(spec, Mapping) and len(spec) == 1:
        [(name, options)] = spec.items()
        if options is None:
            options = {}
        if not isinstance(name, str):
            raise ValueError(f"a normalizer's name is a text, got {name!r}")
        if not isinstance(options, Mapping):
            raise ValueError(f"normalizer {name!r}: options must be a mapping of option to value, got {options!r}")
        return name, dict(options)
    raise ValueError(f"a normalizer is a name or a mapping of one name to its options, got {spec!r}")


def normalizer(spec) -> Callable[[pa.Array], Normalized]:
    """The normalizer `spec` names, with its options: "nik" or {"identifier": {"length": 13}}.

    A ValueError names the normalizer and the option and says what is allowed; the caller adds the file and the
    field. Specs are checked once and cached, so calling this for every batch costs a dictionary lookup.
    """
    try:
        key = json.dumps(spec, sort_keys=True)
    except (TypeError, ValueError):
        key = None
    if key is not None and key in _cache:
        return _cache[key]
    name, given = _parse_spec(spec)
    entry = _entry(name)
    options = {}
    for option, value in given.items():
        if option not in entry.options:
            allowed = ", ".join(sorted(entry.options)) or "none"
            raise ValueError(f"normalizer {name!r}: unknown option {option!r}; its options: {allowed}")
        options[option] = _check_option(name, option, entry.options[option], value)
    missing = sorted(entry.required - options.keys())
    if missing:
        raise ValueError(f"normalizer {name!r}: option {missing[0]!r} is required; its options: "
                         f"{', '.join(sorted(entry.options))}")

    def run(text: pa.Array) -> Normalized:
        if isinstance(text, pa.ChunkedArray):
            text = text.combine_chunks()
        result = entry.fn(text, **options)
        return _checked(name, text, result)

    if key is not None:
        _cache[key] = run
    return run


def _checked(name: str, text: pa.Array, result) -> Normalized:
    """An outside normalizer's result in the shape the mapping relies on: as many values as it was given,
    boolean masks without nulls, and null values where a mask is true."""
    if not isinstance(result, Normalized):
        raise ValueError(f"normalizer {name!r} returned {type(result).__name__}, not Normalized")
    values = result.values
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if len(values) != len(text):
        raise ValueError(f"normalizer {name!r} returned {len(values)} values for {len(text)}")
    failures = []
    for rule, mask in result.failures:
        if isinstance(mask, pa.ChunkedArray):
            mask = mask.combine_chunks()
        if len(mask) != len(text) or mask.type != pa.bool_():
            raise ValueError(f"normalizer {name!r}: the mask of rule {rule!r} is not {len(text)} booleans")
        mask = pc.fill_null(mask, False)
        values = pc.if_else(mask, pa.scalar(None, values.type), values)
        failures.append((rule, mask))
    return Normalized(values, failures)


# --- shared pieces ------------------------------------------------------------------------------------

# What a spreadsheet makes of a long number: 3,27101E+15 or 3.271015E+15. The digits are gone.
_SCIENTIFIC = r"^\+?[0-9]+([.,][0-9]*)?[eE][+-]?[0-9]+$"
# A spreadsheet's text prefix ('3271..., or a typographic quote an editor put in its place) and the ="3271..."
# formula a CSV export writes so that a spreadsheet keeps the leading zeros.
_TEXT_PREFIX = "^['`\u2018\u2019]+"
_WRAPPED = '^=?["\u201c\u201d](.*)["\u201c\u201d]$'
# Invisible characters that come along when a value is copied from a web page or a PDF.
_INVISIBLE = "\\x{200B}\\x{200C}\\x{200D}\\x{2060}\\x{FEFF}"


def _unwrap(text: pa.Array) -> pa.Array:
    return pc.replace_substring_regex(pc.replace_substring_regex(text, _WRAPPED, r"\1"), _TEXT_PREFIX, "")


def _false(n: int) -> pa.Array:
    return pa.repeat(pa.scalar(False), n)


def _spread(mask: pa.Array, subset_values: pa.Array, n: int) -> pa.Array:
    """Booleans of a filtered subset put back at their rows of the whole array (false elsewhere)."""
    return pc.replace_with_mask(_false(n), mask, pc.fill_null(subset_values, False))


def _failing(values: pa.Array, rules: list[tuple[str, pa.Array]]) -> Normalized:
    """Null the values of failed rows; keep only the rules some row failed."""
    failures = []
    for rule, mask in rules:
        mask = pc.fill_null(mask, False)
        if pc.any(mask).as_py():
            values = pc.if_else(mask, _NULL_TEXT, values)
            failures.append((rule, mask))
    return Normalized(values, failures)


# --- identifiers --------------------------------------------------------------------------------------

# Whitespace (also non-breaking and other Unicode spaces), dots, and dashes (ASCII and Unicode): the separators
# people put between the digit groups of a NIK (3271.0101.0190.0001), an NPWP (01.234.567.8-901.000) or a NIP
# (19800101 200501 1 001).
_ID_SEPARATORS = f"[\\s\\pZ\\p{{Pd}}.{_INVISIBLE}]"


def _digits(text: pa.Array) -> pa.Array:
    # ASCII digits, at least one: utf8_is_digit takes ² and other scripts' digits too. (A byte of a character
    # beyond ASCII is no ASCII digit; a tenth of the time of the regular expression ^[0-9]+$.)
    return pc.ascii_is_decimal(text)


def _identifier(text: pa.Array, lengths: tuple[int, ...] | None, check: bool) -> Normalized:
    digits = _digits(text)
    if lengths is not None:
        digits = pc.and_(digits, pc.is_in(pc.utf8_length(text), pa.array(lengths, pa.int32())))
    # Most identifiers arrive clean; the regular expressions run only on the others.
    messy = pc.invert(pc.fill_null(digits, True))
    if not pc.any(messy).as_py():
        return Normalized(text)
    n = len(text)
    subset = _unwrap(text.filter(messy))
    scientific = pc.fill_null(pc.match_substring_regex(subset, _SCIENTIFIC), False)
    cleaned = pc.replace_substring_regex(subset, _ID_SEPARATORS, "")
    # Nothing left ("-", "'"): a placeholder for no value, read as a blank cell.
    cleaned = pc.if_else(pc.equal(cleaned, ""), _NULL_TEXT, cleaned)
    rules = [("scientific_notation", _spread(messy, scientific, n))]
    if check:
        not_digits = pc.and_(pc.invert(scientific), pc.invert(_digits(cleaned)))
        rules.append(("identifier_digits", _spread(messy, not_digits, n)))
        if lengths is not None:
            wrong = pc.and_(_digits(cleaned),
                            pc.invert(pc.is_in(pc.utf8_length(cleaned), pa.array(lengths, pa.int32()))))
            rules.append(("identifier_length", _spread(messy, wrong, n)))
    return _failing(pc.replace_with_mask(text, messy, cleaned), rules)


def _lengths(value) -> tuple[int, ...]:
    """`length`: one length or a list of the allowed ones (an NPWP has 15 or 16 digits)."""
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 64 for v in values):
        raise ValueError("a number of digits from 1 to 64, or a list of them")
    return tuple(sorted(set(values)))


def identifier(text: pa.Array, length: int | tuple[int, ...] | None = None) -> Normalized:
    """A number that identifies (NIK, NIB, NPWP, NIP, NPSN, ...) as text of digits only.

    Removed: a spreadsheet's text prefix at the start (' ` ‘ ’), the ="…" wrapper of a CSV export and quotes
    around the value, and anywhere whitespace (Unicode spaces too), invisible characters, dots and dashes: the
    separators written between digit groups. Not removed: slashes, commas, plus signs, parentheses or letters,
    which do not group an identifier's digits but join two values or mark a number format; such a value fails.
    Leading zeros are kept. A value with nothing left after this ("-") is a blank.

        '3271010101900001        -> 3271010101900001
        3271.0101.0190.0001      -> 3271010101900001
        01.234.567.8-901.000     -> 012345678901000
        ="0012345"               -> 0012345
        3,27101E+15              -> (null) scientific_notation: the spreadsheet kept 6 of the 16 digits
        3271/0101                -> (null) identifier_digits
        327101010190 with length 16 -> (null) identifier_length

    Option `length`: the number of digits, or a list of them (`[15, 16]` for NPWP); without it any length goes.
    """
    return _identifier(text, (length,) if isinstance(length, int) else length, check=True)


def nik(text: pa.Array) -> Normalized:
    """A NIK: the clean-up of `identifier` (16 digits), refusing only scientific notation (rule
    scientific_notation). A NIK that is not 16 digits after clean-up is left as it is for the standard's own
    pattern check, which reports it as `nik:pattern`, as quality reports always have.

        3271 0101 0190 0001 -> 3271010101900001
        3,27101E+15         -> (null) scientific_notation
    """
    return _identifier(text, (16,), check=False)


# --- names --------------------------------------------------------------------------------------------

_SPACES = r"[\s\pZ]+"
# Text that Arrow's own title case gets right: cased letters, spaces, dots and hyphens only. Anything else (an
# apostrophe, a combining accent, a digit) goes through _title_one, whose words start only after a space, a
# hyphen, a dot, a parenthesis or a slash.
_TITLE_FAST = r"^[\p{Lu}\p{Ll}\p{Lt} .\-]*$"
_WORD_START = re.compile(r"(?:^|(?<=[\s\-.(/]))\w")


def _title_one(value: str) -> str:
    return _WORD_START.sub(lambda m: m[0].title(), value.lower())


def name(text: pa.Array, case: str = "upper") -> Normalized:
    """A person's name with runs of whitespace (tabs, non-breaking spaces) as one space, in the case asked.

    `case: upper` (the default) as names are written on identity documents; `as_written` keeps the letters
    as they came; `title` starts each word with a capital and lowers the rest, where a word starts after a space,
    a hyphen, a dot, a parenthesis or a slash but not after an apostrophe, as Indonesian names of Arabic origin
    are written. Accents are never removed. Particles (bin, binti, al) are capitalized like any word.

        "  siti   nurhaliza "   -> SITI NURHALIZA           (upper)
        JOSÉ  RAMOS             -> JOSÉ RAMOS               (as_written)
        muhammad al-fatih       -> Muhammad Al-Fatih        (title)
        MA'RUF AMIN             -> Ma'ruf Amin              (title)
        m.yusuf                 -> M.Yusuf                  (title)
        désirée siregar         -> Désirée Siregar          (title)
    """
    text = pc.utf8_trim_whitespace(pc.replace_substring_regex(text, _SPACES, " "))
    if case == "upper":
        return Normalized(pc.utf8_upper(text))
    if case == "as_written":
        return Normalized(text)
    titled = pc.utf8_title(text)
    slow = pc.invert(pc.fill_null(pc.match_substring_regex(text, _TITLE_FAST), True))
    if pc.any(slow).as_py():
        fixed = pa.array([_title_one(v) for v in text.filter(slow).to_pylist()], pa.string())
        titled = pc.replace_with_mask(titled, slow, fixed)
    return Normalized(titled)


# --- money --------------------------------------------------------------------------------------------

# The amount as Indonesians write it, lower-cased: sign, currency, parentheses, the number (dots between groups
# of three, a decimal comma; or a machine's decimal point), a scale word and the ",-" of a round amount.
_MONEY = (
    r"^(?P<open>\()?\s*(?P<sign>[-+])?\s*(?:(?:rp\.?|idr)\s*)?(?P<open2>\()?\s*(?P<sign2>[-+])?\s*"
    r"(?P<int>[0-9]{1,3}(?:\.[0-9]{3})+|[0-9]+)(?:(?P<sep>[.,])(?P<frac>[0-9]{1,2}))?\s*"
    r"(?P<scale>ribu|rb\.?|juta|jt\.?|miliar|milyar)?\s*(?:[.,]-)?\s*(?P<close>\))?$"
)
_SCALES = {"ribu": 3, "rb": 3, "rb.": 3, "juta": 6, "jt": 6, "jt.": 6, "miliar": 9, "milyar": 9}


def money(text: pa.Array) -> Normalized:
    """An amount of rupiah in Indonesian notation as a plain decimal the cast reads: digits, an optional leading
    minus, and a decimal point followed by one or two digits when there are sen.

    Read: an optional `Rp`, `Rp.` or `IDR` before the number (any case); dots between groups of three digits
    (thousands); a decimal comma with one or two digits (sen); a trailing `,-` or `.-` (a round amount); a
    minus or plus before or after the currency, or parentheses around the amount (an accountant's negative);
    the words `ribu`/`rb` (10^3), `juta`/`jt` (10^6) and `miliar`/`milyar` (10^9), each with one meaning only.
    Zero sen are dropped, so an integer field takes `Rp1.200.000,00`; leading zeros are dropped.

    The dot decides as follows, and anything else is refused (rule money), never guessed:
    - dots followed by groups of exactly three digits, the first group of one to three, are thousands:
      600.000 is 600000 (in Indonesian notation a thousands dot is always followed by three digits);
    - one dot followed by one or two final digits is a decimal point, as database exports write amounts
      (1500000.50) and as this normalizer writes them: 1.5 is 1.5, not 15;
    - a dot as a thousands separator and a decimal point in one amount (1.200.000.50) is refused.
    Refused too: commas between groups of three (1,200,000 or 1,500): English notation, whose 1.500 means 1.5
    and would be read here as 1500, so the file's notation must be noticed rather than half read; more than two
    decimals; scale words that mean different amounts in English and Indonesian (M, K, T, B); spaces between
    digits; a lone "-" (nil or zero?); other currencies; text.

        Rp 1.200.000     -> 1200000         1.200.000,50  -> 1200000.50     Rp 5.000,-   -> 5000
        Rp1.200.000,00   -> 1200000         1500000.50    -> 1500000.50     IDR 5.000    -> 5000
        600.000          -> 600000          -1.500        -> -1500          (1.500)      -> -1500
        1,2 jt           -> 1200000         1,5 juta      -> 1500000        250 rb       -> 250000
        1,200,000        -> (null) money    1,500         -> (null) money   2 M          -> (null) money
    """
    lowered = pc.replace_substring_regex(pc.replace_substring(pc.utf8_lower(text), "\u2212", "-"), r"\pZ", " ")
    parts = pc.extract_regex(lowered, _MONEY)
    matched = pc.is_valid(parts)

    def part(group: str) -> pa.Array:
        return pc.fill_null(pc.struct_field(parts, group), "")

    opened = pc.add(pc.cast(pc.not_equal(part("open"), ""), pa.int8()),
                    pc.cast(pc.not_equal(part("open2"), ""), pa.int8()))
    closed = pc.not_equal(part("close"), "")
    paren = pc.equal(opened, 1)
    two_signs = pc.and_(pc.not_equal(part("sign"), ""), pc.not_equal(part("sign2"), ""))
    signed = pc.or_(pc.not_equal(part("sign"), ""), pc.not_equal(part("sign2"), ""))
    integer = part("int")
    refused = pc.or_(pc.invert(matched), pc.or_(
        pc.or_(pc.greater(opened, 1), pc.not_equal(pc.greater(opened, 0), closed)),
        pc.or_(two_signs, pc.and_(paren, signed))))
    # 1.200.000.50: the dot cannot be both.
    refused = pc.or_(refused, pc.and_(pc.equal(part("sep"), "."), pc.match_substring(integer, ".")))
    digits = pc.replace_substring(integer, ".", "")
    fraction = part("frac")
    scale = part("scale")
    for word, power in _SCALES.items():
        here = pc.equal(scale, word)
        digits = pc.if_else(here, pc.binary_join_element_wise(digits, pc.utf8_rpad(fraction, power, "0"), ""),
                            digits)
        fraction = pc.if_else(here, "", fraction)
    digits = pc.replace_substring_regex(digits, "^0+([0-9])", r"\1")
    fraction = pc.replace_substring_regex(fraction, "^0+$", "")
    zero = pc.and_(pc.equal(digits, "0"), pc.equal(fraction, ""))
    negative = pc.and_(pc.or_(paren, pc.or_(pc.equal(part("sign"), "-"), pc.equal(part("sign2"), "-"))),
                       pc.invert(zero))
    amount = pc.binary_join_element_wise(
        pc.if_else(negative, "-", ""), digits,
        pc.if_else(pc.equal(fraction, ""), "", pc.binary_join_element_wise(".", fraction, "")), "")
    refused = pc.and_(pc.is_valid(text), refused)
    return _failing(pc.if_else(pc.is_valid(text), amount, _NULL_TEXT), [("money", refused)])


# An Indonesian number: thousands dots (groups of three after a first group of one to three digits, which does
# not start with 0) and a decimal comma; or a decimal point that cannot be a thousands dot.
_INDONESIAN = r"^[-+]?([1-9][0-9]{0,2}(\.[0-9]{3})+|[0-9]+)(,[0-9]+)?$"
_ENGLISH_OR_INDONESIAN = r"^[-+]?[1-9][0-9]{0,2},[0-9]{3}$"  # 1,500: a thousand and a half, or fifteen hundred?
_DECIMAL_POINT = r"^[-+]?[0-9]*\.[0-9]+$"
_THOUSANDS = r"^[-+]?[1-9][0-9]{0,2}(\.[0-9]{3})+$"


def _units(value) -> tuple[str, ...]:
    """`units`: a word or a list of the words a number may be followed by (orang, jiwa, unit, ha)."""
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, str) and re.fullmatch(r"[^\W\d_][\w.%²/-]*", v) for v in values):
        raise ValueError("a word, or a list of words, such as orang or [orang, jiwa]")
    return tuple(sorted({v.casefold() for v in values}, key=len, reverse=True))


def number(text: pa.Array, units: tuple[str, ...] = ()) -> Normalized:
    """A count or a measure in Indonesian notation as the plain decimal text the cast reads.

    Read: dots between groups of three digits, the first group one to three digits not starting with 0, are
    thousands (1.200 is 1200); a comma is the decimal separator, with any number of decimals (-6,5971); a single
    dot that is not a thousands dot is a decimal point (-6.5971, 2.5, 0.125), as database exports write numbers
    and as this normalizer writes them. Refused (rule number), never guessed: a comma after one to three digits
    followed by exactly three (1,500 is 1.5 in Indonesian and 1500 in English notation; 0,125 is read), currency,
    units and words (Rp 1.200, 12 orang, 2 jt: amounts are `money`'s), spaces inside the number, a lone "-". With
    the option `units`, the words named may follow the number, in any case (12 orang, 12 Orang with units: orang).

        1.200     -> 1200         1.234,5    -> 1234.5      -6,5971   -> -6.5971     2.5   -> 2.5
        1,500     -> (null)       Rp 1.200   -> (null)      12 orang  -> (null)      -     -> (null)
    """
    given = text
    if units:
        words = "|".join(re.escape(u) for u in units)
        text = pc.replace_substring_regex(text, rf"(?i)\s*(?:{words})$", "")
    indonesian = pc.and_(pc.fill_null(pc.match_substring_regex(text, _INDONESIAN), False),
                         pc.invert(pc.fill_null(pc.match_substring_regex(text, _ENGLISH_OR_INDONESIAN), False)))
    point = pc.and_(pc.fill_null(pc.match_substring_regex(text, _DECIMAL_POINT), False),
                    pc.invert(pc.fill_null(pc.match_substring_regex(text, _THOUSANDS), False)))
    plain = pc.replace_substring(pc.replace_substring(text, ".", ""), ",", ".")
    values = pc.if_else(indonesian, plain, pc.if_else(point, text, _NULL_TEXT))
    values = pc.replace_substring_regex(values, r"^\+", "")
    return _failing(values, [("number", pc.and_(pc.is_valid(given), pc.is_null(values)))])


# --- phone numbers ------------------------------------------------------------------------------------

_PHONE_SEPARATORS = f"[\\s\\pZ\\p{{Pd}}.(){_INVISIBLE}]"
# The national significant number (without country code or trunk 0): 8 to 12 digits, the first 2-9; a mobile
# number (8...) has at least 9. The shortest are 3-digit area codes with 5-digit subscribers (0xxx-xxxxx), the
# longest 12-digit mobile numbers (0812-3456-78901); 1 starts only short service numbers (112, 110).
_NSN = r"^(8[0-9]{8,11}|[2-79][0-9]{7,11})$"


def phone(text: pa.Array) -> Normalized:
    """An Indonesian telephone number in E.164 form: +62 followed by 8 to 12 digits, the first 2-9.

    Removed first: a spreadsheet's text prefix, and whitespace, dots, dashes and parentheses anywhere. Then the
    digits are read as: +62 or 0062 and the number (a 0 written after the country code, as in +62 (0)251, is
    dropped); 0 and the number (the trunk prefix); 62 and a mobile number (8...), as messaging apps write them;
    8 and at least 8 more digits, a mobile number whose leading 0 a number-formatted cell dropped. Refused (rule
    phone): other country codes, 62 before anything but a mobile number (062x is also a Sumatran area code whose
    0 a spreadsheet may have dropped), numbers without their area code, letters (extensions), two numbers in one
    cell, and lengths outside the bounds. Scientific notation is refused as scientific_notation.

        0812-3456-7890     -> +6281234567890
        +62 812 3456 7890  -> +6281234567890
        6281234567890      -> +6281234567890
        81234567890        -> +6281234567890
        (0251) 8321-075    -> +622518321075
        +62 (0)251 8321075 -> +622518321075
        8321075            -> (null) phone: a Bogor number without its area code
        0812 3456 ext 12   -> (null) phone
    """
    unwrapped = _unwrap(text)
    scientific = pc.fill_null(pc.match_substring_regex(unwrapped, _SCIENTIFIC), False)
    compact = pc.replace_substring_regex(unwrapped, _PHONE_SEPARATORS, "")
    national = pc.replace_substring_regex(compact, r"^(?:\+62|0062)0?([0-9]+)$", r"0\1")
    national = pc.replace_substring_regex(national, r"^620?(8[0-9]+)$", r"0\1")
    national = pc.replace_substring_regex(national, r"^(8[0-9]{8,})$", r"0\1")
    nsn = pc.utf8_slice_codeunits(national, 1)
    ok = pc.and_(pc.starts_with(national, "0"), pc.match_substring_regex(nsn, _NSN))
    e164 = pc.binary_join_element_wise("+62", nsn, "")
    present = pc.is_valid(text)
    refused = pc.and_(present, pc.and_(pc.invert(scientific), pc.invert(pc.fill_null(ok, False))))
    return _failing(e164, [("scientific_notation", scientific), ("phone", refused)])


# --- codes and case -----------------------------------------------------------------------------------


def kode_wilayah(text: pa.Array) -> Normalized:
    """Dotted Kemendagri codes from the undotted forms (spaces and dots removed, then dotted 2.2.2.4).

        3271011001   -> 32.71.01.1001
        32710110 01  -> 32.71.01.1001
        327101       -> 32.71.01
    """
    compact = pc.replace_substring_regex(text, r"[\s.]", "")
    dotted = pc.replace_substring_regex(
        compact, r"^(\d{2})(\d{2})?(\d{2})?(\d{4})?$", r"\1.\2.\3.\4"
    )
    return Normalized(pc.replace_substring_regex(dotted, r"\.+$", ""))


def upper(text: pa.Array) -> Normalized:
    """Upper case (accents kept): laki-laki -> LAKI-LAKI."""
    return Normalized(pc.utf8_upper(text))


def lower(text: pa.Array) -> Normalized:
    """Lower case (accents kept): ISLAM -> islam."""
    return Normalized(pc.utf8_lower(text))


register_normalizer("nik", nik)
register_normalizer("identifier", identifier, {"length": _lengths})
register_normalizer("name", name, {"case": ("upper", "title", "as_written")})
register_normalizer("money", money)
register_normalizer("number", number, {"units": _units})
register_normalizer("phone", phone)
register_normalizer("kode_wilayah", kode_wilayah)
register_normalizer("upper", upper)
register_normalizer("lower", lower)
