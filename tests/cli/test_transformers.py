"""A ViT end to end on real images, with a user's weights file: `neurflow build`, `neurflow-ingest --from`,
`neurflow mask` and `neurflow fidelity` unchanged, against the real Neo4j.

One build (a ViT-B/16 forward over the 59 patches is most of the time): two layers below the head, one image,
tau 3, k 6, N 4. The random ViT head and `--random-weights` are covered by tests/engine/test_layouts.py and
tests/engine/test_models.py; `neurflow-ingest` building a circuit by tests/ingest.
"""

from __future__ import annotations

import json
from pathlib import Path

import neo4j
import pytest
import torch
from click.testing import CliRunner, Result

from neurflow.cli.main import main
from neurflow.engine.models import load_model
from neurflow.format import find_circuits, load_circuit
from neurflow.graph.connection import ConnectionSettings
from neurflow.graph.deletion import clear_graph
from neurflow.ingest.cli import main as ingest_main

pytestmark = [pytest.mark.neo4j, pytest.mark.slow]

SAMOYED = "n02111889"
LAYERS = "heads,encoder.layers.encoder_layer_11,encoder.layers.encoder_layer_10"
SMALL = ["--classes", "Samoyed", "--label-source", "folder", "--max-images", "1", "--layers", LAYERS, "--tau", "3",
         "--k", "6", "--steps", "4", "--device", "cpu", "--no-progress"]


def connection(settings: ConnectionSettings) -> dict[str, str]:
    return {"NEO4J_URI": settings.uri, "NEO4J_USER": settings.user, "NEO4J_PASSWORD": settings.password or "",
            "NEO4J_DATABASE": settings.database}


def succeeded(result: Result) -> Result:
    assert "Traceback" not in result.output, result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return result


def layer_nodes(driver: neo4j.Driver, database: str) -> dict[str, tuple[str, int]]:
    records, _, _ = driver.execute_query(
        "MATCH (:Model {name: 'vit_b_16'})-[:HAS_LAYER]->(l:Layer) "
        "OPTIONAL MATCH (l)-[:HAS_NEURON]->(n:Neuron) RETURN l.name AS name, l.layout AS layout, count(n) AS neurons",
        database_=database,
    )
    return {r["name"]: (r["layout"], r["neurons"]) for r in records}


def test_a_vit_builds_ingests_and_runs_mask_and_fidelity(neo4j_driver: neo4j.Driver,
                                                        neo4j_settings: ConnectionSettings,
                                                        shared_images: Path, tmp_path: Path) -> None:
    clear_graph(neo4j_driver, neo4j_settings.database)
    env = connection(neo4j_settings)
    # An image folder of three Samoyeds (labelled by their wnid folder), so that only they are predicted.
    folder_of_three = tmp_path / "images" / SAMOYED
    folder_of_three.mkdir(parents=True)
    for source in sorted((shared_images / SAMOYED).iterdir())[:3]:
        (folder_of_three / source.name).symlink_to(source)
    images = str(folder_of_three.parent)
    # A user's weights file (random ViT weights saved as a state dict).
    weights = tmp_path / "vit.pth"
    torch.save(load_model("vit_b_16", random_weights=True, seed=7, device="cpu").module.state_dict(), weights)
    built = tmp_path / "built"
    result = succeeded(CliRunner().invoke(main, ["build", "-m", "vit_b_16", "--weights", str(weights), "--images",
                                                 images, "--out", str(built), *SMALL]))
    [folder] = find_circuits(built)
    circuit = load_circuit(folder)
    assert circuit.model.weights_id.startswith("sha256:")
    assert circuit.layouts == {"heads": "channels-first", "encoder.layers.encoder_layer_11": "tokens",
                               "encoder.layers.encoder_layer_10": "tokens"}
    # Neurons of the blocks are hidden units: indices below 768, not token positions (< 197 would not tell).
    hidden = [n.channel for layer in LAYERS.split(",")[1:] for n in circuit.neurons[layer]]
    assert hidden and max(hidden) < 768 and len(circuit.neurons[LAYERS.split(",")[1]]) <= 3
    assert sum(len(g.patches) for g in circuit.semantic_groups if g.layer == "heads") == 6
    assert (folder / "circuit.png").is_file(), result.output

    succeeded(CliRunner().invoke(ingest_main, ["--from", str(built), "--no-progress"], env=env))
    layers = layer_nodes(neo4j_driver, neo4j_settings.database)
    assert {name: layout for name, (layout, _) in layers.items()} == circuit.layouts
    assert layers["encoder.layers.encoder_layer_10"][1] == len(circuit.neurons["encoder.layers.encoder_layer_10"])

    group = circuit.groups_of_layer("encoder.layers.encoder_layer_11")[0]
    conn = ["--uri", neo4j_settings.uri, "--user", neo4j_settings.user, "--database", neo4j_settings.database,
            *(["--password", neo4j_settings.password] if neo4j_settings.password else [])]
    model = ["-m", "vit_b_16", "--weights", str(weights), "--device", "cpu", "--no-progress"]
    masked = succeeded(CliRunner().invoke(main, ["mask", *model, "-c", "Samoyed", "-g", group.id, "--random-draws",
                                                 "1", "--patch-images", "0", "--json", *conn]))
    data = json.loads(masked.stdout)
    assert data["circuit_id"] == circuit.id
    assert data["channels"] == {group.layer: sorted(int(n.rpartition(":")[2]) for n in group.neurons)}
    assert data["effect"]["images"] == 1
    fidelity = succeeded(CliRunner().invoke(main, ["fidelity", *model, "-c", "Samoyed", "--random-draws", "1",
                                                   "--out", str(tmp_path / "fidelity"), "--json", *conn]))
    rows = json.loads(fidelity.stdout)["rows"]
    assert {row["layer"] for row in rows} == set(LAYERS.split(",")[1:])
    assert Path(json.loads(fidelity.stdout)["png"]).read_bytes()[:4] == b"\x89PNG"
