"""Influence and family totals in the graph: what the writer stores against neurflow.analysis, and the totals
(specificity's denominator) kept right when circuits of a family are written and deleted."""

from __future__ import annotations

import neo4j
import pytest

from neurflow.analysis import circuit_influence
from neurflow.graph.deletion import delete_circuit
from neurflow.graph.ingestion import write_circuit
from neurflow.graph.rows import graph_neuron_key
from tests.helpers import small_synthetic

TOTALS = """
MATCH (f:CircuitFamily {key: $family})-[t:FAMILY_INFLUENCE]->(n:Neuron)
RETURN n.key AS neuron, t.influence AS influence, t.classes AS classes
"""
CORE = """
MATCH (:Circuit {id: $id})-[r:HAS_CORE_NEURON]->(n:Neuron)
RETURN n.key AS neuron, r.influence AS influence, r.influenceBefore AS before
"""


def _totals(driver: neo4j.Driver, db: str, family: str) -> dict[str, tuple[float, int]]:
    rows, _, _ = driver.execute_query(TOTALS, family=family, database_=db)
    return {r["neuron"]: (r["influence"], r["classes"]) for r in rows}


def test_family_totals_follow_writes_and_deletions(clean_graph: neo4j.Driver, neo4j_settings) -> None:
    db = neo4j_settings.database
    circuits = [small_synthetic(i) for i in (258, 207, 259)]
    other = small_synthetic(258, seed=1)  # another family: never counted with the three
    for circuit in [*circuits, other]:
        write_circuit(clean_graph, circuit, database=db)
    family = circuits[0].family_key
    assert {c.family_key for c in circuits} == {family} and other.family_key != family

    def expected(members: list) -> dict[str, tuple[float, int]]:
        sums: dict[str, list[float]] = {}
        for c in members:
            for key, value in circuit_influence(c).neurons.items():
                sums.setdefault(graph_neuron_key(c.model.key, key), []).append(value)
        return {k: (sum(v), len(v)) for k, v in sums.items()}

    got = _totals(clean_graph, db, family)
    want = expected(circuits)
    assert got.keys() == want.keys()
    for key, (total, classes) in want.items():
        assert got[key][0] == pytest.approx(total) and got[key][1] == classes
    # stored influence is the analysis module's, and specificity (influence / total) is at most 1
    rows, _, _ = clean_graph.execute_query(CORE, id=circuits[1].id, database_=db)
    mine = circuit_influence(circuits[1]).neurons
    for r in rows:
        assert r["influence"] == pytest.approx(mine[r["neuron"].split("|", 1)[1]])
        assert 0 < r["influence"] / got[r["neuron"]][0] <= 1 + 1e-9
    delete_circuit(clean_graph, circuits[1].id, db)
    got = _totals(clean_graph, db, family)
    want = expected([circuits[0], circuits[2]])
    assert got.keys() == want.keys()  # neurons only the deleted circuit used lose their total
    for key, (total, classes) in want.items():
        assert got[key][0] == pytest.approx(total) and got[key][1] == classes
