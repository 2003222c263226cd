"""The code location as `dagster dev` loads it, with a nightly cron of every minute and a quick
change sensor, so a test sees the daemon fire real ticks (tests/test_daemon.py)."""

import dagster as dg

from pipelines.definitions import exchange_definitions

# steps in the run's own process: the daemon, run queue, launcher and pools are exercised the same,
# without a Python process per step on a 2-core CI machine
defs = dg.Definitions.merge(
    exchange_definitions(nightly_cron="* * * * *", sensor_interval=5), dg.Definitions(executor=dg.in_process_executor)
)
