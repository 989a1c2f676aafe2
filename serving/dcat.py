"""The catalog as DCAT-AP 3.0.1 linked data: its graph, and every IRI it mints answering in RDF or HTML."""

from __future__ import annotations

import hashlib
import json
import re
from functools import cache
from importlib import resources
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, OWL, PROV, RDF, RDFS, SKOS, XSD

from catalog.identity import Identity, caller
from schemas.topics import EU_THEMES

__all__ = ["ACCESS_RIGHTS", "FREQUENCIES", "HTML", "RDF_MEDIA", "SERVICES", "answer", "catalog_graph", "described",
           "licence_slug", "negotiate", "rdf_response", "router", "unsuffixed"]

EU = "http://publications.europa.eu/resource/authority/"
IANA = "https://www.iana.org/assignments/media-types/"
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
DQV = Namespace("http://www.w3.org/ns/dqv#")
SPDX = Namespace("http://spdx.org/rdf/terms#")
GSP = Namespace("http://www.opengis.net/ont/geosparql#")

# Satu Data classification -> EU access right.
ACCESS_RIGHTS = {"publik": "PUBLIC", "terbatas": "RESTRICTED", "rahasia": "NON_PUBLIC"}
# Satu Data update frequency -> EU frequency.
FREQUENCIES = {"harian": "DAILY", "mingguan": "WEEKLY", "bulanan": "MONTHLY", "triwulanan": "QUARTERLY",
               "semesteran": "BIANNUAL", "tahunan": "ANNUAL", "tidak_tetap": "IRREG"}
# Distribution format (as `describe` names it) -> EU file type.
FILE_TYPES = {"CSV": "CSV", "JSON": "JSON", "Parquet": "PARQUET", "API": "JSON"}
# What each distribution is, in Indonesian and English.
DISTRIBUTION_TEXTS = {
    "CSV": ("Seluruh data dalam satu berkas CSV (UTF-8), sebatas hak akses pemintanya.",
            "The whole data as one CSV file (UTF-8), as far as the requester may see it."),
    "JSON": ("Seluruh data dalam satu berkas JSON, sebatas hak akses pemintanya.",
             "The whole data as one JSON file, as far as the requester may see it."),
    "Parquet": ("Seluruh data dalam satu berkas Apache Parquet, sebatas hak akses pemintanya.",
                "The whole data as one Apache Parquet file, as far as the requester may see it."),
    "API": ("Baris data per halaman melalui API katalog, dengan filter, pencarian dan urutan.",
            "The rows a page at a time through the catalog API, with filters, search and sorting."),
}
# Whole-file downloads; the API distribution is paged, so it has an access URL only.
DOWNLOADS = {"CSV", "JSON", "Parquet"}
# The hub's APIs as DCAT data services: id -> (title, English title, endpoint, the portal page that explains it).
SERVICES = {
    "api": ("API katalog", "Catalog API", "api", "docs"),
    "ckan": ("API CKAN", "CKAN Action API", "api/3/action", "docs"),
    "sql": ("Kueri SQL", "SQL queries", "api/sql", "sql"),
}
CKAN_API = "https://docs.ckan.org/en/2.11/api/"
# RDF media type -> rdflib format; and the suffix that asks for each without an Accept header.
RDF_MEDIA = {"text/turtle": "turtle", "application/ld+json": "json-ld", "application/rdf+xml": "xml"}
SUFFIXES = {".ttl": "text/turtle", ".jsonld": "application/ld+json", ".rdf": "application/rdf+xml"}
HTML = "text/html"

PUBLISHER = "Pemerintah Kota Bogor"
# The data services serve datasets of several licences: each keeps its own.
SERVICE_LICENCE = ("Setiap dataset yang dilayani tetap berlisensi sendiri (dct:license pada dataset).",
                   "Each dataset served keeps its own licence (dct:license on the dataset).")


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def licence_slug(text: str) -> str:
    """The last segment of the IRI minted for a licence written out as text: readable, and unique by its hash."""
    return f"{_slug(text)[:40].rstrip('-')}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


