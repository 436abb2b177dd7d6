// `@attache/gateway/client`: what a command needs to find and ask a gateway, without loading the
// gateway itself (its cache, normalizer, adapters): config loading and checks, the control socket's
// client, the data directory's layout. Everything here is also exported by the package's main entry.
export { type ConfigAdvice, configAdvice } from './config-advice.js';
export {
  checkConfig,
  defaultConfigPath,
  type InspectOptions,
  inspectConfig,
  loadConfig,
} from './config-file.js';
export { type ControlRequestOptions, controlRequest } from './control.js';
export { jobsPaths } from './jobs-paths.js';
export { gatewayPaths, provisioningDir } from './paths.js';
export type { GatewayStatus } from './status.js';
