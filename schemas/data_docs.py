"""Great Expectations Data Docs for a run's validation, rebuilt from the counts the hub stored for it."""

from __future__ import annotations

import html
from html.parser import HTMLParser

from schemas.standards import Standard

__all__ = ["STYLESHEET", "validation_page", "validation_result"]

# The page's one stylesheet, served by the hub (serving/static/docs): GE's own page loads Bootstrap, jQuery, Font
# Awesome, Vega and more from public CDNs, which the hub's Content-Security-Policy refuses and which would tell
# those CDNs who reads the hub's quality reports.
STYLESHEET = "/static/docs/data-docs.css"

# The hub's own expectations (schemas.expectations) in Great Expectations' words; GE renders its built-in ones
# itself and would show these as their class name and arguments.
_WORDS = {
    "expect_column_values_to_match_pattern": "values must match the JSON Schema pattern {pattern}.",
    "expect_column_values_to_match_format": "values must be of the JSON Schema format {format}.",
    "expect_column_values_to_be_multiple_of": "values must be a multiple of {value}.",
}


def validation_result(standard: Standard, validation: dict, run: dict, unexpected: dict | None = None):
    """A run's validation as Great Expectations' ExpectationSuiteValidationResult.

    The hub validates a run batch by batch and keeps, per expectation of the suite, the rows checked and the
    rows failing (`validation["checks"]`, by reason code), never the failing values; the suite is compiled again
    from the standard, which gives the same suite every time. `run` holds `run_id`, `finished_at` (ISO 8601 or
    None) and `dataset`, shown as the data asset. `unexpected` (schemas.validation.Unexpected.found) adds, by
    reason code, the first failing rows and, where they may be kept, their values (GE's partial lists).
    """
    import great_expectations as gx
    from great_expectations.core import ExpectationSuiteValidationResult, ExpectationValidationResult
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.validator.validation_statistics import calc_validation_statistics

    from schemas.suite import compile_suite

    if validation.get("suite") != standard.ref:
        raise ValueError(f"run {run['run_id']} was validated against {validation.get('suite')}, not {standard.ref}")
    if "checks" not in validation:
        # An integrated dataset's run checks no rows itself: its sources' runs did.
        raise ValueError(f"run {run['run_id']} has no expectation results of its own")
    results = []
    for expectation in compile_suite(standard).expectations:
        words = _WORDS.get(expectation.expectation_type)
        if words:
            # GE sets a description as markup, where its own texts escape their arguments.
            expectation.description = html.escape(words.format(**expectation.configuration.kwargs))
        # An expectation no batch reached (a run of no rows) checked nothing, and so found nothing wrong.
        check = validation["checks"].get(expectation.meta["reason"], {"element_count": 0, "unexpected_count": 0})
        checked, failed = check["element_count"], check["unexpected_count"]
        # Without `unexpected`, counts only: the page can show no value of a record, personal data included.
        found = (unexpected or {}).get(expectation.meta["reason"], {"rows": [], "values": []})
        result = {"element_count": checked, "unexpected_count": failed,
                  "unexpected_percent": 100 * failed / checked if checked else None,
                  "partial_unexpected_list": found["values"] or []}
        if unexpected is not None:
            result["partial_unexpected_index_list"] = found["rows"]
        results.append(ExpectationValidationResult(
            success=failed == 0,  # the suite sets no `mostly`: one failing row fails the expectation
            expectation_config=expectation.configuration, result=result,
            meta={"values_withheld": True} if found["values"] is None else {},
            exception_info={"raised_exception": False, "exception_message": None, "exception_traceback": None},
        ))
    statistics = calc_validation_statistics(results)
    return ExpectationSuiteValidationResult(
        success=statistics.success,
        results=results,
        suite_name=standard.ref,
        statistics=statistics._asdict(),
        meta={"run_id": RunIdentifier(run_name=run["run_id"], run_time=run.get("finished_at")),
              "great_expectations_version": gx.__version__,
              "batch_spec": {"data_asset_name": run["dataset"]}},
    )


def validation_page(standard: Standard, validation: dict, run: dict) -> str:
    """The run's validation as a Data Docs page (HTML), drawn by Great Expectations' own renderer and view."""
    from great_expectations.render.renderer import ValidationResultsPageRenderer
    from great_expectations.render.view import DefaultJinjaPageView

    # Run info after the results, as a section of its own: in the overview it sits in a block only
    # JavaScript opens.
    document = ValidationResultsPageRenderer(run_info_at_end=True).render(validation_result(standard, validation, run))
    # The how-to walkthrough belongs to a GE project's own site, not to a page served by the hub.
    return _own_origin_only(DefaultJinjaPageView().render(document, show_how_to_buttons=False))


class _OwnOriginOnly(HTMLParser):
    """GE's page rewritten to load nothing from elsewhere and to run nothing: its scripts (all jQuery and
    Bootstrap behaviour, which the page's content does not need), inline styles and event handlers (the policy
    refuses them), stylesheet links and images (CDNs, GE's logo) go; links into a GE site the hub does not have
    lose their target. Every other tag is written back as GE wrote it."""

    _DROPPED = ("script", "style")  # with what they hold
    _VOID_DROPPED = ("link", "img")

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.out: list[str] = []
        self._inside: str | None = None

    def _tag(self, tag: str, attrs: list, closed: bool) -> None:
        if self._inside or tag in self._VOID_DROPPED:
            return
        if tag in self._DROPPED:
            self._inside = None if closed else tag
            return
        kept = [(k, v) for k, v in attrs if k != "style" and not k.startswith("on")
                and not (tag == "a" and k == "href" and v and not v.startswith(("#", "https://", "http://")))]
        if tag == "html" and "lang" not in dict(kept):
            kept.append(("lang", "en"))  # GE writes in English and does not say so
        if kept == attrs:
            self.out.append(self.get_starttag_text())
        else:
            written = "".join(f" {k}" if v is None else f' {k}="{html.escape(v)}"' for k, v in kept)
            self.out.append(f"<{tag}{written}{' /' if closed else ''}>")

    def handle_starttag(self, tag, attrs):
        self._tag(tag, attrs, closed=False)

    def handle_startendtag(self, tag, attrs):
        self._tag(tag, attrs, closed=True)

    def handle_endtag(self, tag):
        if self._inside:
            if tag == self._inside:
                self._inside = None
            return
        if tag == "head":
            self.out.append(f'<link rel="stylesheet" href="{STYLESHEET}">\n')
        if tag not in self._VOID_DROPPED:
            self.out.append(f"</{tag}>")

    def handle_data(self, data):
        if not self._inside:
            self.out.append(data)

    def handle_entityref(self, name):
        if not self._inside:
            self.out.append(f"&{name};")

    def handle_charref(self, name):
        if not self._inside:
            self.out.append(f"&#{name};")

    def handle_comment(self, data):
        pass  # GE's comments are notes to its template authors

    def handle_decl(self, decl):
        self.out.append(f"<!{decl}>")


def _own_origin_only(page: str) -> str:
    parser = _OwnOriginOnly()
    parser.feed(page)
    parser.close()
    return "".join(parser.out)
