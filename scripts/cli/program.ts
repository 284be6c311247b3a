/**
 * The nightshift commands and their options. This module loads only commander and the option texts: what
 * a command needs to run (the SDK clients, the handlers, the payload schemas, the report tables, the
 * serverless.yml and schedules built into the bin) is imported by its action when it runs, so
 * `nightshift --help`, every command's --help and a usage error load none of it.
 */
import { Command, CommanderError, Option } from 'commander';
import { InputError } from '#shared/errors.ts';
import { EXIT } from './exit-codes.ts';
import { fleetCommands } from './fleet.ts';
import type { FunctionName } from './functions.ts';
import { compact, useRegion, type Globals } from './globals.ts';
import { FunctionFailedError } from './invoke-errors.ts';
import type { runFunction as RunFunction } from './run-function.ts';
import { scheduleCommands } from './schedule.ts';

/** Everything the CLI touches outside itself, so tests can drive it like a person or a pipeline. */
export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  /** Attached to a terminal: prompts and progress are allowed. */
  interactive: boolean;
  confirm: (question: string) => Promise<boolean>;
  /** Shows progress during a long wait; returns a function that ends it (and may change its text). */
  progress: (text: string) => Progress;
  width: number;
  env: NodeJS.ProcessEnv;
}

/** Ends a progress display; `update`, where the display has one, replaces its text (a progress bar). */
export type Progress = (() => void) & { update?: (text: string) => void };

export { EXIT };

/** run-function.ts, imported when a function command runs (see the top of this file). */
const runFunction = async (...args: Parameters<typeof RunFunction>) =>
  (await import('./run-function.ts')).runFunction(...args);

const COMMON = { stage: 1, serviceName: 1, local: 1, json: 1, dryRun: 1, yes: 1, region: 1 };

const collect = (value: string, previous: string[] = []) => [...previous, value];
const keyValues = (pairs: string[] | undefined, flag: string): Record<string, string> | undefined => {
  if (!pairs) return undefined;
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new InputError(`${flag} expects key=value, got "${pair}"`, flag);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
};
/** Options every command takes, before or after its name; `--region` is left out where it means something else. */
const withCommon = (cmd: Command, options: { region: boolean } = { region: true }) => {
  cmd
    .option('--stage <stage>', 'stage of the deployed functions (default: dev)')
    .option(
      '--service-name <name>',
      'serverless service the functions were deployed under (default: nightshift)',
    )
    .option('--local', 'run the handler in this process with your credentials')
    .option('--json', 'print the report as JSON')
    .option('--dry-run', 'change nothing; report what would change')
    .option('-y, --yes', 'do not ask for confirmation (required when not attached to a terminal)');
  if (options.region) cmd.option('--region <region>', 'AWS region of the deployed functions');
  return cmd;
};

