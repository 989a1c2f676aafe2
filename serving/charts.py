"""Server-rendered SVG charts (bars, a population pyramid, a trend) as HTML fragments that need no JavaScript."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

__all__ = ["LABELS", "Bar", "Point", "bar_chart", "pyramid", "trend"]

Number = Callable[[float], str]

# Every word a chart prints: key -> (Indonesian, English). Placeholders are filled with escaped text and with numbers
# the caller formatted, so no number here is ever written in one language's style.
LABELS: dict[str, tuple[str, str]] = {
    "suppressed": ("disembunyikan (< 5)", "suppressed (< 5)"),
    "no_data": ("tidak ada data", "no data"),
    "category": ("Kategori", "Category"),
    "code": ("Kode", "Code"),
    "age_group": ("Kelompok umur", "Age group"),
    "period": ("Versi atau periode", "Version or period"),
    "table_caption": ("Data grafik: {caption}", "Chart data: {caption}"),
    "empty": ("Tidak ada nilai untuk ditampilkan.", "There are no values to show."),
    "bars": ("{n} batang.", "{n} bars."),
    "largest_smallest": ("Terbesar: {max_label} ({max}); terkecil: {min_label} ({min}).",
                         "Largest: {max_label} ({max}); smallest: {min_label} ({min})."),
    "all_equal": ("Semua nilai yang ditampilkan sama: {value}.", "Every value shown is the same: {value}."),
    "one_value": ("Satu nilai ditampilkan: {label} ({value}).", "One value shown: {label} ({value})."),
    "count_suppressed": ("{n} nilai disembunyikan karena mencakup kurang dari 5 orang.",
                         "{n} values are suppressed because they cover fewer than 5 persons."),
    "count_missing": ("{n} nilai tidak ada datanya.", "{n} values have no data."),
    "groups": ("{n} kelompok umur, termuda di bawah.", "{n} age groups, youngest at the bottom."),
    "side_largest": ("{title} terbanyak pada {group} ({value}).", "{title}: largest group {group} ({value})."),
    "side_none": ("{title}: tidak ada nilai yang ditampilkan.", "{title}: no value shown."),
    "points": ("{n} titik dari {first} sampai {last}.", "{n} points from {first} to {last}."),
    "highest_lowest": ("Tertinggi: {max_label} ({max}); terendah: {min_label} ({min}).",
                       "Highest: {max_label} ({max}); lowest: {min_label} ({min})."),
    # The line is over versions or over periods: the sentence names the point before by its label.
    "up": ("Naik {change} dibanding sebelumnya ({label})", "Up {change} on the one before ({label})"),
    "down": ("Turun {change} dibanding sebelumnya ({label})", "Down {change} on the one before ({label})"),
    "unchanged": ("Tidak berubah dibanding sebelumnya ({label})", "Unchanged on the one before ({label})"),
    "up_between": ("Naik {change} dari {before} ke {after}", "Up {change} from {before} to {after}"),
    "down_between": ("Turun {change} dari {before} ke {after}", "Down {change} from {before} to {after}"),
    "unchanged_between": ("Tidak berubah dari {before} ke {after}", "Unchanged from {before} to {after}"),
    "latest_suppressed": ("Nilai terakhir ({label}) disembunyikan (< 5)",
                          "The latest value ({label}) is suppressed (< 5)"),
    "latest_missing": ("Nilai terakhir ({label}) tidak ada datanya", "The latest value ({label}) has no data"),
    "cannot_compare": ("Belum ada dua nilai yang dapat dibandingkan", "There are not yet two values to compare"),
    "single": ("Baru satu nilai", "Only one value so far"),
}

# Okabe & Ito's palette, told apart by the common colour-vision deficiencies; both keep 3:1 against white, the
# least for graphics. Text is never drawn on a colour: it sits on white in INK or MUTED (both above 4.5:1).
BLUE = "#0072b2"
VERMILLION = "#d55e00"
INK = "#1b1f24"
MUTED = "#5a6470"
GRID = "#d5dbe1"
HATCH = "#5a6470"

FONT = 13  # px at the SVG's natural size, the floor of a readable chart label
SMALL = 12
WIDTH = 640  # every chart's natural width, so one stylesheet rule can cap them all
STUB = 16  # a suppressed cell's hatched stub: always this long, whatever the scale

# Ids only have to differ between the figures of one page; a process-wide counter guarantees that.
_serial = itertools.count(1)


@dataclass(frozen=True)
class Bar:
    """One bar: `value` None is "no data", or with `suppressed` a count withheld for privacy (never drawn)."""

    label: str
    value: float | int | None
    suppressed: bool = False
    code: str | None = None


@dataclass(frozen=True)
class Point:
    """One point of a trend, a version or a period; None is a gap, like a suppressed value."""

    label: str
    value: float | None
    suppressed: bool = False


def bar_chart(bars: Sequence[Bar], *, caption: str, value_title: str, lang: str, number: Number) -> Markup:
    """Horizontal bars in the order given, labels on the left and each value at its bar's end."""
    word = _words(lang)
    uid = _uid()
    shown = [b for b in bars if _shown(b)]
    values = [b.value for b in shown]
    lo, hi = min([0, *values]), max([0, *values])
    if hi == lo:  # all zero or nothing shown: any scale works, the bars have no length
        hi = lo + 1
    has_code = any(b.code for b in bars)

    texts = [_cell_text(b, number, word) for b in bars]
    label_w = min(210, max([60.0, *(_text_width(b.label, FONT) + 18 for b in bars)]))
    row_h = 34
    top = 34
    height = top + max(1, len(bars)) * row_h + 8
    pos_room = max([0.0, *(_text_width(t, FONT) + 6 for b, t in zip(bars, texts) if _shown(b) and b.value >= 0)])
    neg_room = max([0.0, *(_text_width(t, FONT) + 6 for b, t in zip(bars, texts) if _negative(b))])
    x0 = label_w + 8 + neg_room
    x1 = WIDTH - 8 - pos_room
    # A suppressed or empty cell writes its word after the baseline: when the baseline sits far right (all values
    # negative), make room for that word too.
    for _ in range(2):
        base = x0 + (0 - lo) / (hi - lo) * (x1 - x0)
        need = max([0.0, *(base + STUB + 6 + _text_width(t, FONT) + 8 - WIDTH
                           for b, t in zip(bars, texts) if not _shown(b))])
        x1 -= need
    scale = (x1 - x0) / (hi - lo)
    base = x0 + (0 - lo) * scale

    parts = [_svg_open(uid, WIDTH, height), _title_desc(uid, caption, _bar_desc(bars, word, number)),
             _defs(uid), f'<rect width="{WIDTH}" height="{_n(height)}" fill="#fff"/>',
             f'<text x="{_n(label_w + 8)}" y="20" fill="{INK}" font-weight="600">{escape(value_title)}</text>']
    if not bars:
        parts.append(f'<text x="{_n(x0)}" y="{top + 20}" fill="{MUTED}">{escape(word["empty"])}</text>')
    for i, (b, text) in enumerate(zip(bars, texts)):
        y = top + i * row_h
        mid = y + row_h / 2
        parts.append(f'<g class="row"><title>{escape(b.label)}: {escape(text)}</title>')
        parts.append(_label(b.label, label_w - 8, mid, label_w - 16))
        if b.suppressed:
            parts.append(_stub(uid, base, mid - 9, 18))
            parts.append(_value_text(text, base + STUB + 6, mid, "start", "suppressed"))
        elif b.value is None:
            parts.append(_value_text(text, base + 6, mid, "start", "missing", MUTED))
        else:
            length = abs(b.value) * scale
            left = base - length if b.value < 0 else base
            colour = VERMILLION if b.value < 0 else BLUE
            parts.append(f'<rect class="bar" x="{_n(left)}" y="{_n(mid - 9)}" width="{_n(length)}" height="18" '
                         f'fill="{colour}" data-value-length="{_n(length)}"/>')
            if b.value < 0:
                parts.append(_value_text(text, left - 4, mid, "end", "value"))
            else:
                parts.append(_value_text(text, left + length + 4, mid, "start", "value"))
        parts.append("</g>")
    parts.append(f'<line class="baseline" x1="{_n(base)}" y1="{top - 4}" x2="{_n(base)}" y2="{_n(height - 6)}" '
                 f'stroke="{INK}" stroke-width="1.5"/>')
    parts.append("</svg>")

    head = [(word["category"], ""), *([(word["code"], "")] if has_code else []), (value_title, "num")]
    rows = [[(b.label, "row"), *([(b.code or "", "")] if has_code else []), (t, _cell_class(b))]
            for b, t in zip(bars, texts)]
    return _figure("bar", uid, caption, "".join(parts), _table(caption, head, rows, word))


