"""CKAN clients' own calls on `hub serve`: Solr queries, groups, licences and activity with `ckanapi`, and
ckanext-harvest's paging loop; the query syntax over the full-text search of both catalog engines."""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import urlencode

import ckanapi
import httpx
import pytest

from _served import elsewhere
from catalog.db import init_db, session
from catalog.search import index_dataset, search, words
from hub.settings import ROOT, Settings
from schemas.topics import topics
from serving import solr

ALL = 1000


@pytest.fixture(scope="module")
def packages(ckan) -> dict[str, dict]:
    """Every package the analyst may know of, by id."""
    return {p["id"]: p for p in ckan.action.current_package_list_with_resources()}


def sequence(text: str) -> list[str]:
    """The words of `text` in order, as the full-text search folds them."""
    return [w for chunk in text.split() for w in words(chunk)]


def names(ckan, **params) -> set[str]:
    return {p["name"] for p in ckan.action.package_search(rows=ALL, **params)["results"]}


def test_fielded_terms_match_what_the_packages_hold(ckan, packages):
    everything = set(packages)
    tags = {t["name"] for p in packages.values() for t in p["tags"]}
    assert "kependudukan" in tags
    for tag in tags:
        expected = {i for i, p in packages.items() if tag in [t["name"] for t in p["tags"]]}
        assert names(ckan, q=f'tags:"{tag}"') == names(ckan, fq=f'tags:"{tag}"') == expected
        if " " not in tag:
            assert names(ckan, q=f"tags:{tag}") == expected
    for org in {p["owner_org"] for p in packages.values()}:
        expected = {i for i, p in packages.items() if p["organization"]["name"] == org}
        assert names(ckan, q=f"organization:{org}") == expected
        assert names(ckan, q=f"-organization:{org}") == names(ckan, q=f"NOT organization:{org}") == everything - expected
    assert names(ckan, q="res_format:CSV") == everything
    assert names(ckan, q="res_format:csv") == set()  # a string field: exact, as in CKAN's Solr
    with_penduduk = {i for i, p in packages.items() if "penduduk" in words(p["title"])}
    assert with_penduduk and names(ckan, q="title:Penduduk") == with_penduduk
    assert names(ckan, q="title:pendud*") >= with_penduduk
    assert names(ckan, q="name:penduduk") == {"penduduk"}
    assert names(ckan, q="license_id:*") == everything
    assert names(ckan, fq="+dataset_type:dataset capacity:public state:active") == everything
    for p in packages.values():
        assert p["id"] in names(ckan, q=f'version:"{p["version"]}" maintainer:"{p["maintainer"]}"')


def test_boolean_queries_are_set_operations_on_the_full_text_search(ckan, api, packages):
    everything = set(packages)
    found = {q: names(ckan, q=q) for q in ("penduduk", "sekolah", "kesehatan", "sosial")}
    assert found["penduduk"]
    assert names(ckan, q="penduduk OR sekolah") == found["penduduk"] | found["sekolah"]
    assert names(ckan, q="penduduk AND sosial") == names(ckan, q="penduduk sosial") == found["penduduk"] & found["sosial"]
    assert names(ckan, q="-kesehatan") == everything - found["kesehatan"]
    assert found["sosial"] and found["sosial"] != everything
    assert names(ckan, q="-sosial") == names(ckan, q="NOT sosial") == everything - found["sosial"]
    assert names(ckan, q="+penduduk -sosial") == found["penduduk"] - found["sosial"]
    assert names(ckan, q="(penduduk OR kesehatan) AND NOT sosial") == (
        found["penduduk"] | found["kesehatan"]) - found["sosial"]
    assert names(ckan, q="*:*") == names(ckan, q="") == everything
    # A phrase: what the full-text search finds of its words, where they stand in that order.
    def text(i: str) -> str:
        p = packages[i]
        return " ".join(sequence(" ".join([p["title"], p["notes"] or "", *(t["name"] for t in p["tags"])])))

    first_words = " ".join(packages["penduduk"]["title"].split()[:2])
    for phrase in (first_words, " ".join(reversed(first_words.split())), "data kependudukan", "kependudukan data"):
        expected = {i for i in names(ckan, q=phrase) if " ".join(sequence(phrase)) in text(i)}
        assert names(ckan, q=f'"{phrase}"') == expected
    assert "penduduk" in names(ckan, q=f'"{first_words}"')
    assert names(ckan, q='"data kependudukan"') != names(ckan, q="data kependudukan")
    # The native search ranks the words: the first result is the same.
    native = httpx.get(f"{api}/api/search", params={"q": "penduduk"}).json()["results"]
    assert ckan.action.package_search(q="penduduk", rows=1)["results"][0]["name"] == native[0]["id"]


