"""A circuit built by this neurflow is byte-identical to one built before the package was reorganised.

The pin was taken with the flat layout (commit dfe2d63) from the same images and settings: the canonical
``circuit.json`` (timings, creation time and the images' folder removed: they differ from run to run or from
checkout to checkout) is stored in tests/data/pinned/, and the digest also covers every array of
``vectors.npz`` (dtype, shape and bytes). One CPU thread, so that float sums run in one order.

The pin predates the group-space setting, so it is built with ``group_space="core"``, the spaces it was
built with; ``core`` is not recorded in ``params``, which keeps the pinned file and its circuit id unchanged.
It also predates circuit format 1.1, whose id includes the image set: the comparison reads the new file in
format 1.0's terms (its version and its id without the images), and checks the 1.1 id on its own.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from neurflow.circuit import circuit_id
from neurflow.engine.builder import build_circuits
from neurflow.engine.config import BuildConfig
from neurflow.format import load_circuit
from tests.circuit_fixtures import SMALL_IMAGES

PINNED = Path(__file__).parent / "data" / "pinned" / "samoyed-circuit.json"
PINNED_DIGEST = "4d45cd080e1cfcdc756dcd7115c6040bd94e53692c8a3c8210bad54d5d770823"


def canonical_circuit(folder: Path, images: Path) -> bytes:
    """The file as the pin has it: without what varies, in format 1.0 (the same fields; the id without the
    images)."""
    circuit = load_circuit(folder)
    data = json.loads((folder / "circuit.json").read_text())
    assert data["formatVersion"] == "1.1" and data["id"] == circuit.id
    data["formatVersion"] = "1.0"
    data["id"] = circuit_id(circuit.model, circuit.target, circuit.params)
    data.pop("timings")
    data.pop("created")
    for image in data["images"]:
        image["path"] = str(Path(image["path"]).relative_to(images.resolve()))
    return json.dumps(data, indent=1).encode()


def circuit_digest(folder: Path, images: Path) -> str:
    digest = hashlib.sha256(canonical_circuit(folder, images))
    with np.load(folder / "vectors.npz") as vectors:
        for key in sorted(vectors.files):
            array = vectors[key]
            for part in (key, str(array.dtype), str(array.shape)):
                digest.update(part.encode())
            digest.update(array.tobytes())
    return digest.hexdigest()


@pytest.mark.slow
def test_a_circuit_is_byte_identical_to_the_pinned_one(tmp_path: Path) -> None:
    config = BuildConfig(model="efficientnet-lite0", layers=["_fc", "_blocks.15", "_blocks.14"], tau=4, k=8,
                         steps=4, max_images=2, max_neuron_groups=3, group_space="core", device="cpu")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        [folder] = build_circuits(config, ["Samoyed"], SMALL_IMAGES, tmp_path, echo=lambda _: None,
                                  progress=False)
    finally:
        torch.set_num_threads(threads)
    assert canonical_circuit(folder, SMALL_IMAGES) == PINNED.read_bytes()
    assert circuit_digest(folder, SMALL_IMAGES) == PINNED_DIGEST
