/**
 * ssm-restart's permissions, the one definition of its hub role (infra/generated/ssm-restart-role.yml)
 * and its spoke role (infra/spoke.yml), both written by scripts/iam.ts.
 *
 * Instances and ECS services are restarted only when they carry the tag nightshift:restartable=true: the
 * role may send commands to, redeploy, and record restarts on no other instance or service. The key is
 * fixed: IAM condition keys cannot be CloudFormation functions.
 */
import type { FunctionPermissions, Scope, Statement } from '#shared/iam/policy.ts';

const estate = (scope: Scope): Statement[] => {
  const instance = scope.arn('ec2', 'instance/*');
  const service = scope.arn('ecs', 'service/*/*');
  const restartable = { StringEquals: { 'aws:ResourceTag/nightshift:restartable': 'true' } };
  const lastRestartOnly = { 'ForAllValues:StringEquals': { 'aws:TagKeys': ['nightshift:last-restart'] } };
  return [
    // Describe calls, DescribeInstanceInformation and GetCommandInvocation support no resource-level
    // permissions.
    {
      Sid: 'ReadTargets',
      Effect: 'Allow',
      Action: [
        'ec2:DescribeInstances',
        'autoscaling:DescribeAutoScalingGroups',
        'ssm:DescribeInstanceInformation',
        'ssm:GetCommandInvocation',
      ],
      Resource: '*',
    },
    { Sid: 'ReadServices', Effect: 'Allow', Action: 'ecs:DescribeServices', Resource: service },
    // A service without its own nightshift:schedule or nightshift:override follows its cluster's: read
    // the cluster's tags, so a service parked (or about to be) is not restarted.
    {
      Sid: 'ReadClusters',
      Effect: 'Allow',
      Action: 'ecs:DescribeClusters',
      Resource: scope.arn('ecs', 'cluster/*'),
    },
    // ListTagsForResource is authorised on the alarm itself: only alarms' tags are readable.
    {
      Sid: 'ReadAlarmTags',
      Effect: 'Allow',
      Action: 'cloudwatch:ListTagsForResource',
      Resource: scope.arn('cloudwatch', 'alarm:*'),
    },
    // SendCommand is authorised on the document and on every instance: the one shell document nightshift
    // uses, and only instances that carry the restartable tag.
    {
      Sid: 'RunShellScriptDocument',
      Effect: 'Allow',
      Action: 'ssm:SendCommand',
      Resource: scope.arn('ssm', 'document/AWS-RunShellScript', { account: false }),
    },
    {
      Sid: 'RunOnRestartableInstances',
      Effect: 'Allow',
      Action: 'ssm:SendCommand',
      Resource: instance,
      Condition: { StringEquals: { 'ssm:resourceTag/nightshift:restartable': 'true' } },
    },
    // The only tag nightshift writes on instances is the last-restart time, and only on restartable ones.
    {
      Sid: 'RecordInstanceRestarts',
      Effect: 'Allow',
      Action: 'ec2:CreateTags',
      Resource: instance,
      Condition: { ...lastRestartOnly, ...restartable },
    },
    // Only services that opted in with nightshift:restartable=true are redeployed or tagged (ECS checks
    // service tags for long-format service ARNs).
    {
      Sid: 'RedeployServices',
      Effect: 'Allow',
      Action: 'ecs:UpdateService',
      Resource: service,
      Condition: restartable,
    },
    {
      Sid: 'RecordServiceRestarts',
      Effect: 'Allow',
      Action: 'ecs:TagResource',
      Resource: service,
      Condition: { ...lastRestartOnly, ...restartable },
    },
  ];
};

export const permissions: FunctionPermissions = { estate };
