"""Versioned code lists (Kemendagri kode wilayah, Dukcapil agama, ...) that standards refer to, and their check.

The code lists live in one folder (`codelists_dir()`: HUB_CODELISTS, else the checkout's `schemas/codelists`):
an index, `codelists.yaml`, names each list's title, owner and editions, and each edition's CSV file. Reading
follows the files (hub.followed): a list added or changed is seen on the next call, a broken one keeps its last
good version in a running process. `check_codelists` says what is wrong, with file, line and column.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import yaml

from hub.errors import ConfigError
from hub.followed import BrokenFile, Followed, Problem

__all__ = [
    "CODELISTS_DIR", "INDEX", "LEVEL_COLUMN", "REQUIRED_COLUMNS", "check_codelists", "check_references",
    "codelists_dir", "codes", "crosswalk_rows", "crosswalks", "describe", "editions", "files_of", "index_path",
    "known_files", "labels", "list_codelists", "read_table", "rows",
]

CODELISTS_DIR = Path(__file__).resolve().parent / "codelists"  # the code lists this checkout ships
INDEX = "codelists.yaml"
REQUIRED_COLUMNS = ("kode", "nama")  # every edition's CSV has these; more columns are kept
LEVEL_COLUMN = "tingkat"  # what a standard's `level` narrows a list by
ENGLISH_COLUMN = "nama_en"  # a list's English labels, where it has them
MAX_PROBLEMS = 50  # named per file; past that, a count of the rest


def codelists_dir() -> Path:
    """The folder of code lists the hub follows: HUB_CODELISTS if set (a walidata's own repository, say), else
    the checkout's `schemas/codelists`."""
    return Path(os.environ.get("HUB_CODELISTS") or CODELISTS_DIR).resolve()


def index_path() -> Path:
    return codelists_dir() / INDEX


_cache = Followed("code list")


def _usable(value, problems: list[Problem]):
    if problems:
        raise BrokenFile(problems)
    return value


def _index(strict: bool = False) -> dict:
    path = index_path()
    return _cache.get("index", [path], lambda: _usable(*_read_index(path)[:2]), strict=strict)


def _entry(name: str, strict: bool = False) -> dict:
    index = _index(strict)
    entry = index.get(name)
    if entry is None:
        raise ConfigError(f"unknown code list {name!r}; known: {', '.join(sorted(index))}")
    return entry


def editions(name: str) -> list[str]:
    """The editions of a code list, oldest first."""
    return list(_entry(name)["editions"])


def describe(name: str, edition: str) -> dict:
    """The index entry of one edition of a code list, with its owner and title."""
    return _describe(name, str(edition))


def _describe(name: str, edition: str, strict: bool = False) -> dict:
    entry = _entry(name, strict)
    ed = entry["editions"].get(edition)
    if ed is None:
        raise ConfigError(f"code list {name!r} has no edition {edition!r}; editions: {', '.join(entry['editions'])}")
    return {"name": name, "edition": edition, "title": entry["title"], "owner": entry["owner"], **ed}


def list_codelists() -> list[dict]:
    """Every code list and edition, with its owner, title and number of codes."""
    return [
        {**describe(name, edition), "codes": len(rows(name, edition))}
        for name, entry in sorted(_index().items())
        for edition in entry["editions"]
    ]


def rows(name: str, edition: str) -> tuple[dict, ...]:
    """The rows of one edition (kode, nama, and what else the file has)."""
    return _rows(name, str(edition))


def _rows(name: str, edition: str, strict: bool = False) -> tuple[dict, ...]:
    path = index_path().parent / _describe(name, edition, strict)["file"]
    return _cache.get("rows", [path], lambda: _usable(*read_table(path, REQUIRED_COLUMNS, "kode")), strict=strict)


def labels(ref: dict, lang: str = "id") -> dict[str, str]:
    """Each code a standard's `x-code-list` reference admits -> its label: `nama`, or in English (`lang="en"`)
    `nama_en` where the list has one (place names have none: they are the same in both languages)."""
    rows_ = _rows(ref["name"], str(ref["edition"]))
    # Kode wilayah has 91,599 rows: the table is made once per edition, scope and language, not per page.
    key = (id(rows_), ref.get("level"), ref.get("within"), lang)
    if key not in _labels:
        if len(_labels) > 64:
            _labels.clear()
        table = {r["kode"]: (lang == "en" and r.get(ENGLISH_COLUMN)) or r["nama"] for r in _admitted(ref, rows_)}
        _labels[key] = (rows_, table)  # holding the rows keeps their id from being reused while cached
    return _labels[key][1]


_labels: dict[tuple, tuple] = {}


def crosswalks(name: str) -> dict[str, dict]:
    """The crosswalks a code list registers: "OLD->NEW" -> its file, from, to and columns (the old edition's
    code first, then the new one's)."""
    return dict(_entry(name).get("crosswalks", {}))


def crosswalk_rows(name: str, pair: str) -> tuple[dict, ...]:
    """The rows of a registered crosswalk ("2022->2025"), each a dict by the file's columns; a code that has no
    counterpart is empty."""
    entry = crosswalks(name).get(pair)
    if entry is None:
        raise ConfigError(f"code list {name!r} registers no crosswalk {pair}")
    path = index_path().parent / entry["file"]
    columns = tuple(entry["columns"])
    return _cache.get(("crosswalk", columns), [path],
                      lambda: _usable(*read_table(path, columns, columns[0], empty_key=True)))


def codes(ref: dict) -> list[str]:
    """The codes a standard's `x-code-list` reference admits, narrowed by `level` and `within`."""
    return _codes(ref)


def _codes(ref: dict, strict: bool = False) -> list[str]:
    return [r["kode"] for r in _admitted(ref, _rows(ref["name"], str(ref["edition"]), strict))]


def _admitted(ref: dict, rows_: Iterable[dict]) -> Iterator[dict]:
    """The rows of a list that a standard's reference admits: of its `level`, under its `within`."""
    level, within = ref.get("level"), ref.get("within")
    return (r for r in rows_ if (level is None or r.get(LEVEL_COLUMN) == level)
            and (within is None or r["kode"].startswith(within + ".")))


def files_of(refs: Iterable[dict]) -> list[Path]:
    """The files the code lists of `refs` (x-code-list references) are read from: the index and each edition's
    file. A reference the index does not know adds nothing: using it fails on its own."""
    files = [index_path()]
    for ref in refs:
        try:
            files.append(index_path().parent / describe(ref["name"], str(ref["edition"]))["file"])
        except ConfigError:
            pass
    return list(dict.fromkeys(files))


def known_files() -> list[Path]:
    """The index and every file the (last good) index names: editions and crosswalks."""
    folder = index_path().parent
    try:
        index = _index()
    except ConfigError:
        return [index_path()]
    named = [folder / ed["file"] for entry in index.values() for ed in entry["editions"].values()]
    named += [folder / c["file"] for entry in index.values() for c in entry.get("crosswalks", {}).values()]
    return list(dict.fromkeys([index_path(), *named]))


# --- reading and checking ---------------------------------------------------------------------------------


def _text(path: Path) -> tuple[str | None, Problem | None]:
    """The file as text; UTF-8 (a byte-order mark, as Excel writes one, is dropped), else where it is not."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, Problem(str(path), None, None, "no such file")
    except OSError as e:
        return None, Problem(str(path), None, None, f"cannot be read: {e.strerror}")
    data = data.removeprefix(codecs.BOM_UTF8)
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as e:
        before = data[:e.start]
        line_start = before.rfind(b"\n") + 1
        column = len(before[line_start:].decode("utf-8", "replace")) + 1
        return None, Problem(str(path), before.count(b"\n") + 1, column,
                             f"not UTF-8 text (byte 0x{data[e.start]:02x}): save the file as UTF-8")


def read_table(path: Path, columns: Iterable[str] = REQUIRED_COLUMNS, key: str = "kode", *,
               empty_key: bool = False) -> tuple[tuple[dict, ...], list[Problem]]:
    """The rows of a code-list CSV (each a dict by the header's names) and what is wrong with the file.

    The file is UTF-8 CSV (comma, double quotes) with a header line that has `columns`, each named once; every
    row has as many fields as the header (one more is an unquoted comma); each row's `key` holds a code, none
    twice (with `empty_key`, a row may have none: a crosswalk's new codes). Blank lines are skipped. Lines and
    columns count from 1; a column is a CSV column (the first field is column 1).
    """
    columns = tuple(columns)
    where = str(path)
    text, trouble = _text(path)
    if trouble is not None:
        return (), [trouble]
    problems: list[Problem] = []
    left_out = 0

    def problem(line: int | None, column: int | None, message: str) -> None:
        nonlocal left_out
        if len(problems) < MAX_PROBLEMS:
            problems.append(Problem(where, line, column, message))
        else:
            left_out += 1

    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as e:
        return (), [Problem(where, 1, _bad_field(text, 1), _csv_message(e))]
    if not header:
        return (), [Problem(where, 1, 1, f"no header line: a code list starts with one, e.g. {','.join(columns)}")]
    first: dict[str, int] = {}
    for i, name in enumerate(header, 1):
        if not name.strip():
            problem(1, i, "a column without a name")
        elif name != name.strip():
            problem(1, i, f"column name {name!r} has spaces around it")
        elif name in first:
            problem(1, i, f"column {name!r} twice: also column {first[name]}")
        first.setdefault(name, i)
    for wanted in columns:
        if wanted not in first:
            problem(1, min(columns.index(wanted), len(header)) + 1,
                    f"no column {wanted!r}: the header is {','.join(header)}; a code list needs {', '.join(columns)}")
    key_at = first.get(key)
    seen: dict[str, int] = {}
    found: list[dict] = []
    end = reader.line_num
    while True:
        start = end + 1
        try:
            record = next(reader, None)
        except csv.Error as e:
            problem(start, _bad_field(text, start), _csv_message(e))
            break
        if record is None:
            break
        end = reader.line_num
        if not record:
            continue  # a blank line
        if len(record) != len(header):
            if len(record) > len(header):
                problem(start, len(header) + 1, f"{len(record)} fields where the header has {len(header)}: "
                                                f"a value with a comma must be in double quotes")
            else:
                problem(start, len(record) + 1, f"{len(record)} fields where the header has {len(header)}: "
                                                f"no value for column {header[len(record)]!r}")
            continue
        if key_at is not None:
            code = record[key_at - 1]
            if not code:
                if not empty_key:
                    problem(start, key_at, f"no code in column {key!r}")
            elif code != code.strip():
                problem(start, key_at, f"code {code!r} has spaces around it")
            elif code in seen:
                problem(start, key_at, f"code {code!r} twice: also on line {seen[code]}")
            else:
                seen[code] = start
        found.append(dict(zip(header, record)))
    if left_out:
        problems.append(Problem(where, None, None, f"and {left_out} more problems like these"))
    return tuple(found), problems


def _csv_message(error: csv.Error) -> str:
    text = str(error)
    if "expected after" in text:
        return 'a quote inside a quoted value is written twice ("")'
    if "unexpected end of data" in text:
        return "a quoted value opened here is never closed"
    if "field larger than field limit" in text:
        return "a value longer than a code list's values can be (an unclosed quote?)"
    return f"not valid CSV: {text}"


def _bad_field(text: str, line: int) -> int:
    """The CSV column (from 1) of the record starting at `line` where its quoting goes wrong."""
    offset = 0
    for _ in range(line - 1):
        offset = text.find("\n", offset) + 1
    field, at_start, quoted, i = 1, True, False, offset
    while i < len(text):
        c = text[i]
        if quoted:
            if c == '"':
                if text.startswith('""', i):
                    i += 1
                else:
                    quoted = False
                    after = text[i + 1:i + 2]
                    if after not in ("", ",", "\n", "\r"):
                        return field
        elif c == '"' and at_start:
            quoted = True
        elif c == ",":
            field += 1
            at_start = True
            i += 1
            continue
        elif c in "\r\n":
            return field
        at_start = False
        i += 1
    return field


@dataclass(frozen=True)
class _Listed:
    """A file the index names, where it names it, and how it is read."""

    file: str
    line: int
    column: int
    columns: tuple[str, ...]
    key: str
    empty_key: bool


def _read_index(path: Path) -> tuple[dict, list[Problem], list[_Listed]]:
    """The index (code list -> title, owner, editions, crosswalks), what is wrong with it, and the files it names.

    Whether those files exist and read cleanly is for `check_codelists`: a missing or broken edition takes
    nothing from the others.
    """
    where = str(path)
    text, trouble = _text(path)
    if trouble is not None:
        return {}, [trouble], []
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        return {}, [Problem(where, mark.line + 1 if mark else None, mark.column + 1 if mark else None,
                            f"not valid YAML: {e.problem or e.context}")], []
    except yaml.YAMLError as e:
        return {}, [Problem(where, None, None, f"not valid YAML: {e}")], []
    problems: list[Problem] = []

    def at(node, message: str) -> None:
        problems.append(Problem(where, node.start_mark.line + 1, node.start_mark.column + 1, message))

    if root is None:
        return {}, [Problem(where, 1, 1, "empty: the index names each code list with its title, owner and editions")], []
    if not isinstance(root, yaml.MappingNode):
        at(root, "the index is a mapping: each code list's name, then its title, owner and editions")
        return {}, problems, []
    listed: list[_Listed] = []
    index: dict = {}
    for name_node, entry_node in _pairs(root, at, "code list"):
        name = name_node.value
        if not isinstance(entry_node, yaml.MappingNode):
            at(entry_node, f"code list {name!r} is a mapping with title, owner and editions")
            continue
        fields = {k.value: (k, v) for k, v in _pairs(entry_node, at, "key", f" of code list {name!r}")}
        for required in ("title", "owner"):
            if required not in fields:
                at(name_node, f"code list {name!r} has no {required}")
            elif not _text_node(fields[required][1]):
                at(fields[required][1], f"the {required} of code list {name!r} is a text")
        if "editions" not in fields:
            at(name_node, f"code list {name!r} has no editions")
            continue
        editions_node = fields["editions"][1]
        if not isinstance(editions_node, yaml.MappingNode) or not editions_node.value:
            at(editions_node, f"the editions of code list {name!r} are a mapping: edition -> its file and legal basis")
            continue
        names = set()
        for edition_node, spec in _pairs(editions_node, at, "edition", f" of code list {name!r}"):
            names.add(edition_node.value)
            file_node = _file(spec, at, f"edition {edition_node.value!r} of code list {name!r}")
            if file_node is not None:
                listed.append(_Listed(file_node.value, file_node.start_mark.line + 1, file_node.start_mark.column + 1,
                                      REQUIRED_COLUMNS, "kode", False))
        if "crosswalks" in fields:
            crosswalks = fields["crosswalks"][1]
            if not isinstance(crosswalks, yaml.MappingNode):
                at(crosswalks, f"the crosswalks of code list {name!r} are a mapping: OLD->NEW -> file, from, to, columns")
                continue
            for pair, spec in _pairs(crosswalks, at, "crosswalk", f" of code list {name!r}"):
                what = f"crosswalk {pair.value!r} of code list {name!r}"
                file_node = _file(spec, at, what)
                if file_node is None:
                    continue
                parts = {k.value: v for k, v in spec.value}
                for end in ("from", "to"):
                    if end not in parts or not _text_node(parts[end]) or parts[end].value not in names:
                        at(spec if end not in parts else parts[end], f"{what}: {end!r} is one of its editions "
                                                                     f"({', '.join(sorted(names))})")
                columns = parts.get("columns")
                values = [c.value for c in columns.value if _text_node(c)] \
                    if isinstance(columns, yaml.SequenceNode) else []
                if len(values) < 2 or len(values) != len(columns.value) or len(set(values)) != len(values):
                    at(columns or spec, f"{what}: columns is a list of two or more different column names")
                    continue
                listed.append(_Listed(file_node.value, file_node.start_mark.line + 1, file_node.start_mark.column + 1,
                                      tuple(values), values[0], True))
    if not problems:
        # The values as YAML reads them, every name as text (`1:` and `"1":` name the same edition).
        for name, entry in data.items():
            entry = dict(entry)
            entry["editions"] = {str(k): dict(v) for k, v in entry["editions"].items()}
            if "crosswalks" in entry:
                entry["crosswalks"] = {str(k): dict(v, **{"from": str(v["from"]), "to": str(v["to"])})
                                       for k, v in entry["crosswalks"].items()}
            index[str(name)] = entry
    return index, problems, listed


def _pairs(node, at, what: str, within: str = "") -> list:
    """The (key, value) nodes of a mapping node, a key without a name or seen before named as a problem."""
    seen: dict[str, int] = {}
    pairs = []
    for key, value in node.value:
        if not _text_node(key):
            at(key, f"a {what}{within} needs a name")
            continue
        if key.value in seen:
            at(key, f"{what} {key.value!r}{within} twice: also on line {seen[key.value]}")
            continue
        seen[key.value] = key.start_mark.line + 1
        pairs.append((key, value))
    return pairs


def _text_node(node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.value.strip() != ""


def _file(spec, at, what: str):
    """The node of a `file:` naming a file in the index's own folder, or None (the problem named)."""
    if not isinstance(spec, yaml.MappingNode):
        at(spec, f"{what} is a mapping with its file")
        return None
    parts = {k.value: v for k, v in spec.value if isinstance(k, yaml.ScalarNode)}
    node = parts.get("file")
    if node is None or not _text_node(node):
        at(spec if node is None else node, f"{what} has no file")
        return None
    if "/" in node.value or "\\" in node.value or node.value.startswith("."):
        at(node, f"{what}: file is the name of a file in the code lists' folder, not a path")
        return None
    return node


def check_codelists(paths: Iterable[Path | str] | None = None) -> list[Problem]:
    """What is wrong with the code lists, each problem with its file, line and column.

    Without `paths`, the index of `codelists_dir()` (its entries, editions and crosswalks, and that each file it
    names exists) and every file it names. Given files are checked as they are: an index, or a CSV file (a
    crosswalk as the index beside it describes it, any other as a code list with kode and nama).
    """
    targets = [Path(p) for p in paths] if paths else [index_path()]
    found: list[Problem] = []
    for path in targets:
        if path.suffix.lower() in (".yaml", ".yml"):
            found += _check_index(path)
        else:
            found += _check_table(path)
    return sorted(set(found), key=Problem.sort_key)


def _check_index(path: Path) -> list[Problem]:
    _, problems, listed = _read_index(path)
    checked = set()
    for f in listed:
        target = path.parent / f.file
        if not target.is_file():
            problems.append(Problem(str(path), f.line, f.column, f"no such file: {f.file}"))
        elif (target, f.columns, f.key, f.empty_key) not in checked:
            checked.add((target, f.columns, f.key, f.empty_key))
            problems += read_table(target, f.columns, f.key, empty_key=f.empty_key)[1]
    return problems


def _check_table(path: Path) -> list[Problem]:
    how = (REQUIRED_COLUMNS, "kode", False)
    index = path.parent / INDEX
    if index.is_file():
        for f in _read_index(index)[2]:
            if f.file == path.name:
                how = (f.columns, f.key, f.empty_key)
    columns, key, empty_key = how
    return read_table(path, columns, key, empty_key=empty_key)[1]


def check_references(standard) -> list[Problem]:
    """What is wrong with the code lists a standard names, as their files are now (not their last good version):
    each is in the index with that edition, reads cleanly, has a `tingkat` column where the field narrows by
    `level`, and admits at least one code."""
    problems: list[Problem] = []
    where = str(standard.path)
    for f in standard.fields:
        ref = f.code_list
        if not ref:
            continue
        label = f"field {f.name!r}: code list {ref['name']}@{ref['edition']}"
        try:
            table = _rows(ref["name"], str(ref["edition"]), strict=True)
            admitted = _codes(ref, strict=True)
        except BrokenFile as e:
            problems += e.problems
            continue
        except ConfigError as e:
            problems.append(Problem(where, None, None, f"field {f.name!r}: {e}"))
            continue
        if ref.get("level") is not None and table and LEVEL_COLUMN not in table[0]:
            problems.append(Problem(where, None, None, f"{label} has no column {LEVEL_COLUMN!r} to narrow by level"))
        elif not admitted:
            narrowed = "".join(f" {k} {ref[k]!r}" for k in ("level", "within") if ref.get(k) is not None)
            problems.append(Problem(where, None, None, f"{label} admits no code{' with' + narrowed if narrowed else ''}"))
    return problems
