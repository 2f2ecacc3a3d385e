// User: one profile with all its sections, the recent timeline, recommendations and predictions.
// Each of the four reads is optional: a 404 (no such user) or 503 (recommendations/predictions not
// enabled) leaves its panel with a note instead of failing the page.
import { describeError, enc, optional } from '../api';
import { barChart, hbarChart } from '../charts';
import { append, card, chartBox, clear, h, note, table } from '../dom';
import { money, num, pct, time } from '../format';
import type { Cleanup } from '../main';

type Json = any;

interface Interest {
  key: string;
  score: number;
  share: number;
}

export interface CategoryRow {
  key: string;
  label: string;
  depth: number;
  share: number;
}

const SEPARATOR = /[./]/;
// Top-level categories dark, deeper levels lighter: the hierarchy reads at a glance.
const DEPTH_COLORS = ['#1d4ed8', '#3b82f6', '#93c5fd', '#bfdbfe'];

// Categories as a tree: a dotted (or '/'-separated) path contributes to its ancestors. The server
// already credits ancestors (a.b.c also scores a and a.b); an ancestor it did not list (a table
// that evicted it, or a server that lists leaves only) gets the sum of its listed children. Rows
// come depth-first, siblings by share, at most `limit` rows.
export function categoryTree(top: Interest[], limit = 16): CategoryRow[] {
  const share = new Map<string, number>();
  for (const t of top) share.set(t.key, t.share);
  const children = new Map<string, Set<string>>();
  const parentOf = (k: string) => {
    const m = /^(.*)[./][^./]*$/.exec(k);
    return m ? m[1] : '';
  };
  const addChain = (k: string) => {
    let key = k;
    while (true) {
      const parent = parentOf(key);
      if (!children.has(parent)) children.set(parent, new Set());
      children.get(parent)!.add(key);
      if (!parent) break;
      key = parent;
    }
  };
  for (const k of share.keys()) addChain(k);
  // Synthesise missing ancestors bottom-up (deepest keys first).
  const all = new Set<string>();
  for (const [p, kids] of children) {
    if (p) all.add(p);
    kids.forEach((k) => all.add(k));
  }
  const byDepth = [...all].sort((a, b) => b.split(SEPARATOR).length - a.split(SEPARATOR).length);
  for (const k of byDepth) {
    if (share.has(k)) continue;
    let sum = 0;
    for (const c of children.get(k) ?? []) sum += share.get(c) ?? 0;
    share.set(k, sum);
  }
  const rows: CategoryRow[] = [];
  const walk = (parent: string, depth: number) => {
    const kids = [...(children.get(parent) ?? [])].sort((a, b) => (share.get(b) ?? 0) - (share.get(a) ?? 0));
    for (const k of kids) {
      if (rows.length >= limit) return;
      const segs = k.split(SEPARATOR);
      rows.push({ key: k, label: `${'\u00a0\u00a0\u00a0'.repeat(depth)}${depth ? '└\u00a0' : ''}${segs[segs.length - 1]}`, depth, share: share.get(k) ?? 0 });
      walk(k, depth + 1);
    }
  };
  walk('', 0);
  return rows;
}

function kv(rows: [string, unknown][], id?: string): HTMLElement {
  return h(
    'dl',
    { class: 'kv', id: id ?? null, 'data-testid': id ?? null },
    rows.flatMap(([k, v]) => [h('dt', null, k), h('dd', null, v === null || v === undefined || v === '' ? '–' : String(v))]),
  );
}

function chips(items: string[], cls: string, testid: string): HTMLElement {
  if (!items.length) return h('span', { class: 'muted', 'data-testid': testid }, 'none');
  return h('span', { class: 'chips', 'data-testid': testid }, items.map((t) => h('span', { class: `chip ${cls}` }, t)));
}

// A horizontal gauge for a probability: a bar and the number.
function gauge(id: string, label: string, p: number | null | undefined, sub: string): HTMLElement {
  const has = typeof p === 'number' && Number.isFinite(p);
  const pctText = has ? pct(p, 1) : 'no model';
  const hue = has ? Math.round(120 - 120 * (p as number)) : 0;
  return h(
    'div',
    { class: 'gauge', id, 'data-testid': id },
    h('div', { class: 'gauge-label' }, label, h('span', { class: 'muted' }, ` ${sub}`)),
    h('div', { class: 'gauge-track' }, h('div', { class: 'gauge-fill', style: `width:${has ? (p as number) * 100 : 0}%;background:hsl(${hue} 70% 45%)` })),
    h('div', { class: 'gauge-value' }, pctText),
  );
}

