"""The CKAN DataStore (search, info, SQL and the dump) read by the real `ckanapi` client and httpx on `hub serve`."""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from collections import Counter

import ckanapi
import httpx
import pytest

from _served import elsewhere, hub

RAW_NIK = re.compile(r"(?<![\d.])\d{16}(?![\d.])")
ALL = 1000
# The PostgreSQL type names a CKAN DataStore gives its fields.
CKAN_TYPES = {"int2", "int4", "int8", "float4", "float8", "numeric", "text", "date", "time", "timestamp",
              "timestamptz", "interval", "bool", "json", "bytea", "uuid"}


@pytest.fixture(scope="module")
def every_row(ckan, described) -> list[dict]:
    """Every row of `penduduk` as the analyst sees it, in `_id` order, paged as a client pages."""
    rows, total = [], described["penduduk"]["rows"]
    while len(rows) < total:
        rows += ckan.action.datastore_search(resource_id="penduduk", limit=200, offset=len(rows))["records"]
    return rows


def sql(ckan, query: str) -> list[dict]:
    return ckan.action.datastore_search_sql(sql=query)["records"]


def without_id(record: dict) -> str:
    return json.dumps({k: v for k, v in record.items() if k != "_id"}, sort_keys=True)


def dump(api, headers: dict | None = None, **params) -> httpx.Response:
    return httpx.get(f"{api}/datastore/dump/penduduk", params=params, headers=headers or {}, timeout=120)


def test_datastore_search_pages_cover_every_row_once(ckan, api, described, analyst):
    """Following `_links.next` as a client does, the pages hold the same rows as a SELECT of the table."""
    first = ckan.action.datastore_search(resource_id="penduduk", limit=150)
    assert first["total"] == described["penduduk"]["rows"] and first["total"] > 150
    assert first["_links"]["start"].startswith("/api/") and "resource_id=penduduk" in first["_links"]["start"]
    assert "prev" not in first["_links"]
    records, page = list(first["records"]), first
    while page["records"]:
        page = httpx.get(api + page["_links"]["next"], headers=analyst).json()["result"]
        assert page["limit"] == 150
        records += page["records"]
    assert len(records) == first["total"]
    back = httpx.get(api + page["_links"]["prev"], headers=analyst).json()["result"]
    assert back["offset"] == page["offset"] - 150 and back["records"] == records[back["offset"]:][:150]
    assert Counter(map(without_id, records)) == Counter(map(without_id, sql(ckan, "SELECT * FROM penduduk")))
    offsets = [ckan.action.datastore_search(resource_id="penduduk", limit=100, offset=o, sort="kode_wilayah asc")
               for o in range(0, first["total"], 100)]
    assert sorted(r["_id"] for p in offsets for r in p["records"]) == list(range(1, first["total"] + 1))


def test_every_row_has_a_stable_id_first_that_filters_and_sorts(ckan, every_row):
    total = len(every_row)
    assert [r["_id"] for r in every_row] == list(range(1, total + 1))
    assert all(list(r)[0] == "_id" for r in every_row)
    fields = ckan.action.datastore_search(resource_id="penduduk", limit=0)["fields"]
    assert fields[0] == {"id": "_id", "type": "int4"}
    by_id = {r["_id"]: r for r in every_row}
    # The same row has the same _id whatever the query: sorted, filtered, searched.
    for r in ckan.action.datastore_search(resource_id="penduduk", sort="kode_wilayah desc", limit=ALL)["records"]:
        assert by_id[r["_id"]] == r
    women = ckan.action.datastore_search(resource_id="penduduk", filters={"jenis_kelamin": "2"}, limit=ALL)
    assert women["records"] and all(by_id[r["_id"]] == r for r in women["records"])
    picked = ckan.action.datastore_search(resource_id="penduduk", filters={"_id": [3, 7, total]})
    assert [r["_id"] for r in picked["records"]] == [3, 7, total] and picked["records"][0] == by_id[3]
    last = ckan.action.datastore_search(resource_id="penduduk", sort="_id desc", limit=2)["records"]
    assert [r["_id"] for r in last] == [total, total - 1]


