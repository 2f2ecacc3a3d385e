// A development server for the dashboard: serves dist/ (rebuild with `node build.mjs --watch` in
// another terminal) and forwards every other path (/v1/..., /metrics, /healthz) to a running
// `persona serve`, so the dashboard can be tried without rebuilding the C++ server.
// Usage: node dev-server.mjs --api http://127.0.0.1:8080 [--port 5173]
import { readFile } from 'node:fs/promises';
import { createServer, request } from 'node:http';
import { dirname, extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
};
const api = new URL(arg('--api', 'http://127.0.0.1:8080'));
const port = Number(arg('--port', '5173'));
const dist = join(dirname(fileURLToPath(import.meta.url)), 'dist');
const types = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8' };

createServer(async (req, res) => {
  const path = new URL(req.url, 'http://x').pathname;
  if (path === '/' || path.startsWith('/assets/')) {
    const file = normalize(join(dist, path === '/' ? 'index.html' : path));
    if (!file.startsWith(dist)) return res.writeHead(404).end();
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'Content-Type': types[extname(file)] ?? 'application/octet-stream', 'Cache-Control': 'no-cache' });
      return res.end(body);
    } catch {
      return res.writeHead(404).end('not built: node build.mjs');
    }
  }
  const upstream = request(
    { host: api.hostname, port: api.port, method: req.method, path: req.url, headers: req.headers },
    (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    },
  );
  upstream.on('error', (e) => res.writeHead(502).end(`upstream ${api}: ${e.message}`));
  req.pipe(upstream);
}).listen(port, '127.0.0.1', () => console.log(`dashboard on http://127.0.0.1:${port}/ -> API ${api}`));
