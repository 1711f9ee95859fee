// The helpers modules call: log, store and chain, written over the three WIT imports.
//
// The imports are bound at run time (`bind`) instead of imported here, so that the same
// helpers run inside the component (src/main.js binds the real imports) and under node's
// test runner (FakeHost binds fakes that behave like them).

import { Fault, fromHostError } from './errors.js';
import { describe } from './hex.js';

let bound = null;

/**
 * Makes `imports` ({logging, localStore, chain}: the WIT interfaces as componentize-js
 * presents them) the host the helpers talk to; returns the previous binding.
 */
export function bind(imports) {
  const previous = bound;
  bound = imports;
  return previous;
}

function host(name) {
  if (bound === null) {
    throw new Fault(
      'internal',
      'nexum helpers were called outside a call from the host: use them in init or a handler ' +
        '(in tests, run the module through FakeHost)',
    );
  }
  return bound[name];
}

/** Runs an import, turning its thrown err value into a Fault or RpcError. */
function call(fn) {
  try {
    return fn();
  } catch (error) {
    throw fromHostError(error);
  }
}

/** Log lines, tagged by nexum with the module's name. */
export const log = Object.freeze({
  trace: (message) => write('trace', message),
  debug: (message) => write('debug', message),
  info: (message) => write('info', message),
  warn: (message) => write('warn', message),
  error: (message) => write('error', message),
});