def test_ranges_on_the_modification_time(ckan, packages):
    modified = sorted(dt.datetime.fromisoformat(p["metadata_modified"]) for p in packages.values())
    everything = set(packages)
    assert names(ckan, q="metadata_modified:[2024-01-01T00:00:00Z TO NOW]") == everything
    assert names(ckan, q="metadata_modified:[NOW-1DAY TO *]") == everything  # published by this test session
    assert names(ckan, q="metadata_modified:[* TO NOW-1DAY]") == set()
    assert names(ckan, q="metadata_modified:[NOW/DAY TO NOW+1DAY]") == {
        i for i, p in packages.items() if dt.datetime.fromisoformat(p["metadata_modified"]).date()
        == dt.datetime.now(dt.timezone.utc).date()}
    last = modified[-1].isoformat()
    assert names(ckan, fq=f"metadata_modified:{{{last}Z TO *]") == set()
    assert names(ckan, fq=f"metadata_created:[* TO {last}Z]") == everything


@pytest.mark.parametrize("q", ["penduduk~2", "title:pen?uduk", "title:penduduk^2", "nosuchfield:x", "(penduduk",
                               "penduduk)", "penduduk OR", "AND penduduk", "metadata_modified:[kemarin TO *]",
                               '"penduduk', "{!lucene}penduduk", "*", "title:(penduduk sekolah)",
                               "nik:3271010101900001", "3271010101900001~1"])
def test_a_query_outside_the_subset_is_refused_as_ckan_refuses_it(ckan, api, q):
    with pytest.raises(ckanapi.SearchQueryError):
        ckan.action.package_search(q=q)
    answer = httpx.get(f"{api}/api/3/action/package_search", params={"q": q})
    assert answer.status_code == 409  # CKAN's status for a query its Solr cannot run
    error = answer.json()["error"]
    assert answer.json()["success"] is False and error["__type"] == "Search Query Error"
    assert error["message"].startswith("Search Query is invalid: '")
    assert "3271010101900001" not in answer.text  # a query's values are never repeated back
    assert httpx.get(f"{api}/api/3/action/package_search", params={"fq": q}).status_code == 409


def test_topics_are_groups(ckan, api, packages):
    listed = ckan.action.group_list()
    assert sorted(listed) == sorted(t.id for t in topics())
    full = {g["name"]: g for g in ckan.action.group_list(all_fields=True)}
    for topic in topics():
        members = {i for i, p in packages.items() if topic.id in [g["name"] for g in p["groups"]]}
        assert full[topic.id]["package_count"] == len(members)
        assert full[topic.id]["title"] == topic.title and not full[topic.id]["is_organization"]
        shown = ckan.action.group_show(id=topic.id, include_datasets=True)
        assert {p["name"] for p in shown["packages"]} == members
        assert "packages" not in ckan.action.group_show(id=topic.id)
        assert names(ckan, fq=f"groups:{topic.id}") == members
        assert names(ckan, fq=f"-groups:{topic.id}") == set(packages) - members
    population = full["population"]
    assert population["package_count"] > 0
    facets = ckan.action.package_search(**{"facet.field": ["groups"]})
    assert facets["facets"]["groups"] == {name: g["package_count"] for name, g in full.items() if g["package_count"]}
    assert {i["name"]: i["display_name"] for i in facets["search_facets"]["groups"]["items"]}["population"] == \
        population["title"]
    by_count = ckan.action.group_list(sort="package_count desc", all_fields=True)
    assert [g["package_count"] for g in by_count] == sorted((g["package_count"] for g in full.values()), reverse=True)
    with pytest.raises(ckanapi.NotFound):
        ckan.action.group_show(id="tidak-ada")