// Cells shaded by count: the 24 hours of the day (UTC) and the 7 days of the week.
function heatmap(hours: number[], days: Record<string, number>): HTMLElement {
  const maxH = Math.max(1, ...hours);
  const dayNames = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
  const dayVals = dayNames.map((d) => days?.[d] ?? 0);
  const maxD = Math.max(1, ...dayVals);
  const cell = (v: number, max: number, title: string, text: string) =>
    h('div', { class: 'heat-cell', title: `${title}: ${v}`, style: `background:rgba(37,99,235,${(0.06 + 0.94 * (v / max)).toFixed(3)});color:${v / max > 0.55 ? '#fff' : '#1e293b'}` }, text);
  return h(
    'div',
    { class: 'heatmap', id: 'activity-heatmap', 'data-testid': 'activity-heatmap' },
    h('div', { class: 'heat-row heat-hours' }, h('div', { class: 'heat-label' }, 'hour (UTC)'), hours.map((v, i) => cell(v, maxH, `${i}:00`, i % 3 === 0 ? String(i) : ''))),
    h('div', { class: 'heat-row heat-days' }, h('div', { class: 'heat-label' }, 'weekday'), dayVals.map((v, i) => cell(v, maxD, dayNames[i], dayNames[i]))),
  );
}

function interestCard(id: string, title: string, table: Json, limit = 10): HTMLElement {
  const top: Interest[] = table?.top ?? [];
  if (!top.length) return card(title, id, note('No interests yet.'));
  const { box, canvas } = chartBox(`${id}-chart`, Math.max(120, Math.min(top.length, limit) * 24 + 40));
  const el = card(title, id, box, table?.exact === false ? note(`approximate (space-saving table, ${table.evicted} evicted)`) : null);
  queueMicrotask(() => {
    const rows = top.slice(0, limit);
    hbarChart(canvas, rows.map((r) => r.key), rows.map((r) => r.share), { percent: true });
  });
  return el;
}

function categoryCard(tableJson: Json): HTMLElement {
  const rows = categoryTree(tableJson?.top ?? []);
  if (!rows.length) return card('Categories', 'interest-categories', note('No category interests yet.'));
  const { box, canvas } = chartBox('interest-categories-chart', rows.length * 24 + 40);
  const el = card('Categories (with ancestors)', 'interest-categories', box);
  queueMicrotask(() =>
    hbarChart(canvas, rows.map((r) => r.label), rows.map((r) => r.share), {
      percent: true,
      tooltips: rows.map((r) => r.key),
      colors: rows.map((r) => DEPTH_COLORS[Math.min(r.depth, DEPTH_COLORS.length - 1)]),
    }),
  );
  return el;
}

