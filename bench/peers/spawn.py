"""Run one command; write its wall time, peak RSS (KiB) and exit status to RESULT_FILE.

    python -I -S bench/peers/spawn.py RESULT_FILE COMMAND [ARG ...]

A child's ``ru_maxrss`` includes the high-water mark of the process it was started from (at exec
the kernel keeps the larger of the old image's and the new one's), so a child started by the
harness, with NumPy and the benchmark's inputs loaded, could never show less than the harness
itself. This script imports nothing beyond the interpreter's core (``-I -S``: no site, no user
paths), so the floor it leaves is below any Python program's own. stdin, stdout and stderr pass
straight through to the command.
"""

import os
import sys
import time

result, argv = sys.argv[1], sys.argv[2:]
t0 = time.perf_counter()
pid = os.posix_spawnp(argv[0], argv, os.environ)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - t0
with open(result, "w") as f:
    f.write(f"{seconds!r} {usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}\n")