def pyramid(groups: Sequence[str], left: Sequence[Bar], right: Sequence[Bar], *, caption: str, left_title: str,
            right_title: str, lang: str, number: Number) -> Markup:
    """A population pyramid: `groups` youngest first, drawn bottom up; `left` grows left, `right` grows right."""
    word = _words(lang)
    if not (len(groups) == len(left) == len(right)):
        raise ValueError(f"pyramid: {len(groups)} groups but {len(left)} left and {len(right)} right values")
    if any(_shown(b) and b.value < 0 for b in (*left, *right)):
        raise ValueError("pyramid: a count of persons cannot be negative")
    uid = _uid()
    n = len(groups)
    left_texts = [_cell_text(b, number, word) for b in left]
    right_texts = [_cell_text(b, number, word) for b in right]
    peak = max([0, *(b.value for b in (*left, *right) if _shown(b))]) or 1

    centre_w = max([56.0, *(_text_width(g, SMALL) + 16 for g in groups)])
    mid_x = WIDTH / 2
    inner_l, inner_r = mid_x - centre_w / 2, mid_x + centre_w / 2
    # The outer margin holds the longest number; a suppressed cell's word runs over the empty half instead.
    room = max([24.0, *(_text_width(t, SMALL) + 6 for b, t in zip((*left, *right), (*left_texts, *right_texts))
                        if _shown(b))]) + 8
    half = inner_l - room
    scale = half / peak
    row_h, top = 22, 40
    height = top + max(1, n) * row_h + 8

    desc = _pyramid_desc(groups, left, right, left_title, right_title, word, number)
    parts = [_svg_open(uid, WIDTH, height), _title_desc(uid, caption, desc), _defs(uid),
             f'<rect width="{WIDTH}" height="{_n(height)}" fill="#fff"/>',
             f'<text class="side-title" x="{_n(inner_l / 2)}" y="22" text-anchor="middle" fill="{INK}" '
             f'font-weight="600">{escape(left_title)}</text>',
             f'<text class="side-title" x="{_n((inner_r + WIDTH) / 2)}" y="22" text-anchor="middle" fill="{INK}" '
             f'font-weight="600">{escape(right_title)}</text>']
    if not n:
        parts.append(f'<text x="{_n(mid_x)}" y="{top + 16}" text-anchor="middle" fill="{MUTED}">'
                     f'{escape(word["empty"])}</text>')
    for i, group in enumerate(groups):
        y = top + (n - 1 - i) * row_h  # youngest at the bottom
        mid = y + row_h / 2
        parts.append(f'<g class="row" data-group="{escape(group)}">')
        parts.append(f'<text x="{_n(mid_x)}" y="{_n(mid)}" dy="0.35em" text-anchor="middle" fill="{INK}" '
                     f'font-size="{SMALL}">{escape(group)}</text>')
        for side, b, text in (("left", left[i], left_texts[i]), ("right", right[i], right_texts[i])):
            sign = -1 if side == "left" else 1
            edge = inner_l if side == "left" else inner_r
            anchor = "end" if side == "left" else "start"
            title = left_title if side == "left" else right_title
            parts.append(f'<g class="{side}"><title>{escape(group)}, {escape(title)}: {escape(text)}</title>')
            if b.suppressed:
                parts.append(_stub(uid, edge - STUB if side == "left" else edge, mid - 7, 14))
                parts.append(_value_text(text, edge + sign * (STUB + 4), mid, anchor, "suppressed", size=SMALL))
            elif b.value is None:
                parts.append(_value_text(text, edge + sign * 4, mid, anchor, "missing", MUTED, size=SMALL))
            else:
                length = b.value * scale
                x = edge - length if side == "left" else edge
                colour = BLUE if side == "left" else VERMILLION
                parts.append(f'<rect class="bar" x="{_n(x)}" y="{_n(mid - 7)}" width="{_n(length)}" height="14" '
                             f'fill="{colour}" data-value-length="{_n(length)}"/>')
                parts.append(_value_text(text, edge + sign * (length + 4), mid, anchor, "value", size=SMALL))
            parts.append("</g>")
        parts.append("</g>")
    for edge in (inner_l, inner_r):
        parts.append(f'<line class="baseline" x1="{_n(edge)}" y1="{top - 2}" x2="{_n(edge)}" '
                     f'y2="{_n(height - 6)}" stroke="{INK}" stroke-width="1.5"/>')
    parts.append("</svg>")

    head = [(word["age_group"], ""), (left_title, "num"), (right_title, "num")]
    rows = [[(g, "row"), (lt, _cell_class(lb)), (rt, _cell_class(rb))]
            for g, lb, rb, lt, rt in zip(groups, left, right, left_texts, right_texts)]
    return _figure("pyramid", uid, caption, "".join(parts), _table(caption, head, rows, word))


