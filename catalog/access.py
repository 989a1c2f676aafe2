"""Who may see what: a dataset's and each field's classification against what the caller is cleared for.

Every path out of the hub (rows, SQL, downloads, the CKAN API, DCAT, the portal, quarantine) asks `access_to`
and nothing else, so one rule holds everywhere:

- `publik` data is for anyone; `terbatas` for anyone with a token (government users); `rahasia` only for
  those the standard's `x-access` clears (agencies by code, roles) and, for a source's own dataset, the agency
  that owns it.
- A field can be stricter than its dataset (`x-classification` on the field): whoever may not see the field
  does not get the column at all.
- Personal data (`x-personal-data`) is plain only for the cleared. Everyone else with a token sees a NIK as
  its pseudonym (the same in every dataset, so data can be joined and people counted) and other personal
  data masked; without a token it is masked.
- A `rahasia` dataset is not even listed to those not cleared: to them it does not exist.
- A column takes its class and personal-data kind from the standard version the data was written with, or,
  when that version no longer names it (a major version dropped the field), from the newest version that
  did. A column that no version of the standard names is left out for everyone but stewards: nobody has
  said what it holds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from catalog.identity import Identity
from hub.errors import ConfigError, HubError

__all__ = ["HUB_COLUMNS", "LEVELS", "MASKED", "PLAIN", "PSEUDONYM", "Access", "AccessDenied", "access_to", "cleared",
           "listed"]

LEVELS = {"publik": 0, "terbatas": 1, "rahasia": 2}
PLAIN, PSEUDONYM, MASKED = "plain", "pseudonym", "masked"
log = logging.getLogger(__name__)

HUB_COLUMNS = ("_source",)  # columns the hub itself writes (`catalog.storage.SOURCE_COLUMN`): public, never personal


class AccessDenied(HubError):
    """The caller may not read a dataset: with `needs_token`, a token would do (401); else its token does not (403)."""

    def __init__(self, message: str, needs_token: bool) -> None:
        super().__init__(message)
        self.needs_token = needs_token


@dataclass(frozen=True)
class Access:
    """What one caller may do with one dataset."""

    dataset: str
    classification: str
    listed: bool  # may know the dataset exists: its metadata
    readable: bool  # may read its rows
    cleared: bool  # sees personal data and rahasia fields plain
    anonymous: bool
    # Every field any version of the standard names -> (classification level, personal-data kind or None)
    fields: dict
    steward: bool = False

    def column(self, name: str) -> str | None:
        """How the column `name` reaches this caller: PLAIN, PSEUDONYM or MASKED, or None when it does not."""
        if name not in self.fields:
            if name in HUB_COLUMNS:
                return PLAIN
            return PLAIN if self.steward else None  # unclassified: only stewards, to find out what it is
        level, personal = self.fields[name]
        if level > self.level:
            return None
        if personal is None or self.cleared:
            return PLAIN
        return PSEUDONYM if personal == "nik" and not self.anonymous else MASKED

    @property
    def level(self) -> int:
        """The highest classification this caller may see in this dataset."""
        return LEVELS["rahasia"] if self.cleared else LEVELS["publik"] if self.anonymous else LEVELS["terbatas"]

    def restricted(self, columns) -> bool:
        """Whether reading `columns` reads anything not `publik` (such reads are audited)."""
        return LEVELS[self.classification] > 0 or any(self.fields.get(c, (0, None))[0] > 0 for c in columns)

    def require_readable(self) -> None:
        if not self.readable:
            if self.anonymous:
                raise AccessDenied(f"dataset {self.dataset} is {self.classification}: send a token "
                                   "(Authorization: Bearer TOKEN)", needs_token=True)
            raise AccessDenied(f"dataset {self.dataset} is {self.classification}: your token is not cleared "
                               "for it", needs_token=False)


def cleared(who: Identity, dataset, standard) -> bool:
    """Whether `who` is cleared for `dataset`'s data: its owner agency, or named by the standard's x-access."""
    if who.anonymous:
        return False
    if who.role == "agency" and who.agency and (who.agency == dataset.agency_code
                                               or who.agency in standard.access_agencies):
        return True
    return who.role in standard.access_roles


def access_to(who: Identity, dataset, standard) -> Access:
    """What `who` may do with `dataset` (a catalog Dataset) whose data was written with `standard`."""
    level = LEVELS[dataset.classification]
    clear = cleared(who, dataset, standard)
    if who.anonymous:
        readable = level == 0
    else:
        readable = level <= LEVELS["terbatas"] or clear
    fields = {}
    for version in _versions_newest_first(standard):  # the data's own version first, then the newest first
        for f in version.fields:
            fields.setdefault(f.name, (max(level, LEVELS[f.classification or "publik"]), f.personal_data))
    return Access(dataset=dataset.id, classification=dataset.classification,
                  listed=level < LEVELS["rahasia"] or clear, readable=readable, cleared=clear,
                  anonymous=who.anonymous, fields=fields, steward=who.role == "steward")


def _versions_newest_first(standard) -> list:
    from schemas.standards import list_standards

    others = [s for s in list_standards() if s.name == standard.name and s.version != standard.version]
    others.sort(key=lambda s: tuple(int(p) for p in s.version.split(".")), reverse=True)
    return [standard, *others]


def listed(settings, who: Identity) -> dict[str, Access]:
    """Every dataset `who` may know of, by id, with what it may do with each."""
    from catalog.db import Dataset, init_db, session
    from schemas import load_standard

    init_db(settings.catalog_url)
    with session(settings.catalog_url) as s:
        datasets = s.query(Dataset).order_by(Dataset.id).all()
    standards: dict[str, object] = {}  # several datasets share a standard: each loaded once (every request asks)
    for ref in {f"{d.standard}@{d.standard_version}" for d in datasets}:
        try:
            standards[ref] = load_standard(ref)
        except ConfigError as e:
            # No version of its file ever loaded in this process: what its datasets hold and who may see it is
            # the standard's to say, so they are known to nobody meanwhile; every other dataset stays.
            log.warning("datasets of %s are left out until its standard loads: %s", ref, e)
    found = {d.id: access_to(who, d, standards[f"{d.standard}@{d.standard_version}"]) for d in datasets
             if f"{d.standard}@{d.standard_version}" in standards}
    return {i: a for i, a in found.items() if a.listed}
