"""The services registry: the demo's services, and every broken registration named by file, line and field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from exchange.identifiers import ServiceId
from exchange.registry import load_service, load_services
from hub.errors import ConfigError
from hub.settings import ROOT, Settings

DATASET = """\
service: BOGOR/GOV/disdukcapil/siak/penduduk
title: Cek penduduk menurut NIK
provider: Dinas Kependudukan dan Pencatatan Sipil Kota Bogor
kind: dataset
dataset:
  id: disdukcapil_siak
  by_key: true
  fields:
    - nik
    - kode_wilayah
"""

OPENAPI = """\
openapi: 3.0.3
info: {title: SIAK, version: "1.0"}
paths:
  /kematian/{nik}:
    get:
      parameters: [{name: nik, in: path, required: true, schema: {type: string}}]
      responses: {"200": {description: ok}}
"""

PROXY = """\
service: BOGOR/GOV/disdukcapil/siak/kematian
title: Cek kematian menurut NIK
provider: Dinas Kependudukan dan Pencatatan Sipil Kota Bogor
kind: proxy
proxy:
  base_url: http://127.0.0.1:9/siak/api
  openapi: siak.openapi.yaml
  standard: penduduk@1.1.0
  mapping:
    nik: {from: NIK, normalize: nik}
    kode_wilayah: {from: kel, normalize: kode_wilayah}
  timeout_seconds: 3
