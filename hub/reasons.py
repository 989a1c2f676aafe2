"""Reason codes (`field:rule`) as sentences an agency can act on, in Indonesian and English.

A quarantined row carries stable reason codes; `explain` says in words which rule the row failed and what the
standard, the code list and the source's registration expect instead: the pattern in words, the code list and
its edition, the date formats tried, the lengths and bounds, the columns expected and found. A sentence describes
the rule, never the row: it is built from the standard, the code lists, the registration and the details of the
reason (numbers only: counts of columns, other row numbers), so it may be shown to anyone who may see the codes.

Where each rule comes from (the test of this module enumerates them, so a rule without a sentence fails):
- the mapping (transforms.mapping): `extract`, `unmapped_code`, `unparseable_date`, `type`;
- the normalizers (transforms.normalize): `scientific_notation`, `identifier_digits`, `identifier_length`,
  `money`, `phone`;
- region names (transforms.regions.RULES): `region_unknown`, `region_ambiguous`, `region_not_in_kecamatan`;
- the standard's suite (schemas.suite): `required`, `type`, `const`, `enum`, `code_list`, `pattern`, `format`,
  `length`, `range`, `multiple_of`, `duplicate_key`;
- reading (connectors): `_record:column_count`, `_record:json`, `_record:not_object`, `_record:too_long`.
Any other code (an outside normalizer's rule, say) gets a sentence naming the rule and the standard.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import re._constants as sre  # Python's own parse of a pattern: what `re` runs, described in words
import re._parser as sre_parse
from collections.abc import Callable

from hub.errors import ConfigError

__all__ = ["LANGUAGES", "RULES", "describe_pattern", "explain", "explainer"]

LANGUAGES = ("id", "en")

# Every rule the hub itself reports, by where it is reported. `RECORD` rules are prefixed `_record:`.
MAPPING_RULES = ("extract", "unmapped_code", "unparseable_date", "type")
NORMALIZER_RULES = ("scientific_notation", "identifier_digits", "identifier_length", "money", "number", "phone")
REGION_RULES = ("region_unknown", "region_ambiguous", "region_not_in_kecamatan")
SUITE_RULES = ("required", "type", "const", "enum", "code_list", "pattern", "format", "length", "range",
               "multiple_of", "duplicate_key")
RECORD_RULES = ("column_count", "json", "not_object", "too_long")
RULES = tuple(dict.fromkeys(MAPPING_RULES + NORMALIZER_RULES + REGION_RULES + SUITE_RULES))

_RECORD = "_record"
# How many values of a crosswalk, an enum or a short code list a sentence names before "and N more".
_SHOWN_VALUES = 8
_SHOWN_CODES = 12
# The day every date format is shown on: an example of the form, not anyone's date.
_EXAMPLE_DAY = dt.date(2024, 12, 31)
_MONTHS_ID = ("Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus", "September", "Oktober",
              "November", "Desember")
_LEVELS = {
    "provinsi": ("provinsi", "province"),
    "kabupaten_kota": ("kabupaten/kota", "kabupaten or kota (regency or city)"),
    "kecamatan": ("kecamatan", "kecamatan (district)"),
    "desa_kelurahan": ("desa/kelurahan", "desa or kelurahan (village)"),
    "kelurahan": ("desa/kelurahan", "desa or kelurahan (village)"),
    "desa": ("desa/kelurahan", "desa or kelurahan (village)"),
}


def _pick(lang: str, id_text: str, en_text: str) -> str:
    return en_text if lang == "en" else id_text


def _number(value, lang: str) -> str:
    """1234567 as 1.234.567 (Indonesian) or 1,234,567 (English); other numbers as JSON writes them."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) or float(value).is_integer():
        text = f"{int(value):,}"
        return text.replace(",", ".") if lang == "id" else text
    text = json.dumps(value)
    return text.replace(".", ",") if lang == "id" else text


def _quoted(value) -> str:
    return f'"{value}"' if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _listed(values: list, lang: str, shown: int = _SHOWN_VALUES, quote: bool = True) -> str:
    """`a, b dan c` / `a, b and c`, with "and N more" past `shown`."""
    texts = [_quoted(v) if quote else str(v) for v in values]
    if len(texts) > shown:
        rest = len(texts) - shown
        return ", ".join(texts[:shown]) + _pick(lang, f" dan {rest} lainnya", f" and {rest} more")
    if len(texts) <= 1:
        return "".join(texts)
    return ", ".join(texts[:-1]) + _pick(lang, " atau ", " or ") + texts[-1]


# --- patterns in words ------------------------------------------------------------------------------------

class _Unsaid(Exception):
    """A part of a pattern this describer has no words for: the pattern is shown as it is."""


# A character class as words: (Indonesian, English singular, English plural).
_DIGIT = ("digit angka", "digit", "digits")
_UPPER = ("huruf besar", "capital letter", "capital letters")
_LOWER = ("huruf kecil", "lower-case letter", "lower-case letters")
_LETTER = ("huruf", "letter", "letters")
_WORD = ("huruf, digit angka atau _", "letter, digit or _", "letters, digits or _")
_SPACE = ("spasi", "space", "spaces")
_ANY = ("karakter apa pun", "character", "characters")
_MAX_ALTERNATIVES = 12


