"""Text for the terminal: names from the outside world (file names, error messages quoting them) can carry
newlines, ANSI escape sequences or bidi overrides that would forge lines ("failed: ...") or recolour the
terminal. Every one-line message the command line prints about an input goes through :func:`shown`."""

from __future__ import annotations

import unicodedata

__all__ = ["shown"]


def shown(text: object) -> str:
    """``text`` on one line with control, format (bidi, zero-width) and other unprintable characters escaped as
    ``\\n``, ``\\x1b``, ``\\u202e``...; backslashes doubled so the escapes cannot be faked."""
    out = []
    for ch in str(text):
        if ch == "\\":
            out.append("\\\\")
        elif ch.isprintable() and unicodedata.category(ch) not in ("Cf", "Zl", "Zp"):
            out.append(ch)
        else:
            code = ord(ch)
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(ch) or (
                f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"))
    return "".join(out)
