// The example module's behaviour, run through FakeHost exactly as nexum would run it, and
// the host rules FakeHost enforces like nexum (so a test that passes here does not fail
// against the real host for a reason the fake let through).

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, test } from 'node:test';
import * as counter from '../src/module.js';
import { chain, event, Fault, RpcError, store } from '../src/nexum/index.js';
import { FakeHost } from '../src/nexum/testing.js';

const Ping = event('event Ping(address indexed sender, uint256 indexed seq, bytes payload)');
const Pong = event('event Pong(uint256 indexed seq, string note)');
const CONTRACT = '0x5fbdb2315678afecb367f032d93f642f64180aa3';
const SENDER = '0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266';
const COUNT_5 = `0x${'0'.repeat(63)}5`;

const ping = (seq, removed = false) =>
  Ping.encode({ sender: SENDER, seq, payload: '0x' }, { address: CONTRACT, blockNumber: 7, removed });
const pong = (seq, note) => Pong.encode({ seq, note }, { address: CONTRACT, blockNumber: 7 });
const messages = (host) => host.logs.map(([, message]) => message);

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
