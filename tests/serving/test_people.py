"""The portal as people see it: each page in Debian's Chromium, screenshot, axe-core's WCAG 2.1 AA rules, its size."""

from __future__ import annotations

import httpx
import pytest

from _axe import check, describe, serious
from hub.settings import ROOT

# Every page checked: (name, path). The name names the screenshot (test-output/screenshots/people-<name>.png) and
# the test ids. A new page is one line here; a signed-in view also goes in SIGNED_IN.
PAGES = [
    ("home", "/"),
    ("search-bansos", "/search?q=bansos"),
    ("search-penduduk", "/search?q=penduduk"),
    ("dataset-penduduk", "/dataset/penduduk"),
    ("dataset-disdukcapil_siak", "/dataset/disdukcapil_siak"),
    ("indicator-penduduk_umur_jenis_kelamin", "/dataset/penduduk_umur_jenis_kelamin"),
    ("preview-filter", "/dataset/disdukcapil_siak?filter=jenis_kelamin%3D2&sort=kode_wilayah#preview"),
    ("preview-page-3", "/dataset/penduduk_umur_jenis_kelamin?start=40#preview"),
    ("home-en", "/?lang=en"),
    ("search-penduduk-en", "/search?q=penduduk&lang=en"),
    ("dataset-penduduk-en", "/dataset/penduduk?lang=en"),
    ("indicator-penduduk_umur_jenis_kelamin-en", "/dataset/penduduk_umur_jenis_kelamin?lang=en"),
]
# Pages seen signed in as the government analyst (the `hub_token` cookie the portal's sign-in sets); the rest are
# seen as a resident sees them, signed out.
SIGNED_IN = {"dataset-penduduk", "preview-filter", "dataset-penduduk-en"}
# Pages with a known serious accessibility problem that needs a template change: name -> each problem, as "the axe
# rule: what to fix". The axe test of such a page is a strict xfail that fails for those rules only: once they are
# fixed it turns red (XPASS), and the page's line here goes; a rule not listed fails it as any page.
KNOWN_PROBLEMS: dict[str, list[str]] = {}

MAX_BYTES = 300_000  # a page's HTML, as sent: 300 KB
VIEWPORT = {"width": 1280, "height": 900}
SCREENSHOTS = ROOT / "test-output" / "screenshots"


class KnownViolations(AssertionError):
    """axe found serious violations of a page's KNOWN_PROBLEMS rules, and no other."""


def _params(known: dict[str, list[str]] | None = None) -> list:
    known = known or {}
    return [pytest.param(name, path, id=name,
                         marks=[pytest.mark.xfail(strict=True, raises=KnownViolations, reason="; ".join(known[name]))]
                         if name in known else []) for name, path in PAGES]


@pytest.fixture(scope="module")
def token(analyst) -> str:
    return analyst["Authorization"].removeprefix("Bearer ")


@pytest.fixture
def open_page(browser, api, token):
    """Opens a page of PAGES in a fresh browser context, signed in when SIGNED_IN says so, and checks it is the
    page meant: answered 200, signed in or out as meant, no alert (a refused filter would be checked as a page
    without its rows). JavaScript is on only so that axe-core can run (the portal's pages send none); bypass_csp
    lets the test inject axe, which the portal's Content-Security-Policy (script-src 'self', serving.guard) would
    refuse as an inline script."""
    contexts = []

    def open_page(name: str, path: str):
        context = browser.new_context(java_script_enabled=True, bypass_csp=True, viewport=VIEWPORT)
        contexts.append(context)
        if name in SIGNED_IN:
            context.add_cookies([{"name": "hub_token", "value": token, "url": api}])
        page = context.new_page()
        response = page.goto(api + path)
        assert response.status == 200, f"{path}: {response.status}"
        signed_in = page.locator(".signed-in .who").all_inner_texts()
        assert signed_in == (["analis"] if name in SIGNED_IN else []), f"{path}: signed in as {signed_in}"
        alerts = page.get_by_role("alert").all_inner_texts()
        assert not alerts, f"{path}: {alerts}"
        return page

    yield open_page
    for context in contexts:
        context.close()


@pytest.mark.parametrize("name, path", _params())
def test_page_screenshot(open_page, name, path):
    page = open_page(name, path)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / f"people-{name}.png"
    page.screenshot(path=shot, full_page=True)
    assert shot.stat().st_size > 10_000


@pytest.mark.parametrize("name, path", _params(KNOWN_PROBLEMS))
def test_page_has_no_serious_accessibility_violation(open_page, name, path):
    page = open_page(name, path)
    found = serious(check(page))
    if not found:
        return
    message = f"axe-core on {path}:\n{describe(found)}"
    known = {problem.partition(":")[0] for problem in KNOWN_PROBLEMS.get(name, [])}
    if known and {v["id"] for v in found} <= known:
        raise KnownViolations(message)
    raise AssertionError(message)


@pytest.mark.parametrize("name, path", _params())
def test_page_html_is_under_budget(api, token, name, path):
    cookies = {"hub_token": token} if name in SIGNED_IN else None
    response = httpx.get(api + path.partition("#")[0], cookies=cookies, timeout=60)
    assert response.status_code == 200
    assert len(response.content) < MAX_BYTES, f"{path}: {len(response.content):,} bytes of HTML"
