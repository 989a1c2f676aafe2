"""Full-text search over the catalog, with synonyms and facets: SQLite FTS5 on the embedded default, PostgreSQL
full-text search in production, the same results on both.

A dataset's search document is made from its description (`catalog.metadata.describe`): its title,
description, tags, and the names, titles and descriptions of its fields; an integrated or indicator dataset's
English title and description from its standard too. Text is normalized here, before either engine sees it:
accents are stripped, case is folded, and it is split into words of letters and digits.

A query is read as positions (`expand`): where a run of its words is a term of schemas/synonyms.yaml (the
longest run first), that run is one position whose alternatives are the terms of its groups; every other word
is a position of its own. A dataset matches when every position matches one of its alternatives, and an
alternative matches when each of its words begins a word of the document. An empty query (or one with no
letters or digits) matches every dataset.

Relevance is computed here too, so both engines rank alike: a word scores the weight of every part of the
document it begins a word of (`WEIGHTS`), an alternative what its weakest word scores, a position its best
alternative, a dataset the sum over the positions; ties go to the dataset id.
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from pathlib import Path

import yaml
from sqlalchemy import delete, func, insert, or_, select, text
from sqlalchemy.exc import DBAPIError

from catalog.db import SearchDocument, SearchFacet, init_db, session
from hub.errors import ConfigError
from hub.followed import BrokenFile, Followed, Problem, yaml_document

__all__ = [
    "FACETS", "INDEX_FORMAT", "KINDS", "SORTS", "SYNONYMS_FILE", "SYNONYM_LANGUAGES", "WEIGHTS", "expand",
    "index_dataset", "index_version", "reindex", "remove_dataset", "search", "synonyms", "words",
]

log = logging.getLogger(__name__)

FACETS = ("agency", "standard", "tag", "classification", "topic", "kind")
KINDS = ("harmonized", "integrated", "indicator")  # the `kind` facet's values: Dataset.kind
SORTS = ("relevance", "title", "modified")
WEIGHTS = {"title_words": 4, "tag_words": 2, "description_words": 1, "field_words": 1}
# Raise it when index_dataset writes documents or facets differently: every catalog rebuilds its index on its
# next search (index_version).
INDEX_FORMAT = 2
SYNONYMS_FILE = Path(__file__).resolve().parent.parent / "schemas" / "synonyms.yaml"
SYNONYM_LANGUAGES = ("id", "en")
MAX_SYNONYMS_BYTES = 1 << 20
# A term, as its normalized words.
Term = tuple[str, ...]


def _folded(value: str) -> str:
    """`value` without accents, in lower case."""
    return "".join(c for c in unicodedata.normalize("NFKD", value) if not unicodedata.combining(c)).lower()


def _split(value: str) -> list[str]:
    return re.findall(r"[^\W_]+", _folded(value))


def words(value: str) -> list[str]:
    """The words of `value` (letters and digits) without accents, in lower case, each once, in order."""
    return list(dict.fromkeys(_split(value)))


def _joined(*values: str | None) -> str:
    return " ".join(words(" ".join(v for v in values if v)))


# --- synonyms -----------------------------------------------------------------------------------------------

# Read again when the file changes (hub.followed); a file broken after a good read keeps its last good groups.
_synonyms = Followed("synonyms")


def synonyms(path: Path | None = None) -> dict[Term, tuple[Term, ...]]:
    """Each term of the synonyms file (default SYNONYMS_FILE) -> every term of the groups it is in, itself
    included, in the file's order. A term in groups of both languages (`tb`) takes the terms of all of them.
    A broken file raises a BrokenFile naming the file, line and column of each problem."""
    path = Path(path or SYNONYMS_FILE).resolve()
    return _synonyms.get("synonyms", [path], lambda: _read_synonyms(path))


def _read_synonyms(path: Path) -> dict[Term, tuple[Term, ...]]:
    where = str(path)
    problems: list[Problem] = []

    def at(node, message: str) -> None:
        problems.append(Problem(where, node.start_mark.line + 1, node.start_mark.column + 1, message))

    root = yaml_document(path, MAX_SYNONYMS_BYTES)
    shape = f"a mapping of languages ({', '.join(SYNONYM_LANGUAGES)}), each a list of groups of equivalent terms"
    if not isinstance(root, yaml.MappingNode):
        raise BrokenFile([Problem(where, root.start_mark.line + 1 if root else 1, 1, f"the synonyms are {shape}")])
    groups: list[tuple[Term, ...]] = []
    seen: set[str] = set()
    for key, value in root.value:
        language = key.value if isinstance(key, yaml.ScalarNode) else "?"
        if language not in SYNONYM_LANGUAGES:
            at(key, f"no language {language!r}: the synonyms are {shape}")
            continue
        if language in seen:
            at(key, f"the language {language!r} twice")
            continue
        seen.add(language)
        if not isinstance(value, yaml.SequenceNode):
            at(value, f"the {language} synonyms are a list of groups, each a list like [bansos, bantuan sosial]")
            continue
        for n, group in enumerate(value.value, 1):
            what = f"group {n} of {language}"
            if not isinstance(group, yaml.SequenceNode) or len(group.value) < 2:
                at(group, f"{what} is a list of two or more equivalent terms, like [bansos, bantuan sosial]")
                continue
            terms: dict[Term, None] = {}
            for item in group.value:
                term = tuple(words(item.value)) if isinstance(item, yaml.ScalarNode) else ()
                if not term:
                    at(item, f"{what}: a term is a word or words of letters and digits")
                elif term in terms:
                    at(item, f"{what}: the term {' '.join(term)!r} twice")
                else:
                    terms[term] = None
            if len(terms) == len(group.value):
                groups.append(tuple(terms))
    if problems:
        raise BrokenFile(problems)
    found: dict[Term, dict[Term, None]] = {}
    for group in groups:
        for term in group:
            found.setdefault(term, {}).update(dict.fromkeys(group))
    return {term: tuple(alternatives) for term, alternatives in found.items()}


def expand(q: str, path: Path | None = None) -> list[tuple[Term, ...]]:
    """The query's positions, each its alternatives (terms, as words): a run of query words that is a synonym
    term (of the file `path`, default SYNONYMS_FILE; the longest run first) is one position with the terms of
    its groups; any other word is a position of its own with itself alone. A repeated position counts once."""
    found = synonyms(path)
    longest = max(map(len, found), default=1)
    query = _split(q)
    positions, i = [], 0
    while i < len(query):
        for n in range(min(longest, len(query) - i), 0, -1):
            if (run := tuple(query[i:i + n])) in found:
                positions.append(found[run])
                i += n
                break
        else:
            positions.append(((query[i],),))
            i += 1
    return list(dict.fromkeys(positions))


# --- the index ------------------------------------------------------------------------------------------------


def index_version() -> str:
    """What the documents index_dataset writes now depend on: its format and the topics (which standards each
    covers). A document made under another version is rebuilt on the next search. Synonyms are not in it: they
    apply to queries, never to what is stored."""
    from schemas.topics import topics

    digest = hashlib.sha256(repr([(t.id, t.standards) for t in topics()]).encode()).hexdigest()[:16]
    return f"{INDEX_FORMAT}-{digest}"


def _english(description: dict) -> tuple[str | None, str | None]:
    """An integrated or indicator dataset's English title and description: its standard's (a source's dataset is
    titled by its agency, in Indonesian only)."""
    if description.get("kind") not in ("integrated", "indicator") or not description.get("standard_version"):
        return None, None
    from schemas import load_standard

    schema = load_standard(f"{description['standard']}@{description['standard_version']}").schema
    return schema.get("x-title-en"), schema.get("x-description-en")


def index_dataset(s, description: dict) -> None:
    """(Re)write one dataset's search document and facet values from its description, in session `s`."""
    from schemas.topics import topics_of

    dataset_id = description["id"]
    remove_dataset(s, dataset_id)
    fields = [part for f in description.get("schema", []) for part in
              (f["name"], f.get("title"), f.get("description"), f.get("title_en"), f.get("description_en"))]
    title_en, description_en = _english(description)
    parts = {"title_words": _joined(description["title"], title_en),
             "description_words": _joined(description.get("description"), description_en),
             "tag_words": _joined(*description.get("tags", [])), "field_words": _joined(*fields)}
    standard = description.get("standard")
    try:
        version, topics = index_version(), topics_of(standard) if standard else []
    except ConfigError as e:
        # A topics file this process never read well takes nothing from publishing: the dataset is indexed without
        # topics and as made by other code, so the first search after the file is fixed rebuilds it.
        log.warning("search: dataset %s indexed without topics: %s", dataset_id, e)
        version, topics = None, []
    document = {"dataset_id": dataset_id, "title": description["title"], "modified": description.get("modified"),
                **parts, "words": _joined(*parts.values()), "index_version": version}
    s.execute(insert(SearchDocument), [document])
    values = {"agency": [description.get("agency")], "standard": [standard],
              "tag": description.get("tags", []), "classification": [description.get("classification")],
              "topic": topics, "kind": [description.get("kind")]}
    facet_rows = [{"dataset_id": dataset_id, "facet": facet, "value": value}
                  for facet, facet_values in values.items() for value in dict.fromkeys(facet_values) if value]
    if facet_rows:
        s.execute(insert(SearchFacet), facet_rows)
    if s.get_bind().dialect.name == "sqlite":
        s.execute(text("INSERT INTO hub_search_fts (dataset_id, words) VALUES (:id, :words)"),
                  {"id": dataset_id, "words": document["words"]})


