"""Full-text search over the catalog, with facets: SQLite FTS5 on the embedded default, PostgreSQL full-text
search in production, the same results on both.

A dataset's search document is made from its description (`catalog.metadata.describe`): its title,
description, tags, and the names, titles and descriptions of its fields. Text is normalized here, before
either engine sees it: accents are stripped, case is folded, and it is split into words of letters and
digits. A dataset matches a query when every query word begins a word of its document. An empty query (or
one with no letters or digits) matches every dataset.

Relevance is computed here too, so both engines rank alike: each query word scores the weight of every part
of the document it begins a word of (`WEIGHTS`); ties go to the dataset id.
"""

from __future__ import annotations

import re
import unicodedata

from sqlalchemy import delete, func, insert, select, text

from catalog.db import SearchDocument, SearchFacet, init_db, session

__all__ = ["FACETS", "SORTS", "WEIGHTS", "index_dataset", "reindex", "remove_dataset", "search", "words"]

FACETS = ("agency", "standard", "tag", "classification")
SORTS = ("relevance", "title", "modified")
WEIGHTS = {"title_words": 4, "tag_words": 2, "description_words": 1, "field_words": 1}


def _folded(value: str) -> str:
    """`value` without accents, in lower case."""
    return "".join(c for c in unicodedata.normalize("NFKD", value) if not unicodedata.combining(c)).lower()


def words(value: str) -> list[str]:
    """The words of `value` (letters and digits) without accents, in lower case, each once, in order."""
    return list(dict.fromkeys(re.findall(r"[^\W_]+", _folded(value))))


def _joined(*values: str | None) -> str:
    return " ".join(words(" ".join(v for v in values if v)))


def index_dataset(s, description: dict) -> None:
    """(Re)write one dataset's search document and facet values from its description, in session `s`."""
    dataset_id = description["id"]
    remove_dataset(s, dataset_id)
    fields = [part for f in description.get("schema", []) for part in
              (f["name"], f.get("title"), f.get("description"), f.get("title_en"), f.get("description_en"))]
    parts = {"title_words": _joined(description["title"]), "description_words": _joined(description.get("description")),
             "tag_words": _joined(*description.get("tags", [])), "field_words": _joined(*fields)}
    document = {"dataset_id": dataset_id, "title": description["title"], "modified": description.get("modified"),
                **parts, "words": _joined(*parts.values())}
    s.execute(insert(SearchDocument), [document])
    values = {"agency": [description.get("agency")], "standard": [description.get("standard")],
              "tag": description.get("tags", []), "classification": [description.get("classification")]}
    facet_rows = [{"dataset_id": dataset_id, "facet": facet, "value": value}
                  for facet, facet_values in values.items() for value in dict.fromkeys(facet_values) if value]
    if facet_rows:
        s.execute(insert(SearchFacet), facet_rows)
    if s.get_bind().dialect.name == "sqlite":
        s.execute(text("INSERT INTO hub_search_fts (dataset_id, words) VALUES (:id, :words)"),
                  {"id": dataset_id, "words": document["words"]})


def reindex(settings) -> int:
    """Rebuild every dataset's search document (a catalog made before search existed, say); how many."""
    from sqlalchemy import select

    from catalog.db import Dataset
    from catalog.metadata import describe

    init_db(settings.catalog_url)
    with session(settings.catalog_url) as s, s.begin():
        datasets = s.scalars(select(Dataset)).all()
        for d in datasets:
            index_dataset(s, describe(s, d))
        return len(datasets)


def remove_dataset(s, dataset_id: str) -> None:
    """Take a dataset out of search, in session `s`."""
    s.execute(delete(SearchFacet).where(SearchFacet.dataset_id == dataset_id))
    s.execute(delete(SearchDocument).where(SearchDocument.dataset_id == dataset_id))
    if s.get_bind().dialect.name == "sqlite":
        s.execute(text("DELETE FROM hub_search_fts WHERE dataset_id = :id"), {"id": dataset_id})


def _matching(dialect: str, query_words: list[str]):
    """The condition on SearchDocument that every query word begins a word of the document."""
    if dialect == "sqlite":
        # Each word quoted: FTS5 reads it as a word, never as syntax (the words hold only letters and digits).
        fts = text("SELECT dataset_id FROM hub_search_fts WHERE hub_search_fts MATCH :match").bindparams(
            match=" ".join(f'"{w}"*' for w in query_words)).columns(dataset_id=SearchDocument.dataset_id.type)
        return SearchDocument.dataset_id.in_(fts)
    return text("array_to_tsvector(string_to_array(hub_search_documents.words, ' ')) @@ CAST(:tsquery AS tsquery)"
                ).bindparams(tsquery=" & ".join(f"'{w}':*" for w in query_words))


def _relevance(document: SearchDocument, query_words: list[str]) -> int:
    return sum(weight for w in query_words for part, weight in WEIGHTS.items()
               if any(word.startswith(w) for word in getattr(document, part).split()))


def search(settings, q: str = "", filters: dict[str, list[str]] | None = None, facets=FACETS, rows: int = 10,
           start: int = 0, sort: str = "relevance", among: set[str] | None = None) -> dict:
    """Datasets matching `q` and every filter (a facet's listed values are alternatives), one page of them;
    only datasets in `among`, where given (those the caller may know of).

    Returns `{"count": all matches, "results": dataset ids of the page, "facets": {facet: {value: count}}}`,
    with facet values counted over all matches, most frequent first.
    """
    filters = filters or {}
    if unknown := (set(filters) | set(facets)) - set(FACETS):
        raise ValueError(f"no search facet {sorted(unknown)}; facets: {', '.join(FACETS)}")
    if sort not in SORTS:
        raise ValueError(f"no search sort {sort!r}; sorts: {', '.join(SORTS)}")
    init_db(settings.catalog_url)
    query_words = words(q)
    with session(settings.catalog_url) as s:
        matched = select(SearchDocument.dataset_id)
        if among is not None:
            matched = matched.where(SearchDocument.dataset_id.in_(sorted(among)))
        if query_words:
            matched = matched.where(_matching(s.get_bind().dialect.name, query_words))
        for facet, values in filters.items():
            matched = matched.where(SearchDocument.dataset_id.in_(
                select(SearchFacet.dataset_id).where(SearchFacet.facet == facet, SearchFacet.value.in_(values))))
        documents = s.scalars(select(SearchDocument).where(SearchDocument.dataset_id.in_(matched))).all()
        counts = s.execute(select(SearchFacet.facet, SearchFacet.value, func.count())
                           .where(SearchFacet.dataset_id.in_(matched), SearchFacet.facet.in_(facets))
                           .group_by(SearchFacet.facet, SearchFacet.value)).all()
    documents = sorted(documents, key=lambda d: d.dataset_id)
    if sort == "relevance":
        documents.sort(key=lambda d: _relevance(d, query_words), reverse=True)
    elif sort == "title":
        documents.sort(key=lambda d: _folded(d.title))
    else:  # the most recently modified first; never modified last
        documents.sort(key=lambda d: d.modified or "", reverse=True)
    by_facet = {facet: {} for facet in facets}
    for facet, value, count in sorted(counts, key=lambda c: (-c[2], c[1])):
        by_facet[facet][value] = count
    return {"count": len(documents), "results": [d.dataset_id for d in documents[start:start + rows]],
            "facets": by_facet}
