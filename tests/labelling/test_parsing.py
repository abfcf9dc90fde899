"""Reading the LLM's answers: well-formed, markdown-decorated and malformed (tests/data/llm fixtures)."""

from __future__ import annotations

from neurflow.labelling.parsing import is_no_match, parse_caption, parse_evolution
from tests.labelling.support import answer_text


def test_parse_caption_answers() -> None:
    ok = parse_caption(answer_text("caption-ok"))
    assert ok.parsed and ok.label == "white fluffy fur"
    assert ok.common_features == ["dense white fur", "soft, fluffy texture", "pale cream highlights"]
    assert ok.caption is not None and ok.caption.startswith("Close-up areas of dense, fluffy white fur")

    markdown = parse_caption(answer_text("caption-markdown"))
    assert markdown.parsed
    assert markdown.common_features == ["dark round eye", "white fur around the eye", "black rim of the eyelid"]
    assert markdown.caption == "A dark, round eye set in white fur, with a thin black rim."
    assert markdown.label == "dark round eye"  # no Label line: the first common feature

    bad = parse_caption(answer_text("caption-malformed"))
    assert not bad.parsed and bad.caption is None and bad.raw.startswith("I'm sorry")
    assert not parse_caption("").parsed and not parse_caption("Caption:   ").parsed
    assert ok.depicts is None  # a v1 answer says nothing of it


def test_parse_what_a_caption_depicts() -> None:
    base = "Common features: green blades\nLabel: grass\nCaption: Green grass blades.\n"
    assert parse_caption(base + "Depicts: background").depicts == "background"
    assert parse_caption("**Depicts:** Context (a leash)\n" + base).depicts == "context"
    assert parse_caption(base + "Depicts: the object itself").depicts == "object"
    assert parse_caption(base + "Depicts: unsure").depicts is None


def test_parse_evolution_answers() -> None:
    ok = parse_evolution(answer_text("evolution-ok"), 4)
    assert ok.parsed and set(ok.features) == {1, 2, 3, 4} and set(ok.matches) == {2, 3, 4}
    assert ok.features[1] == "white dog face with dark eyes and a black nose"
    assert ok.matches[2] == "provides the eyes of group 1's face"
    assert is_no_match(ok.matches[4]) and not is_no_match(ok.matches[3])
    assert ok.caption is not None and ok.caption.startswith("The white dog face of group 1 forms")

    fewer = parse_evolution(answer_text("evolution-ok"), 3)  # groups beyond the request are ignored
    assert set(fewer.features) == {1, 2, 3} and set(fewer.matches) == {2, 3}

    decorated = parse_evolution(
        "**Features:**\n- **Group 1:** pointed ear\n- Group 2 (lower): a diagonal edge\n  that continues\n"
        "## Matches\nMatches:\n* Group 2 -> Group 1: two such edges meet to form the ear's tip\n"
        "**Caption:** Two diagonal edges\nmeet at an angle to form a pointed ear.", 2)
    assert decorated.parsed and decorated.features == {1: "pointed ear", 2: "a diagonal edge that continues"}
    assert decorated.matches == {2: "two such edges meet to form the ear's tip"}
    assert decorated.caption == "Two diagonal edges meet at an angle to form a pointed ear."

    bad = parse_evolution(answer_text("evolution-malformed"), 3)
    assert not bad.parsed and bad.raw == answer_text("evolution-malformed")
