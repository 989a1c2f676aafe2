"""The `ckan` kind against a real CKAN-shaped portal served on loopback (its DataStore kept in SQLite)."""

from __future__ import annotations

import csv
import io
import json
import logging
import sqlite3
import threading
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from jsonschema import Draft202012Validator

from connectors.base import ROW
from connectors.ckan import CkanConnector
from connectors.kinds import connector_for
from connectors.registry import Source, load_source
from hub.errors import ConfigError, FatalSourceError
from tests.connectors.conformance import Conformance, IncrementalConformance, as_text
from tests.connectors.test_rest import closed_port, serve

API_KEY = "ckan-Rahasia-3e9b71"
FAST = {"max_retries": 1, "retry_backoff_seconds": 0.05, "timeout_seconds": 5}
_SQLITE_TYPES = {"int": "INTEGER", "numeric": "NUMERIC", "bool": "INTEGER", "text": "TEXT", "timestamp": "TEXT"}


class FakeCkan:
    """The part of CKAN's Action API the kind uses, with CKAN's envelopes and error shapes.

    Portals: `/` (rows_max 32000), `/capped` (rows_max 3: larger limits are cut down, as CKAN does) and
    `/nosql` (datastore_search_sql not enabled). Private resources and datasets need `Authorization: API_KEY`.
    Files of datasets are served under /dataset/...; /external/... stands for another host's files.
    """

    def __init__(self) -> None:
        self.db = sqlite3.connect(":memory:", check_same_thread=False)
        self.lock = threading.Lock()
        self.resources: dict[str, dict] = {}  # id -> {"fields": [...], "private": bool}
        self.datasets: dict[str, dict] = {}  # name -> package_show result
        self.files: dict[str, bytes] = {}  # path -> content
        self.requests: list[dict] = []
        self.server = serve(self)
        self.url = self.server.url

    # --- what tests set up ---

    def datastore(self, records: list[dict], private: bool = False) -> str:
        resource_id = str(uuid.uuid4())
        types = {}
        for record in records:
            for name, value in record.items():
                if value is not None and name not in types:
                    types[name] = ("bool" if isinstance(value, bool) else "int" if isinstance(value, int)
                                   else "numeric" if isinstance(value, float) else "text")
        fields = [{"id": "_id", "type": "int"}] + [{"id": n, "type": types.get(n, "text")} for n in records[0]]
        columns = ", ".join(f'"{f["id"]}" {_SQLITE_TYPES[f["type"]]}' for f in fields[1:])
        with self.lock:
            self.db.execute(f'CREATE TABLE "{resource_id}" ("_id" INTEGER PRIMARY KEY, {columns})')
        self.resources[resource_id] = {"fields": fields, "private": private}
        self.insert(resource_id, records)
        return resource_id

    def insert(self, resource_id: str, records: list[dict]) -> None:
        names = [f["id"] for f in self.resources[resource_id]["fields"][1:]]
        columns = ", ".join(f'"{n}"' for n in names)
        sql = f'INSERT INTO "{resource_id}" ({columns}) VALUES ({", ".join("?" for _ in names)})'
        with self.lock:
            self.db.executemany(sql, [[r.get(n) for n in names] for r in records])
            self.db.commit()

    def dataset(self, resources: list[dict], private: bool = False) -> str:
        """A dataset of file resources: each {"name", "format", "content"} or {"name", "format", "url"}."""
        name = f"dataset-{uuid.uuid4().hex[:8]}"
        package = {"id": str(uuid.uuid4()), "name": name, "title": "Data Penduduk", "private": private,
                   "state": "active", "type": "dataset", "organization": {"name": "disdukcapil"}, "resources": []}
        for spec in resources:
            resource_id = str(uuid.uuid4())
            url = spec.get("url")
            if url is None:
                path = f"/dataset/{package['id']}/resource/{resource_id}/download/{spec['file']}"
                self.files[path] = spec["content"]
                url = self.url + path
            package["resources"].append({"id": resource_id, "package_id": package["id"], "name": spec["name"],
                                         "format": spec["format"], "url": url, "datastore_active": False,
                                         "url_type": "upload" if "content" in spec else None})
        package["num_resources"] = len(package["resources"])
        self.datasets[name] = package
        return name

    # --- the portal ---

    def __call__(self, h) -> None:
        url = urlsplit(h.path)
        self.requests.append({"path": url.path, "query": h.query(), "headers": dict(h.headers)})
        if url.path.startswith("/external/"):
            return h.answer(200, self.files[url.path], content_type="text/csv")
        if url.path in self.files:
            package = next(p for p in self.datasets.values() if p["id"] == url.path.split("/")[2])
            if package["private"] and h.headers.get("Authorization") != API_KEY:
                return h.answer(403, b"Forbidden", content_type="text/plain")
            return h.answer(200, self.files[url.path], content_type="text/csv")
        portal, _, action = url.path.rpartition("/api/3/action/")
        if not action:
            return h.answer(404, b"<html>Not Found</html>", content_type="text/html")
        rows_max = 3 if portal == "/capped" else 32000
        handler = {"datastore_search": self.datastore_search, "package_show": self.package_show,
                   "datastore_search_sql": self.datastore_search_sql if portal != "/nosql" else None}.get(action)
        if handler is None:
            return self.error(h, 400, None, f"Bad request - Action name not known: {action}", action)
        authorized = h.headers.get("Authorization") == API_KEY
        status, result = handler(h.query(), authorized, rows_max)
        if status != 200:
            return self.error(h, status, *result, action)
        h.answer(200, {"help": f"{self.url}/api/3/action/help_show?name={action}", "success": True, "result": result})

    def error(self, h, status: int, kind: str | None, message, action: str) -> None:
        error = {"__type": kind, "message": message} if isinstance(message, str) else {"__type": kind, **message}
        if kind is None:
            del error["__type"]
        h.answer(status, {"help": f"{self.url}/api/3/action/help_show?name={action}", "success": False, "error": error})

    def readable(self, resource_id: str, authorized: bool):
        resource = self.resources.get(resource_id)
        if resource is None:
            return 404, ("Not Found Error", f'Not found: Resource "{resource_id}" was not found.')
        if resource["private"] and not authorized:
            return 403, ("Authorization Error", f"Access denied: User  not authorized to read resource {resource_id}")
        return None

    def datastore_search(self, query: dict, authorized: bool, rows_max: int):
        resource_id = query["resource_id"]
        refused = self.readable(resource_id, authorized)
        if refused:
            return refused
        fields = self.resources[resource_id]["fields"]
        names = [f["id"] for f in fields]
        limit = min(int(query.get("limit", 100)), rows_max)
        offset = int(query.get("offset", 0))
        filters = json.loads(query.get("filters", "{}"))
        if any(n not in names for n in filters) or query.get("sort", "_id") not in names:
            return 409, ("Validation Error", {"filters": ["field not in resource"]})
        conditions = " AND ".join(f'"{n}" IN ({", ".join("?" for _ in (v if isinstance(v, list) else [v]))})'
                                  for n, v in filters.items())
        values = [x for v in filters.values() for x in (v if isinstance(v, list) else [v])]
        sql = (f'SELECT * FROM "{resource_id}"{" WHERE " + conditions if conditions else ""} '
               f'ORDER BY "{query.get("sort", "_id")}" LIMIT {limit} OFFSET {offset}')
        records = self.select(sql, values, fields)
        links = f"/api/3/action/datastore_search?resource_id={resource_id}"
        result = {"include_total": query.get("include_total") != "false", "limit": limit,
                  "records_format": "objects", "resource_id": resource_id, "total_estimation_threshold": None,
                  "records": records, "fields": fields,
                  "_links": {"start": links, "next": f"{links}&offset={offset + limit}"}}
        if filters:
            result["filters"] = filters
        if result["include_total"]:
            with self.lock:
                result["total"] = self.db.execute(f'SELECT count(*) FROM "{resource_id}"').fetchone()[0]
            result["total_was_estimated"] = False
        return 200, result

    def datastore_search_sql(self, query: dict, authorized: bool, rows_max: int):
        sql = query["sql"]
        for resource_id in self.resources:
            if f'"{resource_id}"' in sql:
                refused = self.readable(resource_id, authorized)
                if refused:
                    return refused
        if not sql.lstrip().upper().startswith("SELECT") or ";" in sql:
            return 409, ("Validation Error", {"query": ["Query is not a single statement."]})
        used = next(r for i, r in self.resources.items() if f'"{i}"' in sql)
        try:
            with self.lock:
                cursor = self.db.execute(sql)
                names = [d[0] for d in cursor.description]
                rows = cursor.fetchall()
        except sqlite3.Error as e:
            return 409, ("Validation Error", {"query": [f"(ProgrammingError) {e}"], "info": {"statement": [sql]}})
        types = {f["id"]: f["type"] for f in used["fields"]}
        fields = [{"id": n, "type": types.get(n, "text")} for n in names]
        result = {"sql": sql, "records": [_typed(dict(zip(names, row)), types) for row in rows[:rows_max]],
                  "fields": fields}
        if len(rows) > rows_max:
            result["records_truncated"] = True
        return 200, result

    def select(self, sql: str, values: list, fields: list[dict]) -> list[dict]:
        with self.lock:
            cursor = self.db.execute(sql, values)
            names = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
        types = {f["id"]: f["type"] for f in fields}
        return [_typed(dict(zip(names, row)), types) for row in rows]

    def package_show(self, query: dict, authorized: bool, rows_max: int):
        package = self.datasets.get(query.get("id")) or next(
            (p for p in self.datasets.values() if p["id"] == query.get("id")), None)
        if package is None:
            return 404, ("Not Found Error", "Not found")
        if package["private"] and not authorized:
            return 403, ("Authorization Error", f"User  not authorized to read package {package['id']}")
        return 200, package