def test_field_types_are_the_ones_ckan_names(ckan, described):
    for dataset_id, d in described.items():
        fields = ckan.action.datastore_search(resource_id=dataset_id, limit=0)["fields"]
        assert {f["type"] for f in fields} <= CKAN_TYPES, dataset_id
        standard = {f["name"]: f for f in d["schema"]}
        # A date masked for the caller reaches it as text.
        expected = {("string", None): {"text"}, ("string", "date"): {"date", "text"},
                    ("integer", None): {"int4", "int8"}}
        for f in fields:
            if f["id"] in standard:
                kind = (standard[f["id"]]["type"], standard[f["id"]]["format"])
                assert f["type"] in expected.get(kind, CKAN_TYPES), (dataset_id, f, kind)
    joined = ckan.action.datastore_search_sql(sql="SELECT kode_wilayah, count(*) AS n, avg(1.5) AS mean, "
                                                  "current_date AS today FROM penduduk GROUP BY 1")
    assert [f["type"] for f in joined["fields"]] == ["text", "int8", "float8", "date"]


def test_datastore_search_filters_q_sort_and_fields(ckan, api, analyst):
    total = sql(ckan, "SELECT count(*) AS n FROM penduduk WHERE jenis_kelamin = '2'")[0]["n"]
    women = ckan.action.datastore_search(resource_id="penduduk", filters={"jenis_kelamin": "2"}, limit=ALL)
    assert women["total"] == len(women["records"]) == total > 0
    assert {r["jenis_kelamin"] for r in women["records"]} == {"2"}
    either = ckan.action.datastore_search(resource_id="penduduk", filters={"agama": ["1", "2"]}, limit=0)
    assert either["records"] == [] and either["total"] == sql(
        ckan, "SELECT count(*) AS n FROM penduduk WHERE agama IN ('1', '2')")[0]["n"]
    kelurahan = women["records"][0]["kode_wilayah"]
    found = ckan.action.datastore_search(resource_id="penduduk", q=kelurahan, limit=ALL)
    native = httpx.get(f"{api}/api/datasets/penduduk/rows", params={"q": kelurahan, "limit": ALL},
                       headers=analyst).json()
    assert found["total"] == native["total"] > 0
    assert all(kelurahan in r["kode_wilayah"] for r in found["records"])
    kecamatan = kelurahan[:8]
    per_field = ckan.action.datastore_search(resource_id="penduduk", q={"kode_wilayah": kecamatan, "_source": "DTKS"},
                                             limit=ALL)
    assert per_field["total"] == sql(ckan, f"SELECT count(*) AS n FROM penduduk WHERE kode_wilayah LIKE "
                                           f"'{kecamatan}%' AND _source = 'dinsos_dtks'")[0]["n"] > 0
    with pytest.raises(ckanapi.ValidationError):
        ckan.action.datastore_search(resource_id="penduduk", q={"nama": "a"})
    ordered = ckan.action.datastore_search(resource_id="penduduk", sort="kode_wilayah desc, jenis_kelamin asc",
                                           fields=["kode_wilayah", "jenis_kelamin"], limit=ALL)
    keys = [(r["kode_wilayah"], r["jenis_kelamin"]) for r in ordered["records"]]
    assert keys == sorted(keys, key=lambda k: (k[0], -int(k[1])), reverse=True)
    assert [f["id"] for f in ordered["fields"]] == ["kode_wilayah", "jenis_kelamin"]
    assert all(set(r) == {"kode_wilayah", "jenis_kelamin"} for r in ordered["records"])
    comma = ckan.action.datastore_search(resource_id="penduduk", fields="kode_wilayah,jenis_kelamin", limit=3)
    assert list(comma["records"][0]) == ["kode_wilayah", "jenis_kelamin"]
    lists = ckan.action.datastore_search(resource_id="penduduk", sort="kode_wilayah desc, jenis_kelamin asc",
                                         fields=["kode_wilayah", "jenis_kelamin"], limit=5, records_format="lists")
    assert lists["records"] == [list(k) for k in keys[:5]]
    fields = {f["id"]: f for f in ckan.action.datastore_search(resource_id="penduduk", limit=0)["fields"]}
    assert fields["nik"]["type"] == "text" and fields["nik"]["info"]["label"] == "NIK"
    assert "total" not in ckan.action.datastore_search(resource_id="penduduk", include_total=False, limit=1)


