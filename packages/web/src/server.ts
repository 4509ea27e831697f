import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { UserError } from '@factorgen/shared';
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

/**
 * Serves a site over HTTP on `host`:`port` (port 0: any free one). GET and HEAD only; unknown paths are 404.
 * Resolves once listening; a port in use is a one-line UserError.
 */
export function serveSite(site: Site, opts: { port: number; host?: string }): Promise<RunningServer> {
  const host = opts.host ?? '127.0.0.1';
  const server = http.createServer((req, res) => {
    const url = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname).replace(/^\/+/, '') || 'index.html';
    const f = site.get(url);
    if ((req.method !== 'GET' && req.method !== 'HEAD') || !f) {
      res.writeHead(f ? 405 : 404, { 'content-type': 'text/plain' }).end(f ? 'method not allowed' : 'not found');
      return;
    }
    let body: Uint8Array | string;
    try {
      body = 'file' in f ? fs.readFileSync(f.file) : f.data;
    } catch (e) {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(`cannot read ${url}: ${(e as Error).message}`);
      return;
    }
    const ext = url.slice(url.lastIndexOf('.') + 1);
    res.writeHead(200, { 'content-type': types[ext] ?? 'application/octet-stream', 'cache-control': 'no-cache' });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  return new Promise((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      reject(new UserError(listenError(e, opts.port, host)));
    });
    server.listen(opts.port, host, () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}/`,
        // Open keep-alive connections (a browser tab) would hold close() for minutes: end them too.
        close: () => new Promise((r) => {
          server.close(() => r());
          server.closeAllConnections();
        }),
      });
    });
  });
}
