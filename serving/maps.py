"""Server-rendered SVG maps of Kota Bogor: choropleths by kecamatan or kelurahan and point maps, each with its table."""

from __future__ import annotations

import bisect
import functools
import heapq
import itertools
import json
import math
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from importlib import resources

from markupsafe import Markup, escape

__all__ = ["LABELS", "Point", "choropleth", "level_of", "point_map"]

# Every word this module prints: key -> (Indonesian, English). Placeholders are filled with str.format.
LABELS: dict[str, tuple[str, str]] = {
    "legend": ("Legenda", "Legend"),
    "quantile_classes": ("kelas kuantil", "quantile classes"),
    "no_data": ("tidak ada data", "no data"),
    "suppressed": ("disembunyikan", "suppressed"),
    "suppressed_why": ("jumlah kecil, disembunyikan demi privasi", "small count, withheld for privacy"),
    "area": ("Wilayah", "Area"),
    "code": ("Kode", "Code"),
    "value": ("Nilai", "Value"),
    "class": ("Kelas", "Class"),
    "label_number": ("No. di peta", "No. on map"),
    "kecamatan": ("kecamatan", "kecamatan"),
    "kelurahan": ("kelurahan", "kelurahan"),
    "map_desc": ("Peta {n} {level} Kota Bogor, diwarnai menurut nilai dalam kelas kuantil. "
                 "Tabel di bawah peta memuat nama, kode, nilai dan kelas setiap wilayah.",
                 "Map of the {n} {level} of Kota Bogor, coloured by value in quantile classes. "
                 "The table below the map lists the name, code, value and class of every area."),
    "table": ("tabel data", "data table"),
    "numbers_note": ("Wilayah yang namanya tidak muat di peta ditandai nomor (kolom pertama tabel).",
                     "Areas whose name does not fit on the map carry a number (first column of the table)."),
    "point_name": ("Nama", "Name"),
    "category": ("Kategori", "Category"),
    "latitude": ("Lintang", "Latitude"),
    "longitude": ("Bujur", "Longitude"),
    "no_category": ("tanpa kategori", "no category"),
    "other": ("lainnya", "other"),
    "points_desc": ("Peta {n} titik di atas batas kelurahan dan kecamatan Kota Bogor. "
                    "Tabel di bawah peta memuat setiap titik.",
                    "Map of {n} points over the kelurahan and kecamatan boundaries of Kota Bogor. "
                    "The table below the map lists every point."),
    "points_outside": ("{n} titik di luar Kota Bogor tidak digambar", "{n} points outside Kota Bogor not drawn"),
    "point_outside": ("{n} titik di luar Kota Bogor tidak digambar", "{n} point outside Kota Bogor not drawn"),
    "points_unlisted": ("{n} titik lainnya tidak dicantumkan dalam tabel.",
                        "{n} more points are not listed in the table."),
    "point_unlisted": ("{n} titik lainnya tidak dicantumkan dalam tabel.",
                       "{n} more point is not listed in the table."),
}

_LEVELS = ("kecamatan", "kelurahan")
_CODE = {"kecamatan": re.compile(r"32\.71\.0\d"), "kelurahan": re.compile(r"32\.71\.0\d\.\d{4}")}

# The drawing: 600 units wide (one unit is about one CSS pixel at the usual width), padded so halos stay inside.
_WIDTH = 600.0
_PAD = 8.0
# ColorBrewer YlGnBu, sequential and colour-blind safe, by number of classes; 1 and 2 take from the 3-class set.
_SEQUENTIAL = {
    1: ("#41b6c4",),
    2: ("#a1dab4", "#2c7fb8"),
    3: ("#edf8b1", "#7fcdbb", "#2c7fb8"),
    4: ("#ffffcc", "#a1dab4", "#41b6c4", "#225ea8"),
    5: ("#ffffcc", "#a1dab4", "#41b6c4", "#2c7fb8", "#253494"),
}
_NO_DATA = "#d9d9d9"
# Okabe-Ito, qualitative and colour-blind safe; categories past the eighth share the grey of "other".
_QUALITATIVE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#F0E442", "#000000")
_OTHER = "#999999"
# Rows of a point table: more is a page nobody reads and a screen reader cannot leave.
_POINT_ROWS = 200
# Label text: font sizes in drawing units, and the average glyph width of a sans-serif face as a share of it
# (a little wide on purpose: a name that barely fits is better written as a number).
_FONT = {"kecamatan": 14.0, "kelurahan": 9.0}
_GLYPH = 0.6
_HALO = ('fill="#1a1a1a" stroke="#ffffff" stroke-width="3" stroke-linejoin="round" paint-order="stroke" '
         'font-family="sans-serif" text-anchor="middle"')

