"""Dashboard statistics: rollup tables kept by triggers, and the queries that read them."""