def trend(points: Sequence[Point], *, caption: str, value_title: str, lang: str, number: Number) -> Markup:
    """A line over versions or periods in order, a gap where a value is missing or suppressed, and a sentence
    under it saying how the latest value changed."""
    word = _words(lang)
    uid = _uid()
    n = len(points)
    texts = [_cell_text(p, number, word) for p in points]
    shown = [(i, p) for i, p in enumerate(points) if _shown(p)]
    values = [p.value for _, p in shown]
    lo, hi = (min(values), max(values)) if values else (0, 1)
    # Start at zero when zero is near: a count read against its whole is honest; far from zero it flattens a change.
    if lo >= 0 and lo <= hi - lo:
        lo = 0
    elif hi <= 0 and -hi <= hi - lo:
        hi = 0
    ticks = _ticks(lo, hi)
    tick_texts = [number(t) for t in ticks]

    any_suppressed = any(p.suppressed for p in points)
    left_m = max([30.0, *(_text_width(t, SMALL) + 12 for t in tick_texts)])
    x0, x1 = left_m + 6, WIDTH - 24
    y0, y1 = 36, 236  # plot top and bottom
    height = y1 + 34 + (26 if any_suppressed else 0)
    t_lo, t_hi = ticks[0], ticks[-1]

    def px(i: int) -> float:
        return (x0 + x1) / 2 if n == 1 else x0 + i * (x1 - x0) / (n - 1)

    def py(v: float) -> float:
        return y1 - (v - t_lo) / (t_hi - t_lo) * (y1 - y0)

    sentence = _change_sentence(points, word, number)
    parts = [_svg_open(uid, WIDTH, height), _title_desc(uid, caption, _trend_desc(points, word, number, sentence)),
             _defs(uid), f'<rect width="{WIDTH}" height="{_n(height)}" fill="#fff"/>',
             f'<text x="{_n(x0)}" y="20" fill="{INK}" font-weight="600">{escape(value_title)}</text>']
    for t, text in zip(ticks, tick_texts):
        parts.append(f'<line x1="{_n(x0)}" y1="{_n(py(t))}" x2="{_n(x1)}" y2="{_n(py(t))}" stroke="{GRID}"/>')
        parts.append(f'<text class="tick" x="{_n(x0 - 8)}" y="{_n(py(t))}" dy="0.35em" text-anchor="end" '
                     f'fill="{MUTED}" font-size="{SMALL}">{escape(text)}</text>')
    # The bottom line is drawn dark only when it is zero: a darker axis reads as a baseline.
    parts.append(f'<line x1="{_n(x0)}" y1="{y1}" x2="{_n(x1)}" y2="{y1}" stroke="{INK if t_lo == 0 else MUTED}"/>')

    # Thin the x labels to what fits, always keeping the latest; each is centred on its point but kept inside the
    # chart, so the end ones may shift inwards.
    spacing = (x1 - x0) / max(1, n - 1)
    short = [_truncate(p.label, 110, SMALL) for p in points]
    widest = max([0.0, *(_text_width(s, SMALL) for s in short)])
    stride = 1 if n == 1 else max(1, math.ceil((widest + 12) / spacing))
    taken: list[tuple[float, float]] = []
    for i in range(n - 1, -1, -stride):
        w = _text_width(short[i], SMALL)
        x = min(max(px(i), w / 2 + 4), WIDTH - w / 2 - 4)
        if taken and x + w / 2 + 12 > taken[-1][0]:
            continue
        taken.append((x - w / 2, x + w / 2))
        parts.append(f'<text class="x-label" x="{_n(x)}" y="{y1 + 18}" text-anchor="middle" '
                     f'fill="{INK}" font-size="{SMALL}">{escape(short[i])}</text>')

    run: list[tuple[float, float]] = []
    for i, p in enumerate([*points, None]):
        if p is not None and _shown(p):
            run.append((px(i), py(p.value)))
            continue
        if len(run) > 1:
            coords = " ".join(f"{_n(x)},{_n(y)}" for x, y in run)
            parts.append(f'<polyline class="line" points="{coords}" fill="none" stroke="{BLUE}" '
                         f'stroke-width="2.5" stroke-linejoin="round"/>')
        run = []
    for i, (p, text) in enumerate(zip(points, texts)):
        if _shown(p):
            parts.append(f'<circle class="marker" cx="{_n(px(i))}" cy="{_n(py(p.value))}" r="4.5" fill="{BLUE}" '
                         f'stroke="#fff" stroke-width="1.5"><title>{escape(p.label)}: {escape(text)}</title></circle>')
        elif p.suppressed:
            parts.append(f'<g class="suppressed"><title>{escape(p.label)}: {escape(text)}</title>'
                         f'{_stub(uid, px(i) - 6, y1 - 12, 12, 12)}</g>')
    if shown:
        i, p = shown[-1]
        x = min(max(px(i), x0 + 30), WIDTH - 8 - _text_width(texts[i], FONT) / 2)
        parts.append(_value_text(texts[i], x, py(p.value) - 14, "middle", "value"))
    if any_suppressed:
        y = y1 + 40
        parts.append(_stub(uid, x0, y - 6, 12, 12))
        parts.append(_value_text(word["suppressed"], x0 + 18, y, "start", "legend", size=SMALL))
    if not n:
        parts.append(f'<text x="{_n((x0 + x1) / 2)}" y="{_n((y0 + y1) / 2)}" text-anchor="middle" fill="{MUTED}">'
                     f'{escape(word["empty"])}</text>')
    parts.append("</svg>")

    note = f'<p class="chart-change">{escape(sentence)}.</p>' if sentence else ""
    rows = [[(p.label, "row"), (t, _cell_class(p))] for p, t in zip(points, texts)]
    return _figure("trend", uid, caption, "".join(parts) + note,
                   _table(caption, [(word["period"], ""), (value_title, "num")], rows, word))


