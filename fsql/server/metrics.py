"""The server's Prometheus metrics, in the text exposition format (version 0.0.4).

A few counters kept in memory by one process: request latency as a histogram per endpoint,
responses per endpoint and status code, and the connection pool's state read at scrape time.
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict
from collections.abc import Callable, Mapping

# Seconds: a lookup is well under a millisecond of database time; the tail is what matters.
BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """Request counts and latencies; safe to update from the event loop and from threads."""

    def __init__(self, pool_stats: Callable[[], Mapping[str, int]]) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[str, list[int]] = defaultdict(lambda: [0] * (len(BUCKETS) + 1))
        self._sums: dict[str, float] = defaultdict(float)
        self._responses: dict[tuple[str, int], int] = defaultdict(int)
        self._pool_stats = pool_stats

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        with self._lock:
            self._buckets[endpoint][bisect.bisect_left(BUCKETS, seconds)] += 1
            self._sums[endpoint] += seconds
            self._responses[(endpoint, status)] += 1

    def render(self) -> str:
        with self._lock:
            lines = _histogram(self._buckets, self._sums) + _responses(self._responses)
        return "\n".join(lines + _pool(self._pool_stats())) + "\n"


def _histogram(buckets: Mapping[str, list[int]], sums: Mapping[str, float]) -> list[str]:
    name = "fsql_request_duration_seconds"
    lines = [f"# HELP {name} Time from request received to response ready, by endpoint.", f"# TYPE {name} histogram"]
    for endpoint, counts in sorted(buckets.items()):
        running = 0
        for bound, count in zip((*map(repr, BUCKETS), "+Inf"), counts, strict=True):
            running += count
            lines.append(f'{name}_bucket{{endpoint="{endpoint}",le="{bound}"}} {running}')
        lines.append(f'{name}_sum{{endpoint="{endpoint}"}} {sums[endpoint]!r}')
        lines.append(f'{name}_count{{endpoint="{endpoint}"}} {running}')
    return lines


def _responses(responses: Mapping[tuple[str, int], int]) -> list[str]:
    lines = [
        "# HELP fsql_responses_total Responses by endpoint and HTTP status code.",
        "# TYPE fsql_responses_total counter",
    ]
    lines += [f'fsql_responses_total{{endpoint="{e}",code="{c}"}} {n}' for (e, c), n in sorted(responses.items())]
    lines += [
        "# HELP fsql_errors_total Responses with a 4xx or 5xx status, by endpoint and status code.",
        "# TYPE fsql_errors_total counter",
    ]
    errors = sorted((key, n) for key, n in responses.items() if key[1] >= 400)
    lines += [f'fsql_errors_total{{endpoint="{e}",code="{c}"}} {n}' for (e, c), n in errors]
    return lines


# psycopg_pool's get_stats() names, as the gauges they become.
_POOL_GAUGES = {
    "pool_size": ("fsql_pool_connections", "Connections the pool holds, in use or idle."),
    "pool_available": ("fsql_pool_connections_idle", "Idle connections in the pool."),
    "pool_max": ("fsql_pool_connections_max", "The most connections the pool opens."),
    "requests_waiting": ("fsql_pool_requests_waiting", "Lookups waiting for a connection."),
}


def _pool(stats: Mapping[str, int]) -> list[str]:
    lines = []
    for key, (name, help_text) in _POOL_GAUGES.items():
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {stats.get(key, 0)}"]
    return lines
