/**
 * Which targets the platform itself may connect to when a consumer has no gateway (e.g. a
 * Kubernetes API with "No gateway (direct)"), from GATEPOOL_DIRECT_TARGETS. Empty = none: a
 * direct connection from the platform reaches the platform's own network, so an org member must
 * not be able to aim it anywhere (a network probe) unless the operator allowed that place.
 *
 * Rules (comma-separated): `host:port`, `*.suffix:port`, `IP:port`, `CIDR:port`, `[IPv6]:port`,
 * `[IPv6/len]:port`, `*:port`; port is a number, `a-b` or `*`. As on a gateway's --allow, rules
 * match the target as written: a name rule allows that name (resolved normally) and never an
 * address; an address rule allows IP literals only. Loopback, link-local and "this host"
 * addresses (127/8, 0/8, 169.254/16, ::1, ::, fe80::/10) are refused unless a rule lies inside
 * those ranges: a broad rule such as `0.0.0.0/0:*` or `*:*` does not open the platform's own
 * services or a cloud metadata endpoint. `localhost` (and `*.localhost`) only by an exact rule.
 * A name allowed only by a wildcard (`*`, `*.suffix`) is resolved first (check()): it must
 * resolve, and to no local address a rule does not list; the connection then goes to the address
 * that was checked, so a second lookup cannot answer differently.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';

export const DIRECT_TARGETS_SETTING = 'GATEPOOL_DIRECT_TARGETS';

type Host =
  | { kind: 'any' }
  | { kind: 'name'; name: string }
  | { kind: 'suffix'; suffix: string }
  | { kind: 'net'; list: BlockList; local: boolean };

interface Rule {
  host: Host;
  from: number;
  to: number;
}

const LOCAL: Array<[string, number, 'ipv4' | 'ipv6']> = [
  ['127.0.0.0', 8, 'ipv4'],
  ['0.0.0.0', 8, 'ipv4'],
  ['169.254.0.0', 16, 'ipv4'],
  ['::1', 128, 'ipv6'],
  ['::', 128, 'ipv6'],
  ['fe80::', 10, 'ipv6'],
];
const localList = new BlockList();
for (const [net, prefix, type] of LOCAL) localList.addSubnet(net, prefix, type);

/** A rule the matcher cannot use; the message names the setting, for a clear start-up error. */
export class DirectTargetsError extends Error {
  constructor(readonly problem: string) {
    super(`${DIRECT_TARGETS_SETTING}: ${problem}`);
  }
}

/** An IPv4-mapped IPv6 address is its IPv4 address (one family per address for matching). */
function normalizeIp(address: string): { address: string; type: 'ipv4' | 'ipv6' } | null {
  const bare = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare);
  const ip = mapped?.[1] ?? bare;
  const family = isIP(ip);
  if (family === 4) return { address: ip, type: 'ipv4' };
  if (family === 6) return { address: ip.toLowerCase(), type: 'ipv6' };
  return null;
}

const isLocalName = (name: string) => name === 'localhost' || name.endsWith('.localhost');

function parseRule(source: string): Rule {
  const m =
    /^(?:\[([0-9a-fA-F:.]+)(?:\/(\d{1,3}))?\]|\[([0-9a-fA-F:.]+)\]\/(\d{1,3})|([A-Za-z0-9.*_-]+?)(?:\/(\d{1,2}))?):(\*|\d{1,5}(?:-\d{1,5})?)$/.exec(
      source,
    );
  if (!m) throw new DirectTargetsError(`invalid rule "${source}"`);
  const ipText = m[1] ?? m[3];
  const prefixText = m[2] ?? m[4] ?? m[6];
  const nameText = m[5];
  const portText = m[7] ?? '';
  const [fromText, toText] = portText === '*' ? ['1', '65535'] : portText.split('-');
  const from = Number(fromText);
  const to = Number(toText ?? fromText);
  if (!(from >= 1 && to <= 65535 && from <= to))
    throw new DirectTargetsError(`invalid port "${portText}" in rule "${source}"`);
  let host: Host;
  const ip = normalizeIp(ipText ?? nameText ?? '');
  if (ip) {
    const bits = ip.type === 'ipv4' ? 32 : 128;
    const prefix = prefixText === undefined ? bits : Number(prefixText);
    if (prefix > bits) throw new DirectTargetsError(`invalid prefix length in rule "${source}"`);
    const list = new BlockList();
    list.addSubnet(ip.address, prefix, ip.type);
    // The rule opens local addresses only when it lies wholly inside a local range.
    const local = LOCAL.some(([net, p, type]) => {
      if (type !== ip.type || prefix < p) return false;
      const range = new BlockList();
      range.addSubnet(net, p, type);
      return range.check(ip.address, ip.type);
    });
    host = { kind: 'net', list, local };
  } else {
    const name = (nameText ?? '').toLowerCase().replace(/\.$/, '');
    if (prefixText !== undefined || !name)
      throw new DirectTargetsError(`invalid host in rule "${source}"`);
    if (name === '*') host = { kind: 'any' };
    else if (name.startsWith('*.') && !name.slice(2).includes('*'))
      host = { kind: 'suffix', suffix: name.slice(1) };
    else if (!name.includes('*')) host = { kind: 'name', name };
    else throw new DirectTargetsError(`invalid host "${name}" in rule "${source}"`);
  }
  return { host, from, to };
}

export class DirectTargets {
  private readonly rules: Rule[];

  /** Throws DirectTargetsError naming the first bad rule. */
  constructor(readonly source: string) {
    this.rules = source
      .split(',')
      .map((r) => r.trim())
      .filter(Boolean)
      .map(parseRule);
  }

  get empty(): boolean {
    return this.rules.length === 0;
  }

  /**
   * May the platform connect to `host:port` itself, and where to: `dial` is the address to
   * connect to (null: `host` as written). Resolves names matched only by a wildcard rule.
   */
  async check(
    host: string,
    port: number,
    lookup: (name: string) => Promise<string[]> = resolveAll,
  ): Promise<{ allowed: false } | { allowed: true; dial: string | null }> {
    if (!this.allows(host, port)) return { allowed: false };
    const name = host.toLowerCase().replace(/\.$/, '');
    const named = this.rules.some(
      (r) => r.host.kind === 'name' && r.host.name === name && port >= r.from && port <= r.to,
    );
    if (normalizeIp(host) || named) return { allowed: true, dial: null };
    const addresses = await lookup(host).catch(() => []);
    const safe = addresses.filter((a) => {
      const ip = normalizeIp(a);
      return !!ip && (!localList.check(ip.address, ip.type) || this.allows(a, port));
    });
    const [first] = addresses;
    return first !== undefined && safe.length === addresses.length
      ? { allowed: true, dial: first }
      : { allowed: false };
  }

  /** May the platform connect to `host:port` itself? `host` as written (name or IP literal). */
  allows(host: string, port: number): boolean {
    const ip = normalizeIp(host);
    const name = ip ? '' : host.toLowerCase().replace(/\.$/, '');
    const local = ip ? localList.check(ip.address, ip.type) : isLocalName(name);
    return this.rules.some((rule) => {
      if (port < rule.from || port > rule.to) return false;
      const h = rule.host;
      if (ip) return h.kind === 'net' && (!local || h.local) && h.list.check(ip.address, ip.type);
      if (h.kind === 'name') return h.name === name;
      if (local) return false;
      if (h.kind === 'suffix') return name.endsWith(h.suffix);
      return h.kind === 'any';
    });
  }
}

async function resolveAll(name: string): Promise<string[]> {
  return (await dnsLookup(name, { all: true, verbatim: true })).map((a) => a.address);
}
