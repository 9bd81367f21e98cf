"""What creating a 16 MB WAL segment does to a commit's flush on the same disk.

A probe thread stands in for committing transactions: an 8 kB write and an
fdatasync of a preallocated file, in a loop (0.4 ms apart). Meanwhile the
main thread creates zero-filled 16 MB files, one at a time, in one of two
ways (or, for comparison, none), and reports for each how long it took and
the probe's worst flush while it ran (and 50 ms after):
  - `whole`: 8 kB writes of all 16 MB, then one fsync, the way PostgreSQL
    creates a segment (xlog.c, XLogFileInitInternal);
  - `chunked`: 1 MB at a time, each sent to disk and waited for
    (sync_file_range) before the next, then fsync, the way the extension's
    WAL preallocator does (extension/pg/wal_prealloc.cpp);
  - `none`: no file, 30 ms of sleep instead: the probe's own worst flushes
    over a window of that length, for comparison.
The modes alternate, ROUNDS creations each per turn, two turns.

Usage: segment_write_probe.py DIR [ROUNDS]   (DIR: a scratch folder on the
disk to measure, e.g. build/probe; removed afterwards)
"""
import ctypes
import os
import shutil
import sys
import threading
import time

libc = ctypes.CDLL("libc.so.6", use_errno=True)
SYNC_FILE_RANGE_WAIT_BEFORE, SYNC_FILE_RANGE_WRITE, SYNC_FILE_RANGE_WAIT_AFTER = 1, 2, 4
SEGMENT = 16 << 20
CHUNK = 1 << 20


def probe(path, flushes, stop):
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.write(fd, b"\0" * SEGMENT)
    os.fsync(fd)
    block, at = b"x" * 8192, 0
    while not stop.is_set():
        t = time.perf_counter()
        os.pwrite(fd, block, at)
        os.fdatasync(fd)
        flushes.append((time.time(), (time.perf_counter() - t) * 1000))
        at = (at + 8192) % SEGMENT
        time.sleep(0.0004)
    os.close(fd)


def create(path, mode):
    if mode == "none":
        time.sleep(0.03)
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    if mode == "whole":
        zeros = b"\0" * 8192
        for _ in range(SEGMENT // 8192):
            os.write(fd, zeros)
    else:
        zeros = b"\0" * CHUNK
        flags = SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER
        for at in range(0, SEGMENT, CHUNK):
            os.pwrite(fd, zeros, at)
            if libc.sync_file_range(fd, ctypes.c_longlong(at), ctypes.c_longlong(CHUNK), flags) != 0:
                raise OSError(ctypes.get_errno(), "sync_file_range")
    os.fsync(fd)
    os.close(fd)
    os.unlink(path)


def main(folder, rounds):
    os.makedirs(folder, exist_ok=True)
    flushes, stop = [], threading.Event()
    thread = threading.Thread(target=probe, args=(os.path.join(folder, "probe"), flushes, stop))
    thread.start()
    time.sleep(1)
    worst = {"whole": [], "chunked": [], "none": []}
    try:
        for _turn in range(2):
            for mode in ("whole", "chunked", "none"):
                for i in range(rounds):
                    first, t0 = len(flushes), time.time()
                    create(os.path.join(folder, f"segment{i}"), mode)
                    t1 = time.time()
                    time.sleep(0.3)
                    during = [ms for (t, ms) in flushes[first:] if t0 - 0.01 <= t <= t1 + 0.05]
                    worst[mode].append(max(during))
                    print(f"{mode:8} creation {(t1 - t0) * 1000:6.1f} ms; the probe's flushes meanwhile: "
                          f"{len(during)}, worst {max(during):5.1f} ms")
    finally:
        stop.set()
        thread.join()
        shutil.rmtree(folder, ignore_errors=True)
    for mode, w in worst.items():
        w.sort()
        print(f"{mode}: worst flush per creation, median {w[len(w) // 2]:.1f} ms, range {w[0]:.1f}-{w[-1]:.1f} ms")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 6)
