import { app } from '@azure/functions';
import { getAppServices } from '../lib/app-services';
import { createSignOutHandler } from '../lib/auth/auth-handlers';

app.http('authSignOut', {
  methods: ['POST'],
  authLevel: 'anonymous',
  route: 'auth/signout',
  handler: createSignOutHandler(getAppServices()),
});