def reindex(settings) -> int:
    """Rebuild every dataset's search document (a catalog made before search existed, or by older indexing
    code), and drop the documents of datasets the catalog no longer has; how many were rebuilt. A dataset whose
    standard cannot be read now keeps its document (logged): one broken file takes no dataset out of search."""
    from catalog.db import Dataset
    from catalog.metadata import describe

    init_db(settings.catalog_url)
    done = 0
    with session(settings.catalog_url) as s, s.begin():
        datasets = s.scalars(select(Dataset)).all()
        for d in datasets:
            try:
                description = describe(s, d)
            except ConfigError as e:
                log.warning("search: dataset %s keeps its old search document: %s", d.id, e)
                continue
            index_dataset(s, description)
            done += 1
        gone = set(s.scalars(select(SearchDocument.dataset_id))) - {d.id for d in datasets}
        for dataset_id in sorted(gone):
            remove_dataset(s, dataset_id)
    return done


_current: set[tuple[str, str]] = set()  # (catalog URL, index version) this process found indexed alike


def _keep_current(settings) -> None:
    """Rebuild the index when a document in it was made by other indexing code (a catalog from before the topics,
    say): checked once per process, catalog and index version."""
    try:
        version = index_version()
    except ConfigError as e:  # the topics file broken: search answers from the index as it is meanwhile
        log.warning("search: the index is not checked for currency: %s", e)
        return
    key = (settings.catalog_url, version)
    if key in _current:
        return
    with session(settings.catalog_url) as s:
        stale = s.scalars(select(SearchDocument.dataset_id).where(or_(
            SearchDocument.index_version.is_(None), SearchDocument.index_version != version)).limit(1)).first()
    if stale is not None:
        try:
            log.info("search: the index was made by other indexing code (%s), rebuilt for %s: %d datasets",
                     stale, version, reindex(settings))
        except DBAPIError as e:
            # Another process (a second server worker) rebuilding it at the same moment: its rebuild is as good;
            # this search answers from the index as it is, and the next one checks again.
            log.info("search: rebuilding the index met another rebuild (%s); checked again next time",
                     type(e.orig or e).__name__)
            return
    _current.add(key)


