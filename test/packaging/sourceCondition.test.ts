/**
 * Tests run the packages' sources, never their build/ output, which may be stale: vitest resolves the "source"
 * export condition, and so do the child processes tests start (the CLI, probes) through vitest.config.ts's NODE_OPTIONS.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { packageVersion } from '@factorgen/cli/program';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const url = (rel: string) => pathToFileURL(path.join(root, rel)).href;

describe('tests run the sources', () => {
  it('a child process resolves the packages and the CLI entry (#main) to src/*.ts', () => {
    const script = "console.log(import.meta.resolve('@factorgen/tfjs-ext/node')); console.log(import.meta.resolve('@factorgen/generator')); console.log(import.meta.resolve('#main'))";
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: path.join(root, 'apps/cli'), encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim().split('\n')).toEqual([url('packages/tfjs-ext/src/node/index.ts'), url('packages/generator/src/index.ts'), url('apps/cli/src/main.ts')]);
  });

  it('without the source condition (a user, the demo) the same names are the built JavaScript', () => {
    const env = { ...process.env };
    delete env.NODE_OPTIONS;
    const script = "console.log(import.meta.resolve('@factorgen/generator')); console.log(import.meta.resolve('#main'))";
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: path.join(root, 'apps/cli'), env, encoding: 'utf8' });
    expect(r.stdout.trim().split('\n')).toEqual([url('packages/generator/build/index.js'), url('apps/cli/build/main.js')]);
  });

  it('in vitest, a package name resolves to its source module', () => {
    expect(import.meta.resolve('@factorgen/cli/program')).toBe(url('apps/cli/src/program.ts'));
    expect(import.meta.resolve('@factorgen/tfjs-ext/kernels/wasm/Slice')).toBe(url('packages/tfjs-ext/src/kernels/wasm/Slice.ts'));
  });

  it("--version is @factorgen/cli's own version, read beside its module (so an installed CLI finds it too)", () => {
    expect(packageVersion()).toBe((JSON.parse(fs.readFileSync(path.join(root, 'apps/cli/package.json'), 'utf8')) as { version: string }).version);
    expect(packageVersion()).toBe((JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version);
  });
});
