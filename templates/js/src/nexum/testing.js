// FakeHost: runs a module file under node's test runner, with fakes of the three WIT
// imports that refuse what nexum refuses, with the same fault kinds and texts (the rules
// live in nexum-core/src/host_rules/ and nexum-core/src/limits.rs). The module is driven
// through the same entry code as the component (src/nexum/entry.js), so tests exercise
// the real conversions, dispatch and error handling. Node-only: not part of the component.

import { readFileSync } from 'node:fs';
import { logToWit, toU64 } from './convert.js';
import { entry } from './entry.js';
import { FAULT_KINDS, Fault, RpcError } from './errors.js';
import { describe, fromHex } from './hex.js';
import { bind } from './host.js';
import { keccak256Bytes } from './keccak.js';
import { parseToml } from './toml.js';

/**
 * nexum's default limits, all of them (nexum-core/src/limits.rs): a module.toml [limits]
 * table may lower any of them, and nexum refuses one that names anything else.
 */
const DEFAULT_LIMITS = Object.freeze({
  fuel_per_event: 1_000_000_000,
  memory_bytes: 64 * 1024 * 1024,
  event_timeout_ms: 30_000,
  store_key_bytes: 1024,
  store_value_bytes: 1024 * 1024,
  store_total_bytes: 256 * 1024 * 1024,
  list_keys_max: 10_000,
  log_line_bytes: 8 * 1024,
  log_lines_per_second: 200,
  log_bytes_per_second: 32 * 1024,
  request_bytes: 1024 * 1024,
  answer_bytes: 8 * 1024 * 1024,
  rpc_batch_max: 100,
});

/** What each pending write costs beyond its bytes, and the least a call may hold. */
const PENDING_ENTRY_OVERHEAD = 64;
const MIN_PENDING_BYTES = 1024 * 1024;

/**
 * list-entries' page: at most 1,000 entries and 1 MiB (one larger entry excepted), and at
 * most 4,000 entries or 4 MiB passed over because the call's own writes hide them; the
 * longest cursor; the most writes of one apply (nexum-core/src/host_rules/store.rs).
 */
const PAGE_MAX_ENTRIES = 1000;
const PAGE_MAX_BYTES = 1024 * 1024;
const PAGE_SCAN_ENTRIES = 4 * PAGE_MAX_ENTRIES;
const PAGE_SCAN_BYTES = 4 * PAGE_MAX_BYTES;
const CURSOR_MAX_BYTES = 65_536;
const BATCH_MAX_WRITES = 10_000;

/** The read-only JSON-RPC methods nexum serves; everything else is denied. */
const ALLOWED_METHODS = new Set([
  'eth_blockNumber', 'eth_call', 'eth_chainId', 'eth_createAccessList', 'eth_estimateGas',
  'eth_feeHistory', 'eth_gasPrice', 'eth_blobBaseFee', 'eth_getBalance', 'eth_getBlockByHash',
  'eth_getBlockByNumber', 'eth_getBlockReceipts', 'eth_getBlockTransactionCountByHash',
  'eth_getBlockTransactionCountByNumber', 'eth_getCode', 'eth_getLogs', 'eth_getProof',
  'eth_getStorageAt', 'eth_getTransactionByBlockHashAndIndex',
  'eth_getTransactionByBlockNumberAndIndex', 'eth_getTransactionByHash',
  'eth_getTransactionCount', 'eth_getTransactionReceipt', 'eth_getUncleCountByBlockHash',
  'eth_getUncleCountByBlockNumber', 'eth_maxPriorityFeePerGas', 'eth_syncing', 'net_version',
  'web3_clientVersion',
]);

const LEVELS = new Set(['trace', 'debug', 'info', 'warn', 'error']);

/** What a failing import throws in the component: an Error carrying the WIT err value. */
class ComponentError extends Error {
  constructor(payload) {
    super(`the host refused the call (${payload.tag === 'fault' ? payload.val.tag : payload.tag})`);
    this.name = 'ComponentError';
    this.payload = payload;
  }
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { ignoreBOM: true }); // echo a leading BOM, as nexum does
const byteLength = (text) => utf8.encode(text).length;

