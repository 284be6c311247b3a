/**
 * The main job on an embedded local AWS: starts a private moto server and runs the built bundles
 * against a sample estate, printing every report.
 *
 * `npm run demo` (the environment): an environment `shop` — a DB instance, a standalone Auto Scaling
 * group and two ECS services, tagged nightshift:environment=shop and nightshift:schedule=office-hours —
 * through one night. In the evening rds-scheduler waits while the services run, ecs-scheduler parks the
 * services and the group, and a later rds-scheduler run stops the database; in the morning (after a
 * run refused because another run holds the database) rds-scheduler starts the database, ecs-scheduler
 * waits while it is `starting`, and a later run starts the services. Ends by checking that everything
 * came back exactly, and that the order held, from the requests that reached AWS.
 *
 * `npm run demo -- ecs`: ecs-scheduler alone stops and starts the stage estate on demand (with one
 * start refused because another run holds the cluster).
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DescribeClustersCommand } from '@aws-sdk/client-ecs';
import { bundledSchedules } from '#functions/rds-scheduler/schedules.ts';
import { dynamoLeaseStore, leaseTableName } from '#shared/lease.ts';
import { ensureLocalLeaseTable } from '#shared/lease-table.ts';
import type { Report } from '#shared/report.ts';
import { formatReport } from '#shared/report-text.ts';
import { nextTransition } from '#shared/schedules.ts';
import { lambdaContext } from '#test/support/context.ts';
import { observeSample, seedClients, seedEstate, type SeedClients } from '#test/support/ecs-estate.ts';
import {
  answerAsAws,
  environmentClients,
  observeEnvironment,
  seedEnvironment,
  SHOP,
  STOPPED,
  type AwsAnswers,
  type EnvironmentClients,
} from '#test/support/environment-estate.ts';
import { startMoto, useEndpoint } from '#test/support/moto.ts';
import { startProxy, type RecordedRequest } from '#test/support/proxy.ts';

type Handler = (event: unknown, context: unknown) => Promise<Report>;

// The reports are the show; keep the function's own structured logs to warnings, and its EMF metric
// lines (for CloudWatch) out of the terminal.
process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';
process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';

const step = (title: string) => console.log(`\n=== ${title} ${'='.repeat(Math.max(0, 76 - title.length))}`);

const loadHandler = async (name: string): Promise<Handler> => {
  const bundle = pathToFileURL(resolve(`dist/${name}/index.mjs`)).href;
  return ((await import(bundle)) as { handler: Handler }).handler;
};

// ---------------------------------------------------------------------------------------------
// The environment

/**
 * The demo's clock. A reconcile decides from the time of day, and the bundles read it as a deployed
 * function does (`new Date()`); the demo sets it to the evening and the morning of a coming working day
 * instead of waiting for them. Only this process's Date is moved (moto keeps the real clock).
 */
const RealDate = Date;
let clockOffset = 0;
const demoNow = () => RealDate.now() + clockOffset;
const installDemoClock = () => {
  globalThis.Date = new Proxy(RealDate, {
    construct: (target, args, newTarget) =>
      Reflect.construct(target, args.length > 0 ? args : [demoNow()], newTarget) as object,
    apply: () => new RealDate(demoNow()).toString(),
    get: (target, property, receiver) =>
      property === 'now' ? demoNow : (Reflect.get(target, property, receiver) as unknown),
  });
};
const setClock = (at: Date) => {
  clockOffset = at.getTime() - RealDate.now();
};

/**
 * The next night office-hours (infra/schedules.yml, the file the bundles carry) stops in the evening
 * and starts the next morning — not a weekend, not a holiday — from tomorrow on: `evening` and
 * `morning` are 5 minutes after those transitions.
 */
