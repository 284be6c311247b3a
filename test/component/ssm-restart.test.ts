/**
 * What moto cannot show: SSM agents that are offline or not managed (moto has no
 * DescribeInstanceInformation), commands still running or not yet delivered when the Lambda must stop,
 * commands that fail with output, SSM not knowing an invocation yet, refused calls, and how batches
 * are sent and polled. AWS is simulated with aws-sdk-client-mock.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { mockClient } from 'aws-sdk-client-mock';
import { CreateTagsCommand, DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import {
  DescribeInstanceInformationCommand,
  GetCommandInvocationCommand,
  SendCommandCommand,
  SSMClient,
  type GetCommandInvocationCommandOutput,
} from '@aws-sdk/client-ssm';
import {
  DescribeServicesCommand,
  ECSClient,
  TagResourceCommand,
  UpdateServiceCommand,
} from '@aws-sdk/client-ecs';
import { AutoScalingClient, DescribeAutoScalingGroupsCommand } from '@aws-sdk/client-auto-scaling';
import { CloudWatchClient, ListTagsForResourceCommand } from '@aws-sdk/client-cloudwatch';
import { run, type Deps } from '#functions/ssm-restart/handler.ts';
import {
  deliveryTimeoutSeconds,
  pollDelayMs,
  shareLimit,
  wavesUpTo,
} from '#functions/ssm-restart/execute.ts';
import { OutOfTimeError } from '#shared/deadline.ts';
import { parseRestartInput } from '#events/ssm-restart/schema.ts';
import { readFileSync } from 'node:fs';
import { RunLeases } from '#shared/lease.ts';
import { runContext } from '#test/support/context.ts';
import { memoryLeaseStore } from '#test/support/ssm-estate.ts';

const ec2 = mockClient(EC2Client);
const ssm = mockClient(SSMClient);
const ecs = mockClient(ECSClient);
const cloudwatch = mockClient(CloudWatchClient);
const autoscaling = mockClient(AutoScalingClient);

const id = (n: number) => `i-${n.toString(16).padStart(17, '0')}`;
const arn = (n: number) => `arn:aws:ec2:eu-central-1:123456789012:instance/${id(n)}`;
const awsError = (name: string, message = name) => Object.assign(new Error(message), { name });

const deps = (config: Partial<Deps['config']> = {}): Deps => ({
  clients: {
    ec2: new EC2Client({}),
    ssm: new SSMClient({}),
    ecs: new ECSClient({}),
    autoscaling: new AutoScalingClient({}),
    cloudwatch: new CloudWatchClient({}),
  },
  config: {
    RESTART_COOLDOWN_MINUTES: 15,
    RESTART_MAX_PER_HOUR: 3,
    MAX_CONCURRENCY: '25%',
    MAX_ERRORS: '1',
    DRY_RUN: false,
    NIGHTSHIFT_STAGE: 'dev',
    AWS_REGION: 'eu-central-1',
    ...config,
  },
  now: () => new Date('2026-11-23T02:15:00Z'),
  pollDelayMs: () => 0,
  sleep: async () => undefined,
});
/** The lease table restart records are claimed in; a fresh one for every test. */
let store = memoryLeaseStore();
const ctx = (hasTime: () => boolean = () => true, holder = 'ssm-restart run 1') =>
  runContext({
    hasTime,
    leases: new RunLeases(
      store,
      { holder, token: `${holder} token` },
      () => new Date('2026-11-23T02:15:00Z'),
      () => 900_000,
    ),
  });
const restart = (count: number, extra: Record<string, unknown> = {}) =>
  parseRestartInput({
    action: 'restart',
    targets: { instanceIds: Array.from({ length: count }, (_, n) => id(n)) },
    container: 'web',
    ...extra,
  });

const RESTARTABLE = { Key: 'nightshift:restartable', Value: 'true' };

/** An alarm sample from events/aws.cloudwatch/samples, parsed as the handler does. */
const sample = (file: string) =>
  parseRestartInput(JSON.parse(readFileSync(`events/aws.cloudwatch/samples/${file}`, 'utf8')));
/** Dependencies whose clock reads `iso`. */
const at = (iso: string): Deps => ({ ...deps(), now: () => new Date(iso) });

/** `count` running instances i-…0, i-…1, …, opted in, their SSM agents online. */
const running = (
  count: number,
  tags: (n: number) => { Key: string; Value: string }[] = () => [RESTARTABLE],
) => {
  ec2.on(DescribeInstancesCommand).resolves({
    Reservations: [
      {
        OwnerId: '123456789012',
        Instances: Array.from({ length: count }, (_, n) => ({
          InstanceId: id(n),
          State: { Name: 'running' },
          Tags: tags(n),
        })),
      },
    ],
  });
  agents(Array.from({ length: count }, (_, n) => [id(n), 'Online']));
};

/** What SSM DescribeInstanceInformation says of each instance it is asked about; unlisted ones are not managed. */
const agents = (statuses: [string, string][]) =>
  ssm.on(DescribeInstanceInformationCommand).callsFake((input: { Filters?: { Values?: string[] }[] }) => {
    const asked = new Set(input.Filters?.[0]?.Values ?? []);
    return {
      InstanceInformationList: statuses
        .filter(([instanceId]) => asked.has(instanceId))
        .map(([InstanceId, PingStatus]) => ({ InstanceId, PingStatus, ResourceType: 'EC2Instance' })),
    };
  });

const invocation = (
  status: GetCommandInvocationCommandOutput['Status'],
  extra: Partial<GetCommandInvocationCommandOutput> = {},
) => ({ Status: status, StatusDetails: status, ...extra });

