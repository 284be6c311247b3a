/**
 * What moto cannot show: commands still running when the Lambda must stop, commands that fail with
 * output, SSM not knowing an invocation yet, refused calls, and MaxErrors across batches. AWS is
 * simulated with aws-sdk-client-mock.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { mockClient } from 'aws-sdk-client-mock';
import { CreateTagsCommand, DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import {
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
import { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { CloudWatchClient, ListTagsForResourceCommand } from '@aws-sdk/client-cloudwatch';
import { run, type Deps } from '#functions/ssm-restart/handler.ts';
import { parseRestartInput } from '#events/ssm-restart/schema.ts';
import { readFileSync } from 'node:fs';

const ec2 = mockClient(EC2Client);
const ssm = mockClient(SSMClient);
const ecs = mockClient(ECSClient);
const cloudwatch = mockClient(CloudWatchClient);

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
    MAX_CONCURRENCY: '25%',
    MAX_ERRORS: '1',
    DRY_RUN: false,
    AWS_REGION: 'eu-central-1',
    ...config,
  },
  now: () => new Date('2026-11-23T02:15:00Z'),
  pollIntervalMs: 0,
  sleep: async () => undefined,
});
const ctx = (hasTime: () => boolean = () => true) => ({ logger: undefined as never, hasTime });
const restart = (count: number, extra: Record<string, unknown> = {}) =>
  parseRestartInput({
    action: 'restart',
    targets: { instanceIds: Array.from({ length: count }, (_, n) => id(n)) },
    container: 'web',
    ...extra,
  });

/** `count` running instances i-…0, i-…1, … */
const running = (count: number) =>
  ec2.on(DescribeInstancesCommand).resolves({
    Reservations: [
      {
        OwnerId: '123456789012',
        Instances: Array.from({ length: count }, (_, n) => ({
          InstanceId: id(n),
          State: { Name: 'running' },
        })),
      },
    ],
  });

const invocation = (
  status: GetCommandInvocationCommandOutput['Status'],
  extra: Partial<GetCommandInvocationCommandOutput> = {},
) => ({ Status: status, StatusDetails: status, ...extra });

describe('ssm-restart with simulated AWS', () => {
  beforeEach(() => {
    ec2.reset();
    ssm.reset();
    ecs.reset();
    cloudwatch.reset();
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
    let budget = 4;

    // Act
    const report = await run(
      restart(2),
      ctx(() => budget-- > 0),
      deps(),
    );

    // Assess
    expect(report.summary).toEqual({ changed: 2, planned: 0, unchanged: 0, skipped: 0, failed: 0 });
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

  it('sends the next batch only while failures stay within MAX_ERRORS', async () => {
    running(60);
    ssm.on(GetCommandInvocationCommand).resolves(invocation('Success', { ResponseCode: 0 }));
    for (const n of [3, 7]) {
      ssm
        .on(GetCommandInvocationCommand, { InstanceId: id(n) })
        .resolves(invocation('Failed', { ResponseCode: 1 }));
    }

    const report = await run(restart(60), ctx(), deps({ MAX_ERRORS: '1', MAX_CONCURRENCY: '5' }));

    const sends = ssm.commandCalls(SendCommandCommand).map((c) => c.args[0].input);
    expect(sends).toHaveLength(1);
    expect(sends[0]).toMatchObject({ MaxConcurrency: '5', MaxErrors: '1' });
    expect(sends[0]?.InstanceIds).toHaveLength(50);
    expect(report.summary).toEqual({ changed: 48, planned: 0, unchanged: 0, skipped: 10, failed: 2 });
    expect(report.resources[55]?.detail).toMatch(
      /^not sent: 2 instance\(s\) already failed, over MAX_ERRORS 1; run again to finish \(would have: docker restart web/,
    );
    expect(ec2.commandCalls(CreateTagsCommand)).toHaveLength(50);
  });

  it('sends and tags nothing when the Lambda is already about to time out', async () => {
    running(2);

    const report = await run(
      restart(2),
      ctx(() => false),
      deps(),
    );

    expect(report.summary).toMatchObject({ skipped: 2, changed: 0 });
    expect(report.resources[0]?.detail).toMatch(/^not sent: the Lambda was about to time out; run again/);
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
          tags: [],
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

  it('does nothing for an alarm deleted before its event was handled', async () => {
    cloudwatch.on(ListTagsForResourceCommand).rejects(awsError('ResourceNotFound', 'alarm not found'));
    const event = JSON.parse(readFileSync('events/aws.cloudwatch/samples/alarm-instance.json', 'utf8'));

    const report = await run(parseRestartInput(event), ctx(), deps());

    expect(report.resources).toEqual([]);
    expect(ec2.calls()).toHaveLength(0);
  });
});
