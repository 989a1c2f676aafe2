"""The served OpenAPI document, read by outside tools: its validator, JSON Schema on real answers, a generated client."""

from __future__ import annotations

import csv
import importlib
import io
import subprocess
import sys
from collections import Counter

import httpx
import pytest
from jsonschema import Draft202012Validator

from _served import elsewhere
from _venv import tool_venv

GENERATOR = "openapi-python-client==0.29.1"
# The download media types are files: the generator reads a text/* or unknown media type as text, so it is told
# to take their bytes as they come (its own `content_type_overrides` setting).
GENERATOR_CONFIG = """\
project_name_override: hub_client
package_name_override: hub_client
post_hooks: []
content_type_overrides:
  text/csv: application/octet-stream
  application/vnd.apache.parquet: application/octet-stream
  application/yaml: application/octet-stream
"""


@pytest.fixture(scope="module")
def document(api) -> dict:
    return httpx.get(api + "/openapi.json", timeout=60).json()


def operations(document: dict) -> list[tuple[str, str, dict]]:
    return [(method, path, operation) for path, item in document["paths"].items() for method, operation in item.items()]


def test_the_served_openapi_document_passes_the_openapi_validator(document):
    """openapi-spec-validator, not our own reading: each path and method once, every operation id unique."""
    from openapi_spec_validator import validate

    validate(document)
    ids = Counter(operation["operationId"] for _, _, operation in operations(document))
    assert [i for i, n in ids.items() if n > 1] == []
    ckan = document["paths"]["/api/3/action/{name}"]
    assert {ckan["get"]["operationId"], ckan["post"]["operationId"]} == {"ckan_action_get", "ckan_action_post"}
    assert ckan["post"]["requestBody"]["content"]["application/json"]["schema"]["type"] == "object"


def test_downloads_are_declared_as_the_files_they_are(document, api, analyst):
    download = document["paths"]["/api/datasets/{dataset_id}/download.{fmt}"]["get"]
    declared = download["responses"]["200"]["content"]
    assert set(declared) == {"text/csv", "application/json", "application/vnd.apache.parquet"}
    assert all(m["schema"] == {"type": "string", "format": "binary"} for m in declared.values())
    formats = next(p for p in download["parameters"] if p["name"] == "fmt")["schema"]["enum"]
    for fmt in formats:
        answer = httpx.get(f"{api}/api/datasets/penduduk/download.{fmt}", headers=analyst, timeout=60)
        assert answer.status_code == 200 and answer.headers["content-type"].split(";")[0] in declared, fmt


def test_bearer_tokens_are_the_security_scheme_optional_where_anonymous_may_call(document, api, tokens):
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": document["components"]["securitySchemes"]["bearer"][
            "description"]}
    security = {(method, path): operation.get("security") for method, path, operation in operations(document)}
    optional, required = [{}, {"bearer": []}], [{"bearer": []}]
    assert security["get", "/api/datasets/{dataset_id}/quarantine"] == required
    assert security["get", "/api/datasets/{dataset_id}/access-log"] == required
    for operation in (("get", "/api/datasets"), ("get", "/api/datasets/{dataset_id}/rows"), ("post", "/api/sql"),
                      ("get", "/api/3/action/{name}"), ("post", "/api/3/action/{name}"), ("get", "/api/me")):
        assert security[operation] == optional, operation
    # What the document says is what the hub does: anonymous is refused where a token is required, answered where
    # it is optional.
    assert httpx.get(api + "/api/datasets/penduduk/quarantine", timeout=60).status_code == 401
    assert httpx.get(api + "/api/datasets/penduduk/access-log", timeout=60).status_code == 401
    assert httpx.get(api + "/api/datasets", timeout=60).status_code == 200
    assert httpx.get(api + "/api/datasets/penduduk/quarantine", headers=tokens["walidata"], timeout=60).status_code == 200


def schema_of(document: dict, method: str, path: str, status: int) -> Draft202012Validator:
    """The JSON Schema the document gives for one answer (its $refs into the document's components)."""
    responses = document["paths"][path][method]["responses"]
    assert str(status) in responses, f"{method.upper()} {path} answered {status}, which its document does not declare"
    schema = responses[str(status)]["content"]["application/json"]["schema"]
    return Draft202012Validator({**schema, "components": document["components"]})


