"""Load data standards (JSON Schema 2020-12 files) into typed field descriptions."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field as dataclass_field
from pathlib import Path

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from hub.errors import ConfigError
from hub.followed import BrokenFile, Followed, Problem, problems
from hub.suggest import nearest
from schemas.retention import check_retention

__all__ = [
    "ACCESS_ROLES", "CLASSIFICATIONS", "FREQUENCIES", "PERSONAL_DATA", "STANDARDS_DIR",
    "Field", "Standard", "files_of", "list_standards", "load_problems", "load_standard", "load_standard_file",
    "standards_dir",
]

STANDARDS_DIR = Path(__file__).resolve().parent / "standards"  # the standards this checkout ships


def standards_dir() -> Path:
    """The folder of standards the hub follows: HUB_STANDARDS if set (a walidata's own repository of
    standards, say), else the checkout's `schemas/standards`."""
    return Path(os.environ.get("HUB_STANDARDS") or STANDARDS_DIR).resolve()

# JSON Schema's annotations for the people reading a standard (a note, sample values): valid at the top level and
# in a field, never rules: no check is compiled from them.
_ANNOTATIONS = {"$comment", "examples"}
# Keywords the hub enforces or that only document; anything else is refused so nothing is silently ignored.
# docs/standards.md explains each one.
_FIELD_KEYWORDS = {
    *_ANNOTATIONS, "title", "description", "type", "enum", "const", "pattern", "format", "minLength", "maxLength",
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
    "x-title-en", "x-description-en", "x-concept", "x-code-list", "x-personal-data", "x-classification", "x-unit",
}
_STANDARD_KEYWORDS = {
    *_ANNOTATIONS, "$schema", "$id", "title", "description", "type", "required", "properties", "additionalProperties",
    "x-name", "x-version", "x-title-en", "x-description-en", "x-primary-key", "x-classification",
    "x-walidata", "x-produsen-data", "x-frequency", "x-spatial-coverage", "x-temporal-coverage", "x-license",
    "x-tags", "x-access", "x-retention", "x-spatial-coverage-en", "x-temporal-coverage-en",
}
# Satu Data Indonesia metadata every standard carries.
_REQUIRED_METADATA = (
    "x-walidata", "x-produsen-data", "x-frequency", "x-spatial-coverage", "x-temporal-coverage", "x-license",
    "x-classification",
)
CLASSIFICATIONS = ("publik", "terbatas", "rahasia")
# The roles a standard's x-access may name (an agency is named by its code in "agencies" instead).
ACCESS_ROLES = ("steward", "analyst")
FREQUENCIES = ("harian", "mingguan", "bulanan", "triwulanan", "semesteran", "tahunan", "tidak_tetap")
PERSONAL_DATA = ("nik", "name", "address", "phone", "birth_date", "email")
_TYPES = {"string", "integer", "number", "boolean"}
_FORMATS = {"date", "date-time", "email"}
_FILE_NAME = re.compile(r"^(?P<name>[a-z][a-z0-9_]*)-(?P<version>\d+\.\d+\.\d+)\.json$")
# A standard is a page of JSON per field; the largest here is a few tens of kilobytes.
MAX_STANDARD_BYTES = 1 << 20
_TEXT = {"type": "string"}
_TEXTS = {"type": "array", "items": _TEXT}
_ANNOTATION_SHAPES = {"$comment": _TEXT, "examples": {"type": "array"}}
# The JSON types of the keywords the hub reads itself (JSON Schema's own keywords are checked by jsonschema's
# metaschema, per field): a value of another type is a steward's mistake, named, never a crash.
_SHAPE = {
    "type": "object",
    "properties": {
        **{key: _TEXT for key in ("$schema", "$id", "title", "description", "x-name", "x-version", "x-title-en",
                                  "x-description-en", "x-walidata", "x-spatial-coverage", "x-temporal-coverage",
                                  "x-spatial-coverage-en", "x-temporal-coverage-en", "x-license", "x-frequency",
                                  "x-classification")},
        **_ANNOTATION_SHAPES,
        "x-produsen-data": {"anyOf": [_TEXT, _TEXTS]},
        "required": _TEXTS, "x-primary-key": _TEXTS, "x-tags": _TEXTS,
        "properties": {"type": "object", "additionalProperties": {
            "type": "object",
            "properties": {
                **{key: _TEXT for key in ("title", "description", "format", "x-title-en", "x-description-en",
                                          "x-concept", "x-unit", "x-personal-data", "x-classification")},
                **_ANNOTATION_SHAPES,
                "type": {"anyOf": [_TEXT, _TEXTS]},
                "x-code-list": {"type": "object", "required": ["name", "edition"], "additionalProperties": False,
                                "properties": {"name": _TEXT, "edition": _TEXT, "level": _TEXT, "within": _TEXT}},
            },
        }},
    },
}


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    title: str
    description: str
    required: bool
    nullable: bool
    format: str | None = None
    personal_data: str | None = None
    code_list: dict | None = None
    constraints: dict = dataclass_field(default_factory=dict)
    title_en: str = ""
    description_en: str = ""
    concept: str = ""
    unit: str | None = None
    classification: str | None = None  # stricter than the dataset's, where set


