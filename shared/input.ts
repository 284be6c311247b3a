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
