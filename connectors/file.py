"""The `file` kind: one file an agency delivers (CSV, Excel, JSON, JSON Lines, Parquet), local or at a URL."""

from __future__ import annotations

import codecs
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from connectors import _file_formats as formats
from connectors.base import Batch, Connector, mapped_columns
from connectors import http
from hub.errors import ConfigError, RetriableSourceError

__all__ = ["FileConnector"]

_FORMAT_OF_SUFFIX = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".xlsx": "xlsx", ".xlsm": "xlsx",
                     ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
# Options only some formats read; one given for another format is a mistake in the registration.
_FORMAT_OPTIONS = {"delimiter": {"csv"}, "encoding": {"csv"}, "sheet": {"xlsx"}, "header_row": {"xlsx"},
                   "records_path": {"json"}}
# Options of the HTTP client, for a path that is a URL.
_URL_OPTIONS = {"auth": http.AUTH, **http.CLIENT_OPTIONS}


class FileConnector(Connector):
    options_schema = {
        "type": "object",
        "required": ["path"],
        "additionalProperties": False,
        "properties": {
            "path": {"type": "string", "minLength": 1, "description": "A local path or an http(s) URL."},
            "format": {"enum": sorted(set(_FORMAT_OF_SUFFIX.values()))},
            "delimiter": {"type": "string", "pattern": "^(.|auto)$", "description": "One character, or auto."},
            "encoding": {"type": "string", "minLength": 1, "description": "A Python codec name, or auto."},
            "sheet": {"anyOf": [{"type": "string", "minLength": 1}, {"type": "integer", "minimum": 1}],
                      "description": "The sheet's name, or its position counting from 1."},
            "header_row": {"type": "integer", "minimum": 1, "description": "The row of column names, counting from 1."},
            "records_path": {"type": "string", "pattern": "^[^.]+(\\.[^.]+)*$",
                             "description": "Dotted keys of the array of records, e.g. data.items."},
            "batch_rows": {"type": "integer", "minimum": 1},
            **_URL_OPTIONS,
        },
    }

    def __init__(self, source) -> None:
        super().__init__(source)
        location = self.options["path"]
        self.url = location if urlsplit(location).scheme.lower() in ("http", "https") else None
        self.path: Path | None = None
        if self.url:
            http.check_url(source, "path", self.url)
            self.name = http.where(self.url)
            file_name = PurePosixPath(urlsplit(self.url).path).name
        else:
            misplaced = sorted(_URL_OPTIONS.keys() & self.options.keys())
            if misplaced:
                raise ConfigError(f"{source.path}: field options/{misplaced[0]}: applies to a path that is an http(s) URL")
            path = Path(location)
            # A relative path means the same file wherever the hub runs: next to the registration.
            self.path = path if path.is_absolute() else source.path.parent / path
            self.name = file_name = self.path.name
        self.format = self.options.get("format") or _FORMAT_OF_SUFFIX.get(PurePosixPath(file_name).suffix.lower())
        if self.format is None:
            raise ConfigError(f"{source.path}: field options/format: cannot tell the format of {file_name!r} "
                              f"from its name; set format to one of {sorted(set(_FORMAT_OF_SUFFIX.values()))}")
        for option, formats_reading_it in _FORMAT_OPTIONS.items():
            if option in self.options and self.format not in formats_reading_it:
                raise ConfigError(f"{source.path}: field options/{option}: applies to format "
                                  f"{' or '.join(sorted(formats_reading_it))}, not {self.format}")
        self.delimiter = _auto(self.options.get("delimiter"))
        self.encoding = _auto(self.options.get("encoding"))
        if self.encoding:
            try:
                self.encoding = codecs.lookup(self.encoding).name
            except LookupError:
                raise ConfigError(f"{source.path}: field options/encoding: unknown encoding {self.encoding!r}") from None
        self._dialect: formats.CsvDialect | None = None

    def describe(self) -> str:
        if self._dialect:  # known once a CSV has been read, declared or detected
            return f"file {self.name} ({self._dialect.delimiter!r}-separated, {self._dialect.encoding})"
        return f"file {self.name} ({self.format})"

    def check(self) -> None:
        if self.url:
            with self._client() as client:
                client.download(self.url, Path(os.devnull))
        elif not self.path.is_file():
            raise RetriableSourceError(f"source {self.source.id}: file {self.path} not found")

    def read(self, cursor=None) -> Iterator[Batch]:
        with self._local_file() as path:
            where = f"source {self.source.id}: file {self.name}"
            if self.format == "csv":
                self._dialect = formats.detect_csv(path, where, self.delimiter, self.encoding)
                yield from formats.read_csv(path, where, self.batch_rows, self._dialect)
            elif self.format == "xlsx":
                mapped = {spec["from"] for spec in self.source.mapping.values() if "from" in spec}
                yield from formats.read_xlsx(path, where, self.batch_rows, self.options.get("sheet"),
                                             self.options.get("header_row"), mapped)
            elif self.format == "json":
                yield from formats.read_json(path, where, self.batch_rows, self.options.get("records_path"),
                                                  mapped_columns(self.source))
            elif self.format == "jsonl":
                yield from formats.read_jsonl(path, where, self.batch_rows, mapped_columns(self.source))
            else:
                yield from formats.read_parquet(path, where, self.batch_rows)

    @contextmanager
    def _local_file(self) -> Iterator[Path]:
        """The file to read: the local one, or the URL's body downloaded to a temporary folder while read."""
        if not self.url:
            self.check()
            yield self.path
            return
        with tempfile.TemporaryDirectory(prefix="hub-download-") as folder:
            target = Path(folder) / "download"  # the format is known already; the URL's name may be anything
            with self._client() as client:
                client.download(self.url, target)
            yield target

    def _client(self) -> http.HttpClient:
        return http.HttpClient(self.source, {**self.options, "url": self.url})


def _auto(value: str | None) -> str | None:
    """None when the option asks for detection (absent or `auto`)."""
    return None if value in (None, "auto") else value
