"""Region names to the codes of the shipped Kemendagri list (kode wilayah), vectorized over Arrow arrays.

Agencies name kelurahan and kecamatan by name, spelt many ways ("Kel. Tanah Sareal", "BARANANGSIANG", "Batu Tulis"
for "Batutulis", "KECAMATAN BOGOR TENGAH"); standards want the code. `resolve` finds the code of each name among
the regions of one level within one parent region; what it cannot find for certain it leaves null and names a
rule, so the row is quarantined rather than given a guess. `candidates` says which regions a name that did not
resolve was closest to, for a steward to correct the file or the mapping.

How a name is matched (`resolve(names, level=..., within=..., edition=..., kecamatan=...)`):

1. A blank value (empty or only whitespace) has no code and fails no rule.
2. A value that is a code, digits with or without dots and spaces ("32.71.01.1001", "3271011001", "32 71 01
   1001"), is that region: it resolves when the code is of the level asked for, within `within`, in `edition`;
   a code only another edition has resolves to its successor (or predecessor) in `edition` through the
   registered crosswalk. Digits that are no code's shape are read as a name (and match none).
3. Otherwise a value is read as a name. Its *key* is the name Unicode-normalized (NFKC: a non-breaking space or a
   full-width letter is the plain one), case-folded, with every character that is not a letter or a digit
   removed: "Batu Tulis", "BATUTULIS" and "batu-tulis." have the key "batutulis". A name that begins with a
   word for its level, followed by a space or punctuation and more name, has a second key: the rest's key.
   The words, by level (case is ignored, a dot after them is punctuation):
   - desa_kelurahan: kelurahan, kel, desa, ds, desa adat ("Desa Adat" is how Papua's customary villages are
     named); desa and kelurahan are one kind: agencies write "Desa" for a kelurahan and the reverse;
   - kecamatan: kecamatan, kec, distrik (Papua's name for a kecamatan);
   - kabupaten_kota: kabupaten, kab (one kind) and kota, kotamadya, kodya (another).
   "Kota Batu", "Kota Baru" or "Desa Baru" are names of regions too: a region's name has the same keys, so
   "Desa Baru" is found by "Desa Baru" and by "Baru", and a word is only taken off when more name follows
   ("Kelurahan" alone is the kelurahan of that name). Only a leading word is a prefix: "Desa" inside a name or
   glued to it ("Desakolot") is the name.
4. A name matches a region of the level within `within` when they share a key of compatible kinds: a key
   without a word matches any, a key after a word matches one of that word's kind or none ("Kab. Bogor" is not
   "Kota Bogor"; "Bogor" matches both). Every edition's name of a region counts: a region renamed between
   editions is found by either name (the other edition's names reach `edition`'s codes through the crosswalk;
   a name of a region that has no counterpart in `edition` finds nothing).
5. A kelurahan name with a kecamatan (`kecamatan=`, a name or code per row, matched by the same rules among the
   kecamatan within `within`) is looked for among the kelurahan of the kecamatan it matches (of any, should it
   match several). A kecamatan value that is blank or matches none narrows nothing (that column fails on its
   own where it is mapped).
6. Exactly one region matched: its code in `edition`. None: the rule `region_unknown`. More than one:
   `region_ambiguous` (the same name in two kecamatan; one region's name and another's former name; a name or
   code of another edition whose one region became two of `edition`'s, as where two merged and `edition` is
   the older). Regions matched, but none in the kecamatan given: `region_not_in_kecamatan`.

There is no fuzzy matching in `resolve`: a misspelt name is quarantined, and `candidates` ranks the regions in
scope by the similarity of their keys to the name's (difflib's ratio, as `difflib.get_close_matches`).

The matching work is per distinct value: a column is dictionary-encoded, each distinct (name, kecamatan) is
resolved once, and the codes are taken back to the rows. The index of a level of an edition, nationwide, is
built once and kept (the list has some 90,000 regions); the index of a scope (`within`) is cut from it once; both
follow the code-list files (hub.followed), so a changed list is read again.
"""

from __future__ import annotations

import bisect
import difflib
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from hub.errors import ConfigError
from hub.followed import Followed
from schemas import codelists

__all__ = ["CODE_LIST", "LEVELS", "RULES", "Resolved", "candidates", "resolve"]

CODE_LIST = "kode_wilayah"
LEVELS = ("provinsi", "kabupaten_kota", "kecamatan", "desa_kelurahan")  # a code's depth (its dots) is its level
_LEVEL_NAMES = {"kelurahan": "desa_kelurahan", "desa": "desa_kelurahan", "desa_kelurahan": "desa_kelurahan",
                "kecamatan": "kecamatan", "kabupaten_kota": "kabupaten_kota"}
