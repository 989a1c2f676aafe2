"""The portal read as residents and officials read it: charts and maps, labels for codes, the preview's pages,
how to ask for access, and English, on a served demo catalog."""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET

import httpx
import pytest


@pytest.fixture(scope="module")
def cookies(analyst) -> dict:
    return {"hub_token": analyst["Authorization"].removeprefix("Bearer ")}


def _figures(page: str) -> str:
    return page[page.index('<section id="figures"'):page.index('<section id="metadata"')]


def _all_rows(api: str, dataset: str, headers: dict | None = None) -> list[dict]:
    rows: list[dict] = []
    while True:
        page = httpx.get(f"{api}/api/datasets/{dataset}/rows", params={"limit": 1000, "offset": len(rows)},
                         headers=headers or {}).json()
        rows += page["rows"]
        if len(rows) >= page["total"]:
            return rows


def test_an_indicator_by_kelurahan_gets_a_map_whose_numbers_are_its_rows_and_keeps_small_cells_hidden(api):
    rows = _all_rows(api, "penduduk_umur_jenis_kelamin")
    figures = _figures(httpx.get(api + "/dataset/penduduk_umur_jenis_kelamin").text)
    choropleth = figures[figures.index('<figure class="map"'):figures.index("</figure>") + 9]
    svg = choropleth[choropleth.index("<svg"):choropleth.index("</svg>") + 6]
    ET.fromstring(svg)  # well-formed
    drawn = set(re.findall(r'data-code="(32\.71\.\d\d\.\d{4})"', svg))
    assert len(drawn) == 68
    table = choropleth[choropleth.index("<table"):]
    by_area: dict[str, list] = {}
    for r in rows:
        by_area.setdefault(r["kode_wilayah"], []).append(r["jumlah_penduduk"])
    for code, cells in by_area.items():
        line = re.search(rf"<tr>(?:(?!</tr>).)*?{re.escape(code)}.*?</tr>", table, re.S).group(0)
        value = re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", line, re.S)[3]
        # A kelurahan with a suppressed cell is hatched and says so: its partial sum is never shown.
        assert value == ("disembunyikan" if None in cells else f"{sum(cells):,}".replace(",", ".")), code
    assert "kelas kuantil" in choropleth and "Batu Tulis" in choropleth


def test_an_age_by_sex_indicator_gets_a_population_pyramid_with_suppressed_cells_left_out_and_counted(api):
    rows = _all_rows(api, "penduduk_umur_jenis_kelamin")
    figures = _figures(httpx.get(api + "/dataset/penduduk_umur_jenis_kelamin").text)
    pyramid = figures[figures.index('<figure class="chart chart-pyramid"'):]
    pyramid = pyramid[:pyramid.index("</figure>")]
    hidden = sum(r["jumlah_penduduk"] is None for r in rows)
    assert f"tidak ikut dijumlahkan: {hidden} sel" in pyramid.replace(".", "")
    men_adults = sum(r["jumlah_penduduk"] or 0 for r in rows if r["kelompok_umur"] == "15-64" and r["jenis_kelamin"] == "1")
    assert f"{men_adults:,}".replace(",", ".") in pyramid
    assert "Laki-laki" in pyramid and "Perempuan" in pyramid


def test_a_trend_over_the_published_versions(api):
    figures = _figures(httpx.get(api + "/dataset/penduduk?lang=en", cookies={}).text)
    assert '<figure class="chart' not in figures  # terbatas: no figure for an anonymous visitor
    integrated = _figures(httpx.get(api + "/dataset/penduduk_umur_jenis_kelamin?lang=en").text)
    assert "in each published version" in integrated and "chart-trend" in integrated


