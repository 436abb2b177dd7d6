export {
  type AdapterContractOptions,
  type AdapterRig,
  type AdapterSupports,
  adapterContractSuite,
  type ContractAdapter,
  type RigFactory,
} from './contract-suite.js';
export { MockAdapter, type MockAdapterOptions } from './mock-adapter.js';
