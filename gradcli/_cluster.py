"""The local Dask cluster of ``gradcli ... --dask``, in a process of its own.

Started by :func:`gradcli.scale.cluster` (its standard error to a file) as
``python -m gradcli._cluster BUDGET`` (the memory budget in bytes the workers share, or
``auto``): it starts a ``distributed.LocalCluster`` sized to the machine, writes the scheduler's
address as its first line, then runs until its standard input closes, which happens when
gradcli is done with it or ends, however it ends (even killed: then the kernel closes the
pipe). Then it stops the workers and ends. So the gradcli process holds no scheduler, and the
scheduler's copy of the graph, and what it imports to read one, are this process's.
"""

from __future__ import annotations

import logging
import signal
import sys
import warnings

from gradcli.failures import one_line


def main(argv: list[str]) -> int:
    # Ctrl-C reaches every process of the terminal's group: gradcli handles it, and closes our
    # standard input when it ends.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    budget = argv[0] if argv else "auto"
    import distributed
    from distributed.deploy.utils import nprocesses_nthreads

    # Its stderr is a file gradcli reads only for why it could not start: distributed's reports
    # of its steps and its warnings stay out of it, the workers' too (silence_logs).
    logging.getLogger("distributed").setLevel(logging.CRITICAL)
    warnings.simplefilter("ignore")
    workers, threads = nprocesses_nthreads()
    memory = "auto" if budget == "auto" else max(int(budget) // workers, 1 << 28)
    try:
        cluster = distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=threads,
            memory_limit=memory,
            dashboard_address=None,
            # No dashboard; its HTTP server (health checks) on a free port, not on 8787, which
            # another cluster on this machine may hold.
            scheduler_kwargs={"dashboard": False, "dashboard_address": ":0"},
            silence_logs=logging.CRITICAL,
        )
    except Exception as exc:  # distributed's ways to fail to start have no common base
        print(f"error: {one_line(exc) or type(exc).__name__}", flush=True)
        return 1
    try:
        print(cluster.scheduler_address, flush=True)
        sys.stdin.read()  # until gradcli closes it, or ends
    except (OSError, KeyboardInterrupt):
        pass
    finally:
        cluster.close()
    return 0


# Guarded: the workers' processes start by importing the main module of the process that made them.
if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
