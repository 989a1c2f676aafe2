"""The central catalog: metadata in SQL, data in Iceberg tables, who may see what (access, masking, identity), the
audit log, and SQL over the data with DuckDB. Its HTTP surfaces are in `serving`."""
