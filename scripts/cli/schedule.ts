/**
 * `nightshift schedule check` and `nightshift schedule next`: the schedules file evaluated offline, no
 * AWS (issue 9, "Preview"). `npm run build` validates the same file with `loadSchedulesFile`. The YAML
 * parser and the schedule evaluator are imported when a command runs: the bin registers these commands
 * (program.ts) for every command line, `nightshift --help` included.
 */
import type { Command } from 'commander';
import { InputError } from '#shared/errors.ts';
import type { DesiredState, Schedules } from '#shared/schedules.ts';
import { EXIT } from './exit-codes.ts';

export const SCHEDULES_FILE = 'infra/schedules.yml';

/**
 * Reads and validates a schedules file (YAML; JSON is YAML). Throws ScheduleError naming the file,
 * the schedule and the field, or the line of a YAML syntax error (schedules-file.ts, with the parser).
 */
export const loadSchedulesFile = async (file: string): Promise<Schedules> =>
  (await import('./schedules-file.ts')).readSchedulesFile(file);

const load = async (file: string): Promise<Schedules> => {
  const { ScheduleError } = await import('#shared/schedules.ts');
  try {
    return await loadSchedulesFile(file);
  } catch (error) {
    if (error instanceof ScheduleError) throw new InputError(error.message, '--file');
    throw error;
  }
};

/** An ISO 8601 time with its offset: `2026-11-30T08:00:00Z`, `2026-11-30T07:00+01:00`. */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/i;

const instant = (text: string, flag: string): Date => {
  const at = new Date(text);
  if (!ISO_TIME.test(text) || Number.isNaN(at.getTime())) {
    throw new InputError(
      `${flag} expects an ISO time with its offset, e.g. 2026-11-30T08:00:00Z or 2026-11-30T07:00+01:00; got "${text}"`,
      flag,
    );
  }
  return at;
};

/** One row of `schedule check --json` (public contract). */
export interface CheckRow {
  schedule: string;
  at: string;
  state: DesiredState;
  reason: string;
}

/** One row of `schedule next --json`. */
export interface NextRow {
  schedule: string;
  timezone: string;
  /** The instant, UTC. */
  at: string;
  /** The same instant in the schedule's zone, with its offset. */
  local: string;
  from: DesiredState;
  to: DesiredState;
  reason: string;
}

const VERB: Record<DesiredState, string> = { running: 'start', stopped: 'stop', any: 'no wish' };

interface Out {
  out: (text: string) => void;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** Registers `schedule check` and `schedule next` under `cmd` (program.command('schedule')). */
export const scheduleCommands = (
  cmd: Command,
  io: Out,
  options: { json: () => boolean; now: () => Date; done: (code: number) => void },
) => {
  cmd.description('preview schedules offline: the desired state at given times, and the coming transitions');

  cmd
    .command('check')
    .description('evaluate every schedule in the file at each --at time: running, stopped or any, and why')
    .option('--file <path>', 'schedules file', SCHEDULES_FILE)
    .requiredOption('--at <time>', 'ISO time with offset, e.g. 2026-11-30T08:00:00Z (repeatable)', collect)
    .option('--json', 'print [{schedule, at, state, reason}]')
    .action(async function (this: Command) {
      const o = this.opts<{ file: string; at: string[]; json?: boolean }>();
      const times = o.at.map((text) => ({ text, at: instant(text, '--at') }));
      const schedules = await load(o.file);
      const { evaluate } = await import('#shared/schedules.ts');
      const rows: CheckRow[] = [];
      for (const s of schedules.values()) {
        for (const { text, at } of times) {
          const e = evaluate(s, at);
          rows.push({ schedule: s.name, at: text, state: e.state, reason: e.reason });
        }
      }
      if (o.json || options.json()) {
        io.out(JSON.stringify(rows, null, 2));
      } else {
        const width = Math.max(...rows.map((r) => r.at.length));
        io.out(rows.map((r) => `${r.at.padEnd(width)}  ${r.state.padEnd(7)}  ${r.reason}`).join('\n'));
      }
      options.done(EXIT.ok);
    });

  cmd
    .command('next')
    .description("list each schedule's coming transitions in its own time zone")
    .argument('[name]', 'only this schedule')
    .option('--days <n>', 'how far ahead, in days (1-366)', '7')
    .option('--from <time>', 'start from this ISO time instead of now')
    .option('--file <path>', 'schedules file', SCHEDULES_FILE)
    .option('--json', 'print [{schedule, timezone, at, local, from, to, reason}]')
    .action(async function (this: Command, name: string | undefined) {
      const o = this.opts<{ days: string; from?: string; file: string; json?: boolean }>();
      const days = Number(o.days);
      if (!/^\d+$/.test(o.days) || days < 1 || days > 366) {
        throw new InputError(
          `--days expects a whole number of days from 1 to 366, got "${o.days}"`,
          '--days',
        );
      }
      const from = o.from === undefined ? options.now() : instant(o.from, '--from');
      const until = new Date(from.getTime() + days * 86_400_000);
      const schedules = await load(o.file);
      const { evaluate, localIso, localLabel, transitionsBetween } = await import('#shared/schedules.ts');
      if (name !== undefined && !schedules.has(name)) {
        throw new InputError(
          `no schedule "${name}" in ${o.file} (it has: ${[...schedules.keys()].join(', ')})`,
          'name',
        );
      }
      const chosen = [...schedules.values()].filter((s) => name === undefined || s.name === name);
      const rows: NextRow[] = [];
      const text: string[] = [];
      for (const s of chosen) {
        const found = transitionsBetween(s, from, until);
        const span = `${localLabel(s.timezone, from)} to ${localLabel(s.timezone, until)}`;
        text.push(
          found.length === 0
            ? `${s.name} (${s.timezone}): no transition from ${span}; ${evaluate(s, from).reason}`
            : `${s.name} (${s.timezone}), ${span}:`,
        );
        for (const t of found) {
          rows.push({
            schedule: s.name,
            timezone: s.timezone,
            at: t.at.toISOString(),
            local: localIso(s.timezone, t.at),
            from: t.from,
            to: t.to,
            reason: t.why,
          });
          text.push(`  ${localLabel(s.timezone, t.at)}  ${VERB[t.to].padEnd(7)}  ${t.to} (${t.why})`);
        }
      }
      io.out(o.json || options.json() ? JSON.stringify(rows, null, 2) : text.join('\n'));
      options.done(EXIT.ok);
    });
  return cmd;
};
