/**
 * The two Python tools the demo and the tests run beside Node: moto_server (the local AWS) and cfn-lint
 * (the template check). Found on PATH, they are used as they are. Otherwise the project provisions them
 * itself, once: a private virtual environment in .cache/tools (git-ignored), the pinned versions installed
 * with pip, one progress line while it installs, reused on every later run. When that cannot be done (no
 * Python, no venv module, no network), one line says what to install and how.
 *
 * `decideTool` is the decision, pure (what was found in, what to do out); `ensureTool` gathers the facts,
 * installs when told to, and is what `npm run demo` (test/support/moto.ts startMoto) and the test setup
 * (test/support/tools-setup.ts) call. `toolCommand` resolves without installing.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The tools, by the command the project runs, with the pip requirement that provides each. */
export const TOOLS = {
  moto_server: {
    requirement: 'moto[server]==5.2.1',
    label: 'moto 5.2.1',
    module: 'moto',
    override: 'NIGHTSHIFT_MOTO_SERVER',
  },
  'cfn-lint': {
    requirement: 'cfn-lint==1.51.0',
    label: 'cfn-lint 1.51.0',
    module: 'cfnlint',
    override: 'NIGHTSHIFT_CFN_LINT',
  },
} as const;
export type Tool = keyof typeof TOOLS;

/** Both are installed together: one venv, one pip call, whichever tool asked first. */
export const REQUIREMENTS = Object.values(TOOLS).map((t) => t.requirement);

/** moto 5.2.1 and cfn-lint 1.x support Python 3.9 and later (their python_requires). */
const MIN_PYTHON: readonly [number, number] = [3, 9];

const PROJECT = fileURLToPath(new URL('..', import.meta.url));
export const TOOLS_DIR = join(PROJECT, '.cache', 'tools');

/** What the project can do without asking anyone: install, given a usable Python. */
export interface ToolFacts {
  /** The tool answers when run by its name (on PATH). */
  onPath: boolean;
  /** The command in the cache, when the cache holds the pinned versions; otherwise undefined. */
  cached: string | undefined;
  /** A Python that can make a venv, or why none can. */
  python: { command: string } | { problem: string };
}

export type ToolDecision =
  | { kind: 'path'; command: string }
  | { kind: 'cache'; command: string }
  | { kind: 'install'; python: string }
  | { kind: 'cannot'; message: string };

// Not `pip install` into the system Python: Debian 12, Ubuntu 23.04+ and Homebrew refuse it (PEP 668,
// externally-managed-environment). pipx makes one venv per tool and puts its command on PATH.
const manualInstall = () =>
  `install it yourself: ${REQUIREMENTS.map((r) => `pipx install "${r}"`).join(' && ')} ` +
  `(Python ${MIN_PYTHON.join('.')}+; or pip install them into any virtualenv on PATH), then run the command again`;

/** The one line a user reads when the tool is neither found nor installable. */
export const cannotMessage = (tool: Tool, reason: string, dir = TOOLS_DIR): string =>
  `${tool} is not on PATH and could not be installed into ${displayDir(dir)} (${reason}): ${manualInstall()}`;

const displayDir = (dir: string) => {
  const rel = relative(process.cwd(), dir);
  return rel && !rel.startsWith('..') ? rel : dir;
};

/** PATH first (the user's own install wins), then the cache, then an install if Python allows it. */
export const decideTool = (tool: Tool, facts: ToolFacts, dir = TOOLS_DIR): ToolDecision => {
  if (facts.onPath) return { kind: 'path', command: tool };
  if (facts.cached) return { kind: 'cache', command: facts.cached };
  if ('command' in facts.python) return { kind: 'install', python: facts.python.command };
  return { kind: 'cannot', message: cannotMessage(tool, facts.python.problem, dir) };
};

// ---------------------------------------------------------------------------------------------
// Facts

const venvDir = (dir: string) => join(dir, 'venv');
const venvBin = (dir: string, name: string) =>
  process.platform === 'win32'
    ? join(venvDir(dir), 'Scripts', `${name}.exe`)
    : join(venvDir(dir), 'bin', name);
/** Written after a successful install: the requirements it installed. Another pin list reinstalls. */
const markerFile = (dir: string) => join(venvDir(dir), 'nightshift-requirements.txt');
const MARKER = `${REQUIREMENTS.join('\n')}\n`;

const answers = (command: string, args: string[], env: NodeJS.ProcessEnv = process.env) =>
  spawnSync(command, args, { stdio: 'ignore', env, timeout: 60_000 }).status === 0;

