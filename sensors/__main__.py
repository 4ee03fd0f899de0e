"""``python -m sensors`` is the ``hookbus`` command."""

from sensors.cli import main

main(prog_name="hookbus")
