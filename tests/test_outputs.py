"""neurflow.outputs: one rule for where commands write, checked before any work."""

from __future__ import annotations

from pathlib import Path

import pytest

from neurflow.outputs import OutputFolderError, check_output_folder, default_output, writable_folder


def test_outputs_go_to_out_or_under_runs() -> None:
    assert default_output("mine", "validation", "crops-x") == Path("mine")
    assert default_output(None, "validation", "crops-x") == Path("runs/validation/crops-x")
    assert default_output(None, "fidelity") == Path("runs/fidelity")


def test_an_output_folder_is_checked_before_any_work(tmp_path: Path) -> None:
    assert writable_folder(tmp_path / "a" / "b").is_dir()
    (tmp_path / "file").write_text("keep me")
    with pytest.raises(OutputFolderError, match="is a file, not a folder; pass --out"):
        writable_folder(tmp_path / "file" / "circuits", "circuits")
    assert (tmp_path / "file").read_text() == "keep me"



def test_a_checked_output_folder_is_not_made_until_written(tmp_path: Path) -> None:
    assert check_output_folder(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert not (tmp_path / "a").exists()  # a run that fails later leaves nothing behind
    (tmp_path / "file").write_text("keep me")
    with pytest.raises(OutputFolderError, match="is a file, not a folder"):
        check_output_folder(tmp_path / "file" / "deeper" / "out")
