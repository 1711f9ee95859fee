"""What handlers receive: plain records with hex strings and ints instead of WIT bytes."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Block:
    """A new block header. `timestamp` is in milliseconds since the Unix epoch."""

    chain_id: int
    number: int
    hash: str
    parent_hash: str
    timestamp: int


@dataclass(frozen=True)
class Log:
    """One event log. `removed` is True when a reorg retracts a log delivered before."""

    address: str
    topics: tuple[str, ...]
    data: str = "0x"
    block_number: int | None = None
    block_hash: str | None = None
    transaction_hash: str | None = None
    transaction_index: int | None = None
    log_index: int | None = None
    removed: bool = False


@dataclass(frozen=True)
class Logs:
    """The logs of one block matching one subscription, in log-index order."""

    chain_id: int
    logs: tuple[Log, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Tick:
    """A cron tick. `fired_at` is in milliseconds since the Unix epoch."""

    fired_at: int
    schedule: str