def test_licences(ckan, packages):
    register = {lic["id"]: lic for lic in ckan.action.license_list()}
    assert {"cc-by", "cc-zero", "odc-odbl", "other-closed", "notspecified"} <= set(register)
    for p in packages.values():
        assert p["license_id"] in register
        assert p["isopen"] == register[p["license_id"]]["od_conformance"].startswith("approved")
        if p["isopen"]:
            assert p["license_url"] == register[p["license_id"]]["url"]
    assert names(ckan, fq="license_id:cc-by") == {i for i, p in packages.items() if p["license_id"] == "cc-by"}


def test_activity_is_the_published_versions(ckan, api, analyst, packages):
    for dataset_id in packages:
        versions = httpx.get(f"{api}/api/datasets/{dataset_id}", headers=analyst).json()["versions"]
        activity = ckan.action.package_activity_list(id=dataset_id)
        assert [a["timestamp"] for a in activity] == [v["committed_at"].removesuffix("Z") for v in versions]
        assert [a["activity_type"] for a in activity] == ["changed package"] * (len(versions) - 1) + ["new package"]
        assert all(a["object_id"] == dataset_id and a["data"]["package"]["id"] == dataset_id for a in activity)
    recent = ckan.action.recently_changed_packages_activity_list(limit=ALL)
    assert {a["object_id"] for a in recent} == set(packages)
    times = [a["timestamp"] for a in recent]
    assert times == sorted(times, reverse=True)
    assert len(ckan.action.recently_changed_packages_activity_list(limit=2, offset=1)) == min(2, len(recent) - 1)
    new = ckan.action.recently_changed_packages_activity_list(activity_types=["new package"], limit=ALL)
    assert sorted(a["object_id"] for a in new) == sorted(packages)
    with pytest.raises(ckanapi.NotFound):
        ckan.action.package_activity_list(id="tidak_ada")


def test_autocomplete_resource_search_and_site_read(ckan, packages):
    assert ckan.action.site_read() is True
    completed = ckan.action.package_autocomplete(q="PENDUDUK")
    assert completed and all("penduduk" in (c["name"] + c["title"]).casefold() for c in completed)
    by_name = next(c for c in completed if c["name"] == "penduduk")
    assert by_name["match_field"] == "name" and by_name["match_displayed"] == "penduduk"
    assert len(ckan.action.package_autocomplete(q="a", limit=1)) == 1
    csv = ckan.action.resource_search(query=["format:csv"])
    assert csv["count"] == len(packages) and {r["format"] for r in csv["results"]} == {"CSV"}
    parquet = ckan.action.resource_search(query=["format:parquet", "package_id:PENDUDUK"], order_by="id")
    assert [r["id"] for r in parquet["results"]] == sorted(f"{i}.parquet" for i in packages if "penduduk" in i)
    assert ckan.action.resource_search(query="url:/rows")["count"] == len(packages)
    with pytest.raises(ckanapi.ValidationError):
        ckan.action.resource_search(query=["nosuch:x"])


def test_an_api_key_header_alone_authenticates(api, analyst):
    token = analyst["Authorization"].removeprefix("Bearer ")
    for headers in ({"X-CKAN-API-Key": token}, {"Authorization": token}):
        answer = httpx.post(f"{api}/api/3/action/datastore_search", headers=headers,
                            json={"resource_id": "penduduk", "limit": 1})
        assert answer.status_code == 200 and answer.json()["success"]
    with elsewhere() as client:
        refused = client.post(f"{api}/api/3/action/datastore_search", headers={"X-CKAN-API-Key": token + "x"},
                              json={"resource_id": "penduduk", "limit": 1})
    assert refused.status_code == 403
    anonymous = httpx.post(f"{api}/api/3/action/datastore_search", json={"resource_id": "penduduk", "limit": 1})
    assert anonymous.status_code == 403


class SearchError(Exception):
    pass


