/**
 * A client address written one way, however it came. uWebSockets.js writes IPv6 addresses in full
 * (`0000:0000:0000:0000:0000:0000:0000:0001`), and on a dual-stack listener (`host: "::"`) an IPv4
 * client as an IPv4-mapped address in that form (`0000:0000:0000:0000:0000:ffff:7f00:0001`); a
 * proxy on a dual-stack socket names a client the short mapped way (`::ffff:203.0.113.9`, as Node
 * writes it), and proxies in Java write every group (`2001:db8:0:0:0:0:0:5`). Errors, logs,
 * session keys and per-IP limits named one client several ways, each a client of its own. An
 * IPv4-mapped address is written as the IPv4 address it is, any other IPv6 address in its short
 * form (RFC 5952: lower case, no leading zeros, the longest run of zero groups as `::`). Anything
 * else (IPv4, a zone id, not an address) is left as it is.
 */
const FULL_IPV6 = /^[0-9a-f]{4}(?::[0-9a-f]{4}){7}$/;
const GROUP = /^[0-9a-f]{1,4}$/;
/** an IPv4 address's octet as written in an IPv6 address's last 32 bits: 0 to 255, no leading zeros */
const OCTET = '(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const DOTTED_TAIL = new RegExp(`(?:^|:)${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}$`);

export function plainAddress(address: string): string {
  if (!address.includes(':')) return address;
  // uWS's own form, the common case: no parsing beyond the groups.
  const groups = FULL_IPV6.test(address) ? address.split(':').map((group) => parseInt(group, 16)) : groupsOf(address.toLowerCase());
  return groups === undefined ? address : shortForm(groups);
}

/** The eight groups of an IPv6 address in any of its written forms; undefined when it is not one. */
export function groupsOf(address: string): number[] | undefined {
  let text = address;
  const tail: number[] = [];
  const dotted = DOTTED_TAIL.exec(text);
  if (dotted !== null) {
    const bytes = dotted.slice(1).map(Number);
    tail.push((bytes[0]! << 8) | bytes[1]!, (bytes[2]! << 8) | bytes[3]!);
    // Keep the colon of a `::` before the IPv4 part; drop a single one.
    text = text.slice(0, dotted.index + (text.endsWith(`::${dotted[0]!.slice(1)}`) ? 1 : 0));
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const [head, rest] = halves.map((half) => (half === '' ? [] : half.split(':'))) as [string[], string[] | undefined];
  const spelled = [...head, ...(rest ?? [])];
  if (!spelled.every((group) => GROUP.test(group))) return undefined;
  const zeros = 8 - spelled.length - tail.length;
  if (rest === undefined ? zeros !== 0 : zeros < 1) return undefined;
  const numbers = (list: string[]): number[] => list.map((group) => parseInt(group, 16));
  return [...numbers(head), ...new Array<number>(rest === undefined ? 0 : zeros).fill(0), ...numbers(rest ?? []), ...tail];
}

/** `groups` as the IPv4 address an IPv4-mapped one is, else in RFC 5952 form. */
export function shortForm(groups: number[]): string {
  if (groups.slice(0, 5).every((group) => group === 0) && groups[5] === 0xffff) {
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
