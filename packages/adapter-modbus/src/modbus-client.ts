import type { EventEmitter } from 'node:events';
import type { Logger, ModbusBus, RandomSource } from '@attache/core';
import { Backoff, GatewayError, monotonicMs, nullLogger } from '@attache/core';
import ModbusRTUDefault from 'modbus-serial';
import type { ModbusRTU } from 'modbus-serial/ModbusRTU.js';
import { busKey } from './check-config.js';
import { connectFailure } from './connect-failure.js';
import { modbusCodeOf, modbusExceptionName } from './exceptions.js';
import { Mutex } from './mutex.js';
import type { ModbusTable } from './register-map.js';

// modbus-serial's default export does not typecheck as a constructor under `nodenext` (TS2351)
// although it is one at run time: cast once, here.
const ModbusRTUClass = ModbusRTUDefault as unknown as new () => ModbusRTU;

/** Back-off between connection attempts. */
export interface ReconnectOptions {
  /** First wait after a failure, ms. Default 500. */
  initialMs: number;
  /** Longest wait, ms. Default 30 000. */
  maxMs: number;
  /** Random spread of each wait, 0-1 (the gateway passes `gateway.retryJitter`). Default 0. */
  jitter?: number;
  /** Default `Math.random`. */
  random?: RandomSource;
}

/** Options of {@link ModbusClient}. */
export interface ModbusClientOptions {
  /** The bus, with the schema's defaults applied. */
  bus: ModbusBus;
  /** Default `nullLogger`; the client logs through a child `{ module: 'adapter-modbus', bus }`. */
  logger?: Logger;
  /** Default 500 ms doubling to 30 s. */
  reconnect?: ReconnectOptions;
}

/** One read request. */
export interface ReadRequest {
  unitId: number;
  table: ModbusTable;
  /** 0-based address of the first register (or bit). */
  address: number;
  /** Registers (or bits) to read. */
  count: number;
  /** How long to wait for the answer (and for a connection), ms. */
  timeoutMs: number;
}

/** What a read returned: the data bytes as sent, and for coils/discrete inputs the `count` bits. */
export interface ReadResponse {
  bytes: Buffer;
  bits: boolean[];
}

/** TCP timeouts in a row, with no answer between, after which the connection is renewed. */
const maxTcpTimeouts = 3;

/** The RTU silent interval after a frame: 3.5 characters, fixed 1.75 ms above 19200 baud, in ms. */
export function rtuGapMs(bus: ModbusBus): number {
  if (bus.transport !== 'rtu') return 0;
  if (bus.baudRate > 19200) return 1.75;
  const bitsPerChar = 1 + bus.dataBits + (bus.parity === 'none' ? 0 : 1) + bus.stopBits;
  return (3.5 * bitsPerChar * 1000) / bus.baudRate;
}

function describe(r: ReadRequest): string {
  return `${r.table} ${r.address}×${r.count} of unit ${r.unitId}`;
}

/**
 * Refuses an answer whose byte count disagrees with the request. The library takes the count as
 * sent: fewer or more bytes than asked for would shift or cut the values decoded from it.
 * @throws GatewayError `ATTACHE_MALFORMED`.
 */
