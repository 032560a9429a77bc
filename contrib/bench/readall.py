# Opens and reads every file named in LIST below DIR, as nginx or dnf do (plain open/read/close:
# Python's open() would add an isatty ioctl); prints the seconds it took.
# Usage: python3 readall.py DIR LIST
import os, sys, time
d, names = sys.argv[1], open(sys.argv[2]).read().split()
t = time.perf_counter()
for n in names:
    fd = os.open(os.path.join(d, n), os.O_RDONLY)
    while os.read(fd, 65536):
        pass
    os.close(fd)
print(f"{time.perf_counter() - t:.3f}")
