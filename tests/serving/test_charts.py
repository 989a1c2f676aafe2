"""The SVG charts: well-formed, drawn to scale, suppressed cells never shown, sentences in both languages."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
from markupsafe import Markup

from serving.charts import LABELS, Bar, Point, bar_chart, pyramid, trend

SVG = "{http://www.w3.org/2000/svg}"
GROUPS = ["0-4", "5-9", "10-14", "15-19"]


def number_id(value: float) -> str:
    """How the portal writes a number in Indonesian: 1.234,5."""
    text = f"{value:,}"
    return text.replace(",", "\0").replace(".", ",").replace("\0", ".")


def number_en(value: float) -> str:
    return f"{value:,}"


def tagged(value: float) -> str:
    """A number the test can recognise anywhere: the charts must write numbers only through this function."""
    return f"#{value}"


def parse(fragment: Markup) -> ET.Element:
    assert isinstance(fragment, Markup)
    return ET.fromstring(str(fragment))


def svg_of(figure: ET.Element) -> ET.Element:
    return figure.find(f"{SVG}svg")


def bars_of(figure: ET.Element) -> list[ET.Element]:
    return [r for r in svg_of(figure).iter(f"{SVG}rect") if r.get("class") == "bar"]


def hatches_of(figure: ET.Element) -> list[ET.Element]:
    return [r for r in svg_of(figure).iter(f"{SVG}rect") if r.get("class") == "hatch"]


def text_of(element: ET.Element) -> str:
    return " ".join(" ".join(element.itertext()).split())


def table_rows(figure: ET.Element) -> list[list[str]]:
    return [[text_of(cell) for cell in tr] for tr in figure.find("table").find("tbody")]


def baselines(figure: ET.Element) -> list[float]:
    return [float(line.get("x1")) for line in svg_of(figure).iter(f"{SVG}line") if line.get("class") == "baseline"]


def sample_bars(lang: str = "id", number=number_id, **extra) -> Markup:
    bars = [Bar("Bogor Tengah", 100, code="3271010"), Bar("Bogor Barat", 250, code="3271020"),
            Bar("Bogor Timur", None, suppressed=True, code="3271040"), Bar("Bogor Selatan", None),
            Bar("Bogor Utara", 50)]
    # The caller's words follow the language too.
    caption, title = ("Penduduk", "Orang") if lang == "id" else ("Population", "Persons")
    return bar_chart(bars, caption=caption, value_title=title, lang=lang, number=number, **extra)


def sample_pyramid(lang: str = "id", number=number_id) -> Markup:
    left = [Bar(g, v) for g, v in zip(GROUPS, [400, 300, 200, 100])]
    right = [Bar("0-4", 400), Bar("5-9", None, suppressed=True), Bar("10-14", 100), Bar("15-19", None)]
    return pyramid(GROUPS, left, right, caption="Pyramid", left_title="Men", right_title="Women", lang=lang,
                   number=number)


def sample_trend(values, lang: str = "id", number=number_id, suppressed=()) -> Markup:
    points = [Point(f"v{i + 1}", v, suppressed=i in suppressed) for i, v in enumerate(values)]
    return trend(points, caption="Trend", value_title="Persons", lang=lang, number=number)


def sentence(fragment: Markup) -> str:
    return text_of(parse(fragment).find("p"))


ALL = [sample_bars, sample_pyramid, lambda **k: sample_trend([10, 12, None, 15, 9], suppressed={2}, **k)]


@pytest.mark.parametrize("make", ALL, ids=["bar", "pyramid", "trend"])
def test_each_chart_is_a_well_formed_figure_with_svg_title_desc_caption_and_table(make):
    figure = parse(make())
    assert figure.tag == "figure" and figure.get("class").startswith("chart chart-")
    assert figure[0].tag == "figcaption"  # a figcaption is the first or the last child
    svg = svg_of(figure)
    assert svg.get("role") == "img" and svg.get("width") == "100%" and svg.get("viewBox").startswith("0 0 ")
    label_ids = svg.get("aria-labelledby").split()
    ids = {e.get("id"): e for e in figure.iter() if e.get("id")}
    assert [ids[i].tag for i in label_ids] == [f"{SVG}title", f"{SVG}desc"]
    assert text_of(ids[label_ids[1]]).endswith(".")
    table = figure.find("table")
    assert text_of(table.find("caption"))
    assert all(th.get("scope") == "col" for th in table.find("thead").iter("th"))
    assert all(tr[0].tag == "th" and tr[0].get("scope") == "row" for tr in table.find("tbody"))


@pytest.mark.parametrize("make", ALL, ids=["bar", "pyramid", "trend"])
def test_no_script_handler_or_outside_reference(make):
    text = str(make())
    assert "<script" not in text.lower() and "style=" not in text
    assert not re.search(r"\son\w+=", text)
    assert not re.search(r"(href|src)=", text)
    for ref in re.findall(r"url\(#([^)]+)\)", text):
        assert f'id="{ref}"' in text


@pytest.mark.parametrize("make", ALL, ids=["bar", "pyramid", "trend"])
def test_text_is_at_least_12px_and_has_contrast_against_white(make):
    svg = svg_of(parse(make()))
    base = float(svg.get("font-size"))
    for text in svg.iter(f"{SVG}text"):
        assert float(text.get("font-size", base)) >= 12
        assert contrast(text.get("fill"), "#ffffff") >= 4.5
    for rect in svg.iter(f"{SVG}rect"):
        if rect.get("class") == "bar":  # graphics need 3:1 against the background
            assert contrast(rect.get("fill"), "#ffffff") >= 3


@pytest.mark.parametrize("make", ALL, ids=["bar", "pyramid", "trend"])
def test_numbers_are_written_only_through_the_callers_function(make):
    text = text_of(parse(make(lang="en", number=tagged)))
    text = re.sub(r"#-?[\d.]+(e-?\d+)?", "", text).replace("(< 5)", "").replace("fewer than 5", "")
    text = re.sub(r"\b\d+-\d+\b", "", text)  # age groups and labels are the caller's text
    text = re.sub(r"\bv\d\b|\b327\d{4}\b", "", text)  # versions and codes too
    assert not re.search(r"\d", text), text


def test_ids_differ_between_figures_of_one_page():
    page = "".join(str(make()) for make in ALL * 2)
    ids = re.findall(r'\sid="([^"]+)"', page)
    assert len(ids) == len(set(ids))


def test_bar_lengths_are_proportional_to_values_and_in_the_given_order():
    figure = parse(sample_bars())
    widths = [float(r.get("width")) for r in bars_of(figure)]
    assert len(widths) == 3
    assert widths[1] / widths[0] == pytest.approx(2.5, rel=0.01)
    assert widths[2] / widths[0] == pytest.approx(0.5, rel=0.01)
    [base] = baselines(figure)
    assert all(float(r.get("x")) == pytest.approx(base) for r in bars_of(figure))
    assert [row[0] for row in table_rows(figure)] == ["Bogor Tengah", "Bogor Barat", "Bogor Timur",
                                                      "Bogor Selatan", "Bogor Utara"]
    assert table_rows(figure)[1] == ["Bogor Barat", "3271020", "250"]
    desc = text_of(svg_of(figure).find(f"{SVG}desc"))
    assert "Terbesar: Bogor Barat (250); terkecil: Bogor Utara (50)." in desc


def test_negative_values_grow_left_of_a_baseline_in_the_middle():
    figure = parse(bar_chart([Bar("up", 100), Bar("down", -50), Bar("flat", 0)], caption="Change",
                             value_title="Difference", lang="en", number=number_en))
    [base] = baselines(figure)
    up, down, flat = bars_of(figure)
    assert float(up.get("x")) == pytest.approx(base)
    assert float(down.get("x")) + float(down.get("width")) == pytest.approx(base, abs=0.11)
    assert float(down.get("width")) * 2 == pytest.approx(float(up.get("width")), abs=0.2)
    assert float(flat.get("width")) == 0
    values = [text_of(t) for t in svg_of(figure).iter(f"{SVG}text") if t.get("class") == "value"]
    assert values == ["100", "-50", "0"]
    down_value = [t for t in svg_of(figure).iter(f"{SVG}text") if text_of(t) == "-50"][0]
    assert float(down_value.get("x")) < float(down.get("x"))  # written at the bar's end, on its left
    assert table_rows(figure) == [["up", "100"], ["down", "-50"], ["flat", "0"]]


def test_all_zero_bars_draw_nothing_long_and_still_say_zero():
    figure = parse(bar_chart([Bar("a", 0), Bar("b", 0)], caption="Zero", value_title="Count", lang="en",
                             number=number_en))
    assert [float(r.get("width")) for r in bars_of(figure)] == [0, 0]
    assert "Every value shown is the same: 0." in text_of(svg_of(figure).find(f"{SVG}desc"))


def test_a_suppressed_bar_is_a_hatched_stub_with_the_word_and_no_number():
    for lang, word in (("id", "disembunyikan (< 5)"), ("en", "suppressed (< 5)")):
        figure = parse(sample_bars(lang=lang, number=number_id if lang == "id" else number_en))
        [stub] = hatches_of(figure)
        assert re.fullmatch(r"url\(#chart-\d+-hatch\)", stub.get("fill"))
        rows = [g for g in svg_of(figure).iter(f"{SVG}g") if g.get("class") == "row"]
        hidden = text_of(rows[2])
        assert "Bogor Timur" in hidden and word in hidden
        assert not re.search(r"\d", hidden.replace("< 5", ""))
        assert table_rows(figure)[2] == ["Bogor Timur", "3271040", word]
        assert table_rows(figure)[3][2] == ("tidak ada data" if lang == "id" else "no data")
    # Never drawn to scale: the stub is as long whatever the other values are.
    small = hatches_of(parse(sample_bars()))[0].get("width")
    big = hatches_of(parse(bar_chart([Bar("a", 10**9), Bar("b", None, suppressed=True)], caption="c",
                                     value_title="v", lang="id", number=number_id)))[0].get("width")
    assert small == big


def test_a_long_label_is_wrapped_or_shortened_and_kept_whole_in_the_title():
    long = "Kelurahan dengan nama yang sangat panjang sekali sehingga tidak muat dalam satu baris"
    figure = parse(bar_chart([Bar(long, 3)], caption="c", value_title="v", lang="id", number=number_id))
    row = next(g for g in svg_of(figure).iter(f"{SVG}g") if g.get("class") == "row")
    assert text_of(row.find(f"{SVG}title")).startswith(long)
    spans = list(row.find(f"{SVG}text").iter(f"{SVG}tspan"))
    assert 1 < len(spans) <= 2 and text_of(spans[-1]).endswith("…")


def test_text_is_escaped():
    figure = bar_chart([Bar("<script>alert(1)</script> & co", 1, code='"x"')], caption="<b>caption</b>",
                       value_title="a < b", lang="en", number=number_en)
    assert "<script" not in str(figure) and "<b>" not in str(figure)
    parsed = parse(figure)
    assert table_rows(parsed) == [["<script>alert(1)</script> & co", '"x"', "1"]]
    assert text_of(parsed.find("figcaption")) == "<b>caption</b>"


def test_pyramid_sides_share_one_scale_and_the_youngest_is_at_the_bottom():
    figure = parse(sample_pyramid())
    inner_left, inner_right = sorted(baselines(figure))
    groups = {g.get("data-group"): g for g in svg_of(figure).iter(f"{SVG}g") if g.get("data-group")}
    assert list(groups) == GROUPS

    def y(group: str) -> float:
        return float(next(groups[group].iter(f"{SVG}text")).get("y"))

    assert y("0-4") > y("5-9") > y("10-14") > y("15-19")
    left_bar = next(r for r in groups["0-4"].find(f"{SVG}g[@class='left']").iter(f"{SVG}rect"))
    right_bar = next(r for r in groups["0-4"].find(f"{SVG}g[@class='right']").iter(f"{SVG}rect"))
    assert float(left_bar.get("x")) + float(left_bar.get("width")) == pytest.approx(inner_left, abs=0.11)
    assert float(right_bar.get("x")) == pytest.approx(inner_right)
    assert float(left_bar.get("width")) == pytest.approx(float(right_bar.get("width")))  # 400 and 400
    small_left = groups["15-19"].find(f"{SVG}g[@class='left']").find(f"{SVG}rect")
    assert float(small_left.get("width")) * 4 == pytest.approx(float(left_bar.get("width")), abs=0.3)
    side_titles = [text_of(t) for t in svg_of(figure).iter(f"{SVG}text") if t.get("class") == "side-title"]
    assert side_titles == ["Men", "Women"]
    hidden = groups["5-9"].find(f"{SVG}g[@class='right']")
    assert hidden.find(f"{SVG}rect").get("class") == "hatch"
    assert "disembunyikan (< 5)" in text_of(hidden)
    assert table_rows(figure) == [["0-4", "400", "400"], ["5-9", "300", "disembunyikan (< 5)"],
                                  ["10-14", "200", "100"], ["15-19", "100", "tidak ada data"]]
    assert [text_of(th) for th in parse(sample_pyramid()).find("table").find("thead").iter("th")] == [
        "Kelompok umur", "Men", "Women"]


def test_pyramid_refuses_sides_of_other_lengths_and_negative_counts():
    with pytest.raises(ValueError):
        pyramid(GROUPS, [Bar("0-4", 1)], [Bar("0-4", 1)], caption="c", left_title="l", right_title="r",
                lang="id", number=number_id)
    with pytest.raises(ValueError):
        pyramid(["0-4"], [Bar("0-4", -1)], [Bar("0-4", 1)], caption="c", left_title="l", right_title="r",
                lang="id", number=number_id)


@pytest.mark.parametrize(("values", "lang", "expected"), [
    ([100, 112], "en", "Up 12 (+12.0%) on the one before (v1)."),
    ([100, 112], "id", "Naik 12 (+12,0%) dibanding sebelumnya (v1)."),
    ([1000, 966], "en", "Down 34 (-3.4%) on the one before (v1)."),
    ([1000, 966], "id", "Turun 34 (-3,4%) dibanding sebelumnya (v1)."),
    ([7, 7], "en", "Unchanged on the one before (v1)."),
    ([7, 7], "id", "Tidak berubah dibanding sebelumnya (v1)."),
    ([0, 25], "en", "Up 25 on the one before (v1)."),  # no percentage of zero
    ([1.1, 1.3], "en", "Up 0.2 (+18.2%) on the one before (v1)."),  # no binary noise
    ([12345], "en", "Only one value so far."),
    ([12345], "id", "Baru satu nilai."),
])
def test_trend_sentence_for_the_last_change(values, lang, expected):
    number = number_id if lang == "id" else number_en
    assert sentence(sample_trend(values, lang=lang, number=number)) == expected


def test_trend_with_a_suppressed_last_point_compares_the_last_two_shown_values():
    fragment = sample_trend([100, 120, None], lang="en", number=number_en, suppressed={2})
    assert sentence(fragment) == ("The latest value (v3) is suppressed (< 5). Up 20 (+20.0%) from v1 to v2.")
    fragment = sample_trend([100, None], lang="id", number=number_id, suppressed={1})
    assert sentence(fragment) == ("Nilai terakhir (v2) disembunyikan (< 5). "
                                  "Belum ada dua nilai yang dapat dibandingkan.")
    assert table_rows(parse(fragment)) == [["v1", "100"], ["v2", "disembunyikan (< 5)"]]


def test_trend_breaks_its_line_at_a_gap_and_marks_every_point():
    figure = parse(sample_trend([10, 12, None, 15, 9, None], suppressed={2}))
    svg = svg_of(figure)
    lines = [p.get("points").split() for p in svg.iter(f"{SVG}polyline")]
    assert [len(points) for points in lines] == [2, 2]
    assert len(list(svg.iter(f"{SVG}circle"))) == 4
    assert len(hatches_of(figure)) == 2  # the suppressed point and the legend
    ys = {float(c.get("cy")): c for c in svg.iter(f"{SVG}circle")}
    assert text_of(ys[max(ys)].find(f"{SVG}title")) == "v5: 9"  # the lowest value is drawn lowest
    assert sentence(trend([Point("a", 3), Point("b", 5), Point("c", None)], caption="c", value_title="v",
                          lang="en", number=number_en)) == \
        "The latest value (c) has no data. Up 2 (+66.7%) from a to b."


def test_a_single_point_draws_no_line():
    svg = svg_of(parse(sample_trend([5])))
    assert not list(svg.iter(f"{SVG}polyline")) and len(list(svg.iter(f"{SVG}circle"))) == 1


def test_many_periods_keep_only_some_x_labels_and_always_the_latest():
    points = [Point(f"2024-{m:02d}", m) for m in range(1, 13)] + [Point(f"2025-{m:02d}", m) for m in range(1, 13)]
    svg = svg_of(parse(trend(points, caption="c", value_title="v", lang="en", number=number_en)))
    labels = [text_of(t) for t in svg.iter(f"{SVG}text") if t.get("class") == "x-label"]
    assert "2025-12" in labels and 2 <= len(labels) < len(points)


def test_empty_input_renders_a_sentence_instead_of_failing():
    for fragment in (bar_chart([], caption="c", value_title="v", lang="en", number=number_en),
                     trend([], caption="c", value_title="v", lang="en", number=number_en),
                     pyramid([], [], [], caption="c", left_title="l", right_title="r", lang="en",
                             number=number_en)):
        assert "There are no values to show." in text_of(parse(fragment))


def test_an_unknown_language_is_refused():
    with pytest.raises(ValueError, match="'fr'"):
        sample_bars(lang="fr")


def test_every_label_has_both_languages():
    for key, (indonesian, english) in LABELS.items():
        assert indonesian.strip() and english.strip(), key
        assert sorted(re.findall(r"{\w+}", indonesian)) == sorted(re.findall(r"{\w+}", english)), key


def test_english_output_holds_no_indonesian_word():
    english_words = {w.lower() for _, en in LABELS.values() for w in re.findall(r"[A-Za-z]+", en)}
    indonesian = {w.lower() for idn, _ in LABELS.values()
                  for w in re.findall(r"[A-Za-z]+", re.sub(r"{\w+}", "", idn))}
    indonesian -= english_words
    assert {"disembunyikan", "naik", "turun", "dibanding", "kelompok"} <= indonesian
    fragments = [sample_bars(lang="en", number=number_en), sample_pyramid(lang="en", number=number_en),
                 *(sample_trend(v, lang="en", number=number_en, suppressed=s)
                   for v, s in (([1, 2], ()), ([2, 1], ()), ([1, 1], ()), ([1], ()), ([1, None], {1}),
                                ([1, 2, None], {2})))]
    for fragment in fragments:
        words = {w.lower() for w in re.findall(r"[A-Za-z]+", text_of(parse(fragment)))}
        assert not words & indonesian, words & indonesian


def contrast(foreground: str, background: str) -> float:
    """WCAG 2 contrast ratio of two #rrggbb colours."""
    def luminance(colour: str) -> float:
        channels = [int(colour[k:k + 2], 16) / 255 for k in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    a, b = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (a + 0.05) / (b + 0.05)
