"""The agency source registry: one YAML file per source, validated against source.schema.json."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from hub.errors import ConfigError

__all__ = ["DEMO_URL_VARIABLE", "MAX_REGISTRATION_BYTES", "Source", "load_source", "load_sources", "SOURCE_SCHEMA",
           # generic, also read by exchange.registry for service registrations:
           "read_yaml", "schema_message", "schema_path", "yaml_line"]

SOURCE_SCHEMA = Path(__file__).resolve().parent / "source.schema.json"
# A registration is a page of YAML; even one with a long crosswalk is a few kilobytes.
MAX_REGISTRATION_BYTES = 1 << 20
# Values of a registration counted with its aliases expanded: refuses "billion laughs" documents, whose few
# lines of anchors and aliases stand for billions of values, before anything walks them.
_MAX_YAML_VALUES = 100_000
# The base URL of the demo agencies' live systems (demo/systems.py), which `hub up --demo` and the tests start on
# a port chosen when they start: written ${HUB_DEMO_URL} at the start of an option's text. The one environment
# variable a registration may name: others may hold secrets, which a registration must never pull into options.
DEMO_URL_VARIABLE = "HUB_DEMO_URL"
_DEMO_URL = "${" + DEMO_URL_VARIABLE + "}"
# Stands in for an unset or unusable HUB_DEMO_URL while the options are checked, so that the registry still loads
# and the other sources still run; the source itself cannot run (connectors.kinds.connector_for says why).
_DEMO_URL_STAND_IN = "http://hub-demo-url.invalid"


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
    # Why the source cannot run in this process although its registration is valid: a ${HUB_DEMO_URL} it names
    # while that variable is unset or unusable. Each item is a message naming the file, line and field.
    unresolved: tuple[str, ...] = ()
    # The Airflow queue of the Edge workers inside the agency's network that read this source (its registration's
    # `runs_on: {edge_queue: NAME}`), or None when the hub reads the system itself.
    edge_queue: str | None = None

    @property
    def standard_name(self) -> str:
        return self.standard_ref.partition("@")[0]


@cache
def _validator():
    from jsonschema import Draft202012Validator

    return Draft202012Validator(json.loads(SOURCE_SCHEMA.read_text(encoding="utf-8")))


# Options where a secret, or where it is, is written: a value there may be the secret itself, written where
# only its name belongs ({env: s3cr3t}, url_env: postgresql://user:password@...), so it is never quoted.
_SECRET_PLACES = {"auth", "api_key", "url", "url_env", "connection", "env", "token", "password", "key",
                  "username", "client_id", "client_secret", "token_url"}
# jsonschema messages that name keys or limits, never the value itself.
_NAMES_NO_VALUE = {"required", "additionalProperties", "dependentRequired"}


def schema_message(error) -> str:
    """What was expected. A value matching none of a field's forms is not quoted: it may be a secret written
    where only its name belongs ({env: NAME}); the form's description says what to write instead. Nor is a
    value in a secret's place, or a whole mapping or list (options written as a list, say)."""
    if error.validator in ("oneOf", "anyOf"):
        return f"expected {error.schema.get('description') or 'one of the forms its schema allows'}"
    secret_place = bool(_SECRET_PLACES & {str(p) for p in error.absolute_path})
    if error.validator not in _NAMES_NO_VALUE and (secret_place or isinstance(error.instance, (dict, list))):
        got = {dict: "a mapping", list: "a list", str: "text", bool: "true or false", type(None): "null"}.get(
            type(error.instance), "a number")
        if error.validator == "type":
            return f"expected {error.validator_value}, got {got}"
        if error.validator == "pattern":
            return f"{got} not of the form {error.validator_value!r}"
        return f"{got} that fails {error.validator} {_cut(repr(error.validator_value), 100)}"
    message = error.message  # jsonschema quotes the value, and an object's unexpected keys
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        for key in error.instance:
            if not _is_name(key):
                message = message.replace(repr(key), "'…'")
    elif not isinstance(error.instance, (bool, type(None))) and not _is_name(error.instance):
        message = message.replace(repr(error.instance), "text" if isinstance(error.instance, str) else "a number", 1)
    return _cut(message, 300)


# What a message quotes of what a registration's author wrote: names (of fields, options, kinds) and numbers of a
# few digits, as they are. Any other value or key (a NIK, as text or as a number, a person's name, a secret written
# where it does not belong) is described, not quoted: the file and line say where it is.
_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
_SHORT_NUMBER = 6  # characters


def _is_name(value) -> bool:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return len(repr(value)) <= _SHORT_NUMBER
    return isinstance(value, str) and _NAME.fullmatch(value) is not None


def schema_path(error) -> str:
    return "/".join(str(p) if isinstance(p, int) or _is_name(p) else "…" for p in error.absolute_path) or "(top level)"


