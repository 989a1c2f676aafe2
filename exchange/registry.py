"""The services registry: one YAML file per exchange service, validated against service.schema.json."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from connectors.registry import SOURCE_SCHEMA, read_yaml, schema_message, schema_path, yaml_line
from exchange.identifiers import METADATA_SERVICES, IdentifierError, ServiceId
from hub.errors import ConfigError
from hub.followed import Followed

__all__ = ["SERVICE_SCHEMA", "ChangeFeed", "DatasetLookup", "ProxyTarget", "Service", "current_services",
           "load_service", "load_services"]

SERVICE_SCHEMA = Path(__file__).resolve().parent / "service.schema.json"
DEFAULT_MAX_ROWS = 100
DEFAULT_TIMEOUT_SECONDS = 10.0
DEFAULT_BREAKER_FAILURES = 5
DEFAULT_BREAKER_COOLDOWN_SECONDS = 30.0
# A proxy's `auth` is the connectors' own AUTH definition (connectors.http), never a copy: its $id here.
_AUTH_SCHEMA_ID = "https://data.kotabogor.go.id/schemas/http-auth.schema.json"


@dataclass(frozen=True)
class DatasetLookup:
    """How a dataset service is asked: by the standard's primary key (`key`), by `filters`, or both."""

    dataset: str  # the provider's harmonized dataset: one of its source registrations' ids
    key: str | None  # the primary key field when lookups by key are open
    filters: tuple[str, ...]
    fields: tuple[str, ...]  # what an answer may hold
    max_rows: int


@dataclass(frozen=True)
class ChangeFeed:
    """What a changes service feeds: the record-level changes of the provider's dataset, by its standard's key."""

    dataset: str  # the provider's harmonized dataset: one of its source registrations' ids
    key: tuple[str, ...]  # the standard's primary key: every change names its record by it
    fields: tuple[str, ...]  # what a changed record may hold


@dataclass(frozen=True)
class ProxyTarget:
    """Where a proxied service's calls go and how the provider's answers map to the standard."""

    base_url: str
    openapi: str  # an absolute path beside the registration, or an http(s) URL
    mapping: dict
    timeout_seconds: float
    records: str | None = None  # dotted path of the list of records in an answer; None: the answer is one record
    auth: dict | None = None  # connectors.http.AUTH: the provider's own credential, its secrets named
    breaker_failures: int = DEFAULT_BREAKER_FAILURES  # failed calls in a row that open the circuit
    breaker_cooldown_seconds: float = DEFAULT_BREAKER_COOLDOWN_SECONDS
    # Why base_url cannot be used in this process although the registration is valid: it names ${HUB_DEMO_URL}
    # while that variable is unset or unusable (as a source's `unresolved`). Calls are refused meanwhile.
    unresolved: str | None = None


@dataclass(frozen=True, eq=False)
class Service:
    id: ServiceId
    title: str
    description: str
    provider_name: str
    kind: str  # dataset | proxy | changes
    standard_ref: str  # what its answers are shaped by
    # The fields of the standard marked x-personal-data that a call may answer or be asked with. Not empty: the
    # service returns personal data, and every call must say why (X-Road-Issue; UU 27/2022's purpose limitation).
    personal_data: tuple[str, ...]
    rate_limit: tuple[int, float] | None  # (requests, seconds) per consumer subsystem
    path: Path
    dataset: DatasetLookup | None = None
    proxy: ProxyTarget | None = None
    changes: ChangeFeed | None = None

    @property
    def requires_issue(self) -> bool:
        return bool(self.personal_data)


@cache
def _validator():
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    from connectors.http import AUTH

    source_schema = json.loads(SOURCE_SCHEMA.read_text(encoding="utf-8"))
    # The mapping is the connectors' own definition ($ref to source.schema.json), never a copy of it; so is auth.
    auth_schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": _AUTH_SCHEMA_ID, **AUTH}
    registry = Registry().with_resources([(source_schema["$id"], Resource.from_contents(source_schema)),
                                          (_AUTH_SCHEMA_ID, Resource.from_contents(auth_schema))])
    return Draft202012Validator(json.loads(SERVICE_SCHEMA.read_text(encoding="utf-8")), registry=registry)


