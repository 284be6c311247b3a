import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseRestartInput } from '#events/ssm-restart/schema.ts';
import {
  actionsHeld,
  compositeReason,
  isComposite,
  parseAlarmTime,
  stateChangedAt,
} from '#events/aws.cloudwatch/schema.ts';
import { RestartConfig } from '#functions/ssm-restart/config.ts';
import { ConfigError, InputError } from '#shared/errors.ts';
import { parseEnv } from '#shared/env.ts';

const refusal = (event: unknown) => {
  try {
    parseRestartInput(event);
  } catch (error) {
    expect(error).toBeInstanceOf(InputError);
    return { field: (error as InputError).field, message: (error as Error).message };
  }
  throw new Error('accepted');
};

const ids = { instanceIds: ['i-0a1b2c3d4e5f60718'] };

describe('ssm-restart input', () => {
  it.each([
    ...readdirSync('events/ssm-restart/samples').map((f) => `ssm-restart/samples/${f}`),
    ...readdirSync('events/aws.cloudwatch/samples').map((f) => `aws.cloudwatch/samples/${f}`),
  ])('accepts events/%s', (file) => {
    expect(() => parseRestartInput(JSON.parse(readFileSync(`events/${file}`, 'utf8')))).not.toThrow();
  });

  it.each([
    ['container', 'web; rm -rf /'],
    ['container', '$(reboot)'],
    ['container', 'web && reboot'],
    ['container', '../x'],
    ['container', '.hidden'],
    ['container', '-rm'],
    ['container', 'w'.repeat(129)],
    ['container', ''],
    ['unit', 'nginx service'],
    ['unit', "nginx'"],
    ['unit', 'nginx\n'],
  ])('refuses %s %j, naming the field', (field, name) => {
    expect(refusal({ action: 'restart', targets: ids, [field]: name })).toEqual({
      field,
      message: `invalid event: field "${field}": expected 1 to 128 letters, digits, "_", ".", "@" or "-", starting with a letter or digit`,
    });
  });

  it.each([
    [{ action: 'restart', targets: ids }, 'container', 'give exactly one of container or unit'],
    [
      { action: 'restart', targets: ids, container: 'a', unit: 'b' },
      'container',
      'give exactly one of container or unit',
    ],
    [
      { action: 'restart', container: 'web' },
      'targets',
      'give targets (with container or unit) or ecsService, exactly one of them',
    ],
    [
      { action: 'restart', targets: { ...ids, tags: { app: 'web' } }, container: 'web' },
      'targets.instanceIds',
      'give exactly one of instanceIds or tags',
    ],
    [{ action: 'restart', targets: { tags: {} }, container: 'web' }, 'targets.tags', 'give at least one tag'],
    [
      {
        action: 'restart',
        targets: { tags: Object.fromEntries(Array.from({ length: 51 }, (_, n) => [`k${n}`, 'v'])) },
        container: 'web',
      },
      'targets.tags',
      'give at most 50 tags: an instance has no more',
    ],
    [
      { action: 'restart', targets: { instanceIds: ['web-1'] }, container: 'web' },
      'targets.instanceIds.0',
      'expected an EC2 instance id such as i-0a1b2c3d4e5f60718',
    ],
    [
      { action: 'restart', ecsService: { cluster: 'shop', service: 'web' }, unit: 'x' },
      'container',
      'an ECS service is redeployed as a whole: leave container and unit out',
    ],
    [
      { action: 'restart', ecsService: { cluster: 'shop', service: 'web;x' } },
      'ecsService.service',
      'expected an ECS service name or ARN',
    ],
    [{ action: 'reboot', targets: ids, container: 'web' }, 'action', 'Invalid input: expected "restart"'],
  ])('refuses %j', (event, field, message) => {
    expect(refusal(event)).toEqual({ field, message: `invalid event: field "${field}": ${message}` });
  });

  it('refuses unknown fields, at the top and inside targets', () => {
    expect(refusal({ action: 'restart', targets: ids, container: 'web', command: 'reboot' })).toEqual({
      field: 'command',
      message: 'invalid event: unknown field(s) command',
    });
    expect(refusal({ action: 'restart', targets: { ...ids, all: true }, container: 'web' }).field).toBe(
      'targets.all',
    );
  });

  it('refuses an alarm event whose resources hold no alarm ARN', () => {
    const event = JSON.parse(readFileSync('events/aws.cloudwatch/samples/alarm-instance.json', 'utf8'));
    expect(refusal({ ...event, resources: ['arn:aws:ec2:eu-central-1:123456789012:instance/i-1'] })).toEqual({
      field: 'resources.0',
      message: 'invalid event: field "resources.0": expected the ARN of a CloudWatch alarm',
    });
  });

  it('refuses a planDigest that is not one a dry run returns', () => {
    expect(refusal({ action: 'restart', targets: ids, container: 'web', planDigest: 'abc' })).toEqual({
      field: 'planDigest',
      message: 'invalid event: field "planDigest": expected the planDigest of a dry run',
    });
  });
});

