import { parentPort, workerData } from 'node:worker_threads';
import { initBackend, type BackendChoice } from '../backend';
import type { GradTask, GradTaskFactory } from './gradPool';

// Entry of a GradPool worker thread: its own tfjs engine, the task module's model, one shard per message.
const port = parentPort!;
const data = workerData as { module: string; init: unknown; backend: BackendChoice; exportName: string };

async function createTask(): Promise<GradTask<unknown>> {
  await initBackend(data.backend);
  const mod = (await import(data.module)) as Record<string, unknown>;
  const factory = mod[data.exportName] as GradTaskFactory<unknown, unknown> | undefined;
  if (typeof factory !== 'function') throw new Error(`${data.module} does not export a function ${data.exportName}`);
  return factory(data.init);
}

function serve(task: GradTask<unknown>): void {
  port.on('message', async (req: { id: number; weights: Float32Array[]; batch: unknown }) => {
    const t0 = performance.now();
    try {
      const r = await task.computeGrads(req.weights, req.batch);
      const reply = { id: req.id, grads: r.grads, loss: r.loss, size: r.size, computeMs: performance.now() - t0 };
      // Gradient arrays are handed over, not copied (each buffer once, in case arrays share one).
      port.postMessage(reply, [...new Set(r.grads.map((g) => g.buffer as ArrayBuffer))]);
    } catch (e) {
      port.postMessage({ id: req.id, error: (e as Error).message });
    }
  });
  port.postMessage({ ready: true });
}

// A failed start is reported as a message (the pool rejects and terminates the worker).
createTask().then(serve, (e: Error) => port.postMessage({ error: e.message }));
