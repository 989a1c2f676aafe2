"""The catalog as DCAT-AP RDF: `/catalog.ttl` and `/catalog.jsonld` from a real `hub serve`, read back with rdflib."""

from __future__ import annotations

import httpx
import pytest
from rdflib import Graph, Literal, URIRef
from rdflib import namespace as ns  # not `from rdflib.namespace import DCAT`: pytest collection pokes at those names
from rdflib.compare import isomorphic

from serving.dcat import DQV, catalog_graph

EU = "http://publications.europa.eu/resource/authority/"
PREFIXES = """
PREFIX dcat: <http://www.w3.org/ns/dcat#>
PREFIX dct: <http://purl.org/dc/terms/>
PREFIX foaf: <http://xmlns.com/foaf/0.1/>
PREFIX prov: <http://www.w3.org/ns/prov#>
PREFIX vcard: <http://www.w3.org/2006/vcard/ns#>
PREFIX dqv: <http://www.w3.org/ns/dqv#>
"""


@pytest.fixture(scope="module")
def graphs(api) -> dict[str, Graph]:
    out = {}
    for fmt, media in (("turtle", "text/turtle"), ("json-ld", "application/ld+json")):
        done = httpx.get(api + "/catalog." + {"turtle": "ttl", "json-ld": "jsonld"}[fmt], timeout=60)
        assert done.status_code == 200 and done.headers["content-type"].startswith(media)
        out[fmt] = Graph().parse(data=done.text, format=fmt)
    return out


def _rows(graph: Graph, query: str) -> list[tuple]:
    return [tuple(row) for row in graph.query(PREFIXES + query)]


def test_both_serializations_hold_the_same_graph(graphs):
    assert len(graphs["turtle"]) > 100
    assert isomorphic(graphs["turtle"], graphs["json-ld"])


def test_the_catalog_lists_every_dataset_with_its_dcat_ap_metadata(api, graphs):
    g = graphs["turtle"]
    [(catalog, publisher)] = _rows(g, "SELECT ?c ?name { ?c a dcat:Catalog ; dct:publisher/foaf:name ?name ; "
                                      "foaf:homepage ?home ; dct:title ?t . FILTER(lang(?t) = 'en') }")
    assert str(publisher) == "Pemerintah Kota Bogor" and str(catalog) == api + "/catalog"
    rows = _rows(g, """
        SELECT ?id ?title ?publisher ?contact ?rights ?frequency ?licence ?standard ?issued ?modified {
            ?c a dcat:Catalog ; dcat:dataset ?d .
            ?d a dcat:Dataset ; dct:identifier ?id ; dct:title ?title ; dct:publisher/foaf:name ?publisher ;
               dcat:contactPoint/vcard:fn ?contact ; dct:accessRights ?rights ; dct:accrualPeriodicity ?frequency ;
               dct:license ?licence ; dct:conformsTo ?standard ; dct:issued ?issued ; dct:modified ?modified ;
               dct:spatial ?spatial ; dct:temporal ?temporal ; dcat:keyword "penduduk" ;
               dqv:hasQualityMeasurement/dqv:value ?score .
        } ORDER BY ?id""")
    assert [str(r[0]) for r in rows] == ["dinsos_dtks", "disdukcapil_siak", "penduduk"]
    by_id = {str(r[0]): r for r in rows}
    for _, title, publisher, contact, rights, frequency, _, _, issued, modified in rows:
        assert str(title) and str(publisher) and str(contact).startswith("Dinas Komunikasi")
        # The penduduk standard is `terbatas` and updated `bulanan`.
        assert rights == URIRef(EU + "access-right/RESTRICTED")
        assert frequency == URIRef(EU + "frequency/MONTHLY")
        assert issued.datatype == ns.XSD.dateTime and modified.datatype == ns.XSD.dateTime
    assert str(by_id["dinsos_dtks"][2]) == "Dinas Sosial Kota Bogor"
    assert by_id["dinsos_dtks"][7] == URIRef(api + "/standards/penduduk@1.0.0")
    # SIAK and the integrated dataset follow penduduk@1.1.0.
    assert by_id["penduduk"][7] == URIRef(api + "/standards/penduduk@1.1.0")
    assert (by_id["penduduk"][7], ns.OWL.versionInfo, Literal("1.1.0")) in g


def test_every_dataset_has_four_distributions_that_answer(api, graphs, analyst):
    rows = _rows(graphs["turtle"], """
        SELECT ?id ?title ?access ?download ?media ?format {
            ?d dct:identifier ?id ; dcat:distribution ?x .
            ?x a dcat:Distribution ; dct:title ?title ; dcat:accessURL ?access ; dcat:mediaType ?media ;
               dct:format ?format .
            OPTIONAL { ?x dcat:downloadURL ?download }
        }""")
    assert len(rows) == 16  # both sources, the integrated dataset and the indicator `hub run` built on it
    for dataset in ("dinsos_dtks", "disdukcapil_siak", "penduduk", "penduduk_umur_jenis_kelamin"):
        mine = {str(r[1]): r for r in rows if str(r[0]) == dataset}
        assert set(mine) == {"CSV", "JSON", "Parquet", "API"}
        assert mine["CSV"][4] == URIRef("https://www.iana.org/assignments/media-types/text/csv")
        assert mine["Parquet"][5] == URIRef(EU + "file-type/PARQUET")
        assert mine["API"][3] is None, "the paged rows API is not a whole-file download"
        for _, fmt, access, download, _, _ in mine.values():
            assert str(access).startswith(api + f"/api/datasets/{dataset}/")
            assert download in (None, access)
            assert httpx.get(str(access), headers=analyst, timeout=60).status_code == 200, (dataset, fmt)


