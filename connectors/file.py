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
from connectors.base import COLUMNS_SAMPLE_ROWS, ROW, Batch, Connector, mapped_columns
from connectors import http
from hub.errors import ConfigError, FatalSourceError, RetriableSourceError

__all__ = ["FileConnector"]

_FORMAT_OF_SUFFIX = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".xlsx": "xlsx", ".xlsm": "xlsx",
                     ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
# Options only some formats read; one given for another format is a mistake in the registration.
_FORMAT_OPTIONS = {"delimiter": {"csv"}, "encoding": {"csv"}, "sheet": {"xlsx"}, "header_row": {"xlsx"},
                   "records_path": {"json"}, "max_line_bytes": {"csv", "jsonl"}}
# Limits on what an agency sends, so a wrong export (or a hostile one) is refused with a message instead of
# filling memory or the catalog. Each is an option for an agency that really sends more.
#: The file's size; for .xlsx, a zip of XML, the size of its content unpacked.
DEFAULT_MAX_FILE_BYTES = 1 << 30
#: One value: Excel's own limit for a cell, so nothing typed into a spreadsheet is refused.
DEFAULT_MAX_FIELD_CHARS = formats.DEFAULT_MAX_FIELD_CHARS
#: One line of JSON Lines, or one CSV record: its values and separators (quoted line breaks included).
DEFAULT_MAX_LINE_BYTES = formats.DEFAULT_MAX_LINE_BYTES
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
            "max_file_bytes": {"type": "integer", "minimum": 1,
                               "description": f"The largest file read, in bytes (default {DEFAULT_MAX_FILE_BYTES})."},
            "max_field_chars": {"type": "integer", "minimum": 1,
                                "description": f"The longest value, in characters (default {DEFAULT_MAX_FIELD_CHARS}); "
                                               "a record with a longer one is quarantined as _record:too_long."},
            "max_line_bytes": {"type": "integer", "minimum": 1024,
                               "description": f"The longest line of CSV or JSON Lines, in bytes "
                                              f"(default {DEFAULT_MAX_LINE_BYTES})."},
            **_URL_OPTIONS,
        },
    }

    def __init__(self, source) -> None:
        super().__init__(source)
        location = self.options["path"]
        scheme = urlsplit(location).scheme.lower()
        self.url = location if scheme in ("http", "https") else None
        self.path: Path | None = None
        if scheme == "file":
            raise ConfigError(f"{source.path}: field options/path: write a local file as a path "
                              "(${HUB_HOME}/incoming/x.csv), not as a file:// URL")
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
        self.max_file_bytes = self.options.get("max_file_bytes", DEFAULT_MAX_FILE_BYTES)
        self.limits = formats.Limits(field_chars=self.options.get("max_field_chars", DEFAULT_MAX_FIELD_CHARS),
                                     line_bytes=self.options.get("max_line_bytes", DEFAULT_MAX_LINE_BYTES))
        self._dialect: formats.CsvDialect | None = None

    def local_paths(self) -> dict[str, Path]:
        return {**super().local_paths(), **({"path": self.path} if self.path else {})}

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
        else:
            self._check_size(self.path)

    def _check_size(self, path: Path) -> None:
        size = path.stat().st_size
        if size > self.max_file_bytes:
            raise FatalSourceError(f"source {self.source.id}: file {self.name} is {size} bytes, more than the "
                                   f"limit of {self.max_file_bytes} bytes (options/max_file_bytes)")

    def read(self, cursor=None) -> Iterator[Batch]:
        with self._local_file() as path:
            self._check_size(path)
            where = f"source {self.source.id}: file {self.name}"
            limits = self.limits
            if self.format == "csv":
                self._dialect = formats.detect_csv(path, where, self.delimiter, self.encoding, limits)
                yield from formats.read_csv(path, where, self.batch_rows, self._dialect, limits)
            elif self.format == "xlsx":
                mapped = {spec["from"] for spec in self.source.mapping.values() if "from" in spec}
                yield from formats.read_xlsx(path, where, self.batch_rows, self.options.get("sheet"),
                                             self.options.get("header_row"), mapped, limits,
                                             max_unpacked_bytes=self.max_file_bytes)
            elif self.format == "json":
                yield from formats.read_json(path, where, self.batch_rows, self.options.get("records_path"),
                                             mapped_columns(self.source), limits)
            elif self.format == "jsonl":
                yield from formats.read_jsonl(path, where, self.batch_rows, mapped_columns(self.source), limits)
            else:
                yield from formats.read_parquet(path, where, self.batch_rows, limits)

    def columns(self) -> list[str] | None:
        """A CSV's or a sheet's header row, a Parquet file's schema, the keys of the first records of JSON."""
        with self._local_file() as path:
            self._check_size(path)
            where = f"source {self.source.id}: file {self.name}"
            if self.format == "csv":
                self._dialect = formats.detect_csv(path, where, self.delimiter, self.encoding, self.limits)
                return list(self._dialect.header)
            if self.format == "xlsx":
                return formats.xlsx_columns(path, where, self.options.get("sheet"), self.options.get("header_row"),
                                            set(mapped_columns(self.source)), max_unpacked_bytes=self.max_file_bytes)
            if self.format == "parquet":
                return formats.parquet_columns(path, where)
            # Without the mapped columns read() adds: the keys the records have.
            batches = (formats.read_json(path, where, COLUMNS_SAMPLE_ROWS, self.options.get("records_path"),
                                         limits=self.limits) if self.format == "json" else
                       formats.read_jsonl(path, where, COLUMNS_SAMPLE_ROWS, limits=self.limits))
            try:
                first = next(batches, None)
            finally:
                batches.close()
            if first is None or not first.records.num_rows:  # no record, or none that is an object
                return None
            return [name for name in first.records.column_names if name != ROW]

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
                client.download(self.url, target, self.max_file_bytes)
            yield target

    def _client(self) -> http.HttpClient:
        return http.HttpClient(self.source, {**self.options, "url": self.url})


def _auto(value: str | None) -> str | None:
    """None when the option asks for detection (absent or `auto`)."""
    return None if value in (None, "auto") else value
