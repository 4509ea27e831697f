import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { UserError } from '@factorgen/tfjs-ext';
import { parseClasses } from '@factorgen/pipelines';
import { thrownInCliWords } from '../support/cliWords';

const root = path.resolve(__dirname, '../..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'fg-sampnames-'));
const names = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat'];

describe('--classes is validated up front', () => {
  it('refuses an empty list (was: every class) and a class given twice (was: repeated rows)', () => {
    expect(thrownInCliWords(() => parseClasses('', names))).toBe('--classes: no class given (""); give indices or names, or all');
    expect(thrownInCliWords(() => parseClasses(' , ', names))).toBe('--classes: no class given (" , "); give indices or names, or all');
    expect(thrownInCliWords(() => parseClasses('3,3,dress', names))).toBe('--classes: class 3 "Dress" is given twice ("3" and "3"); give each class once (--per-class sets how many images)');
    expect(thrownInCliWords(() => parseClasses('3,dress', names))).toBe('--classes: class 3 "Dress" is given twice ("3" and "dress"); give each class once (--per-class sets how many images)');
    expect(parseClasses('all', names)).toEqual([0, 1, 2, 3, 4]);
    expect(parseClasses('4,0', names)).toEqual([4, 0]);
  });
});

describe('sample output names are checked before sampling', () => {
  it('refuses a class whose folder name would pass 255 bytes before any image is sampled (was: ENAMETOOLONG after all sampling)', () => {
    const gen = path.join(work, 'gen');
    fs.mkdirSync(gen);
    fs.copyFileSync(path.join(root, 'pretrained/generator/model.safetensors'), path.join(gen, 'model.safetensors'));
    const j = JSON.parse(fs.readFileSync(path.join(root, 'pretrained/generator/config.json'), 'utf8')) as { extra: { classNames: string[] } };
    j.extra.classNames[2] = 'x'.repeat(255);
    fs.writeFileSync(path.join(gen, 'config.json'), JSON.stringify(j));
    const out = path.join(work, 'out');
    const t0 = Date.now();
    const r = spawnSync(process.execPath, [path.join(root, 'apps/cli/bin/factorgen.mjs'), 'sample', '--generator', gen, '--tokenizer', 'pretrained/tokenizer', '--out', out, '--per-class', '50'], {
      cwd: root, encoding: 'utf8', timeout: 120_000,
    });
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr.trim().split('\n').at(-1)).toBe(
      `factorgen: --out ${out}: the folder for class 2 would be named 257 bytes long ("2-${'x'.repeat(38)}"…), over the 255 bytes a file name may have; leave that class out with --classes, or rename the class in the dataset and retrain`,
    );
    expect(fs.existsSync(out)).toBe(false);
    expect(Date.now() - t0).toBeLessThan(60_000);
    // Without that class it samples.
    const ok = spawnSync(process.execPath, [path.join(root, 'apps/cli/bin/factorgen.mjs'), 'sample', '--generator', gen, '--tokenizer', 'pretrained/tokenizer', '--out', out, '--per-class', '1', '--classes', '0,1'], {
      cwd: root, encoding: 'utf8', timeout: 120_000,
    });
    expect(ok.status, ok.stderr).toBe(0);
  }, 240_000);
});
