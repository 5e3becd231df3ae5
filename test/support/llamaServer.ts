// A REAL llama.cpp llama-server for the server tier: llama.cpp's own HTTP server from the pinned xllamacpp wheel in
// test/.venv (made by `.ci/llama-server.sh`), started per test file on 127.0.0.1 with a fetched model.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The virtualenv's python; LLAMA_SERVER_PYTHON points elsewhere (another venv with the same wheel). */
export const LLAMA_SERVER_PYTHON = process.env.LLAMA_SERVER_PYTHON || `${ROOT}test/.venv/bin/python`;
const LAUNCHER = `${ROOT}test/support/llama_server.py`;

export const HOW_TO_GET_LLAMA_SERVER =
  `llama-server tests skipped: no ${LLAMA_SERVER_PYTHON} (run \`source .ci/llama-server.sh && install_llama_server\`)`;

/**
 * Whether the server tier can run. Outside CI a missing venv skips it (say HOW_TO_GET_LLAMA_SERVER); in CI (CI=true)
 * it is a failure, like the Redis/PostgreSQL servers: a green CI must have run the tier.
 */
export function llamaServerAvailable(): boolean {
  if (existsSync(LLAMA_SERVER_PYTHON)) return true;
  if (process.env.CI === 'true') throw new Error(`CI=true but ${HOW_TO_GET_LLAMA_SERVER}`);
  return false;
}

export interface LlamaServerOptions {
  /** The GGUF file to serve. */
  modelPath: string;
  /** TCP port on 127.0.0.1. Default: a free one. */
  port?: number;
  /** Slots (llama-server `-np`). Default 1. */
  parallel?: number;
  /** The whole KV cache in tokens (llama-server `-c`); each slot gets contextSize / parallel. Default 2048. */
  contextSize?: number;
  /** CPU threads. Default 1 (the test machine is shared, and llama.cpp's threads spin while they wait). */
  threads?: number;
  /** An API key the server then requires (`Authorization: Bearer KEY`). Default: none. */
  apiKey?: string;
  /** How long loading may take before it counts as failed. Default 180 s. */
  startTimeoutMs?: number;
}

export interface RunningLlamaServer {
  /** http://127.0.0.1:PORT */
  readonly url: string;
  readonly port: number;
  /** SIGTERM, then SIGKILL if it has not gone within 5 s. Safe to call twice. */
  stop(): Promise<void>;
  /** SIGKILL at once: the server dies as a crashed or OOM-killed one does (mid-reply, no goodbye). */
  kill(): Promise<void>;
  /** Start again on the same port with the same settings (after kill() or stop()); resolves once it is healthy. */
  restart(): Promise<void>;
  /** The server's own output so far (stderr and stdout), for failure messages. */
  log(): string;
}

/** Starts llama-server and resolves once it listens and GET /health is ok. */
export async function startLlamaServer(options: LlamaServerOptions): Promise<RunningLlamaServer> {
  const port = options.port ?? (await freePort());
  const url = `http://127.0.0.1:${port}`;
  const args = [
    LAUNCHER,
    '--model', options.modelPath,
    '--port', String(port),
    '--parallel', String(options.parallel ?? 1),
    '--ctx', String(options.contextSize ?? 2048),
    '--threads', String(options.threads ?? 1),
  ];
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (options.apiKey) {
    args.push('--api-key-env', 'LLAMA_SERVER_TEST_API_KEY');
    env.LLAMA_SERVER_TEST_API_KEY = options.apiKey;
  }
  let output = '';
  let child: ChildProcess | undefined;

  const launch = async () => {
    const proc = spawn(LLAMA_SERVER_PYTHON, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    const collect = (chunk: Buffer) => {
      output += chunk.toString();
      // Keep the tail only: a long test's server log would otherwise grow without end.
      if (output.length > 200_000) output = output.slice(-100_000);
    };
    proc.stdout!.on('data', collect);
    proc.stderr!.on('data', collect);
    const deadline = Date.now() + (options.startTimeoutMs ?? 180_000);
    let gone = false;
    void exited.then(() => (gone = true));
    while (Date.now() < deadline) {
      if (gone) throw new Error(`llama-server on ${url} exited while starting (code ${proc.exitCode}):\n${output.slice(-3000)}`);
      if (await healthy(url)) return;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    proc.kill('SIGKILL');
    throw new Error(`llama-server on ${url} was not healthy within ${options.startTimeoutMs ?? 180_000} ms:\n${output.slice(-3000)}`);
  };

  const end = async (signal: NodeJS.Signals) => {
    const proc = child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };

  await launch();
  return {
    url,
    port,
    stop: () => end('SIGTERM'),
    kill: () => end('SIGKILL'),
    async restart() {
      await end('SIGTERM');
      await launch();
    },
    log: () => output,
  };
}

async function healthy(url: string): Promise<boolean> {
  try {
    const response = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) });
    return response.ok && ((await response.json()) as { status?: string }).status === 'ok';
  } catch {
    return false;
  }
}

/** A port nothing listens on right now (the OS picks it; closed again before the server binds it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}
