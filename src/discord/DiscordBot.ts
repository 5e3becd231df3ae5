import { Events, MessageFlags, MessageType, type ChatInputCommandInteraction, type Client, type Interaction, type Message } from 'discord.js';
import { AbortedError, UserError, isAbort } from '../errors.js';
import { RateLimiter } from '../sessions/RateLimiter.js';
import type { ReplyMode } from '../domain.js';
import { hasReadableText } from '../text.js';
import { RESTART_NOTICE, answerMessage, noteMessage, noticeInTurn, reactOnly } from './answerMessage.js';
import { channelAccess } from './channelAccess.js';
import type { CommandDeps, Command } from './Command.js';
import { EditBudget } from './EditBudget.js';
import { unreadNotice } from './attachments.js';
import { hasTextAttachment, incomingMessage, isAddressed } from './incomingMessage.js';
import { PostOrder, type PostTurn } from './PostOrder.js';
import { RecentSpeakers } from './RecentSpeakers.js';
import { ActiveReplies, isStopButton } from './stopButton.js';

export { CUT_MARKER, FAILED_MARKER, RESTART_NOTICE } from './answerMessage.js';
export { createDiscordClient } from './discordClient.js';

export interface DiscordBotOptions extends CommandDeps {
  commands: ReadonlyMap<string, Command>;
  /** Least time between two streaming edits of one reply, in ms. Default 1000. */
  editIntervalMs?: number;
  /** How long fetching one text attachment may take, in ms. Default 10000. */
  attachmentTimeoutMs?: number;
  /** Message ids remembered to answer a redelivered message once; the oldest go first. Default 10000. */
  seenMessagesKept?: number;
}

/**
 * The Discord edge: turns messages into channel-session turns (reaction first, then a streamed
 * reply) and slash commands into command calls. The only place, with commands/, that knows Discord.
 */
export class DiscordBot {
  private readonly seen = new Set<string>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly rateLimiter: RateLimiter;
  /** One edit budget per channel: Discord counts edits per channel, whichever reply they belong to. */
  private readonly editBudgets = new Map<string, EditBudget>();
  private readonly pruneTimer: NodeJS.Timeout;
  private readonly activeReplies = new ActiveReplies();
  private readonly postOrder = new PostOrder();
  private readonly recentSpeakers = new RecentSpeakers();
  private stopping = false;
  private warnedNoContent = false;

