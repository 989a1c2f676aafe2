"""The `rest` kind: records from an agency's JSON API, page after page, optionally incremental."""

from __future__ import annotations

import json
from collections.abc import Iterator

from connectors.base import COLUMNS_SAMPLE_ROWS, ROW, Batch, Connector, as_text, mapped_columns
from connectors.http import AUTH, CLIENT_OPTIONS, HttpClient, check_parameters, check_url, tagged_union, where
from hub.errors import FatalSourceError

__all__ = ["JsonBatches", "RestConnector", "record_columns"]

DEFAULT_PAGE_SIZE = 100

_NAME = {"type": "string", "minLength": 1}


class RestConnector(Connector):
    options_schema = {
        "type": "object",
        "required": ["url"],
        "additionalProperties": False,
        "properties": {
            "url": {"type": "string", "pattern": "^https?://"},
            "records": {"type": "string", "description": "Dotted path of the list of records in an answer; "
                                                         "empty: the answer is the list."},
            "params": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}},
            "pagination": tagged_union({
                "none": {},
                "page": {"properties": {"page_param": _NAME, "size_param": _NAME,
                                        "first_page": {"type": "integer", "minimum": 0}}},
                "offset": {"properties": {"offset_param": _NAME, "size_param": _NAME}},
                "cursor": {"required": ["next_cursor"],
                           "properties": {"cursor_param": _NAME, "next_cursor": _NAME, "size_param": _NAME}},
                "link": {"properties": {"size_param": _NAME}},
            }),
            "page_size": {"type": "integer", "minimum": 1},
            "auth": AUTH,
            **CLIENT_OPTIONS,
            "cursor_field": {**_NAME, "description": "Column whose greatest value read is the cursor."},
            "since_param": {**_NAME, "description": "Query parameter carrying the last committed cursor."},
            "batch_rows": {"type": "integer", "minimum": 1},
        },
        "dependentRequired": {"cursor_field": ["since_param"], "since_param": ["cursor_field"]},
    }

    @classmethod
    def example_options(cls, source_id: str) -> dict:
        return {"url": "https://TODO.kotabogor.go.id/api/v1/TODO", "records": "data",
                "pagination": {"type": "page", "page_param": "page", "size_param": "limit"}, "page_size": 100,
                "auth": {"type": "bearer", "token": {"env": f"{source_id.upper()}_API_TOKEN"}}}

    def __init__(self, source) -> None:
        super().__init__(source)
        self.url = self.options["url"]
        check_url(source, "url", self.url)
        check_parameters(source, "params", self.options.get("params", {}))
        auth = self.options.get("auth") or {}
        if "token_url" in auth:
            check_url(source, "auth/token_url", auth["token_url"])
        self.pagination = self.options.get("pagination", {"type": "none"})
        self.page_size = self.options.get("page_size", DEFAULT_PAGE_SIZE)

    @property
    def incremental(self) -> bool:
        return "cursor_field" in self.options

    def describe(self) -> str:
        return f"rest {where(self.url)}"

    def check(self) -> None:
        with HttpClient(self.source, self.options) as client:
            next(self._pages(client, None))

    def columns(self) -> list[str] | None:
        """The keys of the first page's records (nested objects' keys dotted, as read() names them)."""
        with HttpClient(self.source, self.options) as client:
            pages = self._pages(client, None)
            try:
                records = next(pages, [])
            finally:
                pages.close()
        return record_columns(records[:COLUMNS_SAMPLE_ROWS])

    def read(self, cursor=None) -> Iterator[Batch]:
        batches = JsonBatches(self.source, self.batch_rows, self.options.get("cursor_field"))
        with HttpClient(self.source, self.options) as client:
            previous = None
            for records in self._pages(client, cursor):
                if records and records == previous:
                    # A misspelt page, offset or cursor parameter: the API serves its first page for ever.
                    raise FatalSourceError(f"source {self.source.id}: {where(self.url)} answered the same page "
                                           f"twice; check options/pagination")
                previous = records
                yield from batches.add(records)
        yield from batches.finish()

    def _pages(self, client: HttpClient, cursor) -> Iterator[list]:
        """The records of each page, from the first page to the last."""
        params = dict(self.options.get("params", {}))
        if cursor is not None:
            params[self.options["since_param"]] = as_text(cursor)
        pagination = self.pagination
        kind = pagination["type"]
        if kind == "none":
            yield self._records(client.get_json(self.url, params))
            return
        params[pagination.get("size_param", "limit")] = self.page_size
        if kind == "link":
            url = self.url
            while url:
                response = client.get(url, params)
                yield self._records(client.json_of(response))
                following = response.links.get("next", {}).get("url")
                url, params = (str(response.url.join(following)), None) if following else (None, None)
        elif kind == "cursor":
            while True:
                body = client.get_json(self.url, params)
                records = self._records(body)
                yield records
                try:
                    following = _at(body, pagination["next_cursor"])
                except LookupError:
                    following = None
                if not records or following in (None, ""):
                    return
                params = {**params, pagination.get("cursor_param", "cursor"): as_text(following)}
        else:
            if kind == "page":
                name, position = pagination.get("page_param", "page"), pagination.get("first_page", 1)
            else:
                name, position = pagination.get("offset_param", "offset"), 0
            while records := self._records(client.get_json(self.url, {**params, name: position})):
                yield records
                position += 1 if kind == "page" else len(records)

    def _records(self, body) -> list:
        path = self.options.get("records", "")
        try:
            found = _at(body, path)
        except LookupError:
            raise FatalSourceError(f"source {self.source.id}: {where(self.url)}: the answer has no "
                                   f"{path!r} (options/records)") from None
        if found is None:
            return []
        if not isinstance(found, list):
            raise FatalSourceError(f"source {self.source.id}: {where(self.url)}: "
                                   f"{repr(path) if path else 'the answer'} is not a list of records (options/records)")
        return found


