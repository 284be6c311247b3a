/**
 * `npm run demo -- ecs`: ecs-scheduler alone stops and starts the stage estate on demand (with one start
 * refused because another run holds the cluster).
 */
import { DescribeClustersCommand } from '@aws-sdk/client-ecs';
import { dynamoLeaseStore } from '#shared/lease.ts';
import { formatReport } from '#shared/report-text.ts';
import { lambdaContext } from '#test/support/context.ts';
import { observeSample, seedClients, seedEstate, type SeedClients } from '#test/support/ecs-estate.ts';
import { startMoto, useEndpoint } from '#test/support/moto.ts';
import { demoLeaseTable, loadHandler, step } from './common.ts';

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
export const ecsDemo = async () => {
  step('starting a local AWS (moto) and seeding the sample estate');
  const moto = await startMoto();
  try {
    useEndpoint(moto.url);
    const aws = seedClients(moto.url);
    await seedEstate(aws);
    const before = await estateTable(aws);
    console.log(`moto on ${moto.url}\n${before}`);

    const { dynamo, table } = await demoLeaseTable();

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
