# What a cold open costs by the pool's layout (issue 29), without FUSE: open+read of N small
# files after `echo 3 > drop_caches`, four ways over the same files:
#   native        NATIVE/Packages/<name> (one directory, as the upstream has them)
#   pool path     <data>/sha256/ab/cd/<sha256>_<name>, the path chantal-fs opens
#   pool openat   the same, relative to a directory handle of <data>/sha256 held open
#   pool handle   open_by_handle_at() with handles taken beforehand (name_to_handle_at): the
#                 inode itself, no directory walk (needs CAP_DAC_READ_SEARCH)
# Within a round every way reads the same files, each after its own drop_caches; each round
# takes the next N files. Prints seconds and microseconds per file, per way and round.
# Usage (root): python3 pool-open.py NATIVE_DIR POOL_DATA_DIR [N] [ROUNDS]
#   e.g. python3 pool-open.py /var/tmp/chantal-bench/fs50k /var/tmp/chantal-bench/work-prefill/storage/data
import ctypes
import os
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


def run(label, opener, files):
    drop()
    t = time.perf_counter()
    for f in files:
        fd = opener(f)
        os.read(fd, 65536)
        os.close(fd)
    dt = time.perf_counter() - t
    print(f"{label:12} {dt:6.2f} s  {dt / len(files) * 1e6:5.0f} us/file", flush=True)


sha = os.open(os.path.join(data, "sha256"), os.O_RDONLY | os.O_DIRECTORY)
mount_fd = os.open(data, os.O_RDONLY | os.O_DIRECTORY)
for r in range(rounds):
    files = names[r * n:(r + 1) * n]
    print(f"round {r + 1}: {n} files")
    run("native", lambda x: os.open(os.path.join(native_dir, x), os.O_RDONLY), files)
    run("pool path", lambda x: os.open(pool[x], os.O_RDONLY), files)
    rel = {x: os.path.relpath(pool[x], os.path.join(data, "sha256")) for x in files}
    run("pool openat", lambda x: os.open(rel[x], os.O_RDONLY, dir_fd=sha), files)
    handles = {x: handle(pool[x]) for x in files}

    def by_handle(x):
        fd = libc.open_by_handle_at(mount_fd, ctypes.byref(handles[x]), os.O_RDONLY)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "open_by_handle_at", x)
        return fd

    run("pool handle", by_handle, files)
