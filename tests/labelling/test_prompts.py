"""The versioned three-part prompt files and their reader."""

from __future__ import annotations

from pathlib import Path

import pytest

from neurflow.labelling import prompts
from neurflow.labelling.errors import LabellingError
from neurflow.labelling.prompts import (
    CAPTION_PROMPT,
    EVOLUTION_PROMPT,
    load_prompt,
    parse_prompt,
    prompt_path,
)


@pytest.mark.parametrize(("name", "version"), [(CAPTION_PROMPT, "v2"), (EVOLUTION_PROMPT, "v1")])
def test_prompt_files_are_versioned_three_part_prompts(name: str, version: str) -> None:
    path = prompt_path(name)
    assert path.name == f"{name}-{version}.txt"
    text = path.read_text()
    assert f"# neurflow prompt: {name}\n# version: {version}\n" in text
    prompt = load_prompt(name)
    assert prompt.id == f"{name}-{version}"
    assert "image captioning model" in prompt.role
    assert "outliers" in prompt.instructions and "objective visual features" in prompt.instructions
    assert "context" in prompt.instructions and "opinions" in prompt.instructions
    assert "one or two sentences" in prompt.instructions or "one or two sentences" in prompt.answer_form
    assert "Caption: <" in prompt.answer_form
    assert "{count}" not in prompt.user_text(5)
    # Hard-wrapped paragraphs are joined; items and answer-form lines keep their own lines.
    assert all(line.endswith((".", ":", '"no match".')) for line in prompt.instructions.splitlines())
    assert "\n" not in prompt.role
    if name == CAPTION_PROMPT:
        assert "\n" not in prompt.instructions
        assert [line.split(":")[0] for line in prompt.answer_form.splitlines()[1:]] == [
            "Common features", "Label", "Caption", "Depicts"]
        assert '"background"' in prompt.instructions and '"context"' in prompt.instructions
        released = load_prompt(name, "v1")  # a released version stays readable, unchanged
        assert released.id == f"{name}-v1" and "Depicts" not in released.answer_form
    else:
        assert "Group 1 comes from a higher layer" in prompt.instructions
        assert '"no match"' in prompt.instructions and "angle" in prompt.instructions
        assert "Features:" in prompt.answer_form and "Matches:" in prompt.answer_form
        assert [line[:2] for line in prompt.instructions.splitlines()] == ["Be", "1.", "2.", "3."]


def test_prompt_format_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="missing answer form"):
        parse_prompt("# neurflow prompt: x\n# version: v1\n[role]\nr\n[instructions]\ni\n")
    with pytest.raises(ValueError, match="unknown part"):
        parse_prompt("# neurflow prompt: x\n# version: v1\n[rolle]\nr\n")
    wrong = tmp_path / "group-caption-v1.txt"
    wrong.write_text(prompt_path(CAPTION_PROMPT, "v1").read_text().replace("# version: v1", "# version: v2"))
    monkeypatch.setattr(prompts, "prompt_path", lambda name, version="v1": wrong)
    with pytest.raises(LabellingError, match="declares group-caption-v2"):
        load_prompt(CAPTION_PROMPT, "v1")
