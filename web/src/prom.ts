// Prometheus text exposition (0.0.4) parsing, and the few aggregations the overview needs.

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parseValue(s: string): number {
  if (s === '+Inf') return Infinity;
  if (s === '-Inf') return -Infinity;
  if (s === 'NaN') return NaN;
  return Number(s);
}

// Parses one sample line: name{a="x",b="y\"z"} value [timestamp].
function parseLine(line: string): Sample | null {
  let i = 0;
  while (i < line.length && /[A-Za-z0-9_:]/.test(line[i])) i++;
  const name = line.slice(0, i);
  if (!name) return null;
  const labels: Record<string, string> = {};
  if (line[i] === '{') {
    i++;
    while (i < line.length && line[i] !== '}') {
      const eq = line.indexOf('=', i);
      if (eq < 0) return null;
      const key = line.slice(i, eq).trim().replace(/^,/, '').trim();
      i = eq + 1;
      if (line[i] !== '"') return null;
      i++;
      let value = '';
      while (i < line.length && line[i] !== '"') {
        if (line[i] === '\\' && i + 1 < line.length) {
          const n = line[i + 1];
          value += n === 'n' ? '\n' : n;
          i += 2;
        } else {
          value += line[i++];
        }
      }
      i++;  // closing quote
      labels[key] = value;
      while (i < line.length && (line[i] === ',' || line[i] === ' ')) i++;
    }
    i++;  // closing brace
  }
  const rest = line.slice(i).trim().split(/\s+/);
  if (!rest[0]) return null;
  return { name, labels, value: parseValue(rest[0]) };
}

export function parsePrometheus(text: string): Sample[] {
  const out: Sample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const s = parseLine(line);
    if (s) out.push(s);
  }
  return out;
}

export function select(samples: Sample[], name: string, match: Record<string, string> = {}): Sample[] {
  return samples.filter(
    (s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v),
  );
}

export function total(samples: Sample[], name: string, match: Record<string, string> = {}): number {
  return select(samples, name, match).reduce((a, s) => a + (Number.isFinite(s.value) ? s.value : 0), 0);
}

// Sums samples by one label: {"view": 120, "cart": 4}.
export function byLabel(
  samples: Sample[],
  name: string,
  label: string,
  match: Record<string, string> = {},
): Map<string, number> {
  const m = new Map<string, number>();
  for (const s of select(samples, name, match)) {
    const k = s.labels[label] ?? '';
    m.set(k, (m.get(k) ?? 0) + s.value);
  }
  return m;
}

// A cumulative histogram: upper bounds ascending (last is +Inf) and cumulative counts.
export interface Histogram {
  bounds: number[];
  counts: number[];
  sum: number;
  count: number;
}

// The histograms of `name` (e.g. persona_http_request_duration_seconds) keyed by `label`.
export function histograms(samples: Sample[], name: string, label: string): Map<string, Histogram> {
  const out = new Map<string, Histogram>();
  const get = (k: string) => {
    let h = out.get(k);
    if (!h) {
      h = { bounds: [], counts: [], sum: 0, count: 0 };
      out.set(k, h);
    }
    return h;
  };
  const buckets = new Map<string, [number, number][]>();
  for (const s of samples) {
    if (s.name === `${name}_bucket`) {
      const k = s.labels[label] ?? '';
      const list = buckets.get(k) ?? [];
      list.push([parseValue(s.labels['le'] ?? '+Inf'), s.value]);
      buckets.set(k, list);
    } else if (s.name === `${name}_sum`) {
      get(s.labels[label] ?? '').sum = s.value;
    } else if (s.name === `${name}_count`) {
      get(s.labels[label] ?? '').count = s.value;
    }
  }
  for (const [k, list] of buckets) {
    list.sort((a, b) => a[0] - b[0]);
    const h = get(k);
    h.bounds = list.map((b) => b[0]);
    h.counts = list.map((b) => b[1]);
  }
  return out;
}

// a - b bucket by bucket (the requests between two scrapes); b may be undefined (a itself).
export function histogramDelta(a: Histogram, b: Histogram | undefined): Histogram {
  if (!b || b.bounds.length !== a.bounds.length) return a;
  return {
    bounds: a.bounds,
    counts: a.counts.map((c, i) => Math.max(0, c - b.counts[i])),
    sum: Math.max(0, a.sum - b.sum),
    count: Math.max(0, a.count - b.count),
  };
}

export function histogramSum(list: Histogram[]): Histogram | null {
  const first = list.find((h) => h.bounds.length > 0);
  if (!first) return null;
  const out: Histogram = { bounds: first.bounds, counts: first.bounds.map(() => 0), sum: 0, count: 0 };
  for (const h of list) {
    if (h.bounds.length !== out.bounds.length) continue;
    h.counts.forEach((c, i) => (out.counts[i] += c));
    out.sum += h.sum;
    out.count += h.count;
  }
  return out;
}

// The q-quantile by linear interpolation inside the bucket (as PromQL's histogram_quantile);
// NaN without observations. A quantile in the +Inf bucket answers the largest finite bound.
export function quantile(h: Histogram, q: number): number {
  const n = h.counts.length ? h.counts[h.counts.length - 1] : 0;
  if (!n) return NaN;
  const rank = q * n;
  for (let i = 0; i < h.counts.length; i++) {
    if (h.counts[i] >= rank) {
      const upper = h.bounds[i];
      if (!Number.isFinite(upper)) return h.bounds[i - 1] ?? NaN;
      const lower = i === 0 ? 0 : h.bounds[i - 1];
      const below = i === 0 ? 0 : h.counts[i - 1];
      const inBucket = h.counts[i] - below;
      return inBucket > 0 ? lower + ((upper - lower) * (rank - below)) / inBucket : upper;
    }
  }
  return h.bounds[h.bounds.length - 2] ?? NaN;
}
