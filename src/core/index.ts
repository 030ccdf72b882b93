// The scheduling core: pure logic, imports only protocol types.
export * from './errors.js';
export * from './scheduler.js';
export { ModelAliases, type ModelAlias } from './model-aliases.js';
export { PRIORITIES, type Priority } from './fair-queue.js';