# Real requests of each kind the typed endpoints answer, with their status: (persona, method, path, request).
ANSWERS = [
    ("anonim", "get", "/api/datasets", "/api/datasets", {}, 200),
    ("walidata", "get", "/api/datasets", "/api/datasets", {}, 200),
    ("anonim", "get", "/api/search", "/api/search", {"params": {"q": "penduduk", "rows": 5}}, 200),
    ("analis", "get", "/api/datasets/{dataset_id}", "/api/datasets/penduduk", {}, 200),
    ("walidata", "get", "/api/datasets/{dataset_id}", "/api/datasets/penduduk", {}, 200),
    ("anonim", "get", "/api/datasets/{dataset_id}", "/api/datasets/no_such", {}, 404),
    ("analis", "get", "/api/datasets/{dataset_id}/rows", "/api/datasets/penduduk/rows",
     {"params": {"filter": "jenis_kelamin=2", "limit": 5}}, 200),
    ("analis", "get", "/api/datasets/{dataset_id}/rows", "/api/datasets/penduduk/rows",
     {"params": {"filter": "nama~a"}}, 400),
    ("anonim", "get", "/api/datasets/{dataset_id}/rows", "/api/datasets/penduduk/rows", {}, 401),
    ("analis", "post", "/api/sql", "/api/sql", {"json": {"sql": "SELECT count(*) AS n FROM penduduk"}}, 200),
    ("analis", "post", "/api/sql", "/api/sql", {"json": {"sql": "DROP TABLE penduduk"}}, 400),
    ("analis", "post", "/api/sql", "/api/sql", {"json": {"sql": "SELECT 1 -- " + "x" * (1 << 20)}}, 413),
    ("anonim", "get", "/api/datasets/{dataset_id}/versions", "/api/datasets/penduduk/versions", {}, 200),
    ("anonim", "get", "/api/datasets/{dataset_id}/quarantine", "/api/datasets/penduduk/quarantine", {}, 401),
    ("disdik", "get", "/api/datasets/{dataset_id}/quarantine", "/api/datasets/penduduk/quarantine", {}, 403),
    ("anonim", "get", "/api/datasets/{dataset_id}/download.{fmt}", "/api/datasets/penduduk/download.csv", {}, 401),
    ("analis", "get", "/api/3/action/{name}", "/api/3/action/package_show", {"params": {"id": "penduduk"}}, 200),
    ("analis", "post", "/api/3/action/{name}", "/api/3/action/package_search", {"json": {"q": "penduduk"}}, 200),
    ("anonim", "post", "/api/3/action/{name}", "/api/3/action/package_show", {"json": {"id": "no_such"}}, 404),
    ("anonim", "get", "/api/3/action/{name}", "/api/3/action/no_such_action", {}, 400),
    ("anonim", "post", "/api/3/action/{name}", "/api/3/action/package_search", {"json": {"q": "x" * (1 << 20)}}, 413),
    ("walidata", "get", "/api/me", "/api/me", {}, 200),
    ("anonim", "get", "/api/me", "/api/me", {}, 200),
    ("anonim", "get", "/api/me", "/api/me", {"headers": {"Authorization": "Bearer hub_000000000000_x"}}, 401),
]


@pytest.mark.parametrize("persona, method, path, url, request_, status", ANSWERS,
                         ids=[f"{a[0]}-{a[1]}-{a[3]}-{a[5]}" for a in ANSWERS])
def test_real_answers_match_the_schemas_the_document_declares(document, api, tokens, persona, method, path, url,
                                                              request_, status):
    headers = {**tokens[persona], **request_.get("headers", {})}
    sent = {k: v for k, v in request_.items() if k != "headers"}
    with elsewhere() as client:  # one of them is a refused token
        answer = client.request(method.upper(), api + url, headers=headers, **sent)
    assert answer.status_code == status, answer.text[:500]
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"[:300]
              for e in schema_of(document, method, path, status).iter_errors(answer.json())]
    assert errors == []


def generator() -> str:
    """The generator's command, from its own virtualenv: its pins conflict with the hub's."""
    return str(tool_venv(GENERATOR) / "bin" / "openapi-python-client")


