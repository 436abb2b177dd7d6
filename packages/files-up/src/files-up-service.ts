import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CacheKeyring } from '@attache/cache';
import {
  type AttacheConfig,
  type FilesConfig,
  type FilesUploadConfig,
  isGatewayError,
  type Logger,
  nullLogger,
} from '@attache/core';
import { FreeTextDeidentifier } from '@attache/normalizer';
import { CredentialsProviderClient } from './credentials-provider.js';
import { FileUploader, type FileUploadReport } from './file-uploader.js';
import { S3UploadClient } from './s3-client.js';
import { FolderSource, type ScanReport, UsbSource } from './sources.js';
import { type CapturedFile, UpStore, type UpStoreCounts, type UpStoreEvent } from './up-store.js';

/** Options of {@link FilesUpService}. */
export interface FilesUpServiceOptions {
  config: FilesConfig;
  /** The gateway's data directory: the store is `<dataDir>/files-up`. */
  dataDir: string;
  keyring: CacheKeyring;
  /** The thing name: the credentials provider's thing and the first segment of every object key. */
  thingName: string;
  /** The thing's certificate and key files (the uplink's), read at each upload. */
  certFile: string;
  keyFile: string;
  /** Device ids per `uplink.routes` name: their files go to `files.upload.routes[name]`. */
  routes?: Record<string, string[]>;
  /** The free-text rule for `files.deidentify` devices (the normalizer's FreeTextDeidentifier.clean). */
  clean?: (line: string) => string;
  /** Store events (captured, duplicate, refused, dropped, uploaded), for the journal. */
  onEvent?: (event: UpStoreEvent) => void;
  logger?: Logger;
}

/** What a window's file upload did, per destination (`default` and route names). */
export interface FilesWindowReport extends FileUploadReport {
  destinations: Record<string, FileUploadReport>;
}

/** What `attache status` shows of files up. */
export interface FilesUpStatus extends UpStoreCounts {
  /** Files waiting for upload, and their bytes. */
  waiting: number;
  waitingBytes: number;
}

/**
 * Files up in a running gateway: the store, its sources scanned on their intervals, and the upload
 * run in each connectivity window, one uploader per destination (the default, and each route's
 * bucket for its devices' files: data residency).
 */
export class FilesUpService {
  readonly store: UpStore;
  readonly #options: FilesUpServiceOptions;
  readonly #log: Logger;
  readonly #timers: NodeJS.Timeout[] = [];
  readonly #scanning = new Set<Promise<unknown>>();

  constructor(options: FilesUpServiceOptions) {
    const { config } = options;
    this.#options = options;
    this.#log = (options.logger ?? nullLogger).child({ module: 'files-up' });
    this.store = new UpStore({
      path: join(options.dataDir, 'files-up'),
      keyring: options.keyring,
      limits: {
        maxFiles: config.maxFiles,
        maxBytes: config.maxBytes,
        maxFileBytes: config.maxFileBytes,
        whenFull: config.whenFull,
      },
      logger: options.logger ?? nullLogger,
      ...(options.clean && config.deidentify.length > 0
        ? { deidentify: { deviceIds: config.deidentify, clean: options.clean } }
        : {}),
    });
    if (options.onEvent) this.store.on('event', options.onEvent);
  }

  /** Opens the store and starts scanning the sources on their intervals (the first scan at once). */
  async start(): Promise<void> {
    await this.store.open();
    for (const source of this.#options.config.sources) {
      const scanner =
        source.type === 'folder'
          ? new FolderSource({
              path: source.path,
              deviceId: source.deviceId,
              store: this.store,
              settleMs: (source.settleSeconds ?? 10) * 1000,
              logger: this.#log,
            })
          : new UsbSource({
              device: source.device,
              deviceId: source.deviceId,
              store: this.store,
              logger: this.#log,
            });
      const scan = () => this.#scan(source.type, () => scanner.scan());
      scan();
      const timer = setInterval(scan, (source.scanSeconds ?? (source.type === 'folder' ? 60 : 10)) * 1000);
      timer.unref();
      this.#timers.push(timer);
    }
  }

