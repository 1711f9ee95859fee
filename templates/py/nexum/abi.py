"""A small Solidity ABI codec: events and functions declared from their Solidity text.

Only the types keepers read most (address, bool, uintN/intN, bytesN, bytes, string) are
supported; arrays and tuples are refused when declared, not half-decoded later. Decoding
treats every input as hostile: each offset and length is checked against the data before
it is used, so bad data gives an AbiError, never a hang or a huge allocation. A static word
must be canonical (zero high bytes for address and uintN, 0 or 1 for bool, sign-extended
intN, zeros after a bytesN), as Solidity's decoder requires. Like Solidity's, it does not
check the padding after a bytes or string value, nor bytes that no offset points at.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .hexstr import from_hex, to_hex
from .keccak import keccak256, keccak256_bytes
from .values import Log

_WORD = 32


class AbiError(ValueError):
    """A declaration this helper cannot handle, or a value/data that does not fit it."""


@dataclass(frozen=True)
class AbiType:
    """One elementary ABI type. `size` is bits for (u)int, bytes for bytesN."""

    name: str
    kind: str  # address | bool | uint | int | fixed | bytes | string
    size: int = 0

    @property
    def dynamic(self) -> bool:
        return self.kind in ("bytes", "string")


@dataclass(frozen=True)
class Param:
    """A declared parameter; `name` is `argN` when the declaration leaves it out."""

    name: str
    type: AbiType
    indexed: bool = False


def parse_type(text: str) -> AbiType:
    """The AbiType spelled `text`, or AbiError saying why it is not supported."""
    if "[" in text or "(" in text or text == "tuple":
        raise AbiError(
            f"type {text!r} is not supported: this helper handles elementary types only (no arrays or tuples)"
        )
    if text in ("address", "bool", "bytes", "string"):
        return AbiType(text, text)
    if text in ("uint", "int"):
        return AbiType(text + "256", text, 256)
    match = re.fullmatch(r"(uint|int|bytes)([0-9]{1,3})", text)
    if match:
        base, n = match.group(1), int(match.group(2))
        if base == "bytes" and 1 <= n <= 32:
            return AbiType(text, "fixed", n)
        if base != "bytes" and 8 <= n <= 256 and n % 8 == 0:
            return AbiType(text, base, n)
    raise AbiError(f"unknown ABI type {text!r}")


_MODIFIERS = {"view", "pure", "payable", "nonpayable", "external", "public", "internal", "virtual", "override"}
_LOCATIONS = {"memory", "calldata", "storage"}
_IDENT = r"[A-Za-z_$][A-Za-z0-9_$]*"


def _parse_params(text: str, where: str, allow_indexed: bool) -> tuple[Param, ...]:
    """The parameters of a declaration's parenthesised list `text`."""
    if "(" in text or ")" in text:
        raise AbiError(f"{where}: tuple parameters are not supported by this helper")
    text = text.strip()
    if not text:
        return ()
    params: list[Param] = []
    for i, part in enumerate(text.split(",")):
        words = part.split()
        if not words:
            raise AbiError(f"{where}: parameter {i + 1} is empty")
        abi_type = parse_type(words[0])
        rest = words[1:]
        if abi_type.kind == "address" and rest[:1] == ["payable"]:
            rest = rest[1:]
        indexed = False
        if rest[:1] == ["indexed"]:
            if not allow_indexed:
                raise AbiError(f"{where}: only event parameters can be indexed")
            indexed, rest = True, rest[1:]
        if rest[:1] and rest[0] in _LOCATIONS:
            rest = rest[1:]
        if len(rest) > 1 or (rest and not re.fullmatch(_IDENT, rest[0])):
            raise AbiError(f"{where}: cannot read parameter {part.strip()!r}")
        name = rest[0] if rest else f"arg{i}"
        if any(p.name == name for p in params):
            raise AbiError(f"{where}: parameter name {name!r} is used twice")
        params.append(Param(name, abi_type, indexed))
    return tuple(params)


def _signature(name: str, params: tuple[Param, ...]) -> str:
    return f"{name}({','.join(p.type.name for p in params)})"


def _hex(value: Any, what: str, size: int | None = None) -> bytes:
    """from_hex, failing with AbiError like every other check here."""
    try:
        return from_hex(value, what, size)
    except (TypeError, ValueError) as error:
        raise AbiError(str(error)) from None


# --- encoding ---------------------------------------------------------------------------


