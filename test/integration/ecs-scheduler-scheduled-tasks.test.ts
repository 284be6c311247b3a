/**
 * Scheduled tasks in parked clusters, through ecs-scheduler: a stop lists each enabled EventBridge rule
 * (default bus) whose target is an ECS task in a cluster it parked, as a `skipped` warning row; a read it
 * may not make is one row, never the run's failure. Against moto 5.2.1, which pages ListRules and
 * ListTargetsByRule with Limit and NextToken as EventBridge does. EventBridge Scheduler schedules: the
 * second describe.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { EventBridgeClient, PutRuleCommand, PutTargetsCommand } from '@aws-sdk/client-eventbridge';
import {
  CreateScheduleCommand,
  CreateScheduleGroupCommand,
  SchedulerClient,
} from '@aws-sdk/client-scheduler';
import { run, type Deps } from '#functions/ecs-scheduler/handler.ts';
import { sdkConfig } from '#shared/aws/config.ts';
import type { LeaseStore } from '#shared/lease.ts';
import { parseSchedules } from '#shared/schedules.ts';
import { DEFAULT_PROTECTED_TAGS } from '#shared/tags.ts';
import { runContext } from '#test/support/context.ts';
import { seedClients, seedEstate, type SeedClients } from '#test/support/ecs-estate.ts';
import { leaseTable, runLeases } from '#test/support/leases.ts';
import { motoTestsEnabled, startMoto, useEndpoint, type Moto } from '#test/support/moto.ts';
import { startProxy, type Proxy } from '#test/support/proxy.ts';

const ACCOUNT = '123456789012';
const REGION = 'eu-central-1';
// Friday 27 November 2026, 19:00:30 in Berlin: office hours are over.
const NIGHT = new Date('2026-11-27T18:00:30Z');
const SCHEDULES = parseSchedules({
  schedules: {
    'office-hours': {
      timezone: 'Europe/Berlin',
      periods: [{ begintime: '07:00', endtime: '19:00', weekdays: 'mon-fri' }],
    },
  },
});
const cluster = (name: string) => `arn:aws:ecs:${REGION}:${ACCOUNT}:cluster/${name}`;
const ruleArn = (name: string) => `arn:aws:events:${REGION}:${ACCOUNT}:rule/${name}`;

describe.runIf(motoTestsEnabled())(
  'ecs-scheduler warns about scheduled tasks in parked clusters (moto)',
  () => {
    let moto: Moto;
    let proxy: Proxy;
    let aws: SeedClients;
    let viaProxy: SeedClients;
    let seed: EventBridgeClient;
    let store: LeaseStore;

    const events = () =>
      new EventBridgeClient({
        ...sdkConfig(),
        endpoint: proxy.url,
        region: REGION,
        credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
      });
    const deps = (withEvents = true): Deps => ({
      clients: { ...viaProxy, ...(withEvents && { events: events() }) },
      config: { PROTECTED_TAGS: DEFAULT_PROTECTED_TAGS, DRY_RUN: false },
      now: () => NIGHT,
      schedules: () => SCHEDULES,
    });
    const runAt = async (event: Parameters<typeof run>[0], withEvents = true) => {
      const leases = runLeases(store, 'ecs-scheduler', () => NIGHT);
      try {
        return await run(event, runContext({ leases }), deps(withEvents));
      } finally {
        await leases.releaseAll();
      }
    };
    const rule = async (name: string, target: string, state: 'ENABLED' | 'DISABLED' = 'ENABLED') => {
      await seed.send(
        new PutRuleCommand({ Name: name, ScheduleExpression: 'cron(0 22 * * ? *)', State: state }),
      );
      await seed.send(
        new PutTargetsCommand({
          Rule: name,
          Targets: [
            target.includes(':ecs:')
              ? {
                  Id: 'task',
                  Arn: target,
                  RoleArn: `arn:aws:iam::${ACCOUNT}:role/events-run-task`,
                  EcsParameters: {
                    TaskDefinitionArn: `arn:aws:ecs:${REGION}:${ACCOUNT}:task-definition/nightly:1`,
                    TaskCount: 1,
                  },
                }
              : { Id: 'fn', Arn: target },
          ],
        }),
      );
    };
    const taskRows = (r: Awaited<ReturnType<typeof run>>) =>
      r.resources.filter((x) => x.type === 'eventbridge-rule');
    const sent = (op: string) =>
      proxy.requests
        .filter((r) => r.operation === op)
        .map((r) => JSON.parse(r.body) as { Limit?: number; NextToken?: string; Rule?: string });

    beforeAll(async () => {
      moto = await startMoto();
      proxy = await startProxy(moto.url);
      useEndpoint(moto.url);
      aws = seedClients(moto.url);
      viaProxy = seedClients(proxy.url);
      seed = new EventBridgeClient({ ...sdkConfig(), endpoint: moto.url, region: REGION });
    });
    afterAll(async () => {
      await proxy?.close();
      moto?.stop();
    });
    beforeEach(async () => {
      await moto.reset();
      store = await leaseTable(moto.url);
      proxy.stub('ListRules', undefined);
      proxy.requests.length = 0;
      await seedEstate(aws, [
        {
          name: 'stage',
          tags: { env: 'stage', 'nightshift:schedule': 'office-hours' },
          services: [{ name: 'web', desired: 2 }],
        },
        { name: 'other', tags: { env: 'other' }, services: [{ name: 'api', desired: 1 }] },
      ]);
      // More rules than one ListRules page (100): the one that matters sorts last.
      for (let i = 0; i < 101; i++)
        await rule(
          `aaa-filler-${String(i).padStart(3, '0')}`,
          `arn:aws:lambda:${REGION}:${ACCOUNT}:function:f`,
        );
      await rule('other-nightly', cluster('other'));
      await rule('stage-disabled', cluster('stage'), 'DISABLED');
      await rule('zz-stage-nightly-report', cluster('stage'));
    });

    it('lists the enabled rules targeting a cluster the stop parked, reading every page of rules', async () => {
      // Act
      const report = await runAt({ action: 'stop', clusters: ['stage'] });

      // Assess: one warning, for stage's enabled rule; the other cluster's and the disabled rule not listed
      expect(taskRows(report)).toEqual([
        {
          arn: ruleArn('zz-stage-nightly-report'),
          type: 'eventbridge-rule',
          outcome: 'skipped',
          detail:
            'scheduled task zz-stage-nightly-report targets cluster stage, parked by this stop: it will fail or run ' +
            'without its services tonight; disable it or wake the cluster (nightshift wake --cluster stage --for <duration>)',
        },
      ]);
      expect(report.summary.failed).toBe(0);
      // Assess: pages of at most 100, the second asked with the first one's token
      const pages = sent('ListRules');
      expect(pages.length).toBeGreaterThanOrEqual(2);
      expect(pages.every((p) => p.Limit === 100)).toBe(true);
      expect(pages[0]!.NextToken).toBeUndefined();
      expect(pages[1]!.NextToken).toEqual(expect.any(String));
      // Assess: targets read for enabled rules only, paged with the same maximum
      const targets = sent('ListTargetsByRule');
      expect(targets.map((t) => t.Rule)).not.toContain('stage-disabled');
      expect(targets.map((t) => t.Rule)).toContain('zz-stage-nightly-report');
      expect(targets.every((t) => t.Limit === 100)).toBe(true);
    });

    it('lists them after the stop of a reconcile too', async () => {
      // Act: the evening reconcile parks stage (its schedule is over); other has no schedule
      const report = await runAt({ action: 'reconcile' });

      // Assess
      expect(report.resources.find((r) => r.arn.endsWith(':service/stage/web'))).toMatchObject({
        outcome: 'changed',
      });
      expect(taskRows(report)).toEqual([
        expect.objectContaining({
          arn: ruleArn('zz-stage-nightly-report'),
          outcome: 'skipped',
          detail: expect.stringContaining('targets cluster stage, parked by this stop'),
        }),
      ]);
    });

    it('lists them in a dry run too', async () => {
      // Act
      const dry = await runAt({ action: 'stop', clusters: ['stage'], dryRun: true });

      // Assess
      expect(taskRows(dry)).toEqual([
        expect.objectContaining({
          arn: ruleArn('zz-stage-nightly-report'),
          outcome: 'skipped',
          detail: expect.stringContaining('targets cluster stage, to be parked by this stop'),
        }),
      ]);
    });

    it('lists nothing after a start, and nothing for a stop that parked no service of the cluster', async () => {
      // Act
      const start = await runAt({ action: 'start', clusters: ['stage'] });
      const protectedStop = await runAt({ action: 'stop', tags: { env: 'nowhere' } });

      // Assess
      expect(taskRows(start)).toEqual([]);
      expect(taskRows(protectedStop)).toEqual([]);
      expect(sent('ListRules')).toEqual([]);
    });

    it('says in one row that the scheduled tasks could not be checked when ListRules is denied, and parks all the same', async () => {
      // Arrange: the role without events:ListRules (what EventBridge answers)
      proxy.stub('ListRules', {
        status: 400,
        contentType: 'application/x-amz-json-1.1',
        body: JSON.stringify({
          __type: 'AccessDeniedException',
          message: `User: arn:aws:sts::${ACCOUNT}:assumed-role/ecs-scheduler/fn is not authorized to perform: events:ListRules`,
        }),
      });

      // Act
      const report = await runAt({ action: 'stop', clusters: ['stage'] });

      // Assess
      expect(taskRows(report)).toEqual([
        expect.objectContaining({
          arn: 'eventbridge-rules',
          outcome: 'skipped',
          detail: expect.stringMatching(
            /could not be checked: .*not authorized to perform: events:ListRules/,
          ),
        }),
      ]);
      expect(report.summary.failed).toBe(0);
      expect(report.resources.find((r) => r.arn.endsWith(':service/stage/web'))).toMatchObject({
        outcome: 'changed',
      });
    });

    it('checks nothing without an EventBridge client', async () => {
      // Act
      const report = await runAt({ action: 'stop', clusters: ['stage'] }, false);

      // Assess
      expect(taskRows(report)).toEqual([]);
    });
  },
);

/**
 * EventBridge Scheduler schedules, against moto 5.2.1: it answers ListSchedules (every group without a
 * GroupName, the State filter, MaxResults and NextToken) and GetSchedule (the whole Target, EcsParameters
 * and Input included) as EventBridge Scheduler does, so nothing is stubbed but the failures. The proxy
 * records the REST calls by path: `/schedules?…` is ListSchedules, `/schedules/<name>?groupName=…` is
 * GetSchedule.
 */
