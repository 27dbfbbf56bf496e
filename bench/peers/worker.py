"""Run one workload of one implementation in this process and print the result as one JSON line.

    python bench/peers/worker.py WORKLOAD MODULE SIZE REPEATS [TEXT_FILE [VALUES_JSON]]

Memory: the peak resident set size above the resident size once the inputs exist and one
untimed run has warmed up, read from /proc/self/status after resetting the kernel's high-water
mark (``/proc/self/clear_refs``); where that is not possible, ``ru_maxrss`` (then the baseline
is the peak so far, and the figure can only be too low). NumPy's buffers are counted, whatever
allocator they come from, which tracemalloc would not guarantee for every peer.
"""

from __future__ import annotations

import gc
import importlib
import json
import resource
import sys
import time
from typing import Any

import numpy as np
from common import make_arrays, make_quadratic


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _checks(result: Any) -> list[float]:
    """A few numbers that two correct implementations agree on (sums, for arrays)."""
    return [float(np.sum(np.asarray(r, dtype=np.float64))) for r in result]


def main(argv: list[str]) -> None:
    workload, module_name, size, repeats = argv[0], argv[1], int(argv[2]), int(argv[3])
    module = importlib.import_module(module_name)
    fn = getattr(module, workload)
    if workload == "chain":
        args: tuple[Any, ...] = (size,)
    elif workload == "arrays":
        args = make_arrays(size)
    elif workload == "hessian":
        args = make_quadratic(size)
    else:  # parse, phases: the text of a big expression from a file (phases: and its inputs)
        with open(argv[4]) as f:
            text = f.read()
        args = (text,) if workload == "parse" else (text, json.loads(argv[5]))

    result = fn(*args)  # warm-up, and the answer that is checked
    checks = result if workload == "phases" else ([] if workload == "parse" else _checks(result))
    del result
    gc.collect()
    base = _status_kb("VmRSS")
    exact = base is not None and _reset_peak()
    if not exact:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn(*args)
        times.append(time.perf_counter() - t0)
        del result
    peak = _status_kb("VmHWM") if exact else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps({"times": times, "checks": checks, "extra_kb": max(0, (peak or 0) - base), "exact": exact})
    )


if __name__ == "__main__":
    main(sys.argv[1:])
