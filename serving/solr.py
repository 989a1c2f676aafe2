"""The subset of Solr's query syntax CKAN clients send in package_search's `q` and `fq`, parsed and evaluated."""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass

from catalog.search import words

__all__ = ["FIELDS", "STRING_FIELDS", "TEXT_FIELDS", "TIME_FIELDS", "Packages", "SearchQueryError", "parse"]

# How CKAN's Solr schema indexes each field: text fields by their words (any case, no accents), string fields
# as whole values (exact case), dates as times.
TEXT_FIELDS = ("text", "title", "notes")
STRING_FIELDS = ("id", "name", "organization", "owner_org", "tags", "res_format", "groups", "license_id",
                 "standard", "classification", "version", "author", "maintainer", "dataset_type", "capacity",
                 "state")
TIME_FIELDS = ("metadata_modified", "metadata_created")
FIELDS = (*TEXT_FIELDS, *STRING_FIELDS, *TIME_FIELDS)
_UNITS = {"YEAR": "years", "MONTH": "months", "DAY": "days", "HOUR": "hours", "MINUTE": "minutes",
          "SECOND": "seconds"}


class SearchQueryError(ValueError):
    """A query outside the subset the hub reads; the message says where and what is allowed."""


@dataclass(frozen=True)
class Packages:
    """What a query is evaluated over: the ids of the packages, each one's values by field (text fields as
    text, the others as lists), and the full-text search (text -> ids of the packages it finds)."""

    ids: frozenset[str]
    values: Callable[[str], dict[str, list]]
    full_text: Callable[[str], set[str]]


# --- tokens ---------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"""\s*(?:
      (?P<open>\() | (?P<close>\))
    | (?P<op>AND|OR|NOT|&&|\|\|)(?=[\s()]|$)
    | (?P<sign>[-+!])(?=\S)
    | (?P<all>\*:\*)
    | (?:(?P<field>[A-Za-z_][\w.]*):)?
      (?P<value>"(?:[^"\\]|\\.)*" | [\[{][^\]}]*[\]}] | [^\s()"]+)
    )""", re.VERBOSE)
_RANGE = re.compile(r"([\[{])\s*(\S+)\s+TO\s+(\S+)\s*([\]}])")
_SPECIAL = re.compile(r"[\\~^?:{}\[\]]")  # fuzzy, boosts, single-character wildcards, escapes, local params
_MATH = re.compile(r"([+-]\d+)(YEAR|MONTH|DAY|HOUR|MINUTE|SECOND)S?|/(YEAR|MONTH|DAY|HOUR|MINUTE|SECOND)S?")


def _tokens(text: str) -> list[tuple[str, object]]:
    found, at = [], 0
    while text[at:].strip():
        m = _TOKEN.match(text, at)
        if not m or m.end() == at:
            # Only a phrase's opening quote is left unread.
            position = len(text) - len(text[at:].lstrip()) + 1
            raise SearchQueryError(f"the phrase at character {position} has no closing double quote")
        kind = next(k for k in ("open", "close", "op", "sign", "all", "value") if m[k] is not None)
        found.append((kind, m[kind] if kind != "value" else (m["field"], m["value"], m.start() + 1)))
        at = m.end()
    return found


# --- the query as a tree of nodes, each giving the ids it matches -----------------------------------------

class _Node:
    def ids(self, packages: Packages) -> set[str]:
        raise NotImplementedError

    def words(self) -> list[str]:
        """The free-text words that rank the matches (none under a NOT)."""
        return []


@dataclass(frozen=True)
class _All(_Node):
    def ids(self, packages):
        return set(packages.ids)


@dataclass(frozen=True)
class _Not(_Node):
    node: _Node

    def ids(self, packages):
        return set(packages.ids) - self.node.ids(packages)


@dataclass(frozen=True)
class _And(_Node):
    nodes: tuple[_Node, ...]

    def ids(self, packages):
        # Free words side by side are one full-text search, so its synonyms of several words still apply.
        free = [n.value for n in self.nodes if isinstance(n, _Term) and n.free_word]
        found = packages.full_text(" ".join(free)) & set(packages.ids) if free else set(packages.ids)
        for node in self.nodes:
            if not (isinstance(node, _Term) and node.free_word):
                found &= node.ids(packages)
        return found

    def words(self):
        return [w for n in self.nodes for w in n.words()]


@dataclass(frozen=True)
class _Or(_Node):
    nodes: tuple[_Node, ...]

    def ids(self, packages):
        return set().union(*(n.ids(packages) for n in self.nodes))

    def words(self):
        return [w for n in self.nodes for w in n.words()]


def _sequence(text: str) -> list[str]:
    """The words of `text` in order, as the full-text search folds them."""
    return [w for chunk in text.split() for w in words(chunk)]


def _time(text: str) -> dt.datetime:
    """An ISO 8601 time, NOW, either followed by Solr's date math (`NOW-1DAY`, `NOW/DAY`), in naive UTC."""
    base, math = re.fullmatch(r"(NOW|.+?(?:Z|(?=[+-]\d+(?:YEAR|MONTH|DAY|HOUR|MINUTE|SECOND)|/)|$))(.*)",
                              text).groups()
    if base == "NOW":
        at = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    else:
        at = dt.datetime.fromisoformat(base.replace("Z", "+00:00"))
        at = at.astimezone(dt.timezone.utc).replace(tzinfo=None) if at.tzinfo else at
    done = 0
    for m in _MATH.finditer(math):
        if m.start() != done:
            break
        done = m.end()
        if m[1]:
            amount, unit = int(m[1]), m[2]
            if unit in ("YEAR", "MONTH"):
                months = at.year * 12 + at.month - 1 + amount * (12 if unit == "YEAR" else 1)
                year, month = divmod(months, 12)
                at = at.replace(year=year, month=month + 1,
                                day=min(at.day, calendar.monthrange(year, month + 1)[1]))
            else:
                at += dt.timedelta(**{_UNITS[unit]: amount})
        else:  # rounding down to the unit
            keep = ("YEAR", "MONTH", "DAY", "HOUR", "MINUTE", "SECOND").index(m[3])
            at = at.replace(**{k: v for k, v in (("month", 1), ("day", 1), ("hour", 0), ("minute", 0),
                                                  ("second", 0), ("microsecond", 0))[keep:]})
    if done != len(math):
        raise ValueError(text)
    return at