def _typed(record: dict, types: dict) -> dict:
    """A row as CKAN's PostgreSQL writes it in JSON: booleans as true/false, numbers as numbers."""
    return {k: bool(v) if types.get(k) == "bool" and v is not None else v for k, v in record.items()}


@pytest.fixture(scope="module")
def portal():
    server = FakeCkan()
    yield server
    server.server.stop()


def ckan_source(tmp_path: Path, url: str, **options) -> Source:
    return Source(
        id="bogor_ckan", title="Portal data Kota Bogor", description="", agency_code="diskominfo",
        agency_name="Diskominfo", standard_ref="penduduk@1.0.0", kind="ckan", schedule=None,
        options={"url": url, **FAST, **options}, mapping={"nik": {"from": "nik"}}, path=tmp_path / "bogor_ckan.yaml",
    )


def read(source: Source, cursor=None) -> list:
    return list(connector_for(source).read(cursor))


def rows(source: Source, cursor=None) -> list[dict]:
    return [r for b in read(source, cursor) for r in b.records.to_pylist()]


def csv_bytes(records: list[dict], delimiter: str = ",") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(records[0])
    writer.writerows([[as_text(v) or "" for v in r.values()] for r in records])
    return out.getvalue().encode()


PEOPLE = [{"nik": f"32710101019000{i:02d}", "nama": f"Warga {i}", "kelurahan": "Babakan" if i % 2 else "Tegallega",
           "diubah": f"2024-01-{i:02d}T08:00:00"} for i in range(1, 12)]