rate_limit: {requests: 10, seconds: 1}
"""


@pytest.fixture
def settings(tmp_path) -> Settings:
    (tmp_path / "services").mkdir()
    return Settings(home=tmp_path, catalog_url=f"sqlite:///{tmp_path / 'catalog.db'}",
                    registry=ROOT / "connectors" / "registry", services=tmp_path / "services")


def write(settings: Settings, name: str, text: str) -> Path:
    path = settings.services / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def refused(settings: Settings, text: str, name: str = "svc.yaml") -> str:
    path = write(settings, name, text)
    with pytest.raises(ConfigError) as error:
        load_service(path, settings)
    return str(error.value)


def test_the_demo_services_load_and_say_they_return_personal_data():
    demo = Settings(home=ROOT / "var", catalog_url="sqlite://", registry=ROOT / "connectors" / "registry",
                    services=ROOT / "exchange" / "services")
    services, problems = load_services(settings=demo)
    assert problems == []
    [penduduk] = [s for s in services if str(s.id) == "BOGOR/GOV/disdukcapil/siak/penduduk"]
    assert penduduk.kind == "dataset" and penduduk.standard_ref == "penduduk@1.1.0"
    assert penduduk.dataset.dataset == "disdukcapil_siak" and penduduk.dataset.key == "nik"
    assert penduduk.id.provider.member_code == "disdukcapil"
    # Derived from the standard's x-personal-data, never declared in the service's file.
    assert set(penduduk.personal_data) == {"nik", "nama", "tanggal_lahir", "alamat"}
    assert penduduk.requires_issue and penduduk.rate_limit == (60, 60.0)


def test_a_dataset_service_asking_only_for_codes_needs_no_purpose(settings):
    service = load_service(write(settings, "w.yaml", DATASET.replace("by_key: true", "filters: [kode_wilayah]")
                                 .replace("    - nik\n", "")), settings)
    assert service.dataset.key is None and service.dataset.filters == ("kode_wilayah",)
    assert service.personal_data == () and not service.requires_issue and service.dataset.max_rows == 100
    # Asked by NIK, it is personal data even when the answer holds none.
    service = load_service(write(settings, "k.yaml", DATASET.replace("    - nik\n", "")), settings)
    assert service.personal_data == ("nik",) and service.requires_issue


def test_a_proxied_service_with_its_openapi_document_and_mapping(settings):
    write(settings, "siak.openapi.yaml", OPENAPI)
    service = load_service(write(settings, "kematian.yaml", PROXY), settings)
    assert service.id == ServiceId("BOGOR", "GOV", "disdukcapil", "siak", "kematian")
    assert service.proxy.base_url == "http://127.0.0.1:9/siak/api" and service.proxy.timeout_seconds == 3
    assert service.proxy.openapi == str((settings.services / "siak.openapi.yaml").resolve())
    assert service.proxy.mapping["nik"] == {"from": "NIK", "normalize": "nik"}
    assert service.personal_data == ("nik",) and service.rate_limit == (10, 1.0)
    assert load_service(write(settings, "u.yaml", PROXY.replace("siak.openapi.yaml", "https://siak.example/o.json")),
                        settings).proxy.openapi == "https://siak.example/o.json"


@pytest.mark.parametrize("change, line, field, says", [
    (("kind: dataset", "kind: soap"), 4, "kind", "'soap' is not one of ['dataset', 'proxy', 'changes']"),
    (("title: Cek penduduk menurut NIK\n", ""), 1, "(top level)", "'title' is a required property"),
    (("  by_key: true\n", ""), 6, "dataset", "expected a way to look records up: by_key: true, filters, or both"),
    (("  by_key: true", "  by_key: false"), 6, "dataset", "by_key: true, filters, or both"),
    (("  fields:\n    - nik\n    - kode_wilayah\n", "  fields: []\n"), 8, "dataset/fields", "a list that fails minItems 1"),
    (("  id: disdukcapil_siak", "  id: Disdukcapil"), 6, "dataset/id", "does not match"),
    (("kind: dataset\n", "kind: dataset\nproxy: {base_url: http://x}\n"), 5, "proxy",
     "not a field of a dataset service"),
    (("kind: dataset\n", "kind: dataset\nrate_limit: {requests: 0, seconds: 1}\n"), 5, "rate_limit/requests",
     "0 is less than the minimum of 1"),
    (("kind: dataset\n", "kind: dataset\nowner: dinsos\n"), 1, "(top level)",
     "Additional properties are not allowed ('owner' was unexpected)"),
])
def test_a_registration_against_the_schema_is_refused_with_file_line_and_field(settings, change, line, field, says):
    error = refused(settings, DATASET.replace(*change))
    assert error.startswith("invalid service registration\n")
    assert f"svc.yaml:{line}: field {field}: " in error and says in error, error


def test_the_proxy_mapping_is_checked_by_the_connectors_own_definition(settings):
    write(settings, "siak.openapi.yaml", OPENAPI)
    error = refused(settings, PROXY.replace("normalize: nik}", "normalize: nip}"))
    assert "svc.yaml:10: field proxy/mapping/nik/normalize: unknown normalizer 'nip'; known normalizers:" in error
    error = refused(settings, PROXY.replace("{from: kel, normalize: kode_wilayah}", "{normalize: kode_wilayah}"))
    assert "svc.yaml:11: field proxy/mapping/kode_wilayah: expected" in error


@pytest.mark.parametrize("change, line, field, says", [
    (("BOGOR/GOV/disdukcapil/siak/penduduk", "BOGOR/GOV/disdukcapil/si_ak/penduduk"), 1, "service",
     "service identifier: the subsystem code 'si_ak' holds '_'"),
    (("BOGOR/GOV/disdukcapil/siak/penduduk", "BOGOR/GOV/disdukcapil/penduduk"), 1, "service",
     "the hub needs the subsystem code"),
    (("siak/penduduk", "siak/listMethods"), 1, "service", "listMethods is the name of a metadata service"),
    (("id: disdukcapil_siak", "id: disdukcapil_capil"), 6, "dataset/id", "no source registration 'disdukcapil_capil'"),
    (("id: disdukcapil_siak", "id: dinsos_dtks"), 6, "dataset/id",
     "dinsos_dtks is agency dinsos's dataset, and the service's provider (its member code) is disdukcapil"),
    (("    - kode_wilayah", "    - kelurahan"), 10, "dataset/fields/1", "'kelurahan' is not a field of standard penduduk@1.1.0"),
    (("  by_key: true", "  by_key: true\n  filters: [nik, rt]"), 8, "dataset/filters/1", "'rt' is not a field"),
])
def test_a_registration_naming_what_does_not_exist_is_refused_with_file_line_and_field(settings, change, line, field,
                                                                                        says):
    error = refused(settings, DATASET.replace(*change))
    assert f"svc.yaml:{line}: field {field}: " in error and says in error, error


def test_a_dataset_service_whose_standard_has_no_single_key_cannot_look_up_by_key(settings):
    text = DATASET.replace("disdukcapil/siak", "dinsos/siks").replace("disdukcapil_siak", "dinsos_bansos")
    error = refused(settings, text.replace("    - kode_wilayah\n", ""))
    assert ("svc.yaml:7: field dataset/by_key: standard penerima_bantuan_sosial@1.0.0 has no primary key of one "
            "field (nik, program, periode); use filters") in error, error


@pytest.mark.parametrize("change, field, says", [
    (("normalize: kode_wilayah}", "normalize: kode_wilayah}\n    rt: {from: RT}"), "proxy/mapping/rt",
     "'rt' is not a field of standard penduduk@1.1.0"),
    (("standard: penduduk@1.1.0", "standard: penduduk@9.0.0"), "proxy/standard", "unknown standard 'penduduk@9.0.0'"),
    (("openapi: siak.openapi.yaml", "openapi: ../../etc/passwd"), "proxy/openapi",
     "is outside the folder of the registration"),
    (("openapi: siak.openapi.yaml", "openapi: nothing.yaml"), "proxy/openapi", "no file nothing.yaml beside"),
    (("openapi: siak.openapi.yaml", "openapi: svc.yaml"), "proxy/openapi", "is not an OpenAPI 3 document"),
    (("base_url: http://127.0.0.1:9/siak/api", "base_url: http://user:pw@127.0.0.1:9/"), "proxy/base_url",
     "does not match"),
    (("base_url: http://127.0.0.1:9/siak/api", "base_url: ftp://127.0.0.1/"), "proxy/base_url", "does not match"),
    (("  timeout_seconds: 3", "  timeout_seconds: 0"), "proxy/timeout_seconds", "less than or equal to the minimum"),
    (("kind: proxy\n", "kind: proxy\ndataset: {id: disdukcapil_siak, by_key: true, fields: [nik]}\n"), "dataset",
     "not a field of a proxy service"),
])
def test_a_broken_proxied_service_is_refused_naming_its_field(settings, change, field, says):
    write(settings, "siak.openapi.yaml", OPENAPI)
    error = refused(settings, PROXY.replace(*change))
    assert "svc.yaml:" in error and f": field {field}: " in error and says in error, error


def test_yaml_that_is_no_registration_is_refused_as_the_source_registry_refuses_it(settings):
    assert "key 'kind' is written twice in one mapping (first on line 4)" in refused(settings, DATASET + "kind: proxy\n")
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n" for p, c in zip("abcd", "bcde"))
    assert "more than 100000 values once its aliases (*name) are expanded" in refused(settings, bomb)
    assert "not valid YAML" in refused(settings, "service: !!python/object/apply:os.system [true]\n")
    assert "expected a mapping of fields" in refused(settings, "- a list\n")


def test_load_services_keeps_the_good_ones_and_lists_the_problems(settings):
    write(settings, "a.yaml", DATASET)
    write(settings, "b.yaml", DATASET.replace("kind: dataset", "kind: rpc"))
    write(settings, "c.yaml", DATASET)
    write(settings, "notes.txt", "not a registration")
    services, problems = load_services(settings=settings)
    assert [str(s.id) for s in services] == ["BOGOR/GOV/disdukcapil/siak/penduduk"]
    assert [Path(p["file"]).name for p in problems] == ["b.yaml", "c.yaml"]
    assert "b.yaml:4: field kind:" in problems[0]["error"]
    assert "is registered already, in" in problems[1]["error"] and "a.yaml" in problems[1]["error"]
    with pytest.raises(ConfigError, match="services folder .* does not exist .set HUB_SERVICES."):
        load_services(settings.home / "nowhere", settings)