def test_a_register_with_coordinates_gets_a_point_map_and_a_register_is_counted_by_area(api, cookies):
    figures = _figures(httpx.get(api + "/dataset/disdukcapil_siak", cookies=cookies).text)
    counts: dict[str, int] = {}
    for r in _all_rows(api, "disdukcapil_siak", {"Cookie": f"hub_token={cookies['hub_token']}"}):
        counts[r["kode_wilayah"]] = counts.get(r["kode_wilayah"], 0) + 1
    assert "Jumlah baris per kelurahan" in figures
    code, n = max(counts.items(), key=lambda kv: kv[1])
    assert re.search(rf"{re.escape(code)}</code></td><td[^>]*>{n}<", figures.replace("</td>\n", "</td>")) \
        or f">{n}<" in re.search(rf"<tr>(?:(?!</tr>).)*{re.escape(code)}.*?</tr>", figures, re.S).group(0)


def test_restricted_rows_say_who_decides_and_how_to_ask(api):
    page = httpx.get(api + "/dataset/penduduk").text
    refused = page[page.index('<div class="warning access-denied"'):]
    refused = refused[:refused.index("</div>")]
    assert "Dinas Komunikasi, Informatika, Statistik dan Persandian Kota Bogor" in refused
    assert "penduduk" in refused and 'href="mailto:satudata@kotabogor.go.id?subject=' in refused
    english = httpx.get(api + "/dataset/penduduk?lang=en").text
    assert "decides who may read its rows" in english and "To ask for access" in english


def test_the_preview_shows_labels_and_titles_and_pages_through_every_row(api):
    total = httpx.get(api + "/api/datasets/penduduk_umur_jenis_kelamin/rows?limit=1").json()["total"]
    seen, start = [], 0
    while True:
        page = httpx.get(api + "/dataset/penduduk_umur_jenis_kelamin", params={"start": start}).text
        preview = page[page.index('<section id="preview"'):page.index('<section id="downloads"')]
        seen += re.findall(r'<td data-field="kode_wilayah">([^<]*) <code class="code"[^>]*>([^<]+)</code>', preview)
        nxt = re.search(r'<a rel="next" href="[^"]*start=(\d+)', preview)
        if not nxt:
            break
        start = int(nxt.group(1))
    assert len(seen) == total
    assert ("Batu Tulis", "32.71.01.1001") in seen
    assert "Kode kelurahan<br><code class=\"field-name\">kode_wilayah</code>" in preview
    assert 'class="first"' in preview and 'rel="prev"' in preview
    english = httpx.get(api + "/dataset/penduduk_umur_jenis_kelamin?lang=en").text
    assert "Male <code" in english and "Kelurahan code<br>" in english


def test_the_preview_filter_is_offered_as_a_download_and_an_api_call(api):
    page = httpx.get(api + "/dataset/penduduk_umur_jenis_kelamin",
                     params={"filter": "kode_wilayah=32.71.01.1001", "sort": "-kelompok_umur"}).text
    link = re.search(r'href="(/api/datasets/penduduk_umur_jenis_kelamin/download\.csv\?[^"]+)"', page).group(1)
    body = httpx.get(api + link.replace("&amp;", "&")).text
    rows = list(csv.DictReader(io.StringIO(body)))
    assert len(rows) == 6 and {r["kode_wilayah"] for r in rows} == {"32.71.01.1001"}
    assert [r["kelompok_umur"] for r in rows] == sorted((r["kelompok_umur"] for r in rows), reverse=True)
    call = re.search(r'<pre class="preview-api"><code>curl &#39;(.+?)&#39;', page).group(1).replace("&amp;", "&")
    assert httpx.get(call).json()["total"] == 6


def test_english_titles_come_from_the_standards(api):
    page = httpx.get(api + "/dataset/dinsos_dtks?lang=en").text
    assert "<h1>Residents: Dinas Sosial Kota Bogor</h1>" in page
    assert "One agency&#39;s data, harmonized" in page and 'class="integrated-link"' in page


def test_the_home_page_shows_the_city_at_a_glance_with_its_first_featured_map(api):
    page = httpx.get(api + "/").text
    spotlight = page[page.index('aria-labelledby="spotlight-heading"'):]
    spotlight = spotlight[:spotlight.index("</section>")]
    assert 'href="/dataset/penduduk_umur_jenis_kelamin?lang=id"' in spotlight
    assert '<figure class="map"' in spotlight and spotlight.count("data-code=") == 68
