"""Data contracts: every shipped standard as ODCS v3.1.0 (checked with the official JSON Schema), and back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft201909Validator

from _served import hub
from hub.errors import ConfigError
from schemas import list_standards, load_standard
from schemas.contracts import Published, contract, import_contract, to_yaml
from schemas.licences import licence
from schemas.standards import load_standard_file
from schemas.suite import expectation_specs

CONFORMANCE = Path("/work/shared/conformance/odcs")
OFFICIAL = Draft201909Validator(json.loads((CONFORMANCE / "odcs-json-schema-v3.1.0.json").read_text()))
STANDARDS = [s.ref for s in list_standards()]


def _errors(document: dict) -> list[str]:
    return [f"{e.json_path}: {e.message[:200]}" for e in OFFICIAL.iter_errors(document)]


@pytest.mark.parametrize("ref", STANDARDS)
def test_every_standard_and_its_dataset_export_a_valid_odcs_contract(ref):
    standard = load_standard(ref)
    for published in (None, Published(standard.name, f"publik.{standard.name}", "https://data.example.go.id"),
                      Published(standard.name, None, "https://data.example.go.id", "Dinas X", "_source")):
        document = contract(standard, published)
        assert _errors(document) == []
        assert yaml.safe_load(to_yaml(document)) == document
        sourced = ["_source"] if published and published.source_column else []
        assert [p["name"] for p in document["schema"][0]["properties"]] == [f.name for f in standard.fields] + sourced


def test_the_official_schema_refuses_what_odcs_does_not_allow():
    """The check above can fail: a key ODCS does not have, or a logical type it does not know, is an error."""
    document = contract(load_standard("penduduk@1.1.0"))
    document["schema"][0]["properties"][0]["nullable"] = True
    document["schema"][0]["properties"][1]["logicalType"] = "text"
    found = _errors(document)
    assert any("'nullable' was unexpected" in e for e in found), found
    assert any(e.startswith("$.schema[0].properties[1].logicalType: 'text' is not one of") for e in found), found


def _property(document: dict, name: str) -> dict:
    return next(p for p in document["schema"][0]["properties"] if p["name"] == name)


def test_the_contract_says_what_the_standard_says():
    standard = load_standard("penduduk@1.1.0")
    document = contract(standard, Published("disdukcapil_siak", None, "https://data.example.go.id",
                                            "Dinas Kependudukan"))
    assert (document["apiVersion"], document["kind"], document["version"]) == ("v3.1.0", "DataContract", "1.1.0")
    nik = _property(document, "nik")
    assert nik["primaryKey"] and nik["unique"] and nik["criticalDataElement"] and nik["required"]
    assert nik["logicalTypeOptions"] == {"pattern": "^[0-9]{16}$"} and nik["physicalType"] == "string"
    assert {"property": "personalData", "value": "nik"} in nik["customProperties"]
    assert nik["classification"] == "terbatas"
    metrics = {q["name"]: (q["type"], q.get("metric")) for q in nik["quality"]}
    assert metrics == {"nik:required": ("library", "nullValues"), "nik:pattern": ("library", "invalidValues"),
                       "nik:duplicate_key": ("library", "duplicateValues")}
    # A code list: its codes, as ODCS's invalidValues, and the reference to the list itself.
    sex = _property(document, "jenis_kelamin")
    [rule] = [q for q in sex["quality"] if q["name"] == "jenis_kelamin:code_list"]
    assert rule["arguments"] == {"validValues": ["1", "2"]} and rule["mustBe"] == 0
    assert {"property": "codeList", "value": {"name": "jenis_kelamin", "edition": "1"}} in sex["customProperties"]
    # A rule ODCS has no metric for: the Great Expectations expectation the hub's suite runs.
    born = _property(document, "tanggal_lahir")
    assert born["logicalType"] == "date"
    [custom] = [q for q in born["quality"] if q["type"] == "custom"]
    assert custom["engine"] == "greatExpectations"
    assert custom["implementation"] == {"type": "expect_column_values_to_match_format",
                                        "kwargs": {"column": "tanggal_lahir", "format": "date"},
                                        "meta": {"reason": "tanggal_lahir:format"}}
    assert document["slaProperties"][0] == {"property": "frequency", "value": 1, "unit": "month",
                                            "description": "diperbarui bulanan"}
    assert document["team"]["members"] == [
        {"username": standard.schema["x-walidata"], "role": "walidata"},
        {"username": "Dinas Kependudukan", "role": "produsen data"}]
    # A terbatas dataset: its rows through the API, never its back-office Iceberg table to outside engines.
    [api] = document["servers"]
    assert api == {"server": "api", "type": "api", "location": "https://data.example.go.id/api/datasets/"
                   "disdukcapil_siak/rows", "description": api["description"]}
    assert "physicalName" not in document["schema"][0]
    # Cleared by x-access: the agencies that may see the data unmasked.
    assert {"role": "agency:dinsos", "access": "read-unmasked", "description": "cleared by the standard's x-access"} \
        in document["roles"]
    terms = dict((c["property"], c["value"]) for c in document["customProperties"])["license"]
    assert terms == {"id": "other-closed", "title": standard.schema["x-license"], "url": None, "isOpen": False}


def test_a_compound_key_an_open_licence_and_a_range():
    standard = load_standard("penduduk_umur_jenis_kelamin")
    document = contract(standard, Published(standard.name, f"publik.{standard.name}", "https://data.example.go.id"))
    api, iceberg = document["servers"]
    assert (iceberg["type"], iceberg["format"], iceberg["catalog"], iceberg["schema"], iceberg["dataset"]) == \
           ("custom", "iceberg", "hub", "publik", standard.name)
    assert document["schema"][0]["physicalName"] == f"publik.{standard.name}"
    [key] = document["schema"][0]["quality"]
    assert key["metric"] == "duplicateValues" and key["arguments"] == {
        "properties": ["kode_wilayah", "kelompok_umur", "jenis_kelamin"]}
    assert [_property(document, n)["primaryKeyPosition"] for n in standard.primary_key] == [1, 2, 3]
    count = _property(document, "jumlah_penduduk")
    assert count["logicalTypeOptions"] == {"minimum": 5} and count["physicalType"] == "long"
    assert not count["required"]
    terms = licence("CC-BY-4.0")
    assert {"type": "license", "url": terms.url, "description": terms.title} in document["authoritativeDefinitions"]


def test_the_great_expectations_rules_load_in_great_expectations():
    """Each `type: custom` rule is an expectation configuration GE itself turns into its expectation."""
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    import schemas.expectations  # noqa: F401  the hub's own expectations, registered with GE

    customs = [q["implementation"] for ref in STANDARDS for p in contract(load_standard(ref))["schema"][0]["properties"]
               for q in p.get("quality", []) if q["type"] == "custom"]
    assert len(customs) > 5
    for rule in customs:
        expectation = ExpectationConfiguration(type=rule["type"], kwargs=rule["kwargs"], meta=rule["meta"]).to_domain_obj()
        assert expectation.column == rule["kwargs"]["column"]


def _comparable(standard) -> dict:
    fields = {f.name: (f.type, f.required, f.format, f.code_list, f.personal_data, f.constraints, f.unit, f.concept,
                       f.title, f.description, f.title_en, f.description_en, f.classification)
              for f in standard.fields}
    return {"fields": fields, "key": standard.primary_key, "metadata": standard.metadata, "title": standard.title,
            "access": (standard.access_agencies, standard.access_roles), "tags": standard.schema.get("x-tags"),
            "checks": expectation_specs(standard)}


@pytest.fixture
def no_standards(tmp_path, monkeypatch) -> Path:
    """An empty standards folder: the drafts an import writes clash with no standard the hub follows."""
    folder = tmp_path / "followed"
    folder.mkdir()
    monkeypatch.setenv("HUB_STANDARDS", str(folder))
    return folder


@pytest.mark.parametrize("ref", STANDARDS)
def test_a_standard_exported_and_imported_back_is_the_same_standard(ref, tmp_path, no_standards):
    standard = load_standard(ref, Path(__file__).parents[2] / "schemas" / "standards")
    exported = tmp_path / f"{standard.name}.odcs.yaml"
    exported.write_text(to_yaml(contract(standard)), encoding="utf-8")
    path, notes = import_contract(exported, tmp_path / "drafts")
    assert path == tmp_path / "drafts" / standard.path.name and notes == []
    draft = load_standard_file(path)
    assert _comparable(draft) == _comparable(standard)


def test_the_odcs_example_becomes_a_draft_that_compiles(tmp_path, no_standards):
    from schemas.suite import compile_suite

    path, notes = import_contract(CONFORMANCE / "example-table-column.odcs.yaml", tmp_path)
    draft = load_standard_file(path)
    assert (draft.name, draft.version, draft.classification) == ("my_table", "1.0.0", "terbatas")
    [field] = draft.fields
    assert (field.name, field.type, field.title, field.constraints) == (
        "rcvr_cntry_code", "string", "Receiver country code", {"maxLength": 2})
    # What the contract does not say is named for the steward, never invented silently.
    assert any("x-walidata" in n for n in notes) and any("x-license" in n for n in notes)
    assert draft.metadata["walidata"].startswith("BELUM DIISI")
    suite = compile_suite(draft)
    assert [e.expectation_type for e in suite.expectations] == ["expect_column_value_lengths_to_be_between"]


def test_an_import_never_replaces_a_standard_or_a_draft(tmp_path):
    exported = tmp_path / "umkm.odcs.json"
    exported.write_text(json.dumps(contract(load_standard("umkm@1.0.0"))), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"umkm@1\.0\.0 is already a standard the hub follows"):
        import_contract(exported, tmp_path / "drafts")
    assert not (tmp_path / "drafts").exists()


def test_a_contract_that_is_not_odcs_is_refused_naming_the_file_and_the_place(tmp_path):
    bad = tmp_path / "bad.odcs.yaml"
    document = contract(load_standard("umkm@1.0.0"))
    document["schema"][0]["properties"][2]["logicalType"] = "text"
    bad.write_text(to_yaml(document), encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        import_contract(bad, tmp_path)
    assert str(refused.value).startswith(f"{bad}: not a valid ODCS v3.1.0 contract: at $.schema[0].properties[2]"
                                         ".logicalType: 'text' is not one of")
    broken = tmp_path / "broken.odcs.yaml"
    broken.write_text("kind: DataContract\nschema: [\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broken\.odcs\.yaml: line 3, column 1: not valid YAML"):
        import_contract(broken, tmp_path)
    with pytest.raises(ConfigError, match=r"missing\.odcs\.yaml: no such file"):
        import_contract(tmp_path / "missing.odcs.yaml", tmp_path)
    assert list(tmp_path.glob("*.json")) == []


def test_the_commands(tmp_path):
    """`hub standards odcs` prints a contract the official schema accepts; `import-odcs` writes its draft, and
    exits 2 naming the file for one it cannot read."""
    home, followed = tmp_path / "home", tmp_path / "followed"
    followed.mkdir()
    env = {"HUB_STANDARDS": str(followed)}
    standard = str(Path(__file__).parents[2] / "schemas" / "standards" / "umkm-1.0.0.json")
    printed = hub(home, "standards", "odcs", standard, "--json", env=env).stdout
    assert _errors(json.loads(printed)) == []
    contract_file = tmp_path / "umkm.odcs.yaml"
    contract_file.write_text(hub(home, "standards", "odcs", standard, env=env).stdout)
    done = hub(home, "standards", "import-odcs", str(contract_file), env=env)
    draft = home / "drafts" / "standards" / "umkm-1.0.0.json"
    assert f"wrote draft {draft}" in done.stdout and load_standard_file(draft).ref == "umkm@1.0.0"
    again = hub(home, "standards", "import-odcs", str(contract_file), check=False, env=env)
    assert again.returncode == 2 and f"{draft} already exists" in again.stderr


def test_what_a_standard_cannot_hold_is_named_not_dropped(tmp_path, no_standards):
    contract_file = tmp_path / "kunjungan.odcs.yaml"
    contract_file.write_text("""
