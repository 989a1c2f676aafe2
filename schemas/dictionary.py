"""The data dictionary of a standard (plain data, Markdown, HTML) for analysts and stewards."""

from __future__ import annotations

import json
from pathlib import Path

from jinja2 import Environment, StrictUndefined

from schemas.codelists import codes, describe, rows
from schemas.standards import Standard, list_standards
from schemas.suite import expectation_specs

__all__ = ["MAX_CODE_VALUES", "SHOWN_CODE_VALUES", "dictionary", "to_html", "to_markdown", "write_all"]

# A code list longer than this (after narrowing) is summarised: a dictionary is read, not searched.
MAX_CODE_VALUES = 100
SHOWN_CODE_VALUES = 20

# Labels of the Satu Data metadata (keys as in Standard.metadata): Indonesian, English.
_METADATA_LABELS = {
    "walidata": ("Walidata", "Data steward"),
    "produsen-data": ("Produsen data", "Data producers"),
    "frequency": ("Frekuensi pembaruan", "Update frequency"),
    "spatial-coverage": ("Cakupan wilayah", "Spatial coverage"),
    "temporal-coverage": ("Cakupan waktu", "Temporal coverage"),
    "license": ("Lisensi", "Licence"),
    "classification": ("Klasifikasi", "Classification"),
}
_FREQUENCY_EN = {
    "harian": "daily", "mingguan": "weekly", "bulanan": "monthly", "triwulanan": "quarterly",
    "semesteran": "half-yearly", "tahunan": "yearly", "tidak_tetap": "irregular",
}
_CLASSIFICATION_LABELS = {
    "publik": ("siapa saja", "anyone"),
    "terbatas": ("pengguna pemerintah", "government users"),
    "rahasia": ("instansi tertentu saja", "named agencies only"),
}
_PERSONAL_DATA_LABELS = {
    "nik": ("NIK", "national identity number"),
    "name": ("nama", "name"),
    "address": ("alamat", "address"),
    "phone": ("nomor telepon", "phone number"),
    "birth_date": ("tanggal lahir", "date of birth"),
    "email": ("surel", "email"),
}


# --- plain data -----------------------------------------------------------------------------------------


def dictionary(standard: Standard) -> dict:
    """The data dictionary of a standard as plain data (JSON-serialisable); it describes fields, never records."""
    schema = standard.schema
    rules = _rules_by_field(standard)
    return {
        "name": standard.name,
        "version": standard.version,
        "ref": standard.ref,
        "title": standard.title,
        "title_en": schema.get("x-title-en", ""),
        "description": standard.description,
        "description_en": schema.get("x-description-en", ""),
        "metadata": standard.metadata,
        "tags": list(schema.get("x-tags", [])),
        "primary_key": list(standard.primary_key),
        "fields": [
            {
                "name": f.name,
                "title": f.title,
                "title_en": f.title_en,
                "description": f.description,
                "description_en": f.description_en,
                "concept": f.concept,
                "type": f"{f.type} or null" if f.nullable else f.type,
                "format": f.format,
                "required": f.required,
                "primary_key": f.name in standard.primary_key,
                "unit": f.unit,
                "personal_data": f.personal_data,
                "classification": f.classification or standard.classification,
                "rules": rules.get(f.name, []),
                "code_list": _code_list(f.code_list) if f.code_list else None,
            }
            for f in standard.fields
        ],
    }


def _rules_by_field(standard: Standard) -> dict[str, list[dict]]:
    """Each field's rules in words, in the suite's order, with the reason code a failure reports."""
    by_field: dict[str, list[dict]] = {}
    for spec in expectation_specs(standard):
        kwargs = spec["kwargs"]
        columns = kwargs.get("column_list") or [kwargs["column"]]
        rule = spec["reason"].rpartition(":")[2]
        for column in columns:
            label, label_en, value = _describe_rule(rule, standard.field(column), columns)
            by_field.setdefault(column, []).append({
                "rule": rule,
                "reason": spec["reason"],
                "text": f"{label} {value}" if value is not None else label,
                "text_en": f"{label_en} {value}" if value is not None else label_en,
                # The literal part (a pattern, the allowed values), kept apart so documents can set it as code.
                "label": label,
                "label_en": label_en,
                "value": value,
            })
    return by_field