def test_distinct_rows(ckan):
    pairs = sql(ckan, "SELECT DISTINCT kode_wilayah, jenis_kelamin FROM penduduk")
    distinct = ckan.action.datastore_search(resource_id="penduduk", fields="kode_wilayah,jenis_kelamin",
                                            distinct=True, limit=ALL)
    records = [(r["kode_wilayah"], r["jenis_kelamin"]) for r in distinct["records"]]
    assert distinct["total"] == len(records) == len(set(records)) == len(pairs) > 1
    assert set(records) == {(p["kode_wilayah"], p["jenis_kelamin"]) for p in pairs}
    paged = [r for o in range(0, len(pairs), 7) for r in ckan.action.datastore_search(
        resource_id="penduduk", fields=["kode_wilayah", "jenis_kelamin"], distinct=True, limit=7, offset=o,
        sort="jenis_kelamin desc")["records"]]
    assert sorted((r["kode_wilayah"], r["jenis_kelamin"]) for r in paged) == sorted(records)
    assert [r["jenis_kelamin"] for r in paged] == sorted((r["jenis_kelamin"] for r in paged), reverse=True)
    sexes = ckan.action.datastore_search(resource_id="penduduk", fields="jenis_kelamin", distinct="true")
    assert sorted(r["jenis_kelamin"] for r in sexes["records"]) == sorted(
        r["jenis_kelamin"] for r in sql(ckan, "SELECT DISTINCT jenis_kelamin FROM penduduk"))
    with pytest.raises(ckanapi.ValidationError):  # distinct rows sort only on their own fields
        ckan.action.datastore_search(resource_id="penduduk", fields="jenis_kelamin", distinct=True,
                                     sort="kode_wilayah")


def test_records_as_csv_and_tsv_text(ckan):
    asked = {"resource_id": "penduduk", "sort": "_id desc", "limit": 25, "filters": {"jenis_kelamin": "1"}}
    lists = ckan.action.datastore_search(records_format="lists", **asked)
    names = [f["id"] for f in lists["fields"]]
    for fmt, dialect in (("csv", csv.excel), ("tsv", csv.excel_tab)):
        found = ckan.action.datastore_search(records_format=fmt, **asked)
        assert isinstance(found["records"], str) and found["records_format"] == fmt
        assert found["fields"] == lists["fields"] and found["total"] == lists["total"]
        rows = list(csv.reader(io.StringIO(found["records"]), dialect))
        assert len(rows) == 25 and names[0] == "_id"  # no header: the fields say what each column is
        assert rows == [["" if v is None else str(v) for v in r] for r in lists["records"]]
    with pytest.raises(ckanapi.ValidationError):
        ckan.action.datastore_search(resource_id="penduduk", records_format="xml")


def test_datastore_info(ckan, described):
    info = ckan.action.datastore_info(id="penduduk")
    assert info["meta"]["id"] == "penduduk" and info["meta"]["count"] == described["penduduk"]["rows"]
    assert info["meta"]["table_type"] == "BASE TABLE" and info["meta"]["aliases"] == []
    searched = ckan.action.datastore_search(resource_id="penduduk", limit=0)["fields"]
    # The data dictionary, without the DataStore's own _id, as CKAN gives it.
    assert [{k: v for k, v in f.items() if k != "schema"} for f in info["fields"]] == searched[1:]
    standard = {f["name"]: f for f in described["penduduk"]["schema"]}
    for f in info["fields"]:
        assert f["schema"]["native_type"] == f["type"] and f["schema"]["is_index"] is False
        if f["id"] in standard:
            assert f["info"] == {"label": standard[f["id"]]["title"], "notes": standard[f["id"]]["description"]}
            assert f["schema"]["notnull"] == standard[f["id"]]["required"]
    assert ckan.action.datastore_info(resource_id="penduduk")["meta"] == info["meta"]
    with pytest.raises(ckanapi.NotFound):
        ckan.action.datastore_info(id="tidak_ada")
    with ckanapi.RemoteCKAN(ckan.address) as anonymous:
        with pytest.raises(ckanapi.NotAuthorized):
            anonymous.action.datastore_info(id="penduduk")


