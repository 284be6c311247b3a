/**
 * `nightshift fleet run|status|redrive|halt` (issue 11): one single-account event run on every
 * (account, region) target of the stage, by the hub's state machine `nightshift-<stage>-<function>-fleet`
 * or, with `--local`, fanned out in this process (shared/fleet/local.ts) over the same targets and the
 * same handler; per-target results in the hub's table (shared/fleet/results.ts) either way. Loaded only
 * when a fleet command runs (fleet.ts registers them), so `nightshift --help` never parses it.
 */
import {
  DescribeExecutionCommand,
  StartExecutionCommand,
  paginateListExecutions,
  StopExecutionCommand,
  type DescribeExecutionCommandOutput,
} from '@aws-sdk/client-sfn';
import { PutFunctionConcurrencyCommand } from '@aws-sdk/client-lambda';
import {
  GetScheduleCommand,
  paginateListSchedules,
  SchedulerClient,
  UpdateScheduleCommand,
} from '@aws-sdk/client-scheduler';
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import Table from 'cli-table3';
import { dynamoDbClient } from '#shared/aws/dynamodb.ts';
import { lambdaClient } from '#shared/aws/lambda.ts';
import { organizationsClient } from '#shared/aws/organizations.ts';
import { sdkConfig } from '#shared/aws/config.ts';
import { sfnClient } from '#shared/aws/sfn.ts';
import { stsClient } from '#shared/aws/sts.ts';
import { errorMessage, InputError } from '#shared/errors.ts';
import { newRunId, runFleetLocal } from '#shared/fleet/local.ts';
import {
  failuresFirst,
  fleetDocument,
  latestRun,
  readRun,
  readTargets,
  type FleetDocument,
  type FleetRun,
} from '#shared/fleet/results.ts';
import {
  FLEET_FUNCTIONS,
  partitionOf,
  RUN_ID,
  type FleetFunction,
  type Target,
} from '#shared/fleet/target.ts';
import { fleetTargets, parseFleetScope, type FleetScope } from '#shared/fleet/targets.ts';
import { leaseTableName } from '#shared/lease.ts';
import type { Summary } from '#shared/report.ts';
import { checkPayload } from './functions.ts';
import { deployedName, deployedSwitchedOff, invoke } from './invoke.ts';
import { EXIT } from './output.ts';
import { prepareLocal } from './prepare-local.ts';
import type { Io } from './program.ts';
import { readServerless } from './serverless-source.ts';
import { stageParams } from './stage-config.ts';

export interface FleetGlobals {
  stage: string;
  serviceName: string;
  region?: string;
  local?: boolean;
  json?: boolean;
  dryRun?: boolean;
  yes?: boolean;
}

/** Every function a stage deploys, the kill switch's scope: the six automations and the hub's `fleet`. */
export const STAGE_FUNCTIONS = [...FLEET_FUNCTIONS, 'fleet'] as const;

/** The stage params of a fleet run, and what they may hold. Public contract (serverless.yml params). */
export const FLEET_PARAMS = [
  'fleetAccounts',
  'fleetRegions',
  'fleetOrganizationUnits',
  'fleetMaxConcurrency',
  'fleetToleratedFailurePercentage',
  'allowedAccounts',
  'protectedAccountPatterns',
  'spokeExternalId',
] as const;

/** A Distributed Map runs at most 10,000 child executions in parallel (Step Functions quotas). */
const MAX_CONCURRENCY = 10_000;
const DEFAULT_MAX_CONCURRENCY = 50;
/**
 * Each iteration records its own outcome and catches its own failure, so the Map rarely fails as a whole;
 * without the param none is tolerated less: one target failing never stops the others.
 */
const DEFAULT_TOLERATED_FAILURE_PERCENTAGE = 100;

const POLL_MS = 5_000;

export const stateMachineName = (g: FleetGlobals, fn: string) => `${g.serviceName}-${g.stage}-${fn}-fleet`;
export const scheduleGroupName = (g: FleetGlobals) => `${g.serviceName}-${g.stage}-fleet`;
const functionName = (g: FleetGlobals, fn: string) => `${g.serviceName}-${g.stage}-${fn}`;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `--param name=value` pairs: each a param of the stage or of the fleet. */
const parseOverrides = (pairs: readonly string[] | undefined, known: Record<string, string>) => {
  const out: Record<string, string> = {};
  for (const pair of pairs ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new InputError(`--param expects name=value, got "${pair}"`, '--param');
    const name = pair.slice(0, eq);
    if (!(name in known) && !(FLEET_PARAMS as readonly string[]).includes(name))
      throw new InputError(`--param: ${name} is not a param of the stage (serverless.yml params)`, '--param');
    out[name] = pair.slice(eq + 1);
  }
  return out;
};