def _message(error, data: dict) -> str:
    if error.validator == "not" and error.validator_value == {}:  # the other kind's block (`proxy:` in a dataset)
        return f"not a field of a {data.get('kind')} service"
    return schema_message(error)


class _Problems:
    """Errors of one registration, each `FILE:LINE: field FIELD: what is wrong`."""

    def __init__(self, path: Path, document) -> None:
        self.path, self.document = path, document

    def error(self, parts: list, text: str) -> ConfigError:
        field = "/".join(map(str, parts)) or "(top level)"
        return ConfigError(f"{self.path}:{yaml_line(self.document, parts)}: field {field}: {text}")


def load_service(path: Path, settings) -> Service:
    """Parse and check one service registration; errors name the file, the line, the field and what was expected.

    A dataset service's dataset is looked up in the source registry (`settings.registry`), and both kinds'
    standards in the standards folder: what the service returns, and whether that is personal data, is derived
    from them rather than declared again.
    """
    try:
        return _load_service(Path(path), settings)
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to be a service registration") from None


def _load_service(path: Path, settings) -> Service:
    data, document = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of fields (service, title, provider, kind, ...), "
                          f"got {type(data).__name__}")
    errors = sorted(_validator().iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        lines = [f"{path}:{yaml_line(document, list(e.absolute_path))}: field {schema_path(e)}: {_message(e, data)}"
                 for e in errors]
        raise ConfigError("invalid service registration\n  " + "\n  ".join(lines))
    problems = _Problems(path, document)
    try:
        service_id = ServiceId.parse(data["service"])
    except IdentifierError as e:
        raise problems.error(["service"], str(e)) from None
    if service_id.service_code in METADATA_SERVICES:
        raise problems.error(["service"], f"{service_id.service_code} is the name of a metadata service the hub "
                                          f"answers itself ({', '.join(METADATA_SERVICES)}); choose another")
    rate = data.get("rate_limit")
    common = dict(id=service_id, title=data["title"], description=data.get("description", ""),
                  provider_name=data["provider"], kind=data["kind"], path=path,
                  rate_limit=(rate["requests"], float(rate["seconds"])) if rate else None)
    if data["kind"] == "dataset":
        return _dataset_service(problems, data["dataset"], service_id, settings, common)
    if data["kind"] == "changes":
        return _changes_service(problems, data["changes"], service_id, settings, common)
    return _proxy_service(problems, data["proxy"], common)


def _standard(problems: _Problems, parts: list, ref: str):
    from schemas import load_standard

    try:
        return load_standard(ref)
    except ConfigError as e:
        raise problems.error(parts, f"standard {ref}: {e}") from None


def _unknown_fields(problems: _Problems, parts: list, names, standard) -> None:
    known = {f.name for f in standard.fields}
    for i, name in enumerate(names):
        if name not in known:
            raise problems.error([*parts, i] if isinstance(names, list) else [*parts, name],
                                 f"{name!r} is not a field of standard {standard.ref}")


def _mapping_steps(problems: _Problems, mapping: dict, standard) -> None:
    """Each field's steps can run: a normalizer and its options that exist, a region scope that is a region, ..."""
    from transforms.mapping import StepError, check_steps

    for name, spec in mapping.items():
        try:
            check_steps(spec, standard.field(name))
        except StepError as e:
            raise problems.error(["proxy", "mapping", name, e.step], str(e)) from None


def _own_dataset(problems: _Problems, kind: str, block: dict, service_id: ServiceId, settings):
    """The source registration a dataset or changes service answers from: one of its provider agency's own."""
    from connectors.registry import load_source

    source_file = Path(settings.registry) / f"{block['id']}.yaml"
    if not source_file.is_file():
        raise problems.error([kind, "id"], f"no source registration {block['id']!r} in {settings.registry}: a {kind} "
                                           "service answers from its provider's own harmonized dataset")
    try:
        source = load_source(source_file, settings.home, settings.data_dirs)
    except ConfigError as e:
        raise problems.error([kind, "id"], f"its source registration does not load: {e}") from None
    if source.agency_code != service_id.member_code:
        raise problems.error([kind, "id"], f"{source.id} is agency {source.agency_code}'s dataset, and the "
                                           f"service's provider (its member code) is {service_id.member_code}: "
                                           "an agency offers its own data only")
    return source


def _dataset_service(problems: _Problems, block: dict, service_id: ServiceId, settings, common: dict) -> Service:
    source = _own_dataset(problems, "dataset", block, service_id, settings)
    standard = _standard(problems, ["dataset", "id"], source.standard_ref)
    fields, filters = list(block["fields"]), list(block.get("filters", []))
    _unknown_fields(problems, ["dataset", "fields"], fields, standard)
    _unknown_fields(problems, ["dataset", "filters"], filters, standard)
    key = None
    if block.get("by_key"):
        if len(standard.primary_key) != 1:
            raise problems.error(["dataset", "by_key"], f"standard {standard.ref} has no primary key of one field "
                                                         f"({', '.join(standard.primary_key) or 'none'}); use filters")
        key = standard.primary_key[0]
    asked_or_answered = {*fields, *filters, *([key] if key else [])}
    personal = tuple(f.name for f in standard.fields if f.personal_data and f.name in asked_or_answered)
    lookup = DatasetLookup(dataset=source.id, key=key, filters=tuple(filters), fields=tuple(fields),
                           max_rows=block.get("max_rows", DEFAULT_MAX_ROWS))
    return Service(**common, standard_ref=standard.ref, personal_data=personal, dataset=lookup)


def _changes_service(problems: _Problems, block: dict, service_id: ServiceId, settings, common: dict) -> Service:
    """A changes service: the provider's own dataset, whose standard must have a primary key (a change names its
    record by it). The key is always sent, so it counts among the personal data the service returns."""
    source = _own_dataset(problems, "changes", block, service_id, settings)
    standard = _standard(problems, ["changes", "id"], source.standard_ref)
    if not standard.primary_key:
        raise problems.error(["changes", "id"], f"standard {standard.ref} declares no primary key (x-primary-key): "
                                                "its records cannot be followed from version to version, so "
                                                f"{source.id} has no changes to feed")
    fields = list(block["fields"])
    _unknown_fields(problems, ["changes", "fields"], fields, standard)
    sent = {*fields, *standard.primary_key}
    personal = tuple(f.name for f in standard.fields if f.personal_data and f.name in sent)
    feed = ChangeFeed(dataset=source.id, key=tuple(standard.primary_key), fields=tuple(fields))
    return Service(**common, standard_ref=standard.ref, personal_data=personal, changes=feed)


def _proxy_service(problems: _Problems, block: dict, common: dict) -> Service:
    standard = _standard(problems, ["proxy", "standard"], block["standard"])
    _unknown_fields(problems, ["proxy", "mapping"], block["mapping"], standard)
    _mapping_steps(problems, block["mapping"], standard)
    openapi = _openapi(problems, block["openapi"])
    personal = tuple(f.name for f in standard.fields if f.personal_data and f.name in block["mapping"])
    base_url, unresolved = _base_url(problems, block["base_url"])
    breaker = block.get("circuit_breaker", {})
    target = ProxyTarget(base_url=base_url, openapi=openapi, mapping=block["mapping"],
                         timeout_seconds=float(block.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS)),
                         records=block.get("records") or None, auth=block.get("auth"),
                         breaker_failures=breaker.get("failures", DEFAULT_BREAKER_FAILURES),
                         breaker_cooldown_seconds=float(breaker.get("cooldown_seconds",
                                                                    DEFAULT_BREAKER_COOLDOWN_SECONDS)),
                         unresolved=unresolved)
    return Service(**common, standard_ref=standard.ref, personal_data=personal, proxy=target)