RULES = ("region_unknown", "region_ambiguous", "region_not_in_kecamatan")
CUTOFF = 0.6  # the least similarity a candidate has (difflib.get_close_matches' default)

# The words a name of a level may begin with, by kind; a kind is a group's name. Longer words first.
_WORDS = {
    "desa_kelurahan": {"desa_kelurahan": r"kelurahan|kel|desa\s*adat|desa|ds"},
    "kecamatan": {"kecamatan": r"kecamatan|kec|distrik"},
    "kabupaten_kota": {"kabupaten": r"kabupaten|kab", "kota": r"kotamadya|kodya|kota"},
}
# The word, then at least one space or punctuation mark, then more name.
_PREFIX = {
    level: re.compile(r"^\s*(?:" + "|".join(f"(?P<{kind}>{words})" for kind, words in kinds.items())
                      + r")[\W_]+(?=[^\W_])")
    for level, kinds in _WORDS.items()
}
_NOT_ALNUM = re.compile(r"[\W_]+")
_CODE = re.compile(r"(\d{2})(\d{2})?(\d{2})?(\d{4})?")
_NULL_TEXT = pa.scalar(None, pa.string())

Reading = tuple[str | None, str]  # (the kind of the word taken off, or None; the key)


@dataclass
class Resolved:
    """The code of each name (null where blank or not resolved) and, per rule, the rows that failed it."""

    codes: pa.Array
    failures: list[tuple[str, pa.Array]]


# --- keys ---------------------------------------------------------------------------------------------------


def _readings(name: str, level: str) -> frozenset[Reading]:
    """The keys of a name, each with its kind: (None, the whole name's key) and, when the name begins with a word
    for its level, (the word's kind, the rest's key)."""
    folded = unicodedata.normalize("NFKC", name).casefold()
    found = {(None, _NOT_ALNUM.sub("", folded))}
    prefix = _PREFIX.get(level)
    matched = prefix.match(folded) if prefix else None
    if matched:
        found.add((matched.lastgroup, _NOT_ALNUM.sub("", folded[matched.end():])))
    return frozenset(found)


def _as_code(text: str) -> str | None:
    """The dotted code a value is written as ("3271011001" -> "32.71.01.1001"), None when it is not a code."""
    compact = re.sub(r"[\s.]", "", unicodedata.normalize("NFKC", text))
    matched = _CODE.fullmatch(compact) if compact.isascii() else None
    return ".".join(p for p in matched.groups() if p) if matched else None


def _compatible(a: str | None, b: str | None) -> bool:
    return a is None or b is None or a == b


# --- the indexes --------------------------------------------------------------------------------------------


@dataclass
class _Level:
    """One level of one edition, nationwide: its codes (sorted), their names in the edition, the readings of their
    names in every edition, and the codes of other editions that stand for them."""

    codes: list[str]
    names: dict[str, str]
    readings: dict[str, frozenset[Reading]]
    aliases: dict[str, frozenset[str]]


@dataclass
class _Scope:
    """The regions of one level within one parent: by key, and by any code that stands for them."""

    level: _Level
    codes: list[str]
    by_key: dict[str, list[tuple[str | None, str]]]  # key -> (kind, code)
    by_code: dict[str, frozenset[str]]


_cache = Followed("region index")


def _files() -> list[Path]:
    """The files the indexes are read from: the code lists' index, every edition and every crosswalk."""
    folder = codelists.index_path().parent
    files = [codelists.index_path()]
    files += [folder / codelists.describe(CODE_LIST, e)["file"] for e in codelists.editions(CODE_LIST)]
    files += [folder / c["file"] for c in codelists.crosswalks(CODE_LIST).values()]
    return files


def _other_editions(edition: str, files: list[Path]) -> list[tuple[str, dict[str, set[str]]]]:
    return _cache.get(("editions", edition), files, lambda: _read_other_editions(edition))


def _read_other_editions(edition: str) -> list[tuple[str, dict[str, set[str]]]]:
    """Each edition a registered crosswalk joins to `edition`, with its codes -> the codes of `edition` they map
    to (a crosswalk's columns are the `from` edition's code, then the `to` edition's). Read backwards, a code
    merged into another maps to it from both."""
    found = []
    for pair, entry in codelists.crosswalks(CODE_LIST).items():
        old, new = entry["columns"][:2]
        if str(entry["to"]) == edition:
            other, source, target = str(entry["from"]), old, new
        elif str(entry["from"]) == edition:
            other, source, target = str(entry["to"]), new, old
        else:
            continue
        mapping: dict[str, set[str]] = defaultdict(set)
        for row in codelists.crosswalk_rows(CODE_LIST, pair):
            if row[source] and row[target]:
                mapping[row[source]].add(row[target])
        found.append((other, mapping))
    return found