def remove_dataset(s, dataset_id: str) -> None:
    """Take a dataset out of search, in session `s`."""
    s.execute(delete(SearchFacet).where(SearchFacet.dataset_id == dataset_id))
    s.execute(delete(SearchDocument).where(SearchDocument.dataset_id == dataset_id))
    if s.get_bind().dialect.name == "sqlite":
        s.execute(text("DELETE FROM hub_search_fts WHERE dataset_id = :id"), {"id": dataset_id})


# --- searching ------------------------------------------------------------------------------------------------


def _expression(positions: list[tuple[Term, ...]], word: str, both: str, either: str) -> str:
    """The positions as one engine's query: every position, each one of its alternatives, each all its words."""
    def group(items: list[str], joiner: str) -> str:
        return items[0] if len(items) == 1 else "(" + f" {joiner} ".join(items) + ")"

    return f" {both} ".join(group([group([word.format(w) for w in alternative], both) for alternative in alternatives],
                                  either) for alternatives in positions)


def _matching(dialect: str, positions: list[tuple[Term, ...]]):
    """The condition on SearchDocument that every position has an alternative whose words each begin a word of
    the document. Both engines get the same expression, written in their syntax."""
    if dialect == "sqlite":
        # Each word quoted: FTS5 reads it as a word, never as syntax (the words hold only letters and digits).
        fts = text("SELECT dataset_id FROM hub_search_fts WHERE hub_search_fts MATCH :match").bindparams(
            match=_expression(positions, '"{}"*', "AND", "OR")).columns(dataset_id=SearchDocument.dataset_id.type)
        return SearchDocument.dataset_id.in_(fts)
    return text("array_to_tsvector(string_to_array(hub_search_documents.words, ' ')) @@ CAST(:tsquery AS tsquery)"
                ).bindparams(tsquery=_expression(positions, "'{}':*", "&", "|"))


