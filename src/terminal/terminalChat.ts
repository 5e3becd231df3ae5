import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import type { Config } from '../config.js';
import type { SentimentResult } from '../engine/SentimentClassifier.js';
import { ModelUnavailableError, UserError, isAbort } from '../errors.js';
import type { HistoryStore } from '../history/HistoryStore.js';
import type { Logger } from '../logger.js';
import { moodReport } from '../mood/moodReport.js';
import type { ChannelSessions } from '../sessions/ChannelSessions.js';

export interface TerminalChatOptions {
  sessions: ChannelSessions;
  /** Where /mood reads the chat's mood log. */
  store: Pick<HistoryStore, 'loadMood'>;
  /** Where /mood writes its chart. Default `data/mood` (relative to the working directory). */
  chartFolder?: string;
  config: Pick<Config, 'CHAT_CHANNEL' | 'SENTIMENT_EMOJIS'>;
  logger: Logger;
  userName: string;
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
  /** Show a prompt before each line (an interactive terminal). */
  interactive: boolean;
  /** Ends the chat (SIGINT/SIGTERM): no more lines are read and a running reply is cut, marked as such. */
  signal?: AbortSignal;
}

/** Shown after a reply that shutdown cut off. */
export const TERMINAL_CUT_MARKER = ' …(reply cut off: shutting down)';

export const HELP = 'Type a message and press Enter. Commands: /sentiment <text>, /mood [days], /reset, /help, /quit (or Ctrl+C).';

/** What /reset answers: the mood log is a record of its own, kept for /mood. */
export const RESET_DONE = 'History cleared for this chat: the bot forgets the conversation. The mood log is kept (/mood still shows it).';

/** Talks to the engine as one channel, one input line at a time; resolves at /quit or end of input. */
export async function runTerminalChat(options: TerminalChatOptions): Promise<void> {
  const { sessions, store, chartFolder = 'data/mood', config, logger, userName, input, output, interactive, signal } = options;
  const channelId = config.CHAT_CHANNEL;
  const say = (line: string): void => void output.write(line + '\n');
  const describe = ({ label, confidence }: SentimentResult) => `${config.SENTIMENT_EMOJIS[label]} ${label} (${Math.round(confidence * 100)}%)`;
  const lines = readline.createInterface({ input, terminal: false });
  const prompt = () => interactive && output.write('you> ');
  let closing: Promise<void> | undefined;
  const stop = () => {
    lines.close();
    // Aborts the running reply; turns already answered are written before it resolves.
    closing = sessions.close();
  };
  if (signal?.aborted) stop();
  else signal?.addEventListener('abort', stop, { once: true });
  if (interactive) say(HELP);
  prompt();
  for await (const raw of lines) {
    if (signal?.aborted) break; // lines read before the signal are left unanswered
    const line = raw.trim();
    try {
      if (line === '/quit') break;
      if (line === '') {
        // nothing to do for a blank line
      } else if (line === '/help') {
        say(HELP);
      } else if (line === '/reset') {
        await sessions.reset(channelId);
        say(RESET_DONE);
      } else if (line === '/sentiment' || line.startsWith('/sentiment ')) {
        const result = await sessions.classify(channelId, line.slice('/sentiment'.length));
        say(describe(result));
      } else if (line === '/mood' || line.startsWith('/mood ')) {
        const argument = line.slice('/mood'.length).trim();
        if (argument !== '' && !/^\d+$/.test(argument)) throw new UserError('Write /mood, or /mood and a number of days from 1 to 30, e.g. /mood 7.');
        await sessions.moodWritten(channelId);
        const days = argument === '' ? undefined : Number(argument);
        const report = await moodReport({ store, channelId, channelName: channelId, days, emojis: config.SENTIMENT_EMOJIS });
        say(report.text);
        if (report.png) {
          const file = path.resolve(chartFolder, `${channelId}-${report.summary.buckets.length}${report.summary.unit === 'day' ? 'd' : 'h'}.png`);
          fs.mkdirSync(path.dirname(file), { recursive: true });
          fs.writeFileSync(file, report.png);
          say(`Chart: ${file}`);
        }
      } else if (line.startsWith('/')) {
        say(`Unknown command ${line.split(/\s/)[0]}. ${HELP}`);
      } else {
        let streamed = false;
        const outcome = await sessions.handleMessage(
          { channelId, userName, text: line },
          {
            onSentiment: (result) => say(describe(result)),
            onReplyStart: () => void output.write('bot> '),
            onText: (delta) => {
              streamed ||= delta.trim() !== '';
              output.write(delta);
            },
          },
        );
        say(streamed ? '' : '(no reply)');
        if (!outcome.saved) say('(note: this turn could not be saved to the history database yet; see the log)');
      }
    } catch (error) {
      if (isAbort(error) && signal?.aborted) {
        say(TERMINAL_CUT_MARKER);
      } else if (error instanceof UserError) {
        say(error.message);
      } else if (error instanceof ModelUnavailableError) {
        say(`(the model server is unavailable: ${error.detail}; your message was kept, try again in a minute)`);
      } else {
        logger.error('terminal chat turn failed', { error });
        say('Something went wrong with that message; the details are in the log.');
      }
    }
    prompt();
  }
  lines.close();
  signal?.removeEventListener('abort', stop);
  await closing;
}
