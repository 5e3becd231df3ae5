import type { Message, MessageReaction } from 'discord.js';
import type { Config } from '../config.js';
import { ModelUnavailableError, QueueFullError, StoppedError, UserError, isAbort } from '../errors.js';
import type { Logger } from '../logger.js';
import type { BotMetrics } from '../metrics/BotMetrics.js';
import type { ChannelSessions, IncomingMessage } from '../sessions/ChannelSessions.js';
import { replyTarget, type ChannelAccess } from './channelAccess.js';
import type { EditBudget } from './EditBudget.js';
import { ReplyStreamer } from './ReplyStreamer.js';
import type { PostTurn } from './PostOrder.js';
import type { ActiveReplies } from './stopButton.js';

const WAITING_EMOJI = '⏳';
/** Appended to a reply that shutdown interrupted, so the user knows it is not the whole answer. */
export const CUT_MARKER = '\n\n…(reply cut off: the bot is restarting)';
/** Appended to a reply that failed after part of it was posted. */
export const FAILED_MARKER = '\n\n…(reply cut off: something went wrong; please try again)';
/** The answer to a message that was still waiting when the bot shut down. */
export const RESTART_NOTICE = 'I am restarting and could not answer this one; please send it again in a minute.';
/** The answer to a message while the inference server (INFERENCE_URL) cannot be reached; the message is kept as context. */
export const MODEL_UNAVAILABLE_NOTICE = 'The model server is unavailable right now, so I cannot answer; I kept your message. Please try again in a minute.';
/** Appended to a reply cut off because the inference server went away. */
export const MODEL_GONE_MARKER = '\n\n…(reply cut off: the model server went away; please try again in a minute)';
export const SORRY_NOTICE = 'Sorry, something went wrong while answering that. Please try again.';
/** The first message of a reply that has to wait: it holds the Stop button until the reply replaces it. */
export const WAITING_PLACEHOLDER = 'Waiting for my turn…';
/** Shown while a reasoning model thinks (THINKING on): its thought is never posted, so nothing else would show. */
export const THINKING_PLACEHOLDER = 'Thinking…';
/** What a reply stopped before it started shows. */
export const STOPPED_BEFORE_START = '…(stopped before it started)';

export interface AnswerDeps {
  sessions: ChannelSessions;
  config: Config;
  logger: Logger;
  botUserId: string;
  /** The edit budget of the message's channel. */
  editBudget: EditBudget;
  editIntervalMs?: number;
  metrics: BotMetrics;
  activeReplies: ActiveReplies;
  /** The message's place in its channel's post order: nothing is posted before the earlier replies' first posts. */
  postTurn: PostTurn;
}

/** Sends a short notice as a reply; a failure is logged, never thrown. */
export async function sendNotice(message: Message, access: ChannelAccess, content: string, logger: Logger): Promise<void> {
  if (!access.send) return;
  await replyTarget(message, access)
    .reply(content)
    .catch((error: unknown) => logger.warn('sending a notice failed', { channelId: message.channelId, error }));
}

/** Where the bot may react but not send: the sentiment reaction alone, no reply, no history. */
export async function reactOnly(message: Message, { sessions, config, logger, metrics }: AnswerDeps): Promise<void> {
  const log = { channelId: message.channelId, messageId: message.id };
  try {
    const { label } = await sessions.classifyMessage(message.channelId, message.content);
    await message.react(config.SENTIMENT_EMOJIS[label]);
    metrics.outcome('reacted');
    logger.info('message reacted to, not answered', { ...log, label });
  } catch (error) {
    if (error instanceof UserError || isAbort(error)) logger.info('reaction skipped', { ...log, reason: String(error) });
    else {
      metrics.outcome('failed');
      logger.error('reacting failed', { ...log, error });
    }
  }
}

/**
 * A message the bot reads but does not answer (`mentions` mode, not addressed): its reaction, and
 * an entry in the channel's history without a reply. The bot says nothing, not even when busy.
 */
export async function noteMessage(message: Message, access: ChannelAccess, incoming: IncomingMessage, { sessions, config, logger, metrics }: AnswerDeps): Promise<void> {
  const log = { channelId: message.channelId, messageId: message.id };
  try {
    let shown: Promise<unknown> = Promise.resolve();
    const { sentiment, saved } = await sessions.handleUnanswered(incoming, {
      onSentiment: ({ label }) => {
        if (access.react) shown = message.react(config.SENTIMENT_EMOJIS[label]).catch((error: unknown) => logger.warn('adding the sentiment reaction failed', { ...log, error }));
      },
    });
    await shown;
    metrics.outcome('unanswered');
    logger.info('message kept as context, not answered', { ...log, label: sentiment.label, saved });
  } catch (error) {
    metrics.outcome(error instanceof QueueFullError ? 'busy' : 'failed');
    if (error instanceof UserError || isAbort(error)) logger.info('message not kept', { ...log, reason: String(error) });
    else logger.error('keeping a message failed', { ...log, error });
  }
}

/**
 * One message's turn at the edge: the sentiment reaction, ⏳ and a placeholder holding the Stop
 * button while it waits, the streamed reply with its Stop button. Whatever ends the turn early, the
 * user is told once: a posted part is marked as stopped, cut (shutdown) or failed; a reply never
 * started gets a notice (in its placeholder when there is one), and its ⏳ is taken back.
 */