function checkByteCount(response: ReadResponse, r: ReadRequest): void {
  const bits = r.table === 'coil' || r.table === 'discrete-input';
  const expected = bits ? Math.ceil(r.count / 8) : r.count * 2;
  if (response.bytes.length !== expected) {
    throw new GatewayError(
      'ATTACHE_MALFORMED',
      `answer to ${describe(r)} holds ${response.bytes.length} bytes, ${expected} expected`,
    );
  }
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * One Modbus bus (a serial line or a TCP connection) shared by every device on it: one transaction
 * at a time in call order, each bounded by its own timeout. Connects on first use and after a
 * failure, waiting with back-off between attempts; reads in between fail fast. The connection is
 * closed when its last user releases it (and opened again by the next read).
 */
export class ModbusClient {
  readonly key: string;
  readonly #bus: ModbusBus;
  readonly #log: Logger;
  readonly #reconnect: ReconnectOptions;
  readonly #mutex = new Mutex();
  #client: ModbusRTU | undefined;
  readonly #backoff: Backoff;
  #nextAttemptAt = 0;
  #timeouts = 0;
  #users = 0;

  constructor(options: ModbusClientOptions) {
    this.#bus = options.bus;
    this.key = busKey(options.bus);
    this.#reconnect = options.reconnect ?? { initialMs: 500, maxMs: 30_000 };
    this.#backoff = new Backoff(this.#reconnect);
    this.#log = (options.logger ?? nullLogger).child({ module: 'adapter-modbus', bus: this.key });
  }

  /** `modbus-rtu` or `modbus-tcp`. */
  get protocol(): 'modbus-rtu' | 'modbus-tcp' {
    return this.#bus.transport === 'rtu' ? 'modbus-rtu' : 'modbus-tcp';
  }

  /** True while connected. */
  get connected(): boolean {
    return this.#client?.isOpen === true;
  }

  /**
   * Reads after every earlier request on this bus. Rejects with a GatewayError: `ATTACHE_TIMEOUT` (no
   * answer within `timeoutMs`), `ATTACHE_MALFORMED` (a Modbus exception, named in the message, the
   * library error with `modbusCode` as `cause`; or a bad CRC or length), `ATTACHE_PORT_NOT_OPEN` (not
   * connected, or not yet time for the next connection attempt).
   */
  read(request: ReadRequest): Promise<ReadResponse> {
    return this.#mutex.run(async () => {
      try {
        return await this.#transact(request);
      } finally {
        const gap = rtuGapMs(this.#bus);
        if (gap > 0) await delay(Math.ceil(gap));
      }
    });
  }

  /** Registers one more user of the bus (a device adapter while it runs). */
  acquire(): void {
    this.#users++;
  }

  /** Unregisters a user; the last one out closes the connection, after the request in flight. */
  async release(): Promise<void> {
    this.#users = Math.max(0, this.#users - 1);
    if (this.#users === 0) await this.#mutex.run(() => this.#drop());
  }

  async #transact(request: ReadRequest): Promise<ReadResponse> {
    const client = await this.#open(request.timeoutMs);
    client.setID(request.unitId);
    client.setTimeout(request.timeoutMs);
    let response: ReadResponse;
    // A connection that closes (the device's end dropped, a cable pulled) ends the request at once:
    // the library would leave it waiting out its whole timeout.
    // (ModbusRTU is an EventEmitter; its typings declare only `on`.)
    const events = client as unknown as EventEmitter;
    let onClose: () => void = () => undefined;
    const closed = new Promise<never>((_, reject) => {
      onClose = () => reject(new Error('the connection closed while waiting for the answer'));
      events.once('close', onClose);
    });
    const sent = this.#send(client, request);
    sent.catch(() => undefined);
    try {
      response = await Promise.race([sent, closed]);
      this.#timeouts = 0;
    } catch (err) {
      throw await this.#failed(err, request);
    } finally {
      events.off('close', onClose);
    }
    checkByteCount(response, request);
    return response;
  }

  async #send(client: ModbusRTU, r: ReadRequest): Promise<ReadResponse> {
    switch (r.table) {
      case 'coil': {
        const result = await client.readCoils(r.address, r.count);
        return { bytes: result.buffer, bits: result.data.slice(0, r.count) };
      }
      case 'discrete-input': {
        const result = await client.readDiscreteInputs(r.address, r.count);
        return { bytes: result.buffer, bits: result.data.slice(0, r.count) };
      }
      case 'input-register':
        return { bytes: (await client.readInputRegisters(r.address, r.count)).buffer, bits: [] };
      case 'holding-register':
        return { bytes: (await client.readHoldingRegisters(r.address, r.count)).buffer, bits: [] };
    }
  }

  /** Maps a library error to a GatewayError, dropping the connection when it is unusable. */
  async #failed(err: unknown, request: ReadRequest): Promise<GatewayError> {
    const what = describe(request);
    const modbusCode = modbusCodeOf(err);
    if (modbusCode !== undefined) {
      this.#timeouts = 0;
      const message = `Modbus exception ${modbusCode} (${modbusExceptionName(modbusCode)}) reading ${what}`;
      return new GatewayError('ATTACHE_MALFORMED', message, { cause: err });
    }
    const errno = (err as { errno?: unknown } | null)?.errno;
    if (errno === 'ETIMEDOUT') {
      this.#timeouts++;
      if (this.#bus.transport === 'tcp' && this.#timeouts >= maxTcpTimeouts) {
        this.#log.warn({ timeouts: this.#timeouts }, 'no answer on the connection, reconnecting');
        await this.#drop();
      }
      return new GatewayError('ATTACHE_TIMEOUT', `no answer within ${request.timeoutMs} ms reading ${what}`, {
        cause: err,
      });
    }
    const message = err instanceof Error ? err.message : String(err);
    // A RangeError: the library read past the answer, whose byte count claims more than it holds.
    if (/CRC|length/i.test(message) || err instanceof RangeError) {
      return new GatewayError('ATTACHE_MALFORMED', `bad answer (${message}) reading ${what}`, { cause: err });
    }
    await this.#drop();
    return new GatewayError('ATTACHE_PORT_NOT_OPEN', `${this.key} failed reading ${what}`, { cause: err });
  }

  async #open(timeoutMs: number): Promise<ModbusRTU> {
    if (this.#client?.isOpen) return this.#client;
    await this.#drop();
    const wait = this.#nextAttemptAt - monotonicMs();
    if (wait > 0) {
      throw new GatewayError(
        'ATTACHE_PORT_NOT_OPEN',
        `${this.key} not connected; next attempt in ${Math.ceil(wait)} ms`,
      );
    }
    const client = new ModbusRTUClass();
    client.on('error', (err: unknown) => this.#log.debug({ err }, 'bus error'));
    try {
      await this.#connect(client, timeoutMs);
    } catch (err) {
      const delay = this.#backoff.next();
      this.#nextAttemptAt = monotonicMs() + delay;
      this.#log.warn({ err, retryInMs: delay }, 'cannot connect, will retry');
      await closeClient(client);
      throw new GatewayError(
        'ATTACHE_PORT_NOT_OPEN',
        `cannot connect to ${this.key}: ${connectFailure(err)}`,
        {
          cause: err,
        },
      );
    }
    client.on('close', () => {
      if (this.#client === client) this.#log.warn('bus closed, will reconnect');
    });
    this.#client = client;
    this.#backoff.reset();
    this.#timeouts = 0;
    this.#log.info('bus connected');
    return client;
  }

  async #connect(client: ModbusRTU, timeoutMs: number): Promise<void> {
    const bus = this.#bus;
    const connecting =
      bus.transport === 'tcp'
        ? client.connectTCP(bus.host, { port: bus.port })
        : client.connectRTUBuffered(bus.path, {
            baudRate: bus.baudRate,
            dataBits: bus.dataBits,
            parity: bus.parity,
            stopBits: bus.stopBits,
          });
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no connection within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([connecting, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  async #drop(): Promise<void> {
    const client = this.#client;
    this.#client = undefined;
    if (client !== undefined) await closeClient(client);
  }
}

/** Closes a client whatever its state; never rejects, never waits more than 1 s. */
function closeClient(client: ModbusRTU): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 1000);
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    try {
      if (client.isOpen) client.close(done);
      else client.destroy(done);
    } catch {
      done();
    }
  });
}
