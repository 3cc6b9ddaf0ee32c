// The floor function of `npm run bench` (docs/performance.md): the least a function on the same
// host as the app can do for GET /api/todos: forward it to the API with a fixed access token over a
// keep-alive connection and pass the answer back. No session, no cookie, no check, no token lookup.
// The app's overhead is budgeted as a ratio to this one's, measured in the same run.
const http = require('node:http');
const { app } = require('@azure/functions');

const target = new URL(process.env.FLOOR_API_URL);
const authorization = `Bearer ${process.env.FLOOR_ACCESS_TOKEN}`;
const agent = new http.Agent({ keepAlive: true });

app.http('floor', {
  methods: ['GET'],
  authLevel: 'anonymous',
  route: 'api/todos',
  handler: () =>
    new Promise((resolve, reject) => {
      const outgoing = http.get(
        target,
        { agent, headers: { authorization, accept: 'application/json' } },
        (answer) => {
          const chunks = [];
          answer.on('data', (chunk) => chunks.push(chunk));
          answer.on('error', reject);
          answer.on('end', () =>
            resolve({
              status: answer.statusCode,
              headers: { 'content-type': answer.headers['content-type'] || 'application/json' },
              body: Buffer.concat(chunks),
            }),
          );
        },
      );
      outgoing.on('error', reject);
    }),
});
