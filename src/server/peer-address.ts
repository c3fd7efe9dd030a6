/**
 * A peer address as uWebSockets.js writes it, made the way it is written everywhere else. uWS
 * writes IPv6 addresses in full (`0000:0000:0000:0000:0000:0000:0000:0001`), and on a dual-stack
 * listener (`host: "::"`) an IPv4 client as an IPv4-mapped address in that form
 * (`0000:0000:0000:0000:0000:ffff:7f00:0001`): errors, logs and session keys then named ::1 and
 * 127.0.0.1 that way. An IPv4-mapped address is written as the IPv4 address it is, any other IPv6
 * address in its short form (RFC 5952: no leading zeros, the longest run of zero groups as `::`).
 * A proxy on a dual-stack socket names a client the short mapped way (`::ffff:203.0.113.9`, as
 * Node writes it): that too is the IPv4 address, so one client has one address however it came.
 */
const MAPPED_PREFIX = '0000:0000:0000:0000:0000:ffff:';
/** eight groups of four hex digits and seven colons */
const FULL_LENGTH = 39;
const FULL_IPV6 = /^[0-9a-f]{4}(?::[0-9a-f]{4}){7}$/;

const SHORT_MAPPED = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i;

export function plainAddress(address: string): string {
  if (address.length !== FULL_LENGTH || !FULL_IPV6.test(address)) return SHORT_MAPPED.exec(address)?.[1] ?? address;
  const groups = address.split(':').map((group) => parseInt(group, 16));
  if (address.startsWith(MAPPED_PREFIX)) {
    const [high, low] = [groups[6]!, groups[7]!];
    return `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
  }
  // The longest run of two or more zero groups, the first of equal ones, becomes '::'.
  let runStart = -1;
  let runLength = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let end = i;
    while (end < 8 && groups[end] === 0) end++;
    if (end - i > runLength && end - i >= 2) [runStart, runLength] = [i, end - i];
    i = end;
  }
  const hex = groups.map((group) => group.toString(16));
  if (runStart < 0) return hex.join(':');
  return `${hex.slice(0, runStart).join(':')}::${hex.slice(runStart + runLength).join(':')}`;
}
