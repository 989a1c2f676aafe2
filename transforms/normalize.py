"""Normalizers for values agencies write in many ways: NIK, names, kode wilayah."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["NORMALIZERS", "Normalized"]

# What a spreadsheet makes of a 16-digit number: 3,27101E+15 or 3.271015E+15. The digits are gone.
_SCIENTIFIC = r"^[0-9][.,][0-9]+[eE]\+?[0-9]+$"
_NULL_TEXT = pa.scalar(None, pa.string())


class Normalized:
    """A normalized column and the rows whose value could not be recovered (with a rule name)."""

    def __init__(self, values: pa.Array, failed: pa.Array | None = None, rule: str | None = None) -> None:
        self.values, self.failed, self.rule = values, failed, rule


def nik(text: pa.Array) -> Normalized:
    """Drop spaces, dots, dashes and a spreadsheet's leading apostrophe; refuse scientific notation."""
    # Most NIKs arrive clean; the regular expressions run only on the others.
    clean = pc.fill_null(pc.and_(pc.utf8_is_digit(text), pc.equal(pc.utf8_length(text), 16)), True)
    messy = pc.invert(clean)
    if not pc.any(messy).as_py():
        return Normalized(text)
    none = pa.repeat(pa.scalar(False), len(text))
    subset = text.filter(messy)
    scientific = pc.fill_null(pc.match_substring_regex(subset, _SCIENTIFIC), False)
    cleaned = pc.replace_substring_regex(subset, "^['`\u2018\u2019]+|[\\s.\\-]", "")
    cleaned = pc.if_else(scientific, _NULL_TEXT, cleaned)
    return Normalized(pc.replace_with_mask(text, messy, cleaned), pc.replace_with_mask(none, messy, scientific),
                      "scientific_notation")


def name(text: pa.Array) -> Normalized:
    """Upper case with single spaces, as names are written on identity documents."""
    return Normalized(pc.utf8_upper(pc.replace_substring_regex(text, r"\s+", " ")))


def kode_wilayah(text: pa.Array) -> Normalized:
    """Dotted Kemendagri codes from the undotted forms (32710110 01 -> 32.71.01.1001)."""
    compact = pc.replace_substring_regex(text, r"[\s.]", "")
    dotted = pc.replace_substring_regex(
        compact, r"^(\d{2})(\d{2})?(\d{2})?(\d{4})?$", r"\1.\2.\3.\4"
    )
    return Normalized(pc.replace_substring_regex(dotted, r"\.+$", ""))


def upper(text: pa.Array) -> Normalized:
    return Normalized(pc.utf8_upper(text))


def lower(text: pa.Array) -> Normalized:
    return Normalized(pc.utf8_lower(text))


NORMALIZERS = {"nik": nik, "name": name, "kode_wilayah": kode_wilayah, "upper": upper, "lower": lower}
