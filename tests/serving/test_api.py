"""The native catalog API beyond listing: rows with filters and sort, versions, lineage, quarantine, SQL."""

from __future__ import annotations

import json
import re
from collections import Counter

import httpx
import pytest

from _served import hub


def rows(api: str, dataset: str, headers: dict | None = None, **params) -> httpx.Response:
    return httpx.get(f"{api}/api/datasets/{dataset}/rows", params=params, headers=headers, timeout=60)


def operator_sql(home, sql: str) -> list[dict]:
    """The same question asked of the unmasked data by the operator's own `hub query`: an independent answer."""
    return json.loads(hub(home, "query", sql, "--format", "json").stdout)


def test_filters_select_the_rows_sql_counts(api, home, analyst):
    kelurahan = operator_sql(home, "SELECT kode_wilayah, count(*) AS n FROM penduduk GROUP BY 1 ORDER BY 2 DESC, 1")[0]
    page = rows(api, "penduduk", analyst, filter=f"kode_wilayah={kelurahan['kode_wilayah']}", limit=1000).json()
    assert page["total"] == kelurahan["n"] == len(page["rows"])
    assert {r["kode_wilayah"] for r in page["rows"]} == {kelurahan["kode_wilayah"]}

    [women] = operator_sql(home, f"SELECT count(*) AS n FROM penduduk WHERE jenis_kelamin = '2' "
                                 f"AND kode_wilayah <> '{kelurahan['kode_wilayah']}' AND _source = 'dinsos_dtks'")
    both = rows(api, "penduduk", analyst, filter=["jenis_kelamin=2", f"kode_wilayah!={kelurahan['kode_wilayah']}",
                                          "_source=dinsos_dtks"], limit=1).json()
    assert both["total"] == women["n"] > 0


def test_sort_and_pages_give_every_row_once(api, analyst):
    whole = httpx.get(api + "/api/datasets/penduduk/download.json", headers=analyst, timeout=60).json()
    seen = []
    for offset in range(0, 700, 100):
        page = rows(api, "penduduk", analyst, sort="-kode_wilayah,agama", limit=100, offset=offset).json()
        seen += page["rows"]
    keys = [(r["kode_wilayah"], r["agama"]) for r in seen]
    assert keys == sorted(keys, key=lambda k: (-int(k[0].replace(".", "")), k[1]))
    as_text = lambda records: Counter(json.dumps(r, sort_keys=True) for r in records)  # noqa: E731
    assert len(seen) == 599 and as_text(seen) == as_text(whole)


def test_text_search_and_chosen_fields(api, analyst):
    page = rows(api, "penduduk", analyst, q="32.71.03", fields="kode_wilayah,_source", limit=1000).json()
    assert page["total"] > 0 and all("32.71.03" in r["kode_wilayah"] for r in page["rows"])
    assert all(set(r) == {"kode_wilayah", "_source"} for r in page["rows"])
    assert [f["name"] for f in page["fields"]] == ["kode_wilayah", "_source"] and page["masked_fields"] == []


def test_rows_stay_masked_or_pseudonymized_whatever_is_asked(api, analyst):
    page = rows(api, "penduduk", analyst, fields="nik,nama,tanggal_lahir", sort="kode_wilayah", limit=50).json()
    assert page["masked_fields"] == ["nama", "tanggal_lahir"] and page["pseudonymized_fields"] == ["nik"]
    assert all(re.fullmatch(r"psn_[a-z2-7]{13}", r["nik"]) and r["nama"] == "***"
               and r["tanggal_lahir"].endswith("-**-**") for r in page["rows"])
    assert not re.search(r"\d{16}", json.dumps(page["rows"]))
    assert rows(api, "penduduk", limit=1).status_code == 401  # terbatas: no token, no rows


def test_a_pseudonym_finds_its_person_in_every_dataset(api, home, analyst):
    [person] = rows(api, "disdukcapil_siak", analyst, fields="nik,kode_wilayah", limit=1).json()["rows"]
    found = rows(api, "penduduk", analyst, filter=f"nik={person['nik']}").json()
    assert found["total"] == 1 and found["rows"][0]["kode_wilayah"] == person["kode_wilayah"]
    [nik] = operator_sql(home, "SELECT nik FROM disdukcapil_siak LIMIT 1")
    assert rows(api, "penduduk", analyst, filter=f"nik={nik['nik']}").json()["total"] == 0  # the NIK itself finds nothing


