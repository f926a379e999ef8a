"""The scale benchmark (issue 11, "Scale"): `make bench-scale`, PostgreSQL only.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_bench_scale \
        .venv/bin/python scripts/bench_scale [--reload] [--students 100000] ...

Loads, with PostgreSQL COPY, 100,000 students (with their acceptances), 30,000 employers
(with a privacy contact each), 1,000,000 consent events (and the current state they lead
to), 1,000,000 activity records (all past their retention period), 100,000 requests (with
their company tasks and timelines), 100,000 audit log entries (a valid chain), and one
student with 10,000 recent activity records and an open disclosure request. A second run
finds the counts there and only measures; the retention job deletes the expired activity
records at the end of a run, so the next run loads those again (about 30 s). `--reload`
drops the database and starts over.

Then it prints, each with its goal and ok/FAIL: the consent check (1,000 triples, against a
bare view in one gunicorn, as scripts/bench_api.py), the changes feed, every admin
changelist staff use (plain, searched, filtered, page 2 and a deep page), the dashboard, the
impact report and its CSV, the disclosure report (PDF + JSON) of the heavy student, and the
retention job over the expired rows. Any query over 100 ms is printed with its
EXPLAIN (ANALYZE, BUFFERS).

The parts: `loading` (what is missing, by COPY: `copying`, `load_people`, `load_ledgers`),
`admin_pages` (the admin's pages timed), `api` (the consent check and the changes feed),
`raw` (the same queries sent raw, the yardsticks), `jobs` (the disclosure report, the
retention job) and `cli` (the flags and the order of a run); `__main__` makes the database
and sets up Django before any of them is imported. The report itself is benchlib's.
"""
