import { describe, expect, it } from 'vitest';
import {
  buildReport,
  compactReport,
  MAX_REPORT_BYTES,
  UNCHANGED_LISTED,
  type ResourceResult,
} from '#shared/report.ts';
import { RunFailedError } from '#shared/errors.ts';
import { hasNextPage, OutOfTimeError, pagesWithin } from '#shared/deadline.ts';
import { carriedFirst, runStepsWithin } from '#shared/execute.ts';
import { claimOutcome, RunLeases, runsHoldingLeases, type LeaseStore } from '#shared/lease.ts';
import { formatReport } from '#shared/report-text.ts';
import { reportSummary, shouldPublish } from '#shared/summary.ts';
import { PLAN_DIGEST, planDigest, refuseChangedPlan } from '#shared/plan-digest.ts';

const rows = (n: number, outcome: ResourceResult['outcome'], detail = 'x'): ResourceResult[] =>
  Array.from({ length: n }, (_, i) => ({
    arn: `arn:aws:ec2:eu-central-1::snapshot/snap-${outcome}-${i}`,
    type: 'ebs-snapshot',
    outcome,
    detail,
  }));

describe('compactReport', () => {
  it('counts unchanged rows instead of listing them past the threshold, and keeps every change and failure', () => {
    // Prepare: a sweep over 30,000 snapshots
    const report = buildReport('sweep', false, [
      ...rows(25_000, 'unchanged'),
      ...rows(4_000, 'changed'),
      ...rows(900, 'failed'),
      ...rows(100, 'undone'),
    ]);

    // Act
    const out = compactReport(report);

    // Assess
    expect(out.summary).toEqual(report.summary);
    expect(out.omitted).toEqual({ unchanged: 25_000 });
    expect(out.resources).toHaveLength(5_000);
    expect(out.resources.some((r) => r.outcome === 'unchanged')).toBe(false);
    expect(Buffer.byteLength(JSON.stringify(out))).toBeLessThan(MAX_REPORT_BYTES);
    expect(formatReport(out)).toContain('not listed: 25000 unchanged (counted in the summary)');
  });

  it('lists unchanged rows up to the threshold', () => {
    const report = buildReport('sweep', false, rows(UNCHANGED_LISTED, 'unchanged'));
    expect(compactReport(report)).toBe(report);
  });

  it('counts skipped rows too when the rest would not fit a synchronous response', () => {
    const long = 'a reason that is long enough to matter '.repeat(5);
    const report = buildReport('sweep', false, [...rows(30_000, 'skipped', long), ...rows(10, 'changed')]);
    const out = compactReport(report);
    expect(out.omitted).toEqual({ skipped: 30_000 });
    expect(out.resources).toHaveLength(10);
  });
});

describe('RunFailedError', () => {
  it('carries the reason of a row refused before any call, which has only a detail', () => {
    const report = buildReport('copy', false, [
      {
        arn: 'arn:aws:rds:eu-west-1:123456789012:snapshot:orders',
        type: 'rds-snapshot',
        outcome: 'failed',
        detail:
          'encrypted snapshot, and no KMS key is configured for eu-west-1 in TARGET_KMS_KEYS; nothing attempted',
      },
    ]);
    expect(new RunFailedError(report).message).toBe(
      'all 1 resource(s) failed; first error: encrypted snapshot, and no KMS key is configured for eu-west-1 in TARGET_KMS_KEYS; nothing attempted',
    );
  });

  it('prefers the error of a failed call', () => {
    const report = buildReport('stop', false, [
      {
        arn: 'a',
        type: 't',
        outcome: 'failed',
        detail: 'stop it',
        error: 'UpdateService failed: Throttling',
      },
    ]);
    expect(new RunFailedError(report).message).toBe(
      'all 1 resource(s) failed; first error: UpdateService failed: Throttling',
    );
  });
});

