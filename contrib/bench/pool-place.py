# What giving a downloaded file its pool name costs by the pool's layout (issue 29), without
# chantal: the kernel work a cold sync does per new package in a young pool, in one thread,
# for N files of 8 KiB with random sha256 names, four ways:
#   two levels  a named partial file in tmp/, written, then `mkdir -p` of its data/ab/cd
#               bucket, `link` to data/ab/cd/<sha256>_x.rpm and `unlink` of the partial
#               name: what chantal does (the seed's layout)
#   tmpfile     the same with an O_TMPFILE partial file (no name in tmp/ to create and remove),
#               linked in through /proc/self/fd
#   one level   a model of a pool with one level of buckets (data/ab/<sha256>_x.rpm)
#   flat        one directory for every file, as dnf reposync writes a repository
# Each way runs in a directory of its own, made for the round, in the order given, reversed
# every other round. Prints the process's CPU (user + system) per round, and the median per
# file. Nothing is deleted while measuring: on ext4 without a journal, inodes freed in the last
# minute slow every creation (docs/PERFORMANCE.md); the directories go at the end.
# Usage: python3 pool-place.py DIR [N] [ROUNDS] [WAYS]
#   e.g. python3 pool-place.py /var/tmp/pool-place 3000 8 "two levels,tmpfile,one level,flat"
import ctypes
import os
import resource
import secrets
import shutil
import statistics
import sys
import time

base = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 3000
rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 6
ways = (sys.argv[4] if len(sys.argv) > 4 else "two levels,tmpfile,one level,flat").split(",")
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, AT_SYMLINK_FOLLOW = -100, 0x400
payload = os.urandom(8192)


def link_fd(fd, dest):
    # os.link() would link /proc's symbolic link itself (EXDEV): linkat must follow it.
    if libc.linkat(AT_FDCWD, f"/proc/self/fd/{fd}".encode(), AT_FDCWD, dest.encode(),
                   AT_SYMLINK_FOLLOW) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), dest)


def named_partial(root, h):
    part = f"{root}/tmp/pkg-{h}.part"
    fd = os.open(part, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o644)
    os.write(fd, payload)
    return part, fd


def place(way, root, h):
    if way == "tmpfile":
        fd = os.open(f"{root}/tmp", os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o644)
        os.write(fd, payload)
        bucket = f"{root}/data/{h[:2]}/{h[2:4]}"
        os.makedirs(bucket, exist_ok=True)
        link_fd(fd, f"{bucket}/{h}_x.rpm")
        os.close(fd)
        return
    part, fd = named_partial(root, h)
    if way == "two levels":
        bucket = f"{root}/data/{h[:2]}/{h[2:4]}"
    elif way == "one level":
        bucket = f"{root}/data/{h[:2]}"
    elif way == "flat":
        bucket = f"{root}/data"
    else:
        sys.exit(f"unknown way {way!r}")
    os.makedirs(bucket, exist_ok=True)
    os.link(part, f"{bucket}/{h}_x.rpm")
    os.unlink(part)
    os.close(fd)


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


os.makedirs(base, exist_ok=True)
made = []
results = {w: [] for w in ways}
try:
    for r in range(rounds):
        for way in ways if r % 2 == 0 else ways[::-1]:
            root = os.path.join(base, f"{way.replace(' ', '-')}-{r}-{secrets.token_hex(4)}")
            made.append(root)
            os.makedirs(f"{root}/tmp")
            os.makedirs(f"{root}/data")
            names = [secrets.token_hex(32) for _ in range(n)]
            os.sync()
            time.sleep(1)
            start = cpu()
            for h in names:
                place(way, root, h)
            results[way].append(cpu() - start)
finally:
    for root in made:
        shutil.rmtree(root, ignore_errors=True)

print(f"{n} files of 8 KiB a round, {rounds} rounds; CPU ms per round, then µs per file (median)")
for way, secs in results.items():
    rows = " ".join(f"{s * 1000:.0f}" for s in sorted(secs))
    print(f"{way:>11}: {rows}   {statistics.median(secs) / n * 1e6:.0f} µs")
