"""The portal's site settings (serving/site.yaml, or HUB_SITE): what the shipped file says, and a wrong file's
message naming the file and the key."""

from __future__ import annotations

import pytest

from hub.errors import ConfigError
from serving.site import site


def test_the_shipped_settings_name_the_city_its_walidata_and_where_to_ask_for_access(monkeypatch):
    monkeypatch.delenv("HUB_SITE", raising=False)
    shown = site()
    assert shown.city == "Kota Bogor" and shown.emblem is None
    assert shown.walidata["name"].startswith("Dinas Komunikasi") and shown.access_email
    assert [h.dataset for h in shown.headlines][:2] == ["penduduk", "penerima_bantuan_sosial"]
    assert all(h.title and h.title_en for h in shown.headlines)


@pytest.mark.parametrize(("text", "message"), [
    ("city: Kota Bogor\nwalidata: {name: X}\ncolour: blue\n", "unknown key 'colour'"),
    ("walidata: {name: X}\n", "`city` must name the city"),
    ("city: Kota Bogor\nwalidata: {email: a@b.id}\n", "`walidata` needs a name"),
    ("city: Kota Bogor\nwalidata: {name: X}\naccess_request: {url: 'javascript:alert(1)'}\n",
     "must be an http(s) address or a path of this site"),
    ("city: Kota Bogor\nwalidata: {name: X}\nheadlines: [{dataset: penduduk}]\n", "headline 1: write dataset"),
    ("city: Kota Bogor\nwalidata: {name: X}\nemblem: lambang.png\n", "`emblem` 'lambang.png': no PNG or SVG file"),
    ("city: [Kota\n", "not YAML"),
])
def test_a_wrong_settings_file_is_named_with_what_is_wrong(tmp_path, monkeypatch, text, message):
    path = tmp_path / "site.yaml"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv("HUB_SITE", str(path))
    with pytest.raises(ConfigError) as raised:
        site()
    assert str(path) in str(raised.value) and message in str(raised.value)


def test_an_emblem_beside_the_settings_file(tmp_path, monkeypatch):
    (tmp_path / "lambang.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>', encoding="utf-8")
    path = tmp_path / "site.yaml"
    path.write_text("city: Kota Bogor\nwalidata: {name: X}\nemblem: lambang.svg\n", encoding="utf-8")
    monkeypatch.setenv("HUB_SITE", str(path))
    assert site().emblem == tmp_path / "lambang.svg"
