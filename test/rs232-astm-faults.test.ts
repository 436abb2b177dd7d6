// End-to-end: an ASTM analyzer read by a real `attache run`: refusals, host queries, bad input.
import { frameAstmRecords } from '@attache/astm';
import { cbcMessage } from '@attache/devkit';
import t from 'tap';
import { astmRig, RawInstrument, uploaded } from './helpers/astm-rig.js';

t.test('a full cache NAKs the final frame: the analyzer keeps its data and re-sends it later', async (t) => {
  const rig = await astmRig(t, { cache: { maxRecords: 1, whenFull: 'refuse' } });
  const s = await rig.sender();
  t.equal((await s.send(cbcMessage({ count: 20 }))).status, 'sent');
  const refused = await s.send(cbcMessage({ count: 21 }));
  t.equal(refused.status, 'refused', 'the final frame is NAKed until the analyzer gives up');
  t.equal(refused.naks, 7);
  const status = await rig.stack.statusUntil((st) => (st.adapters[0]?.refused ?? 0) >= 7);
  t.equal(status.backlog.records, 1);
  await uploaded(rig);
  t.equal((await s.send(cbcMessage({ count: 21 }))).status, 'sent', 'after the window the re-send is stored');
  await rig.stack.statusUntil((st) => st.backlog.records === 1 && st.adapters[0]?.stored === 2);
});

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
