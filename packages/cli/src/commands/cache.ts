import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { access, mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  type ExportManifest,
  exportDataKey,
  importExport,
  type LevelCache,
  type ReadManifest,
  restoreExport,
  rotateKeyring,
  streamExport,
} from '@attache/cache';
import { type AttacheConfig, GatewayError, isGatewayError, nullLogger } from '@attache/core';
import {
  controlRequest,
  createLogger,
  type ExportProgress,
  exportStaging,
  gatewayPaths,
  openCache,
  placeStream,
  progressBar,
  signingKeyInfo,
  stageExport,
} from '@attache/gateway';
import type { CommandModule } from 'yargs';
import { becomeDataDirOwner, type OwnerPart, runOwnerPart, servingOwnerParts } from '../privileges.js';
import { openStagedExport, serviceSigningKey } from '../service-files.js';
import { type CommonArgs, fail, printable, readConfig, withConfig } from './common.js';

interface ExportArgs extends CommonArgs {
  out: string;
  force: boolean;
  since?: string;
  until?: string;
  recipient?: string;
}

interface ImportArgs extends CommonArgs {
  file: string;
  key: string;
  signer?: string[];
  stdout: boolean;
}

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

const stopFirst =
  'the gateway is running: stop the service first (e.g. `systemctl stop attache`), then run this again';

/** True when a gateway answers on the control socket of this config. */
async function gatewayRunning(cfg: AttacheConfig): Promise<boolean> {
  try {
    await controlRequest(gatewayPaths(cfg).socket, 'status', 5000);
    return true;
  } catch (err) {
    if (isGatewayError(err, 'ATTACHE_CONTROL_UNAVAILABLE')) return false;
    throw err;
  }
}

/** Opens the config's cache; a running gateway (which holds the lock) is reported with what to do. */
async function openStopped(cfg: AttacheConfig): Promise<LevelCache> {
  try {
    return await openCache(cfg, nullLogger);
  } catch (err) {
    if (isGatewayError(err, 'ATTACHE_CACHE_LOCKED'))
      throw new GatewayError('ATTACHE_CACHE_LOCKED', stopFirst);
    throw err;
  }
}

function date(name: string, value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const at = new Date(value);
  if (Number.isNaN(at.getTime()))
    throw new TypeError(`--${name} must be a date or time (e.g. 2026-11-01T08:00Z)`);
  return at;
}

/** Parameters of `cache export`'s part as the data directory's owner. */
interface ExportPartParams {
  cfg: AttacheConfig;
  recipient: string;
  since?: string;
  until?: string;
}

/**
 * `cache export` with no gateway running, as the data directory's owner (so that what it writes
 * there stays the service's): stages the export (sealed for the recipient), writes its bytes on
 * `output` and removes it.
 */
const exportPart: OwnerPart<ExportPartParams, ExportManifest> = async ({ cfg, ...params }, io) => {
  const cache = await openStopped(cfg);
  let staged: { file: string; manifest: ExportManifest };
  try {
    const paths = { dataDir: cfg.gateway.dataDir, signingKey: gatewayPaths(cfg).signingKey };
    staged = await stageExport(cache, paths, params, io.notify);
  } finally {
    await cache.close();
  }
  try {
    await pipeline(createReadStream(staged.file), io.output);
  } finally {
    await rm(staged.file, { force: true });
  }
  return staged.manifest;
};

/**
 * Writes an export at `out` (as this command's user: root may write a USB stick the service cannot),
 * from the running gateway over the control socket or, with none running, from {@link exportPart}.
 */
async function exportTo(
  cfg: AttacheConfig,
  params: { recipient: string; since?: string; until?: string },
  out: string,
  force: boolean,
  bar: ReturnType<typeof progressBar>,
): Promise<ExportManifest> {
  const staged = await stagedByGateway(cfg, params, bar);
  if (staged !== undefined) {
    // The gateway (the service's user) names the file: root copies it only when it is the service's
    // own staged export, and removes nothing else.
    const log = createLogger(cfg.log.level, { fd: 2 }).child({ module: 'cache-export' });
    const file = await openStagedExport(cfg.gateway.dataDir, staged.file, log);
    try {
      await placeStream(file.stream(), out, force);
    } finally {
      try {
        await file.remove();
      } finally {
        await file.close();
      }
    }
    return staged.manifest;
  }
  const part = await runOwnerPart(
    cfg.gateway.dataDir,
    'export',
    exportPart,
    { cfg, ...params },
    {
      onEvent: (event) => bar.update(event as ExportProgress),
    },
  );
  await placeStream(part.output, out, force, part.result);
  return part.result;
}

