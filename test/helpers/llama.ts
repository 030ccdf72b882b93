// Test-side access to the real llama.cpp backend (implemented in src/llama so the demo shares it).
export * from '../../src/llama/llama-server.js';