def search_for_datasets(remote_ckan_base_url: str, fq_terms: list[str] | None = None) -> list[dict]:
    """The paging loop of ckanext-harvest's CKANHarvester._search_for_datasets
    (ckanext/harvest/harvesters/ckanharvester.py), kept as it is there; only its HTTP GET is httpx here."""
    base_search_url = remote_ckan_base_url + "/api/3/action/package_search"
    params = {"rows": "100", "start": "0"}
    params["sort"] = "id asc"
    if fq_terms:
        params["fq"] = " ".join(fq_terms)

    pkg_dicts = []
    pkg_ids = set()
    previous_content = None
    while True:
        url = base_search_url + "?" + urlencode(params)
        content = httpx.get(url).text
        if previous_content and content == previous_content:
            raise SearchError("The paging doesn't seem to work. URL: %s" % url)
        try:
            response_dict = json.loads(content)
        except ValueError:
            raise SearchError("Response from remote CKAN was not JSON: %r" % content) from None
        try:
            pkg_dicts_page = response_dict.get("result", {}).get("results", [])
        except ValueError:
            raise SearchError("Response JSON did not contain result/results: %r" % response_dict) from None

        # Weed out any datasets found on previous pages (should datasets be changing while we page)
        ids_in_page = set(p["id"] for p in pkg_dicts_page)
        duplicate_ids = ids_in_page & pkg_ids
        if duplicate_ids:
            pkg_dicts_page = [p for p in pkg_dicts_page if p["id"] not in duplicate_ids]
        pkg_ids |= ids_in_page

        pkg_dicts.extend(pkg_dicts_page)

        if len(pkg_dicts_page) == 0:
            break

        params["start"] = str(int(params["start"]) + int(params["rows"]))

    return pkg_dicts


def harvester_fq_terms(organizations_include=(), organizations_exclude=(), groups_include=(), groups_exclude=(),
                       since: dt.datetime | None = None) -> list[str]:
    """The fq terms CKANHarvester.gather_stage builds from its configuration and its last error-free job."""
    fq_terms = []
    if organizations_include:
        fq_terms.append(" OR ".join("organization:%s" % org_name for org_name in organizations_include))
    elif organizations_exclude:
        fq_terms.extend("-organization:%s" % org_name for org_name in organizations_exclude)
    if groups_include:
        fq_terms.append(" OR ".join("groups:%s" % group_name for group_name in groups_include))
    elif groups_exclude:
        fq_terms.extend("-groups:%s" % group_name for group_name in groups_exclude)
    if since is not None:
        get_changes_since = (since - dt.timedelta(hours=1)).isoformat()
        fq_terms.append("metadata_modified:[{since}Z TO *]".format(since=get_changes_since))
    return fq_terms


def test_the_harvester_gathers_what_its_filters_select(api, ckan):
    public = {p["id"]: p for p in httpx.get(f"{api}/api/3/action/current_package_list_with_resources").json()[
        "result"]}  # the harvester reads as anonymous
    everything = set(public)
    gathered = search_for_datasets(api)
    assert sorted(p["id"] for p in gathered) == [p["id"] for p in gathered] == sorted(everything)

    orgs = sorted({p["owner_org"] for p in public.values()})
    of = {o: {i for i, p in public.items() if p["owner_org"] == o} for o in orgs}
    groups = {g: {i for i, p in public.items() if g in [x["name"] for x in p["groups"]]} for g in
              [t.id for t in topics()]}

    def ids(**config) -> set[str]:
        found = search_for_datasets(api, harvester_fq_terms(**config))
        assert len(found) == len({p["id"] for p in found})
        return {p["id"] for p in found}

    assert ids(organizations_include=orgs[:2]) == of[orgs[0]] | of[orgs[1]]
    assert ids(organizations_exclude=orgs[:1]) == everything - of[orgs[0]]
    assert ids(groups_include=["population", "health"]) == groups["population"] | groups["health"]
    assert ids(groups_exclude=["population"]) == everything - groups["population"]
    assert ids(organizations_include=orgs, groups_include=["population"]) == groups["population"]
    last_job = min(dt.datetime.fromisoformat(p["metadata_modified"]) for p in public.values())
    assert ids(since=last_job) == everything
    assert ids(since=dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) + dt.timedelta(hours=2)) == set()
    assert ids(organizations_exclude=orgs[:1], since=last_job) == everything - of[orgs[0]]


