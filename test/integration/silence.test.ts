/**
 * shared/silence.ts against moto: alarms, their tags and DescribeAlarms are moto's. Two gaps are filled
 * in the recording proxy, and said so here:
 * - moto 5.2.1 answers DisableAlarmActions and EnableAlarmActions with a 500: the proxy answers them as
 *   CloudWatch does (200, empty body), records the names sent, and keeps each alarm's ActionsEnabled,
 *   which it writes into moto's DescribeAlarms answers (`actions` below).
 * - moto ignores MaxRecords and returns every alarm in one answer: the proxy pages moto's answer as
 *   CloudWatch does (MaxRecords alarms, then a NextToken), so a read of more than one page is real.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  CloudWatchClient,
  ListTagsForResourceCommand,
  PutMetricAlarmCommand,
  TagResourceCommand,
  UntagResourceCommand,
  type PutMetricAlarmCommandInput,
} from '@aws-sdk/client-cloudwatch';
import { cloudWatchClient } from '#shared/aws/cloudwatch.ts';
import { mapLimit } from '#shared/concurrency.ts';
import { sdkConfig } from '#shared/aws/config.ts';
import { OutOfTimeError } from '#shared/deadline.ts';
import type { ResourceResult } from '#shared/report.ts';
import {
  findAlarmsAbout,
  silence,
  unsilence,
  type AlarmAbout,
  type ParkedResource,
} from '#shared/silence.ts';
import { motoTestsEnabled, startMoto, useEndpoint, type Moto } from '#test/support/moto.ts';
import { startProxy, type Proxy, type RecordedRequest } from '#test/support/proxy.ts';

// The tag is a public contract: spelled out here rather than imported.
const SILENCED = 'nightshift:silenced';
const ACCOUNT = '123456789012';
const NOW = new Date('2026-11-30T18:00:07.123Z');
const LATER = new Date('2026-12-01T06:00:00Z');

const service = (cluster: string, name: string): ParkedResource => ({
  kind: 'ecs-service',
  arn: `arn:aws:ecs:eu-central-1:${ACCOUNT}:service/${cluster}/${name}`,
  cluster,
  service: name,
});
const db = (id: string): ParkedResource => ({
  kind: 'db-instance',
  arn: `arn:aws:rds:eu-central-1:${ACCOUNT}:db:${id}`,
  id,
});
const WEB = service('stage', 'web');
const API = service('stage', 'api');
const SHOP_DB = db('shop-db');

const always = () => true;
const clients = () => ({ cloudwatch: cloudWatchClient() });
const JSON10 = 'application/x-amz-json-1.0';

describe.runIf(motoTestsEnabled())('silence while parked, against moto', () => {
  let moto: Moto;
  let proxy: Proxy;
  /** Seeds and reads moto directly, not through the proxy. */
  let seed: CloudWatchClient;
  /** ActionsEnabled as the stubbed Disable/EnableAlarmActions left it, by alarm name. */
  let actions: Map<string, boolean>;
  /** The alarm names of each Disable/EnableAlarmActions call. */
  let sent: { disable: string[][]; enable: string[][] };
  let describeInput: { MaxRecords?: number; NextToken?: string; AlarmNames?: string[] } = {};

  const alarm = async (name: string, extra: Partial<PutMetricAlarmCommandInput>) => {
    await seed.send(
      new PutMetricAlarmCommand({
        AlarmName: name,
        EvaluationPeriods: 1,
        Threshold: 1,
        ComparisonOperator: 'GreaterThanThreshold',
        ActionsEnabled: true,
        AlarmActions: [`arn:aws:sns:eu-central-1:${ACCOUNT}:pager`],
        ...extra,
      }),
    );
    actions.set(name, extra.ActionsEnabled ?? true);
  };
  /** Seeds `count` alarms, eight at a time. */
  const many = (count: number, seedOne: (i: number) => Promise<void>) =>
    mapLimit(
      Array.from({ length: count }, (_, i) => i),
      8,
      seedOne,
    );
  const metricOn = (namespace: string, dimensions: Record<string, string>) => ({
    Namespace: namespace,
    MetricName: 'CPUUtilization',
    Statistic: 'Average' as const,
    Period: 60,
    Dimensions: Object.entries(dimensions).map(([Name, Value]) => ({ Name, Value })),
  });
  const serviceAlarm = (name: string, svc: string, extra: Partial<PutMetricAlarmCommandInput> = {}) =>
    alarm(name, { ...metricOn('AWS/ECS', { ClusterName: 'stage', ServiceName: svc }), ...extra });
  const arnOf = (name: string) => `arn:aws:cloudwatch:eu-central-1:${ACCOUNT}:alarm:${name}`;
  const tagsOf = async (name: string) =>
    Object.fromEntries(
      ((await seed.send(new ListTagsForResourceCommand({ ResourceARN: arnOf(name) }))).Tags ?? []).map(
        (t) => [t.Key, t.Value],
      ),
    );
  const ops = (operation: string): RecordedRequest[] =>
    proxy.requests.filter((r) => r.operation === operation);
  const taggedArns = () =>
    ops('TagResource').map((r) => (JSON.parse(r.body) as { ResourceARN: string }).ResourceARN);
  const rowOf = (rows: ResourceResult[], name: string) => rows.find((r) => r.arn === arnOf(name));
  const find = (parked: ParkedResource[], hasTime = always) => findAlarmsAbout(clients(), parked, hasTime);
  const stubActions = (
    fail: (names: string[], op: 'disable' | 'enable') => string | undefined = () => undefined,
  ) => {
    for (const [operation, op, enabled] of [
      ['DisableAlarmActions', 'disable', false],
      ['EnableAlarmActions', 'enable', true],
    ] as const)
      proxy.stub(operation, (request) => {
        const names = (JSON.parse(request.body) as { AlarmNames: string[] }).AlarmNames;
        sent[op].push(names);
        const error = fail(names, op);
        if (error)
          return {
            status: 400,
            contentType: JSON10,
            body: JSON.stringify({ __type: error, message: 'refused' }),
          };
        for (const n of names) if (actions.has(n)) actions.set(n, enabled);
        return { contentType: JSON10, body: '{}' };
      });
  };

  beforeAll(async () => {
    moto = await startMoto();
    proxy = await startProxy(moto.url);
    useEndpoint(proxy.url);
    seed = new CloudWatchClient({ ...sdkConfig(), endpoint: moto.url });
    proxy.before('DescribeAlarms', async (request) => {
      describeInput = JSON.parse(request.body || '{}') as typeof describeInput;
    });
    proxy.rewrite('DescribeAlarms', (body) => {
      const out = JSON.parse(body) as {
        MetricAlarms?: Array<{ AlarmName: string; ActionsEnabled?: boolean }>;
        NextToken?: string;
      };
      const all = (out.MetricAlarms ?? []).map((a) => ({
        ...a,
        ActionsEnabled: actions.get(a.AlarmName) ?? a.ActionsEnabled,
      }));
      const from = Number(describeInput.NextToken ?? 0);
      const size = describeInput.MaxRecords ?? 50;
      const page = all.slice(from, from + size);
      return JSON.stringify({
        ...out,
        MetricAlarms: page,
        ...(from + size < all.length && { NextToken: String(from + size) }),
      });
    });
  });
  afterAll(async () => {
    await proxy?.close();
    moto?.stop();
  });
  beforeEach(async () => {
    await moto.reset();
    actions = new Map();
    sent = { disable: [], enable: [] };
    proxy.requests.length = 0;
    proxy.stub('TagResource', undefined);
    stubActions();
  });

  it('finds the alarms about parked resources across pages of 100, and nothing else', async () => {
    // Prepare: 250 alarms, three of them about parked resources, spread over the pages
    await many(250, (i) =>
      alarm(
        `noise-${String(i).padStart(3, '0')}`,
        metricOn('AWS/ECS', { ClusterName: 'stage', ServiceName: `svc-${i}` }),
      ),
    );
    await serviceAlarm('web-cpu', 'web');
    await alarm('db-cpu', metricOn('AWS/RDS', { DBInstanceIdentifier: 'shop-db' }));
    await alarm('math', {
      Metrics: [
        {
          Id: 'm1',
          MetricStat: {
            Metric: metricOn('AWS/ECS', { ClusterName: 'stage', ServiceName: 'api' }),
            Period: 60,
            Stat: 'Sum',
          },
          ReturnData: false,
        },
        { Id: 'e1', Expression: 'm1 * 2', ReturnData: true },
      ],
    });
    await alarm('instance', metricOn('AWS/EC2', { InstanceId: 'i-0abc' }));

    // Act
    const found = await find([WEB, API, SHOP_DB]);

    // Assess: every page read, 100 at a time, metric alarms only
    const reads = ops('DescribeAlarms').map((r) => JSON.parse(r.body) as Record<string, unknown>);
    expect(reads).toHaveLength(3);
    expect(reads.map((r) => r.MaxRecords)).toEqual([100, 100, 100]);
    expect(reads.map((r) => r.NextToken)).toEqual([undefined, '100', '200']);
    expect(reads.every((r) => JSON.stringify(r.AlarmTypes) === '["MetricAlarm"]')).toBe(true);
    expect(found.map((a) => [a.name, a.about.map((r) => r.arn)]).sort()).toEqual([
      ['db-cpu', [SHOP_DB.arn]],
      ['math', [API.arn]],
      ['web-cpu', [WEB.arn]],
    ]);
    // No tags are read to find them
    expect(ops('ListTagsForResource')).toHaveLength(0);
  });

  it('stops reading between pages when the run is out of time', async () => {
    await many(150, (i) => serviceAlarm(`a-${i}`, 'web'));
    let calls = 0;
    await expect(find([WEB], () => calls++ < 0)).rejects.toBeInstanceOf(OutOfTimeError);
    expect(ops('DescribeAlarms')).toHaveLength(1);
  });

  it('tags each alarm first, then disables its actions, and never touches one someone else disabled', async () => {
    // Prepare
    await serviceAlarm('web-cpu', 'web');
    await alarm('db-cpu', metricOn('AWS/RDS', { DBInstanceIdentifier: 'shop-db' }));
    await serviceAlarm('web-muted', 'web', { ActionsEnabled: false });

    // Act
    const rows = await silence(clients(), await find([WEB, SHOP_DB]), {
      dryRun: false,
      hasTime: always,
      now: NOW,
    });

    // Assess: the tags (moto), what was sent, in that order, and the report
    expect(await tagsOf('web-cpu')).toMatchObject({ [SILENCED]: `for=${WEB.arn} at=2026-11-30T18:00:07Z` });
    expect(await tagsOf('db-cpu')).toMatchObject({
      [SILENCED]: `for=${SHOP_DB.arn} at=2026-11-30T18:00:07Z`,
    });
    expect(await tagsOf('web-muted')).not.toHaveProperty(SILENCED);
    expect(sent.disable.map((names) => [...names].sort())).toEqual([['db-cpu', 'web-cpu']]);
    const order = proxy.requests
      .map((r) => r.operation)
      .filter((o) => o === 'TagResource' || o === 'DisableAlarmActions');
    expect(order).toEqual(['TagResource', 'TagResource', 'DisableAlarmActions']);
    expect(taggedArns()).not.toContain(arnOf('web-muted'));
    expect(actions.get('web-muted')).toBe(false);
    expect(rowOf(rows, 'web-cpu')).toMatchObject({ type: 'cloudwatch-alarm', outcome: 'changed' });
    expect(rowOf(rows, 'web-cpu')?.detail).toMatch(
      /^alarm web-cpu: actions disabled while stage\/web is parked/,
    );
    expect(rowOf(rows, 'web-muted')).toMatchObject({ outcome: 'unchanged' });
    expect(rowOf(rows, 'web-muted')?.detail).toMatch(/already disabled, not by nightshift/);

    // Act: the morning
    const woken = await unsilence(clients(), await find([WEB, SHOP_DB]), { dryRun: false, hasTime: always });

    // Assess: exactly those two enabled, their tags gone; the muted one still disabled, untouched
    expect(sent.enable.map((names) => [...names].sort())).toEqual([['db-cpu', 'web-cpu']]);
    expect(await tagsOf('web-cpu')).not.toHaveProperty(SILENCED);
    expect(await tagsOf('db-cpu')).not.toHaveProperty(SILENCED);
    expect(actions.get('web-muted')).toBe(false);
    expect(rowOf(woken, 'web-cpu')).toMatchObject({ outcome: 'changed' });
    expect(rowOf(woken, 'web-cpu')?.detail).toMatch(/actions enabled .*nightshift:silenced removed/);
    expect(rowOf(woken, 'web-muted')).toMatchObject({
      outcome: 'unchanged',
      detail: expect.stringMatching(/not by nightshift: left disabled/),
    });
  });

  it('sends at most 100 alarm names per Disable/EnableAlarmActions call', async () => {
    await many(130, (i) => serviceAlarm(`web-${String(i).padStart(3, '0')}`, 'web'));

    const rows = await silence(clients(), await find([WEB]), { dryRun: false, hasTime: always, now: NOW });
    expect(sent.disable.map((n) => n.length)).toEqual([100, 30]);
    expect(rows.filter((r) => r.outcome === 'changed')).toHaveLength(130);

    await unsilence(clients(), await find([WEB]), { dryRun: false, hasTime: always });
    expect(sent.enable.map((n) => n.length)).toEqual([100, 30]);
    expect([...actions.values()].every(Boolean)).toBe(true);
  });

  it('does not disable an alarm whose tag could not be written, and goes on with the others', async () => {
    await serviceAlarm('web-a', 'web');
    await serviceAlarm('web-b', 'web');
    proxy.stub('TagResource', (request) =>
      request.body.includes(':alarm:web-a')
        ? {
            status: 400,
            contentType: JSON10,
            body: JSON.stringify({ __type: 'InvalidParameterValueException', message: 'invalid tag value' }),
          }
        : undefined,
    );

    const rows = await silence(clients(), await find([WEB]), { dryRun: false, hasTime: always, now: NOW });

    expect(sent.disable).toEqual([['web-b']]);
    expect(actions.get('web-a')).toBe(true);
    expect(rowOf(rows, 'web-a')).toMatchObject({
      outcome: 'failed',
      error: expect.stringMatching(/InvalidParameterValue/),
    });
    expect(rowOf(rows, 'web-a')?.detail).toMatch(/could not be written, so its actions were left enabled/);
    expect(rowOf(rows, 'web-b')).toMatchObject({ outcome: 'changed' });
  });

  it('retries a failed batch one alarm at a time; an alarm still enabled loses its tag, the others are disabled', async () => {
    await serviceAlarm('web-a', 'web');
    await serviceAlarm('web-b', 'web');
    await serviceAlarm('web-c', 'web');
    // One alarm the role may not change (an SCP, a permissions boundary) makes AWS refuse the whole batch.
    stubActions((names) => (names.includes('web-b') ? 'AccessDeniedException' : undefined));

    const rows = await silence(clients(), await find([WEB]), { dryRun: false, hasTime: always, now: NOW });

    expect(sent.disable).toEqual([['web-a', 'web-b', 'web-c'], ['web-a'], ['web-b'], ['web-c']]);
    // AWS is asked which of the refused ones are still enabled, in one answer (MaxRecords 100, not 50)
    const check = JSON.parse(ops('DescribeAlarms').at(-1)?.body ?? '{}') as Record<string, unknown>;
    expect(check).toMatchObject({ AlarmNames: ['web-b'], MaxRecords: 100 });
    expect(actions.get('web-b')).toBe(true);
    expect(await tagsOf('web-b')).not.toHaveProperty(SILENCED);
    expect(rowOf(rows, 'web-b')).toMatchObject({ outcome: 'failed' });
    expect(rowOf(rows, 'web-b')?.detail).toMatch(
      /could not be disabled and are still enabled; nightshift:silenced removed/,
    );
    for (const name of ['web-a', 'web-c']) {
      expect(actions.get(name)).toBe(false);
      expect(await tagsOf(name)).toHaveProperty(SILENCED);
      expect(rowOf(rows, name)).toMatchObject({ outcome: 'changed' });
    }
  });

  it('keeps the tag on an alarm whose actions could not be enabled, and enables it on the next start', async () => {
    await serviceAlarm('web-a', 'web');
    await serviceAlarm('web-b', 'web');
    await silence(clients(), await find([WEB]), { dryRun: false, hasTime: always, now: NOW });
    stubActions((names, op) =>
      op === 'enable' && names.includes('web-a') ? 'AccessDeniedException' : undefined,
    );

    const rows = await unsilence(clients(), await find([WEB]), { dryRun: false, hasTime: always });

    expect(actions.get('web-a')).toBe(false);
    expect(await tagsOf('web-a')).toMatchObject({ [SILENCED]: `for=${WEB.arn} at=2026-11-30T18:00:07Z` });
    expect(rowOf(rows, 'web-a')).toMatchObject({
      outcome: 'failed',
      detail: expect.stringMatching(/tag kept|kept; the next start retries/),
    });
    expect(actions.get('web-b')).toBe(true);
    expect(await tagsOf('web-b')).not.toHaveProperty(SILENCED);

    stubActions();
    const retried = await unsilence(clients(), await find([WEB]), { dryRun: false, hasTime: always });
    expect(actions.get('web-a')).toBe(true);
    expect(await tagsOf('web-a')).not.toHaveProperty(SILENCED);
    expect(rowOf(retried, 'web-a')).toMatchObject({ outcome: 'changed' });
  });

  it('keeps an alarm about two parked resources silenced until the last one wakes', async () => {
    // Prepare: one metric-math alarm over the web service and its database
    await alarm('web-and-db', {
      Metrics: [
        {
          Id: 'w',
          MetricStat: {
            Metric: metricOn('AWS/ECS', { ClusterName: 'stage', ServiceName: 'web' }),
            Period: 60,
            Stat: 'Average',
          },
          ReturnData: false,
        },
        {
          Id: 'd',
          MetricStat: {
            Metric: metricOn('AWS/RDS', { DBInstanceIdentifier: 'shop-db' }),
            Period: 60,
            Stat: 'Average',
          },
          ReturnData: false,
        },
        { Id: 'e', Expression: 'w + d', ReturnData: true },
      ],
    });

    // Act: ecs-scheduler parks web, then rds-scheduler parks the database
    await silence(clients(), await find([WEB]), { dryRun: false, hasTime: always, now: NOW });
    const second = await silence(clients(), await find([SHOP_DB]), {
      dryRun: false,
      hasTime: always,
      now: LATER,
    });

    // Assess: one disable; the tag names both, with the time actions were disabled
    expect(sent.disable).toEqual([['web-and-db']]);
    expect(await tagsOf('web-and-db')).toMatchObject({
      [SILENCED]: `for=${WEB.arn} for=${SHOP_DB.arn} at=2026-11-30T18:00:07Z`,
    });
    expect(rowOf(second, 'web-and-db')?.detail).toMatch(
      /already silenced for .*service\/stage\/web; now also for .*db:shop-db/,
    );

    // Act: the database wakes first
    const dbWakes = await unsilence(clients(), await find([SHOP_DB]), { dryRun: false, hasTime: always });

    // Assess: still disabled, for web only
    expect(sent.enable).toEqual([]);
    expect(actions.get('web-and-db')).toBe(false);
    expect(await tagsOf('web-and-db')).toMatchObject({
      [SILENCED]: `for=${WEB.arn} at=2026-11-30T18:00:07Z`,
    });
    expect(rowOf(dbWakes, 'web-and-db')?.detail).toMatch(/actions stay disabled for .*service\/stage\/web/);

    // Act: web wakes
    await unsilence(clients(), await find([WEB]), { dryRun: false, hasTime: always });
    expect(sent.enable).toEqual([['web-and-db']]);
    expect(await tagsOf('web-and-db')).not.toHaveProperty(SILENCED);
  });

  it('never enables an alarm silenced for another resource, or one whose tag nightshift did not write', async () => {
    await serviceAlarm('api-cpu', 'api');
    await serviceAlarm('web-by-hand', 'web', { ActionsEnabled: false });
    await seed.send(
      new TagResourceCommand({
        ResourceARN: arnOf('web-by-hand'),
        Tags: [{ Key: SILENCED, Value: 'muted by jane' }],
      }),
    );
    await silence(clients(), await find([API]), { dryRun: false, hasTime: always, now: NOW });

    const rows = await unsilence(clients(), await find([WEB]), { dryRun: false, hasTime: always });

    expect(sent.enable).toEqual([]);
    expect(actions.get('api-cpu')).toBe(false);
    expect(rowOf(rows, 'web-by-hand')).toMatchObject({
      outcome: 'skipped',
      detail: expect.stringMatching(/not one nightshift wrote/),
    });
    expect(await tagsOf('web-by-hand')).toMatchObject({ [SILENCED]: 'muted by jane' });
  });

  it('writes the tag back when a start removed it between our tag and our disable', async () => {
    // Prepare: an alarm about web, enabled
    await serviceAlarm('web-cpu', 'web');
    const about = await find([WEB]);
    // Another run's untag lands right before our disable (held in the proxy)
    proxy.before('DisableAlarmActions', async () => {
      await seed.send(new UntagResourceCommand({ ResourceARN: arnOf('web-cpu'), TagKeys: [SILENCED] }));
    });
    try {
      // Act
      const rows = await silence(clients(), about, { dryRun: false, hasTime: always, now: NOW });

      // Assess: disabled, and the tag says why again
      expect(actions.get('web-cpu')).toBe(false);
      expect(await tagsOf('web-cpu')).toMatchObject({ [SILENCED]: `for=${WEB.arn} at=2026-11-30T18:00:07Z` });
      expect(rowOf(rows, 'web-cpu')?.detail).toMatch(/changed meanwhile and was written back/);
    } finally {
      proxy.before('DisableAlarmActions', undefined);
      proxy.before('DescribeAlarms', async (request) => {
        describeInput = JSON.parse(request.body || '{}') as typeof describeInput;
      });
    }
  });

  it('leaves the tag a new silence wrote between our enable and our untag', async () => {
    await serviceAlarm('web-cpu', 'web');
    await silence(clients(), await find([WEB]), { dryRun: false, hasTime: always, now: NOW });
    const about = await find([WEB]);
    const other = `for=${SHOP_DB.arn} at=2026-12-01T06:00:00Z`;
    proxy.before('EnableAlarmActions', async () => {
      await seed.send(
        new TagResourceCommand({ ResourceARN: arnOf('web-cpu'), Tags: [{ Key: SILENCED, Value: other }] }),
      );
    });
    try {
      const rows = await unsilence(clients(), about, { dryRun: false, hasTime: always });
      expect(await tagsOf('web-cpu')).toMatchObject({ [SILENCED]: other });
      expect(ops('UntagResource')).toHaveLength(0);
      expect(rowOf(rows, 'web-cpu')?.detail).toMatch(/changed meanwhile .*left as it is/);
    } finally {
      proxy.before('EnableAlarmActions', undefined);
    }
  });

  it('sends nothing that changes an alarm in a dry run, and says what it would do', async () => {
    await serviceAlarm('web-cpu', 'web');
    const planned = await silence(clients(), await find([WEB]), { dryRun: true, hasTime: always, now: NOW });
    expect(planned).toMatchObject([
      { outcome: 'planned', detail: expect.stringMatching(/disable actions while stage\/web is parked/) },
    ]);
    // The plan has no clock in it: a dry run and the apply minutes later agree (plan digest)
    expect(planned[0]?.detail).not.toMatch(/2026/);
    expect(ops('TagResource')).toHaveLength(0);
    expect(sent.disable).toEqual([]);
  });

  it('stops starting calls at the deadline: nothing left disabled without its tag, the rest undone', async () => {
    for (let i = 0; i < 6; i++) await serviceAlarm(`web-${i}`, 'web');
    const about = await find([WEB]);
    // Time for three tag writes only
    let left = 3;
    const rows = await silence(clients(), about, { dryRun: false, hasTime: () => left-- > 0, now: NOW });

    // Assess: three tagged, none disabled (the batch would have started after the deadline); every row
    // undone, saying where the alarm stands; the next stop re-tags and disables them
    expect(ops('TagResource')).toHaveLength(3);
    expect(sent.disable).toEqual([]);
    expect([...actions.values()].every(Boolean)).toBe(true);
    expect(rows.map((r) => r.outcome)).toEqual(Array(6).fill('undone'));
    expect(
      rows.filter((r) => /tagged nightshift:silenced but actions still enabled/.test(r.detail)),
    ).toHaveLength(3);
    expect(
      rows.filter((r) => /time out: actions still enabled; the next stop silences it/.test(r.detail)),
    ).toHaveLength(3);
    // Every alarm has a row
    expect(rows).toHaveLength(6);
    expect(about.every((a: AlarmAbout) => rows.some((r) => r.arn === a.arn))).toBe(true);
  });
});
