"""The `sql` kind: a table or query in any database SQLAlchemy reaches, read in batches, optionally incremental."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

from connectors.base import ROW, Batch, Connector, text_array
from hub.errors import ConfigError, FatalSourceError, RetriableSourceError

__all__ = ["SqlConnector"]


class SqlConnector(Connector):
    options_schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "url": {"type": "string", "minLength": 1, "description": "SQLAlchemy URL without a password."},
            "url_env": {"type": "string", "pattern": "^[A-Z_][A-Z0-9_]*$", "description": "Environment variable holding the URL."},
            "connection": {"type": "string", "minLength": 1, "description": "Airflow connection id holding the URL."},
            "table": {"type": "string", "minLength": 1},
            "query": {"type": "string", "minLength": 1},
            "cursor_column": {"type": "string", "minLength": 1},
            "batch_rows": {"type": "integer", "minimum": 1},
        },
        "oneOf": [{"required": ["url"]}, {"required": ["url_env"]}, {"required": ["connection"]}],
        "not": {"required": ["table", "query"]},
        "anyOf": [{"required": ["table"]}, {"required": ["query"]}],
    }

    @classmethod
    def example_options(cls, source_id: str) -> dict:
        return {"url_env": f"{source_id.upper()}_DATABASE_URL", "table": "TODO", "cursor_column": "TODO_updated_at",
                "batch_rows": 100_000}

    def __init__(self, source) -> None:
        super().__init__(source)
        url = self.options.get("url")
        if url:
            from sqlalchemy.engine import make_url

            if make_url(url).password:
                raise ConfigError(
                    f"{source.path}: field options/url: a password must not be written in the registration; "
                    "use url_env (an environment variable) or connection (an Airflow connection id)"
                )

    @property
    def incremental(self) -> bool:
        return "cursor_column" in self.options

    def _url(self):
        """The database's URL (text, or a SQLAlchemy URL for a connection's): it holds the password."""
        if "url" in self.options:
            return self.options["url"]
        if "url_env" in self.options:
            name = self.options["url_env"]
            if not os.environ.get(name):
                raise ConfigError(f"{self.source.path}: field options/url_env: environment variable {name} is not set")
            return os.environ[name]
        from sqlalchemy.engine import make_url

        from connectors.secrets import resolve

        # As every secret: a connection that is not defined is a ConfigError naming the option, never its value.
        url = make_url(resolve(self.source, "connection", {"connection": self.options["connection"], "field": "uri"}))
        # Airflow names PostgreSQL connections `postgres` (their URI scheme too), a name SQLAlchemy dropped; its
        # PostgreSQL provider reads them with psycopg2, the driver the hub installs too.
        if url.drivername == "postgres":
            url = url.set(drivername="postgresql+psycopg2")
        return url

    def _engine(self):
        from sqlalchemy import create_engine, exc
        from sqlalchemy.engine import make_url

        url = self._url()
        try:
            return create_engine(url)
        except ModuleNotFoundError as e:  # MySQL, SQL Server, Oracle: their drivers are installed separately
            raise ConfigError(f"{self.source.path}: field options: the database driver {e.name!r} for "
                              f"{make_url(url).drivername!r} is not installed (pip install {e.name})") from None
        except exc.NoSuchModuleError:
            raise ConfigError(f"{self.source.path}: field options: SQLAlchemy knows no database "
                              f"{make_url(url).drivername!r}") from None
        except exc.ArgumentError:  # the URL itself (never quoted: it holds the password)
            raise ConfigError(f"{self.source.path}: field options: the database URL cannot be read; write it "
                              "as dialect+driver://user:password@host/database") from None

    def describe(self) -> str:
        from sqlalchemy.engine import make_url

        where = self.options.get("table") or "query"
        if "url" in self.options:
            url = make_url(self.options["url"])
            return f"sql {url.get_backend_name()} {where}"
        return f"sql {where}"

    def check(self) -> None:
        from sqlalchemy import exc, inspect

        engine = self._engine()
        try:
            with engine.connect() as conn:
                table = self.options.get("table")
                if table and not inspect(conn).has_table(table):
                    raise FatalSourceError(f"source {self.source.id}: table {table!r} not found")
                column = self.options.get("cursor_column")
                if table and column and column not in {c["name"] for c in inspect(conn).get_columns(table)}:
                    raise FatalSourceError(f"source {self.source.id}: cursor column {column!r} not in table {table!r}")
        except exc.OperationalError as e:
            raise _classify(self.source.id, "cannot connect", e) from None
        finally:
            engine.dispose()

    def _statement(self, conn, cursor):
        """The rows to read, in a stable order: the cursor column's, else a table's primary key.

        A table is reflected, so values arrive typed as the database declares them (a SQLite BOOLEAN is
        a boolean, not 0 or 1); a query's values arrive as its driver gives them.
        """
        import sqlalchemy as sa

        if "table" in self.options:
            table = sa.Table(self.options["table"], sa.MetaData(), autoload_with=conn)
            stmt, columns, order = sa.select(table), table.c, list(table.primary_key.columns)
        else:
            query = sa.text(self.options["query"]).columns().subquery("src")
            stmt, columns, order = sa.select(sa.text("*")).select_from(query), None, []
        name = self.options.get("cursor_column")
        if name:
            column = columns[name] if columns is not None and name in columns else sa.column(name)
            stmt = stmt.order_by(column)
            if cursor is not None:
                stmt = stmt.where(column > sa.bindparam("cursor", _stored_cursor(column, cursor), type_=column.type))
        elif order:
            stmt = stmt.order_by(*order)
        return stmt

    def columns(self) -> list[str]:
        """The columns of the table or query, as the database names them for read(); no row is fetched."""
        with self._connection() as conn:
            return list(conn.execute(self._statement(conn, None).limit(0)).keys())

    def read(self, cursor=None) -> Iterator[Batch]:
        import pyarrow as pa

        column = self.options.get("cursor_column")
        next_row = 1
        fetch = min(FETCH_ROWS, self.batch_rows)
        with self._connection() as conn:
            result = conn.execution_options(stream_results=True, yield_per=fetch).execute(
                self._statement(conn, cursor)
            )
            names = list(result.keys())
            if column and column not in names:
                raise FatalSourceError(f"source {self.source.id}: cursor column {column!r} not in {names}")
            position = names.index(column) if column else None
            while True:
                parts, count, tops = [], 0, []
                while count < self.batch_rows and (rows := result.fetchmany(min(fetch, self.batch_rows - count))):
                    parts.append([text_array(values) for values in zip(*rows)])
                    count += len(rows)
                    if position is not None:
                        # Rows without a cursor value cannot be tracked; they do not move the cursor back.
                        seen = [r[position] for r in rows if r[position] is not None]
                        tops += [max(seen)] if seen else []
                if not parts:
                    break
                if tops:
                    cursor = _cursor_value(max(tops))
                arrays = [pa.concat_arrays([part[i] for part in parts]) for i in range(len(names))]
                arrays.append(pa.array(range(next_row, next_row + count), type=pa.int64()))
                next_row += count
                yield Batch(records=pa.Table.from_arrays(arrays, names=names + [ROW]), cursor=cursor)

    @contextmanager
    def _connection(self) -> Iterator:
        """A connection to the source's database, its errors as the hub's (retriable or fatal)."""
        from sqlalchemy import exc

        self.check()
        engine = self._engine()
        try:
            with engine.connect() as conn:
                yield conn
        except exc.OperationalError as e:
            raise _classify(self.source.id, "database error while reading", e) from None
        except exc.ProgrammingError as e:
            raise FatalSourceError(f"source {self.source.id}: query failed: {e.orig}") from None
        finally:
            engine.dispose()


# Rows fetched and turned into Arrow at a time: a batch's rows are never held as Python values all at once
# (100,000 rows of ten text columns were 80 MB of them).
FETCH_ROWS = 10_000


# SQLite reports mistakes in the query (missing table or column) as operational errors too.
_SQLITE_TRANSIENT = ("locked", "unable to open", "disk i/o", "busy")


def _classify(source_id: str, what: str, error) -> Exception:
    """Retriable when the database may answer later; fatal when the query itself is wrong."""
    message = str(error.orig).lower()
    if error.orig.__class__.__module__.startswith("sqlite3") and not any(t in message for t in _SQLITE_TRANSIENT):
        return FatalSourceError(f"source {source_id}: {what}: {error.orig}")
    return RetriableSourceError(f"source {source_id}: {what}: {error.orig}")


def _stored_cursor(column, cursor):
    """A cursor read back from the catalog (JSON) as the column's Python type, to compare as the column does."""
    try:
        kind = column.type.python_type
    except NotImplementedError:
        return cursor
    if isinstance(cursor, str) and kind in (dt.datetime, dt.date):
        return kind.fromisoformat(cursor)
    if isinstance(cursor, str) and kind is Decimal:
        return Decimal(cursor)
    return cursor


def _cursor_value(value):
    """A JSON-storable cursor that compares in the database as the column does."""
    if value is None or isinstance(value, (int, float, str)):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value)
