/**
 * An agent that goes away in the middle of its tunnel handshake is a network event, not a bug:
 * the platform logs one line naming the gateway and why, without a stack trace.
 */
import { once } from 'node:events';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadState } from '../../src/gateway/state.js';
import { TUNNEL_ALPN } from '../../src/protocol/tunnel.js';
import { isNetworkError, type HubLogger } from '../../src/server/tunnel/hub.js';
import { sleep, TunnelHarness, within } from '../tunnel/harness.js';

interface Entry {
  level: 'debug' | 'info' | 'warn';
  obj: Record<string, unknown>;
  msg: string;
}

describe('a gateway dying mid tunnel handshake', () => {
  const entries: Entry[] = [];
  const log: HubLogger = {
    debug: (obj, msg = '') => entries.push({ level: 'debug', obj: { ...obj }, msg }),
    info: (obj, msg = '') => entries.push({ level: 'info', obj: { ...obj }, msg }),
    warn: (obj, msg = '') => entries.push({ level: 'warn', obj: { ...obj }, msg }),
  };
  let harness: TunnelHarness;

  beforeAll(async () => {
    harness = await TunnelHarness.start({ hub: { log, helloTimeoutMs: 5000 } });
  });
  afterAll(async () => {
    await harness.close();
  });

  it('is logged as one line with the gateway id and name, no stack', async () => {
    const { gatewayId, stateDir } = await harness.createGateway({ name: 'dies-early' });
    const state = (await loadState(stateDir))!;
    // A client with the gateway's identity that finishes TLS and hangs up before its first
    // status, as an agent killed right after "connecting to tunnel" does.
    const socket = tls.connect({
      host: '127.0.0.1',
      port: harness.port,
      key: state.keyPem,
      cert: state.certificatePem,
      ca: [state.serverCaCertificatePem],
      ALPNProtocols: [TUNNEL_ALPN],
      minVersion: 'TLSv1.3',
    });
    socket.on('error', () => undefined);
    await within(once(socket, 'secureConnect'), 5000, 'TLS handshake');
    // Let the hub identify the gateway and open its control stream.
    for (let i = 0; i < 50 && !harness.identifyCalls.includes(gatewayId); i++) await sleep(20);
    await sleep(100);
    socket.destroy();

    let line: Entry | undefined;
    for (let i = 0; i < 100 && !line; i++) {
      line = entries.find((e) => e.level === 'warn' && e.obj.gatewayId === gatewayId);
      if (!line) await sleep(50);
    }
    expect(line, JSON.stringify(entries)).toBeDefined();
    expect(line!.obj).not.toHaveProperty('err');
    expect(JSON.stringify(line)).not.toContain('    at ');
    expect(line!.obj.name).toBe('dies-early');
    expect(line!.msg).toMatch(/tunnel did not come up: \S/);
    expect(harness.hub.live(gatewayId)).toBeUndefined();
  }, 30_000);

  it('keeps stacks for errors that are not network events', () => {
    const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    const h2 = Object.assign(new Error('closed'), { code: 'ERR_HTTP2_STREAM_CANCEL' });
    expect(isNetworkError(reset)).toBe(true);
    expect(isNetworkError(h2)).toBe(true);
    expect(isNetworkError(new TypeError('x is undefined'))).toBe(false);
    expect(isNetworkError('ECONNRESET')).toBe(false);
  });
});
