/**
 * `npx factorgen serve` and `npm run web` run node under `sh -c` under npm. Stopping them by the pid `$!` gives (npm's)
 * must stop the server too (issue 25): the server watches the process chain that started it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '../..');
const started: ChildProcess[] = [];

/** Starts `cmd args` as a shell's `&` would and resolves with its pid and the URL the server prints. */
function startVia(cmd: string, args: string[]): Promise<{ child: ChildProcess; url: URL; stderr: () => string }> {
  const child = spawn(cmd, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(child);
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^(http:\/\/\S+)$/m.exec(out);
      if (m) resolve({ child, url: new URL(m[1]!), stderr: () => err });
    });
    child.on('exit', (code) => reject(new Error(`${cmd} exited with ${code}: ${err}`)));
  });
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

async function closesWithin(port: number, ms: number): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (!(await portOpen(port))) return Date.now() - t0;
    await new Promise((r) => setTimeout(r, 100));
  }
  return Infinity;
}

afterEach(() => {
  for (const c of started.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
});

describe('the server stops with the process that started it', () => {
  for (const [how, cmd, args] of [
    ['npx factorgen serve', 'npx', ['factorgen', 'serve', '--generator', 'pretrained/generator', '--port', '0']],
    ['npm run web', 'npm', ['run', '--silent', 'web', '--', '--port', '0']],
  ] as const) {
    it(`${how}: SIGTERM to npm's pid closes the port`, async () => {
      const { child, url, stderr } = await startVia(cmd, [...args]);
      const port = Number(url.port);
      expect(await portOpen(port)).toBe(true);
      child.kill('SIGTERM');
      // The watch polls every 0.5 s; 10 s leaves room for a loaded machine.
      const took = await closesWithin(port, 10_000);
      expect(took, stderr()).toBeLessThan(10_000);
    }, 180_000);
  }
});
