/**
 * /metrics and /healthz for operators (METRICS_PORT), scraped while the real discord.js client
 * runs against the emulator; and the start-up error when the port is taken.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { whenAnswered } from '../support/botHarness.js';
import { NO_BACKGROUND_CALIBRATION } from '../support/botProcess.js';
import { DiscordEmulator } from '../support/DiscordEmulator.js';
import { useBotFixture } from '../support/e2eFixture.js';
import { ensureTinyModel } from '../support/testModels.js';

const fixture = useBotFixture({ tinyEngine: true, tempPrefix: 'bot-metrics-' });

async function get(port: number, path: string): Promise<{ status: number; body: string; type: string | null }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: response.status, body: await response.text(), type: response.headers.get('content-type') };
}

/** The value of one sample line (`name{labels} value`) of a Prometheus text exposition. */
function sample(body: string, line: string): number | undefined {
  const found = body.split('\n').find((candidate) => candidate.startsWith(`${line} `));
  return found === undefined ? undefined : Number(found.slice(line.length + 1));
}

describe('metrics and health', () => {
  it('serves Prometheus metrics (queue, latencies, tokens, outcomes, store errors) and /healthz 200 while connected, 503 once the gateway is gone', async () => {
    const { bot, emu } = await fixture.boot({ env: { METRICS_PORT: '0' } });
    const port = bot.metricsServer!.port;
    await whenAnswered(emu, bot, emu.sendUserMessage({ content: 'hello metrics' }).id);

    const health = await get(port, '/healthz');
    expect(health.status).toBe(200);
    const metrics = await get(port, '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.type).toContain('text/plain');
    console.log(`/metrics scrape: ${Buffer.byteLength(metrics.body)} bytes, ${metrics.body.split('\n').filter((line) => line && !line.startsWith('#')).length} samples`);
    const body = metrics.body;
    expect(sample(body, 'moodbot_queue_depth{lane="reply"}')).toBe(0);
    expect(sample(body, 'moodbot_queue_depth{lane="sentiment"}')).toBe(0);
    expect(sample(body, 'moodbot_replies_running')).toBe(0);
    expect(sample(body, 'moodbot_sentiment_seconds_count')).toBe(1);
    expect(sample(body, 'moodbot_reply_first_token_seconds_count')).toBe(1);
    expect(sample(body, 'moodbot_reply_tokens_total')).toBe(24); // the tiny engine's replyMaxTokens: it never stops early
    expect(sample(body, 'moodbot_reply_tokens_per_second')).toBeGreaterThan(0);
    expect(sample(body, 'moodbot_messages_total{outcome="answered"}')).toBe(1);
    expect(sample(body, 'moodbot_messages_total{outcome="busy"}')).toBe(0);
    expect(sample(body, 'moodbot_store_errors_total')).toBe(0);
    const labels = ['positive', 'neutral', 'negative'].map((label) => sample(body, `moodbot_sentiment_total{label="${label}"}`));
    expect(labels.every((count) => count === 0 || count === 1)).toBe(true);
    expect(labels.reduce((a, b) => a! + b!, 0)).toBe(1);
    expect(sample(body, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    expect((await get(port, '/nothing')).status).toBe(404);

    await bot.bot.client.destroy();
    expect((await get(port, '/healthz')).status).toBe(503);
  });

  it('listens on 127.0.0.1 only, unless METRICS_HOST says otherwise', async () => {
    const { bot } = await fixture.boot({ env: { METRICS_PORT: '0' } });
    expect(bot.logs.map((line) => JSON.parse(line) as Record<string, unknown>).find((entry) => entry.message === 'metrics server listening')).toMatchObject({ host: '127.0.0.1' });
  });

  it('refuses to start, naming the port, when METRICS_PORT is taken', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as AddressInfo;
    // A Discord that accepts the token: the start gets past the token check to the metrics port.
    const emulator = await DiscordEmulator.start();
    try {
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/index.ts'], {
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          DISCORD_TOKEN: emulator.token,
          DISCORD_API_URL: emulator.apiUrl,
          MODEL: await ensureTinyModel(),
          DATABASE_URL: 'sqlite://:memory:',
          THREADS: '1',
          METRICS_PORT: String(port),
          ...NO_BACKGROUND_CALIBRATION,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (chunk) => (stderr += chunk));
      const started = Date.now();
      const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
      expect(code).toBe(1);
      expect(stderr).toContain(`METRICS_PORT ${port} is already in use on 127.0.0.1`);
      expect(Date.now() - started).toBeLessThan(15_000);
    } finally {
      blocker.close();
      await emulator.stop();
    }
  });
});
