"""Indicator datasets: declared SQL models over the integrated datasets, checked against counts made here."""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict

import pytest
from sqlalchemy import select

from catalog import storage
from catalog.db import Dataset, DatasetVersion, LineageEdge, Run, session
from hub.errors import ConfigError, DataQualityError
from hub.indicators import build_indicator, load_indicators
from hub.pipeline import integrate, run_source
from schemas import load_standard
from schemas.data_docs import validation_page

SOURCES = ("disdukcapil_siak", "dinsos_dtks", "dinsos_bansos", "disdik_dapodik", "dinkes_faskes")
STANDARDS = ("penduduk", "penerima_bantuan_sosial", "satuan_pendidikan", "fasilitas_kesehatan")
PEOPLE = 3000
GROUPS = ("0-14", "15-64", "65+")


@pytest.fixture
def built(demo_settings, live_demo):
    """Every demo source run and integrated (Dinkes's facilities read from its live API), then every indicator
    built; enough people that some cells of each indicator pass the suppression threshold."""
    from demo.agencies import build

    build(demo_settings.home, people_count=PEOPLE, dinsos_count=PEOPLE // 4)
    for source in SOURCES:
        run_source(demo_settings, source)
    for standard in STANDARDS:
        integrate(demo_settings, standard)
    return demo_settings, {i.id: build_indicator(demo_settings, i.id) for i in load_indicators()}


def _rows(settings, namespace: str, name: str) -> list[dict]:
    return storage.read_table(settings, namespace, name).to_pylist()


def _residents(settings) -> dict[str, dict]:
    """One record per NIK, the population register's where it has the person."""
    residents: dict[str, dict] = {}
    for r in sorted(_rows(settings, storage.INTEGRATED, "penduduk"), key=lambda r: r["_source"] != "disdukcapil_siak"):
        residents.setdefault(r["nik"], r)
    return residents


def _age_group(born: dt.date, today: dt.date) -> str:
    age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    return "0-14" if age < 15 else "15-64" if age < 65 else "65+"


def test_indicators_agree_with_counts_made_from_their_inputs(built):
    settings, results = built
    assert {r["status"] for r in results.values()} == {"published"}
    residents = _residents(settings)
    assert len(residents) == PEOPLE  # everyone Dinsos registers is in SIAK too

    # Population by kelurahan, age group and sex, suppressed below 5 and never one suppressed cell alone.
    counts: dict[str, dict] = defaultdict(lambda: {(g, s): 0 for g in GROUPS for s in ("1", "2")})
    today = dt.date.today()
    for r in residents.values():
        counts[r["kode_wilayah"]][(_age_group(r["tanggal_lahir"], today), r["jenis_kelamin"])] += 1
    expected = {}
    for kode, cells in counts.items():
        order = sorted(cells, key=lambda c: (cells[c], *c))
        small = [c for c in order if cells[c] < 5]
        hidden = set(small) | ({order[1]} if len(small) == 1 else set())
        expected.update({(kode, *c): None if c in hidden else n for c, n in cells.items()})
    rows = _rows(settings, storage.INDICATOR, "penduduk_umur_jenis_kelamin")
    got = {(r["kode_wilayah"], r["kelompok_umur"], r["jenis_kelamin"]): r["jumlah_penduduk"] for r in rows}
    assert got == expected
    assert 0 < sum(v is None for v in got.values()) < len(got)
    assert sum(v for v in got.values() if v is not None) > PEOPLE // 2
    hidden_per_kelurahan = defaultdict(int)
    for (kode, *_), n in got.items():
        assert n is None or n >= 5
        hidden_per_kelurahan[kode] += n is None
    assert 1 not in hidden_per_kelurahan.values()

    # Share of residents receiving assistance, per kelurahan and month.
    population = defaultdict(int)
    for r in residents.values():
        population[r["kode_wilayah"]] += 1
    receiving = defaultdict(set)
    payments = _rows(settings, storage.INTEGRATED, "penerima_bantuan_sosial")
    for p in payments:
        if p["nik"] in residents:
            receiving[(residents[p["nik"]]["kode_wilayah"], p["periode"])].add(p["nik"])
    periods = {p["periode"] for p in payments}
    assert periods == {"2025-01", "2025-02", "2025-03"}
    expected = {}
    for kode, n in population.items():
        for periode in periods:
            k = len(receiving[(kode, periode)])
            shown = k >= 5 and n - k >= 5
            expected[(kode, periode)] = (n, k if shown else None, round(100 * k / n, 2) if shown else None)
    rows = _rows(settings, storage.INDICATOR, "penerima_bansos_kelurahan")
    got = {(r["kode_wilayah"], r["periode"]): (r["jumlah_penduduk"], r["jumlah_penerima"], r["persentase_penerima"])
           for r in rows}
    assert got == expected
    assert 0 < sum(v[1] is None for v in got.values()) < len(got)

    # Schools and health facilities per 10,000 residents, per kecamatan.
    schools, facilities = defaultdict(set), defaultdict(set)
    for r in _rows(settings, storage.INTEGRATED, "satuan_pendidikan"):
        schools[r["kode_wilayah"][:8]].add(r["npsn"])
    for r in _rows(settings, storage.INTEGRATED, "fasilitas_kesehatan"):
        facilities[r["kode_wilayah"][:8]].add(r["kode_faskes"])
    people_per_kecamatan = defaultdict(int)
    for kode, n in population.items():
        people_per_kecamatan[kode[:8]] += n
    rows = _rows(settings, storage.INDICATOR, "fasilitas_per_penduduk_kecamatan")
    assert {r["kode_kecamatan"] for r in rows} == {f"32.71.0{i}" for i in range(1, 7)}
    for r in rows:
        kode, n = r["kode_kecamatan"], people_per_kecamatan[r["kode_kecamatan"]]
        assert (r["jumlah_penduduk"], r["jumlah_satuan_pendidikan"], r["jumlah_fasilitas_kesehatan"]) == \
            (n, len(schools[kode]), len(facilities[kode]))
        assert r["rasio_satuan_pendidikan"] == round(10000 * len(schools[kode]) / n, 2)
        assert r["rasio_fasilitas_kesehatan"] == round(10000 * len(facilities[kode]) / n, 2)


def test_an_unchanged_rebuild_makes_no_new_snapshot_and_lineage_reaches_the_sources(built):
    settings, first = built
    again = {i: build_indicator(settings, i) for i in first}
    for indicator_id, result in again.items():
        assert result["status"] == "unchanged"
        assert result["snapshot_id"] == first[indicator_id]["snapshot_id"]
        table = storage.iceberg_catalog(settings.catalog_url, settings.warehouse.as_uri()).load_table(
            (storage.INDICATOR, indicator_id))
        assert len(table.snapshots()) == 1
    with session(settings.catalog_url) as s:
        for indicator_id in first:
            dataset = s.get(Dataset, indicator_id)
            assert (dataset.kind, dataset.classification) == ("indicator", "publik")
            assert len(s.scalars(select(DatasetVersion).where(DatasetVersion.dataset_id == indicator_id)).all()) == 1
            runs = s.scalars(select(Run).where(Run.dataset_id == indicator_id).order_by(Run.id)).all()
            assert [(r.kind, r.status) for r in runs] == [("indicator", "published"), ("indicator", "unchanged")]
            # Its checks are counted as a source run's are, so its Data Docs page shows every rule passed.
            checks = runs[0].validation["checks"]
            assert checks and all(c["unexpected_count"] == 0 and c["element_count"] > 0 for c in checks.values())
            page = validation_page(load_standard(runs[0].validation["suite"]), runs[0].validation,
                                   {"dataset": indicator_id, "run_id": runs[0].run_id, "finished_at": None})
            assert "Expectation Validation Result" in page
            assert re.search(r"Status:\s*Succeeded", re.sub(r"<[^>]+>", " ", page))
        upstream = defaultdict(set)
        for e in s.scalars(select(LineageEdge)):
            upstream[e.dataset_id].add(e.upstream)

    def ancestors(dataset_id: str) -> set[str]:
        found = set()
        for u in upstream[dataset_id]:
            found |= {u} | ancestors(u)
        return found

    assert upstream["penerima_bansos_kelurahan"] == {"penduduk", "penerima_bantuan_sosial"}
    assert {"disdukcapil_siak", "dinsos_dtks", "dinsos_bansos"} <= ancestors("penerima_bansos_kelurahan")
    assert {"disdukcapil_siak", "dinsos_dtks", "disdik_dapodik", "dinkes_faskes"} <= \
        ancestors("fasilitas_per_penduduk_kecamatan")
    assert any(a.startswith("system:disdik:") for a in ancestors("fasilitas_per_penduduk_kecamatan"))


def test_a_declaration_that_reads_beyond_its_inputs_or_breaks_its_standard_is_refused(built, tmp_path):
    settings, _ = built
    (tmp_path / "sneaky.yaml").write_text(
        "id: sneaky\nstandard: penerima_bansos_kelurahan@1.0.0\ninputs: [penduduk]\n"
        "sql: SELECT kode_wilayah, periode, 1 AS jumlah_penduduk, NULL AS jumlah_penerima, "
        "NULL AS persentase_penerima FROM penerima_bantuan_sosial\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"sneaky.yaml: field 'sql' reads penerima_bantuan_sosial, which field "
                                          r"'inputs' does not name"):
        build_indicator(settings, "sneaky", directory=tmp_path)
    # Without suppression, small cells break the standard's minimum of 5: nothing is published.
    (tmp_path / "unsuppressed.yaml").write_text(
        "id: unsuppressed\nstandard: penduduk_umur_jenis_kelamin@1.0.0\ninputs: [penduduk]\n"
        "sql: SELECT kode_wilayah, '65+' AS kelompok_umur, jenis_kelamin, count(DISTINCT nik) AS jumlah_penduduk "
        "FROM penduduk WHERE tanggal_lahir < DATE '1950-01-01' GROUP BY ALL\n", encoding="utf-8")
    with pytest.raises(DataQualityError, match=r"unsuppressed: \d+ of \d+ rows break standard "
                                               r"penduduk_umur_jenis_kelamin@1.0.0: jumlah_penduduk:range"):
        build_indicator(settings, "unsuppressed", directory=tmp_path)
    with session(settings.catalog_url) as s:
        assert s.get(Dataset, "unsuppressed") is None
        failed = s.scalars(select(Run).where(Run.dataset_id == "unsuppressed")).one()
        assert (failed.kind, failed.status) == ("indicator", "failed")
        assert "3271" not in failed.error  # no NIK or code of a person in the message


@pytest.mark.parametrize(("text", "message"), [
    ("id: bad\nstandard: penduduk_umur_jenis_kelamin@1.0.0\ninputs: [penduduk]\n",
     "bad.yaml: field 'sql' is required"),
    ("id: bad\nstandard: penduduk_umur_jenis_kelamin@1.0.0\ninputs: [penduduk]\nsql: SELECT 1\nquery: x\n",
     "bad.yaml: field 'query' is not one of id, standard, inputs, sql"),
    ("id: other\nstandard: penduduk_umur_jenis_kelamin@1.0.0\ninputs: [penduduk]\nsql: SELECT 1\n",
     "bad.yaml: field 'id' is 'other'; the file must be named after it"),
    ("id: bad\nstandard: penduduk_umur_jenis_kelamin@9.0.0\ninputs: [penduduk]\nsql: SELECT 1\n",
     "bad.yaml: field 'standard': unknown standard 'penduduk_umur_jenis_kelamin@9.0.0'"),
    ("id: bad\nstandard: penduduk_umur_jenis_kelamin@1.0.0\ninputs: penduduk\nsql: SELECT 1\n",
     "bad.yaml: field 'inputs' must be a list of dataset ids"),
])
def test_a_bad_declaration_names_its_file_and_field(tmp_path, text, message):
    (tmp_path / "bad.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_indicators(tmp_path)
    assert message in str(raised.value)


def test_the_declared_indicators_load():
    indicators = {i.id: i for i in load_indicators()}
    assert set(indicators) == {"penduduk_umur_jenis_kelamin", "penerima_bansos_kelurahan",
                               "fasilitas_per_penduduk_kecamatan"}
    assert indicators["fasilitas_per_penduduk_kecamatan"].inputs == ("penduduk", "satuan_pendidikan",
                                                                     "fasilitas_kesehatan")
