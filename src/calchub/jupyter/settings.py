"""The limits and pool settings of each way of calling Jupyter (CoCalc's values)."""

from __future__ import annotations

from calchub.hub import Hub
from calchub.runtime.jupyter import ExecuteLimits, PoolSettings

# The hub's paths (hub bridge jupyter.execute, REST jupyter/execute with a project).
HUB_LIMITS = ExecuteLimits(
    timeout_ms=45_000,
    timeout_ms_per_cell=30_000,
    max_output=5_000_000,
    max_output_per_cell=1_000_000,
)
# The project API's system.jupyterExecute.
PROJECT_LIMITS = ExecuteLimits(
    timeout_ms=0, timeout_ms_per_cell=30_000, max_output=5_000_000, max_output_per_cell=1_000_000
)
# The global pool.
GLOBAL_LIMITS = ExecuteLimits(
    timeout_ms=15_000, timeout_ms_per_cell=15_000, max_output=2_500_000, max_output_per_cell=500_000
)
# A persistent session's cells: the same as the hub's, without a total beyond the cell.
SESSION_LIMITS = ExecuteLimits(
    timeout_ms=0, timeout_ms_per_cell=30_000, max_output=5_000_000, max_output_per_cell=1_000_000
)
MAX_TIMEOUT_S = 3600


async def pool_settings(hub: Hub) -> PoolSettings:
    site = await hub.site.all()
    return PoolSettings(
        size=max(0, min(int(site["jupyter_pool_size"]), 16)),
        idle_timeout_s=max(0, int(site["jupyter_pool_idle_timeout_s"])),
    )


def within(limits: ExecuteLimits, timeout_s: float | None) -> ExecuteLimits:
    """The limits, cut down to a caller's timeout (seconds), so that the kernel is
    interrupted before the caller gives up; a timeout never raises them."""
    if timeout_s is None or not timeout_s > 0:
        return limits
    ms = max(1, int(min(timeout_s, MAX_TIMEOUT_S) * 1000))

    def cut(value: int) -> int:
        return min(value, ms) if value else ms

    return ExecuteLimits(
        timeout_ms=cut(limits.timeout_ms),
        timeout_ms_per_cell=cut(limits.timeout_ms_per_cell),
        max_output=limits.max_output,
        max_output_per_cell=limits.max_output_per_cell,
    )
