/**
 * A changing invoke of a deployed function is sent once: the SDK retries a request whose connection
 * reset, and Lambda would then run the same stop or restart twice. Against a local HTTP server standing
 * in for the Lambda API (aws-sdk-client-mock replaces `send` and so skips the SDK's retries, which are
 * what this is about).
 */
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cli } from '#test/support/cli.ts';
import { freePort } from '#test/support/moto.ts';

const PLANNED = {
  action: 'stop',
  dryRun: true,
  summary: { changed: 0, planned: 1, unchanged: 0, skipped: 0, undone: 0, waiting: 0, failed: 0 },
  resources: [
    {
      arn: 'arn:aws:ecs:eu-central-1:123456789012:service/stage/web',
      type: 'ecs-service',
      outcome: 'planned',
      detail: 'desiredCount 3 → 0; saved in tag nightshift:stopped',
    },
  ],
};

describe('nightshift invoking a deployed function that changes things', () => {
  let server: Server;
  /** What the fake Lambda does with each request, in turn: reset the connection, or answer. */
  let answers: ('reset' | object)[] = [];
  const received: { path: string; payload: unknown }[] = [];
  const saved = { ...process.env };

  beforeAll(async () => {
    const port = await freePort();
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        // The deployed configuration the CLI reads before it asks (is DRY_RUN true?): a function that acts.
        if (req.method === 'GET' && req.url?.endsWith('/configuration')) {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ Environment: { Variables: { DRY_RUN: 'false' } }, Timeout: 300 }));
          return;
        }
        received.push({ path: req.url ?? '', payload: JSON.parse(Buffer.concat(chunks).toString() || '{}') });
        const answer = answers.shift() ?? 'reset';
        if (answer === 'reset') {
          // The request reached Lambda; its answer never comes back.
          req.socket.destroy();
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(answer));
      });
    });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    Object.assign(process.env, {
      AWS_ENDPOINT_URL_LAMBDA: `http://127.0.0.1:${port}`,
      AWS_REGION: 'eu-central-1',
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
    });
  });
  afterAll(async () => {
    process.env = saved;
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  beforeEach(() => {
    received.length = 0;
    answers = [];
  });

  it('sends a changing invoke once when its connection resets, and says its outcome is unknown', async () => {
    // Act
    const run = await cli(['stop', '--cluster', 'stage', '--yes', '--json']);

    // Assess
    expect(received).toEqual([
      {
        path: '/2015-03-31/functions/nightshift-dev-ecs-scheduler/invocations',
        payload: { action: 'stop', clusters: ['stage'] },
      },
    ]);
    expect(run.code).toBe(1);
    expect(run.err).toMatch(
      /^the outcome of nightshift-dev-ecs-scheduler is unknown: .+\. The request may have reached Lambda, so the function may have run, or may still be running; it was not sent again\. Look before you run it again: `nightshift status` shows what nightshift holds now, and the same command with --dry-run shows what is still to do\.$/,
    );
    expect(JSON.parse(run.out)).toEqual({
      error: {
        type: 'OutcomeUnknownError',
        message: run.err,
        function: 'nightshift-dev-ecs-scheduler',
      },
    });
  });

  it('retries the dry run shown for confirmation, which changes nothing, but not the apply', async () => {
    answers = ['reset', PLANNED, 'reset'];

    const run = await cli(['stop', '--cluster', 'stage'], { interactive: true, answer: true });

    expect(received.map((r) => r.payload)).toEqual([
      { action: 'stop', clusters: ['stage'], dryRun: true },
      { action: 'stop', clusters: ['stage'], dryRun: true },
      { action: 'stop', clusters: ['stage'] },
    ]);
    expect(run.questions).toEqual(['Apply 1 planned change(s) in stage dev?']);
    expect(run.code).toBe(1);
    expect(run.err).toContain('the outcome of nightshift-dev-ecs-scheduler is unknown');
  });
});
