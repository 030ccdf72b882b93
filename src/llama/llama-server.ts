// Runs llama.cpp's llama-server on a tiny generated model (placeholder until the helper lands).
export interface LlamaServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

export async function startLlamaServer(_opts: { alias: string }): Promise<LlamaServer> {
  throw new Error('not yet implemented');
}
