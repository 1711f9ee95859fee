"""The component's entry: binds the real WIT imports to the nexum helper and module.py.

componentize-py looks for `WitWorld` here; `wit_world` is generated from wit/ at build
time, which is why only this file (not module.py or the tests) imports it.
"""

import wit_world
from componentize_py_types import Err
from wit_world.imports import chain, local_store, logging, types

import module
from nexum.entry import Entry
from nexum.host import WitImports

_entry = Entry(WitImports(types=types, chain=chain, local_store=local_store, logging=logging, err=Err), module)


class WitWorld(wit_world.WitWorld):
    def init(self, config: list[tuple[str, str]]) -> None:
        _entry.init(config)

    def on_event(self, event: types.Event) -> None:
        _entry.on_event(event)
