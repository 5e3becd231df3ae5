import type { LlamaModel } from 'node-llama-cpp';
import type { HistoryTurn } from '../../src/history/HistoryStore.js';

/** Chat messages of about 20 tokens each (under the Qwen tokenizer), the kind a channel sees. */
export const BENCH_MESSAGES = [
  'I finally fixed the build after three hours and everything passes now, feeling great',
  'the train was late again this morning and I missed the first half of the meeting',
  'does anyone know if the library opens at nine or ten on Saturdays this month',
  'just got the tickets for the concert next week, cannot wait to see them live',
  'my laptop died in the middle of the exam and I lost all of my notes',
  'we moved the team sync to Thursday afternoon, the room is on the second floor',
  'the new coffee place downstairs is honestly the best thing that happened this year',
  'I have been waiting for the support reply for two weeks and nobody answers',
];

const TOPICS = ['the weekend hike', 'a bug in the parser', 'dinner plans', 'the new album', 'exam prep', 'a broken bike', 'the rent increase', 'a birthday party'];

/** A channel history of whole turns, about `targetTokens` tokens long under this model's tokenizer. */
export function benchHistory(model: LlamaModel, targetTokens: number): { turns: HistoryTurn[]; tokens: number } {
  const turns: HistoryTurn[] = [];
  let tokens = 0;
  for (let i = 0; tokens < targetTokens; i++) {
    const topic = TOPICS[i % TOPICS.length]!;
    const turn: HistoryTurn = {
      userName: i % 2 ? 'Ann' : 'Bo',
      userText: `Can we talk about ${topic}? ${BENCH_MESSAGES[i % BENCH_MESSAGES.length]}`,
      reply: `Sure, about ${topic}: that sounds like a lot to deal with, and I am glad you shared it. Tell me more about how it went.`,
      at: i,
    };
    const turnTokens = model.tokenize(`${turn.userName}: ${turn.userText}`).length + model.tokenize(turn.reply ?? '').length + 20;
    if (tokens + turnTokens > targetTokens) break;
    turns.push(turn);
    tokens += turnTokens;
  }
  return { turns, tokens };
}
