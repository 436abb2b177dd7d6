export { ArtifactSource, type ArtifactSourceOptions } from './artifact-source.js';
export { switchSymlink } from './atomic-file.js';
export { type ExtractReport, extractBundle } from './bundle-extract.js';
export { ConfigUpdater, type ConfigUpdaterOptions, type HealthReport } from './config-updater.js';
export { FileDeliveryHandler } from './file-delivery.js';
export type {
  ConfigUpdateJob,
  FileDeliveryJob,
  JobArtifact,
  JobDocument,
  SoftwareUpdateJob,
} from './generated/job-document.js';
export type { ApplyContext, JobHandler, JobHandlers } from './handler.js';
export { HttpsFetcher, type HttpsFetcherOptions, type ProgressListener } from './https-fetcher.js';
export { parseJobDocument } from './job-document.js';
export {
  compareVersions,
  type JobAudience,
  type JobManifest,
  type SignJobOptions,
  signJobDocument,
  type UnsignedJobDocument,
  verifyJobManifest,
  verifySignedManifest,
} from './job-manifest.js';
export { type JobPhase, type JobRecord, JobStateStore } from './job-state.js';
export { type FailedJobStatus, JobStatusError } from './job-status-error.js';
export { type JobOutcome, JobsAgent, type JobsAgentOptions, type JobsWindowResult } from './jobs-agent.js';
export {
  type JobExecution,
  type JobExecutionStatus,
  JobsClient,
  type JobsClientOptions,
  JobsRequestRejectedError,
} from './jobs-client.js';
export { applyMergePatch } from './merge-patch.js';
export { JobsTopics, type MqttChannel } from './mqtt-channel.js';
export { askReleaseInstaller } from './release-install-client.js';
export { ReleaseInstaller, type ReleaseInstallerOptions } from './release-installer.js';
export {
  ReleaseTrial,
  type ReleaseTrialOptions,
  type TrialRecord,
  type TrialState,
} from './release-trial.js';
export {
  installReleaseAsRoot,
  type ReleaseInstallAnswer,
  type ReleaseInstallRequest,
  type RootReleaseInstallOptions,
  readOwnFile,
} from './root-release-install.js';
export { verifySignature } from './signature.js';