  constructor(
    readonly client: Client,
    private readonly options: DiscordBotOptions,
  ) {
    const { config } = options;
    this.rateLimiter = new RateLimiter({ limit: config.RATE_LIMIT_MESSAGES, windowMs: config.RATE_LIMIT_WINDOW_SECONDS * 1000 });
    this.pruneTimer = setInterval(() => this.prune(), 60_000).unref();
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
   * Stops taking messages, aborts the running generation (its partial reply is marked as cut), tells
   * every waiting message to be sent again, waits for those answers to be posted, then closes the client.
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

  private prune(): void {
    this.rateLimiter.prune();
    for (const [channelId, budget] of this.editBudgets) if (budget.isIdle()) this.editBudgets.delete(channelId);
  }

  private editBudget(channelId: string): EditBudget {
    let budget = this.editBudgets.get(channelId);
    if (!budget) this.editBudgets.set(channelId, (budget = new EditBudget()));
    return budget;
  }

  private async registerCommands(client: Client<true>): Promise<void> {
    const { logger, config, commands } = this.options;
    const body = [...commands.values()].map((command) => command.data.toJSON());
    try {
      if (config.GUILD_ID) await client.application.commands.set(body, config.GUILD_ID);
      else await client.application.commands.set(body);
      logger.info('slash commands registered', { count: body.length, scope: config.GUILD_ID ? 'guild' : 'global' });
    } catch (error) {
      logger.error('registering slash commands failed; they will not show up', { error });
    }
  }

  private shouldHandle(message: Message): boolean {
    const { config, logger } = this.options;
    if (message.author.bot || message.webhookId || message.system) return false;
    if (message.type !== MessageType.Default && message.type !== MessageType.Reply) return false;
    if (config.CHANNEL_IDS.length > 0 && !isListed(message, config.CHANNEL_IDS)) return false;
    // A gateway resume can replay a message: answer each one once.
    if (this.seen.has(message.id)) return false;
    this.seen.add(message.id);
    if (this.seen.size > (this.options.seenMessagesKept ?? 10_000)) this.seen.delete(this.seen.values().next().value!);
    if (!hasReadableText(message.content) && !(config.ATTACHMENT_MAX_KB > 0 && hasTextAttachment(message))) {
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
    // Its place in the channel's post order is taken on arrival, before anything is awaited.
    const postTurn = this.postOrder.enter(message.channelId);
    try {
      await this.handleMessage(message, postTurn);
    } finally {
      postTurn.posted();
    }
  }

  private async handleMessage(message: Message, postTurn: PostTurn): Promise<void> {
    const { logger, config } = this.options;
    const log = { channelId: message.channelId, messageId: message.id };
    // Checked before anything is queued: a channel the bot cannot answer in must not cost a reply.
    // Every human who writes in the server counts, answered or not: the model may borrow any of their names.
    const place = message.guildId ?? message.channelId;
    this.recentSpeakers.seen(place, message.member?.displayName ?? message.author.displayName);
    const access = channelAccess(message, this.client.user!);
    if (!access.send && !access.react) return logger.debug('message ignored: no permission to send or react', log);
    const botUser = this.client.user!;
    const mode = await this.replyMode(message.channelId);
    const answers = access.send && (mode === 'all' || (mode === 'mentions' && isAddressed(message, botUser.id)));
    // A message that gets no answer posts nothing: the replies after it need not wait for it.
    if (!answers) postTurn.posted();
    if (this.stopping) return answers ? noticeInTurn(message, access, RESTART_NOTICE, { postTurn, logger }) : undefined;
    const rate = this.rateLimiter.check(message.author.id);
    if (rate !== 'allowed') {
      this.options.metrics.outcome('limited');
      // Only a message the bot would answer gets told; the others pass quietly.
      if (rate === 'limited' && answers) {
        const notice = `You are sending messages faster than I can think (limit ${config.RATE_LIMIT_MESSAGES} per ${config.RATE_LIMIT_WINDOW_SECONDS} s). I will skip a few; try again in a moment.`;
        await noticeInTurn(message, access, notice, { postTurn, logger });
      }
      logger.info('message rate-limited', log);
      return;
    }
    const deps = { ...this.options, botUserId: botUser.id, editBudget: this.editBudget(message.channelId), activeReplies: this.activeReplies, postTurn };
    if (!access.send || mode === 'react') return reactOnly(message, deps);
    // Attachments are read inside the turn, after its queue places are taken: arrival fixes the order.
    const incoming = incomingMessage(message, botUser, {
      attachmentMaxKb: config.ATTACHMENT_MAX_KB,
      attachmentTimeoutMs: this.options.attachmentTimeoutMs ?? 10_000,
      otherNames: this.recentSpeakers.in(place),
      onUnread: async (unread) => {
        logger.info('attachments not read', { ...log, files: unread.length });
        if (answers) await noticeInTurn(message, access, unreadNotice(unread, config.ATTACHMENT_MAX_KB), deps);
      },
    });
    if (answers) await answerMessage(message, access, incoming, deps);
    else await noteMessage(message, access, incoming, deps);
  }

  /** The channel's reply mode; when the store cannot say (Redis stopped), `REPLY_MODE`: a message is never dropped for it. */
  private async replyMode(channelId: string): Promise<ReplyMode> {
    const { sessions, config, logger } = this.options;
    try {
      return await sessions.settings.replyMode(channelId);
    } catch (error) {
      logger.warn('reading the reply mode failed; answering in REPLY_MODE', { channelId, mode: config.REPLY_MODE, error });
      return config.REPLY_MODE;
    }
  }

  private async onInteraction(interaction: Interaction): Promise<void> {
    const { commands, logger } = this.options;
    if (interaction.isButton() && isStopButton(interaction.customId)) {
      await this.activeReplies.click(interaction, logger).catch((error: unknown) => logger.warn('answering a Stop click failed', { error }));
      return;
    }
    if (!interaction.isChatInputCommand()) return;
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
}

/** Listing a channel lets in its threads too, and listing a forum its posts (a forum has messages only in posts). */
function isListed(message: Message, channelIds: readonly string[]): boolean {
  const { channel } = message;
  return channelIds.includes(message.channelId) || (channel.isThread() && channel.parentId !== null && channelIds.includes(channel.parentId));
}

async function answerEphemeral(interaction: ChatInputCommandInteraction, content: string): Promise<void> {
  if (interaction.deferred) await interaction.editReply({ content });
  else if (interaction.replied) await interaction.followUp({ content, flags: MessageFlags.Ephemeral });
  else await interaction.reply({ content, flags: MessageFlags.Ephemeral });
}
