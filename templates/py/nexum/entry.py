"""Runs module.py's handlers for the world's exports, turning every failure into a fault.

Any exception that escaped an export would trap the instance (nexum then restarts it), so
everything is caught here and returned as the world's `err(fault)`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from .convert import config_from_wit, event_from_wit, fault_to_wit
from .errors import Fault, RpcError
from .host import WitImports, bind
from .values import Block, Logs, Tick

_HANDLERS = {Block: "on_block", Logs: "on_logs", Tick: "on_tick"}


def as_fault(error: BaseException) -> Fault:
    """What an uncaught exception tells nexum: a Fault as itself, anything else as internal.

    Never raises: it runs on the way out of an export, where an exception would trap.
    """
    if isinstance(error, Fault):
        return error
    name = type(error).__name__
    try:
        if isinstance(error, RpcError):
            return Fault("internal", f"rpc error {error.code}: {error.message}")
        text = str(error)
    except Exception:  # the exception's own __str__ (or its code's, or message's) raised
        return Fault("internal", f"{name} (its message cannot be printed)")
    return Fault("internal", f"{name}: {text}" if text else name)


def _synchronous(name: str, result: object) -> None:
    """Refuses what an `async def` handler returns: host calls are synchronous and a call
    ends when the export returns, so the coroutine would never run, its event counted as
    handled all the same."""
    if not isinstance(result, Awaitable):
        return
    what = "an awaitable"
    if isinstance(result, Coroutine):
        result.close()  # never started: once closed, Python does not warn it was never awaited
        what = "a coroutine"
    raise Fault("internal", f"{name} returned {what}: handlers must be synchronous (no async def)")


class Entry:
    """module.py bound to one set of imports: the real ones in app.py, a FakeHost's in tests."""

    def __init__(self, imports: WitImports, module: Any, file_name: str = "module.py") -> None:
        self.imports = imports
        self.module = module
        self.file_name = file_name

    def init(self, config: list[tuple[str, str]]) -> None:
        """The `init` export: calls module.init(config dict) if the module has one."""
        handler = getattr(self.module, "init", None)
        self._run(lambda: _synchronous("init", handler(config_from_wit(config))) if handler else None)

    def on_event(self, event: Any) -> None:
        """The `on-event` export: calls on_block, on_logs or on_tick."""

        def dispatch() -> None:
            value = event_from_wit(self.imports.types, event)
            name = _HANDLERS[type(value)]
            handler = getattr(self.module, name, None)
            if handler is None:
                raise Fault("internal", f"{self.file_name} has no {name} handler")
            _synchronous(name, handler(value))

        self._run(dispatch)

    def _run(self, call: Callable[[], object]) -> None:
        bind(self.imports)
        try:
            call()
        except (Exception, SystemExit) as error:
            raise self.imports.err(fault_to_wit(self.imports.types, as_fault(error))) from None
