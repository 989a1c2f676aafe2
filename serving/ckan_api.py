"""The CKAN-compatible Action API under /api/3/action/, so CKAN clients and harvesters can read the hub.

It speaks CKAN 2.10's shapes: the envelope `{"help", "success", "result" | "error"}`, GET with query
parameters (JSON text where CKAN takes a list or a dict) or POST with a JSON body, and CKAN's HTTP statuses
(404 not found, 409 validation error, 400 bad request or bad search query).

How the catalog maps to CKAN:
- a dataset is a package whose id and name are the dataset id, built from `catalog.metadata.describe` only;
- its organization is its agency, or for datasets without one (integrated, indicator) the walidata;
- each distribution is a resource. The API one is in the DataStore and its resource id is the dataset id,
  which is also the table name in `datastore_search_sql`; the files are `<dataset>.csv`, `.json` and
  `.parquet`. Rows come from `catalog.rows` and `catalog.sql`, so each caller sees what `catalog.access`
  lets it see; a `rahasia` dataset is not there at all for those not cleared for it.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from dataclasses import dataclass
from functools import cached_property

from fastapi import APIRouter, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from catalog.access import AccessDenied, listed
from catalog.db import Dataset, session
from catalog.identity import (AuthenticationError, Identity, TooManyAttempts, authenticate, authorization_of,
                              client_of)
from catalog.metadata import describe

__all__ = ["ACTIONS", "CKAN_VERSION", "ActionError", "package", "router"]

CKAN_VERSION = "2.10.0"  # the CKAN API this one answers like
SITE_TITLE = "Katalog Data Kota Bogor"
SEARCH_ROWS_MAX = 1000  # CKAN's ckan.search.rows_max
DATASTORE_ROWS_MAX = 32000  # CKAN's ckan.datastore.search.rows_max
FACET_LIMIT = 50  # CKAN's search.facets.limit
DEFAULT_SORT = "score desc, metadata_modified desc"
TIME_FIELDS = ("metadata_modified", "metadata_created")


class ActionError(Exception):
    """An action's failure as CKAN reports it: HTTP status, error type, message and, if one is to blame, the
    parameter (CKAN's validation errors map parameters to their messages)."""

    def __init__(self, status: int, kind: str, message: str, parameter: str | None = None):
        super().__init__(message)
        self.status, self.kind, self.message, self.parameter = status, kind, message, parameter

    @property
    def error(self) -> dict:
        if self.parameter:
            return {"__type": self.kind, "message": f"{self.parameter}: {self.message}",
                    self.parameter: [self.message]}
        return {"__type": self.kind, "message": self.message}


def _not_found(message: str) -> ActionError:
    return ActionError(404, "Not Found Error", f"Not found: {message}")


def _invalid(message: str, parameter: str | None = None) -> ActionError:
    return ActionError(409, "Validation Error", message, parameter)


def _not_authorized(e: AccessDenied) -> ActionError:
    return ActionError(403, "Authorization Error", f"Access denied: {e}")


def _bad_query(message: str) -> ActionError:
    return ActionError(400, "Search Query Error", f"Search Query is invalid: {message}")


@dataclass(frozen=True)
class _Call:
    """One action call: the hub's settings, the site's base URL, the path called and the parameters."""

    settings: object
    base: str
    path: str
    data: dict
    who: Identity  # the caller: what it may see, and who it is in the audit log
    client: str | None

    @cached_property
    def known(self) -> set[str]:
        """The datasets the caller may know of."""
        return set(listed(self.settings, self.who))


# Parameters, read as CKAN's validators read them.

def _text(data: dict, key: str, default: str | None = None) -> str | None:
    value = data.get(key, default)
    if value is not None and not isinstance(value, str):
        raise _invalid("must be a string", key)
    return value


def _integer(data: dict, key: str, default: int, *, minimum: int | None = 0, maximum: int | None = None) -> int:
    value = data.get(key, default)
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise _invalid("Invalid integer", key) from None
    if minimum is not None and number < minimum:
        raise _invalid("Must be a natural number", key)
    return min(number, maximum) if maximum is not None else number  # CKAN caps silently


def _bool(data: dict, key: str, default: bool) -> bool:
    value = data.get(key, default)
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "on", "y", "t", "1")
    return bool(value)


