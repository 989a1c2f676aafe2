"""A standard as an Open Data Contract Standard (ODCS v3.1.0) document, and an ODCS contract as a draft standard."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from hub.errors import ConfigError
from schemas.licences import KNOWN, licence
from schemas.standards import CLASSIFICATIONS, PERSONAL_DATA, Standard

__all__ = ["ODCS_SCHEMA", "ODCS_VERSION", "Published", "contract", "draft_standard", "import_contract", "read_contract",
           "to_yaml"]

ODCS_VERSION = "v3.1.0"
# The official JSON Schema of ODCS v3.1.0 (bitol-io/open-data-contract-standard, Apache-2.0), unchanged, in schemas/odcs.
ODCS_SCHEMA = Path(__file__).resolve().parent / "odcs" / "odcs-json-schema-v3.1.0.json"
ENGINE = "greatExpectations"  # ODCS's name for the engine of a `type: custom` rule the hub's suite runs
# Satu Data update frequency -> ODCS SLA `frequency` (value, unit); `tidak_tetap` (irregular) has no period.
FREQUENCIES = {"harian": (1, "day"), "mingguan": (1, "week"), "bulanan": (1, "month"), "triwulanan": (3, "month"),
               "semesteran": (6, "month"), "tahunan": (1, "year"), "tidak_tetap": (None, None)}
# JSON type of a field -> its column type in the hub's Iceberg tables (transforms.mapping writes them).
PHYSICAL_TYPES = {"string": "string", "integer": "long", "number": "double", "boolean": "boolean"}
# A contract's classification words -> the hub's classification (ODCS leaves the words free).
_CLASSIFICATION_WORDS = {
    **{c: c for c in CLASSIFICATIONS},
    "public": "publik", "open": "publik", "restricted": "terbatas", "internal": "terbatas",
    "confidential": "rahasia", "secret": "rahasia", "sensitive": "rahasia",
}
_CLEARED = "read-unmasked"  # a role's access when the standard's x-access clears it
# What a steward must fill in before a draft is published: it loads (the metadata is required) but says so.
PLACEHOLDER = "BELUM DIISI: isi sebelum diterbitkan"


@dataclass(frozen=True)
class Published:
    """A dataset the hub publishes with a standard: where its contract's servers are."""

    dataset_id: str
    # The Iceberg table outside engines read, `namespace.table` in the hub's catalog: the dataset as anonymous sees
    # it (the `publik` namespace); None for a dataset anonymous may not read, whose tables are back-office storage.
    table: str | None
    base_url: str  # the hub's address, e.g. https://data.kotabogor.go.id
    agency: str | None = None  # the agency whose source it is; None for integrated and indicator datasets
    # An integrated dataset's column naming the source of each row: a person two sources know is there twice.
    source_column: str | None = None

    def key(self, standard: Standard) -> list[str]:
        """The columns that identify a row of the dataset: the standard's key, and the source where rows merge."""
        return [*standard.primary_key, *([self.source_column] if self.source_column and standard.primary_key else [])]


SOURCE_DESCRIPTION = "Sumber data (registrasi sumber) tempat baris ini diambil."


# --- export -------------------------------------------------------------------------------------------------------

