#!/usr/bin/env python3
"""Compare the rows of every named query (`neurflow query NAME --format json`) between two checkouts of neurflow,
run against the same Neo4j graph (filled once by fill.py).

    python3 bench/query_rows/compare.py --work WORK [--old WORK/old] [--new WORK/new] \
        [--python .venv/bin/python] [--graph WORK/graph.json] [--out WORK/results]

Each checkout runs as `PYTHON -m neurflow.cli.main query ...` from inside the checkout, with PYTHONPATH=CHECKOUT and
NEURFLOW_QUERIES=CHECKOUT/queries. NEURFLOW_QUERIES matters: with a venv that has neurflow installed editable from
another tree, `neurflow.queries` (package-dir "queries") is resolved by the editable finder to THAT tree's queries/,
even when `neurflow` itself comes from PYTHONPATH. The script checks which files each side imports and reads.

Connection: the environment (NEURFLOW_NEO4J_DATA / NEURFLOW_NEO4J_BOLT_PORT for the local server, or NEO4J_*) is
passed to both sides unchanged.

Cases: every query of `query --list` runs with its defaults (required parameters filled from --graph, the JSON
written by fill.py), plus the variants of `variants()`. A query whose Cypher has no ORDER BY has its rows sorted
canonically before the comparison; otherwise the order must match too (a same-rows-other-order result is reported
as such). Also compared: the `--list` text, `--show` (the Cypher each side sends), exit codes and the raw JSON text.

Writes OUT/results.json (everything) and OUT/summary.md (the tables). Exit status: 0 when every case gives
identical rows, 1 otherwise.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DEFAULT_WORK = Path(tempfile.gettempdir()) / "neurflow-query-rows"


def variants(g: dict[str, Any]) -> dict[str, list[dict[str, str]]]:
    """Extra parameter sets per query, from the graph description written by fill.py."""
    real, syn = g["real"], g["synthetic"]
    s, gr = real["Samoyed"], real["golden retriever"]
    skey, sfam = syn[0]["model_key"], syn[0]["family"]
    return {
        "bias-paths": [
            {"class": "Samoyed", "minForeign": "0.4", "model": skey},
            {"class": str(s["index"]), "n": "3", "fromDepth": "1"},
            {"class": s["wnid"], "circuit": s["id"]},
            {"class": "golden retriever", "n": "1"},
        ],
        "class-circuit": [
            {"class": "Samoyed", "prune": "0.8"},
            {"class": "golden retriever", "model": skey, "minShare": "0.05"},
            {"class": "Samoyed", "circuit": syn[0]["id"], "prune": "0.5"},
        ],
        "class-similarity": [
            {"class": "Samoyed", "prune": "0.8"},
            {"class": "258", "model": skey},
            {"class": "207", "family": sfam, "limit": "2"},
            {"class": "Samoyed", "model": s["model_key"]},
        ],
        "class-specific": [
            {"class": "Samoyed", "prune": "0.8", "thumbnails": "1"},
            {"class": "Pomeranian", "model": skey},
            {"class": "golden retriever", "family": gr["family"], "limit": "3"},
        ],
        "concept-reuse": [
            {"minJaccard": "0.2"},
            {"minJaccard": "0.2", "prune": "0.8", "model": skey},
            {"class": "Samoyed"},
            {"family": sfam, "minClasses": "3", "limit": "5"},
        ],
        "explained-chain": [
            {"class": "golden retriever"},
            {"class": "Samoyed", "model": skey},
            {"class": "n02111889", "circuit": s["id"]},
        ],
        "fidelity-summary": [
            {"class": "Samoyed"},
            {"model": s["model_key"]},
        ],
        "masking-experiments": [
            {"class": "Samoyed"},
            {"mode": "retain"},
            {"group": s["group"]},
            {"limit": "1"},
            {"class": "golden retriever"},
        ],
        "neuron-classes": [
            {"neuron": syn[0]["neuron"]},
            {"neuron": s["neuron"], "model": s["model_key"]},
            {"neuron": syn[1]["neuron"], "family": sfam, "limit": "2"},
            {"neuron": "not-a-neuron"},
        ],
        "search-concepts": [
            {"text": "white fluffy fur"},
            {"text": "background", "thumbnails": "1"},
            {"text": "dog: (fur", "limit": "3"},
            {"text": "retriever", "model": skey},
        ],
        "shared-groups": [
            {"a": "Samoyed", "b": "Pomeranian", "model": skey, "minJaccard": "0.2"},
            {"a": "Samoyed", "b": "Pomeranian"},
            {"a": "258", "b": "207", "prune": "0.8", "family": sfam, "thumbnails": "1"},
        ],
        "top-groups": [
            {"class": "golden retriever", "limit": "2", "thumbnails": "1"},
            {"class": "Pomeranian"},
            {"class": "Samoyed", "circuit": syn[0]["id"]},
        ],
        "validation-summary": [
            {"class": "Samoyed"},
            {"study": "optimality"},
            {"limit": "1"},
        ],
    }


def required_values(g: dict[str, Any]) -> dict[str, str]:
    """A value for each required parameter (as tests/graph/test_named_queries.py required_values does)."""
    s = g["real"]["Samoyed"]
    return {"class": "Samoyed", "a": "Samoyed", "b": "golden retriever", "neuron": s["neuron"], "text": "Samoyed"}


class Side:
    def __init__(self, name: str, checkout: Path, python: str):
        self.name, self.checkout, self.python = name, checkout.resolve(), python
        self.env = {**os.environ, "PYTHONPATH": str(self.checkout), "NEURFLOW_QUERIES": str(self.checkout / "queries")}

    def run(self, args: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.python, *args], cwd=self.checkout, env=self.env, capture_output=True, text=True,
                              timeout=timeout)

    def cli(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        return self.run(["-m", "neurflow.cli.main", *args])

    def commit(self) -> str:
        """`HASH subject` of the checkout, and a note when its tree differs from that commit."""
        def git(*args: str) -> str:
            return subprocess.run(["git", "-C", str(self.checkout), *args], capture_output=True, text=True).stdout

        dirty = " (plus uncommitted changes)" if git("status", "--porcelain").strip() else ""
        return git("log", "-1", "--format=%H %s").strip() + dirty

    def check_imports(self) -> str:
        code = ("import neurflow, neurflow.cli.main, neurflow.graph.named_queries as q;"
                "print(neurflow.__file__); print(neurflow.cli.main.__file__); print(q.queries_dir())")
        p = self.run(["-c", code])
        if p.returncode:
            raise SystemExit(f"{self.name}: import check failed:\n{p.stderr}")
        paths = p.stdout.split()
        for path in paths:
            if not Path(path).resolve().is_relative_to(self.checkout):
                raise SystemExit(f"{self.name}: {path} is not under {self.checkout}")
        return "\n".join(paths)


def parse_list(text: str) -> dict[str, dict[str, str]]:
    """`query --list` text -> {name: {param: 'required' | default}}."""
    out: dict[str, dict[str, str]] = {}
    name = None
    for line in text.splitlines():
        if line and not line.startswith(" "):
            name = line.strip()
            out[name] = {}
        elif name and (m := re.match(r"\s+--param (\w+) \((\w+), (required|default (.*?))\):", line)):
            out[name][m.group(1)] = "required" if m.group(3) == "required" else m.group(4)
    return out


def canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def first_diff(a: Any, b: Any, path: str = "") -> str:
    """Where two parsed JSON values differ first (a path and the two values)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if list(a) != list(b):
            return f"{path or '.'}: keys {list(a)} vs {list(b)}"
        for k in a:
            if not same(a[k], b[k]):
                return first_diff(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            if not same(x, y):
                return first_diff(x, y, f"{path}[{i}]")
        if len(a) != len(b):
            return f"{path or '.'}: length {len(a)} vs {len(b)}"
    return f"{path or '.'}: old {json.dumps(a, default=str)[:200]} vs new {json.dumps(b, default=str)[:200]}"


def same(a: Any, b: Any) -> bool:
    """Equal as data; NaN equals NaN (the raw text comparison is separate)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def compare_case(old: Side, new: Side, name: str, params: dict[str, str], ordered: bool) -> dict[str, Any]:
    args = ["query", name, "--format", "json"]
    for k, v in params.items():
        args += ["--param", f"{k}={v}"]
    with cf.ThreadPoolExecutor(2) as pool:
        po, pn = pool.map(lambda s: s.cli(args), (old, new))
    res: dict[str, Any] = {"query": name, "params": params, "rc_old": po.returncode, "rc_new": pn.returncode}
    if po.returncode or pn.returncode:
        res.update(rows_old=None, rows_new=None, identical=po.returncode == pn.returncode and po.stderr == pn.stderr,
                   verdict="both failed, same error" if po.returncode == pn.returncode and po.stderr == pn.stderr
                   else "DIFFERENT (exit status or error)",
                   diff=f"old rc={po.returncode} {po.stderr.strip()[-300:]!r}; new rc={pn.returncode} "
                        f"{pn.stderr.strip()[-300:]!r}")
        return res
    ro, rn = json.loads(po.stdout), json.loads(pn.stdout)  # json.loads accepts NaN (old json.dumps wrote it)
    res.update(rows_old=len(ro), rows_new=len(rn), raw_text_identical=po.stdout == pn.stdout)
    so = ro if ordered else sorted(ro, key=canon)
    sn = rn if ordered else sorted(rn, key=canon)
    if same(so, sn):
        res.update(identical=True, verdict="identical" + ("" if ordered else " (sorted: no ORDER BY)"), diff="")
        if not res["raw_text_identical"]:
            res["verdict"] += "; JSON text differs"
            res["diff"] = text_diff(po.stdout, pn.stdout)
    elif same(sorted(ro, key=canon), sorted(rn, key=canon)):
        res.update(identical=False, verdict="same rows, DIFFERENT ORDER", diff=first_diff(ro, rn))
    else:
        res.update(identical=False, verdict="DIFFERENT", diff=first_diff(so, sn))
    return res


def text_diff(a: str, b: str) -> str:
    la, lb = a.splitlines(), b.splitlines()
    for i, (x, y) in enumerate(zip(la, lb, strict=False)):
        if x != y:
            return f"line {i + 1}: old {x.strip()[:150]!r} vs new {y.strip()[:150]!r}"
    return f"lines {len(la)} vs {len(lb)}"


def markdown(summary: dict[str, Any]) -> str:
    """The per-query table and the table of every case."""
    cases = summary["cases"]
    lines = [
        f"- old: `{summary['commit_old']}`",
        f"- new: `{summary['commit_new']}`",
        f"- {len(cases)} cases ({len(summary['show_identical'])} queries with their defaults, "
        f"{len(cases) - len(summary['show_identical'])} variants), {sum(c['identical'] for c in cases)} identical; "
        f"raw JSON text identical in {sum(bool(c.get('raw_text_identical')) for c in cases)}",
        f"- `--list` text identical: {summary['list_text_identical']}; only old: {summary['only_old'] or 'none'}; "
        f"only new: {summary['only_new'] or 'none'}; parameter headers differ: "
        f"{summary['param_headers_differ'] or 'none'}",
        f"- `--show` identical: {all(summary['show_identical'].values())} "
        f"({sum(summary['show_identical'].values())} of {len(summary['show_identical'])})",
        f"- all identical: **{'yes' if summary['all_identical'] else 'NO'}**",
        "",
        "| query | default params | rows old | rows new | identical | variants (rows old / new) | order |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in summary["show_identical"]:
        mine = [c for c in cases if c["query"] == name]
        first, rest = mine[0], mine[1:]
        var_old = sum(c["rows_old"] or 0 for c in rest)
        var_new = sum(c["rows_new"] or 0 for c in rest)
        var_ok = "all identical" if all(c["identical"] for c in rest) else "NOT all identical"
        lines.append(f"| `{name}` | `{json.dumps(first['params'])}` | {first['rows_old']} | {first['rows_new']} | "
                     f"{'yes' if first['identical'] else 'NO'} | {len(rest)} ({var_old} / {var_new}), {var_ok} | "
                     f"{'ORDER BY' if first['ordered'] else 'none: rows sorted'} |")
    lines += ["", "| query | params | rows old | rows new | verdict |", "|---|---|---|---|---|"]
    for c in cases:
        diff = f" {c['diff'][:200]}" if c["diff"] else ""
        lines.append(f"| `{c['query']}` | `{json.dumps(c['params'])}` | {c['rows_old']} | {c['rows_new']} | "
                     f"{c['verdict']}{diff} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, default=DEFAULT_WORK,
                    help=f"folder the other paths default into (default: {DEFAULT_WORK})")
    ap.add_argument("--old", type=Path, default=None, help="the old checkout (default: WORK/old)")
    ap.add_argument("--new", type=Path, default=None, help="the new checkout (default: WORK/new)")
    ap.add_argument("--python", default=sys.executable, help="interpreter of the venv both sides use")
    ap.add_argument("--python-new", default=None, help="another interpreter for the new side (default: --python)")
    ap.add_argument("--graph", type=Path, default=None, help="graph.json written by fill.py (default: WORK/graph.json)")
    ap.add_argument("--out", type=Path, default=None,
                    help="folder for results.json and summary.md (default: WORK/results)")
    ap.add_argument("--query", action="append", default=[], metavar="NAME",
                    help="compare only this query (repeatable; default: every query both sides list)")
    a = ap.parse_args()
    work = a.work.resolve()
    paths = {k: (getattr(a, k) or work / d).resolve()
             for k, d in (("old", "old"), ("new", "new"), ("graph", "graph.json"), ("out", "results"))}
    for k in ("old", "new", "graph"):
        if not paths[k].exists():
            raise SystemExit(f"--{k} {paths[k]} does not exist")
    old, new = Side("old", paths["old"], a.python), Side("new", paths["new"], a.python_new or a.python)
    out: Path = paths["out"]
    out.mkdir(parents=True, exist_ok=True)
    graph = json.loads(paths["graph"].read_text())
    started = time.monotonic()
    summary: dict[str, Any] = {"imports": {"old": old.check_imports(), "new": new.check_imports()}}
    for side in (old, new):
        summary[f"commit_{side.name}"] = side.commit()

    lists = {s.name: s.cli(["query", "--list"]) for s in (old, new)}
    for s, p in lists.items():
        if p.returncode:
            raise SystemExit(f"{s}: query --list failed: {p.stderr}")
    infos = {s: parse_list(p.stdout) for s, p in lists.items()}
    summary["list_text_identical"] = lists["old"].stdout == lists["new"].stdout
    summary["only_old"] = sorted(set(infos["old"]) - set(infos["new"]))
    summary["only_new"] = sorted(set(infos["new"]) - set(infos["old"]))
    names = sorted(set(infos["old"]) & set(infos["new"]))
    if unknown := sorted(set(a.query) - set(names)):
        raise SystemExit(f"--query {unknown}: not listed by both sides")
    names = [n for n in names if not a.query or n in a.query]
    summary["param_headers_differ"] = [n for n in names if infos["old"][n] != infos["new"][n]]

    required = required_values(graph)
    extra = variants(graph)
    cases: list[dict[str, Any]] = []
    shows: dict[str, bool] = {}
    for name in names:
        show = {s.name: s.cli(["query", name, "--show"]).stdout for s in (old, new)}
        shows[name] = show["old"] == show["new"]
        ordered = "ORDER BY" in show["new"].upper()
        missing = [p for p, d in infos["new"][name].items() if d == "required" and p not in required]
        if missing:
            raise SystemExit(f"{name}: give required_values a value for {missing}")
        defaults = {p: required[p] for p, d in infos["new"][name].items() if d == "required"}
        for params in [defaults, *({**defaults, **v} for v in extra.get(name, []))]:
            res = compare_case(old, new, name, params, ordered)
            res["ordered"] = ordered
            cases.append(res)
            print(f"{name:20} {json.dumps(params):90.90} old={res['rows_old']} new={res['rows_new']} "
                  f"{res['verdict']} {res['diff'][:150]}", flush=True)
    summary["show_identical"] = shows
    summary["cases"] = cases
    summary["all_identical"] = all(c["identical"] for c in cases) and not summary["only_old"] \
        and not summary["only_new"]
    summary["seconds"] = round(time.monotonic() - started, 1)
    (out / "results.json").write_text(json.dumps(summary, indent=1, default=str))
    (out / "summary.md").write_text(markdown(summary))
    print(f"\n{len(cases)} cases, {sum(c['identical'] for c in cases)} identical; "
          f"--list identical: {summary['list_text_identical']}; --show identical: {all(shows.values())}; "
          f"{summary['seconds']} s; wrote {out / 'results.json'} and {out / 'summary.md'}")
    return 0 if summary["all_identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
