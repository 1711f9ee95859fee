// The example module: counts the test contract's Ping and Pong events, follows blocks, and
// reads the contract's own count() after each batch. Replace it with your own logic;
// module.toml says which events arrive here.

import { chain, event, fn, log, store } from './nexum/index.js';

// The test contract's ABI (tests/contracts/Emitter.sol in the nexum repository).
const Ping = event('event Ping(address indexed sender, uint256 indexed seq, bytes payload)');
const Pong = event('event Pong(uint256 indexed seq, string note)');
const count = fn('function count() view returns (uint256)');

/** [config] read_count = "true": also read count() after each batch. */
let readCount = false;

export function init(config) {
  readCount = config.read_count === 'true';
  log.info(`counter ready (read_count=${readCount})`);
}

export function onBlock(block) {
  store.setJson('last-block', block.number);
  log.info(`block ${block.number}`);
}

export function onLogs(batch) {
  for (const entry of batch.logs) {
    if (Ping.matches(entry)) {
      const { sender, seq } = Ping.decode(entry);
      log.info(`Ping #${seq} from ${sender} (${tally('Ping', entry)} so far)`);
    } else if (Pong.matches(entry)) {
      const { seq, note } = Pong.decode(entry);
      log.info(`Pong #${seq}: ${JSON.stringify(note)} (${tally('Pong', entry)} so far)`);
    } else {
      log.warn(`unexpected event ${entry.topics[0] ?? '(no topic)'}`);
    }
  }
  if (readCount && batch.logs.length > 0) {
    const data = chain.call(batch.chainId, { to: batch.logs[0].address, data: count.encode() });
    log.info(`the contract's own count is ${count.decode(data)}`);
  }
}

/**
 * Adds the log to its event's count, or takes it back out when a reorg retracts it
 * (`removed`), and returns the new count.
 */
function tally(name, entry) {
  const key = `count/${name}`;
  const total = (store.getJson(key) ?? 0) + (entry.removed ? -1 : 1);
  store.setJson(key, total);
  return total;
}