@cache
def _regions() -> dict[str, dict]:
    """Kemendagri code (dotted) -> {"name", "bbox"} of each area in schemas/boundaries."""
    found = {}
    for level in ("kota", "kecamatan", "kelurahan"):
        path = resources.files("schemas") / "boundaries" / f"batas_kota_bogor_{level}.geojson"
        for feature in json.loads(path.read_text(encoding="utf-8"))["features"]:
            ring = feature["geometry"]["coordinates"][0]
            lons, lats = [p[0] for p in ring], [p[1] for p in ring]
            found[feature["properties"]["kode"]] = {"name": feature["properties"]["nama"],
                                                    "bbox": (min(lons), min(lats), max(lons), max(lats))}
    return found


@cache
def _context() -> dict:
    """The official DCAT-AP 3.0.1 JSON-LD context (a copy, CC-BY 4.0 European Union; see docs/dcat.md)."""
    path = resources.files("serving") / "dcat-ap-3.0.1-context.jsonld"
    return json.loads(path.read_text(encoding="utf-8"))["@context"]


class _Builder:
    def __init__(self, base_url: str):
        self.base = base_url.rstrip("/") + "/"
        self.g = Graph()
        for prefix, ns in {"dcat": DCAT, "dct": DCTERMS, "foaf": FOAF, "prov": PROV, "vcard": VCARD, "dqv": DQV,
                           "xsd": XSD, "rdfs": RDFS, "owl": OWL, "skos": SKOS, "gsp": GSP, "spdx": SPDX}.items():
            self.g.bind(prefix, ns)

    def uri(self, path: str) -> URIRef:
        return URIRef(self.base + path.lstrip("/"))

    def dataset_uri(self, dataset_id: str) -> URIRef:
        return self.uri(f"catalog/datasets/{quote(dataset_id)}")

    def document(self, path: str) -> URIRef:
        page = self.uri(path)
        self.g.add((page, RDF.type, FOAF.Document))
        return page

    def organization(self, name: str) -> URIRef:
        org = self.uri(f"catalog/organizations/{_slug(name)}")
        self.g.add((org, RDF.type, FOAF.Agent))
        self.g.add((org, RDF.type, FOAF.Organization))
        self.g.add((org, FOAF.name, Literal(name, lang="id")))
        return org

    def labelled(self, cls: URIRef, label: str, label_en: str | None = None) -> BNode:
        node = BNode()
        self.g.add((node, RDF.type, cls))
        self.g.add((node, RDFS.label, Literal(label, lang="id")))
        if label_en:
            self.g.add((node, RDFS.label, Literal(label_en, lang="en")))
        return node

    def licence(self, text: str) -> URIRef:
        """An open licence by its IRI in the EU vocabulary; any other by an IRI minted here, with its text."""
        from schemas.licences import licence

        known = licence(text)
        if known.eu_iri:
            return URIRef(known.eu_iri)
        if text.startswith(("http://", "https://")):
            return URIRef(text)
        return self.licence_document(licence_slug(text), text)

    def licence_document(self, slug: str, text: str, text_en: str | None = None) -> URIRef:
        node = self.uri(f"catalog/licences/{slug}")
        self.g.add((node, RDF.type, DCTERMS.LicenseDocument))
        self.g.add((node, RDFS.label, Literal(text, lang="id")))
        if text_en:
            self.g.add((node, RDFS.label, Literal(text_en, lang="en")))
        return node

    def location(self, text: str, text_en: str | None) -> URIRef | BNode:
        """The Kemendagri area a coverage names by its code, e.g. "Kota Bogor (32.71), ...": `/wilayah/3271`."""
        code = re.search(r"\((\d{2}(?:\.\d{2}){1,2}(?:\.\d{4})?)\)", text)
        if code is None:  # no code to mint an IRI from: the text, honestly, as a label
            return self.labelled(DCTERMS.Location, text, text_en)
        region = _regions().get(code[1])
        place = self.uri(f"wilayah/{code[1].replace('.', '')}")
        self.g.add((place, RDF.type, DCTERMS.Location))
        self.g.add((place, DCTERMS.identifier, Literal(code[1])))
        self.g.add((place, SKOS.prefLabel, Literal(region["name"] if region else text.split("(")[0].strip(),
                                                    lang="id")))
        if region:
            w, s, e, n = region["bbox"]
            self.g.add((place, DCAT.bbox, Literal(f"POLYGON(({w} {s}, {e} {s}, {e} {n}, {w} {n}, {w} {s}))",
                                                  datatype=GSP.wktLiteral)))
        return place

    def period(self, text: str, text_en: str | None) -> BNode:
        """The coverage as its words; its start year as a date where the standard states one ("sejak 2023")."""
        node = self.labelled(DCTERMS.PeriodOfTime, text, text_en)
        since = re.search(r"\bsejak (\d{4})\b", text)
        if since:
            self.g.add((node, DCAT.startDate, Literal(since[1], datatype=XSD.gYear)))
        return node

    def catalog(self, datasets: list[dict]) -> URIRef:
        g, cat = self.g, self.uri("catalog")
        g.add((cat, RDF.type, DCAT.Catalog))
        g.add((cat, DCTERMS.title, Literal("Katalog Data Kota Bogor", lang="id")))
        g.add((cat, DCTERMS.title, Literal("Kota Bogor data catalog", lang="en")))
        g.add((cat, DCTERMS.description, Literal(
            "Data instansi Pemerintah Kota Bogor yang diselaraskan dengan standar data Satu Data Indonesia.",
            lang="id")))
        g.add((cat, DCTERMS.description, Literal(
            "Data of the agencies of the Kota Bogor government, harmonized to the data standards of Satu Data "
            "Indonesia.", lang="en")))
        g.add((cat, DCTERMS.publisher, self.organization(PUBLISHER)))
        g.add((cat, FOAF.homepage, self.document("")))
        g.add((cat, DCAT.themeTaxonomy, URIRef(EU + "data-theme")))
        g.add((URIRef(EU + "data-theme"), DCTERMS.title, Literal("Data theme", lang="en")))
        for code in ("IND", "ENG"):
            g.add((cat, DCTERMS.language, URIRef(EU + "language/" + code)))
        served = [self.dataset(d) for d in datasets]
        for ds in served:
            g.add((cat, DCAT.dataset, ds))
        for name in SERVICES:
            g.add((cat, DCAT.service, self.service(name, served)))
        return cat

    def service(self, name: str, served: list[URIRef]) -> URIRef:
        g, (title, title_en, endpoint, _) = self.g, SERVICES[name]
        node = self.uri(f"catalog/services/{name}")
        g.add((node, RDF.type, DCAT.DataService))
        g.add((node, DCTERMS.title, Literal(title, lang="id")))
        g.add((node, DCTERMS.title, Literal(title_en, lang="en")))
        g.add((node, DCAT.endpointURL, self.uri(endpoint)))
        g.add((node, DCAT.endpointDescription, self.uri("openapi.json")))
        if name == "ckan":
            g.add((node, DCTERMS.conformsTo, URIRef(CKAN_API)))
            g.add((URIRef(CKAN_API), RDF.type, DCTERMS.Standard))
        # Anyone may call it; what each caller gets of a dataset follows that dataset's access rights.
        g.add((node, DCTERMS.accessRights, URIRef(EU + "access-right/PUBLIC")))
        g.add((node, DCTERMS.license, self.licence_document("per-dataset", *SERVICE_LICENCE)))
        g.add((node, DCTERMS.publisher, self.organization(PUBLISHER)))
        for ds in served:
            g.add((node, DCAT.servesDataset, ds))
        return node

    def dataset(self, d: dict) -> URIRef:
        g, ds = self.g, self.dataset_uri(d["id"])
        g.add((ds, RDF.type, DCAT.Dataset))
        g.add((ds, DCTERMS.identifier, Literal(d["id"])))
        g.add((ds, DCTERMS.title, Literal(d["title"] or d["id"], lang="id")))
        # DCAT-AP asks every dataset for a description: the standard's title stands in when it has none.
        g.add((ds, DCTERMS.description, Literal(d.get("description") or d.get("standard_title") or d["id"],
                                                lang="id")))
        for tag in d.get("tags", []):
            g.add((ds, DCAT.keyword, Literal(tag)))
        for topic in _topics_of(d["standard"]):
            theme = URIRef(EU + "data-theme/" + topic.eu_theme)
            g.add((ds, DCAT.theme, theme))
            g.add((theme, SKOS.prefLabel, Literal(EU_THEMES[topic.eu_theme], lang="en")))
            g.add((ds, DCAT.keyword, Literal(topic.title, lang="id")))
            g.add((ds, DCAT.keyword, Literal(topic.title_en, lang="en")))
        # One producer publishes its own dataset; a dataset integrated from several is published by the walidata.
        producers = d.get("produsen_data") or []
        publisher = producers[0] if len(producers) == 1 else d["walidata"]
        g.add((ds, DCTERMS.publisher, self.organization(publisher)))
        for name in producers:
            g.add((ds, DCTERMS.creator, self.organization(name)))
        contact = self.uri(f"catalog/contacts/{_slug(d['walidata'])}")
        g.add((contact, RDF.type, VCARD.Kind))
        g.add((contact, RDF.type, VCARD.Organization))
        g.add((contact, VCARD.fn, Literal(d["walidata"], lang="id")))
        g.add((ds, DCAT.contactPoint, contact))
        rights = URIRef(EU + "access-right/" + ACCESS_RIGHTS[d["classification"]]) \
            if d.get("classification") in ACCESS_RIGHTS else None
        if rights:
            g.add((ds, DCTERMS.accessRights, rights))
        licence = self.licence(d["license"]) if d.get("license") else None
        if licence:
            g.add((ds, DCTERMS.license, licence))
        if d.get("frequency") in FREQUENCIES:
            g.add((ds, DCTERMS.accrualPeriodicity, URIRef(EU + "frequency/" + FREQUENCIES[d["frequency"]])))
        if d.get("spatial_coverage"):
            g.add((ds, DCTERMS.spatial, self.location(d["spatial_coverage"], d.get("spatial_coverage_en"))))
        if d.get("temporal_coverage"):
            g.add((ds, DCTERMS.temporal, self.period(d["temporal_coverage"], d.get("temporal_coverage_en"))))
        dates = [(prop, Literal(d[key], datatype=XSD.dateTime))
                 for prop, key in ((DCTERMS.issued, "issued"), (DCTERMS.modified, "modified")) if d.get(key)]
        for prop, value in dates:
            g.add((ds, prop, value))
        standard = self.uri(f"catalog/standards/{quote(d['standard'])}@{quote(d['standard_version'])}")
        g.add((standard, RDF.type, DCTERMS.Standard))
        g.add((standard, DCTERMS.title, Literal(d.get("standard_title") or d["standard"], lang="id")))
        g.add((standard, OWL.versionInfo, Literal(d["standard_version"])))
        g.add((ds, DCTERMS.conformsTo, standard))
        g.add((ds, DCAT.landingPage, self.document(f"dataset/{quote(d['id'])}")))
        score = (d.get("quality") or {}).get("score")
        if score is not None:
            measurement = BNode()
            g.add((measurement, RDF.type, DQV.QualityMeasurement))
            g.add((measurement, DQV.isMeasurementOf, self.metric()))
            # A decimal with fixed digits: Turtle shortens doubles, and both serializations must agree.
            g.add((measurement, DQV.value, Literal(f"{score:.4f}", datatype=XSD.decimal)))
            g.add((ds, DQV.hasQualityMeasurement, measurement))
        for edge in d.get("lineage", []):
            g.add((ds, PROV.wasDerivedFrom, self.upstream(edge["upstream"])))
        for dist in d.get("distributions", []):
            node = self.distribution(ds, dist)
            g.add((ds, DCAT.distribution, node))
            for triple in ((node, DCTERMS.license, licence), (node, DCTERMS.accessRights, rights), *(
                    (node, prop, value) for prop, value in dates)):
                if triple[2] is not None:
                    g.add(triple)
        return ds

    def metric(self) -> URIRef:
        node = self.uri("catalog/metrics/valid-rows")
        self.g.add((node, RDF.type, DQV.Metric))
        self.g.add((node, SKOS.definition, Literal(
            "Bagian baris yang lolos semua pemeriksaan standar data pada pemrosesan terakhir (0 sampai 1).",
            lang="id")))
        self.g.add((node, SKOS.definition, Literal(
            "The share of rows that passed every check of the data standard in the last run (0 to 1).", lang="en")))
        return node

    def upstream(self, name: str) -> URIRef:
        """A catalog dataset, or an agency system (`system:<agency>:<system>`) the hub pulls from."""
        if not name.startswith("system:"):
            return self.dataset_uri(name)
        parts = name.split(":")[1:]
        node = self.uri("catalog/systems/" + "/".join(quote(p, safe="") for p in parts))
        self.g.add((node, RDF.type, PROV.Entity))
        self.g.add((node, RDFS.label, Literal(" ".join(reversed(parts)))))
        return node

    def distribution(self, ds: URIRef, dist: dict) -> URIRef:
        g, fmt = self.g, dist["format"]
        node = URIRef(f"{ds}/distributions/{_slug(fmt)}")
        url = self.uri(dist["url"])
        g.add((node, RDF.type, DCAT.Distribution))
        g.add((node, DCTERMS.title, Literal(fmt)))
        if fmt in DISTRIBUTION_TEXTS:
            for text, lang in zip(DISTRIBUTION_TEXTS[fmt], ("id", "en")):
                g.add((node, DCTERMS.description, Literal(text, lang=lang)))
        g.add((node, DCAT.accessURL, url))
        if fmt in DOWNLOADS:
            g.add((node, DCAT.downloadURL, url))
        else:  # the paged rows: reached through the catalog API
            g.add((node, DCAT.accessService, self.uri("catalog/services/api")))
        g.add((node, DCAT.mediaType, URIRef(IANA + dist["media_type"])))
        if fmt in FILE_TYPES:
            g.add((node, DCTERMS.format, URIRef(EU + "file-type/" + FILE_TYPES[fmt])))
        # A download is written for its requester (masked, filtered): its size and checksum are those of the
        # requester's view, once one download of it has been made (serving.downloads), left out before.
        if dist.get("byte_size") is not None:
            g.add((node, DCAT.byteSize, Literal(dist["byte_size"], datatype=XSD.nonNegativeInteger)))
            checksum = BNode()
            g.add((node, SPDX.checksum, checksum))
            g.add((checksum, RDF.type, SPDX.Checksum))
            g.add((checksum, SPDX.algorithm, SPDX.checksumAlgorithm_sha256))
            g.add((checksum, SPDX.checksumValue, Literal(dist["sha256"], datatype=XSD.hexBinary)))
        return node


