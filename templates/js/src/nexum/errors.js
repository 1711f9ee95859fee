// The two kinds of failure a module sees, and their translation to and from the WIT
// shapes: the host throws `{tag, val}` payloads, and an export fails by throwing one.

import { toHex } from './hex.js';

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
   * @param {string} kind one of FAULT_KINDS, e.g. 'invalid-input'
   * @param {string} [message]
   * @param {{retryAfterMs?: number}} [extra] for 'rate-limited': how long to wait, if known
   */
  constructor(kind, message = '', { retryAfterMs } = {}) {
    if (!FAULT_KINDS.includes(kind)) {
      throw new TypeError(`unknown fault kind '${kind}': expected one of ${FAULT_KINDS.join(', ')}`);
    }
    super(message || kind);
    this.name = 'Fault';
    this.kind = kind;
    if (retryAfterMs !== undefined) this.retryAfterMs = retryAfterMs;
  }

  /** The WIT `fault` variant value a failing export throws. */
  toVariant() {
    switch (this.kind) {
      case 'timeout':
        return { tag: 'timeout' };
      case 'rate-limited':
        return {
          tag: 'rate-limited',
          val: {
            retryAfterMs: this.retryAfterMs === undefined ? undefined : BigInt(this.retryAfterMs),
          },
        };
      default:
        return { tag: this.kind, val: this.message };
    }
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
        return new Fault('rate-limited', `rate limited; retry after ${after} ms`, { retryAfterMs: Number(after) });
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
 * this never fails.
 */
export function toFaultVariant(error) {
  if (error instanceof Fault) return error.toVariant();
  if (error instanceof RpcError) {
    return { tag: 'internal', val: `rpc error ${error.code}: ${error.message}` };
  }
  let message;
  try {
    message = error instanceof Error ? error.message : String(error);
  } catch {
    message = 'a value that cannot be printed was thrown';
  }
  return { tag: 'internal', val: message || 'an error without a message was thrown' };
}
