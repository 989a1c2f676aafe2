"""The catalog as DCAT-AP 3.0.1 linked data from a real `hub serve`: the official shapes; every IRI it mints answers."""

from __future__ import annotations

import hashlib
import json
import re

import httpx
import pytest
from pyshacl import validate
from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib import namespace as ns  # not `from rdflib.namespace import DCAT`: pytest collection pokes at those names
from rdflib.compare import isomorphic

from schemas.licences import KNOWN
from serving.dcat import DQV, catalog_graph, licence_slug, negotiate

EU = "http://publications.europa.eu/resource/authority/"
IANA = "https://www.iana.org/assignments/media-types/"
CONFORMANCE = "/work/shared/conformance/dcat-ap/"
SH = Namespace("http://www.w3.org/ns/shacl#")
SPDX = Namespace("http://spdx.org/rdf/terms#")
FORMATS = {"text/turtle": "turtle", "application/ld+json": "json-ld", "application/rdf+xml": "xml"}
SUFFIXES = {".ttl": "turtle", ".jsonld": "json-ld", ".rdf": "xml"}
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
PREFIXES = """
PREFIX dcat: <http://www.w3.org/ns/dcat#>
PREFIX dct: <http://purl.org/dc/terms/>
PREFIX foaf: <http://xmlns.com/foaf/0.1/>
PREFIX prov: <http://www.w3.org/ns/prov#>
PREFIX vcard: <http://www.w3.org/2006/vcard/ns#>
PREFIX dqv: <http://www.w3.org/ns/dqv#>
PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
"""


@pytest.fixture(scope="module")
def downloaded(api) -> dict[str, bytes]:
    """Every file anonymous may download, downloaded once (so the catalog knows their sizes): url -> bytes."""
    out = {}
    for d in httpx.get(api + "/api/datasets").json()["datasets"]:
        for fmt in ("csv", "json", "parquet"):
            url = f"{api}/api/datasets/{d['id']}/download.{fmt}"
            got = httpx.get(url, timeout=60)
            if got.status_code == 200:
                out[url] = got.content
    assert out
    return out


@pytest.fixture(scope="module")
def graphs(api, downloaded) -> dict[str, Graph]:
    out = {}
    for suffix, fmt in SUFFIXES.items():
        done = httpx.get(api + "/catalog" + suffix, timeout=60)
        assert done.status_code == 200 and done.headers["content-type"].startswith(
            {v: k for k, v in FORMATS.items()}[fmt])
        out[fmt] = Graph().parse(data=done.text, format=fmt)
    return out


def _rows(graph: Graph, query: str) -> list[tuple]:
    return [tuple(row) for row in graph.query(PREFIXES + query)]


# --- the official shapes -------------------------------------------------------------------------------------------

# The EU vocabularies' IRIs and the types the EU validator's background knowledge gives them (it loads the
# vocabularies themselves); this test adds those types beside the catalog, as that validator does.
VOCABULARIES = {EU + "licence/": [ns.DCTERMS.LicenseDocument], EU + "file-type/": [ns.DCTERMS.MediaTypeOrExtent],
                EU + "frequency/": [ns.DCTERMS.Frequency], EU + "language/": [ns.DCTERMS.LinguisticSystem],
                EU + "access-right/": [ns.DCTERMS.RightsStatement], EU + "data-theme/": [ns.SKOS.Concept],
                IANA: [ns.DCTERMS.MediaType, ns.DCTERMS.MediaTypeOrExtent],
                str(SPDX) + "checksumAlgorithm_": [SPDX.ChecksumAlgorithm]}


def _vocabulary_types(graph: Graph) -> Graph:
    background = Graph()
    for iri in {o for o in graph.objects() if isinstance(o, URIRef)}:
        for start, types in VOCABULARIES.items():
            if str(iri).startswith(start):
                background += [(iri, ns.RDF.type, t) for t in types]
        if str(iri).startswith(EU + "data-theme/"):
            background.add((iri, ns.SKOS.inScheme, URIRef(EU + "data-theme")))
        if str(iri) == EU + "data-theme":
            background.add((iri, ns.RDF.type, ns.SKOS.ConceptScheme))
    return background