/**
 * Real CloudWatch events and alarm-action payloads as AWS and SDK projects published them
 * (test/fixtures/aws-events/aws.cloudwatch, see PROVENANCE.md).
 */
describe('published CloudWatch alarm events', () => {
  const fixture = (file: string) =>
    JSON.parse(readFileSync(`test/fixtures/aws-events/aws.cloudwatch/${file}`, 'utf8')) as unknown;
  const alarm = (file: string) => {
    const input = parseRestartInput(fixture(file));
    if (input.action !== 'alarm') throw new Error(`${file} is not an alarm`);
    return input;
  };

  it.each([
    ['awsdocs-single-metric-ec2-instance.json', 'eventbridge'],
    ['awsdocs-metric-math-ec2-instance-inputs.json', 'eventbridge'],
    ['awsdocs-anomaly-detection-ec2-instance.json', 'eventbridge'],
    ['awsdocs-composite-with-suppressor.json', 'eventbridge'],
    ['docs-current-single-metric-muted.json', 'eventbridge'],
    ['docs-current-multi-time-series-alarm.json', 'eventbridge'],
    ['lambda-action-powertools-py-metric-math.json', 'lambda-action'],
    ['lambda-action-powertools-py-composite.json', 'lambda-action'],
  ])('takes %s as an alarm state change (%s)', (file, via) => {
    expect(alarm(file).via).toBe(via);
  });

  it('reads an alarm action payload as the EventBridge event of the same state change', () => {
    const payload = fixture('lambda-action-powertools-py-metric-math.json') as {
      alarmArn: string;
      alarmData: { alarmName: string; configuration: unknown };
    };

    const { event } = alarm('lambda-action-powertools-py-metric-math.json');

    expect(event.resources).toEqual([payload.alarmArn]);
    expect(event['detail-type']).toBe('CloudWatch Alarm State Change');
    expect(event.account).toBe('123456789012');
    expect(event.detail.alarmName).toBe('Test alert');
    expect(event.detail.configuration).toEqual(payload.alarmData.configuration);
  });

  it.each([
    // Not an alarm state change: the rule never routes these here.
    ['awsdocs-config-change-create-composite.json', 'detail-type'],
    ['awsdocs-config-change-update-metric-alarm.json', 'detail-type'],
    ['docs-current-alarm-contributor.json', 'detail-type'],
    // The copy in the Rust runtime has a space inside its alarm ARN.
    ['lambda-action-rust-metric-instance.json', 'alarmArn'],
  ])('refuses %s, naming the field %s', (file, field) => {
    expect(refusal(fixture(file)).field).toBe(field);
  });

  it('says an alarm whose actions a mute rule mutes, or a suppressor suppresses, has its actions held', () => {
    expect(actionsHeld(alarm('docs-current-single-metric-muted.json').event)).toBe(
      'muted by arn:aws:cloudwatch:us-east-1:1234567890:alarm-mute-rule:testMute ' +
        '(2026-01-01T10:00:00.000+0000 to 2026-01-01T12:00:00.000+0000), so its actions are muted for this state change',
    );
    // AWS: after the wait period the composite alarm performs its actions; only this state change's are suppressed
    expect(actionsHeld(alarm('awsdocs-composite-with-suppressor.json').event)).toBe(
      'its actions are suppressed for this state change (actionsSuppressedBy WaitPeriod: it waits up to 120 s for ' +
        'suppressor alarm ServiceMaintenanceAlarm to go into ALARM, and performs its actions after that wait unless ' +
        'the suppressor went into ALARM)',
    );
    // Suppressed in the previous state only: the actions of this state change run.
    expect(actionsHeld(alarm('lambda-action-powertools-py-composite.json').event)).toBeUndefined();
    expect(actionsHeld(alarm('awsdocs-single-metric-ec2-instance.json').event)).toBeUndefined();
  });

  it('tells a composite alarm, which has no metrics, from a metric alarm, from either payload', () => {
    const suppressed = alarm('awsdocs-composite-with-suppressor.json').event;

    expect(isComposite(suppressed)).toBe(true);
    expect(isComposite(alarm('lambda-action-powertools-py-composite.json').event)).toBe(true);
    expect(isComposite(alarm('awsdocs-single-metric-ec2-instance.json').event)).toBe(false);
    expect(isComposite(alarm('lambda-action-powertools-py-metric-math.json').event)).toBe(false);
    expect(compositeReason(suppressed)).toBe(
      'is a composite alarm (ALARM(ServerCpuTooHigh) OR ALARM(TotalNetworkTrafficTooHigh)): it has no metrics, so no ' +
        'InstanceId, AutoScalingGroupName or ClusterName/ServiceName dimension says what to restart; tag the metric ' +
        'alarms in its rule instead; its actions are suppressed for this state change (actionsSuppressedBy ' +
        'WaitPeriod: it waits up to 120 s for suppressor alarm ServiceMaintenanceAlarm to go into ALARM, and ' +
        'performs its actions after that wait unless the suppressor went into ALARM)',
    );
  });

  it("reads when the alarm changed state from detail.state.timestamp, in CloudWatch's own format", () => {
    // EventBridge and the Lambda action both carry it, with a +0000 offset
    expect(stateChangedAt(alarm('awsdocs-single-metric-ec2-instance.json').event)).toEqual(
      new Date('2019-10-02T17:04:40.989Z'),
    );
    expect(stateChangedAt(alarm('lambda-action-powertools-py-composite.json').event)).toEqual(
      new Date('2023-08-04T12:56:46.138Z'),
    );
    expect(parseAlarmTime('2026-11-23T02:14:40Z')).toEqual(new Date('2026-11-23T02:14:40Z'));
    expect(parseAlarmTime('2026-11-23T03:14:40.5+01:00')).toEqual(new Date('2026-11-23T02:14:40.500Z'));
    // The Rust runtime's copy has stray spaces: no time
    expect(parseAlarmTime('2023-08-04T12: 36: 15.490+0000')).toBeUndefined();
    expect(parseAlarmTime(undefined)).toBeUndefined();
  });
});

