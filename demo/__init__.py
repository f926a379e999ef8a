"""The demo data: people, companies, policy texts and stories as files (data/), and the code
that reads them (load.py, check.py) and makes the rows (seed.py, generate.py, bulk.py) for
`manage.py seed_demo`. Not a Django app: it has no models. See README.md here."""