def _topics_of(standard: str) -> list:
    from hub.followed import BrokenFile
    from schemas.topics import topics

    try:
        return [t for t in topics() if standard in t.standards]
    except BrokenFile:  # a broken topics file takes the themes out, not the catalog
        return []


def catalog_graph(datasets: list[dict], base_url: str) -> Graph:
    """The DCAT-AP graph of the catalog holding `datasets` (dicts from `catalog.metadata.describe`)."""
    builder = _Builder(base_url)
    builder.catalog(datasets)
    return builder.g


def described(graph: Graph, iri: URIRef) -> Graph:
    """What `graph` says of `iri`: its concise bounded description, with those of the resources minted under its
    own IRI (a dataset's distributions). Empty when the graph does not describe it."""
    out = Graph(namespace_manager=graph.namespace_manager)
    if (iri, None, None) not in graph:
        return out
    for subject in {iri, *(s for s in graph.subjects() if isinstance(s, URIRef) and str(s).startswith(f"{iri}/"))}:
        for triple in graph.cbd(subject):
            out.add(triple)
    return out


def unsuffixed(path: str) -> tuple[str, str | None]:
    """`path` without a format suffix, and the RDF media type the suffix asks for (None without one)."""
    for suffix, media in SUFFIXES.items():
        if path.endswith(suffix):
            return path[: -len(suffix)], media
    return path, None


