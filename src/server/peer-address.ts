/**
 * A peer address as uWebSockets.js writes it, made the way it is written everywhere else. On a
 * dual-stack listener (`host: "::"`) uWS writes an IPv4 client in full IPv6 form, as an
 * IPv4-mapped address (`0000:0000:0000:0000:0000:ffff:7f00:0001`): errors, logs and session keys
 * then named 127.0.0.1 that way. Such an address is written as the IPv4 address it is.
 */
const MAPPED_PREFIX = '0000:0000:0000:0000:0000:ffff:';
const MAPPED_LENGTH = MAPPED_PREFIX.length + 9;

export function plainAddress(address: string): string {
  if (address.length !== MAPPED_LENGTH || !address.startsWith(MAPPED_PREFIX)) return address;
  const high = parseInt(address.slice(MAPPED_PREFIX.length, MAPPED_PREFIX.length + 4), 16);
  const low = parseInt(address.slice(MAPPED_PREFIX.length + 5), 16);
  if (Number.isNaN(high) || Number.isNaN(low)) return address;
  return `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
}
