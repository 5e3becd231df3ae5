import { MessageFlags, type ChatInputCommandInteraction } from 'discord.js';

/**
 * How long a command's answer may take before the interaction is deferred, in ms. Discord drops an
 * interaction not acknowledged within 3 s of its creation, and that 3 s also covers the gateway's
 * delivery and the acknowledgement's own trip: 1 s leaves room for both on a slow network.
 */
export const DEFER_AFTER_MS = 1000;

/** An answer may quote what users typed (a persona): it never pings anyone. */
const NO_PINGS = { parse: [] };

export interface ReplyInTimeOptions {
  /** Only the user who ran the command sees the answer. */
  ephemeral: boolean;
  /** Default {@link DEFER_AFTER_MS}. */
  deferAfterMs?: number;
}

/**
 * Answers an interaction with the content `work` resolves to: directly when it is ready within
 * `deferAfterMs`, else after a deferral ("thinking…"), which Discord accepts within its 3 s, by
 * editing it in. Whatever the model's queue or the store is doing, the user gets an answer.
 * A failure before the deferral is thrown as is; after it, too (the edge answers it).
 */
export async function replyInTime(interaction: ChatInputCommandInteraction, { ephemeral, deferAfterMs = DEFER_AFTER_MS }: ReplyInTimeOptions, work: () => Promise<string>): Promise<void> {
  const answer = work();
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), deferAfterMs)));
  const flags = ephemeral ? MessageFlags.Ephemeral : undefined;
  try {
    const early = await Promise.race([answer, late]);
    if (early !== undefined) {
      await interaction.reply({ content: early, flags, allowedMentions: NO_PINGS });
      return;
    }
  } finally {
    clearTimeout(timer);
  }
  await interaction.deferReply({ flags });
  await interaction.editReply({ content: await answer, allowedMentions: NO_PINGS });
}
