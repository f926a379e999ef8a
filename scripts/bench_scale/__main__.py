"""`python scripts/bench_scale` (as `make bench-scale` runs it): PostgreSQL only; see the
package's docstring. The database is made (or dropped first, with --reload) before Django is
set up, so the package's modules, which import the portal's models, come after."""

import os
import sys
import warnings
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
SCRIPTS_DIR = PACKAGE_DIR.parent
BASE_DIR = SCRIPTS_DIR.parent
# Run as a directory, Python puts the package's own folder first on the path: its modules are
# imported as `bench_scale.*` beside the other scripts' (benchlib, bench_api) instead.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != PACKAGE_DIR]
sys.path[:0] = [str(BASE_DIR), str(SCRIPTS_DIR)]
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/portal_bench_scale"
os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
if not os.environ["DATABASE_URL"].startswith(("postgres://", "postgresql://")):
    raise SystemExit(
        "bench-scale measures PostgreSQL only (COPY, EXPLAIN, pg_class estimates): set "
        f"DATABASE_URL=postgres://... (default {DEFAULT_DATABASE_URL}); "
        f"got {os.environ['DATABASE_URL'].split(':')[0]}:"
    )

from benchlib import database_ensure  # noqa: E402

database_ensure(os.environ["DATABASE_URL"], drop="--reload" in sys.argv)

import django  # noqa: E402

warnings.filterwarnings("ignore", "No directory at")
django.setup()

from bench_scale.cli import main  # noqa: E402

main()
