import {
  Client,
  Events,
  GatewayIntentBits,
  MessageFlags,
  MessageType,
  Options,
  Partials,
  type ChatInputCommandInteraction,
  type Interaction,
  type Message,
  type MessageReaction,
} from 'discord.js';
import type { Config } from '../config.js';
import { AbortedError, QueueFullError, UserError, isAbort } from '../errors.js';
import type { Logger } from '../logger.js';
import { RateLimiter } from '../sessions/RateLimiter.js';
import { hasReadableText } from '../text.js';
import type { CommandDeps, Command } from './Command.js';
import { ReplyStreamer, type ReplyTarget } from './ReplyStreamer.js';

export interface DiscordBotOptions extends CommandDeps {
  commands: ReadonlyMap<string, Command>;
  /** Least time between two edits of a streaming reply, in ms. Default 1000. */
  editIntervalMs?: number;
}

const WAITING_EMOJI = '⏳';
const SEEN_MESSAGES_KEPT = 10_000;
/** Appended to a reply that shutdown interrupted, so the user knows it is not the whole answer. */
export const CUT_MARKER = '\n\n…(reply cut off: the bot is restarting)';

/** The client options the bot needs; exported so tests build the very same client. */
export function createDiscordClient(config: Pick<Config, 'DISCORD_API_URL'>): Client {
  return new Client({
    intents: [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessages, GatewayIntentBits.MessageContent, GatewayIntentBits.DirectMessages],
    partials: [Partials.Channel],
    // Model output must never ping anyone: no @everyone, roles, users, nor the replied-to author.
    allowedMentions: { parse: [], repliedUser: false },
    rest: config.DISCORD_API_URL ? { api: config.DISCORD_API_URL } : {},
    // The bot keeps the Message objects it works on; discord.js's default cache of 200 messages per
    // channel would only grow the memory with every busy channel (megabytes per thousand messages).
    makeCache: Options.cacheWithLimits({ ...Options.DefaultMakeCacheSettings, MessageManager: 0 }),
  });
}

/**
 * The Discord edge: turns messages into channel-session turns (reaction first, then a streamed
 * reply) and slash commands into command calls. The only place, with commands/, that knows Discord.
 */
export class DiscordBot {
  private readonly seen = new Set<string>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly rateLimiter: RateLimiter;
  private readonly pruneTimer: NodeJS.Timeout;
  private stopping = false;
  private warnedNoContent = false;

  constructor(
    readonly client: Client,
    private readonly options: DiscordBotOptions,
  ) {
    const { config } = options;
    this.rateLimiter = new RateLimiter({ limit: config.RATE_LIMIT_MESSAGES, windowMs: config.RATE_LIMIT_WINDOW_SECONDS * 1000 });
    this.pruneTimer = setInterval(() => this.rateLimiter.prune(), 60_000).unref();
    client.once(Events.ClientReady, (ready) => void this.registerCommands(ready));
    client.on(Events.MessageCreate, (message) => this.track(this.onMessage(message)));
    client.on(Events.InteractionCreate, (interaction) => this.track(this.onInteraction(interaction)));
    client.on(Events.Error, (error) => options.logger.error('discord client error', { error }));
    client.on(Events.ShardResume, (shardId, replayed) => options.logger.info('gateway resumed', { shardId, replayed }));
  }

  async start(token: string): Promise<void> {
    await this.client.login(token);
  }

  /**
   * Stops taking messages, aborts the running generation (its partial reply is marked as cut),
   * waits for replies in flight to be posted, then closes the client.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.pruneTimer);
    await this.options.sessions.close();
    await Promise.allSettled(this.inFlight);
    await this.client.destroy();
  }

  /** Keeps a handler's work for stop() to wait on; an error nobody caught is logged, never left to crash the process. */
  private track(work: Promise<void>): void {
    const handled = work.catch((error: unknown) => this.options.logger.error('event handler failed', { error }));
    this.inFlight.add(handled);
    void handled.finally(() => this.inFlight.delete(handled));
  }

  private async registerCommands(client: Client<true>): Promise<void> {
    const { logger, config, commands } = this.options;
    const body = [...commands.values()].map((command) => command.data.toJSON());
    try {
      if (config.GUILD_ID) await client.application.commands.set(body, config.GUILD_ID);
      else await client.application.commands.set(body);
      logger.info('slash commands registered', { count: body.length, scope: config.GUILD_ID ? 'guild' : 'global' });
    } catch (error) {
      logger.error('registering slash commands failed; /sentiment and /reset will not show up', { error });
    }
  }

  private shouldHandle(message: Message): boolean {
    const { config, logger } = this.options;
    if (this.stopping || message.author.bot || message.webhookId || message.system) return false;
    if (message.type !== MessageType.Default && message.type !== MessageType.Reply) return false;
    if (!message.channel.isSendable()) return false;
    if (config.CHANNEL_IDS.length > 0 && !config.CHANNEL_IDS.includes(message.channelId)) return false;
    // A gateway resume can replay a message: answer each one once.
    if (this.seen.has(message.id)) return false;
    this.seen.add(message.id);
    if (this.seen.size > SEEN_MESSAGES_KEPT) this.seen.delete(this.seen.values().next().value!);
    if (!hasReadableText(message.content)) {
      if (!this.warnedNoContent && message.attachments.size === 0 && message.stickers.size === 0) {
        this.warnedNoContent = true;
        logger.warn('a message arrived with no text; if every message does, enable the Message Content intent for the bot');
      }
      return false;
    }
    return true;
  }