def _shapes() -> Graph:
    shapes = Graph().parse(CONFORMANCE + "dcat-ap-3.0.1-SHACL.ttl")
    # The 3.0.1 shapes name two property shapes of DataService they never define (SEMICeu/DCAT-AP issue 448): SHACL
    # engines (pyshacl, Jena) refuse such a shapes graph, so the dangling references go; nothing else changes.
    dangling = [(s, o) for s, o in shapes.subject_objects(SH.property) if (o, None, None) not in shapes]
    assert len(dangling) == 2
    for s, o in dangling:
        shapes.remove((s, SH.property, o))
    return shapes


def _results(graph: Graph) -> dict[str, list[str]]:
    conforms, report, _ = validate(graph + _vocabulary_types(graph), shacl_graph=_shapes(), allow_warnings=True)
    out = {"Violation": [], "Warning": [], "Info": []}
    for result in report.subjects(ns.RDF.type, SH.ValidationResult):
        severity = str(report.value(result, SH.resultSeverity)).rsplit("#", 1)[-1]
        out[severity].append(f"{report.value(result, SH.focusNode)} {report.value(result, SH.resultPath)}: "
                             f"{report.value(result, SH.resultMessage)}")
    assert conforms == (not out["Violation"])
    return out


def test_the_served_catalog_has_no_violation_of_the_dcat_ap_3_0_1_shapes(graphs):
    found = _results(graphs["turtle"])
    assert found["Violation"] == []
    assert found["Warning"] == []  # none remain either (docs/dcat.md says so)


def test_downloads_state_the_byte_size_and_checksum_of_the_file_anonymous_gets(graphs, downloaded):
    rows = _rows(graphs["turtle"], """
        PREFIX spdx: <http://spdx.org/rdf/terms#>
        SELECT ?url ?size ?algorithm ?value { ?x a dcat:Distribution ; dcat:downloadURL ?url ; dcat:byteSize ?size ;
                                              spdx:checksum [ spdx:algorithm ?algorithm ; spdx:checksumValue ?value ] }""")
    stated = {str(url): (int(size), str(algorithm), str(value)) for url, size, algorithm, value in rows}
    assert stated == {url: (len(content), str(SPDX.checksumAlgorithm_sha256), hashlib.sha256(content).hexdigest())
                      for url, content in downloaded.items()}


def test_the_shapes_do_catch_a_catalog_that_breaks_them(graphs):
    broken = Graph() + graphs["turtle"]
    for dataset in list(broken.subjects(ns.RDF.type, ns.DCAT.Dataset))[:1]:
        broken.remove((dataset, ns.DCTERMS.description, None))
        broken.add((dataset, ns.DCAT.landingPage, Literal("not a page")))
    violations = _results(broken)["Violation"]
    assert any("description" in v for v in violations) and any("landingPage" in v for v in violations)


# --- what the catalog says --------------------------------------------------------------------------------------


def test_every_serialization_holds_the_same_graph(graphs):
    assert len(graphs["turtle"]) > 100
    assert isomorphic(graphs["turtle"], graphs["json-ld"]) and isomorphic(graphs["turtle"], graphs["xml"])


def test_the_json_ld_uses_the_official_dcat_ap_context(api):
    official = json.loads(open(CONFORMANCE + "dcat-ap-3.0.1-context.jsonld", encoding="utf-8").read())
    body = httpx.get(api + "/catalog.jsonld", timeout=60).json()
    assert body["@context"] == official["@context"]
    # Compacted with it: classes by the context's terms.
    types = [node.get("@type", []) for node in body["@graph"]]
    assert {"Catalogue", "Dataset", "Distribution", "DataService"} <= {
        t for found in types for t in ([found] if isinstance(found, str) else found)}


