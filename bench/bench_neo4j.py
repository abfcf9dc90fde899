"""Neo4j benchmark: ingestion throughput of the circuit store and the latency of every named query.

(1) One real class circuit, loaded from a ``neurflow build`` folder (``--circuit``), written with
    ``neurflow.graph.ingestion.write_circuit`` (what ``neurflow-ingest`` runs) into an empty graph: seconds, nodes and
    relationships written, relationships per second (median of ``--repeats`` fresh writes, the graph emptied
    before each); then the idempotent re-ingestion (skipped) and the ``--force`` rewrite.
(2) ``--synthetic`` (100) synthetic class circuits (``neurflow.synthetic``) of the real circuit's size (same
    layers, tau, k, images; same model key, so they share its Neuron nodes; same build parameters, so they are
    of its family) unless ``--synthetic-k`` / ``--synthetic-images`` size them otherwise: total seconds,
    per-circuit median, relationships per second. ``--labelled-groups`` groups of each get a label and caption
    (``neurflow.graph.labels.write_caption``, untimed) from a small vocabulary, so that the full-text search has
    something to find. Then the real circuit once more, fresh and ``--force``, into the graph of all classes
    (the OVERLAPS computation grows with the classes already there).
(3) With those classes in the graph, every query of ``queries/`` (``neurflow.graph.named_queries.list_queries``),
    run as ``neurflow query`` runs it (``run_query``: a read transaction, rows converted to plain values): median
    and p95 over ``--runs`` runs after ``--warmups`` warm-ups, and the rows returned. Parameters are supplied by
    name: ``class`` and ``a`` = the query class (a synthetic class: ``--query-class``), ``b`` = the class of its
    family whose circuit overlaps it most, ``neuron`` = the query circuit's neuron used by most classes of the
    family, ``text`` = a word of the label vocabulary; the others keep their defaults.

The targets: a class circuit written in under 2 s; at least 50,000 relationships per second; every query's p95
under 200 ms at 100 classes and under 1 s at 1,000 classes. Prints markdown and writes the ``neo4j`` section of
``bench/results-neo4j.md`` (``neo4j-<N>`` for ``--synthetic N`` other than 100; ``--section``; ``--out ''`` to
write nothing).

The graph must be empty: the script refuses to run otherwise, unless ``--wipe`` (which deletes every node
and relationship of the database first). Use a server of your own::

    neurflow db start --data-dir /tmp/nf-bench-neo4j --bolt-port 7689 --http-port 7476
    NEO4J_URI=bolt://127.0.0.1:7689 NEO4J_PASSWORD=$(neurflow db password --data-dir /tmp/nf-bench-neo4j) \\
        python bench/bench_neo4j.py --circuit circuits/0258-samoyed --wipe
    python bench/bench_neo4j.py --synthetic 1000 --synthetic-k 30 --synthetic-images 4 --batch-sweep '' --wipe
    python bench/bench_neo4j.py --synthetic 10 --runs 5 --out '' --wipe     # smoke check, no real circuit
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, LiteralString, cast

import neo4j

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from neurflow.circuit import Circuit  # noqa: E402
from neurflow.format import find_circuits, load_circuit  # noqa: E402
from neurflow.graph.circuit_vectors import forget_vectors  # noqa: E402
from neurflow.graph.connection import Neo4jConnectionError, open_driver, resolve_connection  # noqa: E402
from neurflow.graph.deletion import delete_circuit  # noqa: E402
from neurflow.graph.ingestion import DEFAULT_BATCH_ROWS, write_circuit  # noqa: E402
from neurflow.graph.labels import write_caption  # noqa: E402
from neurflow.graph.named_queries import QueryInfo, list_queries, run_query  # noqa: E402
from neurflow.graph.reads import LABELS, RELATIONSHIP_TYPES, graph_counts  # noqa: E402
from neurflow.graph.schema import ensure_schema  # noqa: E402
from neurflow.synthetic import synthetic_circuit  # noqa: E402

DEFAULT_OUT = BENCH / "results-neo4j.md"
RESULTS_TITLE = "# Neo4j benchmark results\n\nWritten by bench/bench_neo4j.py (see bench/README.md).\n"
TARGET_WRITE_S = 2.0
TARGET_RELS_PER_S = 50_000
#: Query latency targets (p95): under 200 ms at 100 classes, under 300 ms at 1,000 classes (issue 25; it was 1 s).
TARGET_QUERY_MS_100 = 200.0
TARGET_QUERY_MS_1000 = 300.0
#: Issue 25: one circuit written in under 1 s at 1,000 classes.
TARGET_WRITE_AT_SCALE_S = 1.0
#: Words of the bench's group labels and captions (``--labelled-groups``); search-concepts looks for the first.
VOCABULARY = ("fur", "feathers", "wheel", "stripes", "snout", "grass", "water", "sky", "leaves", "metal", "text",
              "eye", "scales", "wood", "snow", "fabric")
DEPICTS = ("object", "context", "background")
#: Queries of what the bench never writes (studies, experiments): no rows is the right answer there.
NO_ROWS_EXPECTED = {
    "fidelity-summary": "no fidelity study in the bench graph",
    "masking-experiments": "no masking experiment in the bench graph",
    "validation-summary": "no validation study in the bench graph",
}


def query_target_ms(classes: int) -> float:
    """The p95 target at ``classes`` classes: 200 ms up to the 100-class scale, 300 ms at 1,000 classes."""
    return TARGET_QUERY_MS_1000 if classes >= 1000 else TARGET_QUERY_MS_100


# ---------------------------------------------------------------- measurements


@dataclass
class Write:
    """One timed write_circuit call: wall seconds (rows built in Python included) and the store's result."""

    label: str
    status: str
    nodes: int
    relationships: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.relationships / self.seconds if self.seconds > 0 else 0.0


def timed_write(driver: neo4j.Driver, circuit: Circuit, folder: Path | None, args: argparse.Namespace,
                label: str, force: bool = False) -> Write:
    start = time.perf_counter()
    result = write_circuit(driver, circuit, folder, database=args.database, force=force,
                           batch_rows=args.batch_rows)
    seconds = time.perf_counter() - start
    return Write(label, result.status, result.nodes, result.relationships, seconds)


