import { Command, Option } from 'commander';
import { defaultAdamW } from '@factorgen/nn';
import { UserError } from '@factorgen/tfjs-ext';
import { trainTeacher } from '@factorgen/pipelines';
import { presetFashionTeacher, type TeacherKind, ROTATIONS } from '@factorgen/tokenizer';
import { fillFlagsOnResume, teacherResumeTable } from './resume';
import { addDataOptions, addTrainOptions, loadSplit, startBackend, note, printJson, type DataFlags, type TrainFlags } from './common';
import { withTrainingUi } from '../ui/training';

export function registerTeacher(program: Command): void {
  const teacher = program.command('teacher').description('the embedded teacher for alignment and perceptual losses');
  const train = teacher.command('train').description("train a teacher: a classifier on the dataset's labels, or a self-supervised rotation predictor");
  addDataOptions(train);
  addTrainOptions(train, { steps: 1500, batch: 64, lr: 2e-3, warmup: 50 });
  fillFlagsOnResume(train, teacherResumeTable);
  type Flags = DataFlags & TrainFlags & { flip: boolean; kind: TeacherKind };
  train
    .option('--flip', 'random horizontal flips', false)
    .addOption(
      new Option('--kind <kind>', "classifier: predicts the dataset's labels; rotation: predicts which of 4 turns by 90 degrees an image got (RotNet, no labels)")
        .choices(['classifier', 'rotation'])
        .default('classifier'),
    )
    .action(async (_flags: Flags, cmd: Command) => {
      const f = cmd.opts<Flags>(); // on --resume, filled from the run (fillFlagsOnResume)
      await startBackend(f.backend, f.threads);
      const data = await loadSplit(f, 'train');
      const test = await loadSplit(f, 'test');
      if (f.kind === 'rotation' && data.height !== data.width) throw new UserError(`--kind rotation: needs square images (--dataset ${data.name} is ${data.height}x${data.width})`);
      const config = {
        ...presetFashionTeacher(), imageSize: data.height, channels: data.channels, kind: f.kind,
        classes: f.kind === 'rotation' ? ROTATIONS : data.classNames.length,
      };
      const r = await withTrainingUi((ui) => trainTeacher({
        ...ui,
        out: f.out, resume: f.resume, overwrite: f.overwrite, config, data, test,
        train: {
          steps: f.steps, batch: f.batch, lr: f.lr, warmup: f.warmup, clip: f.clip, adamw: { ...defaultAdamW, weightDecay: f.weightDecay },
          seed: f.seed, flip: f.flip, checkpointEvery: f.checkpointEvery, logEvery: f.logEvery,
        },
      }));
      note(`${f.kind} teacher saved to ${r.checkpointDir}; test accuracy${f.kind === 'rotation' ? ' (of the turn)' : ''} ${r.testAccuracy === null ? 'n/a' : (100 * r.testAccuracy).toFixed(1) + '%'}`);
      printJson({ checkpoint: r.checkpointDir, testAccuracy: r.testAccuracy, imagesPerSecond: r.itemsPerSecond });
    });
}
