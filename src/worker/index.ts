// Public face of the worker module.
export { WorkerAgent } from './worker-agent.js';
export { DEFAULT_WORKER_CONFIG, type WorkerConfig } from './config.js';
export { workerConnectUrl } from './relay-url.js';
export { chooseEgress, type EgressRoutes, type ProxyChoice } from './egress-proxy.js';
export { ModelNames, parseModelEntries, parseModelMap, type ModelEntry } from './model-names.js';
export type { BackendSpec } from './local-backend.js';
