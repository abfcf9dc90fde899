"""The chat requests (caption, feature evolution) and their token estimate."""

from __future__ import annotations

from pathlib import Path

from neurflow.circuit import Circuit
from neurflow.labelling.patch_images import PatchImages
from neurflow.labelling.prompts import CAPTION_PROMPT, EVOLUTION_PROMPT, load_prompt
from neurflow.labelling.requests import (
    caption_request,
    estimate_tokens,
    evolution_request,
    image_tokens,
    lower_groups,
)
from neurflow.labelling.run import LabelSettings, plan_requests
from neurflow.pictures import central_patches
from tests.labelling.support import group_of


def test_caption_request_shape(tiny: tuple[Circuit, Path]) -> None:
    circuit, folder = tiny
    prompt = load_prompt(CAPTION_PROMPT)
    group = group_of(circuit, "_blocks.15/g1")
    request = caption_request(circuit, group, PatchImages(circuit, folder), prompt, max_images=3)
    assert request is not None and request.kind == "caption" and request.group == "_blocks.15/g1"
    system, user = request.messages
    assert system == {"role": "system", "content": prompt.role}
    assert user["role"] == "user"
    text, *images = user["content"]
    assert text == {"type": "text", "text": prompt.user_text(3)} and "The 3 images" in text["text"]
    assert [im.patch for im in request.images] == central_patches(circuit, group, 3) == [4, 5, 6]
    for part, encoded in zip(images, request.images, strict=True):
        assert part["type"] == "image_url" and part["image_url"]["detail"] == "low"
        assert part["image_url"]["url"] == encoded.data_url
        assert part["image_url"]["url"].startswith("data:image/jpeg;base64,")


def test_lower_groups_and_evolution_request_shape(tiny: tuple[Circuit, Path]) -> None:
    circuit, folder = tiny
    top = group_of(circuit, "_fc/g0")
    # Positive weights only, largest first; the strongest path's next group is always included.
    assert [e.lower for e in lower_groups(circuit, top, 3)] == ["_blocks.15/g0", "_blocks.15/g1"]
    assert [e.lower for e in lower_groups(circuit, top, 1)] == ["_blocks.15/g0"]
    assert [e.lower for e in lower_groups(circuit, top, 1, strongest="_blocks.15/g1")] == \
        ["_blocks.15/g0", "_blocks.15/g1"]
    prompt = load_prompt(EVOLUTION_PROMPT)
    edges = lower_groups(circuit, top, 3)
    request = evolution_request(circuit, top, edges, PatchImages(circuit, folder), prompt, per_group=2)
    assert request is not None and request.groups == ["_fc/g0", "_blocks.15/g0", "_blocks.15/g1"]
    assert request.weights == [0.5, 0.3] and request.images_per_group == [2, 2, 2]
    system, user = request.messages
    assert system["role"] == "system" and system["content"] == prompt.role
    kinds = [p["type"] if p["type"] == "image_url" else p["text"] for p in user["content"]]
    assert kinds[0] == prompt.user_text(3) and "Below are 3 groups" in kinds[0]
    assert kinds[1:] == ["Group 1 (higher layer):", "image_url", "image_url", "Group 2 (lower layer):", "image_url",
                         "image_url", "Group 3 (lower layer):", "image_url", "image_url"]


def test_image_token_formula() -> None:
    assert image_tokens(224, 224, "low") == 85
    assert image_tokens(224, 224, "high") == 85 + 170  # one tile
    assert image_tokens(1024, 1024, "high") == 765  # OpenAI's worked example: 768x768, 4 tiles
    assert image_tokens(2048, 4096, "high") == 1105  # 1024x2048 -> 768x1536, 6 tiles
    assert image_tokens(2048, 4096, "auto") == 1105  # counted as high


def test_token_estimate(tiny: tuple[Circuit, Path]) -> None:
    circuit, folder = tiny
    request = plan_requests(circuit, folder, LabelSettings(max_images=4))[0]
    text, images = estimate_tokens(request, "low")
    assert images == 4 * 85
    assert text == -(-len(request.text) // 4) and request.prompt.role in request.text
