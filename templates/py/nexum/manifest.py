"""The facts about a module that nexum enforces, read from its module.toml (for FakeHost).

Only what the fake host needs: declared capabilities and chains, the limits it checks,
and `[config]` flattened the way nexum hands it to `init`.
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
    """nexum's default limits (nexum-core limits.rs), lowered by the manifest's [limits]."""

    store_key_bytes: int = 1024
    store_value_bytes: int = 1024 * 1024
    store_total_bytes: int = 256 * 1024 * 1024
    list_keys_max: int = 10_000
    request_bytes: int = 1024 * 1024
    answer_bytes: int = 8 * 1024 * 1024


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
            return cls.parse(tomllib.load(file))

    @classmethod
    def parse(cls, doc: dict[str, Any]) -> Manifest:
        caps = doc.get("capabilities", {})
        chains = {sub["chain_id"] for sub in doc.get("subscription", []) if "chain_id" in sub}
        chains.update(caps.get("chains", []))
        known = {f.name for f in fields(Limits)}
        overrides = {k: v for k, v in doc.get("limits", {}).items() if k in known}
        return cls(
            capabilities=frozenset(caps.get("required", [])),
            chains=frozenset(chains),
            limits=replace(Limits(), **overrides),
            config={key: config_text(value) for key, value in doc.get("config", {}).items()},
        )


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
