import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = path.dirname(fileURLToPath(import.meta.url));
// Run from source (tests, tsx) this module is bundle.ts and bundles the page's sources, resolving the packages through
// their "source" export condition, so a stale build/ cannot leak in; run from build/ (the CLI, an installed package)
// it bundles the built JavaScript through the packages' default exports.
const fromSource = import.meta.url.endsWith('.ts');

/**
 * Bundles the page (page/main.ts and the packages it imports, through their package.json exports)
 * into one ES module with esbuild. Fails if anything reachable needs Node (node:fs, sharp, workers, node:crypto):
 * esbuild cannot resolve those for the browser platform.
 */
export function bundlePage(opts: { minify?: boolean } = {}): Promise<string> {
  // One build per process and setting: the sources do not change while it runs.
  const key = opts.minify ?? true;
  let js = built.get(key);
  if (!js) {
    js = buildPage(key);
    built.set(key, js);
    js.catch(() => built.delete(key));
  }
  return js;
}

const built = new Map<boolean, Promise<string>>();

async function buildPage(minify: boolean): Promise<string> {
  const result = await build({
    entryPoints: [path.join(here, 'page', fromSource ? 'main.ts' : 'main.js')],
    conditions: fromSource ? ['source'] : [],
    bundle: true,
    write: false,
    platform: 'browser',
    format: 'esm',
    target: 'es2020',
    minify,
    legalComments: 'none',
    logLevel: 'silent',
  }).catch((e: { errors?: { text: string; location?: { file: string } | null }[] }) => {
    const first = e.errors?.[0];
    throw new Error(`web bundle: ${first ? `${first.location?.file ?? ''}: ${first.text}` : String(e)}`);
  });
  return new TextDecoder().decode(result.outputFiles[0].contents);
}
