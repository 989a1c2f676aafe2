"""interop-hub: settings, errors, the pipeline runner and the `hub` command line."""

import os

# Arrow's C++ code (the CSV reader, Parquet, compute) allocates from the pool this names when pyarrow loads;
# pyarrow's set_memory_pool reaches only what Python asks for. jemalloc, which a run sets to give freed pages back
# at once (`hub.pipeline._return_freed_memory`): with Arrow's default, mimalloc, reading a CSV kept 150 MB resident
# that Arrow no longer used. A process that loaded pyarrow before the hub keeps the pool it has.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")
