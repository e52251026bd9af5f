"""The token estimate: ``ceil(characters / 4)``, and generated answers sized in tokens.

A real tokenizer would cost CPU on the hot path and tie the mock to one model family;
what matters to the observatory is that usage numbers are consistent with what was sent
and what was generated. Generated text is built from 4-character pieces, so the answer
of ``n`` tokens has exactly ``4 * n`` characters and re-estimates to ``n`` tokens.
"""

from __future__ import annotations

from collections.abc import Iterable

CHARS_PER_TOKEN = 4
MAX_COMPLETION_TOKENS = 32_768  # caps the answer at 128 KiB whatever the client asks
_PHRASE = "lorem ipsum dolor sit amet, "  # 28 characters = 7 tokens
_TEXT = _PHRASE * (MAX_COMPLETION_TOKENS * CHARS_PER_TOKEN // len(_PHRASE) + 1)


def estimate_tokens(text: str) -> int:
    """Tokens in ``text`` by the documented estimate (0 for the empty string)."""
    return -(-len(text) // CHARS_PER_TOKEN)


def estimate_many(texts: Iterable[str]) -> int:
    """Tokens of the concatenation of ``texts``."""
    return estimate_tokens("".join(texts))


def completion_text(tokens: int) -> str:
    """An answer of exactly ``tokens`` tokens (ASCII, nothing to escape in JSON)."""
    return _TEXT[: tokens * CHARS_PER_TOKEN]


def split_text(text: str, chunks: int) -> list[str]:
    """Split ``text`` into ``chunks`` pieces of whole tokens (at most one per token)."""
    tokens = estimate_tokens(text)
    count = max(1, min(chunks, tokens))
    bounds = [i * tokens // count * CHARS_PER_TOKEN for i in range(count + 1)]
    return [text[bounds[i] : bounds[i + 1]] for i in range(count)]


def content_texts(content: object) -> list[str]:
    """Text pieces of a message ``content``: a string, or a list of typed parts."""
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [part["text"] for part in content if _is_text_part(part)]
    return []


def _is_text_part(part: object) -> bool:
    return isinstance(part, dict) and isinstance(part.get("text"), str)


def messages_texts(messages: object) -> list[str]:
    """Text pieces of a list of chat messages (OpenAI or Anthropic)."""
    if not isinstance(messages, list):
        return []
    texts: list[str] = []
    for message in messages:
        if isinstance(message, dict):
            texts.extend(content_texts(message.get("content")))
    return texts
