"""A run's validation result downloaded over HTTP as Great Expectations JSON, by whoever may read its quarantine."""

from __future__ import annotations

import re
import sqlite3

import httpx
from great_expectations.core.expectation_validation_result import (
    ExpectationSuiteValidationResult,
    expectationSuiteValidationResultSchema,
)

from _served import hub, serve


def test_stewards_and_the_owning_agency_download_the_runs_result(api, tokens, published):
    latest = api + "/api/datasets/dinsos_dtks/validation.json"
    assert httpx.get(latest).status_code == 401
    assert httpx.get(latest, headers=tokens["analis"]).status_code == 403
    assert httpx.get(latest, headers=tokens["disdukcapil"]).status_code == 403
    assert httpx.get(api + "/api/datasets/nope/validation.json", headers=tokens["walidata"]).status_code == 404

    answer = httpx.get(latest, headers=tokens["walidata"])
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    assert answer.headers["content-disposition"].startswith('attachment; filename="dinsos_dtks-')
    result = expectationSuiteValidationResultSchema.load(answer.json())  # GE's own loader: typed results
    assert isinstance(result, ExpectationSuiteValidationResult)
    run_id = published["dinsos_dtks"]["run_id"]
    assert result.meta["source"] == "dinsos_dtks" and result.meta["run_id"]["run_name"] == run_id
    assert result.meta["quarantine"]["rows"] == 6 and not result.success
    failed = {r.expectation_config.meta["reason"]: r.result for r in result.results if not r.success}
    assert failed["nik:duplicate_key"]["partial_unexpected_index_list"] == [1, 125]
    assert failed["nik:pattern"]["partial_unexpected_list"] == []
    assert not re.search(r"\d{16}", answer.text)  # no NIK, whole or as received

    by_run = httpx.get(api + f"/api/datasets/dinsos_dtks/runs/{run_id}/validation.json", headers=tokens["dinsos"])
    assert by_run.status_code == 200 and by_run.json() == answer.json()
    missing = httpx.get(api + "/api/datasets/dinsos_dtks/runs/nope/validation.json", headers=tokens["walidata"])
    assert missing.status_code == 404 and "no run 'nope'" in missing.json()["detail"]
    # An integrated dataset's run checks no rows itself: its sources' results are the ones to read.
    integrated = httpx.get(api + "/api/datasets/penduduk/validation.json", headers=tokens["walidata"])
    assert integrated.status_code == 404 and "checked no rows itself" in integrated.json()["detail"]


def test_the_downloads_are_in_the_api_description(api):
    paths = httpx.get(api + "/openapi.json", timeout=60).json()["paths"]
    for path in ("/api/datasets/{dataset_id}/validation.json", "/api/datasets/{dataset_id}/runs/{run_id}/validation.json"):
        assert set(paths[path]["get"]["responses"]) >= {"200", "401", "403", "404"}


def test_a_catalog_from_before_results_were_kept_serves_one_rebuilt_from_counts(tmp_path):
    from demo.agencies import build

    build(tmp_path, people_count=60, dinsos_count=20)
    hub(tmp_path, "run", "disdukcapil_siak")
    token = re.search(r"hub_[0-9a-f]{12}_[\w-]+", hub(tmp_path, "users", "create", "walidata", "--role",
                                                       "steward").stdout)[0]
    with sqlite3.connect(tmp_path / "catalog.db") as db:  # the runs table as an older hub made it
        db.execute("ALTER TABLE hub_runs DROP COLUMN validation_result")
    server, base = serve(tmp_path)
    try:
        answer = httpx.get(base + "/api/datasets/disdukcapil_siak/validation.json",
                           headers={"Authorization": f"Bearer {token}"}, timeout=60)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert answer.status_code == 200, answer.text
    result = expectationSuiteValidationResultSchema.load(answer.json())  # GE's own loader: typed results
    assert isinstance(result, ExpectationSuiteValidationResult)
    assert result.meta["rebuilt_from_counts"] is True and result.meta["standard"] == "penduduk@1.1.0"
    assert result.statistics["evaluated_expectations"] == len(result.results) > 0
    assert all("partial_unexpected_index_list" not in r.result for r in result.results)