/** The running gateway's answer (its staged export, unchecked); undefined when none runs. */
async function stagedByGateway(
  cfg: AttacheConfig,
  params: { recipient: string; since?: string; until?: string },
  bar: ReturnType<typeof progressBar>,
): Promise<{ file: unknown; manifest: ExportManifest } | undefined> {
  try {
    const answer = (await controlRequest(gatewayPaths(cfg).socket, 'export', 60_000, {
      params,
      onEvent: (event) => bar.update(event as ExportProgress),
    })) as { file?: unknown; manifest: ExportManifest } | null;
    return { file: answer?.file, manifest: answer?.manifest as ExportManifest };
  } catch (err) {
    if (!isGatewayError(err, 'ATTACHE_CONTROL_UNAVAILABLE')) throw err;
    return undefined;
  }
}

async function exportCommand(args: ExportArgs): Promise<void> {
  const cfg = await readConfig(args.config);
  const recipientFile = args.recipient ?? cfg.cache.exportRecipientFile;
  if (!recipientFile) throw new TypeError('give --recipient PUBKEY.pem (or set cache.exportRecipientFile)');
  const recipient = await readFile(recipientFile, 'utf8');
  date('since', args.since);
  date('until', args.until);
  if (!args.force && (await exists(args.out))) {
    throw new GatewayError(
      'ATTACHE_FILE_EXISTS',
      `${args.out} exists: choose another name, or replace it with --force`,
    );
  }
  const bar = progressBar();
  let manifest: ExportManifest;
  try {
    const params = { recipient, since: args.since, until: args.until };
    manifest = await exportTo(cfg, params, args.out, args.force, bar);
  } finally {
    bar.done();
  }
  // The manifest is the running gateway's answer.
  console.log(
    printable(
      `exported ${manifest.records} records (seq ${manifest.firstSeq ?? '-'}..${manifest.lastSeq ?? '-'}) to ${args.out}, signed by this gateway's key ${manifest.signer.keySha256.slice(0, 16)}; they stay in the cache until uploaded`,
    ),
  );
}

/** The signing keys an import trusts: this gateway's own (when it has one) and every `--signer`. */
async function trustedSigners(args: ImportArgs): Promise<string[]> {
  const keys = await Promise.all((args.signer ?? []).map((file) => readFile(file, 'utf8')));
  const cfg = args.stdout && !(await exists(args.config)) ? undefined : await readConfig(args.config);
  // Read as this command's user (root): never through a symlink, never created (the data dir is the service's).
  const own = cfg && (await serviceSigningKey(cfg.gateway.dataDir));
  if (own) keys.push(own);
  return keys;
}

/** Parameters of `cache import`'s part as the data directory's owner. */
interface ImportPartParams {
  cfg: AttacheConfig;
  /** The export's manifest, its signature verified, and where its ciphertext starts. */
  read: Pick<ReadManifest, 'manifest' | 'bodyOffset'>;
  /** The export's own data key (it opens this export only; the recipient's private key stays with root). */
  key: Uint8Array;
}

/**
 * `cache import` as the data directory's owner: copies the export's bytes from `input` into the
 * staging directory (a stick read twice may not answer the same), checks the copy against its
 * manifest in every respect, then restores its records into the (stopped) gateway's cache.
 */
const importPart: OwnerPart<ImportPartParams, { stored: number; skipped: number }> = async (
  { cfg, read, key },
  io,
) => {
  const cache = await openStopped(cfg);
  const staging = exportStaging(cfg.gateway.dataDir);
  const copy = join(staging, `import-${randomBytes(8).toString('hex')}.attache`);
  try {
    await mkdir(staging, { recursive: true, mode: 0o700 });
    await pipeline(io.input, createWriteStream(copy, { flags: 'wx', mode: 0o600 }));
    let stored = 0;
    let skipped = 0;
    await restoreExport(copy, read, Buffer.from(key), async (records) => {
      const result = await cache.restore(records);
      stored += result.stored;
      skipped += result.skipped;
    });
    return { stored, skipped };
  } finally {
    await rm(copy, { force: true });
    await cache.close();
  }
};

