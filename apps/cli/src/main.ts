import { runCli } from './ui/run';
import { buildProgram } from './program';

await runCli(async () => {
  await buildProgram().parseAsync(process.argv);
});
