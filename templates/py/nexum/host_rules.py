"""nexum's rules for module calls, mirrored for FakeHost with the same refusal texts.

Source of truth: nexum-core/src/host_rules/ (chain.rs, store.rs, mod.rs). A test that
passes against FakeHost should not be refused by the real host, so keep these in step.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from .manifest import Limits

ALLOWED_METHODS = frozenset({
    "eth_blockNumber", "eth_call", "eth_chainId", "eth_createAccessList", "eth_estimateGas",
    "eth_feeHistory", "eth_gasPrice", "eth_blobBaseFee", "eth_getBalance", "eth_getBlockByHash",
    "eth_getBlockByNumber", "eth_getBlockReceipts", "eth_getBlockTransactionCountByHash",
    "eth_getBlockTransactionCountByNumber", "eth_getCode", "eth_getLogs", "eth_getProof",
    "eth_getStorageAt", "eth_getTransactionByBlockHashAndIndex",
    "eth_getTransactionByBlockNumberAndIndex", "eth_getTransactionByHash",
    "eth_getTransactionCount", "eth_getTransactionReceipt", "eth_getUncleCountByBlockHash",
    "eth_getUncleCountByBlockNumber", "eth_maxPriorityFeePerGas", "eth_syncing", "net_version",
    "web3_clientVersion",
})

_SIGNING = ("eth_sendTransaction", "eth_sendRawTransaction", "eth_sign", "eth_signTransaction", "eth_signTypedData")
_ADMIN = ("admin_", "debug_", "miner_", "anvil_", "hardhat_", "evm_", "txpool_")

#: What one write costs a call's write set beyond its bytes (store.rs PENDING_ENTRY_OVERHEAD).
PENDING_ENTRY_OVERHEAD = 64
#: The least a call's write set may hold whatever the quota (store.rs MIN_PENDING_BYTES).
MIN_PENDING_BYTES = 1024 * 1024
#: A list-entries page: at most 1,000 entries and 1 MiB (one larger entry excepted), and
#: at most 4,000 entries or 4 MiB passed over because the call's writes hide them (store.rs).
PAGE_MAX_ENTRIES = 1000
PAGE_MAX_BYTES = 1024 * 1024
PAGE_SCAN_ENTRIES = 4 * PAGE_MAX_ENTRIES
PAGE_SCAN_BYTES = 4 * PAGE_MAX_BYTES
#: The longest list-entries cursor, and the most writes of one apply (store.rs).
CURSOR_MAX_BYTES = 65_536
BATCH_MAX_WRITES = 10_000


class Refused(Exception):
    """A call the host refuses: `kind` is the fault kind, `message` its text."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message


def _size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def size_of(text: str) -> int:
    """`text`'s length in UTF-8 bytes, as nexum counts it."""
    return _size(text)


def cut(text: str, max_bytes: int) -> str:
    """`text` cut to `max_bytes` of UTF-8, saying how long it was (nexum-core bounded.rs)."""
    raw = text.encode("utf-8", "surrogatepass")
    if len(raw) <= max_bytes:
        return text
    return f"{raw[:max_bytes].decode('utf-8', 'ignore')}… [cut: {len(raw)} bytes in all]"


def _cut_plain(text: str, max_bytes: int) -> str:
    """`text` cut to at most `max_bytes` of UTF-8 on a character boundary, without a note."""
    raw = text.encode("utf-8", "surrogatepass")
    return text if len(raw) <= max_bytes else raw[:max_bytes].decode("utf-8", "ignore")


def _is_hazard(c: str) -> bool:
    """Whether `c` could break a log line or mislead its reader (bounded.rs): control
    characters but tab, line and paragraph separators, bidirectional marks and overrides."""
    code = ord(c)
    return (((code <= 0x1F or 0x7F <= code <= 0x9F) and code != 0x09)
            or code in (0x2028, 0x2029, 0x200E, 0x200F)
            or 0x202A <= code <= 0x202E
            or 0x2066 <= code <= 0x2069)


def _escape(c: str) -> str:
    """A hazard written as nexum writes it (Rust's escape_default)."""
    return {"\n": "\\n", "\r": "\\r"}.get(c, f"\\u{{{ord(c):x}}}")


def module_text(text: str, max_bytes: int) -> str:
    """A module's log line as nexum writes it: cut, hazards escaped, cut again (bounded.rs)."""
    escaped = "".join(_escape(c) if _is_hazard(c) else c for c in _cut_plain(text, max_bytes))
    length = _size(text)
    if length <= max_bytes and _size(escaped) <= max_bytes:
        return escaped
    return f"{_cut_plain(escaped, max_bytes)}… [cut: {length} bytes in all]"


