/**
 * ssm-restart against moto, through the whole middy chain. moto 5.2.1 records every instance in the
 * region as a command's InstanceIds, so what was sent is asserted on the recorded SendCommand requests.
 * It has no DescribeInstanceInformation either: the recording proxy answers it as SSM would for the
 * agents each test declares online (stubSsmAgents).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { handler as realHandler, run, type Deps } from '#functions/ssm-restart/handler.ts';
import { RestartConfig } from '#functions/ssm-restart/config.ts';
import { ec2Client } from '#shared/aws/ec2.ts';
import { ssmClient } from '#shared/aws/ssm.ts';
import { ecsClient } from '#shared/aws/ecs.ts';
import { autoScalingClient } from '#shared/aws/autoscaling.ts';
import { cloudWatchClient } from '#shared/aws/cloudwatch.ts';
import { parseEnv } from '#shared/env.ts';
import { withOps } from '#shared/handler.ts';
import type { Report } from '#shared/report.ts';
import { readFileSync } from 'node:fs';
import { DeleteTagsCommand } from '@aws-sdk/client-ec2';
import { SSMClient } from '@aws-sdk/client-ssm';
import { sdkConfig } from '#shared/aws/config.ts';
import { parseRestartInput } from '#events/ssm-restart/schema.ts';
import { lambdaContext, runContext } from '#test/support/context.ts';
import { dynamoClient, leaseTable, runLeases, TEST_LEASE_TABLE } from '#test/support/leases.ts';
import {
  DeleteTableCommand,
  GetItemCommand,
  PutItemCommand,
  type PutItemCommandInput,
} from '@aws-sdk/client-dynamodb';
import { RunFailedError } from '#shared/errors.ts';
import type { LeaseStore } from '#shared/lease.ts';
import { motoTestsEnabled, startMoto, useEndpoint, type Moto } from '#test/support/moto.ts';
import { startProxy, type Proxy } from '#test/support/proxy.ts';
import {
  alarmEvent,
  alarmTime,
  barrier,
  createAlarm,
  createGroup,
  createService,
  describeService,
  instanceArn,
  instanceTags,
  launchInstances,
  mutations,
  restartSeedClients,
  RESTARTABLE,
  sendCommands,
  stopInstance,
  stubSsmAgents,
  tagInstance,
  until,
  type RestartSeedClients,
} from '#test/support/ssm-estate.ts';

// The tag names are a public contract: spelled out here rather than imported.
const RESTART = 'nightshift:restart';
const LAST_RESTART = 'nightshift:last-restart';
const MINUTE = 60_000;

let clock = new Date('2026-11-23T02:14:41Z');
const deps = (env: Record<string, string> = {}): Deps => ({
  clients: {
    ec2: ec2Client(),
    ssm: ssmClient(),
    ecs: ecsClient(),
    autoscaling: autoScalingClient(),
    cloudwatch: cloudWatchClient(),
  },
  config: parseEnv(RestartConfig, { AWS_REGION: 'eu-central-1', ...env }),
  now: () => clock,
  pollDelayMs: () => 20,
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
});
/** The handler's own chain (parsing, withOps) around test dependencies: a fixed clock, fast polling. */
const invoke = (event: unknown, env: Record<string, string> = {}) =>
  withOps('ssm-restart', parseRestartInput, (input, ctx) => run(input, ctx, deps(env)))(
    event,
    lambdaContext('ssm-restart'),
  ) as Promise<Report>;
/** The real sample of an alarm going to ALARM now, by the test clock (its detail.state.timestamp). */
const alarmNow = (arn: string, dimensions: Record<string, string>) =>
  alarmEvent(arn, dimensions, 'ALARM', clock);
const row = (report: Report, suffix: string) => report.resources.find((r) => r.arn.endsWith(suffix));
/** The report of a run, also when every row failed (withOps then throws it in a RunFailedError). */
const settled = (run: Promise<Report>) =>
  run.catch((error: unknown) => {
    if (error instanceof RunFailedError) return error.report;
    throw error;
  });
/** A published CloudWatch event (test/fixtures/aws-events/aws.cloudwatch, see PROVENANCE.md). */
const fixture = (file: string) =>
  JSON.parse(readFileSync(`test/fixtures/aws-events/aws.cloudwatch/${file}`, 'utf8')) as {
    resources: string[];
    region: string;
    detail: {
      alarmName: string;
      state: { timestamp: string };
      configuration: { metrics?: { metricStat: { metric: { dimensions: object } } }[] };
    };
  };