function renderProfile(root: HTMLElement, p: Json): void {
  const lifecycle = p.lifecycle ?? {};
  const cons = p.consumption ?? {};
  const signals = p.signals ?? {};
  const anomalies: string[] = signals.anomalies?.flags ?? [];
  const segment = p.predictions?.segment ?? null;
  const rfm = cons.rfm ?? {};
  const attrs: Record<string, unknown> = p.identity?.attributes ?? {};

  root.append(
    h(
      'section',
      { class: 'card profile-head', id: 'profile-summary', 'data-testid': 'profile-summary' },
      h('h2', null, 'User ', h('code', { id: 'profile-user-id' }, p.user_id)),
      h('div', { class: 'chips' },
        h('span', { class: `chip lifecycle-${lifecycle.stage ?? 'none'}`, 'data-testid': 'lifecycle-stage' }, `lifecycle: ${lifecycle.stage ?? '–'}`),
        h('span', { class: 'chip', 'data-testid': 'segment' }, segment ? `segment ${segment.id}: ${segment.description}` : signals.segment !== null && signals.segment !== undefined ? `segment ${signals.segment}` : 'no segment'),
        cons.price_tier ? h('span', { class: 'chip' }, `price tier: ${cons.price_tier}`) : null,
      ),
      kv([
        ['First seen', time(p.identity?.first_seen)],
        ['Last seen', time(p.identity?.last_seen)],
        ['Days since last seen', num(lifecycle.days_since_last_seen, 1)],
        ['Profile as of', time(p.as_of)],
        ['Events', num(p.stats?.events)],
        ['Sessions', `${num(p.sessions?.count)} (avg ${num(p.sessions?.avg_duration_minutes, 1)} min, ${num(p.sessions?.avg_events, 1)} events)`],
      ]),
      h('div', null, h('strong', null, 'Tags: '), chips(p.tags ?? [], 'tag', 'tags')),
    ),
  );

  const windows = p.stats?.windows ?? {};
  const types = Object.keys(p.stats?.counts ?? {});
  root.append(
    h(
      'div',
      { class: 'cols' },
      card('Attributes', 'attributes', Object.keys(attrs).length ? kv(Object.entries(attrs).map(([k, v]) => [k, typeof v === 'object' ? JSON.stringify(v) : v])) : note('No attributes.')),
      card(
        'RFM & consumption',
        'rfm',
        h('div', { class: 'rfm-scores' },
          (['recency', 'frequency', 'monetary'] as const).map((k) =>
            h('div', { class: 'rfm-score', 'data-testid': `rfm-${k}` }, h('div', { class: 'kpi-label' }, k), h('div', { class: 'kpi-value' }, `${rfm[k] ?? 0}/5`)),
          ),
        ),
        kv([
          ['Monetary', money(cons.monetary)],
          ['Orders', num(cons.orders)],
          ['Average order value', money(cons.aov)],
          ['Last purchase', time(cons.last_purchase)],
          ['Spend, last 30 days', money(cons.monetary_30d)],
          ['Refunds', `${num(cons.refunds)} (${money(cons.refund_amount)})`],
          ['Price index', num(cons.price_index, 2)],
          ['Ratings', `${num(cons.ratings)} (avg ${num(cons.avg_rating, 2)})`],
        ]),
      ),
      card(
        'Signals',
        'signals',
        kv([
          ['Satisfaction', signals.sentiment?.satisfaction === null || signals.sentiment?.satisfaction === undefined ? 'no reviews scored' : num(signals.sentiment.satisfaction, 2)],
          ['Reviews scored', num(signals.sentiment?.reviews_scored)],
          ['Max events / minute', num(signals.anomalies?.max_events_per_minute)],
          ['Gap variation', num(signals.anomalies?.gap_variation, 2)],
          ['Longest view streak', num(signals.anomalies?.longest_view_streak)],
        ]),
        h('div', null, h('strong', null, 'Anomaly flags: '), chips(anomalies, 'flag', 'anomaly-flags')),
      ),
    ),
  );

  const funnel = p.funnel ?? {};
  const funnelBox = chartBox('funnel-chart', 200);
  root.append(
    h(
      'div',
      { class: 'cols' },
      card('Activity (active hours and weekdays)', 'activity', heatmap(p.sessions?.hour_of_day ?? new Array(24).fill(0), p.sessions?.day_of_week ?? {})),
      card('Funnel', 'funnel', funnelBox.box, note(`cart rate ${pct(funnel.cart_rate)} · purchases per cart ${pct(funnel.purchase_rate)} · conversion ${pct(funnel.conversion_rate)}`)),
      card(
        'Counts by window',
        'windows',
        table(['Type', '1 day', '7 days', '30 days', 'All'], types.map((t) => [t, num(windows['1d']?.[t]), num(windows['7d']?.[t]), num(windows['30d']?.[t]), num(p.stats?.counts?.[t])])),
      ),
    ),
  );
  queueMicrotask(() => barChart(funnelBox.canvas, ['views', 'carts', 'purchases'], [funnel.views ?? 0, funnel.carts ?? 0, funnel.purchases ?? 0], { colors: ['#2563eb', '#f59e0b', '#16a34a'] }));

  const interests = p.interests ?? {};
  root.append(
    h('h2', { class: 'section-title' }, 'Interests', h('span', { class: 'muted' }, ` (decayed, half-life ${num(interests.half_life_days, 1)} days)`)),
    h('div', { class: 'cols' },
      categoryCard(interests.categories),
      interestCard('interest-brands', 'Brands', interests.brands),
      interestCard('interest-keywords', 'Keywords', interests.keywords),
      interestCard('interest-items', 'Items', interests.items),
    ),
  );
}

function renderTimeline(el: HTMLElement, t: Json | null): void {
  clear(el);
  const events: Json[] = t?.events ?? [];
  if (!t) {
    el.append(note('No timeline for this user.'));
    return;
  }
  if (!events.length) {
    el.append(note('No events.'));
    return;
  }
  el.append(h('div', { class: 'scroll-box' },
    table(
      ['Time', 'Type', 'Item', 'Category', 'Brand', 'Price', 'Session'],
      events.map((e) => [time(e.ts), e.type, e.item_id ?? '', e.category_path ?? e.category_id ?? '', e.brand ?? '', e.price !== undefined ? money(e.price) : '', e.session_id ?? '']),
      { id: 'timeline', 'data-testid': 'timeline' },
    ),
  ));
}

