/**
 * A small evaluator of identity-policy statements from the packaged template, for the meta tests that
 * prove what a role can and cannot do (test/meta). It follows IAM's documented evaluation logic for
 * one principal in one account: an explicit Deny wins, then any Allow, else the request is denied.
 * Condition key names are matched without regard to case, as IAM does ("condition key names are not
 * case-sensitive"; for aws:ResourceTag/… and aws:RequestTag/… the tag key part too, while values keep
 * their case). Set operators (ForAllValues, ForAnyValue), IfExists and absent keys follow IAM's rules
 * (conditionHolds). It knows the string, Bool and Null operators, and throws on any other operator, on a
 * single-valued operator given a multivalued key, and on NotAction/NotResource/Principal, so nothing
 * can be passed over silently. Statements under Fn::If are expanded for the
 * template conditions given (resolveStatements), never dropped.
 * Policy variables (`${aws:PrincipalTag/…}`, written `${!aws:…}` inside Fn::Sub) are replaced by the
 * request context's value, in resources and condition values (IAM User Guide, "IAM policy elements:
 * Variables and tags"); one the request lacks throws: the spoke roles deny first what has no session tag.
 * Trust policies (Principal) are evaluated by evaluateTrust.
 */

export interface IamStatement {
  Sid?: string;
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, Record<string, unknown>>;
}

/** One authorisation as AWS evaluates it: an action, on a resource, with its request context. */
export interface IamRequest {
  action: string;
  resource: string;
  /** Condition keys present in the request context; a key left out is absent. */
  context: Record<string, string | string[]>;
}

/** What CloudFormation substitutes in the template, for a stack in this account and region. */
export interface Pseudo {
  partition: string;
  region: string;
  account: string;
  /** Template parameters by name, for `Ref`. */
  parameters?: Record<string, string | string[]>;
}

const list = <T>(value: T | T[]): T[] => (Array.isArray(value) ? value : [value]);

/**
 * Resolves `{ "Fn::Sub": "…${AWS::Region}…${Parameter}…" }` and `{ "Ref": … }` as CloudFormation would;
 * `${!name}` in Fn::Sub is the literal `${name}` (a policy variable for IAM).
 */
const resolve = (value: unknown, p: Pseudo): string[] => {
  if (typeof value === 'string') return [value];
  const pseudo: Record<string, string> = {
    'AWS::Partition': p.partition,
    'AWS::Region': p.region,
    'AWS::AccountId': p.account,
  };
  const v = value as { 'Fn::Sub'?: string; Ref?: string };
  if (typeof v['Fn::Sub'] === 'string')
    return [
      v['Fn::Sub'].replace(/\$\{(!?)([^}]+)\}/g, (whole, literal: string, name: string) => {
        if (literal) return `\${${name}}`;
        const parameter = p.parameters?.[name];
        const resolved = pseudo[name] ?? (typeof parameter === 'string' ? parameter : undefined);
        if (resolved === undefined) throw new Error(`cannot resolve ${whole}`);
        return resolved;
      }),
    ];
  if (v.Ref && pseudo[v.Ref]) return [pseudo[v.Ref] as string];
  if (v.Ref && p.parameters && v.Ref in p.parameters) return list(p.parameters[v.Ref] as string | string[]);
  throw new Error(`cannot resolve ${JSON.stringify(value)}`);
};

/**
 * A role's statements as CloudFormation would deploy them for the given template conditions:
 * `{ "Fn::If": [condition, a, b] }` becomes a or b, and `{ "Ref": "AWS::NoValue" }` disappears. An
 * Fn::If on a condition not given throws: evaluate each value of it in turn.
 */
export const resolveStatements = (raw: unknown[], conditions: Record<string, boolean>): IamStatement[] =>
  raw.flatMap((entry): IamStatement[] => {
    const e = entry as { 'Fn::If'?: [string, unknown, unknown]; Ref?: string };
    if (e.Ref === 'AWS::NoValue') return [];
    if (e['Fn::If']) {
      const [name, whenTrue, whenFalse] = e['Fn::If'];
      if (!(name in conditions)) throw new Error(`no value given for the template condition ${name}`);
      return resolveStatements([conditions[name] ? whenTrue : whenFalse], conditions);
    }
    return [entry as IamStatement];
  });

/** Replaces the policy variables in `text` (`${aws:PrincipalTag/nightshift-region}`) from the request context. */
const substitute = (text: string, request: IamRequest): string =>
  text.replace(/\$\{([a-z0-9-]+:[^}]+)\}/gi, (_, key: string) => {
    const values = contextValues(request, key);
    if (values === undefined || values.length !== 1)
      throw new Error(`the policy variable \${${key}} is not a single value in the request context`);
    return values[0] as string;
  });

/** IAM's wildcard match: `*` any run of characters, `?` one character; case-sensitive. */
const glob = (pattern: string, text: string) =>
  new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  ).test(text);

