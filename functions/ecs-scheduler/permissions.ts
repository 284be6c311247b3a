/**
 * ecs-scheduler's permissions, the one definition of its hub role (infra/generated/ecs-scheduler-role.yml)
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

const SERVICE_CHANGES = [
  'ecs:UpdateService',
  'ecs:TagResource',
  'ecs:UntagResource',
  'application-autoscaling:RegisterScalableTarget',
];
const GROUP_CHANGES = [
  'autoscaling:UpdateAutoScalingGroup',
  'autoscaling:CreateOrUpdateTags',
  'autoscaling:DeleteTags',
];
const SUFFIX = { env: 'Env', environment: 'Environment', stage: 'Stage' } as const;

/**
 * Defence in depth for the default protection: IAM refuses changes to services, scalable targets and
 * groups whose own tags say production, whatever the code decides. Cluster tags, and targets that carry
 * no tags, are checked in code only.
 */
const denyProduction = (what: 'Services' | 'Groups', actions: string[]): Statement[] =>
  PROTECTED_TAG_KEYS.map((key) => ({
    Sid: `DenyProduction${what}By${SUFFIX[key]}`,
    Effect: 'Deny',
    Action: actions,
    Resource: '*',
    Condition: { StringEqualsIgnoreCase: { [`aws:ResourceTag/${key}`]: PRODUCTION_VALUES } },
  }));

const estate = (scope: Scope): Statement[] => {
  const service = scope.arn('ecs', 'service/*/*');
  const group = scope.arn('autoscaling', 'autoScalingGroup:*:autoScalingGroupName/*');
  return [
    // List and Describe calls support no resource-level permissions.
    {
      Sid: 'ReadEstate',
      Effect: 'Allow',
      Action: [
        'ecs:ListClusters',
        'ecs:DescribeClusters',
        'ecs:ListServices',
        'ecs:DescribeServices',
        'ecs:DescribeCapacityProviders',
        'ecs:ListTagsForResource',
        'application-autoscaling:DescribeScalableTargets',
        'autoscaling:DescribeAutoScalingGroups',
        'autoscaling:DescribeTags',
        // A start waits for the databases of its environment (read only: rds-scheduler starts them).
        'rds:DescribeDBInstances',
        'rds:DescribeDBClusters',
      ],
      Resource: '*',
    },
    { Sid: 'ScaleServices', Effect: 'Allow', Action: 'ecs:UpdateService', Resource: service },
    // The tags nightshift writes or removes: its saved state here, overrides below.
    {
      Sid: 'SaveServiceState',
      Effect: 'Allow',
      Action: ['ecs:TagResource', 'ecs:UntagResource'],
      Resource: service,
      Condition: { 'ForAllValues:StringEquals': { 'aws:TagKeys': ['nightshift:stopped'] } },
    },
    // Overrides (nightshift wake|sleep): set on services or clusters, removed once expired.
    {
      Sid: 'Overrides',
      Effect: 'Allow',
      Action: ['ecs:TagResource', 'ecs:UntagResource'],
      Resource: [service, scope.arn('ecs', 'cluster/*')],
      Condition: { 'ForAllValues:StringEquals': { 'aws:TagKeys': ['nightshift:override'] } },
    },
    {
      Sid: 'GroupOverrides',
      Effect: 'Allow',
      Action: ['autoscaling:CreateOrUpdateTags', 'autoscaling:DeleteTags'],
      Resource: group,
      Condition: { 'ForAllValues:StringEquals': { 'aws:TagKeys': ['nightshift:override'] } },
    },
    // Silence while parked (shared/silence.ts): the alarms about what a stop parks, enabled again at the
    // start; only the nightshift:silenced tag key.
    ...silenceStatements(scope),
    // Scheduled tasks in parked clusters (scheduled-tasks.ts): read-only, the stop report warns.
    // ListRules is a List action without a resource type (Resource "*"); ListTargetsByRule takes the
    // rule's ARN (rule/<name> on the default bus).
    { Sid: 'ListScheduledTaskRules', Effect: 'Allow', Action: 'events:ListRules', Resource: '*' },
    {
      Sid: 'ReadScheduledTaskTargets',
      Effect: 'Allow',
      Action: 'events:ListTargetsByRule',
      Resource: scope.arn('events', 'rule/*'),
    },
    // EventBridge Scheduler (Service Authorization Reference, scheduler): ListSchedules has no resource
    // type (Resource "*"); GetSchedule takes the schedule's ARN, schedule/<group name>/<schedule name>,
    // any group.
    { Sid: 'ListScheduledTaskSchedules', Effect: 'Allow', Action: 'scheduler:ListSchedules', Resource: '*' },
    {
      Sid: 'ReadScheduledTaskSchedules',
      Effect: 'Allow',
      Action: 'scheduler:GetSchedule',
      Resource: scope.arn('scheduler', 'schedule/*'),
    },
    // Application Auto Scaling also checks that the caller may change the target's service
    // (ecs:UpdateService here), so this cannot reach other namespaces' targets.
    {
      Sid: 'ParkServiceScaling',
      Effect: 'Allow',
      Action: 'application-autoscaling:RegisterScalableTarget',
      Resource: scope.arn('application-autoscaling', 'scalable-target/*'),
    },
    { Sid: 'ParkCapacity', Effect: 'Allow', Action: 'autoscaling:UpdateAutoScalingGroup', Resource: group },
    {
      Sid: 'SaveCapacityState',
      Effect: 'Allow',
      Action: ['autoscaling:CreateOrUpdateTags', 'autoscaling:DeleteTags'],
      Resource: group,
      Condition: { 'ForAllValues:StringEquals': { 'aws:TagKeys': ['nightshift:stopped'] } },
    },
    ...denyProduction('Services', SERVICE_CHANGES),
    ...denyProduction('Groups', GROUP_CHANGES),
  ];
};

export const permissions: FunctionPermissions = { estate };