describe('pagesWithin', () => {
  async function* pages(n: number) {
    for (let i = 0; i < n; i++) yield { items: [i], NextToken: i < n - 1 ? `t${i + 1}` : undefined };
  }

  it('stops before asking for another page once the run has no time left', async () => {
    let calls = 0;
    const read: number[] = [];
    const hasTime = () => ++calls < 3;
    await expect(async () => {
      for await (const p of pagesWithin(pages(10), hasTime, 'EBS snapshots')) read.push(...p.items);
    }).rejects.toThrow(new OutOfTimeError('EBS snapshots'));
    expect(read).toEqual([0, 1, 2]);
  });

  it('does not call a complete read short after its last page', async () => {
    const read: number[] = [];
    for await (const p of pagesWithin(pages(1), () => false, 'x')) read.push(...p.items);
    expect(read).toEqual([0]);
    expect(hasNextPage({ Marker: 'm' })).toBe(true);
    expect(hasNextPage({ nextToken: '' })).toBe(false);
  });
});

describe('carriedFirst', () => {
  it('moves what the last run left undone to the front, each part in order', () => {
    const items = ['a', 'b', 'c', 'd', 'e'].map((arn) => ({ arn }));
    expect(carriedFirst(items, new Set(['d', 'b'])).map((i) => i.arn)).toEqual(['b', 'd', 'a', 'c', 'e']);
    expect(carriedFirst(items, undefined).map((i) => i.arn)).toEqual(['a', 'b', 'c', 'd', 'e']);
  });
});

describe('run summaries', () => {
  it('are sent when work was left undone, even in a dry run, and say so in the subject', () => {
    const report = buildReport('sweep', true, [...rows(2, 'planned'), ...rows(3, 'undone')]);
    expect(shouldPublish(report)).toBe(true);
    expect(reportSummary(report, { service: 'snapshot-tags', correlationId: 'c' }).subject).toBe(
      'nightshift snapshot-tags sweep (dry run): 0 changed, 0 failed, 3 undone',
    );
  });
});

describe('plan digest', () => {
  const work = (arn: string, detail: string, hasWork = true, digestKey?: string) => ({
    arn,
    type: 't',
    detail,
    hasWork,
    ...(digestKey && { digestKey }),
  });

  it('is the same for the same changes in any order, and ignores resources with nothing to do', () => {
    const a = planDigest([work('a', 'stop'), work('b', 'stop'), work('c', 'already stopped', false)]);
    expect(a).toMatch(PLAN_DIGEST);
    expect(planDigest([work('b', 'stop'), work('a', 'stop')])).toBe(a);
    expect(planDigest([work('a', 'stop'), work('b', 'start')])).not.toBe(a);
  });

  it('uses the stable digestKey rather than a detail that carries a clock', () => {
    expect(planDigest([work('g', 'replace i-1 (20d 4h old)', true, 'replace i-1')])).toBe(
      planDigest([work('g', 'replace i-1 (20d 5h old)', true, 'replace i-1')]),
    );
  });

  it('refuses an apply whose plan is not the one confirmed, row by row, and lets the confirmed one through', () => {
    const confirmed = planDigest([work('a', 'desiredCount 3 → 0')]);
    expect(refuseChangedPlan(confirmed, [work('a', 'desiredCount 3 → 0')])).toBeUndefined();
    expect(refuseChangedPlan(undefined, [work('a', 'desiredCount 5 → 0')])).toBeUndefined();
    const rows = refuseChangedPlan(confirmed, [work('a', 'desiredCount 5 → 0'), work('b', 'nothing', false)]);
    expect(rows?.map((r) => r.outcome)).toEqual(['skipped', 'skipped']);
    expect(rows?.[0]?.detail).toMatch(
      /^the plan changed since it was confirmed .*\(the new plan: desiredCount 5 → 0\)$/,
    );
    expect(refuseChangedPlan(confirmed, [])).toHaveLength(1);
  });
});

describe('runStepsWithin', () => {
  const names = { tag: 'save state (TagResource)', park: 'park scaling', zero: 'set desiredCount' };
  const steps = [{ op: 'tag' as const }, { op: 'park' as const }, { op: 'zero' as const }];

  it('stops between steps once the run has no time left, saying what was done and that the next run finishes it', async () => {
    const ran: string[] = [];
    let time = 2;
    const out = await runStepsWithin(
      steps,
      names,
      async (s) => void ran.push(s.op),
      () => time-- > 1,
    );
    expect(ran).toEqual(['tag', 'park']);
    expect(out).toEqual({
      outcome: 'undone',
      message:
        'stopped before set desiredCount: the run was about to time out; done before it: save state (TagResource), park scaling; the next run finishes it',
    });
  });

  it('fails at the first failing step and runs every step when there is time', async () => {
    const failing = await runStepsWithin(
      steps,
      names,
      async (s) => {
        if (s.op === 'park') throw Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
      },
      () => true,
    );
    expect(failing).toEqual({
      outcome: 'failed',
      message:
        'park scaling failed: ThrottlingException: Rate exceeded; done before it: save state (TagResource)',
    });
    expect(
      await runStepsWithin(
        steps,
        names,
        async () => undefined,
        () => true,
      ),
    ).toEqual({ outcome: 'done' });
  });
});