_NUM = ' class="num"'
_ids = itertools.count(1)


@dataclass(frozen=True)
class Point:
    """One place on a point map: WGS84 longitude and latitude, what it is called, and its category code."""

    lon: float
    lat: float
    label: str
    category: str | None = None


@dataclass(frozen=True)
class _Area:
    code: str
    name: str
    d: str                                   # SVG path data
    ring: tuple[tuple[float, float], ...]    # projected outer ring, for label placement


@dataclass(frozen=True)
class _Label:
    x: float
    y: float
    lines: tuple[str, ...]   # empty: the name does not fit and the area is written as a number


def level_of(code: str) -> str | None:
    """"kecamatan" for a kecamatan of Kota Bogor (32.71.0x), "kelurahan" for one of its kelurahan (32.71.0x.xxxx).

    None for any other code, including well-formed codes that name no area of the city (32.71.09).
    """
    for level in _LEVELS:
        if isinstance(code, str) and _CODE[level].fullmatch(code) and code in _names(level):
            return level
    return None


def choropleth(values: Mapping[str, float | int | None], *, level: str, caption: str, lang: str,
               number: Callable[[float], str], suppressed: Collection[str] = (), value_title: str = "") -> Markup:
    """A `<figure class="map">`: the areas of `level` coloured by quantile class, a legend, a caption and a table.

    Codes in `suppressed` are drawn hatched and their value is never printed nor used for the classes, whatever
    `values` holds for them. Areas of the level without an entry (or with None) are "no data". Codes of other
    levels or outside Kota Bogor are ignored. `number` writes every number (the caller knows the language).
    """
    say = _say(lang)
    if level not in _LEVELS:
        raise ValueError(f"level must be one of {', '.join(_LEVELS)}, not {level!r}")
    areas = _areas(level)
    hidden = set(suppressed)
    known: dict[str, float] = {}
    for area in areas:
        value = values.get(area.code)
        if area.code in hidden or value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        known[area.code] = value
    groups = _quantile_groups(sorted(set(known.values())))
    colours = _SEQUENTIAL.get(len(groups), ())
    tops = [group[-1] for group in groups]
    ranges = [_range(group, number) for group in groups]

    prefix = f"map{next(_ids)}"
    hatch = f"{prefix}-hatch"
    labels = _labels(level)
    numbered = {area.code: n for n, area in enumerate((a for a in areas if not labels[a.code].lines), 1)}

    rows, paths, texts = [], [], []
    for area in areas:
        if area.code in hidden:
            fill, shown, klass = f"url(#{hatch})", say("suppressed"), "–"
        elif area.code in known:
            index = bisect.bisect_left(tops, known[area.code])
            fill, shown, klass = colours[index], number(known[area.code]), f"{index + 1}: {ranges[index]}"
        else:
            fill, shown, klass = _NO_DATA, say("no_data"), "–"
        paths.append(f'<path d="{area.d}" fill="{fill}" data-code="{_e(area.code)}">'
                     f'<title>{_e(area.name)} ({_e(area.code)}): {_e(shown)}</title></path>')
        label = labels[area.code]
        tag = numbered.get(area.code)
        texts.append(_text(label, str(tag) if tag else None, _FONT[level]))
        rows.append(f'<tr><td>{tag or ""}</td><th scope="row">{_e(area.name)}</th><td><code>{_e(area.code)}</code></td>'
                    f'<td class="num">{_e(shown)}</td><td>{_e(klass)}</td></tr>')

    outlines = ""
    if level == "kelurahan":
        outlines = ('<g fill="none" stroke="#222222" stroke-width="1.6" stroke-linejoin="round">'
                    + "".join(f'<path d="{a.d}"/>' for a in _areas("kecamatan")) + "</g>")
    width, height = _frame()[2:]
    desc = say("map_desc").format(n=number(len(areas)), level=say(level))
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="{prefix}-t {prefix}-d" '
           f'viewBox="0 0 {width:g} {height:g}" width="{width:g}" height="{height:g}">'
           f'<title id="{prefix}-t">{_e(caption)}</title><desc id="{prefix}-d">{_e(desc)}</desc>'
           f'<defs><pattern id="{hatch}" patternUnits="userSpaceOnUse" width="6" height="6" '
           f'patternTransform="rotate(45)"><rect width="6" height="6" fill="#ffffff"/>'
           f'<rect width="2" height="6" fill="#737373"/></pattern></defs>'
           f'<g stroke="#ffffff" stroke-width="0.6" stroke-linejoin="round">{"".join(paths)}</g>{outlines}'
           f'<g {_HALO} font-size="{_FONT[level]:g}" pointer-events="none">{"".join(texts)}</g></svg>')

    items = [_swatch(colour) + _e(text) for colour, text in zip(colours, ranges)]
    if any(a.code in hidden for a in areas):
        items.append(_swatch(f"url(#{hatch})") + _e(f"{say('suppressed')} ({say('suppressed_why')})"))
    if any(a.code not in hidden and a.code not in known for a in areas):
        items.append(_swatch(_NO_DATA) + _e(say("no_data")))
    title = f"{say('legend')}{': ' + value_title if value_title else ''} ({say('quantile_classes')})"
    legend = (f'<div class="map-legend"><p>{_e(title)}</p><ul>'
              + "".join(f"<li>{item}</li>" for item in items) + "</ul></div>")
    note = f'<p class="map-note">{_e(say("numbers_note"))}</p>' if numbered else ""
    head = (f'<tr><th scope="col">{_e(say("label_number"))}</th><th scope="col">{_e(say("area"))}</th>'
            f'<th scope="col">{_e(say("code"))}</th><th scope="col" class="num">{_e(value_title or say("value"))}</th>'
            f'<th scope="col">{_e(say("class"))}</th></tr>')
    table = (f'<div class="scroll" tabindex="0" role="region" aria-label="{_e(caption)}: {_e(say("table"))}">'
             f'<table class="map-table"><caption>{_e(caption)}: {_e(say("table"))}</caption>'
             f'<thead>{head}</thead><tbody>{"".join(rows)}</tbody></table></div>')
    return Markup(f'<figure class="map" id="{prefix}"><figcaption>{_e(caption)}</figcaption>'
                  f"{svg}{legend}{note}{table}</figure>")


