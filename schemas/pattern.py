"""JSON Schema `pattern` over a column of strings, judged as the jsonschema reference does: Python's `re.search`.

A million Python regex calls cost more than the rest of a validation, so Arrow's RE2 engine judges the
column at once wherever it is known to give the same answer:
- the pattern is rebuilt for RE2 from Python's own parse of it, so both run the same expression (a pattern
  outside the subset below, or one RE2 refuses, is left to Python);
- RE2 sees only ASCII values without a newline. There Python's Unicode classes (\\d, \\w, \\s, \\b) are the ASCII
  classes written out below, and `$` cannot match before a final newline. Python judges the other values.
"""

from __future__ import annotations

import re
import re._constants as sre  # Python's regex parser and its opcodes: what `re` itself will run
import re._parser as sre_parse
from functools import cache

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["search", "to_re2"]

# Python's classes restricted to ASCII text (`re` on str patterns: \s also holds \x1c-\x1f).
_CLASSES = {
    sre.CATEGORY_DIGIT: "0-9",
    sre.CATEGORY_WORD: "0-9A-Za-z_",
    sre.CATEGORY_SPACE: "\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f ",
}
_NEGATED = {sre.CATEGORY_NOT_DIGIT: sre.CATEGORY_DIGIT, sre.CATEGORY_NOT_WORD: sre.CATEGORY_WORD,
            sre.CATEGORY_NOT_SPACE: sre.CATEGORY_SPACE}
_ANCHORS = {sre.AT_BEGINNING: "^", sre.AT_BEGINNING_STRING: "\\A", sre.AT_END: "$", sre.AT_END_STRING: "\\z",
            sre.AT_BOUNDARY: "\\b"}  # not \B: Python's never matches an empty string, RE2's does
_RE2_MAX_REPEAT = 1000


class _NotTranslatable(Exception):
    pass


def _char(code: int) -> str:
    if code >= 128:
        raise _NotTranslatable
    return f"\\x{code:02x}"  # every literal as a hex escape: nothing is special in RE2 then


def _class(items) -> str:
    negate = bool(items) and items[0][0] is sre.NEGATE
    items = items[1:] if negate else items
    if len(items) == 1 and items[0][0] is sre.CATEGORY and items[0][1] in _NEGATED:  # \D, \W, \S
        return f"[{'' if negate else '^'}{_CLASSES[_NEGATED[items[0][1]]]}]"
    parts = []
    for op, arg in items:
        if op is sre.LITERAL:
            parts.append(_char(arg))
        elif op is sre.RANGE:
            parts.append(f"{_char(arg[0])}-{_char(arg[1])}")
        elif op is sre.CATEGORY and arg in _CLASSES:
            parts.append(_CLASSES[arg])
        else:
            raise _NotTranslatable
    return f"[{'^' if negate else ''}{''.join(parts)}]"


def _emit(parsed) -> str:
    out = []
    for op, arg in parsed:
        if op is sre.LITERAL:
            out.append(_char(arg))
        elif op is sre.NOT_LITERAL:
            out.append(f"[^{_char(arg)}]")
        elif op is sre.ANY:
            out.append(".")
        elif op is sre.IN:
            out.append(_class(arg))
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
            low, high, item = arg
            if max(low, 0 if high is sre.MAXREPEAT else high) > _RE2_MAX_REPEAT:
                raise _NotTranslatable
            bounds = f"{{{low},}}" if high is sre.MAXREPEAT else f"{{{low},{high}}}"
            out.append(f"(?:{_emit(item)}){bounds}{'?' if op is sre.MIN_REPEAT else ''}")
        elif op is sre.SUBPATTERN:
            _, add_flags, del_flags, item = arg
            if add_flags or del_flags:
                raise _NotTranslatable
            out.append(f"(?:{_emit(item)})")
        elif op is sre.BRANCH:
            out.append("(?:" + "|".join(_emit(item) for item in arg[1]) + ")")
        elif op is sre.AT and arg in _ANCHORS:
            out.append(_ANCHORS[arg])
        else:  # back-references, look-arounds, atomic groups, ...
            raise _NotTranslatable
    return "".join(out)


@cache
def to_re2(pattern: str) -> str | None:
    """The RE2 expression that answers as Python's `re.search(pattern)` on ASCII text without a newline.

    None when the pattern is outside the subset (flags, \\B, back-references, look-arounds, non-ASCII literals,
    repeats above RE2's limit) or RE2 refuses it.
    """
    parsed = sre_parse.parse(pattern)
    if parsed.state.flags & ~sre.SRE_FLAG_UNICODE:
        return None
    try:
        translated = _emit(parsed)
        pc.match_substring_regex(pa.array([""]), translated)
    except (_NotTranslatable, pa.ArrowInvalid):
        return None
    return translated


def search(values: pd.Series, pattern: str) -> np.ndarray:
    """For each string value, whether `re.search(pattern, value)` finds a match."""
    compiled = re.compile(pattern)
    translated = to_re2(pattern)
    if translated is None or not len(values):
        return np.fromiter((compiled.search(v) is not None for v in values), dtype=bool, count=len(values))
    text = pa.chunked_array([pa.array(values.array if isinstance(values.dtype, pd.StringDtype) else
                                      values.to_numpy(dtype=object), pa.string())]).combine_chunks()
    found = pc.match_substring_regex(text, translated).to_numpy(zero_copy_only=False)
    for_python = pc.or_(pc.invert(pc.string_is_ascii(text)), pc.match_substring(text, "\n"))
    if pc.any(for_python).as_py():
        found = found.copy()
        for position in np.flatnonzero(for_python.to_numpy(zero_copy_only=False)):
            found[position] = compiled.search(values.iat[position]) is not None
    return found
