// End-to-end: an ASTM analyzer read by a real `attache run`: refusals, host queries, bad input.
import { frameAstmRecords } from '@attache/astm';
import { cbcMessage } from '@attache/devkit';
import t from 'tap';
import { astmRig, RawInstrument, uploaded } from './helpers/astm-rig.js';

t.test(
  'a full cache answers ENQ busy: the analyzer never transmits and sends after the window',
  async (t) => {
    const rig = await astmRig(t, { cache: { maxRecords: 1, whenFull: 'refuse' } });
    const s = await rig.sender();
    t.equal((await s.send(cbcMessage({ count: 20 }))).status, 'sent');
    await rig.stack.statusUntil((st) => st.backlog.records === 1);
    const busy = await s.send(cbcMessage({ count: 21 }));
    t.same(
      busy,
      { status: 'refused', frames: 0, naks: 7, retries: 6 },
      'every ENQ NAKed: not one frame sent',
    );
    await rig.gateway.waitForLog((l) => String(l.msg).startsWith('ASTM ENQ answered busy'));
    await uploaded(rig);
    t.equal((await s.send(cbcMessage({ count: 21 }))).status, 'sent', 'after the window it is accepted');
    await rig.stack.statusUntil((st) => st.backlog.records === 1 && st.adapters[0]?.stored === 2);
    await rig.gateway.waitForLog((l) => l.msg === 'ASTM transfers accepted again');
  },
);

t.test(
  'a message the cache cannot take is NAKed at its final frame, then ENQs are answered busy',
  async (t) => {
    const rig = await astmRig(t, { cache: { maxRecords: 2, whenFull: 'refuse' } });
    const s = await rig.sender();
    t.equal((await s.send(cbcMessage({ count: 20 }))).status, 'sent');
    // Two orders, two records, stored all or none: only one fits (2 of 2), so the message is refused.
    const twoOrders = [
      'H|\\^&|||XN-550^00-24^22723|||||||P|E1394-97|20240627140000',
      'P|1||SIM-000124',
      'O|1|SMP0002||^^^CBC|R',
      'R|1|^^^WBC|7.20|10*3/uL|4.0-10.0|N||F',
      'O|2|SMP0003||^^^CBC|R',
      'R|1|^^^HGB|14.1|g/dL|12.0-17.0|N||F',
      'L|1|N',
    ];
    const refused = await s.send(twoOrders);
    t.equal(refused.status, 'refused', 'the final frame is NAKed until the analyzer gives up');
    t.ok(refused.frames > 0 && refused.naks === 7, 'after its other frames were ACKed');
    await rig.stack.statusUntil((st) => (st.adapters[0]?.refused ?? 0) >= 7);
    const again = await s.send(twoOrders);
    t.same([again.status, again.frames], ['refused', 0], 'then its ENQ is answered busy');
    const first = await uploaded(rig);
    t.equal((await s.send(twoOrders)).status, 'sent', 'after the window the re-send is stored');
    await rig.stack.statusUntil((st) => st.backlog.records === 2);
    const second = await uploaded(rig);
    t.equal(first.length, 1, 'none of the refused message was stored');
    const orders = second.map((r) => (r.observations as { code: string }[])[0]?.code);
    t.same(orders, ['WBC', 'HGB'], 'each order of the message once, together');
  },
);

t.test('a host query is recorded as an event and answered "no information" after EOT', async (t) => {
  const rig = await astmRig(t);
  const raw = await RawInstrument.open(t, rig.pty.devicePath);
  const query = [
    'H|\\^&|||XN-550^00-24^22723|||||||P|E1394-97|20240627135000',
    'Q|1|^^SMP0001||^^^ALL||||||||O',
    'L|1|N',
  ];
  await raw.write([0x05]);
  let seen = 0;
  t.equal(await raw.nextByte(seen++), 0x06);
  for (const frame of frameAstmRecords(query)) {
    await raw.write(frame);
    t.equal(await raw.nextByte(seen++), 0x06);
  }
  await raw.write([0x04]);
  const reply = await raw.receiveTransfer();
  t.match(reply[0], /^H\|\\\^&\|\|\|Attache\|/, 'the reply starts with an H record');
  t.equal(reply[1], 'L|1|I', 'termination code I: no information');
  const records = await uploaded(rig);
  t.match(records[0], {
    event: { type: 'astm.query', detail: { tests: 'ALL', statusCode: 'O' } },
    observations: [],
  });
  t.notMatch(JSON.stringify(records), /SMP0001/, 'the specimen id is tokenized');
});

t.test(
  'bad input: random bytes, truncated and oversize frames, wrong FN, no EOT: counted, no crash',
  async (t) => {
    const rig = await astmRig(t);
    const raw = await RawInstrument.open(t, rig.pty.devicePath);
    let random = 7;
    const noise = Buffer.from(
      Array.from({ length: 20_000 }, () => (random = (random * 1103515245 + 12345) & 0xff)),
    );
    await raw.write(noise);
    await raw.write([0x05]);
    const good = frameAstmRecords(['H|\\^&|||X', 'R|1|^^^A|1', 'L|1|N']);
    await raw.write(frameAstmRecords(['H|\\^&|||X'], 5)[0] as Buffer);
    await raw.write(Buffer.from('\x021H|\\^&|trunc', 'latin1'));
    await raw.write(
      Buffer.concat([
        Buffer.from('\x021', 'latin1'),
        Buffer.alloc(5000, 0x41),
        Buffer.from('\x0300\r\n', 'latin1'),
      ]),
    );
    // Frame 1 valid, then silence without EOT: the receiver timer (2 s here) abandons the transfer.
    await raw.write(good[0] as Buffer);
    const status = await rig.stack.statusUntil((s) => (s.adapters[0]?.malformed ?? 0) >= 3);
    await rig.gateway.waitForLog((l) => String(l.msg).startsWith('ASTM transfer timed out'));
    t.equal(status.backlog.records, 0, 'nothing stored from garbage');
    t.equal(rig.gateway.child.exitCode, null, 'the gateway still runs');
    const text = JSON.stringify(rig.gateway.logs);
    t.match(text, /unexpected frame number/);
    t.match(text, /frame text too long/);
    await raw.close();
    const s = await rig.sender();
    t.equal((await s.send(cbcMessage({ count: 20 }))).status, 'sent', 'a good message afterwards is read');
    await rig.stack.statusUntil((st) => st.backlog.records === 1);
  },
);
