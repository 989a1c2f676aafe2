"""A served dataset's data contract (ODCS) and data package, read as outside tools read them: jsonschema with the
official ODCS schema, and the `frictionless` library reading the hub's own CSV download on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import requests
import yaml
from frictionless import system, validate
from jsonschema import Draft201909Validator

from schemas.licences import licence

OFFICIAL = Draft201909Validator(json.loads(Path("/work/shared/conformance/odcs/odcs-json-schema-v3.1.0.json")
                                           .read_text()))
PUBLIC = "penduduk_umur_jenis_kelamin"  # the indicator `hub run` builds: publik, anyone may download it


def _get(api: str, path: str, headers: dict | None = None) -> httpx.Response:
    return httpx.get(api + path, headers=headers or {}, timeout=60)


def _frictionless(descriptor: dict, headers: dict | None = None):
    """frictionless's report on a package: its descriptor, and its resource read from where the package says."""
    with requests.Session() as http:
        http.headers.update(headers or {})
        with system.use_context(http_session=http):
            return validate(descriptor)


def _problems(report) -> list[str]:
    return [e.message for e in report.errors] + [e.message for task in report.tasks for e in task.errors]


def test_every_dataset_has_a_contract_the_official_odcs_schema_accepts(api, analyst):
    datasets = [d["id"] for d in _get(api, "/api/datasets", analyst).json()["datasets"]]
    assert len(datasets) == 4
    for dataset_id in datasets:
        as_json = _get(api, f"/api/datasets/{dataset_id}/contract.odcs.json", analyst)
        as_yaml = _get(api, f"/api/datasets/{dataset_id}/contract.odcs.yaml", analyst)
        assert as_yaml.headers["content-type"].startswith("application/yaml")
        document = as_json.json()
        assert yaml.safe_load(as_yaml.text) == document
        assert [e.message for e in OFFICIAL.iter_errors(document)] == []
        shown = _get(api, f"/api/datasets/{dataset_id}", analyst).json()
        api_server, *iceberg = document["servers"]
        # Its rows answer where the contract says; outside engines are sent to the `publik` namespace only, for a
        # dataset anonymous may read (the other namespaces are unmasked back-office storage).
        assert _get(api, api_server["location"].removeprefix(api), analyst).status_code == 200
        if shown["classification"] == "publik":
            assert [(s["catalog"], s["schema"], s["dataset"]) for s in iceberg] == [("hub", "publik", dataset_id)]
        else:
            assert iceberg == [] and shown["table"] not in json.dumps(document)
        assert document["version"] == shown["standard_version"]


def test_the_contract_is_metadata_like_the_data_dictionary(api):
    """Anyone may read the shape of a terbatas dataset; its rows stay behind a token."""
    document = _get(api, "/api/datasets/penduduk/contract.odcs.json").json()
    assert [p["name"] for p in document["schema"][0]["properties"]][-1] == "_source"
    assert document["schema"][0]["quality"][-1]["arguments"] == {"properties": ["nik", "_source"]}
    assert _get(api, "/api/datasets/penduduk/rows").status_code == 401
    assert _get(api, "/api/datasets/nothing_here/contract.odcs.yaml").status_code == 404
    assert _get(api, "/api/datasets/nothing_here/datapackage.json").status_code == 404


def test_frictionless_reads_the_public_dataset_from_the_hub_and_finds_it_valid(api):
    descriptor = _get(api, f"/api/datasets/{PUBLIC}/datapackage.json").json()
    [resource] = descriptor["resources"]
    assert resource["path"] == f"{api}/api/datasets/{PUBLIC}/download.csv"
    terms = licence("CC-BY-4.0")
    assert descriptor["licenses"] == [{"name": "CC-BY-4.0", "title": terms.title, "path": terms.url}]
    schema = resource["schema"]
    assert schema["primaryKey"] == ["kode_wilayah", "kelompok_umur", "jenis_kelamin"]
    fields = {f["name"]: f for f in schema["fields"]}
    assert fields["kelompok_umur"]["constraints"] == {"required": True, "enum": ["0-14", "15-64", "65+"]}
    assert fields["jumlah_penduduk"]["type"] == "integer" and fields["jumlah_penduduk"]["constraints"] == {
        "minimum": 5}
    report = _frictionless(descriptor)
    assert report.valid, _problems(report)
    rows = _get(api, f"/api/datasets/{PUBLIC}").json()["rows"]
    assert report.tasks[0].stats["rows"] == rows > 0
    # The same check fails when the package says something the data does not: frictionless did read the rows.
    fields["kelompok_umur"]["constraints"]["enum"] = ["0-14", "15-64"]
    report = _frictionless(descriptor)
    assert not report.valid and any('constraint "enum"' in p for p in _problems(report))


def test_each_reader_gets_the_package_of_the_download_it_gets(api, analyst):
    """An analyst's download has NIKs as pseudonyms (still a key) and names masked; the package says so, and
    frictionless finds the analyst's own download valid against it. Anonymous is sent to a download it may not
    read: the package is metadata, the download keeps its rules."""
    descriptor = _get(api, "/api/datasets/penduduk/datapackage.json", analyst).json()
    schema = descriptor["resources"][0]["schema"]
    fields = {f["name"]: f for f in schema["fields"]}
    assert schema["primaryKey"] == ["nik", "_source"]
    assert fields["nik"]["type"] == "string" and fields["nik"]["constraints"] == {"required": True}
    assert fields["tanggal_lahir"]["type"] == "string"  # masked to the year: no longer a date
    assert fields["jenis_kelamin"]["constraints"]["enum"] == ["1", "2"]
    report = _frictionless(descriptor, analyst)
    assert report.valid, _problems(report)
    assert report.tasks[0].stats["rows"] == _get(api, "/api/datasets/penduduk", analyst).json()["rows"]

    anonymous = _get(api, "/api/datasets/penduduk/datapackage.json").json()
    assert "primaryKey" not in anonymous["resources"][0]["schema"]  # masked NIKs of one kecamatan look alike
    report = _frictionless(anonymous)
    assert not report.valid and any("401" in p for p in _problems(report))


@pytest.mark.parametrize("path", ["contract.odcs.yaml", "contract.odcs.json", "datapackage.json"])
def test_the_exports_are_in_the_api_description(api, path):
    assert f"/api/datasets/{{dataset_id}}/{path}" in _get(api, "/openapi.json").json()["paths"]
