import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { UserError } from '@factorgen/tfjs-ext';
import type { Site } from './site';

const types: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  json: 'application/json',
  wasm: 'application/wasm',
  bin: 'application/octet-stream',
  png: 'image/png',
};

export type RunningServer = { url: string; close(): Promise<void> };

/** Why the server cannot listen, in words, naming the flag at fault. */
function listenError(e: NodeJS.ErrnoException, port: number, host: string): string {
  switch (e.code) {
    case 'EADDRINUSE':
      return `--port ${port}: already in use`;
    case 'EACCES':
      return `--port ${port}: permission denied (ports below 1024 need privileges)`;
    case 'EADDRNOTAVAIL':
      return `--host ${host}: not an address of this machine`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `--host ${host}: unknown host name`;
    default:
      return `--port ${port}: cannot listen on ${host} (${e.message.split('\n')[0]})`;
  }
}

/** Whether `host` (an address or name given to --host) means this machine only. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  // IPv4-mapped loopback as a URL spells it (::ffff:127.0.0.1 -> ::ffff:7f00:1).
  return h === 'localhost' || h.endsWith('.localhost') || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h) || /^::ffff:(127\.\d+\.\d+\.\d+|7f[0-9a-f]{2}:[0-9a-f]{1,4})$/.test(h);
}

/** A request refused: status code and the one-line plain-text body. */
type Refusal = { status: number; body: string };

/**
 * Whether the server answers this request at all. A server on a loopback address is reachable from every web page the
 * user opens: a page elsewhere can make the browser send it requests (an <img>, a fetch), and a DNS-rebinding name can
 * make them look same-origin. So, for a loopback bind, the Host header must name a loopback address (a rebound name is
 * refused), and requests that the browser marks as coming from another site (Sec-Fetch-Site, Origin) are refused on
 * every bind. A non-loopback --host (the user's choice to serve a network) accepts any Host header.
 */
export function refuseRequest(req: { method?: string; headers: http.IncomingHttpHeaders }, bindHost: string): Refusal | null {
  if (req.method !== 'GET' && req.method !== 'HEAD') return { status: 405, body: 'method not allowed' };
  const hostHeader = req.headers.host;
  if (hostHeader === undefined) return { status: 400, body: 'missing Host header' };
  // A Host header is host[:port]: userinfo ("evil@127.0.0.1") or spaces are not something a browser sends.
  if (/[@\s/\\]/.test(hostHeader)) return { status: 400, body: 'malformed Host header' };
  let hostName: string;
  try {
    hostName = new URL(`http://${hostHeader}`).hostname;
  } catch {
    return { status: 400, body: 'malformed Host header' };
  }
  if (isLoopbackHost(bindHost) && !isLoopbackHost(hostName)) {
    return { status: 421, body: `this server answers only to loopback host names (localhost, 127.0.0.1, [::1]), not ${JSON.stringify(hostName)}` };
  }
  const fetchSite = req.headers['sec-fetch-site'];
  if (fetchSite !== undefined && fetchSite !== 'same-origin' && fetchSite !== 'none') {
    return { status: 403, body: `cross-origin requests are refused (Sec-Fetch-Site: ${fetchSite})` };
  }
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== `http://${hostHeader}`) {
    return { status: 403, body: 'cross-origin requests are refused (Origin is another site)' };
  }
  return null;
}

/**
 * The site path of a request target ("/model/x.json?v=1" -> "model/x.json"; "/" -> "index.html"), or null when its
 * percent-encoding is malformed ("/%", "/%E0%A4%A"), which is a bad request, not a server error.
 */
export function sitePath(target: string): string | null {
  let pathname: string;
  try {
    pathname = decodeURIComponent(new URL(target, 'http://x').pathname);
  } catch {
    return null;
  }
  return pathname.replace(/^\/+/, '') || 'index.html';
}

/**
 * Serves a site over HTTP on `host`:`port` (port 0: any free one). GET and HEAD only (405); unknown paths are 404; a
 * malformed target is 400; requests from other sites, and on a loopback bind Host names that are not loopback, are
 * refused (refuseRequest). No request can stop the server: an error inside the handler is a 500 for that request.
 * Resolves once listening; a port in use is a one-line UserError.
 */
export function serveSite(site: Site, opts: { port: number; host?: string }): Promise<RunningServer> {
  const host = opts.host ?? '127.0.0.1';
  const send = (res: http.ServerResponse, status: number, body: string) => {
    if (res.headersSent) return void res.destroy();
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' }).end(body + '\n');
  };
  const handle = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const refused = refuseRequest(req, host);
    if (refused) return send(res, refused.status, refused.body);
    const url = sitePath(req.url ?? '/');
    if (url === null) return send(res, 400, 'bad request (malformed percent-encoding in the path)');
    const f = site.get(url);
    if (!f) return send(res, 404, 'not found');
    let body: Uint8Array | string;
    try {
      body = 'file' in f ? fs.readFileSync(f.file) : f.data;
    } catch (e) {
      return send(res, 500, `cannot read ${url}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    const ext = url.slice(url.lastIndexOf('.') + 1);
    res.writeHead(200, {
      'content-type': types[ext] ?? 'application/octet-stream',
      'cache-control': 'no-cache',
      'x-content-type-options': 'nosniff',
      // Browsers refuse these bytes to pages of other origins (an <img> or <script> elsewhere gets nothing).
      'cross-origin-resource-policy': 'same-origin',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
  const server = http.createServer((req, res) => {
    try {
      handle(req, res);
    } catch (e) {
      // Never let a request stop the server: this request fails, the next one is served.
      process.stderr.write(`factorgen serve: ${req.method} request failed (${(e as Error).message.split('\n')[0]})\n`);
      send(res, 500, 'internal error');
    }
  });
  // A connection that fails (a reset, a malformed request line) concerns that client only.
  server.on('clientError', (_e, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
    else socket.destroy();
  });
  return new Promise((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      reject(new UserError(listenError(e, opts.port, host)));
    });
    server.listen(opts.port, host, () => {
      const { port } = server.address() as AddressInfo;
      // After listening, a server error (EMFILE on accept) is reported, never thrown out of the process.
      server.on('error', (e) => process.stderr.write(`factorgen serve: ${e.message.split('\n')[0]}\n`));
      const shown = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '[::1]' : host.includes(':') ? `[${host}]` : host;
      resolve({
        url: `http://${shown}:${port}/`,
        // Open keep-alive connections (a browser tab) would hold close() for minutes: end them too.
        close: () => new Promise((r) => {
          server.close(() => r());
          server.closeAllConnections();
        }),
      });
    });
  });
}
