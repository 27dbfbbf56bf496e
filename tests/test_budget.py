"""The memory budget (``--max-memory``, $GRADCLI_MAX_MEMORY): sizes as people write them, the
kernel limit it sets and puts back, and what a user reads when work goes over it.

Anything that could really use memory runs in a child process that this test limits itself
(``RLIMIT_DATA`` in ``preexec_fn``) on top of the budget under test, so a regression fails the test
instead of taking the machine's memory.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from test_reliability import assert_one_error_line, child_env

from gradcli import budget

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_DATA and /proc are Linux's")
GIB = 1 << 30
# The child's own ceiling, whatever the budget under test says: a broken budget fails, never swaps.
SAFETY = 3 * GIB


def _safety_net() -> None:
    resource.setrlimit(resource.RLIMIT_DATA, (SAFETY, SAFETY))


def gradcli(*args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gradcli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=child_env(**{"OPENBLAS_NUM_THREADS": "1", **env}),
        preexec_fn=_safety_net,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("4G", 4 * GIB),
        ("4g", 4 * GIB),
        ("512M", 512 << 20),
        ("1.5GiB", 3 * GIB // 2),
        ("64kb", 64 << 10),
        ("100000", 100_000),
        (" 2 T ", 2 << 40),
        ("unlimited", None),
        ("none", None),
    ],
)
def test_sizes_are_read_as_ulimit_and_sort_write_them(text: str, size: int | None) -> None:
    assert budget.parse_size(text) == size


def test_a_percentage_is_a_share_of_the_physical_memory() -> None:
    memory = budget.physical_memory()
    assert memory is not None and memory > 0
    assert budget.parse_size("25%") == memory // 4
    assert budget.parse_size(budget.DEFAULT) == memory // 2


@pytest.mark.parametrize("text", ["", "4X", "-1G", "G", "1e9", "four gigabytes", "%"])
def test_a_size_that_is_not_one_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="expected a size like 4G"):
        budget.parse_size(text)


@pytest.mark.parametrize(
    ("n", "text"), [(4 * GIB, "4G"), (768 << 20, "768M"), (3 * GIB // 2, "1.5G"), (5, "5B")]
)
def test_sizes_are_shown_the_way_they_are_written(n: int, text: str) -> None:
    assert budget.format_size(n) == text
    assert budget.parse_size(text) == n


@linux_only
def test_apply_lowers_the_data_limit_and_gives_back_what_puts_it_back() -> None:
    before = resource.getrlimit(resource.RLIMIT_DATA)
    wanted = 1 << 46  # 64 TiB: lower than no limit, above anything this process holds
    if before[0] != resource.RLIM_INFINITY and before[0] <= wanted:
        pytest.skip("a lower data limit is already in force")
    restore = budget.apply(wanted)
    try:
        assert resource.getrlimit(resource.RLIMIT_DATA) == (wanted, before[1])
        assert budget.limit() == wanted
        left = budget.room()
        assert left is not None and 0 < left < wanted
    finally:
        restore()
    assert resource.getrlimit(resource.RLIMIT_DATA) == before


def test_no_budget_changes_nothing() -> None:
    before = resource.getrlimit(resource.RLIMIT_DATA)
    budget.apply(None)()
    assert resource.getrlimit(resource.RLIMIT_DATA) == before


@linux_only
def test_a_child_gets_the_room_left_in_the_budget() -> None:
    code = "import resource; print(resource.getrlimit(resource.RLIMIT_DATA)[0])"
    restore = budget.apply(1 << 46)
    try:
        left = budget.room()
        preexec = budget.child_preexec()
        assert preexec is not None and left is not None
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, preexec_fn=preexec)
    finally:
        restore()
    assert 0 < int(out.stdout) <= left


def test_loading_gives_the_limit_from_before_the_budget_and_takes_it_back() -> None:
    before = resource.getrlimit(resource.RLIMIT_DATA)
    wanted = 1 << 46
    if before[0] != resource.RLIM_INFINITY and before[0] <= wanted:
        pytest.skip("a lower data limit is already in force")
    with budget.loading():  # no budget: nothing changes
        assert resource.getrlimit(resource.RLIMIT_DATA) == before
    restore = budget.apply(wanted)
    try:
        with budget.loading():
            assert resource.getrlimit(resource.RLIMIT_DATA) == before
        assert resource.getrlimit(resource.RLIMIT_DATA) == (wanted, before[1])
        with pytest.raises(KeyError), budget.loading():
            raise KeyError("a failed import")
        assert resource.getrlimit(resource.RLIMIT_DATA) == (wanted, before[1])
    finally:
        restore()
    with budget.loading():  # put back: nothing to lift any more
        assert resource.getrlimit(resource.RLIMIT_DATA) == before


# -- through the command line ------------------------------------------------------------------

# What loads SciPy's OpenBLAS, whose threads (several: the hang needed more than one) retried
# their allocations for ever under a budget too tight for them.
SCIPY_USERS = [("eval", "erf(x)", "--x", "1"), ("minimize", "x**2", "--x", "1")]


@linux_only
@pytest.mark.slow
@pytest.mark.parametrize("command", SCIPY_USERS, ids=lambda c: c[0])
@pytest.mark.parametrize("size", ["20M", "150M"])
def test_a_budget_too_small_for_the_libraries_is_one_line_not_a_hang(
    command: tuple[str, ...], size: str
) -> None:
    proc = gradcli("--max-memory", size, *command, OPENBLAS_NUM_THREADS="4")
    if proc.returncode == 0:  # the libraries fit (a machine with a smaller OpenBLAS)
        assert size == "150M" and proc.stdout.startswith(("value", "point")), proc.stdout
        return
    message = assert_one_error_line(proc, 2)
    assert message.startswith(f"error: the memory budget (--max-memory {size}) is less than gradcli takes")
    assert message.endswith("raise --max-memory")


@linux_only
@pytest.mark.slow
@pytest.mark.parametrize("size", ["110M", "120M", "135M", "150M"])
def test_a_matrix_product_or_a_plot_under_a_tight_budget_is_gradclis_answer_or_its_one_line(
    tmp_path: Path, size: str
) -> None:
    """OpenBLAS takes a buffer for each thread at its first product big enough to share, and
    where the budget left no room for one, it ended the process itself: status 1 and
    "OpenBLAS error: Memory allocation still failed after 10 retries, giving up.", for
    ``A @ A`` or a plot under --max-memory 120M."""
    np.save(tmp_path / "a.npy", np.eye(300))
    threads = {"OPENBLAS_NUM_THREADS": "4"}
    product = gradcli(
        "--max-memory", size, "eval", "sum(A @ A)", "--A", f"@{tmp_path / 'a.npy'}", "--json", **threads
    )
    plot = gradcli(
        "--max-memory", size, "plot", "x**2", "--x", "-1:1", "-o", str(tmp_path / "p.png"), **threads
    )
    for proc in (product, plot):
        assert "OpenBLAS" not in proc.stderr
        if proc.returncode:
            message = assert_one_error_line(proc, proc.returncode)
            assert message.endswith("raise --max-memory") and proc.returncode in (1, 2)
    if product.returncode == 0:
        assert json.loads(product.stdout)["value"] == 300.0


@linux_only
@pytest.mark.slow
def test_a_budget_too_small_ends_a_batch_at_once(tmp_path: Path) -> None:
    lines = tmp_path / "points.ndjson"
    lines.write_text('{"x": 1}\n{"x": 2}\n')
    proc = gradcli("--max-memory", "20M", "eval", "erf(x)", "--batch", str(lines))
    assert proc.stdout == ""  # no line answered, none answered without the budget
    assert "is less than gradcli takes to start" in assert_one_error_line(proc, 2)


OUTER = "sum(reshape(x, shape=[-1, 1]) * reshape(x, shape=[1, -1]))"


@pytest.fixture(scope="module")
def x40k(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("budget") / "x40k.npy"
    np.save(path, np.arange(40_000.0))  # its outer product is 12.8 GB
    return path


@linux_only
@pytest.mark.slow
@pytest.mark.parametrize("how", ["option", "environment"])
def test_work_past_the_budget_is_out_of_memory_exit_1(x40k: Path, how: str) -> None:
    if how == "option":
        proc = gradcli("--max-memory", "1G", "eval", OUTER, "--x", f"@{x40k}")
    else:
        proc = gradcli("eval", OUTER, "--x", f"@{x40k}", GRADCLI_MAX_MEMORY="1G")
    message = assert_one_error_line(proc, 1)
    assert message == (
        "error: out of memory: the inputs or the expression need more than the memory budget "
        "(--max-memory 1G): give smaller inputs, or raise --max-memory"
    )


@linux_only
@pytest.mark.slow
def test_a_lower_limit_set_by_the_user_stays(x40k: Path) -> None:
    proc = gradcli("--max-memory", "unlimited", "eval", OUTER, "--x", f"@{x40k}")
    assert "(--max-memory 3G)" in assert_one_error_line(proc, 1)  # SAFETY, set before gradcli started


@pytest.mark.parametrize("text", ["999999999999999999999G", "9" * 400, "8192P", "16384P"])
def test_a_size_past_what_the_kernel_takes_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is more than any machine has"):
        budget.parse_size(text)


@pytest.mark.parametrize("value", ["lots", "0", "-5G", "999999999999999999999G"])
def test_a_budget_that_is_not_a_size_is_a_usage_error(value: str) -> None:
    from conftest import invoke

    rc, _, err = invoke("--max-memory", value, "eval", "x", "--x", "1")
    assert rc == 2 and "--max-memory" in err


def _npz_declaring(path: Path, shape: tuple[int, ...]) -> None:
    """A .npz whose member's header declares ``shape`` but holds 8 bytes: what a zip bomb makes
    NumPy allocate (and inflate) before it reads a byte of data."""
    header = f"{{'descr': '<f8', 'fortran_order': False, 'shape': {shape!r}, }}"
    header += " " * (-(len(header) + 11) % 64) + "\n"
    body = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + bytes(8)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("x.npy", body)


@linux_only
@pytest.mark.slow
@pytest.mark.parametrize("how", ["--x", "--vars"])
def test_a_npz_member_over_the_budget_is_refused_before_it_is_inflated(tmp_path: Path, how: str) -> None:
    path = tmp_path / "bomb.npz"
    _npz_declaring(path, (500_000_000,))  # 4 GB declared, in a file of 300 bytes
    assert path.stat().st_size < 1000
    args = ["--x", f"@{path}"] if how == "--x" else ["--vars", f"@{path}"]
    proc = gradcli("--max-memory", "1G", "eval", "sum(x)", *args)
    message = assert_one_error_line(proc, 2)
    assert "the array of shape (500000000,) needs 3.73G, more than the" in message
    assert "left in the memory budget: raise --max-memory" in message


@linux_only
@pytest.mark.slow
def test_stdin_without_end_is_read_no_further_than_its_cap() -> None:
    with open("/dev/zero", "rb") as zero:
        proc = subprocess.run(
            [sys.executable, "-m", "gradcli", "--max-memory", "512M", "eval", "x", "--vars", "-"],
            stdin=zero,
            capture_output=True,
            env=child_env(OPENBLAS_NUM_THREADS="1"),
            preexec_fn=_safety_net,
            timeout=120,
        )
    err = proc.stderr.decode()
    assert proc.returncode == 2, err
    assert (
        err.startswith("error: --vars from stdin: more than ") and "of text, 1/32 of the memory budget" in err
    )