# --- DataStore ---------------------------------------------------------------------------------------------------


def test_datastore_pages_by_offset_in_row_order_and_keeps_ckans_id(portal, tmp_path):
    resource_id = portal.datastore(PEOPLE)
    batches = read(ckan_source(tmp_path, portal.url, resource_id=resource_id, page_size=3, batch_rows=4))
    assert [b.records.num_rows for b in batches] == [4, 4, 3]
    got = [r for b in batches for r in b.records.to_pylist()]
    assert got == [{"_id": str(i), **p, ROW: i} for i, p in enumerate(PEOPLE, start=1)]
    sent = [r["query"] for r in portal.requests if r["query"].get("resource_id") == resource_id]
    assert sent[0] == {"resource_id": resource_id, "limit": "0"}  # the fields, checked first
    assert [(q["offset"], q["limit"], q["sort"]) for q in sent[1:]] == [("0", "3", "_id"), ("3", "3", "_id"),
                                                                      ("6", "3", "_id"), ("9", "3", "_id")]


def test_a_portal_capping_the_page_size_is_read_to_the_end(portal, tmp_path):
    resource_id = portal.datastore(PEOPLE)
    assert len(rows(ckan_source(tmp_path, f"{portal.url}/capped", resource_id=resource_id, page_size=5))) == 11


