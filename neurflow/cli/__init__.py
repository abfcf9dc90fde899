"""The ``neurflow`` command line: thin click commands that parse arguments, call the library, and print.

Library errors become one clear line and a non-zero exit in one place (``neurflow.cli.errors``). Nothing in the
library imports this package (checked by import-linter, see pyproject.toml).
"""