def _build_level(edition: str, level: str, files: list[Path]) -> _Level:
    names = {r["kode"]: r["nama"] for r in codelists.rows(CODE_LIST, edition) if r.get("tingkat") == level}
    memo: dict[str, frozenset[Reading]] = {}  # names repeat (hundreds of Sukamaju): each is read once

    def read(name: str) -> frozenset[Reading]:
        found = memo.get(name)
        if found is None:
            found = memo[name] = _readings(name, level)
        return found

    readings = {code: read(name) for code, name in names.items()}
    aliases: dict[str, set[str]] = defaultdict(set)
    for other, mapping in _other_editions(edition, files):
        for row in codelists.rows(CODE_LIST, other):
            if row.get("tingkat") != level:
                continue
            for code in mapping.get(row["kode"], ()):
                if code not in readings:
                    continue
                if row["nama"] != names[code]:
                    readings[code] = readings[code] | read(row["nama"])
                if row["kode"] != code:
                    aliases[code].add(row["kode"])
    return _Level(codes=sorted(names), names=names, readings=readings,
                  aliases={code: frozenset(a) for code, a in aliases.items()})


def _level(edition: str, level: str, files: list[Path]) -> _Level:
    """The level's index, built on first use and when a code-list file changed (`files`: `_files()`)."""
    return _cache.get(("level", edition, level), files, lambda: _build_level(edition, level, files))


def _build_scope(edition: str, level: str, within: str, files: list[Path]) -> _Scope:
    index = _level(edition, level, files)
    start = bisect.bisect_left(index.codes, within + ".")
    end = bisect.bisect_left(index.codes, within + "/")  # "/" follows "." in ASCII: past every code under within
    codes = index.codes[start:end]
    by_key: dict[str, list[tuple[str | None, str]]] = defaultdict(list)
    by_code: dict[str, set[str]] = defaultdict(set)
    for code in codes:
        for kind, key in index.readings[code]:
            by_key[key].append((kind, code))
        for alias in index.aliases.get(code, ()):
            by_code[alias].add(code)
    # A code of the edition is itself, whatever another edition's same code became.
    by_code.update({code: {code} for code in codes})
    return _Scope(level=index, codes=codes, by_key=dict(by_key),
                  by_code={code: frozenset(found) for code, found in by_code.items()})


def _scope(edition: str, level: str, within: str, files: list[Path]) -> _Scope:
    return _cache.get(("scope", edition, level, within), files, lambda: _build_scope(edition, level, within, files))


def _settle(level: str, within: str, edition: str | None) -> tuple[str, str, str, list[Path]]:
    """The level's tingkat, the parent's dotted code, the edition, checked (the parent is a region of the edition
    at a level above `level`), and the files the indexes follow."""
    tingkat = _LEVEL_NAMES.get(level)
    if tingkat is None:
        raise ConfigError(f"region level {level!r}: one of {', '.join(_LEVEL_NAMES)}")
    known = codelists.editions(CODE_LIST)
    edition = known[-1] if edition is None else str(edition)
    if edition not in known:
        raise ConfigError(f"code list {CODE_LIST!r} has no edition {edition!r}; editions: {', '.join(known)}")
    parent = _as_code(str(within))
    depth = parent.count(".") if parent else None
    if parent is None or depth >= LEVELS.index(tingkat):
        raise ConfigError(f"within {within!r}: the code of a region above the {tingkat} (a province, a "
                          f"kabupaten/kota{' or a kecamatan' if tingkat == 'desa_kelurahan' else ''})")
    files = _files()
    if parent not in _level(edition, LEVELS[depth], files).names:
        raise ConfigError(f"within {within!r}: no {LEVELS[depth]} {parent} in {CODE_LIST} {edition}")
    return tingkat, parent, edition, files


def _match(scope: _Scope, text: str, level: str) -> frozenset[str]:
    """The codes of the regions in scope a value names (rules 2 to 4 of the module's docstring)."""
    code = _as_code(text)
    if code is not None:
        return scope.by_code.get(code, frozenset())
    found = set()
    for kind, key in _readings(text, level):
        for region_kind, region in scope.by_key.get(key, ()):
            if _compatible(kind, region_kind):
                found.add(region)
    return frozenset(found)


# --- resolving ----------------------------------------------------------------------------------------------


