// A small Solidity ABI codec for what keepers mostly need: decoding the events they are
// sent and encoding/decoding simple contract calls. Types: address, bool, uintN, intN,
// bytesN, bytes, string. Arrays and tuples are refused when declared, so an unsupported
// signature fails at load time rather than mid-event.
//
// Decoding treats the data as hostile: every offset and length is checked against the
// data before use, and no allocation exceeds the input's size. A static word must be
// canonical (zero high bytes for address and uintN, 0 or 1 for bool, sign-extended intN,
// zeros after a bytesN), as Solidity's decoder requires. Like Solidity's, it does not check
// the padding after a bytes or string value, nor bytes that no offset points at.

import { describe, fromHex, fromHexSized, toHex } from './hex.js';
import { isWellFormed, keccak256 } from './keccak.js';

const WORD = 32;
const TWO_256 = 1n << 256n;
const SUPPORTED = 'address, bool, uint8…uint256, int8…int256, bytes1…bytes32, bytes, string';

/**
 * Declares an event from its Solidity declaration, e.g.
 * `event('event Ping(address indexed sender, uint256 indexed seq, bytes payload)')`.
 */
export function event(declaration) {
  const { name, params, rest } = parseDeclaration(declaration, 'event');
  if (rest !== '') {
    const why = rest === 'anonymous' ? 'anonymous events (no topic 0) are not supported' : `unexpected '${rest}'`;
    throw new SyntaxError(`${declaration}: ${why}`);
  }
  const inputs = parseParams(params, declaration, { indexable: true });
  const signature = `${name}(${inputs.map((i) => i.type.name).join(',')})`;
  const topic = keccak256(signature);
  const indexed = inputs.filter((i) => i.indexed);
  const unindexed = inputs.filter((i) => !i.indexed);
  if (indexed.length > 3) throw new SyntaxError(`${declaration}: an event indexes at most 3 params`);

  /** Why `log` is not this event, or undefined when it is. */
  const mismatch = (log) => {
    const topics = log?.topics;
    if (!Array.isArray(topics) || topics.length === 0) return 'the log has no topics';
    if (String(topics[0]).toLowerCase() !== topic) return `topic 0 is ${topics[0]}, not ${topic}`;
    if (topics.length !== 1 + indexed.length) {
      // Same signature, different indexing (ERC-20 vs ERC-721 Transfer): not this event.
      return `the log has ${topics.length} topics; this declaration indexes ${indexed.length} params (${1 + indexed.length} topics)`;
    }
    return undefined;
  };

  return Object.freeze({
    name,
    signature,
    topic,
    inputs,

    /** Whether `log` is this event: its topic 0 and its number of topics. */
    matches: (log) => mismatch(log) === undefined,

    /** The log's params as an object keyed by param name (by position when unnamed). */
    decode(log) {
      const why = mismatch(log);
      if (why !== undefined) throw new AbiError(`${signature}: ${why}`);
      const out = {};
      indexed.forEach((input, i) => {
        const word = fromHexSized(log.topics[i + 1], WORD, `${signature} topic ${i + 1}`);
        // A dynamic value is indexed by its hash: the topic is all that is left of it.
        define(out, input.key, input.type.dynamic ? toHex(word) : decodeWord(input.type, word, `${signature} ${input.key}`));
      });
      const data = fromHex(log.data ?? '0x', `${signature} data`);
      const values = decodeTuple(unindexed.map((i) => i.type), data, signature);
      unindexed.forEach((input, i) => define(out, input.key, values[i]));
      return out;
    },

    /** A log of this event carrying `values` (keyed like `decode`'s result), for tests. */
    encode(values, logFields = {}) {
      const get = (input) => {
        if (!Object.hasOwn(values, input.key)) throw new TypeError(`${signature}: no value for '${input.key}'`);
        return values[input.key];
      };
      const topics = [topic];
      for (const input of indexed) {
        const value = get(input);
        topics.push(
          input.type.dynamic
            ? keccak256(dynamicBytes(input.type, value, input.key))
            : toHex(encodeWord(input.type, value, input.key)),
        );
      }
      const data = encodeTuple(unindexed.map((i) => i.type), unindexed.map(get), signature);
      return {
        address: `0x${'00'.repeat(20)}`,
        topics,
        data: toHex(data),
        blockNumber: undefined,
        blockHash: undefined,
        transactionHash: undefined,
        transactionIndex: undefined,
        logIndex: undefined,
        removed: false,
        ...logFields,
      };
    },
  });
}

