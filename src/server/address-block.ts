/**
 * What a per-IP limit counts a client as. An IPv4 address is one client. An IPv6 host is given a
 * whole prefix (a /64 as a rule, by SLAAC, a provider or a cloud), and can take any address in it
 * for each connection: counted per address, one host opened 10 connections and installed 10
 * filters from `::1`…`::5` at limits of 2. So an IPv6 address counts as its first
 * `limits.ipv6PrefixLength` bits, written `2001:db8:1:2::/64`; at 128 it counts on its own.
 */
import { groupsOf, shortForm } from './peer-address.js';

/** `ip` (as peer-address.ts writes it) as per-IP limits count it. */
export function addressBlock(ip: string, ipv6PrefixLength: number): string {
  if (!ip.includes(':') || ipv6PrefixLength >= 128) return ip;
  const groups = groupsOf(ip.toLowerCase());
  // A zone id, or not an address: nothing to mask.
  if (groups === undefined) return ip;
  const masked = groups.map((group, i) => {
    const bits = Math.min(16, Math.max(0, ipv6PrefixLength - i * 16));
    return bits === 0 ? 0 : group & ((0xffff << (16 - bits)) & 0xffff);
  });
  return `${shortForm(masked)}/${ipv6PrefixLength}`;
}