@pytest.mark.parametrize("params, message", [
    ({"filter": "nama=Budi"}, "'nama' is personal data"),
    ({"sort": "nama"}, "'nama' is personal data"),
    ({"filter": "umur>3"}, "no field 'umur'"),
    ({"filter": "kode_wilayah"}, "FIELD OP VALUE"),
    ({"fields": "kode_wilayah,warna"}, "no field 'warna'"),
    ({"sort": "kode_wilayah sideways"}, "FIELD desc"),
])
def test_bad_row_requests_say_what_is_wrong(api, analyst, params, message):
    done = rows(api, "penduduk", analyst, **params)
    assert done.status_code == 400 and message in done.json()["detail"]
    assert "3271010101010001" not in done.text


def test_versions_lineage_and_quality(api, published):
    versions = httpx.get(api + "/api/datasets/dinsos_dtks/versions").json()["versions"]
    assert versions[0]["snapshot_id"] == published["dinsos_dtks"]["snapshot_id"] and versions[0]["rows"] == 119
    graph = httpx.get(api + "/api/datasets/penduduk/lineage").json()
    kinds = {n["id"]: n["kind"] for n in graph["nodes"]}
    assert kinds["penduduk"] == "integrated" and kinds["dinsos_dtks"] == kinds["disdukcapil_siak"] == "harmonized"
    systems = [n for n, kind in kinds.items() if kind == "system"]
    assert len(systems) == 2 and {n.split(":")[1] for n in systems} == {"dinsos", "disdukcapil"}
    assert {(e["from"], e["to"]) for e in graph["edges"]} >= {("dinsos_dtks", "penduduk"),
                                                              ("disdukcapil_siak", "penduduk")}
    assert all(any(e["to"] == s for e in graph["edges"]) for s in ("dinsos_dtks", "disdukcapil_siak"))
    quality = httpx.get(api + "/api/datasets/dinsos_dtks/quality").json()
    assert (quality["rows_in"], quality["rows_published"], quality["rows_quarantined"]) == (125, 119, 6)
    assert quality["validation"]["suite"] == "penduduk@1.0.0"
    for path in ("versions", "lineage", "quality", "quarantine"):
        assert httpx.get(api + f"/api/datasets/nope/{path}").status_code == 404


def test_quarantine_is_for_stewards_and_its_own_agency(api, tokens):
    quarantine = api + "/api/datasets/dinsos_dtks/quarantine"
    assert httpx.get(quarantine).status_code == 401
    assert httpx.get(quarantine, headers=tokens["analis"]).status_code == 403
    assert httpx.get(quarantine, headers=tokens["disdukcapil"]).status_code == 403
    own = httpx.get(quarantine, headers=tokens["dinsos"]).json()
    assert len(own["rows"]) == 6 and all(isinstance(r["record"], dict) and r["record"] for r in own["rows"])
    steward = httpx.get(quarantine, headers=tokens["walidata"]).json()
    assert [r["row"] for r in steward["rows"]] == [r["row"] for r in own["rows"]]
    assert "record" not in json.dumps(steward)


def test_quarantine_summary_counts_reasons_without_values(api, tokens):
    summary = httpx.get(api + "/api/datasets/dinsos_dtks/quarantine", headers=tokens["walidata"]).json()
    assert summary["rows_quarantined"] == 6 and len(summary["rows"]) == 6
    by_code = {r["code"]: r["rows"] for r in summary["reasons"]}
    assert by_code == Counter(code for r in summary["rows"] for code in r["reasons"])
    assert by_code["nik:duplicate_key"] == 2 and all(":" in code for code in by_code)
    assert [r["row"] for r in summary["rows"]] == sorted(r["row"] for r in summary["rows"])
    assert "record" not in json.dumps(summary) and not re.search(r"\d{16}", json.dumps(summary["rows"]))
    paged = httpx.get(api + "/api/datasets/dinsos_dtks/quarantine", params={"limit": 2, "offset": 4},
                      headers=tokens["walidata"]).json()
    assert paged["rows"] == summary["rows"][4:6]


