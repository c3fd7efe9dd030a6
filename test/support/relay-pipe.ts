/**
 * What the scriptable relays in front of a node share: a client's connection piped to a
 * connection of its own to the node. Frames the client sends before the node's socket opens wait
 * for it; either side closing closes the other. The relay reads the client's frames itself (to
 * hold, refuse or answer them) and passes on the rest with the function returned; the node's frames
 * go to the client when `toClient` says so (every one by default).
 */
import { WebSocket } from 'ws';

export function pipeToNode(
  client: WebSocket,
  targetUrl: string,
  toClient: (text: string) => boolean = () => true,
): { node: WebSocket; toNode: (text: string) => void } {
  const node = new WebSocket(targetUrl);
  const waiting: string[] = [];
  node.on('open', () => waiting.splice(0).forEach((text) => node.send(text)));
  node.on('message', (data) => {
    const text = String(data);
    if (client.readyState === WebSocket.OPEN && toClient(text)) client.send(text);
  });
  node.on('close', () => client.terminate());
  node.on('error', () => client.terminate());
  client.on('close', () => node.terminate());
  const toNode = (text: string): void => {
    if (node.readyState === WebSocket.OPEN) node.send(text);
    else if (node.readyState === WebSocket.CONNECTING) waiting.push(text);
  };
  return { node, toNode };
}