def contract(standard: Standard, published: Published | None = None) -> dict:
    """The ODCS v3.1.0 document of a standard, or of one dataset published with it (then with its servers)."""
    from schemas.suite import expectation_specs

    schema = standard.schema
    terms = licence(schema["x-license"])
    key = published.key(standard) if published else list(standard.primary_key)
    rules = expectation_specs(standard)
    if key != list(standard.primary_key):  # an integrated table's rows are unique by the key and their source
        rules = [r for r in rules if not r["reason"].endswith(":duplicate_key")] + [
            {"expectation": "ExpectCompoundColumnsToBeUnique", "kwargs": {"column_list": key},
             "reason": f"{'+'.join(key)}:duplicate_key"}]
    producers = [published.agency] if published and published.agency else _list(schema["x-produsen-data"])
    table = {
        "name": published.dataset_id if published else standard.name,
        "physicalType": "table",
        **({"physicalName": published.table} if published and published.table else {}),
        "businessName": standard.title,
        "description": standard.description,
        "logicalType": "object",
        "properties": [_property(standard, f, key, [r for r in rules if r["reason"].split(":")[0] == f.name])
                       for f in standard.fields],
    }
    if published and published.source_column:
        table["properties"].append({
            "name": published.source_column, "businessName": "Sumber data", "description": SOURCE_DESCRIPTION,
            "logicalType": "string", "physicalType": "string", "required": True,
            **({"primaryKey": True, "primaryKeyPosition": len(key)} if published.source_column in key else {}),
            "classification": "publik"})
    key_rule = [_quality(r) for r in rules if "+" in r["reason"].split(":")[0]]  # a compound key's uniqueness
    if key_rule:
        table["quality"] = key_rule
    document = {
        "apiVersion": ODCS_VERSION,
        "kind": "DataContract",
        "id": published.dataset_id if published else standard.name,
        "name": published.dataset_id if published else standard.name,
        "version": standard.version,
        "status": "active",
        "tags": list(schema.get("x-tags", [])),
        "description": {
            "purpose": standard.description,
            "limitations": _limitations(standard),
            "customProperties": _custom({
                "titleEn": schema.get("x-title-en"), "descriptionEn": schema.get("x-description-en"),
                "spatialCoverage": schema["x-spatial-coverage"], "temporalCoverage": schema["x-temporal-coverage"],
                "spatialCoverageEn": schema.get("x-spatial-coverage-en"),
                "temporalCoverageEn": schema.get("x-temporal-coverage-en"),
            }),
        },
        "schema": [table],
        "team": {"name": schema["x-walidata"], "members": [
            {"username": schema["x-walidata"], "role": "walidata"},
            *({"username": p, "role": "produsen data"} for p in producers)]},
        "roles": _roles(standard),
        "slaProperties": _sla(schema),
        "customProperties": _custom({
            "standard": standard.ref,
            "classification": standard.classification,
            "license": {"id": terms.spdx or terms.ckan_id, "title": terms.title, "url": terms.url,
                        "isOpen": terms.open},
        }),
    }
    if published:
        base = published.base_url.rstrip("/")
        document["servers"] = _servers(published, base)
        document["authoritativeDefinitions"] = [
            {"type": "businessDefinition", "url": f"{base}/api/datasets/{published.dataset_id}/dictionary.html",
             "description": "the data dictionary"},
            {"type": "implementation", "url": f"{base}/dataset/{published.dataset_id}",
             "description": "the dataset's page in the portal"}]
    if terms.url:
        document.setdefault("authoritativeDefinitions", []).append(
            {"type": "license", "url": terms.url, "description": terms.title})
    return document


def to_yaml(document: dict) -> str:
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=120)


def _list(value) -> list:
    return [value] if isinstance(value, str) else list(value)


def _custom(values: dict) -> list[dict]:
    return [{"property": k, "value": v} for k, v in values.items() if v is not None]


def _limitations(standard: Standard) -> str:
    return {"publik": "Publik: data terbuka untuk siapa saja.",
            "terbatas": "Terbatas: untuk pengguna pemerintah dengan token; data pribadi disamarkan bagi yang "
                        "tidak berwenang.",
            "rahasia": "Rahasia: hanya untuk instansi dan peran yang berwenang."}[standard.classification]


def _roles(standard: Standard) -> list[dict]:
    """Who reads the data: anyone (publik) or government users (terbatas), and those x-access clears."""
    roles = []
    if standard.classification == "publik":
        roles.append({"role": "anonim", "access": "read", "description": "anyone, without a token; personal data "
                                                                         "masked"})
    if standard.classification in ("publik", "terbatas"):
        roles.append({"role": "pemerintah", "access": "read", "description": "government users with a token; "
                      "NIK as pseudonyms, other personal data masked"})
    roles += [{"role": f"agency:{a}", "access": _CLEARED, "description": "cleared by the standard's x-access"}
              for a in sorted(standard.access_agencies)]
    roles += [{"role": r, "access": _CLEARED, "description": "cleared by the standard's x-access"}
              for r in sorted(standard.access_roles)]
    return roles


def _sla(schema: dict) -> list[dict]:
    value, unit = FREQUENCIES[schema["x-frequency"]]
    frequency = {"property": "frequency", "value": value, **({"unit": unit} if unit else {}),
                 "description": f"diperbarui {schema['x-frequency'].replace('_', ' ')}"}
    sla = [frequency]
    versions = (schema.get("x-retention") or {}).get("versions")
    if versions:
        sla.append({"property": "retention", "value": versions["max-age-days"], "unit": "day",
                    "description": f"published versions older than this expire, the newest {versions['keep-last']} "
                                   "kept"})
    return sla


