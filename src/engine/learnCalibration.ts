// Learns the sentiment calibration for the loaded model at start: the classifier reads every text
// of a small labeled set that ships with the project (test-free data: our own chat messages and
// human-rated snippets and tweets from the MIT-licensed VADER corpus), and a logistic regression
// is fitted on the probabilities of its label words (see LABEL_WORDS in SentimentClassifier). The result is kept in a small JSON file named by the model file's
// hash, the prompt and the set, so a restart with the same model costs one hash of the file.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
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

export interface LearnCalibrationOptions {
  modelPath: string;
  /** Folder for the cached fits. */
  cacheDir: string;
  /** What the classifier's prompt is (instruction, examples, template): part of the cache key. */
  promptKey: string;
  set: ReadonlyArray<LabeledText>;
  labelProbabilities(text: string): Promise<LabelProbabilities>;
  /** Told every few texts while the set is classified (a first start with a new model). */
  onProgress?(done: number, total: number): void;
  /**
   * What the fit reads. Default CALIBRATION_FEATURES ('words'); a reader that gives the three labels
   * alone (no `words`, e.g. from a server's few top log-probabilities) passes 'labels'.
   */
  features?: CalibrationFeatures;
}

/** Bumped whenever the fit or its features change, so an old cache is not read as a new one. */
const FIT_VERSION = 2;

/** What the learned calibration reads (issue 26 measured both; see docs/evaluation-chat.md). */
export const CALIBRATION_FEATURES: CalibrationFeatures = 'words';

export async function learnCalibration(options: LearnCalibrationOptions): Promise<{ calibration: LearnedCalibration; cached: boolean }> {
  const { modelPath, cacheDir, promptKey, set, labelProbabilities, onProgress, features = CALIBRATION_FEATURES } = options;
  const key = createHash('sha256')
    .update(JSON.stringify({ version: FIT_VERSION, model: await fileSha256(modelPath), promptKey, set, features }))
    .digest('hex')
    .slice(0, 32);
  const cacheFile = join(cacheDir, `sentiment-calibration-${key}.json`);
  const cached = await readCached(cacheFile, features);
  if (cached) return { calibration: cached, cached: true };
  const samples = [];
  for (const [index, item] of set.entries()) {
    samples.push({ probabilities: await labelProbabilities(item.text), label: item.label });
    if ((index + 1) % 25 === 0 || index + 1 === set.length) onProgress?.(index + 1, set.length);
  }
  const calibration = fitCalibration(samples, { features });
  await mkdir(cacheDir, { recursive: true });
  // Written whole under a name of its own, then renamed: a crash mid-write never leaves a half file
  // that looks like a fit, and shards learning the same model at once never write into one file.
  const part = `${cacheFile}.${process.pid}.${randomBytes(4).toString('hex')}.part`;
  await writeFile(part, JSON.stringify(calibration));
  await rename(part, cacheFile);
  return { calibration, cached: false };
}

async function readCached(file: string, features: CalibrationFeatures): Promise<LearnedCalibration | undefined> {
  try {
    const value = JSON.parse(await readFile(file, 'utf8')) as LearnedCalibration;
    const finite = (xs: unknown, length: number) => Array.isArray(xs) && xs.length === length && xs.every((x) => typeof x === 'number' && Number.isFinite(x));
    const width = Array.isArray(value.weights?.[0]) ? value.weights[0].length : 0;
    const fitsFeatures = (value.features ?? 'labels') === features;
    if (value.kind === 'learned' && fitsFeatures && width > 0 && finite(value.bias, 3) && Array.isArray(value.weights) && value.weights.length === 3 && value.weights.every((row) => finite(row, width))) return value;
  } catch {
    // No cache yet, or an unreadable one: learn again.
  }
  return undefined;
}

/** The sha256 of a file, read as a stream (model files are hundreds of MB). */
export async function fileSha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
