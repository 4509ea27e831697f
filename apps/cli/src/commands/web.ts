import { Command } from 'commander';
import { nonNegativeInt } from '../ui/flags';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkOutputDir, checkOutputFile, describeWriteError } from '@factorgen/io';
import { UserError } from '@factorgen/tfjs-ext';
import { checkSiteFolder, modelSite, readRun, runReportHtml, serveSite, writeSite } from '@factorgen/web';
import { note, printJson } from './common';
import { watchLauncher } from './launcher';

/** `factorgen serve`: the sampling page and the model's files on localhost. */
export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('serve the sampling page and a generator (with its tokenizer) on localhost; sampling runs in the browser')
    .requiredOption('--generator <dir>', 'generator run or checkpoint folder')
    .option('--tokenizer <dir>', 'tokenizer folder (default: the one the generator was trained with)')
    .option('--port <n>', 'port (0 = any free port)', nonNegativeInt, 8080)
    .option('--host <addr>', 'address to listen on', '127.0.0.1')
    .action(async (f: { generator: string; tokenizer?: string; port: number; host: string }) => {
      const site = await modelSite({ generator: f.generator, tokenizer: f.tokenizer });
      const server = await serveSite(site, { port: f.port, host: f.host });
      // stdout: the URL alone on one line, so scripts can read it; Ctrl-C stops the server.
      process.stdout.write(`${server.url}\n`);
      note(`serving ${f.generator} at ${server.url} (Ctrl-C stops)`);
      await new Promise<void>((resolve) => {
        let stopping = false;
        const stop = () => {
          if (stopping) return;
          stopping = true;
          void server.close().then(resolve);
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        process.once('SIGHUP', stop);
        // Killing npm (npx / npm run web) leaves this node orphaned: stop with the process that started us.
        watchLauncher((why) => {
          note(`stopping: ${why}`);
          stop();
        });
      });
    });
}

/** `factorgen web build`: the same page as a static folder. */
export function registerWeb(program: Command): void {
  const web = program.command('web').description('the browser sampling page');
  web
    .command('build')
    .description('write the sampling page and the model as a static folder that any static web server can serve')
    .requiredOption('--generator <dir>', 'generator run or checkpoint folder')
    .option('--tokenizer <dir>', 'tokenizer folder (default: the one the generator was trained with)')
    .requiredOption('--out <dir>', 'site folder to write (new, empty, or a site factorgen built there: its .factorgen.json lists every file)')
    .action(async (f: { generator: string; tokenizer?: string; out: string }) => {
      // Before the model checks and the bundle, which take seconds: a folder that is not a site, or cannot be written.
      checkSiteFolder(f.out);
      checkOutputDir(f.out, 'out');
      const site = await modelSite({ generator: f.generator, tokenizer: f.tokenizer });
      const files = writeSite(site, f.out);
      note(`wrote ${files.length} files to ${f.out}; serve the folder with any static web server and open index.html`);
      printJson({ out: f.out, files: files.length });
    });
}

/** `factorgen report`: one self-contained HTML page for one or more runs. */
export function registerReport(program: Command): void {
  program
    .command('report')
    .description('one self-contained HTML page (charts and grids, no network needed) for one run or several overlaid')
    .argument('<runs...>', 'run folders (each with metrics.jsonl)')
    .requiredOption('--out <file>', 'HTML file to write')
    .option('--title <text>', 'page title')
    .option('--overwrite', 'replace an existing --out file', false)
    .action((dirs: string[], f: { out: string; title?: string; overwrite: boolean }) => {
      // Runs are named by their folder; when two share a name, by the path as given.
      const base = dirs.map((d) => path.basename(path.resolve(d)));
      const names = base.map((b, i) => (base.indexOf(b) !== base.lastIndexOf(b) ? dirs[i] : b));
      checkOutputFile(f.out, 'out', { overwrite: f.overwrite, magic: '<!doctype html>' });
      const runs = dirs.map((d, i) => readRun(d, names[i]));
      const html = runReportHtml(runs, f.title);
      try {
        fs.writeFileSync(f.out, html);
      } catch (e) {
        throw new UserError(`--out ${f.out}: ${describeWriteError(e)}`);
      }
      note(`wrote ${f.out} (${runs.length} run${runs.length > 1 ? 's' : ''}, ${(html.length / 1e3).toFixed(0)} kB)`);
      printJson({ out: f.out, runs: runs.map((r) => r.dir) });
    });
}
