import type { Message, MessageReaction } from 'discord.js';
import type { Config } from '../config.js';
import { QueueFullError, UserError, isAbort } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ChannelSessions } from '../sessions/ChannelSessions.js';
import { replyTarget, type ChannelAccess } from './channelAccess.js';
import type { EditBudget } from './EditBudget.js';
import { ReplyStreamer } from './ReplyStreamer.js';

const WAITING_EMOJI = '⏳';
/** Appended to a reply that shutdown interrupted, so the user knows it is not the whole answer. */
export const CUT_MARKER = '\n\n…(reply cut off: the bot is restarting)';
/** Appended to a reply that failed after part of it was posted. */
export const FAILED_MARKER = '\n\n…(reply cut off: something went wrong; please try again)';
/** The answer to a message that was still waiting when the bot shut down. */
export const RESTART_NOTICE = 'I am restarting and could not answer this one; please send it again in a minute.';
export const SORRY_NOTICE = 'Sorry, something went wrong while answering that. Please try again.';

export interface AnswerDeps {
  sessions: ChannelSessions;
  config: Config;
  logger: Logger;
  botUserId: string;
  /** The edit budget of the message's channel. */
  editBudget: EditBudget;
  editIntervalMs?: number;
}

/** Sends a short notice as a reply; a failure is logged, never thrown. */
export async function sendNotice(message: Message, access: ChannelAccess, content: string, logger: Logger): Promise<void> {
  if (!access.send) return;
  await replyTarget(message, access)
    .reply(content)
    .catch((error: unknown) => logger.warn('sending a notice failed', { channelId: message.channelId, error }));
}

/** Where the bot may react but not send: the sentiment reaction alone, no reply, no history. */
export async function reactOnly(message: Message, { sessions, config, logger }: AnswerDeps): Promise<void> {
  const log = { channelId: message.channelId, messageId: message.id };
  try {
    const { label } = await sessions.classify(message.channelId, message.content);
    await message.react(config.SENTIMENT_EMOJIS[label]);
    logger.info('message reacted to (no Send Messages permission)', { ...log, label });
  } catch (error) {
    if (error instanceof UserError || isAbort(error)) logger.info('reaction skipped', { ...log, reason: String(error) });
    else logger.error('reacting failed', { ...log, error });
  }
}

/**
 * One message's turn at the edge: the sentiment reaction, ⏳ while it waits, the streamed reply.
 * Whatever ends the turn early, the user is told once: a posted part is marked as cut (shutdown) or
 * failed; a reply never started gets a notice, and its ⏳ is taken back.
 */
export async function answerMessage(message: Message, access: ChannelAccess, deps: AnswerDeps): Promise<void> {
  const { sessions, logger, config } = deps;
  const log = { channelId: message.channelId, messageId: message.id, chars: message.content.length };
  const streamer = new ReplyStreamer({ target: replyTarget(message, access), logger, editIntervalMs: deps.editIntervalMs, editBudget: deps.editBudget });
  let waiting: MessageReaction | undefined;
  const removeWaiting = async () => {
    const reaction = waiting;
    waiting = undefined;
    await reaction?.users.remove(deps.botUserId).catch((error: unknown) => logger.warn('removing the waiting reaction failed', { ...log, error }));
  };
  let turn;
  try {
    turn = sessions.handleMessage(
      { channelId: message.channelId, userName: message.member?.displayName ?? message.author.displayName, text: message.content },
      {
        onSentiment: async ({ label }) => {
          if (!access.react) return;
          await message.react(config.SENTIMENT_EMOJIS[label]).catch((error: unknown) => logger.warn('adding the sentiment reaction failed', { ...log, error }));
        },
        onWaiting: async () => {
          if (!access.react) return;
          waiting = await message.react(WAITING_EMOJI).catch((error: unknown) => {
            logger.warn('adding the waiting reaction failed', { ...log, error });
            return undefined;
          });
        },
        onReplyStart: async () => {
          streamer.startTyping();
          await removeWaiting();
        },
        onText: (delta) => streamer.push(delta),
        deliver: (reply) => streamer.finish(reply),
      },
    );
  } catch (error) {
    void streamer.cancel();
    if (error instanceof QueueFullError) logger.warn('queue full; message refused', { ...log, pending: error.pending });
    if (error instanceof UserError) await sendNotice(message, access, error.message, logger);
    else if (isAbort(error)) await sendNotice(message, access, RESTART_NOTICE, logger);
    else logger.error('message refused', { ...log, error });
    return;
  }

  try {
    const outcome = await turn;
    logger.info('message answered', { ...log, label: outcome.sentiment.label, replyChars: outcome.reply.length, saved: outcome.saved });
  } catch (error) {
    const aborted = isAbort(error);
    if (!aborted) logger.error('reply failed', { ...log, error });
    // A post under way decides whether there is a part to mark.
    await streamer.cancel();
    if (aborted) logger.info(streamer.postedCount > 0 ? 'reply aborted by shutdown' : 'message not answered before shutdown; asked to send it again', log);
    if (streamer.postedCount > 0) {
      // What was shown stays, marked as not the whole answer; nothing of the turn enters history.
      await streamer.finish(streamer.currentText + (aborted ? CUT_MARKER : FAILED_MARKER)).catch((finishError: unknown) => {
        logger.warn('marking the cut reply failed', { ...log, error: finishError });
      });
      return;
    }
    await Promise.all([removeWaiting(), sendNotice(message, access, aborted ? RESTART_NOTICE : SORRY_NOTICE, logger)]);
  }
}
