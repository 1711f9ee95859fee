"""module.py's behaviour against a FakeHost that refuses what nexum refuses.

Run from the module's folder: python3 -m unittest discover -s tests
"""

from __future__ import annotations

import inspect
import tempfile
import unittest
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

import module
from nexum import Block, Fault, Log, RpcError, chain, log, store
from nexum import fake_wit as wit
from nexum.abi import encode_values
from nexum.testing import FakeHost

EMITTER = "0x5fbdb2315678afecb367f032d93f642f64180aa3"
SENDER = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"


def ping(seq: int, removed: bool = False) -> Log:
    return module.PING.encode({"sender": SENDER, "seq": seq, "payload": "0x01"}, address=EMITTER, removed=removed)


def pong(seq: int, note: str) -> Log:
    return module.PONG.encode({"seq": seq, "note": note}, address=EMITTER)


def count_answer(count: int) -> str:
    return "0x" + encode_values(module.COUNT.outputs, [count], "count").hex()


class CounterTest(unittest.TestCase):
    def setUp(self) -> None:
        self.host = FakeHost()
        self.calls: list[tuple[int, str, Any]] = []

        def node(chain_id: int, method: str, params: Any) -> str:
            self.calls.append((chain_id, method, params))
            return count_answer(5)

        self.host.on_request(node)
        self.host.init(module)

    def lines(self) -> list[str]:
        return [message for _, message in self.host.logs]

    def test_init_reads_the_config(self) -> None:
        self.assertEqual(self.host.logs, [("info", "counter ready (read_count=true)")])
        self.host.init(module, {"read_count": "false"})
        self.assertEqual(self.lines()[-1], "counter ready (read_count=false)")

    def test_a_block_is_logged_and_stored(self) -> None:
        self.host.deliver(module, FakeHost.block(12))
        self.assertEqual(self.lines()[-1], "block 12")
        self.assertEqual(self.host.store_json("last-block"), 12)

    def test_pings_and_pongs_are_counted_and_the_contract_is_asked_its_count(self) -> None:
        self.host.deliver(module, FakeHost.chain_logs(31337, [ping(3), ping(4), pong(5, "burst")]))
        self.assertEqual(self.lines()[1:], [
            f"Ping #3 from {SENDER} (1 so far)",
            f"Ping #4 from {SENDER} (2 so far)",
            'Pong #5: "burst" (1 so far)',
            "the contract's own count is 5",
        ])
        self.assertEqual(self.host.store_json("count/Ping"), 2)
        self.assertEqual(self.host.store_json("count/Pong"), 1)
        self.assertEqual(self.calls, [(31337, "eth_call", [{"to": EMITTER, "data": module.COUNT.selector}, "latest"])])

    def test_a_removed_log_is_counted_back_out(self) -> None:
        self.host.deliver(module, FakeHost.chain_logs(31337, [ping(1), ping(2)]))
        self.host.deliver(module, FakeHost.chain_logs(31337, [ping(2, removed=True)]))
        self.assertEqual(self.host.store_json("count/Ping"), 1)

    def test_an_unexpected_event_is_a_warning(self) -> None:
        other = module.PING.encode({"sender": SENDER, "seq": 1, "payload": "0x"}, address=EMITTER)
        other = type(other)(**{**other.__dict__, "topics": ("0x" + "ab" * 32,) + other.topics[1:]})
        self.host.deliver(module, FakeHost.chain_logs(31337, [other]))
        self.assertIn(("warn", "unexpected event 0x" + "ab" * 32), self.host.logs)

    def test_a_failing_event_discards_its_writes(self) -> None:
        def reverting(chain_id: int, method: str, params: Any) -> str:
            raise RpcError(3, "execution reverted", "0x08c379a0")

        self.host.on_request(reverting)
        with self.assertRaises(Fault) as failure:
            self.host.deliver(module, FakeHost.chain_logs(31337, [ping(1)]))
        self.assertEqual(failure.exception, Fault("internal", "rpc error 3: execution reverted"))
        self.assertNotIn("count/Ping", self.host.store)

    def test_an_event_without_a_handler_fails(self) -> None:
        with self.assertRaises(Fault) as failure:
            self.host.deliver(module, FakeHost.tick(1_000))
        self.assertEqual(failure.exception, Fault("internal", "module.py has no on_tick handler"))


