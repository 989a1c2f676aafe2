"""'Did you mean': the names nearest to a misspelt one (a source's column, a standard's keyword or field)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from difflib import SequenceMatcher

__all__ = ["CUTOFF", "nearest"]

#: The least similarity (difflib's ratio of the normalized names, 0 to 1) of a name worth suggesting.
CUTOFF = 0.6
_SEPARATORS = re.compile(r"[\s_\-]+")


def _normal(name: str) -> str:
    """A name as people mean it: case-folded, each run of spaces, underscores and dashes one space."""
    return _SEPARATORS.sub(" ", name.casefold()).strip()


def nearest(word: str, choices: Iterable[str], n: int = 1) -> list[str]:
    """Up to `n` of `choices` closest to `word`, closest first; none when nothing is close.

    Names are compared case-folded with runs of spaces, underscores and dashes alike (`nama_penerima` is
    `NAMA PENERIMA`), and such an equal name comes first. Then the choices whose words are all words of the
    name, or the other way round (`NAMA` and `NAMA PENERIMA`: a column named by its first word; not `Agama`,
    closer letter by letter), then those difflib finds similar enough (CUTOFF); in each, the more similar first,
    ties in the order given.
    """
    target = _normal(word)
    words = set(target.split())
    scored: list[tuple[int, float, int, str]] = []
    seen: set[str] = set()
    for position, choice in enumerate(choices):
        if choice in seen:
            continue
        seen.add(choice)
        normal = _normal(choice)
        if normal == target:
            scored.append((3, 1.0, position, choice))
            continue
        ratio = SequenceMatcher(None, target, normal, autojunk=False).ratio()
        theirs = set(normal.split())
        if words and theirs and (words <= theirs or theirs <= words):
            scored.append((2, ratio, position, choice))
        elif ratio >= CUTOFF:
            scored.append((1, ratio, position, choice))
    scored.sort(key=lambda s: (-s[0], -s[1], s[2]))
    return [choice for *_, choice in scored[:max(n, 0)]]
