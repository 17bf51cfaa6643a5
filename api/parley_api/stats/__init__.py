"""GET /api/v1/stats: the route, its response schemas, the collector of the figures and their cache."""
