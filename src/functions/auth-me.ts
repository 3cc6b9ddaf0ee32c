import { app } from '@azure/functions';
import { getAppServices } from '../lib/app-services';
import { createMeHandler } from '../lib/auth/auth-handlers';

app.http('authMe', {
  methods: ['GET'],
  authLevel: 'anonymous',
  route: 'auth/me',
  handler: createMeHandler(getAppServices()),
});
