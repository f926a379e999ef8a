"""Before Django: the run's arguments, its own database (made afresh) and its own broker's
port, then Django set up. Imported first by __main__; every other module comes after."""

import argparse
import os
import shutil
import warnings
from urllib.parse import urlsplit

import bench_wave

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/portal_benchwave"


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=bench_wave.__doc__.split("\n")[0])
    parser.add_argument("--students", type=int, default=2000, help="students in each wave")
    parser.add_argument("--companies", type=int, default=38)
    parser.add_argument("--workspace-tasks", type=int, default=10_000)
    parser.add_argument("--bulk-tasks", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=7, help="timed requests per page")
    parser.add_argument(
        "--only",
        default="wave,workspace,bulk",
        help="parts 1-3 to run, comma-separated (wave, workspace, bulk); default all",
    )
    parser.add_argument(
        "--per-request",
        choices=("auto", "on", "off"),
        default="auto",
        help="part 4, the wave one email per task; auto: on up to 200 students",
    )
    parser.add_argument("--timeout", type=float, default=3600, help="seconds, any one wait")
    parser.add_argument(
        "--settle", type=float, default=6, help="seconds to wait for duplicates after the last"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database at the end")
    args = parser.parse_args()
    if min(args.students, args.companies, args.repeat) < 1:
        parser.error("--students, --companies and --repeat must be at least 1")
    if not 1 <= args.bulk_tasks <= args.workspace_tasks // 2:
        parser.error("--bulk-tasks must be between 1 and half of --workspace-tasks")
    args.parts = {part for part in args.only.split(",") if part}
    if args.parts - {"wave", "workspace", "bulk"}:
        parser.error(f"--only: unknown part(s) {args.parts - {'wave', 'workspace', 'bulk'}}")
    return args


ARGS = arguments()

# The database and the broker, before Django reads its settings --------------------------------
os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
DATABASE_URL = os.environ["DATABASE_URL"]
if not DATABASE_URL.startswith(("postgres://", "postgresql://")):
    raise SystemExit(
        "bench-wave needs PostgreSQL (a real worker in another process reads what this one "
        f"writes): set DATABASE_URL=postgres://... (default {DEFAULT_DATABASE_URL}); got "
        f"{DATABASE_URL.split(':')[0]}:"
    )
DATABASE_NAME = urlsplit(DATABASE_URL).path.lstrip("/")
if "bench" not in DATABASE_NAME:
    raise SystemExit(
        f"bench-wave drops and recreates its database; DATABASE_URL names {DATABASE_NAME!r}, "
        f"which does not look like a benchmark's (its name must contain 'bench'; default "
        f"{DEFAULT_DATABASE_URL})"
    )
if shutil.which("redis-server") is None:
    raise SystemExit(
        "bench-wave needs redis-server (apt-get install redis-server): it starts a private "
        "broker of its own on a free port, so that no other worker takes its tasks"
    )

import benchlib  # noqa: E402
import psycopg  # noqa: E402

from tests.ports import free_port  # noqa: E402

BROKER_PORT = free_port()
# The run's own broker, whatever the environment names: a shared one would hand our tasks to
# other workers (and theirs to ours).
os.environ["CELERY_BROKER_URL"] = f"redis://127.0.0.1:{BROKER_PORT}/0"
try:
    benchlib.database_ensure(DATABASE_URL, drop=True)
except psycopg.OperationalError as exc:
    raise SystemExit(f"bench-wave needs PostgreSQL at {DATABASE_URL}: {exc}") from exc

import django  # noqa: E402

warnings.filterwarnings("ignore", "No directory at")
django.setup()
