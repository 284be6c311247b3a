/**
 * What `--local` applies: the configuration the deployed function has in a stage, worked out from
 * serverless.yml exactly as the framework does (`params.default` overridden by `params.<stage>`,
 * mapped through provider.environment and the function's own `environment:` block), and the rule for
 * the operator's own environment variables: they may make a local run stricter, never laxer.
 */
import { InputError } from '#shared/errors.ts';
import { leaseTableName } from '#shared/lease.ts';
import { DEFAULT_PROTECTED_TAGS, parseTagRules, type TagRule } from '#shared/tags.ts';
import type { ServerlessFile } from './serverless-source.ts';

export interface StageConfig {
  stage: string;
  /** False when serverless.yml has no `params.<stage>` block: the defaults alone apply. */
  ownParams: boolean;
  /** The function's environment in the stage, as the deployed function has it. */
  env: Record<string, string>;
  /** Variables of the stage that cannot be known here (CloudFormation references), left as they are. */
  unresolved: string[];
  /** What serverless.yml says for each of them, as written. */
  unresolvedValues: Record<string, unknown>;
  /** The stage's kill switch (`killSwitch: 'true'`): every deployed function is stopped. */
  killSwitch: boolean;
}

/**
 * Logging, SDK and runtime settings, not nightshift's configuration: the CLI keeps its own (defaults.ts),
 * so a report stays readable, and where its calls go (AWS_ENDPOINT_URL…) is the operator's, never the
 * deployed function's.
 */
const NOT_CONFIGURATION = /^(POWERTOOLS_|AWS_)/;

/**
 * The stage's params: `params.default`, each overridden by `params.<stage>`, then by `overrides`
 * (`nightshift fleet run --local --param name=value`: for that run only).
 */
export const stageParams = (
  file: ServerlessFile,
  stage: string,
  overrides: Record<string, string> = {},
): Record<string, string> => ({
  ...file.params.default,
  ...file.params[stage],
  ...overrides,
});

/**
 * A value as the deployed function sees it: `${param:x}` and `${sls:stage}` resolved. Undefined when
 * it needs more than that (a CloudFormation reference, another variable source, a missing param).
 */
const resolveValue = (value: unknown, params: Record<string, string>, stage: string): string | undefined => {
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value !== 'string') return undefined;
  let missing = false;
  const resolved = value
    .replace(/\$\{param:([A-Za-z0-9_-]+)\}/g, (_, name: string) => {
      const param = params[name];
      if (param === undefined) missing = true;
      return param ?? '';
    })
    .replace(/\$\{sls:stage\}/g, stage);
  return missing || resolved.includes('${') ? undefined : resolved;
};

/** The environment `fn` runs with in `stage`, from serverless.yml. */
export const stageConfig = (
  file: ServerlessFile,
  fn: string,
  stage: string,
  serviceName = file.service,
  overrides: Record<string, string> = {},
): StageConfig => {
  const params = stageParams(file, stage, overrides);
  const env: Record<string, string> = {};
  const unresolved: string[] = [];
  const unresolvedValues: Record<string, unknown> = {};
  const declared = { ...file.providerEnvironment, ...file.functions[fn] };
  for (const [name, value] of Object.entries(declared)) {
    if (NOT_CONFIGURATION.test(name)) continue;
    // `Ref: LeaseTable` in the template; its name is a public contract (shared/lease.ts).
    const resolved =
      name === 'LEASE_TABLE' ? leaseTableName(stage, serviceName) : resolveValue(value, params, stage);
    if (resolved === undefined) {
      unresolved.push(name);
      unresolvedValues[name] = value;
    } else env[name] = resolved;
  }
  return {
    stage,
    ownParams: file.params[stage] !== undefined,
    env,
    unresolved: unresolved.sort(),
    unresolvedValues,
    killSwitch: params.killSwitch === 'true',
  };
};

/**
 * The fleet's variables a function reads when its event has a `target` (issue 11), from the stage's params
 * where serverless.yml does not map them into the function's environment itself: a `--local` fleet run
 * enforces the same allowlist, protected-account words and external id as the deployed hub.
 */
export const FLEET_VARIABLES = {
  ALLOWED_ACCOUNTS: 'allowedAccounts',
  PROTECTED_ACCOUNT_PATTERNS: 'protectedAccountPatterns',
  SPOKE_EXTERNAL_ID: 'spokeExternalId',
} as const;

export const withFleetEnvironment = (config: StageConfig, params: Record<string, string>): StageConfig => {
  const env = { ...config.env };
  for (const [name, param] of Object.entries(FLEET_VARIABLES))
    if (env[name] === undefined && !config.unresolved.includes(name)) env[name] = params[param] ?? '';
  return { ...config, env };
};

