// WIT-shaped values (BigInt u64s, Uint8Array bytes) <-> the friendly values handlers
// receive (Numbers, '0x…' hex). The entry uses the first direction; FakeHost's event
// builders use the second, so tests feed the module exactly what the host would.

import { describe, fromHex, fromHexSized, toHex } from './hex.js';

/** A WIT u64 as a Number; refuses one a Number cannot hold exactly. */
export function toNumber(value, what) {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) {
    throw new RangeError(`${what} ${value} does not fit a JavaScript number exactly`);
  }
  return n;
}

const optional = (value, convert) => (value === undefined ? undefined : convert(value));

/** `config` (a list of [key, text] pairs) as a plain object of strings. */
export function toConfig(pairs) {
  return Object.fromEntries(pairs);
}

/** @returns {{chainId, number, hash, parentHash, timestamp}} timestamp in ms since the epoch */
export function toBlock(block) {
  return {
    chainId: toNumber(block.chainId, 'chain id'),
    number: toNumber(block.number, 'block number'),
    hash: toHex(block.hash),
    parentHash: toHex(block.parentHash),
    timestamp: toNumber(block.timestamp, 'timestamp'),
  };
}

/** @returns {{address, topics, data, blockNumber, blockHash, transactionHash, transactionIndex, logIndex, removed}} */
export function toLog(log) {
  return {
    address: toHex(log.address),
    topics: log.topics.map(toHex),
    data: toHex(log.data),
    blockNumber: optional(log.blockNumber, (n) => toNumber(n, 'block number')),
    blockHash: optional(log.blockHash, toHex),
    transactionHash: optional(log.transactionHash, toHex),
    transactionIndex: optional(log.transactionIndex, (n) => toNumber(n, 'transaction index')),
    logIndex: optional(log.logIndex, (n) => toNumber(n, 'log index')),
    removed: log.removed,
  };
}

/** @returns {{chainId, logs}} */
export function toLogs(batch) {
  return { chainId: toNumber(batch.chainId, 'chain id'), logs: batch.logs.map(toLog) };
}

/** @returns {{firedAt, schedule}} firedAt in ms since the epoch */
export function toTick(tick) {
  return { firedAt: toNumber(tick.firedAt, 'fired-at'), schedule: tick.schedule };
}

/** A friendly integer (Number or BigInt) as a WIT u64. */
export function toU64(value, what) {
  const big = typeof value === 'bigint' ? value : Number.isSafeInteger(value) ? BigInt(value) : null;
  if (big === null || big < 0n || big >= 1n << 64n) {
    throw new TypeError(`${what}: expected an integer from 0 to 2^64-1, got ${describe(value)}`);
  }
  return big;
}

/** A friendly log (as ABI `event.encode` makes it) as a WIT `chain-log`. */
export function logToWit(log) {
  const topics = log.topics ?? [];
  if (!Array.isArray(topics) || topics.length > 4) {
    throw new TypeError(`log.topics: expected an array of at most 4 topics, got ${describe(topics)}`);
  }
  return {
    address: fromHexSized(log.address ?? `0x${'00'.repeat(20)}`, 20, 'log.address'),
    topics: topics.map((t, i) => fromHexSized(t, 32, `log.topics[${i}]`)),
    data: fromHex(log.data ?? '0x', 'log.data'),
    blockNumber: optional(log.blockNumber, (n) => toU64(n, 'log.blockNumber')),
    blockHash: optional(log.blockHash, (h) => fromHexSized(h, 32, 'log.blockHash')),
    transactionHash: optional(log.transactionHash, (h) => fromHexSized(h, 32, 'log.transactionHash')),
    transactionIndex: optional(log.transactionIndex, (n) => toU64(n, 'log.transactionIndex')),
    logIndex: optional(log.logIndex, (n) => toU64(n, 'log.logIndex')),
    removed: Boolean(log.removed),
  };
}
