// The example module's behaviour, run through FakeHost exactly as nexum would run it, and
// the host rules FakeHost enforces like nexum (so a test that passes here does not fail
// against the real host for a reason the fake let through).

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, test } from 'node:test';
import * as counter from '../src/module.js';
import { chain, event, Fault, log, RpcError, store } from '../src/nexum/index.js';
import { exportFailure, FakeHost } from '../src/nexum/testing.js';

const Ping = event('event Ping(address indexed sender, uint256 indexed seq, bytes payload)');
const Pong = event('event Pong(uint256 indexed seq, string note)');
const CONTRACT = '0x5fbdb2315678afecb367f032d93f642f64180aa3';
const SENDER = '0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266';
const COUNT_5 = `0x${'0'.repeat(63)}5`;

const ping = (seq, removed = false) =>
  Ping.encode({ sender: SENDER, seq, payload: '0x' }, { address: CONTRACT, blockNumber: 7, removed });
const pong = (seq, note) => Pong.encode({ seq, note }, { address: CONTRACT, blockNumber: 7 });
const messages = (host) => host.logs.map(([, message]) => message);

/** A FakeHost for module.toml with `limits` as its [limits] table. */
function hostWith(limits, t) {
  const dir = mkdtempSync(join(tmpdir(), 'nexum-'));
  t.after(() => rmSync(dir, { recursive: true }));
  const manifest = join(dir, 'module.toml');
  writeFileSync(
    manifest,
    `[module]\nname = "x"\nversion = "1"\n[capabilities]\nrequired = ["chain", "local-store", "logging"]\nchains = [31337]\n[limits]\n${limits}\n`,
  );
  return () => new FakeHost(manifest);
}

describe('the example module', () => {
  let host;
  beforeEach(() => {
    host = new FakeHost().onRequest(() => COUNT_5);
    host.init(counter); // module.toml's [config]: read_count = "true"
  });

  test('init reads read_count from the config', () => {
    assert.deepEqual(host.logs, [['info', 'counter ready (read_count=true)']]);
    host.init(counter, { read_count: 'false' });
    assert.equal(host.logs.at(-1)[1], 'counter ready (read_count=false)');
  });

  test('a block is logged and stored as last-block', () => {
    host.deliver(counter, FakeHost.block({ number: 12 }));
    assert.equal(host.logs.at(-1)[1], 'block 12');
    assert.equal(host.storeJson('last-block'), 12);
  });

  test('Ping and Pong are counted, then the contract is asked for its count', () => {
    host.deliver(counter, FakeHost.chainLogs(31337, [ping(3n), pong(4n, 'burst'), ping(5n)]));
    assert.deepEqual(messages(host).slice(1), [
      `Ping #3 from ${SENDER} (1 so far)`,
      'Pong #4: "burst" (1 so far)',
      `Ping #5 from ${SENDER} (2 so far)`,
      "the contract's own count is 5",
    ]);
    assert.equal(host.storeJson('count/Ping'), 2);
    assert.equal(host.storeJson('count/Pong'), 1);
    assert.deepEqual(host.requests, [
      { chainId: 31337, method: 'eth_call', params: [{ to: CONTRACT, data: '0x06661abd' }, 'latest'] },
    ]);
  });

  test('a log retracted by a reorg is taken back out of the count', () => {
    host.deliver(counter, FakeHost.chainLogs(31337, [ping(1n), ping(2n)]));
    host.deliver(counter, FakeHost.chainLogs(31337, [ping(2n, true)]));
    assert.equal(host.storeJson('count/Ping'), 1);
    assert.equal(messages(host).at(-2), `Ping #2 from ${SENDER} (1 so far)`);
  });

  test('another event is warned about, not counted', () => {
    const Other = event('event Other(uint256 value)');
    host.deliver(counter, FakeHost.chainLogs(31337, [Other.encode({ value: 1n }, { address: CONTRACT })]));
    assert.deepEqual(host.logs.at(-2), ['warn', `unexpected event ${Other.topic}`]);
    assert.deepEqual([...host.store.keys()], []);
  });

  test('without read_count the contract is not called', () => {
    host.init(counter, { read_count: 'false' });
    host.deliver(counter, FakeHost.chainLogs(31337, [ping(1n)]));
    assert.deepEqual(host.requests, []);
  });

  test('a failing count() call fails the batch, and its counts are not kept', () => {
    host.onRequest(() => {
      throw new RpcError(3, 'execution reverted', '0x08c379a0');
    });
    assert.throws(() => host.deliver(counter, FakeHost.chainLogs(31337, [ping(1n)])), {
      name: 'Fault',
      kind: 'internal',
      message: 'rpc error 3: execution reverted',
    });
    assert.equal(host.storeJson('count/Ping'), undefined);
  });
});

