import { access, mkdir, open } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FileStore, loadOrCreateKeyring, type StoredFile } from '@attache/cache';
import { type AttacheConfig, isGatewayError } from '@attache/core';
import { type CapturedFile, UpStore } from '@attache/files-up';
import { gatewayPaths } from '@attache/gateway';
import type { CommandModule } from 'yargs';
import { becomeDataDirOwner, type OwnerPart, runOwnerPart, servingOwnerParts } from '../privileges.js';
import { checkDelivered } from '../service-files.js';
import { type CommonArgs, fail, jsonOption, readConfig, withConfig } from './common.js';

interface ExportArgs extends CommonArgs {
  out: string;
}

/** A delivered file `files export` did not copy, and why. */
interface Refused {
  name: string;
  sha256: string;
  reason: string;
}

/** One exported file in `manifest.json`. */
interface ManifestEntry {
  name: string;
  /** The attached device it is meant for; absent: for the gateway. */
  deviceId?: string;
  sha256: string;
  size: number;
  addedAt: string;
  /** Where it is, relative to the export directory. */
  path: string;
}

const safeSegment = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/**
 * The files delivered to the gateway (jobs' file deliveries), in `<dataDir>/files`. The store is
 * read, never opened for writing: a running gateway may be storing a file at the same time.
 */
async function deliveredFiles(config: AttacheConfig): Promise<{ store: FileStore; files: StoredFile[] }> {
  const path = join(config.gateway.dataDir, 'files');
  const store = new FileStore({ path });
  const present = await access(join(path, 'objects')).then(
    () => true,
    () => false,
  );
  return { store, files: present ? await store.list() : [] };
}

/** `deviceId/name` as stored by a file delivery for a device; `name` for the gateway. */
function describe(file: StoredFile): { name: string; deviceId?: string } {
  const [first, second] = file.name.split('/');
  return second === undefined ? { name: file.name } : { name: second, deviceId: first };
}

/** Files captured on the box waiting for upload (`files` configured), oldest first; read only. */
async function waitingFiles(config: AttacheConfig): Promise<CapturedFile[]> {
  const path = join(config.gateway.dataDir, 'files-up');
  const present = await access(join(path, 'objects')).then(
    () => true,
    () => false,
  );
  if (!config.files || !present) return [];
  const keyring = await loadOrCreateKeyring(gatewayPaths(config).keyFile);
  return new UpStore({ path, keyring }).list();
}

async function list(args: CommonArgs): Promise<void> {
  const config = await readConfig(args.config);
  await becomeDataDirOwner(config.gateway.dataDir);
  const { files } = await deliveredFiles(config);
  const up = await waitingFiles(config);
  if (args.json) {
    console.log(
      JSON.stringify([
        ...files.map((f) => ({
          direction: 'down',
          ...describe(f),
          sha256: f.sha256,
          size: f.size,
          addedAt: f.addedAt,
        })),
        ...up.map((f) => ({ direction: 'up', ...f })),
      ]),
    );
    return;
  }
  if (config.files) {
    if (up.length === 0) console.log('no files waiting for upload');
    for (const f of up) {
      console.log(
        `up    ${f.capturedAt}  ${String(f.size).padStart(10)}  ${f.sha256.slice(0, 12)}  ${f.deviceId}  ${f.source}  ${f.name}`,
      );
    }
  }
  if (files.length === 0) console.log('no delivered files');
  for (const file of files) {
    const { name, deviceId } = describe(file);
    console.log(
      `${file.addedAt}  ${String(file.size).padStart(10)}  ${file.sha256.slice(0, 12)}  ${deviceId ?? 'gateway'}  ${name}`,
    );
  }
}