def _base_url(problems: _Problems, written: str) -> tuple[str, str | None]:
    """The base URL without its trailing slash, ${HUB_DEMO_URL} at its start replaced as in source registrations
    (connectors.registry): when that variable is unset or unusable, the registration still loads, and the reason
    is returned for the calls to be refused with (the value of the variable is never quoted)."""
    from connectors.registry import DEMO_URL_VARIABLE, _demo_url

    placeholder = "${" + DEMO_URL_VARIABLE + "}"
    if not written.startswith(placeholder):
        return written.rstrip("/"), None
    demo_url, why = _demo_url()
    if demo_url is None:
        where = f"{problems.path}:{yaml_line(problems.document, ['proxy', 'base_url'])}"
        return written.rstrip("/"), f"{where}: field proxy/base_url: names {placeholder}, but {why}"
    return (demo_url + written[len(placeholder):]).rstrip("/"), None


def _openapi(problems: _Problems, where: str) -> str:
    """An http(s) URL as written (fetched when a consumer asks for it), or a file beside the registration, which
    must be an OpenAPI 3 document. getOpenAPI serves it to consumers: it may not lie outside the folder."""
    if where.startswith(("http://", "https://")):
        return where
    folder = problems.path.parent.resolve()
    resolved = (folder / where).resolve()
    if not resolved.is_relative_to(folder):
        raise problems.error(["proxy", "openapi"], f"{where} is outside the folder of the registration ({folder})")
    if not resolved.is_file():
        raise problems.error(["proxy", "openapi"], f"no file {where} beside the registration")
    try:
        document, _ = read_yaml(resolved)  # YAML reads JSON too
    except ConfigError as e:
        raise problems.error(["proxy", "openapi"], str(e)) from None
    if not (isinstance(document, dict) and str(document.get("openapi", "")).startswith("3.")
            and isinstance(document.get("paths"), dict)):
        raise problems.error(["proxy", "openapi"], f"{where} is not an OpenAPI 3 document (openapi: 3.x and paths)")
    return str(resolved)