describe('handlers and failures', () => {
  test('writes of a failing call are discarded; the call sees its own writes', () => {
    const host = new FakeHost();
    let seen;
    const module = {
      onBlock(block) {
        store.setJson('n', block.number);
        seen = store.getJson('n');
        if (block.number === 2) throw new Fault('unavailable', 'try later');
      },
    };
    host.deliver(module, FakeHost.block({ number: 1 }));
    assert.throws(() => host.deliver(module, FakeHost.block({ number: 2 })), { kind: 'unavailable', message: 'try later' });
    assert.equal(seen, 2);
    assert.equal(host.storeJson('n'), 1);
  });

  test('any other exception becomes an internal fault, never a trap', () => {
    const host = new FakeHost();
    const module = {
      onBlock() {
        null.boom;
      },
    };
    assert.throws(() => host.deliver(module, FakeHost.block({ number: 1 })), { name: 'Fault', kind: 'internal', message: /null/ });
  });

  test('an event without a handler is an internal fault', () => {
    assert.throws(() => new FakeHost().deliver({}, FakeHost.tick(1_000)), {
      kind: 'internal',
      message: 'module.js has no onTick handler',
    });
  });

  test('an async handler is refused: its work would escape the call', () => {
    const module = { async onBlock() {} };
    assert.throws(() => new FakeHost().deliver(module, FakeHost.block({ number: 1 })), {
      kind: 'internal',
      message: 'onBlock returned a Promise: handlers must be synchronous (no async)',
    });
  });

  test('a node error reaches the module as RpcError with its revert data', () => {
    const host = new FakeHost().onRequest(() => {
      throw new RpcError(3, 'execution reverted', '0x08c379a0');
    });
    let caught;
    host.deliver(
      {
        onBlock() {
          try {
            chain.call(31337, { to: CONTRACT, data: '0x' });
          } catch (error) {
            caught = error;
          }
        },
      },
      FakeHost.block({ number: 1 }),
    );
    assert.ok(caught instanceof RpcError);
    assert.deepEqual([caught.code, caught.message, caught.data], [3, 'execution reverted', '0x08c379a0']);
  });
});