/** A string as it reaches nexum: a lone surrogate becomes U+FFFD on the way. */
const wire = (text) => fromUtf8.decode(utf8.encode(text));

/** Orders keys as nexum does: by their UTF-8 bytes. */
const byBytes = (a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b));

/** Text cut to `max` UTF-8 bytes with a note, as nexum cuts what it echoes back. */
function cut(text, max) {
  const bytes = utf8.encode(text);
  if (bytes.length <= max) return text;
  let end = max;
  while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--; // back to a character boundary
  return `${fromUtf8.decode(bytes.subarray(0, end))}… [cut: ${bytes.length} bytes in all]`;
}

/** `text` cut to at most `max` UTF-8 bytes on a character boundary, without a note. */
function cutPlain(text, max) {
  const bytes = utf8.encode(text);
  if (bytes.length <= max) return text;
  let end = max;
  while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--;
  return fromUtf8.decode(bytes.subarray(0, end));
}

/**
 * Whether `c` (one code point) could break a log line or mislead its reader, as nexum
 * judges it (nexum-core/src/bounded.rs): control characters but tab, line and paragraph
 * separators, and bidirectional marks and overrides.
 */
function isHazard(c) {
  const code = c.codePointAt(0);
  return (
    ((code <= 0x1f || (code >= 0x7f && code <= 0x9f)) && code !== 0x09) ||
    [0x2028, 0x2029, 0x200e, 0x200f].includes(code) ||
    (code >= 0x202a && code <= 0x202e) ||
    (code >= 0x2066 && code <= 0x2069)
  );
}

/** `text` with hazards written as escapes, as nexum writes them (Rust's escape_default). */
function escapeHazards(text) {
  let out = '';
  for (const c of text) {
    if (!isHazard(c)) out += c;
    else if (c === '\n') out += '\\n';
    else if (c === '\r') out += '\\r';
    else out += `\\u{${c.codePointAt(0).toString(16)}}`;
  }
  return out;
}

/** A module's log line as nexum writes it: cut, escaped, cut again to `max` bytes. */
function moduleText(text, max) {
  const escaped = escapeHazards(cutPlain(text, max));
  const length = byteLength(text);
  if (length <= max && byteLength(escaped) <= max) return escaped;
  return `${cutPlain(escaped, max)}… [cut: ${length} bytes in all]`;
}

/**
 * A module's log budget as nexum keeps it (nexum-core/src/host_rules/log_budget.rs): lines
 * per second and bytes per second, each a token bucket that allows a second's worth at once.
 */
class LogBudget {
  #lines;
  #bytes;
  #last = performance.now();

  constructor(limits) {
    this.#lines = { tokens: limits.log_lines_per_second, rate: limits.log_lines_per_second };
    this.#bytes = { tokens: limits.log_bytes_per_second, rate: limits.log_bytes_per_second };
  }