const ruleText = (rules: readonly TagRule[]) => rules.map((r) => `${r.key}=${r.value}`).join(',');

/** Both rule lists, without repeats (compared case-insensitively, as protection is). */
const unionRules = (a: readonly TagRule[], b: readonly TagRule[]): TagRule[] => {
  const seen = new Set<string>();
  return [...a, ...b].filter((r) => {
    const key = `${r.key.toLowerCase()}=${r.value.toLowerCase()}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
};

/** The variables that make a run more or less guarded: a local run takes the stricter of each. */
export const GUARDRAILS = ['DRY_RUN', 'PROTECTED_TAGS'] as const;

/** Guardrail variables `fn` declares in serverless.yml that cannot be resolved there. */
export const unresolvedGuardrails = (stage: StageConfig): string[] =>
  stage.unresolved.filter((name) => (GUARDRAILS as readonly string[]).includes(name));

export type DeployedMerge =
  | { env: Record<string, string>; notes: string[] }
  /** The deployed function cannot run with what it has (its own configuration would be refused). */
  | { refusal: string };

const shown = (value: string | undefined) => (value === undefined ? 'unset' : value === '' ? '""' : value);

/** A PROTECTED_TAGS value as rules: empty or unset keeps the built-in rules, as the functions do. */
const protection = (value: string | undefined): TagRule[] | { error: string } => {
  if (value === undefined || value.trim() === '') return DEFAULT_PROTECTED_TAGS;
  const parsed = parseTagRules(value);
  return 'error' in parsed ? { error: parsed.error } : parsed.rules;
};

/**
 * The configuration a local run takes from serverless.yml (`stage`) and from the deployed function
 * (`deployed`, its real environment): the stricter of the two for the guardrails — DRY_RUN is true
 * when either says so, PROTECTED_TAGS protects what either protects — and the deployed value of every
 * other variable (params given with `--param` at deploy time, a stage without its own params, a CLI
 * built from another checkout all show up here), each difference said in a note. A variable only
 * serverless.yml sets (the deployed function is older than this checkout) keeps its serverless.yml
 * value, and says so.
 */
export const withDeployed = (
  stage: StageConfig,
  deployed: Record<string, string>,
  deployedName: string,
): DeployedMerge => {
  const env: Record<string, string> = {};
  const notes: string[] = [];
  const names = [
    ...new Set([...Object.keys(stage.env), ...stage.unresolved, ...Object.keys(deployed)]),
  ].filter((name) => !NOT_CONFIGURATION.test(name));
  for (const name of names) {
    const mine = stage.env[name];
    const theirs = deployed[name];
    const yml = stage.unresolved.includes(name)
      ? 'not known from serverless.yml'
      : mine === undefined
        ? 'serverless.yml does not set it'
        : `serverless.yml has ${shown(mine)}`;
    if (name === 'DRY_RUN') {
      const value = theirs?.trim();
      if (value !== undefined && !['true', 'false', ''].includes(value)) {
        return {
          refusal: `${deployedName} has DRY_RUN=${theirs}, which it refuses (expected true or false): it cannot run, and neither may a local run`,
        };
      }
      env.DRY_RUN = mine === 'true' || value === 'true' ? 'true' : (theirs ?? mine ?? '');
      if (mine !== theirs)
        notes.push(
          `DRY_RUN: ${yml}, ${deployedName} has ${shown(theirs)}: ${shown(env.DRY_RUN)} applies (the stricter)`,
        );
      continue;
    }
    if (name === 'PROTECTED_TAGS') {
      const ours = protection(mine);
      const live = protection(theirs);
      if ('error' in live) {
        return {
          refusal: `${deployedName} has PROTECTED_TAGS=${theirs}, which it refuses (${live.error}): it cannot run, and neither may a local run`,
        };
      }
      if ('error' in ours) {
        return {
          refusal: `PROTECTED_TAGS=${mine} in serverless.yml is not key=value,… (${ours.error}): fix it before a local run`,
        };
      }
      const builtIn = (v: string | undefined) => v === undefined || v.trim() === '';
      env.PROTECTED_TAGS =
        builtIn(mine) && builtIn(theirs) ? (mine ?? theirs ?? '') : ruleText(unionRules(ours, live));
      if ((mine ?? '') !== (theirs ?? ''))
        notes.push(
          `PROTECTED_TAGS: ${yml}, ${deployedName} has ${shown(theirs)}: both protect, ${shown(env.PROTECTED_TAGS)} applies`,
        );
      continue;
    }
    if (theirs === undefined) {
      if (mine === undefined) continue;
      env[name] = mine;
      notes.push(
        `${name}: ${deployedName} does not set it (deployed from an older version?): serverless.yml's ${shown(mine)} applies`,
      );
      continue;
    }
    env[name] = theirs;
    if (mine !== theirs)
      notes.push(`${name}: ${yml}, ${deployedName} has ${shown(theirs)}: the deployed value applies`);
  }
  return { env, notes };
};

