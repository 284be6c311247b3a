/**
 * `npm run demo -- environment`: an environment `shop` — a DB instance, a standalone Auto Scaling group
 * and two ECS services, tagged nightshift:environment=shop and nightshift:schedule=office-hours — through
 * one night with ecs-scheduler and rds-scheduler alone. In the evening rds-scheduler waits while the
 * services run, ecs-scheduler parks the services and the group, and a later rds-scheduler run stops the
 * database; in the morning (after a run refused because another run holds the database) rds-scheduler
 * starts the database, ecs-scheduler waits while it is `starting`, and a later run starts the services.
 * Ends by checking that everything came back exactly, and that the order held, from the requests that
 * reached AWS.
 */
import { dynamoLeaseStore } from '#shared/lease.ts';
import { formatReport } from '#shared/report-text.ts';
import { lambdaContext } from '#test/support/context.ts';
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
import {
  demoLeaseTable,
  installDemoClock,
  loadHandler,
  localTime,
  nextNight,
  RealDate,
  setClock,
  step,
} from './common.ts';

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
export const environmentDemo = async () => {
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

    const { dynamo, table } = await demoLeaseTable();

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

    const { evening, morning, zone } = nextNight(SHOP.schedule);
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
