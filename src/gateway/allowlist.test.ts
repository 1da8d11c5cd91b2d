import { describe, expect, it } from 'vitest';
import { Allowlist, AllowlistError, parseRule } from './allowlist.js';

describe('Allowlist', () => {
  it('allows nothing by default', () => {
    const list = new Allowlist([]);
    expect(list.allows('127.0.0.1', 80)).toBe(false);
    expect(list.allows('localhost', 80)).toBe(false);
    expect(list.describe()).toBe('(nothing)');
  });

  it('allows everything only with a literal *', () => {
    const list = new Allowlist(['*']);
    expect(list.allows('10.1.2.3', 1)).toBe(true);
    expect(list.allows('db.internal', 65535)).toBe(true);
    expect(list.allows('::1', 22)).toBe(true);
  });

  it('matches host names case-insensitively and never their addresses', () => {
    const list = new Allowlist(['DB.internal:5432']);
    expect(list.allows('db.internal', 5432)).toBe(true);
    expect(list.allows('db.INTERNAL.', 5432)).toBe(true);
    expect(list.allows('db.internal', 5433)).toBe(false);
    expect(list.allows('x.db.internal', 5432)).toBe(false);
    expect(list.allows('127.0.0.1', 5432)).toBe(false);
  });

  it('does not let an address rule allow a name', () => {
    const list = new Allowlist(['127.0.0.1:80']);
    expect(list.allows('127.0.0.1', 80)).toBe(true);
    expect(list.allows('localhost', 80)).toBe(false);
    expect(list.allows('127.0.0.2', 80)).toBe(false);
  });

  it('matches IPv4 CIDRs including edges', () => {
    const list = new Allowlist(['10.0.0.0/8:5432', '192.168.1.128/25:*', '0.0.0.0/0:7']);
    expect(list.allows('10.0.0.0', 5432)).toBe(true);
    expect(list.allows('10.255.255.255', 5432)).toBe(true);
    expect(list.allows('11.0.0.0', 5432)).toBe(false);
    expect(list.allows('192.168.1.128', 1)).toBe(true);
    expect(list.allows('192.168.1.127', 1)).toBe(false);
    expect(list.allows('8.8.8.8', 7)).toBe(true);
    expect(list.allows('::1', 7)).toBe(false);
  });

  it('normalises a CIDR with host bits set', () => {
    expect(new Allowlist(['10.1.2.3/16:80']).allows('10.1.200.1', 80)).toBe(true);
  });

  it('matches IPv6 addresses and CIDRs', () => {
    const list = new Allowlist(['[::1]:22', '[fd00::/8]:443', '[2001:db8::/32]:1000-2000']);
    expect(list.allows('::1', 22)).toBe(true);
    expect(list.allows('[::1]', 22)).toBe(true);
    expect(list.allows('0:0:0:0:0:0:0:1', 22)).toBe(true);
    expect(list.allows('::2', 22)).toBe(false);
    expect(list.allows('fd12:3456::1', 443)).toBe(true);
    expect(list.allows('fe80::1', 443)).toBe(false);
    expect(list.allows('2001:db8:ffff::1', 1500)).toBe(true);
    expect(list.allows('2001:db9::1', 1500)).toBe(false);
    expect(list.allows('127.0.0.1', 22)).toBe(false);
  });

  it('handles IPv4-mapped IPv6 as IPv6', () => {
    const list = new Allowlist(['[::ffff:10.0.0.0/104]:80']);
    expect(list.allows('::ffff:10.9.9.9', 80)).toBe(true);
    expect(list.allows('10.9.9.9', 80)).toBe(false);
  });

  it('supports port ranges and wildcard ports', () => {
    const list = new Allowlist(['host:8000-8010', 'any.example:*']);
    expect(list.allows('host', 7999)).toBe(false);
    expect(list.allows('host', 8000)).toBe(true);
    expect(list.allows('host', 8010)).toBe(true);
    expect(list.allows('host', 8011)).toBe(false);
    expect(list.allows('any.example', 1)).toBe(true);
    expect(list.allows('any.example', 65535)).toBe(true);
  });

  it.each([
    'host',
    'host:',
    'host:0',
    'host:65536',
    'host:10-5',
    'host:a',
    '::1:22',
    '10.0.0.0/33:80',
    '[fd00::/129]:80',
    'bad host:80',
    'host/8:80',
    '*:80:90',
    '**',
    '',
    '[host]:80',
  ])('rejects the malformed rule %j', (rule) => {
    expect(() => parseRule(rule)).toThrow(AllowlistError);
  });

  it('accepts `*:port` as a host name? no: `*` only stands alone', () => {
    expect(() => parseRule('*:80')).toThrow(AllowlistError);
  });
});
