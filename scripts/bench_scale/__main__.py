"""`python -m scripts.bench_scale`: PostgreSQL only; see the package's docstring."""

import os
import sys
import warnings
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(BASE_DIR))

from scripts.bench_scale.database import DEFAULT_DATABASE_URL, database_ensure  # noqa: E402

os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
if not os.environ["DATABASE_URL"].startswith(("postgres://", "postgresql://")):
    raise SystemExit(
        "bench-scale measures PostgreSQL only (COPY, EXPLAIN, pg_class estimates): set "
        f"DATABASE_URL=postgres://... (default {DEFAULT_DATABASE_URL}); "
        f"got {os.environ['DATABASE_URL'].split(':')[0]}:"
    )
database_ensure(os.environ["DATABASE_URL"], drop="--reload" in sys.argv)

import django  # noqa: E402

warnings.filterwarnings("ignore", "No directory at")
django.setup()

from scripts.bench_scale.cli import main  # noqa: E402

main()
