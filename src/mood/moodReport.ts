import { SENTIMENT_LABELS, type SentimentLabel } from '../domain.js';
import { UserError } from '../errors.js';
import type { HistoryStore } from '../history/HistoryStore.js';
import { hourName, rangeName, type MoodChartOptions } from './moodChart.js';
import { MoodChartRenderer } from './MoodChartRenderer.js';
import { moodRangeStart, percentShares, summarizeMood, type MoodSummary } from './moodSummary.js';

export const MOOD_MAX_DAYS = 30;
export const MOOD_DEFAULT_DAYS = 7;

export interface MoodReportOptions {
  store: Pick<HistoryStore, 'loadMood'>;
  channelId: string;
  /** Shown in the title and the text, without the #. */
  channelName: string;
  /** 1..30. Default 7. */
  days?: number;
  /** The emoji of each label (SENTIMENT_EMOJIS). */
  emojis: Readonly<Record<SentimentLabel, string>>;
  /** Epoch ms. Default Date.now(). */
  now?: number;
  /** Draws the chart. Default: one MoodChartRenderer (a worker thread) shared by the process. */
  charts?: { render(options: MoodChartOptions): Promise<Buffer> };
}

let sharedCharts: MoodChartRenderer | undefined;

export interface MoodReport {
  summary: MoodSummary;
  /** One line: shares, count, busiest hour; or, with no records, the sentence that says so. */
  text: string;
  /** The chart; absent when the range holds no records (an empty chart says less than the sentence). */
  png?: Buffer;
  /** The chart in words, for screen readers (the attachment's description): labels as words, not emoji. */
  alt?: string;
}

/**
 * A channel's mood over the last `days`: its records read from the store, counted, and drawn. Works
 * on the store alone, never through the generation queue, so a running reply never delays it; and
 * the drawing runs on a worker thread, so it never holds up the model either.
 */
export async function moodReport({ store, channelId, channelName, days = MOOD_DEFAULT_DAYS, emojis, now = Date.now(), charts }: MoodReportOptions): Promise<MoodReport> {
  if (!Number.isInteger(days) || days < 1 || days > MOOD_MAX_DAYS) throw new UserError(`Pick from 1 to ${MOOD_MAX_DAYS} days (got ${days}).`);
  const records = await store.loadMood(channelId, moodRangeStart(days, now).from);
  const summary = summarizeMood(records, { days, now });
  if (summary.total === 0) {
    return { summary, text: `No message in #${channelName} has a mood on record for the ${rangeName(days)}, so there is nothing to chart yet.` };
  }
  const shares = percentShares(summary.counts);
  const parts = [
    SENTIMENT_LABELS.map((label) => `${emojis[label]} ${shares[label]}%`).join(' · '),
    `${summary.total} ${summary.total === 1 ? 'message' : 'messages'} in #${channelName}, ${rangeName(days)}`,
  ];
  if (summary.busiestHour) parts.push(`busiest hour ${hourName(summary.busiestHour.start)} UTC (${summary.busiestHour.count})`);
  const png = await (charts ?? (sharedCharts ??= new MoodChartRenderer())).render({ channelName, days, summary });
  const alt = `Bar chart of the mood in #${channelName}, ${rangeName(days)}, per ${summary.unit}: ${SENTIMENT_LABELS.map((label) => `${label} ${shares[label]}%`).join(', ')} of ${summary.total} ${summary.total === 1 ? 'message' : 'messages'}.`;
  return { summary, text: parts.join(' · '), png, alt };
}