export const buildProgram = (io: Io, result: { code: number }) => {
  const program = new Command('nightshift')
    .description('Drive nightshift: see what it would do (--dry-run), do it, and see what it holds (status).')
    .option('--stage <stage>', 'stage of the deployed functions (default: $NIGHTSHIFT_STAGE or dev)')
    .option('--region <region>', 'AWS region of the deployed functions (default: your AWS configuration)')
    .option(
      '--service-name <name>',
      'serverless service the functions were deployed under (default: nightshift)',
    )
    .option(
      '--local',
      'run the handler in this process with your credentials instead of invoking the deployed function',
    )
    .option('--json', 'print the report as JSON')
    .option('--dry-run', 'change nothing; report what would change')
    .option('-y, --yes', 'do not ask for confirmation (required when not attached to a terminal)')
    .enablePositionalOptions()
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) });

  /** Program options, overridden by the same options given after the command name. */
  let command: Command | undefined;
  program.hook('preAction', (_root, actionCommand) => {
    command = actionCommand;
  });
  const globals = (): Globals => {
    const own = Object.fromEntries(
      Object.entries(command?.opts() ?? {}).filter(
        // copy-snapshot's own --region names target regions, not where the function runs.
        ([k, v]) =>
          v !== undefined && k in COMMON && !(k === 'region' && command?.name() === 'copy-snapshot'),
      ),
    );
    const merged = { ...program.opts<Globals>(), ...own } as Globals;
    return {
      ...merged,
      stage: merged.stage ?? io.env.NIGHTSHIFT_STAGE ?? 'dev',
      serviceName: merged.serviceName ?? 'nightshift',
    };
  };
  const act = (fn: () => Promise<number>) => async () => {
    result.code = await fn();
  };

  for (const action of ['stop', 'start'] as const) {
    withCommon(program.command(action))
      .description(
        `${action} ECS services, their autoscaling and capacity (ecs-scheduler), or with --db / --db-cluster ` +
          `RDS DB instances and Aurora clusters (rds-scheduler)`,
      )
      .option('--cluster <name>', 'ECS cluster name or ARN (repeatable)', collect)
      .option('--service <name>', 'only these services (repeatable)', collect)
      .option(
        '--group <name>',
        'Auto Scaling group that is not an ECS capacity provider (repeatable): parked at 0/0/0 and restored exactly (ecs-scheduler)',
        collect,
      )
      .option(
        '--tag <key=value>',
        'only services whose tags (merged with their cluster tags) match, or with --db / --db-cluster only ' +
          'databases whose tags match (repeatable); --tag alone acts on ECS',
        collect,
      )
      .option('--db <id>', 'RDS DB instance identifier or ARN (repeatable): runs rds-scheduler', collect)
      .option(
        '--db-cluster <id>',
        'Aurora DB cluster identifier or ARN (repeatable): runs rds-scheduler',
        collect,
      )
      .option('--force', 'do not wait for the environment order (a database stops before its services rest)')
      .action(function (this: Command) {
        const o = this.opts<{
          cluster?: string[];
          service?: string[];
          group?: string[];
          tag?: string[];
          db?: string[];
          dbCluster?: string[];
          force?: boolean;
        }>();
        return act(async () => {
          const tags = keyValues(o.tag, '--tag');
          if (o.db === undefined && o.dbCluster === undefined)
            return runFunction(
              io,
              globals(),
              'ecs-scheduler',
              compact({
                action,
                clusters: o.cluster,
                services: o.service,
                groups: o.group,
                tags,
                force: o.force,
              }),
              { mutates: true },
            );
          const ecs = (
            [
              ['--cluster', o.cluster],
              ['--service', o.service],
              ['--group', o.group],
            ] as const
          ).find(([, v]) => v !== undefined)?.[0];
          if (ecs)
            throw new InputError(
              '--db and --db-cluster act on databases (rds-scheduler), --cluster, --service and --group on ' +
                'ECS and Auto Scaling (ecs-scheduler): run them as two commands',
              ecs,
            );
          return runFunction(
            io,
            globals(),
            'rds-scheduler',
            compact({ action, instances: o.db, clusters: o.dbCluster, tags, force: o.force }),
            { mutates: true },
          );
        })();
      });
  }

  for (const action of ['wake', 'sleep'] as const) {
    const state = action === 'wake' ? 'running' : 'stopped';
    withCommon(program.command(action))
      .description(
        `keep ECS services (ecs-scheduler), or with --db / --db-cluster RDS DB instances and Aurora clusters ` +
          `(rds-scheduler), ${state} against their schedule for a while, recorded as the tag nightshift:override ` +
          '(who, why, until), then reconcile them at once',
      )
      .option(
        '--cluster <name>',
        'ECS cluster name or ARN (repeatable); a cluster named whole carries the override',
        collect,
      )
      .option('--service <name>', 'only these services (repeatable): each carries its own override', collect)
      .option(
        '--group <name>',
        'Auto Scaling group that is not an ECS capacity provider (repeatable): the group carries the override',
        collect,
      )
      .option(
        '--tag <key=value>',
        'clusters or services whose tags match, or with --db / --db-cluster only databases whose tags match ' +
          '(repeatable); --tag alone acts on ECS',
        collect,
      )
      .option('--db <id>', 'RDS DB instance identifier or ARN (repeatable): runs rds-scheduler', collect)
      .option(
        '--db-cluster <id>',
        'Aurora DB cluster identifier or ARN (repeatable; the cluster carries the override): runs rds-scheduler',
        collect,
      )
      .option(
        '--for <duration>',
        "how long, e.g. 30m, 3h (at most the stage's overrideMaxHours, 24 h by default)",
      )
      .option(
        '--until <time>',
        "until this time: 22:00 in the zone of the resource's schedule, or a full time (2026-11-29T22:00:00+01:00)",
      )
      .option('--reason <text>', 'why, recorded with the override (cut and cleaned to fit a tag)')
      .option('--cancel', 'end the override now: the resources return to their schedule at once')
      .option(
        '--force',
        'do not wait for the environment order (start or stop it whatever the other tiers do)',
      )
      .action(function (this: Command) {
        const o = this.opts<{
          cluster?: string[];
          service?: string[];
          group?: string[];
          tag?: string[];
          db?: string[];
          dbCluster?: string[];
          for?: string;
          until?: string;
          reason?: string;
          cancel?: boolean;
          force?: boolean;
        }>();
        return act(async () => {
          const g = globals();
          const databases = o.db !== undefined || o.dbCluster !== undefined;
          const ecs = (
            [
              ['--cluster', o.cluster],
              ['--service', o.service],
              ['--group', o.group],
            ] as const
          ).find(([, v]) => v !== undefined)?.[0];
          if (databases && ecs)
            throw new InputError(
              '--db and --db-cluster act on databases (rds-scheduler), --cluster, --service and --group on ' +
                'ECS and Auto Scaling (ecs-scheduler): run them as two commands',
              ecs,
            );
          const fn: FunctionName = databases ? 'rds-scheduler' : 'ecs-scheduler';
          const scope = databases
            ? { instances: o.db, clusters: o.dbCluster }
            : { clusters: o.cluster, services: o.service, groups: o.group };
          const payload = compact({
            action,
            ...scope,
            tags: keyValues(o.tag, '--tag'),
            for: o.for,
            until: o.until,
            reason: o.reason,
            cancel: o.cancel,
            force: o.force,
            by: 'you',
          });
          // Refuse a bad request before asking AWS who is asking.
          (await import('./functions.ts')).checkPayload(fn, payload);
          if (g.local && g.region) useRegion(io, g.region);
          const { callerIdentity } = await import('./identity.ts');
          let by: string;
          try {
            by = await callerIdentity();
          } catch (error) {
            io.err(
              `could not tell who you are (STS GetCallerIdentity: ${(error as Error).message}); an override records who asked for it, so nothing was changed.`,
            );
            return EXIT.failed;
          }
          return runFunction(io, g, fn, { ...payload, by }, { mutates: true });
        })();
      });
  }

  withCommon(program.command('copy-snapshot'), { region: false })
    .description('copy an RDS snapshot to other regions (rds-snapshot-copy), e.g. before a risky change')
    .argument('<arn>', 'snapshot or cluster snapshot ARN')
    .option(
      '--region <region>',
      'target region (repeatable; default: the function’s TARGET_REGIONS)',
      collect,
    )
    .action(function (this: Command, arn: string) {
      const o = this.opts<{ region?: string[] }>();
      // The function runs where the snapshot is: the ARN names the source region.
      const sourceRegion = globals().region ?? arn.split(':')[3];
      return act(() =>
        runFunction(
          io,
          globals(),
          'rds-snapshot-copy',
          compact({ action: 'copy', snapshot: arn, regions: o.region }),
          {
            mutates: true,
            ...(sourceRegion && { region: sourceRegion }),
          },
        ),
      )();
    });

  withCommon(program.command('tag-snapshots'))
    .description('copy database, cluster and volume tags onto their snapshots (snapshot-tags)')
    .option('--sweep', 'backfill every RDS and EBS snapshot in the region (the only mode, and the default)')
    .action(act(() => runFunction(io, globals(), 'snapshot-tags', { action: 'sweep' }, { mutates: true })));

  withCommon(program.command('rotate'))
    .description('advance instance rotation in opted-in Auto Scaling groups by one step (instance-rotation)')
    .option('--max-age <duration>', 'instances older than this are due, e.g. 7d, 12h, 0h')
    .option('--group <name>', 'only these groups (repeatable)', collect)
    .action(function (this: Command) {
      const o = this.opts<{ maxAge?: string; group?: string[] }>();
      return act(() =>
        runFunction(
          io,
          globals(),
          'instance-rotation',
          compact({ action: 'rotate', maxAge: o.maxAge, groups: o.group }),
          {
            mutates: true,
          },
        ),
      )();
    });

  withCommon(program.command('restart'))
    .description('restart a container or systemd unit through SSM, or redeploy an ECS service (ssm-restart)')
    .option('--instance <id...>', 'instance ids (several after one flag, or the flag repeated)')
    .option('--tag <key=value>', 'instances with these tags (repeatable)', collect)
    .addOption(
      new Option('--container <name>', 'docker container to restart').conflicts(['unit', 'ecsService']),
    )
    .addOption(new Option('--unit <name>', 'systemd unit to restart').conflicts(['ecsService']))
    .addOption(
      new Option('--ecs-service <cluster/service>', 'ECS service to redeploy').conflicts(['instance', 'tag']),
    )
    .action(function (this: Command) {
      const o = this.opts<{
        instance?: string[];
        tag?: string[];
        container?: string;
        unit?: string;
        ecsService?: string;
      }>();
      return act(async () => {
        let payload: Record<string, unknown>;
        if (o.ecsService !== undefined) {
          const [cluster, service, ...rest] = o.ecsService.split('/');
          if (!cluster || !service || rest.length > 0) {
            throw new InputError(
              `--ecs-service expects cluster/service, got "${o.ecsService}"`,
              '--ecs-service',
            );
          }
          payload = { action: 'restart', ecsService: { cluster, service } };
        } else {
          if ((o.instance === undefined) === (o.tag === undefined)) {
            throw new InputError('give --instance or --tag (one of them), or --ecs-service', '--instance');
          }
          const targets = o.instance ? { instanceIds: o.instance } : { tags: keyValues(o.tag, '--tag') };
          payload = compact({ action: 'restart', targets, container: o.container, unit: o.unit });
        }
        return runFunction(io, globals(), 'ssm-restart', payload, { mutates: true });
      })();
    });

  scheduleCommands(program.command('schedule'), io, {
    json: () => program.opts<Globals>().json === true,
    now: () => new Date(),
    done: (code) => {
      result.code = code;
    },
  });

  fleetCommands(program.command('fleet'), io, withCommon, globals, act);

  withCommon(program.command('status'))
    .description(
      'what nightshift holds now: scheduled services and databases (desired and actual state, overrides, next transition), parked services, groups and databases, rotations, recent restarts, copies in flight, leases',
    )
    .option(
      '--copy-region <region>',
      "target region of snapshot copies (repeatable; default: the stage's TARGET_REGIONS in serverless.yml)",
      collect,
    )
    .action(function (this: Command) {
      const o = this.opts<{ copyRegion?: string[] }>();
      return act(async () => {
        const g = globals();
        const [{ deployedConfiguration }, { leaseTableName }, { readStatus, renderStatus }] =
          await Promise.all([import('./local.ts'), import('#shared/lease.ts'), import('./status.ts')]);
        const list = (text: string | undefined) =>
          (text ?? '')
            .split(',')
            .map((r) => r.trim())
            .filter(Boolean);
        const { config } = await deployedConfiguration('rds-snapshot-copy', g.stage, g.serviceName);
        const stageRegions = list(config.env.TARGET_REGIONS);
        const regions =
          o.copyRegion ?? (stageRegions.length > 0 ? stageRegions : list(io.env.TARGET_REGIONS));
        if (g.region) useRegion(io, g.region);
        const done = io.interactive ? io.progress('reading what nightshift holds…') : () => undefined;
        // The schedules the functions were built with: this CLI's build, or infra/schedules.yml from source.
        const schedules = await import('#functions/ecs-scheduler/schedules.ts')
          .then((m) => m.bundledSchedules())
          .catch((error: Error) => error);
        const status = await readStatus(
          {
            copyRegions: regions,
            leaseTable: leaseTableName(g.stage, g.serviceName),
            stage: g.stage,
            ...(!(schedules instanceof Error) && { schedules }),
          },
          new Date(),
        ).finally(done);
        if (schedules instanceof Error)
          status.notes.push(
            `schedules not shown: infra/schedules.yml could not be read (${schedules.message})`,
          );
        io.out(g.json ? JSON.stringify(status, null, 2) : renderStatus(status));
        return status.notes.some((n) => n.startsWith('could not read')) ? EXIT.failed : EXIT.ok;
      })();
    });

  return program;
};