def test_the_catalog_lists_every_dataset_with_its_dcat_ap_metadata(api, graphs):
    g = graphs["turtle"]
    [(catalog, publisher)] = _rows(g, "SELECT ?c ?name { ?c a dcat:Catalog ; dct:publisher/foaf:name ?name ; "
                                      "foaf:homepage ?home ; dct:title ?t . FILTER(lang(?t) = 'en') }")
    assert str(publisher) == "Pemerintah Kota Bogor" and str(catalog) == api + "/catalog"
    rows = _rows(g, """
        SELECT ?id ?title ?publisher ?contact ?rights ?frequency ?licence ?standard ?issued ?modified ?page {
            ?c a dcat:Catalog ; dcat:dataset ?d .
            ?d a dcat:Dataset ; dct:identifier ?id ; dct:title ?title ; dct:publisher/foaf:name ?publisher ;
               dcat:contactPoint/vcard:fn ?contact ; dct:accessRights ?rights ; dct:accrualPeriodicity ?frequency ;
               dct:license ?licence ; dct:conformsTo ?standard ; dct:issued ?issued ; dct:modified ?modified ;
               dct:spatial ?spatial ; dct:temporal ?temporal ; dcat:keyword "penduduk" ; dcat:landingPage ?page ;
               dqv:hasQualityMeasurement/dqv:value ?score .
        } ORDER BY ?id""")
    assert [str(r[0]) for r in rows] == ["dinsos_dtks", "disdukcapil_siak", "penduduk"]
    by_id = {str(r[0]): r for r in rows}
    for id_, title, publisher, contact, rights, frequency, _, _, issued, modified, page in rows:
        assert str(title) and str(publisher) and str(contact).startswith("Dinas Komunikasi")
        # The penduduk standard is `terbatas` and updated `bulanan`.
        assert rights == URIRef(EU + "access-right/RESTRICTED")
        assert frequency == URIRef(EU + "frequency/MONTHLY")
        assert issued.datatype == ns.XSD.dateTime and modified.datatype == ns.XSD.dateTime
        # The landing page is the portal's page (a document), not the JSON API.
        assert page == URIRef(f"{api}/dataset/{id_}") and (page, ns.RDF.type, ns.FOAF.Document) in g
        assert httpx.get(str(page), timeout=60).headers["content-type"].startswith("text/html")
    assert str(by_id["dinsos_dtks"][2]) == "Dinas Sosial Kota Bogor"
    assert by_id["dinsos_dtks"][7] == URIRef(api + "/catalog/standards/penduduk@1.0.0")
    # SIAK and the integrated dataset follow penduduk@1.1.0.
    assert by_id["penduduk"][7] == URIRef(api + "/catalog/standards/penduduk@1.1.0")
    assert (by_id["penduduk"][7], ns.OWL.versionInfo, Literal("1.1.0")) in g


def test_licences_are_iris_an_open_one_from_the_eu_vocabulary_a_restricted_one_minted_here(api, graphs):
    g = graphs["turtle"]
    licences = dict(_rows(g, "SELECT ?id ?l { ?d dct:identifier ?id ; dct:license ?l }"))
    # The indicator is open (CC-BY-4.0); the population datasets' terms are written out by the walidata.
    assert licences[Literal("penduduk_umur_jenis_kelamin")] == URIRef(KNOWN["CC-BY-4.0"].eu_iri)
    restricted = licences[Literal("penduduk")]
    assert str(restricted).startswith(api + "/catalog/licences/terbatas-untuk-instansi-pemerintah-")
    text = str(g.value(restricted, ns.RDFS.label))
    assert text.startswith("Terbatas untuk instansi pemerintah") and restricted.endswith(licence_slug(text))
    # Each distribution carries its dataset's licence.
    assert {licence for (licence,) in _rows(g, 'SELECT ?l { ?d dct:identifier "penduduk" ; dcat:distribution/'
                                               'dct:license ?l }')} == {restricted}
    # The minted licence answers as a licence document with its text.
    described = Graph().parse(data=httpx.get(str(restricted), headers={"Accept": "text/turtle"}, timeout=60).text,
                              format="turtle")
    assert (restricted, ns.RDF.type, ns.DCTERMS.LicenseDocument) in described
    assert str(described.value(restricted, ns.RDFS.label)) == text


def test_themes_come_from_the_topics_eu_data_themes(graphs):
    themes = {(str(i), str(t)) for i, t in _rows(graphs["turtle"], "SELECT ?id ?t { ?d dct:identifier ?id ; "
                                                                    "dcat:theme ?t }")}
    # The population topic is the EU's "Population and society".
    assert {(i, EU + "data-theme/SOCI") for i in ("penduduk", "dinsos_dtks", "penduduk_umur_jenis_kelamin")} <= themes
    assert (URIRef(EU + "data-theme/SOCI"), ns.SKOS.prefLabel, Literal("Population and society", lang="en")) \
        in graphs["turtle"]
    assert {str(k) for (k,) in _rows(graphs["turtle"], 'SELECT ?k { ?d dct:identifier "penduduk" ; dcat:keyword ?k '
                                                       '}')} >= {"Kependudukan", "Population"}