def _decoded(data: dict, key: str):
    """A parameter that may come as JSON text (a GET query parameter) where CKAN takes a list or a dict."""
    value = data.get(key)
    if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            raise _invalid("Could not parse as valid JSON", key) from None
    return value


def _strings(data: dict, key: str, *, comma_separated: bool = False) -> list[str]:
    value = _decoded(data, key)
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()] if comma_separated else [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise _invalid("must be a list of strings", key)


# Packages, organizations and resources, from `describe`.

def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _ckan_time(value: str | None) -> str | None:
    """CKAN's timestamps are UTC without a zone."""
    return value.removesuffix("Z") if value else None


def _time(value: str) -> dt.datetime:
    at = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return at.astimezone(dt.timezone.utc).replace(tzinfo=None) if at.tzinfo else at


def _organization(description: dict) -> dict:
    if description["agency"]:
        name, title = description["agency"], description["agency_name"] or description["agency"]
    else:  # integrated and indicator datasets are the walidata's
        name, title = _slug(description["walidata"]), description["walidata"]
    return {"id": name, "name": name, "title": title, "display_name": title, "type": "organization",
            "is_organization": True, "state": "active", "approval_status": "approved", "description": "",
            "image_url": ""}


def _resource(description: dict, distribution: dict, position: int, base: str) -> dict:
    fmt, dataset_id = distribution["format"], description["id"]
    in_datastore = fmt == "API"
    return {
        "id": dataset_id if in_datastore else f"{dataset_id}.{fmt.lower()}",
        "package_id": dataset_id, "name": f"{description['title']} ({fmt})",
        "description": (f"Rows, paged and filtered; also datastore_search with resource_id={dataset_id}"
                        if in_datastore else f"The whole dataset as {fmt}"),
        "format": fmt, "mimetype": distribution["media_type"], "url": base + distribution["url"],
        "datastore_active": in_datastore, "position": position, "state": "active", "url_type": None,
        "created": _ckan_time(description["issued"] or description["modified"]),
        "last_modified": _ckan_time(description["modified"]),
    }


def package(description: dict, base: str) -> dict:
    """The CKAN package of a dataset's description (`catalog.metadata.describe`), its URLs under `base`."""
    d = description
    extras = {
        "kind": d["kind"], "standard": d["standard"], "standard_version": d["standard_version"],
        "classification": d["classification"], "walidata": d["walidata"],
        "produsen_data": json.dumps(d["produsen_data"], ensure_ascii=False), "frequency": d["frequency"],
        "spatial_coverage": d["spatial_coverage"], "temporal_coverage": d["temporal_coverage"],
        "quality_score": d["quality"]["score"], "rows": d["rows"], "versions": len(d["versions"]),
        "snapshot_id": d["snapshot_id"],
    }
    organization = _organization(d)
    resources = [_resource(d, dist, i, base) for i, dist in enumerate(d["distributions"])]
    return {
        "id": d["id"], "name": d["id"], "title": d["title"], "notes": d["description"], "type": "dataset",
        "state": "active", "private": False, "license_id": None, "license_title": d["license"],
        "author": ", ".join(d["produsen_data"]), "maintainer": d["walidata"],
        "url": f"{base}/api/datasets/{d['id']}",
        "metadata_created": _ckan_time(d["issued"] or d["modified"]),
        "metadata_modified": _ckan_time(d["modified"]),
        "owner_org": organization["id"], "organization": organization,
        "tags": [{"id": t, "name": t, "display_name": t, "state": "active", "vocabulary_id": None}
                 for t in d["tags"]],
        "num_tags": len(d["tags"]), "groups": [],
        "extras": [{"key": k, "value": str(v)} for k, v in extras.items() if v is not None],
        "resources": resources, "num_resources": len(resources),
        "relationships_as_object": [], "relationships_as_subject": [],
    }


def _packages(call: _Call, ids: list[str] | None = None) -> list[dict]:
    """The packages of `ids` in that order (default: every dataset, by id), of those the caller may know of."""
    known = call.known
    with session(call.settings.catalog_url) as s:
        query = select(Dataset).order_by(Dataset.id)
        if ids is not None:
            query = query.where(Dataset.id.in_(ids))
        found = {d.id: package(describe(s, d), call.base) for d in s.scalars(query) if d.id in known}
    return list(found.values()) if ids is None else [found[i] for i in ids if i in found]


def _package_of(call: _Call, dataset_id) -> dict:
    found = _packages(call, [dataset_id]) if isinstance(dataset_id, str) else []
    if not found:
        raise _not_found(f"no dataset {dataset_id!r}")
    return found[0]


# Search: Solr's filter-query syntax as CKAN clients write it, over the packages' values.

_FQ_TOKEN = re.compile(r"""\s*(?:(?P<op>AND|OR|&&|\|\|)(?=\s|$)
    |(?P<sign>[+-]?)(?P<field>[A-Za-z_][\w.]*):(?P<value>"(?:[^"\\]|\\.)*"|[\[{][^\]}]*[\]}]|[^\s()"]+))""",
                       re.VERBOSE)
_RANGE = re.compile(r"([\[{])\s*(\S+)\s+TO\s+(\S+)\s*([\]}])")
FQ_FIELDS = ("id", "name", "title", "organization", "owner_org", "tags", "res_format", "license_id", "standard",
             "classification", *TIME_FIELDS)


def _values(p: dict) -> dict[str, list]:
    """What each searchable field of a package holds."""
    extras = {e["key"]: e["value"] for e in p["extras"]}
    return {
        "id": [p["id"]], "name": [p["name"]], "title": [p["title"]], "organization": [p["organization"]["name"]],
        "owner_org": [p["owner_org"]], "tags": [t["name"] for t in p["tags"]],
        "res_format": [r["format"] for r in p["resources"]], "license_id": [p["license_id"]],
        "standard": [extras["standard"]], "classification": [extras["classification"]],
        **{f: [p[f]] for f in TIME_FIELDS},
    }


def _bound(field: str, text: str):
    """One end of a range: * (none), NOW or an ISO 8601 time for the time fields, else text."""
    if text == "*":
        return None
    if field in TIME_FIELDS:
        return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) if text == "NOW" else _time(text)
    return text


