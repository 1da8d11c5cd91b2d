/**
 * Whether an address is this host's loopback (127.0.0.0/8, ::1, IPv4-mapped 127.x): shared by
 * the CLI (a listener others cannot reach) and the platform (a scrape from this host).
 */
import { BlockList, isIP } from 'node:net';

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');
LOOPBACK.addSubnet('::ffff:127.0.0.0', 104, 'ipv6');

/** False for anything that is not an IP address at all (a host name, ''). */
export function isLoopback(address: string): boolean {
  const family = isIP(address);
  return family !== 0 && LOOPBACK.check(address, family === 6 ? 'ipv6' : 'ipv4');
}
