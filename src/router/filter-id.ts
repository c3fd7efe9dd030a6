/**
 * Filter ids carry the upstream that holds the filter, so eth_getFilterChanges from any session
 * (or any evmux replica with the same upstream list) reaches the node that knows the filter.
 * Format: 0x + two hex digits of upstream index + the node's own id without its 0x.
 */
import { InvalidParamsError } from '../jsonrpc/errors.js';

export function encodeFilterId(upstreamIndex: number, nodeId: string): string {
  checkNodeFilterId(nodeId);
  return `0x${upstreamIndex.toString(16).padStart(2, '0')}${nodeId.slice(2)}`;
}

/**
 * The upstream index and node id an id carries. An index past the upstream list (an id of another
 * setup, or made up) is returned as it is: the caller answers it as a node answers an id it does
 * not know.
 */
export function decodeFilterId(id: unknown): { upstreamIndex: number; nodeId: string } {
  if (typeof id !== 'string' || !/^0x[0-9a-fA-F]{3,}$/.test(id)) {
    throw new InvalidParamsError('invalid filter id: expected the hex id returned by eth_new*Filter');
  }
  return { upstreamIndex: Number.parseInt(id.slice(2, 4), 16), nodeId: `0x${id.slice(4)}` };
}

/** Throws unless `nodeId` is a filter id evmux can carry in its own: hex. */
export function checkNodeFilterId(nodeId: string): void {
  if (!/^0x[0-9a-fA-F]+$/.test(nodeId)) throw new Error(`node returned an unusable filter id ${JSON.stringify(nodeId)}`);
}
