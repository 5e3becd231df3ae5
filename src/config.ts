import os from 'node:os';
import { z } from 'zod';
import { CALIBRATION_MODES, INFERENCE_APIS, REPLY_MODES, type CalibrationMode, type SentimentLabel } from './domain.js';
import { UserError } from './errors.js';
import { maskCredentials } from './logger.js';

const DEFAULT_SYSTEM_PROMPT =
  'You are a warm, empathetic assistant in a Discord channel. Several people may talk here; ' +
  "each user message starts with the speaker's name. Reply briefly and kindly, in the language the user writes in.";

/**
 * Replies generating at once, decoded together; 4 from the burst bench on 2 cores (the last of four
 * channels answered 4× sooner, 1.28× the messages per minute, reaction p95 1.16× the value with 1):
 * see docs/parallel-replies.md.
 */
export const DEFAULT_PARALLEL_REPLIES = 4;

/** THINKING=on: a thought of up to this many tokens (about a minute of a 0.5B model on 2 cores). */
const DEFAULT_THOUGHT_TOKENS = 512;
/** Tokens kept for the system prompt and the template around the history. */
const PROMPT_ROOM = 256;
/** THINKING: the least room its thought may leave the history (a few turns). */
const MIN_HISTORY_ROOM = 256;

const integer = (min: number, max: number) => {
  // zod's own messages ("expected number, received NaN") say what broke but not what to write instead.
  const error = `must be a whole number from ${min} to ${max}`;
  return z.coerce.number({ error }).int({ error }).min(min, { error }).max(max, { error });
};
const optionalText = z.string().trim().transform((value) => value || undefined).optional();

const schema = z.object({
  DISCORD_TOKEN: optionalText,
  DISCORD_API_URL: z.url({ message: 'must be an http(s) URL such as https://discord.com/api' }).optional(),
  GUILD_ID: z.string().regex(/^\d{5,25}$/, 'must be a numeric Discord id').optional(),
  CHANNEL_IDS: z
    .string()
    .optional()
    .transform((value) => (value ?? '').split(',').map((id) => id.trim()).filter(Boolean))
    .refine((ids) => ids.every((id) => /^\d{5,25}$/.test(id)), 'must be comma-separated numeric channel ids'),
  MODEL: z.string().trim().min(1).default('hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q8_0'),
  MODELS_DIR: z.string().trim().min(1).default('data/models'),
  DATABASE_URL: z
    .string()
    .trim()
    .regex(/^(sqlite|redis|postgres|postgresql):\/\/.+/, 'must be sqlite://<file>, redis://[:password@]host[:port] or postgresql://user:password@host[:port]/database')
    .default('sqlite://data/history.sqlite'),
  THREADS: integer(1, 256).default(os.availableParallelism()),
  CONTEXT_SIZE: integer(512, 32768).default(2048),
  HISTORY_MAX_TOKENS: integer(64, 32768).default(1280),
  REPLY_MAX_TOKENS: integer(1, 4096).default(256),
  WARM_CHANNELS: integer(1, 64).default(8),
  PARALLEL_REPLIES: integer(1, 64).default(DEFAULT_PARALLEL_REPLIES),
  QUEUE_MAX: integer(1, 100_000).default(64),
  MESSAGE_MAX_CHARS: integer(1, 100_000).default(2000),
  RATE_LIMIT_MESSAGES: integer(0, 1000).default(5),
  RATE_LIMIT_WINDOW_SECONDS: integer(1, 3600).default(10),
  SYSTEM_PROMPT: z.string().trim().min(1).default(DEFAULT_SYSTEM_PROMPT),
  SENTIMENT_EMOJIS: z
    .string()
    .default('😄,😐,😢')
    .transform((value) => value.split(',').map((emoji) => emoji.trim()))
    .refine((emojis) => emojis.length === 3 && emojis.every(Boolean), 'must be three comma-separated emojis: positive,neutral,negative'),
  SENTIMENT_CALIBRATION: z
    .enum([...CALIBRATION_MODES, 'on'], { error: `must be one of ${CALIBRATION_MODES.join(', ')}` })
    .default('learned')
    // `on` is what earlier versions wrote in .env: calibration on, now the learned kind.
    .transform((value): CalibrationMode => (value === 'on' ? 'learned' : value)),
  // Reasoning models (Qwen3, SmolLM3, DeepSeek-R1-Distill): off renders the template's own off
  // switch; on, or a number, lets the model think that many tokens (on: 512) beyond REPLY_MAX_TOKENS.
  THINKING: z
    .union([z.enum(['off', 'on']), integer(16, 8192)], { error: 'must be off, on, or a thought budget in tokens from 16 to 8192' })
    .default('off')
    .transform((value): 'off' | number => (value === 'on' ? DEFAULT_THOUGHT_TOKENS : value)),
  // A Jinja chat template file used instead of the model file's (for GGUFs without one, or with a broken one).
  CHAT_TEMPLATE_FILE: z.string().trim().min(1).optional(),
  CHAT_CHANNEL: z.string().trim().min(1).default('terminal'),
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
  REPLY_MODE: z.enum(REPLY_MODES, { error: `must be one of ${REPLY_MODES.join(', ')}` }).default('all'),
  ATTACHMENT_MAX_KB: integer(0, 1024).default(32),
  METRICS_PORT: integer(0, 65535).optional(),
  METRICS_HOST: z.string().trim().min(1).default('127.0.0.1'),
  MOOD_RETENTION_DAYS: integer(1, 3650).default(30),
  // An inference server (llama-server, OpenAI-compatible, Ollama) instead of the weights in this
  // process: see docs/inference-server.md. Unset: the model runs in process (MODEL).
  INFERENCE_URL: z.url({ protocol: /^https?$/, message: 'must be an http(s) URL such as http://127.0.0.1:8080' }).optional(),
  INFERENCE_API: z.enum(INFERENCE_APIS, { error: `must be one of ${INFERENCE_APIS.join(', ')} (or unset: detected)` }).optional(),
  INFERENCE_API_KEY: optionalText,
  INFERENCE_MODEL: optionalText,
  INFERENCE_PARALLEL: integer(1, 256).optional(),
  INFERENCE_TIMEOUT_MS: integer(1000, 3_600_000).default(120_000),
  INFERENCE_IDLE_TIMEOUT_MS: integer(1000, 3_600_000).default(60_000),
  SHARDS: z
    .union([z.literal('auto'), integer(1, 4096)], { error: 'must be auto or a whole number from 1 to 4096' })
    .default(1),
});

