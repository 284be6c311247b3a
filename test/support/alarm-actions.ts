/**
 * moto 5.2.1 answers DisableAlarmActions and EnableAlarmActions with a 500. This answers them through the
 * test proxy as CloudWatch does (200, empty body), records the names sent, and writes each alarm's
 * ActionsEnabled into moto's DescribeAlarms answers, so a run sees what it (or a test) set.
 */
import type { Proxy } from './proxy.ts';

const JSON10 = 'application/x-amz-json-1.0';

export interface AlarmActions {
  /** ActionsEnabled by alarm name, as the emulated CloudWatch holds it (a test seeds it too). */
  actions: Map<string, boolean>;
  /** The AlarmNames of each call, in order. */
  sent: { disable: string[][]; enable: string[][] };
  /** Answers the operation as CloudWatch does again, after a test stubbed it with a failure. */
  answer: (operation: 'DisableAlarmActions' | 'EnableAlarmActions') => void;
}

export const emulateAlarmActions = (proxy: Proxy): AlarmActions => {
  const actions = new Map<string, boolean>();
  const sent = { disable: [] as string[][], enable: [] as string[][] };
  const answer = (operation: 'DisableAlarmActions' | 'EnableAlarmActions') => {
    const op = operation === 'DisableAlarmActions' ? 'disable' : 'enable';
    proxy.stub(operation, (request) => {
      const names = (JSON.parse(request.body) as { AlarmNames: string[] }).AlarmNames;
      sent[op].push(names);
      for (const n of names) actions.set(n, op === 'enable');
      return { contentType: JSON10, body: '{}' };
    });
  };
  answer('DisableAlarmActions');
  answer('EnableAlarmActions');
  proxy.rewrite('DescribeAlarms', (body) => {
    const out = JSON.parse(body) as { MetricAlarms?: { AlarmName?: string; ActionsEnabled?: boolean }[] };
    for (const a of out.MetricAlarms ?? [])
      a.ActionsEnabled = actions.get(a.AlarmName ?? '') ?? a.ActionsEnabled;
    return JSON.stringify(out);
  });
  return { actions, sent, answer };
};