function write(level, message) {
  host('logging').log(level, String(message));
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The module's private key-value store. A call's writes commit together when the call
 * succeeds and are dropped when it fails; reads see the call's own writes.
 */
export const store = Object.freeze({
  /** The value of `key` as bytes, or undefined. */
  get(key) {
    return call(() => host('localStore').get(checkKey(key)));
  },

  /** Sets `key` to `value` (a Uint8Array). */
  set(key, value) {
    if (!(value instanceof Uint8Array)) {
      throw new TypeError(`store.set('${key}'): the value must be a Uint8Array, got ${describe(value)} (use setJson for values)`);
    }
    call(() => host('localStore').set(checkKey(key), value));
  },

  /** Removes `key` (nothing happens when it has no value). */
  delete(key) {
    call(() => host('localStore').delete(checkKey(key)));
  },

  /** The value of `key` parsed as JSON, or undefined. */
  getJson(key) {
    const bytes = store.get(key);
    if (bytes === undefined) return undefined;
    let text;
    try {
      text = fromUtf8.decode(bytes);
      return JSON.parse(text);
    } catch (error) {
      throw new Fault('internal', `store key '${key}' does not hold JSON: ${error.message}`);
    }
  },

  /** Stores `value` as JSON; BigInts become decimal strings (JSON has no 64-bit integers). */
  setJson(key, value) {
    const text = JSON.stringify(value, (_, v) => (typeof v === 'bigint' ? v.toString() : v));
    if (text === undefined) {
      throw new TypeError(`store.setJson('${key}'): ${describe(value)} has no JSON form`);
    }
    store.set(key, utf8.encode(text));
  },

  /** The keys starting with `prefix`, sorted. nexum refuses a match of more than 10,000 keys. */
  keys(prefix = '') {
    return call(() => host('localStore').listKeys(checkKey(prefix)));
  },

  /** How many keys start with `prefix`, the call's own writes counted. */
  count(prefix = '') {
    return Number(call(() => host('localStore').count(checkKey(prefix))));
  },

  /** Whether `key` has a value. */
  has(key) {
    return call(() => host('localStore').contains(checkKey(key)));
  },

  /** The length of `key`'s value in bytes, or undefined; the value itself is not read. */
  size(key) {
    const length = call(() => host('localStore').valueLen(checkKey(key)));
    return length === undefined ? undefined : Number(length);
  },

  /**
   * One page of the entries whose key starts with `prefix`, after the key `after` (from
   * the first when undefined): {entries: [[key, bytes], …], next}. At most `limit`
   * entries (nexum caps a page at 1,000 and 1 MiB). A page may hold fewer, even none,
   * while `next` is set: read on until it is undefined.
   */
  page(prefix = '', { after, limit = 1000 } = {}) {
    after = after ?? undefined; // null, as undefined: from the first
    if (after !== undefined) checkKey(after);
    if (!Number.isInteger(limit) || limit < 0 || limit > 0xffffffff) {
      throw new TypeError(`store.page: limit must be a whole number from 0 to 2^32 - 1, got ${describe(limit)}`);
    }
    const page = call(() => host('localStore').listEntries(checkKey(prefix), after, limit));
    return { entries: page.entries.map(({ key, value }) => [key, value]), next: page.next };
  },

  /** Every entry whose key starts with `prefix`, as [key, bytes] in key order, a page at a time. */
  *entries(prefix = '') {
    let after;
    do {
      const page = store.page(prefix, { after });
      yield* page.entries;
      after = page.next;
    } while (after !== undefined);
  },

  /**
   * Applies `writes` in order as one: [key, bytes] sets a key, [key, null] deletes it.
   * All of them, or none when one breaks a limit or the whole would take the store over
   * its quota. At most 10,000 writes.
   */
  apply(writes) {
    const ops = Array.from(writes, (write) => {
      if (!Array.isArray(write) || write.length !== 2) {
        throw new TypeError(`store.apply: each write is [key, bytes] or [key, null], got ${describe(write)}`);
      }
      const [key, value] = write;
      if (value === null || value === undefined) return { tag: 'delete', val: checkKey(key) };
      if (!(value instanceof Uint8Array)) {
        throw new TypeError(`store.apply: the value of '${key}' must be a Uint8Array or null, got ${describe(value)}`);
      }
      return { tag: 'set', val: { key: checkKey(key), value } };
    });
    call(() => host('localStore').apply(ops));
  },
});

/** Keys are strings; their length and emptiness are the host's to judge. */
function checkKey(key) {
  if (typeof key !== 'string') {
    throw new TypeError(`store keys are strings, got ${describe(key)}`);
  }
  return key;
}

/** Read-only JSON-RPC against the chains the module declared in module.toml. */
export const chain = Object.freeze({
  /**
   * One JSON-RPC call; returns the parsed result. `params` is sent as JSON, with BigInts
   * as hex quantities ('0x…'), the JSON-RPC spelling of numbers. A node error throws
   * RpcError; a refusal by nexum (undeclared chain, method not allowed) throws Fault.
   */
  request(chainId, method, params = []) {
    const text = JSON.stringify(params, bigintAsHex);
    const answer = call(() => host('chain').request(toChainId(chainId), String(method), text ?? '[]'));
    try {
      return JSON.parse(answer);
    } catch (error) {
      throw new Fault('internal', `${method}: the node's answer is not JSON: ${error.message}`);
    }
  },

  /**
   * Several read-only JSON-RPC calls in one round trip: `calls` is [[method, params], …]
   * (params as for `request`). Returns one entry per call, in order: its parsed result, or
   * the RpcError or Fault it failed with (a refused method, a node error, an answer over
   * answer_bytes), returned rather than thrown, so one failing call does not fail the
   * others. Thrown for the whole batch: an undeclared chain, more than
   * `limits.rpc_batch_max` calls (100) or `limits.request_bytes` of methods and params, and
   * a round trip that fails (timeout, rate limit, node unreachable).
   */
  requestBatch(chainId, calls) {
    const requests = Array.from(calls, (entry) => {
      if (!Array.isArray(entry)) {
        throw new TypeError(`chain.requestBatch: each call is [method, params], got ${describe(entry)}`);
      }
      const [method, params = []] = entry;
      return { method: String(method), params: JSON.stringify(params, bigintAsHex) ?? '[]' };
    });
    const answers = call(() => host('chain').requestBatch(toChainId(chainId), requests));
    return answers.map((answer, i) => {
      if (answer.tag === 'err') return fromHostError({ payload: answer.val });
      try {
        return JSON.parse(answer.val);
      } catch (error) {
        return new Fault('internal', `${requests[i].method}: the node's answer is not JSON: ${error.message}`);
      }
    });
  },

  /**
   * eth_call: runs `data` against the contract `to` at `block` ('latest', a tag, a number
   * or a block hash) and returns the '0x…' return data. A revert throws RpcError.
   */
  call(chainId, { to, data }, block = 'latest') {
    const at = typeof block === 'number' || typeof block === 'bigint' ? `0x${BigInt(block).toString(16)}` : block;
    const result = chain.request(chainId, 'eth_call', [{ to, data }, at]);
    if (typeof result !== 'string' || !/^0x([0-9a-fA-F]{2})*$/.test(result)) {
      throw new Fault('internal', `eth_call answered ${describe(result)}, not '0x…' bytes`);
    }
    return result.toLowerCase();
  },
});

/** JSON's spelling of a BigInt in JSON-RPC params: a hex quantity. */
const bigintAsHex = (_, v) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v);

function toChainId(chainId) {
  if (typeof chainId === 'bigint') return chainId;
  if (Number.isSafeInteger(chainId) && chainId >= 0) return BigInt(chainId);
  throw new TypeError(`a chain id is a non-negative integer, got ${describe(chainId)}`);
}