def _class(items) -> tuple[str, str, str]:
    if items and items[0][0] is sre.NEGATE:
        raise _Unsaid
    parts: list[tuple[str, str, str]] = []
    literals: list[str] = []
    ranges = set()
    for op, arg in items:
        if op is sre.RANGE:
            ranges.add(arg)
        elif op is sre.LITERAL:
            literals.append(chr(arg))
        elif op is sre.CATEGORY and arg is sre.CATEGORY_DIGIT:
            ranges.add((48, 57))
        elif op is sre.CATEGORY and arg is sre.CATEGORY_WORD:
            parts.append(_WORD)
        elif op is sre.CATEGORY and arg is sre.CATEGORY_SPACE:
            parts.append(_SPACE)
        else:
            raise _Unsaid
    if (65, 90) in ranges and (97, 122) in ranges:
        ranges -= {(65, 90), (97, 122)}
        parts.append(_LETTER)
    for low, high in sorted(ranges):
        if (low, high) == (48, 57):
            parts.insert(0, _DIGIT)
        elif (low, high) == (65, 90):
            parts.append(_UPPER)
        elif (low, high) == (97, 122):
            parts.append(_LOWER)
        elif 48 <= low <= high <= 57:
            span = f"{chr(low)}-{chr(high)}"
            parts.append((f"digit angka {span}", f"digit {span}", f"digits {span}"))
        else:
            span = f'"{chr(low)}"-"{chr(high)}"'
            parts.append((f"karakter {span}", f"character {span}", f"characters {span}"))
    if literals:
        quoted = [f'"{c}"' for c in literals]
        shown_id = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " atau " + quoted[-1]
        shown_en = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
        parts.append((f"karakter {shown_id}", f"character {shown_en}", f"characters {shown_en}"))
    if not parts:
        raise _Unsaid
    return (" atau ".join(p[0] for p in parts), " or ".join(p[1] for p in parts), " or ".join(p[2] for p in parts))


def _alternatives(items) -> list[str] | None:
    """The texts a part of a pattern made of literals, literal classes and alternations matches, when there
    are a few (`PKH|PBI`, `0[1-9]|1[0-2]`); None otherwise."""
    found = [""]
    for op, arg in items:
        if op is sre.LITERAL:
            options = [chr(arg)]
        elif op is sre.IN and arg and arg[0][0] is not sre.NEGATE:
            options = []
            for kind, value in arg:
                if kind is sre.LITERAL:
                    options.append(chr(value))
                elif kind is sre.RANGE and value[1] - value[0] < 10:
                    options.extend(chr(c) for c in range(value[0], value[1] + 1))
                else:
                    return None
        elif op is sre.BRANCH:
            options = []
            for branch in arg[1]:
                inner = _alternatives(branch)
                if inner is None:
                    return None
                options.extend(inner)
        elif op is sre.SUBPATTERN and not arg[1] and not arg[2]:
            options = _alternatives(arg[3])
            if options is None:
                return None
        else:
            return None
        found = [a + b for a in found for b in options]
        if len(found) > _MAX_ALTERNATIVES:
            return None
    return found


def _counted(noun: tuple[str, str, str], low: int, high, lang: str) -> str:
    one, many = noun[1], noun[2]
    if high is sre.MAXREPEAT:
        if low == 0:
            return _pick(lang, f"{noun[0]} berapa pun (boleh tidak ada)", f"any number of {many}")
        english = f"one or more {many}" if low == 1 else f"{low} or more {many}"
        return _pick(lang, f"{low} {noun[0]} atau lebih", english)
    if low == high:
        return _pick(lang, f"{low} {noun[0]}", f"{low} {one if low == 1 else many}")
    if low == 0 and high == 1:
        return _pick(lang, f"boleh 1 {noun[0]}", f"optionally one {one}")
    if low == 0:
        return _pick(lang, f"paling banyak {high} {noun[0]}", f"at most {high} {many}")
    return _pick(lang, f"{low} sampai {high} {noun[0]}", f"{low} to {high} {many}")


def _times(inner: str, low: int, high, lang: str) -> str:
    if high is sre.MAXREPEAT:
        if low == 0:
            return _pick(lang, f"({inner}) berapa kali pun, boleh tidak ada", f"({inner}) any number of times")
        return _pick(lang, f"({inner}) {low} kali atau lebih", f"({inner}) {low} or more times")
    if low == 0 and high == 1:
        return _pick(lang, f"boleh ({inner})", f"optionally ({inner})")
    if low == high:
        return _pick(lang, f"({inner}) {low} kali", f"({inner}) {low} times")
    return _pick(lang, f"({inner}) {low} sampai {high} kali", f"({inner}) {low} to {high} times")


def _one_of(texts: list[str], lang: str) -> str:
    shown = ", ".join(f'"{t}"' for t in texts)
    return _pick(lang, f"salah satu dari {shown}", f"one of {shown}")


def _sequence(items, lang: str) -> str:
    items = list(items)
    if not items:
        return _pick(lang, "teks kosong", "empty text")
    texts = _alternatives(items)
    if texts is not None and len(texts) > 1:
        return _one_of(texts, lang)
    pieces, literal = [], ""
    for op, arg in items:
        if op is sre.LITERAL:
            literal += chr(arg)
            continue
        if literal:
            pieces.append(f'"{literal}"')
            literal = ""
        pieces.append(_item(op, arg, lang))
    if literal:
        pieces.append(f'"{literal}"')
    return _pick(lang, ", lalu ", ", then ").join(pieces)


def _noun(op, arg) -> tuple[str, str, str] | None:
    if op is sre.IN:
        return _class(arg)
    if op is sre.ANY:
        return _ANY
    if op is sre.LITERAL:
        return (f'karakter "{chr(arg)}"', f'character "{chr(arg)}"', f'characters "{chr(arg)}"')
    return None


