"""Translation between WIT values (as componentize-py shapes them) and the helper's values.

Every function takes the WIT classes to use from the bound imports rather than importing
`wit_world`, so the fake host's look-alike classes go through this very code in tests.
"""

from __future__ import annotations

from typing import Any

from .errors import FAULT_KINDS, Fault, RpcError
from .hexstr import to_hex
from .values import Block, Log, Logs, Tick


def _opt_hex(data: bytes | None) -> str | None:
    return None if data is None else to_hex(data)


def _fault_class_name(kind: str) -> str:
    """'invalid-input' → 'Fault_InvalidInput', the name componentize-py gives the case."""
    return "Fault_" + "".join(part.capitalize() for part in kind.split("-"))


def log_from_wit(entry: Any) -> Log:
    """A WIT chain-log as a Log."""
    return Log(
        address=to_hex(entry.address),
        topics=tuple(to_hex(t) for t in entry.topics),
        data=to_hex(entry.data),
        block_number=entry.block_number,
        block_hash=_opt_hex(entry.block_hash),
        transaction_hash=_opt_hex(entry.transaction_hash),
        transaction_index=entry.transaction_index,
        log_index=entry.log_index,
        removed=bool(entry.removed),
    )


def event_from_wit(types: Any, event: Any) -> Block | Logs | Tick:
    """A WIT event variant as a Block, Logs or Tick."""
    value = event.value
    if isinstance(event, types.Event_Block):
        return Block(value.chain_id, value.number, to_hex(value.hash), to_hex(value.parent_hash), value.timestamp)
    if isinstance(event, types.Event_ChainLogs):
        return Logs(value.chain_id, tuple(log_from_wit(entry) for entry in value.logs))
    if isinstance(event, types.Event_Tick):
        return Tick(value.fired_at, value.schedule)
    raise Fault("internal", f"unknown event {type(event).__name__}: this helper is older than the host's WIT")


def config_from_wit(config: list[tuple[str, str]]) -> dict[str, str]:
    """The flattened `[config]` pairs as a dict."""
    return dict(config)


def fault_from_wit(types: Any, fault: Any) -> Fault:
    """A WIT fault variant as a Fault."""
    for kind in FAULT_KINDS:
        if isinstance(fault, getattr(types, _fault_class_name(kind))):
            if kind == "timeout":
                return Fault(kind)
            if kind == "rate-limited":
                return Fault(kind, "", fault.value.retry_after_ms)
            return Fault(kind, fault.value)
    return Fault("internal", f"unknown fault from the host: {fault!r}")


def fault_to_wit(types: Any, fault: Fault) -> Any:
    """A Fault as the WIT fault variant an export returns.

    Never raises: an export that raised would trap the instance. The fields are checked
    again as a new Fault's would be (they may have been changed since it was made), and a
    Fault nexum cannot carry becomes an internal fault saying why.
    """
    try:
        checked = Fault(fault.kind, fault.message, fault.retry_after_ms)
    except Exception as error:  # whatever the reason, it is reported, not raised
        return types.Fault_Internal(f"a Fault that nexum cannot carry was raised: {_reason(error)}")
    cls = getattr(types, _fault_class_name(checked.kind))
    if checked.kind == "timeout":
        return cls()
    if checked.kind == "rate-limited":
        return cls(types.RateLimit(checked.retry_after_ms))
    return cls(checked.message)


def _reason(error: Exception) -> str:
    try:
        return str(error)
    except Exception:  # an exception whose own str() raises
        return type(error).__name__


def chain_error_from_wit(types: Any, chain: Any, error: Any) -> Fault | RpcError:
    """A WIT chain-error as a Fault (the host refused) or an RpcError (the node did)."""
    if isinstance(error, chain.ChainError_Rpc):
        rpc = error.value
        return RpcError(rpc.code, rpc.message, _opt_hex(rpc.data))
    return fault_from_wit(types, error.value)
