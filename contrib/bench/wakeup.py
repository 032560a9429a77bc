#!/usr/bin/env python3
"""How long one process takes to wake another on this machine, and why FUSE figures vary.

Two processes pass a byte back and forth over two pipes; each pass puts one to sleep and wakes
the other, as every FUSE request does (the client sleeps, the daemon wakes; the daemon replies,
the client wakes). Printed: microseconds per round trip with the two on different CPUs, and on
the same CPU, plus the guest's halt-polling setting where there is one (a virtual CPU that halts
at once when idle makes every wake-up from another CPU an interrupt through the hypervisor).

Usage: contrib/bench/wakeup.py [ROUND_TRIPS]
"""
import os
import sys
import time


def ping_pong(n, cpu_a, cpu_b):
    a_r, a_w = os.pipe()
    b_r, b_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.sched_setaffinity(0, {cpu_b})
        for _ in range(n):
            os.read(a_r, 1)
            os.write(b_w, b"x")
        os._exit(0)
    os.sched_setaffinity(0, {cpu_a})
    os.write(a_w, b"x")  # the child is scheduled and waiting before the clock starts
    os.read(b_r, 1)
    t = time.perf_counter()
    for _ in range(n - 1):
        os.write(a_w, b"x")
        os.read(b_r, 1)
    us = (time.perf_counter() - t) / (n - 1) * 1e6
    os.waitpid(pid, 0)
    for fd in (a_r, a_w, b_r, b_w):
        os.close(fd)
    return us


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50000
    cpus = sorted(os.sched_getaffinity(0))
    poll = "/sys/module/haltpoll/parameters/guest_halt_poll_ns"
    if os.path.exists(poll):
        with open(poll) as f:
            print(f"guest halt polling: {f.read().strip()} ns")
    if len(cpus) > 1:
        print(f"wake-up round trip, two CPUs: {ping_pong(n, cpus[0], cpus[1]):.1f} us")
    print(f"wake-up round trip, one CPU:  {ping_pong(n, cpus[0], cpus[0]):.1f} us")


if __name__ == "__main__":
    main()