def _item(op, arg, lang: str) -> str:
    noun = _noun(op, arg)
    if noun is not None:
        return _counted(noun, 1, 1, lang)
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
        low, high, sub = arg
        sub = list(sub)
        if len(sub) == 1 and _noun(*sub[0]) is not None:
            return _counted(_noun(*sub[0]), low, high, lang)
        return _times(_sequence(sub, lang), low, high, lang)
    if op is sre.SUBPATTERN:
        _, add_flags, del_flags, sub = arg
        if add_flags or del_flags:
            raise _Unsaid
        return _sequence(sub, lang)
    if op is sre.BRANCH:
        texts = _alternatives([(op, arg)])
        if texts is not None:
            return _one_of(texts, lang)
        described = [f"({_sequence(branch, lang)})" for branch in arg[1]]
        return _pick(lang, "salah satu dari ", "one of ") + _pick(lang, " atau ", " or ").join(described)
    raise _Unsaid  # anchors inside, back-references, look-arounds, ...


def describe_pattern(pattern: str, lang: str = "id") -> str | None:
    """A JSON Schema pattern in words for the common shapes: `^[0-9]{16}$` is "16 digit angka" / "16 digits",
    `^[A-Z0-9]{5,20}$` "5 sampai 20 huruf besar atau digit angka", `^(PKH|BPNT)$` 'salah satu dari "PKH",
    "BPNT"'. None when the pattern is beyond these words (flags, look-arounds, back-references, negated
    classes, anchors inside): the caller shows the pattern itself."""
    try:
        parsed = sre_parse.parse(pattern)
    except (re.error, RecursionError, OverflowError):
        return None
    if parsed.state.flags & ~sre.SRE_FLAG_UNICODE:
        return None
    items = list(parsed)
    begins = bool(items) and items[0][0] is sre.AT and items[0][1] in (sre.AT_BEGINNING, sre.AT_BEGINNING_STRING)
    if begins:
        items = items[1:]
    ends = bool(items) and items[-1][0] is sre.AT and items[-1][1] in (sre.AT_END, sre.AT_END_STRING)
    if ends:
        items = items[:-1]
    if not items and not (begins and ends):
        return None  # "^" or "" alone: any text
    try:
        body = _sequence(items, lang)
    except (_Unsaid, RecursionError):
        return None
    if begins and ends:
        return body
    if begins:
        return _pick(lang, f"diawali {body}", f"starting with {body}")
    if ends:
        return _pick(lang, f"diakhiri {body}", f"ending with {body}")
    return _pick(lang, f"memuat {body}", f"containing {body}")


# --- what the standard, the code lists and the registration say ------------------------------------------

_names_cache: dict[tuple[str, str], tuple[object, dict[str, str]]] = {}


def _code_names(name: str, edition: str) -> dict[str, str]:
    """kode -> nama of a code list edition, kept while the list's rows are the same object (hub.followed)."""
    from schemas.codelists import rows

    found = rows(name, edition)
    cached = _names_cache.get((name, edition))
    if cached is None or cached[0] is not found:
        cached = (found, {r["kode"]: r.get("nama", "") for r in found})
        _names_cache[(name, edition)] = cached
    return cached[1]


def _region(code: str, edition: str) -> str:
    """`32.71 (Kota Bogor)`: a region's code with its name in the edition, when the list knows it."""
    try:
        name = _code_names("kode_wilayah", edition).get(code)
    except ConfigError:
        name = None
    return f"{code} ({name})" if name else code


def _shape(codes: list[str], within: str | None) -> str | None:
    """How the codes are written, from the first: 32.71.01.1001 within 32.71 is `32.71.xx.xxxx`."""
    if not codes:
        return None
    first = codes[0]
    prefix = within if within and first.startswith(within) else ""
    return prefix + re.sub(r"[0-9]", "x", first[len(prefix):])


def _code_list(ref: dict, lang: str) -> str:
    """The code list a field's codes come from, and which of its codes the field admits."""
    from schemas.codelists import codes, describe

    name, edition = ref["name"], str(ref["edition"])
    try:
        title = describe(name, edition)["title"]
        admitted = codes(ref)
        names = _code_names(name, edition)
    except ConfigError:
        title, admitted, names = None, [], {}
    listed = f"{name}@{edition}" + (f" ({title})" if title else "")
    level = _LEVELS.get(ref.get("level") or "", (ref.get("level"), ref.get("level")))
    where = ""
    if ref.get("within"):
        region = _region(ref["within"], edition)
        where = _pick(lang, f" di dalam {region}", f" within {region}")
    if ref.get("level"):
        what = _pick(lang, f"kode {level[0]}{where} dari daftar kode {listed}",
                     f"the code of a {level[1]}{where} in code list {listed}")
    else:
        what = _pick(lang, f"kode dari daftar kode {listed}{where}", f"a code of code list {listed}{where}")
    if not admitted:
        return what
    if len(admitted) <= _SHOWN_CODES:
        shown = ", ".join(f"{c} ({names[c]})" if names.get(c) else c for c in admitted)
        return f"{what}: {shown}"
    shape = _shape(admitted, ref.get("within"))
    count = _number(len(admitted), lang)
    return what + _pick(lang, f", ditulis {shape} ({count} kode)", f", written {shape} ({count} codes)")


