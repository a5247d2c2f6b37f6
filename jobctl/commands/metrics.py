"""`jobctl metrics`: the database-derived metrics once, in Prometheus' text format (or JSON)."""

from __future__ import annotations

import sys
from typing import Any

from jobctl.commands.common import JsonOpt, emit_json, queue_config, store


def metrics(json_out: JsonOpt = False) -> None:
    """Print the database-derived metrics once: jobs per queue and state, queue depth and latency, processes.

    The same names and text format as `jobctl start --metrics-port` serves (there with the runs counters and
    the run-duration histogram, which only the runtime knows); for a textfile collector, or a look by hand.
    """
    from jobctl.runtime import metrics as m

    config = queue_config()
    reading = store().metrics_reading(config.process_alive_threshold)
    families = m.reading_families(reading, named_queues=config.named_queues)
    if json_out:
        emit_json([_sample(s) for family in families for s in family.samples])
        return
    sys.stdout.write(m.render(families).decode())


def _sample(sample: Any) -> dict[str, Any]:
    value = float(sample.value)
    return {"name": sample.name, "labels": dict(sample.labels), "value": int(value) if value.is_integer() else value}
