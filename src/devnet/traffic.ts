import { getContractAddress, type Hex } from 'viem';
import type { PrivateKeyAccount } from 'viem/accounts';
import { devAccount, TRAFFIC_KEY, TRANSFER_RECIPIENT_KEY } from './dev-accounts.js';
import { EMITTER_INIT_CODE, emitterCallData } from './emitter-contract.js';

// Fixed fees keep every signed byte independent of node state. The base fee starts at 1 gwei
// and only falls on a devnet this idle, so 10 gwei always clears it.
const MAX_FEE_PER_GAS = 10_000_000_000n;
const MAX_PRIORITY_FEE_PER_GAS = 1_000_000_000n;
const DEPLOY_GAS = 200_000n;
const EMIT_GAS = 100_000n;
const TRANSFER_GAS = 21_000n;

/**
 * Signs the devnet's own transactions from one dev account and tracks its nonce locally,
 * so the same signed bytes can be sent to every node (and replayed later).
 *
 * Every transaction carries a fresh sequence number in its value, so blocks re-mined after a
 * reorg contain different transactions than the blocks they replace, even at the same nonce.
 */
export class TrafficSigner {
  readonly #account: PrivateKeyAccount;
  readonly #chainId: number;
  readonly #recipient: `0x${string}`;
  #nonce = 0;
  #sequence = 0n;

  constructor(chainId: number) {
    this.#account = devAccount(TRAFFIC_KEY);
    this.#recipient = devAccount(TRANSFER_RECIPIENT_KEY).address;
    this.#chainId = chainId;
  }

  get address(): `0x${string}` {
    return this.#account.address;
  }

  /** Next nonce this signer will use. */
  get nonce(): number {
    return this.#nonce;
  }

  /** Go back to the nonce the chain had at a fork point (reorg). */
  rewind(nonce: number): void {
    this.#nonce = nonce;
  }

  /** Address the emitter gets when deployed by this signer at nonce 0 (block 1). */
  emitterAddress(): `0x${string}` {
    return getContractAddress({ from: this.#account.address, nonce: 0n });
  }

  deployEmitter(): Promise<Hex> {
    if (this.#nonce !== 0) throw new Error('the emitter must be the first transaction of the traffic account');
    return this.#sign({ data: EMITTER_INIT_CODE, gas: DEPLOY_GAS });
  }

  /** A small value transfer to another dev account. */
  transfer(): Promise<Hex> {
    return this.#sign({ to: this.#recipient, value: this.#nextSequence(), gas: TRANSFER_GAS });
  }

  /** An emitter call that logs `Ping(from = traffic account, value)`; value defaults to a fresh sequence number. */
  emit(emitter: `0x${string}`, value?: bigint): Promise<Hex> {
    const emitted = value ?? this.#nextSequence();
    return this.#sign({ to: emitter, data: emitterCallData(emitted), gas: EMIT_GAS });
  }

  #nextSequence(): bigint {
    this.#sequence += 1n;
    return this.#sequence;
  }

  #sign(fields: { to?: `0x${string}`; data?: Hex; value?: bigint; gas: bigint }): Promise<Hex> {
    const nonce = this.#nonce;
    this.#nonce += 1;
    return this.#account.signTransaction({
      type: 'eip1559',
      chainId: this.#chainId,
      nonce,
      maxFeePerGas: MAX_FEE_PER_GAS,
      maxPriorityFeePerGas: MAX_PRIORITY_FEE_PER_GAS,
      ...fields,
    });
  }
}
