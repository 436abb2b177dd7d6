// End-to-end: an ASTM E1381/E1394 analyzer on a socat pty, read by a real `attache run`.
import { frameAstmRecords } from '@attache/astm';
import { cbcMessage } from '@attache/devkit';
import t from 'tap';
import { astmRig, RawInstrument, uploaded } from './helpers/astm-rig.js';

/** `records` as sent: the CBC's 25 R records under one order give one record with 25 observations. */
type Obs = {
  code: string;
  value: unknown;
  unit: string;
  status: string;
  abnormalFlags?: string[];
  comments?: string[];
};

t.test(
  'a CBC with 25 results arrives once, with values, UCUM units, flags; corrupted frame NAKed then accepted',
  async (t) => {
    // rawFrames on: the record keeps the message's H record, never its P record.
    const rig = await astmRig(t, { device: { rawFrames: true } });
    const sender = await rig.sender({ corruptFrame: 5 });
    const result = await sender.send(cbcMessage({ count: 25 }));
    t.same(result, { status: 'sent', frames: 29, naks: 1, retries: 1 }, 'frame 5 NAKed once, then ACKed');
    const status = await rig.stack.statusUntil((s) => s.backlog.records === 1);
    t.equal(status.adapters[0]?.malformed, 1, 'the corrupted frame is counted');
    t.equal(status.adapters[0]?.stored, 1);
    const logText = JSON.stringify(rig.gateway.logs);
    t.match(logText, /checksum mismatch/, 'the NAK reason is logged');
    t.notMatch(logText, /SIM-000123|SMP0001/, 'no patient or specimen id in the log');

    const records = await uploaded(rig);
    t.equal(records.length, 1, 'one record for the one order');
    const record = records[0] as Record<string, unknown>;
    const obs = record.observations as Obs[];
    t.equal(obs.length, 25, 'every result once');
    t.same(new Set(obs.map((o) => o.code)).size, 25, 'no result twice');
    const wbc = obs.find((o) => o.code === 'WBC');
    t.same([wbc?.value, wbc?.unit, wbc?.status, wbc?.abnormalFlags], [7.2, '10*3/uL', 'valid', ['N']]);
    const hct = obs.find((o) => o.code === 'HCT');
    t.same([hct?.unit, hct?.abnormalFlags], ['%', ['H']], 'out-of-range results carry their flag');
    t.ok(
      obs.some((o) => o.abnormalFlags?.[0] === 'L'),
      'low flags too',
    );
    t.same(record.instrument, { name: 'XN-550', serial: '00-24', version: '22723' });
    t.equal(record.deviceTime, '2024-06-27T13:50:00');
    t.match(record.patient, { token: String }, 'the patient id is a token');
    t.match(record.specimen, { token: String });
    t.notMatch(JSON.stringify(records), /SIM-000123|SMP0001/, 'no patient or specimen id leaves the gateway');
    const raw = Buffer.from(String(record.raw), 'base64').toString('latin1');
    t.match(raw, /^H\|\\\^&\|\|\|XN-550/, 'raw is the H record');
    t.notMatch(raw, /SIM-000123|SMP0001|\rP\|/, 'and nothing after it');
  },
);

t.test(
  'ETB on every frame, LF-only trailers, custom delimiters, escapes and a record over 240 characters',
  async (t) => {
    const rig = await astmRig(t, { format: { comments: true } });
    let s = await rig.sender({ etbEveryFrame: true, lfOnly: true });
    t.equal(
      (await s.send(cbcMessage({ count: 21 }))).status,
      'sent',
      'c111-style ETB framing, LF-only trailers',
    );
    await s.close();
    s = await rig.sender({ frameTextLength: 40 });
    t.equal(
      (await s.send(cbcMessage({ count: 22, delimiters: '!@#$' }))).status,
      'sent',
      'delimiters !@#$, 40-char frames',
    );
    await s.close();
    s = await rig.sender();
    const long = `Smear reviewed &F& see ${'x'.repeat(300)}`;
    const escaped = [
      'H|\\^&|||SIM-CHEM^SN-7^1.2|||||||P|E1394-97|20240627140000',
      'P|1||PID-77',
      'O|1|SPEC-9||^^^WBC|R',
      'R|1|^^^WBC|7.20|10&S&3/uL|4.0-10.0|N||F||||20240627135900',
      `C|1|I|${long}|G`,
      'L|1|N',
    ];
    t.ok(escaped[4] && escaped[4].length > 240, 'the comment record spans two frames');
    t.equal((await s.send(escaped)).status, 'sent');
    await rig.stack.statusUntil((st) => st.backlog.records === 3);
    const records = await uploaded(rig);
    t.same(
      records.map((r) => (r.observations as Obs[]).length),
      [21, 22, 1],
      'every result of each message',
    );
    const custom = (records[1]?.observations as Obs[] | undefined)?.find((o) => o.code === 'WBC');
    t.same([custom?.value, custom?.unit], [7.2, '10*3/uL'], 'custom delimiters read from the H record');
    const wbc = (records[2]?.observations as Obs[] | undefined)?.[0];
    t.equal(wbc?.unit, '10*3/uL', '&S& decoded to ^, then mapped to UCUM');
    t.same(
      wbc?.comments,
      [`Smear reviewed | see ${'x'.repeat(300)}`],
      'the long comment joined, &F& decoded',
    );
  },
);

t.test(
  'gateway killed after storing but before the analyzer saw the ACK: the re-send is not stored twice',
  async (t) => {
    const rig = await astmRig(t);
    const records = cbcMessage({ count: 20 });
    // The analyzer side, raw: it sends the whole message but the final ACK "never reaches it".
    const raw = await RawInstrument.open(t, rig.pty.devicePath);
    await raw.write([0x05]);
    t.equal(await raw.nextByte(0), 0x06, 'ENQ ACKed');
    const frames = frameAstmRecords(records);
    for (const [i, frame] of frames.entries()) {
      await raw.write(frame);
      t.equal(await raw.nextByte(i + 1), 0x06, `frame ${i + 1} ACKed`);
    }
    await rig.stack.statusUntil((s) => s.backlog.records === 1);
    rig.gateway.child.kill('SIGKILL');
    await rig.gateway.exited;
    await raw.close();

    const second = rig.stack.startGateway();
    await second.waitForLog((l) => l.msg === 'gateway started');
    const sender = await rig.sender();
    t.equal((await sender.send(records)).status, 'sent', 'the analyzer re-sends and gets its ACK');
    // The ACK came only after the sink resolved: the backlog is final now.
    const status = await rig.stack.statusUntil(() => true);
    t.equal(status.backlog.records, 1, 'still one record: not doubled');
    const up = await uploaded(rig);
    t.equal((up[0]?.observations as Obs[] | undefined)?.length, 20, 'nothing lost');
  },
);
