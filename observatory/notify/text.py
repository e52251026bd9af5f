"""A Block Kit payload as the plain text a Slack channel shows, for terminals and logs.

Derived from the blocks themselves (not from the fallback text), so what a terminal shows
is what the channel would: the header, each section, the facts on one line, the button
with its URL, the context line. Markup is undone: ``*bold*`` and ``_italic_`` lose their
marks, ``<url|label>`` reads "label (url)", entities are unescaped, known emoji are drawn.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

EMOJI = {
    ":red_circle:": "\N{LARGE RED CIRCLE}",
    ":boom:": "\N{COLLISION SYMBOL}",
    ":octagonal_sign:": "\N{OCTAGONAL SIGN}",
    ":grey_question:": "\N{WHITE QUESTION MARK ORNAMENT}",
    ":white_check_mark:": "\N{WHITE HEAVY CHECK MARK}",
    ":warning:": "\N{WARNING SIGN}",
    ":satellite_antenna:": "\N{SATELLITE ANTENNA}",
}
_LINK = re.compile(r"<([^<>|]+)\|([^<>]+)>")
_BARE_LINK = re.compile(r"<((?:https?|mailto):[^<>|]+)>")
_BOLD = re.compile(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_([^_\n]+)_(?![\w_])")


def channel_text(payload: Mapping[str, Any]) -> str:
    """The message as a channel shows it, one line per line; the fallback text if no blocks."""
    blocks: Sequence[Mapping[str, Any]] = payload.get("blocks") or []
    lines = [line for block in blocks for line in _block_lines(block)]
    return "\n".join(lines) if lines else plain(str(payload.get("text", "")))


def _block_lines(block: Mapping[str, Any]) -> list[str]:
    kind = block.get("type")
    if kind in ("header", "section"):
        lines = _text_lines(block.get("text"))
        fields = [_field(f) for f in block.get("fields") or []]
        return lines + ([" · ".join(fields)] if fields else [])
    if kind == "actions":
        return [_button(e) for e in block.get("elements") or [] if e.get("type") == "button"]
    if kind == "context":
        return [" ".join(plain(str(e.get("text", ""))) for e in block.get("elements") or [])]
    return []


def _text_lines(text: Mapping[str, Any] | None) -> list[str]:
    if not text:
        return []
    return plain(str(text.get("text", ""))).splitlines()


def _field(field: Mapping[str, Any]) -> str:
    """A "*Label*\\nvalue" field as "Label: value"."""
    label, _, value = plain(str(field.get("text", ""))).partition("\n")
    return f"{label}: {value}" if value else label


def _button(element: Mapping[str, Any]) -> str:
    label = plain(str((element.get("text") or {}).get("text", "")))
    url = element.get("url")
    return f"[{label}] {url}" if url else f"[{label}]"


def plain(mrkdwn: str) -> str:
    """Slack mrkdwn as plain text."""
    text = _LINK.sub(lambda m: f"{m.group(2)} ({m.group(1)})", mrkdwn)
    text = _BARE_LINK.sub(r"\1", text)
    text = _BOLD.sub(r"\1", text)
    text = _ITALIC.sub(r"\1", text)
    for name, glyph in EMOJI.items():
        text = text.replace(name, glyph)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
