"""Concept labels of a circuit's neuron groups from a multimodal LLM, stored on the graph.

Two kinds of request, each with a three-part prompt (role, main instructions, answer form) as in NeurFlow
(Cao et al., ICLR 2025), Appendix G, kept in versioned files under ``neurflow/resources/prompts/``:

- **group caption** (``group-caption-v1``): a neuron group's most central patches; the answer gives the
  common features, a short label and a caption, stored on the ``NeuronGroup`` node;
- **feature evolution** (``feature-evolution-v1``): a group (group 1) and the lower-layer groups that feed it
  most (groups 2..N); the answer gives every group's features, how each lower group's features match the
  higher ones (or "no match") and a caption of how the higher feature forms, stored on each
  ``(lower)-[:FLOWS_TO]->(upper)`` edge.

Patch images are cropped from the original image files at the patch box (original pixels), resized and sent
as base64 data URLs; the circuit folder's thumbnail is the fallback when an original is missing or changed.
An answer that does not parse is stored raw (``labelRaw`` / ``evolutionRaw``) with a warning.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import math
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from neurflow.circuit import Circuit, GroupEdge, NeuronGroup
from neurflow.engine.models import file_sha256
from neurflow.errors import NeurflowError
from neurflow.format import THUMBNAIL_DIR
from neurflow.pictures import central_patches

log = logging.getLogger(__name__)

CAPTION_PROMPT = "group-caption"
EVOLUTION_PROMPT = "feature-evolution"
PROMPT_VERSION = "v1"
DETAILS = ("low", "high", "auto")


class LabellingError(NeurflowError, RuntimeError):
    """A labelling run that cannot go on; the message says why."""


# --------------------------------------------------------------------------- prompts


@dataclass(frozen=True)
class Prompt:
    """A versioned three-part prompt. ``id`` (``group-caption-v1``) is stored with every label."""

    name: str
    version: str
    role: str
    instructions: str
    answer_form: str

    @property
    def id(self) -> str:
        return f"{self.name}-{self.version}"

    def user_text(self, count: int) -> str:
        """Main instructions and answer form, with ``{count}`` filled in."""
        return f"{self.instructions}\n\n{self.answer_form}".replace("{count}", str(count))


_SECTIONS = {"role": "role", "instructions": "instructions", "answer form": "answer_form"}


def parse_prompt(text: str, source: str = "prompt") -> Prompt:
    """Reads the prompt format: ``# neurflow prompt: NAME`` and ``# version: vN`` header lines, other ``#``
    comments, and the parts ``[role]``, ``[instructions]``, ``[answer form]``."""
    name = version = None
    parts: dict[str, list[str]] = {}
    current: str | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            header = re.match(r"#\s*(neurflow prompt|version)\s*:\s*(\S+)", stripped, re.I)
            if header and header.group(1).lower() == "version":
                version = header.group(2)
            elif header:
                name = header.group(2)
            continue
        section = re.fullmatch(r"\[([a-z ]+)\]", stripped, re.I)
        if section:
            current = _SECTIONS.get(section.group(1).lower())
            if current is None:
                raise ValueError(f"{source}: unknown part [{section.group(1)}] (expected {', '.join(_SECTIONS)})")
            parts[current] = []
            continue
        if current is not None:
            parts[current].append(line.rstrip())
    missing = [s for s, key in _SECTIONS.items() if not "\n".join(parts.get(key, [])).strip()]
    if name is None or version is None or missing:
        raise ValueError(
            f"{source}: needs '# neurflow prompt: NAME', '# version: vN' and the parts "
            f"{', '.join(f'[{s}]' for s in _SECTIONS)}" + (f" (missing {', '.join(missing)})" if missing else "")
        )
    body = {key: _unwrap("\n".join(parts[key]).strip()) for key in _SECTIONS.values()}
    return Prompt(name=name, version=version, **body)


def _unwrap(text: str) -> str:
    """Joins the hard-wrapped lines of a paragraph; keeps blank lines, numbered items and answer-form lines."""
    out: list[str] = []
    for line in text.split("\n"):
        # numbered or bulleted items, "(...)" notes and answer-form lines ("Caption: <...>", "Features:")
        starts_item = bool(re.match(r"\s*(\d+\.\s|[-*]\s|\(|[A-Z][A-Za-z ]*\d*:\s*(<|$))", line))
        if out and out[-1] and line.strip() and not starts_item and not out[-1].endswith(":"):
            out[-1] = f"{out[-1]} {line.strip()}"
        else:
            out.append(line.strip())
    return "\n".join(out)


def prompt_path(name: str, version: str = PROMPT_VERSION) -> Path:
    return Path(str(resources.files("neurflow") / "resources" / "prompts" / f"{name}-{version}.txt"))


def load_prompt(name: str, version: str = PROMPT_VERSION) -> Prompt:
    """The prompt file ``resources/prompts/<name>-<version>.txt``; its header must name the same version."""
    path = prompt_path(name, version)
    if not path.is_file():
        raise LabellingError(f"no prompt {name!r} version {version!r} ({path})")
    prompt = parse_prompt(path.read_text(encoding="utf-8"), str(path))
    if (prompt.name, prompt.version) != (name, version):
        raise LabellingError(f"{path} declares {prompt.id}, not {name}-{version}")
    return prompt


# --------------------------------------------------------------------------- patch images


@dataclass(frozen=True)
class EncodedImage:
    patch: int
    mime: str
    data: bytes
    width: int
    height: int
    source: str  # "original" or "thumbnail"

    @property
    def data_url(self) -> str:
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"


def _encode(image: Image.Image, fmt: str = "JPEG", quality: int = 90) -> tuple[bytes, str]:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format=fmt, quality=quality)
    return buffer.getvalue(), Image.MIME[fmt]


class PatchImages:
    """Encodes a circuit's patches: crop of the original image at the patch box, longer side ``size``, JPEG;
    the folder's thumbnail (sent as stored, with its real MIME type) when the original is missing, unreadable
    or not the file the circuit was built from (other sha256)."""

    def __init__(self, circuit: Circuit, folder: str | Path | None, size: int = 224, check_sha256: bool = True):
        self.circuit = circuit
        self.folder = Path(folder) if folder is not None else None
        self.size = size
        self.check_sha256 = check_sha256
        self._patches = {p.id: p for p in circuit.patches}
        self._originals: dict[int, bool] = {}
        self._encoded: dict[int, EncodedImage | None] = {}
        self.fallbacks: list[int] = []

    def _original_ok(self, image_index: int) -> bool:
        if image_index not in self._originals:
            record = self.circuit.images[image_index]
            path = Path(record.path)
            ok = path.is_file()
            if ok and self.check_sha256:
                ok = file_sha256(path) == record.sha256
                if not ok:
                    log.warning("%s is not the image the circuit was built from (sha256 differs)", path)
            self._originals[image_index] = ok
        return self._originals[image_index]

    def get(self, patch_id: int) -> EncodedImage | None:
        if patch_id not in self._encoded:
            self._encoded[patch_id] = self._load(patch_id)
        return self._encoded[patch_id]

    def _load(self, patch_id: int) -> EncodedImage | None:
        record = self._patches[patch_id]
        if self._original_ok(record.image):
            try:
                with Image.open(self.circuit.images[record.image].path) as original:
                    crop = original.convert("RGB").crop(record.box)
                scale = self.size / max(crop.size)
                crop = crop.resize((max(1, round(crop.width * scale)), max(1, round(crop.height * scale))),
                                   Image.Resampling.BICUBIC)
                data, mime = _encode(crop)
                return EncodedImage(patch_id, mime, data, crop.width, crop.height, "original")
            except (OSError, UnidentifiedImageError, ValueError) as error:
                log.warning("cannot crop patch %d from %s: %s", patch_id, self.circuit.images[record.image].path,
                            error)
        thumb = self.folder / THUMBNAIL_DIR / f"{patch_id}.jpg" if self.folder is not None else None
        if thumb is not None and thumb.is_file():
            try:
                data = thumb.read_bytes()
                with Image.open(io.BytesIO(data)) as image:
                    fmt, width, height = image.format, image.width, image.height
                    if fmt not in ("JPEG", "PNG", "WEBP", "GIF"):
                        data, mime = _encode(image, "PNG")
                        fmt = "PNG"
                mime = Image.MIME[fmt or "PNG"]
                self.fallbacks.append(patch_id)
                return EncodedImage(patch_id, mime, data, width, height, "thumbnail")
            except (OSError, UnidentifiedImageError) as error:
                log.warning("cannot read thumbnail %s: %s", thumb, error)
        warnings.warn(f"patch {patch_id}: neither the original image nor a thumbnail can be read; left out",
                      stacklevel=2)
        return None

    def of(self, patch_ids: Sequence[int]) -> list[EncodedImage]:
        return [image for image in (self.get(p) for p in patch_ids) if image is not None]


# --------------------------------------------------------------------------- requests


@dataclass
class LabelRequest:
    """One chat request. ``kind``: ``caption`` (``group`` alone) or ``evolution`` (``group`` = group 1, fed by
    ``lower`` = groups 2..N with the circuit's group-edge ``weights``)."""

    kind: str
    circuit_id: str
    group: str
    layer: str
    prompt: Prompt
    messages: list[dict[str, Any]]
    images: list[EncodedImage]
    lower: list[str] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    images_per_group: list[int] = field(default_factory=list)

    @property
    def groups(self) -> list[str]:
        return [self.group, *self.lower]

    @property
    def text(self) -> str:
        """Every text part, system message first."""
        parts: list[str] = []
        for message in self.messages:
            content = message["content"]
            if isinstance(content, str):
                parts.append(content)
            else:
                parts.extend(p["text"] for p in content if p.get("type") == "text")
        return "\n".join(parts)


def _image_part(image: EncodedImage, detail: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": image.data_url, "detail": detail}}


def caption_request(circuit: Circuit, group: NeuronGroup, images: PatchImages, prompt: Prompt,
                    max_images: int = 8, detail: str = "low") -> LabelRequest | None:
    """The caption request of ``group`` with its ``max_images`` most central patches (None without images)."""
    encoded = images.of(central_patches(circuit, group, max_images))
    if not encoded:
        warnings.warn(f"group {group.id}: no patch image can be read; not captioned", stacklevel=2)
        return None
    content: list[dict[str, Any]] = [{"type": "text", "text": prompt.user_text(len(encoded))}]
    content += [_image_part(image, detail) for image in encoded]
    messages = [{"role": "system", "content": prompt.role}, {"role": "user", "content": content}]
    return LabelRequest("caption", circuit.id, group.id, group.layer, prompt, messages, encoded,
                        images_per_group=[len(encoded)])


def lower_groups(circuit: Circuit, group: NeuronGroup, count: int, strongest: str | None = None) -> list[GroupEdge]:
    """The ``count`` group edges into ``group`` with the largest positive weights; ``strongest`` (the group's
    next group on the circuit's strongest path down) is added when it is not among them, so the explained
    chain of the circuit has a caption at every step."""
    edges = sorted((e for e in circuit.group_edges if e.upper == group.id and e.weight > 0),
                   key=lambda e: (-e.weight, e.lower))
    chosen = edges[:count]
    if strongest is not None and all(e.lower != strongest for e in chosen):
        chosen += [e for e in edges if e.lower == strongest]
    return chosen


def evolution_request(circuit: Circuit, group: NeuronGroup, edges: Sequence[GroupEdge], images: PatchImages,
                      prompt: Prompt, per_group: int = 4, detail: str = "low") -> LabelRequest | None:
    """Group 1 = ``group``, groups 2..N = the lower ends of ``edges``, each followed by its central patches."""
    by_id = {g.id: g for g in circuit.neuron_groups}
    members = [group] + [by_id[e.lower] for e in edges]
    encoded = [images.of(central_patches(circuit, g, per_group)) for g in members]
    kept = [(g, e, im) for g, e, im in zip(members[1:], edges, encoded[1:], strict=True) if im]
    if not encoded[0] or not kept:
        warnings.warn(f"group {group.id}: no patch images for the feature evolution; not explained", stacklevel=2)
        return None
    count = 1 + len(kept)
    content: list[dict[str, Any]] = [{"type": "text", "text": prompt.user_text(count)}]
    sections = [(group, encoded[0], "higher layer")] + [(g, im, "lower layer") for g, _, im in kept]
    for number, (_, ims, where) in enumerate(sections, start=1):
        content.append({"type": "text", "text": f"Group {number} ({where}):"})
        content += [_image_part(image, detail) for image in ims]
    messages = [{"role": "system", "content": prompt.role}, {"role": "user", "content": content}]
    return LabelRequest(
        "evolution", circuit.id, group.id, group.layer, prompt, messages,
        [im for _, ims, _ in sections for im in ims],
        lower=[g.id for g, _, _ in kept], weights=[e.weight for _, e, _ in kept],
        images_per_group=[len(ims) for _, ims, _ in sections],
    )


# --------------------------------------------------------------------------- token estimate


def image_tokens(width: int, height: int, detail: str) -> int:
    """OpenAI's documented cost of one image for GPT-4o-class models: ``low``: 85 tokens; ``high`` (and
    ``auto``, counted as high): fit in 2048x2048, shortest side down to 768, then 170 per 512-px tile + 85."""
    if detail == "low":
        return 85
    w, h = float(width), float(height)
    if max(w, h) > 2048:
        scale = 2048 / max(w, h)
        w, h = w * scale, h * scale
    if min(w, h) > 768:
        scale = 768 / min(w, h)
        w, h = w * scale, h * scale
    return 85 + 170 * math.ceil(w / 512) * math.ceil(h / 512)


def estimate_tokens(request: LabelRequest, detail: str) -> tuple[int, int]:
    """(text tokens by characters / 4, image tokens by the tile formula) of the request's input."""
    text = math.ceil(len(request.text) / 4)
    images = sum(image_tokens(im.width, im.height, detail) for im in request.images)
    return text, images


# --------------------------------------------------------------------------- parsing


@dataclass
class CaptionAnswer:
    raw: str
    parsed: bool
    caption: str | None = None
    label: str | None = None
    common_features: list[str] = field(default_factory=list)


@dataclass
class EvolutionAnswer:
    raw: str
    parsed: bool
    caption: str | None = None
    features: dict[int, str] = field(default_factory=dict)
    matches: dict[int, str] = field(default_factory=dict)


def _clean_line(line: str) -> str:
    """Drops markdown decoration: headings, bullets, bold/italic markers, surrounding quotes."""
    line = line.strip()
    line = re.sub(r"^#{1,6}\s*", "", line)
    line = re.sub(r"^(?:[-*\u2022]|\d+[.)])\s+", "", line)
    line = line.replace("**", "").replace("__", "")
    return line.strip()


def _fields(text: str, names: Sequence[str]) -> list[tuple[str, str]]:
    """``(name, value)`` in order for lines ``Name: value``; a value runs on over the following lines."""
    pattern = re.compile(r"^(" + "|".join(re.escape(n) for n in names) + r")\s*:\s*(.*)$", re.I)
    found: list[tuple[str, list[str]]] = []
    for raw_line in text.splitlines():
        line = _clean_line(raw_line)
        match = pattern.match(line)
        if match:
            found.append((match.group(1).lower(), [match.group(2).strip()]))
        elif found and line:
            found[-1][1].append(line)
    return [(name, "\n".join(v for v in lines if v).strip()) for name, lines in found]


def _strip_quotes(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    return text


def _split_features(text: str) -> list[str]:
    items = [part for line in text.splitlines() for part in re.split(r";\s*", line)]
    return [_strip_quotes(item).rstrip(".").strip() for item in items if _strip_quotes(item).strip(" .")]


def parse_caption(text: str) -> CaptionAnswer:
    """Reads ``Common features: ...``, ``Label: ...``, ``Caption: ...`` (any order, markdown tolerated).

    Parsed when there is a non-empty caption; without a label, the first common feature (or the caption's
    first clause) is the label.
    """
    values: dict[str, str] = {}
    for name, value in _fields(text or "", ("common features", "features", "label", "caption")):
        values.setdefault("common features" if name == "features" else name, value)
    caption = _strip_quotes(" ".join(values.get("caption", "").split()))
    if not caption:
        return CaptionAnswer(raw=text, parsed=False)
    features = _split_features(values.get("common features", ""))
    label = _strip_quotes(" ".join(values.get("label", "").split())).rstrip(".")
    if not label:
        label = features[0] if features else re.split(r"[.;,:]", caption)[0]
        label = label[:80].strip()
    return CaptionAnswer(raw=text, parsed=True, caption=caption, label=label, common_features=features)


_GROUP_LINE = re.compile(r"^group\s*(\d+)\b[^:]*:\s*(.*)$", re.I)


def parse_evolution(text: str, count: int) -> EvolutionAnswer:
    """Reads the ``Features:`` and ``Matches:`` sections (``Group N: ...`` lines) and ``Caption: ...``.

    Parsed when there is a non-empty caption; group numbers outside 1..count are ignored.
    """
    section: str | None = None
    features: dict[int, str] = {}
    matches: dict[int, str] = {}
    caption_lines: list[str] | None = None
    for raw_line in (text or "").splitlines():
        line = _clean_line(raw_line)
        if not line:
            continue
        head = re.match(r"^(features|common features|matches|match|caption)\s*(?::\s*(.*))?$", line, re.I)
        if head:
            name, rest = head.group(1).lower(), (head.group(2) or "").strip()
            section = "caption" if name == "caption" else "matches" if name.startswith("match") else "features"
            if section == "caption":
                caption_lines = [rest]
                continue
            if not rest:
                continue
            line = rest  # "Features: Group 1: ..." on one line
        group = _GROUP_LINE.match(line)
        if group and section in ("features", "matches"):
            number = int(group.group(1))
            if 1 <= number <= count:
                target = features if section == "features" else matches
                target.setdefault(number, _strip_quotes(group.group(2)))
            continue
        if section == "caption" and caption_lines is not None:
            caption_lines.append(line)
        elif section in ("features", "matches"):
            target = features if section == "features" else matches
            if target:
                last = max(target)
                target[last] = f"{target[last]} {line}".strip()
    caption = _strip_quotes(" ".join(" ".join(caption_lines or []).split()))
    if not caption:
        return EvolutionAnswer(raw=text, parsed=False, features=features, matches=matches)
    return EvolutionAnswer(raw=text, parsed=True, caption=caption, features=features, matches=matches)


def is_no_match(text: str | None) -> bool:
    return text is not None and bool(re.match(r"^\W*no\s+match", text.strip(), re.I))


# --------------------------------------------------------------------------- graph


def _iso_to_utc(value: str | None) -> str:
    if value:
        try:
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=timezone.utc)
            return parsed.isoformat()
        except ValueError:
            pass
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


_FIND_CIRCUITS = """
MATCH (c:Circuit {complete: true})-[:FOR_CLASS]->(cl:Class {index: $classIndex})
MATCH (c)-[:OF_MODEL]->(m:Model)
WHERE (m.name = $model OR m.key = $model) AND ($circuitId IS NULL OR c.id = $circuitId)
RETURN c.id AS id, c.folder AS folder, m.key AS model, c.ingestedAt AS ingestedAt
ORDER BY c.ingestedAt DESC, c.id
"""


@dataclass(frozen=True)
class StoredCircuit:
    id: str
    folder: str | None
    model: str


def find_stored_circuits(driver: Any, model: str, class_index: int, circuit_id: str | None = None,
                         database: str | None = None) -> list[StoredCircuit]:
    """Complete circuits of ``model`` (name or ``name@weights`` key) and the class in the graph, newest first."""
    import neo4j

    records, _, _ = driver.execute_query(
        _FIND_CIRCUITS, model=model, classIndex=class_index, circuitId=circuit_id, database_=database,
        routing_=neo4j.RoutingControl.READ,
    )
    return [StoredCircuit(r["id"], r["folder"], r["model"]) for r in records]


_WRITE_CAPTION = """
MATCH (g:NeuronGroup {key: $key})
SET g.label = $label, g.caption = $caption, g.commonFeatures = $features, g.labelModel = $model,
    g.labelPromptVersion = $promptVersion, g.labelledAt = datetime($at), g.labelRaw = $raw,
    g.labelRequest = $requestKey
RETURN count(g) AS written
"""

_WRITE_EVOLUTION = """
UNWIND $rows AS r
MATCH (lower:NeuronGroup {key: r.lower})-[f:FLOWS_TO {circuitId: $circuitId}]->(upper:NeuronGroup {key: $upper})
SET f.evolutionCaption = $caption, f.evolutionMatch = r.match, f.evolutionMatched = r.matched,
    f.evolutionLowerFeatures = r.features, f.evolutionUpperFeatures = $upperFeatures,
    f.evolutionFeatures = $features, f.evolutionMatches = $matches, f.evolutionGroups = $groups,
    f.evolutionModel = $model, f.evolutionPromptVersion = $promptVersion, f.evolutionAt = datetime($at),
    f.evolutionRaw = $raw, f.evolutionRequest = $requestKey
RETURN count(f) AS written
"""


def group_key(circuit_id: str, group_id: str) -> str:
    """Key of a NeuronGroup node (see neurflow.graph.store): ``circuitId|groupId``."""
    return f"{circuit_id}|{group_id}"


def write_caption(driver: Any, request: LabelRequest, answer: CaptionAnswer, model: str, at: str,
                  request_key: str | None = None, database: str | None = None) -> int:
    """Stores a caption answer on the group's node; returns the number of nodes written (0: not in the graph)."""
    records, _, _ = driver.execute_query(
        _WRITE_CAPTION, key=group_key(request.circuit_id, request.group), label=answer.label,
        caption=answer.caption, features=answer.common_features, model=model, promptVersion=request.prompt.id,
        at=_iso_to_utc(at), raw=None if answer.parsed else answer.raw, requestKey=request_key,
        database_=database,
    )
    return int(records[0]["written"])


def write_evolution(driver: Any, request: LabelRequest, answer: EvolutionAnswer, model: str, at: str,
                    request_key: str | None = None, database: str | None = None) -> int:
    """Stores a feature-evolution answer on every ``(lower)-[:FLOWS_TO]->(group)`` edge of the request;
    returns the number of edges written."""
    cid = request.circuit_id
    numbered = {n: g for n, g in enumerate(request.groups, start=1)}
    rows = [
        {"lower": group_key(cid, g), "match": answer.matches.get(n), "features": answer.features.get(n),
         "matched": None if answer.matches.get(n) is None else not is_no_match(answer.matches.get(n))}
        for n, g in numbered.items() if n > 1
    ]
    records, _, _ = driver.execute_query(
        _WRITE_EVOLUTION, rows=rows, circuitId=cid, upper=group_key(cid, request.group), caption=answer.caption,
        upperFeatures=answer.features.get(1),
        features=json.dumps({numbered[n]: f for n, f in sorted(answer.features.items())}),
        matches=json.dumps({numbered[n]: m for n, m in sorted(answer.matches.items())}),
        groups=request.groups, model=model, promptVersion=request.prompt.id, at=_iso_to_utc(at),
        raw=None if answer.parsed else answer.raw, requestKey=request_key, database_=database,
    )
    return int(records[0]["written"])


def stored_group_count(driver: Any, circuit_id: str, database: str | None = None) -> int:
    import neo4j

    records, _, _ = driver.execute_query(
        "MATCH (c:Circuit {id: $id, complete: true})-[:HAS_GROUP]->(g:NeuronGroup) RETURN count(g) AS n",
        id=circuit_id, database_=database, routing_=neo4j.RoutingControl.READ,
    )
    return int(records[0]["n"])


# --------------------------------------------------------------------------- planning and running


@dataclass
class LabelSettings:
    """What to ask: ``layers`` (None: all) limits the groups captioned and the upper groups explained."""

    layers: list[str] | None = None
    max_images: int = 8
    evolution_images: int = 4
    max_lower: int = 3
    detail: str = "low"
    image_size: int = 224
    captions: bool = True
    evolution: bool = True
    max_tokens: int = 500
    temperature: float = 0.0

    def __post_init__(self) -> None:
        if self.detail not in DETAILS:
            raise ValueError(f"detail must be one of {DETAILS}, not {self.detail!r}")
        for name in ("max_images", "evolution_images", "max_lower", "image_size", "max_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name.replace('_', '-')} must be at least 1")


def plan_requests(circuit: Circuit, folder: str | Path | None, settings: LabelSettings,
                  caption_prompt: Prompt | None = None, evolution_prompt: Prompt | None = None) -> list[LabelRequest]:
    """Every request of a labelling run: captions from the top layer down, then feature evolutions."""
    from neurflow.analysis import group_flow

    if settings.layers is not None:
        unknown = [layer for layer in settings.layers if layer not in circuit.layers]
        if unknown:
            raise LabellingError(f"the circuit has no layer {', '.join(map(repr, unknown))}; "
                                 f"its layers: {', '.join(circuit.layers)}")
    layers = [layer for layer in circuit.layers if settings.layers is None or layer in settings.layers]
    images = PatchImages(circuit, folder, size=settings.image_size)
    requests: list[LabelRequest] = []
    if settings.captions:
        prompt = caption_prompt or load_prompt(CAPTION_PROMPT)
        for layer in layers:
            for group in circuit.groups_of_layer(layer):
                request = caption_request(circuit, group, images, prompt, settings.max_images, settings.detail)
                if request is not None:
                    requests.append(request)
    if settings.evolution:
        prompt = evolution_prompt or load_prompt(EVOLUTION_PROMPT)
        flow = group_flow(circuit)
        for layer in layers:
            for group in circuit.groups_of_layer(layer):
                edges = lower_groups(circuit, group, settings.max_lower, flow[group.id].down_next)
                if not edges:
                    continue
                request = evolution_request(circuit, group, edges, images, prompt, settings.evolution_images,
                                            settings.detail)
                if request is not None:
                    requests.append(request)
    if images.fallbacks:
        warnings.warn(f"{len(set(images.fallbacks))} patch(es) sent as their thumbnail: original images missing "
                      "or changed", stacklevel=2)
    return requests


@dataclass
class LabelReport:
    requests: int = 0
    cached: int = 0
    sent: int = 0
    parsed: int = 0
    unparsed: int = 0
    written: int = 0
    results: list[tuple[LabelRequest, CaptionAnswer | EvolutionAnswer]] = field(default_factory=list)


def run_requests(requests: Sequence[LabelRequest], client: Any, settings: LabelSettings, driver: Any = None,
                 database: str | None = None, echo: Callable[[str], None] | None = None) -> LabelReport:
    """Sends (or reads from the cache) every request, parses the answers and writes them to the graph
    (``driver`` None: no writes). An answer that does not parse is stored raw, with a warning."""
    say = echo or (lambda _msg: None)
    report = LabelReport(requests=len(requests))
    for number, request in enumerate(requests, start=1):
        result = client.complete(request.messages, prompt_version=request.prompt.id,
                                 max_tokens=settings.max_tokens, temperature=settings.temperature)
        report.cached += int(result.cached)
        report.sent += int(not result.cached)
        answer: CaptionAnswer | EvolutionAnswer
        if request.kind == "caption":
            answer = parse_caption(result.text)
            summary = answer.label or ""
        else:
            answer = parse_evolution(result.text, len(request.groups))
            summary = answer.caption or ""
        if result.finish_reason == "length":
            warnings.warn(f"{request.kind} of {request.group}: the answer was cut at max-tokens "
                          f"({settings.max_tokens}); raise --max-tokens", stacklevel=2)
        if answer.parsed:
            report.parsed += 1
        else:
            report.unparsed += 1
            warnings.warn(
                f"{request.kind} of {request.group}: the answer does not follow the answer form; stored raw",
                stacklevel=2,
            )
        if driver is not None:
            write = write_caption if request.kind == "caption" else write_evolution
            written = write(driver, request, answer, result.model, result.created,  # type: ignore[arg-type]
                            result.key, database)
            if written == 0:
                raise LabellingError(
                    f"{request.group} of circuit {request.circuit_id} is not in the graph; ingest the circuit first"
                )
            report.written += written
        report.results.append((request, answer))
        where = request.group if request.kind == "caption" else f"{request.group} <- {', '.join(request.lower)}"
        source = "cache" if result.cached else "sent"
        shown = summary if len(summary) <= 90 else summary[:87] + "..."
        say(f"[{number}/{len(requests)}] {request.kind:9s} {where} ({source}): "
            f"{shown if answer.parsed else 'UNPARSED, stored raw'}")
    return report
