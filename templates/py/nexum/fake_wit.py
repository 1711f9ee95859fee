"""Look-alikes of the classes componentize-py generates for the world (`wit_world.imports`).

Same names, fields and behaviour (an import's `err` is raised as `Err(value)`), so the
FakeHost can drive nexum.entry and nexum.host exactly as the component does, without
componentize-py installed. Only the parts the helper uses are mirrored.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Generic, TypeVar

E = TypeVar("E")


@dataclass
class Err(Generic[E], Exception):
    """componentize_py_types.Err: the failure case of a WIT `result`, raised.

    Not frozen, unlike the real one: unittest sets `__traceback__` on every exception in a
    failing test's chain, and a frozen one would crash the run instead of reporting it.
    """

    value: E


# --- types ------------------------------------------------------------------------------


@dataclass
class Block:
    chain_id: int
    number: int
    hash: bytes
    parent_hash: bytes
    timestamp: int


@dataclass
class ChainLog:
    address: bytes
    topics: list[bytes]
    data: bytes
    block_number: int | None
    block_hash: bytes | None
    transaction_hash: bytes | None
    transaction_index: int | None
    log_index: int | None
    removed: bool


@dataclass
class ChainLogs:
    chain_id: int
    logs: list[ChainLog]


@dataclass
class Tick:
    fired_at: int
    schedule: str


@dataclass
class Event_Block:
    value: Block


@dataclass
class Event_ChainLogs:
    value: ChainLogs


@dataclass
class Event_Tick:
    value: Tick


Event = Event_Block | Event_ChainLogs | Event_Tick


@dataclass
class RateLimit:
    retry_after_ms: int | None


@dataclass
class Fault_Unsupported:
    value: str


@dataclass
class Fault_Unavailable:
    value: str


@dataclass
class Fault_Denied:
    value: str


@dataclass
class Fault_RateLimited:
    value: RateLimit


@dataclass
class Fault_Timeout:
    pass


@dataclass
class Fault_InvalidInput:
    value: str


@dataclass
class Fault_Internal:
    value: str


def lowering_problem(fault: Any) -> str | None:
    """Why componentize-py could not lower `fault` as the WIT `fault` an export returns (the
    component would trap), or None when it could."""
    if isinstance(fault, Fault_Timeout):
        return None
    if isinstance(fault, Fault_RateLimited):
        if not isinstance(fault.value, RateLimit):
            return f"Fault_RateLimited carries a {type(fault.value).__name__}, not a RateLimit"
        ms = fault.value.retry_after_ms
        if ms is None or (isinstance(ms, int) and 0 <= ms < 1 << 64):
            return None
        return f"retry_after_ms {ms!r} is not a u64"
    if isinstance(fault, (Fault_Unsupported, Fault_Unavailable, Fault_Denied, Fault_InvalidInput, Fault_Internal)):
        if isinstance(fault.value, str):
            return None
        return f"{type(fault).__name__} carries a {type(fault.value).__name__}, not a str"
    return f"a {type(fault).__name__} is not a fault"


# --- chain ------------------------------------------------------------------------------


@dataclass
class RpcError:
    code: int
    message: str
    data: bytes | None


@dataclass
class RpcRequest:
    method: str
    params: str


@dataclass
class Ok(Generic[E]):
    """componentize_py_types.Ok: the success case of a WIT `result` that is not returned
    (an entry of a list of results)."""

    value: E


@dataclass
class ChainError_Fault:
    value: Any


@dataclass
class ChainError_Rpc:
    value: RpcError


# --- logging ----------------------------------------------------------------------------


class Level(Enum):
    TRACE = 0
    DEBUG = 1
    INFO = 2
    WARN = 3
    ERROR = 4


# --- local-store ----------------------------------------------------------------------


@dataclass
class Entry:
    key: str
    value: bytes


@dataclass
class EntryPage:
    entries: list[Entry]
    next: str | None


@dataclass
class WriteOp_Set:
    value: Entry


@dataclass
class WriteOp_Delete:
    value: str
