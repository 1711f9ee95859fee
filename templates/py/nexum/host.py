"""`log`, `store` and `chain`: the host's imports behind friendly Python calls.

They call whichever imports are bound: the real WIT imports inside the component (bound
by app.py), or a FakeHost's look-alikes in tests. Host errors come back as Fault or
RpcError, never as componentize-py's raw `Err`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from .convert import chain_error_from_wit, fault_from_wit
from .errors import Fault, RpcError

T = TypeVar("T")


@dataclass(frozen=True)
class WitImports:
    """The world's imports plus the exception class an import raises for `err`."""

    types: Any
    chain: Any
    local_store: Any
    logging: Any
    err: type[BaseException]


_bound: WitImports | None = None


def bind(imports: WitImports) -> None:
    """Makes `imports` the ones `log`, `store` and `chain` call."""
    global _bound
    _bound = imports


def bound() -> WitImports:
    """The imports in use; an error outside a handler or before a FakeHost exists."""
    if _bound is None:
        raise RuntimeError(
            "no nexum host is bound: call host functions from handlers (in tests, create a FakeHost first)"
        )
    return _bound


def _store_call(call: Callable[[WitImports], T]) -> T:
    """Runs a local-store or logging import, turning its `err` into a Fault."""
    imports = bound()
    try:
        return call(imports)
    except imports.err as failure:
        raise fault_from_wit(imports.types, failure.value) from None  # type: ignore[attr-defined]


def _chain_call(call: Callable[[WitImports], T]) -> T:
    """Runs a chain import, turning its `err` into a Fault or an RpcError."""
    imports = bound()
    try:
        return call(imports)
    except imports.err as failure:
        raise chain_error_from_wit(imports.types, imports.chain, failure.value) from None  # type: ignore[attr-defined]


class _Log:
    """Log lines, tagged by nexum with the module's name."""

    def _write(self, level: str, message: str) -> None:
        _store_call(lambda i: i.logging.log(getattr(i.logging.Level, level), str(message)))

    def trace(self, message: str) -> None:
        self._write("TRACE", message)

    def debug(self, message: str) -> None:
        self._write("DEBUG", message)

    def info(self, message: str) -> None:
        self._write("INFO", message)

    def warn(self, message: str) -> None:
        self._write("WARN", message)

    def error(self, message: str) -> None:
        self._write("ERROR", message)


class _Store:
    """The module's private key-value store. A handler's writes commit only if it succeeds."""

    def get(self, key: str) -> bytes | None:
        value: bytes | None = _store_call(lambda i: i.local_store.get(key))
        return value

    def set(self, key: str, value: bytes) -> None:
        if not isinstance(value, (bytes, bytearray)):
            raise TypeError(f"store.set takes bytes, got {type(value).__name__}; use store.set_json for other values")
        _store_call(lambda i: i.local_store.set(key, bytes(value)))

    def delete(self, key: str) -> None:
        _store_call(lambda i: i.local_store.delete(key))

    def keys(self, prefix: str = "") -> list[str]:
        """Keys starting with `prefix`, sorted (refused by the host when too many match)."""
        keys: list[str] = _store_call(lambda i: i.local_store.list_keys(prefix))
        return keys

    def count(self, prefix: str = "") -> int:
        """How many keys start with `prefix`, the handler's own writes counted."""
        count: int = _store_call(lambda i: i.local_store.count(prefix))
        return count

    def has(self, key: str) -> bool:
        """Whether `key` has a value."""
        found: bool = _store_call(lambda i: i.local_store.contains(key))
        return found

    def size(self, key: str) -> int | None:
        """The length of `key`'s value in bytes, or None; the value itself is not read."""
        length: int | None = _store_call(lambda i: i.local_store.value_len(key))
        return length

    def page(self, prefix: str = "", after: str | None = None, limit: int = 1000) -> tuple[list[tuple[str, bytes]], str | None]:
        """One page of the entries whose key starts with `prefix`, after the key `after`
        (from the first when None): (entries as (key, value), next). At most `limit` entries
        (nexum caps a page at 1,000 and 1 MiB). A page may hold fewer, even none, while
        `next` is set: read on until it is None."""
        if not isinstance(limit, int) or not 0 <= limit <= 0xFFFFFFFF:
            raise TypeError(f"store.page: limit must be a whole number from 0 to 2**32 - 1, got {limit!r}")
        page = _store_call(lambda i: i.local_store.list_entries(prefix, after, limit))
        return [(entry.key, entry.value) for entry in page.entries], page.next

    def entries(self, prefix: str = "") -> Iterator[tuple[str, bytes]]:
        """Every entry whose key starts with `prefix`, as (key, value) in key order, a page at a time."""
        after: str | None = None
        while True:
            entries, after = self.page(prefix, after)
            yield from entries
            if after is None:
                return

    def apply(self, writes: Iterable[tuple[str, bytes | None]]) -> None:
        """Applies `writes` in order as one: (key, bytes) sets a key, (key, None) deletes it.
        All of them, or none when one breaks a limit or the whole would take the store over
        its quota. At most 10,000 writes."""

        def ops(i: WitImports) -> list[Any]:
            made = []
            for key, value in writes:
                if value is None:
                    made.append(i.local_store.WriteOp_Delete(key))
                elif isinstance(value, (bytes, bytearray)):
                    made.append(i.local_store.WriteOp_Set(i.local_store.Entry(key, bytes(value))))
                else:
                    raise TypeError(f"store.apply: the value of {key!r} must be bytes or None, "
                                    f"got {type(value).__name__}")
            return made

        _store_call(lambda i: i.local_store.apply(ops(i)))

    def get_json(self, key: str) -> Any:
        """The value stored as JSON under `key`, or None."""
        raw = self.get(key)
        return None if raw is None else json.loads(raw)

    def set_json(self, key: str, value: Any) -> None:
        self.set(key, json.dumps(value, separators=(",", ":")).encode())