def negotiate(accept: str | None, offered: list[str]) -> str | None:
    """The media type of `offered` the Accept header `accept` prefers (ties: the first offered); None for none."""
    ranges = []
    for part in (accept or "*/*").split(","):
        media, *params = [p.strip() for p in part.split(";")]
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media:
            ranges.append((media.lower(), quality))

    def quality_of(media: str) -> float:
        kind = media.split("/")[0] + "/*"
        for candidates in ([media], [kind], ["*/*"]):  # the most specific range that matches decides
            found = [q for m, q in ranges if m in candidates]
            if found:
                return max(found)
        return 0.0

    best = max(offered, key=lambda m: (quality_of(m), -offered.index(m)))
    return best if quality_of(best) > 0 else None


def rdf_response(graph: Graph, media: str) -> Response:
    """`graph` in the RDF media type `media`; JSON-LD with the official DCAT-AP 3.0.1 context."""
    if RDF_MEDIA[media] == "json-ld":
        body = graph.serialize(format="json-ld", context=_context())
    else:
        body = graph.serialize(format=RDF_MEDIA[media])
    return Response(body, media_type=media, headers={"Vary": "Accept"})


def _graph_of(settings, request: Request, who: Identity, only: str | None = None) -> Graph:
    """The catalog graph of every dataset `who` may know of (or of the one dataset `only`, if `who` may)."""
    from sqlalchemy import select

    from catalog.access import listed
    from catalog.db import Dataset, session
    from serving.downloads import described

    known = listed(settings, who)
    with session(settings.catalog_url) as s:
        chosen = select(Dataset).order_by(Dataset.id).where(*([Dataset.id == only] if only is not None else []))
        datasets = described(settings, s, [d for d in s.scalars(chosen) if d.id in known], who)
    return catalog_graph(datasets, str(request.base_url))


