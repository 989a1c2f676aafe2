"""A standard's suite and a run's validation result, written as Great Expectations JSON and read back by GE itself."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
from sqlalchemy import select

from _served import hub
from catalog.db import QuarantinedRow, Run, session
from hub.pipeline import find_source, run_source
from hub.settings import ROOT, Settings
from schemas import load_standard
from schemas.suite import compile_suite
from schemas.validation import PARTIAL_UNEXPECTED


def test_the_suite_command_writes_the_pipelines_suite_as_ge_json(tmp_path):
    import great_expectations as gx

    import schemas.expectations  # noqa: F401  the hub's own expectations, registered with GE as docs/ says

    written = tmp_path / "suite.json"
    hub(tmp_path, "standards", "suite", "penduduk@1.1.0", "--output", str(written))
    printed = json.loads(hub(tmp_path, "standards", "suite", "penduduk@1.1.0").stdout)
    document = json.loads(written.read_text(encoding="utf-8"))
    assert printed == document

    suite = gx.ExpectationSuite(**document)
    expected = compile_suite(load_standard("penduduk@1.1.0"))
    assert suite.name == "penduduk@1.1.0"
    assert [e.configuration.to_json_dict() for e in suite.expectations] == \
        [e.configuration.to_json_dict() for e in expected.expectations]
    assert {e.meta["reason"] for e in suite.expectations} >= {"nik:pattern", "agama:code_list", "nik:duplicate_key"}

    refused = hub(tmp_path, "standards", "suite", "penduduk@9.9.9", check=False)
    assert refused.returncode != 0 and "unknown standard 'penduduk@9.9.9'" in refused.stderr


@pytest.fixture
def demo(tmp_path) -> Settings:
    from demo.agencies import build

    build(tmp_path, people_count=480, dinsos_count=120)
    return Settings(home=tmp_path, catalog_url=f"sqlite:///{tmp_path / 'catalog.db'}",
                    registry=ROOT / "connectors" / "registry")


def _stored(settings: Settings, source_id: str) -> tuple[Run, list[QuarantinedRow]]:
    with session(settings.catalog_url) as s:
        run = s.scalars(select(Run).where(Run.dataset_id == source_id)).one()
        return run, s.scalars(select(QuarantinedRow).where(QuarantinedRow.dataset_id == source_id)).all()


def _harmonized_rows(settings: Settings, source_id: str):
    """Every record the source sends, harmonized as the run harmonized it, as pandas indexed by row number."""
    from connectors import connector_for
    from connectors.base import ROW
    from transforms import harmonize

    source = find_source(settings, source_id)
    standard = load_standard(source.standard_ref)
    numbers, tables = [], []
    for batch in connector_for(source).read(None):
        if batch.records.num_rows:
            numbers += batch.records[ROW].to_pylist()
            tables.append(harmonize(source, standard, batch.records).table)
    frame = pa.concat_tables(tables).to_pandas()
    frame.index = numbers
    return frame


def test_a_runs_result_is_ges_own_and_ge_finds_the_same_failures(demo):
    import great_expectations as gx
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResult,
        expectationSuiteValidationResultSchema,
    )

    run_source(demo, "disdukcapil_siak")
    run, quarantined = _stored(demo, "disdukcapil_siak")
    stored = run.validation_result
    result = ExpectationSuiteValidationResult(**stored)
    assert result.success is False and result.suite_name == "penduduk@1.1.0"
    assert (result.meta["source"], result.meta["standard"]) == ("disdukcapil_siak", "penduduk@1.1.0")
    assert result.meta["run_id"]["run_name"] == run.run_id
    assert result.meta["quarantine"] == {"rows": run.rows_quarantined, "reasons": run.validation["reasons"]}
    assert result.statistics["evaluated_expectations"] == len(stored["results"])
    # GE's own schema reads it whole, each result typed, and writes back exactly what the hub stored.
    assert expectationSuiteValidationResultSchema.load(stored).to_json_dict() == stored

    # Every failing rule of this run is one of the suite's: its counts are the quarantine's, reason by reason.
    failed = {r["expectation_config"]["meta"]["reason"]: r["result"] for r in stored["results"] if not r["success"]}
    assert {reason: r["unexpected_count"] for reason, r in failed.items()} == run.validation["reasons"]
    assert {reason: sorted(r["partial_unexpected_index_list"]) for reason, r in failed.items()} == \
        {reason: sorted(q.row_number for q in quarantined if reason in q.reasons) for reason in failed}

    # The suite as `hub standards suite` writes it, run by GE on the source's harmonized rows.
    suite = gx.ExpectationSuite(**json.loads(hub(demo.home, "standards", "suite", "penduduk@1.1.0").stdout))
    context = gx.get_context(mode="ephemeral")
    batch = context.data_sources.add_pandas("rows").add_dataframe_asset("rows").add_batch_definition_whole_dataframe("all")
    frame = _harmonized_rows(demo, "disdukcapil_siak")
    again = batch.get_batch(batch_parameters={"dataframe": frame}).validate(suite, result_format="SUMMARY")
    by_reason = {r.expectation_config.meta["reason"]: r for r in again.results}
    assert {reason for reason, r in by_reason.items() if not r.success} == set(failed)
    for reason, ours in failed.items():
        theirs = by_reason[reason].result
        assert ours["unexpected_count"] == theirs["unexpected_count"], reason
        assert ours["partial_unexpected_index_list"] == theirs["partial_unexpected_index_list"][:PARTIAL_UNEXPECTED]
        if reason.startswith("nik:"):
            assert ours["partial_unexpected_list"] == []  # personal data: row numbers only
        else:
            assert ours["partial_unexpected_list"] == theirs["partial_unexpected_list"], reason

    # No value of a personal-data field of any record the source sent is in the stored result.
    personal = [f.name for f in load_standard("penduduk@1.1.0").fields if f.personal_data]
    text = json.dumps(stored)
    leaked = {str(v) for f in personal for v in frame[f].dropna() if len(str(v)) > 3 and str(v) in text}
    assert not leaked
    assert any(f.personal_data == "nik" for f in load_standard("penduduk@1.1.0").fields)


def test_partial_lists_are_capped_and_personal_values_never_kept(demo, tmp_path):
    """Many records break a rule, across many batches: the counts stay whole, the lists stop at GE's length, in
    row order, and a personal-data field's failing values are nowhere in the result."""
    import dataclasses
    import sqlite3

    import yaml
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResult

    with sqlite3.connect(demo.demo / "disdukcapil" / "siak.db") as db:
        db.execute("UPDATE penduduk SET agama = '9' WHERE rowid % 5 = 0")
        db.execute("UPDATE penduduk SET nik = substr(nik, 1, 15) WHERE rowid % 7 = 0")
        broken = [n for (n,) in db.execute("SELECT nik FROM penduduk WHERE rowid % 7 = 0")]
    registry = tmp_path / "registry"
    registry.mkdir()
    spec = yaml.safe_load((demo.registry / "disdukcapil_siak.yaml").read_text(encoding="utf-8"))
    spec["options"]["batch_rows"] = 7
    (registry / "disdukcapil_siak.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    settings = dataclasses.replace(demo, registry=registry)

    run_source(settings, "disdukcapil_siak")
    run, quarantined = _stored(settings, "disdukcapil_siak")
    stored = run.validation_result
    ExpectationSuiteValidationResult(**stored)
    failed = {r["expectation_config"]["meta"]["reason"]: r for r in stored["results"] if not r["success"]}
    assert failed["agama:code_list"]["result"]["unexpected_count"] > 90
    assert failed["nik:pattern"]["result"]["unexpected_count"] >= len(broken) > PARTIAL_UNEXPECTED
    for reason, r in failed.items():
        rows = sorted(q.row_number for q in quarantined if reason in q.reasons)
        assert r["result"]["unexpected_count"] == len(rows) == run.validation["checks"][reason]["unexpected_count"]
        assert r["result"]["partial_unexpected_index_list"] == rows[:PARTIAL_UNEXPECTED]
    assert failed["agama:code_list"]["result"]["partial_unexpected_list"] == ["9"] * PARTIAL_UNEXPECTED
    assert failed["nik:pattern"]["meta"] == {"values_withheld": True}
    assert failed["nik:pattern"]["result"]["partial_unexpected_list"] == []
    text = json.dumps(stored)
    assert not [n for n in broken if n in text]


def test_a_long_failing_value_is_cut_and_json_texts_kept_as_the_values_ge_judged():
    """Batch by batch through the validator itself: a 300-character name fails its length rule and is kept cut to
    VALUE_CHARS; a float's value stays a number."""
    from schemas.validation import VALUE_CHARS, Unexpected, Validation, json_array, json_field

    standard = load_standard("fasilitas_kesehatan@1.0.0")
    records = [{"kode_faskes": f"P{n:05d}", "nama": "Puskesmas " + "x" * 290 if n % 2 else "Puskesmas Bogor",
                "jenis": "xx", "kode_wilayah": "32.71.01.1001", "latitude": 91.5 if n == 3 else -6.6}
               for n in range(1, 6)]
    table = pa.table([json_array([r.get(f.name) for r in records]) for f in standard.fields],
                     schema=pa.schema([json_field(f.name) for f in standard.fields]))
    validation, unexpected = Validation(standard), Unexpected(standard)
    for start in (0, 3):  # two batches, row numbers 1-3 and 4-5
        part = table.slice(start, 3)
        unexpected.add(validation(part), part, pa.array(range(start + 1, start + 1 + part.num_rows)))
    assert unexpected.found["nama:length"] == {"rows": [1, 3, 5], "values": [records[0]["nama"][:VALUE_CHARS] + "…"] * 3}
    assert unexpected.found["latitude:range"] == {"rows": [3], "values": [91.5]}
    assert unexpected.found["jenis:code_list"]["rows"] == [1, 2, 3, 4, 5]
    assert "kode_faskes:pattern" not in unexpected.found
