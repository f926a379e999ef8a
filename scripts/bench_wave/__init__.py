"""The 2019 wave from the companies' side (issues 19 and 20): `make bench-wave`.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_benchwave \\
        .venv/bin/python scripts/bench_wave [--students 2000] [--companies 38] ...

Needs PostgreSQL (a database of its own, made afresh at the start of each run and dropped at
the end; its name must contain "bench", since it is dropped) and `redis-server` (a private
broker on a free port, killed at the end). In this process: an SMTP sink on loopback; beside
it a real `celery worker --pool=prefork --concurrency=2` (the machine's two cores) and, when
the digests are due, a real `celery beat` with two-second sweeps.

1. The wave on the daily digest: N students (`--students`, 2,000) whose data went to
   `--companies` (38) companies, each with a primary privacy contact (half Japanese, half
   English), every company on the daily digest. Acceptances, grants and provisions are
   made by bulk_create; then each student files a deletion to every company
   (`request_file`, one after another, as fast as the portal takes them) while the worker
   claims the companies' tasks. Once every task is claimed, simulated time moves a day on
   (tests/faults/flows.py `advance`), so the 09:00 digest is due, and beat's sweeps make
   the digests. Prints the filing time and rate, the time until every company has its
   digest, what each company and each student received, and what was lost or duplicated:
   every task in exactly one digest (its DigestItem rows) and counted in the one digest
   email its company received (the email's count and rows, as the SMTP sink got them).
2. The workspace list of one company with `--workspace-tasks` (10,000) open tasks (made by
   bulk_create, filed over five days, two of them past due): its first page, a filtered
   page, a search and the last page, through the whole Django stack in-process
   (django.test.Client, signed in by a workspace link), p50 of `--repeat` runs, beside the
   page's own list query run raw with a cursor.
3. The bulk answer: "all matching the filter" (one day's `--bulk-tasks`, 2,000, deletions
   of that company), deleted, attested, with a name and role, posted to the workspace and
   timed, beside one raw SQL UPDATE of the same rows (rolled back). Then checks that every
   task was answered once, each student has one "request_answered" email row and each
   request's certificate is queued (the worker is stopped: they wait in the broker).
4. The same wave with every company on "each request by its own email" (issue 20's goal:
   2,000 x 38 in under 15 minutes). On by default up to 200 students (`--per-request on`
   or `off` to choose). Prints the time until every company has every email, what was
   lost or duplicated, and raw smtplib sending as many similar messages to the same sink
   from two processes (one connection each, as each worker process keeps), and the ratio.

Each figure is one line with its goal, ok/FAIL and the load average over the last minute.

The modules: bootstrap (the arguments, the database, the broker's port, Django set up; first),
common (constants, progress, waits, the SMTP sink), seeding, wave (parts 1 and 4), workspace
(parts 2 and 3) and cli (the run).
"""
