"""The nexum helper for Python modules: host calls, event values, faults and a small ABI codec.

module.py imports what it needs from here; app.py wires it to the real host and
nexum.testing to a fake one. Standard library only, so it runs inside the component.
"""

from .abi import AbiError, Event, Function, event, function
from .errors import Fault, RpcError
from .host import chain, log, store
from .keccak import keccak256
from .values import Block, Log, Logs, Tick

__all__ = [
    "AbiError",
    "Block",
    "Event",
    "Fault",
    "Function",
    "Log",
    "Logs",
    "RpcError",
    "Tick",
    "chain",
    "event",
    "function",
    "keccak256",
    "log",
    "store",
]