describe('lease claims', () => {
  it('are undone when another run holds the scope, and failed when the table cannot be used', () => {
    const lease = {
      scope: 's',
      holder: 'h',
      token: 't',
      acquiredAt: new Date(0),
      expiresAt: new Date(1),
      version: 1,
      data: {},
    };
    expect(claimOutcome({ ok: false, heldBy: lease })).toBe('undone');
    expect(claimOutcome({ ok: false, error: 'AccessDeniedException' })).toBe('failed');
  });

  it('registers a run holding leases until it releases them, so the CLI can release them on Ctrl-C', async () => {
    const store = {
      table: 't',
      acquire: async () => ({ ok: true }),
      release: async () => undefined,
    } as unknown as LeaseStore;
    const run = new RunLeases(
      store,
      { holder: 'h', token: 't' },
      () => new Date(),
      () => 1000,
    );
    await run.take('scope');
    expect(runsHoldingLeases.has(run)).toBe(true);
    await run.releaseAll();
    expect(runsHoldingLeases.has(run)).toBe(false);
  });
});

describe('compactReport at its limits', () => {
  it('folds thousands of rows that failed the same way into rows naming up to 1000 resources each', () => {
    // Prepare: every CreateTags refused by IAM, each error with its own encoded authorization message
    const blob = 'x'.repeat(1500);
    const rows = Array.from({ length: 20_000 }, (_, i) => ({
      arn: `arn:aws:ec2:eu-central-1::snapshot/snap-${i.toString(16).padStart(17, '0')}`,
      type: 'ebs-snapshot',
      outcome: 'failed' as const,
      detail: `add 2 tags from volume vol-${i.toString(16).padStart(17, '0')}`,
      error: `CreateTags failed: UnauthorizedOperation: You are not authorized. Encoded authorization failure message: ${blob}${i}`,
    }));
    const report = buildReport('sweep', false, rows);

    // Act
    const out = compactReport(report);

    // Assess: every snapshot still named, the report fits, the summary untouched
    expect(Buffer.byteLength(JSON.stringify(out))).toBeLessThan(MAX_REPORT_BYTES);
    expect(out.summary.failed).toBe(20_000);
    expect(out.resources).toHaveLength(20);
    expect(out.resources[0]).toMatchObject({
      arn: '1000 resources',
      outcome: 'failed',
      error:
        'CreateTags failed: UnauthorizedOperation: You are not authorized. Encoded authorization failure message: <in the log>',
    });
    expect(out.resources.flatMap((r) => r.detail.match(/snap-[0-9a-f]{17}/g) ?? [])).toHaveLength(20_000);
  });

  it('lists what fits, failures first, and counts the rest, when even folded rows do not fit', () => {
    const rows = Array.from({ length: 30_000 }, (_, i) => ({
      arn: `arn:aws:rds:eu-central-1:123456789012:snapshot:s-${i}`,
      type: 'rds-snapshot',
      outcome: (i % 2 ? 'failed' : 'changed') as 'failed' | 'changed',
      detail: `unique reason ${i} ${'y'.repeat(300)}`,
    }));
    const out = compactReport(buildReport('sweep', false, rows));
    expect(Buffer.byteLength(JSON.stringify(out))).toBeLessThanOrEqual(MAX_REPORT_BYTES);
    const listed = out.resources.length;
    expect(listed + (out.omitted?.failed ?? 0) + (out.omitted?.changed ?? 0)).toBe(30_000);
    expect(
      out.resources.every(
        (r, i, all) => i === 0 || all[i - 1]?.outcome === 'failed' || r.outcome !== 'failed',
      ),
    ).toBe(true);
  });
});
