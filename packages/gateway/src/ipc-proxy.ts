// A generic request/response proxy over a message channel (the window process's IPC): the caller
// gets an object with one method per allowed name, each call a message answered by one reply; the
// server calls only the methods its allow-list names. So a new capability is one method in one
// interface, and a process that sends anything else is refused.
import { GatewayError, isGatewayError } from '@attache/core';

/** The allow-list of `T`: every method name of `T`, and no other (the compiler checks both). */
export type AllowList<T> = { readonly [K in keyof T]-?: true };

/** A method call sent to the server. */
export interface CallMessage {
  type: 'call';
  id: number;
  method: string;
  args: unknown[];
}

/** The answer to one call: `value`, or `error` with a stable code. */
export interface ReplyMessage {
  type: 'reply';
  id: number;
  value?: unknown;
  error?: { code: string; message: string };
}

/** The caller's side: `api` sends each call through `send`; `settle` takes the replies. */
export class RequestProxy<T extends object> {
  readonly api: T;
  #next = 1;
  readonly #pending = new Map<number, { resolve: (value: unknown) => void; reject: (err: Error) => void }>();
  readonly #send: (call: CallMessage) => void;

  constructor(allowed: AllowList<T>, send: (call: CallMessage) => void) {
    this.#send = send;
    // Own properties, one per allowed name: the api can be spread into another object.
    const methods = Object.keys(allowed).map((method) => [
      method,
      (...args: unknown[]) => this.#call(method, args),
    ]);
    this.api = Object.fromEntries(methods) as T;
  }

  /** Resolves or rejects the call `reply` answers (a GatewayError with its code); ignores unknown ids. */
  settle(reply: ReplyMessage): void {
    const pending = this.#pending.get(reply.id);
    this.#pending.delete(reply.id);
    if (!pending) return;
    if (reply.error)
      pending.reject(new GatewayError(reply.error.code as GatewayError['code'], reply.error.message));
    else pending.resolve(reply.value);
  }

  #call(method: string, args: unknown[]): Promise<unknown> {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#send({ type: 'call', id, method, args });
    });
  }
}

/** Whether `allowed` names `method` (its own names only, never an inherited one). */
export function isAllowed<T>(allowed: AllowList<T>, method: unknown): method is keyof T & string {
  return typeof method === 'string' && Object.hasOwn(allowed, method);
}

/**
 * The server's side: calls `call.method` with `call.args` on the first of `targets` that has it, when
 * `allowed` names it. Rejects TypeError, calling nothing, for any other name (an inherited one such
 * as `constructor` or `__proto__` included) or when `args` is not an array.
 */
export function serveCall<T extends object>(
  allowed: AllowList<T>,
  call: Pick<CallMessage, 'method' | 'args'>,
  ...targets: Partial<T>[]
): Promise<unknown> {
  const { method, args } = call;
  if (!isAllowed(allowed, method) || !Array.isArray(args))
    return Promise.reject(new TypeError(`"${String(method)}" is not a method served here`));
  const owner = targets.find((t) => typeof (t as Record<string, unknown>)[method] === 'function');
  if (!owner) return Promise.reject(new TypeError(`"${method}" has no implementation here`));
  const fn = (owner as Record<string, (...a: unknown[]) => unknown>)[method] as (...a: unknown[]) => unknown;
  return Promise.resolve().then(() => fn.apply(owner, args));
}

/** The reply to call `id` once `served` settled: its value, or its error's code (ATTACHE_INTERNAL when it has none) and message. */
export function replyTo(id: number, served: Promise<unknown>): Promise<ReplyMessage> {
  return served.then(
    (value) => ({ type: 'reply', id, value }),
    (err: unknown) => ({
      type: 'reply',
      id,
      error: {
        code: isGatewayError(err) ? err.code : 'ATTACHE_INTERNAL',
        message: err instanceof Error ? err.message : String(err),
      },
    }),
  );
}
