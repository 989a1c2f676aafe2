"""The SVG maps of Kota Bogor: every area drawn from the shipped boundaries, classes, privacy, words, size."""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from serving.maps import LABELS, Point, choropleth, level_of, point_map

BOUNDARIES = Path(__file__).resolve().parents[2] / "schemas" / "boundaries"


def codes(level: str) -> list[str]:
    with open(BOUNDARIES / f"batas_kota_bogor_{level}.geojson", encoding="utf-8") as f:
        return sorted(feature["properties"]["kode"] for feature in json.load(f)["features"])


def number_id(value: float) -> str:
    """Indonesian digits, as the portal writes them: 1.234,5."""
    text = f"{value:,.1f}" if not float(value).is_integer() else f"{int(value):,}"
    return text.replace(",", " ").replace(".", ",").replace(" ", ".")


def number_en(value: float) -> str:
    return f"{value:,.1f}" if not float(value).is_integer() else f"{int(value):,}"


def parse(fragment) -> ET.Element:
    """The fragment as XML (it must be well-formed), namespaces dropped so tags read as in HTML."""
    root = ET.fromstring(f"<root>{fragment}</root>")
    for element in root.iter():
        element.tag = element.tag.rsplit("}", 1)[-1]
    return root


def text_of(element: ET.Element) -> str:
    return " ".join("".join(element.itertext()).split())


def areas(root: ET.Element) -> dict[str, ET.Element]:
    return {path.get("data-code"): path for path in root.iter("path") if path.get("data-code")}


def legend(root: ET.Element) -> list[str]:
    box = next(div for div in root.iter("div") if div.get("class") == "map-legend")
    return [text_of(li) for li in box.iter("li")]


def legend_fills(root: ET.Element) -> list[str]:
    box = next(div for div in root.iter("div") if div.get("class") == "map-legend")
    return [next(e.get("fill") for e in li.iter() if e.get("fill")) for li in box.iter("li")]


def table_rows(root: ET.Element) -> list[list[str]]:
    table = next(root.iter("table"))
    return [[text_of(cell) for cell in row] for row in table.find("tbody")]


def map_texts(root: ET.Element) -> list[str]:
    """The labels on the map, a name written on two lines (two tspans) read as one."""
    return [" ".join(text_of(span) for span in t.iter("tspan")) for t in next(root.iter("svg")).iter("text")]


@pytest.mark.parametrize("level, count", [("kelurahan", 68), ("kecamatan", 6)])
def test_every_area_is_drawn_with_its_code_a_title_a_label_and_a_row(level, count):
    expected = codes(level)
    assert len(expected) == count
    fragment = choropleth({code: i for i, code in enumerate(expected)}, level=level, caption="Peta",
                          lang="id", number=number_id)
    root = parse(fragment)
    drawn = areas(root)
    assert sorted(drawn) == expected
    for code, path in drawn.items():
        assert code in text_of(path.find("title"))
    rows = table_rows(root)
    assert [row[2] for row in rows] == expected
    texts = map_texts(root)
    for tag, name, code, *_ in rows:
        # a name on the map, or a number there that the table's first column gives
        assert (tag and tag in texts) or (not tag and name in texts), (code, name, tag)
    if level == "kecamatan":
        assert not any(row[0] for row in rows)  # every kecamatan carries its name
    else:
        outlines = [p for p in root.iter("path") if not p.get("data-code")]
        assert len(outlines) == 6  # the kecamatan drawn over the kelurahan


def test_the_figure_has_its_parts_for_people_and_screen_readers():
    root = parse(choropleth({"32.71.01": 3}, level="kecamatan", caption="Penduduk", lang="id", number=number_id))
    figure = root.find("figure")
    assert figure.get("class") == "map"
    assert text_of(figure.find("figcaption")) == "Penduduk"
    svg = figure.find("svg")
    assert svg.get("role") == "img"
    labelled = svg.get("aria-labelledby").split()
    ids = {e.get("id"): e for e in root.iter() if e.get("id")}
    assert [ids[i].tag for i in labelled] == ["title", "desc"]
    assert text_of(ids[labelled[0]]) == "Penduduk"
    table = next(root.iter("table"))
    assert table.find("caption") is not None
    assert all(th.get("scope") in ("col", "row") for th in table.iter("th"))
    assert table.get("aria-hidden") is None and table.get("hidden") is None


