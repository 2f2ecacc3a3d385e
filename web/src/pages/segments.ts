// Segments & models: the K-means segments in service (sizes as a bar chart, descriptions and
// centroids) and every prediction model loaded, with the metrics stored at training.
import { describeError, optional } from '../api';
import { barChart, color, hbarChart } from '../charts';
import { card, chartBox, clear, h, note, table } from '../dom';
import { num } from '../format';
import type { Cleanup } from '../main';

type Json = any;

function renderSegments(el: HTMLElement, s: Json | null): void {
  clear(el);
  if (!s) {
    el.append(note('Predictions are not enabled on this server.'));
    return;
  }
  const segments: Json[] = s.segments ?? [];
  el.append(
    h('p', { class: 'muted', id: 'segments-meta' },
      s.model ? `model ${s.model} · silhouette ${num(s.silhouette, 3)} · ${num(s.profiles)} profiles, ${num(s.unassigned)} unassigned` : 'No segment model trained yet (persona train segments --data DIR, then POST /v1/admin/reload).'),
  );
  if (!segments.length) return;
  const { box, canvas } = chartBox('segments-chart', 240);
  el.append(box);
  barChart(canvas, segments.map((x) => { const d = String(x.description ?? ''); return `#${x.id} ${d.length > 32 ? d.slice(0, 31) + '…' : d}`; }), segments.map((x) => x.size), { yTitle: 'profiles', colors: segments.map((_, i) => color(i)) });
  el.append(
    table(
      ['Segment', 'Description', 'Size', 'Size at training', 'Centroid'],
      segments.map((x) => [
        `#${x.id}`,
        x.description,
        num(x.size),
        num(x.train_size),
        h('span', { class: 'small' }, Object.entries(x.centroid ?? {}).slice(0, 8).map(([k, v]) => `${k} ${num(v as number, 2)}`).join(' · ')),
      ]),
      { id: 'segments-table', 'data-testid': 'segments-table' },
    ),
  );
}

function renderModels(el: HTMLElement, m: Json | null): void {
  clear(el);
  if (!m) {
    el.append(note('Predictions are not enabled on this server.'));
    return;
  }
  const models: Json[] = m.models ?? [];
  const errors: string[] = m.errors ?? [];
  if (!models.length) el.append(note('No prediction models loaded (persona train propensity|churn|segments|next-category|sentiment --data DIR).'));
  for (const model of models) {
    const metrics = Object.entries(model.metrics ?? {});
    const importance: Json[] = (model.importance ?? []).slice(0, 10);
    const block = h('div', { class: 'model', 'data-testid': 'model', 'data-name': model.name },
      h('h3', null, model.name, h('span', { class: 'muted' }, ` ${model.version}`)),
      metrics.length ? table(['Metric', 'Value'], metrics.map(([k, v]) => [k, num(v as number, 4)])) : note('No metrics stored.'),
    );
    if (importance.length) {
      const { box, canvas } = chartBox(`importance-${model.name}`, importance.length * 22 + 40);
      block.append(h('h4', null, 'Feature importance (gain)'), box);
      el.append(block);
      hbarChart(canvas, importance.map((i) => i.feature), importance.map((i) => i.gain), { percent: true, color: '#0d9488' });
    } else {
      el.append(block);
    }
  }
  if (errors.length) el.append(h('div', { class: 'error' }, h('h3', null, 'Refused artifacts'), h('ul', null, errors.map((e) => h('li', null, e)))));
}

export function mountSegments(root: HTMLElement): Cleanup {
  const segs = h('div', { id: 'segments' }, note('Loading…'));
  const models = h('div', { id: 'models', 'data-testid': 'models', class: 'models' }, note('Loading…'));
  root.append(h('h1', null, 'Segments & models'), card('Segments', 'card-segments', segs), card('Models', 'card-models', models));
  let stopped = false;
  const load = async () => {
    const [s, m] = await Promise.allSettled([optional<Json>('/v1/segments'), optional<Json>('/v1/models')]);
    if (stopped) return;
    if (s.status === 'fulfilled') renderSegments(segs, s.value);
    else (clear(segs), segs.append(h('p', { class: 'error' }, describeError(s.reason))));
    if (m.status === 'fulfilled') renderModels(models, m.value);
    else (clear(models), models.append(h('p', { class: 'error' }, describeError(m.reason))));
  };
  void load();
  return () => {
    stopped = true;
  };
}