def _mapping(source, field_name: str) -> dict | None:
    if source is None:
        return None
    spec = (getattr(source, "mapping", None) or {}).get(field_name)
    return spec if isinstance(spec, dict) else None


def _normalizer(spec: dict | None) -> tuple[str | None, dict]:
    """The normalizer a mapping names, with its options: "nik" or {"identifier": {"length": 13}}."""
    given = (spec or {}).get("normalize")
    if isinstance(given, str):
        return given, {}
    if isinstance(given, dict) and len(given) == 1:
        [(name, options)] = given.items()
        return str(name), dict(options or {}) if isinstance(options, dict) else {}
    return None, {}


def _field(standard, name: str):
    try:
        return standard.field(name)
    except (KeyError, AttributeError):
        return None


def _subject(standard, source, names: list[str], lang: str) -> str:
    """What a sentence is about: the field's title and name, and the source's column it is read from."""
    parts = []
    for name in names:
        field = _field(standard, name)
        title = (field.title_en or field.title) if field is not None and lang == "en" else (
            field.title if field is not None else "")
        spec = _mapping(source, name)
        origin = ""
        if spec is not None and isinstance(spec.get("from"), str):
            origin = _pick(lang, f', dari kolom "{spec["from"]}"', f', from column "{spec["from"]}"')
        elif spec is not None and "value" in spec:
            origin = _pick(lang, ", nilai tetap pendaftaran sumber", ", a constant of the source's registration")
        if title:
            parts.append(f"{title} ({name}{origin})")
        else:
            parts.append(f"{name} ({origin.removeprefix(', ')})" if origin else name)
    if len(parts) == 1:
        return parts[0]
    joined = ", ".join(parts[:-1]) + _pick(lang, " dan ", " and ") + parts[-1]
    return _pick(lang, f"Kombinasi {joined}", f"The combination of {joined}")


def _type_form(field_type: str, lang: str) -> str:
    from transforms.mapping import _FALSE, _TRUE  # the words the cast reads: shown as they are, not copied

    if field_type == "integer":
        return _pick(lang, "bilangan bulat: digit angka saja, boleh diawali + atau - (mis. 42)",
                     "a whole number: digits only, optionally after + or - (e.g. 42)")
    if field_type == "number":
        return _pick(lang, "angka dengan titik sebagai pemisah desimal (mis. 1500 atau 12.5)",
                     "a number with a point as the decimal separator (e.g. 1500 or 12.5)")
    if field_type == "boolean":
        yes, no = ", ".join(_TRUE), ", ".join(_FALSE)
        return _pick(lang, f"ya atau tidak: {yes} untuk ya; {no} untuk tidak",
                     f"yes or no: {yes} for yes; {no} for no")
    return _pick(lang, "teks", "text")


_FORMATS = {
    "date": ("tanggal ISO 8601 YYYY-MM-DD yang ada di kalender (mis. 2024-12-31)",
             "an ISO 8601 date YYYY-MM-DD that is a real calendar day (e.g. 2024-12-31)"),
    "date-time": ("tanggal dan waktu RFC 3339 (mis. 2024-12-31T13:45:00+07:00)",
                  "an RFC 3339 date and time (e.g. 2024-12-31T13:45:00+07:00)"),
    "email": ("alamat surel yang memuat @ (mis. nama@contoh.go.id)",
              "an e-mail address containing @ (e.g. name@example.go.id)"),
}


def _lengths(low, high, lang: str) -> str:
    if low is not None and high is not None:
        if low == high:
            return _pick(lang, f"tepat {low} karakter", f"exactly {low} characters")
        return _pick(lang, f"{low} sampai {high} karakter", f"{low} to {high} characters")
    if low is not None:
        return _pick(lang, f"paling sedikit {low} karakter", f"at least {low} characters")
    return _pick(lang, f"paling banyak {high} karakter", f"at most {high} characters")


def _bounds(c: dict, unit: str | None, lang: str) -> str:
    words = {"minimum": ("paling kecil", "at least"), "maximum": ("paling besar", "at most"),
             "exclusiveMinimum": ("lebih dari", "greater than"), "exclusiveMaximum": ("kurang dari", "less than")}
    suffix = f" {unit}" if unit else ""
    parts = [f"{_pick(lang, *words[k])} {_number(c[k], lang)}{suffix}" for k in words if k in c]
    return _pick(lang, " dan ", " and ").join(parts)


_BOUNDS = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}


def _form(field, lang: str) -> str:
    """The form a field's value takes, as its rules say: the code list, the pattern, the format or the type."""
    c = field.constraints
    if field.code_list:
        return _code_list(field.code_list, lang)
    if "const" in c:
        return _pick(lang, f"nilai tetap {_quoted(c['const'])}", f"the fixed value {_quoted(c['const'])}")
    if "enum" in c:
        return _pick(lang, "salah satu dari ", "one of ") + _listed(c["enum"], lang, shown=_SHOWN_CODES)
    if "pattern" in c:
        return describe_pattern(c["pattern"], lang) or _pick(lang, f"teks dengan pola {c['pattern']}",
                                                             f"text matching the pattern {c['pattern']}")
    if field.format in _FORMATS:
        return _pick(lang, *_FORMATS[field.format])
    return _type_form(field.type, lang)