def _encode_word(t: AbiType, value: Any, what: str) -> bytes:
    """A static value as its 32-byte word."""
    if t.kind == "address":
        return _hex(value, what, 20).rjust(_WORD, b"\0")
    if t.kind == "bool":
        if not isinstance(value, bool):
            raise AbiError(f"{what} must be a bool, got {type(value).__name__}")
        return (1 if value else 0).to_bytes(_WORD, "big")
    if t.kind in ("uint", "int"):
        if not isinstance(value, int) or isinstance(value, bool):
            raise AbiError(f"{what} must be an int, got {type(value).__name__}")
        low, high = (0, 1 << t.size) if t.kind == "uint" else (-(1 << (t.size - 1)), 1 << (t.size - 1))
        if not low <= value < high:
            raise AbiError(f"{what} = {value} does not fit in {t.name}")
        return (value % (1 << 256)).to_bytes(_WORD, "big")
    if t.kind == "fixed":
        return _hex(value, what, t.size).ljust(_WORD, b"\0")
    raise AbiError(f"{what}: {t.name} is not a static type")


def _dynamic_bytes(t: AbiType, value: Any, what: str) -> bytes:
    """The raw bytes of a bytes/string value (UTF-8 for strings)."""
    if t.kind == "string":
        if not isinstance(value, str):
            raise AbiError(f"{what} must be a str, got {type(value).__name__}")
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError:
            raise AbiError(f"{what}: not valid Unicode (a lone surrogate)") from None
    return _hex(value, what)


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % _WORD)


def encode_values(params: tuple[Param, ...], values: list[Any], where: str) -> bytes:
    """`values` ABI-encoded as the tuple `params` (head words, then dynamic tails)."""
    heads: list[bytes] = []
    tails: list[bytes] = []
    tail_at = _WORD * len(params)
    for p, value in zip(params, values, strict=True):
        what = f"{where}.{p.name}"
        if p.type.dynamic:
            raw = _dynamic_bytes(p.type, value, what)
            heads.append(tail_at.to_bytes(_WORD, "big"))
            tail = len(raw).to_bytes(_WORD, "big") + _pad(raw)
            tails.append(tail)
            tail_at += len(tail)
        else:
            heads.append(_encode_word(p.type, value, what))
    return b"".join(heads + tails)


# --- decoding ---------------------------------------------------------------------------


def _decode_word(t: AbiType, word: bytes, what: str) -> Any:
    """A static value from its 32-byte word, refusing words with stray bits."""
    n = int.from_bytes(word, "big")
    if t.kind == "address":
        if n >> 160:
            raise AbiError(f"{what}: not an address (high bytes set)")
        return to_hex(word[12:])
    if t.kind == "bool":
        if n > 1:
            raise AbiError(f"{what}: not a bool ({n})")
        return n == 1
    if t.kind == "uint":
        if n >> t.size:
            raise AbiError(f"{what}: value does not fit in {t.name}")
        return n
    if t.kind == "int":
        signed = n - (1 << 256) if n >> 255 else n
        if not -(1 << (t.size - 1)) <= signed < (1 << (t.size - 1)):
            raise AbiError(f"{what}: value does not fit in {t.name}")
        return signed
    if t.kind == "fixed":
        if any(word[t.size:]):
            raise AbiError(f"{what}: not a {t.name} (bytes set past its length)")
        return to_hex(word[:t.size])
    raise AbiError(f"{what}: {t.name} is not a static type")


def _read_uint(data: bytes, at: int, what: str) -> int:
    """The 32-byte big-endian number at `at`, after checking it lies inside `data`."""
    if at < 0 or at + _WORD > len(data):
        raise AbiError(f"{what}: needs bytes {at}..{at + _WORD} but the data is {len(data)} bytes")
    return int.from_bytes(data[at:at + _WORD], "big")


def decode_values(params: tuple[Param, ...], data: bytes, where: str) -> dict[str, Any]:
    """The tuple `params` decoded from `data`, every offset and length bounds-checked."""
    need = _WORD * len(params)
    if len(data) < need:
        raise AbiError(f"{where}: data is {len(data)} bytes; {len(params)} values need at least {need}")
    out: dict[str, Any] = {}
    for i, p in enumerate(params):
        what = f"{where}.{p.name}"
        word_at = _WORD * i
        if not p.type.dynamic:
            out[p.name] = _decode_word(p.type, data[word_at:word_at + _WORD], what)
            continue
        offset = _read_uint(data, word_at, what)
        if offset > len(data) - _WORD:
            raise AbiError(f"{what}: offset {offset} points past the end of {len(data)} bytes of data")
        length = _read_uint(data, offset, what)
        start = offset + _WORD
        if length > len(data) - start:
            raise AbiError(f"{what}: length {length} runs past the end of {len(data)} bytes of data")
        raw = data[start:start + length]
        if p.type.kind == "string":
            try:
                out[p.name] = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise AbiError(f"{what}: not valid UTF-8") from None
        else:
            out[p.name] = to_hex(raw)
    return out


# --- declarations -----------------------------------------------------------------------


