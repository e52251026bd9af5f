"""Free text a caller gives (tags, requester, names): printable characters only.

Control characters (NUL, escape, newlines) and format characters (bidi overrides,
zero-width marks) are refused: they forge log lines and make a tag read differently on
screen than it is stored.
"""

from __future__ import annotations

import unicodedata

from observatory.errors import InputError

REFUSED_CATEGORIES = ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")
ACCEPTED = "printable characters (no control, bidi or zero-width characters)"


def unsafe_character(text: str) -> str | None:
    """The first refused character of ``text`` as 'U+XXXX at position N', or None."""
    for index, char in enumerate(text):
        if unicodedata.category(char) in REFUSED_CATEGORIES:
            return f"U+{ord(char):04X} at position {index}"
    return None


def check_plain(field: str, text: str | None) -> str | None:
    """Return ``text`` unchanged, or raise InputError naming ``field`` and the character."""
    if text is not None:
        found = unsafe_character(text)
        if found is not None:
            raise InputError(f"{field}: character {found} is refused; accepted: {ACCEPTED}")
    return text
