import { parentPort } from 'node:worker_threads';
import { renderMoodChart, type MoodChartOptions } from './moodChart.js';

// The worker thread of MoodChartRenderer: draws one chart per message, in arrival order.
parentPort!.on('message', ({ id, options }: { id: number; options: MoodChartOptions }) => {
  try {
    const png = renderMoodChart(options);
    parentPort!.postMessage({ id, png });
  } catch (error) {
    parentPort!.postMessage({ id, error: error instanceof Error ? error.message : String(error) });
  }
});