# Sentences.

def _bar_desc(bars: Sequence[Bar], word: dict[str, str], number: Number) -> str:
    shown = [b for b in bars if _shown(b)]
    out = [word["bars"].format(n=number(len(bars)))]
    out.append(_extremes(shown, word, number, "largest_smallest"))
    return _with_gaps(out, bars, word, number)


def _pyramid_desc(groups, left, right, left_title, right_title, word, number) -> str:
    out = [word["groups"].format(n=number(len(groups)))]
    for title, side in ((left_title, left), (right_title, right)):
        shown = [(g, b) for g, b in zip(groups, side) if _shown(b)]
        if shown:
            g, b = max(shown, key=lambda gb: gb[1].value)
            out.append(word["side_largest"].format(title=title, group=g, value=number(b.value)))
        else:
            out.append(word["side_none"].format(title=title))
    return _with_gaps(out, [*left, *right], word, number)


def _trend_desc(points: Sequence[Point], word, number, sentence: str) -> str:
    if not points:
        return word["empty"]
    out = [word["points"].format(n=number(len(points)), first=points[0].label, last=points[-1].label)]
    out.append(_extremes([p for p in points if _shown(p)], word, number, "highest_lowest"))
    if sentence:
        out.append(sentence + ".")
    return _with_gaps(out, points, word, number)