class LogBudget:
    """A module's log budget as nexum keeps it (log_budget.rs): lines and bytes per second,
    each a token bucket that allows a second's worth at once."""

    def __init__(self, limits: Limits) -> None:
        self._lines = [float(limits.log_lines_per_second), float(limits.log_lines_per_second)]
        self._bytes = [float(limits.log_bytes_per_second), float(limits.log_bytes_per_second)]
        self._last = time.monotonic()

    def take(self, length: int) -> bool:
        """Takes one line of `length` bytes if both budgets allow it."""
        now = time.monotonic()
        seconds, self._last = now - self._last, now
        for bucket in (self._lines, self._bytes):
            bucket[0] = min(bucket[0] + seconds * bucket[1], bucket[1])
        if self._lines[0] < 1 or self._bytes[0] < length:
            return False
        self._lines[0] -= 1
        self._bytes[0] -= length
        return True


def undeclared_chain(chain_id: int) -> str:
    return f"chain {chain_id} is not declared by this module: subscribe to it or list it in [capabilities] chains"


def undeclared_capability(name: str) -> str:
    return f"`{name}` is not in [capabilities] required of module.toml: nexum would refuse to load this module"


def check_method(method: str) -> None:
    """Refuses (denied) any method but the read-only ones, saying why."""
    if method in ALLOWED_METHODS:
        return
    if method.startswith(_SIGNING) or method.startswith("personal_"):
        why = "signing and sending are not available to modules"
    elif method.startswith(_ADMIN):
        why = "node administration and debugging are not available to modules"
    elif "ubscribe" in method or "Filter" in method:
        why = ("subscriptions and node-side filters are managed by the host; "
               "use a subscription in module.toml or eth_getLogs")
    else:
        why = "it is not one of the read-only methods nexum serves"
    raise Refused("denied", f"method `{cut(method, 64)}` is not allowed: {why}")


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def check_call(method: str, params: str, max_bytes: int) -> str:
    """Checks a chain call; returns the params to send (empty text and `null` mean [])."""
    check_method(method)
    shown = cut(method, 64)
    if _size(params) > max_bytes:
        raise Refused("invalid-input",
                      f"params of `{shown}` are {_size(params)} bytes; the limit is {max_bytes} (limits.request_bytes)")
    trimmed = params.strip()
    if not trimmed or trimmed == "null":
        return "[]"
    try:
        json.loads(trimmed, parse_constant=_reject_constant)
    except ValueError as error:
        raise Refused("invalid-input", f"params of `{shown}` are not valid JSON: {error}") from None
    if not trimmed.startswith(("[", "{")):
        raise Refused("invalid-input", f"params of `{shown}` must be a JSON array or object")
    return trimmed


def check_key(key: str, limits: Limits) -> None:
    if not key:
        raise Refused("invalid-input", "keys must not be empty")
    check_prefix(key, limits)


def check_prefix(prefix: str, limits: Limits) -> None:
    if _size(prefix) > limits.store_key_bytes:
        raise Refused("invalid-input", f"key is {_size(prefix)} bytes; the limit is {limits.store_key_bytes}")


def check_cursor(after: str) -> None:
    if _size(after) > CURSOR_MAX_BYTES:
        raise Refused("invalid-input", f"key is {_size(after)} bytes; the limit is {CURSOR_MAX_BYTES}")


def _by_bytes(key: str) -> bytes:
    """Keys sort as nexum sorts them: by their UTF-8 bytes."""
    return key.encode("utf-8", "surrogatepass")


def entry_size(key: str, value: bytes) -> int:
    return _size(key) + len(value)