def _describe_rule(rule: str, field, key: list[str]) -> tuple[str, str, str | None]:
    """(Indonesian label, English label, literal value or None) of one rule of a field."""
    c = field.constraints
    if rule == "required":
        return "wajib diisi", "required", None
    if rule == "const":
        return "bernilai tetap", "fixed value", _literal(c["const"])
    if rule == "enum":
        return "salah satu dari", "one of", ", ".join(_literal(v) for v in c["enum"])
    if rule == "code_list":
        ref = field.code_list
        where, where_en = [f"edisi {ref['edition']}"], [f"edition {ref['edition']}"]
        if ref.get("level"):
            where.append(f"tingkat {ref['level']}")
            where_en.append(f"level {ref['level']}")
        if ref.get("within"):
            where.append(f"di bawah {ref['within']}")
            where_en.append(f"within {ref['within']}")
        return (f"kode dari daftar kode {ref['name']} ({', '.join(where)})",
                f"a code of code list {ref['name']} ({', '.join(where_en)})", None)
    if rule == "pattern":
        return "pola", "pattern", c["pattern"]
    if rule == "format":
        return _FORMATS[field.format]
    if rule == "multiple_of":
        return "kelipatan", "a multiple of", _literal(c["multipleOf"])
    if rule == "length":
        low, high = c.get("minLength"), c.get("maxLength")
        if low is not None and high is not None:
            return f"panjang {low}–{high}", f"length {low}–{high}", None
        if low is not None:
            return f"panjang minimal {low}", f"length at least {low}", None
        return f"panjang maksimal {high}", f"length at most {high}", None
    if rule == "range":
        words = {"minimum": ("minimum", "minimum"), "maximum": ("maksimum", "maximum"),
                 "exclusiveMinimum": ("lebih dari", "greater than"), "exclusiveMaximum": ("kurang dari", "less than")}
        parts = [(f"{words[k][0]} {_literal(c[k])}", f"{words[k][1]} {_literal(c[k])}") for k in words if k in c]
        return ", ".join(p[0] for p in parts), ", ".join(p[1] for p in parts), None
    if rule == "duplicate_key":
        if len(key) == 1:
            return "unik (kunci utama)", "unique (the primary key)", None
        return (f"kombinasi {', '.join(key)} unik (kunci utama)",
                f"the combination {', '.join(key)} is unique (the primary key)", None)
    return rule, rule, None  # a rule the suite learnt after this module: still listed, with its reason code


_FORMATS = {
    "date": ("tanggal ISO 8601 (YYYY-MM-DD), hari kalender yang sah",
             "ISO 8601 date (YYYY-MM-DD), a real calendar day", None),
    "date-time": ("tanggal dan waktu RFC 3339 (YYYY-MM-DDThh:mm:ssZ)", "RFC 3339 date and time", None),
    "email": ("alamat surel (memuat @)", "e-mail address (contains @)", None),
}