  /** Stops scanning and waits for a scan in progress. */
  async stop(): Promise<void> {
    for (const timer of this.#timers.splice(0)) clearInterval(timer);
    await Promise.allSettled([...this.#scanning]);
  }

  /** One scan at a time (the sources share the disk); a USB stick not plugged in is not worth a warning. */
  #scan(kind: string, scan: () => Promise<ScanReport>): void {
    if (this.#scanning.size > 0) return;
    const running = scan().then(
      (report) => {
        if (report.captured + report.refused > 0) this.#log.info({ kind, ...report }, 'source scanned');
      },
      (err: unknown) =>
        this.#log.debug(
          { kind, errorCode: isGatewayError(err) ? err.code : undefined },
          'source not readable',
        ),
    );
    this.#scanning.add(running);
    void running.finally(() => this.#scanning.delete(running));
  }

  /** The store's counters and what waits. */
  async status(): Promise<FilesUpStatus> {
    const files = await this.store.list();
    return {
      ...this.store.counts,
      waiting: files.length,
      waitingBytes: files.reduce((n, f) => n + f.size, 0),
    };
  }

  /**
   * Uploads waiting files within `maxBytes` (0: no budget) until `signal` aborts: the default
   * destination's files first, then each route's. Never rejects: a destination that cannot even
   * start (certificate unreadable) is logged and its files wait.
   */
  async upload(options: { maxBytes: number; signal?: AbortSignal }): Promise<FilesWindowReport> {
    const { config, routes = {} } = this.#options;
    const routed = new Map<string, string>();
    for (const [name, devices] of Object.entries(routes)) for (const d of devices) routed.set(d, name);
    const total: FilesWindowReport = {
      uploaded: 0,
      bytes: 0,
      failed: 0,
      remaining: 0,
      endedBy: 'drained',
      destinations: {},
    };
    const destinations: [string, FilesUploadConfig][] = [['default', config.upload]];
    for (const name of Object.keys(config.upload.routes ?? {})) {
      const destination = config.upload.routes[name];
      if (destination) destinations.push([name, { ...config.upload, ...destination }]);
    }
    for (const [name, destination] of destinations) {
      const accept = (file: CapturedFile) => (routed.get(file.deviceId) ?? 'default') === name;
      const left = options.maxBytes > 0 ? options.maxBytes - total.bytes : 0;
      if (options.maxBytes > 0 && left <= 0) break;
      try {
        const report = await (await this.#uploader(destination, accept, options.signal)).upload({
          maxBytes: left,
          ...(options.signal ? { signal: options.signal } : {}),
        });
        total.destinations[name] = report;
        total.uploaded += report.uploaded;
        total.bytes += report.bytes;
        total.failed += report.failed;
        if (report.endedBy !== 'drained') total.endedBy = report.endedBy;
      } catch (err) {
        total.failed++;
        this.#log.error({ err, destination: name }, 'files could not be uploaded this window');
      }
    }
    total.remaining = (await this.store.list()).length;
    return total;
  }

  async #uploader(
    destination: FilesUploadConfig,
    accept: (file: CapturedFile) => boolean,
    signal: AbortSignal | undefined,
  ): Promise<FileUploader> {
    const { certFile, keyFile, thingName } = this.#options;
    const [cert, key, ca] = await Promise.all([
      readFile(certFile),
      readFile(keyFile),
      destination.caFile ? readFile(destination.caFile) : undefined,
    ]);
    const credentials = new CredentialsProviderClient({
      endpoint: destination.credentialsEndpoint,
      roleAlias: destination.roleAlias,
      thingName,
      cert,
      key,
      ...(ca ? { ca } : {}),
      ...(signal ? { signal } : {}),
    });
    const s3 = new S3UploadClient({
      region: destination.region,
      bucket: destination.bucket,
      ...(destination.endpoint ? { endpoint: destination.endpoint } : {}),
      ...(ca ? { ca } : {}),
      ...(signal ? { signal } : {}),
      credentials: () => credentials.credentials(),
    });
    return new FileUploader({
      store: this.store,
      s3,
      prefix: thingName,
      partBytes: destination.partBytes,
      multipartAboveBytes: destination.multipartAboveBytes,
      forgetCredentials: () => credentials.forget(),
      accept,
      logger: this.#log,
    });
  }
}

/**
 * The files-up service a gateway runs for `config.files` (undefined without it, or without an uplink:
 * files go up with the thing's certificate). Started: its store is open and its sources scanned.
 */
export async function startFilesUp(
  config: AttacheConfig,
  keyring: CacheKeyring,
  logger: Logger,
  onEvent?: (event: UpStoreEvent) => void,
): Promise<FilesUpService | undefined> {
  const { files, uplink } = config;
  if (!files || !uplink) return undefined;
  const rule = new FreeTextDeidentifier();
  const service = new FilesUpService({
    config: files,
    dataDir: config.gateway.dataDir,
    keyring,
    thingName: config.gateway.id,
    certFile: uplink.certFile,
    keyFile: uplink.keyFile,
    routes: Object.fromEntries(uplink.routes.map((route) => [route.name, route.devices])),
    clean: (line) => rule.clean(line),
    logger,
    ...(onEvent ? { onEvent } : {}),
  });
  await service.start();
  return service;
}
