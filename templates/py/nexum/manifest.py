"""The facts about a module that nexum enforces, read from its module.toml (for FakeHost).

Only what the fake host needs: declared capabilities and chains, the limits (a [limits]
table nexum would refuse to load is refused here too), and `[config]` flattened the way
nexum hands it to `init`.
"""

from __future__ import annotations

import datetime
import json
import math
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Limits:
    """nexum's default limits, all of them (nexum-core limits.rs), lowered by the manifest's
    [limits]: nexum refuses a [limits] key that names anything else."""

    fuel_per_event: int = 1_000_000_000
    memory_bytes: int = 64 * 1024 * 1024
    event_timeout_ms: int = 30_000
    store_key_bytes: int = 1024
    store_value_bytes: int = 1024 * 1024
    store_total_bytes: int = 256 * 1024 * 1024
    list_keys_max: int = 10_000
    log_line_bytes: int = 8 * 1024
    log_lines_per_second: int = 200
    log_bytes_per_second: int = 32 * 1024
    request_bytes: int = 1024 * 1024
    answer_bytes: int = 8 * 1024 * 1024
    rpc_batch_max: int = 100


@dataclass(frozen=True)
class Manifest:
    """What module.toml declares."""

    capabilities: frozenset[str] = frozenset()
    chains: frozenset[int] = frozenset()
    limits: Limits = field(default_factory=Limits)
    config: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path) -> Manifest:
        with open(path, "rb") as file:
            return cls.parse(tomllib.load(file), str(path))

    @classmethod
    def parse(cls, doc: dict[str, Any], file: str = "module.toml") -> Manifest:
        """The manifest `doc`; a [limits] nexum would refuse raises ValueError naming `file`."""
        caps = doc.get("capabilities", {})
        chains = {sub["chain_id"] for sub in doc.get("subscription", []) if "chain_id" in sub}
        chains.update(caps.get("chains", []))
        return cls(
            capabilities=frozenset(caps.get("required", [])),
            chains=frozenset(chains),
            limits=lowered_limits(doc.get("limits", {}), file),
            config={key: config_text(value) for key, value in doc.get("config", {}).items()},
        )


def lowered_limits(table: Any, file: str) -> Limits:
    """nexum's defaults lowered by a [limits] table, refused as nexum refuses it: an unknown
    name, a value that is not an integer above 0, one above the default (a module may lower
    its limits, never raise them)."""

    def refuse(field_name: str, why: str) -> ValueError:
        return ValueError(f"{file}: `{field_name}`: {why}")

    if not isinstance(table, dict):
        raise refuse("limits", "expected a table")
    defaults = Limits()
    known = [f.name for f in fields(Limits)]
    for name, value in table.items():
        where = f"limits.{name}"
        if name not in known:
            raise refuse(where, f"unknown field `{name}`, expected one of {', '.join(f'`{k}`' for k in known)}")
        if not isinstance(value, int) or isinstance(value, bool):
            raise refuse(where, f"expected an integer, got {value!r}")
        if value <= 0:
            raise refuse(where, "must be greater than 0")
        allowed = getattr(defaults, name)
        if value > allowed:
            raise refuse(where, f"asks for {value} but the engine allows at most {allowed}")
    return replace(defaults, **table)


def config_text(value: Any) -> str:
    """A [config] value as nexum passes it: strings verbatim, other scalars as TOML text,
    arrays and tables as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, (list, dict)):
        return json.dumps(_json_ready(value), separators=(",", ":"), ensure_ascii=False)
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    return str(value)


def _float_text(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(value)


def _json_ready(value: Any) -> Any:
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return _float_text(value)
    return value
