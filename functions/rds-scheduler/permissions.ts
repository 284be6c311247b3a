/**
 * rds-scheduler's permissions, the one definition of its hub role (infra/generated/rds-scheduler-role.yml)
 * and its spoke role (infra/spoke.yml), both written by scripts/iam.ts.
 */
import {
  PRODUCTION_VALUES,
  PROTECTED_TAG_KEYS,
  type FunctionPermissions,
  type Scope,
  type Statement,
} from '#shared/iam/policy.ts';
import { silenceStatements } from '#shared/iam/silence.ts';

const MUTATIONS = [
  'rds:StopDBInstance',
  'rds:StartDBInstance',
  'rds:StopDBCluster',
  'rds:StartDBCluster',
  'rds:AddTagsToResource',
  'rds:RemoveTagsFromResource',
];
const SUFFIX = { env: 'Env', environment: 'Environment', stage: 'Stage' } as const;
const RDS_SUFFIX = { env: 'Tag', environment: 'EnvironmentTag', stage: 'StageTag' } as const;
const tagKeysOnly = (key: string) => ({
  'ForAllValues:StringEquals': { 'aws:TagKeys': [key] },
  Null: { 'aws:TagKeys': 'false' },
});

const estate = (scope: Scope): Statement[] => {
  const db = scope.arn('rds', 'db:*');
  const cluster = scope.arn('rds', 'cluster:*');
  return [
    // Describe and List calls support no resource-level permissions. The ECS and Auto Scaling reads are
    // the environment gate's: a database stops once its services and groups rest.
    {
      Sid: 'ReadEstate',
      Effect: 'Allow',
      Action: [
        'rds:DescribeDBInstances',
        'rds:DescribeDBClusters',
        'rds:DescribeGlobalClusters',
        'rds:ListTagsForResource',
        'ecs:ListClusters',
        'ecs:DescribeClusters',
        'ecs:ListServices',
        'ecs:DescribeServices',
        'autoscaling:DescribeAutoScalingGroups',
      ],
      Resource: '*',
    },
    {
      Sid: 'StopAndStartInstances',
      Effect: 'Allow',
      Action: ['rds:StopDBInstance', 'rds:StartDBInstance'],
      Resource: db,
    },
    {
      Sid: 'StopAndStartClusters',
      Effect: 'Allow',
      Action: ['rds:StopDBCluster', 'rds:StartDBCluster'],
      Resource: cluster,
    },
    // The tag a stop writes before it stops, removed by the start.
    {
      Sid: 'StoppedTag',
      Effect: 'Allow',
      Action: ['rds:AddTagsToResource', 'rds:RemoveTagsFromResource'],
      Resource: [db, cluster],
      Condition: tagKeysOnly('nightshift:stopped'),
    },
    // Silence while parked (shared/silence.ts): the alarms about the databases a stop parks, enabled
    // again at the start; only the nightshift:silenced tag key.
    ...silenceStatements(scope),
    // An expired override (nightshift:override) is removed once the database is back on schedule.
    {
      Sid: 'ExpiredOverrides',
      Effect: 'Allow',
      Action: 'rds:RemoveTagsFromResource',
      Resource: [db, cluster],
      Condition: tagKeysOnly('nightshift:override'),
    },
    // wake / sleep record the override (nightshift:override) on the database itself; only that key.
    {
      Sid: 'RecordOverrides',
      Effect: 'Allow',
      Action: 'rds:AddTagsToResource',
      Resource: [db, cluster],
      Condition: tagKeysOnly('nightshift:override'),
    },
    // Defence in depth for the default protection: IAM refuses to stop, start or tag a database whose own
    // tags say production, whatever the code decides. RDS supports aws:ResourceTag and its own
    // rds:db-tag / rds:cluster-tag on these actions (Service Authorization Reference, Amazon RDS): both
    // are denied, so a policy evaluated either way refuses.
    ...PROTECTED_TAG_KEYS.map((key): Statement => ({
      Sid: `DenyProductionBy${SUFFIX[key]}`,
      Effect: 'Deny',
      Action: MUTATIONS,
      Resource: '*',
      Condition: { StringEqualsIgnoreCase: { [`aws:ResourceTag/${key}`]: PRODUCTION_VALUES } },
    })),
    // Keys under one condition operator are ANDed: one statement per key. rds:db-tag and rds:cluster-tag
    // tag keys are case-sensitive (RDS User Guide, "Specifying conditions: Using custom tags"): these
    // catch the lower-case keys, the aws:ResourceTag ones above any case.
    ...(['Instances', 'Clusters'] as const).flatMap((what) =>
      PROTECTED_TAG_KEYS.map((key): Statement => ({
        Sid: `DenyProduction${what}ByRds${RDS_SUFFIX[key]}`,
        Effect: 'Deny',
        Action: MUTATIONS,
        Resource: what === 'Instances' ? db : cluster,
        Condition: {
          StringEqualsIgnoreCase: {
            [`rds:${what === 'Instances' ? 'db' : 'cluster'}-tag/${key}`]: PRODUCTION_VALUES,
          },
        },
      })),
    ),
  ];
};

export const permissions: FunctionPermissions = { estate };
