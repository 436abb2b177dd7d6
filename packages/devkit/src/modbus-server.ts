import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { GatewayError, type ModbusRegister } from '@attache/core';

/** One value the server holds, encoded by Python's `struct` (independent of the adapter's decoder). */
export interface ModbusServerValue {
  table: 'hr' | 'ir' | 'co' | 'di';
  /** 0-based address. */
  address: number;
  type: ModbusRegister['type'];
  /** Default ABCD. */
  order?: ModbusRegister['order'];
  /** Numbers; 64-bit integers as decimal strings; text for strings; a 16-bit word for `bit`. */
  value: number | string | boolean;
  /** For strings: registers. */
  length?: number;
}

/** Where the server listens. */
export type ModbusServerTransport =
  | { transport: 'tcp' /** Default 0: a free port. */; port?: number }
  | { transport: 'rtu' /** The device end of a pty pair. */; path: string; baudRate?: number };

/** Options of {@link startModbusServer}. */
export type ModbusServerOptions = ModbusServerTransport & {
  /** The values of each unit id; only these addresses exist (others give exception 2). */
  units: Record<number, ModbusServerValue[]>;
  /**
   * TCP: how long each answer takes, ms (default 0), as a slow device or gateway. The server keeps
   * receiving meanwhile, so a client that does not wait for the answer shows in `requests()` as
   * requests in progress at once.
   */
  delayMs?: number;
};

/** One request a TCP server received. Times are seconds on the server's monotonic clock. */
export interface ModbusServedRequest {
  unit: number;
  /** The client's port: one per connection. */
  peer: number;
  arrived: number;
  /** When the answer was sent; null when not (yet): still delayed, or the unit is silent. */
  answered: number | null;
}

/** A running pymodbus server. */
export interface ModbusServer {
  /** The TCP port (0 for RTU). */
  port: number;
  /** Changes a value; resolves once the server holds it. */
  set(unit: number, value: ModbusServerValue): Promise<void>;
  /**
   * TCP: the unit stops answering (`true`: its requests get no answer, as with a device unplugged
   * behind a gateway) or answers again (`false`); resolves once the server applied it.
   */
  silence(unit: number, silent: boolean): Promise<void>;
  /** TCP: every request received so far, in arrival order. */
  requests(): Promise<ModbusServedRequest[]>;
  /** Kills the server (SIGKILL: the connection drops as with a power cut); resolves once it exited. */
  stop(): Promise<void>;
}

const script = fileURLToPath(new URL('../src/modbus-server.py', import.meta.url));
/** Debian's python, which has python3-pymodbus (a pyenv `python3` on PATH may not). */
const python = '/usr/bin/python3';
const startTimeoutMs = 30_000;

function nextLine(child: ChildProcessWithoutNullStreams, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(
      () => done(new GatewayError('ATTACHE_TIMEOUT', 'the Modbus server did not answer')),
      timeoutMs,
    );
    const onData = (chunk: string) => {
      text += chunk;
      const end = text.indexOf('\n');
      if (end !== -1) done(undefined, text.slice(0, end));
    };
    const onExit = (code: number | null) => done(new Error(`the Modbus server exited (code ${code})`));
    function done(err?: Error, line?: string): void {
      clearTimeout(timer);
      child.stdout.off('data', onData);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve(line ?? '');
    }
    child.stdout.on('data', onData);
    child.once('exit', onExit);
  });
}

/**
 * Starts `packages/devkit/src/modbus-server.py` (pymodbus 3.0 through its library API) with `/usr/bin/python3`.
 * Resolves once it serves. Rejects with a GatewayError ATTACHE_TIMEOUT when it does not start (not ready within 30 s,
 * or it exited first); the message ends with the tail of its stderr.
 */
export async function startModbusServer(options: ModbusServerOptions): Promise<ModbusServer> {
  const { units, ...where } = options;
  const child = spawn(python, [script, JSON.stringify({ ...where, units })], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  child.stdout.setEncoding('utf8');
  // Kept (the tail) for the error when it fails to start.
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-2000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  let ready: string;
  try {
    ready = await nextLine(child, startTimeoutMs);
  } catch (err) {
    await stop();
    throw new GatewayError('ATTACHE_TIMEOUT', `the Modbus server did not start: ${stderr.trim()}`, {
      cause: err,
    });
  }
  const port = Number(ready.split(' ')[1] ?? 0);
  let queue: Promise<unknown> = Promise.resolve();
  /** Sends one stdin command after the earlier ones were answered; resolves with its answer line. */
  const command = (body: object): Promise<string> => {
    const run = queue.then(() => {
      const answered = nextLine(child, 30_000);
      child.stdin.write(`${JSON.stringify(body)}\n`);
      return answered;
    });
    queue = run.catch(() => undefined);
    return run;
  };
  return {
    port,
    set: async (unit, value) => {
      await command({ unit, value });
    },
    silence: async (unit, silent) => {
      await command({ unit, silent });
    },
    requests: async () => JSON.parse(await command({ requests: true })) as ModbusServedRequest[],
    stop,
  };
}