class HostRulesTest(unittest.TestCase):
    """The refusals a module meets in nexum, met the same way under FakeHost."""

    def setUp(self) -> None:
        self.host = FakeHost()
        self.host.on_request(lambda chain_id, method, params: "0x1")

    def run_block(self, handler: Callable[[Block], object]) -> Fault:
        with self.assertRaises(Fault) as failure:
            self.host.deliver(SimpleNamespace(on_block=handler), FakeHost.block(1))
        return failure.exception

    def test_an_undeclared_chain_is_refused(self) -> None:
        fault = self.run_block(lambda block: chain.request(1, "eth_blockNumber"))
        self.assertEqual(fault, Fault(
            "unsupported",
            "chain 1 is not declared by this module: subscribe to it or list it in [capabilities] chains",
        ))

    def test_a_method_that_is_not_read_only_is_denied(self) -> None:
        fault = self.run_block(lambda block: chain.request(31337, "eth_sendTransaction", [{}]))
        self.assertEqual(fault.kind, "denied")
        self.assertIn("signing and sending are not available to modules", fault.message)

    def test_a_key_over_the_limit_is_refused_and_nothing_commits(self) -> None:
        def handler(block: Block) -> None:
            store.set("kept", b"1")
            store.set("k" * 1025, b"")

        fault = self.run_block(handler)
        self.assertEqual(fault, Fault("invalid-input", "key is 1025 bytes; the limit is 1024"))
        self.assertEqual(dict(self.host.store), {})

    def test_a_call_reads_its_own_writes_and_catching_a_fault_keeps_them(self) -> None:
        seen = []

        def handler(block: Block) -> None:
            store.set_json("n", 1)
            seen.append(store.get_json("n"))
            try:
                store.set("", b"")
            except Fault as fault:
                seen.append(fault.kind)

        self.host.deliver(SimpleNamespace(on_block=handler), FakeHost.block(1))
        self.assertEqual(seen, [1, "invalid-input"])
        self.assertEqual(self.host.store_json("n"), 1)

    def test_a_manifest_that_does_not_grant_every_imported_interface_is_refused(self) -> None:
        with tempfile.TemporaryDirectory() as folder:
            manifest = Path(folder) / "module.toml"
            manifest.write_text('[module]\nname = "t"\nversion = "0"\n[capabilities]\nrequired = ["logging"]\n')
            with self.assertRaises(ValueError) as refused:
                FakeHost(manifest)
        self.assertIn("which needs the `chain` capability", str(refused.exception))

    def test_a_fault_a_test_did_not_expect_is_reported_by_unittest(self) -> None:
        def fails(block: Block) -> None:
            raise Fault("unavailable", "oops")

        class Unexpected(unittest.TestCase):
            def runTest(self) -> None:
                FakeHost().deliver(SimpleNamespace(on_block=fails), FakeHost.block(1))

        result = unittest.TestResult()
        Unexpected().run(result)
        self.assertEqual(len(result.errors), 1)
        self.assertIn("Fault: unavailable: oops", result.errors[0][1])


BAD_WAITS = (1.5, "soon", -1, 2**70, 2**64, True)