@dataclass
class QueryTiming:
    name: str
    params: dict[str, Any]
    rows: int
    times_ms: list[float]
    result: list[dict[str, Any]]
    missing: list[str]

    @property
    def timed(self) -> bool:
        return bool(self.times_ms)

    @property
    def median(self) -> float:
        return statistics.median(self.times_ms) if self.times_ms else float("nan")

    @property
    def p95(self) -> float:
        if not self.times_ms:
            return float("nan")
        ordered = sorted(self.times_ms)
        return ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]

    def rows_text(self) -> str:
        """The rows returned, with a breakdown by ``kind`` or ``comparable`` where the query has that column."""
        if not self.result:
            return "0"
        parts: dict[str, int] = {}
        if "kind" in self.result[0]:
            for row in self.result:
                parts[str(row["kind"])] = parts.get(str(row["kind"]), 0) + 1
        elif "comparable" in self.result[0]:
            for row in self.result:
                key = "comparable" if row["comparable"] else "not comparable"
                parts[key] = parts.get(key, 0) + 1
        detail = ", ".join(f"{k} {v}" for k, v in parts.items())
        return f"{self.rows} ({detail})" if detail else str(self.rows)

    def rows_ok(self) -> bool:
        """Rows where the bench graph has something to return (class-similarity: comparable classes)."""
        if self.name in NO_ROWS_EXPECTED:
            return True
        if self.name == "class-similarity":
            return any(row.get("comparable") for row in self.result)
        if self.name == "shared-groups":
            return any(row.get("kind") == "shared" for row in self.result)
        return self.rows > 0


def time_query(driver: neo4j.Driver, info: QueryInfo, supplied: dict[str, Any],
               args: argparse.Namespace) -> QueryTiming:
    """Runs ``info`` ``--warmups`` + ``--runs`` times; every required parameter (and ``class`` where the query
    has one) comes from ``supplied`` by name; a required one the bench cannot supply leaves the query untimed."""
    params = {p.name: supplied[p.name] for p in info.params
              if p.name in supplied and (p.required or p.name == "class")}
    missing = [p.name for p in info.params if p.required and p.name not in supplied]
    if missing:
        return QueryTiming(info.name, params, 0, [], [], missing)
    result: list[dict[str, Any]] = []
    times: list[float] = []
    for i in range(args.warmups + args.runs):
        start = time.perf_counter()
        _, result = run_query(driver, info.name, params, database=args.database)
        elapsed = (time.perf_counter() - start) * 1000
        if i >= args.warmups:
            times.append(elapsed)
    return QueryTiming(info.name, params, len(result), times, result, [])


def node_count(driver: neo4j.Driver, database: str) -> int:
    with driver.session(database=database, default_access_mode=neo4j.READ_ACCESS) as session:
        record = session.execute_read(lambda tx: tx.run("MATCH (n) RETURN count(n) AS n").single(strict=True))
    return int(record["n"])


def occupied(driver: neo4j.Driver, database: str, wipe_allowed: bool) -> bool:
    """Whether the database holds nodes and ``--wipe`` was not given (then says so on stderr): the benchmarks
    that write need a graph of their own."""
    existing = node_count(driver, database)
    if existing and not wipe_allowed:
        print(f"error: the database holds {existing:,} nodes; pass --wipe to empty it", file=sys.stderr)
    return bool(existing) and not wipe_allowed


def wipe(driver: neo4j.Driver, database: str) -> None:
    """Deletes every relationship, then every node (indexes and constraints stay), 10,000 per transaction:
    a DETACH DELETE of dense Neuron nodes would delete far more per transaction."""
    with driver.session(database=database, notifications_min_severity="OFF") as session:
        # timeout 0: not stopped by the server's transaction time limit on a large graph
        session.run(neo4j.Query("MATCH ()-[r]->() CALL (r) { DELETE r } IN TRANSACTIONS OF 10000 ROWS", timeout=0)).consume()
        session.run(neo4j.Query("MATCH (n) CALL (n) { DELETE n } IN TRANSACTIONS OF 10000 ROWS", timeout=0)).consume()


def driver_line() -> str:
    """The Python driver's version and whether its packstream encoder is the Rust extension: without it,
    packing the parameters of one class circuit's writes costs about 0.2 s of Python here."""
    try:
        from neo4j._codec.packstream import v1

        rust = getattr(v1, "_rust_pack", None) is not None
    except ImportError:  # a driver without the module
        rust = False
    packer = "Rust (neo4j-rust-ext)" if rust else "pure Python"
    return f"neo4j driver {neo4j.__version__}, packstream {packer}"


def server_version(driver: neo4j.Driver, database: str) -> str:
    with driver.session(database=database, default_access_mode=neo4j.READ_ACCESS) as session:
        record = session.run("CALL dbms.components() YIELD name, versions, edition "
                             "RETURN name, versions[0] AS version, edition").single()
    return f"{record['name']} {record['version']} {record['edition']}" if record else "unknown"


def circuit_size(circuit: Circuit) -> str:
    lower = sum(len(circuit.neurons.get(layer, [])) for layer in circuit.layers[1:])
    return (f"{len(circuit.layers)} layers, {lower} core neurons below the logit, "
            f"{len(circuit.semantic_groups)} semantic groups, {len(circuit.neuron_groups)} neuron groups, "
            f"{len(circuit.edges)} edges, {len(circuit.images)} images")


def real_circuit_folder(path: Path) -> Path:
    if (path / "circuit.json").exists():
        return path
    folders = find_circuits(path)
    if not folders:
        raise SystemExit(f"no circuit under {path} (looked for */circuit.json); "
                         "build one with `neurflow build`")
    if len(folders) > 1:
        print(f"{len(folders)} circuits under {path}: using {folders[0]}")
    return folders[0]


@dataclass(frozen=True)
class SyntheticSize:
    """What the synthetic circuits are made of; ``same_family``: they take the real circuit's build parameters."""

    layers: tuple[str, ...]
    tau: int
    k: int
    images: int
    max_semantic_groups: int
    max_neuron_groups: int
    model: str | None
    weights_id: str | None
    same_family: bool

    def describe(self) -> str:
        return (f"{len(self.layers)} layers ({', '.join(self.layers)}), tau={self.tau}, k={self.k}, "
                f"{self.images} images, at most {self.max_semantic_groups} semantic groups per neuron and "
                f"{self.max_neuron_groups} neuron groups per layer")


