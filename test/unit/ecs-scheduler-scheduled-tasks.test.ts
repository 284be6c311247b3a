/**
 * scheduled-tasks.ts on its own: which rows count as parked, and a run out of time while reading the
 * targets of many rules (one call each) stops reading and says so in one row. EventBridge Scheduler
 * schedules: which targets name a parked cluster (templated, or the universal ecs:runTask target's
 * Input), what is asked of ListSchedules and GetSchedule, a GetSchedule or ListSchedules that fails, and
 * the deadline while paging and between GetSchedule calls.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EventBridgeClient, ListRulesCommand, ListTargetsByRuleCommand } from '@aws-sdk/client-eventbridge';
import { GetScheduleCommand, ListSchedulesCommand, SchedulerClient } from '@aws-sdk/client-scheduler';
import { mockClient, type AwsClientStub } from 'aws-sdk-client-mock';
import { parkedClusters, scheduledTaskRows } from '#functions/ecs-scheduler/scheduled-tasks.ts';
import type { ResourceResult } from '#shared/report.ts';

const SERVICE = 'arn:aws:ecs:eu-central-1:123456789012:service/stage/web';
const CLUSTER = 'arn:aws:ecs:eu-central-1:123456789012:cluster/stage';
const row = (outcome: ResourceResult['outcome'], arn = SERVICE, type = 'ecs-service'): ResourceResult => ({
  arn,
  type,
  outcome,
  detail: '',
});

describe('parkedClusters', () => {
  it('takes the clusters of service rows changed, unchanged (already parked) or planned, and nothing else', () => {
    // Act
    const parked = parkedClusters([
      row('changed'),
      row('skipped', 'arn:aws:ecs:eu-central-1:123456789012:service/prod/api'),
      row('failed', 'arn:aws:ecs:eu-central-1:123456789012:service/qa/api'),
      row(
        'changed',
        'arn:aws:autoscaling:eu-central-1:123456789012:autoScalingGroup:x:autoScalingGroupName/g',
        'autoscaling-group',
      ),
      // An old-format service ARN (without the cluster) names no cluster.
      row('changed', 'arn:aws:ecs:eu-central-1:123456789012:service/legacy'),
    ]);

    // Assess
    expect([...parked]).toEqual([CLUSTER]);
  });
});

describe('scheduledTaskRows', () => {
  it('stops before reading the targets of the next rule when the Lambda runs out of time, in one skipped row', async () => {
    // Arrange: 300 rules on one page, time for two target reads
    const events = mockClient(EventBridgeClient);
    events.on(ListRulesCommand).resolves({
      Rules: Array.from({ length: 300 }, (_, i) => ({
        Name: `r${i}`,
        Arn: `arn:aws:events:eu-central-1:123456789012:rule/r${i}`,
        State: 'ENABLED',
      })),
    });
    events.on(ListTargetsByRuleCommand).resolves({ Targets: [{ Id: 't', Arn: CLUSTER }] });
    let budget = 2;

    // Act
    const rows = await scheduledTaskRows([row('changed')], {
      dryRun: false,
      hasTime: () => budget-- > 0,
      events: new EventBridgeClient({ region: 'eu-central-1' }),
    });

    // Assess
    expect(rows).toEqual([
      expect.objectContaining({
        arn: 'eventbridge-rules',
        outcome: 'skipped',
        detail: expect.stringContaining(
          'could not be checked: OutOfTimeError: the Lambda was about to time out',
        ),
      }),
    ]);
    expect(events.commandCalls(ListTargetsByRuleCommand).length).toBeLessThan(10);
    events.restore();
  });
});

describe('scheduledTaskRows: EventBridge Scheduler schedules', () => {
  const SCHEDULE = (group: string, name: string) =>
    `arn:aws:scheduler:eu-central-1:123456789012:schedule/${group}/${name}`;
  const RUN_TASK = 'arn:aws:scheduler:::aws-sdk:ecs:runTask';
  const summary = (group: string, name: string, target: string) => ({
    Arn: SCHEDULE(group, name),
    GroupName: group,
    Name: name,
    State: 'ENABLED' as const,
    Target: { Arn: target },
  });
  const universal = (cluster?: string) =>
    JSON.stringify({ TaskDefinition: 'nightly:1', ...(cluster !== undefined && { Cluster: cluster }) });
  const scheduler = () => new SchedulerClient({ region: 'eu-central-1' });
  const scheduleRows = (rows: ResourceResult[]) => rows.filter((r) => r.type === 'scheduler-schedule');
  let mock: AwsClientStub<SchedulerClient>;
  beforeEach(() => {
    mock = mockClient(SchedulerClient);
  });
  afterEach(() => {
    mock.restore();
  });

  it('reads the Cluster of a universal ecs:runTask target by name, by ARN, or the default cluster when it has none', async () => {
    // Arrange: the stop parked stage and default; each schedule's Input is only in GetSchedule
    const targets: Record<string, string | undefined> = {
      'by-name': universal('stage'),
      'by-arn': universal(CLUSTER),
      'camel-case': JSON.stringify({ cluster: 'stage', taskDefinition: 'nightly' }),
      'no-cluster': universal(),
      'other-cluster': universal('other'),
      'other-account': universal('arn:aws:ecs:eu-central-1:210987654321:cluster/stage'),
      'not-json': 'Cluster=stage',
    };
    mock.on(ListSchedulesCommand).resolves({
      Schedules: Object.keys(targets).map((name) => summary('batch', name, RUN_TASK)),
    });
    for (const [name, input] of Object.entries(targets))
      mock.on(GetScheduleCommand, { Name: name, GroupName: 'batch' }).resolves({
        ...summary('batch', name, RUN_TASK),
        Target: { Arn: RUN_TASK, RoleArn: 'r', Input: input },
      });

    // Act
    const rows = await scheduledTaskRows(
      [row('changed'), row('unchanged', 'arn:aws:ecs:eu-central-1:123456789012:service/default/api')],
      { dryRun: false, hasTime: () => true, scheduler: scheduler() },
    );

    // Assess: by name and by ARN name stage; no Cluster is RunTask's default cluster; other and another
    // account's stage are not parked; an Input nightshift cannot read is a row of its own
    expect(rows.map((r) => [r.arn, r.detail])).toEqual([
      [
        SCHEDULE('batch', 'by-name'),
        'scheduled task by-name in schedule group batch targets cluster stage, parked by this stop: it will fail ' +
          'or run without its services tonight; disable it or wake the cluster (nightshift wake --cluster stage --for <duration>)',
      ],
      [SCHEDULE('batch', 'by-arn'), expect.stringContaining('targets cluster stage, parked by this stop')],
      [
        SCHEDULE('batch', 'camel-case'),
        expect.stringContaining('targets cluster stage, parked by this stop'),
      ],
      [
        SCHEDULE('batch', 'no-cluster'),
        expect.stringContaining('targets cluster default, parked by this stop'),
      ],
      [
        SCHEDULE('batch', 'not-json'),
        expect.stringMatching(
          /calls ECS RunTask with an Input that names no cluster nightshift can read; .*\(stage, default\): check it by hand \(aws scheduler get-schedule --group-name batch --name not-json\)/,
        ),
      ],
    ]);
    expect(rows.every((r) => r.type === 'scheduler-schedule' && r.outcome === 'skipped')).toBe(true);
  });

  it('asks ListSchedules for ENABLED schedules of every group at 100 a page, and GetSchedule only for targets that can run a task in a parked cluster', async () => {
    // Arrange: two pages
    mock
      .on(ListSchedulesCommand)
      .resolvesOnce({
        Schedules: [
          summary('default', 'lambda', 'arn:aws:lambda:eu-central-1:123456789012:function:f'),
          summary('default', 'sqs', 'arn:aws:scheduler:::aws-sdk:sqs:sendMessage'),
          summary('default', 'other', 'arn:aws:ecs:eu-central-1:123456789012:cluster/other'),
        ],
        NextToken: 'page-2',
      })
      .resolves({ Schedules: [summary('team-a', 'templated', CLUSTER)] });
    mock.on(GetScheduleCommand).resolves({
      ...summary('team-a', 'templated', CLUSTER),
      Target: { Arn: CLUSTER, RoleArn: 'r', EcsParameters: { TaskDefinitionArn: 'td' } },
    });

    // Act
    const rows = await scheduledTaskRows([row('changed')], {
      dryRun: true,
      hasTime: () => true,
      scheduler: scheduler(),
    });

    // Assess
    expect(mock.commandCalls(ListSchedulesCommand).map((c) => c.args[0].input)).toEqual([
      { MaxResults: 100, State: 'ENABLED' },
      { MaxResults: 100, State: 'ENABLED', NextToken: 'page-2' },
    ]);
    expect(mock.commandCalls(GetScheduleCommand).map((c) => c.args[0].input)).toEqual([
      { Name: 'templated', GroupName: 'team-a' },
    ]);
    expect(rows).toEqual([
      expect.objectContaining({
        arn: SCHEDULE('team-a', 'templated'),
        detail: expect.stringContaining(
          'scheduled task templated in schedule group team-a targets cluster stage, to be parked by this stop',
        ),
      }),
    ]);
  });

  it('still gives the row of a schedule whose GetSchedule fails, lists the others, and drops one deleted or disabled since it was listed', async () => {
    // Arrange
    const denied = Object.assign(new Error('not authorized to perform: scheduler:GetSchedule'), {
      name: 'AccessDeniedException',
    });
    mock.on(ListSchedulesCommand).resolves({
      Schedules: [
        summary('default', 'templated-denied', CLUSTER),
        summary('default', 'universal-denied', RUN_TASK),
        summary('default', 'deleted', CLUSTER),
        summary('default', 'disabled', CLUSTER),
        summary('default', 'fine', RUN_TASK),
      ],
    });
    mock.on(GetScheduleCommand, { Name: 'templated-denied' }).rejects(denied);
    mock.on(GetScheduleCommand, { Name: 'universal-denied' }).rejects(denied);
    mock
      .on(GetScheduleCommand, { Name: 'deleted' })
      .rejects(
        Object.assign(new Error('Schedule deleted does not exist.'), { name: 'ResourceNotFoundException' }),
      );
    mock.on(GetScheduleCommand, { Name: 'disabled' }).resolves({
      ...summary('default', 'disabled', CLUSTER),
      State: 'DISABLED',
      Target: { Arn: CLUSTER, RoleArn: 'r' },
    });
    mock.on(GetScheduleCommand, { Name: 'fine' }).resolves({
      ...summary('default', 'fine', RUN_TASK),
      Target: { Arn: RUN_TASK, RoleArn: 'r', Input: universal('stage') },
    });

    // Act
    const rows = await scheduledTaskRows([row('changed')], {
      dryRun: false,
      hasTime: () => true,
      scheduler: scheduler(),
    });

    // Assess
    expect(rows.map((r) => [r.arn, r.outcome, r.detail])).toEqual([
      [
        SCHEDULE('default', 'templated-denied'),
        'skipped',
        expect.stringMatching(
          /targets cluster stage, parked by this stop: it will fail or run without its services tonight; .*\(its details could not be read: AccessDeniedException: not authorized/,
        ),
      ],
      [
        SCHEDULE('default', 'universal-denied'),
        'skipped',
        expect.stringMatching(
          /calls ECS RunTask but could not be read: AccessDeniedException: not authorized.*; it may run a task in a cluster parked by this stop \(stage\)/,
        ),
      ],
      [SCHEDULE('default', 'fine'), 'skipped', expect.stringContaining('targets cluster stage')],
    ]);
  });

  it('says in one row that the schedules could not be read when ListSchedules fails, next to the rules it could read', async () => {
    // Arrange
    mock
      .on(ListSchedulesCommand)
      .rejects(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }));
    const events = mockClient(EventBridgeClient);
    events.on(ListRulesCommand).resolves({ Rules: [{ Name: 'nightly', Arn: 'rule-arn', State: 'ENABLED' }] });
    events.on(ListTargetsByRuleCommand).resolves({ Targets: [{ Id: 't', Arn: CLUSTER }] });

    // Act
    const rows = await scheduledTaskRows([row('changed')], {
      dryRun: false,
      hasTime: () => true,
      events: new EventBridgeClient({ region: 'eu-central-1' }),
      scheduler: new SchedulerClient({ region: 'eu-central-1', maxAttempts: 1 }),
    });
    events.restore();

    // Assess
    expect(rows).toEqual([
      expect.objectContaining({ arn: 'rule-arn', type: 'eventbridge-rule' }),
      {
        arn: 'scheduler-schedules',
        type: 'scheduler-schedule',
        outcome: 'skipped',
        detail:
          'the scheduled tasks (EventBridge Scheduler schedules) targeting the parked clusters could not be read: ' +
          'ThrottlingException: Rate exceeded; check them by hand (aws scheduler list-schedules --state ENABLED)',
      },
    ]);
  });

  it('stops paging ListSchedules when the Lambda runs out of time, in one skipped row', async () => {
    // Arrange: every page says another follows; time for two more
    mock
      .on(ListSchedulesCommand)
      .resolves({ Schedules: [summary('default', 's', CLUSTER)], NextToken: 'more' });
    let budget = 2;

    // Act
    const rows = await scheduledTaskRows([row('changed')], {
      dryRun: false,
      hasTime: () => budget-- > 0,
      scheduler: scheduler(),
    });

    // Assess
    expect(scheduleRows(rows)).toEqual([
      expect.objectContaining({
        arn: 'scheduler-schedules',
        detail: expect.stringContaining(
          'could not be read: OutOfTimeError: the Lambda was about to time out while reading EventBridge Scheduler schedules',
        ),
      }),
    ]);
    expect(mock.commandCalls(ListSchedulesCommand)).toHaveLength(3);
    expect(mock.commandCalls(GetScheduleCommand)).toHaveLength(0);
  });

  it('stops calling GetSchedule when the Lambda runs out of time: templated targets listed from the list, the unread universal ones counted in one row', async () => {
    // Arrange: 300 universal targets and 2 templated ones, time for two GetSchedule calls
    mock.on(ListSchedulesCommand).resolves({
      Schedules: [
        ...Array.from({ length: 300 }, (_, i) => summary('default', `u${i}`, RUN_TASK)),
        summary('batch', 'templated-1', CLUSTER),
        summary('batch', 'templated-2', CLUSTER),
      ],
    });
    mock.on(GetScheduleCommand).callsFake((input: { Name: string; GroupName: string }) => ({
      ...summary(input.GroupName, input.Name, RUN_TASK),
      Target: { Arn: RUN_TASK, RoleArn: 'r', Input: universal('stage') },
    }));
    let budget = 2;

    // Act
    const rows = await scheduledTaskRows([row('changed')], {
      dryRun: false,
      hasTime: () => budget-- > 0,
      scheduler: scheduler(),
    });

    // Assess
    expect(mock.commandCalls(GetScheduleCommand)).toHaveLength(2);
    expect(rows.map((r) => r.arn)).toEqual([
      SCHEDULE('default', 'u0'),
      SCHEDULE('default', 'u1'),
      SCHEDULE('batch', 'templated-1'),
      SCHEDULE('batch', 'templated-2'),
      'scheduler-schedules',
    ]);
    expect(rows.at(-1)?.detail).toBe(
      '298 scheduled task(s) in EventBridge Scheduler calling ECS RunTask could not be read: OutOfTimeError: the ' +
        'Lambda was about to time out while reading EventBridge Scheduler schedule default/u2; they may run tasks in ' +
        'the clusters parked by this stop (stage): check them by hand (aws scheduler list-schedules --state ENABLED)',
    );
  });
});
