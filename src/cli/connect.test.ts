/** What `gatepool connect` prints about where it listens, and the exit code of a killed command. */
import { describe, expect, it } from 'vitest';
import type { AccessTarget } from '../client/api.js';
import { connectHost, exposureWarning, readyLine, signalExitCode } from './connect.js';

const target = (protocol: AccessTarget['protocol']): AccessTarget => ({
  id: 'a5a8c7a4-0000-4000-8000-000000000001',
  name: 'orders-db',
  host: '10.0.0.5',
  port: 5432,
  protocol,
  description: '',
  gateway: null,
  gatewayPool: { id: 'p', name: 'dc1' },
  canConnect: true,
});

describe('gatepool connect on a non-loopback address', () => {
  it('warns that anyone who reaches the address uses your access', () => {
    expect(exposureWarning({ host: '0.0.0.0', port: 15432 }, 'orders-db')).toBe(
      'warning: listening on 0.0.0.0:15432, which is not a loopback address: anyone who can reach it gets to orders-db with your access',
    );
    expect(exposureWarning({ host: '::', port: 15432 }, 'orders-db')).toMatch(
      /^warning: listening on \[::\]:15432, /,
    );
    expect(exposureWarning({ host: '192.168.1.20', port: 1 }, 'orders-db')).toMatch(/^warning/);
    for (const host of ['127.0.0.1', '127.0.0.2', '::1', '::ffff:127.0.0.1'])
      expect(exposureWarning({ host, port: 15432 }, 'orders-db')).toBeUndefined();
  });

  it('tells clients an address they can connect to, not the wildcard', () => {
    expect(readyLine(target('postgres'), { host: '0.0.0.0', port: 15432 })).toBe(
      'Forwarding 0.0.0.0:15432 to orders-db (postgres 10.0.0.5:5432 via gateway pool "dc1"); connect with: psql "host=127.0.0.1 port=15432"',
    );
    expect(readyLine(target('postgres'), { host: '::', port: 15432 })).toMatch(
      /^Forwarding \[::\]:15432 to .*; connect with: psql "host=::1 port=15432"$/,
    );
    expect(readyLine(target('http'), { host: '::', port: 8000 })).toMatch(
      /; open http:\/\/\[::1\]:8000\/$/,
    );
    expect(readyLine(target('postgres'), { host: '127.0.0.1', port: 15432 })).toMatch(
      /psql "host=127\.0\.0\.1 port=15432"$/,
    );
    expect(connectHost('192.168.1.20')).toBe('192.168.1.20');
  });

  it('brackets an IPv6 target, so its port is not read as part of the address', () => {
    expect(
      readyLine({ ...target('tcp'), host: '::1' }, { host: '127.0.0.1', port: 15432 }),
    ).toContain('(tcp [::1]:5432 via gateway pool "dc1")');
  });
});

describe('the exit code of a command killed by a signal', () => {
  it('is 128 + the signal number, for any signal', () => {
    expect(signalExitCode('SIGINT')).toBe(130);
    expect(signalExitCode('SIGQUIT')).toBe(131);
    expect(signalExitCode('SIGKILL')).toBe(137);
    expect(signalExitCode('SIGTERM')).toBe(143);
    expect(signalExitCode('SIGPIPE')).toBe(141);
  });
});
