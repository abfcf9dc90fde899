"""``neurflow serve``: a local, read-only web app over the graph (Flask). Every page is named queries of
:mod:`neurflow.workbench.queries`, in read transactions with a time limit, so a page and Python give the same
answers; the class page's graph view loads only the pruned subgraph it shows.

>>> from neurflow.workbench import connect
>>> app = create_app(connect())                       # doctest: +SKIP
>>> app.run("127.0.0.1", 8765)                        # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask, abort, jsonify, render_template, request, send_file, url_for
from markupsafe import Markup

from neurflow.errors import NeurflowError
from neurflow.graph.query_errors import EmptyAnswerError
from neurflow.serve.files import NotServedError, boxed_image, thumbnail_file
from neurflow.serve.uploads import (
    MAX_UPLOAD_BYTES,
    ImageChoices,
    ModelCache,
    UploadError,
    preview_png,
    search_uploaded,
    uploaded_image,
)
from neurflow.serve.views import families, layered_graph, split_view
from neurflow.workbench import queries
from neurflow.workbench.client import GraphClient

PAGE_TIMEOUT = 10.0
"""Seconds a page's query may run before it is stopped (a page must answer, not hang)."""
DEFAULT_PRUNE = 0.8
CLASS_SECTIONS = (  # (title, query, extra parameters): the class page's tables, each from one named query
    # whole circuits: the SIMILAR_TO written at ingestion (a pruned view is computed per request: 1 s at 1,000 classes)
    ("Most similar classes", "class_similarity", {"limit": 8}),
    ("Class-specific groups", "class_specific", {"limit": 8, "thumbnails": 0}),
    ("Coverage", "circuit_coverage", {}),
    ("Grouping stability", "group_stability", {}),
    ("Bias paths", "bias_paths", {"n": 3}),
    ("Explained chain", "explained_chain", {}),
    ("Masking experiments", "masking_experiments", {"limit": 10}),
    ("Validation studies", "validation_summary", {"limit": 10}),
    ("Fidelity", "fidelity_summary", {}),
)
NO_CIRCUIT_PARAM = {"masking_experiments", "validation_summary", "fidelity_summary"}
SHOWN_COLUMNS = 9  # a section's table shows its first columns; the JSON API has them all
MATRIX_CLASSES = 60
"""The atlas draws the similarity matrix of a family's first classes (a search narrows which)."""


