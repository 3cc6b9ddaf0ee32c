import { app } from '@azure/functions';
import { getAppServices } from '../lib/app-services';
import { createTodoProxyHandler } from '../lib/todo-proxy';

// One registration for the collection and its items, with every method: the handler answers 405
// with `Allow` itself (the host would answer 404), and a catch-all id lets it refuse `a/b` with a
// 400 instead of the host's bare 404.
app.http('todos', {
  methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'],
  authLevel: 'anonymous',
  route: 'api/todos/{*id}',
  handler: createTodoProxyHandler(getAppServices()),
});