def test_every_dataset_has_four_distributions_that_answer(api, graphs, analyst):
    rows = _rows(graphs["turtle"], """
        SELECT ?id ?title ?access ?download ?media ?format ?service ?description ?issued {
            ?d dct:identifier ?id ; dcat:distribution ?x .
            ?x a dcat:Distribution ; dct:title ?title ; dcat:accessURL ?access ; dcat:mediaType ?media ;
               dct:format ?format ; dct:license ?licence ; dct:description ?description ; dct:issued ?issued .
            FILTER(lang(?description) = 'en')
            OPTIONAL { ?x dcat:downloadURL ?download }
            OPTIONAL { ?x dcat:accessService ?service }
        }""")
    assert len(rows) == 16  # both sources, the integrated dataset and the indicator `hub run` built on it
    for dataset in ("dinsos_dtks", "disdukcapil_siak", "penduduk", "penduduk_umur_jenis_kelamin"):
        mine = {str(r[1]): r for r in rows if str(r[0]) == dataset}
        assert set(mine) == {"CSV", "JSON", "Parquet", "API"}
        assert mine["CSV"][4] == URIRef(IANA + "text/csv")
        assert mine["Parquet"][5] == URIRef(EU + "file-type/PARQUET")
        assert mine["API"][3] is None, "the paged rows API is not a whole-file download"
        assert mine["API"][6] == URIRef(api + "/catalog/services/api")
        for _, fmt, access, download, _, _, _, _, _ in mine.values():
            assert str(access).startswith(api + f"/api/datasets/{dataset}/")
            assert download in (None, access)
            assert httpx.get(str(access), headers=analyst, timeout=60).status_code == 200, (dataset, fmt)
    # The paged rows are no one file: no byte size.
    assert not [d for d, _ in graphs["turtle"].subject_objects(ns.DCAT.byteSize) if str(d).endswith("/api")]


def test_the_apis_are_data_services(api, graphs):
    g = graphs["turtle"]
    services = {str(s): (str(e), str(d)) for s, e, d in _rows(g, """
        SELECT ?s ?endpoint ?description {
            ?c a dcat:Catalog ; dcat:service ?s .
            ?s a dcat:DataService ; dcat:endpointURL ?endpoint ; dcat:endpointDescription ?description ;
               dct:license ?l ; dct:accessRights ?r .
        }""")}
    assert services == {api + "/catalog/services/api": (api + "/api", api + "/openapi.json"),
                        api + "/catalog/services/ckan": (api + "/api/3/action", api + "/openapi.json"),
                        api + "/catalog/services/sql": (api + "/api/sql", api + "/openapi.json")}
    datasets = set(g.subjects(ns.RDF.type, ns.DCAT.Dataset))
    for service in services:
        assert set(g.objects(URIRef(service), ns.DCAT.servesDataset)) == datasets
    assert httpx.get(api + "/openapi.json", timeout=60).json()["openapi"].startswith("3.")
    assert httpx.get(api + "/api/3/action/package_list", timeout=60).json()["success"] is True


def test_coverage_is_a_location_iri_and_a_period_of_time(api, graphs):
    g = graphs["turtle"]
    [place] = set(g.objects(None, ns.DCTERMS.spatial))
    assert place == URIRef(api + "/wilayah/3271")
    assert str(g.value(place, ns.SKOS.prefLabel)) == "Kota Bogor"
    assert str(g.value(place, ns.DCTERMS.identifier)) == "32.71"
    box = g.value(place, ns.DCAT.bbox)
    assert box.datatype == URIRef("http://www.opengis.net/ont/geosparql#wktLiteral")
    west, south, east, north = (float(v) for v in re.findall(r"-?\d+\.\d+", str(box))[:2] +
                                re.findall(r"-?\d+\.\d+", str(box))[4:6])
    assert 106.7 < west < east < 106.9 and -6.7 < south < north < -6.5  # Kota Bogor
    periods = _rows(g, 'SELECT ?label { ?d dct:identifier "penduduk" ; dct:temporal ?t . ?t a dct:PeriodOfTime ; '
                       "rdfs:label ?label }")
    assert periods and all(str(label) for (label,) in periods)


