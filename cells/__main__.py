"""``python -m cells`` runs the ``cellctl`` command line."""

from cells.cli import main

main()