def _example_date(fmt: str) -> str:
    """A date format shown on the example day: `%d %B %Y` is `31 Desember 2024`."""
    day = _EXAMPLE_DAY
    tokens = {"%d": f"{day.day:02d}", "%m": f"{day.month:02d}", "%Y": f"{day.year}", "%y": f"{day.year % 100:02d}",
              "%B": _MONTHS_ID[day.month - 1], "%b": _MONTHS_ID[day.month - 1][:3]}
    return "".join(tokens.get(part, part) for part in re.split(r"(%[dmYyBb])", fmt))


def _excel_serial(day: dt.date) -> int:
    return (day - dt.date(1899, 12, 30)).days


# --- the sentences ------------------------------------------------------------------------------------------


def _sentence(field_part: str, rule: str, *, standard, source, details, lang: str) -> str:
    names = field_part.split("+")
    subject = _subject(standard, source, names, lang)
    field = _field(standard, names[0]) if len(names) == 1 else None
    spec = _mapping(source, names[0]) if len(names) == 1 else None
    c = field.constraints if field is not None else {}
    form = _form(field, lang) if field is not None else None

    if rule == "required":
        if source is not None and spec is None and len(names) == 1:
            return _pick(lang, f"{subject} wajib diisi, tetapi pendaftaran sumber tidak memetakannya dari kolom "
                               f"mana pun: tambahkan kolomnya ke mapping pendaftaran.",
                         f"{subject} is required, but the source's registration maps no column to it: add its "
                         f"column to the registration's mapping.")
        expected = _pick(lang, f": isi dengan {form}", f": fill it with {form}") if form else ""
        return _pick(lang, f"{subject} wajib diisi, tetapi kosong{expected}.",
                     f"{subject} is required but empty{expected}.")
    if rule == "type":
        field_type = field.type if field is not None else None
        if field_type is None:
            return _pick(lang, f"{subject} tidak dapat dibaca sebagai tipe kolomnya.",
                         f"{subject} cannot be read as its field's type.")
        return _pick(lang, f"{subject} bukan nilai bertipe {field_type}: harus {_type_form(field_type, lang)}.",
                     f"{subject} is not a value of type {field_type}: it must be {_type_form(field_type, lang)}.")
    if rule == "const" and "const" in c:
        return _pick(lang, f"{subject} harus bernilai tetap {_quoted(c['const'])}.",
                     f"{subject} must be the fixed value {_quoted(c['const'])}.")
    if rule == "enum" and "enum" in c:
        values = _listed(c["enum"], lang, shown=_SHOWN_CODES)
        return _pick(lang, f"{subject} bukan nilai yang diizinkan: harus salah satu dari {values}.",
                     f"{subject} is not an allowed value: it must be one of {values}.")
    if rule == "code_list" and field is not None and field.code_list:
        return _pick(lang, f"{subject} bukan kode yang diizinkan: harus {_code_list(field.code_list, lang)}.",
                     f"{subject} is not an allowed code: it must be {_code_list(field.code_list, lang)}.")
    if rule == "pattern" and "pattern" in c:
        words = describe_pattern(c["pattern"], lang)
        pattern = c["pattern"]
        if words:
            expected = _pick(lang, f"harus {words} (pola {pattern})", f"it must be {words} (pattern {pattern})")
        else:
            expected = _pick(lang, f"harus cocok dengan pola {pattern}", f"it must match the pattern {pattern}")
        return _pick(lang, f"{subject} tidak sesuai pola: {expected}.",
                     f"{subject} does not match the pattern: {expected}.")
    if rule == "format" and field is not None and field.format in _FORMATS:
        return _pick(lang, f"{subject} tidak sesuai format {field.format}: harus {_FORMATS[field.format][0]}.",
                     f"{subject} is not in format {field.format}: it must be {_FORMATS[field.format][1]}.")
    if rule in ("length", "min_length", "max_length") and ({"minLength", "maxLength"} & set(c)):
        lengths = _lengths(c.get("minLength"), c.get("maxLength"), lang)
        return _pick(lang, f"{subject} panjangnya tidak sesuai: harus {lengths}.",
                     f"{subject} has the wrong length: it must be {lengths}.")
    if rule in ("range", "minimum", "maximum") and (_BOUNDS & set(c)):
        bounds = _bounds(c, field.unit, lang)
        return _pick(lang, f"{subject} di luar rentang yang diizinkan: harus {bounds}.",
                     f"{subject} is out of the allowed range: it must be {bounds}.")
    if rule == "multiple_of" and "multipleOf" in c:
        step = _number(c["multipleOf"], lang)
        return _pick(lang, f"{subject} harus kelipatan {step}.", f"{subject} must be a multiple of {step}.")
    if rule == "duplicate_key":
        return _duplicate(subject, names, details, lang)
    if rule == "extract":
        pattern = (spec or {}).get("extract")
        shown = f" ({pattern})" if isinstance(pattern, str) else ""
        return _pick(lang, f"{subject} tidak memuat bagian yang diambil oleh pola extract pendaftaran sumber{shown}: "
                           f"periksa bentuk nilainya atau polanya.",
                     f"{subject} does not hold the part the source registration's extract pattern takes{shown}: "
                     f"check the value's form or the pattern.")
    if rule == "unmapped_code":
        return _unmapped(subject, spec, form, lang)
    if rule == "unparseable_date":
        return _unparseable_date(subject, spec, lang)
    if rule in NORMALIZER_RULES:
        return _normalized(subject, rule, spec, field, lang)
    if rule in REGION_RULES:
        return _region_rule(subject, rule, spec, field, lang)
    ref = getattr(standard, "ref", None)
    if ref is None:
        return _pick(lang, f'{subject} tidak memenuhi aturan "{rule}" dari standarnya.',
                     f'{subject} fails the rule "{rule}" of its standard.')
    return _pick(lang, f'{subject} tidak memenuhi aturan "{rule}" dari standar {ref}.',
                 f'{subject} fails the rule "{rule}" of standard {ref}.')


