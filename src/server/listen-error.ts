/** A listener that could not be opened: the port is taken, or the address is not this machine's. */
export class ListenError extends Error {
  override readonly name = 'ListenError';
}

/** `host:port` as a URL writes it: an IPv6 address in brackets (`[::1]:8547`). */
export function listenAddress(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}