export type Config = Readonly<
  Omit<z.infer<typeof schema>, 'SENTIMENT_EMOJIS'> & {
    SENTIMENT_EMOJIS: Readonly<Record<SentimentLabel, string>>;
  }
>;

/** Keys whose values must never be echoed back in an error. */
const SECRET_KEYS = new Set(['DISCORD_TOKEN', 'INFERENCE_API_KEY']);

/**
 * Validates the environment into a frozen Config. Every bad key is reported in one error, with
 * what was wrong and how to fix it; secret values are never echoed, and URLs without their credentials.
 */
export function parseConfig(env: Record<string, string | undefined>): Config {
  // Empty strings in .env mean "not set", so defaults apply.
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value.trim() !== ''));
  // In a shard process discord.js sets SHARDS to the shard's own id: the count is the manager's.
  if (env.SHARDING_MANAGER) delete present.SHARDS;
  const result = schema.safeParse(present);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => {
      const key = String(issue.path[0] ?? '?');
      const shown = SECRET_KEYS.has(key) ? '' : ` (got ${maskCredentials(JSON.stringify(present[key]))})`;
      return `  ${key}: ${issue.message}${shown}`;
    });
    throw new UserError(`Invalid configuration; fix these keys in .env or the environment (see .env.example):\n${lines.join('\n')}`);
  }
  const { SENTIMENT_EMOJIS: emojis, ...rest } = result.data;
  // The default never asks for more replies at once than there are warm channels to run them on.
  if (present.PARALLEL_REPLIES === undefined) rest.PARALLEL_REPLIES = Math.min(rest.PARALLEL_REPLIES, rest.WARM_CHANNELS);
  const budgetErrors: string[] = [];
  if (rest.HISTORY_MAX_TOKENS + rest.REPLY_MAX_TOKENS + PROMPT_ROOM > rest.CONTEXT_SIZE) {
    budgetErrors.push(
      `  HISTORY_MAX_TOKENS: HISTORY_MAX_TOKENS (${rest.HISTORY_MAX_TOKENS}) + REPLY_MAX_TOKENS (${rest.REPLY_MAX_TOKENS}) + ${PROMPT_ROOM} for the prompt must fit in CONTEXT_SIZE (${rest.CONTEXT_SIZE}); lower them or raise CONTEXT_SIZE`,
    );
  }
  // A thought is generated after the prompt, so it takes the history's room (by design), but not all of it:
  // a budget that leaves the history nothing would answer every message as if the channel were new.
  if (rest.THINKING !== 'off' && rest.REPLY_MAX_TOKENS + rest.THINKING + PROMPT_ROOM + MIN_HISTORY_ROOM > rest.CONTEXT_SIZE) {
    budgetErrors.push(
      `  THINKING: REPLY_MAX_TOKENS (${rest.REPLY_MAX_TOKENS}) + THINKING (${rest.THINKING}) + ${PROMPT_ROOM} for the prompt + ${MIN_HISTORY_ROOM} for the history must fit in CONTEXT_SIZE (${rest.CONTEXT_SIZE}); lower THINKING or raise CONTEXT_SIZE`,
    );
  }
  // Each running reply needs a warm sequence of its own: a cold channel may never take a busy one.
  if (rest.PARALLEL_REPLIES > rest.WARM_CHANNELS) {
    budgetErrors.push(
      `  PARALLEL_REPLIES: PARALLEL_REPLIES (${rest.PARALLEL_REPLIES}) must be at most WARM_CHANNELS (${rest.WARM_CHANNELS}), since each running reply needs a warm channel's sequence; lower PARALLEL_REPLIES or raise WARM_CHANNELS`,
    );
  }
  if (budgetErrors.length > 0) {
    throw new UserError(`Invalid configuration; fix these keys in .env or the environment (see .env.example):\n${budgetErrors.join('\n')}`);
  }
  const [positive, neutral, negative] = emojis as [string, string, string];
  return Object.freeze({ ...rest, SENTIMENT_EMOJIS: Object.freeze({ positive, neutral, negative }) });
}

/** Loads `.env` (values already in the environment win) and parses it. */
export async function loadConfig(envFile = '.env'): Promise<Config> {
  const dotenv = await import('dotenv');
  dotenv.config({ path: envFile, quiet: true });
  return parseConfig(process.env);
}
