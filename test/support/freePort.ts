import * as net from 'node:net';

/**
 * A TCP port the OS says is free now (listen on port 0, read it, close), for torchrun's --master_port: a random port
 * in a fixed range can collide with another suite's rendezvous running at the same time, and the collision hangs.
 */
export function freePort(): Promise<string> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(String(port)));
    });
  });
}
