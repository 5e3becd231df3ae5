// Learns the sentiment calibration for the loaded model at start: the classifier reads every text
// of a small labeled set that ships with the project (test-free data: our own chat messages and
// human-rated snippets and tweets from the MIT-licensed VADER corpus), and a logistic regression
// is fitted on the probabilities of its label words (see LABEL_WORDS in SentimentClassifier). The
// result is kept in a small JSON file named by the model file's
// hash, the prompt and the set, so a restart with the same model costs one hash of the file.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SENTIMENT_LABELS, type SentimentLabel } from '../domain.js';
import { fitCalibration, type CalibrationFeatures, type LabelProbabilities, type LearnedCalibration } from './sentimentCalibration.js';

export interface LabeledText {
  text: string;
  label: SentimentLabel;
}

/** The labeled set shipped with the project (src/engine/calibration-set.jsonl). */
export function loadCalibrationSet(path = new URL('./calibration-set.jsonl', import.meta.url)): LabeledText[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line.trim() && !line.startsWith('//'))
    .map((line) => {
      const { text, label } = JSON.parse(line) as LabeledText;
      if (typeof text !== 'string' || !SENTIMENT_LABELS.includes(label)) throw new Error(`calibration set: bad line ${line.slice(0, 80)}`);
      return { text, label };
    });
}

/**
 * The date the calibration's cache key is rendered with, in process and on a server: templates that
 * print today's date (Llama 3.2, SmolLM3) would otherwise give every new day a new key, and a new
 * learning run.
 */
export const CALIBRATION_KEY_DATE = new Date('2000-01-01T12:00:00Z');

export interface CalibrationCacheOptions {
  /** The model file, hashed into the cache key; not needed when `identity` is given. */
  modelPath?: string;
  /**
   * Names the model instead of its file's hash (a model on an inference server: the server URL
   * without credentials and the model's name or path there), so each server and model learns its own.
   */
  identity?: string;
  /** Folder for the cached fits. */
  cacheDir: string;
  /**
   * What the classifier's prompt is (instruction, examples, template): part of the cache key. It
   * must not change from day to day: render it with a fixed date (see Engine).
   */
  promptKey: string;
  set: ReadonlyArray<LabeledText>;
  /**
   * What the fit reads. Default CALIBRATION_FEATURES ('words'); a reader that gives the three labels
   * alone (no `words`, e.g. from a server's few top log-probabilities) passes 'labels'.
   */
  features?: CalibrationFeatures;
}

export interface LearnCalibrationOptions extends CalibrationCacheOptions {
  /** The classifier's label probabilities for one text: the only thing learning asks of a model. */
  labelProbabilities(text: string): Promise<LabelProbabilities>;
  /** Told every few texts while the set is classified (a first start with a new model). */
  onProgress?(done: number, total: number): void;
  /** Told once when the fit could not be saved (the fit is used all the same, and learned again next start). */
  onSaveFailed?(cacheDir: string, error: Error): void;
}

/** Bumped whenever the fit or its features change, so an old cache is not read as a new one. */
const FIT_VERSION = 2;

/** What the learned calibration reads (issue 26 measured both; see docs/evaluation-chat.md). */
export const CALIBRATION_FEATURES: CalibrationFeatures = 'words';

/** A `.part` file older than this was left by a crash (a write takes milliseconds). */
const STALE_PART_MS = 10 * 60_000;

const FIT_FILE = /^sentiment-calibration-[0-9a-f]{32}\.json$/;

/** What a fit file holds besides the fit: which model and key it belongs to, so old ones can be told apart. */
interface StoredFit extends LearnedCalibration {
  modelPath?: string;
  modelSha256?: string;
  identity?: string;
}

/** The cached fit for this model and prompt, when there is one; never classifies anything. */
export async function readCachedCalibration(options: CalibrationCacheOptions): Promise<LearnedCalibration | undefined> {
  const { cacheFile } = await cacheFileOf(options);
  return readCached(cacheFile, options.features ?? CALIBRATION_FEATURES);
}