def _relevance(document: SearchDocument, positions: list[tuple[Term, ...]]) -> int:
    parts = {part: getattr(document, part).split() for part in WEIGHTS}

    def scored(w: str) -> int:
        return sum(weight for part, weight in WEIGHTS.items() if any(word.startswith(w) for word in parts[part]))

    return sum(max(min(scored(w) for w in alternative) for alternative in alternatives) for alternatives in positions)


def search(settings, q: str = "", filters: dict[str, list[str]] | None = None, facets=FACETS, rows: int = 10,
           start: int = 0, sort: str = "relevance", among: set[str] | None = None) -> dict:
    """Datasets matching `q` (its synonyms too: `expand`) and every filter (a facet's listed values are
    alternatives), one page of them; only datasets in `among`, where given (those the caller may know of).

    Returns `{"count": all matches, "results": dataset ids of the page, "facets": {facet: {value: count}}}`,
    with facet values counted over all matches, most frequent first.
    """
    filters = filters or {}
    if unknown := (set(filters) | set(facets)) - set(FACETS):
        raise ValueError(f"no search facet {sorted(unknown)}; facets: {', '.join(FACETS)}")
    if sort not in SORTS:
        raise ValueError(f"no search sort {sort!r}; sorts: {', '.join(SORTS)}")
    init_db(settings.catalog_url)
    _keep_current(settings)
    positions = expand(q)
    with session(settings.catalog_url) as s:
        matched = select(SearchDocument.dataset_id)
        if among is not None:
            matched = matched.where(SearchDocument.dataset_id.in_(sorted(among)))
        if positions:
            matched = matched.where(_matching(s.get_bind().dialect.name, positions))
        for facet, values in filters.items():
            matched = matched.where(SearchDocument.dataset_id.in_(
                select(SearchFacet.dataset_id).where(SearchFacet.facet == facet, SearchFacet.value.in_(values))))
        documents = s.scalars(select(SearchDocument).where(SearchDocument.dataset_id.in_(matched))).all()
        counts = s.execute(select(SearchFacet.facet, SearchFacet.value, func.count())
                           .where(SearchFacet.dataset_id.in_(matched), SearchFacet.facet.in_(facets))
                           .group_by(SearchFacet.facet, SearchFacet.value)).all()
    documents = sorted(documents, key=lambda d: d.dataset_id)
    if sort == "relevance":
        documents.sort(key=lambda d: _relevance(d, positions), reverse=True)
    elif sort == "title":
        documents.sort(key=lambda d: _folded(d.title))
    else:  # the most recently modified first; never modified last
        documents.sort(key=lambda d: d.modified or "", reverse=True)
    by_facet = {facet: {} for facet in facets}
    for facet, value, count in sorted(counts, key=lambda c: (-c[2], c[1])):
        by_facet[facet][value] = count
    return {"count": len(documents), "results": [d.dataset_id for d in documents[start:start + rows]],
            "facets": by_facet}
