"""The CKAN-compatible Action API read by the real `ckanapi` client, and by a harvester's calls, on `hub serve`."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re

import ckanapi
import httpx
import pytest

from schemas.licences import licence
from schemas.topics import topics_of

ALL = 1000


@pytest.fixture(scope="module")
def ckan_get(api, analyst_key):
    """ckanapi sending GET with query parameters, as CKAN allows for reading actions."""
    with ckanapi.RemoteCKAN(api, apikey=analyst_key, get_only=True) as remote:
        yield remote


def organization_of(d: dict) -> str:
    return d["agency"] or re.sub(r"[^a-z0-9]+", "-", d["walidata"].lower()).strip("-")


def native_search(api, **params) -> dict:
    return httpx.get(f"{api}/api/search", params={"rows": ALL, **params}).json()


def test_status_show_says_which_ckan_it_answers_like(ckan, api):
    status = ckan.action.status_show()
    assert status["ckan_version"].startswith("2.10")
    assert status["extensions"] == ["activity", "datastore"]
    assert status["site_url"] == api


def test_the_envelope_and_the_versioned_path(api):
    answer = httpx.get(f"{api}/api/3/action/package_list").json()
    assert answer["success"] is True
    assert answer["help"] == f"{api}/api/3/action/help_show?name=package_list"
    help_text = httpx.get(answer["help"]).json()["result"]
    assert "names of every dataset" in help_text


def test_package_list_is_the_dataset_ids(ckan, described):
    assert ckan.action.package_list() == sorted(described)
    assert ckan.action.package_list(limit=1, offset=1) == sorted(described)[1:2]


def test_package_show_says_what_the_native_api_says(ckan, api, described, analyst):
    for dataset_id, d in described.items():
        p = ckan.action.package_show(id=dataset_id)
        assert (p["id"], p["name"], p["title"], p["notes"]) == (dataset_id, dataset_id, d["title"], d["description"])
        terms = licence(d["license"])
        assert (p["license_id"], p["license_title"], p["license_url"], p["isopen"]) == (
            terms.ckan_id, terms.title, terms.url, terms.open)
        assert p["version"] == d["standard_version"]
        assert [g["name"] for g in p["groups"]] == topics_of(d["standard"])
        assert p["url"] == f"{api}/dataset/{dataset_id}"
        assert [t["name"] for t in p["tags"]] == d["tags"]
        assert p["organization"]["name"] == p["owner_org"] == organization_of(d)
        assert p["organization"]["title"] == (d["agency_name"] or d["walidata"])
        assert p["metadata_modified"] == d["modified"].removesuffix("Z")
        assert p["metadata_created"] == d["issued"].removesuffix("Z")
        extras = {e["key"]: e["value"] for e in p["extras"]}
        assert all(isinstance(v, str) for v in extras.values())
        assert extras["standard"] == d["standard"] and extras["standard_version"] == d["standard_version"]
        assert extras["classification"] == d["classification"] and extras["walidata"] == d["walidata"]
        assert json.loads(extras["produsen_data"]) == d["produsen_data"]
        assert extras["frequency"] == d["frequency"] and extras["versions"] == str(len(d["versions"]))
        assert float(extras["quality_score"]) == d["quality"]["score"]
        assert p["num_resources"] == len(p["resources"]) == len(d["distributions"])
        assert [(r["format"], r["url"], r["mimetype"]) for r in p["resources"]] == [
            (x["format"], api + x["url"], x["media_type"]) for x in d["distributions"]]
        in_datastore = [r["id"] for r in p["resources"] if r["datastore_active"]]
        assert in_datastore == [dataset_id]
        assert {r["id"] for r in p["resources"]} == {dataset_id} | {
            f"{dataset_id}.{fmt}" for fmt in ("csv", "json", "parquet")}
        for r in p["resources"]:
            assert r["package_id"] == dataset_id and r["last_modified"] == p["metadata_modified"]
            assert ckan.action.resource_show(id=r["id"]) == r
            assert httpx.get(r["url"], params={"limit": 1} if r["datastore_active"] else None,
                             headers=analyst).status_code == 200


def test_resource_size_and_hash_are_those_of_the_file_the_caller_downloads(api, tokens):
    """Known once one download of the caller's view has been made (CKAN's null and "" before), then the exact bytes
    every later download of that view gets; callers who see a dataset otherwise each get their own."""
    clients = {name: ckanapi.RemoteCKAN(api, apikey=h.get("Authorization", "").removeprefix("Bearer ") or None)
               for name, h in tokens.items()}
    files: dict[str, dict[str, bytes]] = {}  # resource id -> persona -> the bytes it downloaded
    for name, remote in clients.items():
        for p in remote.action.package_search(rows=ALL)["results"]:
            for r in p["resources"]:
                if r["datastore_active"]:
                    assert r["size"] is None and r["hash"] == ""  # the API's pages are no one file
                    continue
                if name != "anonim" and r["format"] != "CSV":
                    continue
                got = httpx.get(r["url"], headers=tokens[name], timeout=60)
                if got.status_code in (401, 403):  # listed, not readable by this caller: nothing to state
                    assert remote.action.resource_show(id=r["id"])["size"] is None
                    continue
                assert got.status_code == 200
                shown = remote.action.resource_show(id=r["id"])
                assert shown["size"] == len(got.content) > 0
                assert shown["hash"] == hashlib.sha256(got.content).hexdigest()
                assert shown["hash_algorithm"] == "http://spdx.org/rdf/terms#checksumAlgorithm_sha256"
                assert httpx.get(r["url"], headers=tokens[name], timeout=60).content == got.content  # again
                files.setdefault(r["id"], {})[name] = got.content
    assert {fmt for r in files for fmt in ("csv", "json", "parquet") if r.endswith("." + fmt)} == {
        "csv", "json", "parquet"}
    # Every caller still reads its own figures after the others downloaded theirs, and callers who got other
    # bytes (masked, pseudonymized, plain) were never told each other's.
    differing = 0
    for resource, got in files.items():
        for name, content in got.items():
            assert clients[name].action.resource_show(id=resource)["hash"] == hashlib.sha256(content).hexdigest()
        differing += len(set(got.values())) > 1
    assert differing >= 1
    # A filtered download is a file of its own: it records nothing.
    resource, got = next((r, g) for r, g in files.items() if "anonim" in g and r.endswith(".csv"))
    before = clients["anonim"].action.resource_show(id=resource)
    dataset_id = resource.removesuffix(".csv")
    assert httpx.get(f"{api}/api/datasets/{dataset_id}/download.csv", params={"q": "a"}).status_code == 200
    assert clients["anonim"].action.resource_show(id=resource) == before


def test_package_search_finds_what_the_native_search_finds(ckan, api, described):
    for q in ("", "penduduk", "sosial", "nik", "kelurahan bogor", "tidakada"):
        native = native_search(api, q=q)
        found = ckan.action.package_search(q=q, rows=ALL)
        assert found["count"] == native["count"] == len(found["results"])
        assert native["count"] > 0 or q == "tidakada"
        assert {p["name"] for p in found["results"]} == {d["id"] for d in native["results"]}
    assert ckan.action.package_search(q="*:*")["count"] == len(described)


def test_filter_queries_as_ckan_clients_write_them(ckan, api, described):
    def names(fq: str) -> set[str]:
        return {p["name"] for p in ckan.action.package_search(fq=fq, rows=ALL)["results"]}

    everything = set(described)
    by_org = {i: organization_of(d) for i, d in described.items()}
    for dataset_id, org in by_org.items():
        expected = {i for i, o in by_org.items() if o == org}
        assert names(f"organization:{org}") == names(f'organization:"{org}"') == expected
        assert names(f"-organization:{org}") == everything - expected
        assert names(f"owner_org:{org}") == expected
    for facet, field in (("tag", "tags"), ("classification", "classification"), ("standard", "standard")):
        for value, count in native_search(api)["facets"][facet].items():
            expected = {d["id"] for d in native_search(api, **{facet: value})["results"]}
            assert len(expected) == count
            assert names(f'{field}:"{value}"') == expected
    assert names("res_format:CSV") == names("res_format:Parquet") == everything
    assert names("res_format:XLSX") == set()
    two = sorted(everything)[:2]
    assert names(f"name:{two[0]} OR name:{two[1]}") == set(two)
    assert names(f"name:{two[0]} AND name:{two[1]}") == set()
    assert names(f"+name:{two[0]} +tags:*") == {two[0]}


def test_filter_query_on_modification_time(ckan, described):
    modified = sorted(dt.datetime.fromisoformat(d["modified"].removesuffix("Z")) for d in described.values())

    def count(fq: str) -> int:
        return ckan.action.package_search(fq=fq)["count"]

    assert count("metadata_modified:[* TO NOW]") == len(described)
    assert count(f"metadata_modified:[{modified[-1].isoformat()}Z TO *]") == sum(m == modified[-1] for m in modified)
    assert count(f"metadata_modified:{{{modified[-1].isoformat()}Z TO *]") == 0
    assert count(f"metadata_modified:[{(modified[-1] + dt.timedelta(seconds=1)).isoformat()}Z TO *]") == 0
    with pytest.raises(ckanapi.SearchQueryError):
        count("metadata_modified:[yesterday TO *]")
    with pytest.raises(ckanapi.SearchQueryError):
        count("nosuchfield:x")


def test_rows_start_and_sort_page_through_every_package_once(ckan, described):
    for sort, key, reverse in (("name asc", lambda d: d["id"], False), ("name desc", lambda d: d["id"], True),
                               ("title_string asc", lambda d: d["title"].casefold(), False),
                               ("metadata_modified desc", lambda d: dt.datetime.fromisoformat(d["modified"][:-1]), True)):
        pages = [ckan.action.package_search(rows=1, start=start, sort=sort) for start in range(len(described) + 1)]
        assert [len(p["results"]) for p in pages] == [1] * len(described) + [0]
        assert {p["count"] for p in pages} == {len(described)}
        assert [p["results"][0]["name"] for p in pages[:-1]] == [
            d["id"] for d in sorted(described.values(), key=key, reverse=reverse)]
    with pytest.raises(ckanapi.SearchQueryError):
        ckan.action.package_search(sort="rows desc")


def test_facets_count_what_the_native_search_counts(ckan, api, described):
    found = ckan.action.package_search(q="penduduk", **{"facet.field": [
        "organization", "tags", "classification", "standard", "res_format"]})
    native = native_search(api, q="penduduk")["facets"]
    assert found["facets"]["tags"] == native["tag"]
    assert found["facets"]["classification"] == native["classification"]
    assert found["facets"]["standard"] == native["standard"]
    for agency, count in native["agency"].items():
        assert found["facets"]["organization"][agency] == count
    assert sum(found["facets"]["organization"].values()) == found["count"]
    assert found["facets"]["res_format"] == {fmt: found["count"] for fmt in ("API", "CSV", "JSON", "Parquet")}
    for field, counts in found["facets"].items():
        items = found["search_facets"][field]["items"]
        assert {i["name"]: i["count"] for i in items} == counts
    org_items = found["search_facets"]["organization"]["items"]
    titles = {organization_of(d): d["agency_name"] or d["walidata"] for d in described.values()}
    assert all(i["display_name"] == titles[i["name"]] for i in org_items)
    limited = ckan.action.package_search(**{"facet.field": ["tags"], "facet.limit": 1})
    assert len(limited["facets"]["tags"]) == 1


def test_get_takes_json_text_where_ckan_takes_a_list_or_a_dict(ckan, ckan_get):
    facets = {"facet.field": ["organization", "tags"]}
    assert (ckan_get.action.package_search(**{"facet.field": json.dumps(facets["facet.field"])})["facets"]
            == ckan.action.package_search(**facets)["facets"])
    filters = {"jenis_kelamin": "2"}
    by_get = ckan_get.action.datastore_search(resource_id="penduduk", filters=json.dumps(filters), limit=5)
    by_post = ckan.action.datastore_search(resource_id="penduduk", filters=filters, limit=5)
    assert by_get["records"] == by_post["records"] and by_get["total"] == by_post["total"]


def test_organizations(ckan, described):
    orgs = {o["name"]: o for o in ckan.action.organization_list(all_fields=True)}
    assert set(orgs) == set(ckan.action.organization_list()) == {organization_of(d) for d in described.values()}
    assert sum(o["package_count"] for o in orgs.values()) == len(described)
    for name, org in orgs.items():
        shown = ckan.action.organization_show(id=name, include_datasets=True)
        assert shown["title"] == org["title"] and shown["package_count"] == org["package_count"]
        assert sorted(p["name"] for p in shown["packages"]) == sorted(
            i for i, d in described.items() if organization_of(d) == name)
        assert "packages" not in ckan.action.organization_show(id=name)
    by_count = ckan.action.organization_list(sort="package_count desc", all_fields=True)
    assert [o["package_count"] for o in by_count] == sorted((o["package_count"] for o in orgs.values()), reverse=True)
    with pytest.raises(ckanapi.NotFound):
        ckan.action.organization_show(id="tidak-ada")


def test_tags(ckan, described):
    assert ckan.action.tag_list() == sorted({t for d in described.values() for t in d["tags"]})
    assert ckan.action.tag_list(query="kependu") == ["kependudukan"]


def test_errors_are_the_ones_ckanapi_knows(ckan, api):
    with pytest.raises(ckanapi.NotFound):
        ckan.action.package_show(id="tidak_ada")
    with pytest.raises(ckanapi.NotFound):
        ckan.action.datastore_search(resource_id="tidak_ada")
    with pytest.raises(ckanapi.NotFound):
        ckan.action.resource_show(id="penduduk.xlsx")
    with pytest.raises(ckanapi.ValidationError) as refused:
        ckan.action.datastore_search_sql(sql="DELETE FROM penduduk")
    assert "SELECT" in refused.value.error_dict["message"]
    assert refused.value.error_dict["query"]
    for params in ({"filters": {"nama": "3271010101900001"}}, {"sort": "nama asc"}, {"filters": {"x": "1"}}):
        with pytest.raises(ckanapi.ValidationError) as invalid:
            ckan.action.datastore_search(resource_id="penduduk", **params)
        assert "3271010101900001" not in str(invalid.value)
    with pytest.raises(ckanapi.ValidationError):
        ckan.action.package_search(rows=-1)
    answer = httpx.post(f"{api}/api/3/action/datastore_search_sql", json={"sql": "SELECT * FROM nowhere"})
    assert answer.status_code == 409
    assert answer.json()["success"] is False and answer.json()["error"]["__type"] == "Validation Error"
    missing = httpx.get(f"{api}/api/3/action/package_show", params={"id": "tidak_ada"})
    assert missing.status_code == 404 and missing.json()["error"]["__type"] == "Not Found Error"
    unknown = httpx.get(f"{api}/api/3/action/package_delete")
    assert unknown.status_code == 400 and unknown.json() == "Bad request - Action name not known: package_delete"
    bad_json = httpx.post(f"{api}/api/3/action/package_show", content=b"{not json")
    assert bad_json.status_code == 400 and bad_json.json().startswith("Bad request - JSON Error")


def test_a_harvester_gathers_every_dataset_once(ckan, api, described, analyst):
    """What ckanext-harvest's CKANHarvester does: package_search for what changed since its last run (an
    hour before it, in UTC), sorted by id, paged with rows and start until a page is empty; then it reads
    each package's resources and organization."""
    def gather(since: dt.datetime | None, rows: int) -> list[dict]:
        fq = f"metadata_modified:[{since.isoformat()}Z TO *]" if since else ""
        packages, start = [], 0
        while page := ckan.action.package_search(fq=fq, rows=rows, start=start, sort="id asc")["results"]:
            packages += page
            start += rows
        return packages

    last_run = min(dt.datetime.fromisoformat(d["modified"].removesuffix("Z")) for d in described.values())
    for since in (None, last_run - dt.timedelta(hours=1)):
        for rows in (1, 2, 100):
            gathered = gather(since, rows)
            assert sorted(p["id"] for p in gathered) == sorted(described)  # each once
            assert [p["id"] for p in gathered] == sorted(described)
    assert gather(dt.datetime.now(dt.timezone.utc).replace(tzinfo=None), 100) == []

    # The harvester's own request, as it builds it.
    since = (last_run - dt.timedelta(hours=1)).isoformat()
    answer = httpx.get(f"{api}/api/3/action/package_search", params={
        "rows": "100", "start": "0", "sort": "id asc", "fq": f"metadata_modified:[{since}Z TO *]"}).json()
    assert sorted(p["id"] for p in answer["result"]["results"]) == sorted(described)
    for p in answer["result"]["results"]:
        assert httpx.get(f"{api}/api/3/action/organization_show", params={"id": p["owner_org"]}).json()["success"]
        for r in p["resources"]:
            assert httpx.get(r["url"], params={"limit": 1} if r["datastore_active"] else None,
                             headers=analyst).status_code == 200
        rows = ckan.action.datastore_search(resource_id=p["id"], limit=1)
        assert rows["total"] == described[p["id"]]["rows"]


def test_current_package_list_with_resources(ckan, described):
    packages = ckan.action.current_package_list_with_resources()
    assert sorted(p["name"] for p in packages) == sorted(described)
    modified = [p["metadata_modified"] for p in packages]
    assert modified == sorted(modified, reverse=True)
    assert all(p["resources"] for p in packages)
    assert len(ckan.action.current_package_list_with_resources(limit=1, offset=1)) == 1
