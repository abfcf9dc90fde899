"""The on-disk format round-trips exactly, and equal inputs give equal circuits."""

from __future__ import annotations

import hashlib
import json
import stat
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from neurflow.circuit import FORMAT_VERSION, ImageRecord, semantic_group_weight_sums
from neurflow.engine.plans import build_circuits
from neurflow.format import (
    FormatError,
    circuit_from_dict,
    circuit_to_dict,
    load_circuit,
    load_vectors,
    save_circuit,
    strict_json,
)
from neurflow.synthetic import synthetic_circuit
from tests.circuit_fixtures import SMALL_IMAGES, small_config


def test_round_trip_is_exact(real_circuit_dirs: list[Path], tmp_path: Path) -> None:
    circuit = load_circuit(real_circuit_dirs[0])
    vectors = load_vectors(real_circuit_dirs[0])
    copy = save_circuit(circuit, tmp_path / "copy", vectors)
    assert load_circuit(copy) == circuit
    again = load_vectors(copy)
    assert set(again) == set(vectors)
    assert all(np.array_equal(again[k], vectors[k]) for k in vectors)
    assert (tmp_path / "copy" / "circuit.json").read_bytes() == (real_circuit_dirs[0] / "circuit.json").read_bytes()


def test_format_records_provenance_and_parameters(real_circuit_dirs: list[Path]) -> None:
    data = json.loads((real_circuit_dirs[0] / "circuit.json").read_text())
    assert data["formatVersion"] == FORMAT_VERSION
    assert data["model"]["name"] == "efficientnet-lite0" and data["model"]["weights_id"].startswith("sha256:")
    assert {"tau", "k", "steps", "quadrature", "seed", "ranking"} <= set(data["params"])
    patch = data["patches"][0]
    image = data["images"][patch["image"]]
    assert len(image["sha256"]) == 64 and Path(image["path"]).exists()
    assert patch["scale"] == 1.0 and len(patch["box"]) == 4
    used = {p for g in data["semantic_groups"] for p in g["patches"]}
    assert all((real_circuit_dirs[0] / "thumbnails" / f"{p}.jpg").exists() for p in used)


def test_unknown_major_version_is_refused(real_circuit_dirs: list[Path], tmp_path: Path) -> None:
    data = json.loads((real_circuit_dirs[0] / "circuit.json").read_text())
    data["formatVersion"] = "2.0"
    (tmp_path / "circuit.json").write_text(json.dumps(data))
    with pytest.raises(FormatError, match="'2.0'"):
        load_circuit(tmp_path)


def test_same_inputs_and_seed_give_the_same_circuit(real_circuit_dirs: list[Path], tmp_path: Path) -> None:
    rebuilt = load_circuit(
        build_circuits(small_config(), ["Samoyed"], SMALL_IMAGES, tmp_path, echo=lambda _: None, progress=False)[0]
    )
    original = load_circuit(real_circuit_dirs[0])
    assert replace(rebuilt, timings={}, created="") == replace(original, timings={}, created="")
    assert rebuilt.id == original.id


def test_weights_of_every_semantic_group_sum_to_one(real_circuit_dirs: list[Path]) -> None:
    for folder in real_circuit_dirs:
        circuit = load_circuit(folder)
        sums = semantic_group_weight_sums(circuit)
        upper_groups = [g for g in circuit.semantic_groups if g.layer != circuit.layers[-1]]
        assert sums and set(sums) == {g.key for g in upper_groups}
        assert all(abs(total - 1.0) < 1e-9 for total in sums.values())


def _identity_hash(data: dict, images: list[str] | None) -> str:
    """The circuit id as docs/format.md defines it, computed here from the file's fields."""
    identity = {"model": data["model"]["name"], "weights": data["model"]["weights_id"],
                "class": data["target"]["index"], "params": data["params"]}
    if images is not None:
        identity["images"] = hashlib.sha256("\n".join(sorted(set(images))).encode()).hexdigest()
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def test_the_circuit_id_includes_the_image_set() -> None:
    circuit = synthetic_circuit(258)
    data = circuit_to_dict(circuit)
    shas = [im["sha256"] for im in data["images"]]
    assert data["id"] == circuit.id == _identity_hash(data, shas)
    reordered = replace(circuit, images=list(reversed(circuit.images)))
    assert reordered.id == circuit.id  # D_c is a set
    other = replace(circuit, images=[replace(circuit.images[0], sha256="0" * 64), *circuit.images[1:]])
    assert other.id != circuit.id  # a rebuild from other images is another circuit


def test_a_format_1_0_circuit_keeps_its_id_without_the_images() -> None:
    data = circuit_to_dict(synthetic_circuit(258))
    data["formatVersion"] = "1.0"
    data["id"] = _identity_hash(data, None)
    old = circuit_from_dict(data)
    assert old.format_version == "1.0" and old.id == data["id"]
    assert circuit_to_dict(old)["id"] == data["id"]
    assert isinstance(old.images[0], ImageRecord)


def test_results_are_written_as_strict_json() -> None:
    """NaN and infinities (a study's undefined figure) become null: every JSON reader accepts the text."""
    text = strict_json({"r": float("nan"), "inf": float("-inf"), "v": np.float32(0.25), "t": (1, np.int64(2)),
                        "a": np.array([1.5, np.nan])})
    assert json.loads(text) == {"r": None, "inf": None, "v": 0.25, "t": [1, 2], "a": [1.5, None]}
    assert "NaN" not in text and "Infinity" not in text


def test_every_file_of_a_circuit_folder_gets_the_same_permissions(tmp_path: Path) -> None:
    # circuit.json and vectors.npz are written through private temporary files; they must not stay private
    # while the thumbnails and pictures beside them follow the umask.
    circuit = synthetic_circuit(258)
    folder = save_circuit(circuit, tmp_path / "c", {"_fc": np.zeros((2, 3))})
    (tmp_path / "plain").write_text("x")
    expected = stat.S_IMODE((tmp_path / "plain").stat().st_mode)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.rglob("*") if p.is_file()}
    assert modes and set(modes.values()) == {expected}, modes