describe.runIf(motoTestsEnabled())(
  'ecs-scheduler warns about EventBridge Scheduler schedules running tasks in parked clusters (moto)',
  () => {
    let moto: Moto;
    let proxy: Proxy;
    let aws: SeedClients;
    let viaProxy: SeedClients;
    let seed: SchedulerClient;
    let store: LeaseStore;
    const RUN_TASK = 'arn:aws:scheduler:::aws-sdk:ecs:runTask';
    const scheduleArn = (group: string, name: string) =>
      `arn:aws:scheduler:${REGION}:${ACCOUNT}:schedule/${group}/${name}`;

    const scheduler = () =>
      new SchedulerClient({
        ...sdkConfig(),
        endpoint: proxy.url,
        region: REGION,
        credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
      });
    const runAt = async (event: Parameters<typeof run>[0]) => {
      const leases = runLeases(store, 'ecs-scheduler', () => NIGHT);
      try {
        return await run(event, runContext({ leases }), {
          clients: { ...viaProxy, scheduler: scheduler() },
          config: { PROTECTED_TAGS: DEFAULT_PROTECTED_TAGS, DRY_RUN: false },
          now: () => NIGHT,
          schedules: () => SCHEDULES,
        } satisfies Deps);
      } finally {
        await leases.releaseAll();
      }
    };
    const schedule = async (
      group: string,
      name: string,
      target: { Arn: string; Input?: string; ecs?: boolean },
      state: 'ENABLED' | 'DISABLED' = 'ENABLED',
    ) =>
      seed.send(
        new CreateScheduleCommand({
          GroupName: group,
          Name: name,
          ScheduleExpression: 'cron(0 22 * * ? *)',
          ScheduleExpressionTimezone: 'Europe/Berlin',
          FlexibleTimeWindow: { Mode: 'OFF' },
          State: state,
          Target: {
            Arn: target.Arn,
            RoleArn: `arn:aws:iam::${ACCOUNT}:role/scheduler-run-task`,
            ...(target.Input !== undefined && { Input: target.Input }),
            ...(target.ecs && {
              EcsParameters: {
                TaskDefinitionArn: `arn:aws:ecs:${REGION}:${ACCOUNT}:task-definition/nightly:1`,
                TaskCount: 1,
              },
            }),
          },
        }),
      );
    const runTask = (cluster: string) =>
      JSON.stringify({ Cluster: cluster, TaskDefinition: 'nightly:1', LaunchType: 'FARGATE' });
    const scheduleRows = (r: Awaited<ReturnType<typeof run>>) =>
      r.resources.filter((x) => x.type === 'scheduler-schedule').sort((a, b) => a.arn.localeCompare(b.arn));
    const lists = () =>
      proxy.requests
        .filter((r) => r.service === 'scheduler' && r.operation.startsWith('/schedules?'))
        .map((r) => Object.fromEntries(new URL(r.operation, 'http://x').searchParams));
    const gets = () =>
      proxy.requests
        .filter((r) => r.service === 'scheduler' && r.operation.startsWith('/schedules/'))
        .map((r) => {
          const url = new URL(r.operation, 'http://x');
          return `${url.searchParams.get('groupName') ?? 'default'}/${decodeURIComponent(url.pathname.split('/')[2] ?? '')}`;
        })
        .sort();
    const warning = (group: string, name: string, by = 'parked by this stop') => ({
      arn: scheduleArn(group, name),
      type: 'scheduler-schedule',
      outcome: 'skipped',
      detail:
        `scheduled task ${name} in schedule group ${group} targets cluster stage, ${by}: it will fail or run ` +
        'without its services tonight; disable it or wake the cluster (nightshift wake --cluster stage --for <duration>)',
    });
    const GET_CLEANUP = '/schedules/cleanup-by-name?groupName=team-b';
    const FIRST_LIST = '/schedules?MaxResults=100&State=ENABLED';

    beforeAll(async () => {
      moto = await startMoto();
      proxy = await startProxy(moto.url);
      useEndpoint(moto.url);
      aws = seedClients(moto.url);
      viaProxy = seedClients(proxy.url);
      seed = new SchedulerClient({ ...sdkConfig(), endpoint: moto.url, region: REGION });
    });
    afterAll(async () => {
      await proxy?.close();
      moto?.stop();
    });
    beforeEach(async () => {
      await moto.reset();
      store = await leaseTable(moto.url);
      proxy.stub(GET_CLEANUP, undefined);
      proxy.stub(FIRST_LIST, undefined);
      await seedEstate(aws, [
        {
          name: 'stage',
          tags: { env: 'stage', 'nightshift:schedule': 'office-hours' },
          services: [{ name: 'web', desired: 2 }],
        },
        { name: 'other', tags: { env: 'other' }, services: [{ name: 'api', desired: 1 }] },
      ]);
      for (const group of ['team-a', 'team-b'])
        await seed.send(new CreateScheduleGroupCommand({ Name: group }));
      // The ones that matter first: moto lists the newest first, so they come after the fillers' page.
      await schedule('team-a', 'nightly-report', { Arn: cluster('stage'), ecs: true });
      await schedule('team-b', 'cleanup-by-name', { Arn: RUN_TASK, Input: runTask('stage') });
      await schedule('team-b', 'cleanup-by-arn', { Arn: RUN_TASK, Input: runTask(cluster('stage')) });
      await schedule('default', 'stage-disabled', { Arn: cluster('stage'), ecs: true }, 'DISABLED');
      await schedule('default', 'other-nightly', { Arn: cluster('other'), ecs: true });
      await schedule('default', 'other-cleanup', { Arn: RUN_TASK, Input: runTask('other') });
      // More schedules than one ListSchedules page (100).
      for (let i = 0; i < 101; i++)
        await schedule('default', `filler-${String(i).padStart(3, '0')}`, {
          Arn: `arn:aws:lambda:${REGION}:${ACCOUNT}:function:f`,
          Input: '{}',
        });
      proxy.requests.length = 0;
    });

    it('lists the enabled schedules of every group running a task in a cluster the stop parked, templated or universal, by name or ARN', async () => {
      // Act
      const report = await runAt({ action: 'stop', clusters: ['stage'] });

      // Assess: stage's three enabled schedules; the disabled one and the other cluster's not listed
      expect(scheduleRows(report)).toEqual([
        warning('team-a', 'nightly-report'),
        warning('team-b', 'cleanup-by-arn'),
        warning('team-b', 'cleanup-by-name'),
      ]);
      expect(report.summary.failed).toBe(0);
      // Assess: every page of ENABLED schedules of every group (no ScheduleGroup), 100 a page
      const pages = lists();
      expect(pages.length).toBeGreaterThanOrEqual(2);
      expect(pages.every((p) => p.MaxResults === '100' && p.State === 'ENABLED' && !p.ScheduleGroup)).toBe(
        true,
      );
      expect(pages[0]!.NextToken).toBeUndefined();
      expect(pages[1]!.NextToken).toEqual(expect.any(String));
      // Assess: GetSchedule only for the parked cluster's templated target and the universal ecs:runTask ones
      expect(gets()).toEqual([
        'default/other-cleanup',
        'team-a/nightly-report',
        'team-b/cleanup-by-arn',
        'team-b/cleanup-by-name',
      ]);
    });

    it('still gives the row of a schedule whose GetSchedule is denied, and lists the others', async () => {
      // Arrange: the role may not read this one schedule (what EventBridge Scheduler answers)
      proxy.stub(GET_CLEANUP, {
        status: 403,
        contentType: 'application/json',
        body: JSON.stringify({
          __type: 'AccessDeniedException',
          Message: `User: arn:aws:sts::${ACCOUNT}:assumed-role/ecs-scheduler/fn is not authorized to perform: scheduler:GetSchedule`,
        }),
      });

      // Act
      const report = await runAt({ action: 'stop', clusters: ['stage'] });

      // Assess
      expect(gets()).toContain('team-b/cleanup-by-name');
      expect(scheduleRows(report)).toEqual([
        warning('team-a', 'nightly-report'),
        warning('team-b', 'cleanup-by-arn'),
        {
          arn: scheduleArn('team-b', 'cleanup-by-name'),
          type: 'scheduler-schedule',
          outcome: 'skipped',
          detail: expect.stringMatching(
            /^scheduled task cleanup-by-name in schedule group team-b calls ECS RunTask but could not be read: AccessDeniedException: .*not authorized to perform: scheduler:GetSchedule; it may run a task in a cluster parked by this stop \(stage\): check it by hand \(aws scheduler get-schedule --group-name team-b --name cleanup-by-name\)$/,
          ),
        },
      ]);
      expect(report.summary.failed).toBe(0);
    });

    it('says in one row that the schedules could not be read when ListSchedules is denied, and parks all the same', async () => {
      // Arrange
      proxy.stub(FIRST_LIST, {
        status: 403,
        contentType: 'application/json',
        body: JSON.stringify({
          __type: 'AccessDeniedException',
          Message: `User: arn:aws:sts::${ACCOUNT}:assumed-role/ecs-scheduler/fn is not authorized to perform: scheduler:ListSchedules`,
        }),
      });

      // Act
      const report = await runAt({ action: 'stop', clusters: ['stage'] });

      // Assess
      expect(lists()).toHaveLength(1);
      expect(scheduleRows(report)).toEqual([
        expect.objectContaining({
          arn: 'scheduler-schedules',
          outcome: 'skipped',
          detail: expect.stringMatching(
            /^the scheduled tasks \(EventBridge Scheduler schedules\) targeting the parked clusters could not be read: .*not authorized to perform: scheduler:ListSchedules/,
          ),
        }),
      ]);
      expect(report.summary.failed).toBe(0);
      expect(report.resources.find((r) => r.arn.endsWith(':service/stage/web'))).toMatchObject({
        outcome: 'changed',
      });
    });

    it('lists them after the stop of a reconcile, and in a dry run', async () => {
      // Act: the evening reconcile parks stage (its schedule is over); other has no schedule
      const dry = await runAt({ action: 'reconcile', dryRun: true });
      const report = await runAt({ action: 'reconcile' });

      // Assess
      expect(scheduleRows(dry)).toEqual([
        warning('team-a', 'nightly-report', 'to be parked by this stop'),
        warning('team-b', 'cleanup-by-arn', 'to be parked by this stop'),
        warning('team-b', 'cleanup-by-name', 'to be parked by this stop'),
      ]);
      expect(report.resources.find((r) => r.arn.endsWith(':service/stage/web'))).toMatchObject({
        outcome: 'changed',
      });
      expect(scheduleRows(report)).toEqual([
        warning('team-a', 'nightly-report'),
        warning('team-b', 'cleanup-by-arn'),
        warning('team-b', 'cleanup-by-name'),
      ]);
    });

    it('reads no schedule after a start', async () => {
      // Act
      const start = await runAt({ action: 'start', clusters: ['stage'] });

      // Assess
      expect(scheduleRows(start)).toEqual([]);
      expect(lists()).toEqual([]);
    });
  },
);
