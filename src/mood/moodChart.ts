import { createCanvas, type Canvas } from '@napi-rs/canvas';
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

/**
 * Shades each run of buckets without a message and names it when there is room, so a quiet span
 * reads as "no messages" rather than as a gap in the drawing.
 */
function emptySpans(summary: MoodSummary): Plugin<'bar'> {
  return {
    id: 'moodEmptySpans',
    beforeDatasetsDraw: (chart) => {
      const { ctx, chartArea } = chart;
      const slot = chartArea.width / summary.buckets.length;
      const empty = summary.buckets.map((bucket) => SENTIMENT_LABELS.every((label) => bucket.counts[label] === 0));
      ctx.save();
      for (let start = 0; start < empty.length; start++) {
        if (!empty[start]) continue;
        let end = start;
        while (end + 1 < empty.length && empty[end + 1]) end++;
        const left = chartArea.left + start * slot + slot * 0.04;
        const right = chartArea.left + (end + 1) * slot - slot * 0.04;
        ctx.fillStyle = EMPTY_FILL;
        ctx.fillRect(left, chartArea.top, right - left, chartArea.height);
        ctx.strokeStyle = GRID;
        ctx.setLineDash([6, 6]);
        ctx.strokeRect(left, chartArea.top, right - left, chartArea.height);
        if (right - left >= 110) {
          ctx.fillStyle = MUTED;
          ctx.font = '15px DejaVu Sans, sans-serif';
          ctx.textAlign = 'center';
          ctx.textBaseline = 'middle';
          ctx.fillText('no messages', (left + right) / 2, chartArea.top + chartArea.height / 2);
        }
        start = end;
      }
      ctx.restore();
    },
  };
}

const EMPTY_FILL = 'rgba(255, 255, 255, 0.04)';

/**
 * The legend's marker for a label: its emoji's face drawn in the label's colour (the chart's font
 * has no emoji, and an emoji font cannot be counted on), beside the label's word.
 */
export function faceIcon(label: SentimentLabel, size = 22): Canvas {
  const icon = createCanvas(size, size);
  const ctx = icon.getContext('2d');
  const centre = size / 2;
  const r = size / 2 - 1;
  ctx.fillStyle = MOOD_COLOURS[label];
  ctx.beginPath();
  ctx.arc(centre, centre, r, 0, 2 * Math.PI);
  ctx.fill();
  ctx.fillStyle = CHART_BACKGROUND;
  for (const side of [-1, 1]) {
    ctx.beginPath();
    ctx.arc(centre + side * r * 0.36, centre - r * 0.22, r * 0.13, 0, 2 * Math.PI);
    ctx.fill();
  }
  ctx.strokeStyle = CHART_BACKGROUND;
  ctx.lineWidth = Math.max(1.5, size * 0.09);
  ctx.lineCap = 'round';
  ctx.beginPath();
  if (label === 'positive') ctx.arc(centre, centre + r * 0.05, r * 0.5, 0.15 * Math.PI, 0.85 * Math.PI);
  else if (label === 'neutral') {
    ctx.moveTo(centre - r * 0.4, centre + r * 0.4);
    ctx.lineTo(centre + r * 0.4, centre + r * 0.4);
  } else ctx.arc(centre, centre + r * 0.85, r * 0.45, 1.2 * Math.PI, 1.8 * Math.PI);
  ctx.stroke();
  if (label === 'negative') {
    // The tear under the left eye.
    ctx.fillStyle = TEXT;
    ctx.beginPath();
    ctx.ellipse(centre - r * 0.36, centre + r * 0.2, r * 0.1, r * 0.17, 0, 0, 2 * Math.PI);
    ctx.fill();
  }
  return icon;
}

/** The mood of a channel over the range as a PNG: stacked bars per hour or day, by Chart.js on @napi-rs/canvas. */
export function renderMoodChart({ channelName, days, summary, width = 1200, height = 600 }: MoodChartOptions): Buffer {
  const canvas = createCanvas(width, height);
  const config: ChartConfiguration<'bar'> = {
    type: 'bar',
    data: {
      labels: bucketLabels(summary),
      datasets: SENTIMENT_LABELS.map((label) => ({
        label,
        pointStyle: faceIcon(label) as unknown as HTMLCanvasElement,
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
        legend: { position: 'bottom', labels: { color: TEXT, font: { size: 17 }, usePointStyle: true, boxWidth: 22, boxHeight: 22, padding: 22 } },
      },
      scales: {
        // Every label is decided by bucketLabels (a bar with data always has one), none skipped.
        x: { stacked: true, grid: { display: false }, ticks: { color: MUTED, font: { size: 14 }, maxRotation: 0, autoSkip: false }, border: { color: GRID } },
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
    plugins: [background, emptySpans(summary)],
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

/**
 * Each bucket's x-axis label, short enough that none is skipped: a day's date (the month under the
 * first day and each 1st), an hour's `09` (the day under midnight and the first hour). Every
 * bucket that holds messages and the newest one are labelled; empty hours only every third.
 * An empty string is no label.
 */
export function bucketLabels(summary: MoodSummary): Array<string | string[]> {
  const last = summary.buckets.length - 1;
  return summary.buckets.map((bucket, index) => {
    const at = new Date(bucket.start);
    const held = SENTIMENT_LABELS.some((label) => bucket.counts[label] > 0);
    if (summary.unit === 'day') return index === 0 || at.getUTCDate() === 1 ? [String(at.getUTCDate()), MONTHS[at.getUTCMonth()]!] : String(at.getUTCDate());
    const hour = at.getUTCHours();
    if (!held && index !== last && index !== 0 && hour % 3 !== 0) return '';
    return index === 0 || hour === 0 ? [pad(hour), dayName(bucket.start)] : pad(hour);
  });
}
