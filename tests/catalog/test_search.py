"""Full-text search with facets, on a SQLite and a PostgreSQL catalog, with the same results on both."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sqlalchemy import text

from catalog.db import init_db, session
from catalog.search import (SYNONYMS_FILE, expand, index_dataset, index_version, remove_dataset, search, synonyms,
                            words)
from hub.followed import BrokenFile
from hub.pipeline import integrate, run_source
from hub.settings import ROOT, Settings


def described(dataset_id, title, description, tags, fields, agency, standard, classification, modified,
              kind="harmonized", standard_version=None):
    """A dataset description shaped as `catalog.metadata.describe` returns it (the parts search reads)."""
    return {"id": dataset_id, "kind": kind, "title": title, "description": description, "tags": tags,
            "agency": agency, "standard": standard, "standard_version": standard_version,
            "classification": classification, "modified": modified,
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
        "topic": {"population": 2},  # the standard penduduk's; sekolah is no standard of schemas/standards
        "kind": {"harmonized": 3},
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
    assert integrated["facets"]["kind"] == {"integrated": 1}
    assert integrated["facets"]["topic"] == {"population": 1}
    assert "penduduk" in found(demo_settings, "residents")  # the standard's English title
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


# --- synonyms, English titles, topics and kinds --------------------------------------------------------------

# Datasets of a city catalog as residents search it: some say "bantuan sosial", one only "bansos"; the indicator
# and integrated ones are described by real standards, which give their English title and description.
CITY = [
    described("dinsos_penerima", "Penerima bantuan sosial", "Penerima PKH dan BPNT dari SIKS-NG",
              ["bantuan sosial", "dinsos"], [("nik", "NIK", "Nomor induk kependudukan penerima")], "dinsos",
              "penerima_bantuan_sosial", "terbatas", "2025-02-01T08:00:00Z"),
    described("rekap_bansos", "Rekap bansos kecamatan", "Rekap penyaluran bansos per kecamatan", ["dinsos"],
              [("kecamatan", "Kecamatan", "Nama kecamatan")], "dinsos", "penerima_bantuan_sosial", "publik",
              "2025-02-03T08:00:00Z"),
    described("penerima_bansos_kelurahan", "Persentase penduduk penerima bantuan sosial menurut kelurahan",
              "Indikator per kelurahan", ["indikator"], [("kode_kelurahan", "Kode kelurahan", "Kode wilayah")],
              None, "penerima_bansos_kelurahan", "publik", "2025-02-02T08:00:00Z", "indicator", "1.0.0"),
    described("fasilitas_kesehatan", "Fasilitas pelayanan kesehatan (terintegrasi)", "Dari semua sumber",
              ["kesehatan"], [("kode_faskes", "Kode faskes", "Kode fasilitas")], None, "fasilitas_kesehatan",
              "publik", "2025-02-04T08:00:00Z", "integrated", "1.0.0"),
    described("layanan_dasar", "Sekolah dan faskes per 10.000 penduduk", "Indikator per kecamatan", ["indikator"],
              [("kecamatan", "Kecamatan", "Nama kecamatan")], None, "fasilitas_per_penduduk_kecamatan", "publik",
              "2025-02-06T08:00:00Z", "indicator", "1.0.0"),
    described("rsud", "Layanan RSUD Kota Bogor", "Kunjungan pasien per poli", ["dinkes"],
              [("poli", "Poli", "Poliklinik")], "dinkes", "fasilitas_kesehatan", "publik", None),
    described("umkm_binaan", "Data UMKM binaan", "Pelaku UMKM binaan dinas", ["dpmptsp"],
              [("nib", "NIB", "Nomor induk berusaha")], "dpmptsp", "umkm", "publik", "2025-02-05T08:00:00Z"),
]


@pytest.fixture
def city(tmp_path, catalog_url) -> Settings:
    return catalog(tmp_path, catalog_url, CITY)


def test_a_short_form_finds_what_is_written_in_full_and_the_other_way(city):
    social = {"dinsos_penerima", "rekap_bansos", "penerima_bansos_kelurahan"}
    assert set(found(city, "bansos")) == social  # two say "bantuan sosial", one "bansos"
    assert set(found(city, "bantuan sosial")) == social
    assert set(found(city, "Bantuan-Sosial")) == social
    # Each word of a term begins a word of the document, as a query's words do: here title and tags.
    assert found(city, "bansos", filters={"agency": ["dinsos"]}) == ["dinsos_penerima", "rekap_bansos"]


def test_a_term_of_many_words_is_one_position(city):
    assert expand("usaha mikro kecil menengah") == [
        (("umkm",), ("ukm",), ("usaha", "mikro", "kecil", "menengah"), ("usaha", "mikro", "kecil", "dan", "menengah"),
         ("pelaku", "usaha"))]
    assert found(city, "usaha mikro kecil menengah") == ["umkm_binaan"]  # which says only "UMKM"
    assert found(city, "fasilitas kesehatan") == ["fasilitas_kesehatan", "layanan_dasar"]  # "faskes" in its title


def test_the_longest_run_of_words_that_is_a_term_is_taken(city):
    assert expand("rumah sakit umum daerah") == [(("rsud",), ("rumah", "sakit", "umum", "daerah"))]
    assert expand("rumah sakit swasta") == [(("rs",), ("rumah", "sakit")), (("swasta",),)]
    assert expand("sekolah dasar negeri")[0] == (("sd",), ("sekolah", "dasar"))
    # Read as "rumah sakit" (rs), "umum", "daerah", the query would need two words the dataset lacks.
    assert found(city, "rumah sakit umum daerah") == ["rsud"]


def test_synonyms_never_loosen_a_query(city):
    assert expand("rekap kecamatan") == [(("rekap",),), (("kecamatan",),)]
    assert found(city, "rekap kecamatan") == ["rekap_bansos"]
    assert found(city, "bansos kesehatan") == []  # the word without a synonym is still required
    assert found(city, "bantuan pangan") == []  # part of a term (bantuan pangan non tunai) is not the term
    assert expand("bansos BANSOS bantuan sosial") == expand("bansos")  # one position, counted once
    assert found(city, "bansos")[:1] == ["dinsos_penerima"]


def test_both_languages_apply_to_every_query(city):
    assert expand("tb") == [(("tbc",), ("tb",), ("tuberkulosis",), ("tuberculosis",))]  # a term of both
    assert found(city, "welfare") == ["penerima_bansos_kelurahan"]  # its English title: social assistance


def test_an_integrated_or_indicator_dataset_is_found_by_its_english_title(city):
    assert found(city, "health facilities") == ["fasilitas_kesehatan", "layanan_dasar"]
    assert found(city, "healthcare facility") == found(city, "health facility")
    assert found(city, "micro small") == []  # a harmonized dataset has its agency's Indonesian title only
    assert found(city, "share of residents receiving") == ["penerima_bansos_kelurahan"]


def test_topics_and_kinds_are_facets(city):
    result = search(city, facets=["topic", "kind"])
    assert result["facets"] == {
        "topic": {"health": 3, "social_protection": 3, "economy": 1, "education": 1},
        "kind": {"harmonized": 4, "indicator": 2, "integrated": 1},
    }
    assert found(city, filters={"topic": ["education"]}) == ["layanan_dasar"]  # in two topics
    assert set(found(city, filters={"topic": ["health"]})) == {"fasilitas_kesehatan", "layanan_dasar", "rsud"}
    assert found(city, filters={"kind": ["indicator", "integrated"]}, sort="title") == [
        "fasilitas_kesehatan", "penerima_bansos_kelurahan", "layanan_dasar"]
    assert found(city, "bansos", filters={"topic": ["social_protection"], "kind": ["harmonized"]}) == [
        "dinsos_penerima", "rekap_bansos"]
    assert search(city, "bansos", facets=["topic"])["facets"] == {"topic": {"social_protection": 3}}


SYNONYM_QUERIES = [
    {"q": "bansos"}, {"q": "bantuan sosial"}, {"q": "rumah sakit umum daerah"}, {"q": "health facilities"},
    {"q": "usaha mikro kecil menengah", "facets": ["kind"]}, {"q": "penduduk"}, {"q": "faskes kecamatan"},
    {"q": "nik"}, {"q": "pelaku usaha"}, {"q": "kesehatan", "filters": {"topic": ["health"]}}, {"q": "welfare OR bansos"},
    {"q": "sekolah", "sort": "title"}, {"q": "warga"}, {"q": "(bansos* AND"},
]


def test_synonyms_rank_alike_on_sqlite_and_postgresql(tmp_path, postgres):
    engines = [catalog(tmp_path, f"sqlite:///{tmp_path / 'catalog.db'}", DATASETS + CITY),
               catalog(tmp_path, postgres.create_database("catalog_search_synonyms"), DATASETS + CITY)]
    sqlite, postgresql = ([search(settings, rows=100, **query) for query in SYNONYM_QUERIES] for settings in engines)
    assert sqlite == postgresql
    assert all(len(result["results"]) >= 1 for result in sqlite[:-1])
    assert sqlite[0]["results"] == ["dinsos_penerima", "rekap_bansos", "penerima_bansos_kelurahan", "dtks"]


def test_the_synonyms_shipped_are_valid():
    groups = synonyms()
    assert groups[("bansos",)] == (("bansos",), ("bantuan", "sosial"))
    assert groups[("bantuan", "sosial")] == groups[("bansos",)]
    assert ("faskes",) in groups[("fasilitas", "kesehatan")]
    assert synonyms(SYNONYMS_FILE) is groups  # read once


# A word's own forms, which a term may begin: anything else a one-word term begins is another meaning.
OWN_FORMS = {"school": {"schools"}, "nib": {"nibs"}, "tb": {"tbc"}, "izin": {"izinnya"}, "kelurahan": {"kelurahannya"},
             "kematian": {"kematiannya"}}


def test_no_one_word_synonym_begins_a_word_of_another_meaning():
    vocabulary = {w for path in (ROOT / "schemas" / "standards").glob("*.json") for w in words(path.read_text())}
    widened = {alternative[0]: sorted(w for w in vocabulary if w.startswith(alternative[0]) and w != alternative[0])
               for alternatives in synonyms().values() for alternative in alternatives if len(alternative) == 1}
    assert {term: begun for term, begun in widened.items() if set(begun) - OWN_FORMS.get(term, set())} == {}


@pytest.mark.parametrize(("content", "problem"), [
    ("id:\n  - [bansos, bantuan sosial]\n  - [faskes]\n", ":3:5: group 2 of id is a list of two or more"),
    ("id:\n  - [bansos, '--']\n", ":2:14: group 1 of id: a term is a word or words"),
    ("id:\n  - [bansos, Bansos]\n", ":2:14: group 1 of id: the term 'bansos' twice"),
    ("id:\n  - bansos\n", ":2:5: group 1 of id is a list"),
    ("fr:\n  - [aide sociale, welfare]\n", ":1:1: no language 'fr'"),
    ("id: [bansos, bantuan sosial]\n", ":1:6: group 1 of id is a list"),
    ("en:\n  welfare: social assistance\n", ":2:3: the en synonyms are a list of groups"),
    ("- [bansos, bantuan sosial]\n", ":1:1: the synonyms are a mapping of languages"),
    ("id:\n  - [bansos, bantuan sosial\n", ":3:1: not valid YAML"),
])
def test_a_broken_synonyms_file_is_named_with_its_line(tmp_path, content, problem):
    path = tmp_path / "synonyms.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(BrokenFile) as raised:
        synonyms(path)
    assert f"synonyms.yaml{problem}" in str(raised.value)


def test_the_synonyms_file_is_read_again_when_it_changes(tmp_path):
    path = tmp_path / "synonyms.yaml"
    path.write_text("id:\n  - [bansos, bantuan sosial]\n", encoding="utf-8")
    assert expand("pkh", path) == [(("pkh",),)]
    path.write_text("id:\n  - [bansos, bantuan sosial]\n  - [pkh, program keluarga harapan]\n", encoding="utf-8")
    assert expand("pkh", path) == [(("pkh",), ("program", "keluarga", "harapan"))]
    path.write_text("id:\n  - [pkh]\n", encoding="utf-8")  # broken: the last good groups stay in use
    assert expand("pkh", path) == [(("pkh",), ("program", "keluarga", "harapan"))]


def test_an_index_made_by_older_code_is_rebuilt_on_the_next_search(demo_settings):
    run_source(demo_settings, "dinsos_dtks")
    with session(demo_settings.catalog_url) as s, s.begin():  # as a catalog indexed before topics and kinds
        s.execute(text("DELETE FROM hub_search_facets WHERE facet IN ('topic', 'kind')"))
        s.execute(text("UPDATE hub_search_documents SET index_version = NULL"))
    assert search(demo_settings, filters={"topic": ["population"], "kind": ["harmonized"]})["results"] == [
        "dinsos_dtks"]
    with session(demo_settings.catalog_url) as s:
        assert set(s.scalars(text("SELECT index_version FROM hub_search_documents"))) == {index_version()}
