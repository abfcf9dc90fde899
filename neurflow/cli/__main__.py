"""``python -m neurflow.cli``."""

from neurflow.cli.main import main

main()
