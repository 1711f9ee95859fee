"""The two ways a host call fails, as Python exceptions a module can catch or let fly."""

from __future__ import annotations

#: The kinds of the WIT `fault` variant, spelled as in the WIT file.
FAULT_KINDS = (
    "unsupported",
    "unavailable",
    "denied",
    "rate-limited",
    "timeout",
    "invalid-input",
    "internal",
)


class Fault(Exception):
    """A refusal or failure, from the host or the module itself.

    Raised by host calls; raise one from a handler to fail the event with that fault
    (nexum retries the event, and discards the handler's store writes).
    """

    def __init__(self, kind: str, message: str = "", retry_after_ms: int | None = None) -> None:
        """Refuses what nexum cannot carry, here where the mistake is made: an unknown kind,
        a message str() fails on (any other message is made text with str()), and a
        `retry_after_ms` that is not a WIT u64 (an int from 0 to 2**64 - 1) or None."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {', '.join(FAULT_KINDS)}")
        message = _text(message)
        _check_u64(retry_after_ms, "retry_after_ms")
        super().__init__(f"{kind}: {message}" if message else kind)
        self.kind = kind
        self.message = message
        #: Only for 'rate-limited': how long to wait, when the host knows.
        self.retry_after_ms = retry_after_ms

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Fault)
            and (self.kind, self.message, self.retry_after_ms)
            == (other.kind, other.message, other.retry_after_ms)
        )

    def __hash__(self) -> int:
        return hash((self.kind, self.message, self.retry_after_ms))

    def __repr__(self) -> str:
        return f"Fault({self.kind!r}, {self.message!r})"


def _text(message: object) -> str:
    if isinstance(message, str):
        return message
    if message is None:
        return ""
    try:
        return str(message)
    except Exception:
        raise TypeError(
            f"a Fault message must be a str, and str() of the {type(message).__name__} given failed"
        ) from None


def _check_u64(value: object, what: str) -> None:
    # bool is an int, but True as a wait in milliseconds is a mistake.
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << 64):
        raise TypeError(f"{what} must be an int from 0 to 2**64 - 1, or None; got {value!r}")


class RpcError(Exception):
    """The node answered a chain request with a JSON-RPC error (a revert, a bad param…).

    `data` is the error's data as '0x…' hex (revert bytes), or None.
    """

    def __init__(self, code: int, message: str, data: str | None = None) -> None:
        super().__init__(f"rpc error {code}: {message}")
        self.code = code
        self.message = message
        self.data = data

    def __repr__(self) -> str:
        return f"RpcError({self.code}, {self.message!r}, {self.data!r})"
