import { join } from 'node:path';
import { createTestPki } from '@attache/devkit';
import { IotCoreUplink } from '@attache/uplink';
import t from 'tap';
import {
  exitWhenComplete,
  gatewayId,
  MemoryOutbox,
  startBroker,
  uplinkConfig,
} from './fixtures/uplink-fixtures.js';

exitWhenComplete(t);

t.test(
  'a client certificate from another CA is refused: ATTACHE_UPLINK_CONNECT, nothing removed',
  async (t) => {
    const fixture = await startBroker();
    t.teardown(fixture.cleanup);
    const rogue = await createTestPki(join(fixture.dir, 'rogue'), { thingName: gatewayId });
    const outbox = new MemoryOutbox();
    outbox.add(10);
    // The SDK reports TLS failures only after a random 10-30 s delay (s2n blinding).
    const config = uplinkConfig(fixture, {
      certFile: rogue.clientCertFile,
      keyFile: rogue.clientKeyFile,
      connectTimeoutMs: 40_000,
    });
    const uplink = new IotCoreUplink({ gatewayId, config });

    const result = await uplink.openWindow(outbox);

    t.equal(result.outcome, 'failed');
    t.equal(result.error?.code, 'ATTACHE_UPLINK_CONNECT');
    t.match(result, { records: 0, messages: 0, bytes: 0, firstSeq: null, lastSeq: null });
    t.same(
      outbox.seqs(),
      Array.from({ length: 10 }, (_, i) => i + 1),
      'every record kept',
    );
  },
);