async function importCommand(args: ImportArgs): Promise<void> {
  const privateKey = await readFile(args.key, 'utf8');
  const signers = await trustedSigners(args);
  if (args.stdout) {
    await importExport(args.file, {
      privateKey,
      trustedSigners: signers,
      onRecords: async (records) => {
        for (const record of records) process.stdout.write(`${JSON.stringify(record)}\n`);
      },
    });
    return;
  }
  const cfg = await readConfig(args.config);
  // Read once, by this command's user (a USB stick may be root's only); its bytes are copied into
  // the data dir, checked and imported by the part as the data dir's owner.
  const { read, bytes } = await streamExport(args.file);
  const { manifest } = read;
  if (manifest.gatewayId !== null && manifest.gatewayId !== cfg.gateway.id) {
    throw new TypeError(
      `the export holds records of gateway ${manifest.gatewayId}, this config is gateway ${cfg.gateway.id}: seqs are per gateway, so import into a cache configured with gateway.id ${manifest.gatewayId}, or use --stdout`,
    );
  }
  const key = exportDataKey(read, { privateKey, trustedSigners: signers });
  const params = { cfg, read: { manifest, bodyOffset: read.bodyOffset }, key };
  const part = await runOwnerPart(cfg.gateway.dataDir, 'import', importPart, params, {
    input: Readable.from(bytes),
  });
  part.output.resume();
  const { stored, skipped } = await part.result;
  console.log(`imported ${stored} records (${skipped} already waiting) from ${args.file}`);
}

async function signingKeyCommand(args: CommonArgs): Promise<void> {
  const cfg = await readConfig(args.config);
  await becomeDataDirOwner(cfg.gateway.dataDir);
  const info = (await controlRequest(gatewayPaths(cfg).socket, 'signing-key', 5000).catch((err: unknown) => {
    if (isGatewayError(err, 'ATTACHE_CONTROL_UNAVAILABLE'))
      return signingKeyInfo(gatewayPaths(cfg).signingKey);
    throw err;
  })) as { publicKey: string; fingerprint: string };
  process.stdout.write(info.publicKey);
  console.error(`export-signing key of gateway ${cfg.gateway.id}, SHA-256 ${info.fingerprint}`);
}

async function rotateCommand(args: CommonArgs): Promise<void> {
  const cfg = await readConfig(args.config);
  await becomeDataDirOwner(cfg.gateway.dataDir);
  if (await gatewayRunning(cfg)) throw new GatewayError('ATTACHE_CACHE_LOCKED', stopFirst);
  const id = await rotateKeyring(gatewayPaths(cfg).keyFile);
  console.log(`new data key ${id} is current; records sealed with older keys stay readable until uploaded`);
}

/** Runs `handler`, or in a process started for it, the part as the data directory's owner it names. */
const served = <A>(args: A, handler: (args: A) => Promise<void>) =>
  servingOwnerParts({ export: exportPart, import: importPart }, handler)(args);

/** `attache cache export`, `cache import` and `cache rotate-key`. */
export const cacheCommands: CommandModule<object, CommonArgs>[] = [
  {
    command: 'cache',
    describe: 'carry the backlog out on a USB stick, or rotate the data key',
    builder: (y) =>
      withConfig(y)
        .command(
          'export',
          'write the waiting records to one encrypted, signed file (they are NOT deleted: they still go up in the next window); works while the gateway runs',
          (c) =>
            withConfig(c)
              .option('out', { alias: 'o', type: 'string', demandOption: true, description: 'file to write' })
              .option('force', {
                type: 'boolean',
                default: false,
                description: 'replace --out when it exists',
              })
              .option('since', {
                type: 'string',
                description: 'only records captured at or after (RFC 3339)',
              })
              .option('until', { type: 'string', description: 'only records captured before (RFC 3339)' })
              .option('recipient', {
                type: 'string',
                description: "recipient's PEM public key (default: cache.exportRecipientFile)",
              }),
          (a) => served(a as unknown as ExportArgs, exportCommand).catch(fail),
        )
        .command(
          'import <file>',
          "verify an export and store its records in this config's cache (same gateway id), or print them",
          (c) =>
            withConfig(c)
              .positional('file', { type: 'string', demandOption: true, description: 'the export file' })
              .option('key', {
                alias: 'k',
                type: 'string',
                demandOption: true,
                description: 'PEM private key',
              })
              .option('signer', {
                type: 'string',
                array: true,
                description:
                  "another gateway's export-signing public key (from its `cache signing-key`); this gateway's own is always trusted",
              })
              .option('stdout', { type: 'boolean', default: false, description: 'print JSON lines instead' }),
          (a) => served(a as unknown as ImportArgs, importCommand).catch(fail),
        )
        .command(
          'signing-key',
          "print this gateway's export-signing public key (PEM), for another gateway's `cache import --signer`",
          withConfig,
          (a) => signingKeyCommand(a).catch(fail),
        )
        .command(
          'rotate-key',
          'add a new data key and make it current (stop the gateway first; old records stay readable)',
          withConfig,
          (a) => rotateCommand(a).catch(fail),
        )
        .demandCommand(1, 'name a cache subcommand'),
    handler: () => undefined,
  },
];
