// Number and time formatting shared by the pages.

export function num(v: unknown, digits = 0): string {
  if (typeof v !== 'number' || !Number.isFinite(v)) return '–';
  return v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

export function pct(v: unknown, digits = 1): string {
  if (typeof v !== 'number' || !Number.isFinite(v)) return '–';
  return `${(v * 100).toFixed(digits)}%`;
}

export function money(v: unknown): string {
  if (typeof v !== 'number' || !Number.isFinite(v)) return '–';
  return v.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
}

export function bytes(v: unknown): string {
  if (typeof v !== 'number' || !Number.isFinite(v)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let x = v;
  let u = 0;
  while (x >= 1024 && u < units.length - 1) {
    x /= 1024;
    u++;
  }
  return `${x.toFixed(u ? 1 : 0)} ${units[u]}`;
}

export function ms(seconds: number): string {
  if (!Number.isFinite(seconds)) return '–';
  const m = seconds * 1000;
  return m < 1 ? `${m.toFixed(3)} ms` : m < 100 ? `${m.toFixed(2)} ms` : `${m.toFixed(0)} ms`;
}

export function time(v: unknown): string {
  const d = typeof v === 'number' ? new Date(v) : typeof v === 'string' ? new Date(v) : null;
  if (!d || Number.isNaN(d.getTime())) return '–';
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

export function clock(d = new Date()): string {
  return d.toTimeString().slice(0, 8);
}
