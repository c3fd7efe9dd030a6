import { concatHex, keccak256, numberToHex, size, toHex, type Hex } from 'viem';

/**
 * The devnet's event emitter, hand-assembled because the project has no Solidity compiler.
 *
 * Interface (not Solidity ABI-dispatched; there is no function selector):
 * - call with EMPTY calldata: returns `uint256 count`, the number of pings so far
 *   (use it with `eth_call`; it changes every time a ping is mined);
 * - call with any calldata: `value` = the LAST 32 bytes of calldata (so a bare 32-byte word and
 *   an ABI-encoded `ping(uint256)` both work; calldata shorter than 32 bytes gives value 0),
 *   increments `count` and emits `Ping(address indexed from, uint256 value)` with
 *   from = msg.sender (topic1) and value in the data. Payable; returns nothing.
 *
 * Storage: slot 0 = count. Needs PUSH0 (Shanghai or later; anvil's default hardfork is newer).
 */
export const PING_EVENT_SIGNATURE = 'Ping(address,uint256)';

/** topic0 of `Ping(address indexed from, uint256 value)`. */
export const PING_TOPIC: Hex = keccak256(toHex(PING_EVENT_SIGNATURE));

/** viem-style ABI of what the emitter logs, for `decodeEventLog` / `parseEventLogs`. */
export const EMITTER_EVENT_ABI = [
  {
    type: 'event',
    name: 'Ping',
    inputs: [
      { name: 'from', type: 'address', indexed: true },
      { name: 'value', type: 'uint256', indexed: false },
    ],
  },
] as const;

/** Where the emit branch starts; the JUMPI below targets it. */
const EMIT_LABEL = 0x0c;

// Offsets on the left; stack after the instruction on the right (top first).
export const EMITTER_RUNTIME_CODE: Hex = concatHex([
  '0x36', //             0x00 CALLDATASIZE         [size]
  `0x60${EMIT_LABEL.toString(16).padStart(2, '0')}`, // 0x01 PUSH1 emit   [emit, size]
  '0x57', //             0x03 JUMPI                []            calldata present -> emit
  '0x5f', //             0x04 PUSH0                [0]           -- read path: count()
  '0x54', //             0x05 SLOAD                [count]
  '0x5f', //             0x06 PUSH0                [0, count]
  '0x52', //             0x07 MSTORE               []            mem[0..32] = count
  '0x6020', //           0x08 PUSH1 32             [32]
  '0x5f', //             0x0a PUSH0                [0, 32]
  '0xf3', //             0x0b RETURN                             return mem[0..32]
  '0x5b', //             0x0c JUMPDEST                           -- emit path
  '0x6020', //           0x0d PUSH1 32             [32]
  '0x36', //             0x0f CALLDATASIZE         [size, 32]
  '0x03', //             0x10 SUB                  [size-32]
  '0x35', //             0x11 CALLDATALOAD         [value]       last word of calldata
  '0x5f', //             0x12 PUSH0                [0, value]
  '0x52', //             0x13 MSTORE               []            mem[0..32] = value
  '0x5f', //             0x14 PUSH0                [0]
  '0x54', //             0x15 SLOAD                [count]
  '0x6001', //           0x16 PUSH1 1              [1, count]
  '0x01', //             0x18 ADD                  [count+1]
  '0x5f', //             0x19 PUSH0                [0, count+1]
  '0x55', //             0x1a SSTORE               []            count += 1
  '0x33', //             0x1b CALLER               [from]
  `0x7f${PING_TOPIC.slice(2)}`, // 0x1c PUSH32 topic0 [topic0, from]
  '0x6020', //           0x3d PUSH1 32             [32, topic0, from]
  '0x5f', //             0x3f PUSH0                [0, 32, topic0, from]
  '0xa2', //             0x40 LOG2                 []            log(mem[0..32], topic0, from)
  '0x00', //             0x41 STOP
]);

const RUNTIME_LENGTH = size(EMITTER_RUNTIME_CODE);
const INIT_PREFIX_LENGTH = 9;

/** Creation code: copy the runtime (which follows this 9-byte prefix) to memory and return it. */
export const EMITTER_INIT_CODE: Hex = concatHex([
  numberToHex(0x60, { size: 1 }), //  0x00 PUSH1 len      [len]
  numberToHex(RUNTIME_LENGTH, { size: 1 }),
  '0x80', //                          0x02 DUP1           [len, len]
  '0x60', //                          0x03 PUSH1 9        [9, len, len]
  numberToHex(INIT_PREFIX_LENGTH, { size: 1 }),
  '0x5f', //                          0x05 PUSH0          [0, 9, len, len]
  '0x39', //                          0x06 CODECOPY       [len]     mem[0..len] = code[9..9+len]
  '0x5f', //                          0x07 PUSH0          [0, len]
  '0xf3', //                          0x08 RETURN                   return mem[0..len]
  EMITTER_RUNTIME_CODE,
]);

const jumpTarget = EMITTER_RUNTIME_CODE.slice(2 + EMIT_LABEL * 2, 4 + EMIT_LABEL * 2);
if (size(EMITTER_INIT_CODE) !== INIT_PREFIX_LENGTH + RUNTIME_LENGTH || RUNTIME_LENGTH !== 0x42 || jumpTarget !== '5b') {
  throw new Error('emitter bytecode layout changed: fix the offsets in emitter-contract.ts');
}

/** Calldata for a ping that emits `value`. */
export function emitterCallData(value: bigint): Hex {
  return numberToHex(value, { size: 32 });
}
