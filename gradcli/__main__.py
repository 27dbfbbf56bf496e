"""``python -m gradcli`` is the ``gradcli`` command."""

from ._entry import main

# Guarded: Dask's worker processes start by importing the main module of the process that made them.
if __name__ == "__main__":
    main()
