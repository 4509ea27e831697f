import * as http from 'node:http';
import * as net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isLoopbackHost, serveSite, type RunningServer, type Site } from '@factorgen/web';

// A raw request: the exact bytes a browser (or an attacker's page through a browser) could send.
function raw(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.end(request));
    let got = '';
    s.on('data', (d) => (got += d.toString('latin1')));
    s.on('end', () => resolve(got));
    s.on('error', reject);
  });
}

function get(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, headers }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      })
      .on('error', reject);
  });
}

const site: Site = new Map([
  ['index.html', { data: '<!doctype html>hi' }],
  ['model/generator/config.json', { data: '{}' }],
  ['gone.bin', { file: '/nonexistent/factorgen-test/gone.bin' }],
]);

describe('serve: no request stops the server, and only intended clients get files', () => {
  let server: RunningServer;
  let port: number;
  beforeAll(async () => {
    server = await serveSite(site, { port: 0 });
    port = Number(new URL(server.url).port);
  });
  afterAll(() => server.close());

  it('answers malformed percent-encoding with 400 and goes on serving', async () => {
    for (const p of ['/%', '/%E0%A4%A', '/model/%zz', '/%00%']) {
      const r = await get(port, p);
      expect(r.status, p).toBe(400);
      expect(r.body).toBe('bad request (malformed percent-encoding in the path)\n');
    }
    expect((await get(port, '/')).body).toBe('<!doctype html>hi');
  });

  it('answers a garbage request line with 400 and goes on serving', async () => {
    expect(await raw(port, 'GARBAGE\r\n\r\n')).toMatch(/^HTTP\/1\.1 400 /);
    expect(await raw(port, 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: x\r\n\r\n')).toMatch(/^HTTP\/1\.1 400 /);
    expect((await get(port, '/model/generator/config.json')).body).toBe('{}');
  });

  it('serves only the site: 404 for other paths (no traversal), 405 for other methods, 500 for an unreadable file', async () => {
    for (const p of ['/../package.json', '/%2e%2e/package.json', '/etc/passwd', '/model/../../README.md']) expect((await get(port, p)).status, p).toBe(404);
    const post = await raw(port, 'POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    expect(post).toMatch(/^HTTP\/1\.1 405 /);
    const gone = await get(port, '/gone.bin');
    expect([gone.status, gone.body]).toEqual([500, 'cannot read gone.bin: ENOENT\n']);
    expect((await get(port, '/')).status).toBe(200);
  });

  it('refuses a Host header that is not loopback (DNS rebinding) on a loopback bind', async () => {
    const r = await get(port, '/', { host: `attacker.example:${port}` });
    expect(r.status).toBe(421);
    expect(r.body).toBe('this server answers only to loopback host names (localhost, 127.0.0.1, [::1]), not "attacker.example"\n');
    for (const h of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, `app.localhost:${port}`]) expect((await get(port, '/', { host: h })).status, h).toBe(200);
    expect(await raw(port, 'GET / HTTP/1.0\r\n\r\n')).toMatch(/^HTTP\/1\.1 400 [^]*missing Host header/);
    // Own cases: userinfo in Host is malformed, IPv4-mapped loopback is loopback, a 100 kB target is 400 and the server goes on.
    expect((await get(port, '/', { host: 'evil@127.0.0.1' })).status).toBe(400);
    expect((await get(port, '/', { host: `[::ffff:127.0.0.1]:${port}` })).status).toBe(200);
    expect(await raw(port, `GET /${'a'.repeat(100_000)} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`)).toMatch(/^HTTP\/1\.1 4\d\d /);
    expect((await get(port, '/')).status).toBe(200);
  });

  it('refuses requests a browser marks as cross-site (an <img> or fetch from another page) and marks its files same-origin', async () => {
    const cross = await get(port, '/model/generator/config.json', { 'sec-fetch-site': 'cross-site' });
    expect([cross.status, cross.body]).toEqual([403, 'cross-origin requests are refused (Sec-Fetch-Site: cross-site)\n']);
    expect((await get(port, '/', { 'sec-fetch-site': 'same-site' })).status).toBe(403);
    const origin = await get(port, '/', { origin: 'https://evil.example' });
    expect([origin.status, origin.body]).toEqual([403, 'cross-origin requests are refused (Origin is another site)\n']);
    // The page's own requests, and a URL typed into the address bar.
    const own = await get(port, '/model/generator/config.json', { 'sec-fetch-site': 'same-origin', origin: `http://127.0.0.1:${port}` });
    expect(own.status).toBe(200);
    expect(own.headers['cross-origin-resource-policy']).toBe('same-origin');
    expect((await get(port, '/', { 'sec-fetch-site': 'none' })).status).toBe(200);
  });
});

describe('serve --host: a user-chosen network address answers any host name', () => {
  it('accepts any Host header on 0.0.0.0 but still refuses cross-site requests', async () => {
    const server = await serveSite(site, { port: 0, host: '0.0.0.0' });
    const port = Number(new URL(server.url).port);
    try {
      expect((await get(port, '/', { host: `mybox.lan:${port}` })).status).toBe(200);
      expect((await get(port, '/', { host: `mybox.lan:${port}`, 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    } finally {
      await server.close();
    }
  });

  it('knows loopback names', () => {
    expect(['localhost', '127.0.0.1', '127.1.2.3', '::1', '[::1]', 'a.localhost', 'LOCALHOST', '[::ffff:7f00:1]'].map(isLoopbackHost)).toEqual(Array(8).fill(true));
    expect(['0.0.0.0', '192.168.1.2', 'localhost.evil.com', '127.0.0.1.nip.io', 'example.com'].map(isLoopbackHost)).toEqual(Array(5).fill(false));
  });
});

describe('factorgen serve (the real CLI)', () => {
  it('survives GET /% (an <img src="http://127.0.0.1:PORT/%"> on any page) and serves the next request', async () => {
    const { spawn } = await import('node:child_process');
    const pathMod = await import('node:path');
    const root = pathMod.resolve(__dirname, '../..');
    const child = spawn(process.execPath, [pathMod.join(root, 'apps/cli/bin/factorgen.mjs'), 'serve', '--generator', 'pretrained/generator', '--port', '0'], { cwd: root });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d) => {
          out += d;
          if (out.includes('\n')) resolve(out.trim());
        });
        child.on('exit', (c) => reject(new Error(`serve exited ${c}: ${err}`)));
      });
      const port = Number(new URL(url).port);
      expect((await get(port, '/%')).status).toBe(400);
      expect((await get(port, '/%E0%A4%A')).status).toBe(400);
      expect(child.exitCode).toBe(null);
      expect((await get(port, '/model/generator/config.json')).status).toBe(200);
    } finally {
      child.kill('SIGTERM');
    }
  }, 60_000);
});
