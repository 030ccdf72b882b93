// The store room: keys, worker tokens and usage behind one interface; SQLite is its only implementation.
export * from './store.js';
export { SqliteStore, STORE_FILE } from './sqlite-store.js';
export { UsageBatcher } from './usage-batcher.js';
export { defaultDataDir } from './data-dir.js';