def answer(settings, request: Request, who: Identity, path: str, page: str | None = None) -> Response:
    """The resource at `path` under the base URL (a suffix asks for a format), as `who` may know of it: in the RDF
    format `Accept` prefers, or a redirect to its portal `page` where HTML is preferred. 404 for a resource the
    catalog does not describe to `who`, 406 for a media type it does not offer."""
    path, asked = unsuffixed(path)
    offered = [*([HTML] if page is not None and asked is None else []), *RDF_MEDIA]
    media = asked or negotiate(request.headers.get("accept"), offered)
    if media is None:
        raise HTTPException(406, f"{path} is answered as {', '.join(offered)}")
    parts = path.split("/")
    # A dataset and its distributions are described by the dataset alone: no need to describe the others.
    graph = _graph_of(settings, request, who, parts[2] if parts[:2] == ["catalog", "datasets"] and len(parts) > 2
                      else None)
    # Minted IRIs quote each segment (`quote`): the path arrives decoded, so it is quoted again the same way.
    found = graph if path == "catalog" else described(graph, URIRef(str(request.base_url) + quote(path, safe="/@")))
    if not len(found):
        raise HTTPException(404, f"the catalog has no {path}")
    if media == HTML:
        return RedirectResponse(str(request.base_url) + page, status_code=303, headers={"Vary": "Accept"})
    return rdf_response(found, media)


