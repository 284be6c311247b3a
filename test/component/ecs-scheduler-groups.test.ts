/**
 * What moto cannot show for standalone groups: DescribeCapacityProviders without names lists every
 * capacity provider of the account 10 a page (maxResults 1–10); every page must be read, or a group
 * behind the 11th provider would be parked on its own.
 */
import { describe, expect, it } from 'vitest';
import { mockClient } from 'aws-sdk-client-mock';
import { DescribeCapacityProvidersCommand, ECSClient } from '@aws-sdk/client-ecs';
import { ApplicationAutoScalingClient } from '@aws-sdk/client-application-auto-scaling';
import { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { capacityProviderGroups } from '#functions/ecs-scheduler/groups.ts';

const groupArn = (i: number) =>
  `arn:aws:autoscaling:eu-central-1:123456789012:autoScalingGroup:uuid-${i}:autoScalingGroupName/g${i}`;

describe('capacity providers behind standalone groups', () => {
  it('reads every page of the account’s capacity providers', async () => {
    // Prepare: 12 providers, 10 on the first page
    const ecs = new ECSClient({ region: 'eu-central-1' });
    const mock = mockClient(ecs);
    const provider = (i: number) => ({
      name: `cp-${i}`,
      autoScalingGroupProvider: { autoScalingGroupArn: groupArn(i) },
    });
    mock
      .on(DescribeCapacityProvidersCommand)
      .callsFake((input: { nextToken?: string }) =>
        input.nextToken === 'page-2'
          ? { capacityProviders: [provider(10), provider(11)] }
          : { capacityProviders: Array.from({ length: 10 }, (_, i) => provider(i)), nextToken: 'page-2' },
      );
    const clients = {
      ecs,
      scaling: new ApplicationAutoScalingClient({ region: 'eu-central-1' }),
      autoscaling: new AutoScalingClient({ region: 'eu-central-1' }),
    };

    // Act
    const providers = await capacityProviderGroups({ clients, hasTime: () => true });

    // Assess
    expect(providers.size).toBe(12);
    expect(providers.get(groupArn(11))).toBe('cp-11');
    expect(mock.commandCalls(DescribeCapacityProvidersCommand).map((c) => c.args[0].input.nextToken)).toEqual(
      [undefined, 'page-2'],
    );
  });
});
