"""Reading the LLM's answers into their fields. An answer parses when it has a non-empty caption; otherwise the
caller stores it raw. Markdown (bold, bullets, headings), any order of fields and values over several lines
are tolerated.

Imports only the standard library.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class CaptionAnswer:
    raw: str
    parsed: bool
    caption: str | None = None
    label: str | None = None
    common_features: list[str] = field(default_factory=list)
    depicts: str | None = None  # "object", "context" or "background" (prompt v2 on); None when not said


DEPICTS = ("object", "context", "background")


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
    """Reads ``Common features: ...``, ``Label: ...``, ``Caption: ...``, ``Depicts: ...`` (any order, markdown
    tolerated).

    Parsed when there is a non-empty caption; without a label, the first common feature (or the caption's
    first clause) is the label. ``depicts`` is the first of object/context/background the answer names there.
    """
    values: dict[str, str] = {}
    for name, value in _fields(text or "", ("common features", "features", "label", "caption", "depicts")):
        values.setdefault("common features" if name == "features" else name, value)
    caption = _strip_quotes(" ".join(values.get("caption", "").split()))
    if not caption:
        return CaptionAnswer(raw=text, parsed=False)
    features = _split_features(values.get("common features", ""))
    label = _strip_quotes(" ".join(values.get("label", "").split())).rstrip(".")
    if not label:
        label = features[0] if features else re.split(r"[.;,:]", caption)[0]
        label = label[:80].strip()
    said = re.findall(r"[a-z]+", values.get("depicts", "").lower())
    depicts = next((word for word in said if word in DEPICTS), None)
    return CaptionAnswer(raw=text, parsed=True, caption=caption, label=label, common_features=features,
                         depicts=depicts)


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
