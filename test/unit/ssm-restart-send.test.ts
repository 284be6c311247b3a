import { describe, expect, it } from 'vitest';
import { SendCommandCommand, SSMClient } from '@aws-sdk/client-ssm';
import { sdkConfig } from '#shared/aws/config.ts';
import { SEND_NOT_RETRIED, sendOnce } from '#functions/ssm-restart/execute.ts';

/**
 * SendCommand takes no client token: a second attempt is a second command, and a second restart of
 * every instance in it. These run the real SDK client, with the project's retry settings, against an
 * HTTP handler that answers each attempt in turn as SSM would (JSON protocol).
 */
const ssmAnswering = (answers: { status: number; body: object }[], maxAttempts?: number) => {
  const attempts: string[] = [];
  const client = new SSMClient({
    ...sdkConfig(),
    ...(maxAttempts !== undefined && { maxAttempts }),
    region: 'eu-central-1',
    endpoint: 'http://ssm.test',
    credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' },
    requestHandler: {
      handle: async (request: { headers: Record<string, string> }) => {
        attempts.push(request.headers['x-amz-target'] ?? '');
        const answer = answers.shift() ?? { status: 500, body: { __type: 'InternalServerError' } };
        return {
          response: {
            statusCode: answer.status,
            headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': 'test' },
            body: new TextEncoder().encode(JSON.stringify(answer.body)),
          },
        };
      },
    },
  });
  return { client, attempts };
};

const send = () =>
  new SendCommandCommand({
    DocumentName: 'AWS-RunShellScript',
    InstanceIds: ['i-0123456789abcdef0'],
    Parameters: { commands: ['docker restart web'] },
    TimeoutSeconds: 120,
  });
const INTERNAL = {
  status: 500,
  body: { __type: 'InternalServerError', message: 'We encountered an internal error' },
};
const THROTTLED = { status: 400, body: { __type: 'ThrottlingException', message: 'Rate exceeded' } };
const SENT = { status: 200, body: { Command: { CommandId: 'cmd-1', Status: 'Pending' } } };

describe('SendCommand is sent once', () => {
  it('is retried by the SDK after a 5xx without sendOnce: the restart would run twice', async () => {
    const { client, attempts } = ssmAnswering([INTERNAL, SENT], 2);

    const out = await client.send(send());

    expect(out.Command?.CommandId).toBe('cmd-1');
    expect(attempts).toEqual(['AmazonSSM.SendCommand', 'AmazonSSM.SendCommand']);
  });

  it('is not sent again after a 5xx, whose answer does not say whether SSM took it', async () => {
    const { client, attempts } = ssmAnswering([INTERNAL, SENT]);

    const error = await client.send(sendOnce(send())).then(
      () => undefined,
      (e: unknown) => e as Error,
    );

    expect(attempts).toEqual(['AmazonSSM.SendCommand']);
    expect(error?.name).toBe(SEND_NOT_RETRIED);
    expect(error?.message).toBe(
      'InternalServerError: We encountered an internal error (not sent again: SSM may have taken it)',
    );
  });

  it('is sent again after throttling, which SSM refused', async () => {
    const { client, attempts } = ssmAnswering([THROTTLED, SENT]);

    const out = await client.send(sendOnce(send()));

    expect(out.Command?.CommandId).toBe('cmd-1');
    expect(attempts).toEqual(['AmazonSSM.SendCommand', 'AmazonSSM.SendCommand']);
  });

  it.each([
    ['InvalidInstanceId', 'Instances [[i-0123456789abcdef0]] not in a valid state for account 123456789012'],
    ['AccessDeniedException', 'User is not authorized to perform: ssm:SendCommand'],
    ['ValidationException', '1 validation error detected'],
  ])(
    'ends at once with the error itself when SSM refused it outright (%s, a 4xx): it took nothing',
    async (code, message) => {
      const { client, attempts } = ssmAnswering([{ status: 400, body: { __type: code, message } }, SENT]);

      const error = await client.send(sendOnce(send())).then(
        () => undefined,
        (e: unknown) => e as Error & { $fault?: string },
      );

      expect(attempts).toEqual(['AmazonSSM.SendCommand']);
      expect(error?.name).toBe(code);
      expect(error?.message).toBe(message);
      expect(error?.$fault).toBe('client');
    },
  );

  it('is not sent again after a lost connection, which got no answer at all', async () => {
    const attempts: string[] = [];
    const client = new SSMClient({
      ...sdkConfig(),
      region: 'eu-central-1',
      endpoint: 'http://ssm.test',
      credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' },
      requestHandler: {
        handle: async () => {
          attempts.push('SendCommand');
          throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
        },
      },
    });

    const error = await client.send(sendOnce(send())).then(
      () => undefined,
      (e: unknown) => e as Error,
    );

    expect(attempts).toEqual(['SendCommand']);
    expect(error?.name).toBe(SEND_NOT_RETRIED);
    expect(error?.message).toMatch(/socket hang up \(not sent again: SSM may have taken it\)$/);
  });
});