@dataclass(frozen=True)
class _Term:
    """`field:value`, `field:"quoted value"`, `field:*` (any value), `field:[low TO high]` (braces exclude the
    ends, * leaves one open); `-` before it negates it."""

    field: str
    negated: bool
    value: str | None = None  # neither value nor range: any value
    range: tuple[str, str, str, str] | None = None  # opening bracket, low, high, closing bracket

    def holds(self, values: list) -> bool:
        present = [v for v in values if v is not None]
        if self.range:
            opening, low, high, closing = self.range
            low, high = _bound(self.field, low), _bound(self.field, high)
            found = any((low is None or (v >= low if opening == "[" else v > low))
                        and (high is None or (v <= high if closing == "]" else v < high))
                        for v in (_bound(self.field, v) for v in present))
        elif self.value is None:
            found = bool(present)
        else:
            found = self.value in present
        return found != self.negated


def _parse_fq(text: str) -> list[list[_Term]]:
    """Groups of alternative terms (joined by OR); every group must hold (terms are AND-ed, as CKAN's are)."""
    groups, joined, at = [], False, 0
    text = text.strip()
    while at < len(text):
        m = _FQ_TOKEN.match(text, at)
        if not m or m.end() == at:
            raise _bad_query(f"cannot read fq at {text[at:at + 40].strip()!r}: write field:value terms, "
                             f"joined by AND or OR")
        at = m.end()
        if m["op"]:
            joined = m["op"] in ("OR", "||")
            continue
        field, value, negated = m["field"], m["value"], m["sign"] == "-"
        if field not in FQ_FIELDS:
            raise _bad_query(f"undefined field {field}; fields: {', '.join(FQ_FIELDS)}")
        if value.startswith('"'):
            term = _Term(field, negated, value=re.sub(r"\\(.)", r"\1", value[1:-1]))
        elif value[0] in "[{":
            bounds = _RANGE.fullmatch(value)
            try:
                if not bounds:
                    raise ValueError(value)
                _bound(field, bounds[2]), _bound(field, bounds[3])
            except ValueError:
                raise _bad_query(f"{field}:{value}: write [low TO high] with * for no bound; "
                                 f"times in ISO 8601 or NOW") from None
            term = _Term(field, negated, range=bounds.groups())
        else:
            term = _Term(field, negated, value=None if value == "*" else value)
        if joined and groups:
            groups[-1].append(term)
        else:
            groups.append([term])
        joined = False
    return groups