@dataclass(frozen=True)
class _Term(_Node):
    """`value`, `"a phrase"`, `field:value`, `field:"a phrase"`, `field:prefix*`, `field:*` (any value) or
    `field:[low TO high]` (braces leave the ends out, * leaves one open); no field is full text."""

    field: str | None
    value: str | None = None  # None: any value
    phrase: bool = False
    range: tuple | None = None  # (include low, low, high, include high); a bound None is open

    @property
    def free_word(self) -> bool:
        return self.field is None and not self.phrase

    def words(self):
        return _sequence(self.value) if self.field is None else []

    def ids(self, packages):
        if self.field is None:
            found = packages.full_text(self.value) & set(packages.ids)
            if self.phrase:  # the words in that order, in the title, description or tags
                found = {i for i in found if self._holds(packages.values(i)["text"])}
            return found
        return {i for i in packages.ids if self._holds(packages.values(i)[self.field])}

    def _holds(self, held) -> bool:
        if self.field in TEXT_FIELDS or self.field is None:
            text = _sequence(held or "")
            if self.value is None:
                return bool(text)
            wanted = _sequence(self.value)
            if self.value.endswith("*") and not self.phrase:
                return any(w.startswith(wanted[0]) for w in text) if wanted else bool(text)
            n = len(wanted)
            return n > 0 and any(text[i:i + n] == wanted for i in range(len(text) - n + 1))
        present = [v for v in held if v is not None]
        if self.range:
            include_low, low, high, include_high = self.range
            convert = _time if self.field in TIME_FIELDS else str
            return any((low is None or (v >= low if include_low else v > low))
                       and (high is None or (v <= high if include_high else v < high))
                       for v in map(convert, present))
        if self.value is None:
            return bool(present)
        if self.field in TIME_FIELDS:
            return _time(self.value) in map(_time, present)
        if self.value.endswith("*") and not self.phrase:
            return any(v.startswith(self.value[:-1]) for v in present)
        return self.value in present


