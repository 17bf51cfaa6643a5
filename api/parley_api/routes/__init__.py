"""HTTP routes of parley_api, one module per resource."""
