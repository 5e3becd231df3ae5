/**
 * `npm run bench:families`: what each model family of issue 17 costs a warm channel, on the tiny
 * generated model of each family (test/support/testModels.ts) through the real Engine. Counts, not
 * timings: the tokens a channel's second reply evaluated for a new message (over a mentions-mode
 * history), the same after the date moved on 36 hours, and for the reasoning families the tokens a
 * thought that never ends took with THINKING on. unit/modelFamilies asserts the same bounds.
 */
import { Engine } from '../../src/engine/Engine.js';
import { modelChatWrapper } from '../../src/engine/modelChatWrapper.js';
import type { HistoryTurn } from '../../src/domain.js';
import { endlessThinker, FAMILY_SPECS, familyEngineOptions, SMOLLM3_ORIGINAL_SPEC, type FamilySpec } from '../support/testModels.js';

const turn = (userName: string, userText: string, reply?: string): HistoryTurn => ({ userName, userText, ...(reply !== undefined && { reply }), at: 0 });
const NEW_MESSAGE = 'and me?';

async function engineFor(spec: FamilySpec, thoughtTokens?: number): Promise<Engine> {
  return Engine.create({ ...(await familyEngineOptions(spec)), ...(thoughtTokens !== undefined && { thoughtTokens }) });
}

/** Runs `body` with the clock 36 hours ahead (every `new Date()` and `Date.now()`), as after midnight. */
async function tomorrow<T>(body: () => Promise<T>): Promise<T> {
  const RealDate = Date;
  const shift = 36 * 3600_000;
  globalThis.Date = class extends RealDate {
    constructor(...args: unknown[]) {
      if (args.length === 0) super(RealDate.now() + shift);
      else super(...(args as [string]));
    }
    static override now(): number {
      return RealDate.now() + shift;
    }
  } as DateConstructor;
  try {
    return await body();
  } finally {
    globalThis.Date = RealDate;
  }
}

interface Row {
  family: string;
  renderer: string;
  messageTokens: number;
  warm: number;
  warmAfterMidnight: number;
  thought?: string;
}

async function measure(spec: FamilySpec): Promise<Row> {
  const engine = await engineFor(spec);
  try {
    const { source } = modelChatWrapper(engine.model, { thinking: false, today: new Date() });
    const history = [turn('Ann', 'hi all', 'Hello Ann!'), turn('Bob', 'anyone here?')];
    const first = await engine.reply({ channelId: 'a', turns: history, userName: 'Ann', userText: 'Mochi, what is up?' });
    const answered = [...history, turn('Ann', 'Mochi, what is up?', first.text)];
    const second = await engine.reply({ channelId: 'a', turns: answered, userName: 'Cy', userText: NEW_MESSAGE });
    // The same again on a second channel, its second reply a day and a half later.
    const third = await engine.reply({ channelId: 'b', turns: history, userName: 'Ann', userText: 'Mochi, what is up?' });
    const later = await tomorrow(() => engine.reply({ channelId: 'b', turns: [...history, turn('Ann', 'Mochi, what is up?', third.text)], userName: 'Cy', userText: NEW_MESSAGE }));
    return {
      family: spec.family,
      renderer: source,
      messageTokens: engine.model.tokenize(`Cy: ${NEW_MESSAGE}`, false).length,
      warm: second.evaluatedTokens,
      warmAfterMidnight: later.evaluatedTokens,
    };
  } finally {
    await engine.dispose();
  }
}

async function endlessThought(spec: FamilySpec): Promise<string> {
  const thinker = endlessThinker(spec, spec.family.includes('January') ? '<｜Assistant｜>' : '\n');
  const engine = await engineFor(thinker, 16);
  try {
    const result = await engine.reply({ channelId: 't', turns: [], userName: 'Ann', userText: 'why is the sky blue?' });
    return `${result.generatedTokens} tokens, reply "${result.text}"`;
  } finally {
    await engine.dispose();
  }
}

const rows: Row[] = [];
for (const spec of [...FAMILY_SPECS, SMOLLM3_ORIGINAL_SPEC]) {
  const row = await measure(spec);
  if (spec.reasoning) row.thought = await endlessThought(spec);
  rows.push(row);
  process.stderr.write(`${spec.family}: done\n`);
}
console.log('| family | prompt renderer | new message | warm reply evaluated | after midnight | endless thought, THINKING=16 + reply cap 6 |');
console.log('|---|---|---|---|---|---|');
for (const row of rows) {
  console.log(`| ${row.family} | ${row.renderer} | ${row.messageTokens} | ${row.warm} | ${row.warmAfterMidnight} | ${row.thought ?? ''} |`);
}