def _extremes(shown, word, number, key: str) -> str:
    if not shown:
        return word["empty"]
    if len(shown) == 1:
        return word["one_value"].format(label=shown[0].label, value=number(shown[0].value))
    top = max(shown, key=lambda b: b.value)
    bottom = min(shown, key=lambda b: b.value)
    if top.value == bottom.value:
        return word["all_equal"].format(value=number(top.value))
    return word[key].format(max_label=top.label, max=number(top.value), min_label=bottom.label,
                            min=number(bottom.value))


def _with_gaps(out: list[str], cells, word, number) -> str:
    hidden = sum(1 for c in cells if c.suppressed)
    missing = sum(1 for c in cells if c.value is None and not c.suppressed)
    if hidden:
        out.append(word["count_suppressed"].format(n=number(hidden)))
    if missing:
        out.append(word["count_missing"].format(n=number(missing)))
    return " ".join(s for s in out if s)


def _change_sentence(points: Sequence[Point], word: dict[str, str], number: Number) -> str:
    """How the latest value moved: against the one before, or between the last two values shown when the
    latest is withheld or missing (never guessing it), or why no comparison can be made."""
    if not points:
        return ""
    if len(points) == 1:
        return word["single"]
    last = points[-1]
    shown = [p for p in points if _shown(p)]
    lead = []
    if not _shown(last):
        lead.append(word["latest_suppressed" if last.suppressed else "latest_missing"].format(label=last.label))
    if len(shown) < 2:
        return ". ".join([*lead, word["cannot_compare"]])
    before, after = shown[-2], shown[-1]
    adjacent = after is last and before is points[-2]
    diff = _difference(after.value, before.value)
    if diff == 0:
        kind = "unchanged"
        change = ""
    else:
        kind = "up" if diff > 0 else "down"
        change = number(abs(diff))
        if before.value != 0:
            pct = round(abs(diff) / abs(before.value) * 100, 1)
            change += f" ({'+' if diff > 0 else '-'}{number(pct)}%)"
    if adjacent:
        text = word[kind].format(change=change, label=before.label)
    else:
        text = word[kind + "_between"].format(change=change, before=before.label, after=after.label)
    return ". ".join([*lead, text])


