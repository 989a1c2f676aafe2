"""The `hub` command line and the catalog API, as a newcomer uses them: real processes, a real HTTP server."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from _served import hub


def test_run_prints_one_json_object_with_the_run_figures(published):
    result = published["dinsos_dtks"]
    # ... and what it brought up to date: the integrated dataset and the indicators that read it.
    assert (result["integrated"]["dataset"], result["integrated"]["rows"]) == ("penduduk", 599)
    assert result["integrated"]["sources"] == ["dinsos_dtks", "disdukcapil_siak"]
    indicators = {i["dataset"]: i for i in result["indicators"]}
    assert indicators["penduduk_umur_jenis_kelamin"]["status"] in ("published", "unchanged")
    # Those that also read a dataset not yet published say so, and wait for it.
    waiting = indicators["fasilitas_per_penduduk_kecamatan"]
    assert waiting["status"] == "waiting" and "fasilitas_kesehatan" in waiting["reason"]
    assert {"source", "rows_in", "rows_published", "rows_quarantined", "dataset", "snapshot_id"} <= set(result)
    assert (result["rows_in"], result["rows_published"], result["rows_quarantined"]) == (125, 119, 6)
    assert result["dataset"] == "dinsos_dtks" and isinstance(result["snapshot_id"], int)


def test_unknown_source_is_a_clear_error(home):
    done = hub(home, "run", "no_such_source", "--json", check=False)
    assert done.returncode == 2
    assert "unknown source 'no_such_source'" in done.stderr and "dinsos_dtks" in done.stderr


def test_sources_and_catalog_lists(home, published):
    sources = json.loads(hub(home, "sources", "list", "--json").stdout)
    # The demo's sources use every connector kind; listing them needs none of their systems (no HUB_DEMO_URL).
    assert {s["id"]: s["kind"] for s in sources} == {"dinsos_dtks": "file", "disdukcapil_siak": "sql", "dinsos_bansos": "file",
                                                     "disdik_dapodik": "file", "dinkes_faskes": "rest",
                                                     "dinkes_sitb": "file", "dpmptsp_oss": "file",
                                                     "satudata_posyandu": "ckan"}
    datasets = {d["id"]: d for d in json.loads(hub(home, "catalog", "list", "--json").stdout)}
    # Each `hub run` brought the integrated dataset and the indicator that reads it up to date.
    assert set(datasets) == {"dinsos_dtks", "disdukcapil_siak", "penduduk", "penduduk_umur_jenis_kelamin"}
    assert datasets["penduduk"]["rows"] == 599 and datasets["penduduk"]["kind"] == "integrated"


def test_query_in_csv_and_json(home, published):
    sql = "SELECT kode_wilayah, count(*) AS n FROM penduduk GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 3"
    rows = json.loads(hub(home, "query", sql, "--format", "json").stdout)
    assert len(rows) == 3 and all(re.fullmatch(r"32\.71\.\d\d\.\d{4}", r["kode_wilayah"]) for r in rows)
    csv_lines = hub(home, "query", sql, "--format", "csv").stdout.splitlines()
    assert csv_lines[0] == '"kode_wilayah","n"' and len(csv_lines) == 4


def test_bad_sql_is_an_error_not_a_traceback(home, published):
    done = hub(home, "query", "SELECT * FROM no_such_dataset", check=False)
    assert done.returncode == 2 and "no_such_dataset" in done.stderr and "Traceback" not in done.stderr


def test_api_lists_datasets(api):
    body = httpx.get(api + "/api/datasets").json()
    assert {d["id"] for d in body["datasets"]} == {"dinsos_dtks", "disdukcapil_siak", "penduduk",
                                                  "penduduk_umur_jenis_kelamin"}


def test_api_shows_metadata_schema_versions_quality_and_lineage(api, published):
    d = httpx.get(api + "/api/datasets/dinsos_dtks").json()
    assert d["standard"] == "penduduk" and d["standard_version"] == "1.0.0"
    assert [f["name"] for f in d["schema"]] == ["nik", "nama", "jenis_kelamin", "agama", "tanggal_lahir", "kode_wilayah"]
    assert all(f["title"] and f["description"] for f in d["schema"])
    assert d["versions"][0]["snapshot_id"] == published["dinsos_dtks"]["snapshot_id"]
    assert d["versions"][0]["standard"] == "penduduk@1.0.0"
    assert d["quality"]["rows_quarantined"] == 6 and d["quality"]["score"] == pytest.approx(119 / 125)
    assert d["lineage"][0]["relation"] == "harmonized_from"
    integrated = httpx.get(api + "/api/datasets/penduduk").json()
    assert {e["upstream"] for e in integrated["lineage"]} == {"dinsos_dtks", "disdukcapil_siak"}
    # SIAK is harmonized to penduduk@1.1.0 and Dinsos still to 1.0.0: the integrated table follows the newest
    # compatible version, and Dinsos's rows lack its new fields.
    assert httpx.get(api + "/api/datasets/disdukcapil_siak").json()["versions"][0]["standard"] == "penduduk@1.1.0"
    assert integrated["standard_version"] == "1.1.0"
    assert [f["name"] for f in integrated["schema"]][-2:] == ["status_perkawinan", "alamat"]
    assert httpx.get(api + "/api/datasets/nope").status_code == 404


def test_api_rows_page_and_mask_personal_data(api, analyst):
    first = httpx.get(api + "/api/datasets/penduduk/rows", params={"limit": 5, "offset": 0}, headers=analyst).json()
    second = httpx.get(api + "/api/datasets/penduduk/rows", params={"limit": 5, "offset": 5}, headers=analyst).json()
    assert first["total"] == 599 and len(first["rows"]) == 5 and first["rows"] != second["rows"]
    # The integrated table follows penduduk@1.1.0, which adds the address.
    assert set(first["masked_fields"]) == {"nama", "tanggal_lahir", "alamat"} and first["pseudonymized_fields"] == ["nik"]
    text = json.dumps(first["rows"]) + json.dumps(second["rows"])
    assert not re.search(r"\d{16}", text), "a whole NIK left the hub"
    assert all(r["nama"] == "***" and r["nik"].startswith("psn_") for r in first["rows"])
    assert {r["alamat"] for r in first["rows"] + second["rows"]} <= {"***", None}
    assert httpx.get(api + "/api/datasets/penduduk/rows", params={"limit": 100000}, headers=analyst).status_code == 422


def test_api_serves_the_data_dictionary_of_every_dataset(api):
    for dataset in ("dinsos_dtks", "penduduk"):
        data = httpx.get(api + f"/api/datasets/{dataset}/dictionary").json()
        assert [f["name"] for f in data["fields"]][:2] == ["nik", "nama"]
        page = httpx.get(api + f"/api/datasets/{dataset}/dictionary.html")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "nik:pattern" in page.text and "Batu Tulis" in page.text
        assert "# Kamus data" in httpx.get(api + f"/api/datasets/{dataset}/dictionary.md").text
    assert httpx.get(api + "/api/datasets/nope/dictionary").status_code == 404


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_api_downloads_a_whole_dataset_masked(api, analyst, fmt):
    import csv
    import io

    import pyarrow.parquet as pq

    done = httpx.get(api + f"/api/datasets/penduduk/download.{fmt}", headers=analyst, timeout=60)
    assert done.status_code == 200 and 'filename="penduduk.' in done.headers["content-disposition"]
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(done.text)))
    elif fmt == "json":
        rows = done.json()
    else:
        rows = pq.read_table(io.BytesIO(done.content)).to_pylist()
    assert len(rows) == 599 and {r["_source"] for r in rows} == {"dinsos_dtks", "disdukcapil_siak"}
    assert all(r["nik"].startswith("psn_") and r["nama"] == "***" for r in rows)
    assert not re.search(r"\d{16}", done.content.decode("latin-1"))
    assert httpx.get(api + "/api/datasets/penduduk/download.xml").status_code == 404


def test_api_dataset_carries_satu_data_and_dcat_metadata_and_working_distributions(api, analyst):
    d = httpx.get(api + "/api/datasets/dinsos_dtks").json()
    assert d["walidata"].startswith("Dinas Komunikasi") and d["produsen_data"] == ["Dinas Sosial Kota Bogor"]
    assert d["frequency"] == "bulanan" and d["license"] and d["spatial_coverage"].startswith("Kota Bogor")
    assert {"kependudukan", "penduduk", "dinsos"} <= set(d["tags"])
    assert d["issued"] and d["modified"] and d["standard_title"] == "Penduduk"
    assert [x["format"] for x in d["distributions"]] == ["CSV", "JSON", "Parquet", "API"]
    for distribution in d["distributions"]:
        assert httpx.get(api + distribution["url"], headers=analyst, timeout=60).status_code == 200, distribution


def test_api_searches_datasets_with_facets(api):
    found = httpx.get(api + "/api/search", params={"q": "penduduk dinas"}).json()
    assert found["count"] >= 1 and all(r["id"] in {"dinsos_dtks", "disdukcapil_siak", "penduduk",
                                                                     "penduduk_umur_jenis_kelamin"}
                                       for r in found["results"])
    by_agency = httpx.get(api + "/api/search", params={"agency": "dinsos"}).json()
    assert [r["id"] for r in by_agency["results"]] == ["dinsos_dtks"]
    facets = httpx.get(api + "/api/search").json()["facets"]
    assert facets["agency"] == {"dinsos": 1, "disdukcapil": 1} and facets["classification"] == {"terbatas": 3, "publik": 1}
    assert httpx.get(api + "/api/search", params={"q": 'nik" OR *'}).status_code == 200
    assert httpx.get(api + "/api/search", params={"sort": "random"}).status_code == 422


def _self_signed(folder) -> tuple:
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "hub.crt", folder / "hub.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def test_serve_speaks_tls_with_a_certificate(home, published, tmp_path):
    import ssl
    import subprocess
    import time

    from _served import HUB, free_port, hub_env

    cert, key = _self_signed(tmp_path)
    port = free_port()
    server = subprocess.Popen([HUB, "serve", "--port", str(port), "--tls-cert", str(cert), "--tls-key", str(key)],
                              env=hub_env(home), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        trusted = ssl.create_default_context(cafile=str(cert))
        for _ in range(200):
            try:
                answer = httpx.get(f"https://127.0.0.1:{port}/api/datasets", verify=trusted, timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert answer.status_code == 200 and answer.json()["datasets"]
        with pytest.raises(httpx.ConnectError):  # a certificate the client does not trust
            httpx.get(f"https://127.0.0.1:{port}/api/datasets", timeout=5)
        with pytest.raises(httpx.TransportError):  # no plain HTTP on the TLS port
            httpx.get(f"http://127.0.0.1:{port}/api/datasets", timeout=5).raise_for_status()
    finally:
        server.terminate()
        server.wait(timeout=30)
    refused = hub(home, "serve", "--tls-cert", str(cert), check=False)
    assert refused.returncode != 0 and "both --tls-cert and --tls-key" in refused.stderr