  private async onMessage(message: Message): Promise<void> {
    if (!this.shouldHandle(message)) return;
    const { sessions, logger, config } = this.options;
    const log = { channelId: message.channelId, messageId: message.id, chars: message.content.length };
    const rate = this.rateLimiter.check(message.author.id);
    if (rate !== 'allowed') {
      if (rate === 'limited') {
        await this.safeReply(message, `You are sending messages faster than I can think (limit ${config.RATE_LIMIT_MESSAGES} per ${config.RATE_LIMIT_WINDOW_SECONDS} s). I will skip a few; try again in a moment.`);
      }
      logger.info('message rate-limited', log);
      return;
    }

    const streamer = new ReplyStreamer({ target: replyTarget(message), logger, editIntervalMs: this.options.editIntervalMs });
    let waitingReaction: MessageReaction | undefined;
    let turn;
    try {
      turn = sessions.handleMessage(
        { channelId: message.channelId, userName: message.member?.displayName ?? message.author.displayName, text: message.content },
        {
          onSentiment: async ({ label }) => {
            await message.react(config.SENTIMENT_EMOJIS[label]).catch((error: unknown) => logger.warn('adding the sentiment reaction failed', { ...log, error }));
          },
          onWaiting: async () => {
            waitingReaction = await message.react(WAITING_EMOJI).catch((error: unknown) => {
              logger.warn('adding the waiting reaction failed', { ...log, error });
              return undefined;
            });
          },
          onReplyStart: async () => {
            streamer.startTyping();
            await waitingReaction?.users.remove(this.client.user!.id);
          },
          onText: (delta) => streamer.push(delta),
          deliver: (reply) => streamer.finish(reply),
        },
      );
    } catch (error) {
      streamer.cancel();
      if (error instanceof QueueFullError) logger.warn('queue full; message refused', { ...log, pending: error.pending });
      if (error instanceof UserError) await this.safeReply(message, error.message);
      else logger.error('message refused', { ...log, error });
      return;
    }

    try {
      const outcome = await turn;
      logger.info('message answered', { ...log, label: outcome.sentiment.label, replyChars: outcome.reply.length, saved: outcome.saved });
    } catch (error) {
      if (isAbort(error)) {
        // Shutdown: finish what was shown, marked as cut; nothing of the turn enters history.
        if (streamer.postedCount > 0) await streamer.finish(streamer.currentText + CUT_MARKER).catch(() => {});
        else streamer.cancel();
        logger.info('reply aborted by shutdown', log);
        return;
      }
      streamer.cancel();
      logger.error('reply failed', { ...log, error });
      await this.safeReply(message, 'Sorry, something went wrong while answering that. Please try again.');
    }
  }

  private async onInteraction(interaction: Interaction): Promise<void> {
    if (!interaction.isChatInputCommand()) return;
    const { commands, logger } = this.options;
    const command = commands.get(interaction.commandName);
    if (!command) {
      await interaction.reply({ content: `I do not know the command /${interaction.commandName}.`, flags: MessageFlags.Ephemeral }).catch(() => {});
      return;
    }
    try {
      if (this.stopping) throw new AbortedError();
      await command.execute(interaction, this.options);
    } catch (error) {
      const content =
        error instanceof UserError ? error.message : isAbort(error) ? 'The bot is restarting; try again in a moment.' : 'Sorry, that command failed. Please try again.';
      if (!(error instanceof UserError) && !isAbort(error)) logger.error('command failed', { command: interaction.commandName, error });
      await answerEphemeral(interaction, content).catch((replyError: unknown) => logger.warn('answering a failed command failed', { error: replyError }));
    }
  }

  private async safeReply(message: Message, content: string): Promise<void> {
    await replyTarget(message)
      .reply(content)
      .catch((error: unknown) => this.options.logger.warn('sending a notice failed', { channelId: message.channelId, error }));
  }
}

/** Replies to the message; if it was deleted meanwhile, the reply still goes to the channel. */
function replyTarget(message: Message): ReplyTarget {
  const channel = message.channel;
  if (!channel.isSendable()) throw new Error(`Channel ${message.channelId} does not accept messages.`);
  return {
    reply: (content) => channel.send({ content, reply: { messageReference: message.id, failIfNotExists: false } }),
    send: (content) => channel.send({ content }),
    typing: () => channel.sendTyping(),
  };
}

async function answerEphemeral(interaction: ChatInputCommandInteraction, content: string): Promise<void> {
  if (interaction.deferred) await interaction.editReply({ content });
  else if (interaction.replied) await interaction.followUp({ content, flags: MessageFlags.Ephemeral });
  else await interaction.reply({ content, flags: MessageFlags.Ephemeral });
}
