"""Full-text search with facets, on a SQLite and a PostgreSQL catalog, with the same results on both."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from catalog.db import init_db, session
from catalog.search import index_dataset, remove_dataset, search
from hub.pipeline import integrate, run_source
from hub.settings import ROOT, Settings


def described(dataset_id, title, description, tags, fields, agency, standard, classification, modified):
    """A dataset description shaped as `catalog.metadata.describe` returns it (the parts search reads)."""
    return {"id": dataset_id, "title": title, "description": description, "tags": tags, "agency": agency,
            "standard": standard, "classification": classification, "modified": modified,
            "schema": [{"name": name, "title": field_title, "description": field_description}
                       for name, field_title, field_description in fields]}


NIK = ("nik", "Nomor Induk Kependudukan", "Nomor identitas penduduk")
DATASETS = [
    described("siak", "Penduduk Kota Bogor", "Data kependudukan dari SIAK Disdukcapil", ["penduduk", "disdukcapil"],
              [NIK, ("kode_wilayah", "Kode wilayah", "Kode desa atau kelurahan")],
              "disdukcapil", "penduduk", "terbatas", "2025-01-03T08:00:00Z"),
    described("dtks", "Penerima bantuan DTKS", "Data Terpadu Kesejahteraan Sosial", ["dtks", "dinsos", "penduduk"],
              [NIK, ("desil", "Desil kesejahteraan", "Peringkat rumah tangga")],
              "dinsos", "penduduk", "terbatas", "2025-01-05T08:00:00Z"),
    described("sekolah", "Sekolah dan guru", "Daftar sekolah, disusun oleh Désirée Pratama", ["pendidikan"],
              [("npsn", "NPSN", "Nomor pokok sekolah nasional")], "disdik", "sekolah", "terbuka",
              "2025-01-04T08:00:00Z"),
    described("puskesmas", "Puskesmas", "Fasilitas kesehatan tingkat pertama", ["kesehatan"],
              [("kode_faskes", "Kode faskes", "Kode fasilitas dari BPJS")], "dinkes", "faskes", "terbuka", None),
]


def catalog(tmp_path, url: str, datasets=DATASETS) -> Settings:
    init_db(url)
    with session(url) as s, s.begin():
        for description in datasets:
            index_dataset(s, description)
    return Settings(home=tmp_path, catalog_url=url, registry=ROOT / "connectors" / "registry")


@pytest.fixture
def settings(tmp_path, catalog_url) -> Settings:
    return catalog(tmp_path, catalog_url)


def found(settings, q="", **options) -> list[str]:
    return search(settings, q, rows=100, **options)["results"]


@pytest.mark.parametrize(("q", "dataset_id"), [
    ("bogor", "siak"),  # title
    ("kesejahteraan", "dtks"),  # description
    ("dinsos", "dtks"),  # tag
    ("desil", "dtks"),  # field name
    ("rumah", "dtks"),  # field description
    ("npsn", "sekolah"),  # field name and title
    ("wilayah", "siak"),  # a word of a field name
])
def test_every_part_of_the_description_finds_the_dataset(settings, q, dataset_id):
    assert found(settings, q) == [dataset_id]


def test_words_match_by_prefix_without_case_or_accents(settings):
    assert found(settings, "pendu") == found(settings, "PENDUDUK") == ["siak", "dtks"]
    assert found(settings, "desiree") == found(settings, "Désirée") == found(settings, "DÉSIR") == ["sekolah"]
    assert found(settings, "duduk") == []  # a word's start, not its middle


def test_every_word_must_match(settings):
    assert found(settings, "nik desil") == ["dtks"]
    assert found(settings, "nomor bogor") == ["siak"]
    assert found(settings, "nik sekolah") == []
    assert found(settings, "kode_wilayah") == ["siak"]  # the field name's words


def test_filters_keep_datasets_with_one_of_the_values_of_every_facet(settings):
    assert found(settings, filters={"agency": ["dinsos"]}) == ["dtks"]
    assert found(settings, filters={"agency": ["dinsos", "disdik"]}, sort="title") == ["dtks", "sekolah"]
    assert found(settings, filters={"standard": ["penduduk"], "classification": ["terbatas"]}) == ["dtks", "siak"]
    assert found(settings, filters={"tag": ["penduduk"], "agency": ["disdik"]}) == []
    assert found(settings, "nomor", filters={"classification": ["terbuka"]}) == ["sekolah"]


def test_facets_count_every_match_not_only_the_page(settings):
    result = search(settings, "nomor", rows=1)
    assert result["count"] == 3 and len(result["results"]) == 1
    assert result["facets"] == {
        "agency": {"dinsos": 1, "disdik": 1, "disdukcapil": 1},
        "standard": {"penduduk": 2, "sekolah": 1},
        "tag": {"penduduk": 2, "dinsos": 1, "disdukcapil": 1, "dtks": 1, "pendidikan": 1},
        "classification": {"terbatas": 2, "terbuka": 1},
    }
    assert search(settings, "nomor", facets=["agency"], filters={"agency": ["dinsos"]})["facets"] == {
        "agency": {"dinsos": 1}}


def test_sort_orders_and_pages(settings):
    assert found(settings, sort="title") == ["siak", "dtks", "puskesmas", "sekolah"]
    assert found(settings, sort="modified") == ["dtks", "sekolah", "siak", "puskesmas"]  # never modified last
    # Title words weigh most: siak has "penduduk" in its title, tags and a field; dtks in its tags and a field.
    assert found(settings, "penduduk") == ["siak", "dtks"]
    assert found(settings, "kode") == ["puskesmas", "siak"]  # equal scores: by dataset id
    pages = [search(settings, sort="title", rows=3, start=start) for start in (0, 3, 6)]
    assert [page["results"] for page in pages] == [["siak", "dtks", "puskesmas"], ["sekolah"], []]
    assert {page["count"] for page in pages} == {4}


def test_indexing_a_dataset_again_replaces_its_document(settings):
    with session(settings.catalog_url) as s, s.begin():
        index_dataset(s, {**DATASETS[2], "title": "Satuan pendidikan", "tags": ["pendidikan", "disdik"]})
    assert found(settings, "guru") == []
    assert found(settings, "satuan") == ["sekolah"]
    result = search(settings, facets=["tag"])
    assert result["count"] == 4
    assert result["facets"]["tag"]["pendidikan"] == 1 and result["facets"]["tag"]["disdik"] == 1


def test_a_removed_dataset_is_no_longer_found(settings):
    with session(settings.catalog_url) as s, s.begin():
        remove_dataset(s, "sekolah")
    assert found(settings, "sekolah") == []
    result = search(settings, facets=["standard"])
    assert result["count"] == 3 and "sekolah" not in result["facets"]["standard"]


@pytest.mark.parametrize(("q", "count"), [
    ('"', 4), ("*", 4), ("'", 4), ("\\", 4), ("!&|", 4), ("(", 4),  # no word at all: every dataset
    ("-bogor", 1), ("(sekolah", 1), ('nik"', 2), ("nik:*", 2), ("^desil", 1), ("{npsn}", 1), ('"desil*"', 1),
    ("OR", 0), ("penduduk OR bogor", 0), ("AND NOT", 0), ("NEAR(nik", 0),  # words no dataset has
])
def test_query_syntax_is_read_as_words(settings, q, count):
    assert search(settings, q)["count"] == count


def test_unknown_facets_and_sorts_are_refused(settings):
    with pytest.raises(ValueError, match="facet"):
        search(settings, filters={"colour": ["red"]})
    with pytest.raises(ValueError, match="sort"):
        search(settings, sort="size")


QUERIES = [
    {}, {"q": "pendu"}, {"q": "nomor", "sort": "title"}, {"q": "kode", "rows": 1, "start": 1},
    {"q": "DÉSIRÉE"}, {"q": "data", "filters": {"classification": ["terbatas"]}}, {"sort": "modified"},
    {"q": '"nik" OR (desil*'}, {"q": "nik", "facets": ["tag"]}, {"q": "1"},
]


def test_sqlite_and_postgresql_give_the_same_results(tmp_path, postgres):
    engines = [catalog(tmp_path, f"sqlite:///{tmp_path / 'catalog.db'}"),
               catalog(tmp_path, postgres.create_database("catalog_search_same_results"))]
    sqlite, postgresql = ([search(settings, **query) for query in QUERIES] for settings in engines)
    assert sqlite == postgresql
    assert any(result["count"] for result in sqlite)


def test_the_pipeline_keeps_the_index_current(demo_settings):
    run_source(demo_settings, "dinsos_dtks")
    run_source(demo_settings, "disdukcapil_siak")
    assert found(demo_settings, "dtks") == ["dinsos_dtks"]
    integrate(demo_settings, "penduduk")
    result = search(demo_settings, filters={"standard": ["penduduk"]})
    assert set(result["results"]) == {"dinsos_dtks", "disdukcapil_siak", "penduduk"}
    integrated = search(demo_settings, "terintegrasi")
    assert integrated["results"] == ["penduduk"]
    assert integrated["facets"]["standard"] == {"penduduk": 1}
    assert integrated["facets"]["classification"] == {"terbatas": 1}
    assert "kependudukan" in integrated["facets"]["tag"]
    assert set(found(demo_settings, "nik")) == {"dinsos_dtks", "disdukcapil_siak", "penduduk"}


def test_reindex_rebuilds_the_index_of_a_catalog_made_without_it(demo_settings):
    run_source(demo_settings, "dinsos_dtks")
    with session(demo_settings.catalog_url) as s, s.begin():
        remove_dataset(s, "dinsos_dtks")  # as a catalog from before search existed
    assert search(demo_settings, "dtks")["count"] == 0
    done = subprocess.run([str(Path(sys.executable).parent / "hub"), "catalog", "reindex"], capture_output=True,
                          text=True, timeout=600, env={**os.environ, "HUB_HOME": str(demo_settings.home),
                                                       "HUB_CATALOG_URL": demo_settings.catalog_url,
                                                       "HUB_REGISTRY": str(demo_settings.registry)})
    assert done.returncode == 0 and "re-indexed 1 datasets" in done.stdout, done.stderr
    assert search(demo_settings, "dtks")["results"] == ["dinsos_dtks"]