/**
 * Declares a contract function from its Solidity declaration, e.g.
 * `fn('function balanceOf(address owner) view returns (uint256)')`.
 */
export function fn(declaration) {
  const { name, params, rest } = parseDeclaration(declaration, 'function');
  const inputs = parseParams(params, declaration, { indexable: false });
  const outputs = parseParams(parseReturns(rest, declaration), declaration, { indexable: false });
  const signature = `${name}(${inputs.map((i) => i.type.name).join(',')})`;
  const selector = keccak256(signature).slice(0, 10);

  return Object.freeze({
    name,
    signature,
    selector,
    inputs,
    outputs,

    /** The call data: the selector, then the arguments in order. */
    encode(...args) {
      if (args.length !== inputs.length) {
        throw new TypeError(`${signature} takes ${inputs.length} arguments, got ${args.length}`);
      }
      const body = encodeTuple(inputs.map((i) => i.type), args, signature);
      return selector + toHex(body).slice(2);
    },

    /** The return data ('0x…') decoded: undefined, the single value, or an array of them. */
    decode(returnData) {
      const data = fromHex(returnData, `${signature} return data`);
      if (outputs.length === 0) return undefined;
      if (data.length === 0) {
        throw new AbiError(`${signature} returned no data: is there a contract at that address, with that function?`);
      }
      const values = decodeTuple(outputs.map((o) => o.type), data, `${signature} return data`);
      return outputs.length === 1 ? values[0] : values;
    },
  });
}

/** Data that does not decode as declared. */
export class AbiError extends Error {
  constructor(message) {
    super(message);
    this.name = 'AbiError';
  }
}

// --- Declarations ---------------------------------------------------------------------

function parseDeclaration(declaration, keyword) {
  if (typeof declaration !== 'string') {
    throw new TypeError(`a ${keyword} declaration is a string, got ${describe(declaration)}`);
  }
  const text = declaration.trim().replace(/;$/, '');
  const match = new RegExp(`^(?:${keyword}\\s+)?([A-Za-z_$][\\w$]*)\\s*\\(([^)]*)\\)\\s*(.*)$`, 's').exec(text);
  if (match === null) {
    throw new SyntaxError(`cannot read '${declaration}': expected '${keyword} Name(type name, …)'`);
  }
  const [, name, list, rest] = match;
  if (list.includes('(')) throw new SyntaxError(`${declaration}: tuple params are not supported (${SUPPORTED})`);
  return { name, params: splitList(list), rest: rest.trim() };
}

/** The modifiers and `returns (…)` after a function's params: the returned types. */
function parseReturns(rest, declaration) {
  const at = rest.search(/\breturns\b/);
  const modifiers = at < 0 ? rest : rest.slice(0, at);
  for (const word of modifiers.split(/\s+/).filter(Boolean)) {
    if (!['external', 'public', 'view', 'pure', 'payable', 'nonpayable'].includes(word)) {
      throw new SyntaxError(`${declaration}: unexpected '${word}'`);
    }
  }
  if (at < 0) return [];
  const match = /^\((.*)\)$/s.exec(rest.slice(at + 'returns'.length).trim());
  if (match === null) throw new SyntaxError(`${declaration}: expected 'returns (type, …)' at the end`);
  if (match[1].includes('(')) throw new SyntaxError(`${declaration}: tuple returns are not supported (${SUPPORTED})`);
  return splitList(match[1]);
}

function splitList(list) {
  const trimmed = list.trim();
  return trimmed === '' ? [] : trimmed.split(',').map((p) => p.trim());
}

