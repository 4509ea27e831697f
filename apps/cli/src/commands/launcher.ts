import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';

/**
 * Long-running commands (`factorgen serve`) started through npm run as node under `sh -c` under `npm exec` / `npm run`.
 * Killing the pid a shell's `$!` gives (npm's) ends npm and sh but not node, which init adopts, so the server would go
 * on answering. We watch the launch chain instead: our parent, and under npm (npm_execpath set) every ancestor up to
 * the npm process itself; when one of them is gone (or only a zombie), or our parent changes, `onGone` runs.
 * Linux reads /proc; elsewhere `ps` answers.
 */

type Proc = { ppid: number; state: string; command: string };

function readProc(pid: number): Proc | null {
  if (process.platform === 'linux') {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'.
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const command = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
      return { state: rest[0]!, ppid: Number(rest[1]), command };
    } catch {
      return null;
    }
  }
  const r = spawnSync('ps', ['-o', 'ppid=,stat=,command=', '-p', String(pid)], { encoding: 'utf8' });
  const m = /^\s*(\d+)\s+(\S+)\s+(.*)$/.exec(r.stdout ?? '');
  return m ? { ppid: Number(m[1]), state: m[2]!.slice(0, 1), command: m[3]! } : null;
}

/** npm itself: `npm exec ...` / `npm run ...` (its process title) or node running npm-cli.js / npx-cli.js. */
const NPM = /^npm(\s|$)|npm-cli\.js|npx-cli\.js|(^|\/)npx(\s|$)/;

/** The pids whose end should end us: the parent, and under npm the ancestors up to npm (at most 4 levels). */
export function launchChain(): number[] {
  const chain = [process.ppid];
  if (!process.env.npm_execpath) return chain;
  let pid = process.ppid;
  for (let depth = 0; depth < 4; depth++) {
    const p = readProc(pid);
    if (!p || NPM.test(p.command)) break;
    if (p.ppid <= 1) break;
    pid = p.ppid;
    chain.push(pid);
  }
  return chain;
}

/** Ended, or (Linux, where /proc is cheap to read) a zombie its parent has not reaped yet. */
function gone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
  return process.platform === 'linux' && readProc(pid)?.state === 'Z';
}

/**
 * Calls `onGone(why)` once when a process of the launch chain ends or our parent changes; checks every `everyMs`
 * (an unref'd timer: it keeps nothing alive). Returns a function that stops watching.
 */
export function watchLauncher(onGone: (why: string) => void, everyMs = 500): () => void {
  const chain = launchChain();
  const parent = process.ppid;
  const timer = setInterval(() => {
    // Our current parent: /proc on Linux; elsewhere only the chain's ends are watched (no `ps` every tick).
    const now = process.platform === 'linux' ? readProc(process.pid)?.ppid ?? parent : parent;
    const dead = chain.find(gone);
    if (now !== parent || dead !== undefined) {
      clearInterval(timer);
      onGone(dead !== undefined ? `process ${dead} that started it ended` : `its parent process ${parent} ended`);
    }
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
