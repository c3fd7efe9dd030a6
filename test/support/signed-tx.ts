/**
 * A signed EIP-1559 transaction from a dev key, for tests: by default a transfer of 1 wei to
 * 0x…dEaD on chain 31337, at 20 gwei (1 gwei tip) and 21,000 gas; any field can be given.
 */
import { parseGwei, type Hex, type TransactionSerializableEIP1559 } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';

export function signedTx(key: Hex, fields: Partial<TransactionSerializableEIP1559> & { nonce: number }): Promise<Hex> {
  return privateKeyToAccount(key).signTransaction({
    chainId: 31337,
    type: 'eip1559',
    gas: 21_000n,
    maxFeePerGas: parseGwei('20'),
    maxPriorityFeePerGas: parseGwei('1'),
    to: '0x000000000000000000000000000000000000dEaD',
    value: 1n,
    ...fields,
  });
}
