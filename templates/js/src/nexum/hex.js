// Hex text <-> bytes. The helper hands modules hex strings ('0x…', lowercase) for
// addresses, hashes and byte strings, because they print, compare and serialize as-is.

const DIGITS = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Bytes as '0x…' lowercase hex. */
export function toHex(bytes) {
  let out = '0x';
  for (let i = 0; i < bytes.length; i++) out += DIGITS[bytes[i]];
  return out;
}

/**
 * '0x…' hex (either case) as bytes. `what` names the value in the error, so a bad
 * address in a test reads "address: …" rather than a bare parse error.
 */
export function fromHex(text, what = 'hex value') {
  if (typeof text !== 'string' || !text.startsWith('0x')) {
    throw new TypeError(`${what}: expected a '0x…' hex string, got ${describe(text)}`);
  }
  const digits = text.length - 2;
  if (digits % 2 !== 0) {
    throw new TypeError(`${what}: ${digits} hex digits is not a whole number of bytes`);
  }
  const bytes = new Uint8Array(digits / 2);
  for (let i = 0; i < bytes.length; i++) {
    const byte = parseHexByte(text, 2 + 2 * i);
    if (byte < 0) throw new TypeError(`${what}: not hex at character ${2 + 2 * i}`);
    bytes[i] = byte;
  }
  return bytes;
}

/** `fromHex` that also insists on an exact length in bytes (addresses, hashes, bytesN). */
export function fromHexSized(text, size, what) {
  const bytes = fromHex(text, what);
  if (bytes.length !== size) {
    throw new TypeError(`${what}: expected ${size} bytes, got ${bytes.length}`);
  }
  return bytes;
}

/** A short, safe description of an unexpected value for error messages. */
export function describe(value) {
  if (typeof value === 'string') {
    return value.length > 70 ? `'${value.slice(0, 67)}…'` : `'${value}'`;
  }
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value instanceof Uint8Array) return `Uint8Array(${value.length})`;
  if (Array.isArray(value)) return `an array of ${value.length}`;
  return value === null ? 'null' : typeof value;
}

function parseHexByte(text, at) {
  const hi = nibble(text.charCodeAt(at));
  const lo = nibble(text.charCodeAt(at + 1));
  return hi < 0 || lo < 0 ? -1 : (hi << 4) | lo;
}

function nibble(code) {
  if (code >= 48 && code <= 57) return code - 48; // 0-9
  if (code >= 97 && code <= 102) return code - 87; // a-f
  if (code >= 65 && code <= 70) return code - 55; // A-F
  return -1;
}