def point_map(points: Iterable[Point], *, caption: str, lang: str, categories: Mapping[str, str] | None = None,
              number: Callable[[float], str] = str) -> Markup:
    """A `<figure class="map">`: points coloured by category over the kelurahan and kecamatan lines, and a table.

    Points outside the city's bounding box are left out and counted. `number` (optional, so a call as the first
    design wrote it still works) writes the counts; coordinates are written as GPS devices and GeoJSON write
    them (decimal point, 5 decimals, about a metre) in either language, so they can be pasted into a map app.
    """
    say = _say(lang)
    categories = dict(categories or {})
    lon0, lat1, width, height = _frame()
    west, south, east, north = _bounds()
    inside, outside = [], 0
    for point in points:
        if not (west <= point.lon <= east and south <= point.lat <= north):  # NaN fails here too
            outside += 1
            continue
        inside.append(point)

    # Colours go to the caller's categories first (their order), then to others as they come; None is "no category".
    order = list(categories)
    order += [c for c in dict.fromkeys(p.category for p in inside) if c is not None and c not in categories]
    colour = {c: _QUALITATIVE[i] if i < len(_QUALITATIVE) else _OTHER for i, c in enumerate(order)}
    counts = {c: 0 for c in order}
    for point in inside:
        if point.category is not None:
            counts[point.category] += 1
    uncategorised = sum(1 for p in inside if p.category is None)

    def shown(category: str | None) -> str:
        return say("no_category") if category is None else categories.get(category, category)

    prefix = f"map{next(_ids)}"
    circles = []
    for point in inside:
        x, y = _project(point.lon, point.lat)
        circles.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour.get(point.category, _OTHER)}">'
                       f"<title>{_e(point.label)} ({_e(shown(point.category))})</title></circle>")
    names = "".join(_text(_labels("kecamatan")[a.code], None, _FONT["kecamatan"]) for a in _areas("kecamatan"))
    desc = say("points_desc").format(n=number(len(inside)))
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="{prefix}-t {prefix}-d" '
           f'viewBox="0 0 {width:g} {height:g}" width="{width:g}" height="{height:g}">'
           f'<title id="{prefix}-t">{_e(caption)}</title><desc id="{prefix}-d">{_e(desc)}</desc>'
           '<g fill="#f2f2f2" stroke="#9e9e9e" stroke-width="0.5" stroke-linejoin="round">'
           + "".join(f'<path d="{a.d}" data-code="{_e(a.code)}"/>' for a in _areas("kelurahan")) + "</g>"
           '<g fill="none" stroke="#4d4d4d" stroke-width="1.4" stroke-linejoin="round">'
           + "".join(f'<path d="{a.d}"/>' for a in _areas("kecamatan")) + "</g>"
           f'<g {_HALO} font-size="{_FONT["kecamatan"]:g}" fill-opacity="0.55" pointer-events="none">{names}</g>'
           f'<g stroke="#1a1a1a" stroke-width="0.7">{"".join(circles)}</g></svg>')

    items = [_swatch(colour[c], circle=True) + _e(f"{shown(c)} ({number(counts[c])})") for c in order]
    if uncategorised:
        items.append(_swatch(_OTHER, circle=True) + _e(f"{shown(None)} ({number(uncategorised)})"))
    legend = (f'<div class="map-legend"><p>{_e(say("legend"))}: {_e(say("category"))}</p><ul>'
              + "".join(f"<li>{item}</li>" for item in items) + "</ul></div>")
    notes = ""
    if outside:
        sentence = say("point_outside" if outside == 1 else "points_outside").format(n=number(outside))
        notes += f'<p class="map-note">{_e(sentence)}</p>'
    rows = [f"<tr><th scope=\"row\">{_e(p.label)}</th><td>{_e(shown(p.category))}</td>"
            f'<td class="num">{p.lat:.5f}</td><td class="num">{p.lon:.5f}</td></tr>' for p in inside[:_POINT_ROWS]]
    head = "".join(f'<th scope="col"{_NUM if key in ("latitude", "longitude") else ""}>{_e(say(key))}</th>'
                   for key in ("point_name", "category", "latitude", "longitude"))
    table = (f'<div class="scroll" tabindex="0" role="region" aria-label="{_e(caption)}: {_e(say("table"))}">'
             f'<table class="map-table"><caption>{_e(caption)}: {_e(say("table"))}</caption>'
             f'<thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>')
    unlisted = len(inside) - _POINT_ROWS
    if unlisted > 0:
        key = "point_unlisted" if unlisted == 1 else "points_unlisted"
        table += f'<p class="map-note">{_e(say(key).format(n=number(unlisted)))}</p>'
    return Markup(f'<figure class="map" id="{prefix}"><figcaption>{_e(caption)}</figcaption>'
                  f"{svg}{legend}{notes}{table}</figure>")


