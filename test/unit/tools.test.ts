/**
 * moto_server and cfn-lint come from PATH, from the project's cache, or are installed into the cache
 * once; when none of that works, one line says what to install. The decision is pure (decideTool); the
 * rest runs ensureTool for real against a fake Python and a fake pip in a temporary folder, so nothing
 * is installed and no network is needed: the fake venv's pip "installs" by writing two scripts.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  decideTool,
  ensureTool,
  REQUIREMENTS,
  ToolUnavailableError,
  type ToolFacts,
} from '#scripts/tools.ts';

const NO_PYTHON: ToolFacts['python'] = {
  problem: 'no Python found (tried python3, python); install Python 3.9+',
};

describe('decideTool', () => {
  it.each<[string, ToolFacts, string]>([
    [
      'on PATH, whatever the cache holds',
      { onPath: true, cached: '/c/venv/bin/moto_server', python: NO_PYTHON },
      'path',
    ],
    ['in the cache', { onPath: false, cached: '/c/venv/bin/moto_server', python: NO_PYTHON }, 'cache'],
    [
      'on neither, with a usable Python',
      { onPath: false, cached: undefined, python: { command: 'python3' } },
      'install',
    ],
    [
      'on neither, without a usable Python',
      { onPath: false, cached: undefined, python: NO_PYTHON },
      'cannot',
    ],
  ])('%s: %s', (_case, facts, kind) => {
    // Act
    const decision = decideTool('moto_server', facts, '/c');

    // Assess
    expect(decision.kind).toBe(kind);
    if (decision.kind === 'path') expect(decision.command).toBe('moto_server');
    if (decision.kind === 'cache') expect(decision.command).toBe('/c/venv/bin/moto_server');
    if (decision.kind === 'install') expect(decision.python).toBe('python3');
  });

  it('says in one line what to install and how when it cannot install', () => {
    // Act
    const decision = decideTool('cfn-lint', { onPath: false, cached: undefined, python: NO_PYTHON }, '/c');

    // Assess
    expect(decision).toEqual({
      kind: 'cannot',
      message:
        'cfn-lint is not on PATH and could not be installed into /c (no Python found (tried python3, python); ' +
        'install Python 3.9+): install it yourself: pipx install "moto[server]==5.2.1" && ' +
        'pipx install "cfn-lint==1.51.0" (Python 3.9+; or pip install them into any virtualenv on PATH), ' +
        'then run the command again',
    });
  });
});

describe('ensureTool', () => {
  let root: string;
  let bin: string;
  let cache: string;
  let log: string;
  let fakePython: string;
  let env: NodeJS.ProcessEnv;
  let said: string[];

  const script = (file: string, body: string) => {
    writeFileSync(file, `#!/bin/sh\n${body}\n`);
    chmodSync(file, 0o755);
  };
  const calls = () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []);
  const ensure = (tool: 'moto_server' | 'cfn-lint' = 'moto_server', pythons = [fakePython]) =>
    ensureTool(tool, { dir: cache, env, say: (line) => said.push(line), pythons });

  beforeEach(() => {
    // Prepare: a PATH without the real tools, a fake python3 and the pip its venv gets
    root = mkdtempSync(join(tmpdir(), 'nightshift-tools-'));
    bin = join(root, 'bin');
    cache = join(root, '.cache', 'tools');
    log = join(root, 'calls.log');
    mkdirSync(bin);
    fakePython = join(bin, 'python3');
    const venvPython = join(root, 'venv-python');
    script(
      venvPython,
      [
        // The cache's health check: the venv's interpreter imports the tool's module.
        'if [ "$1" = "-c" ]; then [ -z "$FAKE_IMPORT_FAIL" ]; exit $?; fi',
        'echo "pip $*" >> "$FAKE_LOG"',
        'if [ -n "$FAKE_PIP_FAIL" ]; then',
        '  echo "Collecting moto[server]==5.2.1" >&2',
        '  echo "ERROR: Could not find a version that satisfies the requirement moto[server]==5.2.1 (from versions: none)" >&2',
        '  echo "ERROR: No matching distribution found for moto[server]==5.2.1" >&2',
        '  exit 1',
        'fi',
        'if [ -n "$FAKE_PIP_SLOW" ]; then sleep 1; fi',
        'd=$(dirname "$0")',
        'for t in moto_server cfn-lint; do printf "#!/bin/sh\\nexit 0\\n" > "$d/$t"; chmod +x "$d/$t"; done',
      ].join('\n'),
    );
    script(
      fakePython,
      [
        'if [ "$1" = "-c" ]; then echo "probe" >> "$FAKE_LOG"; echo "${FAKE_PY_VERSION:-3.11}"; exit 0; fi',
        'if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then',
        '  echo "venv $3" >> "$FAKE_LOG"',
        `  mkdir -p "$3/bin" && cp "${venvPython}" "$3/bin/python"; exit 0`,
        'fi',
        'exit 3',
      ].join('\n'),
    );
    // The PATH holds the fakes and the few utilities they use, nothing else (no host moto or cfn-lint).
    const utilities = join(root, 'utilities');
    mkdirSync(utilities);
    for (const name of ['sh', 'mkdir', 'cp', 'dirname', 'chmod', 'sleep'])
      symlinkSync(
        execFileSync('/bin/sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim(),
        join(utilities, name),
      );
    env = { PATH: `${bin}:${utilities}`, FAKE_LOG: log };
    said = [];
  });

  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('uses the tool found on PATH and looks no further', async () => {
    // Prepare
    script(join(bin, 'moto_server'), 'exit 0');

    // Act
    const command = await ensure();

    // Assess
    expect(command).toBe('moto_server');
    expect(calls()).toEqual([]);
    expect(said).toEqual([]);
  });

  it('installs the pinned versions into the cache once, with one progress line, and reuses them', async () => {
    // Act
    const first = await ensure();
    const second = await ensure();
    const other = await ensure('cfn-lint');

    // Assess
    const venv = join(cache, 'venv');
    expect(first).toBe(join(venv, 'bin', 'moto_server'));
    expect(second).toBe(first);
    expect(other).toBe(join(venv, 'bin', 'cfn-lint'));
    expect(calls()).toEqual([
      'probe',
      `venv ${venv}`,
      `pip -m pip install --disable-pip-version-check --no-input --quiet ${REQUIREMENTS.join(' ')}`,
    ]);
    expect(REQUIREMENTS).toEqual(['moto[server]==5.2.1', 'cfn-lint==1.51.0']);
    expect(said).toHaveLength(1);
    expect(said[0]).toMatch(
      /^nightshift: moto_server not found on PATH: installing moto 5\.2\.1 and cfn-lint 1\.51\.0 into .*\.cache\/tools \(once; reused next time\)\.\.\.$/,
    );
  });

  it('reinstalls when the cache holds other versions than the pinned ones', async () => {
    // Prepare: a cache from an older pin list
    const venvBin = join(cache, 'venv', 'bin');
    mkdirSync(venvBin, { recursive: true });
    script(join(venvBin, 'moto_server'), 'exit 0');
    writeFileSync(
      join(cache, 'venv', 'nightshift-requirements.txt'),
      'moto[server]==5.0.0\ncfn-lint==1.0.0\n',
    );

    // Act
    const command = await ensure();

    // Assess
    expect(command).toBe(join(venvBin, 'moto_server'));
    expect(calls().filter((c) => c.startsWith('pip '))).toHaveLength(1);
    expect(readFileSync(join(cache, 'venv', 'nightshift-requirements.txt'), 'utf8')).toBe(
      `${REQUIREMENTS.join('\n')}\n`,
    );
  });

  it('installs once when two runs ask at the same time (the second waits and reuses)', async () => {
    // Prepare
    env.FAKE_PIP_SLOW = '1';

    // Act
    const [a, b] = await Promise.all([ensure(), ensure('cfn-lint')]);

    // Assess
    expect(a).toBe(join(cache, 'venv', 'bin', 'moto_server'));
    expect(b).toBe(join(cache, 'venv', 'bin', 'cfn-lint'));
    expect(calls().filter((c) => c.startsWith('pip '))).toHaveLength(1);
    expect(said).toHaveLength(1);
    expect(existsSync(join(cache, 'install.lock'))).toBe(false);
  });

  it('says in one line what to install when pip cannot reach PyPI, and leaves no half-made cache', async () => {
    // Prepare
    env.FAKE_PIP_FAIL = '1';

    // Act
    const error = await ensure().catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(ToolUnavailableError);
    const message = (error as Error).message;
    expect(message).not.toContain('\n');
    expect(message).toMatch(
      /^moto_server is not on PATH and could not be installed into .*\.cache\/tools \(pip: No matching distribution found for moto\[server\]==5\.2\.1; is PyPI reachable from here\?\): install it yourself: pipx install "moto\[server\]==5\.2\.1" && pipx install "cfn-lint==1\.51\.0"/,
    );
    expect(existsSync(join(cache, 'venv'))).toBe(false);
    expect(existsSync(join(cache, 'install.lock'))).toBe(false);
  });

  it('takes the command NIGHTSHIFT_MOTO_SERVER names (what the test setup hands its workers) without probing', async () => {
    // Prepare
    env.NIGHTSHIFT_MOTO_SERVER = '/opt/moto/bin/moto_server';

    // Act
    const command = await ensure();

    // Assess
    expect(command).toBe('/opt/moto/bin/moto_server');
    expect(calls()).toEqual([]);
  });

  it('reinstalls a cache whose interpreter no longer imports the tool (the Python it was made from is gone)', async () => {
    // Prepare: a healthy install, then the venv's interpreter breaks
    await ensure();
    env.FAKE_IMPORT_FAIL = '1';

    // Act: the broken cache is not trusted; the reinstall's fresh interpreter imports again
    const command = ensure();
    delete env.FAKE_IMPORT_FAIL;

    // Assess
    expect(await command).toBe(join(cache, 'venv', 'bin', 'moto_server'));
    expect(calls().filter((c) => c.startsWith('pip '))).toHaveLength(2);
    expect(said).toHaveLength(2);
  });

  it('takes over the lock of an installer that was killed, and installs', async () => {
    // Prepare: a lock left by a process that no longer runs
    const dead = spawnSync('/bin/sh', ['-c', 'exit 0']).pid!;
    mkdirSync(join(cache, 'install.lock'), { recursive: true });
    writeFileSync(
      join(cache, 'install.lock', 'holder'),
      JSON.stringify({ pid: dead, host: hostname(), at: Date.now() }),
    );

    // Act
    const command = await ensure();

    // Assess
    expect(command).toBe(join(cache, 'venv', 'bin', 'moto_server'));
    expect(existsSync(join(cache, 'install.lock'))).toBe(false);
  });

  it('takes over a lock older than an install can take, even if its pid now belongs to a live process', async () => {
    // Prepare: this process's own pid, 21 minutes ago (a container's pid reused, say)
    mkdirSync(join(cache, 'install.lock'), { recursive: true });
    writeFileSync(
      join(cache, 'install.lock', 'holder'),
      JSON.stringify({ pid: process.pid, host: hostname(), at: Date.now() - 21 * 60_000 }),
    );

    // Act
    const command = await ensure();

    // Assess
    expect(command).toBe(join(cache, 'venv', 'bin', 'moto_server'));
  });

  it('names the error of a Python that does not run, instead of blaming a missing venv module', async () => {
    // Prepare
    const broken = join(bin, 'python-broken');
    script(broken, 'echo "pyenv: python3: command not found" >&2; exit 127');

    // Act
    const error = await ensure('moto_server', [broken]).catch((e: unknown) => e);

    // Assess
    expect((error as Error).message).toContain(
      'python-broken did not run (exit 127): pyenv: python3: command not found',
    );
  });

  it.each([
    [
      'no Python at all',
      () => ['/nonexistent/python3', '/nonexistent/python'],
      /no Python found \(tried \/nonexistent\/python3, \/nonexistent\/python\); install Python 3\.9\+/,
    ],
    ['a Python older than moto supports', () => [fakePython], /python3 is Python 3\.8; 3\.9\+ is needed/],
  ])(
    'refuses to install with %s, saying what to install, and runs no pip',
    async (_case, pythons, reason) => {
      // Prepare
      env.FAKE_PY_VERSION = '3.8';

      // Act
      const error = await ensure('moto_server', pythons()).catch((e: unknown) => e);

      // Assess
      expect(error).toBeInstanceOf(ToolUnavailableError);
      expect((error as Error).message).toMatch(reason);
      expect((error as Error).message).not.toContain('\n');
      expect(calls().filter((c) => c.startsWith('pip ') || c.startsWith('venv '))).toEqual([]);
      expect(said).toEqual([]);
    },
  );
});
