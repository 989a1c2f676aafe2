"""The catalog as DCAT-AP RDF: a `dcat:Catalog` of `dcat:Dataset`s, each with its distributions.

Built from `describe()` dicts only, so it says what the native API says, and only metadata (never rows).
Satu Data terms map to the EU controlled vocabularies DCAT-AP asks for: the classification to an access
right, the update frequency to a frequency. The walidata is the contact point; the produsen data publish.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, OWL, PROV, RDF, RDFS, XSD

__all__ = ["ACCESS_RIGHTS", "FREQUENCIES", "catalog_graph"]

EU = "http://publications.europa.eu/resource/authority/"
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
DQV = Namespace("http://www.w3.org/ns/dqv#")

# Satu Data classification -> EU access right.
ACCESS_RIGHTS = {"publik": "PUBLIC", "terbatas": "RESTRICTED", "rahasia": "NON_PUBLIC"}
# Satu Data update frequency -> EU frequency.
FREQUENCIES = {"harian": "DAILY", "mingguan": "WEEKLY", "bulanan": "MONTHLY", "triwulanan": "QUARTERLY",
               "semesteran": "BIANNUAL", "tahunan": "ANNUAL", "tidak_tetap": "IRREG"}
# Distribution format (as `describe` names it) -> EU file type.
FILE_TYPES = {"CSV": "CSV", "JSON": "JSON", "Parquet": "PARQUET", "API": "JSON"}
# Whole-file downloads; the API distribution is paged, so it has an access URL only.
DOWNLOADS = {"CSV", "JSON", "Parquet"}

PUBLISHER = "Pemerintah Kota Bogor"


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


class _Builder:
    def __init__(self, base_url: str):
        self.base = base_url.rstrip("/") + "/"
        self.g = Graph()
        for prefix, ns in {"dcat": DCAT, "dct": DCTERMS, "foaf": FOAF, "prov": PROV, "vcard": VCARD,
                           "dqv": DQV, "xsd": XSD, "rdfs": RDFS, "owl": OWL}.items():
            self.g.bind(prefix, ns)

    def uri(self, path: str) -> URIRef:
        return URIRef(self.base + path.lstrip("/"))

    def dataset_uri(self, dataset_id: str) -> URIRef:
        return self.uri(f"catalog/datasets/{quote(dataset_id)}")

    def organization(self, name: str) -> URIRef:
        org = self.uri(f"catalog/organizations/{_slug(name)}")
        self.g.add((org, RDF.type, FOAF.Organization))
        self.g.add((org, FOAF.name, Literal(name, lang="id")))
        return org

    def labelled(self, cls: URIRef, label: str) -> BNode:
        node = BNode()
        self.g.add((node, RDF.type, cls))
        self.g.add((node, RDFS.label, Literal(label, lang="id")))
        return node

    def catalog(self, datasets: list[dict]) -> URIRef:
        g, cat = self.g, self.uri("catalog")
        g.add((cat, RDF.type, DCAT.Catalog))
        g.add((cat, DCTERMS.title, Literal("Katalog Data Kota Bogor", lang="id")))
        g.add((cat, DCTERMS.title, Literal("Kota Bogor data catalog", lang="en")))
        g.add((cat, DCTERMS.description, Literal(
            "Data instansi Pemerintah Kota Bogor yang diselaraskan dengan standar data Satu Data Indonesia.",
            lang="id")))
        g.add((cat, DCTERMS.publisher, self.organization(PUBLISHER)))
        g.add((cat, FOAF.homepage, URIRef(self.base)))
        for code in ("IND", "ENG"):
            g.add((cat, DCTERMS.language, URIRef(EU + "language/" + code)))
        for d in datasets:
            g.add((cat, DCAT.dataset, self.dataset(d)))
        return cat

    def dataset(self, d: dict) -> URIRef:
        g, ds = self.g, self.dataset_uri(d["id"])
        g.add((ds, RDF.type, DCAT.Dataset))
        g.add((ds, DCTERMS.identifier, Literal(d["id"])))
        g.add((ds, DCTERMS.title, Literal(d["title"] or d["id"], lang="id")))
        if d.get("description"):
            g.add((ds, DCTERMS.description, Literal(d["description"], lang="id")))
        for tag in d.get("tags", []):
            g.add((ds, DCAT.keyword, Literal(tag)))
        # One producer publishes its own dataset; a dataset integrated from several is published by the walidata.
        producers = d.get("produsen_data") or []
        publisher = producers[0] if len(producers) == 1 else d["walidata"]
        g.add((ds, DCTERMS.publisher, self.organization(publisher)))
        for name in producers:
            g.add((ds, DCTERMS.creator, self.organization(name)))
        contact = self.uri(f"catalog/contacts/{_slug(d['walidata'])}")
        g.add((contact, RDF.type, VCARD.Organization))
        g.add((contact, VCARD.fn, Literal(d["walidata"], lang="id")))
        g.add((ds, DCAT.contactPoint, contact))
        if d.get("classification") in ACCESS_RIGHTS:
            g.add((ds, DCTERMS.accessRights, URIRef(EU + "access-right/" + ACCESS_RIGHTS[d["classification"]])))
        if d.get("license"):
            licence = d["license"]
            g.add((ds, DCTERMS.license, URIRef(licence) if licence.startswith(("http://", "https://"))
                   else self.labelled(DCTERMS.LicenseDocument, licence)))
        if d.get("frequency") in FREQUENCIES:
            g.add((ds, DCTERMS.accrualPeriodicity, URIRef(EU + "frequency/" + FREQUENCIES[d["frequency"]])))
        if d.get("spatial_coverage"):
            g.add((ds, DCTERMS.spatial, self.labelled(DCTERMS.Location, d["spatial_coverage"])))
        if d.get("temporal_coverage"):
            g.add((ds, DCTERMS.temporal, self.labelled(DCTERMS.PeriodOfTime, d["temporal_coverage"])))
        for prop, key in ((DCTERMS.issued, "issued"), (DCTERMS.modified, "modified")):
            if d.get(key):
                g.add((ds, prop, Literal(d[key], datatype=XSD.dateTime)))
        standard = self.uri(f"standards/{quote(d['standard'])}@{quote(d['standard_version'])}")
        g.add((standard, RDF.type, DCTERMS.Standard))
        g.add((standard, DCTERMS.title, Literal(d.get("standard_title") or d["standard"], lang="id")))
        g.add((standard, OWL.versionInfo, Literal(d["standard_version"])))
        g.add((ds, DCTERMS.conformsTo, standard))
        g.add((ds, DCAT.landingPage, self.uri(f"api/datasets/{quote(d['id'])}")))
        score = (d.get("quality") or {}).get("score")
        if score is not None:
            measurement = BNode()
            g.add((measurement, RDF.type, DQV.QualityMeasurement))
            g.add((measurement, DQV.isMeasurementOf, self.uri("catalog/metrics/valid-rows")))
            # A decimal with fixed digits: Turtle shortens doubles, and both serializations must agree.
            g.add((measurement, DQV.value, Literal(f"{score:.4f}", datatype=XSD.decimal)))
            g.add((ds, DQV.hasQualityMeasurement, measurement))
        for edge in d.get("lineage", []):
            g.add((ds, PROV.wasDerivedFrom, self.upstream(edge["upstream"])))
        for dist in d.get("distributions", []):
            g.add((ds, DCAT.distribution, self.distribution(ds, dist)))
        return ds

    def upstream(self, name: str) -> URIRef:
        """A catalog dataset, or an agency system (`system:<agency>:<system>`) the hub pulls from."""
        if name.startswith("system:"):
            return self.uri("catalog/systems/" + "/".join(quote(p, safe="") for p in name.split(":")[1:]))
        return self.dataset_uri(name)

    def distribution(self, ds: URIRef, dist: dict) -> URIRef:
        g, fmt = self.g, dist["format"]
        node = URIRef(f"{ds}/distributions/{_slug(fmt)}")
        url = self.uri(dist["url"])
        g.add((node, RDF.type, DCAT.Distribution))
        g.add((node, DCTERMS.title, Literal(fmt)))
        g.add((node, DCAT.accessURL, url))
        if fmt in DOWNLOADS:
            g.add((node, DCAT.downloadURL, url))
        g.add((node, DCAT.mediaType, URIRef("https://www.iana.org/assignments/media-types/" + dist["media_type"])))
        if fmt in FILE_TYPES:
            g.add((node, DCTERMS.format, URIRef(EU + "file-type/" + FILE_TYPES[fmt])))
        return node


def catalog_graph(datasets: list[dict], base_url: str) -> Graph:
    """The DCAT-AP graph of the catalog holding `datasets` (dicts from `catalog.metadata.describe`)."""
    builder = _Builder(base_url)
    builder.catalog(datasets)
    return builder.g