def sql(api: str, text: str, limit: int = 1000, headers: dict | None = None) -> httpx.Response:
    return httpx.post(api + "/api/sql", json={"sql": text, "limit": limit}, headers=headers, timeout=60)


def test_sql_joins_datasets_and_agrees_with_the_operator(api, home, analyst):
    text = ("SELECT s.kode_wilayah, count(*) AS warga, count(d.kode_wilayah) AS di_dtks "
            "FROM disdukcapil_siak s LEFT JOIN (SELECT DISTINCT kode_wilayah FROM dinsos_dtks) d "
            "USING (kode_wilayah) GROUP BY 1 ORDER BY 1")
    done = sql(api, text, headers=analyst)
    assert done.status_code == 200, done.text
    body = done.json()
    assert [c["name"] for c in body["columns"]] == ["kode_wilayah", "warga", "di_dtks"]
    assert body["rows"] == operator_sql(home, text) and not body["truncated"]


def test_sql_sees_personal_data_pseudonymized_or_masked_only(api, analyst):
    body = sql(api, "SELECT p.nik, p.nama, d.tanggal_lahir FROM penduduk p JOIN dinsos_dtks d USING (nik) "
                    "UNION ALL SELECT nik, nama, CAST(tanggal_lahir AS VARCHAR) FROM disdukcapil_siak",
               headers=analyst).json()
    assert body["rows"] and not re.search(r"\d{16}", json.dumps(body["rows"]))
    assert all(r["nama"] == "***" and r["nik"].startswith("psn_") for r in body["rows"])


def test_sql_row_limit(api, analyst):
    body = sql(api, "SELECT * FROM penduduk", limit=10, headers=analyst).json()
    assert len(body["rows"]) == 10 and body["truncated"] is True
    assert sql(api, "SELECT 1", limit=10**7).status_code == 422


@pytest.mark.parametrize("text, message", [
    ("SELECT 1; SELECT 2", "exactly one SELECT"),
    ("DROP VIEW penduduk", "only SELECT"),
    ("INSERT INTO penduduk SELECT * FROM penduduk", "only SELECT"),
    ("COPY penduduk TO '/tmp/out.csv'", "only SELECT"),
    ("ATTACH '/tmp/other.db'", "only SELECT"),
    ("SET threads = 1", "only SELECT"),
    ("INSTALL httpfs", "only SELECT"),
    ("SELECT * FROM read_csv('/etc/passwd')", "read_csv() is not allowed"),
    ("SELECT * FROM '/etc/passwd'", "unknown dataset '/etc/passwd'"),
    ("SELECT * FROM glob('/*')", "glob() is not allowed"),
    ("SELECT * FROM duckdb_settings()", "duckdb_settings() is not allowed"),
    ("SELECT * FROM penduduk p JOIN (SELECT * FROM query('SELECT 1')) q ON true", "query() is not allowed"),
    ("WITH x AS (SELECT * FROM read_parquet('/tmp/*.parquet')) SELECT * FROM x", "read_parquet() is not allowed"),
    ("SELECT * FROM no_such_dataset", "unknown dataset 'no_such_dataset'"),
    ("SELEC 1", "syntax error"),
])
def test_sql_refuses_anything_but_a_select_over_the_datasets(api, analyst, text, message):
    done = sql(api, text, headers=analyst)
    assert done.status_code == 400 and message in done.json()["detail"], done.text


def test_sql_stops_at_its_time_limit(home, published):
    from catalog.identity import Identity
    from catalog.sql import run_sql
    from hub.errors import QueryError
    from hub.settings import ROOT, Settings

    settings = Settings(home=home, catalog_url=f"sqlite:///{home / 'catalog.db'}",
                        registry=ROOT / "connectors" / "registry")
    analyst = Identity(name="analis", role="analyst", agency=None)
    with pytest.raises(QueryError, match="time limit of 0.5 s"):
        run_sql(settings, "SELECT count(*) FROM range(1000000000000)", analyst, None, timeout=0.5)
    answered = run_sql(settings, "SELECT count(*) AS n FROM penduduk", analyst, None, timeout=30)
    assert answered["table"].to_pylist() == [{"n": 599}] and answered["datasets"] == ["penduduk"]


