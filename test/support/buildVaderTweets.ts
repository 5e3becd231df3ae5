/**
 * Builds the two tweet files from the VADER corpus (MIT; `tweets_GroundTruth.txt` inside
 * `additional_resources/hutto_ICWSM_2014.tar.gz` of the vaderSentiment 3.3.2 sdist on PyPI):
 * `npx tsx test/support/buildVaderTweets.ts path/to/tweets_GroundTruth.txt`.
 *
 * The mean human rating in [-4, 4] becomes a label as for the other VADER parts (positive at 1.0
 * or above, negative at -1.0 or below, neutral within ±0.3; the rest is left out). Each label's
 * tweets are ordered by the sha256 of their id, a fixed order nobody chose: the first 100 of each
 * label are the held-out chat split (test/fixtures/sentiment-vader-tweets.jsonl, never fitted
 * on), the next 40 are written to calibration-tweets.jsonl in the current folder: those are the
 * lines of src/engine/calibration-set.jsonl whose source is "vader-tweets". The two never share a tweet.
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';

const EVAL_PER_LABEL = 100;
const CALIBRATION_PER_LABEL = 40;

type Label = 'positive' | 'neutral' | 'negative';

function labelOf(rating: number): Label | undefined {
  if (rating >= 1) return 'positive';
  if (rating <= -1) return 'negative';
  if (Math.abs(rating) <= 0.3) return 'neutral';
  return undefined;
}

const unescape = (text: string) => text.replace(/&amp;/g, '&').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').trim();

function main(): void {
  const source = process.argv[2];
  if (!source) throw new Error('usage: buildVaderTweets.ts path/to/tweets_GroundTruth.txt');
  const byLabel: Record<Label, Array<{ id: string; text: string; label: Label; key: string }>> = { positive: [], neutral: [], negative: [] };
  for (const line of readFileSync(source, 'utf8').split(/\r?\n/)) {
    const [id, rating, ...rest] = line.split('\t');
    const text = unescape(rest.join('\t'));
    const label = labelOf(Number(rating));
    if (!id || !text || !label) continue;
    byLabel[label].push({ id, text, label, key: createHash('sha256').update(id).digest('hex') });
  }
  const evalLines: string[] = [];
  const calibrationLines: string[] = [];
  for (const label of ['positive', 'neutral', 'negative'] as const) {
    const ordered = byLabel[label].sort((a, b) => a.key.localeCompare(b.key));
    for (const item of ordered.slice(0, EVAL_PER_LABEL)) {
      evalLines.push(JSON.stringify({ id: `vader-tweet-${item.id}`, lang: 'en', text: item.text, label, tags: ['tweet'] }));
    }
    for (const item of ordered.slice(EVAL_PER_LABEL, EVAL_PER_LABEL + CALIBRATION_PER_LABEL)) {
      calibrationLines.push(JSON.stringify({ text: item.text, label, source: 'vader-tweets' }));
    }
  }
  writeFileSync('test/fixtures/sentiment-vader-tweets.jsonl', `${evalLines.join('\n')}\n`);
  writeFileSync('calibration-tweets.jsonl', `${calibrationLines.join('\n')}\n`);
  process.stdout.write(`${evalLines.length} held-out tweets, ${calibrationLines.length} for the calibration set (in calibration-tweets.jsonl)\n`);
}

main();
