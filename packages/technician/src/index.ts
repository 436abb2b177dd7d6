export { codeName } from './code-names.js';
export type {
  ConfigApplied,
  ConfigCheck,
  DoctorCheck,
  ExportOutcome,
  LiveReading,
  PortInfo,
  ProbeOutcome,
  ProbeProgress,
  TechnicianHost,
  TechnicianStatus,
} from './host.js';
export { type BindAddress, hostHeader, resolveListen } from './listen.js';
export { liveReading } from './live-reading.js';
export {
  loadOrCreateSecret,
  newSecret,
  readSecret,
  rotateSecret,
  secretMatches,
  technicianSecretPath,
} from './secret.js';
export { TechnicianServer, type TechnicianServerOptions } from './server.js';
export { LoginLimiter, SessionStore } from './sessions.js';