def _substitute(value, home: Path, demo_url: str | None, unresolved: list[tuple[str, ...]], where: tuple = ()):
    """`value` with ${HUB_HOME} replaced by the home, and ${HUB_DEMO_URL} at the start of a text by `demo_url` (by
    a stand-in when it is None, the option's path then added to `unresolved`)."""
    if isinstance(value, str):
        if value.startswith(_DEMO_URL):
            if demo_url is None:
                unresolved.append(where)
            value = (demo_url or _DEMO_URL_STAND_IN) + value[len(_DEMO_URL):]
        return value.replace("${HUB_HOME}", str(home))
    if isinstance(value, dict):
        return {k: _substitute(v, home, demo_url, unresolved, (*where, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, home, demo_url, unresolved, (*where, i)) for i, v in enumerate(value)]
    return value


def _demo_url() -> tuple[str | None, str | None]:
    """HUB_DEMO_URL without a trailing slash, or None and why it cannot be used. Its value is never quoted: an
    operator may have written a password in it."""
    import os
    from urllib.parse import urlsplit

    value = os.environ.get(DEMO_URL_VARIABLE, "").strip()
    if not value:
        return None, f"the environment variable {DEMO_URL_VARIABLE} is not set"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (a port that is not a number raises here)
        usable = (parts.scheme in ("http", "https") and bool(parts.hostname) and not parts.username
                  and not parts.password and not parts.query and not parts.fragment)
    except ValueError:
        usable = False
    if not usable:
        return None, (f"the environment variable {DEMO_URL_VARIABLE} is not a base URL "
                      "(http://HOST:PORT, without credentials, query or fragment)")
    return value.rstrip("/"), None


def yaml_line(node, parts: list) -> int | None:
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


def _yaml_problem(error: yaml.YAMLError) -> str:
    """What the YAML parser found and where, without the snippet of the file it quotes (a secret or personal
    data may be written on that line)."""
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        context = f" ({error.context})" if error.context else ""
        return f"{where}{error.problem}{context}"
    if isinstance(error, yaml.reader.ReaderError):
        return f"character {error.position + 1}: {error.reason} (a control character or an unpaired surrogate)"
    return type(error).__name__


def read_yaml(path: Path):
    """The registration's YAML, as data and as its composed document (for line numbers)."""
    try:
        size = path.stat().st_size
        if size > MAX_REGISTRATION_BYTES:
            raise ConfigError(f"{path}: {size} bytes, more than a registration may have "
                              f"({MAX_REGISTRATION_BYTES} bytes)")
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as e:
        raise ConfigError(f"{path}: cannot be read ({e.strerror or type(e).__name__})") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start})") from None
    try:
        loader = yaml.SafeLoader(text)  # its reader refuses control characters at once
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {_yaml_problem(e)}") from None
    try:
        document = loader.get_single_node()
        if document is None:
            return None, None
        _check_document(path, document)
        return loader.construct_document(document), document
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {_yaml_problem(e)}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid YAML: nested too deeply") from None
    finally:
        loader.dispose()


def _check_document(path: Path, document) -> None:
    """Refuse a key written twice in one mapping (YAML keeps the last silently: a field lost unseen), and a
    document whose aliases expand to more than _MAX_YAML_VALUES values."""
    sizes: dict[int, int] = {}  # node id -> values under it, aliases expanded
    stack: list[tuple[yaml.Node, bool]] = [(document, False)]
    open_nodes: set[int] = set()
    while stack:
        node, children_done = stack.pop()
        if isinstance(node, yaml.ScalarNode):
            sizes[id(node)] = 1
            continue
        children = ([n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode)
                    else list(node.value))
        if children_done:
            open_nodes.discard(id(node))
            sizes[id(node)] = 1 + sum(sizes[id(c)] for c in children)
            if sizes[id(node)] > _MAX_YAML_VALUES:
                raise ConfigError(f"{path}:{node.start_mark.line + 1}: more than {_MAX_YAML_VALUES} values once its "
                                  "aliases (*name) are expanded; write the registration out")
            continue
        if id(node) in sizes:
            continue
        if id(node) in open_nodes:
            raise ConfigError(f"{path}:{node.start_mark.line + 1}: an alias refers to a value that holds it")
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key, _ in node.value:
                if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                    if (key.tag, key.value) in seen:
                        raise ConfigError(f"{path}:{key.start_mark.line + 1}: key {_cut(key.value)!r} is written "
                                          f"twice in one mapping (first on line {seen[key.tag, key.value]})")
                    seen[key.tag, key.value] = key.start_mark.line + 1
        open_nodes.add(id(node))
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in sizes)


