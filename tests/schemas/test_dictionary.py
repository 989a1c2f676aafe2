"""The data dictionary of a standard: plain data, Markdown and HTML documents, and the files write_all writes."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from markupsafe import escape

from schemas.codelists import codes, rows
from schemas.dictionary import MAX_CODE_VALUES, SHOWN_CODE_VALUES, dictionary, to_html, to_markdown, write_all
from schemas.standards import list_standards, load_standard
from schemas.suite import expectation_specs

SATU_DATA = {
    "x-walidata": "Diskominfo", "x-produsen-data": ["Disdukcapil"], "x-frequency": "bulanan",
    "x-spatial-coverage": "Kota Bogor", "x-temporal-coverage": "2025", "x-license": "CC-BY-4.0",
    "x-classification": "publik",
}
KABUPATEN_BOGOR_DESA = {"name": "kode_wilayah", "edition": "2025", "level": "desa_kelurahan", "within": "32.01"}


@pytest.fixture(scope="module")
def penduduk():
    return load_standard("penduduk@1.0.0")


def write_standard(folder: Path, properties: dict, **top):
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "X", "description": "Standar uji.", "type": "object", "additionalProperties": False,
        "x-name": "x", "x-version": "1.0.0", "properties": properties, **SATU_DATA,
        # Every field is required unless its type admits null (null counts as absent).
        "required": [n for n, p in properties.items() if "null" not in p.get("type", [])], **top,
    }
    (folder / "x-1.0.0.json").write_text(json.dumps(schema), encoding="utf-8")
    [standard] = list_standards(folder)
    return standard


def field_section(markdown: str, name: str) -> str:
    """The Markdown section of one field, up to the next field's heading."""
    start = markdown.index(f"### `{name}`")
    end = markdown.find("\n### ", start + 1)
    return markdown[start:end if end != -1 else None]


class TagBalance(HTMLParser):
    """Counts unclosed and stray tags, so a template error that breaks the page is caught."""

    VOID = {"meta", "br", "link", "img", "hr", "input"}

    def __init__(self):
        super().__init__()
        self.stack, self.errors, self.tags = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)


def parsed(html: str) -> TagBalance:
    parser = TagBalance()
    parser.feed(html)
    parser.close()
    assert parser.errors == [] and parser.stack == [], (parser.errors, parser.stack)
    return parser


# --- plain data -----------------------------------------------------------------------------------------


def test_dictionary_is_plain_data_with_the_standard_and_its_metadata(penduduk):
    d = dictionary(penduduk)
    assert json.loads(json.dumps(d)) == d
    assert (d["name"], d["version"], d["title"], d["title_en"]) == ("penduduk", "1.0.0", "Penduduk", "Residents")
    assert d["description_en"].startswith("Residents of Kota Bogor")
    assert d["metadata"] == penduduk.metadata
    assert d["primary_key"] == ["nik"]
    assert [f["name"] for f in d["fields"]] == [f.name for f in penduduk.fields]


def test_fields_carry_rules_in_words_with_their_reason_codes(penduduk):
    fields = {f["name"]: f for f in dictionary(penduduk)["fields"]}
    nik = {r["reason"]: r["text"] for r in fields["nik"]["rules"]}
    assert nik == {"nik:required": "wajib diisi", "nik:pattern": "pola ^[0-9]{16}$",
                   "nik:duplicate_key": "unik (kunci utama)"}
    assert {r["reason"]: r["text"] for r in fields["nama"]["rules"]}["nama:length"] == "panjang 1–200"
    assert fields["nik"]["personal_data"] == "nik" and fields["tanggal_lahir"]["personal_data"] == "birth_date"
    assert fields["agama"]["personal_data"] is None
    assert fields["tanggal_lahir"]["format"] == "date"
    assert all(f["classification"] == "terbatas" and f["type"] == "string" for f in fields.values())


def test_every_reason_code_of_the_suite_is_in_the_dictionary(penduduk):
    in_dictionary = {r["reason"] for f in dictionary(penduduk)["fields"] for r in f["rules"]}
    assert in_dictionary == {s["reason"] for s in expectation_specs(penduduk)}


def test_kode_wilayah_lists_all_68_kota_bogor_kelurahan_with_their_names(penduduk):
    ref = penduduk.field("kode_wilayah").code_list
    code_list = next(f for f in dictionary(penduduk)["fields"] if f["name"] == "kode_wilayah")["code_list"]
    assert code_list["count"] == 68 <= MAX_CODE_VALUES
    assert not code_list["summarised"] and code_list["note"] is None
    assert [v["kode"] for v in code_list["values"]] == codes(ref)
    assert {"kode": "32.71.01.1001", "nama": "Batu Tulis"} in code_list["values"]
    assert (code_list["name"], code_list["edition"], code_list["owner"]) == (
        "kode_wilayah", "2025", "Kementerian Dalam Negeri")
    assert code_list["title"] == "Kode wilayah administrasi pemerintahan"


