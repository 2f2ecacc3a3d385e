// Overview: live event rates by type, outcome counts, partitions (queue, lag, watermark), profiles
// held and request latency. /metrics is polled every 2.5 s (cheap: counters and gauges) and rates
// come from counter deltas; /v1/stats (per-partition profiles and memory: it walks the profiles)
// every 10 s.
import { describeError, get, getText } from '../api';
import { Chart, color, lineChart, pushPoint } from '../charts';
import { card, chartBox, clear, h, table } from '../dom';
import { bytes, clock, ms, num, time } from '../format';
import {
  byLabel,
  type Histogram,
  histogramDelta,
  histograms,
  histogramSum,
  parsePrometheus,
  quantile,
  type Sample,
  select,
  total,
} from '../prom';
import type { Cleanup } from '../main';

const EVENT_TYPES = ['view', 'click', 'search', 'cart', 'remove_cart', 'fav', 'purchase', 'review', 'refund'];
const METRICS_MS = 2500;
const STATS_MS = 10000;

interface PartitionStats {
  partition: number;
  profiles: number;
  accepted: number;
  duplicates: number;
  rejected: number;
  log_seq: number;
  checkpoint_seq: number;
  watermark: string;
  queued_events: number;
  lag_seconds: number;
  memory_bytes?: Record<string, number>;
}
interface Stats {
  partitions: number;
  watermark: string;
  per_partition: PartitionStats[];
  totals: Record<string, number>;
}

interface Scrape {
  at: number;
  accepted: Map<string, number>;
  latency: Map<string, Histogram>;
}

