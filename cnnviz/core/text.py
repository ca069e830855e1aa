"""User-supplied names made safe where they land: on a terminal, in a file name, in a
matplotlib label. Layer, model and file names come from files cnnviz did not write."""

from __future__ import annotations

import hashlib
import unicodedata

from cnnviz.core.errors import CnnvizError

# What a layer's file may be called as is: lower-case letters, digits, "_" and "-" (and "." past
# the first character). Everything else is %XX-encoded (UTF-8), upper case included, so two names
# never meet on a case-insensitive file system and the name is recovered by unquoting.
_KEEP = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-")
MAX_STEM = 120


_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def printable(text: object) -> str:
    """``text`` as one line with control characters (escape sequences, bells, line breaks)
    shown as escapes (``\\x1b``, ``\\n``), so a name cannot move the cursor, clear the
    screen or forge a line of output."""
    out = []
    for char in str(text):
        if unicodedata.category(char) not in ("Cc", "Cf", "Zl", "Zp"):
            out.append(char)
        elif char in _NAMED:
            out.append(_NAMED[char])
        else:
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
    return "".join(out)


def file_stem(name: str, reserved: tuple[str, ...] = ()) -> str:
    """A file-name stem for ``name`` (a layer path like ``base/conv1``): one-to-one, so two
    layers never share a file, readable for ordinary names (``conv2d_1`` stays), and never equal
    to one of the ``reserved`` stems of the command's own files (``input``). Names too long for a
    file system keep their start and a digest of the whole."""
    stem = "".join(char if char in _KEEP or (char == "." and i) else
                   "".join(f"%{byte:02X}" for byte in char.encode("utf-8"))
                   for i, char in enumerate(name)) or "%"
    if stem in reserved:
        stem = f"%{ord(stem[0]):02X}{stem[1:]}"
    if len(stem) > MAX_STEM:
        digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]
        stem = f"{stem[:MAX_STEM - 17]}~{digest}"
    return stem


def plain_label(text: object) -> str:
    """``text`` for a matplotlib title or label: its lines kept, control characters escaped
    within them, and ``$`` escaped so it is not read as mathematics."""
    return "\n".join(printable(line) for line in str(text).split("\n")).replace("$", r"\$")


def number_spans(spec: str, what: str = "index") -> list[tuple[int, int]]:
    """``"0-15,20"`` → ``[(0, 15), (20, 20)]``; a range that is not two whole numbers in
    order is refused (``what`` names the numbers in the error)."""
    spans = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        first, dash, last = part.partition("-")
        try:
            lo, hi = int(first), int(last) if dash else int(first)
        except ValueError:
            raise CnnvizError(f"bad {what} range '{part}': use whole numbers like 0-15,20") \
                from None
        if lo > hi:
            raise CnnvizError(f"bad {what} range '{part}': the start is after the end")
        spans.append((lo, hi))
    return spans
