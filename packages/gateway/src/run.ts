// `@attache/gateway/run`: what `attache run` needs to run a gateway, and no more (not the export
// writer, not the config checks of other commands): the long-running process loads only this at
// idle. Everything here is also exported by the package's main entry.
export { every } from './clock-timers.js';
export { Gateway, type GatewayOptions } from './gateway.js';
export { createLogger } from './log.js';
export { statusLine } from './status.js';
export { SystemdNotifier } from './systemd.js';
