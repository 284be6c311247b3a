/**
 * instance-rotation's permissions, the one definition of its hub role
 * (infra/generated/instance-rotation-role.yml) and its spoke role (infra/spoke.yml), both written by
 * scripts/iam.ts.
 */
import type { FunctionPermissions, Scope, Statement } from '#shared/iam/policy.ts';

const estate = (scope: Scope): Statement[] => {
  const group = scope.arn('autoscaling', 'autoScalingGroup:*:autoScalingGroupName/*');
  const optedIn = { StringLike: { 'autoscaling:ResourceTag/nightshift:rotate': '*' } };
  const inFlight = { StringLike: { 'autoscaling:ResourceTag/nightshift:rotation': '*' } };
  return [
    {
      Sid: 'ReadGroupsAndInstances',
      Effect: 'Allow',
      Action: [
        'autoscaling:DescribeAutoScalingGroups',
        'autoscaling:DescribeScalingActivities',
        'autoscaling:DescribeInstanceRefreshes',
        'ec2:DescribeInstances',
        'ecs:ListClusters',
        'ecs:ListContainerInstances',
        'ecs:DescribeContainerInstances',
      ],
      Resource: '*',
    },
    // Only groups that opted in with the nightshift:rotate tag, or have a rotation in flight (so one is
    // finished or rolled back even if the group opted out meanwhile), can be resized, have processes
    // held, or have instances terminated (the old instance, or the replacement of a rotation rolled back,
    // by id, with ShouldDecrementDesiredCapacity).
    {
      Sid: 'RotateOptedInGroups',
      Effect: 'Allow',
      Action: [
        'autoscaling:SetDesiredCapacity',
        'autoscaling:TerminateInstanceInAutoScalingGroup',
        'autoscaling:SuspendProcesses',
        'autoscaling:ResumeProcesses',
      ],
      Resource: group,
      Condition: optedIn,
    },
    {
      Sid: 'FinishRotationsInFlight',
      Effect: 'Allow',
      Action: [
        'autoscaling:SetDesiredCapacity',
        'autoscaling:TerminateInstanceInAutoScalingGroup',
        'autoscaling:ResumeProcesses',
      ],
      Resource: group,
      Condition: inFlight,
    },
    // Its own state only: the rotation in flight, and when one was abandoned (the back-off).
    {
      Sid: 'SaveRotationState',
      Effect: 'Allow',
      Action: ['autoscaling:CreateOrUpdateTags', 'autoscaling:DeleteTags'],
      Resource: group,
      Condition: {
        ...optedIn,
        'ForAllValues:StringEquals': {
          'aws:TagKeys': ['nightshift:rotation', 'nightshift:rotation-abandoned'],
        },
      },
    },
    // A rotation in flight updates its own state (its recorded replacement, a roll-back's phase) even on
    // a group that opted out meanwhile; only that tag, only where it is already.
    {
      Sid: 'UpdateRotationInFlight',
      Effect: 'Allow',
      Action: 'autoscaling:CreateOrUpdateTags',
      Resource: group,
      Condition: { ...inFlight, 'ForAllValues:StringEquals': { 'aws:TagKeys': ['nightshift:rotation'] } },
    },
    {
      Sid: 'ClearRotationState',
      Effect: 'Allow',
      Action: 'autoscaling:DeleteTags',
      Resource: group,
      Condition: {
        ...inFlight,
        'ForAllValues:StringEquals': {
          'aws:TagKeys': ['nightshift:rotation', 'nightshift:rotation-abandoned'],
        },
      },
    },
    {
      Sid: 'DrainContainerInstances',
      Effect: 'Allow',
      Action: 'ecs:UpdateContainerInstancesState',
      Resource: scope.arn('ecs', 'container-instance/*'),
    },
  ];
};

export const permissions: FunctionPermissions = { estate };
