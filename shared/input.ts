import './zod.ts';
import * as z from 'zod/mini';
import type { Infer, Issue, Schema } from './zod.ts';
import { InputError } from './errors.ts';

const fieldOf = (issue: Issue): string => {
  const path = issue.path.map(String).join('.');
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.join(', ');
    return path ? `${path}.${keys}` : keys;
  }
  return path || '(event)';
};

/**
 * Validates an event against its contract before any AWS call. The error names every offending
 * field, so an operator can fix a schedule's input from the message alone.
 */
export const parseInput = <S extends Schema>(schema: S, event: unknown): Infer<S> => {
  const result = z.safeParse(schema, event);
  if (result.success) return result.data;
  const issues = result.error.issues;
  const text = issues
    .map((issue) =>
      issue.code === 'unrecognized_keys'
        ? `unknown field(s) ${fieldOf(issue)}`
        : `field "${fieldOf(issue)}": ${issue.message}`,
    )
    .join('; ');
  throw new InputError(`invalid event: ${text}`, fieldOf(issues[0] as Issue));
};

/**
 * True when a schedule passed no input: EventBridge rules and EventBridge Scheduler then send their
 * own "Scheduled Event" (Scheduler's `detail` is the string "{}"), and some tools send `{}`.
 */
export const isMissingInput = (event: unknown): boolean => {
  if (typeof event !== 'object' || event === null || Array.isArray(event)) return false;
  if (Object.keys(event).length === 0) return true;
  const e = event as Record<string, unknown>;
  return (
    e['detail-type'] === 'Scheduled Event' && (e.source === 'aws.events' || e.source === 'aws.scheduler')
  );
};

/**
 * Refuses an invocation without input, saying so and showing a valid one, instead of complaining
 * about the fields of an event nobody meant to send.
 */
export const refuseMissingInput = (event: unknown, example: Record<string, unknown>): void => {
  if (!isMissingInput(event)) return;
  const what =
    Object.keys(event as object).length === 0
      ? 'an empty object'
      : `an EventBridge "Scheduled Event" from ${(event as { source: string }).source}`;
  throw new InputError(
    `invalid event: the input is missing: this function got ${what}, which is what a schedule sends when ` +
      `its target has no input; set the schedule's input to, for example, ${JSON.stringify(example)}`,
    '(event)',
  );
};