class FaultsReachNexumTest(unittest.TestCase):
    """Whatever a handler raises reaches nexum as a fault, never as a trap."""

    def deliver(self, handler: Callable[[Block], object]) -> Fault:
        with self.assertRaises(Fault) as failure:
            FakeHost().deliver(SimpleNamespace(on_block=handler), FakeHost.block(1))
        return failure.exception

    def test_a_fault_refuses_a_retry_hint_that_is_not_a_u64_and_prints_its_message(self) -> None:
        for bad in BAD_WAITS:
            with self.subTest(bad), self.assertRaisesRegex(TypeError, "^retry_after_ms must be an int from 0 to 2"):
                Fault("rate-limited", "slow", bad)
        for good in (None, 0, 5, 2**64 - 1):
            self.assertEqual(Fault("rate-limited", "slow", good).retry_after_ms, good)
        self.assertEqual(Fault("unavailable", 42).message, "42")

        class Unprintable:
            def __str__(self) -> str:
                raise RuntimeError("no")

        with self.assertRaisesRegex(TypeError, r"str\(\) of the Unprintable given failed"):
            Fault("unavailable", Unprintable())

    def test_a_bad_retry_hint_fails_the_event_as_internal(self) -> None:
        def handler(block: Block) -> None:
            raise Fault("rate-limited", "slow", 1.5)

        fault = self.deliver(handler)
        self.assertEqual(fault.kind, "internal")
        self.assertIn("retry_after_ms must be an int from 0 to 2**64 - 1, or None; got 1.5", fault.message)

    def test_a_fault_changed_after_it_was_made_is_checked_again_on_the_way_out(self) -> None:
        for field, value in [*(("retry_after_ms", bad) for bad in BAD_WAITS), ("kind", "bogus")]:
            fault = Fault("rate-limited", "slow", 5)
            setattr(fault, field, value)

            def handler(block: Block, fault: Fault = fault) -> None:
                raise fault

            with self.subTest(field=field, value=value):
                failure = self.deliver(handler)
                self.assertEqual(failure.kind, "internal")
                self.assertRegex(failure.message, "^a Fault that nexum cannot carry was raised: ")
        printed = Fault("unavailable", "x")
        printed.message = 42  # type: ignore[assignment]

        def raise_printed(block: Block) -> None:
            raise printed

        self.assertEqual(self.deliver(raise_printed), Fault("unavailable", "42"))

    def test_an_exception_whose_message_cannot_be_printed_is_still_a_fault(self) -> None:
        class Unprintable(Exception):
            def __str__(self) -> str:
                raise RuntimeError("no")

        def handler(block: Block) -> None:
            raise Unprintable()

        self.assertEqual(self.deliver(handler), Fault("internal", "Unprintable (its message cannot be printed)"))

        class Code:
            def __format__(self, spec: str) -> str:
                raise RuntimeError("no")

        def rpc(block: Block) -> None:
            error = RpcError(3, "boom")
            error.code = Code()  # type: ignore[assignment]
            raise error

        self.assertEqual(self.deliver(rpc), Fault("internal", "RpcError (its message cannot be printed)"))

    def test_an_async_handler_is_refused_and_its_coroutine_closed(self) -> None:
        ran: list[Block] = []

        async def on_block(block: Block) -> None:
            ran.append(block)

        self.assertEqual(self.deliver(on_block), Fault(
            "internal", "on_block returned a coroutine: handlers must be synchronous (no async def)"))
        self.assertEqual(ran, [])

        returned = []

        def returns_a_coroutine(block: Block) -> object:
            returned.append(on_block(block))
            return returned[-1]

        self.deliver(returns_a_coroutine)
        self.assertEqual(inspect.getcoroutinestate(returned[0]), inspect.CORO_CLOSED)

        async def init(config: dict[str, str]) -> None:
            pass

        with self.assertRaises(Fault) as failure:
            FakeHost().init(SimpleNamespace(init=init))
        self.assertEqual(failure.exception.message,
                         "init returned a coroutine: handlers must be synchronous (no async def)")

    def test_the_fake_host_traps_on_a_fault_that_does_not_lower_to_wit(self) -> None:
        for bad, problem in [
            (wit.Fault_RateLimited(wit.RateLimit(-1)), "retry_after_ms -1 is not a u64"),
            (wit.Fault_RateLimited(wit.RateLimit(1.5)), "retry_after_ms 1.5 is not a u64"),  # type: ignore[arg-type]
            (wit.Fault_RateLimited(wit.RateLimit(2**64)), "is not a u64"),
            (wit.Fault_Internal(42), "Fault_Internal carries a int, not a str"),  # type: ignore[arg-type]
        ]:
            with self.subTest(bad), mock.patch("nexum.entry.fault_to_wit", return_value=bad):
                with self.assertRaises(RuntimeError) as trapped:
                    FakeHost().deliver(SimpleNamespace(on_block=lambda block: 1 / 0), FakeHost.block(1))
                self.assertIn("the module trapped", str(trapped.exception))
                self.assertIn(problem, str(trapped.exception))