describe.runIf(motoTestsEnabled())('ssm-restart against moto', () => {
  let moto: Moto;
  let proxy: Proxy;
  let aws: RestartSeedClients;
  let agents: Parameters<typeof stubSsmAgents>[1] = {};
  /** The lease table, read directly in moto (not through the proxy). */
  let records: LeaseStore;
  /** The ids of the commands SSM (moto) answered SendCommand with, in order. */
  let commandIds: string[] = [];
  /** These instances' SSM agents are online from now on. */
  const online = (...ids: (string | undefined)[]) => {
    for (const id of ids) agents[id ?? ''] = 'Online';
    stubSsmAgents(proxy, agents);
  };
  /** Opted-in instances whose SSM agents are online. */
  const launch = async (count: number, tags: Record<string, string> = {}) => {
    const ids = await launchInstances(aws, count, { ...RESTARTABLE, ...tags });
    online(...ids);
    return ids;
  };

  beforeAll(async () => {
    moto = await startMoto();
    proxy = await startProxy(moto.url);
    useEndpoint(proxy.url);
    // The stage's lease table, as the stack creates it: withOps gives runs its store (through the proxy).
    process.env.LEASE_TABLE = TEST_LEASE_TABLE;
    aws = restartSeedClients(moto.url);
  });
  afterAll(async () => {
    delete process.env.LEASE_TABLE;
    await proxy?.close();
    moto?.stop();
  });
  beforeEach(async () => {
    await moto.reset();
    records = await leaseTable(moto.url);
    clock = new Date('2026-11-23T02:14:41Z');
    proxy.requests.length = 0;
    for (const op of ['DescribeInstanceInformation', 'PutItem', 'GetCommandInvocation'])
      proxy.before(op, undefined);
    agents = {};
    stubSsmAgents(proxy, agents);
    commandIds = [];
    proxy.rewrite('GetCommandInvocation', undefined);
    proxy.rewrite('SendCommand', (body) => {
      commandIds.push((JSON.parse(body) as { Command: { CommandId: string } }).Command.CommandId);
      return body;
    });
  });

  it('restarts the container an alarm names on the instance in its InstanceId dimension', async () => {
    // Prepare
    const [web, other] = await launch(2);
    const arn = await createAlarm(
      aws,
      'web-1-unhealthy',
      { InstanceId: web! },
      { [RESTART]: 'container:web' },
    );
    proxy.requests.length = 0;

    // Act
    const report = await invoke(alarmNow(arn, { InstanceId: web! }));

    // Assess: one send, to that instance only, running exactly the command built from the tag
    const sends = sendCommands(proxy.requests);
    expect(sends).toHaveLength(1);
    expect(sends[0]).toEqual({
      DocumentName: 'AWS-RunShellScript',
      InstanceIds: [web],
      Parameters: { commands: ['docker restart web'], executionTimeout: ['300'] },
      MaxConcurrency: '25%',
      MaxErrors: '1',
      Comment: 'nightshift ssm-restart: alarm web-1-unhealthy',
      TimeoutSeconds: 120,
    });
    expect(report.summary).toEqual({
      changed: 1,
      planned: 0,
      unchanged: 0,
      skipped: 0,
      undone: 0,
      waiting: 0,
      failed: 0,
    });
    expect(report.resources[0]).toMatchObject({
      arn: instanceArn(web!),
      type: 'ec2-instance',
      outcome: 'changed',
    });
    expect(report.resources[0]?.detail).toMatch(
      /^docker restart web \(alarm web-1-unhealthy\); restart time recorded in tag nightshift:last-restart; Success, exit code 0$/,
    );
    // The restart time is on the instance, written before the command was sent
    expect((await instanceTags(aws, web!))[LAST_RESTART]).toBe(
      'at=2026-11-23T02:14:41Z what=container:web via=alarm',
    );
    expect((await instanceTags(aws, other!))[LAST_RESTART]).toBeUndefined();
    // Claimed in the lease table first, then tagged and sent; the command is recorded in the claim right
    // after the send, and the claim is marked over once the command ended
    expect(mutations(proxy.requests)).toEqual(['PutItem', 'CreateTags', 'SendCommand', 'PutItem', 'PutItem']);
    const commandId = commandIds[0];
    expect((await records.read(`restart#${instanceArn(web!)}`))?.data).toMatchObject({
      command: commandId,
      runUntil: '2026-11-23T02:14:41Z',
    });
    const asked = proxy.requests.find((r) => r.operation === 'DescribeInstanceInformation')?.body ?? '{}';
    expect(JSON.parse(asked)).toEqual({ Filters: [{ Key: 'InstanceIds', Values: [web] }], MaxResults: 50 });
  });

  it('holds the cooldown across invocations: a second alarm within 15 minutes is skipped with the reason', async () => {
    // Prepare
    const [web] = await launch(1);
    const arn = await createAlarm(
      aws,
      'web-1-unhealthy',
      { InstanceId: web! },
      { [RESTART]: 'container:web' },
    );
    await invoke(alarmNow(arn, { InstanceId: web! }));
    const tagged = (await instanceTags(aws, web!))[LAST_RESTART];
    proxy.requests.length = 0;

    // Act: the alarm flaps back into ALARM 5 minutes later
    clock = new Date(clock.getTime() + 5 * MINUTE);
    const again = await invoke(alarmNow(arn, { InstanceId: web! }));

    // Assess
    expect(again.summary).toEqual({
      changed: 0,
      planned: 0,
      unchanged: 0,
      skipped: 1,
      undone: 0,
      waiting: 0,
      failed: 0,
    });
    expect(again.resources[0]?.detail).toBe(
      'last restarted 5 min ago at 2026-11-23T02:14:41Z (container:web via alarm, by ssm-restart run ' +
        'c4c1c1c9-6542-e61b-6ef0-8c4d36933a92 (ssm-restart)); alarm restarts wait for the 15-min cooldown, which ' +
        'ends at 2026-11-23T02:29:41Z: not restarted for alarm web-1-unhealthy',
    );
    expect(sendCommands(proxy.requests)).toEqual([]);
    expect(mutations(proxy.requests)).toEqual([]);
    expect((await instanceTags(aws, web!))[LAST_RESTART]).toBe(tagged);

    // Act: once the cooldown is over, the alarm restarts again
    clock = new Date('2026-11-23T02:29:41Z');
    const later = await invoke(alarmNow(arn, { InstanceId: web! }));

    expect(later.summary.changed).toBe(1);
    expect(sendCommands(proxy.requests)).toHaveLength(1);
    expect((await instanceTags(aws, web!))[LAST_RESTART]).toBe(
      'at=2026-11-23T02:29:41Z what=container:web via=alarm',
    );
  });

  it('restarts a unit on the InService instances of the Auto Scaling group in the dimensions', async () => {
    const members = await createGroup(aws, 'web-fleet', 3, RESTARTABLE);
    online(...members);
    await launch(1);
    const arn = await createAlarm(
      aws,
      'web-fleet-nginx-5xx',
      { AutoScalingGroupName: 'web-fleet' },
      { [RESTART]: 'unit:nginx.service' },
    );
    proxy.requests.length = 0;

    const report = await invoke(alarmNow(arn, { AutoScalingGroupName: 'web-fleet' }));

    const sends = sendCommands(proxy.requests);
    expect(sends).toHaveLength(1);
    expect(sends[0]?.InstanceIds.sort()).toEqual([...members].sort());
    expect(sends[0]?.Parameters.commands).toEqual(['systemctl restart nginx.service']);
    expect(report.summary).toMatchObject({ changed: 3, failed: 0 });
    for (const id of members)
      expect((await instanceTags(aws, id))[LAST_RESTART]).toMatch(/what=unit:nginx.service/);
  });

  it('restarts only the instance of an alarm on a CloudWatch agent metric, not the rest of its group', async () => {
    // Prepare: the agent's usual append_dimensions put the group's name on every instance metric
    const members = await createGroup(aws, 'web-fleet', 3, RESTARTABLE);
    online(...members);
    const agentDims = {
      InstanceId: members[0]!,
      AutoScalingGroupName: 'web-fleet',
      ImageId: 'ami-12c6146b',
      InstanceType: 't3.micro',
    };
    const arn = await createAlarm(aws, 'web-1-mem', agentDims, { [RESTART]: 'container:web' });
    proxy.requests.length = 0;

    // Act
    const report = await invoke(alarmNow(arn, agentDims));

    // Assess: one send, to that instance, its other members untouched; the group is read only to tell
    // whether nightshift parked it (its instances are then not restarted), once
    expect(sendCommands(proxy.requests).map((c) => c.InstanceIds)).toEqual([[members[0]]]);
    expect(
      proxy.requests
        .filter((r) => r.operation === 'DescribeAutoScalingGroups')
        .map((r) => new URLSearchParams(r.body).get('AutoScalingGroupNames.member.1')),
    ).toEqual(['web-fleet']);
    expect(report.resources.map((r) => [r.arn, r.outcome])).toEqual([[instanceArn(members[0]!), 'changed']]);
    for (const id of members.slice(1)) expect((await instanceTags(aws, id))[LAST_RESTART]).toBeUndefined();
  });

  it('says why SSM refused a send (a 4xx), and ends that restart at once so it can be retried on demand', async () => {
    // Prepare: the function's SSM calls go through a second proxy, which answers SendCommand as SSM
    // refuses one, once; everything else goes on to the first proxy and moto
    const [web] = await launch(1);
    const refusing = await startProxy(proxy.url);
    refusing.stub('SendCommand', {
      status: 400,
      contentType: 'application/x-amz-json-1.1',
      body: JSON.stringify({
        __type: 'InvalidInstanceId',
        message: 'Instances [[' + web + ']] not in a valid state for account 123456789012',
      }),
    });
    const onDemand = { action: 'restart', targets: { instanceIds: [web] }, container: 'web' };
    const refusedRun = withOps('ssm-restart', parseRestartInput, (input, ctx) =>
      run(input, ctx, {
        ...deps(),
        clients: { ...deps().clients, ssm: new SSMClient({ ...sdkConfig(), endpoint: refusing.url }) },
      }),
    );

    // Act: refused; a person retries at once
    const refused = await settled(refusedRun(onDemand, lambdaContext('ssm-restart')) as Promise<Report>);
    await refusing.close();
    const retried = await invoke(onDemand);

    // Assess: sent once, the real error in the row, the restart over, and the retry went ahead
    expect(sendCommands(refusing.requests)).toHaveLength(1);
    expect(refused.resources[0]).toMatchObject({
      outcome: 'failed',
      error:
        `SendCommand failed: InvalidInstanceId: Instances [[${web}]] not in a valid state for account ` +
        '123456789012; nothing ran, but the restart time was recorded in tag nightshift:last-restart, so alarm ' +
        'restarts of this instance wait for the cooldown (restart on demand to retry now)',
    });
    expect(retried.resources[0]).toMatchObject({ outcome: 'changed' });
    expect(sendCommands(proxy.requests)).toHaveLength(1);
  });

  it.each(['OK', 'INSUFFICIENT_DATA'] as const)(
    'does nothing, quietly, when the alarm goes to %s',
    async (state) => {
      const [web] = await launch(1);
      const arn = await createAlarm(
        aws,
        'web-1-unhealthy',
        { InstanceId: web! },
        { [RESTART]: 'container:web' },
      );
      proxy.requests.length = 0;

      const report = await realHandler(
        alarmEvent(arn, { InstanceId: web! }, state),
        lambdaContext('ssm-restart'),
      );

      expect(report).toEqual({
        action: 'restart',
        dryRun: false,
        summary: { changed: 0, planned: 0, unchanged: 0, skipped: 0, undone: 0, waiting: 0, failed: 0 },
        resources: [],
      });
      expect(proxy.requests).toEqual([]);
    },
  );

  it('does nothing, quietly, for an alarm without the nightshift:restart tag', async () => {
    const [web] = await launch(1);
    const arn = await createAlarm(aws, 'cpu-high', { InstanceId: web! }, { team: 'shop' });
    proxy.requests.length = 0;

    const report = await invoke(alarmNow(arn, { InstanceId: web! }));

    expect(report.resources).toEqual([]);
    expect(proxy.requests.map((r) => r.operation)).toEqual(['ListTagsForResource']);
  });

  it('refuses an alarm tag that would inject shell, naming the tag, before any mutating call', async () => {
    const [web] = await launch(1);
    const arn = await createAlarm(
      aws,
      'web-1-unhealthy',
      { InstanceId: web! },
      { [RESTART]: 'container:web; reboot' },
    );
    proxy.requests.length = 0;

    const ctx = runContext();
    const report = await run(parseRestartInput(alarmNow(arn, { InstanceId: web! })), ctx, deps());
    await expect(invoke(alarmNow(arn, { InstanceId: web! }))).rejects.toThrow(/all 1 resource\(s\) failed/);

    expect(report.resources).toEqual([
      {
        arn,
        type: 'cloudwatch-alarm',
        outcome: 'failed',
        detail:
          'alarm web-1-unhealthy: tag nightshift:restart names container "web; reboot": expected 1 to 128 letters, ' +
          'digits, "_", ".", "@" or "-", starting with a letter or digit; nothing restarted',
      },
    ]);
    expect(mutations(proxy.requests)).toEqual([]);
    expect((await instanceTags(aws, web!))[LAST_RESTART]).toBeUndefined();
  });

  it('redeploys the ECS service in the dimensions of an alarm tagged ecs-service', async () => {
    // Prepare
    const serviceArn = await createService(aws, 'shop', 'web', RESTARTABLE);
    const before = await describeService(aws, 'shop', 'web');
    const dimensions = { ClusterName: 'shop', ServiceName: 'web' };
    const arn = await createAlarm(aws, 'shop-web-memory-leak', dimensions, { [RESTART]: 'ecs-service' });
    proxy.requests.length = 0;

    // Act
    const report = await invoke(alarmNow(arn, dimensions));

    // Assess
    const updates = proxy.requests
      .filter((r) => r.operation === 'UpdateService')
      .map((r) => JSON.parse(r.body));
    expect(updates).toEqual([{ cluster: 'shop', service: 'web', forceNewDeployment: true }]);
    expect(mutations(proxy.requests)).toEqual(['PutItem', 'TagResource', 'UpdateService', 'PutItem']);
    const after = await describeService(aws, 'shop', 'web');
    const primary = after.deployments.find((d) => d.status === 'PRIMARY');
    expect(primary?.id).not.toBe(before.deployments.find((d) => d.status === 'PRIMARY')?.id);
    expect(after.tags[LAST_RESTART]).toBe('at=2026-11-23T02:14:41Z what=ecs-service via=alarm');
    expect(report.resources).toEqual([
      {
        arn: serviceArn,
        type: 'ecs-service',
        outcome: 'changed',
        detail:
          'redeploy (UpdateService forceNewDeployment; alarm shop-web-memory-leak); restart time recorded ' +
          `in tag nightshift:last-restart; deployment ${primary?.id} started`,
      },
    ]);

    // A second alarm within the cooldown leaves the service alone
    proxy.requests.length = 0;
    clock = new Date(clock.getTime() + 14 * MINUTE);
    const again = await invoke(alarmNow(arn, dimensions));
    expect(again.resources[0]).toMatchObject({ outcome: 'skipped' });
    expect(mutations(proxy.requests)).toEqual([]);
  });

  it('leaves alone an ECS service without nightshift:restartable=true', async () => {
    const serviceArn = await createService(aws, 'shop', 'web', { team: 'shop' });
    const before = await describeService(aws, 'shop', 'web');
    const dimensions = { ClusterName: 'shop', ServiceName: 'web' };
    const arn = await createAlarm(aws, 'shop-web-memory-leak', dimensions, { [RESTART]: 'ecs-service' });
    proxy.requests.length = 0;

    const report = await invoke(alarmNow(arn, dimensions));

    expect(report.resources).toEqual([
      {
        arn: serviceArn,
        type: 'ecs-service',
        outcome: 'skipped',
        detail: 'not opted in: the service has no nightshift:restartable=true tag; nothing redeployed',
      },
    ]);
    expect(mutations(proxy.requests)).toEqual([]);
    expect(await describeService(aws, 'shop', 'web')).toEqual(before);
  });

  it('restarts on demand on the running instances carrying every tag, whatever the cooldown', async () => {
    // Prepare: two running web instances (one restarted a minute ago), a stopped one, an api one
    const [a, b, stopped] = await launch(3, { app: 'web', env: 'stage' });
    await launch(1, { app: 'api', env: 'stage' });
    await stopInstance(aws, stopped!);
    const { CreateTagsCommand } = await import('@aws-sdk/client-ec2');
    await aws.ec2.send(
      new CreateTagsCommand({
        Resources: [a!],
        Tags: [{ Key: LAST_RESTART, Value: 'at=2026-11-23T02:13:41Z what=unit:nginx.service via=alarm' }],
      }),
    );
    proxy.requests.length = 0;

    // Act
    const report = await invoke({
      action: 'restart',
      targets: { tags: { app: 'web', env: 'stage' } },
      unit: 'nginx.service',
    });

    // Assess
    const sends = sendCommands(proxy.requests);
    expect(sends).toHaveLength(1);
    expect(sends[0]?.InstanceIds.sort()).toEqual([a, b].sort());
    expect(sends[0]?.Parameters.commands).toEqual(['systemctl restart nginx.service']);
    expect(sends[0]?.Comment).toBe('nightshift ssm-restart: on-demand');
    const describe = proxy.requests.find((r) => r.operation === 'DescribeInstances')?.body ?? '';
    expect(new URLSearchParams(describe).get('Filter.1.Name')).toBe('instance-state-name');
    expect(new URLSearchParams(describe).get('Filter.1.Value.1')).toBe('running');
    expect(report.summary).toMatchObject({ changed: 2, failed: 0 });
    expect(row(report, a!)?.detail).toMatch(
      /last restarted 1 min ago at 2026-11-23T02:13:41Z \(unit:nginx.service via alarm\): an on-demand restart ignores the cooldown/,
    );
    expect((await instanceTags(aws, a!))[LAST_RESTART]).toBe(
      'at=2026-11-23T02:14:41Z what=unit:nginx.service via=on-demand',
    );
  });

  it('sends to more than 50 instances in batches of 50', async () => {
    await launch(60, { app: 'batch' });
    proxy.requests.length = 0;

    const report = await invoke({
      action: 'restart',
      targets: { tags: { app: 'batch' } },
      container: 'worker',
    });

    const sends = sendCommands(proxy.requests);
    expect(sends.map((s) => s.InstanceIds.length)).toEqual([50, 10]);
    // The sends run at the same time: a percentage holds in each, MAX_ERRORS 1 is shared out among them
    expect(sends.map((s) => [s.MaxConcurrency, s.MaxErrors])).toEqual([
      ['25%', '1'],
      ['25%', '0'],
    ]);
    // 50 at 25% run 12 at a time, 10 at 25% 2 at a time: 5 waves each, so 120 s + 4 × 300 s to start
    expect(sends.map((s) => s.TimeoutSeconds)).toEqual([1_320, 1_320]);
    expect(report.summary).toMatchObject({ changed: 60, failed: 0 });
    // Both batches went out before the first poll: a slow instance in one holds up no other
    const ops = proxy.requests.map((r) => r.operation);
    expect(ops.lastIndexOf('SendCommand')).toBeLessThan(ops.indexOf('GetCommandInvocation'));
    // SSM was asked about the agents 50 ids a call
    expect(
      proxy.requests
        .filter((r) => r.operation === 'DescribeInstanceInformation')
        .map((r) => (JSON.parse(r.body) as { Filters: { Values: string[] }[] }).Filters[0]?.Values.length),
    ).toEqual([50, 10]);
  });

  it('restarts only opted-in instances whose SSM agent is online, tagging no other', async () => {
    // Prepare: one good instance, one whose agent lost its connection, one SSM does not manage, one not opted in
    const [good, lost, unmanaged] = await launch(3, { app: 'web' });
    const [notOptedIn] = await launchInstances(aws, 1, { app: 'web' });
    online(notOptedIn);
    agents[lost!] = 'ConnectionLost';
    delete agents[unmanaged!];
    stubSsmAgents(proxy, agents);
    proxy.requests.length = 0;

    // Act
    const report = await invoke(
      { action: 'restart', targets: { tags: { app: 'web' } }, container: 'web' },
      { MAX_ERRORS: '0' },
    );

    // Assess: one send, to the good instance; the others are skipped, not failed, and carry no restart time
    expect(sendCommands(proxy.requests).map((s) => s.InstanceIds)).toEqual([[good]]);
    expect(report.summary).toEqual({
      changed: 1,
      planned: 0,
      unchanged: 0,
      skipped: 3,
      undone: 0,
      waiting: 0,
      failed: 0,
    });
    expect(row(report, lost!)?.detail).toBe(
      'not an SSM managed instance, or its agent is offline (PingStatus ConnectionLost); nothing sent',
    );
    expect(row(report, unmanaged!)?.detail).toBe(
      'not an SSM managed instance, or its agent is offline (SSM DescribeInstanceInformation does not list it); nothing sent',
    );
    expect(row(report, notOptedIn!)?.detail).toBe(
      'not opted in: the instance has no nightshift:restartable=true tag; nothing sent',
    );
    expect((await instanceTags(aws, good!))[LAST_RESTART]).toMatch(/^at=2026-11-23T02:14:41Z /);
    for (const id of [lost, unmanaged, notOptedIn]) {
      expect((await instanceTags(aws, id!))[LAST_RESTART]).toBeUndefined();
    }
  });

  it('skips, for an alarm, a group member that is not opted in or not online', async () => {
    const members = await createGroup(aws, 'web-fleet', 3, RESTARTABLE);
    const [plain, offline, good] = members;
    await aws.ec2.send(
      new DeleteTagsCommand({ Resources: [plain!], Tags: [{ Key: 'nightshift:restartable' }] }),
    );
    online(plain, good);
    const arn = await createAlarm(
      aws,
      'web-fleet-nginx-5xx',
      { AutoScalingGroupName: 'web-fleet' },
      { [RESTART]: 'unit:nginx.service' },
    );
    proxy.requests.length = 0;

    const report = await invoke(alarmNow(arn, { AutoScalingGroupName: 'web-fleet' }));

    expect(sendCommands(proxy.requests).map((s) => s.InstanceIds)).toEqual([[good]]);
    expect(row(report, plain!)).toMatchObject({ outcome: 'skipped' });
    expect(row(report, plain!)?.detail).toMatch(/^not opted in/);
    expect(row(report, offline!)).toMatchObject({ outcome: 'skipped' });
    expect(row(report, offline!)?.detail).toMatch(/^not an SSM managed instance, or its agent is offline/);
    expect((await instanceTags(aws, plain!))[LAST_RESTART]).toBeUndefined();
    expect((await instanceTags(aws, offline!))[LAST_RESTART]).toBeUndefined();
  });

  it('restarts on an alarm, and replaces, a last restart far in the future', async () => {
    const [web] = await launch(1);
    await tagInstance(aws, web!, {
      [LAST_RESTART]: 'at=2031-11-23T02:14:41Z what=container:web via=on-demand',
    });
    const arn = await createAlarm(
      aws,
      'web-1-unhealthy',
      { InstanceId: web! },
      { [RESTART]: 'container:web' },
    );

    const report = await invoke(alarmNow(arn, { InstanceId: web! }));

    expect(report.summary.changed).toBe(1);
    expect(report.resources[0]?.detail).toMatch(
      /its nightshift:last-restart tag says 2031-11-23T02:14:41Z, more than 5 min in the future, which no restart can be/,
    );
    expect((await instanceTags(aws, web!))[LAST_RESTART]).toBe(
      'at=2026-11-23T02:14:41Z what=container:web via=alarm',
    );
  });

  it('refuses a metric-math alarm whose instance only feeds its expression', async () => {
    const [web] = await launch(1);
    const arn = await createAlarm(
      aws,
      'web-1-slower-than-fleet',
      { InstanceId: web! },
      { [RESTART]: 'container:web' },
    );
    const event = JSON.parse(readFileSync('events/aws.cloudwatch/samples/alarm-metric-math.json', 'utf8'));
    event.resources = [arn];
    event.detail.configuration.metrics[1].metricStat.metric.dimensions = { InstanceId: web };
    proxy.requests.length = 0;

    const ctx = runContext();
    const report = await run(parseRestartInput(event), ctx, deps());

    expect(report.resources).toMatchObject([{ arn, type: 'cloudwatch-alarm', outcome: 'failed' }]);
    expect(report.resources[0]?.detail).toMatch(/it alarms on a metric-math expression/);
    expect(mutations(proxy.requests)).toEqual([]);
    expect((await instanceTags(aws, web!))[LAST_RESTART]).toBeUndefined();
  });

  it.each([
    ['container', 'web; rm -rf /'],
    ['container', '$(reboot)'],
    ['container', '`reboot`'],
    ['container', '../x'],
    ['container', '-v'],
    ['container', 'w'.repeat(200)],
    ['unit', 'nginx service'],
    ['unit', 'nginx\nreboot'],
  ])('refuses %s %j before any AWS call', async (field, name) => {
    const [web] = await launch(1);
    proxy.requests.length = 0;

    await expect(
      realHandler(
        { action: 'restart', targets: { instanceIds: [web] }, [field]: name },
        lambdaContext('ssm-restart'),
      ),
    ).rejects.toThrow(new RegExp(`^invalid event: field "${field}": expected 1 to 128 letters`));

    expect(proxy.requests).toEqual([]);
  });

  it('sends nothing and writes no tag in a dry run, from the event or from DRY_RUN', async () => {
    const [web] = await launch(1);
    const arn = await createAlarm(
      aws,
      'web-1-unhealthy',
      { InstanceId: web! },
      { [RESTART]: 'container:web' },
    );
    proxy.requests.length = 0;

    const onDemand = await invoke({
      action: 'restart',
      targets: { instanceIds: [web] },
      container: 'web',
      dryRun: true,
    });
    const alarm = await invoke(alarmNow(arn, { InstanceId: web! }), { DRY_RUN: 'true' });

    for (const report of [onDemand, alarm]) {
      expect(report.dryRun).toBe(true);
      expect(report.summary).toEqual({
        changed: 0,
        planned: 1,
        unchanged: 0,
        skipped: 0,
        undone: 0,
        waiting: 0,
        failed: 0,
      });
    }
    expect(onDemand.resources[0]?.detail).toBe(
      'docker restart web (on-demand); restart time recorded in tag nightshift:last-restart',
    );
    expect(mutations(proxy.requests)).toEqual([]);
    expect((await instanceTags(aws, web!))[LAST_RESTART]).toBeUndefined();
  });

  it('reports named instances that are stopped or unknown instead of sending to them', async () => {
    const [running, stopped] = await launch(2);
    await stopInstance(aws, stopped!);
    proxy.requests.length = 0;

    const report = await invoke({
      action: 'restart',
      targets: { instanceIds: [running, stopped, 'i-0123456789abcdef0'] },
      container: 'web',
    });

    expect(sendCommands(proxy.requests).map((s) => s.InstanceIds)).toEqual([[running]]);
    expect(report.resources.map((r) => [r.arn.split('/').pop(), r.outcome, r.detail.split(';')[0]])).toEqual([
      ['i-0123456789abcdef0', 'failed', 'instance not found'],
      [running, 'changed', 'docker restart web (on-demand)'],
      [stopped, 'skipped', 'not running (stopped)'],
    ]);
  });

  describe('the restart guard in the lease table', () => {
    const dims = (id: string) => ({ InstanceId: id });
    /** Holds the first claim of a target until a second run tries to claim it too, and lets that one go on once the first is written. */
    const raceForClaims = (arn: string) => {
      let claims = 0;
      let secondTried: () => void = () => undefined;
      const tried = new Promise<void>((resolve) => (secondTried = resolve));
      proxy.before('PutItem', async (request) => {
        if (!request.body.includes(`"restart#${arn}"`)) return;
        const n = ++claims;
        if (n === 1) await tried;
        if (n === 2) {
          secondTried();
          await until(async () => (await records.read(`restart#${arn}`)) !== undefined);
        }
      });
      return () => claims;
    };

    it('restarts an instance once when two alarms on it fire together, interleaved step by step', async () => {
      // Prepare: two alarms on web-1's container
      const [web] = await launch(1);
      const unhealthy = await createAlarm(aws, 'web-1-unhealthy', dims(web!), { [RESTART]: 'container:web' });
      const slow = await createAlarm(aws, 'web-1-slow', dims(web!), { [RESTART]: 'container:web' });
      proxy.requests.length = 0;
      // Both runs read the instance, its tags and its restart record before either writes anything,
      // and both try to claim it
      proxy.before('DescribeInstanceInformation', barrier(2));
      const claims = raceForClaims(instanceArn(web!));
      // The winner sends once the loser has decided
      const runs = [
        invoke({ ...alarmNow(unhealthy, dims(web!)), id: 'event-unhealthy' }),
        invoke({ ...alarmNow(slow, dims(web!)), id: 'event-slow' }),
      ];
      const oneDone = Promise.race(runs);
      proxy.before('SendCommand', async () => void (await oneDone));

      // Act
      const reports = await Promise.all(runs);

      // Assess: one restart; the run that lost the claim read the record again and met the winner's
      // restart in progress
      expect(sendCommands(proxy.requests)).toHaveLength(1);
      expect(claims()).toBeGreaterThanOrEqual(2);
      const won = reports.findIndex((r) => r.summary.changed === 1);
      const lost = reports[1 - won];
      const winner = ['event-unhealthy', 'event-slow'][won];
      expect(lost?.summary).toEqual({
        changed: 0,
        planned: 0,
        unchanged: 0,
        skipped: 1,
        undone: 0,
        waiting: 0,
        failed: 0,
      });
      expect(lost?.resources[0]?.detail).toBe(
        `another restart of it is in progress: container:web via alarm, by ssm-restart run ${winner} ` +
          '(ssm-restart), since 2026-11-23T02:14:41Z (that run ends by 2026-11-23T02:30:41Z); not restarted for ' +
          `alarm ${won === 0 ? 'web-1-slow' : 'web-1-unhealthy'} — run again once it is done`,
      );
      expect((await instanceTags(aws, web!))[LAST_RESTART]).toBe(
        'at=2026-11-23T02:14:41Z what=container:web via=alarm',
      );
      // The record: one restart, over, with its cooldown
      expect(await records.read(`restart#${instanceArn(web!)}`)).toMatchObject({
        holder: `ssm-restart run ${winner} (ssm-restart)`,
        expiresAt: new Date('2026-11-23T02:29:41Z'),
        data: { restarts: '2026-11-23T02:14:41Z', runUntil: '2026-11-23T02:14:41Z' },
      });
    });

    it('restarts once when one alarm event is delivered twice at the same time', async () => {
      const [web] = await launch(1);
      const arn = await createAlarm(aws, 'web-1-unhealthy', dims(web!), { [RESTART]: 'container:web' });
      proxy.requests.length = 0;
      proxy.before('DescribeInstanceInformation', barrier(2));
      raceForClaims(instanceArn(web!));
      const event = alarmNow(arn, dims(web!));

      const reports = await Promise.all([invoke(event), invoke(event)]);

      expect(sendCommands(proxy.requests)).toHaveLength(1);
      expect(reports.map((r) => r.resources[0]?.outcome).sort()).toEqual(['changed', 'skipped']);
    });

    it('leaves an instance alone on demand while an alarm restarts it, and restarts it once that is over', async () => {
      // Prepare: an alarm restart held at its first look at the command it sent
      const [web] = await launch(1);
      const arn = await createAlarm(aws, 'web-1-unhealthy', dims(web!), { [RESTART]: 'container:web' });
      let polled: () => void = () => undefined;
      let release: () => void = () => undefined;
      const polling = new Promise<void>((resolve) => (polled = resolve));
      const released = new Promise<void>((resolve) => (release = resolve));
      proxy.before('GetCommandInvocation', async () => {
        polled();
        await released;
      });
      const alarmRun = invoke(alarmNow(arn, dims(web!)));
      await polling;
      proxy.before('GetCommandInvocation', undefined);
      // moto ends every command at once: SSM says it still runs (the on-demand run asks it)
      proxy.rewrite('GetCommandInvocation', (body) =>
        body.replace(/"Status": ?"Success"/, '"Status": "InProgress"'),
      );
      const onDemand = { action: 'restart', targets: { instanceIds: [web] }, container: 'web' };

      // Act: a person restarts it while the alarm's restart is in progress
      const during = await invoke(onDemand);
      proxy.rewrite('GetCommandInvocation', undefined);
      release();
      const alarm = await alarmRun;
      const after = await invoke(onDemand);

      // Assess
      expect(during.resources[0]).toMatchObject({ outcome: 'skipped' });
      const [commandId] = commandIds;
      expect(during.resources[0]?.detail).toBe(
        'another restart of it is in progress: container:web via alarm, by ssm-restart run ' +
          'c4c1c1c9-6542-e61b-6ef0-8c4d36933a92 (ssm-restart), since 2026-11-23T02:14:41Z (that run ends by ' +
          `2026-11-23T02:22:41Z; its SSM command ${commandId} is InProgress); not restarted for on-demand — run ` +
          'again once it is done',
      );
      expect(alarm.resources[0]?.outcome).toBe('changed');
      // On demand ignores the cooldown, once the alarm's restart is over
      expect(after.resources[0]?.outcome).toBe('changed');
      expect(sendCommands(proxy.requests).map((c) => c.Comment)).toEqual([
        'nightshift ssm-restart: alarm web-1-unhealthy',
        'nightshift ssm-restart: on-demand',
      ]);
    });

    it('fails the 4th alarm restart in an hour, stops alarm restarts until one on demand, which resets it', async () => {
      // Prepare: an alarm that keeps flapping, every 15 minutes (the cooldown)
      const [web] = await launch(1);
      const arn = await createAlarm(aws, 'web-1-unhealthy', dims(web!), { [RESTART]: 'container:web' });
      const alarmAt = async (iso: string) => {
        clock = new Date(iso);
        return settled(invoke(alarmNow(arn, dims(web!))));
      };

      // Act
      const first = [await alarmAt('2026-11-23T02:00:00Z'), await alarmAt('2026-11-23T02:15:00Z')];
      const third = await alarmAt('2026-11-23T02:30:00Z');
      const fourth = await alarmAt('2026-11-23T02:45:00Z');
      const hoursLater = await alarmAt('2026-11-23T05:00:00Z');
      const latched = await dynamoClient(moto.url).send(
        new GetItemCommand({
          TableName: TEST_LEASE_TABLE,
          Key: { scope: { S: `restart#${instanceArn(web!)}` } },
        }),
      );
      clock = new Date('2026-11-23T05:01:00Z');
      const byHand = await invoke({ action: 'restart', targets: { instanceIds: [web] }, container: 'web' });
      const next = await alarmAt('2026-11-23T05:20:00Z');

      // Assess
      expect([...first, third].map((r) => r.resources[0]?.outcome)).toEqual([
        'changed',
        'changed',
        'changed',
      ]);
      expect(fourth.resources[0]).toMatchObject({ outcome: 'failed' });
      expect(fourth.resources[0]?.detail).toBe(
        'flap guard: restarted 3 times by alarms in the last hour (2026-11-23T02:00:00Z, 2026-11-23T02:15:00Z, ' +
          '2026-11-23T02:30:00Z); one more would be more than RESTART_MAX_PER_HOUR (3): no automatic restarts of it ' +
          'until a person restarts it on demand; not restarted for alarm web-1-unhealthy',
      );
      // Still stopped hours later: the guard latched, and DynamoDB's TTL will not remove the latch for years
      expect(Number(latched.Item?.ttl?.N) * 1000).toBeGreaterThan(Date.parse('2031-11-23T05:00:00Z'));
      expect(hoursLater.resources[0]).toMatchObject({ outcome: 'failed' });
      expect(hoursLater.resources[0]?.detail).toMatch(
        /^flap guard: automatic restarts of it stopped at 2026-11-23T02:45:00Z, after more than 3 restarts in an hour/,
      );
      expect(byHand.resources[0]?.outcome).toBe('changed');
      expect(byHand.resources[0]?.detail).toMatch(
        /; this on-demand restart resets the flap guard \(automatic restarts of it had stopped at 2026-11-23T02:45:00Z\); Success/,
      );
      expect(next.resources[0]?.outcome).toBe('changed');
      expect(sendCommands(proxy.requests)).toHaveLength(5);
      const data = (await records.read(`restart#${instanceArn(web!)}`))?.data;
      expect(data).toMatchObject({
        what: 'container:web',
        via: 'alarm',
        restarts: '2026-11-23T05:20:00Z',
        runUntil: '2026-11-23T05:20:00Z',
      });
      expect(data?.flapped).toBeUndefined();
    });

    it('never restarts without the lease table, on an alarm or on demand', async () => {
      // Prepare
      const [web] = await launch(1);
      const arn = await createAlarm(aws, 'web-1-unhealthy', dims(web!), { [RESTART]: 'container:web' });
      proxy.requests.length = 0;

      // Act: a function deployed without LEASE_TABLE, then one whose table was deleted
      delete process.env.LEASE_TABLE;
      const unset = await settled(invoke(alarmNow(arn, dims(web!))));
      const unsetOnDemand = await settled(
        invoke({ action: 'restart', targets: { instanceIds: [web] }, container: 'web' }),
      );
      process.env.LEASE_TABLE = TEST_LEASE_TABLE;
      await dynamoClient(moto.url).send(new DeleteTableCommand({ TableName: TEST_LEASE_TABLE }));
      const missing = await settled(invoke(alarmNow(arn, dims(web!))));

      // Assess: failed, and nothing tagged or sent
      for (const report of [unset, unsetOnDemand, missing])
        expect(report.resources[0]?.outcome).toBe('failed');
      expect(unset.resources[0]?.detail).toBe(
        'LEASE_TABLE is not set: its restart cannot be claimed, and without a claim another alarm, or a second ' +
          'delivery of this one, could restart it at the same time; no restart goes ahead unguarded: nothing ' +
          'tagged or sent',
      );
      expect(missing.resources[0]?.detail).toMatch(
        /^could not take a lease in nightshift-test-leases \(ResourceNotFoundException: .*\); nothing changed: .*; no restart goes ahead unguarded: nothing tagged or sent$/,
      );
      expect(mutations(proxy.requests)).toEqual([]);
      expect((await instanceTags(aws, web!))[LAST_RESTART]).toBeUndefined();
    });
  });

  describe('two stages in one account', () => {
    const STAGE = 'nightshift:stage';
    /** Runs the function as deployed in `stage`: its own lease table, NIGHTSHIFT_STAGE set. */
    const stageRun = (stage: string, store: LeaseStore, event: unknown) =>
      settled(
        run(
          parseRestartInput(event),
          runContext({ leases: runLeases(store, `ssm-restart run (${stage})`, () => clock) }),
          deps({ NIGHTSHIFT_STAGE: stage }),
        ),
      );

    it('restarts once for an alarm tagged for one stage, when both stages get its event at once', async () => {
      // Prepare: dev and prod deployed in one account, each with its own lease table; the alarm is prod's
      const dev = await leaseTable(moto.url, 'nightshift-dev-leases');
      const prod = await leaseTable(moto.url, 'nightshift-prod-leases');
      const [web] = await launch(1);
      const arn = await createAlarm(
        aws,
        'web-1-unhealthy',
        { InstanceId: web! },
        { [RESTART]: 'container:web', [STAGE]: 'prod' },
      );
      const event = alarmNow(arn, { InstanceId: web! });
      // Both runs read the instance before either claims it, unless one stops before reading it
      let devSettled: () => void = () => undefined;
      const devDone = new Promise<void>((resolve) => (devSettled = resolve));
      const bothRead = barrier(2);
      proxy.before('DescribeInstanceInformation', () => Promise.race([bothRead(), devDone]));
      proxy.requests.length = 0;

      // Act
      const devRun = stageRun('dev', dev, event).finally(devSettled);
      const [devReport, prodReport] = await Promise.all([devRun, stageRun('prod', prod, event)]);

      // Assess: prod restarted it; dev said why it did not
      expect(sendCommands(proxy.requests)).toHaveLength(1);
      expect(prodReport.resources[0]).toMatchObject({ arn: instanceArn(web!), outcome: 'changed' });
      expect(devReport.resources).toEqual([
        {
          arn,
          type: 'cloudwatch-alarm',
          outcome: 'skipped',
          detail:
            'alarm web-1-unhealthy is tagged nightshift:stage=prod: stage prod restarts for it, and this is stage ' +
            'dev; nothing restarted here',
        },
      ]);
      expect(await dev.read(`restart#${instanceArn(web!)}`)).toBeUndefined();
    });

    it('lets every stage act on an alarm without nightshift:stage: only the last-restart tag holds the next one off', async () => {
      // Prepare
      const dev = await leaseTable(moto.url, 'nightshift-dev-leases');
      const prod = await leaseTable(moto.url, 'nightshift-prod-leases');
      const [web] = await launch(1);
      const arn = await createAlarm(
        aws,
        'web-1-unhealthy',
        { InstanceId: web! },
        { [RESTART]: 'container:web' },
      );
      const event = alarmNow(arn, { InstanceId: web! });
      proxy.requests.length = 0;

      // Act: prod handles the event first, dev right after
      const prodReport = await stageRun('prod', prod, event);
      const devReport = await stageRun('dev', dev, event);

      // Assess: dev acted on it too, and only the tag prod wrote kept it from restarting again (a
      // read-then-write: at the same moment both could restart it, hence the nightshift:stage tag)
      expect(prodReport.resources[0]?.outcome).toBe('changed');
      expect(devReport.resources[0]).toMatchObject({ outcome: 'skipped' });
      expect(devReport.resources[0]?.detail).toMatch(
        /^last restarted 0 min ago at 2026-11-23T02:14:41Z \(container:web via alarm\); alarm restarts wait for the 15-min cooldown/,
      );
      expect(sendCommands(proxy.requests)).toHaveLength(1);
    });
  });

  describe('a claim whose answer was lost', () => {
    it('restarts once when its first write landed and the retry failed its condition against it', async () => {
      // Prepare: the first PutItem of the claim reaches the table, but its answer is lost: the SDK's retry
      // then meets the item the first attempt wrote (simulated: the proxy writes it to moto first, then
      // forwards the same request, whose condition fails)
      const [web] = await launch(1);
      const arn = await createAlarm(
        aws,
        'web-1-unhealthy',
        { InstanceId: web! },
        { [RESTART]: 'container:web' },
      );
      const scope = `restart#${instanceArn(web!)}`;
      let landed = false;
      proxy.before('PutItem', async (request) => {
        if (landed || !request.body.includes(`"${scope}"`)) return;
        landed = true;
        const { TableName, Item } = JSON.parse(request.body) as PutItemCommandInput;
        await dynamoClient(moto.url).send(new PutItemCommand({ TableName, Item }));
      });
      proxy.requests.length = 0;

      // Act
      const report = await invoke(alarmNow(arn, { InstanceId: web! }));

      // Assess: restarted once, and not reported as held off by its own restart
      expect(report.resources).toEqual([
        expect.objectContaining({ arn: instanceArn(web!), outcome: 'changed' }),
      ]);
      expect(report.resources[0]?.detail).not.toMatch(/last restarted|in progress/);
      expect(sendCommands(proxy.requests)).toHaveLength(1);
      expect(landed).toBe(true);
      expect((await records.read(scope))?.holder).toBe(
        'ssm-restart run c4c1c1c9-6542-e61b-6ef0-8c4d36933a92 (ssm-restart)',
      );
    });
  });

  describe('alarms', () => {
    /** A published event about our alarm `arn` in this region, its metric on instance `id`. */
    const published = (file: string, arn: string, id?: string, fresh = true) => {
      const event = fixture(file);
      event.resources = [arn];
      event.region = 'eu-central-1';
      const metric = event.detail.configuration.metrics?.[0];
      if (metric && id) metric.metricStat.metric.dimensions = { InstanceId: id };
      // As if it had just happened: a state change more than 15 minutes old is stale
      if (fresh) event.detail.state.timestamp = alarmTime(clock);
      return event;
    };

    /** The alarm action's payload (alarmArn, alarmData; no resources, no detail-type) of the sample's state change. */
    const lambdaAction = (arn: string, id: string) => {
      const payload = JSON.parse(
        readFileSync('events/aws.cloudwatch/samples/lambda-action-instance.json', 'utf8'),
      ) as { alarmArn: string; alarmData: Record<string, unknown> & { alarmName: string } };
      payload.alarmArn = arn;
      payload.alarmData.alarmName = arn.split(':alarm:')[1] ?? '';
      const config = payload.alarmData.configuration as {
        metrics: { metricStat: { metric: { dimensions: object } } }[];
      };
      config.metrics[0]!.metricStat.metric.dimensions = { InstanceId: id };
      return payload;
    };
    /** The EventBridge event of that same state change (the sample's detail.state.timestamp). */
    const SAMPLE_CHANGE = new Date('2026-11-23T02:14:40.989Z');

    it('restarts from an alarm that invokes the function as its own Lambda action', async () => {
      // Prepare
      const [web] = await launch(1);
      const arn = await createAlarm(
        aws,
        'web-1-unhealthy',
        { InstanceId: web! },
        { [RESTART]: 'container:web' },
      );
      proxy.requests.length = 0;

      // Act: the alarm's Lambda action, then the same state change from the EventBridge rule
      const report = await invoke(lambdaAction(arn, web!));
      const viaRule = await invoke(alarmEvent(arn, { InstanceId: web! }, 'ALARM', SAMPLE_CHANGE));

      // Assess: restarted once
      expect(report.resources[0]).toMatchObject({ arn: instanceArn(web!), outcome: 'changed' });
      expect(sendCommands(proxy.requests).map((c) => [c.InstanceIds, c.Comment])).toEqual([
        [[web], 'nightshift ssm-restart: alarm web-1-unhealthy'],
      ]);
      expect(viaRule.resources[0]?.outcome).toBe('skipped');
    });

    it.each([
      ['the Lambda action and the EventBridge rule', 'both'],
      ['the EventBridge rule, twice', 'rule'],
    ])('restarts once for one state change delivered by %s, even with no cooldown', async (_, delivery) => {
      // Prepare: RESTART_COOLDOWN_MINUTES=0, so only the state change tells the deliveries apart
      const [web] = await launch(1);
      const arn = await createAlarm(
        aws,
        'web-1-unhealthy',
        { InstanceId: web! },
        { [RESTART]: 'container:web' },
      );
      const viaRule = alarmEvent(arn, { InstanceId: web! }, 'ALARM', SAMPLE_CHANGE);
      const first = delivery === 'both' ? lambdaAction(arn, web!) : viaRule;
      const noCooldown = { RESTART_COOLDOWN_MINUTES: '0' };
      proxy.requests.length = 0;

      // Act: the second delivery a minute later; then the alarm goes back to ALARM anew
      const one = await invoke(first, noCooldown);
      clock = new Date('2026-11-23T02:15:41Z');
      const two = await invoke(viaRule, noCooldown);
      const anew = await invoke(alarmNow(arn, { InstanceId: web! }), noCooldown);

      // Assess
      expect([one, two, anew].map((r) => r.resources[0]?.outcome)).toEqual(['changed', 'skipped', 'changed']);
      expect(two.resources[0]?.detail).toBe(
        'this state change of the alarm (ALARM at 2026-11-23T02:14:40.989Z) already restarted it at ' +
          "2026-11-23T02:14:41Z: a second delivery of it (the alarm's Lambda action and the EventBridge rule both " +
          'deliver it, or a retry) restarts nothing; not restarted for alarm web-1-unhealthy',
      );
      expect(sendCommands(proxy.requests)).toHaveLength(2);
    });

    it('restarts nothing for an alarm a mute rule mutes', async () => {
      const file = 'docs-current-single-metric-muted.json';
      const [web] = await launch(1);
      const name = fixture(file).detail.alarmName;
      const arn = await createAlarm(aws, name, { InstanceId: web! }, { [RESTART]: 'container:web' });
      proxy.requests.length = 0;

      const report = await invoke(published(file, arn, web));

      expect(report.resources).toEqual([
        {
          arn,
          type: 'cloudwatch-alarm',
          outcome: 'skipped',
          detail:
            `alarm ${name}: muted by arn:aws:cloudwatch:us-east-1:1234567890:alarm-mute-rule:testMute ` +
            '(2026-01-01T10:00:00.000+0000 to 2026-01-01T12:00:00.000+0000), so its actions are muted for this ' +
            'state change; nothing restarted',
        },
      ]);
      expect(proxy.requests.map((r) => r.operation)).toEqual(['ListTagsForResource']);
      expect((await instanceTags(aws, web!))[LAST_RESTART]).toBeUndefined();
    });

    it('fails a composite alarm tagged to restart, suppressed or not: it has no metrics to name a target', async () => {
      // Prepare: the published composite alarm (WaitPeriod), and its Lambda-action payload (not suppressed)
      const name = fixture('awsdocs-composite-with-suppressor.json').detail.alarmName;
      const arn = await createAlarm(aws, name, {}, { [RESTART]: 'container:web' });
      const action = fixture('lambda-action-powertools-py-composite.json') as unknown as {
        alarmArn: string;
        region: string;
        alarmData: { state: { timestamp: string } };
      };
      Object.assign(action, { alarmArn: arn, region: 'eu-central-1' });
      action.alarmData.state.timestamp = alarmTime(clock);
      proxy.requests.length = 0;

      // Act
      const suppressed = await settled(invoke(published('awsdocs-composite-with-suppressor.json', arn)));
      const plain = await settled(invoke(action));

      // Assess: failed (a misconfigured alarm pages), saying that AWS performs its actions after the wait
      expect(suppressed.resources).toEqual([
        {
          arn,
          type: 'cloudwatch-alarm',
          outcome: 'failed',
          detail:
            `alarm ${name} is a composite alarm (ALARM(ServerCpuTooHigh) OR ALARM(TotalNetworkTrafficTooHigh)): it ` +
            'has no metrics, so no InstanceId, AutoScalingGroupName or ClusterName/ServiceName dimension says what ' +
            'to restart; tag the metric alarms in its rule instead; its actions are suppressed for this state ' +
            'change (actionsSuppressedBy WaitPeriod: it waits up to 120 s for suppressor alarm ' +
            'ServiceMaintenanceAlarm to go into ALARM, and performs its actions after that wait unless the ' +
            'suppressor went into ALARM); nothing restarted',
        },
      ]);
      expect(plain.resources).toEqual([
        expect.objectContaining({
          outcome: 'failed',
          detail: expect.stringMatching(
            /^alarm CompositeDemo.Main is a composite alarm \(ALARM\(CompositeDemo.FirstChild\) OR ALARM\(CompositeDemo.SecondChild\)\): it has no metrics, .*in its rule instead; nothing restarted$/,
          ),
        }),
      ]);
      expect(mutations(proxy.requests)).toEqual([]);
    });

    it('restarts on a published alarm that is not muted', async () => {
      const [web] = await launch(1);
      const arn = await createAlarm(
        aws,
        'ServerCpuTooHigh',
        { InstanceId: web! },
        { [RESTART]: 'unit:nginx.service' },
      );

      const report = await invoke(published('awsdocs-single-metric-ec2-instance.json', arn, web));

      expect(report.resources[0]).toMatchObject({ arn: instanceArn(web!), outcome: 'changed' });
    });
  });

  it.each(['CODE_DEPLOY', 'EXTERNAL'] as const)(
    'fails a service deployed by %s on an alarm, and skips it on demand, before recording any restart',
    async (controller) => {
      // Prepare
      const serviceArn = await createService(aws, 'shop', 'web', RESTARTABLE, controller);
      const dimensions = { ClusterName: 'shop', ServiceName: 'web' };
      const arn = await createAlarm(aws, 'shop-web-memory-leak', dimensions, { [RESTART]: 'ecs-service' });
      proxy.requests.length = 0;

      // Act
      const report = await settled(invoke(alarmNow(arn, dimensions)));
      const onDemand = await invoke({ action: 'restart', ecsService: { cluster: 'shop', service: 'web' } });

      // Assess: the alarm can never restart it, so it pages (failed); on demand a person reads why (skipped)
      const why =
        `its deployment controller is ${controller}, which does not take UpdateService forceNewDeployment: ` +
        `start a new deployment with ${controller === 'CODE_DEPLOY' ? 'CodeDeploy' : 'the external controller'} ` +
        'instead; nothing redeployed, no restart recorded';
      expect(report.resources).toEqual([
        {
          arn: serviceArn,
          type: 'ecs-service',
          outcome: 'failed',
          detail:
            `${why}; alarm shop-web-memory-leak can never restart it: change the alarm's nightshift:restart tag, ` +
            'or its dimensions',
        },
      ]);
      expect(onDemand.resources).toEqual([
        { arn: serviceArn, type: 'ecs-service', outcome: 'skipped', detail: why },
      ]);
      expect(mutations(proxy.requests)).toEqual([]);
      expect((await describeService(aws, 'shop', 'web')).tags[LAST_RESTART]).toBeUndefined();
      expect(await records.read(`restart#${serviceArn}`)).toBeUndefined();
    },
  );

  it('returns the digest of a dry run, applies it minutes later, and refuses it once the plan changed', async () => {
    // Prepare: web instances, one restarted two minutes ago (its row says how long ago)
    const [a] = await launch(1, { app: 'web' });
    await tagInstance(aws, a!, { [LAST_RESTART]: 'at=2026-11-23T02:12:41Z what=container:web via=alarm' });
    const restart = { action: 'restart', targets: { tags: { app: 'web' } }, container: 'web' };

    // Act: confirm a dry run, apply it three minutes later
    const confirmed = await invoke({ ...restart, dryRun: true });
    clock = new Date('2026-11-23T02:17:41Z');
    const applied = await invoke({ ...restart, planDigest: confirmed.planDigest });
    // A second confirmation, then another web instance starts before the apply
    const again = await invoke({ ...restart, dryRun: true });
    const [b] = await launch(1, { app: 'web' });
    proxy.requests.length = 0;
    const refused = await invoke({ ...restart, planDigest: again.planDigest });

    // Assess
    expect(confirmed.planDigest).toMatch(/^[0-9a-f]{64}$/);
    expect(confirmed.resources[0]?.detail).toMatch(/last restarted 2 min ago/);
    expect(applied.resources[0]?.outcome).toBe('changed');
    expect(applied.resources[0]?.detail).toMatch(/last restarted 5 min ago/);
    // The apply restarted it: a plan confirmed before that is another plan now
    expect(again.planDigest).not.toBe(confirmed.planDigest);
    expect(refused.summary).toMatchObject({ changed: 0, skipped: 2 });
    expect(row(refused, b!)?.detail).toMatch(
      /^the plan changed since it was confirmed .*; nothing changed — look at the new plan and confirm again \(the new plan: docker restart web \(on-demand\)/,
    );
    expect(mutations(proxy.requests)).toEqual([]);
    expect(applied.planDigest).toBeUndefined();
  });

  it('refuses an apply confirmed before another restart of the target, and applies one confirmed after it', async () => {
    // Prepare: a person confirms a restart of web-1; an alarm restarts web-1 before they apply
    const [web] = await launch(1, { app: 'web' });
    const arn = await createAlarm(
      aws,
      'web-1-unhealthy',
      { InstanceId: web! },
      { [RESTART]: 'container:web' },
    );
    const restart = { action: 'restart', targets: { instanceIds: [web] }, container: 'web' };
    const confirmed = await invoke({ ...restart, dryRun: true });
    clock = new Date('2026-11-23T02:15:41Z');
    const alarm = await invoke(alarmNow(arn, { InstanceId: web! }));
    clock = new Date('2026-11-23T02:16:41Z');
    proxy.requests.length = 0;

    // Act
    const stale = await invoke({ ...restart, planDigest: confirmed.planDigest });
    const reconfirmed = await invoke({ ...restart, dryRun: true });
    const applied = await invoke({ ...restart, planDigest: reconfirmed.planDigest });

    // Assess: the person saw a plan from before that restart; they confirm what they see now
    expect(alarm.resources[0]?.outcome).toBe('changed');
    expect(stale.resources).toEqual([
      expect.objectContaining({
        outcome: 'skipped',
        detail: expect.stringMatching(/^the plan changed since it was confirmed/),
      }),
    ]);
    expect(reconfirmed.resources[0]?.detail).toMatch(/last restarted 1 min ago at 2026-11-23T02:15:41Z/);
    expect(applied.resources[0]?.outcome).toBe('changed');
    expect(sendCommands(proxy.requests).map((c) => c.Comment)).toEqual(['nightshift ssm-restart: on-demand']);
  });
});
