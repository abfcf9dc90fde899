"""Meaning on the real model and images: class-similarity ranks related breeds first (docs/cross-class.md).

Six Imagewoof breeds built with the pretrained EfficientNet-Lite0 (reduced settings, about two minutes on two
CPU cores): the two terriers and two hounds must each find the other of their pair the most similar class by
the weighted Jaccard of neuron influence, while the plain Jaccard of the core sets (the old measure) does not
tell them apart as well.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import neo4j

from neurflow.engine.plans import build_circuits
from neurflow.format import load_circuit
from neurflow.graph.ingestion import write_circuit
from neurflow.graph.named_queries import run_query
from tests.circuit_fixtures import small_config

PAIRS = (("Australian terrier", "Border terrier"), ("beagle", "English foxhound"))  # same WordNet breed group
OTHERS = ("Samoyed", "golden retriever")


def _auc(related: list[float], unrelated: list[float]) -> float:
    return sum((r > u) + 0.5 * (r == u) for r in related for u in unrelated) / (len(related) * len(unrelated))


def test_related_breeds_are_the_most_similar(clean_graph: neo4j.Driver, neo4j_settings, shared_images: Path,
                                            tmp_path: Path) -> None:
    classes = [name for pair in PAIRS for name in pair] + list(OTHERS)
    folders = build_circuits(small_config(), classes, shared_images, tmp_path, echo=lambda _: None, progress=False)
    circuits = [load_circuit(f) for f in folders]
    for circuit, folder in zip(circuits, folders, strict=True):
        write_circuit(clean_graph, circuit, folder, database=neo4j_settings.database)
    similarity: dict[tuple[str, str], dict[str, float]] = {}
    for circuit in circuits:
        rows = run_query(clean_graph, "class-similarity", {"class": circuit.target.name},
                         neo4j_settings.database)[1]
        assert len(rows) == len(classes) - 1 and all(r["comparable"] for r in rows)
        for row in rows:
            similarity[circuit.target.name, row["class"]] = row
        mate = next((b if a == circuit.target.name else a for a, b in PAIRS if circuit.target.name in (a, b)), None)
        if mate is not None:
            assert rows[0]["class"] == mate, (circuit.target.name, [(r["class"], r["weightedJaccard"]) for r in rows])

    def auc(measure: str) -> float:
        related, unrelated = [], []
        for a, b in itertools.combinations(classes, 2):
            value = (similarity[a, b][measure] + similarity[b, a][measure]) / 2
            (related if (a, b) in PAIRS else unrelated).append(value)
        return _auc(related, unrelated)

    assert auc("weightedJaccard") == 1.0
    assert auc("weightedJaccard") > auc("jaccard")
