// Trusted time from the endpoint: before each window the gateway reads the `Date` header of an HTTPS
// answer from the endpoint (here a local HTTPS server with the broker's certificate, whose Date the
// test sets) and records `clock.corrected` when its own clock is off by more than maxOffsetMs.
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { Stack } from './helpers/stack.js';
import { schemaErrors } from './helpers/uplink-schemas.js';

type Json = Record<string, unknown>;
const parse = (m: Buffer) => JSON.parse(m.toString('utf8')) as Json;
const hour = 3_600_000;

t.test('clock.corrected from the endpoint HTTPS Date, bounded by its certificate', async (t) => {
  const stack = await Stack.start(t);
  // The time server's clock: the test's clock shifted by `shiftMs`.
  let shiftMs = 0;
  let requests = 0;
  const server = createServer(
    { cert: await readFile(stack.pki.serverCertFile), key: await readFile(stack.pki.serverKeyFile) },
    (_req, res) => {
      requests++;
      res.sendDate = false;
      res.setHeader('Date', new Date(Date.now() + shiftMs).toUTCString());
      res.writeHead(403).end('{"message":"Forbidden"}');
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  const { port } = server.address() as AddressInfo;
  await stack.writeConfig(
    stack.config({ uplink: { trustedTime: { url: `https://localhost:${port}/`, maxOffsetMs: 5000 } } }),
  );
  const gateway = stack.startGateway();
  await gateway.waitForLog((l) => l.msg === 'gateway started');
  const events = await stack.subscribe('events');
  const corrections = () => events.messages.map(parse).filter((e) => e.type === 'clock.corrected');
  // Every event the broker acknowledged in a window has reached the subscriber before the checks.
  let acknowledged = 0;
  const sync = async () => {
    const result = await stack.run('sync', '--json');
    const window = JSON.parse(result.stdout) as { outcome: string; events: number };
    t.equal(window.outcome, 'drained', 'the window drains');
    acknowledged += window.events;
    await events.waitFor(acknowledged, 30_000);
  };

  await sync();
  t.equal(requests, 1, 'the endpoint was asked for the time before the window');
  t.same(corrections(), [], 'a clock within maxOffsetMs records nothing');

  shiftMs = hour;
  const syncStarted = Date.now();
  await sync();
  // The Date header's second (±500 ms) and half its request's round trip, at most half the window.
  const uncertaintyMs = 500 + (Date.now() - syncStarted) / 2;
  const [event] = corrections();
  t.ok(event, 'a clock one hour behind is corrected, in the same window');
  t.same(schemaErrors('event', event), [], 'the event matches event.schema.json');
  const detail = event?.detail as Json;
  const bootId = (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
  t.match(detail, { bootId, source: 'broker-date' });
  t.ok(
    Math.abs((detail.offsetMs as number) - hour) <= uncertaintyMs + 1,
    `offset ≈ 1 h: ${detail.offsetMs} ms (± ${Math.round(uncertaintyMs)} ms)`,
  );
  t.equal(
    Date.parse(detail.trueTime as string) - Date.parse(detail.systemTime as string),
    detail.offsetMs,
    'trueTime − systemTime = offsetMs',
  );
  t.ok(typeof detail.monotonicMs === 'number' && detail.monotonicMs > 0, 'the monotonic time of this boot');

  await sync();
  t.equal(corrections().length, 1, 'the same offset again is not recorded twice');

  // Five years ahead is past the endpoint certificate's own validity (825 days): not plausible.
  shiftMs = 5 * 365 * 24 * hour;
  await sync();
  t.equal(corrections().length, 1, 'an implausible Date records nothing');
  const refused = gateway.logs.find((l) => l.msg === 'no trusted time from the endpoint') as
    | { err?: { message?: string } }
    | undefined;
  t.match(refused?.err?.message, /outside its own certificate's validity/, 'and says why in the log');
  t.equal(requests, 4, 'one time request per window');
});