describe('the fake host refuses what nexum refuses', () => {
  /** The Fault a handler's host call throws. */
  function refusal(call) {
    let caught;
    new FakeHost().onRequest(() => null).deliver(
      {
        onBlock() {
          try {
            call();
          } catch (error) {
            caught = error;
          }
        },
      },
      FakeHost.block({ number: 1 }),
    );
    assert.ok(caught instanceof Fault, `expected a Fault, got ${caught}`);
    return { kind: caught.kind, message: caught.message };
  }

  test('a chain the module did not declare', () => {
    assert.deepEqual(refusal(() => chain.request(5, 'eth_blockNumber')), {
      kind: 'unsupported',
      message: 'chain 5 is not declared by this module: subscribe to it or list it in [capabilities] chains',
    });
  });

  test('a method that is not read-only', () => {
    assert.deepEqual(refusal(() => chain.request(31337, 'eth_sendTransaction', [{}])), {
      kind: 'denied',
      message: 'method `eth_sendTransaction` is not allowed: signing and sending are not available to modules',
    });
    assert.equal(refusal(() => chain.request(31337, 'anvil_mine')).kind, 'denied');
    assert.equal(refusal(() => chain.request(31337, 'eth_newFilter', [{}])).kind, 'denied');
  });

  test('a key longer than 1024 bytes, an empty key, a value over 1 MiB', () => {
    assert.deepEqual(refusal(() => store.set('k'.repeat(1025), new Uint8Array(1))), {
      kind: 'invalid-input',
      message: 'key is 1025 bytes; the limit is 1024',
    });
    assert.deepEqual(refusal(() => store.get('')), { kind: 'invalid-input', message: 'keys must not be empty' });
    assert.deepEqual(refusal(() => store.set('k', new Uint8Array(1024 * 1024 + 1))), {
      kind: 'invalid-input',
      message: 'value is 1048577 bytes; the limit is 1048576',
    });
  });

  test('a module.toml that does not grant every imported interface is refused, as nexum refuses to load it', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'nexum-'));
    t.after(() => rmSync(dir, { recursive: true }));
    const manifest = join(dir, 'module.toml');
    writeFileSync(manifest, '[module]\nname = "x"\nversion = "1"\n[capabilities]\nrequired = ["logging"]\n');
    assert.throws(() => new FakeHost(manifest), {
      message: /imports `nexum:host\/chain@0.2.1`, which needs the `chain` capability; add "chain" to \[capabilities\] required/,
    });
  });

  test('listing keys sees the call’s own writes and deletes', () => {
    const host = new FakeHost();
    host.deliver({ onBlock: () => ['a/1', 'a/2', 'b/1'].forEach((k) => store.setJson(k, 1)) }, FakeHost.block({ number: 1 }));
    let keys;
    host.deliver(
      {
        onBlock() {
          store.delete('a/1');
          store.setJson('a/3', 3);
          keys = store.keys('a/');
        },
      },
      FakeHost.block({ number: 2 }),
    );
    assert.deepEqual(keys, ['a/2', 'a/3']);
    assert.deepEqual([...host.store.keys()].sort(), ['a/2', 'a/3', 'b/1']);
  });
});

describe('batches of chain calls, as nexum serves them', () => {
  const during = (host, work) => {
    let result;
    host.deliver({ onBlock: () => (result = work()) }, FakeHost.block({ number: 1 }));
    return result;
  };

  test('each call of a batch succeeds or fails on its own', () => {
    const host = new FakeHost().onRequest((_, method) => {
      if (method === 'eth_call') throw new RpcError(3, 'execution reverted', '0x08c379a0');
      return '0x2a';
    });
    const answers = during(host, () =>
      chain.requestBatch(31337, [['eth_blockNumber'], ['eth_sendTransaction', [{}]], ['eth_call', [{ to: CONTRACT }, 'latest']]]),
    );
    assert.equal(answers[0], '0x2a');
    assert.ok(answers[1] instanceof Fault);
    assert.deepEqual([answers[1].kind, answers[1].message], [
      'denied',
      'method `eth_sendTransaction` is not allowed: signing and sending are not available to modules',
    ]);
    assert.ok(answers[2] instanceof RpcError);
    assert.deepEqual([answers[2].code, answers[2].data], [3, '0x08c379a0']);
    assert.deepEqual(host.requests.map((r) => r.method), ['eth_blockNumber', 'eth_call']);
  });

  test('a failed round trip fails the whole batch; an answer too large fails its call alone', (t) => {
    const host = hostWith('answer_bytes = 16', t)().onRequest((_, method) => {
      if (method === 'eth_gasPrice') throw new Fault('timeout', 'the node did not answer');
      return method === 'eth_getCode' ? `0x${'ab'.repeat(20)}` : '0x1';
    });
    const answers = during(host, () => chain.requestBatch(31337, [['eth_chainId'], ['eth_getCode', ['0x00', 'latest']]]));
    assert.equal(answers[0], '0x1');
    assert.deepEqual([answers[1].kind, answers[1].message], [
      'unavailable',
      "the node's answer is 44 bytes; this module may receive 16 (limits.answer_bytes)",
    ]);
    assert.throws(() => during(host, () => chain.requestBatch(31337, [['eth_chainId'], ['eth_gasPrice']])), {
      kind: 'timeout',
    });
  });

  test('a batch over the limits is refused whole', (t) => {
    const host = hostWith('rpc_batch_max = 2\nrequest_bytes = 64', t)().onRequest(() => '0x1');
    const refusal = (calls) => {
      try {
        during(host, () => chain.requestBatch(31337, calls));
      } catch (fault) {
        return [fault.kind, fault.message];
      }
      assert.fail('the batch was sent');
    };
    assert.deepEqual(refusal([['eth_chainId'], ['eth_chainId'], ['eth_chainId']]), [
      'invalid-input',
      'a batch of 3 requests; the limit is 2 (limits.rpc_batch_max)',
    ]);
    assert.deepEqual(refusal([['eth_getBalance', ['0x' + '0'.repeat(40), 'latest']], ['eth_chainId']]), [
      'invalid-input',
      'the batch is 82 bytes; the limit is 64 (limits.request_bytes)',
    ]);
    // UTF-8 bytes, not UTF-16 units: 'é' is two bytes.
    assert.deepEqual(refusal([['eth_call', [{ data: 'é'.repeat(20) }, 'latest']]]), [
      'invalid-input',
      'the batch is 70 bytes; the limit is 64 (limits.request_bytes)',
    ]);
    assert.deepEqual(host.requests, []);
    assert.throws(() => during(host, () => chain.requestBatch(5, [['eth_chainId']])), { kind: 'unsupported' });
  });
});

