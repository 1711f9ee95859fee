"""module.py's behaviour against a FakeHost that refuses what nexum refuses.

Run from the module's folder: python3 -m unittest discover -s tests
"""

from __future__ import annotations

import tempfile
import unittest
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import module
from nexum import Block, Fault, Log, RpcError, chain, store
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


if __name__ == "__main__":
    unittest.main()
