"""The run's constants, its progress lines and waits, and the SMTP sink that counts what arrives."""

import os
import sys
import time
from collections import Counter
from collections.abc import Callable

from benchlib import addressed

from demo.load import load as load_demo
from tests.faults.harness import PrivateRedis
from tests.smtp import SmtpServer

DEMO = load_demo()  # names for the students
SEED = 2019
DOMAIN = "bench.example.jp"
RAW_SMTP_TO = f"raw-smtp@{DOMAIN}"
WORKER = "celery worker --pool=prefork --concurrency=2"
PROGRESS_EVERY = 15  # seconds between progress lines on stderr
SWEEP_SECONDS = "2"
DIGEST_GOAL = 300  # seconds after 09:00: the bench's own goal (the issues set none)
WAVE_GOAL = 15 * 60  # seconds for 2,000 students x 38 companies, one email per task
BULK_GOAL = 30  # seconds for 2,000 tasks
BROKER: PrivateRedis  # the run's private broker, set by cli.main


def load() -> str:
    return " ".join(f"{n:.2f}" for n in os.getloadavg())


def note(text: str) -> None:
    """Progress, on stderr: stdout holds the figures."""
    print(f"  {text}  (load {os.getloadavg()[0]:.1f})", file=sys.stderr, flush=True)


def wait(
    condition: Callable[[], bool],
    what: str,
    *,
    timeout: float,
    progress: Callable[[], str] = lambda: "",
    processes: tuple = (),
) -> bool:
    """Poll `condition` until it holds (True) or the timeout (False), a line of progress on
    stderr every PROGRESS_EVERY seconds. A process that exits ends the wait."""
    deadline = time.monotonic() + timeout
    shown = time.monotonic()
    while not condition():
        for process in processes:
            if process.poll() is not None:
                raise RuntimeError(f"{process.args[3]} exited ({process.returncode}) {what}")
        if time.monotonic() > deadline:
            note(f"{what}: not within {timeout:.0f} s; {progress()}")
            return False
        if time.monotonic() - shown > PROGRESS_EVERY:
            shown = time.monotonic()
            note(f"{what}: {progress()}")
        time.sleep(0.25)
    return True


class WaveSink(SmtpServer):
    """The test SMTP server keeping, of each of the tens of thousands of messages, only when
    it arrived, to whom and its subject; whole messages only for the addresses in `keep`."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[tuple[float, str, str]] = []
        self.by_address: Counter = Counter()
        self.keep: set[str] = set()
        self.kept: dict[str, list[bytes]] = {}

    async def handle_DATA(self, server, session, envelope):
        to, subject = addressed(envelope.content)
        with self._lock:
            self.attempts += 1
            self.arrivals.append((time.perf_counter(), to, subject))
            self.by_address[to] += 1
            if to in self.keep:
                self.kept.setdefault(to, []).append(envelope.content)
        return "250 OK"

    def snapshot(self) -> list[tuple[float, str, str]]:
        with self._lock:
            return list(self.arrivals)

    def count_to(self, addresses: set[str]) -> int:
        """How many messages the addresses received between them."""
        with self._lock:
            return sum(self.by_address[address] for address in addresses)

    def reached(self, addresses: set[str]) -> int:
        """How many of the addresses have received something."""
        with self._lock:
            return sum(self.by_address[address] > 0 for address in addresses)