const actionMatches = (pattern: string, action: string) => glob(pattern.toLowerCase(), action.toLowerCase());

/** Every value of the context keys named `key` in any case (a resource may carry `Team` and `team`). */
const contextValues = (request: IamRequest, key: string): string[] | undefined => {
  const matches = Object.entries(request.context).filter(([k]) => k.toLowerCase() === key.toLowerCase());
  return matches.length === 0 ? undefined : matches.flatMap(([, v]) => list(v));
};

const SINGLE_VALUED = new Set([
  'StringEquals',
  'StringNotEquals',
  'StringEqualsIgnoreCase',
  'StringLike',
  'StringNotLike',
  'Bool',
  'ArnEquals',
  'ArnLike',
]);

/**
 * One condition operator on one key, as IAM evaluates it (IAM User Guide, "Condition operators" and
 * "Set operators for multivalued context keys"):
 * - `…IfExists`: true when the key is absent from the request, else the operator without the suffix;
 * - an absent key makes the positive operators false and the negated ones (`StringNotEquals`,
 *   `StringNotLike`) true;
 * - `ForAllValues:` is true when every value of the key matches one of the policy's values, and so
 *   vacuously true when the key is absent or has no value; `ForAnyValue:` when at least one does, so
 *   false when the key is absent;
 * - several policy values are OR'ed; `Null: true` means absent.
 * A single-valued operator on a key the request gives as a list (aws:TagKeys) throws: IAM's result there
 * is not what a reader expects, and a policy must use a set operator.
 */
const conditionHolds = (operator: string, key: string, wanted: string[], request: IamRequest): boolean => {
  const raw = Object.entries(request.context).filter(([k]) => k.toLowerCase() === key.toLowerCase());
  const multivalued = raw.some(([, v]) => Array.isArray(v));
  const found = contextValues(request, key);
  const present = found !== undefined;
  const values = found ?? [];
  const [qualified, ifExists] = operator.endsWith('IfExists')
    ? [operator.slice(0, -'IfExists'.length), true]
    : [operator, false];
  const [set, base] = qualified.includes(':')
    ? (qualified.split(':', 2) as [string, string])
    : [undefined, qualified];
  if (base === 'Null') {
    if (set || ifExists) throw new Error(`iam-eval does not know the condition operator ${operator}`);
    return wanted.includes(present ? 'false' : 'true');
  }
  if (!SINGLE_VALUED.has(base) || (set !== undefined && set !== 'ForAllValues' && set !== 'ForAnyValue'))
    throw new Error(`iam-eval does not know the condition operator ${operator}`);
  if (set === undefined && multivalued)
    throw new Error(
      `${operator} on ${key}, which the request gives as a list: use ForAllValues or ForAnyValue`,
    );
  if (!present && ifExists) return true;
  const matches = (v: string): boolean => {
    switch (base) {
      case 'StringEquals':
        return wanted.includes(v);
      case 'StringEqualsIgnoreCase':
        return wanted.some((w) => w.toLowerCase() === v.toLowerCase());
      case 'StringNotEquals':
        return !wanted.includes(v);
      case 'StringLike':
        return wanted.some((w) => glob(w, v));
      case 'StringNotLike':
        return !wanted.some((w) => glob(w, v));
      // ArnEquals and ArnLike both match wildcards (IAM User Guide, "Amazon Resource Name (ARN)
      // condition operators"); whole-string matching is stricter than IAM's per-field matching.
      case 'ArnEquals':
      case 'ArnLike':
        return wanted.some((w) => glob(w, v));
      default:
        // Bool: "true" and "false", in any case.
        return wanted.map((w) => w.toLowerCase()).includes(v.toLowerCase());
    }
  };
  if (set === 'ForAllValues') return values.every(matches);
  if (set === 'ForAnyValue') return values.some(matches);
  const negated = base === 'StringNotEquals' || base === 'StringNotLike';
  if (!present) return negated;
  return negated ? values.every(matches) : values.some(matches);
};

const statementApplies = (s: IamStatement, request: IamRequest, p: Pseudo): boolean => {
  // NotAction, NotResource and Principal change what a statement covers: never evaluate them as absent.
  const unknown = Object.keys(s).filter(
    (k) => !['Sid', 'Effect', 'Action', 'Resource', 'Condition'].includes(k),
  );
  if (unknown.length > 0)
    throw new Error(`iam-eval does not know ${unknown.join(', ')} (statement ${s.Sid ?? '?'})`);
  if (s.Effect !== 'Allow' && s.Effect !== 'Deny')
    throw new Error(`Effect ${s.Effect} is neither Allow nor Deny`);
  if (!list(s.Action).some((a) => actionMatches(a, request.action))) return false;
  if (
    !list(s.Resource).some((r) =>
      resolve(r, p).some((arn) => glob(substitute(arn, request), request.resource)),
    )
  )
    return false;
  return conditionsHold(s.Condition, request, p);
};

