// Keccak-256 against known digests, and the ABI codec: round trips, and hostile data
// refused with a clear error instead of a crash, a hang or a huge allocation.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AbiError, event, fn, keccak256 } from '../src/nexum/index.js';

const word = (hex) => hex.replace(/^0x/, '').padStart(64, '0');
const data = (...words) => `0x${words.map(word).join('')}`;

describe('keccak256', () => {
  test('known digests (Keccak-256, not SHA3-256)', () => {
    assert.equal(keccak256(''), '0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470');
    assert.equal(
      keccak256('Ping(address,uint256,bytes)'),
      '0x1357ced6b1561b5e4d78f91f6ef06a85126d60f4d1cc9bcba20ac1b1c5d46007',
    );
    assert.equal(keccak256(new TextEncoder().encode('Pong(uint256,string)')), keccak256('Pong(uint256,string)'));
  });

  test('inputs around the 136-byte block size (digests from a node: web3_sha3)', () => {
    const input = (n) => new Uint8Array(n).map((_, i) => (i * 7 + 3) & 0xff);
    assert.equal(keccak256(input(135)), '0x00ef96af9cf4b24c7f269d922294444a197d0a33638c2e56634c57e892103a8f');
    assert.equal(keccak256(input(136)), '0x742061bcad767ed4c4f5883b1dcb1aad11afdcc140dc469d953759b127b9f9ed');
    assert.equal(keccak256(input(137)), '0xe3371f61e770abf254c34239c3b0099ad90594507415bc81dd0a10b9692bbf2a');
  });
});

describe('events', () => {
  const Ping = event('event Ping(address indexed sender, uint256 indexed seq, bytes payload)');
  const Pong = event('event Pong(uint256 indexed seq, string note)');
  const sender = '0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266';

  test('signature and topic', () => {
    assert.equal(Ping.signature, 'Ping(address,uint256,bytes)');
    assert.equal(Ping.topic, '0x1357ced6b1561b5e4d78f91f6ef06a85126d60f4d1cc9bcba20ac1b1c5d46007');
    assert.equal(Pong.topic, '0x695348b1ddc5783a055d24ae63761449001b19a179e9875155fdc30f2405f919');
  });

  test('encode then decode gives the values back', () => {
    const log = Ping.encode({ sender, seq: 7n, payload: '0xdeadbeef' }, { blockNumber: 3 });
    assert.equal(log.blockNumber, 3);
    assert.ok(Ping.matches(log));
    assert.ok(!Pong.matches(log));
    assert.deepEqual(Ping.decode(log), { sender, seq: 7n, payload: '0xdeadbeef' });
    const note = 'héllo, wörld'.repeat(5);
    assert.deepEqual(Pong.decode(Pong.encode({ seq: 1n, note })), { seq: 1n, note });
  });

  test('the same signature with different indexing is not a match', () => {
    // ERC-20 and ERC-721 Transfer share topic 0; only the topic count tells them apart.
    const erc20 = event('event Transfer(address indexed from, address indexed to, uint256 value)');
    const erc721 = event('event Transfer(address indexed from, address indexed to, uint256 indexed id)');
    const log = erc721.encode({ from: sender, to: sender, id: 1n });
    assert.equal(erc20.topic, erc721.topic);
    assert.ok(!erc20.matches(log));
    assert.throws(() => erc20.decode(log), { name: 'AbiError', message: /4 topics/ });
  });

  test('an indexed string or bytes decodes to its hash', () => {
    const Named = event('event Named(string indexed name, int8 delta)');
    const decoded = Named.decode(Named.encode({ name: 'alice', delta: -3n }));
    assert.deepEqual(decoded, { name: keccak256('alice'), delta: -3n });
  });

  test('unnamed params are keyed by position', () => {
    const E = event('event E(uint16, bool indexed, bytes4)');
    assert.deepEqual(E.decode(E.encode({ 0: 9n, 1: true, 2: '0x01020304' })), { 0: 9n, 1: true, 2: '0x01020304' });
  });
});

describe('functions', () => {
  test('selector, call data and return values', () => {
    const count = fn('function count() external view returns (uint256)');
    assert.equal(count.selector, '0x06661abd');
    assert.equal(count.encode(), '0x06661abd');
    assert.equal(count.decode(data('5')), 5n);

    const ping = fn('function ping(uint256 seq, bytes calldata payload)');
    assert.equal(ping.encode(1n, '0xab'), `${ping.selector}${word('1')}${word('40')}${word('1')}ab${'0'.repeat(62)}`);
    assert.equal(ping.decode('0x'), undefined);

    const pair = fn('function pair() view returns (address, int256, string)');
    const back = pair.decode(data('ee'.repeat(20), 'f'.repeat(64), '60', '2', '6869'.padEnd(64, '0')));
    assert.deepEqual(back, [`0x${'ee'.repeat(20)}`, -1n, 'hi']);
  });

  test('arguments are checked against their types', () => {
    const f = fn('function f(uint8 a, address b)');
    assert.throws(() => f.encode(256n, `0x${'00'.repeat(20)}`), { message: /256 does not fit uint8/ });
    assert.throws(() => f.encode(1n, '0x1234'), { message: /expected 20 bytes/ });
    assert.throws(() => f.encode(1n), { message: /takes 2 arguments, got 1/ });
  });

  test('no return data is explained, not misread', () => {
    const count = fn('function count() view returns (uint256)');
    assert.throws(() => count.decode('0x'), { message: /returned no data: is there a contract/ });
  });
});