def _difference(a: float, b: float) -> float:
    if isinstance(a, int) and isinstance(b, int):
        return a - b
    # Floats subtract with binary noise (0.30000000000000004); nine decimals keep every digit a report holds.
    return round(a - b, 9)


# Drawing pieces.

def _svg_open(uid: str, width: float, height: float) -> str:
    # width 100% and a viewBox let the chart shrink with the screen; the page's stylesheet caps it at WIDTH
    # (an inline style would break the Content-Security-Policy, which allows no inline style).
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="{uid}-title {uid}-desc" '
            f'viewBox="0 0 {_n(width)} {_n(height)}" width="100%" preserveAspectRatio="xMinYMin meet" '
            f'font-size="{FONT}">')


def _title_desc(uid: str, title: str, desc: str) -> str:
    return f'<title id="{uid}-title">{escape(title)}</title><desc id="{uid}-desc">{escape(desc)}</desc>'


def _defs(uid: str) -> str:
    # Diagonal hatching: reads as "something is here, not measured" in grey and in any colour vision.
    return (f'<defs><pattern id="{uid}-hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
            f'patternTransform="rotate(45)"><rect width="6" height="6" fill="#fff"/>'
            f'<line x1="0" y1="0" x2="0" y2="6" stroke="{HATCH}" stroke-width="2.5"/></pattern></defs>')


def _stub(uid: str, x: float, y: float, height: float, width: float = STUB) -> str:
    return (f'<rect class="hatch" x="{_n(x)}" y="{_n(y)}" width="{_n(width)}" height="{_n(height)}" '
            f'fill="url(#{uid}-hatch)" stroke="{HATCH}"/>')


def _value_text(text: str, x: float, mid: float, anchor: str, kind: str, colour: str = INK,
                size: int | None = None) -> str:
    size_attr = f' font-size="{size}"' if size else ""
    return (f'<text class="{kind}" x="{_n(x)}" y="{_n(mid)}" dy="0.35em" text-anchor="{anchor}" '
            f'fill="{colour}"{size_attr}>{escape(text)}</text>')


def _label(text: str, x: float, mid: float, width: float) -> str:
    """A bar's label, right-aligned against the bars, in up to two lines."""
    lines = _wrap(text, width, FONT)
    first = mid - (len(lines) - 1) * (FONT + 2) / 2
    spans = "".join(f'<tspan x="{_n(x)}" y="{_n(first + k * (FONT + 2))}" dy="0.35em">{escape(line)}</tspan>'
                    for k, line in enumerate(lines))
    return f'<text class="label" text-anchor="end" fill="{INK}">{spans}</text>'


