/**
 * Scheduled tasks in parked clusters, through ecs-scheduler: a stop lists each enabled EventBridge rule
 * (default bus) whose target is an ECS task in a cluster it parked, as a `skipped` warning row; a read it
 * may not make is one row, never the run's failure. Against moto 5.2.1, which pages ListRules and
 * ListTargetsByRule with Limit and NextToken as EventBridge does. EventBridge Scheduler schedules are not
 * read (no Scheduler client in the project yet).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { EventBridgeClient, PutRuleCommand, PutTargetsCommand } from '@aws-sdk/client-eventbridge';
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
