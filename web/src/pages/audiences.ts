// Audiences: a condition editor with a field picker (GET /v1/audiences:fields), a live count and
// sample as you type (debounced POST /v1/audiences:query; a parse error shows its column), an
// aggregate report (POST /v1/audiences:report, optional epsilon for differential privacy), saving
// (POST /v1/audiences), the saved list with live sizes (GET /v1/audiences every 5 s), exports
// (CSV / NDJSON) and deletion.
import { ApiError, describeError, download, enc, get, request } from '../api';
import { hbarChart } from '../charts';
import { card, chartBox, clear, debounce, h, note, table } from '../dom';
import { num, time } from '../format';
import type { Cleanup } from '../main';

type Json = any;

interface FieldInfo {
  name: string;
  type: string;
  group?: string;
  description?: string;
}
interface FunctionInfo {
  name: string;
  argument?: string;
  type: string;
  description?: string;
}
interface FieldsResponse {
  fields: FieldInfo[];
  functions: FunctionInfo[];
  tags: string[];
  example?: string;
}
interface SavedAudience {
  id: string;
  name: string;
  description?: string;
  condition: string;
  created_at?: string;
  size: number;
  entered?: number;
  exited?: number;
  active?: boolean;
  error?: string;
}

// Columns shown in samples and exports when the catalog has them.
const PREFERRED_FIELDS = ['lifecycle', 'monetary', 'orders', 'recency_days', 'top_category', 'segment'];
const QUERY_DEBOUNCE_MS = 350;
const LIST_MS = 5000;

// The JS string index of a 1-based UTF-8 byte column (the server counts bytes).
export function columnToIndex(text: string, column: number): number {
  let bytes = 0;
  let i = 0;
  for (const ch of text) {
    if (bytes >= column - 1) return i;
    bytes += new TextEncoder().encode(ch).length;
    i += ch.length;
  }
  return text.length;
}

function conditionEcho(text: string, column: number): HTMLElement {
  const at = columnToIndex(text, column);
  const before = text.slice(0, at);
  const ch = text.slice(at, at + 1);
  const after = text.slice(at + 1);
  return h('pre', { class: 'cond-echo', 'data-testid': 'condition-echo' }, before, h('mark', { id: 'condition-error-mark' }, ch || ' '), after);
}

function privacyNote(p: Json): HTMLElement {
  if (!p || !p.noisy) {
    return h('p', { class: 'note-dp', 'data-testid': 'report-dp' }, 'Exact numbers (no differential-privacy noise: set an epsilon to add it).');
  }
  const clip = p.clip && typeof p.clip === 'object' ? Object.entries(p.clip).map(([k, v]) => `${k} at ${v}`).join(', ') : String(p.clip ?? '');
  return h('p', { class: 'note-dp', 'data-testid': 'report-dp' },
    `Differentially private (${p.mechanism ?? 'laplace'} noise): ε = ${p.epsilon}` +
      (p.epsilon_per_statistic !== undefined ? `, ${num(p.epsilon_per_statistic, 4)} per statistic over ${p.statistics}` : '') +
      (clip ? `; contributions clipped (${clip})` : '') + '. Counts are rounded and never negative.');
}