describe('declarations outside the supported types are refused at once', () => {
  for (const [declaration, why] of [
    ['event E(uint256[] values)', /arrays/],
    ['event E((uint256,bool) pair)', /tuple/],
    ['function f() returns ((uint256,bool))', /tuple/],
    ['function f() returns (uint256[2])', /arrays/],
    ['event E(fixed128x18 x)', /not supported/],
    ['event E(uint7 x)', /not a Solidity integer/],
    ['event E(bytes33 x)', /not a Solidity type/],
    ['event E(uint256 x) anonymous', /anonymous/],
    ['event E(uint a, uint b, uint c, uint d) ', undefined],
    ['event E(uint indexed a, uint indexed b, uint indexed c, uint indexed d)', /at most 3/],
    ['not a declaration', /cannot read/],
  ]) {
    test(declaration, () => {
      if (why === undefined) assert.doesNotThrow(() => event(declaration));
      else assert.throws(() => (declaration.startsWith('function') ? fn : event)(declaration), { message: why });
    });
  }
});

describe('hostile data is refused with a clear error', () => {
  const f = fn('function f() view returns (bytes)');
  const g = fn('function g() view returns (address, bool, uint8, int8, bytes2)');
  const s = fn('function s() view returns (string)');
  const refused = (call, message) => assert.throws(call, (error) => error instanceof AbiError && message.test(error.message));

  test('offsets and lengths outside the data', () => {
    refused(() => f.decode(data('20')), /offset 32 points past/);
    refused(() => f.decode(data('ffffffff', '1')), /offset 4294967295 points past/);
    refused(() => f.decode(data('f'.repeat(64))), /too large to be real/);
    refused(() => f.decode(data('20', 'ffffffff')), /length of 4294967295 bytes .* runs past/);
    refused(() => f.decode(data('20', '21', '0')), /length of 33 bytes/);
    refused(() => f.decode('0x0000'), /2 bytes of data, but 1 values need at least 32/);
  });

  test('dirty words for static types', () => {
    const ok = ['1'.repeat(40), '1', 'ff', 'f'.repeat(64), 'abcd'.padEnd(64, '0')];
    assert.deepEqual(g.decode(data(...ok)), [`0x${'11'.repeat(20)}`, true, 255n, -1n, '0xabcd']);
    const bad = (i, w) => data(...ok.map((v, j) => (j === i ? w : v)));
    refused(() => g.decode(bad(0, `1${'0'.repeat(63)}`)), /not an address/);
    refused(() => g.decode(bad(1, '2')), /not a bool/);
    refused(() => g.decode(bad(2, '100')), /out of range for uint8/);
    refused(() => g.decode(bad(3, '80')), /out of range for int8/);
    refused(() => g.decode(bad(4, 'abcdef'.padEnd(64, '0'))), /not a bytes2/);
  });

  test('a string that is not UTF-8', () => {
    refused(() => s.decode(data('20', '2', 'c328'.padEnd(64, '0'))), /not valid UTF-8/);
  });

  test('text that is not hex', () => {
    assert.throws(() => f.decode('0xzz'), { name: 'TypeError', message: /not hex/ });
    assert.throws(() => f.decode('0x123'), { message: /not a whole number of bytes/ });
    assert.throws(() => f.decode('1234'), { message: /expected a '0x…' hex string/ });
  });
});

describe('the codec agrees with the Python helper', () => {
  test('a leading byte order mark is part of a string', () => {
    const Pong = event('event Pong(uint256 indexed seq, string note)');
    assert.deepEqual(Pong.decode(Pong.encode({ seq: 1n, note: '\uFEFFhi' })), { seq: 1n, note: '\uFEFFhi' });
    const s = fn('function s() view returns (string)');
    assert.equal(s.decode(data('20', '5', 'efbbbf6869'.padEnd(64, '0'))), '\uFEFFhi');
  });

  test('half a surrogate pair is refused, not written or hashed as U+FFFD', () => {
    const Pong = event('event Pong(uint256 indexed seq, string note)');
    assert.throws(() => Pong.encode({ seq: 1n, note: 'a\uD800' }), { name: 'TypeError', message: /not valid Unicode/ });
    assert.throws(() => keccak256('\uDC00'), { name: 'TypeError', message: /not valid Unicode/ });
    assert.equal(keccak256('\uD83D\uDE00'), keccak256(new TextEncoder().encode('😀')));
  });

  test('a parameter name used twice is refused', () => {
    for (const declaration of [
      'event E(uint256 a, bool indexed a)',
      'function f(uint256 a, bool a)',
      'function f() view returns (uint256 a, bool a)',
    ]) {
      assert.throws(() => (declaration.startsWith('function') ? fn : event)(declaration), {
        name: 'SyntaxError',
        message: `${declaration}: parameter name 'a' is used twice`,
      });
    }
    assert.doesNotThrow(() => fn('function f(uint256 a) view returns (uint256 a)'));
  });

  test('a parameter named __proto__ is an ordinary key', () => {
    const E = event('event E(uint256 indexed __proto__, bytes constructor, bool toString)');
    const values = Object.fromEntries([['__proto__', 7n], ['constructor', '0xab'], ['toString', true]]);
    const decoded = E.decode(E.encode(values));
    assert.deepEqual(decoded, values);
    assert.equal(Object.getPrototypeOf(decoded), Object.prototype);
    const { __proto__: seq, constructor: payload } = decoded;
    assert.deepEqual([seq, payload], [7n, '0xab']);
    assert.throws(() => E.encode({ constructor: '0x', toString: true }), { message: /no value for '__proto__'/ });
  });
});
