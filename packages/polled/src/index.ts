export type { Framer, PolledSessionOptions, PolledTiming, Request } from './polled-session.js';
export { PolledSession } from './polled-session.js';
