"""The `ckan` kind: a DataStore resource or a dataset's file on a CKAN open-data portal."""

from __future__ import annotations

import dataclasses
import json
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

import httpx

from connectors.base import Batch, Connector, as_text
from connectors.http import CLIENT_OPTIONS, HttpClient, check_url, secret_value, where
from connectors.rest import JsonBatches
from connectors.secrets import SECRET
from hub.errors import ConfigError, FatalSourceError

__all__ = ["CkanConnector"]

DEFAULT_PAGE_SIZE = 1000

_NAME = {"type": "string", "minLength": 1}
_VALUE = {"type": ["string", "number", "boolean"]}
# CKAN's row number in a DataStore table; records keep it as a column.
_ID = "_id"
# Error answers CKAN explains in its envelope ({"success": false, "error": {...}}).
_EXPLAINED = (400, 403, 404, 409)
# Options that apply only to a DataStore resource.
_DATASTORE_ONLY = ("filters", "cursor_field", "page_size")


class CkanConnector(Connector):
    options_schema = {
        "type": "object",
        "required": ["url"],
        "additionalProperties": False,
        "properties": {
            "url": {"type": "string", "pattern": "^https?://", "description": "The portal's address."},
            "resource_id": {**_NAME, "description": "A DataStore resource's id or alias."},
            "dataset": {**_NAME, "description": "A dataset's name or id, to read one of its files."},
            "resource": {**_NAME, "description": "The dataset's resource to read: its name or id."},
            "filters": {"type": "object", "minProperties": 1,
                        "additionalProperties": {"anyOf": [_VALUE, {"type": "array", "minItems": 1, "items": _VALUE}]}},
            "cursor_field": {**_NAME, "description": "Field whose greatest value read is the cursor."},
            "page_size": {"type": "integer", "minimum": 1, "maximum": 32000},
            "api_key": SECRET,
            **CLIENT_OPTIONS,
            "batch_rows": {"type": "integer", "minimum": 1},
        },
        # Without a DataStore resource, a dataset's file (the constructor refuses both).
        "if": {"required": ["resource_id"]},
        "else": {"required": ["dataset", "resource"]},
    }

    @classmethod
    def example_options(cls, source_id: str) -> dict:
        return {"url": "https://TODO.kotabogor.go.id", "resource_id": "TODO"}

    def __init__(self, source) -> None:
        super().__init__(source)
        check_url(source, "url", self.options["url"])
        self.portal = self.options["url"].rstrip("/")
        self.resource_id = self.options.get("resource_id")
        if self.resource_id and ("dataset" in self.options or "resource" in self.options):
            raise ConfigError(f"{source.path}: field options/resource_id: give either resource_id (a DataStore "
                              "resource) or dataset and resource (a dataset's file), not both")
        if not self.resource_id:
            for option in _DATASTORE_ONLY:
                if option in self.options:
                    raise ConfigError(f"{source.path}: field options/{option}: applies to a DataStore resource "
                                      "(resource_id), not to a dataset's file")
        self.page_size = self.options.get("page_size", DEFAULT_PAGE_SIZE)

    @property
    def incremental(self) -> bool:
        return "cursor_field" in self.options

    def describe(self) -> str:
        if self.resource_id:
            return f"ckan {where(self.portal)} datastore {self.resource_id}"
        return f"ckan {where(self.portal)} dataset {self.options['dataset']} resource {self.options['resource']}"

    def check(self) -> None:
        with self._client() as client:
            if self.resource_id:
                self._fields(client)
            else:
                self._file_resource(client)

    def read(self, cursor=None) -> Iterator[Batch]:
        with self._client() as client:
            if self.resource_id:
                yield from self._read_datastore(client, cursor)
            else:
                with self._downloaded(client) as connector:
                    yield from connector.read()

    def columns(self) -> list[str] | None:
        """A DataStore resource's fields (its `_id` too, as read() gives it); a file's as the file kind reads them."""
        with self._client() as client:
            if self.resource_id:
                return self._fields(client)
            with self._downloaded(client) as connector:
                return connector.columns()

    def _client(self) -> HttpClient:
        api_key = self.options.get("api_key")
        # CKAN takes an API token as the whole Authorization header, without a scheme.
        headers = {"Authorization": secret_value(self.source, "api_key", api_key)} if api_key else None
        return HttpClient(self.source, self.options, secret_headers=headers)

    def _action(self, client: HttpClient, action: str, params: dict) -> dict:
        """The `result` of a CKAN action; CKAN's explanation of an error in a FatalSourceError."""
        response = client.get(f"{self.portal}/api/3/action/{action}", params, accept=_EXPLAINED)
        if response.status_code < 400:
            body = client.json_of(response)
            if isinstance(body, dict) and body.get("success") is True and isinstance(body.get("result"), dict):
                return body["result"]
        # CKAN's explanation is the portal's own text: a portal quoting the token it refused must not make the hub
        # repeat it in a message, a log or the catalog.
        raise FatalSourceError(f"source {self.source.id}: CKAN {action} at {where(self.portal)}: "
                               f"{client.redact(_explain(response))}")

    # --- DataStore ----------------------------------------------------------------------------------------

    def _fields(self, client: HttpClient) -> list[str]:
        """The resource's field names, after checking those the options name."""
        result = self._action(client, "datastore_search", {"resource_id": self.resource_id, "limit": 0})
        fields = [f["id"] for f in result.get("fields", [])]
        named = {"cursor_field": [self.options.get("cursor_field")], "filters": list(self.options.get("filters", {}))}
        for option, names in named.items():
            for name in names:
                if name is not None and name not in fields:
                    raise FatalSourceError(f"source {self.source.id}: options/{option}: {name!r} is not a field of "
                                           f"DataStore resource {self.resource_id}; its fields: {fields}")
        return fields

    def _read_datastore(self, client: HttpClient, cursor) -> Iterator[Batch]:
        fields = self._fields(client)
        cursor_field = self.options.get("cursor_field")
        batches = JsonBatches(self.source, self.batch_rows, cursor_field)
        for records in self._sql_pages(client, fields, cursor) if cursor_field else self._search_pages(client):
            yield from batches.add(records)
        yield from batches.finish()

    def _search_pages(self, client: HttpClient) -> Iterator[list[dict]]:
        """Every record by datastore_search, in CKAN's row order (_id)."""
        params = {"resource_id": self.resource_id, "limit": self.page_size, "sort": _ID, "include_total": "false"}
        if "filters" in self.options:
            params["filters"] = json.dumps(self.options["filters"])
        offset = 0
        while True:
            result = self._action(client, "datastore_search", {**params, "offset": offset})
            records = result.get("records", [])
            if records:
                yield records
            # The portal may cap the page size (ckan.datastore.search.rows_max) and says so in `limit`.
            if not records or len(records) < result.get("limit", self.page_size):
                return
            offset += len(records)

    def _sql_pages(self, client: HttpClient, fields: list[str], cursor) -> Iterator[list[dict]]:
        """Records after the cursor by datastore_search_sql, in cursor order (ties in CKAN's row order)."""
        column = self.options["cursor_field"]
        conditions = [f"{_identifier(column)} > {_literal(cursor)}"] if cursor is not None else []
        for name, value in self.options.get("filters", {}).items():
            values = value if isinstance(value, list) else [value]
            conditions.append(f"{_identifier(name)} IN ({', '.join(_literal(v) for v in values)})")
        selected = ", ".join(_identifier(f) for f in fields)
        where_clause = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        offset = 0
        while True:
            sql = (f"SELECT {selected} FROM {_identifier(self.resource_id)}{where_clause} "
                   f"ORDER BY {_identifier(column)}, {_identifier(_ID)} LIMIT {self.page_size} OFFSET {offset}")
            result = self._action(client, "datastore_search_sql", {"sql": sql})
            records = result.get("records", [])
            if records:
                yield records
            if not records or len(records) < self.page_size and not result.get("records_truncated"):
                return
            offset += len(records)

    # --- a dataset's file ---------------------------------------------------------------------------------

    def _file_resource(self, client: HttpClient) -> tuple[dict, str]:
        """The dataset's resource the options name, and the file format it is read as."""
        from connectors.file import FileConnector

        dataset, wanted = self.options["dataset"], self.options["resource"]
        resources = self._action(client, "package_show", {"id": dataset}).get("resources", [])
        found = [r for r in resources if r.get("id") == wanted] or \
                [r for r in resources if str(r.get("name", "")).casefold() == wanted.casefold()]
        if len(found) != 1:
            names = [r.get("name") for r in resources]
            problem = "several resources are named" if found else "no resource is named"
            raise FatalSourceError(f"source {self.source.id}: CKAN dataset {dataset!r}: {problem} {wanted!r} "
                                   f"(use its id); its resources: {names}")
        resource = found[0]
        readable = FileConnector.options_schema["properties"]["format"]["enum"]
        file_format = str(resource.get("format") or "").strip().lstrip(".").lower()
        if file_format not in readable:
            raise FatalSourceError(f"source {self.source.id}: CKAN dataset {dataset!r}: resource {wanted!r} is "
                                   f"{resource.get('format')!r}; the hub reads {readable}")
        if not resource.get("url"):
            raise FatalSourceError(f"source {self.source.id}: CKAN dataset {dataset!r}: resource {wanted!r} has no URL")
        return resource, file_format

    @contextmanager
    def _downloaded(self, client: HttpClient) -> Iterator[Connector]:
        """The resource's file, downloaded to a temporary folder while the file kind reads it."""
        from connectors.file import DEFAULT_MAX_FILE_BYTES, FileConnector

        resource, file_format = self._file_resource(client)
        url = str(httpx.URL(self.portal + "/").join(resource["url"]))
        name = re.sub(r"[^\w.-]", "_", PurePosixPath(httpx.URL(url).path).name) or f"resource.{file_format}"
        with tempfile.TemporaryDirectory(prefix="hub-ckan-") as folder:
            path = Path(folder) / name
            client.download(url, path, DEFAULT_MAX_FILE_BYTES)
            options = {"path": str(path), "format": file_format, "batch_rows": self.batch_rows}
            yield FileConnector(dataclasses.replace(self.source, kind="file", options=options))


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value) -> str:
    """A value as an SQL text literal; PostgreSQL reads it as the type of the column it is compared with."""
    return "'" + as_text(value).replace("'", "''") + "'"


def _explain(response: httpx.Response) -> str:
    """CKAN's error type and message, or the HTTP status when the answer is no CKAN envelope."""
    try:
        error = json.loads(response.content).get("error")
    except (ValueError, AttributeError):
        error = None
    status = f"HTTP {response.status_code} {response.reason_phrase}"
    if not isinstance(error, dict):
        return status if response.status_code >= 400 else "the answer is not a CKAN action result"
    message = error.get("message")
    # A validation error lists the fields at fault as keys; their texts may quote the query.
    detail = message if isinstance(message, str) else ", ".join(k for k in error if not k.startswith("_"))
    return f"{error.get('__type') or status}: {detail}"