def during(host: FakeHost, work: Callable[[], Any]) -> Any:
    """Runs `work` as one handler call; returns what it returned."""
    result: list[Any] = []
    host.deliver(SimpleNamespace(on_block=lambda block: result.append(work())), FakeHost.block(1))
    return result[0]


def numbered(prefix: str, start: int, end: int) -> list[str]:
    return [f"{prefix}{i:04}" for i in range(start, end)]


class ChainBatchTest(unittest.TestCase):
    """Batches of chain calls, as nexum serves them."""

    def test_each_call_of_a_batch_succeeds_or_fails_on_its_own(self) -> None:
        host = FakeHost()

        def node(chain_id: int, method: str, params: Any) -> str:
            if method == "eth_call":
                raise RpcError(3, "execution reverted", "0x08c379a0")
            return "0x2a"

        host.on_request(node)
        answers = during(host, lambda: chain.request_batch(31337, [
            ("eth_blockNumber", None), ("eth_sendTransaction", [{}]), ("eth_call", [{"to": EMITTER}, "latest"])]))
        self.assertEqual(answers[0], "0x2a")
        self.assertEqual(answers[1], Fault("denied", "method `eth_sendTransaction` is not allowed: "
                                                     "signing and sending are not available to modules"))
        self.assertIsInstance(answers[2], RpcError)
        self.assertEqual((answers[2].code, answers[2].data), (3, "0x08c379a0"))
        self.assertEqual([method for _, method, _ in host.requests], ["eth_blockNumber", "eth_call"])

    def test_a_failed_round_trip_fails_the_whole_batch_and_an_answer_too_large_its_call_alone(self) -> None:
        host = LimitsTest().host_with("answer_bytes = 16")

        def node(chain_id: int, method: str, params: Any) -> str:
            if method == "eth_gasPrice":
                raise Fault("timeout", "the node did not answer")
            return "0x" + "ab" * 20 if method == "eth_getCode" else "0x1"

        host.on_request(node)
        answers = during(host, lambda: chain.request_batch(31337, [("eth_chainId",), ("eth_getCode", ["0x00", "latest"])]))
        self.assertEqual(answers, ["0x1", Fault("unavailable", "the node's answer is 44 bytes; "
                                                               "this module may receive 16 (limits.answer_bytes)")])
        with self.assertRaises(Fault) as failed:
            during(host, lambda: chain.request_batch(31337, [("eth_chainId",), ("eth_gasPrice",)]))
        self.assertEqual(failed.exception.kind, "timeout")
        with self.assertRaises(Fault) as undeclared:
            during(host, lambda: chain.request_batch(5, [("eth_chainId",)]))
        self.assertEqual(undeclared.exception.kind, "unsupported")

    def test_a_batch_over_the_limits_is_refused_whole(self) -> None:
        host = LimitsTest().host_with("rpc_batch_max = 2\nrequest_bytes = 64")
        host.on_request(lambda chain_id, method, params: "0x1")
        for calls, refusal in [
            ([("eth_chainId", None)] * 3,
             Fault("invalid-input", "a batch of 3 requests; the limit is 2 (limits.rpc_batch_max)")),
            ([("eth_getBalance", ["0x" + "0" * 40, "latest"]), ("eth_chainId", None)],
             Fault("invalid-input", "the batch is 82 bytes; the limit is 64 (limits.request_bytes)")),
        ]:
            with self.subTest(refusal.message), self.assertRaises(Fault) as refused:
                during(host, lambda: chain.request_batch(31337, calls))
            self.assertEqual(refused.exception, refusal)
        self.assertEqual(host.requests, [])


