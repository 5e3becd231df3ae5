/**
 * Faults a real llama-server cannot be made to show on demand, put in front of a REAL one by a proxy
 * (test/support/FaultyProxy.ts): the bot (`npm start` as a child process, the emulator, INFERENCE_URL = the proxy, no
 * model file) waits out a 429's Retry-After and then answers; a reply whose stream stalls ends after
 * INFERENCE_IDLE_TIMEOUT_MS with the text so far and a notice, and the next message is answered.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MODEL_GONE_MARKER } from '../../src/discord/answerMessage.js';
import { startBotProcess, type BotProcess } from '../support/botProcess.js';
import { DiscordEmulator } from '../support/DiscordEmulator.js';
import { FaultyProxy, streamedCompletion } from '../support/FaultyProxy.js';
import { HOW_TO_GET_LLAMA_SERVER, llamaServerAvailable, startLlamaServer, type RunningLlamaServer } from '../support/llamaServer.js';
import { HOW_TO_GET_A_REAL_MODEL, REAL_MODEL_PATH } from '../support/realModel.js';
import { tempDirs } from '../support/tempDir.js';

const ready = llamaServerAvailable() && existsSync(REAL_MODEL_PATH);
if (!ready) console.warn(existsSync(REAL_MODEL_PATH) ? HOW_TO_GET_LLAMA_SERVER : HOW_TO_GET_A_REAL_MODEL);

const SLOW = 180_000;

describe.skipIf(!ready)('the bot on a llama-server behind a faulty proxy', () => {
  const dirs = tempDirs('bot-server-faults-');
  let server: RunningLlamaServer;
  let proxy: FaultyProxy | undefined;
  let emu: DiscordEmulator | undefined;
  let bot: BotProcess | undefined;

  beforeAll(async () => {
    server = await startLlamaServer({ modelPath: REAL_MODEL_PATH, parallel: 3, contextSize: 3 * 1024, threads: 1 });
  }, SLOW);
  afterEach(async () => {
    await bot?.stop();
    await emu?.stop();
    await proxy?.stop();
    bot = emu = proxy = undefined;
  });
  afterAll(async () => {
    await server?.stop();
    dirs.removeAll();
  });

  async function boot(overrides: Record<string, string> = {}) {
    proxy = await FaultyProxy.start(server.url);
    emu = await DiscordEmulator.start();
    const folder = dirs.make();
    const started = startBotProcess({
      DISCORD_TOKEN: emu.token,
      DISCORD_API_URL: emu.apiUrl,
      INFERENCE_URL: proxy.url,
      INFERENCE_PARALLEL: '2',
      MODEL: path.join(folder, 'no-such-model.gguf'),
      MODELS_DIR: path.join(folder, 'models'),
      DATABASE_URL: `sqlite://${path.join(folder, 'history.sqlite')}`,
      SENTIMENT_CALIBRATION: 'off',
      HISTORY_MAX_TOKENS: '256',
      REPLY_MAX_TOKENS: '48',
      ...overrides,
    });
    bot = started;
    await emu.waitFor(() => started.lines().some((line) => line.message === 'bot is online') || started.child.exitCode !== null, { timeoutMs: 60_000, description: 'the bot online' });
    expect(started.child.exitCode, started.output()).toBeNull();
    return { emu, bot: started, proxy };
  }

  const repliesTo = (channelId: string, messageId: string) => emu!.botMessages(channelId).filter((message) => message.replyTo === messageId);

  async function answered(messageId: string): Promise<void> {
    await emu!.waitFor(() => bot!.answeredBy(messageId).length > 0 || bot!.child.exitCode !== null, { timeoutMs: 120_000, description: `message ${messageId} answered` });
    expect(bot!.child.exitCode, bot!.output().slice(-3000)).toBeNull();
  }

  it("waits out a 429's Retry-After, then answers in full", async () => {
    const { emu, proxy } = await boot();
    proxy.refuse(streamedCompletion, { status: 429, headers: { 'Retry-After': '2' } });
    const channelId = emu.defaultChannelId;
    const message = emu.sendUserMessage({ channelId, content: 'Good morning! What a lovely day.' });
    await answered(message.id);

    const replies = proxy.requests.filter((request) => request.stream);
    expect(replies.map((request) => request.outcome)).toEqual(['refused', 'passed']);
    expect(replies[1]!.at - replies[0]!.at).toBeGreaterThanOrEqual(1900);
    const [reply] = repliesTo(channelId, message.id);
    expect(reply!.content.trim().length).toBeGreaterThan(0);
    expect(reply!.content).not.toMatch(/unavailable|went wrong/i);
  }, SLOW);

  it('ends a reply whose stream stalls after INFERENCE_IDLE_TIMEOUT_MS with the text so far and a notice, and answers the next message', async () => {
    const { emu, proxy } = await boot({ INFERENCE_IDLE_TIMEOUT_MS: '4000' });
    // About a dozen SSE events of text pass, then nothing.
    proxy.stall(streamedCompletion, 3000);
    const channelId = emu.defaultChannelId;
    const message = emu.sendUserMessage({ channelId, content: 'Tell me a long story about a lighthouse.' });
    const sent = Date.now();
    const cut = await emu.waitFor(() => repliesTo(channelId, message.id).find((posted) => posted.content.endsWith(MODEL_GONE_MARKER.trim())), {
      timeoutMs: 60_000,
      description: 'the stalled reply cut and marked',
    });
    const waited = Date.now() - sent;

    expect(proxy.requests.filter((request) => request.stream).map((request) => request.outcome)).toEqual(['stalled']);
    // Some text came before the stall, and it stays in front of the notice.
    expect(cut.content.length).toBeGreaterThan(MODEL_GONE_MARKER.trim().length + 5);
    expect(waited).toBeGreaterThanOrEqual(4000);
    console.log(`stalled stream: cut after ${waited} ms: ${JSON.stringify(cut.content.slice(-160))}`);

    const next = emu.sendUserMessage({ channelId, content: 'Never mind. Hello!' });
    await answered(next.id);
    const [reply] = repliesTo(channelId, next.id);
    expect(reply!.content.trim().length).toBeGreaterThan(0);
    expect(reply!.content).not.toMatch(/unavailable|went wrong/i);
  }, SLOW);
});
