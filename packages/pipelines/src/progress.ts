/**
 * How a pipeline reports a long phase without drawing anything itself (pipelines are headless): the caller passes a
 * factory (the CLI's draws its progress line on stderr); the default reports nothing.
 */
export type ProgressLine = { update(step: number, fields: Record<string, number>): void; done(): void };
export type ProgressFactory = (total: number, label: string, opts: { startStep?: number; unit?: string }) => ProgressLine;
export const noProgress: ProgressFactory = () => ({ update: () => {}, done: () => {} });
