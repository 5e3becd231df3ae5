import { MessageFlags, SlashCommandBuilder } from 'discord.js';
import { SENTIMENT_LABELS } from '../src/domain.js';
import type { Command, CommandDeps } from '../src/discord/Command.js';
import type { CalibrationStatus, EngineStatus } from '../src/engine/Engine.js';
import { percentShares } from '../src/mood/moodSummary.js';

const STORE_PROBE_MS = 2000;

/**
 * `/status` (private): the model, the queue, recent speed, message counts and whether the store
 * answers. The last hour's mood is this server's (in a DM: this conversation's), never the other
 * servers': operators read the bot's totals on /metrics.
 */
export const statusCommand = {
  data: new SlashCommandBuilder().setName('status').setDescription('How I am doing: model, queue, speed, messages, storage.'),

  async execute(interaction, { config, metrics, store, model, calibration, queue }) {
    const storeOk = await storeAnswers(() => store.getSetting('status', 'probe'));
    const { client, guildId, channelId } = interaction;
    const here = guildId
      ? (id: string) => {
          const channel = client.channels.cache.get(id);
          return channel !== undefined && 'guildId' in channel && channel.guildId === guildId;
        }
      : (id: string) => id === channelId;
    const snap = metrics.snapshot(here);
    const { outcomes } = snap;
    const lines = [
      `**Model** ${modelLine(model?.(), config)}`,
      ...(calibration ? [`**Sentiment calibration** ${calibrationLine(calibration())}`] : []),
      `**Up** ${formatUptime(snap.uptimeSeconds)}`,
      `**Queue** ${snap.queue.sentiment} sentiment, ${snap.queue.reply} replies waiting or running (${snap.runningReplies ?? '?'} of up to ${queue.slots('reply')} generating now); ${snap.warmChannels ?? '?'} of ${config.WARM_CHANNELS} warm channels`,
      `**Recent speed** sentiment p50 ${snap.sentimentP50Ms === undefined ? '–' : `${Math.round(snap.sentimentP50Ms)} ms`}, replies ${snap.replyTokensPerSecond === undefined ? '–' : `${snap.replyTokensPerSecond.toFixed(1)} tokens/s`}`,
      `**Messages since start** ${outcomes.answered} answered, ${outcomes.unanswered} kept as context, ${outcomes.reacted} reacted to, ${outcomes.stopped} stopped, ${outcomes.busy} told busy, ${outcomes.limited} rate-limited, ${outcomes.failed} failed`,
      `**Mood, last hour, ${guildId ? 'this server' : 'this conversation'}** ${moodLine(snap.lastHourLabels, config.SENTIMENT_EMOJIS)}`,
      `**History store** ${storeOk ? 'reachable' : 'NOT reachable'}${snap.storeErrors > 0 ? ` (${snap.storeErrors} failed writes since start)` : ''}`,
    ];
    await interaction.reply({ content: lines.join('\n'), flags: MessageFlags.Ephemeral });
  },
} satisfies Command;

/** In process: file, size, threads, context. On an inference server: model, where, context, and whether it answers now. */
function modelLine(status: EngineStatus | undefined, config: CommandDeps['config']): string {
  if (!status) return 'none loaded';
  if (status.runsOn === 'this process') return `${status.model}${status.sizeBytes === undefined ? '' : ` (${formatBytes(status.sizeBytes)})`}; ${config.THREADS} threads, context ${config.CONTEXT_SIZE} tokens`;
  const floors = status.labelFloors ? `; ${status.labelFloors} sentiment calls used a floor for a label` : '';
  return `${status.model} on ${status.runsOn}, context ${status.contextSize} tokens; ${status.ready ? 'answering' : 'NOT reachable (messages get a "model server unavailable" notice)'}${floors}`;
}

/** `learned for this model`, or the fallback in use and how far learning is: `raw probabilities (learning: 120/300, about 3 min left)`. */
export function calibrationLine({ inUse, learning }: CalibrationStatus): string {
  const name = inUse === 'learned' ? 'learned for this model' : inUse === 'content-free' ? 'content-free' : 'raw probabilities';
  if (!learning) return name;
  const left = learning.msLeft === undefined ? '' : `, about ${formatDuration(learning.msLeft)} left`;
  return `${name} (learning the calibration for this model: ${learning.done}/${learning.total}${left})`;
}

function formatDuration(ms: number): string {
  const seconds = Math.ceil(ms / 1000);
  return seconds < 90 ? `${seconds} s` : `${Math.round(seconds / 60)} min`;
}

function moodLine(counts: Record<(typeof SENTIMENT_LABELS)[number], number>, emojis: Record<(typeof SENTIMENT_LABELS)[number], string>): string {
  const total = SENTIMENT_LABELS.reduce((sum, label) => sum + counts[label], 0);
  if (total === 0) return 'no messages classified';
  const shares = percentShares(counts);
  return `${SENTIMENT_LABELS.map((label) => `${emojis[label]} ${shares[label]}%`).join(' · ')} of ${total} ${total === 1 ? 'message' : 'messages'}`;
}

async function storeAnswers(probe: () => Promise<unknown>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), STORE_PROBE_MS)));
  try {
    return await Promise.race([probe().then(() => true, () => false), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function formatBytes(bytes: number): string {
  return bytes >= 1e6 ? `${(bytes / 1e6).toFixed(0)} MB` : `${(bytes / 1e3).toFixed(0)} KB`;
}

function formatUptime(seconds: number): string {
  const days = Math.floor(seconds / 86_400);
  const hours = Math.floor((seconds % 86_400) / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  return days > 0 ? `${days} d ${hours} h` : hours > 0 ? `${hours} h ${minutes} min` : `${minutes} min ${seconds % 60} s`;
}
