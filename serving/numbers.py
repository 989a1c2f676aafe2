"""Numbers as the portal's two languages write them: 6.199 and 2,5 in Indonesian, 6,199 and 2.5 in English."""

from __future__ import annotations

__all__ = ["file_size", "number"]


def number(value, lang: str) -> str:
    """`value` as people read it in `lang` (two decimals at most); "–" for none."""
    if value is None:
        return "–"
    if isinstance(value, float) and not value.is_integer():
        text = f"{value:,.2f}".rstrip("0").rstrip(".")
    else:
        text = f"{int(value):,}" if isinstance(value, float) else f"{value:,}"
    return text.translate(str.maketrans(",.", ".,")) if lang == "id" else text


def file_size(size: int, lang: str) -> str:
    """A size in bytes as people read it: 812 B, 3,4 kB, 12,1 MB (decimal units, one decimal below 100)."""
    value, unit = float(size), "B"
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            break
        value /= 1000
    shown = round(value) if unit == "B" or value >= 100 else round(value, 1)
    return f"{number(float(shown), lang)} {unit}"