describe('counting, paging and batches, as nexum does them', () => {
  /** Runs `work` as one call of a block handler; returns what it returned. */
  const during = (host, work) => {
    let result;
    host.deliver({ onBlock: () => (result = work()) }, FakeHost.block({ number: 1 }));
    return result;
  };
  const bytes = (text) => new TextEncoder().encode(text);
  const keys = (prefix, from, to) => Array.from({ length: to - from }, (_, i) => `${prefix}${String(from + i).padStart(4, '0')}`);

  test('count, has and size see the call’s own writes and deletes', () => {
    const host = new FakeHost();
    during(host, () => store.apply([['a/1', bytes('one')], ['a/2', bytes('two')], ['b/1', bytes('x')]]));
    const seen = during(host, () => {
      store.delete('a/1');
      store.set('a/3', bytes('three'));
      store.delete('never');
      return [store.count('a/'), store.count(''), store.has('a/1'), store.has('a/3'), store.size('a/3'), store.size('a/1'), store.size('a/2')];
    });
    assert.deepEqual(seen, [2, 3, false, true, 5, undefined, 3]);
  });

  test('pages walk the store in key order, merged with the call’s writes, 1,000 entries or 1 MiB at most', () => {
    const host = new FakeHost();
    during(host, () => store.apply(keys('k/', 0, 2500).map((k) => [k, bytes(k)])));
    const walked = during(host, () => {
      store.delete('k/0000');
      store.set('k/0001', bytes('rewritten'));
      store.set('k/2500', bytes('new'));
      const first = store.page('k/');
      const small = store.page('k/', { after: 'k/1000', limit: 3 });
      return { first, small, all: [...store.entries('k/')] };
    });
    assert.equal(walked.first.entries.length, 1000);
    assert.equal(walked.first.next, 'k/1000');
    assert.deepEqual(walked.first.entries[0], ['k/0001', bytes('rewritten')]);
    assert.deepEqual(walked.small.entries.map(([k]) => k), ['k/1001', 'k/1002', 'k/1003']);
    assert.equal(walked.small.next, 'k/1003');
    assert.deepEqual(walked.all.map(([k]) => k), [...keys('k/', 1, 2500), 'k/2500']);

    during(host, () => store.apply(['x', 'y', 'z'].map((k) => [`big/${k}`, new Uint8Array(600 * 1024)])));
    const pages = during(host, () => [store.page('big/'), store.page('big/', { after: 'big/x' })]);
    assert.deepEqual(pages.map((p) => [p.entries.length, p.next]), [[1, 'big/x'], [1, 'big/y']]);
  });

  test('a page passes over at most 4,000 entries the call hides, and may then hold none', () => {
    const host = new FakeHost();
    during(host, () => store.apply(keys('h/', 0, 5000).map((k) => [k, bytes('v')])));
    const seen = during(host, () => {
      store.apply(keys('h/', 0, 4500).map((k) => [k, null]));
      return { first: store.page('h/'), rest: [...store.entries('h/')].map(([k]) => k) };
    });
    assert.deepEqual(seen.first, { entries: [], next: 'h/3999' });
    assert.deepEqual(seen.rest, keys('h/', 4500, 5000));
  });

  test('a batch applies whole or not at all', (t) => {
    const host = new FakeHost();
    /** The fault `writes` are refused with, and what the call saw of them afterwards. */
    const refused = (writes) =>
      during(host, () => {
        let fault;
        try {
          store.apply(writes);
        } catch (error) {
          fault = [error.kind, error.message];
        }
        return { fault, seen: [store.has('a'), store.count()] };
      });
    assert.deepEqual(refused([['a', bytes('1')], ['b', new Uint8Array(1024 * 1024 + 1)]]), {
      fault: ['invalid-input', 'value is 1048577 bytes; the limit is 1048576'],
      seen: [false, 0],
    });
    assert.deepEqual(refused([['a', bytes('1')], ['', null]]), {
      fault: ['invalid-input', 'keys must not be empty'],
      seen: [false, 0],
    });
    assert.deepEqual(refused(Array.from({ length: 10_001 }, (_, i) => [`k${i}`, null])), {
      fault: ['invalid-input', 'a batch of 10001 writes is over the limit of 10000; apply it in parts'],
      seen: [false, 0],
    });
    during(host, () => store.apply([['a', bytes('1')], ['a', bytes('22')], ['b', bytes('x')], ['b', null]]));
    assert.deepEqual([...host.store], [['a', bytes('22')]]);

    // Only the last write of a key counts against the quota: 9 bytes then 1 fit in 10.
    const small = hostWith('store_total_bytes = 10', t)();
    during(small, () => store.apply([['k', bytes('12345678')], ['k', bytes('1')]]));
    assert.deepEqual([...small.store], [['k', bytes('1')]]);
    assert.deepEqual(
      during(small, () => {
        try {
          store.apply([['l', bytes('1234')], ['m', bytes('12345')]]);
        } catch (error) {
          return [error.kind, error.message, store.has('l')];
        }
      }),
      ['denied', 'the store quota of 10 bytes would be exceeded (2 bytes in use)', false],
    );
  });

  test('a key reaches nexum as UTF-8: a lone surrogate is U+FFFD; page() takes after: null', () => {
    const host = new FakeHost();
    const seen = during(host, () => {
      store.set('s/\ud800', bytes('1'));
      return [store.has('s/\ufffd'), store.page('s/', { after: null }).entries.map(([k]) => k)];
    });
    assert.deepEqual(seen, [true, ['s/\ufffd']]);
  });

  test('keys are ordered by their UTF-8 bytes, as nexum orders them', () => {
    const host = new FakeHost();
    // UTF-16 puts the emoji (a surrogate pair, 0xD83D…) before U+FF61; UTF-8 after it.
    during(host, () => store.apply([['u/😀', bytes('1')], ['u/\uff61', bytes('2')], ['u/a', bytes('3')]]));
    const order = during(host, () => [store.keys('u/'), [...store.entries('u/')].map(([k]) => k)]);
    assert.deepEqual(order, [
      ['u/a', 'u/\uff61', 'u/😀'],
      ['u/a', 'u/\uff61', 'u/😀'],
    ]);
  });

  test('a cursor longer than any key is refused', () => {
    assert.throws(() => during(new FakeHost(), () => store.page('', { after: 'x'.repeat(65_537) })), {
      kind: 'invalid-input',
      message: 'key is 65537 bytes; the limit is 65536',
    });
  });
});