def _text(values) -> pa.Array:
    """Text with blanks (empty or whitespace) null."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    text = pc.utf8_trim_whitespace(values.cast(pa.string()))
    return pc.if_else(pc.equal(text, ""), _NULL_TEXT, text)


def resolve(names: pa.Array, *, level: str, within: str, edition: str | None = None,
            kecamatan: pa.Array | None = None) -> Resolved:
    """The codes of region names (or codes) of `level` within the region `within`, in `edition`'s codes (default:
    the newest edition shipped), with the rows that did not resolve by rule (region_unknown, region_ambiguous,
    region_not_in_kecamatan). `kecamatan`, of the same length, names each row's kecamatan to narrow a kelurahan.
    Each distinct value is matched once; see the module's docstring for how."""
    level, within, edition, files = _settle(level, within, edition)
    scope = _scope(edition, level, within, files)
    text = _text(names)
    encoded = text.dictionary_encode()
    values = encoded.dictionary.to_pylist()
    name_at = pc.fill_null(encoded.indices.cast(pa.int64()), len(values))
    kecamatan_values: list = []
    if kecamatan is not None:
        if level != "desa_kelurahan" or within.count(".") > 1:
            raise ConfigError("a kecamatan narrows a kelurahan within a kabupaten/kota or a province")
        if len(kecamatan) != len(text):
            raise ValueError(f"{len(kecamatan)} kecamatan for {len(text)} names")
        kecamatan_scope = _scope(edition, "kecamatan", within, files)
        kecamatan_encoded = _text(kecamatan).dictionary_encode()
        kecamatan_values = kecamatan_encoded.dictionary.to_pylist()
        kecamatan_at = pc.fill_null(kecamatan_encoded.indices.cast(pa.int64()), len(kecamatan_values))
        # One number per (name, kecamatan) pair, so each distinct pair is resolved once.
        pair = pc.add(pc.multiply(name_at, len(kecamatan_values) + 1), kecamatan_at)
    else:
        pair = name_at
    pairs = pair.dictionary_encode()
    width = len(kecamatan_values) + 1
    narrowing: dict[int, frozenset[str]] = {}  # kecamatan value -> the kecamatan it matches
    codes, rules = [], []
    for number in pairs.dictionary.to_pylist():
        at, kecamatan_at = divmod(number, width) if kecamatan is not None else (number, 0)
        code = rule = None
        if at < len(values):
            within_kecamatan = frozenset()
            if kecamatan_at < len(kecamatan_values):
                if kecamatan_at not in narrowing:
                    narrowing[kecamatan_at] = _match(kecamatan_scope, kecamatan_values[kecamatan_at], "kecamatan")
                within_kecamatan = narrowing[kecamatan_at]
            code, rule = _decide(_match(scope, values[at], level), within_kecamatan)
        codes.append(code)
        rules.append(rule)
    indices = pairs.indices
    failures = [(rule, pc.take(pa.array([r == rule for r in rules], pa.bool_()), indices)) for rule in RULES]
    return Resolved(codes=pc.take(pa.array(codes, pa.string()), indices), failures=failures)


def _decide(found: frozenset[str], kecamatan: frozenset[str]) -> tuple[str | None, str | None]:
    """The code and the rule failed (rules 5 and 6 of the module's docstring)."""
    if not found:
        return None, "region_unknown"
    if kecamatan:
        found = frozenset(code for code in found if code.rpartition(".")[0] in kecamatan)
        if not found:
            return None, "region_not_in_kecamatan"
    if len(found) > 1:
        return None, "region_ambiguous"
    return next(iter(found)), None


def candidates(name: str, *, level: str, within: str, edition: str | None = None, kecamatan: str | None = None,
               limit: int = 3) -> list[tuple[str, str]]:
    """The regions (code, name in `edition`) closest to a name, most similar first: the regions of `level` within
    `within` (within `kecamatan`, when it matches one) whose keys are most like the name's, at least CUTOFF
    alike. For `hub sources test` to say what a name that did not resolve may have meant."""
    level, within, edition, files = _settle(level, within, edition)
    scope = _scope(edition, level, within, files)
    regions = scope.codes
    if kecamatan and kecamatan.strip() and level == "desa_kelurahan" and within.count(".") <= 1:
        narrowed = _match(_scope(edition, "kecamatan", within, files), kecamatan.strip(), "kecamatan")
        if narrowed:
            regions = [code for code in regions if code.rpartition(".")[0] in narrowed]
    wanted = {key for _, key in _readings(name, level) if key}
    scored = []
    for code in regions:
        best = 0.0
        for _, key in scope.level.readings[code]:
            for want in wanted:
                similar = difflib.SequenceMatcher(None, want, key)
                if similar.real_quick_ratio() > best and similar.quick_ratio() > best:
                    best = max(best, similar.ratio())
        if best >= CUTOFF:
            scored.append((-best, code))
    return [(code, scope.level.names[code]) for _, code in sorted(scored)[:limit]]
