"""Numbers as the portal's two languages write them: 6.199 and 2,5 in Indonesian, 6,199 and 2.5 in English."""

from __future__ import annotations

__all__ = ["number"]


def number(value, lang: str) -> str:
    """`value` as people read it in `lang` (two decimals at most); "–" for none."""
    if value is None:
        return "–"
    if isinstance(value, float) and not value.is_integer():
        text = f"{value:,.2f}".rstrip("0").rstrip(".")
    else:
        text = f"{int(value):,}" if isinstance(value, float) else f"{value:,}"
    return text.translate(str.maketrans(",.", ".,")) if lang == "id" else text
