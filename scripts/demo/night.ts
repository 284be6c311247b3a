/**
 * `npm run demo` (the default): the night shift as an operator lives it, on a private moto, with the
 * built bundles of every function and the real `nightshift status` after each step.
 *
 * The estate (test/support/night-estate.ts): the environment `shop` on office-hours — a DB instance, a
 * standalone Auto Scaling group, two ECS services, an alarm about each tier — and what runs all night
 * beside it: the service ops/gateway, the group ops-runners (opted in to instance rotation) and the
 * database ledger-db. The demo's clock goes from the evening to the morning of the next working day:
 *
 *   1. the evening dry run: what the night will do, and nothing changed (checked on the requests sent);
 *   2. the environment parked: services, group, database, and the alarms about them silenced;
 *   3. ledger-db's nightly snapshot: tags propagated from the database, copied to another region;
 *   4. one instance rotation in ops-runners, launch before terminate;
 *   5. alarms fire: ops/gateway is restarted, shop/web (parked) is refused;
 *   6. a `wake` override starts shop-db for 30 minutes; the reconcile after it stops it again;
 *   7. the morning start in order: the database, then the group, then the services;
 *   8. the end: everything came back exactly, or the demo exits non-zero naming what differs.
 */
import type { Io } from '#scripts/cli/program.ts';
import { leaseTableName } from '#shared/lease.ts';
import type { Report } from '#shared/report.ts';
import { formatReport } from '#shared/report-text.ts';
import { emulateAlarmActions } from '#test/support/alarm-actions.ts';
import { lambdaContext } from '#test/support/context.ts';
import { answerAsAws, CREATED_LONG_AGO, type AwsAnswers } from '#test/support/environment-estate.ts';
import { startMoto, useEndpoint } from '#test/support/moto.ts';
import {
  alarmStateChange,
  COPY_REGION,
  differences,
  instanceTimesOnDemoClock,
  NIGHT,
  NIGHT_ALARMS,
  nightClients,
  observeNight,
  seedNight,
  snapshotCreatedEvent,
  takeLedgerSnapshot,
} from '#test/support/night-estate.ts';
import { FLEET_FUNCTIONS, type FleetFunction } from '#shared/fleet/target.ts';
import { SHOP } from '#test/support/environment-estate.ts';
import { startProxy, type RecordedRequest } from '#test/support/proxy.ts';
import { emulateCopySources } from '#test/support/rds-estate.ts';
import { DescribeAutoScalingGroupsCommand } from '@aws-sdk/client-auto-scaling';
import {
  clockAhead,
  demoLeaseTable,
  installDemoClock,
  loadHandler,
  localTime,
  nextNight,
  RealDate,
  setClock,
  step,
  type Handler,
} from './common.ts';

/** Every function of the night shift: the six a fleet can run (the hub's own `fleet` takes no part). */
const FUNCTIONS = FLEET_FUNCTIONS;
type Fn = FleetFunction;

// moto 5.2.1 answers DescribeInstanceRefreshes with a 500 whatever the group: the proxy answers as AWS
// does for a group without refreshes (as test/integration/instance-rotation.test.ts does).
const NO_REFRESHES =
  '<DescribeInstanceRefreshesResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><DescribeInstanceRefreshesResult><InstanceRefreshes/></DescribeInstanceRefreshesResult><ResponseMetadata><RequestId>demo</RequestId></ResponseMetadata></DescribeInstanceRefreshesResponse>';

const READ = /^(Describe|List|Get|Scan|Query|BatchGet)/;
/**
 * A request that reads. EventBridge Scheduler speaks REST, so the proxy names its calls by path: a GET
 * reads (ListSchedules, GetSchedule); a PUT, POST or DELETE of a schedule changes it.
 */
const isRead = (r: RecordedRequest) =>
  r.operation.startsWith('/') ? r.method === 'GET' : READ.test(r.operation);
const MINUTE = 60_000;

