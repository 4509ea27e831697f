import { Command } from 'commander';
import { defaultAdamW } from '@factorgen/shared';
import { trainTeacher, presetFashionTeacher } from '@factorgen/tokenizer';
import { resolveResumeFlags, teacherResumeTable } from './resume';
import { addDataOptions, addTrainOptions, loadSplit, startBackend, note, printJson, type DataFlags, type TrainFlags } from './common';

export function registerTeacher(program: Command): void {
  const teacher = program.command('teacher').description('the embedded teacher for alignment and perceptual losses');
  const train = teacher.command('train').description("train the teacher classifier on the dataset's labels");
  addDataOptions(train);
  addTrainOptions(train, { steps: 1500, batch: 64, lr: 2e-3, warmup: 50 });
  train.option('--flip', 'random horizontal flips', false).action(async (_flags: DataFlags & TrainFlags & { flip: boolean }, cmd: Command) => {
    const f = await resolveResumeFlags<DataFlags & TrainFlags & { flip: boolean }>(cmd, teacherResumeTable);
    await startBackend(f.backend);
    const data = await loadSplit(f, 'train');
    const test = await loadSplit(f, 'test');
    const config = { ...presetFashionTeacher(), imageSize: data.height, channels: data.channels, classes: data.classNames.length };
    const r = await trainTeacher({
      out: f.out, resume: f.resume, overwrite: f.overwrite, config, data, test,
      train: {
        steps: f.steps, batch: f.batch, lr: f.lr, warmup: f.warmup, clip: f.clip, adamw: { ...defaultAdamW, weightDecay: f.weightDecay },
        seed: f.seed, flip: f.flip, checkpointEvery: f.checkpointEvery, logEvery: f.logEvery,
      },
    });
    note(`teacher saved to ${r.checkpointDir}; test accuracy ${r.testAccuracy === null ? 'n/a' : (100 * r.testAccuracy).toFixed(1) + '%'}`);
    printJson({ checkpoint: r.checkpointDir, testAccuracy: r.testAccuracy, imagesPerSecond: r.itemsPerSecond });
  });
}