def synthetic_size(real: Circuit | None, args: argparse.Namespace) -> SyntheticSize:
    """The real circuit's size and model key (Lite0's 4 top layers, tau 16, k 50, 10 images without one),
    with ``--synthetic-k`` / ``--synthetic-images`` instead where given."""
    if real is None:
        return SyntheticSize(("_fc", "_blocks.15", "_blocks.14", "_blocks.13"), 16,
                             args.synthetic_k or 50, args.synthetic_images or 10, 5, 8, None, None, False)
    params = real.params
    k = int(params.get("k") or 50)
    images = max(1, len(real.images))
    same = args.synthetic_k in (None, k) and args.synthetic_images in (None, images)
    return SyntheticSize(tuple(real.layers), int(params.get("tau") or 16), args.synthetic_k or k,
                         args.synthetic_images or images, int(params.get("max_semantic_groups") or 5),
                         int(params.get("max_neuron_groups") or 8), real.model.name, real.model.weights_id, same)


def synthetic_like(real: Circuit | None, index: int, size: SyntheticSize, seed: int) -> Circuit:
    """A synthetic class circuit of ``size``; of the real circuit's family (its build parameters) when
    ``size.same_family``, so that the cross-class queries compare it with the real one."""
    options: dict[str, Any] = {}
    if size.model is not None and size.weights_id is not None:
        options = {"model": size.model, "weights_id": size.weights_id}
    circuit = synthetic_circuit(index, seed=seed, layers=list(size.layers), tau=size.tau, k=size.k,
                                images=size.images, max_semantic_groups=size.max_semantic_groups,
                                max_neuron_groups=size.max_neuron_groups, **options)  # type: ignore[arg-type]
    if real is not None and size.same_family:
        circuit.params = dict(real.params)
    return circuit


def label_groups(driver: neo4j.Driver, circuit: Circuit, index: int, args: argparse.Namespace) -> int:
    """Writes a label and caption of VOCABULARY words on ``--labelled-groups`` neuron groups below the logit
    layer (as ``neurflow label`` would, with ``write_caption``), so that search-concepts finds something and
    explained-chain and bias-paths see labels; ``depicts`` cycles through object, context and background."""
    groups = [g.id for g in circuit.neuron_groups if g.layer != circuit.layers[0]]
    count = len(groups) if args.labelled_groups < 0 else min(args.labelled_groups, len(groups))
    chosen = [groups[(index * 7 + 5 * j) % len(groups)] for j in range(len(groups))]
    chosen = list(dict.fromkeys(chosen))[:count] if count else []
    if len(chosen) < count:  # 5 and the group count share a factor: fill in order
        chosen += [g for g in groups if g not in chosen][: count - len(chosen)]
    for j, group in enumerate(chosen):
        word = VOCABULARY[(index + j) % len(VOCABULARY)]
        other = VOCABULARY[(3 * index + j + 7) % len(VOCABULARY)]
        write_caption(driver, circuit.id, group, label=f"{word} and {other}",
                      caption=f"Close-ups of {word}, often with {other} around it.",
                      common_features=[word, other], model="bench-vocabulary", prompt_version="bench",
                      at=None, raw=None, database=args.database, depicts=DEPICTS[(index + j) % len(DEPICTS)])
    return len(chosen)


SUPPORT_PARTNER = """
MATCH (cl:Class)<-[:FOR_CLASS]-(c:Circuit {complete: true})
WHERE toString(cl.index) = $class OR toLower(cl.name) = toLower($class) OR cl.wnid = $class
WITH c ORDER BY c.ingestedAt DESC, c.id LIMIT 1
MATCH (c)-[:HAS_GROUP]->(:NeuronGroup)-[o:OVERLAPS]-(:NeuronGroup)<-[:HAS_GROUP]-(x:Circuit)
WHERE x.complete AND x.familyKey = c.familyKey
WITH x.classIndex AS index, x.className AS name, count(o) AS overlaps
RETURN index, name, overlaps, COUNT { MATCH (d:Class {name: name}) } AS sameName
ORDER BY overlaps DESC, index LIMIT 1
"""
SUPPORT_NEURON = """
MATCH (cl:Class)<-[:FOR_CLASS]-(c:Circuit {complete: true})
WHERE toString(cl.index) = $class OR toLower(cl.name) = toLower($class) OR cl.wnid = $class
WITH c ORDER BY c.ingestedAt DESC, c.id LIMIT 1
MATCH (c)-[r:HAS_CORE_NEURON]->(n:Neuron)<-[t:FAMILY_INFLUENCE]-(:CircuitFamily {key: c.familyKey})
WHERE r.depth > 0
RETURN n.layer + ':' + n.channel AS neuron, t.classes AS classes, c.familyKey AS family,
       COUNT { MATCH (o:Circuit {familyKey: c.familyKey}) WHERE o.complete } AS circuits
ORDER BY classes DESC, r.influence DESC LIMIT 1
"""
SUPPORT_CIRCUIT = """
MATCH (cl:Class)<-[:FOR_CLASS]-(c:Circuit {complete: true})
WHERE toString(cl.index) = $class OR toLower(cl.name) = toLower($class) OR cl.wnid = $class
WITH c ORDER BY c.ingestedAt DESC, c.id LIMIT 1
MATCH (c)-[:HAS_GROUP]->(g:NeuronGroup)
WHERE g.depth > 0
WITH c, g ORDER BY g.influence DESC, g.groupId LIMIT 1
RETURN c.id AS circuit, g.groupId AS group,
       COLLECT { MATCH (o:Circuit {familyKey: c.familyKey}) WHERE o.complete
                 RETURN o.id ORDER BY o.classIndex LIMIT 60 } AS family
"""


def query_supplies(driver: neo4j.Driver, query_class: str, database: str) -> tuple[dict[str, Any], list[str]]:
    """The values of the parameters the bench supplies by name, and lines that say how they were chosen."""
    supplied: dict[str, Any] = {"class": query_class, "a": query_class, "text": VOCABULARY[0]}
    notes = [f"class, a = {query_class}", f"text = {VOCABULARY[0]} (a word of the label vocabulary)"]
    with driver.session(database=database, default_access_mode=neo4j.READ_ACCESS) as session:
        partner = session.run(SUPPORT_PARTNER, {"class": query_class}).single()
        neuron = session.run(SUPPORT_NEURON, {"class": query_class}).single()
        circuit = session.run(SUPPORT_CIRCUIT, {"class": query_class}).single()
    if partner is not None:
        b = partner["name"] if partner["sameName"] == 1 else str(partner["index"])
        supplied["b"] = b
        notes.append(f"b = {b}: the class of the family whose circuit has the most OVERLAPS with the query "
                     f"class's ({partner['overlaps']})")
    if neuron is not None:
        supplied["neuron"] = neuron["neuron"]
        notes.append(f"neuron = {neuron['neuron']}: the query circuit's neuron (below the logit) that most "
                     f"classes of its family use ({neuron['classes']} of {neuron['circuits']})")
    if circuit is not None:  # the atlas pages' queries (neurflow serve)
        supplied |= {"circuit": circuit["circuit"], "group": circuit["group"], "circuits": ",".join(circuit["family"])}
        notes.append(f"circuit = {circuit['circuit']} (the query class's), group = {circuit['group']} (its most "
                     f"influential below the logit), circuits = the first {len(circuit['family'])} of its family "
                     "(the atlas's similarity matrix)")
    return supplied, notes