SORT_FIELDS = ("score", "id", "name", "title", "title_string", *TIME_FIELDS)


def _parse_sort(text: str) -> list[tuple[str, bool]]:
    order = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        words = part.split()
        if words[0] not in SORT_FIELDS or len(words) > 2 or (len(words) == 2 and words[1] not in ("asc", "desc")):
            raise _bad_query(f"sort {part!r}: write FIELD asc|desc with FIELD one of {', '.join(SORT_FIELDS)}")
        order.append((words[0], len(words) == 2 and words[1] == "desc"))
    return order


def _sorted(packages: list[dict], order: list[tuple[str, bool]], rank: dict[str, int]) -> list[dict]:
    keys = {"score": lambda p: -rank[p["id"]], "id": lambda p: p["id"], "name": lambda p: p["name"],
            "title": lambda p: p["title"].casefold(), "title_string": lambda p: p["title"].casefold(),
            **{f: (lambda p, f=f: _time(p[f]) if p[f] else dt.datetime.min) for f in TIME_FIELDS}}
    packages = list(packages)
    for field, descending in reversed(order):  # stable sorts, last key first
        packages.sort(key=keys[field], reverse=descending)
    return packages


def _facets(packages: list[dict], fields: list[str], limit: int, mincount: int) -> tuple[dict, dict]:
    """CKAN's `facets` ({field: {value: count}}) and `search_facets` (with display names), most frequent first."""
    facets, search_facets = {}, {}
    for field in fields:
        counts, names = {}, {}
        for p in packages:
            for value in dict.fromkeys(_values(p).get(field, [])):
                if value is not None:
                    counts[value] = counts.get(value, 0) + 1
                    names[value] = p["organization"]["title"] if field == "organization" else value
        ranked = sorted((c for c in counts.items() if c[1] >= mincount), key=lambda c: (-c[1], c[0]))
        ranked = ranked if limit < 0 else ranked[:limit]
        facets[field] = dict(ranked)
        search_facets[field] = {"title": field, "items": [
            {"name": value, "display_name": names[value], "count": count} for value, count in ranked]}
    return facets, search_facets


# The actions. Each one's docstring is what help_show gives.

def status_show(call: _Call) -> dict:
    """The site: its title and URL, the CKAN version this API answers like, and its extensions."""
    return {"ckan_version": CKAN_VERSION, "site_title": SITE_TITLE,
            "site_description": "Data Kota Bogor, diselaraskan dengan standar data Satu Data Indonesia.",
            "site_url": call.base, "error_emails_to": None, "locale_default": "id", "extensions": ["datastore"]}


def help_show(call: _Call) -> str:
    """The help text of the action `name`."""
    name = call.data.get("name")
    if name not in ACTIONS:
        raise _not_found("Action function not found")
    return ACTIONS[name].__doc__


def package_list(call: _Call) -> list[str]:
    """The names of every dataset, in name order; `limit` and `offset` page them."""
    names = sorted(call.known)
    offset = _integer(call.data, "offset", 0)
    return names[offset:offset + _integer(call.data, "limit", len(names))]


def current_package_list_with_resources(call: _Call) -> list[dict]:
    """Every package with its resources, the most recently modified first; `limit`, `offset` (or `page`)."""
    limit = _integer(call.data, "limit", SEARCH_ROWS_MAX, maximum=SEARCH_ROWS_MAX)
    offset = _integer(call.data, "offset", 0)
    if "page" in call.data:
        offset = (max(_integer(call.data, "page", 1), 1) - 1) * limit
    packages = _sorted(_packages(call), [("metadata_modified", True)], {})
    return packages[offset:offset + limit]


