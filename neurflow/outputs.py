"""Where commands write what they make, by one rule: ``--out`` when given, else ``runs/<command>/...`` under the
current folder (never loose files in it), checked writable before any work (and made only when written).

>>> from neurflow.outputs import default_output
>>> str(default_output(None, "validation", "crops-abc"))
'runs/validation/crops-abc'

Imports nothing of torch.
"""

from __future__ import annotations

import os
from pathlib import Path

from neurflow.errors import NeurflowError

RUNS = Path("runs")
"""Every default output lies under this folder of the current folder."""


class OutputFolderError(NeurflowError, ValueError):
    """An output folder cannot be made or written (a file in its way, no permission)."""


def default_output(out: str | Path | None, command: str, *names: str) -> Path:
    """``out`` when given, else ``runs/<command>/<names...>``."""
    return Path(out) if out else RUNS.joinpath(command, *names)


def check_output_folder(folder: str | Path, what: str = "results") -> Path:
    """``folder`` when it can be written or made, checked before any work and left as it is (not made: a run
    that fails later leaves nothing behind); an OutputFolderError otherwise."""
    path = Path(folder)
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise OutputFolderError(f"cannot write {what} to {path}: {existing} is a file, not a folder; pass --out "
                                "with a folder")
    if not os.access(existing, os.W_OK):
        raise OutputFolderError(f"cannot write {what} to {path}: permission denied; pass --out with a folder you "
                                "can write")
    return path


def writable_folder(folder: str | Path, what: str = "results") -> Path:
    """``folder``, created if needed; an OutputFolderError before any work when it cannot be."""
    path = Path(folder)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as error:
        raise OutputFolderError(f"cannot write {what} to {path}: {error.filename or path} is a file, not a folder; "
                                "pass --out with a folder") from error
    except PermissionError as error:
        raise OutputFolderError(f"cannot write {what} to {path}: permission denied; pass --out with a folder "
                                "you can write") from error
    if not os.access(path, os.W_OK):
        raise OutputFolderError(f"cannot write {what} to {path}: permission denied; pass --out with a folder you "
                                "can write")
    return path
