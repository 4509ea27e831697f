import * as fs from 'node:fs';
import { Command } from 'commander';
import { registerInfo } from './commands/info';
import { registerTokenizer } from './commands/tokenizer';
import { registerGenerator, registerSample } from './commands/generator';
import { registerTeacher } from './commands/teacher';
import { registerEval } from './commands/eval';
import { registerCompare } from './commands/compare';
import { registerExport } from './commands/export';
import { registerReport, registerServe, registerWeb } from './commands/web';

/**
 * The package's version (@factorgen/cli's package.json, one folder above src/ and build/; the same version as the
 * repository's), for --version. Read beside this module so that it is found in an installed package too.
 */
export function packageVersion(): string {
  return (JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

/**
 * commander checks required options before it refuses unknown ones, so `sample --generatr X` said only that
 * --generator is missing. Each command's required options are checked instead in a preAction hook, which runs after
 * commander refused unknown options and after the command's own hooks (--resume fills flags from the run there);
 * the message is commander's own.
 */
function checkRequiredAfterUnknown(cmd: Command): void {
  for (const sub of cmd.commands) checkRequiredAfterUnknown(sub);
  const required = cmd.options.filter((o) => o.mandatory);
  if (required.length === 0) return;
  for (const o of required) o.mandatory = false;
  cmd.hook('preAction', () => {
    for (const o of required) {
      if (cmd.getOptionValue(o.attributeName()) === undefined) {
        cmd.error(`error: required option '${o.flags}' not specified`, { code: 'commander.missingMandatoryOptionValue' });
      }
    }
  });
}

import { styleHelp } from './help';

/** The factorgen CLI: parses flags and calls the packages; no model code lives here. */
export function buildProgram(): Command {
  const program = new Command('factorgen')
    .description('Factorized visual tokenizers and factorized autoregressive generators on TensorFlow.js')
    .version(packageVersion())
    // One line: commander's "(Did you mean --generator?)" joins the error instead of a second line.
    .configureOutput({ outputError: (s, write) => write(s.trim().replace(/\s*\n\s*/g, ' ') + '\n') });
  registerInfo(program);
  registerTeacher(program);
  registerTokenizer(program);
  registerGenerator(program);
  registerSample(program);
  registerEval(program);
  registerCompare(program);
  registerExport(program);
  registerServe(program);
  registerWeb(program);
  registerReport(program);
  styleHelp(program);
  checkRequiredAfterUnknown(program);
  return program;
}
