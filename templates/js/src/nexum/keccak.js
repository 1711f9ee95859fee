// Keccak-256, the hash Ethereum uses for event topics, function selectors and storage
// slots. It is the original Keccak submission (padding byte 0x01), NOT the standardized
// SHA3-256 (padding 0x06): the two give different digests for the same input.
//
// The 64-bit lanes are held as pairs of 32-bit halves (lo, hi), so the permutation runs
// on plain integer arithmetic with no BigInt in the hot loop.

import { toHex } from './hex.js';

const RATE = 136; // bytes absorbed per permutation: (1600 - 2 * 256) / 8
const ROUNDS = 24;

// The round constants and rotation offsets are derived from their definitions in the
// Keccak reference (FIPS 202 §3.2) rather than typed in as tables of magic numbers.
const ROUND_CONSTANTS = roundConstants(); // [lo0, hi0, lo1, hi1, …]
const { ROTATIONS, PERMUTE } = rhoPi();

/** The Keccak-256 digest of bytes, or of a string's UTF-8 encoding, as '0x…' hex. */
export function keccak256(input) {
  return toHex(keccak256Bytes(input));
}

/**
 * Whether `text` is valid Unicode: no half of a surrogate pair on its own. A plain loop,
 * as the component's JavaScript engine has no `\p{…}` classes in regular expressions.
 */
export function isWellFormed(text) {
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0xdc00 && unit <= 0xdfff) return false;
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (!(next >= 0xdc00 && next <= 0xdfff)) return false;
      i++;
    }
  }
  return true;
}

/** The Keccak-256 digest as 32 bytes. */
export function keccak256Bytes(input) {
  // TextEncoder would silently hash U+FFFD for half a surrogate pair: refused instead.
  if (typeof input === 'string' && !isWellFormed(input)) {
    throw new TypeError('keccak256: the string is not valid Unicode (a lone surrogate)');
  }
  const data = typeof input === 'string' ? new TextEncoder().encode(input) : input;
  if (!(data instanceof Uint8Array)) {
    throw new TypeError('keccak256 takes a Uint8Array or a string');
  }
  const state = new Uint32Array(50);
  const block = new Uint8Array(RATE);
  let offset = 0;
  for (; offset + RATE <= data.length; offset += RATE) {
    absorb(state, data.subarray(offset, offset + RATE));
  }
  // The last, partial block: Keccak's pad10*1 with the 0x01 domain byte.
  block.set(data.subarray(offset));
  block[data.length - offset] ^= 0x01;
  block[RATE - 1] ^= 0x80;
  absorb(state, block);

  const digest = new Uint8Array(32);
  for (let i = 0; i < 32; i++) {
    digest[i] = state[i >> 2] >>> ((i & 3) * 8);
  }
  return digest;
}

/** XORs one block into the state (lanes are little-endian) and permutes. */
function absorb(state, block) {
  for (let i = 0; i < RATE; i += 4) {
    state[i >> 2] ^= block[i] | (block[i + 1] << 8) | (block[i + 2] << 16) | (block[i + 3] << 24);
  }
  permute(state);
}

/** Keccak-f[1600]. Lane (x, y) lives at index 2 * (x + 5y) (lo) and +1 (hi). */
function permute(s) {
  const c = new Uint32Array(10);
  const b = new Uint32Array(50);
  for (let round = 0; round < ROUNDS; round++) {
    // θ: XOR each lane with the parities of two neighbouring columns.
    for (let x = 0; x < 5; x++) {
      c[2 * x] = s[2 * x] ^ s[2 * x + 10] ^ s[2 * x + 20] ^ s[2 * x + 30] ^ s[2 * x + 40];
      c[2 * x + 1] = s[2 * x + 1] ^ s[2 * x + 11] ^ s[2 * x + 21] ^ s[2 * x + 31] ^ s[2 * x + 41];
    }
    for (let x = 0; x < 5; x++) {
      const left = 2 * ((x + 4) % 5);
      const right = 2 * ((x + 1) % 5);
      // rotate the right column's parity by one bit
      const lo = c[left] ^ ((c[right] << 1) | (c[right + 1] >>> 31));
      const hi = c[left + 1] ^ ((c[right + 1] << 1) | (c[right] >>> 31));
      for (let y = 0; y < 50; y += 10) {
        s[2 * x + y] ^= lo;
        s[2 * x + y + 1] ^= hi;
      }
    }
    // ρ and π: rotate each lane and move it to its new position.
    for (let lane = 0; lane < 25; lane++) {
      rotateInto(b, 2 * PERMUTE[lane], s[2 * lane], s[2 * lane + 1], ROTATIONS[lane]);
    }
    // χ: each bit mixes with the next two lanes of its row.
    for (let y = 0; y < 50; y += 10) {
      for (let x = 0; x < 5; x++) {
        const i = y + 2 * x;
        const n1 = y + 2 * ((x + 1) % 5);
        const n2 = y + 2 * ((x + 2) % 5);
        s[i] = b[i] ^ (~b[n1] & b[n2]);
        s[i + 1] = b[i + 1] ^ (~b[n1 + 1] & b[n2 + 1]);
      }
    }
    // ι: break the symmetry between rounds.
    s[0] ^= ROUND_CONSTANTS[2 * round];
    s[1] ^= ROUND_CONSTANTS[2 * round + 1];
  }
}

/** Writes the 64-bit lane (lo, hi) rotated left by n bits at out[at], out[at + 1]. */
function rotateInto(out, at, lo, hi, n) {
  if (n >= 32) {
    [lo, hi] = [hi, lo];
    n -= 32;
  }
  if (n === 0) {
    out[at] = lo;
    out[at + 1] = hi;
  } else {
    out[at] = (lo << n) | (hi >>> (32 - n));
    out[at + 1] = (hi << n) | (lo >>> (32 - n));
  }
}

/** The 24 round constants from the degree-8 LFSR rc(t) of the Keccak reference. */
function roundConstants() {
  const rc = (t) => {
    let r = 1;
    for (let i = 0; i < t % 255; i++) {
      r <<= 1;
      if (r & 0x100) r ^= 0x171; // x^8 + x^6 + x^5 + x^4 + 1
    }
    return r & 1;
  };
  const out = new Uint32Array(2 * ROUNDS);
  for (let round = 0; round < ROUNDS; round++) {
    for (let j = 0; j <= 6; j++) {
      if (rc(j + 7 * round)) {
        const bit = 2 ** j - 1;
        out[2 * round + (bit >= 32 ? 1 : 0)] |= 1 << (bit % 32);
      }
    }
  }
  return out;
}

/** ρ offsets and π destinations per lane index x + 5y. */
function rhoPi() {
  const ROTATIONS = new Uint8Array(25);
  const PERMUTE = new Uint8Array(25);
  let [x, y] = [1, 0];
  for (let t = 0; t < 24; t++) {
    ROTATIONS[x + 5 * y] = (((t + 1) * (t + 2)) / 2) % 64;
    [x, y] = [y, (2 * x + 3 * y) % 5];
  }
  for (let x = 0; x < 5; x++) {
    for (let y = 0; y < 5; y++) {
      PERMUTE[x + 5 * y] = y + 5 * ((2 * x + 3 * y) % 5);
    }
  }
  return { ROTATIONS, PERMUTE };
}
