import { app } from '@azure/functions';
import { getAppServices } from '../lib/app-services';
import { createRedirectHandler } from '../lib/auth/auth-handlers';

app.http('authRedirect', {
  methods: ['GET'],
  authLevel: 'anonymous',
  route: 'auth/redirect',
  handler: createRedirectHandler(getAppServices()),
});
