// The scheduling core: pure logic, imports only protocol types.
export * from './errors.js';
export * from './scheduler.js';
export { ModelAliases, type ModelAlias } from './model-aliases.js';
export { PRIORITIES, type Priority } from './fair-queue.js';
export { DEFAULT_ROUTING_CONFIG, ROUTE_REASONS, ROUTING_MODES, Router, type RouteReason, type RoutingConfig, type RoutingHints, type RoutingMode } from './routing.js';