@dataclass(frozen=True)
class Standard:
    name: str
    version: str
    title: str
    description: str
    classification: str
    primary_key: tuple[str, ...]
    fields: tuple[Field, ...]
    path: Path
    schema: dict
    # Who is cleared for the data: its `rahasia` datasets and fields, and personal data unmasked.
    access_agencies: frozenset[str] = frozenset()
    access_roles: frozenset[str] = frozenset()

    @property
    def metadata(self) -> dict:
        """The Satu Data metadata: walidata, produsen data, frequency, coverage, licence, classification."""
        return {key.removeprefix("x-"): self.schema[key] for key in _REQUIRED_METADATA}

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)


# Standards and the folder's list of files, each read again when its file changes (hub.followed): a running
# process sees a standard added, changed or removed on its next call, and keeps the last good version of a file
# that breaks.
_cache = Followed("standard")


def _files(directory: Path) -> tuple[Path, ...]:
    """The folder's standard files; listed again only when the folder changes (a file added or removed)."""
    return _cache.get("folder", [directory], lambda: tuple(sorted(directory.glob("*.json"))))


def _scan(directory: Path) -> tuple[list[Standard], dict[Path, ConfigError]]:
    """The folder's standards (each file's last good version), and the files never read well in this process."""
    if not directory.is_dir():
        return [], {}
    good, broken = [], {}
    for path in _files(directory):
        try:
            good.append(_cache.get("file", [path], lambda path=path: _load_file(path)))
        except ConfigError as e:
            broken[path] = e
    return good, broken


def list_standards(directory: Path | None = None) -> list[Standard]:
    """Every standard of the folder (default: `standards_dir()`). A file this process never read well is passed
    over, so one bad file takes nothing from the others: `load_standard` names its problem when it is asked for,
    and `load_problems` lists it."""
    return _scan(directory or standards_dir())[0]


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def load_standard(ref: str, directory: Path | None = None) -> Standard:
    """Load `name` (newest version) or `name@version`.

    A file changed into something broken keeps its last good version in this process. A file never read well
    raises its problem (a BrokenFile) when it is the version asked for, or newer than every good one.
    """
    name, _, version = ref.partition("@")
    good, broken = _scan(directory or standards_dir())
    candidates = [s for s in good if s.name == name and (not version or s.version == version)]
    best = max(candidates, key=lambda s: _version_key(s.version), default=None)
    for path, error in sorted(broken.items()):
        match = _FILE_NAME.match(path.name)
        if not match or match["name"] != name or (version and match["version"] != version):
            continue
        if best is None or _version_key(match["version"]) > _version_key(best.version):
            raise error
    if best is None:
        known = ", ".join(sorted({s.ref for s in good})) or "none"
        raise ConfigError(f"unknown standard {ref!r}; known standards: {known}")
    return best


def load_standard_file(path: Path) -> Standard:
    """Load and check one standard file as it is now, wherever it is (a steward's draft, say), with the code
    lists it names (schemas.codelists.check_references): what `hub standards check` runs."""
    from schemas.codelists import check_references

    if not path.is_file():
        raise ConfigError(f"{path}: no such standard file")
    path = path.resolve()
    standard = _cache.get("file", [path], lambda: _load_file(path), strict=True)
    found = check_references(standard)
    if found:
        raise BrokenFile(found)
    return standard


def files_of(standard: Standard) -> list[Path]:
    """The files a standard's meaning is read from: its own, and the code lists it names (index and editions).
    A cache of something made from a standard (its suite, its data dictionary) follows these."""
    from schemas.codelists import files_of as codelist_files

    return [standard.path, *codelist_files(f.code_list for f in standard.fields if f.code_list)]


