// The dashboard shell: hash routing (#/overview, #/user/<id>, #/audiences, #/segments), the top
// navigation and the API key box. Each page mounts into <main id="app"> and returns a cleanup
// that stops its timers; charts are destroyed with the page.
import './style.css';
import { apiKey, onAuthProblem, setApiKey } from './api';
import { destroyAll } from './charts';
import { byId, clear } from './dom';
import { mountAudiences } from './pages/audiences';
import { mountOverview } from './pages/overview';
import { mountSegments } from './pages/segments';
import { mountUser } from './pages/user';

export type Cleanup = () => void;
type Mount = (root: HTMLElement, args: string[]) => Cleanup | void;

const pages: Record<string, Mount> = {
  overview: mountOverview,
  user: mountUser,
  audiences: mountAudiences,
  segments: mountSegments,
};

let cleanup: Cleanup | void;

function parseHash(): { page: string; args: string[] } {
  const parts = location.hash.replace(/^#\/?/, '').split('/');
  const page = parts[0] && pages[parts[0]] ? parts[0] : 'overview';
  const args = parts.slice(1).map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  return { page, args };
}

function route(): void {
  if (cleanup) cleanup();
  cleanup = undefined;
  destroyAll();
  const { page, args } = parseHash();
  for (const a of document.querySelectorAll<HTMLAnchorElement>('#nav a')) {
    a.classList.toggle('active', a.dataset.page === page);
    if (a.dataset.page === page) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const root = byId('app');
  clear(root);
  root.dataset.page = page;
  document.title = `Persona · ${page}`;
  hideBanner();
  window.scrollTo(0, 0);
  cleanup = pages[page](root, args);
}

function showBanner(text: string): void {
  const b = byId('banner');
  b.textContent = text;
  b.hidden = false;
}

function hideBanner(): void {
  byId('banner').hidden = true;
}

function setupKeyBox(): void {
  const input = byId<HTMLInputElement>('api-key');
  const state = byId('api-key-state');
  const show = () => {
    state.textContent = apiKey() ? 'key set' : 'no key';
  };
  input.value = apiKey();
  show();
  byId<HTMLFormElement>('api-key-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    setApiKey(input.value.trim());
    show();
    route();  // reload the page's data with the new key
  });
  onAuthProblem((status, detail) => {
    showBanner(
      status === 401
        ? 'This server requires an API key: paste one into the "API key" box above and press Save.'
        : `The API key was refused for this data: ${detail}`,
    );
  });
}

function start(): void {
  setupKeyBox();
  window.addEventListener('hashchange', route);
  if (!location.hash) history.replaceState(null, '', '#/overview');
  route();
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();
