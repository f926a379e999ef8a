"""`python scripts/bench_wave` (as `make bench-wave` runs it): see the package's docstring.
The arguments, the database and the broker are settled and Django set up (bootstrap) before
the modules that import the portal's models."""

import sys
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
SCRIPTS_DIR = PACKAGE_DIR.parent
BASE_DIR = SCRIPTS_DIR.parent
# Run as a directory, Python puts the package's own folder first on the path: its modules are
# imported as `bench_wave.*` beside the other scripts' (benchlib) instead.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != PACKAGE_DIR]
sys.path[:0] = [str(BASE_DIR), str(SCRIPTS_DIR)]

import bench_wave.bootstrap  # noqa: E402, F401  (before anything imports Django's models)
from bench_wave.cli import main  # noqa: E402

main()