def test_a_period_states_its_start_only_where_the_standard_states_one():
    g = catalog_graph([{**DESCRIBED, "temporal_coverage": "Keadaan pada akhir setiap tahun, sejak 2023"}],
                      "https://data.example/")
    [period] = g.objects(None, ns.DCTERMS.temporal)
    assert g.value(period, ns.DCAT.startDate) == Literal("2023", datatype=ns.XSD.gYear)
    g = catalog_graph([{**DESCRIBED, "temporal_coverage": "Keadaan terakhir pada tanggal pembaruan"}],
                      "https://data.example/")
    [period] = g.objects(None, ns.DCTERMS.temporal)
    assert g.value(period, ns.DCAT.startDate) is None
    assert str(g.value(period, ns.RDFS.label)) == "Keadaan terakhir pada tanggal pembaruan"


# --- every IRI the catalog mints dereferences ------------------------------------------------------------------


def _minted(api: str, graph: Graph) -> list[URIRef]:
    """The IRIs the catalog mints for what it describes (its pages aside: those are the portal's)."""
    pages = set(graph.subjects(ns.RDF.type, ns.FOAF.Document))
    return sorted(s for s in set(graph.subjects()) if isinstance(s, URIRef) and s.startswith(api) and s not in pages)


def test_the_catalog_mints_an_iri_for_each_kind_of_resource(api, graphs):
    minted = {re.sub(r"^(/catalog/[a-z]+|/wilayah)/.*", r"\1", iri.removeprefix(api))
              for iri in _minted(api, graphs["turtle"])}
    assert minted == {"/catalog", "/catalog/datasets", "/catalog/organizations", "/catalog/contacts",
                      "/catalog/services", "/catalog/licences", "/catalog/standards", "/catalog/systems",
                      "/catalog/metrics", "/wilayah"}


def _named(graph: Graph, iri: URIRef) -> set[tuple]:
    """What `graph` says of `iri`, blank nodes as one (each parse names them afresh)."""
    return {(p, "_" if isinstance(o, BNode) else o) for p, o in graph.predicate_objects(iri)}


@pytest.mark.parametrize("media", FORMATS)
def test_every_minted_iri_answers_in_each_rdf_format(api, graphs, media):
    for iri in _minted(api, graphs["turtle"]):
        done = httpx.get(str(iri), headers={"Accept": media}, timeout=60)
        assert done.status_code == 200 and done.headers["content-type"].startswith(media), (iri, done.text[:300])
        assert "Accept" in done.headers["vary"]
        described = Graph().parse(data=done.text, format=FORMATS[media])
        # It says what the catalog says of it.
        assert _named(described, iri) == _named(graphs["turtle"], iri), iri


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_a_suffix_asks_for_a_format_without_an_accept_header(api, graphs, suffix):
    for iri in (api + "/catalog/datasets/penduduk", api + "/catalog/services/ckan", api + "/wilayah/3271",
                api + "/catalog/datasets/penduduk/distributions/csv"):
        done = httpx.get(iri + suffix, timeout=60)
        assert done.status_code == 200, (iri, done.text[:300])
        described = Graph().parse(data=done.text, format=SUFFIXES[suffix])
        assert _named(described, URIRef(iri)) == _named(graphs["turtle"], URIRef(iri))


def test_a_dataset_iri_holds_the_dataset_and_its_distributions(api, graphs):
    done = httpx.get(api + "/catalog/datasets/penduduk", headers={"Accept": "application/ld+json"}, timeout=60)
    g = Graph().parse(data=done.text, format="json-ld")
    dataset = URIRef(api + "/catalog/datasets/penduduk")
    assert len(set(g.objects(dataset, ns.DCAT.distribution))) == 4
    for dist in g.objects(dataset, ns.DCAT.distribution):
        assert g.value(dist, ns.DCAT.accessURL) is not None
    assert (None, ns.RDF.type, ns.DCAT.Catalog) not in g  # one dataset, not the catalog


