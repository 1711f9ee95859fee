// The two kinds of failure a module sees, and their translation to and from the WIT
// shapes: the host throws `{tag, val}` payloads, and an export fails by throwing one.

import { toU64 } from './convert.js';
import { describe, toHex } from './hex.js';

/** The WIT `fault` cases; `timeout` carries nothing, `rate-limited` a retry hint. */
export const FAULT_KINDS = Object.freeze([
  'unsupported',
  'unavailable',
  'denied',
  'rate-limited',
  'timeout',
  'invalid-input',
  'internal',
]);

/**
 * Why a host call or a handler did not succeed. Thrown by the helpers when the host
 * refuses or fails; throw one yourself to fail an event with a chosen kind (nexum retries
 * the event, then skips it).
 */
export class Fault extends Error {
  /**
   * Refuses, with a TypeError, what nexum cannot carry: checked here, where the mistake is
   * made, rather than when the failing event is handed back.
   *
   * @param {string} kind one of FAULT_KINDS, e.g. 'invalid-input'
   * @param {string} [message] anything else is made text with String()
   * @param {{retryAfterMs?: number|bigint}} [extra] for 'rate-limited': how long to wait, if
   *   known (null or undefined if not); a WIT u64: an integer from 0 to 2^64-1, a BigInt past 2^53
   */
  constructor(kind, message = '', { retryAfterMs } = {}) {
    if (!FAULT_KINDS.includes(kind)) {
      throw new TypeError(`unknown fault kind ${describe(kind)}: expected one of ${FAULT_KINDS.join(', ')}`);
    }
    const text = messageText(message);
    const hinted = retryAfterMs !== undefined && retryAfterMs !== null;
    if (hinted) toU64(retryAfterMs, 'Fault retryAfterMs');
    super(text || kind);
    this.name = 'Fault';
    this.kind = kind;
    if (hinted) this.retryAfterMs = retryAfterMs;
  }

  /** The WIT `fault` variant value a failing export throws (see toFaultVariant). */
  toVariant() {
    return toFaultVariant(this);
  }

  /** A WIT `fault` variant value as a Fault. */
  static fromVariant(variant) {
    const { tag, val } = variant ?? {};
    switch (tag) {
      case 'timeout':
        return new Fault('timeout', 'the request did not finish within its deadline');
      case 'rate-limited': {
        const after = val?.retryAfterMs;
        if (after === undefined) return new Fault('rate-limited', 'rate limited');
        // A u64 arrives as a BigInt: a Number when it is exact as one, which is every sane wait.
        const exact = typeof after === 'bigint' && after <= BigInt(Number.MAX_SAFE_INTEGER);
        const retryAfterMs = exact ? Number(after) : after;
        return new Fault('rate-limited', `rate limited; retry after ${after} ms`, { retryAfterMs });
      }
      default:
        if (FAULT_KINDS.includes(tag)) return new Fault(tag, String(val ?? ''));
        return new Fault('internal', `unrecognized fault from the host: ${String(tag)}`);
    }
  }
}

/** A JSON-RPC error answered by the node (a revert, a bad block number, …). */
export class RpcError extends Error {
  /**
   * @param {number} code the JSON-RPC error code (3 = execution reverted on most nodes)
   * @param {string} message
   * @param {string} [data] '0x…' revert data, when the node sent some
   */
  constructor(code, message, data) {
    super(message);
    this.name = 'RpcError';
    this.code = code;
    if (data !== undefined) this.data = data;
  }
}

/**
 * What a failed import threw, as the helper's own error. componentize-js throws an Error
 * whose `payload` is the WIT err value: a fault for local-store, a chain-error
 * (`fault(fault)` or `rpc(rpc-error)`) for chain. Anything else is passed on unchanged.
 */
export function fromHostError(error) {
  if (error === null || typeof error !== 'object' || !('payload' in error)) return error;
  const payload = error.payload;
  if (payload?.tag === 'fault') return Fault.fromVariant(payload.val);
  if (payload?.tag === 'rpc') {
    const { code, message, data } = payload.val ?? {};
    return new RpcError(code, message, data === undefined ? undefined : toHex(data));
  }
  return Fault.fromVariant(payload);
}

/**
 * Anything a handler threw, as the WIT fault an export must throw: a Fault as itself, an
 * RpcError as internal "rpc error CODE: message", any other value as internal with its
 * message. An export that throws anything but a fault variant traps the instance, so
 * this never fails: whatever goes wrong describing the error gives an internal fault.
 */
export function toFaultVariant(error) {
  try {
    if (error instanceof Fault) return faultVariant(error);
    if (error instanceof RpcError) return internal(`rpc error ${String(error.code)}: ${String(error.message)}`);
    const message = error instanceof Error ? String(error.message) : String(error);
    return internal(message || 'an error without a message was thrown');
  } catch {
    return internal('a value that cannot be printed was thrown');
  }
}

/**
 * A Fault's variant. Its fields are checked again as a new Fault's would be (they may have
 * been changed since): one that nexum cannot carry gives an internal fault saying why.
 */
function faultVariant(fault) {
  let checked;
  try {
    checked = new Fault(fault.kind, fault.message, { retryAfterMs: fault.retryAfterMs });
  } catch (error) {
    return internal(`a Fault that nexum cannot carry was thrown: ${String(error.message)}`);
  }
  switch (checked.kind) {
    case 'timeout':
      return { tag: 'timeout' };
    case 'rate-limited': {
      const ms = checked.retryAfterMs;
      return { tag: 'rate-limited', val: { retryAfterMs: ms === undefined ? undefined : toU64(ms, 'retryAfterMs') } };
    }
    default:
      return { tag: checked.kind, val: checked.message };
  }
}

const internal = (message) => ({ tag: 'internal', val: message });

/** A Fault's message as text. String() of some values throws: refused with a clear error. */
function messageText(message) {
  if (typeof message === 'string') return message;
  if (message === undefined || message === null) return '';
  try {
    return String(message);
  } catch {
    throw new TypeError(`a Fault message must be a string, and String() of the ${describe(message)} given failed`);
  }
}