# --- words and markup ---------------------------------------------------------------------------------------------

def _say(lang: str) -> Callable[[str], str]:
    if lang not in ("id", "en"):
        raise ValueError(f"lang must be 'id' or 'en', not {lang!r}")
    index = 0 if lang == "id" else 1
    return lambda key: LABELS[key][index]


def _e(text: object) -> str:
    return str(escape(text))


def _swatch(fill: str, circle: bool = False) -> str:
    shape = ('<circle cx="7" cy="7" r="5" stroke="#1a1a1a" stroke-width="0.7"' if circle
             else '<rect x="0.5" y="0.5" width="17" height="13" stroke="#737373" stroke-width="1"')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{14 if circle else 18}" height="14" aria-hidden="true" '
            f'focusable="false">{shape} fill="{fill}"/></svg> ')


def _text(label: _Label, tag: str | None, font: float) -> str:
    """A label with a light halo; a tag (the area's number) replaces a name that does not fit."""
    lines = label.lines if not tag else (tag,)
    weight = ' font-weight="bold"' if tag else ""
    # Centre the block of lines on the point; 0.35 em lowers a baseline to sit a line's middle on it.
    first = label.y - (len(lines) - 1) * 0.55 * font + 0.35 * font
    spans = "".join(f'<tspan x="{label.x:.1f}" y="{first + i * 1.1 * font:.1f}">{_e(line)}</tspan>'
                    for i, line in enumerate(lines))
    return f"<text{weight}>{spans}</text>"