def test_agama_lists_its_seven_values(penduduk):
    code_list = next(f for f in dictionary(penduduk)["fields"] if f["name"] == "agama")["code_list"]
    assert code_list["count"] == 7
    assert [(v["kode"], v["nama"]) for v in code_list["values"]] == [(r["kode"], r["nama"]) for r in rows("agama", "1")]


def test_a_code_list_over_the_limit_is_summarised_with_its_count_and_first_values(tmp_path):
    standard = write_standard(tmp_path, {"desa": {
        "title": "Desa", "description": "Kode desa di Kabupaten Bogor.", "type": "string",
        "x-code-list": KABUPATEN_BOGOR_DESA}})
    allowed = codes(KABUPATEN_BOGOR_DESA)
    assert len(allowed) > MAX_CODE_VALUES
    code_list = dictionary(standard)["fields"][0]["code_list"]
    assert code_list["count"] == len(allowed) and code_list["summarised"]
    assert [v["kode"] for v in code_list["values"]] == allowed[:SHOWN_CODE_VALUES]
    assert str(len(allowed)) in code_list["note"] and str(len(allowed)) in code_list["note_en"]
    for document in (to_markdown(standard), to_html(standard)):
        assert allowed[SHOWN_CODE_VALUES - 1] in document
        assert allowed[SHOWN_CODE_VALUES] not in document
        assert f"{len(allowed)} kode" in document


def test_nullable_type_units_ranges_and_a_stricter_field_classification(tmp_path):
    standard = write_standard(tmp_path, {
        "kode": {"title": "Kode", "description": "Kode.", "type": "string", "enum": ["A", "B|C"]},
        "jumlah": {"title": "Jumlah", "description": "Jumlah anggota.", "type": ["integer", "null"],
                   "minimum": 0, "exclusiveMaximum": 100, "x-unit": "orang", "x-classification": "rahasia"},
    }, **{"x-primary-key": ["kode"]})
    fields = {f["name"]: f for f in dictionary(standard)["fields"]}
    assert fields["jumlah"]["type"] == "integer or null"
    assert fields["jumlah"]["unit"] == "orang"
    assert fields["jumlah"]["classification"] == "rahasia" and fields["kode"]["classification"] == "publik"
    assert {r["reason"]: r["text"] for r in fields["jumlah"]["rules"]} == {
        "jumlah:range": "minimum 0, kurang dari 100"}  # nullable: no required rule
    assert {r["reason"]: r["text"] for r in fields["kode"]["rules"]}["kode:enum"] == "salah satu dari A, B|C"
    markdown = to_markdown(standard)
    assert "`A, B|C`" in markdown  # a | outside tables stays as it is
    assert "orang" in markdown and "integer or null" in markdown


def test_a_compound_primary_key_gives_its_reason_to_each_of_its_fields(tmp_path):
    standard = write_standard(tmp_path, {
        "a": {"title": "A", "description": "A.", "type": "string"},
        "b": {"title": "B", "description": "B.", "type": "string"},
    }, **{"x-primary-key": ["a", "b"]})
    for f in dictionary(standard)["fields"]:
        assert "a+b:duplicate_key" in [r["reason"] for r in f["rules"]]
        assert f["primary_key"]


# --- documents ------------------------------------------------------------------------------------------


def test_every_field_is_in_both_documents_with_titles_and_both_descriptions(penduduk):
    markdown, html = to_markdown(penduduk), to_html(penduduk)
    for f in penduduk.fields:
        section = field_section(markdown, f.name)
        for text in (f.title, f.title_en, f.description, f.description_en, f.concept):
            assert text and text in section, (f.name, text)
            assert str(escape(text)) in html, (f.name, text)
        assert f'id="field-{f.name}"' in html


def test_documents_hold_the_metadata_codes_reasons_and_personal_data_kinds(penduduk):
    markdown, html = to_markdown(penduduk), to_html(penduduk)
    for document in (markdown, html):
        for value in penduduk.metadata.values():
            for part in [value] if isinstance(value, str) else value:
                assert str(escape(part)) in document if document is html else part in document
        for spec in expectation_specs(penduduk):
            assert spec["reason"] in document
        for name in ("Batu Tulis", "Kertamaya", "Kepercayaan terhadap Tuhan YME", "Perempuan"):
            assert name in document
        assert "^[0-9]{16}$" in document and "panjang 1–200" in document
    assert "`nik:pattern`" in field_section(markdown, "nik")
    assert "`32.71.06.1011` | Cibadak" in field_section(markdown, "kode_wilayah")
    assert "68 kode" in field_section(markdown, "kode_wilayah")
    for name, kind in (("nik", "nik"), ("nama", "name"), ("tanggal_lahir", "birth_date")):
        assert f"`{kind}`" in field_section(markdown, name)
        assert "Data pribadi" in field_section(markdown, name)
        assert re.search(rf'id="field-{name}">.*?<code>{kind}</code> \(', html, re.S)
    assert "Data pribadi" not in field_section(markdown, "agama")