def _literal(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _code_list(ref: dict) -> dict:
    """A code list as the field narrows it: all its values, or the count and the first few when it is long."""
    name, edition = ref["name"], str(ref["edition"])
    info = describe(name, edition)
    names = {r["kode"]: r.get("nama", "") for r in rows(name, edition)}
    values = [{"kode": kode, "nama": names[kode]} for kode in codes(ref)]
    summarised = len(values) > MAX_CODE_VALUES
    note = note_en = None
    if summarised:
        command = f"hub codelists show {name} --edition {edition}"
        note = (f"{len(values)} kode; hanya {SHOWN_CODE_VALUES} kode pertama yang ditampilkan. "
                f"Daftar lengkap: {command}")
        note_en = f"{len(values)} codes; only the first {SHOWN_CODE_VALUES} are shown. The full list: {command}"
    return {
        "name": name,
        "edition": edition,
        "title": info["title"],
        "owner": info["owner"],
        "legal_basis": info.get("legal_basis"),
        "attribution": info.get("attribution"),
        "level": ref.get("level"),
        "within": ref.get("within"),
        "count": len(values),
        "summarised": summarised,
        "values": values[:SHOWN_CODE_VALUES] if summarised else values,
        "note": note,
        "note_en": note_en,
    }


# --- documents ------------------------------------------------------------------------------------------


def _context(standard: Standard) -> dict:
    return {
        "d": dictionary(standard),
        "metadata_labels": _METADATA_LABELS,
        "frequency_en": _FREQUENCY_EN,
        "classification_labels": _CLASSIFICATION_LABELS,
        "personal_data_labels": _PERSONAL_DATA_LABELS,
    }


def to_markdown(standard: Standard) -> str:
    """The data dictionary as a Markdown document in Indonesian with English beside it."""
    return _MD_DOCUMENT.render(_context(standard)).rstrip() + "\n"


def to_html(standard: Standard, *, fragment: bool = False) -> str:
    """The data dictionary as one self-contained HTML page (inline CSS, no scripts, no external resources).

    With `fragment`, only the style and the article, to place inside a catalog page.
    """
    return _HTML_DOCUMENT.render(_context(standard), fragment=fragment)


def write_all(folder: Path, standards: list[Standard] | None = None) -> list[Path]:
    """Write NAME-VERSION.md and NAME-VERSION.html for every standard, and index.md and index.html."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    standards = list_standards() if standards is None else list(standards)
    written = []
    for standard in standards:
        for suffix, render in ((".md", to_markdown), (".html", to_html)):
            path = folder / f"{standard.name}-{standard.version}{suffix}"
            path.write_text(render(standard), encoding="utf-8")
            written.append(path)
    entries = [
        {
            "name": s.name, "version": s.version, "title": s.title, "title_en": s.schema.get("x-title-en", ""),
            "description": s.description, "classification": s.classification, "fields": len(s.fields),
            "file": f"{s.name}-{s.version}",
        }
        for s in standards
    ]
    for name, template in (("index.md", _MD_INDEX), ("index.html", _HTML_INDEX)):
        path = folder / name
        path.write_text(template.render(entries=entries), encoding="utf-8")
        written.append(path)
    return written


# --- Markdown -------------------------------------------------------------------------------------------


def _md(text) -> str:
    """Text as Markdown prose: one line, no raw HTML or entities (a catalog may render it to HTML)."""
    return " ".join(str(text).split()).replace("\\", "\\\\").replace("<", "\\<").replace("&", "\\&")


def _md_cell(text) -> str:
    return _md(text).replace("|", "\\|")


def _md_code(text, cell: bool = False) -> str:
    text = " ".join(str(text).split())
    code = f"`` {text} ``" if "`" in text else f"`{text}`"
    # GFM splits table cells on | even inside code spans, unless it is escaped.
    return code.replace("|", "\\|") if cell else code


# Markdown is not HTML: escaping is done by the filters above, so autoescape stays off here.
_MARKDOWN = Environment(autoescape=False, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                        undefined=StrictUndefined)
_MARKDOWN.filters.update(md=_md, cell=_md_cell, code=_md_code)

_MD_DOCUMENT = _MARKDOWN.from_string("""\
{% macro classification(value) %}{{ value }} ({{ classification_labels[value][0] }} / *{{ classification_labels[value][1] }}*){% endmacro %}
# Kamus data: {{ d.title|md }}{% if d.title_en %} / *Data dictionary: {{ d.title_en|md }}*{% endif %}


Standar / *Standard* {{ d.ref|code }}

{{ d.description|md }}

{% if d.description_en %}
*{{ d.description_en|md }}*

{% endif %}
## Metadata

| Unsur / *Item* | Nilai / *Value* |
| --- | --- |
| Nama / *Name* | {{ d.name|code(true) }} |
| Versi / *Version* | {{ d.version|cell }} |
{% for key, value in d.metadata.items() %}
{% set label = metadata_labels.get(key, (key, key)) %}
| {{ label[0]|cell }} / *{{ label[1]|cell }}* | {% if key == "classification" %}{{ classification(value)|cell }}{% elif key == "frequency" %}{{ value|cell }} (*{{ frequency_en.get(value, value)|cell }}*){% elif value is string %}{{ value|cell }}{% else %}{{ value|join("; ")|cell }}{% endif %} |
{% endfor %}
| Kunci utama / *Primary key* | {% for k in d.primary_key %}{{ k|code(true) }}{% if not loop.last %}, {% endif %}{% else %}–{% endfor %} |
{% if d.tags %}
| Kata kunci / *Tags* | {{ d.tags|join(", ")|cell }} |
{% endif %}

## Kolom / *Fields*

| Kolom / *Field* | Judul / *Title* | Tipe / *Type* | Wajib / *Required* | Data pribadi / *Personal data* | Klasifikasi / *Classification* |
| --- | --- | --- | --- | --- | --- |
{% for f in d.fields %}
| {{ f.name|code(true) }} | {{ f.title|cell }}{% if f.title_en %} / *{{ f.title_en|cell }}*{% endif %} | {{ f.type|cell }}{% if f.format %} ({{ f.format|cell }}){% endif %} | {{ "ya / *yes*" if f.required else "tidak / *no*" }} | {{ f.personal_data|code(true) if f.personal_data else "–" }} | {{ f.classification|cell }} |
{% endfor %}

## Rincian kolom / *Field details*

{% for f in d.fields %}
### {{ f.name|code }}: {{ f.title|md }}{% if f.title_en %} / *{{ f.title_en|md }}*{% endif %}


{{ f.description|md }}

{% if f.description_en %}
*{{ f.description_en|md }}*

{% endif %}
{% if f.concept %}
- **Konsep / *Concept*:** {{ f.concept|md }}
{% endif %}
- **Tipe / *Type*:** {{ f.type|md }}{% if f.format %}, format {{ f.format|md }}{% endif %}{% if f.unit %}; satuan / *unit*: {{ f.unit|md }}{% endif %}

- **Wajib / *Required*:** {{ "ya / *yes*" if f.required else "tidak / *no*" }}{% if f.primary_key %}; bagian kunci utama / *part of the primary key*{% endif %}

{% if f.personal_data %}
{% set pd = personal_data_labels.get(f.personal_data, (f.personal_data, f.personal_data)) %}
- **Data pribadi / *Personal data*:** {{ f.personal_data|code }} ({{ pd[0]|md }} / *{{ pd[1]|md }}*); disamarkan di setiap jalur publik / *masked on every public path*
{% endif %}
- **Klasifikasi / *Classification*:** {{ classification(f.classification) }}

{% if f.rules %}
**Aturan / *Rules*** (kode alasan bila gagal / *reason code on failure*):

{% for r in f.rules %}
- {{ r.label|md }} / *{{ r.label_en|md }}*{% if r.value is not none %} {{ r.value|code }}{% endif %}: {{ r.reason|code }}
{% endfor %}

{% endif %}
{% if f.code_list %}
{% set cl = f.code_list %}
**Daftar kode / *Code list*:** {{ cl.title|md }} ({{ cl.name|code }}, edisi / *edition* {{ cl.edition|md }}), {{ cl.owner|md }}{% if cl.level %}; tingkat / *level* {{ cl.level|code }}{% endif %}{% if cl.within %}; di bawah / *within* {{ cl.within|code }}{% endif %}; {{ cl.count }} kode / *codes*.
{% if cl.legal_basis %}
Dasar / *Basis*: {{ cl.legal_basis|md }}.
{% endif %}
{% if cl.attribution %}
Sumber / *Source*: {{ cl.attribution|md }}
{% endif %}

| Kode / *Code* | Nama / *Name* |
| --- | --- |
{% for v in cl["values"] %}
| {{ v.kode|code(true) }} | {{ v.nama|cell }} |
{% endfor %}
{% if cl.summarised %}

> {{ cl.note|md }}
>
> *{{ cl.note_en|md }}*
{% endif %}

{% endif %}
{% endfor %}
""")

_MD_INDEX = _MARKDOWN.from_string("""\
# Kamus data standar / *Data dictionaries of the standards*

| Standar / *Standard* | Versi / *Version* | Judul / *Title* | Klasifikasi / *Classification* | Kolom / *Fields* | HTML |
| --- | --- | --- | --- | --- | --- |
{% for e in entries %}
| [{{ e.name|cell }}]({{ e.file }}.md) | {{ e.version|cell }} | {{ e.title|cell }}{% if e.title_en %} / *{{ e.title_en|cell }}*{% endif %} | {{ e.classification|cell }} | {{ e.fields }} | [{{ e.file }}.html]({{ e.file }}.html) |
{% endfor %}
""")


# --- HTML -----------------------------------------------------------------------------------------------

_HTML = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                    undefined=StrictUndefined)

# Every selector is under .data-dictionary so the fragment does not restyle the catalog page around it.
_CSS = """\
.data-dictionary { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif;
  color: #1b1b1b; max-width: 62rem; margin: 0 auto; padding: 1rem; }
.data-dictionary h1 { font-size: 1.6rem; margin: 0 0 .3rem; }
.data-dictionary h2 { font-size: 1.25rem; margin: 2rem 0 .5rem; border-bottom: 2px solid #2a5d8f; }
.data-dictionary h3 { font-size: 1.05rem; margin: 1.6rem 0 .4rem; }
.data-dictionary .en { color: #555; font-style: italic; }
.data-dictionary table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; }
.data-dictionary th, .data-dictionary td { border: 1px solid #c8c8c8; padding: .3rem .5rem;
  text-align: left; vertical-align: top; }
.data-dictionary th { background: #eef3f8; }
.data-dictionary table.meta th { width: 16rem; }
.data-dictionary code { font: .9em ui-monospace, Consolas, "Liberation Mono", monospace;
  background: #f3f3f3; padding: 0 .2em; overflow-wrap: anywhere; }
.data-dictionary section.field { border-top: 1px solid #ddd; }
.data-dictionary dl { display: grid; grid-template-columns: 13rem 1fr; gap: .2rem 1rem; margin: .5rem 0; }
.data-dictionary dt { font-weight: 600; }
.data-dictionary dd { margin: 0; }
.data-dictionary .note { border-left: 4px solid #c9a227; background: #fdf8e6; padding: .4rem .7rem; }
.data-dictionary .personal { color: #8a1c1c; }
@media print {
  .data-dictionary { font-size: 10.5pt; max-width: none; padding: 0; color: #000; }
  .data-dictionary a { color: inherit; text-decoration: none; }
  .data-dictionary h2, .data-dictionary h3 { break-after: avoid; }
  .data-dictionary thead { display: table-header-group; }
  .data-dictionary tr, .data-dictionary dl { break-inside: avoid; }
  .data-dictionary th, .data-dictionary code { background: none; }
}
"""

_HTML.globals["css"] = _CSS

_HTML_DOCUMENT = _HTML.from_string("""\
{% macro en(text) %}{% if text %} <span class="en" lang="en">/ {{ text }}</span>{% endif %}{% endmacro %}
{% macro classification(value) %}{{ value }} ({{ classification_labels[value][0] }}{{ en(classification_labels[value][1]) }}){% endmacro %}
{% if not fragment %}
<!doctype html>
<html lang="id">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Kamus data: {{ d.title }} ({{ d.ref }})</title>
{% endif %}
<style>
{{ css|safe }}</style>
{% if not fragment %}
</head>
<body>
{% endif %}
<article class="data-dictionary">
<header>
<h1>Kamus data: {{ d.title }}{{ en("Data dictionary: " ~ d.title_en if d.title_en else "") }}</h1>
<p>Standar <span class="en" lang="en">/ Standard</span> <code>{{ d.ref }}</code></p>
<p>{{ d.description }}</p>
{% if d.description_en %}
<p class="en" lang="en">{{ d.description_en }}</p>
{% endif %}
</header>

<h2>Metadata</h2>
<table class="meta">
<tbody>
<tr><th>Nama{{ en("Name") }}</th><td><code>{{ d.name }}</code></td></tr>
<tr><th>Versi{{ en("Version") }}</th><td>{{ d.version }}</td></tr>
{% for key, value in d.metadata.items() %}
{% set label = metadata_labels.get(key, (key, key)) %}
<tr><th>{{ label[0] }}{{ en(label[1]) }}</th><td>
{%- if key == "classification" %}{{ classification(value) }}
{%- elif key == "frequency" %}{{ value }}{{ en(frequency_en.get(value, value)) }}
{%- elif value is string %}{{ value }}
{%- else %}{{ value|join("; ") }}{% endif -%}
</td></tr>
{% endfor %}
<tr><th>Kunci utama{{ en("Primary key") }}</th><td>{% for k in d.primary_key %}<code>{{ k }}</code>{% if not loop.last %}, {% endif %}{% else %}–{% endfor %}</td></tr>
{% if d.tags %}
<tr><th>Kata kunci{{ en("Tags") }}</th><td>{{ d.tags|join(", ") }}</td></tr>
{% endif %}
</tbody>
</table>

<h2>Kolom{{ en("Fields") }}</h2>
<table class="fields">
<thead>
<tr><th>Kolom{{ en("Field") }}</th><th>Judul{{ en("Title") }}</th><th>Tipe{{ en("Type") }}</th><th>Wajib{{ en("Required") }}</th><th>Data pribadi{{ en("Personal data") }}</th><th>Klasifikasi{{ en("Classification") }}</th></tr>
</thead>
<tbody>
{% for f in d.fields %}
<tr><td><a href="#field-{{ f.name }}"><code>{{ f.name }}</code></a></td><td>{{ f.title }}{{ en(f.title_en) }}</td><td>{{ f.type }}{% if f.format %} ({{ f.format }}){% endif %}</td><td>{{ "ya" if f.required else "tidak" }}{{ en("yes" if f.required else "no") }}</td><td>{% if f.personal_data %}<code class="personal">{{ f.personal_data }}</code>{% else %}–{% endif %}</td><td>{{ f.classification }}</td></tr>
{% endfor %}
</tbody>
</table>

<h2>Rincian kolom{{ en("Field details") }}</h2>
{% for f in d.fields %}
<section class="field" id="field-{{ f.name }}">
<h3><code>{{ f.name }}</code>: {{ f.title }}{{ en(f.title_en) }}</h3>
<p>{{ f.description }}</p>
{% if f.description_en %}
<p class="en" lang="en">{{ f.description_en }}</p>
{% endif %}
<dl>
{% if f.concept %}
<dt>Konsep{{ en("Concept") }}</dt><dd>{{ f.concept }}</dd>
{% endif %}
<dt>Tipe{{ en("Type") }}</dt><dd>{{ f.type }}{% if f.format %}, format {{ f.format }}{% endif %}</dd>
{% if f.unit %}
<dt>Satuan{{ en("Unit") }}</dt><dd>{{ f.unit }}</dd>
{% endif %}
<dt>Wajib{{ en("Required") }}</dt><dd>{{ "ya" if f.required else "tidak" }}{{ en("yes" if f.required else "no") }}{% if f.primary_key %}; bagian kunci utama{{ en("part of the primary key") }}{% endif %}</dd>
{% if f.personal_data %}
{% set pd = personal_data_labels.get(f.personal_data, (f.personal_data, f.personal_data)) %}
<dt>Data pribadi{{ en("Personal data") }}</dt><dd class="personal"><code>{{ f.personal_data }}</code> ({{ pd[0] }}{{ en(pd[1]) }}); disamarkan di setiap jalur publik{{ en("masked on every public path") }}</dd>
{% endif %}
<dt>Klasifikasi{{ en("Classification") }}</dt><dd>{{ classification(f.classification) }}</dd>
</dl>
{% if f.rules %}
<table class="rules">
<thead><tr><th>Aturan{{ en("Rule") }}</th><th>Kode alasan bila gagal{{ en("Reason code on failure") }}</th></tr></thead>
<tbody>
{% for r in f.rules %}
<tr><td>{{ r.label }}{{ en(r.label_en) }}{% if r.value is not none %} <code>{{ r.value }}</code>{% endif %}</td><td><code>{{ r.reason }}</code></td></tr>
{% endfor %}
</tbody>
</table>
{% endif %}
{% if f.code_list %}
{% set cl = f.code_list %}
<p><strong>Daftar kode{{ en("Code list") }}:</strong> {{ cl.title }} (<code>{{ cl.name }}</code>, edisi{{ en("edition") }} {{ cl.edition }}), {{ cl.owner }}
{%- if cl.level %}; tingkat{{ en("level") }} <code>{{ cl.level }}</code>{% endif %}
{%- if cl.within %}; di bawah{{ en("within") }} <code>{{ cl.within }}</code>{% endif %}; {{ cl.count }} kode{{ en("codes") }}.
{% if cl.legal_basis %}<br>Dasar{{ en("Basis") }}: {{ cl.legal_basis }}.{% endif %}
{% if cl.attribution %}<br>Sumber{{ en("Source") }}: {{ cl.attribution }}{% endif %}
</p>
<table class="codes">
<thead><tr><th>Kode{{ en("Code") }}</th><th>Nama{{ en("Name") }}</th></tr></thead>
<tbody>
{% for v in cl["values"] %}
<tr><td><code>{{ v.kode }}</code></td><td>{{ v.nama }}</td></tr>
{% endfor %}
</tbody>
</table>
{% if cl.summarised %}
<p class="note">{{ cl.note }}<br><span class="en" lang="en">{{ cl.note_en }}</span></p>
{% endif %}
{% endif %}
</section>
{% endfor %}
</article>
{% if not fragment %}
</body>
</html>
{% endif %}
""")

_HTML_INDEX = _HTML.from_string("""\
<!doctype html>
<html lang="id">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Kamus data standar</title>
<style>
{{ css|safe }}</style>
</head>
<body>
<article class="data-dictionary">
<h1>Kamus data standar <span class="en" lang="en">/ Data dictionaries of the standards</span></h1>
<table>
<thead><tr><th>Standar <span class="en" lang="en">/ Standard</span></th><th>Versi <span class="en" lang="en">/ Version</span></th><th>Judul <span class="en" lang="en">/ Title</span></th><th>Klasifikasi <span class="en" lang="en">/ Classification</span></th><th>Kolom <span class="en" lang="en">/ Fields</span></th></tr></thead>
<tbody>
{% for e in entries %}
<tr><td><a href="{{ e.file }}.html"><code>{{ e.name }}</code></a></td><td>{{ e.version }}</td><td>{{ e.title }}{% if e.title_en %} <span class="en" lang="en">/ {{ e.title_en }}</span>{% endif %}<br>{{ e.description }}</td><td>{{ e.classification }}</td><td>{{ e.fields }}</td></tr>
{% endfor %}
</tbody>
</table>
</article>
</body>
</html>
""")