/**
 * Parses and runs one command line; never throws, returns the exit code. With `--json`, stdout carries
 * exactly one document whatever happens: a command that printed nothing there because it was refused
 * or failed (bad input, no --yes without a terminal, a --local run refused, an unexpected error) prints
 * `{ "error": { "type", "message", "exitCode" } }`, the message being what it said on stderr.
 */
export const runCli = async (argv: string[], io: Io): Promise<number> => {
  let printed = false;
  const said: string[] = [];
  const watched: Io = {
    ...io,
    out: (text) => {
      printed = true;
      io.out(text);
    },
    err: (text) => {
      said.push(text);
      io.err(text);
    },
  };
  const code = await runCommand(argv, watched);
  const json = argv.includes('--json') && !argv.slice(0, argv.indexOf('--json')).includes('--');
  if (json && !printed && code !== EXIT.ok) {
    const type = code === EXIT.usage ? 'Refused' : code === EXIT.notFinished ? 'NotFinished' : 'Failed';
    // The refusal or failure is the last thing said; lines before it describe the configuration.
    const message = said.filter((line) => !line.startsWith('--local: ')).join('\n') || said.join('\n');
    io.out(JSON.stringify({ error: { type, message, exitCode: code } }, null, 2));
  }
  return code;
};

const runCommand = async (argv: string[], io: Io): Promise<number> => {
  const result = { code: EXIT.ok as number };
  const program = buildProgram(io, result);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return result.code;
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (error instanceof InputError) {
      io.err(error.message);
      return EXIT.usage;
    }
    if (error instanceof FunctionFailedError) {
      io.err(error.message);
      return EXIT.failed;
    }
    // Ctrl-C at the confirmation prompt (@inquirer/confirm): only the plan ran, and nothing changed.
    if ((error as Error).name === 'ExitPromptError') {
      io.err('nothing changed.');
      return EXIT.interrupted;
    }
    io.err(`nightshift: ${(error as Error).name}: ${(error as Error).message}`);
    return EXIT.failed;
  }
};