class _Chain:
    """Read-only JSON-RPC to the chains the module declares in module.toml."""

    def request(self, chain_id: int, method: str, params: list[Any] | Mapping[str, Any] | None = None) -> Any:
        """One JSON-RPC call; returns the parsed `result`."""
        text = json.dumps([] if params is None else params, separators=(",", ":"))
        return json.loads(_chain_call(lambda i: i.chain.request(chain_id, method, text)))

    def request_batch(self, chain_id: int,
                      calls: Iterable[tuple[str, list[Any] | Mapping[str, Any] | None]]) -> list[Any]:
        """Several read-only JSON-RPC calls in one round trip: `calls` is (method, params)
        tuples (or (method,)). Returns one entry per call, in order: its parsed result, or the
        RpcError or Fault it failed with (a refused method, a node error, an answer over
        answer_bytes), returned rather than raised, so one failing call does not fail the
        others. Raised for the whole batch: an undeclared chain, more than
        `limits.rpc_batch_max` calls (100) or `limits.request_bytes` of methods and params,
        and a round trip that fails (timeout, rate limit, node unreachable)."""
        pairs = []
        for call in calls:
            if not isinstance(call, tuple) or not 1 <= len(call) <= 2:
                raise TypeError(f"chain.request_batch: each call is (method,) or (method, params), got {call!r}")
            method, params = call[0], call[1] if len(call) == 2 else None
            pairs.append((str(method), json.dumps([] if params is None else params, separators=(",", ":"))))

        def send(i: WitImports) -> Any:
            return i.chain.request_batch(chain_id, [i.chain.RpcRequest(m, p) for m, p in pairs])

        answers = _chain_call(send)
        imports = bound()
        results: list[Any] = []
        for (method, _), answer in zip(pairs, answers):
            if isinstance(answer, imports.err):
                results.append(chain_error_from_wit(imports.types, imports.chain, answer.value))
                continue
            try:
                results.append(json.loads(answer.value))
            except ValueError as error:
                results.append(Fault("internal", f"{method}: the node's answer is not JSON: {error}"))
        return results

    def call(self, chain_id: int, tx: Mapping[str, Any], block: str | int = "latest") -> str:
        """`eth_call` of `tx` ({to, data, …}) at `block`; returns the '0x…' result."""
        tag = hex(block) if isinstance(block, int) else block
        result = self.request(chain_id, "eth_call", [dict(tx), tag])
        if not isinstance(result, str):
            raise Fault("internal", f"eth_call returned {type(result).__name__}, not a hex string")
        return result


log = _Log()
store = _Store()
chain = _Chain()

__all__ = ["WitImports", "bind", "bound", "log", "store", "chain", "Fault", "RpcError"]
