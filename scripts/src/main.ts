import { runCli } from '@factorgen/shared';
import { buildProgram } from './program';

await runCli(async () => {
  await buildProgram().parseAsync(process.argv);
});