def test_filters_select_records(portal, tmp_path):
    resource_id = portal.datastore(PEOPLE)
    one = rows(ckan_source(tmp_path, portal.url, resource_id=resource_id, filters={"kelurahan": "Babakan"}))
    assert [r["nama"] for r in one] == [f"Warga {i}" for i in range(1, 12, 2)]
    several = rows(ckan_source(tmp_path, portal.url, resource_id=resource_id,
                               filters={"nama": ["Warga 2", "Warga 3"]}))
    assert [r["nama"] for r in several] == ["Warga 2", "Warga 3"]


def test_incremental_reads_follow_a_timestamp_field_through_datastore_search_sql(portal, tmp_path):
    resource_id = portal.datastore(list(reversed(PEOPLE)))  # CKAN's row order is not the cursor's
    source = ckan_source(tmp_path, portal.url, resource_id=resource_id, cursor_field="diubah", page_size=2,
                         filters={"kelurahan": "Babakan"})
    batches = read(source, "2024-01-05T08:00:00")
    assert [r["nama"] for b in batches for r in b.records.to_pylist()] == ["Warga 7", "Warga 9", "Warga 11"]
    assert batches[-1].cursor == "2024-01-11T08:00:00"
    sql = [r["query"]["sql"] for r in portal.requests if resource_id in r["query"].get("sql", "")]
    assert sql[0] == (f'SELECT "_id", "nik", "nama", "kelurahan", "diubah" FROM "{resource_id}" '
                      f"WHERE \"diubah\" > '2024-01-05T08:00:00' AND \"kelurahan\" IN ('Babakan') "
                      f'ORDER BY "diubah", "_id" LIMIT 2 OFFSET 0')


def test_a_cursor_holding_a_quote_stays_a_value(portal, tmp_path):
    resource_id = portal.datastore(PEOPLE)
    source = ckan_source(tmp_path, portal.url, resource_id=resource_id, cursor_field="nama")
    assert rows(source, "Z' OR '1'='1") == []


def test_incremental_on_ckans_id(portal, tmp_path):
    resource_id = portal.datastore(PEOPLE)
    batches = read(ckan_source(tmp_path, portal.url, resource_id=resource_id, cursor_field="_id"), 9)
    assert [r["_id"] for b in batches for r in b.records.to_pylist()] == ["10", "11"]
    assert batches[-1].cursor == 11


def test_a_portal_without_sql_search_is_fatal_and_says_so(portal, tmp_path):
    resource_id = portal.datastore(PEOPLE)
    source = ckan_source(tmp_path, f"{portal.url}/nosql", resource_id=resource_id, cursor_field="diubah")
    with pytest.raises(FatalSourceError, match="datastore_search_sql .*Action name not known"):
        rows(source)


def test_a_missing_resource_is_fatal_with_ckans_explanation(portal, tmp_path):
    source = ckan_source(tmp_path, portal.url, resource_id="tidak-ada")
    with pytest.raises(FatalSourceError, match=r'bogor_ckan: CKAN datastore_search at 127\.0\.0\.1:\d+: '
                                               r'Not Found Error: Not found: Resource "tidak-ada" was not found'):
        connector_for(source).check()


def test_a_cursor_field_or_filter_not_in_the_resource_is_fatal_and_lists_the_fields(portal, tmp_path):
    resource_id = portal.datastore(PEOPLE)
    with pytest.raises(FatalSourceError, match=r"options/cursor_field: 'updated_at' is not a field .*'diubah'"):
        rows(ckan_source(tmp_path, portal.url, resource_id=resource_id, cursor_field="updated_at"))
    with pytest.raises(FatalSourceError, match=r"options/filters: 'desa' is not a field"):
        rows(ckan_source(tmp_path, portal.url, resource_id=resource_id, filters={"desa": "Babakan"}))


