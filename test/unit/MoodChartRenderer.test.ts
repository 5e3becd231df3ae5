import { afterEach, describe, expect, it } from 'vitest';
import { renderMoodChart } from '../../src/mood/moodChart.js';
import { Worker } from 'node:worker_threads';
import { MoodChartRenderer } from '../../src/mood/MoodChartRenderer.js';
import { DAY_MS, summarizeMood } from '../../src/mood/moodSummary.js';

const NOW = Date.UTC(2026, 11, 3, 15, 40);
const records = Array.from({ length: 3000 }, (_, i) => ({ at: NOW - (i * 30 * DAY_MS) / 3000, label: (['positive', 'neutral', 'negative'] as const)[i % 3]!, confidence: 0.8 }));
const options = { channelName: 'general', days: 30, summary: summarizeMood(records, { days: 30, now: NOW }) };

let renderer: MoodChartRenderer;
afterEach(() => renderer?.dispose());

/** The longest the event loop went without a turn while `work` ran (a 1 ms timer that notes each tick). */
async function longestStall(work: () => Promise<unknown> | unknown): Promise<number> {
  let last = performance.now();
  let longest = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 1);
  await new Promise((resolve) => setTimeout(resolve, 5));
  await work();
  await new Promise((resolve) => setTimeout(resolve, 5));
  clearInterval(timer);
  return longest;
}

describe('MoodChartRenderer', () => {
  it('draws on a worker thread the same PNG the chart module draws in place', async () => {
    renderer = new MoodChartRenderer();

    const png = await renderer.render(options);

    expect(png.equals(renderMoodChart(options))).toBe(true);
  });

  it('keeps the event loop turning while it draws, where drawing in place stalls it for the whole chart', async () => {
    renderer = new MoodChartRenderer();
    await renderer.render(options); // the worker's start and first draw (fonts) are not the point here

    const inPlace = await longestStall(() => {
      for (let i = 0; i < 3; i++) renderMoodChart(options);
    });
    const offThread = await longestStall(() => Promise.all([renderer.render(options), renderer.render(options), renderer.render(options)]));

    console.log(`longest event-loop stall over 3 charts: in place ${inPlace.toFixed(0)} ms, on the worker ${offThread.toFixed(0)} ms`);
    expect(offThread).toBeLessThan(inPlace / 2);
  });

  it('fails the charts it holds when closed, and starts a new worker for the next one', async () => {
    renderer = new MoodChartRenderer();
    const held = renderer.render(options).then(
      () => 'drawn',
      (error: Error) => error.message,
    );

    await renderer.dispose();

    expect(await held).toBe('The chart renderer was closed.');
    expect((await renderer.render(options)).subarray(1, 4).toString()).toBe('PNG');
  });

  it("keeps a chart sent to a new worker when the closed one's exit comes late", async () => {
    renderer = new MoodChartRenderer();
    await renderer.render(options);

    const closing = renderer.dispose();
    const next = renderer.render(options);
    await closing;

    expect((await next).subarray(1, 4).toString()).toBe('PNG');
  });

  it('fails a chart whose draw hangs after its timeout, stops that worker, and draws the next chart on a new one', async () => {
    const workers: string[] = [];
    // The first worker hangs on every chart, as a stuck draw would; the next one answers at once.
    const hangs = "require('node:worker_threads').parentPort.on('message', () => { for (;;); });";
    const answers = "const { parentPort } = require('node:worker_threads'); parentPort.on('message', ({ id }) => parentPort.postMessage({ id, png: Buffer.from('new worker') }));";
    renderer = new MoodChartRenderer({
      timeoutMs: 300,
      createWorker: () => {
        workers.push(workers.length === 0 ? 'hung' : 'next');
        return new Worker(workers.length === 1 ? hangs : answers, { eval: true });
      },
    });

    const hung = renderer.render(options).then(
      () => 'drawn',
      (error: Error) => error.message,
    );

    expect(await hung).toBe('Drawing the mood chart took longer than 0.3 s; it was given up.');
    expect((await renderer.render(options)).toString()).toBe('new worker');
    expect(workers).toEqual(['hung', 'next']);
  });
});
