"""The central catalog: metadata in SQL, data in Iceberg tables, SQL over them with DuckDB, and the HTTP API."""
