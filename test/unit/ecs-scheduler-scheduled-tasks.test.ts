/**
 * scheduled-tasks.ts on its own: which rows count as parked, and a run out of time while reading the
 * targets of many rules (one call each) stops reading and says so in one row.
 */
import { describe, expect, it } from 'vitest';
import { EventBridgeClient, ListRulesCommand, ListTargetsByRuleCommand } from '@aws-sdk/client-eventbridge';
import { mockClient } from 'aws-sdk-client-mock';
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