def load_services(folder: Path | None = None, settings=None) -> tuple[list[Service], list[dict]]:
    """The registrations of `folder` (default: `settings.services`) that load, sorted by service id, and the
    problems of those that do not (`{"file", "error"}`): one broken file never takes the other services with it.
    A service registered in two files is a problem of the second."""
    from hub.settings import load_settings

    settings = settings or load_settings()
    folder = Path(folder or settings.services)
    if not folder.is_dir():
        raise ConfigError(f"services folder {folder} does not exist (set HUB_SERVICES)")
    services: dict[ServiceId, Service] = {}
    problems = []
    for path in sorted(folder.glob("*.yaml")):
        try:
            service = load_service(path, settings)
        except Exception as e:  # a standard or source registration it names may be what is broken
            problems.append({"file": str(path), "error": str(e) if isinstance(e, ConfigError) else
                             f"{type(e).__name__}: {e}"})
            continue
        if service.id in services:
            problems.append({"file": str(path), "error": f"{path}: field service: {service.id} is registered "
                                                         f"already, in {services[service.id].path}"})
            continue
        services[service.id] = service
    return sorted(services.values(), key=lambda s: str(s.id)), problems


_CURRENT = Followed("exchange services")
_CHECKED: dict[tuple, tuple[float, tuple]] = {}  # scope -> (when its files were last looked at, the services)
RECHECK_SECONDS = 1.0  # a changed registration is served within this long


def current_services(settings) -> tuple[list[Service], list[dict]]:
    """`load_services(settings=settings)`, read again only when a file it depends on changed: a service
    registration, a source registration (a dataset service's dataset) or a standard, looked at no more than once
    every RECHECK_SECONDS. Every call of the service bus asks; reading the registry each time would cost more
    than the answer."""
    from schemas.standards import standards_dir

    scope = (str(settings.services), str(settings.registry), str(settings.home))
    now = time.monotonic()
    checked = _CHECKED.get(scope)
    if checked is not None and now - checked[0] < RECHECK_SECONDS:
        return checked[1]
    folders = [Path(settings.services), Path(settings.registry), standards_dir()]
    files = [*folders, *(f for folder in folders if folder.is_dir() for f in sorted(folder.iterdir()))]
    found = _CURRENT.get(scope, files, lambda: load_services(settings=settings))
    _CHECKED[scope] = (now, found)
    return found
