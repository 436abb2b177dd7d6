export { CaptureDriver, type CaptureDriverOptions } from './capture-driver.js';
export {
  type AwsCredentials,
  CredentialsProviderClient,
  type CredentialsProviderOptions,
} from './credentials-provider.js';
export { deidentifyTextLog } from './deidentify.js';
export {
  FileUploader,
  type FileUploaderOptions,
  type FileUploadReport,
  type MultipartState,
  objectKey,
} from './file-uploader.js';
export {
  FilesUpService,
  type FilesUpServiceOptions,
  type FilesUpStatus,
  type FilesWindowReport,
  startFilesUp,
} from './files-up-service.js';
export { S3Error, S3UploadClient, type S3UploadClientOptions, type UploadedPart } from './s3-client.js';
export { chunkBytes, openBlob, readSealed, SealedWriter, sealBlob } from './sealed-file.js';
export {
  FolderSource,
  type FolderSourceOptions,
  type ScanReport,
  UsbSource,
  type UsbSourceOptions,
} from './sources.js';
export {
  type CapturedFile,
  type CaptureResult,
  type CaptureSource,
  fileEventDetail,
  type RefusedReason,
  UpStore,
  type UpStoreCounts,
  type UpStoreEvent,
  type UpStoreLimits,
  type UpStoreOptions,
} from './up-store.js';
export { copyToStick, type StickProgress, stickFiles } from './usb-stick.js';