describe('a fault reaches nexum as a fault, never as a trap', () => {
  const block = FakeHost.block({ number: 1 });
  const failing = (thrown) => ({
    onBlock() {
      throw thrown;
    },
  });
  const BAD_WAITS = [1.5, 'soon', -1, 2 ** 70, -1n, 1n << 64n, true];

  test('a Fault refuses a retry hint that is not a u64, and prints a message that is not text', () => {
    for (const bad of BAD_WAITS) {
      assert.throws(() => new Fault('rate-limited', 'slow', { retryAfterMs: bad }), {
        name: 'TypeError',
        message: /^Fault retryAfterMs: expected an integer from 0 to 2\^64-1, got /,
      });
    }
    for (const good of [0, 5, (1n << 64n) - 1n]) {
      assert.equal(new Fault('rate-limited', 'slow', { retryAfterMs: good }).retryAfterMs, good);
    }
    assert.equal(new Fault('rate-limited', 'slow', { retryAfterMs: null }).retryAfterMs, undefined);
    assert.equal(new Fault('unavailable', 42).message, '42');
    assert.throws(() => new Fault('unavailable', { toString: () => { throw new Error('no'); } }), {
      name: 'TypeError',
      message: 'a Fault message must be a string, and String() of the object given failed',
    });
  });

  test('a bad retry hint fails the event as internal', () => {
    const module = {
      onBlock() {
        throw new Fault('rate-limited', 'slow', { retryAfterMs: 1.5 });
      },
    };
    assert.throws(() => new FakeHost().deliver(module, block), {
      name: 'Fault',
      kind: 'internal',
      message: 'Fault retryAfterMs: expected an integer from 0 to 2^64-1, got 1.5',
    });
  });

  test('a Fault changed after it was made is checked again on the way out', () => {
    const changed = (field, value) => Object.assign(new Fault('rate-limited', 'slow', { retryAfterMs: 5 }), { [field]: value });
    for (const [fault, why] of [
      ...BAD_WAITS.map((bad) => [changed('retryAfterMs', bad), /^Fault retryAfterMs: expected an integer/]),
      [changed('kind', 'bogus'), /^unknown fault kind 'bogus'/],
      [changed('message', { toString: () => { throw new Error('no'); } }), /^a Fault message must be a string/],
    ]) {
      let failure;
      assert.throws(() => new FakeHost().deliver(failing(fault), block), (error) => (failure = error) instanceof Fault);
      assert.equal(failure.kind, 'internal');
      assert.ok(failure.message.startsWith('a Fault that nexum cannot carry was thrown: '), failure.message);
      assert.match(failure.message.slice('a Fault that nexum cannot carry was thrown: '.length), why);
    }
    const printed = Object.assign(new Fault('unavailable', 'x'), { message: 42 });
    assert.throws(() => new FakeHost().deliver(failing(printed), block), { kind: 'unavailable', message: '42' });
  });

  test('an error whose parts cannot be printed still becomes an internal fault', () => {
    assert.throws(() => new FakeHost().deliver(failing(new RpcError(Symbol('code'), 'boom')), block), {
      kind: 'internal',
      message: 'rpc error Symbol(code): boom',
    });
    const unprintable = Object.assign(new Error('x'), { message: { toString: () => { throw new Error('no'); } } });
    assert.throws(() => new FakeHost().deliver(failing(unprintable), block), {
      kind: 'internal',
      message: 'a value that cannot be printed was thrown',
    });
  });

  test('the fake host refuses a fault value that would not reach nexum intact', () => {
    for (const [thrown, why] of [
      [{ tag: 'rate-limited', val: { retryAfterMs: 1.5 } }, /retry-after-ms 1.5 is not an integer \(the component traps\)/],
      [
        { tag: 'rate-limited', val: { retryAfterMs: -1n } },
        /retry-after-ms -1n is not a u64 \(nexum would receive 18446744073709551615\)/,
      ],
      [{ tag: 'rate-limited', val: { retryAfterMs: 1n << 64n } }, /is not a u64 \(nexum would receive 0\)/],
      [{ tag: 'internal', val: 42 }, /internal fault does not lower to WIT: it carries 42, not a string/],
      [new Error('boom'), /^the module trapped \(nexum would restart it\): it threw boom, not a fault$/],
    ]) {
      const failure = exportFailure(thrown);
      assert.ok(!(failure instanceof Fault), `${failure.message} should not be a Fault`);
      assert.match(failure.message, why);
    }
    const fault = exportFailure({ tag: 'rate-limited', val: { retryAfterMs: 7n } });
    assert.deepEqual([fault.kind, fault.retryAfterMs], ['rate-limited', 7]);
    const longest = Fault.fromVariant({ tag: 'rate-limited', val: { retryAfterMs: (1n << 64n) - 1n } });
    assert.equal(longest.retryAfterMs, (1n << 64n) - 1n); // exact, as a BigInt
  });
});

