"""FakeHost: run module.py in plain CPython tests, refused and committed exactly as nexum would.

The fake imports behave like the component's (an `err` is raised as `Err(value)`) and
module.py is driven through nexum.entry, the code app.py uses, so tests exercise the real
conversion and dispatch. The rules come from the module's own module.toml: declared
capabilities and chains, store limits, read-only chain methods, commit-on-success writes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from . import fake_wit as wit
from .convert import fault_from_wit, fault_to_wit
from .entry import Entry
from .errors import Fault, RpcError
from .hexstr import from_hex
from .host import WitImports
from .host_rules import (
    LogBudget,
    Refused,
    WriteSet,
    check_call,
    check_cursor,
    check_key,
    check_prefix,
    size_of,
    entry_size,
    module_text,
    undeclared_capability,
    undeclared_chain,
)
from .keccak import keccak256_bytes
from .manifest import Manifest
from .values import Log

T = TypeVar("T")

#: Answers the module's chain calls: (chain id, method, params as parsed JSON) → result.
RequestHandler = Callable[[int, str, Any], Any]


def _refusal(error: Refused) -> Any:
    return fault_to_wit(wit, Fault(error.kind, error.message))


class _FakeLogging:
    Level = wit.Level

    def __init__(self, host: FakeHost) -> None:
        self._host = host

    def log(self, level: wit.Level, message: str) -> None:
        host = self._host
        host._require("logging")
        limit = host.manifest.limits.log_line_bytes
        if host._log_budget.take(min(len(message.encode("utf-8", "surrogatepass")), limit)):
            host.logs.append((level.name.lower(), module_text(message, limit)))
        else:
            host.logs_dropped += 1


class _FakeLocalStore:
    """local-store against the host's committed map, refused and paged as nexum does."""

    Entry = wit.Entry
    WriteOp_Set = wit.WriteOp_Set
    WriteOp_Delete = wit.WriteOp_Delete

    def __init__(self, host: FakeHost) -> None:
        self._host = host

    def _checked(self, call: Callable[[], T]) -> T:
        self._host._require("local-store")
        try:
            return call()
        except Refused as error:
            raise wit.Err(_refusal(error)) from None

    def _committed_size(self, key: str) -> int | None:
        value = self._host._committed.get(key)
        return None if value is None else entry_size(key, value)

    def get(self, key: str) -> bytes | None:
        host = self._host

        def read() -> bytes | None:
            check_key(key, host.manifest.limits)
            if key in host._pending.writes:
                return host._pending.writes[key]
            return host._committed.get(key)

        return self._checked(read)

    def set(self, key: str, value: bytes) -> None:
        host = self._host
        self._checked(lambda: host._pending.set(host.manifest.limits, host._used, key, bytes(value),
                                                self._committed_size(key)))

    def delete(self, key: str) -> None:
        host = self._host
        self._checked(lambda: host._pending.delete(host.manifest.limits, host._used, key, self._committed_size(key)))

    def list_keys(self, prefix: str) -> list[str]:
        host = self._host

        def keys() -> list[str]:
            limits = host.manifest.limits
            check_prefix(prefix, limits)
            live = {k for k in host._committed if k.startswith(prefix) and k not in host._pending.writes}
            live.update(k for k, v in host._pending.writes.items() if v is not None and k.startswith(prefix))
            if len(live) > limits.list_keys_max:
                raise Refused("invalid-input", f"more than {limits.list_keys_max} keys start with "
                                               f"{json.dumps(prefix)}; list a narrower prefix, or page through "
                                               f"them with list-entries")
            return sorted(live)

        return self._checked(keys)

    def list_entries(self, prefix: str, after: str | None, limit: int) -> wit.EntryPage:
        host = self._host

        def page() -> wit.EntryPage:
            check_prefix(prefix, host.manifest.limits)
            if after is not None:
                check_cursor(after)
            entries, next_key = host._pending.page(host._committed, prefix, after, limit)
            return wit.EntryPage([wit.Entry(k, v) for k, v in entries], next_key)

        return self._checked(page)

    def count(self, prefix: str) -> int:
        host = self._host

        def count() -> int:
            check_prefix(prefix, host.manifest.limits)
            seen = sum(1 for k in host._committed if k.startswith(prefix))
            for key, value in host._pending.writes.items():
                if key.startswith(prefix):
                    stored = key in host._committed
                    seen += (value is not None and not stored) - (value is None and stored)
            return seen

        return self._checked(count)

    def contains(self, key: str) -> bool:
        return self.value_len(key) is not None

    def value_len(self, key: str) -> int | None:
        value = self.get(key)
        return None if value is None else len(value)

    def apply(self, writes: list[wit.WriteOp_Set | wit.WriteOp_Delete]) -> None:
        host = self._host
        ops = [(w.value.key, w.value.value) if isinstance(w, wit.WriteOp_Set) else (w.value, None) for w in writes]
        self._checked(lambda: host._pending.apply(host.manifest.limits, host._used, ops, host._committed))


