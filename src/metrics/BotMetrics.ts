import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { SENTIMENT_LABELS, type SentimentLabel } from '../domain.js';
import type { Lane } from '../engine/GenerationQueue.js';
import type { SessionObserver } from '../sessions/SessionObserver.js';

/** How a message ended, as counted for /status and /metrics. */
export const MESSAGE_OUTCOMES = ['answered', 'unanswered', 'reacted', 'stopped', 'busy', 'limited', 'failed'] as const;
export type MessageOutcome = (typeof MESSAGE_OUTCOMES)[number];

export interface BotMetricsOptions {
  /** Jobs waiting or running per queue lane. */
  queueDepth(lane: Lane): number;
  /** Replies generating right now (at most PARALLEL_REPLIES). Default: not reported. */
  runningReplies?(): number;
  /** Channels whose KV cache is warm now. Default: not reported. */
  warmChannels?(): number;
  /** The clock of the last hour's labels, epoch ms. Default Date.now. */
  now?: () => number;
}

/** What /status shows of the recent work. */
export interface MetricsSnapshot {
  uptimeSeconds: number;
  queue: Record<Lane, number>;
  /** Replies generating right now. */
  runningReplies?: number;
  warmChannels?: number;
  /** Median of the last RECENT sentiment calls, in ms. */
  sentimentP50Ms?: number;
  /** Generated tokens per second of one reply over the last RECENT replies (replies running together each count their own time). */
  replyTokensPerSecond?: number;
  outcomes: Record<MessageOutcome, number>;
  storeErrors: number;
  /** Labels of the channel messages classified in the last hour (all channels). */
  lastHourLabels: Record<SentimentLabel, number>;
}

const RECENT = 100;
const LANES: Lane[] = ['sentiment', 'reply'];

/**
 * The bot's counters and timings, kept in one prom-client registry (served by the metrics server)
 * and in short recent windows (shown by /status). The sessions report to it as their observer, the
 * Discord edge counts how each message ended.
 */
export class BotMetrics implements SessionObserver {
  readonly registry = new Registry();
  private readonly started = Date.now();
  private readonly sentimentMs: number[] = [];
  private readonly replies: { tokens: number; ms: number }[] = [];
  private readonly counts = Object.fromEntries(MESSAGE_OUTCOMES.map((outcome) => [outcome, 0])) as Record<MessageOutcome, number>;
  private storeErrorCount = 0;
  private readonly messages: Counter<'outcome'>;
  private readonly storeErrors: Counter;
  private readonly sentimentSeconds: Histogram;
  private readonly ttftSeconds: Histogram;
  private readonly replyTokens: Counter;
  private readonly labels: Counter<'label'>;
  /** Labels per minute (epoch minute -> counts) over the last hour: memory stays 60 entries at any rate. */
  private readonly labelMinutes = new Map<number, Record<SentimentLabel, number>>();
  private readonly now: () => number;