export const onPath = (tool: Tool, env: NodeJS.ProcessEnv = process.env): boolean =>
  answers(tool, [tool === 'moto_server' ? '--help' : '--version'], env);

/**
 * The cached command, when the cache holds the pinned versions and its interpreter still imports them:
 * a venv outlives the Python it was made from (pyenv uninstall, a distribution upgrade), and such a venv
 * is reinstalled, not trusted.
 */
export const cachedTool = (
  tool: Tool,
  dir = TOOLS_DIR,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined => {
  const command = venvBin(dir, tool);
  if (!existsSync(command) || !existsSync(markerFile(dir))) return undefined;
  if (readFileSync(markerFile(dir), 'utf8') !== MARKER) return undefined;
  return answers(venvBin(dir, 'python'), ['-c', `import ${TOOLS[tool].module}`], env) ? command : undefined;
};

/** A command named by NIGHTSHIFT_MOTO_SERVER / NIGHTSHIFT_CFN_LINT (the test setup sets them for its workers). */
const chosen = (tool: Tool, env: NodeJS.ProcessEnv) => env[TOOLS[tool].override] || undefined;

/** The first of python3, python that is new enough and has venv with pip (Debian splits it off). */
export const findPython = (
  candidates: readonly string[] = ['python3', 'python'],
  env: NodeJS.ProcessEnv = process.env,
): ToolFacts['python'] => {
  const problems: string[] = [];
  for (const command of candidates) {
    const probe = spawnSync(
      command,
      ['-c', 'import sys, venv, ensurepip; print("%d.%d" % sys.version_info[:2])'],
      { encoding: 'utf8', env, timeout: 30_000 },
    );
    if (probe.error) continue; // not installed under that name
    if (probe.status !== 0) {
      problems.push(
        /No module named '?(venv|ensurepip)/.test(probe.stderr)
          ? `${command} has no venv/ensurepip module (Debian/Ubuntu: apt install python3-venv)`
          : `${command} did not run (exit ${probe.status ?? probe.signal}): ${pipReason(probe.stderr)}`,
      );
      continue;
    }
    const [major = 0, minor = 0] = probe.stdout.trim().split('.').map(Number);
    if (major < MIN_PYTHON[0] || (major === MIN_PYTHON[0] && minor < MIN_PYTHON[1])) {
      problems.push(`${command} is Python ${major}.${minor}; ${MIN_PYTHON.join('.')}+ is needed`);
      continue;
    }
    return { command };
  }
  return {
    problem:
      problems[0] ??
      `no Python found (tried ${candidates.join(', ')}); install Python ${MIN_PYTHON.join('.')}+`,
  };
};

/** Resolves without installing: the command to run, or undefined. */
export const toolCommand = (
  tool: Tool,
  dir = TOOLS_DIR,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined => chosen(tool, env) ?? (onPath(tool, env) ? tool : cachedTool(tool, dir, env));

// ---------------------------------------------------------------------------------------------
// Install

export class ToolUnavailableError extends Error {
  override name = 'ToolUnavailableError';
  constructor(
    message: string,
    readonly tool: Tool,
  ) {
    super(message);
  }
}

interface Ran {
  status: number | null;
  output: string;
}

const run = (command: string, args: string[], env: NodeJS.ProcessEnv): Promise<Ran> =>
  new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    let output = '';
    const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-20_000));
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', (error) => resolve({ status: null, output: error.message }));
    child.on('close', (status) => resolve({ status, output }));
  });

