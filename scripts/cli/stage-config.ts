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
  /** The stage's kill switch (`killSwitch: 'true'`): every deployed function is stopped. */
  killSwitch: boolean;
}

/** Logging and SDK notices: the CLI keeps its own (defaults.ts), so a report stays readable. */
const NOT_CONFIGURATION = /^(POWERTOOLS_|AWS_SDK_)/;

/** The stage's params: `params.default`, each overridden by `params.<stage>`. */
export const stageParams = (file: ServerlessFile, stage: string): Record<string, string> => ({
  ...file.params.default,
  ...file.params[stage],
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
): StageConfig => {
  const params = stageParams(file, stage);
  const env: Record<string, string> = {};
  const unresolved: string[] = [];
  const declared = { ...file.providerEnvironment, ...file.functions[fn] };
  for (const [name, value] of Object.entries(declared)) {
    if (NOT_CONFIGURATION.test(name)) continue;
    // `Ref: LeaseTable` in the template; its name is a public contract (shared/lease.ts).
    const resolved =
      name === 'LEASE_TABLE' ? leaseTableName(stage, serviceName) : resolveValue(value, params, stage);
    if (resolved === undefined) unresolved.push(name);
    else env[name] = resolved;
  }
  return {
    stage,
    ownParams: file.params[stage] !== undefined,
    env,
    unresolved: unresolved.sort(),
    killSwitch: params.killSwitch === 'true',
  };
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

export interface LocalEnvironment {
  /** What the in-process handler runs with. */
  env: Record<string, string>;
  /** One line per operator variable that was ignored or added, for stderr. */
  notes: string[];
}

/**
 * The stage's environment with the operator's own variables laid over it where that only makes the
 * run more guarded: `DRY_RUN=true` makes it a dry run; `PROTECTED_TAGS` adds rules to the stage's
 * (to the built-in rules when the stage keeps those). Any other variable the stage sets is the
 * stage's: a value of the operator's is ignored and said so. A stage's `DRY_RUN=true` or protection
 * can never be turned off by an unset or different variable here.
 */
export const localEnvironment = (stage: StageConfig, operator: NodeJS.ProcessEnv): LocalEnvironment => {
  const env = { ...stage.env };
  const notes: string[] = [];
  for (const [name, value] of Object.entries(stage.env)) {
    const own = operator[name];
    if (own === undefined || own === value) continue;
    if (name === 'DRY_RUN') {
      if (own.trim() === 'true') {
        env.DRY_RUN = 'true';
        notes.push(
          `your DRY_RUN=true applies: every run is a dry run (stage ${stage.stage} has ${value || '""'})`,
        );
      } else if (own.trim() !== '' && own.trim() !== value) {
        notes.push(
          `your DRY_RUN=${own} is ignored: stage ${stage.stage} has DRY_RUN=${value || '""'}, and a local run is never less guarded than its stage`,
        );
      }
      continue;
    }
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
