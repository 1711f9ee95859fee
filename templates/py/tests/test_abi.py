"""The hand-written Keccak and ABI codec: known vectors, round trips, hostile data."""

from __future__ import annotations

import time
import unittest

from nexum import AbiError, Log, event, function, keccak256
from nexum.hexstr import from_hex

PING = event("event Ping(address indexed sender, uint256 indexed seq, bytes payload)")
PONG = event("event Pong(uint256 indexed seq, string note)")
SENDER = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"


def word(n: int) -> str:
    return n.to_bytes(32, "big").hex()


def pong_with_data(data_hex: str) -> Log:
    return Log(address="0x" + "00" * 20, topics=(PONG.topic, "0x" + word(1)), data="0x" + data_hex)


class KeccakTest(unittest.TestCase):
    def test_known_vectors(self) -> None:
        self.assertEqual(keccak256(""), "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470")
        self.assertEqual(
            keccak256("Ping(address,uint256,bytes)"),
            "0x1357ced6b1561b5e4d78f91f6ef06a85126d60f4d1cc9bcba20ac1b1c5d46007",
        )
        self.assertEqual(keccak256(b"Ping(address,uint256,bytes)"), keccak256("Ping(address,uint256,bytes)"))

    def test_inputs_around_the_block_size(self) -> None:
        # Checked against a node's web3_sha3: 135 and 136 bytes straddle the 136-byte rate.
        self.assertEqual(keccak256(b"a" * 135), "0x34367dc248bbd832f4e3e69dfaac2f92638bd0bbd18f2912ba4ef454919cf446")
        self.assertEqual(keccak256(b"a" * 136), "0xa6c4d403279fe3e0af03729caada8374b5ca54d8065329a3ebcaeb4b60aa386e")


class EventTest(unittest.TestCase):
    def test_signature_and_topic(self) -> None:
        self.assertEqual(PING.name, "Ping")
        self.assertEqual(PING.signature, "Ping(address,uint256,bytes)")
        self.assertEqual(PONG.topic, "0x695348b1ddc5783a055d24ae63761449001b19a179e9875155fdc30f2405f919")

    def test_encode_then_decode_gives_the_values_back(self) -> None:
        values = {"sender": SENDER.upper().replace("0X", "0x"), "seq": 7, "payload": "0xdeadbeef"}
        log = PING.encode(values, address="0x5FbDB2315678afecb367f032d93F642f64180aa3", block_number=9)
        self.assertTrue(PING.matches(log))
        self.assertFalse(PONG.matches(log))
        self.assertEqual(log.block_number, 9)
        self.assertEqual(log.address, "0x5fbdb2315678afecb367f032d93f642f64180aa3")
        self.assertEqual(PING.decode(log), {"sender": SENDER, "seq": 7, "payload": "0xdeadbeef"})
        note = "burst ünïcode " * 5
        self.assertEqual(PONG.decode(PONG.encode({"seq": 2**256 - 1, "note": note})), {"seq": 2**256 - 1, "note": note})

    def test_an_indexed_dynamic_value_decodes_to_its_hash(self) -> None:
        tagged = event("event Tagged(string indexed tag, int8 level, bool ok, bytes4 kind)")
        log = tagged.encode({"tag": "hello", "level": -3, "ok": True, "kind": "0x01020304"})
        self.assertEqual(tagged.decode(log), {"tag": keccak256("hello"), "level": -3, "ok": True, "kind": "0x01020304"})

    def test_values_that_do_not_fit_are_refused(self) -> None:
        with self.assertRaises(AbiError):
            PONG.encode({"seq": -1, "note": ""})
        with self.assertRaises(AbiError):
            event("event E(uint8 x)").encode({"x": 256})
        with self.assertRaises(AbiError):
            PONG.encode({"seq": 1})
        with self.assertRaises(AbiError):
            PING.encode({"sender": "0x1234", "seq": 1, "payload": "0x"})