def load_problems(standard: Standard | None = None) -> list[Problem]:
    """The standard and code-list files this process cannot use as they are now, each problem with its file, line,
    column and message; the last good version of each stays in use meanwhile.

    Without `standard`: every file of the standards folder and of the code lists the standards name (each read
    now if it changed). With it: the files of that standard's versions and of the code lists it names.
    """
    from schemas.codelists import known_files, rows

    directory = standards_dir()
    for s in [standard] if standard is not None else _scan(directory)[0]:
        for f in s.fields:
            if f.code_list:
                try:
                    rows(f.code_list["name"], f.code_list["edition"])  # read now if changed: its problem on record
                except ConfigError:
                    pass
    if standard is None:
        return problems([*_files(directory), *known_files()]) if directory.is_dir() else problems(known_files())
    own = [p for p in (_files(directory) if directory.is_dir() else ())
           if (m := _FILE_NAME.match(p.name)) and m["name"] == standard.name]
    return problems([*own, *files_of(standard)])


def _read(path: Path, where: str) -> dict:
    """The standard's JSON object; anything else (too big, not UTF-8, not JSON, not an object) is refused."""
    size = path.stat().st_size
    if size > MAX_STANDARD_BYTES:
        raise ConfigError(f"{where}: {size} bytes, more than a standard may have ({MAX_STANDARD_BYTES} bytes)")
    data = path.read_bytes()
    try:
        schema = json.loads(data.decode("utf-8"), parse_constant=_not_json)
    except UnicodeDecodeError as e:
        before = data[:e.start]
        column = len(before[before.rfind(b"\n") + 1:].decode("utf-8", "replace")) + 1
        raise BrokenFile([Problem(str(path), before.count(b"\n") + 1, column,
                                  f"not UTF-8 text (byte {e.start})")]) from None
    except json.JSONDecodeError as e:
        raise BrokenFile([Problem(str(path), e.lineno, e.colno, f"not valid JSON: {e.msg}")]) from None
    except ValueError as e:  # NaN or Infinity, or an integer of thousands of digits
        raise ConfigError(f"{where}: not valid JSON: {str(e)[:120]}") from None
    except RecursionError:
        raise ConfigError(f"{where}: not valid JSON: nested too deeply") from None
    if not isinstance(schema, dict):
        raise ConfigError(f"{where}: a standard is a JSON object, not {type(schema).__name__}")
    try:
        shape_errors = sorted(Draft202012Validator(_SHAPE).iter_errors(schema), key=lambda e: [str(p) for p in e.path])
    except RecursionError:
        raise ConfigError(f"{where}: nested too deeply to be a standard") from None
    if shape_errors:
        e = shape_errors[0]
        at = "/".join(map(str, e.absolute_path)) or "the top level"
        raise ConfigError(f"{where}: at {at}: {_short(e.message)}")
    return schema