const integerParam = (
  params: Record<string, string>,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number => {
  const text = params[name]?.trim();
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new InputError(`${name}: "${text}" is not a whole number from ${min} to ${max}`, name);
  return n;
};

const fleetNumbers = (params: Record<string, string>) => ({
  maxConcurrency: integerParam(params, 'fleetMaxConcurrency', DEFAULT_MAX_CONCURRENCY, 1, MAX_CONCURRENCY),
  toleratedFailurePercentage: integerParam(
    params,
    'fleetToleratedFailurePercentage',
    DEFAULT_TOLERATED_FAILURE_PERCENTAGE,
    0,
    100,
  ),
});

const fleetFunction = (name: string): FleetFunction => {
  if (!(FLEET_FUNCTIONS as readonly string[]).includes(name))
    throw new InputError(
      `function: "${name}" is not a function a fleet runs (one of ${FLEET_FUNCTIONS.join(', ')})`,
      'function',
    );
  return name as FleetFunction;
};

/**
 * The single-account event of `--input`, refused as the function would refuse it (checkPayload), and
 * refused when it already names a target or a fleet run: the fleet sets both on every target itself.
 */
export const fleetEvent = (fn: FleetFunction, input: string | undefined, dryRun: boolean) => {
  if (input === undefined) throw new InputError('--input: give the event to run, as JSON', '--input');
  let event: unknown;
  try {
    event = JSON.parse(input);
  } catch (error) {
    throw new InputError(`--input is not JSON: ${errorMessage(error)}`, '--input');
  }
  if (typeof event !== 'object' || event === null || Array.isArray(event))
    throw new InputError('--input: expected a JSON object, the event of a single-account run', '--input');
  for (const field of ['target', 'fleet'])
    if (field in event)
      throw new InputError(
        `field "${field}": a fleet run sets it on every target itself; give the single-account event without it`,
        field,
      );
  const out = { ...(event as Record<string, unknown>), ...(dryRun && { dryRun: true }) };
  checkPayload(fn, out);
  return out;
};

/** `--accounts` / `--regions` in place of the stage's, checked as the params are. */
const commandScope = (
  params: Record<string, string>,
  o: { accounts?: string | undefined; regions?: string | undefined },
): FleetScope =>
  parseFleetScope(
    {
      accounts: o.accounts ?? params.fleetAccounts,
      regions: o.regions ?? params.fleetRegions,
      // --accounts replaces the stage's accounts, the organizational units' included.
      organizationUnits: o.accounts === undefined ? params.fleetOrganizationUnits : '',
    },
    {
      accounts: o.accounts === undefined ? 'fleetAccounts' : '--accounts',
      regions: o.regions === undefined ? 'fleetRegions' : '--regions',
      organizationUnits: 'fleetOrganizationUnits',
    },
  );

/** The table's lines for a person: what will run where. */
const describeLaunch = (
  fn: string,
  g: FleetGlobals,
  event: Record<string, unknown>,
  where: { targets: readonly Target[] } | { scope: FleetScope },
  redriveOf?: string,
): string[] => {
  const lines = [
    `fleet ${redriveOf ? `redrive of ${redriveOf}` : 'run'}: ${fn} in stage ${g.stage}${g.local ? ' (local, in this process)' : ''}`,
    `event: ${JSON.stringify(event)}`,
  ];
  if ('targets' in where) {
    const accounts = [...new Set(where.targets.map((t) => t.account))];
    const regions = [...new Set(where.targets.map((t) => t.region))];
    lines.push(
      `targets: ${where.targets.length}`,
      `accounts (${accounts.length}): ${accounts.join(', ')}`,
      `regions (${regions.length}): ${regions.join(', ')}`,
    );
  } else {
    const { accounts, regions, organizationUnits } = where.scope;
    if (accounts.length + organizationUnits.length === 0 || regions.length === 0)
      return [
        ...lines,
        'targets: as the hub lists them (its fleetAccounts and fleetOrganizationUnits × its fleetRegions, as deployed)',
        ...(accounts.length > 0 ? [`accounts (${accounts.length}): ${accounts.join(', ')}`] : []),
        ...(regions.length > 0 ? [`regions (${regions.length}): ${regions.join(', ')}`] : []),
      ];
    const units =
      organizationUnits.length > 0 ? ` and every account under ${organizationUnits.join(', ')}` : '';
    lines.push(
      `targets: ${accounts.length * regions.length}${units ? '+' : ''} (listed by the state machine when it starts)`,
      `accounts (${accounts.length}): ${accounts.join(', ') || 'none listed'}${units}`,
      `regions (${regions.length}): ${regions.join(', ')}`,
    );
  }
  return lines;
};

/** A progress bar for the person at a terminal, on stderr (stdout keeps the one --json document). */
const progressBar = (io: Io, label: string) => {
  if (!io.interactive) return { tick: (_done: number, _total: number) => undefined, stop: () => undefined };
  const progress = io.progress(`${label}: starting…`);
  return {
    tick: (done: number, total: number) => {
      const width = 20;
      const filled = total > 0 ? Math.round((done / total) * width) : 0;
      progress.update?.(
        `${label}: [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${done}/${total} targets`,
      );
    },
    stop: () => progress(),
  };
};

const summaryText = (summary: Summary | null): string =>
  summary
    ? Object.entries(summary)
        .filter(([, n]) => n > 0)
        .map(([outcome, n]) => `${n} ${outcome}`)
        .join(', ') || 'nothing to do'
    : '';

const counts = (doc: FleetDocument) => {
  const by = { failed: 0, pending: 0, refused: 0, succeeded: 0 };
  for (const t of doc.targets) by[t.status] += 1;
  return by;
};

/** The table, failures first, and a one-line summary. */
export const renderFleet = (doc: FleetDocument, width = 120): string => {
  const by = counts(doc);
  const line =
    `${doc.function} fleet run ${doc.run}${doc.dryRun ? ' (dry run)' : ''}: ${doc.targets.length} targets: ` +
    `${by.failed} failed, ${by.refused} refused, ${by.succeeded} succeeded` +
    (by.pending > 0 ? `, ${by.pending} pending (still running)` : '') +
    (doc.wallSeconds === null ? '' : `; ${doc.wallSeconds} s`);
  if (doc.targets.length === 0) return `no targets\n${line}`;
  const reasonWidth = Math.max(30, width - 14 - 16 - 11 - 24 - 6);
  const table = new Table({
    head: ['ACCOUNT', 'REGION', 'STATUS', 'SUMMARY', 'REASON'],
    colWidths: [14, 16, 11, 24, reasonWidth],
    wordWrap: true,
    wrapOnWordBoundary: false,
    style: { head: [], border: [] },
  });
  for (const t of failuresFirst(doc.targets))
    table.push([t.account, t.region, t.status, summaryText(t.summary), t.reason]);
  return `${table.toString()}\n${line}`;
};

/** 1 when any target failed (refused is not failed), else 0: a run still going is not a failure. */
const fleetCode = (doc: FleetDocument) =>
  doc.targets.some((t) => t.status === 'failed') ? EXIT.failed : EXIT.ok;

const show = (io: Io, g: FleetGlobals, doc: FleetDocument): number => {
  io.out(g.json ? JSON.stringify(doc, null, 2) : renderFleet(doc, io.width));
  const failed = counts(doc).failed;
  if (failed > 0)
    io.err(
      `${failed} target(s) failed (their rows say why). Fix what they say, then re-run only those: ` +
        `nightshift fleet redrive ${doc.run} --stage ${g.stage}${g.local ? ' --local' : ''}`,
    );
  return fleetCode(doc);
};

interface HubAddress {
  region: string;
  account: string;
  partition: string;
}

/** The hub's region (the operator's, or --region) and account (STS GetCallerIdentity, which needs no permission). */
const hubAddress = async (): Promise<HubAddress> => {
  const region = await sfnClient().config.region();
  const who = await stsClient().send(new GetCallerIdentityCommand({}));
  if (!who.Account) throw new Error('STS GetCallerIdentity returned no account');
  return { region, account: who.Account, partition: partitionOf(region) };
};

const stateMachineArn = (hub: HubAddress, name: string) =>
  `arn:${hub.partition}:states:${hub.region}:${hub.account}:stateMachine:${name}`;
const executionArn = (hub: HubAddress, name: string, run: string) =>
  `arn:${hub.partition}:states:${hub.region}:${hub.account}:execution:${name}:${run}`;

const useRegion = (io: Io, g: FleetGlobals) => {
  if (g.region) {
    io.env.AWS_REGION = g.region;
    io.env.AWS_DEFAULT_REGION = g.region;
  }
};

interface Launch {
  fn: FleetFunction;
  event: Record<string, unknown>;
  dryRun: boolean;
  /** The targets of a redrive; a run lists the stage's (or --accounts/--regions) itself. */
  targets?: Target[];
  /** --accounts / --regions, as given. */
  accounts?: string | undefined;
  regions?: string | undefined;
  redriveOf?: string;
  overrides: Record<string, string>;
}

/** Asks before a change, or refuses when nobody can be asked; undefined: go ahead. */
const confirmLaunch = async (
  io: Io,
  g: FleetGlobals,
  lines: string[],
  n: string,
): Promise<number | undefined> => {
  for (const line of lines) io.err(line);
  const what = n === 'all its' ? 'every target the hub lists' : `${n} target(s)`;
  if (!(await io.confirm(`Run it on ${what} in stage ${g.stage}?`))) {
    io.err('nothing was run.');
    return EXIT.ok;
  }
  return undefined;
};

const refuseWithoutTerminal = (io: Io, what: string) => {
  io.err(
    `refusing to ${what} without --yes: not attached to a terminal, so nobody can confirm. Add --dry-run to only plan.`,
  );
  return EXIT.usage;
};

/** A run or a redrive in this process: the single-function --local guards, then the fan-out. */
const launchLocal = async (io: Io, g: FleetGlobals, l: Launch): Promise<number> => {
  // The hub's table and the in-process handlers' own clients are in the region asked for.
  useRegion(io, g);
  const ready = await prepareLocal(
    io,
    g,
    { service: g.serviceName, stage: g.stage, local: true, ...(g.region && { region: g.region }) },
    l.fn,
    { mutates: !l.dryRun, fleet: { overrides: l.overrides } },
  );
  if ('code' in ready) return ready.code;
  // The stage's DRY_RUN would make a change that was asked for a dry run on every target: refused, as
  // the single-function commands refuse it (exit 2). The operator's own DRY_RUN asks for a dry run.
  if (ready.dryRun && ready.dryRunBy === 'stage' && !l.dryRun) {
    io.err(
      `${l.fn} only plans in stage ${g.stage} (DRY_RUN is true for it), so a fleet run would change nothing anywhere: ` +
        'nothing was run. This is a refusal (exit 2): use --dry-run to see the plans, or change DRY_RUN for the stage.',
    );
    return EXIT.usage;
  }
  const dryRun = l.dryRun || ready.dryRun;
  const event = dryRun ? { ...l.event, dryRun: true } : l.event;
  const { maxConcurrency } = fleetNumbers(ready.params);
  const targets =
    l.targets ?? (await fleetTargets(commandScope(ready.params, l), () => organizationsClient()));
  if (!dryRun && g.yes !== true) {
    const asked = await confirmLaunch(
      io,
      g,
      describeLaunch(l.fn, g, event, { targets }, l.redriveOf),
      String(targets.length),
    );
    if (asked !== undefined) return asked;
  }
  const run = newRunId(l.fn, new Date());
  const bar = progressBar(io, `${l.fn} fleet run ${run}`);
  const where = { service: g.serviceName, stage: g.stage, local: true };
  let doc: FleetDocument;
  try {
    doc = await runFleetLocal({
      fn: l.fn,
      run,
      event,
      targets,
      maxConcurrency,
      dryRun,
      ...(l.redriveOf && { redriveOf: l.redriveOf }),
      // The function's handler in this process, as `nightshift <command> --local` runs it.
      worker: (body) =>
        invoke(where, l.fn, body, { mutates: body.dryRun !== true, timeoutMs: ready.timeoutMs }),
      dynamo: dynamoDbClient(),
      table: ready.table,
      ...(process.env.SUMMARY_TOPIC_ARN && { topicArn: process.env.SUMMARY_TOPIC_ARN }),
      onProgress: bar.tick,
    });
  } finally {
    bar.stop();
  }
  return show(io, g, doc);
};

/** A run or a redrive by the hub's state machine, followed until its execution ends. */
const launchDeployed = async (io: Io, g: FleetGlobals, l: Launch): Promise<number> => {
  const { file } = await readServerless();
  const params = stageParams(file, g.stage, l.overrides);
  const numbers = fleetNumbers(params);
  const scope = l.targets ? undefined : commandScope(params, l);
  if (!l.dryRun && g.yes !== true) {
    const lines = describeLaunch(
      l.fn,
      g,
      l.event,
      l.targets ? { targets: l.targets } : { scope: scope! },
      l.redriveOf,
    );
    const listed = scope ? scope.accounts.length * scope.regions.length : 0;
    const n = l.targets
      ? String(l.targets.length)
      : listed === 0
        ? 'all its'
        : `${listed}${scope!.organizationUnits.length > 0 ? '+' : ''}`;
    const asked = await confirmLaunch(io, g, lines, n);
    if (asked !== undefined) return asked;
  }
  useRegion(io, g);
  // Every iteration would be refused by Lambda (reserved concurrency 0): refused here, as the
  // single-function commands are (exit 2). Not knowing (no lambda:GetFunctionConcurrency) does not stop
  // a run: each iteration checks the switch itself before any change.
  const target = {
    service: g.serviceName,
    stage: g.stage,
    local: false,
    ...(g.region && { region: g.region }),
  };
  const switched = await deployedSwitchedOff(target, l.fn);
  if ('off' in switched && switched.off) {
    io.err(
      `refusing to start a fleet run of ${l.fn}: ${deployedName(target, l.fn)} is switched off (reserved concurrency 0: ` +
        'the kill switch, e.g. nightshift fleet halt), so every target would be refused. Nothing was started.',
    );
    return EXIT.usage;
  }
  const hub = await hubAddress();
  const name = stateMachineName(g, l.fn);
  const run = newRunId(l.fn, new Date());
  const input = {
    event: l.event,
    ...(l.accounts !== undefined && { accounts: scope!.accounts }),
    ...(l.regions !== undefined && { regions: scope!.regions }),
    ...(l.targets && { targets: l.targets }),
    ...(l.redriveOf && { redriveOf: l.redriveOf }),
    ...numbers,
    dryRun: l.dryRun,
  };
  const sfn = sfnClient();
  try {
    // Retried by the SDK on a lost answer: StartExecution with the same name and input while that
    // execution runs returns it again rather than starting a second one (Step Functions API reference).
    await sfn.send(
      new StartExecutionCommand({
        stateMachineArn: stateMachineArn(hub, name),
        name: run,
        input: JSON.stringify(input),
      }),
    );
  } catch (error) {
    const hint =
      (error as Error).name === 'StateMachineDoesNotExist'
        ? ` — is stage ${g.stage} deployed with fleet: true in ${hub.region}? (--stage, --region)`
        : '';
    io.err(`could not start the fleet run: ${name}: ${errorMessage(error)}${hint}`);
    return EXIT.failed;
  }
  io.err(`started ${name} execution ${run}; following it (Ctrl-C stops following, not the run)`);
  return follow(io, g, hub, l.fn, run);
};

/** Polls the execution and the run's rows until the execution ends; then shows the run. */
const follow = async (io: Io, g: FleetGlobals, hub: HubAddress, fn: string, run: string): Promise<number> => {
  const dynamo = dynamoDbClient();
  const table = leaseTableName(g.stage, g.serviceName);
  const arn = executionArn(hub, stateMachineName(g, fn), run);
  const bar = progressBar(io, `${fn} fleet run ${run}`);
  const pollMs = Number(io.env.NIGHTSHIFT_FLEET_POLL_MS ?? process.env.NIGHTSHIFT_FLEET_POLL_MS) || POLL_MS;
  let execution: DescribeExecutionCommandOutput;
  let record: FleetRun | undefined;
  try {
    for (;;) {
      execution = await sfnClient().send(new DescribeExecutionCommand({ executionArn: arn }));
      record = await readRun(dynamo, table, run);
      if (record)
        bar.tick((await readTargets(dynamo, table, run, record.targets)).size, record.targets.length);
      if (execution.status !== 'RUNNING' && execution.status !== 'PENDING_REDRIVE') break;
      await sleep(pollMs);
    }
  } catch (error) {
    bar.stop();
    io.err(
      `could not follow fleet run ${run}: ${errorMessage(error)}. It goes on in Step Functions: ` +
        `nightshift fleet status ${run} --stage ${g.stage}`,
    );
    return EXIT.failed;
  }
  bar.stop();
  const status = execution.status ?? 'UNKNOWN';
  if (!record) {
    io.err(
      `fleet run ${run} ended ${status} before it recorded its targets` +
        (execution.error ? `: ${execution.error}: ${execution.cause ?? ''}` : ''),
    );
    return EXIT.failed;
  }
  const ended = execution.stopDate?.toISOString();
  const doc = fleetDocument(
    record.finishedAt || !ended ? record : { ...record, finishedAt: ended },
    await readTargets(dynamo, table, run, record.targets),
  );
  const code = show(io, g, doc);
  if (status !== 'SUCCEEDED') {
    io.err(
      `the execution ended ${status}` +
        (execution.error ? ` (${execution.error}${execution.cause ? `: ${execution.cause}` : ''})` : '') +
        ': targets without a result count as failed.',
    );
    return EXIT.failed;
  }
  return code;
};

export interface RunOptions {
  input?: string;
  accounts?: string;
  regions?: string;
  param?: string[];
}

/**
 * Without --local the hub lists the targets and configures the functions itself, from the params it was
 * deployed with: only the two numbers the execution's input carries can be given for one run.
 */
const refuseHubParams = (g: FleetGlobals, overrides: Record<string, string>) => {
  if (g.local) return;
  const onlyLocal = Object.keys(overrides).filter(
    (p) => p !== 'fleetMaxConcurrency' && p !== 'fleetToleratedFailurePercentage',
  );
  if (onlyLocal.length > 0)
    throw new InputError(
      `--param ${onlyLocal.join(', ')}: only with --local; the deployed hub reads its own (deploy with --param to change them)`,
      '--param',
    );
};

/** `nightshift fleet run <function> --input '<event>'`. */
export const fleetRun = async (io: Io, g: FleetGlobals, name: string, o: RunOptions): Promise<number> => {
  const fn = fleetFunction(name);
  const dryRun = g.dryRun === true;
  const event = fleetEvent(fn, o.input, dryRun);
  const { file } = await readServerless();
  const overrides = parseOverrides(o.param, stageParams(file, g.stage));
  // Everything the command was given is checked before any AWS call.
  const scope = commandScope(stageParams(file, g.stage, overrides), o);
  // The deployed hub lists its own targets from its params, which may have been given at deploy time.
  if (g.local && scope.regions.length === 0)
    throw new InputError(
      `${o.regions === undefined ? 'fleetRegions' : '--regions'}: no region to run in; list at least one`,
      o.regions === undefined ? 'fleetRegions' : '--regions',
    );
  if (g.local && scope.accounts.length === 0 && scope.organizationUnits.length === 0)
    throw new InputError(
      `${o.accounts === undefined ? 'fleetAccounts' : '--accounts'}: no account to run in; list accounts or organizational units (fleetOrganizationUnits)`,
      o.accounts === undefined ? 'fleetAccounts' : '--accounts',
    );
  fleetNumbers(stageParams(file, g.stage, overrides));
  refuseHubParams(g, overrides);
  if (!dryRun && g.yes !== true && !io.interactive)
    return refuseWithoutTerminal(io, `run ${fn} on the fleet`);
  const launch: Launch = { fn, event, dryRun, accounts: o.accounts, regions: o.regions, overrides };
  return g.local ? launchLocal(io, g, launch) : launchDeployed(io, g, launch);
};

/**
 * A run's document; a state-machine run that stopped without finishing (aborted, failed, timed out) is
 * finished at its execution's end, so its targets without a row count as failed, not pending.
 */
const settledDocument = async (
  io: Io,
  g: FleetGlobals,
  record: FleetRun,
): Promise<{ doc: FleetDocument; notes: string[] }> => {
  const dynamo = dynamoDbClient();
  const table = leaseTableName(g.stage, g.serviceName);
  const notes: string[] = [];
  let run = record;
  if (!record.finishedAt && record.runner === 'state-machine') {
    try {
      const hub = await hubAddress();
      const execution = await sfnClient().send(
        new DescribeExecutionCommand({
          executionArn: executionArn(hub, stateMachineName(g, record.function), record.run),
        }),
      );
      if (execution.status !== 'RUNNING' && execution.stopDate) {
        run = { ...record, finishedAt: execution.stopDate.toISOString() };
        notes.push(`its execution ended ${execution.status} before the run finished`);
      }
    } catch (error) {
      notes.push(`could not tell whether its execution still runs: ${errorMessage(error)}`);
    }
  }
  return { doc: fleetDocument(run, await readTargets(dynamo, table, record.run, record.targets)), notes };
};

const findRun = async (io: Io, g: FleetGlobals, run: string | undefined, fn?: string) => {
  if (run !== undefined && !RUN_ID.test(run))
    throw new InputError(`run: "${run}" is not a run id (letters, digits, - and _)`, 'run');
  if (fn !== undefined) fleetFunction(fn);
  useRegion(io, g);
  const dynamo = dynamoDbClient();
  const table = leaseTableName(g.stage, g.serviceName);
  const id = run ?? (await latestRun(dynamo, table, fn));
  if (id === undefined) {
    io.err(
      `no fleet run${fn ? ` of ${fn}` : ''} is recorded in ${table} (stage ${g.stage}): nightshift fleet run starts one`,
    );
    return undefined;
  }
  const record = await readRun(dynamo, table, id);
  if (!record) io.err(`no fleet run ${id} in ${table} (stage ${g.stage}; results are kept 35 days)`);
  return record;
};

/** `nightshift fleet status [<run>]`: the run's targets, failures first; the latest run without one. */
export const fleetStatus = async (
  io: Io,
  g: FleetGlobals,
  run: string | undefined,
  o: { function?: string },
): Promise<number> => {
  const record = await findRun(io, g, run, o.function);
  if (!record) return EXIT.usage;
  const { doc, notes } = await settledDocument(io, g, record);
  for (const note of notes) io.err(`fleet run ${record.run}: ${note}`);
  return show(io, g, doc);
};

/** `nightshift fleet redrive <run>`: a new run over the failed targets of that one, same event and dry run. */
export const fleetRedrive = async (
  io: Io,
  g: FleetGlobals,
  run: string,
  o: { param?: string[] },
): Promise<number> => {
  const { file } = await readServerless();
  const overrides = parseOverrides(o.param, stageParams(file, g.stage));
  refuseHubParams(g, overrides);
  fleetNumbers(stageParams(file, g.stage, overrides));
  const record = await findRun(io, g, run);
  if (!record) return EXIT.usage;
  const fn = fleetFunction(record.function);
  const { doc, notes } = await settledDocument(io, g, record);
  for (const note of notes) io.err(`fleet run ${record.run}: ${note}`);
  const pending = doc.targets.filter((t) => t.status === 'pending').length;
  if (pending > 0) {
    io.err(
      `refusing to redrive fleet run ${record.run}: it is still going (${pending} target(s) pending). ` +
        `Redrive it once it has finished: nightshift fleet status ${record.run}`,
    );
    return EXIT.usage;
  }
  const failed = doc.targets
    .filter((t) => t.status === 'failed')
    .map((t) => ({ account: t.account, region: t.region }));
  if (failed.length === 0) {
    if (g.json) io.out(JSON.stringify(doc, null, 2));
    io.err(`nothing failed in fleet run ${record.run}: nothing to redrive.`);
    return EXIT.ok;
  }
  // The same event and dry run; --dry-run may only make it a dry run.
  const dryRun = record.dryRun || g.dryRun === true;
  const event = dryRun ? { ...record.event, dryRun: true } : record.event;
  checkPayload(fn, event);
  if (!dryRun && g.yes !== true && !io.interactive)
    return refuseWithoutTerminal(io, `redrive ${failed.length} failed target(s) of ${record.run}`);
  const launch: Launch = { fn, event, dryRun, targets: failed, redriveOf: record.run, overrides };
  return g.local ? launchLocal(io, g, launch) : launchDeployed(io, g, launch);
};

export interface HaltStep {
  step: string;
  ok: boolean;
  detail: string;
}

/** Every item of every page, and the error that stopped the listing early, if one did. */
const listAll = async <P, T>(
  pages: AsyncIterable<P>,
  items: (page: P) => T[],
): Promise<{ items: T[]; error?: unknown }> => {
  const out: T[] = [];
  try {
    for await (const page of pages) out.push(...items(page));
    return { items: out };
  } catch (error) {
    return { items: out, error };
  }
};

const notFound = (error: unknown) =>
  ['ResourceNotFoundException', 'StateMachineDoesNotExist'].includes((error as Error).name);

/**
 * `nightshift fleet halt`: the fleet-wide kill switch. Reserved concurrency 0 on every function of the
 * stage first (nothing new runs, an iteration in flight finds its function switched off before its next
 * change); then the fleet schedules disabled (no new run starts); then every running execution of the
 * stage's fleet state machines stopped (listed last, so one a schedule started meanwhile is stopped too).
 * Each step says what it did; one failing does not stop the others.
 */
export const fleetHalt = async (io: Io, g: FleetGlobals): Promise<number> => {
  if (g.yes !== true) {
    if (!io.interactive) return refuseWithoutTerminal(io, 'engage the kill switch');
    io.err(
      `fleet halt: stage ${g.stage}: reserved concurrency 0 on ${STAGE_FUNCTIONS.map((f) => functionName(g, f)).join(', ')}; ` +
        `every schedule in ${scheduleGroupName(g)} disabled; every running execution of ${stateMachineName(g, '<function>')} stopped.`,
    );
    if (!(await io.confirm(`Engage the kill switch of stage ${g.stage}?`))) {
      io.err('nothing changed.');
      return EXIT.ok;
    }
  }
  useRegion(io, g);
  const steps: HaltStep[] = [];
  const say = (step: HaltStep) => {
    steps.push(step);
    if (!g.json) io.err(`${step.ok ? 'done' : 'FAILED'}: ${step.step}: ${step.detail}`);
  };

  let found = 0;
  for (const fn of STAGE_FUNCTIONS) {
    const name = functionName(g, fn);
    try {
      await lambdaClient().send(
        new PutFunctionConcurrencyCommand({ FunctionName: name, ReservedConcurrentExecutions: 0 }),
      );
      found += 1;
      say({ step: `switch off ${name}`, ok: true, detail: 'reserved concurrency 0' });
    } catch (error) {
      // The hub's `fleet` function exists only in a stage deployed with fleet: true.
      if (fn === 'fleet' && notFound(error))
        say({ step: `switch off ${name}`, ok: true, detail: 'not deployed (no fleet in this stage)' });
      else say({ step: `switch off ${name}`, ok: false, detail: errorMessage(error) });
    }
  }
  if (found === 0)
    say({
      step: `switch off stage ${g.stage}`,
      ok: false,
      detail: 'no function of the stage was switched off: is it deployed in this region? (--stage, --region)',
    });

  const group = scheduleGroupName(g);
  const scheduler = new SchedulerClient(sdkConfig());
  {
    const step = `disable the schedules in ${group}`;
    // Listed in full first, then changed: a listing is not paged while it changes.
    // ListSchedules answers at most 100 per page (EventBridge Scheduler API reference): paginated.
    const listed = await listAll(paginateListSchedules({ client: scheduler }, { GroupName: group }), (page) =>
      (page.Schedules ?? []).flatMap((s) => (s.Name ? [{ name: s.Name, state: s.State }] : [])),
    );
    if (listed.error && notFound(listed.error) && listed.items.length === 0)
      say({ step, ok: true, detail: 'no such schedule group (no fleet schedules)' });
    else {
      let disabled = 0;
      const already = listed.items.filter((s) => s.state === 'DISABLED').length;
      const failures: string[] = [];
      for (const { name } of listed.items.filter((s) => s.state !== 'DISABLED')) {
        try {
          // UpdateSchedule replaces the whole schedule: send back everything GetSchedule read, disabled.
          const s = await scheduler.send(new GetScheduleCommand({ Name: name, GroupName: group }));
          await scheduler.send(
            new UpdateScheduleCommand({
              Name: name,
              GroupName: group,
              ScheduleExpression: s.ScheduleExpression,
              ScheduleExpressionTimezone: s.ScheduleExpressionTimezone,
              StartDate: s.StartDate,
              EndDate: s.EndDate,
              Description: s.Description,
              KmsKeyArn: s.KmsKeyArn,
              Target: s.Target,
              FlexibleTimeWindow: s.FlexibleTimeWindow,
              ActionAfterCompletion: s.ActionAfterCompletion,
              State: 'DISABLED',
            }),
          );
          disabled += 1;
        } catch (error) {
          failures.push(`${name}: ${errorMessage(error)}`);
        }
      }
      say({
        step,
        ok: failures.length === 0 && !listed.error,
        detail:
          `${disabled} disabled, ${already} already disabled` +
          (failures.length > 0 ? `; ${failures.length} not disabled: ${failures.join('; ')}` : '') +
          (listed.error ? `; could not list them all: ${errorMessage(listed.error)}` : ''),
      });
    }
  }

  let hub: HubAddress | undefined;
  try {
    hub = await hubAddress();
  } catch (error) {
    say({ step: 'stop the running fleet executions', ok: false, detail: errorMessage(error) });
  }
  if (hub)
    for (const fn of FLEET_FUNCTIONS) {
      const name = stateMachineName(g, fn);
      const step = `stop the running executions of ${name}`;
      // ListExecutions answers at most 1,000 per page, 100 by default (Step Functions API reference):
      // paginated, and listed in full before any is stopped (stopping takes them out of a RUNNING listing).
      const listed = await listAll(
        paginateListExecutions(
          { client: sfnClient() },
          { stateMachineArn: stateMachineArn(hub, name), statusFilter: 'RUNNING' },
        ),
        (page) => (page.executions ?? []).flatMap((e) => (e.executionArn ? [e.executionArn] : [])),
      );
      if (listed.error && notFound(listed.error) && listed.items.length === 0) {
        say({ step, ok: true, detail: 'not deployed' });
        continue;
      }
      let stopped = 0;
      const failures: string[] = [];
      for (const executionArn of listed.items) {
        try {
          await sfnClient().send(
            new StopExecutionCommand({
              executionArn,
              error: 'nightshift.KillSwitch',
              cause: `nightshift fleet halt: stage ${g.stage}'s kill switch was engaged`,
            }),
          );
          stopped += 1;
        } catch (error) {
          failures.push(`${executionArn.split(':').pop()}: ${errorMessage(error)}`);
        }
      }
      say({
        step,
        ok: failures.length === 0 && !listed.error,
        detail:
          `${stopped} stopped` +
          (failures.length > 0 ? `; ${failures.length} not stopped: ${failures.join('; ')}` : '') +
          (listed.error ? `; could not list them all: ${errorMessage(listed.error)}` : ''),
      });
    }

  const failed = steps.filter((s) => !s.ok).length;
  if (g.json) io.out(JSON.stringify({ stage: g.stage, steps }, null, 2));
  io.err(
    failed > 0
      ? `the kill switch is NOT fully engaged: ${failed} step(s) failed (above). Run it again, or do those steps by hand.`
      : `the kill switch is engaged for stage ${g.stage}. To turn it back on: restore each function's reserved ` +
          `concurrency and enable the schedules in ${group} again (README, Deploy safety; a deploy that changes nothing does not).`,
  );
  return failed > 0 ? EXIT.failed : EXIT.ok;
};