def package_show(call: _Call) -> dict:
    """The package `id` (a dataset id): its metadata, organization, tags, extras and resources."""
    return _package_of(call, call.data.get("id") or call.data.get("name"))


def resource_show(call: _Call) -> dict:
    """The resource `id`: a dataset id for its DataStore resource, or `<dataset>.csv`, `.json`, `.parquet`."""
    resource_id = call.data.get("id")
    if isinstance(resource_id, str):
        for p in _packages(call, [resource_id.partition(".")[0]]):
            for r in p["resources"]:
                if r["id"] == resource_id:
                    return r
    raise _not_found(f"no resource {resource_id!r}")


def package_search(call: _Call) -> dict:
    """Search the packages: `q` (full text), `fq` (Solr terms on organization, tags, res_format,
    classification, standard, name, metadata_modified ..., with OR, - and [low TO high]), `rows`, `start`,
    `sort` (score, name, title_string, metadata_modified ... asc|desc), `facet.field`, `facet.limit`,
    `facet.mincount`."""
    from catalog.search import search

    data = call.data
    q = (_text(data, "q") or "").strip()
    groups = _parse_fq(" ".join([_text(data, "fq") or "", *_strings(data, "fq_list")]))
    rows = _integer(data, "rows", 10, maximum=SEARCH_ROWS_MAX)
    start = _integer(data, "start", 0)
    sort = _text(data, "sort") or DEFAULT_SORT
    order = _parse_sort(sort)
    ranked = search(call.settings, "" if q == "*:*" else q, rows=sys.maxsize, among=call.known)["results"]
    rank = {dataset_id: i for i, dataset_id in enumerate(ranked)}
    packages = [p for p in _packages(call, ranked)
                if all(any(term.holds(_values(p)[term.field]) for term in group) for group in groups)]
    packages = _sorted(packages, order, rank)
    facet_fields = _strings(data, "facet.field") if _bool(data, "facet", True) else []
    facets, search_facets = _facets(packages, facet_fields, _integer(data, "facet.limit", FACET_LIMIT, minimum=None),
                                    _integer(data, "facet.mincount", 1))
    return {"count": len(packages), "results": packages[start:start + rows], "facets": facets,
            "search_facets": search_facets, "sort": sort}


def _organizations(call: _Call, with_packages: bool = False) -> dict[str, dict]:
    organizations = {}
    for p in _packages(call):
        org = organizations.setdefault(p["owner_org"], {**p["organization"], "package_count": 0, "packages": []})
        org["package_count"] += 1
        if with_packages:
            org["packages"].append(p)
    return organizations


def organization_list(call: _Call) -> list:
    """The organizations' names (`all_fields`: the organizations, with `package_count`); `sort` (name, title
    or package_count, asc or desc; default title asc), `limit`, `offset`, `organizations` (names to keep)."""
    organizations = list(_organizations(call).values())
    if wanted := _strings(call.data, "organizations", comma_separated=True):
        organizations = [o for o in organizations if o["name"] in wanted]
    order = []
    for part in filter(None, (p.strip() for p in (_text(call.data, "sort") or "title asc").split(","))):
        words = part.split()
        if words[0] not in ("name", "title", "package_count") or len(words) > 2 or words[1:] not in (
                [], ["asc"], ["desc"]):
            raise _invalid("write FIELD asc|desc with FIELD one of name, title, package_count", "sort")
        order.append((words[0], words[1:] == ["desc"]))
    for field, descending in reversed(order):
        organizations.sort(key=lambda o: o[field], reverse=descending)
    offset = _integer(call.data, "offset", 0)
    organizations = organizations[offset:offset + _integer(call.data, "limit", len(organizations))]
    if _bool(call.data, "all_fields", False):
        return [{k: v for k, v in o.items() if k != "packages"} for o in organizations]
    return [o["name"] for o in organizations]


