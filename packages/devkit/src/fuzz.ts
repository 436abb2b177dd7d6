import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * fast-check parameters for one property: `ATTACHE_FUZZ_RUNS` runs when set (`make fuzz` sets a
 * large count), else `runs` (the suite's short run); `ATTACHE_FUZZ_SEED` replays a failed run with
 * the seed fast-check printed.
 */
export function fuzzParameters(runs: number): { numRuns: number; seed?: number } {
  const fromEnv = Number(process.env.ATTACHE_FUZZ_RUNS);
  const seed = Number(process.env.ATTACHE_FUZZ_SEED);
  return {
    numRuns: Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : runs,
    ...(Number.isInteger(seed) ? { seed } : {}),
  };
}

let gc: (() => void) | undefined;

/** Live heap plus array buffers after two full collections, in bytes (tests run without --expose-gc). */
export function liveBytes(): number {
  if (gc === undefined) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  gc();
  gc();
  const { heapUsed, arrayBuffers } = process.memoryUsage();
  return heapUsed + arrayBuffers;
}

/**
 * Times the inputs fed to one parser: how many, how fast, the worst one. `run` throws when one input
 * takes longer than `boundMs`, a bound meant to catch super-linear work (seconds), not to measure.
 */
export class FuzzMeter {
  readonly name: string;
  readonly boundMs: number;
  #count = 0;
  #totalMs = 0;
  #worstMs = 0;

  constructor(name: string, boundMs = 2000) {
    this.name = name;
    this.boundMs = boundMs;
  }

  /** Calls `parse` on one input and returns what it returned (or rethrows what it threw). */
  run<T>(parse: () => T): T {
    const started = performance.now();
    let result: T;
    try {
      result = parse();
    } finally {
      this.record(performance.now() - started);
    }
    return result;
  }

  /** Counts one input that took `ms` (for inputs handled asynchronously); throws over the bound. */
  record(ms: number): void {
    this.#count++;
    this.#totalMs += ms;
    this.#worstMs = Math.max(this.#worstMs, ms);
    if (ms > this.boundMs) {
      throw new Error(`${this.name}: one input took ${ms.toFixed(0)} ms, over the ${this.boundMs} ms bound`);
    }
  }

  /** `name: N inputs, R/s, worst W ms`. */
  summary(): string {
    const perSecond = this.#totalMs > 0 ? Math.round((this.#count * 1000) / this.#totalMs) : 0;
    return `${this.name}: ${this.#count} inputs, ${perSecond}/s, worst ${this.#worstMs.toFixed(2)} ms`;
  }
}

/**
 * One mutation of a seed input: `[kind, at, byte]`. Kinds (modulo 6): flip a bit of the byte at
 * `at`, overwrite it with `byte`, insert `byte`, delete it, duplicate the `byte` bytes from `at`, or
 * insert a run of `byte` repeated up to 4 096 times. `at` is taken modulo the length.
 */
export type Mutation = readonly [kind: number, at: number, byte: number];

/** `seed` with `mutations` applied in order (a new buffer). */
export function mutate(seed: Buffer, mutations: readonly Mutation[]): Buffer {
  let out = Buffer.from(seed);
  for (const [kind, at, byte] of mutations) {
    const i = out.length === 0 ? 0 : at % out.length;
    const b = byte & 0xff;
    switch (kind % 6) {
      case 0:
        if (out.length > 0) out[i] = (out[i] as number) ^ (1 << (b % 8));
        break;
      case 1:
        if (out.length > 0) out[i] = b;
        break;
      case 2:
        out = Buffer.concat([out.subarray(0, i), Buffer.from([b]), out.subarray(i)]);
        break;
      case 3:
        out = Buffer.concat([out.subarray(0, i), out.subarray(i + 1)]);
        break;
      case 4:
        out = Buffer.concat([out.subarray(0, i), out.subarray(i, i + b), out.subarray(i)]);
        break;
      default:
        out = Buffer.concat([out.subarray(0, i), Buffer.alloc(1 + ((at >>> 8) % 4096), b), out.subarray(i)]);
    }
  }
  return out;
}
