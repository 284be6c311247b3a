import './zod.ts';
import * as z from 'zod/mini';
import type { Infer, Schema } from './zod.ts';
import { ConfigError } from './errors.ts';
import { parseTagRules, type TagRule } from './tags.ts';

/**
 * Parses the environment once, at cold start, and names every bad variable at once, so an operator
 * fixes the configuration in one deploy rather than one per variable.
 */
export const parseEnv = <S extends Schema>(schema: S, env: NodeJS.ProcessEnv = process.env): Infer<S> => {
  const result = z.safeParse(schema, env);
  if (result.success) return result.data;
  const problems = result.error.issues.map(
    (issue) => `${issue.path.join('.') || '(environment)'}: ${issue.message}`,
  );
  const variables = [...new Set(result.error.issues.map((issue) => String(issue.path[0] ?? '')))];
  throw new ConfigError(`invalid configuration: ${problems.join('; ')}`, variables);
};

/** An optional `true`/`false` flag; anything else is a configuration error. */
export const booleanFlag = z.pipe(
  z.optional(z.enum(['true', 'false', ''], 'expected true or false')),
  z.transform((v) => v === 'true'),
);

/** A `key=value,…` variable; unset or empty gives `fallback`, never an empty rule set by accident. */
export const tagRulesVar = (fallback: TagRule[]) =>
  z.pipe(
    z.optional(z.string()),
    z.transform((text, ctx): TagRule[] => {
      if (text === undefined || text.trim() === '') return fallback;
      const parsed = parseTagRules(text);
      if ('error' in parsed) {
        ctx.issues.push({ code: 'custom', input: text, message: `expected key=value,…: ${parsed.error}` });
        return [];
      }
      return parsed.rules;
    }),
  );