// Renders the report JSON: top-level numbers and objects of non-integer numbers (spend) as
// cards, objects of counts (lifecycle, price tiers) as bar charts, arrays of rows (segments, top
// categories) as tables, the privacy block as a note. Unknown members still show, generically.
function renderReport(el: HTMLElement, report: Json): void {
  clear(el);
  const cards: [string, number][] = [];
  const blocks: HTMLElement[] = [];
  const charts: (() => void)[] = [];
  for (const [k, v] of Object.entries(report ?? {})) {
    if (k === 'condition' || k === 'privacy' || k === 'dp') continue;
    if (k.endsWith('_ms') && report[k.slice(0, -3)] !== undefined) continue;  // as_of_ms beside as_of
    if (typeof v === 'number') {
      cards.push([k, v]);
    } else if (v && typeof v === 'object' && !Array.isArray(v)) {
      const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => typeof x === 'number') as [string, number][];
      if (entries.length && entries.every(([, x]) => Number.isInteger(x) && x >= 0)) {
        const { box, canvas } = chartBox(`report-${k.replace(/[^a-z0-9]+/gi, '-')}`, entries.length * 24 + 40);
        blocks.push(h('div', { class: 'report-block' }, h('h3', null, k.replace(/_/g, ' ')), box));
        charts.push(() => hbarChart(canvas, entries.map((e) => e[0]), entries.map((e) => e[1]), { color: '#0891b2' }));
      } else {
        for (const [sub, x] of entries) cards.push([`${k} ${sub.replace(/_/g, ' ')}`, x]);
      }
    } else if (Array.isArray(v)) {
      const rows = v as Json[];
      const cols = rows.length && typeof rows[0] === 'object' ? Object.keys(rows[0]) : [];
      blocks.push(h('div', { class: 'report-block' }, h('h3', null, k.replace(/_/g, ' ')),
        rows.length ? table(cols, rows.map((row) => cols.map((c) => (typeof row[c] === 'number' ? num(row[c], 3) : String(row[c] ?? ''))))) : note('none')));
    } else if (typeof v === 'string' && v) {
      blocks.push(h('p', { class: 'muted' }, `${k.replace(/_/g, ' ')}: ${/^\d{4}-\d\d-\d\dT/.test(v) ? time(v) : v}`));
    }
  }
  el.append(
    h('div', { class: 'kpis' }, cards.map(([k, v]) => h('div', { class: 'kpi', 'data-testid': `report-${k.replace(/\s+/g, '-')}` }, h('div', { class: 'kpi-label' }, k.replace(/_/g, ' ')), h('div', { class: 'kpi-value' }, num(v, Number.isInteger(v) ? 0 : 2))))),
    privacyNote(report?.privacy ?? report?.dp),
    ...blocks,
  );
  charts.forEach((c) => c());
}