describe('ssm-restart with simulated AWS', () => {
  beforeEach(() => {
    store = memoryLeaseStore();
    ec2.reset();
    ssm.reset();
    ecs.reset();
    cloudwatch.reset();
    autoscaling.reset();
    ec2.on(CreateTagsCommand).resolves({});
    ssm.on(SendCommandCommand).resolves({ Command: { CommandId: 'cmd-1', Status: 'Pending' } });
  });

  it('reports commands still running when the Lambda must stop as in progress, never as failed', async () => {
    // Prepare: the first instance finishes, the second is still restarting when time runs out
    running(2);
    ssm.on(GetCommandInvocationCommand).resolves(invocation('InProgress'));
    ssm
      .on(GetCommandInvocationCommand, { InstanceId: id(0) })
      .resolves(invocation('Success', { ResponseCode: 0, StandardOutputContent: 'web\n' }));
    // Time runs out after the first round of polls
    const hasTime = () => ssm.commandCalls(GetCommandInvocationCommand).length < 2;

    // Act
    const report = await run(restart(2), ctx(hasTime), deps());

    // Assess
    expect(report.summary).toEqual({
      changed: 2,
      planned: 0,
      unchanged: 0,
      skipped: 0,
      undone: 0,
      waiting: 0,
      failed: 0,
    });
    expect(report.resources[0]?.detail).toBe(
      'docker restart web (on-demand); restart time recorded in tag nightshift:last-restart; Success, exit code 0; stdout: "web"',
    );
    expect(report.resources[1]).toEqual({
      arn: arn(1),
      type: 'ec2-instance',
      outcome: 'changed',
      detail:
        `still running when the Lambda had to stop: command cmd-1 is InProgress on ${id(1)} (docker restart web ` +
        '(on-demand); restart time recorded in tag nightshift:last-restart); follow it with ' +
        `aws ssm get-command-invocation --command-id cmd-1 --instance-id ${id(1)}`,
    });
    expect(ssm.commandCalls(GetCommandInvocationCommand).length).toBeGreaterThan(0);
  });

  it('fails an instance whose command failed, with exit code and a 200-character excerpt of stderr', async () => {
    running(2);
    const stderr = `Error response from daemon: No such container: web\n${'x'.repeat(300)}`;
    ssm
      .on(GetCommandInvocationCommand, { InstanceId: id(0) })
      .resolves(invocation('Success', { ResponseCode: 0 }));
    ssm
      .on(GetCommandInvocationCommand, { InstanceId: id(1) })
      .resolves(invocation('Failed', { ResponseCode: 1, StandardErrorContent: stderr }));

    const report = await run(restart(2), ctx(), deps());

    expect(report.resources.map((r) => r.outcome)).toEqual(['changed', 'failed']);
    const excerpt = `Error response from daemon: No such container: web ${'x'.repeat(149)}…`;
    expect(excerpt.length).toBe(201);
    expect(report.resources[1]?.error).toBe(
      `command cmd-1 Failed; exit code 1; stderr: ${JSON.stringify(excerpt)}`,
    );
  });

  it.each([
    ['TimedOut', 'TimedOut', undefined],
    ['Cancelled', 'Cancelled', undefined],
    ['Failed', 'Undeliverable', -1],
  ] as const)('fails an instance whose invocation ended %s (%s)', async (status, details, code) => {
    running(1);
    ssm.on(GetCommandInvocationCommand).resolves({
      Status: status,
      StatusDetails: details,
      ...(code !== undefined && { ResponseCode: code }),
    });

    const report = await run(restart(1), ctx(), deps());

    expect(report.resources[0]?.outcome).toBe('failed');
    expect(report.resources[0]?.error).toBe(
      `command cmd-1 ${status}${details === status ? '' : ` (${details})`}`,
    );
  });

  it('keeps polling while SSM does not know the invocation yet', async () => {
    running(1);
    ssm
      .on(GetCommandInvocationCommand)
      .rejectsOnce(awsError('InvocationDoesNotExist'))
      .resolvesOnce(invocation('InProgress'))
      .resolves(invocation('Success', { ResponseCode: 0 }));

    const report = await run(restart(1), ctx(), deps());

    expect(report.resources[0]?.outcome).toBe('changed');
    expect(ssm.commandCalls(GetCommandInvocationCommand)).toHaveLength(3);
  });

  it('tags every instance before the send, and sends nothing to one whose tag could not be written', async () => {
    running(3);
    ec2
      .on(CreateTagsCommand, { Resources: [id(1)] })
      .rejects(awsError('UnauthorizedOperation', 'You are not authorized to perform this operation.'));
    ssm.on(GetCommandInvocationCommand).resolves(invocation('Success', { ResponseCode: 0 }));

    const report = await run(restart(3), ctx(), deps());

    expect(ssm.commandCalls(SendCommandCommand)[0]?.args[0].input.InstanceIds).toEqual([id(0), id(2)]);
    expect(report.resources.map((r) => r.outcome)).toEqual(['changed', 'failed', 'changed']);
    expect(report.resources[1]?.error).toBe(
      'recording the restart time (CreateTags nightshift:last-restart) failed: UnauthorizedOperation: You are not ' +
        'authorized to perform this operation. (the role tags and sends commands only to instances tagged ' +
        'nightshift:restartable=true: tag the instance, or check the role); nothing sent',
    );
    const tags = ec2.commandCalls(CreateTagsCommand).map((c) => c.args[0].input);
    expect(tags[0]).toEqual({
      Resources: [id(0)],
      Tags: [
        { Key: 'nightshift:last-restart', Value: 'at=2026-11-23T02:15:00Z what=container:web via=on-demand' },
      ],
    });
  });

  it('explains an AccessDenied SendCommand by the tag the role requires', async () => {
    running(2);
    ssm
      .on(SendCommandCommand)
      .rejects(awsError('AccessDeniedException', 'User is not authorized to perform: ssm:SendCommand'));

    const report = await run(restart(2), ctx(), deps());

    expect(report.summary.failed).toBe(2);
    expect(report.resources[0]?.error).toBe(
      'SendCommand failed: AccessDeniedException: User is not authorized to perform: ssm:SendCommand (the role tags ' +
        'and sends commands only to instances tagged nightshift:restartable=true: tag the instance, or check the role); ' +
        'nothing ran, but the restart time was recorded in tag nightshift:last-restart, so alarm restarts of this ' +
        'instance wait for the cooldown (restart on demand to retry now)',
    );
  });

  it('sends a command once: after a failure that does not say whether SSM took it, the restart stays in progress', async () => {
    // Prepare: the send fails as sendOnce ends it after a 5xx or a timeout (test/unit/ssm-restart-send.test.ts)
    running(1);
    ssm
      .on(SendCommandCommand)
      .rejects(
        awsError(
          'SendCommandNotRetried',
          'InternalServerError: We encountered an internal error (not sent again: SSM may have taken it)',
        ),
      );

    const report = await run(restart(1), ctx(), deps());

    // Assess: the send carried sendOnce, the row says what may be running, and the claim is not released
    const [call] = ssm.commandCalls(SendCommandCommand);
    // Resolved as the client resolves it: inside the SDK's retry loop, where it sees every attempt
    const stack = new SSMClient({ region: 'eu-central-1' }).middlewareStack.concat(
      call!.args[0].middlewareStack,
    );
    expect(stack.identify()).toContain('nightshiftSendOnce - after retryMiddleware');
    const record = store.items.get(`restart#${arn(0)}`);
    expect(record?.data.runUntil).toBe('2026-11-23T02:31:00Z');
    expect(report.resources[0]).toMatchObject({
      outcome: 'failed',
      error:
        'SendCommand failed: SendCommandNotRetried: InternalServerError: We encountered an internal error (not sent ' +
        'again: SSM may have taken it); SSM may have taken it and be running it: check aws ssm list-commands ' +
        `--instance-id ${id(0)} (comment "nightshift ssm-restart: on-demand"); its restart stays in progress until ` +
        '2026-11-23T02:31:00Z (by then such a command can no longer run), and the restart time was recorded in tag ' +
        'nightshift:last-restart, so alarm restarts of this instance wait for the cooldown',
    });
  });

  it('sends every batch before waiting for any, sharing MAX_CONCURRENCY and MAX_ERRORS out among them', async () => {
    // Prepare: 60 instances; two fail, in the first batch
    running(60);
    ssm.on(SendCommandCommand).callsFake((input: { InstanceIds: string[] }) => ({
      Command: { CommandId: input.InstanceIds.includes(id(0)) ? 'cmd-1' : 'cmd-2', Status: 'Pending' },
    }));
    ssm.on(GetCommandInvocationCommand).resolves(invocation('Success', { ResponseCode: 0 }));
    for (const n of [3, 7]) {
      ssm
        .on(GetCommandInvocationCommand, { InstanceId: id(n) })
        .resolves(invocation('Failed', { ResponseCode: 1 }));
    }

    // Act
    const report = await run(restart(60), ctx(), deps({ MAX_ERRORS: '1', MAX_CONCURRENCY: '5' }));

    // Assess: both sends went out before the first poll, together allowed 5 at once and 1 error
    const order = ssm.calls().map((c) => (c.args[0] as { constructor: { name: string } }).constructor.name);
    expect(order.filter((name) => name !== 'DescribeInstanceInformationCommand').slice(0, 2)).toEqual([
      'SendCommandCommand',
      'SendCommandCommand',
    ]);
    const sends = ssm.commandCalls(SendCommandCommand).map((c) => c.args[0].input);
    expect(sends.map((x) => x.InstanceIds?.length)).toEqual([50, 10]);
    expect(sends.map((x) => [x.MaxConcurrency, x.MaxErrors])).toEqual([
      ['4', '1'],
      ['1', '0'],
    ]);
    expect(report.summary).toEqual({
      changed: 58,
      planned: 0,
      unchanged: 0,
      skipped: 0,
      undone: 0,
      waiting: 0,
      failed: 2,
    });
    expect(report.resources[3]?.error).toBe('command cmd-1 Failed; exit code 1');
    expect(ec2.commandCalls(CreateTagsCommand)).toHaveLength(60);
  });

  it.each([
    ['25%', [50, 50, 20], 1, ['25%', '25%', '25%']],
    ['5', [50, 50, 20], 1, ['2', '2', '1']],
    ['1', [50, 50, 20], 1, ['1', '1', '1']],
    ['1', [50, 50, 20], 0, ['1', '0', '0']],
    ['10', [50, 10], 0, ['8', '2']],
    ['0', [50, 10], 0, ['0', '0']],
    ['3', [50], 1, ['3']],
  ])('shares the limit %s among sends of %j (SSM minimum %i) as %j', (limit, sizes, min, shares) => {
    expect(shareLimit(limit, sizes, min)).toEqual(shares);
  });

  it('sets a short delivery timeout and a 5-minute execution timeout on the command', async () => {
    running(1);
    ssm.on(GetCommandInvocationCommand).resolves(invocation('Success', { ResponseCode: 0 }));

    await run(restart(1), ctx(), deps());

    expect(ssm.commandCalls(SendCommandCommand)[0]?.args[0].input).toEqual({
      DocumentName: 'AWS-RunShellScript',
      InstanceIds: [id(0)],
      Parameters: { commands: ['docker restart web'], executionTimeout: ['300'] },
      MaxConcurrency: '25%',
      MaxErrors: '1',
      Comment: 'nightshift ssm-restart: on-demand',
      TimeoutSeconds: 120,
    });
  });

  it('tells a command not yet delivered apart from one still running when the Lambda must stop', async () => {
    // Prepare: one agent has not picked the command up, one is delayed, one is running it
    running(3);
    ssm.on(GetCommandInvocationCommand, { InstanceId: id(0) }).resolves(invocation('Pending'));
    ssm.on(GetCommandInvocationCommand, { InstanceId: id(1) }).resolves(invocation('Delayed'));
    ssm.on(GetCommandInvocationCommand, { InstanceId: id(2) }).resolves(invocation('InProgress'));
    const hasTime = () => ssm.commandCalls(GetCommandInvocationCommand).length < 3;

    // Act
    const report = await run(restart(3), ctx(hasTime), deps());

    // Assess: none of them failed
    expect(report.summary).toEqual({
      changed: 3,
      planned: 0,
      unchanged: 0,
      skipped: 0,
      undone: 0,
      waiting: 0,
      failed: 0,
    });
    const follow = (n: number) =>
      `follow it with aws ssm get-command-invocation --command-id cmd-1 --instance-id ${id(n)}`;
    const what = '(docker restart web (on-demand); restart time recorded in tag nightshift:last-restart)';
    // Three instances at 25% run one at a time: three waves, so the send's delivery timeout is 120 + 2 × 300 s
    expect(report.resources.map((r) => r.detail)).toEqual([
      `not yet delivered to the instance when the Lambda had to stop: command cmd-1 is Pending on ${id(0)} ${what}; ` +
        `it runs only if it starts in time (delivery timeout 720 s after the send), else SSM ends it Delivery Timed Out; ${follow(0)}`,
      `not yet delivered to the instance when the Lambda had to stop: command cmd-1 is Delayed on ${id(1)} ${what}; ` +
        `it runs only if it starts in time (delivery timeout 720 s after the send), else SSM ends it Delivery Timed Out; ${follow(1)}`,
      `still running when the Lambda had to stop: command cmd-1 is InProgress on ${id(2)} ${what}; ${follow(2)}`,
    ]);
  });

  it('polls with a growing wait, and only the invocations that have not ended', async () => {
    // Prepare: the first instance ends at the first poll, the second at the fourth
    running(2);
    ssm
      .on(GetCommandInvocationCommand, { InstanceId: id(0) })
      .resolves(invocation('Success', { ResponseCode: 0 }));
    ssm
      .on(GetCommandInvocationCommand, { InstanceId: id(1) })
      .resolvesOnce(invocation('Pending'))
      .resolvesOnce(invocation('InProgress'))
      .resolvesOnce(invocation('InProgress'))
      .resolves(invocation('Success', { ResponseCode: 0 }));
    const slept: number[] = [];
    const d = { ...deps(), pollDelayMs, sleep: async (ms: number) => void slept.push(ms) };

    // Act
    const report = await run(restart(2), ctx(), d);

    // Assess: 2 s, 4 s, 8 s and 10 s, slept in 1-second slices; 2 + 1 + 1 + 1 polls
    expect([0, 1, 2, 3, 4, 20].map(pollDelayMs)).toEqual([2_000, 4_000, 8_000, 10_000, 10_000, 10_000]);
    expect(report.summary.changed).toBe(2);
    expect(slept.reduce((sum, ms) => sum + ms, 0)).toBe(24_000);
    expect(Math.max(...slept)).toBe(1_000);
    expect(ssm.commandCalls(GetCommandInvocationCommand).map((c) => c.args[0].input.InstanceId)).toEqual([
      id(0),
      id(1),
      id(1),
      id(1),
      id(1),
    ]);
  });

  it('stops waiting between polls as soon as the Lambda runs short of time', async () => {
    running(1);
    ssm.on(GetCommandInvocationCommand).resolves(invocation('InProgress'));
    let slept = 0;
    const d = { ...deps(), pollDelayMs, sleep: async (ms: number) => void (slept += ms) };

    const report = await run(
      restart(1),
      ctx(() => slept < 3_000),
      d,
    );

    expect(slept).toBe(3_000);
    expect(ssm.commandCalls(GetCommandInvocationCommand)).toHaveLength(1);
    expect(report.resources[0]?.detail).toMatch(
      /^still running when the Lambda had to stop: command cmd-1 is InProgress/,
    );
  });

  it('asks SSM which instances it manages, 50 ids a call, following every page', async () => {
    // Prepare: 120 instances; SSM answers the first call in two pages
    running(120);
    type Input = { Filters: { Key: string; Values: string[] }[]; MaxResults?: number; NextToken?: string };
    const asked: Input[] = [];
    ssm.on(DescribeInstanceInformationCommand).callsFake((input: Input) => {
      // A copy: the paginator reuses its input object for the next page.
      asked.push(structuredClone(input));
      const ids = input.Filters[0]?.Values ?? [];
      const first = ids.includes(id(0));
      const listed = !first ? ids : input.NextToken === 'page-2' ? ids.slice(25) : ids.slice(0, 25);
      return {
        InstanceInformationList: listed.map((InstanceId) => ({ InstanceId, PingStatus: 'Online' })),
        ...(first && input.NextToken === undefined && { NextToken: 'page-2' }),
      };
    });

    // Act
    const report = await run(restart(120, { dryRun: true }), ctx(), deps());

    // Assess
    expect(
      asked.map((a) => [a.Filters[0]?.Key, a.Filters[0]?.Values.length, a.MaxResults, a.NextToken]),
    ).toEqual([
      ['InstanceIds', 50, 50, undefined],
      ['InstanceIds', 50, 50, 'page-2'],
      ['InstanceIds', 50, 50, undefined],
      ['InstanceIds', 20, 50, undefined],
    ]);
    expect(asked.flatMap((a) => (a.NextToken ? [] : a.Filters[0]?.Values))).toEqual(
      Array.from({ length: 120 }, (_, n) => id(n)),
    );
    expect(report.summary).toMatchObject({ planned: 120, skipped: 0 });
  });

  it('reads the groups of the instances it restarts, 50 names a call, following every page, and skips the parked ones', async () => {
    // Prepare: 120 instances, each launched by its own group; every third group is parked
    const group = (n: number) => `web-${n}`;
    running(120, (n) => [RESTARTABLE, { Key: 'aws:autoscaling:groupName', Value: group(n) }]);
    type Input = { AutoScalingGroupNames: string[]; MaxRecords?: number; NextToken?: string };
    const asked: Input[] = [];
    autoscaling.on(DescribeAutoScalingGroupsCommand).callsFake((input: Input) => {
      asked.push(structuredClone(input));
      const names = input.AutoScalingGroupNames;
      // The first call answers in two pages
      const paged = names.includes(group(0));
      const listed = !paged ? names : input.NextToken === 'page-2' ? names.slice(25) : names.slice(0, 25);
      return {
        AutoScalingGroups: listed.map((name) => {
          const n = Number(name.slice(4));
          return {
            AutoScalingGroupName: name,
            Instances: [{ InstanceId: id(n), LifecycleState: 'InService' }],
            Tags: n % 3 === 0 ? [{ Key: 'nightshift:stopped', Value: 'min=1 desired=1 max=1' }] : [],
          };
        }),
        ...(paged && input.NextToken === undefined && { NextToken: 'page-2' }),
      };
    });

    // Act
    const report = await run(restart(120, { dryRun: true }), ctx(), deps());

    // Assess
    expect(asked.map((a) => [a.AutoScalingGroupNames.length, a.MaxRecords, a.NextToken])).toEqual([
      [50, 100, undefined],
      [50, 100, 'page-2'],
      [50, 100, undefined],
      [20, 100, undefined],
    ]);
    expect(report.summary).toMatchObject({ planned: 80, skipped: 40 });
    const skipped = report.resources.filter((r) => r.outcome === 'skipped');
    expect(skipped.map((r) => r.arn)).toEqual(Array.from({ length: 40 }, (_, k) => arn(3 * k)));
    expect(skipped[0]?.detail).toMatch(/^its Auto Scaling group web-0 is parked by nightshift/);
  });

  it('skips instances SSM does not manage or whose agent is offline: never tagged, never sent', async () => {
    // Prepare: i-…0 online, i-…1 lost its connection, i-…2 is not a managed node at all
    running(3);
    agents([
      [id(0), 'Online'],
      [id(1), 'ConnectionLost'],
    ]);
    ssm.on(GetCommandInvocationCommand).resolves(invocation('Success', { ResponseCode: 0 }));

    // Act
    const report = await run(restart(3), ctx(), deps({ MAX_ERRORS: '0' }));

    // Assess
    expect(ssm.commandCalls(SendCommandCommand).map((c) => c.args[0].input.InstanceIds)).toEqual([[id(0)]]);
    expect(ec2.commandCalls(CreateTagsCommand).map((c) => c.args[0].input.Resources)).toEqual([[id(0)]]);
    expect(report.summary).toEqual({
      changed: 1,
      planned: 0,
      unchanged: 0,
      skipped: 2,
      undone: 0,
      waiting: 0,
      failed: 0,
    });
    expect(report.resources.slice(1)).toEqual([
      {
        arn: arn(1),
        type: 'ec2-instance',
        outcome: 'skipped',
        detail:
          'not an SSM managed instance, or its agent is offline (PingStatus ConnectionLost); nothing sent',
      },
      {
        arn: arn(2),
        type: 'ec2-instance',
        outcome: 'skipped',
        detail:
          'not an SSM managed instance, or its agent is offline (SSM DescribeInstanceInformation does not list it); nothing sent',
      },
    ]);
  });

  it('skips them for an alarm too', async () => {
    running(2);
    agents([[id(0), 'Inactive']]);
    cloudwatch
      .on(ListTagsForResourceCommand)
      .resolves({ Tags: [{ Key: 'nightshift:restart', Value: 'container:web' }] });
    autoscaling.on(DescribeAutoScalingGroupsCommand, { AutoScalingGroupNames: ['web-fleet'] }).resolves({
      AutoScalingGroups: [
        {
          AutoScalingGroupName: 'web-fleet',
          Instances: [0, 1].map((n) => ({ InstanceId: id(n), LifecycleState: 'InService' })),
        } as never,
      ],
    });
    const event = JSON.parse(
      readFileSync('events/aws.cloudwatch/samples/alarm-autoscaling-group.json', 'utf8'),
    );

    const report = await run(parseRestartInput(event), ctx(), deps());

    expect(report.resources.map((r) => [r.outcome, r.detail.split(';')[0]])).toEqual([
      ['skipped', 'not an SSM managed instance, or its agent is offline (PingStatus Inactive)'],
      [
        'skipped',
        'not an SSM managed instance, or its agent is offline (SSM DescribeInstanceInformation does not list it)',
      ],
    ]);
    expect(ec2.commandCalls(CreateTagsCommand)).toHaveLength(0);
    expect(ssm.commandCalls(SendCommandCommand)).toHaveLength(0);
  });

  it('asks again one id at a time when SSM refuses a batch with InvalidInstanceId', async () => {
    running(3);
    ssm
      .on(DescribeInstanceInformationCommand)
      .rejects(awsError('InvalidInstanceId', 'Instances [[i-00000000000000001]] not in a valid state'));
    for (const n of [0, 2]) {
      ssm
        .on(DescribeInstanceInformationCommand, { Filters: [{ Key: 'InstanceIds', Values: [id(n)] }] })
        .resolves({ InstanceInformationList: [{ InstanceId: id(n), PingStatus: 'Online' }] });
    }

    const report = await run(restart(3, { dryRun: true }), ctx(), deps());

    expect(ssm.commandCalls(DescribeInstanceInformationCommand)).toHaveLength(4);
    expect(report.resources.map((r) => r.outcome)).toEqual(['planned', 'skipped', 'planned']);
  });

  it('skips instances without nightshift:restartable=true: never tagged, never sent, never an error', async () => {
    running(3, (n) => (n === 1 ? [{ Key: 'app', Value: 'web' }] : [RESTARTABLE]));
    ssm.on(GetCommandInvocationCommand).resolves(invocation('Success', { ResponseCode: 0 }));

    const report = await run(restart(3), ctx(), deps({ MAX_ERRORS: '0' }));

    expect(report.summary).toEqual({
      changed: 2,
      planned: 0,
      unchanged: 0,
      skipped: 1,
      undone: 0,
      waiting: 0,
      failed: 0,
    });
    expect(report.resources[1]?.detail).toBe(
      'not opted in: the instance has no nightshift:restartable=true tag; nothing sent',
    );
    expect(ssm.commandCalls(SendCommandCommand).map((c) => c.args[0].input.InstanceIds)).toEqual([
      [id(0), id(2)],
    ]);
    expect(ec2.commandCalls(CreateTagsCommand).flatMap((c) => c.args[0].input.Resources)).toEqual([
      id(0),
      id(2),
    ]);
  });

  it('reports sends the deadline left unstarted as undone, and claims, tags and sends nothing for them', async () => {
    running(2);

    const report = await run(
      restart(2),
      ctx(() => false),
      deps(),
    );

    expect(report.summary).toMatchObject({ undone: 2, skipped: 0, changed: 0 });
    expect(report.resources[0]?.detail).toBe(
      'not started: the Lambda was about to time out; the next run starts with it (would have: docker restart web ' +
        '(on-demand); restart time recorded in tag nightshift:last-restart)',
    );
    expect(store.writes).toEqual([]);
    expect(ec2.commandCalls(CreateTagsCommand)).toHaveLength(0);
    expect(ssm.commandCalls(SendCommandCommand)).toHaveLength(0);
  });

  it('reports a failed redeploy after the restart time was recorded on the service', async () => {
    ecs.on(DescribeServicesCommand).resolves({
      services: [
        {
          serviceArn: 'arn:aws:ecs:eu-central-1:123456789012:service/shop/web',
          serviceName: 'web',
          status: 'ACTIVE',
          tags: [{ key: 'nightshift:restartable', value: 'true' }],
        },
      ],
    });
    ecs.on(TagResourceCommand).resolves({});
    ecs.on(UpdateServiceCommand).rejects(awsError('ServiceNotActiveException', 'Service was not ACTIVE.'));

    const report = await run(
      parseRestartInput({ action: 'restart', ecsService: { cluster: 'shop', service: 'web' } }),
      ctx(),
      deps(),
    );

    expect(report.resources[0]).toMatchObject({ outcome: 'failed', type: 'ecs-service' });
    expect(report.resources[0]?.error).toBe(
      'UpdateService failed: ServiceNotActiveException: Service was not ACTIVE.; the restart time was recorded in ' +
        'tag nightshift:last-restart, so alarm restarts of this service wait for the cooldown (restart on demand to retry now)',
    );
    expect(ecs.commandCalls(UpdateServiceCommand)[0]?.args[0].input).toEqual({
      cluster: 'shop',
      service: 'web',
      forceNewDeployment: true,
    });
  });

  it('redeploys and tags no service without nightshift:restartable=true, and explains a refusal by IAM', async () => {
    // Prepare: shop/web is not opted in; shop/api is, but the role refuses (the tag was just removed)
    ecs.on(DescribeServicesCommand).resolves({
      services: ['web', 'api'].map((name) => ({
        serviceArn: `arn:aws:ecs:eu-central-1:123456789012:service/shop/${name}`,
        serviceName: name,
        status: 'ACTIVE',
        tags: name === 'api' ? [{ key: 'nightshift:restartable', value: 'true' }] : [],
      })),
    });
    ecs
      .on(TagResourceCommand)
      .rejects(awsError('AccessDeniedException', 'User is not authorized to perform: ecs:TagResource'));
    const redeploy = (service: string) =>
      run(parseRestartInput({ action: 'restart', ecsService: { cluster: 'shop', service } }), ctx(), deps());

    // Act
    const web = await redeploy('web');
    const api = await redeploy('api');

    // Assess
    expect(web.resources[0]).toMatchObject({
      outcome: 'skipped',
      detail: 'not opted in: the service has no nightshift:restartable=true tag; nothing redeployed',
    });
    expect(api.resources[0]?.error).toBe(
      'recording the restart time (TagResource nightshift:last-restart) failed: AccessDeniedException: User is not ' +
        'authorized to perform: ecs:TagResource (the role tags and redeploys only services tagged ' +
        'nightshift:restartable=true: tag the service, or check the role); nothing redeployed',
    );
    expect(ecs.commandCalls(TagResourceCommand).map((c) => c.args[0].input.resourceArn)).toEqual([
      'arn:aws:ecs:eu-central-1:123456789012:service/shop/api',
    ]);
    expect(ecs.commandCalls(UpdateServiceCommand)).toHaveLength(0);
  });

  it('does nothing for an alarm deleted before its event was handled', async () => {
    cloudwatch.on(ListTagsForResourceCommand).rejects(awsError('ResourceNotFound', 'alarm not found'));
    const event = JSON.parse(readFileSync('events/aws.cloudwatch/samples/alarm-instance.json', 'utf8'));

    const report = await run(parseRestartInput(event), ctx(), deps());

    expect(report.resources).toEqual([]);
    expect(ec2.calls()).toHaveLength(0);
  });

  describe('stale alarm events', () => {
    beforeEach(() => {
      cloudwatch
        .on(ListTagsForResourceCommand)
        .resolves({ Tags: [{ Key: 'nightshift:restart', Value: 'container:web' }] });
      running(1);
      ec2.on(DescribeInstancesCommand).resolves({
        Reservations: [
          {
            OwnerId: '123456789012',
            Instances: [
              { InstanceId: 'i-0a1b2c3d4e5f60718', State: { Name: 'running' }, Tags: [RESTARTABLE] },
            ],
          },
        ],
      });
      agents([['i-0a1b2c3d4e5f60718', 'Online']]);
      ssm.on(GetCommandInvocationCommand).resolves(invocation('Success', { ResponseCode: 0 }));
    });

    it.each(['alarm-instance.json', 'lambda-action-instance.json'])(
      'skips a state change more than 15 minutes old, by its detail.state.timestamp (%s)',
      async (file) => {
        // The alarm went to ALARM at 02:14:40.989 (its `+0000` time), handled 15 min 1 s later
        const report = await run(sample(file), ctx(), at('2026-11-23T02:29:41.989Z'));

        expect(report.resources).toEqual([
          {
            arn: 'arn:aws:cloudwatch:eu-central-1:123456789012:alarm:web-1-container-unhealthy',
            type: 'cloudwatch-alarm',
            outcome: 'skipped',
            detail:
              'alarm web-1-container-unhealthy: the alarm changed state 15 minutes ago (at 2026-11-23T02:14:40.989Z); ' +
              'not restarted so late (alarm events more than 15 minutes old are stale); nothing restarted',
          },
        ]);
        expect(ec2.calls()).toHaveLength(0);
        expect(ssm.commandCalls(SendCommandCommand)).toHaveLength(0);
      },
    );

    it('restarts on a state change exactly 15 minutes old', async () => {
      const report = await run(sample('lambda-action-instance.json'), ctx(), at('2026-11-23T02:29:40.989Z'));

      expect(report.resources.map((r) => r.outcome)).toEqual(['changed']);
    });
  });

  describe('alarms on ECS services that cannot be redeployed', () => {
    beforeEach(() => {
      ecs.on(DescribeServicesCommand).resolves({
        services: [
          {
            serviceArn: 'arn:aws:ecs:eu-central-1:123456789012:service/shop/web',
            serviceName: 'web',
            status: 'ACTIVE',
            tags: [{ key: 'nightshift:restartable', value: 'true' }],
            deploymentController: { type: 'CODE_DEPLOY' },
          },
        ],
      });
    });

    it('fails a CODE_DEPLOY service on the alarm path, so the misconfigured alarm pages someone', async () => {
      cloudwatch
        .on(ListTagsForResourceCommand)
        .resolves({ Tags: [{ Key: 'nightshift:restart', Value: 'ecs-service' }] });
      const report = await run(sample('alarm-ecs-service.json'), ctx(), at('2026-11-23T04:21:00Z'));

      expect(report.resources.map((r) => [r.arn, r.outcome])).toEqual([
        ['arn:aws:ecs:eu-central-1:123456789012:service/shop/web', 'failed'],
      ]);
      expect(report.resources[0]?.detail).toMatch(
        /^its deployment controller is CODE_DEPLOY, which does not take UpdateService forceNewDeployment: start a new deployment with CodeDeploy instead; nothing redeployed, no restart recorded; alarm .* can never restart it: change the alarm's nightshift:restart tag, or its dimensions$/,
      );
      expect(ecs.commandCalls(UpdateServiceCommand)).toHaveLength(0);
      expect(ecs.commandCalls(TagResourceCommand)).toHaveLength(0);
    });

    it('skips it on demand', async () => {
      const report = await run(
        parseRestartInput({ action: 'restart', ecsService: { cluster: 'shop', service: 'web' } }),
        ctx(),
        deps(),
      );

      expect(report.resources.map((r) => [r.outcome, r.detail])).toEqual([
        [
          'skipped',
          'its deployment controller is CODE_DEPLOY, which does not take UpdateService forceNewDeployment: start a ' +
            'new deployment with CodeDeploy instead; nothing redeployed, no restart recorded',
        ],
      ]);
    });
  });

  describe('sends that fit their delivery timeout', () => {
    it.each([
      [1, '25%', 120],
      [12, '25%', 1_020],
      [50, '25%', 1_320],
      [50, '100%', 120],
      [50, '2', 7_320],
      [50, '1', 14_820],
      [3, '10', 120],
    ])(
      'gives a send of %i instances at MaxConcurrency %s a TimeoutSeconds of %i',
      (size, concurrency, seconds) => {
        expect(deliveryTimeoutSeconds(size, concurrency)).toBe(seconds);
      },
    );

    it('bounds the waves of any send of up to n instances: a percentage of fewer can take more waves', () => {
      // 25% of 8 is 2 at a time (4 waves), of 7 is 1 at a time (7 waves)
      expect(Math.ceil(8 / 2)).toBeLessThan(7);
      expect(wavesUpTo(8, '25%')).toBe(7);
      expect(wavesUpTo(5, '25%')).toBe(5);
      expect(wavesUpTo(50, '25%')).toBe(7);
      expect(wavesUpTo(50, '2')).toBe(25);
      for (let n = 1; n < 50; n++) {
        expect(wavesUpTo(n + 1, '25%')).toBeGreaterThanOrEqual(wavesUpTo(n, '25%'));
        expect(wavesUpTo(n, '10%')).toBeGreaterThanOrEqual(Math.ceil(n / Math.max(1, Math.floor(n / 10))));
      }
    });

    it('keeps the restart in progress until the command it sent can no longer run, when fewer are sent than planned', async () => {
      // Prepare: 8 planned at 25% (2 at a time: 1,020 s); 3 cannot be tagged, so 5 are sent (1 at a time:
      // 5 waves, TimeoutSeconds 1,320 s); the Lambda stops right after the send
      running(8);
      for (const n of [1, 3, 6])
        ec2.on(CreateTagsCommand, { Resources: [id(n)] }).rejects(awsError('UnauthorizedOperation', 'no'));
      ssm.on(GetCommandInvocationCommand).resolves(invocation('Pending'));
      const hasTime = () => ssm.commandCalls(SendCommandCommand).length < 1;

      // Act
      await run(restart(8), ctx(hasTime), deps());

      // Assess: what was sent, and until when the record says the restart is in progress
      const [sent] = ssm.commandCalls(SendCommandCommand).map((c) => c.args[0].input);
      expect([sent?.InstanceIds?.length, sent?.TimeoutSeconds]).toEqual([5, 1_320]);
      const sentAt = new Date('2026-11-23T02:15:00Z').getTime();
      const lastRun = sentAt + ((sent?.TimeoutSeconds ?? 0) + 300) * 1000;
      for (const n of [0, 2, 4, 5, 7]) {
        const record = store.items.get(`restart#${arn(n)}`);
        // The last wave may start 1,320 s after the send and run 300 s: a minute's margin after that
        expect(record?.data).toMatchObject({ runUntil: '2026-11-23T02:43:00Z', command: 'cmd-1' });
        expect(Date.parse(record?.data.runUntil ?? '')).toBeGreaterThan(lastRun);
        // Claimed before the send with a bound for any send of up to 8: never shorter than the one sent
        const claimed = store.writes.find((w) => w.scope === `restart#${arn(n)}`)?.lease;
        expect(Date.parse(claimed?.data.runUntil ?? '')).toBeGreaterThan(lastRun);
      }
    });

    it('sizes the TimeoutSeconds of each send to its waves, so the last wave is not expired before its turn', async () => {
      // Prepare: 200 instances at 25%: four sends of 50, each run 12 at a time in 5 waves
      running(200);
      ssm.on(GetCommandInvocationCommand).resolves(invocation('Success', { ResponseCode: 0 }));

      // Act
      const report = await run(restart(200), ctx(), deps());
      const counted = await run(
        restart(200),
        ctx(() => true, 'ssm-restart run 2'),
        deps({ MAX_CONCURRENCY: '5' }),
      );

      // Assess: 120 s for the first wave, 300 s (the execution timeout) more for each wave after it
      const sends = ssm.commandCalls(SendCommandCommand).map((c) => c.args[0].input);
      expect(
        sends.slice(0, 4).map((x) => [x.InstanceIds?.length, x.MaxConcurrency, x.TimeoutSeconds]),
      ).toEqual([
        [50, '25%', 1_320],
        [50, '25%', 1_320],
        [50, '25%', 1_320],
        [50, '25%', 1_320],
      ]);
      // A count of 5 shared among four sends: 2, 1, 1 and 1 at a time
      expect(sends.slice(4).map((x) => [x.MaxConcurrency, x.TimeoutSeconds])).toEqual([
        ['2', 7_320],
        ['1', 14_820],
        ['1', 14_820],
        ['1', 14_820],
      ]);
      expect(report.summary.changed).toBe(200);
      expect(counted.summary.changed).toBe(200);
    });
  });

  describe('reads past the first page, within the deadline', () => {
    const page = (from: number, to: number, NextToken?: string) => ({
      Reservations: [
        {
          OwnerId: '123456789012',
          Instances: Array.from({ length: to - from }, (_, n) => ({
            InstanceId: id(from + n),
            State: { Name: 'running' as const },
            Tags: [RESTARTABLE, { Key: 'app', Value: 'web' }],
          })),
        },
      ],
      ...(NextToken && { NextToken }),
    });
    /** Answers DescribeInstances with `pages` in turn, noting each request's token (the paginator reuses its input). */
    const describeInPages = (pages: ReturnType<typeof page>[]) => {
      const tokens: (string | undefined)[] = [];
      ec2.on(DescribeInstancesCommand).callsFake(async (input: { NextToken?: string }) => {
        tokens.push(input.NextToken);
        return pages[tokens.length - 1];
      });
      return tokens;
    };
    const byTags = (extra: Record<string, unknown> = {}) =>
      parseRestartInput({ action: 'restart', targets: { tags: { app: 'web' } }, container: 'web', ...extra });

    it('follows every page of DescribeInstances', async () => {
      const tokens = describeInPages([page(0, 1000, 'page-2'), page(1000, 1500, 'page-3'), page(1500, 1501)]);
      agents(Array.from({ length: 1501 }, (_, n) => [id(n), 'Online']));

      const report = await run(byTags({ dryRun: true }), ctx(), deps());

      expect(tokens).toEqual([undefined, 'page-2', 'page-3']);
      expect(report.summary).toMatchObject({ planned: 1501, skipped: 0 });
    });

    it('stops reading when the Lambda runs short of time, before it changes anything', async () => {
      const tokens = describeInPages([page(0, 1000, 'page-2'), page(1000, 1001)]);
      agents(Array.from({ length: 1001 }, (_, n) => [id(n), 'Online']));
      const hasTime = () => tokens.length < 1;

      await expect(run(byTags(), ctx(hasTime), deps())).rejects.toThrow(new OutOfTimeError('EC2 instances'));

      expect(tokens).toEqual([undefined]);
      expect(store.writes).toEqual([]);
      expect(ec2.commandCalls(CreateTagsCommand)).toHaveLength(0);
      expect(ssm.commandCalls(SendCommandCommand)).toHaveLength(0);
    });

    it('follows every page of DescribeAutoScalingGroups', async () => {
      // Prepare: the group comes on the second page
      running(2);
      cloudwatch
        .on(ListTagsForResourceCommand)
        .resolves({ Tags: [{ Key: 'nightshift:restart', Value: 'container:web' }] });
      const asked: unknown[] = [];
      autoscaling.on(DescribeAutoScalingGroupsCommand).callsFake(async (input: { NextToken?: string }) => {
        asked.push(structuredClone(input));
        return input.NextToken === undefined
          ? { AutoScalingGroups: [], NextToken: 'page-2' }
          : {
              AutoScalingGroups: [
                {
                  AutoScalingGroupName: 'web-fleet',
                  Instances: [0, 1].map((n) => ({ InstanceId: id(n), LifecycleState: 'InService' })),
                },
              ],
            };
      });
      const event = JSON.parse(
        readFileSync('events/aws.cloudwatch/samples/alarm-autoscaling-group.json', 'utf8'),
      );

      // Act
      const report = await run(parseRestartInput(event), ctx(), deps({ DRY_RUN: true }));

      // Assess
      expect(asked).toEqual([
        { AutoScalingGroupNames: ['web-fleet'], MaxRecords: 100 },
        { AutoScalingGroupNames: ['web-fleet'], MaxRecords: 100, NextToken: 'page-2' },
      ]);
      expect(report.resources.map((r) => [r.arn, r.outcome])).toEqual([
        [arn(0), 'planned'],
        [arn(1), 'planned'],
      ]);
    });

    it('asks ECS about the services of an alarm 10 a call', async () => {
      // Prepare: an alarm on 12 services of one cluster, all opted in
      const names = Array.from({ length: 12 }, (_, n) => `web-${n}`);
      const event = JSON.parse(readFileSync('events/aws.cloudwatch/samples/alarm-ecs-service.json', 'utf8'));
      event.detail.configuration.metrics = names.map((name, n) => ({
        id: `m${n}`,
        metricStat: { metric: { dimensions: { ClusterName: 'shop', ServiceName: name } } },
      }));
      cloudwatch
        .on(ListTagsForResourceCommand)
        .resolves({ Tags: [{ Key: 'nightshift:restart', Value: 'ecs-service' }] });
      ecs.on(DescribeServicesCommand).callsFake(async (input: { services: string[] }) => ({
        services: input.services.map((name) => ({
          serviceArn: `arn:aws:ecs:eu-central-1:123456789012:service/shop/${name}`,
          serviceName: name,
          status: 'ACTIVE',
          deploymentController: { type: 'ECS' },
          tags: [{ key: 'nightshift:restartable', value: 'true' }],
        })),
      }));
      ecs.on(TagResourceCommand).resolves({});
      ecs.on(UpdateServiceCommand).resolves({});

      // Act
      const report = await run(parseRestartInput(event), ctx(), deps());

      // Assess
      expect(ecs.commandCalls(DescribeServicesCommand).map((c) => c.args[0].input.services?.length)).toEqual([
        10, 2,
      ]);
      expect(report.summary).toMatchObject({ changed: 12 });
      expect(store.items.size).toBe(12);
    });
  });

  describe('deadlines and claims', () => {
    it('sends the batches that fit before the deadline and reports the rest undone, starting with what was left last time', async () => {
      // Prepare: 60 instances; the previous run left i-…59 undone; time runs out after the first send
      running(60);
      ssm.on(GetCommandInvocationCommand).resolves(invocation('Success', { ResponseCode: 0 }));
      const hasTime = () => ssm.commandCalls(SendCommandCommand).length < 1;
      const carried = runContext({
        hasTime,
        leases: new RunLeases(
          store,
          { holder: 'run', token: 'run' },
          () => new Date(),
          () => 900_000,
        ),
        carried: { restart: [arn(59)] },
      });

      // Act
      const report = await run(restart(60), carried, deps());

      // Assess
      const sent = ssm.commandCalls(SendCommandCommand).map((c) => c.args[0].input.InstanceIds);
      expect(sent).toEqual([[id(59), ...Array.from({ length: 49 }, (_, n) => id(n))]]);
      expect(report.summary).toMatchObject({ changed: 50, undone: 10 });
      expect(report.resources[58]).toMatchObject({ arn: arn(58), outcome: 'undone' });
      expect(report.resources[58]?.detail).toMatch(
        /^not started: the Lambda was about to time out; the next run starts with it/,
      );
      // Nothing was claimed or tagged for the undone ones
      expect(store.items.has(`restart#${arn(58)}`)).toBe(false);
      expect(ec2.commandCalls(CreateTagsCommand)).toHaveLength(50);
    });

    it('keeps a restart in progress as long as SSM may still start it, after the Lambda has stopped', async () => {
      // Prepare: 50 instances at 25%: SSM may start the last wave up to 1,320 s after the send and run it
      // 300 s; when the Lambda must stop, i-…0 is done, the others are still waiting or running
      running(50);
      ssm.on(GetCommandInvocationCommand).resolves(invocation('Pending'));
      ssm
        .on(GetCommandInvocationCommand, { InstanceId: id(0) })
        .resolves(invocation('Success', { ResponseCode: 0 }));
      const hasTime = () => ssm.commandCalls(GetCommandInvocationCommand).length < 50;

      // Act
      await run(restart(50), ctx(hasTime), deps());
      const onDemand = await run(
        restart(2),
        ctx(() => true, 'ssm-restart run 2'),
        deps(),
      );

      // Assess
      expect(store.items.get(`restart#${arn(0)}`)?.data.runUntil).toBe('2026-11-23T02:15:00Z');
      expect(store.items.get(`restart#${arn(1)}`)?.data).toMatchObject({
        runUntil: '2026-11-23T02:43:00Z',
        command: 'cmd-1',
      });
      expect(onDemand.resources.map((r) => r.outcome)).toEqual(['changed', 'skipped']);
      expect(onDemand.resources[1]?.detail).toMatch(
        /^another restart of it is in progress: container:web via on-demand, by ssm-restart run 1, since 2026-11-23T02:15:00Z \(that run ends by 2026-11-23T02:43:00Z; its SSM command cmd-1 is Pending\)/,
      );
    });

    it('restarts a target once SSM says the command of the restart in progress has ended, without waiting for its record', async () => {
      // Prepare: a run sent to 2 instances at 25% and stopped before either ended; its record says
      // "in progress" until 02:30:00 at least
      running(2);
      ssm.on(SendCommandCommand).resolves({ Command: { CommandId: 'cmd-1', Status: 'Pending' } });
      ssm.on(GetCommandInvocationCommand).resolves(invocation('InProgress'));
      await run(
        restart(2),
        ctx(() => ssm.commandCalls(SendCommandCommand).length < 1),
        deps(),
      );
      // Later (same clock): i-…0's command ended, i-…1's still runs
      ssm.reset();
      agents([
        [id(0), 'Online'],
        [id(1), 'Online'],
      ]);
      ssm.on(SendCommandCommand).resolves({ Command: { CommandId: 'cmd-2', Status: 'Pending' } });
      ssm.on(GetCommandInvocationCommand).resolves(invocation('Success', { ResponseCode: 0 }));
      ssm
        .on(GetCommandInvocationCommand, { CommandId: 'cmd-1', InstanceId: id(1) })
        .resolves(invocation('InProgress'));

      // Act
      const report = await run(
        restart(2),
        ctx(() => true, 'ssm-restart run 2'),
        deps(),
      );

      // Assess: asked SSM about the first run's command, and restarted i-…0 only
      expect(
        ssm
          .commandCalls(GetCommandInvocationCommand)
          .map((c) => c.args[0].input)
          .filter((i) => i.CommandId === 'cmd-1'),
      ).toEqual([
        { CommandId: 'cmd-1', InstanceId: id(0) },
        { CommandId: 'cmd-1', InstanceId: id(1) },
      ]);
      expect(report.resources.map((r) => r.outcome)).toEqual(['changed', 'skipped']);
      expect(report.resources[0]?.detail).toMatch(
        /is over: SSM command cmd-1 ended Success; Success, exit code 0$/,
      );
      expect(report.resources[1]?.detail).toMatch(/its SSM command cmd-1 is InProgress\)/);
      expect(ssm.commandCalls(SendCommandCommand).map((c) => c.args[0].input.InstanceIds)).toEqual([[id(0)]]);
    });

    it('claims nothing it cannot write, and tags and sends nothing then', async () => {
      running(2);
      ssm.on(GetCommandInvocationCommand).resolves(invocation('Success', { ResponseCode: 0 }));
      const failing = memoryLeaseStore();
      failing.compareAndSet = async () => {
        throw awsError('AccessDeniedException', 'not authorized to perform: dynamodb:PutItem');
      };
      store = failing;

      const report = await run(restart(2), ctx(), deps());

      expect(report.summary).toMatchObject({ failed: 2, changed: 0 });
      expect(report.resources[0]?.detail).toBe(
        'could not take a lease in nightshift-test-leases (AccessDeniedException: not authorized to perform: ' +
          'dynamodb:PutItem); nothing changed: without a lease another run could act on it at the same time; no ' +
          'restart goes ahead unguarded: nothing tagged or sent',
      );
      expect(ec2.commandCalls(CreateTagsCommand)).toHaveLength(0);
      expect(ssm.commandCalls(SendCommandCommand)).toHaveLength(0);
    });

    it('leaves a target undone when other runs write its record under every claim', async () => {
      // Prepare: every time this run writes its claim, another run has just written the record
      running(1);
      const busy = memoryLeaseStore();
      const write = busy.compareAndSet;
      busy.compareAndSet = async (next) => {
        // A restart by another run that is already over, with no cooldown left
        const theirs = {
          ...next,
          holder: 'ssm-restart run 9',
          token: 'run-9',
          expiresAt: new Date(0),
          data: { ...next.data, runUntil: '2026-11-23T02:00:00Z' },
        };
        await write(theirs, busy.items.get(next.scope)?.version);
        return false;
      };
      store = busy;

      // Act
      const report = await run(restart(1), ctx(), deps());

      // Assess: not failed (the table works) and not skipped (it is still to do): undone, nothing sent
      expect(report.resources.map((r) => [r.outcome, r.detail])).toEqual([
        [
          'undone',
          'other runs wrote its restart record in nightshift-test-leases under every one of 3 claims; nothing ' +
            'tagged or sent: its restart is still to do — run again once they are done',
        ],
      ]);
      expect(ec2.commandCalls(CreateTagsCommand)).toHaveLength(0);
      expect(ssm.commandCalls(SendCommandCommand)).toHaveLength(0);
    });

    it('fails an alarm whose nightshift:stage tag is empty, in every stage', async () => {
      cloudwatch.on(ListTagsForResourceCommand).resolves({
        Tags: [
          { Key: 'nightshift:restart', Value: 'container:web' },
          { Key: 'nightshift:stage', Value: ' ' },
        ],
      });

      const report = await run(sample('alarm-instance.json'), ctx(), deps());

      expect(report.resources).toEqual([
        {
          arn: 'arn:aws:cloudwatch:eu-central-1:123456789012:alarm:web-1-container-unhealthy',
          type: 'cloudwatch-alarm',
          outcome: 'failed',
          detail:
            'alarm web-1-container-unhealthy has an empty nightshift:stage tag: set it to the stage that restarts ' +
            'for it; nothing restarted',
        },
      ]);
      expect(ec2.calls()).toHaveLength(0);
    });

    it('puts the record back when the restart time could not be tagged, so the next alarm is not held off', async () => {
      running(2);
      ec2
        .on(CreateTagsCommand, { Resources: [id(1)] })
        .rejects(awsError('UnauthorizedOperation', 'not authorized'));
      ssm.on(GetCommandInvocationCommand).resolves(invocation('Success', { ResponseCode: 0 }));

      const report = await run(restart(2), ctx(), deps());

      expect(report.resources.map((r) => r.outcome)).toEqual(['changed', 'failed']);
      expect(store.items.get(`restart#${arn(0)}`)?.expiresAt).toEqual(new Date('2026-11-23T02:30:00Z'));
      // i-…1: claimed, then put back as a record that holds nothing off
      expect(store.writes.filter((w) => w.scope === `restart#${arn(1)}`).map((w) => w.op)).toEqual([
        'compareAndSet',
        'compareAndSet',
      ]);
      expect(store.items.get(`restart#${arn(1)}`)).toMatchObject({
        expiresAt: new Date('2026-11-23T02:15:00Z'),
        data: { runUntil: '2026-11-23T02:15:00Z' },
      });
    });

    it('refuses to restart from an alarm whose tags it may not read', async () => {
      cloudwatch
        .on(ListTagsForResourceCommand)
        .rejects(
          awsError('AccessDenied', 'User is not authorized to perform: cloudwatch:ListTagsForResource'),
        );
      const event = JSON.parse(readFileSync('events/aws.cloudwatch/samples/alarm-instance.json', 'utf8'));

      const report = await run(parseRestartInput(event), ctx(), deps());

      expect(report.resources).toEqual([
        {
          arn: 'arn:aws:cloudwatch:eu-central-1:123456789012:alarm:web-1-container-unhealthy',
          type: 'cloudwatch-alarm',
          outcome: 'failed',
          detail:
            'could not read the tags of alarm web-1-container-unhealthy (AccessDenied: User is not authorized to ' +
            'perform: cloudwatch:ListTagsForResource): the role reads the tags of alarms in its own account and ' +
            'region only; nothing restarted',
        },
      ]);
      expect(ec2.calls()).toHaveLength(0);
    });
  });

  describe('the restart record as the lease table and SSM answer it', () => {
    const ALARMED = 'i-0a1b2c3d4e5f60718';
    const SCOPE = `restart#arn:aws:ec2:eu-central-1:123456789012:instance/${ALARMED}`;
    const denied = () => awsError('AccessDeniedException', 'not authorized to perform: dynamodb:PutItem');
    /** Another run's record of the instance: `data` and `expiresAt` say what it holds. */
    const theirs = (expiresAt: string, data: Record<string, string>) => ({
      scope: SCOPE,
      holder: 'ssm-restart run 9',
      token: 'run-9',
      acquiredAt: new Date('2026-11-23T02:00:00Z'),
      expiresAt: new Date(expiresAt),
      data: { what: 'container:web', via: 'alarm', ...data },
    });

    beforeEach(() => {
      cloudwatch
        .on(ListTagsForResourceCommand)
        .resolves({ Tags: [{ Key: 'nightshift:restart', Value: 'container:web' }] });
      ec2.on(DescribeInstancesCommand).resolves({
        Reservations: [
          {
            OwnerId: '123456789012',
            Instances: [{ InstanceId: ALARMED, State: { Name: 'running' }, Tags: [RESTARTABLE] }],
          },
        ],
      });
      agents([[ALARMED, 'Online']]);
      ssm.on(GetCommandInvocationCommand).resolves(invocation('Success', { ResponseCode: 0 }));
    });

    it('says so when the flap guard could not be latched, and stays failed', async () => {
      // Prepare: 3 alarm restarts in the last hour, the cooldown over; the table refuses writes
      await store.compareAndSet(
        theirs('2026-11-23T02:15:00Z', {
          restarts: '2026-11-23T01:30:00Z 2026-11-23T01:45:00Z 2026-11-23T02:00:00Z',
          runUntil: '2026-11-23T02:01:00Z',
        }),
        undefined,
      );
      store.compareAndSet = async () => {
        throw denied();
      };

      // Act
      const report = await run(sample('alarm-instance.json'), ctx(), deps());

      // Assess
      expect(report.resources).toHaveLength(1);
      expect(report.resources[0]).toMatchObject({ outcome: 'failed' });
      expect(report.resources[0]?.detail).toBe(
        'flap guard: restarted 3 times by alarms in the last hour (2026-11-23T01:30:00Z, 2026-11-23T01:45:00Z, ' +
          '2026-11-23T02:00:00Z); one more would be more than RESTART_MAX_PER_HOUR (3): no automatic restarts of it ' +
          'until a person restarts it on demand; not restarted for alarm web-1-container-unhealthy; but the latch ' +
          'could not be written to its restart record in nightshift-test-leases (AccessDeniedException: not ' +
          'authorized to perform: dynamodb:PutItem), so nothing stops automatic restarts of it yet: alarms in the ' +
          'next hour meet the flap guard again and try to latch it, but once its last restarts are more than an ' +
          'hour old, alarms restart it again',
      );
      expect(ec2.commandCalls(CreateTagsCommand)).toHaveLength(0);
      expect(ssm.commandCalls(SendCommandCommand)).toHaveLength(0);
    });

    it('says so when a latch another run wrote since the plan could not be renewed, and that it still holds', async () => {
      // Prepare: nothing recorded when planned; as this run claims it, another run latches the guard,
      // then the table refuses writes
      const write = store.compareAndSet;
      let writes = 0;
      store.compareAndSet = async () => {
        if (writes++ > 0) throw denied();
        await write(
          theirs('2036-11-23T02:10:00Z', {
            flapped: '2026-11-23T02:10:00Z',
            runUntil: '2026-11-23T02:01:00Z',
          }),
          undefined,
        );
        return false;
      };

      // Act
      const report = await run(sample('alarm-instance.json'), ctx(), deps());

      // Assess
      expect(report.resources[0]).toMatchObject({ outcome: 'failed' });
      expect(report.resources[0]?.detail).toMatch(
        /^flap guard: automatic restarts of it stopped at 2026-11-23T02:10:00Z, .*; but the latch could not be written to its restart record in nightshift-test-leases \(AccessDeniedException: not authorized to perform: dynamodb:PutItem\), and the latch recorded before still holds, until 2036-11-23T02:10:00Z$/,
      );
      expect(ssm.commandCalls(SendCommandCommand)).toHaveLength(0);
    });

    it('keeps a restart in progress while SSM does not know its command yet, right after the send (planned)', async () => {
      // Prepare: another run sent cmd-9 a moment ago; SSM does not list the invocation yet
      await store.compareAndSet(
        theirs('2026-11-23T02:30:00Z', { command: 'cmd-9', runUntil: '2026-11-23T02:43:00Z' }),
        undefined,
      );
      ssm.on(GetCommandInvocationCommand, { CommandId: 'cmd-9' }).rejects(awsError('InvocationDoesNotExist'));

      // Act: a person restarts it on demand
      const report = await run(
        parseRestartInput({ action: 'restart', targets: { instanceIds: [ALARMED] }, container: 'web' }),
        ctx(),
        deps(),
      );

      // Assess: still in progress, not over
      expect(ssm.commandCalls(GetCommandInvocationCommand).map((c) => c.args[0].input)).toEqual([
        { CommandId: 'cmd-9', InstanceId: ALARMED },
      ]);
      expect(report.resources.map((r) => [r.outcome, r.detail])).toEqual([
        [
          'skipped',
          'another restart of it is in progress: container:web via alarm, by ssm-restart run 9, since ' +
            '2026-11-23T02:00:00Z (that run ends by 2026-11-23T02:43:00Z; its SSM command cmd-9 is not known to SSM ' +
            'yet); not restarted for on-demand — run again once it is done',
        ],
      ]);
      expect(ssm.commandCalls(SendCommandCommand)).toHaveLength(0);
      expect(store.items.get(SCOPE)?.token).toBe('run-9');
    });

    it('keeps a restart in progress while SSM does not know its command yet, when it was sent as this run claimed', async () => {
      // Prepare: nothing recorded when planned; as this run claims it, another run has just sent cmd-9
      const write = store.compareAndSet;
      let raced = false;
      store.compareAndSet = async (next, expected) => {
        if (raced) return write(next, expected);
        raced = true;
        await write(
          theirs('2026-11-23T02:30:00Z', { command: 'cmd-9', runUntil: '2026-11-23T02:43:00Z' }),
          undefined,
        );
        return false;
      };
      ssm.on(GetCommandInvocationCommand, { CommandId: 'cmd-9' }).rejects(awsError('InvocationDoesNotExist'));

      // Act
      const report = await run(
        parseRestartInput({ action: 'restart', targets: { instanceIds: [ALARMED] }, container: 'web' }),
        ctx(),
        deps(),
      );

      // Assess: asked SSM once the claim was lost, and left it in progress
      expect(ssm.commandCalls(GetCommandInvocationCommand).map((c) => c.args[0].input)).toEqual([
        { CommandId: 'cmd-9', InstanceId: ALARMED },
      ]);
      expect(report.resources[0]).toMatchObject({ outcome: 'skipped' });
      expect(report.resources[0]?.detail).toMatch(
        /its SSM command cmd-9 is not known to SSM yet\); not restarted/,
      );
      expect(ec2.commandCalls(CreateTagsCommand)).toHaveLength(0);
      expect(ssm.commandCalls(SendCommandCommand)).toHaveLength(0);
      expect(store.items.get(SCOPE)?.token).toBe('run-9');
    });
  });
});