@pytest.fixture(scope="module")
def hub_client(document, tmp_path_factory):
    """The Python client openapi-python-client generates from the served document, imported here."""
    import json

    where = tmp_path_factory.mktemp("generated")
    (where / "openapi.json").write_text(json.dumps(document), encoding="utf-8")
    (where / "config.yaml").write_text(GENERATOR_CONFIG, encoding="utf-8")
    done = subprocess.run([generator(), "generate", "--path", str(where / "openapi.json"), "--meta", "none",
                           "--output-path", str(where / "hub_client"), "--config", str(where / "config.yaml")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and "Warning" not in done.stdout + done.stderr, done.stdout + done.stderr
    sys.path.insert(0, str(where))
    try:
        yield importlib.import_module("hub_client")
    finally:
        sys.path.remove(str(where))
        for name in [m for m in sys.modules if m == "hub_client" or m.startswith("hub_client.")]:
            del sys.modules[name]


def test_a_generated_client_lists_reads_downloads_and_calls_ckan(hub_client, api, analyst):
    import pyarrow.parquet as pq

    from hub_client.api.ckan import ckan_action_get, ckan_action_post
    from hub_client.api.default import dataset_rows, download, list_datasets, run_query, show_dataset
    from hub_client.models import (CkanActionGetParameters, CkanActionPostBody, DatasetDescription, DatasetList,
                                   DownloadFmt, Problem, Rows, SqlRequest, SqlResult)

    anonymous = hub_client.Client(base_url=api, timeout=httpx.Timeout(60))
    token = analyst["Authorization"].removeprefix("Bearer ")
    client = hub_client.AuthenticatedClient(base_url=api, token=token, timeout=httpx.Timeout(60))

    listed = list_datasets.sync(client=anonymous)
    assert isinstance(listed, DatasetList)
    assert "penduduk" in {d.id for d in list_datasets.sync(client=client).datasets}

    described = show_dataset.sync(client=client, dataset_id="penduduk")
    assert isinstance(described, DatasetDescription) and described.access.readable
    assert "jenis_kelamin" in {f.name for f in described.schema}
    missing = show_dataset.sync_detailed(client=anonymous, dataset_id="no_such")
    assert missing.status_code == 404 and isinstance(missing.parsed, Problem) and "no_such" in missing.parsed.detail

    counted = run_query.sync(client=client, body=SqlRequest(sql="SELECT count(*) AS n FROM penduduk", limit=1))
    assert isinstance(counted, SqlResult) and counted.rows[0]["n"] > 0 and counted.datasets == ["penduduk"]

    page = dataset_rows.sync(client=client, dataset_id="penduduk", filter_=["jenis_kelamin=2"], limit=50)
    assert isinstance(page, Rows) and page.total > 0 and page.rows
    assert {row["jenis_kelamin"] for row in page.rows} == {"2"}

    csv_file = download.sync(client=client, dataset_id="penduduk", fmt=DownloadFmt.CSV, filter_=["jenis_kelamin=2"])
    records = list(csv.DictReader(io.StringIO(csv_file.payload.read().decode("utf-8"))))
    assert len(records) == page.total and {r["jenis_kelamin"] for r in records} == {"2"}
    parquet = download.sync(client=client, dataset_id="penduduk", fmt=DownloadFmt.PARQUET)
    assert pq.read_table(parquet.payload).num_rows >= page.total

    found = ckan_action_post.sync(client=client, name="package_search",
                                  body=CkanActionPostBody.from_dict({"q": "penduduk", "rows": 5}))
    assert found.success and found.result["count"] >= 1
    shown = ckan_action_get.sync(client=anonymous, name="package_show",
                                 parameters=CkanActionGetParameters.from_dict({"id": "penduduk"}))
    assert shown.success and shown.result["name"] == "penduduk"


def test_swagger_ui_takes_a_token_and_sends_it_where_the_document_asks_for_it(api, browser, tokens):
    """The document's bearer scheme in Swagger UI (/docs): Authorize with a steward's token, then read a
    quarantine, which refuses anonymous callers."""
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(api + "/docs")
        page.locator(".btn.authorize").first.click()
        page.locator(".auth-container input").first.fill(tokens["walidata"]["Authorization"].removeprefix("Bearer "))
        page.locator(".auth-btn-wrapper .btn.authorize").first.click()
        page.locator(".btn-done").first.click()
        quarantine = page.locator(".opblock", has=page.locator(".opblock-summary-path",
                                                               has_text="/api/datasets/{dataset_id}/quarantine"))
        quarantine.locator(".opblock-summary").click()
        quarantine.get_by_role("button", name="Try it out").click()
        quarantine.locator("input[placeholder='dataset_id']").fill("penduduk")
        quarantine.get_by_role("button", name="Execute").click()
        status = quarantine.locator(".live-responses-table tr.response .response-col_status").first
        status.wait_for(timeout=30_000)
        assert "200" in status.inner_text()
        assert "Authorization: Bearer" in quarantine.locator(".curl-command").inner_text()
    finally:
        context.close()
