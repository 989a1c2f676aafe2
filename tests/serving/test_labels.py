"""The portal's two catalogues of words, Indonesian and English, compared: every label exists in both, says the
same placeholders, is used, and an English page shows none of the Indonesian ones."""

from __future__ import annotations

import html
import re
import string
from pathlib import Path

import httpx
import pytest

from serving import charts, dashboard, figures, maps, portal

TEMPLATES = Path(portal.__file__).parent / "templates" / "portal"
CATALOGUES = {
    "portal.LABELS": portal.LABELS, "portal.KINDS": portal.KINDS, "portal.KIND_NOTES": portal.KIND_NOTES,
    "portal.CLASSIFICATIONS": portal.CLASSIFICATIONS, "portal.FREQUENCIES": portal.FREQUENCIES,
    "portal.RUN_STATUSES": portal.RUN_STATUSES, "dashboard.LABELS": dashboard.LABELS, "maps.LABELS": maps.LABELS,
    "charts.LABELS": charts.LABELS, "figures.LABELS": figures.LABELS,
}
ENGLISH_PAGES = ["/?lang=en", "/search?q=bansos&lang=en", "/search?kind=harmonized&lang=en",
                 "/dataset/penduduk_umur_jenis_kelamin?lang=en", "/dataset/penduduk?lang=en",
                 "/dataset/dinsos_dtks?lang=en", "/agencies?lang=en", "/sql?lang=en"]


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("name", CATALOGUES)
def test_every_label_is_in_both_languages_with_the_same_placeholders(name):
    for key, pair in CATALOGUES[name].items():
        assert isinstance(pair, tuple) and len(pair) == 2, (name, key)
        indonesian, english = pair
        assert indonesian.strip() and english.strip(), (name, key)
        assert _placeholders(indonesian) == _placeholders(english), (name, key)


def test_every_label_a_template_asks_for_exists_and_every_portal_label_is_used():
    templates = "".join(p.read_text(encoding="utf-8") for p in TEMPLATES.glob("*.html"))
    code = Path(portal.__file__).read_text(encoding="utf-8")
    asked = {k for k in re.findall(r"""p\.t\(\s*["'](\w+)["']""", templates) if not k.endswith("_")}
    assert asked - set(portal.LABELS) == set()
    # Keys built in templates: "sec_" ~ key, "facet_" ~ name, "sort_" ~ option, "event_" ~ event, note variables.
    built = {k for k in portal.LABELS if k.startswith(("sec_", "facet_", "sort_", "event_"))}
    mentioned = {k for k in portal.LABELS if re.search(rf"""["']{k}["']""", templates + code)}
    unused = set(portal.LABELS) - asked - built - mentioned - set(dashboard.LABELS)
    assert unused == set(), "labels no page shows: delete them"


def _visible_text(page: str) -> str:
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    page = re.sub(r"<(code|pre|svg)\b.*?</\1>", " ", page, flags=re.S)  # codes and pictures' own words
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def _indonesian_only() -> dict[str, str]:
    """Indonesian texts of the catalogues that English does not share, long enough to be recognised."""
    found = {}
    for name, catalogue in CATALOGUES.items():
        for key, (indonesian, english) in catalogue.items():
            for part in re.split(r"\{\w*\}", indonesian):
                part = part.strip(" .,:;()")
                if len(part) >= 12 and part.lower() not in english.lower():
                    found[part] = f"{name}[{key!r}]"
    return found


@pytest.mark.parametrize("path", ENGLISH_PAGES)
def test_an_english_page_shows_no_indonesian_label(api, analyst, path):
    cookies = {"hub_token": analyst["Authorization"].removeprefix("Bearer ")}
    page = httpx.get(api + path, cookies=cookies, timeout=60)
    assert page.status_code == 200 and '<html lang="en">' in page.text
    text = " ".join(_visible_text(page.text).split())
    shown = {label: where for label, where in _indonesian_only().items() if label in text}
    assert shown == {}, f"Indonesian labels on the English page {path}"
