"""A commit whose answer never comes back: the server commits a batch, the connection drops before the client
hears it (the driver raises IncompleteCommit and does not retry). The writer sends the batch again; since every
batch merges, the graph ends up as after a clean ingestion (tests/helpers.py computes those counts)."""

from __future__ import annotations

import threading

import neo4j
import pytest

from neurflow.graph.connection import ConnectionSettings, open_driver
from neurflow.graph.ingestion import write_circuit
from neurflow.graph.reads import graph_counts
from tests.faults.proxy import BoltProxy
from tests.helpers import expected_counts, small_synthetic

#: A Bolt COMMIT message alone in its chunk: size 2, struct of 0 fields (B0) with signature 12, end marker.
COMMIT = b"\x00\x02\xb0\x12\x00\x00"


class LostAnswerProxy(BoltProxy):
    """Forwards the ``nth`` COMMIT from now on to the server, swallows the server's answer and then drops every
    connection (new ones are accepted again at once, as after a network blip)."""

    def __init__(self, port: int):
        super().__init__(port)
        self.swallow = threading.Event()
        self.lost = 0

    def lose_answer_of_commit(self, nth: int) -> None:
        seen = [0]

        def trigger(data: bytes, _total: int, _messages: int) -> bool:
            seen[0] += COMMIT in data
            if seen[0] == nth:
                self.swallow.set()  # forwarded (False), but its answer is dropped
            return False

        self._arm(trigger)

    def _pass_answer(self, data: bytes) -> bool:
        if not self.swallow.is_set():
            return True
        self.swallow.clear()
        self.lost += 1
        with self._lock:
            self._trigger = None
        return False


@pytest.mark.parametrize("step", ["core neurons", "semantic groups"])
def test_a_batch_whose_commit_answer_is_lost_is_sent_again_without_duplicates(
        step: str, clean_graph: neo4j.Driver, neo4j_settings: ConnectionSettings) -> None:
    port = int(neo4j_settings.uri.rsplit(":", 1)[1])
    circuit = small_synthetic(258)
    proxy = LostAnswerProxy(port)
    with proxy:
        settings = ConnectionSettings(proxy.uri, neo4j_settings.user, neo4j_settings.password,
                                      neo4j_settings.database)

        def arm(done_step: str, done: int, total: int) -> None:
            if done_step == step and done < total and proxy.lost == 0:
                proxy.lose_answer_of_commit(1)  # the next batch's commit

        with open_driver(settings) as driver:
            result = write_circuit(driver, circuit, database=settings.database, batch_rows=10, progress=arm)
        assert proxy.lost == 1
    assert result.status == "written"
    assert graph_counts(clean_graph, neo4j_settings.database) == expected_counts([circuit])