  /** Takes one line of `length` bytes if both budgets allow it. */
  take(length) {
    const now = performance.now();
    const seconds = (now - this.#last) / 1000;
    this.#last = now;
    for (const bucket of [this.#lines, this.#bytes]) {
      bucket.tokens = Math.min(bucket.tokens + seconds * bucket.rate, bucket.rate);
    }
    if (this.#lines.tokens < 1 || this.#bytes.tokens < length) return false;
    this.#lines.tokens -= 1;
    this.#bytes.tokens -= length;
    return true;
  }
}

/**
 * Stands in for nexum: `init` and `deliver` run a module file the way the component
 * would, committing its store writes only when the call succeeds.
 *
 *   const host = new FakeHost();              // reads ./module.toml
 *   host.onRequest((chainId, method, params) => '0x…');
 *   host.init(module, { read_count: 'true' });
 *   host.deliver(module, FakeHost.block({ number: 12 }));
 */
export class FakeHost {
  /**
   * Log lines the module wrote, as [level, message], as nexum writes them: cut to
   * `log_line_bytes` with a note, control characters escaped, and only the lines within
   * the module's log budget (`log_lines_per_second`, `log_bytes_per_second`).
   */
  logs = [];
  /** Lines dropped because they were over the log budget, as nexum drops them. */
  logsDropped = 0;
  /** Chain calls that reached the handler, as {chainId, method, params}. */
  requests = [];

  #capabilities;
  #chains;
  #limits;
  #logBudget;
  #config;
  #answer = null;
  #committed = new Map();
  #used = 0;
  #pending = new Map();
  #delta = 0;
  #held = 0;

  /** @param {string} manifest the module's module.toml (default: ./module.toml) */
  constructor(manifest = 'module.toml') {
    const toml = parseToml(readFileSync(manifest, 'utf8'), manifest);
    this.#capabilities = new Set(toml.capabilities?.required ?? []);
    // componentize-js imports every interface of the world, and nexum refuses to load a
    // component whose manifest does not grant each one it imports: so does the fake.
    for (const capability of ['chain', 'local-store', 'logging']) {
      if (!this.#capabilities.has(capability)) {
        throw new Error(
          `${manifest}: \`capabilities.required\`: the component imports \`nexum:host/${capability}@0.2.1\`, ` +
            `which needs the \`${capability}\` capability; add "${capability}" to [capabilities] required`,
        );
      }
    }
    this.#chains = new Set([
      ...(toml.subscription ?? []).map((s) => s.chain_id).filter((id) => id !== undefined),
      ...(toml.capabilities?.chains ?? []),
    ].map(Number));
    this.#limits = limitsOf(toml.limits, manifest);
    this.#logBudget = new LogBudget(this.#limits);
    // [config] as nexum flattens it: strings verbatim, other values as text, arrays and
    // tables as JSON (integers past 2^53 exactly only where node has JSON.rawJSON).
    const json = (v) => JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? JSON.rawJSON?.(String(x)) ?? Number(x) : x));
    this.#config = Object.fromEntries(
      Object.entries(toml.config ?? {}).map(([k, v]) => [k, typeof v === 'object' ? json(v) : String(v)]),
    );
  }

  /**
   * Answers the module's chain calls: `answer(chainId, method, params)` returns the
   * JSON-RPC result (a JSON value), or throws RpcError (a node error) or Fault.
   */
  onRequest(answer) {
    this.#answer = answer;
    return this;
  }

  /** Calls the module's init with `config` (default: module.toml's [config]). */
  init(module, config = this.#config) {
    const pairs = Object.entries(config).map(([k, v]) => [k, String(v)]);
    this.#call(() => entry(module).init(pairs));
  }

  /** Delivers one event (made with FakeHost.block, .logs or .tick) to the module. */
  deliver(module, event) {
    this.#call(() => entry(module).onEvent(event));
  }

  /** The committed store: key to bytes. A copy; writes of a failed call never show here. */
  get store() {
    return new Map([...this.#committed].map(([k, v]) => [k, v.slice()]));
  }

  /** A committed value parsed as JSON, or undefined. */
  storeJson(key) {
    const value = this.#committed.get(key);
    return value === undefined ? undefined : JSON.parse(new TextDecoder().decode(value));
  }

  /** A block event. Hashes and the timestamp are made up from the number unless given. */
  static block({ number, chainId = 31337, hash, parentHash, timestamp }) {
    const made = (n) => keccak256Bytes(`fake block ${chainId}/${n}`);
    return {
      tag: 'block',
      val: {
        chainId: toU64(chainId, 'chainId'),
        number: toU64(number, 'number'),
        hash: hash === undefined ? made(number) : fromHex(hash, 'hash'),
        parentHash: parentHash === undefined ? made(number - 1) : fromHex(parentHash, 'parentHash'),
        timestamp: toU64(timestamp ?? 1_700_000_000_000 + number * 12_000, 'timestamp'),
      },
    };
  }

  /** A batch of logs (friendly logs, as an event's `encode` makes them) on one chain. */
  static chainLogs(chainId, logs) {
    return { tag: 'chain-logs', val: { chainId: toU64(chainId, 'chainId'), logs: logs.map(logToWit) } };
  }

  /** A cron tick; `firedAt` in ms since the epoch. */
  static tick(firedAt, schedule = '* * * * *') {
    return { tag: 'tick', val: { firedAt: toU64(firedAt, 'firedAt'), schedule } };
  }

  /**
   * One call into the module: its writes commit when it returns and are discarded when
   * it throws; a thrown fault variant is rethrown as a Fault.
   */
  #call(run) {
    const previous = bind(this.#imports);
    this.#pending = new Map();
    this.#delta = 0;
    this.#held = 0;
    try {
      run();
    } catch (thrown) {
      this.#pending = new Map();
      throw exportFailure(thrown);
    } finally {
      bind(previous);
    }
    for (const [key, value] of this.#pending) {
      if (value === null) this.#committed.delete(key);
      else this.#committed.set(key, value);
    }
    this.#used += this.#delta;
    this.#pending = new Map();
  }

  // --- The fake imports: same arguments, results and thrown errors as the WIT imports.

  #imports = {
    logging: {
      log: (level, message) => {
        if (!this.#capabilities.has('logging')) {
          throw new Error(`this module logs, but ${this.#undeclared('logging')}`);
        }
        if (!LEVELS.has(level)) throw new TypeError(`'${level}' is not a log level`);
        message = wire(message);
        const max = this.#limits.log_line_bytes;
        if (this.#logBudget.take(Math.min(byteLength(message), max))) {
          this.logs.push([level, moduleText(message, max)]);
        } else {
          this.logsDropped += 1;
        }
      },
    },
    localStore: {
      get: (key) => {
        key = wire(key);
        this.#storeAllowed(key);
        const value = this.#pending.has(key) ? this.#pending.get(key) : this.#committed.get(key);
        return value === null || value === undefined ? undefined : value.slice();
      },
      set: (key, value) => {
        key = wire(key);
        this.#storeAllowed(key);
        if (value.length > this.#limits.store_value_bytes) {
          throw storeFault('invalid-input', `value is ${value.length} bytes; the limit is ${this.#limits.store_value_bytes}`);
        }
        const size = byteLength(key) + value.length;
        this.#budget(this.#delta - this.#visible(key) + size, this.#held - this.#heldBy(key) + size + PENDING_ENTRY_OVERHEAD);
        this.#pending.set(key, value.slice());
      },
      delete: (key) => {
        key = wire(key);
        this.#storeAllowed(key);
        if (!this.#committed.has(key)) {
          // Deleting what was never committed leaves nothing to write.
          if (this.#pending.has(key)) {
            this.#delta -= this.#visible(key);
            this.#held -= this.#heldBy(key);
            this.#pending.delete(key);
          }
          return;
        }
        this.#budget(this.#delta - this.#visible(key), this.#held - this.#heldBy(key) + byteLength(key) + PENDING_ENTRY_OVERHEAD);
        this.#pending.set(key, null);
      },
      listKeys: (prefix) => {
        prefix = wire(prefix);
        this.#capability('local-store', (why) => storeFault('unsupported', why));
        this.#checkLength(prefix);
        const keys = new Set([...this.#committed.keys()].filter((k) => k.startsWith(prefix)));
        for (const [key, value] of this.#pending) {
          if (!key.startsWith(prefix)) continue;
          if (value === null) keys.delete(key);
          else keys.add(key);
        }
        if (keys.size > this.#limits.list_keys_max) {
          throw storeFault(
            'invalid-input',
            `more than ${this.#limits.list_keys_max} keys start with ${JSON.stringify(cut(prefix, 256))}; ` +
              'list a narrower prefix, or page through them with list-entries',
          );
        }
        return [...keys].sort(byBytes);
      },
      listEntries: (prefix, after, limit) => {
        [prefix, after] = [wire(prefix), after === undefined ? undefined : wire(after)];
        this.#capability('local-store', (why) => storeFault('unsupported', why));
        this.#checkLength(prefix);
        if (after !== undefined && byteLength(after) > CURSOR_MAX_BYTES) {
          throw storeFault('invalid-input', `key is ${byteLength(after)} bytes; the limit is ${CURSOR_MAX_BYTES}`);
        }
        return this.#page(prefix, after, limit);
      },
      count: (prefix) => {
        prefix = wire(prefix);
        this.#capability('local-store', (why) => storeFault('unsupported', why));
        this.#checkLength(prefix);
        let count = 0n;
        for (const key of this.#committed.keys()) if (key.startsWith(prefix)) count += 1n;
        for (const [key, value] of this.#pending) {
          if (!key.startsWith(prefix)) continue;
          const committed = this.#committed.has(key);
          if (value !== null && !committed) count += 1n;
          else if (value === null && committed) count -= 1n;
        }
        return count;
      },
      contains: (key) => this.#valueLen(wire(key)) !== undefined,
      valueLen: (key) => this.#valueLen(wire(key)),
      apply: (writes) => {
        this.#capability('local-store', (why) => storeFault('unsupported', why));
        if (writes.length > BATCH_MAX_WRITES) {
          throw storeFault('invalid-input', `a batch of ${writes.length} writes is over the limit of ${BATCH_MAX_WRITES}; apply it in parts`);
        }
        // Judged whole before anything of it applies; the last write of a key counts.
        const last = new Map();
        for (const write of writes) {
          const key = wire(write.tag === 'set' ? write.val.key : write.val);
          if (key === '') throw storeFault('invalid-input', 'keys must not be empty');
          this.#checkLength(key);
          const value = write.tag === 'set' ? write.val.value : null;
          if (value !== null && value.length > this.#limits.store_value_bytes) {
            throw storeFault('invalid-input', `value is ${value.length} bytes; the limit is ${this.#limits.store_value_bytes}`);
          }
          last.set(key, value);
        }
        let delta = this.#delta;
        let held = this.#held;
        for (const [key, value] of last) {
          delta -= this.#visible(key);
          held -= this.#heldBy(key);
          if (value !== null) {
            const size = byteLength(key) + value.length;
            delta += size;
            held += size + PENDING_ENTRY_OVERHEAD;
          } else if (this.#committed.has(key)) {
            held += byteLength(key) + PENDING_ENTRY_OVERHEAD;
          }
        }
        this.#budget(delta, held);
        for (const [key, value] of last) {
          // Deleting what was never committed leaves nothing to write.
          if (value === null && !this.#committed.has(key)) this.#pending.delete(key);
          else this.#pending.set(key, value === null ? null : value.slice());
        }
      },
    },
    chain: {
      request: (chainId, method, params) => {
        this.#capability('chain', (why) => chainFault('unsupported', why));
        if (!this.#chains.has(Number(chainId))) {
          throw chainFault(
            'unsupported',
            `chain ${chainId} is not declared by this module: subscribe to it or list it in [capabilities] chains`,
          );
        }
        const parsed = this.#checkCall(method, params);
        this.requests.push({ chainId: Number(chainId), method, params: parsed });
        return this.#ask(Number(chainId), method, parsed);
      },
      requestBatch: (chainId, requests) => {
        this.#capability('chain', (why) => chainFault('unsupported', why));
        if (!this.#chains.has(Number(chainId))) {
          throw chainFault(
            'unsupported',
            `chain ${chainId} is not declared by this module: subscribe to it or list it in [capabilities] chains`,
          );
        }
        // The batch as a whole first (nexum-core/src/host_rules/chain.rs check_batch).
        const max = this.#limits.rpc_batch_max;
        if (requests.length > max) {
          throw chainFault('invalid-input', `a batch of ${requests.length} requests; the limit is ${max} (limits.rpc_batch_max)`);
        }
        const total = requests.reduce((sum, r) => sum + byteLength(r.method) + byteLength(r.params), 0);
        if (total > this.#limits.request_bytes) {
          throw chainFault('invalid-input', `the batch is ${total} bytes; the limit is ${this.#limits.request_bytes} (limits.request_bytes)`);
        }
        // Then each call. A refusal, a node error (RpcError) or an answer over answer_bytes
        // fails that call alone; a Fault from the handler stands for the round trip
        // failing (timeout, rate limit, node gone), which fails the whole batch in nexum.
        const alone = (error) => {
          if (error instanceof ComponentError && (error.payload.tag === 'rpc' || error.oneCall)) {
            return { tag: 'err', val: error.payload };
          }
          throw error;
        };
        return requests.map(({ method, params }) => {
          let parsed;
          try {
            parsed = this.#checkCall(method, params);
          } catch (error) {
            error.oneCall = true;
            return alone(error);
          }
          this.requests.push({ chainId: Number(chainId), method, params: parsed });
          try {
            return { tag: 'ok', val: this.#ask(Number(chainId), method, parsed) };
          } catch (error) {
            return alone(error);
          }
        });
      },
    },
  };

  #undeclared(capability) {
    return `\`${capability}\` is not in [capabilities] required of module.toml: nexum would refuse to load this module`;
  }

  #capability(name, fault) {
    if (!this.#capabilities.has(name)) throw fault(this.#undeclared(name));
  }

  #storeAllowed(key) {
    this.#capability('local-store', (why) => storeFault('unsupported', why));
    if (key === '') throw storeFault('invalid-input', 'keys must not be empty');
    this.#checkLength(key);
  }

  #checkLength(key) {
    const length = byteLength(key);
    if (length > this.#limits.store_key_bytes) {
      throw storeFault('invalid-input', `key is ${length} bytes; the limit is ${this.#limits.store_key_bytes}`);
    }
  }

  /** The length of `key`'s value as the call sees it (a u64), or undefined. */
  #valueLen(key) {
    this.#storeAllowed(key);
    const value = this.#pending.has(key) ? this.#pending.get(key) : this.#committed.get(key);
    return value === null || value === undefined ? undefined : BigInt(value.length);
  }

  /**
   * One list-entries page as nexum makes it: the call's own live writes merged in key
   * order with the committed entries, the committed ones its writes hide passed over.
   */
  #page(prefix, after, limit) {
    const maxEntries = Math.min(Math.max(limit, 1), PAGE_MAX_ENTRIES);
    // Every key under the prefix is at least the prefix: past `after` covers both starts.
    const inRange = (key) => key.startsWith(prefix) && (after === undefined || byBytes(key, after) > 0);
    const sorted = (entries) => entries.filter(([key]) => inRange(key)).sort(([a], [b]) => byBytes(a, b));
    const own = sorted([...this.#pending].filter(([, value]) => value !== null));
    const committed = sorted([...this.#committed]);
    const entries = [];
    let [i, j, bytes, passed, passedBytes, cursor] = [0, 0, 0, 0, 0, undefined];
    for (;;) {
      const [mine, stored] = [own[i], committed[j]];
      if (mine === undefined && stored === undefined) return { entries, next: undefined };
      // On a tie the call's write comes first; the committed entry is then hidden.
      const ownFirst = stored === undefined || (mine !== undefined && byBytes(mine[0], stored[0]) <= 0);
      const [key, value] = ownFirst ? mine : stored;
      const size = byteLength(key) + value.length;
      if (!ownFirst && this.#pending.has(key)) {
        if (passed >= PAGE_SCAN_ENTRIES || passedBytes >= PAGE_SCAN_BYTES) return { entries, next: cursor };
        passed += 1;
        passedBytes += size;
        cursor = key;
        j += 1;
        continue;
      }
      if (entries.length > 0 && (entries.length === maxEntries || bytes + size > PAGE_MAX_BYTES)) {
        return { entries, next: cursor };
      }
      if (ownFirst) i += 1;
      else j += 1;
      bytes += size;
      cursor = key;
      entries.push({ key, value: value.slice() });
    }
  }

  /** The quota size of `key` as the call sees it. */
  #visible(key) {
    const value = this.#pending.has(key) ? this.#pending.get(key) : this.#committed.get(key);
    return value === null || value === undefined ? 0 : byteLength(key) + value.length;
  }

  /** What the call's pending write of `key` holds. */
  #heldBy(key) {
    if (!this.#pending.has(key)) return 0;
    return byteLength(key) + (this.#pending.get(key)?.length ?? 0) + PENDING_ENTRY_OVERHEAD;
  }

  /** Refuses a write that takes the module over its quota, or the call's set over its cap. */
  #budget(delta, held) {
    const total = this.#limits.store_total_bytes;
    if (delta > this.#delta && delta > 0 && this.#used + delta > total) {
      throw storeFault('denied', `the store quota of ${total} bytes would be exceeded (${this.#used} bytes in use)`);
    }
    const maxHeld = Math.max(total, MIN_PENDING_BYTES);
    if (held > maxHeld) {
      throw storeFault('denied', `this call's pending writes would hold more than the store quota of ${maxHeld} bytes; commit in smaller steps`);
    }
    this.#delta = delta;
    this.#held = held;
  }

  /** The method and params checks of nexum's chain capability; returns the parsed params. */
  #checkCall(method, params) {
    const refusal = methodRefusal(method);
    if (refusal !== undefined) throw chainFault('denied', `method \`${cut(method, 64)}\` is not allowed: ${refusal}`);
    const name = cut(method, 64);
    const max = this.#limits.request_bytes;
    if (byteLength(params) > max) {
      throw chainFault('invalid-input', `params of \`${name}\` are ${byteLength(params)} bytes; the limit is ${max} (limits.request_bytes)`);
    }
    const trimmed = params.trim();
    if (trimmed === '' || trimmed === 'null') return [];
    let parsed;
    try {
      parsed = JSON.parse(trimmed);
    } catch (error) {
      throw chainFault('invalid-input', `params of \`${name}\` are not valid JSON: ${error.message}`);
    }
    if (!trimmed.startsWith('[') && !trimmed.startsWith('{')) {
      throw chainFault('invalid-input', `params of \`${name}\` must be a JSON array or object`);
    }
    return parsed;
  }

  /** The test's answer as the JSON text the host would return, or its error as thrown. */
  #ask(chainId, method, params) {
    if (this.#answer === null) {
      throw chainFault('unsupported', 'no chain handler set: call host.onRequest(…) in the test');
    }
    let result;
    try {
      result = this.#answer(chainId, method, params);
    } catch (error) {
      if (error instanceof RpcError) {
        const data = error.data === undefined ? undefined : fromHex(error.data, 'RpcError data');
        throw new ComponentError({ tag: 'rpc', val: { code: error.code, message: error.message, data } });
      }
      if (error instanceof Fault) throw new ComponentError({ tag: 'fault', val: error.toVariant() });
      throw error;
    }
    if (result === undefined) {
      throw new TypeError(`the onRequest handler returned nothing for ${method}: return the JSON-RPC result (null for none)`);
    }
    const answer = JSON.stringify(result);
    if (byteLength(answer) > this.#limits.answer_bytes) {
      const tooLarge = chainFault(
        'unavailable',
        `the node's answer is ${byteLength(answer)} bytes; this module may receive ${this.#limits.answer_bytes} (limits.answer_bytes)`,
      );
      tooLarge.oneCall = true; // in a batch, nexum fails that call alone
      throw tooLarge;
    }
    return answer;
  }
}

/**
 * What nexum makes of what a failing export threw: the Fault it carries, or an Error when
 * it is not a WIT `fault` that arrives intact, so a test fails where nexum would not get
 * the fault the module meant.
 */
export function exportFailure(thrown) {
  if (!FAULT_KINDS.includes(thrown?.tag)) {
    let text;
    try {
      text = String(thrown?.message ?? thrown);
    } catch {
      text = describe(thrown);
    }
    return new Error(`the module trapped (nexum would restart it): it threw ${text}, not a fault`, { cause: thrown });
  }
  const why = garbled(thrown);
  if (why === undefined) return Fault.fromVariant(thrown);
  return new Error(`the module's ${thrown.tag} fault does not lower to WIT: ${why}`, { cause: thrown });
}

/** Why a fault variant would not reach nexum as it is, or undefined when it would. */
function garbled({ tag, val }) {
  if (tag === 'timeout') return undefined;
  // The text cases: stricter than componentize-js, which prints any value but a Symbol.
  if (tag !== 'rate-limited') return typeof val === 'string' ? undefined : `it carries ${describe(val)}, not a string`;
  const ms = val?.retryAfterMs;
  if (ms === undefined) return undefined;
  // componentize-js lowers a u64 as BigInt.asUintN(64, BigInt(value)).
  let big;
  try {
    big = BigInt(ms);
  } catch {
    return `retry-after-ms ${describe(ms)} is not an integer (the component traps)`;
  }
  if (big < 0n || big >= 1n << 64n) {
    return `retry-after-ms ${describe(ms)} is not a u64 (nexum would receive ${BigInt.asUintN(64, big)})`;
  }
  return undefined;
}

/**
 * The limits a module runs under: nexum's defaults, lowered by module.toml's [limits].
 * Refuses what nexum refuses to load: an unknown name, a value that is not an integer
 * above 0, and one above the default (a module may lower its limits, never raise them).
 */
function limitsOf(table, manifest) {
  const refuse = (field, why) => new Error(`${manifest}: \`${field}\`: ${why}`);
  const limits = { ...DEFAULT_LIMITS };
  if (table === undefined) return limits;
  if (table === null || typeof table !== 'object' || Array.isArray(table)) throw refuse('limits', 'expected a table');
  for (const [name, value] of Object.entries(table)) {
    const field = `limits.${name}`;
    if (!Object.hasOwn(DEFAULT_LIMITS, name)) {
      const known = Object.keys(DEFAULT_LIMITS).map((n) => `\`${n}\``).join(', ');
      throw refuse(field, `unknown field \`${name}\`, expected one of ${known}`);
    }
    // parseToml reads every TOML integer as a BigInt, so a float such as 1.0 is a Number.
    if (typeof value !== 'bigint') throw refuse(field, `expected an integer, got ${describe(value)}`);
    if (value <= 0n) throw refuse(field, 'must be greater than 0');
    if (value > BigInt(DEFAULT_LIMITS[name])) {
      throw refuse(field, `asks for ${value} but the engine allows at most ${DEFAULT_LIMITS[name]}`);
    }
    limits[name] = Number(value);
  }
  return limits;
}

const storeFault = (tag, val) => new ComponentError({ tag, val });
const chainFault = (tag, val) => new ComponentError({ tag: 'fault', val: { tag, val } });

/** Why nexum refuses `method`, or undefined when it serves it. */
function methodRefusal(method) {
  if (ALLOWED_METHODS.has(method)) return undefined;
  const signing = ['eth_sendTransaction', 'eth_sendRawTransaction', 'eth_sign', 'eth_signTransaction', 'eth_signTypedData'];
  if (signing.some((m) => method.startsWith(m)) || method.startsWith('personal_')) {
    return 'signing and sending are not available to modules';
  }
  if (['admin_', 'debug_', 'miner_', 'anvil_', 'hardhat_', 'evm_', 'txpool_'].some((p) => method.startsWith(p))) {
    return 'node administration and debugging are not available to modules';
  }
  if (method.includes('ubscribe') || method.includes('Filter')) {
    return 'subscriptions and node-side filters are managed by the host; use a subscription in module.toml or eth_getLogs';
  }
  return 'it is not one of the read-only methods nexum serves';
}
