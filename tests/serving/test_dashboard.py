"""The home page's dashboard on a published demo catalog: headline figures, topics, featured datasets, the page."""

from __future__ import annotations

import csv
import datetime as dt
import re
import sqlite3
from html.parser import HTMLParser
from pathlib import Path

import pytest
from sqlalchemy import select
from starlette.requests import Request

import serving.portal as portal
from _served import hub
from catalog.db import Dataset, DatasetVersion, session
from catalog.identity import Identity, authenticate
from hub.settings import ROOT, Settings
from serving.dashboard import LABELS, home

TEMPLATE = ROOT / "serving" / "templates" / "portal" / "home.html"
ANONYMOUS = Identity.ANONYMOUS
# The site settings of these tests: a headline of each kind, one of a dataset never published, one summing a
# field of `terbatas` data, and featured datasets of which one was never published.
SITE = """\
city: Kota Bogor
walidata:
  name: Dinas Komunikasi, Informatika, Statistik dan Persandian Kota Bogor
  email: satudata@kotabogor.go.id
  phone: "+62 251 8321075"
  address: Jl. Ir. H. Juanda No. 10, Bogor 16121
{emblem}
headlines:
  - {{dataset: penduduk, title: Penduduk terdaftar, title_en: Registered residents}}
  - {{dataset: penerima_bantuan_sosial, sum: nominal, title: Nilai bantuan sosial, title_en: Social assistance paid}}
  - {{dataset: fasilitas_kesehatan, title: Fasilitas kesehatan, title_en: Health facilities}}
  - {{dataset: satuan_pendidikan, title: Satuan pendidikan, title_en: Schools}}
  - {{dataset: satuan_pendidikan, sum: jumlah_peserta_didik, title: Peserta didik, title_en: Pupils}}
featured: [penerima_bansos_kelurahan, fasilitas_kesehatan, disdukcapil_siak, penduduk_umur_jenis_kelamin]
"""


@pytest.fixture(scope="module")
def city(tmp_path_factory) -> Settings:
    """A demo hub home published with `hub run`: both population sources (so `penduduk` has two versions),
    Dinsos's social assistance twice (its second export lacks the last month: fewer rows, a smaller sum),
    Disdik's schools twice (the second export counts 10 more pupils at one school: as many rows, a larger sum),
    and Dinkes's TB cases (`rahasia`, for Dinkes only)."""
    from openpyxl import load_workbook

    from demo.agencies import build

    home = tmp_path_factory.mktemp("city-home")
    paths = build(home, people_count=480, dinsos_count=120)
    for source in ("disdukcapil_siak", "dinsos_dtks", "dinsos_bansos", "disdik_dapodik", "dinkes_sitb"):
        hub(home, "run", source)
    lines = paths["bansos"].read_text(encoding="utf-8").splitlines(keepends=True)
    paths["bansos"].write_text("".join(x for x in lines if ",2025-03," not in x), encoding="utf-8")
    hub(home, "run", "dinsos_bansos")
    book = load_workbook(paths["disdik"])
    school = book.active.cell(row=5, column=7)  # a school whose key no other row repeats
    school.value += 10
    book.save(paths["disdik"])
    hub(home, "run", "disdik_dapodik")
    return Settings(home=home, catalog_url=f"sqlite:///{home / 'catalog.db'}",
                    registry=ROOT / "connectors" / "registry")


@pytest.fixture(scope="module")
def people(city) -> dict[str, Identity]:
    """A government analyst and a Dinkes user of the city's catalog, signed in with real tokens."""
    found = {}
    for name, args in {"analis": ("--role", "analyst"), "dinkes": ("--role", "agency", "--agency", "dinkes")}.items():
        created = hub(city.home, "users", "create", name, *args)
        token = re.search(r"hub_[0-9a-f]{12}_[\w-]+", created.stdout)[0]
        found[name] = authenticate(city, f"Bearer {token}", "127.0.0.1")
    return found