/** The operator's DRY_RUN spellings that make a run a dry run, and those that leave it as it is. */
const DRY_RUN_ON = ['true', '1', 'yes'];
const DRY_RUN_OFF = ['false', '0', 'no', ''];

/**
 * Whether the operator's own `DRY_RUN` asks for a dry run: `true`, `1`, `yes` in any case do;
 * `false`, `0`, `no`, empty or unset ask nothing (the stage's value stands, it is never made laxer).
 * Anything else is refused: a person who typed `DRY_RUN=ture` meant a dry run, and must not get a
 * change.
 */
export const operatorDryRun = (value: string | undefined): boolean => {
  if (value === undefined) return false;
  const word = value.trim().toLowerCase();
  if (DRY_RUN_ON.includes(word)) return true;
  if (DRY_RUN_OFF.includes(word)) return false;
  throw new InputError(
    `DRY_RUN=${value} in your environment is neither on (true, 1, yes) nor off (false, 0, no, empty), in any case; ` +
      'nothing was run. Fix or unset it (DRY_RUN=true or --dry-run for a dry run).',
    'DRY_RUN',
  );
};

export interface LocalEnvironment {
  /** What the in-process handler runs with. */
  env: Record<string, string>;
  /** One line per operator variable that was ignored or added, for stderr. */
  notes: string[];
}

/**
 * The stage's environment with the operator's own variables laid over it where that only makes the
 * run more guarded: `DRY_RUN=true` (or `1`, `yes`, in any case; see operatorDryRun) makes it a dry
 * run, and an off value never turns the stage's off; `PROTECTED_TAGS` adds rules to the stage's
 * (to the built-in rules when the stage keeps those). Any other variable the stage sets is the
 * stage's: a value of the operator's is ignored and said so. A stage's `DRY_RUN=true` or protection
 * can never be turned off by an unset or different variable here.
 */
export const localEnvironment = (stage: StageConfig, operator: NodeJS.ProcessEnv): LocalEnvironment => {
  const env = { ...stage.env };
  const notes: string[] = [];
  // The operator's DRY_RUN, whether or not the stage declares one: it can only make the run a dry run.
  const ownDryRun = operator.DRY_RUN;
  if (operatorDryRun(ownDryRun)) {
    if (env.DRY_RUN !== 'true')
      notes.push(
        `your DRY_RUN=${ownDryRun} applies: every run is a dry run (stage ${stage.stage} has ${stage.env.DRY_RUN || '""'})`,
      );
    env.DRY_RUN = 'true';
  } else if (ownDryRun !== undefined && ownDryRun.trim() !== '' && env.DRY_RUN === 'true') {
    notes.push(
      `your DRY_RUN=${ownDryRun} is ignored: stage ${stage.stage} has DRY_RUN=true, and a local run is never less guarded than its stage`,
    );
  }
  for (const [name, value] of Object.entries(stage.env)) {
    const own = operator[name];
    if (own === undefined || own === value || name === 'DRY_RUN') continue;
    if (name === 'PROTECTED_TAGS') {
      if (own.trim() === '') continue;
      const parsed = parseTagRules(own);
      if ('error' in parsed) {
        throw new InputError(
          `PROTECTED_TAGS in your environment is not key=value,…: ${parsed.error}; fix or unset it`,
          'PROTECTED_TAGS',
        );
      }
      const base = parseTagRules(value);
      const stageRules = value.trim() === '' || 'error' in base ? DEFAULT_PROTECTED_TAGS : base.rules;
      env.PROTECTED_TAGS = ruleText(unionRules(stageRules, parsed.rules));
      notes.push(
        `your PROTECTED_TAGS=${own} is added to stage ${stage.stage}'s protection: PROTECTED_TAGS=${env.PROTECTED_TAGS}`,
      );
      continue;
    }
    notes.push(
      `your ${name}=${own} is ignored: --local uses stage ${stage.stage}'s ${name}=${value || '""'}`,
    );
  }
  return { env, notes };
};

/** `DRY_RUN=true, PROTECTED_TAGS="" (built-in rules), …`: what a local run applied, in one line. */
export const describeEnvironment = (env: Record<string, string>): string =>
  Object.entries(env)
    .map(([name, value]) => {
      if (name === 'PROTECTED_TAGS' && value.trim() === '')
        return `${name}="" (the built-in prod/production/live rules)`;
      return `${name}=${value === '' ? '""' : value}`;
    })
    .join(', ');
