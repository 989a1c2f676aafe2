"""An outside package's connector kind, `inline`: records written in the registration itself.

Installed, a package names its kinds in the entry-point group `interop_hub.connectors` (see the
dist-info beside this folder, as pip would write it); the hub finds them without any change of its own.
"""

from connectors import Batch, Connector


class InlineConnector(Connector):
    options_schema = {
        "type": "object", "required": ["records"], "additionalProperties": False,
        "properties": {"records": {"type": "array", "items": {"type": "object"}},
                       "batch_rows": {"type": "integer", "minimum": 1}},
    }

    def read(self, cursor=None):
        import pyarrow as pa

        from connectors.base import ROW, as_text

        records = self.options["records"]
        for start in range(0, len(records), self.batch_rows):
            chunk = records[start:start + self.batch_rows]
            columns = {name: pa.array([as_text(r.get(name)) for r in chunk], pa.string()) for name in chunk[0]}
            columns[ROW] = pa.array(range(start + 1, start + len(chunk) + 1), pa.int64())
            yield Batch(records=pa.table(columns))