describe('module.toml [limits] is refused as nexum refuses it', () => {
  test('an unknown name, a value that is not a whole number above 0, a raised value', (t) => {
    for (const [line, message] of [
      ['fuel = 1', /`limits.fuel`: unknown field `fuel`, expected one of `fuel_per_event`, `memory_bytes`, /],
      ['store_key_bytes = 1.5', /`limits.store_key_bytes`: expected an integer, got 1.5$/],
      ['store_key_bytes = 512.0', /`limits.store_key_bytes`: expected an integer, got 512$/],
      ['store_key_bytes = "512"', /`limits.store_key_bytes`: expected an integer, got '512'$/],
      ['store_key_bytes = 0', /`limits.store_key_bytes`: must be greater than 0$/],
      ['store_key_bytes = -1', /`limits.store_key_bytes`: must be greater than 0$/],
      ['store_key_bytes = 1025', /`limits.store_key_bytes`: asks for 1025 but the engine allows at most 1024$/],
      ['memory_bytes = 67108865', /`limits.memory_bytes`: asks for 67108865 but the engine allows at most 67108864$/],
    ]) {
      assert.throws(hostWith(line, t), { message }, line);
    }
  });

  test('a lowered limit applies, including to limits the fake host does not enforce', (t) => {
    const host = hostWith('store_key_bytes = 4\nfuel_per_event = 1000\nrpc_batch_max = 100', t)();
    let caught;
    host.deliver(
      {
        onBlock() {
          try {
            store.set('12345', new Uint8Array(1));
          } catch (error) {
            caught = error;
          }
        },
      },
      FakeHost.block({ number: 1 }),
    );
    assert.deepEqual([caught.kind, caught.message], ['invalid-input', 'key is 5 bytes; the limit is 4']);
  });

  test('log lines are cut and escaped as nexum writes them, and dropped over the line budget', (t) => {
    const host = hostWith('log_line_bytes = 16\nlog_lines_per_second = 3', t)();
    const flood = {
      onBlock() {
        log.info('a\nforged\u001b[31m line');
        log.warn('é'.repeat(10));
        log.info('short\tline');
        for (let i = 0; i < 50; i++) log.info(`line ${i}`);
      },
    };
    host.deliver(flood, FakeHost.block({ number: 1 }));
    assert.deepEqual(host.logs.slice(0, 3), [
      ['info', 'a\\nforged\\u{1b}[… [cut: 18 bytes in all]'],
      ['warn', `${'é'.repeat(8)}… [cut: 20 bytes in all]`],
      ['info', 'short\tline'],
    ]);
    // Three lines a second, a second's worth at once: the rest of the flood is dropped
    // (a line more for each third of a second the test is held up).
    assert.ok(host.logs.length < 10, `${host.logs.length} lines kept`);
    assert.equal(host.logs.length + host.logsDropped, 53);
  });

  test('log lines over the byte budget are dropped', (t) => {
    const host = hostWith('log_bytes_per_second = 1000', t)();
    host.deliver(
      {
        onBlock() {
          for (let i = 0; i < 3; i++) log.info('x'.repeat(1000));
        },
      },
      FakeHost.block({ number: 1 }),
    );
    assert.equal(host.logs.length, 1, 'a second of bytes is 1000: one line of 1000 bytes');
    assert.equal(host.logsDropped, 2);
  });
});
