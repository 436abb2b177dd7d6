import type { EventEmitter } from 'node:events';
import type {
  AdapterEventMap,
  AdapterStatus,
  DeviceAdapter,
  DeviceReading,
  ReadingSink,
} from '@attache/core';
import { GatewayError } from '@attache/core';
import type { Test } from 'tap';

/** What an adapter under test can do beyond the base contract. */
export interface AdapterSupports {
  /** The device sends when the rig says so (`send()`); false: the adapter polls on its own schedule. */
  push: boolean;
  /** The rig can break and restore the link (`breakLink`, `restoreLink`); the adapter reconnects. */
  reconnect: boolean;
}

/** An adapter with its typed events. */
export type ContractAdapter = DeviceAdapter & Pick<EventEmitter<AdapterEventMap>, 'on' | 'off'>;

/** One adapter on a real (or in-process) device, set up by the adapter's own test. */
export interface AdapterRig {
  adapter: ContractAdapter;
  /** The device sends one protocol unit holding one reading (push adapters); resolves once it is sent. */
  send(): Promise<void>;
  /** The link goes away (the pty closes, the peer stops listening). */
  breakLink?(): Promise<void>;
  /** The link is back at the same place. */
  restoreLink?(): Promise<void>;
}

/** Builds a rig whose adapter delivers to `sink`; the rig cleans up through `t.teardown`. */
export type RigFactory = (t: Test, sink: ReadingSink) => Promise<AdapterRig>;

/** Options of {@link adapterContractSuite}. */
export interface AdapterContractOptions {
  supports: AdapterSupports;
  rig: RigFactory;
  /** Longest wait for a condition, ms. Default 15 000. */
  timeoutMs?: number;
}

type SinkMode = 'store' | 'malformed' | 'fail' | 'hold';

/** A sink whose behaviour the tests switch: store, reject (malformed or without a code), or hold. */
function controlledSink() {
  const readings: DeviceReading[] = [];
  let mode: SinkMode = 'store';
  let releases: (() => void)[] = [];
  let held = 0;
  const sink: ReadingSink = async (reading) => {
    if (mode === 'malformed') throw new GatewayError('ATTACHE_MALFORMED', 'refused by the test');
    if (mode === 'fail') throw new Error('a failure without a code');
    if (mode === 'hold') {
      held++;
      await new Promise<void>((resolve) => {
        releases.push(resolve);
      });
    }
    readings.push(reading);
  };
  return {
    sink,
    readings,
    held: () => held,
    set: (next: SinkMode) => {
      mode = next;
    },
    release: () => {
      for (const release of releases) release();
      releases = [];
    },
  };
}

/**
 * The adapter contract as tests, run by every adapter's own test file against a real device (and by
 * this package against `MockAdapter`): start/stop and their idempotence, the `state` event, one
 * meaning per counter, documented error codes only, `stop()` awaiting the sink, reconnect.
 */
