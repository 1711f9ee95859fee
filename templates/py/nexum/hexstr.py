"""'0x…' hex strings, the one spelling the helper uses for addresses, hashes and bytes.

Lowercase on the way out so values compare with `==`; digits of any case on the way in,
since users paste checksummed addresses. The prefix is '0x', as JSON-RPC spells it.
"""

from __future__ import annotations

import re

# Only hex digits: bytes.fromhex alone would also skip whitespace between them.
_HEX_DIGITS = re.compile(r"[0-9a-fA-F]*")


def to_hex(data: bytes | bytearray) -> str:
    """`data` as lowercase '0x…' hex."""
    return "0x" + bytes(data).hex()


def from_hex(text: str | bytes | bytearray, what: str = "value", size: int | None = None) -> bytes:
    """The bytes of '0x…' hex text (bytes pass through), exactly `size` long when given.

    `what` names the value in the error, so a bad argument says which one it was.
    """
    if isinstance(text, (bytes, bytearray)):
        raw = bytes(text)
    elif isinstance(text, str):
        if not text.startswith("0x"):
            raise ValueError(f"{what} must be '0x…' hex, got {_preview(text)}")
        digits = text[2:]
        if len(digits) % 2:
            raise ValueError(f"{what} has an odd number of hex digits: {_preview(text)}")
        if not _HEX_DIGITS.fullmatch(digits):
            raise ValueError(f"{what} is not hex: {_preview(text)}")
        raw = bytes.fromhex(digits)
    else:
        raise TypeError(f"{what} must be '0x…' hex or bytes, got {type(text).__name__}")
    if size is not None and len(raw) != size:
        raise ValueError(f"{what} must be {size} bytes, got {len(raw)}")
    return raw


def _preview(text: str) -> str:
    """The start of `text` for an error message; hostile input can be megabytes long."""
    return repr(text if len(text) <= 80 else text[:80] + "…")