export function mountOverview(root: HTMLElement): Cleanup {
  const kpis = h('div', { class: 'kpis', id: 'overview-kpis', 'data-testid': 'overview-kpis' });
  const rate = chartBox('rate-chart', 260);
  const latency = chartBox('latency-chart', 220);
  const partitions = h('div', { id: 'partitions-table' });
  const routes = h('div', { id: 'latency-table' });
  const status = h('p', { class: 'muted', id: 'overview-status' }, 'Loading…');
  root.append(
    h('h1', null, 'Overview'),
    status,
    kpis,
    h(
      'div',
      { class: 'cols' },
      card('Events per second by type (accepted)', 'card-rates', rate.box),
      card('Request latency (all routes, since last poll)', 'card-latency', latency.box),
    ),
    card('Partitions', 'card-partitions', partitions),
    card('Latency by route (since start)', 'card-routes', routes),
  );

  const rateChart = lineChart(
    rate.canvas,
    'events / s',
    EVENT_TYPES.map((t, i) => ({ label: t, color: color(i) })),
  );
  const latencyChart = lineChart(latency.canvas, 'ms', [
    { label: 'p50', color: '#16a34a' },
    { label: 'p95', color: '#f59e0b' },
    { label: 'p99', color: '#dc2626' },
  ]);

  let prev: Scrape | null = null;
  let stats: Stats | null = null;
  let samples: Sample[] = [];
  let stopped = false;
  let lastRate = NaN;  // events/s over the last poll interval

  const renderKpis = () => {
    const outcomes = byLabel(samples, 'persona_events_total', 'outcome');
    const gauge = (name: string) => {
      const s = select(samples, name);
      return s.length ? s[0].value : NaN;
    };
    const items: [string, string, string][] = [
      ['kpi-profiles', 'Profiles held', num(gauge('persona_profiles'))],
      ['kpi-accepted', 'Accepted', num(outcomes.get('accepted'))],
      ['kpi-rejected', 'Rejected', num(outcomes.get('rejected'))],
      ['kpi-duplicates', 'Duplicates', num(outcomes.get('duplicate'))],
      ['kpi-rate', 'Events / s', num(lastRate, 1)],
      ['kpi-dead-letters', 'Dead letters', num(gauge('persona_dead_letters'))],
      ['kpi-memory', 'Memory (RSS)', bytes(gauge('persona_memory_bytes'))],
      ['kpi-connections', 'Connections', num(gauge('persona_http_connections'))],
      ['kpi-watermark', 'Watermark', stats ? time(stats.watermark) : '–'],
    ];
    const kafkaLag = select(samples, 'persona_kafka_lag');
    if (kafkaLag.length > 0) {
      items.splice(5, 0, ['kpi-kafka-lag', 'Kafka lag (messages)', num(kafkaLag.reduce((a, x) => a + x.value, 0))]);
    }
    clear(kpis);
    for (const [id, label, value] of items) {
      kpis.append(
        h('div', { class: id === 'kpi-watermark' ? 'kpi wide' : 'kpi', id, 'data-testid': id }, h('div', { class: 'kpi-label' }, label), h('div', { class: id === 'kpi-watermark' ? 'kpi-value text' : 'kpi-value' }, value)),
      );
    }
  };

  const renderPartitions = () => {
    const queue = byLabel(samples, 'persona_partition_queue_events', 'partition');
    const lag = byLabel(samples, 'persona_partition_lag_seconds', 'partition');
    const wm = byLabel(samples, 'persona_partition_watermark_seconds', 'partition');
    // With a Kafka source (docs/cluster.md): whether this instance owns the Kafka partition of the
    // same number, the next offset it will apply and how far behind the broker's end it is.
    const kafkaOwned = byLabel(samples, 'persona_kafka_assigned', 'partition');
    const kafkaNext = byLabel(samples, 'persona_kafka_next_offset', 'partition');
    const kafkaLag = byLabel(samples, 'persona_kafka_lag', 'partition');
    const kafka = kafkaOwned.size > 0;
    const ids = new Set<string>([...queue.keys(), ...(stats?.per_partition.map((p) => String(p.partition)) ?? [])]);
    const rows = [...ids]
      .sort((a, b) => Number(a) - Number(b))
      .map((id) => {
        const p = stats?.per_partition.find((x) => String(x.partition) === id);
        const mem = p?.memory_bytes ? Object.values(p.memory_bytes).reduce((a, b) => a + b, 0) : NaN;
        return [
          id,
          num(p?.profiles),
          num(p?.accepted),
          num(queue.get(id)),
          `${num(lag.get(id), 3)} s`,
          wm.has(id) ? time((wm.get(id) ?? 0) * 1000) : time(p?.watermark),
          p ? `${num(p.checkpoint_seq)} / ${num(p.log_seq)}` : '–',
          bytes(mem),
          ...(kafka
            ? kafkaOwned.get(id)
              ? [num(kafkaNext.get(id)), num(kafkaLag.get(id))]
              : ['not owned', '–']
            : []),
        ];
      });
    clear(partitions);
    partitions.append(
      table(['Partition', 'Profiles', 'Accepted', 'Queue (events)', 'Lag', 'Watermark', 'Checkpoint / log seq', 'Memory', ...(kafka ? ['Kafka offset', 'Kafka lag (messages)'] : [])], rows, {
        id: 'partitions',
        'data-testid': 'partitions',
      }),
    );
  };

  const renderRoutes = (lat: Map<string, Histogram>) => {
    const rows = [...lat.entries()]
      .filter(([, hist]) => hist.count > 0)
      .sort((a, b) => b[1].count - a[1].count)
      .map(([r, hist]) => [r, num(hist.count), ms(hist.sum / hist.count), ms(quantile(hist, 0.5)), ms(quantile(hist, 0.95)), ms(quantile(hist, 0.99))]);
    const requests = byLabel(samples, 'persona_http_requests_total', 'status');
    const errors = [...requests.entries()].filter(([s]) => Number(s) >= 500).reduce((a, [, v]) => a + v, 0);
    clear(routes);
    routes.append(
      table(['Route', 'Requests', 'Mean', 'p50', 'p95', 'p99'], rows, { id: 'routes', 'data-testid': 'routes' }),
      h('p', { class: 'muted' }, `5xx answers since start: ${num(errors)}`),
    );
  };

  const pollMetrics = async () => {
    try {
      const text = await getText('/metrics');
      if (stopped) return;
      samples = parsePrometheus(text);
      const now = performance.now();
      const accepted = byLabel(samples, 'persona_events_total', 'type', { outcome: 'accepted' });
      const latencyNow = histograms(samples, 'persona_http_request_duration_seconds', 'route');
      if (prev) {
        const dt = (now - prev.at) / 1000;
        const rates = EVENT_TYPES.map((t) => Math.max(0, ((accepted.get(t) ?? 0) - (prev!.accepted.get(t) ?? 0)) / dt));
        lastRate = rates.reduce((a, b) => a + b, 0);
        pushPoint(rateChart, clock(), rates);
        const delta = histogramSum([...latencyNow.entries()].map(([r, hist]) => histogramDelta(hist, prev!.latency.get(r))));
        const qs = delta && delta.count > 0 ? [0.5, 0.95, 0.99].map((q) => quantile(delta, q) * 1000) : [NaN, NaN, NaN];
        pushPoint(latencyChart as Chart<'line', number[], string>, clock(), qs);
      }
      prev = { at: now, accepted, latency: latencyNow };
      renderKpis();
      renderPartitions();
      renderRoutes(latencyNow);
      status.textContent = `Live: /metrics every ${METRICS_MS / 1000} s · last update ${clock()} · ${num(total(samples, 'persona_profiles'))} profiles`;
      status.className = 'muted';
    } catch (e) {
      if (stopped) return;
      status.textContent = `Cannot read /metrics: ${describeError(e)}`;
      status.className = 'error';
    }
  };

  const pollStats = async () => {
    try {
      const s = await get<Stats>('/v1/stats');
      if (stopped) return;
      stats = s;
      renderKpis();
      renderPartitions();
    } catch (e) {
      if (!stopped) status.textContent = `Cannot read /v1/stats: ${describeError(e)}`;
    }
  };

  void pollMetrics();
  void pollStats();
  const t1 = window.setInterval(pollMetrics, METRICS_MS);
  const t2 = window.setInterval(pollStats, STATS_MS);
  return () => {
    stopped = true;
    window.clearInterval(t1);
    window.clearInterval(t2);
  };
}