export async function learnCalibration(options: LearnCalibrationOptions): Promise<{ calibration: LearnedCalibration; cached: boolean; saved: boolean }> {
  const { cacheDir, set, labelProbabilities, onProgress, onSaveFailed, features = CALIBRATION_FEATURES } = options;
  const { cacheFile, modelSha256 } = await cacheFileOf(options);
  const { identity } = options;
  const cached = await readCached(cacheFile, features);
  if (cached) return { calibration: cached, cached: true, saved: true };
  const samples = [];
  for (const [index, item] of set.entries()) {
    samples.push({ probabilities: await labelProbabilities(item.text), label: item.label });
    if ((index + 1) % 25 === 0 || index + 1 === set.length) onProgress?.(index + 1, set.length);
  }
  const calibration = fitCalibration(samples, { features });
  const stored: StoredFit = identity !== undefined ? { ...calibration, identity } : { ...calibration, modelPath: options.modelPath, modelSha256 };
  // Written whole under a name of its own, then renamed: a crash mid-write never leaves a half file
  // that looks like a fit, and shards learning the same model at once never write into one file.
  const part = `${cacheFile}.${process.pid}.${randomBytes(4).toString('hex')}.part`;
  try {
    await mkdir(cacheDir, { recursive: true });
    await writeFile(part, JSON.stringify(stored));
    await rename(part, cacheFile);
  } catch (error) {
    // A folder that cannot be written (a file in its place, read-only, full) costs the cache, not the fit.
    await rm(part, { force: true }).catch(() => undefined);
    onSaveFailed?.(cacheDir, error as Error);
    return { calibration, cached: false, saved: false };
  }
  await removeStaleFits(cacheDir, cacheFile, identity !== undefined ? { identity } : { modelSha256 });
  return { calibration, cached: false, saved: true };
}

async function cacheFileOf({ modelPath, identity, cacheDir, promptKey, set, features = CALIBRATION_FEATURES }: CalibrationCacheOptions): Promise<{ cacheFile: string; modelSha256?: string }> {
  if (identity === undefined && modelPath === undefined) throw new Error('learnCalibration needs a modelPath or an identity.');
  const modelSha256 = identity === undefined ? await fileSha256(modelPath!) : undefined;
  const model = identity !== undefined ? `identity:${identity}` : modelSha256;
  const key = createHash('sha256').update(JSON.stringify({ version: FIT_VERSION, model, promptKey, set, features })).digest('hex').slice(0, 32);
  return { cacheFile: join(cacheDir, `sentiment-calibration-${key}.json`), modelSha256 };
}

/**
 * Removes what a fit just written replaces: `.part` files a crash left, fits of this model under an
 * older prompt or set, fits of model files that are gone, and fits saved before fits named their model
 * (those were keyed on a prompt that could hold the start date, so most are dead). Best effort.
 */
async function removeStaleFits(cacheDir: string, keep: string, model: { modelSha256?: string; identity?: string }): Promise<void> {
  let names: string[];
  try {
    names = await readdir(cacheDir);
  } catch {
    return;
  }
  for (const name of names) {
    const file = join(cacheDir, name);
    if (file === keep) continue;
    try {
      if (name.endsWith('.part')) {
        if (Date.now() - (await stat(file)).mtimeMs > STALE_PART_MS) await rm(file, { force: true });
        continue;
      }
      if (!FIT_FILE.test(name)) continue;
      const fit = JSON.parse(await readFile(file, 'utf8')) as StoredFit;
      // A server's fit is replaced only by a newer fit for the same server and model (the server's files are not ours to check).
      const gone =
        fit.identity !== undefined
          ? fit.identity === model.identity
          : fit.modelPath === undefined || (model.modelSha256 !== undefined && fit.modelSha256 === model.modelSha256) || !(await exists(fit.modelPath));
      if (gone) await rm(file, { force: true });
    } catch {
      // Unreadable or half-written by another process: leave it.
    }
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function readCached(file: string, features: CalibrationFeatures): Promise<LearnedCalibration | undefined> {
  try {
    const value = JSON.parse(await readFile(file, 'utf8')) as StoredFit;
    const finite = (xs: unknown, length: number) => Array.isArray(xs) && xs.length === length && xs.every((x) => typeof x === 'number' && Number.isFinite(x));
    const width = Array.isArray(value.weights?.[0]) ? value.weights[0].length : 0;
    const fitsFeatures = (value.features ?? 'labels') === features;
    if (value.kind === 'learned' && fitsFeatures && width > 0 && finite(value.bias, 3) && Array.isArray(value.weights) && value.weights.length === 3 && value.weights.every((row) => finite(row, width))) {
      return { kind: 'learned', weights: value.weights, bias: value.bias, ...(value.features === undefined ? {} : { features: value.features }) };
    }
  } catch {
    // No cache yet, or an unreadable one: learn again.
  }
  return undefined;
}

const hashes = new Map<string, Promise<string>>();

/** The sha256 of a file, read as a stream (model files are hundreds of MB); remembered while the file's size and time stay. */
export async function fileSha256(path: string): Promise<string> {
  const { size, mtimeNs } = await stat(path, { bigint: true });
  const memo = `${path}\u0000${size}\u0000${mtimeNs}`;
  let hash = hashes.get(memo);
  if (!hash) {
    hash = (async () => {
      const digest = createHash('sha256');
      for await (const chunk of createReadStream(path)) digest.update(chunk as Buffer);
      return digest.digest('hex');
    })();
    hashes.set(memo, hash);
    hash.catch(() => hashes.delete(memo));
  }
  return hash;
}
