"""Time and memory of ``gradcli eval "mean((w*x + b - y)**2)"`` on N values per array: NumPy
(.npy inputs, one process), Dask in the gradcli process (Zarr inputs, Dask's threads) and a
Dask LocalCluster (``--dask``). The numbers are checked against each other before they count.

    python bench/dask_loss.py                  # N = 10**8 (1.6 GB of data), chunks of 10**6
    python bench/dask_loss.py --n 2e7 --runs 1

Each run is the gradcli command in a process of its own, measured from outside (wall time; the
peak resident memory of the largest process, from wait4, which for --dask is the largest of the
client and its workers) and, for the client, from inside: its resident memory just before the
computation and its peak during it (the kernel's high-water mark, reset just before).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

LOSS = "mean((w*x + b - y)**2)"
MEASURED = """
import sys
import threading
from gradcli import scale

report = sys.argv[1]


def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key + ":"))


def measured(inner):
    # Around the computation (scale.on_cluster with --dask: the client's part of it; else
    # scale._computing): the resident set just before and its peak during (the kernel's
    # high-water mark, reset just before, after its value so far, the peak of the start, is
    # read). Its private part (RssAnon: the heap and every anonymous mapping, not the pages of
    # shared libraries' files, which depend on the page cache) has no high-water mark: sampled
    # every millisecond.
    def wrapper(*args, **kwargs):
        start = status("VmHWM")
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before, private = status("VmRSS"), [status("RssAnon")]
        done = threading.Event()

        def sample():
            while not done.wait(0.001):
                private.append(status("RssAnon"))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            return inner(*args, **kwargs)
        finally:
            done.set()
            sampler.join()
            private.append(status("RssAnon"))
            with open(report, "w") as f:
                f.write(f"{before} {status('VmHWM')} {private[0]} {max(private)} {start}")

    return wrapper


scale._computing = measured(scale._computing)
scale.on_cluster = measured(scale.on_cluster)
from gradcli._entry import main

sys.argv = ["gradcli", *sys.argv[2:]]
main()
"""


def make_data(where: Path, n: int, chunk: int) -> None:
    import zarr

    rng = np.random.default_rng(0)
    root = zarr.open_group(str(where / "d.zarr"), mode="w")
    files, stores = {}, {}
    for name in "xy":
        files[name] = np.lib.format.open_memmap(
            where / f"{name}.npy", mode="w+", dtype=np.float64, shape=(n,)
        )
        stores[name] = root.create_array(name, shape=(n,), chunks=(chunk,), dtype=np.float64)
    for start in range(0, n, chunk):
        x = rng.standard_normal(min(chunk, n - start))
        blocks = {"x": x, "y": 3.0 * x + 1.0 + 0.1 * rng.standard_normal(x.size)}
        for name, block in blocks.items():
            files[name][start : start + x.size] = block
            stores[name][start : start + x.size] = block
    for f in files.values():
        f.flush()


def run(args: list[str], report: Path | None) -> dict[str, Any]:
    inside = ["-c", MEASURED, str(report)] if report else ["-m", "gradcli"]
    command = [sys.executable, *inside, *args]
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    out, err = proc.stdout.read(), proc.stderr.read()  # type: ignore[union-attr]
    if status != 0:
        raise SystemExit(f"{' '.join(args)} failed: {err}")
    result: dict[str, Any] = {"wall": wall, "maxrss": usage.ru_maxrss * 1024, "answer": json.loads(out)}
    if report:
        before, peak, private_before, private_peak, start = map(int, report.read_text().split())
        result.update(
            before=before, peak=peak, private_before=private_before, private_peak=private_peak, start=start
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=float, default=1e8, help="values per array")
    parser.add_argument("--chunk", type=float, default=1e6, help="values per chunk")
    parser.add_argument("--runs", type=int, default=2, help="runs of each (the median is shown)")
    parser.add_argument("--write-data", metavar="DIR", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    n, chunk = int(opts.n), int(opts.chunk)
    if opts.write_data:
        make_data(Path(opts.write_data), n, chunk)
        return
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp)
        # In a process of its own: a child's peak memory starts at its parent's (Linux carries
        # it over fork and exec), and the data written here would count in every run's.
        subprocess.run(
            [sys.executable, __file__, "--n", str(n), "--chunk", str(chunk), "--write-data", tmp], check=True
        )
        base = ["eval", LOSS, "--w", "0.5", "--b", "0", "--json"]
        zarr_in = ["--x", f"@{where}/d.zarr:x", "--y", f"@{where}/d.zarr:y"]
        ways = {
            "NumPy (.npy inputs, --wrt w,b)": (
                [*base, "--x", f"@{where}/x.npy", "--y", f"@{where}/y.npy", "--wrt", "w,b"],
                False,
            ),
            "Dask in this process (Zarr inputs)": ([*base, *zarr_in], True),
            "Dask LocalCluster (Zarr inputs, --dask)": ([*base, *zarr_in, "--dask"], True),
        }
        rows = {}
        for label, (args, inside) in ways.items():
            runs = [run(args, where / "memory.txt" if inside else None) for _ in range(opts.runs)]
            rows[label] = runs
        first, *others = [r[0]["answer"] for r in rows.values()]
        for answer in others:
            for key in ("value", "w", "b"):
                got, want = (a["value"] if key == "value" else a["grad"][key] for a in (answer, first))
                assert abs(got - want) <= 1e-9 * abs(want), (key, answer, first)
    data = 2 * n * 8
    print(f"{n:,} values per array ({data / 2**30:.2f} GiB), chunks of {chunk:,}; {os.cpu_count()} CPUs.")
    print(
        "| way | time (s) | vs NumPy | peak memory of the largest process (MiB) "
        "| client before / peak during the computation (MiB) | the client's private part (MiB) |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    floor = statistics.median(r["wall"] for r in rows[next(iter(rows))])
    for label, runs in rows.items():
        wall = statistics.median(r["wall"] for r in runs)
        maxrss = max(r["maxrss"] for r in runs) / 2**20
        client, private = (
            (
                f"{max(r[before] for r in runs) / 2**20:.0f} / {max(r[peak] for r in runs) / 2**20:.0f}"
                for before, peak in (("before", "peak"), ("private_before", "private_peak"))
            )
            if "before" in runs[0]
            else ("-", "-")
        )
        print(f"| {label} | {wall:.2f} | {wall / floor:.2f}x | {maxrss:.0f} | {client} | {private} |")


if __name__ == "__main__":
    main()
