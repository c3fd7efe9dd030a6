/**
 * What the scriptable relays in front of a node share: a client's connection piped to a
 * connection of its own to the node. Frames the client sends before the node's socket opens wait
 * for it; either side closing closes the other. The relay reads the client's frames itself (to
 * hold, refuse or answer them) and passes on the rest with the function returned.
 */
import { WebSocket } from 'ws';

export function pipeToNode(client: WebSocket, targetUrl: string): { node: WebSocket; toNode: (text: string) => void } {
  const node = new WebSocket(targetUrl);
  const waiting: string[] = [];
  node.on('open', () => waiting.splice(0).forEach((text) => node.send(text)));
  node.on('message', (data) => client.readyState === WebSocket.OPEN && client.send(String(data)));
  node.on('close', () => client.terminate());
  node.on('error', () => client.terminate());
  client.on('close', () => node.terminate());
  const toNode = (text: string): void => {
    if (node.readyState === WebSocket.OPEN) node.send(text);
    else if (node.readyState === WebSocket.CONNECTING) waiting.push(text);
  };
  return { node, toNode };
}