def create_app(graph: GraphClient, weights: str | None = None, device: str | None = None,
               images: str | Path | None = None) -> Flask:
    """The app over ``graph`` (its connection is used read-only; the caller closes it). ``weights``, ``device``:
    how search by image loads a model (default: its pretrained weights, CUDA when present); ``images``: a folder
    whose images the search page offers to pick (instead of uploading one)."""
    offered = ImageChoices(images)
    app = Flask(__name__, static_folder="static", template_folder="templates")
    app.config["MAX_CONTENT_LENGTH"] = MAX_UPLOAD_BYTES  # a larger upload is refused (413) before it is read
    models = ModelCache(weights, device)

    def query(name: str, **params: Any) -> list[dict[str, Any]]:
        function: Callable[..., Any] = getattr(queries, name)
        return function(graph, raw=True, timeout=PAGE_TIMEOUT, **params)

    def circuit_row(circuit_id: str) -> dict[str, Any]:
        rows = query("atlas_classes", circuit=circuit_id)
        if not rows:
            abort(404, f"no complete circuit {circuit_id!r} in the graph")
        return rows[0]

    def folder_of(circuit_id: str) -> str | None:
        rows = query("circuit_files", circuit=circuit_id)
        return rows[0]["folder"] if rows else None

    @app.errorhandler(EmptyAnswerError)
    def empty_answer(error: EmptyAnswerError) -> tuple[str, int]:
        return render_template("message.html", title="Nothing to show", message=str(error)), 404

    @app.errorhandler(404)
    def not_found(error: Any) -> tuple[str, int]:
        return render_template("message.html", title="Not found", message=getattr(error, "description", "")), 404

    @app.get("/")
    def atlas() -> str:
        search = request.args.get("q", "").strip() or None
        rows = query("atlas_classes", search=search)
        return render_template("atlas.html", families=families(rows), search=search or "", count=len(rows),
                               matrix_classes=MATRIX_CLASSES)

    @app.get("/atlas/similarity.png")
    def similarity_png() -> Any:
        family = request.args.get("family", "")
        search = request.args.get("q", "").strip() or None
        rows = [r for r in query("atlas_classes", search=search) if r["family"] == family][:MATRIX_CLASSES]
        if len(rows) < 2:
            abort(404, "a similarity matrix needs two classes of one family")
        order = {r["circuit"]: i for i, r in enumerate(rows)}
        pairs = {(order[p["a"]], order[p["b"]]): p["weightedJaccard"]
                 for p in query("similarity_matrix", circuits=",".join(order))}
        from neurflow.pictures import figure_png, similarity_matrix_figure

        figure = similarity_matrix_figure([f"{r['class']} ({r['index']})" for r in rows], pairs)
        return app.response_class(figure_png(figure), mimetype="image/png")

    @app.get("/class/<circuit_id>")
    def class_page(circuit_id: str) -> str:
        row = circuit_row(circuit_id)
        sections = []
        for title, name, extra in CLASS_SECTIONS:
            params = {"class_": str(row["index"]), "model": row["model"], **extra}
            if name not in NO_CIRCUIT_PARAM:
                params["circuit"] = circuit_id
            try:
                rows = query(name, **params)
                sections.append({"title": title, "query": name.replace("_", "-"), "rows": rows, "note": ""})
            except EmptyAnswerError as error:
                sections.append({"title": title, "query": name.replace("_", "-"), "rows": [], "note": str(error)})
        return render_template("class.html", circuit=row, sections=sections, prune=DEFAULT_PRUNE,
                               shown=SHOWN_COLUMNS)

    @app.get("/api/circuit/<circuit_id>")
    def circuit_api(circuit_id: str) -> Any:
        prune = _prune(request.args.get("prune"))
        groups, edges = split_view(query("circuit_view", circuit=circuit_id, prune=prune))
        if not groups:
            abort(404, f"no circuit {circuit_id!r} in the graph")
        return jsonify(layered_graph(groups, edges, lambda key: patch_url(circuit_id, key)) | {"prune": prune})

    @app.get("/group/<circuit_id>/<path:group_id>")
    def group_page(circuit_id: str, group_id: str) -> str:
        rows = query("group_detail", circuit=circuit_id, group=group_id)
        if not rows:
            abort(404, f"no group {group_id!r} in circuit {circuit_id!r}")
        group = rows[0]
        for patch in group["patches"]:
            patch["url"] = patch_url(circuit_id, patch["key"])
        return render_template("group.html", group=group)

    @app.get("/neuron/<path:neuron>")
    def neuron_page(neuron: str) -> str:
        model = request.args.get("model") or None
        rows = query("neuron_classes", neuron=neuron, model=model, limit=100)
        return render_template("neuron.html", neuron=neuron, rows=rows)

    @app.get("/search")
    def search() -> str:
        text = request.args.get("q", "").strip()
        rows: list[dict[str, Any]] = []
        note = ""
        if text:
            try:
                rows = query("search_concepts", text=text, limit=50, thumbnails=0)
            except EmptyAnswerError as error:
                note = str(error)
        return render_template("search.html", text=text, rows=rows, note=note)

    def patch_url(circuit_id: str, key: str) -> str:
        return url_for("thumbnail", circuit_id=circuit_id, key=key)

    @app.get("/search/image")
    def image_search_form() -> str:
        return render_template("image_search.html", models=atlas_models(), matches=None, note="",
                               choices=offered.names)

    @app.post("/search/image")
    def image_search() -> tuple[str, int]:
        model = request.form.get("model", "")
        upload = request.files.get("image")
        picked = request.form.get("pick", "")
        if model not in atlas_models():
            return image_search_page(f"no circuits of model {model!r} in the graph", 400)
        if (upload is None or not upload.filename) and not picked:
            return image_search_page("choose an image file to upload" + (" or one of the folder's" if offered.names
                                                                           else ""), 400)
        try:
            with offered.opened(picked) if picked else uploaded_image(upload.stream) as path:  # type: ignore[union-attr]
                matches = search_uploaded(graph, models.get(model), path)
                preview = preview_png(path, matches[0].box if matches else None)
        except UploadError as error:
            return image_search_page(str(error), 400)
        except NeurflowError as error:
            return image_search_page(str(error), 409)
        return render_template("image_search.html", models=atlas_models(), matches=matches, note="",
                               model=model, preview=preview, choices=offered.names), 200

    def image_search_page(note: str, status: int) -> tuple[str, int]:
        return render_template("image_search.html", models=atlas_models(), matches=None, note=note,
                               choices=offered.names), status

    def atlas_models() -> list[str]:
        return sorted({r["model"] for r in query("atlas_classes")})

    @app.errorhandler(413)
    def too_large(error: Any) -> tuple[str, int]:
        return image_search_page(f"the upload is larger than {MAX_UPLOAD_BYTES // 2**20} MiB", 413)

    @app.get("/files/<circuit_id>/patches/<key>.jpg")
    def thumbnail(circuit_id: str, key: str) -> Any:
        try:
            return send_file(thumbnail_file(folder_of(circuit_id), key), mimetype="image/jpeg", max_age=3600)
        except NotServedError as error:
            abort(404, str(error))

    @app.get("/files/<circuit_id>/images/<sha256>.png")
    def image(circuit_id: str, sha256: str) -> Any:
        rows = query("circuit_files", circuit=circuit_id, image=sha256)
        path = rows[0]["imagePath"] if rows else None
        if not path or not Path(path).is_file():
            abort(404, f"image {sha256[:12]} is not an image of circuit {circuit_id!r} on this machine")
        box = _box(request.args.get("box"))
        try:
            return app.response_class(boxed_image(path, box), mimetype="image/png")
        except NotServedError as error:
            abort(404, str(error))

    @app.template_filter("cell")
    def cell(value: Any) -> Markup | str:
        if isinstance(value, float):
            return f"{value:.3g}"
        if isinstance(value, list):
            return ", ".join(str(cell(v)) for v in value[:12]) + (" ..." if len(value) > 12 else "")
        if isinstance(value, dict):
            return " ".join(f"{k}={cell(v)}" for k, v in value.items())
        return "" if value is None else str(value)

    return app


def _prune(text: str | None) -> float:
    """The share to keep, in (0, 1]; a 400 for anything else."""
    if text is None:
        return DEFAULT_PRUNE
    try:
        value = float(text)
    except ValueError:
        abort(400, f"prune must be a number in (0, 1], not {text!r}")
    if not 0 < value <= 1:
        abort(400, f"prune must be in (0, 1], not {value}")
    return value


def _box(text: str | None) -> list[int] | None:
    if not text:
        return None
    parts = text.split(",")
    if len(parts) != 4 or not all(p.strip().lstrip("-").isdigit() for p in parts):
        abort(400, "box must be four integers x0,y0,x1,y1")
    return [int(p) for p in parts]