/** A declaration's list of params; a name used twice is refused, as it could not key both. */
function parseParams(list, declaration, options) {
  const params = list.map((p, i) => parseParam(p, i, declaration, options));
  const seen = new Set();
  for (const { key } of params) {
    if (seen.has(key)) throw new SyntaxError(`${declaration}: parameter name '${key}' is used twice`);
    seen.add(key);
  }
  return params;
}

/** Sets an own property, so that a param named `__proto__` is a key like any other. */
function define(object, key, value) {
  Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
}

/** One `type [indexed] [name]` of a list; `position` keys it when it has no name. */
function parseParam(text, position, declaration, { indexable }) {
  const words = text.split(/\s+/).filter(Boolean);
  if (words.length === 0) throw new SyntaxError(`${declaration}: an empty parameter`);
  const type = parseType(words[0], declaration);
  let indexed = false;
  const names = [];
  for (const word of words.slice(1)) {
    if (word === 'indexed' && indexable) indexed = true;
    else if (['memory', 'calldata'].includes(word) && !indexable) continue;
    else names.push(word);
  }
  if (names.length > 1 || (names.length === 1 && !/^[A-Za-z_$][\w$]*$/.test(names[0]))) {
    throw new SyntaxError(`${declaration}: cannot read the parameter '${text}'`);
  }
  return { name: names[0], type, indexed, key: names[0] ?? String(position) };
}

/** A type name as its codec description. */
function parseType(name, declaration) {
  const refuse = (why) => new SyntaxError(`${declaration}: ${why} (supported: ${SUPPORTED})`);
  if (name.includes('[')) throw refuse(`arrays such as '${name}' are not supported`);
  if (name === 'address' || name === 'bool' || name === 'bytes' || name === 'string') {
    return { name, kind: name, dynamic: name === 'bytes' || name === 'string' };
  }
  let match = /^(u?)int(\d*)$/.exec(name);
  if (match !== null) {
    const bits = match[2] === '' ? 256 : Number(match[2]);
    if (bits < 8 || bits > 256 || bits % 8 !== 0) throw refuse(`'${name}' is not a Solidity integer type`);
    const kind = match[1] === 'u' ? 'uint' : 'int';
    return { name: `${kind}${bits}`, kind, bits, dynamic: false };
  }
  match = /^bytes(\d+)$/.exec(name);
  if (match !== null) {
    const size = Number(match[1]);
    if (size < 1 || size > 32) throw refuse(`'${name}' is not a Solidity type`);
    return { name, kind: 'bytesN', size, dynamic: false };
  }
  throw refuse(`'${name}' is not supported`);
}

// --- Encoding -------------------------------------------------------------------------

function encodeTuple(types, values, what) {
  const head = [];
  const tail = [];
  let tailSize = types.length * WORD;
  types.forEach((type, i) => {
    if (type.dynamic) {
      head.push(bigWord(BigInt(tailSize)));
      const bytes = dynamicBytes(type, values[i], `${what} value ${i + 1}`);
      const padded = new Uint8Array(WORD + Math.ceil(bytes.length / WORD) * WORD);
      padded.set(bigWord(BigInt(bytes.length)));
      padded.set(bytes, WORD);
      tail.push(padded);
      tailSize += padded.length;
    } else {
      head.push(encodeWord(type, values[i], `${what} value ${i + 1}`));
    }
  });
  const out = new Uint8Array(tailSize);
  let at = 0;
  for (const part of [...head, ...tail]) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function dynamicBytes(type, value, what) {
  if (type.kind === 'string') {
    if (typeof value !== 'string') throw new TypeError(`${what}: a string expected, got ${describe(value)}`);
    // TextEncoder would silently write U+FFFD for half a surrogate pair.
    if (!isWellFormed(value)) throw new TypeError(`${what}: not valid Unicode (a lone surrogate)`);
    return new TextEncoder().encode(value);
  }
  return fromHex(value, what);
}

function encodeWord(type, value, what) {
  switch (type.kind) {
    case 'address': {
      const word = new Uint8Array(WORD);
      word.set(fromHexSized(value, 20, what), 12);
      return word;
    }
    case 'bool':
      if (typeof value !== 'boolean') throw new TypeError(`${what}: true or false expected, got ${describe(value)}`);
      return bigWord(value ? 1n : 0n);
    case 'uint':
    case 'int': {
      const n = toBigInt(value, what);
      const [min, max] = range(type);
      if (n < min || n > max) throw new RangeError(`${what}: ${n} does not fit ${type.name}`);
      return bigWord(n < 0n ? n + TWO_256 : n);
    }
    case 'bytesN': {
      const word = new Uint8Array(WORD);
      word.set(fromHexSized(value, type.size, what));
      return word;
    }
  }
  throw new Error(`${type.name} is not a one-word type`);
}

function bigWord(n) {
  return fromHex(`0x${n.toString(16).padStart(64, '0')}`);
}

function toBigInt(value, what) {
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value);
  if (typeof value === 'string' && /^-?(0x[0-9a-fA-F]+|[0-9]+)$/.test(value)) {
    return value.startsWith('-') ? -BigInt(value.slice(1)) : BigInt(value);
  }
  throw new TypeError(`${what}: an integer (BigInt, safe Number or numeric string) expected, got ${describe(value)}`);
}

