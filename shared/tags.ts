/** Tag helpers shared by every function. AWS tag keys and values are case-sensitive. */
export type TagMap = Record<string, string>;

export const tagMap = (tags: ReadonlyArray<{ key?: string; value?: string }> | undefined): TagMap =>
  Object.fromEntries(
    (tags ?? []).filter((t) => t.key !== undefined).map((t) => [t.key as string, t.value ?? '']),
  );

/** Same for the capitalised shape used by EC2, Auto Scaling and RDS. */
export const tagMapUpper = (tags: ReadonlyArray<{ Key?: string; Value?: string }> | undefined): TagMap =>
  tagMap((tags ?? []).map((t) => ({ key: t.Key, value: t.Value })));

export interface TagRule {
  key: string;
  value: string;
}

/** Parses `key=value,key=value`; returns the rules or the first bad entry as a message. */
export const parseTagRules = (text: string): { rules: TagRule[] } | { error: string } => {
  const rules: TagRule[] = [];
  for (const raw of text.split(',')) {
    const entry = raw.trim();
    const eq = entry.indexOf('=');
    if (eq <= 0 || eq === entry.length - 1) return { error: `"${entry}" is not key=value` };
    rules.push({ key: entry.slice(0, eq).trim(), value: entry.slice(eq + 1).trim() });
  }
  return { rules };
};

/** The default protection: env, environment or stage set to prod, production or live, in any case. */
export const DEFAULT_PROTECTED_TAGS: TagRule[] = ['env', 'environment', 'stage'].flatMap((key) =>
  ['prod', 'production', 'live'].map((value) => ({ key, value })),
);

/** Returns the `key=value` that protects a resource with these tags, compared case-insensitively. */
export const protectedBy = (tags: TagMap, rules: readonly TagRule[]): string | undefined => {
  for (const [key, value] of Object.entries(tags)) {
    const rule = rules.find(
      (r) => r.key.toLowerCase() === key.toLowerCase() && r.value.toLowerCase() === value.toLowerCase(),
    );
    if (rule) return `${key}=${value}`;
  }
  return undefined;
};

/** True when every wanted tag is present with exactly that value. */
export const matchesTags = (tags: TagMap, wanted: TagMap): boolean =>
  Object.entries(wanted).every(([key, value]) => tags[key] === value);

/**
 * The tag that names the one stage that acts on a resource on its own (`nightshift:stage=dev`): every
 * stage deployed in an account sees every resource of it, and each keeps its leases and records in its
 * own table. With more than one stage in an account, opted-in resources must carry it. Public contract.
 */
export const STAGE_TAG = 'nightshift:stage';

/** The stage a resource names (its own tag, else its parent's), when it names another than `stage`. */
export const otherStage = (stage: string | undefined, ...tagSets: TagMap[]): string | undefined => {
  const named = tagSets.map((t) => t[STAGE_TAG]).find((v) => v !== undefined);
  return named !== undefined && named !== stage ? named : undefined;
};