const nextNight = (): { evening: Date; morning: Date; zone: string } => {
  const schedule = bundledSchedules().get(SHOP.schedule);
  if (!schedule) throw new Error(`schedule ${SHOP.schedule} not in infra/schedules.yml`);
  let at = new RealDate(RealDate.now() + 24 * 3_600_000);
  for (let i = 0; i < 60; i++) {
    const stop = nextTransition(schedule, at);
    if (!stop) break;
    const start = stop.to === 'stopped' ? nextTransition(schedule, stop.at) : undefined;
    if (start?.to === 'running' && start.at.getTime() - stop.at.getTime() < 16 * 3_600_000) {
      const later = (t: Date) => new RealDate(t.getTime() + 5 * 60_000);
      return { evening: later(stop.at), morning: later(start.at), zone: schedule.timezone };
    }
    at = start?.at ?? stop.at;
  }
  throw new Error(`no overnight stop and start of ${SHOP.schedule} found in the coming months`);
};

const localTime = (at: Date, zone: string) =>
  new Intl.DateTimeFormat('en-GB', {
    timeZone: zone,
    weekday: 'short',
    day: 'numeric',
    month: 'short',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).format(at) + ` ${zone}`;

const tagNote = (tags: Record<string, string>) => (tags[STOPPED] ? `  [${STOPPED} = ${tags[STOPPED]}]` : '');

/** The environment as AWS reports it (read from moto directly). */
const environmentTable = async (aws: EnvironmentClients): Promise<string> => {
  const { database, group, services } = await observeEnvironment(aws, SHOP);
  return [
    `  database ${SHOP.database.id.padEnd(14)} ${database.status}${tagNote(database.tags)}`,
    `  group    ${SHOP.group.name.padEnd(14)} min ${group.min} desired ${group.desired} max ${group.max}${tagNote(group.tags)}`,
    ...Object.entries(services).map(([name, s]) => {
      const scaling = s.scaling
        ? ` scaling ${s.scaling.min}-${s.scaling.max}${s.scaling.suspended.some(Boolean) ? ' (suspended)' : ''}`
        : '';
      return `  service  ${name.padEnd(14)} desired ${s.desired}${scaling}${tagNote(s.tags)}`;
    }),
  ].join('\n');
};

/** What reached AWS that changes the environment, in order: `stop-db`, `start-db`, `service web=0`, … */
const changesSent = (requests: readonly RecordedRequest[]): string[] =>
  requests.flatMap((r) => {
    if (/^(Stop|Start)DBInstance$/.test(r.operation))
      return [r.operation.startsWith('Stop') ? 'stop-db' : 'start-db'];
    if (r.operation === 'UpdateService') {
      const body = JSON.parse(r.body) as { service?: string; desiredCount?: number };
      return body.desiredCount === undefined ? [] : [`service ${body.service}=${body.desiredCount}`];
    }
    return [];
  });

/** `npm run demo`: the environment shop through one night. */
const environmentDemo = async () => {
  installDemoClock();
  step('starting a local AWS (moto) and seeding the environment shop');
  const moto = await startMoto();
  const proxy = await startProxy(moto.url);
  try {
    // The bundles reach moto through a recording proxy that answers what moto leaves out (answerAsAws).
    useEndpoint(proxy.url);
    const aws = environmentClients(moto.url);
    await seedEnvironment(aws, SHOP);
    const answers: AwsAnswers = { databaseStatus: new Map(), draining: new Map() };
    await answerAsAws(proxy, aws, answers);
    const before = await environmentTable(aws);
    console.log(
      `moto on ${moto.url}; every tier tagged nightshift:environment=shop, nightshift:schedule=office-hours\n${before}`,
    );

    const table = leaseTableName('demo');
    const dynamo = new DynamoDBClient({});
    await ensureLocalLeaseTable(dynamo, table);
    process.env.LEASE_TABLE = table;
    console.log(`lease table ${table}`);

    const handlers = {
      'ecs-scheduler': await loadHandler('ecs-scheduler'),
      'rds-scheduler': await loadHandler('rds-scheduler'),
    };
    const invoke = async (
      fn: keyof typeof handlers,
      title: string,
      event: unknown = { action: 'reconcile' },
    ) => {
      step(`${title}: ${fn} ${JSON.stringify(event)}`);
      const report = await handlers[fn](event, lambdaContext(fn));
      console.log(formatReport(report));
      return report;
    };

    const { evening, morning, zone } = nextNight();
    setClock(evening);
    console.log(`\nthe demo's clock: ${localTime(evening, zone)}, 5 minutes after office-hours stops`);
    await invoke('rds-scheduler', 'evening: the database waits while its services run');
    await invoke('ecs-scheduler', 'evening: services and group parked');
    step('estate: services and group parked, the database still up');
    console.log(await environmentTable(aws));
    setClock(new RealDate(evening.getTime() + 5 * 60_000));
    await invoke('rds-scheduler', '5 minutes later: everything of shop rests, the database stops');
    step('estate at night (state saved on the resources themselves)');
    console.log(await environmentTable(aws));

    setClock(morning);
    console.log(`\nthe demo's clock: ${localTime(morning, zone)}, 5 minutes after office-hours starts`);
    // Another run (a person's --local start, say) holds the database: this one changes nothing there.
    const leases = dynamoLeaseStore(dynamo, table);
    const other = { holder: 'rds-scheduler run 7c1d9e20 (local:ops@laptop)', token: 'demo-other-run' };
    const { database } = await observeEnvironment(aws, SHOP);
    if (database.status !== 'stopped')
      throw new Error(`${SHOP.database.id} is ${database.status}, not stopped`);
    await leases.acquire(database.arn, other, new Date(), 300_000);
    const refused = await invoke(
      'rds-scheduler',
      'morning, while another run holds the database: refused, nothing changes',
    );
    if (refused.summary.changed > 0)
      throw new Error('a start changed the database while another run held it');
    await leases.release(database.arn, other);
    await invoke('rds-scheduler', 'morning: the database starts first');
    // moto starts a database at once; RDS takes minutes. The proxy answers `starting` for the next run.
    answers.databaseStatus.set(SHOP.database.id, 'starting');
    console.log(
      `(RDS takes minutes to start a database: the demo reports ${SHOP.database.id} as starting to the next run)`,
    );
    await invoke('ecs-scheduler', 'morning: the services wait for the database');
    answers.databaseStatus.clear();
    setClock(new RealDate(morning.getTime() + 5 * 60_000));
    await invoke(
      'ecs-scheduler',
      `5 minutes later, ${SHOP.database.id} available: the group starts, the services wait for it`,
    );
    setClock(new RealDate(morning.getTime() + 10 * 60_000));
    await invoke('ecs-scheduler', `10 minutes later, ${SHOP.group.name} in service: the services start`);

    step('estate in the morning');
    const after = await environmentTable(aws);
    console.log(after);
    const sent = changesSent(proxy.delivered());
    const stopDb = sent.indexOf('stop-db');
    const startDb = sent.indexOf('start-db');
    const parks = sent.flatMap((c, i) => (/=0$/.test(c) ? [i] : []));
    const wakes = sent.flatMap((c, i) => (/^service .*=[1-9]\d*$/.test(c) ? [i] : []));
    console.log(`\nsent, in order: ${sent.join(', ')}`);
    const inOrder =
      stopDb > Math.max(...parks) && startDb > stopDb && wakes.length > 0 && startDb < Math.min(...wakes);
    if (!inOrder) throw new Error('the order did not hold: the database stops last and starts first');
    if (after !== before) throw new Error('the environment was not restored exactly');
    console.log(
      'in order: the database stopped after every service was parked and started before any came back.\n' +
        'came back exactly: the database, the group and every service are as they were, no saved state left.',
    );
  } finally {
    await proxy.close();
    moto.stop();
  }
};

// ---------------------------------------------------------------------------------------------
// ecs-scheduler alone

const estateTable = async (aws: SeedClients): Promise<string> => {
  const { services, groups } = await observeSample(aws);
  const lines = Object.entries(services).map(([name, s]) => {
    const scaling = s.scaling
      ? ` scaling ${s.scaling.min}-${s.scaling.max}${s.scaling.suspended.some(Boolean) ? ' (suspended)' : ''}`
      : '';
    const saved = s.tags['nightshift:stopped']
      ? `  [nightshift:stopped = ${s.tags['nightshift:stopped']}]`
      : '';
    return `  service ${name.padEnd(14)} desired ${s.desired}${scaling}${saved}`;
  });
  for (const [name, g] of Object.entries(groups)) {
    const saved = g.tags['nightshift:stopped']
      ? `  [nightshift:stopped = ${g.tags['nightshift:stopped']}]`
      : '';
    lines.push(`  group   ${name.padEnd(14)} min ${g.min} desired ${g.desired} max ${g.max}${saved}`);
  }
  return lines.join('\n');
};

/** `npm run demo -- ecs`: ecs-scheduler alone, stop and start of the stage cluster on demand. */
const ecsDemo = async () => {
  step('starting a local AWS (moto) and seeding the sample estate');
  const moto = await startMoto();
  try {
    useEndpoint(moto.url);
    const aws = seedClients(moto.url);
    await seedEstate(aws);
    const before = await estateTable(aws);
    console.log(`moto on ${moto.url}\n${before}`);

    // The bundle takes its leases in the stage's table, as deployed (LEASE_TABLE is set by the stack);
    // here the table is created in moto, as `nightshift --local` does against an emulator.
    const table = leaseTableName('demo');
    const dynamo = new DynamoDBClient({});
    await ensureLocalLeaseTable(dynamo, table);
    process.env.LEASE_TABLE = table;
    console.log(`lease table ${table}`);

    const handler = await loadHandler('ecs-scheduler');
    const invoke = async (title: string, event: unknown) => {
      step(`${title}: ${JSON.stringify(event)}`);
      console.log(formatReport(await handler(event, lambdaContext('ecs-scheduler'))));
    };

    await invoke('dry run first, as ops would', { action: 'stop', clusters: ['stage'], dryRun: true });
    await invoke('stop the stage cluster', { action: 'stop', clusters: ['stage'] });
    step('estate while stopped (state saved on the resources themselves)');
    console.log(await estateTable(aws));
    await invoke('stop again: nothing changes, nothing saved is overwritten', {
      action: 'stop',
      clusters: ['stage'],
    });
    await invoke('production is protected even when named', { action: 'stop', clusters: ['prod'] });
    // Another run (a person's --local start, say) holds the cluster: this one changes nothing there.
    const leases = dynamoLeaseStore(dynamo, table);
    const other = { holder: 'ecs-scheduler run 7c1d9e20 (local:ops@laptop)', token: 'demo-other-run' };
    const described = await aws.ecs.send(new DescribeClustersCommand({ clusters: ['stage'] }));
    const cluster = described.clusters?.[0]?.clusterArn ?? '';
    await leases.acquire(cluster, other, new Date(), 300_000);
    step('a start while another run holds the cluster: refused, nothing changes');
    const refused = await handler({ action: 'start', clusters: ['stage'] }, lambdaContext('ecs-scheduler'));
    console.log(formatReport(refused));
    if (refused.summary.changed > 0) throw new Error('a start changed the cluster while another run held it');
    await leases.release(cluster, other);

    await invoke('start the stage cluster', { action: 'start', clusters: ['stage'] });

    step('estate after start');
    const after = await estateTable(aws);
    console.log(after);
    if (after !== before) throw new Error('the estate was not restored exactly');
    console.log('\nrestored exactly: every service, scaling target and group is back as it was.');
  } finally {
    moto.stop();
  }
};

const DEMOS: Record<string, () => Promise<void>> = { environment: environmentDemo, ecs: ecsDemo };
const which = process.argv[2] ?? 'environment';
const demo = DEMOS[which];
if (!demo) {
  console.error(`no demo "${which}": npm run demo [-- ${Object.keys(DEMOS).join('|')}]`);
  process.exit(2);
}
await demo();
