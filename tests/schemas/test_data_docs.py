"""Great Expectations Data Docs of a run's validation, drawn by GE's own renderer from the counts the catalog stored."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from sqlalchemy import select

from schemas import load_standard
from schemas.data_docs import validation_page
from schemas.suite import compile_suite

SOURCES = ("disdukcapil_siak", "dinsos_dtks")


class DataDocs(HTMLParser):
    """A Data Docs page read back: its sections, each with its title (its first h5) and its table rows.

    A row is the classes of its first icon (GE's status) and the text of each cell.
    """

    def __init__(self, html: str) -> None:
        super().__init__()
        self.sections: list[dict] = []
        self._title = self._cells = self._icon = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        classes = (dict(attrs).get("class") or "").split()
        if tag == "div" and "ge-section" in classes:
            self.sections.append({"title": None, "rows": []})
        elif tag == "h5" and self.sections and self.sections[-1]["title"] is None:
            self._title = []
        elif tag == "tr":
            self._cells, self._icon = [], None
        elif tag == "td" and self._cells is not None:
            self._cells.append("")
        elif tag == "i" and self._cells is not None and self._icon is None:
            self._icon = set(classes)

    def handle_endtag(self, tag: str) -> None:
        if tag == "h5" and self._title is not None:
            self.sections[-1]["title"], self._title = " ".join("".join(self._title).split()), None
        elif tag == "tr" and self._cells is not None:
            if self._cells:
                self.sections[-1]["rows"].append({"icon": self._icon or set(),
                                                  "cells": [" ".join(c.split()) for c in self._cells]})
            self._cells = None

    def handle_data(self, data: str) -> None:
        if self._title is not None:
            self._title.append(data)
        elif self._cells:
            self._cells[-1] += data


def last_validation(home, dataset: str) -> tuple[dict, dict]:
    """The last run's validation as the catalog describes it, and the run (id, finish time, dataset)."""
    from catalog.db import Dataset, session
    from catalog.metadata import describe

    with session(f"sqlite:///{home / 'catalog.db'}") as s:
        about = describe(s, s.get(Dataset, dataset))
    [run] = [r for r in about["runs"] if r["run_id"] == about["quality"]["run_id"]]
    return about["quality"]["validation"], {"dataset": dataset, **run}


def quarantined_values(home, dataset: str, run_id: str) -> set[str]:
    """The texts of the records the run quarantined, as the agency sent them (personal data included)."""
    from catalog.db import QuarantinedRow, session

    with session(f"sqlite:///{home / 'catalog.db'}") as s:
        records = s.scalars(select(QuarantinedRow.record).where(QuarantinedRow.dataset_id == dataset,
                                                                 QuarantinedRow.run_id == run_id)).all()
    return {str(v) for record in records for v in record.values() if v is not None}


def unexpected_percent(observed: str) -> float:
    """The share of rows failing, from GE's observed value ("≈0.16667% unexpected", or "≈99.833% not null")."""
    number, _, what = observed.removeprefix("≈").partition("% ")
    return {"unexpected": float(number), "not null": 100 - float(number)}[what]


@pytest.mark.parametrize("source", SOURCES)
def test_the_page_is_ge_data_docs_of_every_expectation_with_the_stored_counts(home, published, source):
    dataset = published[source]["dataset"]
    validation, run = last_validation(home, dataset)
    standard = load_standard(validation["suite"])
    checks = validation["checks"]
    html = validation_page(standard, validation, run)

    # GE's page: its document title, its validation-result sidebar, its sections and result tables.
    assert "<title>Data documentation compiled by Great Expectations</title>" in html
    assert "Expectation Validation Result" in html and 'class="ge-section' in html
    page = DataDocs(html)
    sections = {s["title"]: s["rows"] for s in page.sections}
    overview = {r["cells"][0]: r["cells"][1] for r in sections["Overview"]}

    suite = compile_suite(standard).expectations
    failing = [e for e in suite if checks[e.meta["reason"]]["unexpected_count"]]
    assert failing, "the demo sources send records that fail the standard: the page must show failures"
    assert overview["Evaluated Expectations"] == str(len(suite))
    assert overview["Unsuccessful Expectations"] == str(len(failing))
    assert re.search(r"Status:\s*Failed", re.sub(r"<[^>]+>", " ", html))

    # The run's section comes last, under headings of its own tables (h6).
    run_info = {r["cells"][0]: r["cells"][1] for r in page.sections[-1]["rows"]}
    assert run_info["Run Name"] == run["run_id"]
    assert run_info["Run Time"] == run["finished_at"][:19] + "Z"
    assert run_info["data_asset_name"] == dataset

    # Every expectation of the suite, under its column, in the suite's order, with the run's counts.
    by_column: dict[str, list] = {}
    for e in suite:
        column = e.configuration.kwargs.get("column")
        by_column.setdefault(column if isinstance(column, str) else "Table-Level Expectations", []).append(e)
    assert set(by_column) <= set(sections)
    for column, expectations in by_column.items():
        rows = sections[column]
        assert len(rows) == len(expectations), column
        for e, row in zip(expectations, rows):
            check = checks[e.meta["reason"]]
            status, expectation, observed = row["cells"]
            if check["unexpected_count"]:
                assert {"fa-times", "text-danger"} <= row["icon"], e.meta["reason"]
                assert f"{check['unexpected_count']:,} unexpected values found." in expectation
                assert f"of {check['element_count']:,} total rows" in expectation
            else:
                assert {"fa-check-circle", "text-success"} <= row["icon"], e.meta["reason"]
                assert "unexpected values found" not in expectation
            # GE rounds to 5 digits; one row of the demo's hundreds is more than 0.1 point.
            share = 100 * check["unexpected_count"] / check["element_count"]
            assert unexpected_percent(observed) == pytest.approx(share, abs=0.01), e.meta["reason"]


@pytest.mark.parametrize("source", SOURCES)
def test_the_page_shows_no_value_of_a_quarantined_record(home, published, source):
    dataset = published[source]["dataset"]
    validation, run = last_validation(home, dataset)
    standard = load_standard(validation["suite"])
    html = validation_page(standard, validation, run)

    values = quarantined_values(home, dataset, run["run_id"])
    niks = {v for v in values if re.fullmatch(r"\d{15,16}", v)}
    assert niks, "the demo quarantines records with a NIK: the test must have some to look for"
    assert not re.search(r"(?<!\d)\d{15,16}(?!\d)", html)
    # Names, addresses and NIKs as sent: long texts, unlike GE's own words. A value the standard itself allows
    # (a kode wilayah of its code list) is shown as the rule's argument, as it is in the data dictionary.
    allowed = {str(v) for e in compile_suite(standard).expectations for arg in e.configuration.kwargs.values()
               for v in (arg if isinstance(arg, list) else [arg])}
    assert not [v for v in values - allowed if len(v) >= 10 and v in html]


def test_only_a_run_with_its_own_expectation_results_has_a_page(home, published):
    validation, run = last_validation(home, "penduduk")  # integrated: its sources' runs checked the rows
    with pytest.raises(ValueError, match="no expectation results of its own"):
        validation_page(load_standard(validation["suite"]), validation, run)

    validation, run = last_validation(home, published["disdukcapil_siak"]["dataset"])
    other = "penduduk@1.1.0" if validation["suite"] != "penduduk@1.1.0" else "penduduk@1.0.0"
    with pytest.raises(ValueError, match="was validated against"):
        validation_page(load_standard(other), validation, run)