/** pip's own last word on why it failed: its last `ERROR:` line, else its last line. */
export const pipReason = (output: string): string => {
  const lines = output
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const error = [...lines].reverse().find((l) => l.startsWith('ERROR:'));
  const line = (error ?? lines.at(-1) ?? 'no output').replace(/^ERROR:\s*/, '');
  return line.length > 200 ? `${line.slice(0, 197)}...` : line;
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** An install takes about a minute; a lock this old is a killed installer's, whatever its pid says now. */
const STALE_LOCK_MS = 20 * 60_000;
const WAIT_MS = 25 * 60_000;

/**
 * One installer at a time (vitest's setups, a demo in another terminal): mkdir is atomic. A lock whose
 * holder is gone (killed mid-install) or that is older than an install can take is taken over by renaming
 * it first, so of two waiters that both judged it stale only one removes it.
 */
const withLock = async <T>(
  dir: string,
  tool: Tool,
  say: (line: string) => void,
  work: () => Promise<T>,
): Promise<T> => {
  mkdirSync(dir, { recursive: true });
  const lock = join(dir, 'install.lock');
  const deadline = Date.now() + WAIT_MS;
  let told = false;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(
        join(lock, 'holder'),
        JSON.stringify({ pid: process.pid, host: hostname(), at: Date.now() }),
      );
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      let holder: { pid?: number; host?: string; at?: number } = {};
      try {
        holder = JSON.parse(readFileSync(join(lock, 'holder'), 'utf8')) as typeof holder;
      } catch {
        // the holder has made the folder but not written to it yet
      }
      const gone = holder.host === hostname() && typeof holder.pid === 'number' && !alive(holder.pid);
      const old = typeof holder.at === 'number' && Date.now() - holder.at > STALE_LOCK_MS;
      if (gone || old) {
        const aside = `${lock}.stale-${process.pid}-${Date.now()}`;
        try {
          renameSync(lock, aside);
          rmSync(aside, { recursive: true, force: true });
        } catch {
          // another waiter took it over first
        }
        continue;
      }
      if (Date.now() > deadline)
        throw new ToolUnavailableError(
          cannotMessage(
            tool,
            `another install (pid ${holder.pid ?? '?'}) still holds ${lock}; remove it if none runs`,
            dir,
          ),
          tool,
        );
      if (!told)
        say(
          `nightshift: waiting for the install of ${tool} by pid ${holder.pid ?? '?'} (${displayDir(dir)})...`,
        );
      told = true;
      await sleep(500);
    }
  }
  try {
    return await work();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
};

/** Installs in flight in this process, by cache folder: a second caller waits for the first's. */
const installing = new Map<string, Promise<unknown>>();

export interface EnsureOptions {
  dir?: string;
  env?: NodeJS.ProcessEnv;
  /** Where the progress line goes (stderr by default). */
  say?: (line: string) => void;
  /** Python commands to try, in order. */
  pythons?: readonly string[];
}

/**
 * The command that runs `tool`: on PATH, in the cache, or installed into the cache now. Throws
 * ToolUnavailableError with the one-line message when none of that works.
 */
export const ensureTool = async (tool: Tool, options: EnsureOptions = {}): Promise<string> => {
  const { dir = TOOLS_DIR, env = process.env, say = (line) => process.stderr.write(`${line}\n`) } = options;
  const named = chosen(tool, env);
  if (named) return named;
  // Gathered lazily: a tool on PATH costs one probe, not a Python lookup as well.
  const path = onPath(tool, env);
  const cached = path ? undefined : cachedTool(tool, dir, env);
  const python = path || cached ? { problem: 'not needed' } : findPython(options.pythons, env);
  const decision = decideTool(tool, { onPath: path, cached, python }, dir);
  if (decision.kind === 'path' || decision.kind === 'cache') return decision.command;
  if (decision.kind === 'cannot') throw new ToolUnavailableError(decision.message, tool);
  const before = installing.get(dir);
  if (before) await before.catch(() => undefined);
  const install = withLock(dir, tool, say, async () => {
    // Another process (or call) may have installed while this one waited for the lock.
    const done = cachedTool(tool, dir, env);
    if (done) return done;
    say(
      `nightshift: ${tool} not found on PATH: installing ${Object.values(TOOLS)
        .map((t) => t.label)
        .join(' and ')} into ${displayDir(dir)} (once; reused next time)...`,
    );
    const fail = (reason: string) => new ToolUnavailableError(cannotMessage(tool, reason, dir), tool);
    rmSync(venvDir(dir), { recursive: true, force: true });
    const venv = await run(decision.python, ['-m', 'venv', venvDir(dir)], env);
    if (venv.status !== 0) throw fail(`${decision.python} -m venv failed: ${pipReason(venv.output)}`);
    const pip = await run(
      venvBin(dir, 'python'),
      ['-m', 'pip', 'install', '--disable-pip-version-check', '--no-input', '--quiet', ...REQUIREMENTS],
      env,
    );
    if (pip.status !== 0) {
      // A half-installed venv must not pass for the cache next time: no marker, and it is removed.
      rmSync(venvDir(dir), { recursive: true, force: true });
      const offline = /from versions: none|NewConnectionError|Failed to establish|name resolution/i.test(
        pip.output,
      );
      throw fail(`pip: ${pipReason(pip.output)}${offline ? '; is PyPI reachable from here?' : ''}`);
    }
    if (!existsSync(venvBin(dir, tool)))
      throw fail(`pip installed ${REQUIREMENTS.join(' ')} but no ${tool} appeared`);
    writeFileSync(markerFile(dir), MARKER);
    return venvBin(dir, tool);
  });
  installing.set(dir, install);
  try {
    return await install;
  } finally {
    if (installing.get(dir) === install) installing.delete(dir);
  }
};