class _OneCallFailed(Exception):
    """A chain call's failure that, in a batch, fails that call alone (`err` is its WIT error)."""

    def __init__(self, err: wit.Err[Any]) -> None:
        super().__init__(err)
        self.err = err


class _FakeChain:
    """chain.request, checked by nexum's rules and answered by the test's handler."""

    ChainError_Fault = wit.ChainError_Fault
    ChainError_Rpc = wit.ChainError_Rpc
    RpcRequest = wit.RpcRequest

    def __init__(self, host: FakeHost) -> None:
        self._host = host

    def request_batch(self, chain_id: int, requests: list[wit.RpcRequest]) -> list[Any]:
        host = self._host
        host._require("chain")
        if chain_id not in host.manifest.chains:
            raise self._fail("unsupported", undeclared_chain(chain_id))
        # The batch as a whole first (nexum-core/src/host_rules/chain.rs check_batch).
        limits = host.manifest.limits
        if len(requests) > limits.rpc_batch_max:
            raise self._fail("invalid-input", f"a batch of {len(requests)} requests; the limit is "
                                              f"{limits.rpc_batch_max} (limits.rpc_batch_max)")
        total = sum(size_of(r.method) + size_of(r.params) for r in requests)
        if total > limits.request_bytes:
            raise self._fail("invalid-input", f"the batch is {total} bytes; the limit is "
                                              f"{limits.request_bytes} (limits.request_bytes)")
        # Then each call. A refusal, a node error (RpcError) or an answer over answer_bytes
        # fails that call alone; a Fault from the handler stands for the round trip failing
        # (timeout, rate limit, node gone), which fails the whole batch in nexum.
        answers: list[Any] = []
        for r in requests:
            try:
                answers.append(wit.Ok(self._answer(chain_id, r.method, r.params)))
            except _OneCallFailed as failed:
                answers.append(failed.err)
        return answers

    def _fail(self, kind: str, message: str) -> wit.Err[Any]:
        return wit.Err(wit.ChainError_Fault(fault_to_wit(wit, Fault(kind, message))))

    def request(self, chain_id: int, method: str, params: str) -> str:
        host = self._host
        host._require("chain")
        if chain_id not in host.manifest.chains:
            raise self._fail("unsupported", undeclared_chain(chain_id))
        try:
            return self._answer(chain_id, method, params)
        except _OneCallFailed as failed:
            raise failed.err from None

    def _answer(self, chain_id: int, method: str, params: str) -> str:
        """One call checked and answered. What fails this call alone in a batch is raised
        as _OneCallFailed; a handler's Fault (the round trip failing) as the WIT error."""
        host = self._host
        try:
            sent = check_call(method, params, host.manifest.limits.request_bytes)
        except Refused as error:
            raise _OneCallFailed(self._fail(error.kind, error.message)) from None
        parsed = json.loads(sent)
        host.requests.append((chain_id, method, parsed))
        if host._handler is None:
            raise self._fail("unsupported", "no chain handler set: call FakeHost.on_request in the test")
        try:
            answer = json.dumps(host._handler(chain_id, method, parsed))
        except RpcError as error:
            data = None if error.data is None else from_hex(error.data, "RpcError.data")
            raise _OneCallFailed(wit.Err(wit.ChainError_Rpc(wit.RpcError(error.code, error.message, data)))) from None
        except Fault as fault:
            raise wit.Err(wit.ChainError_Fault(fault_to_wit(wit, fault))) from None
        limit = host.manifest.limits.answer_bytes
        if len(answer.encode()) > limit:
            raise _OneCallFailed(self._fail("unavailable", f"the node's answer is {len(answer.encode())} bytes; "
                                                           f"this module may receive {limit} (limits.answer_bytes)"))
        return answer