def _wrap(text: str, width: float, size: int, max_lines: int = 2) -> list[str]:
    """Greedy word wrap into at most `max_lines`; what does not fit ends in an ellipsis (the row's <title> and the
    table keep the whole text)."""
    lines: list[str] = []
    current = ""
    words = text.split()
    for k, w in enumerate(words):
        candidate = f"{current} {w}".strip()
        if _text_width(candidate, size) <= width or not current:
            current = candidate
            continue
        lines.append(current)
        current = w
        if len(lines) == max_lines - 1:
            current = " ".join(words[k:])
            break
    lines.append(current)
    return [_truncate(line, width, size) for line in lines if line] or [""]


def _truncate(text: str, width: float, size: int) -> str:
    if _text_width(text, size) <= width:
        return text
    while text and _text_width(text + "…", size) > width:
        text = text[:-1]
    return text.rstrip() + "…"


def _text_width(text: str, size: float) -> float:
    """A generous guess of a sans-serif text's width: the server cannot measure fonts, so it errs wide."""
    total = 0.0
    for ch in text:  # em fractions, a little over DejaVu Sans, the widest common fallback
        if ch in "ijlI.,:;'|!":
            total += 0.32
        elif ch in "ftr()[]- ":
            total += 0.42
        elif ch in "mwMW":
            total += 0.95
        elif ch.isupper():
            total += 0.74
        elif ch.isdigit():
            total += 0.64
        else:
            total += 0.62
    return total * size


def _figure(kind: str, uid: str, caption: str, svg: str, table: str) -> Markup:
    return Markup(f'<figure class="chart chart-{kind}" id="{uid}"><figcaption>{escape(caption)}</figcaption>'
                  f'{svg}{table}</figure>')


def _class(kind: str) -> str:
    return f' class="{kind}"' if kind else ""


def _table(caption: str, head: list[tuple[str, str]], rows: list[list[tuple[str, str]]], word: dict[str, str]) -> str:
    """The chart's numbers as a plain table: what a screen reader reads, and what a reader copies."""
    out = [f'<table class="chart-data"><caption>{escape(word["table_caption"].format(caption=caption))}'
           f'</caption><thead><tr>']
    out += [f'<th scope="col"{_class(kind)}>{escape(h)}</th>' for h, kind in head]
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>")
        for text, kind in row:
            if kind == "row":
                out.append(f'<th scope="row">{escape(text)}</th>')
            else:
                out.append(f'<td{_class(kind)}>{escape(text)}</td>')
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


# Small helpers.

def _words(lang: str) -> dict[str, str]:
    if lang not in ("id", "en"):
        raise ValueError(f"chart language {lang!r}: expected 'id' or 'en'")
    k = 0 if lang == "id" else 1
    return {key: texts[k] for key, texts in LABELS.items()}


def _uid() -> str:
    return f"chart-{next(_serial)}"


def _shown(cell: Bar | Point) -> bool:
    return cell.value is not None and not cell.suppressed


def _negative(b: Bar) -> bool:
    return _shown(b) and b.value < 0


def _cell_text(cell: Bar | Point, number: Number, word: dict[str, str]) -> str:
    if cell.suppressed:
        return word["suppressed"]
    if cell.value is None:
        return word["no_data"]
    return number(cell.value)


def _cell_class(cell: Bar | Point) -> str:
    return "num suppressed" if cell.suppressed else ("num missing" if cell.value is None else "num")


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round axis steps (1, 2, 2.5 or 5 times a power of ten) covering lo..hi."""
    if hi == lo:
        pad = abs(lo) * 0.1 or 1
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / (count - 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(lo / step) * step
    decimals = max(0, -math.floor(math.log10(step)) + (1 if step / power == 2.5 else 0))
    ticks = []
    k = 0
    while True:
        t = first + k * step
        t = int(round(t)) if decimals == 0 else round(t, decimals)
        ticks.append(t)
        if t >= hi - step * 1e-9:
            return ticks
        k += 1


def _n(x: float) -> str:
    """A coordinate with one decimal, enough for a screen and small in the page."""
    text = f"{x:.1f}"
    return text[:-2] if text.endswith(".0") else text
