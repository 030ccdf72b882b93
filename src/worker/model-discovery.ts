// Reads the model list a backend serves: OpenAI-style GET /v1/models, else Ollama's GET /api/tags.
import type { BackendClient } from './backend-client.js';

export async function discoverModels(backend: BackendClient): Promise<string[]> {
  const openai = await getJson(backend, '/v1/models');
  const data = (openai as { data?: { id?: unknown }[] } | undefined)?.data;
  if (Array.isArray(data)) return uniq(data.map((m) => m.id));
  const ollama = await getJson(backend, '/api/tags');
  const models = (ollama as { models?: { name?: unknown; model?: unknown }[] } | undefined)?.models;
  if (Array.isArray(models)) return uniq(models.map((m) => m.name ?? m.model));
  throw new Error('the backend answered neither GET /v1/models nor GET /api/tags with a model list');
}

async function getJson(backend: BackendClient, path: string): Promise<unknown> {
  try {
    const res = await backend.get(path);
    const text = await res.body.text();
    if (res.statusCode !== 200) return undefined;
    return JSON.parse(text);
  } catch (err) {
    if ((err as { code?: string }).code === 'ECONNREFUSED') throw err;
    return undefined;
  }
}

function uniq(xs: unknown[]): string[] {
  return [...new Set(xs.filter((x): x is string => typeof x === 'string' && x.trim() !== '').map((x) => x.trim()))];
}
