/**
 * withTrainingUi: the CLI side of a headless training run. Its progress line comes from the loop's events; SIGINT /
 * SIGTERM are handled only while a loop runs (from its `start` event until the run settles) and abort the run's signal
 * with StopRequested; the "saved checkpoint" line follows the loop's `stopped` event.
 */
import { describe, expect, it } from 'vitest';
import { type TrainEvent } from '@factorgen/train';
import { withTrainingUi } from '@factorgen/cli/ui/training';
import { StopRequested } from '@factorgen/cli/ui/signals';

const sink = () => {
  const out: string[] = [];
  return { out, stream: { write: (s: string) => (out.push(s), true) } as unknown as NodeJS.WritableStream };
};
const start: TrainEvent = { type: 'start', label: 'tok', startStep: 0, totalSteps: 4, checkpointDir: 'runs/t/checkpoint' };
const listeners = () => process.listenerCount('SIGINT') + process.listenerCount('SIGTERM');

describe('withTrainingUi', () => {
  it('a signal before the loop starts is not its to handle; after start, SIGTERM aborts with StopRequested(143) and the stop is reported', async () => {
    const { out, stream } = sink();
    const before = listeners();
    const e = await withTrainingUi(
      async ({ signal, onEvent }) => {
        expect(listeners()).toBe(before); // opening the run folder, building the model: runCli's handler acts
        onEvent(start);
        expect(listeners()).toBe(before + 2);
        onEvent({ type: 'step', step: 1, totalSteps: 4, metrics: { loss: 0.5 }, fields: { loss: 0.5 } });
        process.emit('SIGTERM', 'SIGTERM');
        expect(signal.aborted).toBe(true);
        onEvent({ type: 'checkpoint', step: 1, checkpointDir: 'runs/t/checkpoint' });
        onEvent({ type: 'stopped', step: 1, checkpointDir: 'runs/t/checkpoint' });
        signal.throwIfAborted();
      },
      { stream },
    ).then(() => null, (err: unknown) => err);
    expect(e).toBeInstanceOf(StopRequested);
    expect((e as StopRequested).code).toBe(143);
    expect(listeners()).toBe(before);
    // not a TTY: the plain line of step 1, the notice, no final line (the same step is not repeated), where it was saved
    expect(out.map((l) => l.replace(/\| \S+ (step|s)\/(s|step) \| (eta|took) \S+ /, '| RATE | TIME '))).toEqual([
      'tok 1/4 25% | RATE | TIME | loss 0.5000\n',
      'factorgen: SIGTERM received, stopping after this step and saving a checkpoint (repeat to quit now)\n',
      'SIGTERM: saved checkpoint at step 1 to runs/t/checkpoint; resume with --resume\n',
    ]);
  });

  it('a run that fails removes the handlers too; one that ends prints the last line', async () => {
    const before = listeners();
    const failed = await withTrainingUi(async ({ onEvent }) => {
      onEvent(start);
      throw new Error('disk full');
    }).then(() => null, (err: unknown) => err);
    expect((failed as Error).message).toBe('disk full');
    expect(listeners()).toBe(before);
    const { out, stream } = sink();
    const r = await withTrainingUi(
      async ({ onEvent }) => {
        onEvent(start);
        for (let s = 1; s <= 4; s++) onEvent({ type: 'step', step: s, totalSteps: 4, metrics: {}, fields: {} });
        onEvent({ type: 'done', stepsDone: 4, seconds: 1 });
        return 'result';
      },
      { stream },
    );
    expect(r).toBe('result');
    expect(out.map((l) => l.split(' | ')[0])).toEqual(['tok 1/4 25%', 'tok 2/4 50%', 'tok 3/4 75%', 'tok 4/4 100%']);
  });
});