CEILING_NODES = 1000
CEILING_RELS = 40_000


def bare_create_rate(driver: neo4j.Driver, args: argparse.Namespace) -> float:
    """Relationships per second of bare CREATEs between nodes already matched (no index lookups), in
    transactions of ``--batch-rows``: what the server can do at best on this machine. Scratch nodes are
    deleted afterwards."""
    label, rel = "NeurflowBenchScratch", "NEURFLOW_BENCH_SCRATCH"
    rates = []
    with driver.session(database=args.database, notifications_min_severity="OFF") as session:
        scratch = f"UNWIND range(0, {CEILING_NODES - 1}) AS i CREATE (:{label} {{i: i}})"
        session.run(cast(LiteralString, scratch)).consume()
        create = cast(LiteralString,
                      f"MATCH (a:{label}) WITH collect(a) AS ns UNWIND range($start, $end - 1) AS i "
                      f"WITH i, ns[i % {CEILING_NODES}] AS a, ns[(7 * i + 1) % {CEILING_NODES}] AS b "
                      f"CREATE (a)-[:{rel} {{weight: 0.5, rank: i, circuitId: 'scratch'}}]->(b)")
        for _ in range(3):
            start = time.perf_counter()
            for first in range(0, CEILING_RELS, args.batch_rows):
                session.execute_write(lambda tx, a=first: tx.run(
                    create, start=a, end=min(CEILING_RELS, a + args.batch_rows)).consume())
            rates.append(CEILING_RELS / (time.perf_counter() - start))
            session.run(f"MATCH ()-[r:{rel}]->() CALL (r) {{ DELETE r }} "
                        "IN TRANSACTIONS OF 10000 ROWS").consume()
        session.run(f"MATCH (n:{label}) DETACH DELETE n").consume()
    return statistics.median(rates)


def batch_sweep(driver: neo4j.Driver, real: Circuit | None, used: Sequence[int], size: SyntheticSize,
                args: argparse.Namespace) -> dict[int, list[Write]]:
    sizes = [int(x) for x in args.batch_sweep.split(",") if x.strip()]
    if not sizes:
        return {}
    taken = set(used) | ({real.target.index} if real is not None else set())
    free = [i for i in range(1000) if i not in taken]
    if len(free) < args.sweep_circuits * len(sizes):
        print(f"  batch sweep skipped: {len(free)} classes left without a circuit")
        return {}
    free_indices = iter(free)
    out: dict[int, list[Write]] = {rows: [] for rows in sizes}
    for _ in range(args.sweep_circuits):
        for rows in sizes:
            circuit = synthetic_like(real, next(free_indices), size, args.seed)
            swept = argparse.Namespace(**{**vars(args), "batch_rows": rows})
            out[rows].append(timed_write(driver, circuit, None, swept, f"batch {rows}"))
            delete_circuit(driver, circuit.id, args.database)
    for rows, writes in out.items():
        print(f"  --batch-rows {rows}: median {statistics.median(w.seconds for w in writes):.2f} s, "
              f"{statistics.median(w.rate for w in writes):,.0f} rel/s")
    return out


# ---------------------------------------------------------------- markdown


