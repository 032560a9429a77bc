#!/usr/bin/env python3
"""Capacity model for docs/SCALE-OUT.md, from the CentOS Stream 9 fixture's real sizes: the
pool and catalogue a mirror of RHEL 9 BaseOS + AppStream + EPEL 9 needs with 24 monthly
snapshots.

Measured from tests/fixtures/cs9: AppStream's package count and sizes (primary.xml), and
how many bytes of packages it gained per month (build times of the packages it lists: CS9 keeps
every version, so a month's new builds are what a monthly sync downloads). BaseOS's package
count comes from its filelists.xml (the fixture has no BaseOS primary), its sizes from
AppStream's mean. EPEL 9 is not in the fixtures: its shape (package count, mean size, monthly
churn) is an assumption, printed as such.

usage: capacity.py [FIXTURES]   (default: tests/fixtures of the project)"""
import datetime
import glob
import gzip
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "../../tests/fixtures")
MONTHS = 24
GiB = 1 << 30

def primary_packages(path):
    text = gzip.open(path).read().decode()
    for p in re.findall(r'<package type="rpm">.*?</package>', text, re.S):
        size = int(re.search(r'<size package="(\d+)"', p).group(1))
        build = int(re.search(r'build="(\d+)"', p).group(1))
        yield size, build

appstream = list(primary_packages(glob.glob(f"{FIX}/cs9/appstream/repodata/*-primary.xml.gz")[0]))
n_app = len(appstream)
bytes_app = sum(s for s, _ in appstream)
mean = bytes_app / n_app
newest = max(b for _, b in appstream)
def month(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m")
last = sorted({month(b) for _, b in appstream})[-MONTHS - 1:-1]  # whole months before the newest
per_month = {m: 0 for m in last}
count_month = {m: 0 for m in last}
for s, b in appstream:
    m = month(b)
    if m in per_month:
        per_month[m] += s
        count_month[m] += 1
app_monthly_bytes = sum(per_month.values()) / len(last)
app_monthly_count = sum(count_month.values()) / len(last)

filelists = gzip.open(glob.glob(f"{FIX}/cs9/baseos/repodata/*-filelists.xml.gz")[0]).read()
n_base = filelists.count(b"<package ")
# BaseOS churns like AppStream, per package.
base_monthly_count = app_monthly_count * n_base / n_app

# EPEL 9 (assumption, not a measurement): 20,000 packages of 1 MiB on average, 1,000 new a month.
n_epel, mean_epel, epel_monthly_count = 20000, 1 << 20, 1000

rows = [
    ("BaseOS", n_base, n_base * mean, base_monthly_count, base_monthly_count * mean, "count measured, sizes: AppStream's mean"),
    ("AppStream", n_app, bytes_app, app_monthly_count, app_monthly_bytes, "measured"),
    ("EPEL 9", n_epel, n_epel * mean_epel, epel_monthly_count, epel_monthly_count * mean_epel, "assumed"),
]
print(f"fixture: CS9 AppStream {n_app} packages, {bytes_app / GiB:.1f} GiB, mean {mean / (1 << 20):.2f} MiB; "
      f"{app_monthly_count:.0f} new packages ({app_monthly_bytes / GiB:.2f} GiB) a month over {last[0]}..{last[-1]}")
print(f"{'repository':<10} {'packages':>9} {'initial GiB':>12} {'new/month':>10} {'GiB/month':>10} {'after 24 months GiB':>20}  source")
total_pool = 0
total_rows = 0
for name, n, initial, mcount, mbytes, source in rows:
    after = initial + MONTHS * mbytes
    total_pool += after
    # Content rows: one per package ever present (versions share rows through ranges).
    total_rows += n + MONTHS * mcount
    print(f"{name:<10} {n:>9} {initial / GiB:>12.1f} {mcount:>10.0f} {mbytes / GiB:>10.2f} {after / GiB:>20.1f}  {source}")
print(f"pool after {MONTHS} monthly snapshots: {total_pool / GiB:.0f} GiB (each file once; a snapshot adds one row)")
print(f"catalogue: about {total_rows:,.0f} package rows and as many content rows, "
      f"{3 * MONTHS} snapshot rows, {3 * MONTHS} versions at one sync a month")
