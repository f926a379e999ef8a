"""Each figure with its goal and ok/FAIL, the machine's load when it was taken, and the plan
of every slow query."""

import statistics

from django.db import connection

SLOW_QUERY = 0.100  # seconds: any query over this is printed with its plan


def load_average() -> str:
    """The one-minute load average: other jobs share the machine's two cores."""
    with open("/proc/loadavg") as loadavg:
        return loadavg.read().split()[0]


class Report:
    """Prints each figure with its goal and ok/FAIL, and the plan of every slow query."""

    def __init__(self):
        self.failed: list[str] = []
        self.explained: set[str] = set()
        self.slow: list[tuple[str, float, str]] = []

    def line(self, name: str, figures: str, goal: str, ok: bool | None) -> None:
        verdict = "" if ok is None else ("ok" if ok else "FAIL")
        if ok is False:
            self.failed.append(name)
        print(f"{name:<52} {figures:<30} {goal:<18} {verdict:<4} load {load_average()}", flush=True)

    def timing(
        self,
        name: str,
        timings: list[float],
        goal_ms: float | None,
        extra: str = "",
        baseline: list[float] | None = None,
    ):
        """p50 and p95 of `timings` against the goal (on p95); with `baseline`, the p50 of the
        same run's yardstick beside them (a page's own SQL sent raw)."""
        ordered = sorted(timings)
        p50 = statistics.median(ordered) * 1000
        p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1000
        figures = f"p50 {p50:>6.0f} ms  p95 {p95:>6.0f} ms {extra}"
        if baseline:
            figures += f"  sql {statistics.median(baseline) * 1000:>5.0f} ms"
        goal = f"goal < {goal_ms:,.0f} ms" if goal_ms else ""
        self.line(name, figures, goal, None if goal_ms is None else p95 < goal_ms)

    def capture(self, name: str, queries: list[dict]) -> None:
        for query in queries:
            seconds = float(query["time"])
            if seconds > SLOW_QUERY:
                self.slow.append((name, seconds, query["sql"]))

    def explain_slow(self) -> None:
        for name, seconds, statement in self.slow:
            key = statement[:2000]
            if key in self.explained:
                continue
            self.explained.add(key)
            print(f"\n-- {name}: a query took {seconds * 1000:.0f} ms:\n{statement[:1500]}")
            if not statement.lstrip().upper().startswith(("SELECT", "WITH")):
                continue
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement)
                print("\n".join(row[0] for row in cursor.fetchall()))
        self.slow.clear()
