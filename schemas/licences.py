"""The licences a standard's `x-license` may name, as CKAN, DCAT-AP and data packages identify them."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["KNOWN", "Licence", "licence"]

_EU = "http://publications.europa.eu/resource/authority/licence/"


@dataclass(frozen=True)
class Licence:
    spdx: str | None  # the SPDX id a standard writes in x-license; None for a licence the hub does not know
    ckan_id: str  # the id in CKAN's default licence list (ckan/model/license.py)
    title: str
    url: str | None  # the licence's text
    eu_iri: str | None  # its IRI in the EU Publications Office's licence vocabulary, for DCAT-AP
    open: bool  # conformant with the Open Definition: CKAN's `isopen`


# SPDX id -> the licence. CKAN's ids are version-less ("cc-by" is any CC BY); the EU vocabulary names versions.
KNOWN = {l.spdx: l for l in (
    Licence("CC-BY-4.0", "cc-by", "Creative Commons Attribution 4.0",
            "https://creativecommons.org/licenses/by/4.0/", _EU + "CC_BY_4_0", True),
    Licence("CC-BY-SA-4.0", "cc-by-sa", "Creative Commons Attribution Share-Alike 4.0",
            "https://creativecommons.org/licenses/by-sa/4.0/", _EU + "CC_BYSA_4_0", True),
    Licence("CC0-1.0", "cc-zero", "Creative Commons CCZero",
            "https://creativecommons.org/publicdomain/zero/1.0/", _EU + "CC0", True),
    Licence("ODbL-1.0", "odc-odbl", "Open Data Commons Open Database License (ODbL)",
            "https://opendatacommons.org/licenses/odbl/1-0/", _EU + "ODC_BL", True),
    Licence("ODC-By-1.0", "odc-by", "Open Data Commons Attribution License",
            "https://opendatacommons.org/licenses/by/1-0/", _EU + "ODC_BY", True),
    Licence("PDDL-1.0", "odc-pddl", "Open Data Commons Public Domain Dedication and License (PDDL)",
            "https://opendatacommons.org/licenses/pddl/1-0/", _EU + "ODC_PDDL", True),
)}


def licence(text: str | None) -> Licence:
    """The licence a standard's `x-license` names: a known SPDX id (any case), else a closed licence whose
    title is the text itself (the terms of restricted data, written out by the walidata)."""
    text = (text or "").strip()
    for spdx, known in KNOWN.items():
        if text.lower() == spdx.lower():
            return known
    if not text:
        return Licence(None, "notspecified", "License not specified", None, None, False)
    return Licence(None, "other-closed", text, None, None, False)
