/**
 * Which targets a gateway may dial. Rules (one per `--allow`):
 *   host:port        a host name, matched case-insensitively against the requested name only
 *   IP:port          a single IPv4/IPv6 address (IPv6 in brackets: [::1]:5432)
 *   CIDR:port        10.0.0.0/8:5432, [fd00::/8]:443
 *   *                everything (only when given literally)
 * `port` is a number, a range `a-b`, or `*`. No rules → nothing is allowed.
 *
 * Strictness: a name rule never allows the name's resolved address and an address rule never
 * allows a name that resolves into it. Requests are matched as written, so a caller cannot reach
 * an address by a name the operator did not list, nor a name-only target by its IP.
 */
import { isIP } from 'node:net';

interface PortRange {
  from: number;
  to: number;
}

type HostMatcher =
  { kind: 'name'; name: string } | { kind: 'cidr'; family: 4 | 6; network: bigint; prefix: number };

export interface AllowRule {
  source: string;
  host: HostMatcher | 'any';
  ports: PortRange;
}

export class AllowlistError extends Error {
  override name = 'AllowlistError';
}

const ALL_PORTS: PortRange = { from: 1, to: 65535 };

export function parseRule(source: string): AllowRule {
  const text = source.trim();
  if (text === '*') return { source: text, host: 'any', ports: ALL_PORTS };
  const match = /^(?:\[([^\]]+)\]|([^:[\]\s]+)):([^:]+)$/.exec(text);
  if (!match) {
    throw new AllowlistError(
      `invalid allow rule "${source}": expected host:port, CIDR:port, [IPv6]:port or *`,
    );
  }
  const hostText = (match[1] ?? match[2] ?? '').toLowerCase();
  const ports = parsePorts(match[3] ?? '', source);
  return { source: text, host: parseHost(hostText, source, match[1] !== undefined), ports };
}

function parsePorts(text: string, source: string): PortRange {
  if (text === '*') return ALL_PORTS;
  const range = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text);
  const from = Number(range?.[1]);
  const to = range?.[2] === undefined ? from : Number(range[2]);
  if (!range || from < 1 || to > 65535 || from > to) {
    throw new AllowlistError(`invalid port "${text}" in allow rule "${source}"`);
  }
  return { from, to };
}

function parseHost(text: string, source: string, bracketed: boolean): HostMatcher {
  const [address, prefixText, extra] = text.split('/');
  if (extra !== undefined || !address) throw new AllowlistError(`invalid host in "${source}"`);
  const family = ipFamily(address);
  if (family === 0) {
    if (prefixText !== undefined || bracketed || !isHostName(address)) {
      throw new AllowlistError(`invalid host "${text}" in allow rule "${source}"`);
    }
    return { kind: 'name', name: address.replace(/\.$/, '') };
  }
  if (family === 6 && !bracketed) {
    throw new AllowlistError(`IPv6 rules need brackets: "[${text}]:port" in "${source}"`);
  }
  const bits = family === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? bits : Number(prefixText);
  if (!/^\d{1,3}$/.test(prefixText ?? String(bits)) || prefix > bits) {
    throw new AllowlistError(`invalid prefix length in allow rule "${source}"`);
  }
  const value = ipToBigInt(address, family);
  const mask = prefixMask(prefix, bits);
  return { kind: 'cidr', family, network: value & mask, prefix };
}

// node's isIP is typed as number; narrowing once keeps the family a literal type downstream.
function ipFamily(host: string): 0 | 4 | 6 {
  const family = isIP(host);
  return family === 4 || family === 6 ? family : 0;
}

function isHostName(name: string): boolean {
  return /^(?=.{1,253}\.?$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$/.test(
    name,
  );
}

function prefixMask(prefix: number, bits: number): bigint {
  if (prefix === 0) return 0n;
  return ((1n << BigInt(prefix)) - 1n) << BigInt(bits - prefix);
}

function ipToBigInt(address: string, family: 4 | 6): bigint {
  if (family === 4) {
    return address.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
  }
  let text = address;
  // An IPv4 tail (::ffff:10.0.0.1) becomes two hextets.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4?.[1]) {
    const n = ipToBigInt(v4[1], 4);
    text = `${text.slice(0, -v4[1].length)}${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const headParts = head ? head.split(':') : [];
  const tailParts = tail ? tail.split(':') : [];
  const missing = 8 - headParts.length - tailParts.length;
  const parts = [
    ...headParts,
    ...Array<string>(tail === undefined ? 0 : missing).fill('0'),
    ...tailParts,
  ];
  return parts.reduce((acc, part) => (acc << 16n) | BigInt(parseInt(part, 16)), 0n);
}

function hostMatches(matcher: HostMatcher, host: string): boolean {
  const family = ipFamily(host);
  if (matcher.kind === 'name') {
    return family === 0 && host.toLowerCase().replace(/\.$/, '') === matcher.name;
  }
  if (family !== matcher.family) return false;
  const bits = family === 4 ? 32 : 128;
  return (ipToBigInt(host, family) & prefixMask(matcher.prefix, bits)) === matcher.network;
}

export class Allowlist {
  readonly rules: readonly AllowRule[];

  constructor(rules: readonly string[]) {
    this.rules = rules.map(parseRule);
  }

  allows(host: string, port: number): boolean {
    const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
    return this.rules.some(
      (rule) =>
        port >= rule.ports.from &&
        port <= rule.ports.to &&
        (rule.host === 'any' || hostMatches(rule.host, bare)),
    );
  }

  describe(): string {
    return this.rules.length ? this.rules.map((rule) => rule.source).join(', ') : '(nothing)';
  }
}
