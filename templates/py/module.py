"""The example keeper: follows blocks and counts the test contract's Ping and Pong events.

Replace the handlers with your own; app.py and nexum/ stay as they are. Handlers run one
event at a time. A handler that raises fails its event: nexum discards the event's store
writes and retries it.
"""

from __future__ import annotations

from nexum import Block, Logs, chain, event, function, log, store

PING = event("event Ping(address indexed sender, uint256 indexed seq, bytes payload)")
PONG = event("event Pong(uint256 indexed seq, string note)")
COUNT = function("function count() view returns (uint256)")

# Set by init from module.toml's [config]; module globals live as long as the instance.
read_count = False


def init(config: dict[str, str]) -> None:
    """Called once per (re)start with the [config] table, values as strings."""
    global read_count
    read_count = config.get("read_count") == "true"
    log.info(f"counter ready (read_count={'true' if read_count else 'false'})")


def on_block(block: Block) -> None:
    store.set_json("last-block", block.number)
    log.info(f"block {block.number}")


def on_logs(batch: Logs) -> None:
    for entry in batch.logs:
        if PING.matches(entry):
            ping = PING.decode(entry)
            count = _bump("count/Ping", entry.removed)
            log.info(f"Ping #{ping['seq']} from {ping['sender']} ({count} so far)")
        elif PONG.matches(entry):
            pong = PONG.decode(entry)
            count = _bump("count/Pong", entry.removed)
            log.info(f'Pong #{pong["seq"]}: "{pong["note"]}" ({count} so far)')
        else:
            log.warn(f"unexpected event {entry.topics[0] if entry.topics else '(no topics)'}")
    if read_count and batch.logs:
        result = chain.call(batch.chain_id, {"to": batch.logs[0].address, "data": COUNT.encode()})
        log.info(f"the contract's own count is {COUNT.decode(result)}")


def _bump(key: str, removed: bool) -> int:
    """Counts a log in, or back out when a reorg removed it; returns the new count."""
    count = (store.get_json(key) or 0) + (-1 if removed else 1)
    store.set_json(key, count)
    return count
