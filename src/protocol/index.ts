// Public face of the protocol module: imports nothing else of ours.
export * from './messages.js';
export * from './codec.js';
export * from './headers.js';
export * from './batching.js';
export * from './routes.js';
export * from './body-model.js';
