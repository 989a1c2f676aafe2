"""The charts and maps of a dataset, chosen from the shape of its standard and computed as the viewer may see it.

The shape is read from the standard's fields:
- a field with the `kode_wilayah` code list is the area (kecamatan or kelurahan: the list's `level`);
- `periode` or `tahun` is the time; `kelompok_umur` with a `jenis_kelamin` field makes a population pyramid;
- `latitude` and `longitude` make a point map;
- other code-list fields are categories; integer and number fields that are none of these are measures.

A table of counts (its primary key holds the area or the time: an indicator, posyandu per kelurahan) is added
up by area, category and time, its headline being its last integer measure; a register (one row per facility,
school, person) is counted. Only the latest period goes on a map. An empty cell of a count is a suppressed small
count: an area or group with one is drawn hatched, never added up with it, and a sum over groups says how many it
left out. Only columns the viewer sees plain are used, and every figure is an aggregate.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import duckdb
from markupsafe import Markup

from catalog.access import PLAIN
from catalog.masking import quoted
from hub.errors import ConfigError

__all__ = ["LABELS", "figures"]

LABELS = {
    "fig_rows": ("Jumlah baris", "Number of rows"),
    "fig_map_rows": ("{what} per {level}", "{what} by {level}"),
    "fig_map_measure": ("{measure} per {level}{period}", "{measure} by {level}{period}"),
    "fig_period": (", {period}", ", {period}"),
    "fig_bar_category": ("{what} menurut {category}", "{what} by {category}"),
    "fig_bar_area": ("{measure} per kecamatan{period}", "{measure} by kecamatan{period}"),
    "fig_pyramid": ("{measure} menurut kelompok umur dan jenis kelamin, seluruh Kota Bogor{period}",
                    "{measure} by age group and sex, all of Kota Bogor{period}"),
    "fig_pyramid_note": ("Sel yang disembunyikan (< 5) tidak ikut dijumlahkan: {n} sel.",
                         "Suppressed cells (< 5) are not added in: {n} cells."),
    "fig_trend_period": ("{measure} per periode, seluruh Kota Bogor", "{measure} by period, all of Kota Bogor"),
    "fig_trend_versions": ("{what} pada setiap versi yang diterbitkan", "{what} in each published version"),
    "fig_points": ("Lokasi {what}", "Where the {what} are"),
    "fig_points_what": ("baris", "rows"),
    "fig_none": ("Dataset ini tidak memiliki kolom wilayah, waktu, kategori atau angka untuk digambar.",
                 "This dataset has no area, time, category or number field to draw."),
}

_AREA_LIST, _SEX_LIST = "kode_wilayah", "jenis_kelamin"
_TIME_FIELDS, _AGE_FIELD = ("periode", "tahun"), "kelompok_umur"
_COORDINATES = ("latitude", "longitude")
_VERSIONS = 12  # the trend over versions looks this far back
_POINTS = 5000  # the most points a map draws


@dataclass(frozen=True)
class _Shape:
    area: str | None
    area_level: str | None
    time: str | None
    age: str | None
    sex: str | None
    categories: tuple[str, ...]
    measures: tuple[str, ...]
    coordinates: bool


def _shape(standard) -> _Shape:
    fields = {f.name: f for f in standard.fields}
    area = next((f for f in standard.fields if (f.code_list or {}).get("name") == _AREA_LIST), None)
    level = None
    if area is not None:
        level = "kecamatan" if area.code_list.get("level") == "kecamatan" else "kelurahan"
    time = next((n for n in _TIME_FIELDS if n in fields), None)
    sex = next((f.name for f in standard.fields if (f.code_list or {}).get("name") == _SEX_LIST), None)
    age = _AGE_FIELD if _AGE_FIELD in fields else None
    used = {area.name if area else None, time, sex, age, *_COORDINATES}
    categories = tuple(f.name for f in standard.fields
                       if f.code_list and f.name not in used and not f.personal_data)
    measures = tuple(f.name for f in standard.fields
                     if f.type in ("integer", "number") and f.name not in used and not f.code_list
                     and f.name not in standard.primary_key and not f.personal_data)
    return _Shape(area.name if area else None, level, time, age, sex, categories, measures,
                  all(c in fields for c in _COORDINATES))


# Aggregates of one snapshot never change: (dataset, snapshot, statement) -> rows.
_results: dict[tuple, list] = {}
_lock = threading.Lock()


def _cached(key: tuple, compute: Callable[[], list]) -> list:
    with _lock:
        if key in _results:
            return _results[key]
    value = compute()
    with _lock:
        if len(_results) > 2000:
            _results.clear()
        _results[key] = value
    return value


def figures(settings, d, standard, who, lang: str, number: Callable[[float], str], versions: list[dict]) -> list:
    """The figures (Markup) of dataset `d` at its current version for `who`, who may read it; `versions` are the
    catalog's versions of it, newest first (`describe`)."""
    from catalog.query import sandbox
    from schemas.codelists import labels
    from serving import charts, maps

    shape = _shape(standard)
    fields = {f.name: f for f in standard.fields}
    say = {k: v[0 if lang == "id" else 1] for k, v in LABELS.items()}

    def title(name: str) -> str:
        f = fields[name]
        return (f.title_en if lang == "en" and f.title_en else f.title)

    def code_labels(name: str) -> dict[str, str]:
        ref = fields[name].code_list
        try:
            return labels(ref, lang)
        except ConfigError:  # a list that does not load: the codes stand for themselves
            return {}

    out: list[Markup] = []
    with sandbox(settings, who, {d.id: None}) as (con, shown):
        seen = shown[d.id].access
        plain = {name for name in fields if seen.column(name) == PLAIN}

        def query(sql: str) -> list:
            return _cached((d.id, d.snapshot_id, sql), lambda: con.execute(sql).fetchall())

        table = quoted(d.id)
        area = shape.area if shape.area in plain else None
        time = shape.time if shape.time in plain else None
        measures = [m for m in shape.measures if m in plain]
        latest = None
        if time:
            latest = query(f"SELECT max({quoted(time)}) FROM {table}")[0][0]
        # The latest period by a subquery: no value of the data is ever written into a statement.
        where = f" WHERE {quoted(time)} = (SELECT max({quoted(time)}) FROM {table})" if latest is not None else ""
        period = say["fig_period"].format(period=latest) if where else ""
        headline = _headline(standard, shape, measures)

        def totals(by: list[str], measure: str | None) -> list:
            """Per group: the sum of `measure` over the group's published cells and how many were suppressed
            (empty), or the count of rows."""
            groups = ", ".join(quoted(b) for b in by)
            if measure is None:
                return query(f"SELECT {groups}, count(*), 0 FROM {table}{where} GROUP BY ALL ORDER BY ALL")
            m = quoted(measure)
            return query(f"SELECT {groups}, sum({m}), count(*) FILTER (WHERE {m} IS NULL) FROM {table}{where} "
                         f"GROUP BY ALL ORDER BY ALL")

        what = title(headline) if headline else say["fig_rows"]
        # 1. The map of the area, and for kecamatan a bar per kecamatan.
        if area:
            rows = totals([area], headline)
            values = {code: value for code, value, hidden in rows if not hidden and code}
            hidden = {code for code, _, hidden_cells in rows if hidden_cells and code}
            level = shape.area_level
            if rows and all(maps.level_of(code or "") == level for code, *_ in rows[:5]):
                caption = say["fig_map_measure"].format(measure=what, level=level, period=period)
                out.append(maps.choropleth(values, level=level, caption=caption, lang=lang, number=number,
                                           suppressed=hidden, value_title=what))
                if level == "kecamatan":
                    # Six kecamatan: a bar chart for each measure reads at a glance. A rate (a number, not a
                    # count) is drawn only where each kecamatan has one row: rates do not add up.
                    names = code_labels(area)
                    single = query(f"SELECT count(*) = count(DISTINCT {quoted(area)}) FROM {table}{where}")[0][0]
                    others = [m for m in measures if m != headline and (single or fields[m].type == "integer")]
                    for measure in [headline, *others][:6]:
                        named = title(measure) if measure else what
                        by_area = {code: (value, hidden_cells) for code, value, hidden_cells in totals([area], measure)}
                        bars = sorted((charts.Bar(names.get(code, code), None if hidden_cells else value,
                                                  bool(hidden_cells), code)
                                       for code, (value, hidden_cells) in by_area.items() if code),
                                      key=lambda b: (b.value is None, -(b.value or 0)))
                        out.append(charts.bar_chart(bars, caption=say["fig_bar_area"].format(measure=named,
                                                                                            period=period),
                                                    value_title=named, lang=lang, number=number))
        # 2. A population pyramid.
        if shape.age in plain and shape.sex in plain and headline:
            rows = totals([shape.age, shape.sex], headline)
            groups = sorted({r[0] for r in rows if r[0] is not None}, key=_age_order)
            sexes = code_labels(shape.sex)
            cells = {(g, s): (value, hidden) for g, s, value, hidden in rows}
            def side(sex: str) -> list:
                return [charts.Bar(g, value, value is None and hidden > 0)
                        for g in groups for value, hidden in [cells.get((g, sex), (None, 0))]]

            left, right = side("1"), side("2")
            suppressed = sum(hidden for *_, hidden in rows)
            caption = say["fig_pyramid"].format(measure=what, period=period)
            if suppressed:
                caption += " " + say["fig_pyramid_note"].format(n=number(suppressed))
            out.append(charts.pyramid(groups, left, right, caption=caption, left_title=sexes.get("1", "1"),
                                      right_title=sexes.get("2", "2"), lang=lang, number=number))
        # 3. Categories: a bar per code (facility kind, school level, programme).
        for category in [c for c in shape.categories if c in plain][:2]:
            rows = totals([category], headline)
            names = code_labels(category)
            bars = sorted((charts.Bar(names.get(code, code or "–"), value, bool(hidden) and not value, code)
                           for code, value, hidden in rows), key=lambda b: -(b.value or 0))
            caption = say["fig_bar_category"].format(what=what, category=title(category).lower()) + period
            out.append(charts.bar_chart(bars, caption=caption, value_title=what, lang=lang, number=number))
        # 4. Points.
        if shape.coordinates and all(c in plain for c in _COORDINATES):
            label = next((n for n in ("nama", "nama_usaha") if n in plain), None)
            category = next((c for c in shape.categories if c in plain), None)
            columns = ", ".join(quoted(c) for c in ("longitude", "latitude", label, category) if c)
            rows = query(f"SELECT {columns} FROM {table} WHERE longitude IS NOT NULL AND latitude IS NOT NULL "
                         f"LIMIT {_POINTS}")
            points = [maps.Point(r[0], r[1], str(r[2]) if label else "", r[-1] if category else None)
                      for r in rows]
            caption = say["fig_points"].format(what=(d.title if lang == "id" else standard.schema.get(
                "x-title-en", d.title)).lower())
            present = {p.category for p in points}
            names = {code: name for code, name in code_labels(category).items() if code in present} if category else None
            out.append(maps.point_map(points, caption=caption, lang=lang, number=number, categories=names))
        # 5. Over time: by period, then over the published versions.
        if time and headline:
            rows = query(f"SELECT {quoted(time)}, sum({quoted(headline)}), count(*) FILTER (WHERE "
                         f"{quoted(headline)} IS NULL) FROM {table} GROUP BY ALL ORDER BY ALL")
            points = [charts.Point(str(t), value) for t, value, _ in rows if t is not None]
            if len(points) > 1:
                out.append(charts.trend(points, caption=say["fig_trend_period"].format(measure=what),
                                        value_title=what, lang=lang, number=number))
    history = _history(settings, d, who, headline, versions)
    if history:
        out.append(charts.trend(history, caption=say["fig_trend_versions"].format(what=what), value_title=what,
                                lang=lang, number=number))
    return out


