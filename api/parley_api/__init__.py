"""Parley's stats API and dashboard. Where a request goes:

1. ``plumbing/server.py`` (uvicorn) -> middleware: ``plumbing/management.py`` (which port serves
   which path), ``plumbing/body_limit.py``, ``plumbing/cors.py``, ``plumbing/metrics.py``.
2. A feature's ``routes.py``: ``auth/`` (register; Basic auth as ``auth/dependencies.py``),
   ``stats/`` (GET /api/v1/stats), ``health/`` (/health, /ready), ``dashboard/`` (the page and its
   files); ``plumbing/api_docs.py`` serves /docs and /redoc. Bodies are in each ``schemas.py``.
3. Its dependencies: ``state.py`` (the one AppState of the app), the current user, and the rate
   limit (``plumbing/ratelimit.py``, counting in ``plumbing/counters.py``).
4. Refusals: ``errors.py`` (error bodies, the OpenAPI responses routes share, exception handlers).
``main.py`` assembles all of this; ``plumbing/`` is what no feature owns.
"""