apiVersion: v3.1.0
kind: DataContract
id: kunjungan
version: 0.2.0
status: draft
name: kunjungan_puskesmas
contractCreatedTs: 2026-11-02T08:00:00Z
team:
  name: Dinas Kesehatan
  members:
    - {username: Dinas Kesehatan Kota Bogor, role: owner, dateIn: 2026-01-05}
schema:
  - name: kunjungan
    properties:
      - {name: tanggal, logicalType: date, required: true, logicalTypeOptions: {minimum: "2020-01-01"}}
      - {name: jumlah, logicalType: integer, unique: true, logicalTypeOptions: {minimum: 0, format: i64}}
      - {name: kode, logicalType: string, logicalTypeOptions: {format: uuid, maxLength: 36}}
      - {name: kelas, physicalType: VARCHAR(3)}
""", encoding="utf-8")
    path, notes = import_contract(contract_file, tmp_path / "drafts")
    draft = load_standard_file(path)
    assert draft.ref == "kunjungan_puskesmas@0.2.0"  # unquoted dates read as text, as the ODCS schema wants them
    assert draft.metadata["walidata"] == "Dinas Kesehatan Kota Bogor"
    assert [(f.name, f.type, f.format, f.required, f.constraints) for f in draft.fields] == [
        ("tanggal", "string", "date", True, {}), ("jumlah", "integer", None, False, {"minimum": 0}),
        ("kode", "string", None, False, {"maxLength": 36}), ("kelas", "string", None, False, {"maxLength": 3})]
    left_out = [n.split(": ", 1)[1] for n in notes if "left out" in n]
    assert left_out == [
        "$.schema[0].properties[0]: minimum of a date has no place in a standard; left out",
        "$.schema[0].properties[1]: unique on a field outside the primary key has no place in a standard; left out",
        "$.schema[0].properties[2]: format of a string has no place in a standard; left out"]


def test_examples_of_personal_data_stay_out_of_the_contract(tmp_path):
    schema = json.loads(load_standard("penduduk@1.1.0").path.read_text(encoding="utf-8"))
    schema["properties"]["nik"]["examples"] = ["3271010101900001"]
    schema["properties"]["agama"]["examples"] = ["1"]
    (tmp_path / "penduduk-1.1.0.json").write_text(json.dumps(schema), encoding="utf-8")
    document = contract(load_standard_file(tmp_path / "penduduk-1.1.0.json"))
    assert _property(document, "agama")["examples"] == ["1"]
    assert "examples" not in _property(document, "nik") and "3271010101900001" not in json.dumps(document)
