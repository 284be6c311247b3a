/**
 * `nightshift --help` answers at once (issue 12): before commander parses anything, Node loads only the
 * bin's static import closure, which must hold the command definitions and not what commands run (the
 * AWS SDK clients, the prompt, the spinner, the serverless.yml built into the bin). Checked on the built
 * files, not by timing: the closure's size and contents, and every --help answered by the closure alone.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const DIST = resolve('dist', 'cli');
const BIN = join(DIST, 'nightshift.mjs');

/**
 * What loading `entry` loads before its code runs: the files it imports statically (`import … from
 * "./x"`, `import "./x"`, `export … from "./x"`), followed recursively, keyed by path. `import("./x")`
 * loads only when the code calling it runs, and is not followed.
 */
const staticClosure = (entry: string): Map<string, string> => {
  const files = new Map<string, string>();
  const visit = (file: string) => {
    if (files.has(file)) return;
    const text = readFileSync(file, 'utf8');
    files.set(file, text);
    for (const m of text.matchAll(
      /\b(?:import|export)\s*(?:[\w$*{}\s,]*?\s*from\s*)?["'](\.{1,2}\/[^"']+)["']/g,
    ))
      visit(resolve(dirname(file), m[1]!));
  };
  visit(entry);
  return files;
};

/** About twice what the closure holds: commander (39 KiB minified) and the command definitions. */
const BUDGET_KIB = 128;

/** What the closure must not hold, each told by a string only its code carries. */
const LOADED_ONLY_TO_RUN: [what: string, marker: string][] = [
  // Every AWS SDK client's schema names its Smithy namespace: "com.amazonaws.ecs", "com.amazonaws.lambda".
  ['an AWS SDK client', 'com.amazonaws.'],
  ['the ECS client (its DescribeServices operation)', 'DescribeServices'],
  ['the SigV4 request signer', 'AWS4-HMAC-SHA256'],
  ['the confirmation prompt (@inquirer/core)', 'User force closed the prompt'],
  ['the spinner (ora)', 'isSpinning'],
  ['the serverless.yml built into the bin (scripts/build.ts embedServerless)', 'as built into this CLI'],
  ['the schedules built into the bin (scripts/build.ts embedSchedules)', 'as built into this bundle'],
  ['the holiday calendars (date-holidays)', 'Bundesfeiertag'],
  ['the YAML parser', 'YAMLParseError'],
  ['the payload schemas (zod)', 'ZodError'],
];

/** The commands the README documents, and those that group subcommands. */
const COMMANDS = [
  'stop',
  'start',
  'wake',
  'sleep',
  'copy-snapshot',
  'tag-snapshots',
  'rotate',
  'restart',
  'schedule',
  'fleet',
  'status',
];
const SUBCOMMANDS = [
  'schedule check',
  'schedule next',
  'fleet run',
  'fleet status',
  'fleet redrive',
  'fleet halt',
];

const built = () => {
  expect(existsSync(BIN), `${BIN} missing: run npm run build`).toBe(true);
  return staticClosure(BIN);
};

describe('the nightshift bin before it parses its arguments', () => {
  let dir: string | undefined;
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it(`loads at most ${BUDGET_KIB} KiB: the command definitions, not what the commands run`, () => {
    // Prepare
    const closure = built();

    // Act
    const bytes = [...closure.values()].reduce((sum, text) => sum + Buffer.byteLength(text), 0);
    const found = LOADED_ONLY_TO_RUN.filter(([, marker]) =>
      [...closure.values()].some((text) => text.includes(marker)),
    ).map(([what]) => what);

    // Assess
    expect(found, 'loaded before the arguments are parsed').toEqual([]);
    expect(
      bytes / 1024,
      `static import closure of dist/cli/nightshift.mjs: ${[...closure.keys()].map((f) => relative(DIST, f)).join(', ')}`,
    ).toBeLessThanOrEqual(BUDGET_KIB);
  });

  it('answers --help, and every command’s --help, from that closure alone', () => {
    // Prepare: a copy of dist/cli holding only the bin and the chunks it imports statically
    const closure = built();
    dir = mkdtempSync(join(tmpdir(), 'nightshift-help-'));
    for (const file of closure.keys()) {
      const copy = join(dir, relative(DIST, file));
      mkdirSync(dirname(copy), { recursive: true });
      cpSync(file, copy);
    }
    const help = (args: string[]) =>
      spawnSync(process.execPath, [join(dir!, 'nightshift.mjs'), ...args, '--help'], {
        encoding: 'utf8',
        env: { PATH: process.env.PATH },
      });

    // Act
    const top = help([]);
    const each = [...COMMANDS, ...SUBCOMMANDS].map((command) => ({
      command,
      run: help(command.split(' ')),
    }));

    // Assess: the command list, and each command's usage, with nothing missing
    expect(top.stderr).toBe('');
    expect(top.status).toBe(0);
    const listed = top.stdout
      .slice(top.stdout.indexOf('Commands:'))
      .split('\n')
      .flatMap((line) => /^ {2}([a-z-]+)\b/.exec(line)?.[1] ?? []);
    expect(listed).toEqual([...COMMANDS, 'help']);
    for (const { command, run } of each) {
      expect(run.stderr, command).toBe('');
      expect(run.status, command).toBe(0);
      expect(run.stdout, command).toMatch(new RegExp(`^Usage: nightshift ${command} \\[options\\]`));
    }
  });
});
