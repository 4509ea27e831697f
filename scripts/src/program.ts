import { Command } from 'commander';
import { registerInfo } from './commands/info';
import { registerTokenizer } from './commands/tokenizer';
import { registerGenerator, registerSample } from './commands/generator';
import { registerTeacher } from './commands/teacher';
import { registerEval } from './commands/eval';
import { registerCompare } from './commands/compare';
import { registerExport } from './commands/export';
import { registerReport, registerServe, registerWeb } from './commands/web';

/** The factorgen CLI: parses flags and calls the packages; no model code lives here. */
export function buildProgram(): Command {
  const program = new Command('factorgen')
    .description('Factorized visual tokenizers and factorized autoregressive generators on TensorFlow.js')
    .configureOutput({ outputError: (s, write) => write(s.split('\n')[0] + '\n') });
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
  return program;
}
