import * as z from 'zod/mini';
import type { Infer } from '#shared/zod.ts';
import { booleanFlag, tagRulesVar } from '#shared/env.ts';
import { REGION } from '#events/rds-snapshot-copy/schema.ts';

const list = (text: string) =>
  text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

/** `region=value,…`: one value per destination region. */
const regionMap = (what: string) =>
  z.pipe(
    z.optional(z.string()),
    z.transform((text, ctx) => {
      const values: Record<string, string> = {};
      for (const entry of list(text ?? '')) {
        const eq = entry.indexOf('=');
        const region = entry.slice(0, eq).trim();
        const value = entry.slice(eq + 1).trim();
        if (eq <= 0 || !REGION.test(region) || !value) {
          ctx.issues.push({ code: 'custom', input: text, message: `"${entry}" is not region=${what}` });
          continue;
        }
        values[region] = value;
      }
      return values;
    }),
  );

/**
 * RDS option group names: 1 to 255 letters, digits or hyphens, starting with a letter, not ending with a
 * hyphen nor holding two in a row (CreateOptionGroup, OptionGroupName). RDS stores them in lower case.
 */
const OPTION_GROUP = /^[A-Za-z](?:-?[A-Za-z0-9])*$/;

/**
 * `region=name` or `<source-option-group>@<region>=name`, comma separated. The second form wins for
 * snapshots whose option group is that source group, so Oracle and SQL Server sources can get different
 * groups in one region. Keys are `region` and `<lower-case source group>@region`.
 */
const optionGroupMap = z.pipe(
  z.optional(z.string()),
  z.transform((text, ctx) => {
    const groups: Record<string, string> = {};
    const bad = (entry: string, why: string) =>
      ctx.issues.push({ code: 'custom', input: text, message: `"${entry}" ${why}` });
    for (const entry of list(text ?? '')) {
      const eq = entry.indexOf('=');
      const left = eq > 0 ? entry.slice(0, eq).trim() : '';
      const value = entry.slice(eq + 1).trim();
      const at = left.lastIndexOf('@');
      const source = at >= 0 ? left.slice(0, at).trim() : undefined;
      const region = at >= 0 ? left.slice(at + 1).trim() : left;
      if (eq <= 0 || !REGION.test(region) || !value) {
        bad(entry, 'is not region=option group or source-option-group@region=option group');
        continue;
      }
      if (!OPTION_GROUP.test(value) || (source !== undefined && !OPTION_GROUP.test(source))) {
        bad(
          entry,
          'names an option group that is not 1-255 letters, digits or single hyphens starting with a letter',
        );
        continue;
      }
      const key = source === undefined ? region : `${source.toLowerCase()}@${region}`;
      if (key in groups && groups[key] !== value) {
        bad(entry, `repeats ${key} with another option group (${groups[key]})`);
        continue;
      }
      groups[key] = value;
    }
    return groups;
  }),
);

/** Environment of rds-snapshot-copy, parsed once per cold start. */
export const CopyConfig = z.object({
  /** Comma list of regions to copy into. Required. */
  TARGET_REGIONS: z.pipe(
    z.string('required: a comma list of regions, e.g. eu-west-1,us-east-1'),
    z.transform((text, ctx) => {
      const regions = list(text);
      const bad = regions.filter((r) => !REGION.test(r));
      if (regions.length === 0 || bad.length > 0) {
        ctx.issues.push({
          code: 'custom',
          input: text,
          message: bad.length > 0 ? `not regions: ${bad.join(', ')}` : 'name at least one region',
        });
      }
      return [...new Set(regions)];
    }),
  ),
  /** `region=key-id-or-arn-or-alias`, comma separated: the key each region's encrypted copies use. */
  TARGET_KMS_KEYS: regionMap('key'),
  /**
   * `region=option-group-name` or `<source-option-group>@<region>=option-group-name`, comma separated:
   * the option group a copy of an instance snapshot with a non-default option group gets in that region
   * (CopyDBSnapshot OptionGroupName: required across Regions for Oracle and SQL Server TDE, whose options
   * are permanent). The `@` form wins for snapshots of that source option group.
   */
  TARGET_OPTION_GROUPS: optionGroupMap,
  /**
   * Copies older than this many days (N × 24 hours, to the millisecond) are pruned, except the newest of
   * each database; 0 keeps only the newest.
   */
  RETENTION_DAYS: z.pipe(
    z.optional(z.string().check(z.regex(/^\d{1,5}$/, 'expected a whole number of days, 0 or more'))),
    z.transform((text) => (text === undefined ? 7 : Number(text))),
  ),
  /** Only snapshots of databases and clusters carrying all these tags are copied. */
  SOURCE_TAGS: tagRulesVar([]),
  DRY_RUN: booleanFlag,
  /** The function's own region: where source snapshots live. */
  AWS_REGION: z.string().check(z.regex(REGION, 'expected the Lambda region')),
});

export type CopyConfig = Infer<typeof CopyConfig>;
