"""Each figure on one line with its goal, ok/FAIL and the machine's load when it was taken
(other jobs share the two cores: a figure means little without it)."""

import os

from benchlib import Report


class ScaleReport(Report):
    """benchlib's Report, with columns as wide as the admin's longest page names and the
    one-minute load average at the end of every line."""

    def line(self, name: str, figures: str, goal: str, ok: bool | None) -> None:
        verdict = "" if ok is None else ("ok" if ok else "FAIL")
        if ok is False:
            self.failed.append(name)
        load = os.getloadavg()[0]
        print(f"{name:<58} {figures:<48} {goal:<18} {verdict:<4} load {load:.1f}", flush=True)
