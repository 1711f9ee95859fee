// The nexum helper library, vendored into this module so it has no runtime dependencies.
// Modules import from here; only src/main.js and FakeHost use `bind` and `entry`.

export { log, store, chain, bind } from './host.js';
export { Fault, RpcError, FAULT_KINDS } from './errors.js';
export { event, fn, AbiError } from './abi.js';
export { keccak256 } from './keccak.js';
export { toHex, fromHex } from './hex.js';
export { entry } from './entry.js';