def test_a_browser_is_sent_to_the_portal_page_and_the_portal_page_answers_rdf(api):
    for iri, page in ((api + "/catalog/datasets/penduduk", "/dataset/penduduk"),
                      (api + "/catalog/datasets/penduduk/distributions/csv", "/dataset/penduduk"),
                      (api + "/catalog/services/sql", "/sql"), (api + "/catalog", "/")):
        for accept in (BROWSER, None):
            done = httpx.get(iri, headers={"Accept": accept} if accept else {}, timeout=60)
            assert done.status_code == 303 and done.headers["location"] == api + page, iri
    # The dataset page is HTML by default and RDF when asked, the same RDF as its IRI.
    page = httpx.get(api + "/dataset/penduduk", headers={"Accept": BROWSER}, timeout=60)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Accept" in page.headers["vary"]
    for media, fmt in FORMATS.items():
        done = httpx.get(api + "/dataset/penduduk", headers={"Accept": media}, timeout=60)
        assert done.status_code == 200 and done.headers["content-type"].startswith(media)
        same = httpx.get(api + "/catalog/datasets/penduduk", headers={"Accept": media}, timeout=60)
        assert isomorphic(Graph().parse(data=done.text, format=fmt), Graph().parse(data=same.text, format=fmt))


def test_unknown_iris_are_404_and_unoffered_media_types_406(api):
    for path in ("/catalog/datasets/no_such_dataset", "/catalog/organizations/nobody", "/wilayah/3201",
                 "/dataset/no_such_dataset", "/catalog.pdf", "/catalog/datasets/penduduk/distributions/xls"):
        assert httpx.get(api + path, headers={"Accept": "text/turtle"}, timeout=60).status_code == 404, path
    # No HTML page for an area: a browser that takes anything gets Turtle, one that takes HTML only a 406.
    assert httpx.get(api + "/wilayah/3271", headers={"Accept": BROWSER}, timeout=60).headers[
        "content-type"].startswith("text/turtle")
    assert httpx.get(api + "/wilayah/3271", headers={"Accept": "text/html"}, timeout=60).status_code == 406


def test_lineage_and_no_personal_data(api, graphs):
    g = graphs["turtle"]
    upstream = {str(r[0]) for r in _rows(g, 'SELECT ?u { ?d dct:identifier "penduduk" ; prov:wasDerivedFrom ?u }')}
    assert upstream == {api + "/catalog/datasets/dinsos_dtks", api + "/catalog/datasets/disdukcapil_siak"}
    siak = _rows(g, 'SELECT ?u { ?d dct:identifier "disdukcapil_siak" ; prov:wasDerivedFrom ?u }')
    assert len(siak) == 1 and "/catalog/systems/" in str(siak[0][0])
    # Metadata only: no NIK (16 digits) anywhere.
    triples = graphs["turtle"].serialize(format="nt")
    assert not re.search(r"(?<![\w.])\d{16}(?![\w.])", re.sub(r"_:\w+", "_:b", triples))  # blank node ids aside


# --- content negotiation and the graph, without a server ------------------------------------------------------

OFFERED = ["text/html", "text/turtle", "application/ld+json", "application/rdf+xml"]


@pytest.mark.parametrize(("accept", "chosen"), [
    (None, "text/html"), ("*/*", "text/html"), (BROWSER, "text/html"), ("text/turtle", "text/turtle"),
    ("application/ld+json", "application/ld+json"), ("application/rdf+xml;q=0.9, text/turtle;q=0.5",
                                                      "application/rdf+xml"),
    ("text/html;q=0.1, text/turtle", "text/turtle"), ("text/*", "text/html"), ("application/*", "application/ld+json"),
    ("text/html;q=0, */*", "text/turtle"), ("application/pdf", None), ("text/turtle;q=0", None),
    ("text/turtle;q=oops, application/ld+json;q=0.2", "application/ld+json"),
])
def test_negotiate_picks_the_media_type_the_accept_header_prefers(accept, chosen):
    assert negotiate(accept, OFFERED) == chosen


DESCRIBED = {
    "id": "dinkes_imunisasi", "title": "Imunisasi", "description": "Cakupan imunisasi dasar.",
    "standard": "kasus_tbc", "standard_version": "2.0.0", "standard_title": "Imunisasi",
    "classification": "publik", "walidata": "Diskominfo Kota Bogor", "produsen_data": ["Dinas Kesehatan"],
    "license": "CC-BY-4.0", "frequency": "triwulanan",
    "spatial_coverage": "Kota Bogor (32.71), sampai tingkat kelurahan", "temporal_coverage": "2024",
    "tags": ["kesehatan", "imunisasi"],
    "issued": "2024-01-01T00:00:00Z", "modified": "2024-04-01T00:00:00Z", "quality": {"score": 2 / 3},
    "lineage": [{"upstream": "system:dinkes:SIMPUS", "relation": "harmonized_from"}],
    "distributions": [{"format": "CSV", "media_type": "text/csv",
                       "url": "/api/datasets/dinkes_imunisasi/download.csv"}],
}


