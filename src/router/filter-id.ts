/**
 * Filter ids carry the upstream that holds the filter, so eth_getFilterChanges from any session
 * (or any evmux replica with the same upstream list) reaches the node that knows the filter.
 * Format: 0x1 + two hex digits of upstream index + the node's own id without its 0x.
 *
 * The leading 1 makes every id a quantity, with no leading zero, as geth writes its ids: web3.js
 * (and web3j) read a filter id as a number and send it back without leading zeros, so an id that
 * began 0x0… reached evmux without its upstream's first digit. Ids of evmux versions before it
 * (0x + two hex digits of index + the node's id, the index below 16 then written 0x0…) are still
 * read, except those naming upstreams 16–31, which begin with a 1 too.
 *
 * An id whose first byte has its high bit set (aliasFilterId) names no node: evmux gives one in
 * place of an id a filter it remembers holds already (a node that counts its ids from 1 again after
 * a restart gives a new filter the id of one evmux moved away from it). Such an id is found only in
 * the book of the evmux that made it.
 */
import { InvalidParamsError } from '../jsonrpc/errors.js';

/** Upstreams a filter id can name: the index byte's high bit marks an alias. */
export const MAX_FILTER_UPSTREAMS = 0x80;

/** The first hex digit of an id that names its node's filter. */
const NODE_FILTER_MARK = '1';

export function encodeFilterId(upstreamIndex: number, nodeId: string): string {
  checkNodeFilterId(nodeId);
  return `0x${NODE_FILTER_MARK}${upstreamIndex.toString(16).padStart(2, '0')}${nodeId.slice(2)}`;
}

/** The `n`th id evmux may give a filter of `nodeId` on upstream `upstreamIndex` whose own id is taken. */
export function aliasFilterId(upstreamIndex: number, nodeId: string, n: number): string {
  return `0x${(MAX_FILTER_UPSTREAMS | upstreamIndex).toString(16)}${nodeId.slice(2)}${n.toString(16).padStart(4, '0')}`;
}

/**
 * The upstream index and node id an id carries. An index past the upstream list (an id of another
 * setup, or made up) is returned as it is: the caller answers it as a node answers an id it does
 * not know.
 */
export function decodeFilterId(id: unknown): { upstreamIndex: number; nodeId: string } {
  if (typeof id !== 'string' || !/^0x[0-9a-fA-F]{3,}$/.test(id) || (id[2] === NODE_FILTER_MARK && id.length < 6)) {
    throw new InvalidParamsError('invalid filter id: expected the hex id returned by eth_new*Filter');
  }
  // An alias, or an id of an evmux before the mark: the index in the first byte.
  const at = id[2] === NODE_FILTER_MARK ? 3 : 2;
  return { upstreamIndex: Number.parseInt(id.slice(at, at + 2), 16), nodeId: `0x${id.slice(at + 2)}` };
}

/** Throws unless `nodeId` is a filter id evmux can carry in its own: hex. */
export function checkNodeFilterId(nodeId: string): void {
  if (!/^0x[0-9a-fA-F]+$/.test(nodeId)) throw new Error(`node returned an unusable filter id ${JSON.stringify(nodeId)}`);
}
