"""The web portal on a served demo catalog: plain HTTP, then Debian's headless Chromium with JavaScript off."""

from __future__ import annotations

import csv
import html
import json
import re
import sqlite3
from urllib.parse import urlsplit

import httpx
import pytest

from _served import elsewhere, hub
from hub.settings import ROOT

SCREENSHOTS = ROOT / "test-output" / "screenshots"
PAGES = ["/", "/search?q=penduduk&agency=dinsos&sort=title", "/search?q=bansos", "/dataset/penduduk", "/dataset/dinsos_dtks",
         "/dataset/disdukcapil_siak?filter=jenis_kelamin%3D2&sort=-tanggal_lahir", "/sql",
         "/sql?sql=SELECT+nik%2C+nama+FROM+penduduk+LIMIT+50", "/agencies", "/agency/dinsos", "/agency/disdukcapil",
         "/subscriptions/confirm?token=x", "/subscriptions/unsubscribe?token=x"]
# A public address as such: subscribing needs no name lookup (none here) and calls nothing.
PUBLIC_HOOK = "https://93.184.215.14/hook"
JOIN = """SELECT s.kode_wilayah, s.n AS siak, d.n AS dtks
FROM (SELECT kode_wilayah, count(*) AS n FROM disdukcapil_siak GROUP BY 1) AS s
JOIN (SELECT kode_wilayah, count(*) AS n FROM dinsos_dtks GROUP BY 1) AS d USING (kode_wilayah)
ORDER BY s.kode_wilayah"""


@pytest.fixture(scope="module")
def cookies(analyst) -> dict:
    """The portal's sign-in cookie of the government analyst."""
    return {"hub_token": analyst["Authorization"].removeprefix("Bearer ")}


def _personal_values(home) -> set[str]:
    """NIKs, names and addresses as Disdukcapil's system holds them: none may reach a page."""
    with sqlite3.connect(home / "demo" / "disdukcapil" / "siak.db") as con:
        rows = con.execute("SELECT nik, nama_lengkap, alamat FROM penduduk").fetchall()
    return {value for row in rows for value in row if value}


# --- plain HTTP -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PAGES)
def test_every_page_is_html_without_script_or_personal_data(api, home, cookies, path):
    page = httpx.get(api + path, cookies=cookies, timeout=60)
    assert page.status_code == 200, page.text[-2000:]
    assert page.headers["content-type"].startswith("text/html")
    assert '<html lang="id">' in page.text
    assert "<script" not in page.text.lower()
    assert 'href="/static/portal.css"' in page.text
    leaked = [v for v in _personal_values(home) if v in page.text]
    assert not leaked, f"{len(leaked)} personal values shown unmasked on {path}"