@pytest.fixture
def site_file(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(SITE.format(emblem=""), encoding="utf-8")
    monkeypatch.setenv("HUB_SITE", str(path))
    return path


def _dataset(settings, dataset_id) -> Dataset:
    with session(settings.catalog_url) as s:
        return s.get(Dataset, dataset_id)


def _operator_sum(settings, dataset_id, field, previous=False):
    """The sum as the operator's own connection reads it (`hub query`'s path, not the sandbox's)."""
    from catalog.query import connect

    versions = None
    if previous:
        with session(settings.catalog_url) as s:
            history = s.scalars(select(DatasetVersion.snapshot_id).where(DatasetVersion.dataset_id == dataset_id)
                                .order_by(DatasetVersion.committed_at.desc())).all()
        versions = {dataset_id: history[1]}
    with connect(settings, versions) as con:
        return con.execute(f"SELECT sum({field}) FROM {dataset_id}").fetchone()[0]


def _render(settings, who, lang) -> str:
    request = Request({"type": "http", "method": "GET", "path": "/", "query_string": f"lang={lang}".encode(),
                       "headers": []})
    page = portal._Page(request, who)
    # The route adds the first featured map (`spotlight`); tests/serving/test_portal_reading.py checks it served.
    return portal._environment().get_template("home.html").render(p=page, lang=lang, spotlight=None,
                                                                  **home(settings, who, lang))


# --- the context ----------------------------------------------------------------------------------------


def test_every_label_has_both_languages_and_the_page_uses_no_other_word():
    assert all(isinstance(v, tuple) and len(v) == 2 and all(x.strip() for x in v) for v in LABELS.values())
    assert {k: portal.LABELS[k] for k in LABELS} == LABELS, "the portal's catalogue holds the home page's words"
    used = set(re.findall(r"""p\.t\(\s*["'](\w+)["']""", TEMPLATE.read_text(encoding="utf-8")))
    assert used - set(LABELS) - set(portal.LABELS) == set()


def test_headlines_for_a_visitor_without_a_token(city, site_file):
    penduduk, schools = _dataset(city, "penduduk"), _dataset(city, "satuan_pendidikan")
    three_days = penduduk.updated_at + dt.timedelta(days=3, hours=2)
    context = home(city, ANONYMOUS, "id", now=three_days)
    # Facilities were never published; the sum of `terbatas` payments needs a token to read.
    assert [(h["dataset"], h["field"]) for h in context["headlines"]] == [
        ("penduduk", None), ("satuan_pendidikan", None), ("satuan_pendidikan", "jumlah_peserta_didik")]
    first, rows, pupils = context["headlines"]
    assert first["title"] == "Penduduk terdaftar"
    # A row count is the catalog's: no read needed, so a `terbatas` dataset's count is shown to anyone.
    assert (first["value"], first["previous"], first["change"], first["trend"]) == (599, 480, 119, "up")
    assert first["trend_text"] == "naik 119 sejak versi sebelumnya"
    assert first["updated_date"] == penduduk.updated_at.date().isoformat()
    assert first["updated_words"] == "diperbarui 3 hari lalu"
    assert first["href"] == "/dataset/penduduk?lang=id"
    assert (rows["value"], rows["previous"], rows["trend"]) == (schools.row_count, schools.row_count, "same")
    assert rows["trend_text"] == "tidak berubah sejak versi sebelumnya"
    expected = _operator_sum(city, "satuan_pendidikan", "jumlah_peserta_didik")
    assert pupils["value"] == expected > 10000
    assert pupils["value_text"] == f"{expected:,}".replace(",", ".")
    assert (pupils["change"], pupils["trend_text"]) == (10, "naik 10 sejak versi sebelumnya")


def test_a_summed_headline_of_restricted_data_is_shown_to_a_government_analyst(city, site_file, people):
    context = home(city, people["analis"], "en", now=_dataset(city, "penerima_bantuan_sosial").updated_at)
    by_title = {h["title"]: h for h in context["headlines"]}
    assert list(by_title) == ["Registered residents", "Social assistance paid", "Schools", "Pupils"]
    paid = by_title["Social assistance paid"]
    now, before = _operator_sum(city, "penerima_bantuan_sosial", "nominal"), \
        _operator_sum(city, "penerima_bantuan_sosial", "nominal", previous=True)
    assert (paid["value"], paid["previous"]) == (now, before) and now < before
    assert paid["trend"] == "down"
    assert paid["trend_text"] == f"down {before - now:,} since the previous version"
    assert paid["value_text"] == f"{now:,}"
    assert paid["updated_words"] == "updated just now"
    # Read again, the sums come from the cache: the same figures.
    assert home(city, people["analis"], "en")["headlines"][1]["value"] == now


def test_english_words_and_a_headline_with_one_version(city, tmp_path, monkeypatch):
    path = tmp_path / "site.yaml"
    path.write_text(SITE.format(emblem="").replace(
        "headlines:\n", "headlines:\n  - {dataset: penduduk_umur_jenis_kelamin, title: Kelompok, title_en: Groups}\n"),
        encoding="utf-8")
    monkeypatch.setenv("HUB_SITE", str(path))
    indicator = _dataset(city, "penduduk_umur_jenis_kelamin")
    with session(city.catalog_url) as s:
        versions = s.query(DatasetVersion).filter_by(dataset_id=indicator.id).count()
    later = indicator.updated_at + dt.timedelta(days=1, minutes=5)
    groups, *_, schools, pupils = home(city, ANONYMOUS, "en", now=later)["headlines"]
    assert groups["title"] == "Groups" and groups["updated_words"] == "updated 1 day ago"
    assert groups["value_text"] == f"{indicator.row_count:,}"
    if versions == 1:
        assert groups["trend"] is None and groups["trend_text"] is None
    assert schools["trend_text"] == "unchanged since the previous version"
    assert pupils["trend_text"] == "up 10 since the previous version"


def test_topic_tiles_count_what_the_visitor_may_know_of(city, site_file, people):
    tiles = home(city, ANONYMOUS, "id")["topics"]
    # Integrated datasets and indicators only; TB cases are `rahasia`: to a visitor they do not exist.
    assert {t["id"]: t["count"] for t in tiles} == {"population": 2, "social_protection": 2, "health": 0,
                                                   "education": 1, "economy": 0}
    assert tiles[0] == {"id": "population", "title": "Kependudukan", "satu_data": "Kependudukan", "count": 2,
                        "count_text": "dataset", "href": "/search?topic=population&lang=id"}
    dinkes = {t["id"]: t for t in home(city, people["dinkes"], "en")["topics"]}
    assert dinkes["health"]["count"] == 1 and dinkes["health"]["title"] == "Health"
    assert dinkes["health"]["count_text"] == "dataset" and dinkes["population"]["count_text"] == "datasets"
    assert dinkes["health"]["href"] == "/search?topic=health&lang=en"


def test_featured_datasets_the_sites_choice_first_then_the_newest(city, site_file):
    featured = home(city, ANONYMOUS, "en")["featured"]
    with session(city.catalog_url) as s:
        newest = [d.id for d in s.query(Dataset).filter(Dataset.kind.in_(("integrated", "indicator")))
                  .order_by(Dataset.updated_at.desc())
                  if d.id not in ("penerima_bansos_kelurahan", "penduduk_umur_jenis_kelamin", "kasus_tbc")]
    chosen = ["penerima_bansos_kelurahan", "disdukcapil_siak", "penduduk_umur_jenis_kelamin"]
    assert [d["id"] for d in featured] == (chosen + newest)[:6]
    integrated = next(d for d in featured if d["id"] == "penduduk")
    assert integrated["title"] == "Residents (integrated)" and integrated["kind_label"] == "integrated"
    assert integrated["rows"] == 599 and integrated["rows_text"] == "599"
    assert integrated["href"] == "/dataset/penduduk?lang=en" and integrated["updated_at"].endswith("Z")
    assert all(len(d["description"]) <= 161 and "\n" not in d["description"] for d in featured)
    source = featured[1]  # in English, a source's dataset is its standard's English title and its agency
    assert source["kind_label"] == "harmonized"
    assert source["title"] == "Residents: Dinas Kependudukan dan Pencatatan Sipil Kota Bogor"


# --- the page -------------------------------------------------------------------------------------------


class _Outline(HTMLParser):
    """The headings, links (with their text), images and elements of a page."""

    def __init__(self):
        super().__init__()
        self.headings, self.links, self.images, self.tags, self._link = [], [], [], [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if re.fullmatch(r"h[1-6]", tag):
            self.headings.append(int(tag[1]))
        elif tag == "a":
            self._link = [attrs.get("href"), ""]
        elif tag == "img":
            self.images.append(attrs)

    def handle_data(self, data):
        if self._link is not None:
            self._link[1] += data

    def handle_endtag(self, tag):
        if tag == "a" and self._link is not None:
            self.links.append((self._link[0], " ".join(self._link[1].split())))
            self._link = None


def _personal_values(settings) -> set[str]:
    with sqlite3.connect(settings.demo / "disdukcapil" / "siak.db") as con:
        found = {v for row in con.execute("SELECT nik, nama_lengkap, alamat FROM penduduk") for v in row if v}
    with open(settings.demo / "dinsos" / "penyaluran_bansos.csv", encoding="utf-8") as f:
        found |= {v for row in csv.DictReader(f) for v in (row["NIK"], row["NAMA PENERIMA"]) if v}
    return found


@pytest.mark.parametrize("lang", ["id", "en"])
def test_page_is_accessible_html_without_script_or_personal_data(city, site_file, people, lang):
    for who in (ANONYMOUS, people["analis"]):
        page = _render(city, who, lang)
        assert f'<html lang="{lang}">' in page and "<script" not in page.lower()
        assert not [v for v in _personal_values(city) if v in page]
        outline = _Outline()
        outline.feed(page)
        assert outline.headings.count(1) == 1 and outline.headings[0] == 1
        assert all(b - a <= 1 for a, b in zip(outline.headings, outline.headings[1:])), outline.headings
        assert all(text for _, text in outline.links), [href for href, text in outline.links if not text]
        assert not outline.images  # no emblem configured: an outlined slot with the initials, hidden from readers
        assert '<span class="emblem emblem-slot" aria-hidden="true">KB</span>' in page
        searches = [a for t, a in outline.tags if t == "form" and a.get("role") == "search"]
        assert searches == [{"class": "search home-search", "method": "get", "action": "/search", "role": "search"}]
        assert ("input", {"id": "home-q", "name": "q", "type": "search",
                          "placeholder": portal.LABELS["search_hint"][lang == "en"]}) in outline.tags
        assert '<label for="home-q">' in page
        assert '<a href="mailto:satudata@kotabogor.go.id">satudata@kotabogor.go.id</a>' in page
        assert re.search(r"<address class=\"contact\">\s*<strong>Dinas Komunikasi", page)
        assert ("/search?topic=population&lang=" + lang, ) == tuple(h for h, _ in outline.links
                                                                   if h.startswith("/search?topic=population"))
    english = lang == "en"
    assert ("Registered residents" if english else "Penduduk terdaftar") in page
    assert ("up 119 since the previous version" if english else "naik 119 sejak versi sebelumnya") in page
    assert ("Social assistance paid" if english else "Nilai bantuan sosial") in page  # the analyst's page
    assert re.search(r'<time datetime="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ">\d{4}-\d\d-\d\d</time> · '
                     + ("updated" if english else "diperbarui"), page)


def test_the_emblem_when_the_city_has_one(city, site_file):
    (site_file.parent / "lambang.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1 1"/>',
                                                 encoding="utf-8")
    site_file.write_text(SITE.format(emblem="emblem: lambang.svg"), encoding="utf-8")
    for lang, alt in (("id", "Lambang Kota Bogor"), ("en", "Coat of arms of Kota Bogor")):
        outline = _Outline()
        outline.feed(_render(city, ANONYMOUS, lang))
        assert [(i["src"], i["alt"]) for i in outline.images] == [("/site/emblem", alt)]
        assert not any("emblem-slot" in (a.get("class") or "") for _, a in outline.tags)


# --- a dataset's figures over periods and versions (serving.figures), on this catalog's two versions --------


def test_an_indicator_by_period_is_mapped_at_its_latest_period_and_drawn_over_periods_and_versions(city):
    from catalog.metadata import describe
    from catalog.query import query
    from schemas import load_standard
    from serving.figures import figures

    with session(city.catalog_url) as s:
        d = s.get(Dataset, "penerima_bansos_kelurahan")
        versions = describe(s, d)["versions"]
    drawn = figures(city, d, load_standard(f"{d.standard}@{d.standard_version}"), ANONYMOUS, "en", str, versions)
    captions = [re.search(r"<figcaption>(.*?)</figcaption>", f).group(1) for f in drawn]
    assert captions == ["Residents receiving assistance by kelurahan, 2025-02",
                        "Residents receiving assistance by period, all of Kota Bogor",
                        "Residents receiving assistance in each published version"]
    # The line over the periods adds up each period's published cells, as the operator's own SQL does.
    sums = query(city, "SELECT periode, sum(jumlah_penerima) FROM penerima_bansos_kelurahan GROUP BY 1 ORDER BY 1")
    by_period = re.findall(r'<th scope="row">(\d{4}-\d\d)</th><td class="num">(\d+)</td>', drawn[1])
    assert by_period == [(p, str(n)) for p, n in zip(*sums.to_pydict().values())]
    # Over the versions: the first export had March too, so the latest version is smaller.
    over_versions = [int(n) for n in re.findall(r'<th scope="row">[^<]+</th><td class="num">(\d+)</td>', drawn[2])]
    assert len(over_versions) == len(versions) == 2 and over_versions[0] > over_versions[1]
    assert "Down " in drawn[2]
