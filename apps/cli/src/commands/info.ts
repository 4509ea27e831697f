import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { Command } from 'commander';
import { initBackend, describeBackend, type BackendChoice, resolveThreads } from '@factorgen/tfjs-ext/node';
import { repoRoot } from '@factorgen/io';
import { backendOption, threadsOption } from './common';

/** `factorgen info`: backend, versions, and the datasets and pretrained models it can find. */
export function registerInfo(program: Command): void {
  program
    .command('info')
    .description('print the compute backend, versions and the datasets it can find')
    .addOption(backendOption())
    .addOption(threadsOption())
    .option('--verbose', "keep the GPU library's own messages (Dawn's warnings) on stderr; FACTORGEN_VERBOSE=1 does this for every command")
    .action(async (opts: { backend: BackendChoice; threads: number | 'auto'; verbose?: boolean }) => {
      if (opts.verbose) process.env.FACTORGEN_VERBOSE = '1';
      const info = await initBackend(opts.backend, { threads: resolveThreads(opts.threads) });
      const root = repoRoot();
      const exists = (p: string) => fs.existsSync(path.join(root, p));
      // The adapter itself is on the backend line when webgpu runs; otherwise say why it does not.
      const webgpu = info.adapter
        ? []
        : [`webgpu: not used${info.webgpuSkipped ? ` (${info.webgpuSkipped})` : ''}${info.choice === 'auto' ? '; --backend webgpu also takes a software adapter' : ''}`];
      const lines = [
        describeBackend(info),
        ...webgpu,
        ...(info.probeMs !== undefined ? [`webgpu probe: ${info.probeMs.toFixed(1)} ms`] : []),
        `node ${process.version}, tfjs ${tf.version.tfjs}, platform ${process.platform}-${process.arch}`,
        `datasets:`,
        `  fashion-mnist  ${exists('data/fashion-mnist/train-images-idx3-ubyte.gz') ? path.join(root, 'data/fashion-mnist') : 'missing'}`,
        `  emoji          ${exists('data/emoji/emoji32.json') ? path.join(root, 'data/emoji') : 'missing'}`,
        `  folder         any root/<class>/*.{png,jpg,jpeg,webp} via --dataset folder --data DIR`,
        `pretrained:`,
        `  tokenizer      ${exists('pretrained/tokenizer/config.json') ? path.join(root, 'pretrained/tokenizer') : 'missing'}`,
        `  generator      ${exists('pretrained/generator/config.json') ? path.join(root, 'pretrained/generator') : 'missing'}`,
      ];
      process.stdout.write(lines.join('\n') + '\n');
    });
}
