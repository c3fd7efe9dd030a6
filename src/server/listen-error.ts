/** A listener that could not be opened: the port is taken, or the address is not this machine's. */
export class ListenError extends Error {
  override readonly name = 'ListenError';
}