def _servers(published: Published, base: str) -> list[dict]:
    servers = [{"server": "api", "type": "api", "location": f"{base}/api/datasets/{published.dataset_id}/rows",
                "description": "the hub's REST API: rows with filters, downloads as CSV, JSON and Parquet, as the "
                               "caller may see them"}]
    if published.table:
        namespace, _, table = published.table.rpartition(".")
        # ODCS has no server type for an Iceberg catalog: a custom server, in CustomServer's own keys.
        servers.append({
            "server": "iceberg", "type": "custom", "format": "iceberg", "catalog": "hub", "schema": namespace,
            "dataset": table, "description": "the Apache Iceberg table outside engines read, in the hub's SQL catalog "
                                             "`hub`; `hub catalog engines` prints how Spark, Trino, DuckDB and Polars "
                                             "connect",
            "customProperties": [{"property": "tableFormat", "value": "iceberg"},
                                 {"property": "namespace", "value": namespace}, {"property": "table", "value": table}]})
    return servers


def _property(standard: Standard, f, key: list[str], rules: list[dict]) -> dict:
    logical, options = _logical(f)
    p = {
        "name": f.name,
        "businessName": f.title,
        "description": f.description,
        "logicalType": logical,
        **({"logicalTypeOptions": options} if options else {}),
        "physicalType": PHYSICAL_TYPES[f.type],
        "required": f.required,
    }
    if f.name in key:
        p.update(primaryKey=True, primaryKeyPosition=key.index(f.name) + 1, criticalDataElement=True)
        if len(key) == 1:
            p["unique"] = True
    p["classification"] = f.classification or standard.classification
    examples = standard.schema["properties"][f.name].get("examples")
    if examples and not f.personal_data:  # a steward's example NIK or name may be a real person's
        p["examples"] = examples
    custom = _custom({"personalData": f.personal_data, "unit": f.unit, "concept": f.concept or None,
                      "titleEn": f.title_en or None, "descriptionEn": f.description_en or None,
                      "codeList": f.code_list})
    if custom:
        p["customProperties"] = custom
    quality = [_quality(r) for r in rules]
    if quality:
        p["quality"] = quality
    return p


def _logical(f) -> tuple[str, dict]:
    """ODCS's logical type of a field and its options (the field's rules that have a place there)."""
    c = f.constraints
    if f.type == "string" and f.format in ("date", "date-time"):
        return ("date", {"format": "yyyy-MM-dd"}) if f.format == "date" else ("timestamp", {"timezone": True})
    if f.type == "string":
        keys = ("minLength", "maxLength", "pattern")
        return "string", {**{k: c[k] for k in keys if k in c}, **({"format": f.format} if f.format else {})}
    if f.type in ("integer", "number"):
        keys = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
        return f.type, {k: c[k] for k in keys if k in c}
    return f.type, {}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _quality(spec: dict) -> dict:
    """One check of the suite as an ODCS rule: a library metric where ODCS has one, else the GE expectation."""
    kwargs, reason = spec["kwargs"], spec["reason"]
    rule = reason.split(":")[1]
    common = {"name": reason, "severity": "error", "businessImpact": "the row is quarantined, not published"}
    if rule == "required":
        return {"type": "library", "metric": "nullValues", "mustBe": 0, "dimension": "completeness", **common}
    if rule in ("enum", "const", "code_list"):
        return {"type": "library", "metric": "invalidValues", "arguments": {"validValues": kwargs["value_set"]},
                "mustBe": 0, "dimension": "conformity", **common}
    if rule == "pattern":
        return {"type": "library", "metric": "invalidValues", "arguments": {"pattern": kwargs["pattern"]},
                "mustBe": 0, "dimension": "conformity", **common}
    if rule == "duplicate_key":
        arguments = {"properties": kwargs["column_list"]} if "column_list" in kwargs else {}
        return {"type": "library", "metric": "duplicateValues", **({"arguments": arguments} if arguments else {}),
                "mustBe": 0, "dimension": "uniqueness", **common}
    return {"type": "custom", "engine": ENGINE, "dimension": "conformity", **common,
            "implementation": {"type": _snake(spec["expectation"]), "kwargs": kwargs, "meta": {"reason": reason}}}


# --- import -------------------------------------------------------------------------------------------------------

