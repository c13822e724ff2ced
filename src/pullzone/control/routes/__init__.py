"""The API's routes, one module per resource: `zones` now, `purge` next."""
