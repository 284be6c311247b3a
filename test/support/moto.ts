/**
 * Starts a private moto server on a free loopback port and stops it by pid. moto_server comes from PATH
 * or from the project's own cache (scripts/tools.ts installs it there once when it is on neither; the
 * integration tests' setup, test/support/tools-setup.ts, does that before any test file runs, and fails
 * the run with one line saying what to install when it cannot).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { cannotMessage, ensureTool, toolCommand } from '#scripts/tools.ts';

/**
 * Whether moto tests run here: always, once the integration setup (test/support/setup-moto.ts) found or
 * installed moto_server. Outside that setup a test file that cannot find it fails with the one line that
 * says what to install: nothing is skipped.
 */
export const motoTestsEnabled = (): boolean => {
  if (toolCommand('moto_server')) return true;
  throw new Error(cannotMessage('moto_server', 'not found by the test setup'));
};

export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });

export interface Moto {
  url: string;
  reset: () => Promise<void>;
  stop: () => void;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export const startMoto = async (): Promise<Moto> => {
  const command = await ensureTool('moto_server');
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(command, ['-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  // A command that cannot be started (a cache whose files vanished): said at once, not after 60 s.
  let failed: Error | undefined;
  child.on('error', (error) => (failed = error));
  child.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  const stop = () => {
    if (child.pid && child.exitCode === null) process.kill(child.pid, 'SIGTERM');
  };
  process.once('exit', stop);
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (failed)
      throw new Error(
        `${command} could not be started: ${failed.message} (delete .cache/tools to reinstall)`,
      );
    if (child.exitCode !== null) throw new Error(`moto_server exited with ${child.exitCode}: ${stderr}`);
    try {
      const res = await fetch(`${url}/moto-api/`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      stop();
      throw new Error(`moto_server did not answer on ${url} within 60 s: ${stderr}`);
    }
    await sleep(100);
  }
  return {
    url,
    reset: async () => {
      const res = await fetch(`${url}/moto-api/reset`, { method: 'POST' });
      if (!res.ok) throw new Error(`moto reset failed: ${res.status}`);
    },
    stop,
  };
};

/** Points the SDK (clients built after this call) at `url` with throwaway credentials. */
export const useEndpoint = (url: string, region = 'eu-central-1'): void => {
  Object.assign(process.env, {
    AWS_ENDPOINT_URL: url,
    AWS_REGION: region,
    AWS_DEFAULT_REGION: region,
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  });
  delete process.env.AWS_PROFILE;
  delete process.env.AWS_SESSION_TOKEN;
};
