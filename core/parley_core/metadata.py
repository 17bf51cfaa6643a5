"""The complete schema metadata: application tables plus the stats rollups (for Alembic)."""

from parley_core.models import Base
from parley_core.stats import tables as _stats_tables  # noqa: F401  (registers the rollup tables)

metadata = Base.metadata