/** What reached AWS that changes the environment, in order: `stop-db`, `start-db`, `service web=0`, … */
const changesSent = (requests: readonly RecordedRequest[]): string[] =>
  requests.flatMap((r) => {
    if (/^(Stop|Start)DBInstance$/.test(r.operation) && r.body.includes(SHOP.database.id))
      return [r.operation.startsWith('Stop') ? 'stop-db' : 'start-db'];
    if (r.operation === 'UpdateService') {
      const body = JSON.parse(r.body) as { cluster?: string; service?: string; desiredCount?: number };
      return body.desiredCount === undefined || body.cluster !== SHOP.cluster
        ? []
        : [`service ${body.service}=${body.desiredCount}`];
    }
    return [];
  });

/** `DEMO_TIMING=1`: the seconds since the process started at each step, on stderr. */
const timing = (what: string) => {
  if (process.env.DEMO_TIMING) console.error(`[${(performance.now() / 1000).toFixed(1)} s] ${what}`);
};

export const nightDemo = async () => {
  installDemoClock();
  step('the estate: a local AWS (moto), the environment shop and what runs beside it');
  // The CLI (for `nightshift status`) compiles while moto starts.
  const [moto, { runCli }] = await Promise.all([startMoto(), import('#scripts/cli/program.ts')]);
  timing('moto up');
  const proxy = await startProxy(moto.url);
  try {
    // The bundles reach moto through a recording proxy that answers what moto leaves out.
    useEndpoint(proxy.url);
    // Configured before the bundles load, as the stack configures the functions.
    process.env.TARGET_REGIONS = COPY_REGION;
    process.env.LEASE_TABLE = leaseTableName('demo');
    const aws = nightClients(moto.url);
    // The bundles load (as at a cold start, their clients pointed at the proxy) while the estate is seeded.
    const loading = Promise.all(FUNCTIONS.map(async (fn) => [fn, await loadHandler(fn)] as const));
    await seedNight(aws);
    const answers: AwsAnswers = { databaseStatus: new Map(), draining: new Map() };
    await answerAsAws(proxy, aws, answers);
    const alarms = emulateAlarmActions(proxy);
    for (const a of NIGHT_ALARMS) alarms.actions.set(a.name, true);
    emulateCopySources(proxy);
    proxy.stub('DescribeInstanceRefreshes', { contentType: 'text/xml', body: NO_REFRESHES });
    const runners = await aws.autoscaling.send(
      new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [NIGHT.runners.name] }),
    );
    const seededInstances = new Set(
      (runners.AutoScalingGroups?.[0]?.Instances ?? []).map((i) => i.InstanceId ?? ''),
    );
    instanceTimesOnDemoClock(proxy, CREATED_LONG_AGO, seededInstances, clockAhead);
    console.log(
      [
        `moto on ${moto.url}, reached through a recording proxy that answers what moto 5.2.1 leaves out:`,
        '  - DisableAlarmActions / EnableAlarmActions (moto: 500): answered as CloudWatch does, each alarm keeping its ActionsEnabled',
        '  - DescribeInstanceRefreshes (moto: 500): answered as for a group without refreshes',
        '  - SourceDBSnapshotIdentifier on cross-region snapshot copies: added as RDS records it',
        "  - times (moto stamps the real clock): the estate created long ago, instances launched tonight on the demo's clock",
        `  - ${SHOP.database.id} reported "starting" for one run in the morning (moto starts a database at once)`,
      ].join('\n'),
    );
    const { evening, morning, zone } = nextNight(SHOP.schedule);
    timing('seeded');
    const before = await observeNight(aws, alarms.actions);
    await demoLeaseTable();

    const handlers = Object.fromEntries(await loading) as Record<Fn, Handler>;
    timing('bundles loaded');
    const invoke = async (fn: Fn, event: unknown, title?: string): Promise<Report> => {
      // An AWS event is named by its type and resource; an input the CLI or a schedule sends, in full.
      const fromAws = event as { 'detail-type'?: string; resources?: string[] };
      const shown = fromAws['detail-type']
        ? `← "${fromAws['detail-type']}" event for ${fromAws.resources?.[0] ?? '?'}`
        : JSON.stringify(event);
      console.log(`\n--- ${title ? `${title}: ` : ''}${fn} ${shown}`);
      timing(`${fn} starts`);
      const report = await handlers[fn](
        event,
        // instance-rotation's deadline is its 120 s timeout: a run counts as inside its window only if it
        // ends before the window's last run.
        lambdaContext(fn, fn === 'instance-rotation' ? () => 120_000 : undefined),
      );
      timing(`${fn} done`);
      console.log(formatReport(report));
      return report;
    };
    const io: Io = {
      out: (text) => console.log(text),
      err: (text) => console.error(text),
      interactive: false,
      confirm: async () => false,
      progress: () => Object.assign(() => undefined, { update: () => undefined }),
      width: 150,
      env: process.env,
    };
    const status = async () => {
      console.log(`\n--- nightshift status --local --stage demo (${localTime(new Date(), zone)})`);
      timing('status starts');
      const code = await runCli(['status', '--local', '--stage', 'demo'], io);
      timing('status done');
      if (code !== 0) throw new Error(`nightshift status exited ${code}`);
    };
    const at = (t: Date) => {
      setClock(t);
      return t;
    };

    // 1 ---------------------------------------------------------------------------------------------
    at(evening);
    step(`1. evening dry run, ${localTime(evening, zone)}: what the night will do`);
    const dryFrom = proxy.requests.length;
    const plan = await invoke('ecs-scheduler', { action: 'reconcile', dryRun: true });
    await invoke('rds-scheduler', { action: 'reconcile', dryRun: true });
    const dryRequests = proxy.requests.slice(dryFrom);
    const dryChanges = dryRequests.filter((r) => !isRead(r)).map((r) => r.operation);
    if (dryChanges.length > 0) throw new Error(`the dry run sent changes: ${dryChanges.join(', ')}`);
    const changed = differences(before, await observeNight(aws, alarms.actions));
    if (changed.length > 0) throw new Error(`the dry run changed the estate: ${changed.join('; ')}`);
    console.log(
      `\ndry run: ${dryRequests.length} requests reached AWS, every one a read (Describe/List/Get): nothing changed`,
    );
    await status();

    // 2 ---------------------------------------------------------------------------------------------
    step(
      `2. the environment parked, ${localTime(evening, zone)}: services, group, database, alarms silenced`,
    );
    // Confirmed as the CLI confirms a dry run: the apply sends its planDigest, and changes nothing if the
    // plan differs from what the dry run showed.
    await invoke(
      'ecs-scheduler',
      { action: 'reconcile', planDigest: plan.planDigest },
      'the plan confirmed: services and group parked, their alarms silenced',
    );
    at(new RealDate(evening.getTime() + 5 * MINUTE));
    await invoke(
      'rds-scheduler',
      { action: 'reconcile' },
      '5 minutes later, every service at rest: the database stops',
    );
    await status();

    // 3 ---------------------------------------------------------------------------------------------
    const snapshotAt = at(new RealDate(morning.getTime() - 5 * 60 * MINUTE));
    step(
      `3. snapshots, ${localTime(snapshotAt, zone)}: ${NIGHT.ledger.snapshot} tagged and copied to ${COPY_REGION}`,
    );
    const snapshot = await takeLedgerSnapshot(aws);
    console.log(
      `the backup job took ${NIGHT.ledger.snapshot} (tag backup=nightly); RDS sends "snapshot created"`,
    );
    const created = snapshotCreatedEvent(snapshot, snapshotAt);
    await invoke('snapshot-tags', created, "the database's tags onto its snapshot");
    await invoke('rds-snapshot-copy', created, `a copy in ${COPY_REGION}, with every tag`);
    await status();

    // 4 ---------------------------------------------------------------------------------------------
    const rotateAt = at(new RealDate(morning.getTime() - 4 * 60 * MINUTE - 5 * MINUTE));
    step(
      `4. instance rotation, ${localTime(rotateAt, zone)}: one instance of ${NIGHT.runners.name} replaced`,
    );
    await invoke('instance-rotation', { action: 'rotate' }, "the window's run: launch a replacement first");
    at(new RealDate(rotateAt.getTime() + 10 * MINUTE));
    await invoke('instance-rotation', { action: 'rotate' }, '10 minutes later, the replacement in service');
    await status();

    // 5 ---------------------------------------------------------------------------------------------
    const alarmAt = at(new RealDate(rotateAt.getTime() + 30 * MINUTE));
    step(`5. alarms fire, ${localTime(alarmAt, zone)}: one restart, one refused (its target is parked)`);
    const [web, gateway] = ['shop-web-5xx', 'ops-gateway-5xx'].map((name) =>
      NIGHT_ALARMS.find((a) => a.name === name)!,
    );
    await invoke('ssm-restart', alarmStateChange(gateway!, alarmAt), `alarm ${gateway!.name} (ALARM)`);
    await invoke('ssm-restart', alarmStateChange(web!, alarmAt), `alarm ${web!.name} (ALARM)`);
    await status();

    // 6 ---------------------------------------------------------------------------------------------
    const wakeAt = at(new RealDate(morning.getTime() - 2 * 60 * MINUTE - 5 * MINUTE));
    step(`6. a wake override, ${localTime(wakeAt, zone)}: ${SHOP.database.id} up for 30 minutes`);
    await invoke(
      'rds-scheduler',
      {
        action: 'wake',
        instances: [SHOP.database.id],
        for: '30m',
        reason: 'night data import',
        by: 'assumed-role/OnCall/ops@example.com',
      },
      'nightshift wake --db shop-db --for 30m',
    );
    at(new RealDate(wakeAt.getTime() + 35 * MINUTE));
    await invoke('rds-scheduler', { action: 'reconcile' }, '35 minutes later, the override over');
    await status();

    // 7 ---------------------------------------------------------------------------------------------
    at(morning);
    step(`7. the morning, ${localTime(morning, zone)}: the database, then the group, then the services`);
    await invoke('rds-scheduler', { action: 'reconcile' }, 'the database starts first');
    answers.databaseStatus.set(SHOP.database.id, 'starting');
    await invoke(
      'ecs-scheduler',
      { action: 'reconcile' },
      `${SHOP.database.id} still starting: the rest waits`,
    );
    answers.databaseStatus.clear();
    at(new RealDate(morning.getTime() + 5 * MINUTE));
    await invoke(
      'ecs-scheduler',
      { action: 'reconcile' },
      `5 minutes later, ${SHOP.database.id} available: the group starts`,
    );
    at(new RealDate(morning.getTime() + 10 * MINUTE));
    await invoke(
      'ecs-scheduler',
      { action: 'reconcile' },
      `10 minutes later, ${SHOP.group.name} in service: the services start`,
    );
    await status();

    // 8 ---------------------------------------------------------------------------------------------
    step('8. the end: did everything come back exactly?');
    const after = await observeNight(aws, alarms.actions);
    const differs = differences(before, after);
    const sent = changesSent(proxy.delivered());
    const stopDb = sent.lastIndexOf('stop-db');
    const startDb = sent.lastIndexOf('start-db');
    const parks = sent.flatMap((c, i) => (/=0$/.test(c) ? [i] : []));
    const wakes = sent.flatMap((c, i) => (/^service .*=[1-9]\d*$/.test(c) ? [i] : []));
    console.log(`shop, sent in order: ${sent.join(', ')}`);
    const inOrder =
      parks.length > 0 &&
      wakes.length > 0 &&
      stopDb > Math.max(...parks) &&
      startDb > stopDb &&
      startDb < Math.min(...wakes);
    for (const k of [...before.keys()].filter((key) => !key.endsWith(': tags')))
      console.log(`  ${k.padEnd(36)} ${(after.get(k) ?? '(absent)').padEnd(24)} evening: ${before.get(k)}`);
    const left = [...after]
      .filter(([k, v]) => k.endsWith(': tags') && /nightshift:(stopped|silenced|override|rotation)=/.test(v))
      .map(([k]) => k.replace(/: tags$/, ''));
    console.log(
      `nightshift state left (stopped, silenced, override, rotation tags): ${left.join(', ') || 'none'}`,
    );
    if (!inOrder) throw new Error('the order did not hold: the database stops last and starts first');
    if (differs.length > 0) {
      console.error(`NOT back exactly:\n${differs.map((d) => `  ${d}`).join('\n')}`);
      process.exitCode = 1;
      return;
    }
    console.log(
      '\ncame back exactly: every desired count, scaling target, group size, database status and alarm action is as it was the evening before, and no nightshift saved state (stopped, silenced, override, rotation) is left.',
    );
  } finally {
    timing('closing');
    await proxy.close();
    moto.stop();
    timing('closed');
  }
};
