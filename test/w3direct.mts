import { Web3, WebSocketProvider } from 'web3';
import { LockstepDevnet } from '../src/devnet/lockstep-devnet.js';
const devnet = await LockstepDevnet.start({ nodes: 1, blockTimeMs: 0 });
const provider = new WebSocketProvider(devnet.nodes[0]!.wsUrl, {}, { autoReconnect: false });
const web3 = new Web3(provider);
for (const fromBlock of [1, '0x1', 1n, 'earliest']) {
  try {
    const sub = await web3.eth.subscribe('logs', { address: devnet.emitterAddress, fromBlock } as never);
    console.log(String(fromBlock), typeof fromBlock, 'ok', sub.id);
    await sub.unsubscribe();
  } catch (e) { console.log(String(fromBlock), typeof fromBlock, 'error', (e as Error).message); }
}
provider.disconnect(1000, 'done'); await devnet.close(); process.exit(0);
