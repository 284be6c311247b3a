/**
 * snapshot-tags' permissions, the one definition of its hub role (infra/generated/snapshot-tags-role.yml)
 * and its spoke role (infra/spoke.yml), both written by scripts/iam.ts.
 */
import type { FunctionPermissions, Scope, Statement } from '#shared/iam/policy.ts';

const estate = (scope: Scope): Statement[] => [
  // Describe calls support no resource-level permissions.
  {
    Sid: 'ReadSnapshotsAndSources',
    Effect: 'Allow',
    Action: [
      'rds:DescribeDBSnapshots',
      'rds:DescribeDBClusterSnapshots',
      'rds:DescribeDBInstances',
      'rds:DescribeDBClusters',
      'ec2:DescribeSnapshots',
      'ec2:DescribeVolumes',
    ],
    Resource: '*',
  },
  {
    Sid: 'TagRdsSnapshots',
    Effect: 'Allow',
    Action: 'rds:AddTagsToResource',
    Resource: [scope.arn('rds', 'snapshot:*'), scope.arn('rds', 'cluster-snapshot:*')],
  },
  // EC2 snapshot ARNs in IAM carry no account.
  {
    Sid: 'TagEbsSnapshots',
    Effect: 'Allow',
    Action: 'ec2:CreateTags',
    Resource: scope.arn('ec2', 'snapshot/*', { account: false }),
  },
  // nightshift:* tags are state other functions keep (nightshift:source-arn marks the copies
  // rds-snapshot-copy prunes): copying them is refused in code and here.
  {
    Sid: 'DenyNightshiftStateTags',
    Effect: 'Deny',
    Action: ['rds:AddTagsToResource', 'ec2:CreateTags'],
    Resource: '*',
    Condition: { 'ForAnyValue:StringLike': { 'aws:TagKeys': ['nightshift:*'] } },
  },
];

export const permissions: FunctionPermissions = { estate };