def test_a_private_resource_needs_the_api_key_which_never_shows(portal, tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("HUB_TEST_CKAN_KEY", API_KEY)
    monkeypatch.setenv("HUB_TEST_CKAN_WRONG", "wrong-Rahasia-0000")
    resource_id = portal.datastore(PEOPLE, private=True)
    source = ckan_source(tmp_path, portal.url, resource_id=resource_id, api_key={"env": "HUB_TEST_CKAN_KEY"})
    assert len(rows(source)) == 11
    assert portal.requests[-1]["headers"]["Authorization"] == API_KEY  # the token alone, as CKAN expects
    for api_key in (None, {"env": "HUB_TEST_CKAN_WRONG"}):
        options = {"api_key": api_key} if api_key else {}
        with pytest.raises(FatalSourceError, match="Authorization Error: Access denied") as raised:
            rows(ckan_source(tmp_path, portal.url, resource_id=resource_id, **options))
        assert "Rahasia" not in str(raised.value)
    assert "Rahasia" not in caplog.text + connector_for(source).describe()


# --- a dataset's file ----------------------------------------------------------------------------------------


def test_a_datasets_csv_file_is_read_by_resource_name(portal, tmp_path):
    name = portal.dataset([{"name": "Data Penduduk 2024", "format": "CSV", "file": "penduduk-2024.csv",
                            "content": csv_bytes(PEOPLE)},
                           {"name": "Kamus data", "format": "PDF", "file": "kamus.pdf", "content": b"%PDF"}])
    source = ckan_source(tmp_path, portal.url, dataset=name, resource="data penduduk 2024", batch_rows=5)
    batches = read(source)
    assert [b.records.num_rows for b in batches] == [5, 5, 1]
    assert [r for b in batches for r in b.records.to_pylist()] == [{**p, ROW: i} for i, p in enumerate(PEOPLE, 1)]


def test_a_datasets_json_file_is_read_by_resource_id(portal, tmp_path):
    name = portal.dataset([{"name": "penduduk", "format": "JSON", "file": "penduduk.json",
                            "content": json.dumps(PEOPLE[:2]).encode()}])
    resource_id = portal.datasets[name]["resources"][0]["id"]
    assert rows(ckan_source(tmp_path, portal.url, dataset=name, resource=resource_id)) == \
        [{**p, ROW: i} for i, p in enumerate(PEOPLE[:2], 1)]


def test_a_resource_not_in_the_dataset_or_in_a_format_the_hub_cannot_read_is_fatal(portal, tmp_path):
    name = portal.dataset([{"name": "Kamus data", "format": "PDF", "file": "kamus.pdf", "content": b"%PDF"}])
    with pytest.raises(FatalSourceError, match=r"no resource is named 'penduduk' .*\['Kamus data'\]"):
        connector_for(ckan_source(tmp_path, portal.url, dataset=name, resource="penduduk")).check()
    with pytest.raises(FatalSourceError, match=r"resource 'Kamus data' is 'PDF'; the hub reads \["):
        rows(ckan_source(tmp_path, portal.url, dataset=name, resource="Kamus data"))


def test_a_private_datasets_file_gets_the_api_key_and_another_hosts_file_does_not(portal, tmp_path, monkeypatch):
    monkeypatch.setenv("HUB_TEST_CKAN_KEY", API_KEY)
    external = f"http://localhost:{portal.server.server_port}/external/{uuid.uuid4().hex}.csv"
    portal.files[urlsplit(external).path] = csv_bytes(PEOPLE[:1])
    name = portal.dataset([{"name": "upload", "format": "csv", "file": "p.csv", "content": csv_bytes(PEOPLE[:2])},
                           {"name": "tautan", "format": "CSV", "url": external}], private=True)
    key = {"api_key": {"env": "HUB_TEST_CKAN_KEY"}}
    assert len(rows(ckan_source(tmp_path, portal.url, dataset=name, resource="upload", **key))) == 2
    assert portal.requests[-1]["headers"]["Authorization"] == API_KEY
    assert len(rows(ckan_source(tmp_path, portal.url, dataset=name, resource="tautan", **key))) == 1
    assert portal.requests[-1]["path"] == urlsplit(external).path
    assert "Authorization" not in portal.requests[-1]["headers"]


# --- options -----------------------------------------------------------------------------------------------------


def registration(tmp_path: Path, options: dict) -> Path:
    data = {"id": "bogor_ckan", "title": "Portal data Kota Bogor", "agency": {"code": "d", "name": "Diskominfo"},
            "standard": "penduduk@1.0.0", "kind": "ckan", "mapping": {"nik": {"from": "nik"}}, "options": options}
    path = tmp_path / "bogor_ckan.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_an_api_key_written_in_the_registration_is_refused(tmp_path):
    path = registration(tmp_path, {"url": "https://data.kotabogor.go.id", "resource_id": "x", "api_key": API_KEY})
    with pytest.raises(ConfigError, match="options/api_key"):
        load_source(path, tmp_path)


def test_a_registration_names_either_a_datastore_resource_or_a_datasets_file(tmp_path):
    both = registration(tmp_path, {"url": "https://data.kotabogor.go.id", "resource_id": "x", "dataset": "d",
                                   "resource": "r"})
    with pytest.raises(ConfigError, match="options/resource_id: give either resource_id .* not both"):
        load_source(both, tmp_path)
    neither = registration(tmp_path, {"url": "https://data.kotabogor.go.id", "dataset": "d"})
    with pytest.raises(ConfigError, match="options: 'resource' is a required property"):
        load_source(neither, tmp_path)
    with pytest.raises(ConfigError, match="options/cursor_field: applies to a DataStore resource"):
        CkanConnector(ckan_source(tmp_path, "https://data.kotabogor.go.id", dataset="d", resource="r",
                                  cursor_field="diubah"))


def test_the_example_options_of_a_new_registration_are_valid(tmp_path):
    example = CkanConnector.example_options("bogor_ckan")
    assert not list(Draft202012Validator(CkanConnector.options_schema).iter_errors(example))
    CkanConnector(ckan_source(tmp_path, **example))


def test_describe_names_the_portal_and_resource(tmp_path):
    assert connector_for(ckan_source(tmp_path, "https://data.kotabogor.go.id/", resource_id="abc")).describe() == \
        "ckan data.kotabogor.go.id datastore abc"
    assert connector_for(ckan_source(tmp_path, "https://data.kotabogor.go.id", dataset="penduduk",
                                     resource="2024")).describe() == \
        "ckan data.kotabogor.go.id dataset penduduk resource 2024"


# --- the connector conformance suite ------------------------------------------------------------------


class TestCkanDatastoreConformance(IncrementalConformance):
    """A DataStore resource: numbers and booleans typed by CKAN, read by datastore_search or, incrementally,
    datastore_search_sql."""

    @pytest.fixture(autouse=True)
    def _portal(self, portal):
        self.portal = portal

    def make_source(self, tmp_path, records, *, batch_rows, incremental):
        options = {"resource_id": self.portal.datastore(records), "page_size": 5, "batch_rows": batch_rows}
        if incremental:
            options["cursor_field"] = "id"
        return ckan_source(tmp_path, self.portal.url, **options)

    def add_records(self, source, records):
        self.portal.insert(source.options["resource_id"], records)

    def unreachable_source(self, tmp_path):
        return ckan_source(tmp_path, f"http://127.0.0.1:{closed_port()}", resource_id="abc")


class TestCkanFileConformance(Conformance):
    """A dataset's CSV file, as portals hold uploads."""

    @pytest.fixture(autouse=True)
    def _portal(self, portal):
        self.portal = portal

    def make_source(self, tmp_path, records, *, batch_rows, incremental):
        name = self.portal.dataset([{"name": "uji", "format": "CSV", "file": "uji.csv", "content": csv_bytes(records)}])
        return ckan_source(tmp_path, self.portal.url, dataset=name, resource="uji", batch_rows=batch_rows)

    def unreachable_source(self, tmp_path):
        return ckan_source(tmp_path, f"http://127.0.0.1:{closed_port()}", dataset="d", resource="r")
