"""The shapes the catalog API answers with, for its OpenAPI document: response models, errors and security."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AUTH", "BEARER", "OPTIONAL_AUTH", "CkanEnvelope", "CkanError", "DatasetDescription", "DatasetList",
    "DatasetSummary", "Me", "Problem", "Rows", "SearchResult", "SqlResult", "VersionList", "ckan_responses", "errors",
    "files",
]

# The API tokens the hub issues (`hub users create`), sent as `Authorization: Bearer TOKEN`.
BEARER = {"bearer": {"type": "http", "scheme": "bearer", "description": "an API token the hub issued "
                     "(`hub users create`), as `Authorization: Bearer TOKEN`"}}
AUTH = {"security": [{"bearer": []}]}
# Anonymous callers are answered too, with what the public may see: the token is optional.
OPTIONAL_AUTH = {"security": [{}, {"bearer": []}]}


class _Open(BaseModel):
    """An object that may carry more members than those named: the hub adds fields without breaking clients."""

    model_config = ConfigDict(extra="allow")


class Problem(_Open):
    """An error as the hub answers it (FastAPI's shape): what went wrong, in one sentence."""

    detail: str = Field(description="what went wrong, naming the dataset, field or parameter")
    problems: list[dict[str, Any]] | None = Field(None, description="503 only: the broken files of a standard, "
                                                                      "each with its file, place and message")


_ERRORS = {
    400: "the query, a filter or a sort is not one the hub can run",
    401: "no token, or a token that is not valid (`WWW-Authenticate: Bearer`)",
    403: "the token's holder may not do this",
    404: "no such dataset (a `rahasia` one is unknown to those not cleared for it), version or run",
    409: "the request conflicts with what the dataset is (e.g. changes of a standard without a primary key)",
    410: "the version asked for has expired",
    413: "the request body is larger than the hub reads (1 MiB)",
    429: "too many failed token attempts from this client, or too many subscriptions (`Retry-After`)",
    503: "the hub is busy (`Retry-After`) or a standard it needs could not be loaded",
}


def errors(*statuses: int) -> dict[int, dict]:
    """The `responses` of a route for the errors it gives, each a `Problem`."""
    return {status: {"model": Problem, "description": _ERRORS[status]} for status in statuses}


def files(*media_types: str, description: str) -> dict[int, dict]:
    """The `responses` of a route answering with a file: its bytes, of one of `media_types`."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    return {200: {"description": description, "content": {m.split(";")[0]: binary for m in media_types}}}


class Links(_Open):
    self: str
    rows: str
    dictionary: str


class DatasetSummary(_Open):
    """What a list of datasets shows of each."""

    id: str
    kind: str = Field(description="harmonized (one agency source), integrated (across sources) or indicator")
    title: str
    standard: str
    standard_version: str
    classification: str = Field(description="publik, terbatas or rahasia")
    agency: str | None
    agency_name: str | None
    rows: int | None
    quality_score: float | None
    snapshot_id: int | None = Field(description="the current version (Iceberg snapshot)")
    updated_at: str | None
    links: Links


class DatasetList(_Open):
    datasets: list[DatasetSummary]


class SearchResult(_Open):
    count: int = Field(description="every match, not only this page's")
    results: list[DatasetSummary]
    facets: dict[str, dict[str, int]] = Field(description="facet -> value -> matches")


class CodeListRef(_Open):
    name: str
    edition: str | None = None


class SchemaField(_Open):
    name: str
    title: str | None
    description: str | None
    type: str
    format: str | None
    required: bool
    personal_data: bool
    code_list: CodeListRef | None = Field(description="the code list its values come from")
    unit: str | None


class Version(_Open):
    snapshot_id: int
    committed_at: str | None
    run_id: str | None
    rows: int | None


class Quality(_Open):
    score: float | None
    run_id: str | None
    rows_in: int | None
    rows_published: int | None
    rows_quarantined: int | None


class Distribution(_Open):
    format: str
    media_type: str
    url: str
    byte_size: int | None = Field(None, description="the whole download's size as the caller gets it, once one "
                                                     "download of that view has been made; null until then")
    sha256: str | None = Field(None, description="the whole download's SHA-256 (hex), as byte_size")


class Access(_Open):
    readable: bool = Field(description="the caller may read its rows")
    cleared: bool = Field(description="the caller sees its personal data unmasked")


class DatasetDescription(DatasetSummary):
    """DCAT-AP and Satu Data metadata, schema, versions, quality and lineage of one dataset."""

    description: str | None
    standard_title: str | None
    walidata: str | None
    produsen_data: list[str]
    license: str | None
    frequency: str | None
    tags: list[str]
    issued: str | None
    modified: str | None
    primary_key: list[str]
    schema_: list[SchemaField] = Field(alias="schema")
    versions: list[Version]
    quality: Quality
    lineage: list[dict[str, Any]]
    runs: list[dict[str, Any]] | None = Field(None, description="stewards and the agency that owns the dataset only")
    distributions: list[Distribution]
    access: Access


class Column(_Open):
    name: str
    type: str


class VersionList(_Open):
    dataset: str
    versions: list[Version] = Field(description="newest first")


class Me(_Open):
    """Who a request's token belongs to."""

    anonymous: bool
    name: str | None = None
    role: str | None = Field(None, description="steward, analyst or agency")
    agency: str | None = Field(None, description="the agency code of an agency's user")


class Rows(_Open):
    """A page of rows, as the caller may see them."""

    dataset: str
    snapshot_id: int | None
    total: int = Field(description="rows the filters keep, over every page")
    limit: int
    offset: int
    fields: list[Column]
    masked_fields: list[str]
    pseudonymized_fields: list[str]
    withheld_fields: list[str] = Field(description="fields left out: the caller may not see them")
    rows: list[dict[str, Any]]


class SqlResult(_Open):
    columns: list[Column]
    rows: list[dict[str, Any]]
    truncated: bool = Field(description="the query had more rows than `limit`")
    seconds: float
    datasets: list[str] = Field(description="the datasets the query read")


class CkanError(_Open):
    type_: str = Field(alias="__type", description="CKAN's error kind, e.g. Not Found Error, Validation Error")
    message: str | None = None


class CkanEnvelope(_Open):
    """CKAN's Action API answer: `result` on success, `error` otherwise (a bad action name: a bare string, 400)."""

    help: str
    success: bool
    result: Any = Field(None, description="the action's answer, as CKAN 2.10 gives it")
    error: CkanError | None = None


def ckan_responses() -> dict[int, dict]:
    """The `responses` of the CKAN action route: CKAN's envelope, whatever the status."""
    envelope = {"model": CkanEnvelope}
    return {
        200: {**envelope, "description": "the action's result"},
        400: {"description": "an unknown action or a body that is not a JSON object: CKAN's bare string; a bad "
                             "parameter: the envelope", "content": {"application/json": {"schema": {"anyOf": [
                                 {"type": "string"}, {"$ref": "#/components/schemas/CkanEnvelope"}]}}}},
        403: {**envelope, "description": "a token that is not valid, or the holder may not do this"},
        404: {**envelope, "description": "no such dataset, resource or organization"},
        409: {**envelope, "description": "a parameter CKAN would refuse (Validation Error), or a search query "
                                         "that is not valid"},
        413: {"model": Problem, "description": _ERRORS[413]},
        429: {**envelope, "description": "too many failed token attempts from this client (`Retry-After`)"},
    }