def met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def spread(values: Sequence[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


@dataclass
class IngestRow:
    """One line of the ingestion table; ``seconds``/``rate`` are what the targets are judged on (or None)."""

    label: str
    status: str
    nodes: float
    relationships: float
    seconds_text: str
    rate: float
    seconds: float | None = None
    check_rate: bool = False

    def checks(self) -> list[tuple[str, bool]]:
        out = []
        if self.seconds is not None:
            out.append(("write", self.seconds < TARGET_WRITE_S))
        if self.check_rate:
            out.append(("rate", self.rate >= TARGET_RELS_PER_S))
        return out

    def markdown(self) -> str:
        targets = []
        if self.seconds is not None:
            targets.append(f"< {TARGET_WRITE_S:g} s: {met(self.seconds < TARGET_WRITE_S)}")
        if self.check_rate:
            targets.append(f">= {TARGET_RELS_PER_S:,}/s: {met(self.rate >= TARGET_RELS_PER_S)}")
        return (f"| {self.label} | {self.status} | {self.nodes:,.0f} | {self.relationships:,.0f} | "
                f"{self.seconds_text} | {self.rate:,.0f} | {'; '.join(targets) or '-'} |")


def writes_row(label: str, writes: Sequence[Write], judged: bool) -> IngestRow:
    seconds = [w.seconds for w in writes]
    median = statistics.median(seconds)
    rate = statistics.median(w.rate for w in writes)
    return IngestRow(label, ", ".join(sorted({w.status for w in writes})), writes[0].nodes,
                     writes[0].relationships, spread(seconds), rate,
                     median if judged else None, judged)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--circuit", type=Path, default=None,
                        help="a `neurflow build` circuit folder (or its --out folder); default: none, "
                             "the real circuit part is left out")
    parser.add_argument("--synthetic", type=int, default=100, help="synthetic class circuits (default 100)")
    parser.add_argument("--synthetic-k", type=int, default=None,
                        help="patches per concept of the synthetic circuits (default: the real circuit's k, "
                             "else 50); another value than the real one's puts them in another family")
    parser.add_argument("--synthetic-images", type=int, default=None,
                        help="images per synthetic circuit (default: the real circuit's, else 10); another "
                             "value than the real one's puts them in another family")
    parser.add_argument("--labelled-groups", type=int, default=5,
                        help="neuron groups of each synthetic circuit given a label and caption from the "
                             "bench's vocabulary, untimed (default 5; -1: every group below the logit)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic circuits")
    parser.add_argument("--repeats", type=int, default=3, help="fresh writes of the real circuit (median)")
    parser.add_argument("--runs", type=int, default=20, help="timed runs of each query")
    parser.add_argument("--warmups", type=int, default=2, help="untimed runs of each query first")
    parser.add_argument("--batch-rows", type=int, default=DEFAULT_BATCH_ROWS,
                        help=f"rows per write transaction (default {DEFAULT_BATCH_ROWS}, "
                             "as neurflow-ingest)")
    parser.add_argument("--batch-sweep", default="1000,2000,5000,20000",
                        help="--batch-rows values to compare after the queries ('' to skip)")
    parser.add_argument("--sweep-circuits", type=int, default=3, help="circuits written per batch size")
    parser.add_argument("--query-class", default=None, help="class for the queries' class and a parameters "
                        "(default: the first synthetic class)")
    parser.add_argument("--query-target-ms", type=float, default=None,
                        help="p95 target of every query (default: 200 ms below 1,000 classes, 1000 ms at "
                             "1,000 classes and more)")
    parser.add_argument("--wipe", action="store_true",
                        help="delete every node and relationship of the database first "
                             "(else: refuse a non-empty graph)")
    parser.add_argument("--keep", action="store_true",
                        help="leave the benchmark's graph in the database at the end (default: delete it)")
    parser.add_argument("--queries-only", action="store_true",
                        help="with a graph left by --keep: write nothing, time the queries again "
                             "(prints only)")
    parser.add_argument("--at-scale", action="store_true",
                        help="with an atlas in the graph (bench_ingest_from.py --keep) holding --circuit: time that "
                             "circuit's write again and every query; writes section neo4j-<classes>")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="results file ('' to write nothing)")
    parser.add_argument("--section", default=None,
                        help="section of the results file (default: neo4j for --synthetic 100, "
                             "else neo4j-<N>)")
    parser.add_argument("--uri", default=None, help="Bolt URI [env NEO4J_URI; default: the local server]")
    parser.add_argument("--user", default=None, help="[env NEO4J_USER; default neo4j]")
    parser.add_argument("--password", default=None,
                        help="[env NEO4J_PASSWORD; local server: its password file]")
    parser.add_argument("--database", default=None, help="[env NEO4J_DATABASE; default neo4j]")
    args = parser.parse_args(argv)
    if args.section is None:
        args.section = "neo4j" if args.synthetic == 100 else f"neo4j-{args.synthetic}"

    from bench_engine import cpu_model, load_average, write_section

    settings = resolve_connection(args.uri, args.user, args.password, args.database)
    args.database = settings.database
    print(f"Neo4j: {settings.describe()}")
    try:
        driver = open_driver(settings)
    except Neo4jConnectionError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 2
    try:
        if args.queries_only:
            return queries_only(driver, args)
        if args.at_scale:
            return at_scale(driver, args, cpu_model, load_average, write_section)
        return run(driver, settings.uri, args, cpu_model, load_average, write_section)
    finally:
        driver.close()


def first_synthetic_class(driver: neo4j.Driver, database: str) -> str:
    """The name of the lowest class index with a synthetic circuit in the graph (for --queries-only)."""
    with driver.session(database=database, default_access_mode=neo4j.READ_ACCESS) as session:
        record = session.run("MATCH (c:Circuit {complete: true}) "
                             "RETURN c.className AS name ORDER BY c.classIndex LIMIT 1").single()
    return str(record["name"]) if record else "0"


def time_queries(driver: neo4j.Driver, query_class: str, args: argparse.Namespace
                 ) -> tuple[list[QueryTiming], list[str]]:
    supplied, notes = query_supplies(driver, query_class, args.database)
    for note in notes:
        print(f"  {note}")
    timings: list[QueryTiming] = []
    for info in list_queries():
        timing = time_query(driver, info, supplied, args)
        timings.append(timing)
        if not timing.timed:
            print(f"  query {info.name}: not timed, the bench cannot supply {', '.join(timing.missing)}")
            continue
        warn = "" if timing.rows_ok() else "  <- no rows where the graph has some"
        print(f"  query {info.name}: median {timing.median:.1f} ms, p95 {timing.p95:.1f} ms, "
              f"rows {timing.rows_text()}{warn}")
    return timings, notes


def wait_for_quiet_server(limit_s: float = 900.0, window_s: float = 10.0, share: float = 0.1) -> str:
    """Waits until the local server's process (``neurflow db``'s, from NEURFLOW_NEO4J_*) used under ``share`` of a
    core for ``window_s`` seconds: after writing an atlas it flushes pages and prunes transaction logs for minutes
    (a checkpoint; Community has no procedure to force one), which a single write timed meanwhile pays for. Returns
    what was waited, for the table."""
    from neurflow.graph.server import running_pid
    from neurflow.graph.server_config import server_config

    pid = running_pid(server_config())
    if pid is None:
        return "the server is not a local `neurflow db` one: not waited for"
    ticks = os.sysconf("SC_CLK_TCK")

    def cpu_seconds() -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime

    start = time.perf_counter()
    while True:
        before = cpu_seconds()
        time.sleep(window_s)
        used = (cpu_seconds() - before) / window_s
        waited = time.perf_counter() - start
        if used < share or waited > limit_s:
            return (f"timed once the server's process used {used:.0%} of a core over {window_s:g} s (waited "
                    f"{waited:.0f} s{'; gave up waiting' if used >= share else ''})")