def test_the_dump_is_every_row_as_csv(api, analyst, every_row, home):
    answer = dump(api, analyst)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["content-disposition"] == 'attachment; filename="penduduk.csv"'
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert list(rows[0])[0] == "_id" and list(rows[0]) == list(every_row[0])
    assert rows == [{k: "" if v is None else str(v) for k, v in r.items()} for r in every_row]
    assert not RAW_NIK.search(answer.text) and all(r["nik"].startswith("psn_") for r in rows)
    downloads = json.loads(hub(home, "audit", "who-accessed", "penduduk", "--json").stdout)
    assert any(e["action"] == "download" and e["actor"] == "analis" and e["details"]["format"] == "csv"
               for e in downloads)


def test_the_dump_takes_the_search_parameters(api, analyst, ckan, every_row, home):
    asked = {"filters": json.dumps({"jenis_kelamin": "2"}), "sort": "kode_wilayah desc, _id asc",
             "fields": "_id,kode_wilayah,jenis_kelamin", "offset": "3", "limit": "40"}
    searched = ckan.action.datastore_search(resource_id="penduduk", **asked)["records"]
    rows = list(csv.DictReader(io.StringIO(dump(api, analyst, **asked).text)))
    assert len(rows) == 40 and rows == [{k: str(v) for k, v in r.items()} for r in searched]
    kelurahan = every_row[0]["kode_wilayah"]
    found = list(csv.DictReader(io.StringIO(dump(api, analyst, q=kelurahan).text)))
    assert [int(r["_id"]) for r in found] == [
        r["_id"] for r in ckan.action.datastore_search(resource_id="penduduk", q=kelurahan, limit=ALL)["records"]]
    assert found and all(kelurahan in r["kode_wilayah"] for r in found)
    assert dump(api, analyst, limit=0).text.splitlines() == [",".join(every_row[0])]
    nik = every_row[5]["nik"]
    assert [int(r["_id"]) for r in csv.DictReader(io.StringIO(
        dump(api, analyst, filters=json.dumps({"nik": nik})).text))] == [r["_id"] for r in every_row if r["nik"] == nik]
    logged = [e["details"] for e in json.loads(hub(home, "audit", "who-accessed", "penduduk", "--json").stdout)
              if e["action"] == "download" and e["details"].get("filtered_on") == ["nik"]]
    assert logged and nik not in json.dumps(logged)  # the fields asked for, never the values
    assert dump(api, analyst, filters=json.dumps({"nama": "x"})).status_code == 400  # masked: not filterable
    assert dump(api, analyst, sort="tidak_ada").status_code == 400
    assert dump(api, analyst, format="xlsx").status_code == 400
    bad = dump(api, analyst, filters="[1]")
    assert bad.status_code == 400 and bad.json()["detail"].startswith("filters: ")


def test_the_dump_in_tsv_json_and_xml(api, analyst, every_row):
    head = every_row[:30]
    tsv = dump(api, analyst, format="tsv", limit=30, bom="true")
    assert tsv.headers["content-type"].startswith("text/tab-separated-values") and tsv.content[:3] == b"\xef\xbb\xbf"
    rows = list(csv.DictReader(io.StringIO(tsv.content.decode("utf-8-sig")), dialect=csv.excel_tab))
    assert rows == [{k: "" if v is None else str(v) for k, v in r.items()} for r in head]
    as_json = dump(api, analyst, format="json", limit=30).json()
    assert as_json["fields"][0] == {"id": "_id", "type": "int4"}
    names = [f["id"] for f in as_json["fields"]]
    assert [dict(zip(names, r)) for r in as_json["records"]] == head
    assert dump(api, analyst, format="json", limit=0).json()["records"] == []
    root = ET.fromstring(dump(api, analyst, format="xml", limit=30).content)
    assert root.tag == "data" and len(root) == 30
    for element, r in zip(root, head):
        assert element.tag == "row" and element.get("_id") == str(r["_id"])
        assert {c.tag: c.text or "" for c in element} == {
            k: "" if v is None else str(v) for k, v in r.items() if k != "_id"}