class FakeHost:
    """An in-memory nexum for one module's tests.

    `store` is the committed store, `logs` the (level, message) lines logged (as nexum
    writes them), `logs_dropped` the lines over the log budget, `requests`
    the (chain id, method, params) chain calls made. init/deliver raise the module's Fault
    after discarding its writes, as nexum would.
    """

    def __init__(self, manifest: str | Path = "module.toml") -> None:
        self.manifest = Manifest.load(manifest)
        # componentize-py imports every interface of the world, and nexum refuses to load a
        # component whose manifest does not grant each one it imports: so does the fake.
        for capability in ("chain", "local-store", "logging"):
            if capability not in self.manifest.capabilities:
                raise ValueError(
                    f"{manifest}: `capabilities.required`: the component imports "
                    f"`nexum:host/{capability}@0.2.1`, which needs the `{capability}` capability; "
                    f'add "{capability}" to [capabilities] required'
                )
        #: Lines logged, as nexum writes them: cut to `log_line_bytes` with a note, control
        #: characters escaped, only those within the log budget (lines and bytes per second).
        self.logs: list[tuple[str, str]] = []
        #: Lines dropped because they were over the log budget, as nexum drops them.
        self.logs_dropped = 0
        self._log_budget = LogBudget(self.manifest.limits)
        self.requests: list[tuple[int, str, Any]] = []
        self._committed: dict[str, bytes] = {}
        self._used = 0
        self._pending = WriteSet()
        self._handler: RequestHandler | None = None
        self._imports = WitImports(
            types=wit,
            chain=_FakeChain(self),
            local_store=_FakeLocalStore(self),
            logging=_FakeLogging(self),
            err=wit.Err,
        )

    # --- driving the module ---

    def on_request(self, handler: RequestHandler) -> None:
        """Answers chain calls with `handler`; raise RpcError (or Fault) in it to fail one."""
        self._handler = handler

    def init(self, module: Any, config: Mapping[str, str] | None = None) -> None:
        """Calls module.init with `config` (default: module.toml's [config])."""
        pairs = list((self.manifest.config if config is None else config).items())
        for key, value in pairs:
            if not isinstance(value, str):
                raise TypeError(f"config {key!r} must be a str, as nexum passes it, not {type(value).__name__}")
        self._call(lambda entry: entry.init(pairs), module)

    def deliver(self, module: Any, event: wit.Event) -> None:
        """Delivers an event made by block(), chain_logs() or tick()."""
        self._call(lambda entry: entry.on_event(event), module)

    def _call(self, run: Callable[[Entry], None], module: Any) -> None:
        self._pending = WriteSet()
        try:
            run(Entry(self._imports, module))
        except wit.Err as failure:
            self._pending = WriteSet()
            problem = wit.lowering_problem(failure.value)
            if problem is not None:
                raise RuntimeError(f"the module trapped (nexum would restart it): its fault does not lower to WIT: "
                                   f"{problem}") from None
            raise fault_from_wit(wit, failure.value) from None
        pending, self._pending = self._pending, WriteSet()
        self._used += pending.delta
        for key, value in pending.writes.items():
            if value is None:
                self._committed.pop(key, None)
            else:
                self._committed[key] = value

    def _require(self, capability: str) -> None:
        if capability not in self.manifest.capabilities:
            raise wit.Err(wit.Fault_Unsupported(undeclared_capability(capability)))

    # --- what the module did ---

    @property
    def store(self) -> Mapping[str, bytes]:
        """The committed store (read-only)."""
        return MappingProxyType(self._committed)

    def store_json(self, key: str) -> Any:
        """The committed JSON value of `key`, or None."""
        raw = self._committed.get(key)
        return None if raw is None else json.loads(raw)

    # --- events ---

    @staticmethod
    def block(number: int, chain_id: int = 31337, timestamp: int | None = None) -> wit.Event_Block:
        """A block event; hashes are made up but stable, each block naming its parent."""

        def fake_hash(n: int) -> bytes:
            return keccak256_bytes(b"fake block " + str(n).encode())

        stamp = 1_700_000_000_000 + 12_000 * number if timestamp is None else timestamp
        return wit.Event_Block(wit.Block(chain_id, number, fake_hash(number), fake_hash(number - 1), stamp))

    @staticmethod
    def chain_logs(chain_id: int, logs: Iterable[Log]) -> wit.Event_ChainLogs:
        """A logs event; make the logs with an event's `encode(values, address=…)`.

        (Not `logs`, which is the list of lines the module logged.)"""

        def opt(text: str | None, what: str) -> bytes | None:
            return None if text is None else from_hex(text, what)

        return wit.Event_ChainLogs(wit.ChainLogs(chain_id, [
            wit.ChainLog(
                address=from_hex(entry.address, "address", 20),
                topics=[from_hex(t, "topic", 32) for t in entry.topics],
                data=from_hex(entry.data, "data"),
                block_number=entry.block_number,
                block_hash=opt(entry.block_hash, "block_hash"),
                transaction_hash=opt(entry.transaction_hash, "transaction_hash"),
                transaction_index=entry.transaction_index,
                log_index=entry.log_index,
                removed=entry.removed,
            )
            for entry in logs
        ]))

    @staticmethod
    def tick(fired_at: int, schedule: str = "* * * * * *") -> wit.Event_Tick:
        """A cron tick fired at `fired_at` (ms since the epoch)."""
        return wit.Event_Tick(wit.Tick(fired_at, schedule))