describe('ssm-restart configuration', () => {
  it('defaults to a 15-minute cooldown, 3 alarm restarts an hour, 25% at a time and one error', () => {
    expect(parseEnv(RestartConfig, { AWS_REGION: 'eu-central-1' })).toEqual({
      RESTART_COOLDOWN_MINUTES: 15,
      RESTART_MAX_PER_HOUR: 3,
      MAX_CONCURRENCY: '25%',
      MAX_ERRORS: '1',
      DRY_RUN: false,
      NIGHTSHIFT_STAGE: undefined,
      AWS_REGION: 'eu-central-1',
    });
  });

  it('takes the stage serverless.yml sets, and refuses one that is no stage name', () => {
    expect(parseEnv(RestartConfig, { AWS_REGION: 'eu-central-1', NIGHTSHIFT_STAGE: 'prod' })).toMatchObject({
      NIGHTSHIFT_STAGE: 'prod',
    });
    expect(() =>
      parseEnv(RestartConfig, { AWS_REGION: 'eu-central-1', NIGHTSHIFT_STAGE: 'prod stage' }),
    ).toThrow('NIGHTSHIFT_STAGE: expected a stage name');
  });

  it('takes counts and percentages as SSM does, and empty values as unset', () => {
    expect(
      parseEnv(RestartConfig, {
        AWS_REGION: 'eu-central-1',
        RESTART_COOLDOWN_MINUTES: '0',
        RESTART_MAX_PER_HOUR: '10',
        MAX_CONCURRENCY: '2',
        MAX_ERRORS: '0',
      }),
    ).toMatchObject({
      RESTART_COOLDOWN_MINUTES: 0,
      RESTART_MAX_PER_HOUR: 10,
      MAX_CONCURRENCY: '2',
      MAX_ERRORS: '0',
    });
    expect(
      parseEnv(RestartConfig, {
        AWS_REGION: 'eu-central-1',
        MAX_CONCURRENCY: '100%',
        MAX_ERRORS: '',
        DRY_RUN: '',
      }),
    ).toMatchObject({ MAX_CONCURRENCY: '100%', MAX_ERRORS: '1', DRY_RUN: false });
  });

  it('names every bad variable at once', () => {
    let error: unknown;
    try {
      parseEnv(RestartConfig, {
        AWS_REGION: 'eu-central-1',
        RESTART_COOLDOWN_MINUTES: 'soon',
        RESTART_MAX_PER_HOUR: '0',
        MAX_CONCURRENCY: '0',
        MAX_ERRORS: '150%',
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).variables).toEqual([
      'RESTART_COOLDOWN_MINUTES',
      'RESTART_MAX_PER_HOUR',
      'MAX_CONCURRENCY',
      'MAX_ERRORS',
    ]);
    expect((error as ConfigError).message).toBe(
      'invalid configuration: RESTART_COOLDOWN_MINUTES: expected a whole number of minutes, 0 or more; ' +
        'RESTART_MAX_PER_HOUR: expected a whole number of restarts, 1 or more; ' +
        'MAX_CONCURRENCY: expected a number of instances (1 or more) or a percentage (1% to 100%); ' +
        'MAX_ERRORS: expected a number of errors (0 or more) or a percentage (0% to 100%)',
    );
  });
});