const conditionsHold = (condition: IamStatement['Condition'], request: IamRequest, p: Pseudo) =>
  Object.entries(condition ?? {}).every(([operator, keys]) =>
    Object.entries(keys).every(([key, wanted]) =>
      conditionHolds(
        operator,
        key,
        list(wanted as unknown).flatMap((w) =>
          typeof w === 'boolean' ? [String(w)] : resolve(w, p).map((value) => substitute(value, request)),
        ),
        request,
      ),
    ),
  );

export type Decision = { allowed: true; by: string } | { allowed: false; by: string };

/** Whether `statements` allow `request`, and which statement decided (or "implicit deny"). */
export const evaluate = (statements: IamStatement[], request: IamRequest, p: Pseudo): Decision => {
  const deny = statements.find((s) => s.Effect === 'Deny' && statementApplies(s, request, p));
  if (deny) return { allowed: false, by: deny.Sid ?? 'a Deny' };
  const allow = statements.find((s) => s.Effect === 'Allow' && statementApplies(s, request, p));
  return allow ? { allowed: true, by: allow.Sid ?? 'an Allow' } : { allowed: false, by: 'implicit deny' };
};

/**
 * An API call AWS authorises as several requests (CopyDBSnapshot: on the source snapshot and on the
 * target snapshot; CopyTags: an extra rds:AddTagsToResource on the new snapshot): allowed only when
 * every one is. The decision names the first request refused, or the statements that allowed them.
 */
export const authorize = (statements: IamStatement[], requests: IamRequest[], p: Pseudo): Decision => {
  const decisions = requests.map((r) => ({ r, d: evaluate(statements, r, p) }));
  const refused = decisions.find(({ d }) => !d.allowed);
  if (refused)
    return { allowed: false, by: `${refused.d.by} (${refused.r.action} on ${refused.r.resource})` };
  return { allowed: true, by: [...new Set(decisions.map(({ d }) => d.by))].join(', ') };
};

/** A statement of a role's trust policy (AssumeRolePolicyDocument). */
export interface TrustStatement {
  Sid?: string;
  Effect: string;
  Principal: { AWS?: unknown; Service?: unknown };
  Action: string | string[];
  Condition?: Record<string, Record<string, unknown>>;
}

/** Someone asking STS for a role: who (an IAM role's ARN, or a service), which action, with what context. */
export interface TrustRequest {
  /** `arn:aws:iam::<account>:role/<name>` (the role a session belongs to), or a service principal. */
  principal: string;
  action: string;
  /** sts:ExternalId, aws:RequestTag/…, aws:TagKeys…; aws:PrincipalArn is added from `principal`. */
  context: Record<string, string | string[]>;
}

/**
 * Whether a trust policy lets `request.principal` take `request.action` on the role: an explicit Deny
 * wins, else an Allow whose Principal names the caller and whose conditions hold. `Principal.AWS` names a
 * role (that role only) or an account's root, `arn:…:iam::<account>:root` ("any principal of the
 * account", whose own policies must allow too: IAM User Guide, "AWS account principals"). Any other
 * element, or a principal form it does not know, throws.
 */
export const evaluateTrust = (statements: TrustStatement[], request: TrustRequest, p: Pseudo): Decision => {
  const account = request.principal.match(/^arn:[^:]+:iam::(\d{12}):role\//)?.[1];
  const full: IamRequest = {
    action: request.action,
    resource: '*',
    context: { ...request.context, ...(account && { 'aws:PrincipalArn': request.principal }) },
  };
  const applies = (s: TrustStatement) => {
    const unknown = Object.keys(s).filter(
      (k) => !['Sid', 'Effect', 'Principal', 'Action', 'Condition'].includes(k),
    );
    if (unknown.length > 0) throw new Error(`iam-eval does not know ${unknown.join(', ')} in a trust policy`);
    if (!list(s.Action).some((a) => actionMatches(a, request.action))) return false;
    const principals = [
      ...list((s.Principal.AWS ?? []) as unknown[]).flatMap((v) => resolve(v, p)),
      ...list((s.Principal.Service ?? []) as string[]),
    ];
    const named = principals.some((principal) => {
      if (principal === request.principal) return true;
      const root = principal.match(/^arn:[^:]+:iam::(\d{12}):root$/)?.[1];
      if (root) return root === account;
      if (/^arn:[^:]+:iam::\d{12}:role\//.test(principal) || principal.endsWith('.amazonaws.com'))
        return false;
      throw new Error(`iam-eval does not know the principal ${principal}`);
    });
    return named && conditionsHold(s.Condition, full, p);
  };
  const deny = statements.find((s) => s.Effect === 'Deny' && applies(s));
  if (deny) return { allowed: false, by: deny.Sid ?? 'a Deny' };
  const allow = statements.find((s) => s.Effect === 'Allow' && applies(s));
  return allow ? { allowed: true, by: allow.Sid ?? 'an Allow' } : { allowed: false, by: 'implicit deny' };
};
