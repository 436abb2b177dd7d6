// The window process's IPC: one interface, a generic request/response proxy, and an allow-list the
// server checks before it calls anything.
import { GatewayError } from '@attache/core';
import t from 'tap';
import { type AllowList, type CallMessage, RequestProxy, replyTo, serveCall } from '../src/ipc-proxy.js';
import { windowParentMethods } from '../src/window-protocol.js';

interface Counter {
  add(n: number): Promise<number>;
  fail(): Promise<void>;
}
const allowed: AllowList<Counter> = { add: true, fail: true };

class CounterServer implements Counter {
  #total = 0;
  closed = false;
  add(n: number): Promise<number> {
    this.#total += n;
    return Promise.resolve(this.#total);
  }
  fail(): Promise<void> {
    return Promise.reject(new GatewayError('ATTACHE_CACHE_CLOSED', 'the cache is closed'));
  }
  close(): void {
    this.closed = true;
  }
}

/** A proxy whose calls reach `server` as messages, and its replies come back as messages. */
function linked(server: CounterServer): RequestProxy<Counter> {
  const proxy: RequestProxy<Counter> = new RequestProxy<Counter>(allowed, (call) => {
    const copy = JSON.parse(JSON.stringify(call)) as CallMessage;
    void replyTo(copy.id, serveCall(allowed, copy, server)).then((reply) => proxy.settle(reply));
  });
  return proxy;
}

t.test('a call through the proxy reaches the server and its answer comes back', async (t) => {
  const server = new CounterServer();
  const { api } = linked(server);
  t.same(Object.keys(api).sort(), ['add', 'fail'], 'one method per allowed name, own properties');
  t.same(await Promise.all([api.add(2), api.add(3)]), [2, 5], 'each reply settles its own call');
  await t.rejects(api.fail(), { code: 'ATTACHE_CACHE_CLOSED', message: 'the cache is closed' });
  t.equal((api as unknown as { then?: unknown }).then, undefined, 'the api is not a thenable');
});

t.test('the server refuses a method not on the allow-list, and calls nothing', async (t) => {
  const server = new CounterServer();
  for (const method of ['close', 'constructor', '__proto__', 'toString', 'hasOwnProperty']) {
    const reply = await replyTo(7, serveCall(allowed, { method, args: [] }, server));
    t.match(
      reply,
      { type: 'reply', id: 7, error: { code: 'ATTACHE_INTERNAL', message: /is not a method served here/ } },
      `"${method}" refused`,
    );
  }
  t.equal(server.closed, false, 'close() was never called');
  await t.rejects(serveCall(allowed, { method: 5 as unknown as string, args: [] }, server), TypeError);
  await t.rejects(
    serveCall(allowed, { method: 'add', args: 'x' as unknown as unknown[] }, server),
    TypeError,
    'arguments that are not an array',
  );
  await t.rejects(serveCall(allowed, { method: 'add', args: [1] }, {}), {
    message: '"add" has no implementation here',
  });
});

t.test('a reply for no pending call is ignored; an error without a code is ATTACHE_INTERNAL', async (t) => {
  const sent: CallMessage[] = [];
  const proxy = new RequestProxy<Counter>(allowed, (call) => sent.push(call));
  const answer = proxy.api.add(1);
  proxy.settle({ type: 'reply', id: 99, value: 1 });
  proxy.settle({ type: 'reply', id: sent[0]?.id ?? 0, value: 4 });
  proxy.settle({ type: 'reply', id: sent[0]?.id ?? 0, value: 5 });
  t.equal(await answer, 4, 'the first reply settles, the others are ignored');
  t.match(await replyTo(1, Promise.reject(new Error('disk gone'))), {
    error: { code: 'ATTACHE_INTERNAL', message: 'disk gone' },
  });
  t.match(await replyTo(2, Promise.reject('odd')), { error: { code: 'ATTACHE_INTERNAL', message: 'odd' } });
});

t.test('the window process may call the outbox and host methods, and nothing else', async (t) => {
  t.same(Object.keys(windowParentMethods).sort(), [
    'applyDesired',
    'health',
    'pendingEvents',
    'read',
    'readPage',
    'reload',
    'remove',
    'removeEvents',
    'reportState',
    'restartAfterWindow',
  ]);
});
