// Chart.js, registered with only the pieces the dashboard draws (tree-shaken bundle), and helpers
// for the chart kinds it uses. Charts are updated in place (chart.update('none')), never rebuilt,
// so polling does not flicker or leak canvases.
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  type ChartConfiguration,
  Filler,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
} from 'chart.js';

Chart.register(
  BarController,
  BarElement,
  CategoryScale,
  Filler,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
);
Chart.defaults.font.family =
  'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif';
Chart.defaults.color = '#334155';
Chart.defaults.animation = false;
Chart.defaults.maintainAspectRatio = false;

export { Chart };

export const PALETTE = [
  '#2563eb', '#16a34a', '#f59e0b', '#dc2626', '#7c3aed', '#0891b2', '#db2777', '#65a30d',
  '#ea580c', '#475569', '#0d9488', '#9333ea',
];

export function color(i: number): string {
  return PALETTE[i % PALETTE.length];
}

// Charts live on canvases that pages drop when they unmount; destroy them with the page.
const live = new Set<Chart>();

export function track<T extends Chart>(c: T): T {
  live.add(c);
  return c;
}

export function destroyAll(): void {
  for (const c of live) c.destroy();
  live.clear();
}

export function lineChart(
  canvas: HTMLCanvasElement,
  yTitle: string,
  series: { label: string; color?: string }[] = [],
): Chart<'line', number[], string> {
  const config: ChartConfiguration<'line', number[], string> = {
    type: 'line',
    data: {
      labels: [],
      datasets: series.map((s, i) => ({
        label: s.label,
        data: [],
        borderColor: s.color ?? color(i),
        backgroundColor: s.color ?? color(i),
        borderWidth: 2,
        pointRadius: 0,
        tension: 0.25,
      })),
    },
    options: {
      interaction: { mode: 'index', intersect: false },
      scales: {
        x: { ticks: { maxTicksLimit: 8, autoSkip: true } },
        y: { beginAtZero: true, title: { display: true, text: yTitle } },
      },
      plugins: { legend: { position: 'bottom', labels: { boxWidth: 12 } } },
    },
  };
  return track(new Chart(canvas, config));
}

// Horizontal bars: labels top to bottom; values in [0, 1] shown as percentages when `percent`.
export function hbarChart(
  canvas: HTMLCanvasElement,
  labels: string[],
  values: number[],
  opts: { percent?: boolean; color?: string; colors?: string[]; title?: string; tooltips?: string[] } = {},
): Chart<'bar', number[], string> {
  const config: ChartConfiguration<'bar', number[], string> = {
    type: 'bar',
    data: {
      labels,
      datasets: [
        {
          label: opts.title ?? '',
          data: values,
          backgroundColor: opts.colors ?? opts.color ?? PALETTE[0],
          borderRadius: 3,
          barPercentage: 0.85,
        },
      ],
    },
    options: {
      indexAxis: 'y',
      scales: {
        x: {
          beginAtZero: true,
          ticks: opts.percent ? { callback: (v) => `${Math.round(Number(v) * 100)}%` } : {},
        },
        y: { ticks: { autoSkip: false } },
      },
      plugins: {
        legend: { display: false },
        tooltip: {
          callbacks: {
            title: (items) =>
              opts.tooltips && items[0] ? opts.tooltips[items[0].dataIndex] ?? items[0].label : items[0]?.label ?? '',
            label: (item) =>
              opts.percent ? `${(Number(item.raw) * 100).toFixed(1)}%` : String(item.formattedValue),
          },
        },
      },
    },
  };
  return track(new Chart(canvas, config));
}

export function barChart(
  canvas: HTMLCanvasElement,
  labels: string[],
  values: number[],
  opts: { colors?: string[]; yTitle?: string } = {},
): Chart<'bar', number[], string> {
  const config: ChartConfiguration<'bar', number[], string> = {
    type: 'bar',
    data: {
      labels,
      datasets: [
        {
          label: opts.yTitle ?? '',
          data: values,
          backgroundColor: opts.colors ?? labels.map((_, i) => color(i)),
          borderRadius: 4,
        },
      ],
    },
    options: {
      scales: { y: { beginAtZero: true, title: { display: !!opts.yTitle, text: opts.yTitle ?? '' } } },
      plugins: { legend: { display: false } },
    },
  };
  return track(new Chart(canvas, config));
}

// Keeps the last `max` points of a line chart: appends one label and one value per dataset.
export function pushPoint(chart: Chart<'line', number[], string>, label: string, values: number[], max = 60): void {
  const labels = chart.data.labels as string[];
  labels.push(label);
  chart.data.datasets.forEach((d, i) => d.data.push(values[i] ?? NaN));
  while (labels.length > max) {
    labels.shift();
    chart.data.datasets.forEach((d) => d.data.shift());
  }
  chart.update('none');
}
