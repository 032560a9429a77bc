# What a cold open costs by the pool's layout (issue 29), without FUSE: open+read of N small
# files after `echo 3 > drop_caches`, four ways over the same files:
#   native        NATIVE/Packages/<name> (one directory, as the upstream has them)
#   pool path     <data>/sha256/ab/cd/<sha256>_<name>, the path chantal-fs opens
#   pool openat   the same, relative to a directory handle of <data>/sha256 held open
#   pool bucket   the same, relative to a handle of the file's own ab/cd directory, held open
#                 (taken before the drop_caches; one descriptor per directory, so N is bounded
#                 by the open-file limit)
#   pool handle   open_by_handle_at() with handles taken beforehand (name_to_handle_at): the
#                 inode itself, no directory walk (needs CAP_DAC_READ_SEARCH)
#   one level     a model of a pool with one level of buckets (<ab>/<sha256>_<name>): hard
#                 links to every pool file, made at the start in <data>/../pool-open-1level
#                 and removed at the end (chantal's pool is not laid out so)
# Within a round every way reads the same files, each after its own drop_caches; each round
# takes the next N files. Prints seconds, microseconds and the disk's reads (/proc/diskstats)
# per file, per way and round.
# Usage (root): python3 pool-open.py NATIVE_DIR POOL_DATA_DIR [N] [ROUNDS]
#   e.g. python3 pool-open.py /var/tmp/chantal-bench/fs50k /var/tmp/chantal-bench/work-prefill/storage/data
import ctypes
import os
import resource
import shutil
import sys
import time

native_dir = os.path.join(sys.argv[1], "Packages")
data = sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 2
libc = ctypes.CDLL(None, use_errno=True)

pool = {}
for top, _, files in os.walk(os.path.join(data, "sha256")):
    for f in files:
        pool[f.split("_", 1)[1]] = os.path.join(top, f)
names = sorted(x for x in os.listdir(native_dir) if x in pool and x.startswith("small-"))
if len(names) < n * rounds:
    sys.exit(f"only {len(names)} small files in both trees, {n * rounds} needed")


class FileHandle(ctypes.Structure):
    _fields_ = [("handle_bytes", ctypes.c_uint), ("handle_type", ctypes.c_int),
                ("f_handle", ctypes.c_ubyte * 128)]


def handle(path):
    fh, mount_id = FileHandle(), ctypes.c_int()
    fh.handle_bytes = 128
    if libc.name_to_handle_at(-100, path.encode(), ctypes.byref(fh), ctypes.byref(mount_id), 0):
        raise OSError(ctypes.get_errno(), "name_to_handle_at", path)
    return fh


def drop():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3")


dev = os.stat(data).st_dev


def disk_reads():
    """Reads completed by the disk that holds the pool, as /proc/diskstats counts them (None
    where the file system's device is not a disk there, e.g. btrfs)."""
    with open("/proc/diskstats") as f:
        for line in f:
            p = line.split()
            if (int(p[0]), int(p[1])) == (os.major(dev), os.minor(dev)):
                return int(p[3])
    return None


def run(label, opener, files):
    drop()
    reads = disk_reads()
    t = time.perf_counter()
    for f in files:
        fd = opener(f)
        os.read(fd, 65536)
        os.close(fd)
    dt = time.perf_counter() - t
    after = disk_reads()
    per_file = "   ?" if reads is None else f"{(after - reads) / len(files):4.2f}"
    print(f"{label:12} {dt:6.2f} s  {dt / len(files) * 1e6:5.0f} us/file  "
          f"{per_file} disk reads/file", flush=True)


sha = os.open(os.path.join(data, "sha256"), os.O_RDONLY | os.O_DIRECTORY)
mount_fd = os.open(data, os.O_RDONLY | os.O_DIRECTORY)
# One descriptor per bucket for "pool bucket": as many as the hard limit allows.
resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
one_level = os.path.join(os.path.dirname(os.path.abspath(data)), "pool-open-1level")


def measure():
    for r in range(rounds):
        files = names[r * n:(r + 1) * n]
        print(f"round {r + 1}: {n} files")
        run("native", lambda x: os.open(os.path.join(native_dir, x), os.O_RDONLY), files)
        run("pool path", lambda x: os.open(pool[x], os.O_RDONLY), files)
        rel = {x: os.path.relpath(pool[x], os.path.join(data, "sha256")) for x in files}
        run("pool openat", lambda x: os.open(rel[x], os.O_RDONLY, dir_fd=sha), files)
        # Each file's bucket handle and name, found before the clock starts, as `rel` above.
        buckets, in_bucket = {}, {}
        for x in files:
            d, base = os.path.split(pool[x])
            if d not in buckets:
                try:
                    buckets[d] = os.open(d, os.O_PATH | os.O_DIRECTORY)
                except OSError as e:
                    sys.exit(f"cannot hold {len(buckets) + 1} directories open ({e}): "
                             "use a smaller N")
            in_bucket[x] = (buckets[d], base)
        run("pool bucket", lambda x: os.open(in_bucket[x][1], os.O_RDONLY,
                                             dir_fd=in_bucket[x][0]), files)
        for fd in buckets.values():
            os.close(fd)
        run("one level", lambda x: os.open(flat[x], os.O_RDONLY), files)
        handles = {x: handle(pool[x]) for x in files}

        def by_handle(x):
            fd = libc.open_by_handle_at(mount_fd, ctypes.byref(handles[x]), os.O_RDONLY)
            if fd < 0:
                raise OSError(ctypes.get_errno(), "open_by_handle_at", x)
            return fd

        run("pool handle", by_handle, files)


shutil.rmtree(one_level, ignore_errors=True)
flat = {}
try:
    for x, path in pool.items():
        base = os.path.basename(path)
        os.makedirs(os.path.join(one_level, base[:2]), exist_ok=True)
        flat[x] = os.path.join(one_level, base[:2], base)
        os.link(path, flat[x])
    measure()
finally:
    shutil.rmtree(one_level, ignore_errors=True)
