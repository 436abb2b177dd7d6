// End-to-end: an ASTM analyzer's serial cable pulled in the middle of a message and plugged back in,
// under a real `attache run`.
import { frameAstmRecords } from '@attache/astm';
import { cbcMessage } from '@attache/devkit';
import t from 'tap';
import { astmRig, RawInstrument, uploaded } from './helpers/astm-rig.js';

type Obs = { code: string; value: unknown };

const ENQ = 0x05;
const ACK = 0x06;
const EOT = 0x04;

/** Plays the analyzer: ENQ, then `frames`, each awaiting its ACK. Returns the bytes seen so far. */
async function sendFrames(raw: RawInstrument, frames: Buffer[], seen: number): Promise<number> {
  await raw.write([ENQ]);
  if ((await raw.nextByte(seen)) !== ACK) throw new Error('ENQ not ACKed');
  for (const [i, frame] of frames.entries()) {
    await raw.write(frame);
    if ((await raw.nextByte(seen + 1 + i)) !== ACK) throw new Error(`frame ${i + 1} not ACKed`);
  }
  return seen + 1 + frames.length;
}

t.test(
  'cable pulled mid-message and plugged back: the adapter reconnects, the re-sent message is stored once',
  async (t) => {
    const rig = await astmRig(t);
    const first = cbcMessage({ count: 8 });
    // A second sample, measured ten minutes later.
    const second = cbcMessage({ count: 20 }).map((r) =>
      r.replace('SMP0001', 'SMP0002').replace('20240627135000', '20240627140000'),
    );
    const raw = await RawInstrument.open(t, rig.pty.devicePath);
    const seen = await sendFrames(raw, frameAstmRecords(first), 0);
    await raw.write([EOT]);
    await rig.stack.statusUntil((s) => s.backlog.records === 1);

    // H, P, O and seven of the twenty R records arrive and are ACKed; then the cable is pulled.
    const frames = frameAstmRecords(second);
    t.equal(frames.length, 24, 'H, P, O, 20 R and L: one frame each');
    await sendFrames(raw, frames.slice(0, 10), seen);
    await raw.close();
    await rig.pty.close();
    await rig.stack.statusUntil((s) => s.adapters[0]?.state === 'disconnected');
    // The partial message is dropped as the port closes (the analyzer re-sends it whole), and said so.
    const discarded = await rig.gateway.waitForLog((l) =>
      /cut off by the port closing; the partial message was discarded/.test(String(l.msg)),
    );
    t.equal(discarded.deviceId, 'hema-lab1', 'the log says which analyzer lost a partial transfer');
    const unplugged = await rig.stack.statusUntil(() => true);
    t.same(
      [unplugged.adapters[0]?.state, unplugged.adapters[0]?.stored, unplugged.backlog.records],
      ['disconnected', 1, 1],
      'still unplugged; only the first message is stored',
    );

    await rig.replug();
    await rig.stack.statusUntil((s) => s.adapters[0]?.state === 'connected');
    const sender = await rig.sender();
    t.same(
      await sender.send(second),
      { status: 'sent', frames: 24, naks: 0, retries: 0 },
      'the analyzer re-sends the whole second message, every frame ACKed at once',
    );
    // The final frame is ACKed only once stored: the backlog is final now.
    const status = await rig.stack.statusUntil(() => true);
    t.same(
      [
        status.adapters[0]?.state,
        status.adapters[0]?.stored,
        status.adapters[0]?.malformed,
        status.backlog.records,
      ],
      ['connected', 2, 0, 2],
      'one reading per message stored, nothing refused',
    );

    const records = await uploaded(rig);
    t.same(
      records.map((r) => [r.deviceTime, (r.observations as Obs[]).length]),
      [
        ['2024-06-27T13:50:00', 8],
        ['2024-06-27T14:00:00', 20],
      ],
      'each message once, every result of it',
    );
    for (const record of records) {
      const codes = (record.observations as Obs[]).map((o) => o.code);
      t.equal(new Set(codes).size, codes.length, `no result twice in ${record.deviceTime}`);
    }
    t.equal(rig.gateway.child.exitCode, null, 'the gateway never stopped');
    t.same(
      rig.gateway.logs.filter((l) => Number(l.level) >= 50),
      [],
      'no error logged',
    );
    t.notMatch(JSON.stringify(rig.gateway.logs), /SIM-000123|SMP000/, 'no patient or specimen id in the log');
  },
);
