"""The versioned three-part prompts of the two kinds of request (role, main instructions, answer form), as in
NeurFlow (Cao et al., ICLR 2025), Appendix G: files ``neurflow/resources/prompts/<name>-<version>.txt``.

A released prompt version is never edited: copy it to the next version and change ``PROMPT_VERSIONS``. Every
stored label names its prompt version, and the version is part of the answer cache key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from neurflow.labelling.errors import LabellingError

CAPTION_PROMPT = "group-caption"
EVOLUTION_PROMPT = "feature-evolution"
#: The version each prompt is used in (group-caption v2 adds the ``Depicts:`` answer: object, context or
#: background, read by the bias-paths query).
PROMPT_VERSIONS = {CAPTION_PROMPT: "v2", EVOLUTION_PROMPT: "v1"}


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


def prompt_path(name: str, version: str | None = None) -> Path:
    version = version or PROMPT_VERSIONS.get(name, "v1")
    return Path(str(resources.files("neurflow") / "resources" / "prompts" / f"{name}-{version}.txt"))


def load_prompt(name: str, version: str | None = None) -> Prompt:
    """The prompt file ``resources/prompts/<name>-<version>.txt`` (default: the version in use,
    ``PROMPT_VERSIONS``); its header must name the same version."""
    version = version or PROMPT_VERSIONS.get(name, "v1")
    path = prompt_path(name, version)
    if not path.is_file():
        raise LabellingError(f"no prompt {name!r} version {version!r} ({path})")
    prompt = parse_prompt(path.read_text(encoding="utf-8"), str(path))
    if (prompt.name, prompt.version) != (name, version):
        raise LabellingError(f"{path} declares {prompt.id}, not {name}-{version}")
    return prompt