# The query syntax over each catalog engine's full-text search (SQLite FTS5, PostgreSQL).

DATASETS = [  # (id, title, description, tags, organization, groups, modified)
    ("siak", "Penduduk Kota Bogor", "Data kependudukan dari SIAK", ["penduduk", "disdukcapil"], "disdukcapil",
     ["population"], "2025-01-03T08:00:00"),
    ("dtks", "Penerima bantuan DTKS", "Data Terpadu Kesejahteraan Sosial penduduk miskin", ["dtks", "penduduk"],
     "dinsos", ["social_protection"], "2025-01-05T08:00:00"),
    ("sekolah", "Sekolah dan guru", "Daftar satuan pendidikan", ["pendidikan"], "disdik", ["education"],
     "2025-01-04T08:00:00"),
    ("puskesmas", "Puskesmas", "Fasilitas kesehatan tingkat pertama", ["kesehatan"], "dinkes", ["health"],
     "2024-12-01T08:00:00"),
]


@pytest.fixture
def engine(tmp_path, catalog_url):
    """The datasets indexed in a catalog of each engine: its settings and the packages' values."""
    init_db(catalog_url)
    values = {}
    with session(catalog_url) as s, s.begin():
        for dataset_id, title, notes, tags, org, groups, modified in DATASETS:
            index_dataset(s, {"id": dataset_id, "kind": "harmonized", "title": title, "description": notes,
                              "tags": tags, "agency": org, "standard": dataset_id, "standard_version": "1.0.0",
                              "classification": "terbuka", "modified": modified + "Z", "schema": []})
            values[dataset_id] = {
                "text": " ".join([title, notes, *tags]), "title": title, "notes": notes, "id": [dataset_id],
                "name": [dataset_id], "organization": [org], "owner_org": [org], "tags": tags,
                "res_format": ["CSV"], "groups": groups, "license_id": ["cc-by"], "standard": [dataset_id],
                "classification": ["terbuka"], "metadata_modified": [modified], "metadata_created": [modified],
                "version": ["1.0.0"], "author": [org], "maintainer": ["Walidata"], "dataset_type": ["dataset"],
                "capacity": ["public"], "state": ["active"]}
    settings = Settings(home=tmp_path, catalog_url=catalog_url, registry=ROOT / "connectors" / "registry")
    return solr.Packages(frozenset(values), values.__getitem__,
                         lambda text: set(search(settings, text, rows=100)["results"]))


@pytest.mark.parametrize(("q", "expected"), [
    ("penduduk", {"siak", "dtks"}),
    ("penduduk OR sekolah", {"siak", "dtks", "sekolah"}),
    ("-penduduk", {"sekolah", "puskesmas"}),
    ("penduduk -sosial", {"siak"}),
    ("NOT (penduduk OR kesehatan)", {"sekolah"}),
    ("tags:penduduk", {"siak", "dtks"}),
    ("tags:Penduduk", set()),
    ("organization:dinsos OR organization:disdik", {"dtks", "sekolah"}),
    ("title:Penduduk", {"siak"}),
    ("notes:penduduk", {"dtks"}),
    ('"kota bogor"', {"siak"}),
    ('"bogor kota"', set()),
    ('title:"penerima bantuan"', {"dtks"}),
    ("groups:population OR groups:health", {"siak", "puskesmas"}),
    ("+res_format:CSV -groups:education", {"siak", "dtks", "puskesmas"}),
    ("metadata_modified:[2025-01-01T00:00:00Z TO NOW]", {"siak", "dtks", "sekolah"}),
    ("metadata_modified:{2025-01-03T08:00:00Z TO 2025-01-05T08:00:00Z]", {"dtks", "sekolah"}),
    ("metadata_modified:[* TO 2024-12-31T00:00:00Z]", {"puskesmas"}),
    ("metadata_modified:[NOW-1DAY TO *]", set()),
    ("kesehatan AND organization:dinkes", {"puskesmas"}),
    ("*:*", {"siak", "dtks", "sekolah", "puskesmas"}),
])
def test_the_query_syntax_on_each_engine(engine, q, expected):
    assert solr.parse(q).ids(engine) == expected
