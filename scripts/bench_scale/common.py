"""What the loader and the measurements share: the demo data and the benchmark's names."""

from demo.load import load as load_demo

DEMO = load_demo()  # the demo data (demo/data/): its password, names, words, staff
SEED = 2026
HEAVY_EMAIL = "heavy@example.jp"
BENCH_EMPLOYER = "ベンチ企業 {:05d}"
