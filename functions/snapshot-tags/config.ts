import * as z from 'zod/mini';
import type { Infer } from '#shared/zod.ts';
import { booleanFlag } from '#shared/env.ts';

// What RDS and EC2 both accept in a tag key: letters, digits, spaces and _ . : / = + - @, up to 128.
const TAG_KEY = /^[\p{L}\p{N}\p{Zs}_.:/=+\-@]{1,128}$/u;

/** A comma list of tag keys; unset or empty is an empty list. Keys are case-sensitive, as in AWS. */
const tagKeyList = z.pipe(
  z.optional(z.string()),
  z.transform((text, ctx): string[] => {
    const keys = (text ?? '')
      .split(',')
      .map((k) => k.trim())
      .filter(Boolean);
    const bad = keys.filter((k) => !TAG_KEY.test(k));
    if (bad.length > 0) {
      ctx.issues.push({
        code: 'custom',
        input: text,
        message: `not tag keys: ${bad.map((k) => `"${k}"`).join(', ')}`,
      });
    }
    return [...new Set(keys)];
  }),
);

/** Environment of snapshot-tags, parsed once per cold start. */
export const SnapshotTagsConfig = z.object({
  /** Only these keys are copied; empty copies every key. */
  TAG_KEYS: tagKeyList,
  /** These keys are never copied, even when TAG_KEYS names them. */
  EXCLUDE_TAG_KEYS: tagKeyList,
  /** `true` makes every run a dry run, whatever the event says. */
  DRY_RUN: booleanFlag,
});

export type SnapshotTagsConfig = Infer<typeof SnapshotTagsConfig>;