export async function answerMessage(message: Message, access: ChannelAccess, incoming: IncomingMessage, deps: AnswerDeps): Promise<void> {
  const { sessions, logger, config, metrics } = deps;
  const log = { channelId: message.channelId, messageId: message.id, chars: incoming.text.length };
  const streamer = new ReplyStreamer({
    target: replyTarget(message, access, { stopButton: true }),
    logger,
    editIntervalMs: deps.editIntervalMs,
    editBudget: deps.editBudget,
    controls: true,
  });
  let waiting: MessageReaction | undefined;
  let reactionShown: Promise<unknown> = Promise.resolve();
  let waitingShown: Promise<unknown> = Promise.resolve();
  const removeWaiting = async () => {
    await waitingShown;
    const reaction = waiting;
    waiting = undefined;
    await reaction?.users.remove(deps.botUserId).catch((error: unknown) => logger.warn('removing the waiting reaction failed', { ...log, error }));
  };
  const stop = deps.activeReplies.start(message.id, message.author.id);
  // The placeholder too waits for the earlier replies' first posts; ⏳ shows meanwhile.
  streamer.holdUntil(deps.postTurn.earlierPosted);
  void streamer.firstPost.then(deps.postTurn.posted);
  try {
    let turn;
    try {
      turn = sessions.handleMessage(incoming, {
        onSentiment: ({ label }) => {
          if (!access.react) return;
          // The reply generates while the reaction goes out; nothing is posted before it has landed.
          reactionShown = message.react(config.SENTIMENT_EMOJIS[label]).catch((error: unknown) => logger.warn('adding the sentiment reaction failed', { ...log, error }));
          streamer.holdUntil(reactionShown);
        },
        onWaiting: () => {
          streamer.showPlaceholder(WAITING_PLACEHOLDER);
          if (!access.react) return;
          // ⏳ after the sentiment reaction, never before it.
          waitingShown = reactionShown.then(async () => {
            waiting = await message.react(WAITING_EMOJI).catch((error: unknown) => {
              logger.warn('adding the waiting reaction failed', { ...log, error });
              return undefined;
            });
          });
        },
        onReplyStart: async () => {
          streamer.startTyping();
          await removeWaiting();
        },
        onThinking: () => streamer.showPlaceholder(THINKING_PLACEHOLDER),
        onText: (delta) => streamer.push(delta),
        deliver: (reply) => streamer.finish(reply),
        stopSignal: stop.signal,
      });
    } catch (error) {
      void streamer.cancel();
      metrics.outcome(error instanceof QueueFullError ? 'busy' : 'failed');
      if (error instanceof QueueFullError) logger.warn('queue full; message refused', { ...log, pending: error.pending });
      if (error instanceof UserError) await noticeInTurn(message, access, error.message, deps);
      else if (isAbort(error)) await noticeInTurn(message, access, RESTART_NOTICE, deps);
      else logger.error('message refused', { ...log, error });
      return;
    }
    const outcome = await turn.catch((error: unknown) => (error instanceof Error ? error : new Error(String(error))));
    if (!(outcome instanceof Error)) {
      metrics.outcome(outcome.stopped ? 'stopped' : 'answered');
      logger.info('message answered', { ...log, label: outcome.sentiment.label, replyChars: outcome.reply.length, saved: outcome.saved, stopped: outcome.stopped === true });
      return;
    }
    // Nothing readable once its files were read: the notice about the unread files was the answer.
    if (outcome instanceof UserError) {
      await streamer.cancel();
      logger.info('message not answered', { ...log, reason: outcome.message });
      return;
    }
    await endEarly(outcome, message, access, streamer, removeWaiting, deps);
  } finally {
    stop.done();
  }
}

/** A turn that ended without a reply delivered: says so once, in the posted part or placeholder when there is one. */
async function endEarly(error: Error, message: Message, access: ChannelAccess, streamer: ReplyStreamer, removeWaiting: () => Promise<void>, deps: AnswerDeps): Promise<void> {
  const { logger, metrics } = deps;
  const log = { channelId: message.channelId, messageId: message.id };
  const stopped = error instanceof StoppedError;
  const aborted = isAbort(error);
  const unavailable = error instanceof ModelUnavailableError;
  metrics.outcome(stopped ? 'stopped' : 'failed');
  // The server's own state is logged by the engine; one warning per message is enough here.
  if (unavailable) logger.warn('model server unavailable; message kept as context', { ...log, reason: error.detail });
  else if (!stopped && !aborted) logger.error('reply failed', { ...log, error });
  // A post under way decides whether there is a part to mark.
  await streamer.cancel();
  if (stopped) logger.info('reply stopped before it started', log);
  const partial = streamer.currentText.trim() !== '';
  if (aborted) logger.info(partial ? 'reply aborted by shutdown' : 'message not answered before shutdown; asked to send it again', log);
  const notice = stopped ? STOPPED_BEFORE_START : aborted ? RESTART_NOTICE : unavailable ? MODEL_UNAVAILABLE_NOTICE : SORRY_NOTICE;
  // What was shown stays, marked as not the whole answer; the reply does not enter history (a
  // message the model server could not answer is kept there without one: see ChannelSessions).
  const shown = partial ? streamer.currentText + (aborted ? CUT_MARKER : unavailable ? MODEL_GONE_MARKER : FAILED_MARKER) : notice;
  if (streamer.postedCount > 0) {
    await Promise.all([
      removeWaiting(),
      streamer.finish(shown).catch((finishError: unknown) => logger.warn('marking the cut reply failed', { ...log, error: finishError })),
    ]);
    return;
  }
  await Promise.all([removeWaiting(), noticeInTurn(message, access, notice, deps)]);
}

/** A notice that answers the message: after the earlier replies' first posts, like any post of its answer. */
export async function noticeInTurn(message: Message, access: ChannelAccess, content: string, { postTurn, logger }: Pick<AnswerDeps, 'postTurn' | 'logger'>): Promise<void> {
  await postTurn.earlierPosted;
  await sendNotice(message, access, content, logger);
}
