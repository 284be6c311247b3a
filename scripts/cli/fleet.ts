/**
 * `nightshift fleet run|status|redrive|halt`: the commands and their options. Their code (fleet-commands.ts,
 * the SDK clients of Step Functions, Scheduler, Organizations) is imported when one of them runs, so
 * `nightshift --help` and every other command never load it.
 */
import type { Command } from 'commander';
import type { FleetGlobals } from './fleet-commands.ts';
import type { Io } from './program.ts';

const collect = (value: string, previous: string[] = []) => [...previous, value];
const commands = () => import('./fleet-commands.ts');

/** The functions a fleet runs (shared/fleet/target.ts FLEET_FUNCTIONS), for the help text alone. */
const FUNCTIONS =
  'ecs-scheduler, rds-scheduler, rds-snapshot-copy, snapshot-tags, instance-rotation, ssm-restart';

export const fleetCommands = (
  fleet: Command,
  io: Io,
  withCommon: (cmd: Command) => Command,
  globals: () => FleetGlobals,
  act: (fn: () => Promise<number>) => () => Promise<void>,
): void => {
  fleet.description(
    'run one function on every account and region of the stage (by the hub’s state machine, or --local in this process), see and redrive its runs, halt it',
  );

  withCommon(fleet.command('run'))
    .description(
      'run a single-account event of <function> on every target of the stage (its accounts × its regions) and follow it',
    )
    .argument('<function>', FUNCTIONS)
    .option('--input <json>', 'the single-account event, as JSON (without target or fleet)')
    .option(
      '--accounts <ids>',
      "comma list of account ids, in place of the stage's fleetAccounts and fleetOrganizationUnits",
    )
    .option('--regions <regions>', "comma list of regions, in place of the stage's fleetRegions")
    .option(
      '--param <name=value>',
      'a stage param for this run only (repeatable), e.g. fleetMaxConcurrency=10; with --local any fleet param',
      collect,
    )
    .action(function (this: Command, fn: string) {
      const o = this.opts<{ input?: string; accounts?: string; regions?: string; param?: string[] }>();
      return act(async () => (await commands()).fleetRun(io, globals(), fn, o))();
    });

  withCommon(fleet.command('status'))
    .description(
      'the targets of a fleet run (the latest without <run>), failures first: succeeded, failed, refused, pending (still running)',
    )
    .argument('[run]', 'run id (the execution name)')
    .option('--function <name>', 'the latest run of this function')
    .action(function (this: Command, run: string | undefined) {
      const o = this.opts<{ function?: string }>();
      return act(async () => (await commands()).fleetStatus(io, globals(), run, o))();
    });

  withCommon(fleet.command('redrive'))
    .description(
      'run the failed targets of a fleet run again (and those without a result), with the same event and dry run, as a new run',
    )
    .argument('<run>', 'run id (the execution name)')
    .option('--param <name=value>', 'a stage param for this run only (repeatable), as for fleet run', collect)
    .action(function (this: Command, run: string) {
      const o = this.opts<{ param?: string[] }>();
      return act(async () => (await commands()).fleetRedrive(io, globals(), run, o))();
    });

  withCommon(fleet.command('halt'))
    .description(
      'the fleet-wide kill switch: reserved concurrency 0 on every function of the stage, its fleet schedules disabled, its running fleet executions stopped',
    )
    .action(act(async () => (await commands()).fleetHalt(io, globals())));
};
