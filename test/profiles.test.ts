import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rs232Adapter } from '@attache/adapter-rs232';
import { checkRecord, type RecordDraft, validateConfig } from '@attache/core';
import { type DeviceProfile, LineDeviceSimulator, openPtyPair, profileFormat } from '@attache/devkit';
import { LineDriver } from '@attache/line-formats';
import { ReadingNormalizer, SystemClock } from '@attache/normalizer';
import t from 'tap';

const tokens = { token: async () => 'pt_aaaaaaaaaaaaaaaaaaaaaaaaaa' };

for (const profile of ['nonin', 'masimo'] as DeviceProfile[]) {
  t.test(`${profile}: every simulated line is read with the profile's config`, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'attache-profile-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const pty = await openPtyPair(join(dir, 'pty'));
    t.teardown(() => pty.close());
    const config = validateConfig({
      version: 1,
      gateway: { id: 'gw-profiles' },
      devices: [
        {
          id: `${profile}-1`,
          adapter: 'rs232',
          port: { path: pty.gatewayPath },
          format: profileFormat(profile),
        },
      ],
    });
    const normalizer = new ReadingNormalizer({
      gatewayId: 'gw-profiles',
      devices: config.devices,
      tokenizer: tokens,
      clock: new SystemClock({ syncFile: join(dir, 'synced') }),
    });
    const drafts: RecordDraft[] = [];
    const device0 = config.devices[0];
    if (device0?.adapter !== 'rs232' || device0.format.kind !== 'kv-line')
      throw new Error('not a kv-line device');
    const adapter = new Rs232Adapter({
      device: device0,
      driver: new LineDriver({
        format: device0.format,
        adapter: 'rs232',
        delimiter: device0.port.delimiter,
        maxLineBytes: device0.port.maxLineBytes,
      }),
      sink: async (reading) => {
        drafts.push(await normalizer.normalize(reading));
      },
    });
    await adapter.start();
    t.teardown(() => adapter.stop());
    const device = new LineDeviceSimulator({ path: pty.devicePath, profile });
    await device.open();
    t.teardown(() => device.close());
    for (let i = 0; i < 30; i++) await device.sendReading();
    const deadline = Date.now() + 30_000;
    while (adapter.status().frames < 30 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));

    t.match(adapter.status(), { frames: 30, stored: 30, malformed: 0, refused: 0 }, 'no line is refused');
    for (const draft of drafts) t.same(checkRecord({ ...draft, seq: 1 }), [], 'a valid record');
    t.ok(
      drafts.every((d) => d.observations.some((o) => o.code === 'MDC_PULS_OXIM_SAT_O2' && o.unit === '%')),
      'SpO2 in % on every record',
    );
    if (profile === 'masimo') {
      t.ok(
        drafts.every((d) => /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$/.test(d.deviceTime ?? '')),
        "the device's own time is kept",
      );
      t.notMatch(JSON.stringify(drafts), /SN|0000070986/, 'the serial number (not allow-listed) is dropped');
      const spo2 = drafts.flatMap((d) => d.observations.filter((o) => o.code === 'MDC_PULS_OXIM_SAT_O2'));
      t.ok(
        spo2.some((o) => o.status === 'valid') && spo2.every((o) => o.status !== 'questionable'),
        'EXC 800 (SET mode) is informational: no value is marked questionable by it',
      );
    }
  });
}