@pytest.mark.parametrize(("classification", "right"),
                         [("publik", "PUBLIC"), ("terbatas", "RESTRICTED"), ("rahasia", "NON_PUBLIC")])
def test_classification_maps_to_eu_access_rights(classification, right):
    g = catalog_graph([{**DESCRIBED, "classification": classification}], "https://data.example/")
    ds = URIRef("https://data.example/catalog/datasets/dinkes_imunisasi")
    assert list(g.objects(ds, ns.DCTERMS.accessRights)) == [URIRef(EU + "access-right/" + right)]


@pytest.mark.parametrize(("frequency", "eu"), [
    ("harian", "DAILY"), ("mingguan", "WEEKLY"), ("bulanan", "MONTHLY"), ("triwulanan", "QUARTERLY"),
    ("semesteran", "BIANNUAL"), ("tahunan", "ANNUAL"), ("tidak_tetap", "IRREG")])
def test_frequency_maps_to_eu_frequencies(frequency, eu):
    g = catalog_graph([{**DESCRIBED, "frequency": frequency}], "https://data.example/")
    assert list(g.objects(None, ns.DCTERMS.accrualPeriodicity)) == [URIRef(EU + "frequency/" + eu)]


def test_a_hand_made_description_becomes_a_conformant_dcat_dataset():
    g = catalog_graph([DESCRIBED], "https://data.example")
    ds = URIRef("https://data.example/catalog/datasets/dinkes_imunisasi")
    assert (URIRef("https://data.example/catalog"), ns.DCAT.dataset, ds) in g
    assert (ds, ns.RDF.type, ns.DCAT.Dataset) in g
    assert (ds, ns.DCTERMS.license, URIRef(EU + "licence/CC_BY_4_0")) in g
    assert (ds, ns.DCTERMS.conformsTo, URIRef("https://data.example/catalog/standards/kasus_tbc@2.0.0")) in g
    assert (ds, ns.DCAT.landingPage, URIRef("https://data.example/dataset/dinkes_imunisasi")) in g
    assert (ds, ns.DCAT.theme, URIRef(EU + "data-theme/HEAL")) in g  # kasus_tbc is in the health topic
    assert {"kesehatan", "imunisasi"} <= set(map(str, g.objects(ds, ns.DCAT.keyword)))
    [temporal] = g.objects(ds, ns.DCTERMS.temporal)
    assert (temporal, ns.RDF.type, ns.DCTERMS.PeriodOfTime) in g and str(g.value(temporal, ns.RDFS.label)) == "2024"
    [dist] = g.objects(ds, ns.DCAT.distribution)
    download = URIRef("https://data.example/api/datasets/dinkes_imunisasi/download.csv")
    assert g.value(dist, ns.DCAT.downloadURL) == download
    [measurement] = g.objects(ds, DQV.hasQualityMeasurement)
    assert g.value(measurement, DQV.value) == Literal("0.6667", datatype=ns.XSD.decimal)
    turtle, jsonld = (Graph().parse(data=g.serialize(format=f), format=f) for f in ("turtle", "json-ld"))
    assert isomorphic(turtle, jsonld)
    assert _results(g) == {"Violation": [], "Warning": [], "Info": []}
    # A free-text licence is a licence document the catalog mints, with its text.
    text = "Terbatas untuk instansi pemerintah"
    g = catalog_graph([{**DESCRIBED, "license": text}], "https://data.example/")
    [licence] = g.objects(ds, ns.DCTERMS.license)
    assert licence == URIRef("https://data.example/catalog/licences/" + licence_slug(text))
    assert (licence, ns.RDF.type, ns.DCTERMS.LicenseDocument) in g and str(g.value(licence, ns.RDFS.label)) == text
    # Coverage without a region code stays its words.
    g = catalog_graph([{**DESCRIBED, "spatial_coverage": "Seluruh kota"}], "https://data.example/")
    [place] = g.objects(ds, ns.DCTERMS.spatial)
    assert not isinstance(place, URIRef) and str(g.value(place, ns.RDFS.label)) == "Seluruh kota"
