/**
 * Values several layers share (config, engine, sessions, history, commands). They live here, below
 * all of them, so that no layer imports another's module to name them and every import arrow
 * still runs one way: down.
 */

/** The sentiment labels, in the order every table and matrix uses. */
export const SENTIMENT_LABELS = ['positive', 'neutral', 'negative'] as const;
export type SentimentLabel = (typeof SENTIMENT_LABELS)[number];

/** When the bot answers: every message, only when addressed (mention, reply to it, DM), or never (reactions only). */
export const REPLY_MODES = ['all', 'mentions', 'react'] as const;
export type ReplyMode = (typeof REPLY_MODES)[number];

/**
 * One entry of a channel's history: what a user said and what the bot answered, or (no `reply`) a
 * message the bot read but did not answer (`REPLY_MODE=mentions`), still part of the context.
 */
export interface HistoryTurn {
  /** The speaker's display name, as shown to the model. */
  userName: string;
  userText: string;
  /** Absent when the bot did not answer the message. */
  reply?: string;
  /** Epoch milliseconds when the turn was written. */
  at: number;
}

/**
 * How the classifier turns the model's label probabilities into a label: a correction learned at
 * start for the loaded model (default), the content-free prior divided out, or the raw argmax.
 */
export const CALIBRATION_MODES = ['learned', 'content-free', 'off'] as const;
export type CalibrationMode = (typeof CALIBRATION_MODES)[number];

/** Kinds of inference server the bot talks to (INFERENCE_API). */
export const INFERENCE_APIS = ['llama-server', 'openai', 'ollama'] as const;
export type InferenceApi = (typeof INFERENCE_APIS)[number];
