import { describe, expect, it } from 'vitest';
import { SchedulerConfig } from '#functions/ecs-scheduler/config.ts';
import { ConfigError } from '#shared/errors.ts';
import { parseEnv } from '#shared/env.ts';
import { DEFAULT_PROTECTED_TAGS } from '#shared/tags.ts';

describe('ecs-scheduler configuration', () => {
  it('defaults to the prod/production/live protection and real runs', () => {
    expect(parseEnv(SchedulerConfig, {})).toEqual({ PROTECTED_TAGS: DEFAULT_PROTECTED_TAGS, DRY_RUN: false });
    expect(DEFAULT_PROTECTED_TAGS).toHaveLength(9);
  });

  it('keeps the default protection when PROTECTED_TAGS is empty, never dropping it', () => {
    expect(parseEnv(SchedulerConfig, { PROTECTED_TAGS: '  ' }).PROTECTED_TAGS).toEqual(
      DEFAULT_PROTECTED_TAGS,
    );
  });

  it('replaces the default with PROTECTED_TAGS', () => {
    expect(
      parseEnv(SchedulerConfig, { PROTECTED_TAGS: 'tier=critical, owner = payments' }).PROTECTED_TAGS,
    ).toEqual([
      { key: 'tier', value: 'critical' },
      { key: 'owner', value: 'payments' },
    ]);
  });

  it('names every bad variable at once', () => {
    let error: unknown;
    try {
      parseEnv(SchedulerConfig, { PROTECTED_TAGS: 'tier', DRY_RUN: 'yes' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).variables).toEqual(['PROTECTED_TAGS', 'DRY_RUN']);
    expect((error as ConfigError).message).toBe(
      'invalid configuration: PROTECTED_TAGS: expected key=value,…: "tier" is not key=value; DRY_RUN: expected true or false',
    );
  });
});
