/**
 * The client's address when evmux runs behind a load balancer or ingress that it trusts: the TCP
 * peer is then the proxy, and the client is named in a header the proxy adds. Without this, every
 * client behind one ingress would share the ingress's address: one per-IP connection limit and one
 * ring position for all of them.
 *
 * Only a peer inside `proxy.trusted` is believed. `X-Forwarded-For` is read from the right (each
 * proxy appends the address it saw): trusted addresses are skipped, and the first one that is not
 * trusted is the client. A client cannot forge its way past that: whatever it writes itself sits to
 * the left of what the trusted proxies appended. When every address is trusted, the leftmost is
 * the client; an entry that is not an IP address ends the walk at the last trusted hop. Entries
 * with a port, as some load balancers write them (`203.0.113.9:4711`, `[2001:db8::5]:4711`), name
 * the address without it.
 *
 * With `proxy.header: forwarded`, the standard header (RFC 7239) is read the same way, one hop per
 * element, from its `for=` parameter (`for=192.0.2.60;proto=https, for="[2001:db8::17]:4711"`). An
 * element without one, or with an obfuscated or `unknown` node, is not an address and ends the walk.
 *
 * With `proxy.header: proxy-protocol` the client is the source address of the PROXY protocol v2
 * header a TCP load balancer sends first on each connection (AWS NLB, HAProxy's `send-proxy-v2`),
 * read as a one-address header. uWebSockets.js takes such a header off any connection that starts
 * with one, so it is believed only from a trusted peer, like any header.
 */
import { BlockList, isIP } from 'node:net';
import { plainAddress } from './peer-address.js';

export interface ProxySettings {
  /** addresses and CIDR ranges of the proxies in front of evmux */
  trusted: readonly string[];
  /** lower-case header that names the client: `x-forwarded-for` (a list), `forwarded` (RFC 7239) or e.g. `x-real-ip` */
  header: string;
}

/** The `proxy.header` value that names the PROXY protocol rather than an HTTP header. */
export const PROXY_PROTOCOL = 'proxy-protocol';

/** `peer`'s client address given the proxy header's value (undefined when absent). */
export type ClientIpResolver = (peer: string, headerValue: string | undefined) => string;

/** An address or a CIDR range, for config validation: undefined when valid, else what is wrong. */
export function trustedEntryProblem(entry: string): string | undefined {
  const [address = '', prefix, extra] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || extra !== undefined) return `"${entry}" is not an IP address or CIDR range`;
  if (prefix === undefined) return undefined;
  const bits = /^\d{1,3}$/.test(prefix) ? Number(prefix) : -1;
  const max = family === 4 ? 32 : 128;
  return bits >= 0 && bits <= max ? undefined : `"${entry}": the prefix length must be 0 to ${max}`;
}

function blockList(trusted: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of trusted) {
    const [address = '', prefix] = entry.split('/');
    const type = isIP(address) === 4 ? 'ipv4' : 'ipv6';
    if (prefix === undefined) list.addAddress(address, type);
    else list.addSubnet(address, Number(prefix), type);
  }
  return list;
}

const BRACKETED = /^\[([0-9A-Fa-f:.]+)\](?::\d{1,5})?$/;
const V4_WITH_PORT = /^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/;

/** One hop's address, without the port (and an IPv6 address's brackets) some proxies add. */
function addressOf(entry: string): string {
  const hop = entry.trim();
  const match = BRACKETED.exec(hop) ?? V4_WITH_PORT.exec(hop);
  return match === null ? hop : match[1]!;
}

/** The hops of an X-Forwarded-For or X-Real-IP value, oldest first. */
const listedHops = (value: string): string[] => value.split(',');

/** The hops of a Forwarded value (RFC 7239): each element's `for=` parameter, unquoted; '' for none. */
function forwardedHops(value: string): string[] {
  return value.split(',').map((element) => {
    for (const pair of element.split(';')) {
      const equals = pair.indexOf('=');
      if (equals === -1 || pair.slice(0, equals).trim().toLowerCase() !== 'for') continue;
      return pair.slice(equals + 1).trim().replace(/^"(.*)"$/, '$1');
    }
    return '';
  });
}

function isTrusted(list: BlockList, address: string): boolean {
  const family = isIP(address);
  return family !== 0 && list.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

export function clientIpResolver(settings: ProxySettings): ClientIpResolver {
  if (settings.trusted.length === 0) return (peer) => peer;
  const trusted = blockList(settings.trusted);
  const hopsOf = settings.header === 'forwarded' ? forwardedHops : listedHops;
  return (peer, headerValue) => {
    if (headerValue === undefined || !isTrusted(trusted, peer)) return peer;
    const hops = hopsOf(headerValue);
    let client = peer;
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = plainAddress(addressOf(hops[i]!));
      if (isIP(hop) === 0) return client;
      client = hop;
      if (!isTrusted(trusted, hop)) return client;
    }
    return client;
  };
}