def _not_json(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _load_file(path: Path) -> Standard:
    where = path.name
    match = _FILE_NAME.match(path.name)
    if not match:
        raise ConfigError(f"{where}: a standard's file is named NAME-MAJOR.MINOR.PATCH.json")
    try:
        return _standard(path, where, match)
    except RecursionError:  # a field's rules nested past the stack: no steward writes that
        raise ConfigError(f"{where}: nested too deeply to be a standard") from None
    except OSError as e:  # removed or made unreadable since it was listed
        raise ConfigError(f"{where}: cannot be read: {e.strerror}") from None


def _standard(path: Path, where: str, match) -> Standard:
    schema = _read(path, where)
    for key in schema:
        if key not in _STANDARD_KEYWORDS:
            raise ConfigError(f"{where}: keyword {key!r} is not supported at the top level of a standard"
                              + _did_you_mean(key, _STANDARD_KEYWORDS))
    if schema.get("x-name") != match["name"] or schema.get("x-version") != match["version"]:
        raise ConfigError(f"{where}: x-name and x-version must match the file name")
    for key in ("title", "description", *_REQUIRED_METADATA):
        if not schema.get(key):
            raise ConfigError(f"{where}: keyword {key!r} is required (Satu Data metadata of the standard)")
    _one_of(where, "x-classification", schema["x-classification"], CLASSIFICATIONS)
    _one_of(where, "x-frequency", schema["x-frequency"], FREQUENCIES)
    if schema.get("type") != "object" or schema.get("additionalProperties") is not False:
        raise ConfigError(f'{where}: a standard is "type": "object" with "additionalProperties": false')
    agencies, roles = _access(where, schema.get("x-access", {}))
    check_retention(schema, where)  # applied by hub/maintenance.py; a malformed one is refused here
    required = set(schema.get("required", []))
    properties = schema.get("properties") or {}
    fields = tuple(_field(where, name, spec, name in required) for name, spec in properties.items())
    primary_key = tuple(schema.get("x-primary-key", []))
    for key in primary_key:
        if key not in properties or key not in required:
            raise ConfigError(f"{where}: primary key field {key!r} must be a required property")
    return Standard(
        name=match["name"],
        version=match["version"],
        title=schema.get("title", match["name"]),
        description=schema.get("description", ""),
        classification=schema["x-classification"],
        primary_key=primary_key,
        fields=fields,
        path=path,
        schema=schema,
        access_agencies=agencies,
        access_roles=roles,
    )


def _access(where: str, access) -> tuple[frozenset[str], frozenset[str]]:
    """The agencies (by code) and roles an `x-access` object clears: `{"agencies": [...], "roles": [...]}`."""
    if not isinstance(access, dict) or set(access) - {"agencies", "roles"}:
        raise ConfigError(f'{where}: x-access is an object with "agencies" (agency codes) and "roles" ({", ".join(ACCESS_ROLES)})')
    agencies, roles = access.get("agencies", []), access.get("roles", [])
    if not isinstance(agencies, list) or not all(isinstance(a, str) and re.fullmatch(r"[a-z][a-z0-9_]{0,63}", a) for a in agencies):
        raise ConfigError(f"{where}: x-access agencies is a list of agency codes (lower case letters, digits, _)")
    if not isinstance(roles, list) or not all(r in ACCESS_ROLES for r in roles):
        raise ConfigError(f"{where}: x-access roles is a list of roles from {', '.join(ACCESS_ROLES)}")
    return frozenset(agencies), frozenset(roles)


def _did_you_mean(keyword: str, known: set[str]) -> str:
    found = nearest(keyword, sorted(known))
    return f"; did you mean {found[0]!r}?" if found else ""


def _one_of(where: str, keyword: str, value, allowed: tuple) -> None:
    if value not in allowed:
        raise ConfigError(f"{where}: keyword {keyword!r} is {value!r}; expected one of {', '.join(allowed)}")


def _field(where: str, name: str, spec: dict, required: bool) -> Field:
    for key in spec:
        if key not in _FIELD_KEYWORDS:
            raise ConfigError(f"{where}: field {name!r} uses keyword {key!r}, which the hub does not enforce"
                              + _did_you_mean(key, _FIELD_KEYWORDS))
    for key in ("title", "description"):
        if not spec.get(key):
            raise ConfigError(f"{where}: field {name!r} needs a {key}")
    types = spec.get("type")
    types = [types] if isinstance(types, str) else list(types or [])
    nullable = "null" in types
    types = [t for t in types if t != "null"]
    if len(types) != 1 or types[0] not in _TYPES:
        raise ConfigError(f"{where}: field {name!r} needs one type of {sorted(_TYPES)} (optionally with null)")
    if nullable and required:
        # A null counts as absent, so a required field that allows null would contradict itself.
        raise ConfigError(f"{where}: field {name!r} is required but its type allows null; "
                          "drop \"null\" from its type or remove it from required")
    fmt = spec.get("format")
    if fmt is not None and fmt not in _FORMATS:
        raise ConfigError(f"{where}: field {name!r} uses format {fmt!r}; supported: {sorted(_FORMATS)}")
    # The keywords' own values as JSON Schema allows them (a number for minimum, a positive multipleOf, a
    # pattern Python's re compiles, as jsonschema uses it): a bad one would fail every record at run time.
    rules = {k: v for k, v in spec.items() if not k.startswith("x-")}
    try:
        Draft202012Validator.check_schema(rules)
    except SchemaError as e:
        at = "/".join(map(str, e.path)) or "the field"
        raise ConfigError(f"{where}: field {name!r}: {_short(e.message)} (at {at})") from None
    lows = [spec[k] for k in ("minimum", "exclusiveMinimum") if k in spec]
    highs = [spec[k] for k in ("maximum", "exclusiveMaximum") if k in spec]
    if lows and highs and max(lows) > min(highs):
        raise ConfigError(f"{where}: field {name!r} has a lower bound above its upper bound: no value fits")
    if "x-personal-data" in spec:
        _one_of(f"{where}: field {name!r}", "x-personal-data", spec["x-personal-data"], PERSONAL_DATA)
    if "x-classification" in spec:
        _one_of(f"{where}: field {name!r}", "x-classification", spec["x-classification"], CLASSIFICATIONS)
    constraints = {k: v for k, v in spec.items()
                   if k not in {"title", "description", "type", "format", *_ANNOTATIONS} and not k.startswith("x-")}
    return Field(
        name=name,
        type=types[0],
        title=spec["title"],
        description=spec["description"],
        required=required,
        nullable=nullable,
        format=fmt,
        personal_data=spec.get("x-personal-data"),
        code_list=spec.get("x-code-list"),
        constraints=constraints,
        title_en=spec.get("x-title-en", ""),
        description_en=spec.get("x-description-en", ""),
        concept=spec.get("x-concept", ""),
        unit=spec.get("x-unit"),
        classification=spec.get("x-classification"),
    )
