/** The names a box's bundle and the maker's scripts need; fixed so that they are the same in every region. */
export const names = {
  gatewayPolicy: 'attache-gateway',
  claimPolicy: 'attache-claim',
  /** The IoT rule; also the Basic Ingest rule name in the gateway policy (`$aws/rules/attache_ingest/…`). */
  ingestRule: 'attache_ingest',
  /** The maker's serial allow-list, one serial a line, in the artifact bucket. */
  allowListKey: 'provisioning/serial-allow-list.txt',
  /** The role alias a gateway exchanges its certificate for upload credentials with (files up). */
  filesRoleAlias: 'attache-files-up',
} as const;
