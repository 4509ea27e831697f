import { runCli } from './ui/run';
import { UserError } from '@factorgen/tfjs-ext';
import { buildProgram } from './program';
import { cliError } from './ui/errors';

await runCli(async () => {
  try {
    await buildProgram().parseAsync(process.argv);
  } catch (e) {
    // Library errors name fields; the user gave flags.
    throw e instanceof UserError ? cliError(e) : e;
  }
});
