"""The CKAN-compatible Action API under /api/3/action/, so CKAN clients and harvesters can read the hub.

It speaks CKAN 2.10's shapes: the envelope `{"help", "success", "result" | "error"}`, GET with query
parameters (JSON text where CKAN takes a list or a dict) or POST with a JSON body, and CKAN's HTTP statuses
(404 not found, 409 validation error, 409 a search query outside the subset, 400 bad request).

How the catalog maps to CKAN:
- a dataset is a package whose id and name are the dataset id, built from `catalog.metadata.describe` only;
- its organization is its agency, or for datasets without one (integrated, indicator) the walidata;
- its groups are the city's data topics (schemas/topics.py) that cover its standard; its licence is the one
  its standard names, with CKAN's licence id (schemas/licences.py);
- `q` and `fq` are Solr's syntax as CKAN clients write it (serving/solr.py), over the caller's packages;
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
from catalog.db import Dataset, DatasetVersion, session
from catalog.identity import (AuthenticationError, Identity, TooManyAttempts, authenticate, authorization_of,
                              client_of)
from schemas.licences import KNOWN, licence
from schemas.topics import Topic, topics
from serving import solr
from serving.downloads import described
from serving.solr import TIME_FIELDS

__all__ = ["ACTIONS", "CKAN_VERSION", "ActionError", "package", "router"]

CKAN_VERSION = "2.10.0"  # the CKAN API this one answers like
SITE_TITLE = "Katalog Data Kota Bogor"
SEARCH_ROWS_MAX = 1000  # CKAN's ckan.search.rows_max
DATASTORE_ROWS_MAX = 32000  # CKAN's ckan.datastore.search.rows_max
FACET_LIMIT = 50  # CKAN's search.facets.limit
SHA256 = "http://spdx.org/rdf/terms#checksumAlgorithm_sha256"  # a resource's hash_algorithm, as ckanext-dcat has it
DEFAULT_SORT = "score desc, metadata_modified desc"


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


def _bad_query(message: str, status: int = 409) -> ActionError:
    # CKAN's own words (ckan/views/api.py): the message is the repr of the error's argument. A query its Solr
    # cannot run comes back from CKAN as 409; a bad parameter such as sort as 400.
    return ActionError(status, "Search Query Error", f"Search Query is invalid: {message!r}")


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
        "format": fmt, "mimetype": distribution["media_type"], "mimetype_inner": None,
        "url": base + distribution["url"], "datastore_active": in_datastore, "position": position,
        "state": "active", "url_type": None, "cache_url": None,
        # Each file is written as it is downloaded, as the caller may see the latest version: its size and
        # checksum are known once a download of that view has been made (serving.downloads), CKAN's null and ""
        # before; its content last changed when that version was published.
        "size": distribution["byte_size"], "hash": distribution["sha256"] or "",
        **({"hash_algorithm": SHA256} if distribution["sha256"] else {}),
        "created": _ckan_time(description["issued"] or description["modified"]),
        "last_modified": _ckan_time(description["modified"]),
        "metadata_modified": _ckan_time(description["modified"]),
    }


def _group(topic: Topic, package_count: int | None = None) -> dict:
    """A topic as a CKAN group."""
    group = {"id": topic.id, "name": topic.id, "title": topic.title, "display_name": topic.title,
             "description": f"{topic.title_en}. Topik Satu Data Indonesia: {topic.satu_data}.",
             "type": "group", "is_organization": False, "state": "active", "approval_status": "approved",
             "image_url": "", "image_display_url": ""}
    return group if package_count is None else {**group, "package_count": package_count}


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
    terms = licence(d["license"])
    groups = [_group(t) for t in topics() if d["standard"] in t.standards]
    return {
        "id": d["id"], "name": d["id"], "title": d["title"], "notes": d["description"], "type": "dataset",
        "state": "active", "private": False, "license_id": terms.ckan_id, "license_title": terms.title,
        "license_url": terms.url, "isopen": terms.open, "version": d["standard_version"],
        "author": ", ".join(d["produsen_data"]), "author_email": None, "maintainer": d["walidata"],
        "maintainer_email": None, "url": f"{base}/dataset/{d['id']}",
        "metadata_created": _ckan_time(d["issued"] or d["modified"]),
        "metadata_modified": _ckan_time(d["modified"]),
        "owner_org": organization["id"], "organization": organization,
        "tags": [{"id": t, "name": t, "display_name": t, "state": "active", "vocabulary_id": None}
                 for t in d["tags"]],
        "num_tags": len(d["tags"]), "groups": groups,
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
        datasets = [d for d in s.scalars(query) if d.id in known]
        found = {d.id: package(about, call.base)
                 for d, about in zip(datasets, described(call.settings, s, datasets, call.who))}
    return list(found.values()) if ids is None else [found[i] for i in ids if i in found]


def _package_of(call: _Call, dataset_id) -> dict:
    found = _packages(call, [dataset_id]) if isinstance(dataset_id, str) else []
    if not found:
        raise _not_found(f"no dataset {dataset_id!r}")
    return found[0]


# Search: Solr's query syntax as CKAN clients write it (serving.solr), over the packages' values.

def _values(p: dict) -> dict[str, list | str]:
    """What each searchable field of a package holds: text fields as text, the others as lists."""
    extras = {e["key"]: e["value"] for e in p["extras"]}
    tags = [t["name"] for t in p["tags"]]
    return {
        "text": " ".join([p["title"], p["notes"] or "", *tags]), "title": p["title"], "notes": p["notes"] or "",
        "id": [p["id"]], "name": [p["name"]], "organization": [p["organization"]["name"]],
        "owner_org": [p["owner_org"]], "tags": tags, "res_format": [r["format"] for r in p["resources"]],
        "groups": [g["name"] for g in p["groups"]], "license_id": [p["license_id"]],
        "standard": [extras["standard"]], "classification": [extras["classification"]],
        "version": [p["version"]], "author": [p["author"]], "maintainer": [p["maintainer"]],
        # CKAN's web pages and many clients add +dataset_type:dataset (and capacity:public) to fq.
        "dataset_type": [p["type"]], "capacity": ["private" if p["private"] else "public"], "state": [p["state"]],
        **{f: [p[f]] for f in TIME_FIELDS},
    }


def _query(text: str):
    try:
        return solr.parse(text)
    except solr.SearchQueryError as e:
        raise _bad_query(str(e)) from None


SORT_FIELDS = ("score", "id", "name", "title", "title_string", *TIME_FIELDS)


def _parse_sort(text: str) -> list[tuple[str, bool]]:
    order = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        words = part.split()
        if words[0] not in SORT_FIELDS or len(words) > 2 or (len(words) == 2 and words[1] not in ("asc", "desc")):
            raise _bad_query(f"sort {part!r}: write FIELD asc|desc with FIELD one of {', '.join(SORT_FIELDS)}", 400)
        order.append((words[0], len(words) == 2 and words[1] == "desc"))
    return order


def _sorted(packages: list[dict], order: list[tuple[str, bool]], rank: dict[str, int]) -> list[dict]:
    keys = {"score": lambda p: rank.get(p["id"], 0), "id": lambda p: p["id"], "name": lambda p: p["name"],
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
            held = _values(p).get(field, [])
            display = {g["name"]: g["display_name"] for g in p["groups"]} if field == "groups" else {
                p["organization"]["name"]: p["organization"]["title"]} if field == "organization" else {}
            for value in dict.fromkeys([held] if isinstance(held, str) else held):
                if value is not None:
                    counts[value] = counts.get(value, 0) + 1
                    names[value] = display.get(value, value)
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
            "site_url": call.base, "error_emails_to": None, "locale_default": "id",
            "extensions": ["activity", "datastore"]}


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
    """Search the packages: `q` and `fq` in Solr's syntax as CKAN clients write it (words and "phrases" in the
    full text; field:value on title, name, notes, tags, organization, res_format, groups, license_id,
    classification, standard; field:[low TO high] on metadata_modified and metadata_created, with NOW and date
    math; AND, OR, NOT, - and +; parentheses; *:*), `rows`, `start`, `sort` (score, name, title_string,
    metadata_modified ... asc|desc), `facet.field`, `facet.limit`, `facet.mincount`. A query outside that
    syntax is refused (Search Query Error), never answered wrongly."""
    from catalog.search import search

    data = call.data
    q = _query(_text(data, "q") or "")
    fq = _query(" ".join([_text(data, "fq") or "", *_strings(data, "fq_list")]))
    rows = _integer(data, "rows", 10, maximum=SEARCH_ROWS_MAX)
    start = _integer(data, "start", 0)
    sort = _text(data, "sort") or DEFAULT_SORT
    order = _parse_sort(sort)
    packages = {p["id"]: p for p in _packages(call)}
    values = {i: _values(p) for i, p in packages.items()}

    def full_text(text: str) -> set[str]:
        return set(search(call.settings, text, rows=sys.maxsize, among=set(packages))["results"])

    over = solr.Packages(frozenset(packages), values.__getitem__, full_text)
    matched = q.ids(over) & fq.ids(over)
    # Ranked by the full-text search of the query's words; those it does not rank (found by fields alone) last.
    ranked = search(call.settings, " ".join(q.words()), rows=sys.maxsize, among=matched)["results"]
    rank = {dataset_id: len(ranked) - i for i, dataset_id in enumerate(ranked)}
    found = _sorted([packages[i] for i in sorted(matched)], order, rank)
    facet_fields = _strings(data, "facet.field") if _bool(data, "facet", True) else []
    facets, search_facets = _facets(found, facet_fields, _integer(data, "facet.limit", FACET_LIMIT, minimum=None),
                                    _integer(data, "facet.mincount", 1))
    return {"count": len(found), "results": found[start:start + rows], "facets": facets,
            "search_facets": search_facets, "sort": sort}


def _organizations(call: _Call, with_packages: bool = False) -> dict[str, dict]:
    organizations = {}
    for p in _packages(call):
        org = organizations.setdefault(p["owner_org"], {**p["organization"], "package_count": 0,
                                                        **({"packages": []} if with_packages else {})})
        org["package_count"] += 1
        if with_packages:
            org["packages"].append(p)
    return organizations


def _listed(call: _Call, items: list[dict], kept: str) -> list:
    """Organizations or groups as CKAN's *_list actions give them: `kept` (names to keep), `sort`, `offset`,
    `limit`, and `all_fields` for dicts instead of names."""
    if wanted := _strings(call.data, kept, comma_separated=True):
        items = [o for o in items if o["name"] in wanted]
    order = []
    for part in filter(None, (p.strip() for p in (_text(call.data, "sort") or "title asc").split(","))):
        words = part.split()
        if words[0] not in ("name", "title", "package_count") or len(words) > 2 or words[1:] not in (
                [], ["asc"], ["desc"]):
            raise _invalid("write FIELD asc|desc with FIELD one of name, title, package_count", "sort")
        order.append((words[0], words[1:] == ["desc"]))
    for field, descending in reversed(order):
        items.sort(key=lambda o: o[field], reverse=descending)
    offset = _integer(call.data, "offset", 0)
    items = items[offset:offset + _integer(call.data, "limit", len(items))]
    return items if _bool(call.data, "all_fields", False) else [o["name"] for o in items]


def organization_list(call: _Call) -> list:
    """The organizations' names (`all_fields`: the organizations, with `package_count`); `sort` (name, title
    or package_count, asc or desc; default title asc), `limit`, `offset`, `organizations` (names to keep)."""
    return _listed(call, list(_organizations(call).values()), "organizations")


def _shown(call: _Call, found, kind: str) -> dict:
    """The organization or group `id` of `found(with_packages)`, with its packages when `include_datasets`."""
    shown = found(call, with_packages=_bool(call.data, "include_datasets", False)).get(call.data.get("id"))
    if shown is None:
        raise _not_found(f"no {kind} {call.data.get('id')!r}")
    return shown


def organization_show(call: _Call) -> dict:
    """The organization `id` (its name), with `package_count`; `include_datasets` adds its packages."""
    return _shown(call, _organizations, "organization")


def _groups(call: _Call, with_packages: bool = False) -> dict[str, dict]:
    """Every topic as a group, with the caller's packages in it, in the topics' order."""
    packages = _packages(call)
    groups = {}
    for topic in topics():
        members = [p for p in packages if topic.id in {g["name"] for g in p["groups"]}]
        groups[topic.id] = {**_group(topic, len(members)), **({"packages": members} if with_packages else {})}
    return groups


def group_list(call: _Call) -> list:
    """The groups (the city's data topics, which follow Satu Data Indonesia's): their names, or with
    `all_fields` the groups with `package_count`; `sort` (name, title or package_count, asc or desc; default
    title asc), `limit`, `offset`, `groups` (names to keep)."""
    return _listed(call, list(_groups(call).values()), "groups")


def group_show(call: _Call) -> dict:
    """The group `id` (a topic's name), with `package_count`; `include_datasets` adds its packages."""
    return _shown(call, _groups, "group")


def license_list(call: _Call) -> list[dict]:
    """The licences datasets may carry, as CKAN's licence register lists them."""
    known = [(terms.ckan_id, terms.title, terms.url or "", terms.open) for terms in KNOWN.values()]
    # A standard whose x-license names no open licence carries its own terms: CKAN's "other-closed".
    other = [("notspecified", "License not specified", "", False), ("other-closed", "Other (Not Open)", "", False)]
    return [{"id": i, "title": title, "url": url, "status": "active", "maintainer": "", "family": "",
             "is_generic": i in ("notspecified", "other-closed"), "is_okd_compliant": is_open,
             "is_osi_compliant": False, "od_conformance": "approved" if is_open else "not reviewed",
             "osd_conformance": "not reviewed", "domain_content": is_open, "domain_data": is_open,
             "domain_software": False} for i, title, url, is_open in known + other]


def tag_list(call: _Call) -> list:
    """The tags of every dataset (`query`: those containing it; `all_fields`: as dicts)."""
    query = (_text(call.data, "query") or "").casefold()
    tags = sorted({t["name"] for p in _packages(call) for t in p["tags"] if query in t["name"].casefold()})
    if _bool(call.data, "all_fields", False):
        return [{"id": t, "name": t, "display_name": t, "state": "active", "vocabulary_id": None} for t in tags]
    return tags


def site_read(call: _Call) -> bool:
    """Whether the caller may read the site: always."""
    return True


ACTIVITY_LIMIT, ACTIVITY_LIMIT_MAX = 31, 100  # CKAN's ckan.activity_list_limit and ckan.activity_list_limit_max
ACTIVITY_TYPES = ("new package", "changed package")


def _activities(call: _Call, dataset_ids: list[str]) -> list[dict]:
    """One activity per published version of the datasets, the most recent first: "new package" for a dataset's
    first version, "changed package" for the others; `data.package` is the package as it is now (the catalog
    keeps each version's rows, not its metadata). `activity_types`, `exclude_activity_types`, `offset`,
    `limit`."""
    packages = {p["id"]: p for p in _packages(call, dataset_ids)}
    with session(call.settings.catalog_url) as s:
        versions = s.scalars(select(DatasetVersion).where(DatasetVersion.dataset_id.in_(list(packages)))
                             .order_by(DatasetVersion.committed_at, DatasetVersion.id)).all()
    activities, seen = [], set()
    for v in versions:
        kind = "changed package" if v.dataset_id in seen else "new package"
        seen.add(v.dataset_id)
        activities.append({"id": f"{v.dataset_id}-{v.snapshot_id}", "timestamp": v.committed_at.isoformat(),
                           "user_id": None, "object_id": v.dataset_id, "activity_type": kind,
                           "data": {"package": packages[v.dataset_id]}})
    for key, keep in (("activity_types", True), ("exclude_activity_types", False)):
        if chosen := _strings(call.data, key, comma_separated=True):
            if unknown := set(chosen) - set(ACTIVITY_TYPES):
                raise _invalid(f"no activity type {sorted(unknown)}; types: {', '.join(ACTIVITY_TYPES)}", key)
            activities = [a for a in activities if (a["activity_type"] in chosen) == keep]
    activities.reverse()
    offset = _integer(call.data, "offset", 0)
    return activities[offset:offset + _integer(call.data, "limit", ACTIVITY_LIMIT, maximum=ACTIVITY_LIMIT_MAX)]


def package_activity_list(call: _Call) -> list[dict]:
    """The activity of the package `id`: each version published, the most recent first ("new package",
    "changed package"); `offset`, `limit` (default 31), `activity_types`, `exclude_activity_types`."""
    return _activities(call, [_package_of(call, call.data.get("id"))["id"]])


def recently_changed_packages_activity_list(call: _Call) -> list[dict]:
    """The activity of every package, the most recent first; `offset`, `limit` (default 31),
    `activity_types`, `exclude_activity_types`."""
    return _activities(call, sorted(call.known))


def package_autocomplete(call: _Call) -> list[dict]:
    """The packages whose name or title contains `q` (any case), up to `limit` (default 10), as CKAN's
    autocomplete gives them: name, title, match_field and match_displayed."""
    q = (_text(call.data, "q") or "").strip().casefold()
    if not q:
        return []
    found = []
    for p in _packages(call):
        if q in p["name"].casefold():
            found.append({"name": p["name"], "title": p["title"], "match_field": "name",
                          "match_displayed": p["name"]})
        elif q in p["title"].casefold():
            found.append({"name": p["name"], "title": p["title"], "match_field": "title",
                          "match_displayed": f"{p['title']} ({p['name']})"})
    return found[:_integer(call.data, "limit", 10)]


RESOURCE_SEARCH_FIELDS = ("id", "package_id", "name", "description", "format", "mimetype", "url", "url_type",
                          "hash", "position")


def resource_search(call: _Call) -> dict:
    """The resources matching every `field:term` of `query` (a list, or one text): the field's value contains
    the term, in any case; `order_by` (a field), `offset`, `limit`. Fields: id, package_id, name, description,
    format, mimetype, url, url_type, hash, position."""
    terms = []
    for item in _strings(call.data, "query"):
        field, colon, term = item.partition(":")
        if not colon:
            raise _invalid(f"write field:term, not {item!r}", "query")
        if field not in RESOURCE_SEARCH_FIELDS:
            raise _invalid(f'Field "{field}" not recognised in resource_search.', "query")
        terms.append((field, term.casefold()))
    order_by = _text(call.data, "order_by")
    if order_by is not None and order_by not in RESOURCE_SEARCH_FIELDS:
        raise _invalid(f'Cannot sort by field `{order_by}`', "order_by")
    found = [r for p in _packages(call) for r in p["resources"]
             if all(term in str(r[field] or "").casefold() for field, term in terms)]
    if order_by:
        found.sort(key=lambda r: str(r[order_by] or ""))
    offset = _integer(call.data, "offset", 0)
    return {"count": len(found), "results": found[offset:offset + _integer(call.data, "limit", len(found))]}


# Imported here, below the helpers it shares with this module, which it imports in turn.
from serving.ckan_datastore import datastore_info, datastore_search, datastore_search_sql  # noqa: E402

ACTIONS = {f.__name__: f for f in (
    status_show, help_show, package_list, current_package_list_with_resources, package_show, resource_show,
    package_search, organization_list, organization_show, group_list, group_show, license_list, tag_list,
    site_read, package_activity_list, recently_changed_packages_activity_list, package_autocomplete,
    resource_search, datastore_search, datastore_search_sql, datastore_info)}


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

    # An action's parameters, by name: as query parameters (GET) or a JSON object (POST).
    parameters = {"type": "object", "additionalProperties": True, "description": "the action's parameters"}
    description = ("CKAN's Action API (2.10): status_show, package_list, package_search, package_show, "
                   "organization_list, organization_show, datastore_search, datastore_search_sql and more; "
                   "GET with query parameters or POST with a JSON body.")
    from serving.models import OPTIONAL_AUTH, ckan_responses

    for method in ("GET", "POST"):  # one route each: an OpenAPI operation id names one method
        api.add_api_route("/api/3/action/{name}", action, methods=[method], summary="CKAN Action API",
                          description=description, tags=["CKAN"], operation_id=f"ckan_action_{method.lower()}",
                          response_model=None, responses=ckan_responses(), openapi_extra={**OPTIONAL_AUTH, **(
                              {"requestBody": {"content": {"application/json": {"schema": parameters}}}}
                              if method == "POST" else {"parameters": [{"name": "parameters", "in": "query",
                                                                        "style": "form", "explode": True,
                                                                        "schema": parameters}]})})
    # ckanapi and older clients call the unversioned path.
    api.add_api_route("/api/action/{name}", action, methods=["GET", "POST"], include_in_schema=False)
    return api
