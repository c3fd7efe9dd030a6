import { privateKeyToAccount, type PrivateKeyAccount } from 'viem/accounts';

/**
 * Private keys of anvil's first dev accounts, derived from its default mnemonic
 * `test test test test test test test test test test test junk` at m/44'/60'/0'/0/i.
 * They are public knowledge (printed by every `anvil` start) and funded with 10,000 ETH
 * at genesis; never use them anywhere real.
 */
export const DEV_PRIVATE_KEYS = [
  '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80',
  '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d',
  '0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a',
  '0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6',
] as const satisfies readonly `0x${string}`[];

/** Signs the devnet's own traffic and deploys the emitter; its nonce is managed by the devnet. */
export const TRAFFIC_KEY = DEV_PRIVATE_KEYS[0];
/** Receives the traffic's value transfers. */
export const TRANSFER_RECIPIENT_KEY = DEV_PRIVATE_KEYS[1];
/** Handed to tests (`LockstepDevnet.testAccountKey`): never used by the devnet itself. */
export const TEST_ACCOUNT_KEY = DEV_PRIVATE_KEYS[2];

export function devAccount(key: `0x${string}`): PrivateKeyAccount {
  return privateKeyToAccount(key);
}