  constructor(private readonly options: BotMetricsOptions) {
    const registers = [this.registry];
    this.now = options.now ?? Date.now;
    collectDefaultMetrics({ register: this.registry });
    this.messages = new Counter({ name: 'moodbot_messages_total', help: 'Messages handled, by how they ended.', labelNames: ['outcome'], registers });
    for (const outcome of MESSAGE_OUTCOMES) this.messages.inc({ outcome }, 0);
    this.storeErrors = new Counter({ name: 'moodbot_store_errors_total', help: 'History writes that failed (the turn is kept and retried).', registers });
    this.sentimentSeconds = new Histogram({
      name: 'moodbot_sentiment_seconds',
      help: 'Time of one sentiment call.',
      buckets: [0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2],
      registers,
    });
    this.ttftSeconds = new Histogram({
      name: 'moodbot_reply_first_token_seconds',
      help: 'Time from a reply starting to its first text.',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16],
      registers,
    });
    this.replyTokens = new Counter({ name: 'moodbot_reply_tokens_total', help: 'Tokens generated for replies.', registers });
    this.labels = new Counter({ name: 'moodbot_sentiment_total', help: 'Channel messages classified, by label (on-demand /sentiment texts not counted).', labelNames: ['label'], registers });
    for (const label of SENTIMENT_LABELS) this.labels.inc({ label }, 0);
    const metrics = this;
    new Gauge({
      name: 'moodbot_reply_tokens_per_second',
      help: `Generated tokens per second over the last ${RECENT} replies.`,
      registers,
      collect() {
        this.set(metrics.tokensPerSecond() ?? 0);
      },
    });
    new Gauge({
      name: 'moodbot_queue_depth',
      help: 'Jobs waiting or running, per queue lane.',
      labelNames: ['lane'],
      registers,
      collect() {
        for (const lane of LANES) this.set({ lane }, options.queueDepth(lane));
      },
    });
    if (options.runningReplies) {
      const running = options.runningReplies;
      new Gauge({
        name: 'moodbot_replies_running',
        help: 'Replies generating right now (at most PARALLEL_REPLIES).',
        registers,
        collect() {
          this.set(running());
        },
      });
    }
    if (options.warmChannels) {
      const warm = options.warmChannels;
      new Gauge({
        name: 'moodbot_warm_channels',
        help: 'Channels whose model cache is warm.',
        registers,
        collect() {
          this.set(warm());
        },
      });
    }
  }

  outcome(outcome: MessageOutcome): void {
    this.counts[outcome]++;
    this.messages.inc({ outcome });
  }

  sentimentDone(ms: number): void {
    keepRecent(this.sentimentMs, ms);
    this.sentimentSeconds.observe(ms / 1000);
  }

  sentimentLabelled(label: SentimentLabel): void {
    this.labels.inc({ label });
    const minute = Math.floor(this.now() / 60_000);
    const counts = this.labelMinutes.get(minute) ?? { positive: 0, neutral: 0, negative: 0 };
    counts[label]++;
    this.labelMinutes.set(minute, counts);
    for (const key of this.labelMinutes.keys()) if (key <= minute - 60) this.labelMinutes.delete(key);
  }

  replyDone({ ttftMs, ms, generatedTokens }: { ttftMs?: number; ms: number; generatedTokens?: number }): void {
    if (ttftMs !== undefined) this.ttftSeconds.observe(ttftMs / 1000);
    if (generatedTokens === undefined) return;
    keepRecent(this.replies, { tokens: generatedTokens, ms });
    this.replyTokens.inc(generatedTokens);
  }

  storeFailed(): void {
    this.storeErrorCount++;
    this.storeErrors.inc();
  }

  snapshot(): MetricsSnapshot {
    const sorted = [...this.sentimentMs].sort((a, b) => a - b);
    return {
      uptimeSeconds: Math.round((Date.now() - this.started) / 1000),
      queue: { sentiment: this.options.queueDepth('sentiment'), reply: this.options.queueDepth('reply') },
      runningReplies: this.options.runningReplies?.(),
      warmChannels: this.options.warmChannels?.(),
      sentimentP50Ms: sorted.length > 0 ? sorted[Math.floor((sorted.length - 1) / 2)] : undefined,
      replyTokensPerSecond: this.tokensPerSecond(),
      outcomes: { ...this.counts },
      storeErrors: this.storeErrorCount,
      lastHourLabels: this.lastHourLabels(),
    };
  }

  private lastHourLabels(): Record<SentimentLabel, number> {
    const since = Math.floor(this.now() / 60_000) - 60;
    const total = { positive: 0, neutral: 0, negative: 0 };
    for (const [minute, counts] of this.labelMinutes) {
      if (minute <= since) continue;
      for (const label of SENTIMENT_LABELS) total[label] += counts[label];
    }
    return total;
  }

  private tokensPerSecond(): number | undefined {
    const tokens = this.replies.reduce((sum, reply) => sum + reply.tokens, 0);
    const ms = this.replies.reduce((sum, reply) => sum + reply.ms, 0);
    return ms > 0 ? (tokens * 1000) / ms : undefined;
  }
}

function keepRecent<T>(list: T[], value: T): void {
  list.push(value);
  if (list.length > RECENT) list.shift();
}
