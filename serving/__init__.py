"""The hub's HTTP surfaces, served by `hub serve`: the catalog API, the CKAN Action API, the portal, DCAT, downloads,
the API documentation and the guard every request passes. They read and write through `catalog` (storage, metadata,
access, audit) and mount the service bus of `exchange`."""
