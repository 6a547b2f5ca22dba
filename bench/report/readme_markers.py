"""The README's results section markers: what `bench readme` owns (between them) and what people write."""

from __future__ import annotations

BEGIN = "<!-- results:begin -->"
END = "<!-- results:end -->"


def without_section(text: str) -> str:
    """`text` with the results section emptied (what is left is written by people, not by the tool)."""
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(END) < text.index(BEGIN):
        return text
    return text[: text.index(BEGIN)] + text[text.index(END) :]