def test_lineage_and_no_personal_data(api, graphs):
    g = graphs["turtle"]
    upstream = {str(r[0]) for r in _rows(g, 'SELECT ?u { ?d dct:identifier "penduduk" ; prov:wasDerivedFrom ?u }')}
    assert upstream == {api + "/catalog/datasets/dinsos_dtks", api + "/catalog/datasets/disdukcapil_siak"}
    siak = _rows(g, 'SELECT ?u { ?d dct:identifier "disdukcapil_siak" ; prov:wasDerivedFrom ?u }')
    assert len(siak) == 1 and "/catalog/systems/" in str(siak[0][0])
    # Metadata only: no NIK (16 digits) anywhere.
    import re

    triples = graphs["turtle"].serialize(format="nt")
    assert not re.search(r"(?<![\w.])\d{16}(?![\w.])", re.sub(r"_:\w+", "_:b", triples))  # blank node ids aside


DESCRIBED = {
    "id": "dinkes_imunisasi", "title": "Imunisasi", "description": "Cakupan imunisasi dasar.",
    "standard": "imunisasi", "standard_version": "2.0.0", "standard_title": "Imunisasi",
    "classification": "publik", "walidata": "Diskominfo Kota Bogor", "produsen_data": ["Dinas Kesehatan"],
    "license": "https://creativecommons.org/licenses/by/4.0/", "frequency": "triwulanan",
    "spatial_coverage": "Kota Bogor", "temporal_coverage": "2024", "tags": ["kesehatan", "imunisasi"],
    "issued": "2024-01-01T00:00:00Z", "modified": "2024-04-01T00:00:00Z", "quality": {"score": 2 / 3},
    "lineage": [{"upstream": "system:dinkes:SIMPUS", "relation": "harmonized_from"}],
    "distributions": [{"format": "CSV", "media_type": "text/csv",
                       "url": "/api/datasets/dinkes_imunisasi/download.csv"}],
}


@pytest.mark.parametrize(("classification", "right"),
                         [("publik", "PUBLIC"), ("terbatas", "RESTRICTED"), ("rahasia", "NON_PUBLIC")])
def test_classification_maps_to_eu_access_rights(classification, right):
    g = catalog_graph([{**DESCRIBED, "classification": classification}], "https://data.example/")
    assert list(g.objects(None, ns.DCTERMS.accessRights)) == [URIRef(EU + "access-right/" + right)]


@pytest.mark.parametrize(("frequency", "eu"), [
    ("harian", "DAILY"), ("mingguan", "WEEKLY"), ("bulanan", "MONTHLY"), ("triwulanan", "QUARTERLY"),
    ("semesteran", "BIANNUAL"), ("tahunan", "ANNUAL"), ("tidak_tetap", "IRREG")])
def test_frequency_maps_to_eu_frequencies(frequency, eu):
    g = catalog_graph([{**DESCRIBED, "frequency": frequency}], "https://data.example/")
    assert list(g.objects(None, ns.DCTERMS.accrualPeriodicity)) == [URIRef(EU + "frequency/" + eu)]


def test_a_hand_made_description_becomes_a_dcat_dataset():
    g = catalog_graph([DESCRIBED], "https://data.example")
    ds = URIRef("https://data.example/catalog/datasets/dinkes_imunisasi")
    assert (URIRef("https://data.example/catalog"), ns.DCAT.dataset, ds) in g
    assert (ds, ns.RDF.type, ns.DCAT.Dataset) in g
    assert (ds, ns.DCTERMS.license, URIRef("https://creativecommons.org/licenses/by/4.0/")) in g
    assert (ds, ns.DCTERMS.conformsTo, URIRef("https://data.example/standards/imunisasi@2.0.0")) in g
    assert (ds, ns.DCAT.landingPage, URIRef("https://data.example/api/datasets/dinkes_imunisasi")) in g
    assert set(map(str, g.objects(ds, ns.DCAT.keyword))) == {"kesehatan", "imunisasi"}
    [temporal] = g.objects(ds, ns.DCTERMS.temporal)
    assert (temporal, ns.RDF.type, ns.DCTERMS.PeriodOfTime) in g and str(g.value(temporal, ns.RDFS.label)) == "2024"
    [dist] = g.objects(ds, ns.DCAT.distribution)
    download = URIRef("https://data.example/api/datasets/dinkes_imunisasi/download.csv")
    assert g.value(dist, ns.DCAT.downloadURL) == download
    [measurement] = g.objects(ds, DQV.hasQualityMeasurement)
    assert g.value(measurement, DQV.value) == Literal("0.6667", datatype=ns.XSD.decimal)
    turtle, jsonld = (Graph().parse(data=g.serialize(format=f), format=f) for f in ("turtle", "json-ld"))
    assert isomorphic(turtle, jsonld)
    # A free-text licence is a labelled licence document.
    g = catalog_graph([{**DESCRIBED, "license": "Terbatas untuk instansi pemerintah"}], "https://data.example/")
    [licence] = g.objects(ds, ns.DCTERMS.license)
    assert (licence, ns.RDF.type, ns.DCTERMS.LicenseDocument) in g
