import { scoreTraffic } from '@attache/adapter-rs232';
import { AstmReceiver, frameAstmRecords } from '@attache/astm';
import t from 'tap';

t.test('receiver: a message over maxMessageText is NAKed until EOT, then the link works again', async (t) => {
  const receiver = new AstmReceiver({ now: () => 0, maxFrameText: 240, maxMessageText: 300 });
  receiver.feed(Buffer.from([0x05]));
  const frames = frameAstmRecords(['H|\\^&', `C|1|I|${'x'.repeat(400)}`, 'L|1|N']);
  const answers = frames.map((f) => receiver.feed(f).find((a) => a.type === 'send'));
  t.same(
    answers.map((a) => (a?.type === 'send' ? a.bytes[0] : 0)),
    [0x06, 0x06, 0x15, 0x15],
    'NAK from the frame that overflows',
  );
  t.same(
    receiver.feed(Buffer.from([0x04])).filter((a) => a.type === 'message'),
    [],
    'nothing reported',
  );
  receiver.feed(Buffer.from([0x05]));
  const ok = frameAstmRecords(['H|\\^&', 'L|1|N']).flatMap((f) => receiver.feed(f));
  t.ok(
    ok.some((a) => a.type === 'message'),
    'the next transfer is read',
  );
  t.throws(() => new AstmReceiver({ maxMessageText: 10 }), TypeError);
});

t.test('traffic score: ASTM, KEY=VALUE, plain lines, noise', async (t) => {
  const astm = Buffer.concat([Buffer.from([5]), ...frameAstmRecords(['H|\\^&', 'L|1|N'])]);
  t.equal(scoreTraffic(astm).protocol, 'astm');
  t.equal(scoreTraffic(Buffer.from('x\r\nSPO2=97 HR=72\r\nSPO2=96 HR=71\r\n')).protocol, 'kv-line');
  t.equal(scoreTraffic(Buffer.from('x\r\n97 72 ok\r\n96 71 ok\r\n95 70 ok\r\n')).protocol, 'text-line');
  t.match(scoreTraffic(Buffer.from([0x85, 0xf3, 0x9a, 0x0d, 0x0a, 0xc1])), { protocol: 'none', score: 0 });
  t.equal(scoreTraffic(Buffer.alloc(0)).protocol, 'none');
});
