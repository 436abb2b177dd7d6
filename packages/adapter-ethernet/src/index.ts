export { type AllowList, parseAllowList, unmapAddress } from './allow-list.js';
export { bindAddressFor, type InterfaceTable } from './bind-address.js';
export {
  EthernetAdapter,
  type EthernetAdapterOptions,
  type EthernetAdapterStatus,
} from './ethernet-adapter.js';
export { TcpLink } from './tcp-link.js';
export type { ConnectionCounts } from './tcp-transport.js';