class Event:
    """An event declared from Solidity text; see `event()`."""

    def __init__(self, declaration: str) -> None:
        match = re.fullmatch(rf"\s*event\s+({_IDENT})\s*\((.*)\)\s*(anonymous)?\s*;?\s*", declaration, re.S)
        if not match:
            raise AbiError(f"cannot read {declaration!r}: expected 'event Name(type [indexed] name, ...)'")
        if match.group(3):
            raise AbiError(f"{match.group(1)}: anonymous events have no topic to match and are not supported")
        self.name: str = match.group(1)
        self.params = _parse_params(match.group(2), self.name, allow_indexed=True)
        if sum(p.indexed for p in self.params) > 3:
            raise AbiError(f"{self.name}: an event has at most 3 indexed parameters")
        self.signature: str = _signature(self.name, self.params)
        self.topic: str = keccak256(self.signature)
        self._indexed = tuple(p for p in self.params if p.indexed)
        self._data = tuple(p for p in self.params if not p.indexed)

    def matches(self, log: Log) -> bool:
        """Whether `log` is this event: its topic 0 and topic count."""
        return (
            len(log.topics) == 1 + len(self._indexed)
            and isinstance(log.topics[0], str)
            and log.topics[0].lower() == self.topic
        )

    def decode(self, log: Log) -> dict[str, Any]:
        """The event's values by parameter name. Indexed bytes/string give their topic hash."""
        if not self.matches(log):
            raise AbiError(f"log is not a {self.signature} with {len(self._indexed)} indexed parameters")
        values: dict[str, Any] = {}
        for p, topic in zip(self._indexed, log.topics[1:], strict=True):
            word = _hex(topic, f"{self.name}.{p.name} topic", _WORD)
            values[p.name] = to_hex(word) if p.type.dynamic else _decode_word(p.type, word, f"{self.name}.{p.name}")
        values.update(decode_values(self._data, _hex(log.data, f"{self.name} data"), self.name))
        return {p.name: values[p.name] for p in self.params}

    def encode(self, values: Mapping[str, Any], **fields: Any) -> Log:
        """A Log of this event carrying `values` (by name); `fields` set the other Log
        fields (address, block_number, removed…). For tests."""
        _check_names(self.name, self.params, values)
        topics = [self.topic]
        for p in self._indexed:
            what = f"{self.name}.{p.name}"
            value = values[p.name]
            topics.append(
                to_hex(keccak256_bytes(_dynamic_bytes(p.type, value, what)))
                if p.type.dynamic
                else to_hex(_encode_word(p.type, value, what))
            )
        data = encode_values(self._data, [values[p.name] for p in self._data], self.name)
        fields.setdefault("address", "0x" + "00" * 20)
        fields["address"] = to_hex(_hex(fields["address"], "address", 20))
        return Log(topics=tuple(topics), data=to_hex(data), **fields)


class Function:
    """A function declared from Solidity text; see `function()`."""

    def __init__(self, declaration: str) -> None:
        match = re.fullmatch(
            rf"\s*function\s+({_IDENT})\s*\(([^()]*)\)\s*([A-Za-z\s]*?)\s*(?:returns\s*\((.*)\))?\s*;?\s*",
            declaration,
            re.S,
        )
        if not match:
            raise AbiError(
                f"cannot read {declaration!r}: expected 'function name(type name, ...) [view] [returns (type, ...)]' "
                "(tuple parameters are not supported)"
            )
        self.name: str = match.group(1)
        unknown = set(match.group(3).split()) - _MODIFIERS
        if unknown:
            raise AbiError(f"{self.name}: unknown modifier {sorted(unknown)[0]!r}")
        self.inputs = _parse_params(match.group(2), self.name, allow_indexed=False)
        self.outputs = _parse_params(match.group(4) or "", f"{self.name} returns", allow_indexed=False)
        self.signature: str = _signature(self.name, self.inputs)
        self.selector: str = keccak256(self.signature)[:10]

    def encode(self, *args: Any) -> str:
        """Calldata for a call with `args`, as '0x…' hex."""
        if len(args) != len(self.inputs):
            raise AbiError(f"{self.signature} takes {len(self.inputs)} arguments, got {len(args)}")
        return self.selector + encode_values(self.inputs, list(args), self.name).hex()

    def decode(self, result: str | bytes) -> Any:
        """The returned value: the value itself for one output, a list for several, None for none."""
        values = decode_values(self.outputs, _hex(result, f"{self.name} result"), f"{self.name} returns")
        decoded = [values[p.name] for p in self.outputs]
        if not decoded:
            return None
        return decoded[0] if len(decoded) == 1 else decoded


def _check_names(where: str, params: tuple[Param, ...], values: Mapping[str, Any]) -> None:
    names = {p.name for p in params}
    missing = [p.name for p in params if p.name not in values]
    extra = sorted(set(values) - names)
    if missing or extra:
        raise AbiError(f"{where}: missing values {missing}, unknown values {extra}")


def event(declaration: str) -> Event:
    """Declares an event, e.g. `event('event Ping(address indexed sender, uint256 indexed seq, bytes payload)')`."""
    return Event(declaration)


def function(declaration: str) -> Function:
    """Declares a function, e.g. `function('function count() view returns (uint256)')`."""
    return Function(declaration)
