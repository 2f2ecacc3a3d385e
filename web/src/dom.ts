// Small DOM helpers. Every value from the server goes in as text (textContent / attributes), never
// as HTML, so user ids, attributes and category names cannot inject markup.

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs | null = null,
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith('on') && typeof v === 'function') {
        el.addEventListener(k.slice(2), v as EventListener);
      } else if (k === 'class') {
        el.className = String(v);
      } else if (v === true) {
        el.setAttribute(k, '');
      } else {
        el.setAttribute(k, String(v));
      }
    }
  }
  append(el, children);
  return el;
}

export function append(el: Element, children: (Child | Child[])[]): void {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el: Element): void {
  while (el.firstChild) el.removeChild(el.firstChild);
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`no element #${id}`);
  return el as T;
}

// A titled card; `id` names the card for tests (data-testid too).
export function card(title: string, id: string, ...body: (Child | Child[])[]): HTMLElement {
  return h('section', { class: 'card', id, 'data-testid': id }, h('h2', null, title), ...body);
}

// A table from rows of cells; header cells are the first row.
export function table(head: string[], rows: Child[][], attrs: Attrs = {}): HTMLTableElement {
  return h(
    'table',
    { class: 'grid', ...attrs },
    h('thead', null, h('tr', null, head.map((c) => h('th', null, c)))),
    h('tbody', null, rows.map((r) => h('tr', null, r.map((c) => h('td', null, c))))),
  );
}

// A box with a fixed height holding one canvas: Chart.js sizes the canvas to it.
export function chartBox(id: string, height = 240): { box: HTMLElement; canvas: HTMLCanvasElement } {
  const canvas = h('canvas', { id, 'data-testid': id, role: 'img' });
  const box = h('div', { class: 'chart-box', style: `height:${height}px` }, canvas);
  return { box, canvas };
}

export function note(text: string, cls = 'muted'): HTMLElement {
  return h('p', { class: cls }, text);
}

export function debounce<A extends unknown[]>(fn: (...a: A) => void, ms: number): (...a: A) => void {
  let timer: number | undefined;
  return (...a: A) => {
    if (timer !== undefined) window.clearTimeout(timer);
    timer = window.setTimeout(() => fn(...a), ms);
  };
}
