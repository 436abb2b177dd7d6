import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { rmSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { type AddressInfo, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  bundleFile,
  cacheFileOf,
  loadBundle,
  type Profile,
  profiles,
  readCache,
  thisRelease,
  writeCodeCache,
} from './compiled-start.js';

// `attache --write-code-cache` (compiled-start.ts): imported only by that command, so that no other
// command loads child_process and the rest for it.

/**
 * `attache --write-code-cache`: makes the code cache of each profile for this Node where it has none
 * that it may use, each by running its command from the bundle in a process of its own (`attache
 * --write-code-cache <profile> <args>`, which writes the cache when it exits) on a config in a
 * temporary directory (a listener, a data directory of its own). Only the bundle's owner may: a cache
 * anyone else wrote is never used. Resolves the caches written and their sizes; rejects when one
 * was not written.
 */
export async function writeCodeCaches(): Promise<{ file: string; bytes: number }[]> {
  const [node, bin, , profile, ...args] = process.argv as [string, string, ...string[]];
  if (thisRelease.digests === undefined)
    throw new Error('no bundle beside this file: only a release has a code cache');
  const owner = statSync(bundleFile(thisRelease, 'other')).uid;
  if (process.getuid?.() !== owner)
    throw new Error(
      `only the owner of ${bundleFile(thisRelease, 'other')} (uid ${owner}) may write its code cache`,
    );
  if (profile !== undefined) {
    process.argv = [node, bin, ...args];
    const { cli, script } = loadBundle(thisRelease, profile as Profile);
    process.once('exit', () => writeCodeCache(thisRelease, profile as Profile, script));
    await cli.main();
    return [];
  }
  const stale = (Object.keys(profiles) as Profile[]).filter(
    (p) => typeof readCache(thisRelease, p) === 'string',
  );
  if (stale.length === 0) return [];
  const dir = await mkdtemp(join(tmpdir(), 'attache-code-cache-'));
  try {
    const config = join(dir, 'config.json');
    await writeFile(
      config,
      JSON.stringify({
        version: 1,
        gateway: { id: 'code-cache', dataDir: join(dir, 'data') },
        devices: [
          {
            id: 'monitor',
            adapter: 'ethernet',
            endpoint: { mode: 'listen', host: '127.0.0.1', port: 2575, allow: ['127.0.0.1'] },
            format: { kind: 'hl7-mllp' },
          },
        ],
      }),
    );
    const modbus = await registerServer();
    const port = String((modbus.address() as AddressInfo).port);
    const written = [];
    const rejected: string[] = [];
    try {
      // A module of its own (an ES module of the release): the cache's code stays out of bin.js.
      await (await import('./code-cache-seed.js')).storeOneRecord(join(dir, 'data'));
      // A control socket where nothing listens: `status` asks it (refused), then reads the cache,
      // so that its code cache holds both (a command asks only where a socket file is).
      await writeFile(join(dir, 'data', 'attache.sock'), '');
      for (const profile of stale) {
        const file = cacheFileOf(profile);
        rmSync(file, { force: true });
        const command = profiles[profile].map((a) => a.replace('{config}', config).replace('{port}', port));
        const child = spawn(node, [...process.execArgv, bin, '--write-code-cache', profile, ...command], {
          cwd: dir,
          stdio: 'ignore',
        });
        await once(child, 'exit');
        written.push({ file, bytes: statSync(file).size });
        const start = await startOf(node, bin, command, dir);
        if (!start.includes('code cache accepted')) {
          rmSync(file, { force: true });
          rejected.push(`${file}: ${start.trim() || 'no start line'}`);
        }
      }
    } finally {
      modbus.close();
    }
    if (rejected.length > 0)
      throw new Error(
        `this Node did not take the code cache it had just made, removed: ${rejected.join('; ')}`,
      );
    return written;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * How the command `args` starts now (its `NODE_DEBUG=attache-start` line): each cache is checked by
 * running its command once more, so that a cache V8 would reject at every start (made after the
 * command changed V8's flags, say) is removed and said, rather than left to be rejected in silence.
 */
async function startOf(node: string, bin: string, args: readonly string[], cwd: string): Promise<string> {
  const child = spawn(node, [...process.execArgv, bin, ...args], {
    cwd,
    env: { ...process.env, NODE_DEBUG: 'attache-start' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  await once(child, 'close');
  return /^ATTACHE-START \d+: (.*)$/m.exec(stderr)?.[1] ?? '';
}

/**
 * A Modbus TCP server on a free loopback port for the `modbus` profile's read (so that its cache holds
 * the code of a read that is answered): holding and input registers read as zeros, any other function
 * answered with exception 1 (illegal function).
 */
export async function registerServer(): Promise<Server> {
  const server = createServer((socket) => {
    let pending = Buffer.alloc(0);
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk) => {
      pending = Buffer.concat([pending, chunk]);
      // MBAP header: transaction (2), protocol (2), length of unit id + PDU (2), unit id (1).
      while (pending.length >= 7 && pending.length >= 6 + pending.readUInt16BE(4)) {
        const frame = pending.subarray(0, 6 + pending.readUInt16BE(4));
        pending = pending.subarray(frame.length);
        const fn = frame[7] ?? 0;
        const count = frame.length >= 12 ? frame.readUInt16BE(10) : 0;
        const pdu =
          (fn === 3 || fn === 4) && count >= 1 && count <= 125
            ? Buffer.concat([Buffer.from([fn, count * 2]), Buffer.alloc(count * 2)])
            : Buffer.from([fn | 0x80, 1]);
        const header = Buffer.alloc(7);
        frame.copy(header, 0, 0, 4);
        header.writeUInt16BE(pdu.length + 1, 4);
        header[6] = frame[6] ?? 0;
        socket.write(Buffer.concat([header, pdu]));
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server;
}