class _DatesAsText(yaml.SafeLoader):
    """YAML read as the ODCS schema expects it: an unquoted date or time (`contractCreatedTs: 2026-01-01`) stays
    text, as in JSON, instead of becoming a Python date the schema would call no string."""


_DatesAsText.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def _validator():
    from jsonschema import Draft201909Validator

    return Draft201909Validator(json.loads(ODCS_SCHEMA.read_text(encoding="utf-8")))


def read_contract(path: Path) -> dict:
    """An ODCS contract file (YAML or JSON) checked against the official ODCS v3.1.0 JSON Schema; a problem names
    the file and the place in the document."""
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot be read as UTF-8 text: {getattr(e, 'strerror', None) or e}") from None
    try:
        document = json.loads(text) if path.suffix == ".json" else yaml.load(text, _DatesAsText)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: line {e.lineno}, column {e.colno}: not valid JSON: {e.msg}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(f"{path}: {at}not valid YAML: {getattr(e, 'problem', None) or e}") from None
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: an ODCS contract is a mapping, not {type(document).__name__}")
    errors = sorted(_validator().iter_errors(document), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        shown = "; ".join(f"at {e.json_path}: {_short(e.message)}" for e in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        raise ConfigError(f"{path}: not a valid ODCS {ODCS_VERSION} contract: {shown}{more}")
    return document


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _customs(node: dict) -> dict:
    return {c["property"]: c["value"] for c in node.get("customProperties") or [] if isinstance(c, dict)}


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_")
    return slug if re.match(r"^[a-z]", slug or "") else "standar_" + slug


def draft_standard(document: dict, where: str) -> tuple[dict, list[str]]:
    """The draft standard (JSON Schema 2020-12 with the hub's x- keys) of a valid ODCS contract, and what the
    steward must still look at: metadata filled with a placeholder, rules a standard cannot hold."""
    notes: list[str] = []
    objects = document.get("schema") or []
    if len(objects) != 1:
        raise ConfigError(f"{where}: at $.schema: a standard describes one table; the contract has {len(objects)}")
    table = objects[0]
    custom, about = _customs(document), _customs(document.get("description") or {})
    name, _, version = str(custom.get("standard", "")).partition("@")
    name = name or _slug(document.get("name") or table["name"])
    if not re.fullmatch(r"\d+\.\d+\.\d+", version):
        version = document["version"] if re.fullmatch(r"\d+\.\d+\.\d+", document["version"]) else "1.0.0"
    classification = _classification(custom.get("classification") or table.get("classification"))
    if classification is None:
        classification = "terbatas"
        notes.append("x-classification: the contract gives none the hub knows; set to terbatas (government users)")
    title = table.get("businessName") or document.get("name") or table["name"]
    description = (document.get("description") or {}).get("purpose") or table.get("description") or title

    def metadata(key: str, value):
        if value:
            return value
        notes.append(f"{key}: not in the contract; filled with a placeholder")
        return PLACEHOLDER

    team = document.get("team")
    members = (team.get("members") if isinstance(team, dict) else team) or []
    stewards = [m["username"] for m in members if "walidata" in (m.get("role") or "").lower()
                or (m.get("role") or "").lower() in ("owner", "data steward", "steward")]
    producers = [m["username"] for m in members if "produsen" in (m.get("role") or "").lower()
                 or "producer" in (m.get("role") or "").lower()]
    walidata = metadata("x-walidata", (stewards or [team.get("name") if isinstance(team, dict) else None])[0])
    standard = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$comment": f"Draft imported from the ODCS contract {document['id']} version {document['version']}.",
        "title": title,
        "description": description,
        **({"x-title-en": about["titleEn"]} if about.get("titleEn") else {}),
        **({"x-description-en": about["descriptionEn"]} if about.get("descriptionEn") else {}),
        "type": "object",
        "x-name": name,
        "x-version": version,
        "x-classification": classification,
        "x-walidata": walidata,
        "x-produsen-data": producers or [walidata],
        "x-frequency": _frequency(document, notes),
        "x-spatial-coverage": metadata("x-spatial-coverage", about.get("spatialCoverage")),
        "x-temporal-coverage": metadata("x-temporal-coverage", about.get("temporalCoverage")),
        **{key: about[k] for key, k in (("x-spatial-coverage-en", "spatialCoverageEn"),
                                        ("x-temporal-coverage-en", "temporalCoverageEn")) if about.get(k)},
        "x-license": metadata("x-license", _licence(document, custom)),
    }
    if document.get("tags"):
        standard["x-tags"] = list(document["tags"])
    access = _access(document.get("roles") or [])
    if access:
        standard["x-access"] = access
    properties, required, key = {}, [], []
    for i, p in enumerate(table.get("properties") or []):
        at = f"$.schema[0].properties[{i}]"
        properties[p["name"]] = _field(p, at, classification, notes)
        if p.get("required") or p.get("primaryKey"):
            required.append(p["name"])
        if p.get("primaryKey"):
            key.append((p.get("primaryKeyPosition", -1), i, p["name"]))
    if not properties:
        raise ConfigError(f"{where}: at $.schema[0].properties: the table has no properties")
    if key:
        standard["x-primary-key"] = [n for *_, n in sorted(key)]
    standard["required"] = required
    standard["additionalProperties"] = False
    standard["properties"] = properties
    return standard, [f"{where}: {n}" for n in notes]


def _classification(word) -> str | None:
    return _CLASSIFICATION_WORDS.get(str(word or "").strip().lower())


def _frequency(document: dict, notes: list[str]) -> str:
    for sla in document.get("slaProperties") or []:
        if sla["property"] == "frequency":
            for name, (value, unit) in FREQUENCIES.items():
                if sla.get("value") == value and sla.get("unit") == unit:
                    return name
    notes.append("x-frequency: no SLA frequency the hub knows; set to tidak_tetap (irregular)")
    return "tidak_tetap"


def _licence(document: dict, custom: dict) -> str | None:
    given = custom.get("license")
    if isinstance(given, dict) and given.get("id") and given["id"] in KNOWN:
        return given["id"]
    for definition in document.get("authoritativeDefinitions") or []:
        known = [spdx for spdx, terms in KNOWN.items() if terms.url == definition["url"]]
        if definition["type"] == "license" and known:
            return known[0]
    return given.get("title") if isinstance(given, dict) else (given if isinstance(given, str) else None)


def _access(roles: list[dict]) -> dict:
    cleared = [r["role"] for r in roles if r.get("access") == _CLEARED]
    agencies = sorted(r.removeprefix("agency:") for r in cleared if r.startswith("agency:"))
    named = sorted(r for r in cleared if r in ("steward", "analyst"))
    return {k: v for k, v in (("agencies", agencies), ("roles", named)) if v}


_LOGICAL_TYPES = {"string": ("string", None), "date": ("string", "date"), "timestamp": ("string", "date-time"),
                  "time": ("string", None), "integer": ("integer", None), "number": ("number", None),
                  "boolean": ("boolean", None)}
# A physical type's leading word -> the logical type, for a property that gives no logical type.
_PHYSICAL = [(r"(var)?char|text|string|uuid", "string"), (r"(big|small|tiny)?int(eger)?|long|short", "integer"),
             (r"double|float|real|decimal|numeric|number", "number"), (r"bool(ean)?", "boolean"),
             (r"date$", "date"), (r"(timestamp|datetime)", "timestamp")]
# The rules of logicalTypeOptions a standard holds: a string's (the first three), then a number's.
_RULE_KEYS = ("minLength", "maxLength", "pattern", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
              "multipleOf")


def _field(p: dict, at: str, dataset_class: str, notes: list[str]) -> dict:
    from schemas.codelists import editions

    name = p["name"]
    logical = p.get("logicalType") or _from_physical(p.get("physicalType") or "")
    if logical not in _LOGICAL_TYPES:
        raise ConfigError(f"{at}: property {name!r} is of logical type {logical!r}; a standard's fields are "
                          f"one of {', '.join(_LOGICAL_TYPES)}")
    json_type, fmt = _LOGICAL_TYPES[logical]
    options = p.get("logicalTypeOptions") or {}
    custom = _customs(p)
    title = p.get("businessName") or name
    spec = {"title": title, "description": p.get("description") or title,
            **{k: custom[v] for k, v in (("x-title-en", "titleEn"), ("x-description-en", "descriptionEn"),
                                         ("x-concept", "concept"), ("x-unit", "unit")) if custom.get(v)},
            "type": json_type}  # a null counts as absent: only `required` says whether a value may be missing
    if fmt or options.get("format") == "email":
        spec["format"] = fmt or "email"
    kept = _RULE_KEYS[:3] if logical == "string" else _RULE_KEYS[3:] if json_type in ("integer", "number") else ()
    spec.update({k: options[k] for k in kept if k in options})
    left = sorted(set(options) - set(kept) - ({"format"} if logical != "string" or options.get("format") == "email"
                                              else set()))
    if left:
        notes.append(f"{at}: {', '.join(left)} of a {logical} has no place in a standard; left out")
    width = re.fullmatch(r"\s*(?:var)?char\s*\(\s*(\d+)\s*\)\s*", p.get("physicalType") or "", re.I)
    if json_type == "string" and width and "maxLength" not in spec:
        spec["maxLength"] = int(width[1])
    code_list = custom.get("codeList")
    if isinstance(code_list, dict) and code_list.get("name"):
        try:
            known = str(code_list.get("edition")) in editions(code_list["name"])
        except ConfigError:
            known = False
        if known:
            spec["x-code-list"] = code_list
        else:
            notes.append(f"{at}: code list {code_list['name']!r} edition {code_list.get('edition')!r} is not known "
                         "here; its codes became an enum")
    for i, rule in enumerate(p.get("quality") or []):
        _rule(rule, spec, f"{at}.quality[{i}]", notes)
    if custom.get("personalData") in PERSONAL_DATA:
        spec["x-personal-data"] = custom["personalData"]
    own = _classification(p.get("classification"))
    if own and CLASSIFICATIONS.index(own) > CLASSIFICATIONS.index(dataset_class):
        spec["x-classification"] = own
    if p.get("unique") and not p.get("primaryKey"):
        notes.append(f"{at}: unique on a field outside the primary key has no place in a standard; left out")
    if p.get("examples"):
        spec["examples"] = list(p["examples"])
    return spec


def _from_physical(physical: str) -> str:
    for pattern, logical in _PHYSICAL:
        if re.match(pattern, physical.strip(), re.I):
            return logical
    return "string"


# GE expectations whose rule the property's logical type options already carry (contracts exported by the hub).
_CARRIED = {"expect_column_values_to_match_format", "expect_column_value_lengths_to_be_between",
            "expect_column_values_to_be_between", "expect_column_values_to_be_multiple_of"}


def _rule(rule: dict, spec: dict, at: str, notes: list[str]) -> None:
    """A property's quality rule in the draft field: the library metrics a standard's keywords say."""
    metric, arguments = rule.get("metric"), rule.get("arguments") or {}
    if metric == "invalidValues" and "validValues" in arguments and rule.get("mustBe") == 0:
        if "x-code-list" not in spec:
            spec["enum"] = list(arguments["validValues"])
    elif metric == "invalidValues" and "pattern" in arguments and rule.get("mustBe") == 0:
        spec.setdefault("pattern", arguments["pattern"])
    elif metric in ("nullValues", "duplicateValues") and rule.get("mustBe") == 0:
        pass  # required and the primary key come from the property's own keys
    elif rule.get("type") == "custom" and rule.get("engine") == ENGINE and isinstance(rule.get("implementation"), dict) \
            and rule["implementation"].get("type") in _CARRIED:
        pass
    else:
        notes.append(f"{at}: quality rule {rule.get('name') or metric or rule.get('type')!r} has no place in a "
                     "standard; left out")


def import_contract(path: Path, folder: Path) -> tuple[Path, list[str]]:
    """Write the draft standard of the ODCS contract at `path` into `folder`, checked as `hub standards check`
    checks it; never over a standard the hub follows nor over an earlier draft. Returns its file and the notes
    for the steward."""
    from schemas.standards import load_standard_file, standards_dir
    from schemas.suite import expectation_specs

    draft, notes = draft_standard(read_contract(path), str(path))
    file_name = f"{draft['x-name']}-{draft['x-version']}.json"
    if (standards_dir() / file_name).exists():
        raise ConfigError(f"{path}: {draft['x-name']}@{draft['x-version']} is already a standard the hub follows "
                          f"({standards_dir() / file_name}); give the contract a new version")
    target = folder / file_name
    if target.exists():
        raise ConfigError(f"{path}: {target} already exists; move it away first")
    folder.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(draft, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    try:
        expectation_specs(load_standard_file(target))
    except ConfigError as e:
        target.unlink()
        raise ConfigError(f"{path}: the draft it makes is not a valid standard: {e}") from None
    return target, notes
