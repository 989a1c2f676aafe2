"""The portal's identity and settings that only the city knows: its name, emblem, walidata, where to ask for access,
the home page's headlines and featured datasets (`serving/site.yaml`, or the file HUB_SITE names)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from hub.errors import ConfigError
from hub.followed import Followed

__all__ = ["Headline", "Site", "site", "site_path"]

_SHIPPED = Path(__file__).parent / "site.yaml"
_KEYS = {"city", "emblem", "walidata", "access_request", "headlines", "featured"}
_CONTACT = ("name", "email", "phone", "address")
_HEADLINE = {"dataset", "title", "title_en", "sum"}


@dataclass(frozen=True)
class Headline:
    """A figure of the home page: a dataset's rows in its current version, or the sum of one field."""

    dataset: str
    title: str
    title_en: str
    sum: str | None = None


@dataclass(frozen=True)
class Site:
    city: str
    emblem: Path | None
    walidata: dict
    access_url: str | None
    access_email: str | None
    headlines: tuple[Headline, ...]
    featured: tuple[str, ...]


def site_path() -> Path:
    return Path(os.environ.get("HUB_SITE") or _SHIPPED).resolve()


_sites = Followed("site settings")


def site() -> Site:
    """The site's settings, read again when the file changes; a broken file keeps its last good version."""
    path = site_path()
    return _sites.get("site", [path], lambda: _read(path))


def _read(path: Path) -> Site:
    def wrong(message: str) -> ConfigError:
        return ConfigError(f"{path}: {message}")

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise wrong("no such file (HUB_SITE names the portal's site settings)") from None
    except yaml.YAMLError as e:
        raise wrong(f"not YAML: {e}") from None
    if not isinstance(data, dict):
        raise wrong("write a mapping of " + ", ".join(sorted(_KEYS)))
    if unknown := set(data) - _KEYS:
        raise wrong(f"unknown key {sorted(unknown)[0]!r}; keys: {', '.join(sorted(_KEYS))}")
    if not isinstance(data.get("city"), str) or not data["city"].strip():
        raise wrong("`city` must name the city")
    walidata = data.get("walidata") or {}
    if not isinstance(walidata, dict) or set(walidata) - set(_CONTACT) or not walidata.get("name"):
        raise wrong(f"`walidata` needs a name, and may have {', '.join(_CONTACT[1:])}")
    access = data.get("access_request") or {}
    if not isinstance(access, dict) or set(access) - {"url", "email"}:
        raise wrong("`access_request` may have `url` (a request form) and `email`")
    url = access.get("url") or None
    if url and not str(url).startswith(("https://", "http://", "/")):
        raise wrong(f"`access_request.url` {url!r} must be an http(s) address or a path of this site")
    headlines = []
    for i, h in enumerate(data.get("headlines") or [], 1):
        if not isinstance(h, dict) or set(h) - _HEADLINE or not all(h.get(k) for k in ("dataset", "title", "title_en")):
            raise wrong(f"headline {i}: write dataset, title, title_en and, to add a field up, sum")
        headlines.append(Headline(str(h["dataset"]), str(h["title"]), str(h["title_en"]), h.get("sum")))
    featured = data.get("featured") or []
    if not isinstance(featured, list) or not all(isinstance(x, str) for x in featured):
        raise wrong("`featured` is a list of dataset ids")
    emblem = data.get("emblem")
    if emblem:
        emblem = (path.parent / emblem).resolve()
        if emblem.suffix.lower() not in (".png", ".svg") or not emblem.is_file():
            raise wrong(f"`emblem` {data['emblem']!r}: no PNG or SVG file there")
    return Site(city=data["city"].strip(), emblem=emblem or None, walidata={k: walidata.get(k) for k in _CONTACT},
                access_url=url, access_email=access.get("email") or None, headlines=tuple(headlines),
                featured=tuple(featured))
