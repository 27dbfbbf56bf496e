"""The ``gradcli`` console script: Ctrl-C while the program is still starting (importing NumPy
and click takes a moment) ends like Ctrl-C later on, with status 130 and no traceback."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from .cli import main as cli
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    cli(prog_name="gradcli")
