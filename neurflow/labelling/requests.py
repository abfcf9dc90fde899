"""The chat requests of a labelling run and their token estimate.

- **group caption**: a group's most central patches after the caption prompt;
- **feature evolution**: a group (group 1) and the lower-layer groups that feed it most (groups 2..N), each
  after a ``Group k (higher|lower layer):`` text part.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from neurflow.circuit import Circuit, GroupEdge, NeuronGroup
from neurflow.labelling.patch_images import EncodedImage, PatchImages
from neurflow.labelling.prompts import Prompt
from neurflow.pictures import central_patches

# The image detail asked of the endpoint; it also decides the token estimate (``auto`` is counted as high).
DETAILS = ("low", "high", "auto")


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