export function mountAudiences(root: HTMLElement): Cleanup {
  let stopped = false;
  let fields: FieldsResponse | null = null;
  let sampleFields: string[] = [];
  let queryController: AbortController | null = null;
  let querySeq = 0;

  // -- editor --
  const editor = h('textarea', {
    id: 'audience-condition',
    'data-testid': 'audience-condition',
    rows: 4,
    spellcheck: 'false',
    placeholder: 'e.g. orders >= 1 and lifecycle = "active" and interest.category("c1") > 0.2',
    'aria-label': 'Audience condition',
  });
  const errorBox = h('div', { id: 'condition-error', class: 'error-box', 'data-testid': 'condition-error', hidden: true });
  const count = h('span', { id: 'audience-count', 'data-testid': 'audience-count', class: 'big-number' }, '–');
  const meta = h('span', { id: 'audience-meta', class: 'muted' }, 'Type a condition: the count updates as you type.');
  const sample = h('div', { id: 'audience-sample', 'data-testid': 'audience-sample' });
  const exportLink = h('code', { id: 'export-url', class: 'muted small' });
  const exportCsv = h('button', { type: 'button', id: 'export-csv', 'data-testid': 'export-csv', disabled: true }, 'Export CSV');
  const exportNdjson = h('button', { type: 'button', id: 'export-ndjson', 'data-testid': 'export-ndjson', disabled: true }, 'Export NDJSON');
  const exportStatus = h('span', { id: 'export-status', class: 'muted', 'data-testid': 'export-status' });

  // -- report --
  const epsilon = h('input', { id: 'report-epsilon', 'data-testid': 'report-epsilon', type: 'number', min: '0', step: '0.1', placeholder: 'off' });
  const reportRun = h('button', { type: 'button', id: 'report-run', 'data-testid': 'report-run' }, 'Run report');
  const reportOut = h('div', { id: 'audience-report', 'data-testid': 'audience-report' }, note('Aggregates of the matching profiles: size, spend, lifecycle, segments, top categories.'));

  // -- save --
  const nameInput = h('input', { id: 'audience-name', 'data-testid': 'audience-name', placeholder: 'name', maxlength: '100' });
  const descInput = h('input', { id: 'audience-description', 'data-testid': 'audience-description', placeholder: 'description (optional)' });
  const saveButton = h('button', { type: 'button', id: 'audience-save', 'data-testid': 'audience-save' }, 'Save audience');
  const saveStatus = h('span', { id: 'audience-save-status', 'data-testid': 'audience-save-status', class: 'muted' });

  // -- saved list --
  const list = h('div', { id: 'audience-list', 'data-testid': 'audience-list' }, note('Loading…'));

  // -- picker --
  const filter = h('input', { id: 'field-filter', type: 'search', placeholder: 'filter fields', 'aria-label': 'Filter fields' });
  const picker = h('div', { id: 'field-picker', 'data-testid': 'field-picker', class: 'picker' }, note('Loading fields…'));

  root.append(
    h('h1', null, 'Audiences'),
    h(
      'div',
      { class: 'audience-layout' },
      h('aside', { class: 'card picker-card' }, h('h2', null, 'Fields'), filter, picker),
      h(
        'div',
        { class: 'audience-main' },
        card(
          'Condition',
          'card-condition',
          editor,
          errorBox,
          h('div', { class: 'count-line' }, count, h('span', null, ' profiles match '), meta),
          h('div', { class: 'row' }, exportCsv, exportNdjson, exportStatus),
          h('div', null, exportLink),
        ),
        card('Sample', 'card-sample', sample),
        card('Report', 'card-report', h('div', { class: 'row' }, h('label', { for: 'report-epsilon' }, 'DP epsilon '), epsilon, reportRun), reportOut),
        card('Save', 'card-save', h('div', { class: 'row' }, nameInput, descInput, saveButton), saveStatus),
        card('Saved audiences', 'card-saved', list),
      ),
    ),
  );

  const insert = (text: string, caretBack = 0) => {
    const start = editor.selectionStart ?? editor.value.length;
    const end = editor.selectionEnd ?? start;
    const before = editor.value.slice(0, start);
    const pad = before && !/[\s(]$/.test(before) ? ' ' : '';
    editor.setRangeText(pad + text, start, end, 'end');
    const pos = editor.selectionEnd - caretBack;
    editor.setSelectionRange(pos, pos);
    editor.focus();
    editor.dispatchEvent(new Event('input'));
  };

  const renderPicker = () => {
    clear(picker);
    if (!fields) return;
    const q = filter.value.trim().toLowerCase();
    const groups = new Map<string, FieldInfo[]>();
    for (const f of fields.fields) {
      if (q && !f.name.toLowerCase().includes(q) && !(f.description ?? '').toLowerCase().includes(q)) continue;
      const g = f.group || 'other';
      if (!groups.has(g)) groups.set(g, []);
      groups.get(g)!.push(f);
    }
    for (const [g, list] of groups) {
      picker.append(
        h('details', { open: true }, h('summary', null, g),
          list.map((f) => h('button', { type: 'button', class: `field-btn type-${f.type}`, 'data-field': f.name, title: `${f.type}${f.description ? ': ' + f.description : ''}`, onclick: () => insert(f.name) }, f.name))),
      );
    }
    const fns = fields.functions.filter((f) => !q || f.name.toLowerCase().includes(q));
    if (fns.length) {
      picker.append(
        h('details', { open: true }, h('summary', null, 'functions'),
          fns.map((f) => h('button', { type: 'button', class: `field-btn type-${f.type}`, 'data-field': f.name, title: `${f.name}(${f.argument ?? 'x'}) → ${f.type}${f.description ? ': ' + f.description : ''}`, onclick: () => insert(`${f.name}("")`, 2) }, `${f.name}(…)`))),
      );
    }
    const tags = fields.tags.filter((t) => !q || t.toLowerCase().includes(q));
    if (tags.length) {
      picker.append(
        h('details', { open: true }, h('summary', null, 'tags'),
          tags.map((t) => h('button', { type: 'button', class: 'field-btn type-bool', 'data-field': `tag("${t}")`, onclick: () => insert(`tag("${t}")`) }, t))),
      );
    }
  };
  filter.addEventListener('input', renderPicker);

  const exportQuery = (format: string) => {
    const params = new URLSearchParams({ condition: editor.value.trim(), format });
    if (sampleFields.length) params.set('fields', sampleFields.join(','));
    return `/v1/audiences:export?${params.toString()}`;
  };

  const showError = (e: unknown, text: string) => {
    clear(errorBox);
    errorBox.hidden = false;
    if (e instanceof ApiError && e.column !== null && (e.code === 'invalid_condition' || e.status === 400)) {
      errorBox.append(h('div', { class: 'error', id: 'condition-error-text' }, e.detail), conditionEcho(text, e.column));
    } else {
      errorBox.append(h('div', { class: 'error', id: 'condition-error-text' }, describeError(e)));
    }
  };

  const runQuery = async () => {
    const text = editor.value.trim();
    queryController?.abort();
    const seq = ++querySeq;
    if (!text) {
      errorBox.hidden = true;
      count.textContent = '–';
      meta.textContent = 'Type a condition: the count updates as you type.';
      exportCsv.disabled = exportNdjson.disabled = true;
      clear(sample);
      return;
    }
    queryController = new AbortController();
    count.classList.add('pending');
    try {
      const body: Json = { condition: text, sample: 10 };
      if (sampleFields.length) body.fields = sampleFields;
      const r = await request<Json>('POST', '/v1/audiences:query', { body, signal: queryController.signal });
      if (stopped || seq !== querySeq) return;
      errorBox.hidden = true;
      count.textContent = num(r.count);
      count.dataset.count = String(r.count);
      meta.textContent = `of ${num(r.scanned)} scanned in ${num(r.took_ms, 1)} ms${r.as_of ? ` · as of ${time(r.as_of)}` : ''}`;
      exportCsv.disabled = exportNdjson.disabled = false;
      exportLink.textContent = `GET ${exportQuery('csv')}`;
      clear(sample);
      const rows: Json[] = r.sample ?? [];
      if (!rows.length) {
        sample.append(note('No matching profiles.'));
      } else {
        const cols = ['user_id', ...Object.keys(rows[0]).filter((k) => k !== 'user_id')];
        sample.append(
          table(cols, rows.map((row) => cols.map((c) => (c === 'user_id' ? h('a', { href: `#/user/${enc(String(row[c]))}` }, String(row[c])) : typeof row[c] === 'number' ? num(row[c], 2) : String(row[c] ?? '')))), { id: 'sample-table', 'data-testid': 'sample-table' }),
        );
      }
    } catch (e) {
      if (stopped || seq !== querySeq || (e instanceof DOMException && e.name === 'AbortError')) return;
      count.textContent = '–';
      delete count.dataset.count;
      meta.textContent = '';
      exportCsv.disabled = exportNdjson.disabled = true;
      showError(e, editor.value.trim());
    } finally {
      if (seq === querySeq) count.classList.remove('pending');
    }
  };
  const queryLater = debounce(runQuery, QUERY_DEBOUNCE_MS);
  editor.addEventListener('input', queryLater);

  const doExport = async (path: string, filename: string) => {
    exportStatus.textContent = 'Exporting…';
    try {
      const blob = await download(path, filename);
      const text = await blob.text();
      const lines = text.split('\n').filter((l) => l.length).length;
      exportStatus.textContent = `Downloaded ${filename}: ${num(lines)} lines, ${num(blob.size)} bytes.`;
      exportStatus.dataset.lines = String(lines);
    } catch (e) {
      exportStatus.textContent = `Export failed: ${describeError(e)}`;
    }
  };
  exportCsv.addEventListener('click', () => doExport(exportQuery('csv'), 'audience.csv'));
  exportNdjson.addEventListener('click', () => doExport(exportQuery('ndjson'), 'audience.ndjson'));

  const runReport = async (path: string, body: Json | null) => {
    clear(reportOut);
    reportOut.append(note('Running…'));
    try {
      const r = body ? await request<Json>('POST', path, { body }) : await get<Json>(path);
      if (stopped) return;
      renderReport(reportOut, r);
    } catch (e) {
      clear(reportOut);
      reportOut.append(h('p', { class: 'error' }, describeError(e)));
    }
  };
  reportRun.addEventListener('click', () => {
    const body: Json = { condition: editor.value.trim() };
    const eps = parseFloat(epsilon.value);
    if (Number.isFinite(eps) && eps > 0) body.epsilon = eps;
    void runReport('/v1/audiences:report', body);
  });

  const refreshList = async () => {
    try {
      const r = await get<{ audiences: SavedAudience[] }>('/v1/audiences');
      if (stopped) return;
      clear(list);
      if (!r.audiences.length) {
        list.append(note('No saved audiences yet.'));
        return;
      }
      const fieldsParam = sampleFields.length ? `&fields=${enc(sampleFields.join(','))}` : '';
      list.append(
        h('table', { class: 'grid', id: 'saved-audiences' },
          h('thead', null, h('tr', null, ['Name', 'Condition', 'Size', 'Entered / exited', 'Created', ''].map((c) => h('th', null, c)))),
          h('tbody', null, r.audiences.map((a) =>
            h('tr', { 'data-testid': 'audience-row', 'data-id': a.id, 'data-name': a.name },
              h('td', null, h('strong', null, a.name), a.description ? h('div', { class: 'muted small' }, a.description) : null, a.error ? h('div', { class: 'error small' }, a.error) : null),
              h('td', null, h('code', { class: 'small' }, a.condition)),
              h('td', { class: 'audience-size', 'data-testid': 'audience-size' }, num(a.size)),
              h('td', null, `${num(a.entered ?? 0)} / ${num(a.exited ?? 0)}`),
              h('td', { class: 'small' }, time(a.created_at)),
              h('td', { class: 'actions' },
                h('button', { type: 'button', onclick: () => { editor.value = a.condition; editor.dispatchEvent(new Event('input')); } }, 'Edit'),
                h('button', { type: 'button', onclick: () => runReport(`/v1/audiences/${enc(a.id)}/report`, null) }, 'Report'),
                h('button', { type: 'button', 'data-testid': 'saved-export-csv', onclick: () => doExport(`/v1/audiences/${enc(a.id)}/export?format=csv${fieldsParam}`, `${a.id}.csv`) }, 'CSV'),
                h('button', { type: 'button', onclick: () => doExport(`/v1/audiences/${enc(a.id)}/export?format=ndjson${fieldsParam}`, `${a.id}.ndjson`) }, 'NDJSON'),
                h('button', {
                  type: 'button', class: 'danger', 'data-testid': 'audience-delete',
                  onclick: async () => {
                    if (!window.confirm(`Delete the audience "${a.name}"?`)) return;
                    try {
                      await request('DELETE', `/v1/audiences/${enc(a.id)}`);
                    } catch (e) {
                      saveStatus.textContent = `Delete failed: ${describeError(e)}`;
                    }
                    void refreshList();
                  },
                }, 'Delete'),
              ),
            ))),
        ),
      );
    } catch (e) {
      if (stopped) return;
      clear(list);
      list.append(h('p', { class: 'error' }, `Cannot list audiences: ${describeError(e)}`));
    }
  };

  saveButton.addEventListener('click', async () => {
    const name = nameInput.value.trim();
    const condition = editor.value.trim();
    if (!name || !condition) {
      saveStatus.textContent = 'A name and a condition are needed.';
      saveStatus.className = 'error';
      return;
    }
    saveStatus.textContent = 'Saving…';
    saveStatus.className = 'muted';
    try {
      const body: Json = { name, condition };
      if (descInput.value.trim()) body.description = descInput.value.trim();
      const a = await request<SavedAudience>('POST', '/v1/audiences', { body });
      saveStatus.textContent = `Saved "${a.name}" (${a.id}): ${num(a.size)} members.`;
      saveStatus.className = 'ok';
      await refreshList();
    } catch (e) {
      saveStatus.textContent = `Save failed: ${describeError(e)}`;
      saveStatus.className = 'error';
      if (e instanceof ApiError && e.column !== null) showError(e, condition);
    }
  });

  (async () => {
    try {
      fields = await get<FieldsResponse>('/v1/audiences:fields');
      if (stopped) return;
      fields.fields = fields.fields ?? [];
      fields.functions = fields.functions ?? [];
      fields.tags = fields.tags ?? [];
      const names = new Set(fields.fields.map((f) => f.name));
      sampleFields = PREFERRED_FIELDS.filter((f) => names.has(f));
      if (fields.example && !editor.placeholder.includes(fields.example)) editor.placeholder = `e.g. ${fields.example}`;
      renderPicker();
    } catch (e) {
      if (stopped) return;
      clear(picker);
      picker.append(h('p', { class: 'error' }, `Cannot load fields: ${describeError(e)}`));
    }
    void refreshList();
    if (editor.value.trim()) void runQuery();
  })();
  const timer = window.setInterval(refreshList, LIST_MS);
  return () => {
    stopped = true;
    queryController?.abort();
    window.clearInterval(timer);
  };
}
