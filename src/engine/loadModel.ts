import fs from 'node:fs';
import path from 'node:path';
import { getLlama, resolveModelFile, type Llama, type LlamaModel } from 'node-llama-cpp';
import { UserError } from '../errors.js';

export interface ResolveModelOptions {
  /** A local .gguf path or an `hf:` URI. */
  model: string;
  /** Where `hf:` models are stored. */
  modelsDir: string;
  /** Download progress, 0..1 with sizes in bytes. */
  onProgress?: (status: { downloadedSize: number; totalSize: number }) => void;
  /** Told once when a download starts (the file is not on disk). */
  onDownloadStart?: () => void;
  /** Give up on a download that has made no progress for this long. Default 15 s. */
  stallTimeoutMs?: number;
}

/**
 * Finds the model file: a local path must exist; an `hf:` URI is looked up in modelsDir first
 * (without touching the network) and downloaded only when missing, failing clearly when offline.
 */
export async function resolveModelPath({ model, modelsDir, onProgress, onDownloadStart, stallTimeoutMs = 15_000 }: ResolveModelOptions): Promise<string> {
  if (!model.startsWith('hf:') && !/^https?:\/\//.test(model)) {
    const filePath = path.resolve(model);
    if (!fs.existsSync(filePath)) {
      throw new UserError(`Model file not found: ${filePath}. Set MODEL to an existing .gguf file or an hf: URI.`);
    }
    return filePath;
  }
  makeModelsDir(modelsDir);
  const local = await withStallTimeout(stallTimeoutMs, (signal) => resolveModelFile(model, { directory: modelsDir, download: false, cli: false, signal })).catch(() => undefined);
  if (local && fs.existsSync(local)) return local;
  try {
    fs.accessSync(modelsDir, fs.constants.W_OK);
  } catch {
    throw new UserError(`MODELS_DIR=${modelsDir} is not writable, so ${model} cannot be downloaded into it. Fix its permissions or set MODELS_DIR to a folder you can write.`);
  }
  onDownloadStart?.();
  try {
    return await withStallTimeout(stallTimeoutMs, (signal, progressed) =>
      resolveModelFile(model, {
        directory: modelsDir,
        cli: false,
        signal,
        onProgress: (status) => {
          progressed();
          onProgress?.(status);
        },
      }),
    );
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC') throw new UserError(`Could not download the model ${model} into ${modelsDir}: the disk is full. Free some space or set MODELS_DIR to a folder on another disk.`);
    const reason = (error instanceof Error ? error.message : String(error)).replace(/\.+$/, '');
    throw new UserError(
      `Could not download the model ${model} into ${modelsDir}: ${reason}. ` +
        'Check the network, or download the .gguf file yourself and set MODEL to its path.',
    );
  }
}

/** Creates MODELS_DIR; a file in its place or a folder that cannot be made is one line, not a stack. */
function makeModelsDir(modelsDir: string): void {
  try {
    fs.mkdirSync(modelsDir, { recursive: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'EEXIST' || code === 'ENOTDIR' ? 'part of that path is a file, not a folder' : `it cannot be created (${code ?? (error as Error).message})`;
    throw new UserError(`MODELS_DIR=${modelsDir}: ${why}. Set MODELS_DIR to a folder you can write (default data/models).`);
  }
}

/** Runs a task with an abort signal that fires when it has not progressed for `timeoutMs`. */
async function withStallTimeout<T>(timeoutMs: number, task: (signal: AbortSignal, progressed: () => void) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let fail: (error: Error) => void = () => {};
  const stalled = new Promise<never>((_, reject) => (fail = reject));
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      const error = new Error(`no progress for ${Math.round(timeoutMs / 1000)} s`);
      controller.abort(error);
      fail(error);
    }, timeoutMs);
  };
  arm();
  try {
    return await Promise.race([task(controller.signal, arm), stalled]);
  } finally {
    clearTimeout(timer);
  }
}

export interface LoadModelOptions {
  modelPath: string;
}

/** Loads a GGUF file on the CPU, checking first that it is one, so a bad file gets a clear error. */
export async function loadModelFile({ modelPath }: LoadModelOptions): Promise<{ llama: Llama; model: LlamaModel }> {
  assertGgufFile(modelPath);
  const llama = await getLlama({ gpu: false, logLevel: 'error' as never, progressLogs: false });
  try {
    // Read the weights into memory instead of mapping the file. Where llama.cpp repacks weights into
    // a layout of its own for this CPU (seen on Intel Xeon with AMX), a mapped file keeps its pages
    // resident beside the repacked copy: two copies. Read once, there is one; elsewhere (AMD EPYC)
    // both ways measure the same RSS and speed (`npm run bench` reports both).
    const model = await llama.loadModel({ modelPath, useMmap: false });
    return { llama, model };
  } catch (error) {
    await llama.dispose();
    const reason = error instanceof Error ? error.message : String(error);
    throw new UserError(`Cannot load the model ${modelPath}: ${reason}. The file may be truncated or corrupt; download it again.`);
  }
}

function assertGgufFile(modelPath: string): void {
  if (!fs.existsSync(modelPath)) throw new UserError(`Model file not found: ${modelPath}. Set MODEL to an existing .gguf file.`);
  const fd = fs.openSync(modelPath, 'r');
  const magic = Buffer.alloc(4);
  const read = fs.readSync(fd, magic, 0, 4, 0);
  fs.closeSync(fd);
  if (read < 4 || magic.toString('latin1') !== 'GGUF') {
    throw new UserError(`Not a GGUF model file: ${modelPath}. Set MODEL to a .gguf file (for example a Qwen2.5-0.5B-Instruct GGUF).`);
  }
}