/** Writes `content` to `path` and fsyncs it (a USB stick may be pulled right after). */
async function writeSynced(path: string, content: Uint8Array): Promise<void> {
  const handle = await open(path, 'w', 0o644);
  try {
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** The export path of a file: newest first takes the plain name, older ones get their hash added. */
function exportPath(file: StoredFile, used: Set<string>): string {
  const { name, deviceId } = describe(file);
  const segments = [deviceId, name].filter((s): s is string => s !== undefined);
  const safe = segments.every((s) => safeSegment.test(s)) ? segments : [file.sha256];
  let path = safe.join('/');
  if (used.has(path)) path = `${path}.${file.sha256.slice(0, 12)}`;
  used.add(path);
  return path;
}

/** A file {@link exportPart} writes on its output: this header line (JSON), then `size` bytes. */
interface FileFrame {
  file: StoredFile;
  size: number;
}

/**
 * `files export` as the data directory's owner (a file that no longer matches its SHA-256 is
 * quarantined there): writes every delivered file, newest first, on `output` as a {@link FileFrame}.
 * Resolves with those it refused.
 */
const exportPart: OwnerPart<{ config: AttacheConfig }, Refused[]> = async ({ config }, io) => {
  const { store, files } = await deliveredFiles(config);
  const refused: Refused[] = [];
  async function* frames() {
    for (const file of [...files].reverse()) {
      let content: Buffer | undefined;
      try {
        content = await store.read(file.sha256);
      } catch (err) {
        if (!isGatewayError(err, 'ATTACHE_CACHE_TAMPERED')) throw err;
        refused.push({
          name: file.name,
          sha256: file.sha256,
          reason: 'no longer matches its SHA-256 (quarantined)',
        });
        continue;
      }
      if (!content) continue; // removed meanwhile
      yield Buffer.from(`${JSON.stringify({ file, size: content.length } satisfies FileFrame)}\n`);
      yield content;
    }
  }
  await pipeline(frames, io.output);
  return refused;
};

/** The files {@link exportPart} wrote on `output`, with their content. */
async function* readFrames(output: Readable): AsyncGenerator<{ file: StoredFile; content: Buffer }> {
  let parts: Buffer[] = [];
  let length = 0;
  let frame: FileFrame | undefined;
  for await (const chunk of output) {
    parts.push(chunk as Buffer);
    length += (chunk as Buffer).length;
    for (;;) {
      if (!frame) {
        const pending = Buffer.concat(parts, length);
        const end = pending.indexOf(0x0a);
        parts = [pending];
        if (end < 0) break;
        frame = JSON.parse(pending.subarray(0, end).toString('utf8')) as FileFrame;
        parts = [pending.subarray(end + 1)];
        length -= end + 1;
      }
      if (length < frame.size) break;
      const pending = Buffer.concat(parts, length);
      yield { file: frame.file, content: pending.subarray(0, frame.size) };
      parts = [pending.subarray(frame.size)];
      length -= frame.size;
      frame = undefined;
    }
  }
}

async function exportFiles(args: ExportArgs): Promise<void> {
  const config = await readConfig(args.config);
  // The data dir is read as its owner; --out is written as this command's user (root may write a
  // USB stick the service cannot).
  const part = await runOwnerPart(config.gateway.dataDir, 'export', exportPart, { config });
  const exported: ManifestEntry[] = [];
  const used = new Set<string>(['manifest.json']);
  for await (const { file, content } of readFrames(part.output)) {
    checkDelivered(file, content);
    const path = exportPath(file, used);
    await mkdir(dirname(join(args.out, path)), { recursive: true });
    await writeSynced(join(args.out, path), content);
    exported.push({ ...describe(file), sha256: file.sha256, size: file.size, addedAt: file.addedAt, path });
  }
  const refused = await part.result;
  const manifest = {
    gatewayId: config.gateway.id,
    exportedAt: new Date().toISOString(),
    files: exported,
    refused,
  };
  await mkdir(args.out, { recursive: true });
  await writeSynced(join(args.out, 'manifest.json'), Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`));
  if (args.json) console.log(JSON.stringify(manifest));
  else console.log(`${exported.length} files exported to ${args.out} with manifest.json`);
  for (const r of refused) console.error(`attache: refused ${r.name} (${r.sha256}): ${r.reason}`);
  process.exit(refused.length > 0 ? 1 : 0);
}

/**
 * `attache files list` (both directions: files delivered through jobs, and files captured on the box
 * waiting for upload) and `attache files export --out DIR` (delivered files).
 */
export const filesCommands: CommandModule<object, CommonArgs>[] = [
  {
    command: 'files',
    describe:
      'files delivered to the gateway (drug libraries, device configurations) and device files waiting for upload',
    builder: (y) =>
      withConfig(y)
        .command(
          'list',
          'list the delivered files and the files waiting for upload',
          (c) => withConfig(c).option('json', jsonOption),
          (a) => list(a).catch(fail),
        )
        .command(
          'export',
          'copy every delivered file, verified, with a manifest.json, to a directory (a USB stick)',
          (c) =>
            withConfig(c).option('json', jsonOption).option('out', {
              alias: 'o',
              type: 'string',
              description: 'target directory',
              demandOption: true,
            }),
          (a) => servingOwnerParts({ export: exportPart }, exportFiles)(a as ExportArgs).catch(fail),
        )
        .demandCommand(1, 'name a files subcommand'),
    handler: () => undefined,
  },
];
