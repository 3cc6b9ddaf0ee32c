import { app } from '@azure/functions';
import { getAppServices } from '../lib/app-services';
import { createListSessionsHandler } from '../lib/auth/auth-handlers';

app.http('authSessions', {
  methods: ['GET'],
  authLevel: 'anonymous',
  route: 'auth/sessions',
  handler: createListSessionsHandler(getAppServices()),
});