class StoreTest(unittest.TestCase):
    """Counting, paging and batches, as nexum does them."""

    def test_count_has_and_size_see_the_handlers_own_writes_and_deletes(self) -> None:
        host = FakeHost()
        during(host, lambda: store.apply([("a/1", b"one"), ("a/2", b"two"), ("b/1", b"x")]))

        def look() -> list[Any]:
            store.delete("a/1")
            store.set("a/3", b"three")
            store.delete("never")
            return [store.count("a/"), store.count(), store.has("a/1"), store.has("a/3"),
                    store.size("a/3"), store.size("a/1"), store.size("a/2")]

        self.assertEqual(during(host, look), [2, 3, False, True, 5, None, 3])

    def test_pages_walk_the_store_in_key_order_merged_with_the_handlers_writes(self) -> None:
        host = FakeHost()
        during(host, lambda: store.apply([(k, k.encode()) for k in numbered("k/", 0, 2500)]))

        def walk() -> Any:
            store.delete("k/0000")
            store.set("k/0001", b"rewritten")
            store.set("k/2500", b"new")
            return store.page("k/"), store.page("k/", after="k/1000", limit=3), list(store.entries("k/"))

        first, small, everything = during(host, walk)
        self.assertEqual((len(first[0]), first[1]), (1000, "k/1000"))
        self.assertEqual(first[0][0], ("k/0001", b"rewritten"))
        self.assertEqual(small, ([(k, k.encode()) for k in numbered("k/", 1001, 1004)], "k/1003"))
        self.assertEqual([k for k, _ in everything], numbered("k/", 1, 2500) + ["k/2500"])

        during(host, lambda: store.apply([(f"big/{k}", bytes(600 * 1024)) for k in "xyz"]))
        pages = during(host, lambda: [store.page("big/"), store.page("big/", after="big/x")])
        self.assertEqual([(len(entries), next_key) for entries, next_key in pages], [(1, "big/x"), (1, "big/y")])

    def test_a_page_passes_over_at_most_4000_entries_the_handler_hides_and_may_hold_none(self) -> None:
        host = FakeHost()
        during(host, lambda: store.apply([(k, b"v") for k in numbered("h/", 0, 5000)]))

        def walk() -> Any:
            store.apply([(k, None) for k in numbered("h/", 0, 4500)])
            return store.page("h/"), [k for k, _ in store.entries("h/")]

        first, rest = during(host, walk)
        self.assertEqual(first, ([], "h/3999"))
        self.assertEqual(rest, numbered("h/", 4500, 5000))

    def test_a_batch_applies_whole_or_not_at_all(self) -> None:
        host = FakeHost()

        def refused(writes: list[tuple[str, bytes | None]]) -> Any:
            """The fault `writes` are refused with, and what the call saw afterwards."""

            def attempt() -> Any:
                try:
                    store.apply(writes)
                except Fault as fault:
                    return fault, store.has("a"), store.count()
                return None

            return during(host, attempt)

        for writes, refusal in [
            ([("a", b"1"), ("b", bytes(1024 * 1024 + 1))],
             Fault("invalid-input", "value is 1048577 bytes; the limit is 1048576")),
            ([("a", b"1"), ("", None)], Fault("invalid-input", "keys must not be empty")),
            ([(f"k{i}", None) for i in range(10_001)],
             Fault("invalid-input", "a batch of 10001 writes is over the limit of 10000; apply it in parts")),
        ]:
            with self.subTest(refusal.message):
                self.assertEqual(refused(writes), (refusal, False, 0))
        during(host, lambda: store.apply([("a", b"1"), ("a", b"22"), ("b", b"x"), ("b", None)]))
        self.assertEqual(dict(host.store), {"a": b"22"})

        # Only the last write of a key counts against the quota: 9 bytes then 1 fit in 10.
        small = LimitsTest().host_with("store_total_bytes = 10")
        during(small, lambda: store.apply([("k", b"12345678"), ("k", b"1")]))
        self.assertEqual(dict(small.store), {"k": b"1"})

        def over() -> Any:
            try:
                store.apply([("l", b"1234"), ("m", b"12345")])
            except Fault as fault:
                return fault, store.has("l")
            return None

        self.assertEqual(during(small, over),
                         (Fault("denied", "the store quota of 10 bytes would be exceeded (2 bytes in use)"), False))

    def test_keys_are_ordered_by_their_utf8_bytes_as_nexum_orders_them(self) -> None:
        host = FakeHost()
        during(host, lambda: store.apply([("u/😀", b"1"), ("u/\uff61", b"2"), ("u/a", b"3")]))
        order = during(host, lambda: (store.keys("u/"), [k for k, _ in store.entries("u/")]))
        self.assertEqual(order, (["u/a", "u/\uff61", "u/😀"], ["u/a", "u/\uff61", "u/😀"]))

    def test_a_cursor_longer_than_any_key_is_refused(self) -> None:
        with self.assertRaises(Fault) as refused:
            during(FakeHost(), lambda: store.page("", after="x" * 65_537))
        self.assertEqual(refused.exception, Fault("invalid-input", "key is 65537 bytes; the limit is 65536"))


