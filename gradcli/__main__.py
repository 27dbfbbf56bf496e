"""``python -m gradcli`` is the ``gradcli`` command."""

from ._entry import main

main()