def _at(document, path: str):
    """The value at a dotted path of keys (`data.items`); the document itself for an empty path."""
    for key in path.split(".") if path else []:
        if not isinstance(document, dict) or key not in document:
            raise LookupError(path)
        document = document[key]
    return document


def flatten(record: dict, prefix: str = "") -> dict:
    """A JSON object as columns: a nested object's fields get dotted names, an array stays its JSON text."""
    flat = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, list):
            flat[name] = json.dumps(value, ensure_ascii=False)
        else:
            flat[name] = value
    return flat


def record_columns(records: list) -> list[str] | None:
    """The columns of JSON records, in the order first met; None when no record is an object."""
    names: dict[str, None] = {}
    objects = [item for item in records if isinstance(item, dict)]
    for item in objects:
        names.update(dict.fromkeys(flatten(item)))
    return list(names) if objects else None


class JsonBatches:
    """JSON records as Batches of at most `batch_rows` records, every value text.

    Columns come in the order they are first met; every batch has every column met so far in the run (null
    where a record lacks it). An item that is not an object is rejected as `_record:not_object`. With a
    `cursor_field`, a batch's cursor is the greatest value of that column read so far.
    """

    def __init__(self, source, batch_rows: int, cursor_field: str | None = None) -> None:
        self.source = source
        self.batch_rows = batch_rows
        self.cursor_field = cursor_field
        self.cursor = None
        self._columns: dict[str, None] = dict.fromkeys(mapped_columns(source))
        self._pending: list[tuple[int, dict]] = []
        self._rejected: list[tuple[int, str, str]] = []
        self._next_row = 1

    def add(self, items: list) -> Iterator[Batch]:
        """Take more records; yield each batch they fill."""
        for item in items:
            row, self._next_row = self._next_row, self._next_row + 1
            if not isinstance(item, dict):
                self._rejected.append((row, "_record:not_object", json.dumps(item, ensure_ascii=False)))
                if len(self._rejected) == self.batch_rows:
                    yield self._emit()
                continue
            record = flatten(item)
            self._columns.update(dict.fromkeys(record))
            self._pending.append((row, record))
            if self.cursor_field:
                self._advance(record.get(self.cursor_field))
            if len(self._pending) == self.batch_rows:
                yield self._emit()

    def finish(self) -> Iterator[Batch]:
        """Yield the last, partly filled batch."""
        if self._pending or self._rejected:
            yield self._emit()

    def _advance(self, value) -> None:
        if value is None:
            return  # a record without a cursor value cannot move the cursor
        if self.cursor is None:
            self.cursor = value
            return
        try:
            self.cursor = max(self.cursor, value)
        except TypeError:
            kinds = f"{type(self.cursor).__name__} and {type(value).__name__}"
            raise FatalSourceError(f"source {self.source.id}: cursor field {self.cursor_field!r} holds values of "
                                   f"different types ({kinds})") from None

    def _emit(self) -> Batch:
        import pyarrow as pa

        names = list(self._columns)
        arrays = [pa.array([as_text(record.get(name)) for _, record in self._pending], pa.string()) for name in names]
        arrays.append(pa.array([row for row, _ in self._pending], pa.int64()))
        batch = Batch(records=pa.Table.from_arrays(arrays, names=[*names, ROW]), cursor=self.cursor,
                      rejected=self._rejected)
        self._pending, self._rejected = [], []
        return batch