class LimitsTest(unittest.TestCase):
    """module.toml's [limits], refused where nexum refuses to load it."""

    def host_with(self, limits: str) -> FakeHost:
        with tempfile.TemporaryDirectory() as folder:
            manifest = Path(folder) / "module.toml"
            manifest.write_text('[module]\nname = "t"\nversion = "0"\n[capabilities]\n'
                                f'required = ["chain", "local-store", "logging"]\nchains = [31337]\n'
                                f'[limits]\n{limits}\n')
            return FakeHost(manifest)

    def test_an_unknown_name_a_value_that_is_not_a_whole_number_above_0_or_a_raised_value(self) -> None:
        for line, message in [
            ("fuel = 1", "`limits.fuel`: unknown field `fuel`, expected one of `fuel_per_event`, `memory_bytes`, "),
            ("store_key_bytes = 1.5", "`limits.store_key_bytes`: expected an integer, got 1.5"),
            ("store_key_bytes = 512.0", "`limits.store_key_bytes`: expected an integer, got 512.0"),
            ('store_key_bytes = "512"', "`limits.store_key_bytes`: expected an integer, got '512'"),
            ("store_key_bytes = true", "`limits.store_key_bytes`: expected an integer, got True"),
            ("store_key_bytes = 0", "`limits.store_key_bytes`: must be greater than 0"),
            ("store_key_bytes = -1", "`limits.store_key_bytes`: must be greater than 0"),
            ("store_key_bytes = 1025", "`limits.store_key_bytes`: asks for 1025 but the engine allows at most 1024"),
            ("memory_bytes = 67108865",
             "`limits.memory_bytes`: asks for 67108865 but the engine allows at most 67108864"),
        ]:
            with self.subTest(line), self.assertRaises(ValueError) as refused:
                self.host_with(line)
            self.assertIn(message, str(refused.exception))

    def test_a_lowered_limit_applies(self) -> None:
        host = self.host_with("store_key_bytes = 4\nfuel_per_event = 1000\nrpc_batch_max = 100")
        with self.assertRaises(Fault) as failure:
            host.deliver(SimpleNamespace(on_block=lambda block: store.set("12345", b"1")), FakeHost.block(1))
        self.assertEqual(failure.exception, Fault("invalid-input", "key is 5 bytes; the limit is 4"))

    def test_log_lines_are_cut_and_escaped_as_nexum_writes_them_and_dropped_over_the_line_budget(self) -> None:
        host = self.host_with("log_line_bytes = 16\nlog_lines_per_second = 3")

        def flood(block: Block) -> None:
            log.info("a\nforged\x1b[31m line")
            log.warn("é" * 10)
            log.info("short\tline")
            for i in range(50):
                log.info(f"line {i}")

        host.deliver(SimpleNamespace(on_block=flood), FakeHost.block(1))
        self.assertEqual(host.logs[:3], [
            ("info", "a\\nforged\\u{1b}[… [cut: 18 bytes in all]"),
            ("warn", "é" * 8 + "… [cut: 20 bytes in all]"),
            ("info", "short\tline"),
        ])
        # Three lines a second, a second's worth at once: the rest of the flood is dropped
        # (a line more for each third of a second the test is held up).
        self.assertLess(len(host.logs), 10)
        self.assertEqual(len(host.logs) + host.logs_dropped, 53)

    def test_log_lines_over_the_byte_budget_are_dropped(self) -> None:
        host = self.host_with("log_bytes_per_second = 1000")

        def flood(block: Block) -> None:
            for _ in range(3):
                log.info("x" * 1000)

        host.deliver(SimpleNamespace(on_block=flood), FakeHost.block(1))
        self.assertEqual((len(host.logs), host.logs_dropped), (1, 2))


if __name__ == "__main__":
    unittest.main()