def _headline(standard, shape: _Shape, measures: list[str]) -> str | None:
    """The measure a table of counts shows (its last integer measure, else its last one); None for a register,
    whose rows are counted."""
    if not measures or not {shape.area, shape.time} & set(standard.primary_key):
        return None
    fields = {f.name: f for f in standard.fields}
    return next((m for m in reversed(measures) if fields[m].type == "integer"), measures[-1])


def _age_order(group: str) -> tuple:
    digits = "".join(c if c.isdigit() else " " for c in group).split()
    return (int(digits[0]) if digits else 10**6, group)


def _history(settings, d, who, headline: str | None, versions: list[dict]) -> list:
    """The headline's total (or the row count) of each of the last versions, oldest first."""
    from catalog.query import sandbox
    from serving import charts

    recent = list(reversed(versions[:_VERSIONS]))
    if headline is None:
        return [charts.Point(_version_label(v), v["rows"]) for v in recent]
    points = []
    for v in recent:
        sql = f"SELECT sum({quoted(headline)}) FROM {quoted(d.id)}"

        def compute(v=v, sql=sql):
            with sandbox(settings, who, {d.id: v["snapshot_id"]}) as (con, _):
                return con.execute(sql).fetchall()

        try:
            value = _cached((d.id, v["snapshot_id"], sql), compute)[0][0]
        except duckdb.Error:  # a version written before the field existed: no point for it
            continue
        points.append(charts.Point(_version_label(v), value))
    return points


def _version_label(version: dict) -> str:
    return (version.get("committed_at") or "")[:16].replace("T", " ")
