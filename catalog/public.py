"""The `publik` namespace: each dataset as anonymous reads it through the hub, as Iceberg tables for outside engines."""

from __future__ import annotations

import json

from catalog import storage

__all__ = ["PASSWORD", "engine_settings", "publish_public"]

_BATCH_ROWS = 65_536  # rows read from the served view at a time: the memory a public table's write takes


def publish_public(settings, dataset_id: str, run_id: str) -> int | None:
    """Bring `publik.<dataset_id>` in line with what anonymous may read of the dataset's recorded version: written
    in one snapshot, or removed when anonymous may not read it (or the dataset is gone). Returns the public
    table's snapshot id, None when it has none. Idempotent: a version already written is not written again.

    The rows are the view the API serves to anonymous (`catalog.views.visible`), so the access rules and masking
    are those of every other path out of the hub, not a copy of them; the other namespaces stay unmasked."""
    from catalog.access import AccessDenied
    from catalog.db import Dataset, session
    from catalog.identity import Identity
    from catalog.views import visible

    with session(settings.catalog_url) as s:
        dataset = s.get(Dataset, dataset_id)
    if dataset is None:
        storage.drop_public(settings, dataset_id)
        return None
    try:
        seen = visible(settings, dataset, Identity.ANONYMOUS)
    except AccessDenied:
        storage.drop_public(settings, dataset_id)
        return None
    rules = json.dumps([[c, seen.access.column(c)] for c in seen.data.schema.names])
    return storage.commit_public(settings, dataset_id, seen.reader(_BATCH_ROWS), rules, str(dataset.snapshot_id),
                                 f"{dataset.standard}@{dataset.standard_version}", run_id)


_ICEBERG_SPARK = "org.apache.iceberg:iceberg-spark-runtime-3.5_2.12:1.10.1"
_JDBC = {  # catalog database kind -> (JDBC driver package, its class)
    "sqlite": ("org.xerial:sqlite-jdbc:3.46.1.3", "org.sqlite.JDBC"),
    "postgresql": ("org.postgresql:postgresql:42.7.4", "org.postgresql.Driver"),
}
PASSWORD = "<password>"  # what stands for the catalog database's password in printed settings


def engine_settings(settings) -> dict[str, str]:
    """Ready-to-paste connection settings for Spark, Trino, DuckDB and Polars reading the `publik` namespace of this
    hub's Iceberg catalog (named `hub`): engine -> text. The catalog database's password is never in them."""
    from sqlalchemy.engine import make_url

    url = make_url(settings.catalog_url)
    kind = url.get_backend_name()
    if kind not in _JDBC:
        raise ValueError(f"no outside engine settings for a {kind} catalog database")
    warehouse = settings.warehouse.as_uri()
    catalog = storage.iceberg_catalog(settings.catalog_url, warehouse)
    tables = sorted(name for _, name in catalog.list_tables(storage.PUBLIC))
    example = f"{storage.PUBLIC}.{tables[0] if tables else 'NAME'}"
    package, driver = _JDBC[kind]
    if kind == "sqlite":
        jdbc, user = f"jdbc:sqlite:{url.database}", []
    else:
        jdbc = f"jdbc:postgresql://{url.host or 'localhost'}:{url.port or 5432}/{url.database}"
        user = [("jdbc.user", url.username or ""), ("jdbc.password", PASSWORD)] if url.username else []
    sqlalchemy_url = url.render_as_string(hide_password=True).replace(":***@", f":{PASSWORD}@")

    spark = [("", "org.apache.iceberg.spark.SparkCatalog"), ("type", "jdbc"), ("uri", jdbc),
             ("warehouse", warehouse), *user]
    spark_sql = " \\\n".join([f"spark-sql --packages {_ICEBERG_SPARK},{package}",
                              *(f"  --conf spark.sql.catalog.hub{'.' + k if k else ''}={v}" for k, v in spark),
                              "  --conf spark.sql.defaultCatalog=hub"])
    pyspark = "\n".join(["from pyspark.sql import SparkSession", "", "spark = (",
                         "    SparkSession.builder",
                         f'    .config("spark.jars.packages", "{_ICEBERG_SPARK},{package}")',
                         *(f'    .config("spark.sql.catalog.hub{"." + k if k else ""}", "{v}")' for k, v in spark),
                         "    .getOrCreate()", ")", f'spark.table("hub.{example}").show()'])
    if kind == "sqlite":
        trino = ("# Trino's JDBC catalog reaches PostgreSQL and MySQL only: run the hub's catalog on PostgreSQL\n"
                 "# (HUB_CATALOG_URL) for Trino, or read with Spark, DuckDB or Polars.")
    else:
        trino = "\n".join([
            "# etc/catalog/hub.properties", "connector.name=iceberg", "iceberg.catalog.type=jdbc",
            "iceberg.jdbc-catalog.catalog-name=hub", f"iceberg.jdbc-catalog.driver-class={driver}",
            f"iceberg.jdbc-catalog.connection-url={jdbc}",
            f"iceberg.jdbc-catalog.connection-user={url.username or ''}",
            f"iceberg.jdbc-catalog.connection-password={PASSWORD}",
            f"iceberg.jdbc-catalog.default-warehouse-dir={warehouse}",
            "# the warehouse is a local folder (file://), mounted at the same path on every Trino node",
            "fs.hadoop.enabled=true"])
    duckdb = ["INSTALL iceberg;", "LOAD iceberg;",
              "-- each table's current metadata file (a new one at every publish: print these settings again)"]
    for name in tables:
        location = catalog.load_table((storage.PUBLIC, name)).metadata_location.removeprefix("file://")
        duckdb.append(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM iceberg_scan('{location}');")
    if not tables:
        duckdb.append("-- no public table yet: publish a dataset anonymous may read")
    polars = "\n".join(["import polars as pl", "from pyiceberg.catalog.sql import SqlCatalog", "",
                        f'catalog = SqlCatalog("hub", uri="{sqlalchemy_url}", warehouse="{warehouse}")',
                        f'print(catalog.list_tables("{storage.PUBLIC}"))',
                        f'frame = pl.scan_iceberg(catalog.load_table("{example}")).collect()'])
    return {"spark-sql": spark_sql, "pyspark": pyspark, "trino": trino, "duckdb": "\n".join(duckdb), "polars": polars}