def organization_show(call: _Call) -> dict:
    """The organization `id` (its name), with `package_count`; `include_datasets` adds its packages."""
    include = _bool(call.data, "include_datasets", False)
    organization = _organizations(call, with_packages=include).get(call.data.get("id"))
    if organization is None:
        raise _not_found(f"no organization {call.data.get('id')!r}")
    return organization if include else {k: v for k, v in organization.items() if k != "packages"}


def group_list(call: _Call) -> list:
    """The groups: the hub has none (datasets belong to organizations)."""
    return []


def tag_list(call: _Call) -> list:
    """The tags of every dataset (`query`: those containing it; `all_fields`: as dicts)."""
    query = (_text(call.data, "query") or "").casefold()
    tags = sorted({t["name"] for p in _packages(call) for t in p["tags"] if query in t["name"].casefold()})
    if _bool(call.data, "all_fields", False):
        return [{"id": t, "name": t, "display_name": t, "state": "active", "vocabulary_id": None} for t in tags]
    return tags


# Imported here, below the helpers it shares with this module, which it imports in turn.
from serving.ckan_datastore import datastore_info, datastore_search, datastore_search_sql  # noqa: E402

ACTIONS = {f.__name__: f for f in (
    status_show, help_show, package_list, current_package_list_with_resources, package_show, resource_show,
    package_search, organization_list, organization_show, group_list, tag_list, datastore_search,
    datastore_search_sql, datastore_info)}


async def _request_data(request: Request) -> dict:
    """The parameters as CKAN reads them: query parameters (repeated ones as a list), else the JSON body."""
    if request.query_params:
        return {k: (v[0] if len(v) == 1 else v)
                for k in request.query_params for v in [request.query_params.getlist(k)]}
    body = await request.body()
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except ValueError as e:
        raise ValueError(f"Error decoding JSON data. Error: {e}") from None
    if not isinstance(data, dict):
        raise ValueError(f"Request data JSON decoded to {data!r} but it needs to be a dictionary.")
    return data


def router(settings) -> APIRouter:
    api = APIRouter()

    async def action(request: Request, name: str) -> JSONResponse:
        base = str(request.base_url).rstrip("/")
        function = ACTIONS.get(name)
        if function is None:  # CKAN answers a bad request with a bare JSON string, not the envelope
            return JSONResponse(f"Bad request - Action name not known: {name}", status_code=400)
        try:
            data = await _request_data(request)
        except ValueError as e:
            return JSONResponse(f"Bad request - JSON Error: {e}", status_code=400)
        answer = {"help": f"{base}/api/3/action/help_show?name={name}"}
        client = client_of(request)
        try:
            who = await run_in_threadpool(authenticate, settings, authorization_of(request), client)
        except TooManyAttempts as e:
            return JSONResponse({**answer, "success": False, "error": {"__type": "Authorization Error",
                                                                       "message": str(e)}},
                                status_code=429, headers={"Retry-After": str(e.retry_after)})
        except AuthenticationError as e:
            return JSONResponse({**answer, "success": False, "error": {"__type": "Authorization Error",
                                                                       "message": str(e)}}, status_code=403)
        try:
            result = await run_in_threadpool(function, _Call(settings, base, request.url.path, data, who, client))
        except ActionError as e:
            return JSONResponse({**answer, "success": False, "error": e.error}, status_code=e.status)
        return JSONResponse(jsonable_encoder({**answer, "success": True, "result": result}))

    description = ("CKAN's Action API (2.10): status_show, package_list, package_search, package_show, "
                   "organization_list, organization_show, datastore_search, datastore_search_sql and more; "
                   "GET with query parameters or POST with a JSON body.")
    for method in ("GET", "POST"):  # one route each: an OpenAPI operation id names one method
        api.add_api_route("/api/3/action/{name}", action, methods=[method], summary="CKAN Action API",
                          description=description, tags=["CKAN"], operation_id=f"ckan_action_{method.lower()}")
    # ckanapi and older clients call the unversioned path.
    api.add_api_route("/api/action/{name}", action, methods=["GET", "POST"], include_in_schema=False)
    return api