export function adapterContractSuite(t: Test, options: AdapterContractOptions): void {
  const { supports, timeoutMs = 15_000 } = options;
  const until = async (what: string, done: () => boolean) => {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };
  const setup = async (t: Test) => {
    const control = controlledSink();
    const rig = await options.rig(t, control.sink);
    const states: AdapterStatus[] = [];
    rig.adapter.on('state', (status) => states.push(status));
    t.teardown(() => rig.adapter.stop());
    return { ...control, rig, adapter: rig.adapter, states };
  };
  /** One reading in: sent by the device, or the next poll. */
  const oneReading = async (s: Awaited<ReturnType<typeof setup>>, before: number) => {
    if (supports.push) await s.rig.send();
    await until('a reading', () => s.readings.length > before);
  };

  t.test(
    'start(): connected, announced by a state event with a status snapshot; twice is a no-op',
    async (t) => {
      const s = await setup(t);
      await s.adapter.start();
      await s.adapter.start();
      await until('connected', () => s.adapter.status().state === 'connected');
      const event = s.states.at(-1);
      t.match(event, { deviceId: s.adapter.deviceId, state: 'connected' }, 'the event carries the status');
      t.ok(
        s.states.some((e) => e.state === 'starting'),
        'starting, then connected',
      );
      const status = s.adapter.status();
      t.equal(status.deviceId, s.adapter.deviceId);
      t.equal(new Date(status.since).toISOString(), status.since, 'since is RFC 3339');
      for (const counter of ['frames', 'stored', 'malformed', 'refused'] as const) {
        t.equal(typeof status[counter], 'number', `${counter} is a counter`);
      }
    },
  );

  t.test('a reading reaches the sink; frames counts protocol units, stored readings', async (t) => {
    const s = await setup(t);
    await s.adapter.start();
    await until('connected', () => s.adapter.status().state === 'connected');
    await oneReading(s, 0);
    await until('counted', () => s.adapter.status().stored >= 1);
    const status = s.adapter.status();
    t.equal(s.readings[0]?.deviceId, s.adapter.deviceId);
    t.equal(s.readings[0]?.adapter, status.adapter);
    if (supports.push)
      t.match(status, { frames: 1, stored: 1, malformed: 0, refused: 0 }, 'one unit, one reading');
    else t.ok(status.frames >= status.stored && status.stored >= 1, 'every stored reading came in a frame');
  });

  t.test('sink errors are counted by their code; an error without one is ATTACHE_INTERNAL', async (t) => {
    const s = await setup(t);
    // Set before start: a polled adapter's first poll must not be stored either.
    s.set('malformed');
    await s.adapter.start();
    await until('connected', () => s.adapter.status().state === 'connected');
    if (supports.push) await s.rig.send();
    await until('malformed counted', () => s.adapter.status().malformed >= 1);
    t.match(s.adapter.status().lastError, { code: 'ATTACHE_MALFORMED' });
    s.set('fail');
    if (supports.push) await s.rig.send();
    await until('refused counted', () => s.adapter.status().refused >= 1);
    t.match(s.adapter.status().lastError, { code: 'ATTACHE_INTERNAL' }, 'never a bare ERROR');
    t.equal(s.readings.length, 0, 'nothing stored');
  });

  t.test('stop() awaits the sink call in flight, then stopped; twice is a no-op', async (t) => {
    const s = await setup(t);
    s.set('hold');
    await s.adapter.start();
    await until('connected', () => s.adapter.status().state === 'connected');
    if (supports.push) await s.rig.send();
    await until('the sink was called', () => s.held() >= 1);
    let stopped = false;
    const stopping = s.adapter.stop().then(() => {
      stopped = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    t.notOk(stopped, 'stop() waits for the sink');
    s.set('store');
    s.release();
    await stopping;
    t.equal(s.readings.length, s.held(), 'no reading in flight was dropped');
    t.equal(s.adapter.status().state, 'stopped');
    t.equal(s.states.at(-1)?.state, 'stopped', 'announced');
    await s.adapter.stop();
  });

  t.test(
    'a lost link: disconnected with ATTACHE_PORT_NOT_OPEN, then connected again',
    { skip: !supports.reconnect },
    async (t) => {
      const s = await setup(t);
      await s.adapter.start();
      await until('connected', () => s.adapter.status().state === 'connected');
      await s.rig.breakLink?.();
      await until('disconnected', () => s.adapter.status().state === 'disconnected');
      t.match(s.adapter.status().lastError, { code: 'ATTACHE_PORT_NOT_OPEN' });
      t.ok(
        s.states.some((e) => e.state === 'disconnected'),
        'a state event, not only a status change',
      );
      await s.rig.restoreLink?.();
      await until('connected again', () => s.adapter.status().state === 'connected');
      await oneReading(s, 0);
      t.equal(s.states.at(-1)?.state, 'connected');
    },
  );
}