@dataclass
class WriteSet:
    """One call's writes (None = deleted), held until the call ends, with its quota use.

    `delta` is what the writes add to the committed bytes; `held` what the set itself
    holds (writes and deletes alike), as in store.rs.
    """

    writes: dict[str, bytes | None] = field(default_factory=dict)
    delta: int = 0
    held: int = 0

    def _visible(self, key: str, committed: int | None) -> int:
        if key in self.writes:
            value = self.writes[key]
            return 0 if value is None else entry_size(key, value)
        return committed or 0

    def _held_by(self, key: str) -> int:
        if key not in self.writes:
            return 0
        return entry_size(key, self.writes[key] or b"") + PENDING_ENTRY_OVERHEAD

    def _check_budget(self, limits: Limits, used: int, delta: int, held: int) -> None:
        if delta > self.delta and delta > 0 and used + delta > limits.store_total_bytes:
            raise Refused("denied", f"the store quota of {limits.store_total_bytes} bytes would be exceeded "
                                    f"({used} bytes in use)")
        max_held = max(limits.store_total_bytes, MIN_PENDING_BYTES)
        if held > max_held:
            raise Refused("denied", f"this call's pending writes would hold more than the store quota of "
                                    f"{max_held} bytes; commit in smaller steps")

    def set(self, limits: Limits, used: int, key: str, value: bytes, committed: int | None) -> None:
        check_key(key, limits)
        if len(value) > limits.store_value_bytes:
            raise Refused("invalid-input", f"value is {len(value)} bytes; the limit is {limits.store_value_bytes}")
        size = entry_size(key, value)
        delta = self.delta - self._visible(key, committed) + size
        held = self.held - self._held_by(key) + size + PENDING_ENTRY_OVERHEAD
        self._check_budget(limits, used, delta, held)
        self.delta, self.held = delta, held
        self.writes[key] = value

    def delete(self, limits: Limits, used: int, key: str, committed: int | None) -> None:
        check_key(key, limits)
        visible = self._visible(key, committed)
        if committed is None:
            # Deleting what was never committed leaves nothing to write.
            if key in self.writes:
                self.held -= self._held_by(key)
                self.delta -= visible
                del self.writes[key]
            return
        delta = self.delta - visible
        held = self.held - self._held_by(key) + entry_size(key, b"") + PENDING_ENTRY_OVERHEAD
        self._check_budget(limits, used, delta, held)
        self.delta, self.held = delta, held
        self.writes[key] = None

    def apply(self, limits: Limits, used: int, writes: list[tuple[str, bytes | None]],
              committed: dict[str, bytes]) -> None:
        """Applies `writes` in order as one (store.rs WriteSet::apply): judged whole, the
        last write of a key counting, then all applied or none."""
        if len(writes) > BATCH_MAX_WRITES:
            raise Refused("invalid-input", f"a batch of {len(writes)} writes is over the limit of "
                                           f"{BATCH_MAX_WRITES}; apply it in parts")
        last: dict[str, bytes | None] = {}
        for key, value in writes:
            check_key(key, limits)
            if value is not None and len(value) > limits.store_value_bytes:
                raise Refused("invalid-input", f"value is {len(value)} bytes; the limit is {limits.store_value_bytes}")
            last[key] = value
        delta, held = self.delta, self.held
        for key, value in last.items():
            stored = committed.get(key)
            stored_size = None if stored is None else entry_size(key, stored)
            delta -= self._visible(key, stored_size)
            held -= self._held_by(key)
            if value is not None:
                delta += entry_size(key, value)
                held += entry_size(key, value) + PENDING_ENTRY_OVERHEAD
            elif stored is not None:
                held += entry_size(key, b"") + PENDING_ENTRY_OVERHEAD
        self._check_budget(limits, used, delta, held)
        for key, value in last.items():
            if value is None and key not in committed:
                # Deleting what was never committed leaves nothing to write.
                self.writes.pop(key, None)
            else:
                self.writes[key] = value
        self.delta, self.held = delta, held

    def page(self, committed: dict[str, bytes], prefix: str, after: str | None,
             limit: int) -> tuple[list[tuple[str, bytes]], str | None]:
        """One list-entries page as nexum makes it (store.rs WriteSet::page): the call's own
        live writes merged in key order with the committed entries, the committed ones its
        writes hide passed over."""
        max_entries = min(max(limit, 1), PAGE_MAX_ENTRIES)
        after_bytes = None if after is None else _by_bytes(after)

        def in_range(key: str) -> bool:
            # Every key under the prefix is at least the prefix: past `after` covers both.
            return key.startswith(prefix) and (after_bytes is None or _by_bytes(key) > after_bytes)

        own = sorted(((k, v) for k, v in self.writes.items() if v is not None and in_range(k)),
                     key=lambda e: _by_bytes(e[0]))
        stored = sorted(((k, v) for k, v in committed.items() if in_range(k)), key=lambda e: _by_bytes(e[0]))
        entries: list[tuple[str, bytes]] = []
        i = j = size_so_far = passed = passed_bytes = 0
        cursor: str | None = None
        while True:
            mine = own[i] if i < len(own) else None
            theirs = stored[j] if j < len(stored) else None
            if mine is None and theirs is None:
                return entries, None
            # On a tie the call's write comes first; the committed entry is then hidden.
            own_first = theirs is None or (mine is not None and _by_bytes(mine[0]) <= _by_bytes(theirs[0]))
            key, value = mine if own_first else theirs  # type: ignore[misc]
            size = entry_size(key, value)
            if not own_first and key in self.writes:
                if passed >= PAGE_SCAN_ENTRIES or passed_bytes >= PAGE_SCAN_BYTES:
                    return entries, cursor
                passed += 1
                passed_bytes += size
                cursor = key
                j += 1
                continue
            if entries and (len(entries) == max_entries or size_so_far + size > PAGE_MAX_BYTES):
                return entries, cursor
            if own_first:
                i += 1
            else:
                j += 1
            size_so_far += size
            cursor = key
            entries.append((key, value))