def router(settings) -> APIRouter:
    """The DCAT routes: the whole catalog, and every IRI the catalog mints, in Turtle, JSON-LD and RDF/XML by
    `Accept` or by suffix (.ttl, .jsonld, .rdf), and as the portal's page where it has one."""
    r = APIRouter(tags=["DCAT-AP"])
    current = caller(settings)
    rdf = {200: {"content": {media: {} for media in RDF_MEDIA}, "description": "the RDF"},
           303: {"description": "the portal's page, for a browser"},
           404: {"description": "the catalog mints no such IRI, or the caller may not know of it"},
           406: {"description": "none of the media types asked for"}}

    @r.get("/catalog", response_class=Response, responses=rdf)
    def catalog(request: Request, who: Identity = Depends(current)):
        """The catalog (DCAT-AP 3.0.1): RDF by `Accept`, else the portal's home page."""
        return answer(settings, request, who, "catalog", "")

    @r.get("/catalog.{suffix}", response_class=Response, responses=rdf)
    def catalog_file(request: Request, suffix: str, who: Identity = Depends(current)):
        """The whole catalog as DCAT-AP RDF: `catalog.ttl`, `catalog.jsonld` or `catalog.rdf`: the metadata and
        distributions of every dataset the caller may know of, and the data services."""
        if "." + suffix not in SUFFIXES:
            raise HTTPException(404, f"the catalog is at catalog{', catalog'.join(SUFFIXES)}")
        return answer(settings, request, who, "catalog." + suffix, None)

    @r.get("/catalog/{path:path}", response_class=Response, responses=rdf)
    def catalog_resource(request: Request, path: str, who: Identity = Depends(current)):
        """A resource the catalog names (dataset, distribution, data service, organization, contact, licence,
        system, metric): RDF by `Accept` or suffix; a browser is sent to its portal page where there is one."""
        parts = unsuffixed(path)[0].split("/")
        page = None
        if parts[0] == "datasets" and len(parts) >= 2:  # a dataset, or one of its distributions
            page = f"dataset/{parts[1]}"
        elif parts[0] == "services" and len(parts) == 2 and parts[1] in SERVICES:
            page = SERVICES[parts[1]][3]
        return answer(settings, request, who, "catalog/" + path, page)

    @r.get("/wilayah/{code}", response_class=Response, responses=rdf)
    def region(request: Request, code: str, who: Identity = Depends(current)):
        """An area by its Kemendagri code without dots (e.g. 3271, Kota Bogor), as the catalog's datasets cover it:
        its name and bounding box."""
        return answer(settings, request, who, "wilayah/" + code, None)

    return r

