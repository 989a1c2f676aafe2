"""interop-hub: settings, errors, the pipeline runner and the `hub` command line."""
