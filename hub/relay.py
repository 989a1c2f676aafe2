"""Records read inside an agency's network (on an Airflow Edge worker), relayed to the hub through Airflow's API server.

A source registered with `runs_on: {edge_queue: NAME}` is read by its `fetch` task on an Edge worker serving that
queue. The worker reaches nothing of the hub but Airflow's API server: the records travel back as the task's XCom
value (the Task SDK sends it through the Execution API; Airflow keeps it in its metadata database), each batch as
zstd-compressed Parquet in base64 (half the size of Arrow IPC for agency records: dictionary encoding), with its
row count, cursor and the records the connector could not split. The hub's `stage` task stages from them instead
of calling the connector. Once the run is over they are deleted from Airflow's database (the `deliver` teardown),
where Airflow's users could read them.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Iterable, Iterator

from hub.errors import ConfigError, FatalSourceError, HubError

__all__ = ["FORMAT", "MAX_MB_SETTING", "decode", "describe_failure", "encode", "failure_error", "fetch",
           "max_bytes"]

log = logging.getLogger(__name__)

FORMAT = "hub-relay/1 parquet+zstd base64"
# The relayed records sit in one XCom value in Airflow's metadata database (a JSON column): kept well below what
# the databases take in one value and what the API server should hold in memory for one request.
MAX_MB_SETTING = "HUB_EDGE_RELAY_MAX_MB"
DEFAULT_MAX_MB = 32


def max_bytes() -> int:
    """HUB_EDGE_RELAY_MAX_MB (default 32), in bytes of encoded records: what one fetch may relay."""
    from hub.settings import positive_setting

    return int(positive_setting(MAX_MB_SETTING, DEFAULT_MAX_MB) * 1024 * 1024)


def fetch(source, cursor=None, limit: int | None = None) -> dict:
    """Read `source` after `cursor` with its connector, here (on the Edge worker), and encode what it read.

    Touches nothing of the hub: no catalog, warehouse or staging folder; only the agency's system, and the
    connection or environment variable its registration names for a secret.
    """
    from connectors import connector_for

    payload = encode(source.id, connector_for(source).read(cursor), cursor, max_bytes() if limit is None else limit)
    log.info("source %s: read %d records (%d the connector could not split) in %d batches; relaying %d bytes to "
             "the hub", source.id, payload["rows"], sum(len(b["rejected"]) for b in payload["batches"]),
             len(payload["batches"]), payload["bytes"])
    return payload


def encode(source_id: str, batches: Iterable, cursor=None, limit: int | None = None) -> dict:
    """The XCom value that carries `batches` (connectors.base.Batch) to the hub; stops with a FatalSourceError as
    soon as the encoded records pass `limit` bytes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    digest = hashlib.sha256()
    encoded, rows, size = [], 0, 0
    for batch in batches:
        sink = pa.BufferOutputStream()
        pq.write_table(batch.records, sink, compression="zstd")  # keeps the Arrow schema: every column text
        data = sink.getvalue().to_pybytes()
        digest.update(data)
        text = base64.b64encode(data).decode("ascii")
        rejected = []
        for item in batch.rejected:
            row, reason, raw = item
            # A rejection's details (connectors.base.Rejected) ride along as a fourth item where it has them.
            details = getattr(item, "details", None)
            rejected.append([int(row), str(reason), str(raw), *([details] if details else [])])
        size += len(text) + sum(len(r[2]) for r in rejected)
        rows += batch.records.num_rows + len(rejected)
        if limit is not None and size > limit:
            raise FatalSourceError(
                f"source {source_id}: the first {rows} records read already take {size / 2**20:.1f} MB once "
                f"compressed, more than the {limit / 2**20:g} MB one fetch on an Edge worker may relay through "
                f"Airflow's API server and metadata database ({MAX_MB_SETTING}); store XComs in object storage "
                f"(the common-io provider's XComObjectStorageBackend) and raise {MAX_MB_SETTING}, or read the "
                "source incrementally")
        encoded.append({"rows": batch.records.num_rows, "cursor": batch.cursor, "rejected": rejected, "parquet": text})
    return {"format": FORMAT, "source": source_id, "cursor": cursor, "rows": rows, "bytes": size,
            "sha256": digest.hexdigest(), "batches": encoded}


def decode(payload: dict, source_id: str) -> Iterator:
    """The batches a fetch relayed, checked: the format, the source, the digest of the records and their counts.

    The digest is checked before the first batch is given out, so records that were altered are never staged.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from connectors.base import Batch, Rejected

    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise HubError(f"source {source_id}: the fetch task relayed no records in the format {FORMAT!r}; is the "
                       "Edge worker running another version of the hub?")
    if payload.get("source") != source_id:
        raise ConfigError(f"source {source_id}: the fetch task relayed the records of {payload.get('source')!r}; "
                          "the Edge worker's registry does not match the hub's")
    streams = [base64.b64decode(b["parquet"]) for b in payload["batches"]]
    digest = hashlib.sha256()
    for data in streams:
        digest.update(data)
    if digest.hexdigest() != payload["sha256"]:
        raise HubError(f"source {source_id}: the relayed records do not match their digest; nothing was staged")

    def batches() -> Iterator:
        rows = 0
        for entry, data in zip(payload["batches"], streams):
            records = pq.read_table(pa.BufferReader(data))
            if records.num_rows != entry["rows"]:
                raise HubError(f"source {source_id}: a relayed batch has {records.num_rows} records, not "
                               f"{entry['rows']}; nothing was staged")
            rows += records.num_rows + len(entry["rejected"])
            yield Batch(records=records, cursor=entry["cursor"],
                        rejected=[Rejected(int(row), reason, raw, *details)
                                  for row, reason, raw, *details in entry["rejected"]])
        if rows != payload["rows"]:
            raise HubError(f"source {source_id}: {rows} relayed records, not {payload['rows']}; nothing was staged")

    return batches()


def describe_failure(error: BaseException) -> dict:
    """What the hub records of a fetch that failed on the Edge worker: the error's class, and its message only
    for the hub's own errors, which never carry record values (as `hub.pipeline.record_failure` records them)."""
    return {"error": type(error).__name__, "message": str(error) if isinstance(error, HubError) else None}


def failure_error(source_id: str, failure: dict | None) -> HubError:
    """The error to record for a fetch that relayed nothing: the one it reported, as the hub's error class of the
    same name (a retry of `stage` cannot fix it), or why there is none."""
    from hub import errors

    if not failure:
        return HubError(f"source {source_id}: the fetch task on the Edge worker relayed no records (it failed "
                        "before it could say why, or did not run); see its log")
    kind = getattr(errors, str(failure.get("error")), None)
    message = failure.get("message") or f"source {source_id}: the fetch task on the Edge worker failed " \
                                        f"({failure.get('error')}); see its log"
    if isinstance(kind, type) and issubclass(kind, HubError) and kind is not errors.Busy:
        return kind(message)
    return HubError(message)
