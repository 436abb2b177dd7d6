// The gateway process: its wiring, its windows and their process, the control socket, config
// loading and reload, systemd notify and status. The `attache` command is built on this.
export { every, schedulerClock } from './clock-timers.js';
export { type ConfigAdvice, configAdvice } from './config-advice.js';
export { checkConfigFiles } from './config-check.js';
export {
  checkConfig,
  defaultConfigPath,
  type InspectOptions,
  inspectConfig,
  loadConfig,
} from './config-file.js';
export { type ControlHandler, type ControlRequestOptions, ControlServer, controlRequest } from './control.js';
export {
  type ExportProgress,
  type ExportRequest,
  placeFile,
  placeStream,
  progressBar,
  signingKeyInfo,
  stageExport,
} from './export-service.js';
export { Gateway, type GatewayOptions } from './gateway.js';
export type { GatewayPage, GatewayPageContext } from './gateway-control.js';
export { jobsPaths, sameIdentity } from './jobs-paths.js';
export { createLogger, isJournalStream, type LogOptions, syslogPriority } from './log.js';
export { gatewayLockWaitMs, openCache } from './open-cache.js';
export { exportStaging, gatewayPaths, provisioningDir } from './paths.js';
export { parseSerialNumber, readSerialNumber } from './serial-number.js';
export { type GatewayStatus, readStatus, statusLine } from './status.js';
export { readStoredStatus } from './stored-status.js';
export { SystemdNotifier, type SystemdNotifierOptions } from './systemd.js';
export {
  type WindowRecord,
  WindowRunner,
  type WindowRunnerOptions,
  type WindowRunRequest,
} from './window-runner.js';