class FunctionTest(unittest.TestCase):
    def test_selector_calldata_and_result(self) -> None:
        count = function("function count() view returns (uint256)")
        self.assertEqual(count.selector, "0x06661abd")
        self.assertEqual(count.encode(), "0x06661abd")
        self.assertEqual(count.decode("0x" + word(5)), 5)
        ping = function("function ping(uint256 seq, bytes calldata payload) external")
        self.assertEqual(
            ping.encode(1, "0xabcd"),
            "0x" + keccak256("ping(uint256,bytes)")[2:10] + word(1) + word(64) + word(2) + "abcd" + "00" * 30,
        )
        self.assertIsNone(ping.decode("0x"))
        pair = function("function pair() returns (address a, bool b)")
        self.assertEqual(pair.decode("0x" + word(int(SENDER, 16)) + word(1)), [SENDER, True])

    def test_unsupported_declarations_are_refused_up_front(self) -> None:
        for text in (
            "function f(uint256[] xs)",
            "function f((uint256,address) t)",
            "function f() returns (uint256[2])",
            "event E(address[] xs)",
            "event E(uint256 x) anonymous",
            "event E(uint7 x)",
            "event E(uint256 indexed a, uint256 indexed b, uint256 indexed c, uint256 indexed d)",
            "contract C",
        ):
            with self.subTest(text), self.assertRaises(AbiError):
                (function if "function" in text else event)(text)


class HostileDataTest(unittest.TestCase):
    """Every offset and length is checked before use: errors, never hangs or huge allocations."""

    def assert_refused(self, data_hex: str, fragment: str) -> None:
        started = time.monotonic()
        with self.assertRaises(AbiError) as error:
            PONG.decode(pong_with_data(data_hex))
        self.assertIn(fragment, str(error.exception))
        self.assertLess(time.monotonic() - started, 1.0)

    def test_offsets_and_lengths_must_stay_inside_the_data(self) -> None:
        self.assert_refused("", "need at least 32")
        self.assert_refused(word(2**256 - 1), "points past the end")
        self.assert_refused(word(32), "points past the end")
        self.assert_refused(word(32) + word(2**255), "runs past the end")
        self.assert_refused(word(32) + word(5) + "6162", "runs past the end")

    def test_bad_text_and_dirty_words_are_refused(self) -> None:
        self.assert_refused(word(32) + word(2) + "ff" * 32, "not valid UTF-8")
        dirty_sender = "0x" + "11" * 32  # an address topic with its 12 high bytes set
        dirty = Log(
            address="0x" + "00" * 20,
            topics=(PING.topic, dirty_sender, "0x" + word(1)),
            data="0x" + word(32) + word(0),
        )
        with self.assertRaises(AbiError):
            PING.decode(dirty)
        with self.assertRaises(AbiError):
            function("function f() returns (bool)").decode("0x" + word(2))
        with self.assertRaises(AbiError):
            function("function f() returns (bool)").decode("0xzz")

    def test_a_log_of_another_shape_is_not_decoded(self) -> None:
        short = Log(address="0x" + "00" * 20, topics=(PING.topic,), data="0x")
        self.assertFalse(PING.matches(short))
        with self.assertRaises(AbiError):
            PING.decode(short)


class SameAsJavaScriptTest(unittest.TestCase):
    """The codec refuses and keeps what the JavaScript helper does."""

    def test_hex_is_0x_then_hex_digits_only(self) -> None:
        self.assertEqual(from_hex("0xABcd"), b"\xab\xcd")
        # Even lengths: bytes.fromhex would skip the whitespace and read two bytes.
        for text in ("0xab  cd", "0x  abcd", "0xab\t\tcd", "0xabcd\n\n", "0Xabcd"):
            with self.subTest(text), self.assertRaises(ValueError):
                from_hex(text)
        with self.assertRaises(AbiError):
            function("function f() returns (uint8)").decode("0x" + "00" * 31 + "  01")

    def test_keccak256_takes_bytes_or_text_only(self) -> None:
        for value in (5, [1, 2], None, memoryview(b"x")):
            with self.subTest(value), self.assertRaises(TypeError):
                keccak256(value)  # type: ignore[arg-type]
        self.assertEqual(keccak256(bytearray(b"abc")), keccak256("abc"))

    def test_a_leading_byte_order_mark_is_part_of_a_string(self) -> None:
        note = "\ufeffhi"
        self.assertEqual(PONG.decode(PONG.encode({"seq": 1, "note": note}))["note"], note)

    def test_half_a_surrogate_pair_is_an_abi_error(self) -> None:
        with self.assertRaisesRegex(AbiError, "not valid Unicode"):
            PONG.encode({"seq": 1, "note": "a\ud800"})

    def test_a_parameter_name_used_twice_is_refused(self) -> None:
        for text in ("event E(uint256 a, bool indexed a)", "function f(uint256 a, bool a)",
                     "function f() returns (uint256 a, bool a)"):
            with self.subTest(text), self.assertRaisesRegex(AbiError, "parameter name 'a' is used twice"):
                (function if text.startswith("function") else event)(text)


if __name__ == "__main__":
    unittest.main()
