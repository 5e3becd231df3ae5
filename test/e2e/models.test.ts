// The bot started on models other than the tests' usual tiny one, through the real discord.js client:
// a tokenizer whose labels share their first token, and the real model when it is there.
import { describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/Engine.js';
import { whenAnswered, repliesTo } from '../support/botHarness.js';
import { useBotFixture } from '../support/e2eFixture.js';
import { limitUnderLoad } from '../support/limitUnderLoad.js';
import { realModelPath } from '../support/realModel.js';
import { oneStartAtATime, runCalibrationDir } from '../support/runCalibrationDir.js';
import { THINKING_PLACEHOLDER } from '../../src/discord/answerMessage.js';
import { EMPTY_REPLY_PLACEHOLDER } from '../../src/discord/ReplyStreamer.js';
import { ensureFamilyModel, ensureTwoByteMergesModel, FAMILY_SPECS, TEST_THREADS } from '../support/testModels.js';

const SENTIMENT_EMOJIS = ['😄', '😐', '😢'];
const fixture = useBotFixture({ tempPrefix: 'models-e2e-' });
const realModel = realModelPath();

async function engineOn(modelPath: string): Promise<Engine> {
  return oneStartAtATime(modelPath, () => Engine.create({
    modelPath,
    threads: TEST_THREADS,
    contextSize: 1024,
    warmChannels: 2,
    historyMaxTokens: 256,
    replyMaxTokens: 24,
    systemPrompt: 'You are a kind assistant in a Discord channel.',
    sentimentCalibration: 'learned',
    // Learned in this run, once per model: the real tier's sentiment part reads the same fit.
    calibrationCacheDir: runCalibrationDir(),
    seed: 3,
  }));
}

/** Boots the bot on `engine`, sends two messages, and checks each got one sentiment reaction, then a reply. */
async function answersTwoMessages(engine: Engine): Promise<void> {
  try {
    const { bot, emu, channelId } = await fixture.boot({ engine });
    for (const content of ['I love this server, thanks everyone!', 'but my exam went badly today']) {
      const message = emu.sendUserMessage({ channelId, content });
      await whenAnswered(emu, bot, message.id);
      const reactions = emu.reactions(channelId, message.id).filter((reaction) => SENTIMENT_EMOJIS.includes(reaction.emoji));
      expect(reactions).toHaveLength(1);
      const replies = repliesTo(emu, channelId, message.id);
      expect(replies).toHaveLength(1);
      expect(reactions[0]!.time).toBeLessThanOrEqual(replies[0]!.createdAt);
    }
    expect((await bot.store.load(channelId)).map((turn) => turn.userText)).toEqual(['I love this server, thanks everyone!', 'but my exam went badly today']);
  } finally {
    await engine.dispose();
  }
}

describe('the bot on other models', () => {
  it('starts and answers with a tokenizer where "neutral" and "negative" share their first token', async () => {
    const engine = await engineOn(await ensureTwoByteMergesModel());
    const [neutralFirst] = engine.model.tokenize('neutral', false, 'trimLeadingSpace');
    const [negativeFirst] = engine.model.tokenize('negative', false, 'trimLeadingSpace');
    expect(neutralFirst).toBe(negativeFirst);
    await answersTwoMessages(engine);
  });

  it('shows "Thinking…" while a reasoning model (DeepSeek-R1-Distill, THINKING on) thinks, then replaces it with a non-empty reply', async () => {
    const r1 = FAMILY_SPECS.find((spec) => spec.family === 'DeepSeek-R1-Distill')!;
    const engine = await Engine.create({
      modelPath: await ensureFamilyModel(r1),
      threads: TEST_THREADS,
      contextSize: 1024,
      warmChannels: 1,
      historyMaxTokens: 256,
      replyMaxTokens: 12,
      thoughtTokens: 32,
      systemPrompt: 'You are a kind assistant in a Discord channel.',
      sentimentCalibration: 'off',
      seed: 3,
    });
    try {
      const { bot, emu, channelId } = await fixture.boot({ engine });
      const message = emu.sendUserMessage({ channelId, content: 'why is the sky blue?' });
      await whenAnswered(emu, bot, message.id);
      const [reply] = repliesTo(emu, channelId, message.id);
      // The tiny model never ends its thought: it runs to its 32-token budget, then the reply comes.
      expect(reply!.history[0]!.content).toBe(THINKING_PLACEHOLDER);
      expect(reply!.content).not.toBe(THINKING_PLACEHOLDER);
      expect(reply!.content.trim()).not.toBe('');
      expect(reply!.content).not.toBe(EMPTY_REPLY_PLACEHOLDER);
      expect(reply!.content).not.toContain('think>');
    } finally {
      await engine.dispose();
    }
  });

  // A first start with a model learns its sentiment calibration (300 texts): 197 s for SmolLM2 on 1 thread
  // of a 2-core machine at load 10-12, 21 s with the fit already learned; the limit stretches with the load.
  it.skipIf(!realModel)('starts and answers with the real model (SmolLM2-135M-Instruct, or REAL_MODEL)', async () => {
    await answersTwoMessages(await engineOn(realModel!));
  }, limitUnderLoad(300_000));
});