def _term(field: str | None, value: str, position: int) -> _Term:
    if field is not None and field not in FIELDS:
        raise SearchQueryError(f"undefined field {field}; fields: {', '.join(FIELDS)}")
    # Where the term is, not what it says: a query may hold a personal value (a NIK), never repeated back.
    shown = f"the term at character {position}" + (f" (on {field})" if field else "")
    if value.startswith('"'):
        text = re.sub(r"\\(.)", r"\1", value[1:-1])
        if field is None and not _sequence(text):
            raise SearchQueryError(f"{shown}: a phrase has words")
        return _Term(field, text, phrase=True)
    if value[0] in "[{":
        bounds = _RANGE.fullmatch(value)
        if not bounds or field is None:
            raise SearchQueryError(f"{shown}: write field:[low TO high], with * for no bound and times in "
                                   f"ISO 8601 or NOW (NOW-1DAY ...)")
        opening, low, high, closing = bounds.groups()
        try:
            convert = _time if field in TIME_FIELDS else str
            low, high = (None if b == "*" else convert(b) for b in (low, high))
        except (ValueError, AttributeError):
            raise SearchQueryError(f"{shown}: times are ISO 8601 (2024-01-31T00:00:00Z) or NOW, with date "
                                   f"math such as NOW-1DAY or NOW/DAY") from None
        return _Term(field, range=(opening == "[", low, high, closing == "]"))
    if _SPECIAL.search(value) or "*" in value[:-1] or (value == "*" and field is None):
        raise SearchQueryError(f"{shown}: fuzzy terms (~), boosts (^), ? wildcards, escapes, field:(groups) "
                               f"and * other than at the end are not supported")
    if field in TIME_FIELDS and value != "*":
        try:
            _time(value)
        except (ValueError, AttributeError):
            raise SearchQueryError(f"{shown}: times are ISO 8601 or NOW") from None
    if field is None and not _sequence(value):
        raise SearchQueryError(f"{shown}: a term has letters or digits")
    return _Term(field, None if value == "*" else value)


class _Parser:
    """AND (or nothing: side by side) joins looser than OR, so `organization:a OR organization:b tags:x`
    is (a or b) and x, as harvesters mean it; NOT, - and ! negate, + is no change; parentheses group."""

    def __init__(self, text: str):
        self.tokens, self.at = _tokens(text), 0

    def peek(self):
        return self.tokens[self.at] if self.at < len(self.tokens) else (None, None)

    def take(self):
        token = self.peek()
        self.at += 1
        return token

    def query(self, inner: bool = False) -> _Node:
        nodes = []
        while (kind := self.peek()[0]) is not None and not (inner and kind == "close"):
            if kind == "close":
                raise SearchQueryError("a parenthesis closes nothing")
            if self.peek() in (("op", "AND"), ("op", "&&")):
                if not nodes:
                    raise SearchQueryError("AND needs a term before it")
                self.take()
            nodes.append(self.either())
        if not nodes:
            raise SearchQueryError("empty parentheses" if inner else "an empty query")
        return nodes[0] if len(nodes) == 1 else _And(tuple(nodes))

    def either(self) -> _Node:
        nodes = [self.unary()]
        while self.peek() in (("op", "OR"), ("op", "||")):
            self.take()
            nodes.append(self.unary())
        return nodes[0] if len(nodes) == 1 else _Or(tuple(nodes))

    def unary(self) -> _Node:
        kind, value = self.take()
        if kind == "op" and value == "NOT" or kind == "sign" and value in "-!":
            return _Not(self.unary())
        if kind == "sign":
            return self.unary()
        if kind == "open":
            node = self.query(inner=True)
            if self.take()[0] != "close":
                raise SearchQueryError("a parenthesis is not closed")
            return node
        if kind == "all":
            return _All()
        if kind == "value":
            return _term(*value)
        shown = {"op": value, "close": ")", None: "the end"}.get(kind, value)
        raise SearchQueryError(f"a term is missing before {shown}")


def parse(text: str | None) -> _Node:
    """The query `text` (empty: every package) as a node whose `ids(Packages)` are the packages it matches and
    whose `words()` rank them; a query outside the subset raises SearchQueryError."""
    if not (text or "").strip():
        return _All()
    return _Parser(text).query()