function range(type) {
  if (type.kind === 'uint') return [0n, (1n << BigInt(type.bits)) - 1n];
  const half = 1n << BigInt(type.bits - 1);
  return [-half, half - 1n];
}

// --- Decoding -------------------------------------------------------------------------

function decodeTuple(types, data, what) {
  const headSize = types.length * WORD;
  if (data.length < headSize) {
    throw new AbiError(`${what}: ${data.length} bytes of data, but ${types.length} values need at least ${headSize}`);
  }
  return types.map((type, i) => {
    const head = data.subarray(i * WORD, (i + 1) * WORD);
    const label = `${what} value ${i + 1} (${type.name})`;
    if (!type.dynamic) return decodeWord(type, head, label);
    const offset = readSize(head, `${label} offset`);
    if (offset + WORD > data.length) {
      throw new AbiError(`${label}: offset ${offset} points past the ${data.length} bytes of data`);
    }
    const length = readSize(data.subarray(offset, offset + WORD), `${label} length`);
    const start = offset + WORD;
    if (length > data.length - start) {
      throw new AbiError(`${label}: a length of ${length} bytes at offset ${offset} runs past the ${data.length} bytes of data`);
    }
    const bytes = data.subarray(start, start + length);
    if (type.kind === 'bytes') return toHex(bytes);
    try {
      // ignoreBOM: a leading U+FEFF is part of the string, not a marker to drop.
      return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
    } catch {
      throw new AbiError(`${label}: not valid UTF-8`);
    }
  });
}

/** An offset or length word: refused unless it is a size that could fit in the data. */
function readSize(word, what) {
  for (let i = 0; i < WORD - 4; i++) {
    if (word[i] !== 0) throw new AbiError(`${what} is too large to be real`);
  }
  return ((word[28] << 24) | (word[29] << 16) | (word[30] << 8) | word[31]) >>> 0;
}

function decodeWord(type, word, what) {
  const value = BigInt(toHex(word));
  switch (type.kind) {
    case 'address':
      if (value >> 160n !== 0n) throw new AbiError(`${what}: not an address (the upper 12 bytes are not zero)`);
      return toHex(word.subarray(12));
    case 'bool':
      if (value > 1n) throw new AbiError(`${what}: not a bool (neither 0 nor 1)`);
      return value === 1n;
    case 'uint':
    case 'int': {
      const n = type.kind === 'int' && value >= TWO_256 / 2n ? value - TWO_256 : value;
      const [min, max] = range(type);
      if (n < min || n > max) throw new AbiError(`${what}: the word is out of range for ${type.name}`);
      return n;
    }
    case 'bytesN':
      if (word.subarray(type.size).some((b) => b !== 0)) {
        throw new AbiError(`${what}: not a ${type.name} (bytes after the first ${type.size} are not zero)`);
      }
      return toHex(word.subarray(0, type.size));
  }
  throw new Error(`${type.name} is not a one-word type`);
}
