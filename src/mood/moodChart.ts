import { createCanvas } from '@napi-rs/canvas';
import { BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, SubTitle, Title, type ChartConfiguration, type Plugin } from 'chart.js';
import { SENTIMENT_LABELS, type SentimentLabel } from '../domain.js';
import { percentShares, type MoodSummary } from './moodSummary.js';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Legend, Title, SubTitle);

/**
 * The colours the three emojis stand for: 😄 the amber of its face, 😐 a plain grey, 😢 the blue of
 * its tear. Amber and blue stay apart for red-green colour blindness, and each stands out from the
 * card's dark background by at least 3:1, so the chart reads the same in Discord's dark and light
 * themes (the card is opaque: its colours never depend on the theme behind it).
 */
export const MOOD_COLOURS: Readonly<Record<SentimentLabel, string>> = Object.freeze({ positive: '#f0b232', neutral: '#a1a7b0', negative: '#5b8def' });
export const CHART_BACKGROUND = '#2b2d31';
const TEXT = '#f2f3f5';
const MUTED = '#b5bac1';
const GRID = '#3f4147';

export interface MoodChartOptions {
  /** The channel's name as shown in the title (without the #). */
  channelName: string;
  days: number;
  summary: MoodSummary;
  /** Pixels. Default 1200 × 600 (Discord shows it scaled to the message width). */
  width?: number;
  height?: number;
}

// Draws the opaque card behind the chart (a canvas starts transparent).
const background: Plugin<'bar'> = {
  id: 'moodBackground',
  beforeDraw: (chart) => {
    const { ctx, width, height } = chart;
    ctx.save();
    ctx.fillStyle = CHART_BACKGROUND;
    ctx.fillRect(0, 0, width, height);
    ctx.restore();
  },
};

/** The mood of a channel over the range as a PNG: stacked bars per hour or day, by Chart.js on @napi-rs/canvas. */
export function renderMoodChart({ channelName, days, summary, width = 1200, height = 600 }: MoodChartOptions): Buffer {
  const canvas = createCanvas(width, height);
  const config: ChartConfiguration<'bar'> = {
    type: 'bar',
    data: {
      labels: summary.buckets.map((bucket) => bucketLabel(bucket.start, summary.unit)),
      datasets: SENTIMENT_LABELS.map((label) => ({
        label,
        data: summary.buckets.map((bucket) => bucket.counts[label]),
        backgroundColor: MOOD_COLOURS[label],
        borderWidth: 0,
        // Bars fill their whole slot but a hair: a day's pixel columns are that day's colours.
        barPercentage: 1,
        categoryPercentage: 0.92,
      })),
    },
    options: {
      responsive: false,
      animation: false,
      devicePixelRatio: 1,
      layout: { padding: { top: 8, right: 24, bottom: 12, left: 16 } },
      font: { family: 'DejaVu Sans, sans-serif', size: 16 },
      color: TEXT,
      plugins: {
        title: { display: true, text: `#${channelName} · mood, ${rangeName(days)}`, color: TEXT, font: { size: 26, weight: 'bold' }, padding: { top: 12, bottom: 4 } },
        subtitle: { display: true, text: subtitle(summary), color: MUTED, font: { size: 17 }, padding: { bottom: 8 } },
        legend: { position: 'bottom', labels: { color: TEXT, font: { size: 17 }, boxWidth: 22, boxHeight: 16, padding: 22 } },
      },
      scales: {
        x: { stacked: true, grid: { display: false }, ticks: { color: MUTED, font: { size: 14 }, maxRotation: 0, autoSkipPadding: 14 }, border: { color: GRID } },
        y: {
          stacked: true,
          beginAtZero: true,
          grid: { color: GRID },
          border: { display: false },
          ticks: { color: MUTED, font: { size: 14 }, precision: 0 },
          title: { display: true, text: `messages per ${summary.unit}`, color: MUTED, font: { size: 15 } },
        },
      },
    },
    plugins: [background],
  };
  // Chart.js takes any object with getContext('2d'); @napi-rs/canvas is one, without a DOM.
  const chart = new Chart(canvas as unknown as HTMLCanvasElement, config);
  try {
    return canvas.toBuffer('image/png');
  } finally {
    chart.destroy();
  }
}

/** `last 7 days`, `last 24 hours`. */
export function rangeName(days: number): string {
  return days === 1 ? 'last 24 hours' : days === 2 ? 'last 48 hours' : `last ${days} days`;
}

/** `27 Nov – 3 Dec 2026 UTC · 10 messages · positive 40% · neutral 20% · negative 40% · busiest hour 2 Dec 09:00 (4)` */
export function subtitle(summary: MoodSummary): string {
  const shares = percentShares(summary.counts);
  const parts = [
    `${dayName(summary.from)} – ${dayName(summary.to)} ${new Date(summary.to).getUTCFullYear()} UTC`,
    `${summary.total} ${summary.total === 1 ? 'message' : 'messages'}`,
    ...SENTIMENT_LABELS.map((label) => `${label} ${shares[label]}%`),
  ];
  if (summary.busiestHour) parts.push(`busiest hour ${hourName(summary.busiestHour.start)} (${summary.busiestHour.count})`);
  return parts.join(' · ');
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad = (n: number) => String(n).padStart(2, '0');
export const dayName = (at: number) => `${new Date(at).getUTCDate()} ${MONTHS[new Date(at).getUTCMonth()]}`;
export const hourName = (at: number) => `${dayName(at)} ${pad(new Date(at).getUTCHours())}:00`;

function bucketLabel(start: number, unit: MoodSummary['unit']): string {
  if (unit === 'day') return dayName(start);
  return new Date(start).getUTCHours() === 0 ? dayName(start) : `${pad(new Date(start).getUTCHours())}:00`;
}
