// The floor proxy of `npm run bench` (docs/performance.md): a plain node:http server that forwards
// every request to the API with a fixed access token over a keep-alive connection, the least any
// Node proxy adds. Run as a child process of the bench, beside the app. Not part of the product.
// Environment: PORT, FLOOR_API_URL, FLOOR_ACCESS_TOKEN.
import http from 'node:http';

const target = new URL(process.env.FLOOR_API_URL ?? '');
const authorization = `Bearer ${process.env.FLOOR_ACCESS_TOKEN ?? ''}`;
const agent = new http.Agent({ keepAlive: true });

const server = http.createServer((request, response) => {
  const outgoing = http.get(
    target,
    { agent, headers: { authorization, accept: 'application/json' } },
    (answer) => {
      response.writeHead(answer.statusCode ?? 502, {
        'content-type': answer.headers['content-type'] ?? 'application/json',
      });
      answer.pipe(response);
    },
  );
  outgoing.on('error', () => response.destroy());
  request.resume();
});
server.listen(Number(process.env.PORT), '127.0.0.1', () => {
  console.log(`floor proxy listening on http://127.0.0.1:${process.env.PORT}`);
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => server.close(() => process.exit(0)));
}
