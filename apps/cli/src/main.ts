import { runCli } from '@factorgen/train';
import { buildProgram } from './program';

await runCli(async () => {
  await buildProgram().parseAsync(process.argv);
});