def _int(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _duplicate(subject: str, names: list[str], details, lang: str) -> str:
    key = _pick(lang, "kunci utama", "the primary key")
    rule = _pick(lang, f"{key} harus unik, setiap nilainya hanya boleh ada di satu baris",
                 f"{key} must be unique, each of its values in one row only")
    rows = [r for r in (details or {}).get("rows", []) if _int(r) is not None] if isinstance(details, dict) else []
    more = _int((details or {}).get("more")) if isinstance(details, dict) else None
    if rows:
        where = ", ".join(str(r) for r in rows)
        if more:
            where += _pick(lang, f" dan {_number(more, lang)} baris lainnya", f" and {_number(more, lang)} more rows")
        return _pick(lang, f"{subject} juga ada di baris lain dalam kiriman ini (baris {where}): {rule}.",
                     f"{subject} also appears in other rows of this delivery (rows {where}): {rule}.")
    return _pick(lang, f"{subject} juga ada di baris lain dalam kiriman ini: {rule}.",
                 f"{subject} also appears in another row of this delivery: {rule}.")


def _unmapped(subject: str, spec, form: str | None, lang: str) -> str:
    crosswalk = (spec or {}).get("crosswalk")
    target = _pick(lang, f" Kode tujuannya: {form}.", f" The codes it maps to: {form}.") if form else ""
    if isinstance(crosswalk, dict) and crosswalk:
        known = _listed(list(crosswalk), lang)
        return _pick(lang, f"{subject} memuat nilai yang tidak ada dalam crosswalk pendaftaran sumber: nilai yang "
                           f"dikenal (huruf besar/kecil dan spasi di tepi diabaikan) adalah {known}; tambahkan nilai "
                           f"itu ke crosswalk atau perbaiki datanya.{target}",
                     f"{subject} holds a value the source registration's crosswalk does not know: the values it "
                     f"knows (ignoring case and spaces around) are {known}; add the value to the crosswalk or fix "
                     f"the data.{target}")
    return _pick(lang, f"{subject} memuat nilai yang tidak ada dalam crosswalk pendaftaran sumber.{target}",
                 f"{subject} holds a value the source registration's crosswalk does not know.{target}")


def _unparseable_date(subject: str, spec, lang: str) -> str:
    formats = (spec or {}).get("date_formats")
    head = _pick(lang, f"{subject} tidak dapat dibaca sebagai tanggal yang ada di kalender",
                 f"{subject} cannot be read as a real calendar date")
    if not isinstance(formats, list) or not formats:
        return head + "."
    tried = ", ".join(f"{_example_date(str(f))} ({f})" for f in formats)
    serial = _excel_serial(_EXAMPLE_DAY)  # as the cell shows it, without separators
    if (spec or {}).get("excel_serial") is True:
        excel = _pick(lang, f"; nomor seri tanggal Excel juga dibaca (mis. {serial} untuk 31 Desember 2024)",
                      f"; Excel serial dates are read too (e.g. {serial} for 31 December 2024)")
    else:
        excel = _pick(lang, "; nomor seri tanggal Excel tidak dibaca (excel_serial tidak dinyalakan)",
                      "; Excel serial dates are not read (excel_serial is not on)")
    return head + _pick(lang, f". Format yang dicoba, berurutan: {tried}{excel}. Tanggal yang tidak ada "
                              f"(seperti 30 Februari) tidak dibaca.",
                        f". Formats tried, in order: {tried}{excel}. A day that does not exist (such as 30 February) "
                        f"is not read.")


def _identifier_lengths(options: dict) -> list[int] | None:
    length = options.get("length")
    values = length if isinstance(length, list) else [length] if length is not None else []
    values = sorted({v for v in values if _int(v) is not None})
    return values or None


def _digits(lengths: list[int], lang: str) -> str:
    joined = _listed(lengths, lang, quote=False)
    return _pick(lang, f"{joined} digit angka", f"{joined} digits")


def _normalized(subject: str, rule: str, spec, field, lang: str) -> str:
    name, options = _normalizer(spec)
    lengths = _identifier_lengths(options) if name == "identifier" else [16] if name == "nik" else None
    full = _digits(lengths, lang) if lengths else (_form(field, lang) if field is not None else None)
    if rule == "scientific_notation":
        refill = f" ({full})" if full else ""
        return _pick(lang, f"{subject} ditulis dalam notasi ilmiah (seperti 3,27101E+15): lembar kerja "
                           f"(spreadsheet) telah membulatkannya dan digit yang hilang tidak dapat dipulihkan. Format kolomnya sebagai "
                           f"Teks dan isi kembali nilai lengkapnya{refill} dari sumber aslinya.",
                     f"{subject} is written in scientific notation (such as 3.27101E+15): a spreadsheet has rounded it "
                     f"and the digits lost cannot be recovered. Format the column as Text and enter the whole "
                     f"value{refill} again from its original source.")
    if rule == "identifier_digits":
        length = f" ({_digits(lengths, lang)})" if lengths else ""
        return _pick(lang, f"{subject} harus berisi digit angka 0-9 saja{length}: spasi, titik dan tanda hubung di "
                           f"antara kelompok digit dibuang, tetapi huruf, garis miring, koma, tanda plus atau kurung "
                           f"tidak.",
                     f"{subject} must hold the digits 0-9 only{length}: spaces, dots and dashes between groups of "
                     f"digits are removed, but letters, slashes, commas, plus signs or parentheses are not.")
    if rule == "identifier_length":
        if lengths:
            return _pick(lang, f"{subject} memiliki jumlah digit yang salah: harus {_digits(lengths, lang)}, seperti "
                               f"ditetapkan pendaftaran sumber (normalize identifier, length).",
                         f"{subject} has the wrong number of digits: it must have {_digits(lengths, lang)}, as the "
                         f"source's registration declares (normalize identifier, length).")
        return _pick(lang, f"{subject} memiliki jumlah digit yang tidak sesuai dengan yang ditetapkan pendaftaran "
                           f"sumber.",
                     f"{subject} does not have the number of digits the source's registration declares.")
    if rule == "money":
        return _pick(lang, f"{subject} bukan jumlah rupiah yang dapat dibaca: tulis dengan titik sebagai pemisah "
                           f"ribuan dan koma untuk sen (Rp 1.200.000, 1.200.000,50, Rp 5.000,-), atau 1500000.50, "
                           f"atau dengan ribu/rb, juta/jt, miliar. Penulisan Inggris (1,200,000), singkatan M, K, T "
                           f"atau B, lebih dari dua angka desimal dan mata uang lain tidak dibaca.",
                     f"{subject} is not an amount of rupiah that can be read: write it with dots between thousands "
                     f"and a comma before sen (Rp 1.200.000, 1.200.000,50, Rp 5.000,-), or 1500000.50, or with "
                     f"ribu/rb, juta/jt, miliar. English notation (1,200,000), the abbreviations M, K, T or B, more "
                     f"than two decimals and other currencies are not read.")
    if rule == "number":
        return _pick(lang, f"{subject} bukan bilangan yang dapat dibaca: tulis dengan titik sebagai pemisah ribuan dan "
                           f"koma sebagai pemisah desimal (1.200, 2,5, -6,5971), atau dengan titik desimal (2.5). "
                           f"Mata uang, satuan, kata (Rp 1.200, 12 orang, 2 jt) dan 1,500 (ribuan dalam penulisan "
                           f"Inggris atau desimal?) tidak dibaca.",
                     f"{subject} is not a number that can be read: write it with dots between thousands and a "
                     f"decimal comma (1.200, 2,5, -6,5971), or with a decimal point (2.5). Currencies, units, words "
                     f"(Rp 1.200, 12 orang, 2 jt) and 1,500 (English thousands or a decimal?) are not read.")
    # phone
    return _pick(lang, f"{subject} bukan nomor telepon Indonesia yang dapat ditulis dalam bentuk E.164 (+62 lalu 8 "
                       f"sampai 12 digit angka, yang pertama 2-9): tulis lengkap dengan kode wilayah atau awalan 08, "
                       f"mis. 0812-3456-7890 atau (0251) 8321-075. Nomor luar negeri, ekstensi dan dua nomor dalam "
                       f"satu sel tidak dibaca.",
                 f"{subject} is not an Indonesian telephone number that can be written in E.164 form (+62 then 8 to "
                 f"12 digits, the first 2-9): write it whole with its area code or 08 prefix, e.g. 0812-3456-7890 or "
                 f"(0251) 8321-075. Foreign numbers, extensions and two numbers in one cell are not read.")


def _region_rule(subject: str, rule: str, spec, field, lang: str) -> str:
    # The scope a name is looked for in: the mapping's region options where it gives them, else the field's list.
    given = (spec or {}).get("region")
    given = given if isinstance(given, dict) else {}
    ref = (field.code_list if field is not None else None) or {}
    level = str(given.get("level") or ref.get("level") or "desa_kelurahan")
    within = given.get("within") or ref.get("within")
    edition = given.get("edition") or ref.get("edition")
    if edition is None:
        try:
            from schemas.codelists import editions

            edition = editions("kode_wilayah")[-1]
        except ConfigError:
            edition = "?"
    edition = str(edition)
    word = _LEVELS.get(level, (level, level))
    region = _region(str(within), edition) if within else None
    where = _pick(lang, f" di dalam {region}", f" within {region}") if region else ""
    listed = f"kode_wilayah@{edition}"
    try:
        from schemas.codelists import codes

        tingkat = {"kelurahan": "desa_kelurahan", "desa": "desa_kelurahan"}.get(level, level)
        scope = {"name": "kode_wilayah", "edition": edition, "level": tingkat,
                 **({"within": str(within)} if within else {})}
        shape = _shape(codes(scope), str(within) if within else None)
    except (ConfigError, KeyError):
        shape = None
    code = _pick(lang, f" atau kodenya ({shape})", f" or its code ({shape})") if shape else ""
    if rule == "region_unknown":
        return _pick(lang, f"{subject}: tidak ada {word[0]} dengan nama atau kode itu{where} pada daftar kode {listed} "
                           f"(ejaan nama dari setiap edisi dikenali, huruf besar/kecil, spasi dan tanda baca "
                           f"diabaikan; nama yang salah eja tidak ditebak). Tulis namanya seperti dalam daftar "
                           f"kode{code}.",
                     f"{subject}: there is no {word[1]} of that name or code{where} in code list {listed} (the "
                     f"names of every edition are known, case, spaces and punctuation ignored; a misspelt name is "
                     f"not guessed). Write its name as the code list does{code}.")
    if rule == "region_ambiguous":
        return _pick(lang, f"{subject}: nama itu cocok dengan lebih dari satu {word[0]}{where} pada daftar kode "
                           f"{listed}. Tulis kodenya{(' (' + shape + ')') if shape else ''} atau isi kecamatannya.",
                     f"{subject}: that name matches more than one {word[1]}{where} in code list {listed}. Write "
                     f"its code{(' (' + shape + ')') if shape else ''} or give its kecamatan.")
    return _pick(lang, f"{subject}: {word[0]} dengan nama itu ada{where} pada daftar kode {listed}, tetapi tidak di "
                       f"kecamatan yang diisi pada baris ini. Periksa kecamatannya.",
                 f"{subject}: a {word[1]} of that name exists{where} in code list {listed}, but not in the "
                 f"kecamatan this row gives. Check the kecamatan.")


def _record_sentence(rule: str, source, details, lang: str) -> str:
    options = getattr(source, "options", None) or {}
    if rule == "column_count":
        expected = _int((details or {}).get("expected")) if isinstance(details, dict) else None
        found = _int((details or {}).get("found")) if isinstance(details, dict) else None
        delimiter = options.get("delimiter")
        check = _pick(lang, f"periksa pemisah kolom ({delimiter}) dan tanda kutip di sekitar nilai yang memuat "
                            f"pemisah atau baris baru",
                      f"check the column separator ({delimiter}) and the quotes around values holding a separator "
                      f"or a line break") if delimiter and delimiter != "auto" else \
            _pick(lang, "periksa pemisah kolom dan tanda kutip di sekitar nilai yang memuat pemisah atau baris baru",
                  "check the column separator and the quotes around values holding a separator or a line break")
        if expected is not None and found is not None:
            return _pick(lang, f"Baris ini memiliki {found} kolom, sedangkan baris kepala memiliki {expected}: "
                               f"{check}.",
                         f"This line has {found} columns where the header has {expected}: {check}.")
        return _pick(lang, f"Jumlah kolom baris ini berbeda dari baris kepala: {check}.",
                     f"This line has another number of columns than the header: {check}.")
    if rule == "json":
        return _pick(lang, "Baris ini bukan JSON yang sah: setiap baris berkas JSON Lines harus satu objek JSON "
                           "lengkap ({\"kolom\": nilai, ...}).",
                     "This line is not valid JSON: each line of a JSON Lines file must be one whole JSON object "
                     "({\"column\": value, ...}).")
    if rule == "not_object":
        return _pick(lang, "Rekaman ini bukan objek JSON: setiap rekaman harus objek dengan nama kolom dan nilainya "
                           "({\"kolom\": nilai, ...}), bukan daftar, teks atau angka.",
                     "This record is not a JSON object: each record must be an object of column names and values "
                     "({\"column\": value, ...}), not a list, a text or a number.")
    if rule == "too_long":
        from connectors._file_formats import DEFAULT_MAX_FIELD_CHARS, DEFAULT_MAX_LINE_BYTES

        chars = _number(_int(options.get("max_field_chars")) or DEFAULT_MAX_FIELD_CHARS, lang)
        line = _number(_int(options.get("max_line_bytes")) or DEFAULT_MAX_LINE_BYTES, lang)
        return _pick(lang, f"Rekaman ini melebihi batas: sebuah nilai paling panjang {chars} karakter dan satu baris "
                           f"paling panjang {line} byte; yang disimpan hanya awalnya. Periksa apakah tanda kutip yang "
                           f"tidak ditutup menggabungkan beberapa baris.",
                     f"This record is past the limits: a value has at most {chars} characters and a line at most "
                     f"{line} bytes; only its start is kept. Check whether an unclosed quote joined several lines.")
    return _pick(lang, f'Rekaman ini ditolak saat dibaca (aturan "{rule}").',
                 f'This record was refused when it was read (rule "{rule}").')


def explain(code: str, *, standard, source=None, details: dict | None = None, lang: str = "id") -> str:
    """The sentence of a reason code: the rule the row failed and the form expected, in `lang` ("id" or "en").

    `standard`: the Standard the run validated against (schemas.load_standard), or None when it cannot be loaded
    (the sentences then say what the rule, the registration and the details say); `source`: the source's
    registration (hub.pipeline.find_source), for its mapping (column names, normalizers, crosswalks, date
    formats) and options (delimiter, limits), or None; `details`: the row's details of this code (the
    `details[code]` of a quarantined row), or None. Never names a value of the row.
    """
    if lang not in LANGUAGES:
        raise ValueError(f"language {lang!r}: one of {', '.join(LANGUAGES)}")
    field_part, _, rule = str(code).partition(":")
    if not rule:
        return _pick(lang, f'Baris ini ditolak (alasan "{code}").', f'This row was refused (reason "{code}").')
    if field_part == _RECORD:
        return _record_sentence(rule, source, details, lang)
    return _sentence(field_part, rule, standard=standard, source=source, details=details, lang=lang)


def explainer(*, standard, source=None, lang: str = "id") -> Callable[[str, dict | None], str]:
    """`explain` for many rows of one run: a code's sentence without details is made once."""
    made: dict[str, str] = {}

    def sentence(code: str, details: dict | None = None) -> str:
        if details:
            return explain(code, standard=standard, source=source, details=details, lang=lang)
        if code not in made:
            made[code] = explain(code, standard=standard, source=source, lang=lang)
        return made[code]

    return sentence