def at_scale(driver: neo4j.Driver, args: argparse.Namespace, cpu_model: Callable[[], str],
             load_average: Callable[[], str], write_section: Callable[[Path, str, str], None]) -> int:
    """On a graph that already holds an atlas (bench_ingest_from.py --keep) with the real circuit: its write
    timed again (deleted first; fresh --repeats times, then --force), as a new process would (no core vectors
    of other circuits cached), then every named query; writes section ``neo4j-<classes>``."""
    if args.circuit is None:
        print("error: --at-scale needs --circuit (the real circuit of the atlas)", file=sys.stderr)
        return 2
    folder = real_circuit_folder(args.circuit)
    real = load_circuit(folder)
    quiet = wait_for_quiet_server()
    print(f"  {quiet}")
    load_before = load_average()
    version = server_version(driver, args.database)
    fresh: list[Write] = []
    deletions: list[float] = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        delete_circuit(driver, real.id, args.database)
        deletions.append(time.perf_counter() - start)
        forget_vectors()
        fresh.append(timed_write(driver, real, folder, args, "real fresh at scale"))
    forget_vectors()
    force = timed_write(driver, real, folder, args, "real force at scale", force=True)
    counts = graph_counts(driver, args.database)
    classes = counts.get("Circuit", 0)
    print(f"  real circuit at {classes} classes: fresh {[round(w.seconds, 2) for w in fresh]} s, --force "
          f"{force.seconds:.2f} s")
    target_ms = args.query_target_ms or query_target_ms(classes)
    load_queries = load_average()
    query_class = args.query_class or first_synthetic_class(driver, args.database)
    timings, supply_notes = time_queries(driver, query_class, args)
    load_after = load_average()
    per = sorted(w.seconds for w in fresh)
    median = statistics.median(per)
    rows = [
        f"| real circuit, fresh ({classes:,} classes in the graph) | {fresh[0].status} | {fresh[0].nodes:,} | "
        f"{fresh[0].relationships:,} | {median:.2f} ({per[0]:.2f}-{per[-1]:.2f}) | "
        f"{statistics.median(w.rate for w in fresh):,.0f} | < {TARGET_WRITE_AT_SCALE_S:g} s: "
        f"{met(median < TARGET_WRITE_AT_SCALE_S)} |",
        f"| real circuit, --force ({classes:,} classes in the graph) | {force.status} | {force.nodes:,} | "
        f"{force.relationships:,} | {force.seconds:.2f} | {force.rate:,.0f} | - |",
        f"| real circuit, deleted ({classes:,} classes in the graph; `delete_circuit`, the family's totals and "
        f"reuse summaries recomputed) | deleted | - | - | {statistics.median(deletions):.2f} "
        f"({min(deletions):.2f}-{max(deletions):.2f}) | - | - |",
    ]
    node_text = ", ".join(f"{counts[k]:,} {k}" for k in LABELS if counts.get(k))
    rel_text = ", ".join(f"{counts[r]:,} {r}" for r in RELATIONSHIP_TYPES if counts.get(r))
    timed = [t for t in timings if t.timed]
    lines = [
        f"## Neo4j at {classes:,} classes: one circuit's write and every named query",
        "",
        f"- date: {datetime.now(timezone.utc).isoformat(timespec='seconds')}; queries as of commit {queries_version()}",
        f"- server: {version}, local (same machine), default `neurflow db start` settings (page cache 256 MB, heap "
        f"1 GB); CPU: {cpu_model()} (2 cores, shared with other jobs); {driver_line()}; load average before "
        f"{load_before}, at the queries {load_queries}, after {load_after}",
        f"- graph: the atlas of `bench_ingest_from.py` ({classes:,} complete class circuits written from saved "
        f"folders); nodes: {node_text}; {sum(counts[r] for r in RELATIONSHIP_TYPES):,} relationships: {rel_text}",
        f"- writes: `write_circuit` of the real circuit `{folder.name}` ({circuit_size(real)}), deleted before "
        f"each fresh write (median (min-max) of {len(fresh)}); the process's cache of other circuits' core vectors "
        f"emptied before each write, as in a new `neurflow-ingest` process; {quiet}; seconds: wall clock of the "
        "call",
        "",
        "| write | status | nodes | relationships | seconds | relationships/s | target |",
        "|---|---|---:|---:|---:|---:|---|",
        *rows,
        "",
        "`neurflow.graph.named_queries.run_query` (a read transaction, rows converted to plain values, as "
        f"`neurflow query`); {args.runs} timed runs after {args.warmups} warm-ups; client wall clock in ms. "
        "Parameters: " + "; ".join(supply_notes) + "; `class` also where it is optional; the others their "
        "defaults. No rows is expected only where the bench writes nothing to find ("
        + ", ".join(NO_ROWS_EXPECTED) + ").",
        "",
        *query_table(timings, target_ms),
        "",
        f"Every query's p95 under {target_ms:g} ms: {met(all(t.p95 < target_ms for t in timed) and len(timed) == len(timings))}.",
    ]
    text = "\n".join(lines)
    print("\n" + text)
    if args.out:
        out = Path(args.out)
        write_section(out, args.section if args.section != f"neo4j-{args.synthetic}" else f"neo4j-{classes}", text)
    return 0


