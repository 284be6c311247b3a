/**
 * The IAM statements a function that silences alarms while parked needs (shared/silence.ts).
 * Every call is authorised on the alarm. TagResource and UntagResource are limited to the one key
 * nightshift:silenced (aws:TagKeys; the Null test makes a request without tag keys match nothing).
 * Disable/EnableAlarmActions carry no aws:ResourceTag condition: the tag is written milliseconds before
 * the disable, and a role that could not disable would leave tags saying alarms are silenced.
 */
import { SILENCED_TAG } from '../silence.ts';
import type { Scope, Statement } from './policy.ts';

export const silenceStatements = (scope: Scope): Statement[] => [
  {
    Sid: 'ReadAlarmsAndTheirTags',
    Effect: 'Allow',
    Action: ['cloudwatch:DescribeAlarms', 'cloudwatch:ListTagsForResource'],
    Resource: scope.arn('cloudwatch', 'alarm:*'),
  },
  {
    Sid: 'SilenceAlarmActions',
    Effect: 'Allow',
    Action: ['cloudwatch:DisableAlarmActions', 'cloudwatch:EnableAlarmActions'],
    Resource: scope.arn('cloudwatch', 'alarm:*'),
  },
  {
    Sid: 'TagSilencedAlarms',
    Effect: 'Allow',
    Action: ['cloudwatch:TagResource', 'cloudwatch:UntagResource'],
    Resource: scope.arn('cloudwatch', 'alarm:*'),
    Condition: {
      'ForAllValues:StringEquals': { 'aws:TagKeys': [SILENCED_TAG] },
      Null: { 'aws:TagKeys': 'false' },
    },
  },
];
