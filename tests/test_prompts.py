"""Prompt validation shared by the API, the CLI and the server."""

from __future__ import annotations

import pytest

from spectrum_parsing.prompts import MAX_PROMPT_CHARS, clean_prompts


def test_clean_prompts_handles_or_refuses_every_odd_prompt():
    assert clean_prompts("  left   hand ") == ["left hand"]
    assert clean_prompts(["Hat", "hat", "HAT ", "hat\tband"]) == ["Hat", "hat band"]  # first spelling kept
    assert clean_prompts(["साड़ी", "裙子", "écharpe"]) == ["साड़ी", "裙子", "écharpe"]  # any script (NFC)
    assert clean_prompts(["e\u0301charpe"]) == ["écharpe"]
    for bad, reason in [([], "at least one prompt"), (["hat", " "], "prompt 2 is empty"),
                        (["hat\x00"], "control"), (["bell\x07"], "U\\+0007"),
                        (["x" * (MAX_PROMPT_CHARS + 1)], f"at most {MAX_PROMPT_CHARS}"),
                        ([f"p{i}" for i in range(300)], "at most 256")]:
        with pytest.raises(ValueError, match=reason):
            clean_prompts(bad)
    with pytest.raises(TypeError):
        clean_prompts([1, 2])  # type: ignore[list-item]


@pytest.mark.parametrize("char", ["\u202e", "\u2066", "\u200f", "\u200b", "\ufeff", "\x07"])
def test_bidi_invisible_and_control_characters_are_refused_in_prompts_and_label_names(char):
    from spectrum_parsing.presets import validate_label_map

    with pytest.raises(ValueError, match="U\\+"):
        clean_prompts([f"hat{char}s"])
    with pytest.raises(ValueError, match="U\\+"):
        validate_label_map({"rename": {"hat": f"cap{char}"}})
    with pytest.raises(ValueError, match="U\\+"):
        validate_label_map({"labels": {"1": f"h{char}at"}})
    assert clean_prompts(["\u0645\u06cc\u200c\u0634\u0648\u062f"])  # ZWNJ, which Persian needs, is fine