def queries_version() -> str:
    """The last commit that changed queries/ (and whether the working tree changes them)."""
    import subprocess

    def git(*command: str) -> str:
        return subprocess.run(["git", *command], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()

    commit = git("log", "-1", "--format=%h", "--", "queries")
    return commit + (" (queries changed in the working tree)" if git("status", "--porcelain", "--", "queries") else "")


def queries_only(driver: neo4j.Driver, args: argparse.Namespace) -> int:
    query_class = args.query_class or first_synthetic_class(driver, args.database)
    time_queries(driver, query_class, args)
    return 0


def query_table(timings: Sequence[QueryTiming], target_ms: float) -> list[str]:
    lines = [
        "| query | parameters | rows | median ms | p95 ms | max ms | target |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for t in timings:
        shown = ", ".join(f"{k}={v}" for k, v in t.params.items()) or "defaults"
        if not t.timed:
            lines.append(f"| {t.name} | {shown} | - | - | - | - | not timed: the bench cannot supply "
                         f"{', '.join(t.missing)} |")
            continue
        rows = t.rows_text() + ("" if t.rows_ok() else " **(rows expected)**")
        lines.append(f"| {t.name} | {shown} | {rows} | {t.median:.1f} | {t.p95:.1f} | "
                     f"{max(t.times_ms):.1f} | p95 < {target_ms:g} ms: {met(t.p95 < target_ms)} |")
    return lines


def run(driver: neo4j.Driver, uri: str, args: argparse.Namespace, cpu_model: Callable[[], str],
        load_average: Callable[[], str], write_section: Callable[[Path, str, str], None]) -> int:
    existing = node_count(driver, args.database)
    if existing and not args.wipe:
        print(f"error: database {args.database!r} at {uri} holds {existing:,} nodes. This benchmark needs "
              "an empty graph: use a database of its own, or pass --wipe to delete every node and "
              "relationship in it.",
              file=sys.stderr)
        return 2
    if existing:
        print(f"--wipe: deleting {existing:,} nodes of database {args.database!r}")
        wipe(driver, args.database)
    ensure_schema(driver, args.database)
    load_before = load_average()
    version = server_version(driver, args.database)

    real: Circuit | None = None
    folder: Path | None = None
    load_seconds = 0.0
    if args.circuit is not None:
        folder = real_circuit_folder(args.circuit)
        start = time.perf_counter()
        real = load_circuit(folder)
        load_seconds = time.perf_counter() - start
        print(f"real circuit {folder}: {real.target.name} ({real.target.index}); {circuit_size(real)}")

    rows: list[IngestRow] = []
    # (1) the real circuit into an empty graph
    fresh: list[Write] = []
    if real is not None:
        for repeat in range(args.repeats):
            if repeat:
                wipe(driver, args.database)
            fresh.append(timed_write(driver, real, folder, args, "real fresh"))
            print(f"  real circuit, fresh write {repeat + 1}/{args.repeats}: {fresh[-1].seconds:.2f} s, "
                  f"{fresh[-1].relationships:,} relationships, {fresh[-1].rate:,.0f}/s")
        skip = timed_write(driver, real, folder, args, "real again")
        force = timed_write(driver, real, folder, args, "real force", force=True)
        print(f"  again: {skip.status} in {skip.seconds:.3f} s; "
              f"--force: {force.status} in {force.seconds:.2f} s")
        rows += [
            writes_row("real circuit, fresh (empty graph)", fresh, judged=True),
            writes_row("real circuit, again (idempotent)", [skip], judged=False),
            writes_row("real circuit, --force (deleted, written again)", [force], judged=False),
        ]

    # (2) synthetic classes, each built just before its write (1,000 circuits do not fit in memory at once)
    size = synthetic_size(real, args)
    step = max(1, 1000 // max(1, args.synthetic + 1))
    skip_index = real.target.index if real is not None else -1
    indices = [i for i in range(0, 1000, step) if i != skip_index][: args.synthetic]
    if len(indices) < args.synthetic:
        print(f"note: {len(indices)} synthetic classes (ImageNet has 1000 and the real circuit takes one)")
    build_seconds = label_seconds = 0.0
    labelled = 0
    first: Circuit | None = None
    shapes: list[tuple[int, int, int, int]] = []  # core neurons below the logit, semantic groups, groups, edges
    synthetic: list[Write] = []
    every = max(10, len(indices) // 20)
    total_start = time.perf_counter()
    write_seconds = 0.0
    for n, index in enumerate(indices):
        start = time.perf_counter()
        circuit = synthetic_like(real, index, size, args.seed)
        build_seconds += time.perf_counter() - start
        if first is None:
            first = circuit
        shapes.append((sum(len(circuit.neurons.get(layer, [])) for layer in circuit.layers[1:]),
                       len(circuit.semantic_groups), len(circuit.neuron_groups), len(circuit.edges)))
        synthetic.append(timed_write(driver, circuit, None, args, "synthetic"))
        write_seconds += synthetic[-1].seconds
        start = time.perf_counter()
        labelled += label_groups(driver, circuit, index, args)
        label_seconds += time.perf_counter() - start
        if (n + 1) % every == 0 or n + 1 == len(indices):
            print(f"  synthetic {n + 1}/{len(indices)}: last {synthetic[-1].seconds:.2f} s, "
                  f"{synthetic[-1].rate:,.0f} rel/s; {time.perf_counter() - total_start:.0f} s so far "
                  f"(load {load_average()})", flush=True)
    if synthetic:
        total_rels = sum(w.relationships for w in synthetic)
        per = [w.seconds for w in synthetic]
        median_s = statistics.median(per)
        rows += [
            IngestRow(f"{len(synthetic)} synthetic circuits, total (writes only)", "written",
                      sum(w.nodes for w in synthetic), total_rels, f"{write_seconds:.1f}",
                      total_rels / write_seconds, check_rate=True),
            IngestRow("synthetic circuit, per circuit (median)", "written",
                      statistics.median(w.nodes for w in synthetic),
                      statistics.median(w.relationships for w in synthetic),
                      f"{median_s:.2f} ({min(per):.2f}-{max(per):.2f})",
                      statistics.median(w.rate for w in synthetic), seconds=median_s),
        ]
        if len(synthetic) >= 200:  # the writes at scale: the OVERLAPS computation grows with the classes
            last = synthetic[-(len(synthetic) // 10):]
            last_per = [w.seconds for w in last]
            rows.append(IngestRow(
                f"synthetic circuit, per circuit (median of the last {len(last)})", "written",
                statistics.median(w.nodes for w in last), statistics.median(w.relationships for w in last),
                f"{statistics.median(last_per):.2f} ({min(last_per):.2f}-{max(last_per):.2f})",
                statistics.median(w.rate for w in last), seconds=statistics.median(last_per)))

    # the real circuit again, into the graph of all classes
    classes = len(synthetic) + (1 if real is not None else 0)
    if real is not None:
        delete_circuit(driver, real.id, args.database)
        at_scale = timed_write(driver, real, folder, args, "real fresh at scale")
        at_scale_force = timed_write(driver, real, folder, args, "real force at scale", force=True)
        rows += [
            writes_row(f"real circuit, fresh ({classes} classes in the graph)", [at_scale], judged=True),
            writes_row(f"real circuit, --force ({classes} classes in the graph)", [at_scale_force],
                       judged=False),
        ]
        print(f"  real circuit at {classes} classes: fresh {at_scale.seconds:.2f} s, --force "
              f"{at_scale_force.seconds:.2f} s")

    # (3) queries
    counts = graph_counts(driver, args.database)
    query_class = args.query_class or (first.target.name if first is not None
                                       else real.target.name if real is not None else "0")
    target_ms = args.query_target_ms or query_target_ms(classes)
    load_queries = load_average()
    timings, supply_notes = time_queries(driver, query_class, args)
    # (4) context for the rate target: --batch-rows, and the server's rate for bare relationship CREATEs
    sweep = batch_sweep(driver, real, indices, size, args)
    ceiling = bare_create_rate(driver, args)
    print(f"  bare CREATE of relationships: {ceiling:,.0f}/s")
    load_after = load_average()
    if not args.keep:
        wipe(driver, args.database)

    # ---------------------------------------------------------------- report
    lines = [
        "## Neo4j: ingestion throughput and query latency"
        + (f" at {classes:,} classes" if args.section != "neo4j" else ""),
        "",
        f"- date: {datetime.now(timezone.utc).isoformat(timespec='seconds')}",
        f"- server: {version}, local (same machine), default `neurflow db start` settings (page cache 256 MB, "
        f"heap 1 GB); CPU: {cpu_model()} (2 cores, shared with other jobs); {driver_line()}; load average "
        f"before {load_before}, at the queries {load_queries}, after {load_after}",
        f"- writes: `neurflow.graph.ingestion.write_circuit` (what `neurflow-ingest` runs), batches of "
        f"{args.batch_rows} rows; seconds: wall clock of the call (rows built in Python, idempotency check, "
        "OVERLAPS computation, family totals and the complete flag included)",
    ]
    if real is not None:
        assert folder is not None
        params = real.params
        lines.append(
            f"- real circuit: `{folder.name}` ({real.model.name}, class {real.target.name}, "
            f"tau={params.get('tau')}, k={params.get('k')}, steps={params.get('steps')}); "
            f"{circuit_size(real)}; circuit.json loaded in {load_seconds:.2f} s (not timed); fresh = median "
            f"(min-max) of {len(fresh)} writes, the graph emptied before each")
    if first is not None:
        cores, sgs, ngs, edges = (sorted(x[i] for x in shapes) for i in range(4))
        rels = sorted(w.relationships for w in synthetic)

        def mid(values: list[int]) -> str:
            return f"{statistics.median(values):,.0f} ({values[0]:,}-{values[-1]:,})"

        family = ("with the real circuit's model key and build parameters (so they share its Neuron nodes "
                  "and are of its family: the cross-class queries compare them with it)"
                  if real is not None and size.same_family else
                  "with the real circuit's model key (so they share its Neuron nodes) but other build "
                  "parameters: a family of their own, the real circuit is not compared with them"
                  if real is not None else "one family")
        lines.append(
            f"- synthetic circuits: {len(synthetic)} classes (indices {', '.join(map(str, indices[:2]))}, "
            f"... every {step}{'st' if step == 1 else 'th'}), seed {args.seed}, {size.describe()}"
            + (" (`--synthetic-k`/`--synthetic-images`: smaller than the real circuit)"
               if real is not None and not size.same_family else "")
            + f"; per circuit, median (min-max): {mid(cores)} core neurons below the logit, {mid(sgs)} semantic "
            f"groups, {mid(ngs)} neuron groups, {mid(edges)} edges, {size.images * 59} patches, {mid(rels)} "
            f"relationships written; built in memory in {build_seconds:.1f} s in all (not timed); written one "
            "after another" + (" after the real circuit" if real is not None else "") + f", {family}")
        lines.append(
            f"- labels: {labelled:,} neuron groups ({args.labelled_groups if args.labelled_groups >= 0 else 'all'}"
            f" per circuit below the logit) given a label, caption and `depicts` with "
            "`neurflow.graph.labels.write_caption`, from a vocabulary of "
            f"{len(VOCABULARY)} words ({', '.join(VOCABULARY[:4])}, ...), in {label_seconds:.1f} s (not timed)")
    node_text = ", ".join(f"{counts[k]:,} {k}" for k in LABELS if counts.get(k))
    rel_text = ", ".join(f"{counts[r]:,} {r}" for r in RELATIONSHIP_TYPES if counts.get(r))
    lines += [
        f"- graph at query time: {classes:,} complete class circuits; nodes: {node_text}; "
        f"{sum(counts[r] for r in RELATIONSHIP_TYPES):,} relationships: {rel_text}",
        "",
        "### Ingestion",
        "",
        "| write | status | nodes | relationships | seconds | relationships/s | target |",
        "|---|---|---:|---:|---:|---:|---|",
        *(row.markdown() for row in rows),
        "",
        f"### Queries at {classes:,} classes",
        "",
        "`neurflow.graph.named_queries.run_query` (a read transaction, rows converted to plain values, as "
        f"`neurflow query`); {args.runs} timed runs after {args.warmups} warm-ups; client wall clock in ms. "
        "Parameters: " + "; ".join(supply_notes) + "; `class` also where it is optional; the others their "
        "defaults. rows: of the last run (by kind, or comparable classes, where the query has that column); "
        "no rows is expected only where the bench writes nothing to find ("
        + ", ".join(NO_ROWS_EXPECTED) + f"). Target: p95 under {target_ms:g} ms"
        f" (the issue: under {TARGET_QUERY_MS_100:g} ms at 100 classes, under {TARGET_QUERY_MS_1000:g} ms at 1,000).",
        "",
        *query_table(timings, target_ms),
    ]
    checks = [check for row in rows for check in row.checks()]
    timed = [t for t in timings if t.timed]
    summary = {
        f"a class circuit written in under {TARGET_WRITE_S:g} s":
            [ok for kind, ok in checks if kind == "write"],
        f"at least {TARGET_RELS_PER_S:,} relationships per second":
            [ok for kind, ok in checks if kind == "rate"],
        f"every query's p95 under {target_ms:g} ms at {classes:,} classes":
            [t.p95 < target_ms for t in timed] + [False for t in timings if not t.timed],
    }
    if sweep:
        lines += [
            "",
            f"### Batch size (`--batch-rows`), at {classes} classes",
            "",
            f"{args.sweep_circuits} more synthetic circuits per size, sizes interleaved, each deleted after "
            "it is written (so the graph stays the same).",
            "",
            "| batch rows | median seconds | median relationships/s |",
            "|---:|---:|---:|",
        ]
        for batch, writes in sweep.items():
            lines.append(f"| {batch} | {statistics.median(w.seconds for w in writes):.2f} | "
                         f"{statistics.median(w.rate for w in writes):,.0f} |")
    lines += [
        "",
        f"Reference: the same server creates {ceiling:,.0f} relationships/s when nothing is looked up "
        f"(`UNWIND ... CREATE (a)-[:R {{weight, rank, circuitId}}]->(b)` between {CEILING_NODES} nodes "
        f"already matched, {CEILING_RELS:,} relationships in transactions of {args.batch_rows}; "
        "median of 3).",
    ]
    lines += ["", "### Targets", "", "| target | |", "|---|---|"]
    lines += [f"| {name} | {met(all(oks)) if oks else 'not measured'} |" for name, oks in summary.items()]
    text = "\n".join(lines)
    print()
    print(text)
    if args.out:
        out = Path(args.out)
        if not out.exists():
            out.write_text(RESULTS_TITLE)
        write_section(out, args.section, text)
        print(f"\nwritten to {out} (section {args.section})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