function renderRecommendations(el: HTMLElement, r: Json | null): void {
  clear(el);
  if (!r) {
    el.append(note('Recommendations are not enabled on this server.'));
    return;
  }
  const items: Json[] = r.items ?? [];
  el.append(
    h('p', { class: 'muted' }, `variant ${r.variant} · model ${r.model_version ?? 'none (item-CF + trending)'}${r.cold_start ? ' · cold start' : ''}`),
    items.length
      ? h('ol', { class: 'recs', id: 'recommendations', 'data-testid': 'recommendations' },
          items.map((i) => h('li', null, h('code', null, i.item_id), ` ${num(i.score, 3)} · ${(i.sources ?? [i.source]).join(', ')}`, i.because ? h('span', { class: 'muted' }, ` because of ${i.because}`) : null)))
      : note('No recommendations.'),
  );
}

function renderPredictions(el: HTMLElement, p: Json | null): void {
  clear(el);
  if (!p) {
    el.append(note('Predictions are not enabled on this server.'));
    return;
  }
  const next: Json[] = p.next_categories ?? [];
  const nextBox = chartBox('next-categories-chart', Math.max(100, next.length * 24 + 40));
  append(el, [
    h('div', { class: 'gauges' },
      gauge('gauge-propensity', 'Purchase propensity', p.propensity?.probability, p.propensity ? `next ${p.propensity.horizon_hours} h` : ''),
      gauge('gauge-churn', 'Churn risk', p.churn?.probability, p.churn ? `next ${p.churn.horizon_hours} h` : ''),
    ),
    h('h3', null, 'Next categories'),
    next.length ? nextBox.box : note('No next-category model.'),
    (p.keyword_categories ?? []).length
      ? h('div', null, h('h3', null, 'Search keywords point to'),
          table(['Keyword', 'Categories'], (p.keyword_categories as Json[]).map((k) => [k.keyword, (k.categories ?? []).map((c: Json) => `${c.category} (${pct(c.p, 0)})`).join(', ')])))
      : null,
  ]);
  if (next.length) {
    queueMicrotask(() => hbarChart(nextBox.canvas, next.map((n) => n.category), next.map((n) => n.score), { percent: true, color: '#7c3aed' }));
  }
}

export function mountUser(root: HTMLElement, args: string[]): Cleanup {
  const userId = args.join('/');
  const input = h('input', { id: 'user-search', 'data-testid': 'user-search', type: 'search', placeholder: 'user id', value: userId, spellcheck: 'false', autocomplete: 'off' });
  const form = h('form', { class: 'search', id: 'user-search-form' }, input, h('button', { type: 'submit', id: 'user-search-go', 'data-testid': 'user-search-go' }, 'Look up'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const id = input.value.trim();
    if (id) location.hash = `#/user/${enc(id)}`;
  });
  root.append(h('h1', null, 'User'), form);
  if (!userId) {
    root.append(note('Enter a user id to see the profile, timeline, recommendations and predictions.'));
    return () => {};
  }
  const status = h('p', { class: 'muted', id: 'user-status' }, 'Loading…');
  const body = h('div', { id: 'user-profile', 'data-testid': 'user-profile' });
  const timeline = h('div', null, note('Loading…'));
  const recs = h('div', null, note('Loading…'));
  const preds = h('div', null, note('Loading…'));
  root.append(status, body);
  let stopped = false;
  const id = enc(userId);
  (async () => {
    try {
      const [profile, tl, rec, pred] = await Promise.all([
        optional<Json>(`/v1/users/${id}/profile`),
        optional<Json>(`/v1/users/${id}/timeline?limit=50`).catch(() => null),
        optional<Json>(`/v1/users/${id}/recommendations?k=10`).catch(() => null),
        optional<Json>(`/v1/users/${id}/predictions`).catch(() => null),
      ]);
      if (stopped) return;
      if (!profile) {
        status.textContent = `No profile for user "${userId}".`;
        status.className = 'error';
        status.dataset.testid = 'user-not-found';
        return;
      }
      status.textContent = '';
      renderProfile(body, profile);
      body.append(
        h('div', { class: 'cols' },
          card('Predictions', 'predictions', preds),
          card('Recommendations', 'card-recommendations', recs),
        ),
        card('Recent events', 'card-timeline', timeline),
      );
      renderTimeline(timeline, tl);
      renderRecommendations(recs, rec);
      renderPredictions(preds, pred ?? profile.predictions ?? null);
    } catch (e) {
      if (stopped) return;
      status.textContent = `Cannot load user "${userId}": ${describeError(e)}`;
      status.className = 'error';
    }
  })();
  return () => {
    stopped = true;
  };
}
