"""The portal's home page: the city's headline figures, data topics and featured datasets, as a visitor may see them."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from urllib.parse import urlencode

from sqlalchemy import select

from catalog.access import PLAIN, listed
from catalog.db import Dataset, DatasetVersion, session, utcnow
from catalog.identity import Identity
from hub.errors import Busy, HubError
from serving.numbers import number

__all__ = ["FEATURED", "LABELS", "home"]

log = logging.getLogger(__name__)

FEATURED = 6  # datasets the home page shows: the site's own choice first, then the newest
_DESCRIPTION_CHARACTERS = 160  # about one line of a card at desktop width

# The home page's words that the portal's LABELS does not have: key -> (Indonesian, English). The portal merges
# them into its own catalogue; `{n}` and `{unit}` are filled in by `home`.
LABELS = {
    "home_title": ("Beranda", "Home"),
    "home_intro": ("Temukan, baca dan unduh data resmi Kota Bogor dari seluruh perangkat daerah, menurut Satu Data "
                   "Indonesia.",
                   "Find, read and download Kota Bogor's official data from every city agency, under Satu Data "
                   "Indonesia."),
    "home_search_label": ("Cari dataset", "Search the datasets"),
    "home_emblem_alt": ("Lambang", "Coat of arms of"),  # followed by the city's name
    "home_headlines": ("Angka utama", "Key figures"),
    "home_topics": ("Topik", "Topics"),
    "home_topic_count": ("dataset", "datasets"),
    "home_topic_count_one": ("dataset", "dataset"),
    "home_satu_data": ("Topik Satu Data", "Satu Data topic"),
    "home_featured": ("Dataset pilihan", "Featured datasets"),
    "home_no_featured": ("Belum ada dataset yang diterbitkan.", "No dataset has been published yet."),
    "home_contact": ("Hubungi walidata", "Contact the walidata"),
    "home_email": ("E-mail", "E-mail"),
    "home_phone": ("Telepon", "Phone"),
    "home_address": ("Alamat", "Address"),
    "trend_up": ("naik {n} sejak versi sebelumnya", "up {n} since the previous version"),
    "trend_down": ("turun {n} sejak versi sebelumnya", "down {n} since the previous version"),
    "trend_same": ("tidak berubah sejak versi sebelumnya", "unchanged since the previous version"),
    "updated_now": ("diperbarui baru saja", "updated just now"),
    "updated_ago": ("diperbarui {n} {unit} lalu", "updated {n} {unit} ago"),
    "unit_minute": ("menit", "minute"),
    "unit_minutes": ("menit", "minutes"),
    "unit_hour": ("jam", "hour"),
    "unit_hours": ("jam", "hours"),
    "unit_day": ("hari", "day"),
    "unit_days": ("hari", "days"),
    "unit_month": ("bulan", "month"),
    "unit_months": ("bulan", "months"),
    "unit_year": ("tahun", "year"),
    "unit_years": ("tahun", "years"),
}

# Sums of a field by (catalog, dataset id, snapshot id, field): a snapshot never changes, so neither does its sum,
# and the home page reads no data once each headline's current and previous versions were summed once.
_sums: dict[tuple, int | float | None] = {}
_sums_lock = threading.Lock()
_MAX_SUMS = 4096  # versions of headline datasets: far more than a catalog has; past it, start again


def home(settings, who: Identity, lang: str, now: dt.datetime | None = None) -> dict:
    """The home page's context for `who` in `lang` ("id" or "en"): `site`, `headlines`, `topics`, `featured`.
    Freshness is measured from `now` (UTC, naive like the catalog's times; default: now)."""
    from serving.site import site

    settings_of_site = site()
    known = listed(settings, who)
    now = now or utcnow()
    with session(settings.catalog_url) as s:
        datasets = {d.id: d for d in s.scalars(select(Dataset).where(Dataset.id.in_(list(known))))}
        wanted = {h.dataset for h in settings_of_site.headlines if h.dataset in datasets}
        versions: dict[str, list[DatasetVersion]] = {}
        for v in s.scalars(select(DatasetVersion).where(DatasetVersion.dataset_id.in_(wanted))
                           .order_by(DatasetVersion.committed_at.desc(), DatasetVersion.id.desc())):
            versions.setdefault(v.dataset_id, []).append(v)
    return {
        "site": settings_of_site,
        "headlines": _headlines(settings, who, lang, now, settings_of_site.headlines, datasets, known, versions),
        "topics": _topics(lang, datasets.values()),
        "featured": _featured(lang, now, settings_of_site.featured, datasets),
    }


def _t(key: str, lang: str) -> str:
    return LABELS[key][1 if lang == "en" else 0]


def _link(path: str, lang: str, **query: str) -> str:
    """A link of this site that keeps the language, as the portal's own links do."""
    return f"{path}?{urlencode([*query.items(), ('lang', lang)])}"


def _freshness(updated: dt.datetime | None, now: dt.datetime, lang: str) -> dict:
    """When a dataset was last updated: as an ISO time, a date, and in words ("diperbarui 3 hari lalu")."""
    if updated is None:
        return {"updated_at": None, "updated_date": None, "updated_words": None}
    seconds = max(0, (now - updated).total_seconds())
    words = _t("updated_now", lang)
    # The largest unit that fits at least once; months of 30 days and years of 365 are near enough for "ago".
    for unit, size in (("year", 365 * 86400), ("month", 30 * 86400), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = int(seconds // size)
            words = _t("updated_ago", lang).format(n=n, unit=_t(f"unit_{unit}" + ("" if n == 1 else "s"), lang))
            break
    return {"updated_at": updated.isoformat(timespec="seconds") + "Z", "updated_date": updated.date().isoformat(),
            "updated_words": words}


def _trend(value, previous, lang: str) -> dict:
    if previous is None or value is None:
        return {"previous": None, "change": None, "trend": None, "trend_text": None}
    change = value - previous
    trend = "up" if change > 0 else "down" if change < 0 else "same"
    text = _t(f"trend_{trend}", lang).format(n=number(abs(change), lang))
    return {"previous": previous, "change": change, "trend": trend, "trend_text": text}


def _headlines(settings, who, lang, now, headlines, datasets, known, versions) -> list[dict]:
    shown = []
    for h in headlines:
        d = datasets.get(h.dataset)
        if d is None:
            continue  # not published yet, or not for `who` to know of
        history = versions.get(d.id, [])
        # The version before the current one: the catalog's current version may not be its newest (a rollback).
        at = next((i for i, v in enumerate(history) if v.snapshot_id == d.snapshot_id), 0)
        before = history[at + 1] if len(history) > at + 1 else None
        if h.sum is None:
            value, previous = d.row_count, before.row_count if before else None
        else:
            access = known[d.id]
            # Only the plain column is summed: then every reader's sum is the same, and the cache may share it.
            if d.snapshot_id is None or not access.readable or access.column(h.sum) != PLAIN:
                continue
            value = _sum(settings, who, d, d.snapshot_id, h.sum)
            if value is None:
                continue
            previous = _sum(settings, who, d, before.snapshot_id, h.sum) if before else None
        shown.append({"dataset": d.id, "title": h.title_en if lang == "en" else h.title, "field": h.sum,
                      "value": value, "value_text": number(value, lang), **_trend(value, previous, lang),
                      **_freshness(d.updated_at, now, lang), "href": _link(f"/dataset/{d.id}", lang)})
    return shown


def _sum(settings, who, d: Dataset, snapshot_id: int, field: str):
    """The sum of `field` over one version of `d`, read as `who` may (None when it cannot be read now)."""
    import duckdb

    from catalog.query import sandbox

    key = (settings.catalog_url, d.id, snapshot_id, field)
    if key in _sums:
        return _sums[key]
    try:
        with sandbox(settings, who, {d.id: snapshot_id}) as (con, _):
            columns = {row[0] for row in con.execute(f'DESCRIBE "{d.id}"').fetchall()}
            if field not in columns:  # the version was written before the standard had it
                value = None
            else:
                value = con.execute(f'SELECT sum("{field}") FROM "{d.id}"').fetchone()[0]
    except Busy:
        return None  # every query slot taken: this once, the headline waits; nothing is cached
    except (HubError, OSError, duckdb.Error) as e:  # a broken headline must not take the home page down with it
        log.warning("home page: the sum of %s over %s@%s cannot be read: %s", field, d.id, snapshot_id, e)
        return None
    if value is not None and not isinstance(value, (int, float)):
        value = float(value)  # DECIMAL sums come as Decimal
    with _sums_lock:
        if len(_sums) >= _MAX_SUMS:
            _sums.clear()
        _sums[key] = value
    return value


def _topics(lang: str, datasets) -> list[dict]:
    from schemas.topics import topics

    # A topic counts what the public browses: integrated datasets and indicators, not each agency's own copy.
    standards = [d.standard for d in datasets if d.kind != "harmonized"]
    tiles = []
    for topic in topics():
        count = sum(1 for name in standards if name in topic.standards)
        tiles.append({"id": topic.id, "title": topic.title_en if lang == "en" else topic.title,
                      "satu_data": topic.satu_data, "count": count,
                      "count_text": _t("home_topic_count_one" if count == 1 else "home_topic_count", lang),
                      "href": _link("/search", lang, topic=topic.id)})
    return tiles


def _featured(lang: str, now: dt.datetime, chosen, datasets: dict) -> list[dict]:
    from serving.portal import KINDS, _localized  # the portal imports this module

    picked = [datasets[i] for i in dict.fromkeys(chosen) if i in datasets]
    newest = sorted((d for d in datasets.values() if d.kind in ("integrated", "indicator") and d not in picked),
                    key=lambda d: (d.updated_at is not None, d.updated_at or dt.datetime.min, d.id), reverse=True)
    cards = []
    for d in (picked + newest)[:FEATURED]:
        title, description = _localized(d, lang)
        cards.append({"id": d.id, "title": title, "description": _one_line(description or ""), "kind": d.kind,
                      "kind_label": KINDS.get(d.kind, (d.kind, d.kind))[1 if lang == "en" else 0],
                      "rows": d.row_count, "rows_text": number(d.row_count or 0, lang),
                      **_freshness(d.updated_at, now, lang), "href": _link(f"/dataset/{d.id}", lang)})
    return cards


def _one_line(text: str) -> str:
    """A description's first sentence, cut to about one line."""
    text = " ".join(text.split())
    end = text.find(". ")
    if end != -1:
        text = text[:end + 1]
    if len(text) > _DESCRIPTION_CHARACTERS:
        text = text[:_DESCRIPTION_CHARACTERS].rsplit(" ", 1)[0].rstrip(",;:") + "…"
    return text