def test_the_dump_is_refused_as_the_search_is(api, tokens):
    with ckanapi.RemoteCKAN(api) as anonymous:
        with pytest.raises(ckanapi.NotAuthorized):
            anonymous.action.datastore_search(resource_id="penduduk")
    refused = dump(api)
    assert refused.status_code == 403 and not RAW_NIK.search(refused.text)
    assert httpx.get(f"{api}/datastore/dump/tidak_ada", headers=tokens["analis"]).status_code == 404
    with elsewhere() as client:
        bad_token = {"Authorization": "Bearer hub_000000000000_salah"}
        assert client.get(f"{api}/datastore/dump/penduduk", headers=bad_token).status_code == 401


def test_no_unmasked_nik_leaves_the_datastore(ckan, api, described, analyst):
    for dataset_id in described:
        answer = httpx.post(f"{api}/api/3/action/datastore_search", headers=analyst,
                            json={"resource_id": dataset_id, "limit": 32000})
        assert answer.status_code == 200
        assert not RAW_NIK.search(answer.text)
        records = answer.json()["result"]["records"]
        if any(f["name"] == "nik" for f in described[dataset_id]["schema"]):
            assert records and all(r["nik"].startswith("psn_") for r in records)
        dumped = httpx.get(f"{api}/datastore/dump/{dataset_id}", headers=analyst, timeout=120)
        assert dumped.status_code == 200 and not RAW_NIK.search(dumped.text)
    selected = httpx.post(f"{api}/api/3/action/datastore_search_sql", headers=analyst, json={
        "sql": "SELECT nik, nama FROM disdukcapil_siak UNION ALL SELECT nik, nama FROM dinsos_dtks"})
    assert selected.status_code == 200 and not RAW_NIK.search(selected.text)
    assert all(r["nik"].startswith("psn_") for r in selected.json()["result"]["records"])


def test_terbatas_rows_need_an_api_key(api):
    with ckanapi.RemoteCKAN(api) as anonymous:
        assert "penduduk" in anonymous.action.package_list()  # its metadata is public
        with pytest.raises(ckanapi.NotAuthorized):
            anonymous.action.datastore_search(resource_id="penduduk")
        with pytest.raises(ckanapi.NotAuthorized):
            anonymous.action.datastore_search_sql(sql="SELECT count(*) FROM penduduk")


def test_datastore_search_sql_joins_datasets(ckan):
    query = ("SELECT s.kode_wilayah, s.penduduk, coalesce(d.dtks, 0) AS dtks "
             "FROM (SELECT kode_wilayah, count(*) AS penduduk FROM disdukcapil_siak GROUP BY 1) s "
             "LEFT JOIN (SELECT kode_wilayah, count(*) AS dtks FROM dinsos_dtks GROUP BY 1) d USING (kode_wilayah) "
             "ORDER BY 1")
    result = ckan.action.datastore_search_sql(sql=query)
    assert result["sql"] == query and "records_truncated" not in result
    assert [(f["id"], f["type"]) for f in result["fields"]] == [
        ("kode_wilayah", "text"), ("penduduk", "int8"), ("dtks", "int8")]
    siak = sql(ckan, "SELECT count(*) AS n FROM disdukcapil_siak")[0]["n"]
    dtks = sql(ckan, "SELECT count(*) AS n FROM dinsos_dtks")[0]["n"]
    assert sum(r["penduduk"] for r in result["records"]) == siak
    assert 0 < sum(r["dtks"] for r in result["records"]) <= dtks
