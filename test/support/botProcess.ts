// `npm start` as a child process (node --import tsx src/index.ts) with exactly the settings a test gives: for the
// tiers that need the real start-up path (INFERENCE_URL, SHARDS) rather than the in-process harness.
import { spawn, type ChildProcess } from 'node:child_process';

/** One JSON log line of the bot (stderr). */
export interface BotLogLine {
  message: string;
  level?: string;
  shard?: number | 'manager';
  pid?: number;
  messageId?: string;
  [key: string]: unknown;
}

export interface BotProcess {
  readonly child: ChildProcess;
  /** Everything it wrote so far (stdout and stderr). */
  output(): string;
  /** Its JSON log lines so far. */
  lines(): BotLogLine[];
  /** The shards (or undefined, unsharded) that logged "message answered" for this message. */
  answeredBy(messageId: string): Array<number | 'manager' | undefined>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, and SIGKILL for it and its shards if it has not exited within 15 s. */
  stop(): Promise<void>;
}

/** Keys the bot reads that a developer's shell or .env could set: cleared unless the test sets them (blank is unset). Not
 * SHARDS: discord.js parses it as JSON in every client, so it is only ever set to a real value. */
const CLEARED = [
  'GUILD_ID', 'CHANNEL_IDS', 'REPLY_MODE', 'ATTACHMENT_MAX_KB', 'METRICS_PORT', 'METRICS_HOST', 'MOOD_RETENTION_DAYS',
  'INFERENCE_URL', 'INFERENCE_API', 'INFERENCE_API_KEY', 'INFERENCE_MODEL', 'INFERENCE_PARALLEL', 'INFERENCE_TIMEOUT_MS',
  'INFERENCE_IDLE_TIMEOUT_MS',
  'SYSTEM_PROMPT', 'CHAT_TEMPLATE_FILE', 'THINKING',
];

/**
 * For a process a test starts: a bot or chat on a model with no learned fit learns one in the
 * background for as long as it runs (300 texts). The tests' processes live a few seconds, so each
 * learned part of a fit and threw it away, taking CPU from the test running beside it (the
 * terminal chat file: 46 s of CPU, 24 without). The background learning has its own tests
 * (unit/backgroundCalibration, and e2e/process in a real start).
 */
export const NO_BACKGROUND_CALIBRATION = { SENTIMENT_CALIBRATION: 'off' } as const;

/** Starts `src/index.ts` with these settings (values set here win over any .env). */
export function startBotProcess(env: Record<string, string>): BotProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/index.ts'], {
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      ...Object.fromEntries(CLEARED.map((key) => [key, ''])),
      THREADS: '1',
      LOG_LEVEL: 'info',
      RATE_LIMIT_MESSAGES: '0',
      // See NO_BACKGROUND_CALIBRATION: a test that is about the calibration sets it.
      ...NO_BACKGROUND_CALIBRATION,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const lines = (): BotLogLine[] =>
    output
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .flatMap((line) => {
        try {
          return [JSON.parse(line) as BotLogLine];
        } catch {
          return [];
        }
      });
  return {
    child,
    output: () => output,
    lines,
    answeredBy: (messageId) => lines().filter((line) => line.message === 'message answered' && line.messageId === messageId).map((line) => line.shard as number | 'manager' | undefined),
    exited,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        // A shard manager's children would outlive it.
        for (const line of lines()) if (line.message === 'shard started' && typeof line.pid === 'number') killQuietly(line.pid);
      }, 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}
