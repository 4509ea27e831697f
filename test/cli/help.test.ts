/**
 * `--help` (issue 25): every command has an example whose flags are its own and which gives its required flags; options
 * come in groups; defaults print as typed (`1024`, `1,2,2`, `0`); required flags are marked; --preset fqgan lists what it
 * sets; compare --budget names its budgets and where their measured times are.
 */
import { Command, CommanderError } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '@factorgen/cli/program';
import { EXAMPLES, typedDefault } from '@factorgen/cli/help';

async function help(args: string[]): Promise<string> {
  const program = buildProgram();
  let out = '';
  const quiet = (c: Command): void => {
    c.exitOverride().configureOutput({ writeOut: (s) => (out += s), writeErr: (s) => (out += s) });
    c.commands.forEach(quiet);
  };
  quiet(program);
  try {
    await program.parseAsync([...args, '--help'], { from: 'user' });
  } catch (e) {
    if (!(e instanceof CommanderError) || e.exitCode !== 0) throw e;
  }
  return out;
}

function allCommands(c: Command, path: string[] = []): { path: string[]; cmd: Command }[] {
  return [{ path, cmd: c }, ...c.commands.flatMap((s) => allCommands(s, [...path, s.name()]))];
}

describe('--help', () => {
  it('every command ends with an example using only its own flags and giving its required ones', async () => {
    const program = buildProgram();
    const cmds = allCommands(program);
    expect(cmds.length).toBeGreaterThan(18);
    for (const { path, cmd } of cmds) {
      const ex = EXAMPLES[path.join(' ')];
      expect(ex, path.join(' ')).toBeDefined();
      const text = await help(path);
      expect(text, path.join(' ')).toContain(`\nExample:\n  $ ${ex}\n`);
      if (cmd.commands.length > 0) continue; // a group's example is one of its subcommands'
      expect(ex.startsWith(`factorgen ${path.join(' ')} `), ex).toBe(true);
      const flags = ex.split(' ').filter((w) => w.startsWith('--'));
      for (const f of flags) expect(cmd.options.some((o) => o.long === f), `${path.join(' ')}: ${f}`).toBe(true);
      for (const o of cmd.options.filter((o) => /\(required[;)]/.test(helpLine(text, o.long!)))) expect(flags, path.join(' ')).toContain(o.long);
    }
  }, 120_000);

  it('tokenizer train: grouped, defaults as typed, required marked, the preset spelled out', async () => {
    const text = await help(['tokenizer', 'train']);
    const headings = text.split('\n').filter((l) => /^[A-Z][a-z]+:$/.test(l));
    expect(headings).toEqual(['Model:', 'Losses:', 'Training:', 'Data:', 'Output:', 'Compute:', 'Options:', 'Example:']);
    const flat = text.replace(/\s+/g, ' ');
    expect(flat).not.toMatch(/default: \[|default: "/);
    expect(flat).toContain('(default: 1024)');
    expect(flat).toContain('(default: 1,2,2)');
    expect(flat).toMatch(/--seed <s> seed for data order, initializers and everything random \(default: 0\)/);
    expect(flat).toMatch(/--out <dir> .*\(required\)/);
    expect(flat).toContain('--entropy-weight 0.03 --entropy-temperature 0.01');
    expect(flat).toContain('--adversarial-start <10% of --steps> --ema 0.995 (needs --teacher)');
  });

  it('compare --budget names each budget and where its measured times are; sample groups its seed under Sampling', async () => {
    const c = (await help(['compare'])).replace(/\s+/g, ' ');
    for (const b of ['smoke:', 'small:', 'medium:', 'large:', 'default: medium', 'docs/compare.md']) expect(c).toContain(b);
    const s = await help(['sample']);
    expect(s.slice(s.indexOf('Sampling:'), s.indexOf('Output:'))).toContain('--seed <s>');
  });

  it('typedDefault writes values as on the command line', () => {
    expect([typedDefault([1024]), typedDefault([1, 2, 2]), typedDefault('0'), typedDefault(2e-3), typedDefault([]), typedDefault(false)]).toEqual([
      '1024', '1,2,2', '0', '0.002', null, null,
    ]);
  });
});

/** The help text of one flag (its line and continuation lines), whitespace folded. */
function helpLine(text: string, long: string): string {
  const lines = text.split('\n');
  const i = lines.findIndex((l) => l.trimStart().startsWith(`${long} `) || l.trim() === long);
  if (i < 0) return '';
  let s = lines[i]!;
  for (let j = i + 1; j < lines.length && /^\s{6,}\S/.test(lines[j]!) && !/^\s+-/.test(lines[j]!); j++) s += ` ${lines[j]!.trim()}`;
  return s.replace(/\s+/g, ' ');
}