def _cut(text: str, limit: int = 64) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def load_source(path: Path, home: Path, data_dirs: tuple[Path, ...] | None = None) -> Source:
    """Parse and check one registration; errors name the file and line, the field and what was expected.

    Local files it names must lie in `home` or one of `data_dirs` (default: HUB_DATA_DIRS).
    """
    try:
        return _load_source(path, home, data_dirs)
    except RecursionError:  # a document nested deep enough to pass the parser still has no use
        raise ConfigError(f"{path}: nested too deeply to be a registration") from None


def _load_source(path: Path, home: Path, data_dirs: tuple[Path, ...] | None) -> Source:
    data, document = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of fields (id, title, agency, ...), got {type(data).__name__}")
    errors = sorted(_validator().iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        lines = [f"{path}:{yaml_line(document, list(e.absolute_path))}: field {schema_path(e)}: {schema_message(e)}" for e in errors]
        raise ConfigError("invalid source registration\n  " + "\n  ".join(lines))
    if path.stem != data["id"]:
        raise ConfigError(f"{path}:{yaml_line(document, ['id'])}: field id: expected the file name without .yaml ({path.stem!r}), got {data['id']!r}")
    demo_url, why = _demo_url()
    unresolved: list[tuple[str, ...]] = []
    options = _substitute(data["options"], home, demo_url, unresolved)
    source = Source(
        id=data["id"],
        title=data["title"],
        description=data.get("description", ""),
        agency_code=data["agency"]["code"],
        agency_name=data["agency"]["name"],
        standard_ref=data["standard"],
        kind=data["kind"],
        schedule=data.get("schedule"),
        options=options,
        mapping=data["mapping"],
        path=path,
        edge_queue=(data.get("runs_on") or {}).get("edge_queue"),
        unresolved=tuple(
            f"{path}:{yaml_line(document, ['options', *where])}: field {'/'.join(map(str, ['options', *where]))}: "
            f"names {_DEMO_URL}, but {why}; it is the base URL of the demo agencies' systems "
            "(`python -m demo.systems`, started by `hub up --demo`)" for where in unresolved),
    )
    connector = _check_kind_options(source, document)
    _check_local_paths(source, connector, document, home, data_dirs)
    return source


def _check_local_paths(source: Source, connector, document, home: Path, data_dirs: tuple[Path, ...] | None) -> None:
    """Every local file the options name, once `..` and symbolic links are resolved, lies in a folder the hub may
    read: its home or a folder of HUB_DATA_DIRS. A registration cannot make the hub read /etc/passwd."""
    from hub.settings import data_dirs as configured_data_dirs

    allowed = [Path(home).resolve(), *(configured_data_dirs() if data_dirs is None else
                                       tuple(Path(d).resolve() for d in data_dirs))]
    for option, named in connector.local_paths().items():
        resolved = Path(named).expanduser().resolve()
        if not any(resolved.is_relative_to(folder) for folder in allowed):
            parts = ["options", *option.split("/")]
            shown = f"{named} (which is {resolved})" if Path(named) != resolved else str(named)
            raise ConfigError(f"{source.path}:{yaml_line(document, parts)}: field {'/'.join(parts)}: {shown} is outside "
                              f"the folders the hub may read ({', '.join(map(str, allowed))}); put the file under "
                              "HUB_HOME or add its folder to HUB_DATA_DIRS")


def _check_kind_options(source: Source, document):
    """The kind's own options schema, then its constructor, which refuses what the schema cannot say."""
    from jsonschema import Draft202012Validator

    from connectors.kinds import kind_class

    try:
        cls = kind_class(source.kind)
    except ConfigError as e:
        raise ConfigError(f"{source.path}:{yaml_line(document, ['kind'])}: field kind: {e}") from None
    errors = sorted(Draft202012Validator(cls.options_schema).iter_errors(source.options),
                    key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        e = errors[0]
        parts = ["options", *e.absolute_path]
        where = "/".join(str(p) for p in parts)
        raise ConfigError(f"{source.path}:{yaml_line(document, parts)}: field {where}: {schema_message(e)} (kind {source.kind})")
    try:
        return cls(source)  # constructors only check options; they never connect
    except ConfigError:
        raise
    except Exception as e:  # a kind's own parsing of an option failed; its message may quote a secret
        raise ConfigError(f"{source.path}: field options: the {source.kind} kind cannot use these options "
                          f"({type(e).__name__}); see docs/connectors.md") from None


def load_sources(registry: Path, home: Path, data_dirs: tuple[Path, ...] | None = None) -> list[Source]:
    """Every registration in the folder, sorted by id."""
    if not registry.is_dir():
        raise ConfigError(f"source registry folder {registry} does not exist (set HUB_REGISTRY)")
    return [load_source(p, home, data_dirs) for p in sorted(registry.glob("*.yaml"))]
