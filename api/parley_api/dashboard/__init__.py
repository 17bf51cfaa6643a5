"""The analysts' dashboard: one HTML page and its static files, served by parley_api itself.

The page is a small hand-written ES module (no framework, no build step, no CDN) that calls
GET /api/v1/stats with the analyst's Basic credentials. Static files are served under
content-hashed names with immutable caching; the page itself is never cached.
"""
