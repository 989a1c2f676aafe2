"""The agency source registry: one YAML file per source, validated against source.schema.json."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from hub.errors import ConfigError

__all__ = ["Source", "load_source", "load_sources", "SOURCE_SCHEMA"]

SOURCE_SCHEMA = Path(__file__).resolve().parent / "source.schema.json"


@dataclass(frozen=True, eq=False)
class Source:
    id: str
    title: str
    description: str
    agency_code: str
    agency_name: str
    standard_ref: str
    kind: str
    schedule: str | None
    options: dict
    mapping: dict
    path: Path

    @property
    def standard_name(self) -> str:
        return self.standard_ref.partition("@")[0]


@cache
def _validator():
    from jsonschema import Draft202012Validator

    return Draft202012Validator(json.loads(SOURCE_SCHEMA.read_text(encoding="utf-8")))


def _message(error) -> str:
    """What was expected. A value matching none of a field's forms is not quoted: it may be a secret written
    where only its name belongs ({env: NAME}); the form's description says what to write instead."""
    if error.validator in ("oneOf", "anyOf"):
        return f"expected {error.schema.get('description') or 'one of the forms its schema allows'}"
    return error.message


def _where(error) -> str:
    return "/".join(str(p) for p in error.absolute_path) or "(top level)"


def _substitute(value, home: Path):
    if isinstance(value, str):
        return value.replace("${HUB_HOME}", str(home))
    if isinstance(value, dict):
        return {k: _substitute(v, home) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, home) for v in value]
    return value


def _line(node, parts: list) -> int | None:
    """The line (from 1) where a field of a composed YAML document is written, or its nearest parent."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in parts:
        if isinstance(node, yaml.MappingNode):
            found = [value for key, value in node.value if key.value == str(part)]
            node = found[0] if found else None
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            node = None
        if node is None:
            break
        line = node.start_mark.line + 1
    return line


def load_source(path: Path, home: Path) -> Source:
    """Parse and check one registration; errors name the file and line, the field and what was expected."""
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of fields (id, title, agency, ...), got {type(data).__name__}")
    document = yaml.compose(text)
    errors = sorted(_validator().iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"{path}:{_line(document, list(e.absolute_path))}: field {_where(e)}: {_message(e)}" for e in errors]
        raise ConfigError("invalid source registration\n  " + "\n  ".join(lines))
    if path.stem != data["id"]:
        raise ConfigError(f"{path}:{_line(document, ['id'])}: field id: expected the file name without .yaml ({path.stem!r}), got {data['id']!r}")
    source = Source(
        id=data["id"],
        title=data["title"],
        description=data.get("description", ""),
        agency_code=data["agency"]["code"],
        agency_name=data["agency"]["name"],
        standard_ref=data["standard"],
        kind=data["kind"],
        schedule=data.get("schedule"),
        options=_substitute(data["options"], home),
        mapping=data["mapping"],
        path=path,
    )
    _check_kind_options(source, document)
    return source


def _check_kind_options(source: Source, document) -> None:
    """The kind's own options schema, then its constructor, which refuses what the schema cannot say."""
    from jsonschema import Draft202012Validator

    from connectors.kinds import kind_class

    try:
        cls = kind_class(source.kind)
    except ConfigError as e:
        raise ConfigError(f"{source.path}:{_line(document, ['kind'])}: field kind: {e}") from None
    errors = sorted(Draft202012Validator(cls.options_schema).iter_errors(source.options), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        parts = ["options", *e.absolute_path]
        where = "/".join(str(p) for p in parts)
        raise ConfigError(f"{source.path}:{_line(document, parts)}: field {where}: {_message(e)} (kind {source.kind})")
    cls(source)  # constructors only check options; they never connect


def load_sources(registry: Path, home: Path) -> list[Source]:
    """Every registration in the folder, sorted by id."""
    if not registry.is_dir():
        raise ConfigError(f"source registry folder {registry} does not exist (set HUB_REGISTRY)")
    return [load_source(p, home) for p in sorted(registry.glob("*.yaml"))]