def test_data_docs_of_a_run(api, published):
    page = httpx.get(api + "/api/datasets/dinsos_dtks/data-docs.html", timeout=120)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Expectation Validation Result" in page.text and published["dinsos_dtks"]["run_id"] in page.text
    assert not re.search(r"\d{16}", page.text)
    assert httpx.get(api + "/api/datasets/dinsos_dtks/data-docs.html", params={"run_id": "nope"}).status_code == 404
    assert httpx.get(api + "/api/datasets/penduduk/data-docs.html").status_code == 404  # its sources' runs checked


def test_a_contains_filter_ignores_case(api, home, analyst):
    [n] = operator_sql(home, "SELECT count(*) AS n FROM penduduk WHERE _source ILIKE '%SIAK%'")
    page = rows(api, "penduduk", analyst, filter="_source~SIAK", limit=1).json()
    assert page["total"] == n["n"] > 0
    assert rows(api, "penduduk", analyst, filter="nama~a").status_code == 400


def test_reads_downloads_and_queries_are_in_the_audit_log(api, home, analyst):
    token = re.search(r"hub_\w+_[\w-]+", hub(home, "users", "create", "analis-bappeda", "--role", "analyst").stdout)[0]
    assert rows(api, "penduduk", analyst, limit=3).status_code == 200
    assert rows(api, "penduduk", limit=3).status_code == 401  # refused, so not a read
    assert httpx.get(f"{api}/api/datasets/penduduk/rows", params={"fields": "kode_wilayah"}, timeout=60,
                     headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert httpx.get(f"{api}/api/datasets/dinsos_dtks/download.csv", headers=analyst, timeout=60).status_code == 200
    assert sql(api, "SELECT count(*) FROM penduduk WHERE nik = '3271010101010001'", headers=analyst).status_code == 200
    assert sql(api, "SELECT * FROM read_csv('/etc/passwd')").status_code == 400

    accessed = json.loads(hub(home, "audit", "who-accessed", "penduduk", "--json").stdout)
    reads = [(e["actor"], e["role"], e["action"], e["client"]) for e in accessed if e["action"] == "rows.read"]
    assert ("analis", "analyst", "rows.read", "127.0.0.1") in reads
    assert ("analis-bappeda", "analyst", "rows.read", "127.0.0.1") in reads
    assert not any(actor == "anonymous" for actor, *_ in reads)
    assert any(e["action"] == "sql.query" for e in accessed)
    downloads = json.loads(hub(home, "audit", "who-accessed", "dinsos_dtks", "--json").stdout)
    assert any(e["action"] == "download" and e["details"]["format"] == "csv" and e["actor"] == "analis"
               for e in downloads)
    log = hub(home, "audit", "list", "--limit", "500", "--json").stdout
    assert "3271010101010001" not in log and token not in log
    refused = [e for e in json.loads(log) if e["action"] == "sql.query" and e["details"]["outcome"] == "refused"]
    assert refused  # a refused query is a query too
    created = [e for e in json.loads(log) if e["action"] == "user.create"]
    assert ("operator", "analis-bappeda", "analyst") in [(e["role"], e["details"]["user"], e["details"]["role"])
                                                          for e in created]
    assert hub(home, "audit", "verify").returncode == 0


def test_an_oversized_request_body_is_refused_before_it_is_read(api, analyst):
    big = json.dumps({"sql": "SELECT 1 -- " + "x" * (2 << 20)})
    for path in ("/api/sql", "/api/3/action/datastore_search_sql", "/sql"):
        answer = httpx.post(api + path, content=big, headers={**analyst, "Content-Type": "application/json"})
        assert answer.status_code == 413 and "larger than 1048576 bytes" in answer.text, path

    def chunks():  # no Content-Length: sent chunked
        for _ in range(40):
            yield b"x" * 65536

    assert httpx.post(api + "/api/sql", content=chunks(), headers=analyst).status_code == 413
    small = httpx.post(api + "/api/sql", content=(b'{"sql": "SELECT 1 AS n"}' for _ in range(1)),
                       headers={**analyst, "Content-Type": "application/json"})
    assert small.status_code == 200 and small.json()["rows"] == [{"n": 1}]
