import { app } from '@azure/functions';
import { getAppServices } from '../lib/app-services';
import { API_ROUTE_METHODS, createApiRoutesHandler } from '../lib/proxy/api-routes';

// One registration for every configured API, `todos` included (see createApiRoutesHandler): the
// handlers answer 405 with `Allow` themselves (the host would answer 404), and a catch-all path lets
// them refuse a bad one with a 400 instead of the host's bare 404.
app.http('downstream-apis', {
  methods: [...API_ROUTE_METHODS],
  authLevel: 'anonymous',
  route: 'api/{name}/{*path}',
  handler: createApiRoutesHandler(getAppServices()),
});