def test_stylesheet_is_served(api):
    css = httpx.get(api + "/static/portal.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert ":focus-visible" in css.text and "@media" in css.text


@pytest.mark.parametrize("path, name", [("/dataset/no_such_dataset", "no_such_dataset"), ("/agency/nobody", "nobody")])
def test_unknown_dataset_or_agency_is_a_404_page(api, path, name):
    page = httpx.get(api + path + "?lang=en")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "Page not found" in page.text and f"<code>{name}</code>" in page.text


def test_user_text_is_escaped(api):
    page = httpx.get(api + "/search", params={"q": '<script>alert("x")</script>'})
    assert "<script" not in page.text
    assert 'value="&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;"' in page.text


def test_language_cookie_and_switch_stay_on_site(api):
    with httpx.Client(base_url=api) as client:
        switched = client.get("/language/en", params={"next": "/sql?sql=SELECT+1&lang=id"})
        assert switched.status_code == 303
        assert switched.headers["location"] == "/sql?sql=SELECT+1&lang=en"
        assert client.cookies["lang"] == "en"
        english = client.get("/agencies")  # no ?lang: the cookie decides
        assert '<html lang="en">' in english.text and "Agencies" in english.text
        assert 'href="/agency/dinsos?lang=en"' in english.text
        assert '<html lang="id">' in client.get("/agencies?lang=id").text
        for elsewhere in ("//elsewhere.example/x", "/\\elsewhere.example", "https://elsewhere.example/"):
            away = client.get("/language/en", params={"next": elsewhere})
            assert away.headers["location"] == "/?lang=en", elsewhere



@pytest.mark.parametrize("headers", [
    {"Origin": "https://elsewhere.example"},
    {"Origin": "null"},  # a sandboxed frame or a data: page
    {"Origin": "http://127.0.0.1:1"},  # the same host on another port is another origin
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site", "Origin": "http://portal.127.0.0.1.example"},
    {"Sec-Fetch-Site": "cross-site", "Origin": "null"},
])
def test_sign_in_and_out_refuse_requests_from_another_site(api, cookies, headers):
    form = {"token": cookies["hub_token"], "next": "/"}
    login = httpx.post(api + "/login?lang=en", data=form, headers=headers)
    assert login.status_code == 403 and "set-cookie" not in login.headers
    assert "Sign-in refused" in login.text and "another site" in login.text and 'role="alert"' in login.text
    logout = httpx.post(api + "/logout", cookies=cookies, headers=headers)
    assert logout.status_code == 403 and "set-cookie" not in logout.headers
    assert "another site" in logout.text


def test_sign_in_and_out_from_the_portal_itself(api, cookies):
    form = {"token": cookies["hub_token"], "next": "/dataset/penduduk"}
    for headers in ({"Origin": api, "Sec-Fetch-Site": "same-origin"}, {"Origin": api},
                    {"Origin": "null", "Sec-Fetch-Site": "same-origin"},  # from a no-referrer page of the portal
                    {}):  # no Origin at all: not a browser (curl), which holds no one's cookie to abuse
        login = httpx.post(api + "/login", data=form, headers=headers)
        assert login.status_code == 303 and login.headers["location"] == "/dataset/penduduk"
        cookie = login.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie  # no TLS here
        logout = httpx.post(api + "/logout", cookies=cookies, headers=headers)
        assert logout.status_code == 303 and 'hub_token=""' in logout.headers["set-cookie"]

def test_search_page_filters_by_facet_and_pages(api):
    page = httpx.get(api + "/search", params={"q": "penduduk", "agency": "dinsos"}).text
    assert 'href="/dataset/dinsos_dtks?lang=id"' in page
    assert 'href="/dataset/disdukcapil_siak?lang=id"' not in page
    assert re.search(r'class="result-count">1<', page)
    # Without a kind or an agency chosen, the integrated datasets and indicators lead; the agencies' copies are
    # counted, one link away.
    everything = httpx.get(api + "/api/search", params={"rows": 1000}).json()
    leading = everything["count"] - everything["facets"]["kind"]["harmonized"]
    default = httpx.get(api + "/search").text
    assert re.search(rf'class="result-count">{leading}<', default)
    assert f'{everything["facets"]["kind"]["harmonized"]} dataset per instansi' in default
    shown = httpx.get(api + "/search", params={"kind": "harmonized"}).text
    assert re.search(rf'class="result-count">{everything["facets"]["kind"]["harmonized"]}<', shown)
    # An address of the search from before it had its own page still finds it.
    old = httpx.get(api + "/", params={"q": "penduduk", "agency": "dinsos"})
    assert old.status_code == 301 and old.headers["location"] == "/search?q=penduduk&agency=dinsos"


def test_dataset_preview_filter_matches_the_api_and_refuses_personal_data(api, analyst, cookies):
    rows = httpx.get(api + "/api/datasets/disdukcapil_siak/rows", params={"filter": "jenis_kelamin=2"},
                     headers=analyst).json()
    page = httpx.get(api + "/dataset/disdukcapil_siak", params={"filter": "jenis_kelamin=2"}, cookies=cookies).text
    assert f'class="preview-total">{rows["total"]:,}<'.replace(",", ".") in page
    notes = re.findall(r'<p class="muted">([^<]*)((?:<code>\w+</code>(?:, )?)+)\.</p>', page)
    said = {text.strip(): re.findall(r"<code>(\w+)</code>", codes) for text, codes in notes}
    assert said["Kolom data pribadi disamarkan:"] == rows["masked_fields"] != []
    assert said["NIK diganti pseudonimnya (sama di setiap dataset, tidak dapat dibalik):"] == ["nik"]
    refused = httpx.get(api + "/dataset/disdukcapil_siak", params={"filter": "nama=Siti Rahayu"}, cookies=cookies).text
    alert = re.search(r'role="alert">(.*?)</div>', refused, re.S).group(1)
    assert "personal data" in alert and "Siti Rahayu" not in alert


def test_terbatas_rows_need_a_sign_in(api, cookies):
    page = httpx.get(api + "/dataset/disdukcapil_siak").text
    assert "Masuk dengan token" in page and 'class="warning access-denied"' in page
    assert 'table class="rows"' not in page and 'ul class="downloads"' not in page
    assert 'table class="rows"' in httpx.get(api + "/dataset/disdukcapil_siak", cookies=cookies).text
    with elsewhere(cookies={"hub_token": "hub_000000000000_" + "x" * 30}) as client:
        stale = client.get(api + "/dataset/disdukcapil_siak")
    assert 'table class="rows"' not in stale.text and 'hub_token=""' in stale.headers["set-cookie"]


def test_downloads_show_their_size_once_known(api, cookies):
    """The size next to each download button is that of the file the reader gets, once one was downloaded."""
    url = api + "/api/datasets/disdukcapil_siak/download.parquet"
    size = len(httpx.get(url, cookies=cookies, timeout=60).content)
    page = httpx.get(api + "/dataset/disdukcapil_siak", params={"lang": "en"}, cookies=cookies).text
    [shown] = re.findall(r'download\.parquet"[^>]*>Parquet</a> <span class="file-size">([^<]+)</span>', page)
    number, unit = shown.split()
    assert abs(float(number.replace(",", "")) * {"B": 1, "kB": 1e3, "MB": 1e6}[unit] - size) <= 0.05 * size


def test_file_sizes_read_as_people_write_them():
    from serving.numbers import file_size

    assert [file_size(n, "id") for n in (0, 999, 1000, 3_456, 123_456, 12_345_678, 2 * 10**12)] == [
        "0 B", "999 B", "1 kB", "3,5 kB", "123 kB", "12,3 MB", "2 TB"]
    assert file_size(12_345_678, "en") == "12.3 MB"


def test_dataset_version_links_preview_that_version(api, cookies):
    versions = httpx.get(api + "/api/datasets/dinsos_dtks/versions").json()["versions"]
    snapshot = str(versions[-1]["snapshot_id"])
    page = httpx.get(api + "/dataset/dinsos_dtks", cookies=cookies).text
    assert f'href="/dataset/dinsos_dtks?version={snapshot}&amp;lang=id#preview"' in page
    shown = httpx.get(api + "/dataset/dinsos_dtks", params={"version": snapshot}, cookies=cookies).text
    assert f'<code class="snapshot">{snapshot}</code>' in shown
    missing = httpx.get(api + "/dataset/dinsos_dtks", params={"version": "123"}, cookies=cookies).text
    assert "tidak memiliki versi <code>123</code>" in missing


def test_sql_csv_download_and_refusals(api, analyst, cookies):
    result = httpx.post(api + "/api/sql", json={"sql": JOIN}, headers=analyst).json()
    download = httpx.post(api + "/sql.csv", data={"sql": JOIN}, cookies=cookies)
    assert download.status_code == 200 and "attachment" in download.headers["content-disposition"]
    lines = list(csv.reader(download.text.splitlines()))
    assert lines[0] == ["kode_wilayah", "siak", "dtks"] and len(lines) - 1 == len(result["rows"])
    refused = httpx.post(api + "/sql", data={"sql": "DELETE FROM penduduk"}, cookies=cookies)
    assert refused.status_code == 400 and "only SELECT is allowed" in refused.text
    anonymous = httpx.post(api + "/sql", data={"sql": JOIN})
    assert anonymous.status_code == 400 and "send a token" in anonymous.text


def _subscribe(api: str, dataset: str, cookies: dict | None = None, **form) -> httpx.Response:
    return httpx.post(f"{api}/dataset/{dataset}/subscribe", params={"lang": "en"}, data=form, cookies=cookies,
                      timeout=60)


def _stop_webhook(api: str, page_text: str) -> httpx.Response:
    """Press the unsubscribe button of the portal's page for the token the subscription page showed, then check
    that it is used up. Its URL starts with HUB_PUBLIC_URL, which the served hub does not set."""
    shown = html.unescape(re.search(r"curl -X POST '([^']+)'", page_text).group(1))
    assert shown.startswith("http://127.0.0.1:8000/api/subscriptions/unsubscribe?token=")
    token = shown.partition("?token=")[2]
    opened = httpx.get(api + "/subscriptions/unsubscribe", params={"token": token, "lang": "en"})
    assert opened.status_code == 200 and "Unsubscribe" in opened.text and "Referrer-Policy" in opened.headers
    stopped = httpx.post(api + "/subscriptions/unsubscribe?lang=en", data={"token": token})
    assert stopped.status_code == 200 and "Unsubscribed" in stopped.text, stopped.text[-2000:]
    again = httpx.post(api + urlsplit(shown).path, params={"token": token})  # the API's one-click endpoint
    assert again.status_code == 404
    return stopped


def test_webhook_subscription_shows_its_secret_once(api, cookies):
    anonymous = _subscribe(api, "dinsos_dtks", channel="webhook", target=PUBLIC_HOOK, events=["published"])
    assert anonymous.status_code == 401 and "a webhook needs a token" in anonymous.text
    page = _subscribe(api, "dinsos_dtks", cookies, channel="webhook", target=PUBLIC_HOOK,
                      events=["published", "failed"])
    assert page.status_code == 200, page.text[-2000:]
    assert page.headers["cache-control"] == "no-store" and "<script" not in page.text.lower()
    secret = re.search(r'<code id="webhook-secret">([0-9a-f]{64})</code>', page.text).group(1)
    assert "shown only this once" in page.text and "X-Hub-Signature-256" in page.text and "HMAC-SHA256" in page.text
    assert "new versions, source failures" in page.text
    assert secret not in httpx.get(api + "/dataset/dinsos_dtks").text
    again = _subscribe(api, "dinsos_dtks", cookies, channel="webhook", target=PUBLIC_HOOK, events=["failed"])
    assert secret not in again.text and "source failures)" in again.text
    for shown in (page, again):
        _stop_webhook(api, shown.text)


@pytest.mark.parametrize("form, field, message", [
    ({"channel": "webhook", "target": '<script>alert("x")</script>'}, "target", "must be an http or https URL"),
    ({"channel": "webhook", "target": "http://127.0.0.1:9/hook"}, "target", "is not a public address"),
    ({"channel": "webhook", "target": PUBLIC_HOOK, "events": []}, "events", "events must be one or more"),
    ({"channel": "email", "target": "analis@bappeda.example.go.id"}, "channel", "sends no e-mail"),
])
def test_refused_subscription_is_shown_by_the_form(api, cookies, form, field, message):
    page = _subscribe(api, "dinsos_dtks", cookies, **{"events": ["published"], **form})
    assert page.status_code == 422
    alert = re.search(r'<div id="subscribe-error" class="error" role="alert">(.*?)</div>', page.text, re.S).group(1)
    assert "The subscription cannot be made" in alert and message in alert
    assert re.search(rf'name="{field}"[^>]*aria-invalid="true"', page.text)
    kept = html.escape(form["target"]).replace("&quot;", "&#34;").replace("&#x27;", "&#39;")
    assert f'value="{kept}"' in page.text and "<script>alert" not in page.text
    assert ('value="published" checked' in page.text) == ("published" in form.get("events", ["published"]))
    assert "webhook-secret" not in page.text


def test_subscribing_to_an_unknown_dataset_is_a_404_page(api):
    page = _subscribe(api, "no_such_dataset", channel="webhook", target=PUBLIC_HOOK, events=["published"])
    assert page.status_code == 404 and "Page not found" in page.text and "<code>no_such_dataset</code>" in page.text


def test_a_mail_link_acts_only_when_its_button_is_pressed(api):
    opened = httpx.get(api + "/subscriptions/confirm", params={"token": "not-a-token"})
    assert opened.status_code == 200 and '<input type="hidden" name="token" value="not-a-token">' in opened.text
    assert opened.headers["referrer-policy"] == "no-referrer"
    pressed = httpx.post(api + "/subscriptions/confirm", data={"token": "not-a-token"})
    assert pressed.status_code == 404 and "tidak dikenal atau sudah dipakai" in pressed.text
    for path in ("/subscriptions/confirm", "/subscriptions/unsubscribe"):
        assert httpx.get(api + path).status_code == 404


# --- headless Chromium, JavaScript off ------------------------------------------------------------------


@pytest.fixture
def page(browser):
    context = browser.new_context(java_script_enabled=False, accept_downloads=True,
                                  viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


def _sign_in(api: str, page, analyst: dict) -> None:
    """Sign in to the portal as a person does: the header's link, the token typed in, the button."""
    page.get_by_role("link", name="Masuk").first.click()
    page.get_by_label("Token API").fill(analyst["Authorization"].removeprefix("Bearer "))
    page.get_by_role("button", name="Masuk").click()
    assert page.locator(".signed-in .who").inner_text() == "analis"


def _screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)
    assert (SCREENSHOTS / f"{name}.png").stat().st_size > 10_000


def test_browser_search_then_filter_by_facet(api, page):
    page.goto(api + "/")
    page.get_by_label("Cari dataset").fill("penduduk")
    page.get_by_role("button", name="Cari").click()
    assert page.locator("li.result").count() == 2  # the integrated dataset and an indicator lead
    page.locator("p.hidden-harmonized a").click()  # then both agencies' own copies
    assert page.locator("li.result").count() == 2
    page.locator(".facet a.selected", has_text="terharmonisasi").click()
    page.locator(".facet a", has_text="Dinas Sosial Kota Bogor").click()
    assert page.locator("li.result h3 a").all_inner_texts() == ["Penduduk terdaftar DTKS Dinas Sosial Kota Bogor"]
    assert page.locator(".facet a.selected").count() == 1
    assert page.get_by_label("Kata pencarian").input_value() == "penduduk"
    _screenshot(page, "search-id")


def test_browser_sign_in_shows_rows_then_sign_out_hides_them(api, page, analyst):
    page.goto(api + "/dataset/penduduk")
    assert "token" in page.locator("#preview .access-denied").inner_text()
    assert page.locator("table.rows").count() == 0 and page.locator("ul.downloads").count() == 0
    page.locator("#preview .access-denied").get_by_role("link", name="Masuk").click()
    page.get_by_label("Token API").fill("hub_000000000000_not-a-real-token-at-all")
    page.get_by_role("button", name="Masuk").click()
    assert "Token tidak diterima" in page.get_by_role("alert").inner_text()
    page.get_by_label("Token API").fill(analyst["Authorization"].removeprefix("Bearer "))
    page.get_by_role("button", name="Masuk").click()
    assert page.url.startswith(api + "/dataset/penduduk")
    assert page.locator("table.rows tbody tr").count() == 20
    _screenshot(page, "signed-in-id")
    page.get_by_role("button", name="Keluar").click()
    page.goto(api + "/dataset/penduduk")
    assert page.locator("table.rows").count() == 0


def test_browser_dataset_page_sections(api, page, analyst):
    page.goto(api + "/search?q=penduduk")
    _sign_in(api, page, analyst)
    page.locator("li.result h3 a", has_text="Penduduk (terintegrasi)").click()
    assert page.url.startswith(api + "/dataset/penduduk")
    assert page.locator("h1").inner_text() == "Penduduk (terintegrasi)"
    for section in ("Grafik dan peta", "Metadata", "Kamus data", "Kualitas data", "Silsilah data", "Versi",
                    "Pratinjau", "Unduh"):
        assert page.get_by_role("heading", name=section, exact=True).count() == 1, section
    assert page.locator("table.dictionary th code", has_text="kode_wilayah").count() == 1
    # Lineage: the integrated dataset, its two harmonized sources, and their two agency systems.
    svg = page.locator("svg.lineage")
    assert svg.locator("g.kind-system").count() == 2 and svg.locator("g.kind-harmonized").count() == 2
    assert svg.locator("path.edge").count() == 4
    assert "dtks_penduduk.csv" in svg.text_content() and "sql sqlite penduduk" in svg.text_content()
    versions = httpx.get(api + "/api/datasets/penduduk/versions").json()["versions"]
    assert page.locator("table.versions tbody tr").count() == len(versions)
    niks = page.locator('table.rows td[data-field="nik"]').all_inner_texts()
    assert len(niks) == 20 and all(re.fullmatch(r"psn_[a-z2-7]{13}", n) for n in niks)
    assert set(page.locator('table.rows td[data-field="nama"]').all_inner_texts()) == {"***"}
    assert [a.inner_text() for a in page.locator("ul.downloads a").all()] == ["CSV", "JSON", "Parquet"]
    api_section = page.locator("#api").inner_text()
    assert "curl" in api_section and "/api/sql" in api_section and "datastore_search?resource_id=penduduk" in api_section
    _screenshot(page, "dataset-id")
    page.set_viewport_size({"width": 390, "height": 844})
    _screenshot(page, "dataset-phone-id")


def test_browser_dataset_quality_shows_each_rule(api, page, published):
    page.goto(api + "/dataset/dinsos_dtks#quality")
    quality = published["dinsos_dtks"]
    numbers = page.locator("#quality dl.numbers dd").all_inner_texts()
    assert numbers[1:] == [str(quality["rows_in"]), str(quality["rows_published"]), str(quality["rows_quarantined"])]
    checks = httpx.get(api + "/api/datasets/dinsos_dtks/quality").json()["validation"]["checks"]
    rows = page.locator("table.validation tbody tr")
    assert rows.count() == len(checks)
    assert page.locator("table.validation tr.failed").count() == sum(1 for c in checks.values() if c["unexpected_count"])
    assert "expect_column_values_to_be_unique" in page.locator("table.validation").inner_text()
    assert page.locator("table.quarantine td code", has_text="nik:duplicate_key").count() == 1


def test_browser_downloads_csv_with_every_row(api, page, analyst, tmp_path):
    page.goto(api + "/dataset/disdukcapil_siak")
    _sign_in(api, page, analyst)
    with page.expect_download() as info:
        page.locator("ul.downloads a", has_text="CSV").click()
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    assert path.name == "disdukcapil_siak.csv"
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == httpx.get(api + "/api/datasets/disdukcapil_siak/rows?limit=1", headers=analyst).json()["total"]
    assert all(re.fullmatch(r"psn_[a-z2-7]{13}", r["nik"]) for r in rows)


def test_browser_sql_join_and_error(api, page, analyst):
    page.goto(api + "/sql")
    _sign_in(api, page, analyst)
    assert page.locator("ul.examples pre").count() == 3
    page.get_by_label("Pernyataan SQL").fill(JOIN)
    page.get_by_role("button", name="Jalankan").click()
    table = page.locator("table.sql-result")
    expected = httpx.post(api + "/api/sql", json={"sql": JOIN}, headers=analyst).json()["rows"]
    cells = [row.locator("td").all_inner_texts() for row in table.locator("tbody tr").all()]
    assert cells == [[r["kode_wilayah"], str(r["siak"]), str(r["dtks"])] for r in expected]
    assert page.get_by_label("Pernyataan SQL").input_value() == JOIN
    _screenshot(page, "sql-id")
    page.get_by_label("Pernyataan SQL").fill("SELECT nope FROM penduduk")
    page.get_by_role("button", name="Jalankan").click()
    alert = page.get_by_role("alert")
    assert "Kueri gagal" in alert.inner_text() and "nope" in alert.inner_text()
    assert page.locator("table.sql-result").count() == 0


def test_browser_agency_lists_sources_with_last_runs(api, page, published):
    page.goto(api + "/agencies")
    page.get_by_role("link", name="Dinas Sosial Kota Bogor").click()
    assert page.locator("h1").inner_text() == "Dinas Sosial Kota Bogor"
    run = published["dinsos_dtks"]
    row = page.locator('tr[data-source="dinsos_dtks"]')
    assert row.locator("td.status").inner_text() == "terbit"
    assert row.locator("td.num").all_inner_texts() == [str(run["rows_in"]), str(run["rows_published"]),
                                                        str(run["rows_quarantined"])]
    # Registered but not run in this catalog: listed all the same.
    assert page.locator('tr[data-source="dinsos_bansos"] td.status').inner_text() == "belum pernah diproses"
    _screenshot(page, "agency-id")
    row.get_by_role("link").click()
    assert page.url.startswith(api + "/dataset/dinsos_dtks")


def test_browser_subscribe_a_webhook(api, page, analyst):
    page.goto(api + "/dataset/penduduk")
    _sign_in(api, page, analyst)  # a webhook is someone's: anonymous callers may subscribe an e-mail only
    page.locator("nav.toc").get_by_role("link", name="Berlangganan").click()
    assert page.url.endswith("#subscribe")
    assert page.get_by_role("radio", name="E-mail").is_disabled()  # this hub has no SMTP server
    page.get_by_role("radio", name="Webhook").check()
    page.get_by_label("Alamat e-mail atau URL webhook").fill("example.org/hook")
    page.get_by_role("checkbox", name="kegagalan sumber").uncheck()
    page.get_by_role("button", name="Berlangganan").click()
    assert "must be an http or https URL" in page.get_by_role("alert").inner_text()
    assert page.get_by_label("Alamat e-mail atau URL webhook").input_value() == "example.org/hook"
    assert not page.get_by_role("checkbox", name="kegagalan sumber").is_checked()
    page.get_by_label("Alamat e-mail atau URL webhook").fill(PUBLIC_HOOK)
    page.get_by_role("button", name="Berlangganan").click()
    assert page.get_by_role("heading", name="Webhook aktif").count() == 1
    assert re.fullmatch(r"[0-9a-f]{64}", page.locator("#webhook-secret").inner_text())
    assert "hanya ditampilkan kali ini" in page.locator("div.secret").inner_text()
    _screenshot(page, "subscribe-id")
    _stop_webhook(api, page.content())


def test_browser_english_switch(api, page, analyst):
    page.goto(api + "/search?q=penduduk")
    _sign_in(api, page, analyst)
    page.get_by_role("link", name="English").click()
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.get_by_role("heading", name="Find datasets").count() == 1
    assert page.get_by_label("Search words").input_value() == "penduduk"
    _screenshot(page, "search-en")
    # The choice holds on every page reached by links from here.
    page.locator("li.result h3 a", has_text="Residents (integrated)").click()
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.get_by_role("heading", name="Data dictionary", exact=True).count() == 1
    assert page.locator("table.dictionary", has_text="National identity number").count() == 1
    _screenshot(page, "dataset-en")
    page.get_by_role("link", name="SQL query").click()
    page.get_by_role("link", name="Run this example").first.click()
    assert page.locator("table.sql-result tbody tr").count() == 10
    _screenshot(page, "sql-en")
    page.get_by_role("link", name="Agencies").first.click()
    page.get_by_role("link", name="Dinas Kependudukan dan Pencatatan Sipil Kota Bogor").click()
    assert page.locator("table.sources thead th").all_inner_texts()[:2] == ["Source", "Standard"]
    assert page.locator("td.status").first.inner_text() == "published"
    _screenshot(page, "agency-en")
    page.get_by_role("link", name="Bahasa Indonesia").click()
    assert page.locator("html").get_attribute("lang") == "id"


def test_an_agency_sees_its_own_quarantined_rows_and_who_accessed_its_data(api, tokens, published):
    def cookie(name: str) -> dict:
        return {"hub_token": tokens[name]["Authorization"].removeprefix("Bearer ")}

    quarantine = api + "/dataset/dinsos_dtks/quarantine"
    own = httpx.get(quarantine, cookies=cookie("dinsos"))
    assert own.status_code == 200 and own.headers["cache-control"] == "no-store"
    rows = re.findall(r'<tr data-row="(\d+)">', own.text)
    assert len(rows) == published["dinsos_dtks"]["rows_quarantined"] and "nik:duplicate_key" in own.text
    assert own.text.count('<dl class="record">') == len(rows)  # the agency's own records, as it sent them
    steward = httpx.get(quarantine, cookies=cookie("walidata"))
    assert re.findall(r'<tr data-row="(\d+)">', steward.text) == rows and '<dl class="record">' not in steward.text
    assert httpx.get(quarantine, cookies=cookie("analis")).status_code == 403
    assert httpx.get(quarantine, cookies=cookie("disdukcapil")).status_code == 403
    assert httpx.get(quarantine).status_code == 401
    page = httpx.get(api + "/dataset/dinsos_dtks", cookies=cookie("dinsos")).text
    assert 'class="see-quarantine"' in page and 'class="see-access-log"' in page
    assert 'class="see-quarantine"' not in httpx.get(api + "/dataset/dinsos_dtks", cookies=cookie("analis")).text

    httpx.get(api + "/api/datasets/dinsos_dtks/rows", params={"limit": 1}, headers=tokens["analis"])
    access = httpx.get(api + "/dataset/dinsos_dtks/access", cookies=cookie("dinsos"))
    assert access.status_code == 200 and "<td>analis</td>" in access.text and "rows.read" in access.text
    assert httpx.get(api + "/dataset/dinsos_dtks/access", cookies=cookie("analis")).status_code == 403
    assert not re.search(r"(?<!\d)\d{16}(?!\d)", access.text)  # no NIK (snapshot ids have 19 digits)


def test_quarantined_rows_show_each_reason_in_words_and_export_for_the_owner_and_stewards(api, home, tokens,
                                                                                         published):
    import io

    import openpyxl

    def cookie(name: str) -> dict:
        return {"hub_token": tokens[name]["Authorization"].removeprefix("Bearer ")}

    quarantined = published["dinsos_dtks"]["rows_quarantined"]
    page = httpx.get(api + "/dataset/dinsos_dtks/quarantine", cookies=cookie("dinsos")).text
    assert page.count('<p class="reason">') == quarantined
    assert "tidak sesuai pola: harus 16 digit angka (pola ^[0-9]{16}$)" in page  # beside nik:pattern
    assert 'class="export-xlsx"' in page and 'class="export-csv"' in page
    english = httpx.get(api + "/dataset/dinsos_dtks/quarantine?lang=en", cookies=cookie("walidata")).text
    assert "does not match the pattern: it must be 16 digits" in english and "Excel (XLSX)" in english

    # The agency's own export: its records as received, in its columns' order, then the reasons.
    received = httpx.get(api + "/api/datasets/dinsos_dtks/quarantine", headers=tokens["dinsos"]).json()["rows"]
    own_csv = httpx.get(api + "/dataset/dinsos_dtks/quarantine.csv", cookies=cookie("dinsos"))
    assert own_csv.status_code == 200 and own_csv.headers["cache-control"] == "no-store"
    assert own_csv.headers["content-disposition"].startswith('attachment; filename="karantina-dinsos_dtks-')
    assert own_csv.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(own_csv.content.decode("utf-8-sig"), newline=""), delimiter=";"))
    columns = list(received[0]["record"])
    assert rows[0] == [*columns, "nomor_baris", "kode_alasan", "alasan"]
    assert [r[:len(columns) + 2] for r in rows[1:]] == [
        [*(r["record"][c] or "" for c in columns), str(r["row"]), "; ".join(r["reasons"])] for r in received]
    own_xlsx = httpx.get(api + "/dataset/dinsos_dtks/quarantine.xlsx?lang=en", cookies=cookie("dinsos"))
    assert own_xlsx.headers["content-type"].startswith("application/vnd.openxmlformats")
    sheet = openpyxl.load_workbook(io.BytesIO(own_xlsx.content))["quarantine"]
    cells = [[c.value for c in row] for row in sheet.iter_rows()]
    assert cells[0] == [*columns, "row_number", "reason_codes", "reasons"]
    assert [r[:len(columns) + 1] for r in cells[1:]] == [[*(r["record"][c] for c in columns), r["row"]]
                                                         for r in received]
    assert all("16 digits" in r[-1] for r in cells[1:] if r[-2] == "nik:pattern")

    # A steward's export: row numbers and reasons, no value (the sentences name the registration's crosswalk
    # values, Laki-laki or Perempuan, which are no row's: the personal columns are the ones to look for).
    values = {r["record"][c] for r in received for c in ("NIK", "Nama Lengkap", "Tanggal Lahir", "Alamat")}
    assert len(values) > 10
    for fmt in ("csv", "xlsx"):
        steward = httpx.get(api + f"/dataset/dinsos_dtks/quarantine.{fmt}", cookies=cookie("walidata"))
        assert steward.status_code == 200
        if fmt == "csv":
            text = steward.content.decode("utf-8-sig")
            assert text.splitlines()[0] == "nomor_baris;kode_alasan;alasan"
        else:
            sheet = openpyxl.load_workbook(io.BytesIO(steward.content))["karantina"]
            assert [c.value for c in next(sheet.iter_rows())] == ["nomor_baris", "kode_alasan", "alasan"]
            text = "\n".join(str(c.value) for row in sheet.iter_rows() for c in row)
        assert not [v for v in values if v in text], f"a value in the steward's {fmt} export"
        assert len(text) > 100  # the reasons are there
        # Nobody else gets one: another agency and an analyst are refused, anonymous must sign in.
        export = api + f"/dataset/dinsos_dtks/quarantine.{fmt}"
        assert httpx.get(export, cookies=cookie("disdukcapil")).status_code == 403
        assert httpx.get(export, cookies=cookie("analis")).status_code == 403
        assert httpx.get(export).status_code == 401
    assert httpx.get(api + "/dataset/dinsos_dtks/quarantine.csv?run=no_such_run",
                     cookies=cookie("dinsos")).status_code == 404

    # Each export is read as the page is: in the audit log, with its format and whether values were in it.
    entries = [e for e in json.loads(hub(home, "audit", "who-accessed", "dinsos_dtks", "--json").stdout)
               if e["action"] == "quarantine.read" and "format" in e["details"]]
    assert {(e["actor"], e["details"]["format"], e["details"]["records"]) for e in entries} >= {
        ("dinsos", "csv", True), ("dinsos", "xlsx", True), ("walidata", "csv", False), ("walidata", "xlsx", False)}
    assert all(e["details"]["rows"] == quarantined for e in entries)