def test_html_is_one_balanced_self_contained_page_without_scripts(penduduk):
    html = to_html(penduduk)
    assert html.startswith("<!doctype html>")
    tags = parsed(html).tags
    assert [t for t, _ in tags].count("style") == 1
    assert not {"script", "link", "img", "iframe"} & {t for t, _ in tags}
    assert all(not a.get("href", "#").startswith(("http", "//")) and "src" not in a for _, a in tags)
    assert "@import" not in html and "url(" not in html
    assert "@media print" in html


def test_html_fragment_is_the_article_with_its_style_only(penduduk):
    fragment = to_html(penduduk, fragment=True)
    tags = [t for t, _ in parsed(fragment).tags]
    assert tags[:2] == ["style", "article"] and "html" not in tags and "body" not in tags


def test_html_escapes_text_and_markdown_does_not_pass_raw_html(tmp_path):
    standard = write_standard(
        tmp_path,
        {"catatan": {"title": "Catatan <b>", "description": "Isi <script>alert('x')</script> & 1 < 2 | 3.",
                     "x-description-en": "Note <img src=x onerror=alert(1)>.", "type": "string",
                     "pattern": "^<[a-z]+>$"}},
        description="Standar <script>alert(1)</script>.", **{"x-title-en": "Test <i>standard</i>"},
    )
    html = to_html(standard)
    assert "<script" not in html and "<img" not in html and "<b>" not in html and "<i>" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; 1 &lt; 2 | 3." in html
    assert "Standar &lt;script&gt;alert(1)&lt;/script&gt;." in html
    assert "<code>^&lt;[a-z]+&gt;$</code>" in html
    parsed(html)
    markdown = to_markdown(standard)
    assert not re.search(r"(?<!\\)<[a-z/]", markdown)  # every tag-like < is backslash-escaped
    assert "Isi \\<script>alert('x')\\</script> \\& 1 \\< 2 | 3." in markdown
    assert "| Catatan \\<b> |" in markdown  # in the fields table
    assert "`^<[a-z]+>$`" in markdown  # code spans show their text as it is


@pytest.mark.parametrize("standard", list_standards(), ids=lambda s: s.ref)
def test_every_shipped_standard_renders(standard):
    d = dictionary(standard)
    markdown, html = to_markdown(standard), to_html(standard)
    parsed(html)
    for f in d["fields"]:
        assert f"### `{f['name']}`" in markdown and f'id="field-{f["name"]}"' in html
        if f["code_list"]:
            assert len(f["code_list"]["values"]) == min(f["code_list"]["count"],
                                                        SHOWN_CODE_VALUES if f["code_list"]["summarised"]
                                                        else MAX_CODE_VALUES)


# --- files ----------------------------------------------------------------------------------------------


def test_write_all_writes_each_standard_and_an_index_linking_to_them(tmp_path, penduduk):
    (tmp_path / "standards").mkdir()
    other = write_standard(tmp_path / "standards", {"kode": {"title": "Kode", "description": "Kode.", "type": "string"}})
    out = tmp_path / "out" / "kamus"
    paths = write_all(out, [penduduk, other])
    names = ["penduduk-1.0.0.md", "penduduk-1.0.0.html", "x-1.0.0.md", "x-1.0.0.html", "index.md", "index.html"]
    assert paths == [out / n for n in names]
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
    assert (out / "penduduk-1.0.0.md").read_text(encoding="utf-8") == to_markdown(penduduk)
    assert (out / "penduduk-1.0.0.html").read_text(encoding="utf-8") == to_html(penduduk)
    index_md, index_html = (out / "index.md").read_text(encoding="utf-8"), (out / "index.html").read_text(encoding="utf-8")
    for stem in ("penduduk-1.0.0", "x-1.0.0"):
        assert f"({stem}.md)" in index_md
        assert f'href="{stem}.html"' in index_html
    assert "Penduduk / *Residents*" in index_md
    parsed(index_html)


def test_write_all_defaults_to_every_standard(tmp_path):
    paths = write_all(tmp_path)
    expected = {f"{s.name}-{s.version}{suffix}" for s in list_standards() for suffix in (".md", ".html")}
    assert {p.name for p in paths} == expected | {"index.md", "index.html"}
    assert all(p.is_file() for p in paths)


def test_penduduk_dictionary_matches_its_golden_file():
    """A change to the dictionary of penduduk is a visible diff (UPDATE_GOLDEN=1 rewrites the file)."""
    import os

    golden = Path(__file__).parent / "golden" / "penduduk-1.0.0.dictionary.md"
    text = to_markdown(load_standard("penduduk@1.0.0"))
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")
