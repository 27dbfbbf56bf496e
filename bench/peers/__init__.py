"""One module per implementation of the benchmark's workloads, run one per process by worker.py.

Each module defines the functions of the workloads it can do (``chain``, ``arrays``, ``hessian``;
gradcli's also ``parse`` and ``phases``); ``cold_start/`` holds each peer's shortest script for
the answer of workload 1. Modules import their library at the top, so importing one proves the
peer is installed, and a process never pays for a peer it does not measure.
"""
