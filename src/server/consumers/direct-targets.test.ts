import { describe, expect, it } from 'vitest';
import { DirectTargets, DirectTargetsError } from './direct-targets.js';

describe('DirectTargets', () => {
  it('allows nothing when empty', () => {
    const t = new DirectTargets('');
    expect(t.empty).toBe(true);
    expect(t.allows('10.0.0.1', 6443)).toBe(false);
    expect(t.allows('kube.internal', 443)).toBe(false);
  });

  it('matches addresses by CIDR and port ranges, names by name, each only as written', () => {
    const t = new DirectTargets('10.0.0.0/8:6443, kube.internal:443-444, [fd00::/8]:*');
    expect(t.allows('10.1.2.3', 6443)).toBe(true);
    expect(t.allows('10.1.2.3', 6444)).toBe(false);
    expect(t.allows('11.0.0.1', 6443)).toBe(false);
    expect(t.allows('KUBE.internal.', 444)).toBe(true);
    expect(t.allows('kube.internal', 445)).toBe(false);
    expect(t.allows('other.internal', 443)).toBe(false);
    expect(t.allows('fd00::1', 1)).toBe(true);
    expect(t.allows('[fd12::1]', 65535)).toBe(true);
    expect(t.allows('fe00::1', 443)).toBe(false);
    // An address rule never allows a name, and the reverse.
    expect(new DirectTargets('10.0.0.1:443').allows('ten.example', 443)).toBe(false);
    expect(new DirectTargets('kube.internal:443').allows('10.0.0.1', 443)).toBe(false);
  });

  it('supports wildcard names and any host', () => {
    const t = new DirectTargets('*.corp.example:443');
    expect(t.allows('a.b.corp.example', 443)).toBe(true);
    expect(t.allows('corp.example', 443)).toBe(false);
    expect(t.allows('evilcorp.example', 443)).toBe(false);
    const any = new DirectTargets('*:443');
    expect(any.allows('anything.example', 443)).toBe(true);
    expect(any.allows('anything.example', 80)).toBe(false);
  });

  it('refuses loopback, link-local and "this host" unless a rule lies inside them', () => {
    const broad = new DirectTargets('0.0.0.0/0:*, [::/0]:*, *:*');
    for (const host of [
      '127.0.0.1',
      '127.9.9.9',
      '0.0.0.0',
      '169.254.169.254',
      '::1',
      '::',
      'fe80::1',
      '::ffff:127.0.0.1',
      'localhost',
      'api.localhost',
    ])
      expect(broad.allows(host, 443), host).toBe(false);
    expect(broad.allows('8.8.8.8', 443)).toBe(true);
    expect(broad.allows('example.com', 443)).toBe(true);
    const listed = new DirectTargets('127.0.0.1:6443, 169.254.169.254/32:80, [::1]:*, localhost:1');
    expect(listed.allows('127.0.0.1', 6443)).toBe(true);
    expect(listed.allows('::ffff:127.0.0.1', 6443)).toBe(true);
    expect(listed.allows('127.0.0.2', 6443)).toBe(false);
    expect(listed.allows('169.254.169.254', 80)).toBe(true);
    expect(listed.allows('::1', 22)).toBe(true);
    expect(listed.allows('localhost', 1)).toBe(true);
    expect(new DirectTargets('127.0.0.0/8:*').allows('127.3.2.1', 1)).toBe(true);
    // A range wider than the local one does not count as listing it.
    expect(new DirectTargets('96.0.0.0/3:*').allows('127.0.0.1', 1)).toBe(false);
  });

  it('resolves names allowed only by a wildcard, refusing local answers, and pins the address', async () => {
    const dns = (answers: Record<string, string[]>) => async (name: string) => {
      const a = answers[name];
      if (!a) throw new Error('ENOTFOUND');
      return a;
    };
    const t = new DirectTargets('*.corp.example:443, kube.corp.example:443, 127.0.0.1:443');
    const lookup = dns({
      'a.corp.example': ['10.0.0.5', '10.0.0.6'],
      'meta.corp.example': ['10.0.0.7', '169.254.169.254'],
      'lo.corp.example': ['127.0.0.1'],
      'kube.corp.example': ['127.0.0.2'],
    });
    expect(await t.check('a.corp.example', 443, lookup)).toEqual({
      allowed: true,
      dial: '10.0.0.5',
    });
    expect(await t.check('meta.corp.example', 443, lookup)).toEqual({ allowed: false });
    // 127.0.0.1:443 is listed, so a wildcard name may resolve to it.
    expect(await t.check('lo.corp.example', 443, lookup)).toEqual({
      allowed: true,
      dial: '127.0.0.1',
    });
    expect(await t.check('gone.corp.example', 443, lookup)).toEqual({ allowed: false });
    // A name the operator wrote out is trusted as written, resolved at connect time.
    expect(await t.check('kube.corp.example', 443, lookup)).toEqual({ allowed: true, dial: null });
    expect(await t.check('127.0.0.1', 443, lookup)).toEqual({ allowed: true, dial: null });
    expect(await t.check('a.corp.example', 80, lookup)).toEqual({ allowed: false });
  });

  it('names the bad rule', () => {
    for (const bad of [
      '10.0.0.1',
      '10.0.0.1:0',
      '10.0.0.1:70000',
      '10.0.0.0/33:1',
      'a*b:1',
      'x/8:1',
    ])
      expect(() => new DirectTargets(bad), bad).toThrow(DirectTargetsError);
    expect(() => new DirectTargets('ok:1, nope')).toThrow(/^GATEPOOL_DIRECT_TARGETS: .*"nope"/);
  });
});
