/**
 * What a per-IP limit counts a client as. An IPv4 address is one client. An IPv6 host is given a
 * whole prefix (a /64 as a rule, by SLAAC, a provider or a cloud), and can take any address in it
 * for each connection: counted per address, one host opened 10 connections and installed 10
 * filters from `::1`…`::5` at limits of 2. So an IPv6 address counts as its first
 * `limits.ipv6PrefixLength` bits, written `2001:db8:1:2::/64`; at 128 it counts on its own. An
 * address that carries an IPv4 client (NAT64, SIIT) counts as that IPv4 address.
 */
import { groupsOf, shortForm } from './peer-address.js';

/** `ip` (as peer-address.ts writes it) as per-IP limits count it. */
export function addressBlock(ip: string, ipv6PrefixLength: number): string {
  if (!ip.includes(':') || ipv6PrefixLength >= 128) return ip;
  const groups = groupsOf(ip.toLowerCase());
  // A zone id, or not an address: nothing to mask.
  if (groups === undefined) return ip;
  if (carriesIpv4(groups)) return `${groups[6]! >> 8}.${groups[6]! & 255}.${groups[7]! >> 8}.${groups[7]! & 255}`;
  const masked = groups.map((group, i) => {
    const bits = Math.min(16, Math.max(0, ipv6PrefixLength - i * 16));
    return bits === 0 ? 0 : group & ((0xffff << (16 - bits)) & 0xffff);
  });
  return `${shortForm(masked)}/${ipv6PrefixLength}`;
}

/**
 * An IPv4 client behind a translator, in the last 32 bits: NAT64's well-known prefix
 * `64:ff9b::/96` (RFC 6052) and SIIT's IPv4-translated `::ffff:0:0/96` (RFC 7755). Each is one IPv4
 * client; masked to a /64, every IPv4 user of an IPv6-only server counted as one.
 */
function carriesIpv4(groups: readonly number[]): boolean {
  const zero = (from: number, to: number): boolean => groups.slice(from, to).every((group) => group === 0);
  if (groups[0] === 0x64 && groups[1] === 0xff9b) return zero(2, 6);
  return zero(0, 4) && groups[4] === 0xffff && groups[5] === 0;
}