def _quantile_groups(distinct: list[float]) -> list[list[float]]:
    """Up to five classes holding near-equal shares of the distinct values, in order (one class when all are equal)."""
    k = min(5, len(distinct))
    return [distinct[len(distinct) * j // k: len(distinct) * (j + 1) // k] for j in range(k)]


def _range(group: list[float], number: Callable[[float], str]) -> str:
    return number(group[0]) if group[0] == group[-1] else f"{number(group[0])} – {number(group[-1])}"


# --- geometry -----------------------------------------------------------------------------------------------------

def _features(level: str) -> list[dict]:
    path = resources.files("schemas") / "boundaries" / f"batas_kota_bogor_{level}.geojson"
    return json.loads(path.read_text(encoding="utf-8"))["features"]


@functools.cache
def _names(level: str) -> dict[str, str]:
    return {f["properties"]["kode"]: f["properties"]["nama"] for f in _features(level)}


@functools.cache
def _bounds() -> tuple[float, float, float, float]:
    """West, south, east and north of the city polygon, in degrees."""
    ring = _features("kota")[0]["geometry"]["coordinates"][0]
    lons, lats = [p[0] for p in ring], [p[1] for p in ring]
    return min(lons), min(lats), max(lons), max(lats)


@functools.cache
def _frame() -> tuple[float, float, float, float]:
    """The projection's origin (west edge, north edge) and the drawing's width and height."""
    west, south, east, north = _bounds()
    height = _PAD * 2 + (north - south) * _scale()
    return west, north, _WIDTH, round(height, 1)


@functools.cache
def _scale() -> float:
    west, south, east, north = _bounds()
    return (_WIDTH - 2 * _PAD) / ((east - west) * _shrink())


@functools.cache
def _shrink() -> float:
    # Equirectangular at the city's middle latitude: a degree of longitude is cos(latitude) of a degree of latitude.
    west, south, east, north = _bounds()
    return math.cos(math.radians((south + north) / 2))


def _project(lon: float, lat: float) -> tuple[float, float]:
    west, north = _frame()[:2]
    return _PAD + (lon - west) * _shrink() * _scale(), _PAD + (north - lat) * _scale()


@functools.cache
def _areas(level: str) -> tuple[_Area, ...]:
    """The areas of a level in code order, each with its path data (tenths of a unit, relative moves)."""
    out = []
    for feature in sorted(_features(level), key=lambda f: f["properties"]["kode"]):
        rings = feature["geometry"]["coordinates"]
        projected = [[_project(lon, lat) for lon, lat in ring] for ring in rings]
        d = "".join(_path(ring) for ring in projected)
        out.append(_Area(feature["properties"]["kode"], feature["properties"]["nama"], d, tuple(projected[0])))
    return tuple(out)


def _path(ring: list[tuple[float, float]]) -> str:
    """A closed ring as `M x y l dx dy ... z`, rounded to tenths, repeated points dropped."""
    tenths = [(round(x * 10), round(y * 10)) for x, y in ring]
    kept = [tenths[0]]
    for point in tenths[1:]:
        if point != kept[-1]:
            kept.append(point)
    while len(kept) > 1 and kept[-1] == kept[0]:  # z closes the ring
        kept.pop()
    moves = [(b[0] - a[0], b[1] - a[1]) for a, b in zip(kept, kept[1:])]
    return "M" + _numbers(kept[0]) + ("l" + _numbers(*moves) if moves else "") + "z"


def _numbers(*pairs: tuple[int, int]) -> str:
    """Tenths as the shortest path numbers: 15 -> 1.5, -5 -> -.5; a minus sign or a second point separates."""
    out: list[str] = []
    for value in itertools.chain.from_iterable(pairs):
        whole, tenth = divmod(abs(value), 10)
        text = ("-" if value < 0 else "") + (str(whole) if whole or not tenth else "") + (f".{tenth}" if tenth else "")
        if out and not text.startswith("-") and not (text.startswith(".") and "." in out[-1]):
            out.append(" ")
        out.append(text)
    return "".join(out)


def _inside(x: float, y: float, ring: tuple[tuple[float, float], ...]) -> bool:
    result = False
    for (x1, y1), (x2, y2) in zip(ring, ring[1:] + ring[:1]):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            result = not result
    return result


def _clearance(x: float, y: float, ring: tuple[tuple[float, float], ...]) -> float:
    """Distance from a point to the ring's edges, negative outside."""
    best = math.inf
    for (x1, y1), (x2, y2) in zip(ring, ring[1:] + ring[:1]):
        dx, dy = x2 - x1, y2 - y1
        t = 0.0 if dx == dy == 0 else max(0.0, min(1.0, ((x - x1) * dx + (y - y1) * dy) / (dx * dx + dy * dy)))
        best = min(best, math.hypot(x - x1 - t * dx, y - y1 - t * dy))
    return best if _inside(x, y, ring) else -best


def _pole(ring: tuple[tuple[float, float], ...], precision: float = 1.0) -> tuple[float, float]:
    """The inside point farthest from the edges (Mapbox's polylabel): where a label has most room."""
    xs, ys = [p[0] for p in ring], [p[1] for p in ring]
    west, north, east, south = min(xs), min(ys), max(xs), max(ys)
    size = min(east - west, south - north)
    if size <= 0:
        return ring[0]
    cells: list[tuple[float, float, float, float, float]] = []

    def push(x: float, y: float, half: float) -> None:
        d = _clearance(x, y, ring)
        heapq.heappush(cells, (-(d + half * math.sqrt(2)), d, x, y, half))

    half = size / 2
    x = west
    while x < east:
        y = north
        while y < south:
            push(x + half, y + half, half)
            y += size
        x += size
    cx, cy = sum(xs) / len(xs), sum(ys) / len(ys)
    best = (_clearance(cx, cy, ring), cx, cy)
    while cells:
        bound, d, x, y, half = heapq.heappop(cells)
        if d > best[0]:
            best = (d, x, y)
        if -bound - best[0] <= precision:
            continue
        half /= 2
        for sx, sy in ((-1, -1), (1, -1), (-1, 1), (1, 1)):
            push(x + sx * half, y + sy * half, half)
    return best[1], best[2]


def _fits(x: float, y: float, width: float, height: float, ring: tuple[tuple[float, float], ...]) -> bool:
    """Whether a text box centred on (x, y) lies inside the ring, sampled along its border every few units."""
    steps = max(2, int(width // 4))
    for i in range(steps + 1):
        px = x - width / 2 + width * i / steps
        if not (_inside(px, y - height / 2, ring) and _inside(px, y + height / 2, ring)):
            return False
    return _inside(x - width / 2, y, ring) and _inside(x + width / 2, y, ring)


@functools.cache
def _labels(level: str) -> dict[str, _Label]:
    """Where each area's name goes: on one line, else on two, at the roomiest spot where it fits; else a number."""
    font = _FONT[level]
    out = {}
    for area in _areas(level):
        words = area.name.split()
        layouts = [(area.name,)]
        if len(words) > 1:
            cut = min(range(1, len(words)), key=lambda i: abs(len(" ".join(words[:i])) - len(" ".join(words[i:]))))
            layouts.append((" ".join(words[:cut]), " ".join(words[cut:])))
        candidates = [_pole(area.ring)] + _roomy(area.ring)
        out[area.code] = _Label(*candidates[0], ())
        for lines in layouts:
            width = max(len(line) for line in lines) * font * _GLYPH + 2
            height = len(lines) * font * 1.1 + 1
            spot = next(((x, y) for x, y in candidates if _fits(x, y, width, height, area.ring)), None)
            if spot:
                out[area.code] = _Label(spot[0], spot[1], lines)
                break
        if level == "kecamatan" and not out[area.code].lines:
            # Kecamatan are big: a name that somehow does not fit is still written, at the pole.
            out[area.code] = _Label(*candidates[0], layouts[-1])
    return out


def _roomy(ring: tuple[tuple[float, float], ...], count: int = 12) -> list[tuple[float, float]]:
    """Other label spots: inside points of a grid over the ring, roomiest first."""
    xs, ys = [p[0] for p in ring], [p[1] for p in ring]
    grid = [(min(xs) + (max(xs) - min(xs)) * (i + 0.5) / 10, min(ys) + (max(ys) - min(ys)) * (j + 0.5) / 10)
            for i in range(10) for j in range(10)]
    scored = sorted(((_clearance(x, y, ring), x, y) for x, y in grid), reverse=True)
    return [(x, y) for d, x, y in scored[:count] if d > 0]
