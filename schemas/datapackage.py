"""A dataset as a Frictionless Data Package: `datapackage.json` with its Table Schema and the hub's CSV download."""

from __future__ import annotations

from schemas.codelists import codes
from schemas.contracts import SOURCE_DESCRIPTION, Published
from schemas.licences import licence
from schemas.standards import Standard

__all__ = ["datapackage", "table_schema"]

# How a column reaches a reader, in catalog.access's words: as the standard wrote it, pseudonymized or masked.
PLAIN, PSEUDONYM = "plain", "pseudonym"
_TYPES = {"string": "string", "integer": "integer", "number": "number", "boolean": "boolean"}


def datapackage(standard: Standard, published: Published, columns: list[tuple[str, str]] | None = None) -> dict:
    """The Data Package of a dataset published with `standard`: one CSV resource, its download.

    `columns` are the download's columns in order, each with how it reaches the reader (`catalog.access`:
    plain, pseudonym or masked): a masked value no longer follows its field's rules, so it keeps only its name and
    whether it is required. Default: every field of the standard, plain.
    """
    base = published.base_url.rstrip("/")
    terms = licence(standard.schema["x-license"])
    walidata = standard.schema["x-walidata"]
    producers = [published.agency] if published.agency else list(standard.metadata["produsen-data"])
    return {
        "$schema": "https://datapackage.org/profiles/2.0/datapackage.json",
        "name": published.dataset_id,
        "id": f"{base}/api/datasets/{published.dataset_id}",
        "title": standard.title,
        "description": standard.description,
        "version": standard.version,
        "homepage": f"{base}/dataset/{published.dataset_id}",
        "keywords": list(standard.schema.get("x-tags", [])),
        "licenses": [{"name": terms.spdx or terms.ckan_id, "title": terms.title,
                      **({"path": terms.url} if terms.url else {})}],
        "contributors": [{"title": walidata, "roles": ["publisher"]},
                         *({"title": p, "roles": ["creator"]} for p in producers if p != walidata)],
        "resources": [{
            "name": published.dataset_id,
            "type": "table",
            "path": f"{base}/api/datasets/{published.dataset_id}/download.csv",
            "scheme": base.split(":", 1)[0],
            "format": "csv",
            "mediatype": "text/csv",
            "encoding": "utf-8",
            "dialect": {"header": True, "delimiter": ",", "quoteChar": '"'},
            "schema": table_schema(standard, published, columns),
        }],
    }


def table_schema(standard: Standard, published: Published, columns: list[tuple[str, str]] | None = None) -> dict:
    """The Table Schema of the dataset's rows, or of the given columns of them (see `datapackage`)."""
    columns = columns if columns is not None else [
        *((f.name, PLAIN) for f in standard.fields), *([(published.source_column, PLAIN)] if published.source_column
                                                       else [])]
    known = {f.name: f for f in standard.fields}
    fields = [_field(known.get(name), name, rule, published) for name, rule in columns]
    # A pseudonym keeps a key unique; a masked value does not (NIKs of one kecamatan all look alike).
    keyed = {name for name, rule in columns if rule in (PLAIN, PSEUDONYM)}
    key = published.key(standard)
    key = key if key and keyed >= set(key) else []
    return {"fields": fields, **({"primaryKey": key} if key else {}), "missingValues": [""]}


def _field(f, name: str, rule: str, published: Published) -> dict:
    if name == published.source_column:
        return {"name": name, "title": "Sumber data", "description": SOURCE_DESCRIPTION, "type": "string",
                "constraints": {"required": True}}
    if f is None:  # a column an older version of the standard named
        return {"name": name, "type": "any"}
    out = {"name": f.name, "title": f.title, "description": f.description}
    constraints = {"required": True} if f.required else {}
    if rule != PLAIN:
        out["type"] = "string"
        out["description"] += f" ({'pseudonymized' if rule == PSEUDONYM else 'masked'} for this reader)"
        return {**out, **({"constraints": constraints} if constraints else {})}
    c = f.constraints
    if f.format == "date":
        out["type"] = "date"
    elif f.format == "date-time":
        out.update(type="datetime", format="any")
    else:
        out["type"] = _TYPES[f.type]
        if f.format == "email":
            out["format"] = "email"
    if f.unit:
        out["unit"] = f.unit
    if "pattern" in c and f.type == "string":
        constraints["pattern"] = _whole(c["pattern"])
    for ours, theirs in (("minLength", "minLength"), ("maxLength", "maxLength")):
        if ours in c and f.type == "string":
            constraints[theirs] = c[ours]
    if f.type in ("integer", "number"):
        constraints.update({k: c[k] for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
                            if k in c})
    values = [*c.get("enum", []), *([c["const"]] if "const" in c else [])]
    if f.code_list:
        values = [v for v in codes(f.code_list) if not values or v in values]
    if values:
        constraints["enum"] = values
    return {**out, **({"constraints": constraints} if constraints else {})}


def _whole(pattern: str) -> str:
    """A JSON Schema pattern (found anywhere in the text) as a Table Schema one (which must match the whole text)."""
    if pattern.startswith("^") and pattern.endswith("$") and not pattern.endswith("\\$") and "|" not in pattern:
        return pattern
    return rf"[\s\S]*(?:{pattern})[\s\S]*"