def test_five_quantile_classes_of_ten_distinct_values():
    kelurahan = codes("kelurahan")
    values = {code: i + 1 for i, code in enumerate(kelurahan[:10])}
    root = parse(choropleth(values, level="kelurahan", caption="x", lang="en", number=number_en))
    assert legend(root)[:5] == ["1 – 2", "3 – 4", "5 – 6", "7 – 8", "9 – 10"]
    assert legend(root)[5:] == ["no data"]
    fills = legend_fills(root)
    drawn = areas(root)
    for code, value in values.items():
        assert drawn[code].get("fill") == fills[(value - 1) // 2]
    assert len(set(fills[:5])) == 5
    rows = {row[2]: row for row in table_rows(root)}
    assert rows[kelurahan[0]][3:] == ["1", "1: 1 – 2"]
    assert rows[kelurahan[9]][3:] == ["10", "5: 9 – 10"]
    assert rows[kelurahan[10]][3] == "no data"
    assert "quantile classes" in text_of(root)


def test_classes_follow_distinct_values_not_areas():
    kelurahan = codes("kelurahan")
    # 68 areas, 3 distinct values: three classes of one value each
    root = parse(choropleth({code: [1000, 2500.5, 4000][i % 3] for i, code in enumerate(kelurahan)},
                            level="kelurahan", caption="x", lang="id", number=number_id))
    assert legend(root) == ["1.000", "2.500,5", "4.000"]


@pytest.mark.parametrize("values, expected", [
    ({"32.71.01": 7}, ["7", "tidak ada data"]),
    ({"32.71.01": 7, "32.71.02": 1234.5}, ["7", "1.234,5", "tidak ada data"]),
    ({code: 5 for code in ["32.71.01", "32.71.02", "32.71.03", "32.71.04", "32.71.05", "32.71.06"]}, ["5"]),
])
def test_one_two_and_all_equal_values(values, expected):
    root = parse(choropleth(values, level="kecamatan", caption="x", lang="id", number=number_id))
    assert legend(root) == expected
    fills = {areas(root)[code].get("fill") for code in values}
    assert len(fills) == len(set(values.values()))


def test_suppressed_areas_show_no_number_and_are_hatched():
    kecamatan = codes("kecamatan")
    secret = 987654.3
    values = {code: 10 * (i + 1) for i, code in enumerate(kecamatan)}
    values[kecamatan[2]] = secret  # a caller's slip: the renderer still must not show it
    values[kecamatan[3]] = None
    fragment = choropleth(values, level="kecamatan", caption="x", lang="en", number=number_en,
                          suppressed={kecamatan[2], kecamatan[3]})
    for shown in ("987654", "987,654", "987.654", number_en(secret), number_id(secret)):
        assert shown not in fragment
    root = parse(fragment)
    drawn = areas(root)
    patterns = {p.get("id") for p in root.iter("pattern")}
    for code in kecamatan[2:4]:
        fill = drawn[code].get("fill")
        assert re.fullmatch(r"url\(#(.+)\)", fill).group(1) in patterns
        assert "suppressed" in text_of(drawn[code].find("title"))
    rows = {row[2]: row for row in table_rows(root)}
    assert rows[kecamatan[2]][3] == "suppressed" and rows[kecamatan[3]][3] == "suppressed"
    entries = legend(root)
    assert entries[:4] == ["10", "20", "50", "60"]  # the classes know nothing of the suppressed areas
    assert entries[4] == "suppressed (small count, withheld for privacy)"
    assert legend_fills(root)[4] == drawn[kecamatan[2]].get("fill")


def test_areas_without_an_entry_have_no_data():
    kecamatan = codes("kecamatan")
    root = parse(choropleth({kecamatan[0]: 1, kecamatan[1]: None, "32.71.09": 5, "32.01.01": 5, "junk": 1},
                            level="kecamatan", caption="x", lang="id", number=number_id))
    drawn = areas(root)
    assert sorted(drawn) == kecamatan  # codes of no area here are ignored
    grey = legend_fills(root)[-1]
    assert legend(root) == ["1", "tidak ada data"]
    assert all(drawn[code].get("fill") == grey for code in kecamatan[1:])
    assert [row[3] for row in table_rows(root)][1:] == ["tidak ada data"] * 5


def test_every_text_is_escaped():
    hostile = '<script>alert("x")</script>'
    fragment = choropleth({"32.71.01": 1}, level="kecamatan", caption=hostile, lang="id",
                          number=lambda v: f"<b>{v}</b>", value_title="<i>t</i>")
    assert "<script" not in fragment and "<b>" not in fragment and "<i>" not in fragment
    assert "&lt;script&gt;" in fragment and "&lt;b&gt;1&lt;/b&gt;" in fragment
    parse(fragment)
    points = point_map([Point(106.8, -6.6, hostile, "<c>")], caption=hostile, lang="en",
                       categories={"<c>": "<u>kind</u>"})
    assert "<script" not in points and "<u>" not in points and "<c>" not in points
    assert text_of(parse(points).find(".//tbody/tr/th")) == hostile


def test_no_script_no_handler_no_outside_reference():
    fragment = str(choropleth({"32.71.01.1001": 1}, level="kelurahan", caption="x", lang="id", number=number_id)
                   + point_map([Point(106.8, -6.6, "a")], caption="y", lang="id"))
    root = parse(fragment)
    assert not list(root.iter("script")) and not list(root.iter("style"))
    for element in root.iter():
        assert not [name for name in element.attrib if name.lower().startswith("on")]
        assert not [v for v in element.attrib.values() if "http" in v and v != "http://www.w3.org/2000/svg"]
        assert element.get("style") is None  # the portal's Content-Security-Policy allows no inline style
    assert "href" not in fragment


def test_two_maps_on_a_page_have_distinct_ids_that_all_resolve():
    page = "".join(str(choropleth({}, level=level, caption="Sama", lang="id", number=number_id))
                   for level in ("kelurahan", "kelurahan", "kecamatan"))
    page += point_map([], caption="Sama", lang="id")
    root = parse(page)
    ids = [e.get("id") for e in root.iter() if e.get("id")]
    assert len(ids) == len(set(ids))
    for element in root.iter():
        for ref in (element.get("aria-labelledby") or "").split():
            assert ref in ids
        for ref in re.findall(r"url\(#([^)]+)\)", element.get("fill") or ""):
            assert ref in ids


def test_path_coordinates_have_one_decimal_and_stay_in_the_drawing():
    root = parse(choropleth({}, level="kelurahan", caption="x", lang="en", number=number_en))
    svg = next(root.iter("svg"))
    width, height = map(float, svg.get("viewBox").split()[2:])
    for path in svg.iter("path"):
        d = path.get("d")
        assert re.fullmatch(r"(M[^Mz]+z)+", d)
        assert not re.search(r"\d\.\d\d", d)
        x, y = (float(n) for n in re.match(r"M(-?[\d.]+)[ ]?(-?[\d.]+)", d).groups())
        assert 0 < x < width and 0 < y < height


def test_a_kelurahan_map_stays_small():
    kelurahan = codes("kelurahan")
    values = {code: 1234.5 * i for i, code in enumerate(kelurahan)}
    fragment = choropleth(values, level="kelurahan", caption="Jumlah penduduk per kelurahan", lang="id",
                          number=number_id, suppressed=kelurahan[:5], value_title="Penduduk")
    assert len(fragment.encode()) < 100_000
    svg = fragment[fragment.index("<svg"):fragment.index("</svg>")]
    assert len(svg.encode()) < 70_000


def test_point_map_leaves_out_points_outside_the_city_and_says_how_many():
    points = [Point(106.79, -6.59, "Puskesmas Bogor Tengah", "pkm"), Point(106.80, -6.60, "RS", "rs"),
              Point(106.81, -6.61, "Tanpa"), Point(107.6, -6.9, "Bandung", "rs"), Point(106.8, -6.2, "Jakarta"),
              Point(math.nan, -6.6, "Rusak")]
    for lang, number, sentence in (("id", number_id, "3 titik di luar Kota Bogor tidak digambar"),
                                   ("en", number_en, "3 points outside Kota Bogor not drawn")):
        fragment = point_map(points, caption="Fasilitas", lang=lang, number=number,
                             categories={"pkm": "Puskesmas", "rs": "Rumah sakit", "klinik": "Klinik"})
        root = parse(fragment)
        circles = list(next(root.iter("svg")).iter("circle"))
        assert [text_of(c.find("title")) for c in circles][0] == "Puskesmas Bogor Tengah (Puskesmas)"
        assert len(circles) == 3
        assert sentence in text_of(root)
        assert "Bandung" not in fragment and "Jakarta" not in fragment
        assert len({c.get("fill") for c in circles}) == 3
        rows = table_rows(root)
        assert rows[0] == ["Puskesmas Bogor Tengah", "Puskesmas", "-6.59000", "106.79000"]
        entries = legend(root)
        assert entries[:3] == ["Puskesmas (1)", "Rumah sakit (1)", "Klinik (0)"]
        assert entries[3] == f"{LABELS['no_category'][0 if lang == 'id' else 1]} (1)"
        paths = list(next(root.iter("svg")).iter("path"))
        assert len(paths) == 68 + 6  # kelurahan lines and kecamatan outlines
    one = point_map([Point(0, 0, "Null Island")], caption="x", lang="en")
    assert "1 point outside Kota Bogor not drawn" in one


def test_point_table_is_capped_and_says_how_many_are_not_listed():
    points = [Point(106.78 + i * 1e-4, -6.6, f"titik {i}") for i in range(250)]
    root = parse(point_map(points, caption="x", lang="en", number=number_en))
    assert len(list(next(root.iter("svg")).iter("circle"))) == 250
    assert len(table_rows(root)) == 200
    assert "50 more points are not listed in the table." in text_of(root)


@pytest.mark.parametrize("lang, index", [("id", 0), ("en", 1)])
def test_words_come_from_labels_in_the_page_language(lang, index):
    kecamatan = codes("kecamatan")
    root = parse(choropleth({kecamatan[0]: 1, kecamatan[1]: 2}, level="kecamatan", caption="x", lang=lang,
                            number=number_en, suppressed=[kecamatan[2]]))
    words = text_of(root)
    for key in ("legend", "quantile_classes", "no_data", "suppressed", "suppressed_why", "area", "code", "value",
                "class", "table"):
        assert LABELS[key][index] in words, key
    other = LABELS["quantile_classes"][1 - index]
    assert other not in words
    head = [text_of(th) for th in next(root.iter("thead")).iter("th")]
    assert head == [LABELS[key][index] for key in ("label_number", "area", "code", "value", "class")]


def test_every_label_has_both_languages():
    assert LABELS
    for key, texts in LABELS.items():
        assert len(texts) == 2 and all(isinstance(t, str) and t.strip() for t in texts), key


def test_an_unknown_language_or_level_is_refused():
    with pytest.raises(ValueError):
        choropleth({}, level="kecamatan", caption="x", lang="fr", number=str)
    with pytest.raises(ValueError):
        choropleth({}, level="provinsi", caption="x", lang="id", number=str)
    with pytest.raises(ValueError):
        point_map([], caption="x", lang="jv")


@pytest.mark.parametrize("code, level", [
    ("32.71.01", "kecamatan"), ("32.71.06", "kecamatan"), ("32.71.01.1001", "kelurahan"),
    ("32.71.06.1011", "kelurahan"), ("32.71", None), ("32.71.07", None), ("32.71.01.9999", None),
    ("32.01.01", None), ("3271011001", None), ("32.71.01.1001 ", None), ("", None),
])
def test_level_of(code, level):
    assert level_of(code) == level


def test_level_of_knows_every_shipped_code():
    assert all(level_of(code) == "kelurahan" for code in codes("kelurahan"))
    assert all(level_of(code) == "kecamatan" for code in codes("kecamatan"))
